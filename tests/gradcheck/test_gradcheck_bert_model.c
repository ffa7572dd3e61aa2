/* A whole one-layer BERT against finite differences, in F64: embeddings,
 * an encoder layer with padding, the masked-LM head with its decoder tied
 * to the word embeddings, and the NSP head, differentiated through the
 * pretraining loss with dropout on (fixed step) at every site. Batch 2,
 * seq 6, hidden 8, 2 heads, FFN 16, vocab 12. The word embeddings get
 * gradient from the lookup and from the decoder, so they must add up. */
#include "gradcheck/gradcheck.h"
#include "workloads/bert/ob_bert_model.h"

#define N_PARAMS (5 + 16 + 9) /* embeddings, one layer, heads */

typedef struct {
    ob_bert_model *model;
    ob_bert_inputs in;
} bert_case;

static ob_tensor *pretraining_loss(ob_ctx *ctx, ob_tensor *const *inputs, void *user) {
    (void)inputs; /* the model's own parameters */
    bert_case *c = user;
    ob_bert_pass pass = {.training = true, .step = 5};
    ob_bert_outputs out;
    return ob_bert_forward(ctx, c->model, &c->in, &pass, &out) ? NULL
                                                                : ob_bert_loss(ctx, &out, c->in.next_sentence_labels);
}

int main(void) {
    ob_ctx *ctx = gc_ctx();
    ob_params *params = ob_params_new(OB_F64);
    ob_bert_config config = {.layers = 1, .hidden = 8, .heads = 2, .ffn = 16, .vocab = 12,
                             .max_positions = 8, .type_vocab = 2, .dropout = 0.1};
    bert_case c = {.model = ob_bert_model_new(ctx, params, &config)};
    /* [CLS] = 2, [SEP] = 3; the second sequence ends in padding and has one
     * padding prediction (label -1). */
    ob_tensor *t[6] = {
        gc_i32(ctx, OB_SHAPE(2, 6), (const int32_t[]){2, 5, 6, 3, 7, 3, 2, 8, 3, 9, 3, 0}),
        gc_i32(ctx, OB_SHAPE(2, 6), (const int32_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0}),
        gc_i32(ctx, OB_SHAPE(2, 6), (const int32_t[]){0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0}),
        gc_i32(ctx, OB_SHAPE(2, 2), (const int32_t[]){1, 4, 3, 0}),
        gc_i32(ctx, OB_SHAPE(2, 2), (const int32_t[]){10, 7, 11, -1}),
        gc_i32(ctx, OB_SHAPE(2), (const int32_t[]){0, 1}),
    };
    c.in = (ob_bert_inputs){.input_ids = t[0], .input_mask = t[1], .segment_ids = t[2],
                            .masked_lm_positions = t[3], .masked_lm_ids = t[4], .next_sentence_labels = t[5]};
    int failed = 0;
    if (!c.model || ob_params_count(params) != N_PARAMS) {
        printf("FAIL building the model: %s\n", ob_ctx_error(ctx));
        failed++;
    } else {
        gc_randomise_norms(params);
        ob_tensor *inputs[N_PARAMS];
        for (int i = 0; i < N_PARAMS; i++) inputs[i] = ob_params_at(params, i)->value;
        failed += gc_check("bert", ctx, pretraining_loss, inputs, N_PARAMS, &c, 200) != 0;
    }
    for (int i = 0; i < 6; i++) ob_tensor_free(ctx, t[i]);
    ob_bert_model_free(c.model);
    ob_params_free(ctx, params);
    ob_ctx_free(ctx);
    printf("%d passed, %d failed\n", failed == 0, failed);
    return failed != 0;
}
