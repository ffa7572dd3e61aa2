/* Layer norm over the last dim of an [rows, width] view: each row is
 * normalised by its own mean and variance, then scaled by gamma and shifted
 * by beta (per column). Row statistics are summed in double by the one
 * thread that owns the row; the gamma/beta gradients are column sums, taken
 * by column blocks in row order, so every result is independent of the
 * thread count (a row's sums are vectorised, in an order fixed at compile
 * time, not by the schedule). */
#include <math.h>

#include "nn/cpu/real.h"
#include "nn/cpu/kernels.h"

/* Columns per task of the gamma/beta reduction (sums stay on the stack). */
#define LN_BLOCK 64

/* mean = E[x], var = E[(x - mean)^2] (two passes: no cancellation),
 * invstd = 1/sqrt(var + eps), y = gamma (x - mean) invstd + beta */
void OB_FN(k_layernorm_forward)(int64_t rows, int64_t width, const ob_real *x, const ob_real *gamma,
                                const ob_real *beta, double eps, ob_real *y, ob_real *mean, ob_real *invstd) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const ob_real *x_row = x + r * width;
        double sum = 0.0, centered_sq = 0.0;
#pragma omp simd reduction(+ : sum)
        for (int64_t c = 0; c < width; c++) sum += x_row[c];
        double row_mean = sum / width;
#pragma omp simd reduction(+ : centered_sq)
        for (int64_t c = 0; c < width; c++) centered_sq += (x_row[c] - row_mean) * (x_row[c] - row_mean);
        double row_invstd = 1.0 / sqrt(centered_sq / width + eps);
        mean[r] = (ob_real)row_mean;
        invstd[r] = (ob_real)row_invstd;
        ob_real m = (ob_real)row_mean, s = (ob_real)row_invstd;
#pragma omp simd
        for (int64_t c = 0; c < width; c++) y[r * width + c] = (x_row[c] - m) * s * gamma[c] + beta[c];
    }
}

/* With x^ = (x - mean) invstd and g = dy gamma, per row:
 *   dx += invstd (g - mean(g) - x^ mean(g x^)) */
static void input_grad(int64_t rows, int64_t width, const ob_real *x, const ob_real *gamma,
                       const ob_real *mean, const ob_real *invstd, const ob_real *dy, ob_real *dx) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const ob_real *x_row = x + r * width, *dy_row = dy + r * width;
        double sum_g = 0.0, sum_g_xhat = 0.0;
#pragma omp simd reduction(+ : sum_g, sum_g_xhat)
        for (int64_t c = 0; c < width; c++) {
            double g = (double)dy_row[c] * gamma[c];
            sum_g += g;
            sum_g_xhat += g * (x_row[c] - mean[r]) * invstd[r];
        }
        ob_real mean_g = (ob_real)(sum_g / width), mean_g_xhat = (ob_real)(sum_g_xhat / width);
#pragma omp simd
        for (int64_t c = 0; c < width; c++) {
            ob_real xhat = (x_row[c] - mean[r]) * invstd[r];
            dx[r * width + c] += invstd[r] * (dy_row[c] * gamma[c] - mean_g - xhat * mean_g_xhat);
        }
    }
}

/* dgamma += sum_rows dy x^,  dbeta += sum_rows dy  (NULL outputs skipped) */
static void affine_grads(int64_t rows, int64_t width, const ob_real *x, const ob_real *mean,
                         const ob_real *invstd, const ob_real *dy, ob_real *dgamma, ob_real *dbeta) {
    int64_t blocks = (width + LN_BLOCK - 1) / LN_BLOCK;
#pragma omp parallel for schedule(static)
    for (int64_t block = 0; block < blocks; block++) {
        int64_t first = block * LN_BLOCK, n = width - first < LN_BLOCK ? width - first : LN_BLOCK;
        double sum_dy_xhat[LN_BLOCK] = {0}, sum_dy[LN_BLOCK] = {0};
        for (int64_t r = 0; r < rows; r++) {
            const ob_real *x_row = x + r * width + first, *dy_row = dy + r * width + first;
#pragma omp simd
            for (int64_t c = 0; c < n; c++) {
                sum_dy_xhat[c] += (double)dy_row[c] * ((x_row[c] - mean[r]) * invstd[r]);
                sum_dy[c] += dy_row[c];
            }
        }
        for (int64_t c = 0; c < n; c++) {
            if (dgamma) dgamma[first + c] += (ob_real)sum_dy_xhat[c];
            if (dbeta) dbeta[first + c] += (ob_real)sum_dy[c];
        }
    }
}

void OB_FN(k_layernorm_backward)(int64_t rows, int64_t width, const ob_real *x, const ob_real *gamma,
                                 const ob_real *mean, const ob_real *invstd, const ob_real *dy, ob_real *dx,
                                 ob_real *dgamma, ob_real *dbeta) {
    if (dx) input_grad(rows, width, x, gamma, mean, invstd, dy, dx);
    if (dgamma || dbeta) affine_grads(rows, width, x, mean, invstd, dy, dgamma, dbeta);
}
