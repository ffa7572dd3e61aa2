/* The 2-byte copies of rounded GEMM inputs (optimizers/precision/
 * saved_inputs.c): for fp16, bf16, E4M3 and E5M2, rounding an input and
 * widening its 2-byte copy gives, bit for bit, what ob_format_round_array
 * gives in fp32 (values over many binades, subnormals, overflow to inf or
 * saturation, signed zeros, NaN); the copy is half the bytes; widening a
 * copy other than the last one rounded decodes it instead of returning the
 * buffer's stale values; the reusable buffer grows to the largest request,
 * charges workspace only for that, and shapes its view like the request;
 * formats without a 2-byte holder say so. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nn/ob_rng.h"
#include "optimizers/precision/saved_inputs.h"

#include "ob_check.h"

enum { N = 30000 };

static float test_value(int64_t i) {
    ob_rng_stream stream = ob_rng_stream_make(11, OB_RNG_TEST, 0, 2);
    double u = ob_rng_uniform(&stream, (uint64_t)i);
    double sign = i % 2 ? -1.0 : 1.0;
    switch (i % 5) {
    case 0: return (float)(sign * ldexp(1.0 + u, (int)(i % 70) - 40)); /* 2^-40 .. 2^29 */
    case 1: return (float)(sign * u * 600.0);                          /* past E4M3's 448 */
    case 2: return (float)(sign * ldexp(u, -14 - (int)(i % 12)));      /* fp16 / fp8 subnormals */
    case 3: return i % 3 == 0 ? (float)(sign * 0.0) : (float)(sign * 1e6 * (1.0 + u)); /* zeros, fp16 overflow */
    default: return i % 7 == 0 ? NAN : (float)(sign * u);
    }
}

/* The same bits, or both NaN (rounding canonicalises NaN payloads). */
static bool same_value(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof a) == 0;
}

static void check_format(ob_ctx *ctx, ob_format format) {
    ob_dtype saved_dtype = ob_saved_input_dtype(format);
    ob_tensor *x = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, OB_F32, OB_SHAPE(N / 100, 100));
    ob_tensor *want = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(N));
    for (int64_t i = 0; i < N; i++) ob_f32(x)[i] = test_value(i);
    ob_format_round_array(ob_f32(x), ob_f32(want), N, format, OB_ROUND_NEAREST_EVEN, NULL, 0, NULL);

    ob_saved_inputs inputs = {0};
    ob_tensor *saved = ob_saved_inputs_round(ctx, &inputs, x, format, saved_dtype);
    char what[160];
    snprintf(what, sizeof what, "%s: a %s copy of the input's shape", ob_format_name(format),
             ob_dtype_name(saved_dtype));
    check(saved && saved->dtype == saved_dtype && ob_tensor_bytes(saved) == N * 2 && saved->ndim == 2 &&
              saved->shape[0] == N / 100 && saved->shape[1] == 100,
          what);
    if (!saved) return;
    /* The values the forward GEMM reads (held in the buffer, not decoded). */
    ob_tensor *forward = ob_saved_inputs_widen(ctx, &inputs, saved);
    /* Another input rounded in between: the backward must decode. */
    ob_tensor *other = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, OB_F32, OB_SHAPE(N));
    for (int64_t i = 0; i < N; i++) ob_f32(other)[i] = 3.0f;
    int64_t forward_wrong = 0, backward_wrong = 0;
    for (int64_t i = 0; forward && i < N; i++) forward_wrong += !same_value(ob_f32(forward)[i], ob_f32(want)[i]);
    ob_tensor *other_saved = ob_saved_inputs_round(ctx, &inputs, other, format, saved_dtype);
    ob_tensor *backward = other_saved ? ob_saved_inputs_widen(ctx, &inputs, saved) : NULL;
    for (int64_t i = 0; backward && i < N; i++) backward_wrong += !same_value(ob_f32(backward)[i], ob_f32(want)[i]);
    snprintf(what, sizeof what, "%s: forward values %lld wrong, widened after another input %lld wrong (of %d)",
             ob_format_name(format), (long long)forward_wrong, (long long)backward_wrong, N);
    check(forward && backward && forward_wrong == 0 && backward_wrong == 0 && backward->ndim == 2, what);
    ob_saved_inputs_free(ctx, &inputs);
}

static void test_reusable(ob_ctx *ctx) {
    ob_tensor *small = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, OB_F32, OB_SHAPE(2, 3));
    ob_tensor *big = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, OB_F32, OB_SHAPE(4, 5));
    int64_t before = ob_mem_current(ctx, OB_MEM_WORKSPACE); /* after the step tensors' headers */
    ob_reusable_f32 reusable = {0};
    ob_tensor *a = ob_reusable_f32_like(ctx, &reusable, small);
    CHECK(a && a->ndim == 2 && a->shape[1] == 3 && a->numel == 6);
    CHECK(ob_mem_current(ctx, OB_MEM_WORKSPACE) - before == 6 * 4);
    ob_tensor *b = ob_reusable_f32_like(ctx, &reusable, big); /* grows: the old buffer goes */
    CHECK(b && b->numel == 20 && ob_mem_current(ctx, OB_MEM_WORKSPACE) - before == 20 * 4);
    ob_tensor *c = ob_reusable_f32_like(ctx, &reusable, small); /* fits: same memory */
    CHECK(c && c->numel == 6 && c->data == reusable.buffer->data &&
          ob_mem_current(ctx, OB_MEM_WORKSPACE) - before == 20 * 4);
    ob_reusable_f32_free(ctx, &reusable);
    CHECK(ob_mem_current(ctx, OB_MEM_WORKSPACE) == before);
}

int main(void) {
    ob_ctx *ctx = ob_ctx_new(&(ob_ctx_config){.threads = 1, .seed = 1});
    CHECK(ob_saved_input_dtype(OB_FORMAT_FP16) == OB_F16 && ob_saved_input_dtype(OB_FORMAT_E4M3) == OB_F16 &&
          ob_saved_input_dtype(OB_FORMAT_E5M2) == OB_F16 && ob_saved_input_dtype(OB_FORMAT_BF16) == OB_BF16 &&
          ob_saved_input_dtype(OB_FORMAT_FP32) == OB_F32);
    for (ob_format format = OB_FORMAT_FP16; format < OB_FORMAT_COUNT; format++) check_format(ctx, format);
    test_reusable(ctx);
    ob_ctx_free(ctx);
    return report_checks();
}
