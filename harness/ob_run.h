/* ob_run: one training run, from a resolved config to a closed HDF5 file. */
#ifndef OB_RUN_H
#define OB_RUN_H

#include <stddef.h>

#include "harness/ob_config.h"

/* Runs the config (resuming from run.resume when set). Returns the process
 * exit code: 0 when the run ended (converged, budget_exhausted or diverged:
 * all are results), 2 on bad input, 1 on an internal error, 130 when a
 * signal aborted it. One line goes to err on failure. */
int ob_run_execute(const ob_config *config, char *err, size_t err_len);

/* Exit code for a run ended by SIGINT/SIGTERM (128 + SIGINT, as shells do). */
#define OB_EXIT_ABORTED 130

#endif
