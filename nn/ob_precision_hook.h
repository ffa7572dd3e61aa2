/* ob_precision_hook: how a Linear/Conv2d op asks a precision policy for its
 * GEMM operands.
 *
 * The CPU emulates low precision exactly (DESIGN.md section 2): the values
 * a GEMM or convolution consumes are rounded to the compute format (or
 * quantized) first, and the GEMM accumulates in fp32. The policy itself
 * (formats, loss scaling, FQT quantizers) lives in optimizers/precision/;
 * the engine only knows this table, so nn/ does not depend on it. A layer
 * without a hook (layer->precision == NULL) computes in full precision.
 */
#ifndef OB_PRECISION_HOOK_H
#define OB_PRECISION_HOOK_H

#include "nn/ob_ctx.h"

struct ob_layer;

/* What the backward GEMMs of one layer consume. */
typedef struct {
    ob_tensor *dy_for_input;  /* drives dx = dy W (or its transposed convolution) */
    ob_tensor *dy_for_weight; /* drives dW = dy^T x and the bias gradient */
    /* dx carries the incoming gradient's loss scale times this (adaptive
     * loss scaling's per-layer scale; 1 otherwise). dy_for_input already
     * includes it. */
    double input_gain;
} ob_grad_operands;

typedef struct ob_precision_hook ob_precision_hook;
struct ob_precision_hook {
    /* The values the forward GEMM uses for the input (is_weight false) or
     * the weight: a rounded copy in the step arena, or t itself. NULL with
     * the ctx error set on failure. */
    ob_tensor *(*forward_operand)(ob_ctx *ctx, ob_precision_hook *hook, struct ob_layer *layer, ob_tensor *t,
                                  bool is_weight);
    /* An input operand may come back in a 2-byte dtype (F16 or BF16, every
     * value exact): the copy the backward pass keeps. widen gives its F32
     * values, for the GEMMs of the forward and of the backward, in a buffer
     * valid until the next forward_operand or widen. NULL with the ctx
     * error set on failure. */
    ob_tensor *(*widen)(ob_ctx *ctx, ob_precision_hook *hook, const ob_tensor *saved);
    /* The backward operands from the output gradient dy (whose values carry
     * loss scale dy_scale) and the weight as the forward used it. Returns
     * 0, or nonzero with the ctx error set. */
    int (*backward_operands)(ob_ctx *ctx, ob_precision_hook *hook, struct ob_layer *layer, ob_tensor *dy,
                             double dy_scale, const ob_tensor *weight_used, ob_grad_operands *out);
};

#endif
