/* The kfac config section as an ob_kfac_config, shared by `optbench run`
 * and `optbench plan` so both read the same keys the same way. */
#ifndef OB_KFAC_OPTIONS_H
#define OB_KFAC_OPTIONS_H

#include <stddef.h>

#include "harness/ob_config.h"
#include "optimizers/kfac/ob_kfac.h"

/* variant from run.precond ("kfac" or "dp-kfac"). The returned config
 * points into cfg (skip_layers): cfg must outlive it. Returns 0, or 2 with
 * one line in err (a piecewise key whose value and epoch counts disagree,
 * epochs not increasing, update intervals that are not whole numbers). */
int ob_kfac_options_from_config(const ob_config *cfg, ob_kfac_config *out, char *err, size_t err_len);

#endif
