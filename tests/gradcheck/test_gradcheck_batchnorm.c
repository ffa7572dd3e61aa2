/* Training-mode batch-norm against finite differences: gradients of x,
 * gamma and beta, for NHWC and [N, C] inputs down to two rows per channel,
 * a mean far from zero and more channels than one kernel block. */
#include "gradcheck/gradcheck.h"
#include "nn/ob_ops.h"

#define MOMENTUM 0.1
#define EPS 1e-5

/* Running statistics, updated by every forward (they do not change y). */
typedef struct {
    ob_tensor *running_mean, *running_var;
} bn_stats;

static ob_tensor *bn_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    bn_stats *stats = user;
    return ob_batchnorm(ctx, in[0], in[1], in[2], stats ? stats->running_mean : NULL,
                        stats ? stats->running_var : NULL, true, MOMENTUM, EPS);
}

/* One case: x of the given shape with values in [lo, hi), gamma in
 * [0.5, 1.5), beta in [-1, 1). Returns gc_check's mismatch count. */
static int check_shape(ob_ctx *ctx, const char *name, int ndim, const int64_t *shape, double lo, double hi,
                       bool with_running_stats, uint64_t salt) {
    int64_t channels = shape[ndim - 1];
    ob_tensor *inputs[3];
    gc_norm_inputs(ctx, ndim, shape, salt, lo, hi, inputs);
    bn_stats stats = {ob_tensor_new(ctx, OB_MEM_PARAMS, OB_F64, OB_SHAPE(channels)),
                      ob_tensor_new(ctx, OB_MEM_PARAMS, OB_F64, OB_SHAPE(channels))};
    int rc = gc_check(name, ctx, bn_forward, inputs, 3, with_running_stats ? &stats : NULL, 200);
    ob_tensor_free(ctx, stats.running_mean);
    ob_tensor_free(ctx, stats.running_var);
    for (int i = 0; i < 3; i++) gc_free_input(ctx, inputs[i]);
    return rc;
}

int main(void) {
    ob_ctx *ctx = gc_ctx();
    int failed = 0, passed = 0;
    int rc = check_shape(ctx, "batchnorm nhwc", OB_SHAPE(2, 3, 3, 4), -2, 2, true, 10);
    rc ? failed++ : passed++;
    rc = check_shape(ctx, "batchnorm nc", OB_SHAPE(5, 6), -1, 1, false, 20);
    rc ? failed++ : passed++;
    rc = check_shape(ctx, "batchnorm two rows", OB_SHAPE(2, 3), -1, 1, true, 30);
    rc ? failed++ : passed++;
    /* A mean far from zero against the spread exercises the shifted sums. */
    rc = check_shape(ctx, "batchnorm offset mean", OB_SHAPE(3, 2, 2, 5), 50, 51, false, 40);
    rc ? failed++ : passed++;
    /* More channels than the kernels' channel block (512). */
    rc = check_shape(ctx, "batchnorm wide", OB_SHAPE(3, 520), -1, 1, true, 50);
    rc ? failed++ : passed++;
    ob_ctx_free(ctx);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
