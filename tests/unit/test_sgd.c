/* SGD through the optimizer interface and the backend table, against a
 * scalar reference loop written here in double precision: plain, momentum,
 * Nesterov, L2 and decoupled decay, with and without decay of norms and
 * biases, for f32 and f64 parameters. Then state (names, bytes, memory
 * accounting) and the errors a caller can make. */
#include "optimizers/optimizer_impl.h"
#include "optimizer_test_support.h"

static double lr_at(int step) { return 0.1 / (1 + step); }

/* torch.optim.SGD (dampening 0) on one scalar, SGDW when decoupled. */
static void reference_sgd(const ob_sgd_config *config, bool decayed, int param, int64_t i, double *value,
                          double *momentum_buf) {
    double wd = decayed ? config->weight_decay : 0, p = initial_value(param, i), buf = 0;
    for (int step = 0; step < STEPS; step++) {
        double lr = lr_at(step), g = grad_value(param, i, step);
        if (!config->decoupled) g += wd * p;
        double direction = g;
        if (config->momentum > 0) {
            buf = config->momentum * buf + g;
            direction = config->nesterov ? g + config->momentum * buf : buf;
        }
        if (config->decoupled) p -= lr * wd * p;
        p -= lr * direction;
    }
    *value = p;
    *momentum_buf = buf;
}

typedef struct {
    const char *name;
    ob_sgd_config config;
} sgd_case;

static const sgd_case cases[] = {
    {"plain", {.momentum = 0}},
    {"momentum", {.momentum = 0.9}},
    {"nesterov", {.momentum = 0.9, .nesterov = true}},
    {"L2 decay", {.momentum = 0.9, .weight_decay = 0.05}},
    {"L2 decay without momentum", {.weight_decay = 0.05}},
    {"decoupled decay", {.momentum = 0.9, .weight_decay = 0.05, .decoupled = true}},
    {"L2 decay of norms and biases", {.momentum = 0.9, .weight_decay = 0.05, .decay_norm_and_bias = true}},
    {"decoupled decay of norms and biases",
     {.momentum = 0.9, .nesterov = true, .weight_decay = 0.05, .decoupled = true,
      .decay_norm_and_bias = true}},
};

/* Worst relative error of values and of momentum buffers over all params. */
static void compare_with_reference(const ob_optimizer *opt, const ob_params *params,
                                   const ob_sgd_config *config, double *value_error, double *buf_error) {
    *value_error = *buf_error = 0;
    for (int p = 0; p < ob_params_count(params); p++) {
        const ob_param *param = ob_params_at(params, p);
        const ob_tensor *buf = config->momentum > 0 ? ob_optimizer_state_at(opt, p, NULL, 0) : NULL;
        bool decayed = reference_decays(param->kind, config->decay_norm_and_bias);
        for (int64_t i = 0; i < param->value->numel; i++) {
            double want_value, want_buf;
            reference_sgd(config, decayed, p, i, &want_value, &want_buf);
            *value_error = fmax(*value_error, relative_error(get(param->value, i), want_value));
            if (buf) *buf_error = fmax(*buf_error, relative_error(get(buf, i), want_buf));
        }
    }
}

static void run_case(ob_ctx *ctx, ob_dtype dtype, const sgd_case *c) {
    char what[160];
    ob_params *params = make_params(ctx, dtype);
    ob_optimizer *opt = params ? ob_sgd_new(ctx, params, &c->config) : NULL;
    snprintf(what, sizeof what, "%s %s: optimizer built", ob_dtype_name(dtype), c->name);
    check(opt != NULL, what);
    if (!opt) {
        printf("  %s\n", ob_ctx_error(ctx));
        ob_params_free(ctx, params);
        return;
    }
    bool stepped = true;
    for (int step = 0; step < STEPS; step++) {
        set_grads(params, step);
        stepped = stepped && ob_optimizer_step(opt, lr_at(step)) == 0;
    }
    snprintf(what, sizeof what, "%s %s: every step returns 0", ob_dtype_name(dtype), c->name);
    check(stepped, what);

    double tolerance = dtype == OB_F64 ? 1e-12 : 1e-6, value_error, buf_error;
    compare_with_reference(opt, params, &c->config, &value_error, &buf_error);
    snprintf(what, sizeof what, "%s %s: params match the reference (worst %.2g)", ob_dtype_name(dtype),
             c->name, value_error);
    check(value_error <= tolerance, what);
    snprintf(what, sizeof what, "%s %s: momentum buffers match the reference (worst %.2g)",
             ob_dtype_name(dtype), c->name, buf_error);
    check(buf_error <= tolerance, what);
    ob_optimizer_free(ctx, opt);
    ob_params_free(ctx, params);
}

/* Zero gradients and no momentum: a step is pure decay. */
static void test_decay_by_kind(ob_ctx *ctx, bool decoupled, bool decay_norm_and_bias) {
    ob_sgd_config config = {
        .weight_decay = 0.5, .decoupled = decoupled, .decay_norm_and_bias = decay_norm_and_bias};
    ob_params *params = make_params(ctx, OB_F64);
    char label[64];
    snprintf(label, sizeof label, "%s decay%s", decoupled ? "decoupled" : "L2",
             decay_norm_and_bias ? " of everything" : "");
    check_pure_decay(ctx, params, params ? ob_sgd_new(ctx, params, &config) : NULL, 0.1, 0.5, decay_norm_and_bias,
                     label);
}

static void test_decay_rule(void) {
    static const ob_param_kind decayed[] = {OB_KIND_WEIGHT, OB_KIND_CONV_WEIGHT, OB_KIND_EMBEDDING};
    static const ob_param_kind spared[] = {OB_KIND_BIAS, OB_KIND_NORM_SCALE, OB_KIND_NORM_BIAS};
    for (int i = 0; i < 3; i++) {
        check(ob_optimizer_decays(decayed[i], false), ob_param_kind_name(decayed[i]));
        check(!ob_optimizer_decays(spared[i], false), ob_param_kind_name(spared[i]));
        check(ob_optimizer_decays(spared[i], true), "decay_norm_and_bias decays every kind");
    }
}

static void check_state_tensors(const ob_optimizer *opt, const ob_params *params) {
    bool names_ok = true, shapes_ok = true;
    for (int p = 0; p < ob_params_count(params); p++) {
        char name[OB_NAME_MAX + 16], want[OB_NAME_MAX + 16];
        const ob_param *param = ob_params_at(params, p);
        const ob_tensor *state = ob_optimizer_state_at(opt, p, name, sizeof name);
        snprintf(want, sizeof want, "%s.momentum", param->name);
        names_ok = names_ok && strcmp(name, want) == 0;
        shapes_ok = shapes_ok && state && ob_tensor_same_shape(state, param->value) &&
                    state->dtype == param->value->dtype && state->category == OB_MEM_OPTIMIZER_STATE;
    }
    check(names_ok, "state names are <param>.momentum");
    check(shapes_ok, "momentum buffers are shaped like their params, charged to optimizer_state");
    char name[64];
    ob_optimizer_state_at(opt, 0, name, 8);
    check(strcmp(name, "fc.weig") == 0, "a short name buffer gets a truncated, terminated name");
    check(ob_optimizer_state_at(opt, -1, NULL, 0) == NULL, "state -1 is NULL");
    check(ob_optimizer_state_at(opt, ob_params_count(params), NULL, 0) == NULL, "state past the end is NULL");
}

static void test_state(ob_ctx *ctx, ob_dtype dtype) {
    ob_params *params = make_params(ctx, dtype);
    if (!params) {
        check(false, "state: parameters built");
        return;
    }
    int64_t before = ob_mem_current(ctx, OB_MEM_OPTIMIZER_STATE);
    ob_optimizer *plain = ob_sgd_new(ctx, params, &(ob_sgd_config){.weight_decay = 1e-4});
    check(plain && strcmp(ob_optimizer_name(plain), "sgd") == 0, "name is sgd");
    check(plain && ob_optimizer_state_count(plain) == 0 && ob_optimizer_state_bytes(plain) == 0,
          "momentum 0 keeps no state");
    check(ob_mem_current(ctx, OB_MEM_OPTIMIZER_STATE) == before, "momentum 0 charges nothing");
    ob_optimizer_free(ctx, plain);

    ob_optimizer *opt = ob_sgd_new(ctx, params, &(ob_sgd_config){.momentum = 0.9});
    if (!opt) {
        check(false, "state: optimizer with momentum built");
        ob_params_free(ctx, params);
        return;
    }
    int64_t expected_bytes = params_bytes(params); /* one buffer per param, same dtype */
    check(ob_optimizer_state_count(opt) == ob_params_count(params), "one momentum buffer per param");
    check(ob_optimizer_state_bytes(opt) == expected_bytes, "state bytes = param bytes");
    check(ob_mem_current(ctx, OB_MEM_OPTIMIZER_STATE) - before == expected_bytes,
          "state is charged to optimizer_state");
    check_state_tensors(opt, params);
    ob_optimizer_free(ctx, opt);
    check(ob_mem_current(ctx, OB_MEM_OPTIMIZER_STATE) == before, "free returns the state's bytes");
    ob_params_free(ctx, params);
}

/* The constructor must refuse `config` with one line that mentions `word`. */
static void check_refused(ob_ctx *ctx, ob_params *params, const ob_sgd_config *config, const char *word,
                          const char *what) {
    ob_optimizer *opt = ob_sgd_new(ctx, params, config);
    check(opt == NULL && strstr(ob_ctx_error(ctx), word) != NULL, what);
    if (opt) ob_optimizer_free(ctx, opt);
}

static void test_errors(ob_ctx *ctx) {
    ob_params *params = make_params(ctx, OB_F32);
    if (!params) {
        check(false, "errors: parameters built");
        return;
    }
    int64_t before = ob_mem_current(ctx, OB_MEM_OPTIMIZER_STATE);
    check_refused(ctx, params, &(ob_sgd_config){.nesterov = true}, "nesterov", "nesterov without momentum");
    check_refused(ctx, params, &(ob_sgd_config){.momentum = -0.5}, "momentum", "negative momentum");
    check_refused(ctx, params, &(ob_sgd_config){.weight_decay = NAN}, "weight_decay", "NaN weight decay");
    check_refused(ctx, params, NULL, "config", "no config");
    ob_tensor *bias = ob_params_at(params, 1)->value, *bias_grad = bias->grad;
    bias->grad = NULL;
    check_refused(ctx, params, &(ob_sgd_config){.momentum = 0.9}, "fc.bias has no gradient",
                  "a param without a gradient");
    bias->grad = bias_grad;
    bias->dtype = bias_grad->dtype = OB_I32;
    check_refused(ctx, params, &(ob_sgd_config){.momentum = 0.9}, "expected f32 or f64", "an integer param");
    bias->dtype = bias_grad->dtype = OB_F32;
    check(ob_mem_current(ctx, OB_MEM_OPTIMIZER_STATE) == before, "refusals leak no state");

    ob_optimizer *opt = ob_sgd_new(ctx, params, &(ob_sgd_config){.momentum = 0.9});
    if (!opt) {
        check(false, "errors: optimizer built");
        ob_params_free(ctx, params);
        return;
    }
    check(ob_optimizer_step(opt, NAN) != 0 && strstr(ob_ctx_error(ctx), "learning rate"), "NaN lr refused");
    check(ob_optimizer_step(opt, -0.1) != 0, "negative lr refused");
    check(ob_optimizer_step(opt, 0) == 0, "lr 0 is a valid step");
    ob_linear_layer_new(ctx, params, "late", 2, 2, false);
    check(ob_optimizer_step(opt, 0.1) != 0 && strstr(ob_ctx_error(ctx), "parameters"),
          "a param registered after construction is refused at step");
    ob_optimizer_free(ctx, opt);
    ob_optimizer_free(ctx, NULL);
    ob_params_free(ctx, params);
}

int main(void) {
    ob_ctx *ctx = optimizer_test_ctx();
    if (!ctx) return 1;
    for (int d = 0; d < 2; d++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            run_case(ctx, d ? OB_F64 : OB_F32, &cases[c]);
    for (int decoupled = 0; decoupled < 2; decoupled++)
        for (int everything = 0; everything < 2; everything++) test_decay_by_kind(ctx, decoupled, everything);
    test_decay_rule();
    test_state(ctx, OB_F32);
    test_state(ctx, OB_F64);
    test_errors(ctx);
    ob_ctx_free(ctx);
    return report_checks();
}
