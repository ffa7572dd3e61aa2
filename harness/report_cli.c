/* `optbench report`: the command line (ob_report.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/ob_cli.h"
#include "harness/ob_fail.h"
#include "harness/ob_report.h"

#define ERR_LEN 1024

static const char REPORT_USAGE[] =
    "usage: optbench report RUN.h5|DIR ... [--format md|csv] [--out FILE] [--plot PREFIX]\n"
    "                       [--baseline NAME] [--reference-dir DIR] [--papers-dir DIR]\n"
    "  Pools run files (a directory: every .h5 file below it) by configuration and tabulates, per\n"
    "  configuration, epochs and time to target, speedup against the baseline, peak memory by\n"
    "  category, communication per step, skipped steps, gradient underflow and published numbers\n"
    "  (results/papers). --baseline NAME: the configuration (as the table names it, e.g. sgd\n"
    "  or sgd+kfac) speedups are against; default: precond none, fp32 of the same workload and preset.\n"
    "  --plot PREFIX writes PREFIX-convergence, -time_to_target and -memory_vs_comm as .png and .svg\n"
    "  (1000x700), with the reference band from --reference-dir (default $OB_REFERENCE_DIR or the\n"
    "  source tree's results/reference). Runs still running are listed and left out of statistics.\n";

typedef struct {
    ob_report_format format;
    const char *out, *plot, *baseline, *reference_dir, *papers_dir;
} report_options;

static int parse_format(const char *value, report_options *options, char *err, size_t err_len) {
    if (strcmp(value, "md") == 0)
        options->format = OB_REPORT_MARKDOWN;
    else if (strcmp(value, "csv") == 0)
        options->format = OB_REPORT_CSV;
    else
        return ob_fail(err, err_len, "--format: expected md or csv, got \"%s\"", value);
    return 0;
}

/* The flag at argv[*i] and its value; 0, or 2 with err. */
static int parse_flag(int argc, char **argv, int *i, report_options *options, char *err, size_t err_len) {
    const char *flag = argv[*i];
    const char **slots[] = {&options->out, &options->plot, &options->baseline, &options->reference_dir,
                            &options->papers_dir, NULL};
    static const char *const names[] = {"--out", "--plot", "--baseline", "--reference-dir", "--papers-dir",
                                        "--format"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (strcmp(flag, names[k]) != 0) continue;
        if (*i + 1 >= argc) return ob_fail(err, err_len, "%s: expected a value after the flag", flag);
        const char *value = argv[++*i];
        if (!slots[k]) return parse_format(value, options, err, err_len);
        *slots[k] = value;
        return 0;
    }
    return ob_fail(err, err_len, "unknown flag %s (see optbench report --help)", flag);
}

static int parse_report_args(int argc, char **argv, report_options *options, char **inputs, int *n_inputs,
                             char *err, size_t err_len) {
    for (int i = 2; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0)
            inputs[(*n_inputs)++] = argv[i];
        else if (parse_flag(argc, argv, &i, options, err, err_len))
            return 2;
    }
    return 0;
}

/* The table into --out (removed again when it could not be finished) or stdout. */
static int write_table(const ob_report *report, const report_options *options, char *err, size_t err_len) {
    FILE *out = options->out ? fopen(options->out, "w") : stdout;
    if (!out) return ob_fail(err, err_len, "cannot create output %s: %s", options->out, strerror(errno));
    int rc = ob_report_write_table(report, options->format, out, err, err_len);
    if (options->out && fclose(out) != 0 && !rc) rc = ob_fail(err, err_len, "cannot write output %s", options->out);
    if (options->out && rc) unlink(options->out);
    return rc;
}

/* Plots before the table, so a plot that cannot be written stops the report
 * before anything is printed. The plot paths follow the table, on stdout
 * unless the CSV table is there. */
static int report(const report_options *options, char **paths, int n_paths, char *err, size_t err_len) {
    ob_paper_row *papers = NULL;
    int n_papers = 0;
    ob_report report = {0};
    ob_text written = {0};
    const char *papers_dir = options->papers_dir ? options->papers_dir : ob_report_default_papers_dir();
    int rc = ob_paper_rows_read(papers_dir, &papers, &n_papers, err, err_len);
    if (!rc)
        rc = ob_report_build((const char *const *)paths, n_paths, options->baseline, papers, n_papers, &report, err,
                             err_len);
    if (!rc && options->plot)
        rc = ob_report_write_plots(&report, options->plot, options->reference_dir, &written, err, err_len);
    if (!rc) rc = write_table(&report, options, err, err_len);
    bool csv_on_stdout = options->format == OB_REPORT_CSV && !options->out;
    if (!rc && written.length) fputs(ob_text_str(&written), csv_on_stdout ? stderr : stdout);
    ob_text_free(&written);
    ob_report_free(&report);
    return rc;
}

int ob_report_main(int argc, char **argv) {
    if (ob_cli_asks_help(argc, argv, 2)) {
        fputs(REPORT_USAGE, stdout);
        return 0;
    }
    char err[ERR_LEN] = "";
    report_options options = {.format = OB_REPORT_MARKDOWN};
    char **inputs = calloc((size_t)argc, sizeof *inputs), **paths = NULL;
    int n_inputs = 0, n_paths = 0;
    int rc = inputs ? parse_report_args(argc, argv, &options, inputs, &n_inputs, err, sizeof err) : 1;
    if (!rc) rc = ob_report_expand_paths(inputs, n_inputs, &paths, &n_paths, err, sizeof err);
    if (!rc) rc = report(&options, paths, n_paths, err, sizeof err);
    if (rc && err[0]) fprintf(stderr, "optbench: report: %s\n", err);
    ob_run_paths_free(paths, n_paths);
    free(inputs);
    return rc;
}
