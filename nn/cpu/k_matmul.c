/* Batched matrix products: a stack of independent GEMMs over contiguous
 * [batch, rows, cols] operands (attention's scores and weighted values). */
#include <omp.h>

#include "nn/cpu/real.h"
#include "nn/cpu/kernels.h"

/* c[i] = alpha op(a[i]) op(b[i]) + beta c[i] for i < batch, one GEMM each.
 * With at least as many matrices as threads, threads take whole matrices
 * (OpenBLAS's OpenMP build runs a GEMM called from a parallel region on
 * its caller's thread). With fewer, the GEMMs are called one after another
 * outside any parallel region, so that OpenBLAS threads each: inside an
 * `omp parallel ... if (false)` region, which still counts as one, OpenBLAS
 * runs on its caller's thread alone (tests/bench/batched_gemm measures
 * both cases against a plain loop of OpenBLAS calls). */
static void gemm_one(int64_t i, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                     const ob_real *a, const ob_real *b, double beta, ob_real *c) {
    OB_FN(k_gemm)(trans_a, trans_b, m, n, k, alpha, a + i * m * k, b + i * k * n, beta, c + i * m * n);
}

void OB_FN(k_batched_gemm)(int64_t batch, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                           double alpha, const ob_real *a, const ob_real *b, double beta, ob_real *c) {
    if (batch < omp_get_max_threads()) {
        for (int64_t i = 0; i < batch; i++) gemm_one(i, trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < batch; i++) gemm_one(i, trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
}
