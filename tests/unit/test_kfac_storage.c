/* K-FAC's narrow storage (optimizers/kfac/kfac_storage.c): storing rounds
 * to nearest even, checked against references computed here without the
 * project's format code (the compiler's _Float16 conversion for binary16,
 * integer bit arithmetic for bfloat16); widening is exact; the identity is
 * exact; the wide scratch reuses one persistent buffer per index, shapes it
 * like the stored tensor, charges workspace once and refuses a tensor
 * larger than it was sized for; wide tensors pass through untouched. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nn/ob_rng.h"
#include "optimizers/kfac/kfac_storage.h"

#include "ob_check.h"

/* Values over many binades: fp16's subnormals (below 2^-14), its normal
 * range, bf16-only magnitudes, and exact fp16 ties (odd multiples of half
 * an fp16 ulp), with both signs. */
static float test_value(int64_t i) {
    ob_rng_stream stream = ob_rng_stream_make(5, OB_RNG_TEST, 0, 1);
    double u = ob_rng_uniform(&stream, (uint64_t)i);
    double sign = i % 2 ? -1.0 : 1.0;
    switch (i % 4) {
    case 0: return (float)(sign * ldexp(1.0 + u, (int)(i % 40) - 30)); /* 2^-30 .. 2^10 */
    case 1: return (float)(sign * u * 4.0);
    case 2: return (float)(sign * ldexp(2.0 * (double)(i % 1024) + 1.0, -11)); /* ties at 2^-1 ulp 2^-11 */
    default: return (float)(sign * ldexp(u, (int)(i % 60) - 40));
    }
}

static float fp16_reference(float x) { return (float)(_Float16)x; }

static float bf16_reference(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits += 0x7fffu + ((bits >> 16) & 1u); /* round half to even on the top 16 bits */
    bits &= 0xffff0000u;
    float rounded;
    memcpy(&rounded, &bits, sizeof rounded);
    return rounded;
}

/* store then widen n values through a narrow tensor; every one must equal its reference. */
static void check_round_trip(ob_ctx *ctx, ob_dtype narrow, ob_dtype wide, float (*reference)(float)) {
    enum { N = 20000 };
    ob_tensor *value = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, wide, OB_SHAPE(N));
    ob_tensor *stored = ob_tensor_new(ctx, OB_MEM_KFAC_FACTORS, narrow, OB_SHAPE(N));
    for (int64_t i = 0; i < N; i++) {
        if (wide == OB_F64)
            ob_f64(value)[i] = test_value(i);
        else
            ob_f32(value)[i] = test_value(i);
    }
    ob_kfac_store(value, stored);
    ob_kfac_wide_scratch scratch;
    ob_kfac_wide_scratch_init(&scratch, wide, (int64_t[OB_KFAC_WIDE_BUFFERS]){N, N, N, N});
    ob_tensor *back = ob_kfac_widened(ctx, &scratch, 0, stored);
    int64_t wrong = 0;
    for (int64_t i = 0; back && i < N; i++) {
        double got = wide == OB_F64 ? ob_f64(back)[i] : ob_f32(back)[i];
        wrong += got != (double)reference(test_value(i));
    }
    char what[128];
    snprintf(what, sizeof what, "%s stored, %s widened: %lld of %d values differ from RNE", ob_dtype_name(narrow),
             ob_dtype_name(wide), (long long)wrong, N);
    check(back && wrong == 0, what);
    ob_kfac_wide_scratch_free(ctx, &scratch);
    ob_tensor_free(ctx, stored);
}

static void test_identity(ob_ctx *ctx) {
    for (ob_dtype narrow = OB_F16; narrow <= OB_BF16; narrow++) {
        ob_tensor *stored = ob_tensor_new(ctx, OB_MEM_KFAC_FACTORS, narrow, OB_SHAPE(7, 7));
        ob_kfac_store_identity(stored);
        ob_kfac_wide_scratch scratch;
        ob_kfac_wide_scratch_init(&scratch, OB_F32, (int64_t[OB_KFAC_WIDE_BUFFERS]){0, 49, 0, 0});
        ob_tensor *wide = ob_kfac_widened(ctx, &scratch, 1, stored);
        bool exact = wide != NULL;
        for (int64_t r = 0; exact && r < 7; r++)
            for (int64_t c = 0; c < 7; c++) exact &= ob_f32(wide)[r * 7 + c] == (r == c ? 1.0f : 0.0f);
        check(exact, "identity: exactly I after widening");
        ob_kfac_wide_scratch_free(ctx, &scratch);
        ob_tensor_free(ctx, stored);
    }
}

static void test_scratch(ob_ctx *ctx) {
    ob_tensor *big = ob_tensor_new(ctx, OB_MEM_KFAC_INVERSES, OB_F16, OB_SHAPE(6, 5));
    ob_tensor *small = ob_tensor_new(ctx, OB_MEM_KFAC_INVERSES, OB_BF16, OB_SHAPE(4));
    ob_tensor *plain = ob_tensor_new(ctx, OB_MEM_KFAC_INVERSES, OB_F32, OB_SHAPE(3, 3));
    int64_t workspace_before = ob_mem_current(ctx, OB_MEM_WORKSPACE);
    ob_kfac_wide_scratch scratch;
    ob_kfac_wide_scratch_init(&scratch, OB_F32, (int64_t[OB_KFAC_WIDE_BUFFERS]){30, 30, 30, 30});
    ob_tensor *first = ob_kfac_widened(ctx, &scratch, 2, big);
    void *first_data = first ? first->data : NULL;
    CHECK(first && first->ndim == 2 && first->shape[0] == 6 && first->shape[1] == 5 && first->numel == 30 &&
          first->dtype == OB_F32);
    ob_tensor *second = ob_kfac_output_for(ctx, &scratch, 2, small);
    CHECK(second && second->data == first_data && second->ndim == 1 && second->shape[0] == 4 && second->numel == 4);
    CHECK(ob_mem_current(ctx, OB_MEM_WORKSPACE) - workspace_before == 30 * 4); /* one buffer, charged once */
    CHECK(ob_kfac_widened(ctx, &scratch, 3, plain) == plain);                   /* wide: no copy, no buffer */
    CHECK(ob_mem_current(ctx, OB_MEM_WORKSPACE) - workspace_before == 30 * 4);
    ob_kfac_wide_scratch_free(ctx, &scratch);
    CHECK(ob_mem_current(ctx, OB_MEM_WORKSPACE) == workspace_before);
    /* each buffer has its own size: 30 elements fit buffer 1, not buffer 0 */
    ob_kfac_wide_scratch_init(&scratch, OB_F32, (int64_t[OB_KFAC_WIDE_BUFFERS]){29, 30, 0, 0});
    ob_tensor *too_big = ob_kfac_widened(ctx, &scratch, 0, big);
    CHECK(too_big == NULL && strstr(ob_ctx_error(ctx), "exceeds wide scratch buffer 0") != NULL);
    ob_tensor *fits = ob_kfac_widened(ctx, &scratch, 1, big);
    CHECK(fits && fits->numel == 30);
    CHECK(ob_mem_current(ctx, OB_MEM_WORKSPACE) - workspace_before == 30 * 4);
    ob_kfac_wide_scratch_free(ctx, &scratch);
    ob_tensor_free(ctx, big);
    ob_tensor_free(ctx, small);
    ob_tensor_free(ctx, plain);
}

/* Storing into a wide tensor copies; storing a tensor into itself is a no-op. */
static void test_wide_store(ob_ctx *ctx) {
    ob_tensor *value = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(5));
    ob_tensor *stored = ob_tensor_new(ctx, OB_MEM_KFAC_FACTORS, OB_F32, OB_SHAPE(5));
    for (int i = 0; i < 5; i++) ob_f32(value)[i] = test_value(i);
    ob_kfac_store(value, stored);
    CHECK(memcmp(value->data, stored->data, 5 * sizeof(float)) == 0);
    ob_kfac_store(stored, stored);
    CHECK(memcmp(value->data, stored->data, 5 * sizeof(float)) == 0);
    CHECK(!ob_dtype_is_half(OB_F32) && !ob_dtype_is_half(OB_F64) && ob_dtype_is_half(OB_F16) &&
          ob_dtype_is_half(OB_BF16));
    ob_tensor_free(ctx, stored);
}

int main(void) {
    ob_ctx *ctx = ob_ctx_new(&(ob_ctx_config){.threads = 1, .seed = 1});
    check_round_trip(ctx, OB_F16, OB_F32, fp16_reference);
    check_round_trip(ctx, OB_BF16, OB_F32, bf16_reference);
    check_round_trip(ctx, OB_F16, OB_F64, fp16_reference);
    check_round_trip(ctx, OB_BF16, OB_F64, bf16_reference);
    test_identity(ctx);
    test_scratch(ctx);
    test_wide_store(ctx);
    ob_ctx_free(ctx);
    return report_checks();
}
