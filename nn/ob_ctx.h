/* ob_ctx: the run context every op works in.
 *
 * It owns what would otherwise be global state: the per-step arena that
 * holds activations and workspaces, the autograd tape, the memory tracker,
 * the thread count and the seed/rank that key every random draw, and the
 * device its tensors live on.
 *
 * A training step is: forward ops (each records a tape node), ob_backward,
 * the optimizer update, then ob_ctx_step_reset, which empties the arena and
 * the tape. The arena keeps its largest block, so a step in steady state
 * does no malloc.
 *
 * On a CUDA ctx tensor data is device memory: persistent tensors come from
 * the back end's caching allocator, step tensors from a second arena of
 * device blocks, while tensor headers and ob_arena_alloc records stay in
 * host memory. Memory is charged to the same categories on every device.
 */
#ifndef OB_CTX_H
#define OB_CTX_H

#include "nn/ob_tensor.h"

typedef struct ob_ctx ob_ctx;

typedef struct {
    int threads;      /* <= 0: all cores */
    uint64_t seed;
    int rank;
    int world_size;
    ob_device device; /* where tensor data lives; OB_CPU (0) by default */
} ob_ctx_config;

ob_ctx *ob_ctx_new(const ob_ctx_config *config);
void ob_ctx_free(ob_ctx *ctx);
int ob_ctx_threads(const ob_ctx *ctx);
uint64_t ob_ctx_seed(const ob_ctx *ctx);
int ob_ctx_rank(const ob_ctx *ctx);
ob_device ob_ctx_device(const ob_ctx *ctx);

/* Per-run state a backend keeps between ops (the CPU backend's oneDNN engine,
 * stream and primitive cache): held by the ctx so the library has no global
 * mutable state. One slot per device, NULL until set; ob_ctx_free passes a
 * set state to its release function. */
typedef void (*ob_backend_state_release)(void *state);
void *ob_ctx_backend_state(const ob_ctx *ctx, ob_device device);
void ob_ctx_set_backend_state(ob_ctx *ctx, ob_device device, void *state, ob_backend_state_release release);

/* Persistent tensors (params, grads, optimizer state, data): freed with
 * ob_tensor_free. Contents are zeroed. Returns NULL when out of memory.
 * ob_tensor_new allocates on the ctx's device; ob_tensor_new_on on the one
 * given (host counters that the CPU reads every step stay on OB_CPU). */
ob_tensor *ob_tensor_new(ob_ctx *ctx, ob_mem_category category, ob_dtype dtype,
                         int ndim, const int64_t *shape);
ob_tensor *ob_tensor_new_on(ob_ctx *ctx, ob_device device, ob_mem_category category, ob_dtype dtype,
                            int ndim, const int64_t *shape);
void ob_tensor_free(ob_ctx *ctx, ob_tensor *t);
/* Step tensors: live in the arena until ob_ctx_step_reset. Contents are
 * NOT zeroed (use ob_tensor_temp_zeroed when an op accumulates into it). */
ob_tensor *ob_tensor_temp(ob_ctx *ctx, ob_mem_category category, ob_dtype dtype,
                          int ndim, const int64_t *shape);
ob_tensor *ob_tensor_temp_zeroed(ob_ctx *ctx, ob_mem_category category, ob_dtype dtype,
                                 int ndim, const int64_t *shape);
/* Raw arena memory (64-byte aligned) for small per-op records. */
void *ob_arena_alloc(ob_ctx *ctx, size_t bytes, ob_mem_category category);
void ob_ctx_step_reset(ob_ctx *ctx);

/* A position in the step arenas: ob_arena_rewind gives back everything
 * taken since ob_arena_mark_now in the same step. The caller must
 * hold no tensor or record from that span. A loop that needs a large
 * scratch per item (K-FAC's im2col rows, layer by layer) then reuses one
 * item's memory instead of holding every item's until the step ends. */
typedef struct {
    const void *block[OB_DEVICE_COUNT];
    size_t used[OB_DEVICE_COUNT];
    size_t used_total[OB_DEVICE_COUNT];
    int64_t charged[OB_MEM_CATEGORY_COUNT];
} ob_arena_mark;
ob_arena_mark ob_arena_mark_now(const ob_ctx *ctx);
void ob_arena_rewind(ob_ctx *ctx, const ob_arena_mark *mark);

/* Host <-> device copies of a whole tensor (plain copies on the CPU):
 * 0, or nonzero with the reason in ctx. `src`/`dst` hold ob_tensor_bytes. */
int ob_tensor_copy_from_host(ob_ctx *ctx, ob_tensor *dst, const void *src);
int ob_tensor_copy_to_host(ob_ctx *ctx, const ob_tensor *src, void *dst);
/* t's data readable on the host: t->data on the CPU, else a copy
 * downloaded into the step arena (ops check ids and labels there). NULL,
 * with the reason in ctx, when the copy failed. */
const void *ob_tensor_host_data(ob_ctx *ctx, const ob_tensor *t);

/* Memory accounting. Every allocation above is charged; other modules
 * (data loaders, communicators) charge what they hold themselves. */
void ob_mem_charge(ob_ctx *ctx, ob_mem_category category, int64_t bytes);
int64_t ob_mem_current(const ob_ctx *ctx, ob_mem_category category);
int64_t ob_mem_peak(const ob_ctx *ctx, ob_mem_category category);
int64_t ob_mem_peak_total(const ob_ctx *ctx);
/* Bytes the arenas hold from the system (their host and device blocks),
 * >= what they hand out. */
int64_t ob_arena_capacity(const ob_ctx *ctx);

/* Synchronized batch-norm: `sum` adds every rank's per-channel partial
 * sums in place (n doubles, the same n on every rank) and returns 0, or
 * nonzero when the reduction failed. The harness installs it for
 * data-parallel runs that ask for it; without one (the default) batch-norm
 * uses each rank's local statistics. */
typedef struct {
    int (*sum)(double *values, int64_t n, void *user);
    void *user;
} ob_batchnorm_reduce;
/* Every back end reduces in blocks of this many channels: one `sum` call
 * of 2 width + 1 doubles (two per-channel sums and the row count) per
 * block, in forward and in backward; `optbench plan` counts the same. */
#define OB_BATCHNORM_REDUCE_CHANNELS 512
void ob_ctx_set_batchnorm_reduce(ob_ctx *ctx, const ob_batchnorm_reduce *reduce);
/* NULL when batch-norm statistics are local. */
const ob_batchnorm_reduce *ob_ctx_batchnorm_reduce(const ob_ctx *ctx);

/* Gradient recording. Evaluation turns it off so no tape is built. */
void ob_set_grad_enabled(ob_ctx *ctx, bool enabled);
bool ob_grad_enabled(const ob_ctx *ctx);

/* Errors: ops that fail return NULL (or nonzero) and leave one line here. */
void ob_ctx_set_error(ob_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *ob_ctx_error(const ob_ctx *ctx);

#endif
