/* SGD with momentum, Nesterov and L2 or decoupled (SGDW) weight decay; the
 * arithmetic is the backend's sgd_update. */
#include <math.h>
#include <stdlib.h>

#include "nn/ob_backend.h"
#include "optimizers/optimizer_impl.h"

/* What one parameter's update needs besides the shared hyper-parameters:
 * its decay, already split by kind and by L2/decoupled, and its buffer. */
typedef struct {
    double l2_decay, decoupled_decay;
    ob_tensor *momentum_buf; /* NULL when momentum is 0 */
} sgd_slot;

typedef struct {
    ob_optimizer base;
    double momentum;
    bool nesterov;
    sgd_slot *slots; /* one per parameter, in registry order */
} sgd_optimizer;

static int sgd_step(ob_optimizer *opt, double lr) {
    sgd_optimizer *sgd = (sgd_optimizer *)opt;
    for (int i = 0; i < opt->param_count; i++) {
        ob_tensor *value = ob_params_at(opt->params, i)->value;
        const sgd_slot *slot = &sgd->slots[i];
        ob_backend_of(value)->sgd_update(value, value->grad, slot->momentum_buf, lr, sgd->momentum,
                                         slot->l2_decay, slot->decoupled_decay, sgd->nesterov);
    }
    return 0;
}

/* Buffers exist for every parameter or for none, so state i is parameter i's. */
static int sgd_state_count(const ob_optimizer *opt) {
    return ((const sgd_optimizer *)opt)->momentum > 0 ? opt->param_count : 0;
}

static ob_tensor *sgd_state_at(const ob_optimizer *opt, int i, char *name, size_t name_len) {
    ob_optimizer_state_name(name, name_len, ob_params_at(opt->params, i), "momentum");
    return ((const sgd_optimizer *)opt)->slots[i].momentum_buf;
}

static void sgd_free(ob_ctx *ctx, ob_optimizer *opt) {
    sgd_optimizer *sgd = (sgd_optimizer *)opt;
    if (sgd->slots)
        for (int i = 0; i < opt->param_count; i++) ob_tensor_free(ctx, sgd->slots[i].momentum_buf);
    free(sgd->slots);
    free(sgd);
}

static const ob_optimizer_vtable sgd_vtable = {
    .name = "sgd",
    .step = sgd_step,
    .state_count = sgd_state_count,
    .state_at = sgd_state_at,
    .free = sgd_free,
};

static int check_config(ob_ctx *ctx, const ob_sgd_config *config) {
    if (!isfinite(config->momentum) || config->momentum < 0) {
        ob_ctx_set_error(ctx, "sgd: momentum (%g) must be a number >= 0", config->momentum);
        return -1;
    }
    if (!isfinite(config->weight_decay) || config->weight_decay < 0) {
        ob_ctx_set_error(ctx, "sgd: weight_decay (%g) must be a number >= 0", config->weight_decay);
        return -1;
    }
    if (config->nesterov && config->momentum == 0) {
        ob_ctx_set_error(ctx, "sgd: nesterov needs momentum > 0");
        return -1;
    }
    return 0;
}

/* Splits the decay by kind and by L2/decoupled, and allocates the buffer. */
static int init_slot(ob_ctx *ctx, const ob_sgd_config *config, const ob_param *param, sgd_slot *slot) {
    double decay = ob_optimizer_decays(param->kind, config->decay_norm_and_bias) ? config->weight_decay : 0;
    slot->l2_decay = config->decoupled ? 0 : decay;
    slot->decoupled_decay = config->decoupled ? decay : 0;
    if (config->momentum > 0) {
        slot->momentum_buf = ob_optimizer_state_like(ctx, param->value);
        if (!slot->momentum_buf) return -1;
    }
    return 0;
}

ob_optimizer *ob_sgd_new(ob_ctx *ctx, ob_params *params, const ob_sgd_config *config) {
    if (!params || !config) {
        ob_ctx_set_error(ctx, "sgd: needs a parameter registry and a config");
        return NULL;
    }
    if (check_config(ctx, config)) return NULL;
    sgd_optimizer *sgd = calloc(1, sizeof *sgd);
    if (!sgd) {
        ob_ctx_set_error(ctx, "sgd: out of memory");
        return NULL;
    }
    sgd->momentum = config->momentum;
    sgd->nesterov = config->nesterov;
    if (ob_optimizer_init(&sgd->base, &sgd_vtable, ctx, params)) goto fail;
    /* calloc of 0 slots may return NULL; one spare slot keeps NULL meaning failure. */
    sgd->slots = calloc((size_t)sgd->base.param_count + 1, sizeof *sgd->slots);
    if (!sgd->slots) {
        ob_ctx_set_error(ctx, "sgd: out of memory");
        goto fail;
    }
    for (int i = 0; i < sgd->base.param_count; i++)
        if (init_slot(ctx, config, ob_params_at(params, i), &sgd->slots[i])) goto fail;
    return &sgd->base;
fail:
    sgd_free(ctx, &sgd->base);
    return NULL;
}
