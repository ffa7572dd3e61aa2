/* Fully connected op, with the K-FAC capture hook: when the owning layer's
 * `capture` is on, the forward stores its input (A side) and the backward
 * the gradient of its output (G side); both live in the step arena. Under a
 * precision policy the GEMMs consume rounded operands (op_operands.h). */
#include <limits.h>

#include "nn/ob_backend.h"
#include "nn/ob_layers.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"
#include "nn/op_operands.h"

/* Node inputs: x, w, b (NULL without bias). */
typedef struct {
    ob_layer *hook;
    ob_tensor *x_saved, *w_used; /* the operands the forward GEMM consumed (x perhaps in 2 bytes) */
} linear_saved;

static int linear_backward(ob_ctx *ctx, const ob_node *node) {
    const linear_saved *saved = node->saved;
    ob_tensor *dy = node->out->grad;
    ob_grad_operands ops;
    if (ob_op_backward_operands(ctx, saved->hook, dy, saved->w_used, &ops)) return 1;
    ob_tensor *dx = ob_grad_of_scaled(ctx, node->in[0], ob_grad_loss_scale(dy) * ops.input_gain);
    ob_tensor *dw = ob_grad_of(ctx, node->in[1]), *dbias = ob_grad_of(ctx, node->in[2]);
    ob_tensor *x_used = ob_op_saved_input(ctx, saved->hook, saved->x_saved);
    if (!x_used) return 1;
    const ob_backend *backend = ob_backend_of(dy);
    if (ops.dy_for_input == ops.dy_for_weight) {
        backend->linear_backward(ctx, x_used, saved->w_used, ops.dy_for_input, dx, dw, dbias);
        return 0;
    }
    backend->linear_backward(ctx, x_used, saved->w_used, ops.dy_for_weight, NULL, dw, dbias);
    backend->linear_backward(ctx, x_used, saved->w_used, ops.dy_for_input, dx, NULL, NULL);
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
    ob_tensor *x_used = x, *w_used = w, *x_saved = NULL;
    if (!y || !ob_op_forward_operands(ctx, hook, &x_used, &w_used, &x_saved)) return NULL;
    ob_backend_of(x)->linear_forward(ctx, x_used, w_used, b, y);
    ob_tensor *inputs[3] = {x, w, b};
    ob_node *node = ob_tape_record(ctx, "linear", linear_backward, y, sizeof(linear_saved), 3, inputs);
    if (node && !node->saved) return NULL; /* arena exhausted; the error is set */
    if (node) *(linear_saved *)node->saved = (linear_saved){.hook = hook, .x_saved = x_saved, .w_used = w_used};
    return y;
}
