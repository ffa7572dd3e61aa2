/* The CPU backend table: unpacks tensors and calls the float or double
 * instantiation of each kernel (see cpu/real.h). Built with oneDNN
 * (OB_WITH_DNNL), F32 convolutions run on it instead: it measured about 2x
 * faster than im2col + GEMM (tests/bench/conv_onednn); F64 (gradcheck) keeps
 * the im2col kernels, the reference. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ob_backend.h"
#include "nn/ob_philox.h"
#ifdef OB_WITH_DNNL
#include "nn/cpu/dnnl_conv.h"
#endif

#define OB_REAL_F32
#include "nn/cpu/real.h"
#include "nn/cpu/kernels.h"
#undef OB_REAL_F32
#define OB_REAL_F64
#include "nn/cpu/real.h"
#include "nn/cpu/kernels.h"

/* Call the kernel instantiation matching tensor t's dtype. */
#define BY_DTYPE(t, fn, ...) \
    ((t)->dtype == OB_F64 ? fn##_f64(__VA_ARGS__) : fn##_f32(__VA_ARGS__))

static void *cpu_alloc(ob_ctx *ctx, size_t bytes) {
    (void)ctx;
    /* 64-byte alignment for full-width vector loads; size rounded up as
     * aligned_alloc requires. */
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    return aligned_alloc(64, rounded);
}
static void cpu_release(ob_ctx *ctx, void *ptr, size_t bytes) {
    (void)ctx, (void)bytes;
    free(ptr);
}
/* Every activation gradient starts as a zeroed arena buffer, about half
 * the activation bytes of a step (memset was 12% of a 1-thread workstation
 * ResNet-50 step in perf): large buffers are cleared in chunks across the
 * threads rather than by one core while the others wait. */
#define ZERO_CHUNK_BYTES ((size_t)1 << 18)
static void cpu_zero(ob_ctx *ctx, void *ptr, size_t bytes) {
    (void)ctx;
    int64_t chunks = (int64_t)((bytes + ZERO_CHUNK_BYTES - 1) / ZERO_CHUNK_BYTES);
#pragma omp parallel for schedule(static) if (chunks >= 4)
    for (int64_t c = 0; c < chunks; c++) {
        size_t start = (size_t)c * ZERO_CHUNK_BYTES;
        memset((unsigned char *)ptr + start, 0, bytes - start < ZERO_CHUNK_BYTES ? bytes - start : ZERO_CHUNK_BYTES);
    }
}
/* Host memory is the CPU's own: transfers are copies, nothing is queued. */
static int cpu_transfer(ob_ctx *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    memcpy(dst, src, bytes);
    return 0;
}
static int cpu_synchronize(ob_ctx *ctx) {
    (void)ctx;
    return 0;
}

static void cpu_fill(ob_tensor *x, double value) { BY_DTYPE(x, k_fill, x->numel, value, x->data); }
static void cpu_copy(const ob_tensor *src, ob_tensor *dst) {
    if (src->dtype == OB_F32 || src->dtype == OB_F64)
        BY_DTYPE(src, k_copy, src->numel, src->data, dst->data);
    else
        memcpy(dst->data, src->data, ob_tensor_bytes(src));
}
static void cpu_scale(double alpha, ob_tensor *x) { BY_DTYPE(x, k_scale, x->numel, alpha, x->data); }
static void cpu_axpy(double alpha, const ob_tensor *x, ob_tensor *y) {
    BY_DTYPE(x, k_axpy, x->numel, alpha, x->data, y->data);
}
static double cpu_sumsq(const ob_tensor *x) { return BY_DTYPE(x, k_sumsq, x->numel, x->data); }

static void *data_or_null(const ob_tensor *t) { return t ? t->data : NULL; }

static void cpu_im2col(const ob_conv2d_geom *g, const ob_tensor *x, ob_tensor *cols) {
    BY_DTYPE(x, k_im2col, g, x->data, cols->data);
}
/* The im2col kernels keep their column matrix (none when pointwise) for the
 * weight gradient and need one as large for dx. */
static int64_t cpu_conv2d_workspace_elements(ob_ctx *ctx, const ob_conv2d_geom *g, ob_dtype dtype,
                                             ob_conv2d_direction direction) {
    (void)ctx;
#ifdef OB_WITH_DNNL
    if (dtype == OB_F32) return ob_dnnl_conv2d_workspace_elements(g, direction);
#else
    (void)dtype;
#endif
    (void)direction;
    return ob_conv2d_is_pointwise(g) ? 0 : g->batch * g->out_h * g->out_w * ob_conv2d_patch_size(g);
}
static int cpu_conv2d_forward(ob_ctx *ctx, const ob_conv2d_geom *g, const ob_tensor *x, const ob_tensor *w,
                              const ob_tensor *bias, ob_tensor *y, ob_tensor *saved) {
#ifdef OB_WITH_DNNL
    if (x->dtype == OB_F32)
        return ob_dnnl_conv2d_forward(ctx, g, x->data, w->data, data_or_null(bias), y->data);
#else
    (void)ctx;
#endif
    BY_DTYPE(x, k_conv2d_forward, g, x->data, w->data, data_or_null(bias), y->data, data_or_null(saved));
    return 0;
}
static int cpu_conv2d_backward(ob_ctx *ctx, const ob_conv2d_geom *g, const ob_tensor *x, const ob_tensor *w,
                               const ob_tensor *dy, ob_tensor *dx, ob_tensor *dw, ob_tensor *dbias,
                               const ob_tensor *saved, ob_tensor *scratch) {
#ifdef OB_WITH_DNNL
    if (x->dtype == OB_F32)
        return ob_dnnl_conv2d_backward(ctx, g, x->data, w->data, dy->data, data_or_null(dx), data_or_null(dw),
                                       data_or_null(dbias), data_or_null(scratch));
#else
    (void)ctx;
#endif
    BY_DTYPE(x, k_conv2d_backward, g, x->data, w->data, dy->data, data_or_null(dx), data_or_null(dw),
             data_or_null(dbias), data_or_null(saved), data_or_null(scratch));
    return 0;
}

/* Batch-norm sees x as [rows, channels]: channels is the last dim. */
static int64_t bn_channels(const ob_tensor *x) { return x->shape[x->ndim - 1]; }
static int cpu_bn_forward_train(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *beta,
                                ob_tensor *y, ob_tensor *save_mean, ob_tensor *save_invstd,
                                ob_tensor *running_mean, ob_tensor *running_var, double momentum, double eps,
                                const ob_batchnorm_reduce *reduce) {
    int64_t channels = bn_channels(x);
    if (BY_DTYPE(x, k_batchnorm_forward_train, x->numel / channels, channels, x->data, gamma->data, beta->data,
                 y->data, save_mean->data, save_invstd->data, data_or_null(running_mean),
                 data_or_null(running_var), momentum, eps, reduce)) {
        ob_ctx_set_error(ctx, "batchnorm: the synchronized statistics' reduction failed");
        return 1;
    }
    return 0;
}
static void cpu_bn_forward_eval(const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *beta,
                                const ob_tensor *running_mean, const ob_tensor *running_var, double eps,
                                ob_tensor *y) {
    int64_t channels = bn_channels(x);
    BY_DTYPE(x, k_batchnorm_forward_eval, x->numel / channels, channels, x->data, gamma->data, beta->data,
             running_mean->data, running_var->data, eps, y->data);
}
static int cpu_bn_backward(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *save_mean,
                           const ob_tensor *save_invstd, const ob_tensor *dy, ob_tensor *dx, ob_tensor *dgamma,
                           ob_tensor *dbeta, const ob_batchnorm_reduce *reduce) {
    int64_t channels = bn_channels(x);
    if (BY_DTYPE(x, k_batchnorm_backward, x->numel / channels, channels, x->data, gamma->data, save_mean->data,
                 save_invstd->data, dy->data, data_or_null(dx), data_or_null(dgamma), data_or_null(dbeta),
                 reduce)) {
        ob_ctx_set_error(ctx, "batchnorm: the synchronized statistics' reduction failed in backward");
        return 1;
    }
    return 0;
}

static void cpu_relu_forward(const ob_tensor *x, ob_tensor *y) {
    BY_DTYPE(x, k_relu_forward, x->numel, x->data, y->data);
}
static void cpu_relu_backward(const ob_tensor *y, const ob_tensor *dy, ob_tensor *dx) {
    BY_DTYPE(y, k_relu_backward, y->numel, y->data, dy->data, dx->data);
}
static void cpu_add_forward(const ob_tensor *a, const ob_tensor *b, ob_tensor *y) {
    BY_DTYPE(a, k_add_forward, a->numel, a->data, b->data, y->data);
}

static void cpu_maxpool_forward(const ob_pool2d_geom *g, const ob_tensor *x, ob_tensor *y,
                                ob_tensor *argmax) {
    BY_DTYPE(x, k_maxpool2d_forward, g, x->data, y->data, argmax->data);
}
static void cpu_maxpool_backward(const ob_pool2d_geom *g, const ob_tensor *argmax, const ob_tensor *dy,
                                 ob_tensor *dx) {
    BY_DTYPE(dy, k_maxpool2d_backward, g, argmax->data, dy->data, dx->data);
}
/* x is [batch, h, w, c] (or [batch, hw, c]); y is [batch, c]. */
static void cpu_gap_forward(const ob_tensor *x, ob_tensor *y) {
    int64_t batch = x->shape[0], channels = x->shape[x->ndim - 1];
    BY_DTYPE(x, k_global_avgpool_forward, batch, x->numel / (batch * channels), channels, x->data, y->data);
}
static void cpu_gap_backward(const ob_tensor *dy, ob_tensor *dx) {
    int64_t batch = dx->shape[0], channels = dx->shape[dx->ndim - 1];
    BY_DTYPE(dy, k_global_avgpool_backward, batch, dx->numel / (batch * channels), channels, dy->data,
             dx->data);
}

static void cpu_linear_forward(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *w, const ob_tensor *bias,
                               ob_tensor *y) {
    (void)ctx;
    BY_DTYPE(x, k_linear_forward, x->shape[0], w->shape[1], w->shape[0], x->data, w->data,
             data_or_null(bias), y->data);
}
static void cpu_linear_backward(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *w, const ob_tensor *dy,
                                ob_tensor *dx, ob_tensor *dw, ob_tensor *dbias) {
    (void)ctx;
    BY_DTYPE(x, k_linear_backward, x->shape[0], w->shape[1], w->shape[0], x->data, w->data, dy->data,
             data_or_null(dx), data_or_null(dw), data_or_null(dbias));
}

static int cpu_xent_forward(ob_ctx *ctx, const ob_tensor *logits, const ob_tensor *labels, double smoothing,
                            ob_tensor *probs, ob_tensor *loss) {
    (void)ctx;
    BY_DTYPE(logits, k_softmax_xent_forward, logits->shape[0], logits->shape[1], logits->data,
             labels->data, smoothing, probs->data, loss->data);
    return 0;
}
static void cpu_xent_backward(const ob_tensor *probs, const ob_tensor *labels, double smoothing,
                              const ob_tensor *dloss, ob_tensor *dlogits) {
    if (probs->dtype == OB_F64)
        k_softmax_xent_backward_f64(probs->shape[0], probs->shape[1], probs->data, labels->data, smoothing,
                                    *ob_f64(dloss), dlogits->data);
    else
        k_softmax_xent_backward_f32(probs->shape[0], probs->shape[1], probs->data, labels->data, smoothing,
                                    *ob_f32(dloss), dlogits->data);
}

static void cpu_sgd_update(ob_tensor *param, const ob_tensor *grad, ob_tensor *momentum_buf, double lr,
                           double momentum, double l2_decay, double decoupled_decay, int nesterov) {
    BY_DTYPE(param, k_sgd_update, param->numel, param->data, grad->data, data_or_null(momentum_buf), lr,
             momentum, l2_decay, decoupled_decay, nesterov);
}

/* n of a square [n,n] matrix */
static int64_t side_of(const ob_tensor *a) { return a->shape[0]; }

static void cpu_gemm(ob_ctx *ctx, bool trans_a, bool trans_b, double alpha, const ob_tensor *a,
                     const ob_tensor *b, double beta, ob_tensor *c) {
    (void)ctx;
    int64_t m = trans_a ? a->shape[1] : a->shape[0], k = trans_a ? a->shape[0] : a->shape[1];
    int64_t n = trans_b ? b->shape[0] : b->shape[1];
    BY_DTYPE(a, k_gemm, trans_a, trans_b, m, n, k, alpha, a->data, b->data, beta, c->data);
}
/* A SYRK is cut into one row slice per thread when x has at least this
 * many rows per column: below it (8192 x 576, measured on 2 cores) the
 * threaded SYRK already runs at the GEMM rate. */
#define SYRK_SLICE_MIN_ROWS_PER_COLUMN 32

/* The slices' partial sums come from the step arena and go back at once. */
static int cpu_syrk(ob_ctx *ctx, double alpha, const ob_tensor *x, double beta, ob_tensor *c) {
    int64_t n = x->shape[x->ndim - 1], rows = x->numel / n;
    int slices = ob_ctx_threads(ctx);
    if (slices < 2 || rows < SYRK_SLICE_MIN_ROWS_PER_COLUMN * n || rows < slices) slices = 1;
    ob_arena_mark before = ob_arena_mark_now(ctx);
    void *partials = NULL;
    if (slices > 1) {
        partials = ob_arena_alloc(ctx, (size_t)(slices - 1) * n * n * ob_dtype_size(x->dtype), OB_MEM_WORKSPACE);
        if (!partials) return 1;
    }
    BY_DTYPE(x, k_syrk, rows, n, alpha, x->data, beta, c->data, slices, partials);
    ob_arena_rewind(ctx, &before);
    return 0;
}
/* LAPACK's work arrays come from the step arena, so the memory report sees
 * them (?syevd wants 2n^2 + 6n + 1 reals). */
static int cpu_sym_eigen(ob_ctx *ctx, const ob_tensor *a, ob_tensor *q, ob_tensor *d) {
    int64_t n = side_of(a), work_elements, iwork_elements;
    BY_DTYPE(a, k_sym_eigen_workspace, n, &work_elements, &iwork_elements);
    if (work_elements > INT32_MAX) {
        ob_ctx_set_error(ctx, "sym_eigen: a %lldx%lld matrix needs more LAPACK workspace than int can count",
                         (long long)n, (long long)n);
        return 1;
    }
    void *work = ob_arena_alloc(ctx, (size_t)work_elements * ob_dtype_size(a->dtype), OB_MEM_WORKSPACE);
    int32_t *iwork = ob_arena_alloc(ctx, (size_t)iwork_elements * sizeof *iwork, OB_MEM_WORKSPACE);
    if (!work || !iwork) return 1;
    if (q->data != a->data) cpu_copy(a, q);
    int info = BY_DTYPE(a, k_sym_eigen, n, q->data, d->data, work, work_elements, iwork, iwork_elements);
    if (info != 0) {
        ob_ctx_set_error(ctx, "sym_eigen: LAPACK ?syevd %s (info %d) on a %lldx%lld matrix",
                         info > 0 ? "did not converge (a NaN or Inf in it?)" : "refused its arguments", info,
                         (long long)n, (long long)n);
        return 1;
    }
    return 0;
}
static int cpu_spd_inverse(ob_ctx *ctx, const ob_tensor *a, ob_tensor *inv) {
    int64_t n = side_of(a);
    if (inv->data != a->data) cpu_copy(a, inv);
    int info = BY_DTYPE(a, k_spd_inverse, n, inv->data);
    if (info > 0) {
        ob_ctx_set_error(ctx, "spd_inverse: the %lldx%lld matrix is not positive definite (leading minor %d)",
                         (long long)n, (long long)n, info);
        return 1;
    }
    if (info < 0) {
        ob_ctx_set_error(ctx, "spd_inverse: the %lldx%lld matrix holds a NaN (LAPACK info %d)", (long long)n,
                         (long long)n, info);
        return 1;
    }
    return 0;
}
static void cpu_copy_columns(int64_t rows, int64_t cols, const ob_tensor *src, int64_t src_col,
                             ob_tensor *dst, int64_t dst_col) {
    BY_DTYPE(src, k_copy_columns, rows, cols, src->data, src->numel / rows, src_col, dst->data,
             dst->numel / rows, dst_col);
}
static void cpu_add_diagonal(ob_tensor *a, double value) {
    BY_DTYPE(a, k_add_diagonal, side_of(a), value, a->data);
}
static double cpu_trace(const ob_tensor *a) { return BY_DTYPE(a, k_trace, side_of(a), a->data); }
static double cpu_dot(const ob_tensor *x, const ob_tensor *y) {
    return BY_DTYPE(x, k_dot, x->numel, x->data, y->data);
}
static void cpu_mul(const ob_tensor *a, const ob_tensor *b, ob_tensor *y) {
    BY_DTYPE(a, k_mul, y->numel, a->data, b->data, y->data);
}
static void cpu_outer_inverse(const ob_tensor *u, const ob_tensor *v, double shift, ob_tensor *out) {
    BY_DTYPE(u, k_outer_inverse, u->numel, v->numel, u->data, v->data, shift, out->data);
}

static void cpu_adam_update(ob_tensor *param, ob_tensor *grad, ob_tensor *m, ob_tensor *v,
                            const ob_adam_hyper *h) {
    BY_DTYPE(param, k_adam_update, param->numel, param->data, grad->data, m->data, v->data, h);
}

/* The width of a tensor viewed as [rows, last dim]. */
static int64_t last_dim(const ob_tensor *t) { return t->shape[t->ndim - 1]; }

static void cpu_gather_rows(const ob_tensor *src, const ob_tensor *rows, ob_tensor *y) {
    BY_DTYPE(src, k_gather_rows, rows->numel, last_dim(src), rows->data, src->data, y->data);
}
static void cpu_scatter_add_rows(const ob_tensor *dy, const ob_tensor *rows, ob_tensor *dsrc) {
    BY_DTYPE(dy, k_scatter_add_rows, rows->numel, last_dim(dsrc), rows->data, dy->data, dsrc->data);
}
static void cpu_layernorm_forward(const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *beta,
                                  double eps, ob_tensor *y, ob_tensor *mean, ob_tensor *invstd) {
    int64_t width = last_dim(x);
    BY_DTYPE(x, k_layernorm_forward, x->numel / width, width, x->data, gamma->data, beta->data, eps, y->data,
             mean->data, invstd->data);
}
static void cpu_layernorm_backward(const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *mean,
                                   const ob_tensor *invstd, const ob_tensor *dy, ob_tensor *dx,
                                   ob_tensor *dgamma, ob_tensor *dbeta) {
    int64_t width = last_dim(x);
    BY_DTYPE(x, k_layernorm_backward, x->numel / width, width, x->data, gamma->data, mean->data, invstd->data,
             dy->data, data_or_null(dx), data_or_null(dgamma), data_or_null(dbeta));
}
static void cpu_gelu_forward(const ob_tensor *x, ob_tensor *y) {
    BY_DTYPE(x, k_gelu_forward, x->numel, x->data, y->data);
}
static void cpu_gelu_backward(const ob_tensor *x, const ob_tensor *dy, ob_tensor *dx) {
    BY_DTYPE(x, k_gelu_backward, x->numel, x->data, dy->data, dx->data);
}
static void cpu_tanh_forward(const ob_tensor *x, ob_tensor *y) {
    BY_DTYPE(x, k_tanh_forward, x->numel, x->data, y->data);
}
static void cpu_tanh_backward(const ob_tensor *y, const ob_tensor *dy, ob_tensor *dx) {
    BY_DTYPE(y, k_tanh_backward, y->numel, y->data, dy->data, dx->data);
}
/* Kept when a 32-bit word is >= ob_philox_threshold(p), the rule the CUDA
 * kernel shares: P(keep) = 1 - p to within 2^-32. */
static void cpu_dropout(const ob_rng_stream *stream, uint64_t first_word, double p, const ob_tensor *x,
                        ob_tensor *y, bool accumulate) {
    BY_DTYPE(x, k_dropout, x->numel, stream, first_word, ob_philox_threshold(p), 1.0 / (1.0 - p), x->data,
             y->data, accumulate);
}
/* Matrices in a batched operand: the product of all dims but the last two. */
static int64_t matrix_count(const ob_tensor *t) {
    return t->numel / (t->shape[t->ndim - 2] * t->shape[t->ndim - 1]);
}
static void cpu_batched_gemm(ob_ctx *ctx, bool trans_a, bool trans_b, double alpha, const ob_tensor *a,
                             const ob_tensor *b, double beta, ob_tensor *c) {
    (void)ctx;
    int64_t a_rows = a->shape[a->ndim - 2], a_cols = last_dim(a);
    int64_t m = trans_a ? a_cols : a_rows, k = trans_a ? a_rows : a_cols;
    int64_t n = trans_b ? b->shape[b->ndim - 2] : last_dim(b);
    BY_DTYPE(a, k_batched_gemm, matrix_count(c), trans_a, trans_b, m, n, k, alpha, a->data, b->data, beta,
             c->data);
}
static void cpu_masked_softmax_forward(const ob_tensor *scores, const ob_tensor *key_mask, ob_tensor *probs) {
    int64_t batch = scores->shape[0], keys = last_dim(scores);
    BY_DTYPE(scores, k_masked_softmax_forward, batch, scores->numel / (batch * keys), keys, scores->data,
             key_mask->data, probs->data);
}
static void cpu_masked_softmax_backward(const ob_tensor *probs, const ob_tensor *dprobs, ob_tensor *dscores) {
    int64_t keys = last_dim(probs);
    BY_DTYPE(probs, k_masked_softmax_backward, probs->numel / keys, keys, probs->data, dprobs->data,
             dscores->data);
}
static void cpu_swap_middle_axes(int64_t outer, int64_t d1, int64_t d2, int64_t inner, const ob_tensor *src,
                                 ob_tensor *dst, bool accumulate) {
    BY_DTYPE(src, k_swap_middle_axes, outer, d1, d2, inner, src->data, dst->data, accumulate);
}

const ob_backend ob_cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .release = cpu_release,
    .zero = cpu_zero,
    .upload = cpu_transfer,
    .download = cpu_transfer,
    .synchronize = cpu_synchronize,
    .fill = cpu_fill,
    .copy = cpu_copy,
    .scale = cpu_scale,
    .axpy = cpu_axpy,
    .sumsq = cpu_sumsq,
    .im2col = cpu_im2col,
    .conv2d_workspace_elements = cpu_conv2d_workspace_elements,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward = cpu_conv2d_backward,
    .batchnorm_forward_train = cpu_bn_forward_train,
    .batchnorm_forward_eval = cpu_bn_forward_eval,
    .batchnorm_backward = cpu_bn_backward,
    .relu_forward = cpu_relu_forward,
    .relu_backward = cpu_relu_backward,
    .add_forward = cpu_add_forward,
    .maxpool2d_forward = cpu_maxpool_forward,
    .maxpool2d_backward = cpu_maxpool_backward,
    .global_avgpool_forward = cpu_gap_forward,
    .global_avgpool_backward = cpu_gap_backward,
    .linear_forward = cpu_linear_forward,
    .linear_backward = cpu_linear_backward,
    .softmax_xent_forward = cpu_xent_forward,
    .softmax_xent_backward = cpu_xent_backward,
    .sgd_update = cpu_sgd_update,
    .gemm = cpu_gemm,
    .syrk = cpu_syrk,
    .sym_eigen = cpu_sym_eigen,
    .spd_inverse = cpu_spd_inverse,
    .copy_columns = cpu_copy_columns,
    .add_diagonal = cpu_add_diagonal,
    .trace = cpu_trace,
    .dot = cpu_dot,
    .mul = cpu_mul,
    .outer_inverse = cpu_outer_inverse,
    .adam_update = cpu_adam_update,
    .gather_rows = cpu_gather_rows,
    .scatter_add_rows = cpu_scatter_add_rows,
    .layernorm_forward = cpu_layernorm_forward,
    .layernorm_backward = cpu_layernorm_backward,
    .gelu_forward = cpu_gelu_forward,
    .gelu_backward = cpu_gelu_backward,
    .tanh_forward = cpu_tanh_forward,
    .tanh_backward = cpu_tanh_backward,
    .dropout = cpu_dropout,
    .batched_gemm = cpu_batched_gemm,
    .masked_softmax_forward = cpu_masked_softmax_forward,
    .masked_softmax_backward = cpu_masked_softmax_backward,
    .swap_middle_axes = cpu_swap_middle_axes,
};
