/* The input a Linear/Conv2d layer keeps for its backward GEMMs, in 2 bytes
 * (precision.saved_inputs = format). Emulated low precision rounds the
 * input to the forward format; every fp16, E5M2 and E4M3 value is exactly
 * a binary16 and every bf16 value a bfloat16, so the copy the backward pass
 * needs can be stored in 2 bytes instead of 4 with no change to any value.
 * The GEMMs still read fp32: one reusable buffer holds the fp32 values of
 * the input in use (written by the rounding in forward, refilled from the
 * 2-byte copy in backward).
 * Internal to the precision module; CPU tensors. */
#ifndef OB_SAVED_INPUTS_H
#define OB_SAVED_INPUTS_H

#include "nn/ob_ctx.h"
#include "optimizers/precision/ob_format.h"

/* One persistent F32 buffer (workspace) reused layer after layer, grown to
 * the largest request: for values that die with the layer's GEMMs. */
typedef struct {
    ob_tensor *buffer;
    ob_tensor view; /* the request's shape over buffer's data */
} ob_reusable_f32;

/* The buffer shaped like `like` (contents undefined, valid until the next
 * request). NULL with the ctx error set when out of memory. */
ob_tensor *ob_reusable_f32_like(ob_ctx *ctx, ob_reusable_f32 *reusable, const ob_tensor *like);
void ob_reusable_f32_free(ob_ctx *ctx, ob_reusable_f32 *reusable);

typedef struct {
    ob_reusable_f32 values;
    const void *holds; /* data of the saved tensor whose values the buffer holds, or NULL */
} ob_saved_inputs;

/* The 2-byte dtype that holds every value of format exactly (OB_F16 or
 * OB_BF16), or OB_F32 when there is none (fp32 itself). */
ob_dtype ob_saved_input_dtype(ob_format format);

/* x rounded to format (nearest even), as a step tensor of dtype `saved`
 * (from ob_saved_input_dtype, not F32). The rounded fp32 values are left in
 * the buffer: ob_saved_inputs_widen of the result returns them without
 * decoding. NULL with the ctx error set when out of memory. */
ob_tensor *ob_saved_inputs_round(ob_ctx *ctx, ob_saved_inputs *inputs, const ob_tensor *x, ob_format format,
                                 ob_dtype saved);
/* saved's values as F32 in the buffer (valid until the next round or
 * widen); saved itself when it is F32. */
ob_tensor *ob_saved_inputs_widen(ob_ctx *ctx, ob_saved_inputs *inputs, const ob_tensor *saved);
void ob_saved_inputs_free(ob_ctx *ctx, ob_saved_inputs *inputs);

#endif
