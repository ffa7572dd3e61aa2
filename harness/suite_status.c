/* What a suite run's HDF5 file says: the resume decision and the summary table. */
#define _POSIX_C_SOURCE 200809L /* access */

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/ob_h5log.h"
#include "harness/ob_suite.h"

/* The statuses a run ends with by itself (DESIGN.md section 5); `running`
 * and `aborted` mean it was cut short and must run again. */
static const char *const final_statuses[] = {"converged", "budget_exhausted", "diverged"};

static bool is_final(const char *status) {
    for (size_t i = 0; i < sizeof final_statuses / sizeof final_statuses[0]; i++)
        if (strcmp(status, final_statuses[i]) == 0) return true;
    return false;
}

/* The training clock of the last /train row: time spent in steps. */
static double last_train_s(const char *path) {
    double *values = NULL, last = NAN;
    int64_t count = 0;
    char err[256];
    if (ob_h5log_read_column(path, "train", "train_s", &values, &count, err, sizeof err) == 0 && count > 0)
        last = values[count - 1];
    free(values);
    return last;
}

ob_suite_outcome ob_suite_read_outcome(const char *path) {
    ob_suite_outcome outcome = {.state = OB_SUITE_MISSING, .epochs_to_target = NAN, .train_s = NAN};
    if (access(path, F_OK) != 0) {
        snprintf(outcome.status, sizeof outcome.status, "missing");
        return outcome;
    }
    outcome.state = OB_SUITE_UNFINISHED;
    char err[256], *status = NULL;
    if (ob_h5log_read_attr_str(path, "status", &status, err, sizeof err) != 0) {
        snprintf(outcome.status, sizeof outcome.status, "unreadable");
        return outcome;
    }
    snprintf(outcome.status, sizeof outcome.status, "%s", status);
    free(status);
    if (is_final(outcome.status)) outcome.state = OB_SUITE_FINAL;
    if (ob_h5log_read_attr_float(path, "epochs_to_target", &outcome.epochs_to_target, err, sizeof err) != 0)
        outcome.epochs_to_target = NAN;
    outcome.train_s = last_train_s(path);
    return outcome;
}

static void print_number(FILE *out, int width, double value) {
    if (isnan(value))
        fprintf(out, "  %*s", width, "-");
    else
        fprintf(out, "  %*.2f", width, value);
}

bool ob_suite_print_summary(const ob_suite *suite, FILE *out) {
    int width = (int)strlen("run");
    for (int i = 0; i < suite->n_runs; i++) {
        int length = (int)(strlen(suite->runs[i].run_name) + 1 + strlen(suite->runs[i].id));
        if (length > width) width = length;
    }
    fprintf(out, "%-*s  %-16s  %16s  %10s\n", width, "run", "status", "epochs_to_target", "train_s");
    int n_final = 0;
    for (int i = 0; i < suite->n_runs; i++) {
        const ob_suite_run *run = &suite->runs[i];
        ob_suite_outcome outcome = ob_suite_read_outcome(run->out_path);
        n_final += outcome.state == OB_SUITE_FINAL;
        fprintf(out, "%s/%-*s  %-16s", run->run_name, width - (int)strlen(run->run_name) - 1, run->id, outcome.status);
        print_number(out, 16, outcome.epochs_to_target);
        print_number(out, 10, outcome.train_s);
        fputc('\n', out);
    }
    fprintf(out, "%d of %d runs final (%s)\n", n_final, suite->n_runs, suite->out_dir);
    return n_final == suite->n_runs;
}
