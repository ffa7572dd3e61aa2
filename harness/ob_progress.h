/* Progress reporting: a live line on a terminal, plain periodic lines
 * otherwise (logs, CI), both on stderr so stdout keeps the results. */
#ifndef OB_PROGRESS_H
#define OB_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    bool tty;
    bool silent; /* ranks other than 0 say nothing */
    int64_t log_every;
    int64_t total_steps;
    double last_draw;
} ob_progress;

void ob_progress_init(ob_progress *progress, int64_t log_every, int64_t total_steps);
/* step is 1-based (steps done); rates are averaged since training (re)started;
 * a sample is an image or a sequence, whatever the workload batches. */
void ob_progress_step(ob_progress *progress, double epoch, int64_t step, double loss, double samples_per_s,
                      double steps_per_s);
/* Prints a full line (ending any live line first). */
void ob_progress_line(ob_progress *progress, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
