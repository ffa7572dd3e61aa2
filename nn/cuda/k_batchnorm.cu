/* Batch-norm over an [rows, channels] view (NHWC flattened), one block per
 * channel: its threads stride over the channel's rows and sum in double,
 * then reduce in a fixed tree (cuda_launch.cuh). The formulas and the
 * choice of shift are those of nn/cpu/k_batchnorm.c; see there for why.
 *
 * Statistics and their use are separate kernels with the per-channel sums
 * in a device `stats` buffer between them, so that synchronized batch-norm
 * can add them over ranks on the host in between (backend_cuda.c).
 * A block reads a strided column (one float per row): simple and exact,
 * not fast; a tiled two-pass reduction over 32-channel slabs is the faster
 * layout, left for when a GPU can measure it. */
#include <math.h>
#include <stdint.h>

extern "C" {
#include "nn/ob_backend.h"
}
#include "nn/cuda/cuda_backend_kernels.h"
#include "nn/cuda/cuda_launch.cuh"

namespace {

/* The four per-channel slots of `stats` ([4][channels]). */
struct bn_stats {
    double *sum, *sum_sq, *shift, *rows;
    __device__ bn_stats(double *stats, int64_t channels)
        : sum(stats), sum_sq(stats + channels), shift(stats + 2 * channels), rows(stats + 3 * channels) {}
};

/* Over channel c's rows: sum (a - a0) and sum (a - a0)(b - b0), in double. */
__device__ void centered_sums(int64_t rows, int64_t channels, int64_t c, const float *a, double a0,
                              const float *b, double b0, double *sum, double *sum_cross) {
    double part = 0.0, part_cross = 0.0;
    for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
        double da = (double)a[r * channels + c] - a0;
        part += da;
        part_cross += da * ((double)b[r * channels + c] - b0);
    }
    double total = ob_cuda_block_reduce(part, ob_cuda_sum{});
    double total_cross = ob_cuda_block_reduce(part_cross, ob_cuda_sum{});
    if (threadIdx.x == 0) {
        *sum = total;
        *sum_cross = total_cross;
    }
}

__global__ void bn_train_stats_kernel(int64_t rows, int64_t channels, const float *x, const float *running_mean,
                                      bool shift_by_running, double *stats_buffer) {
    bn_stats stats(stats_buffer, channels);
    OB_CUDA_ROW_STRIDE(c, channels) {
        double shift = !shift_by_running ? x[c] : running_mean ? running_mean[c] : 0.0;
        centered_sums(rows, channels, c, x, shift, x, shift, &stats.sum[c], &stats.sum_sq[c]);
        if (threadIdx.x == 0) {
            stats.shift[c] = shift;
            stats.rows[c] = (double)rows;
        }
    }
}

/* mean = shift + E[x - shift], var = E[(x - shift)^2] - E[x - shift]^2 (biased),
 * invstd = 1/sqrt(var + eps); y = (x - mean) gamma invstd + beta, with mean
 * and gamma invstd rounded to float first, as the CPU does; the running
 * statistics move by momentum, running_var with var * n / (n - 1). */
__global__ void bn_train_apply_kernel(int64_t rows, int64_t channels, const float *x, const float *gamma,
                                      const float *beta, const double *stats_buffer, float *y, float *save_mean,
                                      float *save_invstd, float *running_mean, float *running_var,
                                      double momentum, double eps) {
    __shared__ float center, scale;
    bn_stats stats((double *)stats_buffer, channels);
    OB_CUDA_ROW_STRIDE(c, channels) {
        if (threadIdx.x == 0) {
            double n = stats.rows[c], shifted_mean = stats.sum[c] / n;
            double var = fmax(stats.sum_sq[c] / n - shifted_mean * shifted_mean, 0.0);
            double mean = stats.shift[c] + shifted_mean, invstd = 1.0 / sqrt(var + eps);
            save_mean[c] = (float)mean;
            save_invstd[c] = (float)invstd;
            center = (float)mean;
            scale = (float)(gamma[c] * invstd);
            if (running_mean) running_mean[c] = (float)((1 - momentum) * running_mean[c] + momentum * mean);
            if (running_var)
                running_var[c] = (float)((1 - momentum) * running_var[c] + momentum * var * n / (n - 1));
        }
        __syncthreads();
        for (int64_t r = threadIdx.x; r < rows; r += blockDim.x)
            y[r * channels + c] = (x[r * channels + c] - center) * scale + beta[c];
        __syncthreads(); /* center and scale are rewritten for the next channel */
    }
}

/* y = (x - running_mean) gamma / sqrt(running_var + eps) + beta */
struct bn_eval_op {
    int64_t channels;
    const float *x, *gamma, *beta, *running_mean, *running_var;
    double eps;
    float *y;
    __device__ void operator()(int64_t i) const {
        int64_t c = i % channels;
        float scale = (float)(gamma[c] / sqrt((double)running_var[c] + eps));
        y[i] = (x[i] - running_mean[c]) * scale + beta[c];
    }
};

__global__ void bn_backward_stats_kernel(int64_t rows, int64_t channels, const float *x, const float *dy,
                                         const float *save_mean, double *stats_buffer) {
    bn_stats stats(stats_buffer, channels);
    OB_CUDA_ROW_STRIDE(c, channels) {
        centered_sums(rows, channels, c, dy, 0.0, x, save_mean[c], &stats.sum[c], &stats.sum_sq[c]);
        if (threadIdx.x == 0) stats.rows[c] = (double)rows;
    }
}

/* dbeta += sum dy, dgamma += invstd sum dy (x - mean) */
struct bn_backward_params_op {
    int64_t channels;
    const double *stats;
    const float *save_invstd;
    float *dgamma, *dbeta;
    __device__ void operator()(int64_t c) const {
        if (dbeta) dbeta[c] += (float)stats[c];
        if (dgamma) dgamma[c] += (float)(stats[channels + c] * save_invstd[c]);
    }
};

/* dx += scale (dy - mean_dy) - x_coef (x - mean) with scale = gamma invstd,
 * mean_dy = sum dy / n, x_coef = gamma invstd^2 (invstd sum dy (x - mean)) / n */
__global__ void bn_backward_input_kernel(int64_t rows, int64_t channels, const float *x, const float *dy,
                                         const float *gamma, const float *save_mean, const float *save_invstd,
                                         const double *stats_buffer, float *dx) {
    __shared__ float scale, mean_dy, x_coef;
    bn_stats stats((double *)stats_buffer, channels);
    OB_CUDA_ROW_STRIDE(c, channels) {
        if (threadIdx.x == 0) {
            double n = stats.rows[c], invstd = save_invstd[c];
            double sum_dy_xhat = stats.sum_sq[c] * invstd;
            scale = (float)(gamma[c] * invstd);
            mean_dy = (float)(stats.sum[c] / n);
            x_coef = (float)(gamma[c] * invstd * invstd * sum_dy_xhat / n);
        }
        __syncthreads();
        float mean = save_mean[c];
        for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
            int64_t i = r * channels + c;
            dx[i] += scale * (dy[i] - mean_dy) - x_coef * (x[i] - mean);
        }
        __syncthreads();
    }
}

int channel_blocks(int64_t channels) { return ob_cuda_capped_blocks(channels); }

} // namespace

extern "C" void cuda_k_bn_train_stats(int64_t rows, int64_t channels, const float *x, const float *running_mean,
                                      bool shift_by_running, double *stats) {
    if (channels > 0)
        bn_train_stats_kernel<<<channel_blocks(channels), OB_CUDA_THREADS>>>(rows, channels, x, running_mean,
                                                                             shift_by_running, stats);
}

extern "C" void cuda_k_bn_train_apply(int64_t rows, int64_t channels, const float *x, const float *gamma,
                                      const float *beta, const double *stats, float *y, float *save_mean,
                                      float *save_invstd, float *running_mean, float *running_var,
                                      double momentum, double eps) {
    if (channels > 0)
        bn_train_apply_kernel<<<channel_blocks(channels), OB_CUDA_THREADS>>>(
            rows, channels, x, gamma, beta, stats, y, save_mean, save_invstd, running_mean, running_var, momentum,
            eps);
}

extern "C" void cuda_k_bn_eval(int64_t rows, int64_t channels, const float *x, const float *gamma,
                               const float *beta, const float *running_mean, const float *running_var, double eps,
                               float *y) {
    ob_cuda_map(rows * channels, bn_eval_op{channels, x, gamma, beta, running_mean, running_var, eps, y});
}

extern "C" void cuda_k_bn_backward_stats(int64_t rows, int64_t channels, const float *x, const float *dy,
                                         const float *save_mean, double *stats) {
    if (channels > 0)
        bn_backward_stats_kernel<<<channel_blocks(channels), OB_CUDA_THREADS>>>(rows, channels, x, dy, save_mean,
                                                                                stats);
}

extern "C" void cuda_k_bn_backward_params(int64_t channels, const double *stats, const float *save_invstd,
                                          float *dgamma, float *dbeta) {
    if (dgamma || dbeta)
        ob_cuda_map(channels, bn_backward_params_op{channels, stats, save_invstd, dgamma, dbeta});
}

extern "C" void cuda_k_bn_backward_input(int64_t rows, int64_t channels, const float *x, const float *dy,
                                         const float *gamma, const float *save_mean, const float *save_invstd,
                                         const double *stats, float *dx) {
    if (channels > 0)
        bn_backward_input_kernel<<<channel_blocks(channels), OB_CUDA_THREADS>>>(
            rows, channels, x, dy, gamma, save_mean, save_invstd, stats, dx);
}
