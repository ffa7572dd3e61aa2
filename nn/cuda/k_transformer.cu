/* The transformer entries of the CUDA back end: row gathers, layer norm,
 * GELU and tanh, dropout, the masked softmax of attention and the heads
 * transpose, for F32 tensors in device memory (row indices and key masks
 * I32). Each follows its CPU kernel in nn/cpu/ (k_gather.c, k_layernorm.c,
 * k_activation.c, k_dropout.c, k_attention.c): the same formula in the same
 * precision, double where the CPU accumulates in double. Launches go to the
 * legacy default stream and nothing here waits. */
#include <math.h>
#include <stdint.h>

#include <cuda_runtime.h>

#include "nn/cuda/cuda_kernels.h"
#include "nn/cuda/cuda_launch.cuh"
#include "nn/ob_philox.h"

namespace {

#define SQRT_HALF 0.70710678118654752440f    /* 1 / sqrt(2) */
#define INV_SQRT_2PI 0.39894228040143267794f /* 1 / sqrt(2 pi) */

/* The width of a tensor viewed as [rows, last dim]. */
int64_t last_dim(const ob_tensor *t) { return t->shape[t->ndim - 1]; }

/* Row r of a dense [n_rows, width] tensor and row rows[r] of a table:
 * gather copies dense[r, :] = table[rows[r], :]; scatter adds
 * table[rows[r], :] += dense[r, :] by float atomics, so repeated rows add
 * up, but in whatever order the threads arrive: unlike the CPU (which adds
 * them in row order) a repeated id's sum can differ in its last bits
 * between runs. */
template <bool scatter>
struct table_rows_op {
    int64_t width;
    const int32_t *rows;
    float *table, *dense;
    __device__ void operator()(int64_t i) const {
        int64_t r = i / width;
        float *in_table = table + (int64_t)rows[r] * width + (i - r * width);
        if (scatter)
            atomicAdd(in_table, dense[i]);
        else
            dense[i] = *in_table;
    }
};

/* y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2 */
struct gelu_forward_op {
    const float *x;
    float *y;
    __device__ void operator()(int64_t i) const { y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * SQRT_HALF)); }
};

/* dx += dy (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi) */
struct gelu_backward_op {
    const float *x, *dy;
    float *dx;
    __device__ void operator()(int64_t i) const {
        float cdf = 0.5f * (1.0f + erff(x[i] * SQRT_HALF));
        float pdf = INV_SQRT_2PI * expf(-0.5f * x[i] * x[i]);
        dx[i] += dy[i] * (cdf + x[i] * pdf);
    }
};

struct tanh_forward_op {
    const float *x;
    float *y;
    __device__ void operator()(int64_t i) const { y[i] = tanhf(x[i]); }
};

/* dx += dy (1 - y^2) */
struct tanh_backward_op {
    const float *y, *dy;
    float *dx;
    __device__ void operator()(int64_t i) const { dx[i] += dy[i] * (1.0f - y[i] * y[i]); }
};

/* dst[o, j, i, :] = src[o, i, j, :] (+= when accumulate), src [outer, d1, d2,
 * inner]; indexed by dst so that the writes are contiguous. */
struct swap_middle_axes_op {
    int64_t d1, d2, inner;
    const float *src;
    float *dst;
    bool accumulate;
    __device__ void operator()(int64_t i) const {
        int64_t c = i % inner, rest = i / inner;
        int64_t a = rest % d1; /* index along d1 */
        rest /= d1;
        int64_t b = rest % d2, o = rest / d2;
        float from = src[((o * d1 + a) * d2 + b) * inner + c];
        dst[i] = (accumulate ? dst[i] : 0.0f) + from;
    }
};

/* Per row, one block: mean and biased variance summed in double (two
 * passes, as the CPU: no cancellation), invstd = 1/sqrt(var + eps),
 * y = gamma (x - mean) invstd + beta in float. */
__global__ void layernorm_forward_kernel(int64_t rows, int64_t width, const float *x, const float *gamma,
                                         const float *beta, double eps, float *y, float *mean, float *invstd) {
    OB_CUDA_ROW_STRIDE(row, rows) {
        const float *x_row = x + row * width;
        double sum = 0.0, centered_sq = 0.0;
        for (int64_t c = threadIdx.x; c < width; c += blockDim.x) sum += x_row[c];
        double row_mean = ob_cuda_block_reduce(sum, ob_cuda_sum()) / width;
        for (int64_t c = threadIdx.x; c < width; c += blockDim.x)
            centered_sq += (x_row[c] - row_mean) * (x_row[c] - row_mean);
        double row_invstd = 1.0 / sqrt(ob_cuda_block_reduce(centered_sq, ob_cuda_sum()) / width + eps);
        float m = (float)row_mean, s = (float)row_invstd;
        if (threadIdx.x == 0) {
            mean[row] = m;
            invstd[row] = s;
        }
        for (int64_t c = threadIdx.x; c < width; c += blockDim.x)
            y[row * width + c] = (x_row[c] - m) * s * gamma[c] + beta[c];
    }
}

/* Per row, one block, with x^ = (x - mean) invstd and g = dy gamma:
 * dx += invstd (g - mean(g) - x^ mean(g x^)), the means summed in double. */
__global__ void layernorm_input_grad_kernel(int64_t rows, int64_t width, const float *x, const float *gamma,
                                            const float *mean, const float *invstd, const float *dy,
                                            float *dx) {
    OB_CUDA_ROW_STRIDE(row, rows) {
        const float *x_row = x + row * width, *dy_row = dy + row * width;
        float m = mean[row], s = invstd[row];
        double sum_g = 0.0, sum_g_xhat = 0.0;
        for (int64_t c = threadIdx.x; c < width; c += blockDim.x) {
            double g = (double)dy_row[c] * gamma[c];
            sum_g += g;
            sum_g_xhat += g * (x_row[c] - m) * s;
        }
        float mean_g = (float)(ob_cuda_block_reduce(sum_g, ob_cuda_sum()) / width);
        float mean_g_xhat = (float)(ob_cuda_block_reduce(sum_g_xhat, ob_cuda_sum()) / width);
        for (int64_t c = threadIdx.x; c < width; c += blockDim.x) {
            float xhat = (x_row[c] - m) * s;
            dx[row * width + c] += s * (dy_row[c] * gamma[c] - mean_g - xhat * mean_g_xhat);
        }
    }
}

/* dgamma += sum_rows dy x^, dbeta += sum_rows dy (NULL skipped): column
 * sums, taken without float atomics or scratch memory. A block owns
 * LN_COLUMNS adjacent columns (threadIdx.x, coalesced across a warp); its
 * LN_ROW_GROUPS rows of threads (threadIdx.y) each sum every
 * LN_ROW_GROUPS-th row of their column in double, then row 0 adds the
 * groups in order. The order is fixed, so every call gives the same bits. */
#define LN_COLUMNS 32
#define LN_ROW_GROUPS 16

__global__ void layernorm_affine_grads_kernel(int64_t rows, int64_t width, const float *x, const float *mean,
                                              const float *invstd, const float *dy, float *dgamma,
                                              float *dbeta) {
    __shared__ double group_dy_xhat[LN_ROW_GROUPS][LN_COLUMNS], group_dy[LN_ROW_GROUPS][LN_COLUMNS];
    for (int64_t first = (int64_t)blockIdx.x * LN_COLUMNS; first < width;
         first += (int64_t)gridDim.x * LN_COLUMNS) {
        int64_t c = first + threadIdx.x;
        double sum_dy_xhat = 0.0, sum_dy = 0.0;
        if (c < width)
            for (int64_t r = threadIdx.y; r < rows; r += LN_ROW_GROUPS) {
                float d = dy[r * width + c];
                sum_dy_xhat += (double)d * ((x[r * width + c] - mean[r]) * invstd[r]);
                sum_dy += d;
            }
        group_dy_xhat[threadIdx.y][threadIdx.x] = sum_dy_xhat;
        group_dy[threadIdx.y][threadIdx.x] = sum_dy;
        __syncthreads();
        if (threadIdx.y == 0 && c < width) {
            for (int g = 1; g < LN_ROW_GROUPS; g++) {
                sum_dy_xhat += group_dy_xhat[g][threadIdx.x];
                sum_dy += group_dy[g][threadIdx.x];
            }
            if (dgamma) dgamma[c] += (float)sum_dy_xhat;
            if (dbeta) dbeta[c] += (float)sum_dy;
        }
        __syncthreads(); /* the next column block reuses the groups */
    }
}

/* One thread per Philox block of the stream: block b holds words 4b..4b+3,
 * and word first_word + i decides element i (kept when >= threshold), the
 * CPU's rule in nn/cpu/k_dropout.c with the same ob_philox_block. */
__global__ void dropout_kernel(ob_rng_stream stream, uint64_t first_word, int64_t philox_blocks, int64_t n,
                               uint32_t threshold, float scale, const float *x, float *y, bool accumulate) {
    OB_CUDA_GRID_STRIDE(t, philox_blocks) {
        uint64_t block = first_word / 4 + (uint64_t)t;
        uint32_t words[4];
        ob_philox_block(&stream, block, words);
        for (int w = 0; w < 4; w++) {
            uint64_t k = 4 * block + (uint64_t)w;
            if (k < first_word || k - first_word >= (uint64_t)n) continue;
            int64_t i = (int64_t)(k - first_word);
            float kept = words[w] >= threshold ? x[i] * scale : 0.0f;
            y[i] = (accumulate ? y[i] : 0.0f) + kept;
        }
    }
}

/* Per row of scores, one block: p_j = exp(s_j - max) / sum_k exp(s_k - max)
 * over the keys the mask leaves, 0 for a masked key; a row with no key left
 * sums to 0 and stays all 0. fp32 throughout, as the CPU's float kernel. */
__global__ void masked_softmax_forward_kernel(int64_t rows, int64_t rows_per_batch, int64_t keys,
                                              const float *scores, const int32_t *key_mask, float *probs) {
    OB_CUDA_ROW_STRIDE(row, rows) {
        const int32_t *mask = key_mask + row / rows_per_batch * keys;
        const float *s = scores + row * keys;
        float *p = probs + row * keys;
        float max = -INFINITY, sum = 0.0f;
        for (int64_t j = threadIdx.x; j < keys; j += blockDim.x)
            if (mask[j]) max = fmaxf(max, s[j]);
        max = ob_cuda_block_reduce(max, ob_cuda_max());
        for (int64_t j = threadIdx.x; j < keys; j += blockDim.x) {
            p[j] = mask[j] ? expf(s[j] - max) : 0.0f;
            sum += p[j];
        }
        sum = ob_cuda_block_reduce(sum, ob_cuda_sum());
        float inverse = sum > 0 ? 1.0f / sum : 0.0f;
        for (int64_t j = threadIdx.x; j < keys; j += blockDim.x) p[j] *= inverse;
    }
}

/* Per row, one block: ds_j += p_j (dp_j - sum_k p_k dp_k). */
__global__ void masked_softmax_backward_kernel(int64_t rows, int64_t keys, const float *probs,
                                               const float *dprobs, float *dscores) {
    OB_CUDA_ROW_STRIDE(row, rows) {
        const float *p = probs + row * keys, *dp = dprobs + row * keys;
        float dot = 0.0f;
        for (int64_t j = threadIdx.x; j < keys; j += blockDim.x) dot += p[j] * dp[j];
        dot = ob_cuda_block_reduce(dot, ob_cuda_sum());
        for (int64_t j = threadIdx.x; j < keys; j += blockDim.x) dscores[row * keys + j] += p[j] * (dp[j] - dot);
    }
}

} // namespace

void cuda_gather_rows(const ob_tensor *src, const ob_tensor *rows, ob_tensor *y) {
    int64_t width = last_dim(src);
    ob_cuda_map(rows->numel * width,
                table_rows_op<false>{width, (const int32_t *)rows->data, ob_f32(src), ob_f32(y)});
}

void cuda_scatter_add_rows(const ob_tensor *dy, const ob_tensor *rows, ob_tensor *dsrc) {
    int64_t width = last_dim(dsrc);
    ob_cuda_map(rows->numel * width,
                table_rows_op<true>{width, (const int32_t *)rows->data, ob_f32(dsrc), ob_f32(dy)});
}

void cuda_layernorm_forward(const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *beta, double eps,
                            ob_tensor *y, ob_tensor *mean, ob_tensor *invstd) {
    if (x->numel == 0) return;
    int64_t width = last_dim(x), rows = x->numel / width;
    layernorm_forward_kernel<<<ob_cuda_capped_blocks(rows), OB_CUDA_THREADS>>>(
        rows, width, ob_f32(x), ob_f32(gamma), ob_f32(beta), eps, ob_f32(y), ob_f32(mean), ob_f32(invstd));
}

void cuda_layernorm_backward(const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *mean,
                             const ob_tensor *invstd, const ob_tensor *dy, ob_tensor *dx, ob_tensor *dgamma,
                             ob_tensor *dbeta) {
    if (x->numel == 0) return;
    int64_t width = last_dim(x), rows = x->numel / width;
    if (dx)
        layernorm_input_grad_kernel<<<ob_cuda_capped_blocks(rows), OB_CUDA_THREADS>>>(
            rows, width, ob_f32(x), ob_f32(gamma), ob_f32(mean), ob_f32(invstd), ob_f32(dy), ob_f32(dx));
    if (dgamma || dbeta)
        layernorm_affine_grads_kernel<<<ob_cuda_capped_blocks((width + LN_COLUMNS - 1) / LN_COLUMNS),
                                        dim3(LN_COLUMNS, LN_ROW_GROUPS)>>>(
            rows, width, ob_f32(x), ob_f32(mean), ob_f32(invstd), ob_f32(dy), dgamma ? ob_f32(dgamma) : NULL,
            dbeta ? ob_f32(dbeta) : NULL);
}

void cuda_gelu_forward(const ob_tensor *x, ob_tensor *y) {
    ob_cuda_map(x->numel, gelu_forward_op{ob_f32(x), ob_f32(y)});
}

void cuda_gelu_backward(const ob_tensor *x, const ob_tensor *dy, ob_tensor *dx) {
    ob_cuda_map(x->numel, gelu_backward_op{ob_f32(x), ob_f32(dy), ob_f32(dx)});
}

void cuda_tanh_forward(const ob_tensor *x, ob_tensor *y) {
    ob_cuda_map(x->numel, tanh_forward_op{ob_f32(x), ob_f32(y)});
}

void cuda_tanh_backward(const ob_tensor *y, const ob_tensor *dy, ob_tensor *dx) {
    ob_cuda_map(y->numel, tanh_backward_op{ob_f32(y), ob_f32(dy), ob_f32(dx)});
}

/* The scale is the CPU's: 1 / (1 - p) in double, rounded to float. */
void cuda_dropout(const ob_rng_stream *stream, uint64_t first_word, double p, const ob_tensor *x, ob_tensor *y,
                  bool accumulate) {
    int64_t n = x->numel;
    if (n == 0) return;
    int64_t philox_blocks = (int64_t)((first_word + (uint64_t)n - 1) / 4 - first_word / 4) + 1;
    dropout_kernel<<<ob_cuda_blocks(philox_blocks), OB_CUDA_THREADS>>>(*stream, first_word, philox_blocks, n,
                                                                       ob_philox_threshold(p),
                                                                       (float)(1.0 / (1.0 - p)), ob_f32(x),
                                                                       ob_f32(y), accumulate);
}

/* scores [batch, ..., keys], key_mask [batch, keys] */
void cuda_masked_softmax_forward(const ob_tensor *scores, const ob_tensor *key_mask, ob_tensor *probs) {
    if (scores->numel == 0) return;
    int64_t batch = scores->shape[0], keys = last_dim(scores), rows = scores->numel / keys;
    masked_softmax_forward_kernel<<<ob_cuda_capped_blocks(rows), OB_CUDA_THREADS>>>(
        rows, rows / batch, keys, ob_f32(scores), (const int32_t *)key_mask->data, ob_f32(probs));
}

void cuda_masked_softmax_backward(const ob_tensor *probs, const ob_tensor *dprobs, ob_tensor *dscores) {
    if (probs->numel == 0) return;
    int64_t keys = last_dim(probs), rows = probs->numel / keys;
    masked_softmax_backward_kernel<<<ob_cuda_capped_blocks(rows), OB_CUDA_THREADS>>>(rows, keys, ob_f32(probs),
                                                                                 ob_f32(dprobs), ob_f32(dscores));
}

void cuda_swap_middle_axes(int64_t outer, int64_t d1, int64_t d2, int64_t inner, const ob_tensor *src,
                           ob_tensor *dst, bool accumulate) {
    ob_cuda_map(outer * d1 * d2 * inner, swap_middle_axes_op{d1, d2, inner, ob_f32(src), ob_f32(dst), accumulate});
}
