/* Scaled dot-product attention with a key padding mask, composed from the
 * batched matmul, a masked softmax and dropout, so its backward is theirs:
 *   scores = q k^T / sqrt(d),  P = masked_softmax(scores),  out = dropout(P) v
 * with q [batch, heads, queries, d], k [batch, heads, keys, d], v [batch,
 * heads, keys, d_v] and key_mask I32 [batch, keys], nonzero = a real token.
 * A padded key gets probability 0 (its score counts as -inf); a query whose
 * keys are all padding attends to nothing and gets a zero output row. */
#include <math.h>

#include "nn/ob_backend.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"

/* ds += p (dp - sum_k p_k dp_k) per row: only p is needed, and it is the
 * node's output. */
static int masked_softmax_backward(ob_ctx *ctx, const ob_node *node) {
    ob_tensor *dscores = ob_grad_of(ctx, node->in[0]);
    if (dscores) ob_backend_of(dscores)->masked_softmax_backward(node->out, node->out->grad, dscores);
    return 0;
}

static bool masked_softmax_args_ok(ob_ctx *ctx, const ob_tensor *scores, const ob_tensor *key_mask) {
    if (scores->ndim < 2 || (scores->dtype != OB_F32 && scores->dtype != OB_F64) || scores->numel == 0) {
        ob_ctx_set_error(ctx,
                         "masked_softmax: scores must be a non-empty floating [batch, ..., keys] tensor");
        return false;
    }
    int64_t batch = scores->shape[0], keys = scores->shape[scores->ndim - 1];
    if (key_mask->dtype != OB_I32 || key_mask->ndim != 2 || key_mask->shape[0] != batch ||
        key_mask->shape[1] != keys || key_mask->device != scores->device) {
        ob_ctx_set_error(ctx, "masked_softmax: key_mask must be i32 [%lld, %lld] on the scores' device",
                         (long long)batch, (long long)keys);
        return false;
    }
    return true;
}

/* p_j = exp(s_j) / sum_k exp(s_k) over the keys k the mask keeps; 0 elsewhere */
ob_tensor *ob_masked_softmax(ob_ctx *ctx, ob_tensor *scores, const ob_tensor *key_mask) {
    if (!masked_softmax_args_ok(ctx, scores, key_mask)) return NULL;
    ob_tensor *probs = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, scores->dtype, scores->ndim, scores->shape);
    if (!probs) return NULL;
    ob_backend_of(scores)->masked_softmax_forward(scores, key_mask, probs);
    ob_tape_record(ctx, "masked_softmax", masked_softmax_backward, probs, 0, 1, &scores);
    return probs;
}

ob_tensor *ob_attention(ob_ctx *ctx, ob_tensor *q, ob_tensor *k, ob_tensor *v, const ob_tensor *key_mask,
                        const ob_dropout_spec *dropout) {
    if (q->ndim != 4) {
        ob_ctx_set_error(ctx, "attention: q must be [batch, heads, queries, head_dim], got %d dims", q->ndim);
        return NULL;
    }
    double scale = 1.0 / sqrt((double)q->shape[3]);
    ob_tensor *scores = ob_batched_matmul(ctx, q, k, false, true, scale);
    ob_tensor *probs = scores ? ob_masked_softmax(ctx, scores, key_mask) : NULL;
    if (probs && dropout) probs = ob_dropout(ctx, probs, dropout);
    return probs ? ob_batched_matmul(ctx, probs, v, false, false, 1.0) : NULL;
}
