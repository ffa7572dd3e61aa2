/* Where K-FAC's work goes: the greedy layer assignment of KAISA and DP-KFAC
 * and the bytes each rank then holds and moves. A run (kfac.c) and
 * `optbench plan` both call these, so the plan predicts the run. */
#define _POSIX_C_SOURCE 200809L
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optimizers/kfac/kfac_layer.h"
#include "optimizers/kfac/kfac_storage.h"
#include "optimizers/kfac/ob_kfac.h"

double ob_kfac_piecewise_at(const ob_kfac_piecewise *p, double epoch) {
    int piece = 0;
    while (piece < p->n_epochs && epoch >= p->epochs[piece]) piece++;
    return p->value[piece];
}

/* Whether name matches one of the comma-separated fnmatch patterns. Blanks
 * around a pattern are dropped ("conv1, fc" is "conv1" and "fc"; layer names
 * have none); NULL, like "", is no pattern. */
static bool skipped(const char *patterns, const char *name) {
    char pattern[OB_LAYER_NAME_MAX * 2];
    const char *p = patterns ? patterns : "";
    while (*p) {
        size_t length = strcspn(p, ",");
        const char *start = p;
        size_t kept = length;
        while (kept > 0 && (*start == ' ' || *start == '\t')) start++, kept--;
        while (kept > 0 && (start[kept - 1] == ' ' || start[kept - 1] == '\t')) kept--;
        if (kept > 0 && kept < sizeof pattern) {
            memcpy(pattern, start, kept);
            pattern[kept] = '\0';
            if (fnmatch(pattern, name, 0) == 0) return true;
        }
        p += length + (p[length] == ',');
    }
    return false;
}

/* Decomposition cost of an n x n factor: eigen/Cholesky work grows as n^3,
 * the memory it holds as n^2. */
static double factor_cost(ob_kfac_cost cost, int64_t n) {
    double side = (double)n;
    return cost == OB_KFAC_COST_COMPUTE ? side * side * side : side * side;
}

/* Grad workers per layer for KAISA, or 0 with err set when the fraction
 * does not give a whole divisor of the world size. */
static int grad_workers_of(const ob_kfac_config *config, int world_size, char *err, size_t err_len) {
    if (config->variant == OB_KFAC_DP) return 1;
    double frac = config->grad_worker_frac, workers = frac * world_size;
    int rounded = (int)llround(workers);
    if (!(frac > 0 && frac <= 1 + 1e-9) || rounded < 1 || fabs(workers - rounded) > 1e-6 ||
        world_size % rounded != 0) {
        snprintf(err, err_len,
                 "kfac.grad_worker_frac: %g of %d ranks is %g grad workers per layer; expected a fraction "
                 "in [1/world, 1] that gives a whole divisor of the world size",
                 frac, world_size, workers);
        return 0;
    }
    return rounded;
}

static int least_loaded(const double *load, int first, int count) {
    int best = first;
    for (int i = first + 1; i < first + count; i++)
        if (load[i] < load[best]) best = i;
    return best;
}

/* Slots sorted by descending cost; equal costs keep layer order. */
static int compare_cost_desc(const void *a, const void *b) {
    const double *x = a, *y = b; /* x[0]: cost, x[1]: original position */
    if (x[0] != y[0]) return x[0] < y[0] ? 1 : -1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

/* Returns 0, or 1 when out of memory. */
static int place_slots(const ob_kfac_config *config, ob_kfac_assignment *assignment) {
    int world = assignment->world_size, workers = assignment->grad_workers, n = assignment->n_slots;
    int groups = world / workers;
    double (*order)[2] = malloc(sizeof *order * (size_t)(n ? n : 1));
    double *rank_load = calloc((size_t)world, sizeof *rank_load);
    double *group_load = calloc((size_t)groups, sizeof *group_load);
    if (!order || !rank_load || !group_load) {
        free(order);
        free(rank_load);
        free(group_load);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        const ob_kfac_slot *s = &assignment->slots[i];
        order[i][0] = factor_cost(config->cost, s->a_dim) + factor_cost(config->cost, s->g_dim);
        order[i][1] = i;
    }
    qsort(order, (size_t)n, sizeof *order, compare_cost_desc);
    for (int k = 0; k < n; k++) {
        ob_kfac_slot *s = &assignment->slots[(int)order[k][1]];
        double a_cost = factor_cost(config->cost, s->a_dim), g_cost = factor_cost(config->cost, s->g_dim);
        if (config->variant == OB_KFAC_DP) {
            s->group = s->a_worker = s->g_worker = least_loaded(rank_load, 0, world);
            rank_load[s->group] += a_cost + g_cost;
            continue;
        }
        s->group = least_loaded(group_load, 0, groups);
        group_load[s->group] += a_cost + g_cost;
        s->a_worker = least_loaded(rank_load, s->group * workers, workers);
        rank_load[s->a_worker] += config->colocate_factors ? a_cost + g_cost : a_cost;
        s->g_worker = config->colocate_factors ? s->a_worker : least_loaded(rank_load, s->group * workers, workers);
        if (!config->colocate_factors) rank_load[s->g_worker] += g_cost;
    }
    free(order);
    free(rank_load);
    free(group_load);
    return 0;
}

int ob_kfac_assign(const ob_kfac_config *config, const ob_params *params, int world_size,
                   ob_kfac_assignment *assignment, char *err, size_t err_len) {
    memset(assignment, 0, sizeof *assignment);
    if (world_size < 1) {
        snprintf(err, err_len, "K-FAC: world size %d; expected at least 1 rank", world_size);
        return 2;
    }
    int workers = grad_workers_of(config, world_size, err, err_len);
    if (!workers) return 2;
    int n_layers = ob_params_layer_count(params);
    assignment->slots = calloc((size_t)(n_layers ? n_layers : 1), sizeof *assignment->slots);
    if (!assignment->slots) {
        snprintf(err, err_len, "out of memory");
        return 1;
    }
    assignment->variant = config->variant;
    assignment->world_size = world_size;
    assignment->grad_workers = workers;
    for (int i = 0; i < n_layers; i++) {
        ob_layer *layer = ob_params_layer_at(params, i);
        ob_kfac_layer described;
        if (ob_kfac_layer_describe(layer, &described) != 0 || skipped(config->skip_layers, layer->name)) continue;
        assignment->slots[assignment->n_slots++] =
            (ob_kfac_slot){.layer_index = i, .a_dim = described.a_dim, .g_dim = described.g_dim};
    }
    if (place_slots(config, assignment)) {
        ob_kfac_assignment_free(assignment);
        snprintf(err, err_len, "out of memory");
        return 1;
    }
    return 0;
}

void ob_kfac_assignment_free(ob_kfac_assignment *assignment) {
    free(assignment->slots);
    memset(assignment, 0, sizeof *assignment);
}

bool ob_kfac_is_grad_worker(const ob_kfac_assignment *assignment, const ob_kfac_slot *slot, int rank) {
    if (assignment->variant == OB_KFAC_DP) return rank == slot->group;
    return rank / assignment->grad_workers == slot->group;
}

/* Elements of an n x n factor as communicated: its upper triangle when
 * symmetric_comm, else all of it. */
static int64_t factor_comm_elements(const ob_kfac_config *config, int64_t n) {
    return config->symmetric_comm ? n * (n + 1) / 2 : n * n;
}

/* Elements a grad worker keeps to precondition one layer. */
static int64_t inverse_elements(const ob_kfac_config *config, const ob_kfac_slot *s) {
    int64_t a = s->a_dim, g = s->g_dim;
    if (config->method == OB_KFAC_INVERSE) return a * a + g * g;
    return a * a + a + g * g + g + (config->eigen_outer ? a * g : 0);
}

static void at_least(int64_t *held, int64_t elements) {
    if (elements > *held) *held = elements;
}

void ob_kfac_scratch_elements(const ob_kfac_config *config, const ob_kfac_assignment *assignment, int rank,
                              int64_t elements[OB_KFAC_WIDE_BUFFERS]) {
    memset(elements, 0, OB_KFAC_WIDE_BUFFERS * sizeof *elements);
    if (!ob_dtype_is_half(config->factor_dtype) && !ob_dtype_is_half(config->inverse_dtype)) return;
    bool eigen = config->method == OB_KFAC_EIGEN, dp = assignment->variant == OB_KFAC_DP;
    /* g x a >= max(a, g): eigen_outer's buffer also takes the eigenvalues as decomposed */
    for (int i = 0; i < assignment->n_slots; i++) {
        const ob_kfac_slot *s = &assignment->slots[i];
        if (!dp || ob_kfac_is_grad_worker(assignment, s, rank)) {
            int64_t a = s->a_dim, g = s->g_dim, dim = a > g ? a : g;
            at_least(&elements[OB_KFAC_WIDE_G_SIDE], g * g);
            at_least(&elements[OB_KFAC_WIDE_A_SIDE], a * a);
            if (eigen) {
                at_least(&elements[OB_KFAC_WIDE_VALUES], config->eigen_outer ? g * a : dim);
                if (!config->eigen_outer) at_least(&elements[OB_KFAC_WIDE_A_VALUES], a);
            }
        }
    }
}

ob_kfac_rank_cost ob_kfac_rank_cost_of(const ob_kfac_config *config, const ob_kfac_assignment *assignment,
                                       int rank, size_t element_size) {
    ob_kfac_rank_cost cost = {0};
    int world = assignment->world_size, workers = assignment->grad_workers;
    int64_t es = (int64_t)element_size;
    int64_t factor_es = ob_dtype_is_half(config->factor_dtype) ? 2 : es;
    int64_t inverse_es = ob_dtype_is_half(config->inverse_dtype) ? 2 : es;
    bool kaisa = assignment->variant == OB_KFAC_KAISA;
    int64_t scratch[OB_KFAC_WIDE_BUFFERS];
    ob_kfac_scratch_elements(config, assignment, rank, scratch);
    for (int i = 0; i < OB_KFAC_WIDE_BUFFERS; i++) cost.wide_scratch_bytes += scratch[i] * es;
    for (int i = 0; i < assignment->n_slots; i++) {
        const ob_kfac_slot *s = &assignment->slots[i];
        int64_t a = s->a_dim, g = s->g_dim;
        bool worker = ob_kfac_is_grad_worker(assignment, s, rank);
        if (kaisa || worker) cost.factor_bytes += (a * a + g * g) * factor_es;
        if (worker) cost.inverse_bytes += inverse_elements(config, s) * inverse_es;
        if (kaisa && world > 1) {
            cost.factor_comm_bytes += (factor_comm_elements(config, a) + factor_comm_elements(config, g)) * es;
            cost.factor_comm_calls += 2;
        }
        if (kaisa && worker && workers > 1) {
            bool eigen = config->method == OB_KFAC_EIGEN;
            cost.inverse_comm_bytes += (a * a + g * g + (eigen ? a + g : 0)) * inverse_es;
            cost.inverse_comm_calls += eigen ? 4 : 2;
        }
        /* The preconditioned gradient reaches the ranks that did not compute
         * it: from the owner (DP) or from each grad worker to its receivers. */
        if (world > workers) {
            cost.precond_comm_bytes += g * a * es;
            cost.precond_comm_calls += 1;
        }
    }
    return cost;
}

static bool update_due(const ob_kfac_piecewise *interval, int64_t step, int64_t steps_per_epoch) {
    int64_t every = (int64_t)ob_kfac_piecewise_at(interval, (double)step / (double)steps_per_epoch);
    return every > 0 && step % every == 0;
}

static int64_t count_updates(const ob_kfac_piecewise *interval, int64_t steps, int64_t steps_per_epoch) {
    int64_t updates = 0;
    for (int64_t step = 0; step < steps; step++) updates += update_due(interval, step, steps_per_epoch);
    return updates;
}

int64_t ob_kfac_factor_updates(const ob_kfac_config *config, int64_t steps, int64_t steps_per_epoch) {
    return count_updates(&config->factor_update_steps, steps, steps_per_epoch);
}

int64_t ob_kfac_inverse_updates(const ob_kfac_config *config, int64_t steps, int64_t steps_per_epoch) {
    return count_updates(&config->inv_update_steps, steps, steps_per_epoch);
}
