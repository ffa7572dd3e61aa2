#include "optimizers/precision/saved_inputs.h"

#include <string.h>

#include "optimizers/precision/ob_half_codes.h"

ob_dtype ob_saved_input_dtype(ob_format format) {
    switch (format) {
    case OB_FORMAT_FP16:
    case OB_FORMAT_E4M3: /* 3 mantissa bits, exponents 2^-9 .. 2^8: inside binary16 */
    case OB_FORMAT_E5M2: /* binary16 with 8 mantissa bits dropped */
        return OB_F16;
    case OB_FORMAT_BF16:
        return OB_BF16;
    default:
        return OB_F32;
    }
}

ob_tensor *ob_reusable_f32_like(ob_ctx *ctx, ob_reusable_f32 *reusable, const ob_tensor *like) {
    if (!reusable->buffer || reusable->buffer->numel < like->numel) {
        if (reusable->buffer) ob_tensor_free(ctx, reusable->buffer);
        reusable->buffer = ob_tensor_new(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(like->numel));
        if (!reusable->buffer) {
            ob_ctx_set_error(ctx, "precision: out of memory for a reusable fp32 buffer");
            return NULL;
        }
    }
    return ob_tensor_view_shaped(&reusable->view, reusable->buffer, like);
}

void ob_reusable_f32_free(ob_ctx *ctx, ob_reusable_f32 *reusable) {
    if (reusable->buffer) ob_tensor_free(ctx, reusable->buffer);
    memset(reusable, 0, sizeof *reusable);
}

ob_tensor *ob_saved_inputs_round(ob_ctx *ctx, ob_saved_inputs *inputs, const ob_tensor *x, ob_format format,
                                 ob_dtype saved_dtype) {
    ob_tensor *saved = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, saved_dtype, x->ndim, x->shape);
    ob_tensor *values = saved ? ob_reusable_f32_like(ctx, &inputs->values, x) : NULL;
    if (!values) return NULL;
    ob_format_round_array(ob_f32(x), ob_f32(values), x->numel, format, OB_ROUND_NEAREST_EVEN, NULL, 0, NULL);
    ob_half_encode(saved->dtype, ob_f32(values), saved->data, saved->numel); /* exact: values are in the format */
    inputs->holds = saved->data;
    return saved;
}

ob_tensor *ob_saved_inputs_widen(ob_ctx *ctx, ob_saved_inputs *inputs, const ob_tensor *saved) {
    if (saved->dtype == OB_F32) return (ob_tensor *)saved;
    bool held = inputs->holds == saved->data;
    ob_tensor *values = ob_reusable_f32_like(ctx, &inputs->values, saved);
    if (!values) return NULL;
    if (!held) ob_half_decode(saved->dtype, saved->data, ob_f32(values), saved->numel);
    inputs->holds = saved->data;
    return values;
}

void ob_saved_inputs_free(ob_ctx *ctx, ob_saved_inputs *inputs) {
    ob_reusable_f32_free(ctx, &inputs->values);
    inputs->holds = NULL;
}
