/* The float kernels' exp and erf (nn/cpu/fast_math.h) against libm's double
 * exp and erf on dense grids, within the bounds the header documents; their
 * special values; and the float GELU op, which runs on them, against the
 * erf-form GELU and its derivative computed in double. */
#include <math.h>

#include "f32_test_support.h"
#include "nn/cpu/fast_math.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"
#include "ob_check.h"

#define GRID_STEP 1e-5

/* Largest relative error of ob_fast_expf over every float x = lo + i step. */
static double worst_exp_error(double lo, double hi) {
    double worst = 0.0;
    for (double v = lo; v <= hi; v += GRID_STEP) {
        float x = (float)v;
        double expected = exp((double)x);
        worst = fmax(worst, fabs(ob_fast_expf(x) - expected) / expected);
    }
    return worst;
}

/* Largest absolute error of ob_fast_erff on [lo, hi], and (when relative is
 * not NULL) the largest relative one. */
static double worst_erf_error(double lo, double hi, double *relative) {
    double worst = 0.0, worst_relative = 0.0;
    for (double v = lo; v <= hi; v += GRID_STEP) {
        float x = (float)v;
        double expected = erf((double)x), error = fabs(ob_fast_erff(x) - expected);
        worst = fmax(worst, error);
        if (expected != 0.0) worst_relative = fmax(worst_relative, error / fabs(expected));
    }
    if (relative) *relative = worst_relative;
    return worst;
}

static void test_exp(void) {
    double worst = worst_exp_error(-87.0, 88.0);
    printf("fast expf: max relative error %.3g on [-87, 88]\n", worst);
    CHECK(worst <= 2e-7);
    CHECK(ob_fast_expf(0.0f) == 1.0f);
    CHECK(isinf(ob_fast_expf(88.8f)) && isinf(ob_fast_expf(INFINITY)));
    /* exactly 0 for -inf: the masked softmax gives masked keys exp(-inf) */
    CHECK(ob_fast_expf(-INFINITY) == 0.0f && ob_fast_expf(-1e30f) == 0.0f && ob_fast_expf(-103.99f) == 0.0f);
    CHECK(isnan(ob_fast_expf(NAN)));
    /* subnormal results keep their relative accuracy down to about 2^-140 */
    CHECK(fabs(ob_fast_expf(-95.0f) / exp(-95.0) - 1.0) < 1e-4);
}

static void test_erf(void) {
    double relative = 0.0, small = worst_erf_error(-0.4999, 0.4999, &relative);
    double worst = fmax(small, worst_erf_error(-10.0, 10.0, NULL));
    printf("fast erff: max absolute error %.3g on [-10, 10], max relative %.3g on |x| < 1/2\n", worst, relative);
    CHECK(worst <= 3.5e-7);
    CHECK(relative <= 3e-7);
    CHECK(ob_fast_erff(INFINITY) == 1.0f && ob_fast_erff(-INFINITY) == -1.0f && ob_fast_erff(0.0f) == 0.0f);
    CHECK(isnan(ob_fast_erff(NAN)));
}

/* GELU(x) = x Phi(x) and its derivative Phi(x) + x phi(x), in double. */
static double gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static double gelu_slope(double x) {
    return 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / 2.50662827463100050; /* sqrt(2 pi) */
}

/* The F32 op forward and backward (dy = 1 everywhere) on x in [-8, 8]. */
static void test_gelu_op(void) {
    ob_ctx_config config = {.threads = 2, .seed = 1, .world_size = 1};
    ob_ctx *ctx = ob_ctx_new(&config);
    int64_t shape[1] = {4099}; /* not a multiple of the vector width */
    ob_tensor *x = trainable(ctx, 1, shape, 1, -8.0, 8.0);
    ob_tensor *y = ob_gelu(ctx, x);
    ob_tensor *dy = y ? ob_grad_of(ctx, y) : NULL;
    CHECK(dy != NULL);
    if (!dy) return;
    for (int64_t i = 0; i < dy->numel; i++) ob_f32(dy)[i] = 1.0f;
    CHECK(ob_backward_run(ctx) == 0);
    double worst_y = 0.0, worst_dx = 0.0;
    for (int64_t i = 0; i < x->numel; i++) {
        double v = ob_f32(x)[i];
        worst_y = fmax(worst_y, fabs(ob_f32(y)[i] - gelu(v)));
        worst_dx = fmax(worst_dx, fabs(ob_f32(x->grad)[i] - gelu_slope(v)));
    }
    printf("float GELU: max |y - y_ref| %.3g, max |dx - dx_ref| %.3g on [-8, 8]\n", worst_y, worst_dx);
    CHECK(worst_y <= 1e-6);  /* at worst 8 x 3.5e-7 / 2 from erf, plus float rounding */
    CHECK(worst_dx <= 5e-7); /* 3.5e-7 / 2 from erf in Phi, plus x phi and rounding */
    ob_ctx_step_reset(ctx);
    free_trainable(ctx, x);
    ob_ctx_free(ctx);
}

int main(void) {
    test_exp();
    test_erf();
    test_gelu_op();
    return report_checks();
}
