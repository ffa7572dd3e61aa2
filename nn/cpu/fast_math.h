/* Branch-free float exp and erf that GCC vectorises inside `omp simd`
 * loops (glibc's expf/erff are scalar calls), for the float kernels' GELU
 * and softmax. The double instantiation keeps libm: gradcheck runs in double
 * and compares against it.
 *
 * OB_EXP / OB_ERF name the function a kernel calls: these in the float
 * instantiation (OB_REAL_F32), libm's exp / erf in the double one. Like
 * real.h the two macros are reset on every include; the functions are
 * defined once.
 *
 * Without -ffast-math GCC keeps floating-point compares that pick between
 * two computed values as branches (-ftrapping-math), which stops
 * vectorisation; so the range limit here is an integer clamp on the bits
 * and choices between two computed values are bit masks (ob_fast_pick).
 *
 * Accuracy (tests/unit/test_fast_math.c checks these bounds against libm's
 * double exp and erf on dense grids; measured maxima in brackets):
 *   ob_fast_expf: relative error <= 2e-7 on [-87, 88] (7.7e-8, under one
 *     float ulp); +inf from 88.73 up, 0 below -103.98 (exactly 0 for -inf,
 *     which the masked softmax relies on); NaN in gives NaN.
 *   ob_fast_erff: absolute error <= 3.5e-7 everywhere (3.0e-7, near |x| =
 *     1/2), relative error <= 3e-7 for |x| < 1/2 (1.9e-7); erf(+-inf) = +-1,
 *     NaN in gives NaN. */
#ifndef OB_CPU_FAST_MATH_H
#define OB_CPU_FAST_MATH_H

#include <math.h>
#include <stdint.h>

#define OB_FAST_LOG2E 1.44269504088896341f
/* ln 2 = LN2_HIGH + LN2_LOW, LN2_HIGH with few mantissa bits so n LN2_HIGH is exact */
#define OB_FAST_LN2_HIGH 0.693359375f
#define OB_FAST_LN2_LOW -2.12194440e-4f
/* 1.5 2^23: adding it rounds a float below 2^22 in magnitude to an integer,
 * which then sits in the sum's low mantissa bits */
#define OB_FAST_ROUND_SHIFTER 12582912.0f
#define OB_FAST_ROUND_SHIFTER_BITS 0x4B400000u
#define OB_FAST_EXP_LIMIT_BITS 0x42D00000u /* 104.0f */

typedef union {
    float value;
    uint32_t bits;
} ob_fast_float_bits;

static inline uint32_t ob_fast_bits(float x) { return (ob_fast_float_bits){.value = x}.bits; }
static inline float ob_fast_float(uint32_t bits) { return (ob_fast_float_bits){.bits = bits}.value; }

/* when ? a : b, as a bit mask rather than a branch */
static inline float ob_fast_pick(uint32_t when, float a, float b) {
    uint32_t mask = 0u - when;
    return ob_fast_float((ob_fast_bits(a) & mask) | (ob_fast_bits(b) & ~mask));
}

/* exp(x) = 2^n e^r, n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2]:
 * e^r by its Taylor series to r^7 (remainder < 5e-9 on that interval), 2^n
 * as two factors 2^(n/2) 2^(n - n/2), so that n from -150 (subnormal
 * results) to 150 (overflow to inf) needs no special case. */
static inline float ob_fast_expf(float x) {
    /* |x| clamped to 104 on the bits (an integer min, which GCC does not
     * turn into a branch), which keeps n in [-150, 150]; that turns NaN
     * into +-104, and the last line puts it back. */
    uint32_t magnitude = ob_fast_bits(x) & 0x7FFFFFFFu;
    magnitude = magnitude < OB_FAST_EXP_LIMIT_BITS ? magnitude : OB_FAST_EXP_LIMIT_BITS;
    float clamped = ob_fast_float(magnitude | (ob_fast_bits(x) & 0x80000000u));
    float shifted = clamped * OB_FAST_LOG2E + OB_FAST_ROUND_SHIFTER;
    float n = shifted - OB_FAST_ROUND_SHIFTER;
    int32_t k = (int32_t)(ob_fast_bits(shifted) - OB_FAST_ROUND_SHIFTER_BITS), half = k / 2;
    float r = (clamped - n * OB_FAST_LN2_HIGH) - n * OB_FAST_LN2_LOW;
    float p = 1.0f + r * (1.0f + r * (1.0f / 2 + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 +
              r * (1.0f / 720 + r * (1.0f / 5040)))))));
    /* 2^j for j in [-126, 127]: the float with exponent field j + 127 */
    float pow2_half = ob_fast_float((uint32_t)(half + 127) << 23);
    float pow2_rest = ob_fast_float((uint32_t)(k - half + 127) << 23);
    return ob_fast_pick(x != x, x, p * pow2_half * pow2_rest);
}

/* For |x| < 1/2 the Maclaurin series
 *   erf(x) = 2/sqrt(pi) x (1 - x^2/3 + x^4/10 - x^6/42 + x^8/216 - x^10/1320 + x^12/9360)
 * (remainder < 1e-9 there: A&S below loses its last bits to 1 - poly there);
 * beyond, Abramowitz & Stegun 7.1.26 for z = |x|:
 *   erf(z) = 1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-z^2),  t = 1 / (1 + p z),
 * |error| <= 1.5e-7, and erf(-z) = -erf(z). Both are computed, one kept. */
static inline float ob_fast_erff(float x) {
    float z = fabsf(x), t = 1.0f / (1.0f + 0.3275911f * z), x2 = x * x;
    float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f +
                 t * 1.061405429f))));
    float tail = copysignf(1.0f - poly * ob_fast_expf(-x2), x);
    float series = 1.12837916709551257f * x * (1.0f + x2 * (-1.0f / 3 + x2 * (1.0f / 10 + x2 * (-1.0f / 42 +
                   x2 * (1.0f / 216 + x2 * (-1.0f / 1320 + x2 * (1.0f / 9360)))))));
    /* |x| < 1/2 compared on the bits: positive floats order as their bits, NaN's are above */
    return ob_fast_pick((ob_fast_bits(x) & 0x7FFFFFFFu) < 0x3F000000u, series, tail);
}

#endif

#undef OB_EXP
#undef OB_ERF
#if defined(OB_REAL_F32)
#define OB_EXP ob_fast_expf
#define OB_ERF ob_fast_erff
#elif defined(OB_REAL_F64)
#define OB_EXP exp
#define OB_ERF erf
#endif
