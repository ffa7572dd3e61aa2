/* Fully connected layer: x [batch, in], w [out, in], y [batch, out].
 * The products are single row-major GEMMs; the bias loops run in their own
 * parallel regions, never around a BLAS call (OpenBLAS has its own pool). */
#include "nn/cpu/real.h"
#include "nn/cpu/kernels.h"

/* Columns per task of the bias-gradient reduction: a block's sums stay on
 * the stack and a thread reads 256-byte runs of each row. */
#define BIAS_BLOCK 64

/* y = x w^T + b (y starts as the bias rows, or GEMM overwrites it) */
void OB_FN(k_linear_forward)(int64_t batch, int64_t in, int64_t out, const ob_real *x, const ob_real *w,
                             const ob_real *bias, ob_real *y) {
    if (bias) {
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < batch; r++)
#pragma omp simd
            for (int64_t o = 0; o < out; o++) y[r * out + o] = bias[o];
    }
    OB_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)batch, (int)out, (int)in, 1.0, x, (int)in, w,
            (int)in, bias ? 1.0 : 0.0, y, (int)out);
}

/* dbias += sum over rows of dy, in double. Each column is summed by one
 * thread in row order, so the result does not depend on the thread count. */
static void bias_grad(int64_t batch, int64_t out, const ob_real *dy, ob_real *dbias) {
    int64_t blocks = (out + BIAS_BLOCK - 1) / BIAS_BLOCK;
#pragma omp parallel for schedule(static)
    for (int64_t block = 0; block < blocks; block++) {
        int64_t first = block * BIAS_BLOCK, width = out - first < BIAS_BLOCK ? out - first : BIAS_BLOCK;
        double sums[BIAS_BLOCK] = {0};
        for (int64_t r = 0; r < batch; r++)
#pragma omp simd
            for (int64_t o = 0; o < width; o++) sums[o] += dy[r * out + first + o];
        for (int64_t o = 0; o < width; o++) dbias[first + o] += (ob_real)sums[o];
    }
}

/* dx += dy w;  dw += dy^T x;  dbias += sum_rows dy  (NULL outputs skipped) */
void OB_FN(k_linear_backward)(int64_t batch, int64_t in, int64_t out, const ob_real *x, const ob_real *w,
                              const ob_real *dy, ob_real *dx, ob_real *dw, ob_real *dbias) {
    if (dx)
        OB_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)batch, (int)in, (int)out, 1.0, dy, (int)out,
                w, (int)in, 1.0, dx, (int)in);
    if (dw)
        OB_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)batch, 1.0, dy, (int)out, x,
                (int)in, 1.0, dw, (int)in);
    if (dbias) bias_grad(batch, out, dy, dbias);
}
