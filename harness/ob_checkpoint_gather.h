/* Multi-rank checkpoints: the tensors each rank holds alone (named
 * "rank<r>/...", see ob_checkpoint_rank_name) travel to rank 0, which
 * writes one file with everything, so a checkpoint stays one atomic file
 * whatever the world size.
 *
 * ob_comm has no point-to-point calls, so each rank in turn broadcasts its
 * tensors (category control); every rank receives them and only rank 0
 * keeps them. That moves (world - 1) times more bytes than a gather would,
 * once per checkpoint, which is small next to the steps between two. */
#ifndef OB_CHECKPOINT_GATHER_H
#define OB_CHECKPOINT_GATHER_H

#include <stddef.h>

#include "harness/comm/ob_comm.h"
#include "harness/ob_checkpoint.h"

typedef struct {
    ob_checkpoint_tensor *items; /* copies in host memory, owned */
    int count;
} ob_checkpoint_gathered;

/* Collective over comm. `local`: this rank's own tensors (rank 0's are
 * passed too and ignored: it saves its own directly). On rank 0, `out`
 * receives every other rank's, in rank order; elsewhere it stays empty.
 * Returns 0, or 1 with one line in err. */
int ob_checkpoint_gather(ob_comm *comm, const ob_checkpoint_tensor *local, int n_local, ob_checkpoint_gathered *out,
                         char *err, size_t err_len);
void ob_checkpoint_gathered_free(ob_checkpoint_gathered *gathered);

#endif
