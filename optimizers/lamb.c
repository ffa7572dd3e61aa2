/* LAMB (formulas and the per-tensor reading of "layer" in ob_optimizer.h):
 * the backend's adam_update leaves the direction r in the gradient, then
 * the trust ratio scales it from two norms. */
#include <math.h>

#include "optimizers/adam_impl.h"

typedef struct {
    ob_adam_family adam; /* first: the optimizer is freed as an ob_adam_family */
    double max_trust_ratio;
} lamb_optimizer;

/* ratio = min(||x|| / ||r||, max) (no clamp when max is 0); 1 when either norm is 0. */
static double trust_ratio(double param_norm, double direction_norm, double max) {
    if (param_norm == 0 || direction_norm == 0) return 1;
    double ratio = param_norm / direction_norm;
    return max > 0 && ratio > max ? max : ratio;
}

/* x = x - lr ratio r for every parameter; kinds that are not decayed keep ratio 1. */
static int lamb_step(ob_optimizer *opt, double lr) {
    lamb_optimizer *lamb = (lamb_optimizer *)opt;
    ob_adam_hyper h = ob_adam_family_next_step(&lamb->adam, lr);
    h.direction_into_grad = true;
    for (int i = 0; i < opt->param_count; i++) {
        ob_tensor *value = ob_params_at(opt->params, i)->value;
        const ob_backend *backend = ob_backend_of(value);
        ob_adam_family_update(&lamb->adam, i, &h);
        double ratio = !lamb->adam.slots[i].decayed
                           ? 1
                           : trust_ratio(sqrt(backend->sumsq(value)), sqrt(backend->sumsq(value->grad)),
                                         lamb->max_trust_ratio);
        backend->axpy(-lr * ratio, value->grad, value);
    }
    return 0;
}

static const ob_optimizer_vtable lamb_vtable = {
    .name = "lamb",
    .step = lamb_step,
    .state_count = ob_adam_family_state_count,
    .state_at = ob_adam_family_state_at,
    .free = ob_adam_family_free,
};

ob_optimizer *ob_lamb_new(ob_ctx *ctx, ob_params *params, const ob_lamb_config *config) {
    if (config && !(isfinite(config->max_trust_ratio) && config->max_trust_ratio >= 0)) {
        ob_ctx_set_error(ctx, "lamb: max_trust_ratio (%g) must be a number >= 0 (0 = no clamp)",
                         config->max_trust_ratio);
        return NULL;
    }
    const ob_adam_config *adam = config ? &config->adam : NULL;
    lamb_optimizer *lamb = (lamb_optimizer *)ob_adam_family_new(ctx, params, &lamb_vtable, adam,
                                                                config && config->bias_correction, sizeof *lamb);
    if (!lamb) return NULL;
    lamb->max_trust_ratio = config->max_trust_ratio;
    return &lamb->adam.base;
}
