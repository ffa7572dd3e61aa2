/* The step arena's mark and rewind: memory taken after a mark is handed out
 * again after the rewind and uncharged from its category, the peak keeps
 * the high-water mark, a loop that rewinds per item needs one item's
 * memory, and a step that outgrew its block (rewinds included) is merged
 * into one block that holds the next identical step without growing. */
#include "nn/ob_ctx.h"
#include "ob_check.h"

#define MIB ((int64_t)1 << 20)

static ob_tensor *take(ob_ctx *ctx, int64_t bytes) {
    return ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(bytes / 4));
}

static void rewind_reuses_memory(ob_ctx *ctx) {
    take(ctx, MIB / 4); /* held across the rewind */
    int64_t before = ob_mem_current(ctx, OB_MEM_WORKSPACE);
    ob_arena_mark mark = ob_arena_mark_now(ctx);
    ob_tensor *first = take(ctx, MIB / 4);
    CHECK(first != NULL);
    CHECK(ob_mem_current(ctx, OB_MEM_WORKSPACE) > before);
    void *first_data = first ? first->data : NULL;
    ob_arena_rewind(ctx, &mark);
    CHECK(ob_mem_current(ctx, OB_MEM_WORKSPACE) == before);
    ob_tensor *again = take(ctx, MIB / 4);
    check(again && again->data == first_data, "the memory after the mark is handed out again");
    CHECK(ob_mem_peak(ctx, OB_MEM_WORKSPACE) >= before + MIB / 4);
    ob_ctx_step_reset(ctx);
    CHECK(ob_mem_current(ctx, OB_MEM_WORKSPACE) == 0);
}

/* Eight items of 8 MiB each, every one rewound: the step peaks near one
 * item, not eight. */
static int64_t loop_step(ob_ctx *ctx) {
    for (int item = 0; item < 8; item++) {
        ob_arena_mark mark = ob_arena_mark_now(ctx);
        if (!take(ctx, 8 * MIB)) return -1;
        ob_arena_rewind(ctx, &mark);
    }
    int64_t workspace_peak = ob_mem_peak(ctx, OB_MEM_WORKSPACE);
    ob_ctx_step_reset(ctx);
    return workspace_peak;
}

static void loop_needs_one_item(void) {
    ob_ctx *ctx = ob_ctx_new(&(ob_ctx_config){.threads = 1});
    int64_t peak = loop_step(ctx);
    check(peak >= 8 * MIB && peak < 9 * MIB, "a rewound loop's workspace peak is one item's");
    int64_t capacity = ob_arena_capacity(ctx);
    check(capacity < 10 * MIB, "the arena holds about one item after the step");
    loop_step(ctx);
    check(ob_arena_capacity(ctx) == capacity, "the next identical step does not grow the arena");
    ob_ctx_free(ctx);
}

/* Small first, then a rewound large item, then a smaller one held: the
 * first step spans several blocks; the merged block must hold the step's
 * peak (small + large), not what was held at its end (small + smaller). */
static int step_with_spill(ob_ctx *ctx) {
    if (!take(ctx, MIB / 2)) return 1;
    ob_arena_mark mark = ob_arena_mark_now(ctx);
    if (!take(ctx, 16 * MIB)) return 1;
    ob_arena_rewind(ctx, &mark);
    if (!take(ctx, 2 * MIB)) return 1;
    ob_ctx_step_reset(ctx);
    return 0;
}

static void merged_block_holds_the_peak(void) {
    ob_ctx *ctx = ob_ctx_new(&(ob_ctx_config){.threads = 1});
    CHECK(step_with_spill(ctx) == 0);
    int64_t capacity = ob_arena_capacity(ctx);
    check(capacity >= 16 * MIB + MIB / 2, "the merged block holds the step's peak");
    CHECK(step_with_spill(ctx) == 0);
    check(ob_arena_capacity(ctx) == capacity, "the second step fits the merged block");
    ob_ctx_free(ctx);
}

int main(void) {
    ob_ctx *ctx = ob_ctx_new(&(ob_ctx_config){.threads = 1});
    rewind_reuses_memory(ctx);
    ob_ctx_free(ctx);
    loop_needs_one_item();
    merged_block_holds_the_peak();
    return report_checks();
}
