#include "optimizers/precision/ob_half_codes.h"

#include <string.h>
#ifdef __F16C__
#include <immintrin.h>
#endif

#define FP32_ABS_MASK 0x7fffffffu
#define FP32_INF 0x7f800000u
#define BF16_QUIET_NAN 0x7fc0u
/* Below this many values a parallel region costs more than the conversion
 * (K-FAC's eigenvalue vectors, the F64 tests' one-value calls). */
#define PARALLEL_MIN 16384

/* binary16: F16C (-march=native on x86-64) converts 8 values per
 * instruction with the rounding mode in its immediate; elsewhere GCC's
 * _Float16 cast rounds to nearest even too. */
static inline void encode_f16_block(const float *values, uint16_t *codes) {
#ifdef __F16C__
    _mm_storeu_si128((__m128i *)codes, _mm256_cvtps_ph(_mm256_loadu_ps(values), _MM_FROUND_TO_NEAREST_INT));
#else
    for (int i = 0; i < 8; i++) {
        _Float16 h = (_Float16)values[i];
        memcpy(&codes[i], &h, sizeof h);
    }
#endif
}

static inline void decode_f16_block(const uint16_t *codes, float *values) {
#ifdef __F16C__
    _mm256_storeu_ps(values, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)codes)));
#else
    for (int i = 0; i < 8; i++) {
        _Float16 h;
        memcpy(&h, &codes[i], sizeof h);
        values[i] = (float)h;
    }
#endif
}

/* bfloat16 is the top half of fp32: adding 0x7fff plus the lowest kept bit
 * rounds the dropped half to nearest even, a carry running on into the
 * exponent (FLT_MAX's neighbourhood rounds to infinity, as it should). A
 * NaN could carry into the sign, so it takes the canonical quiet NaN. */
static inline uint16_t bf16_code(uint32_t bits) {
    uint16_t rounded = (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
    return (bits & FP32_ABS_MASK) > FP32_INF ? BF16_QUIET_NAN : rounded;
}

static void encode_f16(const float *values, uint16_t *codes, int64_t n) {
    int64_t blocks = n / 8;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (int64_t b = 0; b < blocks; b++) encode_f16_block(values + 8 * b, codes + 8 * b);
    int64_t tail = n - 8 * blocks;
    if (tail) { /* through a padded block, so that the tail rounds exactly as the body */
        float padded_values[8] = {0};
        uint16_t padded_codes[8];
        memcpy(padded_values, values + 8 * blocks, (size_t)tail * sizeof *values);
        encode_f16_block(padded_values, padded_codes);
        memcpy(codes + 8 * blocks, padded_codes, (size_t)tail * sizeof *codes);
    }
}

static void decode_f16(const uint16_t *codes, float *values, int64_t n) {
    int64_t blocks = n / 8;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (int64_t b = 0; b < blocks; b++) decode_f16_block(codes + 8 * b, values + 8 * b);
    int64_t tail = n - 8 * blocks;
    if (tail) {
        uint16_t padded_codes[8] = {0};
        float padded_values[8];
        memcpy(padded_codes, codes + 8 * blocks, (size_t)tail * sizeof *codes);
        decode_f16_block(padded_codes, padded_values);
        memcpy(values + 8 * blocks, padded_values, (size_t)tail * sizeof *values);
    }
}

void ob_half_encode(ob_dtype dtype, const float *values, uint16_t *codes, int64_t n) {
    if (dtype == OB_F16) {
        encode_f16(values, codes, n);
        return;
    }
    const uint32_t *bits = (const uint32_t *)values;
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN) /* simd: -O2 declines the remainder loop */
    for (int64_t i = 0; i < n; i++) codes[i] = bf16_code(bits[i]);
}

void ob_half_decode(ob_dtype dtype, const uint16_t *codes, float *values, int64_t n) {
    if (dtype == OB_F16) {
        decode_f16(codes, values, n);
        return;
    }
    uint32_t *bits = (uint32_t *)values;
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) bits[i] = (uint32_t)codes[i] << 16;
}
