#include "optimizers/kfac/kfac_storage.h"

#include <string.h>

#include "optimizers/precision/ob_format.h"

static uint16_t narrow_code(ob_dtype dtype, double value) {
    return dtype == OB_F16 ? ob_fp16_from_float((float)value, OB_ROUND_NEAREST_EVEN, 0)
                           : ob_bf16_from_float((float)value, OB_ROUND_NEAREST_EVEN, 0);
}

static double wide_value(ob_dtype dtype, uint16_t code) {
    return dtype == OB_F16 ? ob_fp16_to_float(code) : ob_bf16_to_float(code);
}

static double value_at(const ob_tensor *t, int64_t i) {
    return t->dtype == OB_F64 ? ((const double *)t->data)[i] : ((const float *)t->data)[i];
}

static void set_value(ob_tensor *t, int64_t i, double value) {
    if (t->dtype == OB_F64)
        ((double *)t->data)[i] = value;
    else
        ((float *)t->data)[i] = (float)value;
}

/* Rounding an F64 value to fp16 goes through fp32 first: the double
 * rounding can move a value that lies within 2^-29 of a half-way point, far
 * below anything K-FAC's damping resolves. */
void ob_kfac_store(const ob_tensor *value, ob_tensor *stored) {
    if (value == stored) return;
    if (!ob_dtype_is_half(stored->dtype)) {
        memcpy(stored->data, value->data, ob_tensor_bytes(stored));
        return;
    }
    uint16_t *codes = stored->data;
    for (int64_t i = 0; i < stored->numel; i++) codes[i] = narrow_code(stored->dtype, value_at(value, i));
}

void ob_kfac_store_identity(ob_tensor *stored) {
    int64_t n = stored->shape[0];
    uint16_t *codes = stored->data, one = narrow_code(stored->dtype, 1.0), zero = narrow_code(stored->dtype, 0.0);
    for (int64_t i = 0; i < n * n; i++) codes[i] = i % (n + 1) == 0 ? one : zero;
}

void ob_kfac_wide_scratch_init(ob_kfac_wide_scratch *scratch, ob_dtype wide,
                               const int64_t max_elements[OB_KFAC_WIDE_BUFFERS]) {
    memset(scratch, 0, sizeof *scratch);
    scratch->wide = wide;
    memcpy(scratch->max_elements, max_elements, sizeof scratch->max_elements);
}

void ob_kfac_wide_scratch_free(ob_ctx *ctx, ob_kfac_wide_scratch *scratch) {
    for (int i = 0; i < OB_KFAC_WIDE_BUFFERS; i++)
        if (scratch->buffer[i]) ob_tensor_free(ctx, scratch->buffer[i]);
    memset(scratch->buffer, 0, sizeof scratch->buffer);
}

ob_tensor *ob_kfac_output_for(ob_ctx *ctx, ob_kfac_wide_scratch *scratch, int which, ob_tensor *stored) {
    if (stored->dtype == scratch->wide) return stored;
    if (stored->numel > scratch->max_elements[which]) {
        ob_ctx_set_error(ctx, "K-FAC: a stored tensor of %lld elements exceeds wide scratch buffer %d (%lld)",
                         (long long)stored->numel, which, (long long)scratch->max_elements[which]);
        return NULL;
    }
    if (!scratch->buffer[which]) {
        scratch->buffer[which] =
            ob_tensor_new(ctx, OB_MEM_WORKSPACE, scratch->wide, OB_SHAPE(scratch->max_elements[which]));
        if (!scratch->buffer[which]) {
            ob_ctx_set_error(ctx, "K-FAC: out of memory for a wide copy of narrow state");
            return NULL;
        }
    }
    return ob_tensor_view_shaped(&scratch->view[which], scratch->buffer[which], stored);
}

ob_tensor *ob_kfac_widened(ob_ctx *ctx, ob_kfac_wide_scratch *scratch, int which, ob_tensor *stored) {
    ob_tensor *value = ob_kfac_output_for(ctx, scratch, which, stored);
    if (!value || value == stored) return value;
    const uint16_t *codes = stored->data;
    for (int64_t i = 0; i < stored->numel; i++) set_value(value, i, wide_value(stored->dtype, codes[i]));
    return value;
}
