/* The MPI communicator on 4 ranks: the collectives and byte/call counters
 * of tests/comm_check.h (shared with the NCCL test) on host buffers, then
 * even/odd and pair sub-communicators (with a key that reverses the order)
 * and a one-rank split of a split, and errors that return instead of
 * aborting.
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

#include "comm_check.h"

#define RANKS 4

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
        comm_buffers host = comm_host_buffers();
        check_collectives(world, &host);
        test_split(world);
        check_stats(world, &host);
        test_errors(world);
    }
    checkf(ob_comm_barrier(world) == 0, "world barrier");

    int failed = report_checks_on_all_ranks(world);
    ob_comm_free(world);
    return failed;
}
