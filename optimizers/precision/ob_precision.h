/* ob_precision: a run's precision policy (DESIGN.md sections 2 and 4,
 * issue #4), orthogonal to the optimizer and the preconditioner.
 *
 * On the CPU low precision is emulated exactly. The policy hooks every
 * Linear/Conv2d layer (nn/ob_precision_hook.h): the operands of its forward
 * GEMM are rounded to the forward format, the output gradient its backward
 * GEMMs consume to the backward format (or quantized, for FQT), and the
 * GEMMs accumulate in fp32. Everything between GEMMs (batch-norm, ReLU,
 * pooling, the loss) stays fp32, as mixed-precision training keeps them.
 *
 *   policy    forward     backward    gradient rounding   master weights
 *   fp32      -           -           -                   fp32
 *   fp16      binary16    binary16    nearest-even        fp32
 *   bf16      bfloat16    bfloat16    nearest-even        fp32
 *   fp8-e5m2  E5M2        E5M2        stochastic          fp16 (stochastic)
 *   hfp8      E4M3        E5M2        nearest-even        fp16 (stochastic)
 *   fqt       8-bit int   fqt.* quantizers (PTQ/PSQ/BHQ)  fp32
 * Exempt layers (precision.exempt; by default the first and the last GEMM
 * layer for the FP8 and FQT recipes) compute in fp32.
 *
 * A step under a policy: seed backward with ob_precision_loss_scale,
 * ob_precision_unscale the gradients to true values, ob_precision_accept
 * with whether they are finite (a skipped update is not applied at all),
 * and ob_precision_after_update once the optimizer has stepped. */
#ifndef OB_PRECISION_H
#define OB_PRECISION_H

#include "nn/ob_layers.h"
#include "optimizers/precision/ob_fqt.h"
#include "optimizers/precision/ob_format.h"
#include "optimizers/precision/ob_loss_scale.h"

typedef enum {
    OB_PRECISION_FP32 = 0,
    OB_PRECISION_FP16,
    OB_PRECISION_BF16,
    OB_PRECISION_FP8_E5M2,
    OB_PRECISION_HFP8,
    OB_PRECISION_FQT,
    OB_PRECISION_COUNT
} ob_precision_kind;

typedef enum { OB_CHOICE_AUTO = 0, OB_CHOICE_OFF, OB_CHOICE_ON } ob_choice;

typedef struct {
    ob_precision_kind kind;
    const char *exempt;        /* "auto", "none" or comma-separated fnmatch patterns of layer names */
    ob_choice stochastic_grads; /* auto: on for fp8-e5m2 */
    ob_choice fp16_master;      /* auto: on for fp8-e5m2 and hfp8 */
    bool narrow_saved_inputs;   /* keep rounded GEMM inputs for backward in 2 bytes (not FQT) */
    int fqt_forward_bits, fqt_grad_bits, fqt_weight_grad_bits;
    ob_fqt_quantizer fqt_quantizer;
    ob_loss_scale_config loss_scale;
    uint64_t seed; /* keys stochastic rounding, with the rank and the step */
    int rank;
} ob_precision_config;

typedef struct ob_precision ob_precision;

int ob_precision_parse(const char *name, ob_precision_kind *out);
const char *ob_precision_name(ob_precision_kind kind);

/* Builds the policy and hooks the registry's Linear/Conv2d layers (all of
 * them, so adaptive scales and statistics cover exempt layers too).
 * Returns NULL with one line in err: unknown exemption patterns that match
 * no layer, F64 parameters. */
ob_precision *ob_precision_new(ob_ctx *ctx, const ob_precision_config *config, ob_params *params, char *err,
                               size_t err_len);
/* Unhooks the layers and frees; NULL-safe. */
void ob_precision_free(ob_ctx *ctx, ob_precision *policy, ob_params *params);

/* The step about to run (keys the random bits, paces adaptive updates). */
void ob_precision_begin_step(ob_precision *policy, int64_t step);
/* What to seed the loss gradient with this step. */
double ob_precision_loss_scale(const ob_precision *policy);
/* Divides every parameter gradient by the scale it carries. */
void ob_precision_unscale(ob_params *params);
/* Whether to apply this step's update; moves the dynamic scale. */
bool ob_precision_accept(ob_precision *policy, bool grads_finite);
/* fp16 master weights: rounds every parameter, stochastically. */
void ob_precision_after_update(ob_precision *policy, ob_params *params);
int64_t ob_precision_skipped_steps(const ob_precision *policy);

/* Per-layer statistics since the last reset, for /precision. */
typedef struct {
    const char *layer;
    double loss_scale;    /* the scale the layer's output gradient carried last */
    double gain;          /* adaptive: the scale the layer adds to the gradient it passes down */
    int64_t values, nonzero, underflow, overflow;
} ob_precision_layer_stat;
int ob_precision_layer_count(const ob_precision *policy);
ob_precision_layer_stat ob_precision_layer_stat_at(const ob_precision *policy, int i);
void ob_precision_reset_stats(ob_precision *policy);

/* Checkpoint state (the loss scaler and the adaptive scales) as one F64
 * tensor: ob_precision_state fills it from the policy before a save, and
 * ob_precision_state_restored reads it back after a load. */
ob_tensor *ob_precision_state(ob_precision *policy);
void ob_precision_state_restored(ob_precision *policy);

#endif
