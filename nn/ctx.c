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

/* An arena hands out memory from a list of blocks. On reset, if a step
 * needed more than the first block, the blocks are replaced by one block of
 * the step's high-water mark, so the next identical step fits in one block
 * and does no malloc. Block memory comes from the backend of the arena's
 * device; the block records themselves are host memory. */
typedef struct arena_block {
    struct arena_block *next;
    size_t capacity, used;
    unsigned char *base;
} arena_block;

typedef struct {
    arena_block *blocks;
    size_t used_total; /* this step, all blocks */
    size_t peak_total; /* the most used_total held this step: rewinds lower used_total */
} arena;

struct ob_ctx {
    ob_ctx_config config;
    /* [OB_CPU]: headers, records and CPU tensor data; [device]: the tensor
     * data of a ctx on another device */
    arena arenas[OB_DEVICE_COUNT];
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
    if ((unsigned)config->device >= OB_DEVICE_COUNT || !ob_backend_get(config->device))
        return NULL; /* not built with that device's back end */
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

static void free_blocks(ob_ctx *ctx, ob_device device, arena_block *block) {
    const ob_backend *backend = ob_backend_get(device);
    while (block) {
        arena_block *next = block->next;
        backend->release(ctx, block->base, block->capacity);
        free(block);
        block = next;
    }
}

void ob_ctx_free(ob_ctx *ctx) {
    if (!ctx) return;
    /* Blocks first: device blocks go back to the back end's cache, which
     * its state's release then returns to the driver. */
    for (int d = 0; d < OB_DEVICE_COUNT; d++) free_blocks(ctx, d, ctx->arenas[d].blocks);
    for (int d = 0; d < OB_DEVICE_COUNT; d++)
        if (ctx->backend_state[d]) ctx->backend_state_release[d](ctx->backend_state[d]);
    free(ctx->tape.nodes);
    free(ctx);
}

int ob_ctx_threads(const ob_ctx *ctx) { return ctx->config.threads; }
uint64_t ob_ctx_seed(const ob_ctx *ctx) { return ctx->config.seed; }
int ob_ctx_rank(const ob_ctx *ctx) { return ctx->config.rank; }
ob_device ob_ctx_device(const ob_ctx *ctx) { return ctx->config.device; }

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
    for (int d = 0; d < OB_DEVICE_COUNT; d++)
        for (const arena_block *b = ctx->arenas[d].blocks; b; b = b->next) capacity += (int64_t)b->capacity;
    return capacity;
}

/* Device backends align their blocks at least as the host's (CUDA: 256). */
static arena_block *block_new(ob_ctx *ctx, ob_device device, size_t capacity) {
    arena_block *block = calloc(1, sizeof *block);
    if (!block) return NULL;
    block->base = ob_backend_get(device)->alloc(ctx, capacity);
    if (!block->base) {
        free(block);
        return NULL;
    }
    block->capacity = capacity;
    return block;
}

static void *arena_take(ob_ctx *ctx, ob_device device, size_t bytes, ob_mem_category category) {
    arena *a = &ctx->arenas[device];
    size_t rounded = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    arena_block *block = a->blocks;
    /* Blocks are pushed at the head; only the head has room to grow into. */
    if (!block || block->capacity - block->used < rounded) {
        size_t capacity = rounded > ARENA_MIN_BLOCK ? rounded : ARENA_MIN_BLOCK;
        if (block && capacity < block->capacity) capacity = block->capacity;
        arena_block *fresh = block_new(ctx, device, capacity);
        if (!fresh) {
            ob_ctx_set_error(ctx, "out of memory: the %s step arena needs %zu more bytes",
                             ob_backend_get(device)->name, rounded);
            return NULL;
        }
        fresh->next = a->blocks;
        a->blocks = block = fresh;
    }
    void *ptr = block->base + block->used;
    block->used += rounded;
    a->used_total += rounded;
    if (a->used_total > a->peak_total) a->peak_total = a->used_total;
    ctx->arena_charged[category] += (int64_t)rounded;
    ob_mem_charge(ctx, category, (int64_t)rounded);
    return ptr;
}

void *ob_arena_alloc(ob_ctx *ctx, size_t bytes, ob_mem_category category) {
    return arena_take(ctx, OB_CPU, bytes, category);
}

/* In one block used equals used_total, rewinds included, so one block of
 * the step's peak holds the next identical step. */
static void arena_reset(ob_ctx *ctx, ob_device device) {
    arena *a = &ctx->arenas[device];
    if (a->blocks && a->blocks->next) {
        size_t high_water = a->peak_total;
        free_blocks(ctx, device, a->blocks);
        a->blocks = block_new(ctx, device, high_water);
    } else if (a->blocks) {
        a->blocks->used = 0;
    }
    a->used_total = 0;
    a->peak_total = 0;
}

ob_arena_mark ob_arena_mark_now(const ob_ctx *ctx) {
    ob_arena_mark mark = {0};
    for (int d = 0; d < OB_DEVICE_COUNT; d++) {
        const arena *a = &ctx->arenas[d];
        mark.block[d] = a->blocks;
        mark.used[d] = a->blocks ? a->blocks->used : 0;
        mark.used_total[d] = a->used_total;
    }
    for (int c = 0; c < OB_MEM_CATEGORY_COUNT; c++) mark.charged[c] = ctx->arena_charged[c];
    return mark;
}

/* Blocks pushed since the mark are emptied and the next take goes to the
 * newest of them; the tail of the mark's block then stays unused until the
 * step ends, when the blocks are merged into one. */
static void arena_rewind(arena *a, const void *mark_block, size_t mark_used, size_t mark_used_total) {
    arena_block *block = a->blocks;
    for (; block && block != mark_block; block = block->next) block->used = 0;
    if (block && block == a->blocks) block->used = mark_used;
    a->used_total = mark_used_total;
}

/* Gives back, per category, what the arena charged beyond `charged`; a
 * step reset is the case of all zeros. */
static void arena_uncharge_to(ob_ctx *ctx, const int64_t charged[OB_MEM_CATEGORY_COUNT]) {
    for (int c = 0; c < OB_MEM_CATEGORY_COUNT; c++) {
        ob_mem_charge(ctx, c, -(ctx->arena_charged[c] - charged[c]));
        ctx->arena_charged[c] = charged[c];
    }
}

void ob_arena_rewind(ob_ctx *ctx, const ob_arena_mark *mark) {
    for (int d = 0; d < OB_DEVICE_COUNT; d++)
        arena_rewind(&ctx->arenas[d], mark->block[d], mark->used[d], mark->used_total[d]);
    arena_uncharge_to(ctx, mark->charged);
}

void ob_ctx_step_reset(ob_ctx *ctx) {
    static const int64_t nothing_charged[OB_MEM_CATEGORY_COUNT] = {0};
    for (int d = 0; d < OB_DEVICE_COUNT; d++) arena_reset(ctx, d);
    arena_uncharge_to(ctx, nothing_charged);
    ctx->tape.length = 0;
    ctx->tape.contribution_scale = 0;
}

static void fill_shape(ob_tensor *t, ob_device device, ob_mem_category category, ob_dtype dtype, int ndim,
                       const int64_t *shape) {
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->device = device;
    t->category = category;
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= shape[i];
    }
}

ob_tensor *ob_tensor_new_on(ob_ctx *ctx, ob_device device, ob_mem_category category, ob_dtype dtype,
                            int ndim, const int64_t *shape) {
    const ob_backend *backend = ob_backend_get(device);
    if (!backend) {
        ob_ctx_set_error(ctx, "tensor: this build has no back end for device %d", (int)device);
        return NULL;
    }
    ob_tensor *t = malloc(sizeof *t);
    if (!t) return NULL;
    fill_shape(t, device, category, dtype, ndim, shape);
    size_t bytes = ob_tensor_bytes(t);
    t->data = backend->alloc(ctx, bytes);
    if (!t->data) {
        ob_ctx_set_error(ctx, "out of memory: %zu bytes for a %s tensor on %s", bytes,
                         ob_mem_category_name(category), backend->name);
        free(t);
        return NULL;
    }
    backend->zero(ctx, t->data, bytes);
    ob_mem_charge(ctx, category, (int64_t)bytes);
    return t;
}

ob_tensor *ob_tensor_new(ob_ctx *ctx, ob_mem_category category, ob_dtype dtype, int ndim,
                         const int64_t *shape) {
    return ob_tensor_new_on(ctx, ctx->config.device, category, dtype, ndim, shape);
}

void ob_tensor_free(ob_ctx *ctx, ob_tensor *t) {
    if (!t || t->in_arena) return;
    size_t bytes = ob_tensor_bytes(t);
    ob_mem_charge(ctx, t->category, -(int64_t)bytes);
    ob_backend_get(t->device)->release(ctx, t->data, bytes);
    free(t);
}

ob_tensor *ob_tensor_temp(ob_ctx *ctx, ob_mem_category category, ob_dtype dtype, int ndim,
                          const int64_t *shape) {
    /* The header is bookkeeping, charged to workspace, not to the tensor's
     * category, so activation peaks count data bytes only. */
    ob_tensor *t = ob_arena_alloc(ctx, sizeof *t, OB_MEM_WORKSPACE);
    if (!t) return NULL;
    fill_shape(t, ctx->config.device, category, dtype, ndim, shape);
    t->in_arena = true;
    t->data = arena_take(ctx, t->device, ob_tensor_bytes(t), category);
    return t->data ? t : NULL;
}

ob_tensor *ob_tensor_temp_zeroed(ob_ctx *ctx, ob_mem_category category, ob_dtype dtype, int ndim,
                                 const int64_t *shape) {
    ob_tensor *t = ob_tensor_temp(ctx, category, dtype, ndim, shape);
    if (t) ob_backend_get(t->device)->zero(ctx, t->data, ob_tensor_bytes(t));
    return t;
}

int ob_tensor_copy_from_host(ob_ctx *ctx, ob_tensor *dst, const void *src) {
    return ob_backend_get(dst->device)->upload(ctx, dst->data, src, ob_tensor_bytes(dst));
}

int ob_tensor_copy_to_host(ob_ctx *ctx, const ob_tensor *src, void *dst) {
    return ob_backend_get(src->device)->download(ctx, dst, src->data, ob_tensor_bytes(src));
}

const void *ob_tensor_host_data(ob_ctx *ctx, const ob_tensor *t) {
    if (t->device == OB_CPU) return t->data;
    void *copy = ob_arena_alloc(ctx, ob_tensor_bytes(t), OB_MEM_WORKSPACE);
    return copy && ob_tensor_copy_to_host(ctx, t, copy) == 0 ? copy : NULL;
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
