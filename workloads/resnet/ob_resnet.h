/* ResNet v1.5 (He et al. 2016; stride on the 3x3 conv of each bottleneck, as
 * torchvision) in NHWC, with parameter names in torchvision's layout
 * ("layer3.2.conv2.weight"), so a reader can map them one to one. */
#ifndef OB_RESNET_H
#define OB_RESNET_H

#include "nn/ob_layers.h"

typedef struct {
    int in_channels;
    int stem_kernel, stem_stride, stem_pad;
    bool stem_maxpool; /* 3x3/2 max-pool after the stem (ImageNet stem) */
    int stem_width;
    int widths[4]; /* bottleneck widths per stage; outputs are expansion x */
    int blocks[4];
    int expansion;
    int classes;
} ob_resnet_spec;

typedef struct ob_resnet ob_resnet;

/* batch_norm false (model.norm=none): no batch-norm layers; every convolution
 * gets a bias instead, and zero_init_residual zeroes each block's last
 * convolution instead of its last batch-norm scale. bn_momentum and bn_eps
 * are then unused. */
ob_resnet *ob_resnet_new(ob_ctx *ctx, ob_params *params, const ob_resnet_spec *spec, bool batch_norm,
                         double bn_momentum, double bn_eps, bool zero_init_residual);
void ob_resnet_free(ob_resnet *model);
/* x [N, H, W, in_channels] -> logits [N, classes] */
ob_tensor *ob_resnet_forward(ob_ctx *ctx, ob_resnet *model, ob_tensor *x, bool training);

#endif
