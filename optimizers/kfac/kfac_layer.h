/* K-FAC's per-layer numerics, KAISA formulation (internal to the K-FAC
 * module; the orchestration decides which rank calls what, and when).
 *
 * A Linear or Conv2d layer's weight gradient, with the bias gradient as one
 * more column, is the [g_dim, a_dim] matrix ∇ (a conv weight
 * [out_c, kh, kw, in_c] flattens to rows that line up with im2col patches).
 * K-FAC approximates the layer's Fisher block by G ⊗ A, A = E[a a^T] over
 * the layer's inputs a (im2col patches for a conv, with a 1 appended for the
 * bias) and G = E[g g^T] over the gradients g of its outputs. G ⊗ A maps
 * the row-major vec(X) to vec(G X A), and the preconditioned gradient V
 * solves a damped version of it for vec(∇):
 *   eigen:   V = Q_G [(Q_G^T ∇ Q_A) / (d_G d_A^T + λ)] Q_A^T,  (G ⊗ A + λI) vec(V) = vec(∇)
 *   inverse: V = (G + λI)^-1 ∇ (A + λI)^-1,                  ((G+λI) ⊗ (A+λI)) vec(V) = vec(∇)
 *
 * Every tensor handed in shares the layer's parameter dtype (F32 or F64) and
 * device; all arithmetic goes through that device's backend table, and
 * workspaces come from the ctx's step arena (OB_MEM_WORKSPACE), so they live
 * until ob_ctx_step_reset. Matrices are 2-D and row-major. Functions that take
 * the ctx return 0, or nonzero with the reason in ob_ctx_error.
 */
#ifndef OB_KFAC_LAYER_H
#define OB_KFAC_LAYER_H

#include "nn/ob_layers.h"

typedef struct {
    ob_layer *layer;   /* an ob_linear_layer or ob_conv2d_layer */
    ob_tensor *weight; /* Linear [out, in]; Conv2d [out_c, kh, kw, in_c] */
    ob_tensor *bias;   /* [g_dim], or NULL */
    int64_t a_dim;     /* in (Linear) or kh*kw*in_c (Conv2d), +1 with a bias */
    int64_t g_dim;     /* out features (Linear) or out_c (Conv2d) */
    /* Multiply the output gradient by its leading dimension before G is
     * built (kfac.batch_averaged): the local batch for Conv2d and for a
     * Linear on [B, in], the B·T token rows of BERT's Linear layers (as
     * kfac-pytorch v0.3 does). Under a batch-mean loss G then holds
     * per-example gradients: B^2 times the G of the gradient as backward
     * produced it. Off after ob_kfac_layer_describe. */
    bool undo_batch_mean;
} ob_kfac_layer;

/* Fills *out for a Linear or Conv2d layer. Returns nonzero, leaving *out
 * alone, for layers K-FAC does not precondition (batch-norm). */
int ob_kfac_layer_describe(ob_layer *layer, ob_kfac_layer *out);

/* The factors of one batch, from the captures this step's forward and
 * backward left in the layer (layer->capture on):
 *   Linear: a = captured input [B, in] (| 1 with a bias), g = captured output
 *           gradient [B, out]:  A = a^T a / B,  G = g^T g / B.
 *   Conv2d: a = im2col(captured input [B,H,W,C_in]) [B·S, kh·kw·C_in]
 *           (| 1 with a bias), g = output gradient [B·S, C_out], S = H_out·W_out,
 *           every row of a and g divided by S:  A = a^T a / (B·S),  G = g^T g / (B·S).
 * g is the gradient as the backward produced it (a batch-mean loss leaves its
 * 1/B in it), times B with undo_batch_mean. The conv geometry comes from the layer's stride, pad and
 * dilation, the weight's kernel and the captured input's shape.
 * a_batch [a_dim, a_dim] and g_batch [g_dim, g_dim] are overwritten, both
 * triangles filled. */
int ob_kfac_batch_factors(ob_ctx *ctx, const ob_kfac_layer *l, ob_tensor *a_batch, ob_tensor *g_batch);

/* running = decay running + (1 - decay) batch (the caller starts running at I). */
void ob_kfac_running_average(double decay, const ob_tensor *batch, ob_tensor *running);

/* grad_mat [g_dim, a_dim] = [weight gradient rows | bias gradient]. */
void ob_kfac_gather_grad(const ob_kfac_layer *l, ob_tensor *grad_mat);
/* Overwrites the weight and bias gradients with the columns of grad_mat [g_dim, a_dim]. */
void ob_kfac_scatter_grad(const ob_kfac_layer *l, const ob_tensor *grad_mat);

/* factor [n,n] = q diag(d) q^T, q[i,j] = component i of eigenvector j, d [n]
 * ascending and clamped at 0 from below (q may be factor). */
int ob_kfac_eigen(ob_ctx *ctx, const ob_tensor *factor, ob_tensor *q, ob_tensor *d);

/* inv [n,n] = (factor + damping I)^-1 (inv may be factor). */
int ob_kfac_damped_inverse(ob_ctx *ctx, const ob_tensor *factor, double damping, ob_tensor *inv);

/* Eigen method: out = Q_G [(Q_G^T grad Q_A) / (d_G d_A^T + damping)] Q_A^T,
 * the division element-wise. q_g [g_dim, g_dim], d_g [g_dim], q_a
 * [a_dim, a_dim], d_a [a_dim]; grad and out [g_dim, a_dim] (out may be grad). */
int ob_kfac_precondition_eigen(ob_ctx *ctx, const ob_tensor *q_g, const ob_tensor *d_g, const ob_tensor *q_a,
                               const ob_tensor *d_a, double damping, const ob_tensor *grad, ob_tensor *out);
/* The eigen method's divisor inverted once, when the eigendecompositions
 * change: outer [g_dim, a_dim] = 1 / (d_G d_A^T + damping). */
void ob_kfac_eigen_outer(const ob_tensor *d_g, const ob_tensor *d_a, double damping, ob_tensor *outer);
/* Eigen method with that precomputed outer: out = Q_G [(Q_G^T grad Q_A) * outer] Q_A^T. */
int ob_kfac_precondition_eigen_outer(ob_ctx *ctx, const ob_tensor *q_g, const ob_tensor *q_a,
                                     const ob_tensor *outer, const ob_tensor *grad, ob_tensor *out);

/* Inverse method: out = g_inv grad a_inv, g_inv [g_dim, g_dim] and a_inv
 * [a_dim, a_dim] the damped inverses; grad and out [g_dim, a_dim] (out may be grad). */
int ob_kfac_precondition_inverse(ob_ctx *ctx, const ob_tensor *g_inv, const ob_tensor *a_inv,
                                 const ob_tensor *grad, ob_tensor *out);

/* DP-KFAC's factored Tikhonov damping: π = sqrt((tr(A)/a_dim) / (tr(G)/g_dim)),
 * or 1 when either trace is not positive (a factor that saw only zeros). */
double ob_kfac_dp_pi(const ob_tensor *a_factor, const ob_tensor *g_factor);
/* a_inv = (A + sqrt(damping) π I)^-1 and g_inv = (G + sqrt(damping) / π I)^-1. */
int ob_kfac_dp_damped_inverses(ob_ctx *ctx, const ob_tensor *a_factor, const ob_tensor *g_factor,
                               double damping, ob_tensor *a_inv, ob_tensor *g_inv);

/* KL-clip term of one layer: sum_ij preconditioned[i,j] grad[i,j]. The caller
 * sums it over layers and scales the update by
 * min(1, sqrt(kl_clip / |lr^2 sum|)). */
double ob_kfac_kl_term(const ob_tensor *grad, const ob_tensor *preconditioned);

#endif
