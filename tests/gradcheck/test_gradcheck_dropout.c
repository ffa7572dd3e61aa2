/* Dropout in training mode at a fixed step against finite differences: the
 * mask is the same in every forward, so the op is linear in x and the
 * backward must apply the very mask the forward drew. Also p = 0 (the
 * identity) and two sites on one input (different masks, gradients add). */
#include "gradcheck/gradcheck.h"
#include "nn/ob_ops.h"

#define STEP 17

static ob_tensor *dropout_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    return ob_dropout(ctx, in[0], user);
}

/* dropout at site 1 + dropout at site 2 of the same x */
static ob_tensor *two_sites_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    const ob_dropout_spec *spec = user;
    ob_dropout_spec other = *spec;
    other.site = spec->site + 1;
    return ob_add(ctx, ob_dropout(ctx, in[0], spec), ob_dropout(ctx, in[0], &other));
}

int main(void) {
    ob_ctx *ctx = gc_ctx();
    int failed = 0, passed = 0;
    ob_tensor *x = gc_input(ctx, OB_SHAPE(3, 40), 1, -2, 2);
    ob_tensor *inputs[1] = {x};
    ob_dropout_spec train = {.p = 0.3, .training = true, .step = STEP, .site = 1};
    ob_dropout_spec off = {.p = 0.0, .training = true, .step = STEP, .site = 1};
    gc_check("dropout p 0.3", ctx, dropout_forward, inputs, 1, &train, 1000) ? failed++ : passed++;
    gc_check("dropout p 0", ctx, dropout_forward, inputs, 1, &off, 1000) ? failed++ : passed++;
    gc_check("dropout two sites", ctx, two_sites_forward, inputs, 1, &train, 1000) ? failed++ : passed++;
    gc_free_input(ctx, x);
    ob_ctx_free(ctx);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
