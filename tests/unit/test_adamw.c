/* AdamW through the optimizer interface and the backend table, against a
 * reference written here in double precision (torch.optim.AdamW's update),
 * for f32 and f64 parameters; a worked one-step example; decay by kind;
 * then state and the errors a caller can make. */
#include "adam_test_support.h"

/* p = p (1 - lr wd);  p = p - lr m_hat / (sqrt(v_hat) + eps) for every element. */
static int reference_adamw_step(reference_state *ref, const ob_params *params, const void *config, int step) {
    const ob_adam_config *c = config;
    double lr = lr_at(step);
    for (int p = 0; p < ref->count; p++) {
        double wd = reference_decays(ob_params_at(params, p)->kind, c->decay_norm_and_bias) ? c->weight_decay : 0;
        for (int64_t i = 0; i < ref->numel[p]; i++) {
            double u = reference_adam_direction(c, true, step + 1, grad_value(p, i, step), &ref->m[p][i],
                                                &ref->v[p][i]);
            ref->p[p][i] *= 1 - lr * wd;
            ref->p[p][i] -= lr * u;
        }
    }
    return 0;
}

typedef struct {
    const char *name;
    ob_adam_config config;
} adamw_case;

static const adamw_case cases[] = {
    {"defaults", {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01}},
    {"no decay", {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8}},
    {"strong decay, large eps", {.beta1 = 0.8, .beta2 = 0.99, .eps = 1e-2, .weight_decay = 0.5}},
    {"beta1 0 (RMSprop-like)", {.beta1 = 0, .beta2 = 0.9, .eps = 1e-8, .weight_decay = 0.1}},
    {"decay of norms and biases",
     {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1, .decay_norm_and_bias = true}},
};

static ob_optimizer *build_adamw(ob_ctx *ctx, ob_params *params, const void *config) {
    return ob_adamw_new(ctx, params, config);
}

static const optimizer_under_test adamw = {build_adamw, reference_adamw_step};

/* One step on fc.weight[0] = 0.5 with g = 0.25, lr 0.1, wd 0.01, betas
 * 0.9/0.999, eps 1e-8: m = 0.025, v = 6.25e-5, m_hat = 0.25,
 * v_hat = 0.0625, so p = 0.5 (1 - 0.001) - 0.1 * 0.25 / (0.25 + 1e-8). */
static void test_worked_example(ob_ctx *ctx) {
    ob_params *params = make_params(ctx, OB_F64);
    ob_optimizer *opt = params ? ob_adamw_new(ctx, params,
                                              &(ob_adam_config){.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                                                                .weight_decay = 0.01})
                               : NULL;
    if (!opt) {
        check(false, "worked example: optimizer built");
        ob_params_free(ctx, params);
        return;
    }
    ob_tensor *w = ob_params_at(params, 0)->value;
    ob_params_zero_grad(params);
    set(w, 0, 0.5);
    set(w->grad, 0, 0.25);
    check(ob_optimizer_step(opt, 0.1) == 0, "worked example: step");
    double want = 0.5 * 0.999 - 0.1 * 0.25 / (0.25 + 1e-8);
    check(fabs(get(w, 0) - want) <= 1e-15, "worked example: p = 0.4745000010");
    check(relative_error(get(ob_optimizer_state_at(opt, 0, NULL, 0), 0) / 0.025, 1) <= 1e-14,
          "worked example: m = 0.025");
    check(relative_error(get(ob_optimizer_state_at(opt, 1, NULL, 0), 0) / 6.25e-5, 1) <= 1e-14,
          "worked example: v = 6.25e-5");
    ob_optimizer_free(ctx, opt);
    ob_params_free(ctx, params);
}

/* Zero gradients leave m = v = 0 and so u = 0: a step is pure decay. */
static void test_decay_by_kind(ob_ctx *ctx, bool decay_norm_and_bias) {
    ob_adam_config config = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.5,
                             .decay_norm_and_bias = decay_norm_and_bias};
    ob_params *params = make_params(ctx, OB_F64);
    check_pure_decay(ctx, params, params ? ob_adamw_new(ctx, params, &config) : NULL, 0.1, 0.5, decay_norm_and_bias,
                     decay_norm_and_bias ? "decay of everything" : "decay");
}

int main(void) {
    ob_ctx *ctx = optimizer_test_ctx();
    if (!ctx) return 1;
    for (int d = 0; d < 2; d++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            run_reference_case(ctx, d ? OB_F64 : OB_F32, cases[c].name, &adamw, &cases[c].config);
    test_worked_example(ctx);
    test_decay_by_kind(ctx, false);
    test_decay_by_kind(ctx, true);
    check_adam_state(ctx, OB_F32, ob_adamw_new, "adamw");
    check_adam_state(ctx, OB_F64, ob_adamw_new, "adamw");
    check_adam_errors(ctx, ob_adamw_new);
    ob_ctx_free(ctx);
    return report_checks();
}
