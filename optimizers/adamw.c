/* AdamW: Adam with decoupled weight decay (formulas in ob_optimizer.h); the
 * whole update is the backend's adam_update. */
#include "optimizers/adam_impl.h"

static int adamw_step(ob_optimizer *opt, double lr) {
    ob_adam_family *adam = (ob_adam_family *)opt;
    ob_adam_hyper h = ob_adam_family_next_step(adam, lr);
    for (int i = 0; i < opt->param_count; i++) ob_adam_family_update(adam, i, &h);
    return 0;
}

static const ob_optimizer_vtable adamw_vtable = {
    .name = "adamw",
    .step = adamw_step,
    .state_count = ob_adam_family_state_count,
    .state_at = ob_adam_family_state_at,
    .free = ob_adam_family_free,
};

/* PyTorch's AdamW always corrects the moments' bias. */
ob_optimizer *ob_adamw_new(ob_ctx *ctx, ob_params *params, const ob_adam_config *config) {
    ob_adam_family *adam = ob_adam_family_new(ctx, params, &adamw_vtable, config, true, sizeof *adam);
    return adam ? &adam->base : NULL;
}
