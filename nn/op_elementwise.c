/* ReLU and the residual add. */
#include "nn/ob_backend.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"

static int relu_backward(ob_ctx *ctx, const ob_node *node) {
    ob_tensor *dx = ob_grad_of(ctx, node->in[0]);
    if (dx) ob_backend_of(dx)->relu_backward(node->out, node->out->grad, dx);
    return 0;
}

ob_tensor *ob_relu(ob_ctx *ctx, ob_tensor *x) {
    ob_tensor *y = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, x->dtype, x->ndim, x->shape);
    if (!y) return NULL;
    ob_backend_of(x)->relu_forward(x, y);
    ob_tape_record(ctx, "relu", relu_backward, y, 0, 1, &x);
    return y;
}

/* d(a + b) flows unchanged to both inputs. */
static int add_backward(ob_ctx *ctx, const ob_node *node) {
    for (int i = 0; i < 2; i++) {
        ob_tensor *d_input = ob_grad_of(ctx, node->in[i]);
        if (d_input) ob_backend_of(d_input)->axpy(1.0, node->out->grad, d_input);
    }
    return 0;
}

ob_tensor *ob_add(ob_ctx *ctx, ob_tensor *a, ob_tensor *b) {
    if (!ob_tensor_same_shape(a, b) || a->dtype != b->dtype) {
        ob_ctx_set_error(ctx, "add: operands differ in shape or dtype");
        return NULL;
    }
    ob_tensor *y = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, a->dtype, a->ndim, a->shape);
    if (!y) return NULL;
    ob_backend_of(a)->add_forward(a, b, y);
    ob_tensor *inputs[2] = {a, b};
    ob_tape_record(ctx, "add", add_backward, y, 0, 2, inputs);
    return y;
}
