/* Dense linear algebra for K-FAC: GEMM and SYRK through CBLAS, the symmetric
 * eigendecomposition and the SPD inverse through LAPACKE, and the small loops
 * around them (triangle mirror, diagonal, column blocks, eigenvalue outer
 * product).
 *
 * LAPACK is called in column-major order: a symmetric matrix reads the same
 * either way, so LAPACKE needs no transposed copy (its row-major wrappers
 * allocate one), and what comes back is transposed or mirrored here. Every
 * LAPACK work array is passed in by the caller. */
#include <lapacke.h>

#include "nn/cpu/real.h"
#include "nn/cpu/kernels.h"

_Static_assert(sizeof(lapack_int) == sizeof(int32_t), "LAPACKE with 32-bit integers expected");

/* Compiled once per ob_real, so these need no reset (unlike real.h's). */
#if defined(OB_REAL_F64)
#define OB_SYEVD_WORK LAPACKE_dsyevd_work
#define OB_POTRF LAPACKE_dpotrf
#define OB_POTRI LAPACKE_dpotri
#else
#define OB_SYEVD_WORK LAPACKE_ssyevd_work
#define OB_POTRF LAPACKE_spotrf
#define OB_POTRI LAPACKE_spotri
#endif

/* Below this many rows a parallel region costs more than the loop. */
#define LINALG_PARALLEL_MIN 256

/* c[m,n] = alpha op(a) op(b) + beta c, op(a) [m,k], op(b) [k,n]; a is stored
 * [k,m] when transposed, b [n,k]. */
void OB_FN(k_gemm)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha, const ob_real *a,
                   const ob_real *b, double beta, ob_real *c) {
    OB_GEMM(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)m,
            (int)n, (int)k, (ob_real)alpha, a, (int)(trans_a ? m : k), b, (int)(trans_b ? k : n),
            (ob_real)beta, c, (int)n);
}

/* a[r,c] = a[c,r] for c < r: the lower triangle from the upper. */
static void mirror_upper(int64_t n, ob_real *a) {
#pragma omp parallel for schedule(static) if (n >= LINALG_PARALLEL_MIN)
    for (int64_t r = 1; r < n; r++)
        for (int64_t c = 0; c < r; c++) a[r * n + c] = a[c * n + r];
}

/* c[n,n] += each partial's upper triangle, partials in order. */
static void add_partials_upper(int64_t n, int partial_count, const ob_real *partials, ob_real *c) {
#pragma omp parallel for schedule(static) if (n >= LINALG_PARALLEL_MIN)
    for (int64_t r = 0; r < n; r++)
        for (int p = 0; p < partial_count; p++) {
            const ob_real *partial = partials + (int64_t)p * n * n;
            for (int64_t col = r; col < n; col++) c[r * n + col] += partial[r * n + col];
        }
}

/* The upper triangle of c[n,n] = alpha x^T x + beta c, x [rows, n]; beta 0
 * ignores what c held. */
static void syrk_upper(int64_t rows, int64_t n, double alpha, const ob_real *x, double beta, ob_real *c) {
    OB_SYRK(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)rows, (ob_real)alpha, x, (int)n, (ob_real)beta, c,
            (int)n);
}

/* c[n,n] = alpha x^T x + beta c for x [rows, n]: SYRK writes the upper
 * triangle, the lower is mirrored from it.
 *
 * With slices > 1 the rows are cut into that many fixed slices, one
 * single-threaded SYRK each on its own thread (OpenBLAS's OpenMP build runs
 * a call from a parallel region on its caller's thread), slice 0 into c and
 * slice s into partials[s - 1] (slices - 1 matrices of n*n), then summed in
 * slice order. A tall x (K-FAC's im2col rows: 131072 x 64) keeps OpenBLAS's
 * own threaded SYRK at a third of the GEMM rate, since it splits the short
 * n side; the sum is exact in order, so the bits depend on `slices` only. */
void OB_FN(k_syrk)(int64_t rows, int64_t n, double alpha, const ob_real *x, double beta, ob_real *c, int slices,
                   ob_real *partials) {
    /* Not through the parallel loop with if (false): OpenBLAS called from
     * even an inactive OpenMP region runs on one thread (measured by
     * tests/bench/kfac_syrk: 8192 x 576 took 1.3x as long). */
    if (slices <= 1) {
        syrk_upper(rows, n, alpha, x, beta, c);
        mirror_upper(n, c);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(slices)
    for (int s = 0; s < slices; s++) {
        int64_t begin = rows * s / slices, end = rows * (s + 1) / slices;
        ob_real *out = s == 0 ? c : partials + (int64_t)(s - 1) * n * n;
        syrk_upper(end - begin, n, alpha, x + begin * n, s == 0 ? beta : 0, out);
    }
    add_partials_upper(n, slices - 1, partials, c);
    mirror_upper(n, c);
}

/* ?syevd's documented minimum work sizes with eigenvectors: 1 + 6n + 2n^2
 * reals and 3 + 5n integers (1 and 1 when n <= 1). Not a workspace query:
 * ssyevd reports the size as a float, which rounds for large n. */
void OB_FN(k_sym_eigen_workspace)(int64_t n, int64_t *work_elements, int64_t *iwork_elements) {
    *work_elements = n <= 1 ? 1 : 1 + 6 * n + 2 * n * n;
    *iwork_elements = n <= 1 ? 1 : 3 + 5 * n;
}

/* a[i,j] <-> a[j,i] */
static void transpose_square(int64_t n, ob_real *a) {
#pragma omp parallel for schedule(static) if (n >= LINALG_PARALLEL_MIN)
    for (int64_t r = 1; r < n; r++)
        for (int64_t c = 0; c < r; c++) {
            ob_real upper = a[c * n + r];
            a[c * n + r] = a[r * n + c];
            a[r * n + c] = upper;
        }
}

/* On entry q holds a symmetric [n,n] a; on exit a = q diag(d) q^T with d
 * ascending and q[i,j] = component i of eigenvector j. In column-major order
 * ?syevd leaves eigenvector j in row j of the row-major array, hence the
 * transpose. Returns LAPACK's info (0: converged). */
int OB_FN(k_sym_eigen)(int64_t n, ob_real *q, ob_real *d, ob_real *work, int64_t work_elements,
                       int32_t *iwork, int64_t iwork_elements) {
    lapack_int info =
        OB_SYEVD_WORK(LAPACK_COL_MAJOR, 'V', 'L', (lapack_int)n, q, (lapack_int)n, d, work,
                      (lapack_int)work_elements, (lapack_int *)iwork, (lapack_int)iwork_elements);
    if (info == 0) transpose_square(n, q);
    return (int)info;
}

/* a = a^-1 in place for a symmetric positive definite [n,n] a: Cholesky
 * a = L L^T (?potrf), then a^-1 = L^-T L^-1 (?potri). Column-major 'L' is
 * the row-major upper triangle; the lower is mirrored from it. Returns
 * LAPACK's info: > 0 when a is not positive definite, < 0 when it holds a NaN. */
int OB_FN(k_spd_inverse)(int64_t n, ob_real *a) {
    lapack_int info = OB_POTRF(LAPACK_COL_MAJOR, 'L', (lapack_int)n, a, (lapack_int)n);
    if (info == 0) info = OB_POTRI(LAPACK_COL_MAJOR, 'L', (lapack_int)n, a, (lapack_int)n);
    if (info == 0) mirror_upper(n, a);
    return (int)info;
}

/* dst[r, dst_col + c] = src[r, src_col + c] for r < rows, c < cols; rows of
 * src hold src_ld values, rows of dst dst_ld. */
void OB_FN(k_copy_columns)(int64_t rows, int64_t cols, const ob_real *src, int64_t src_ld, int64_t src_col,
                           ob_real *dst, int64_t dst_ld, int64_t dst_col) {
#pragma omp parallel for schedule(static) if (rows >= LINALG_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++)
#pragma omp simd
        for (int64_t c = 0; c < cols; c++) dst[r * dst_ld + dst_col + c] = src[r * src_ld + src_col + c];
}

/* a[i,i] += value */
void OB_FN(k_add_diagonal)(int64_t n, ob_real value, ob_real *a) {
    for (int64_t i = 0; i < n; i++) a[i * n + i] += value;
}

/* sum_i a[i,i] in double, in index order */
double OB_FN(k_trace)(int64_t n, const ob_real *a) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) total += a[i * n + i];
    return total;
}

/* out[i,j] = 1 / (u[i] v[j] + shift) */
void OB_FN(k_outer_inverse)(int64_t rows, int64_t cols, const ob_real *u, const ob_real *v, double shift,
                            ob_real *out) {
    const ob_real shift_real = (ob_real)shift;
#pragma omp parallel for schedule(static) if (rows >= LINALG_PARALLEL_MIN)
    for (int64_t i = 0; i < rows; i++)
#pragma omp simd
        for (int64_t j = 0; j < cols; j++) out[i * cols + j] = 1 / (u[i] * v[j] + shift_real);
}
