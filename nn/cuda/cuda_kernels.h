/* The CUDA back end's element-wise, reduction and transformer entries
 * (nn/cuda/k_*.cu): each has exactly the signature and the contract of the
 * ob_backend entry of the same name in nn/ob_backend.h, for F32 tensors in
 * device memory. They launch on the legacy default stream, as every kernel
 * and library call of the back end does, so their order needs no events. */
#ifndef OB_CUDA_KERNELS_H
#define OB_CUDA_KERNELS_H

#ifdef __cplusplus
extern "C" { /* the nn headers are C: their functions keep C linkage in .cu files */
#endif

#include "nn/ob_backend.h"

void cuda_fill(ob_tensor *x, double value);
void cuda_copy(const ob_tensor *src, ob_tensor *dst);
void cuda_scale(double alpha, ob_tensor *x);
void cuda_axpy(double alpha, const ob_tensor *x, ob_tensor *y);
double cuda_sumsq(const ob_tensor *x);
double cuda_dot(const ob_tensor *x, const ob_tensor *y);
void cuda_mul(const ob_tensor *a, const ob_tensor *b, ob_tensor *y);

void cuda_relu_forward(const ob_tensor *x, ob_tensor *y);
void cuda_relu_backward(const ob_tensor *y, const ob_tensor *dy, ob_tensor *dx);
void cuda_add_forward(const ob_tensor *a, const ob_tensor *b, ob_tensor *y);

void cuda_gather_rows(const ob_tensor *src, const ob_tensor *rows, ob_tensor *y);
void cuda_scatter_add_rows(const ob_tensor *dy, const ob_tensor *rows, ob_tensor *dsrc);
void cuda_layernorm_forward(const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *beta, double eps,
                            ob_tensor *y, ob_tensor *mean, ob_tensor *invstd);
void cuda_layernorm_backward(const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *mean,
                             const ob_tensor *invstd, const ob_tensor *dy, ob_tensor *dx, ob_tensor *dgamma,
                             ob_tensor *dbeta);
void cuda_gelu_forward(const ob_tensor *x, ob_tensor *y);
void cuda_gelu_backward(const ob_tensor *x, const ob_tensor *dy, ob_tensor *dx);
void cuda_tanh_forward(const ob_tensor *x, ob_tensor *y);
void cuda_tanh_backward(const ob_tensor *y, const ob_tensor *dy, ob_tensor *dx);
void cuda_dropout(const ob_rng_stream *stream, uint64_t first_word, double p, const ob_tensor *x, ob_tensor *y,
                  bool accumulate);
void cuda_masked_softmax_forward(const ob_tensor *scores, const ob_tensor *key_mask, ob_tensor *probs);
void cuda_masked_softmax_backward(const ob_tensor *probs, const ob_tensor *dprobs, ob_tensor *dscores);
void cuda_swap_middle_axes(int64_t outer, int64_t d1, int64_t d2, int64_t inner, const ob_tensor *src,
                           ob_tensor *dst, bool accumulate);

#ifdef __cplusplus
}
#endif

#endif
