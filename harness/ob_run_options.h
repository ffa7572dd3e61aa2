/* Config sections as the structs the workloads and optimizers take, shared
 * by `optbench run` and `optbench plan` so both build the same thing. */
#ifndef OB_RUN_OPTIONS_H
#define OB_RUN_OPTIONS_H

#include "harness/ob_config.h"
#include "optimizers/ob_optimizer.h"
#include "workloads/ob_workload.h"

/* The run, data and model sections for rank of world_size. Strings point
 * into cfg, which must outlive the result. */
ob_workload_options ob_run_workload_options(const ob_config *cfg, int rank, int world_size);
ob_sgd_config ob_run_sgd_config(const ob_config *cfg);
/* The adamw section, or lamb's shared part (section "lamb"). */
ob_adam_config ob_run_adam_config(const ob_config *cfg, const char *section);
ob_lamb_config ob_run_lamb_config(const ob_config *cfg);

/* The base optimizer run.optimizer names, configured by its section; NULL
 * with one line in ob_ctx_error when it refuses. */
ob_optimizer *ob_run_optimizer_new(ob_ctx *ctx, ob_params *params, const ob_config *cfg);
/* The schedule's peak learning rate: the selected optimizer's <section>.lr. */
double ob_run_base_lr(const ob_config *cfg);

#endif
