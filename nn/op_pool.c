/* Max-pooling (NHWC, padding counts as -inf) and global average pooling. */
#include <stdint.h>

#include "nn/ob_backend.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"

typedef struct {
    ob_pool2d_geom geom;
    ob_tensor *argmax; /* I32 like y: flat index into x of each window's maximum */
} maxpool_saved;

static bool is_image(ob_ctx *ctx, const char *op, const ob_tensor *x) {
    if (x->ndim == 4 && (x->dtype == OB_F32 || x->dtype == OB_F64)) return true;
    ob_ctx_set_error(ctx, "%s: x must be a floating [N,H,W,C] tensor (got %dD %s)", op, x->ndim,
                     ob_dtype_name(x->dtype));
    return false;
}

/* Fills *g, or explains in ctx why the arguments make no pooling. Padding is
 * at most half the window (as in PyTorch) so every window holds an image tap. */
static bool maxpool_geometry(ob_ctx *ctx, const ob_tensor *x, int kernel, int stride, int pad,
                             ob_pool2d_geom *g) {
    if (!is_image(ctx, "maxpool2d", x)) return false;
    if (kernel < 1 || stride < 1 || pad < 0 || 2 * pad > kernel) {
        ob_ctx_set_error(ctx, "maxpool2d: bad kernel %d, stride %d or pad %d (need pad <= kernel/2)",
                         kernel, stride, pad);
        return false;
    }
    int64_t span_h = x->shape[1] + 2 * (int64_t)pad - kernel;
    int64_t span_w = x->shape[2] + 2 * (int64_t)pad - kernel;
    /* argmax holds flat indices into x as int32. */
    if (span_h < 0 || span_w < 0 || x->numel > INT32_MAX) {
        ob_ctx_set_error(ctx, "maxpool2d: a %d window (pad %d) does not fit a %lldx%lld input of %lld values",
                         kernel, pad, (long long)x->shape[1], (long long)x->shape[2], (long long)x->numel);
        return false;
    }
    *g = (ob_pool2d_geom){.batch = x->shape[0], .in_h = (int)x->shape[1], .in_w = (int)x->shape[2],
                          .channels = (int)x->shape[3], .out_h = (int)(span_h / stride + 1),
                          .out_w = (int)(span_w / stride + 1), .kernel = kernel, .stride = stride,
                          .pad = pad};
    return true;
}

static int maxpool_backward(ob_ctx *ctx, const ob_node *node) {
    const maxpool_saved *saved = node->saved;
    ob_tensor *dx = ob_grad_of(ctx, node->in[0]);
    if (dx) ob_backend_of(dx)->maxpool2d_backward(&saved->geom, saved->argmax, node->out->grad, dx);
    return 0;
}

ob_tensor *ob_maxpool2d(ob_ctx *ctx, ob_tensor *x, int kernel, int stride, int pad) {
    ob_pool2d_geom g;
    if (!maxpool_geometry(ctx, x, kernel, stride, pad, &g)) return NULL;
    ob_tensor *y =
        ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, x->dtype, OB_SHAPE(g.batch, g.out_h, g.out_w, g.channels));
    if (!y) return NULL;
    /* argmax is saved for backward like an activation, so it is charged as one. */
    ob_tensor *argmax = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, OB_I32, y->ndim, y->shape);
    if (!argmax) return NULL;
    ob_backend_of(x)->maxpool2d_forward(&g, x, y, argmax);
    ob_node *node = ob_tape_record(ctx, "maxpool2d", maxpool_backward, y, sizeof(maxpool_saved), 1, &x);
    if (node) {
        maxpool_saved *saved = node->saved;
        if (!saved) return NULL;
        *saved = (maxpool_saved){.geom = g, .argmax = argmax};
    }
    return y;
}

static int global_avgpool_backward(ob_ctx *ctx, const ob_node *node) {
    ob_tensor *dx = ob_grad_of(ctx, node->in[0]);
    if (dx) ob_backend_of(dx)->global_avgpool_backward(node->out->grad, dx);
    return 0;
}

ob_tensor *ob_global_avgpool(ob_ctx *ctx, ob_tensor *x) {
    if (!is_image(ctx, "global_avgpool", x)) return NULL;
    ob_tensor *y = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, x->dtype, OB_SHAPE(x->shape[0], x->shape[3]));
    if (!y) return NULL;
    ob_backend_of(x)->global_avgpool_forward(x, y);
    ob_tape_record(ctx, "global_avgpool", global_avgpool_backward, y, 0, 1, &x);
    return y;
}
