/* ob_ops: differentiable operations. Each computes its output through the
 * backend table and records a tape node (see ob_tape.h). On bad arguments
 * they return NULL and leave one line in ob_ctx_error.
 * Layouts: images NHWC, conv weights [out_c, kh, kw, in_c], linear weights
 * [out, in] (see ob_tensor.h). */
#ifndef OB_OPS_H
#define OB_OPS_H

#include "nn/ob_ctx.h"

struct ob_layer;

/* y = conv(x, w) + b. x [N,H,W,Cin], w [Cout,kh,kw,Cin], b [Cout] or NULL.
 * `hook` (may be NULL) is the owning layer: when hook->capture is on, the
 * op stores its input and output gradient there for K-FAC. */
ob_tensor *ob_conv2d(ob_ctx *ctx, ob_tensor *x, ob_tensor *w, ob_tensor *b, int stride, int pad,
                     int dilation, struct ob_layer *hook);
/* Batch-norm over all but the last (channel) dim. Training mode normalises
 * with batch statistics and updates the running ones in place. */
ob_tensor *ob_batchnorm(ob_ctx *ctx, ob_tensor *x, ob_tensor *gamma, ob_tensor *beta,
                        ob_tensor *running_mean, ob_tensor *running_var, bool training,
                        double momentum, double eps);
ob_tensor *ob_relu(ob_ctx *ctx, ob_tensor *x);
ob_tensor *ob_add(ob_ctx *ctx, ob_tensor *a, ob_tensor *b);
ob_tensor *ob_maxpool2d(ob_ctx *ctx, ob_tensor *x, int kernel, int stride, int pad);
/* [N,H,W,C] -> [N,C] */
ob_tensor *ob_global_avgpool(ob_ctx *ctx, ob_tensor *x);
/* y = x w^T + b. x [N,in], w [out,in], b [out] or NULL. */
ob_tensor *ob_linear(ob_ctx *ctx, ob_tensor *x, ob_tensor *w, ob_tensor *b, struct ob_layer *hook);
/* Mean label-smoothed cross-entropy of softmax(logits): a [1] tensor.
 * logits [N,classes], labels I32 [N] in [0, classes). */
ob_tensor *ob_softmax_cross_entropy(ob_ctx *ctx, ob_tensor *logits, const ob_tensor *labels,
                                    double label_smoothing);

#endif
