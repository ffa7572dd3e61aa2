/* What AdamW and LAMB share (internal: adam.c, adamw.c, lamb.c): the two
 * moments per parameter, the step count, the per-kind decay, their state
 * listing and their cleanup. Each optimizer adds its step and vtable. */
#ifndef OB_ADAM_IMPL_H
#define OB_ADAM_IMPL_H

#include "nn/ob_backend.h"
#include "optimizers/optimizer_impl.h"

typedef struct {
    double weight_decay; /* the config's, or 0 for a kind that is not decayed */
    bool decayed;        /* LAMB adapts exactly the decayed kinds */
    ob_tensor *m, *v;
} ob_adam_slot;

typedef struct {
    ob_optimizer base;
    double beta1, beta2, eps;
    bool bias_correction;
    ob_adam_slot *slots;   /* one per parameter, in registry order */
    ob_tensor *step_count; /* f64 [1]: updates done (t of the last one) */
} ob_adam_family;

/* Allocates `size` bytes (an ob_adam_family, or a struct that embeds one
 * first), checks config and builds the state. NULL with ob_ctx_error set. */
ob_adam_family *ob_adam_family_new(ob_ctx *ctx, ob_params *params, const ob_optimizer_vtable *vtable,
                                   const ob_adam_config *config, bool bias_correction, size_t size);

/* Advances t and returns the update's scalars (weight_decay still 0). */
ob_adam_hyper ob_adam_family_next_step(ob_adam_family *adam, double lr);

/* Parameter i's adam_update with h, its decay filled in. */
void ob_adam_family_update(ob_adam_family *adam, int i, ob_adam_hyper *h);

/* vtable entries */
int ob_adam_family_state_count(const ob_optimizer *opt);
ob_tensor *ob_adam_family_state_at(const ob_optimizer *opt, int i, char *name, size_t name_len);
void ob_adam_family_free(ob_ctx *ctx, ob_optimizer *opt);

#endif
