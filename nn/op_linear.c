/* Fully connected op, with the K-FAC capture hook: when the owning layer's
 * `capture` is on, the forward stores its input (A side) and the backward
 * the gradient of its output (G side); both live in the step arena. */
#include <limits.h>

#include "nn/ob_backend.h"
#include "nn/ob_layers.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"

/* Node inputs: x, w, b (NULL without bias). */
typedef struct {
    ob_layer *hook;
} linear_saved;

static int linear_backward(ob_ctx *ctx, const ob_node *node) {
    const linear_saved *saved = node->saved;
    ob_tensor *x = node->in[0], *w = node->in[1], *bias = node->in[2], *dy = node->out->grad;
    if (saved->hook && saved->hook->capture) saved->hook->captured_grad_output = dy;
    ob_backend_of(dy)->linear_backward(x, w, dy, ob_grad_of(ctx, x), ob_grad_of(ctx, w),
                                       ob_grad_of(ctx, bias));
    return 0;
}

static bool is_real(const ob_tensor *t) { return t->dtype == OB_F32 || t->dtype == OB_F64; }

static bool linear_args_ok(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *w, const ob_tensor *b) {
    if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1]) {
        ob_ctx_set_error(
            ctx, "linear: need x [batch, in] and w [out, in]; got %d-d x, %d-d w, in %lld vs %lld", x->ndim,
            w->ndim, (long long)x->shape[x->ndim - 1], (long long)w->shape[w->ndim - 1]);
        return false;
    }
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0])) {
        ob_ctx_set_error(ctx, "linear: bias must be [%lld]", (long long)w->shape[0]);
        return false;
    }
    if (!is_real(x) || w->dtype != x->dtype || (b && b->dtype != x->dtype) || w->device != x->device ||
        (b && b->device != x->device)) {
        ob_ctx_set_error(ctx, "linear: x, w and bias must share one floating dtype and device");
        return false;
    }
    /* BLAS takes int dimensions. */
    if (x->shape[0] > INT_MAX || w->shape[0] > INT_MAX || w->shape[1] > INT_MAX) {
        ob_ctx_set_error(ctx, "linear: dimensions beyond int (batch %lld, in %lld, out %lld)",
                         (long long)x->shape[0], (long long)w->shape[1], (long long)w->shape[0]);
        return false;
    }
    return true;
}

ob_tensor *ob_linear(ob_ctx *ctx, ob_tensor *x, ob_tensor *w, ob_tensor *b, struct ob_layer *hook) {
    if (!linear_args_ok(ctx, x, w, b)) return NULL;
    ob_tensor *y = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, x->dtype, OB_SHAPE(x->shape[0], w->shape[0]));
    if (!y) return NULL;
    ob_backend_of(x)->linear_forward(x, w, b, y);
    if (hook && hook->capture) hook->captured_input = x;
    ob_tensor *inputs[3] = {x, w, b};
    ob_node *node = ob_tape_record(ctx, "linear", linear_backward, y, sizeof(linear_saved), 3, inputs);
    if (node && !node->saved) return NULL; /* arena exhausted; the error is set */
    if (node) ((linear_saved *)node->saved)->hook = hook;
    return y;
}
