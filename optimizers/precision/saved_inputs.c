#include "optimizers/precision/saved_inputs.h"

#include <string.h>
#ifdef __F16C__
#include <immintrin.h>
#endif

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

/* Exact conversions: every value is representable, so a cast or a shift
 * loses nothing. With F16C (-march=native on x86-64) binary16 converts 8
 * values per instruction; the compiler does not vectorise the casts at -O2. */
static void encode_f16(const float *values, uint16_t *codes, int64_t n) {
    int64_t blocks = n / 8;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
#ifdef __F16C__
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(values + 8 * b), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(codes + 8 * b), h);
#else
        for (int64_t i = 8 * b; i < 8 * b + 8; i++) {
            _Float16 h = (_Float16)values[i];
            memcpy(&codes[i], &h, sizeof h);
        }
#endif
    }
    for (int64_t i = 8 * blocks; i < n; i++) {
        _Float16 h = (_Float16)values[i];
        memcpy(&codes[i], &h, sizeof h);
    }
}

static void decode_f16(const uint16_t *codes, float *values, int64_t n) {
    int64_t blocks = n / 8;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
#ifdef __F16C__
        _mm256_storeu_ps(values + 8 * b, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(codes + 8 * b))));
#else
        for (int64_t i = 8 * b; i < 8 * b + 8; i++) {
            _Float16 h;
            memcpy(&h, &codes[i], sizeof h);
            values[i] = (float)h;
        }
#endif
    }
    for (int64_t i = 8 * blocks; i < n; i++) {
        _Float16 h;
        memcpy(&h, &codes[i], sizeof h);
        values[i] = (float)h;
    }
}

static void encode(const float *values, ob_tensor *saved) {
    int64_t n = saved->numel;
    uint16_t *codes = saved->data;
    if (saved->dtype == OB_F16) {
        encode_f16(values, codes, n);
        return;
    }
    const uint32_t *bits = (const uint32_t *)values;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) codes[i] = (uint16_t)(bits[i] >> 16);
}

static void decode(const ob_tensor *saved, float *values) {
    int64_t n = saved->numel;
    const uint16_t *codes = saved->data;
    if (saved->dtype == OB_F16) {
        decode_f16(codes, values, n);
        return;
    }
    uint32_t *bits = (uint32_t *)values;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) bits[i] = (uint32_t)codes[i] << 16;
}

ob_tensor *ob_saved_inputs_round(ob_ctx *ctx, ob_saved_inputs *inputs, const ob_tensor *x, ob_format format,
                                 ob_dtype saved_dtype) {
    ob_tensor *saved = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, saved_dtype, x->ndim, x->shape);
    ob_tensor *values = saved ? ob_reusable_f32_like(ctx, &inputs->values, x) : NULL;
    if (!values) return NULL;
    ob_format_round_array(ob_f32(x), ob_f32(values), x->numel, format, OB_ROUND_NEAREST_EVEN, NULL, 0, NULL);
    encode(ob_f32(values), saved);
    inputs->holds = saved->data;
    return saved;
}

ob_tensor *ob_saved_inputs_widen(ob_ctx *ctx, ob_saved_inputs *inputs, const ob_tensor *saved) {
    if (saved->dtype == OB_F32) return (ob_tensor *)saved;
    bool held = inputs->holds == saved->data;
    ob_tensor *values = ob_reusable_f32_like(ctx, &inputs->values, saved);
    if (!values) return NULL;
    if (!held) decode(saved, ob_f32(values));
    inputs->holds = saved->data;
    return values;
}

void ob_saved_inputs_free(ob_ctx *ctx, ob_saved_inputs *inputs) {
    ob_reusable_f32_free(ctx, &inputs->values);
    inputs->holds = NULL;
}
