/* Launch shapes and block reductions shared by the CUDA kernels (nn/cuda/k_*.cu).
 *
 * Element-wise kernels are grid-stride loops over int64 indices, so one
 * launch shape serves every size. Row kernels run one block per row (rows
 * grid-strided too) and reduce with a shared-memory tree whose order is
 * fixed by the block size alone: the same input gives the same bits on
 * every call and every GPU.
 *
 * Launches are not checked one by one: the entries return void, and
 * cudaGetLastError here would clear an error before the back end saw it.
 * The shapes below are valid for any size (the grid is capped, empty
 * tensors launch nothing: a zero grid is itself a launch error), so what
 * can fail is a kernel's execution, which is sticky and surfaces at the
 * back end's next checked synchronising call. */
#ifndef OB_CUDA_LAUNCH_CUH
#define OB_CUDA_LAUNCH_CUH

#include <stdint.h>

/* Threads per block; a power of two (the reduction tree halves it). */
#define OB_CUDA_THREADS 256
/* Grid cap of the grid-stride kernels: enough blocks to fill an H100/H200
 * several times over, few enough that tiny tails do not dominate. */
#define OB_CUDA_MAX_BLOCKS 8192

/* At most OB_CUDA_MAX_BLOCKS of `blocks`: kernels that stride over rows or
 * column blocks, one block each, take the rest in later strides. */
static inline int ob_cuda_capped_blocks(int64_t blocks) {
    return (int)(blocks < OB_CUDA_MAX_BLOCKS ? blocks : OB_CUDA_MAX_BLOCKS);
}

/* Blocks of OB_CUDA_THREADS for a grid-stride loop over work_items. */
static inline int ob_cuda_blocks(int64_t work_items) {
    return ob_cuda_capped_blocks((work_items + OB_CUDA_THREADS - 1) / OB_CUDA_THREADS);
}

/* i over [0, n) split across the whole grid. */
#define OB_CUDA_GRID_STRIDE(i, n)                                                           \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);               \
         i += (int64_t)blockDim.x * gridDim.x)

/* row over [0, rows), one block each; every thread of a block sees the same rows. */
#define OB_CUDA_ROW_STRIDE(row, rows) for (int64_t row = blockIdx.x; row < (rows); row += gridDim.x)

/* op(i) for every i < n: element-wise kernels are a functor with
 * `__device__ void operator()(int64_t i) const` holding its pointers. */
template <class Op>
__global__ void ob_cuda_map_kernel(int64_t n, Op op) {
    OB_CUDA_GRID_STRIDE(i, n) op(i);
}
template <class Op>
static void ob_cuda_map(int64_t n, Op op) {
    if (n > 0) ob_cuda_map_kernel<<<ob_cuda_blocks(n), OB_CUDA_THREADS>>>(n, op);
}

struct ob_cuda_sum {
    template <typename T>
    __device__ T operator()(T a, T b) const { return a + b; }
};
/* fmaxf drops a NaN operand, as the CPU's `s > max` comparison skips one. */
struct ob_cuda_max {
    __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

/* Combines every thread's value of the block (blockDim.x == OB_CUDA_THREADS)
 * by a fixed tree and returns the result to all of them. Every thread of
 * the block must call it; it may be called again right away. */
template <typename T, class Combine>
__device__ T ob_cuda_block_reduce(T value, Combine combine) {
    __shared__ T partial[OB_CUDA_THREADS];
    partial[threadIdx.x] = value;
    __syncthreads();
    for (unsigned half = OB_CUDA_THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) partial[threadIdx.x] = combine(partial[threadIdx.x], partial[threadIdx.x + half]);
        __syncthreads();
    }
    T total = partial[0];
    __syncthreads(); /* the next call's writes must wait for every read of partial[0] */
    return total;
}

#endif
