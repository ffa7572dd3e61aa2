/* Prototypes of the CPU kernels for one ob_real instantiation.
 * Deliberately no include guard: backend_cpu.c includes this file once per
 * instantiation (float, double). Pointers are raw and contiguous; layouts
 * and accumulation rules are those documented in nn/ob_backend.h. */
#include <stdint.h>
#include "nn/ob_backend.h"

void OB_FN(k_fill)(int64_t n, ob_real value, ob_real *x);
void OB_FN(k_copy)(int64_t n, const ob_real *src, ob_real *dst);
void OB_FN(k_scale)(int64_t n, ob_real alpha, ob_real *x);
void OB_FN(k_axpy)(int64_t n, ob_real alpha, const ob_real *x, ob_real *y);
double OB_FN(k_sumsq)(int64_t n, const ob_real *x);
double OB_FN(k_dot)(int64_t n, const ob_real *x, const ob_real *y);
void OB_FN(k_mul)(int64_t n, const ob_real *a, const ob_real *b, ob_real *y);
void OB_FN(k_relu_forward)(int64_t n, const ob_real *x, ob_real *y);
void OB_FN(k_relu_backward)(int64_t n, const ob_real *y, const ob_real *dy, ob_real *dx);
void OB_FN(k_add_forward)(int64_t n, const ob_real *a, const ob_real *b, ob_real *y);

void OB_FN(k_im2col)(const ob_conv2d_geom *g, const ob_real *x, ob_real *cols);
void OB_FN(k_conv2d_forward)(const ob_conv2d_geom *g, const ob_real *x, const ob_real *w,
                             const ob_real *bias, ob_real *y, ob_real *cols);
void OB_FN(k_conv2d_backward)(const ob_conv2d_geom *g, const ob_real *x, const ob_real *w,
                              const ob_real *dy, ob_real *dx, ob_real *dw, ob_real *dbias,
                              const ob_real *cols, ob_real *dcols);

int OB_FN(k_batchnorm_forward_train)(int64_t rows, int64_t channels, const ob_real *x,
                                     const ob_real *gamma, const ob_real *beta, ob_real *y,
                                     ob_real *save_mean, ob_real *save_invstd, ob_real *running_mean,
                                     ob_real *running_var, double momentum, double eps,
                                     const ob_batchnorm_reduce *reduce);
void OB_FN(k_batchnorm_forward_eval)(int64_t rows, int64_t channels, const ob_real *x,
                                     const ob_real *gamma, const ob_real *beta,
                                     const ob_real *running_mean, const ob_real *running_var,
                                     double eps, ob_real *y);
int OB_FN(k_batchnorm_backward)(int64_t rows, int64_t channels, const ob_real *x, const ob_real *gamma,
                                const ob_real *save_mean, const ob_real *save_invstd, const ob_real *dy,
                                ob_real *dx, ob_real *dgamma, ob_real *dbeta, const ob_batchnorm_reduce *reduce);

void OB_FN(k_maxpool2d_forward)(const ob_pool2d_geom *g, const ob_real *x, ob_real *y, int32_t *argmax);
void OB_FN(k_maxpool2d_backward)(const ob_pool2d_geom *g, const int32_t *argmax, const ob_real *dy,
                                 ob_real *dx);
void OB_FN(k_global_avgpool_forward)(int64_t batch, int64_t hw, int64_t channels, const ob_real *x,
                                     ob_real *y);
void OB_FN(k_global_avgpool_backward)(int64_t batch, int64_t hw, int64_t channels, const ob_real *dy,
                                      ob_real *dx);

void OB_FN(k_linear_forward)(int64_t batch, int64_t in, int64_t out, const ob_real *x, const ob_real *w,
                             const ob_real *bias, ob_real *y);
void OB_FN(k_linear_backward)(int64_t batch, int64_t in, int64_t out, const ob_real *x, const ob_real *w,
                              const ob_real *dy, ob_real *dx, ob_real *dw, ob_real *dbias);

void OB_FN(k_softmax_xent_forward)(int64_t batch, int64_t classes, const ob_real *logits,
                                   const int32_t *labels, double smoothing, ob_real *probs, ob_real *loss);
void OB_FN(k_softmax_xent_backward)(int64_t batch, int64_t classes, const ob_real *probs,
                                    const int32_t *labels, double smoothing, ob_real dloss,
                                    ob_real *dlogits);

void OB_FN(k_sgd_update)(int64_t n, ob_real *param, const ob_real *grad, ob_real *momentum_buf, double lr,
                         double momentum, double l2_decay, double decoupled_decay, int nesterov);
void OB_FN(k_adam_update)(int64_t n, ob_real *param, ob_real *grad, ob_real *m, ob_real *v,
                          const ob_adam_hyper *h);

void OB_FN(k_gemm)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha, const ob_real *a,
                   const ob_real *b, double beta, ob_real *c);
void OB_FN(k_syrk)(int64_t rows, int64_t n, double alpha, const ob_real *x, double beta, ob_real *c, int slices,
                   ob_real *partials);
void OB_FN(k_sym_eigen_workspace)(int64_t n, int64_t *work_elements, int64_t *iwork_elements);
int OB_FN(k_sym_eigen)(int64_t n, ob_real *q, ob_real *d, ob_real *work, int64_t work_elements,
                       int32_t *iwork, int64_t iwork_elements);
int OB_FN(k_spd_inverse)(int64_t n, ob_real *a);
void OB_FN(k_copy_columns)(int64_t rows, int64_t cols, const ob_real *src, int64_t src_ld, int64_t src_col,
                           ob_real *dst, int64_t dst_ld, int64_t dst_col);
void OB_FN(k_add_diagonal)(int64_t n, ob_real value, ob_real *a);
double OB_FN(k_trace)(int64_t n, const ob_real *a);
void OB_FN(k_outer_inverse)(int64_t rows, int64_t cols, const ob_real *u, const ob_real *v, double shift,
                            ob_real *out);

/* Transformer ops (embedding, layer norm, GELU, dropout, attention). */
void OB_FN(k_gather_rows)(int64_t n_rows, int64_t width, const int32_t *rows, const ob_real *src, ob_real *y);
void OB_FN(k_scatter_add_rows)(int64_t n_rows, int64_t width, const int32_t *rows, const ob_real *dy,
                               ob_real *dsrc);
void OB_FN(k_layernorm_forward)(int64_t rows, int64_t width, const ob_real *x, const ob_real *gamma,
                                const ob_real *beta, double eps, ob_real *y, ob_real *mean, ob_real *invstd);
void OB_FN(k_layernorm_backward)(int64_t rows, int64_t width, const ob_real *x, const ob_real *gamma,
                                 const ob_real *mean, const ob_real *invstd, const ob_real *dy, ob_real *dx,
                                 ob_real *dgamma, ob_real *dbeta);
void OB_FN(k_gelu_forward)(int64_t n, const ob_real *x, ob_real *y);
void OB_FN(k_gelu_backward)(int64_t n, const ob_real *x, const ob_real *dy, ob_real *dx);
void OB_FN(k_tanh_forward)(int64_t n, const ob_real *x, ob_real *y);
void OB_FN(k_tanh_backward)(int64_t n, const ob_real *y, const ob_real *dy, ob_real *dx);
void OB_FN(k_dropout)(int64_t n, const ob_rng_stream *stream, uint64_t first_word, uint32_t threshold,
                      ob_real scale, const ob_real *x, ob_real *y, int accumulate);
void OB_FN(k_batched_gemm)(int64_t batch, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                           double alpha, const ob_real *a, const ob_real *b, double beta, ob_real *c);
void OB_FN(k_masked_softmax_forward)(int64_t batch, int64_t rows_per_batch, int64_t keys,
                                     const ob_real *scores, const int32_t *key_mask, ob_real *probs);
void OB_FN(k_masked_softmax_backward)(int64_t rows, int64_t keys, const ob_real *probs, const ob_real *dprobs,
                                      ob_real *dscores);
void OB_FN(k_swap_middle_axes)(int64_t outer, int64_t d1, int64_t d2, int64_t inner, const ob_real *src,
                               ob_real *dst, int accumulate);
