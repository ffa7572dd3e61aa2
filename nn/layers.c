#include "nn/ob_layers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ob_backend.h"
#include "nn/ob_ops.h"
#include "nn/ob_rng.h"

struct ob_params {
    ob_dtype dtype;
    ob_param *items;
    int count, capacity;
    ob_buffer *buffers;
    int buffer_count, buffer_capacity;
    ob_layer **layers;
    int layer_count, layer_capacity;
};

static const char *const kind_names[OB_KIND_COUNT] = {"weight",     "bias",      "conv_weight",
                                                      "norm_scale", "norm_bias", "embedding"};

const char *ob_param_kind_name(ob_param_kind kind) { return kind_names[kind]; }

ob_params *ob_params_new(ob_dtype dtype) {
    ob_params *params = calloc(1, sizeof *params);
    if (params) params->dtype = dtype;
    return params;
}

ob_dtype ob_params_dtype(const ob_params *params) { return params->dtype; }

void ob_params_free(ob_ctx *ctx, ob_params *params) {
    if (!params) return;
    for (int i = 0; i < params->count; i++) {
        ob_tensor_free(ctx, params->items[i].value->grad);
        ob_tensor_free(ctx, params->items[i].value);
    }
    for (int i = 0; i < params->buffer_count; i++) ob_tensor_free(ctx, params->buffers[i].value);
    for (int i = 0; i < params->layer_count; i++) free(params->layers[i]);
    free(params->items);
    free(params->buffers);
    free(params->layers);
    free(params);
}

int ob_params_count(const ob_params *params) { return params->count; }
ob_param *ob_params_at(const ob_params *params, int i) { return &params->items[i]; }
int ob_params_buffer_count(const ob_params *params) { return params->buffer_count; }
ob_buffer *ob_params_buffer_at(const ob_params *params, int i) { return &params->buffers[i]; }
int ob_params_layer_count(const ob_params *params) { return params->layer_count; }
ob_layer *ob_params_layer_at(const ob_params *params, int i) { return params->layers[i]; }

int64_t ob_params_numel(const ob_params *params) {
    int64_t total = 0;
    for (int i = 0; i < params->count; i++) total += params->items[i].value->numel;
    return total;
}

void ob_params_zero_grad(const ob_params *params) {
    for (int i = 0; i < params->count; i++) {
        ob_tensor *grad = params->items[i].value->grad;
        ob_backend_of(grad)->fill(grad, 0.0);
        grad->loss_scale = grad->loss_scale_min = 0; /* empty again (ob_tape.h) */
    }
}

/* Grows a registry array by one slot; returns 0 or -1 when out of memory. */
static int grow(void **items, int *capacity, int count, size_t item_size) {
    if (count < *capacity) return 0;
    int new_capacity = *capacity ? 2 * *capacity : 64;
    void *grown = realloc(*items, (size_t)new_capacity * item_size);
    if (!grown) return -1;
    *items = grown;
    *capacity = new_capacity;
    return 0;
}

static ob_tensor *add_param(ob_ctx *ctx, ob_params *params, ob_layer *layer, const char *suffix,
                            ob_param_kind kind, int ndim, const int64_t *shape) {
    if (grow((void **)&params->items, &params->capacity, params->count, sizeof(ob_param))) return NULL;
    ob_tensor *value = ob_tensor_new(ctx, OB_MEM_PARAMS, params->dtype, ndim, shape);
    ob_tensor *grad = value ? ob_tensor_new(ctx, OB_MEM_GRADS, params->dtype, ndim, shape) : NULL;
    if (!grad) {
        ob_tensor_free(ctx, value);
        return NULL;
    }
    value->grad = grad;
    value->requires_grad = true;
    ob_param *param = &params->items[params->count++];
    snprintf(param->name, sizeof param->name, "%s.%s", layer->name, suffix);
    param->kind = kind;
    param->layer = layer;
    param->value = value;
    return value;
}

static ob_tensor *add_buffer(ob_ctx *ctx, ob_params *params, ob_layer *layer, const char *suffix,
                             int64_t length) {
    if (grow((void **)&params->buffers, &params->buffer_capacity, params->buffer_count, sizeof(ob_buffer)))
        return NULL;
    ob_tensor *value = ob_tensor_new(ctx, OB_MEM_PARAMS, params->dtype, OB_SHAPE(length));
    if (!value) return NULL;
    ob_buffer *buffer = &params->buffers[params->buffer_count++];
    snprintf(buffer->name, sizeof buffer->name, "%s.%s", layer->name, suffix);
    buffer->value = value;
    return value;
}

/* Allocates a zeroed layer of `size` bytes and registers its shared part. */
static void *add_layer(ob_params *params, size_t size, const char *name, ob_layer_type type) {
    if (grow((void **)&params->layers, &params->layer_capacity, params->layer_count, sizeof(ob_layer *)))
        return NULL;
    ob_layer *layer = calloc(1, size);
    if (!layer) return NULL;
    snprintf(layer->name, sizeof layer->name, "%s", name);
    layer->type = type;
    layer->index = params->layer_count;
    params->layers[params->layer_count++] = layer;
    return layer;
}

/* Init draws: stream step = the parameter's registry position, so a
 * parameter's initial values do not depend on how many came before it were
 * drawn, only on its place in the model. Every rank draws the same values. */
static ob_rng_stream init_stream(ob_ctx *ctx, const ob_params *params) {
    return ob_rng_stream_make(ob_ctx_seed(ctx), OB_RNG_INIT, 0, (uint64_t)params->count - 1);
}

/* Draw i of an initialiser with its scale (std or bound). */
typedef double (*init_draw)(const ob_rng_stream *stream, uint64_t i, double scale);
static double normal_draw(const ob_rng_stream *stream, uint64_t i, double std) {
    return std * ob_rng_normal(stream, i);
}
static double uniform_draw(const ob_rng_stream *stream, uint64_t i, double bound) {
    return bound * (2.0 * ob_rng_uniform(stream, i) - 1.0);
}

/* t[i] = draw i, computed on the host: into t itself on the CPU, else into
 * a staging buffer uploaded at the end. Returns 0, or -1 with ctx's error. */
static int init_values(ob_ctx *ctx, ob_tensor *t, ob_rng_stream stream, double scale, init_draw draw) {
    void *host = t->device == OB_CPU ? t->data : malloc(ob_tensor_bytes(t));
    if (!host) {
        ob_ctx_set_error(ctx, "init: out of memory staging %zu bytes", ob_tensor_bytes(t));
        return -1;
    }
    for (int64_t i = 0; i < t->numel; i++) {
        double value = draw(&stream, (uint64_t)i, scale);
        if (t->dtype == OB_F64)
            ((double *)host)[i] = value;
        else
            ((float *)host)[i] = (float)value;
    }
    if (host == t->data) return 0;
    int rc = ob_tensor_copy_from_host(ctx, t, host);
    free(host);
    return rc ? -1 : 0;
}

ob_conv2d_layer *ob_conv2d_layer_new(ob_ctx *ctx, ob_params *params, const char *name, int in_c,
                                     int out_c, int kernel, int stride, int pad, int dilation, bool bias) {
    ob_conv2d_layer *layer = add_layer(params, sizeof *layer, name, OB_LAYER_CONV2D);
    if (!layer) return NULL;
    layer->stride = stride;
    layer->pad = pad;
    layer->dilation = dilation;
    layer->weight = add_param(ctx, params, &layer->base, "weight", OB_KIND_CONV_WEIGHT,
                              OB_SHAPE(out_c, kernel, kernel, in_c));
    if (!layer->weight) return NULL;
    /* He et al. 2015, fan_out mode: std = sqrt(2 / (out_c k^2)). */
    if (init_values(ctx, layer->weight, init_stream(ctx, params), sqrt(2.0 / ((double)out_c * kernel * kernel)),
                    normal_draw))
        return NULL;
    if (bias) {
        layer->bias = add_param(ctx, params, &layer->base, "bias", OB_KIND_BIAS, OB_SHAPE(out_c));
        if (!layer->bias) return NULL;
    }
    return layer;
}

ob_linear_layer *ob_linear_layer_new(ob_ctx *ctx, ob_params *params, const char *name, int in, int out,
                                     bool bias) {
    ob_linear_layer *layer = add_layer(params, sizeof *layer, name, OB_LAYER_LINEAR);
    if (!layer) return NULL;
    double bound = 1.0 / sqrt((double)in);
    layer->weight = add_param(ctx, params, &layer->base, "weight", OB_KIND_WEIGHT, OB_SHAPE(out, in));
    if (!layer->weight) return NULL;
    if (init_values(ctx, layer->weight, init_stream(ctx, params), bound, uniform_draw)) return NULL;
    if (bias) {
        layer->bias = add_param(ctx, params, &layer->base, "bias", OB_KIND_BIAS, OB_SHAPE(out));
        if (!layer->bias || init_values(ctx, layer->bias, init_stream(ctx, params), bound, uniform_draw))
            return NULL;
    }
    return layer;
}

ob_batchnorm_layer *ob_batchnorm_layer_new(ob_ctx *ctx, ob_params *params, const char *name, int channels,
                                           double momentum, double eps, double init_scale) {
    ob_batchnorm_layer *layer = add_layer(params, sizeof *layer, name, OB_LAYER_BATCHNORM);
    if (!layer) return NULL;
    layer->momentum = momentum;
    layer->eps = eps;
    layer->weight = add_param(ctx, params, &layer->base, "weight", OB_KIND_NORM_SCALE, OB_SHAPE(channels));
    layer->bias = layer->weight ? add_param(ctx, params, &layer->base, "bias", OB_KIND_NORM_BIAS,
                                            OB_SHAPE(channels))
                                : NULL;
    layer->running_mean = layer->bias ? add_buffer(ctx, params, &layer->base, "running_mean", channels) : NULL;
    layer->running_var = layer->running_mean ? add_buffer(ctx, params, &layer->base, "running_var", channels)
                                             : NULL;
    if (!layer->running_var) return NULL;
    const ob_backend *backend = ob_backend_of(layer->weight);
    backend->fill(layer->weight, init_scale);
    backend->fill(layer->running_var, 1.0);
    return layer;
}

ob_layernorm_layer *ob_layernorm_layer_new(ob_ctx *ctx, ob_params *params, const char *name, int width,
                                           double eps) {
    ob_layernorm_layer *layer = add_layer(params, sizeof *layer, name, OB_LAYER_LAYERNORM);
    if (!layer) return NULL;
    layer->eps = eps;
    layer->weight = add_param(ctx, params, &layer->base, "weight", OB_KIND_NORM_SCALE, OB_SHAPE(width));
    if (!layer->weight) return NULL;
    layer->bias = add_param(ctx, params, &layer->base, "bias", OB_KIND_NORM_BIAS, OB_SHAPE(width));
    if (!layer->bias) return NULL;
    ob_backend_of(layer->weight)->fill(layer->weight, 1.0);
    return layer;
}

ob_embedding_layer *ob_embedding_layer_new(ob_ctx *ctx, ob_params *params, const char *name, int vocab,
                                           int dim, double init_std) {
    ob_embedding_layer *layer = add_layer(params, sizeof *layer, name, OB_LAYER_EMBEDDING);
    if (!layer) return NULL;
    layer->weight = add_param(ctx, params, &layer->base, "weight", OB_KIND_EMBEDDING, OB_SHAPE(vocab, dim));
    if (!layer->weight) return NULL;
    return init_values(ctx, layer->weight, init_stream(ctx, params), init_std, normal_draw) ? NULL : layer;
}

ob_bias_layer *ob_bias_layer_new(ob_ctx *ctx, ob_params *params, const char *name, int width) {
    ob_bias_layer *layer = add_layer(params, sizeof *layer, name, OB_LAYER_BIAS);
    if (!layer) return NULL;
    layer->bias = add_param(ctx, params, &layer->base, "bias", OB_KIND_BIAS, OB_SHAPE(width));
    return layer->bias ? layer : NULL;
}

ob_tensor *ob_conv2d_layer_forward(ob_ctx *ctx, ob_conv2d_layer *layer, ob_tensor *x) {
    return ob_conv2d(ctx, x, layer->weight, layer->bias, layer->stride, layer->pad, layer->dilation,
                     &layer->base);
}

ob_tensor *ob_linear_layer_forward(ob_ctx *ctx, ob_linear_layer *layer, ob_tensor *x) {
    return ob_linear(ctx, x, layer->weight, layer->bias, &layer->base);
}

ob_tensor *ob_batchnorm_layer_forward(ob_ctx *ctx, ob_batchnorm_layer *layer, ob_tensor *x, bool training) {
    return ob_batchnorm(ctx, x, layer->weight, layer->bias, layer->running_mean, layer->running_var, training,
                        layer->momentum, layer->eps);
}

ob_tensor *ob_layernorm_layer_forward(ob_ctx *ctx, ob_layernorm_layer *layer, ob_tensor *x) {
    return ob_layernorm(ctx, x, layer->weight, layer->bias, layer->eps);
}

ob_tensor *ob_embedding_layer_forward(ob_ctx *ctx, ob_embedding_layer *layer, const ob_tensor *ids) {
    return ob_embedding(ctx, layer->weight, ids);
}
