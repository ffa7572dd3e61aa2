/* Batch-norm kernels over an [rows, channels] view (NHWC flattened, so a
 * channel is a column and a row is one pixel of one image).
 *
 * Memory-bound: each kernel makes one pass over its inputs for the
 * per-channel sums and one pass for the output. Rows are split statically
 * over threads; each thread sums its rows in double into a private partial,
 * and the partials are added in thread-number order, so results are
 * bit-identical from run to run at a fixed thread count. Both passes split
 * rows the same way, so a thread re-reads rows it has just summed, from its
 * own cache when they fit.
 *
 * Channels are processed in blocks of BN_BLOCK so that the per-thread
 * partials and per-channel coefficients fit on the stack (kernels never
 * allocate); the widest layer of the workstation network (512) is one block.
 *
 * Synchronized batch-norm passes a reduction: each block's per-channel sums
 * and its row count are added over ranks before they are used, so every
 * rank normalises with the statistics of all ranks' rows. The forward sums
 * are then taken about the running mean, which every rank holds alike
 * (synchronized statistics keep it identical), instead of the local first
 * row, so that the ranks' partial sums share one origin.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "nn/cpu/real.h"
#include "nn/cpu/kernels.h"

#define BN_BLOCK OB_BATCHNORM_REDUCE_CHANNELS

static int64_t block_width(int64_t channels, int64_t first) {
    return channels - first < BN_BLOCK ? channels - first : BN_BLOCK;
}

/* total += part, each thread adding its own partial in thread-number order.
 * Called inside a parallel region: with schedule(static, 1) over one
 * iteration per thread, iteration t runs on thread t. */
static void add_in_thread_order(int64_t n, const double *part, double *total) {
    int threads = omp_get_num_threads();
#pragma omp for ordered schedule(static, 1)
    for (int t = 0; t < threads; t++) {
#pragma omp ordered
        for (int64_t i = 0; i < n; i++) total[i] += part[i];
    }
}

/* Over the rows of a block of `width` channels (row stride `stride`):
 *   sums[c]            = sum_r (a[r,c] - a0[c])
 *   sums[BN_BLOCK + c] = sum_r (a[r,c] - a0[c]) (b[r,c] - b0[c])
 * Forward statistics take a = b = x, backward ones a = dy, b = x. */
static void centered_sums(int64_t rows, int64_t stride, int64_t width, const ob_real *a, const double *a0,
                          const ob_real *b, const double *b0, double *sums) {
    memset(sums, 0, 2 * BN_BLOCK * sizeof *sums);
#pragma omp parallel
    {
        double part[2 * BN_BLOCK] = {0};
#pragma omp for schedule(static) nowait
        for (int64_t r = 0; r < rows; r++) {
            const ob_real *a_row = a + r * stride, *b_row = b + r * stride;
#pragma omp simd
            for (int64_t c = 0; c < width; c++) {
                double da = (double)a_row[c] - a0[c];
                part[c] += da;
                part[BN_BLOCK + c] += da * ((double)b_row[c] - b0[c]);
            }
        }
        add_in_thread_order(2 * BN_BLOCK, part, sums);
    }
}

/* Adds the first `width` entries of both halves of `sums` and the row count
 * over ranks (one reduction of 2 width + 1 values); *rows becomes the total. */
static int reduce_sums(const ob_batchnorm_reduce *reduce, int64_t width, double *sums, double *rows) {
    double packed[2 * BN_BLOCK + 1];
    memcpy(packed, sums, (size_t)width * sizeof *packed);
    memcpy(packed + width, sums + BN_BLOCK, (size_t)width * sizeof *packed);
    packed[2 * width] = *rows;
    if (reduce->sum(packed, 2 * width + 1, reduce->user)) return 1;
    memcpy(sums, packed, (size_t)width * sizeof *packed);
    memcpy(sums + BN_BLOCK, packed + width, (size_t)width * sizeof *packed);
    *rows = packed[2 * width];
    return 0;
}

/* y = (x - center) * scale + beta, per channel of a block. */
static void affine_rows(int64_t rows, int64_t stride, int64_t width, const ob_real *x, const ob_real *center,
                        const ob_real *scale, const ob_real *beta, ob_real *y) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
#pragma omp simd
        for (int64_t c = 0; c < width; c++)
            y[r * stride + c] = (x[r * stride + c] - center[c]) * scale[c] + beta[c];
}

/* Train: mean = E[x], var = E[x^2] - E[x]^2 (biased), invstd = 1/sqrt(var + eps),
 *   y = gamma (x - mean) invstd + beta;
 *   running = (1 - momentum) running + momentum batch, with the unbiased
 *   variance var * rows / (rows - 1) for running_var (rows >= 2).
 * The sums are taken about each channel's first-row value, so E[d^2] - E[d]^2
 * stays accurate when |mean| is large against the spread. */
int OB_FN(k_batchnorm_forward_train)(int64_t rows, int64_t channels, const ob_real *x, const ob_real *gamma,
                                     const ob_real *beta, ob_real *y, ob_real *save_mean,
                                     ob_real *save_invstd, ob_real *running_mean, ob_real *running_var,
                                     double momentum, double eps, const ob_batchnorm_reduce *reduce) {
    for (int64_t first = 0; first < channels; first += BN_BLOCK) {
        int64_t width = block_width(channels, first);
        double shift[BN_BLOCK], sums[2 * BN_BLOCK], total_rows = (double)rows;
        ob_real scale[BN_BLOCK];
        for (int64_t c = 0; c < width; c++)
            shift[c] = !reduce ? x[first + c] : running_mean ? running_mean[first + c] : 0.0;
        centered_sums(rows, channels, width, x + first, shift, x + first, shift, sums);
        if (reduce && reduce_sums(reduce, width, sums, &total_rows)) return 1;
        for (int64_t c = 0; c < width; c++) {
            int64_t channel = first + c;
            double shifted_mean = sums[c] / total_rows;
            double var = fmax(sums[BN_BLOCK + c] / total_rows - shifted_mean * shifted_mean, 0.0);
            double mean = shift[c] + shifted_mean, invstd = 1.0 / sqrt(var + eps);
            save_mean[channel] = (ob_real)mean;
            save_invstd[channel] = (ob_real)invstd;
            scale[c] = (ob_real)(gamma[channel] * invstd);
            if (running_mean)
                running_mean[channel] = (ob_real)((1 - momentum) * running_mean[channel] + momentum * mean);
            if (running_var)
                running_var[channel] = (ob_real)((1 - momentum) * running_var[channel] +
                                                 momentum * var * total_rows / (total_rows - 1));
        }
        affine_rows(rows, channels, width, x + first, save_mean + first, scale, beta + first, y + first);
    }
    return 0;
}

/* Eval: y = gamma (x - running_mean) / sqrt(running_var + eps) + beta */
void OB_FN(k_batchnorm_forward_eval)(int64_t rows, int64_t channels, const ob_real *x, const ob_real *gamma,
                                     const ob_real *beta, const ob_real *running_mean,
                                     const ob_real *running_var, double eps, ob_real *y) {
    for (int64_t first = 0; first < channels; first += BN_BLOCK) {
        int64_t width = block_width(channels, first);
        ob_real scale[BN_BLOCK];
        for (int64_t c = 0; c < width; c++)
            scale[c] = (ob_real)(gamma[first + c] / sqrt((double)running_var[first + c] + eps));
        affine_rows(rows, channels, width, x + first, running_mean + first, scale, beta + first, y + first);
    }
}

/* dx += scale (dy - mean_dy) - x_coef (x - mean), per channel of a block. */
static void input_grad_rows(int64_t rows, int64_t stride, int64_t width, const ob_real *x, const ob_real *dy,
                            const ob_real *mean, const ob_real *scale, const ob_real *mean_dy,
                            const ob_real *x_coef, ob_real *dx) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
#pragma omp simd
        for (int64_t c = 0; c < width; c++) {
            int64_t i = r * stride + c;
            dx[i] += scale[c] * (dy[i] - mean_dy[c]) - x_coef[c] * (x[i] - mean[c]);
        }
}

/* With x^ = (x - mean) invstd (the forward's saved statistics):
 *   dbeta += sum dy,  dgamma += sum dy x^,
 *   dx += gamma invstd / rows (rows dy - sum dy - x^ sum dy x^)
 *       = scale (dy - mean_dy) - x_coef (x - mean),
 *   scale = gamma invstd, mean_dy = sum dy / rows, x_coef = scale invstd (sum dy x^) / rows.
 * Centring x on the saved mean (not expanding x^) keeps float accuracy. */
int OB_FN(k_batchnorm_backward)(int64_t rows, int64_t channels, const ob_real *x, const ob_real *gamma,
                                const ob_real *save_mean, const ob_real *save_invstd, const ob_real *dy,
                                ob_real *dx, ob_real *dgamma, ob_real *dbeta, const ob_batchnorm_reduce *reduce) {
    for (int64_t first = 0; first < channels; first += BN_BLOCK) {
        int64_t width = block_width(channels, first);
        double no_shift[BN_BLOCK] = {0}, mean[BN_BLOCK], sums[2 * BN_BLOCK], total_rows = (double)rows;
        ob_real scale[BN_BLOCK], mean_dy[BN_BLOCK], x_coef[BN_BLOCK];
        for (int64_t c = 0; c < width; c++) mean[c] = save_mean[first + c];
        centered_sums(rows, channels, width, dy + first, no_shift, x + first, mean, sums);
        /* gamma and beta take this rank's sums (the gradient all-reduce
         * averages them over ranks, as for any parameter); dx needs the sums
         * over every rank's rows when the statistics were synchronized. */
        for (int64_t c = 0; c < width; c++) {
            int64_t channel = first + c;
            if (dbeta) dbeta[channel] += (ob_real)sums[c];
            if (dgamma) dgamma[channel] += (ob_real)(sums[BN_BLOCK + c] * save_invstd[channel]);
        }
        if (reduce && reduce_sums(reduce, width, sums, &total_rows)) return 1;
        for (int64_t c = 0; c < width; c++) {
            int64_t channel = first + c;
            double invstd = save_invstd[channel], sum_dy = sums[c], sum_dy_xhat = sums[BN_BLOCK + c] * invstd;
            scale[c] = (ob_real)(gamma[channel] * invstd);
            mean_dy[c] = (ob_real)(sum_dy / total_rows);
            x_coef[c] = (ob_real)(gamma[channel] * invstd * invstd * sum_dy_xhat / total_rows);
        }
        if (dx)
            input_grad_rows(rows, channels, width, x + first, dy + first, save_mean + first, scale, mean_dy,
                            x_coef, dx + first);
    }
    return 0;
}
