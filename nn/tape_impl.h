/* Internal to nn/: the tape's storage inside the context. */
#ifndef OB_TAPE_IMPL_H
#define OB_TAPE_IMPL_H

#include "nn/ob_tape.h"

typedef struct {
    ob_node *nodes;
    int length, capacity; /* capacity persists across steps: no steady-state realloc */
    /* Loss scale of the output gradient of the node whose backward runs
     * now: what ob_grad_of tags that node's contributions with (0 = 1). */
    double contribution_scale;
} ob_tape;

ob_tape *ob_ctx_tape(ob_ctx *ctx);

#endif
