/* ob_tape: reverse-mode autograd.
 *
 * Each differentiable op, after computing its output, calls ob_tape_record.
 * When no input needs a gradient (or recording is off) it returns NULL and
 * the op is done; otherwise the op fills the node's `saved` record with what
 * its backward needs. ob_backward walks the nodes in reverse; each backward
 * function ACCUMULATES into its inputs' gradients (ob_grad_of gives them,
 * zeroed on first use), because a tensor may feed several ops (residuals).
 *
 * Loss scaling. A gradient buffer may hold its values multiplied by a
 * factor (ob_tensor.loss_scale): the seed's (static or dynamic scaling), or
 * one that grew layer by layer (adaptive scaling, where a Linear/Conv2d op
 * multiplies the gradient it passes down by its own gain). A contribution
 * is tagged with the scale of the gradient that produced it; when a tensor
 * receives contributions at different scales (a residual join), the buffer
 * is brought to the newest one's scale before it accumulates, and when its
 * producer consumes it, to the smallest scale any branch brought: the
 * common scale that cannot overflow. In fp32 buffers these rescalings are
 * exact for power-of-two scales. With scale 1 everywhere (no loss scaling)
 * none of this does anything.
 */
#ifndef OB_TAPE_H
#define OB_TAPE_H

#include "nn/ob_ctx.h"

#define OB_NODE_MAX_INPUTS 4

typedef struct ob_node ob_node;
typedef int (*ob_backward_fn)(ob_ctx *ctx, const ob_node *node);

struct ob_node {
    const char *op;
    ob_backward_fn backward;
    ob_tensor *out;
    ob_tensor *in[OB_NODE_MAX_INPUTS];
    int n_in;
    void *saved;
};

ob_node *ob_tape_record(ob_ctx *ctx, const char *op, ob_backward_fn backward, ob_tensor *out,
                        size_t saved_bytes, int n_in, ob_tensor *const *inputs);
/* The gradient buffer of t (allocated zeroed in the arena on first use for
 * step tensors); NULL when t does not require a gradient. */
ob_tensor *ob_grad_of(ob_ctx *ctx, ob_tensor *t);
/* The same for a contribution carrying `scale` instead of the running
 * node's output scale (a Linear/Conv2d op passing down its gain). */
ob_tensor *ob_grad_of_scaled(ob_ctx *ctx, ob_tensor *t, double scale);
/* The factor a gradient buffer's values carry (1 when untagged). */
double ob_grad_loss_scale(const ob_tensor *grad);
/* Divides a gradient buffer by its factor and tags it 1 (true values). */
void ob_grad_unscale(ob_tensor *grad);
/* Seeds d(loss)/d(loss) = 1 and runs every node's backward in reverse.
 * Returns 0, or the first nonzero code a backward returned. */
int ob_backward(ob_ctx *ctx, ob_tensor *loss);
/* The same with the seed at `loss_scale` instead of 1 (loss scaling). */
int ob_backward_scaled(ob_ctx *ctx, ob_tensor *loss, double loss_scale);
/* Runs the tape in reverse from whatever output gradients the caller has
 * already set (through ob_grad_of): a vector-Jacobian product. */
int ob_backward_run(ob_ctx *ctx);
int ob_tape_length(const ob_ctx *ctx);

#endif
