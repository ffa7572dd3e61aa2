/* 2-D convolution on cuDNN: NHWC activations and [out_c, kh, kw, in_c]
 * weights are cuDNN's NHWC tensors and KRSC filters as they are.
 *
 * Each pass takes the best algorithm cuDNN's heuristics rank (no timing
 * runs) that keeps to FMA math unless TF32 is on (ob_cuda_set_tf32) and
 * whose workspace fits what the op allocated; the op sizes the workspaces
 * through ob_cuda_conv2d_workspace_elements, which asks the same
 * heuristics. The FORWARD workspace serves the forward and, in backward,
 * the filter gradient (nothing in it survives between the two: the op
 * keeps it alive until backward anyway); the BACKWARD one the data
 * gradient. Descriptors are built per call (host-only work); a plan cache
 * keyed by geometry is later work, as is a timed (cudnnFind) choice.
 *
 * Backward accumulates through cuDNN's beta = 1; the bias and its
 * gradient are kernels of k_linear.cu. */
#include <limits.h>
#include <stdint.h>

#include "nn/cuda/backend_cuda.h"
#include "nn/cuda/cuda_backend_kernels.h"

typedef struct {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
} conv_descs;

typedef enum { PASS_FORWARD, PASS_BACKWARD_DATA, PASS_BACKWARD_FILTER } conv_pass;
static const char *const pass_names[] = {"forward", "backward data", "backward filter"};

/* One entry of a heuristic's ranking, whichever pass it is for. */
typedef struct {
    int algo;
    cudnnStatus_t status;
    size_t memory;
    cudnnMathType_t math;
} ranked_algo;

#define MAX_RANKED 8 /* >= every pass's CUDNN_CONVOLUTION_*_ALGO_COUNT */

static void descs_free(conv_descs *d) {
    if (d->x) cudnnDestroyTensorDescriptor(d->x);
    if (d->y) cudnnDestroyTensorDescriptor(d->y);
    if (d->w) cudnnDestroyFilterDescriptor(d->w);
    if (d->conv) cudnnDestroyConvolutionDescriptor(d->conv);
}

static cudnnStatus_t descs_make(const ob_conv2d_geom *g, conv_descs *d) {
    *d = (conv_descs){0};
    cudnnStatus_t s = cudnnCreateTensorDescriptor(&d->x);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnCreateTensorDescriptor(&d->y);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnCreateFilterDescriptor(&d->w);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnCreateConvolutionDescriptor(&d->conv);
    int batch = (int)g->batch;
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnSetTensor4dDescriptor(d->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, batch, g->in_c, g->in_h,
                                       g->in_w);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnSetTensor4dDescriptor(d->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, batch, g->out_c, g->out_h,
                                       g->out_w);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnSetFilter4dDescriptor(d->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, g->out_c, g->in_c, g->kernel_h,
                                       g->kernel_w);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnSetConvolution2dDescriptor(d->conv, g->pad, g->pad, g->stride, g->stride, g->dilation,
                                            g->dilation, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
    return s;
}

/* The heuristics' ranking for one pass, best first; returns its length. */
static int rank_algos(cudnnHandle_t handle, const conv_descs *d, conv_pass pass, ranked_algo *ranked) {
    int count = 0;
    if (pass == PASS_FORWARD) {
        cudnnConvolutionFwdAlgoPerf_t perf[MAX_RANKED];
        if (cudnnGetConvolutionForwardAlgorithm_v7(handle, d->x, d->w, d->conv, d->y, MAX_RANKED, &count, perf))
            return 0;
        for (int i = 0; i < count; i++)
            ranked[i] = (ranked_algo){(int)perf[i].algo, perf[i].status, perf[i].memory, perf[i].mathType};
    } else if (pass == PASS_BACKWARD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[MAX_RANKED];
        if (cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, d->w, d->y, d->conv, d->x, MAX_RANKED, &count,
                                                        perf))
            return 0;
        for (int i = 0; i < count; i++)
            ranked[i] = (ranked_algo){(int)perf[i].algo, perf[i].status, perf[i].memory, perf[i].mathType};
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[MAX_RANKED];
        if (cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, d->x, d->y, d->conv, d->w, MAX_RANKED, &count,
                                                          perf))
            return 0;
        for (int i = 0; i < count; i++)
            ranked[i] = (ranked_algo){(int)perf[i].algo, perf[i].status, perf[i].memory, perf[i].mathType};
    }
    return count;
}

static bool tensor_op_math(cudnnMathType_t math) {
    return math == CUDNN_TENSOR_OP_MATH || math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

/* The best-ranked algorithm that is supported, needs at most `capacity`
 * bytes and, without TF32, no tensor-op math; else algorithm 0 of the pass
 * (implicit GEMM / the plain backward algorithms), which needs no
 * workspace. The descriptor's math type is set to what the choice needs:
 * FMA without TF32 (cuDNN's default math would allow TF32 on Ampere). */
static ranked_algo choose_algo(const ob_cuda_state *state, const conv_descs *d, conv_pass pass, size_t capacity) {
    ranked_algo ranked[MAX_RANKED], chosen = {0, CUDNN_STATUS_SUCCESS, 0, CUDNN_FMA_MATH};
    int count = rank_algos(state->cudnn, d, pass, ranked);
    for (int i = 0; i < count; i++)
        if (ranked[i].status == CUDNN_STATUS_SUCCESS && ranked[i].memory <= capacity &&
            (state->tf32 || !tensor_op_math(ranked[i].math))) {
            chosen = ranked[i];
            break;
        }
    cudnnSetConvolutionMathType(d->conv, state->tf32 ? chosen.math : CUDNN_FMA_MATH);
    return chosen;
}

static int cudnn_failed(ob_ctx *ctx, const char *what, cudnnStatus_t status) {
    ob_ctx_set_error(ctx, "conv2d: cuDNN %s failed: %s", what, cudnnGetErrorString(status));
    return 1;
}

/* The state and the descriptors of g, or 1 with the reason in ctx; x and w
 * (when given) must be F32. */
static int conv_setup(ob_ctx *ctx, const char *entry, const ob_conv2d_geom *g, const ob_tensor *x,
                      const ob_tensor *w, ob_cuda_state **state, conv_descs *d) {
    if (x) ob_cuda_require(x, OB_F32, entry);
    if (w) ob_cuda_require(w, OB_F32, entry);
    *d = (conv_descs){0};
    if (g->batch > INT_MAX) {
        ob_ctx_set_error(ctx, "conv2d: a batch of %lld is beyond cuDNN's int sizes", (long long)g->batch);
        return 1;
    }
    *state = ob_cuda_state_of(ctx);
    if (!*state) return 1;
    cudnnStatus_t status = descs_make(g, d);
    if (status != CUDNN_STATUS_SUCCESS) {
        descs_free(d);
        return cudnn_failed(ctx, "descriptor setup", status);
    }
    return 0;
}

static int64_t f32_elements(size_t bytes) { return (int64_t)((bytes + sizeof(float) - 1) / sizeof(float)); }

int64_t ob_cuda_conv2d_workspace_elements(ob_ctx *ctx, const ob_conv2d_geom *g, ob_dtype dtype,
                                          ob_conv2d_direction direction) {
    (void)dtype; /* F32: the entries refuse anything else */
    ob_cuda_state *state;
    conv_descs d;
    if (conv_setup(ctx, "conv2d_workspace_elements", g, NULL, NULL, &state, &d))
        return 0; /* the pass itself will fail and say why */
    size_t bytes;
    if (direction == OB_CONV2D_FORWARD) {
        size_t forward = choose_algo(state, &d, PASS_FORWARD, SIZE_MAX).memory;
        size_t filter = choose_algo(state, &d, PASS_BACKWARD_FILTER, SIZE_MAX).memory;
        bytes = forward > filter ? forward : filter;
    } else {
        bytes = choose_algo(state, &d, PASS_BACKWARD_DATA, SIZE_MAX).memory;
    }
    descs_free(&d);
    return f32_elements(bytes);
}

static void *workspace_of(const ob_tensor *t, size_t *bytes) {
    *bytes = t ? ob_tensor_bytes(t) : 0;
    return t ? t->data : NULL;
}

/* y = conv(x, w) (+ bias) */
int ob_cuda_conv2d_forward(ob_ctx *ctx, const ob_conv2d_geom *g, const ob_tensor *x, const ob_tensor *w,
                           const ob_tensor *bias, ob_tensor *y, ob_tensor *saved) {
    ob_cuda_state *state;
    conv_descs d;
    if (conv_setup(ctx, "conv2d_forward", g, x, w, &state, &d)) return 1;
    size_t bytes;
    void *workspace = workspace_of(saved, &bytes);
    ranked_algo algo = choose_algo(state, &d, PASS_FORWARD, bytes);
    const float one = 1.0f, zero = 0.0f;
    cudnnStatus_t status =
        cudnnConvolutionForward(state->cudnn, &one, d.x, x->data, d.w, w->data, d.conv,
                                (cudnnConvolutionFwdAlgo_t)algo.algo, workspace, bytes, &zero, d.y, y->data);
    descs_free(&d);
    if (status != CUDNN_STATUS_SUCCESS) return cudnn_failed(ctx, pass_names[PASS_FORWARD], status);
    if (bias) {
        ob_cuda_require(bias, OB_F32, "conv2d_forward");
        cuda_k_add_bias_rows(g->batch * g->out_h * g->out_w, g->out_c, bias->data, y->data);
    }
    return 0;
}

/* dw += conv_filter_grad(x, dy);  dx += conv_data_grad(w, dy);  dbias += column sums of dy */
int ob_cuda_conv2d_backward(ob_ctx *ctx, const ob_conv2d_geom *g, const ob_tensor *x, const ob_tensor *w,
                            const ob_tensor *dy, ob_tensor *dx, ob_tensor *dw, ob_tensor *dbias,
                            const ob_tensor *saved, ob_tensor *scratch) {
    ob_cuda_require(dy, OB_F32, "conv2d_backward");
    ob_cuda_state *state;
    conv_descs d;
    if (conv_setup(ctx, "conv2d_backward", g, x, w, &state, &d)) return 1;
    const float one = 1.0f;
    cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
    conv_pass pass = PASS_BACKWARD_FILTER;
    size_t bytes;
    if (dw) {
        void *workspace = workspace_of(saved, &bytes);
        ranked_algo algo = choose_algo(state, &d, PASS_BACKWARD_FILTER, bytes);
        status = cudnnConvolutionBackwardFilter(state->cudnn, &one, d.x, x->data, d.y, dy->data, d.conv,
                                                (cudnnConvolutionBwdFilterAlgo_t)algo.algo, workspace, bytes,
                                                &one, d.w, dw->data);
    }
    if (dx && status == CUDNN_STATUS_SUCCESS) {
        pass = PASS_BACKWARD_DATA;
        void *workspace = workspace_of(scratch, &bytes);
        ranked_algo algo = choose_algo(state, &d, PASS_BACKWARD_DATA, bytes);
        status = cudnnConvolutionBackwardData(state->cudnn, &one, d.w, w->data, d.y, dy->data, d.conv,
                                              (cudnnConvolutionBwdDataAlgo_t)algo.algo, workspace, bytes, &one,
                                              d.x, dx->data);
    }
    descs_free(&d);
    if (status != CUDNN_STATUS_SUCCESS) return cudnn_failed(ctx, pass_names[pass], status);
    if (dbias) {
        ob_cuda_require(dbias, OB_F32, "conv2d_backward");
        cuda_k_column_sums_add(g->batch * g->out_h * g->out_w, g->out_c, dy->data, dbias->data);
    }
    return 0;
}
