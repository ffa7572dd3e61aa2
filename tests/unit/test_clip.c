/* Global-norm gradient clipping against hand values: the norm over all
 * gradients, the factor clip / (norm + 1e-6) when the norm exceeds the
 * limit, no change at or under it or when off, and a non-finite norm left
 * alone. */
#include <math.h>

#include "nn/ob_layers.h"
#include "ob_check.h"
#include "optimizers/ob_clip.h"
#include "tensor_access.h"

/* A linear 2 -> 1 with bias: weight gradient (3, 0), bias gradient 4, so
 * the global norm is 5. */
static ob_params *make_params(ob_ctx *ctx, ob_dtype dtype) {
    ob_params *params = ob_params_new(dtype);
    ob_linear_layer *layer = params ? ob_linear_layer_new(ctx, params, "fc", 2, 1, true) : NULL;
    if (!layer) {
        ob_params_free(ctx, params);
        return NULL;
    }
    set(layer->weight->grad, 0, 3);
    set(layer->weight->grad, 1, 0);
    set(layer->bias->grad, 0, 4);
    return params;
}

/* The three gradient values in registry order. */
static void grads_of(const ob_params *params, double out[3]) {
    const ob_tensor *w = ob_params_at(params, 0)->value->grad, *b = ob_params_at(params, 1)->value->grad;
    out[0] = get(w, 0);
    out[1] = get(w, 1);
    out[2] = get(b, 0);
}

static bool grads_are(const ob_params *params, double w0, double w1, double b, double tolerance) {
    double g[3];
    grads_of(params, g);
    return fabs(g[0] - w0) <= tolerance && fabs(g[1] - w1) <= tolerance && fabs(g[2] - b) <= tolerance;
}

static void test_dtype(ob_ctx *ctx, ob_dtype dtype) {
    double tolerance = dtype == OB_F64 ? 1e-15 : 1e-6;
    ob_params *params = make_params(ctx, dtype);
    if (!params) {
        check(false, "parameters built");
        return;
    }
    check(fabs(ob_grad_norm(params) - 5) <= 1e-15, "norm of (3, 0, 4) is 5");
    check(ob_clip_grad_norm(params, 5, 0) == 1 && grads_are(params, 3, 0, 4, 0), "clip 0 is off");
    check(ob_clip_grad_norm(params, 5, 5) == 1 && grads_are(params, 3, 0, 4, 0), "norm equal to the limit: kept");
    check(ob_clip_grad_norm(params, 5, 10) == 1 && grads_are(params, 3, 0, 4, 0), "norm under the limit: kept");
    check(ob_clip_grad_norm(params, NAN, 1) == 1 && grads_are(params, 3, 0, 4, 0), "NaN norm: untouched");
    check(ob_clip_grad_norm(params, INFINITY, 1) == 1 && grads_are(params, 3, 0, 4, 0), "infinite norm: untouched");

    /* limit 1: factor 1 / (5 + 1e-6), so (3, 0, 4) becomes (0.6, 0, 0.8) shrunk by 1 / (1 + 2e-7) */
    double factor = 1 / (5 + 1e-6);
    check(fabs(ob_clip_grad_norm(params, 5, 1) - factor) <= 1e-17, "clip 1: factor 1 / (5 + 1e-6)");
    check(grads_are(params, 3 * factor, 0, 4 * factor, tolerance), "clip 1: gradients scaled by the factor");
    check(ob_grad_norm(params) < 1 && ob_grad_norm(params) > 1 - 1e-6, "clip 1: the new norm is just under 1");
    ob_params_free(ctx, params);
}

int main(void) {
    ob_ctx *ctx = ob_ctx_new(&(ob_ctx_config){.threads = 1, .seed = 1, .world_size = 1});
    if (!ctx) {
        printf("cannot create a context\n0 passed, 1 failed\n");
        return 1;
    }
    test_dtype(ctx, OB_F32);
    test_dtype(ctx, OB_F64);
    ob_ctx_free(ctx);
    return report_checks();
}
