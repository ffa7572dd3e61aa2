/* Row gathers against finite differences: an embedding lookup with
 * repeated ids (their gradients must add up), ids of two dims, and the
 * masked-LM selection with padding predictions (label -1), alone and under
 * the softmax cross-entropy it feeds. */
#include "gradcheck/gradcheck.h"
#include "nn/ob_ops.h"

typedef struct {
    const ob_tensor *ids;
} embedding_case;

static ob_tensor *embedding_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    const embedding_case *c = user;
    return ob_embedding(ctx, in[0], c->ids);
}

typedef struct {
    const ob_tensor *positions, *labels;
} mlm_case;

static ob_tensor *mlm_gather_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    const mlm_case *c = user;
    ob_tensor *selected_labels;
    return ob_masked_lm_gather(ctx, in[0], c->positions, c->labels, &selected_labels);
}

/* Mean cross-entropy over the real predictions of logits = gathered rows. */
static ob_tensor *mlm_loss_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    const mlm_case *c = user;
    ob_tensor *selected_labels = NULL;
    ob_tensor *logits = ob_masked_lm_gather(ctx, in[0], c->positions, c->labels, &selected_labels);
    return logits ? ob_softmax_cross_entropy(ctx, logits, selected_labels, 0.0) : NULL;
}

int main(void) {
    ob_ctx *ctx = gc_ctx();
    int failed = 0, passed = 0;
    ob_tensor *table = gc_input(ctx, OB_SHAPE(7, 5), 1, -1, 1);
    ob_tensor *inputs[1] = {table};
    /* ids 3 and 0 repeat; rows 2 and 6 are never looked up (zero gradient). */
    ob_tensor *ids = gc_i32(ctx, OB_SHAPE(2, 4), (const int32_t[]){3, 0, 3, 1, 5, 3, 0, 4});
    embedding_case lookup = {ids};
    gc_check("embedding repeated ids", ctx, embedding_forward, inputs, 1, &lookup, 1000) ? failed++
                                                                                         : passed++;

    /* Two sequences of 4 tokens with 3 prediction slots each; the second
     * sequence's last slot is padding, and so is the first's middle one.
     * The token rows have 6 features, read as 6-class logits by the loss. */
    ob_tensor *x = gc_input(ctx, OB_SHAPE(2 * 4, 6), 2, -2, 2);
    ob_tensor *positions = gc_i32(ctx, OB_SHAPE(2, 3), (const int32_t[]){1, 0, 3, 2, 1, 0});
    ob_tensor *labels = gc_i32(ctx, OB_SHAPE(2, 3), (const int32_t[]){4, -1, 0, 5, 2, -1});
    mlm_case mlm = {positions, labels};
    ob_tensor *x_in[1] = {x};
    gc_check("masked_lm_gather", ctx, mlm_gather_forward, x_in, 1, &mlm, 1000) ? failed++ : passed++;
    gc_check("masked_lm_gather + xent", ctx, mlm_loss_forward, x_in, 1, &mlm, 1000) ? failed++ : passed++;

    ob_tensor_free(ctx, ids);
    ob_tensor_free(ctx, positions);
    ob_tensor_free(ctx, labels);
    gc_free_input(ctx, table);
    gc_free_input(ctx, x);
    ob_ctx_free(ctx);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
