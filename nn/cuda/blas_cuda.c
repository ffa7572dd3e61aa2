/* The CUDA back end's dense linear algebra: linear layers and GEMMs on
 * cuBLAS, SYRK on cuBLAS plus a mirror kernel, the symmetric eigensolver
 * and the SPD inverse on cuSOLVER. F32, legacy default stream.
 *
 * cuBLAS and cuSOLVER are column-major; tensors are row-major. A row-major
 * [r, c] matrix is the column-major [c, r] matrix of its transpose, so the
 * row-major C = op(A) op(B) is computed as the column-major
 * C^T = op(B)^T op(A)^T: operands swapped, their flags kept. A symmetric
 * matrix reads the same in both orders; what cuSOLVER writes back is
 * transposed or mirrored as nn/cpu/k_linalg.c does with LAPACK. */
#include <limits.h>

#include "nn/cuda/backend_cuda.h"
#include "nn/cuda/cuda_backend_kernels.h"
#include "nn/cuda/cuda_kernels.h"

/* One cuBLAS failure into ctx; nonzero when it failed (the GEMM entries
 * return void and leave the reason in ctx alone). */
static int cublas_check(ob_ctx *ctx, cublasStatus_t status, const char *what) {
    if (status == CUBLAS_STATUS_SUCCESS) return 0;
    ob_ctx_set_error(ctx, "cuda: cuBLAS %s failed: %s", what, cublasGetStatusString(status));
    return 1;
}

/* c[m,n] = alpha op(a) op(b) + beta c, all row-major; a is [k,m] when
 * trans_a, b [n,k] when trans_b; `count` of them at the given strides
 * (elements between consecutive matrices). beta 0: c is not read. */
static void row_major_gemm(ob_ctx *ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                           const float *a, const float *b, double beta, float *c, int64_t count) {
    ob_cuda_state *state = ob_cuda_state_of(ctx);
    if (!state || m == 0 || n == 0 || count == 0) return;
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX || count > INT_MAX) {
        ob_ctx_set_error(ctx, "cuda: a %lldx%lldx%lld GEMM is beyond cuBLAS's int sizes", (long long)m,
                         (long long)n, (long long)k);
        return;
    }
    float alpha_f = (float)alpha, beta_f = (float)beta;
    int lda = (int)(trans_a ? m : k), ldb = (int)(trans_b ? k : n);
    cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublas_check(ctx,
                 cublasSgemmStridedBatched(state->cublas, op_b, op_a, (int)n, (int)m, (int)k, &alpha_f, b, ldb,
                                           k * n, a, lda, m * k, &beta_f, c, (int)n, m * n, (int)count),
                 "sgemm");
}

/* y = x w^T + bias: x [batch, in], w [out, in] */
void ob_cuda_linear_forward(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *w, const ob_tensor *bias,
                            ob_tensor *y) {
    const char *entry = "linear_forward";
    ob_cuda_require(x, OB_F32, entry);
    ob_cuda_require(w, OB_F32, entry);
    ob_cuda_require(y, OB_F32, entry);
    int64_t batch = x->shape[0], in = w->shape[1], out = w->shape[0];
    row_major_gemm(ctx, false, true, batch, out, in, 1.0, x->data, w->data, 0.0, y->data, 1);
    if (bias) {
        ob_cuda_require(bias, OB_F32, entry);
        cuda_k_add_bias_rows(batch, out, bias->data, y->data);
    }
}

/* dx += dy w;  dw += dy^T x;  dbias += sum_rows dy (NULL outputs skipped) */
void ob_cuda_linear_backward(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *w, const ob_tensor *dy,
                             ob_tensor *dx, ob_tensor *dw, ob_tensor *dbias) {
    const char *entry = "linear_backward";
    ob_cuda_require(x, OB_F32, entry);
    ob_cuda_require(w, OB_F32, entry);
    ob_cuda_require(dy, OB_F32, entry);
    int64_t batch = x->shape[0], in = w->shape[1], out = w->shape[0];
    if (dx) row_major_gemm(ctx, false, false, batch, in, out, 1.0, dy->data, w->data, 1.0, dx->data, 1);
    if (dw) row_major_gemm(ctx, true, false, out, in, batch, 1.0, dy->data, x->data, 1.0, dw->data, 1);
    if (dbias) cuda_k_column_sums_add(batch, out, dy->data, dbias->data);
}

void ob_cuda_gemm(ob_ctx *ctx, bool trans_a, bool trans_b, double alpha, const ob_tensor *a, const ob_tensor *b,
                  double beta, ob_tensor *c) {
    ob_cuda_require(a, OB_F32, "gemm");
    ob_cuda_require(b, OB_F32, "gemm");
    ob_cuda_require(c, OB_F32, "gemm");
    int64_t m = trans_a ? a->shape[1] : a->shape[0], k = trans_a ? a->shape[0] : a->shape[1];
    int64_t n = trans_b ? b->shape[0] : b->shape[1];
    row_major_gemm(ctx, trans_a, trans_b, m, n, k, alpha, a->data, b->data, beta, c->data, 1);
}

/* Over the leading (batch) dims, the last two being the matrices. */
void ob_cuda_batched_gemm(ob_ctx *ctx, bool trans_a, bool trans_b, double alpha, const ob_tensor *a,
                          const ob_tensor *b, double beta, ob_tensor *c) {
    ob_cuda_require(a, OB_F32, "batched_gemm");
    ob_cuda_require(b, OB_F32, "batched_gemm");
    ob_cuda_require(c, OB_F32, "batched_gemm");
    int64_t a_rows = a->shape[a->ndim - 2], a_cols = a->shape[a->ndim - 1];
    int64_t m = trans_a ? a_cols : a_rows, k = trans_a ? a_rows : a_cols;
    int64_t n = trans_b ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    row_major_gemm(ctx, trans_a, trans_b, m, n, k, alpha, a->data, b->data, beta, c->data, c->numel / (m * n));
}

/* c[n,n] = alpha x^T x + beta c for x viewed as [rows, n]. Column-major,
 * x is X = x^T [n, rows] and x^T x = X X^T: SYRK without transpose, its
 * lower triangle being the row-major upper one, which is then mirrored. */
int ob_cuda_syrk(ob_ctx *ctx, double alpha, const ob_tensor *x, double beta, ob_tensor *c) {
    ob_cuda_require(x, OB_F32, "syrk");
    ob_cuda_require(c, OB_F32, "syrk");
    ob_cuda_state *state = ob_cuda_state_of(ctx);
    int64_t n = x->shape[x->ndim - 1], rows = x->numel / n;
    if (!state) return 1;
    if (n > INT_MAX || rows > INT_MAX) {
        ob_ctx_set_error(ctx, "cuda: a SYRK over %lld rows of %lld is beyond cuBLAS's int sizes", (long long)rows,
                         (long long)n);
        return 1;
    }
    float alpha_f = (float)alpha, beta_f = (float)beta;
    if (cublas_check(ctx,
                     cublasSsyrk(state->cublas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, (int)n, (int)rows, &alpha_f,
                                 x->data, (int)n, &beta_f, c->data, (int)n),
                     "ssyrk"))
        return 1;
    cuda_k_mirror_upper(n, c->data);
    return 0;
}

/* cuSOLVER's devInfo, downloaded (this waits for the solver). */
static int solver_info(ob_ctx *ctx, const int *device_info, int *info) {
    cudaError_t err = cudaMemcpy(info, device_info, sizeof *info, cudaMemcpyDeviceToHost);
    if (err == cudaSuccess) return 0;
    ob_ctx_set_error(ctx, "cuda: reading cuSOLVER's status failed: %s", cudaGetErrorString(err));
    return 1;
}

/* Device scratch from the step arena: `elements` floats and one int. */
static int solver_scratch(ob_ctx *ctx, int elements, float **work, int **device_info) {
    ob_tensor *w = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(elements > 0 ? elements : 1));
    ob_tensor *i = w ? ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_I32, OB_SHAPE(1)) : NULL;
    if (!i) return 1;
    *work = w->data;
    *device_info = i->data;
    return 0;
}

static int solver_failed(ob_ctx *ctx, const char *what, int64_t n) {
    ob_ctx_set_error(ctx, "cuda: cuSOLVER %s refused a %lldx%lld matrix", what, (long long)n, (long long)n);
    return 1;
}

/* The state for a solver working in place on `out`, a copy of the square
 * `a` (unless it is a); NULL with the reason in ctx. */
static ob_cuda_state *solver_start(ob_ctx *ctx, const char *entry, const ob_tensor *a, ob_tensor *out) {
    ob_cuda_require(a, OB_F32, entry);
    ob_cuda_require(out, OB_F32, entry);
    ob_cuda_state *state = ob_cuda_state_of(ctx);
    if (!state) return NULL;
    if (a->shape[0] > INT_MAX) {
        solver_failed(ctx, entry, a->shape[0]);
        return NULL;
    }
    if (out->data != a->data) cuda_copy(a, out);
    return state;
}

/* a = q diag(d) q^T with d ascending, q[i,j] = component i of eigenvector j.
 * Column-major syevd leaves eigenvector j in row j of the row-major array,
 * hence the transpose. */
int ob_cuda_sym_eigen(ob_ctx *ctx, const ob_tensor *a, ob_tensor *q, ob_tensor *d) {
    ob_cuda_require(d, OB_F32, "sym_eigen");
    ob_cuda_state *state = solver_start(ctx, "sym_eigen", a, q);
    int64_t n = a->shape[0];
    if (!state) return 1;
    int lwork = 0, info = 0;
    float *work;
    int *device_info;
    cusolverEigMode_t mode = CUSOLVER_EIG_MODE_VECTOR;
    if (cusolverDnSsyevd_bufferSize(state->cusolver, mode, CUBLAS_FILL_MODE_LOWER, (int)n, q->data, (int)n,
                                    d->data, &lwork) != CUSOLVER_STATUS_SUCCESS)
        return solver_failed(ctx, "syevd_bufferSize", n);
    if (solver_scratch(ctx, lwork, &work, &device_info)) return 1;
    if (cusolverDnSsyevd(state->cusolver, mode, CUBLAS_FILL_MODE_LOWER, (int)n, q->data, (int)n, d->data, work,
                         lwork, device_info) != CUSOLVER_STATUS_SUCCESS)
        return solver_failed(ctx, "syevd", n);
    if (solver_info(ctx, device_info, &info)) return 1;
    if (info != 0) {
        ob_ctx_set_error(ctx, "sym_eigen: cuSOLVER syevd %s (info %d) on a %lldx%lld matrix",
                         info > 0 ? "did not converge (a NaN or Inf in it?)" : "refused its arguments", info,
                         (long long)n, (long long)n);
        return 1;
    }
    cuda_k_transpose_square(n, q->data);
    return 0;
}

/* inv = a^-1 by Cholesky: a = L L^T (potrf), a^-1 = L^-T L^-1 (potri).
 * Column-major lower is the row-major upper triangle, mirrored after. */
int ob_cuda_spd_inverse(ob_ctx *ctx, const ob_tensor *a, ob_tensor *inv) {
    ob_cuda_state *state = solver_start(ctx, "spd_inverse", a, inv);
    int64_t n = a->shape[0];
    if (!state) return 1;
    cublasFillMode_t lower = CUBLAS_FILL_MODE_LOWER;
    int potrf_work = 0, potri_work = 0, info = 0;
    if (cusolverDnSpotrf_bufferSize(state->cusolver, lower, (int)n, inv->data, (int)n, &potrf_work) !=
            CUSOLVER_STATUS_SUCCESS ||
        cusolverDnSpotri_bufferSize(state->cusolver, lower, (int)n, inv->data, (int)n, &potri_work) !=
            CUSOLVER_STATUS_SUCCESS)
        return solver_failed(ctx, "potrf/potri_bufferSize", n);
    int lwork = potrf_work > potri_work ? potrf_work : potri_work;
    float *work;
    int *device_info;
    if (solver_scratch(ctx, lwork, &work, &device_info)) return 1;
    if (cusolverDnSpotrf(state->cusolver, lower, (int)n, inv->data, (int)n, work, lwork, device_info) !=
        CUSOLVER_STATUS_SUCCESS)
        return solver_failed(ctx, "potrf", n);
    if (solver_info(ctx, device_info, &info)) return 1;
    if (info == 0) {
        if (cusolverDnSpotri(state->cusolver, lower, (int)n, inv->data, (int)n, work, lwork, device_info) !=
            CUSOLVER_STATUS_SUCCESS)
            return solver_failed(ctx, "potri", n);
        if (solver_info(ctx, device_info, &info)) return 1;
    }
    if (info > 0) {
        ob_ctx_set_error(ctx, "spd_inverse: the %lldx%lld matrix is not positive definite (leading minor %d)",
                         (long long)n, (long long)n, info);
        return 1;
    }
    if (info < 0) {
        ob_ctx_set_error(ctx, "spd_inverse: cuSOLVER refused argument %d on a %lldx%lld matrix", -info,
                         (long long)n, (long long)n);
        return 1;
    }
    cuda_k_mirror_upper(n, inv->data);
    return 0;
}
