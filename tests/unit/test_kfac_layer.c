/* K-FAC per-layer numerics (optimizers/kfac/kfac_layer.c) and the backend's
 * linear algebra, against references written here with plain loops:
 *  - Linear and Conv2d factors from the capture hook (a real forward and
 *    backward), against an explicit im2col;
 *  - the preconditioned gradient of the eigen (with and without the outer
 *    precompute), inverse and DP-damped inverse methods, against a dense
 *    Kronecker system solved by Gaussian elimination;
 *  - gemm, syrk, sym_eigen, spd_inverse, with F32 variants;
 *  - the eigenvalue clamp, π, gather/scatter, running average, KL term. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ob_backend.h"
#include "nn/ob_layers.h"
#include "nn/ob_ops.h"
#include "nn/ob_rng.h"
#include "nn/ob_tape.h"
#include "optimizers/kfac/kfac_layer.h"

#include "ob_check.h"
#include "tensor_access.h"


/* Uniform in [-1, 1), a pure function of (salt, i). */
static double uniform(uint64_t salt, int64_t i) {
    ob_rng_stream stream = ob_rng_stream_make(11, OB_RNG_TEST, 0, salt);
    return 2.0 * ob_rng_uniform(&stream, (uint64_t)i) - 1.0;
}
static void fill_uniform(ob_tensor *t, uint64_t salt) {
    for (int64_t i = 0; i < t->numel; i++) set(t, i, uniform(salt, i));
}

static ob_tensor *temp(ob_ctx *ctx, ob_dtype dtype, int ndim, const int64_t *shape) {
    return ob_tensor_temp(ctx, OB_MEM_WORKSPACE, dtype, ndim, shape);
}

/* max |got - want| / max |want| over n values (want a plain double array). */
static double relative_error(const ob_tensor *got, const double *want, int64_t n) {
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs(get(got, i) - want[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    return diff / fmax(scale, 1e-300);
}

static void check_error(double error, double tolerance, const char *what) {
    char line[200];
    snprintf(line, sizeof line, "%s (relative error %.2g)", what, error);
    check(error <= tolerance, line);
}

/* Solves k x = b in place (b becomes x) by Gaussian elimination with partial
 * pivoting; k [n,n] is destroyed. */
static void gauss_solve(int n, double *k, double *b) {
    for (int col = 0; col < n; col++) {
        int pivot = col;
        for (int r = col + 1; r < n; r++)
            if (fabs(k[r * n + col]) > fabs(k[pivot * n + col])) pivot = r;
        if (pivot != col) {
            for (int c = 0; c < n; c++) {
                double t = k[col * n + c];
                k[col * n + c] = k[pivot * n + c];
                k[pivot * n + c] = t;
            }
            double t = b[col];
            b[col] = b[pivot];
            b[pivot] = t;
        }
        for (int r = col + 1; r < n; r++) {
            double factor = k[r * n + col] / k[col * n + col];
            for (int c = col; c < n; c++) k[r * n + c] -= factor * k[col * n + c];
            b[r] -= factor * b[col];
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        double sum = b[r];
        for (int c = r + 1; c < n; c++) sum -= k[r * n + c] * b[c];
        b[r] = sum / k[r * n + r];
    }
}

/* x = ((G + g_shift I) ⊗ (A + a_shift I) + shift I)^-1 vec(grad), the
 * Kronecker matrix built explicitly: row (i, j), column (k, l) holds
 * (G + g_shift I)[i,k] (A + a_shift I)[j,l], which maps vec(X) (row-major) to
 * vec(G X A) for symmetric A. */
static double *kronecker_solve(const ob_tensor *g_factor, const ob_tensor *a_factor, double g_shift,
                               double a_shift, double shift, const ob_tensor *grad) {
    int gd = (int)g_factor->shape[0], ad = (int)a_factor->shape[0], n = gd * ad;
    double *k = malloc(sizeof *k * (size_t)n * n), *x = malloc(sizeof *x * (size_t)n);
    for (int i = 0; i < gd; i++)
        for (int j = 0; j < ad; j++)
            for (int p = 0; p < gd; p++)
                for (int q = 0; q < ad; q++) {
                    double g = get(g_factor, i * gd + p) + (i == p ? g_shift : 0);
                    double a = get(a_factor, j * ad + q) + (j == q ? a_shift : 0);
                    k[(i * ad + j) * n + p * ad + q] = g * a + (i * ad + j == p * ad + q ? shift : 0);
                }
    for (int i = 0; i < n; i++) x[i] = get(grad, i);
    gauss_solve(n, k, x);
    free(k);
    return x;
}

/* ---- factors from the capture hook ---- */

/* Linear: a = x (| 1), A = a^T a / B; G = dy^T dy / B. */
static void reference_linear_factors(const ob_kfac_layer *l, double *a_ref, double *g_ref) {
    const ob_tensor *x = l->layer->captured_input, *dy = l->layer->captured_grad_output;
    int64_t batch = x->shape[0], in = x->shape[1], ad = l->a_dim, gd = l->g_dim;
    for (int64_t i = 0; i < ad; i++)
        for (int64_t j = 0; j < ad; j++) {
            double sum = 0;
            for (int64_t b = 0; b < batch; b++)
                sum += (i < in ? get(x, b * in + i) : 1.0) * (j < in ? get(x, b * in + j) : 1.0);
            a_ref[i * ad + j] = sum / batch;
        }
    for (int64_t i = 0; i < gd; i++)
        for (int64_t j = 0; j < gd; j++) {
            double sum = 0;
            for (int64_t b = 0; b < batch; b++) sum += get(dy, b * gd + i) * get(dy, b * gd + j);
            g_ref[i * gd + j] = sum / batch;
        }
}

/* Conv2d: patch rows gathered here tap by tap (kh, kw, ic order, 0 in the
 * padding, | 1 with a bias), every row of a and g divided by S = H_out W_out,
 * A = a^T a / (B S), G = g^T g / (B S). */
static void reference_conv_factors(const ob_kfac_layer *l, double *a_ref, double *g_ref) {
    const ob_conv2d_layer *conv = (const ob_conv2d_layer *)l->layer;
    const ob_tensor *x = l->layer->captured_input, *dy = l->layer->captured_grad_output;
    int64_t batch = x->shape[0], in_h = x->shape[1], in_w = x->shape[2], in_c = x->shape[3];
    int64_t out_h = dy->shape[1], out_w = dy->shape[2];
    int64_t kh_n = l->weight->shape[1], kw_n = l->weight->shape[2];
    int64_t ad = l->a_dim, gd = l->g_dim, rows = batch * out_h * out_w;
    double spatial = (double)(out_h * out_w);
    double *a = calloc((size_t)(rows * ad), sizeof *a);
    for (int64_t b = 0; b < batch; b++)
        for (int64_t oh = 0; oh < out_h; oh++)
            for (int64_t ow = 0; ow < out_w; ow++) {
                double *row = a + ((b * out_h + oh) * out_w + ow) * ad;
                for (int64_t kh = 0; kh < kh_n; kh++)
                    for (int64_t kw = 0; kw < kw_n; kw++)
                        for (int64_t ic = 0; ic < in_c; ic++) {
                            int64_t ih = oh * conv->stride - conv->pad + kh * conv->dilation;
                            int64_t iw = ow * conv->stride - conv->pad + kw * conv->dilation;
                            bool inside = ih >= 0 && ih < in_h && iw >= 0 && iw < in_w;
                            row[(kh * kw_n + kw) * in_c + ic] =
                                inside ? get(x, ((b * in_h + ih) * in_w + iw) * in_c + ic) / spatial : 0;
                        }
                if (l->bias) row[ad - 1] = 1 / spatial;
            }
    for (int64_t i = 0; i < ad; i++)
        for (int64_t j = 0; j < ad; j++) {
            double sum = 0;
            for (int64_t r = 0; r < rows; r++) sum += a[r * ad + i] * a[r * ad + j];
            a_ref[i * ad + j] = sum / rows;
        }
    for (int64_t i = 0; i < gd; i++)
        for (int64_t j = 0; j < gd; j++) {
            double sum = 0;
            for (int64_t r = 0; r < rows; r++)
                sum += get(dy, r * gd + i) / spatial * get(dy, r * gd + j) / spatial;
            g_ref[i * gd + j] = sum / rows;
        }
    free(a);
}

static ob_tensor *labels_for(ob_ctx *ctx, int64_t batch, int64_t classes) {
    ob_tensor *labels = ob_tensor_temp(ctx, OB_MEM_DATA, OB_I32, OB_SHAPE(batch));
    for (int64_t b = 0; b < batch; b++) ((int32_t *)labels->data)[b] = (int32_t)((b * 7 + 1) % classes);
    return labels;
}

/* Forward and backward with capture on. Linear: softmax cross-entropy of its
 * output. Conv2d: max-pool 2x2 stride 1 (so the output gradient varies over
 * space), global average pool, softmax cross-entropy. Returns the loss's
 * backward status. */
static int run_with_capture(ob_ctx *ctx, ob_layer *layer, ob_tensor *x) {
    layer->capture = true;
    layer->captured_input = layer->captured_grad_output = NULL;
    ob_tensor *logits;
    if (layer->type == OB_LAYER_LINEAR) {
        logits = ob_linear_layer_forward(ctx, (ob_linear_layer *)layer, x);
    } else {
        ob_tensor *y = ob_conv2d_layer_forward(ctx, (ob_conv2d_layer *)layer, x);
        logits = y ? ob_global_avgpool(ctx, ob_maxpool2d(ctx, y, 2, 1, 0)) : NULL;
    }
    if (!logits) return 1;
    ob_tensor *loss =
        ob_softmax_cross_entropy(ctx, logits, labels_for(ctx, x->shape[0], logits->shape[1]), 0.0);
    return loss ? ob_backward(ctx, loss) : 1;
}

/* Builds the layer's factors through the capture hook and compares them
 * with the loop reference. */
static void check_factors(ob_ctx *ctx, ob_params *params, ob_layer *layer, const int64_t *x_shape, int x_ndim,
                          double tolerance, const char *name) {
    char what[160];
    ob_dtype dtype = ob_params_dtype(params);
    ob_kfac_layer l;
    snprintf(what, sizeof what, "%s: described", name);
    check(ob_kfac_layer_describe(layer, &l) == 0, what);
    ob_tensor *x = temp(ctx, dtype, x_ndim, x_shape);
    fill_uniform(x, (uint64_t)l.a_dim * 31 + (uint64_t)l.g_dim);
    snprintf(what, sizeof what, "%s: forward and backward", name);
    check(run_with_capture(ctx, layer, x) == 0, what);
    snprintf(what, sizeof what, "%s: the hook captured the input and the output gradient", name);
    check(layer->captured_input == x && layer->captured_grad_output != NULL, what);

    ob_tensor *a_batch = temp(ctx, dtype, OB_SHAPE(l.a_dim, l.a_dim));
    ob_tensor *g_batch = temp(ctx, dtype, OB_SHAPE(l.g_dim, l.g_dim));
    int rc = ob_kfac_batch_factors(ctx, &l, a_batch, g_batch);
    snprintf(what, sizeof what, "%s: batch factors computed", name);
    check(rc == 0, what);
    if (rc) printf("  %s\n", ob_ctx_error(ctx));
    double *a_ref = malloc(sizeof *a_ref * (size_t)(l.a_dim * l.a_dim));
    double *g_ref = malloc(sizeof *g_ref * (size_t)(l.g_dim * l.g_dim));
    if (layer->type == OB_LAYER_LINEAR)
        reference_linear_factors(&l, a_ref, g_ref);
    else
        reference_conv_factors(&l, a_ref, g_ref);
    snprintf(what, sizeof what, "%s: A matches the explicit im2col", name);
    check_error(relative_error(a_batch, a_ref, l.a_dim * l.a_dim), tolerance, what);
    snprintf(what, sizeof what, "%s: G matches the output-gradient rows", name);
    check_error(relative_error(g_batch, g_ref, l.g_dim * l.g_dim), tolerance, what);
    /* kfac.batch_averaged: the output gradient times the batch, so G times B^2 */
    l.undo_batch_mean = true;
    snprintf(what, sizeof what, "%s: batch-averaged G computed", name);
    check(ob_kfac_batch_factors(ctx, &l, a_batch, g_batch) == 0, what);
    for (int64_t i = 0; i < l.g_dim * l.g_dim; i++) g_ref[i] *= (double)(x_shape[0] * x_shape[0]);
    snprintf(what, sizeof what, "%s: batch-averaged G is B^2 times the reference", name);
    check_error(relative_error(g_batch, g_ref, l.g_dim * l.g_dim), tolerance, what);
    free(a_ref);
    free(g_ref);
    ob_ctx_step_reset(ctx);
}

typedef struct {
    const char *name;
    int in_c, out_c, kernel, stride, pad, dilation;
    bool bias;
} conv_case;

static const conv_case conv_cases[] = {
    {"conv 3x3 stride 2 pad 1, bias", 2, 3, 3, 2, 1, 1, true},
    {"conv 3x3 stride 2 pad 1, no bias", 2, 3, 3, 2, 1, 1, false},
    {"conv 1x1 stride 2 pad 1, bias", 3, 4, 1, 2, 1, 1, true},
    {"conv 1x1 stride 2 pad 1, no bias", 3, 4, 1, 2, 1, 1, false},
    {"conv 1x1 pointwise, bias", 3, 4, 1, 1, 0, 1, true},
    {"conv 1x1 pointwise, no bias", 3, 4, 1, 1, 0, 1, false},
    {"conv 3x3 dilation 2 pad 2, bias", 2, 3, 3, 1, 2, 2, true},
};

static void test_factors(ob_ctx *ctx, ob_dtype dtype, double tolerance) {
    for (int bias = 0; bias < 2; bias++) {
        ob_params *params = ob_params_new(dtype);
        ob_linear_layer *linear = ob_linear_layer_new(ctx, params, "fc", 5, 4, bias);
        char name[80];
        snprintf(name, sizeof name, "%s linear 5->4%s", ob_dtype_name(dtype), bias ? " with bias" : "");
        if (linear) check_factors(ctx, params, &linear->base, (const int64_t[]){7, 5}, 2, tolerance, name);
        ob_params_free(ctx, params);
    }
    for (size_t c = 0; c < sizeof conv_cases / sizeof conv_cases[0]; c++) {
        const conv_case *cc = &conv_cases[c];
        ob_params *params = ob_params_new(dtype);
        ob_conv2d_layer *conv = ob_conv2d_layer_new(ctx, params, "conv", cc->in_c, cc->out_c, cc->kernel,
                                                    cc->stride, cc->pad, cc->dilation, cc->bias);
        char name[120];
        snprintf(name, sizeof name, "%s %s", ob_dtype_name(dtype), cc->name);
        if (conv)
            check_factors(ctx, params, &conv->base, (const int64_t[]){3, 5, 6, cc->in_c}, 4, tolerance, name);
        ob_params_free(ctx, params);
    }
}

static void test_describe_and_errors(ob_ctx *ctx) {
    ob_params *params = ob_params_new(OB_F64);
    ob_batchnorm_layer *bn = ob_batchnorm_layer_new(ctx, params, "bn", 4, 0.1, 1e-5, 1.0);
    ob_conv2d_layer *conv = ob_conv2d_layer_new(ctx, params, "conv", 3, 8, 3, 1, 1, 1, true);
    ob_linear_layer *fc = ob_linear_layer_new(ctx, params, "fc", 6, 2, false);
    ob_kfac_layer l;
    check(ob_kfac_layer_describe(&bn->base, &l) != 0, "batch-norm is not a K-FAC layer");
    check(ob_kfac_layer_describe(&conv->base, &l) == 0 && l.a_dim == 3 * 3 * 3 + 1 && l.g_dim == 8 &&
              l.weight == conv->weight && l.bias == conv->bias,
          "conv 3->8 k3 with bias: a_dim 28, g_dim 8");
    check(ob_kfac_layer_describe(&fc->base, &l) == 0 && l.a_dim == 6 && l.g_dim == 2 && l.bias == NULL,
          "linear 6->2 without bias: a_dim 6, g_dim 2");
    ob_tensor *a = temp(ctx, OB_F64, OB_SHAPE(6, 6)), *g = temp(ctx, OB_F64, OB_SHAPE(2, 2));
    fc->base.captured_input = fc->base.captured_grad_output = NULL;
    check(ob_kfac_batch_factors(ctx, &l, a, g) != 0 && strstr(ob_ctx_error(ctx), "fc") != NULL,
          "factors without captures are refused, naming the layer");
    ob_ctx_step_reset(ctx);
    ob_params_free(ctx, params);
}

/* ---- preconditioning against the dense Kronecker system ---- */

/* F = 0.5 I + 0.5 F_batch: positive definite whatever the batch. */
static void running_from_identity(ob_ctx *ctx, const ob_tensor *batch, ob_tensor **running) {
    int64_t n = batch->shape[0];
    *running = temp(ctx, batch->dtype, OB_SHAPE(n, n));
    ob_backend_of(batch)->fill(*running, 0);
    ob_backend_of(batch)->add_diagonal(*running, 1.0);
    ob_kfac_running_average(0.5, batch, *running);
}

static void check_preconditioning(ob_ctx *ctx, ob_layer *layer, const int64_t *x_shape, int x_ndim,
                                  const char *name) {
    char what[160];
    const double damping = 1e-2, tolerance = 1e-9;
    ob_kfac_layer l;
    ob_kfac_layer_describe(layer, &l);
    ob_tensor *x = temp(ctx, OB_F64, x_ndim, x_shape);
    fill_uniform(x, 5);
    ob_tensor *a_batch = temp(ctx, OB_F64, OB_SHAPE(l.a_dim, l.a_dim));
    ob_tensor *g_batch = temp(ctx, OB_F64, OB_SHAPE(l.g_dim, l.g_dim));
    if (run_with_capture(ctx, layer, x) || ob_kfac_batch_factors(ctx, &l, a_batch, g_batch)) {
        check(false, ob_ctx_error(ctx));
        ob_ctx_step_reset(ctx);
        return;
    }
    ob_tensor *a, *g;
    running_from_identity(ctx, a_batch, &a);
    running_from_identity(ctx, g_batch, &g);
    ob_tensor *grad = temp(ctx, OB_F64, OB_SHAPE(l.g_dim, l.a_dim));
    ob_kfac_gather_grad(&l, grad);
    int64_t n = l.g_dim * l.a_dim;

    /* eigen, with the outer formed per call and precomputed */
    ob_tensor *q_a = temp(ctx, OB_F64, OB_SHAPE(l.a_dim, l.a_dim));
    ob_tensor *d_a = temp(ctx, OB_F64, OB_SHAPE(l.a_dim));
    ob_tensor *q_g = temp(ctx, OB_F64, OB_SHAPE(l.g_dim, l.g_dim));
    ob_tensor *d_g = temp(ctx, OB_F64, OB_SHAPE(l.g_dim));
    ob_tensor *v = temp(ctx, OB_F64, OB_SHAPE(l.g_dim, l.a_dim));
    ob_tensor *v_outer = temp(ctx, OB_F64, OB_SHAPE(l.g_dim, l.a_dim));
    ob_tensor *outer = temp(ctx, OB_F64, OB_SHAPE(l.g_dim, l.a_dim));
    check(ob_kfac_eigen(ctx, a, q_a, d_a) == 0 && ob_kfac_eigen(ctx, g, q_g, d_g) == 0,
          "eigendecompositions");
    check(ob_kfac_precondition_eigen(ctx, q_g, d_g, q_a, d_a, damping, grad, v) == 0,
          "eigen preconditioning");
    /* in place (the K-FAC scratch decomposes a wide copy where it lies): the same bits */
    ob_tensor *g_copy = temp(ctx, OB_F64, OB_SHAPE(l.g_dim, l.g_dim));
    ob_tensor *d_copy = temp(ctx, OB_F64, OB_SHAPE(l.g_dim));
    ob_backend_of(g)->copy(g, g_copy);
    snprintf(what, sizeof what, "%s: eigen in place gives the out-of-place bits", name);
    check(ob_kfac_eigen(ctx, g_copy, g_copy, d_copy) == 0 &&
              memcmp(g_copy->data, q_g->data, ob_tensor_bytes(q_g)) == 0 &&
              memcmp(d_copy->data, d_g->data, ob_tensor_bytes(d_g)) == 0,
          what);
    ob_kfac_eigen_outer(d_g, d_a, damping, outer);
    check(ob_kfac_precondition_eigen_outer(ctx, q_g, q_a, outer, grad, v_outer) == 0,
          "eigen preconditioning with the outer precomputed");
    double *want = kronecker_solve(g, a, 0, 0, damping, grad);
    snprintf(what, sizeof what, "%s: eigen method = (G ⊗ A + λI)^-1 vec(∇)", name);
    check_error(relative_error(v, want, n), tolerance, what);
    snprintf(what, sizeof what, "%s: eigen method with the precomputed outer = (G ⊗ A + λI)^-1 vec(∇)", name);
    check_error(relative_error(v_outer, want, n), tolerance, what);
    free(want);

    /* inverse, out aliasing the gradient */
    ob_tensor *a_inv = temp(ctx, OB_F64, OB_SHAPE(l.a_dim, l.a_dim));
    ob_tensor *g_inv = temp(ctx, OB_F64, OB_SHAPE(l.g_dim, l.g_dim));
    ob_tensor *in_place = temp(ctx, OB_F64, OB_SHAPE(l.g_dim, l.a_dim));
    ob_backend_of(grad)->copy(grad, in_place);
    check(ob_kfac_damped_inverse(ctx, a, damping, a_inv) == 0 &&
              ob_kfac_damped_inverse(ctx, g, damping, g_inv) == 0,
          "damped inverses");
    check(ob_kfac_precondition_inverse(ctx, g_inv, a_inv, in_place, in_place) == 0,
          "inverse preconditioning");
    want = kronecker_solve(g, a, damping, damping, 0, grad);
    snprintf(what, sizeof what, "%s: inverse method = ((G+λI) ⊗ (A+λI))^-1 vec(∇), in place", name);
    check_error(relative_error(in_place, want, n), tolerance, what);
    free(want);

    /* DP-KFAC factored damping */
    double pi = ob_kfac_dp_pi(a, g), root = sqrt(damping);
    check(ob_kfac_dp_damped_inverses(ctx, a, g, damping, a_inv, g_inv) == 0 &&
              ob_kfac_precondition_inverse(ctx, g_inv, a_inv, grad, v) == 0,
          "DP-damped inverse preconditioning");
    ob_tensor *a_copy = temp(ctx, OB_F64, OB_SHAPE(l.a_dim, l.a_dim));
    ob_backend_of(a)->copy(a, a_copy);
    ob_backend_of(g)->copy(g, g_copy);
    snprintf(what, sizeof what, "%s: DP-damped inverses in place give the out-of-place bits", name);
    check(ob_kfac_dp_damped_inverses(ctx, a_copy, g_copy, damping, a_copy, g_copy) == 0 &&
              memcmp(a_copy->data, a_inv->data, ob_tensor_bytes(a_inv)) == 0 &&
              memcmp(g_copy->data, g_inv->data, ob_tensor_bytes(g_inv)) == 0,
          what);
    want = kronecker_solve(g, a, root / pi, root * pi, 0, grad);
    snprintf(what, sizeof what, "%s: DP damping = ((G+√λ/π I) ⊗ (A+√λπ I))^-1 vec(∇)", name);
    check_error(relative_error(v, want, n), tolerance, what);

    double vg = 0;
    for (int64_t i = 0; i < n; i++) vg += get(v, i) * get(grad, i);
    snprintf(what, sizeof what, "%s: KL term = Σ v·g", name);
    check_error(fabs(ob_kfac_kl_term(grad, v) - vg) / fabs(vg), 1e-12, what);
    free(want);
    ob_ctx_step_reset(ctx);
}

static void test_preconditioning(ob_ctx *ctx) {
    ob_params *params = ob_params_new(OB_F64);
    ob_linear_layer *fc = ob_linear_layer_new(ctx, params, "fc", 5, 4, true);
    ob_conv2d_layer *conv = ob_conv2d_layer_new(ctx, params, "conv", 2, 3, 3, 1, 1, 1, true);
    ob_conv2d_layer *conv_nb = ob_conv2d_layer_new(ctx, params, "conv_nb", 2, 3, 3, 2, 1, 1, false);
    if (!fc || !conv || !conv_nb) {
        check(false, "preconditioning layers built");
        ob_params_free(ctx, params);
        return;
    }
    check_preconditioning(ctx, &fc->base, (const int64_t[]){9, 5}, 2, "linear 5->4 with bias");
    check_preconditioning(ctx, &conv->base, (const int64_t[]){2, 4, 4, 2}, 4, "conv 2->3 k3 with bias");
    check_preconditioning(ctx, &conv_nb->base, (const int64_t[]){2, 5, 5, 2}, 4, "conv 2->3 k3 s2 no bias");
    ob_params_free(ctx, params);
}

/* ---- backend linear algebra ---- */

static void test_gemm(ob_ctx *ctx, ob_dtype dtype, double tolerance) {
    const int64_t m = 5, n = 4, k = 3;
    const double alpha = 0.75, beta = -0.5;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            ob_tensor *a = ta ? temp(ctx, dtype, OB_SHAPE(k, m)) : temp(ctx, dtype, OB_SHAPE(m, k));
            ob_tensor *b = tb ? temp(ctx, dtype, OB_SHAPE(n, k)) : temp(ctx, dtype, OB_SHAPE(k, n));
            ob_tensor *c = temp(ctx, dtype, OB_SHAPE(m, n));
            fill_uniform(a, 100 + ta);
            fill_uniform(b, 200 + tb);
            fill_uniform(c, 300);
            double want[5 * 4];
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    double sum = 0;
                    for (int64_t p = 0; p < k; p++)
                        sum += get(a, ta ? p * m + i : i * k + p) * get(b, tb ? j * k + p : p * n + j);
                    want[i * n + j] = alpha * sum + beta * get(c, i * n + j);
                }
            ob_backend_of(a)->gemm(ctx, ta, tb, alpha, a, b, beta, c);
            char what[120];
            snprintf(what, sizeof what, "%s gemm trans_a %d trans_b %d", ob_dtype_name(dtype), ta, tb);
            check_error(relative_error(c, want, m * n), tolerance, what);
        }
    ob_ctx_step_reset(ctx);
}

/* x [batch, 3, width, 6]: 24 rows take the one threaded SYRK; 7 x 3 x 11 =
 * 231 rows (over 32 per column, odd) are cut into one slice per thread of
 * the ctx (2), whose scratch must be handed back. */
static void test_syrk(ob_ctx *ctx, ob_dtype dtype, double tolerance, int64_t batch, int64_t width) {
    const int64_t n = 6, rows = batch * 3 * width;
    const double alpha = 0.25, beta = 0.5;
    ob_tensor *x = temp(ctx, dtype, OB_SHAPE(batch, 3, width, n)), *c = temp(ctx, dtype, OB_SHAPE(n, n));
    fill_uniform(x, 400);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double v = uniform(401, i * n + j);
            set(c, i * n + j, v);
            set(c, j * n + i, v);
        }
    double want[6 * 6];
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double sum = 0;
            for (int64_t r = 0; r < rows; r++) sum += get(x, r * n + i) * get(x, r * n + j);
            want[i * n + j] = alpha * sum + beta * get(c, i * n + j);
        }
    int64_t workspace_before = ob_mem_current(ctx, OB_MEM_WORKSPACE);
    char what[120];
    snprintf(what, sizeof what, "%s syrk of a 4-d x with %lld rows returns 0", ob_dtype_name(dtype),
             (long long)rows);
    check(ob_backend_of(x)->syrk(ctx, alpha, x, beta, c) == 0, what);
    snprintf(what, sizeof what, "%s syrk of a 4-d x with %lld rows gives its scratch back", ob_dtype_name(dtype),
             (long long)rows);
    check(ob_mem_current(ctx, OB_MEM_WORKSPACE) == workspace_before, what);
    snprintf(what, sizeof what, "%s syrk of a 4-d x with %lld rows, both triangles", ob_dtype_name(dtype),
             (long long)rows);
    check_error(relative_error(c, want, n * n), tolerance, what);
    ob_ctx_step_reset(ctx);
}

/* A random symmetric [n,n] matrix with eigenvalues well apart: M + M^T + diag(0..n-1)·3. */
static ob_tensor *random_symmetric(ob_ctx *ctx, ob_dtype dtype, int64_t n, uint64_t salt) {
    ob_tensor *a = temp(ctx, dtype, OB_SHAPE(n, n));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double v = uniform(salt, i * n + j) + uniform(salt, j * n + i) + (i == j ? 3.0 * (double)i : 0);
            set(a, i * n + j, v);
            set(a, j * n + i, v);
        }
    return a;
}

static void test_sym_eigen(ob_ctx *ctx, ob_dtype dtype, double tolerance) {
    const int64_t n = 7;
    ob_tensor *a = random_symmetric(ctx, dtype, n, 500);
    ob_tensor *q = temp(ctx, dtype, OB_SHAPE(n, n)), *d = temp(ctx, dtype, OB_SHAPE(n));
    double original[7 * 7], rebuilt[7 * 7], gram[7 * 7], identity[7 * 7];
    for (int64_t i = 0; i < n * n; i++) original[i] = get(a, i);
    char what[120];
    snprintf(what, sizeof what, "%s sym_eigen succeeds", ob_dtype_name(dtype));
    check(ob_backend_of(a)->sym_eigen(ctx, a, q, d) == 0, what);
    bool ascending = true;
    for (int64_t i = 1; i < n; i++) ascending = ascending && get(d, i - 1) <= get(d, i);
    snprintf(what, sizeof what, "%s sym_eigen: eigenvalues ascending", ob_dtype_name(dtype));
    check(ascending, what);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double sum = 0, dot = 0;
            for (int64_t k = 0; k < n; k++) {
                sum += get(q, i * n + k) * get(d, k) * get(q, j * n + k);
                dot += get(q, k * n + i) * get(q, k * n + j);
            }
            rebuilt[i * n + j] = sum;
            gram[i * n + j] = dot;
            identity[i * n + j] = i == j;
        }
    /* A q[:, j] = d[j] q[:, j] for the first column: the columns are the eigenvectors. */
    double residual = 0;
    for (int64_t i = 0; i < n; i++) {
        double aq = 0;
        for (int64_t k = 0; k < n; k++) aq += original[i * n + k] * get(q, k * n);
        residual = fmax(residual, fabs(aq - get(d, 0) * get(q, i * n)));
    }
    ob_tensor *rebuilt_t = temp(ctx, OB_F64, OB_SHAPE(n, n)), *gram_t = temp(ctx, OB_F64, OB_SHAPE(n, n));
    memcpy(rebuilt_t->data, rebuilt, sizeof rebuilt);
    memcpy(gram_t->data, gram, sizeof gram);
    snprintf(what, sizeof what, "%s sym_eigen: q diag(d) q^T = a", ob_dtype_name(dtype));
    check_error(relative_error(rebuilt_t, original, n * n), tolerance, what);
    snprintf(what, sizeof what, "%s sym_eigen: q^T q = I", ob_dtype_name(dtype));
    check_error(relative_error(gram_t, identity, n * n), tolerance, what);
    snprintf(what, sizeof what, "%s sym_eigen: a q[:,0] = d[0] q[:,0] (columns are eigenvectors)",
             ob_dtype_name(dtype));
    check_error(residual / fabs(get(d, n - 1)), tolerance, what);
    snprintf(what, sizeof what, "%s sym_eigen leaves a alone", ob_dtype_name(dtype));
    check(relative_error(a, original, n * n) == 0, what);
    ob_ctx_step_reset(ctx);
}

/* diag(-1, 2, 3) rotated by a Householder reflection: ob_kfac_eigen gives 0, 2, 3. */
static void test_eigen_clamp(ob_ctx *ctx) {
    const int64_t n = 3;
    const double u[3] = {1 / sqrt(3.0), 1 / sqrt(3.0), 1 / sqrt(3.0)}, values[3] = {-1, 2, 3};
    ob_tensor *f = temp(ctx, OB_F64, OB_SHAPE(n, n)), *q = temp(ctx, OB_F64, OB_SHAPE(n, n));
    ob_tensor *d = temp(ctx, OB_F64, OB_SHAPE(n));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double sum = 0; /* H diag(values) H, H = I - 2 u u^T */
            for (int64_t k = 0; k < n; k++)
                sum += ((i == k) - 2 * u[i] * u[k]) * values[k] * ((k == j) - 2 * u[k] * u[j]);
            set(f, i * n + j, sum);
        }
    check(ob_kfac_eigen(ctx, f, q, d) == 0, "eigen of a factor with a negative eigenvalue");
    check(get(d, 0) == 0 && fabs(get(d, 1) - 2) < 1e-12 && fabs(get(d, 2) - 3) < 1e-12,
          "negative eigenvalue clamped to 0, the others kept");
    ob_ctx_step_reset(ctx);
}

static void test_spd_inverse(ob_ctx *ctx, ob_dtype dtype, double tolerance) {
    const int64_t n = 6;
    ob_tensor *m = temp(ctx, dtype, OB_SHAPE(n, n)), *a = temp(ctx, dtype, OB_SHAPE(n, n));
    fill_uniform(m, 600);
    /* a = m m^T + I */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double sum = i == j;
            for (int64_t k = 0; k < n; k++) sum += get(m, i * n + k) * get(m, j * n + k);
            set(a, i * n + j, sum);
        }
    ob_tensor *inv = temp(ctx, dtype, OB_SHAPE(n, n)), *product = temp(ctx, OB_F64, OB_SHAPE(n, n));
    char what[120];
    snprintf(what, sizeof what, "%s spd_inverse succeeds", ob_dtype_name(dtype));
    check(ob_backend_of(a)->spd_inverse(ctx, a, inv) == 0, what);
    double identity[6 * 6];
    bool symmetric = true;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double sum = 0;
            for (int64_t k = 0; k < n; k++) sum += get(inv, i * n + k) * get(a, k * n + j);
            set(product, i * n + j, sum);
            identity[i * n + j] = i == j;
            symmetric = symmetric && get(inv, i * n + j) == get(inv, j * n + i);
        }
    snprintf(what, sizeof what, "%s spd_inverse: inv a = I", ob_dtype_name(dtype));
    check_error(relative_error(product, identity, n * n), tolerance, what);
    snprintf(what, sizeof what, "%s spd_inverse: both triangles filled", ob_dtype_name(dtype));
    check(symmetric, what);
    snprintf(what, sizeof what, "%s spd_inverse in place inverts back", ob_dtype_name(dtype));
    check(ob_backend_of(inv)->spd_inverse(ctx, inv, inv) == 0, what);
    double original[6 * 6];
    for (int64_t i = 0; i < n * n; i++) original[i] = get(a, i);
    check_error(relative_error(inv, original, n * n), tolerance * 10, what);

    set(a, 0, -1.0); /* a[0,0] < 0: not positive definite */
    snprintf(what, sizeof what, "%s spd_inverse refuses an indefinite matrix", ob_dtype_name(dtype));
    check(ob_backend_of(a)->spd_inverse(ctx, a, inv) != 0 && strstr(ob_ctx_error(ctx), "positive definite"),
          what);
    ob_ctx_step_reset(ctx);
}

/* ---- the small per-layer helpers ---- */

static void test_damped_inverse_and_pi(ob_ctx *ctx) {
    /* A = diag(4, 12): mean trace 8; G = [[1, 0.5, 0], [0.5, 2, 0], [0, 0, 3]]: mean 2; π = 2 */
    ob_tensor *a = temp(ctx, OB_F64, OB_SHAPE(2, 2)), *g = temp(ctx, OB_F64, OB_SHAPE(3, 3));
    const double a_values[4] = {4, 0, 0, 12}, g_values[9] = {1, 0.5, 0, 0.5, 2, 0, 0, 0, 3};
    memcpy(a->data, a_values, sizeof a_values);
    memcpy(g->data, g_values, sizeof g_values);
    check(fabs(ob_kfac_dp_pi(a, g) - 2) < 1e-15, "π = sqrt((16/2) / (6/3)) = 2");
    ob_tensor *zero = temp(ctx, OB_F64, OB_SHAPE(3, 3));
    ob_backend_of(zero)->fill(zero, 0);
    check(ob_kfac_dp_pi(a, zero) == 1 && ob_kfac_dp_pi(zero, g) == 1, "π = 1 when a trace is 0");

    /* λ = 0.25: A + √λ π I = diag(5, 13), G + √λ/π I = G + 0.25 I */
    ob_tensor *a_inv = temp(ctx, OB_F64, OB_SHAPE(2, 2)), *g_inv = temp(ctx, OB_F64, OB_SHAPE(3, 3));
    check(ob_kfac_dp_damped_inverses(ctx, a, g, 0.25, a_inv, g_inv) == 0, "DP damped inverses");
    const double a_want[4] = {1.0 / 5, 0, 0, 1.0 / 13};
    check_error(relative_error(a_inv, a_want, 4), 1e-15, "DP: A's inverse is diag(1/5, 1/13)");
    /* [[1.25, 0.5], [0.5, 2.25]]^-1 = [[2.25, -0.5], [-0.5, 1.25]] / 2.5625, and 1/3.25 */
    const double det = 1.25 * 2.25 - 0.25;
    const double g_want[9] = {2.25 / det, -0.5 / det, 0, -0.5 / det, 1.25 / det, 0, 0, 0, 1 / 3.25};
    check_error(relative_error(g_inv, g_want, 9), 1e-14, "DP: G's inverse by hand");
    check(ob_kfac_damped_inverse(ctx, g, 0.25, g) == 0, "damped inverse in place");
    check_error(relative_error(g, g_want, 9), 1e-14, "(G + 0.25 I)^-1 in place");
    ob_ctx_step_reset(ctx);
}

static void test_running_average(ob_ctx *ctx) {
    ob_tensor *running = temp(ctx, OB_F64, OB_SHAPE(3, 3)), *batch = temp(ctx, OB_F64, OB_SHAPE(3, 3));
    fill_uniform(running, 700);
    fill_uniform(batch, 701);
    double want[9];
    for (int i = 0; i < 9; i++) want[i] = 0.95 * get(running, i) + 0.05 * get(batch, i);
    ob_kfac_running_average(0.95, batch, running);
    check_error(relative_error(running, want, 9), 1e-15, "running average 0.95 F + 0.05 F_batch");
    ob_ctx_step_reset(ctx);
}

/* Conv 3->2, k3, bias: grad_mat[o, (kh, kw, ic)] = dW[o, kh, kw, ic], grad_mat[o, 27] = db[o]. */
static void test_gather_scatter(ob_ctx *ctx) {
    ob_params *params = ob_params_new(OB_F64);
    ob_conv2d_layer *conv = ob_conv2d_layer_new(ctx, params, "conv", 3, 2, 3, 1, 1, 1, true);
    ob_kfac_layer l;
    if (!conv || ob_kfac_layer_describe(&conv->base, &l)) {
        check(false, "gather/scatter: conv built");
        ob_params_free(ctx, params);
        return;
    }
    fill_uniform(conv->weight->grad, 800);
    fill_uniform(conv->bias->grad, 801);
    ob_tensor *mat = temp(ctx, OB_F64, OB_SHAPE(l.g_dim, l.a_dim));
    ob_kfac_gather_grad(&l, mat);
    bool laid_out = true;
    for (int64_t o = 0; o < 2; o++) {
        for (int64_t k = 0; k < 27; k++)
            laid_out = laid_out && get(mat, o * 28 + k) == get(conv->weight->grad, o * 27 + k);
        laid_out = laid_out && get(mat, o * 28 + 27) == get(conv->bias->grad, o);
    }
    check(laid_out, "gather: weight rows then the bias column");
    double doubled[2 * 28];
    for (int64_t i = 0; i < mat->numel; i++) {
        doubled[i] = 2 * get(mat, i);
        set(mat, i, doubled[i]);
    }
    ob_kfac_scatter_grad(&l, mat);
    bool scattered = true;
    for (int64_t o = 0; o < 2; o++) {
        for (int64_t k = 0; k < 27; k++)
            scattered = scattered && get(conv->weight->grad, o * 27 + k) == doubled[o * 28 + k];
        scattered = scattered && get(conv->bias->grad, o) == doubled[o * 28 + 27];
    }
    check(scattered, "scatter overwrites the weight and bias gradients");
    ob_backend_of(mat)->fill(mat, 0);
    ob_kfac_gather_grad(&l, mat);
    check(relative_error(mat, doubled, mat->numel) == 0, "gather after scatter gives the matrix back");
    ob_ctx_step_reset(ctx);
    ob_params_free(ctx, params);
}

int main(void) {
    ob_ctx *ctx = ob_ctx_new(&(ob_ctx_config){.threads = 2, .seed = 3, .world_size = 1});
    if (!ctx) {
        printf("cannot create a context\n0 passed, 1 failed\n");
        return 1;
    }
    test_describe_and_errors(ctx);
    test_factors(ctx, OB_F64, 1e-12);
    test_factors(ctx, OB_F32, 1e-5);
    test_preconditioning(ctx);
    for (int f64 = 0; f64 < 2; f64++) {
        ob_dtype dtype = f64 ? OB_F64 : OB_F32;
        double tolerance = f64 ? 1e-12 : 1e-5;
        test_gemm(ctx, dtype, tolerance);
        test_syrk(ctx, dtype, tolerance, 2, 4);
        test_syrk(ctx, dtype, tolerance, 7, 11);
        test_sym_eigen(ctx, dtype, tolerance);
        test_spd_inverse(ctx, dtype, f64 ? 1e-12 : 1e-4);
    }
    test_eigen_clamp(ctx);
    test_damped_inverse_and_pi(ctx);
    test_running_average(ctx);
    test_gather_scatter(ctx);
    ob_ctx_free(ctx);
    return report_checks();
}
