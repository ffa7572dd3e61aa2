/* `optbench report`: published numbers from the tables in results/papers, read with
 * libcsv, and the rule that puts them beside a configuration (ob_report.h). */
#define _DEFAULT_SOURCE /* strdup, strtok_r */

#include <csv.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/ob_fail.h"
#include "harness/ob_report.h"
#include "harness/ob_text.h"

#ifndef OB_SOURCE_DIR
#error "OB_SOURCE_DIR (the source tree) must be defined: harness/CMakeLists.txt sets it"
#endif

#define N_FIELDS 6
static const char *const HEADER[N_FIELDS] = {"paper", "workload", "configuration", "metric", "value", "source"};

const char *ob_report_default_papers_dir(void) { return OB_SOURCE_DIR "/results/papers"; }

/* ---- parsing ---------------------------------------------------------------- */

/* What libcsv's callbacks build while one file is parsed. */
typedef struct {
    const char *path;
    char *fields[N_FIELDS];
    int n_fields, n_records; /* n_records counts the header too */
    ob_paper_row *rows;
    int n_rows;
    int rc; /* first failure; later callbacks do nothing */
    char *err;
    size_t err_len;
} paper_parse;

static void drop_fields(paper_parse *p) {
    for (int f = 0; f < N_FIELDS; f++) {
        free(p->fields[f]);
        p->fields[f] = NULL;
    }
    p->n_fields = 0;
}

static void on_field(void *text, size_t length, void *data) {
    paper_parse *p = data;
    if (p->rc) return;
    if (p->n_fields == N_FIELDS) {
        p->n_fields++; /* counted, so the record is refused as too long */
        return;
    }
    if (p->n_fields > N_FIELDS) return;
    p->fields[p->n_fields] = strndup(text ? text : "", text ? length : 0);
    if (!p->fields[p->n_fields++]) p->rc = 1;
}

static bool is_config_key(const char *key) {
    int n_keys;
    const ob_config_key *keys = ob_config_keys(&n_keys);
    for (int k = 0; k < n_keys; k++)
        if (strcmp(keys[k].key, key) == 0) return true;
    return false;
}

/* Every word of a configuration is KEY=PATTERN with a known key. */
static int check_configuration(const paper_parse *p, const char *configuration) {
    char *copy = strdup(configuration), *rest = NULL;
    if (!copy) return 1;
    int rc = 0;
    for (char *word = strtok_r(copy, " \t", &rest); word && !rc; word = strtok_r(NULL, " \t", &rest)) {
        char *equals = strchr(word, '=');
        if (equals) *equals = '\0';
        if (!equals || !is_config_key(word))
            rc = ob_fail(p->err, p->err_len, "%s: record %d: configuration word \"%s%s\": expected KEY=PATTERN with a "
                         "config key (optbench list keys)", p->path, p->n_records, word, equals ? "=..." : "");
    }
    free(copy);
    return rc;
}

static int check_header(const paper_parse *p) {
    for (int f = 0; f < N_FIELDS; f++)
        if (p->n_fields != N_FIELDS || strcmp(p->fields[f], HEADER[f]) != 0)
            return ob_fail(p->err, p->err_len,
                           "%s: expected the header paper,workload,configuration,metric,value,source", p->path);
    return 0;
}

static int add_row(paper_parse *p) {
    if (p->n_fields != N_FIELDS)
        return ob_fail(p->err, p->err_len, "%s: record %d has %d fields, expected %d", p->path, p->n_records,
                       p->n_fields, N_FIELDS);
    if (ob_report_metric_find(p->fields[3]) < 0)
        return ob_fail(p->err, p->err_len, "%s: record %d: unknown metric %s (see ob_report.h)", p->path,
                       p->n_records, p->fields[3]);
    int rc = check_configuration(p, p->fields[2]);
    ob_paper_row *grown = rc ? NULL : realloc(p->rows, (size_t)(p->n_rows + 1) * sizeof *grown);
    if (!grown) return rc ? rc : 1;
    p->rows = grown;
    char **slots[N_FIELDS] = {&grown[p->n_rows].paper,  &grown[p->n_rows].workload, &grown[p->n_rows].configuration,
                              &grown[p->n_rows].metric, &grown[p->n_rows].value,    &grown[p->n_rows].source};
    for (int f = 0; f < N_FIELDS; f++) {
        *slots[f] = p->fields[f];
        p->fields[f] = NULL;
    }
    p->n_rows++;
    return 0;
}

static void on_record(int terminator, void *data) {
    (void)terminator;
    paper_parse *p = data;
    p->n_records++;
    if (!p->rc) p->rc = p->n_records == 1 ? check_header(p) : add_row(p);
    drop_fields(p);
}

static int parse_file(paper_parse *p) {
    FILE *file = fopen(p->path, "rb");
    if (!file) return ob_fail(p->err, p->err_len, "cannot read paper table %s: %s", p->path, strerror(errno));
    struct csv_parser parser;
    csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL);
    char buffer[4096];
    size_t n;
    while (!p->rc && (n = fread(buffer, 1, sizeof buffer, file)) > 0)
        if (csv_parse(&parser, buffer, n, on_field, on_record, p) != n && !p->rc)
            p->rc = ob_fail(p->err, p->err_len, "%s: not valid CSV: %s", p->path, csv_strerror(csv_error(&parser)));
    if (!p->rc && csv_fini(&parser, on_field, on_record, p) != 0)
        p->rc = ob_fail(p->err, p->err_len, "%s: not valid CSV: %s", p->path, csv_strerror(csv_error(&parser)));
    if (!p->rc && ferror(file)) p->rc = ob_fail(p->err, p->err_len, "cannot read paper table %s", p->path);
    if (!p->rc && p->n_records == 0) p->rc = ob_fail(p->err, p->err_len, "%s is empty: expected a header", p->path);
    csv_free(&parser);
    fclose(file);
    drop_fields(p);
    return p->rc;
}

/* ---- files ------------------------------------------------------------------ */

static int csv_file_filter(const struct dirent *entry) {
    size_t length = strlen(entry->d_name);
    return entry->d_name[0] != '.' && length > 4 && strcmp(entry->d_name + length - 4, ".csv") == 0;
}

int ob_paper_rows_read(const char *dir, ob_paper_row **rows, int *n_rows, char *err, size_t err_len) {
    *rows = NULL;
    *n_rows = 0;
    struct dirent **entries = NULL;
    int n_files = scandir(dir, &entries, csv_file_filter, alphasort);
    if (n_files < 0) return ob_fail(err, err_len, "cannot read the paper tables in %s: %s", dir, strerror(errno));
    paper_parse p = {.err = err, .err_len = err_len};
    for (int i = 0; i < n_files; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, entries[i]->d_name);
        p.path = path;
        p.n_records = 0;
        if (!p.rc) parse_file(&p);
        free(entries[i]);
    }
    free(entries);
    if (p.rc) {
        ob_paper_rows_free(p.rows, p.n_rows);
        return p.rc;
    }
    *rows = p.rows;
    *n_rows = p.n_rows;
    return 0;
}

void ob_paper_rows_free(ob_paper_row *rows, int n_rows) {
    for (int i = 0; rows && i < n_rows; i++) {
        free(rows[i].paper);
        free(rows[i].workload);
        free(rows[i].configuration);
        free(rows[i].metric);
        free(rows[i].value);
        free(rows[i].source);
    }
    free(rows);
}

/* ---- matching --------------------------------------------------------------- */

static bool configuration_matches(const char *configuration, const ob_config *config) {
    char *copy = strdup(configuration), *rest = NULL;
    bool matches = copy != NULL;
    char *word = copy ? strtok_r(copy, " \t", &rest) : NULL;
    for (; word && matches; word = strtok_r(NULL, " \t", &rest)) {
        char *equals = strchr(word, '=');
        *equals = '\0'; /* checked at load: every word has one */
        matches = fnmatch(equals + 1, ob_config_get_str(config, word), 0) == 0;
    }
    free(copy);
    return matches;
}

bool ob_paper_row_matches(const ob_paper_row *row, const ob_report_group *group) {
    return fnmatch(row->workload, group->workload, 0) == 0 && configuration_matches(row->configuration, group->config);
}

bool ob_paper_row_used(const ob_report *report, int row) {
    for (int g = 0; g < report->n_groups; g++)
        if (ob_paper_row_matches(&report->papers[row], &report->groups[g])) return true;
    return false;
}

void ob_report_paper_cell(const ob_report *report, int group, ob_text *cell) {
    for (int i = 0; i < report->n_papers; i++) {
        const ob_paper_row *row = &report->papers[i];
        if (!ob_paper_row_matches(row, &report->groups[group])) continue;
        double measured = ob_report_metric_value(report, group, (ob_report_metric)ob_report_metric_find(row->metric));
        ob_text_printf(cell, "%s%s: ", cell->length ? "; " : "", row->metric);
        if (isfinite(measured))
            ob_text_printf(cell, "%.4g measured, ", measured);
        else
            ob_text_printf(cell, "- measured, ");
        ob_text_printf(cell, "%s paper (%s)", row->value, row->paper);
    }
}
