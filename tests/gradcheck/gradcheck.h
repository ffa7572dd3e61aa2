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

static inline ob_ctx *gc_ctx(void) {
    ob_ctx_config config = {.threads = 2, .seed = 1, .rank = 0, .world_size = 1};
    return ob_ctx_new(&config);
}

#endif
