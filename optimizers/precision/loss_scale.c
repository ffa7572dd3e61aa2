#include "optimizers/precision/ob_loss_scale.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"none", "static", "dynamic", "adaptive"};

const char *ob_loss_scale_kind_name(ob_loss_scale_kind kind) { return kind_names[kind]; }

int ob_loss_scale_parse(const char *text, ob_loss_scale_config *config, char *err, size_t err_len) {
    if (strcmp(text, "none") == 0 || strcmp(text, "dynamic") == 0 || strcmp(text, "adaptive") == 0) {
        config->kind = text[0] == 'n' ? OB_LOSS_SCALE_NONE : text[0] == 'd' ? OB_LOSS_SCALE_DYNAMIC
                                                                             : OB_LOSS_SCALE_ADAPTIVE;
        return 0;
    }
    if (strncmp(text, "static:", 7) == 0) {
        char *end;
        double scale = strtod(text + 7, &end);
        if (end != text + 7 && *end == '\0' && isfinite(scale) && scale > 0) {
            config->kind = OB_LOSS_SCALE_STATIC;
            config->scale = scale;
            return 0;
        }
    }
    snprintf(err, err_len, "run.loss_scale: expected none, static:N (N a positive number), dynamic or adaptive, "
             "got \"%s\"", text);
    return 2;
}

void ob_loss_scaler_init(ob_loss_scaler *scaler, const ob_loss_scale_config *config) {
    bool seeded = config->kind == OB_LOSS_SCALE_STATIC || config->kind == OB_LOSS_SCALE_DYNAMIC;
    *scaler = (ob_loss_scaler){.scale = seeded ? config->scale : 1.0};
}

bool ob_loss_scaler_update(ob_loss_scaler *scaler, const ob_loss_scale_config *config, bool grads_finite) {
    if (config->kind == OB_LOSS_SCALE_NONE) return true;
    if (!grads_finite) {
        scaler->skipped_steps++;
        if (config->kind == OB_LOSS_SCALE_DYNAMIC) {
            scaler->scale *= config->backoff_factor;
            scaler->clean_steps = 0;
        }
        return false;
    }
    if (config->kind == OB_LOSS_SCALE_DYNAMIC && ++scaler->clean_steps == config->growth_interval) {
        scaler->scale *= config->growth_factor;
        scaler->clean_steps = 0;
    }
    return true;
}

/* Two passes (mean, then squared deviations) in double: the gradients of
 * one layer can span many orders of magnitude. */
ob_value_stats ob_value_stats_of(const float *values, int64_t n) {
    double sum = 0, max_abs = 0;
#pragma omp parallel for reduction(+ : sum) reduction(max : max_abs) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        sum += values[i];
        double magnitude = fabs((double)values[i]);
        if (magnitude > max_abs) max_abs = magnitude;
    }
    double mean = n > 0 ? sum / (double)n : 0, squares = 0;
#pragma omp parallel for reduction(+ : squares) schedule(static)
    for (int64_t i = 0; i < n; i++) squares += ((double)values[i] - mean) * ((double)values[i] - mean);
    return (ob_value_stats){.mean = mean, .std = n > 0 ? sqrt(squares / (double)n) : 0, .max_abs = max_abs};
}

/* Newton's method on erf(x) = y from Winitzki's closed-form approximation,
 * which is within 2e-3 everywhere; three steps reach double precision. */
double ob_erfinv(double y) {
    const double a = 0.147, pi = 3.14159265358979323846;
    double log_term = log(1.0 - y * y), first = 2.0 / (pi * a) + log_term / 2.0;
    double x = copysign(sqrt(sqrt(first * first - log_term / a) - first), y);
    for (int i = 0; i < 3; i++) x -= (erf(x) - y) / (2.0 / sqrt(pi) * exp(-x * x));
    return x;
}

static double power_of_two_below(double s) { return exp2(floor(log2(s))); }

double ob_adaptive_layer_scale(const ob_loss_scale_config *config, ob_value_stats grad, ob_value_stats weight,
                               int64_t terms, double incoming_scale, double u_min, double u_max) {
    double second_moments = (grad.std * grad.std + grad.mean * grad.mean) *
                            (weight.std * weight.std + weight.mean * weight.mean);
    double sigma_out = sqrt(second_moments) * sqrt(0.5 * (double)terms);
    double z = sqrt(2.0) * ob_erfinv(config->underflow_rate);
    double scale = fmax(u_min / (z * sigma_out), 1.0); /* +inf for an all-zero gradient: the bounds decide */
    double largest_product = grad.max_abs * weight.max_abs;
    if (largest_product > 0) scale = fmin(scale, u_max / (double)terms / largest_product);
    scale = fmin(scale, config->max_layer);
    scale = fmin(scale, config->max_total / incoming_scale);
    if (!(scale >= 1.0)) return 1.0; /* NaN statistics (non-finite gradients) or a bound below 1 */
    return power_of_two_below(scale);
}
