/* Batch-norm, linear and softmax cross-entropy in F32 against direct double
 * computations written here: batch-norm train output and running-stat
 * update, eval mode from running stats, cross-entropy on a hand-worked 2x3
 * example, huge logits, label checking, linear forward/backward and its
 * K-FAC capture hook. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ob_backend.h"
#include "nn/ob_layers.h"
#include "nn/ob_ops.h"
#include "nn/ob_rng.h"
#include "nn/ob_tape.h"

#include "f32_test_support.h"
#include "ob_check.h"

#define BN_MOMENTUM 0.1
#define BN_EPS 1e-5
#define RUNNING_MEAN_START 0.5
#define RUNNING_VAR_START 2.0

/* Per-channel batch mean and biased variance of an [rows, channels] view, two-pass in double. */
static void batch_stats(const ob_tensor *x, double *mean, double *var) {
    int64_t channels = x->shape[x->ndim - 1], rows = x->numel / channels;
    for (int64_t c = 0; c < channels; c++) {
        double sum = 0.0, sq = 0.0;
        for (int64_t r = 0; r < rows; r++) sum += ob_f32(x)[r * channels + c];
        mean[c] = sum / rows;
        for (int64_t r = 0; r < rows; r++) sq += pow(ob_f32(x)[r * channels + c] - mean[c], 2);
        var[c] = sq / rows;
    }
}

/* y = gamma (x - mean) / sqrt(var + eps) + beta in double. */
static void bn_reference(const ob_tensor *x, const ob_tensor *gamma, const ob_tensor *beta,
                         const double *mean, const double *var, double *y) {
    int64_t channels = x->shape[x->ndim - 1];
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t c = i % channels;
        y[i] = ob_f32(gamma)[c] * (ob_f32(x)[i] - mean[c]) / sqrt(var[c] + BN_EPS) + ob_f32(beta)[c];
    }
}

/* Train mode on x with values in [3, 5): output, running-stat update, and the same bits from a
 * second run; then eval mode uses the running statistics and records no tape node. */
static void test_batchnorm(ob_ctx *ctx, int ndim, const int64_t *shape) {
    int64_t channels = shape[ndim - 1], rows = 1;
    for (int d = 0; d < ndim - 1; d++) rows *= shape[d];
    ob_tensor *x = ob_tensor_new(ctx, OB_MEM_DATA, OB_F32, ndim, shape);
    ob_tensor *gamma = trainable(ctx, OB_SHAPE(channels), 2, 0.5, 1.5);
    ob_tensor *beta = trainable(ctx, OB_SHAPE(channels), 3, -1, 1);
    ob_tensor *running_mean = ob_tensor_new(ctx, OB_MEM_PARAMS, OB_F32, OB_SHAPE(channels));
    ob_tensor *running_var = ob_tensor_new(ctx, OB_MEM_PARAMS, OB_F32, OB_SHAPE(channels));
    fill_uniform(x, 1, 3, 5);
    const ob_backend *backend = ob_backend_of(x);
    backend->fill(running_mean, RUNNING_MEAN_START);
    backend->fill(running_var, RUNNING_VAR_START);
    double *mean = malloc(channels * sizeof *mean), *var = malloc(channels * sizeof *var);
    double *expected = malloc(x->numel * sizeof *expected);
    double *expected_mean = malloc(channels * sizeof *expected_mean);
    double *expected_var = malloc(channels * sizeof *expected_var);

    batch_stats(x, mean, var);
    bn_reference(x, gamma, beta, mean, var, expected);
    ob_tensor *y = ob_batchnorm(ctx, x, gamma, beta, running_mean, running_var, true, BN_MOMENTUM, BN_EPS);
    CHECK(y && ob_tensor_same_shape(y, x));
    if (y) CHECK(worst_error(y->numel, ob_f32(y), expected) < 1e-5);
    for (int64_t c = 0; c < channels; c++) {
        expected_mean[c] = (1 - BN_MOMENTUM) * RUNNING_MEAN_START + BN_MOMENTUM * mean[c];
        expected_var[c] = (1 - BN_MOMENTUM) * RUNNING_VAR_START + BN_MOMENTUM * var[c] * rows / (rows - 1);
    }
    CHECK(worst_error(channels, ob_f32(running_mean), expected_mean) < 1e-6);
    CHECK(worst_error(channels, ob_f32(running_var), expected_var) < 1e-6);
    ob_tensor *again =
        ob_batchnorm(ctx, x, gamma, beta, running_mean, running_var, true, BN_MOMENTUM, BN_EPS);
    CHECK(y && again && memcmp(y->data, again->data, ob_tensor_bytes(y)) == 0);
    ob_ctx_step_reset(ctx);

    /* Eval: normalise with the running statistics, which stay as they are. */
    for (int64_t c = 0; c < channels; c++) {
        mean[c] = ob_f32(running_mean)[c];
        var[c] = ob_f32(running_var)[c];
    }
    bn_reference(x, gamma, beta, mean, var, expected);
    ob_tensor *eval =
        ob_batchnorm(ctx, x, gamma, beta, running_mean, running_var, false, BN_MOMENTUM, BN_EPS);
    CHECK(eval != NULL);
    if (eval) CHECK(worst_error(eval->numel, ob_f32(eval), expected) < 1e-5);
    CHECK(worst_error(channels, ob_f32(running_mean), mean) == 0.0);
    CHECK(worst_error(channels, ob_f32(running_var), var) == 0.0);
    CHECK(ob_tape_length(ctx) == 0);
    ob_ctx_step_reset(ctx);

    free(mean), free(var), free(expected), free(expected_mean), free(expected_var);
    ob_tensor_free(ctx, x);
    free_trainable(ctx, gamma);
    free_trainable(ctx, beta);
    ob_tensor_free(ctx, running_mean);
    ob_tensor_free(ctx, running_var);
}

static void test_batchnorm_rejects_one_row(ob_ctx *ctx) {
    ob_tensor *x = ob_tensor_new(ctx, OB_MEM_DATA, OB_F32, OB_SHAPE(1, 1, 1, 3));
    ob_tensor *gamma = trainable(ctx, OB_SHAPE(3), 1, 0, 1), *beta = trainable(ctx, OB_SHAPE(3), 2, 0, 1);
    CHECK(ob_batchnorm(ctx, x, gamma, beta, NULL, NULL, true, BN_MOMENTUM, BN_EPS) == NULL);
    CHECK(strstr(ob_ctx_error(ctx), "more than one value per channel") != NULL);
    ob_ctx_step_reset(ctx);
    ob_tensor_free(ctx, x);
    free_trainable(ctx, gamma);
    free_trainable(ctx, beta);
}

static ob_tensor *labels_of(ob_ctx *ctx, int64_t n, const int32_t *values) {
    ob_tensor *labels = ob_tensor_new(ctx, OB_MEM_DATA, OB_I32, OB_SHAPE(n));
    memcpy(labels->data, values, n * sizeof *values);
    return labels;
}

/* logits [[1, 2, 3], [1, 1, 1]], labels [2, 0]. With lse = log sum exp of a row,
 *   row 0: lse = 3 + log(1 + e^-1 + e^-2) = 3.40760596444438,
 *          p = softmax = [0.0900305731703804, 0.244728471054798, 0.665240955774822];
 *   row 1: lse = 1 + log 3 = 2.09861228866811.
 * Loss of a row = lse - (1 - s) x_label - s mean(x):
 *   s = 0:   (0.40760596444438 + 1.09861228866811) / 2 = 0.753109126556245
 *   s = 0.1: (3.40760596444438 - 2.7 - 0.2 + 2.09861228866811 - 0.9 - 0.1) / 2 = 0.803109126556245
 * d loss / d logits[0] = (p - q) / 2, q = [s/3, s/3, 1 - s + s/3]. */
static void test_xent_hand_example(ob_ctx *ctx, double smoothing, double expected_loss) {
    const double p[3] = {0.0900305731703804, 0.244728471054798, 0.665240955774822};
    ob_tensor *logits = trainable(ctx, OB_SHAPE(2, 3), 0, 0, 0);
    const float values[6] = {1, 2, 3, 1, 1, 1};
    memcpy(logits->data, values, sizeof values);
    memset(logits->grad->data, 0, ob_tensor_bytes(logits->grad));
    ob_tensor *labels = labels_of(ctx, 2, (const int32_t[]){2, 0});
    ob_tensor *loss = ob_softmax_cross_entropy(ctx, logits, labels, smoothing);
    CHECK(loss && loss->numel == 1);
    if (loss) {
        CHECK_CLOSE(ob_f32(loss)[0], expected_loss, 1e-6);
        CHECK(ob_backward(ctx, loss) == 0);
        for (int j = 0; j < 3; j++) {
            double q = smoothing / 3 + (j == 2 ? 1 - smoothing : 0);
            CHECK_CLOSE(ob_f32(logits->grad)[j], (p[j] - q) / 2, 1e-6);
        }
    }
    ob_ctx_step_reset(ctx);
    ob_tensor_free(ctx, labels);
    free_trainable(ctx, logits);
}

/* logits [[1e4, 0, -1e4], [1e4, 1e4, 1e4 - 1]], labels [1, 2]:
 *   row 0: lse = 1e4 (+ e^-1e4), loss = 1e4;
 *   row 1: lse = 1e4 + log(2 + e^-1), loss = 1 + log(2 + e^-1) = 1.86199480405825;
 *   mean = 5000.93099740203. exp(1e4) would overflow; the max shift avoids it. */
static void test_xent_huge_logits(ob_ctx *ctx) {
    ob_tensor *logits = trainable(ctx, OB_SHAPE(2, 3), 0, 0, 0);
    const float values[6] = {1e4f, 0, -1e4f, 1e4f, 1e4f, 1e4f - 1};
    memcpy(logits->data, values, sizeof values);
    memset(logits->grad->data, 0, ob_tensor_bytes(logits->grad));
    ob_tensor *labels = labels_of(ctx, 2, (const int32_t[]){1, 2});
    ob_tensor *loss = ob_softmax_cross_entropy(ctx, logits, labels, 0.0);
    CHECK(loss != NULL);
    if (loss) {
        CHECK(isfinite(ob_f32(loss)[0]));
        CHECK_CLOSE(ob_f32(loss)[0], 5000.93099740203, 1e-6);
        CHECK(ob_backward(ctx, loss) == 0);
        bool finite = true;
        for (int i = 0; i < 6; i++) finite = finite && isfinite(ob_f32(logits->grad)[i]);
        CHECK(finite);
    }
    ob_ctx_step_reset(ctx);
    ob_tensor_free(ctx, labels);
    free_trainable(ctx, logits);
}

static void test_xent_rejects_bad_labels(ob_ctx *ctx) {
    ob_tensor *logits = trainable(ctx, OB_SHAPE(2, 3), 1, -1, 1);
    ob_tensor *too_big = labels_of(ctx, 2, (const int32_t[]){0, 3});
    ob_tensor *negative = labels_of(ctx, 2, (const int32_t[]){-1, 0});
    CHECK(ob_softmax_cross_entropy(ctx, logits, too_big, 0.0) == NULL);
    CHECK(strstr(ob_ctx_error(ctx), "label 3 at row 1") != NULL);
    CHECK(ob_softmax_cross_entropy(ctx, logits, negative, 0.0) == NULL);
    CHECK(strstr(ob_ctx_error(ctx), "label -1 at row 0") != NULL);
    CHECK(ob_tape_length(ctx) == 0);
    ob_ctx_step_reset(ctx);
    ob_tensor_free(ctx, too_big);
    ob_tensor_free(ctx, negative);
    free_trainable(ctx, logits);
}

#define LIN_BATCH 7
#define LIN_IN 13
#define LIN_OUT 5

/* y = x w^T + b and, for an upstream gradient dy, dx = dy w, dw = dy^T x, db = sum_rows dy,
 * each against a naive double loop; the capture hook sees x and dy. */
static void test_linear(ob_ctx *ctx) {
    ob_tensor *x = trainable(ctx, OB_SHAPE(LIN_BATCH, LIN_IN), 1, -1, 1);
    ob_tensor *w = trainable(ctx, OB_SHAPE(LIN_OUT, LIN_IN), 2, -1, 1);
    ob_tensor *b = trainable(ctx, OB_SHAPE(LIN_OUT), 3, -1, 1);
    ob_tensor *grads[3] = {x->grad, w->grad, b->grad};
    for (int i = 0; i < 3; i++) memset(grads[i]->data, 0, ob_tensor_bytes(grads[i]));
    ob_layer hook = {.capture = true};
    ob_tensor *y = ob_linear(ctx, x, w, b, &hook);
    CHECK(y && y->shape[0] == LIN_BATCH && y->shape[1] == LIN_OUT);
    if (!y) return;
    CHECK(hook.captured_input == x);
    ob_tensor *dy = ob_grad_of(ctx, y);
    fill_uniform(dy, 4, -1, 1);
    CHECK(ob_backward_run(ctx) == 0);
    CHECK(hook.captured_grad_output == dy);

    double y_ref[LIN_BATCH * LIN_OUT], dx_ref[LIN_BATCH * LIN_IN] = {0}, dw_ref[LIN_OUT * LIN_IN] = {0};
    double db_ref[LIN_OUT] = {0};
    const float *xv = ob_f32(x), *wv = ob_f32(w), *dyv = ob_f32(dy);
    for (int r = 0; r < LIN_BATCH; r++)
        for (int o = 0; o < LIN_OUT; o++) {
            double sum = ob_f32(b)[o];
            for (int i = 0; i < LIN_IN; i++) {
                sum += (double)xv[r * LIN_IN + i] * wv[o * LIN_IN + i];
                dx_ref[r * LIN_IN + i] += (double)dyv[r * LIN_OUT + o] * wv[o * LIN_IN + i];
                dw_ref[o * LIN_IN + i] += (double)dyv[r * LIN_OUT + o] * xv[r * LIN_IN + i];
            }
            y_ref[r * LIN_OUT + o] = sum;
            db_ref[o] += dyv[r * LIN_OUT + o];
        }
    CHECK(worst_error(LIN_BATCH * LIN_OUT, ob_f32(y), y_ref) < 1e-5);
    CHECK(worst_error(LIN_BATCH * LIN_IN, ob_f32(x->grad), dx_ref) < 1e-5);
    CHECK(worst_error(LIN_OUT * LIN_IN, ob_f32(w->grad), dw_ref) < 1e-5);
    CHECK(worst_error(LIN_OUT, ob_f32(b->grad), db_ref) < 1e-5);
    ob_ctx_step_reset(ctx);
    free_trainable(ctx, x);
    free_trainable(ctx, w);
    free_trainable(ctx, b);
}

static void test_linear_rejects_mismatch(ob_ctx *ctx) {
    ob_tensor *x = trainable(ctx, OB_SHAPE(2, 4), 1, -1, 1), *w = trainable(ctx, OB_SHAPE(3, 5), 2, -1, 1);
    CHECK(ob_linear(ctx, x, w, NULL, NULL) == NULL);
    CHECK(strstr(ob_ctx_error(ctx), "in 4 vs 5") != NULL);
    ob_ctx_step_reset(ctx);
    free_trainable(ctx, x);
    free_trainable(ctx, w);
}

int main(void) {
    ob_ctx_config config = {.threads = 2, .seed = 1, .rank = 0, .world_size = 1};
    ob_ctx *ctx = ob_ctx_new(&config);
    test_batchnorm(ctx, OB_SHAPE(4, 3, 3, 5));
    test_batchnorm(ctx, OB_SHAPE(16, 600)); /* wider than one channel block of the kernel */
    test_batchnorm_rejects_one_row(ctx);
    test_xent_hand_example(ctx, 0.0, 0.753109126556245);
    test_xent_hand_example(ctx, 0.1, 0.803109126556245);
    test_xent_huge_logits(ctx);
    test_xent_rejects_bad_labels(ctx);
    test_linear(ctx);
    test_linear_rejects_mismatch(ctx);
    ob_ctx_free(ctx);
    return report_checks();
}
