/* Internal to nn/: the operands a Linear/Conv2d op's GEMMs consume, through
 * the layer's precision hook when it has one (nn/ob_precision_hook.h), and
 * the K-FAC capture of the output gradient that goes with them. */
#ifndef OB_OP_OPERANDS_H
#define OB_OP_OPERANDS_H

#include "nn/ob_layers.h"
#include "nn/ob_precision_hook.h"

/* Replaces *x and *w by the values the forward GEMM uses; *x_saved is what
 * the backward pass keeps of the input (*x, or a 2-byte copy of it). */
bool ob_op_forward_operands(ob_ctx *ctx, ob_layer *layer, ob_tensor **x, ob_tensor **w, ob_tensor **x_saved);
/* The F32 input the backward GEMMs use, from what the forward kept. NULL
 * with the ctx error set on failure. */
ob_tensor *ob_op_saved_input(ob_ctx *ctx, ob_layer *layer, ob_tensor *x_saved);
/* Fills out from dy (the output gradient) and the forward's weight, and
 * captures dy for K-FAC when the layer asks. Returns 0 or 1 (ctx error). */
int ob_op_backward_operands(ob_ctx *ctx, ob_layer *layer, ob_tensor *dy, const ob_tensor *w_used,
                            ob_grad_operands *out);

#endif
