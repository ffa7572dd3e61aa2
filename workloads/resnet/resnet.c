#include "workloads/resnet/ob_resnet.h"

#include <stdio.h>
#include <stdlib.h>

#include "nn/ob_backend.h"
#include "nn/ob_ops.h"

/* Bottleneck: 1x1 reduce, 3x3 (carries the stride), 1x1 expand, each
 * followed by batch-norm; the shortcut is identity or 1x1 conv + BN. Without
 * batch-norm (model.norm=none) the bn pointers stay NULL and every
 * convolution has a bias instead. */
typedef struct {
    ob_conv2d_layer *conv1, *conv2, *conv3, *downsample_conv;
    ob_batchnorm_layer *bn1, *bn2, *bn3, *downsample_bn;
} bottleneck;

struct ob_resnet {
    ob_resnet_spec spec;
    ob_conv2d_layer *stem_conv;
    ob_batchnorm_layer *stem_bn;
    bottleneck *blocks;
    int n_blocks;
    ob_linear_layer *fc;
};

typedef struct {
    ob_ctx *ctx;
    ob_params *params;
    double bn_momentum, bn_eps;
    bool batch_norm;
} builder;

static ob_conv2d_layer *conv(builder *b, const char *prefix, const char *name, int in_c, int out_c, int kernel,
                             int stride) {
    char full[OB_LAYER_NAME_MAX];
    if (snprintf(full, sizeof full, "%s%s", prefix, name) >= (int)sizeof full) return NULL;
    return ob_conv2d_layer_new(b->ctx, b->params, full, in_c, out_c, kernel, stride, kernel / 2, 1,
                               !b->batch_norm);
}

static ob_batchnorm_layer *norm(builder *b, const char *prefix, const char *name, int channels,
                                double init_scale) {
    char full[OB_LAYER_NAME_MAX];
    if (snprintf(full, sizeof full, "%s%s", prefix, name) >= (int)sizeof full) return NULL;
    return ob_batchnorm_layer_new(b->ctx, b->params, full, channels, b->bn_momentum, b->bn_eps, init_scale);
}

/* Returns 0, or -1 if any allocation failed. Without batch-norm the
 * registry order is the batch-norm model's with the norms left out. */
static int bottleneck_init(builder *b, bottleneck *block, const char *prefix, int in_c, int width,
                           int out_c, int stride, bool zero_init_residual) {
    bool bn = b->batch_norm;
    block->conv1 = conv(b, prefix, "conv1", in_c, width, 1, 1);
    block->bn1 = bn ? norm(b, prefix, "bn1", width, 1.0) : NULL;
    block->conv2 = conv(b, prefix, "conv2", width, width, 3, stride);
    block->bn2 = bn ? norm(b, prefix, "bn2", width, 1.0) : NULL;
    block->conv3 = conv(b, prefix, "conv3", width, out_c, 1, 1);
    /* Zero-init of the last BN makes each block start as the identity
     * (Goyal et al. 2017), which helps large-batch SGD. Without BN the
     * branch's last convolution (weight and its zero bias) is zeroed. */
    block->bn3 = bn ? norm(b, prefix, "bn3", out_c, zero_init_residual ? 0.0 : 1.0) : NULL;
    if (!block->conv1 || !block->conv2 || !block->conv3) return -1;
    if (bn && (!block->bn1 || !block->bn2 || !block->bn3)) return -1;
    if (!bn && zero_init_residual) ob_backend_of(block->conv3->weight)->fill(block->conv3->weight, 0.0);
    if (stride != 1 || in_c != out_c) {
        block->downsample_conv = conv(b, prefix, "downsample.0", in_c, out_c, 1, stride);
        block->downsample_bn = bn ? norm(b, prefix, "downsample.1", out_c, 1.0) : NULL;
        if (!block->downsample_conv || (bn && !block->downsample_bn)) return -1;
    }
    return 0;
}

ob_resnet *ob_resnet_new(ob_ctx *ctx, ob_params *params, const ob_resnet_spec *spec, bool batch_norm,
                         double bn_momentum, double bn_eps, bool zero_init_residual) {
    ob_resnet *model = calloc(1, sizeof *model);
    if (!model) return NULL;
    model->spec = *spec;
    for (int stage = 0; stage < 4; stage++) model->n_blocks += spec->blocks[stage];
    model->blocks = calloc((size_t)model->n_blocks, sizeof *model->blocks);
    builder b = {ctx, params, bn_momentum, bn_eps, batch_norm};
    model->stem_conv = ob_conv2d_layer_new(ctx, params, "conv1", spec->in_channels, spec->stem_width,
                                           spec->stem_kernel, spec->stem_stride, spec->stem_pad, 1, !batch_norm);
    model->stem_bn = batch_norm ? norm(&b, "", "bn1", spec->stem_width, 1.0) : NULL;
    int failed = !model->blocks || !model->stem_conv || (batch_norm && !model->stem_bn);
    int in_c = spec->stem_width, index = 0;
    for (int stage = 0; stage < 4 && !failed; stage++) {
        int width = spec->widths[stage], out_c = width * spec->expansion;
        for (int i = 0; i < spec->blocks[stage] && !failed; i++) {
            char prefix[OB_LAYER_NAME_MAX];
            snprintf(prefix, sizeof prefix, "layer%d.%d.", stage + 1, i);
            int stride = (stage > 0 && i == 0) ? 2 : 1;
            failed = bottleneck_init(&b, &model->blocks[index++], prefix, in_c, width, out_c, stride,
                                     zero_init_residual);
            in_c = out_c;
        }
    }
    if (!failed) model->fc = ob_linear_layer_new(ctx, params, "fc", in_c, spec->classes, true);
    if (failed || !model->fc) {
        ob_resnet_free(model);
        return NULL;
    }
    return model;
}

void ob_resnet_free(ob_resnet *model) {
    if (!model) return;
    free(model->blocks);
    free(model);
}

/* Ops return NULL on failure; this keeps the forward pass readable. */
#define TRY(expr)                  \
    do {                           \
        if (!(expr)) return NULL;  \
    } while (0)

/* Convolution, then its batch-norm when the model has one (bn NULL: the
 * convolution's own bias stands in). */
static ob_tensor *conv_bn(ob_ctx *ctx, ob_conv2d_layer *conv_layer, ob_batchnorm_layer *bn, ob_tensor *x,
                          bool training) {
    ob_tensor *y = ob_conv2d_layer_forward(ctx, conv_layer, x);
    return y && bn ? ob_batchnorm_layer_forward(ctx, bn, y, training) : y;
}

static ob_tensor *bottleneck_forward(ob_ctx *ctx, bottleneck *block, ob_tensor *x, bool training) {
    ob_tensor *h;
    TRY(h = conv_bn(ctx, block->conv1, block->bn1, x, training));
    TRY(h = ob_relu(ctx, h));
    TRY(h = conv_bn(ctx, block->conv2, block->bn2, h, training));
    TRY(h = ob_relu(ctx, h));
    TRY(h = conv_bn(ctx, block->conv3, block->bn3, h, training));
    ob_tensor *shortcut = x;
    if (block->downsample_conv)
        TRY(shortcut = conv_bn(ctx, block->downsample_conv, block->downsample_bn, x, training));
    TRY(h = ob_add(ctx, h, shortcut));
    return ob_relu(ctx, h);
}

ob_tensor *ob_resnet_forward(ob_ctx *ctx, ob_resnet *model, ob_tensor *x, bool training) {
    ob_tensor *h;
    TRY(h = conv_bn(ctx, model->stem_conv, model->stem_bn, x, training));
    TRY(h = ob_relu(ctx, h));
    if (model->spec.stem_maxpool) TRY(h = ob_maxpool2d(ctx, h, 3, 2, 1));
    for (int i = 0; i < model->n_blocks; i++) TRY(h = bottleneck_forward(ctx, &model->blocks[i], h, training));
    TRY(h = ob_global_avgpool(ctx, h));
    return ob_linear_layer_forward(ctx, model->fc, h);
}
