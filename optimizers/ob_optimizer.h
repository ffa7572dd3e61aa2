/* ob_optimizer: the base optimizers' common interface (DESIGN.md section 4).
 *
 * An optimizer updates every parameter of an ob_params registry from its
 * persistent gradient (param->value->grad) through the backend table of the
 * parameter's device, never through a kernel directly, so CUDA slots in.
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

/* NULL (and one line in ob_ctx_error) on a bad config, a parameter without a
 * gradient or of a non-floating dtype, or out of memory. The optimizer keeps
 * pointers to params and ctx: both must outlive it. */
ob_optimizer *ob_sgd_new(ob_ctx *ctx, ob_params *params, const ob_sgd_config *config);

/* One update of every parameter with learning rate lr (finite, >= 0).
 * Returns 0, or nonzero with ob_ctx_error set. */
int ob_optimizer_step(ob_optimizer *opt, double lr);
/* "sgd", ... */
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
