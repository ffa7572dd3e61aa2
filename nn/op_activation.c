/* Smooth activations: GELU (BERT's feed-forward) and tanh (BERT's pooler). */
#include "nn/ob_backend.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"

typedef void (*unary_kernel)(const ob_tensor *x, ob_tensor *y);

/* y = f(x) element-wise through `forward`, with a node whose backward reads
 * x (node->in[0]) or y (node->out) as it needs. */
static ob_tensor *unary_op(ob_ctx *ctx, const char *op, ob_tensor *x, unary_kernel forward,
                           ob_backward_fn backward) {
    if (x->dtype != OB_F32 && x->dtype != OB_F64) {
        ob_ctx_set_error(ctx, "%s: x must be a floating tensor", op);
        return NULL;
    }
    ob_tensor *y = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, x->dtype, x->ndim, x->shape);
    if (!y) return NULL;
    forward(x, y);
    ob_tape_record(ctx, op, backward, y, 0, 1, &x);
    return y;
}

/* d gelu/dx = Phi(x) + x phi(x): needs x. */
static int gelu_backward(ob_ctx *ctx, const ob_node *node) {
    ob_tensor *dx = ob_grad_of(ctx, node->in[0]);
    if (dx) ob_backend_of(dx)->gelu_backward(node->in[0], node->out->grad, dx);
    return 0;
}

/* y = x (1 + erf(x / sqrt 2)) / 2 */
ob_tensor *ob_gelu(ob_ctx *ctx, ob_tensor *x) {
    return unary_op(ctx, "gelu", x, ob_backend_of(x)->gelu_forward, gelu_backward);
}

/* d tanh/dx = 1 - y^2: needs only y. */
static int tanh_backward(ob_ctx *ctx, const ob_node *node) {
    ob_tensor *dx = ob_grad_of(ctx, node->in[0]);
    if (dx) ob_backend_of(dx)->tanh_backward(node->out, node->out->grad, dx);
    return 0;
}

/* y = tanh(x) */
ob_tensor *ob_tanh(ob_ctx *ctx, ob_tensor *x) {
    return unary_op(ctx, "tanh", x, ob_backend_of(x)->tanh_forward, tanh_backward);
}
