#include "nn/op_operands.h"

#include "nn/ob_tape.h"

bool ob_op_forward_operands(ob_ctx *ctx, ob_layer *layer, ob_tensor **x, ob_tensor **w) {
    ob_precision_hook *hook = layer ? layer->precision : NULL;
    if (hook) {
        *x = hook->forward_operand(ctx, hook, layer, *x, false);
        *w = *x ? hook->forward_operand(ctx, hook, layer, *w, true) : NULL;
        if (!*x || !*w) return false;
    }
    if (layer && layer->capture) layer->captured_input = *x; /* K-FAC sees what the GEMM saw */
    return true;
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
