/* Checks for tests that run on every rank of an MPI job: messages carry
 * the rank, and the job's verdict counts failures on any rank. */
#ifndef OB_MPI_CHECK_H
#define OB_MPI_CHECK_H

#include <stdarg.h>
#include <stdio.h>

#include "harness/comm/ob_comm.h"
#include "ob_check.h"

static int my_rank;

/* check() with a printf-style description prefixed by this rank. */
static void checkf(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void checkf(bool ok, const char *fmt, ...) {
    char what[600];
    int n = snprintf(what, sizeof what, "rank %d: ", my_rank);
    va_list args;
    va_start(args, fmt);
    vsnprintf(what + n, sizeof what - (size_t)n, fmt, args);
    va_end(args);
    check(ok, what);
}

/* Prints this rank's tally; the exit status is nonzero when any rank failed. */
static int report_checks_on_all_ranks(ob_comm *world) {
    printf("rank %d: ", my_rank);
    int32_t failed_ranks = report_checks();
    if (ob_comm_allreduce_sum(world, &failed_ranks, 1, OB_I32, OB_COMM_CONTROL)) {
        fprintf(stderr, "rank %d: %s\n", my_rank, ob_comm_error(world));
        failed_ranks = 1;
    }
    if (my_rank == 0 && failed_ranks) printf("%d of %d ranks failed checks\n", failed_ranks, ob_comm_size(world));
    return failed_ranks != 0;
}

#endif
