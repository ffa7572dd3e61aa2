/* A whole bottleneck residual block against finite differences, in F64:
 *   relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x))))))) + bn_down(conv_down(x)))
 * with conv1/conv3 1x1, conv2 3x3 stride 2 and a 1x1 stride-2 projection
 * shortcut, as in the first block of a ResNet-50 stage. Checks the gradient
 * of the input and of every parameter (conv weights, norm scales, norm
 * biases); x feeds both branches, so its gradient must accumulate. */
#include "gradcheck/gradcheck.h"
#include "nn/ob_layers.h"
#include "nn/ob_ops.h"

#define IN_C 4
#define MID_C 3
#define OUT_C 8
#define MOMENTUM 0.1
#define EPS 1e-5

typedef struct {
    ob_conv2d_layer *conv1, *conv2, *conv3, *conv_down;
    ob_batchnorm_layer *bn1, *bn2, *bn3, *bn_down;
} bottleneck;

/* bn(conv(x)) in training mode; a failure (NULL) passes through. */
static ob_tensor *conv_bn(ob_ctx *ctx, ob_conv2d_layer *conv, ob_batchnorm_layer *bn, ob_tensor *x) {
    ob_tensor *y = x ? ob_conv2d_layer_forward(ctx, conv, x) : NULL;
    return y ? ob_batchnorm_layer_forward(ctx, bn, y, true) : NULL;
}

static ob_tensor *relu_or_null(ob_ctx *ctx, ob_tensor *x) { return x ? ob_relu(ctx, x) : NULL; }

static ob_tensor *block_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    bottleneck *block = user;
    ob_tensor *h = relu_or_null(ctx, conv_bn(ctx, block->conv1, block->bn1, in[0]));
    h = relu_or_null(ctx, conv_bn(ctx, block->conv2, block->bn2, h));
    h = conv_bn(ctx, block->conv3, block->bn3, h);
    ob_tensor *shortcut = conv_bn(ctx, block->conv_down, block->bn_down, in[0]);
    return h && shortcut ? relu_or_null(ctx, ob_add(ctx, h, shortcut)) : NULL;
}

static bottleneck build_block(ob_ctx *ctx, ob_params *params) {
    bottleneck b;
    b.conv1 = ob_conv2d_layer_new(ctx, params, "conv1", IN_C, MID_C, 1, 1, 0, 1, false);
    b.bn1 = ob_batchnorm_layer_new(ctx, params, "bn1", MID_C, MOMENTUM, EPS, 1.0);
    b.conv2 = ob_conv2d_layer_new(ctx, params, "conv2", MID_C, MID_C, 3, 2, 1, 1, false);
    b.bn2 = ob_batchnorm_layer_new(ctx, params, "bn2", MID_C, MOMENTUM, EPS, 1.0);
    b.conv3 = ob_conv2d_layer_new(ctx, params, "conv3", MID_C, OUT_C, 1, 1, 0, 1, false);
    b.bn3 = ob_batchnorm_layer_new(ctx, params, "bn3", OUT_C, MOMENTUM, EPS, 1.0);
    b.conv_down = ob_conv2d_layer_new(ctx, params, "downsample.0", IN_C, OUT_C, 1, 2, 0, 1, false);
    b.bn_down = ob_batchnorm_layer_new(ctx, params, "downsample.1", OUT_C, MOMENTUM, EPS, 1.0);
    return b;
}

int main(void) {
    ob_ctx *ctx = gc_ctx();
    ob_params *params = ob_params_new(OB_F64);
    bottleneck block = build_block(ctx, params);
    int failed = 0, passed = 0;
    if (!block.bn_down) {
        printf("FAIL building the block: %s\n", ob_ctx_error(ctx));
        failed++;
    } else {
        gc_randomise_norms(params);
        ob_tensor *x = gc_input(ctx, OB_SHAPE(2, 5, 5, IN_C), 1, -1, 1);
        gc_check_model("bottleneck block", ctx, block_forward, x, params, &block, 1000) ? failed++ : passed++;
        gc_free_input(ctx, x);
    }
    ob_params_free(ctx, params);
    ob_ctx_free(ctx);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
