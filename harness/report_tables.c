/* `optbench report`: the group table in Markdown or CSV (libcsv quotes the
 * CSV fields) (ob_report.h).
 *
 * Markdown is for reading: times in seconds with one decimal, memory in MiB,
 * "mean ± std" in one cell, "-" where there is nothing to say. CSV is for
 * scripts: raw units (bytes, seconds, fractions), each number in its own
 * column with %.10g, an empty field where there is nothing to say. */
#include <csv.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/ob_fail.h"
#include "harness/ob_report.h"
#include "harness/ob_text.h"

#define MIB (1024.0 * 1024.0)

typedef struct {
    const ob_report *report;
    const ob_report_group *group;
    int group_index;
} cell_source;

typedef void (*cell_writer)(const cell_source *source, int category, bool markdown, ob_text *cell);

/* A column: its header in each format (NULL: not in that format) and how its
 * cells are written. */
typedef struct {
    const char *markdown, *csv;
    cell_writer write;
} column;

/* ---- number cells ------------------------------------------------------------ */

static void number(double value, bool markdown, const char *markdown_format, double markdown_scale, ob_text *cell) {
    if (!isfinite(value))
        ob_text_printf(cell, "%s", markdown ? "-" : "");
    else if (markdown)
        ob_text_printf(cell, markdown_format, value * markdown_scale);
    else
        ob_text_printf(cell, "%.10g", value);
}

/* Markdown: "mean ± std", or the mean alone when there is no spread. */
static void spread(double mean, double std, const char *format, ob_text *cell) {
    number(mean, true, format, 1, cell);
    if (!isfinite(mean) || !isfinite(std)) return;
    ob_text_printf(cell, " ± ");
    ob_text_printf(cell, format, std);
}

/* ---- the columns --------------------------------------------------------------- */

/* Every cell writer has the same parameters; most need only some of them. */
#define CELL(name)                                                                                          \
    static void name(const cell_source *s, int category __attribute__((unused)),                          \
                     bool markdown __attribute__((unused)), ob_text *cell)

CELL(workload) { ob_text_printf(cell, "%s", s->group->workload); }
CELL(preset) { ob_text_printf(cell, "%s", s->group->preset); }
CELL(configuration) { ob_text_printf(cell, "%s", s->group->name); }
CELL(ranks) { ob_text_printf(cell, "%lld", (long long)s->group->world_size); }
CELL(final_runs) { ob_text_printf(cell, "%d", s->group->n_final); }
CELL(not_final) { ob_text_printf(cell, "%d", s->group->n_runs - s->group->n_final); }
CELL(converged) {
    ob_text_printf(cell, "%d", s->group->n_converged);
    if (markdown) ob_text_printf(cell, "/%d", s->group->n_final);
}
CELL(epochs) { spread(s->group->epochs.mean, s->group->epochs.std, "%.2f", cell); }
CELL(epochs_mean) { number(s->group->epochs.mean, markdown, "%.2f", 1, cell); }
CELL(epochs_std) { number(s->group->epochs.std, markdown, "%.2f", 1, cell); }
CELL(olympic) { number(s->group->olympic_epochs, markdown, "%.2f", 1, cell); }
CELL(final_metric) { spread(s->group->final_metric.mean, s->group->final_metric.std, "%.4f", cell); }
CELL(final_metric_mean) { number(s->group->final_metric.mean, markdown, "%.4f", 1, cell); }
CELL(final_metric_std) { number(s->group->final_metric.std, markdown, "%.4f", 1, cell); }
CELL(time_s) { spread(s->group->time_s.mean, s->group->time_s.std, "%.1f", cell); }
CELL(time_mean) { number(s->group->time_s.mean, markdown, "%.1f", 1, cell); }
CELL(time_std) { number(s->group->time_s.std, markdown, "%.1f", 1, cell); }
CELL(baseline) {
    int b = s->group->baseline;
    ob_text_printf(cell, "%s", b >= 0 ? s->report->groups[b].name : markdown ? "-" : "");
}

static void speedup(const cell_source *s, const ob_report_ratio *ratio, ob_text *cell) {
    if (s->group->baseline == s->group_index)
        ob_text_printf(cell, "baseline");
    else
        spread(ratio->ratio, ratio->se, "%.2f", cell);
}
CELL(speedup_time) { speedup(s, &s->group->speedup_time, cell); }
CELL(speedup_epochs) { speedup(s, &s->group->speedup_epochs, cell); }
CELL(speedup_time_ratio) { number(s->group->speedup_time.ratio, markdown, "%.2f", 1, cell); }
CELL(speedup_time_se) { number(s->group->speedup_time.se, markdown, "%.2f", 1, cell); }
CELL(speedup_epochs_ratio) { number(s->group->speedup_epochs.ratio, markdown, "%.2f", 1, cell); }
CELL(speedup_epochs_se) { number(s->group->speedup_epochs.se, markdown, "%.2f", 1, cell); }
CELL(memory) { number(s->group->memory[category].mean, markdown, "%.1f", 1 / MIB, cell); }
CELL(comm) { number(s->group->comm_per_step.mean, markdown, "%.3f", 1 / MIB, cell); }
CELL(skipped) { number(s->group->skipped_steps.mean, markdown, "%.1f", 1, cell); }
CELL(underflow) { number(s->group->underflow_frac.mean, markdown, "%.3g", 1, cell); }
CELL(paper) { ob_report_paper_cell(s->report, s->group_index, cell); }

static const column LEADING_COLUMNS[] = {
    {"workload", "workload", workload},
    {"preset", "preset", preset},
    {"configuration", "configuration", configuration},
    {"ranks", "ranks", ranks},
    {"runs", "runs", final_runs},
    {"converged", "converged", converged},
    {"not final", "not_final", not_final},
    {"final metric", NULL, final_metric},
    {NULL, "final_metric_mean", final_metric_mean},
    {NULL, "final_metric_std", final_metric_std},
    {"epochs to target", NULL, epochs},
    {NULL, "epochs_to_target_mean", epochs_mean},
    {NULL, "epochs_to_target_std", epochs_std},
    {"olympic epochs", "epochs_to_target_olympic", olympic},
    {"time to target (s)", NULL, time_s},
    {NULL, "time_to_target_s_mean", time_mean},
    {NULL, "time_to_target_s_std", time_std},
    {"baseline", "baseline", baseline},
    {"speedup (time)", NULL, speedup_time},
    {NULL, "speedup_time", speedup_time_ratio},
    {NULL, "speedup_time_se", speedup_time_se},
    {"speedup (epochs)", NULL, speedup_epochs},
    {NULL, "speedup_epochs", speedup_epochs_ratio},
    {NULL, "speedup_epochs_se", speedup_epochs_se},
};
/* One memory column per category comes between these two lists. */
static const column TRAILING_COLUMNS[] = {
    {"comm MiB/step", "comm_bytes_per_step", comm},
    {"skipped steps", "skipped_steps", skipped},
    {"underflow", "underflow_frac", underflow},
    {"paper", "paper", paper},
};
#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))
/* Markdown: the identifying columns are left-aligned, the numbers right-aligned. */
#define N_TEXT_COLUMNS 3

/* A column of this report's table in one format. */
typedef struct {
    char header[OB_H5LOG_NAME_MAX + 16];
    cell_writer write;
    int category;
} table_column;

static void add_columns(const column *columns, int n, bool markdown, table_column *out, int *n_out) {
    for (int i = 0; i < n; i++) {
        const char *header = markdown ? columns[i].markdown : columns[i].csv;
        if (!header) continue;
        table_column *c = &out[(*n_out)++];
        snprintf(c->header, sizeof c->header, "%s", header);
        c->write = columns[i].write;
    }
}

/* The table's columns; NULL when out of memory. */
static table_column *table_columns(const ob_report *report, bool markdown, int *n) {
    table_column *columns =
        calloc((size_t)(COUNT(LEADING_COLUMNS) + report->n_categories + COUNT(TRAILING_COLUMNS)), sizeof *columns);
    *n = 0;
    if (!columns) return NULL;
    add_columns(LEADING_COLUMNS, COUNT(LEADING_COLUMNS), markdown, columns, n);
    for (int c = 0; c < report->n_categories; c++) {
        table_column *column = &columns[(*n)++];
        snprintf(column->header, sizeof column->header, markdown ? "%s MiB" : "%s_bytes", report->categories[c]);
        column->write = memory;
        column->category = c;
    }
    add_columns(TRAILING_COLUMNS, COUNT(TRAILING_COLUMNS), markdown, columns, n);
    return columns;
}

/* ---- rows -------------------------------------------------------------------------- */

/* One field: CSV through libcsv, Markdown with '|' escaped. */
static int put_field(FILE *out, bool markdown, bool first, const char *text) {
    if (!markdown) return (!first && fputc(',', out) == EOF) || csv_fwrite(out, text, strlen(text)) != 0;
    if (fputs(first ? "| " : " | ", out) == EOF) return 1;
    for (const char *c = text; *c; c++)
        if ((*c == '|' && fputc('\\', out) == EOF) || fputc(*c, out) == EOF) return 1;
    return 0;
}

static int end_row(FILE *out, bool markdown) { return fputs(markdown ? " |\n" : "\n", out) == EOF; }

static int write_header(const table_column *columns, int n, bool markdown, FILE *out) {
    int failed = 0;
    for (int i = 0; i < n; i++) failed |= put_field(out, markdown, i == 0, columns[i].header);
    failed |= end_row(out, markdown);
    for (int i = 0; markdown && i < n; i++) failed |= fputs(i < N_TEXT_COLUMNS ? "|---" : "|---:", out) == EOF;
    return failed || (markdown && fputs("|\n", out) == EOF);
}

static int write_group_row(const ob_report *report, int g, const table_column *columns, int n, bool markdown,
                           FILE *out) {
    cell_source source = {.report = report, .group = &report->groups[g], .group_index = g};
    int failed = 0;
    for (int i = 0; i < n && !failed; i++) {
        ob_text cell = {0};
        columns[i].write(&source, columns[i].category, markdown, &cell);
        failed = cell.failed || put_field(out, markdown, i == 0, ob_text_str(&cell));
        ob_text_free(&cell);
    }
    return failed || end_row(out, markdown);
}

/* Markdown: the runs that are not final, which no statistic includes. */
static int list_unfinished(const ob_report *report, FILE *out) {
    int failed = 0, listed = 0;
    for (int r = 0; r < report->n_runs; r++) {
        const ob_report_run *run = &report->runs[r];
        if (run->final) continue;
        if (!listed++) failed |= fputs("\nNot final, left out of the statistics:\n", out) == EOF;
        failed |= fprintf(out, "- %s: %s\n", run->record.path, run->record.status) < 0;
    }
    return failed;
}

/* Markdown: where each paper number that was printed comes from. */
static int list_sources(const ob_report *report, FILE *out) {
    int failed = 0, listed = 0;
    for (int i = 0; i < report->n_papers; i++) {
        const ob_paper_row *row = &report->papers[i];
        if (!ob_paper_row_used(report, i)) continue;
        if (!listed++) failed |= fputs("\nPaper numbers in the table:\n", out) == EOF;
        failed |= fprintf(out, "- %s, %s of %s%s%s: %s\n", row->paper, row->metric, row->workload,
                              row->configuration[0] ? " with " : "", row->configuration, row->source) < 0;
    }
    return failed;
}

int ob_report_write_table(const ob_report *report, ob_report_format format, FILE *out, char *err, size_t err_len) {
    bool markdown = format == OB_REPORT_MARKDOWN;
    int n_columns;
    table_column *columns = table_columns(report, markdown, &n_columns);
    if (!columns) return 1;
    int failed = write_header(columns, n_columns, markdown, out);
    for (int g = 0; g < report->n_groups && !failed; g++)
        failed = write_group_row(report, g, columns, n_columns, markdown, out);
    if (markdown && !failed) failed = list_unfinished(report, out) || list_sources(report, out);
    free(columns);
    if (fflush(out) != 0 || ferror(out)) failed = 1;
    return failed ? ob_fail(err, err_len, "cannot write the report table") : 0;
}
