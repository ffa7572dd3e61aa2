/* ob_loss_scale: the rules that keep low-precision gradients representable
 * (issue #4; PAPERS.md "Adaptive loss scaling").
 *
 * static:N multiplies the loss by N. dynamic follows PyTorch's GradScaler:
 * start at `scale`, multiply by growth_factor after growth_interval
 * consecutive steps with finite gradients, multiply by backoff_factor and
 * skip the update after a step with inf/NaN. adaptive (Zhao et al. 2019)
 * leaves the loss unscaled and lets each Linear/Conv2d layer multiply the
 * gradient it passes down by its own power of two (ob_adaptive_layer_scale);
 * the tape brings residual branches to a common scale (nn/ob_tape.h). Every
 * mode except none skips an update whose gradients are not finite. */
#ifndef OB_LOSS_SCALE_H
#define OB_LOSS_SCALE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { OB_LOSS_SCALE_NONE = 0, OB_LOSS_SCALE_STATIC, OB_LOSS_SCALE_DYNAMIC, OB_LOSS_SCALE_ADAPTIVE } ob_loss_scale_kind;

typedef struct {
    ob_loss_scale_kind kind;
    double scale;                          /* static: N; dynamic: the initial scale */
    double growth_factor, backoff_factor;  /* dynamic */
    int64_t growth_interval;               /* dynamic */
    double underflow_rate;                 /* adaptive: allowed fraction below the smallest subnormal */
    double max_layer, max_total;           /* adaptive: bounds on one layer's and the accumulated scale */
    int64_t update_every;                  /* adaptive: steps between recomputations */
} ob_loss_scale_config;

/* "none", "static:N" (N > 0, finite), "dynamic" or "adaptive" into kind
 * and, for static, config->scale. Returns 0, or 2 with one line in err. */
int ob_loss_scale_parse(const char *text, ob_loss_scale_config *config, char *err, size_t err_len);
const char *ob_loss_scale_kind_name(ob_loss_scale_kind kind);

/* The loss's scale over the run. */
typedef struct {
    double scale;          /* what the loss gradient is seeded with this step */
    int64_t clean_steps;   /* dynamic: finite steps since the last change */
    int64_t skipped_steps; /* updates skipped for inf/NaN gradients */
} ob_loss_scaler;

void ob_loss_scaler_init(ob_loss_scaler *scaler, const ob_loss_scale_config *config);
/* Called once per step with whether every gradient is finite; returns
 * whether to apply the update, and moves the scale (dynamic). */
bool ob_loss_scaler_update(ob_loss_scaler *scaler, const ob_loss_scale_config *config, bool grads_finite);

/* Mean, standard deviation and largest magnitude of a tensor's values. */
typedef struct {
    double mean, std, max_abs;
} ob_value_stats;
ob_value_stats ob_value_stats_of(const float *values, int64_t n);

/* Zhao et al.'s approx_range rule for the scale one layer adds, given the
 * statistics of its output gradient g (already carrying incoming_scale) and
 * its weight W, and `terms`, the number of products each element of the
 * gradient it passes down sums (out_features for Linear, out_c·kh·kw for
 * Conv2d):
 *   sigma_o = sqrt((sigma_g^2 + mu_g^2)(sigma_W^2 + mu_W^2)) · sqrt(0.5 · terms)
 *   z = sqrt(2) · erfinv(underflow_rate)
 *   s = max(u_min / (z · sigma_o), 1)            (at most underflow_rate below u_min)
 *   s <= (u_max / terms) / (max|g| · max|W|)     (the sum cannot overflow)
 *   s <= max_layer, incoming_scale · s <= max_total
 * rounded down to a power of two, and never below 1. u_min and u_max are
 * the gradient format's smallest subnormal and largest finite value. */
double ob_adaptive_layer_scale(const ob_loss_scale_config *config, ob_value_stats grad, ob_value_stats weight,
                               int64_t terms, double incoming_scale, double u_min, double u_max);
/* erf^{-1}(y) for y in (-1, 1). */
double ob_erfinv(double y);

#endif
