#include "nn/op_operands.h"

#include "nn/ob_tape.h"

bool ob_op_forward_operands(ob_ctx *ctx, ob_layer *layer, ob_tensor **x, ob_tensor **w, ob_tensor **x_saved) {
    ob_precision_hook *hook = layer ? layer->precision : NULL;
    if (hook) {
        /* The weight first: the input's widened values live in a buffer
         * that only the next operand call may overwrite. */
        *w = hook->forward_operand(ctx, hook, layer, *w, true);
        *x_saved = *w ? hook->forward_operand(ctx, hook, layer, *x, false) : NULL;
        *x = *x_saved ? hook->widen(ctx, hook, *x_saved) : NULL;
        if (!*x || !*w) return false;
    } else {
        *x_saved = *x;
    }
    if (layer && layer->capture) layer->captured_input = *x; /* K-FAC sees what the GEMM saw */
    return true;
}

ob_tensor *ob_op_saved_input(ob_ctx *ctx, ob_layer *layer, ob_tensor *x_saved) {
    ob_precision_hook *hook = layer ? layer->precision : NULL;
    return hook && ob_dtype_is_half(x_saved->dtype) ? hook->widen(ctx, hook, x_saved) : x_saved;
}

int ob_op_backward_operands(ob_ctx *ctx, ob_layer *layer, ob_tensor *dy, const ob_tensor *w_used,
                            ob_grad_operands *out) {
    *out = (ob_grad_operands){.dy_for_input = dy, .dy_for_weight = dy, .input_gain = 1.0};
    double dy_scale = ob_grad_loss_scale(dy);
    ob_precision_hook *hook = layer ? layer->precision : NULL;
    if (hook && hook->backward_operands(ctx, hook, layer, dy, dy_scale, w_used, out)) return 1;
    if (layer && layer->capture) {
        layer->captured_grad_output = out->dy_for_weight;
        layer->captured_grad_scale = dy_scale;
    }
    return 0;
}
