/* Element-wise kernels and the fp64 reductions of the CUDA back end, for F32
 * tensors in device memory (the contract of each entry is in
 * nn/ob_backend.h). Scalars arrive as double and are rounded to float once,
 * as the CPU's float instantiation does. Everything runs on the legacy
 * default stream; only sumsq and dot wait, to hand their result back. */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>

/* ob_tensor_bytes is a C function; the nn headers carry no extern "C". */
extern "C" {
#include "nn/ob_tensor.h"
}
#include "nn/cuda/cuda_kernels.h"
#include "nn/cuda/cuda_launch.cuh"

namespace {

struct fill_op {
    float value;
    float *x;
    __device__ void operator()(int64_t i) const { x[i] = value; }
};
struct scale_op {
    float alpha;
    float *x;
    __device__ void operator()(int64_t i) const { x[i] *= alpha; }
};
/* y += alpha x */
struct axpy_op {
    float alpha;
    const float *x;
    float *y;
    __device__ void operator()(int64_t i) const { y[i] += alpha * x[i]; }
};
struct mul_op {
    const float *a, *b;
    float *y;
    __device__ void operator()(int64_t i) const { y[i] = a[i] * b[i]; }
};
struct add_op {
    const float *a, *b;
    float *y;
    __device__ void operator()(int64_t i) const { y[i] = a[i] + b[i]; }
};
/* y = max(x, 0); a NaN gives 0, as on the CPU */
struct relu_forward_op {
    const float *x;
    float *y;
    __device__ void operator()(int64_t i) const { y[i] = x[i] > 0 ? x[i] : 0.0f; }
};
/* dx += dy where y > 0 (y = relu(x) > 0 exactly where x > 0) */
struct relu_backward_op {
    const float *y, *dy;
    float *dx;
    __device__ void operator()(int64_t i) const { dx[i] += y[i] > 0 ? dy[i] : 0.0f; }
};

/* The fp64 reduction sum_i x[i] y[i] in two passes: each block
 * grid-strides over the input and tree-reduces its products into
 * partials[block], then one block adds the partials by the same tree. The
 * grid depends only on n, and no atomics are used, so a given input always
 * gives the same bits. Products are exact in double (24 + 24 bits). */

__global__ void dot_partials_kernel(int64_t n, const float *x, const float *y, double *partials) {
    double sum = 0.0;
    OB_CUDA_GRID_STRIDE(i, n) sum += (double)x[i] * y[i];
    sum = ob_cuda_block_reduce(sum, ob_cuda_sum());
    if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

__global__ void sum_partials_kernel(int count, const double *partials, double *total) {
    double sum = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    sum = ob_cuda_block_reduce(sum, ob_cuda_sum());
    if (threadIdx.x == 0) *total = sum;
}

/* The partials live in a stream-ordered allocation (the driver's pool keeps
 * it between calls), so the entry needs no workspace argument. A failed
 * allocation or copy returns NaN, which a caller's finiteness check stops
 * on, and leaves its error for the back end's next check. */
double device_dot(int64_t n, const float *x, const float *y) {
    if (n == 0) return 0.0;
    int blocks = ob_cuda_blocks(n);
    double *partials = NULL, total = NAN;
    if (cudaMallocAsync((void **)&partials, (size_t)(blocks + 1) * sizeof(double), 0) != cudaSuccess)
        return NAN;
    dot_partials_kernel<<<blocks, OB_CUDA_THREADS>>>(n, x, y, partials);
    sum_partials_kernel<<<1, OB_CUDA_THREADS>>>(blocks, partials, partials + blocks);
    if (cudaMemcpy(&total, partials + blocks, sizeof total, cudaMemcpyDeviceToHost) != cudaSuccess) total = NAN;
    cudaFreeAsync(partials, 0);
    return total;
}

} // namespace

void cuda_fill(ob_tensor *x, double value) { ob_cuda_map(x->numel, fill_op{(float)value, ob_f32(x)}); }

/* A plain device-to-device copy: any dtype, like the CPU's memcpy path. */
void cuda_copy(const ob_tensor *src, ob_tensor *dst) {
    if (src->data != dst->data && src->numel > 0)
        cudaMemcpyAsync(dst->data, src->data, ob_tensor_bytes(src), cudaMemcpyDeviceToDevice, 0);
}

void cuda_scale(double alpha, ob_tensor *x) { ob_cuda_map(x->numel, scale_op{(float)alpha, ob_f32(x)}); }

void cuda_axpy(double alpha, const ob_tensor *x, ob_tensor *y) {
    ob_cuda_map(x->numel, axpy_op{(float)alpha, ob_f32(x), ob_f32(y)});
}

double cuda_sumsq(const ob_tensor *x) { return device_dot(x->numel, ob_f32(x), ob_f32(x)); }

double cuda_dot(const ob_tensor *x, const ob_tensor *y) { return device_dot(x->numel, ob_f32(x), ob_f32(y)); }

void cuda_mul(const ob_tensor *a, const ob_tensor *b, ob_tensor *y) {
    ob_cuda_map(y->numel, mul_op{ob_f32(a), ob_f32(b), ob_f32(y)});
}

void cuda_relu_forward(const ob_tensor *x, ob_tensor *y) {
    ob_cuda_map(x->numel, relu_forward_op{ob_f32(x), ob_f32(y)});
}

void cuda_relu_backward(const ob_tensor *y, const ob_tensor *dy, ob_tensor *dx) {
    ob_cuda_map(y->numel, relu_backward_op{ob_f32(y), ob_f32(dy), ob_f32(dx)});
}

void cuda_add_forward(const ob_tensor *a, const ob_tensor *b, ob_tensor *y) {
    ob_cuda_map(a->numel, add_op{ob_f32(a), ob_f32(b), ob_f32(y)});
}
