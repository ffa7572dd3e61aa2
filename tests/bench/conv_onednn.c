/* conv_onednn: optbench's convolution against raw oneDNN's.
 *
 * DESIGN.md section 2 allows oneDNN's C API for CPU kernels "where it
 * measures faster"; this program measured it (oneDNN ~2x faster than
 * im2col + OpenBLAS), so optbench's F32 path now runs on oneDNN itself
 * (nn/cpu/dnnl_conv.c) and this shows what the op, its arena workspaces,
 * per-step weight reorders and gradient accumulation cost on top of the raw
 * primitives: a ratio near 1.0 is the goal. At every convolution
 * shape of the ResNet-50 `workstation` preset (batch 128, NHWC, f32) it
 * times one training pass of the conv -- forward, backward-data (dx) and
 * backward-weights (dw) -- two ways in the same process:
 *
 *   A  optbench: ob_conv2d through the op API with the tape on, then
 *      ob_backward_run from an output gradient of ones, then the arena reset
 *      (its oneDNN primitives come from the ctx's cache after the first pass);
 *   B  oneDNN (libdnnl-dev, 2.x C API): forward_training, backward_data and
 *      backward_weights primitives, activations in nhwc, weights in the
 *      format oneDNN prefers (chosen and reordered to once, at setup).
 *
 * Per-iteration work is counted on both sides: for oneDNN that includes the
 * weight reorders a training step would need each step when its backward
 * primitives want the weights (or give dw) in another format than the
 * forward keeps them in. The two are run in alternating repetitions
 * (A B A B ...) after a warm-up, so a change in machine load hits both; each
 * repetition runs passes for at least --min-time seconds, and the table
 * shows the median of --reps repetitions.
 *
 * Before timing, each shape is checked once: y, dx and dw of the two must
 * agree to a relative error <= 1e-4 (max |a - b| / max |b|, since an
 * element-wise ratio is meaningless at values near zero), else exit 1.
 *
 * Usage: conv_onednn [--threads N] [--reps N] [--min-time S] [--filter SUBSTR]
 * The last line is the headline: the geometric mean of the time ratio.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>

#include "nn/ob_backend.h"
#include "nn/ob_ctx.h"
#include "nn/ob_layers.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"
#include "nn/ob_tensor.h"

enum { BATCH = 128 }; /* the workstation preset's batch */
#define MAX_REL_ERR 1e-4
#define MAX_REPS 101

/* One convolution of the workstation network; pad = kernel / 2 ("same"). */
typedef struct {
    const char *name;
    int hw; /* input height = width */
    int in_c, out_c, kernel, stride;
} conv_shape;

/* kernels_bench's shapes (the stem, then per stage the 1x1 reduce, 3x3 and
 * 1x1 expand at 32/16/8/4 px), plus the strided 3x3 that opens stages 2-4. */
static const conv_shape SHAPES[] = {
    {"stem_3x3_1to16", 32, 1, 16, 3, 1},
    {"s1_1x1_64to16", 32, 64, 16, 1, 1},      {"s1_3x3_16to16", 32, 16, 16, 3, 1},
    {"s1_1x1_16to64", 32, 16, 64, 1, 1},      {"s2_3x3s2_32to32", 32, 32, 32, 3, 2},
    {"s2_1x1_128to32", 16, 128, 32, 1, 1},    {"s2_3x3_32to32", 16, 32, 32, 3, 1},
    {"s2_1x1_32to128", 16, 32, 128, 1, 1},    {"s3_3x3s2_64to64", 16, 64, 64, 3, 2},
    {"s3_1x1_256to64", 8, 256, 64, 1, 1},     {"s3_3x3_64to64", 8, 64, 64, 3, 1},
    {"s3_1x1_64to256", 8, 64, 256, 1, 1},     {"s4_3x3s2_128to128", 8, 128, 128, 3, 2},
    {"s4_1x1_512to128", 4, 512, 128, 1, 1},   {"s4_3x3_128to128", 4, 128, 128, 3, 1},
    {"s4_1x1_128to512", 4, 128, 512, 1, 1},
};
enum { N_SHAPES = (int)(sizeof SHAPES / sizeof SHAPES[0]) };

static int shape_pad(const conv_shape *s) { return s->kernel / 2; }
static int shape_out_hw(const conv_shape *s) {
    return (s->hw + 2 * shape_pad(s) - s->kernel) / s->stride + 1;
}
/* Forward, dgrad and wgrad are each 2 * (B*OH*OW) * Cout * (k*k*Cin) flops. */
static double pass_flops(const conv_shape *s) {
    double m = (double)BATCH * shape_out_hw(s) * shape_out_hw(s);
    return 3.0 * 2.0 * m * s->out_c * ((double)s->kernel * s->kernel * s->in_c);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Deterministic values in [-1, 1): reproducible runs without a library RNG. */
static void fill_uniform(float *v, int64_t n, uint64_t seed) {
    uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        v[i] = (float)((double)(state >> 11) * 0x1.0p-53 * 2.0 - 1.0);
    }
}

static void fill_value(float *v, int64_t n, float value) {
    for (int64_t i = 0; i < n; i++) v[i] = value;
}

/* ---- A: optbench ------------------------------------------------------ */

/* One conv layer's engine state: the layer (weight with a persistent
 * gradient), an input that needs a gradient (as every activation inside the
 * network does) and a persistent output gradient. The output gradient is
 * assigned to y->grad rather than filled through ob_grad_of each pass: in a
 * network the next layer's backward writes it, so zeroing and filling a
 * tensor as large as y is no part of the conv's cost. */
typedef struct {
    ob_params *params;
    ob_conv2d_layer *layer;
    ob_tensor *x, *dy;
} ob_case;

static void ob_case_free(ob_ctx *ctx, ob_case *c) {
    ob_tensor_free(ctx, c->x);
    ob_tensor_free(ctx, c->dy);
    if (c->params) ob_params_free(ctx, c->params);
    memset(c, 0, sizeof *c);
}

static int ob_case_init(ob_ctx *ctx, ob_case *c, const conv_shape *s) {
    memset(c, 0, sizeof *c);
    c->params = ob_params_new(OB_F32);
    if (c->params)
        c->layer = ob_conv2d_layer_new(ctx, c->params, "conv", s->in_c, s->out_c, s->kernel, s->stride,
                                       shape_pad(s), 1, false);
    const int oh = shape_out_hw(s);
    c->x = ob_tensor_new(ctx, OB_MEM_DATA, OB_F32, OB_SHAPE(BATCH, s->hw, s->hw, s->in_c));
    c->dy = ob_tensor_new(ctx, OB_MEM_ACTIVATIONS, OB_F32, OB_SHAPE(BATCH, oh, oh, s->out_c));
    if (!c->layer || !c->x || !c->dy) {
        ob_case_free(ctx, c);
        return -1;
    }
    fill_uniform(ob_f32(c->x), c->x->numel, 1);
    c->x->requires_grad = true;
    return 0;
}

/* Forward and backward; returns y with x->grad and the weight's gradient
 * filled, all valid until ob_case_end. NULL on error (message in ctx). */
static ob_tensor *ob_case_run(ob_ctx *ctx, ob_case *c) {
    ob_conv2d_layer *l = c->layer;
    ob_tensor *y = ob_conv2d(ctx, c->x, l->weight, l->bias, l->stride, l->pad, l->dilation, &l->base);
    if (!y) return NULL;
    y->grad = c->dy;
    return ob_backward_run(ctx) == 0 ? y : NULL;
}

static void ob_case_end(ob_ctx *ctx, ob_case *c) {
    c->x->grad = NULL; /* it lived in the arena, which the reset empties */
    ob_ctx_step_reset(ctx);
}

/* ---- B: oneDNN -------------------------------------------------------- */

static void dnnl_check(dnnl_status_t status, const char *what) {
    if (status == dnnl_success) return;
    fprintf(stderr, "conv_onednn: oneDNN %s failed (status %d)\n", what, (int)status);
    exit(2);
}
#define DNNL_TRY(call) dnnl_check((call), #call)

/* Primitives and memories of one conv's training pass. w_bwd and dw_out
 * alias w and dw unless the backward primitives want other formats. */
typedef struct {
    dnnl_primitive_t fwd, bwd_data, bwd_weights;
    dnnl_primitive_t w_to_bwd; /* w (fwd format) -> w_bwd, or NULL */
    dnnl_primitive_t dw_to_w;  /* dw (wgrad format) -> dw_out (fwd format), or NULL */
    dnnl_memory_t src, w, dst, diff_dst, diff_src, dw, w_bwd, dw_out;
    char impl[160];
} dnnl_case;

typedef struct {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
} dnnl_env;

static dnnl_memory_t dnnl_mem(const dnnl_env *env, const dnnl_memory_desc_t *md, void *handle) {
    dnnl_memory_t mem;
    DNNL_TRY(dnnl_memory_create(&mem, md, env->engine, handle ? handle : DNNL_MEMORY_ALLOCATE));
    return mem;
}

static void *dnnl_data(dnnl_memory_t mem) {
    void *p = NULL;
    DNNL_TRY(dnnl_memory_get_data_handle(mem, &p));
    return p;
}

static const dnnl_memory_desc_t *dnnl_md(dnnl_primitive_desc_t pd, dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

static void dnnl_run(const dnnl_env *env, dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args) {
    DNNL_TRY(dnnl_primitive_execute(p, env->stream, nargs, args));
}

static dnnl_primitive_t dnnl_make(dnnl_primitive_desc_t pd) {
    dnnl_primitive_t p;
    DNNL_TRY(dnnl_primitive_create(&p, pd));
    return p;
}

static dnnl_primitive_t reorder_make(const dnnl_env *env, dnnl_memory_t from, dnnl_memory_t to) {
    const dnnl_memory_desc_t *from_md, *to_md;
    DNNL_TRY(dnnl_memory_get_memory_desc(from, &from_md));
    DNNL_TRY(dnnl_memory_get_memory_desc(to, &to_md));
    dnnl_primitive_desc_t pd;
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&pd, from_md, env->engine, to_md, env->engine, NULL));
    dnnl_primitive_t p = dnnl_make(pd);
    DNNL_TRY(dnnl_primitive_desc_destroy(pd));
    return p;
}

static void reorder_run(const dnnl_env *env, dnnl_primitive_t p, dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    dnnl_run(env, p, 2, args);
}

/* Setup-only reorder (not timed): copies between layouts once. */
static void reorder_once(const dnnl_env *env, dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_primitive_t p = reorder_make(env, from, to);
    reorder_run(env, p, from, to);
    DNNL_TRY(dnnl_stream_wait(env->stream));
    DNNL_TRY(dnnl_primitive_destroy(p));
}

static const char *impl_name(dnnl_primitive_desc_t pd) {
    const char *name = "?";
    DNNL_TRY(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name));
    return name;
}

/* The geometry in oneDNN's terms; dims are logical (N, C, H, W) and
 * (O, I, H, W) whatever the memory format. */
typedef struct {
    dnnl_memory_desc_t src, dst, w_any, w_ohwi;
    dnnl_dims_t strides, pad_l, pad_r;
} dnnl_geom;

static void dnnl_geom_init(dnnl_geom *g, const conv_shape *s) {
    const int oh = shape_out_hw(s), k = s->kernel;
    dnnl_dims_t src = {BATCH, s->in_c, s->hw, s->hw}, dst = {BATCH, s->out_c, oh, oh};
    dnnl_dims_t w = {s->out_c, s->in_c, k, k};
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&g->src, 4, src, dnnl_f32, dnnl_nhwc));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&g->dst, 4, dst, dnnl_f32, dnnl_nhwc));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&g->w_any, 4, w, dnnl_f32, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&g->w_ohwi, 4, w, dnnl_f32, dnnl_ohwi));
    for (int i = 0; i < 2; i++) {
        g->strides[i] = s->stride;
        g->pad_l[i] = g->pad_r[i] = shape_pad(s);
    }
}

/* Forward pd with weights in the format oneDNN picks; the backward pds get
 * it as their hint and pick their own weight formats. */
static void dnnl_case_pds(const dnnl_env *env, const dnnl_geom *g, dnnl_primitive_desc_t pd[3]) {
    const dnnl_alg_kind_t alg = dnnl_convolution_direct;
    dnnl_convolution_desc_t d;
    DNNL_TRY(dnnl_convolution_forward_desc_init(&d, dnnl_forward_training, alg, &g->src, &g->w_any, NULL,
                                                &g->dst, g->strides, g->pad_l, g->pad_r));
    DNNL_TRY(dnnl_primitive_desc_create(&pd[0], &d, NULL, env->engine, NULL));
    DNNL_TRY(dnnl_convolution_backward_data_desc_init(&d, alg, &g->src, &g->w_any, &g->dst, g->strides,
                                                      g->pad_l, g->pad_r));
    DNNL_TRY(dnnl_primitive_desc_create(&pd[1], &d, NULL, env->engine, pd[0]));
    DNNL_TRY(dnnl_convolution_backward_weights_desc_init(&d, alg, &g->src, &g->w_any, NULL, &g->dst,
                                                         g->strides, g->pad_l, g->pad_r));
    DNNL_TRY(dnnl_primitive_desc_create(&pd[2], &d, NULL, env->engine, pd[0]));
}

/* src and diff_dst share optbench's buffers (both NHWC), so both sides read
 * the same inputs; the weights start from optbench's (ohwi), reordered once. */
static void dnnl_case_init(const dnnl_env *env, dnnl_case *c, const conv_shape *s, ob_case *ob) {
    memset(c, 0, sizeof *c);
    dnnl_geom g;
    dnnl_geom_init(&g, s);
    dnnl_primitive_desc_t pd[3];
    dnnl_case_pds(env, &g, pd);
    const dnnl_memory_desc_t *w_md = dnnl_md(pd[0], dnnl_query_weights_md);
    const dnnl_memory_desc_t *w_bwd_md = dnnl_md(pd[1], dnnl_query_weights_md);
    const dnnl_memory_desc_t *dw_md = dnnl_md(pd[2], dnnl_query_diff_weights_md);

    c->src = dnnl_mem(env, &g.src, ob->x->data);
    c->diff_dst = dnnl_mem(env, &g.dst, ob->dy->data);
    c->dst = dnnl_mem(env, &g.dst, NULL);
    c->diff_src = dnnl_mem(env, &g.src, NULL);
    c->w = dnnl_mem(env, w_md, NULL);
    c->dw = dnnl_mem(env, dw_md, NULL);
    dnnl_memory_t w_user = dnnl_mem(env, &g.w_ohwi, ob->layer->weight->data);
    reorder_once(env, w_user, c->w);
    DNNL_TRY(dnnl_memory_destroy(w_user));

    c->w_bwd = c->w;
    if (!dnnl_memory_desc_equal(w_md, w_bwd_md)) {
        c->w_bwd = dnnl_mem(env, w_bwd_md, NULL);
        c->w_to_bwd = reorder_make(env, c->w, c->w_bwd);
    }
    c->dw_out = c->dw;
    if (!dnnl_memory_desc_equal(w_md, dw_md)) {
        c->dw_out = dnnl_mem(env, w_md, NULL);
        c->dw_to_w = reorder_make(env, c->dw, c->dw_out);
    }
    snprintf(c->impl, sizeof c->impl, "%s / %s / %s%s%s", impl_name(pd[0]), impl_name(pd[1]),
             impl_name(pd[2]), c->w_to_bwd ? " +w reorder" : "", c->dw_to_w ? " +dw reorder" : "");
    c->fwd = dnnl_make(pd[0]);
    c->bwd_data = dnnl_make(pd[1]);
    c->bwd_weights = dnnl_make(pd[2]);
    for (int i = 0; i < 3; i++) DNNL_TRY(dnnl_primitive_desc_destroy(pd[i]));
}

static void dnnl_case_free(dnnl_case *c) {
    dnnl_primitive_t prims[] = {c->fwd, c->bwd_data, c->bwd_weights, c->w_to_bwd, c->dw_to_w};
    for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++)
        if (prims[i]) DNNL_TRY(dnnl_primitive_destroy(prims[i]));
    if (c->w_bwd != c->w) DNNL_TRY(dnnl_memory_destroy(c->w_bwd));
    if (c->dw_out != c->dw) DNNL_TRY(dnnl_memory_destroy(c->dw_out));
    dnnl_memory_t mems[] = {c->src, c->w, c->dst, c->diff_dst, c->diff_src, c->dw};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++) DNNL_TRY(dnnl_memory_destroy(mems[i]));
}

/* One training pass, everything a step would redo counted. */
static void dnnl_case_run(const dnnl_env *env, dnnl_case *c) {
    dnnl_exec_arg_t fwd[] = {{DNNL_ARG_SRC, c->src}, {DNNL_ARG_WEIGHTS, c->w}, {DNNL_ARG_DST, c->dst}};
    dnnl_run(env, c->fwd, 3, fwd);
    if (c->w_to_bwd) reorder_run(env, c->w_to_bwd, c->w, c->w_bwd);
    dnnl_exec_arg_t bwd_data[] = {
        {DNNL_ARG_DIFF_DST, c->diff_dst}, {DNNL_ARG_WEIGHTS, c->w_bwd}, {DNNL_ARG_DIFF_SRC, c->diff_src}};
    dnnl_run(env, c->bwd_data, 3, bwd_data);
    dnnl_exec_arg_t bwd_weights[] = {
        {DNNL_ARG_SRC, c->src}, {DNNL_ARG_DIFF_DST, c->diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, c->dw}};
    dnnl_run(env, c->bwd_weights, 3, bwd_weights);
    /* An optimizer updates w with dw, so dw must end up in w's format. */
    if (c->dw_to_w) reorder_run(env, c->dw_to_w, c->dw, c->dw_out);
    DNNL_TRY(dnnl_stream_wait(env->stream));
}

/* ---- correctness ------------------------------------------------------ */

/* max |a - b| / max |b|: a normwise relative error. */
static double rel_err(const float *a, const float *b, int64_t n) {
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - (double)b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

/* oneDNN's dw in optbench's layout [out_c, kh, kw, in_c] (a setup-time copy). */
static float *dnnl_dw_ohwi(const dnnl_env *env, const dnnl_case *c, const conv_shape *s) {
    const int k = s->kernel;
    dnnl_dims_t dims = {s->out_c, s->in_c, k, k};
    dnnl_memory_desc_t md;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&md, 4, dims, dnnl_f32, dnnl_ohwi));
    float *out = malloc(dnnl_memory_desc_get_size(&md));
    if (!out) return NULL;
    dnnl_memory_t mem = dnnl_mem(env, &md, out);
    reorder_once(env, c->dw, mem);
    DNNL_TRY(dnnl_memory_destroy(mem));
    return out;
}

/* Runs one pass each from fresh gradients and an uneven output gradient (a
 * constant one would hide a misplaced output channel in dx) and compares.
 * Returns the worst relative error, or a negative value on an engine error. */
static double check_case(ob_ctx *ctx, const dnnl_env *env, ob_case *ob, dnnl_case *dn, const conv_shape *s) {
    fill_uniform(ob_f32(ob->dy), ob->dy->numel, 2);
    ob_params_zero_grad(ob->params); /* optbench accumulates into dw */
    ob_tensor *y = ob_case_run(ctx, ob);
    dnnl_case_run(env, dn);
    float *dw = y ? dnnl_dw_ohwi(env, dn, s) : NULL;
    double err = -1;
    if (dw) {
        const ob_tensor *w_grad = ob->layer->weight->grad;
        err = rel_err(ob_f32(y), dnnl_data(dn->dst), y->numel);
        err = fmax(err, rel_err(ob_f32(ob->x->grad), dnnl_data(dn->diff_src), ob->x->numel));
        err = fmax(err, rel_err(ob_f32(w_grad), dw, w_grad->numel));
    }
    free(dw);
    ob_case_end(ctx, ob);
    fill_value(ob_f32(ob->dy), ob->dy->numel, 1.0f); /* the timed passes use ones */
    return err;
}

/* ---- timing ----------------------------------------------------------- */

typedef struct {
    ob_ctx *ctx;
    const dnnl_env *env;
    ob_case *ob;
    dnnl_case *dn;
    double min_time;
} bench;

/* Seconds per pass over one repetition of >= min_time; negative on error. */
static double time_ob(const bench *b) {
    int passes = 0;
    double t0 = now_s(), elapsed;
    do {
        ob_tensor *y = ob_case_run(b->ctx, b->ob);
        ob_case_end(b->ctx, b->ob);
        if (!y) return -1;
        passes++;
        elapsed = now_s() - t0;
    } while (elapsed < b->min_time);
    return elapsed / passes;
}

static double time_dnnl(const bench *b) {
    int passes = 0;
    double t0 = now_s(), elapsed;
    do {
        dnnl_case_run(b->env, b->dn);
        passes++;
        elapsed = now_s() - t0;
    } while (elapsed < b->min_time);
    return elapsed / passes;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Alternating repetitions after one warm-up each (page faults, thread pool
 * start, caches); medians into t[0] (optbench) and t[1] (oneDNN). */
static int time_pair(const bench *b, int reps, double t[2]) {
    double a[MAX_REPS], d[MAX_REPS];
    if (time_ob(b) < 0) return -1;
    time_dnnl(b);
    for (int r = 0; r < reps; r++) {
        a[r] = time_ob(b);
        d[r] = time_dnnl(b);
        if (a[r] < 0) return -1;
    }
    t[0] = median(a, reps);
    t[1] = median(d, reps);
    return 0;
}

/* ---- driver ----------------------------------------------------------- */

typedef struct {
    int threads, reps;
    double min_time;
    const char *filter;
} options;

static int parse_options(int argc, char **argv, options *o) {
    *o = (options){.threads = 2, .reps = 7, .min_time = 0.2, .filter = NULL};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val) goto usage;
        if (!strcmp(arg, "--threads")) o->threads = atoi(val);
        else if (!strcmp(arg, "--reps")) o->reps = atoi(val);
        else if (!strcmp(arg, "--min-time")) o->min_time = atof(val);
        else if (!strcmp(arg, "--filter")) o->filter = val;
        else goto usage;
        i++;
    }
    if (o->threads >= 1 && o->reps >= 1 && o->reps <= MAX_REPS && o->min_time >= 0) return 0;
usage:
    fprintf(stderr, "usage: conv_onednn [--threads N>=1] [--reps 1..%d] [--min-time SECONDS] "
                    "[--filter SUBSTRING]\n", MAX_REPS);
    return -1;
}

/* Measures one shape and prints its table row; returns the time ratio
 * optbench / oneDNN, 0 when the check failed, or a negative value on error. */
static double run_shape(ob_ctx *ctx, const dnnl_env *env, const options *o, const conv_shape *s) {
    ob_case ob;
    if (ob_case_init(ctx, &ob, s) != 0) {
        fprintf(stderr, "conv_onednn: %s: out of memory\n", s->name);
        return -1;
    }
    dnnl_case dn;
    dnnl_case_init(env, &dn, s, &ob);
    double ratio = -1, t[2];
    const double err = check_case(ctx, env, &ob, &dn, s);
    const bench b = {ctx, env, &ob, &dn, o->min_time};
    if (err < 0) {
        fprintf(stderr, "conv_onednn: %s: %s\n", s->name, ob_ctx_error(ctx));
    } else if (err > MAX_REL_ERR) {
        fprintf(stderr, "conv_onednn: %s: optbench and oneDNN disagree (relative error %.2e > %.0e)\n",
                s->name, err, MAX_REL_ERR);
        ratio = 0;
    } else if (time_pair(&b, o->reps, t) != 0) {
        fprintf(stderr, "conv_onednn: %s: %s\n", s->name, ob_ctx_error(ctx));
    } else {
        const double gflop = pass_flops(s) * 1e-9;
        ratio = t[0] / t[1];
        printf("| %-18s | %7.1f | %7.1f | %5.2f | %.1e | %s |\n", s->name, gflop / t[0], gflop / t[1], ratio,
               err, dn.impl);
        fflush(stdout);
    }
    dnnl_case_free(&dn);
    ob_case_free(ctx, &ob);
    return ratio;
}

static void print_header(const options *o, const ob_ctx *ctx) {
    printf("conv_onednn: one training pass (fwd + dgrad + wgrad) per conv, batch %d, NHWC f32, "
           "%d threads, median of %d alternating repetitions (>= %.2f s each); oneDNN %d.%d.%d\n\n",
           BATCH, ob_ctx_threads(ctx), o->reps, o->min_time, (int)dnnl_version()->major,
           (int)dnnl_version()->minor, (int)dnnl_version()->patch);
    printf("| shape | GFLOP/s optbench | GFLOP/s oneDNN | time ratio optbench/oneDNN | max rel err "
           "| oneDNN impl (fwd / dgrad / wgrad) |\n");
    printf("|---|---:|---:|---:|---:|---|\n");
}

int main(int argc, char **argv) {
    options o;
    if (parse_options(argc, argv, &o) != 0) return 2;
    ob_ctx *ctx = ob_ctx_new(&(ob_ctx_config){.threads = o.threads, .seed = 1, .rank = 0, .world_size = 1});
    if (!ctx) {
        fprintf(stderr, "conv_onednn: could not create the engine context\n");
        return 2;
    }
    /* ob_ctx sizes the OpenMP pool already; oneDNN (OpenMP runtime) uses the
     * same one, said here so the peer's thread count does not rest on that. */
    omp_set_num_threads(o.threads);
    dnnl_env env;
    DNNL_TRY(dnnl_engine_create(&env.engine, dnnl_cpu, 0));
    DNNL_TRY(dnnl_stream_create(&env.stream, env.engine, dnnl_stream_default_flags));

    print_header(&o, ctx);
    double log_sum = 0;
    int measured = 0, status = 0;
    for (int i = 0; i < N_SHAPES && status == 0; i++) {
        if (o.filter && !strstr(SHAPES[i].name, o.filter)) continue;
        double ratio = run_shape(ctx, &env, &o, &SHAPES[i]);
        if (ratio <= 0) {
            status = ratio == 0 ? 1 : 2;
        } else {
            log_sum += log(ratio);
            measured++;
        }
    }
    if (status == 0 && measured > 0) {
        const double g = exp(log_sum / measured);
        printf("\noptbench / oneDNN time ratio (geomean over %d shapes): %.2f (%s is faster, by %.2fx)\n",
               measured, g, g > 1 ? "oneDNN" : "optbench", g > 1 ? g : 1 / g);
    }
    DNNL_TRY(dnnl_stream_destroy(env.stream));
    DNNL_TRY(dnnl_engine_destroy(env.engine));
    ob_ctx_free(ctx);
    return status;
}
