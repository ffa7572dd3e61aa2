/* ob_schedule: learning-rate schedules (DESIGN.md section 4).
 *
 * A schedule is a pure function of the 0-based update number: the harness
 * asks for ob_schedule_lr(s, step) before update step+1, so a resumed run
 * needs no scheduler state.
 *
 * Epoch quantities become step counts one way, by rounding:
 *   total_steps  = round(total_epochs  * steps_per_epoch)
 *   warmup_steps = round(warmup_epochs * steps_per_epoch)
 * and likewise every decay boundary (see step and multistep below), so a
 * boundary always falls on a whole step and fractional epochs behave the
 * same everywhere. epoch(step) = step / steps_per_epoch.
 *
 * Linear warm-up (every kind except onecycle, which has its own): for
 * step < warmup_steps, lr = base_lr * (step + 1) / warmup_steps (Goyal et
 * al. 2017's gradual warm-up: the last warm-up step reaches base_lr).
 * After warm-up:
 *   constant    base_lr
 *   step        base_lr * gamma^k, where decay k starts at step
 *               round(k * step_size * steps_per_epoch)
 *               (= floor(epoch / step_size) when step_size spans whole steps)
 *   multistep   base_lr * gamma^(number of milestones m with
 *               round(m * steps_per_epoch) <= step), i.e. milestones <= epoch.
 *               Step and multistep count epochs from 0, not from the end of
 *               warm-up, as in Goyal et al.
 *   cosine      min_lr + (base_lr - min_lr) * (1 + cos(pi p)) / 2
 *   polynomial  min_lr + (base_lr - min_lr) * (1 - p)^power
 *               (the BERT recipe's polynomial decay; power 1 is linear)
 *               where p = (step - warmup_steps) / (total_steps - warmup_steps),
 *               clamped to [0, 1].
 *   onecycle    PyTorch's OneCycleLR with cosine annealing, three_phase off:
 *               initial = base_lr / div_factor rises along a cosine to base_lr
 *               at step pct_start * total_steps - 1 (a real number, as in
 *               PyTorch), then falls along a cosine to
 *               initial / final_div_factor at step total_steps - 1.
 *               Ignores min_lr and warmup_epochs (which must be 0).
 * Steps past the end keep the final value (onecycle: its last step's lr);
 * a negative step is treated as 0.
 */
#ifndef OB_SCHEDULE_H
#define OB_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    OB_SCHEDULE_CONSTANT = 0,
    OB_SCHEDULE_STEP,
    OB_SCHEDULE_MULTISTEP,
    OB_SCHEDULE_COSINE,
    OB_SCHEDULE_POLYNOMIAL,
    OB_SCHEDULE_ONECYCLE,
    OB_SCHEDULE_KIND_COUNT
} ob_schedule_kind;

typedef struct {
    ob_schedule_kind kind;
    double base_lr;          /* peak lr (onecycle: max_lr) */
    int64_t steps_per_epoch;
    double total_epochs;     /* every kind: warm-up must end before it */
    double warmup_epochs;    /* 0: no warm-up */
    double step_size, gamma; /* step: decay interval in epochs; step, multistep: factor */
    const double *milestones; /* multistep: epochs, strictly increasing; not owned */
    int n_milestones;
    double power, min_lr;    /* polynomial: power; cosine, polynomial: final lr */
    double pct_start, div_factor, final_div_factor; /* onecycle (PyTorch: 0.3, 25, 1e4) */
} ob_schedule;

/* "constant", "step", "multistep", "cosine", "polynomial", "onecycle".
 * Returns 0, or 2 for an unknown name (*out untouched). */
int ob_schedule_kind_parse(const char *name, ob_schedule_kind *out);
/* The name ob_schedule_kind_parse accepts; "unknown" out of range. */
const char *ob_schedule_kind_name(ob_schedule_kind kind);

/* Returns 0 when every field the kind uses is meaningful; otherwise 2 and
 * one line in err naming the field and what was expected
 * (e.g. "schedule: warmup_epochs (10) must be less than total_epochs (5)"). */
int ob_schedule_validate(const ob_schedule *s, char *err, size_t err_len);

/* The lr for update number step + 1 (step is 0-based). s must validate. */
double ob_schedule_lr(const ob_schedule *s, int64_t step);

/* round(epochs * steps_per_epoch): how every epoch quantity becomes steps. */
int64_t ob_schedule_epochs_to_steps(const ob_schedule *s, double epochs);

#endif
