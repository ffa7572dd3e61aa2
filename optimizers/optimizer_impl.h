/* What a base optimizer implements behind ob_optimizer (internal: only the
 * optimizers' own sources include this). A concrete optimizer embeds struct
 * ob_optimizer first and fills in a vtable; optimizer.c does the argument
 * checks and the generic parts (names, state bytes) once for all of them. */
#ifndef OB_OPTIMIZER_IMPL_H
#define OB_OPTIMIZER_IMPL_H

#include "optimizers/ob_optimizer.h"

typedef struct {
    const char *name;
    /* lr is already checked (finite, >= 0). */
    int (*step)(ob_optimizer *opt, double lr);
    int (*state_count)(const ob_optimizer *opt);
    /* i is in range; write the name with ob_optimizer_state_name. */
    ob_tensor *(*state_at)(const ob_optimizer *opt, int i, char *name, size_t name_len);
    void (*free)(ob_ctx *ctx, ob_optimizer *opt);
} ob_optimizer_vtable;

struct ob_optimizer {
    const ob_optimizer_vtable *vtable;
    ob_ctx *ctx; /* where step reports errors */
    ob_params *params;
    int param_count; /* registry size at construction; step refuses a grown one */
};

/* Fills the shared part and checks that every parameter can be updated: it
 * has a gradient of its own shape and dtype, a floating dtype and a backend.
 * Returns 0, or -1 with ob_ctx_error set. */
int ob_optimizer_init(ob_optimizer *opt, const ob_optimizer_vtable *vtable, ob_ctx *ctx, ob_params *params);

/* Whether weight decay applies to a parameter of this kind. */
bool ob_optimizer_decays(ob_param_kind kind, bool decay_norm_and_bias);

/* A zeroed state tensor shaped like param, charged to OB_MEM_OPTIMIZER_STATE;
 * NULL with ob_ctx_error set when out of memory. */
ob_tensor *ob_optimizer_state_like(ob_ctx *ctx, const ob_tensor *param);

/* "<param name>.<suffix>" into name; name may be NULL. */
void ob_optimizer_state_name(char *name, size_t name_len, const ob_param *param, const char *suffix);

#endif
