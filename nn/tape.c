#include <stdlib.h>

#include "nn/ob_backend.h"
#include "nn/tape_impl.h"

ob_node *ob_tape_record(ob_ctx *ctx, const char *op, ob_backward_fn backward, ob_tensor *out,
                        size_t saved_bytes, int n_in, ob_tensor *const *inputs) {
    if (!ob_grad_enabled(ctx)) return NULL;
    bool needs_grad = false;
    for (int i = 0; i < n_in; i++)
        if (inputs[i] && inputs[i]->requires_grad) needs_grad = true;
    if (!needs_grad) return NULL;

    ob_tape *tape = ob_ctx_tape(ctx);
    if (tape->length == tape->capacity) {
        int capacity = tape->capacity ? 2 * tape->capacity : 256;
        ob_node *nodes = realloc(tape->nodes, (size_t)capacity * sizeof *nodes);
        if (!nodes) return NULL;
        tape->nodes = nodes;
        tape->capacity = capacity;
    }
    ob_node *node = &tape->nodes[tape->length++];
    node->op = op;
    node->backward = backward;
    node->out = out;
    node->n_in = n_in;
    for (int i = 0; i < OB_NODE_MAX_INPUTS; i++) node->in[i] = i < n_in ? inputs[i] : NULL;
    node->saved = saved_bytes ? ob_arena_alloc(ctx, saved_bytes, OB_MEM_WORKSPACE) : NULL;
    out->requires_grad = true;
    return node;
}

double ob_grad_loss_scale(const ob_tensor *grad) { return grad->loss_scale > 0 ? grad->loss_scale : 1.0; }

static void rescale_buffer(ob_tensor *grad, double scale) {
    ob_backend_of(grad)->scale(scale / grad->loss_scale, grad);
    grad->loss_scale = scale;
}

/* Brings a buffer to the scale of the contribution about to accumulate. */
static void join_contribution(ob_tensor *grad, double scale) {
    if (grad->loss_scale == 0) {
        grad->loss_scale = grad->loss_scale_min = scale;
        return;
    }
    if (grad->loss_scale != scale) rescale_buffer(grad, scale);
    if (scale < grad->loss_scale_min) grad->loss_scale_min = scale;
}

ob_tensor *ob_grad_of_scaled(ob_ctx *ctx, ob_tensor *t, double scale) {
    if (!t || !t->requires_grad) return NULL;
    if (!t->grad) t->grad = ob_tensor_temp_zeroed(ctx, OB_MEM_ACTIVATIONS, t->dtype, t->ndim, t->shape);
    if (t->grad) join_contribution(t->grad, scale);
    return t->grad;
}

ob_tensor *ob_grad_of(ob_ctx *ctx, ob_tensor *t) {
    double scale = ob_ctx_tape(ctx)->contribution_scale;
    return ob_grad_of_scaled(ctx, t, scale > 0 ? scale : 1.0);
}

void ob_grad_unscale(ob_tensor *grad) {
    if (grad->loss_scale > 0 && grad->loss_scale != 1.0) rescale_buffer(grad, 1.0);
    grad->loss_scale_min = grad->loss_scale;
}

int ob_backward_scaled(ob_ctx *ctx, ob_tensor *loss, double loss_scale) {
    ob_ctx_tape(ctx)->contribution_scale = loss_scale;
    ob_tensor *seed = ob_grad_of(ctx, loss);
    if (!seed) {
        ob_ctx_set_error(ctx, "backward: the loss does not depend on any parameter");
        return 1;
    }
    ob_backend_of(seed)->fill(seed, loss_scale);
    return ob_backward_run(ctx);
}

int ob_backward(ob_ctx *ctx, ob_tensor *loss) { return ob_backward_scaled(ctx, loss, 1.0); }

int ob_backward_run(ob_ctx *ctx) {
    ob_tape *tape = ob_ctx_tape(ctx);
    for (int i = tape->length - 1; i >= 0; i--) {
        const ob_node *node = &tape->nodes[i];
        /* A node whose output never reached the loss has no gradient. */
        ob_tensor *grad = node->out->grad;
        if (!grad) continue;
        /* Every contribution is in: settle on the common (smallest) scale. */
        if (grad->loss_scale > 0 && grad->loss_scale_min < grad->loss_scale)
            rescale_buffer(grad, grad->loss_scale_min);
        tape->contribution_scale = ob_grad_loss_scale(grad);
        int rc = node->backward(ctx, node);
        if (rc) return rc;
    }
    tape->contribution_scale = 0; /* later ob_grad_of calls start at scale 1 */
    return 0;
}

/* The tape is only read here; ob_ctx_tape takes a mutable context. */
int ob_tape_length(const ob_ctx *ctx) { return ob_ctx_tape((ob_ctx *)ctx)->length; }
