/* The FQT quantizers (optimizers/precision/ob_fqt.h):
 * - every gradient quantizer is unbiased: the mean of K quantizations (K
 *   steps of the stream) is within SIGMAS standard errors of the input,
 *   element by element, and the squared z-scores average about 1;
 * - on gradients with a few large rows the variance orders bhq < psq < ptq
 *   at 5 and 8 bits (printed), while on rows of one magnitude bhq is psq;
 * - in place, thread count, workspace bounds, non-finite values;
 * - several outputs at once are, bit for bit, separate calls (with and
 *   without bhq's reflection, output 0 in place or not);
 * - the forward quantizer: at most 2^bits values, within half a step;
 * - bad arguments: 2 and a message. */
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optimizers/precision/ob_fqt.h"

#include "ob_check.h"

#define SIGMAS 5.0
#define GUARD 16
#define GUARD_VALUE 12345.0f

static const ob_fqt_quantizer quantizers[] = {OB_FQT_PTQ, OB_FQT_PSQ, OB_FQT_BHQ};
#define QUANTIZER_COUNT 3

/* rows x cols of N(0, small^2), except the rows in `large` (N(0, 1)). */
static float *gradient(int64_t rows, int64_t cols, double small, const int64_t *large, int large_count,
                       uint64_t seed) {
    ob_rng_stream stream = ob_rng_stream_make(seed, OB_RNG_TEST, 0, 0);
    float *g = malloc(sizeof(float) * (size_t)(rows * cols));
    for (int64_t r = 0; r < rows; r++) {
        double sd = small;
        for (int l = 0; l < large_count; l++)
            if (large[l] == r) sd = 1.0;
        for (int64_t c = 0; c < cols; c++)
            g[r * cols + c] = (float)(sd * ob_rng_normal(&stream, (uint64_t)(r * cols + c)));
    }
    return g;
}

/* A workspace of the advertised size with a guard band behind it. */
static float *workspace_for(int64_t rows, int64_t cols, ob_fqt_quantizer q) {
    int64_t n = ob_fqt_workspace_floats(rows, cols, q);
    float *w = malloc(sizeof(float) * (size_t)(n + GUARD));
    for (int64_t i = 0; i < GUARD; i++) w[n + i] = GUARD_VALUE;
    return w;
}

static bool guard_intact(const float *w, int64_t rows, int64_t cols, ob_fqt_quantizer q) {
    int64_t n = ob_fqt_workspace_floats(rows, cols, q);
    for (int64_t i = 0; i < GUARD; i++)
        if (w[n + i] != GUARD_VALUE) return false;
    return true;
}

static int quantize(const float *in, float *out, int64_t rows, int64_t cols, int bits, ob_fqt_quantizer q,
                    uint64_t step, float *workspace) {
    ob_rng_stream stream = ob_rng_stream_make(77, OB_RNG_STOCHASTIC_ROUNDING, 0, step);
    char err[160] = "";
    int rc = ob_fqt_quantize_gradient(in, out, rows, cols, bits, q, &stream, workspace, err, sizeof err);
    if (rc) printf("  unexpected error: %s\n", err);
    return rc;
}

static bool same_bits(const float *a, const float *b, int64_t n) {
    return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

/* ---- unbiasedness ---- */

static void test_unbiased(ob_fqt_quantizer q) {
    const int64_t rows = 16, cols = 48, n = rows * cols;
    const int bits = 4, draws = 3000;
    const int64_t large[] = {3, 11};
    float *x = gradient(rows, cols, 1e-2, large, 2, 1);
    float *out = malloc(sizeof(float) * (size_t)n), *w = workspace_for(rows, cols, q);
    double *mean = calloc((size_t)n, sizeof(double)), *m2 = calloc((size_t)n, sizeof(double));
    int errors = 0;
    for (int k = 0; k < draws; k++) {
        errors += quantize(x, out, rows, cols, bits, q, (uint64_t)k, w) != 0;
        for (int64_t i = 0; i < n; i++) { /* Welford */
            double delta = out[i] - mean[i];
            mean[i] += delta / (k + 1);
            m2[i] += delta * (out[i] - mean[i]);
        }
    }
    double max_abs = 0;
    for (int64_t i = 0; i < n; i++) max_abs = fmax(max_abs, fabs(x[i]));
    /* fp32 rounding of the grid (and of bhq's reflections): far below one SE */
    double rounding = 1e-6 * max_abs;
    int outside = 0;
    double z2_sum = 0, worst_z = 0;
    for (int64_t r = 0; r < rows; r++) {
        /* An element lambda/draws of a step from a level moves about lambda
         * times in `draws`, and may not move at all: sample variance 0, bias
         * lambda step / draws. A variance floor of (lambda step / 5)^2 /
         * draws keeps that within 5 SE; lambda = 10 (no move then has
         * probability e^-10) and step^2 <= 4 x the row's largest variance
         * give 16 row_max / draws, still 13x below a typical element's SE. */
        double row_max = 0;
        for (int64_t c = 0; c < cols; c++) row_max = fmax(row_max, m2[r * cols + c] / (draws - 1));
        for (int64_t i = r * cols; i < (r + 1) * cols; i++) {
            double variance = m2[i] / (draws - 1) + 16 * row_max / draws;
            double se = sqrt(variance / draws), bias = fabs(mean[i] - x[i]);
            outside += bias > SIGMAS * se + rounding;
            double z = se > 0 ? bias / se : 0;
            z2_sum += z * z;
            worst_z = fmax(worst_z, z);
        }
    }
    double z2_mean = z2_sum / n, z2_tolerance = SIGMAS * sqrt(2.0 / n);
    printf("%s: mean of %d quantizations at %d bits: %d of %lld elements outside %.0f SE (worst %.2f SE), "
           "mean z^2 %.3f\n",
           ob_fqt_quantizer_name(q), draws, bits, outside, (long long)n, SIGMAS, worst_z, z2_mean);
    check(errors == 0, "the quantizer accepts its arguments");
    check(outside == 0, "unbiased: every element's mean is within 5 standard errors of the input");
    check(fabs(z2_mean - 1.0) <= z2_tolerance, "unbiased: mean squared z-score about 1");
    check(guard_intact(w, rows, cols, q), "the workspace is not written past its advertised size");
    free(x);
    free(out);
    free(w);
    free(mean);
    free(m2);
}

/* ---- variance ---- */

/* Mean squared error to the input, over `draws` quantizations. */
static double measured_variance(const float *x, int64_t rows, int64_t cols, int bits, ob_fqt_quantizer q, int draws) {
    int64_t n = rows * cols;
    float *out = malloc(sizeof(float) * (size_t)n), *w = workspace_for(rows, cols, q);
    double sum = 0;
    for (int k = 0; k < draws; k++) {
        quantize(x, out, rows, cols, bits, q, (uint64_t)k, w);
        for (int64_t i = 0; i < n; i++) sum += ((double)out[i] - x[i]) * ((double)out[i] - x[i]);
    }
    free(out);
    free(w);
    return sum / ((double)n * draws);
}

static void test_variance_order(void) {
    const int64_t rows = 64, cols = 256;
    const int64_t large[] = {5, 40};
    float *x = gradient(rows, cols, 1e-3, large, 2, 2);
    const int bit_widths[] = {5, 8};
    for (int b = 0; b < 2; b++) {
        double v[QUANTIZER_COUNT];
        for (int q = 0; q < QUANTIZER_COUNT; q++)
            v[q] = measured_variance(x, rows, cols, bit_widths[b], quantizers[q], 20);
        printf("64x256, 62 rows N(0,1e-6) + 2 rows N(0,1), %d bits: variance ptq %.3e  psq %.3e  bhq %.3e "
               "(ptq/psq %.1f, psq/bhq %.1f)\n",
               bit_widths[b], v[0], v[1], v[2], v[0] / v[1], v[1] / v[2]);
        check(v[2] < v[1] && v[1] < v[0], "variance orders bhq < psq < ptq on gradients with a few large rows");
    }
    free(x);
}

/* Rows of one magnitude: no grouping is modelled cheaper, so bhq is psq. */
static void test_bhq_without_outliers_is_psq(void) {
    const int64_t rows = 32, cols = 40, n = rows * cols;
    float *x = gradient(rows, cols, 1.0, NULL, 0, 3);
    float *psq = malloc(sizeof(float) * (size_t)n), *bhq = malloc(sizeof(float) * (size_t)n);
    float *w = workspace_for(rows, cols, OB_FQT_BHQ);
    quantize(x, psq, rows, cols, 6, OB_FQT_PSQ, 9, NULL);
    quantize(x, bhq, rows, cols, 6, OB_FQT_BHQ, 9, w);
    check(same_bits(psq, bhq, n), "bhq on rows of one magnitude equals psq");
    free(x);
    free(psq);
    free(bhq);
    free(w);
}

/* ---- in place, threads, non-finite values ---- */

static void test_in_place_and_threads(ob_fqt_quantizer q) {
    const int64_t rows = 24, cols = 300, n = rows * cols; /* 300 columns: two of bhq's column blocks */
    const int64_t large[] = {0, 17, 18};
    float *x = gradient(rows, cols, 1e-4, large, 3, 4);
    float *one = malloc(sizeof(float) * (size_t)n), *two = malloc(sizeof(float) * (size_t)n);
    float *w = workspace_for(rows, cols, q);
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    quantize(x, one, rows, cols, 5, q, 3, w);
    omp_set_num_threads(2);
    memcpy(two, x, sizeof(float) * (size_t)n);
    quantize(two, two, rows, cols, 5, q, 3, w);
    omp_set_num_threads(threads);
    check(same_bits(one, two, n), "in place and with 2 threads: the same bits as out of place with 1");
    float *again = malloc(sizeof(float) * (size_t)n);
    quantize(x, again, rows, cols, 5, q, 4, w);
    check(!same_bits(one, again, n), "another step draws another quantization");
    float *zeros = calloc((size_t)n, sizeof(float));
    quantize(zeros, again, rows, cols, 5, q, 3, w);
    check(same_bits(zeros, again, n), "a zero gradient stays zero");
    free(x);
    free(one);
    free(two);
    free(again);
    free(zeros);
    free(w);
}

/* The two FQT paths of one dy (8 and 5 bits, their own streams) in one
 * call against two calls; a gradient whose rows share one magnitude takes
 * bhq's psq fallback, one with large rows its reflection. */
static void test_outputs_are_separate_calls(ob_fqt_quantizer q) {
    const int64_t rows = 24, cols = 300, n = rows * cols;
    const int64_t large[] = {1, 9};
    ob_rng_stream first = ob_rng_stream_make(77, OB_RNG_STOCHASTIC_ROUNDING, 0, 2), second = first;
    second.seed += 1;
    float *w = workspace_for(rows, cols, q);
    float *expected[2], *got[2];
    for (int k = 0; k < 2; k++) {
        expected[k] = malloc(sizeof(float) * (size_t)n);
        got[k] = malloc(sizeof(float) * (size_t)n);
    }
    char err[160] = "";
    for (int outliers = 0; outliers <= 1; outliers++) {
        float *x = gradient(rows, cols, outliers ? 1e-4 : 1.0, large, outliers ? 2 : 0, 8);
        ob_fqt_quantize_gradient(x, expected[0], rows, cols, 8, q, &first, w, err, sizeof err);
        ob_fqt_quantize_gradient(x, expected[1], rows, cols, 5, q, &second, w, err, sizeof err);
        for (int in_place = 0; in_place <= 1; in_place++) {
            float *input = in_place ? got[0] : x;
            if (in_place) memcpy(got[0], x, sizeof(float) * (size_t)n);
            ob_fqt_gradient_output outputs[] = {{got[0], 8, &first}, {got[1], 5, &second}};
            int rc = ob_fqt_quantize_gradient_outputs(input, rows, cols, q, outputs, 2, w, err, sizeof err);
            if (rc) printf("  unexpected error: %s\n", err);
            check(rc == 0 && same_bits(got[0], expected[0], n) && same_bits(got[1], expected[1], n) &&
                      guard_intact(w, rows, cols, q),
                  outliers ? (in_place ? "two outputs, large rows, output 0 in place: the separate calls' bits"
                                       : "two outputs, large rows: the separate calls' bits")
                           : (in_place ? "two outputs, rows of one magnitude, in place: the separate calls' bits"
                                       : "two outputs, rows of one magnitude: the separate calls' bits"));
        }
        free(x);
    }
    for (int k = 0; k < 2; k++) {
        free(expected[k]);
        free(got[k]);
    }
    free(w);
}

static int64_t nan_count(const float *x, int64_t begin, int64_t end) {
    int64_t count = 0;
    for (int64_t i = begin; i < end; i++) count += isnan(x[i]) != 0;
    return count;
}

static void test_non_finite(ob_fqt_quantizer q) {
    const int64_t rows = 8, cols = 16, n = rows * cols;
    const int64_t large[] = {2};
    float *x = gradient(rows, cols, 1e-3, large, 1, 5);
    x[5 * cols + 7] = NAN;
    x[6 * cols + 1] = INFINITY;
    float *out = malloc(sizeof(float) * (size_t)n), *w = workspace_for(rows, cols, q);
    quantize(x, out, rows, cols, 8, q, 1, w);
    bool rows_nan = nan_count(out, 5 * cols, 7 * cols) == 2 * cols;
    int64_t others = nan_count(out, 0, 5 * cols) + nan_count(out, 7 * cols, n);
    check(rows_nan, "the rows holding NaN and inf come out NaN");
    check(q == OB_FQT_PTQ ? others == n - 2 * cols : others == 0,
          "ptq: the whole tensor is NaN; psq and bhq: only those rows");
    free(x);
    free(out);
    free(w);
}

/* ---- forward ---- */

/* Quadratic, for the few thousand values here. */
static int distinct_values(const float *x, int64_t n) {
    int distinct = 0;
    for (int64_t i = 0; i < n; i++) {
        bool seen = false;
        for (int64_t j = 0; j < i && !seen; j++) seen = x[j] == x[i];
        distinct += !seen;
    }
    return distinct;
}

static void test_forward(void) {
    const int64_t n = 3000;
    float *x = gradient(1, n, 1.0, NULL, 0, 6), *out = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i += 3) x[i] = x[i] > 0 ? x[i] : 0.0f; /* some ReLU zeros */
    float lo = x[0], hi = x[0];
    for (int64_t i = 0; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    ob_fqt_quantize_forward(x, out, n, 8);
    double half_step = ((double)hi - lo) / 255 / 2, worst = 0;
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)out[i] - x[i]));
    printf("forward 8 bits: %d distinct values, worst error %.3g of half a step %.3g\n", distinct_values(out, n), worst,
           half_step);
    check(distinct_values(out, n) <= 256, "forward 8 bits: at most 256 distinct values");
    check(worst <= half_step * (1 + 1e-6) + 1e-7 * fmax(fabs(lo), fabs(hi)), "forward: within half a step");
    float *in_place = malloc(sizeof(float) * (size_t)n);
    memcpy(in_place, x, sizeof(float) * (size_t)n);
    ob_fqt_quantize_forward(in_place, in_place, n, 8);
    check(same_bits(in_place, out, n), "forward in place: the same values");
    ob_fqt_quantize_forward(x, out, n, 1);
    bool two_levels = true; /* the top level is lo + (hi - lo), in fp32 */
    for (int64_t i = 0; i < n; i++) two_levels &= out[i] == lo || fabsf(out[i] - hi) <= 1e-6f * fabsf(hi);
    check(two_levels && distinct_values(out, n) == 2, "forward 1 bit: min and max only");
    ob_fqt_quantize_forward(x, out, n, 16);
    ob_fqt_quantize_forward(x, in_place, n, 40);
    check(same_bits(in_place, out, n), "forward: bits above 16 are clamped to 16");

    const float constant[4] = {0.3f, 0.3f, 0.3f, 0.3f};
    float constant_out[4];
    ob_fqt_quantize_forward(constant, constant_out, 4, 8);
    check(same_bits(constant, constant_out, 4), "forward: a constant tensor is left as it is");
    const float special[5] = {NAN, -1.0f, INFINITY, 1.0f, 0.5f};
    float special_out[5];
    ob_fqt_quantize_forward(special, special_out, 5, 1);
    check(isnan(special_out[0]) && special_out[2] == INFINITY && special_out[1] == -1.0f && special_out[3] == 1.0f &&
              special_out[4] == 1.0f,
          "forward: non-finite values pass through and do not widen the range");
    /* Across the quantizer's chunks of 4096, in place: infinities at the
     * chunk edges must survive being overwritten by their rounding. */
    enum { LONG = 3 * 4096 + 5 };
    static float long_in[LONG], long_out[LONG], long_in_place[LONG];
    for (int i = 0; i < LONG; i++) long_in[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    const int edges[] = {0, 4095, 4096, 8191, 8192, LONG - 1};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) long_in[edges[i]] = i % 2 ? -INFINITY : INFINITY;
    long_in[5000] = NAN;
    ob_fqt_quantize_forward(long_in, long_out, LONG, 4);
    memcpy(long_in_place, long_in, sizeof long_in);
    ob_fqt_quantize_forward(long_in_place, long_in_place, LONG, 4);
    bool kept = isnan(long_out[5000]);
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) kept &= long_out[edges[i]] == long_in[edges[i]];
    check(kept && same_bits(long_in_place, long_out, LONG),
          "forward over several chunks: infinities and NaN pass through, in place the same bits");
    free(x);
    free(out);
    free(in_place);
}

/* ---- names and errors ---- */

static void expect_refused(const char *what, const float *in, float *out, int64_t rows, int64_t cols, int bits,
                           ob_fqt_quantizer q, const ob_rng_stream *stream, float *workspace) {
    char err[160] = "";
    int rc = ob_fqt_quantize_gradient(in, out, rows, cols, bits, q, stream, workspace, err, sizeof err);
    if (rc != 2 || !strstr(err, "fqt")) printf("  %s: rc %d, message \"%s\"\n", what, rc, err);
    check(rc == 2 && strstr(err, "fqt") != NULL, what);
}

static void test_names_and_errors(void) {
    for (int q = 0; q < QUANTIZER_COUNT; q++) {
        ob_fqt_quantizer parsed = OB_FQT_QUANTIZER_COUNT;
        check(ob_fqt_quantizer_parse(ob_fqt_quantizer_name(quantizers[q]), &parsed) == 0 && parsed == quantizers[q],
              "every quantizer's name parses back to it");
    }
    ob_fqt_quantizer unused;
    check(ob_fqt_quantizer_parse("hq", &unused) == 2 && ob_fqt_quantizer_parse(NULL, &unused) == 2,
          "unknown quantizer names are refused");
    check(ob_fqt_workspace_floats(10, 7, OB_FQT_PSQ) == 0 && ob_fqt_workspace_floats(10, 7, OB_FQT_BHQ) == 30,
          "workspace sizes");
    char err[160];
    check(ob_fqt_check_bits(16, err, sizeof err) == 0 && ob_fqt_check_bits(1, err, sizeof err) == 0,
          "1 and 16 bits are valid");

    float in[6] = {1, 2, 3, 4, 5, 6}, out[6], w[32];
    ob_rng_stream stream = ob_rng_stream_make(1, OB_RNG_STOCHASTIC_ROUNDING, 0, 0);
    expect_refused("0 bits is refused", in, out, 2, 3, 0, OB_FQT_PSQ, &stream, w);
    expect_refused("17 bits is refused", in, out, 2, 3, 17, OB_FQT_PTQ, &stream, w);
    expect_refused("0 rows is refused", in, out, 0, 3, 8, OB_FQT_PSQ, &stream, w);
    expect_refused("negative cols are refused", in, out, 2, -3, 8, OB_FQT_BHQ, &stream, w);
    expect_refused("an unknown quantizer is refused", in, out, 2, 3, 8, (ob_fqt_quantizer)7, &stream, w);
    expect_refused("a NULL input is refused", NULL, out, 2, 3, 8, OB_FQT_PSQ, &stream, w);
    expect_refused("a NULL stream is refused", in, out, 2, 3, 8, OB_FQT_PTQ, NULL, w);
    expect_refused("bhq without a workspace is refused", in, out, 2, 3, 8, OB_FQT_BHQ, &stream, NULL);
    check(ob_fqt_quantize_gradient(in, out, 2, 3, 8, OB_FQT_PSQ, &stream, NULL, err, sizeof err) == 0,
          "psq needs no workspace");

    float second[6];
    const struct {
        const char *what;
        ob_fqt_gradient_output outputs[2];
        int count;
    } bad_outputs[] = {
        {"no outputs are refused", {{out, 8, &stream}}, 0},
        {"a second output that is the input is refused", {{out, 8, &stream}, {in, 8, &stream}}, 2},
        {"two outputs in one buffer are refused", {{out, 8, &stream}, {out, 5, &stream}}, 2},
        {"a second output with 0 bits is refused", {{out, 8, &stream}, {second, 0, &stream}}, 2},
        {"a second output without a stream is refused", {{out, 8, &stream}, {second, 5, NULL}}, 2},
    };
    for (size_t i = 0; i < sizeof bad_outputs / sizeof bad_outputs[0]; i++) {
        int rc = ob_fqt_quantize_gradient_outputs(in, 2, 3, OB_FQT_PSQ, bad_outputs[i].outputs, bad_outputs[i].count,
                                                  w, err, sizeof err);
        if (rc != 2 || !strstr(err, "fqt")) printf("  %s: rc %d, message \"%s\"\n", bad_outputs[i].what, rc, err);
        check(rc == 2 && strstr(err, "fqt") != NULL, bad_outputs[i].what);
    }
}

int main(void) {
    test_names_and_errors();
    for (int q = 0; q < QUANTIZER_COUNT; q++) {
        test_unbiased(quantizers[q]);
        test_in_place_and_threads(quantizers[q]);
        test_non_finite(quantizers[q]);
        test_outputs_are_separate_calls(quantizers[q]);
    }
    test_variance_order();
    test_bhq_without_outliers_is_psq();
    test_forward();
    return report_checks();
}
