/* Batched matrix product C[i] = alpha op(A[i]) op(B[i]) over the leading
 * (batch) dims of A and B, which must match (no broadcasting); op(M) = M^T
 * when the flag is set. Attention's q k^T / sqrt(d) and P v are two. */
#include <limits.h>

#include "nn/ob_backend.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"

/* Node inputs: a, b. */
typedef struct {
    bool trans_a, trans_b;
    double alpha;
} matmul_saved;

/* With A' = op(A), B' = op(B), C = alpha A' B': dA' = alpha dC B'^T and
 * dB' = alpha A'^T dC. Transposing those back to A and B:
 *   dA += alpha dC op(B)^T     (or alpha op(B) dC^T when trans_a)
 *   dB += alpha op(A)^T dC     (or alpha dC^T op(A) when trans_b)
 * and op(M)^T is M read with the opposite flag. */
static int matmul_backward(ob_ctx *ctx, const ob_node *node) {
    const matmul_saved *s = node->saved;
    ob_tensor *a = node->in[0], *b = node->in[1], *dc = node->out->grad;
    ob_tensor *da = ob_grad_of(ctx, a), *db = ob_grad_of(ctx, b);
    const ob_backend *backend = ob_backend_of(dc);
    if (da && !s->trans_a) backend->batched_gemm(ctx, false, !s->trans_b, s->alpha, dc, b, 1.0, da);
    if (da && s->trans_a) backend->batched_gemm(ctx, s->trans_b, true, s->alpha, b, dc, 1.0, da);
    if (db && !s->trans_b) backend->batched_gemm(ctx, !s->trans_a, false, s->alpha, a, dc, 1.0, db);
    if (db && s->trans_b) backend->batched_gemm(ctx, true, s->trans_a, s->alpha, dc, a, 1.0, db);
    return 0;
}

/* Rows (index 0) or columns (1) of op(M): M's last two dims, swapped when transposed. */
static int64_t op_dim(const ob_tensor *m, bool trans, int which) {
    return m->shape[m->ndim - 2 + (trans ? 1 - which : which)];
}

static bool matmul_args_ok(ob_ctx *ctx, const ob_tensor *a, const ob_tensor *b, bool trans_a, bool trans_b) {
    if (a->ndim < 2 || a->ndim != b->ndim || (a->dtype != OB_F32 && a->dtype != OB_F64) ||
        b->dtype != a->dtype || b->device != a->device) {
        ob_ctx_set_error(ctx, "batched_matmul: a and b need the same floating dtype, device and 2+ dims");
        return false;
    }
    for (int d = 0; d < a->ndim - 2; d++)
        if (a->shape[d] != b->shape[d]) {
            ob_ctx_set_error(ctx, "batched_matmul: batch dim %d differs (%lld vs %lld)", d,
                             (long long)a->shape[d], (long long)b->shape[d]);
            return false;
        }
    if (op_dim(a, trans_a, 1) != op_dim(b, trans_b, 0)) {
        ob_ctx_set_error(ctx, "batched_matmul: inner dims differ (%lld vs %lld)",
                         (long long)op_dim(a, trans_a, 1), (long long)op_dim(b, trans_b, 0));
        return false;
    }
    /* BLAS takes int dimensions. */
    for (int d = a->ndim - 2; d < a->ndim; d++)
        if (a->shape[d] > INT_MAX || b->shape[d] > INT_MAX) {
            ob_ctx_set_error(ctx, "batched_matmul: a matrix dim is beyond int");
            return false;
        }
    return true;
}

ob_tensor *ob_batched_matmul(ob_ctx *ctx, ob_tensor *a, ob_tensor *b, bool trans_a, bool trans_b,
                             double alpha) {
    if (!matmul_args_ok(ctx, a, b, trans_a, trans_b)) return NULL;
    int64_t shape[OB_MAX_DIMS];
    for (int d = 0; d < a->ndim - 2; d++) shape[d] = a->shape[d];
    shape[a->ndim - 2] = op_dim(a, trans_a, 0);
    shape[a->ndim - 1] = op_dim(b, trans_b, 1);
    ob_tensor *c = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, a->dtype, a->ndim, shape);
    if (!c) return NULL;
    ob_backend_of(a)->batched_gemm(ctx, trans_a, trans_b, alpha, a, b, 0.0, c);
    ob_tensor *inputs[2] = {a, b};
    ob_node *node =
        ob_tape_record(ctx, "batched_matmul", matmul_backward, c, sizeof(matmul_saved), 2, inputs);
    if (node && !node->saved) return NULL; /* arena exhausted; the error is set */
    if (node) *(matmul_saved *)node->saved = (matmul_saved){trans_a, trans_b, alpha};
    return c;
}
