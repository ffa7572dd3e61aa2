/* A whole BERT encoder layer (post-LN, as BERT) against finite differences,
 * in F64, on batch 2, seq 5, hidden 8, 2 heads, FFN 16, with padding:
 *   a  = layernorm1(x + dropout(linear_o(merge(attention(split(q), split(k),
 *                                                       split(v), mask)))))
 *   y  = layernorm2(a + dropout(linear_2(gelu(linear_1(a)))))
 * with q, k, v = linear_q(x), linear_k(x), linear_v(x) and dropout (training,
 * a fixed step) on the attention probabilities and both branch outputs.
 * Checks the gradient of x and of all 16 parameters; x and a each feed a
 * branch and a residual, so their gradients must accumulate. */
#include "gradcheck/gradcheck.h"
#include "nn/ob_layers.h"
#include "nn/ob_ops.h"

#define BATCH 2
#define SEQ 5
#define HIDDEN 8
#define HEADS 2
#define FFN 16
#define LN_EPS 1e-12 /* BERT's */
#define DROPOUT_P 0.1
#define STEP 9

typedef struct {
    ob_linear_layer *query, *key, *value, *attention_out, *ffn_in, *ffn_out;
    ob_layernorm_layer *attention_norm, *ffn_norm;
    const ob_tensor *key_mask;
} encoder_layer;

static ob_dropout_spec dropout_at(uint32_t site) {
    return (ob_dropout_spec){.p = DROPOUT_P, .training = true, .step = STEP, .site = site};
}

/* The heads of linear(x): [BATCH, HEADS, SEQ, HIDDEN / HEADS]; NULL passes through. */
static ob_tensor *heads_of(ob_ctx *ctx, ob_linear_layer *linear, ob_tensor *x) {
    ob_tensor *y = x ? ob_linear_layer_forward(ctx, linear, x) : NULL;
    return y ? ob_split_heads(ctx, y, BATCH, HEADS) : NULL;
}

/* layernorm(residual + dropout(branch)); NULL passes through. */
static ob_tensor *add_norm(ob_ctx *ctx, ob_layernorm_layer *norm, ob_tensor *residual, ob_tensor *branch,
                           uint32_t site) {
    ob_dropout_spec spec = dropout_at(site);
    ob_tensor *dropped = branch ? ob_dropout(ctx, branch, &spec) : NULL;
    ob_tensor *sum = dropped ? ob_add(ctx, residual, dropped) : NULL;
    return sum ? ob_layernorm_layer_forward(ctx, norm, sum) : NULL;
}

static ob_tensor *encoder_forward(ob_ctx *ctx, ob_tensor *const *in, void *user) {
    encoder_layer *layer = user;
    ob_tensor *x = in[0];
    ob_dropout_spec probs_dropout = dropout_at(0);
    ob_tensor *q = heads_of(ctx, layer->query, x), *k = heads_of(ctx, layer->key, x);
    ob_tensor *v = heads_of(ctx, layer->value, x);
    ob_tensor *context = q && k && v ? ob_attention(ctx, q, k, v, layer->key_mask, &probs_dropout) : NULL;
    ob_tensor *merged = context ? ob_merge_heads(ctx, context) : NULL;
    ob_tensor *projected = merged ? ob_linear_layer_forward(ctx, layer->attention_out, merged) : NULL;
    ob_tensor *a = add_norm(ctx, layer->attention_norm, x, projected, 1);
    ob_tensor *hidden = a ? ob_linear_layer_forward(ctx, layer->ffn_in, a) : NULL;
    ob_tensor *activated = hidden ? ob_gelu(ctx, hidden) : NULL;
    ob_tensor *ffn = activated ? ob_linear_layer_forward(ctx, layer->ffn_out, activated) : NULL;
    return add_norm(ctx, layer->ffn_norm, a, ffn, 2);
}

static encoder_layer build_layer(ob_ctx *ctx, ob_params *params) {
    encoder_layer l;
    l.query = ob_linear_layer_new(ctx, params, "attention.self.query", HIDDEN, HIDDEN, true);
    l.key = ob_linear_layer_new(ctx, params, "attention.self.key", HIDDEN, HIDDEN, true);
    l.value = ob_linear_layer_new(ctx, params, "attention.self.value", HIDDEN, HIDDEN, true);
    l.attention_out = ob_linear_layer_new(ctx, params, "attention.output.dense", HIDDEN, HIDDEN, true);
    l.attention_norm = ob_layernorm_layer_new(ctx, params, "attention.output.LayerNorm", HIDDEN, LN_EPS);
    l.ffn_in = ob_linear_layer_new(ctx, params, "intermediate.dense", HIDDEN, FFN, true);
    l.ffn_out = ob_linear_layer_new(ctx, params, "output.dense", FFN, HIDDEN, true);
    l.ffn_norm = ob_layernorm_layer_new(ctx, params, "output.LayerNorm", HIDDEN, LN_EPS);
    return l;
}

int main(void) {
    ob_ctx *ctx = gc_ctx();
    ob_params *params = ob_params_new(OB_F64);
    encoder_layer layer = build_layer(ctx, params);
    /* The second sequence ends in two padding tokens. */
    ob_tensor *key_mask = gc_i32(ctx, OB_SHAPE(BATCH, SEQ), (const int32_t[]){1, 1, 1, 1, 1, 1, 1, 1, 0, 0});
    layer.key_mask = key_mask;
    int failed = 0, passed = 0;
    if (!layer.ffn_norm) {
        printf("FAIL building the layer: %s\n", ob_ctx_error(ctx));
        failed++;
    } else {
        gc_randomise_norms(params);
        ob_tensor *x = gc_input(ctx, OB_SHAPE(BATCH * SEQ, HIDDEN), 1, -1, 1);
        int n_params = ob_params_count(params);
        if (n_params != 16) printf("FAIL: %d parameters, expected 16\n", n_params);
        n_params == 16 ? passed++ : failed++;
        gc_check_model("encoder layer", ctx, encoder_forward, x, params, &layer, 1000) ? failed++ : passed++;
        gc_free_input(ctx, x);
    }
    ob_tensor_free(ctx, key_mask);
    ob_params_free(ctx, params);
    ob_ctx_free(ctx);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
