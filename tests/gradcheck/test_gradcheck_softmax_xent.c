/* Softmax cross-entropy against finite differences: gradient of the
 * logits, without and with label smoothing. */
#include "gradcheck/gradcheck.h"
#include "nn/ob_ops.h"

typedef struct {
    const ob_tensor *labels;
    double smoothing;
} xent_case;

static ob_tensor *xent_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    const xent_case *c = user;
    return ob_softmax_cross_entropy(ctx, in[0], c->labels, c->smoothing);
}

int main(void) {
    ob_ctx *ctx = gc_ctx();
    int failed = 0, passed = 0;
    ob_tensor *logits = gc_input(ctx, OB_SHAPE(4, 6), 1, -3, 3);
    ob_tensor *labels = ob_tensor_new(ctx, OB_MEM_DATA, OB_I32, OB_SHAPE(4));
    const int32_t label_values[4] = {0, 5, 2, 2};
    memcpy(labels->data, label_values, sizeof label_values);
    ob_tensor *inputs[1] = {logits};
    xent_case plain = {labels, 0.0}, smoothed = {labels, 0.1};
    int rc = gc_check("softmax_xent smoothing 0", ctx, xent_forward, inputs, 1, &plain, 1000);
    rc ? failed++ : passed++;
    rc = gc_check("softmax_xent smoothing 0.1", ctx, xent_forward, inputs, 1, &smoothed, 1000);
    rc ? failed++ : passed++;
    ob_tensor_free(ctx, labels);
    gc_free_input(ctx, logits);
    ob_ctx_free(ctx);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
