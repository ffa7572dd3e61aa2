/* The precision policy through real ops (optimizers/precision/ob_precision.h):
 * forward operands rounded to each format (or FQT-quantized) with fp32
 * accumulation; gradients that underflow binary16 without loss scaling and
 * survive with it; adaptive loss scaling with a residual join settling on
 * the smaller branch scale; dynamic scaling backing off over overflowing
 * steps; K-FAC's G with the loss scale divided out; fp16 master weights;
 * the checkpoint state round trip. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/ob_backend.h"
#include "nn/ob_layers.h"
#include "nn/ob_ops.h"
#include "nn/ob_rng.h"
#include "nn/ob_tape.h"
#include "optimizers/kfac/kfac_layer.h"
#include "optimizers/precision/ob_precision.h"

#include "ob_check.h"

enum { BATCH = 4, WIDTH = 8, CLASSES = 4 };

static void fill_uniform(ob_tensor *t, uint64_t salt, double lo, double hi) {
    ob_rng_stream stream = ob_rng_stream_make(5, OB_RNG_TEST, 0, salt);
    for (int64_t i = 0; i < t->numel; i++) ob_f32(t)[i] = (float)(lo + (hi - lo) * ob_rng_uniform(&stream, i));
}

static ob_tensor *input(ob_ctx *ctx, int64_t rows, int64_t cols, uint64_t salt) {
    ob_tensor *x = ob_tensor_temp(ctx, OB_MEM_DATA, OB_F32, OB_SHAPE(rows, cols));
    fill_uniform(x, salt, -3, 3);
    return x;
}

static ob_tensor *labels(ob_ctx *ctx) {
    ob_tensor *t = ob_tensor_temp(ctx, OB_MEM_DATA, OB_I32, OB_SHAPE(BATCH));
    for (int b = 0; b < BATCH; b++) ((int32_t *)t->data)[b] = (b * 3 + 1) % CLASSES;
    return t;
}

static ob_precision_config policy_config(ob_precision_kind kind, const char *exempt, ob_loss_scale_kind scaling) {
    return (ob_precision_config){
        .kind = kind, .exempt = exempt, .fqt_forward_bits = 8, .fqt_grad_bits = 8, .fqt_weight_grad_bits = 8,
        .fqt_quantizer = OB_FQT_BHQ, .seed = 11,
        .loss_scale = {.kind = scaling, .scale = 65536, .growth_factor = 2, .backoff_factor = 0.5,
                       .growth_interval = 2000, .underflow_rate = 1e-3, .max_layer = 16, .max_total = 1024,
                       .update_every = 1}};
}

static ob_precision *new_policy(ob_ctx *ctx, ob_params *params, ob_precision_config config) {
    char err[256] = "";
    ob_precision *p = ob_precision_new(ctx, &config, params, err, sizeof err);
    if (!p) printf("policy: %s\n", err);
    return p;
}

/* y = round(x) round(w)^T + b with double accumulation: the emulation's contract. */
static double worst_forward_error(const ob_tensor *x, const ob_linear_layer *fc, const ob_tensor *y,
                                  ob_format format, bool fqt) {
    const ob_tensor *w = fc->weight;
    float xq[BATCH * WIDTH], wq[CLASSES * WIDTH];
    for (int i = 0; i < x->numel; i++) xq[i] = ob_format_round(ob_f32(x)[i], format, OB_ROUND_NEAREST_EVEN, 0);
    for (int i = 0; i < w->numel; i++) wq[i] = ob_format_round(ob_f32(w)[i], format, OB_ROUND_NEAREST_EVEN, 0);
    if (fqt) {
        ob_fqt_quantize_forward(ob_f32(x), xq, x->numel, 8);
        ob_fqt_quantize_forward(ob_f32(w), wq, w->numel, 8);
    }
    double worst = 0;
    for (int b = 0; b < BATCH; b++)
        for (int o = 0; o < CLASSES; o++) {
            double sum = ob_f32(fc->bias)[o];
            for (int k = 0; k < WIDTH; k++) sum += (double)xq[b * WIDTH + k] * wq[o * WIDTH + k];
            worst = fmax(worst, fabs(ob_f32(y)[b * CLASSES + o] - sum) / fmax(1, fabs(sum)));
        }
    return worst;
}

static void test_forward_rounding(void) {
    static const struct {
        ob_precision_kind kind;
        ob_format format;
    } cases[] = {{OB_PRECISION_FP16, OB_FORMAT_FP16}, {OB_PRECISION_BF16, OB_FORMAT_BF16},
                 {OB_PRECISION_FP8_E5M2, OB_FORMAT_E5M2}, {OB_PRECISION_HFP8, OB_FORMAT_E4M3},
                 {OB_PRECISION_FQT, OB_FORMAT_FP32}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ob_ctx *ctx = ob_ctx_new(&(ob_ctx_config){.threads = 2, .seed = 3});
        ob_params *params = ob_params_new(OB_F32);
        ob_linear_layer *fc = ob_linear_layer_new(ctx, params, "fc", WIDTH, CLASSES, true);
        ob_tensor *x = input(ctx, BATCH, WIDTH, i);
        ob_tensor *y_full = ob_linear_layer_forward(ctx, fc, x);
        ob_precision *p = new_policy(ctx, params, policy_config(cases[i].kind, "none", OB_LOSS_SCALE_NONE));
        ob_tensor *y = p ? ob_linear_layer_forward(ctx, fc, x) : NULL;
        bool fqt = cases[i].kind == OB_PRECISION_FQT;
        char what[128];
        snprintf(what, sizeof what, "%s forward = GEMM of rounded operands", ob_precision_name(cases[i].kind));
        check(y && worst_forward_error(x, fc, y, cases[i].format, fqt) < 1e-6, what);
        double changed = 0;
        for (int64_t k = 0; y && k < y->numel; k++) changed = fmax(changed, fabs(ob_f32(y)[k] - ob_f32(y_full)[k]));
        snprintf(what, sizeof what, "%s forward differs from fp32 (by %g)", ob_precision_name(cases[i].kind), changed);
        check(changed > 1e-4, what);
        ob_precision_free(ctx, p, params);
        CHECK(fc->base.precision == NULL);
        ob_params_free(ctx, params);
        ob_ctx_free(ctx);
    }
}

/* fc1 (WIDTH -> WIDTH) then fc2 (WIDTH -> CLASSES) whose weights are shrunk
 * by `shrink`, so fc1's output gradient is shrunk alike. */
typedef struct {
    ob_ctx *ctx;
    ob_params *params;
    ob_linear_layer *fc0, *fc1, *fc2;
    ob_tensor *a; /* fc0's output: the residual join's tensor */
} chain;

static chain chain_new(double shrink) {
    chain c = {.ctx = ob_ctx_new(&(ob_ctx_config){.threads = 2, .seed = 9}), .params = ob_params_new(OB_F32)};
    c.fc0 = ob_linear_layer_new(c.ctx, c.params, "fc0", WIDTH, WIDTH, true);
    c.fc1 = ob_linear_layer_new(c.ctx, c.params, "fc1", WIDTH, WIDTH, true);
    c.fc2 = ob_linear_layer_new(c.ctx, c.params, "fc2", WIDTH, CLASSES, true);
    ob_backend_of(c.fc2->weight)->scale(shrink, c.fc2->weight);
    return c;
}

/* loss(fc2(fc1(a) + a)), a = fc0(x): a residual join at a. */
static int chain_step(chain *c, double loss_scale) {
    ob_ctx_step_reset(c->ctx);
    ob_params_zero_grad(c->params);
    ob_tensor *x = input(c->ctx, BATCH, WIDTH, 100);
    c->a = ob_linear_layer_forward(c->ctx, c->fc0, x);
    ob_tensor *h = c->a ? ob_linear_layer_forward(c->ctx, c->fc1, c->a) : NULL;
    ob_tensor *y = h ? ob_add(c->ctx, h, c->a) : NULL;
    ob_tensor *logits = y ? ob_linear_layer_forward(c->ctx, c->fc2, y) : NULL;
    ob_tensor *loss = logits ? ob_softmax_cross_entropy(c->ctx, logits, labels(c->ctx), 0) : NULL;
    return loss ? ob_backward_scaled(c->ctx, loss, loss_scale) : 1;
}

static void chain_free(chain *c) {
    ob_params_free(c->ctx, c->params);
    ob_ctx_free(c->ctx);
}

static double worst_grad_error(const ob_tensor *grad, const ob_tensor *reference) {
    double worst = 0, largest = 0;
    for (int64_t i = 0; i < grad->numel; i++) {
        worst = fmax(worst, fabs(ob_f32(grad)[i] - ob_f32(reference)[i]));
        largest = fmax(largest, fabs(ob_f32(reference)[i]));
    }
    return worst / largest;
}

static bool all_zero(const ob_tensor *t) {
    for (int64_t i = 0; i < t->numel; i++)
        if (ob_f32(t)[i] != 0) return false;
    return true;
}

/* fc2's weights x1e-7 make fc0/fc1's output gradients ~1e-8, below binary16's
 * smallest subnormal (6e-8): without scaling fc0's weight gradient is all
 * zero; static:65536 brings it back to fp32's within rounding error. */
static void test_underflow_and_static_scaling(void) {
    chain reference = chain_new(1e-7);
    CHECK(chain_step(&reference, 1.0) == 0);
    chain plain = chain_new(1e-7), scaled = chain_new(1e-7);
    ob_precision *p_plain = new_policy(plain.ctx, plain.params, policy_config(OB_PRECISION_FP16, "fc2", OB_LOSS_SCALE_NONE));
    ob_precision_config config = policy_config(OB_PRECISION_FP16, "fc2", OB_LOSS_SCALE_STATIC);
    ob_precision *p_scaled = new_policy(scaled.ctx, scaled.params, config);
    CHECK(p_plain && p_scaled && ob_precision_loss_scale(p_scaled) == 65536);
    CHECK(chain_step(&plain, ob_precision_loss_scale(p_plain)) == 0);
    CHECK(chain_step(&scaled, ob_precision_loss_scale(p_scaled)) == 0);
    ob_precision_unscale(plain.params);
    ob_precision_unscale(scaled.params);
    CHECK(all_zero(plain.fc0->weight->grad) && !all_zero(reference.fc0->weight->grad));
    ob_precision_layer_stat stat = ob_precision_layer_stat_at(p_plain, 0);
    CHECK(strcmp(stat.layer, "fc0") == 0 && stat.values == BATCH * WIDTH && stat.nonzero == stat.values &&
          stat.underflow == stat.nonzero && stat.overflow == 0);
    double error = worst_grad_error(scaled.fc0->weight->grad, reference.fc0->weight->grad);
    printf("fc0 weight gradient, fp16 static:65536 vs fp32: worst error %.2e of the largest\n", error);
    CHECK(error < 1e-2);
    CHECK(ob_precision_layer_stat_at(p_scaled, 0).underflow == 0);
    CHECK(ob_precision_layer_stat_at(p_scaled, 0).loss_scale == 65536);
    CHECK(ob_grad_loss_scale(scaled.fc0->weight->grad) == 1.0); /* unscaled */
    ob_precision_free(plain.ctx, p_plain, plain.params);
    ob_precision_free(scaled.ctx, p_scaled, scaled.params);
    chain_free(&reference);
    chain_free(&plain);
    chain_free(&scaled);
}

/* Adaptive: fc2 (shrunk 1e-4, exempt so its tiny weights stay exact) adds a
 * gain g2 > 1; the add passes g2 to fc1 and to a; fc1 adds g1 > 1, so a
 * receives g2 (through the add) and g2·g1 (through fc1): it must settle on
 * g2, which fc0 then sees. Unscaled gradients match fp32 within fp16 error. */
static void test_adaptive_residual_join(void) {
    chain reference = chain_new(1e-4), adaptive = chain_new(1e-4);
    CHECK(chain_step(&reference, 1.0) == 0);
    ob_precision *p = new_policy(adaptive.ctx, adaptive.params,
                                 policy_config(OB_PRECISION_FP16, "fc2", OB_LOSS_SCALE_ADAPTIVE));
    CHECK(p && ob_precision_loss_scale(p) == 1.0);
    CHECK(chain_step(&adaptive, ob_precision_loss_scale(p)) == 0);
    ob_precision_layer_stat s0 = ob_precision_layer_stat_at(p, 0), s1 = ob_precision_layer_stat_at(p, 1),
                            s2 = ob_precision_layer_stat_at(p, 2);
    printf("adaptive: fc2 gain %g, fc1 gain %g (sees %g), fc0 sees %g, a's gradient at %g\n", s2.gain, s1.gain,
           s1.loss_scale, s0.loss_scale, adaptive.a->grad->loss_scale);
    CHECK(s2.loss_scale == 1 && s2.gain > 1 && s1.gain > 1);
    CHECK(s1.loss_scale == s2.gain);
    CHECK(s0.loss_scale == s2.gain); /* the smaller branch scale, not s2.gain * s1.gain */
    CHECK(adaptive.a->grad->loss_scale == s2.gain);
    CHECK(s2.gain * s1.gain <= 1024 && s1.gain <= 16 && s2.gain <= 16);
    ob_precision_unscale(adaptive.params);
    for (int i = 0; i < ob_params_count(adaptive.params); i++) {
        const ob_tensor *grad = ob_params_at(adaptive.params, i)->value->grad;
        const ob_tensor *expected = ob_params_at(reference.params, i)->value->grad;
        double error = worst_grad_error(grad, expected);
        char what[256];
        snprintf(what, sizeof what, "adaptive %s gradient within 1e-2 of fp32 (error %.2e)",
                 ob_params_at(adaptive.params, i)->name, error);
        check(error < 1e-2 && ob_grad_loss_scale(grad) == 1.0, what);
    }
    ob_precision_free(adaptive.ctx, p, adaptive.params);
    chain_free(&reference);
    chain_free(&adaptive);
}

static bool grads_finite(const ob_params *params) {
    for (int i = 0; i < ob_params_count(params); i++) {
        const ob_tensor *grad = ob_params_at(params, i)->value->grad;
        if (!isfinite(ob_backend_of(grad)->sumsq(grad))) return false;
    }
    return true;
}

/* Dynamic from 2^40: fc2's output gradient (~0.1) times the scale overflows
 * binary16 until enough halvings; every such step is refused. */
static void test_dynamic_backoff(void) {
    chain c = chain_new(1.0);
    ob_precision_config config = policy_config(OB_PRECISION_FP16, "none", OB_LOSS_SCALE_DYNAMIC);
    config.loss_scale.scale = 0x1p40;
    ob_precision *p = new_policy(c.ctx, c.params, config);
    int step = 0;
    bool applied = false;
    while (p && !applied && step < 64) {
        ob_precision_begin_step(p, step++);
        double scale = ob_precision_loss_scale(p);
        CHECK(chain_step(&c, scale) == 0);
        ob_precision_unscale(c.params);
        bool finite = grads_finite(c.params);
        applied = ob_precision_accept(p, finite);
        CHECK(applied == finite);
        if (!applied) CHECK(ob_precision_loss_scale(p) == scale / 2);
        if (!applied) CHECK(ob_precision_layer_stat_at(p, 2).overflow > 0);
    }
    printf("dynamic: %lld skipped steps, scale now 2^%g\n", (long long)ob_precision_skipped_steps(p),
           log2(ob_precision_loss_scale(p)));
    CHECK(applied && ob_precision_skipped_steps(p) == step - 1 && step > 10);
    CHECK(ob_precision_loss_scale(p) == ldexp(1.0, 40 - (step - 1)));
    ob_precision_free(c.ctx, p, c.params);
    chain_free(&c);
}

/* static:1024 in fp32: the captured gradient carries 1024, G does not. */
static void test_kfac_divides_the_scale(void) {
    ob_tensor *g_batch[2];
    chain c[2] = {chain_new(1.0), chain_new(1.0)};
    ob_precision *p = new_policy(c[1].ctx, c[1].params, policy_config(OB_PRECISION_FP32, "none", OB_LOSS_SCALE_STATIC));
    for (int k = 0; k < 2; k++) {
        c[k].fc1->base.capture = true;
        CHECK(chain_step(&c[k], k ? 1024.0 : 1.0) == 0);
        ob_kfac_layer l;
        CHECK(ob_kfac_layer_describe(&c[k].fc1->base, &l) == 0);
        ob_tensor *a_batch = ob_tensor_temp(c[k].ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(l.a_dim, l.a_dim));
        g_batch[k] = ob_tensor_temp(c[k].ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(l.g_dim, l.g_dim));
        CHECK(ob_kfac_batch_factors(c[k].ctx, &l, a_batch, g_batch[k]) == 0);
    }
    CHECK(c[1].fc1->base.captured_grad_scale == 1024 && c[0].fc1->base.captured_grad_scale == 1);
    CHECK(worst_grad_error(g_batch[1], g_batch[0]) < 1e-6);
    ob_precision_free(c[1].ctx, p, c[1].params);
    chain_free(&c[0]);
    chain_free(&c[1]);
}

static void test_master_weights_and_state(void) {
    chain c = chain_new(1.0);
    ob_precision *p = new_policy(c.ctx, c.params, policy_config(OB_PRECISION_FP8_E5M2, "auto", OB_LOSS_SCALE_DYNAMIC));
    ob_backend_of(c.fc1->weight)->scale(1.0 + 0x1p-20, c.fc1->weight); /* off the binary16 grid */
    ob_precision_begin_step(p, 3);
    ob_precision_after_update(p, c.params);
    bool on_grid = true;
    for (int i = 0; i < ob_params_count(c.params); i++) {
        const ob_tensor *v = ob_params_at(c.params, i)->value;
        for (int64_t k = 0; k < v->numel; k++)
            on_grid &= ob_format_round(ob_f32(v)[k], OB_FORMAT_FP16, OB_ROUND_NEAREST_EVEN, 0) == ob_f32(v)[k];
    }
    CHECK(on_grid);
    /* auto exempts the first and last GEMM layers of the FP8 recipes */
    CHECK(chain_step(&c, 1.0) == 0);
    CHECK(ob_precision_layer_stat_at(p, 0).nonzero == 0 && ob_precision_layer_stat_at(p, 1).nonzero > 0 &&
          ob_precision_layer_stat_at(p, 2).nonzero == 0);
    ob_precision_accept(p, false);
    ob_tensor *state = ob_precision_state(p);
    CHECK(ob_f64(state)[0] == 32768 && ob_f64(state)[2] == 1);
    ob_precision_accept(p, true);
    CHECK(ob_precision_loss_scale(p) == 32768 && ob_precision_skipped_steps(p) == 1);
    ob_precision_state_restored(p); /* back to the saved state: clean steps 0 */
    CHECK(ob_precision_loss_scale(p) == 32768 && ob_f64(ob_precision_state(p))[1] == 0);
    ob_precision_free(c.ctx, p, c.params);
    chain_free(&c);
}

static void test_bad_exemption(void) {
    chain c = chain_new(1.0);
    ob_precision_config config = policy_config(OB_PRECISION_FP16, "conv9,head", OB_LOSS_SCALE_NONE);
    char err[256] = "";
    CHECK(ob_precision_new(c.ctx, &config, c.params, err, sizeof err) == NULL);
    CHECK(strstr(err, "precision.exempt") != NULL && strstr(err, "conv9,head") != NULL);
    CHECK(c.fc0->base.precision == NULL);
    chain_free(&c);
}

int main(void) {
    test_forward_rounding();
    test_underflow_and_static_scaling();
    test_adaptive_residual_join();
    test_dynamic_backoff();
    test_kfac_divides_the_scale();
    test_master_weights_and_state();
    test_bad_exemption();
    return report_checks();
}
