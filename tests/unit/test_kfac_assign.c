/* Where K-FAC's work goes (optimizers/kfac/assign.c), on one process: the
 * assignment `optbench plan` and a run share, checked against expectations
 * worked out by hand (the derivations are in the comments), for a registry
 * of five Linear/Conv2d layers of distinct factor sizes, one twin of equal
 * cost and a batch-norm:
 *  - which layers are K-FAC layers: batch-norm never, skip_layers patterns
 *    (fnmatch, comma-separated) drop layers by name;
 *  - the greedy placement for 4 ranks: KAISA with grad_worker_frac 1
 *    (COMM-OPT), 1/2 (HYBRID) and 1/4 (MEM-OPT), colocated and split
 *    factors, and DP-KFAC, with n^3 and n^2 costs (which order the layers
 *    differently); ties go to the lower index;
 *  - fractions that give no whole divisor of the world are refused (code 2,
 *    naming kfac.grad_worker_frac);
 *  - ob_kfac_rank_cost_of: the bytes each rank holds and moves, against
 *    byte counts summed by hand, for each KAISA mode and DP, eigen (with and
 *    without eigen_outer) and inverse, symmetric_comm on and off, and
 *    with narrow (bf16/fp16) storage, its wide scratch included;
 *  - the piecewise schedules and the update counts they give;
 *  - ob_kfac_new on one rank: the same refusal, and the memory it holds is
 *    the cost model's. */
#include <stdio.h>
#include <string.h>

#include "harness/comm/ob_comm.h"
#include "nn/ob_layers.h"
#include "optimizers/kfac/ob_kfac.h"

#include "ob_check.h"

/* The registry, in layer order (a = factor A's side, g = G's side):
 *   layer 0 stem.conv   Conv2d 3->8, 3x3, bias   a = 28, g = 8    slot 0
 *   layer 1 stem.bn     batch-norm 8             not a K-FAC layer
 *   layer 2 block.conv  Conv2d 8->4, 1x1         a = 8,  g = 4    slot 1
 *   layer 3 fc1         Linear 9->10, bias       a = 10, g = 10   slot 2
 *   layer 4 fc2         Linear 13->1, bias       a = 14, g = 1    slot 3
 *   layer 5 head        Linear 5->12, bias       a = 6,  g = 12   slot 4
 *   layer 6 fc1b        Linear 9->10, bias       a = 10, g = 10   slot 5 (fc1's twin)
 * Costs, A + G:
 *   n^3: slot 0 21952+512 = 22464, 1 512+64 = 576, 2 1000+1000 = 2000,
 *        3 2744+1 = 2745, 4 216+1728 = 1944, 5 2000
 *        order: 0, 3, 2, 5 (equal to 2, after it), 4, 1
 *   n^2: slot 0 784+64 = 848, 1 64+16 = 80, 2 200, 3 196+1 = 197, 4 36+144 = 180, 5 200
 *        order: 0, 2, 5, 3, 4, 1 (fc2 and fc1 swap places) */
enum { N_SLOTS = 6, WORLD = 4 };
static const int slot_layer[N_SLOTS] = {0, 2, 3, 4, 5, 6};
static const int64_t slot_a[N_SLOTS] = {28, 8, 10, 14, 6, 10}, slot_g[N_SLOTS] = {8, 4, 10, 1, 12, 10};

static ob_params *build_registry(ob_ctx *ctx) {
    ob_params *params = ob_params_new(OB_F32);
    bool ok =
        ob_conv2d_layer_new(ctx, params, "stem.conv", 3, 8, 3, 1, 1, 1, true) &&
        ob_batchnorm_layer_new(ctx, params, "stem.bn", 8, 0.1, 1e-5, 1.0) &&
        ob_conv2d_layer_new(ctx, params, "block.conv", 8, 4, 1, 1, 0, 1, false) &&
        ob_linear_layer_new(ctx, params, "fc1", 9, 10, true) && ob_linear_layer_new(ctx, params, "fc2", 13, 1, true) &&
        ob_linear_layer_new(ctx, params, "head", 5, 12, true) && ob_linear_layer_new(ctx, params, "fc1b", 9, 10, true);
    check(ok && ob_params_layer_count(params) == 7, "registry of 7 layers built");
    return params;
}

static ob_kfac_config base_config(void) {
    ob_kfac_config c = {.variant = OB_KFAC_KAISA,
                        .method = OB_KFAC_EIGEN,
                        .grad_worker_frac = 1,
                        .cost = OB_KFAC_COST_COMPUTE,
                        .skip_layers = ""};
    c.damping.value[0] = 1e-3;
    c.factor_decay.value[0] = 0.95;
    c.factor_update_steps.value[0] = 1;
    c.inv_update_steps.value[0] = 1;
    return c;
}

/* ---- which layers ---- */

static void test_layers(const ob_params *params) {
    ob_kfac_config c = base_config();
    ob_kfac_assignment as;
    char err[256] = "", what[200];
    check(ob_kfac_assign(&c, params, WORLD, &as, err, sizeof err) == 0, "assign: KAISA frac 1 on 4 ranks");
    check(as.variant == OB_KFAC_KAISA && as.world_size == WORLD && as.grad_workers == WORLD && as.n_slots == N_SLOTS,
          "assign: 6 slots, 4 grad workers, world 4");
    for (int i = 0; i < as.n_slots && i < N_SLOTS; i++) {
        snprintf(what, sizeof what, "slot %d: layer %d, a %lld g %lld (the batch-norm has no slot)", i, slot_layer[i],
                 (long long)slot_a[i], (long long)slot_g[i]);
        check(as.slots[i].layer_index == slot_layer[i] && as.slots[i].a_dim == slot_a[i] &&
                  as.slots[i].g_dim == slot_g[i],
              what);
    }
    ob_kfac_assignment_free(&as);
    check(as.slots == NULL && as.n_slots == 0, "assignment_free clears the assignment");

    /* skip patterns: want the layer indices that remain */
    static const struct {
        const char *patterns;
        int n;
        int layers[N_SLOTS];
    } cases[] = {
        {"fc1", 5, {0, 2, 4, 5, 6}},      /* exact name; fc1b does not match "fc1" */
        {"fc1*", 4, {0, 2, 4, 5}},        /* a glob takes both */
        {"stem.*,head", 4, {2, 3, 4, 6}}, /* two patterns */
        {"*.conv", 4, {3, 4, 5, 6}},      /* '*' crosses the dot */
        {",fc?,,", 4, {0, 2, 5, 6}},
        {" fc1 ,\thead\t", 4, {0, 2, 4, 6}},
        /* blanks around a pattern dropped */ /* empty patterns ignored; '?' matches one character */
        {"nothing*", 6, {0, 2, 3, 4, 5, 6}},
        {"*", 0, {0}},
        {"stem.bn", 6, {0, 2, 3, 4, 5, 6}}, /* skipping the batch-norm changes nothing */
        {NULL, 6, {0, 2, 3, 4, 5, 6}},      /* NULL is no pattern, like "" */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        c.skip_layers = cases[k].patterns;
        int rc = ob_kfac_assign(&c, params, WORLD, &as, err, sizeof err);
        bool same = rc == 0 && as.n_slots == cases[k].n;
        for (int i = 0; same && i < as.n_slots; i++) same = as.slots[i].layer_index == cases[k].layers[i];
        snprintf(what, sizeof what, "skip_layers \"%s\" leaves %d layers",
                 cases[k].patterns ? cases[k].patterns : "(null)", cases[k].n);
        check(same, what);
        ob_kfac_assignment_free(&as);
    }
}

/* ---- placement ---- */

typedef struct {
    int group, a_worker, g_worker;
} place;

static void check_placement(const ob_params *params, ob_kfac_config c, const place *want, const char *name) {
    ob_kfac_assignment as;
    char err[256] = "", what[240];
    int rc = ob_kfac_assign(&c, params, WORLD, &as, err, sizeof err);
    snprintf(what, sizeof what, "%s: assigned (%s)", name, err);
    check(rc == 0 && as.n_slots == N_SLOTS, what);
    for (int i = 0; rc == 0 && i < as.n_slots && i < N_SLOTS; i++) {
        const ob_kfac_slot *s = &as.slots[i];
        snprintf(what, sizeof what, "%s: slot %d in group %d, A on %d, G on %d (got %d, %d, %d)", name, i,
                 want[i].group, want[i].a_worker, want[i].g_worker, s->group, s->a_worker, s->g_worker);
        check(s->group == want[i].group && s->a_worker == want[i].a_worker && s->g_worker == want[i].g_worker, what);
        /* grad workers: the g ranks of the group (DP: the owner) */
        int workers = 0;
        bool members = true;
        for (int r = 0; r < WORLD; r++) {
            bool worker = ob_kfac_is_grad_worker(&as, s, r);
            workers += worker;
            int first = c.variant == OB_KFAC_DP ? s->group : s->group * as.grad_workers;
            members = members && worker == (r >= first && r < first + as.grad_workers);
        }
        snprintf(what, sizeof what, "%s: slot %d has %d grad workers, its group's ranks", name, i, as.grad_workers);
        check(members && workers == as.grad_workers, what);
        snprintf(what, sizeof what, "%s: slot %d decomposed by ranks of its group", name, i);
        check(ob_kfac_is_grad_worker(&as, s, s->a_worker) && ob_kfac_is_grad_worker(&as, s, s->g_worker), what);
    }
    ob_kfac_assignment_free(&as);
}

static void test_placement(const ob_params *params) {
    ob_kfac_config c = base_config();
    /* COMM-OPT, split factors: one group of 4; rank loads [0,0,0,0]
     *   slot 0: A 21952 -> r0; G 512 -> r1                      [21952, 512, 0, 0]
     *   slot 3: A 2744 -> r2; G 1 -> r3                         [21952, 512, 2744, 1]
     *   slot 2: A 1000 -> r3 (1); G 1000 -> r1 (512)            [21952, 1512, 2744, 1001]
     *   slot 5: A -> r3 (1001); G -> r1 (1512)                  [21952, 2512, 2744, 2001]
     *   slot 4: A 216 -> r3 (2001); G 1728 -> r3 (2217)         [21952, 2512, 2744, 3945]
     *   slot 1: A 512 -> r1 (2512); G 64 -> r2 (2744 < 3024)    */
    check_placement(params, c, (const place[]){{0, 0, 1}, {0, 1, 2}, {0, 3, 1}, {0, 2, 3}, {0, 3, 3}, {0, 3, 1}},
                    "KAISA frac 1, n^3, split");
    /* COMM-OPT, colocated: A+G on one rank: 0 -> r0 (22464), 3 -> r1 (2745),
     * 2 -> r2 (2000), 5 -> r3 (2000), 4 -> r2 (2000, tie: lower), 1 -> r3 (2000 < 2745) */
    c.colocate_factors = true;
    const place memopt[] = {{0, 0, 0}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {2, 2, 2}, {3, 3, 3}};
    check_placement(params, c, (const place[]){{0, 0, 0}, {0, 3, 3}, {0, 2, 2}, {0, 1, 1}, {0, 2, 2}, {0, 3, 3}},
                    "KAISA frac 1, n^3, colocated");
    /* HYBRID, split: groups {0,1} and {1: 2,3}; group loads [0,0]
     *   slot 0 -> group 0 (tie) [22464, 0]: A r0, G r1
     *   slot 3 -> group 1 [.., 2745]: A r2 (2744), G r3 (1)
     *   slot 2 -> group 1 [.., 4745]: A r3 (1 < 2744) -> 1001, G r3 (1001 < 2744) -> 2001
     *   slot 5 -> group 1 [.., 6745]: A r3 (2001) -> 3001, G r2 (2744 < 3001) -> 3744
     *   slot 4 -> group 1 [.., 8689]: A r3 (3001) -> 3217, G r3 (3217 < 3744) -> 4945
     *   slot 1 -> group 1 (8689 < 22464): A r2 (3744) -> 4256, G r2 (4256 < 4945) */
    c.colocate_factors = false;
    c.grad_worker_frac = 0.5;
    check_placement(params, c, (const place[]){{0, 0, 1}, {1, 2, 2}, {1, 3, 3}, {1, 2, 3}, {1, 3, 3}, {1, 3, 2}},
                    "KAISA frac 1/2, n^3, split");
    /* HYBRID, colocated: slot 0 -> g0 r0; 3 -> g1 r2 (2745); 2 -> g1 r3 (2000);
     * 5 -> g1 r3 (2000 < 2745) -> 4000; 4 -> g1 r2 (2745) -> 4689; 1 -> g1 r3 (4000) */
    c.colocate_factors = true;
    check_placement(params, c, (const place[]){{0, 0, 0}, {1, 3, 3}, {1, 3, 3}, {1, 2, 2}, {1, 2, 2}, {1, 3, 3}},
                    "KAISA frac 1/2, n^3, colocated");
    /* MEM-OPT: four groups of one; the group's rank does everything, as
     * COMM-OPT colocated places it, with or without colocation. */
    c.grad_worker_frac = 0.25;
    check_placement(params, c, memopt, "KAISA frac 1/4, n^3, colocated");
    c.colocate_factors = false;
    check_placement(params, c, memopt, "KAISA frac 1/4, n^3, split");
    /* DP: owner = least-loaded rank, the same walk; the fraction is not read. */
    c.variant = OB_KFAC_DP;
    c.grad_worker_frac = 0.3;
    check_placement(params, c, memopt, "DP, n^3 (grad_worker_frac ignored)");

    /* n^2: order 0 (848), 2 (200), 5 (200), 3 (197), 4 (180), 1 (80)
     * DP: 0 -> r0; 2 -> r1; 5 -> r2; 3 -> r3 (197); 4 -> r3 ([848,200,200,197]) -> 377;
     *     1 -> r1 ([848,200,200,377], tie: lower) */
    c.cost = OB_KFAC_COST_MEMORY;
    check_placement(params, c, (const place[]){{0, 0, 0}, {1, 1, 1}, {1, 1, 1}, {3, 3, 3}, {3, 3, 3}, {2, 2, 2}},
                    "DP, n^2");
    /* HYBRID split, n^2: slot 0 -> g0, A r0 (784), G r1 (64)
     *   2 -> g1 [848, 200]: A r2 (100), G r3 (100)
     *   5 -> g1 [.., 400]: A r2 (tie) -> 200, G r3 (100) -> 200
     *   3 -> g1 [.., 597]: A r2 (tie) -> 396, G r3 (200) -> 201
     *   4 -> g1 [.., 777]: A r3 (201) -> 237, G r3 (237 < 396) -> 381
     *   1 -> g1 (777 < 848): A r3 (381) -> 445, G r2 (396 < 445) */
    c.variant = OB_KFAC_KAISA;
    c.grad_worker_frac = 0.5;
    check_placement(params, c, (const place[]){{0, 0, 1}, {1, 3, 2}, {1, 2, 3}, {1, 2, 3}, {1, 3, 3}, {1, 2, 3}},
                    "KAISA frac 1/2, n^2, split");
}

static void test_bad_fractions(const ob_params *params) {
    static const struct {
        double frac;
        int world;
    } bad[] = {{0.3, 4}, {0.75, 4}, {0, 4}, {-0.5, 4}, {1.5, 4}, {0.5, 3}, {0.1, 4}};
    ob_kfac_config c = base_config();
    char what[200];
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ob_kfac_assignment as;
        char err[256] = "";
        c.grad_worker_frac = bad[k].frac;
        int rc = ob_kfac_assign(&c, params, bad[k].world, &as, err, sizeof err);
        snprintf(what, sizeof what, "grad_worker_frac %g of %d ranks refused with code 2 naming the key", bad[k].frac,
                 bad[k].world);
        check(rc == 2 && strstr(err, "kfac.grad_worker_frac") != NULL, what);
        if (rc == 0) ob_kfac_assignment_free(&as);
    }
    for (int variant = 0; variant < 2; variant++) {
        ob_kfac_assignment as;
        char err[256] = "";
        c.variant = variant ? OB_KFAC_DP : OB_KFAC_KAISA;
        c.grad_worker_frac = 1;
        int rc = ob_kfac_assign(&c, params, 0, &as, err, sizeof err);
        check(rc == 2 && strstr(err, "world size") != NULL,
              variant ? "DP on 0 ranks refused" : "KAISA on 0 ranks refused");
        if (rc == 0) ob_kfac_assignment_free(&as);
    }
    c.variant = OB_KFAC_KAISA;
    static const struct {
        double frac;
        int world, workers;
    } good[] = {{1, 4, 4}, {0.5, 4, 2}, {0.25, 4, 1}, {1.0 / 3, 6, 2}, {1, 1, 1}};
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        ob_kfac_assignment as;
        char err[256] = "";
        c.grad_worker_frac = good[k].frac;
        int rc = ob_kfac_assign(&c, params, good[k].world, &as, err, sizeof err);
        snprintf(what, sizeof what, "grad_worker_frac %g of %d ranks: %d grad workers", good[k].frac, good[k].world,
                 good[k].workers);
        check(rc == 0 && as.grad_workers == good[k].workers, what);
        if (rc == 0) ob_kfac_assignment_free(&as);
    }
}

/* ---- the cost model ----
 * Per slot (elements): a^2+g^2 = 848, 80, 200, 197, 180, 200 (sum 1705);
 * upper triangles a(a+1)/2 + g(g+1)/2 = 442, 46, 110, 106, 99, 110 (sum 913);
 * g*a = 224, 32, 100, 14, 72, 100 (sum 542);
 * eigen inverses a^2+a+g^2+g = 884, 92, 220, 212, 198, 220 (sum 1826);
 * inverse method a^2+g^2 (sum 1705). */

static void check_cost(const ob_params *params, const ob_kfac_config *c, int world, int rank, size_t es,
                       ob_kfac_rank_cost want, const char *name) {
    ob_kfac_assignment as;
    char err[256] = "", what[400];
    if (ob_kfac_assign(c, params, world, &as, err, sizeof err)) {
        snprintf(what, sizeof what, "%s: assigned (%s)", name, err);
        check(false, what);
        return;
    }
    ob_kfac_rank_cost got = ob_kfac_rank_cost_of(c, &as, rank, es);
    int64_t e = (int64_t)es;
    snprintf(
        what, sizeof what,
        "%s, rank %d, %zu-byte elements: factors %lld/%lld inverses %lld/%lld; per update: factor comm "
        "%lld/%lld in %lld/%lld calls, inverse comm %lld/%lld in %lld/%lld; per step precond %lld/%lld in "
        "%lld/%lld",
        name, rank, es, (long long)got.factor_bytes, (long long)(want.factor_bytes * e), (long long)got.inverse_bytes,
        (long long)(want.inverse_bytes * e), (long long)got.factor_comm_bytes, (long long)(want.factor_comm_bytes * e),
        (long long)got.factor_comm_calls, (long long)want.factor_comm_calls, (long long)got.inverse_comm_bytes,
        (long long)(want.inverse_comm_bytes * e), (long long)got.inverse_comm_calls, (long long)want.inverse_comm_calls,
        (long long)got.precond_comm_bytes, (long long)(want.precond_comm_bytes * e), (long long)got.precond_comm_calls,
        (long long)want.precond_comm_calls);
    check(got.factor_bytes == want.factor_bytes * e && got.inverse_bytes == want.inverse_bytes * e &&
              got.factor_comm_bytes == want.factor_comm_bytes * e &&
              got.inverse_comm_bytes == want.inverse_comm_bytes * e &&
              got.precond_comm_bytes == want.precond_comm_bytes * e &&
              got.factor_comm_calls == want.factor_comm_calls && got.inverse_comm_calls == want.inverse_comm_calls &&
              got.precond_comm_calls == want.precond_comm_calls,
          what);
    ob_kfac_assignment_free(&as);
}

/* want's byte fields are in elements here; check_cost multiplies them. */
#define COST(fb, ib, fcb, fcc, icb, icc, pcb, pcc)                                                                     \
    (ob_kfac_rank_cost) {                                                                                              \
        .factor_bytes = (fb), .inverse_bytes = (ib), .factor_comm_bytes = (fcb), .factor_comm_calls = (fcc),           \
        .inverse_comm_bytes = (icb), .inverse_comm_calls = (icc), .precond_comm_bytes = (pcb),                         \
        .precond_comm_calls = (pcc)                                                                                    \
    }

static void test_costs(const ob_params *params) {
    for (int f64 = 0; f64 < 2; f64++) {
        size_t es = f64 ? 8 : 4;
        ob_kfac_config c = base_config();
        /* COMM-OPT eigen: every rank holds everything; factors all-reduced
         * (12 calls), inverses broadcast in the group of 4 (4 per slot), no
         * gradient broadcast. */
        for (int r = 0; r < WORLD; r++)
            check_cost(params, &c, WORLD, r, es, COST(1705, 1826, 1705, 12, 1826, 24, 0, 0), "COMM-OPT eigen");
        c.symmetric_comm = true;
        check_cost(params, &c, WORLD, 2, es, COST(1705, 1826, 913, 12, 1826, 24, 0, 0), "COMM-OPT eigen symmetric");
        c.eigen_outer = true; /* + g*a held, never sent (computed after the broadcast) */
        check_cost(params, &c, WORLD, 1, es, COST(1705, 1826 + 542, 913, 12, 1826, 24, 0, 0),
                   "COMM-OPT eigen_outer symmetric");
        c.method = OB_KFAC_INVERSE; /* eigen_outer means nothing here */
        check_cost(params, &c, WORLD, 3, es, COST(1705, 1705, 913, 12, 1705, 12, 0, 0), "COMM-OPT inverse symmetric");
        c.symmetric_comm = false;
        check_cost(params, &c, WORLD, 0, es, COST(1705, 1705, 1705, 12, 1705, 12, 0, 0), "COMM-OPT inverse");

        /* HYBRID (frac 1/2, split, n^3): group 0 = ranks 0, 1 holds slot 0;
         * group 1 = ranks 2, 3 holds slots 1-5. Every rank takes part in the
         * 6 gradient broadcasts to its receiver group. */
        c = base_config();
        c.grad_worker_frac = 0.5;
        for (int r = 0; r < 2; r++)
            check_cost(params, &c, WORLD, r, es, COST(1705, 884, 1705, 12, 884, 4, 542, 6), "HYBRID eigen, group 0");
        for (int r = 2; r < 4; r++)
            check_cost(params, &c, WORLD, r, es, COST(1705, 942, 1705, 12, 942, 20, 542, 6), "HYBRID eigen, group 1");
        c.eigen_outer = true; /* + 224 (group 0), + 318 (group 1) */
        check_cost(params, &c, WORLD, 1, es, COST(1705, 1108, 1705, 12, 884, 4, 542, 6), "HYBRID eigen_outer, group 0");
        check_cost(params, &c, WORLD, 2, es, COST(1705, 1260, 1705, 12, 942, 20, 542, 6),
                   "HYBRID eigen_outer, group 1");
        c.method = OB_KFAC_INVERSE;
        c.symmetric_comm = true;
        check_cost(params, &c, WORLD, 0, es, COST(1705, 848, 913, 12, 848, 2, 542, 6),
                   "HYBRID inverse symmetric, group 0");
        check_cost(params, &c, WORLD, 3, es, COST(1705, 857, 913, 12, 857, 10, 542, 6),
                   "HYBRID inverse symmetric, group 1");

        /* MEM-OPT (frac 1/4): owners 0: slot 0; 1: slot 3; 2: slots 2, 4; 3: slots 1, 5.
         * Inverses never travel; each owner broadcasts its gradients. */
        c = base_config();
        c.grad_worker_frac = 0.25;
        static const int64_t eigen_owned[WORLD] = {884, 212, 418, 312}, inverse_owned[WORLD] = {848, 197, 380, 280};
        for (int r = 0; r < WORLD; r++)
            check_cost(params, &c, WORLD, r, es, COST(1705, eigen_owned[r], 1705, 12, 0, 0, 542, 6), "MEM-OPT eigen");
        c.method = OB_KFAC_INVERSE;
        for (int r = 0; r < WORLD; r++)
            check_cost(params, &c, WORLD, r, es, COST(1705, inverse_owned[r], 1705, 12, 0, 0, 542, 6),
                       "MEM-OPT inverse");

        /* DP: the same owners; only the owner holds factors, which never
         * travel; the owner broadcasts the gradient over the world. */
        c.variant = OB_KFAC_DP;
        for (int r = 0; r < WORLD; r++)
            check_cost(params, &c, WORLD, r, es, COST(inverse_owned[r], inverse_owned[r], 0, 0, 0, 0, 542, 6),
                       "DP inverse");
        c.method = OB_KFAC_EIGEN;
        c.symmetric_comm = true; /* no factor comm to shrink */
        for (int r = 0; r < WORLD; r++)
            check_cost(params, &c, WORLD, r, es, COST(inverse_owned[r], eigen_owned[r], 0, 0, 0, 0, 542, 6),
                       "DP eigen");

        /* One rank: nothing leaves the process. */
        c = base_config();
        check_cost(params, &c, 1, 0, es, COST(1705, 1826, 0, 0, 0, 0, 0, 0), "KAISA on 1 rank");
        c.variant = OB_KFAC_DP;
        c.method = OB_KFAC_INVERSE;
        check_cost(params, &c, 1, 0, es, COST(1705, 1705, 0, 0, 0, 0, 0, 0), "DP on 1 rank");
    }
}

/* Narrow storage (bf16 factors, fp16 inverses): 2 bytes per stored element
 * and per broadcast inverse element; the factor all-reduce stays wide (a
 * sum). The wide scratch (buffers of the largest g^2 and the largest a^2,
 * where factors are decomposed in place, then for the eigen method the
 * eigenvalues, max(a, g), or eigen_outer's g x a, and d_A, a) over the
 * slots whose factors the rank holds:
 *   every slot (KAISA): largest g 12 (slot 4): 144; largest a 28 (slot 0):
 *   784; eigen 144+784+28+28 = 984; eigen_outer, largest g*a = 8*28 = 224:
 *   144+784+224 = 1152;
 *   DP rank 2 owns slots 2 (10, 10) and 4 (6, 12): inverse 144+100 = 244. */
static void check_narrow(const ob_params *params, const ob_kfac_config *c, int rank, ob_kfac_rank_cost want,
                         const char *name) {
    ob_kfac_assignment as;
    char err[256] = "", what[400];
    bool assigned = ob_kfac_assign(c, params, WORLD, &as, err, sizeof err) == 0;
    ob_kfac_rank_cost got = assigned ? ob_kfac_rank_cost_of(c, &as, rank, 4) : (ob_kfac_rank_cost){0};
    snprintf(what, sizeof what,
             "%s, rank %d: factors %lld/%lld inverses %lld/%lld factor comm %lld/%lld inverse comm %lld/%lld "
             "scratch %lld/%lld %s",
             name, rank, (long long)got.factor_bytes, (long long)want.factor_bytes, (long long)got.inverse_bytes,
             (long long)want.inverse_bytes, (long long)got.factor_comm_bytes, (long long)want.factor_comm_bytes,
             (long long)got.inverse_comm_bytes, (long long)want.inverse_comm_bytes,
             (long long)got.wide_scratch_bytes, (long long)want.wide_scratch_bytes, err);
    check(assigned && got.factor_bytes == want.factor_bytes && got.inverse_bytes == want.inverse_bytes &&
              got.factor_comm_bytes == want.factor_comm_bytes && got.inverse_comm_bytes == want.inverse_comm_bytes &&
              got.wide_scratch_bytes == want.wide_scratch_bytes,
          what);
    if (assigned) ob_kfac_assignment_free(&as);
}

static void test_narrow_costs(const ob_params *params) {
    ob_kfac_config c = base_config();
    check_narrow(params, &c, 0,
                 (ob_kfac_rank_cost){.factor_bytes = 1705 * 4, .inverse_bytes = 1826 * 4,
                                     .factor_comm_bytes = 1705 * 4, .inverse_comm_bytes = 1826 * 4},
                 "COMM-OPT eigen fp32: no scratch");
    c.factor_dtype = OB_BF16;
    c.inverse_dtype = OB_F16;
    check_narrow(params, &c, 1,
                 (ob_kfac_rank_cost){.factor_bytes = 1705 * 2, .inverse_bytes = 1826 * 2,
                                     .factor_comm_bytes = 1705 * 4, .inverse_comm_bytes = 1826 * 2,
                                     .wide_scratch_bytes = 984 * 4},
                 "COMM-OPT eigen bf16/fp16");
    c.eigen_outer = true;
    check_narrow(params, &c, 3,
                 (ob_kfac_rank_cost){.factor_bytes = 1705 * 2, .inverse_bytes = (1826 + 542) * 2,
                                     .factor_comm_bytes = 1705 * 4, .inverse_comm_bytes = 1826 * 2,
                                     .wide_scratch_bytes = 1152 * 4},
                 "COMM-OPT eigen_outer bf16/fp16");
    c = base_config();
    c.variant = OB_KFAC_DP;
    c.method = OB_KFAC_INVERSE;
    c.factor_dtype = OB_BF16; /* inverses wide: the scratch is still needed for the factors */
    check_narrow(params, &c, 2,
                 (ob_kfac_rank_cost){.factor_bytes = 380 * 2, .inverse_bytes = 380 * 4, .wide_scratch_bytes = 244 * 4},
                 "DP inverse bf16 factors, rank 2");
}

/* ---- schedules ---- */

static void test_schedules(void) {
    ob_kfac_config c = base_config();
    /* factors every 2 steps until epoch 1, then every 3; 5 steps an epoch:
     * steps 0-4 (epochs 0-0.8): 0, 2, 4; from step 5 (epoch 1): 6, 9, 12, ...
     * (the interval counts from step 0, not from the piece's start) */
    c.factor_update_steps = (ob_kfac_piecewise){.value = {2, 3}, .epochs = {1}, .n_epochs = 1};
    check(ob_kfac_piecewise_at(&c.factor_update_steps, 0) == 2 &&
              ob_kfac_piecewise_at(&c.factor_update_steps, 0.999) == 2 &&
              ob_kfac_piecewise_at(&c.factor_update_steps, 1) == 3 &&
              ob_kfac_piecewise_at(&c.factor_update_steps, 40) == 3,
          "piecewise: 2 before epoch 1, 3 from epoch 1 on (the boundary belongs to the next piece)");
    static const struct {
        int64_t steps, updates;
    } factor_counts[] = {{0, 0}, {1, 1}, {2, 1}, {3, 2}, {5, 3}, {6, 3}, {7, 4}, {10, 5}, {12, 5}, {13, 6}, {16, 7}};
    char what[160];
    for (size_t k = 0; k < sizeof factor_counts / sizeof factor_counts[0]; k++) {
        int64_t got = ob_kfac_factor_updates(&c, factor_counts[k].steps, 5);
        snprintf(what, sizeof what, "factor updates in %lld steps: %lld (got %lld)", (long long)factor_counts[k].steps,
                 (long long)factor_counts[k].updates, (long long)got);
        check(got == factor_counts[k].updates, what);
    }
    /* inverses every 4 steps until epoch 2, then never (0):
     * steps 0, 4, 8; nothing from step 10 */
    c.inv_update_steps = (ob_kfac_piecewise){.value = {4, 0}, .epochs = {2}, .n_epochs = 1};
    check(ob_kfac_inverse_updates(&c, 9, 5) == 3 && ob_kfac_inverse_updates(&c, 100, 5) == 3 &&
              ob_kfac_inverse_updates(&c, 8, 5) == 2,
          "inverse updates: 0, 4, 8, then none after epoch 2");
    /* three pieces: every step until epoch 0.4, every 2 until 1, every 5 after:
     * 0, 1 | 2, 4 | 5, 10, 15 */
    c.inv_update_steps = (ob_kfac_piecewise){.value = {1, 2, 5}, .epochs = {0.4, 1}, .n_epochs = 2};
    check(ob_kfac_piecewise_at(&c.inv_update_steps, 0.2) == 1 && ob_kfac_piecewise_at(&c.inv_update_steps, 0.4) == 2 &&
              ob_kfac_piecewise_at(&c.inv_update_steps, 1.5) == 5,
          "three pieces: 1, 2, 5");
    check(ob_kfac_inverse_updates(&c, 2, 5) == 2 && ob_kfac_inverse_updates(&c, 5, 5) == 4 &&
              ob_kfac_inverse_updates(&c, 16, 5) == 7,
          "three-piece inverse updates: 0, 1, 2, 4, 5, 10, 15");
    /* a constant schedule (no pieces) of 1: every step */
    c.factor_update_steps = (ob_kfac_piecewise){.value = {1}};
    check(ob_kfac_factor_updates(&c, 17, 5) == 17, "constant interval 1: every step");

    /* decay warm-up, min(1 - 1/k, 0.95): 0 (the identity replaced), 1/2,
     * 2/3, ..., 0.95 after the 20th update; off, 0.95 throughout */
    check(ob_kfac_decay_at_update(0.95, true, 1) == 0.0 && ob_kfac_decay_at_update(0.95, true, 2) == 0.5 &&
              ob_kfac_decay_at_update(0.95, true, 3) == 1.0 - 1.0 / 3.0 &&
              ob_kfac_decay_at_update(0.95, true, 19) == 1.0 - 1.0 / 19.0 &&
              ob_kfac_decay_at_update(0.95, true, 21) == 0.95 && ob_kfac_decay_at_update(0.95, true, 1000) == 0.95,
          "decay warm-up: min(1 - 1/k, factor_decay)");
    check(ob_kfac_decay_at_update(0.95, false, 1) == 0.95 && ob_kfac_decay_at_update(0.95, false, 7) == 0.95,
          "no warm-up: factor_decay from the first update");
}

/* ob_kfac_new on this process's one-rank world: a bad fraction is code 2
 * with the key named; a good config holds what the cost model says (F32:
 * 4-byte elements) and gives it back when freed. */
static void test_new(ob_ctx *ctx, ob_params *params) {
    ob_comm *world = NULL;
    char err[256] = "";
    if (ob_comm_world(&world, err, sizeof err)) {
        check(false, "one-rank world communicator");
        return;
    }
    ob_kfac_config c = base_config();
    c.grad_worker_frac = 0.3;
    int code = 0;
    ob_kfac *kfac = ob_kfac_new(ctx, params, world, &c, 10, &code, err, sizeof err);
    check(kfac == NULL && code == 2 && strstr(err, "kfac.grad_worker_frac") != NULL,
          "ob_kfac_new: 0.3 of 1 rank refused, code 2, naming kfac.grad_worker_frac");
    c.grad_worker_frac = 1;
    c.eigen_outer = true;
    kfac = ob_kfac_new(ctx, params, world, &c, 10, &code, err, sizeof err);
    check(kfac != NULL && code == 0, "ob_kfac_new: KAISA eigen_outer on 1 rank");
    if (kfac) {
        check(ob_kfac_get_assignment(kfac)->n_slots == N_SLOTS, "ob_kfac_new: the assignment's 6 slots");
        check(ob_mem_current(ctx, OB_MEM_KFAC_FACTORS) == 1705 * 4 &&
                  ob_mem_current(ctx, OB_MEM_KFAC_INVERSES) == (1826 + 542) * 4,
              "ob_kfac_new: holds 1705 factor and 2368 inverse elements of 4 bytes");
        /* kfac.counters, then per slot A, G, QA, dA, QG, dG, outer */
        char name[128] = "";
        check(ob_kfac_state_count(kfac) == 1 + 7 * N_SLOTS && ob_kfac_state_at(kfac, 0, name, sizeof name) &&
                  strcmp(name, "kfac.counters") == 0 && ob_kfac_state_at(kfac, 1, name, sizeof name) &&
                  strcmp(name, "kfac.stem.conv.A") == 0,
              "ob_kfac_new: 43 state tensors, kfac.counters then kfac.stem.conv.A");
        ob_kfac_free(ctx, kfac);
    }
    check(ob_mem_current(ctx, OB_MEM_KFAC_FACTORS) == 0 && ob_mem_current(ctx, OB_MEM_KFAC_INVERSES) == 0,
          "ob_kfac_free gives the K-FAC memory back");
    ob_comm_free(world);
}

int main(void) {
    ob_ctx *ctx = ob_ctx_new(&(ob_ctx_config){.threads = 1, .seed = 5, .world_size = 1});
    if (!ctx) {
        printf("cannot create a context\n0 passed, 1 failed\n");
        return 1;
    }
    ob_params *params = build_registry(ctx);
    test_layers(params);
    test_placement(params);
    test_bad_fractions(params);
    test_costs(params);
    test_narrow_costs(params);
    test_schedules();
    test_new(ctx, params);
    ob_params_free(ctx, params);
    ob_ctx_free(ctx);
    return report_checks();
}
