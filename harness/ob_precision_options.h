/* The precision, loss_scale and fqt config sections (with run.precision and
 * run.loss_scale) as an ob_precision_config. */
#ifndef OB_PRECISION_OPTIONS_H
#define OB_PRECISION_OPTIONS_H

#include <stddef.h>

#include "harness/ob_config.h"
#include "optimizers/precision/ob_precision.h"

/* Strings point into cfg, which must outlive the result. Returns 0, or 2
 * with one line in err (a malformed run.loss_scale). *wanted is false when
 * the run needs no policy at all (fp32 without loss scaling). */
int ob_precision_options_from_config(const ob_config *cfg, uint64_t seed, int rank, ob_precision_config *out,
                                     bool *wanted, char *err, size_t err_len);

#endif
