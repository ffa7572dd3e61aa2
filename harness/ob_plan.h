/* `optbench plan`: per-rank memory by category and per-step communication
 * by category for a configuration at any world size, without training.
 * Communication follows ob_comm.h's byte convention: gradient averaging,
 * synchronized batch-norm (dist.sync_batchnorm) and K-FAC's three kinds.
 * It builds the preset's model (for its real layer shapes) and asks the
 * same code a run uses: the optimizer for its state bytes, the gradient
 * bucketing for its buffer, ob_kfac_assign and ob_kfac_rank_cost_of for
 * K-FAC's placement, so a run of the same configuration moves and holds
 * what the plan says (tests/mpi/test_plan_matches_run.sh checks it). */
#ifndef OB_PLAN_H
#define OB_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness/ob_config.h"

#define OB_PLAN_MAX_RANKS 64
#define OB_PLAN_MAX_STRATEGIES 8

typedef struct {
    int ranks[OB_PLAN_MAX_RANKS];
    int n_ranks;
    int64_t steps;  /* > 0: totals over a run of this many steps; 0: per-step averages */
    bool csv;       /* CSV instead of a Markdown table */
    bool per_rank;  /* one row per rank instead of the maximum over ranks */
    /* K-FAC strategies to tabulate side by side (comm-opt, hybrid-opt,
     * mem-opt, dp-kfac); none: just the config's own. */
    const char *strategies[OB_PLAN_MAX_STRATEGIES];
    int n_strategies;
} ob_plan_options;

/* Prints the plan to stdout. Returns 0, 2 with one line in err on bad input
 * (an unknown strategy, a grad-worker fraction that does not fit a world
 * size), 1 on an internal error. */
int ob_plan_execute(const ob_config *cfg, const ob_plan_options *options, char *err, size_t err_len);

#endif
