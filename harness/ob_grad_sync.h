/* Data-parallel gradient averaging: every parameter's gradient becomes the
 * mean over ranks, by all-reduces of fixed-size buckets (as PyTorch DDP:
 * gradients are packed in reverse registration order, the order backward
 * produces them, so a later overlap with backward needs no reordering). */
#ifndef OB_GRAD_SYNC_H
#define OB_GRAD_SYNC_H

#include "harness/comm/ob_comm.h"
#include "nn/ob_layers.h"

typedef struct ob_grad_sync ob_grad_sync;

/* bucket_bytes: the bucket's size (charged to comm_buffers; on one rank no
 * bucket is allocated). NULL with ob_ctx_error set when out of memory or
 * the parameters are not all of one floating dtype. */
ob_grad_sync *ob_grad_sync_new(ob_ctx *ctx, ob_params *params, ob_comm *comm, int64_t bucket_bytes);
void ob_grad_sync_free(ob_ctx *ctx, ob_grad_sync *sync);
/* grad = (sum over ranks of grad) / world_size for every parameter.
 * Returns 0, or nonzero with ob_ctx_error set. */
int ob_grad_sync_average(ob_grad_sync *sync);
/* Bucket all-reduces per step (what `optbench plan` counts as calls). */
int64_t ob_grad_sync_buckets(const ob_params *params, int64_t bucket_bytes);

#endif
