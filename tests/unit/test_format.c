/* The low-precision formats (optimizers/precision/ob_format.h):
 * - every code of every format decodes to the value its fields say
 *   (a formula restated here), and decode -> encode gives the code back;
 * - nearest-even against an independent reference: the sorted table of the
 *   format's finite values searched for the nearest (ties to the even code)
 *   plus the overflow rule, on hand-picked edges and 1,000,000 random fp32
 *   values per format; fp16 also against the compiler's _Float16;
 * - stochastic rounding: unbiased (mean and fraction rounded up), exact
 *   values fixed, reproducible, different per step;
 * - arrays: element-wise equal to ob_format_round, in place, the same with 1
 *   and 2 threads, counts on hand-built arrays; fp16 throughput printed;
 * - integer grids: levels, ties, clamping, unbiasedness, validation. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optimizers/precision/ob_format.h"

#include "ob_check.h"

#define RANDOM_VALUES 1000000
#define SR_DRAWS 200000
#define SIGMAS 5.0

/* One format seen through its code-level functions, with its fields
 * restated from the header's table (not taken from the library). */
typedef struct {
    ob_format format;
    int width, exp_bits, mant_bits, bias;
    bool has_inf;
    uint32_t (*encode)(float x, ob_rounding mode, uint32_t random_bits);
    float (*decode)(uint32_t code);
} format_case;

static uint32_t fp16_encode(float x, ob_rounding m, uint32_t r) { return ob_fp16_from_float(x, m, r); }
static float fp16_decode(uint32_t c) { return ob_fp16_to_float((uint16_t)c); }
static uint32_t bf16_encode(float x, ob_rounding m, uint32_t r) { return ob_bf16_from_float(x, m, r); }
static float bf16_decode(uint32_t c) { return ob_bf16_to_float((uint16_t)c); }
static uint32_t e4m3_encode(float x, ob_rounding m, uint32_t r) { return ob_e4m3_from_float(x, m, r); }
static float e4m3_decode(uint32_t c) { return ob_e4m3_to_float((uint8_t)c); }
static uint32_t e5m2_encode(float x, ob_rounding m, uint32_t r) { return ob_e5m2_from_float(x, m, r); }
static float e5m2_decode(uint32_t c) { return ob_e5m2_to_float((uint8_t)c); }

static const format_case formats[] = {
    {OB_FORMAT_FP16, 16, 5, 10, 15, true, fp16_encode, fp16_decode},
    {OB_FORMAT_BF16, 16, 8, 7, 127, true, bf16_encode, bf16_decode},
    {OB_FORMAT_E4M3, 8, 4, 3, 7, false, e4m3_encode, e4m3_decode},
    {OB_FORMAT_E5M2, 8, 5, 2, 15, true, e5m2_encode, e5m2_decode},
};
#define FORMAT_COUNT (int)(sizeof formats / sizeof formats[0])

static uint32_t bits_of(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static float float_of(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}
static bool same_float(float a, float b) { return (isnan(a) && isnan(b)) || bits_of(a) == bits_of(b); }

static uint32_t sign_bit(const format_case *fc) { return 1u << (fc->width - 1); }
static uint32_t code_count(const format_case *fc) { return 1u << fc->width; }

/* What a code means, from its fields: NAN for NaN codes, +-INFINITY. */
static double code_value(const format_case *fc, uint32_t code) {
    uint32_t exp_field = (code >> fc->mant_bits) & ((1u << fc->exp_bits) - 1);
    uint32_t mantissa = code & ((1u << fc->mant_bits) - 1);
    double sign = (code & sign_bit(fc)) ? -1.0 : 1.0;
    uint32_t exp_ones = (1u << fc->exp_bits) - 1;
    uint32_t mant_ones = (1u << fc->mant_bits) - 1;
    if (fc->has_inf && exp_field == exp_ones) return mantissa ? NAN : sign * INFINITY;
    if (!fc->has_inf && exp_field == exp_ones && mantissa == mant_ones) return NAN;
    if (exp_field == 0) return sign * ldexp(mantissa, 1 - fc->bias - fc->mant_bits);
    return sign * ldexp(1.0 + ldexp(mantissa, -fc->mant_bits), (int)exp_field - fc->bias);
}

/* ---- the reference: the format's finite non-negative values, sorted ---- */

typedef struct {
    const format_case *fc;
    double *values;     /* values[code] for magnitude codes 0..max_code */
    uint32_t max_code;
    double overflow_at; /* max + half the top binade's step */
} reference;

static reference reference_new(const format_case *fc) {
    reference ref = {fc, malloc(sizeof(double) * code_count(fc)), 0, 0};
    for (uint32_t code = 0; code < sign_bit(fc) && isfinite(code_value(fc, code)); code++) {
        ref.values[code] = code_value(fc, code);
        ref.max_code = code;
    }
    double max = ref.values[ref.max_code];
    ref.overflow_at = max + (max - ref.values[ref.max_code - 1]) / 2;
    return ref;
}

/* Nearest-even by search: the largest value <= |x|, its successor, the
 * nearer of the two, ties to the even code; then the overflow rule. */
static uint32_t reference_nearest(const reference *ref, float x) {
    const format_case *fc = ref->fc;
    uint32_t nan_code = fc->encode(NAN, OB_ROUND_NEAREST_EVEN, 0); /* compared by value, see check_code */
    if (isnan(x)) return nan_code;
    uint32_t sign = signbit(x) ? sign_bit(fc) : 0;
    double a = fabs((double)x);
    uint32_t code;
    if (a >= ref->overflow_at) {
        code = fc->has_inf ? ref->max_code + 1 : ref->max_code;
    } else if (a >= ref->values[ref->max_code]) {
        code = ref->max_code;
    } else {
        uint32_t lo = 0, hi = ref->max_code; /* values[lo] <= a < values[hi] */
        while (hi - lo > 1) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (ref->values[mid] <= a) lo = mid;
            else hi = mid;
        }
        double below = a - ref->values[lo], above = ref->values[hi] - a;
        code = below < above ? lo : above < below ? hi : (lo % 2 == 0 ? lo : hi);
    }
    return sign | code;
}

/* Codes agree, or both are NaN codes. */
static bool same_code(const format_case *fc, uint32_t a, uint32_t b) {
    return a == b || (isnan(code_value(fc, a)) && isnan(code_value(fc, b)));
}

static int reported;
static void check_code(const format_case *fc, const char *what, float x, uint32_t got, uint32_t want) {
    bool ok = same_code(fc, got, want);
    if (!ok && reported++ < 20)
        printf("  %s %s: x = %a (%.9g): got 0x%x, want 0x%x\n", ob_format_name(fc->format), what, (double)x,
               (double)x, got, want);
    check(ok, what);
}

/* ---- every code ---- */

static void test_every_code(const format_case *fc) {
    int decode_wrong = 0, round_trip_wrong = 0, sr_moved = 0, nan_not_canonical = 0;
    uint32_t canonical_nan = fc->encode(NAN, OB_ROUND_NEAREST_EVEN, 0);
    const uint32_t random_bits[] = {0, 1, 0x80000000u, 0xffffffffu, 0x9e3779b9u};
    for (uint32_t code = 0; code < code_count(fc); code++) {
        double want = code_value(fc, code);
        float value = fc->decode(code);
        if (!(isnan(want) ? isnan(value) : (double)value == want && !signbit(value) == !signbit(want)))
            decode_wrong++;
        uint32_t back = fc->encode(value, OB_ROUND_NEAREST_EVEN, 0);
        if (isnan(want)) {
            nan_not_canonical += back != canonical_nan;
            continue;
        }
        round_trip_wrong += back != code;
        for (size_t r = 0; r < sizeof random_bits / sizeof random_bits[0]; r++)
            sr_moved += fc->encode(value, OB_ROUND_STOCHASTIC, random_bits[r]) != code;
    }
    printf("%s: %u codes: %d decoded wrong, %d not round-tripped, %d moved by SR, %d NaNs not canonical\n",
           ob_format_name(fc->format), code_count(fc), decode_wrong, round_trip_wrong, sr_moved, nan_not_canonical);
    check(decode_wrong == 0, "every code decodes to the value its fields say");
    check(round_trip_wrong == 0, "decode then encode (nearest-even) gives every non-NaN code back");
    check(sr_moved == 0, "stochastic rounding leaves every representable value unchanged");
    check(nan_not_canonical == 0, "every NaN code decodes to a NaN that encodes to the canonical NaN");
    check(isnan(code_value(fc, canonical_nan)), "the canonical NaN code is a NaN code");
}

/* ---- nearest-even against the reference ---- */

/* The format's landmarks, from the reference table. */
typedef struct {
    double min_sub, min_normal, max, top_step, one_ulp;
} landmarks;

static landmarks landmarks_of(const reference *ref) {
    const format_case *fc = ref->fc;
    double max = ref->values[ref->max_code];
    return (landmarks){ref->values[1], ref->values[1u << fc->mant_bits], max, max - ref->values[ref->max_code - 1],
                       ldexp(1.0, -fc->mant_bits)};
}

static void test_nearest_edges(const reference *ref) {
    const format_case *fc = ref->fc;
    landmarks l = landmarks_of(ref);
    const double edges[] = {
        0.0, l.min_sub, l.min_sub / 2, l.min_sub * 1.5, l.min_sub * 2.5, l.min_sub * 3.5, l.min_sub * 0.75,
        l.min_normal, l.min_normal - l.min_sub / 2, l.min_normal - l.min_sub, l.min_normal + l.min_sub,
        1.0, 1.0 + l.one_ulp / 2, 1.0 + 1.5 * l.one_ulp, 1.0 - l.one_ulp / 4, 3.0 + l.one_ulp,
        l.max, l.max - l.top_step / 2, l.max - l.top_step, l.max + l.top_step / 2, l.max + l.top_step / 4,
        l.max + l.top_step, 2 * l.max, FLT_MAX, FLT_MIN, FLT_TRUE_MIN, FLT_MIN - FLT_TRUE_MIN, 0x1.5p-133, 0x1p-134,
        INFINITY,
    };
    int not_exact = 0;
    for (size_t e = 0; e < sizeof edges / sizeof edges[0]; e++) {
        if (edges[e] > FLT_MAX && isfinite(edges[e])) continue; /* bf16's 2*max is no float */
        float x = (float)edges[e];
        not_exact += (double)x != edges[e];
        /* the edge itself, one fp32 step either side, and all of them negated */
        const float around[] = {x, nextafterf(x, 0.0f), nextafterf(x, INFINITY)};
        for (int a = 0; a < 3; a++)
            for (int s = 0; s < 2; s++) {
                float v = s ? -around[a] : around[a];
                check_code(fc, "nearest-even at an edge", v, fc->encode(v, OB_ROUND_NEAREST_EVEN, 0),
                           reference_nearest(ref, v));
            }
    }
    check(not_exact == 0, "every edge value is an exact float");
    float nan_value = NAN;
    check(isnan(fc->decode(fc->encode(nan_value, OB_ROUND_NEAREST_EVEN, 0))), "NaN encodes to a NaN");
    check(isnan(fc->decode(fc->encode(-nan_value, OB_ROUND_STOCHASTIC, 123))), "-NaN encodes to a NaN (SR)");
    check(signbit(fc->decode(fc->encode(-0.0f, OB_ROUND_NEAREST_EVEN, 0))), "-0 stays -0");
    check(signbit(fc->decode(fc->encode(-(float)(l.min_sub / 4), OB_ROUND_NEAREST_EVEN, 0))),
          "a negative value that underflows gives -0");
    check(fc->decode(fc->encode((float)(l.min_sub / 2), OB_ROUND_NEAREST_EVEN, 0)) == 0.0f,
          "half the smallest subnormal is a tie that goes to 0");
    float over = fc->decode(fc->encode((float)(l.max + l.top_step / 2), OB_ROUND_NEAREST_EVEN, 0));
    check(fc->has_inf ? isinf(over) : over == (float)l.max, "max + half a step: inf, or max for e4m3");
    check(fc->decode(fc->encode(INFINITY, OB_ROUND_NEAREST_EVEN, 0)) == (fc->has_inf ? INFINITY : (float)l.max),
          "inf stays inf, or saturates for e4m3");
}

/* Uniform over the format's binades (and a few beyond), random sign and
 * mantissa: exponent fields from below the smallest subnormal to above max,
 * fp32 subnormals included. */
static float random_float_for(const format_case *fc, const ob_rng_stream *stream, uint64_t i) {
    uint32_t block[4];
    ob_rng_block(stream, i, block);
    int lowest = 127 + 1 - fc->bias - fc->mant_bits - 3, highest = 127 + (1 << fc->exp_bits) - fc->bias + 1;
    if (lowest < 0) lowest = 0;
    if (highest > 254) highest = 254;
    uint32_t exp_field = (uint32_t)lowest + block[1] % (uint32_t)(highest - lowest + 1);
    return float_of((block[0] & 0x80000000u) | (exp_field << 23) | (block[2] & 0x7fffffu));
}

static void test_nearest_random(const reference *ref) {
    const format_case *fc = ref->fc;
    ob_rng_stream stream = ob_rng_stream_make(11, OB_RNG_TEST, 0, (uint64_t)fc->format);
    int wrong = 0;
    for (int64_t i = 0; i < RANDOM_VALUES; i++) {
        float x = random_float_for(fc, &stream, (uint64_t)i);
        uint32_t got = fc->encode(x, OB_ROUND_NEAREST_EVEN, 0), want = reference_nearest(ref, x);
        if (!same_code(fc, got, want)) {
            wrong++;
            check_code(fc, "nearest-even on a random value", x, got, want);
        }
    }
    printf("%s: %d random values: %d differ from the reference\n", ob_format_name(fc->format), RANDOM_VALUES, wrong);
    check(wrong == 0, "nearest-even matches the reference on random values");
}

#ifdef __FLT16_MANT_DIG__
/* The compiler's _Float16 conversions, a second reference for fp16. */
static uint32_t compiler_fp16(float x) {
    _Float16 h = (_Float16)x;
    uint16_t code;
    memcpy(&code, &h, sizeof code);
    return code;
}

static void test_fp16_against_compiler(const format_case *fc) {
    int wrong_decode = 0, wrong_encode = 0;
    for (uint32_t code = 0; code < 65536; code++) {
        uint16_t c = (uint16_t)code;
        _Float16 h;
        memcpy(&h, &c, sizeof h);
        wrong_decode += !same_float((float)h, ob_fp16_to_float(c));
    }
    ob_rng_stream stream = ob_rng_stream_make(12, OB_RNG_TEST, 0, 0);
    for (int64_t i = 0; i < RANDOM_VALUES; i++) {
        float x = random_float_for(fc, &stream, (uint64_t)i);
        wrong_encode += !same_code(fc, ob_fp16_from_float(x, OB_ROUND_NEAREST_EVEN, 0), compiler_fp16(x));
    }
    printf("fp16 vs _Float16: %d of 65536 decodes and %d of %d encodes differ\n", wrong_decode, wrong_encode,
           RANDOM_VALUES);
    check(wrong_decode == 0, "fp16 decode matches _Float16");
    check(wrong_encode == 0, "fp16 nearest-even matches _Float16");
}
#endif

/* ---- stochastic rounding ---- */

/* SR_DRAWS roundings of x, which lies between lo and hi (hi may be inf):
 * every result is lo or hi, the fraction that went to hi is
 * (|x| - lo) / (hi - lo), and (for finite hi) the mean is x, both within
 * SIGMAS standard errors. */
static void check_unbiased(const format_case *fc, const char *what, float x, double lo, double hi, double p) {
    ob_rng_stream stream = ob_rng_stream_make(21, OB_RNG_STOCHASTIC_ROUNDING, 0, 0);
    int64_t up = 0, other = 0;
    double sum = 0;
    for (int64_t i = 0; i < SR_DRAWS; i++) {
        double v = fc->decode(fc->encode(x, OB_ROUND_STOCHASTIC, ob_rng_u32(&stream, (uint64_t)i)));
        up += v == hi;
        other += v != hi && v != lo;
        sum += v;
    }
    double fraction = (double)up / SR_DRAWS, fraction_se = sqrt(p * (1 - p) / SR_DRAWS);
    bool fraction_ok = fabs(fraction - p) <= SIGMAS * fraction_se + 1.0 / SR_DRAWS;
    bool mean_ok = true;
    if (isfinite(hi)) {
        double mean = sum / SR_DRAWS, se = fabs(hi - lo) * fraction_se;
        mean_ok = fabs(mean - x) <= SIGMAS * se + 1e-12 * fabs(x);
        if (!mean_ok) printf("  %s %s: mean %.12g, x %.12g, se %.3g\n", ob_format_name(fc->format), what, mean, x, se);
    }
    if (!fraction_ok || other)
        printf("  %s %s: %.6f rounded up, want %.6f; %lld neither neighbour\n", ob_format_name(fc->format), what,
               fraction, p, (long long)other);
    check(other == 0, "stochastic rounding gives one of the two neighbours");
    check(fraction_ok, what);
    check(mean_ok, what);
}

/* x = lo + frac * (hi - lo) as an fp32 (then p from the fp32 actually used). */
static void check_between(const format_case *fc, const char *what, double lo, double hi, double frac, bool negate) {
    float x = (float)(lo + frac * (hi - lo));
    double p = ((double)x - lo) / (hi - lo);
    check_unbiased(fc, what, negate ? -x : x, negate ? -lo : lo, negate ? -hi : hi, p);
}

/* The rounding rule itself, exactly: x goes up iff its random bits are
 * below T = floor(2^32 (|x| - lo) / (hi - lo)), so T - 1 rounds up and T
 * rounds down (T = 0: never up). hi - lo is a power of two and every value
 * here is dyadic, so T is exact in double. */
static void check_threshold(const format_case *fc, const char *what, float x, double lo, double hi) {
    double threshold = floor(ldexp((fabs((double)x) - lo) / (hi - lo), 32));
    uint32_t sign = signbit(x) ? sign_bit(fc) : 0;
    uint32_t lo_code = fc->encode((float)lo, OB_ROUND_NEAREST_EVEN, 0) | sign;
    uint32_t hi_code = fc->encode((float)hi, OB_ROUND_NEAREST_EVEN, 0) | sign;
    bool ok = fc->encode(x, OB_ROUND_STOCHASTIC, (uint32_t)threshold) == (threshold > 0xffffffffu ? hi_code : lo_code);
    if (threshold > 0) ok &= fc->encode(x, OB_ROUND_STOCHASTIC, (uint32_t)(threshold - 1)) == hi_code;
    if (!ok) printf("  %s %s: x = %a, threshold %.0f\n", ob_format_name(fc->format), what, (double)x, threshold);
    check(ok, what);
}

static void test_stochastic_thresholds(const reference *ref) {
    const format_case *fc = ref->fc;
    landmarks l = landmarks_of(ref);
    double step = l.one_ulp;
    check_threshold(fc, "SR threshold: normal", (float)(1.0 + step * 0x0.c0ffeep0), 1.0, 1.0 + step);
    check_threshold(fc, "SR threshold: negative", (float)-(1.0 + step * 0x0.3p0), 1.0, 1.0 + step);
    check_threshold(fc, "SR threshold: subnormal", (float)(l.min_sub * 0x5.5p0), 5 * l.min_sub, 6 * l.min_sub);
    check_threshold(fc, "SR threshold: 2^-16 of the smallest step", (float)ldexp(l.min_sub, -16), 0.0, l.min_sub);
    check_threshold(fc, "SR threshold: 2^-40 of the smallest step (none)", (float)ldexp(l.min_sub, -40), 0.0,
                    l.min_sub);
    check_threshold(fc, "SR threshold: an fp32 subnormal", FLT_TRUE_MIN * 3, 0.0, l.min_sub);
}

static void test_stochastic(const reference *ref) {
    const format_case *fc = ref->fc;
    landmarks l = landmarks_of(ref);
    check_between(fc, "SR unbiased: normal", 1.0, 1.0 + l.one_ulp, 0.3, false);
    check_between(fc, "SR unbiased: normal, negative", 2.0, 2.0 + 2 * l.one_ulp, 0.71, true);
    check_between(fc, "SR unbiased: subnormal", 2 * l.min_sub, 3 * l.min_sub, 0.7, false);
    check_between(fc, "SR unbiased: below the smallest subnormal", 0.0, l.min_sub, 0.1, true);
    check_between(fc, "SR unbiased: below max", l.max - l.top_step, l.max, 0.55, false);
    float beyond = (float)(l.max + l.top_step / 4);
    if (fc->has_inf) {
        check_unbiased(fc, "SR between max and inf: inf with (|x| - max) / step", beyond, l.max, INFINITY,
                       0.25);
    } else {
        bool saturated = true;
        for (uint32_t r = 0; r < 4096; r++)
            saturated &= fc->decode(fc->encode(beyond, OB_ROUND_STOCHASTIC, r * 1048573u)) == (float)l.max;
        check(saturated, "e4m3 SR above max saturates");
    }
    check(fc->decode(fc->encode((float)(l.max + 2 * l.top_step), OB_ROUND_STOCHASTIC, 0)) ==
              (fc->has_inf ? INFINITY : (float)l.max),
          "SR at max + 2 steps: inf, or max for e4m3");

    /* reproducible, and a different step draws differently */
    ob_rng_stream stream = ob_rng_stream_make(5, OB_RNG_STOCHASTIC_ROUNDING, 0, 7);
    ob_rng_stream next_step = ob_rng_stream_make(5, OB_RNG_STOCHASTIC_ROUNDING, 0, 8);
    float x = (float)(1.0 + 0.5 * l.one_ulp + l.one_ulp / 8);
    int same = 0, differ = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        uint32_t a = fc->encode(x, OB_ROUND_STOCHASTIC, ob_rng_u32(&stream, i));
        same += a == fc->encode(x, OB_ROUND_STOCHASTIC, ob_rng_u32(&stream, i));
        differ += a != fc->encode(x, OB_ROUND_STOCHASTIC, ob_rng_u32(&next_step, i));
    }
    check(same == 1000, "the same stream and index round the same way");
    check(differ > 300, "another step draws differently");
}

/* ---- arrays ---- */

/* Random values across the format's range with the special values mixed in. */
static float *array_input(const format_case *fc, int64_t n) {
    static const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, FLT_TRUE_MIN, -FLT_MIN, FLT_MAX};
    const int special_count = (int)(sizeof specials / sizeof specials[0]);
    ob_rng_stream stream = ob_rng_stream_make(31, OB_RNG_TEST, 0, 0);
    float *in = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        in[i] = i % 97 < special_count ? specials[i % 97] : random_float_for(fc, &stream, (uint64_t)i);
    return in;
}

static bool arrays_equal(const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!same_float(a[i], b[i])) return false;
    return true;
}

static void test_array(const format_case *fc, ob_rounding mode) {
    const int64_t n = 50001;
    const uint64_t offset = 1000;
    ob_rng_stream stream = ob_rng_stream_make(41, OB_RNG_STOCHASTIC_ROUNDING, 0, 3);
    float *in = array_input(fc, n), *want = malloc(sizeof(float) * (size_t)n);
    float *one_thread = malloc(sizeof(float) * (size_t)n), *two_threads = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        want[i] = ob_format_round(in[i], fc->format, mode, ob_rng_word(&stream, offset + (uint64_t)i));
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    ob_format_round_array(in, one_thread, n, fc->format, mode, &stream, offset, NULL);
    omp_set_num_threads(2);
    ob_format_round_array(in, two_threads, n, fc->format, mode, &stream, offset, NULL);
    ob_round_stats stats;
    memcpy(two_threads, in, sizeof(float) * (size_t)n);
    ob_format_round_array(two_threads, two_threads, n, fc->format, mode, &stream, offset, &stats);
    omp_set_num_threads(threads);
    check(arrays_equal(one_thread, want, n), "the array equals ob_format_round element-wise");
    check(arrays_equal(two_threads, want, n), "in place, 2 threads, with counts: the same values");
    int decode_differs = 0;
    for (int64_t i = 0; i < n; i++)
        decode_differs += !same_float(want[i], fc->decode(fc->encode(in[i], mode,
                                                                     ob_rng_word(&stream, offset + (uint64_t)i))));
    check(decode_differs == 0, "ob_format_round is decode(encode(x))");
    free(in);
    free(want);
    free(one_thread);
    free(two_threads);
}

static void check_stats(const char *what, const float *values, int64_t n, ob_format f, ob_rounding mode,
                        ob_round_stats want) {
    ob_rng_stream stream = ob_rng_stream_make(1, OB_RNG_STOCHASTIC_ROUNDING, 0, 0);
    float out[32];
    ob_round_stats got = {-1, -1, -1};
    ob_format_round_array(values, out, n, f, mode, &stream, 0, &got);
    bool ok = got.nonzero == want.nonzero && got.underflow == want.underflow && got.overflow == want.overflow;
    if (!ok)
        printf("  %s: nonzero %lld underflow %lld overflow %lld, want %lld %lld %lld\n", what, (long long)got.nonzero,
               (long long)got.underflow, (long long)got.overflow, (long long)want.nonzero, (long long)want.underflow,
               (long long)want.overflow);
    check(ok, what);
}

static void test_stats(void) {
    /* fp16: 9 finite nonzero values (inf and NaN are not finite, 0 and -0
     * not nonzero); 1e-9 and -1e-9 underflow; 3e-8 > 2^-25 rounds up to
     * 2^-24; 65519 < 65520 rounds to max; 65520, 1e5 and -7e4 overflow. */
    const float fp16_values[] = {0.0f, -0.0f, 1.0f, 1e-9f, -1e-9f, 3e-8f, 65504.0f, 65519.0f,
                                 65520.0f, 1e5f, -7e4f, INFINITY, NAN};
    const int64_t fp16_n = (int64_t)(sizeof fp16_values / sizeof fp16_values[0]);
    check_stats("fp16 counts, nearest-even", fp16_values, fp16_n, OB_FORMAT_FP16, OB_ROUND_NEAREST_EVEN,
                (ob_round_stats){9, 2, 3});
    /* SR: 1e-30 is under 2^-32 of fp16's smallest step, so it never rounds
     * up; 1e5 is past max + a step, so it always goes to inf; 65519 would
     * go either way, so it is left out. */
    const float sr_values[] = {1e-30f, -1e-30f, 1e5f, 0.0f, 1.0f};
    check_stats("fp16 counts, stochastic", sr_values, 5, OB_FORMAT_FP16, OB_ROUND_STOCHASTIC,
                (ob_round_stats){4, 2, 1});
    /* e4m3: 449 rounds to 448; 464 is a tie that goes to 448 (even); 465
     * rounds to 480 and is clamped; 1e-4 < 2^-10 underflows. */
    const float e4m3_values[] = {449.0f, 464.0f, 465.0f, 1e-4f, -1000.0f, INFINITY, -0.0f};
    check_stats("e4m3 counts", e4m3_values, 7, OB_FORMAT_E4M3, OB_ROUND_NEAREST_EVEN, (ob_round_stats){5, 1, 2});
    check_stats("fp32 counts: nonzero only", fp16_values, fp16_n, OB_FORMAT_FP32, OB_ROUND_NEAREST_EVEN,
                (ob_round_stats){9, 0, 0});
    check_stats("no values, no counts", fp16_values, 0, OB_FORMAT_BF16, OB_ROUND_NEAREST_EVEN,
                (ob_round_stats){0, 0, 0});
}

/* Throughput, printed, not asserted: the machine is shared. */
static void report_speed(ob_format f, ob_rounding mode, bool count, int64_t n, int reps) {
    ob_rng_stream stream = ob_rng_stream_make(1, OB_RNG_STOCHASTIC_ROUNDING, 0, 0);
    float *in = malloc(sizeof(float) * (size_t)n), *out = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) in[i] = (float)((i % 20011) - 10005) * 0.37f;
    ob_round_stats stats;
    ob_format_round_array(in, out, n, f, mode, &stream, 0, count ? &stats : NULL); /* warm-up */
    double start = omp_get_wtime();
    for (int r = 0; r < reps; r++) ob_format_round_array(in, out, n, f, mode, &stream, 0, count ? &stats : NULL);
    double seconds = omp_get_wtime() - start;
    printf("%s %s%s: %.0f MB/s of fp32 input (%d threads)\n", ob_format_name(f),
           mode == OB_ROUND_STOCHASTIC ? "stochastic" : "nearest-even", count ? " with counts" : "",
           (double)n * sizeof(float) * reps / seconds / 1e6, omp_get_max_threads());
    free(in);
    free(out);
}

/* ---- integer grids ---- */

static void test_int_grid(void) {
    const ob_int_grid grid = {3, 0.5f, -1.0f}; /* levels -1, -0.5, ..., 2.5 */
    struct {
        float x, want;
    } nearest[] = {{0.3f, 0.5f},   {-0.75f, -1.0f}, {-0.25f, 0.0f}, {0.25f, 0.0f}, {0.75f, 1.0f},
                   {2.4f, 2.5f},   {-5.0f, -1.0f},  {10.0f, 2.5f},  {INFINITY, 2.5f}, {-INFINITY, -1.0f}};
    for (size_t i = 0; i < sizeof nearest / sizeof nearest[0]; i++) {
        float got = ob_int_grid_round(nearest[i].x, &grid, OB_ROUND_NEAREST_EVEN, 0);
        if (got != nearest[i].want) printf("  grid: %g -> %g, want %g\n", nearest[i].x, got, nearest[i].want);
        check(got == nearest[i].want, "grid nearest-even: levels, ties to the even level, clamping");
    }
    check(isnan(ob_int_grid_round(NAN, &grid, OB_ROUND_STOCHASTIC, 5)), "grid: NaN stays NaN");
    int moved = 0;
    for (int q = 0; q < 8; q++) {
        float level = -1.0f + 0.5f * (float)q;
        moved += ob_int_grid_round(level, &grid, OB_ROUND_NEAREST_EVEN, 0) != level;
        moved += ob_int_grid_round(level, &grid, OB_ROUND_STOCHASTIC, 0) != level;
        moved += ob_int_grid_round(level, &grid, OB_ROUND_STOCHASTIC, 0xffffffffu) != level;
    }
    check(moved == 0, "grid: every level stays where it is");

    ob_rng_stream stream = ob_rng_stream_make(3, OB_RNG_STOCHASTIC_ROUNDING, 0, 0);
    const float x = 0.3f;
    double p = ((double)x - 0.0) / 0.5, sum = 0;
    int other = 0;
    for (int64_t i = 0; i < SR_DRAWS; i++) {
        float v = ob_int_grid_round(x, &grid, OB_ROUND_STOCHASTIC, ob_rng_u32(&stream, (uint64_t)i));
        other += v != 0.0f && v != 0.5f;
        sum += v;
    }
    double se = 0.5 * sqrt(p * (1 - p) / SR_DRAWS);
    check(other == 0, "grid SR: one of the two neighbouring levels");
    check(fabs(sum / SR_DRAWS - x) <= SIGMAS * se, "grid SR: unbiased");
    /* exactly: 0.5 + 0x0.3p0 of a step has threshold 0x30000000 */
    const float between = 0.5f + 0.5f * 0x0.3p0f;
    check(ob_int_grid_round(between, &grid, OB_ROUND_STOCHASTIC, 0x2fffffffu) == 1.0f &&
              ob_int_grid_round(between, &grid, OB_ROUND_STOCHASTIC, 0x30000000u) == 0.5f,
          "grid SR: up exactly when the random bits are below floor(2^32 * fraction)");

    char err[128] = "";
    const ob_int_grid bad[] = {{0, 1.0f, 0.0f}, {25, 1.0f, 0.0f}, {8, 0.0f, 0.0f}, {8, NAN, 0.0f},
                               {8, INFINITY, 0.0f}, {8, 1.0f, NAN}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        check(ob_int_grid_check(&bad[i], err, sizeof err) == 2 && strstr(err, "integer grid"),
              "a bad grid is refused with a message");
    }
    check(ob_int_grid_check(&grid, err, sizeof err) == 0, "a good grid passes");
}

/* The array form (FQT's hot loop) against the element form, value by
 * value and bit for bit: in and beyond the grid, exact levels and ties,
 * the specials, both modes, and in place. */
static void test_int_grid_array(void) {
    const ob_int_grid grid = {5, 0.125f, -1.5f}; /* levels -1.5 .. 2.375 */
    enum { N = 4099 };
    static float in[N], out[N], in_place[N], want[N];
    static uint32_t random[N];
    ob_rng_stream stream = ob_rng_stream_make(7, OB_RNG_STOCHASTIC_ROUNDING, 0, 0);
    for (int i = 0; i < N; i++) {
        in[i] = -3.0f + 6.0f * ob_rng_uniform(&stream, (uint64_t)i);
        random[i] = ob_rng_u32(&stream, (uint64_t)(N + i));
    }
    const float specials[] = {NAN, INFINITY, -INFINITY, -0.0f, -1.5f, 2.375f, -1.4375f, 0.0625f, 1e-40f};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) in[17 * i] = specials[i];
    for (int mode = OB_ROUND_NEAREST_EVEN; mode <= OB_ROUND_STOCHASTIC; mode++) {
        const uint32_t *bits = mode == OB_ROUND_STOCHASTIC ? random : NULL;
        for (int i = 0; i < N; i++) want[i] = ob_int_grid_round(in[i], &grid, (ob_rounding)mode, bits ? bits[i] : 0);
        ob_int_grid_round_array(in, out, N, &grid, (ob_rounding)mode, bits);
        memcpy(in_place, in, sizeof in);
        ob_int_grid_round_array(in_place, in_place, N, &grid, (ob_rounding)mode, bits);
        int differ = 0;
        for (int i = 0; i < N; i++) {
            differ += memcmp(&out[i], &want[i], sizeof(float)) != 0;
            differ += memcmp(&in_place[i], &want[i], sizeof(float)) != 0;
        }
        if (differ) printf("  grid array, mode %d: %d values differ from the element form\n", mode, differ);
        check(differ == 0, "grid array: bit for bit the element form, out of place and in place");
    }
}

/* ---- names and limits ---- */

static void test_names_and_limits(void) {
    for (int f = 0; f < OB_FORMAT_COUNT; f++) {
        ob_format parsed = OB_FORMAT_COUNT;
        check(ob_format_parse(ob_format_name((ob_format)f), &parsed) == 0 && parsed == (ob_format)f,
              "every format's name parses back to it");
    }
    ob_format unused;
    check(ob_format_parse("fp8", &unused) == 2 && ob_format_parse(NULL, &unused) == 2, "unknown names are refused");
    check(strcmp(ob_format_name(OB_FORMAT_COUNT), "unknown") == 0, "an out-of-range format is named unknown");
    check(ob_format_max(OB_FORMAT_FP16) == 65504 && ob_format_max(OB_FORMAT_E4M3) == 448 &&
              ob_format_max(OB_FORMAT_E5M2) == 57344 && ob_format_max(OB_FORMAT_BF16) == 0x1.fep127 &&
              ob_format_max(OB_FORMAT_FP32) == FLT_MAX,
          "largest finite values");
    check(ob_format_min_normal(OB_FORMAT_FP16) == 0x1p-14 && ob_format_min_normal(OB_FORMAT_BF16) == 0x1p-126 &&
              ob_format_min_normal(OB_FORMAT_E4M3) == 0x1p-6 && ob_format_min_normal(OB_FORMAT_E5M2) == 0x1p-14,
          "smallest normals");
    check(ob_format_min_subnormal(OB_FORMAT_FP16) == 0x1p-24 && ob_format_min_subnormal(OB_FORMAT_BF16) == 0x1p-133 &&
              ob_format_min_subnormal(OB_FORMAT_E4M3) == 0x1p-9 &&
              ob_format_min_subnormal(OB_FORMAT_E5M2) == 0x1p-16 &&
              ob_format_min_subnormal(OB_FORMAT_FP32) == FLT_TRUE_MIN,
          "smallest subnormals");
    check(same_float(ob_format_round(-0.1f, OB_FORMAT_FP32, OB_ROUND_STOCHASTIC, 99), -0.1f),
          "fp32 rounding is the identity");
}

int main(void) {
    test_names_and_limits();
    for (int i = 0; i < FORMAT_COUNT; i++) {
        const format_case *fc = &formats[i];
        reference ref = reference_new(fc);
        test_every_code(fc);
        test_nearest_edges(&ref);
        test_nearest_random(&ref);
        test_stochastic(&ref);
        test_stochastic_thresholds(&ref);
        test_array(fc, OB_ROUND_NEAREST_EVEN);
        test_array(fc, OB_ROUND_STOCHASTIC);
        free(ref.values);
    }
#ifdef __FLT16_MANT_DIG__
    test_fp16_against_compiler(&formats[0]);
#else
    printf("no _Float16 on this compiler: fp16 checked against the reference table only\n");
#endif
    test_stats();
    test_int_grid();
    test_int_grid_array();
    report_speed(OB_FORMAT_FP16, OB_ROUND_NEAREST_EVEN, false, 1 << 23, 5);
    report_speed(OB_FORMAT_FP16, OB_ROUND_NEAREST_EVEN, true, 1 << 23, 5);
    report_speed(OB_FORMAT_E4M3, OB_ROUND_NEAREST_EVEN, false, 1 << 23, 5);
    report_speed(OB_FORMAT_FP16, OB_ROUND_STOCHASTIC, false, 1 << 21, 2);
    return report_checks();
}
