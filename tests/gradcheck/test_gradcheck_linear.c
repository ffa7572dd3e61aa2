/* Linear layer against finite differences: gradients of x, w and b, with
 * and without a bias. */
#include "gradcheck/gradcheck.h"
#include "nn/ob_ops.h"

/* in[2] is the bias, or NULL. */
static ob_tensor *linear_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    (void)user;
    return ob_linear(ctx, in[0], in[1], in[2], NULL);
}

static int check_linear(ob_ctx *ctx, const char *name, int64_t batch, int64_t in, int64_t out, bool bias) {
    ob_tensor *x = gc_input(ctx, OB_SHAPE(batch, in), 1, -1, 1);
    ob_tensor *w = gc_input(ctx, OB_SHAPE(out, in), 2, -1, 1);
    ob_tensor *b = bias ? gc_input(ctx, OB_SHAPE(out), 3, -1, 1) : NULL;
    ob_tensor *inputs[3] = {x, w, b};
    int rc = gc_check(name, ctx, linear_forward, inputs, bias ? 3 : 2, NULL, 1000);
    gc_free_input(ctx, x);
    gc_free_input(ctx, w);
    if (b) gc_free_input(ctx, b);
    return rc;
}

int main(void) {
    ob_ctx *ctx = gc_ctx();
    int failed = 0, passed = 0;
    int rc = check_linear(ctx, "linear with bias", 4, 5, 3, true);
    rc ? failed++ : passed++;
    rc = check_linear(ctx, "linear without bias", 3, 7, 6, false);
    rc ? failed++ : passed++;
    ob_ctx_free(ctx);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
