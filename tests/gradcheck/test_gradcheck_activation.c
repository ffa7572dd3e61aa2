/* GELU and tanh against finite differences, over inputs that reach both
 * tails (|x| up to 4). */
#include "gradcheck/gradcheck.h"
#include "nn/ob_ops.h"

static ob_tensor *gelu_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    (void)user;
    return ob_gelu(ctx, in[0]);
}

static ob_tensor *tanh_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    (void)user;
    return ob_tanh(ctx, in[0]);
}

int main(void) {
    ob_ctx *ctx = gc_ctx();
    int failed = 0, passed = 0;
    ob_tensor *x = gc_input(ctx, OB_SHAPE(4, 25), 1, -4, 4);
    ob_tensor *inputs[1] = {x};
    gc_check("gelu", ctx, gelu_forward, inputs, 1, NULL, 1000) ? failed++ : passed++;
    gc_check("tanh", ctx, tanh_forward, inputs, 1, NULL, 1000) ? failed++ : passed++;
    gc_free_input(ctx, x);
    ob_ctx_free(ctx);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
