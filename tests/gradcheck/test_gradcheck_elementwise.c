/* ReLU and residual add against finite differences. */
#include "gradcheck/gradcheck.h"
#include "nn/ob_ops.h"

static ob_tensor *relu_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    (void)user;
    return ob_relu(ctx, in[0]);
}

/* relu(a + b) + a: a feeds two ops, so its gradient must accumulate. */
static ob_tensor *residual_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    (void)user;
    return ob_add(ctx, ob_relu(ctx, ob_add(ctx, in[0], in[1])), in[0]);
}

int main(void) {
    ob_ctx *ctx = gc_ctx();
    int failed = 0, passed = 0;
    ob_tensor *a = gc_input(ctx, OB_SHAPE(2, 3, 3, 4), 1, -1, 1);
    ob_tensor *b = gc_input(ctx, OB_SHAPE(2, 3, 3, 4), 2, -1, 1);
    ob_tensor *relu_in[1] = {a}, *add_in[2] = {a, b};
    int rc = gc_check("relu", ctx, relu_forward, relu_in, 1, NULL, 1000);
    rc ? failed++ : passed++;
    rc = gc_check("residual", ctx, residual_forward, add_in, 2, NULL, 1000);
    rc ? failed++ : passed++;
    gc_free_input(ctx, a);
    gc_free_input(ctx, b);
    ob_ctx_free(ctx);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
