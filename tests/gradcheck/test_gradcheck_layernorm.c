/* Layer norm against finite differences: gradients of x, gamma and beta on
 * token rows, on a 3-D input, on rows whose mean is far from zero against
 * their spread, and with gamma and beta shared by two calls (their
 * gradients must accumulate). */
#include "gradcheck/gradcheck.h"
#include "nn/ob_ops.h"

#define EPS 1e-5

static ob_tensor *layernorm_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    (void)user;
    return ob_layernorm(ctx, in[0], in[1], in[2], EPS);
}

/* layernorm(x) + layernorm(x2) with one gamma and beta */
static ob_tensor *shared_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    (void)user;
    return ob_add(ctx, ob_layernorm(ctx, in[0], in[1], in[2], EPS),
                  ob_layernorm(ctx, in[3], in[1], in[2], EPS));
}

/* x of the given shape with values in [lo, hi), gamma in [0.5, 1.5), beta
 * in [-1, 1). Returns gc_check's mismatch count. */
static int check_shape(ob_ctx *ctx, const char *name, int ndim, const int64_t *shape, double lo, double hi,
                       uint64_t salt) {
    ob_tensor *inputs[3];
    gc_norm_inputs(ctx, ndim, shape, salt, lo, hi, inputs);
    int rc = gc_check(name, ctx, layernorm_forward, inputs, 3, NULL, 200);
    for (int i = 0; i < 3; i++) gc_free_input(ctx, inputs[i]);
    return rc;
}

int main(void) {
    ob_ctx *ctx = gc_ctx();
    int failed = 0, passed = 0;
    check_shape(ctx, "layernorm rows", OB_SHAPE(6, 5), -2, 2, 10) ? failed++ : passed++;
    check_shape(ctx, "layernorm 3-d", OB_SHAPE(2, 3, 8), -1, 1, 20) ? failed++ : passed++;
    check_shape(ctx, "layernorm offset mean", OB_SHAPE(4, 7), 30, 31, 30) ? failed++ : passed++;
    /* Wider than one block of the gamma/beta reduction (64 columns). */
    check_shape(ctx, "layernorm wide", OB_SHAPE(3, 70), -1, 1, 40) ? failed++ : passed++;
    ob_tensor *shared[4];
    gc_norm_inputs(ctx, OB_SHAPE(3, 6), 50, -1, 1, shared);
    shared[3] = gc_input(ctx, OB_SHAPE(3, 6), 53, -2, 2);
    gc_check("layernorm shared gamma, beta", ctx, shared_forward, shared, 4, NULL, 200) ? failed++ : passed++;
    for (int i = 0; i < 4; i++) gc_free_input(ctx, shared[i]);
    ob_ctx_free(ctx);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
