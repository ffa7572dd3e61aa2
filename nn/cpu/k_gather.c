/* Row gathers and their scatter-add adjoint (embedding lookups, the
 * masked-LM selection). Rows index src viewed as [src_rows, width]; the op
 * has checked them, the kernels trust them. */
#include "nn/cpu/real.h"
#include "nn/cpu/kernels.h"

/* Columns per task of the scatter-add: one task's rows stay 256 bytes wide. */
#define SCATTER_BLOCK 64

/* y[r, :] = src[rows[r], :] */
void OB_FN(k_gather_rows)(int64_t n_rows, int64_t width, const int32_t *rows, const ob_real *src,
                          ob_real *y) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n_rows; r++) {
        const ob_real *from = src + (int64_t)rows[r] * width;
#pragma omp simd
        for (int64_t c = 0; c < width; c++) y[r * width + c] = from[c];
    }
}

/* dsrc[rows[r], :] += dy[r, :]. A repeated row is a reduction, so threads
 * split the columns instead of the rows: each adds every row in row order,
 * and repeated ids sum the same way for any thread count. */
void OB_FN(k_scatter_add_rows)(int64_t n_rows, int64_t width, const int32_t *rows, const ob_real *dy,
                               ob_real *dsrc) {
    int64_t blocks = (width + SCATTER_BLOCK - 1) / SCATTER_BLOCK;
#pragma omp parallel for schedule(static)
    for (int64_t block = 0; block < blocks; block++) {
        int64_t first = block * SCATTER_BLOCK,
                end = first + SCATTER_BLOCK < width ? first + SCATTER_BLOCK : width;
        for (int64_t r = 0; r < n_rows; r++) {
            ob_real *to = dsrc + (int64_t)rows[r] * width;
#pragma omp simd
            for (int64_t c = first; c < end; c++) to[c] += dy[r * width + c];
        }
    }
}
