/* ob_rng_words (nn/ob_rng.h), the bulk draw behind dropout and stochastic
 * rounding, against ob_rng_word one word at a time: every start position
 * within a Philox block, spans shorter than a block, across the lanes'
 * boundary and many lanes long, and the words just past the span left
 * untouched. */
#include <stdint.h>
#include <stdio.h>

#include "nn/ob_rng.h"

#include "ob_check.h"

#define MAX_COUNT 300
#define GUARD_WORDS 4
#define GUARD_WORD 0xdeadbeefu

static bool words_match(const ob_rng_stream *stream, uint64_t first, int64_t count) {
    uint32_t words[MAX_COUNT + GUARD_WORDS];
    for (int64_t i = 0; i < MAX_COUNT + GUARD_WORDS; i++) words[i] = GUARD_WORD;
    ob_rng_words(stream, first, count, words);
    for (int64_t i = 0; i < count; i++)
        if (words[i] != ob_rng_word(stream, first + (uint64_t)i)) return false;
    for (int64_t i = count; i < count + GUARD_WORDS; i++)
        if (words[i] != GUARD_WORD) return false;
    return true;
}

int main(void) {
    const ob_rng_stream streams[] = {
        ob_rng_stream_make(0, OB_RNG_DROPOUT, 0, 0),
        ob_rng_stream_make(0xfedcba9876543210ull, OB_RNG_STOCHASTIC_ROUNDING, 7, (1ull << 32) + 5),
    };
    const int64_t counts[] = {0, 1, 3, 4, 5, 31, 32, 33, 64, 127, 129, MAX_COUNT};
    const uint64_t starts[] = {0, 1, 2, 3, 4, 5, 6, 7, 1021, (1ull << 34) + 2, UINT64_MAX - 2 * MAX_COUNT};
    for (size_t s = 0; s < sizeof streams / sizeof *streams; s++) {
        int mismatches = 0;
        for (size_t f = 0; f < sizeof starts / sizeof *starts; f++)
            for (size_t c = 0; c < sizeof counts / sizeof *counts; c++)
                mismatches += !words_match(&streams[s], starts[f], counts[c]);
        char what[96];
        snprintf(what, sizeof what, "stream %zu: ob_rng_words equals ob_rng_word, and writes no further", s);
        check(mismatches == 0, what);
    }
    return report_checks();
}
