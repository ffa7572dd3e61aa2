/* The one-rank "self" communicator, as a plain `optbench run` gets it:
 * size 1, reductions and broadcasts leave the data alone, allgather and
 * reduce_scatter copy, calls and seconds are counted but no bytes, splits
 * share the counters; argument errors return with one line; abort ends the
 * process with its code (in a forked child). Then launcher detection: each
 * launcher variable alone makes ob_comm_launched_by_mpi true, and a build
 * without MPI refuses such a start with one clear line. The launcher
 * variables are cleared first, so that this test never takes itself for an
 * MPI rank (e.g. when ctest itself runs under srun). */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/comm/ob_comm.h"

#include "ob_check.h"

static const char *const launcher_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"};
#define LAUNCHER_VARS (int)(sizeof launcher_vars / sizeof *launcher_vars)

static void clear_launcher_vars(void) {
    for (int i = 0; i < LAUNCHER_VARS; i++) unsetenv(launcher_vars[i]);
}

static bool counted(const ob_comm *comm, ob_comm_op op, ob_comm_category category, int64_t calls) {
    ob_comm_stat s = ob_comm_stats(comm, op, category);
    return s.calls == calls && s.bytes == 0 && s.seconds >= 0;
}

static void test_collectives(ob_comm *comm) {
    CHECK(strcmp(ob_comm_backend_name(comm), "self") == 0);
    CHECK(ob_comm_size(comm) == 1 && ob_comm_rank(comm) == 0);

    float f[3] = {1.5f, -2, 3};
    CHECK(ob_comm_allreduce_sum(comm, f, 3, OB_F32, OB_COMM_GRADS) == 0);
    CHECK(f[0] == 1.5f && f[1] == -2 && f[2] == 3);
    CHECK(ob_comm_allreduce_max(comm, f, 3, OB_F32, OB_COMM_GRADS) == 0);
    CHECK(f[0] == 1.5f && f[1] == -2 && f[2] == 3);
    int32_t i32[2] = {7, -9};
    CHECK(ob_comm_broadcast(comm, i32, 2, OB_I32, 0, OB_COMM_CONTROL) == 0);
    CHECK(i32[0] == 7 && i32[1] == -9);

    double send[4] = {1, 2, 3, 4}, recv[4] = {0, 0, 0, -1};
    CHECK(ob_comm_allgather(comm, send, recv, 3, OB_F64, OB_COMM_EVAL) == 0);
    CHECK(recv[0] == 1 && recv[1] == 2 && recv[2] == 3 && recv[3] == -1);
    double sum = 0;
    CHECK(ob_comm_reduce_scatter_sum(comm, send + 1, &sum, 1, OB_F64, OB_COMM_INVERSES) == 0);
    CHECK(sum == 2);
    CHECK(ob_comm_allgather(comm, send, send, 4, OB_F64, OB_COMM_EVAL) == 0); /* the same buffer: a no-op copy */
    CHECK(send[3] == 4);
    CHECK(ob_comm_allreduce_sum(comm, NULL, 0, OB_F64, OB_COMM_GRADS) == 0);
    CHECK(ob_comm_barrier(comm) == 0);

    CHECK(counted(comm, OB_COMM_ALLREDUCE, OB_COMM_GRADS, 3));
    CHECK(counted(comm, OB_COMM_BROADCAST, OB_COMM_CONTROL, 1));
    CHECK(counted(comm, OB_COMM_ALLGATHER, OB_COMM_EVAL, 2));
    CHECK(counted(comm, OB_COMM_REDUCE_SCATTER, OB_COMM_INVERSES, 1));
    CHECK(counted(comm, OB_COMM_ALLREDUCE, OB_COMM_FACTORS, 0));
    CHECK(ob_comm_stats(comm, OB_COMM_ALLREDUCE, OB_COMM_FACTORS).seconds == 0);
}

static void test_split(ob_comm *comm) {
    ob_comm *sub = NULL;
    CHECK(ob_comm_split(comm, 5, -3, &sub) == 0 && sub);
    if (!sub) return;
    CHECK(ob_comm_size(sub) == 1 && ob_comm_rank(sub) == 0 && strcmp(ob_comm_backend_name(sub), "self") == 0);
    int64_t before = ob_comm_stats(comm, OB_COMM_ALLREDUCE, OB_COMM_BATCHNORM).calls;
    double x = 4;
    CHECK(ob_comm_allreduce_sum(sub, &x, 1, OB_F64, OB_COMM_BATCHNORM) == 0 && x == 4);
    CHECK(counted(comm, OB_COMM_ALLREDUCE, OB_COMM_BATCHNORM, before + 1)); /* in the parent's table */
    ob_comm_reset_stats(sub);
    CHECK(counted(comm, OB_COMM_ALLREDUCE, OB_COMM_GRADS, 0));
    ob_comm_free(sub);
}

/* One line naming `part`, and nothing counted. */
static void check_error(ob_comm *comm, int rc, const char *part) {
    const char *e = ob_comm_error(comm);
    CHECK(rc != 0);
    CHECK(e[0] && !strchr(e, '\n') && strstr(e, part));
    if (!strstr(e, part)) printf("  error \"%s\" does not name \"%s\"\n", e, part);
}

static void test_errors(ob_comm *comm) {
    ob_comm_reset_stats(comm);
    double buffer[2] = {0};
    check_error(comm, ob_comm_broadcast(comm, buffer, 2, OB_F64, 1, OB_COMM_CONTROL), "root 1");
    check_error(comm, ob_comm_allreduce_sum(comm, buffer, 2, OB_U8, OB_COMM_GRADS), "u8");
    check_error(comm, ob_comm_allreduce_sum(comm, buffer, -2, OB_F64, OB_COMM_GRADS), "negative");
    check_error(comm, ob_comm_reduce_scatter_sum(comm, buffer, NULL, 1, OB_F64, OB_COMM_GRADS), "NULL");
    check_error(comm, ob_comm_allgather(comm, buffer, buffer, INT64_MAX / 2, OB_F64, OB_COMM_GRADS), "overflows");
    ob_comm *sub = comm;
    check_error(comm, ob_comm_split(comm, -1, 0, &sub), "color");
    CHECK(sub == NULL);
    for (int op = 0; op < OB_COMM_OP_COUNT; op++)
        for (int category = 0; category < OB_COMM_CATEGORY_COUNT; category++)
            CHECK(ob_comm_stats(comm, op, category).calls == 0);
}

/* ob_comm_abort on one rank ends the process with the code: in a child. */
static void test_abort(ob_comm *comm) {
    fflush(stdout); /* or the child's exit would print our buffer again */
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) ob_comm_abort(comm, 7);
    int status = 0;
    CHECK(child > 0 && waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);
}

static void test_launcher_detection(void) {
    CHECK(!ob_comm_launched_by_mpi());
    for (int i = 0; i < LAUNCHER_VARS; i++) {
        setenv(launcher_vars[i], "0", 1);
        CHECK(ob_comm_launched_by_mpi());
#ifndef OB_WITH_MPI
        ob_comm *world = NULL;
        char err[256] = "";
        CHECK(ob_comm_world(&world, err, sizeof err) != 0 && world == NULL);
        CHECK(strstr(err, "built without MPI (OB_WITH_MPI=OFF)") && !strchr(err, '\n'));
#endif
        unsetenv(launcher_vars[i]);
    }
}

int main(void) {
    clear_launcher_vars();
    ob_comm *comm = NULL;
    char err[256];
    if (ob_comm_world(&comm, err, sizeof err)) {
        printf("ob_comm_world: %s\n", err);
        return 1;
    }
    test_collectives(comm);
    test_split(comm);
    test_errors(comm);
    test_abort(comm);
    ob_comm_free(comm);
    ob_comm_free(NULL);
    test_launcher_detection();
    CHECK(strcmp(ob_comm_op_name(OB_COMM_ALLGATHER), "allgather") == 0);
    CHECK(strcmp(ob_comm_category_name(OB_COMM_BATCHNORM), "batchnorm") == 0);
    return report_checks();
}
