/* The array conversions to and from 2-byte codes
 * (optimizers/precision/ob_half_codes.h) against the generic per-element
 * rounding of ob_format.h, which test_format checks against independent
 * references:
 * - every one of the 65,536 codes of each dtype decodes to the reference
 *   value (NaN codes to a NaN) and encodes back to itself;
 * - 1,000,003 random fp32 bit patterns (every binade, subnormals, infinities,
 *   NaNs; an odd length so the tail after the 8-wide blocks is used) encode
 *   to the reference nearest-even code, a NaN to a NaN code;
 * - exact ties, the overflow threshold and every tail length 0..17;
 * - the same codes with 1 and 2 threads; throughput printed (not asserted). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ob_rng.h"
#include "optimizers/precision/ob_format.h"
#include "optimizers/precision/ob_half_codes.h"

#include "ob_check.h"

#define RANDOM_VALUES 1000003

static uint16_t reference_code(ob_dtype dtype, float x) {
    return dtype == OB_F16 ? ob_fp16_from_float(x, OB_ROUND_NEAREST_EVEN, 0)
                           : ob_bf16_from_float(x, OB_ROUND_NEAREST_EVEN, 0);
}

static float reference_value(ob_dtype dtype, uint16_t code) {
    return dtype == OB_F16 ? ob_fp16_to_float(code) : ob_bf16_to_float(code);
}

static bool is_nan_code(ob_dtype dtype, uint16_t code) { return isnan(reference_value(dtype, code)); }

/* got agrees with the reference: the same code, or both NaN. */
static bool code_agrees(ob_dtype dtype, float x, uint16_t got) {
    return isnan(x) ? is_nan_code(dtype, got) : got == reference_code(dtype, x);
}

static float float_of_bits(uint32_t bits) {
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static void test_every_code(ob_dtype dtype) {
    enum { CODES = 65536 };
    uint16_t *codes = malloc(CODES * sizeof *codes), *again = malloc(CODES * sizeof *again);
    float *values = malloc(CODES * sizeof *values);
    for (int c = 0; c < CODES; c++) codes[c] = (uint16_t)c;
    ob_half_decode(dtype, codes, values, CODES);
    ob_half_encode(dtype, values, again, CODES);
    int wrong_value = 0, wrong_code = 0;
    for (int c = 0; c < CODES; c++) {
        float want = reference_value(dtype, (uint16_t)c);
        bool value_ok = isnan(want) ? isnan(values[c]) : memcmp(&want, &values[c], sizeof want) == 0;
        wrong_value += !value_ok;
        wrong_code += isnan(want) ? !is_nan_code(dtype, again[c]) : again[c] != c;
    }
    printf("%s: every code: %d decode wrongly, %d do not encode back\n", ob_dtype_name(dtype), wrong_value,
           wrong_code);
    check(wrong_value == 0, "every code decodes to the reference value");
    check(wrong_code == 0, "every decoded code encodes back to itself");
    free(codes), free(again), free(values);
}

static void encode_random(ob_dtype dtype, int threads, float *values, uint16_t *codes, double *seconds) {
    omp_set_num_threads(threads);
    memset(codes, 0, RANDOM_VALUES * sizeof *codes); /* page faults out of the timing */
    double start = omp_get_wtime();
    ob_half_encode(dtype, values, codes, RANDOM_VALUES);
    *seconds = omp_get_wtime() - start;
}

static void test_random(ob_dtype dtype) {
    float *values = malloc(RANDOM_VALUES * sizeof *values);
    uint16_t *codes1 = malloc(RANDOM_VALUES * sizeof *codes1), *codes2 = malloc(RANDOM_VALUES * sizeof *codes2);
    ob_rng_stream stream = ob_rng_stream_make(31, OB_RNG_TEST, 0, (uint64_t)dtype);
    for (int64_t i = 0; i < RANDOM_VALUES; i++) values[i] = float_of_bits(ob_rng_u32(&stream, (uint64_t)i));
    double seconds1, seconds2;
    encode_random(dtype, 1, values, codes1, &seconds1);
    encode_random(dtype, 2, values, codes2, &seconds2);
    int64_t wrong = 0, nans = 0;
    for (int64_t i = 0; i < RANDOM_VALUES; i++) {
        wrong += !code_agrees(dtype, values[i], codes1[i]);
        nans += isnan(values[i]);
    }
    printf("%s: %d random bit patterns (%lld NaN): %lld differ from the reference; encode %.2f ns/value on 1 "
           "thread, %.2f on 2\n",
           ob_dtype_name(dtype), RANDOM_VALUES, (long long)nans, (long long)wrong, 1e9 * seconds1 / RANDOM_VALUES,
           1e9 * seconds2 / RANDOM_VALUES);
    check(wrong == 0, "random bit patterns encode to the reference nearest-even code");
    check(memcmp(codes1, codes2, RANDOM_VALUES * sizeof *codes1) == 0, "1 and 2 threads give the same codes");
    free(values), free(codes1), free(codes2);
}

/* Half-way between code and the next one up. */
static float tie_above(ob_dtype dtype, uint16_t code) {
    return (reference_value(dtype, code) + reference_value(dtype, code + 1)) / 2;
}

/* Ties between neighbouring codes (both parities, normal and subnormal), the largest finite
 * value, the half-way point above it (rounds to infinity), the largest
 * value below that (rounds to max), the smallest subnormal's half (ties to
 * zero) and zeros of both signs; each in every tail position 0..17. */
static void test_edges(ob_dtype dtype) {
    uint16_t max_code = dtype == OB_F16 ? 0x7bff : 0x7f7f, one = dtype == OB_F16 ? 0x3c00 : 0x3f80;
    float max = reference_value(dtype, max_code);
    float ulp_at_max = max - reference_value(dtype, max_code - 1);
    float tiny = reference_value(dtype, 1);
    float edges[] = {max,
                     max + ulp_at_max / 2,
                     nextafterf(max + ulp_at_max / 2, 0.0f),
                     tiny / 2,
                     nextafterf(tiny / 2, 1.0f),
                     0.0f,
                     -0.0f,
                     tie_above(dtype, one),
                     tie_above(dtype, one + 1),
                     -tie_above(dtype, 1),
                     tie_above(dtype, 2),
                     INFINITY,
                     -INFINITY};
    enum { EDGES = sizeof edges / sizeof edges[0], LONGEST = 17 };
    int wrong = 0;
    for (int e = 0; e < EDGES; e++)
        for (int length = 1; length <= LONGEST; length++) {
            float values[LONGEST];
            uint16_t codes[LONGEST];
            for (int i = 0; i < length; i++) values[i] = i == length - 1 ? edges[e] : 1.0f;
            ob_half_encode(dtype, values, codes, length);
            wrong += !code_agrees(dtype, edges[e], codes[length - 1]);
            float back;
            ob_half_decode(dtype, &codes[length - 1], &back, 1);
            wrong += back != reference_value(dtype, reference_code(dtype, edges[e]));
        }
    printf("%s: %d edge values x 17 positions: %d wrong\n", ob_dtype_name(dtype), (int)EDGES, wrong);
    check(wrong == 0, "ties, overflow, subnormal halves, zeros and infinities in every tail position");
    uint16_t untouched = 0xabcd;
    ob_half_encode(dtype, edges, &untouched, 0);
    check(untouched == 0xabcd, "a zero-length array writes nothing");
}

int main(void) {
    for (ob_dtype dtype = OB_F16; dtype <= OB_BF16; dtype++) {
        test_every_code(dtype);
        test_random(dtype);
        test_edges(dtype);
    }
    return report_checks();
}
