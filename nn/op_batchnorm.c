/* Batch-norm over all but the last (channel) dim.
 *
 * Training mode normalises with the batch statistics (every rank's batch
 * under synchronized batch-norm, ob_ctx_set_batchnorm_reduce), updates the
 * running ones in place and records a node; the batch mean and 1/sqrt(var + eps)
 * are kept in the step arena for the backward.
 * Eval mode normalises with the running statistics and records NO node:
 * evaluation runs with gradient recording off, and no workload trains
 * through frozen statistics, so its output is a constant to autograd. */
#include "nn/ob_backend.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"

/* Node inputs: x, gamma, beta. */
typedef struct {
    ob_tensor *mean, *invstd;
} batchnorm_saved;

static int batchnorm_backward(ob_ctx *ctx, const ob_node *node) {
    const batchnorm_saved *saved = node->saved;
    ob_tensor *x = node->in[0], *gamma = node->in[1], *beta = node->in[2], *dy = node->out->grad;
    const ob_backend *backend = ob_backend_of(dy);
    return backend->batchnorm_backward(ctx, x, gamma, saved->mean, saved->invstd, dy, ob_grad_of(ctx, x),
                                       ob_grad_of(ctx, gamma), ob_grad_of(ctx, beta), ob_ctx_batchnorm_reduce(ctx));
}

/* A per-channel vector (gamma, beta, running stats; NULL allowed) must be
 * [channels] in x's dtype, on x's device. */
static bool channel_vector_ok(ob_ctx *ctx, const char *what, const ob_tensor *t, const ob_tensor *x) {
    int64_t channels = x->shape[x->ndim - 1];
    if (!t || (t->ndim == 1 && t->shape[0] == channels && t->dtype == x->dtype && t->device == x->device))
        return true;
    ob_ctx_set_error(ctx, "batchnorm: %s must be [%lld] %s", what, (long long)channels,
                     ob_dtype_name(x->dtype));
    return false;
}

static bool batchnorm_args_ok(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *beta,
                              const ob_tensor *running_mean, const ob_tensor *running_var, bool training) {
    if (x->ndim < 2 || (x->dtype != OB_F32 && x->dtype != OB_F64)) {
        ob_ctx_set_error(ctx, "batchnorm: x must be a floating tensor [..., channels] with 2+ dims");
        return false;
    }
    if (!gamma || !beta) {
        ob_ctx_set_error(ctx, "batchnorm: gamma and beta are required");
        return false;
    }
    if (!channel_vector_ok(ctx, "gamma", gamma, x) || !channel_vector_ok(ctx, "beta", beta, x) ||
        !channel_vector_ok(ctx, "running_mean", running_mean, x) ||
        !channel_vector_ok(ctx, "running_var", running_var, x))
        return false;
    int64_t rows = x->numel / x->shape[x->ndim - 1];
    if (training && rows < 2) {
        ob_ctx_set_error(ctx, "batchnorm: training needs more than one value per channel, got %lld",
                         (long long)rows);
        return false;
    }
    if (!training && (!running_mean || !running_var)) {
        ob_ctx_set_error(ctx, "batchnorm: eval mode needs running_mean and running_var");
        return false;
    }
    return true;
}

ob_tensor *ob_batchnorm(ob_ctx *ctx, ob_tensor *x, ob_tensor *gamma, ob_tensor *beta, ob_tensor *running_mean,
                        ob_tensor *running_var, bool training, double momentum, double eps) {
    if (!batchnorm_args_ok(ctx, x, gamma, beta, running_mean, running_var, training)) return NULL;
    const ob_backend *backend = ob_backend_of(x);
    ob_tensor *y = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, x->dtype, x->ndim, x->shape);
    if (!y) return NULL;
    if (!training) {
        backend->batchnorm_forward_eval(x, gamma, beta, running_mean, running_var, eps, y);
        return y;
    }
    ob_tensor *mean = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, x->dtype, OB_SHAPE(gamma->shape[0]));
    ob_tensor *invstd =
        mean ? ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, x->dtype, OB_SHAPE(gamma->shape[0])) : NULL;
    if (!invstd) return NULL;
    if (backend->batchnorm_forward_train(ctx, x, gamma, beta, y, mean, invstd, running_mean, running_var,
                                         momentum, eps, ob_ctx_batchnorm_reduce(ctx)))
        return NULL; /* the backend set the reason */
    ob_tensor *inputs[3] = {x, gamma, beta};
    ob_node *node =
        ob_tape_record(ctx, "batchnorm", batchnorm_backward, y, sizeof(batchnorm_saved), 3, inputs);
    if (node && !node->saved) return NULL; /* arena exhausted; the error is set */
    if (node) *(batchnorm_saved *)node->saved = (batchnorm_saved){mean, invstd};
    return y;
}
