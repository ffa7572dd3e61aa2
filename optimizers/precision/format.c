#include "optimizers/precision/ob_format.h"
#include "optimizers/precision/ob_name_table.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* fp32 fields. */
#define FP32_MANT_BITS 23
#define FP32_BIAS 127
#define FP32_SIGN 0x80000000u
#define FP32_MANT_MASK 0x007fffffu
#define FP32_HIDDEN_BIT 0x00800000u
#define FP32_INF 0x7f800000u
#define FP32_QUIET_NAN 0x7fc00000u

/* A narrow binary floating-point format, as the generic rounding sees it:
 * a magnitude code is (exponent field << mant_bits) | mantissa, the sign
 * is the top bit of `width`, and exponent field 0 holds the subnormals
 * (mantissa * subnormal_quantum). */
typedef struct {
    int mant_bits;
    int bias;
    int width;
    uint32_t max_code; /* largest finite magnitude; max_code + 1 is inf unless the format saturates */
    uint32_t nan_code; /* canonical quiet NaN */
    bool saturates;    /* no inf: overflow clamps to max */
    float subnormal_quantum;
    float overflow_value; /* what overflow gives: inf, or max where there is none */
} ob_float_spec;

static const ob_float_spec fp16_spec = {10, 15, 16, 0x7bff, 0x7e00, false, 0x1p-24f, INFINITY};
static const ob_float_spec bf16_spec = {7, 127, 16, 0x7f7f, 0x7fc0, false, 0x1p-133f, INFINITY};
static const ob_float_spec e4m3_spec = {3, 7, 8, 0x7e, 0x7f, true, 0x1p-9f, 448.0f};
static const ob_float_spec e5m2_spec = {2, 15, 8, 0x7b, 0x7e, false, 0x1p-16f, INFINITY};

static const char *const format_names[OB_FORMAT_COUNT] = {"fp32", "fp16", "bf16", "e4m3", "e5m2"};

/* NULL for fp32 (and anything outside the enum): the identity. */
static const ob_float_spec *spec_of(ob_format f) {
    switch (f) {
    case OB_FORMAT_FP16: return &fp16_spec;
    case OB_FORMAT_BF16: return &bf16_spec;
    case OB_FORMAT_E4M3: return &e4m3_spec;
    case OB_FORMAT_E5M2: return &e5m2_spec;
    default: return NULL;
    }
}

static inline uint32_t float_bits(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

static inline float bits_float(uint32_t bits) {
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* condition ? a : b for bit patterns, as masks: GCC sinks the operands of
 * `?:` into branches, and a float op (possibly trapping) inside a branch
 * keeps the loops around these helpers from vectorising. */
static inline uint32_t select_bits(bool condition, uint32_t a, uint32_t b) {
    uint32_t mask = -(uint32_t)condition;
    return (a & mask) | (b & ~mask);
}

/* The magnitude code of |x| before any overflow handling (so it may exceed
 * max_code). |x| = significand * 2^(exponent - 23) with a 24-bit
 * significand (fp32 subnormals: no hidden bit, exponent -126). The format
 * holds multiples of 2^(target - M), target = max(exponent, 1 - bias), so
 * the low `drop` bits of the significand fall below its quantum and are
 * rounded away; the quanta left, added to the code of 2^target's binade,
 * give the code, a carry into the next binade included. Shifts are
 * clamped because drop reaches ~150 for tiny inputs: any drop >= 25 leaves
 * no quanta, and only the stochastic threshold still needs the exact drop. */
static inline uint32_t magnitude_code(const ob_float_spec *spec, uint32_t abs_bits, bool stochastic,
                                     uint32_t random_bits) {
    int32_t exp_field = (int32_t)(abs_bits >> FP32_MANT_BITS);
    uint32_t significand = (abs_bits & FP32_MANT_MASK) | (exp_field ? FP32_HIDDEN_BIT : 0);
    int32_t exponent = (exp_field ? exp_field : 1) - FP32_BIAS;
    int32_t min_exponent = 1 - spec->bias;
    int32_t target = exponent > min_exponent ? exponent : min_exponent;
    int32_t drop = FP32_MANT_BITS - spec->mant_bits + (target - exponent);
    int32_t shift = drop < 31 ? drop : 31;
    uint32_t quanta = significand >> shift;
    uint32_t remainder = significand & ((1u << shift) - 1);
    uint32_t round_up;
    if (stochastic) {
        /* floor(2^32 * remainder / 2^drop): the probability of rounding up, in 32 bits. */
        uint32_t threshold = (uint32_t)(((uint64_t)remainder << 32) >> (drop < 63 ? drop : 63));
        round_up = random_bits < threshold;
    } else {
        uint32_t half = 1u << (shift - 1);
        round_up = (remainder > half) | ((remainder == half) & quanta);
    }
    return ((uint32_t)(target + spec->bias - 1) << spec->mant_bits) + quanta + round_up;
}

/* fp32 bits of a finite magnitude code (<= max_code). */
static inline uint32_t finite_magnitude_bits(const ob_float_spec *spec, uint32_t code) {
    uint32_t exp_field = code >> spec->mant_bits;
    uint32_t mantissa = code & ((1u << spec->mant_bits) - 1);
    uint32_t normal = ((exp_field + FP32_BIAS - (uint32_t)spec->bias) << FP32_MANT_BITS) |
                      (mantissa << (FP32_MANT_BITS - spec->mant_bits));
    /* mantissa < 2^10 converts exactly; as int32 in one vector instruction (AVX2 has no unsigned one) */
    uint32_t subnormal = float_bits((float)(int32_t)mantissa * spec->subnormal_quantum);
    return select_bits(exp_field != 0, normal, subnormal);
}

/* x rounded to the format, as an fp32 value: decode(encode(x)), written
 * without branches so that array loops vectorise. *overflowed says whether
 * a finite x rounded past max. */
static inline float round_element(const ob_float_spec *spec, float x, bool stochastic, uint32_t random_bits,
                                 bool *overflowed) {
    uint32_t bits = float_bits(x);
    uint32_t sign = bits & FP32_SIGN;
    uint32_t abs_bits = bits ^ sign;
    uint32_t code = magnitude_code(spec, abs_bits, stochastic, random_bits);
    bool over = code > spec->max_code;
    uint32_t magnitude = select_bits(over, float_bits(spec->overflow_value), finite_magnitude_bits(spec, code));
    *overflowed = over & (abs_bits < FP32_INF);
    return bits_float(select_bits(abs_bits > FP32_INF, FP32_QUIET_NAN, sign | magnitude));
}

static uint32_t encode(const ob_float_spec *spec, float x, ob_rounding mode, uint32_t random_bits) {
    uint32_t bits = float_bits(x);
    uint32_t abs_bits = bits & ~FP32_SIGN;
    if (abs_bits > FP32_INF) return spec->nan_code;
    uint32_t code = magnitude_code(spec, abs_bits, mode == OB_ROUND_STOCHASTIC, random_bits);
    if (code > spec->max_code) code = spec->saturates ? spec->max_code : spec->max_code + 1;
    return code | ((bits >> 31) << (spec->width - 1));
}

static float decode(const ob_float_spec *spec, uint32_t code) {
    uint32_t sign = (code >> (spec->width - 1)) << 31;
    uint32_t magnitude = code & ((1u << (spec->width - 1)) - 1);
    if (magnitude > spec->max_code) {
        bool is_inf = !spec->saturates && magnitude == spec->max_code + 1;
        return bits_float(is_inf ? (sign | FP32_INF) : FP32_QUIET_NAN);
    }
    return bits_float(sign | finite_magnitude_bits(spec, magnitude));
}

const char *ob_format_name(ob_format f) {
    return f >= 0 && f < OB_FORMAT_COUNT ? format_names[f] : "unknown";
}

int ob_format_parse(const char *name, ob_format *out) {
    int f = ob_name_table_find(format_names, OB_FORMAT_COUNT, name);
    if (f < 0) return 2;
    *out = (ob_format)f;
    return 0;
}

/* The format's value of a magnitude code; fp32's own limits for fp32. */
static double format_limit(ob_format f, uint32_t code, double fp32_limit) {
    if (f == OB_FORMAT_FP32) return fp32_limit;
    const ob_float_spec *spec = spec_of(f);
    return spec ? decode(spec, code) : NAN;
}

double ob_format_max(ob_format f) {
    const ob_float_spec *spec = spec_of(f);
    return format_limit(f, spec ? spec->max_code : 0, FLT_MAX);
}

double ob_format_min_normal(ob_format f) {
    const ob_float_spec *spec = spec_of(f);
    return format_limit(f, spec ? 1u << spec->mant_bits : 0, FLT_MIN);
}

double ob_format_min_subnormal(ob_format f) { return format_limit(f, 1, FLT_TRUE_MIN); }

uint16_t ob_fp16_from_float(float x, ob_rounding mode, uint32_t random_bits) {
    return (uint16_t)encode(&fp16_spec, x, mode, random_bits);
}
float ob_fp16_to_float(uint16_t code) { return decode(&fp16_spec, code); }

uint16_t ob_bf16_from_float(float x, ob_rounding mode, uint32_t random_bits) {
    return (uint16_t)encode(&bf16_spec, x, mode, random_bits);
}
float ob_bf16_to_float(uint16_t code) { return decode(&bf16_spec, code); }

uint8_t ob_e4m3_from_float(float x, ob_rounding mode, uint32_t random_bits) {
    return (uint8_t)encode(&e4m3_spec, x, mode, random_bits);
}
float ob_e4m3_to_float(uint8_t code) { return decode(&e4m3_spec, code); }

uint8_t ob_e5m2_from_float(float x, ob_rounding mode, uint32_t random_bits) {
    return (uint8_t)encode(&e5m2_spec, x, mode, random_bits);
}
float ob_e5m2_to_float(uint8_t code) { return decode(&e5m2_spec, code); }

float ob_format_round(float x, ob_format f, ob_rounding mode, uint32_t random_bits) {
    const ob_float_spec *spec = spec_of(f);
    bool overflowed;
    return spec ? round_element(spec, x, mode == OB_ROUND_STOCHASTIC, random_bits, &overflowed) : x;
}

/* ---- arrays ---- */

/* A finite nonzero input is what the counts are out of. */
static inline bool counts_as_nonzero(float x) {
    uint32_t abs_bits = float_bits(x) & ~FP32_SIGN;
    return abs_bits != 0 && abs_bits < FP32_INF;
}

/* The hot path (every GEMM operand, every step): no counting, no random
 * bits, so the loop vectorises. */
static void round_nearest_array(const ob_float_spec *spec, const float *in, float *out, int64_t n) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) {
        bool overflowed;
        out[i] = round_element(spec, in[i], false, 0, &overflowed);
    }
}

/* Nearest-even with counts, still vectorised: the counts are sums of
 * per-element flags. */
static ob_round_stats round_nearest_array_counted(const ob_float_spec *spec, const float *in, float *out, int64_t n) {
    int64_t nonzero = 0, underflow = 0, overflow = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : nonzero, underflow, overflow)
    for (int64_t i = 0; i < n; i++) {
        float x = in[i];
        bool overflowed;
        float y = round_element(spec, x, false, 0, &overflowed);
        out[i] = y;
        bool counted = counts_as_nonzero(x);
        nonzero += counted;
        underflow += counted & (y == 0.0f);
        overflow += overflowed;
    }
    return (ob_round_stats){nonzero, underflow, overflow};
}

/* Stochastic rounding: drawing the random words dominates, so they come in
 * chunks (four per Philox block) and one scalar loop serves with and
 * without counts. Chunks are fixed by position, not by thread. */
#define RANDOM_CHUNK 1024
static ob_round_stats round_stochastic_array(const ob_float_spec *spec, const float *in, float *out, int64_t n,
                                             const ob_rng_stream *stream, uint64_t index_offset, bool count) {
    int64_t nonzero = 0, underflow = 0, overflow = 0;
#pragma omp parallel for schedule(static) reduction(+ : nonzero, underflow, overflow)
    for (int64_t start = 0; start < n; start += RANDOM_CHUNK) {
        uint32_t bits[RANDOM_CHUNK];
        int64_t length = n - start < RANDOM_CHUNK ? n - start : RANDOM_CHUNK;
        ob_rng_words(stream, index_offset + (uint64_t)start, length, bits);
        for (int64_t j = 0; j < length; j++) {
            float x = in[start + j];
            bool overflowed;
            float y = round_element(spec, x, true, bits[j], &overflowed);
            out[start + j] = y;
            if (count) {
                bool counted = counts_as_nonzero(x);
                nonzero += counted;
                underflow += counted & (y == 0.0f);
                overflow += overflowed;
            }
        }
    }
    return (ob_round_stats){nonzero, underflow, overflow};
}

/* fp32: a copy; only nonzero has anything to count. */
static ob_round_stats copy_array(const float *in, float *out, int64_t n, bool count) {
    if (out != in) memcpy(out, in, (size_t)n * sizeof *out);
    int64_t nonzero = 0;
    if (count) {
#pragma omp parallel for simd schedule(static) reduction(+ : nonzero)
        for (int64_t i = 0; i < n; i++) nonzero += counts_as_nonzero(in[i]);
    }
    return (ob_round_stats){nonzero, 0, 0};
}

void ob_format_round_array(const float *in, float *out, int64_t n, ob_format f, ob_rounding mode,
                           const ob_rng_stream *stream, uint64_t index_offset, ob_round_stats *stats) {
    const ob_float_spec *spec = spec_of(f);
    ob_round_stats counts;
    if (n <= 0) {
        counts = (ob_round_stats){0, 0, 0};
    } else if (!spec) {
        counts = copy_array(in, out, n, stats != NULL);
    } else if (mode == OB_ROUND_STOCHASTIC) {
        counts = round_stochastic_array(spec, in, out, n, stream, index_offset, stats != NULL);
    } else if (stats) {
        counts = round_nearest_array_counted(spec, in, out, n);
    } else {
        round_nearest_array(spec, in, out, n);
        return;
    }
    if (stats) *stats = counts;
}

/* ---- integer grids ---- */

/* A grid's constants in double, taken once per call or array. */
typedef struct {
    double scale, zero_point, top;
} grid_levels;

static grid_levels levels_of(const ob_int_grid *grid) {
    return (grid_levels){grid->scale, grid->zero_point, ldexp(1.0, grid->bits) - 1.0};
}

/* x in units of the grid step from the zero point, clamped into [0, top]
 * (NaN goes to 0; grid_value returns NaN for it). Written as the max/min
 * instructions' own selects, so that it vectorises. */
static inline double grid_position(float x, grid_levels g) {
    double t = ((double)x - g.zero_point) / g.scale;
    t = t > 0.0 ? t : 0.0;
    return t < g.top ? t : g.top;
}

/* The level of t: floor(t) plus one with the same rule as the float
 * formats - up when the random bits fall below floor(2^32 * frac), or to
 * the nearest with ties to even (nearbyint in the default rounding mode).
 * Both are branch-free, so the array loops below vectorise. */
static inline double stochastic_level(double t, uint32_t random_bits) {
    double lower = floor(t), threshold = floor((t - lower) * 0x1p32);
    return lower + ((double)random_bits < threshold ? 1.0 : 0.0);
}

static inline float grid_value(float x, double level, grid_levels g) {
    float value = (float)(level * g.scale + g.zero_point); /* computed before the select: a plain blend */
    return x != x ? x : value;
}

float ob_int_grid_round(float x, const ob_int_grid *grid, ob_rounding mode, uint32_t random_bits) {
    grid_levels g = levels_of(grid);
    double t = grid_position(x, g);
    return grid_value(x, mode == OB_ROUND_STOCHASTIC ? stochastic_level(t, random_bits) : nearbyint(t), g);
}

void ob_int_grid_round_array(const float *in, float *out, int64_t n, const ob_int_grid *grid, ob_rounding mode,
                             const uint32_t *random_bits) {
    grid_levels g = levels_of(grid);
    if (mode == OB_ROUND_STOCHASTIC) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) out[i] = grid_value(in[i], stochastic_level(grid_position(in[i], g), random_bits[i]), g);
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) out[i] = grid_value(in[i], nearbyint(grid_position(in[i], g)), g);
    }
}

int ob_int_grid_check(const ob_int_grid *grid, char *err, size_t err_len) {
    if (grid->bits < 1 || grid->bits > 24) {
        snprintf(err, err_len, "integer grid: bits %d, expected 1..24", grid->bits);
        return 2;
    }
    if (!(grid->scale > 0.0f) || !isfinite(grid->scale)) {
        snprintf(err, err_len, "integer grid: scale %g, expected finite and > 0", (double)grid->scale);
        return 2;
    }
    if (!isfinite(grid->zero_point)) {
        snprintf(err, err_len, "integer grid: zero point %g, expected finite", (double)grid->zero_point);
        return 2;
    }
    return 0;
}
