/* The BERT encoder and its masked-LM and next-sentence heads (see ob_bert_model.h). */
#include <stdio.h>
#include <stdlib.h>

#include "nn/ob_ops.h"
#include "workloads/bert/ob_bert_model.h"

#define BERT_LN_EPS 1e-12
#define BERT_INIT_STD 0.02
/* Dropout sites: 0 for the embeddings, then three per encoder layer. */
#define SITES_PER_LAYER 3

typedef struct {
    ob_linear_layer *query, *key, *value, *attention_out, *ffn_in, *ffn_out;
    ob_layernorm_layer *attention_norm, *ffn_norm;
} bert_layer;

struct ob_bert_model {
    ob_bert_config config;
    ob_embedding_layer *words, *positions, *token_types;
    ob_layernorm_layer *embedding_norm;
    bert_layer *layers;
    ob_linear_layer *pooler, *transform, *nsp_classifier;
    ob_layernorm_layer *transform_norm;
    ob_bias_layer *decoder_bias;
};

/* "encoder.layer.<index>.<part>" in name; false when it does not fit. */
static bool layer_part_name(char name[OB_LAYER_NAME_MAX], int index, const char *part) {
    int length = snprintf(name, OB_LAYER_NAME_MAX, "encoder.layer.%d.%s", index, part);
    return length > 0 && length < OB_LAYER_NAME_MAX;
}

static ob_linear_layer *linear_in(ob_ctx *ctx, ob_params *params, int index, const char *part, int in, int out) {
    char name[OB_LAYER_NAME_MAX];
    return layer_part_name(name, index, part) ? ob_linear_layer_new(ctx, params, name, in, out, true) : NULL;
}

static ob_layernorm_layer *norm_in(ob_ctx *ctx, ob_params *params, int index, const char *part, int width) {
    char name[OB_LAYER_NAME_MAX];
    return layer_part_name(name, index, part) ? ob_layernorm_layer_new(ctx, params, name, width, BERT_LN_EPS)
                                              : NULL;
}

/* 0, or 1 when out of memory. */
static int build_layer(ob_ctx *ctx, ob_params *params, const ob_bert_config *c, int i, bert_layer *l) {
    int h = c->hidden;
    l->query = linear_in(ctx, params, i, "attention.self.query", h, h);
    l->key = l->query ? linear_in(ctx, params, i, "attention.self.key", h, h) : NULL;
    l->value = l->key ? linear_in(ctx, params, i, "attention.self.value", h, h) : NULL;
    l->attention_out = l->value ? linear_in(ctx, params, i, "attention.output.dense", h, h) : NULL;
    l->attention_norm = l->attention_out ? norm_in(ctx, params, i, "attention.output.LayerNorm", h) : NULL;
    l->ffn_in = l->attention_norm ? linear_in(ctx, params, i, "intermediate.dense", h, c->ffn) : NULL;
    l->ffn_out = l->ffn_in ? linear_in(ctx, params, i, "output.dense", c->ffn, h) : NULL;
    l->ffn_norm = l->ffn_out ? norm_in(ctx, params, i, "output.LayerNorm", h) : NULL;
    return l->ffn_norm == NULL;
}

static int build_embeddings(ob_ctx *ctx, ob_params *params, ob_bert_model *m) {
    const ob_bert_config *c = &m->config;
    m->words = ob_embedding_layer_new(ctx, params, "embeddings.word_embeddings", c->vocab, c->hidden,
                                      BERT_INIT_STD);
    m->positions = m->words ? ob_embedding_layer_new(ctx, params, "embeddings.position_embeddings",
                                                     c->max_positions, c->hidden, BERT_INIT_STD)
                            : NULL;
    m->token_types = m->positions ? ob_embedding_layer_new(ctx, params, "embeddings.token_type_embeddings",
                                                           c->type_vocab, c->hidden, BERT_INIT_STD)
                                  : NULL;
    m->embedding_norm =
        m->token_types ? ob_layernorm_layer_new(ctx, params, "embeddings.LayerNorm", c->hidden, BERT_LN_EPS) : NULL;
    return m->embedding_norm == NULL;
}

static int build_heads(ob_ctx *ctx, ob_params *params, ob_bert_model *m) {
    int h = m->config.hidden;
    m->pooler = ob_linear_layer_new(ctx, params, "pooler.dense", h, h, true);
    m->transform = m->pooler ? ob_linear_layer_new(ctx, params, "cls.predictions.transform.dense", h, h, true)
                             : NULL;
    m->transform_norm = m->transform ? ob_layernorm_layer_new(ctx, params, "cls.predictions.transform.LayerNorm",
                                                              h, BERT_LN_EPS)
                                     : NULL;
    m->decoder_bias = m->transform_norm ? ob_bias_layer_new(ctx, params, "cls.predictions", m->config.vocab) : NULL;
    m->nsp_classifier =
        m->decoder_bias ? ob_linear_layer_new(ctx, params, "cls.seq_relationship", h, 2, true) : NULL;
    return m->nsp_classifier == NULL;
}

ob_bert_model *ob_bert_model_new(ob_ctx *ctx, ob_params *params, const ob_bert_config *config) {
    ob_bert_model *m = calloc(1, sizeof *m);
    bert_layer *layers = m ? calloc((size_t)config->layers, sizeof *layers) : NULL;
    if (!layers) {
        free(m);
        return NULL;
    }
    m->config = *config;
    m->layers = layers;
    int failed = build_embeddings(ctx, params, m);
    for (int i = 0; i < config->layers && !failed; i++) failed = build_layer(ctx, params, config, i, &layers[i]);
    if (failed || build_heads(ctx, params, m)) {
        ob_bert_model_free(m);
        return NULL;
    }
    return m;
}

int64_t ob_bert_param_count(const ob_bert_config *c) {
    int64_t h = c->hidden, f = c->ffn, v = c->vocab;
    int64_t norm = 2 * h, dense = h * h + h;
    int64_t embeddings = (v + c->max_positions + c->type_vocab) * h + norm;
    /* q, k, v, output; FFN in and out; two norms */
    int64_t layer = 4 * dense + (h * f + f) + (f * h + h) + 2 * norm;
    /* pooler; MLM transform, its norm and the output bias (decoder tied); NSP */
    int64_t heads = dense + dense + norm + v + 2 * h + 2;
    return embeddings + c->layers * layer + heads;
}

/* The layers belong to the parameter registry; this frees the model's own part. */
void ob_bert_model_free(ob_bert_model *model) {
    if (!model) return;
    free(model->layers);
    free(model);
}

static ob_dropout_spec dropout_at(const ob_bert_model *m, const ob_bert_pass *pass, uint32_t site) {
    return (ob_dropout_spec){.p = m->config.dropout, .training = pass->training, .step = pass->step, .site = site};
}

/* I32 [count] with entry i = (i % period) * stride: the position of each
 * token (period seq, stride 1) or the first row of each sequence (period
 * count, stride seq). In the step arena. */
static ob_tensor *index_ramp(ob_ctx *ctx, int64_t count, int64_t period, int64_t stride) {
    ob_tensor *t = ob_tensor_temp(ctx, OB_MEM_DATA, OB_I32, OB_SHAPE(count));
    if (!t) return NULL;
    int32_t *v = t->data;
    for (int64_t i = 0; i < count; i++) v[i] = (int32_t)((i % period) * stride);
    return t;
}

/* layernorm(residual + dropout(branch)); NULL passes through. */
static ob_tensor *add_norm(ob_ctx *ctx, ob_layernorm_layer *norm, ob_tensor *residual, ob_tensor *branch,
                           const ob_dropout_spec *dropout) {
    ob_tensor *dropped = branch ? ob_dropout(ctx, branch, dropout) : NULL;
    ob_tensor *sum = dropped ? ob_add(ctx, residual, dropped) : NULL;
    return sum ? ob_layernorm_layer_forward(ctx, norm, sum) : NULL;
}

/* h0 = dropout(layernorm(word + position + token_type)): [batch * seq, hidden]. */
static ob_tensor *embed(ob_ctx *ctx, ob_bert_model *m, const ob_bert_inputs *in, const ob_bert_pass *pass) {
    int64_t batch = in->input_ids->shape[0], seq = in->input_ids->shape[1];
    ob_tensor *position_ids = index_ramp(ctx, batch * seq, seq, 1);
    ob_tensor *words = position_ids ? ob_embedding_layer_forward(ctx, m->words, in->input_ids) : NULL;
    ob_tensor *positions = words ? ob_embedding_layer_forward(ctx, m->positions, position_ids) : NULL;
    ob_tensor *types = positions ? ob_embedding_layer_forward(ctx, m->token_types, in->segment_ids) : NULL;
    ob_tensor *placed = types ? ob_add(ctx, words, positions) : NULL;
    ob_tensor *sum = placed ? ob_add(ctx, placed, types) : NULL;
    ob_tensor *normed = sum ? ob_layernorm_layer_forward(ctx, m->embedding_norm, sum) : NULL;
    ob_dropout_spec dropout = dropout_at(m, pass, 0);
    return normed ? ob_dropout(ctx, normed, &dropout) : NULL;
}

/* The heads of linear(x): [batch, heads, seq, hidden / heads]; NULL passes through. */
static ob_tensor *heads_of(ob_ctx *ctx, const ob_bert_model *m, ob_linear_layer *linear, ob_tensor *x,
                           int64_t batch) {
    ob_tensor *y = x ? ob_linear_layer_forward(ctx, linear, x) : NULL;
    return y ? ob_split_heads(ctx, y, batch, m->config.heads) : NULL;
}

static ob_tensor *encoder_layer(ob_ctx *ctx, ob_bert_model *m, int index, ob_tensor *x, const ob_tensor *mask,
                                const ob_bert_pass *pass) {
    bert_layer *l = &m->layers[index];
    int64_t batch = mask->shape[0];
    uint32_t site = 1 + (uint32_t)(index * SITES_PER_LAYER);
    ob_dropout_spec probs_dropout = dropout_at(m, pass, site), attention_dropout = dropout_at(m, pass, site + 1),
                    ffn_dropout = dropout_at(m, pass, site + 2);
    ob_tensor *q = heads_of(ctx, m, l->query, x, batch), *k = heads_of(ctx, m, l->key, x, batch);
    ob_tensor *v = heads_of(ctx, m, l->value, x, batch);
    ob_tensor *context = q && k && v ? ob_attention(ctx, q, k, v, mask, &probs_dropout) : NULL;
    ob_tensor *merged = context ? ob_merge_heads(ctx, context) : NULL;
    ob_tensor *projected = merged ? ob_linear_layer_forward(ctx, l->attention_out, merged) : NULL;
    ob_tensor *a = add_norm(ctx, l->attention_norm, x, projected, &attention_dropout);
    ob_tensor *hidden = a ? ob_linear_layer_forward(ctx, l->ffn_in, a) : NULL;
    ob_tensor *activated = hidden ? ob_gelu(ctx, hidden) : NULL;
    ob_tensor *ffn = activated ? ob_linear_layer_forward(ctx, l->ffn_out, activated) : NULL;
    return add_norm(ctx, l->ffn_norm, a, ffn, &ffn_dropout);
}

/* logits = layernorm(gelu(W_t x)) word^T + bias over the masked rows of h. */
static ob_tensor *masked_lm_logits(ob_ctx *ctx, ob_bert_model *m, ob_tensor *h, const ob_bert_inputs *in,
                                   ob_tensor **labels) {
    ob_tensor *selected = ob_masked_lm_gather(ctx, h, in->masked_lm_positions, in->masked_lm_ids, labels);
    ob_tensor *dense = selected ? ob_linear_layer_forward(ctx, m->transform, selected) : NULL;
    ob_tensor *activated = dense ? ob_gelu(ctx, dense) : NULL;
    ob_tensor *normed = activated ? ob_layernorm_layer_forward(ctx, m->transform_norm, activated) : NULL;
    return normed ? ob_linear(ctx, normed, m->words->weight, m->decoder_bias->bias, NULL) : NULL;
}

/* logits = W_c tanh(W_p h[CLS]) */
static ob_tensor *next_sentence_logits(ob_ctx *ctx, ob_bert_model *m, ob_tensor *h, int64_t batch, int64_t seq) {
    ob_tensor *cls_rows = index_ramp(ctx, batch, batch, seq);
    ob_tensor *cls = cls_rows ? ob_embedding(ctx, h, cls_rows) : NULL;
    ob_tensor *pooled = cls ? ob_linear_layer_forward(ctx, m->pooler, cls) : NULL;
    ob_tensor *activated = pooled ? ob_tanh(ctx, pooled) : NULL;
    return activated ? ob_linear_layer_forward(ctx, m->nsp_classifier, activated) : NULL;
}

int ob_bert_forward(ob_ctx *ctx, ob_bert_model *m, const ob_bert_inputs *in, const ob_bert_pass *pass,
                    ob_bert_outputs *out) {
    int64_t batch = in->input_ids->shape[0], seq = in->input_ids->shape[1];
    ob_tensor *h = embed(ctx, m, in, pass);
    for (int i = 0; i < m->config.layers && h; i++) h = encoder_layer(ctx, m, i, h, in->input_mask, pass);
    out->mlm_labels = NULL;
    out->mlm_logits = h ? masked_lm_logits(ctx, m, h, in, &out->mlm_labels) : NULL;
    out->nsp_logits = out->mlm_logits ? next_sentence_logits(ctx, m, h, batch, seq) : NULL;
    return out->nsp_logits == NULL;
}

ob_tensor *ob_bert_loss(ob_ctx *ctx, const ob_bert_outputs *out, const ob_tensor *next_sentence_labels) {
    ob_tensor *mlm = ob_softmax_cross_entropy(ctx, out->mlm_logits, out->mlm_labels, 0.0);
    ob_tensor *nsp = mlm ? ob_softmax_cross_entropy(ctx, out->nsp_logits, next_sentence_labels, 0.0) : NULL;
    return nsp ? ob_add(ctx, mlm, nsp) : NULL;
}
