/* ob_kfac: K-FAC preconditioning of a base optimizer's gradients, as the
 * KAISA and DP-KFAC papers distribute it (../shared/PAPERS.md).
 *
 * A step with K-FAC is:
 *   ob_kfac_before_forward   switch the capture hook on where this rank builds
 *                            factors this step (a factor-update step)
 *   forward, backward, data-parallel gradient averaging (the harness)
 *   ob_kfac_precondition     factors (+ all-reduce), inverses (+ broadcast),
 *                            preconditioning (+ broadcast), KL clipping: the
 *                            gradients of every K-FAC layer are replaced by
 *                            their preconditioned values
 *   the base optimizer's step
 *
 * Which rank does what is fixed at construction by ob_kfac_assign, the same
 * function `optbench plan` calls, so a plan and a run cannot disagree:
 *   KAISA (variant kaisa): every rank builds every layer's factors from its
 *     local batch and the factors are all-reduced (averaged) over the world.
 *     The world is cut into grad-worker groups of g = grad_worker_frac*world
 *     consecutive ranks; each layer is placed on the least-loaded group and,
 *     inside it, its A and G decompositions on the least-loaded ranks (the
 *     same rank with colocate_factors). Those ranks compute them and
 *     broadcast them to the group, whose g members all precondition the
 *     layer; member k then broadcasts the result to the ranks at offset k of
 *     the other groups (its receivers). g = world is COMM-OPT (no gradient
 *     broadcast), g = 1 is MEM-OPT (no inverse broadcast), between is HYBRID.
 *   DP-KFAC (variant dp): each layer has one owner (least loaded); only the
 *     owner captures, builds factors from its local batch, inverts and
 *     preconditions; factors never travel; the preconditioned gradient is
 *     broadcast from the owner.
 * Loads are the decomposition cost, n^3 (compute) or n^2 (memory) summed
 * over a layer's A and G; ties go to the lower index, so every rank computes
 * the same assignment.
 */
#ifndef OB_KFAC_H
#define OB_KFAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness/comm/ob_comm.h"
#include "nn/ob_layers.h"

typedef enum { OB_KFAC_KAISA = 0, OB_KFAC_DP } ob_kfac_variant;
typedef enum { OB_KFAC_EIGEN = 0, OB_KFAC_INVERSE } ob_kfac_method;
typedef enum { OB_KFAC_COST_COMPUTE = 0, OB_KFAC_COST_MEMORY } ob_kfac_cost;

#define OB_KFAC_MAX_PIECES 16

/* A hyperparameter that is piecewise constant in epochs: value[0] until
 * epochs[0], value[1] until epochs[1], ..., value[n_epochs] after. */
typedef struct {
    double value[OB_KFAC_MAX_PIECES + 1];
    double epochs[OB_KFAC_MAX_PIECES];
    int n_epochs;
} ob_kfac_piecewise;

double ob_kfac_piecewise_at(const ob_kfac_piecewise *p, double epoch);

/* The running average's weight on the old factor at the k-th factor update
 * (k >= 1): factor_decay, or with warmup Martens & Grosse's
 * min(1 - 1/k, factor_decay) (K-FAC, ICML 2015, section 5), under which the
 * first update replaces the identity the factors start from and the first
 * 1/(1 - factor_decay) updates average the batches seen so far equally. */
double ob_kfac_decay_at_update(double factor_decay, bool warmup, int64_t k);

typedef struct {
    ob_kfac_variant variant;
    ob_kfac_method method;
    ob_kfac_piecewise damping, factor_decay, factor_update_steps, inv_update_steps;
    double kl_clip;            /* <= 0: no KL clipping */
    double kl_clip_lr;         /* > 0: the learning rate of the KL term, fixed; else the step's own */
    double grad_worker_frac;   /* KAISA: in [1/world, 1]; g = frac*world must divide world */
    ob_kfac_cost cost;
    bool colocate_factors;     /* KAISA: A and G of a layer on the same rank */
    bool eigen_outer;          /* eigen method: precompute 1/(d_G d_A^T + damping) */
    bool symmetric_comm;       /* all-reduce factors' upper triangles only */
    bool batch_averaged;       /* G from per-example output gradients (times the local batch) */
    bool decay_warmup;         /* k-th factor update decays by min(1 - 1/k, factor_decay) */
    const char *skip_layers;   /* comma-separated fnmatch patterns of layer names; "" = none */
    /* What the running factors and the inverses (eigen: Q, d, outer) are
     * kept in: OB_F16 or OB_BF16 to halve their memory (and the inverses'
     * broadcasts), anything else = the parameters' dtype. Computation is
     * always in the parameters' dtype; batch factors are all-reduced in it. */
    ob_dtype factor_dtype, inverse_dtype;
} ob_kfac_config;

/* One K-FAC layer's place in the world. */
typedef struct {
    int layer_index;           /* in the ob_params layer list */
    int64_t a_dim, g_dim;      /* factor sides: in(+1) or kh*kw*in(+1); out */
    int a_worker, g_worker;    /* ranks that decompose A and G (DP: the owner twice) */
    int group;                 /* KAISA: grad-worker group; DP: the owner */
} ob_kfac_slot;

typedef struct {
    ob_kfac_variant variant;
    int world_size, grad_workers; /* ranks holding each layer's inverses */
    int n_slots;
    ob_kfac_slot *slots;
} ob_kfac_assignment;

/* Validates config for this world size and fills assignment (slots
 * allocated here, freed by ob_kfac_assignment_free) for the K-FAC layers
 * of params: every Linear and Conv2d whose name matches no skip pattern.
 * Returns 0, or 2 with one line in err (bad config). */
int ob_kfac_assign(const ob_kfac_config *config, const ob_params *params, int world_size,
                   ob_kfac_assignment *assignment, char *err, size_t err_len);
void ob_kfac_assignment_free(ob_kfac_assignment *assignment);
/* Whether rank holds slot's inverses and preconditions it. */
bool ob_kfac_is_grad_worker(const ob_kfac_assignment *assignment, const ob_kfac_slot *slot, int rank);

/* What one rank holds and moves, from an assignment alone (the plan). Bytes
 * use element_size (the parameters') for gradients and the all-reduced
 * batch factors, 2 for factors and inverses kept narrow (factor_dtype,
 * inverse_dtype), and follow ob_comm.h's byte convention; a collective
 * over one rank moves nothing. */
typedef struct {
    int64_t factor_bytes, inverse_bytes;
    /* per factor update, per inverse update, per step */
    int64_t factor_comm_bytes, inverse_comm_bytes, precond_comm_bytes;
    int64_t factor_comm_calls, inverse_comm_calls, precond_comm_calls;
    /* at most this much workspace for wide copies of narrow state
     * (kfac_storage.h); 0 when factors and inverses are stored wide */
    int64_t wide_scratch_bytes;
} ob_kfac_rank_cost;

/* The wide scratch buffers (kfac_storage.h), by role: the most wide copies
 * of narrow state one K-FAC operation holds at once (preconditioning: both
 * eigenbases and both eigenvalue vectors). A factor is decomposed in the
 * buffer of its side, in place when its wide copy is scratch itself. */
enum {
    OB_KFAC_WIDE_G_SIDE = 0,      /* G, Q_G or G's inverse: g x g */
    OB_KFAC_WIDE_A_SIDE = 1,      /* A, Q_A or A's inverse: a x a */
    OB_KFAC_WIDE_VALUES = 2,      /* eigenvalues as decomposed, d_G, or eigen_outer's g x a */
    OB_KFAC_WIDE_A_VALUES = 3,    /* d_A while preconditioning without eigen_outer */
    OB_KFAC_WIDE_BUFFERS
};

/* Elements of each of rank's wide scratch buffers, from the largest tensor
 * each role takes over the slots whose factors rank holds. All 0 when
 * nothing is stored narrow. */
void ob_kfac_scratch_elements(const ob_kfac_config *config, const ob_kfac_assignment *assignment, int rank,
                              int64_t elements[OB_KFAC_WIDE_BUFFERS]);

ob_kfac_rank_cost ob_kfac_rank_cost_of(const ob_kfac_config *config, const ob_kfac_assignment *assignment,
                                       int rank, size_t element_size);

/* Number of factor / inverse updates in steps [0, steps) for a run of
 * steps_per_epoch (the schedules are in epochs). */
int64_t ob_kfac_factor_updates(const ob_kfac_config *config, int64_t steps, int64_t steps_per_epoch);
int64_t ob_kfac_inverse_updates(const ob_kfac_config *config, int64_t steps, int64_t steps_per_epoch);

/* ---- the preconditioner of a run ---- */

typedef struct ob_kfac ob_kfac;

/* Seconds spent per K-FAC phase on this rank (for /timing). */
typedef enum {
    OB_KFAC_PHASE_FACTORS = 0,
    OB_KFAC_PHASE_FACTOR_COMM,
    OB_KFAC_PHASE_INVERSES,
    OB_KFAC_PHASE_INVERSE_COMM,
    OB_KFAC_PHASE_PRECONDITION,
    OB_KFAC_PHASE_COUNT
} ob_kfac_phase;

/* NULL with one line in err on a bad config (*code 2) or out of memory
 * (*code 1). params, comm and ctx must outlive it. comm: the world. */
ob_kfac *ob_kfac_new(ob_ctx *ctx, ob_params *params, ob_comm *comm, const ob_kfac_config *config,
                     int64_t steps_per_epoch, int *code, char *err, size_t err_len);
void ob_kfac_free(ob_ctx *ctx, ob_kfac *kfac);

const ob_kfac_assignment *ob_kfac_get_assignment(const ob_kfac *kfac);

/* Before the forward pass of step (0-based). */
void ob_kfac_before_forward(ob_kfac *kfac, int64_t step);
/* After the gradients are averaged over ranks; lr is the base optimizer's
 * rate this step (KL clipping scales with it). Returns 0, or nonzero with
 * ob_ctx_error set. */
int ob_kfac_precondition(ob_kfac *kfac, int64_t step, double lr);

/* KL clipping over the preconditioned steps since the previous call (or the
 * start): how many, how many were scaled down (nu < 1), the mean and the
 * smallest nu. While every step is clipped the update's size is
 * sqrt(kl_clip) in the KL metric whatever the learning rate, so the base
 * optimizer's schedule has no effect: this is what shows it. The counts are
 * checkpointed; the call restarts them. */
typedef struct {
    int64_t steps, clipped;
    double mean_scale, min_scale;
} ob_kfac_kl_summary;
ob_kfac_kl_summary ob_kfac_take_kl_summary(ob_kfac *kfac);

void ob_kfac_phase_times(const ob_kfac *kfac, double seconds[OB_KFAC_PHASE_COUNT],
                         int64_t calls[OB_KFAC_PHASE_COUNT]);

/* State for checkpoints: this rank's factors and inverses (named
 * "kfac.<layer>.A", ".G", ".QA", ".dA", ..., ".Ainv", ...) and an F64
 * tensor "kfac.counters" (factor and inverse updates, the KL-clip counts). */
int ob_kfac_state_count(const ob_kfac *kfac);
/* The counters' bytes, charged to optimizer_state (what `optbench plan` adds). */
#define OB_KFAC_COUNTER_BYTES 48
ob_tensor *ob_kfac_state_at(const ob_kfac *kfac, int i, char *name, size_t name_len);

#endif
