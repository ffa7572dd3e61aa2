#include "harness/ob_progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "harness/ob_clock.h"

#define TTY_REDRAW_S 0.2

void ob_progress_init(ob_progress *progress, int64_t log_every, int64_t total_steps) {
    progress->tty = isatty(fileno(stderr));
    progress->log_every = log_every;
    progress->total_steps = total_steps;
    progress->last_draw = 0.0;
    progress->silent = false;
}

static void format_eta(char *out, size_t len, double seconds) {
    if (!(seconds >= 0) || seconds > 1e7) {
        snprintf(out, len, "--:--");
        return;
    }
    long s = (long)seconds;
    snprintf(out, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

void ob_progress_step(ob_progress *progress, double epoch, int64_t step, double loss, double samples_per_s,
                      double steps_per_s) {
    if (progress->silent) return;
    double now = ob_now();
    bool due = progress->tty ? now - progress->last_draw >= TTY_REDRAW_S || step == progress->total_steps
                             : step % progress->log_every == 0;
    if (!due) return;
    progress->last_draw = now;
    char eta[32];
    format_eta(eta, sizeof eta, steps_per_s > 0 ? (double)(progress->total_steps - step) / steps_per_s : -1);
    fprintf(stderr, "%sepoch %.2f  step %lld/%lld  loss %.4f  %.1f samples/s  ETA %s%s", progress->tty ? "\r" : "",
            epoch, (long long)step, (long long)progress->total_steps, loss, samples_per_s, eta,
            progress->tty ? "\033[K" : "\n");
    fflush(stderr);
}

void ob_progress_line(ob_progress *progress, const char *fmt, ...) {
    if (progress->silent) return;
    if (progress->tty) fputs("\r\033[K", stderr);
    va_list args;
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
    fflush(stderr);
}
