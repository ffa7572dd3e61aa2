/* F32 convolution on oneDNN's C API (see dnnl_conv.h for the contract).
 *
 * Each (geometry, bias, pass) gets a cached record on first use: the
 * primitive, memory objects whose data handles are pointed at the op's
 * buffers on every call, and, when oneDNN wants the weights in another
 * layout than our OHWI, a reorder and a buffer in its layout. Weights are
 * reordered on every call: they change every step and are small.
 *
 * oneDNN overwrites its outputs, the backend contract accumulates: dx is
 * computed into the op's scratch and added; dw is moved from the weight
 * gradient's own buffer into OHWI by a reorder with a sum post-op, which
 * adds; dbias is added from the record's buffer. Those weight-sized buffers
 * belong to the record (their size follows the layout oneDNN chose); the
 * activation-sized scratch comes from the op's arena.
 *
 * Determinism: the primitives and the adds give the same bits on every run
 * with the same thread count (oneDNN runs on our OpenMP pool).
 */
#include "nn/cpu/dnnl_conv.h"

#include <stdbool.h>
#include <stdlib.h>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

/* Return a failed status from a function that returns dnnl_status_t. */
#define TRY(call)                                        \
    do {                                                 \
        dnnl_status_t status_ = (call);                  \
        if (status_ != dnnl_success) return status_;     \
    } while (0)

typedef enum { PASS_FORWARD, PASS_BACKWARD_DATA, PASS_BACKWARD_WEIGHTS } conv_pass;

/* The execute arguments of a pass: two activations, weights (or their
 * gradient) and the optional bias (or its gradient). */
typedef struct {
    int activation_args[2];
    int weights_arg, bias_arg;
} pass_args;

static const pass_args PASS_ARGS[] = {
    [PASS_FORWARD] = {{DNNL_ARG_SRC, DNNL_ARG_DST}, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS},
    [PASS_BACKWARD_DATA] = {{DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC}, DNNL_ARG_WEIGHTS, 0},
    [PASS_BACKWARD_WEIGHTS] = {{DNNL_ARG_SRC, DNNL_ARG_DIFF_DST}, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS},
};

typedef struct {
    ob_conv2d_geom geom;
    conv_pass pass;
    bool bias; /* forward: adds a bias; backward weights: computes dbias */
    dnnl_primitive_t conv;
    /* Forward and backward data: OHWI w -> weights_conv, NULL when the primitive
     * reads OHWI itself. Backward weights: weights_conv -> OHWI dw, adding. */
    dnnl_primitive_t weights_reorder;
    dnnl_memory_t activations[2];       /* in PASS_ARGS order; handles set per call */
    dnnl_memory_t weights_ohwi;         /* the op's w (or dw); handle set per call */
    dnnl_memory_t weights_conv;         /* own buffer in the primitive's layout, or NULL */
    dnnl_memory_t bias_mem;             /* forward: the op's bias; backward weights: own buffer */
} cached_conv;

typedef struct {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    cached_conv *convs;
    int count, capacity;
} dnnl_state;

static int report(ob_ctx *ctx, dnnl_status_t status, const char *what) {
    if (status == dnnl_success) return 0;
    ob_ctx_set_error(ctx, "conv2d: oneDNN %s failed: %s", what, dnnl_status2str(status));
    return 1;
}

/* ---- records ------------------------------------------------------------ */

/* The geometry in oneDNN's terms: dims are logical (N, C, H, W) and
 * (O, I, H, W) whatever the layout; dilation counts from 0. */
typedef struct {
    dnnl_memory_desc_t src, dst, weights_any, weights_ohwi, bias;
    dnnl_dims_t strides, dilates, pad_l, pad_r;
} conv_descs;

static dnnl_status_t conv_descs_init(const ob_conv2d_geom *g, conv_descs *d) {
    dnnl_dims_t src = {g->batch, g->in_c, g->in_h, g->in_w}, dst = {g->batch, g->out_c, g->out_h, g->out_w};
    dnnl_dims_t weights = {g->out_c, g->in_c, g->kernel_h, g->kernel_w}, bias = {g->out_c};
    TRY(dnnl_memory_desc_init_by_tag(&d->src, 4, src, dnnl_f32, dnnl_nhwc));
    TRY(dnnl_memory_desc_init_by_tag(&d->dst, 4, dst, dnnl_f32, dnnl_nhwc));
    TRY(dnnl_memory_desc_init_by_tag(&d->weights_any, 4, weights, dnnl_f32, dnnl_format_tag_any));
    TRY(dnnl_memory_desc_init_by_tag(&d->weights_ohwi, 4, weights, dnnl_f32, dnnl_ohwi));
    TRY(dnnl_memory_desc_init_by_tag(&d->bias, 1, bias, dnnl_f32, dnnl_a));
    for (int i = 0; i < 2; i++) {
        d->strides[i] = g->stride;
        d->dilates[i] = g->dilation - 1;
        /* Our out extent floors like oneDNN's consistency check, so symmetric padding fits. */
        d->pad_l[i] = d->pad_r[i] = g->pad;
    }
    return dnnl_success;
}

static dnnl_status_t conv_op_desc(const conv_descs *d, conv_pass pass, bool bias,
                                  dnnl_convolution_desc_t *op) {
    const dnnl_alg_kind_t alg = dnnl_convolution_direct;
    const dnnl_memory_desc_t *bias_md = bias ? &d->bias : NULL;
    if (pass == PASS_FORWARD)
        return dnnl_dilated_convolution_forward_desc_init(op, dnnl_forward_training, alg, &d->src,
                                                          &d->weights_any, bias_md, &d->dst, d->strides,
                                                          d->dilates, d->pad_l, d->pad_r);
    if (pass == PASS_BACKWARD_DATA)
        return dnnl_dilated_convolution_backward_data_desc_init(op, alg, &d->src, &d->weights_any, &d->dst,
                                                                d->strides, d->dilates, d->pad_l, d->pad_r);
    return dnnl_dilated_convolution_backward_weights_desc_init(op, alg, &d->src, &d->weights_any, bias_md,
                                                               &d->dst, d->strides, d->dilates, d->pad_l,
                                                               d->pad_r);
}

/* Backward primitive descriptors need the forward one as a hint. */
static dnnl_status_t conv_pd(const dnnl_state *s, const conv_descs *d, conv_pass pass, bool bias,
                             dnnl_primitive_desc_t *pd) {
    dnnl_convolution_desc_t op;
    TRY(conv_op_desc(d, PASS_FORWARD, bias, &op));
    if (pass == PASS_FORWARD) return dnnl_primitive_desc_create(pd, &op, NULL, s->engine, NULL);
    dnnl_primitive_desc_t forward;
    TRY(dnnl_primitive_desc_create(&forward, &op, NULL, s->engine, NULL));
    dnnl_status_t status = conv_op_desc(d, pass, bias, &op);
    if (status == dnnl_success) status = dnnl_primitive_desc_create(pd, &op, NULL, s->engine, forward);
    dnnl_primitive_desc_destroy(forward);
    return status;
}

static const dnnl_memory_desc_t *arg_md(const_dnnl_primitive_desc_t pd, int arg) {
    return dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
}

/* attr: "add to what the destination holds" (a sum post-op). */
static dnnl_status_t accumulate_attr(dnnl_primitive_attr_t *attr) {
    dnnl_post_ops_t ops;
    TRY(dnnl_primitive_attr_create(attr));
    dnnl_status_t status = dnnl_post_ops_create(&ops);
    if (status != dnnl_success) return status;
    status = dnnl_post_ops_append_sum(ops, 1.0f);
    if (status == dnnl_success) status = dnnl_primitive_attr_set_post_ops(*attr, ops);
    dnnl_post_ops_destroy(ops);
    return status;
}

static dnnl_status_t reorder_make(const dnnl_state *s, dnnl_memory_t from, dnnl_memory_t to, bool accumulate,
                                  dnnl_primitive_t *reorder) {
    const dnnl_memory_desc_t *from_md, *to_md;
    TRY(dnnl_memory_get_memory_desc(from, &from_md));
    TRY(dnnl_memory_get_memory_desc(to, &to_md));
    dnnl_primitive_attr_t attr = NULL;
    dnnl_status_t status = accumulate ? accumulate_attr(&attr) : dnnl_success;
    dnnl_primitive_desc_t pd;
    if (status == dnnl_success)
        status = dnnl_reorder_primitive_desc_create(&pd, from_md, s->engine, to_md, s->engine, attr);
    if (status == dnnl_success) {
        status = dnnl_primitive_create(reorder, pd);
        dnnl_primitive_desc_destroy(pd);
    }
    if (attr) dnnl_primitive_attr_destroy(attr);
    return status;
}

/* The weight gradient always goes through its own buffer: the reorder out of
 * it is what adds into dw. */
static dnnl_status_t weights_make(const dnnl_state *s, cached_conv *c, const conv_descs *d,
                                  const_dnnl_primitive_desc_t pd) {
    bool gradient = c->pass == PASS_BACKWARD_WEIGHTS;
    const dnnl_memory_desc_t *conv_md = arg_md(pd, PASS_ARGS[c->pass].weights_arg);
    TRY(dnnl_memory_create(&c->weights_ohwi, &d->weights_ohwi, s->engine, DNNL_MEMORY_NONE));
    if (!gradient && dnnl_memory_desc_equal(conv_md, &d->weights_ohwi)) return dnnl_success;
    TRY(dnnl_memory_create(&c->weights_conv, conv_md, s->engine, DNNL_MEMORY_ALLOCATE));
    return gradient ? reorder_make(s, c->weights_conv, c->weights_ohwi, true, &c->weights_reorder)
                    : reorder_make(s, c->weights_ohwi, c->weights_conv, false, &c->weights_reorder);
}

static dnnl_status_t conv_make_from_pd(const dnnl_state *s, cached_conv *c, const conv_descs *d,
                                       const_dnnl_primitive_desc_t pd) {
    const pass_args *args = &PASS_ARGS[c->pass];
    for (int i = 0; i < 2; i++)
        TRY(dnnl_memory_create(&c->activations[i], arg_md(pd, args->activation_args[i]), s->engine,
                               DNNL_MEMORY_NONE));
    TRY(weights_make(s, c, d, pd));
    if (c->bias)
        TRY(dnnl_memory_create(&c->bias_mem, &d->bias, s->engine,
                               c->pass == PASS_BACKWARD_WEIGHTS ? DNNL_MEMORY_ALLOCATE : DNNL_MEMORY_NONE));
    return dnnl_primitive_create(&c->conv, pd);
}

static dnnl_status_t conv_make(const dnnl_state *s, cached_conv *c) {
    conv_descs d;
    TRY(conv_descs_init(&c->geom, &d));
    dnnl_primitive_desc_t pd;
    TRY(conv_pd(s, &d, c->pass, c->bias, &pd));
    dnnl_status_t status = conv_make_from_pd(s, c, &d, pd);
    dnnl_primitive_desc_destroy(pd);
    return status;
}

/* Frees what a record holds, also a partly made one. */
static void conv_free(cached_conv *c) {
    dnnl_primitive_t primitives[] = {c->conv, c->weights_reorder};
    for (size_t i = 0; i < sizeof primitives / sizeof primitives[0]; i++)
        if (primitives[i]) dnnl_primitive_destroy(primitives[i]);
    dnnl_memory_t memories[] = {c->activations[0], c->activations[1], c->weights_ohwi, c->weights_conv,
                                c->bias_mem};
    for (size_t i = 0; i < sizeof memories / sizeof memories[0]; i++)
        if (memories[i]) dnnl_memory_destroy(memories[i]);
}

/* ---- the ctx's cache ---------------------------------------------------- */

static void state_free(void *state) {
    dnnl_state *s = state;
    for (int i = 0; i < s->count; i++) conv_free(&s->convs[i]);
    free(s->convs);
    if (s->stream) dnnl_stream_destroy(s->stream);
    if (s->engine) dnnl_engine_destroy(s->engine);
    free(s);
}

static dnnl_state *state_of(ob_ctx *ctx) {
    dnnl_state *s = ob_ctx_backend_state(ctx, OB_CPU);
    if (s) return s;
    s = calloc(1, sizeof *s);
    if (!s) {
        ob_ctx_set_error(ctx, "conv2d: out of memory for the oneDNN state");
        return NULL;
    }
    dnnl_status_t status = dnnl_engine_create(&s->engine, dnnl_cpu, 0);
    if (status == dnnl_success) status = dnnl_stream_create(&s->stream, s->engine, dnnl_stream_default_flags);
    if (report(ctx, status, "engine setup") != 0) {
        state_free(s);
        return NULL;
    }
    ob_ctx_set_backend_state(ctx, OB_CPU, s, state_free);
    return s;
}

static bool same_geom(const ob_conv2d_geom *a, const ob_conv2d_geom *b) {
    return a->batch == b->batch && a->in_h == b->in_h && a->in_w == b->in_w && a->in_c == b->in_c &&
           a->out_h == b->out_h && a->out_w == b->out_w && a->out_c == b->out_c &&
           a->kernel_h == b->kernel_h && a->kernel_w == b->kernel_w && a->stride == b->stride &&
           a->pad == b->pad && a->dilation == b->dilation;
}

static bool has_room(ob_ctx *ctx, dnnl_state *s) {
    if (s->count < s->capacity) return true;
    int capacity = s->capacity ? 2 * s->capacity : 16;
    cached_conv *grown = realloc(s->convs, (size_t)capacity * sizeof *grown);
    if (!grown) {
        ob_ctx_set_error(ctx, "conv2d: out of memory for the oneDNN primitive cache");
        return false;
    }
    s->convs = grown;
    s->capacity = capacity;
    return true;
}

/* The record for (g, pass, bias), made on first use; NULL on failure. The
 * pointer is valid until the next call (the cache may move). */
static cached_conv *conv_for(ob_ctx *ctx, dnnl_state **state, const ob_conv2d_geom *g, conv_pass pass,
                             bool bias) {
    dnnl_state *s = *state = state_of(ctx);
    if (!s) return NULL;
    for (int i = 0; i < s->count; i++) {
        cached_conv *c = &s->convs[i];
        if (c->pass == pass && c->bias == bias && same_geom(&c->geom, g)) return c;
    }
    if (!has_room(ctx, s)) return NULL;
    cached_conv *c = &s->convs[s->count];
    *c = (cached_conv){.geom = *g, .pass = pass, .bias = bias};
    if (report(ctx, conv_make(s, c), "primitive creation") != 0) {
        conv_free(c);
        return NULL;
    }
    s->count++;
    return c;
}

/* ---- execution ---------------------------------------------------------- */

/* Points the record's memories at this call's buffers (NULL: unused). */
static dnnl_status_t conv_bind(cached_conv *c, const float *activation0, const float *activation1,
                               const float *weights_ohwi, const float *bias) {
    /* oneDNN's handles are not const; inputs are only read. */
    TRY(dnnl_memory_set_data_handle(c->activations[0], (void *)activation0));
    TRY(dnnl_memory_set_data_handle(c->activations[1], (void *)activation1));
    if (weights_ohwi) TRY(dnnl_memory_set_data_handle(c->weights_ohwi, (void *)weights_ohwi));
    if (bias && c->pass != PASS_BACKWARD_WEIGHTS) TRY(dnnl_memory_set_data_handle(c->bias_mem, (void *)bias));
    return dnnl_success;
}

static dnnl_status_t reorder_run(const dnnl_state *s, dnnl_primitive_t reorder, dnnl_memory_t from,
                                 dnnl_memory_t to) {
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return dnnl_primitive_execute(reorder, s->stream, 2, args);
}

/* Runs the record's primitive, after bringing OHWI weights into its layout if it has one. */
static dnnl_status_t conv_run(const dnnl_state *s, const cached_conv *c) {
    const pass_args *a = &PASS_ARGS[c->pass];
    bool weights_in = c->pass != PASS_BACKWARD_WEIGHTS;
    if (weights_in && c->weights_reorder)
        TRY(reorder_run(s, c->weights_reorder, c->weights_ohwi, c->weights_conv));
    dnnl_exec_arg_t args[] = {
        {a->activation_args[0], c->activations[0]},
        {a->activation_args[1], c->activations[1]},
        {a->weights_arg, c->weights_conv ? c->weights_conv : c->weights_ohwi},
        {a->bias_arg, c->bias_mem},
    };
    return dnnl_primitive_execute(c->conv, s->stream, c->bias ? 4 : 3, args);
}

/* dst[i] += src[i]: element-wise, so the same bits for any thread count. */
static void add_into(int64_t n, const float *src, float *dst) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

int64_t ob_dnnl_conv2d_workspace_elements(const ob_conv2d_geom *g, ob_conv2d_direction direction) {
    return direction == OB_CONV2D_BACKWARD ? g->batch * g->in_h * g->in_w * g->in_c : 0;
}

int ob_dnnl_conv2d_forward(ob_ctx *ctx, const ob_conv2d_geom *g, const float *x, const float *w,
                           const float *bias, float *y) {
    dnnl_state *s;
    cached_conv *c = conv_for(ctx, &s, g, PASS_FORWARD, bias != NULL);
    if (!c) return 1;
    dnnl_status_t status = conv_bind(c, x, y, w, bias);
    if (status == dnnl_success) status = conv_run(s, c);
    if (status == dnnl_success) status = dnnl_stream_wait(s->stream);
    return report(ctx, status, "forward");
}

/* dx += the data gradient, computed into scratch. */
static int backward_data(ob_ctx *ctx, const ob_conv2d_geom *g, const float *w, const float *dy, float *dx,
                         float *scratch) {
    dnnl_state *s;
    cached_conv *c = conv_for(ctx, &s, g, PASS_BACKWARD_DATA, false);
    if (!c) return 1;
    dnnl_status_t status = conv_bind(c, dy, scratch, w, NULL);
    if (status == dnnl_success) status = conv_run(s, c);
    if (status == dnnl_success) status = dnnl_stream_wait(s->stream);
    if (report(ctx, status, "backward data") != 0) return 1;
    add_into(ob_dnnl_conv2d_workspace_elements(g, OB_CONV2D_BACKWARD), scratch, dx);
    return 0;
}

/* dw += and dbias += the weight and bias gradients (either may be NULL). */
static int backward_weights(ob_ctx *ctx, const ob_conv2d_geom *g, const float *x, const float *dy, float *dw,
                            float *dbias) {
    dnnl_state *s;
    cached_conv *c = conv_for(ctx, &s, g, PASS_BACKWARD_WEIGHTS, dbias != NULL);
    if (!c) return 1;
    dnnl_status_t status = conv_bind(c, x, dy, dw, NULL);
    if (status == dnnl_success) status = conv_run(s, c);
    if (status == dnnl_success && dw)
        status = reorder_run(s, c->weights_reorder, c->weights_conv, c->weights_ohwi);
    if (status == dnnl_success) status = dnnl_stream_wait(s->stream);
    void *bias_gradient = NULL;
    if (status == dnnl_success && dbias) status = dnnl_memory_get_data_handle(c->bias_mem, &bias_gradient);
    if (report(ctx, status, "backward weights") != 0) return 1;
    if (dbias) add_into(g->out_c, bias_gradient, dbias);
    return 0;
}

int ob_dnnl_conv2d_backward(ob_ctx *ctx, const ob_conv2d_geom *g, const float *x, const float *w,
                            const float *dy, float *dx, float *dw, float *dbias, float *dx_scratch) {
    if (dx && backward_data(ctx, g, w, dy, dx, dx_scratch) != 0) return 1;
    if ((dw || dbias) && backward_weights(ctx, g, x, dy, dw, dbias) != 0) return 1;
    return 0;
}
