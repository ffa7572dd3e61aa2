/* Transformer ops in F32 against references written here: attention
 * forward and backward against a naive double triple loop (padding, an
 * all-padding sequence, scores large enough to overflow exp unshifted),
 * GELU, layer-norm and embedding forward values against their formulas,
 * the masked-LM selection and argument errors, and dropout's mask:
 * reproducible for one (seed, step, site), different across steps and
 * sites, keep fraction within 4 sigma of 1 - p over 1e5 elements, the same
 * bits with 1 and 2 threads, and the same mask in the backward. Also the
 * layer-norm and embedding layers' parameters. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ob_backend.h"
#include "nn/ob_layers.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"

#include "f32_test_support.h"
#include "ob_check.h"

#define B 3
#define H 2
#define SQ 4
#define SK 6
#define D 5
#define DV 3

static ob_tensor *i32_of(ob_ctx *ctx, int ndim, const int64_t *shape, const int32_t *values) {
    ob_tensor *t = ob_tensor_new(ctx, OB_MEM_DATA, OB_I32, ndim, shape);
    memcpy(t->data, values, ob_tensor_bytes(t));
    return t;
}

/* Attention's reference, all in double, for one (batch, head):
 *   s_ij = q_i . k_j / sqrt(D) over real keys j, p_i = softmax_j(s_i), o_i = sum_j p_ij v_j;
 *   dv_j += sum_i p_ij do_i,  dp_ij = do_i . v_j,  ds_ij = p_ij (dp_ij - sum_k p_ik dp_ik),
 *   dq_i += sum_j ds_ij k_j / sqrt(D),  dk_j += sum_i ds_ij q_i / sqrt(D).
 * Pointers are at the (batch, head)'s first row. */
static void attention_reference(const float *q, const float *k, const float *v, const int32_t *mask,
                                const float *dout, double *out, double *dq, double *dk, double *dv) {
    double scale = 1.0 / sqrt(D);
    for (int i = 0; i < SQ; i++) {
        double s[SK], p[SK], dp[SK], max = -INFINITY, sum = 0.0, p_dot_dp = 0.0;
        for (int j = 0; j < SK; j++) {
            s[j] = 0.0;
            for (int d = 0; d < D; d++) s[j] += (double)q[i * D + d] * k[j * D + d] * scale;
            if (mask[j] && s[j] > max) max = s[j];
        }
        for (int j = 0; j < SK; j++) sum += p[j] = mask[j] ? exp(s[j] - max) : 0.0;
        for (int j = 0; j < SK; j++) {
            p[j] = sum > 0 ? p[j] / sum : 0.0;
            dp[j] = 0.0;
            for (int e = 0; e < DV; e++) dp[j] += (double)dout[i * DV + e] * v[j * DV + e];
            p_dot_dp += p[j] * dp[j];
        }
        for (int e = 0; e < DV; e++) {
            out[i * DV + e] = 0.0;
            for (int j = 0; j < SK; j++) out[i * DV + e] += p[j] * v[j * DV + e];
        }
        for (int j = 0; j < SK; j++) {
            double ds = p[j] * (dp[j] - p_dot_dp);
            for (int e = 0; e < DV; e++) dv[j * DV + e] += p[j] * dout[i * DV + e];
            for (int d = 0; d < D; d++) {
                dq[i * D + d] += ds * k[j * D + d] * scale;
                dk[j * D + d] += ds * q[i * D + d] * scale;
            }
        }
    }
}

static bool all_finite(const ob_tensor *t) {
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(ob_f32(t)[i])) return false;
    return true;
}

#define ATTENTION_TOL 1e-5

/* q, k drawn in +-spread; out, dq, dk, dv checked. Spread 12 gives scores
 * near +-100, beyond 88 where expf overflows without the row-max shift. */
static void test_attention(ob_ctx *ctx, double spread) {
    ob_tensor *q = trainable(ctx, OB_SHAPE(B, H, SQ, D), 1, -spread, spread);
    ob_tensor *k = trainable(ctx, OB_SHAPE(B, H, SK, D), 2, -spread, spread);
    ob_tensor *v = trainable(ctx, OB_SHAPE(B, H, SK, DV), 3, -1, 1);
    /* Sequence 0 all real, 1 with three padded keys, 2 all padding. */
    const int32_t mask_values[B * SK] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    ob_tensor *key_mask = i32_of(ctx, OB_SHAPE(B, SK), mask_values);
    ob_tensor *grads[3] = {q->grad, k->grad, v->grad};
    for (int i = 0; i < 3; i++) memset(grads[i]->data, 0, ob_tensor_bytes(grads[i]));
    ob_tensor *out = ob_attention(ctx, q, k, v, key_mask, NULL);
    CHECK(out && out->ndim == 4 && out->shape[2] == SQ && out->shape[3] == DV);
    if (out) {
        ob_tensor *dout = ob_grad_of(ctx, out);
        fill_uniform(dout, 4, -1, 1);
        CHECK(ob_backward_run(ctx) == 0);
        double *out_ref = calloc(out->numel, sizeof(double)), *dq_ref = calloc(q->numel, sizeof(double));
        double *dk_ref = calloc(k->numel, sizeof(double)), *dv_ref = calloc(v->numel, sizeof(double));
        for (int bh = 0; bh < B * H; bh++)
            attention_reference(ob_f32(q) + bh * SQ * D, ob_f32(k) + bh * SK * D, ob_f32(v) + bh * SK * DV,
                                mask_values + bh / H * SK, ob_f32(dout) + bh * SQ * DV,
                                out_ref + bh * SQ * DV, dq_ref + bh * SQ * D, dk_ref + bh * SK * D,
                                dv_ref + bh * SK * DV);
        CHECK(all_finite(out) && all_finite(q->grad) && all_finite(k->grad) && all_finite(v->grad));
        CHECK(worst_error(out->numel, ob_f32(out), out_ref) < ATTENTION_TOL);
        CHECK(worst_error(q->numel, ob_f32(q->grad), dq_ref) < ATTENTION_TOL);
        CHECK(worst_error(k->numel, ob_f32(k->grad), dk_ref) < ATTENTION_TOL);
        CHECK(worst_error(v->numel, ob_f32(v->grad), dv_ref) < ATTENTION_TOL);
        /* The all-padding sequence: zero output rows, zero gradients. */
        int64_t last = 2 * H * SQ * DV;
        bool zero = true;
        for (int64_t i = last; i < out->numel; i++) zero = zero && ob_f32(out)[i] == 0.0f;
        for (int64_t i = 2 * H * SQ * D; i < q->numel; i++) zero = zero && ob_f32(q->grad)[i] == 0.0f;
        check(zero, "an all-padding sequence gives zero outputs and zero dq");
        free(out_ref), free(dq_ref), free(dk_ref), free(dv_ref);
    }
    ob_ctx_step_reset(ctx);
    ob_tensor_free(ctx, key_mask);
    free_trainable(ctx, q);
    free_trainable(ctx, k);
    free_trainable(ctx, v);
}

/* gelu(x) = x (1 + erf(x / sqrt 2)) / 2, and two values worked out:
 * gelu(1) = Phi(1) = 0.841344746068543, gelu(-1) = -(1 - Phi(1)). */
static void test_gelu_values(ob_ctx *ctx) {
    ob_tensor *x = ob_tensor_new(ctx, OB_MEM_DATA, OB_F32, OB_SHAPE(202));
    fill_uniform(x, 5, -6, 6);
    ob_f32(x)[200] = 1.0f;
    ob_f32(x)[201] = -1.0f;
    ob_tensor *y = ob_gelu(ctx, x);
    CHECK(y != NULL);
    if (y) {
        double expected[202];
        for (int i = 0; i < 202; i++)
            expected[i] = 0.5 * ob_f32(x)[i] * (1.0 + erf(ob_f32(x)[i] / sqrt(2.0)));
        CHECK(worst_error(202, ob_f32(y), expected) < 1e-6);
        CHECK_CLOSE(ob_f32(y)[200], 0.841344746068543, 1e-6);
        CHECK_CLOSE(ob_f32(y)[201], -0.158655253931457, 1e-6);
    }
    ob_ctx_step_reset(ctx);
    ob_tensor_free(ctx, x);
}

#define LN_ROWS 5
#define LN_WIDTH 12
#define LN_EPS 1e-12

/* y = gamma (x - mean) / sqrt(var + eps) + beta per row, two-pass in
 * double, on rows with a mean far from zero; a constant row gives beta. */
static void test_layernorm_values(ob_ctx *ctx) {
    ob_tensor *x = ob_tensor_new(ctx, OB_MEM_DATA, OB_F32, OB_SHAPE(LN_ROWS, LN_WIDTH));
    ob_tensor *gamma = trainable(ctx, OB_SHAPE(LN_WIDTH), 6, 0.5, 1.5);
    ob_tensor *beta = trainable(ctx, OB_SHAPE(LN_WIDTH), 7, -1, 1);
    fill_uniform(x, 8, 3, 5);
    for (int c = 0; c < LN_WIDTH; c++) ob_f32(x)[(LN_ROWS - 1) * LN_WIDTH + c] = 7.0f;
    ob_tensor *y = ob_layernorm(ctx, x, gamma, beta, LN_EPS);
    CHECK(y != NULL);
    if (y) {
        double expected[LN_ROWS * LN_WIDTH];
        for (int r = 0; r < LN_ROWS; r++) {
            const float *row = ob_f32(x) + r * LN_WIDTH;
            double mean = 0.0, var = 0.0;
            for (int c = 0; c < LN_WIDTH; c++) mean += row[c] / (double)LN_WIDTH;
            for (int c = 0; c < LN_WIDTH; c++) var += (row[c] - mean) * (row[c] - mean) / LN_WIDTH;
            for (int c = 0; c < LN_WIDTH; c++)
                expected[r * LN_WIDTH + c] =
                    ob_f32(gamma)[c] * (row[c] - mean) / sqrt(var + LN_EPS) + ob_f32(beta)[c];
        }
        CHECK(worst_error(LN_ROWS * LN_WIDTH, ob_f32(y), expected) < 1e-5);
        CHECK(memcmp(ob_f32(y) + (LN_ROWS - 1) * LN_WIDTH, beta->data, ob_tensor_bytes(beta)) == 0);
    }
    CHECK(ob_layernorm(ctx, x, gamma, beta, 0.0) == NULL);
    CHECK(strstr(ob_ctx_error(ctx), "eps must be > 0") != NULL);
    ob_ctx_step_reset(ctx);
    ob_tensor_free(ctx, x);
    free_trainable(ctx, gamma);
    free_trainable(ctx, beta);
}

/* Rows are copies of the table's rows; an id outside the table is an error. */
static void test_embedding_values(ob_ctx *ctx) {
    ob_tensor *table = trainable(ctx, OB_SHAPE(6, 4), 9, -1, 1);
    ob_tensor *ids = i32_of(ctx, OB_SHAPE(5), (const int32_t[]){5, 0, 5, 2, 1});
    ob_tensor *y = ob_embedding(ctx, table, ids);
    CHECK(y && y->ndim == 2 && y->shape[0] == 5 && y->shape[1] == 4);
    bool copies = y != NULL;
    for (int i = 0; copies && i < 5; i++)
        copies =
            memcmp(ob_f32(y) + i * 4, ob_f32(table) + ((int32_t *)ids->data)[i] * 4, 4 * sizeof(float)) == 0;
    check(copies, "embedding rows are the table rows of their ids");
    ob_tensor *outside = i32_of(ctx, OB_SHAPE(2), (const int32_t[]){1, 6});
    ob_tensor *negative = i32_of(ctx, OB_SHAPE(1), (const int32_t[]){-3});
    CHECK(ob_embedding(ctx, table, outside) == NULL);
    CHECK(strstr(ob_ctx_error(ctx), "id 6 at 1 is outside [0, 6)") != NULL);
    CHECK(ob_embedding(ctx, table, negative) == NULL);
    CHECK(strstr(ob_ctx_error(ctx), "id -3 at 0") != NULL);
    ob_ctx_step_reset(ctx);
    ob_tensor_free(ctx, ids);
    ob_tensor_free(ctx, outside);
    ob_tensor_free(ctx, negative);
    free_trainable(ctx, table);
}

/* Two sequences of 3 tokens, two prediction slots each, the last padding
 * (-1): rows 0*3+2, 0*3+0, 1*3+1 with labels 7, 8, 9. */
static void test_masked_lm_gather(ob_ctx *ctx) {
    ob_tensor *x = trainable(ctx, OB_SHAPE(6, 2), 10, -1, 1);
    ob_tensor *positions = i32_of(ctx, OB_SHAPE(2, 2), (const int32_t[]){2, 0, 1, 0});
    ob_tensor *labels = i32_of(ctx, OB_SHAPE(2, 2), (const int32_t[]){7, 8, 9, -1});
    ob_tensor *selected = NULL;
    ob_tensor *y = ob_masked_lm_gather(ctx, x, positions, labels, &selected);
    CHECK(y && y->shape[0] == 3 && selected && selected->numel == 3);
    if (y && selected) {
        const int rows[3] = {2, 0, 4};
        for (int i = 0; i < 3; i++) {
            CHECK(ob_f32(y)[2 * i] == ob_f32(x)[2 * rows[i]] &&
                  ob_f32(y)[2 * i + 1] == ob_f32(x)[2 * rows[i] + 1]);
            CHECK(((int32_t *)selected->data)[i] == 7 + i);
        }
    }
    ob_tensor *all_padding = i32_of(ctx, OB_SHAPE(2, 2), (const int32_t[]){-1, -1, -1, -1});
    ob_tensor *far = i32_of(ctx, OB_SHAPE(2, 2), (const int32_t[]){2, 3, 1, 0});
    CHECK(ob_masked_lm_gather(ctx, x, positions, all_padding, &selected) == NULL);
    CHECK(strstr(ob_ctx_error(ctx), "every prediction is padding") != NULL);
    CHECK(ob_masked_lm_gather(ctx, x, far, labels, &selected) == NULL);
    CHECK(strstr(ob_ctx_error(ctx), "prediction 1 has position 3 (sequence 3)") != NULL);
    ob_ctx_step_reset(ctx);
    ob_tensor_free(ctx, positions);
    ob_tensor_free(ctx, labels);
    ob_tensor_free(ctx, all_padding);
    ob_tensor_free(ctx, far);
    free_trainable(ctx, x);
}

#define DROP_N 100000
#define DROP_P 0.1

/* dropout of ones [DROP_N] at (step, site) into out, on a fresh ctx with
 * `threads` threads (seed 42, rank 0). */
static void dropout_of_ones(int threads, uint64_t step, uint32_t site, float *out) {
    ob_ctx_config config = {.threads = threads, .seed = 42, .rank = 0, .world_size = 1};
    ob_ctx *ctx = ob_ctx_new(&config);
    ob_tensor *x = ob_tensor_new(ctx, OB_MEM_DATA, OB_F32, OB_SHAPE(DROP_N));
    ob_backend_of(x)->fill(x, 1.0);
    ob_dropout_spec spec = {.p = DROP_P, .training = true, .step = step, .site = site};
    ob_tensor *y = ob_dropout(ctx, x, &spec);
    memcpy(out, y->data, sizeof(float) * DROP_N);
    ob_ctx_step_reset(ctx);
    ob_tensor_free(ctx, x);
    ob_ctx_free(ctx);
}

static int64_t count_differing(const float *a, const float *b) {
    int64_t n = 0;
    for (int64_t i = 0; i < DROP_N; i++) n += a[i] != b[i];
    return n;
}

/* Elements of two independent masks differ with probability 2 p (1 - p)
 * (18%): requiring over 10% rules out a shared or shifted stream. */
static void test_dropout_mask(void) {
    float *base = malloc(sizeof(float) * DROP_N), *other = malloc(sizeof(float) * DROP_N);
    dropout_of_ones(2, 3, 0, base);
    int64_t kept = 0;
    bool values_ok = true;
    for (int64_t i = 0; i < DROP_N; i++) {
        kept += base[i] != 0.0f;
        values_ok = values_ok && (base[i] == 0.0f || base[i] == (float)(1.0 / (1.0 - DROP_P)));
    }
    check(values_ok, "dropout keeps x / (1 - p) or zeroes it");
    double expected = DROP_N * (1 - DROP_P), sigma = sqrt(DROP_N * DROP_P * (1 - DROP_P));
    printf("dropout p %.2f: kept %lld of %d (expected %.0f +- %.0f)\n", DROP_P, (long long)kept, DROP_N,
           expected, sigma);
    check(fabs(kept - expected) < 4 * sigma, "keep fraction within 4 sigma of 1 - p");
    dropout_of_ones(2, 3, 0, other);
    check(count_differing(base, other) == 0, "same (seed, step, site): same mask");
    dropout_of_ones(1, 3, 0, other);
    check(count_differing(base, other) == 0, "1 and 2 threads: same mask");
    dropout_of_ones(2, 4, 0, other);
    check(count_differing(base, other) > DROP_N / 10, "another step: another mask");
    dropout_of_ones(2, 3, 1, other);
    check(count_differing(base, other) > DROP_N / 10, "another site: another mask");
    free(base);
    free(other);
}

/* The backward applies the forward's mask: with x = 1 and dy = 1, dx = y.
 * Not training, or p = 0, is the identity: x itself comes back. */
static void test_dropout_backward_and_identity(ob_ctx *ctx) {
    ob_tensor *x = trainable(ctx, OB_SHAPE(5000), 11, 1, 1);
    memset(x->grad->data, 0, ob_tensor_bytes(x->grad));
    ob_dropout_spec spec = {.p = 0.5, .training = true, .step = 8, .site = 2};
    ob_tensor *y = ob_dropout(ctx, x, &spec);
    CHECK(y != NULL && y != x);
    if (y) {
        ob_backend_of(y)->fill(ob_grad_of(ctx, y), 1.0);
        CHECK(ob_backward_run(ctx) == 0);
        CHECK(memcmp(x->grad->data, y->data, ob_tensor_bytes(y)) == 0);
    }
    ob_ctx_step_reset(ctx);
    ob_dropout_spec eval = {.p = 0.5, .training = false}, zero = {.p = 0.0, .training = true};
    CHECK(ob_dropout(ctx, x, &eval) == x);
    CHECK(ob_dropout(ctx, x, &zero) == x);
    CHECK(ob_tape_length(ctx) == 0);
    ob_dropout_spec certain = {.p = 1.0, .training = true};
    CHECK(ob_dropout(ctx, x, &certain) == NULL);
    CHECK(strstr(ob_ctx_error(ctx), "probability 1 is outside [0, 1)") != NULL);
    free_trainable(ctx, x);
}

#define VOCAB 50
#define DIM 40
#define INIT_STD 0.02

/* The layers register their parameters with the kinds optimizers key on;
 * layer norm starts as the identity (gamma 1, beta 0) and the table's
 * entries have the requested spread (within 10% over 2000 draws). */
static void test_layers(ob_ctx *ctx) {
    ob_params *params = ob_params_new(OB_F32);
    ob_layernorm_layer *norm = ob_layernorm_layer_new(ctx, params, "embeddings.LayerNorm", DIM, 1e-12);
    ob_embedding_layer *words = ob_embedding_layer_new(ctx, params, "embeddings.word", VOCAB, DIM, INIT_STD);
    CHECK(norm && words && ob_params_count(params) == 3 && ob_params_layer_count(params) == 2);
    if (norm && words) {
        ob_param *gamma = ob_params_at(params, 0), *beta = ob_params_at(params, 1);
        ob_param *table = ob_params_at(params, 2);
        CHECK(gamma->kind == OB_KIND_NORM_SCALE && strcmp(gamma->name, "embeddings.LayerNorm.weight") == 0);
        CHECK(beta->kind == OB_KIND_NORM_BIAS && strcmp(beta->name, "embeddings.LayerNorm.bias") == 0);
        CHECK(table->kind == OB_KIND_EMBEDDING && strcmp(table->name, "embeddings.word.weight") == 0);
        CHECK(norm->base.type == OB_LAYER_LAYERNORM && words->base.type == OB_LAYER_EMBEDDING);
        CHECK(ob_f32(norm->weight)[DIM - 1] == 1.0f && ob_f32(norm->bias)[0] == 0.0f);
        double sum_sq = 0.0;
        for (int64_t i = 0; i < words->weight->numel; i++) sum_sq += pow(ob_f32(words->weight)[i], 2);
        CHECK_CLOSE(sqrt(sum_sq / words->weight->numel) / INIT_STD, 1.0, 0.1);
        ob_tensor *ids = i32_of(ctx, OB_SHAPE(2), (const int32_t[]){49, 0});
        ob_tensor *rows = ob_embedding_layer_forward(ctx, words, ids);
        ob_tensor *y = rows ? ob_layernorm_layer_forward(ctx, norm, rows) : NULL;
        CHECK(y && y->shape[0] == 2 && y->shape[1] == DIM);
        ob_ctx_step_reset(ctx);
        ob_tensor_free(ctx, ids);
    }
    ob_params_free(ctx, params);
}

int main(void) {
    ob_ctx_config config = {.threads = 2, .seed = 1, .rank = 0, .world_size = 1};
    ob_ctx *ctx = ob_ctx_new(&config);
    test_attention(ctx, 1.0);
    test_attention(ctx, 12.0);
    test_gelu_values(ctx);
    test_layernorm_values(ctx);
    test_embedding_values(ctx);
    test_masked_lm_gather(ctx);
    test_dropout_backward_and_identity(ctx);
    test_layers(ctx);
    ob_ctx_free(ctx);
    test_dropout_mask();
    return report_checks();
}
