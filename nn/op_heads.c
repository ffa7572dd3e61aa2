/* The attention heads' transposes: token rows [batch * seq, heads * d] (what
 * ob_linear makes) <-> [batch, heads, seq, d] (what ob_attention takes).
 * Both are a swap of the middle two dims of a 4-D view, so each backward is
 * the opposite swap, accumulated. */
#include "nn/ob_backend.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"

/* The forward's view of x: [outer, d1, d2, inner]. */
typedef struct {
    int64_t outer, d1, d2, inner;
} swap_saved;

/* y = x with dims 1 and 2 swapped  =>  dx += dy with them swapped back */
static int swap_backward(ob_ctx *ctx, const ob_node *node) {
    const swap_saved *s = node->saved;
    ob_tensor *dx = ob_grad_of(ctx, node->in[0]);
    if (dx) ob_backend_of(dx)->swap_middle_axes(s->outer, s->d2, s->d1, s->inner, node->out->grad, dx, true);
    return 0;
}

/* y (shaped ndim, shape) = x viewed as `view` with its middle dims swapped. */
static ob_tensor *swap_op(ob_ctx *ctx, const char *op, ob_tensor *x, swap_saved view, int ndim,
                          const int64_t *shape) {
    ob_tensor *y = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, x->dtype, ndim, shape);
    if (!y) return NULL;
    ob_backend_of(x)->swap_middle_axes(view.outer, view.d1, view.d2, view.inner, x, y, false);
    ob_node *node = ob_tape_record(ctx, op, swap_backward, y, sizeof(swap_saved), 1, &x);
    if (node && !node->saved) return NULL; /* arena exhausted; the error is set */
    if (node) *(swap_saved *)node->saved = view;
    return y;
}

static bool is_floating(const ob_tensor *t) { return t->dtype == OB_F32 || t->dtype == OB_F64; }

/* [batch * seq, heads * d] -> [batch, heads, seq, d] */
ob_tensor *ob_split_heads(ob_ctx *ctx, ob_tensor *x, int64_t batch, int64_t heads) {
    if (!is_floating(x) || x->numel == 0) {
        ob_ctx_set_error(ctx, "split_heads: x must be a non-empty floating [batch * seq, heads * d] tensor");
        return NULL;
    }
    int64_t width = x->shape[x->ndim - 1], rows = x->numel / width;
    if (batch <= 0 || heads <= 0 || rows % batch || width % heads) {
        ob_ctx_set_error(
            ctx, "split_heads: %lld rows of width %lld do not split into %lld sequences of %lld heads",
            (long long)rows, (long long)width, (long long)batch, (long long)heads);
        return NULL;
    }
    swap_saved view = {batch, rows / batch, heads, width / heads};
    return swap_op(ctx, "split_heads", x, view, OB_SHAPE(batch, heads, view.d1, view.inner));
}

/* [batch, heads, seq, d] -> [batch * seq, heads * d] */
ob_tensor *ob_merge_heads(ob_ctx *ctx, ob_tensor *x) {
    if (!is_floating(x) || x->ndim != 4) {
        ob_ctx_set_error(ctx, "merge_heads: x must be a floating [batch, heads, seq, head_dim] tensor");
        return NULL;
    }
    swap_saved view = {x->shape[0], x->shape[1], x->shape[2], x->shape[3]};
    return swap_op(ctx, "merge_heads", x, view, OB_SHAPE(view.outer * view.d2, view.d1 * view.inner));
}
