/* `optbench report`: finding run files and reading what the report needs
 * from each (ob_report.h). */
#define _DEFAULT_SOURCE /* fts, strdup */

#include <errno.h>
#include <fts.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/h5_attributes.h"
#include "harness/ob_fail.h"
#include "harness/ob_report.h"
#include "harness/ob_suite.h"

/* ---- paths -------------------------------------------------------------- */

static int compare_entries(const FTSENT **a, const FTSENT **b) { return strcmp((*a)->fts_name, (*b)->fts_name); }

static bool is_run_file_below(const FTSENT *entry) {
    size_t length = entry->fts_namelen;
    return entry->fts_name[0] != '.' && length > 3 && strcmp(entry->fts_name + length - 3, ".h5") == 0;
}

static int append_path(char ***paths, int *n, int *capacity, const char *path) {
    if (*n == *capacity) {
        int grown = *capacity ? 2 * *capacity : 16;
        char **bigger = realloc(*paths, (size_t)grown * sizeof *bigger);
        if (!bigger) return 1;
        *paths = bigger;
        *capacity = grown;
    }
    (*paths)[*n] = strdup(path);
    return (*paths)[(*n)++] ? 0 : 1;
}

/* One fts entry: a file given by name is taken as it is, files below a
 * given directory only when named NAME.h5. first_in_root: how many paths were
 * listed when the current root was entered. */
static int visit(const FTSENT *entry, char ***paths, int *n, int *capacity, int *first_in_root, char *err,
                 size_t err_len) {
    switch (entry->fts_info) {
    case FTS_F:
        return entry->fts_level == 0 || is_run_file_below(entry) ? append_path(paths, n, capacity, entry->fts_path)
                                                                   : 0;
    case FTS_D:
        if (entry->fts_level == 0) *first_in_root = *n;
        return 0;
    case FTS_DP:
        return entry->fts_level == 0 && *n == *first_in_root
                   ? ob_fail(err, err_len, "directory %s holds no .h5 run files", entry->fts_path)
                   : 0;
    case FTS_NS:
    case FTS_DNR:
    case FTS_ERR:
        return ob_fail(err, err_len, "cannot read %s: %s", entry->fts_path, strerror(entry->fts_errno));
    default:
        return 0;
    }
}

int ob_report_expand_paths(char *const *args, int n_args, char ***paths, int *n_paths, char *err,
                           size_t err_len) {
    *paths = NULL;
    *n_paths = 0;
    if (n_args == 0) return ob_fail(err, err_len, "expected run files or directories to report on");
    char **roots = calloc((size_t)n_args + 1, sizeof *roots); /* fts_open wants them NULL-terminated */
    if (!roots) return 1;
    memcpy(roots, args, (size_t)n_args * sizeof *roots);
    FTS *tree = fts_open(roots, FTS_PHYSICAL | FTS_NOCHDIR, compare_entries);
    int capacity = 0, first_in_root = 0;
    int rc = tree ? 0 : ob_fail(err, err_len, "cannot walk %s: %s", args[0], strerror(errno));
    for (FTSENT *entry = tree ? fts_read(tree) : NULL; entry && !rc; entry = fts_read(tree))
        rc = visit(entry, paths, n_paths, &capacity, &first_in_root, err, err_len);
    if (tree) fts_close(tree);
    free(roots);
    if (rc) {
        ob_run_paths_free(*paths, *n_paths);
        *paths = NULL;
        *n_paths = 0;
    }
    return rc;
}

/* ---- summary tables ----------------------------------------------------- */

/* A /memory or /comm row as the report reads it: the rank, one identifier
 * column and one amount. */
typedef struct {
    int32_t rank;
    char name[OB_H5LOG_NAME_MAX + 1];
    double amount;
} named_amount;

static int read_named_amounts(const char *path, const char *table, const char *name_column, const char *amount_column,
                              named_amount **rows, int64_t *n_rows, char *err, size_t err_len) {
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t dataset = file >= 0 ? H5Dopen2(file, table, H5P_DEFAULT) : H5I_INVALID_HID;
    hid_t space = dataset >= 0 ? H5Dget_space(dataset) : H5I_INVALID_HID;
    *n_rows = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    *rows = *n_rows >= 0 ? calloc((size_t)*n_rows + 1, sizeof **rows) : NULL;
    hid_t type = H5Tcreate(H5T_COMPOUND, sizeof(named_amount));
    hid_t name_type = ob_h5_string_type(sizeof((*rows)->name)); /* one byte longer: always terminated */
    H5Tinsert(type, "rank", HOFFSET(named_amount, rank), H5T_NATIVE_INT32);
    H5Tinsert(type, name_column, HOFFSET(named_amount, name), name_type);
    H5Tinsert(type, amount_column, HOFFSET(named_amount, amount), H5T_NATIVE_DOUBLE);
    herr_t read = *rows && *n_rows > 0 ? H5Dread(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *rows) : 0;
    H5Tclose(name_type);
    H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (dataset >= 0) H5Dclose(dataset);
    if (file >= 0) H5Fclose(file);
    if (*rows && read >= 0) return 0;
    free(*rows);
    *rows = NULL;
    return ob_fail(err, err_len, "%s: cannot read table %s", path, table);
}

static int read_memory(const char *path, ob_report_run *run, char *err, size_t err_len) {
    named_amount *rows;
    int64_t n;
    if (read_named_amounts(path, "/memory", "category", "peak_bytes", &rows, &n, err, err_len)) return 2;
    for (int64_t i = 0; i < n && run->n_memory < OB_REPORT_MAX_CATEGORIES; i++) {
        if (rows[i].rank != 0) continue;
        memcpy(run->memory_category[run->n_memory], rows[i].name, sizeof rows[i].name);
        run->memory_bytes[run->n_memory++] = rows[i].amount;
    }
    free(rows);
    return 0;
}

static bool is_kfac_traffic(const char *category) {
    return strcmp(category, "factors") == 0 || strcmp(category, "inverses") == 0 ||
           strcmp(category, "precond_grads") == 0;
}

/* Evaluation and control messages are not training communication. */
static bool is_training_traffic(const char *category) {
    return strcmp(category, "eval") != 0 && strcmp(category, "control") != 0;
}

static int read_comm(const char *path, ob_report_run *run, char *err, size_t err_len) {
    named_amount *rows;
    int64_t n;
    if (read_named_amounts(path, "/comm", "category", "bytes", &rows, &n, err, err_len)) return 2;
    for (int64_t i = 0; i < n; i++) {
        if (rows[i].rank != 0 || !is_training_traffic(rows[i].name)) continue;
        run->comm_bytes += rows[i].amount;
        if (is_kfac_traffic(rows[i].name)) run->kfac_comm_bytes += rows[i].amount;
    }
    free(rows);
    return 0;
}

/* /precision came with issue #4 and is optional in schema v1: the validator
 * already passed the file, so a table that cannot be read is one it lacks. */
static void read_underflow(const char *path, ob_report_run *run) {
    double *values = NULL, *underflow = NULL, flushed = 0, total = 0;
    int64_t n_values = 0, n_underflow = 0;
    char ignored[256];
    if (ob_h5log_read_column(path, "precision", "values", &values, &n_values, ignored, sizeof ignored) == 0 &&
        ob_h5log_read_column(path, "precision", "underflow_frac", &underflow, &n_underflow, ignored,
                             sizeof ignored) == 0)
        for (int64_t i = 0; i < n_values && i < n_underflow; i++) {
            flushed += underflow[i] * values[i];
            total += values[i];
        }
    run->underflow_frac = total > 0 ? flushed / total : NAN;
    free(values);
    free(underflow);
}

static int read_steps(const char *path, ob_report_run *run, char *err, size_t err_len) {
    double *steps = NULL;
    int64_t n = 0;
    if (ob_h5log_read_column(path, "train", "step", &steps, &n, err, err_len)) return 2;
    run->steps = n > 0 ? (int64_t)steps[n - 1] : 0;
    free(steps);
    return 0;
}

static int read_final_run(const char *path, ob_report_run *run, char *err, size_t err_len) {
    char ignored[256];
    int rc = ob_run_record_read(path, &run->record, err, err_len);
    if (!rc) rc = ob_h5log_read_attr_float(path, "time_to_target_s", &run->time_to_target_s, err, err_len);
    /* Files written before issue #4 have no skipped_steps. */
    if (!rc && ob_h5log_read_attr_float(path, "skipped_steps", &run->skipped_steps, ignored, sizeof ignored))
        run->skipped_steps = NAN;
    if (!rc) rc = read_steps(path, run, err, err_len);
    if (!rc) rc = read_memory(path, run, err, err_len);
    if (!rc) rc = read_comm(path, run, err, err_len);
    if (!rc) read_underflow(path, run);
    if (!rc && run->record.n_eval > 0) run->final_metric = run->record.eval_metric[run->record.n_eval - 1];
    return rc;
}

/* A run that is not final has only its configuration in the report. */
static int read_unfinished_run(const char *path, const char *status, ob_report_run *run, char *err,
                               size_t err_len) {
    ob_run_record *record = &run->record;
    char *config_text = NULL;
    double world_size = 1;
    record->path = strdup(path);
    record->status = strdup(status);
    record->config = ob_config_new();
    if (!record->path || !record->status || !record->config) return 1;
    int rc = ob_h5log_read_attr_str(path, "config", &config_text, err, err_len);
    if (!rc) rc = ob_config_load_ini_text(record->config, config_text, path, err, err_len);
    if (!rc) rc = ob_h5log_read_attr_float(path, "world_size", &world_size, err, err_len);
    free(config_text);
    record->world_size = (int64_t)world_size;
    record->seed = ob_config_get_int(record->config, "run.seed");
    return rc;
}

/* A run killed before its first flush says "running" but may lack the rest
 * of its attributes: such a file is listed by its status alone. */
static int read_status_only(const char *path, const char *status, ob_report_run *run) {
    run->record.path = strdup(path);
    run->record.status = strdup(status);
    return run->record.path && run->record.status ? 0 : 1;
}

int ob_report_run_read(const char *path, ob_report_run *out, char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    out->time_to_target_s = out->skipped_steps = out->final_metric = out->underflow_frac = NAN;
    ob_suite_outcome outcome = ob_suite_read_outcome(path);
    out->final = outcome.state == OB_SUITE_FINAL;
    bool has_status = outcome.state == OB_SUITE_UNFINISHED && strcmp(outcome.status, "unreadable") != 0;
    int rc = ob_h5log_validate(path, err, err_len);
    if (rc && has_status) rc = read_status_only(path, outcome.status, out);
    else if (!rc)
        rc = out->final ? read_final_run(path, out, err, err_len)
                        : read_unfinished_run(path, outcome.status, out, err, err_len);
    if (rc) ob_report_run_free(out);
    return rc;
}

void ob_report_run_free(ob_report_run *run) {
    if (!run) return;
    ob_run_record_free(&run->record);
    memset(run, 0, sizeof *run);
}

/* ---- the report ----------------------------------------------------------- */

/* The union of the runs' memory categories, in the order the files list them. */
static void collect_categories(ob_report *report) {
    for (int r = 0; r < report->n_runs; r++) {
        const ob_report_run *run = &report->runs[r];
        for (int c = 0; c < run->n_memory && report->n_categories < OB_REPORT_MAX_CATEGORIES; c++)
            if (ob_report_category_index(report, run->memory_category[c]) < 0)
                memcpy(report->categories[report->n_categories++], run->memory_category[c],
                       sizeof run->memory_category[c]);
    }
}

int ob_report_build(const char *const *paths, int n_paths, const char *baseline, ob_paper_row *papers,
                    int n_papers, ob_report *out, char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    out->papers = papers;
    out->n_papers = n_papers;
    out->runs = calloc((size_t)n_paths, sizeof *out->runs);
    if (!out->runs) return 1;
    int rc = 0;
    for (int i = 0; i < n_paths && !rc; i++) {
        rc = ob_report_run_read(paths[i], &out->runs[i], err, err_len);
        if (!rc) out->n_runs++;
    }
    if (!rc) collect_categories(out);
    if (!rc) rc = ob_report_group_runs(out, baseline, err, err_len);
    if (rc) ob_report_free(out);
    return rc;
}

void ob_report_free(ob_report *report) {
    if (!report) return;
    for (int i = 0; i < report->n_runs; i++) ob_report_run_free(&report->runs[i]);
    free(report->runs);
    for (int g = 0; g < report->n_groups; g++) free(report->groups[g].runs);
    free(report->groups);
    ob_paper_rows_free(report->papers, report->n_papers);
    memset(report, 0, sizeof *report);
}
