/* ob_rng: counter-based random numbers (Philox4x32-10, Salmon et al.,
 * SC'11). A draw is a pure function of (seed, purpose, rank, step, index),
 * so runs are reproducible and independent of thread count: any thread can
 * compute any element's random bits without shared state. */
#ifndef OB_RNG_H
#define OB_RNG_H

#include <stdint.h>

typedef enum {
    OB_RNG_INIT = 1,
    OB_RNG_SHUFFLE,
    OB_RNG_AUGMENT,
    OB_RNG_DROPOUT,
    OB_RNG_MASKING,
    OB_RNG_STOCHASTIC_ROUNDING,
    OB_RNG_SYNTHETIC_DATA,
    OB_RNG_TEST
} ob_rng_purpose;

typedef struct {
    uint64_t seed;
    uint32_t purpose; /* ob_rng_purpose, < 256 */
    uint32_t rank;    /* < 65536 */
    uint64_t step;    /* < 2^40 */
} ob_rng_stream;

static inline ob_rng_stream ob_rng_stream_make(uint64_t seed, ob_rng_purpose purpose, uint32_t rank,
                                               uint64_t step) {
    ob_rng_stream s = {seed, (uint32_t)purpose, rank, step};
    return s;
}

/* Four independent 32-bit words for block `index` of the stream. */
void ob_rng_block(const ob_rng_stream *stream, uint64_t index, uint32_t out[4]);
uint32_t ob_rng_u32(const ob_rng_stream *stream, uint64_t index);
/* The stream as a sequence of 32-bit words: word k is word k % 4 of block
 * k / 4, so bulk draws (stochastic rounding) get four words per Philox
 * evaluation instead of one. */
uint32_t ob_rng_word(const ob_rng_stream *stream, uint64_t k);
/* out[j] = ob_rng_word(stream, first + j) for 0 <= j < count. */
void ob_rng_words(const ob_rng_stream *stream, uint64_t first, int64_t count, uint32_t *out);
/* Uniform in [0, 1) with 24 random bits (exactly representable in float). */
float ob_rng_uniform(const ob_rng_stream *stream, uint64_t index);
/* Uniform integer in [0, n), n >= 1, by rejection (no modulo bias). */
uint32_t ob_rng_below(const ob_rng_stream *stream, uint64_t index, uint32_t n);
/* Standard normal (Box-Muller on one block). */
double ob_rng_normal(const ob_rng_stream *stream, uint64_t index);

#endif
