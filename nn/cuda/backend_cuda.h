/* The CUDA back end's internals shared by its host files (backend_cuda.c:
 * the table, memory and the kernel glue; blas_cuda.c: cuBLAS and cuSOLVER;
 * conv_cudnn.c: cuDNN). Not a public header.
 *
 * Per-ctx state (slot OB_CUDA of ob_ctx_backend_state), created on first
 * use: the device, the cuBLAS, cuDNN and cuSOLVER handles, the compute
 * stream and the cache of device blocks. The stream is the legacy default
 * stream (0): every kernel of the back end (its own and nn/cuda/
 * cuda_kernels.h's) and every library call runs there, so the order of
 * the entries is the order of the work and nothing needs events. Overlap
 * of communication and data loading on separate streams is later work. */
#ifndef OB_CUDA_BACKEND_CUDA_H
#define OB_CUDA_BACKEND_CUDA_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <cusolverDn.h>

#include "nn/cuda/device_cache.h"
#include "nn/ob_backend.h"

typedef struct {
    int device;
    cudaStream_t stream; /* 0: the legacy default stream */
    cublasHandle_t cublas;
    cudnnHandle_t cudnn;
    cusolverDnHandle_t cusolver;
    bool tf32; /* off: cuBLAS default math, cuDNN FMA math */
    ob_cuda_cache cache;
} ob_cuda_state;

/* The ctx's state, created on first use; NULL with the reason in ctx when
 * there is no usable device. */
ob_cuda_state *ob_cuda_state_of(ob_ctx *ctx);

/* Refuses a tensor the F32 kernels cannot read: prints which entry got
 * what and aborts. Entries without a ctx have no other way to fail, and a
 * silent misread would be worse; the ops only pass F64 to the CPU table
 * (gradcheck). */
void ob_cuda_require(const ob_tensor *t, ob_dtype dtype, const char *entry);

/* Entries implemented in blas_cuda.c. */
void ob_cuda_linear_forward(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *w, const ob_tensor *bias,
                            ob_tensor *y);
void ob_cuda_linear_backward(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *w, const ob_tensor *dy,
                             ob_tensor *dx, ob_tensor *dw, ob_tensor *dbias);
void ob_cuda_gemm(ob_ctx *ctx, bool trans_a, bool trans_b, double alpha, const ob_tensor *a, const ob_tensor *b,
                  double beta, ob_tensor *c);
void ob_cuda_batched_gemm(ob_ctx *ctx, bool trans_a, bool trans_b, double alpha, const ob_tensor *a,
                          const ob_tensor *b, double beta, ob_tensor *c);
int ob_cuda_syrk(ob_ctx *ctx, double alpha, const ob_tensor *x, double beta, ob_tensor *c);
int ob_cuda_sym_eigen(ob_ctx *ctx, const ob_tensor *a, ob_tensor *q, ob_tensor *d);
int ob_cuda_spd_inverse(ob_ctx *ctx, const ob_tensor *a, ob_tensor *inv);

/* Entries implemented in conv_cudnn.c. */
int64_t ob_cuda_conv2d_workspace_elements(ob_ctx *ctx, const ob_conv2d_geom *g, ob_dtype dtype,
                                          ob_conv2d_direction direction);
int ob_cuda_conv2d_forward(ob_ctx *ctx, const ob_conv2d_geom *g, const ob_tensor *x, const ob_tensor *w,
                           const ob_tensor *bias, ob_tensor *y, ob_tensor *saved);
int ob_cuda_conv2d_backward(ob_ctx *ctx, const ob_conv2d_geom *g, const ob_tensor *x, const ob_tensor *w,
                            const ob_tensor *dy, ob_tensor *dx, ob_tensor *dw, ob_tensor *dbias,
                            const ob_tensor *saved, ob_tensor *scratch);

#endif
