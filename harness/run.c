/* The training loop: clocks, stop conditions, evaluation, logging and
 * checkpoints, the same for every workload and optimizer. */
#define _POSIX_C_SOURCE 200809L
#include "harness/ob_run.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness/comm/ob_comm.h"
#include "harness/ob_checkpoint.h"
#include "harness/ob_checkpoint_gather.h"
#include "harness/ob_clock.h"
#include "harness/ob_grad_sync.h"
#include "harness/ob_h5log.h"
#include "harness/ob_kfac_options.h"
#include "harness/ob_precision_options.h"
#include "harness/ob_run_options.h"
#include "harness/ob_progress.h"
#include "harness/ob_provenance.h"
#include "nn/ob_tape.h"
#include "ob_version.h"
#include "optimizers/kfac/ob_kfac.h"
#include "optimizers/ob_clip.h"
#include "optimizers/ob_optimizer.h"
#include "optimizers/ob_schedule.h"
#include "optimizers/precision/ob_precision.h"
#include "workloads/ob_workload.h"

#define MAX_MILESTONES 64
#define PATH_LEN 4096

/* The one piece of process-wide state: a signal handler can only reach a
 * static. It is set by SIGINT/SIGTERM and polled once per step. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int signo) { stop_signal = signo; }

typedef struct {
    const ob_config *config;
    const ob_workload *workload;
    ob_ctx *ctx;
    ob_workload_run *work;
    ob_comm *comm; /* the world: rank 0 writes the log, every rank trains its shard */
    int rank, world_size;
    ob_grad_sync *grad_sync;
    ob_optimizer *optimizer;
    double clip_norm; /* grad.clip_norm: 0 = off */
    ob_kfac *kfac; /* NULL without --precond */
    ob_kfac_config kfac_config;
    ob_precision *precision; /* NULL in fp32 without loss scaling */
    int64_t precision_log_every;
    ob_schedule schedule;
    double milestones[MAX_MILESTONES];
    ob_h5log *log;
    ob_progress progress;
    ob_phase_timers timers;
    char out_path[PATH_LEN], checkpoint_path[PATH_LEN];

    int64_t step, total_steps, batches_per_epoch, eval_interval, global_batch;
    double wall_start, wall_before, train_s, eval_s, init_s; /* wall_before: from a resumed run */
    double target;
    bool maximize;

    const char *status;
    double time_to_target_s, epochs_to_target, last_metric;
    int64_t steps_to_target;
    char *err;
    size_t err_len;
} run_state;

static double elapsed_wall(const run_state *r) { return r->wall_before + ob_now() - r->wall_start; }

static bool is_root(const run_state *r) { return r->rank == 0; }

static int fail(run_state *r, int code, const char *fmt, const char *detail) {
    snprintf(r->err, r->err_len, fmt, detail);
    return code;
}

/* An MLPerf-style event; the value is a small JSON object. */
static void __attribute__((format(printf, 3, 4))) event(run_state *r, const char *key, const char *fmt, ...) {
    char text[256];
    if (!r->log) return;
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    ob_h5log_event(r->log, 1000.0 * elapsed_wall(r), key, text);
}

/* ---- set-up ---- */

static int resolve_paths(run_state *r) {
    const ob_config *c = r->config;
    const char *out = ob_config_get_str(c, "run.out");
    int length;
    if (out[0]) {
        length = snprintf(r->out_path, sizeof r->out_path, "%s", out);
    } else {
        /* Default: runs/<workload>-<preset>-<optimizer>-seed<N>.h5 */
        if (is_root(r) && mkdir("runs", 0777) != 0 && errno != EEXIST)
            return fail(r, 2, "cannot create output directory runs/: %s", strerror(errno));
        length = snprintf(r->out_path, sizeof r->out_path, "runs/%s-%s-%s-seed%lld.h5",
                          ob_config_get_str(c, "run.workload"), ob_config_get_str(c, "run.preset"),
                          ob_config_get_str(c, "run.optimizer"), (long long)ob_config_get_int(c, "run.seed"));
    }
    const char *checkpoint = ob_config_get_str(c, "run.checkpoint_path");
    if (length < 0 || length >= (int)sizeof r->out_path)
        return fail(r, 2, "run.out: path longer than %s characters", "4095");
    length = checkpoint[0] ? snprintf(r->checkpoint_path, sizeof r->checkpoint_path, "%s", checkpoint)
                           : snprintf(r->checkpoint_path, sizeof r->checkpoint_path, "%s.ckpt", r->out_path);
    if (length < 0 || length >= (int)sizeof r->checkpoint_path)
        return fail(r, 2, "run.checkpoint_path: path longer than %s characters", "4095");
    return 0;
}

static int create_workload(run_state *r) {
    ob_workload_options options = ob_run_workload_options(r->config, r->rank, r->world_size);
    return r->workload->create(r->ctx, &options, &r->work, r->err, r->err_len);
}

static int create_optimizer(run_state *r) {
    const ob_config *c = r->config;
    ob_params *params = r->workload->params(r->work);
    r->optimizer = ob_run_optimizer_new(r->ctx, params, c);
    if (!r->optimizer) return fail(r, 2, "optimizer: %s", ob_ctx_error(r->ctx));
    r->clip_norm = ob_config_get_float(c, "grad.clip_norm");
    int64_t bucket_bytes = (int64_t)(ob_config_get_float(c, "dist.bucket_mb") * 1048576.0);
    r->grad_sync = ob_grad_sync_new(r->ctx, params, r->comm, bucket_bytes);
    if (!r->grad_sync) return fail(r, 1, "%s", ob_ctx_error(r->ctx));
    if (strcmp(ob_config_get_str(c, "run.precond"), "none") == 0) return 0;
    int rc = ob_kfac_options_from_config(c, &r->kfac_config, r->err, r->err_len);
    if (rc) return rc;
    r->kfac = ob_kfac_new(r->ctx, params, r->comm, &r->kfac_config, r->batches_per_epoch, &rc, r->err,
                          r->err_len);
    return r->kfac ? 0 : rc;
}

static int create_precision(run_state *r) {
    ob_precision_config config;
    bool wanted;
    int rc = ob_precision_options_from_config(r->config, ob_ctx_seed(r->ctx), r->rank, &config, &wanted, r->err,
                                              r->err_len);
    if (rc || !wanted) return rc;
    r->precision_log_every = ob_config_get_int(r->config, "precision.log_every");
    r->precision = ob_precision_new(r->ctx, &config, r->workload->params(r->work), r->err, r->err_len);
    return r->precision ? 0 : 2;
}

static int create_schedule(run_state *r) {
    const ob_config *c = r->config;
    ob_schedule *s = &r->schedule;
    if (ob_schedule_kind_parse(ob_config_get_str(c, "schedule.kind"), &s->kind))
        return fail(r, 2, "schedule.kind: unknown schedule %s", ob_config_get_str(c, "schedule.kind"));
    s->base_lr = ob_run_base_lr(c);
    s->steps_per_epoch = r->batches_per_epoch;
    s->total_epochs = ob_config_get_float(c, "run.epochs");
    s->warmup_epochs = ob_config_get_float(c, "schedule.warmup_epochs");
    s->step_size = ob_config_get_float(c, "schedule.step_size");
    s->gamma = ob_config_get_float(c, "schedule.gamma");
    s->n_milestones = ob_config_get_float_list(c, "schedule.milestones", r->milestones, MAX_MILESTONES);
    if (s->n_milestones > MAX_MILESTONES) return fail(r, 2, "schedule.milestones: more than %s", "64");
    s->milestones = r->milestones;
    s->power = ob_config_get_float(c, "schedule.power");
    s->min_lr = ob_config_get_float(c, "schedule.min_lr");
    s->pct_start = ob_config_get_float(c, "schedule.pct_start");
    s->div_factor = ob_config_get_float(c, "schedule.div_factor");
    s->final_div_factor = ob_config_get_float(c, "schedule.final_div_factor");
    return ob_schedule_validate(s, r->err, r->err_len);
}

static void plan_steps(run_state *r) {
    const ob_config *c = r->config;
    r->batches_per_epoch = r->workload->batches_per_epoch(r->work);
    r->total_steps = (int64_t)llround(ob_config_get_float(c, "run.epochs") * (double)r->batches_per_epoch);
    if (r->total_steps < 1) r->total_steps = 1;
    int64_t max_steps = ob_config_get_int(c, "run.max_steps");
    if (max_steps > 0 && max_steps < r->total_steps) r->total_steps = max_steps;
    r->eval_interval = (int64_t)llround(ob_config_get_float(c, "run.eval_every") * (double)r->batches_per_epoch);
    if (r->eval_interval < 1) r->eval_interval = 1;
}

/* Root attributes known at the start; the outcome ones are rewritten at the end. */
static int write_run_attributes(run_state *r) {
    if (!r->log) return 0;
    const ob_config *c = r->config;
    char host[256], cpu[256], created[64];
    ob_hostname(host, sizeof host);
    ob_cpu_model(cpu, sizeof cpu);
    ob_utc_now(created, sizeof created);
    char *config_ini = ob_config_to_ini(c);
    if (!config_ini) return fail(r, 1, "%s", "out of memory");
    ob_h5log *log = r->log;
    int rc = ob_h5log_attr_int(log, "schema_version", 1) | ob_h5log_attr_str(log, "optbench_version", OB_VERSION) |
             ob_h5log_attr_str(log, "git_commit", OB_GIT_COMMIT) | ob_h5log_attr_str(log, "created_utc", created) |
             ob_h5log_attr_str(log, "hostname", host) | ob_h5log_attr_str(log, "cpu_model", cpu) |
             ob_h5log_attr_str(log, "gpu_model", "none") | ob_h5log_attr_int(log, "world_size", r->world_size) |
             ob_h5log_attr_int(log, "threads", ob_ctx_threads(r->ctx));
    static const char *const copied[][2] = {
        {"workload", "run.workload"},   {"preset", "run.preset"},       {"optimizer", "run.optimizer"},
        {"precond", "run.precond"},     {"precision", "run.precision"}, {"loss_scale", "run.loss_scale"}};
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++)
        rc |= ob_h5log_attr_str(log, copied[i][0], ob_config_get_str(c, copied[i][1]));
    rc |= ob_h5log_attr_int(log, "seed", ob_config_get_int(c, "run.seed")) |
          ob_h5log_attr_int(log, "global_batch_size", r->global_batch) |
          ob_h5log_attr_str(log, "config", config_ini) |
          ob_h5log_attr_str(log, "target_metric", r->workload->metric_name) |
          ob_h5log_attr_float(log, "target_value", r->target) |
          ob_h5log_attr_str(log, "target_direction", r->workload->target_direction) |
          ob_h5log_attr_int(log, "params", ob_params_numel(r->workload->params(r->work)));
    free(config_ini);
    return rc ? fail(r, 2, "%s", ob_h5log_error(log)) : 0;
}

static int open_log(run_state *r, const ob_checkpoint_state *resumed) {
    if (!is_root(r)) return 0;
    if (resumed)
        return ob_h5log_reopen(&r->log, r->out_path, &resumed->log_counts, r->err, r->err_len);
    return ob_h5log_create(&r->log, r->out_path, ob_config_get_bool(r->config, "run.force"),
                           r->workload->n_secondary, r->workload->secondary_names, r->err, r->err_len);
}

/* ---- checkpoint tensors: parameters, buffers, optimizer state ---- */

typedef struct {
    ob_checkpoint_tensor *items;
    char (*names)[OB_NAME_MAX + 32];
    bool *per_rank; /* stored under rank<r>/ (ob_checkpoint_rank_name) */
    int count;
} tensor_list;

/* On more than one rank, what each rank holds for itself: K-FAC state (a
 * rank keeps only its layers' factors and inverses), batch-norm statistics
 * unless synchronized, and the loss scaler's state. Parameters and the
 * optimizer's state are the same everywhere. */
static bool buffers_per_rank(const run_state *r) {
    return r->world_size > 1 && !ob_config_get_bool(r->config, "dist.sync_batchnorm");
}

static void name_item(run_state *r, tensor_list *list, int i, ob_tensor *t, bool per_rank, const char *name) {
    list->per_rank[i] = per_rank;
    if (per_rank)
        ob_checkpoint_rank_name(list->names[i], sizeof list->names[i], r->rank, name);
    else
        snprintf(list->names[i], sizeof list->names[i], "%s", name);
    list->items[i] = (ob_checkpoint_tensor){list->names[i], t};
}

static int list_state_tensors(run_state *r, tensor_list *list) {
    ob_params *params = r->workload->params(r->work);
    int n_params = ob_params_count(params), n_buffers = ob_params_buffer_count(params);
    int n_state = ob_optimizer_state_count(r->optimizer);
    int n_kfac = r->kfac ? ob_kfac_state_count(r->kfac) : 0;
    int n_precision = r->precision != NULL;
    int total = n_params + n_buffers + n_state + n_kfac + n_precision;
    bool multi_rank = r->world_size > 1;
    list->items = calloc((size_t)total, sizeof *list->items);
    list->names = calloc((size_t)total, sizeof *list->names);
    list->per_rank = calloc((size_t)total, sizeof *list->per_rank);
    if (!list->items || !list->names || !list->per_rank) return fail(r, 1, "%s", "out of memory");
    char name[OB_NAME_MAX + 16];
    for (int i = 0; i < total; i++) {
        if (i < n_params) {
            ob_param *p = ob_params_at(params, i);
            name_item(r, list, i, p->value, false, p->name);
        } else if (i < n_params + n_buffers) {
            ob_buffer *b = ob_params_buffer_at(params, i - n_params);
            name_item(r, list, i, b->value, buffers_per_rank(r), b->name);
        } else if (i < n_params + n_buffers + n_state) {
            ob_tensor *t = ob_optimizer_state_at(r->optimizer, i - n_params - n_buffers, name, sizeof name);
            name_item(r, list, i, t, false, name);
        } else if (i < n_params + n_buffers + n_state + n_kfac) {
            ob_tensor *t = ob_kfac_state_at(r->kfac, i - n_params - n_buffers - n_state, name, sizeof name);
            name_item(r, list, i, t, multi_rank, name);
        } else {
            name_item(r, list, i, ob_precision_state(r->precision), multi_rank, "precision.state");
        }
    }
    list->count = total;
    return 0;
}

static void free_tensor_list(tensor_list *list) {
    free(list->items);
    free(list->names);
    free(list->per_rank);
}

static ob_checkpoint_state snapshot(run_state *r) {
    ob_checkpoint_state state = {.step = r->step, .world_size = r->world_size, .train_s = r->train_s,
                                 .eval_s = r->eval_s, .init_s = r->init_s, .wall_s = elapsed_wall(r),
                                 .log_counts = ob_h5log_get_counts(r->log), .timers = r->timers};
    return state;
}

/* This rank's own tensors go to rank 0 (a collective: every rank calls it). */
static int gather_per_rank(run_state *r, const tensor_list *list, ob_checkpoint_gathered *others) {
    ob_checkpoint_tensor *mine = malloc((size_t)(list->count + 1) * sizeof *mine);
    if (!mine) return fail(r, 1, "%s", "out of memory");
    int n_mine = 0;
    for (int i = 0; i < list->count; i++)
        if (list->per_rank[i]) mine[n_mine++] = list->items[i];
    int rc = ob_checkpoint_gather(r->comm, mine, n_mine, others, r->err, r->err_len);
    free(mine);
    return rc;
}

/* Rank 0 writes everything: what every rank shares, its own per-rank
 * tensors and the other ranks' (gathered). */
static int write_checkpoint(run_state *r, const tensor_list *list, const ob_checkpoint_gathered *others) {
    char *config_ini = ob_config_to_ini(r->config);
    int total = list->count + others->count;
    ob_checkpoint_tensor *all = malloc((size_t)total * sizeof *all);
    int rc = config_ini && all ? 0 : fail(r, 1, "%s", "out of memory");
    event(r, "checkpoint", "{\"step\": %lld}", (long long)r->step);
    if (!rc) rc = ob_h5log_flush(r->log) ? fail(r, 2, "%s", ob_h5log_error(r->log)) : 0;
    if (!rc) {
        memcpy(all, list->items, (size_t)list->count * sizeof *all);
        if (others->count) memcpy(all + list->count, others->items, (size_t)others->count * sizeof *all);
        ob_checkpoint_state state = snapshot(r);
        rc = ob_checkpoint_save(r->checkpoint_path, config_ini, &state, all, total, r->err, r->err_len);
    }
    free(all);
    free(config_ini);
    return rc;
}

static int save_checkpoint(run_state *r) {
    tensor_list list = {0};
    ob_checkpoint_gathered others = {0};
    int rc = list_state_tensors(r, &list);
    if (!rc && r->world_size > 1) rc = gather_per_rank(r, &list, &others);
    if (!rc && is_root(r)) rc = write_checkpoint(r, &list, &others);
    ob_checkpoint_gathered_free(&others);
    free_tensor_list(&list);
    return rc;
}

static int load_checkpoint(run_state *r, const char *path, ob_checkpoint_state *state) {
    tensor_list list = {0};
    int rc = list_state_tensors(r, &list);
    if (!rc)
        rc = ob_checkpoint_load(path, r->rank, r->world_size, state, list.items, list.count, r->err, r->err_len);
    if (!rc && r->precision) ob_precision_state_restored(r->precision);
    free_tensor_list(&list);
    return rc;
}

/* run.init_from: the model's parameters and buffers from another run's
 * checkpoint (BERT phase 2 starts from phase 1's weights); the optimizer
 * and everything else start fresh. */
static int init_weights(run_state *r) {
    const char *path = ob_config_get_str(r->config, "run.init_from");
    if (!path[0]) return 0;
    ob_params *params = r->workload->params(r->work);
    int n_params = ob_params_count(params), total = n_params + ob_params_buffer_count(params);
    ob_checkpoint_tensor *weights = malloc((size_t)(total + 1) * sizeof *weights);
    if (!weights) return fail(r, 1, "%s", "out of memory");
    for (int i = 0; i < total; i++) {
        if (i < n_params) {
            ob_param *p = ob_params_at(params, i);
            weights[i] = (ob_checkpoint_tensor){p->name, p->value};
        } else {
            ob_buffer *b = ob_params_buffer_at(params, i - n_params);
            weights[i] = (ob_checkpoint_tensor){b->name, b->value};
        }
    }
    int rc = ob_checkpoint_load_weights(path, weights, total, r->err, r->err_len);
    free(weights);
    return rc;
}

/* ---- the step and the evaluation ---- */

/* The mean over ranks of each rank's mean loss: the global batch's loss,
 * since every rank holds an equal share. */
static int average_over_ranks(run_state *r, double *value) {
    if (r->world_size == 1) return 0;
    if (ob_comm_allreduce_sum(r->comm, value, 1, OB_F64, OB_COMM_EVAL))
        return fail(r, 1, "loss all-reduce: %s", ob_comm_error(r->comm));
    *value /= r->world_size;
    return 0;
}

/* K-FAC keeps its own phase clocks; the step adds what it spent to ours. */
static const ob_phase kfac_phases[OB_KFAC_PHASE_COUNT] = {OB_PHASE_FACTORS, OB_PHASE_FACTOR_COMM,
                                                          OB_PHASE_INVERSES, OB_PHASE_INVERSE_COMM,
                                                          OB_PHASE_PRECONDITION};

static int precondition(run_state *r, double lr) {
    double before[OB_KFAC_PHASE_COUNT], after[OB_KFAC_PHASE_COUNT];
    int64_t calls_before[OB_KFAC_PHASE_COUNT], calls_after[OB_KFAC_PHASE_COUNT];
    ob_kfac_phase_times(r->kfac, before, calls_before);
    if (ob_kfac_precondition(r->kfac, r->step, lr)) return fail(r, 1, "K-FAC: %s", ob_ctx_error(r->ctx));
    ob_kfac_phase_times(r->kfac, after, calls_after);
    for (int p = 0; p < OB_KFAC_PHASE_COUNT; p++) {
        r->timers.seconds[kfac_phases[p]] += after[p] - before[p];
        r->timers.calls[kfac_phases[p]] += calls_after[p] - calls_before[p];
    }
    return 0;
}

/* What one step reports to /train. */
typedef struct {
    double loss, lr, grad_norm, loss_scale;
} step_result;

/* Under a precision policy: gradients back to true values before they are
 * averaged (adaptive scales differ between ranks), then whether the update
 * may go ahead (every rank sees the same averaged norm, so all decide
 * alike). */
static bool accept_update(run_state *r, double grad_norm) {
    return !r->precision || ob_precision_accept(r->precision, isfinite(grad_norm));
}

/* One update; returns 0 and what it reports, or an error code. Only this
 * is on the time-to-accuracy clock. */
static int train_step(run_state *r, step_result *out) {
    ob_params *params = r->workload->params(r->work);
    int64_t epoch = r->step / r->batches_per_epoch, batch_index = r->step % r->batches_per_epoch;
    double t = ob_now();
    int rc = r->workload->load_batch(r->work, epoch, batch_index, r->err, r->err_len);
    if (rc) return rc;
    t = ob_phase_end(&r->timers, OB_PHASE_DATA, t);
    ob_params_zero_grad(params);
    if (r->kfac) ob_kfac_before_forward(r->kfac, r->step);
    if (r->precision) ob_precision_begin_step(r->precision, r->step);
    out->loss_scale = r->precision ? ob_precision_loss_scale(r->precision) : 1.0;
    ob_tensor *loss = r->workload->forward_loss(r->ctx, r->work);
    if (!loss) return fail(r, 1, "forward: %s", ob_ctx_error(r->ctx));
    out->loss = ob_f32(loss)[0];
    t = ob_phase_end(&r->timers, OB_PHASE_FORWARD, t);
    if (ob_backward_scaled(r->ctx, loss, out->loss_scale)) return fail(r, 1, "backward: %s", ob_ctx_error(r->ctx));
    if (r->precision) ob_precision_unscale(params);
    t = ob_phase_end(&r->timers, OB_PHASE_BACKWARD, t);
    if (ob_grad_sync_average(r->grad_sync)) return fail(r, 1, "%s", ob_ctx_error(r->ctx));
    if ((rc = average_over_ranks(r, &out->loss))) return rc;
    t = ob_phase_end(&r->timers, OB_PHASE_GRAD_ALLREDUCE, t);
    out->grad_norm = ob_grad_norm(params); /* logged as measured, before clipping */
    out->lr = ob_schedule_lr(&r->schedule, r->step);
    /* A non-finite loss (the same on every rank) ends the run before the
     * update can spread it; a skipped step (loss scaling) changes nothing.
     * Clipping sees the averaged gradient, the same on every rank, and K-FAC
     * preconditions the clipped one. */
    if (isfinite(out->loss) && accept_update(r, out->grad_norm)) {
        ob_clip_grad_norm(params, out->grad_norm, r->clip_norm);
        if (r->kfac && (rc = precondition(r, out->lr))) return rc;
        t = ob_now();
        if (ob_optimizer_step(r->optimizer, out->lr)) return fail(r, 1, "update: %s", ob_ctx_error(r->ctx));
        if (r->precision) ob_precision_after_update(r->precision, params);
    }
    ob_phase_end(&r->timers, OB_PHASE_UPDATE, t);
    ob_ctx_step_reset(r->ctx);
    return 0;
}

/* One /precision row per Linear/Conv2d layer: this rank's statistics since
 * the previous rows. */
static void log_precision(run_state *r) {
    for (int i = 0; r->log && i < ob_precision_layer_count(r->precision); i++) {
        ob_precision_layer_stat stat = ob_precision_layer_stat_at(r->precision, i);
        double nonzero = stat.nonzero > 0 ? (double)stat.nonzero : 1.0;
        ob_precision_row row = {.step = r->step, .layer = stat.layer, .loss_scale = stat.loss_scale,
                                .values = stat.values, .underflow_frac = (double)stat.underflow / nonzero,
                                .overflow_frac = (double)stat.overflow / nonzero};
        ob_h5log_precision(r->log, &row);
    }
    ob_precision_reset_stats(r->precision);
}

static bool target_met(const run_state *r, double metric) {
    return r->maximize ? metric >= r->target : metric <= r->target;
}

/* Sums of every rank's shard: the metric over the whole evaluation set. */
static int reduce_eval(run_state *r, ob_eval_result *result) {
    if (r->world_size == 1) return 0;
    enum { N_SUMS = 2 * OB_MAX_SECONDARY_METRICS + 3 };
    double sums[N_SUMS] = {result->metric, result->loss, (double)result->samples};
    for (int i = 0; i < OB_MAX_SECONDARY_METRICS; i++) {
        sums[3 + i] = result->secondary[i];
        sums[3 + OB_MAX_SECONDARY_METRICS + i] = result->secondary_samples[i];
    }
    if (ob_comm_allreduce_sum(r->comm, sums, N_SUMS, OB_F64, OB_COMM_EVAL))
        return fail(r, 1, "evaluation all-reduce: %s", ob_comm_error(r->comm));
    result->metric = sums[0];
    result->loss = sums[1];
    result->samples = (int64_t)sums[2];
    for (int i = 0; i < OB_MAX_SECONDARY_METRICS; i++) {
        result->secondary[i] = sums[3 + i];
        result->secondary_samples[i] = sums[3 + OB_MAX_SECONDARY_METRICS + i];
    }
    return 0;
}

/* K-FAC's KL clipping since the previous evaluation, as an event and a
 * progress line: a run whose every step is clipped ignores its learning-rate
 * schedule (ob_kfac.h). */
static void log_kl_clipping(run_state *r) {
    ob_kfac_kl_summary kl = ob_kfac_take_kl_summary(r->kfac);
    event(r, "kfac_kl_clip", "{\"steps\": %lld, \"clipped\": %lld, \"mean_scale\": %.6g, \"min_scale\": %.6g}",
          (long long)kl.steps, (long long)kl.clipped, kl.mean_scale, kl.min_scale);
    ob_progress_line(&r->progress,
                     "kfac  KL-clipped %lld of %lld steps since the last evaluation, scale mean %.3g min %.3g",
                     (long long)kl.clipped, (long long)kl.steps, kl.mean_scale, kl.min_scale);
}

/* Evaluates, logs the point and returns whether the target is met. */
static int evaluate(run_state *r, bool *converged) {
    double started = ob_now();
    ob_eval_result result;
    double epoch = (double)r->step / (double)r->batches_per_epoch;
    event(r, "eval_start", "{\"epoch_num\": %.4f}", epoch);
    int rc = r->workload->evaluate(r->ctx, r->work, &result, r->err, r->err_len);
    if (rc) return rc;
    if ((rc = reduce_eval(r, &result))) return rc;
    r->eval_s += ob_now() - started;
    double samples = result.samples > 0 ? (double)result.samples : 1.0;
    double secondary[OB_MAX_SECONDARY_METRICS];
    for (int i = 0; i < r->workload->n_secondary; i++)
        secondary[i] = result.secondary[i] / (result.secondary_samples[i] > 0 ? result.secondary_samples[i] : samples);
    r->last_metric = result.metric / samples;
    ob_eval_row row = {.step = r->step, .epoch = epoch, .train_s = r->train_s, .eval_s = r->eval_s,
                       .metric = r->last_metric, .loss = result.loss / samples, .secondary = secondary};
    if (r->log) ob_h5log_eval(r->log, &row);
    event(r, "eval_accuracy", "{\"value\": %.6f}", r->last_metric);
    if (r->kfac) log_kl_clipping(r);
    ob_progress_line(&r->progress, "eval  epoch %.2f  step %lld  %s %.4f  loss %.4f  train %.1f s", epoch,
                     (long long)r->step, r->workload->metric_name, r->last_metric, row.loss, r->train_s);
    *converged = target_met(r, r->last_metric);
    if (*converged) {
        r->time_to_target_s = r->train_s;
        r->steps_to_target = r->step;
        r->epochs_to_target = epoch;
    }
    return r->log && ob_h5log_flush(r->log) ? fail(r, 2, "%s", ob_h5log_error(r->log)) : 0;
}

/* ---- the loop ---- */

/* A signal may reach the ranks at different steps; they stop together at
 * the first step any of them saw it. */
static int stop_requested(run_state *r, bool *stop) {
    int32_t flag = stop_signal != 0;
    if (r->world_size > 1 && ob_comm_allreduce_max(r->comm, &flag, 1, OB_I32, OB_COMM_CONTROL))
        return fail(r, 1, "stop-flag all-reduce: %s", ob_comm_error(r->comm));
    *stop = flag != 0;
    return 0;
}

typedef struct {
    double started, step_at_start;
} rate_window;

static int train_loop(run_state *r) {
    int64_t kill_at_step = ob_config_get_int(r->config, "debug.kill_at_step");
    int64_t checkpoint_every = ob_config_get_int(r->config, "run.checkpoint_every");
    rate_window window = {ob_now(), (double)r->step};
    while (r->step < r->total_steps) {
        bool stop;
        int rc = stop_requested(r, &stop);
        if (rc) return rc;
        if (stop) {
            r->status = "aborted";
            return 0;
        }
        double started = ob_now();
        step_result result;
        rc = train_step(r, &result);
        if (rc) return rc;
        double loss = result.loss;
        r->train_s += ob_now() - started;
        r->step++;
        ob_train_row row = {.step = r->step, .epoch = (double)r->step / (double)r->batches_per_epoch,
                            .samples = r->step * r->global_batch, .train_s = r->train_s, .loss = loss,
                            .lr = result.lr, .loss_scale = result.loss_scale, .grad_norm = result.grad_norm};
        if (r->log) ob_h5log_train(r->log, &row);
        if (r->precision && r->step % r->precision_log_every == 0) log_precision(r);
        if (!isfinite(loss)) {
            r->status = "diverged";
            event(r, "diverged", "{\"step\": %lld}", (long long)r->step);
            ob_progress_line(&r->progress, "diverged: loss is %g at step %lld", loss, (long long)r->step);
            return 0;
        }
        double window_s = ob_now() - window.started;
        double steps_per_s = window_s > 0 ? ((double)r->step - window.step_at_start) / window_s : 0;
        ob_progress_step(&r->progress, row.epoch, r->step, loss, steps_per_s * (double)r->global_batch,
                         steps_per_s);
        if (r->step % r->batches_per_epoch == 0)
            event(r, "epoch_stop", "{\"epoch_num\": %lld}", (long long)(r->step / r->batches_per_epoch));
        if (r->step % r->eval_interval == 0 || r->step == r->total_steps) {
            bool converged;
            rc = evaluate(r, &converged);
            if (rc) return rc;
            if (converged) {
                r->status = "converged";
                return 0;
            }
        }
        if (checkpoint_every > 0 && r->step % checkpoint_every == 0 && (rc = save_checkpoint(r))) return rc;
        if (kill_at_step == r->step) raise(SIGKILL); /* test aid: a hard crash */
    }
    r->status = "budget_exhausted";
    return 0;
}

/* ---- the end: outcome, memory, timing, close ---- */

/* One rank's summary as doubles (byte counts stay exact below 2^53), so a
 * single all-gather brings every rank's rows to rank 0. */
enum {
    SUMMARY_MEMORY = 0,
    SUMMARY_TIMING = SUMMARY_MEMORY + OB_MEM_CATEGORY_COUNT + 2,
    SUMMARY_COMM = SUMMARY_TIMING + 2 * OB_PHASE_COUNT,
    SUMMARY_LENGTH = SUMMARY_COMM + 3 * OB_COMM_OP_COUNT * OB_COMM_CATEGORY_COUNT
};

static void fill_summary(const run_state *r, double *summary) {
    for (int c = 0; c < OB_MEM_CATEGORY_COUNT; c++) summary[SUMMARY_MEMORY + c] = (double)ob_mem_peak(r->ctx, c);
    summary[SUMMARY_MEMORY + OB_MEM_CATEGORY_COUNT] = (double)ob_mem_peak_total(r->ctx);
    summary[SUMMARY_MEMORY + OB_MEM_CATEGORY_COUNT + 1] = (double)ob_peak_rss_bytes();
    for (int p = 0; p < OB_PHASE_COUNT; p++) {
        summary[SUMMARY_TIMING + 2 * p] = r->timers.seconds[p];
        summary[SUMMARY_TIMING + 2 * p + 1] = (double)r->timers.calls[p];
    }
    for (int op = 0; op < OB_COMM_OP_COUNT; op++)
        for (int c = 0; c < OB_COMM_CATEGORY_COUNT; c++) {
            ob_comm_stat stat = ob_comm_stats(r->comm, op, c);
            double *at = summary + SUMMARY_COMM + 3 * (op * OB_COMM_CATEGORY_COUNT + c);
            at[0] = (double)stat.bytes;
            at[1] = (double)stat.calls;
            at[2] = stat.seconds;
        }
}

static void write_rank_summary(run_state *r, int32_t rank, const double *summary) {
    for (int c = 0; c < OB_MEM_CATEGORY_COUNT + 2; c++) {
        const char *name = c < OB_MEM_CATEGORY_COUNT ? ob_mem_category_name(c)
                           : c == OB_MEM_CATEGORY_COUNT ? "total_accounted" : "peak_rss";
        ob_memory_row row = {rank, name, (int64_t)summary[SUMMARY_MEMORY + c]};
        ob_h5log_memory(r->log, &row);
    }
    for (int p = 0; p < OB_PHASE_COUNT; p++) {
        ob_timing_row row = {rank, ob_phase_name(p), summary[SUMMARY_TIMING + 2 * p],
                             (int64_t)summary[SUMMARY_TIMING + 2 * p + 1]};
        ob_h5log_timing(r->log, &row);
    }
    for (int op = 0; op < OB_COMM_OP_COUNT; op++)
        for (int c = 0; c < OB_COMM_CATEGORY_COUNT; c++) {
            const double *at = summary + SUMMARY_COMM + 3 * (op * OB_COMM_CATEGORY_COUNT + c);
            if (at[1] == 0) continue; /* only what was used */
            ob_comm_row row = {rank, ob_comm_op_name(op), ob_comm_category_name(c), (int64_t)at[0],
                               (int64_t)at[1], at[2]};
            ob_h5log_comm(r->log, &row);
        }
}

/* Every rank's memory, timing and communication reach rank 0's file.
 * Collective: every rank calls it once training has ended. */
static int gather_summaries(run_state *r, double **all) {
    double mine[SUMMARY_LENGTH];
    fill_summary(r, mine);
    *all = is_root(r) ? malloc(sizeof mine * (size_t)r->world_size) : NULL;
    double *scratch = is_root(r) ? *all : malloc(sizeof mine * (size_t)r->world_size);
    if (!scratch) return fail(r, 1, "%s", "out of memory");
    int rc = ob_comm_allgather(r->comm, mine, scratch, SUMMARY_LENGTH, OB_F64, OB_COMM_CONTROL);
    if (!is_root(r)) free(scratch);
    return rc ? fail(r, 1, "summary all-gather: %s", ob_comm_error(r->comm)) : 0;
}

static void write_summaries(run_state *r, const double *all) {
    for (int rank = 0; rank < r->world_size; rank++) write_rank_summary(r, rank, all + rank * SUMMARY_LENGTH);
}

static int finish(run_state *r, const double *summaries) {
    ob_h5log *log = r->log;
    if (summaries) write_summaries(r, summaries);
    event(r, "run_stop", "{\"status\": \"%s\"}", r->status);
    int rc = ob_h5log_attr_float(log, "time_to_target_s", r->time_to_target_s) |
             ob_h5log_attr_int(log, "steps_to_target", r->steps_to_target) |
             ob_h5log_attr_float(log, "epochs_to_target", r->epochs_to_target) |
             ob_h5log_attr_float(log, "train_s", r->train_s) | ob_h5log_attr_float(log, "eval_s", r->eval_s) |
             ob_h5log_attr_float(log, "init_s", r->init_s) | ob_h5log_attr_float(log, "wall_s", elapsed_wall(r)) |
             ob_h5log_attr_str(log, "status", r->status) |
             ob_h5log_attr_int(log, "skipped_steps", r->precision ? ob_precision_skipped_steps(r->precision) : 0);
    if (rc) return fail(r, 2, "%s", ob_h5log_error(log));
    return 0;
}

static void print_result(const run_state *r) {
    if (!is_root(r)) return;
    printf("status %s after %lld steps (%.2f epochs), train %.1f s, eval %.1f s, init %.1f s, wall %.1f s\n",
           r->status, (long long)r->step, (double)r->step / (double)r->batches_per_epoch, r->train_s, r->eval_s,
           r->init_s, elapsed_wall(r));
    if (isfinite(r->time_to_target_s))
        printf("time-to-accuracy: %s %.4f >= %.4f reached in %.1f s of training, %.2f epochs, %lld steps\n",
               r->workload->metric_name, r->last_metric, r->target, r->time_to_target_s, r->epochs_to_target,
               (long long)r->steps_to_target);
    else
        printf("time-to-accuracy: target %s %.4f not reached (last %.4f)\n", r->workload->metric_name, r->target,
               r->last_metric);
    printf("hdf5: %s\n", r->out_path);
}

/* Synchronized batch-norm's reduction (nn/ob_ctx.h). */
static int sum_over_ranks(double *values, int64_t n, void *comm) {
    return ob_comm_allreduce_sum(comm, values, n, OB_F64, OB_COMM_BATCHNORM);
}

static int setup(run_state *r, const char *resume_path) {
    const ob_config *c = r->config;
    if (resume_path && ob_checkpoint_check_world(resume_path, r->world_size, r->err, r->err_len)) return 2;
    r->workload = ob_workload_find(ob_config_get_str(c, "run.workload"));
    if (!r->workload) return fail(r, 2, "run.workload: unknown workload %s", ob_config_get_str(c, "run.workload"));
    r->global_batch = ob_config_get_int(c, "run.batch_size");
    r->target = ob_config_get_float(c, "run.target");
    r->maximize = strcmp(r->workload->target_direction, "max") == 0;
    ob_ctx_config ctx_config = {.threads = (int)ob_config_get_int(c, "run.threads"),
                                .seed = (uint64_t)ob_config_get_int(c, "run.seed"), .rank = r->rank,
                                .world_size = r->world_size};
    r->ctx = ob_ctx_new(&ctx_config);
    if (!r->ctx) return fail(r, 1, "%s", "out of memory");
    if (r->world_size > 1 && ob_config_get_bool(c, "dist.sync_batchnorm"))
        ob_ctx_set_batchnorm_reduce(r->ctx, &(ob_batchnorm_reduce){.sum = sum_over_ranks, .user = r->comm});
    int rc = resolve_paths(r);
    ob_checkpoint_state resumed;
    /* Everything that can reject the input comes before the output file is
     * touched, so a bad option never costs an existing file (--force). */
    if (!rc) rc = create_workload(r);
    if (!rc && !resume_path) rc = init_weights(r);
    if (!rc) plan_steps(r);
    if (!rc) rc = create_optimizer(r);
    if (!rc) rc = create_schedule(r);
    if (!rc) rc = create_precision(r);
    if (!rc && resume_path) rc = load_checkpoint(r, resume_path, &resumed);
    if (!rc) rc = open_log(r, resume_path ? &resumed : NULL);
    if (!rc && resume_path) {
        r->step = resumed.step;
        r->train_s = resumed.train_s;
        r->eval_s = resumed.eval_s;
        r->init_s = resumed.init_s;
        r->wall_before = resumed.wall_s;
        r->timers = resumed.timers;
    }
    if (!rc) rc = write_run_attributes(r);
    return rc;
}

/* Set-up either succeeds on every rank or stops them all before the first
 * collective of training. Each rank knows every rank's code; the message is
 * printed by rank 0 when it failed itself (the same config fails the same
 * way everywhere), else by the ranks that failed. */
static int agree_on_setup(run_state *r, int rc) {
    if (r->world_size == 1) return rc;
    int32_t *codes = calloc((size_t)r->world_size, sizeof *codes), mine = rc, worst = 0;
    if (!codes || ob_comm_allgather(r->comm, &mine, codes, 1, OB_I32, OB_COMM_CONTROL)) {
        free(codes);
        return fail(r, 1, "set-up agreement: %s", codes ? ob_comm_error(r->comm) : "out of memory");
    }
    for (int i = 0; i < r->world_size; i++) worst = codes[i] > worst ? codes[i] : worst;
    if (worst && !rc) snprintf(r->err, r->err_len, is_root(r) ? "set-up failed on another rank (its message "
                                                                "above)" : "%s", "");
    if (rc && !is_root(r) && codes[0]) r->err[0] = '\0'; /* rank 0 says it */
    if (rc && !is_root(r) && !codes[0]) {
        char own[512];
        snprintf(own, sizeof own, "%s", r->err);
        snprintf(r->err, r->err_len, "rank %d: %s", r->rank, own);
    }
    free(codes);
    return worst;
}

/* The world communicator first: rank and size key everything else. */
static int join_world(run_state *r) {
    if (ob_comm_world(&r->comm, r->err, r->err_len)) return 2;
    r->rank = ob_comm_rank(r->comm);
    r->world_size = ob_comm_size(r->comm);
    return 0;
}

int ob_run_execute(const ob_config *config, char *err, size_t err_len) {
    run_state r = {.config = config, .err = err, .err_len = err_len, .status = "aborted",
                   .time_to_target_s = NAN, .epochs_to_target = NAN, .last_metric = NAN, .steps_to_target = -1};
    r.wall_start = ob_now();
    const char *resume = ob_config_get_str(config, "run.resume");
    if (join_world(&r)) return 2;
    int rc = agree_on_setup(&r, setup(&r, resume[0] ? resume : NULL));
    struct sigaction action = {.sa_handler = on_stop_signal}, old_int, old_term;
    stop_signal = 0;
    sigaction(SIGINT, &action, &old_int);
    sigaction(SIGTERM, &action, &old_term);
    bool training_started = !rc;
    if (training_started) {
        r.init_s += ob_now() - r.wall_start;
        event(&r, resume[0] ? "run_resume" : "run_start", "{\"step\": %lld}", (long long)r.step);
        ob_progress_init(&r.progress, ob_config_get_int(config, "run.log_every"), r.total_steps);
        r.progress.silent = !is_root(&r);
        rc = train_loop(&r);
    }
    double *summaries = NULL;
    if (training_started && r.world_size > 1 && rc) {
        /* A rank that fails mid-run cannot meet the others at their next
         * collective: say why and take the whole job down. */
        fprintf(stderr, "optbench: rank %d: %s\n", r.rank, err);
        ob_comm_abort(r.comm, rc);
    }
    if (training_started) {
        int gather_rc = gather_summaries(&r, &summaries);
        if (!rc) rc = gather_rc;
    }
    if (!training_started && r.log && !resume[0]) {
        /* Set-up failed after the file was created: no run happened, so
         * the file goes rather than staying as a stub. */
        ob_h5log_close(r.log);
        r.log = NULL;
        remove(r.out_path);
    }
    if (r.log) {
        /* Whatever happened, the file ends closed with an honest status. */
        int finish_rc = finish(&r, summaries);
        if (!rc) rc = finish_rc;
        if (ob_h5log_close(r.log) && !rc) rc = fail(&r, 2, "cannot close %s", r.out_path);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (!rc) print_result(&r);
    if (!rc && strcmp(r.status, "aborted") == 0) {
        snprintf(err, err_len, "aborted by signal %d; %s is closed with status aborted", (int)stop_signal,
                 r.out_path);
        rc = OB_EXIT_ABORTED;
    }
    free(summaries);
    ob_kfac_free(r.ctx, r.kfac);
    if (r.work) ob_precision_free(r.ctx, r.precision, r.workload->params(r.work));
    ob_grad_sync_free(r.ctx, r.grad_sync);
    ob_optimizer_free(r.ctx, r.optimizer);
    if (r.work) r.workload->destroy(r.ctx, r.work);
    ob_ctx_free(r.ctx);
    ob_comm_free(r.comm);
    return rc;
}
