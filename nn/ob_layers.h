/* ob_layers: layers own parameters; the registry names them.
 *
 * Every parameter is registered with a dotted name ("layer3.2.conv2.weight"),
 * a kind, and its layer, so optimizers can treat kinds differently (no weight
 * decay on norms and biases, LAMB's trust ratio per layer, K-FAC only on
 * Linear and Conv2d). Buffers (batch-norm running statistics) are registered
 * too, so checkpoints find them, but are not trained.
 */
#ifndef OB_LAYERS_H
#define OB_LAYERS_H

#include "nn/ob_ctx.h"

#define OB_NAME_MAX 96       /* parameter names: layer name + "." + suffix */
#define OB_LAYER_NAME_MAX 64

typedef enum {
    OB_KIND_WEIGHT = 0,   /* linear weight */
    OB_KIND_BIAS,
    OB_KIND_CONV_WEIGHT,
    OB_KIND_NORM_SCALE,
    OB_KIND_NORM_BIAS,
    OB_KIND_EMBEDDING,
    OB_KIND_COUNT
} ob_param_kind;

typedef enum {
    OB_LAYER_LINEAR = 0,
    OB_LAYER_CONV2D,
    OB_LAYER_BATCHNORM,
    OB_LAYER_LAYERNORM,
    OB_LAYER_EMBEDDING,
    OB_LAYER_BIAS,
    OB_LAYER_TYPE_COUNT
} ob_layer_type;

/* The part every layer shares; concrete layers embed it first. */
typedef struct ob_layer {
    char name[OB_LAYER_NAME_MAX];
    ob_layer_type type;
    int index; /* position in the registry's layer list */
    /* K-FAC capture hook: when `capture` is set, the layer's op stores its
     * input (A side) in the forward pass and the gradient of its output
     * (G side) in the backward pass. Both live in the step arena. */
    bool capture;
    ob_tensor *captured_input;
    ob_tensor *captured_grad_output;
    double captured_grad_scale; /* loss scale the captured gradient carries (K-FAC divides it out) */
    /* Linear/Conv2d: the precision policy that rounds this layer's GEMM
     * operands (nn/ob_precision_hook.h); NULL = full precision. */
    struct ob_precision_hook *precision;
} ob_layer;

typedef struct {
    char name[OB_NAME_MAX];
    ob_param_kind kind;
    ob_layer *layer;
    ob_tensor *value; /* value->grad is the persistent gradient */
} ob_param;

typedef struct {
    char name[OB_NAME_MAX];
    ob_tensor *value;
} ob_buffer;

typedef struct ob_params ob_params;

/* dtype: of every parameter the registry's layers create (F32 to train,
 * F64 for gradcheck). */
ob_params *ob_params_new(ob_dtype dtype);
ob_dtype ob_params_dtype(const ob_params *params);
void ob_params_free(ob_ctx *ctx, ob_params *params);
int ob_params_count(const ob_params *params);
ob_param *ob_params_at(const ob_params *params, int i);
int ob_params_buffer_count(const ob_params *params);
ob_buffer *ob_params_buffer_at(const ob_params *params, int i);
int ob_params_layer_count(const ob_params *params);
ob_layer *ob_params_layer_at(const ob_params *params, int i);
/* Total number of trainable scalars. */
int64_t ob_params_numel(const ob_params *params);
/* Zero every parameter's gradient. */
void ob_params_zero_grad(const ob_params *params);
const char *ob_param_kind_name(ob_param_kind kind);

/* Concrete layers. Constructors allocate parameters (category params) and
 * gradients (category grads), initialise them from the ctx seed (purpose
 * OB_RNG_INIT, the registry position as the stream step), register them
 * and return NULL on allocation failure. */
typedef struct {
    ob_layer base;
    ob_tensor *weight; /* [out_c, k, k, in_c] */
    ob_tensor *bias;   /* [out_c] or NULL */
    int stride, pad, dilation;
} ob_conv2d_layer;

typedef struct {
    ob_layer base;
    ob_tensor *weight; /* [out, in] */
    ob_tensor *bias;   /* [out] or NULL */
} ob_linear_layer;

typedef struct {
    ob_layer base;
    ob_tensor *weight, *bias;             /* gamma, beta: [channels] */
    ob_tensor *running_mean, *running_var; /* buffers */
    double momentum, eps;
} ob_batchnorm_layer;

typedef struct {
    ob_layer base;
    ob_tensor *weight, *bias; /* gamma, beta: [width] */
    double eps;
} ob_layernorm_layer;

typedef struct {
    ob_layer base;
    ob_tensor *weight; /* [vocab, dim] */
} ob_embedding_layer;

/* A bias vector on its own, for an op whose weight another layer owns
 * (BERT's masked-LM decoder, tied to the word embeddings). */
typedef struct {
    ob_layer base;
    ob_tensor *bias; /* [width] */
} ob_bias_layer;

/* Kaiming-normal init, fan_out mode, ReLU gain (as torchvision's ResNet). */
ob_conv2d_layer *ob_conv2d_layer_new(ob_ctx *ctx, ob_params *params, const char *name, int in_c,
                                     int out_c, int kernel, int stride, int pad, int dilation, bool bias);
/* PyTorch's default: weight and bias uniform in +-1/sqrt(in). */
ob_linear_layer *ob_linear_layer_new(ob_ctx *ctx, ob_params *params, const char *name, int in,
                                     int out, bool bias);
/* gamma = init_scale (1, or 0 for a residual branch's last norm), beta = 0. */
ob_batchnorm_layer *ob_batchnorm_layer_new(ob_ctx *ctx, ob_params *params, const char *name,
                                           int channels, double momentum, double eps, double init_scale);

/* gamma = 1, beta = 0. */
ob_layernorm_layer *ob_layernorm_layer_new(ob_ctx *ctx, ob_params *params, const char *name, int width,
                                           double eps);
/* Table entries normal with std init_std (BERT: 0.02). */
ob_embedding_layer *ob_embedding_layer_new(ob_ctx *ctx, ob_params *params, const char *name, int vocab,
                                           int dim, double init_std);

/* bias = 0 */
ob_bias_layer *ob_bias_layer_new(ob_ctx *ctx, ob_params *params, const char *name, int width);

ob_tensor *ob_conv2d_layer_forward(ob_ctx *ctx, ob_conv2d_layer *layer, ob_tensor *x);
ob_tensor *ob_linear_layer_forward(ob_ctx *ctx, ob_linear_layer *layer, ob_tensor *x);
ob_tensor *ob_batchnorm_layer_forward(ob_ctx *ctx, ob_batchnorm_layer *layer, ob_tensor *x, bool training);
ob_tensor *ob_layernorm_layer_forward(ob_ctx *ctx, ob_layernorm_layer *layer, ob_tensor *x);
/* ids I32 of any shape -> [ids->numel, dim] (see ob_embedding) */
ob_tensor *ob_embedding_layer_forward(ob_ctx *ctx, ob_embedding_layer *layer, const ob_tensor *ids);

#endif
