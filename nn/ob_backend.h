/* ob_backend: the table every op dispatches through.
 *
 * Ops (op_*.c) do shapes, allocation and the tape; kernels do arithmetic.
 * Ops reach kernels only through ob_backend_of(tensor), so a CUDA table slots
 * in without touching ops, layers, workloads or optimizers. Table entries take
 * tensors and dispatch on dtype themselves (the CPU table supports F32, and
 * F64 for gradcheck).
 *
 * Conventions: backward entries ACCUMULATE (+=) into every gradient output;
 * a NULL gradient output means "not needed"; workspaces are passed in by the
 * op (allocated from the step arena) so kernels never allocate. Entries that
 * take the ctx keep per-run state in it (ob_ctx_backend_state: the CUDA
 * back end's library handles and its cache of device blocks), take their
 * scratch from its step arena, and report failures there.
 *
 * Tensors live in the memory of their device; the ops never dereference
 * data of a tensor that is not on OB_CPU (ob_tensor_host_data downloads a
 * copy). Entries returning a double (sumsq, trace, dot) finish the device's
 * work before they return.
 */
#ifndef OB_BACKEND_H
#define OB_BACKEND_H

#include "nn/ob_ctx.h"
#include "nn/ob_rng.h"
#include "nn/ob_tensor.h"

/* NHWC convolution geometry. y[b, oh, ow, oc] =
 *   sum_{kh, kw, ic} x[b, oh*stride - pad + kh*dilation, ow*stride - pad + kw*dilation, ic]
 *                    * w[oc, kh, kw, ic] + bias[oc]                                         */
typedef struct {
    int64_t batch;
    int in_h, in_w, in_c;
    int out_h, out_w, out_c;
    int kernel_h, kernel_w;
    int stride, pad, dilation;
} ob_conv2d_geom;

/* Which pass of a convolution a workspace is for. */
typedef enum { OB_CONV2D_FORWARD, OB_CONV2D_BACKWARD } ob_conv2d_direction;

/* True when im2col is the identity (1x1, stride 1, no padding): the kernels
 * then use x itself as the column matrix. */
static inline int ob_conv2d_is_pointwise(const ob_conv2d_geom *g) {
    return g->kernel_h == 1 && g->kernel_w == 1 && g->stride == 1 && g->pad == 0;
}
/* Columns of the im2col matrix: rows = batch*out_h*out_w, cols = this. */
static inline int64_t ob_conv2d_patch_size(const ob_conv2d_geom *g) {
    return (int64_t)g->kernel_h * g->kernel_w * g->in_c;
}

/* NHWC pooling window geometry (padding counts as -inf for max-pool). */
typedef struct {
    int64_t batch;
    int in_h, in_w, channels;
    int out_h, out_w;
    int kernel, stride, pad;
} ob_pool2d_geom;

/* One Adam-family update's scalars (AdamW, LAMB), for one parameter. */
typedef struct {
    double lr; /* AdamW only: LAMB scales its direction itself */
    double beta1, beta2, eps;
    double bias_correction1, bias_correction2; /* 1 - beta^t at step t, or 1 without bias correction */
    double weight_decay;                       /* this parameter's: 0 for a kind that is not decayed */
    bool direction_into_grad;                  /* LAMB: leave the direction in grad, param untouched */
} ob_adam_hyper;

typedef struct ob_backend {
    const char *name;

    /* memory of this device: release takes the bytes alloc was asked for
     * (the CUDA cache files the block under their size class) */
    void *(*alloc)(ob_ctx *ctx, size_t bytes);
    void (*release)(ob_ctx *ctx, void *ptr, size_t bytes);
    void (*zero)(ob_ctx *ctx, void *ptr, size_t bytes);
    /* host <-> this device: dst/src on the device, the other side in host
     * memory; both return 0, or nonzero with the reason in ctx. The copy
     * has finished when they return. */
    int (*upload)(ob_ctx *ctx, void *device_dst, const void *host_src, size_t bytes);
    int (*download)(ob_ctx *ctx, void *host_dst, const void *device_src, size_t bytes);
    /* waits for the device's queued work; 0, or nonzero with the reason
     * (a kernel's asynchronous failure) in ctx */
    int (*synchronize)(ob_ctx *ctx);

    /* element-wise and reductions */
    void (*fill)(ob_tensor *x, double value);
    void (*copy)(const ob_tensor *src, ob_tensor *dst);
    void (*scale)(double alpha, ob_tensor *x);                         /* x *= alpha */
    void (*axpy)(double alpha, const ob_tensor *x, ob_tensor *y);      /* y += alpha x */
    double (*sumsq)(const ob_tensor *x);                               /* sum x^2, fp64 */

    /* im2col (K-FAC's conv factors need it): cols is [batch*out_h*out_w, patch]. */
    void (*im2col)(const ob_conv2d_geom *g, const ob_tensor *x, ob_tensor *cols);
    /* Elements of the conv's dtype the op allocates as the workspace of one
     * direction, 0 for none (the implementation chosen for g and dtype
     * decides: im2col + GEMM wants its column matrix, oneDNN only a dx scratch).
     * FORWARD's workspace is filled by conv2d_forward and kept for backward;
     * BACKWARD's is scratch, passed when dx is wanted. */
    int64_t (*conv2d_workspace_elements)(ob_ctx *ctx, const ob_conv2d_geom *g, ob_dtype dtype,
                                         ob_conv2d_direction direction);
    /* y = conv(x, w) + bias (bias may be NULL). saved: the FORWARD workspace.
     * Both conv entries return 0, or nonzero with the reason in ctx. */
    int (*conv2d_forward)(ob_ctx *ctx, const ob_conv2d_geom *g, const ob_tensor *x, const ob_tensor *w,
                          const ob_tensor *bias, ob_tensor *y, ob_tensor *saved);
    /* saved: what conv2d_forward left in its workspace; scratch: the BACKWARD workspace. */
    int (*conv2d_backward)(ob_ctx *ctx, const ob_conv2d_geom *g, const ob_tensor *x, const ob_tensor *w,
                           const ob_tensor *dy, ob_tensor *dx, ob_tensor *dw, ob_tensor *dbias,
                           const ob_tensor *saved, ob_tensor *scratch);

    /* batch-norm over rows of an [rows, channels] view (NHWC flattened).
     * Train: biased batch variance normalises; running_var is updated with
     * the unbiased one (PyTorch semantics); saves mean and 1/sqrt(var+eps).
     * With `reduce` (synchronized batch-norm) the statistics, and in
     * backward the sums over dy, are those of every rank's rows together;
     * train and backward return 0, or nonzero when the reduction failed
     * (their per-channel sums may take scratch from the ctx's arena). */
    int (*batchnorm_forward_train)(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *beta,
                                   ob_tensor *y, ob_tensor *save_mean, ob_tensor *save_invstd,
                                   ob_tensor *running_mean, ob_tensor *running_var, double momentum,
                                   double eps, const ob_batchnorm_reduce *reduce);
    void (*batchnorm_forward_eval)(const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *beta,
                                   const ob_tensor *running_mean, const ob_tensor *running_var,
                                   double eps, ob_tensor *y);
    int (*batchnorm_backward)(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *save_mean,
                              const ob_tensor *save_invstd, const ob_tensor *dy, ob_tensor *dx,
                              ob_tensor *dgamma, ob_tensor *dbeta, const ob_batchnorm_reduce *reduce);

    void (*relu_forward)(const ob_tensor *x, ob_tensor *y);
    void (*relu_backward)(const ob_tensor *y, const ob_tensor *dy, ob_tensor *dx);
    void (*add_forward)(const ob_tensor *a, const ob_tensor *b, ob_tensor *y);

    /* argmax: I32 tensor shaped like y, flat index into x of each maximum */
    void (*maxpool2d_forward)(const ob_pool2d_geom *g, const ob_tensor *x, ob_tensor *y, ob_tensor *argmax);
    void (*maxpool2d_backward)(const ob_pool2d_geom *g, const ob_tensor *argmax, const ob_tensor *dy,
                               ob_tensor *dx);
    /* [batch, hw, channels] -> [batch, channels] mean over hw */
    void (*global_avgpool_forward)(const ob_tensor *x, ob_tensor *y);
    void (*global_avgpool_backward)(const ob_tensor *dy, ob_tensor *dx);

    /* y[b, o] = sum_i x[b, i] w[o, i] + bias[o] */
    void (*linear_forward)(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *w, const ob_tensor *bias,
                           ob_tensor *y);
    void (*linear_backward)(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *w, const ob_tensor *dy,
                            ob_tensor *dx, ob_tensor *dw, ob_tensor *dbias);

    /* Mean over the batch of label-smoothed cross-entropy of softmax(logits):
     * target q = (1-s) onehot(label) + s/classes. Writes probs [batch, classes]
     * and loss [1]; returns 0, or nonzero with the reason in ctx (the row
     * losses may take scratch from its arena). Backward: dlogits +=
     * dloss/batch * (probs - q). */
    int (*softmax_xent_forward)(ob_ctx *ctx, const ob_tensor *logits, const ob_tensor *labels,
                                 double smoothing, ob_tensor *probs, ob_tensor *loss);
    void (*softmax_xent_backward)(const ob_tensor *probs, const ob_tensor *labels, double smoothing,
                                  const ob_tensor *dloss, ob_tensor *dlogits);

    /* SGD with momentum (PyTorch semantics, dampening 0; buf starts at 0):
     *   g = grad + l2_decay * p;  buf = momentum * buf + g;
     *   d = nesterov ? g + momentum * buf : buf;
     *   p = p * (1 - lr * decoupled_decay) - lr * d                        */
    void (*sgd_update)(ob_tensor *param, const ob_tensor *grad, ob_tensor *momentum_buf, double lr,
                       double momentum, double l2_decay, double decoupled_decay, int nesterov);

    /* Dense linear algebra for K-FAC's factors and preconditioner. Matrices
     * are row-major; all operands share one floating dtype. */

    /* c = alpha op(a) op(b) + beta c, op(m) = m^T when trans_m. a, b, c are
     * 2-D; beta 0 ignores what c held. */
    void (*gemm)(ob_ctx *ctx, bool trans_a, bool trans_b, double alpha, const ob_tensor *a,
                 const ob_tensor *b, double beta, ob_tensor *c);
    /* c[n,n] = alpha x^T x + beta c, x viewed as [numel/n, n] (n = its last
     * dim). c must be symmetric when beta != 0; both triangles are written.
     * A back end may take scratch from the step arena. Returns 0, or 1 with
     * the reason in ctx. */
    int (*syrk)(ob_ctx *ctx, double alpha, const ob_tensor *x, double beta, ob_tensor *c);
    /* a[n,n] symmetric = q diag(d) q^T: d[n] ascending, q[i,j] = component i
     * of eigenvector j. a is read only (q may be a itself). LAPACK's work
     * arrays come from the ctx's step arena (workspace). Returns 0, or
     * nonzero with the reason in ctx. */
    int (*sym_eigen)(ob_ctx *ctx, const ob_tensor *a, ob_tensor *q, ob_tensor *d);
    /* inv = a^-1 for a symmetric positive definite [n,n] a (Cholesky), both
     * triangles written (inv may be a itself). Returns 0, or nonzero with
     * the reason in ctx when a is not positive definite. */
    int (*spd_inverse)(ob_ctx *ctx, const ob_tensor *a, ob_tensor *inv);
    /* Column blocks: dst[r, dst_col + c] = src[r, src_col + c] for r < rows,
     * c < cols, with src viewed as [rows, src->numel/rows] and dst as
     * [rows, dst->numel/rows] (K-FAC's bias column and gradient matrix). */
    void (*copy_columns)(int64_t rows, int64_t cols, const ob_tensor *src, int64_t src_col, ob_tensor *dst,
                         int64_t dst_col);
    /* a[i,i] += value for a [n,n] */
    void (*add_diagonal)(ob_tensor *a, double value);
    /* sum_i a[i,i] of a [n,n], in double */
    double (*trace)(const ob_tensor *a);
    /* sum_i x[i] y[i], in double */
    double (*dot)(const ob_tensor *x, const ob_tensor *y);
    /* y = a * b element-wise (y may be a or b) */
    void (*mul)(const ob_tensor *a, const ob_tensor *b, ob_tensor *y);
    /* out[i,j] = 1 / (u[i] v[j] + shift) for u [rows], v [cols], out [rows, cols] */
    void (*outer_inverse)(const ob_tensor *u, const ob_tensor *v, double shift, ob_tensor *out);

    /* Adam's moments and direction (PyTorch's arrangement), h per ob_adam_hyper:
     *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
     *   u = (m / bias_correction1) / (sqrt(v) / sqrt(bias_correction2) + eps)
     * AdamW:  p = p (1 - lr weight_decay) - lr u
     * LAMB (direction_into_grad): g = u + weight_decay p, p untouched */
    void (*adam_update)(ob_tensor *param, ob_tensor *grad, ob_tensor *m, ob_tensor *v, const ob_adam_hyper *h);

    /* Transformer ops. Row indices, ids and key masks are I32, checked by
     * the ops. */
    /* y[r, :] = src[rows[r], :] with src viewed as [numel / width, width],
     * width = src's last dim, y [rows->numel, width] */
    void (*gather_rows)(const ob_tensor *src, const ob_tensor *rows, ob_tensor *y);
    /* dsrc[rows[r], :] += dy[r, :] (repeated rows add up) */
    void (*scatter_add_rows)(const ob_tensor *dy, const ob_tensor *rows, ob_tensor *dsrc);
    /* Layer norm over the last dim (width): per row, mean and biased
     * variance var; invstd = 1/sqrt(var + eps); y = gamma (x - mean) invstd
     * + beta. Saves mean and invstd [rows]. Backward, x^ = (x - mean) invstd:
     * dx += invstd (dy gamma - mean(dy gamma) - x^ mean(dy gamma x^)),
     * dgamma += sum_rows dy x^, dbeta += sum_rows dy. */
    void (*layernorm_forward)(const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *beta, double eps,
                              ob_tensor *y, ob_tensor *mean, ob_tensor *invstd);
    void (*layernorm_backward)(const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *mean,
                               const ob_tensor *invstd, const ob_tensor *dy, ob_tensor *dx, ob_tensor *dgamma,
                               ob_tensor *dbeta);
    /* y = x Phi(x) (erf form); dx += dy (Phi(x) + x phi(x)) */
    void (*gelu_forward)(const ob_tensor *x, ob_tensor *y);
    void (*gelu_backward)(const ob_tensor *x, const ob_tensor *dy, ob_tensor *dx);
    /* y = tanh(x); dx += dy (1 - y^2) */
    void (*tanh_forward)(const ob_tensor *x, ob_tensor *y);
    void (*tanh_backward)(const ob_tensor *y, const ob_tensor *dy, ob_tensor *dx);
    /* y = x keep / (1 - p), or y += that when accumulate, p in [0, 1);
     * keep_i = (word first_word + i of the stream >= p 2^32), see ob_rng_words */
    void (*dropout)(const ob_rng_stream *stream, uint64_t first_word, double p, const ob_tensor *x,
                    ob_tensor *y, bool accumulate);
    /* c[i] = alpha op(a[i]) op(b[i]) + beta c[i] over the leading (batch)
     * dims; the last two dims are the matrices (a [..., m, k], or [..., k, m]
     * when trans_a); beta 0 ignores what c held */
    void (*batched_gemm)(ob_ctx *ctx, bool trans_a, bool trans_b, double alpha, const ob_tensor *a,
                         const ob_tensor *b, double beta, ob_tensor *c);
    /* Softmax over the last dim of scores [batch, ..., keys] restricted to
     * the keys with key_mask[batch, key] != 0; masked keys get 0, and a row
     * with no key left is all 0. Backward: ds += p (dp - sum p dp). */
    void (*masked_softmax_forward)(const ob_tensor *scores, const ob_tensor *key_mask, ob_tensor *probs);
    void (*masked_softmax_backward)(const ob_tensor *probs, const ob_tensor *dprobs, ob_tensor *dscores);
    /* dst[o, j, i, :] = src[o, i, j, :] (+= when accumulate) for src viewed as
     * [outer, d1, d2, inner]: the heads transpose */
    void (*swap_middle_axes)(int64_t outer, int64_t d1, int64_t d2, int64_t inner, const ob_tensor *src,
                             ob_tensor *dst, bool accumulate);
} ob_backend;

const ob_backend *ob_backend_get(ob_device device);
static inline const ob_backend *ob_backend_of(const ob_tensor *t) { return ob_backend_get(t->device); }

#endif
