/* 2-D convolution (NHWC, weights [out_c, kh, kw, in_c]).
 *
 * The backend picks the implementation (CPU: oneDNN for F32 when built with
 * it, im2col + GEMM otherwise) and says what workspace each direction needs;
 * the op allocates it from the step arena. The forward's workspace is kept
 * for backward: im2col + GEMM leaves its column matrix there for the weight
 * gradient instead of rebuilding it (a pass over memory as large as the
 * GEMM's input). The backward's is scratch for dx, allocated only when dx is
 * wanted: the column gradient for im2col, a dx-sized buffer for oneDNN, which
 * overwrites its output where the op contract is to accumulate. */
#include <limits.h>

#include "nn/ob_backend.h"
#include "nn/ob_layers.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"
#include "nn/op_operands.h"

typedef struct {
    ob_conv2d_geom geom;
    ob_tensor *forward_workspace; /* kept for backward; NULL when the backend wants none */
    ob_layer *hook;
    /* the operands the forward consumed (rounded under a precision policy, x perhaps kept in 2 bytes) */
    ob_tensor *x_saved, *w_used;
} conv2d_saved;

/* Output extent along one dim: (in + 2 pad - dilation (k - 1) - 1) / stride + 1, or 0 when
 * the dilated kernel does not fit in the padded input. */
static int64_t conv_out_extent(int64_t in, int64_t kernel, int stride, int pad, int dilation) {
    int64_t span = in + 2 * (int64_t)pad - (int64_t)dilation * (kernel - 1) - 1;
    return span < 0 ? 0 : span / stride + 1;
}

static bool fits_int(int64_t v) { return v >= 1 && v <= INT_MAX; }

/* Fills *g from the operands, or explains in ctx why they do not make a convolution. */
static bool conv2d_geometry(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *w, const ob_tensor *b,
                            int stride, int pad, int dilation, ob_conv2d_geom *g) {
    if (x->ndim != 4 || w->ndim != 4) {
        ob_ctx_set_error(ctx, "conv2d: x must be [N,H,W,C] and w [out_c,kh,kw,in_c] (got %dD and %dD)",
                         x->ndim, w->ndim);
        return false;
    }
    if ((x->dtype != OB_F32 && x->dtype != OB_F64) || w->dtype != x->dtype || (b && b->dtype != x->dtype) ||
        w->device != x->device || (b && b->device != x->device)) {
        ob_ctx_set_error(ctx, "conv2d: x, w and bias must share one floating dtype and device");
        return false;
    }
    if (w->shape[3] != x->shape[3]) {
        ob_ctx_set_error(ctx, "conv2d: w has %lld input channels, x has %lld", (long long)w->shape[3],
                         (long long)x->shape[3]);
        return false;
    }
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0])) {
        ob_ctx_set_error(ctx, "conv2d: bias must be [%lld]", (long long)w->shape[0]);
        return false;
    }
    if (stride < 1 || pad < 0 || dilation < 1) {
        ob_ctx_set_error(ctx, "conv2d: bad stride %d, pad %d or dilation %d", stride, pad, dilation);
        return false;
    }
    int64_t out_h = conv_out_extent(x->shape[1], w->shape[1], stride, pad, dilation);
    int64_t out_w = conv_out_extent(x->shape[2], w->shape[2], stride, pad, dilation);
    int64_t patch = w->shape[1] * w->shape[2] * w->shape[3];
    /* BLAS takes int dimensions. */
    if (!fits_int(out_h) || !fits_int(out_w) || !fits_int(x->shape[0] * out_h * out_w) || !fits_int(patch) ||
        !fits_int(x->shape[1]) || !fits_int(x->shape[2]) || !fits_int(w->shape[0])) {
        ob_ctx_set_error(ctx, "conv2d: a %lldx%lld kernel (dilation %d, pad %d, stride %d) on a %lldx%lld "
                         "input gives no valid output or sizes beyond int", (long long)w->shape[1],
                         (long long)w->shape[2], dilation, pad, stride, (long long)x->shape[1],
                         (long long)x->shape[2]);
        return false;
    }
    *g = (ob_conv2d_geom){.batch = x->shape[0], .in_h = (int)x->shape[1], .in_w = (int)x->shape[2],
                          .in_c = (int)x->shape[3], .out_h = (int)out_h, .out_w = (int)out_w,
                          .out_c = (int)w->shape[0], .kernel_h = (int)w->shape[1],
                          .kernel_w = (int)w->shape[2], .stride = stride, .pad = pad, .dilation = dilation};
    return true;
}

/* An arena workspace of the size the backend asks for one direction of g, or
 * *workspace = NULL when it asks for none. Returns false when out of memory. */
static bool conv2d_workspace(ob_ctx *ctx, const ob_conv2d_geom *g, const ob_tensor *like,
                             ob_conv2d_direction direction, ob_tensor **workspace) {
    int64_t elements = ob_backend_of(like)->conv2d_workspace_elements(ctx, g, like->dtype, direction);
    *workspace = elements ? ob_tensor_temp(ctx, OB_MEM_WORKSPACE, like->dtype, OB_SHAPE(elements)) : NULL;
    return !elements || *workspace;
}

static int conv2d_backward(ob_ctx *ctx, const ob_node *node) {
    const conv2d_saved *saved = node->saved;
    ob_tensor *dy = node->out->grad;
    ob_grad_operands ops;
    if (ob_op_backward_operands(ctx, saved->hook, dy, saved->w_used, &ops)) return 1;
    ob_tensor *dx = ob_grad_of_scaled(ctx, node->in[0], ob_grad_loss_scale(dy) * ops.input_gain);
    ob_tensor *dw = ob_grad_of(ctx, node->in[1]);
    ob_tensor *dbias = ob_grad_of(ctx, node->in[2]);
    ob_tensor *scratch = NULL;
    if (dx && !conv2d_workspace(ctx, &saved->geom, dy, OB_CONV2D_BACKWARD, &scratch)) return 1;
    ob_tensor *x_used = ob_op_saved_input(ctx, saved->hook, saved->x_saved);
    if (!x_used) return 1;
    const ob_backend *backend = ob_backend_of(dy);
    const ob_conv2d_geom *g = &saved->geom;
    if (ops.dy_for_input == ops.dy_for_weight)
        return backend->conv2d_backward(ctx, g, x_used, saved->w_used, ops.dy_for_input, dx, dw, dbias,
                                        saved->forward_workspace, scratch);
    /* The two paths consume different gradients: one call each. */
    return backend->conv2d_backward(ctx, g, x_used, saved->w_used, ops.dy_for_weight, NULL, dw, dbias,
                                    saved->forward_workspace, NULL) ||
           backend->conv2d_backward(ctx, g, x_used, saved->w_used, ops.dy_for_input, dx, NULL, NULL,
                                    saved->forward_workspace, scratch);
}

ob_tensor *ob_conv2d(ob_ctx *ctx, ob_tensor *x, ob_tensor *w, ob_tensor *b, int stride, int pad,
                     int dilation, struct ob_layer *hook) {
    ob_conv2d_geom g;
    if (!conv2d_geometry(ctx, x, w, b, stride, pad, dilation, &g)) return NULL;
    ob_tensor *y =
        ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, x->dtype, OB_SHAPE(g.batch, g.out_h, g.out_w, g.out_c));
    ob_tensor *workspace = NULL, *x_used = x, *w_used = w, *x_saved = NULL;
    if (!y || !conv2d_workspace(ctx, &g, x, OB_CONV2D_FORWARD, &workspace)) return NULL;
    if (!ob_op_forward_operands(ctx, hook, &x_used, &w_used, &x_saved)) return NULL;
    if (ob_backend_of(x)->conv2d_forward(ctx, &g, x_used, w_used, b, y, workspace) != 0) return NULL;

    ob_tensor *inputs[3] = {x, w, b};
    ob_node *node = ob_tape_record(ctx, "conv2d", conv2d_backward, y, sizeof(conv2d_saved), 3, inputs);
    if (node) {
        conv2d_saved *saved = node->saved;
        if (!saved) return NULL;
        *saved = (conv2d_saved){.geom = g, .forward_workspace = workspace, .hook = hook, .x_saved = x_saved,
                                .w_used = w_used};
    }
    return y;
}
