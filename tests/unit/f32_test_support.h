/* F32 tensors for op tests that compare against double references written
 * in the test: random fills, trainable inputs with persistent gradients,
 * and closeness checks (with ob_check.h's counters). */
#ifndef OB_F32_TEST_SUPPORT_H
#define OB_F32_TEST_SUPPORT_H

#include <math.h>

#include "nn/ob_ctx.h"
#include "nn/ob_rng.h"
#include "ob_check.h"

/* |actual - expected| <= tol * max(1, |expected|), with the values on failure. */
#define CHECK_CLOSE(actual, expected, tol)                                                                \
    do {                                                                                                  \
        double a_ = (actual), e_ = (expected);                                                            \
        if (fabs(a_ - e_) <= fmax(1.0, fabs(e_)) * (tol)) {                                               \
            checks_passed++;                                                                              \
        } else {                                                                                          \
            checks_failed++;                                                                              \
            fprintf(stderr, "%s:%d: FAILED: %s = %.9g, expected %.9g\n", __FILE__, __LINE__, #actual, a_, \
                    e_);                                                                                  \
        }                                                                                                 \
    } while (0)

/* Largest |a - b| / max(1, |b|) over n values: one CHECK covers an array. */
static inline double worst_error(int64_t n, const float *actual, const double *expected) {
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(actual[i] - expected[i]) / fmax(1.0, fabs(expected[i])));
    return worst;
}

static inline void fill_uniform(ob_tensor *t, uint64_t salt, double lo, double hi) {
    ob_rng_stream stream = ob_rng_stream_make(77, OB_RNG_TEST, 0, salt);
    for (int64_t i = 0; i < t->numel; i++)
        ob_f32(t)[i] = (float)(lo + (hi - lo) * ob_rng_uniform(&stream, (uint64_t)i));
}

/* A persistent F32 tensor that needs a gradient, with a persistent one. */
static inline ob_tensor *trainable(ob_ctx *ctx, int ndim, const int64_t *shape, uint64_t salt, double lo,
                                   double hi) {
    ob_tensor *t = ob_tensor_new(ctx, OB_MEM_PARAMS, OB_F32, ndim, shape);
    t->grad = ob_tensor_new(ctx, OB_MEM_GRADS, OB_F32, ndim, shape);
    t->requires_grad = true;
    fill_uniform(t, salt, lo, hi);
    return t;
}

static inline void free_trainable(ob_ctx *ctx, ob_tensor *t) {
    ob_tensor_free(ctx, t->grad);
    ob_tensor_free(ctx, t);
}

#endif
