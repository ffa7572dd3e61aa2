#include "nn/ob_ctx.h"

#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ob_backend.h"
#include "nn/ob_tape.h"
#include "nn/tape_impl.h"

extern void openblas_set_num_threads(int num_threads);

/* The arena hands out memory from a list of blocks. On reset, if a step
 * needed more than the first block, the blocks are replaced by one block of
 * the step's high-water mark, so the next identical step fits in one block
 * and does no malloc. */
typedef struct arena_block {
    struct arena_block *next;
    size_t capacity, used;
    unsigned char *base;
} arena_block;

struct ob_ctx {
    ob_ctx_config config;
    arena_block *blocks;
    size_t arena_used_total;                       /* this step, all blocks */
    int64_t arena_charged[OB_MEM_CATEGORY_COUNT];  /* released on reset */
    int64_t mem_current[OB_MEM_CATEGORY_COUNT];
    int64_t mem_peak[OB_MEM_CATEGORY_COUNT];
    int64_t mem_peak_total;
    bool grad_enabled;
    ob_batchnorm_reduce batchnorm_reduce; /* .sum NULL: local statistics */
    ob_tape tape;
    void *backend_state[OB_DEVICE_COUNT];
    ob_backend_state_release backend_state_release[OB_DEVICE_COUNT];
    char error[256];
};

#define ARENA_ALIGN 64
#define ARENA_MIN_BLOCK ((size_t)1 << 20)

ob_ctx *ob_ctx_new(const ob_ctx_config *config) {
    ob_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->config = *config;
    if (ctx->config.threads <= 0) ctx->config.threads = omp_get_num_procs();
    if (ctx->config.world_size <= 0) ctx->config.world_size = 1;
    ctx->grad_enabled = true;
    omp_set_num_threads(ctx->config.threads);
    openblas_set_num_threads(ctx->config.threads);
    return ctx;
}

static void free_blocks(arena_block *block) {
    while (block) {
        arena_block *next = block->next;
        free(block->base);
        free(block);
        block = next;
    }
}

void ob_ctx_free(ob_ctx *ctx) {
    if (!ctx) return;
    for (int d = 0; d < OB_DEVICE_COUNT; d++)
        if (ctx->backend_state[d]) ctx->backend_state_release[d](ctx->backend_state[d]);
    free_blocks(ctx->blocks);
    free(ctx->tape.nodes);
    free(ctx);
}

int ob_ctx_threads(const ob_ctx *ctx) { return ctx->config.threads; }
uint64_t ob_ctx_seed(const ob_ctx *ctx) { return ctx->config.seed; }
int ob_ctx_rank(const ob_ctx *ctx) { return ctx->config.rank; }

void *ob_ctx_backend_state(const ob_ctx *ctx, ob_device device) { return ctx->backend_state[device]; }
void ob_ctx_set_backend_state(ob_ctx *ctx, ob_device device, void *state, ob_backend_state_release release) {
    ctx->backend_state[device] = state;
    ctx->backend_state_release[device] = release;
}

void ob_mem_charge(ob_ctx *ctx, ob_mem_category category, int64_t bytes) {
    ctx->mem_current[category] += bytes;
    if (ctx->mem_current[category] > ctx->mem_peak[category])
        ctx->mem_peak[category] = ctx->mem_current[category];
    int64_t total = 0;
    for (int c = 0; c < OB_MEM_CATEGORY_COUNT; c++) total += ctx->mem_current[c];
    if (total > ctx->mem_peak_total) ctx->mem_peak_total = total;
}
int64_t ob_mem_current(const ob_ctx *ctx, ob_mem_category category) { return ctx->mem_current[category]; }
int64_t ob_mem_peak(const ob_ctx *ctx, ob_mem_category category) { return ctx->mem_peak[category]; }
int64_t ob_mem_peak_total(const ob_ctx *ctx) { return ctx->mem_peak_total; }

int64_t ob_arena_capacity(const ob_ctx *ctx) {
    int64_t capacity = 0;
    for (const arena_block *b = ctx->blocks; b; b = b->next) capacity += (int64_t)b->capacity;
    return capacity;
}

static arena_block *block_new(size_t capacity) {
    arena_block *block = calloc(1, sizeof *block);
    if (!block) return NULL;
    block->base = aligned_alloc(ARENA_ALIGN, capacity);
    if (!block->base) {
        free(block);
        return NULL;
    }
    block->capacity = capacity;
    return block;
}

void *ob_arena_alloc(ob_ctx *ctx, size_t bytes, ob_mem_category category) {
    size_t rounded = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    arena_block *block = ctx->blocks;
    /* Blocks are pushed at the head; only the head has room to grow into. */
    if (!block || block->capacity - block->used < rounded) {
        size_t capacity = rounded > ARENA_MIN_BLOCK ? rounded : ARENA_MIN_BLOCK;
        if (block && capacity < block->capacity) capacity = block->capacity;
        arena_block *fresh = block_new(capacity);
        if (!fresh) {
            ob_ctx_set_error(ctx, "out of memory: step arena needs %zu more bytes", rounded);
            return NULL;
        }
        fresh->next = ctx->blocks;
        ctx->blocks = block = fresh;
    }
    void *ptr = block->base + block->used;
    block->used += rounded;
    ctx->arena_used_total += rounded;
    ctx->arena_charged[category] += (int64_t)rounded;
    ob_mem_charge(ctx, category, (int64_t)rounded);
    return ptr;
}

void ob_ctx_step_reset(ob_ctx *ctx) {
    if (ctx->blocks && ctx->blocks->next) {
        size_t high_water = ctx->arena_used_total;
        free_blocks(ctx->blocks);
        ctx->blocks = block_new(high_water);
    } else if (ctx->blocks) {
        ctx->blocks->used = 0;
    }
    ctx->arena_used_total = 0;
    for (int c = 0; c < OB_MEM_CATEGORY_COUNT; c++) {
        ob_mem_charge(ctx, c, -ctx->arena_charged[c]);
        ctx->arena_charged[c] = 0;
    }
    ctx->tape.length = 0;
    ctx->tape.contribution_scale = 0;
}

static void fill_shape(ob_tensor *t, ob_mem_category category, ob_dtype dtype, int ndim,
                       const int64_t *shape) {
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->device = OB_CPU;
    t->category = category;
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= shape[i];
    }
}

ob_tensor *ob_tensor_new(ob_ctx *ctx, ob_mem_category category, ob_dtype dtype, int ndim,
                         const int64_t *shape) {
    ob_tensor *t = malloc(sizeof *t);
    if (!t) return NULL;
    fill_shape(t, category, dtype, ndim, shape);
    const ob_backend *backend = ob_backend_get(t->device);
    size_t bytes = ob_tensor_bytes(t);
    t->data = backend->alloc(bytes);
    if (!t->data) {
        ob_ctx_set_error(ctx, "out of memory: %zu bytes for a %s tensor", bytes,
                         ob_mem_category_name(category));
        free(t);
        return NULL;
    }
    backend->zero(t->data, bytes);
    ob_mem_charge(ctx, category, (int64_t)bytes);
    return t;
}

void ob_tensor_free(ob_ctx *ctx, ob_tensor *t) {
    if (!t || t->in_arena) return;
    ob_mem_charge(ctx, t->category, -(int64_t)ob_tensor_bytes(t));
    ob_backend_get(t->device)->release(t->data);
    free(t);
}

ob_tensor *ob_tensor_temp(ob_ctx *ctx, ob_mem_category category, ob_dtype dtype, int ndim,
                          const int64_t *shape) {
    /* The header is bookkeeping, charged to workspace, not to the tensor's
     * category, so activation peaks count data bytes only. */
    ob_tensor *t = ob_arena_alloc(ctx, sizeof *t, OB_MEM_WORKSPACE);
    if (!t) return NULL;
    fill_shape(t, category, dtype, ndim, shape);
    t->in_arena = true;
    t->data = ob_arena_alloc(ctx, ob_tensor_bytes(t), category);
    return t->data ? t : NULL;
}

ob_tensor *ob_tensor_temp_zeroed(ob_ctx *ctx, ob_mem_category category, ob_dtype dtype, int ndim,
                                 const int64_t *shape) {
    ob_tensor *t = ob_tensor_temp(ctx, category, dtype, ndim, shape);
    if (t) ob_backend_get(t->device)->zero(t->data, ob_tensor_bytes(t));
    return t;
}

void ob_ctx_set_batchnorm_reduce(ob_ctx *ctx, const ob_batchnorm_reduce *reduce) {
    ctx->batchnorm_reduce = reduce ? *reduce : (ob_batchnorm_reduce){0};
}

const ob_batchnorm_reduce *ob_ctx_batchnorm_reduce(const ob_ctx *ctx) {
    return ctx->batchnorm_reduce.sum ? &ctx->batchnorm_reduce : NULL;
}

void ob_set_grad_enabled(ob_ctx *ctx, bool enabled) { ctx->grad_enabled = enabled; }
bool ob_grad_enabled(const ob_ctx *ctx) { return ctx->grad_enabled; }

void ob_ctx_set_error(ob_ctx *ctx, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(ctx->error, sizeof ctx->error, fmt, args);
    va_end(args);
}
const char *ob_ctx_error(const ob_ctx *ctx) { return ctx->error; }

ob_tape *ob_ctx_tape(ob_ctx *ctx) { return &ctx->tape; }
