/* ob_cuda: settings of the CUDA back end that a run may change.
 *
 * TF32: off by default, so that F32 GEMMs and convolutions round like the
 * CPU and tests/cuda/test_backend_cuda.c can hold them to tight bounds. A
 * training run on CUDA would turn it on after creating its ctx (the
 * harness, when `run.device` is cuda and the run's precision allows it):
 * Ampere and Hopper then run F32 GEMMs and convolutions on tensor cores
 * with 10-bit mantissa products. */
#ifndef OB_CUDA_H
#define OB_CUDA_H

#include <stdbool.h>

#include "nn/ob_ctx.h"

/* Returns 0, or nonzero with the reason in ctx (no CUDA device, or a
 * library refused the mode). */
int ob_cuda_set_tf32(ob_ctx *ctx, bool enabled);

#endif
