/* ob_comm_abort on 4 ranks: rank 1 aborts with code 7 while the others wait
 * at a barrier it never reaches. The job must end (not hang) with exit
 * status 7: tests/CMakeLists.txt runs it through expect_exit.sh, and a
 * TIMEOUT catches a hang. Not a test_*.c: its success is a failing exit. */
#include <stdio.h>

#include "harness/comm/ob_comm.h"

int main(void) {
    ob_comm *world = NULL;
    char err[512];
    if (ob_comm_world(&world, err, sizeof err)) {
        fprintf(stderr, "comm_abort: %s\n", err);
        return 1;
    }
    if (ob_comm_rank(world) == 1) ob_comm_abort(world, 7);
    /* The other ranks can only leave this barrier by being killed. */
    int rc = ob_comm_barrier(world);
    printf("rank %d: barrier returned %d without rank 1\n", ob_comm_rank(world), rc);
    ob_comm_free(world);
    return 0;
}
