/* Dropout's mask from the counter-based generator: element i is kept when
 * word first_word + i of the stream is >= threshold, so its mask is a pure
 * function of the stream and i. The forward and the backward draw the same
 * words, and the result does not depend on how threads split the elements. */
#include "nn/ob_rng.h"

#include "nn/cpu/real.h"
#include "nn/cpu/kernels.h"

/* Elements per task; its words are drawn by one ob_rng_words call. */
#define DROPOUT_CHUNK 1024

/* y = x keep / (1 - p), or y += that when accumulate (the backward's dx).
 * Written as x times (keep ? scale : 0), a choice between constants, so the
 * loop vectorises (a choice between x scale and 0 stays a branch under
 * -ftrapping-math); so a dropped inf or NaN gives NaN, a finite one +-0. */
void OB_FN(k_dropout)(int64_t n, const ob_rng_stream *stream, uint64_t first_word, uint32_t threshold,
                      ob_real scale, const ob_real *x, ob_real *y, int accumulate) {
    int64_t chunks = (n + DROPOUT_CHUNK - 1) / DROPOUT_CHUNK;
#pragma omp parallel for schedule(static)
    for (int64_t chunk = 0; chunk < chunks; chunk++) {
        int64_t first = chunk * DROPOUT_CHUNK, count = n - first < DROPOUT_CHUNK ? n - first : DROPOUT_CHUNK;
        uint32_t words[DROPOUT_CHUNK];
        ob_rng_words(stream, first_word + (uint64_t)first, count, words);
#pragma omp simd
        for (int64_t j = 0; j < count; j++) {
            ob_real keep_scale = words[j] >= threshold ? scale : 0;
            y[first + j] = (accumulate ? y[first + j] : 0) + x[first + j] * keep_scale;
        }
    }
}
