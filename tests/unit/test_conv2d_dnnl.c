/* The F32 convolution on oneDNN (the backend table's path when built with
 * OB_WITH_DNNL) against the F32 im2col + GEMM kernels (the CPU reference,
 * called directly): y, dx, dw and dbias agree, backward accumulates into
 * gradients that start at GRAD_START, a second run gives the same bits, and
 * the forward asks the op for no column matrix. Without oneDNN there is
 * nothing to test: exit 77, which ctest reports as skipped. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ob_backend.h"
#include "nn/ob_rng.h"

#define OB_REAL_F32
#include "nn/cpu/real.h"
#include "nn/cpu/kernels.h"

#include "ob_check.h"

#define TOLERANCE 1e-4
#define GRAD_START 0.25f
#define SKIPPED 77

typedef struct {
    const char *name;
    int batch, in_h, in_w, in_c, out_c, kernel_h, kernel_w, stride, pad, dilation;
    bool bias;
} conv_case;

static const conv_case cases[] = {
    {"workstation stem 3x3 1->16", 8, 32, 32, 1, 16, 3, 3, 1, 1, 1, false},
    {"layer1 1x1 64->16", 8, 32, 32, 64, 16, 1, 1, 1, 0, 1, false},
    {"layer1 3x3 16->16", 8, 32, 32, 16, 16, 3, 3, 1, 1, 1, false},
    {"layer1 1x1 16->64", 8, 32, 32, 16, 64, 1, 1, 1, 0, 1, false},
    {"layer2 3x3/2 32->32", 8, 32, 32, 32, 32, 3, 3, 2, 1, 1, false},
    {"layer2 downsample 1x1/2 64->128", 8, 32, 32, 64, 128, 1, 1, 2, 0, 1, false},
    {"layer3 3x3/2 64->64", 8, 16, 16, 64, 64, 3, 3, 2, 1, 1, false},
    {"layer3 1x1 256->64", 8, 8, 8, 256, 64, 1, 1, 1, 0, 1, false},
    {"layer4 3x3/2 128->128", 8, 8, 8, 128, 128, 3, 3, 2, 1, 1, false},
    {"layer4 3x3 128->128 bias", 8, 4, 4, 128, 128, 3, 3, 1, 1, 1, true},
    {"imagenet stem 7x7/2 p3 3->16 bias", 3, 40, 36, 3, 16, 7, 7, 2, 3, 1, true},
    {"3x3 dilation 2 p2 bias", 3, 13, 17, 5, 7, 3, 3, 1, 2, 2, true},
    {"non-square 3x5 kernel, 9x14 input, bias", 3, 9, 14, 6, 10, 3, 5, 1, 1, 1, true},
    {"5x3/2 p2, odd extents, no bias", 3, 11, 7, 4, 9, 5, 3, 2, 2, 1, false},
};

static int out_extent(int in, int kernel, int stride, int pad, int dilation) {
    return (in + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
}

static ob_conv2d_geom case_geom(const conv_case *c) {
    return (ob_conv2d_geom){.batch = c->batch, .in_h = c->in_h, .in_w = c->in_w, .in_c = c->in_c,
                            .out_h = out_extent(c->in_h, c->kernel_h, c->stride, c->pad, c->dilation),
                            .out_w = out_extent(c->in_w, c->kernel_w, c->stride, c->pad, c->dilation),
                            .out_c = c->out_c, .kernel_h = c->kernel_h, .kernel_w = c->kernel_w,
                            .stride = c->stride, .pad = c->pad, .dilation = c->dilation};
}

/* The operands of one case, uniform in [-1, 1). */
typedef struct {
    ob_tensor *x, *w, *bias, *dy;
} operands;

static ob_tensor *random_tensor(ob_ctx *ctx, int ndim, const int64_t *shape, uint64_t salt) {
    ob_tensor *t = ob_tensor_new(ctx, OB_MEM_ACTIVATIONS, OB_F32, ndim, shape);
    ob_rng_stream stream = ob_rng_stream_make(7, OB_RNG_TEST, 0, salt);
    for (int64_t i = 0; t && i < t->numel; i++) ob_f32(t)[i] = 2 * ob_rng_uniform(&stream, i) - 1;
    return t;
}

static operands make_operands(ob_ctx *ctx, const conv_case *c, const ob_conv2d_geom *g) {
    return (operands){
        random_tensor(ctx, OB_SHAPE(g->batch, g->in_h, g->in_w, g->in_c), 1),
        random_tensor(ctx, OB_SHAPE(g->out_c, g->kernel_h, g->kernel_w, g->in_c), 2),
        c->bias ? random_tensor(ctx, OB_SHAPE(g->out_c), 3) : NULL,
        random_tensor(ctx, OB_SHAPE(g->batch, g->out_h, g->out_w, g->out_c), 4),
    };
}

static void free_operands(ob_ctx *ctx, operands *o) {
    ob_tensor *all[] = {o->x, o->w, o->bias, o->dy};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ob_tensor_free(ctx, all[i]);
}

/* One path's results: y, and dx, dw, dbias started at GRAD_START. */
typedef struct {
    float *y, *dx, *dw, *dbias;
} results;

static results new_results(const ob_conv2d_geom *g) {
    int64_t sizes[4] = {g->batch * g->out_h * g->out_w * g->out_c, g->batch * g->in_h * g->in_w * g->in_c,
                        (int64_t)g->out_c * g->kernel_h * g->kernel_w * g->in_c, g->out_c};
    float *buffers[4];
    for (int i = 0; i < 4; i++) {
        buffers[i] = malloc((size_t)sizes[i] * sizeof(float));
        for (int64_t j = 0; buffers[i] && j < sizes[i]; j++) buffers[i][j] = GRAD_START;
    }
    return (results){buffers[0], buffers[1], buffers[2], buffers[3]};
}

static void free_results(results *r) {
    free(r->y);
    free(r->dx);
    free(r->dw);
    free(r->dbias);
}

static const float *data_or_null(const ob_tensor *t) { return t ? t->data : NULL; }

/* The im2col + GEMM kernels with their own column matrices. */
static results reference_run(const ob_conv2d_geom *g, const operands *o) {
    results r = new_results(g);
    size_t cols_bytes = (size_t)(g->batch * g->out_h * g->out_w * ob_conv2d_patch_size(g)) * sizeof(float);
    float *cols = malloc(cols_bytes), *dcols = malloc(cols_bytes);
    k_conv2d_forward_f32(g, o->x->data, o->w->data, data_or_null(o->bias), r.y, cols);
    k_conv2d_backward_f32(g, o->x->data, o->w->data, o->dy->data, r.dx, r.dw, o->bias ? r.dbias : NULL, cols,
                          dcols);
    free(cols);
    free(dcols);
    return r;
}

/* The backend table's F32 path, as the op drives it: workspaces from the arena. */
static results backend_run(ob_ctx *ctx, const ob_conv2d_geom *g, const operands *o) {
    results r = new_results(g);
    ob_tensor y = *o->dy, dx = *o->x, dw = *o->w, dbias = o->bias ? *o->bias : *o->w;
    y.data = r.y;
    dx.data = r.dx;
    dw.data = r.dw;
    dbias.data = r.dbias;
    const ob_backend *backend = ob_backend_of(o->x);
    int64_t scratch_elements = backend->conv2d_workspace_elements(ctx, g, OB_F32, OB_CONV2D_BACKWARD);
    ob_tensor *scratch = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(scratch_elements));
    int status = scratch ? backend->conv2d_forward(ctx, g, o->x, o->w, o->bias, &y, NULL) : 1;
    if (status == 0)
        status = backend->conv2d_backward(ctx, g, o->x, o->w, o->dy, &dx, &dw, o->bias ? &dbias : NULL, NULL,
                                          scratch);
    if (status != 0) printf("conv2d failed: %s\n", ob_ctx_error(ctx));
    check(status == 0, "the backend's conv2d runs");
    ob_ctx_step_reset(ctx);
    return r;
}

/* max |a - b| / max |b - offset|: element-wise ratios mean nothing near zero,
 * and gradients carry their GRAD_START offset. */
static double relative_error(const float *a, const float *b, int64_t n, double offset) {
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - (double)b[i]));
        scale = fmax(scale, fabs((double)b[i] - offset));
    }
    return scale > 0 ? diff / scale : diff;
}

static bool same_bits(const results *a, const results *b, const ob_conv2d_geom *g) {
    return !memcmp(a->y, b->y, (size_t)(g->batch * g->out_h * g->out_w * g->out_c) * sizeof(float)) &&
           !memcmp(a->dx, b->dx, (size_t)(g->batch * g->in_h * g->in_w * g->in_c) * sizeof(float)) &&
           !memcmp(a->dw, b->dw, (size_t)(g->out_c * g->kernel_h * g->kernel_w * g->in_c) * sizeof(float)) &&
           !memcmp(a->dbias, b->dbias, (size_t)g->out_c * sizeof(float));
}

static void test_case(ob_ctx *ctx, const conv_case *c) {
    ob_conv2d_geom g = case_geom(c);
    operands o = make_operands(ctx, c, &g);
    results want = reference_run(&g, &o);
    results got = backend_run(ctx, &g, &o), again = backend_run(ctx, &g, &o);
    int64_t y_n = g.batch * g.out_h * g.out_w * g.out_c, x_n = g.batch * g.in_h * g.in_w * g.in_c;
    double errors[4] = {relative_error(got.y, want.y, y_n, 0),
                        relative_error(got.dx, want.dx, x_n, GRAD_START),
                        relative_error(got.dw, want.dw, o.w->numel, GRAD_START),
                        c->bias ? relative_error(got.dbias, want.dbias, g.out_c, GRAD_START) : 0};
    printf("%-42s relative error y %.2g dx %.2g dw %.2g dbias %.2g\n", c->name, errors[0], errors[1],
           errors[2], errors[3]);
    for (int i = 0; i < 4; i++) check(errors[i] <= TOLERANCE, c->name);
    check(same_bits(&got, &again, &g), "two runs give the same bits");
    free_results(&want);
    free_results(&got);
    free_results(&again);
    free_operands(ctx, &o);
}

int main(void) {
#ifndef OB_WITH_DNNL
    printf("built without oneDNN (OB_WITH_DNNL off): nothing to test\n");
    return SKIPPED;
#endif
    ob_ctx *ctx = ob_ctx_new(&(ob_ctx_config){.threads = 2, .seed = 1, .rank = 0, .world_size = 1});
    if (!ctx) return 1;
    const ob_backend *cpu = ob_backend_get(OB_CPU);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ob_conv2d_geom g = case_geom(&cases[i]);
        check(cpu->conv2d_workspace_elements(ctx, &g, OB_F32, OB_CONV2D_FORWARD) == 0,
              "oneDNN's forward wants no column matrix");
        test_case(ctx, &cases[i]);
    }
    ob_ctx_free(ctx);
    return report_checks();
}
