/* Layer norm over the last dim (Ba et al. 2016), as BERT uses it: each
 * token's features are normalised by their own mean and variance, so unlike
 * batch-norm there are no running statistics and training and evaluation
 * compute the same thing. The row means and 1/sqrt(var + eps) stay in the
 * step arena for the backward. */
#include "nn/ob_backend.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"

/* Node inputs: x, gamma, beta. */
typedef struct {
    ob_tensor *mean, *invstd;
} layernorm_saved;

/* x^ = (x - mean) invstd, y = gamma x^ + beta:
 *   dx += invstd (g - mean(g) - x^ mean(g x^)), g = dy gamma;
 *   dgamma += sum_rows dy x^;  dbeta += sum_rows dy */
static int layernorm_backward(ob_ctx *ctx, const ob_node *node) {
    const layernorm_saved *saved = node->saved;
    ob_tensor *x = node->in[0], *gamma = node->in[1], *dy = node->out->grad;
    ob_backend_of(dy)->layernorm_backward(x, gamma, saved->mean, saved->invstd, dy, ob_grad_of(ctx, x),
                                          ob_grad_of(ctx, gamma), ob_grad_of(ctx, node->in[2]));
    return 0;
}

static bool layernorm_args_ok(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *beta,
                              double eps) {
    if ((x->dtype != OB_F32 && x->dtype != OB_F64) || x->numel == 0) {
        ob_ctx_set_error(ctx, "layernorm: x must be a non-empty floating tensor [..., width]");
        return false;
    }
    int64_t width = x->shape[x->ndim - 1];
    for (int i = 0; i < 2; i++) {
        const ob_tensor *t = i == 0 ? gamma : beta;
        if (!t || t->ndim != 1 || t->shape[0] != width || t->dtype != x->dtype || t->device != x->device) {
            ob_ctx_set_error(ctx, "layernorm: %s must be [%lld] %s", i == 0 ? "gamma" : "beta",
                             (long long)width, ob_dtype_name(x->dtype));
            return false;
        }
    }
    if (!(eps > 0.0)) {
        ob_ctx_set_error(ctx, "layernorm: eps must be > 0, got %g", eps);
        return false;
    }
    return true;
}

/* y = gamma (x - mean) / sqrt(var + eps) + beta over each row's last dim */
ob_tensor *ob_layernorm(ob_ctx *ctx, ob_tensor *x, ob_tensor *gamma, ob_tensor *beta, double eps) {
    if (!layernorm_args_ok(ctx, x, gamma, beta, eps)) return NULL;
    int64_t rows = x->numel / x->shape[x->ndim - 1];
    ob_tensor *y = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, x->dtype, x->ndim, x->shape);
    ob_tensor *mean = y ? ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, x->dtype, OB_SHAPE(rows)) : NULL;
    ob_tensor *invstd = mean ? ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, x->dtype, OB_SHAPE(rows)) : NULL;
    if (!invstd) return NULL;
    ob_backend_of(x)->layernorm_forward(x, gamma, beta, eps, y, mean, invstd);
    ob_tensor *inputs[3] = {x, gamma, beta};
    ob_node *node =
        ob_tape_record(ctx, "layernorm", layernorm_backward, y, sizeof(layernorm_saved), 3, inputs);
    if (node && !node->saved) return NULL; /* arena exhausted; the error is set */
    if (node) *(layernorm_saved *)node->saved = (layernorm_saved){mean, invstd};
    return y;
}
