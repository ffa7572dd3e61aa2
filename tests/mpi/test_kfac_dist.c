/* Distributed K-FAC on 4 ranks (optimizers/kfac/kfac.c): the way KAISA and
 * DP-KFAC split the work changes who computes and what travels, never the
 * preconditioned gradient, and the plan's cost model is what a run does.
 *
 * The network (F64): conv 3->4 3x3 with bias -> ReLU -> conv 4->6 3x3
 * stride 2 -> ReLU -> global average pool -> linear 6->3 with bias ->
 * softmax cross-entropy (batch mean). Every rank builds it from the same ctx
 * seed, so the weights are equal; rank r's batch of 3 images comes from a
 * generator keyed by r, so any rank can make any rank's data. One step: the
 * capture hook on (ob_kfac_before_forward), forward, ob_backward, the
 * gradients averaged over the world here (ob_comm_allreduce_sum / 4), then
 * ob_kfac_precondition (one factor update, one inverse update, one step).
 *
 * KAISA, for grad_worker_frac 1 (COMM-OPT), 1/2 (HYBRID), 1/4 (MEM-OPT), and
 * each of: eigen; eigen with eigen_outer, symmetric_comm, colocated factors
 * and KL clipping; inverse with KL clipping; inverse with symmetric_comm:
 *  (a) on every rank the preconditioned gradients of the three fractions agree;
 *  (b) every rank holds the same preconditioned gradients;
 *  (c) they equal a one-process reference (below);
 *  (d) the bytes each rank moved for factors, inverses and preconditioned
 *      gradients (ob_comm_stats) and the K-FAC memory it holds equal
 *      ob_kfac_rank_cost_of for its place in the assignment; summed over the
 *      world, each layer's factors are held by every rank and its inverses by
 *      exactly its g grad workers; MEM-OPT moves no inverses, COMM-OPT no
 *      preconditioned gradients, HYBRID both; factor traffic does not depend
 *      on the fraction.
 * DP-KFAC: (b), (d) with no factor or inverse traffic and one copy of each
 * layer's factors in the world, and (c) against the owner's factors.
 *
 * The KAISA reference. KAISA all-reduces the factors as the mean of the
 * per-rank factors, each built from the rank's batch of B = 3 with its own
 * batch-mean loss. A = E[a a^T] does not see the loss, so the mean of the
 * per-rank A equals A of the global batch of 4B. G does: the output gradient
 * a rank captures is dl_i/dy / B (its mean loss's 1/B), so the mean of the
 * per-rank G is sum_i dl_i dl_i^T / (B^2 4B), while the global batch's mean
 * loss would give / ((4B)^2 4B): 16 = world^2 times smaller. The reference
 * therefore runs K-FAC on a one-rank communicator (ob_comm_split by rank)
 * over the global batch (every rank regenerates all 4 ranks' data) with the
 * loss scaled by 4 = world, which makes every sample's captured output
 * gradient dl_i/dy / B, as on its rank; the factors are then KAISA's. Its
 * backward gives 4x the averaged gradient (checked, to 1e-12), and the
 * reference preconditions the averaged gradient itself, so only the factors
 * differ in how they were computed.
 * The DP reference: DP-KFAC builds a layer's factors from its owner's batch
 * only, so for each owner a one-rank DP K-FAC runs on that owner's batch and
 * preconditions the averaged gradient; each layer is compared with its
 * owner's run (no KL clipping here: it would mix the layers).
 *
 * Every loss is scaled by 2^10 (the distributed and DP runs) or 2^12 (the
 * KAISA reference, the x4 above): G grows with the square of the loss, and
 * unscaled it is ~1e-9 here, far below the identity the running average
 * starts from; scaled, a wrong G changes the result well above the 1e-10
 * tolerance. Every rank checks its own results; the exit status is nonzero
 * if any rank failed a check. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/comm/ob_comm.h"
#include "nn/ob_backend.h"
#include "nn/ob_layers.h"
#include "nn/ob_ops.h"
#include "nn/ob_rng.h"
#include "nn/ob_tape.h"
#include "optimizers/kfac/ob_kfac.h"

#include "mpi/mpi_check.h"

#define RANKS 4
#define LOCAL_BATCH 3
#define SIDE 5
#define IN_C 3
#define CLASSES 3
#define LOSS_DOUBLINGS 10 /* loss x 1024 */
#define STEPS_PER_EPOCH 10
#define LR 0.1
#define TOLERANCE 1e-10

/* ---- the network and its data ---- */

typedef struct {
    ob_params *params;
    ob_conv2d_layer *conv1, *conv2;
    ob_linear_layer *fc;
    int64_t n_grads; /* scalars over all parameters */
} net;

static bool net_build(ob_ctx *ctx, net *n) {
    n->params = ob_params_new(OB_F64);
    n->conv1 = ob_conv2d_layer_new(ctx, n->params, "conv1", IN_C, 4, 3, 1, 1, 1, true);
    n->conv2 = ob_conv2d_layer_new(ctx, n->params, "conv2", 4, 6, 3, 2, 1, 1, false);
    n->fc = ob_linear_layer_new(ctx, n->params, "fc", 6, CLASSES, true);
    n->n_grads = ob_params_numel(n->params);
    return n->conv1 && n->conv2 && n->fc;
}

/* Images [ranks*B, SIDE, SIDE, IN_C] in [-3, 3) and labels of ranks
 * first..first+ranks-1, rank r's samples at rows (r-first)*B... */
static void make_data(ob_ctx *ctx, int first, int ranks, ob_tensor **x, ob_tensor **labels) {
    const int64_t per_rank = (int64_t)LOCAL_BATCH * SIDE * SIDE * IN_C;
    *x = ob_tensor_temp(ctx, OB_MEM_DATA, OB_F64, OB_SHAPE(ranks * LOCAL_BATCH, SIDE, SIDE, IN_C));
    *labels = ob_tensor_temp(ctx, OB_MEM_DATA, OB_I32, OB_SHAPE(ranks * LOCAL_BATCH));
    for (int k = 0; k < ranks; k++) {
        ob_rng_stream pixels = ob_rng_stream_make(2024, OB_RNG_TEST, (uint32_t)(first + k), 0);
        ob_rng_stream classes = ob_rng_stream_make(2024, OB_RNG_TEST, (uint32_t)(first + k), 1);
        for (int64_t i = 0; i < per_rank; i++)
            ob_f64(*x)[k * per_rank + i] = 6.0 * ob_rng_uniform(&pixels, (uint64_t)i) - 3.0;
        for (int b = 0; b < LOCAL_BATCH; b++)
            ((int32_t *)(*labels)->data)[k * LOCAL_BATCH + b] = (int32_t)ob_rng_below(&classes, (uint64_t)b, CLASSES);
    }
}

/* Zeroes the gradients, runs forward and backward over ranks first.. of
 * data with the mean loss scaled by 2^doublings. Returns 0 or 1. */
static int forward_backward(ob_ctx *ctx, net *n, int first, int ranks, int doublings) {
    ob_tensor *x, *labels;
    make_data(ctx, first, ranks, &x, &labels);
    ob_params_zero_grad(n->params);
    ob_tensor *h = ob_conv2d_layer_forward(ctx, n->conv1, x);
    if (h) h = ob_relu(ctx, h);
    if (h) h = ob_conv2d_layer_forward(ctx, n->conv2, h);
    if (h) h = ob_relu(ctx, h);
    if (h) h = ob_global_avgpool(ctx, h);
    if (h) h = ob_linear_layer_forward(ctx, n->fc, h);
    ob_tensor *loss = h ? ob_softmax_cross_entropy(ctx, h, labels, 0.0) : NULL;
    for (int k = 0; loss && k < doublings; k++) loss = ob_add(ctx, loss, loss);
    int rc = !loss || ob_backward(ctx, loss);
    checkf(rc == 0, "forward and backward (%s)", rc ? ob_ctx_error(ctx) : "ok");
    return rc;
}

/* All parameter gradients, flat, in registry order. */
static void save_grads(const net *n, double *out) {
    for (int i = 0; i < ob_params_count(n->params); i++) {
        const ob_tensor *g = ob_params_at(n->params, i)->value->grad;
        memcpy(out, g->data, sizeof *out * (size_t)g->numel);
        out += g->numel;
    }
}
static void load_grads(const net *n, const double *in) {
    for (int i = 0; i < ob_params_count(n->params); i++) {
        ob_tensor *g = ob_params_at(n->params, i)->value->grad;
        memcpy(g->data, in, sizeof *in * (size_t)g->numel);
        in += g->numel;
    }
}

static int average_grads(ob_comm *world, const net *n) {
    int rc = 0;
    for (int i = 0; i < ob_params_count(n->params); i++) {
        ob_tensor *g = ob_params_at(n->params, i)->value->grad;
        rc |= ob_comm_allreduce_sum(world, g->data, g->numel, g->dtype, OB_COMM_GRADS);
        ob_backend_of(g)->scale(1.0 / RANKS, g);
    }
    checkf(rc == 0, "gradient all-reduce (%s)", rc ? ob_comm_error(world) : "ok");
    return rc;
}

/* max |x - y| / max |y| */
static double relative_diff(const double *x, const double *y, int64_t n) {
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs(x[i] - y[i]));
        scale = fmax(scale, fabs(y[i]));
    }
    return diff / fmax(scale, 1e-300);
}

/* max over elements of (max over ranks - min over ranks) / max |v|. */
static double spread_over_ranks(ob_comm *world, const double *v, int64_t n) {
    double *hi = malloc(sizeof *hi * (size_t)n), *lo = malloc(sizeof *lo * (size_t)n);
    double spread = INFINITY, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        hi[i] = v[i];
        lo[i] = -v[i];
        scale = fmax(scale, fabs(v[i]));
    }
    if (ob_comm_allreduce_max(world, hi, n, OB_F64, OB_COMM_CONTROL) == 0 &&
        ob_comm_allreduce_max(world, lo, n, OB_F64, OB_COMM_CONTROL) == 0) {
        spread = 0;
        for (int64_t i = 0; i < n; i++) spread = fmax(spread, hi[i] + lo[i]);
        spread /= fmax(scale, 1e-300);
    }
    free(hi);
    free(lo);
    return spread;
}

static int64_t sum_over_ranks(ob_comm *world, int64_t value) {
    double v = (double)value; /* exact: byte counts here are far below 2^53 */
    if (ob_comm_allreduce_sum(world, &v, 1, OB_F64, OB_COMM_CONTROL)) return -1;
    return (int64_t)v;
}

/* Bytes and calls of one category, over every op. */
static ob_comm_stat category_stat(const ob_comm *world, ob_comm_category category) {
    ob_comm_stat total = {0};
    for (int op = 0; op < OB_COMM_OP_COUNT; op++) {
        ob_comm_stat s = ob_comm_stats(world, (ob_comm_op)op, category);
        total.bytes += s.bytes;
        total.calls += s.calls;
    }
    return total;
}

/* The running factors A and G this rank holds (ob_kfac_state_at, named
 * kfac.<layer>.A / .G), flat in state order, into out (capacity MAX_FACTORS);
 * returns how many scalars, and checks that every factor is symmetric
 * (both triangles filled). */
#define MAX_FACTORS 4096
static int64_t save_factors(const ob_kfac *kfac, const char *name, double *out) {
    int64_t count = 0;
    bool symmetric = true;
    for (int i = 0; i < ob_kfac_state_count(kfac); i++) {
        char state[128];
        const ob_tensor *t = ob_kfac_state_at(kfac, i, state, sizeof state);
        size_t length = strlen(state);
        if (!t || length < 2 || state[length - 2] != '.' || (state[length - 1] != 'A' && state[length - 1] != 'G'))
            continue;
        int64_t n = t->shape[0];
        if (count + n * n > MAX_FACTORS) break;
        for (int64_t r = 0; r < n; r++)
            for (int64_t c = 0; c < n; c++) {
                symmetric = symmetric && ob_f64(t)[r * n + c] == ob_f64(t)[c * n + r];
                out[count + r * n + c] = ob_f64(t)[r * n + c];
            }
        count += n * n;
    }
    checkf(symmetric, "%s: the running factors are symmetric", name);
    return count;
}

/* ---- one K-FAC step ---- */

static ob_kfac_config make_config(ob_kfac_variant variant, ob_kfac_method method, double frac) {
    ob_kfac_config c = {.variant = variant, .method = method, .grad_worker_frac = frac, .skip_layers = ""};
    c.damping.value[0] = 1e-3;
    c.factor_decay.value[0] = 0.1; /* running = 0.1 I + 0.9 batch */
    c.factor_update_steps.value[0] = 1;
    c.inv_update_steps.value[0] = 1;
    return c;
}

/* What one distributed step moved, for comparing the fractions. */
typedef struct {
    int64_t factor_bytes, inverse_bytes, precond_bytes;
    int64_t n_factors; /* scalars save_factors wrote */
} moved;

/* Elements a grad worker holds for one slot, counted here from the
 * allocation list in kfac.c (not from the cost model). */
static int64_t inverse_elements(const ob_kfac_config *c, const ob_kfac_slot *s) {
    int64_t a = s->a_dim, g = s->g_dim;
    if (c->method == OB_KFAC_INVERSE) return a * a + g * g;
    return a * a + a + g * g + g + (c->eigen_outer ? a * g : 0);
}

/* One step of K-FAC over the world on this rank's batch; averaged (may be
 * NULL) gets the averaged gradient, result the preconditioned one, factors
 * the running factors this rank holds. Checks (d) for this configuration. */
static moved run_distributed(ob_ctx *ctx, ob_comm *world, net *n, const ob_kfac_config *c, const char *name,
                             double *averaged, double *result, double *factors) {
    moved m = {-1, -1, -1, 0};
    char err[300] = "";
    int code = 0;
    const size_t es = sizeof(double);
    ob_comm_reset_stats(world);
    checkf(ob_mem_current(ctx, OB_MEM_KFAC_FACTORS) == 0 && ob_mem_current(ctx, OB_MEM_KFAC_INVERSES) == 0,
           "%s: no K-FAC memory held before construction", name);
    ob_kfac *kfac = ob_kfac_new(ctx, n->params, world, c, STEPS_PER_EPOCH, &code, err, sizeof err);
    checkf(kfac != NULL, "%s: ob_kfac_new (%s)", name, err);
    if (!kfac) return m;
    const ob_kfac_assignment *as = ob_kfac_get_assignment(kfac);
    ob_kfac_rank_cost cost = ob_kfac_rank_cost_of(c, as, my_rank, es);
    checkf(as->n_slots == 3, "%s: 3 K-FAC layers", name);
    checkf(ob_mem_current(ctx, OB_MEM_KFAC_FACTORS) == cost.factor_bytes &&
               ob_mem_current(ctx, OB_MEM_KFAC_INVERSES) == cost.inverse_bytes,
           "%s: K-FAC memory after construction: factors %lld (plan %lld), inverses %lld (plan %lld)", name,
           (long long)ob_mem_current(ctx, OB_MEM_KFAC_FACTORS), (long long)cost.factor_bytes,
           (long long)ob_mem_current(ctx, OB_MEM_KFAC_INVERSES), (long long)cost.inverse_bytes);

    ob_kfac_before_forward(kfac, 0);
    int rc = forward_backward(ctx, n, my_rank, 1, LOSS_DOUBLINGS);
    rc |= average_grads(world, n);
    if (averaged) save_grads(n, averaged);
    ob_comm_stat grads_before = category_stat(world, OB_COMM_GRADS);
    if (!rc) {
        rc = ob_kfac_precondition(kfac, 0, LR);
        checkf(rc == 0, "%s: ob_kfac_precondition (%s)", name, rc ? ob_ctx_error(ctx) : "ok");
    }
    save_grads(n, result);
    int64_t n_factors = save_factors(kfac, name, factors);

    ob_comm_stat f = category_stat(world, OB_COMM_FACTORS), i = category_stat(world, OB_COMM_INVERSES),
                 p = category_stat(world, OB_COMM_PRECOND_GRADS), g = category_stat(world, OB_COMM_GRADS);
    checkf(f.bytes == cost.factor_comm_bytes && f.calls == cost.factor_comm_calls,
           "%s: factor traffic %lld bytes in %lld calls, plan %lld in %lld", name, (long long)f.bytes,
           (long long)f.calls, (long long)cost.factor_comm_bytes, (long long)cost.factor_comm_calls);
    checkf(i.bytes == cost.inverse_comm_bytes && i.calls == cost.inverse_comm_calls,
           "%s: inverse traffic %lld bytes in %lld calls, plan %lld in %lld", name, (long long)i.bytes,
           (long long)i.calls, (long long)cost.inverse_comm_bytes, (long long)cost.inverse_comm_calls);
    checkf(p.bytes == cost.precond_comm_bytes && p.calls == cost.precond_comm_calls,
           "%s: preconditioned-gradient traffic %lld bytes in %lld calls, plan %lld in %lld", name, (long long)p.bytes,
           (long long)p.calls, (long long)cost.precond_comm_bytes, (long long)cost.precond_comm_calls);
    checkf(g.bytes == grads_before.bytes && g.bytes == n->n_grads * (int64_t)es,
           "%s: K-FAC sent nothing as plain gradients", name);
    checkf(ob_mem_current(ctx, OB_MEM_KFAC_FACTORS) == cost.factor_bytes &&
               ob_mem_current(ctx, OB_MEM_KFAC_INVERSES) == cost.inverse_bytes,
           "%s: K-FAC memory after the step still the plan's", name);

    /* Over the world: factors on every rank (KAISA) or the owner (DP);
     * inverses on exactly the g grad workers of each layer. */
    int64_t factor_elements = 0, inverse_total = 0;
    for (int k = 0; k < as->n_slots; k++) {
        factor_elements += as->slots[k].a_dim * as->slots[k].a_dim + as->slots[k].g_dim * as->slots[k].g_dim;
        inverse_total += inverse_elements(c, &as->slots[k]);
    }
    int64_t factor_copies = c->variant == OB_KFAC_KAISA ? RANKS : 1;
    int64_t world_factors = sum_over_ranks(world, ob_mem_current(ctx, OB_MEM_KFAC_FACTORS));
    int64_t world_inverses = sum_over_ranks(world, ob_mem_current(ctx, OB_MEM_KFAC_INVERSES));
    checkf(world_factors == factor_copies * factor_elements * (int64_t)es,
           "%s: the world holds %lld copies of each layer's factors (%lld bytes, want %lld)", name,
           (long long)factor_copies, (long long)world_factors, (long long)(factor_copies * factor_elements * 8));
    checkf(world_inverses == as->grad_workers * inverse_total * (int64_t)es,
           "%s: the world holds %d copies of each layer's inverses (%lld bytes, want %lld)", name, as->grad_workers,
           (long long)world_inverses, (long long)(as->grad_workers * inverse_total * 8));

    ob_kfac_free(ctx, kfac);
    ob_ctx_step_reset(ctx);
    checkf(ob_mem_current(ctx, OB_MEM_KFAC_FACTORS) == 0 && ob_mem_current(ctx, OB_MEM_KFAC_INVERSES) == 0,
           "%s: ob_kfac_free releases the K-FAC memory", name);
    if (my_rank == 0)
        printf("%-52s rank 0: factors %6lld B, inverses %6lld B held; moved factors %6lld B, inverses %6lld B, "
               "preconditioned %5lld B\n",
               name, (long long)cost.factor_bytes, (long long)cost.inverse_bytes, (long long)f.bytes,
               (long long)i.bytes, (long long)p.bytes);
    m = (moved){f.bytes, i.bytes, p.bytes, n_factors};
    return m;
}

/* One step of K-FAC on a one-rank communicator over the batches of ranks
 * first..first+ranks-1 with the loss scaled by 2^doublings, preconditioning
 * `averaged` instead of its own gradient; `own` (may be NULL) gets the
 * gradient its backward produced, factors its running factors. Returns how
 * many factor scalars it saved. */
static int64_t run_on_one_rank(ob_ctx *ctx, ob_comm *self, net *n, const ob_kfac_config *c, int first, int ranks,
                               int doublings, const double *averaged, double *own, double *result, double *factors) {
    int64_t n_factors = 0;
    char err[300] = "";
    int code = 0;
    ob_kfac *kfac = ob_kfac_new(ctx, n->params, self, c, STEPS_PER_EPOCH, &code, err, sizeof err);
    checkf(kfac != NULL, "reference: ob_kfac_new on one rank (%s)", err);
    if (!kfac) return 0;
    ob_kfac_before_forward(kfac, 0);
    if (forward_backward(ctx, n, first, ranks, doublings) == 0) {
        if (own) save_grads(n, own);
        load_grads(n, averaged);
        int rc = ob_kfac_precondition(kfac, 0, LR);
        checkf(rc == 0, "reference: ob_kfac_precondition (%s)", rc ? ob_ctx_error(ctx) : "ok");
        save_grads(n, result);
        n_factors = save_factors(kfac, "reference", factors);
    }
    ob_kfac_free(ctx, kfac);
    ob_ctx_step_reset(ctx);
    return n_factors;
}

/* ---- KAISA ---- */

typedef struct {
    const char *name;
    ob_kfac_method method;
    bool eigen_outer, symmetric_comm, colocate_factors;
    double kl_clip;
} setting;

static const setting settings[] = {
    {"eigen", OB_KFAC_EIGEN, false, false, false, 0},
    {"eigen, eigen_outer, symmetric_comm, colocated, KL clip", OB_KFAC_EIGEN, true, true, true, 1e-3},
    {"inverse, KL clip", OB_KFAC_INVERSE, false, false, true, 1e-3},
    {"inverse, symmetric_comm", OB_KFAC_INVERSE, false, true, false, 0},
};
static const double fracs[] = {1, 0.5, 0.25};
static const char *const modes[] = {"COMM-OPT", "HYBRID", "MEM-OPT"};
#define N_FRACS 3

static void test_kaisa(ob_ctx *ctx, ob_comm *world, ob_comm *self, net *n, const setting *st) {
    int64_t count = n->n_grads;
    double *averaged = malloc(sizeof(double) * (size_t)count), *own = malloc(sizeof(double) * (size_t)count);
    double *reference = malloc(sizeof(double) * (size_t)count), *results[N_FRACS], *factors[N_FRACS];
    double *reference_factors = malloc(sizeof(double) * MAX_FACTORS);
    moved m[N_FRACS];
    char name[200];
    for (int k = 0; k < N_FRACS; k++) {
        results[k] = malloc(sizeof(double) * (size_t)count);
        factors[k] = malloc(sizeof(double) * MAX_FACTORS);
        ob_kfac_config c = make_config(OB_KFAC_KAISA, st->method, fracs[k]);
        c.eigen_outer = st->eigen_outer;
        c.symmetric_comm = st->symmetric_comm;
        c.colocate_factors = st->colocate_factors;
        c.kl_clip = st->kl_clip;
        snprintf(name, sizeof name, "KAISA %s (frac %g), %s", modes[k], fracs[k], st->name);
        m[k] = run_distributed(ctx, world, n, &c, name, k == 0 ? averaged : NULL, results[k], factors[k]);
    }

    /* (a) the fractions agree, (b) the ranks agree */
    for (int k = 1; k < N_FRACS; k++) {
        double d = relative_diff(results[k], results[0], count);
        checkf(d <= TOLERANCE, "KAISA %s: frac %g gives frac 1's preconditioned gradients (relative diff %.2g)",
               st->name, fracs[k], d);
    }
    for (int k = 0; k < N_FRACS; k++) {
        double spread = spread_over_ranks(world, results[k], count);
        checkf(spread <= TOLERANCE, "KAISA %s, frac %g: every rank holds the same gradients (spread %.2g)", st->name,
               fracs[k], spread);
    }
    double changed = relative_diff(results[0], averaged, count);
    checkf(changed > 1e-2, "KAISA %s: preconditioning changed the gradients (relative change %.2g)", st->name, changed);

    /* (c) the reference: global batch on one rank, loss x 4 more */
    ob_kfac_config c = make_config(OB_KFAC_KAISA, st->method, 1);
    c.eigen_outer = st->eigen_outer;
    c.symmetric_comm = st->symmetric_comm;
    c.kl_clip = st->kl_clip;
    int64_t n_factors =
        run_on_one_rank(ctx, self, n, &c, 0, RANKS, LOSS_DOUBLINGS + 2, averaged, own, reference, reference_factors);
    for (int64_t i = 0; i < count; i++) own[i] /= RANKS;
    double d = relative_diff(own, averaged, count);
    checkf(d <= 1e-12, "reference: the global batch's gradient with the loss x 4, / 4, is the averaged one (%.2g)", d);
    for (int k = 0; k < N_FRACS; k++) {
        /* every rank holds every layer's A and G (KAISA), the reference's */
        d = m[k].n_factors == n_factors ? relative_diff(factors[k], reference_factors, n_factors) : INFINITY;
        checkf(n_factors == 800 + 1332 + 58 && d <= TOLERANCE,
               "KAISA %s, frac %g: the all-reduced running factors are the reference's (%lld scalars, relative diff "
               "%.2g)",
               st->name, fracs[k], (long long)m[k].n_factors, d);
        double spread = spread_over_ranks(world, factors[k], n_factors);
        checkf(spread <= TOLERANCE, "KAISA %s, frac %g: every rank holds the same factors (spread %.2g)", st->name,
               fracs[k], spread);
        d = relative_diff(results[k], reference, count);
        checkf(d <= TOLERANCE, "KAISA %s, frac %g: equals the one-process reference (relative diff %.2g)", st->name,
               fracs[k], d);
    }

    /* (d) across fractions: what travels */
    checkf(m[0].factor_bytes > 0 && m[1].factor_bytes == m[0].factor_bytes && m[2].factor_bytes == m[0].factor_bytes,
           "KAISA %s: factor traffic is the same for every fraction", st->name);
    checkf(m[0].inverse_bytes > 0 && m[0].precond_bytes == 0, "KAISA %s: COMM-OPT moves inverses, no gradients",
           st->name);
    checkf(m[1].inverse_bytes > 0 && m[1].precond_bytes > 0, "KAISA %s: HYBRID moves inverses and gradients", st->name);
    checkf(m[2].inverse_bytes == 0 && m[2].precond_bytes > 0, "KAISA %s: MEM-OPT moves gradients, no inverses",
           st->name);
    for (int k = 0; k < N_FRACS; k++) {
        free(results[k]);
        free(factors[k]);
    }
    free(reference_factors);
    free(averaged);
    free(own);
    free(reference);
}

/* ---- DP-KFAC ---- */

/* Offset of the first gradient scalar of layer `layer` in the flat order
 * of save_grads, and how many it has. */
static int64_t layer_grads(const net *n, int layer, int64_t *length) {
    int64_t offset = 0, start = -1;
    *length = 0;
    for (int i = 0; i < ob_params_count(n->params); i++) {
        const ob_param *p = ob_params_at(n->params, i);
        if (p->layer && p->layer->index == layer) {
            if (start < 0) start = offset;
            *length += p->value->numel;
        }
        offset += p->value->numel;
    }
    return start;
}

static void test_dp(ob_ctx *ctx, ob_comm *world, ob_comm *self, net *n, ob_kfac_method method) {
    int64_t count = n->n_grads;
    double *averaged = malloc(sizeof(double) * (size_t)count), *result = malloc(sizeof(double) * (size_t)count);
    double *reference = malloc(sizeof(double) * (size_t)count), *owner_run = malloc(sizeof(double) * (size_t)count);
    double *factors = malloc(sizeof(double) * MAX_FACTORS);
    const char *method_name = method == OB_KFAC_EIGEN ? "eigen" : "inverse";
    char name[120];
    snprintf(name, sizeof name, "DP-KFAC, %s", method_name);
    ob_kfac_config c = make_config(OB_KFAC_DP, method, 1);
    moved m = run_distributed(ctx, world, n, &c, name, averaged, result, factors);
    checkf(m.factor_bytes == 0 && m.inverse_bytes == 0 && m.precond_bytes > 0,
           "%s: factors and inverses never travel, gradients do", name);
    double spread = spread_over_ranks(world, result, count);
    checkf(spread <= TOLERANCE, "%s: every rank holds the same gradients (spread %.2g)", name, spread);

    /* The owners, as the run assigns them (the assignment is a pure
     * function of the layers and the world). */
    ob_kfac_assignment as;
    char err[300] = "";
    if (ob_kfac_assign(&c, n->params, RANKS, &as, err, sizeof err)) {
        checkf(false, "%s: assign (%s)", name, err);
    } else {
        memcpy(reference, averaged, sizeof(double) * (size_t)count);
        int covered = 0;
        for (int owner = 0; owner < RANKS; owner++) {
            bool owns = false;
            for (int k = 0; k < as.n_slots; k++) owns = owns || as.slots[k].group == owner;
            if (!owns) continue;
            run_on_one_rank(ctx, self, n, &c, owner, 1, LOSS_DOUBLINGS, averaged, NULL, owner_run, factors);
            for (int k = 0; k < as.n_slots; k++) {
                if (as.slots[k].group != owner) continue;
                int64_t length, offset = layer_grads(n, as.slots[k].layer_index, &length);
                memcpy(reference + offset, owner_run + offset, sizeof(double) * (size_t)length);
                covered++;
            }
        }
        checkf(covered == 3, "%s: every layer has an owner", name);
        double d = relative_diff(result, reference, count);
        checkf(d <= TOLERANCE, "%s: each layer preconditioned with its owner's factors (relative diff %.2g)", name, d);
        double changed = relative_diff(result, averaged, count);
        checkf(changed > 1e-2, "%s: preconditioning changed the gradients (relative change %.2g)", name, changed);
        ob_kfac_assignment_free(&as);
    }
    free(averaged);
    free(result);
    free(reference);
    free(owner_run);
    free(factors);
}

/* ---- decay warm-up ---- */

/* kfac.decay_warmup on this rank's batch, one rank: the first factor update
 * weighs the identity by min(1 - 1/1, decay) = 0, so its factors are the
 * batch's, i.e. the default run's 0.1 I + 0.9 batch with the identity's
 * share taken out, and the preconditioned gradient moves with them. */
static void test_decay_warmup(ob_ctx *ctx, ob_comm *self, net *n) {
    int64_t count = n->n_grads;
    double *own = malloc(sizeof(double) * (size_t)count), *plain = malloc(sizeof(double) * (size_t)count);
    double *warm = malloc(sizeof(double) * (size_t)count);
    double *plain_factors = malloc(sizeof(double) * MAX_FACTORS), *warm_factors = malloc(sizeof(double) * MAX_FACTORS);
    ob_kfac_config c = make_config(OB_KFAC_KAISA, OB_KFAC_EIGEN, 1);
    const double decay = c.factor_decay.value[0];
    int64_t n_plain = run_on_one_rank(ctx, self, n, &c, my_rank, 1, LOSS_DOUBLINGS, own, own, plain, plain_factors);
    c.decay_warmup = true;
    int64_t n_warm = run_on_one_rank(ctx, self, n, &c, my_rank, 1, LOSS_DOUBLINGS, own, own, warm, warm_factors);
    ob_kfac_assignment as;
    char err[300] = "";
    if (ob_kfac_assign(&c, n->params, 1, &as, err, sizeof err)) {
        checkf(false, "decay warm-up: assign (%s)", err);
    } else {
        /* save_factors' order: each slot's A, then its G */
        int64_t at = 0;
        double worst = 0, largest = 0;
        for (int k = 0; k < as.n_slots; k++) {
            const int64_t sides[2] = {as.slots[k].a_dim, as.slots[k].g_dim};
            for (int side = 0; side < 2 && at + sides[side] * sides[side] <= n_plain; side++) {
                int64_t dim = sides[side];
                for (int64_t i = 0; i < dim * dim; i++) {
                    double identity = i % (dim + 1) == 0 ? 1.0 : 0.0;
                    double batch = (plain_factors[at + i] - decay * identity) / (1.0 - decay);
                    worst = fmax(worst, fabs(warm_factors[at + i] - batch));
                    largest = fmax(largest, fabs(batch));
                }
                at += dim * dim;
            }
        }
        checkf(n_plain > 0 && n_warm == n_plain && at == n_plain, "decay warm-up: %lld factor scalars, both runs",
               (long long)n_plain);
        checkf(worst <= TOLERANCE * largest,
               "decay warm-up: the first update's factors are the batch's (largest diff %.2g of %.2g)", worst, largest);
        double moved = relative_diff(warm, plain, count);
        checkf(moved > 1e-3, "decay warm-up: the preconditioned gradient changes with the factors (%.2g)", moved);
        ob_kfac_assignment_free(&as);
    }
    free(own);
    free(plain);
    free(warm);
    free(plain_factors);
    free(warm_factors);
}

int main(void) {
    ob_comm *world = NULL, *self = NULL;
    char err[512];
    if (ob_comm_world(&world, err, sizeof err)) {
        fprintf(stderr, "test_kfac_dist: %s\n", err);
        return 1;
    }
    my_rank = ob_comm_rank(world);
    checkf(ob_comm_size(world) == RANKS, "size %d, want %d", ob_comm_size(world), RANKS);
    /* The same seed everywhere: equal initial weights on every rank. */
    ob_ctx *ctx = ob_ctx_new(&(ob_ctx_config){.threads = 1, .seed = 17, .rank = my_rank, .world_size = RANKS});
    net n = {0};
    bool ready = ctx && ob_comm_size(world) == RANKS && ob_comm_split(world, my_rank, 0, &self) == 0;
    checkf(ready, "context and one-rank communicator");
    if (ready) {
        checkf(ob_comm_size(self) == 1, "the split by rank has one rank");
        ready = net_build(ctx, &n);
        checkf(ready, "network built");
    }
    if (ready) {
        /* equal weights on every rank */
        double *weights = malloc(sizeof(double) * (size_t)n.n_grads), *at = weights;
        for (int i = 0; i < ob_params_count(n.params); i++) {
            const ob_tensor *v = ob_params_at(n.params, i)->value;
            memcpy(at, v->data, sizeof(double) * (size_t)v->numel);
            at += v->numel;
        }
        checkf(spread_over_ranks(world, weights, n.n_grads) == 0, "equal initial weights on every rank");
        free(weights);
        for (size_t s = 0; s < sizeof settings / sizeof settings[0]; s++)
            test_kaisa(ctx, world, self, &n, &settings[s]);
        test_dp(ctx, world, self, &n, OB_KFAC_EIGEN);
        test_dp(ctx, world, self, &n, OB_KFAC_INVERSE);
        test_decay_warmup(ctx, self, &n);
    }
    if (n.params) ob_params_free(ctx, n.params);
    ob_comm_free(self);
    if (ctx) ob_ctx_free(ctx);
    checkf(ob_comm_barrier(world) == 0, "world barrier");

    int failed = report_checks_on_all_ranks(world);
    ob_comm_free(world);
    return failed;
}
