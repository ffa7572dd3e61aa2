/* Bias broadcast and bias gradient, for linear layers (after cuBLAS's GEMM)
 * and convolutions (after cuDNN's): both see their output as [rows, width]. */
#include <stdint.h>

extern "C" {
#include "nn/ob_backend.h"
}
#include "nn/cuda/cuda_backend_kernels.h"
#include "nn/cuda/cuda_launch.cuh"

namespace {

/* y[r, c] += bias[c] */
struct add_bias_op {
    int64_t width;
    const float *bias;
    float *y;
    __device__ void operator()(int64_t i) const { y[i] += bias[i % width]; }
};

/* sums[c] += sum_r m[r, c]: one block per column (columns grid-strided), its
 * threads striding over rows and summing in double, as the CPU does. */
__global__ void column_sums_add_kernel(int64_t rows, int64_t width, const float *m, float *sums) {
    OB_CUDA_ROW_STRIDE(c, width) {
        double part = 0.0;
        for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) part += m[r * width + c];
        double total = ob_cuda_block_reduce(part, ob_cuda_sum{});
        if (threadIdx.x == 0) sums[c] += (float)total;
    }
}

} // namespace

extern "C" void cuda_k_add_bias_rows(int64_t rows, int64_t width, const float *bias, float *y) {
    ob_cuda_map(rows * width, add_bias_op{width, bias, y});
}

extern "C" void cuda_k_column_sums_add(int64_t rows, int64_t width, const float *m, float *sums) {
    if (width > 0)
        column_sums_add_kernel<<<ob_cuda_capped_blocks(width), OB_CUDA_THREADS>>>(rows, width, m, sums);
}
