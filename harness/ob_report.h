/* ob_report: `optbench report` (DESIGN.md sections 5-7, issue #6 item 5) -
 * run files pooled by configuration into tables (Markdown or CSV) and plots.
 *
 * Loading (report_load.c). Arguments are run files or directories; a
 * directory gives every .h5 file below it, at any depth (a suite's out_dir holds
 * <run>/<id>.h5), in name order. Every file must pass the schema-v1
 * validator: a missing or corrupt one is exit 2. A run is "final" when its
 * status is converged, budget_exhausted or diverged; one that says running
 * (or aborted: it was cut short and a suite runs it again) is listed with
 * its status and left out of every statistic; a run killed before its
 * first flush may lack attributes the validator wants, and is then known by
 * its status alone (listed, in no group).
 *
 * Groups (report_groups.c). Runs pool into one group when they trained the
 * same configuration on the same world size: their resolved configs agree
 * in every key that ob_reference_key_may_differ does not free (so the seeds
 * of one suite [run] section pool, and runs differing in, say, fqt.bits or
 * kfac.grad_worker_frac do not). A group is named by ob_reference_name
 * (sgd, sgd+kfac, sgd-fp16-dynamic); where groups of one workload, preset
 * and world size share that name, each name is followed by the keys in
 * which they differ, " key=value" in key-table order.
 *
 * Per group, over its final runs:
 *   runs, converged      final runs; how many reached the target
 *   epochs to target     mean +- sample std (n - 1) over converged runs, and
 *                        the olympic mean (ob_olympic) when >= 5 converged
 *   time to target       time_to_target_s (the train_s clock, AlgoPerf's
 *                        rule) mean +- sample std over converged runs
 *   speedup              baseline mean / group mean, of time and of epochs;
 *                        +- the first-order standard error of that ratio,
 *                        r sqrt((s_b^2/n_b)/m_b^2 + (s_g^2/n_g)/m_g^2),
 *                        when both sides have >= 2 converged runs
 *   memory by category   rank 0's peak bytes of each /memory category (MiB
 *                        in Markdown), mean over the runs; columns are the
 *                        categories found, in the order the files list them
 *   comm per step        rank 0's /comm bytes of the training categories
 *                        (everything but eval and control), divided by the
 *                        run's steps (its last /train step), mean over runs
 *   skipped steps        the skipped_steps root attribute, mean over the
 *                        runs that have it; "-" when none has
 *   underflow            /precision: the fraction of all logged gradient
 *                        values flushed to zero (underflow_frac weighted by
 *                        values), mean over the runs with rows
 * The baseline of a group: with --baseline NAME, the group named NAME (a
 * configuration name as the table prints it, e.g. sgd or sgd+kfac) of the
 * same workload and preset; by default the group with precond none,
 * precision fp32 and loss_scale none of the same workload and preset. Among
 * several candidates the one of the same world size, then of the same
 * optimizer, then the first in table order. Without one the speedup cells
 * stay empty; the baseline itself says "baseline".
 *
 * Paper numbers (report_papers.c). Every *.csv in the papers directory
 * (default <source tree>/results/papers, --papers-dir) has the header
 *   paper,workload,configuration,metric,value,source
 * and one published number per row, value as the paper states it (a number,
 * a range "2.79-3.15", a bound "<= 0.5"). Matching rule: a row matches a
 * group when
 *   - workload, an fnmatch(3) pattern, matches the group's workload, and
 *   - configuration, blank-separated KEY=PATTERN words (config keys, as
 *     `optbench list keys` prints them), has every PATTERN match (fnmatch)
 *     the group's value of KEY; an empty configuration matches any group.
 * Each match is printed in the group's paper cell beside the measured value
 * of its metric:  "metric: VALUE measured, PAPER_VALUE paper (PAPER)",
 * matches joined by "; ", the measured value "-" when the report cannot
 * compute it for this group; Markdown then lists the source of every row
 * that matched. Presets are not compared: the workstation runs stand beside
 * the full-scale numbers they scale down. Metrics (ob_report_metric_name):
 *   epochs_to_target, time_to_target_s      the group's means
 *   speedup_time, speedup_epochs            against the baseline
 *   time_to_target_reduction_pct            100 (1 - time / baseline time):
 *                                           KAISA's "X% faster" read as
 *                                           X% less time to the target
 *   final_metric_pct                        100 x mean last eval metric
 *   final_metric_gap_pct                    100 x (baseline - group) of it
 *   comm_ratio_vs_kfac, memory_ratio_vs_kfac
 *       for a dp-kfac group: K-FAC communication per step (factors,
 *       inverses, precond_grads) and peak total_accounted memory of its
 *       D-KFAC peer (the group with precond kfac that is otherwise the same
 *       configuration name on the same workload, preset and world size; the
 *       first in table order) divided by its own
 * An unknown metric or config key in a paper file is exit 2.
 *
 * Plots (report_plots.c, drawn with cairo): PREFIX-convergence,
 * PREFIX-time_to_target and PREFIX-memory_vs_comm, each as .png and .svg of
 * OB_REPORT_PLOT_WIDTH x OB_REPORT_PLOT_HEIGHT pixels (SVG: points).
 *
 * Functions return 0, 2 on bad input (one line in err) or 1 when memory ran
 * out; nothing is printed by the library but the tables and plots asked for.
 */
#ifndef OB_REPORT_H
#define OB_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "harness/ob_h5log.h"
#include "harness/ob_reference.h"
#include "harness/ob_text.h"

#define OB_REPORT_MAX_CATEGORIES 16
#define OB_REPORT_NAME_MAX 512
#define OB_REPORT_OLYMPIC_MIN 5 /* MLPerf's olympic mean needs at least this many converged runs */
#define OB_REPORT_PLOT_WIDTH 1000
#define OB_REPORT_PLOT_HEIGHT 700

typedef char ob_report_category[OB_H5LOG_NAME_MAX + 1];

/* One run file. Final runs have the whole record; others only path, status,
 * config, seed and world_size, or only path and status (config NULL). */
typedef struct {
    ob_run_record record;
    bool final;
    double time_to_target_s;      /* NaN when not reached */
    double skipped_steps;         /* NaN when the file has no such attribute */
    double final_metric;          /* the last eval point's metric; NaN when none */
    int64_t steps;                /* the last /train step */
    double comm_bytes, kfac_comm_bytes; /* rank 0, training categories; K-FAC's share */
    double underflow_frac;        /* NaN when /precision has no rows */
    int n_memory;
    ob_report_category memory_category[OB_REPORT_MAX_CATEGORIES];
    double memory_bytes[OB_REPORT_MAX_CATEGORIES]; /* rank 0's peak */
} ob_report_run;

typedef struct {
    double mean, std; /* std: sample std (n - 1), NaN when count < 2; mean NaN when count == 0 */
    int count;
} ob_report_stat;

typedef struct {
    double ratio, se; /* se: standard error; NaN when not defined */
} ob_report_ratio;

typedef struct {
    char name[OB_REPORT_NAME_MAX];
    const ob_config *config; /* its first run's */
    const char *workload, *preset;
    int64_t world_size;
    int *runs; /* indices into the report's runs, final and not */
    int n_runs, n_final, n_converged;
    ob_report_stat epochs, time_s, final_metric, comm_per_step, kfac_comm_per_step, skipped_steps,
        underflow_frac;
    double olympic_epochs;                         /* NaN below OB_REPORT_OLYMPIC_MIN converged runs */
    ob_report_stat memory[OB_REPORT_MAX_CATEGORIES]; /* by the report's category index, bytes */
    int baseline, kfac_peer;                       /* group indices, -1 when none */
    ob_report_ratio speedup_time, speedup_epochs;
} ob_report_group;

/* One published number: a row of a paper table (results/papers). */
typedef struct {
    char *paper, *workload, *configuration, *metric, *value, *source;
} ob_paper_row;

typedef struct {
    ob_report_run *runs;
    int n_runs;
    ob_report_group *groups;
    int n_groups;
    ob_report_category categories[OB_REPORT_MAX_CATEGORIES];
    int n_categories;
    ob_paper_row *papers;
    int n_papers;
} ob_report;

/* ---- loading (report_load.c) ---- */

/* Expands files and directories (recursively) into run file paths. */
int ob_report_expand_paths(char *const *args, int n_args, char ***paths, int *n_paths, char *err,
                           size_t err_len);
/* Reads one run file. */
int ob_report_run_read(const char *path, ob_report_run *out, char *err, size_t err_len);
void ob_report_run_free(ob_report_run *run);
/* Reads the runs, groups them and computes every statistic; papers may be
 * NULL (no paper column). baseline: a configuration name or NULL. The report
 * takes the paper rows. */
int ob_report_build(const char *const *paths, int n_paths, const char *baseline, ob_paper_row *papers,
                    int n_papers, ob_report *out, char *err, size_t err_len);
void ob_report_free(ob_report *report);

/* ---- groups and statistics (report_groups.c) ---- */

ob_report_stat ob_report_stat_of(const double *values, int n);
/* baseline mean / group mean with its first-order standard error. */
ob_report_ratio ob_report_ratio_of(const ob_report_stat *baseline, const ob_report_stat *group);
/* Pools report->runs into report->groups and fills their statistics. */
int ob_report_group_runs(ob_report *report, const char *baseline, char *err, size_t err_len);

typedef enum {
    OB_METRIC_EPOCHS_TO_TARGET,
    OB_METRIC_TIME_TO_TARGET_S,
    OB_METRIC_SPEEDUP_TIME,
    OB_METRIC_SPEEDUP_EPOCHS,
    OB_METRIC_TIME_REDUCTION_PCT,
    OB_METRIC_FINAL_METRIC_PCT,
    OB_METRIC_FINAL_METRIC_GAP_PCT,
    OB_METRIC_COMM_RATIO_VS_KFAC,
    OB_METRIC_MEMORY_RATIO_VS_KFAC,
    OB_METRIC_COUNT
} ob_report_metric;

const char *ob_report_metric_name(ob_report_metric metric);
/* The metric named name; -1 when there is none. */
int ob_report_metric_find(const char *name);
/* A group's value of a metric; NaN when it cannot be computed. */
double ob_report_metric_value(const ob_report *report, int group, ob_report_metric metric);
/* The category's index in report->categories; -1 when no run has it. */
int ob_report_category_index(const ob_report *report, const char *category);

/* ---- paper numbers (report_papers.c) ---- */

/* <source tree>/results/papers */
const char *ob_report_default_papers_dir(void);
/* Reads every *.csv of dir (name order) and checks each row's metric and keys. */
int ob_paper_rows_read(const char *dir, ob_paper_row **rows, int *n_rows, char *err, size_t err_len);
void ob_paper_rows_free(ob_paper_row *rows, int n_rows);
/* Whether the row is about this group (the matching rule above). */
bool ob_paper_row_matches(const ob_paper_row *row, const ob_report_group *group);
/* Whether the row matches any group of the report. */
bool ob_paper_row_used(const ob_report *report, int row);
/* Appends the group's paper cell (nothing when no row matches) to cell. */
void ob_report_paper_cell(const ob_report *report, int group, ob_text *cell);

/* ---- tables (report_tables.c) ---- */

typedef enum { OB_REPORT_MARKDOWN, OB_REPORT_CSV } ob_report_format;

/* The group table; Markdown also lists the runs left out. 0, or 2 when out failed. */
int ob_report_write_table(const ob_report *report, ob_report_format format, FILE *out, char *err,
                          size_t err_len);

/* ---- plots (report_plots.c) ---- */

/* Writes PREFIX-{convergence,time_to_target,memory_vs_comm}.{png,svg};
 * reference_dir: where to look for reference bands (NULL = the default).
 * Appends each path written to `written`, one per line. A file that could
 * not be finished is removed. */
int ob_report_write_plots(const ob_report *report, const char *prefix, const char *reference_dir,
                          ob_text *written, char *err, size_t err_len);

/* `optbench report RUN.h5|DIR ... [--format md|csv] [--out FILE] [--plot PREFIX] [--baseline NAME]
 *  [--reference-dir DIR] [--papers-dir DIR]` */
int ob_report_main(int argc, char **argv);

#endif
