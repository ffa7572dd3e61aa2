/* Shared by test_adamw and test_lamb: a reference of Adam's moments written
 * here in double (independent of the kernel), the case runner, and the
 * state and error checks both optimizers must pass. */
#ifndef ADAM_TEST_SUPPORT_H
#define ADAM_TEST_SUPPORT_H

#include <stdlib.h>

#include "optimizer_test_support.h"

static inline double lr_at(int step) { return 0.01 / (1 + step); }

/* The reference's copy of every parameter and its two moments, in double. */
typedef struct {
    int count;
    int64_t *numel;
    double **p, **m, **v;
} reference_state;

static inline bool reference_new(const ob_params *params, reference_state *ref) {
    ref->count = ob_params_count(params);
    ref->numel = calloc((size_t)ref->count, sizeof *ref->numel);
    ref->p = calloc((size_t)ref->count, sizeof *ref->p);
    ref->m = calloc((size_t)ref->count, sizeof *ref->m);
    ref->v = calloc((size_t)ref->count, sizeof *ref->v);
    if (!ref->numel || !ref->p || !ref->m || !ref->v) return false;
    for (int p = 0; p < ref->count; p++) {
        const ob_tensor *value = ob_params_at(params, p)->value;
        ref->numel[p] = value->numel;
        ref->p[p] = malloc((size_t)value->numel * sizeof(double));
        ref->m[p] = calloc((size_t)value->numel, sizeof(double));
        ref->v[p] = calloc((size_t)value->numel, sizeof(double));
        if (!ref->p[p] || !ref->m[p] || !ref->v[p]) return false;
        for (int64_t i = 0; i < value->numel; i++) ref->p[p][i] = get(value, i);
    }
    return true;
}

static inline void reference_free(reference_state *ref) {
    for (int p = 0; ref->p && p < ref->count; p++) {
        free(ref->p[p]);
        free(ref->m[p]);
        free(ref->v[p]);
    }
    free(ref->numel);
    free(ref->p);
    free(ref->m);
    free(ref->v);
}

/* One element at step t (from 1):
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   returns m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)
 * (m and v themselves without bias correction). */
static inline double reference_adam_direction(const ob_adam_config *c, bool bias_correction, int t, double g,
                                              double *m, double *v) {
    *m = c->beta1 * *m + (1 - c->beta1) * g;
    *v = c->beta2 * *v + (1 - c->beta2) * g * g;
    double m_hat = bias_correction ? *m / (1 - pow(c->beta1, t)) : *m;
    double v_hat = bias_correction ? *v / (1 - pow(c->beta2, t)) : *v;
    return m_hat / (sqrt(v_hat) + c->eps);
}

/* Worst relative error of the parameters and of the moments against ref. */
static inline void compare_with_reference(const ob_optimizer *opt, const ob_params *params,
                                          const reference_state *ref, double *value_error,
                                          double *moment_error) {
    *value_error = *moment_error = 0;
    for (int p = 0; p < ref->count; p++) {
        const ob_tensor *value = ob_params_at(params, p)->value;
        const ob_tensor *m = ob_optimizer_state_at(opt, 2 * p, NULL, 0);
        const ob_tensor *v = ob_optimizer_state_at(opt, 2 * p + 1, NULL, 0);
        for (int64_t i = 0; i < ref->numel[p]; i++) {
            *value_error = fmax(*value_error, relative_error(get(value, i), ref->p[p][i]));
            *moment_error = fmax(*moment_error, relative_error(get(m, i), ref->m[p][i]));
            *moment_error = fmax(*moment_error, relative_error(get(v, i), ref->v[p][i]));
        }
    }
}

/* The checks of one case's result; `what` names the dtype and case. */
static inline void check_against_reference(const ob_optimizer *opt, const ob_params *params,
                                           const reference_state *ref, ob_dtype dtype, const char *what) {
    double tolerance = dtype == OB_F64 ? 1e-12 : 2e-6, value_error, moment_error;
    char line[256];
    compare_with_reference(opt, params, ref, &value_error, &moment_error);
    snprintf(line, sizeof line, "%s: params match the reference (worst %.2g)", what, value_error);
    check(value_error <= tolerance, line);
    snprintf(line, sizeof line, "%s: moments match the reference (worst %.2g)", what, moment_error);
    check(moment_error <= tolerance, line);
    const ob_tensor *step = ob_optimizer_state_at(opt, 2 * ref->count, NULL, 0);
    snprintf(line, sizeof line, "%s: step count is %d", what, STEPS);
    check(step && step->dtype == OB_F64 && ob_f64(step)[0] == STEPS, line);
}

/* One optimizer under test: build it from its config, and advance the
 * reference by one step (returning a count the case may check, or -1 when
 * out of memory). */
typedef struct {
    ob_optimizer *(*build)(ob_ctx *ctx, ob_params *params, const void *config);
    int (*reference_step)(reference_state *ref, const ob_params *params, const void *config, int step);
} optimizer_under_test;

/* STEPS steps of the optimizer and of its reference, then the comparison;
 * returns the sum of what reference_step returned. */
static inline int run_reference_case(ob_ctx *ctx, ob_dtype dtype, const char *name, const optimizer_under_test *o,
                                     const void *config) {
    char what[160];
    snprintf(what, sizeof what, "%s %s", ob_dtype_name(dtype), name);
    ob_params *params = make_params(ctx, dtype);
    reference_state ref = {0};
    ob_optimizer *opt = params && reference_new(params, &ref) ? o->build(ctx, params, config) : NULL;
    check(opt != NULL, what);
    bool stepped = opt != NULL;
    int counted = 0;
    for (int step = 0; opt && step < STEPS; step++) {
        set_grads(params, step);
        stepped = stepped && ob_optimizer_step(opt, lr_at(step)) == 0;
        counted += o->reference_step(&ref, params, config, step);
    }
    check(stepped, "every step returns 0");
    if (opt) check_against_reference(opt, params, &ref, dtype, what);
    reference_free(&ref);
    ob_optimizer_free(ctx, opt);
    ob_params_free(ctx, params);
    return counted;
}

/* Builds the optimizer under test from its Adam part (NULL: no config). */
typedef ob_optimizer *(*adam_builder)(ob_ctx *ctx, ob_params *params, const ob_adam_config *adam);

static inline void check_state_names(const ob_optimizer *opt, const ob_params *params, const char *name) {
    bool names_ok = true, shapes_ok = true;
    for (int i = 0; i < 2 * ob_params_count(params); i++) {
        char got[OB_NAME_MAX + 16], want[OB_NAME_MAX + 16];
        const ob_param *param = ob_params_at(params, i / 2);
        const ob_tensor *state = ob_optimizer_state_at(opt, i, got, sizeof got);
        snprintf(want, sizeof want, "%s.%s", param->name, i % 2 ? "exp_avg_sq" : "exp_avg");
        names_ok = names_ok && strcmp(got, want) == 0;
        shapes_ok = shapes_ok && state && ob_tensor_same_shape(state, param->value) &&
                    state->dtype == param->value->dtype && state->category == OB_MEM_OPTIMIZER_STATE;
    }
    check(names_ok, "state names are <param>.exp_avg, <param>.exp_avg_sq");
    check(shapes_ok, "moments are shaped like their params, charged to optimizer_state");
    char got[64], want[64];
    snprintf(want, sizeof want, "%s.step", name);
    const ob_tensor *step = ob_optimizer_state_at(opt, 2 * ob_params_count(params), got, sizeof got);
    check(step && strcmp(got, want) == 0 && step->numel == 1 && step->dtype == OB_F64,
          "the last state is <optimizer>.step, one f64");
    check(ob_optimizer_state_at(opt, -1, NULL, 0) == NULL, "state -1 is NULL");
    check(ob_optimizer_state_at(opt, 2 * ob_params_count(params) + 1, NULL, 0) == NULL,
          "state past the end is NULL");
}

/* Two moments per parameter plus 8 bytes of step count, all charged to
 * optimizer_state and returned by free. */
static inline void check_adam_state(ob_ctx *ctx, ob_dtype dtype, adam_builder build, const char *name) {
    ob_params *params = make_params(ctx, dtype);
    int64_t before = ob_mem_current(ctx, OB_MEM_OPTIMIZER_STATE);
    ob_optimizer *opt = params ? build(ctx, params, &(ob_adam_config){.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8})
                               : NULL;
    if (!opt) {
        check(false, "state: optimizer built");
        ob_params_free(ctx, params);
        return;
    }
    int64_t expected_bytes = 2 * params_bytes(params) + 8;
    check(strcmp(ob_optimizer_name(opt), name) == 0, "optimizer name");
    check(ob_optimizer_state_count(opt) == 2 * ob_params_count(params) + 1, "two moments per param, one step");
    check(ob_optimizer_state_bytes(opt) == expected_bytes, "state bytes = 2 x param bytes + 8");
    check(ob_mem_current(ctx, OB_MEM_OPTIMIZER_STATE) - before == expected_bytes,
          "state is charged to optimizer_state");
    check_state_names(opt, params, name);
    ob_optimizer_free(ctx, opt);
    check(ob_mem_current(ctx, OB_MEM_OPTIMIZER_STATE) == before, "free returns the state's bytes");
    ob_params_free(ctx, params);
}

/* The constructor must refuse `config` with one line that mentions `word`. */
static inline void check_refused(ob_ctx *ctx, ob_params *params, adam_builder build, const ob_adam_config *config,
                                 const char *word, const char *what) {
    ob_optimizer *opt = build(ctx, params, config);
    check(opt == NULL && strstr(ob_ctx_error(ctx), word) != NULL, what);
    if (opt) ob_optimizer_free(ctx, opt);
}

static inline void check_adam_errors(ob_ctx *ctx, adam_builder build) {
    ob_params *params = make_params(ctx, OB_F32);
    if (!params) {
        check(false, "errors: parameters built");
        return;
    }
    int64_t before = ob_mem_current(ctx, OB_MEM_OPTIMIZER_STATE);
    const ob_adam_config good = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    ob_adam_config bad = good;
    bad.beta1 = 1;
    check_refused(ctx, params, build, &bad, "beta1", "beta1 = 1");
    bad = good;
    bad.beta2 = -0.5;
    check_refused(ctx, params, build, &bad, "beta2", "negative beta2");
    bad = good;
    bad.eps = 0;
    check_refused(ctx, params, build, &bad, "eps", "eps = 0");
    bad = good;
    bad.weight_decay = NAN;
    check_refused(ctx, params, build, &bad, "weight_decay", "NaN weight decay");
    check_refused(ctx, params, build, NULL, "config", "no config");
    ob_tensor *bias = ob_params_at(params, 1)->value, *bias_grad = bias->grad;
    bias->grad = NULL;
    check_refused(ctx, params, build, &good, "fc.bias has no gradient", "a param without a gradient");
    bias->grad = bias_grad;
    check(ob_mem_current(ctx, OB_MEM_OPTIMIZER_STATE) == before, "refusals leak no state");

    ob_optimizer *opt = build(ctx, params, &good);
    check(opt && ob_optimizer_step(opt, NAN) != 0 && strstr(ob_ctx_error(ctx), "learning rate"),
          "NaN lr refused");
    check(opt && ob_optimizer_step(opt, 0) == 0, "lr 0 is a valid step");
    ob_optimizer_free(ctx, opt);
    ob_params_free(ctx, params);
}

#endif
