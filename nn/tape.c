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

ob_tensor *ob_grad_of(ob_ctx *ctx, ob_tensor *t) {
    if (!t || !t->requires_grad) return NULL;
    if (!t->grad) t->grad = ob_tensor_temp_zeroed(ctx, OB_MEM_ACTIVATIONS, t->dtype, t->ndim, t->shape);
    return t->grad;
}

int ob_backward(ob_ctx *ctx, ob_tensor *loss) {
    ob_tensor *seed = ob_grad_of(ctx, loss);
    if (!seed) {
        ob_ctx_set_error(ctx, "backward: the loss does not depend on any parameter");
        return 1;
    }
    ob_backend_of(seed)->fill(seed, 1.0);
    return ob_backward_run(ctx);
}

int ob_backward_run(ob_ctx *ctx) {
    ob_tape *tape = ob_ctx_tape(ctx);
    for (int i = tape->length - 1; i >= 0; i--) {
        const ob_node *node = &tape->nodes[i];
        /* A node whose output never reached the loss has no gradient. */
        if (!node->out->grad) continue;
        int rc = node->backward(ctx, node);
        if (rc) return rc;
    }
    return 0;
}

/* The tape is only read here; ob_ctx_tape takes a mutable context. */
int ob_tape_length(const ob_ctx *ctx) { return ob_ctx_tape((ob_ctx *)ctx)->length; }
