/* The MPI communicator on 4 ranks: every collective for f32, f64 and i32
 * against values each rank can compute for all the others (small integers,
 * exact in every dtype and any summation order), broadcast from each root,
 * even/odd and pair sub-communicators (with a key that reverses the order)
 * and a one-rank split of a split, the byte/call counters against the
 * header's convention, and errors that return instead of aborting.
 *
 * Built twice: test_comm with MPI's int counts, test_comm_chunked with at
 * most 3 elements per MPI call (tests/CMakeLists.txt), so that the buffers
 * here (up to 10 elements) also run the chunked paths. Every rank checks its
 * own results; the exit status is nonzero if any rank failed a check. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "harness/comm/ob_comm.h"

#include "mpi/mpi_check.h"

#define RANKS 4
#define MAX_ELEMENTS 64

static const ob_dtype dtypes[] = {OB_F32, OB_F64, OB_I32};
static void put(ob_dtype dtype, void *buffer, int64_t i, double v) {
    switch (dtype) {
    case OB_F32: ((float *)buffer)[i] = (float)v; break;
    case OB_F64: ((double *)buffer)[i] = v; break;
    default: ((int32_t *)buffer)[i] = (int32_t)v; break;
    }
}

static double get(ob_dtype dtype, const void *buffer, int64_t i) {
    switch (dtype) {
    case OB_F32: return ((const float *)buffer)[i];
    case OB_F64: return ((const double *)buffer)[i];
    default: return ((const int32_t *)buffer)[i];
    }
}

/* Whether buffer[0..n) equals want[0..n); the first difference is printed. */
static bool equals(ob_dtype dtype, const void *buffer, const double *want, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        if (get(dtype, buffer, i) != want[i]) {
            printf("  rank %d %s [%lld]: got %g, want %g\n", my_rank, ob_dtype_name(dtype), (long long)i,
                   get(dtype, buffer, i), want[i]);
            return false;
        }
    }
    return true;
}

/* Sum: rank r holds (r+1)(i+1), so the sum is 10(i+1). Max: rank r holds
 * i+r for odd i and i-r for even i, so the max is i+3 or i. */
static void test_allreduce(ob_comm *world) {
    enum { N = 10 };
    int r = ob_comm_rank(world);
    for (size_t d = 0; d < sizeof dtypes / sizeof *dtypes; d++) {
        ob_dtype dtype = dtypes[d];
        double buffer[MAX_ELEMENTS], want[N];
        for (int i = 0; i < N; i++) {
            put(dtype, buffer, i, (r + 1) * (i + 1));
            want[i] = 10 * (i + 1);
        }
        checkf(ob_comm_allreduce_sum(world, buffer, N, dtype, OB_COMM_GRADS) == 0, "allreduce_sum %s returns 0",
               ob_dtype_name(dtype));
        checkf(equals(dtype, buffer, want, N), "allreduce_sum %s values", ob_dtype_name(dtype));

        for (int i = 0; i < N; i++) {
            put(dtype, buffer, i, i % 2 ? i + r : i - r);
            want[i] = i % 2 ? i + 3 : i;
        }
        checkf(ob_comm_allreduce_max(world, buffer, N, dtype, OB_COMM_GRADS) == 0, "allreduce_max %s returns 0",
               ob_dtype_name(dtype));
        checkf(equals(dtype, buffer, want, N), "allreduce_max %s values", ob_dtype_name(dtype));
    }
}

/* From every root in turn: the root's 1000*root + i replaces everyone's -1. */
static void test_broadcast(ob_comm *world) {
    enum { N = 7 };
    for (size_t d = 0; d < sizeof dtypes / sizeof *dtypes; d++) {
        ob_dtype dtype = dtypes[d];
        for (int root = 0; root < RANKS; root++) {
            double buffer[MAX_ELEMENTS], want[N];
            for (int i = 0; i < N; i++) {
                want[i] = 1000 * root + i;
                put(dtype, buffer, i, ob_comm_rank(world) == root ? want[i] : -1);
            }
            checkf(ob_comm_broadcast(world, buffer, N, dtype, root, OB_COMM_CONTROL) == 0,
                   "broadcast %s from %d returns 0", ob_dtype_name(dtype), root);
            checkf(equals(dtype, buffer, want, N), "broadcast %s from %d values", ob_dtype_name(dtype), root);
        }
    }
}

/* Rank r sends 10r + i; block r of the result holds it. Counts 5 and 2
 * (above and below the chunked build's limit of 3). */
static void test_allgather(ob_comm *world) {
    static const int64_t counts[] = {5, 2};
    for (size_t d = 0; d < sizeof dtypes / sizeof *dtypes; d++) {
        for (size_t c = 0; c < 2; c++) {
            ob_dtype dtype = dtypes[d];
            int64_t n = counts[c];
            double send[MAX_ELEMENTS], recv[MAX_ELEMENTS], want[RANKS * 5];
            for (int64_t i = 0; i < n; i++) put(dtype, send, i, 10 * ob_comm_rank(world) + i);
            for (int r = 0; r < RANKS; r++)
                for (int64_t i = 0; i < n; i++) want[r * n + i] = 10 * r + i;
            checkf(ob_comm_allgather(world, send, recv, n, dtype, OB_COMM_EVAL) == 0, "allgather %s x%lld returns 0",
                   ob_dtype_name(dtype), (long long)n);
            checkf(equals(dtype, recv, want, RANKS * n), "allgather %s x%lld values", ob_dtype_name(dtype),
                   (long long)n);
        }
    }
}

/* Rank r sends (r+1)(j+1) at j = b*n + i of block b; rank b receives the
 * sum over r, 10(b*n + i + 1). */
static void test_reduce_scatter(ob_comm *world) {
    static const int64_t counts[] = {5, 2};
    int me = ob_comm_rank(world);
    for (size_t d = 0; d < sizeof dtypes / sizeof *dtypes; d++) {
        for (size_t c = 0; c < 2; c++) {
            ob_dtype dtype = dtypes[d];
            int64_t n = counts[c];
            double send[MAX_ELEMENTS], recv[MAX_ELEMENTS], want[5];
            for (int64_t j = 0; j < RANKS * n; j++) put(dtype, send, j, (me + 1) * (j + 1));
            for (int64_t i = 0; i < n; i++) want[i] = 10 * (me * n + i + 1);
            checkf(ob_comm_reduce_scatter_sum(world, send, recv, n, dtype, OB_COMM_INVERSES) == 0,
                   "reduce_scatter %s x%lld returns 0", ob_dtype_name(dtype), (long long)n);
            checkf(equals(dtype, recv, want, n), "reduce_scatter %s x%lld values", ob_dtype_name(dtype),
                   (long long)n);
        }
    }
}

/* Even/odd ranks (key = world rank): sub-rank r/2 of {0,2} or {1,3}. Pairs
 * {0,1}, {2,3} with key -rank: the higher world rank comes first. Then the
 * even/odd communicators split once more into one-rank ones. */
static void test_split(ob_comm *world) {
    int me = ob_comm_rank(world);
    ob_comm *parity = NULL, *pair = NULL, *single = NULL;
    checkf(ob_comm_split(world, me % 2, me, &parity) == 0, "split even/odd returns 0");
    checkf(ob_comm_split(world, me / 2, -me, &pair) == 0, "split pairs returns 0");
    if (!parity || !pair) {
        ob_comm_free(pair);
        ob_comm_free(parity);
        return;
    }
    checkf(ob_comm_size(parity) == 2 && ob_comm_rank(parity) == me / 2, "even/odd: size %d rank %d",
           ob_comm_size(parity), ob_comm_rank(parity));
    checkf(ob_comm_size(pair) == 2 && ob_comm_rank(pair) == 1 - me % 2, "pair: size %d rank %d",
           ob_comm_size(pair), ob_comm_rank(pair));
    checkf(strcmp(ob_comm_backend_name(parity), "mpi") == 0, "sub-communicator backend mpi");

    /* Sum of world ranks: 0+2 or 1+3; each element i adds i per rank. */
    int32_t sums[3] = {me, me, me};
    for (int i = 0; i < 3; i++) sums[i] += i;
    checkf(ob_comm_allreduce_sum(parity, sums, 3, OB_I32, OB_COMM_BATCHNORM) == 0, "even/odd allreduce returns 0");
    int32_t base = me % 2 ? 4 : 2;
    checkf(sums[0] == base && sums[1] == base + 2 && sums[2] == base + 4, "even/odd allreduce: %d %d %d",
           sums[0], sums[1], sums[2]);

    /* From sub-rank 1 (world rank 2 or 3). */
    double value = me;
    checkf(ob_comm_broadcast(parity, &value, 1, OB_F64, 1, OB_COMM_CONTROL) == 0, "even/odd broadcast returns 0");
    checkf(value == (me % 2 ? 3 : 2), "even/odd broadcast: %g", value);

    /* Pair order is reversed: sub-rank 0 is the odd world rank. */
    float mine = (float)me, both[2] = {-1, -1};
    checkf(ob_comm_allgather(pair, &mine, both, 1, OB_F32, OB_COMM_PRECOND_GRADS) == 0, "pair allgather returns 0");
    int odd = me | 1, even = me & ~1;
    checkf(both[0] == odd && both[1] == even, "pair allgather: %g %g", both[0], both[1]);

    /* Block b of the pair's send goes to sub-rank b: world rank w sends
     * (w + 1) * (b + 1), so sub-rank b gets (odd + even + 2) * (b + 1). */
    double send[2] = {me + 1, 2.0 * (me + 1)}, recv = 0;
    checkf(ob_comm_reduce_scatter_sum(pair, send, &recv, 1, OB_F64, OB_COMM_FACTORS) == 0,
           "pair reduce_scatter returns 0");
    checkf(recv == (odd + even + 2) * (ob_comm_rank(pair) + 1), "pair reduce_scatter: %g", recv);

    checkf(ob_comm_split(parity, ob_comm_rank(parity), 0, &single) == 0, "split of a split returns 0");
    if (single) {
        checkf(ob_comm_size(single) == 1 && ob_comm_rank(single) == 0, "one-rank split: size %d rank %d",
               ob_comm_size(single), ob_comm_rank(single));
        double x = me;
        checkf(ob_comm_allreduce_sum(single, &x, 1, OB_F64, OB_COMM_EVAL) == 0 && x == me, "one-rank allreduce");
        checkf(ob_comm_barrier(single) == 0, "one-rank barrier");
    }
    checkf(ob_comm_barrier(pair) == 0 && ob_comm_barrier(parity) == 0, "sub-communicator barriers");
    ob_comm_free(single);
    ob_comm_free(pair);
    ob_comm_free(parity);
}

/* Expected (bytes, calls) per op and category after the sequence below;
 * all other cells must be zero. */
static void test_stats(ob_comm *world) {
    ob_comm *parity = NULL, *single = NULL;
    int me = ob_comm_rank(world);
    if (ob_comm_split(world, me % 2, me, &parity) || ob_comm_split(parity, ob_comm_rank(parity), 0, &single)) {
        checkf(false, "stats: splits: %s", ob_comm_error(parity ? parity : world));
        ob_comm_free(parity);
        return;
    }
    ob_comm_reset_stats(world);
    double buffer[MAX_ELEMENTS] = {0}, recv[MAX_ELEMENTS];
    int rc = 0;
    rc |= ob_comm_allreduce_sum(world, buffer, 10, OB_F32, OB_COMM_GRADS);             /* 40 bytes */
    rc |= ob_comm_allreduce_max(world, buffer, 3, OB_F64, OB_COMM_FACTORS);            /* 24 */
    rc |= ob_comm_broadcast(world, buffer, 7, OB_I32, 2, OB_COMM_CONTROL);             /* 28 */
    rc |= ob_comm_broadcast(world, buffer, 7, OB_I32, 0, OB_COMM_CONTROL);             /* 28 */
    rc |= ob_comm_allgather(world, buffer, recv, 5, OB_F64, OB_COMM_EVAL);             /* 4*5*8 */
    rc |= ob_comm_reduce_scatter_sum(world, buffer, recv, 5, OB_F32, OB_COMM_INVERSES); /* 4*5*4 */
    rc |= ob_comm_allreduce_sum(parity, buffer, 6, OB_F32, OB_COMM_BATCHNORM);         /* 24 */
    rc |= ob_comm_allgather(parity, buffer, recv, 3, OB_I32, OB_COMM_PRECOND_GRADS);   /* 2*3*4 */
    rc |= ob_comm_allreduce_sum(single, buffer, 9, OB_F64, OB_COMM_GRADS);             /* one rank: 0 */
    rc |= ob_comm_allreduce_sum(world, NULL, 0, OB_F64, OB_COMM_GRADS);                /* empty: 0 */
    /* Failures count nothing. */
    checkf(ob_comm_broadcast(world, buffer, 7, OB_I32, RANKS, OB_COMM_CONTROL) != 0, "stats: bad root fails");
    checkf(rc == 0, "stats: every collective returns 0");

    ob_comm_stat want[OB_COMM_OP_COUNT][OB_COMM_CATEGORY_COUNT] = {{{0}}};
    want[OB_COMM_ALLREDUCE][OB_COMM_GRADS] = (ob_comm_stat){.bytes = 40, .calls = 3};
    want[OB_COMM_ALLREDUCE][OB_COMM_FACTORS] = (ob_comm_stat){.bytes = 24, .calls = 1};
    want[OB_COMM_ALLREDUCE][OB_COMM_BATCHNORM] = (ob_comm_stat){.bytes = 24, .calls = 1};
    want[OB_COMM_BROADCAST][OB_COMM_CONTROL] = (ob_comm_stat){.bytes = 56, .calls = 2};
    want[OB_COMM_ALLGATHER][OB_COMM_EVAL] = (ob_comm_stat){.bytes = 160, .calls = 1};
    want[OB_COMM_ALLGATHER][OB_COMM_PRECOND_GRADS] = (ob_comm_stat){.bytes = 24, .calls = 1};
    want[OB_COMM_REDUCE_SCATTER][OB_COMM_INVERSES] = (ob_comm_stat){.bytes = 80, .calls = 1};
    for (int op = 0; op < OB_COMM_OP_COUNT; op++) {
        for (int cat = 0; cat < OB_COMM_CATEGORY_COUNT; cat++) {
            ob_comm_stat got = ob_comm_stats(world, op, cat), w = want[op][cat];
            ob_comm_stat via_sub = ob_comm_stats(single, op, cat);
            checkf(got.bytes == w.bytes && got.calls == w.calls, "stats %s/%s: %lld bytes %lld calls, want %lld %lld",
                   ob_comm_op_name(op), ob_comm_category_name(cat), (long long)got.bytes, (long long)got.calls,
                   (long long)w.bytes, (long long)w.calls);
            checkf(got.seconds >= 0 && (got.calls > 0 || got.seconds == 0), "stats %s/%s: seconds %g",
                   ob_comm_op_name(op), ob_comm_category_name(cat), got.seconds);
            checkf(memcmp(&got, &via_sub, sizeof got) == 0, "stats %s/%s: the same table through a sub-communicator",
                   ob_comm_op_name(op), ob_comm_category_name(cat));
        }
    }
    ob_comm_reset_stats(single);
    checkf(ob_comm_stats(world, OB_COMM_ALLREDUCE, OB_COMM_GRADS).calls == 0, "stats: reset through a sub resets all");
    ob_comm_free(single);
    ob_comm_free(parity);
}

/* A failed check's message is one non-empty line containing `part`. */
static void check_error(ob_comm *comm, int rc, const char *call, const char *part) {
    const char *e = ob_comm_error(comm);
    checkf(rc != 0, "%s fails", call);
    checkf(e[0] && !strchr(e, '\n') && strstr(e, part), "%s: error line \"%s\" names \"%s\"", call, e, part);
}

/* Caller errors: the same on every rank, so each returns without a hang. */
static void test_errors(ob_comm *world) {
    double buffer[4] = {0}, recv[RANKS * 4];
    ob_comm *none = world;
    check_error(world, ob_comm_broadcast(world, buffer, 4, OB_F64, RANKS, OB_COMM_CONTROL), "broadcast root 4",
                "root 4");
    check_error(world, ob_comm_broadcast(world, buffer, 4, OB_F64, -1, OB_COMM_CONTROL), "broadcast root -1",
                "root -1");
    check_error(world, ob_comm_allreduce_sum(world, buffer, 4, OB_U8, OB_COMM_GRADS), "allreduce u8", "u8");
    check_error(world, ob_comm_allreduce_max(world, buffer, -1, OB_F32, OB_COMM_GRADS), "allreduce count -1",
                "negative");
    check_error(world, ob_comm_allgather(world, NULL, recv, 4, OB_F64, OB_COMM_EVAL), "allgather NULL", "NULL");
    check_error(world, ob_comm_reduce_scatter_sum(world, buffer, recv, 1, OB_F64, OB_COMM_CATEGORY_COUNT),
                "reduce_scatter bad category", "category");
    check_error(world, ob_comm_split(world, -1, 0, &none), "split color -1", "color -1");
    checkf(none == NULL, "failed split leaves *out NULL");
    /* The communicator still works after errors. */
    double one = 1;
    checkf(ob_comm_allreduce_sum(world, &one, 1, OB_F64, OB_COMM_CONTROL) == 0 && one == RANKS,
           "allreduce after errors");
}

int main(void) {
    ob_comm *world = NULL;
    char err[512];
    if (ob_comm_world(&world, err, sizeof err)) {
        fprintf(stderr, "test_comm: %s\n", err);
        return 1;
    }
    my_rank = ob_comm_rank(world);
    checkf(ob_comm_launched_by_mpi(), "started by mpirun is detected");
    checkf(strcmp(ob_comm_backend_name(world), "mpi") == 0, "backend %s", ob_comm_backend_name(world));
    checkf(ob_comm_size(world) == RANKS, "size %d, want %d", ob_comm_size(world), RANKS);
    checkf(strcmp(ob_comm_op_name(OB_COMM_REDUCE_SCATTER), "reduce_scatter") == 0 &&
               strcmp(ob_comm_category_name(OB_COMM_PRECOND_GRADS), "precond_grads") == 0,
           "op and category names");
    if (ob_comm_size(world) == RANKS) {
        test_allreduce(world);
        test_broadcast(world);
        test_allgather(world);
        test_reduce_scatter(world);
        test_split(world);
        test_stats(world);
        test_errors(world);
    }
    checkf(ob_comm_barrier(world) == 0, "world barrier");

    int failed = report_checks_on_all_ranks(world);
    ob_comm_free(world);
    return failed;
}
