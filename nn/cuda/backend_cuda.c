/* The CUDA backend table: per-ctx state (library handles, the device block
 * cache), memory and transfers, and the glue that unpacks tensors for the
 * kernels of nn/cuda/k_*.cu. The cuBLAS/cuSOLVER entries are in
 * blas_cuda.c, the cuDNN ones in conv_cudnn.c; the element-wise and
 * transformer entries are nn/cuda/cuda_kernels.h's. F32 tensors only.
 * Everything runs on the legacy default stream (backend_cuda.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/cuda/backend_cuda.h"
#include "nn/cuda/cuda_backend_kernels.h"
#include "nn/cuda/cuda_kernels.h"
#include "nn/cuda/ob_cuda.h"

void ob_cuda_require(const ob_tensor *t, ob_dtype dtype, const char *entry) {
    if (t->dtype == dtype) return;
    fprintf(stderr, "optbench: the CUDA back end's %s takes %s tensors, got %s (F64 runs on the CPU only)\n",
            entry, ob_dtype_name(dtype), ob_dtype_name(t->dtype));
    abort();
}

static void state_release(void *opaque) {
    ob_cuda_state *state = opaque;
    if (state->cusolver) cusolverDnDestroy(state->cusolver);
    if (state->cudnn) cudnnDestroy(state->cudnn);
    if (state->cublas) cublasDestroy(state->cublas);
    ob_cuda_cache_trim(&state->cache);
    free(state);
}

/* The handles, bound to the legacy default stream. The device is the
 * ctx's rank modulo the visible devices: one process per GPU, ranks of a
 * node numbered consecutively. */
static int state_init(ob_ctx *ctx, ob_cuda_state *state) {
    int devices = 0;
    cudaError_t err = cudaGetDeviceCount(&devices);
    if (err != cudaSuccess || devices == 0) {
        ob_ctx_set_error(ctx, "cuda: no CUDA device visible (%s)",
                         err != cudaSuccess ? cudaGetErrorString(err) : "none found");
        return 1;
    }
    state->device = ob_ctx_rank(ctx) % devices;
    state->stream = 0;
    if ((err = cudaSetDevice(state->device)) != cudaSuccess) {
        ob_ctx_set_error(ctx, "cuda: cannot use device %d: %s", state->device, cudaGetErrorString(err));
        return 1;
    }
    if (cublasCreate(&state->cublas) != CUBLAS_STATUS_SUCCESS ||
        cublasSetStream(state->cublas, state->stream) != CUBLAS_STATUS_SUCCESS ||
        cublasSetMathMode(state->cublas, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS) {
        ob_ctx_set_error(ctx, "cuda: cuBLAS did not initialise on device %d", state->device);
        return 1;
    }
    cudnnStatus_t status = cudnnCreate(&state->cudnn);
    if (status == CUDNN_STATUS_SUCCESS) status = cudnnSetStream(state->cudnn, state->stream);
    if (status != CUDNN_STATUS_SUCCESS) {
        ob_ctx_set_error(ctx, "cuda: cuDNN did not initialise: %s", cudnnGetErrorString(status));
        return 1;
    }
    if (cusolverDnCreate(&state->cusolver) != CUSOLVER_STATUS_SUCCESS ||
        cusolverDnSetStream(state->cusolver, state->stream) != CUSOLVER_STATUS_SUCCESS) {
        ob_ctx_set_error(ctx, "cuda: cuSOLVER did not initialise on device %d", state->device);
        return 1;
    }
    return 0;
}

ob_cuda_state *ob_cuda_state_of(ob_ctx *ctx) {
    ob_cuda_state *state = ob_ctx_backend_state(ctx, OB_CUDA);
    if (state) return state;
    state = calloc(1, sizeof *state);
    if (!state) {
        ob_ctx_set_error(ctx, "cuda: out of host memory for the back end's state");
        return NULL;
    }
    if (state_init(ctx, state)) {
        state_release(state);
        return NULL;
    }
    ob_ctx_set_backend_state(ctx, OB_CUDA, state, state_release);
    return state;
}

int ob_cuda_set_tf32(ob_ctx *ctx, bool enabled) {
    ob_cuda_state *state = ob_cuda_state_of(ctx);
    if (!state) return 1;
    if (cublasSetMathMode(state->cublas, enabled ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH) !=
        CUBLAS_STATUS_SUCCESS) {
        ob_ctx_set_error(ctx, "cuda: cuBLAS refused the %s math mode", enabled ? "TF32" : "default");
        return 1;
    }
    state->tf32 = enabled; /* cuDNN: read when each convolution picks its math type */
    return 0;
}

/* Memory: blocks from the ctx's cache (device_cache.h). */
static void *cuda_alloc(ob_ctx *ctx, size_t bytes) {
    ob_cuda_state *state = ob_cuda_state_of(ctx);
    return state ? ob_cuda_cache_alloc(&state->cache, bytes) : NULL;
}
static void cuda_release(ob_ctx *ctx, void *ptr, size_t bytes) {
    ob_cuda_state *state = ob_ctx_backend_state(ctx, OB_CUDA);
    if (state) ob_cuda_cache_release(&state->cache, ptr, bytes);
}
static void cuda_zero(ob_ctx *ctx, void *ptr, size_t bytes) {
    (void)ctx;
    cudaMemsetAsync(ptr, 0, bytes, 0);
}

/* A failed call's error, or the sticky error of an earlier kernel, into ctx. */
static int check(ob_ctx *ctx, cudaError_t err, const char *what, size_t bytes) {
    if (err == cudaSuccess) return 0;
    ob_ctx_set_error(ctx, "cuda: %s of %zu bytes failed: %s", what, bytes, cudaGetErrorString(err));
    return 1;
}
/* cudaMemcpy on the legacy stream waits for the work queued before it and
 * returns when the copy is done. */
static int cuda_upload(ob_ctx *ctx, void *device_dst, const void *host_src, size_t bytes) {
    return check(ctx, cudaMemcpy(device_dst, host_src, bytes, cudaMemcpyHostToDevice), "upload", bytes);
}
static int cuda_download(ob_ctx *ctx, void *host_dst, const void *device_src, size_t bytes) {
    return check(ctx, cudaMemcpy(host_dst, device_src, bytes, cudaMemcpyDeviceToHost), "download", bytes);
}
static int cuda_synchronize(ob_ctx *ctx) { return check(ctx, cudaDeviceSynchronize(), "synchronize", 0); }

static const float *f32(const ob_tensor *t, const char *entry) {
    ob_cuda_require(t, OB_F32, entry);
    return t->data;
}
static float *f32_out(ob_tensor *t, const char *entry) { return (float *)f32(t, entry); }
static float *f32_or_null(ob_tensor *t, const char *entry) { return t ? f32_out(t, entry) : NULL; }
static const int32_t *i32(const ob_tensor *t, const char *entry) {
    ob_cuda_require(t, OB_I32, entry);
    return t->data;
}

static void cuda_im2col(const ob_conv2d_geom *g, const ob_tensor *x, ob_tensor *cols) {
    cuda_k_im2col(g, f32(x, "im2col"), f32_out(cols, "im2col"));
}

/* Batch-norm: x is [rows, channels], channels its last dim. */
static int64_t bn_channels(const ob_tensor *x) { return x->shape[x->ndim - 1]; }

/* Synchronized batch-norm: the per-channel sums and row counts in `stats`
 * go to the host, are added over ranks by `reduce` in blocks of
 * OB_BATCHNORM_REDUCE_CHANNELS channels (one call of 2 width + 1 values each, as nn/cpu/k_batchnorm.c
 * makes them) and come back. */
static int bn_reduce_stats(ob_ctx *ctx, const ob_batchnorm_reduce *reduce, int64_t channels, double *stats) {
    size_t slot_bytes = (size_t)channels * sizeof(double);
    double *host = ob_arena_alloc(ctx, OB_CUDA_BN_STATS * slot_bytes, OB_MEM_WORKSPACE);
    if (!host || cuda_download(ctx, host, stats, OB_CUDA_BN_STATS * slot_bytes)) return 1;
    double *sum = host, *sum_sq = host + channels, *rows = host + 3 * channels;
    for (int64_t first = 0; first < channels; first += OB_BATCHNORM_REDUCE_CHANNELS) {
        int64_t width = channels - first;
        if (width > OB_BATCHNORM_REDUCE_CHANNELS) width = OB_BATCHNORM_REDUCE_CHANNELS;
        double packed[2 * OB_BATCHNORM_REDUCE_CHANNELS + 1];
        for (int64_t c = 0; c < width; c++) {
            packed[c] = sum[first + c];
            packed[width + c] = sum_sq[first + c];
        }
        packed[2 * width] = rows[first];
        if (reduce->sum(packed, 2 * width + 1, reduce->user)) {
            ob_ctx_set_error(ctx, "batchnorm: the synchronized statistics' reduction failed");
            return 1;
        }
        for (int64_t c = 0; c < width; c++) {
            sum[first + c] = packed[c];
            sum_sq[first + c] = packed[width + c];
            rows[first + c] = packed[2 * width];
        }
    }
    return cuda_upload(ctx, stats, host, OB_CUDA_BN_STATS * slot_bytes);
}

/* Device scratch for the per-channel sums, from the step arena. */
static double *bn_stats_scratch(ob_ctx *ctx, int64_t channels) {
    ob_tensor *t = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_F64, OB_SHAPE(OB_CUDA_BN_STATS * channels));
    return t ? t->data : NULL;
}

static int cuda_bn_forward_train(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *beta,
                                 ob_tensor *y, ob_tensor *save_mean, ob_tensor *save_invstd,
                                 ob_tensor *running_mean, ob_tensor *running_var, double momentum, double eps,
                                 const ob_batchnorm_reduce *reduce) {
    const char *entry = "batchnorm_forward_train";
    int64_t channels = bn_channels(x), rows = x->numel / channels;
    double *stats = bn_stats_scratch(ctx, channels);
    if (!stats) return 1;
    float *rm = f32_or_null(running_mean, entry);
    cuda_k_bn_train_stats(rows, channels, f32(x, entry), rm, reduce != NULL, stats);
    if (reduce && bn_reduce_stats(ctx, reduce, channels, stats)) return 1;
    cuda_k_bn_train_apply(rows, channels, x->data, f32(gamma, entry), f32(beta, entry), stats, f32_out(y, entry),
                          f32_out(save_mean, entry), f32_out(save_invstd, entry), rm,
                          f32_or_null(running_var, entry), momentum, eps);
    return 0;
}

static void cuda_bn_forward_eval(const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *beta,
                                 const ob_tensor *running_mean, const ob_tensor *running_var, double eps,
                                 ob_tensor *y) {
    const char *entry = "batchnorm_forward_eval";
    int64_t channels = bn_channels(x);
    cuda_k_bn_eval(x->numel / channels, channels, f32(x, entry), f32(gamma, entry), f32(beta, entry),
                   f32(running_mean, entry), f32(running_var, entry), eps, f32_out(y, entry));
}

/* gamma and beta take this rank's sums; dx those over every rank's rows
 * when the statistics were synchronized (as nn/cpu/k_batchnorm.c). */
static int cuda_bn_backward(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *save_mean,
                            const ob_tensor *save_invstd, const ob_tensor *dy, ob_tensor *dx, ob_tensor *dgamma,
                            ob_tensor *dbeta, const ob_batchnorm_reduce *reduce) {
    const char *entry = "batchnorm_backward";
    int64_t channels = bn_channels(x), rows = x->numel / channels;
    double *stats = bn_stats_scratch(ctx, channels);
    if (!stats) return 1;
    cuda_k_bn_backward_stats(rows, channels, f32(x, entry), f32(dy, entry), f32(save_mean, entry), stats);
    cuda_k_bn_backward_params(channels, stats, f32(save_invstd, entry), f32_or_null(dgamma, entry),
                              f32_or_null(dbeta, entry));
    /* reduced even without dx: every rank takes part in the collective */
    if (reduce && bn_reduce_stats(ctx, reduce, channels, stats)) return 1;
    if (!dx) return 0;
    cuda_k_bn_backward_input(rows, channels, x->data, dy->data, f32(gamma, entry), save_mean->data,
                             save_invstd->data, stats, f32_out(dx, entry));
    return 0;
}

static void cuda_maxpool_forward(const ob_pool2d_geom *g, const ob_tensor *x, ob_tensor *y, ob_tensor *argmax) {
    const char *entry = "maxpool2d_forward";
    cuda_k_maxpool2d_forward(g, f32(x, entry), f32_out(y, entry), (int32_t *)i32(argmax, entry));
}
static void cuda_maxpool_backward(const ob_pool2d_geom *g, const ob_tensor *argmax, const ob_tensor *dy,
                                  ob_tensor *dx) {
    const char *entry = "maxpool2d_backward";
    cuda_k_maxpool2d_backward(g, i32(argmax, entry), f32(dy, entry), f32_out(dx, entry));
}
/* x is [batch, h, w, c] (or [batch, hw, c]); y is [batch, c]. */
static void cuda_gap_forward(const ob_tensor *x, ob_tensor *y) {
    int64_t batch = x->shape[0], channels = x->shape[x->ndim - 1];
    cuda_k_global_avgpool_forward(batch, x->numel / (batch * channels), channels,
                                  f32(x, "global_avgpool_forward"), f32_out(y, "global_avgpool_forward"));
}
static void cuda_gap_backward(const ob_tensor *dy, ob_tensor *dx) {
    int64_t batch = dx->shape[0], channels = dx->shape[dx->ndim - 1];
    cuda_k_global_avgpool_backward(batch, dx->numel / (batch * channels), channels,
                                   f32(dy, "global_avgpool_backward"), f32_out(dx, "global_avgpool_backward"));
}

static int cuda_xent_forward(ob_ctx *ctx, const ob_tensor *logits, const ob_tensor *labels, double smoothing,
                             ob_tensor *probs, ob_tensor *loss) {
    const char *entry = "softmax_xent_forward";
    int64_t batch = logits->shape[0];
    ob_tensor *row_loss = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_F64, OB_SHAPE(batch));
    if (!row_loss) return 1;
    cuda_k_softmax_xent_forward(batch, logits->shape[1], f32(logits, entry), i32(labels, entry), smoothing,
                                f32_out(probs, entry), row_loss->data, f32_out(loss, entry));
    return 0;
}
static void cuda_xent_backward(const ob_tensor *probs, const ob_tensor *labels, double smoothing,
                               const ob_tensor *dloss, ob_tensor *dlogits) {
    const char *entry = "softmax_xent_backward";
    cuda_k_softmax_xent_backward(probs->shape[0], probs->shape[1], f32(probs, entry), i32(labels, entry),
                                 smoothing, f32(dloss, entry), f32_out(dlogits, entry));
}

static void cuda_sgd_update(ob_tensor *param, const ob_tensor *grad, ob_tensor *momentum_buf, double lr,
                            double momentum, double l2_decay, double decoupled_decay, int nesterov) {
    const char *entry = "sgd_update";
    cuda_k_sgd_update(param->numel, f32_out(param, entry), f32(grad, entry), f32_or_null(momentum_buf, entry), lr,
                      momentum, l2_decay, decoupled_decay, nesterov);
}
static void cuda_adam_update(ob_tensor *param, ob_tensor *grad, ob_tensor *m, ob_tensor *v,
                             const ob_adam_hyper *h) {
    const char *entry = "adam_update";
    cuda_k_adam_update(param->numel, f32_out(param, entry), f32_out(grad, entry), f32_out(m, entry),
                       f32_out(v, entry), h);
}

static void cuda_copy_columns(int64_t rows, int64_t cols, const ob_tensor *src, int64_t src_col, ob_tensor *dst,
                              int64_t dst_col) {
    cuda_k_copy_columns(rows, cols, f32(src, "copy_columns"), src->numel / rows, src_col,
                        f32_out(dst, "copy_columns"), dst->numel / rows, dst_col);
}
static void cuda_add_diagonal(ob_tensor *a, double value) {
    cuda_k_add_diagonal(a->shape[0], value, f32_out(a, "add_diagonal"));
}
/* sum_i a[i,i] in double, in index order as the CPU: the diagonal (stride
 * n + 1) comes to the host in one strided copy and is added there. NaN
 * when the copy fails (the entry has no other way to say so). */
static double cuda_trace(const ob_tensor *a) {
    int64_t n = a->shape[0];
    float *diagonal = malloc((size_t)n * sizeof *diagonal);
    if (!diagonal || cudaMemcpy2D(diagonal, sizeof *diagonal, f32(a, "trace"), (size_t)(n + 1) * sizeof *diagonal,
                                  sizeof *diagonal, (size_t)n, cudaMemcpyDeviceToHost) != cudaSuccess) {
        free(diagonal);
        return NAN;
    }
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) total += diagonal[i];
    free(diagonal);
    return total;
}
static void cuda_outer_inverse(const ob_tensor *u, const ob_tensor *v, double shift, ob_tensor *out) {
    cuda_k_outer_inverse(u->numel, v->numel, f32(u, "outer_inverse"), f32(v, "outer_inverse"), shift,
                         f32_out(out, "outer_inverse"));
}

const ob_backend ob_cuda_backend = {
    .name = "cuda",
    .alloc = cuda_alloc,
    .release = cuda_release,
    .zero = cuda_zero,
    .upload = cuda_upload,
    .download = cuda_download,
    .synchronize = cuda_synchronize,
    .fill = cuda_fill,
    .copy = cuda_copy,
    .scale = cuda_scale,
    .axpy = cuda_axpy,
    .sumsq = cuda_sumsq,
    .im2col = cuda_im2col,
    .conv2d_workspace_elements = ob_cuda_conv2d_workspace_elements,
    .conv2d_forward = ob_cuda_conv2d_forward,
    .conv2d_backward = ob_cuda_conv2d_backward,
    .batchnorm_forward_train = cuda_bn_forward_train,
    .batchnorm_forward_eval = cuda_bn_forward_eval,
    .batchnorm_backward = cuda_bn_backward,
    .relu_forward = cuda_relu_forward,
    .relu_backward = cuda_relu_backward,
    .add_forward = cuda_add_forward,
    .maxpool2d_forward = cuda_maxpool_forward,
    .maxpool2d_backward = cuda_maxpool_backward,
    .global_avgpool_forward = cuda_gap_forward,
    .global_avgpool_backward = cuda_gap_backward,
    .linear_forward = ob_cuda_linear_forward,
    .linear_backward = ob_cuda_linear_backward,
    .softmax_xent_forward = cuda_xent_forward,
    .softmax_xent_backward = cuda_xent_backward,
    .sgd_update = cuda_sgd_update,
    .gemm = ob_cuda_gemm,
    .syrk = ob_cuda_syrk,
    .sym_eigen = ob_cuda_sym_eigen,
    .spd_inverse = ob_cuda_spd_inverse,
    .copy_columns = cuda_copy_columns,
    .add_diagonal = cuda_add_diagonal,
    .trace = cuda_trace,
    .dot = cuda_dot,
    .mul = cuda_mul,
    .outer_inverse = cuda_outer_inverse,
    .adam_update = cuda_adam_update,
    .gather_rows = cuda_gather_rows,
    .scatter_add_rows = cuda_scatter_add_rows,
    .layernorm_forward = cuda_layernorm_forward,
    .layernorm_backward = cuda_layernorm_backward,
    .gelu_forward = cuda_gelu_forward,
    .gelu_backward = cuda_gelu_backward,
    .tanh_forward = cuda_tanh_forward,
    .tanh_backward = cuda_tanh_backward,
    .dropout = cuda_dropout,
    .batched_gemm = ob_cuda_batched_gemm,
    .masked_softmax_forward = cuda_masked_softmax_forward,
    .masked_softmax_backward = cuda_masked_softmax_backward,
    .swap_middle_axes = cuda_swap_middle_axes,
};
