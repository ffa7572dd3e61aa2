/* The HDF5 run log (schema v1) and its validator; see ob_h5log.h. */
#define _POSIX_C_SOURCE 200809L /* strdup, open */

#include "harness/ob_h5log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "harness/h5_attributes.h"
#include "harness/ob_fail.h"

/* Rows per chunk; the row buffer of each table holds one chunk, so each
 * block write fills whole chunks while a run is steady. */
#define CHUNK_ROWS 256

/* ---- schema v1 ---------------------------------------------------------- */

typedef enum {
    COL_INT32,
    COL_INT64,
    COL_FLOAT64,
    COL_NAME, /* OB_H5LOG_NAME_MAX-byte null-padded identifier */
    COL_TEXT  /* variable-length string */
} column_kind;

typedef struct {
    const char *name;
    column_kind kind;
} column_spec;

static const column_spec TRAIN_COLUMNS[] = {
    {"step", COL_INT64},     {"epoch", COL_FLOAT64}, {"samples", COL_INT64},
    {"train_s", COL_FLOAT64}, {"loss", COL_FLOAT64},  {"lr", COL_FLOAT64},
    {"loss_scale", COL_FLOAT64}, {"grad_norm", COL_FLOAT64},
};
/* Secondary metric columns (float64) follow these. */
static const column_spec EVAL_COLUMNS[] = {
    {"step", COL_INT64},     {"epoch", COL_FLOAT64},  {"train_s", COL_FLOAT64},
    {"eval_s", COL_FLOAT64}, {"metric", COL_FLOAT64}, {"loss", COL_FLOAT64},
};
static const column_spec MEMORY_COLUMNS[] = {
    {"rank", COL_INT32}, {"category", COL_NAME}, {"peak_bytes", COL_INT64},
};
static const column_spec TIMING_COLUMNS[] = {
    {"rank", COL_INT32}, {"phase", COL_NAME}, {"seconds", COL_FLOAT64}, {"calls", COL_INT64},
};
static const column_spec COMM_COLUMNS[] = {
    {"rank", COL_INT32},  {"op", COL_NAME},    {"category", COL_NAME},
    {"bytes", COL_INT64}, {"calls", COL_INT64}, {"seconds", COL_FLOAT64},
};
static const column_spec EVENTS_COLUMNS[] = {
    {"time_ms", COL_FLOAT64}, {"key", COL_NAME}, {"value", COL_TEXT},
};
static const column_spec PRECISION_COLUMNS[] = {
    {"step", COL_INT64},   {"layer", COL_NAME},           {"loss_scale", COL_FLOAT64},
    {"values", COL_INT64}, {"underflow_frac", COL_FLOAT64}, {"overflow_frac", COL_FLOAT64},
};

enum { TABLE_TRAIN, TABLE_EVAL, TABLE_MEMORY, TABLE_TIMING, TABLE_COMM, TABLE_EVENTS, TABLE_PRECISION, N_TABLES };

typedef struct {
    const char *path;
    const column_spec *columns;
    int n_columns;
    /* Added to schema v1 after its first files (issue #4): every new file
     * has it, the validator accepts files written before it existed. */
    bool optional;
} table_spec;

#define TABLE_SPEC(path, columns) {path, columns, (int)(sizeof(columns) / sizeof((columns)[0])), false}
static const table_spec TABLES[N_TABLES] = {
    TABLE_SPEC("/train", TRAIN_COLUMNS),   TABLE_SPEC("/eval", EVAL_COLUMNS),
    TABLE_SPEC("/memory", MEMORY_COLUMNS), TABLE_SPEC("/timing", TIMING_COLUMNS),
    TABLE_SPEC("/comm", COMM_COLUMNS),     TABLE_SPEC("/events", EVENTS_COLUMNS),
    {"/precision", PRECISION_COLUMNS, (int)(sizeof PRECISION_COLUMNS / sizeof PRECISION_COLUMNS[0]), true},
};

/* Root attributes with the HDF5 class each must have, in section 6's order. */
static const struct {
    const char *name;
    H5T_class_t type_class;
} ROOT_ATTRIBUTES[] = {
    {"schema_version", H5T_INTEGER},   {"optbench_version", H5T_STRING}, {"git_commit", H5T_STRING},
    {"created_utc", H5T_STRING},       {"hostname", H5T_STRING},         {"cpu_model", H5T_STRING},
    {"gpu_model", H5T_STRING},         {"world_size", H5T_INTEGER},      {"threads", H5T_INTEGER},
    {"workload", H5T_STRING},          {"preset", H5T_STRING},           {"optimizer", H5T_STRING},
    {"precond", H5T_STRING},           {"precision", H5T_STRING},        {"loss_scale", H5T_STRING},
    {"seed", H5T_INTEGER},             {"global_batch_size", H5T_INTEGER}, {"config", H5T_STRING},
    {"target_metric", H5T_STRING},     {"target_value", H5T_FLOAT},      {"target_direction", H5T_STRING},
    {"status", H5T_STRING},            {"time_to_target_s", H5T_FLOAT},  {"steps_to_target", H5T_INTEGER},
    {"epochs_to_target", H5T_FLOAT},   {"params", H5T_INTEGER},
};
#define N_ROOT_ATTRIBUTES ((int)(sizeof(ROOT_ATTRIBUTES) / sizeof(ROOT_ATTRIBUTES[0])))

/* ---- the open log ------------------------------------------------------- */

typedef struct {
    hid_t dataset;
    hid_t row_type; /* packed compound: the buffer's layout and the file's */
    int n_columns;
    column_kind *kinds;
    size_t *offsets;
    size_t row_size;
    int64_t rows_in_file;
    unsigned char *pending; /* up to CHUNK_ROWS rows not yet written */
    int n_pending;
} table_log;

/* One value of a row, tagged by its column's kind. */
typedef union {
    int64_t i;
    double f;
    const char *s;
} cell;

struct ob_h5log {
    hid_t file;
    char *path;
    table_log tables[N_TABLES];
    cell *eval_cells; /* one /eval row: its width depends on the secondaries */
    char error[256];
};


#define LOG_FAIL(log, ...) ob_fail((log)->error, sizeof((log)->error), __VA_ARGS__)

/* Our callers get one line per failure, never HDF5's stack dump on stderr. */
static void silence_hdf5_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* ---- types -------------------------------------------------------------- */


static size_t column_size(column_kind kind) {
    switch (kind) {
    case COL_INT32: return sizeof(int32_t);
    case COL_INT64: return sizeof(int64_t);
    case COL_FLOAT64: return sizeof(double);
    case COL_NAME: return OB_H5LOG_NAME_MAX;
    case COL_TEXT: return sizeof(char *);
    }
    return 0;
}

/* A new type id the caller closes. */
static hid_t column_type(column_kind kind) {
    switch (kind) {
    case COL_INT32: return H5Tcopy(H5T_NATIVE_INT32);
    case COL_INT64: return H5Tcopy(H5T_NATIVE_INT64);
    case COL_FLOAT64: return H5Tcopy(H5T_NATIVE_DOUBLE);
    case COL_NAME: return ob_h5_string_type(OB_H5LOG_NAME_MAX);
    case COL_TEXT: return ob_h5_string_type(H5T_VARIABLE);
    }
    return H5I_INVALID_HID;
}

static H5T_class_t column_class(column_kind kind) {
    switch (kind) {
    case COL_INT32:
    case COL_INT64: return H5T_INTEGER;
    case COL_FLOAT64: return H5T_FLOAT;
    case COL_NAME:
    case COL_TEXT: return H5T_STRING;
    }
    return H5T_NO_CLASS;
}

static const char *class_description(H5T_class_t type_class) {
    switch (type_class) {
    case H5T_INTEGER: return "an integer";
    case H5T_FLOAT: return "a float";
    case H5T_STRING: return "a string";
    default: return "another type";
    }
}

static hid_t compound_type(size_t row_size, int n_columns, const char *const *names,
                           const column_kind *kinds, const size_t *offsets) {
    hid_t row_type = H5Tcreate(H5T_COMPOUND, row_size);
    for (int c = 0; c < n_columns && row_type >= 0; c++) {
        hid_t member = column_type(kinds[c]);
        herr_t inserted = H5Tinsert(row_type, names[c], offsets[c], member);
        H5Tclose(member);
        if (inserted < 0) {
            H5Tclose(row_type);
            row_type = H5I_INVALID_HID;
        }
    }
    return row_type;
}

/* Lays out a table's row: its spec's columns, then n_extra float64 columns. */
static int describe_table(table_log *table, const table_spec *spec, int n_extra,
                          const char *const *extra_names) {
    int n_columns = spec->n_columns + n_extra;
    const char **names = malloc((size_t)n_columns * sizeof(*names));
    table->kinds = malloc((size_t)n_columns * sizeof(*table->kinds));
    table->offsets = malloc((size_t)n_columns * sizeof(*table->offsets));
    if (!names || !table->kinds || !table->offsets) {
        free(names);
        return -1;
    }
    table->n_columns = n_columns;
    table->row_size = 0;
    for (int c = 0; c < n_columns; c++) {
        bool fixed = c < spec->n_columns;
        names[c] = fixed ? spec->columns[c].name : extra_names[c - spec->n_columns];
        table->kinds[c] = fixed ? spec->columns[c].kind : COL_FLOAT64;
        table->offsets[c] = table->row_size;
        table->row_size += column_size(table->kinds[c]);
    }
    table->row_type = compound_type(table->row_size, n_columns, names, table->kinds, table->offsets);
    free(names);
    table->pending = malloc(CHUNK_ROWS * table->row_size);
    return table->row_type >= 0 && table->pending ? 0 : -1;
}

/* ---- attributes --------------------------------------------------------- */


/* What a run says until it reaches its target (or ends otherwise). */
static int write_running_outcome(hid_t file) {
    const double not_reached = NAN;
    const int64_t no_step = -1;
    if (ob_h5_write_string_attribute(file, "status", "running") < 0) return -1;
    if (ob_h5_write_attribute(file, "time_to_target_s", H5T_NATIVE_DOUBLE, &not_reached) < 0) return -1;
    if (ob_h5_write_attribute(file, "epochs_to_target", H5T_NATIVE_DOUBLE, &not_reached) < 0) return -1;
    return ob_h5_write_attribute(file, "steps_to_target", H5T_NATIVE_INT64, &no_step);
}

static int open_scalar_attribute(hid_t file, const char *path, const char *name, hid_t *attribute,
                                 char *err, size_t err_len) {
    if (H5Aexists(file, name) <= 0) return ob_fail(err, err_len, "%s: missing root attribute %s", path, name);
    *attribute = H5Aopen(file, name, H5P_DEFAULT);
    if (*attribute < 0) return ob_fail(err, err_len, "%s: cannot open root attribute %s", path, name);
    hid_t space = H5Aget_space(*attribute);
    hssize_t n_values = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    if (n_values == 1) return 0;
    H5Aclose(*attribute);
    return ob_fail(err, err_len, "%s: root attribute %s should be a single value", path, name);
}

static H5T_class_t attribute_class(hid_t attribute) {
    hid_t type = H5Aget_type(attribute);
    H5T_class_t type_class = H5Tget_class(type);
    H5Tclose(type);
    return type_class;
}

static int read_number_attribute(hid_t file, const char *path, const char *name, double *value,
                                 char *err, size_t err_len) {
    hid_t attribute;
    if (open_scalar_attribute(file, path, name, &attribute, err, err_len)) return 2;
    H5T_class_t type_class = attribute_class(attribute);
    bool numeric = type_class == H5T_INTEGER || type_class == H5T_FLOAT;
    herr_t read = numeric ? H5Aread(attribute, H5T_NATIVE_DOUBLE, value) : -1;
    H5Aclose(attribute);
    if (!numeric) return ob_fail(err, err_len, "%s: root attribute %s is not a number", path, name);
    if (read < 0) return ob_fail(err, err_len, "%s: cannot read root attribute %s", path, name);
    return 0;
}

static char *read_fixed_string(hid_t attribute, hid_t type) {
    char *text = calloc(H5Tget_size(type) + 1, 1); /* + 1: null-padded strings may fill it */
    if (text && H5Aread(attribute, type, text) < 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* Files written by other tools (h5py's default) may hold variable-length strings. */
static char *read_variable_string(hid_t attribute, hid_t type) {
    char *hdf5_text = NULL;
    if (H5Aread(attribute, type, &hdf5_text) < 0) return NULL;
    char *text = strdup(hdf5_text ? hdf5_text : "");
    H5free_memory(hdf5_text);
    return text;
}

static int read_string_attribute(hid_t file, const char *path, const char *name, char **value,
                                 char *err, size_t err_len) {
    hid_t attribute;
    if (open_scalar_attribute(file, path, name, &attribute, err, err_len)) return 2;
    hid_t type = H5Aget_type(attribute);
    bool is_string = H5Tget_class(type) == H5T_STRING;
    if (is_string)
        *value = H5Tis_variable_str(type) > 0 ? read_variable_string(attribute, type)
                                                : read_fixed_string(attribute, type);
    H5Tclose(type);
    H5Aclose(attribute);
    if (!is_string) return ob_fail(err, err_len, "%s: root attribute %s is not a string", path, name);
    if (!*value) return ob_fail(err, err_len, "%s: cannot read root attribute %s", path, name);
    return 0;
}

/* ---- files -------------------------------------------------------------- */

/* open(2) claims the path so the message can give the system's reason
 * (missing directory, permission) and O_EXCL refuses an existing file. */
static int claim_output_path(const char *path, bool force, char *err, size_t err_len) {
    int fd = open(path, O_WRONLY | O_CREAT | (force ? O_TRUNC : O_EXCL), 0666);
    if (fd >= 0) return close(fd) == 0 ? 0 : ob_fail(err, err_len, "cannot create output %s: %s", path,
                                                  strerror(errno));
    if (errno == EEXIST) return ob_fail(err, err_len, "output %s exists (use --force to overwrite)", path);
    return ob_fail(err, err_len, "cannot create output %s: %s", path, strerror(errno));
}

/* The 1.8 object-header format stores large attributes (the config text may
 * exceed the 64 KiB the oldest format allows) and is read by any HDF5 >= 1.8. */
static hid_t create_hdf5_file(const char *path) {
    hid_t access = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(access, H5F_LIBVER_V18, H5F_LIBVER_V18);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, access);
    H5Pclose(access);
    return file;
}

/* fopen first, so a missing or unreadable file is told apart from a corrupt one. */
static hid_t open_run_file(const char *path, unsigned flags, char *err, size_t err_len) {
    silence_hdf5_errors();
    FILE *probe = fopen(path, flags == H5F_ACC_RDWR ? "r+b" : "rb");
    if (!probe) {
        ob_fail(err, err_len, "cannot open run file %s: %s", path, strerror(errno));
        return H5I_INVALID_HID;
    }
    fclose(probe);
    if (H5Fis_hdf5(path) <= 0) {
        ob_fail(err, err_len, "%s is not an HDF5 file", path);
        return H5I_INVALID_HID;
    }
    hid_t file = H5Fopen(path, flags, H5P_DEFAULT);
    if (file < 0) ob_fail(err, err_len, "cannot open run file %s: HDF5 cannot read it (corrupt?)", path);
    return file;
}

/* ---- tables ------------------------------------------------------------- */

static hid_t create_table_dataset(hid_t file, const char *table_path, hid_t row_type) {
    hsize_t no_rows = 0, unlimited = H5S_UNLIMITED, chunk_rows = CHUNK_ROWS;
    hid_t space = H5Screate_simple(1, &no_rows, &unlimited);
    hid_t properties = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(properties, 1, &chunk_rows);
    hid_t dataset = H5Dcreate2(file, table_path, row_type, space, H5P_DEFAULT, properties, H5P_DEFAULT);
    H5Pclose(properties);
    H5Sclose(space);
    return dataset;
}

static int64_t dataset_rows(hid_t dataset) {
    hid_t space = H5Dget_space(dataset);
    hssize_t rows = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    return rows;
}

static int open_tables(ob_h5log *log, bool create, int n_secondary, const char *const *secondary_names) {
    for (int id = 0; id < N_TABLES; id++) {
        table_log *table = &log->tables[id];
        const table_spec *spec = &TABLES[id];
        int n_extra = id == TABLE_EVAL ? n_secondary : 0;
        if (describe_table(table, spec, n_extra, secondary_names) < 0)
            return LOG_FAIL(log, "cannot lay out table %s (out of memory?)", spec->path);
        table->dataset = create ? create_table_dataset(log->file, spec->path, table->row_type)
                                : H5Dopen2(log->file, spec->path, H5P_DEFAULT);
        if (table->dataset < 0)
            return LOG_FAIL(log, "cannot %s table %s in %s", create ? "create" : "open", spec->path,
                            log->path);
        table->rows_in_file = create ? 0 : dataset_rows(table->dataset);
    }
    log->eval_cells = calloc((size_t)log->tables[TABLE_EVAL].n_columns, sizeof(cell));
    return log->eval_cells ? 0 : LOG_FAIL(log, "out of memory opening %s", log->path);
}

static void free_row_texts(const table_log *table, unsigned char *row) {
    for (int c = 0; c < table->n_columns; c++) {
        if (table->kinds[c] != COL_TEXT) continue;
        char *text;
        memcpy(&text, row + table->offsets[c], sizeof(text));
        free(text);
    }
}

static void drop_pending_rows(table_log *table) {
    for (int r = 0; r < table->n_pending; r++)
        free_row_texts(table, table->pending + (size_t)r * table->row_size);
    table->n_pending = 0;
}

static herr_t write_rows(hid_t dataset, hid_t row_type, hsize_t first_row, hsize_t n_rows, const void *rows) {
    hsize_t new_size = first_row + n_rows;
    if (H5Dset_extent(dataset, &new_size) < 0) return -1;
    hid_t file_space = H5Dget_space(dataset);
    hid_t memory_space = H5Screate_simple(1, &n_rows, NULL);
    herr_t status = -1;
    if (file_space >= 0 && memory_space >= 0 &&
        H5Sselect_hyperslab(file_space, H5S_SELECT_SET, &first_row, NULL, &n_rows, NULL) >= 0)
        status = H5Dwrite(dataset, row_type, memory_space, file_space, H5P_DEFAULT, rows);
    if (file_space >= 0) H5Sclose(file_space);
    if (memory_space >= 0) H5Sclose(memory_space);
    return status;
}

/* On failure the rows stay buffered, so a later flush can retry them. */
static int write_pending_rows(ob_h5log *log, int table_id) {
    table_log *table = &log->tables[table_id];
    if (table->n_pending == 0) return 0;
    if (write_rows(table->dataset, table->row_type, (hsize_t)table->rows_in_file, (hsize_t)table->n_pending,
                   table->pending) < 0)
        return LOG_FAIL(log, "cannot write %d rows to %s in %s", table->n_pending, TABLES[table_id].path,
                        log->path);
    table->rows_in_file += table->n_pending;
    drop_pending_rows(table);
    return 0;
}

static int check_name_lengths(ob_h5log *log, int table_id, const cell *cells) {
    const table_log *table = &log->tables[table_id];
    for (int c = 0; c < table->n_columns; c++) {
        if (table->kinds[c] != COL_NAME || !cells[c].s || strlen(cells[c].s) <= OB_H5LOG_NAME_MAX) continue;
        return LOG_FAIL(log, "%s %s \"%s\" is longer than %d bytes", TABLES[table_id].path,
                        TABLES[table_id].columns[c].name, cells[c].s, OB_H5LOG_NAME_MAX);
    }
    return 0;
}

/* field is zeroed, which null-pads names. Fails only when out of memory. */
static int pack_cell(unsigned char *field, column_kind kind, cell value) {
    switch (kind) {
    case COL_INT32: {
        int32_t narrow = (int32_t)value.i;
        memcpy(field, &narrow, sizeof(narrow));
        return 0;
    }
    case COL_INT64: memcpy(field, &value.i, sizeof(value.i)); return 0;
    case COL_FLOAT64: memcpy(field, &value.f, sizeof(value.f)); return 0;
    case COL_NAME:
        if (value.s) memcpy(field, value.s, strlen(value.s));
        return 0;
    case COL_TEXT: {
        char *copy = strdup(value.s ? value.s : ""); /* the caller's string need not outlive the buffer */
        memcpy(field, &copy, sizeof(copy));
        return copy ? 0 : -1;
    }
    }
    return -1;
}

/* The one append behind every table: cells hold the row's values in column order. */
static int append_row(ob_h5log *log, int table_id, const cell *cells) {
    table_log *table = &log->tables[table_id];
    if (check_name_lengths(log, table_id, cells)) return 2;
    if (table->n_pending == CHUNK_ROWS && write_pending_rows(log, table_id)) return 2;
    unsigned char *row = table->pending + (size_t)table->n_pending * table->row_size;
    memset(row, 0, table->row_size);
    for (int c = 0; c < table->n_columns; c++) {
        if (pack_cell(row + table->offsets[c], table->kinds[c], cells[c]) == 0) continue;
        free_row_texts(table, row);
        return LOG_FAIL(log, "out of memory logging a row of %s", TABLES[table_id].path);
    }
    table->n_pending++;
    return 0;
}

static int rewind_table(ob_h5log *log, int table_id, int64_t rows) {
    table_log *table = &log->tables[table_id];
    if (rows < 0 || rows > table->rows_in_file)
        return LOG_FAIL(log, "%s holds %lld rows of %s, the checkpoint expects %lld", log->path,
                        (long long)table->rows_in_file, TABLES[table_id].path, (long long)rows);
    hsize_t size = (hsize_t)rows;
    if (H5Dset_extent(table->dataset, &size) < 0)
        return LOG_FAIL(log, "cannot truncate %s in %s", TABLES[table_id].path, log->path);
    table->rows_in_file = rows;
    return 0;
}

/* ---- opening and closing ------------------------------------------------ */

static ob_h5log *new_log(const char *path) {
    ob_h5log *log = calloc(1, sizeof(*log));
    if (!log) return NULL;
    log->file = H5I_INVALID_HID;
    for (int id = 0; id < N_TABLES; id++) {
        log->tables[id].dataset = H5I_INVALID_HID;
        log->tables[id].row_type = H5I_INVALID_HID;
    }
    log->path = strdup(path);
    if (log->path) return log;
    free(log);
    return NULL;
}

/* Drops unwritten rows: callers flush first when they want them. */
static void release_log(ob_h5log *log) {
    for (int id = 0; id < N_TABLES; id++) {
        table_log *table = &log->tables[id];
        if (table->pending) drop_pending_rows(table);
        if (table->dataset >= 0) H5Dclose(table->dataset);
        if (table->row_type >= 0) H5Tclose(table->row_type);
        free(table->pending);
        free(table->kinds);
        free(table->offsets);
    }
    if (log->file >= 0) H5Fclose(log->file);
    free(log->eval_cells);
    free(log->path);
    free(log);
}

/* Hands log to *out, or its error to err and releases it. */
static int finish_open(ob_h5log *log, int status, ob_h5log **out, char *err, size_t err_len) {
    if (status == 0) {
        *out = log;
        return 0;
    }
    ob_fail(err, err_len, "%s", log->error);
    release_log(log);
    return 2;
}

static int check_secondary_names(int n_secondary, const char *const *names, char *err, size_t err_len) {
    if (n_secondary < 0 || (n_secondary > 0 && !names))
        return ob_fail(err, err_len, "invalid secondary eval columns (%d names)", n_secondary);
    for (int i = 0; i < n_secondary; i++) {
        if (!names[i] || !names[i][0])
            return ob_fail(err, err_len, "secondary eval column %d has no name", i + 1);
        for (int fixed = 0; fixed < TABLES[TABLE_EVAL].n_columns; fixed++)
            if (strcmp(names[i], TABLES[TABLE_EVAL].columns[fixed].name) == 0)
                return ob_fail(err, err_len, "secondary eval column %s clashes with a fixed column", names[i]);
        for (int earlier = 0; earlier < i; earlier++)
            if (strcmp(names[i], names[earlier]) == 0)
                return ob_fail(err, err_len, "secondary eval column %s is given twice", names[i]);
    }
    return 0;
}

static int start_new_log(ob_h5log *log, int n_secondary, const char *const *secondary_names) {
    const int64_t schema_version = OB_H5LOG_SCHEMA_VERSION;
    log->file = create_hdf5_file(log->path);
    if (log->file < 0) return LOG_FAIL(log, "cannot create output %s: HDF5 cannot create it", log->path);
    if (open_tables(log, true, n_secondary, secondary_names)) return 2;
    if (ob_h5_write_attribute(log->file, "schema_version", H5T_NATIVE_INT64, &schema_version) < 0 ||
        write_running_outcome(log->file) < 0 || H5Fflush(log->file, H5F_SCOPE_LOCAL) < 0)
        return LOG_FAIL(log, "cannot write the header of %s", log->path);
    return 0;
}

int ob_h5log_create(ob_h5log **out, const char *path, bool force, int n_secondary,
                    const char *const *secondary_names, char *err, size_t err_len) {
    *out = NULL;
    silence_hdf5_errors();
    if (check_secondary_names(n_secondary, secondary_names, err, err_len)) return 2;
    if (claim_output_path(path, force, err, err_len)) return 2;
    ob_h5log *log = new_log(path);
    int status = log ? finish_open(log, start_new_log(log, n_secondary, secondary_names), out, err, err_len)
                     : ob_fail(err, err_len, "out of memory creating %s", path);
    if (status != 0) unlink(path); /* leave no half-made file behind */
    return status;
}

/* The secondary eval columns are whatever follows the fixed ones in the file. */
static int read_secondary_names(ob_h5log *log, int *n_secondary, char ***names) {
    hid_t dataset = H5Dopen2(log->file, TABLES[TABLE_EVAL].path, H5P_DEFAULT);
    hid_t type = H5Dget_type(dataset);
    int n_members = H5Tget_nmembers(type);
    *n_secondary = n_members - TABLES[TABLE_EVAL].n_columns;
    *names = calloc((size_t)(*n_secondary > 0 ? *n_secondary : 1), sizeof(char *));
    for (int i = 0; *names && i < *n_secondary; i++)
        (*names)[i] = H5Tget_member_name(type, (unsigned)(TABLES[TABLE_EVAL].n_columns + i));
    H5Tclose(type);
    H5Dclose(dataset);
    return *names ? 0 : LOG_FAIL(log, "out of memory reopening %s", log->path);
}

static int resume_log(ob_h5log *log, const ob_h5log_counts *counts) {
    int n_secondary;
    char **secondary_names;
    if (read_secondary_names(log, &n_secondary, &secondary_names)) return 2;
    int status = open_tables(log, false, n_secondary, (const char *const *)secondary_names);
    for (int i = 0; i < n_secondary; i++) H5free_memory(secondary_names[i]);
    free(secondary_names);
    if (status != 0) return status;
    /* memory, timing and comm hold end-of-run summaries: the resumed run
     * writes them anew, so a run stopped cleanly and resumed has them once. */
    if (rewind_table(log, TABLE_TRAIN, counts->train) || rewind_table(log, TABLE_EVAL, counts->eval) ||
        rewind_table(log, TABLE_EVENTS, counts->events) || rewind_table(log, TABLE_PRECISION, counts->precision) || rewind_table(log, TABLE_MEMORY, 0) ||
        rewind_table(log, TABLE_TIMING, 0) || rewind_table(log, TABLE_COMM, 0))
        return 2;
    if (write_running_outcome(log->file) < 0 || H5Fflush(log->file, H5F_SCOPE_LOCAL) < 0)
        return LOG_FAIL(log, "cannot reset the status of %s", log->path);
    return 0;
}

int ob_h5log_reopen(ob_h5log **out, const char *path, const ob_h5log_counts *counts, char *err,
                    size_t err_len) {
    *out = NULL;
    if (ob_h5log_validate(path, err, err_len)) return 2;
    ob_h5log *log = new_log(path);
    if (!log) return ob_fail(err, err_len, "out of memory reopening %s", path);
    log->file = open_run_file(path, H5F_ACC_RDWR, log->error, sizeof(log->error));
    int status = log->file < 0 ? 2 : resume_log(log, counts);
    return finish_open(log, status, out, err, err_len);
}

ob_h5log_counts ob_h5log_get_counts(const ob_h5log *log) {
    const table_log *tables = log->tables;
    ob_h5log_counts counts = {
        tables[TABLE_TRAIN].rows_in_file + tables[TABLE_TRAIN].n_pending,
        tables[TABLE_EVAL].rows_in_file + tables[TABLE_EVAL].n_pending,
        tables[TABLE_EVENTS].rows_in_file + tables[TABLE_EVENTS].n_pending,
        tables[TABLE_PRECISION].rows_in_file + tables[TABLE_PRECISION].n_pending,
    };
    return counts;
}

const char *ob_h5log_error(const ob_h5log *log) { return log ? log->error : ""; }

int ob_h5log_flush(ob_h5log *log) {
    int status = 0;
    for (int id = 0; id < N_TABLES; id++)
        if (write_pending_rows(log, id)) status = 2;
    if (H5Fflush(log->file, H5F_SCOPE_LOCAL) < 0) status = LOG_FAIL(log, "cannot flush %s", log->path);
    return status;
}

int ob_h5log_close(ob_h5log *log) {
    if (!log) return 0;
    int status = ob_h5log_flush(log);
    release_log(log);
    return status;
}

/* ---- writing ------------------------------------------------------------ */

int ob_h5log_attr_str(ob_h5log *log, const char *name, const char *value) {
    if (ob_h5_write_string_attribute(log->file, name, value) == 0) return 0;
    return LOG_FAIL(log, "cannot write attribute %s to %s", name, log->path);
}

int ob_h5log_attr_int(ob_h5log *log, const char *name, int64_t value) {
    if (ob_h5_write_attribute(log->file, name, H5T_NATIVE_INT64, &value) == 0) return 0;
    return LOG_FAIL(log, "cannot write attribute %s to %s", name, log->path);
}

int ob_h5log_attr_float(ob_h5log *log, const char *name, double value) {
    if (ob_h5_write_attribute(log->file, name, H5T_NATIVE_DOUBLE, &value) == 0) return 0;
    return LOG_FAIL(log, "cannot write attribute %s to %s", name, log->path);
}

int ob_h5log_train(ob_h5log *log, const ob_train_row *row) {
    const cell cells[] = {{.i = row->step},    {.f = row->epoch}, {.i = row->samples},
                          {.f = row->train_s}, {.f = row->loss},  {.f = row->lr},
                          {.f = row->loss_scale}, {.f = row->grad_norm}};
    return append_row(log, TABLE_TRAIN, cells);
}

int ob_h5log_eval(ob_h5log *log, const ob_eval_row *row) {
    const table_log *table = &log->tables[TABLE_EVAL];
    int n_fixed = TABLES[TABLE_EVAL].n_columns;
    if (table->n_columns > n_fixed && !row->secondary)
        return LOG_FAIL(log, "eval row without its %d secondary values", table->n_columns - n_fixed);
    cell *cells = log->eval_cells;
    cells[0].i = row->step;
    cells[1].f = row->epoch;
    cells[2].f = row->train_s;
    cells[3].f = row->eval_s;
    cells[4].f = row->metric;
    cells[5].f = row->loss;
    for (int c = n_fixed; c < table->n_columns; c++) cells[c].f = row->secondary[c - n_fixed];
    return append_row(log, TABLE_EVAL, cells);
}

int ob_h5log_memory(ob_h5log *log, const ob_memory_row *row) {
    const cell cells[] = {{.i = row->rank}, {.s = row->category}, {.i = row->peak_bytes}};
    return append_row(log, TABLE_MEMORY, cells);
}

int ob_h5log_timing(ob_h5log *log, const ob_timing_row *row) {
    const cell cells[] = {{.i = row->rank}, {.s = row->phase}, {.f = row->seconds}, {.i = row->calls}};
    return append_row(log, TABLE_TIMING, cells);
}

int ob_h5log_comm(ob_h5log *log, const ob_comm_row *row) {
    const cell cells[] = {{.i = row->rank},  {.s = row->op},    {.s = row->category},
                          {.i = row->bytes}, {.i = row->calls}, {.f = row->seconds}};
    return append_row(log, TABLE_COMM, cells);
}

int ob_h5log_precision(ob_h5log *log, const ob_precision_row *row) {
    const cell cells[] = {{.i = row->step},   {.s = row->layer},          {.f = row->loss_scale},
                          {.i = row->values}, {.f = row->underflow_frac}, {.f = row->overflow_frac}};
    return append_row(log, TABLE_PRECISION, cells);
}

int ob_h5log_event(ob_h5log *log, double time_ms, const char *key, const char *value) {
    const cell cells[] = {{.f = time_ms}, {.s = key}, {.s = value}};
    return append_row(log, TABLE_EVENTS, cells);
}

/* ---- validation --------------------------------------------------------- */

static int validate_attributes(hid_t file, const char *path, char *err, size_t err_len) {
    for (int a = 0; a < N_ROOT_ATTRIBUTES; a++) {
        hid_t attribute;
        const char *name = ROOT_ATTRIBUTES[a].name;
        if (open_scalar_attribute(file, path, name, &attribute, err, err_len)) return 2;
        H5T_class_t found = attribute_class(attribute);
        H5Aclose(attribute);
        if (found != ROOT_ATTRIBUTES[a].type_class)
            return ob_fail(err, err_len, "%s: root attribute %s should be %s, found %s", path, name,
                        class_description(ROOT_ATTRIBUTES[a].type_class), class_description(found));
    }
    double version;
    if (read_number_attribute(file, path, "schema_version", &version, err, err_len)) return 2;
    if (version != OB_H5LOG_SCHEMA_VERSION)
        return ob_fail(err, err_len, "%s: schema_version is %g, this optbench reads schema %d", path, version,
                    OB_H5LOG_SCHEMA_VERSION);
    return 0;
}

/* Column `index` of a table as found in the file, against the spec; columns
 * beyond the spec are allowed only as float secondaries of /eval. */
static int check_column(hid_t type, int index, const table_spec *spec, const char *path, char *err,
                        size_t err_len) {
    char *name = H5Tget_member_name(type, (unsigned)index);
    H5T_class_t found = H5Tget_member_class(type, (unsigned)index);
    int status = 0;
    if (index >= spec->n_columns) {
        if (spec != &TABLES[TABLE_EVAL])
            status = ob_fail(err, err_len, "%s: table %s has an unexpected column %s", path, spec->path, name);
        else if (found != H5T_FLOAT)
            status = ob_fail(err, err_len, "%s: secondary column %s of /eval should be a float", path, name);
    } else {
        const column_spec *expected = &spec->columns[index];
        if (strcmp(name, expected->name) != 0 && H5Tget_member_index(type, expected->name) < 0)
            status =
                ob_fail(err, err_len, "%s: table %s is missing column %s", path, spec->path, expected->name);
        else if (strcmp(name, expected->name) != 0)
            status = ob_fail(err, err_len, "%s: table %s column %d is %s, expected %s", path, spec->path,
                          index + 1, name, expected->name);
        else if (found != column_class(expected->kind))
            status = ob_fail(err, err_len, "%s: column %s of %s should be %s, found %s", path, name, spec->path,
                          class_description(column_class(expected->kind)), class_description(found));
    }
    H5free_memory(name);
    return status;
}

static int check_columns(hid_t type, const table_spec *spec, const char *path, char *err, size_t err_len) {
    int n_members = H5Tget_nmembers(type);
    for (int c = 0; c < n_members; c++)
        if (check_column(type, c, spec, path, err, err_len)) return 2;
    if (n_members < spec->n_columns)
        return ob_fail(err, err_len, "%s: table %s is missing column %s", path, spec->path,
                    spec->columns[n_members].name);
    return 0;
}

static int validate_table(hid_t file, const table_spec *spec, const char *path, char *err, size_t err_len) {
    if (H5Lexists(file, spec->path, H5P_DEFAULT) <= 0)
        return spec->optional ? 0 : ob_fail(err, err_len, "%s: missing table %s", path, spec->path);
    hid_t dataset = H5Dopen2(file, spec->path, H5P_DEFAULT);
    if (dataset < 0) return ob_fail(err, err_len, "%s: %s is not a table", path, spec->path);
    hid_t type = H5Dget_type(dataset);
    hid_t space = H5Dget_space(dataset);
    int status;
    if (H5Sget_simple_extent_ndims(space) != 1)
        status = ob_fail(err, err_len, "%s: table %s should be one-dimensional", path, spec->path);
    else if (H5Tget_class(type) != H5T_COMPOUND)
        status = ob_fail(err, err_len, "%s: table %s should have named columns (a compound type)", path,
                      spec->path);
    else
        status = check_columns(type, spec, path, err, err_len);
    H5Sclose(space);
    H5Tclose(type);
    H5Dclose(dataset);
    return status;
}

int ob_h5log_validate(const char *path, char *err, size_t err_len) {
    hid_t file = open_run_file(path, H5F_ACC_RDONLY, err, err_len);
    if (file < 0) return 2;
    int status = validate_attributes(file, path, err, err_len);
    for (int id = 0; id < N_TABLES && status == 0; id++)
        status = validate_table(file, &TABLES[id], path, err, err_len);
    H5Fclose(file);
    return status;
}

/* ---- readers ------------------------------------------------------------ */

int ob_h5log_read_attr_str(const char *path, const char *name, char **value, char *err, size_t err_len) {
    *value = NULL;
    hid_t file = open_run_file(path, H5F_ACC_RDONLY, err, err_len);
    if (file < 0) return 2;
    int status = read_string_attribute(file, path, name, value, err, err_len);
    H5Fclose(file);
    return status;
}

int ob_h5log_read_attr_float(const char *path, const char *name, double *value, char *err, size_t err_len) {
    hid_t file = open_run_file(path, H5F_ACC_RDONLY, err, err_len);
    if (file < 0) return 2;
    int status = read_number_attribute(file, path, name, value, err, err_len);
    H5Fclose(file);
    return status;
}

/* A one-member compound memory type picks the column out by name, and HDF5
 * converts integer columns to double on the way. */
static int read_member_as_double(hid_t dataset, const char *path, const char *table, const char *column,
                                 double **values, int64_t *count, char *err, size_t err_len) {
    hid_t file_type = H5Dget_type(dataset);
    int member = H5Tget_member_index(file_type, column);
    H5T_class_t found = member < 0 ? H5T_NO_CLASS : H5Tget_member_class(file_type, (unsigned)member);
    H5Tclose(file_type);
    if (member < 0) return ob_fail(err, err_len, "%s: table %s has no column %s", path, table, column);
    if (found != H5T_INTEGER && found != H5T_FLOAT)
        return ob_fail(err, err_len, "%s: column %s of %s is not numeric", path, column, table);
    int64_t rows = dataset_rows(dataset);
    double *column_values = malloc((size_t)(rows > 0 ? rows : 1) * sizeof(double));
    if (!column_values) return ob_fail(err, err_len, "out of memory reading %s of %s", column, path);
    hid_t memory_type = H5Tcreate(H5T_COMPOUND, sizeof(double));
    H5Tinsert(memory_type, column, 0, H5T_NATIVE_DOUBLE);
    herr_t read = rows > 0 ? H5Dread(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, column_values) : 0;
    H5Tclose(memory_type);
    if (read < 0) {
        free(column_values);
        return ob_fail(err, err_len, "%s: cannot read column %s of %s", path, column, table);
    }
    *values = column_values;
    *count = rows;
    return 0;
}

int ob_h5log_read_column(const char *path, const char *table, const char *column, double **values,
                         int64_t *count, char *err, size_t err_len) {
    *values = NULL;
    *count = 0;
    hid_t file = open_run_file(path, H5F_ACC_RDONLY, err, err_len);
    if (file < 0) return 2;
    hid_t dataset = H5Lexists(file, table, H5P_DEFAULT) > 0 ? H5Dopen2(file, table, H5P_DEFAULT)
                                                            : H5I_INVALID_HID;
    int status = dataset >= 0
                     ? read_member_as_double(dataset, path, table, column, values, count, err, err_len)
                     : ob_fail(err, err_len, "%s: no table %s", path, table);
    if (dataset >= 0) H5Dclose(dataset);
    H5Fclose(file);
    return status;
}
