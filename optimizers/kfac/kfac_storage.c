#include "optimizers/kfac/kfac_storage.h"

#include <string.h>

#include "optimizers/precision/ob_half_codes.h"

/* F32 values convert in one pass over the array. F64 values (the
 * double-precision tests) go element by element through fp32: the double
 * rounding can move a value that lies within 2^-29 of a half-way point, far
 * below anything K-FAC's damping resolves. */
void ob_kfac_store(const ob_tensor *value, ob_tensor *stored) {
    if (value == stored) return;
    if (!ob_dtype_is_half(stored->dtype)) {
        memcpy(stored->data, value->data, ob_tensor_bytes(stored));
        return;
    }
    uint16_t *codes = stored->data;
    if (value->dtype == OB_F32) {
        ob_half_encode(stored->dtype, value->data, codes, stored->numel);
        return;
    }
    const double *wide = value->data;
    for (int64_t i = 0; i < stored->numel; i++) {
        float narrowed = (float)wide[i];
        ob_half_encode(stored->dtype, &narrowed, &codes[i], 1);
    }
}

void ob_kfac_store_identity(ob_tensor *stored) {
    int64_t n = stored->shape[0];
    const float one_zero[2] = {1.0f, 0.0f};
    uint16_t codes[2], *stored_codes = stored->data;
    ob_half_encode(stored->dtype, one_zero, codes, 2);
    for (int64_t i = 0; i < n * n; i++) stored_codes[i] = i % (n + 1) == 0 ? codes[0] : codes[1];
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
    if (value->dtype == OB_F32) {
        ob_half_decode(stored->dtype, codes, value->data, stored->numel);
        return value;
    }
    double *wide = value->data;
    for (int64_t i = 0; i < stored->numel; i++) {
        float widened;
        ob_half_decode(stored->dtype, &codes[i], &widened, 1);
        wide[i] = widened;
    }
    return value;
}
