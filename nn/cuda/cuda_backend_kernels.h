/* Launchers of the CUDA back end's own kernels (nn/cuda/k_*.cu other than
 * the element-wise and transformer files): convolution helpers, batch-norm,
 * pooling, linear bias, softmax cross-entropy, SGD, Adam and K-FAC's small
 * matrix loops. backend_cuda.c unpacks tensors and calls them; the cuBLAS,
 * cuDNN and cuSOLVER calls live there and in conv_cudnn.c.
 *
 * F32 only: every pointer is float device memory (I32 for indices). The
 * back end trains in F32; gradcheck stays on the CPU in F64, and the table
 * refuses other dtypes (ob_cuda_require_f32 in backend_cuda.c).
 *
 * Everything launches on the legacy default stream (stream 0), like the
 * library calls, so consecutive entries are ordered without events.
 * Overlapping data loading and gradient communication on separate streams
 * is later work. Arithmetic mirrors nn/cpu/k_*.c: float where the CPU
 * computes in float, double where it accumulates in double. */
#ifndef OB_CUDA_BACKEND_KERNELS_H
#define OB_CUDA_BACKEND_KERNELS_H

#include <stdint.h>

#include "nn/ob_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* cols[(b, oh, ow), (kh, kw, ic)] = x[b, ih, iw, ic], 0 in the padding */
void cuda_k_im2col(const ob_conv2d_geom *g, const float *x, float *cols);
/* y[r, c] += bias[c] over [rows, width] */
void cuda_k_add_bias_rows(int64_t rows, int64_t width, const float *bias, float *y);
/* sums[c] += sum_r m[r, c] over [rows, width], accumulated in double */
void cuda_k_column_sums_add(int64_t rows, int64_t width, const float *m, float *sums);

/* Batch-norm over [rows, channels]. `stats` is device scratch of
 * OB_CUDA_BN_STATS doubles per channel, laid out [4][channels]: the two
 * centred sums, the shift they are taken about, and the row count. */
#define OB_CUDA_BN_STATS 4
/* sum (x - shift), sum (x - shift)^2 with shift = x[0, c], or running_mean[c]
 * (0 when NULL) when shift_by_running (synchronized statistics) */
void cuda_k_bn_train_stats(int64_t rows, int64_t channels, const float *x, const float *running_mean,
                           bool shift_by_running, double *stats);
/* mean, invstd and the running statistics from stats; y = gamma x^ + beta */
void cuda_k_bn_train_apply(int64_t rows, int64_t channels, const float *x, const float *gamma, const float *beta,
                           const double *stats, float *y, float *save_mean, float *save_invstd,
                           float *running_mean, float *running_var, double momentum, double eps);
void cuda_k_bn_eval(int64_t rows, int64_t channels, const float *x, const float *gamma, const float *beta,
                    const float *running_mean, const float *running_var, double eps, float *y);
/* sum dy, sum dy (x - save_mean) */
void cuda_k_bn_backward_stats(int64_t rows, int64_t channels, const float *x, const float *dy,
                              const float *save_mean, double *stats);
/* dbeta += sum dy, dgamma += invstd sum dy (x - mean) (NULL: skipped) */
void cuda_k_bn_backward_params(int64_t channels, const double *stats, const float *save_invstd, float *dgamma,
                               float *dbeta);
void cuda_k_bn_backward_input(int64_t rows, int64_t channels, const float *x, const float *dy, const float *gamma,
                              const float *save_mean, const float *save_invstd, const double *stats, float *dx);

void cuda_k_maxpool2d_forward(const ob_pool2d_geom *g, const float *x, float *y, int32_t *argmax);
void cuda_k_maxpool2d_backward(const ob_pool2d_geom *g, const int32_t *argmax, const float *dy, float *dx);
void cuda_k_global_avgpool_forward(int64_t batch, int64_t hw, int64_t channels, const float *x, float *y);
void cuda_k_global_avgpool_backward(int64_t batch, int64_t hw, int64_t channels, const float *dy, float *dx);

/* row_loss: device scratch of `batch` doubles */
void cuda_k_softmax_xent_forward(int64_t batch, int64_t classes, const float *logits, const int32_t *labels,
                                 double smoothing, float *probs, double *row_loss, float *loss);
/* dloss: the [1] loss gradient, read on the device */
void cuda_k_softmax_xent_backward(int64_t batch, int64_t classes, const float *probs, const int32_t *labels,
                                  double smoothing, const float *dloss, float *dlogits);

void cuda_k_sgd_update(int64_t n, float *param, const float *grad, float *momentum_buf, double lr,
                       double momentum, double l2_decay, double decoupled_decay, int nesterov);
void cuda_k_adam_update(int64_t n, float *param, float *grad, float *m, float *v, const ob_adam_hyper *h);

/* a[r, c] = a[c, r] for c < r (the lower triangle from the upper) */
void cuda_k_mirror_upper(int64_t n, float *a);
void cuda_k_transpose_square(int64_t n, float *a);
void cuda_k_copy_columns(int64_t rows, int64_t cols, const float *src, int64_t src_ld, int64_t src_col,
                         float *dst, int64_t dst_ld, int64_t dst_col);
void cuda_k_add_diagonal(int64_t n, double value, float *a);
void cuda_k_outer_inverse(int64_t rows, int64_t cols, const float *u, const float *v, double shift, float *out);

#ifdef __cplusplus
}
#endif

#endif
