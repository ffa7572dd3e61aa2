/* Max-pooling and global average pooling: forward values against a direct
 * max and mean over each window (finite differences only check that backward
 * matches forward), gradients against finite differences, alone and chained
 * behind a convolution (the ImageNet stem), and the arguments to reject. */
#include "gradcheck/gradcheck.h"
#include "nn/ob_ops.h"

typedef struct {
    const char *name;
    int batch, in_h, in_w, channels;
    int kernel, stride, pad;
    double lo, hi; /* input range */
} pool_case;

/* Uniform random inputs make ties (which finite differences cannot handle)
 * vanishingly unlikely. All-negative inputs show padding that is not -inf. */
static const pool_case maxpool_cases[] = {
    {"maxpool 3x3/2 pad 1", 2, 7, 6, 3, 3, 2, 1, -1, 1},
    {"maxpool 3x3/2 pad 1 even", 2, 8, 8, 2, 3, 2, 1, -1, 1},
    {"maxpool 3x3/2 pad 1 negative", 2, 7, 8, 3, 3, 2, 1, -2, -1},
    {"maxpool 2x2/2", 2, 6, 4, 3, 2, 2, 0, -1, 1},
    {"maxpool 2x2/2 odd size", 3, 5, 7, 2, 2, 2, 0, -1, 1},
    {"maxpool 3x3/1 pad 1", 2, 4, 5, 2, 3, 1, 1, -1, 1},
};

static ob_tensor *maxpool_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    const pool_case *c = user;
    return ob_maxpool2d(ctx, in[0], c->kernel, c->stride, c->pad);
}

static ob_tensor *global_avgpool_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    (void)user;
    return ob_global_avgpool(ctx, in[0]);
}

/* 7x7/2 conv, 3x3/2 max-pool, global average pool: gradients flow through all three. */
static ob_tensor *stem_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    (void)user;
    ob_tensor *features = ob_conv2d(ctx, in[0], in[1], NULL, 2, 3, 1, NULL);
    return ob_global_avgpool(ctx, ob_maxpool2d(ctx, features, 3, 2, 1));
}

static double x_at(const ob_tensor *x, int64_t b, int64_t h, int64_t w, int64_t c) {
    return ob_f64(x)[((b * x->shape[1] + h) * x->shape[2] + w) * x->shape[3] + c];
}

/* Number of outputs differing from the max over their window's in-image taps (exact). */
static int64_t maxpool_value_mismatches(ob_ctx *ctx, const pool_case *c, ob_tensor *x) {
    int out_h = (c->in_h + 2 * c->pad - c->kernel) / c->stride + 1;
    int out_w = (c->in_w + 2 * c->pad - c->kernel) / c->stride + 1;
    ob_tensor *y = ob_maxpool2d(ctx, x, c->kernel, c->stride, c->pad);
    if (!y || y->shape[1] != out_h || y->shape[2] != out_w) return 1;
    int64_t mismatches = 0;
    for (int b = 0; b < c->batch; b++)
        for (int oh = 0; oh < out_h; oh++)
            for (int ow = 0; ow < out_w; ow++)
                for (int ch = 0; ch < c->channels; ch++) {
                    double want = -INFINITY;
                    for (int kh = 0; kh < c->kernel; kh++)
                        for (int kw = 0; kw < c->kernel; kw++) {
                            int ih = oh * c->stride - c->pad + kh, iw = ow * c->stride - c->pad + kw;
                            if (ih >= 0 && ih < c->in_h && iw >= 0 && iw < c->in_w)
                                want = fmax(want, x_at(x, b, ih, iw, ch));
                        }
                    mismatches += ob_f64(y)[((b * out_h + oh) * out_w + ow) * c->channels + ch] != want;
                }
    ob_ctx_step_reset(ctx);
    return mismatches;
}

static int check_maxpool(ob_ctx *ctx, const pool_case *c) {
    ob_tensor *x = gc_input(ctx, OB_SHAPE(c->batch, c->in_h, c->in_w, c->channels), 1, c->lo, c->hi);
    int64_t mismatches = maxpool_value_mismatches(ctx, c, x);
    printf("%s %s forward: %lld values differ from a direct max\n", mismatches ? "FAIL" : "ok  ", c->name,
           (long long)mismatches);
    int failures = gc_check(c->name, ctx, maxpool_forward, &x, 1, (void *)c, 400);
    gc_free_input(ctx, x);
    return failures + (mismatches != 0);
}

/* Worst |y - direct mean over the image| of global average pooling. */
static double global_avgpool_value_error(ob_ctx *ctx, ob_tensor *x) {
    ob_tensor *y = ob_global_avgpool(ctx, x);
    if (!y) return INFINITY;
    double worst = 0;
    for (int64_t b = 0; b < x->shape[0]; b++)
        for (int64_t ch = 0; ch < x->shape[3]; ch++) {
            double sum = 0;
            for (int64_t h = 0; h < x->shape[1]; h++)
                for (int64_t w = 0; w < x->shape[2]; w++) sum += x_at(x, b, h, w, ch);
            double want = sum / (double)(x->shape[1] * x->shape[2]);
            worst = fmax(worst, fabs(ob_f64(y)[b * x->shape[3] + ch] - want));
        }
    ob_ctx_step_reset(ctx);
    return worst;
}

static int check_global_avgpool(ob_ctx *ctx) {
    ob_tensor *x = gc_input(ctx, OB_SHAPE(2, 3, 5, 4), 1, -1, 1);
    double error = global_avgpool_value_error(ctx, x);
    printf("%s global avgpool forward: worst error %.3g against a direct mean\n",
           error <= 1e-12 ? "ok  " : "FAIL", error);
    int failures = gc_check("global avgpool", ctx, global_avgpool_forward, &x, 1, NULL, 400);
    gc_free_input(ctx, x);
    return failures + !(error <= 1e-12);
}

static int check_stem(ob_ctx *ctx) {
    ob_tensor *x = gc_input(ctx, OB_SHAPE(2, 13, 11, 3), 1, -1, 1);
    ob_tensor *w = gc_input(ctx, OB_SHAPE(4, 7, 7, 3), 2, -1, 1);
    ob_tensor *inputs[2] = {x, w};
    int failures = gc_check("conv 7x7/2 + maxpool 3x3/2 + avgpool", ctx, stem_forward, inputs, 2, NULL, 300);
    gc_free_input(ctx, x);
    gc_free_input(ctx, w);
    return failures;
}

/* A bad call must return NULL and say why; clears the error for the next one. */
static int rejected(ob_ctx *ctx, const char *what, const ob_tensor *got) {
    bool ok = !got && ob_ctx_error(ctx)[0];
    printf("%s rejects %s: %s\n", ok ? "ok  " : "FAIL", what, ob_ctx_error(ctx));
    ob_ctx_set_error(ctx, "%s", "");
    return !ok;
}

static int check_rejects(ob_ctx *ctx) {
    ob_tensor *x = gc_input(ctx, OB_SHAPE(2, 4, 4, 3), 1, -1, 1);
    ob_tensor *flat = gc_input(ctx, OB_SHAPE(2, 12), 2, -1, 1);
    ob_ctx_set_error(ctx, "%s", "");
    int failures = rejected(ctx, "pad above kernel/2", ob_maxpool2d(ctx, x, 3, 2, 2));
    failures += rejected(ctx, "a window larger than the padded input", ob_maxpool2d(ctx, x, 7, 1, 1));
    failures += rejected(ctx, "stride 0", ob_maxpool2d(ctx, x, 2, 0, 0));
    failures += rejected(ctx, "a 2-D maxpool input", ob_maxpool2d(ctx, flat, 2, 2, 0));
    failures += rejected(ctx, "a 2-D avgpool input", ob_global_avgpool(ctx, flat));
    ob_ctx_step_reset(ctx);
    gc_free_input(ctx, x);
    gc_free_input(ctx, flat);
    return failures;
}

int main(void) {
    ob_ctx *ctx = gc_ctx();
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof maxpool_cases / sizeof maxpool_cases[0]; i++)
        check_maxpool(ctx, &maxpool_cases[i]) ? failed++ : passed++;
    check_global_avgpool(ctx) ? failed++ : passed++;
    check_stem(ctx) ? failed++ : passed++;
    check_rejects(ctx) ? failed++ : passed++;
    ob_ctx_free(ctx);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
