/* K-FAC's small matrix loops around cuBLAS and cuSOLVER (square matrices
 * row-major [n, n]): triangle mirror, in-place transpose, column blocks,
 * diagonal shift and the eigenvalue outer product (nn/cpu/k_linalg.c). */
#include <stdint.h>

extern "C" {
#include "nn/ob_backend.h"
}
#include "nn/cuda/cuda_backend_kernels.h"
#include "nn/cuda/cuda_launch.cuh"

namespace {

/* Element i = (r, c) of the strictly lower triangle with c < r: the lower
 * takes the upper's value, or the two swap. */
struct lower_from_upper_op {
    int64_t n;
    float *a;
    bool swap;
    __device__ void operator()(int64_t i) const {
        int64_t r = i / n, c = i % n;
        if (c >= r) return;
        float upper = a[c * n + r];
        if (swap) a[c * n + r] = a[r * n + c];
        a[r * n + c] = upper;
    }
};

/* dst[r, dst_col + c] = src[r, src_col + c] */
struct copy_columns_op {
    int64_t cols;
    const float *src;
    int64_t src_ld, src_col;
    float *dst;
    int64_t dst_ld, dst_col;
    __device__ void operator()(int64_t i) const {
        int64_t r = i / cols, c = i % cols;
        dst[r * dst_ld + dst_col + c] = src[r * src_ld + src_col + c];
    }
};

struct add_diagonal_op {
    int64_t n;
    float value;
    float *a;
    __device__ void operator()(int64_t i) const { a[i * n + i] += value; }
};

/* out[i, j] = 1 / (u[i] v[j] + shift) */
struct outer_inverse_op {
    int64_t cols;
    const float *u, *v;
    float shift;
    float *out;
    __device__ void operator()(int64_t i) const { out[i] = 1 / (u[i / cols] * v[i % cols] + shift); }
};

} // namespace

extern "C" void cuda_k_mirror_upper(int64_t n, float *a) { ob_cuda_map(n * n, lower_from_upper_op{n, a, false}); }

extern "C" void cuda_k_transpose_square(int64_t n, float *a) {
    ob_cuda_map(n * n, lower_from_upper_op{n, a, true});
}

extern "C" void cuda_k_copy_columns(int64_t rows, int64_t cols, const float *src, int64_t src_ld, int64_t src_col,
                                    float *dst, int64_t dst_ld, int64_t dst_col) {
    ob_cuda_map(rows * cols, copy_columns_op{cols, src, src_ld, src_col, dst, dst_ld, dst_col});
}

extern "C" void cuda_k_add_diagonal(int64_t n, double value, float *a) {
    ob_cuda_map(n, add_diagonal_op{n, (float)value, a});
}

extern "C" void cuda_k_outer_inverse(int64_t rows, int64_t cols, const float *u, const float *v, double shift,
                                     float *out) {
    ob_cuda_map(rows * cols, outer_inverse_op{cols, u, v, (float)shift, out});
}
