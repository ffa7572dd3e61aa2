/* ob_optimizer: the base optimizers' common interface (DESIGN.md section 4).
 *
 * An optimizer updates every parameter of an ob_params registry from its
 * persistent gradient (param->value->grad) through the backend table of the
 * parameter's device, never through a kernel directly, so CUDA slots in.
 * A step may overwrite the gradients (LAMB does); the next step's backward
 * pass starts them afresh anyway.
 * It owns its state tensors, all charged to OB_MEM_OPTIMIZER_STATE, and
 * lists them by name for checkpoints and memory tables.
 *
 * Weight decay follows the usual recipe: only OB_KIND_WEIGHT,
 * OB_KIND_CONV_WEIGHT and OB_KIND_EMBEDDING parameters are decayed, unless
 * the config asks to decay norms and biases too.
 */
#ifndef OB_OPTIMIZER_H
#define OB_OPTIMIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/ob_layers.h"

typedef struct ob_optimizer ob_optimizer;

/* SGD as torch.optim.SGD with dampening 0:
 *   g = grad + wd p (L2, when !decoupled);  buf = momentum buf + g (buf starts at 0);
 *   d = nesterov ? g + momentum buf : buf;  p = p (1 - lr wd) (when decoupled, SGDW) - lr d.
 * momentum 0 keeps no buffer (d = g). Nesterov needs momentum > 0. */
typedef struct {
    double momentum, weight_decay;
    bool nesterov, decoupled, decay_norm_and_bias;
} ob_sgd_config;

/* Every constructor returns NULL (and one line in ob_ctx_error) on a bad
 * config, a parameter without a gradient or of a non-floating dtype, or out
 * of memory. The optimizer keeps pointers to params and ctx: both must
 * outlive it. */
ob_optimizer *ob_sgd_new(ob_ctx *ctx, ob_params *params, const ob_sgd_config *config);

/* AdamW (Loshchilov & Hutter), PyTorch's torch.optim.AdamW at step t
 * (counted from 1; m and v start at 0):
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *   m_hat = m / (1 - beta1^t);  v_hat = v / (1 - beta2^t)
 *   p = p (1 - lr wd);  p = p - lr m_hat / (sqrt(v_hat) + eps)
 * i.e. p -= lr (m_hat / (sqrt(v_hat) + eps) + wd p_old): the decay is
 * decoupled from the moments. wd is weight_decay, or 0 for a kind that is
 * not decayed. beta1, beta2 in [0, 1), eps > 0, weight_decay >= 0. */
typedef struct {
    double beta1, beta2, eps, weight_decay;
    bool decay_norm_and_bias;
} ob_adam_config;

/* LAMB (You et al., ICLR 2020), with m_hat and v_hat as above (or m and v
 * themselves without bias_correction):
 *   r = m_hat / (sqrt(v_hat) + eps) + wd x
 *   x = x - lr ratio r,  ratio = min(||x|| / ||r||, max_trust_ratio)
 * per parameter tensor, as NVIDIA's and the other reference implementations
 * read the paper's "layer" (a layer's weight and bias get separate ratios).
 * ratio = 1 when ||x|| or ||r|| is 0; max_trust_ratio 0 = no clamp (the
 * paper's phi is the identity). Kinds that are not decayed are not adapted
 * either (ratio 1), as in the reference implementations: a bias or norm
 * scale steps like Adam. decay_norm_and_bias decays and adapts every kind.
 * LAMB leaves each parameter's r in its gradient (the gradient is spent
 * once the moments hold it), so it needs no scratch memory. */
typedef struct {
    ob_adam_config adam;
    double max_trust_ratio;
    bool bias_correction;
} ob_lamb_config;

/* Both hold m and v per parameter (named "<param>.exp_avg" and
 * "<param>.exp_avg_sq") and, last, the step count t as one f64
 * ("adamw.step", "lamb.step"), so a checkpoint restores them exactly. A
 * step the caller skips (loss scaling) does not advance t. */
ob_optimizer *ob_adamw_new(ob_ctx *ctx, ob_params *params, const ob_adam_config *config);
ob_optimizer *ob_lamb_new(ob_ctx *ctx, ob_params *params, const ob_lamb_config *config);

/* One update of every parameter with learning rate lr (finite, >= 0).
 * Returns 0, or nonzero with ob_ctx_error set. */
int ob_optimizer_step(ob_optimizer *opt, double lr);
/* "sgd", "adamw", "lamb" */
const char *ob_optimizer_name(const ob_optimizer *opt);

/* State, in a fixed order, for checkpoints and memory tables. state_at writes
 * the state's name ("layer1.0.conv1.weight.momentum") into name (when name
 * is not NULL) and returns the tensor; NULL for i out of range. */
int ob_optimizer_state_count(const ob_optimizer *opt);
ob_tensor *ob_optimizer_state_at(const ob_optimizer *opt, int i, char *name, size_t name_len);
/* Bytes of all state tensors (all charged to OB_MEM_OPTIMIZER_STATE). */
int64_t ob_optimizer_state_bytes(const ob_optimizer *opt);

/* Frees the optimizer and its state; NULL is a no-op. */
void ob_optimizer_free(ob_ctx *ctx, ob_optimizer *opt);

#endif
