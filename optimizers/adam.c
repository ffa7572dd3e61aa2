/* The Adam family's shared part (adam_impl.h); the arithmetic is the
 * backend's adam_update. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "optimizers/adam_impl.h"

/* A hyper-parameter must be finite and in [low, high) (high excluded only
 * when open_high), else one line naming it. */
static int check_range(ob_ctx *ctx, const char *optimizer, const char *name, double value, double low,
                       double high, bool open_high) {
    bool ok = isfinite(value) && value >= low && (open_high ? value < high : value <= high);
    if (!ok)
        ob_ctx_set_error(ctx, "%s: %s (%g) must be in [%g, %g%s", optimizer, name, value, low, high,
                         open_high ? ")" : "]");
    return ok ? 0 : -1;
}

static int check_config(ob_ctx *ctx, const char *optimizer, const ob_adam_config *config) {
    if (check_range(ctx, optimizer, "beta1", config->beta1, 0, 1, true) ||
        check_range(ctx, optimizer, "beta2", config->beta2, 0, 1, true) ||
        check_range(ctx, optimizer, "weight_decay", config->weight_decay, 0, INFINITY, true))
        return -1;
    if (!(isfinite(config->eps) && config->eps > 0)) {
        ob_ctx_set_error(ctx, "%s: eps (%g) must be a number > 0", optimizer, config->eps);
        return -1;
    }
    return 0;
}

static int init_slot(ob_ctx *ctx, const ob_adam_config *config, const ob_param *param, ob_adam_slot *slot) {
    slot->decayed = ob_optimizer_decays(param->kind, config->decay_norm_and_bias);
    slot->weight_decay = slot->decayed ? config->weight_decay : 0;
    slot->m = ob_optimizer_state_like(ctx, param->value);
    slot->v = slot->m ? ob_optimizer_state_like(ctx, param->value) : NULL;
    return slot->v ? 0 : -1;
}

/* The moments and the step count, after the shared checks. */
static int init_state(ob_adam_family *adam, ob_ctx *ctx, ob_params *params, const ob_adam_config *config) {
    /* calloc of 0 slots may return NULL; one spare slot keeps NULL meaning failure. */
    adam->slots = calloc((size_t)adam->base.param_count + 1, sizeof *adam->slots);
    if (!adam->slots) {
        ob_ctx_set_error(ctx, "%s: out of memory", adam->base.vtable->name);
        return -1;
    }
    for (int i = 0; i < adam->base.param_count; i++)
        if (init_slot(ctx, config, ob_params_at(params, i), &adam->slots[i])) return -1;
    /* The step count is read on the host every step: it stays there on any device. */
    adam->step_count = ob_tensor_new_on(ctx, OB_CPU, OB_MEM_OPTIMIZER_STATE, OB_F64, OB_SHAPE(1));
    return adam->step_count ? 0 : -1;
}

ob_adam_family *ob_adam_family_new(ob_ctx *ctx, ob_params *params, const ob_optimizer_vtable *vtable,
                                   const ob_adam_config *config, bool bias_correction, size_t size) {
    if (!params || !config) {
        ob_ctx_set_error(ctx, "%s: needs a parameter registry and a config", vtable->name);
        return NULL;
    }
    if (check_config(ctx, vtable->name, config)) return NULL;
    ob_adam_family *adam = calloc(1, size);
    if (!adam) {
        ob_ctx_set_error(ctx, "%s: out of memory", vtable->name);
        return NULL;
    }
    adam->beta1 = config->beta1;
    adam->beta2 = config->beta2;
    adam->eps = config->eps;
    adam->bias_correction = bias_correction;
    if (ob_optimizer_init(&adam->base, vtable, ctx, params) || init_state(adam, ctx, params, config)) {
        ob_adam_family_free(ctx, &adam->base);
        return NULL;
    }
    return adam;
}

/* t = t + 1;  c1 = 1 - beta1^t, c2 = 1 - beta2^t (both 1 without bias correction) */
ob_adam_hyper ob_adam_family_next_step(ob_adam_family *adam, double lr) {
    double t = ++ob_f64(adam->step_count)[0];
    bool corrected = adam->bias_correction;
    return (ob_adam_hyper){.lr = lr, .beta1 = adam->beta1, .beta2 = adam->beta2, .eps = adam->eps,
                           .bias_correction1 = corrected ? 1.0 - pow(adam->beta1, t) : 1.0,
                           .bias_correction2 = corrected ? 1.0 - pow(adam->beta2, t) : 1.0};
}

void ob_adam_family_update(ob_adam_family *adam, int i, ob_adam_hyper *h) {
    ob_tensor *value = ob_params_at(adam->base.params, i)->value;
    const ob_adam_slot *slot = &adam->slots[i];
    h->weight_decay = slot->weight_decay;
    ob_backend_of(value)->adam_update(value, value->grad, slot->m, slot->v, h);
}

/* m and v of every parameter in registry order, then the step count. */
int ob_adam_family_state_count(const ob_optimizer *opt) { return 2 * opt->param_count + 1; }

ob_tensor *ob_adam_family_state_at(const ob_optimizer *opt, int i, char *name, size_t name_len) {
    const ob_adam_family *adam = (const ob_adam_family *)opt;
    if (i == 2 * opt->param_count) {
        if (name && name_len > 0) snprintf(name, name_len, "%s.step", opt->vtable->name);
        return adam->step_count;
    }
    const ob_adam_slot *slot = &adam->slots[i / 2];
    ob_optimizer_state_name(name, name_len, ob_params_at(opt->params, i / 2), i % 2 ? "exp_avg_sq" : "exp_avg");
    return i % 2 ? slot->v : slot->m;
}

void ob_adam_family_free(ob_ctx *ctx, ob_optimizer *opt) {
    ob_adam_family *adam = (ob_adam_family *)opt;
    if (adam->slots)
        for (int i = 0; i < opt->param_count; i++) {
            ob_tensor_free(ctx, adam->slots[i].m);
            ob_tensor_free(ctx, adam->slots[i].v);
        }
    ob_tensor_free(ctx, adam->step_count);
    free(adam->slots);
    free(adam);
}
