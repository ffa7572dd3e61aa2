/* Conv2d in float against a direct 7-loop convolution in double: forward,
 * and the x, w, bias gradients (which must accumulate), on the workstation
 * ResNet-50 shapes and others; repeat runs give identical bits; the K-FAC
 * capture hook; the im2col kernel against a direct im2col; bad arguments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ob_backend.h"
#include "nn/ob_layers.h"
#include "nn/ob_ops.h"
#include "nn/ob_rng.h"
#include "nn/ob_tape.h"

#include "ob_check.h"

#define TOLERANCE 1e-5
/* Gradients start here, not at 0, so the test sees that backward accumulates. */
#define GRAD_START 0.25

typedef struct {
    const char *name;
    int batch, in_h, in_w, in_c, out_c, kernel, stride, pad, dilation;
    bool bias;
} conv_case;

/* The kernels work through the batch in blocks of about 4 MiB of column matrix:
 * layer1 3x3 (7 images a block) and layer2 3x3/2 (14) span two blocks here. */
static const conv_case cases[] = {
    {"workstation stem 3x3 1->16", 4, 32, 32, 1, 16, 3, 1, 1, 1, false},
    {"layer1 3x3 16->16", 9, 32, 32, 16, 16, 3, 1, 1, 1, false},
    {"layer1 1x1 16->64", 4, 32, 32, 16, 64, 1, 1, 0, 1, false},
    {"layer1 1x1 64->16", 4, 32, 32, 64, 16, 1, 1, 0, 1, false},
    {"layer2 3x3/2 32->32", 16, 32, 32, 32, 32, 3, 2, 1, 1, false},
    {"layer2 downsample 1x1/2 64->128", 4, 32, 32, 64, 128, 1, 2, 0, 1, false},
    {"layer3 3x3 64->64", 4, 8, 8, 64, 64, 3, 1, 1, 1, false},
    {"layer4 3x3 128->128", 4, 4, 4, 128, 128, 3, 1, 1, 1, false},
    {"imagenet stem 7x7/2 p3 3->16 bias", 2, 40, 36, 3, 16, 7, 2, 3, 1, true},
    {"3x3 dilation 2 p2 bias", 3, 13, 17, 5, 7, 3, 1, 2, 2, true},
    {"1x1 24->300 bias (bias sums in several blocks)", 3, 24, 20, 24, 300, 1, 1, 0, 1, true},
};

static int out_extent(int in, int kernel, int stride, int pad, int dilation) {
    return (in + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
}

/* A persistent F32 tensor, uniform in [-1, 1); with a gradient starting at GRAD_START if asked. */
static ob_tensor *random_tensor(ob_ctx *ctx, int ndim, const int64_t *shape, uint64_t salt, bool needs_grad) {
    ob_tensor *t = ob_tensor_new(ctx, OB_MEM_ACTIVATIONS, OB_F32, ndim, shape);
    ob_rng_stream stream = ob_rng_stream_make(42, OB_RNG_TEST, 0, salt);
    for (int64_t i = 0; i < t->numel; i++) ob_f32(t)[i] = 2 * ob_rng_uniform(&stream, i) - 1;
    if (needs_grad) {
        t->grad = ob_tensor_new(ctx, OB_MEM_GRADS, OB_F32, ndim, shape);
        t->requires_grad = true;
    }
    return t;
}

static void free_tensor(ob_ctx *ctx, ob_tensor *t) {
    if (!t) return;
    ob_tensor_free(ctx, t->grad);
    ob_tensor_free(ctx, t);
}

/* The reference: y = conv(x, w) + bias and, for the output gradient dy, the
 * gradients of x, w and bias, all in double straight from the definition. */
typedef struct {
    double *y, *dx, *dw, *dbias;
} reference;

static reference reference_conv(const conv_case *c, const float *x, const float *w, const float *bias,
                                const float *dy) {
    int out_h = out_extent(c->in_h, c->kernel, c->stride, c->pad, c->dilation);
    int out_w = out_extent(c->in_w, c->kernel, c->stride, c->pad, c->dilation);
    int k = c->kernel;
    reference r = {calloc((size_t)c->batch * out_h * out_w * c->out_c, sizeof(double)),
                   calloc((size_t)c->batch * c->in_h * c->in_w * c->in_c, sizeof(double)),
                   calloc((size_t)c->out_c * k * k * c->in_c, sizeof(double)),
                   calloc((size_t)c->out_c, sizeof(double))};
    for (int b = 0; b < c->batch; b++)
        for (int oh = 0; oh < out_h; oh++)
            for (int ow = 0; ow < out_w; ow++)
                for (int oc = 0; oc < c->out_c; oc++) {
                    size_t at = (((size_t)b * out_h + oh) * out_w + ow) * c->out_c + oc;
                    double sum = bias ? bias[oc] : 0.0, grad = dy[at];
                    for (int kh = 0; kh < k; kh++)
                        for (int kw = 0; kw < k; kw++)
                            for (int ic = 0; ic < c->in_c; ic++) {
                                int ih = oh * c->stride - c->pad + kh * c->dilation;
                                int iw = ow * c->stride - c->pad + kw * c->dilation;
                                if (ih < 0 || ih >= c->in_h || iw < 0 || iw >= c->in_w) continue;
                                size_t xi = (((size_t)b * c->in_h + ih) * c->in_w + iw) * c->in_c + ic;
                                size_t wi = (((size_t)oc * k + kh) * k + kw) * c->in_c + ic;
                                sum += (double)x[xi] * w[wi];
                                r.dx[xi] += grad * w[wi];
                                r.dw[wi] += grad * x[xi];
                            }
                    r.y[at] = sum;
                    r.dbias[oc] += grad;
                }
    return r;
}

static void free_reference(reference *r) {
    free(r->y);
    free(r->dx);
    free(r->dw);
    free(r->dbias);
}

/* max |got - offset - want| / max |want| */
static double relative_error(const ob_tensor *got, double offset, const double *want) {
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < got->numel; i++) {
        worst = fmax(worst, fabs(ob_f32(got)[i] - offset - want[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    return worst / fmax(scale, 1e-30);
}

static bool same_bits(const ob_tensor *a, const ob_tensor *b) {
    return a->numel == b->numel && memcmp(a->data, b->data, ob_tensor_bytes(a)) == 0;
}

/* One forward and backward with dy from `dy_salt`; returns y and (in *grads) copies
 * of the x, w, bias gradients, all persistent. Gradients are reset to GRAD_START first. */
static ob_tensor *run_conv(ob_ctx *ctx, const conv_case *c, ob_tensor *const *in, ob_tensor **grads) {
    for (int i = 0; i < 3; i++)
        if (in[i]) ob_backend_of(in[i])->fill(in[i]->grad, GRAD_START);
    ob_tensor *y = ob_conv2d(ctx, in[0], in[1], in[2], c->stride, c->pad, c->dilation, NULL);
    if (!y) return NULL;
    ob_tensor *dy = ob_grad_of(ctx, y);
    ob_rng_stream stream = ob_rng_stream_make(42, OB_RNG_TEST, 0, 9);
    for (int64_t i = 0; i < dy->numel; i++) ob_f32(dy)[i] = 2 * ob_rng_uniform(&stream, i) - 1;
    ob_tensor *out = ob_tensor_new(ctx, OB_MEM_ACTIVATIONS, OB_F32, y->ndim, y->shape);
    ob_tensor *dy_copy = ob_tensor_new(ctx, OB_MEM_ACTIVATIONS, OB_F32, y->ndim, y->shape);
    ob_backend_of(y)->copy(y, out);
    ob_backend_of(y)->copy(dy, dy_copy);
    out->grad = dy_copy;
    CHECK(ob_backward_run(ctx) == 0);
    ob_ctx_step_reset(ctx);
    for (int i = 0; i < 3; i++) {
        grads[i] = NULL;
        if (!in[i]) continue;
        grads[i] = ob_tensor_new(ctx, OB_MEM_GRADS, OB_F32, in[i]->ndim, in[i]->shape);
        ob_backend_of(in[i])->copy(in[i]->grad, grads[i]);
    }
    return out;
}

static void check_case(ob_ctx *ctx, const conv_case *c) {
    ob_tensor *x = random_tensor(ctx, OB_SHAPE(c->batch, c->in_h, c->in_w, c->in_c), 1, true);
    ob_tensor *w = random_tensor(ctx, OB_SHAPE(c->out_c, c->kernel, c->kernel, c->in_c), 2, true);
    ob_tensor *b = c->bias ? random_tensor(ctx, OB_SHAPE(c->out_c), 3, true) : NULL;
    ob_tensor *in[3] = {x, w, b}, *grads[3], *again_grads[3];
    ob_tensor *y = run_conv(ctx, c, in, grads);
    ob_tensor *again = run_conv(ctx, c, in, again_grads);
    CHECK(y && again);
    if (!y || !again) return;
    reference r = reference_conv(c, ob_f32(x), ob_f32(w), b ? ob_f32(b) : NULL, ob_f32(y->grad));
    double errors[4] = {relative_error(y, 0, r.y), relative_error(grads[0], GRAD_START, r.dx),
                        relative_error(grads[1], GRAD_START, r.dw),
                        b ? relative_error(grads[2], GRAD_START, r.dbias) : 0};
    bool repeatable = same_bits(y, again);
    for (int i = 0; i < 3; i++) repeatable = repeatable && (!in[i] || same_bits(grads[i], again_grads[i]));
    printf("%-48s relative error y %.2g dx %.2g dw %.2g", c->name, errors[0], errors[1], errors[2]);
    if (b) printf(" dbias %.2g", errors[3]);
    printf("%s\n", repeatable ? ", repeatable" : ", NOT REPEATABLE");
    for (int i = 0; i < 4; i++) CHECK(errors[i] <= TOLERANCE);
    CHECK(repeatable);
    free_reference(&r);
    free_tensor(ctx, y);
    free_tensor(ctx, again);
    for (int i = 0; i < 3; i++) {
        free_tensor(ctx, grads[i]);
        free_tensor(ctx, again_grads[i]);
        free_tensor(ctx, in[i]);
    }
}

/* The hook sees x in forward and dy in backward only while capture is on. */
static void check_kfac_capture(ob_ctx *ctx, bool pointwise) {
    int kernel = pointwise ? 1 : 3, pad = pointwise ? 0 : 1;
    ob_tensor *x = random_tensor(ctx, OB_SHAPE(2, 6, 5, 3), 1, true);
    ob_tensor *w = random_tensor(ctx, OB_SHAPE(4, kernel, kernel, 3), 2, true);
    for (int capture = 0; capture <= 1; capture++) {
        ob_layer hook = {.capture = capture};
        ob_tensor *y = ob_conv2d(ctx, x, w, NULL, 1, pad, 1, &hook);
        CHECK(y != NULL);
        if (!y) break;
        CHECK(hook.captured_input == (capture ? x : NULL));
        CHECK(hook.captured_grad_output == NULL);
        ob_backend_of(y)->fill(ob_grad_of(ctx, y), 1.0);
        CHECK(ob_backward_run(ctx) == 0);
        CHECK(hook.captured_grad_output == (capture ? y->grad : NULL));
        ob_ctx_step_reset(ctx);
    }
    free_tensor(ctx, x);
    free_tensor(ctx, w);
}

/* The backend's im2col equals cols[(b, oh, ow), (kh, kw, ic)] = x[b, ih, iw, ic] (0 outside). */
static void check_im2col(ob_ctx *ctx, int kernel_h, int kernel_w, int stride, int pad, int dilation) {
    ob_conv2d_geom g = {.batch = 2, .in_h = 9, .in_w = 7, .in_c = 3, .out_c = 1, .kernel_h = kernel_h,
                        .kernel_w = kernel_w, .stride = stride, .pad = pad, .dilation = dilation};
    g.out_h = out_extent(g.in_h, kernel_h, stride, pad, dilation);
    g.out_w = out_extent(g.in_w, kernel_w, stride, pad, dilation);
    int64_t patch = ob_conv2d_patch_size(&g);
    ob_tensor *x = random_tensor(ctx, OB_SHAPE(g.batch, g.in_h, g.in_w, g.in_c), 4, false);
    int64_t rows = g.batch * g.out_h * g.out_w;
    ob_tensor *cols = ob_tensor_new(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(rows, patch));
    ob_backend_of(x)->fill(cols, NAN); /* every element must be written */
    ob_backend_of(x)->im2col(&g, x, cols);
    int64_t mismatches = 0;
    for (int b = 0; b < g.batch; b++)
        for (int oh = 0; oh < g.out_h; oh++)
            for (int ow = 0; ow < g.out_w; ow++)
                for (int kh = 0; kh < kernel_h; kh++)
                    for (int kw = 0; kw < kernel_w; kw++)
                        for (int ic = 0; ic < g.in_c; ic++) {
                            int ih = oh * stride - pad + kh * dilation;
                            int iw = ow * stride - pad + kw * dilation;
                            bool inside = ih >= 0 && ih < g.in_h && iw >= 0 && iw < g.in_w;
                            int64_t at = (((int64_t)b * g.in_h + ih) * g.in_w + iw) * g.in_c + ic;
                            float want = inside ? ob_f32(x)[at] : 0;
                            int64_t row = ((int64_t)b * g.out_h + oh) * g.out_w + ow;
                            float got = ob_f32(cols)[row * patch + (kh * kernel_w + kw) * g.in_c + ic];
                            mismatches += !(got == want);
                        }
    printf("im2col %dx%d stride %d pad %d dilation %d: %lld mismatches\n", kernel_h, kernel_w, stride, pad,
           dilation, (long long)mismatches);
    CHECK(mismatches == 0);
    free_tensor(ctx, x);
    free_tensor(ctx, cols);
}

/* A bad call must return NULL and say why; clears the error for the next one. */
static void check_rejected(ob_ctx *ctx, const char *what, const ob_tensor *got) {
    printf("rejects %s: %s\n", what, ob_ctx_error(ctx));
    CHECK(got == NULL);
    CHECK(ob_ctx_error(ctx)[0] != '\0');
    ob_ctx_set_error(ctx, "%s", "");
}

static void check_bad_arguments(ob_ctx *ctx) {
    ob_tensor *x = random_tensor(ctx, OB_SHAPE(2, 5, 5, 3), 1, false);
    ob_tensor *w = random_tensor(ctx, OB_SHAPE(4, 3, 3, 3), 2, false);
    ob_tensor *w_wrong_c = random_tensor(ctx, OB_SHAPE(4, 3, 3, 2), 3, false);
    ob_tensor *bias_wrong = random_tensor(ctx, OB_SHAPE(3), 4, false);
    ob_tensor *flat = random_tensor(ctx, OB_SHAPE(2, 75), 5, false);
    ob_tensor *w_f64 = ob_tensor_new(ctx, OB_MEM_PARAMS, OB_F64, OB_SHAPE(4, 3, 3, 3));
    ob_ctx_set_error(ctx, "%s", "");
    check_rejected(ctx, "in_c mismatch", ob_conv2d(ctx, x, w_wrong_c, NULL, 1, 1, 1, NULL));
    check_rejected(ctx, "bias of the wrong size", ob_conv2d(ctx, x, w, bias_wrong, 1, 1, 1, NULL));
    check_rejected(ctx, "2-D x", ob_conv2d(ctx, flat, w, NULL, 1, 1, 1, NULL));
    check_rejected(ctx, "mixed dtypes", ob_conv2d(ctx, x, w_f64, NULL, 1, 1, 1, NULL));
    check_rejected(ctx, "stride 0", ob_conv2d(ctx, x, w, NULL, 0, 1, 1, NULL));
    check_rejected(ctx, "dilation 0", ob_conv2d(ctx, x, w, NULL, 1, 1, 0, NULL));
    check_rejected(ctx, "negative pad", ob_conv2d(ctx, x, w, NULL, 1, -1, 1, NULL));
    check_rejected(ctx, "kernel beyond the padded input", ob_conv2d(ctx, x, w, NULL, 1, 0, 3, NULL));
    ob_ctx_step_reset(ctx);
    free_tensor(ctx, x);
    free_tensor(ctx, w);
    free_tensor(ctx, w_wrong_c);
    free_tensor(ctx, bias_wrong);
    free_tensor(ctx, flat);
    free_tensor(ctx, w_f64);
}

int main(void) {
    ob_ctx_config config = {.threads = 2, .seed = 1, .rank = 0, .world_size = 1};
    ob_ctx *ctx = ob_ctx_new(&config);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(ctx, &cases[i]);
    check_kfac_capture(ctx, false);
    check_kfac_capture(ctx, true);
    check_im2col(ctx, 3, 3, 1, 1, 1);
    check_im2col(ctx, 3, 3, 2, 1, 2);
    check_im2col(ctx, 7, 7, 2, 3, 1);
    check_im2col(ctx, 1, 1, 2, 0, 1);
    check_im2col(ctx, 1, 3, 1, 1, 1);
    check_im2col(ctx, 3, 2, 2, 3, 2);
    check_bad_arguments(ctx);
    ob_ctx_free(ctx);
    return report_checks();
}
