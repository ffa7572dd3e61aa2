/* The bert workload's model: parameter counts of the three presets against
 * hand arithmetic, the counting formula against a built model, parameter
 * names, a forward pass's shapes and finite loss, and the workload on
 * synthetic data (a training loss, and evaluation sums over every real
 * prediction and every sequence). */
#include <math.h>
#include <string.h>

#include "nn/ob_ops.h"
#include "ob_check.h"
#include "workloads/bert/ob_bert_model.h"
#include "workloads/ob_workload.h"

/* Tensor by tensor, as a checkpoint lists them, for hidden h, FFN f, vocab
 * v, max positions p, 2 token types and `layers` layers. */
static int64_t hand_count(int64_t layers, int64_t h, int64_t f, int64_t v, int64_t p) {
    int64_t word = v * h, position = p * h, token_type = 2 * h, embedding_norm = h + h;
    int64_t query = h * h + h, key = query, value = query, attention_out = query, attention_norm = h + h;
    int64_t intermediate = h * f + f, output = f * h + h, output_norm = h + h;
    int64_t pooler = h * h + h, transform = h * h + h, transform_norm = h + h, decoder_bias = v;
    int64_t nsp = h * 2 + 2;
    int64_t per_layer = query + key + value + attention_out + attention_norm + intermediate + output + output_norm;
    return word + position + token_type + embedding_norm + layers * per_layer + pooler + transform +
           transform_norm + decoder_bias + nsp;
}

static void test_preset_counts(ob_ctx *ctx) {
    const ob_workload *bert = ob_workload_find("bert");
    CHECK(bert != NULL);
    if (!bert) return;
    /* BERT-Large with its pretraining heads: Hugging Face's
     * BertForPreTraining count for bert-large-uncased. */
    CHECK(hand_count(24, 1024, 4096, 30522, 512) == 336226108);
    CHECK(bert->count_params(ctx, "full") == hand_count(24, 1024, 4096, 30522, 512));
    CHECK(bert->count_params(ctx, "workstation") == hand_count(4, 256, 1024, 8192, 128));
    CHECK(bert->count_params(ctx, "smoke") == hand_count(2, 64, 256, 512, 128));
}

/* The formula the presets use against the registry of a built model. */
static void test_formula_matches_model(ob_ctx *ctx) {
    ob_bert_config config = {.layers = 2, .hidden = 64, .heads = 2, .ffn = 256, .vocab = 512,
                             .max_positions = 128, .type_vocab = 2, .dropout = 0.1};
    ob_params *params = ob_params_new(OB_F32);
    ob_bert_model *model = ob_bert_model_new(ctx, params, &config);
    CHECK(model != NULL);
    if (model) {
        CHECK(ob_params_numel(params) == ob_bert_param_count(&config));
        CHECK(ob_params_numel(params) == hand_count(2, 64, 256, 512, 128));
        /* 5 embedding tensors, 16 per layer, 9 in the heads */
        CHECK(ob_params_count(params) == 5 + 2 * 16 + 9);
        CHECK(strcmp(ob_params_at(params, 0)->name, "embeddings.word_embeddings.weight") == 0);
        CHECK(strcmp(ob_params_at(params, 5 + 16)->name, "encoder.layer.1.attention.self.query.weight") == 0);
        CHECK(strcmp(ob_params_at(params, ob_params_count(params) - 1)->name, "cls.seq_relationship.bias") == 0);
    }
    ob_bert_model_free(model);
    ob_params_free(ctx, params);
}

static ob_tensor *i32_tensor(ob_ctx *ctx, int ndim, const int64_t *shape, const int32_t *values) {
    ob_tensor *t = ob_tensor_new(ctx, OB_MEM_DATA, OB_I32, ndim, shape);
    if (t) memcpy(t->data, values, ob_tensor_bytes(t));
    return t;
}

/* Batch 2 of 6 tokens, the second ending in padding, 3 real predictions. */
static void test_forward_shapes(ob_ctx *ctx) {
    ob_bert_config config = {.layers = 2, .hidden = 16, .heads = 4, .ffn = 32, .vocab = 20,
                             .max_positions = 8, .type_vocab = 2, .dropout = 0.1};
    ob_params *params = ob_params_new(OB_F32);
    ob_bert_model *model = ob_bert_model_new(ctx, params, &config);
    ob_tensor *t[6] = {
        i32_tensor(ctx, OB_SHAPE(2, 6), (const int32_t[]){2, 7, 8, 3, 9, 3, 2, 10, 3, 11, 3, 0}),
        i32_tensor(ctx, OB_SHAPE(2, 6), (const int32_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0}),
        i32_tensor(ctx, OB_SHAPE(2, 6), (const int32_t[]){0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0}),
        i32_tensor(ctx, OB_SHAPE(2, 2), (const int32_t[]){1, 4, 3, 0}),
        i32_tensor(ctx, OB_SHAPE(2, 2), (const int32_t[]){7, 9, 11, -1}),
        i32_tensor(ctx, OB_SHAPE(2), (const int32_t[]){0, 1}),
    };
    ob_bert_inputs in = {.input_ids = t[0], .input_mask = t[1], .segment_ids = t[2],
                         .masked_lm_positions = t[3], .masked_lm_ids = t[4], .next_sentence_labels = t[5]};
    ob_bert_pass pass = {.training = true, .step = 1};
    ob_bert_outputs out;
    CHECK(model && t[5] && ob_bert_forward(ctx, model, &in, &pass, &out) == 0);
    if (model && t[5] && out.nsp_logits) {
        CHECK(out.mlm_logits->shape[0] == 3 && out.mlm_logits->shape[1] == 20);
        CHECK(out.mlm_labels->numel == 3 && ((int32_t *)out.mlm_labels->data)[2] == 11);
        CHECK(out.nsp_logits->shape[0] == 2 && out.nsp_logits->shape[1] == 2);
        ob_tensor *loss = ob_bert_loss(ctx, &out, t[5]);
        /* about ln 20 + ln 2 at initialisation */
        CHECK(loss && isfinite(ob_f32(loss)[0]) && fabs(ob_f32(loss)[0] - (log(20.0) + log(2.0))) < 1.5);
    }
    ob_ctx_step_reset(ctx);
    for (int i = 0; i < 6; i++) ob_tensor_free(ctx, t[i]);
    ob_bert_model_free(model);
    ob_params_free(ctx, params);
}

/* Synthetic sequences are 128 tokens with 20 real predictions each. */
static void test_synthetic_workload(ob_ctx *ctx) {
    const ob_workload *bert = ob_workload_find("bert");
    ob_workload_options options = {.preset = "smoke", .data_dir = "synthetic", .train_limit = 8, .eval_limit = 6,
                                   .global_batch = 4, .rank = 0, .world_size = 1, .seed = 3};
    ob_workload_run *run = NULL;
    char err[256] = "";
    CHECK(bert && bert->create(ctx, &options, &run, err, sizeof err) == 0);
    if (!run) {
        printf("create: %s\n", err);
        return;
    }
    CHECK(bert->batches_per_epoch(run) == 2);
    CHECK(bert->load_batch(run, 0, 1, err, sizeof err) == 0);
    ob_tensor *loss = bert->forward_loss(ctx, run);
    CHECK(loss && isfinite(ob_f32(loss)[0]));
    ob_ctx_step_reset(ctx);
    ob_eval_result result;
    CHECK(bert->evaluate(ctx, run, &result, err, sizeof err) == 0);
    CHECK(result.samples == 6 * 20 && result.secondary_samples[0] == 6);
    CHECK(result.metric >= 0 && result.metric <= (double)result.samples);
    CHECK(isfinite(result.loss) && result.loss > 0);
    bert->destroy(ctx, run);
}

int main(void) {
    ob_ctx_config config = {.threads = 2, .seed = 1, .rank = 0, .world_size = 1};
    ob_ctx *ctx = ob_ctx_new(&config);
    test_preset_counts(ctx);
    test_formula_matches_model(ctx);
    test_forward_shapes(ctx);
    test_synthetic_workload(ctx);
    ob_ctx_free(ctx);
    return report_checks();
}
