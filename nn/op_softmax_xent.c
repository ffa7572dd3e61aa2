/* Mean label-smoothed softmax cross-entropy: logits [N, classes] and I32
 * labels [N] give a [1] loss. The probabilities stay in the step arena for
 * the backward; labels get no gradient. */
#include "nn/ob_backend.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"

/* Node input: logits. */
typedef struct {
    ob_tensor *probs;
    const ob_tensor *labels;
    double smoothing;
} xent_saved;

static int xent_backward(ob_ctx *ctx, const ob_node *node) {
    const xent_saved *saved = node->saved;
    ob_tensor *dlogits = ob_grad_of(ctx, node->in[0]);
    if (dlogits)
        ob_backend_of(dlogits)->softmax_xent_backward(saved->probs, saved->labels, saved->smoothing,
                                                      node->out->grad, dlogits);
    return 0;
}

/* Labels are checked on the host (a device tensor's are downloaded first). */
static bool labels_ok(ob_ctx *ctx, const ob_tensor *labels, int64_t batch, int64_t classes) {
    if (labels->dtype != OB_I32 || labels->ndim != 1 || labels->shape[0] != batch) {
        ob_ctx_set_error(ctx, "softmax_cross_entropy: labels must be i32 [%lld]", (long long)batch);
        return false;
    }
    const int32_t *values = ob_tensor_host_data(ctx, labels);
    if (!values) return false;
    for (int64_t r = 0; r < batch; r++)
        if (values[r] < 0 || values[r] >= classes) {
            ob_ctx_set_error(ctx, "softmax_cross_entropy: label %d at row %lld is outside [0, %lld)",
                             values[r], (long long)r, (long long)classes);
            return false;
        }
    return true;
}

static bool xent_args_ok(ob_ctx *ctx, const ob_tensor *logits, const ob_tensor *labels, double smoothing) {
    if (logits->ndim != 2 || (logits->dtype != OB_F32 && logits->dtype != OB_F64)) {
        ob_ctx_set_error(ctx, "softmax_cross_entropy: logits must be a floating [batch, classes] tensor");
        return false;
    }
    if (!(smoothing >= 0.0 && smoothing <= 1.0)) {
        ob_ctx_set_error(ctx, "softmax_cross_entropy: label smoothing %g is outside [0, 1]", smoothing);
        return false;
    }
    return labels_ok(ctx, labels, logits->shape[0], logits->shape[1]);
}

ob_tensor *ob_softmax_cross_entropy(ob_ctx *ctx, ob_tensor *logits, const ob_tensor *labels,
                                    double label_smoothing) {
    if (!xent_args_ok(ctx, logits, labels, label_smoothing)) return NULL;
    ob_tensor *probs = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, logits->dtype, logits->ndim, logits->shape);
    ob_tensor *loss = probs ? ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, logits->dtype, OB_SHAPE(1)) : NULL;
    if (!loss) return NULL;
    if (ob_backend_of(logits)->softmax_xent_forward(ctx, logits, labels, label_smoothing, probs, loss))
        return NULL;
    ob_node *node =
        ob_tape_record(ctx, "softmax_cross_entropy", xent_backward, loss, sizeof(xent_saved), 1, &logits);
    if (node && !node->saved) return NULL; /* arena exhausted; the error is set */
    if (node) *(xent_saved *)node->saved = (xent_saved){probs, labels, label_smoothing};
    return loss;
}
