#define _POSIX_C_SOURCE 200809L
#include "harness/ob_clock.h"

#include <time.h>

static const char *const phase_names[OB_PHASE_COUNT] = {
    "forward",      "backward",       "factors", "factor_comm", "inverses", "inverse_comm",
    "precondition", "grad_allreduce", "update",  "data"};

double ob_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *ob_phase_name(ob_phase phase) { return phase_names[phase]; }

double ob_phase_end(ob_phase_timers *timers, ob_phase phase, double started) {
    double now = ob_now();
    timers->seconds[phase] += now - started;
    timers->calls[phase]++;
    return now;
}
