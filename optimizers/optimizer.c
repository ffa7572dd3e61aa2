#include "optimizers/optimizer_impl.h"

#include <math.h>
#include <stdio.h>

#include "nn/ob_backend.h"

/* The checks every base optimizer needs before its first step, so that
 * step itself cannot meet a parameter it cannot update. */
static int check_param(ob_ctx *ctx, const char *optimizer, const ob_param *param) {
    const ob_tensor *value = param->value;
    if (value->dtype != OB_F32 && value->dtype != OB_F64) {
        ob_ctx_set_error(ctx, "%s: parameter %s is %s, expected f32 or f64", optimizer, param->name,
                         ob_dtype_name(value->dtype));
        return -1;
    }
    const ob_tensor *grad = value->grad;
    if (!grad || grad->dtype != value->dtype || grad->device != value->device ||
        !ob_tensor_same_shape(grad, value)) {
        ob_ctx_set_error(ctx, "%s: parameter %s has no gradient of its own shape, dtype and device",
                         optimizer, param->name);
        return -1;
    }
    if (!ob_backend_of(value)) {
        ob_ctx_set_error(ctx, "%s: parameter %s is on a device without a backend", optimizer, param->name);
        return -1;
    }
    return 0;
}

int ob_optimizer_init(ob_optimizer *opt, const ob_optimizer_vtable *vtable, ob_ctx *ctx, ob_params *params) {
    opt->vtable = vtable;
    opt->ctx = ctx;
    opt->params = params;
    opt->param_count = ob_params_count(params);
    for (int i = 0; i < opt->param_count; i++)
        if (check_param(ctx, vtable->name, ob_params_at(params, i))) return -1;
    return 0;
}

bool ob_optimizer_decays(ob_param_kind kind, bool decay_norm_and_bias) {
    return decay_norm_and_bias || kind == OB_KIND_WEIGHT || kind == OB_KIND_CONV_WEIGHT ||
           kind == OB_KIND_EMBEDDING;
}

ob_tensor *ob_optimizer_state_like(ob_ctx *ctx, const ob_tensor *param) {
    return ob_tensor_new(ctx, OB_MEM_OPTIMIZER_STATE, param->dtype, param->ndim, param->shape);
}

void ob_optimizer_state_name(char *name, size_t name_len, const ob_param *param, const char *suffix) {
    if (name && name_len > 0) snprintf(name, name_len, "%s.%s", param->name, suffix);
}

int ob_optimizer_step(ob_optimizer *opt, double lr) {
    if (!isfinite(lr) || lr < 0) {
        ob_ctx_set_error(opt->ctx, "%s: learning rate %g must be finite and >= 0", opt->vtable->name, lr);
        return -1;
    }
    /* Parameters registered after construction have no state here. */
    if (ob_params_count(opt->params) != opt->param_count) {
        ob_ctx_set_error(opt->ctx, "%s: built for %d parameters, the registry now holds %d",
                         opt->vtable->name, opt->param_count, ob_params_count(opt->params));
        return -1;
    }
    return opt->vtable->step(opt, lr);
}

const char *ob_optimizer_name(const ob_optimizer *opt) { return opt->vtable->name; }

int ob_optimizer_state_count(const ob_optimizer *opt) { return opt->vtable->state_count(opt); }

ob_tensor *ob_optimizer_state_at(const ob_optimizer *opt, int i, char *name, size_t name_len) {
    if (i < 0 || i >= ob_optimizer_state_count(opt)) return NULL;
    return opt->vtable->state_at(opt, i, name, name_len);
}

int64_t ob_optimizer_state_bytes(const ob_optimizer *opt) {
    int64_t bytes = 0;
    int count = ob_optimizer_state_count(opt);
    for (int i = 0; i < count; i++) bytes += (int64_t)ob_tensor_bytes(opt->vtable->state_at(opt, i, NULL, 0));
    return bytes;
}

void ob_optimizer_free(ob_ctx *ctx, ob_optimizer *opt) {
    if (opt) opt->vtable->free(ctx, opt);
}
