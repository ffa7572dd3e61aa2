/* Shared by the base-optimizer tests (test_sgd, test_adamw, test_lamb):
 * the parameters they step, the gradients they feed, the decay rule
 * restated, and the pure-decay check. */
#ifndef OPTIMIZER_TEST_SUPPORT_H
#define OPTIMIZER_TEST_SUPPORT_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "nn/ob_layers.h"
#include "ob_check.h"
#include "optimizers/ob_optimizer.h"
#include "tensor_access.h"

#define STEPS 5

/* The context each optimizer test runs in: 2 threads, so the kernels'
 * parallel paths run. NULL (with the failing count line printed) when it
 * cannot be made. */
static inline ob_ctx *optimizer_test_ctx(void) {
    ob_ctx *ctx = ob_ctx_new(&(ob_ctx_config){.threads = 2, .seed = 7, .world_size = 1});
    if (!ctx) printf("cannot create a context\n0 passed, 1 failed\n");
    return ctx;
}

/* Dyadic values, exact in both dtypes and in any evaluation order (no
 * transcendental calls, nothing for FMA contraction to change), so the
 * reference starts from the very numbers the kernel sees. Parameters lie in
 * [0.125, 0.88], gradients in [-0.17, 0.17] (some exactly 0). */
static inline double initial_value(int param, int64_t i) {
    return 0.125 + (double)((i * 37 + param * 11) % 97) / 128;
}
static inline double grad_value(int param, int64_t i, int step) {
    return (double)((i * 53 + param * 29 + step * 17) % 89 - 44) / 256;
}

/* fc (linear 150 -> 120 with bias: weight large enough for the kernels'
 * parallel paths), bn (batch-norm over 8 channels), conv (1x1, 8 -> 8, no
 * bias): registry order fc.weight, fc.bias, bn.weight, bn.bias, conv.weight. */
static inline ob_params *make_params(ob_ctx *ctx, ob_dtype dtype) {
    ob_params *params = ob_params_new(dtype);
    if (!params || !ob_linear_layer_new(ctx, params, "fc", 150, 120, true) ||
        !ob_batchnorm_layer_new(ctx, params, "bn", 8, 0.1, 1e-5, 1.0) ||
        !ob_conv2d_layer_new(ctx, params, "conv", 8, 8, 1, 1, 0, 1, false)) {
        printf("cannot build the parameters: %s\n", ob_ctx_error(ctx));
        ob_params_free(ctx, params);
        return NULL;
    }
    for (int p = 0; p < ob_params_count(params); p++) {
        ob_tensor *value = ob_params_at(params, p)->value;
        for (int64_t i = 0; i < value->numel; i++) set(value, i, initial_value(p, i));
    }
    return params;
}

static inline void set_grads(ob_params *params, int step) {
    for (int p = 0; p < ob_params_count(params); p++) {
        ob_tensor *grad = ob_params_at(params, p)->value->grad;
        for (int64_t i = 0; i < grad->numel; i++) set(grad, i, grad_value(p, i, step));
    }
}

/* The recipe's rule, restated here rather than taken from the library. */
static inline bool reference_decays(ob_param_kind kind, bool decay_norm_and_bias) {
    return decay_norm_and_bias || kind == OB_KIND_WEIGHT || kind == OB_KIND_CONV_WEIGHT ||
           kind == OB_KIND_EMBEDDING;
}

/* Error relative to the value, floored at 1 (about the largest magnitude a
 * parameter or buffer reaches here): a buffer that cancels down near zero
 * keeps the rounding of the terms it summed, which says nothing about the
 * update rule. */
static inline double relative_error(double got, double want) { return fabs(got - want) / fmax(fabs(want), 1.0); }

static inline int64_t params_bytes(const ob_params *params) {
    int64_t bytes = 0;
    for (int p = 0; p < ob_params_count(params); p++)
        bytes += (int64_t)ob_tensor_bytes(ob_params_at(params, p)->value);
    return bytes;
}

/* One step with zero gradients on fresh parameters (f64) must be pure
 * decay: decayed kinds shrink by 1 - lr wd, the others keep their values.
 * Frees opt and params; label names the case. */
static inline void check_pure_decay(ob_ctx *ctx, ob_params *params, ob_optimizer *opt, double lr, double wd,
                                    bool decay_norm_and_bias, const char *label) {
    if (!opt) {
        check(false, "decay by kind: optimizer built");
        ob_params_free(ctx, params);
        return;
    }
    ob_params_zero_grad(params);
    check(ob_optimizer_step(opt, lr) == 0, "decay by kind: step");
    for (int p = 0; p < ob_params_count(params); p++) {
        const ob_param *param = ob_params_at(params, p);
        double factor = reference_decays(param->kind, decay_norm_and_bias) ? 1 - lr * wd : 1;
        bool ok = true;
        for (int64_t i = 0; i < param->value->numel; i++)
            ok = ok && fabs(get(param->value, i) - factor * initial_value(p, i)) <= 1e-15;
        char what[OB_NAME_MAX + 160];
        snprintf(what, sizeof what, "%s: %s (%s) scaled by %g", label, param->name, ob_param_kind_name(param->kind),
                 factor);
        check(ok, what);
    }
    ob_optimizer_free(ctx, opt);
    ob_params_free(ctx, params);
}

#endif
