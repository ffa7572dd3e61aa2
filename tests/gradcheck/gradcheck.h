/* Finite-difference gradient checks in double precision.
 *
 * For an op f and fixed random weights r, the scalar L = sum(r * f(inputs))
 * has dL/d(input) = the op's vector-Jacobian product with r. gc_check
 * compares that (from the tape) with central differences
 * (L(x + h) - L(x - h)) / 2h on up to `max_elements` elements per input. */
#ifndef OB_GRADCHECK_H
#define OB_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ob_backend.h"
#include "nn/ob_ctx.h"
#include "nn/ob_layers.h"
#include "nn/ob_rng.h"
#include "nn/ob_tape.h"

typedef ob_tensor *(*gc_forward_fn)(ob_ctx *ctx, ob_tensor *const *inputs, void *user);

#define GC_STEP 1e-6
#define GC_TOLERANCE 1e-6

/* A persistent F64 input with values uniform in [lo, hi), needing a gradient. */
static inline ob_tensor *gc_input(ob_ctx *ctx, int ndim, const int64_t *shape, uint64_t salt, double lo,
                                  double hi) {
    ob_tensor *t = ob_tensor_new(ctx, OB_MEM_ACTIVATIONS, OB_F64, ndim, shape);
    t->grad = ob_tensor_new(ctx, OB_MEM_GRADS, OB_F64, ndim, shape);
    t->requires_grad = true;
    ob_rng_stream stream = ob_rng_stream_make(1234, OB_RNG_TEST, 0, salt);
    for (int64_t i = 0; i < t->numel; i++) ob_f64(t)[i] = lo + (hi - lo) * ob_rng_uniform(&stream, i);
    return t;
}

/* A persistent I32 tensor (ids, labels, masks) holding `values`. */
static inline ob_tensor *gc_i32(ob_ctx *ctx, int ndim, const int64_t *shape, const int32_t *values) {
    ob_tensor *t = ob_tensor_new(ctx, OB_MEM_DATA, OB_I32, ndim, shape);
    memcpy(t->data, values, ob_tensor_bytes(t));
    return t;
}

static inline void gc_free_input(ob_ctx *ctx, ob_tensor *t) {
    ob_tensor_free(ctx, t->grad);
    ob_tensor_free(ctx, t);
}

/* L = sum(r * y), r drawn from a fixed stream. */
static inline double gc_weight(int64_t i) {
    ob_rng_stream stream = ob_rng_stream_make(99, OB_RNG_TEST, 0, 7);
    return 2.0 * ob_rng_uniform(&stream, (uint64_t)i) - 1.0;
}

static inline double gc_loss(ob_ctx *ctx, gc_forward_fn forward, ob_tensor *const *inputs, void *user) {
    ob_set_grad_enabled(ctx, false);
    ob_tensor *y = forward(ctx, inputs, user);
    double loss = 0.0;
    for (int64_t i = 0; i < y->numel; i++) loss += gc_weight(i) * ob_f64(y)[i];
    ob_ctx_step_reset(ctx);
    ob_set_grad_enabled(ctx, true);
    return loss;
}

/* Returns the number of mismatching elements (0 = pass); prints a line per input. */
static inline int gc_check(const char *name, ob_ctx *ctx, gc_forward_fn forward, ob_tensor *const *inputs,
                           int n_inputs, void *user, int64_t max_elements) {
    for (int k = 0; k < n_inputs; k++)
        if (inputs[k]->grad) memset(inputs[k]->grad->data, 0, ob_tensor_bytes(inputs[k]->grad));
    ob_tensor *y = forward(ctx, inputs, user);
    if (!y) {
        printf("FAIL %s: forward failed: %s\n", name, ob_ctx_error(ctx));
        return 1;
    }
    ob_tensor *dy = ob_grad_of(ctx, y);
    if (!dy) {
        printf("FAIL %s: output needs no gradient\n", name);
        ob_ctx_step_reset(ctx);
        return 1;
    }
    for (int64_t i = 0; i < dy->numel; i++) ob_f64(dy)[i] = gc_weight(i);
    int rc = ob_backward_run(ctx);
    ob_ctx_step_reset(ctx);
    if (rc) {
        printf("FAIL %s: backward failed: %s\n", name, ob_ctx_error(ctx));
        return 1;
    }
    int failures = 0;
    for (int k = 0; k < n_inputs; k++) {
        ob_tensor *x = inputs[k];
        if (!x->requires_grad) continue;
        int64_t stride = x->numel > max_elements ? x->numel / max_elements : 1;
        double worst = 0.0;
        for (int64_t i = 0; i < x->numel; i += stride) {
            double *element = &ob_f64(x)[i], saved = *element;
            *element = saved + GC_STEP;
            double loss_plus = gc_loss(ctx, forward, inputs, user);
            *element = saved - GC_STEP;
            double loss_minus = gc_loss(ctx, forward, inputs, user);
            *element = saved;
            double numeric = (loss_plus - loss_minus) / (2 * GC_STEP);
            double analytic = ob_f64(x->grad)[i];
            double error = fabs(numeric - analytic) / fmax(1.0, fabs(numeric) + fabs(analytic));
            if (error > worst) worst = error;
            if (error > GC_TOLERANCE) {
                if (failures < 5)
                    printf("  %s input %d element %lld: analytic %.10g numeric %.10g\n", name, k,
                           (long long)i, analytic, numeric);
                failures++;
            }
        }
        printf("%s %s input %d: worst relative error %.3g over %lld elements\n", failures ? "FAIL" : "ok  ",
               name, k, worst, (long long)((x->numel + stride - 1) / stride));
    }
    return failures;
}

/* The inputs of a normalisation op: x of the given shape with values in
 * [lo, hi), and gamma in [0.5, 1.5) and beta in [-1, 1) over its last dim. */
static inline void gc_norm_inputs(ob_ctx *ctx, int ndim, const int64_t *shape, uint64_t salt, double lo,
                                  double hi, ob_tensor *inputs[3]) {
    int64_t width = shape[ndim - 1];
    inputs[0] = gc_input(ctx, ndim, shape, salt, lo, hi);
    inputs[1] = gc_input(ctx, OB_SHAPE(width), salt + 1, 0.5, 1.5);
    inputs[2] = gc_input(ctx, OB_SHAPE(width), salt + 2, -1, 1);
}

/* Norm scales in [0.5, 1.5) and biases in [-0.5, 0.5) instead of 1 and 0,
 * so that a mix-up between channels or between gamma and beta shows. */
static inline void gc_randomise_norms(const ob_params *params) {
    for (int i = 0; i < ob_params_count(params); i++) {
        ob_param *p = ob_params_at(params, i);
        if (p->kind != OB_KIND_NORM_SCALE && p->kind != OB_KIND_NORM_BIAS) continue;
        double lo = p->kind == OB_KIND_NORM_SCALE ? 0.5 : -0.5;
        ob_rng_stream stream = ob_rng_stream_make(5, OB_RNG_TEST, 0, (uint64_t)i);
        for (int64_t j = 0; j < p->value->numel; j++)
            ob_f64(p->value)[j] = lo + ob_rng_uniform(&stream, (uint64_t)j);
    }
}

/* gc_check over x and every parameter of a model (F64 params). */
static inline int gc_check_model(const char *name, ob_ctx *ctx, gc_forward_fn forward, ob_tensor *x,
                                 const ob_params *params, void *user, int64_t max_elements) {
    enum { MAX_INPUTS = 32 };
    int n_params = ob_params_count(params);
    if (n_params + 1 > MAX_INPUTS) {
        printf("FAIL %s: %d parameters, more than %d\n", name, n_params, MAX_INPUTS - 1);
        return 1;
    }
    ob_tensor *inputs[MAX_INPUTS] = {x};
    for (int i = 0; i < n_params; i++) inputs[i + 1] = ob_params_at(params, i)->value;
    printf("%s: x and %d parameters\n", name, n_params);
    ob_params_zero_grad(params);
    return gc_check(name, ctx, forward, inputs, n_params + 1, user, max_elements);
}

static inline ob_ctx *gc_ctx(void) {
    ob_ctx_config config = {.threads = 2, .seed = 1, .rank = 0, .world_size = 1};
    return ob_ctx_new(&config);
}

#endif
