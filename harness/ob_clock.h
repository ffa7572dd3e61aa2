/* Clocks and per-phase timers.
 *
 * The run keeps four clocks that are never mixed (DESIGN.md §5): train_s
 * (steps only: the time-to-accuracy clock), eval_s, init_s and wall_s.
 * Phases (forward, backward, ..., data) are timed inside train_s. */
#ifndef OB_CLOCK_H
#define OB_CLOCK_H

#include <stdint.h>

typedef enum {
    OB_PHASE_FORWARD = 0,
    OB_PHASE_BACKWARD,
    OB_PHASE_FACTORS,
    OB_PHASE_FACTOR_COMM,
    OB_PHASE_INVERSES,
    OB_PHASE_INVERSE_COMM,
    OB_PHASE_PRECONDITION,
    OB_PHASE_GRAD_ALLREDUCE,
    OB_PHASE_UPDATE,
    OB_PHASE_DATA,
    OB_PHASE_COUNT
} ob_phase;

typedef struct {
    double seconds[OB_PHASE_COUNT];
    int64_t calls[OB_PHASE_COUNT];
} ob_phase_timers;

/* Monotonic seconds. */
double ob_now(void);
const char *ob_phase_name(ob_phase phase);
/* Adds the time since `started` to the phase; returns the current time so
 * consecutive phases can be chained without a second clock read. */
double ob_phase_end(ob_phase_timers *timers, ob_phase phase, double started);

#endif
