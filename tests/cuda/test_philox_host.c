/* The Philox the CUDA kernels run (nn/ob_philox.h, compiled there as
 * __host__ __device__) against the CPU generator, on the host: no GPU needed.
 * - ob_philox4x32_10 reproduces the published Random123 known-answer vectors;
 * - word k = word k % 4 of ob_philox_block(k / 4), the mapping the dropout
 *   kernel uses, equals ob_rng_words (rng.c's separate vectorised rounds)
 *   for several streams and offsets;
 * - the keep decision word >= ob_philox_threshold(p) is exactly the CPU
 *   back end's dropout mask for p = 0.1, 0.5 and 0.9. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/ob_backend.h"
#include "nn/ob_philox.h"
#include "ob_check.h"

/* Random123's kat_vectors for philox4x32-10: counter, key, output. */
static void check_known_answers(void) {
    static const uint32_t vectors[][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e,
         0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb,
         0x5001e420, 0x24126ea1},
    };
    for (size_t v = 0; v < sizeof vectors / sizeof vectors[0]; v++) {
        uint32_t ctr[4] = {vectors[v][0], vectors[v][1], vectors[v][2], vectors[v][3]};
        ob_philox4x32_10(ctr, vectors[v][4], vectors[v][5]);
        for (int i = 0; i < 4; i++) CHECK(ctr[i] == vectors[v][6 + i]);
    }
}

/* Word k of the stream as the dropout kernel draws it. */
static uint32_t device_word(const ob_rng_stream *stream, uint64_t k) {
    uint32_t block[4];
    ob_philox_block(stream, k / 4, block);
    return block[k % 4];
}

#define WORDS 203 /* crosses several of rng.c's 8-block lanes, and ends mid-block */

static void check_words_match_cpu(void) {
    const ob_rng_stream streams[] = {
        ob_rng_stream_make(0, OB_RNG_DROPOUT, 0, 0),
        ob_rng_stream_make(1234, OB_RNG_DROPOUT, 3, 17),
        ob_rng_stream_make(0xfedcba9876543210ull, OB_RNG_DROPOUT, 65535, (1ull << 40) - 1),
        ob_rng_stream_make(42, OB_RNG_STOCHASTIC_ROUNDING, 7, (1ull << 32) + 5),
    };
    const uint64_t offsets[] = {0, 1, 2, 3, 5, 1000003, (1ull << 33) + 1, (1ull << 62) + 6};
    for (size_t s = 0; s < sizeof streams / sizeof streams[0]; s++)
        for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
            uint32_t cpu[WORDS];
            ob_rng_words(&streams[s], offsets[o], WORDS, cpu);
            int mismatches = 0;
            for (uint64_t j = 0; j < WORDS; j++) mismatches += device_word(&streams[s], offsets[o] + j) != cpu[j];
            if (mismatches) printf("stream %zu offset %llu: %d of %d words differ\n", s,
                                   (unsigned long long)offsets[o], mismatches, WORDS);
            CHECK(mismatches == 0);
        }
}

#define MASK_ELEMENTS 20001

/* The CPU back end's dropout of ones: y_i = 1/(1-p) where kept, else 0. */
static void check_mask_matches_cpu(double p) {
    const ob_backend *cpu = ob_backend_get(OB_CPU);
    float *ones = malloc(MASK_ELEMENTS * sizeof *ones), *y = malloc(MASK_ELEMENTS * sizeof *y);
    if (!ones || !y) {
        CHECK(!"out of memory");
        free(ones);
        free(y);
        return;
    }
    for (int i = 0; i < MASK_ELEMENTS; i++) ones[i] = 1.0f;
    ob_tensor x_t = {.dtype = OB_F32, .device = OB_CPU, .ndim = 1, .shape = {MASK_ELEMENTS},
                     .numel = MASK_ELEMENTS, .data = ones};
    ob_tensor y_t = x_t;
    y_t.data = y;
    ob_rng_stream stream = ob_rng_stream_make(2024, OB_RNG_DROPOUT, 1, 99);
    const uint64_t first_word = 4097 * 3 + 1; /* not a block boundary */
    cpu->dropout(&stream, first_word, p, &x_t, &y_t, false);

    uint32_t threshold = ob_philox_threshold(p);
    int disagreements = 0, kept = 0;
    for (int i = 0; i < MASK_ELEMENTS; i++) {
        bool device_keeps = device_word(&stream, first_word + (uint64_t)i) >= threshold;
        disagreements += device_keeps != (y[i] != 0.0f);
        kept += device_keeps;
    }
    double kept_fraction = (double)kept / MASK_ELEMENTS;
    double sigma = sqrt(p * (1 - p) / MASK_ELEMENTS);
    printf("p = %.1f: %d of %d kept (%.4f), %d decisions differ from the CPU's\n", p, kept, MASK_ELEMENTS,
           kept_fraction, disagreements);
    CHECK(disagreements == 0);
    CHECK(fabs(kept_fraction - (1 - p)) < 5 * sigma);
    free(ones);
    free(y);
}

int main(void) {
    check_known_answers();
    check_words_match_cpu();
    check_mask_matches_cpu(0.1);
    check_mask_matches_cpu(0.5);
    check_mask_matches_cpu(0.9);
    CHECK(ob_philox_threshold(0.0) == 0);             /* p = 0 keeps every word */
    CHECK(ob_philox_threshold(0.5) == 0x80000000u);   /* half the words */
    CHECK(ob_philox_threshold(1.0) == UINT32_MAX);    /* no larger word exists */
    return report_checks();
}
