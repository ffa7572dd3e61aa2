/* Attention pieces against finite differences, with padding: the masked
 * softmax (one sequence partly padded, one entirely), the heads transposes,
 * and whole attention (q, k, v gradients) with queries != keys, without and
 * with dropout on the probabilities. */
#include "gradcheck/gradcheck.h"
#include "nn/ob_ops.h"

#define BATCH 3
#define HEADS 2
#define QUERIES 4
#define KEYS 5
#define HEAD_DIM 3

typedef struct {
    const ob_tensor *key_mask;
    const ob_dropout_spec *dropout;
} attention_case;

static ob_tensor *softmax_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    const attention_case *c = user;
    return ob_masked_softmax(ctx, in[0], c->key_mask);
}

static ob_tensor *attention_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    const attention_case *c = user;
    return ob_attention(ctx, in[0], in[1], in[2], c->key_mask, c->dropout);
}

/* Each transpose is checked alone: composed, a wrong swap could undo itself. */
static ob_tensor *split_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    (void)user;
    return ob_split_heads(ctx, in[0], BATCH, HEADS);
}

static ob_tensor *merge_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    (void)user;
    return ob_merge_heads(ctx, in[0]);
}

int main(void) {
    ob_ctx *ctx = gc_ctx();
    int failed = 0, passed = 0;
    /* Sequence 0 is all real, 1 has two padded keys, 2 is all padding. */
    ob_tensor *key_mask =
        gc_i32(ctx, OB_SHAPE(BATCH, KEYS), (const int32_t[]){1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0});
    ob_dropout_spec dropout = {.p = 0.25, .training = true, .step = 5, .site = 3};
    attention_case plain = {key_mask, NULL}, dropped = {key_mask, &dropout};

    ob_tensor *scores = gc_input(ctx, OB_SHAPE(BATCH, HEADS, QUERIES, KEYS), 1, -3, 3);
    ob_tensor *softmax_in[1] = {scores};
    gc_check("masked_softmax", ctx, softmax_forward, softmax_in, 1, &plain, 1000) ? failed++ : passed++;

    ob_tensor *q = gc_input(ctx, OB_SHAPE(BATCH, HEADS, QUERIES, HEAD_DIM), 2, -1, 1);
    ob_tensor *k = gc_input(ctx, OB_SHAPE(BATCH, HEADS, KEYS, HEAD_DIM), 3, -1, 1);
    ob_tensor *v = gc_input(ctx, OB_SHAPE(BATCH, HEADS, KEYS, HEAD_DIM + 1), 4, -1, 1);
    ob_tensor *attention_in[3] = {q, k, v};
    gc_check("attention", ctx, attention_forward, attention_in, 3, &plain, 1000) ? failed++ : passed++;
    gc_check("attention dropout", ctx, attention_forward, attention_in, 3, &dropped, 1000) ? failed++
                                                                                           : passed++;

    ob_tensor *tokens = gc_input(ctx, OB_SHAPE(BATCH * KEYS, HEADS * HEAD_DIM), 5, -1, 1);
    ob_tensor *split_in[1] = {tokens}, *merge_in[1] = {v};
    gc_check("split_heads", ctx, split_forward, split_in, 1, NULL, 1000) ? failed++ : passed++;
    gc_check("merge_heads", ctx, merge_forward, merge_in, 1, NULL, 1000) ? failed++ : passed++;

    ob_tensor_free(ctx, key_mask);
    gc_free_input(ctx, scores);
    gc_free_input(ctx, q);
    gc_free_input(ctx, k);
    gc_free_input(ctx, v);
    gc_free_input(ctx, tokens);
    ob_ctx_free(ctx);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
