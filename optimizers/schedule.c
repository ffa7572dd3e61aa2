#include "optimizers/ob_schedule.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[OB_SCHEDULE_KIND_COUNT] = {
    [OB_SCHEDULE_CONSTANT] = "constant", [OB_SCHEDULE_STEP] = "step",
    [OB_SCHEDULE_MULTISTEP] = "multistep", [OB_SCHEDULE_COSINE] = "cosine",
    [OB_SCHEDULE_POLYNOMIAL] = "polynomial", [OB_SCHEDULE_ONECYCLE] = "onecycle",
};

int ob_schedule_kind_parse(const char *name, ob_schedule_kind *out) {
    for (int kind = 0; kind < OB_SCHEDULE_KIND_COUNT; kind++) {
        if (name && strcmp(name, kind_names[kind]) == 0) {
            *out = (ob_schedule_kind)kind;
            return 0;
        }
    }
    return 2;
}

const char *ob_schedule_kind_name(ob_schedule_kind kind) {
    return kind >= 0 && kind < OB_SCHEDULE_KIND_COUNT ? kind_names[kind] : "unknown";
}

int64_t ob_schedule_epochs_to_steps(const ob_schedule *s, double epochs) {
    return llround(epochs * (double)s->steps_per_epoch);
}

/* ---- validation ---- */

__attribute__((format(printf, 3, 4))) static int invalid(char *err, size_t err_len, const char *fmt, ...) {
    if (err && err_len > 0) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(err, err_len, fmt, args);
        va_end(args);
    }
    return 2;
}

static int require_positive(double value, const char *field, char *err, size_t err_len) {
    if (isfinite(value) && value > 0) return 0;
    return invalid(err, err_len, "schedule: %s (%g) must be a positive number", field, value);
}

/* min_lr is where cosine and polynomial decay end: between 0 and base_lr. */
static int validate_min_lr(const ob_schedule *s, char *err, size_t err_len) {
    if (isfinite(s->min_lr) && s->min_lr >= 0 && s->min_lr <= s->base_lr) return 0;
    return invalid(err, err_len, "schedule: min_lr (%g) must be between 0 and base_lr (%g)", s->min_lr,
                   s->base_lr);
}

static int validate_run_length(const ob_schedule *s, char *err, size_t err_len) {
    if (s->steps_per_epoch < 1)
        return invalid(err, err_len, "schedule: steps_per_epoch (%lld) must be at least 1",
                       (long long)s->steps_per_epoch);
    if (require_positive(s->total_epochs, "total_epochs", err, err_len)) return 2;
    int64_t total_steps = ob_schedule_epochs_to_steps(s, s->total_epochs);
    if (total_steps < 1)
        return invalid(err, err_len, "schedule: total_epochs (%g) must span at least one step",
                       s->total_epochs);
    if (!isfinite(s->warmup_epochs) || s->warmup_epochs < 0)
        return invalid(err, err_len, "schedule: warmup_epochs (%g) must be 0 or more", s->warmup_epochs);
    int64_t warmup_steps = ob_schedule_epochs_to_steps(s, s->warmup_epochs);
    if (warmup_steps >= total_steps)
        return invalid(err, err_len,
                       "schedule: warmup_epochs (%g = %lld steps) must be less than "
                       "total_epochs (%g = %lld steps)",
                       s->warmup_epochs, (long long)warmup_steps, s->total_epochs, (long long)total_steps);
    return 0;
}

static int validate_step(const ob_schedule *s, char *err, size_t err_len) {
    if (require_positive(s->step_size, "step_size", err, err_len)) return 2;
    if (s->step_size * (double)s->steps_per_epoch < 1)
        return invalid(err, err_len, "schedule: step_size (%g epochs) must span at least one step",
                       s->step_size);
    return require_positive(s->gamma, "gamma", err, err_len);
}

static int validate_multistep(const ob_schedule *s, char *err, size_t err_len) {
    if (s->n_milestones < 1 || !s->milestones)
        return invalid(err, err_len, "schedule: multistep needs at least one milestone");
    for (int i = 0; i < s->n_milestones; i++) {
        double milestone = s->milestones[i];
        if (!isfinite(milestone) || milestone <= 0)
            return invalid(err, err_len, "schedule: milestone %d (%g) must be a positive epoch", i + 1,
                           milestone);
        if (i > 0 && milestone <= s->milestones[i - 1])
            return invalid(err, err_len, "schedule: milestones must increase, but %g follows %g", milestone,
                           s->milestones[i - 1]);
    }
    return require_positive(s->gamma, "gamma", err, err_len);
}

static int validate_onecycle(const ob_schedule *s, char *err, size_t err_len) {
    if (s->warmup_epochs != 0)
        return invalid(err, err_len, "schedule: onecycle warms up by pct_start; warmup_epochs (%g) must be 0",
                       s->warmup_epochs);
    if (!(s->pct_start > 0 && s->pct_start < 1))
        return invalid(err, err_len, "schedule: pct_start (%g) must be between 0 and 1", s->pct_start);
    /* PyTorch's rising phase ends at step pct_start*total_steps - 1, which
     * must lie after step 0 or the phase has no length. */
    double total_steps = (double)ob_schedule_epochs_to_steps(s, s->total_epochs);
    if (s->pct_start * total_steps <= 1)
        return invalid(err, err_len, "schedule: pct_start (%g) times total steps (%.0f) must exceed 1",
                       s->pct_start, total_steps);
    if (require_positive(s->div_factor, "div_factor", err, err_len)) return 2;
    return require_positive(s->final_div_factor, "final_div_factor", err, err_len);
}

int ob_schedule_validate(const ob_schedule *s, char *err, size_t err_len) {
    if (s->kind < 0 || s->kind >= OB_SCHEDULE_KIND_COUNT)
        return invalid(err, err_len, "schedule: kind %d is not one of constant, step, multistep, cosine, "
                                     "polynomial, onecycle", (int)s->kind);
    if (require_positive(s->base_lr, "base_lr", err, err_len)) return 2;
    if (validate_run_length(s, err, err_len)) return 2;
    switch (s->kind) {
    case OB_SCHEDULE_STEP: return validate_step(s, err, err_len);
    case OB_SCHEDULE_MULTISTEP: return validate_multistep(s, err, err_len);
    case OB_SCHEDULE_COSINE: return validate_min_lr(s, err, err_len);
    case OB_SCHEDULE_POLYNOMIAL:
        if (require_positive(s->power, "power", err, err_len)) return 2;
        return validate_min_lr(s, err, err_len);
    case OB_SCHEDULE_ONECYCLE: return validate_onecycle(s, err, err_len);
    default: return 0; /* constant uses no other field */
    }
}

/* ---- evaluation ---- */

/* Cosine from start (pct 0) to end (pct 1), written as PyTorch writes it so
 * onecycle agrees with OneCycleLR to the last bit or two. */
static double anneal_cos(double start, double end, double pct) {
    const double pi = 3.14159265358979323846; /* M_PI is not ISO C */
    return end + (start - end) / 2.0 * (cos(pi * pct) + 1.0);
}

/* Number of decays k >= 1 whose start step round(k*step_size*steps_per_epoch)
 * is <= step. The real quotient never counts too many (its boundaries round
 * to at most step) but can count too few: 1.1 epochs * 50 steps is
 * 55.00000000000001, so 55 / that floors to 0. Counting up from it against
 * the rounded boundaries themselves fixes that. */
static int64_t step_decays(const ob_schedule *s, int64_t step) {
    int64_t decays = (int64_t)floor((double)step / (s->step_size * (double)s->steps_per_epoch));
    while (ob_schedule_epochs_to_steps(s, (double)(decays + 1) * s->step_size) <= step) decays++;
    return decays;
}

static int milestones_passed(const ob_schedule *s, int64_t step) {
    int passed = 0;
    while (passed < s->n_milestones && ob_schedule_epochs_to_steps(s, s->milestones[passed]) <= step)
        passed++;
    return passed;
}

/* Progress p in [0, 1] of the decay that follows warm-up. */
static double decay_progress(const ob_schedule *s, int64_t step, int64_t warmup_steps) {
    int64_t total_steps = ob_schedule_epochs_to_steps(s, s->total_epochs);
    double progress = (double)(step - warmup_steps) / (double)(total_steps - warmup_steps);
    return fmin(fmax(progress, 0.0), 1.0);
}

static double onecycle_lr(const ob_schedule *s, int64_t step) {
    double total_steps = (double)ob_schedule_epochs_to_steps(s, s->total_epochs);
    double initial_lr = s->base_lr / s->div_factor;
    double final_lr = initial_lr / s->final_div_factor;
    /* Phase ends exactly as PyTorch places them: a real-valued peak step. */
    double peak_step = s->pct_start * total_steps - 1.0;
    double last_step = total_steps - 1.0;
    double x = (double)step;
    if (x <= peak_step) return anneal_cos(initial_lr, s->base_lr, x / peak_step);
    return anneal_cos(s->base_lr, final_lr, fmin((x - peak_step) / (last_step - peak_step), 1.0));
}

double ob_schedule_lr(const ob_schedule *s, int64_t step) {
    if (step < 0) step = 0;
    if (s->kind == OB_SCHEDULE_ONECYCLE) return onecycle_lr(s, step);
    int64_t warmup_steps = ob_schedule_epochs_to_steps(s, s->warmup_epochs);
    if (step < warmup_steps) return s->base_lr * (double)(step + 1) / (double)warmup_steps;
    switch (s->kind) {
    case OB_SCHEDULE_STEP: return s->base_lr * pow(s->gamma, (double)step_decays(s, step));
    case OB_SCHEDULE_MULTISTEP: return s->base_lr * pow(s->gamma, milestones_passed(s, step));
    case OB_SCHEDULE_COSINE: return anneal_cos(s->base_lr, s->min_lr, decay_progress(s, step, warmup_steps));
    case OB_SCHEDULE_POLYNOMIAL:
        return s->min_lr +
               (s->base_lr - s->min_lr) * pow(1.0 - decay_progress(s, step, warmup_steps), s->power);
    default: return s->base_lr; /* constant */
    }
}
