/* Element-wise kernels and reductions. Loops are split statically over
 * threads, so every element is computed the same way whatever the thread
 * count; the reductions (sumsq, dot) accumulate per fixed-size chunk and
 * add the chunks in order, so they are bit-identical for any thread count too. */
#include "nn/cpu/real.h"
#include "nn/cpu/kernels.h"

void OB_FN(k_fill)(int64_t n, ob_real value, ob_real *x) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = value;
}

void OB_FN(k_copy)(int64_t n, const ob_real *src, ob_real *dst) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) dst[i] = src[i];
}

void OB_FN(k_scale)(int64_t n, ob_real alpha, ob_real *x) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] *= alpha;
}

/* y += alpha x */
void OB_FN(k_axpy)(int64_t n, ob_real alpha, const ob_real *x, ob_real *y) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

#define REDUCE_CHUNK 4096

/* sum x*y in double: per-chunk partial sums, then added in chunk order, so
 * the result does not depend on the thread count. Chunks are dealt
 * round-robin (static, 1) so the ordered adds interleave with the work
 * instead of serialising whole thread ranges. */
double OB_FN(k_dot)(int64_t n, const ob_real *x, const ob_real *y) {
    int64_t chunks = (n + REDUCE_CHUNK - 1) / REDUCE_CHUNK;
    double total = 0.0;
#pragma omp parallel for ordered schedule(static, 1)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t end = (c + 1) * REDUCE_CHUNK < n ? (c + 1) * REDUCE_CHUNK : n;
        double partial = 0.0;
        for (int64_t i = c * REDUCE_CHUNK; i < end; i++) partial += (double)x[i] * y[i];
#pragma omp ordered
        total += partial;
    }
    return total;
}

/* sum x^2 in double (a dot product with itself: same chunking and order) */
double OB_FN(k_sumsq)(int64_t n, const ob_real *x) { return OB_FN(k_dot)(n, x, x); }

/* y = a * b */
void OB_FN(k_mul)(int64_t n, const ob_real *a, const ob_real *b, ob_real *y) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}

/* y = max(x, 0) */
void OB_FN(k_relu_forward)(int64_t n, const ob_real *x, ob_real *y) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
}

/* dx += dy where y > 0 (y = relu(x) > 0 exactly where x > 0) */
void OB_FN(k_relu_backward)(int64_t n, const ob_real *y, const ob_real *dy, ob_real *dx) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) dx[i] += y[i] > 0 ? dy[i] : 0;
}

/* y = a + b */
void OB_FN(k_add_forward)(int64_t n, const ob_real *a, const ob_real *b, ob_real *y) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}
