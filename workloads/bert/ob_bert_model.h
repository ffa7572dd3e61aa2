/* ob_bert_model: the BERT encoder with its pretraining heads, built from
 * the engine's ops (nn/ob_ops.h) and layers.
 *
 * Post-LN, as the original:
 *   h0 = dropout(layernorm(word[id] + position[s] + token_type[segment]))
 *   per layer: a = layernorm(h + dropout(W_o attention(h W_q, h W_k, h W_v, mask)))
 *              h = layernorm(a + dropout(W_2 gelu(W_1 a)))
 *   masked LM: logits = layernorm(gelu(W_t h[masked])) word^T + bias
 *              (decoder tied to the word embeddings, only the masked rows)
 *   next sentence: logits = W_c tanh(W_p h[CLS])
 * Parameter names follow the published checkpoints' layout
 * ("encoder.layer.0.attention.self.query.weight"). */
#ifndef OB_BERT_MODEL_H
#define OB_BERT_MODEL_H

#include "nn/ob_layers.h"

typedef struct {
    int layers, hidden, heads, ffn;
    int vocab, max_positions, type_vocab;
    double dropout; /* hidden and attention-probability dropout (BERT: 0.1) */
} ob_bert_config;

/* One batch, I32 tensors that stay alive until the backward has run. */
typedef struct {
    const ob_tensor *input_ids, *segment_ids, *input_mask; /* [batch, seq] */
    const ob_tensor *masked_lm_positions, *masked_lm_ids;  /* [batch, max_pred]; id -1 = padding */
    const ob_tensor *next_sentence_labels;                 /* [batch] */
} ob_bert_inputs;

typedef struct {
    ob_tensor *mlm_logits;  /* [real predictions, vocab] */
    ob_tensor *mlm_labels;  /* I32 [real predictions] */
    ob_tensor *nsp_logits;  /* [batch, 2] */
} ob_bert_outputs;

/* Which dropout masks a pass draws: training off = none. */
typedef struct {
    bool training;
    uint64_t step;
} ob_bert_pass;

typedef struct ob_bert_model ob_bert_model;

/* The number of trainable scalars the model of `config` registers, without
 * building it (BERT-Large's tables would take seconds and gigabytes). */
int64_t ob_bert_param_count(const ob_bert_config *config);
/* Registers every parameter in params; NULL when out of memory. */
ob_bert_model *ob_bert_model_new(ob_ctx *ctx, ob_params *params, const ob_bert_config *config);
void ob_bert_model_free(ob_bert_model *model);
/* Heads' logits for one batch; 0, or 1 with one line in ob_ctx_error. */
int ob_bert_forward(ob_ctx *ctx, ob_bert_model *model, const ob_bert_inputs *in, const ob_bert_pass *pass,
                    ob_bert_outputs *out);
/* Pretraining loss: mean masked-LM cross-entropy + mean NSP cross-entropy. */
ob_tensor *ob_bert_loss(ob_ctx *ctx, const ob_bert_outputs *out, const ob_tensor *next_sentence_labels);

#endif
