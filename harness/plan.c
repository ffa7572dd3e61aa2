/* `optbench plan` (see ob_plan.h). */
#include "harness/ob_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/ob_grad_sync.h"
#include "harness/ob_kfac_options.h"
#include "harness/ob_run_options.h"
#include "nn/ob_ctx.h"
#include "nn/ob_layers.h"
#include "optimizers/kfac/ob_kfac.h"
#include "optimizers/ob_optimizer.h"
#include "workloads/ob_workload.h"

#define ELEMENT_BYTES 4 /* fp32 parameters, gradients and K-FAC state */
#define MIB (1024.0 * 1024.0)
#define MB 1e6

/* What one rank holds (bytes) and moves (bytes per step, or over the run). */
typedef struct {
    double params, grads, optimizer_state, kfac_factors, kfac_inverses, comm_buffers;
    double kfac_scratch; /* wide copies of narrow K-FAC state (workspace, at most) */
    double decomposition_n3; /* sum of n^3 over the factors this rank decomposes */
    double grads_comm, batchnorm_comm, factors_comm, inverses_comm, precond_comm;
    double update_comm; /* one step on which factors and inverses both update */
} rank_plan;

/* The model and what does not depend on the world size. */
typedef struct {
    const ob_config *cfg;
    const ob_plan_options *options;
    ob_params *params;
    int64_t steps_per_epoch, bucket_bytes;
    double param_bytes, buffer_bytes, optimizer_state_bytes;
    double batchnorm_bytes; /* per step on every rank of a world > 1; 0 unless dist.sync_batchnorm */
    bool kfac;
    ob_kfac_config kfac_config;
} plan_base;

static double total_memory(const rank_plan *p) {
    return p->params + p->grads + p->optimizer_state + p->kfac_factors + p->kfac_inverses + p->kfac_scratch +
           p->comm_buffers;
}

/* Overrides the config's K-FAC variant and fraction by a named strategy. */
static int apply_strategy(const char *strategy, int world, ob_kfac_config *config, char *err, size_t err_len) {
    if (!strategy) return 0;
    config->variant = OB_KFAC_KAISA;
    if (strcmp(strategy, "comm-opt") == 0)
        config->grad_worker_frac = 1.0;
    else if (strcmp(strategy, "hybrid-opt") == 0)
        config->grad_worker_frac = world >= 2 ? 0.5 : 1.0;
    else if (strcmp(strategy, "mem-opt") == 0)
        config->grad_worker_frac = 1.0 / world;
    else if (strcmp(strategy, "dp-kfac") == 0)
        config->variant = OB_KFAC_DP;
    else {
        snprintf(err, err_len, "--strategies: expected comm-opt, hybrid-opt, mem-opt or dp-kfac, got \"%s\"",
                 strategy);
        return 2;
    }
    return 0;
}

static double decomposition_work(const ob_kfac_assignment *assignment, int rank) {
    double work = 0.0;
    for (int i = 0; i < assignment->n_slots; i++) {
        const ob_kfac_slot *s = &assignment->slots[i];
        double a = (double)s->a_dim, g = (double)s->g_dim;
        if (s->a_worker == rank) work += a * a * a;
        if (s->g_worker == rank) work += g * g * g;
    }
    return work;
}

/* Synchronized batch-norm's traffic per step. Each batch-norm layer
 * all-reduces in forward (sums of x - shift and of its square) and again in
 * backward (sums of dy and of dy (x - mean)), one F64 all-reduce per block of
 * up to OB_BATCHNORM_REDUCE_CHANNELS channels: the block's two per-channel sums and the
 * row count, 2 width + 1 values. Over a layer of C channels in B blocks:
 * 2 (2 C + B) doubles a step. */
static double batchnorm_bytes_per_step(const ob_params *params) {
    double values = 0.0;
    for (int i = 0; i < ob_params_layer_count(params); i++) {
        const ob_layer *layer = ob_params_layer_at(params, i);
        if (layer->type != OB_LAYER_BATCHNORM) continue;
        int64_t channels = ((const ob_batchnorm_layer *)layer)->weight->shape[0];
        int64_t blocks = (channels + OB_BATCHNORM_REDUCE_CHANNELS - 1) / OB_BATCHNORM_REDUCE_CHANNELS;
        values += 2.0 * (double)(2 * channels + blocks);
    }
    return values * (double)sizeof(double);
}

/* Fills plans[0..world) for one world size. */
static int plan_world(const plan_base *base, const char *strategy, int world, rank_plan *plans, int *workers,
                      char *err, size_t err_len) {
    int64_t steps = base->options->steps;
    double run_steps = (double)(steps > 0 ? steps : 1);
    double grads_per_step = world > 1 ? base->param_bytes : 0.0;
    double batchnorm_per_step = world > 1 ? base->batchnorm_bytes : 0.0;
    double bucket = world > 1 ? (double)(base->bucket_bytes / ELEMENT_BYTES * ELEMENT_BYTES) : 0.0;
    for (int r = 0; r < world; r++)
        plans[r] = (rank_plan){.params = base->param_bytes + base->buffer_bytes, .grads = base->param_bytes,
                               .optimizer_state = base->optimizer_state_bytes, .comm_buffers = bucket,
                               .grads_comm = grads_per_step * run_steps,
                               .batchnorm_comm = batchnorm_per_step * run_steps,
                               .update_comm = grads_per_step + batchnorm_per_step};
    *workers = 0;
    if (!base->kfac) return 0;
    ob_kfac_config config = base->kfac_config;
    int rc = apply_strategy(strategy, world, &config, err, err_len);
    ob_kfac_assignment assignment;
    if (!rc) rc = ob_kfac_assign(&config, base->params, world, &assignment, err, err_len);
    if (rc) return rc;
    *workers = assignment.grad_workers;
    /* Updates in the run, or per step as the intervals at epoch 0 average them. */
    double factor_updates = steps > 0 ? (double)ob_kfac_factor_updates(&config, steps, base->steps_per_epoch)
                                      : 1.0 / ob_kfac_piecewise_at(&config.factor_update_steps, 0);
    double inverse_updates = steps > 0 ? (double)ob_kfac_inverse_updates(&config, steps, base->steps_per_epoch)
                                       : 1.0 / ob_kfac_piecewise_at(&config.inv_update_steps, 0);
    for (int r = 0; r < world; r++) {
        ob_kfac_rank_cost cost = ob_kfac_rank_cost_of(&config, &assignment, r, ELEMENT_BYTES);
        rank_plan *p = &plans[r];
        p->kfac_factors = (double)cost.factor_bytes;
        p->kfac_inverses = (double)cost.inverse_bytes;
        p->kfac_scratch = (double)cost.wide_scratch_bytes;
        p->decomposition_n3 = decomposition_work(&assignment, r);
        p->factors_comm = (double)cost.factor_comm_bytes * factor_updates;
        p->inverses_comm = (double)cost.inverse_comm_bytes * inverse_updates;
        p->precond_comm = (double)cost.precond_comm_bytes * run_steps;
        p->update_comm += (double)(cost.factor_comm_bytes + cost.inverse_comm_bytes + cost.precond_comm_bytes);
    }
    ob_kfac_assignment_free(&assignment);
    return 0;
}

/* The largest value of each column over the ranks (what must fit); every
 * field of rank_plan is a double, so the struct is walked as an array. */
static rank_plan max_over_ranks(const rank_plan *plans, int world) {
    rank_plan m = plans[0];
    for (int r = 1; r < world; r++) {
        const double *from = (const double *)&plans[r];
        double *to = (double *)&m;
        for (size_t f = 0; f < sizeof m / sizeof(double); f++)
            if (from[f] > to[f]) to[f] = from[f];
    }
    return m;
}

static void print_header(const plan_base *base) {
    const ob_config *c = base->cfg;
    const char *unit = base->options->steps > 0 ? "over the run" : "per step";
    if (base->options->csv) {
        printf("strategy,ranks,rank,grad_workers,params_bytes,grads_bytes,optimizer_state_bytes,"
               "kfac_factors_bytes,kfac_inverses_bytes,kfac_scratch_bytes,comm_buffers_bytes,total_bytes,decomposition_n3,"
               "grads_comm_bytes,batchnorm_comm_bytes,factors_comm_bytes,inverses_comm_bytes,precond_comm_bytes,"
               "update_comm_bytes\n");
        return;
    }
    printf("# optbench plan: %s %s, %s + %s, global batch %lld, fp32\n\n", ob_config_get_str(c, "run.workload"),
           ob_config_get_str(c, "run.preset"), ob_config_get_str(c, "run.optimizer"),
           ob_config_get_str(c, "run.precond"), (long long)ob_config_get_int(c, "run.batch_size"));
    if (base->kfac)
        printf("K-FAC: %s method, factors every %g steps (stored %s), inverses every %g steps (stored %s), "
               "assignment by %s; communication %s%s.\n\n",
               base->kfac_config.method == OB_KFAC_EIGEN ? "eigen" : "inverse",
               ob_kfac_piecewise_at(&base->kfac_config.factor_update_steps, 0),
               ob_config_get_str(c, "kfac.factor_dtype"),
               ob_kfac_piecewise_at(&base->kfac_config.inv_update_steps, 0),
               ob_config_get_str(c, "kfac.inv_dtype"),
               base->kfac_config.cost == OB_KFAC_COST_COMPUTE ? "compute (n^3)" : "memory (n^2)", unit,
               base->options->per_rank ? "" : "; each column is its maximum over the ranks");
    printf("| strategy | ranks | %s | grad workers | params | grads | optimizer state | K-FAC factors | "
           "K-FAC inverses | K-FAC scratch | comm buffers | total MiB | eigen work (G n^3) | grads MB | batchnorm MB | factors MB | "
           "inverses MB | precond grads MB | MB per K-FAC update step |\n",
           base->options->per_rank ? "rank" : "rank (max)");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
}

static void print_row(const plan_base *base, const char *strategy, int world, const char *rank, int workers,
                      const rank_plan *p) {
    if (base->options->csv) {
        printf("%s,%d,%s,%d,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f\n", strategy,
               world, rank, workers, p->params, p->grads, p->optimizer_state, p->kfac_factors, p->kfac_inverses,
               p->kfac_scratch, p->comm_buffers, total_memory(p), p->decomposition_n3, p->grads_comm, p->batchnorm_comm,
               p->factors_comm, p->inverses_comm, p->precond_comm, p->update_comm);
        return;
    }
    printf("| %s | %d | %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.1f | %.1f | %.1f | "
           "%.1f | %.1f | %.1f |\n",
           strategy, world, rank, workers, p->params / MIB, p->grads / MIB, p->optimizer_state / MIB,
           p->kfac_factors / MIB, p->kfac_inverses / MIB, p->kfac_scratch / MIB, p->comm_buffers / MIB, total_memory(p) / MIB,
           p->decomposition_n3 / 1e9, p->grads_comm / MB, p->batchnorm_comm / MB, p->factors_comm / MB,
           p->inverses_comm / MB, p->precond_comm / MB, p->update_comm / MB);
}

static int print_plans(const plan_base *base, char *err, size_t err_len) {
    const ob_plan_options *o = base->options;
    int n_strategies = base->kfac && o->n_strategies ? o->n_strategies : 1;
    print_header(base);
    for (int s = 0; s < n_strategies; s++) {
        const char *strategy = base->kfac && o->n_strategies ? o->strategies[s] : NULL;
        const char *label = strategy ? strategy : ob_config_get_str(base->cfg, "run.precond");
        for (int w = 0; w < o->n_ranks; w++) {
            int world = o->ranks[w], workers;
            rank_plan *plans = calloc((size_t)world, sizeof *plans);
            if (!plans) {
                snprintf(err, err_len, "out of memory");
                return 1;
            }
            int rc = plan_world(base, strategy, world, plans, &workers, err, err_len);
            if (rc) {
                free(plans);
                return rc;
            }
            char rank[16];
            if (o->per_rank) {
                for (int r = 0; r < world; r++) {
                    snprintf(rank, sizeof rank, "%d", r);
                    print_row(base, label, world, rank, workers, &plans[r]);
                }
            } else {
                rank_plan m = max_over_ranks(plans, world);
                print_row(base, label, world, "max", workers, &m);
            }
            free(plans);
        }
    }
    return 0;
}

/* The preset's model, with its own data when it can be read (so steps per
 * epoch are the run's); otherwise (the full presets' datasets live on a
 * cluster) on one batch of synthetic data, which leaves the shapes exact. */
static int build_model(const ob_config *cfg, const ob_workload *workload, ob_ctx *ctx, ob_workload_run **work,
                       char *err, size_t err_len) {
    ob_workload_options options = ob_run_workload_options(cfg, 0, 1);
    if (workload->create(ctx, &options, work, err, err_len) == 0) return 0;
    options.data_dir = "synthetic";
    options.train_limit = options.global_batch;
    options.eval_limit = 1;
    return workload->create(ctx, &options, work, err, err_len);
}

int ob_plan_execute(const ob_config *cfg, const ob_plan_options *options, char *err, size_t err_len) {
    const ob_workload *workload = ob_workload_find(ob_config_get_str(cfg, "run.workload"));
    ob_ctx_config ctx_config = {.threads = 1, .seed = (uint64_t)ob_config_get_int(cfg, "run.seed"),
                                .world_size = 1};
    ob_ctx *ctx = workload ? ob_ctx_new(&ctx_config) : NULL;
    if (!ctx) {
        snprintf(err, err_len, workload ? "out of memory" : "run.workload: unknown workload");
        return workload ? 1 : 2;
    }
    ob_workload_run *work = NULL;
    ob_optimizer *optimizer = NULL;
    plan_base base = {.cfg = cfg, .options = options,
                      .kfac = strcmp(ob_config_get_str(cfg, "run.precond"), "none") != 0 || options->n_strategies};
    int rc = build_model(cfg, workload, ctx, &work, err, err_len);
    if (!rc && base.kfac) rc = ob_kfac_options_from_config(cfg, &base.kfac_config, err, err_len);
    if (!rc) {
        base.params = workload->params(work);
        base.steps_per_epoch = workload->batches_per_epoch(work);
        base.bucket_bytes = (int64_t)(ob_config_get_float(cfg, "dist.bucket_mb") * MIB);
        base.param_bytes = (double)ob_params_numel(base.params) * ELEMENT_BYTES;
        if (ob_config_get_bool(cfg, "dist.sync_batchnorm"))
            base.batchnorm_bytes = batchnorm_bytes_per_step(base.params);
        /* batch-norm running statistics are charged to params too */
        for (int i = 0; i < ob_params_buffer_count(base.params); i++)
            base.buffer_bytes += (double)ob_tensor_bytes(ob_params_buffer_at(base.params, i)->value);
        optimizer = ob_run_optimizer_new(ctx, base.params, cfg);
        if (!optimizer) {
            snprintf(err, err_len, "optimizer: %s", ob_ctx_error(ctx));
            rc = 2;
        }
    }
    if (!rc) {
        /* K-FAC's counters (F64) sit with the optimizer state */
        base.optimizer_state_bytes =
            (double)ob_optimizer_state_bytes(optimizer) + (base.kfac ? OB_KFAC_COUNTER_BYTES : 0.0);
        rc = print_plans(&base, err, err_len);
    }
    ob_optimizer_free(ctx, optimizer);
    if (work) workload->destroy(ctx, work);
    ob_ctx_free(ctx);
    return rc;
}
