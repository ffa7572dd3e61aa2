/* LAMB through the optimizer interface and the backend table, against a
 * reference written here in double precision (You et al.'s update with one
 * trust ratio per parameter tensor), for f32 and f64 parameters: bias
 * correction on and off, the clamp, decay and adaptation by kind; worked
 * one-step examples; the zero-norm cases; then state and errors. */
#include "adam_test_support.h"

/* ratio = min(||x|| / ||r||, max) (max 0: no clamp), 1 when a norm is 0.
 * *clamped says whether the clamp decided. */
static double reference_ratio(double x_norm, double r_norm, double max, bool *clamped) {
    *clamped = false;
    if (x_norm == 0 || r_norm == 0) return 1;
    *clamped = max > 0 && x_norm / r_norm > max;
    return *clamped ? max : x_norm / r_norm;
}

/* One parameter tensor: r = m_hat / (sqrt(v_hat) + eps) + wd x;
 * x = x - lr ratio r (ratio 1 for a kind that is not decayed). Returns
 * whether the clamp decided its ratio. */
static bool reference_lamb_tensor(reference_state *ref, int p, ob_param_kind kind, const ob_lamb_config *c,
                                  int step, double *r) {
    bool decayed = reference_decays(kind, c->adam.decay_norm_and_bias), clamped = false;
    double wd = decayed ? c->adam.weight_decay : 0, x_sumsq = 0, r_sumsq = 0;
    for (int64_t i = 0; i < ref->numel[p]; i++) {
        r[i] = reference_adam_direction(&c->adam, c->bias_correction, step + 1, grad_value(p, i, step),
                                        &ref->m[p][i], &ref->v[p][i]) +
               wd * ref->p[p][i];
        x_sumsq += ref->p[p][i] * ref->p[p][i];
        r_sumsq += r[i] * r[i];
    }
    double ratio = decayed ? reference_ratio(sqrt(x_sumsq), sqrt(r_sumsq), c->max_trust_ratio, &clamped) : 1;
    for (int64_t i = 0; i < ref->numel[p]; i++) ref->p[p][i] -= lr_at(step) * ratio * r[i];
    return clamped;
}

/* Every tensor's step; returns how many ratios the clamp decided. */
static int reference_lamb_step(reference_state *ref, const ob_params *params, const void *config, int step) {
    const ob_lamb_config *c = config;
    int clamped = 0;
    for (int p = 0; p < ref->count; p++) {
        double *r = malloc((size_t)ref->numel[p] * sizeof *r);
        if (!r) return -1;
        clamped += reference_lamb_tensor(ref, p, ob_params_at(params, p)->kind, c, step, r);
        free(r);
    }
    return clamped;
}

typedef struct {
    const char *name;
    ob_lamb_config config;
    bool clamp_decides; /* the case is only meaningful if the clamp binds */
} lamb_case;

#define ADAM_DEFAULTS .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-6

static const lamb_case cases[] = {
    {"defaults", {.adam = {ADAM_DEFAULTS, .weight_decay = 0.01}, .bias_correction = true}, false},
    {"no bias correction", {.adam = {ADAM_DEFAULTS, .weight_decay = 0.01}}, false},
    {"no weight decay", {.adam = {ADAM_DEFAULTS}, .bias_correction = true}, false},
    {"clamp 0.3", {.adam = {ADAM_DEFAULTS, .weight_decay = 0.01}, .max_trust_ratio = 0.3, .bias_correction = true},
     true},
    {"decay and adapt norms and biases",
     {.adam = {ADAM_DEFAULTS, .weight_decay = 0.1, .decay_norm_and_bias = true}, .bias_correction = true},
     false},
};

static ob_optimizer *build_from_lamb_config(ob_ctx *ctx, ob_params *params, const void *config) {
    return ob_lamb_new(ctx, params, config);
}

static const optimizer_under_test lamb = {build_from_lamb_config, reference_lamb_step};

static void run_case(ob_ctx *ctx, ob_dtype dtype, const lamb_case *c) {
    int clamped = run_reference_case(ctx, dtype, c->name, &lamb, &c->config);
    if (c->clamp_decides) check(clamped > 0, "the clamp decided some ratios");
}

/* A lone weight x = (3, 4), ||x|| = 5, with g = (0.5, -0.25), lr 0.1,
 * wd 0.1, eps 1e-6, bias correction on. Step 1: m_hat = g, v_hat = g^2, so
 *   r = (0.5 / 0.500001 + 0.3, -0.25 / 0.250001 + 0.4) ~ (1.299998, -0.599996)
 *   ratio = 5 / ||r|| ~ 3.4921 (or the clamp, when smaller)
 *   x = x - 0.1 ratio r ~ (2.54603, 4.20953) unclamped. */
static void test_worked_example(ob_ctx *ctx, ob_dtype dtype, double max_trust_ratio) {
    ob_params *params = ob_params_new(dtype);
    ob_lamb_config config = {.adam = {ADAM_DEFAULTS, .weight_decay = 0.1}, .max_trust_ratio = max_trust_ratio,
                             .bias_correction = true};
    ob_linear_layer *layer = params ? ob_linear_layer_new(ctx, params, "w", 2, 1, false) : NULL;
    ob_optimizer *opt = layer ? ob_lamb_new(ctx, params, &config) : NULL;
    if (!opt) {
        check(false, "worked example: optimizer built");
        ob_params_free(ctx, params);
        return;
    }
    ob_tensor *x = layer->weight;
    set(x, 0, 3);
    set(x, 1, 4);
    set(x->grad, 0, 0.5);
    set(x->grad, 1, -0.25);
    check(ob_optimizer_step(opt, 0.1) == 0, "worked example: step");
    double r0 = 0.5 / (0.5 + 1e-6) + 0.1 * 3, r1 = -0.25 / (0.25 + 1e-6) + 0.1 * 4;
    double ratio = 5 / sqrt(r0 * r0 + r1 * r1);
    if (max_trust_ratio > 0 && ratio > max_trust_ratio) ratio = max_trust_ratio;
    double tolerance = dtype == OB_F64 ? 1e-14 : 1e-6;
    char what[160];
    snprintf(what, sizeof what, "%s worked example, clamp %g: x = (%.6f, %.6f)", ob_dtype_name(dtype),
             max_trust_ratio, 3 - 0.1 * ratio * r0, 4 - 0.1 * ratio * r1);
    check(fabs(get(x, 0) - (3 - 0.1 * ratio * r0)) <= tolerance &&
              fabs(get(x, 1) - (4 - 0.1 * ratio * r1)) <= tolerance,
          what);
    ob_optimizer_free(ctx, opt);
    ob_params_free(ctx, params);
}

/* ||x|| = 0 (conv.weight zeroed): ratio 1, so x = -lr r = -lr g / (|g| + eps)
 * at step 1. ||r|| = 0 (fc.weight with zero gradients, no weight decay):
 * ratio 1 and r = 0, so x stays exactly as it was, with no NaN. */
static void test_zero_norms(ob_ctx *ctx, ob_dtype dtype) {
    ob_params *params = make_params(ctx, dtype);
    ob_lamb_config config = {.adam = {ADAM_DEFAULTS}, .bias_correction = true};
    ob_optimizer *opt = params ? ob_lamb_new(ctx, params, &config) : NULL;
    if (!opt) {
        check(false, "zero norms: optimizer built");
        ob_params_free(ctx, params);
        return;
    }
    set_grads(params, 0);
    ob_tensor *fc = ob_params_at(params, 0)->value, *conv = ob_params_at(params, 4)->value;
    for (int64_t i = 0; i < fc->numel; i++) set(fc->grad, i, 0);
    for (int64_t i = 0; i < conv->numel; i++) set(conv, i, 0);
    check(ob_optimizer_step(opt, 0.1) == 0, "zero norms: step");
    bool fc_kept = true, conv_ok = true;
    for (int64_t i = 0; i < fc->numel; i++) fc_kept = fc_kept && get(fc, i) == initial_value(0, i);
    double tolerance = dtype == OB_F64 ? 1e-14 : 1e-6;
    for (int64_t i = 0; i < conv->numel; i++) {
        double g = grad_value(4, i, 0);
        conv_ok = conv_ok && fabs(get(conv, i) - -0.1 * g / (fabs(g) + 1e-6)) <= tolerance;
    }
    char what[160];
    snprintf(what, sizeof what, "%s: ||r|| = 0 keeps fc.weight unchanged", ob_dtype_name(dtype));
    check(fc_kept, what);
    snprintf(what, sizeof what, "%s: ||x|| = 0 steps conv.weight by -lr r", ob_dtype_name(dtype));
    check(conv_ok, what);
    ob_optimizer_free(ctx, opt);
    ob_params_free(ctx, params);
}

static ob_optimizer *build_from_adam_config(ob_ctx *ctx, ob_params *params, const ob_adam_config *adam) {
    if (!adam) return ob_lamb_new(ctx, params, NULL);
    ob_lamb_config config = {.adam = *adam, .bias_correction = true};
    return ob_lamb_new(ctx, params, &config);
}

static void test_lamb_errors(ob_ctx *ctx) {
    ob_params *params = make_params(ctx, OB_F32);
    ob_lamb_config config = {.adam = {ADAM_DEFAULTS}, .max_trust_ratio = -1};
    ob_optimizer *opt = params ? ob_lamb_new(ctx, params, &config) : NULL;
    check(params && !opt && strstr(ob_ctx_error(ctx), "max_trust_ratio"), "negative max_trust_ratio refused");
    config.max_trust_ratio = INFINITY;
    opt = params ? ob_lamb_new(ctx, params, &config) : NULL;
    check(params && !opt && strstr(ob_ctx_error(ctx), "max_trust_ratio"), "infinite max_trust_ratio refused");
    ob_params_free(ctx, params);
}

int main(void) {
    ob_ctx *ctx = optimizer_test_ctx();
    if (!ctx) return 1;
    for (int d = 0; d < 2; d++) {
        ob_dtype dtype = d ? OB_F64 : OB_F32;
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) run_case(ctx, dtype, &cases[c]);
        test_worked_example(ctx, dtype, 0);
        test_worked_example(ctx, dtype, 2);
        test_zero_norms(ctx, dtype);
    }
    check_adam_state(ctx, OB_F32, build_from_adam_config, "lamb");
    check_adam_state(ctx, OB_F64, build_from_adam_config, "lamb");
    check_adam_errors(ctx, build_from_adam_config);
    test_lamb_errors(ctx);
    ob_ctx_free(ctx);
    return report_checks();
}
