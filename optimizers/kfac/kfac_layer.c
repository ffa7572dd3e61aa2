/* K-FAC per-layer numerics (see kfac_layer.h): factors from the captures,
 * their running average, eigendecompositions and damped inverses, and the
 * preconditioned gradient. Shapes are checked where the ctx can take the
 * reason; the arithmetic is the backend's. */
#include <math.h>

#include "nn/ob_backend.h"
#include "optimizers/kfac/kfac_layer.h"

int ob_kfac_layer_describe(ob_layer *layer, ob_kfac_layer *out) {
    if (layer->type == OB_LAYER_LINEAR) {
        ob_linear_layer *linear = (ob_linear_layer *)layer;
        *out = (ob_kfac_layer){.layer = layer, .weight = linear->weight, .bias = linear->bias,
                               .a_dim = linear->weight->shape[1] + (linear->bias != NULL),
                               .g_dim = linear->weight->shape[0]};
        return 0;
    }
    if (layer->type == OB_LAYER_CONV2D) {
        ob_conv2d_layer *conv = (ob_conv2d_layer *)layer;
        const int64_t *w = conv->weight->shape;
        *out = (ob_kfac_layer){.layer = layer, .weight = conv->weight, .bias = conv->bias,
                               .a_dim = w[1] * w[2] * w[3] + (conv->bias != NULL), .g_dim = w[0]};
        return 0;
    }
    return 1;
}

/* True when t is a [rows, cols] matrix of the given dtype; otherwise says
 * which operand is off. */
static bool check_matrix(ob_ctx *ctx, const char *what, const ob_tensor *t, int64_t rows, int64_t cols,
                         ob_dtype dtype) {
    if (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols && t->dtype == dtype) return true;
    ob_ctx_set_error(ctx, "kfac: %s must be a %s [%lld, %lld] matrix", what, ob_dtype_name(dtype),
                     (long long)rows, (long long)cols);
    return false;
}

/* a = [x | 1]: x viewed as [rows, cols], a [rows, cols + 1] from the arena. */
static ob_tensor *append_ones_column(ob_ctx *ctx, const ob_tensor *x, int64_t rows, int64_t cols) {
    const ob_backend *backend = ob_backend_of(x);
    ob_tensor *a = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, x->dtype, OB_SHAPE(rows, cols + 1));
    ob_tensor *ones = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, x->dtype, OB_SHAPE(rows));
    if (!a || !ones) return NULL;
    backend->fill(ones, 1.0);
    backend->copy_columns(rows, cols, x, 0, a, 0);
    backend->copy_columns(rows, 1, ones, 0, a, cols);
    return a;
}

/* Output extent along one dim, as the conv op computes it:
 * (in + 2 pad - dilation (k - 1) - 1) / stride + 1. */
static int64_t conv_out_extent(int64_t in, int64_t kernel, int stride, int pad, int dilation) {
    return (in + 2 * (int64_t)pad - (int64_t)dilation * (kernel - 1) - 1) / stride + 1;
}

/* The geometry of the convolution that produced the captures: kernel from
 * the weight, stride, pad and dilation from the layer, sizes from the input;
 * the output gradient must have the output's shape. */
static bool capture_geometry(ob_ctx *ctx, const ob_kfac_layer *l, const ob_tensor *x, const ob_tensor *dy,
                             ob_conv2d_geom *g) {
    const ob_conv2d_layer *conv = (const ob_conv2d_layer *)l->layer;
    const int64_t *w = l->weight->shape;
    if (x->ndim != 4 || x->shape[3] != w[3] || dy->ndim != 4) {
        ob_ctx_set_error(ctx,
                         "kfac: %s captured a %d-d input and a %d-d output gradient, not NHWC with %lld "
                         "input channels",
                         l->layer->name, x->ndim, dy->ndim, (long long)w[3]);
        return false;
    }
    *g = (ob_conv2d_geom){.batch = x->shape[0], .in_h = (int)x->shape[1], .in_w = (int)x->shape[2],
                          .in_c = (int)w[3], .out_c = (int)w[0], .kernel_h = (int)w[1], .kernel_w = (int)w[2],
                          .stride = conv->stride, .pad = conv->pad, .dilation = conv->dilation};
    g->out_h = (int)conv_out_extent(g->in_h, g->kernel_h, g->stride, g->pad, g->dilation);
    g->out_w = (int)conv_out_extent(g->in_w, g->kernel_w, g->stride, g->pad, g->dilation);
    if (dy->shape[0] != g->batch || dy->shape[1] != g->out_h || dy->shape[2] != g->out_w ||
        dy->shape[3] != g->out_c) {
        ob_ctx_set_error(ctx, "kfac: %s's captured output gradient is not [%lld, %d, %d, %d]", l->layer->name,
                         (long long)g->batch, g->out_h, g->out_w, g->out_c);
        return false;
    }
    return true;
}

/* Rows of a: the captured input itself for a Linear layer or a pointwise
 * conv, otherwise its im2col matrix [B·S, patch]; with a bias, | 1. */
static const ob_tensor *a_rows(ob_ctx *ctx, const ob_kfac_layer *l, const ob_conv2d_geom *g,
                               const ob_tensor *x, int64_t rows) {
    int64_t patch = l->a_dim - (l->bias != NULL);
    const ob_tensor *patches = x;
    if (l->layer->type == OB_LAYER_CONV2D && !ob_conv2d_is_pointwise(g)) {
        ob_tensor *cols = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, x->dtype, OB_SHAPE(rows, patch));
        if (!cols) return NULL;
        ob_backend_of(x)->im2col(g, x, cols);
        patches = cols;
    }
    return l->bias ? append_ones_column(ctx, patches, rows, patch) : patches;
}

/* Linear: A = a^T a / B, G = g^T g / B.
 * Conv2d: rows scaled by 1/S and averaged over B·S rows, so
 *   A = a^T a / (B·S·S^2),  G = g^T g / (B·S·S^2),  S = H_out·W_out. */
int ob_kfac_batch_factors(ob_ctx *ctx, const ob_kfac_layer *l, ob_tensor *a_batch, ob_tensor *g_batch) {
    const ob_tensor *x = l->layer->captured_input, *dy = l->layer->captured_grad_output;
    if (!x || !dy) {
        ob_ctx_set_error(ctx, "kfac: %s has no captured %s (capture off, or no backward yet)", l->layer->name,
                         x ? "output gradient" : "input");
        return 1;
    }
    ob_dtype dtype = l->weight->dtype;
    if (x->dtype != dtype || dy->dtype != dtype) {
        ob_ctx_set_error(ctx, "kfac: %s's captures are not %s like its weight", l->layer->name,
                         ob_dtype_name(dtype));
        return 1;
    }
    if (!check_matrix(ctx, "the A factor", a_batch, l->a_dim, l->a_dim, dtype) ||
        !check_matrix(ctx, "the G factor", g_batch, l->g_dim, l->g_dim, dtype))
        return 1;

    ob_conv2d_geom g = {0};
    double spatial = 1;
    int64_t rows = x->shape[0];
    if (l->layer->type == OB_LAYER_CONV2D) {
        if (!capture_geometry(ctx, l, x, dy, &g)) return 1;
        spatial = (double)g.out_h * g.out_w;
        rows = g.batch * g.out_h * g.out_w;
    } else if (x->ndim != 2 || x->shape[1] != l->weight->shape[1] || dy->ndim != 2 || dy->shape[0] != rows ||
               dy->shape[1] != l->g_dim) {
        ob_ctx_set_error(ctx, "kfac: %s captured an input or output gradient that is not [batch, features]",
                         l->layer->name);
        return 1;
    }
    const ob_tensor *a = a_rows(ctx, l, &g, x, rows);
    if (!a) return 1;
    const ob_backend *backend = ob_backend_of(x);
    double scale = 1.0 / ((double)rows * spatial * spatial);
    /* Under loss scaling the captured gradient carries a factor s: G would
     * carry s^2, so it is divided out here (KAISA does the same with AMP). */
    double grad_scale = l->layer->captured_grad_scale > 0 ? l->layer->captured_grad_scale : 1.0;
    double batch = l->undo_batch_mean ? (double)dy->shape[0] : 1.0;
    if (backend->syrk(ctx, scale, a, 0.0, a_batch)) return 1;
    return backend->syrk(ctx, scale * batch * batch / (grad_scale * grad_scale), dy, 0.0, g_batch);
}

/* running = decay running + (1 - decay) batch */
void ob_kfac_running_average(double decay, const ob_tensor *batch, ob_tensor *running) {
    const ob_backend *backend = ob_backend_of(running);
    backend->scale(decay, running);
    backend->axpy(1.0 - decay, batch, running);
}

/* grad_mat = [dW viewed as [g_dim, a_dim - 1] | db] (no bias: dW viewed as [g_dim, a_dim]) */
void ob_kfac_gather_grad(const ob_kfac_layer *l, ob_tensor *grad_mat) {
    const ob_backend *backend = ob_backend_of(grad_mat);
    int64_t weight_cols = l->a_dim - (l->bias != NULL);
    backend->copy_columns(l->g_dim, weight_cols, l->weight->grad, 0, grad_mat, 0);
    if (l->bias) backend->copy_columns(l->g_dim, 1, l->bias->grad, 0, grad_mat, weight_cols);
}

/* dW = grad_mat[:, :a_dim - 1], db = grad_mat[:, a_dim - 1] (no bias: dW = grad_mat) */
void ob_kfac_scatter_grad(const ob_kfac_layer *l, const ob_tensor *grad_mat) {
    const ob_backend *backend = ob_backend_of(grad_mat);
    int64_t weight_cols = l->a_dim - (l->bias != NULL);
    backend->copy_columns(l->g_dim, weight_cols, grad_mat, 0, l->weight->grad, 0);
    if (l->bias) backend->copy_columns(l->g_dim, 1, grad_mat, weight_cols, l->bias->grad, 0);
}

/* factor = q diag(d) q^T, then d = max(d, 0). The factors are positive
 * semi-definite, but round-off leaves eigenvalues of about -eps·|F| where
 * they are near 0; kfac-pytorch clamps them at 0 the same way
 * (torch.clamp(d, min=0.0)) so that d_G d_A^T + λ stays >= λ. The clamp is
 * the backend's relu, in place. */
int ob_kfac_eigen(ob_ctx *ctx, const ob_tensor *factor, ob_tensor *q, ob_tensor *d) {
    int64_t n = factor->shape[0];
    if (!check_matrix(ctx, "a factor to decompose", factor, n, n, factor->dtype) ||
        !check_matrix(ctx, "its eigenvectors", q, n, n, factor->dtype))
        return 1;
    if (d->ndim != 1 || d->shape[0] != n || d->dtype != factor->dtype) {
        ob_ctx_set_error(ctx, "kfac: the eigenvalues must be a %s [%lld] vector",
                         ob_dtype_name(factor->dtype), (long long)n);
        return 1;
    }
    const ob_backend *backend = ob_backend_of(factor);
    if (backend->sym_eigen(ctx, factor, q, d)) return 1;
    backend->relu_forward(d, d);
    return 0;
}

/* inv = (factor + damping I)^-1 */
int ob_kfac_damped_inverse(ob_ctx *ctx, const ob_tensor *factor, double damping, ob_tensor *inv) {
    int64_t n = factor->shape[0];
    if (!check_matrix(ctx, "a factor to invert", factor, n, n, factor->dtype) ||
        !check_matrix(ctx, "its inverse", inv, n, n, factor->dtype))
        return 1;
    const ob_backend *backend = ob_backend_of(factor);
    if (inv->data != factor->data) backend->copy(factor, inv);
    backend->add_diagonal(inv, damping);
    return backend->spd_inverse(ctx, inv, inv);
}

/* outer = 1 / (d_G d_A^T + damping) */
void ob_kfac_eigen_outer(const ob_tensor *d_g, const ob_tensor *d_a, double damping, ob_tensor *outer) {
    ob_backend_of(outer)->outer_inverse(d_g, d_a, damping, outer);
}

/* out = Q_G [(Q_G^T grad Q_A) * outer] Q_A^T, through two [g_dim, a_dim]
 * workspaces; grad is read only by the first product, so out may be grad. */
int ob_kfac_precondition_eigen_outer(ob_ctx *ctx, const ob_tensor *q_g, const ob_tensor *q_a,
                                     const ob_tensor *outer, const ob_tensor *grad, ob_tensor *out) {
    int64_t g_dim = grad->shape[0], a_dim = grad->shape[1];
    ob_dtype dtype = grad->dtype;
    if (!check_matrix(ctx, "the gradient", grad, g_dim, a_dim, dtype) ||
        !check_matrix(ctx, "the preconditioned gradient", out, g_dim, a_dim, dtype) ||
        !check_matrix(ctx, "Q_G", q_g, g_dim, g_dim, dtype) ||
        !check_matrix(ctx, "Q_A", q_a, a_dim, a_dim, dtype) ||
        !check_matrix(ctx, "the eigenvalue outer product", outer, g_dim, a_dim, dtype))
        return 1;
    ob_tensor *left = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, dtype, OB_SHAPE(g_dim, a_dim));
    ob_tensor *both = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, dtype, OB_SHAPE(g_dim, a_dim));
    if (!left || !both) return 1;
    const ob_backend *backend = ob_backend_of(grad);
    backend->gemm(ctx, true, false, 1.0, q_g, grad, 0.0, left);  /* Q_G^T grad */
    backend->gemm(ctx, false, false, 1.0, left, q_a, 0.0, both); /* (Q_G^T grad) Q_A, the eigenbasis */
    backend->mul(both, outer, both);
    backend->gemm(ctx, false, false, 1.0, q_g, both, 0.0, left); /* back: Q_G (...) */
    backend->gemm(ctx, false, true, 1.0, left, q_a, 0.0, out);   /* (...) Q_A^T */
    return 0;
}

/* The eigen method with the outer formed for this call: the same products,
 * so precomputing it changes no bit of the result. */
int ob_kfac_precondition_eigen(ob_ctx *ctx, const ob_tensor *q_g, const ob_tensor *d_g, const ob_tensor *q_a,
                               const ob_tensor *d_a, double damping, const ob_tensor *grad, ob_tensor *out) {
    if (d_g->numel != grad->shape[0] || d_a->numel != grad->shape[1]) {
        ob_ctx_set_error(ctx,
                         "kfac: eigenvalues d_G [%lld] and d_A [%lld] do not fit a [%lld, %lld] gradient",
                         (long long)d_g->numel, (long long)d_a->numel, (long long)grad->shape[0],
                         (long long)grad->shape[1]);
        return 1;
    }
    ob_tensor *outer = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, grad->dtype, OB_SHAPE(d_g->numel, d_a->numel));
    if (!outer) return 1;
    ob_kfac_eigen_outer(d_g, d_a, damping, outer);
    return ob_kfac_precondition_eigen_outer(ctx, q_g, q_a, outer, grad, out);
}

/* out = g_inv grad a_inv */
int ob_kfac_precondition_inverse(ob_ctx *ctx, const ob_tensor *g_inv, const ob_tensor *a_inv,
                                 const ob_tensor *grad, ob_tensor *out) {
    int64_t g_dim = grad->shape[0], a_dim = grad->shape[1];
    ob_dtype dtype = grad->dtype;
    if (!check_matrix(ctx, "the gradient", grad, g_dim, a_dim, dtype) ||
        !check_matrix(ctx, "the preconditioned gradient", out, g_dim, a_dim, dtype) ||
        !check_matrix(ctx, "G's inverse", g_inv, g_dim, g_dim, dtype) ||
        !check_matrix(ctx, "A's inverse", a_inv, a_dim, a_dim, dtype))
        return 1;
    ob_tensor *left = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, dtype, OB_SHAPE(g_dim, a_dim));
    if (!left) return 1;
    const ob_backend *backend = ob_backend_of(grad);
    backend->gemm(ctx, false, false, 1.0, g_inv, grad, 0.0, left);
    backend->gemm(ctx, false, false, 1.0, left, a_inv, 0.0, out);
    return 0;
}

/* π = sqrt((tr(A)/a_dim) / (tr(G)/g_dim)), 1 when a trace is not positive */
double ob_kfac_dp_pi(const ob_tensor *a_factor, const ob_tensor *g_factor) {
    double a_mean = ob_backend_of(a_factor)->trace(a_factor) / (double)a_factor->shape[0];
    double g_mean = ob_backend_of(g_factor)->trace(g_factor) / (double)g_factor->shape[0];
    return a_mean > 0 && g_mean > 0 ? sqrt(a_mean / g_mean) : 1.0;
}

/* a_inv = (A + sqrt(λ) π I)^-1, g_inv = (G + sqrt(λ)/π I)^-1 */
int ob_kfac_dp_damped_inverses(ob_ctx *ctx, const ob_tensor *a_factor, const ob_tensor *g_factor,
                               double damping, ob_tensor *a_inv, ob_tensor *g_inv) {
    double pi = ob_kfac_dp_pi(a_factor, g_factor), root = sqrt(damping);
    if (ob_kfac_damped_inverse(ctx, a_factor, root * pi, a_inv)) return 1;
    return ob_kfac_damped_inverse(ctx, g_factor, root / pi, g_inv);
}

/* sum_ij v[i,j] g[i,j] */
double ob_kfac_kl_term(const ob_tensor *grad, const ob_tensor *preconditioned) {
    return ob_backend_of(grad)->dot(preconditioned, grad);
}
