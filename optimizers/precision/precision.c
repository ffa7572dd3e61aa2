/* The precision policy: per-layer rounding through the engine's hook,
 * loss scaling, statistics and fp16 master weights (ob_precision.h). */
#include "optimizers/precision/ob_precision.h"
#include "optimizers/precision/ob_name_table.h"
#include "optimizers/precision/saved_inputs.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ob_backend.h"
#include "nn/ob_precision_hook.h"
#include "nn/ob_tape.h"

typedef struct {
    ob_layer *layer;
    int64_t terms; /* products summed per element of the gradient passed down */
    bool exempt;
    double gain;   /* adaptive: the scale this layer adds; 0 until first computed */
    double last_dy_scale;
    int64_t values, nonzero, underflow, overflow;
} layer_policy;

struct ob_precision {
    ob_precision_hook hook; /* first member: a layer's hook pointer is its policy */
    ob_precision_config config;
    ob_format forward_format, backward_format;
    ob_rounding grad_rounding;
    bool fp16_master;
    ob_loss_scaler scaler;
    int64_t step;
    layer_policy *layers;
    int n_layers;
    int *slot_of_layer; /* registry index -> position in layers, -1 for other layers */
    ob_tensor *state;
    ob_dtype saved_input_dtype; /* what rounded inputs are kept in for backward */
    ob_saved_inputs saved_inputs;
    /* the backward GEMMs' rounded (FQT: two quantized) and adaptively scaled output gradients */
    ob_reusable_f32 grad_copies[3];
};

static const char *const kind_names[OB_PRECISION_COUNT] = {"fp32", "fp16", "bf16", "fp8-e5m2", "hfp8", "fqt"};

const char *ob_precision_name(ob_precision_kind kind) { return kind_names[kind]; }

int ob_precision_parse(const char *name, ob_precision_kind *out) {
    int k = ob_name_table_find(kind_names, OB_PRECISION_COUNT, name);
    if (k < 0) return 2;
    *out = (ob_precision_kind)k;
    return 0;
}

/* Random bits: one stream per (seed, rank, step); the index space is split
 * so that no two roundings of one step share bits. */
#define SLOT_SHIFT 40
#define MASTER_REGION (1ull << 62)

static ob_rng_stream step_stream(const ob_precision *p, int rank) {
    return ob_rng_stream_make(p->config.seed, OB_RNG_STOCHASTIC_ROUNDING, (uint32_t)rank, (uint64_t)p->step);
}

static layer_policy *policy_of(ob_precision *p, const ob_layer *layer) {
    return &p->layers[p->slot_of_layer[layer->index]];
}

static bool rounds(const ob_precision *p, const layer_policy *lp) {
    return !lp->exempt && p->config.kind != OB_PRECISION_FP32;
}

/* ---- the engine hook ---- */

static ob_tensor *forward_operand(ob_ctx *ctx, ob_precision_hook *hook, ob_layer *layer, ob_tensor *t,
                                  bool is_weight) {
    ob_precision *p = (ob_precision *)hook;
    if (!rounds(p, policy_of(p, layer))) return t;
    /* K-FAC reads a captured input after later layers have run: it keeps fp32. */
    if (!is_weight && p->saved_input_dtype != OB_F32 && !layer->capture)
        return ob_saved_inputs_round(ctx, &p->saved_inputs, t, p->forward_format, p->saved_input_dtype);
    ob_tensor *out = ob_tensor_temp(ctx, is_weight ? OB_MEM_WORKSPACE : OB_MEM_ACTIVATIONS, OB_F32, t->ndim,
                                    t->shape);
    if (!out) return NULL;
    if (p->config.kind == OB_PRECISION_FQT)
        ob_fqt_quantize_forward(ob_f32(t), ob_f32(out), t->numel, p->config.fqt_forward_bits);
    else
        ob_format_round_array(ob_f32(t), ob_f32(out), t->numel, p->forward_format, OB_ROUND_NEAREST_EVEN, NULL, 0,
                              NULL);
    return out;
}

static ob_tensor *widen(ob_ctx *ctx, ob_precision_hook *hook, const ob_tensor *saved) {
    return ob_saved_inputs_widen(ctx, &((ob_precision *)hook)->saved_inputs, saved);
}

/* Flushes a quantizer caused: nonzero inputs that came out zero. A pass
 * of its own rather than inside the quantizers: bhq's output is final only
 * after the reflection back, which runs over column blocks, not rows, and
 * the pass reads two arrays where the quantizers draw a Philox word per
 * value. */
static void count_flushes(const float *in, const float *out, int64_t n, ob_round_stats *stats) {
    int64_t nonzero = 0, underflow = 0;
    /* & rather than &&: GCC vectorises no short-circuit */
#pragma omp parallel for simd reduction(+ : nonzero, underflow) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        bool was_nonzero = in[i] != 0;
        nonzero += was_nonzero;
        underflow += was_nonzero & (out[i] == 0);
    }
    stats->nonzero += nonzero;
    stats->underflow += underflow;
}

/* FQT: the gradient passed down and the one the weight gradient uses go
 * through separate stochastic quantizers, rows = samples. */
static int quantize_fqt(ob_ctx *ctx, ob_precision *p, int slot, const ob_tensor *dy, ob_tensor *dy_input,
                        ob_tensor *dy_weight, ob_round_stats *stats) {
    int64_t rows = dy->shape[0], cols = dy->numel / rows;
    int64_t workspace_floats = ob_fqt_workspace_floats(rows, cols, p->config.fqt_quantizer);
    ob_tensor *workspace = workspace_floats ? ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_F32, OB_SHAPE(workspace_floats))
                                            : NULL;
    if (workspace_floats && !workspace) return 1;
    float *scratch = workspace ? ob_f32(workspace) : NULL;
    char err[256];
    /* The quantizers index their bits by element alone: each (layer, path)
     * gets its own Philox key instead. */
    ob_rng_stream input_stream = step_stream(p, p->config.rank), weight_stream = input_stream;
    input_stream.seed += (2 * (uint64_t)slot + 1) * 0x9E3779B97F4A7C15ull;
    weight_stream.seed += (2 * (uint64_t)slot + 2) * 0x9E3779B97F4A7C15ull;
    ob_fqt_gradient_output outputs[] = {{ob_f32(dy_input), p->config.fqt_grad_bits, &input_stream},
                                        {ob_f32(dy_weight), p->config.fqt_weight_grad_bits, &weight_stream}};
    if (ob_fqt_quantize_gradient_outputs(ob_f32(dy), rows, cols, p->config.fqt_quantizer, outputs, 2, scratch, err,
                                         sizeof err)) {
        ob_ctx_set_error(ctx, "%s", err); /* err names fqt */
        return 1;
    }
    count_flushes(ob_f32(dy), ob_f32(dy_input), dy->numel, stats);
    return 0;
}

static void update_gain(ob_precision *p, layer_policy *lp, const ob_tensor *dy, double dy_scale,
                        const ob_tensor *weight_used) {
    const ob_loss_scale_config *c = &p->config.loss_scale;
    if (c->kind != OB_LOSS_SCALE_ADAPTIVE || (lp->gain > 0 && p->step % c->update_every != 0)) return;
    ob_value_stats grad = ob_value_stats_of(ob_f32(dy), dy->numel);
    ob_value_stats weight = ob_value_stats_of(ob_f32(weight_used), weight_used->numel);
    lp->gain = ob_adaptive_layer_scale(c, grad, weight, lp->terms, dy_scale,
                                       ob_format_min_subnormal(p->backward_format), ob_format_max(p->backward_format));
}

/* A copy of dy that the layer's backward GEMMs consume and then drop: a
 * reused buffer, except under K-FAC's capture, which reads dy_for_weight
 * after the backward pass has moved on. */
static ob_tensor *grad_copy(ob_ctx *ctx, ob_precision *p, const ob_layer *layer, int which, const ob_tensor *dy) {
    if (layer->capture) return ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, OB_F32, dy->ndim, dy->shape);
    return ob_reusable_f32_like(ctx, &p->grad_copies[which], dy);
}

static int backward_operands(ob_ctx *ctx, ob_precision_hook *hook, ob_layer *layer, ob_tensor *dy,
                             double dy_scale, const ob_tensor *weight_used, ob_grad_operands *out) {
    ob_precision *p = (ob_precision *)hook;
    layer_policy *lp = policy_of(p, layer);
    int slot = p->slot_of_layer[layer->index];
    update_gain(p, lp, dy, dy_scale, weight_used);
    lp->last_dy_scale = dy_scale;
    lp->values += dy->numel;
    ob_round_stats stats = {0};
    ob_tensor *dy_input = dy, *dy_weight = dy;
    if (rounds(p, lp)) {
        dy_input = grad_copy(ctx, p, layer, 0, dy);
        if (!dy_input) return 1;
        dy_weight = dy_input;
        if (p->config.kind == OB_PRECISION_FQT) {
            dy_weight = grad_copy(ctx, p, layer, 1, dy);
            if (!dy_weight || quantize_fqt(ctx, p, slot, dy, dy_input, dy_weight, &stats)) return 1;
        } else {
            ob_rng_stream stream = step_stream(p, p->config.rank);
            ob_format_round_array(ob_f32(dy), ob_f32(dy_input), dy->numel, p->backward_format, p->grad_rounding,
                                  &stream, (uint64_t)slot << SLOT_SHIFT, &stats);
        }
    }
    lp->nonzero += stats.nonzero;
    lp->underflow += stats.underflow;
    lp->overflow += stats.overflow;
    double gain = p->config.loss_scale.kind == OB_LOSS_SCALE_ADAPTIVE ? lp->gain : 1.0;
    if (gain != 1.0) {
        ob_tensor *scaled = grad_copy(ctx, p, layer, 2, dy);
        if (!scaled) return 1;
        const ob_backend *backend = ob_backend_of(dy);
        backend->copy(dy_input, scaled);
        backend->scale(gain, scaled);
        dy_input = scaled;
    }
    *out = (ob_grad_operands){.dy_for_input = dy_input, .dy_for_weight = dy_weight, .input_gain = gain};
    return 0;
}

/* ---- construction ---- */

static bool is_gemm_layer(const ob_layer *layer) {
    return layer->type == OB_LAYER_LINEAR || layer->type == OB_LAYER_CONV2D;
}

static int64_t passed_down_terms(const ob_layer *layer) {
    if (layer->type == OB_LAYER_LINEAR) return ((const ob_linear_layer *)layer)->weight->shape[0];
    const ob_tensor *w = ((const ob_conv2d_layer *)layer)->weight;
    return w->shape[0] * w->shape[1] * w->shape[2];
}

static bool low_precision_recipe_exempts_ends(ob_precision_kind kind) {
    return kind == OB_PRECISION_FP8_E5M2 || kind == OB_PRECISION_HFP8 || kind == OB_PRECISION_FQT;
}

static bool matches_any(const char *patterns, const char *name) {
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", patterns);
    char *save = NULL;
    for (char *pattern = strtok_r(copy, ",", &save); pattern; pattern = strtok_r(NULL, ",", &save)) {
        while (*pattern == ' ') pattern++;
        if (*pattern && fnmatch(pattern, name, 0) == 0) return true;
    }
    return false;
}

/* "auto": the first and the last GEMM layer for the FP8/FQT recipes. */
static int mark_exempt(ob_precision *p, char *err, size_t err_len) {
    const char *exempt = p->config.exempt ? p->config.exempt : "auto";
    if (strcmp(exempt, "none") == 0) return 0;
    if (strcmp(exempt, "auto") == 0) {
        if (low_precision_recipe_exempts_ends(p->config.kind) && p->n_layers > 0)
            p->layers[0].exempt = p->layers[p->n_layers - 1].exempt = true;
        return 0;
    }
    bool matched = false;
    for (int i = 0; i < p->n_layers; i++) {
        p->layers[i].exempt = matches_any(exempt, p->layers[i].layer->name);
        matched |= p->layers[i].exempt;
    }
    if (matched) return 0;
    snprintf(err, err_len, "precision.exempt: \"%s\" matches no Linear or Conv2d layer (expected auto, none or "
             "name patterns such as conv1,fc)", exempt);
    return 2;
}

static void choose_formats(ob_precision *p) {
    static const ob_format forward[OB_PRECISION_COUNT] = {OB_FORMAT_FP32, OB_FORMAT_FP16, OB_FORMAT_BF16,
                                                          OB_FORMAT_E5M2, OB_FORMAT_E4M3, OB_FORMAT_FP32};
    static const ob_format backward[OB_PRECISION_COUNT] = {OB_FORMAT_FP32, OB_FORMAT_FP16, OB_FORMAT_BF16,
                                                           OB_FORMAT_E5M2, OB_FORMAT_E5M2, OB_FORMAT_FP32};
    ob_precision_kind kind = p->config.kind;
    p->forward_format = forward[kind];
    p->backward_format = backward[kind];
    bool stochastic = p->config.stochastic_grads == OB_CHOICE_AUTO ? kind == OB_PRECISION_FP8_E5M2
                                                                  : p->config.stochastic_grads == OB_CHOICE_ON;
    p->grad_rounding = stochastic ? OB_ROUND_STOCHASTIC : OB_ROUND_NEAREST_EVEN;
    p->fp16_master = p->config.fp16_master == OB_CHOICE_AUTO
                         ? kind == OB_PRECISION_FP8_E5M2 || kind == OB_PRECISION_HFP8
                         : p->config.fp16_master == OB_CHOICE_ON;
}

static int collect_layers(ob_precision *p, ob_params *params, char *err, size_t err_len) {
    int count = ob_params_layer_count(params);
    p->slot_of_layer = malloc(sizeof *p->slot_of_layer * (size_t)(count ? count : 1));
    p->layers = calloc((size_t)(count ? count : 1), sizeof *p->layers);
    if (!p->slot_of_layer || !p->layers) {
        snprintf(err, err_len, "precision: out of memory");
        return 1;
    }
    for (int i = 0; i < count; i++) {
        ob_layer *layer = ob_params_layer_at(params, i);
        p->slot_of_layer[layer->index] = -1;
        if (!is_gemm_layer(layer)) continue;
        p->slot_of_layer[layer->index] = p->n_layers;
        p->layers[p->n_layers++] = (layer_policy){.layer = layer, .terms = passed_down_terms(layer)};
    }
    return 0;
}

ob_precision *ob_precision_new(ob_ctx *ctx, const ob_precision_config *config, ob_params *params, char *err,
                               size_t err_len) {
    if (ob_params_dtype(params) != OB_F32) {
        snprintf(err, err_len, "precision: policies round F32 parameters, this model is %s",
                 ob_dtype_name(ob_params_dtype(params)));
        return NULL;
    }
    ob_precision *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, err_len, "precision: out of memory");
        return NULL;
    }
    p->hook = (ob_precision_hook){
        .forward_operand = forward_operand, .widen = widen, .backward_operands = backward_operands};
    p->config = *config;
    choose_formats(p);
    bool quantized = config->kind == OB_PRECISION_FQT; /* its grids are not a 2-byte format */
    p->saved_input_dtype =
        config->narrow_saved_inputs && !quantized ? ob_saved_input_dtype(p->forward_format) : OB_F32;
    ob_loss_scaler_init(&p->scaler, &config->loss_scale);
    if (collect_layers(p, params, err, err_len) || mark_exempt(p, err, err_len)) {
        ob_precision_free(ctx, p, NULL);
        return NULL;
    }
    p->state = ob_tensor_new_on(ctx, OB_CPU, OB_MEM_OPTIMIZER_STATE, OB_F64, OB_SHAPE(3 + p->n_layers));
    if (!p->state) {
        snprintf(err, err_len, "precision: %s", ob_ctx_error(ctx));
        ob_precision_free(ctx, p, NULL);
        return NULL;
    }
    for (int i = 0; i < p->n_layers; i++) p->layers[i].layer->precision = &p->hook;
    return p;
}

void ob_precision_free(ob_ctx *ctx, ob_precision *p, ob_params *params) {
    if (!p) return;
    for (int i = 0; params && i < p->n_layers; i++) p->layers[i].layer->precision = NULL;
    ob_saved_inputs_free(ctx, &p->saved_inputs);
    for (int i = 0; i < 3; i++) ob_reusable_f32_free(ctx, &p->grad_copies[i]);
    ob_tensor_free(ctx, p->state);
    free(p->layers);
    free(p->slot_of_layer);
    free(p);
}

/* ---- the step ---- */

void ob_precision_begin_step(ob_precision *p, int64_t step) { p->step = step; }

double ob_precision_loss_scale(const ob_precision *p) { return p->scaler.scale; }

void ob_precision_unscale(ob_params *params) {
    for (int i = 0; i < ob_params_count(params); i++) ob_grad_unscale(ob_params_at(params, i)->value->grad);
}

bool ob_precision_accept(ob_precision *p, bool grads_finite) {
    return ob_loss_scaler_update(&p->scaler, &p->config.loss_scale, grads_finite);
}

int64_t ob_precision_skipped_steps(const ob_precision *p) { return p->scaler.skipped_steps; }

/* Every rank draws the same bits (rank 0's stream), so replicas stay equal. */
void ob_precision_after_update(ob_precision *p, ob_params *params) {
    if (!p->fp16_master) return;
    ob_rng_stream stream = step_stream(p, 0);
    for (int i = 0; i < ob_params_count(params); i++) {
        ob_tensor *value = ob_params_at(params, i)->value;
        ob_format_round_array(ob_f32(value), ob_f32(value), value->numel, OB_FORMAT_FP16, OB_ROUND_STOCHASTIC,
                              &stream, MASTER_REGION | ((uint64_t)i << SLOT_SHIFT), NULL);
    }
}

/* ---- statistics and checkpoints ---- */

int ob_precision_layer_count(const ob_precision *p) { return p->n_layers; }

ob_precision_layer_stat ob_precision_layer_stat_at(const ob_precision *p, int i) {
    const layer_policy *lp = &p->layers[i];
    double gain = p->config.loss_scale.kind == OB_LOSS_SCALE_ADAPTIVE ? lp->gain : 1.0;
    return (ob_precision_layer_stat){.layer = lp->layer->name, .loss_scale = lp->last_dy_scale, .gain = gain,
                                     .values = lp->values, .nonzero = lp->nonzero, .underflow = lp->underflow,
                                     .overflow = lp->overflow};
}

void ob_precision_reset_stats(ob_precision *p) {
    for (int i = 0; i < p->n_layers; i++) p->layers[i].values = p->layers[i].nonzero = p->layers[i].underflow =
        p->layers[i].overflow = 0;
}

ob_tensor *ob_precision_state(ob_precision *p) {
    double *state = ob_f64(p->state);
    state[0] = p->scaler.scale;
    state[1] = (double)p->scaler.clean_steps;
    state[2] = (double)p->scaler.skipped_steps;
    for (int i = 0; i < p->n_layers; i++) state[3 + i] = p->layers[i].gain;
    return p->state;
}

void ob_precision_state_restored(ob_precision *p) {
    const double *state = ob_f64(p->state);
    p->scaler.scale = state[0];
    p->scaler.clean_steps = (int64_t)state[1];
    p->scaler.skipped_steps = (int64_t)state[2];
    for (int i = 0; i < p->n_layers; i++) p->layers[i].gain = state[3 + i];
}
