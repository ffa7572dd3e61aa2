/* The K-FAC preconditioner of a run: per-layer state, the update schedule
 * and the distribution of work that ob_kfac_assign decided (ob_kfac.h).
 * The per-layer arithmetic is in kfac_layer.c. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/ob_backend.h"
#include "optimizers/kfac/kfac_layer.h"
#include "optimizers/kfac/kfac_storage.h"
#include "optimizers/kfac/ob_kfac.h"

typedef struct {
    ob_kfac_layer layer;
    const ob_kfac_slot *slot;
    bool builds_factors; /* KAISA: every rank; DP: the owner */
    bool grad_worker;    /* holds the inverses and preconditions */
    ob_tensor *a, *g;    /* running-average factors (kfac_factors) */
    /* kfac_inverses: eigen method q_a, d_a, q_g, d_g (+ outer); inverse method a_inv, g_inv */
    ob_tensor *q_a, *d_a, *q_g, *d_g, *outer, *a_inv, *g_inv;
} slot_state;

/* What the counters tensor holds: the updates done so far, and KL clipping
 * over the steps since the last ob_kfac_take_kl_summary. */
enum { FACTOR_UPDATES, INVERSE_UPDATES, KL_STEPS, KL_CLIPPED, KL_SCALE_SUM, KL_SCALE_MIN, COUNTERS };
_Static_assert(COUNTERS * sizeof(double) == OB_KFAC_COUNTER_BYTES, "the plan charges OB_KFAC_COUNTER_BYTES");

struct ob_kfac {
    ob_ctx *ctx;
    ob_params *params;
    ob_comm *world, *worker_group, *receiver_group; /* groups: KAISA with more than one rank */
    ob_kfac_config config;
    ob_kfac_wide_scratch scratch; /* wide copies of state kept in fp16 / bf16 */
    ob_kfac_assignment assignment;
    int64_t steps_per_epoch;
    int rank, world_size;
    slot_state *slots;
    ob_tensor *counters; /* F64 [COUNTERS], checkpointed with the factors */
    double seconds[OB_KFAC_PHASE_COUNT];
    int64_t calls[OB_KFAC_PHASE_COUNT];
};

/* Monotonic seconds (the harness has its own clock; the optimizers do not
 * depend on the harness). */
static double now_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

static double phase_end(ob_kfac *kfac, ob_kfac_phase phase, double started) {
    double now = now_seconds();
    kfac->seconds[phase] += now - started;
    kfac->calls[phase]++;
    return now;
}

static void restart_kl_counts(ob_kfac *kfac) {
    double *counters = ob_f64(kfac->counters);
    counters[KL_STEPS] = counters[KL_CLIPPED] = counters[KL_SCALE_SUM] = 0.0;
    counters[KL_SCALE_MIN] = 1.0;
}

/* ---- construction ---- */

/* What factors (or inverses) are kept in: narrow as configured, else the parameters' dtype. */
static ob_dtype stored_dtype(const ob_kfac *kfac, ob_dtype configured) {
    return ob_dtype_is_half(configured) ? configured : ob_params_dtype(kfac->params);
}

static ob_tensor *persistent(ob_kfac *kfac, ob_mem_category category, int64_t rows, int64_t cols) {
    ob_dtype dtype = stored_dtype(kfac, category == OB_MEM_KFAC_FACTORS ? kfac->config.factor_dtype
                                                                        : kfac->config.inverse_dtype);
    return cols ? ob_tensor_new(kfac->ctx, category, dtype, OB_SHAPE(rows, cols))
                : ob_tensor_new(kfac->ctx, category, dtype, OB_SHAPE(rows));
}

/* F = I, through the backend like every other write, so a device tensor works too. */
static void set_identity(ob_tensor *t) {
    if (ob_dtype_is_half(t->dtype)) {
        ob_kfac_store_identity(t);
        return;
    }
    const ob_backend *backend = ob_backend_of(t);
    backend->fill(t, 0.0);
    backend->add_diagonal(t, 1.0);
}

/* Allocates what this rank holds for one slot; false when out of memory. */
static bool allocate_slot(ob_kfac *kfac, slot_state *s) {
    int64_t a = s->slot->a_dim, g = s->slot->g_dim;
    if (s->builds_factors || kfac->assignment.variant == OB_KFAC_KAISA) {
        s->a = persistent(kfac, OB_MEM_KFAC_FACTORS, a, a);
        s->g = persistent(kfac, OB_MEM_KFAC_FACTORS, g, g);
        if (!s->a || !s->g) return false;
        set_identity(s->a);
        set_identity(s->g);
    }
    if (!s->grad_worker) return true;
    if (kfac->config.method == OB_KFAC_INVERSE) {
        s->a_inv = persistent(kfac, OB_MEM_KFAC_INVERSES, a, a);
        s->g_inv = persistent(kfac, OB_MEM_KFAC_INVERSES, g, g);
        return s->a_inv && s->g_inv;
    }
    s->q_a = persistent(kfac, OB_MEM_KFAC_INVERSES, a, a);
    s->d_a = persistent(kfac, OB_MEM_KFAC_INVERSES, a, 0);
    s->q_g = persistent(kfac, OB_MEM_KFAC_INVERSES, g, g);
    s->d_g = persistent(kfac, OB_MEM_KFAC_INVERSES, g, 0);
    if (kfac->config.eigen_outer) s->outer = persistent(kfac, OB_MEM_KFAC_INVERSES, g, a);
    return s->q_a && s->d_a && s->q_g && s->d_g && (!kfac->config.eigen_outer || s->outer);
}

/* KAISA's groups: grad-worker group j is ranks [j*workers, (j+1)*workers);
 * receiver group k is the ranks at offset k of every worker group, ordered
 * by rank, so a layer of group j is broadcast from member j. */
static int split_groups(ob_kfac *kfac, char *err, size_t err_len) {
    int workers = kfac->assignment.grad_workers;
    if (kfac->assignment.variant != OB_KFAC_KAISA || kfac->world_size == 1) return 0;
    if (ob_comm_split(kfac->world, kfac->rank / workers, kfac->rank, &kfac->worker_group) ||
        ob_comm_split(kfac->world, kfac->rank % workers, kfac->rank, &kfac->receiver_group)) {
        snprintf(err, err_len, "K-FAC groups: %s", ob_comm_error(kfac->world));
        return 1;
    }
    return 0;
}

ob_kfac *ob_kfac_new(ob_ctx *ctx, ob_params *params, ob_comm *comm, const ob_kfac_config *config,
                     int64_t steps_per_epoch, int *code, char *err, size_t err_len) {
    ob_kfac *kfac = calloc(1, sizeof *kfac);
    *code = 1;
    if (!kfac) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    *kfac = (ob_kfac){.ctx = ctx, .params = params, .world = comm, .config = *config,
                      .steps_per_epoch = steps_per_epoch, .rank = ob_comm_rank(comm),
                      .world_size = ob_comm_size(comm)};
    int rc = ob_kfac_assign(config, params, kfac->world_size, &kfac->assignment, err, err_len);
    if (rc) {
        *code = rc;
        free(kfac);
        return NULL;
    }
    if (ob_params_dtype(params) != OB_F32 && ob_params_dtype(params) != OB_F64) {
        snprintf(err, err_len, "K-FAC: parameters must be F32 or F64");
        *code = 2;
        ob_kfac_free(ctx, kfac);
        return NULL;
    }
    bool narrow = ob_dtype_is_half(config->factor_dtype) || ob_dtype_is_half(config->inverse_dtype);
    if (narrow && ob_params_count(params) > 0 && ob_params_at(params, 0)->value->device != OB_CPU) {
        snprintf(err, err_len, "kfac.factor_dtype, kfac.inv_dtype: fp16 and bf16 storage is implemented on the "
                               "CPU only; use fp32 on a GPU");
        *code = 2;
        ob_kfac_free(ctx, kfac);
        return NULL;
    }
    int n = kfac->assignment.n_slots;
    int64_t scratch_elements[OB_KFAC_WIDE_BUFFERS];
    ob_kfac_scratch_elements(&kfac->config, &kfac->assignment, kfac->rank, scratch_elements);
    ob_kfac_wide_scratch_init(&kfac->scratch, ob_params_dtype(params), scratch_elements);
    kfac->slots = calloc((size_t)(n > 0 ? n : 1), sizeof *kfac->slots);
    /* The counters are bookkeeping, not factors: kfac_factors then holds
     * exactly the factor bytes `optbench plan` predicts. The host reads them
     * every step, so they stay there on any device. */
    kfac->counters = ob_tensor_new_on(ctx, OB_CPU, OB_MEM_OPTIMIZER_STATE, OB_F64, OB_SHAPE(COUNTERS));
    bool ok = kfac->slots && kfac->counters;
    if (kfac->counters) restart_kl_counts(kfac);
    for (int i = 0; ok && i < n; i++) {
        slot_state *s = &kfac->slots[i];
        s->slot = &kfac->assignment.slots[i];
        ob_kfac_layer_describe(ob_params_layer_at(params, s->slot->layer_index), &s->layer);
        s->layer.undo_batch_mean = config->batch_averaged;
        s->grad_worker = ob_kfac_is_grad_worker(&kfac->assignment, s->slot, kfac->rank);
        s->builds_factors = kfac->assignment.variant == OB_KFAC_KAISA || s->grad_worker;
        ok = allocate_slot(kfac, s);
    }
    if (!ok) snprintf(err, err_len, "out of memory for K-FAC state");
    if (ok && split_groups(kfac, err, err_len)) ok = false;
    if (!ok) {
        ob_kfac_free(ctx, kfac);
        return NULL;
    }
    *code = 0;
    return kfac;
}

void ob_kfac_free(ob_ctx *ctx, ob_kfac *kfac) {
    if (!kfac) return;
    for (int i = 0; kfac->slots && i < kfac->assignment.n_slots; i++) {
        slot_state *s = &kfac->slots[i];
        ob_tensor *held[] = {s->a, s->g, s->q_a, s->d_a, s->q_g, s->d_g, s->outer, s->a_inv, s->g_inv};
        for (size_t t = 0; t < sizeof held / sizeof held[0]; t++)
            if (held[t]) ob_tensor_free(ctx, held[t]);
        /* NULL for the slots after one whose allocation failed */
        if (s->layer.layer) s->layer.layer->capture = false;
    }
    if (kfac->counters) ob_tensor_free(ctx, kfac->counters);
    ob_kfac_wide_scratch_free(ctx, &kfac->scratch);
    ob_comm_free(kfac->receiver_group);
    ob_comm_free(kfac->worker_group);
    free(kfac->slots);
    ob_kfac_assignment_free(&kfac->assignment);
    free(kfac);
}

const ob_kfac_assignment *ob_kfac_get_assignment(const ob_kfac *kfac) { return &kfac->assignment; }

/* ---- the schedule ---- */

static double epoch_of(const ob_kfac *kfac, int64_t step) { return (double)step / (double)kfac->steps_per_epoch; }

static bool due(const ob_kfac *kfac, const ob_kfac_piecewise *interval, int64_t step) {
    int64_t every = (int64_t)ob_kfac_piecewise_at(interval, epoch_of(kfac, step));
    return every > 0 && step % every == 0;
}

void ob_kfac_before_forward(ob_kfac *kfac, int64_t step) {
    bool capture = due(kfac, &kfac->config.factor_update_steps, step);
    for (int i = 0; i < kfac->assignment.n_slots; i++) {
        slot_state *s = &kfac->slots[i];
        s->layer.layer->capture = capture && s->builds_factors;
        s->layer.layer->captured_input = NULL;
        s->layer.layer->captured_grad_output = NULL;
    }
}

/* ---- factors ---- */

static ob_tensor *workspace(ob_kfac *kfac, int64_t rows, int64_t cols) {
    ob_dtype dtype = ob_params_dtype(kfac->params);
    return cols ? ob_tensor_temp(kfac->ctx, OB_MEM_WORKSPACE, dtype, OB_SHAPE(rows, cols))
                : ob_tensor_temp(kfac->ctx, OB_MEM_WORKSPACE, dtype, OB_SHAPE(rows));
}

/* Averages a symmetric batch factor over the world; with symmetric_comm only
 * its upper triangle travels (packed row by row). */
static int allreduce_factor(ob_kfac *kfac, ob_tensor *factor) {
    int64_t n = factor->shape[0];
    size_t element = ob_dtype_size(factor->dtype);
    char *data = factor->data;
    if (!kfac->config.symmetric_comm) {
        if (ob_comm_allreduce_sum(kfac->world, data, n * n, factor->dtype, OB_COMM_FACTORS)) return -1;
    } else {
        ob_tensor *packed = workspace(kfac, n * (n + 1) / 2, 0);
        if (!packed) return -1;
        char *p = packed->data;
        for (int64_t i = 0; i < n; i++, p += (size_t)(n - i + 1) * element)
            memcpy(p, data + (size_t)(i * n + i) * element, (size_t)(n - i) * element);
        if (ob_comm_allreduce_sum(kfac->world, packed->data, packed->numel, factor->dtype, OB_COMM_FACTORS))
            return -1;
        p = packed->data;
        for (int64_t i = 0; i < n; i++, p += (size_t)(n - i + 1) * element) {
            memcpy(data + (size_t)(i * n + i) * element, p, (size_t)(n - i) * element);
            for (int64_t j = i + 1; j < n; j++) /* mirror row i's tail into column i */
                memcpy(data + (size_t)(j * n + i) * element, data + (size_t)(i * n + j) * element, element);
        }
    }
    ob_backend_of(factor)->scale(1.0 / kfac->world_size, factor);
    return 0;
}

/* stored's values, wide, in scratch buffer `which` (or stored itself). */
static ob_tensor *wide(ob_kfac *kfac, int which, ob_tensor *stored) {
    return ob_kfac_widened(kfac->ctx, &kfac->scratch, which, stored);
}

/* Where to compute what goes to stored: scratch buffer `which` (or stored itself). */
static ob_tensor *wide_output(ob_kfac *kfac, int which, ob_tensor *stored) {
    return ob_kfac_output_for(kfac->ctx, &kfac->scratch, which, stored);
}

/* The running average of a stored factor, computed wide in the buffer of its side. */
static int average_into(ob_kfac *kfac, double decay, const ob_tensor *batch, int side, ob_tensor *stored) {
    ob_tensor *running = wide(kfac, side, stored);
    if (!running) return -1;
    ob_kfac_running_average(decay, batch, running);
    ob_kfac_store(running, stored);
    return 0;
}

double ob_kfac_decay_at_update(double factor_decay, bool warmup, int64_t k) {
    return warmup ? fmin(1.0 - 1.0 / (double)k, factor_decay) : factor_decay;
}

static int update_factors(ob_kfac *kfac, int64_t step) {
    int64_t update = (int64_t)ob_f64(kfac->counters)[FACTOR_UPDATES] + 1;
    double decay = ob_kfac_decay_at_update(ob_kfac_piecewise_at(&kfac->config.factor_decay, epoch_of(kfac, step)),
                                           kfac->config.decay_warmup, update);
    bool reduce = kfac->assignment.variant == OB_KFAC_KAISA && kfac->world_size > 1;
    for (int i = 0; i < kfac->assignment.n_slots; i++) {
        slot_state *s = &kfac->slots[i];
        if (!s->builds_factors) continue;
        if (!s->layer.layer->captured_input || !s->layer.layer->captured_grad_output) {
            ob_ctx_set_error(kfac->ctx, "K-FAC: layer %s captured nothing this step", s->layer.layer->name);
            return -1;
        }
        double t = now_seconds();
        ob_arena_mark layer_start = ob_arena_mark_now(kfac->ctx);
        ob_tensor *a_batch = workspace(kfac, s->slot->a_dim, s->slot->a_dim);
        ob_tensor *g_batch = workspace(kfac, s->slot->g_dim, s->slot->g_dim);
        if (!a_batch || !g_batch) return -1;
        if (ob_kfac_batch_factors(kfac->ctx, &s->layer, a_batch, g_batch)) return -1;
        t = phase_end(kfac, OB_KFAC_PHASE_FACTORS, t);
        if (reduce && (allreduce_factor(kfac, a_batch) || allreduce_factor(kfac, g_batch))) {
            ob_ctx_set_error(kfac->ctx, "K-FAC factor all-reduce: %s", ob_comm_error(kfac->world));
            return -1;
        }
        if (reduce) t = phase_end(kfac, OB_KFAC_PHASE_FACTOR_COMM, t);
        if (average_into(kfac, decay, a_batch, OB_KFAC_WIDE_A_SIDE, s->a) ||
            average_into(kfac, decay, g_batch, OB_KFAC_WIDE_G_SIDE, s->g))
            return -1;
        ob_arena_rewind(kfac->ctx, &layer_start); /* the batch factors and im2col rows */
        phase_end(kfac, OB_KFAC_PHASE_FACTORS, t);
    }
    ob_f64(kfac->counters)[FACTOR_UPDATES] += 1;
    return 0;
}

/* ---- inverses ---- */

/* The rank that computes one factor's decomposition, and its position in
 * the layer's grad-worker group. */
static int group_root(const ob_kfac *kfac, int worker) { return worker % kfac->assignment.grad_workers; }

static int broadcast_in_group(ob_kfac *kfac, ob_tensor *t, int worker) {
    if (!kfac->worker_group || ob_comm_size(kfac->worker_group) == 1) return 0;
    return ob_comm_broadcast(kfac->worker_group, t->data, t->numel, t->dtype, group_root(kfac, worker),
                             OB_COMM_INVERSES);
}

/* One stored factor's decomposition into its stored results: eigen q, d,
 * or the damped inverse inv; computed wide in the buffer of the factor's
 * side, so that a narrow factor's wide copy is decomposed in place. */
static int decompose_factor(ob_kfac *kfac, ob_tensor *factor, int side, double damping, ob_tensor *q, ob_tensor *d,
                            ob_tensor *inv) {
    ob_tensor *f = wide(kfac, side, factor);
    if (!f) return -1;
    if (kfac->config.method == OB_KFAC_EIGEN) {
        ob_tensor *q_out = wide_output(kfac, side, q), *d_out = wide_output(kfac, OB_KFAC_WIDE_VALUES, d);
        if (!q_out || !d_out || ob_kfac_eigen(kfac->ctx, f, q_out, d_out)) return -1;
        ob_kfac_store(q_out, q);
        ob_kfac_store(d_out, d);
        return 0;
    }
    ob_tensor *inv_out = wide_output(kfac, side, inv);
    if (!inv_out || ob_kfac_damped_inverse(kfac->ctx, f, damping, inv_out)) return -1;
    ob_kfac_store(inv_out, inv);
    return 0;
}

/* DP-KFAC's inverse variant: factored Tikhonov damping couples A and G
 * (both traces are read before either is inverted, in place or not). */
static int dp_inverses(ob_kfac *kfac, slot_state *s, double damping) {
    ob_tensor *a = wide(kfac, OB_KFAC_WIDE_A_SIDE, s->a), *g = wide(kfac, OB_KFAC_WIDE_G_SIDE, s->g);
    ob_tensor *a_inv = wide_output(kfac, OB_KFAC_WIDE_A_SIDE, s->a_inv);
    ob_tensor *g_inv = wide_output(kfac, OB_KFAC_WIDE_G_SIDE, s->g_inv);
    if (!a || !g || !a_inv || !g_inv || ob_kfac_dp_damped_inverses(kfac->ctx, a, g, damping, a_inv, g_inv)) return -1;
    ob_kfac_store(a_inv, s->a_inv);
    ob_kfac_store(g_inv, s->g_inv);
    return 0;
}

/* eigen_outer's 1 / (d_G d_A^T + damping) from the stored eigenvalues. */
static int eigen_outer(ob_kfac *kfac, slot_state *s, double damping) {
    ob_tensor *d_g = wide(kfac, OB_KFAC_WIDE_G_SIDE, s->d_g), *d_a = wide(kfac, OB_KFAC_WIDE_A_SIDE, s->d_a);
    ob_tensor *outer = wide_output(kfac, OB_KFAC_WIDE_VALUES, s->outer);
    if (!d_g || !d_a || !outer) return -1;
    ob_kfac_eigen_outer(d_g, d_a, damping, outer);
    ob_kfac_store(outer, s->outer);
    return 0;
}

/* This rank's share of one slot's decompositions, then their broadcast to
 * the layer's other grad workers. */
static int decompose_slot(ob_kfac *kfac, slot_state *s, double damping) {
    const ob_kfac_slot *slot = s->slot;
    bool eigen = kfac->config.method == OB_KFAC_EIGEN;
    double t = now_seconds();
    if (kfac->assignment.variant == OB_KFAC_DP && !eigen) {
        if (dp_inverses(kfac, s, damping)) return -1;
    } else {
        if (kfac->rank == slot->a_worker &&
            decompose_factor(kfac, s->a, OB_KFAC_WIDE_A_SIDE, damping, s->q_a, s->d_a, s->a_inv))
            return -1;
        if (kfac->rank == slot->g_worker &&
            decompose_factor(kfac, s->g, OB_KFAC_WIDE_G_SIDE, damping, s->q_g, s->d_g, s->g_inv))
            return -1;
    }
    t = phase_end(kfac, OB_KFAC_PHASE_INVERSES, t);
    if (kfac->assignment.variant == OB_KFAC_KAISA && kfac->assignment.grad_workers > 1) {
        int rc = eigen ? broadcast_in_group(kfac, s->q_a, slot->a_worker) |
                             broadcast_in_group(kfac, s->d_a, slot->a_worker) |
                             broadcast_in_group(kfac, s->q_g, slot->g_worker) |
                             broadcast_in_group(kfac, s->d_g, slot->g_worker)
                       : broadcast_in_group(kfac, s->a_inv, slot->a_worker) |
                             broadcast_in_group(kfac, s->g_inv, slot->g_worker);
        if (rc) {
            ob_ctx_set_error(kfac->ctx, "K-FAC inverse broadcast: %s", ob_comm_error(kfac->worker_group));
            return -1;
        }
        t = phase_end(kfac, OB_KFAC_PHASE_INVERSE_COMM, t);
    }
    if (eigen && kfac->config.eigen_outer) {
        if (eigen_outer(kfac, s, damping)) return -1;
        phase_end(kfac, OB_KFAC_PHASE_INVERSES, t);
    }
    return 0;
}

static int update_inverses(ob_kfac *kfac, int64_t step) {
    double damping = ob_kfac_piecewise_at(&kfac->config.damping, epoch_of(kfac, step));
    for (int i = 0; i < kfac->assignment.n_slots; i++) {
        if (!kfac->slots[i].grad_worker) continue;
        ob_arena_mark slot_start = ob_arena_mark_now(kfac->ctx);
        if (decompose_slot(kfac, &kfac->slots[i], damping)) return -1;
        ob_arena_rewind(kfac->ctx, &slot_start); /* LAPACK's work arrays */
    }
    ob_f64(kfac->counters)[INVERSE_UPDATES] += 1;
    return 0;
}

/* ---- preconditioning ---- */

static int precondition_slot(ob_kfac *kfac, slot_state *s, const ob_tensor *grad, double damping,
                             ob_tensor *out) {
    if (kfac->config.method == OB_KFAC_INVERSE) {
        ob_tensor *g_inv = wide(kfac, OB_KFAC_WIDE_G_SIDE, s->g_inv);
        ob_tensor *a_inv = wide(kfac, OB_KFAC_WIDE_A_SIDE, s->a_inv);
        return !g_inv || !a_inv || ob_kfac_precondition_inverse(kfac->ctx, g_inv, a_inv, grad, out);
    }
    ob_tensor *q_g = wide(kfac, OB_KFAC_WIDE_G_SIDE, s->q_g), *q_a = wide(kfac, OB_KFAC_WIDE_A_SIDE, s->q_a);
    if (!q_g || !q_a) return -1;
    if (kfac->config.eigen_outer) {
        ob_tensor *outer = wide(kfac, OB_KFAC_WIDE_VALUES, s->outer);
        return !outer || ob_kfac_precondition_eigen_outer(kfac->ctx, q_g, q_a, outer, grad, out);
    }
    ob_tensor *d_g = wide(kfac, OB_KFAC_WIDE_VALUES, s->d_g), *d_a = wide(kfac, OB_KFAC_WIDE_A_VALUES, s->d_a);
    return !d_g || !d_a || ob_kfac_precondition_eigen(kfac->ctx, q_g, d_g, q_a, d_a, damping, grad, out);
}

/* The preconditioned gradient reaches the ranks that did not compute it:
 * DP from the owner over the world, KAISA from grad worker k of the layer's
 * group to receiver group k. */
static int share_preconditioned(ob_kfac *kfac, const slot_state *s, ob_tensor *v) {
    if (kfac->assignment.grad_workers == kfac->world_size) return 0;
    if (kfac->assignment.variant == OB_KFAC_DP)
        return ob_comm_broadcast(kfac->world, v->data, v->numel, v->dtype, s->slot->group, OB_COMM_PRECOND_GRADS);
    return ob_comm_broadcast(kfac->receiver_group, v->data, v->numel, v->dtype, s->slot->group,
                             OB_COMM_PRECOND_GRADS);
}

/* KL clipping (KAISA): nu = min(1, sqrt(kl_clip / |sum v.g lr^2|)) over all
 * K-FAC layers, computed alike on every rank from the shared v and g. With
 * kl_clip_lr the KL term uses that fixed rate: a clipped update
 * lr nu v = (lr / kl_clip_lr) sqrt(kl_clip / v.g) v then follows the schedule. */
static double kl_scale(const ob_kfac *kfac, double vg_sum, double lr) {
    if (kfac->config.kl_clip_lr > 0) lr = kfac->config.kl_clip_lr;
    double kl = fabs(vg_sum * lr * lr);
    if (kfac->config.kl_clip <= 0 || kl == 0) return 1.0;
    return fmin(1.0, sqrt(kfac->config.kl_clip / kl));
}

static void count_kl_scale(ob_kfac *kfac, double nu) {
    double *counters = ob_f64(kfac->counters);
    counters[KL_STEPS] += 1;
    counters[KL_CLIPPED] += nu < 1.0;
    counters[KL_SCALE_SUM] += nu;
    counters[KL_SCALE_MIN] = fmin(counters[KL_SCALE_MIN], nu);
}

ob_kfac_kl_summary ob_kfac_take_kl_summary(ob_kfac *kfac) {
    const double *counters = ob_f64(kfac->counters);
    double steps = counters[KL_STEPS];
    ob_kfac_kl_summary summary = {.steps = (int64_t)steps,
                                  .clipped = (int64_t)counters[KL_CLIPPED],
                                  .mean_scale = steps > 0 ? counters[KL_SCALE_SUM] / steps : 1.0,
                                  .min_scale = counters[KL_SCALE_MIN]};
    restart_kl_counts(kfac);
    return summary;
}

static int precondition_all(ob_kfac *kfac, int64_t step, double lr) {
    double damping = ob_kfac_piecewise_at(&kfac->config.damping, epoch_of(kfac, step));
    int n = kfac->assignment.n_slots;
    ob_tensor **preconditioned = ob_arena_alloc(kfac->ctx, sizeof *preconditioned * (size_t)(n ? n : 1),
                                                OB_MEM_WORKSPACE);
    if (!preconditioned) return -1;
    double vg_sum = 0.0;
    for (int i = 0; i < n; i++) {
        slot_state *s = &kfac->slots[i];
        double t = now_seconds();
        ob_tensor *grad = workspace(kfac, s->slot->g_dim, s->slot->a_dim);
        ob_tensor *v = workspace(kfac, s->slot->g_dim, s->slot->a_dim);
        if (!grad || !v) return -1;
        ob_kfac_gather_grad(&s->layer, grad);
        ob_arena_mark products_start = ob_arena_mark_now(kfac->ctx);
        if (s->grad_worker && precondition_slot(kfac, s, grad, damping, v)) return -1;
        ob_arena_rewind(kfac->ctx, &products_start); /* the products' workspaces; grad and v stay */
        t = phase_end(kfac, OB_KFAC_PHASE_PRECONDITION, t);
        if (share_preconditioned(kfac, s, v)) {
            ob_ctx_set_error(kfac->ctx, "K-FAC gradient broadcast: %s", ob_comm_error(kfac->world));
            return -1;
        }
        t = now_seconds();
        vg_sum += ob_kfac_kl_term(grad, v);
        preconditioned[i] = v;
        phase_end(kfac, OB_KFAC_PHASE_PRECONDITION, t);
    }
    double t = now_seconds(), nu = kl_scale(kfac, vg_sum, lr);
    count_kl_scale(kfac, nu);
    for (int i = 0; i < n; i++) {
        if (nu != 1.0) ob_backend_of(preconditioned[i])->scale(nu, preconditioned[i]);
        ob_kfac_scatter_grad(&kfac->slots[i].layer, preconditioned[i]);
    }
    phase_end(kfac, OB_KFAC_PHASE_PRECONDITION, t);
    return 0;
}

int ob_kfac_precondition(ob_kfac *kfac, int64_t step, double lr) {
    if (due(kfac, &kfac->config.factor_update_steps, step) && update_factors(kfac, step)) return -1;
    if (due(kfac, &kfac->config.inv_update_steps, step) && update_inverses(kfac, step)) return -1;
    /* no inverses yet (a resumed run between updates has them) */
    if (ob_f64(kfac->counters)[INVERSE_UPDATES] == 0) return 0;
    return precondition_all(kfac, step, lr);
}

void ob_kfac_phase_times(const ob_kfac *kfac, double seconds[OB_KFAC_PHASE_COUNT],
                         int64_t calls[OB_KFAC_PHASE_COUNT]) {
    memcpy(seconds, kfac->seconds, sizeof kfac->seconds);
    memcpy(calls, kfac->calls, sizeof kfac->calls);
}

/* ---- checkpoint state ---- */

typedef struct {
    const char *suffix;
    size_t offset;
} state_field;

static const state_field state_fields[] = {
    {"A", offsetof(slot_state, a)},         {"G", offsetof(slot_state, g)},
    {"QA", offsetof(slot_state, q_a)},      {"dA", offsetof(slot_state, d_a)},
    {"QG", offsetof(slot_state, q_g)},      {"dG", offsetof(slot_state, d_g)},
    {"outer", offsetof(slot_state, outer)}, {"Ainv", offsetof(slot_state, a_inv)},
    {"Ginv", offsetof(slot_state, g_inv)},
};
#define N_FIELDS (int)(sizeof state_fields / sizeof state_fields[0])

static ob_tensor *field_of(const slot_state *s, int field) {
    return *(ob_tensor *const *)((const char *)s + state_fields[field].offset);
}

int ob_kfac_state_count(const ob_kfac *kfac) {
    int count = 1;
    for (int i = 0; i < kfac->assignment.n_slots; i++)
        for (int f = 0; f < N_FIELDS; f++) count += field_of(&kfac->slots[i], f) != NULL;
    return count;
}

ob_tensor *ob_kfac_state_at(const ob_kfac *kfac, int i, char *name, size_t name_len) {
    if (i == 0) {
        if (name) snprintf(name, name_len, "kfac.counters");
        return kfac->counters;
    }
    int index = 1;
    for (int k = 0; k < kfac->assignment.n_slots; k++)
        for (int f = 0; f < N_FIELDS; f++) {
            ob_tensor *t = field_of(&kfac->slots[k], f);
            if (!t || index++ != i) continue;
            if (name) snprintf(name, name_len, "kfac.%s.%s", kfac->slots[k].layer.layer->name, state_fields[f].suffix);
            return t;
        }
    return NULL;
}
