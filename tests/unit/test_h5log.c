/* Unit test of the HDF5 run log (harness/h5log.c, schema v1 of DESIGN.md section 6).
 *
 * Files written here also read from Python (Debian python3-h5py), e.g.:
 *   /usr/bin/python3 -c "import h5py; f = h5py.File('run.h5', 'r'); t = f['train'][:];
 *                        print(t.dtype, len(t), f.attrs['status'], f['events'][:]['value'])"
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include "harness/ob_h5log.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int n_passed, n_failed;

static void check(bool ok, const char *what, int line) {
    if (ok) {
        n_passed++;
        return;
    }
    n_failed++;
    fprintf(stderr, "FAILED line %d: %s\n", line, what);
}
#define CHECK(condition) check((condition), #condition, __LINE__)

/* A failure is status 2 and a message that names what went wrong. */
static void check_error(int status, const char *err, const char *needle, int line) {
    bool ok = status == 2 && strstr(err, needle) != NULL;
    if (!ok) fprintf(stderr, "  status %d, message \"%s\", expected 2 and \"%s\"\n", status, err, needle);
    check(ok, needle, line);
}
#define CHECK_ERROR(status, err, needle) check_error((status), (err), (needle), __LINE__)

static char dir[] = "/tmp/test_h5log.XXXXXX";

static const char *path_of(const char *name, char *path, size_t path_len) {
    snprintf(path, path_len, "%s/%s", dir, name);
    return path;
}

/* ---- a complete run --------------------------------------------------------- */

#define N_TRAIN 600 /* more than two row buffers of 256 */
#define N_EVAL 3
#define N_SECONDARY 2
static const char *const SECONDARY_NAMES[N_SECONDARY] = {"top5", "top1_ema"};
/* 32 bytes: the longest identifier the schema holds. */
static const char LONGEST_CATEGORY[] = "optimizer_state_with_32_bytes_xx";

static const char *const STRING_ATTRIBUTES[][2] = {
    {"optbench_version", "0.1.0"},      {"git_commit", "0123456789ab"},
    {"created_utc", "2024-05-01T12:00:00Z"}, {"hostname", "node17"},
    {"cpu_model", "Test CPU @ 2.0GHz"}, {"gpu_model", ""},
    {"workload", "resnet50"},           {"preset", "smoke"},
    {"optimizer", "sgd"},               {"precond", "kfac"},
    {"precision", "fp32"},              {"loss_scale", "dynamic"},
    {"target_metric", "top1"},          {"target_direction", "max"},
    {"status", "converged"},
};
static const struct {
    const char *name;
    int64_t value;
} INT_ATTRIBUTES[] = {
    {"world_size", 2}, {"threads", 4},          {"seed", 42},
    {"global_batch_size", 256}, {"steps_to_target", 550}, {"params", 1483898},
};
static const struct {
    const char *name;
    double value;
} FLOAT_ATTRIBUTES[] = {{"target_value", 0.75}, {"time_to_target_s", 123.5}, {"epochs_to_target", 5.5}};
#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* 100 KB: beyond the 64 KiB an attribute may take in HDF5's oldest format. */
static char *big_config(void) {
    size_t size = 100 * 1000;
    char *config = malloc(size + 1);
    for (size_t i = 0; i < size; i++) config[i] = i % 50 == 49 ? '\n' : (char)('a' + i % 26);
    config[size] = '\0';
    return config;
}

static void set_run_attributes(ob_h5log *log, const char *config) {
    for (size_t a = 0; a < COUNT(STRING_ATTRIBUTES); a++)
        CHECK(ob_h5log_attr_str(log, STRING_ATTRIBUTES[a][0], STRING_ATTRIBUTES[a][1]) == 0);
    for (size_t a = 0; a < COUNT(INT_ATTRIBUTES); a++)
        CHECK(ob_h5log_attr_int(log, INT_ATTRIBUTES[a].name, INT_ATTRIBUTES[a].value) == 0);
    for (size_t a = 0; a < COUNT(FLOAT_ATTRIBUTES); a++)
        CHECK(ob_h5log_attr_float(log, FLOAT_ATTRIBUTES[a].name, FLOAT_ATTRIBUTES[a].value) == 0);
    CHECK(ob_h5log_attr_str(log, "config", config) == 0);
}

static ob_train_row train_row(int64_t i) {
    ob_train_row row = {i, i / 100.0, 32 * i, 0.5 * i, 1.0 / (i + 1), 0.1, 65536.0, 0.25 * i};
    return row;
}

static void secondary_values(int64_t i, double values[N_SECONDARY]) {
    values[0] = 0.9 + 0.01 * i;
    values[1] = 0.5 + 0.02 * i;
}

static ob_eval_row eval_row(int64_t i, const double *secondary) {
    ob_eval_row row = {200 * i, 2.0 * i, 100.0 * i, 3.0 + i, 0.6 + 0.05 * i, 2.0 - 0.1 * i, secondary};
    return row;
}

static const ob_memory_row MEMORY_ROWS[] = {{0, "params", 5935592}, {1, LONGEST_CATEGORY, 11871184}};
static const ob_timing_row TIMING_ROWS[] = {{0, "forward", 12.25, 600}, {1, "grad_allreduce", 3.5, 600}};
static const ob_comm_row COMM_ROWS[] = {{0, "allreduce", "grads", 1 << 30, 600, 2.75}};
static const ob_precision_row PRECISION_ROWS[] = {{50, "layer1.0.conv1", 1024, 4096, 0.125, 0},
                                                  {50, "fc", 1, 1280, 0, 0.5}};
static const struct {
    double time_ms;
    const char *key, *value;
} EVENTS[] = {{0.0, "run_start", NULL}, {1500.5, "eval_accuracy", "{\"value\": 0.61, \"epoch\": 2}"},
              {9000.0, "run_stop", "converged"}};

static void log_all_tables(ob_h5log *log) {
    for (int64_t i = 0; i < N_TRAIN; i++) {
        ob_train_row row = train_row(i);
        CHECK(ob_h5log_train(log, &row) == 0);
    }
    for (int64_t i = 0; i < N_EVAL; i++) {
        double secondary[N_SECONDARY];
        secondary_values(i, secondary);
        ob_eval_row row = eval_row(i, secondary);
        CHECK(ob_h5log_eval(log, &row) == 0);
    }
    for (size_t i = 0; i < COUNT(MEMORY_ROWS); i++) CHECK(ob_h5log_memory(log, &MEMORY_ROWS[i]) == 0);
    for (size_t i = 0; i < COUNT(TIMING_ROWS); i++) CHECK(ob_h5log_timing(log, &TIMING_ROWS[i]) == 0);
    for (size_t i = 0; i < COUNT(COMM_ROWS); i++) CHECK(ob_h5log_comm(log, &COMM_ROWS[i]) == 0);
    for (size_t i = 0; i < COUNT(PRECISION_ROWS); i++) CHECK(ob_h5log_precision(log, &PRECISION_ROWS[i]) == 0);
    for (size_t i = 0; i < COUNT(EVENTS); i++)
        CHECK(ob_h5log_event(log, EVENTS[i].time_ms, EVENTS[i].key, EVENTS[i].value) == 0);
}

/* A closed, complete run file with every table filled. */
static void write_complete_run(const char *path) {
    char err[512] = "";
    ob_h5log *log = NULL;
    CHECK(ob_h5log_create(&log, path, false, N_SECONDARY, SECONDARY_NAMES, err, sizeof(err)) == 0);
    if (!log) return;
    char *config = big_config();
    set_run_attributes(log, config);
    free(config);
    log_all_tables(log);
    CHECK(ob_h5log_close(log) == 0);
}

/* ---- reading back ----------------------------------------------------------- */

/* A numeric column that must hold expected_count rows (NULL otherwise). */
static double *read_column(const char *path, const char *table, const char *column, int64_t expected_count) {
    char err[512] = "";
    double *values = NULL;
    int64_t count = -1;
    int status = ob_h5log_read_column(path, table, column, &values, &count, err, sizeof(err));
    if (status != 0) fprintf(stderr, "  %s\n", err);
    CHECK(status == 0 && count == expected_count);
    if (status == 0 && count == expected_count) return values;
    free(values);
    return NULL;
}

static bool column_equals(const char *path, const char *table, const char *column, const double *expected,
                          int64_t count) {
    double *values = read_column(path, table, column, count);
    bool equal = values != NULL;
    for (int64_t i = 0; equal && i < count; i++) equal = values[i] == expected[i];
    free(values);
    return equal;
}

/* All rows of a string column, read with raw HDF5 in the type the schema stores. */
static char **read_string_column(const char *path, const char *table, const char *column, int64_t *count) {
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t dataset = H5Dopen2(file, table, H5P_DEFAULT);
    hid_t file_type = H5Dget_type(dataset);
    hid_t member_type = H5Tget_member_type(file_type, (unsigned)H5Tget_member_index(file_type, column));
    bool variable = H5Tis_variable_str(member_type) > 0;
    hid_t string_type = H5Tcopy(H5T_C_S1);
    size_t cell_size = variable ? sizeof(char *) : H5Tget_size(member_type) + 1;
    H5Tset_size(string_type, variable ? H5T_VARIABLE : cell_size);
    H5Tset_cset(string_type, H5Tget_cset(member_type)); /* HDF5 converts no character set into another */
    hid_t memory_type = H5Tcreate(H5T_COMPOUND, cell_size);
    H5Tinsert(memory_type, column, 0, string_type);
    hid_t space = H5Dget_space(dataset);
    *count = H5Sget_simple_extent_npoints(space);
    char *cells = calloc((size_t)*count + 1, cell_size);
    char **strings = calloc((size_t)*count + 1, sizeof(char *));
    if (H5Dread(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, cells) < 0) *count = -1;
    for (int64_t i = 0; i < *count; i++) {
        char *variable_text;
        memcpy(&variable_text, cells + i * cell_size, sizeof(variable_text));
        strings[i] = strdup(variable ? variable_text : cells + i * cell_size);
    }
    if (variable && *count > 0) H5Dvlen_reclaim(memory_type, space, H5P_DEFAULT, cells);
    free(cells);
    H5Sclose(space);
    H5Tclose(memory_type);
    H5Tclose(string_type);
    H5Tclose(member_type);
    H5Tclose(file_type);
    H5Dclose(dataset);
    H5Fclose(file);
    return strings;
}

static void free_strings(char **strings, int64_t count) {
    for (int64_t i = 0; i < count; i++) free(strings[i]);
    free(strings);
}

static bool string_column_equals(const char *path, const char *table, const char *column,
                                 const char *const *expected, int64_t expected_count) {
    int64_t count;
    char **strings = read_string_column(path, table, column, &count);
    bool equal = count == expected_count;
    for (int64_t i = 0; equal && i < count; i++)
        equal = strcmp(strings[i], expected[i] ? expected[i] : "") == 0;
    free_strings(strings, count);
    return equal;
}

static bool string_attribute_equals(const char *path, const char *name, const char *expected) {
    char err[512] = "";
    char *value = NULL;
    bool equal =
        ob_h5log_read_attr_str(path, name, &value, err, sizeof(err)) == 0 && strcmp(value, expected) == 0;
    if (!equal) fprintf(stderr, "  attribute %s: \"%.40s\" (%s)\n", name, value ? value : "", err);
    free(value);
    return equal;
}

static bool float_attribute_equals(const char *path, const char *name, double expected) {
    char err[512] = "";
    double value = NAN;
    return ob_h5log_read_attr_float(path, name, &value, err, sizeof(err)) == 0 && value == expected;
}

/* What the schema stores: a 32-byte null-padded key and a variable-length value. */
static void check_event_string_types(const char *path) {
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t dataset = H5Dopen2(file, "/events", H5P_DEFAULT);
    hid_t row_type = H5Dget_type(dataset);
    hid_t key_type = H5Tget_member_type(row_type, 1);
    hid_t value_type = H5Tget_member_type(row_type, 2);
    CHECK(H5Tget_size(key_type) == OB_H5LOG_NAME_MAX && H5Tget_strpad(key_type) == H5T_STR_NULLPAD);
    CHECK(H5Tis_variable_str(value_type) > 0);
    H5Tclose(value_type);
    H5Tclose(key_type);
    H5Tclose(row_type);
    H5Dclose(dataset);
    H5Fclose(file);
}

static void check_attributes_read_back(const char *path) {
    for (size_t a = 0; a < COUNT(STRING_ATTRIBUTES); a++)
        CHECK(string_attribute_equals(path, STRING_ATTRIBUTES[a][0], STRING_ATTRIBUTES[a][1]));
    for (size_t a = 0; a < COUNT(INT_ATTRIBUTES); a++)
        CHECK(float_attribute_equals(path, INT_ATTRIBUTES[a].name, (double)INT_ATTRIBUTES[a].value));
    for (size_t a = 0; a < COUNT(FLOAT_ATTRIBUTES); a++)
        CHECK(float_attribute_equals(path, FLOAT_ATTRIBUTES[a].name, FLOAT_ATTRIBUTES[a].value));
    CHECK(float_attribute_equals(path, "schema_version", 1.0));
    char *config = big_config();
    CHECK(string_attribute_equals(path, "config", config));
    free(config);
}

static void check_train_read_back(const char *path) {
    double expected[8][N_TRAIN];
    for (int64_t i = 0; i < N_TRAIN; i++) {
        ob_train_row row = train_row(i);
        double fields[8] = {(double)row.step, row.epoch,      (double)row.samples,   row.train_s,
                            row.loss,         row.lr,         row.loss_scale,        row.grad_norm};
        for (int c = 0; c < 8; c++) expected[c][i] = fields[c];
    }
    static const char *const columns[8] = {"step", "epoch", "samples", "train_s",
                                           "loss", "lr",    "loss_scale", "grad_norm"};
    for (int c = 0; c < 8; c++) CHECK(column_equals(path, "/train", columns[c], expected[c], N_TRAIN));
}

static void check_eval_read_back(const char *path) {
    double expected[6 + N_SECONDARY][N_EVAL];
    for (int64_t i = 0; i < N_EVAL; i++) {
        double secondary[N_SECONDARY];
        secondary_values(i, secondary);
        ob_eval_row row = eval_row(i, secondary);
        double fields[6 + N_SECONDARY] = {(double)row.step, row.epoch, row.train_s,  row.eval_s,
                                          row.metric,       row.loss,  secondary[0], secondary[1]};
        for (int c = 0; c < 6 + N_SECONDARY; c++) expected[c][i] = fields[c];
    }
    static const char *const columns[6 + N_SECONDARY] = {"step",   "epoch", "train_s", "eval_s",
                                                         "metric", "loss",  "top5",    "top1_ema"};
    for (int c = 0; c < 6 + N_SECONDARY; c++) /* "eval": the leading slash is optional */
        CHECK(column_equals(path, "eval", columns[c], expected[c], N_EVAL));
}

static void check_small_tables_read_back(const char *path) {
    const double ranks[] = {0, 1}, peaks[] = {5935592, 11871184};
    const char *const categories[] = {"params", LONGEST_CATEGORY};
    CHECK(column_equals(path, "/memory", "rank", ranks, 2));
    CHECK(column_equals(path, "/memory", "peak_bytes", peaks, 2));
    CHECK(string_column_equals(path, "/memory", "category", categories, 2));

    const double seconds[] = {12.25, 3.5}, calls[] = {600, 600};
    const char *const phases[] = {"forward", "grad_allreduce"};
    CHECK(column_equals(path, "/timing", "rank", ranks, 2));
    CHECK(column_equals(path, "/timing", "seconds", seconds, 2));
    CHECK(column_equals(path, "/timing", "calls", calls, 2));
    CHECK(string_column_equals(path, "/timing", "phase", phases, 2));

    const double comm_bytes[] = {1 << 30}, comm_calls[] = {600}, comm_seconds[] = {2.75}, comm_rank[] = {0};
    const char *const ops[] = {"allreduce"}, *const comm_categories[] = {"grads"};
    CHECK(column_equals(path, "/comm", "rank", comm_rank, 1));
    CHECK(column_equals(path, "/comm", "bytes", comm_bytes, 1));
    CHECK(column_equals(path, "/comm", "calls", comm_calls, 1));
    CHECK(column_equals(path, "/comm", "seconds", comm_seconds, 1));
    CHECK(string_column_equals(path, "/comm", "op", ops, 1));
    CHECK(string_column_equals(path, "/comm", "category", comm_categories, 1));

    double times[COUNT(EVENTS)];
    const char *keys[COUNT(EVENTS)], *values[COUNT(EVENTS)];
    for (size_t i = 0; i < COUNT(EVENTS); i++) {
        times[i] = EVENTS[i].time_ms;
        keys[i] = EVENTS[i].key;
        values[i] = EVENTS[i].value;
    }
    CHECK(column_equals(path, "/events", "time_ms", times, COUNT(EVENTS)));
    CHECK(string_column_equals(path, "/events", "key", keys, COUNT(EVENTS)));
    CHECK(string_column_equals(path, "/events", "value", values, COUNT(EVENTS)));
    check_event_string_types(path);

    const double precision_steps[] = {50, 50}, scales[] = {1024, 1}, counted[] = {4096, 1280};
    const double underflow[] = {0.125, 0}, overflow[] = {0, 0.5};
    const char *const layers[] = {"layer1.0.conv1", "fc"};
    CHECK(column_equals(path, "/precision", "step", precision_steps, 2));
    CHECK(string_column_equals(path, "/precision", "layer", layers, 2));
    CHECK(column_equals(path, "/precision", "loss_scale", scales, 2));
    CHECK(column_equals(path, "/precision", "values", counted, 2));
    CHECK(column_equals(path, "/precision", "underflow_frac", underflow, 2));
    CHECK(column_equals(path, "/precision", "overflow_frac", overflow, 2));
}

static void check_h5dump_reads(const char *path) {
    if (system("command -v h5dump > /dev/null 2>&1") != 0) {
        printf("h5dump not found: skipping its check\n");
        return;
    }
    char command[1024];
    snprintf(command, sizeof(command), "h5dump -H '%s' > /dev/null 2>&1", path);
    CHECK(system(command) == 0);
}

/* ---- tests -------------------------------------------------------------------- */

static void test_round_trip(void) {
    char path[512], err[512] = "";
    path_of("run.h5", path, sizeof(path));
    ob_h5log *log = NULL;
    CHECK(ob_h5log_create(&log, path, false, N_SECONDARY, SECONDARY_NAMES, err, sizeof(err)) == 0);
    if (!log) return;
    CHECK(string_attribute_equals(path, "status", "running")); /* at once, before anything is logged */
    char *config = big_config();
    set_run_attributes(log, config);
    free(config);
    CHECK(ob_h5log_attr_str(log, "hostname", "a-much-longer-host-name") == 0);
    CHECK(ob_h5log_attr_str(log, "hostname", "node17") == 0); /* overwritten, shorter */
    log_all_tables(log);
    ob_h5log_counts counts = ob_h5log_get_counts(log);
    CHECK(counts.train == N_TRAIN && counts.eval == N_EVAL && counts.events == (int64_t)COUNT(EVENTS));

    const char too_long[] = "a_category_name_of_thirty_three_b";
    ob_memory_row bad_row = {0, too_long, 1};
    CHECK_ERROR(ob_h5log_memory(log, &bad_row), ob_h5log_error(log), "longer than 32 bytes");
    ob_eval_row no_secondary = eval_row(9, NULL);
    CHECK_ERROR(ob_h5log_eval(log, &no_secondary), ob_h5log_error(log), "secondary");
    counts = ob_h5log_get_counts(log);
    CHECK(counts.eval == N_EVAL);
    CHECK(ob_h5log_close(log) == 0);

    CHECK(ob_h5log_validate(path, err, sizeof(err)) == 0);
    check_attributes_read_back(path);
    check_train_read_back(path);
    check_eval_read_back(path);
    check_small_tables_read_back(path);
    double *values = NULL;
    int64_t count = 0;
    CHECK_ERROR(ob_h5log_read_column(path, "/train", "nope", &values, &count, err, sizeof(err)), err,
                "no column nope");
    CHECK_ERROR(ob_h5log_read_column(path, "/events", "key", &values, &count, err, sizeof(err)), err,
                "not numeric");
    CHECK(values == NULL);
    check_h5dump_reads(path);
}

static void test_existing_output(void) {
    char path[512], err[512] = "";
    path_of("existing.h5", path, sizeof(path));
    write_complete_run(path);

    ob_h5log *log = NULL;
    char expected[600];
    snprintf(expected, sizeof(expected), "output %s exists (use --force to overwrite)", path);
    CHECK_ERROR(ob_h5log_create(&log, path, false, 0, NULL, err, sizeof(err)), err, expected);
    CHECK(log == NULL);
    CHECK(ob_h5log_validate(path, err, sizeof(err)) == 0); /* left untouched */

    CHECK(ob_h5log_create(&log, path, true, 0, NULL, err, sizeof(err)) == 0);
    CHECK(ob_h5log_close(log) == 0);
    CHECK(string_attribute_equals(path, "status", "running"));
    double *steps = NULL;
    int64_t n_steps = -1;
    CHECK(ob_h5log_read_column(path, "/train", "step", &steps, &n_steps, err, sizeof(err)) == 0);
    CHECK(n_steps == 0); /* the old rows are gone */
    free(steps);
}

static void test_unwritable_output(void) {
    char path[512], err[512] = "";
    path_of("no/such/dir/run.h5", path, sizeof(path));
    ob_h5log *log = NULL;
    CHECK_ERROR(ob_h5log_create(&log, path, true, 0, NULL, err, sizeof(err)), err, "cannot create output");
    CHECK(strstr(err, path) != NULL && strstr(err, "No such file or directory") != NULL);
    CHECK(log == NULL);
    const char *const clashing[] = {"metric"};
    path_of("clash.h5", path, sizeof(path));
    CHECK_ERROR(ob_h5log_create(&log, path, false, 1, clashing, err, sizeof(err)), err, "clashes");
    CHECK(access(path, F_OK) != 0); /* refused before any file is made */
}

static void test_reopen(void) {
    char path[512], err[512] = "";
    path_of("resumed.h5", path, sizeof(path));
    write_complete_run(path);
    /* The "checkpoint": counts short of what the file holds. */
    const ob_h5log_counts checkpoint = {300, 2, 1, 1};
    ob_h5log *log = NULL;
    CHECK(ob_h5log_reopen(&log, path, &checkpoint, err, sizeof(err)) == 0);
    if (!log) return;
    ob_h5log_counts counts = ob_h5log_get_counts(log);
    CHECK(counts.train == 300 && counts.eval == 2 && counts.events == 1 && counts.precision == 1);
    for (int64_t i = 300; i < 350; i++) {
        ob_train_row row = train_row(i);
        CHECK(ob_h5log_train(log, &row) == 0);
    }
    CHECK(ob_h5log_flush(log) == 0);
    CHECK(ob_h5log_get_counts(log).train == 350);
    CHECK(ob_h5log_close(log) == 0);

    CHECK(ob_h5log_validate(path, err, sizeof(err)) == 0);
    CHECK(string_attribute_equals(path, "status", "running"));
    CHECK(string_attribute_equals(path, "hostname", "node17"));
    double epochs_to_target = 0, steps_to_target = 0;
    CHECK(ob_h5log_read_attr_float(path, "epochs_to_target", &epochs_to_target, err, sizeof(err)) == 0);
    CHECK(isnan(epochs_to_target)); /* the outcome is "not reached" again */
    CHECK(ob_h5log_read_attr_float(path, "steps_to_target", &steps_to_target, err, sizeof(err)) == 0);
    CHECK(steps_to_target == -1);
    double steps[350];
    for (int i = 0; i < 350; i++) steps[i] = i;
    CHECK(column_equals(path, "/train", "step", steps, 350));
    double *top5 = read_column(path, "/eval", "top5", 2);
    CHECK(top5 != NULL);
    free(top5);
    const double first_scale[] = {1024};
    CHECK(column_equals(path, "/precision", "loss_scale", first_scale, 1));

    const ob_h5log_counts beyond = {1000, 0, 0, 0};
    CHECK_ERROR(ob_h5log_reopen(&log, path, &beyond, err, sizeof(err)), err, "the checkpoint expects 1000");
    CHECK(log == NULL);
    CHECK(ob_h5log_validate(path, err, sizeof(err)) == 0); /* a refused reopen leaves it valid */
    path_of("missing.h5", path, sizeof(path));
    CHECK_ERROR(ob_h5log_reopen(&log, path, &checkpoint, err, sizeof(err)), err, "cannot open run file");
}

/* Writes a complete run, then lets `damage` change it with raw HDF5. */
static void write_damaged_run(const char *path, void (*damage)(hid_t file)) {
    write_complete_run(path);
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    damage(file);
    H5Fclose(file);
}

static void delete_hostname(hid_t file) { CHECK(H5Adelete(file, "hostname") >= 0); }

static void replace_world_size_by_string(hid_t file) {
    CHECK(H5Adelete(file, "world_size") >= 0);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, 2);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attribute = H5Acreate2(file, "world_size", type, space, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(H5Awrite(attribute, type, "8") >= 0);
    H5Aclose(attribute);
    H5Sclose(space);
    H5Tclose(type);
}

static void set_schema_version_2(hid_t file) {
    hid_t attribute = H5Aopen(file, "schema_version", H5P_DEFAULT);
    const int64_t version = 2;
    CHECK(H5Awrite(attribute, H5T_NATIVE_INT64, &version) >= 0);
    H5Aclose(attribute);
}

/* Replaces table `path` by an empty one with these columns. */
static void replace_table(hid_t file, const char *path, int n_columns, const char *const *names,
                          const hid_t *types) {
    CHECK(H5Ldelete(file, path, H5P_DEFAULT) >= 0);
    size_t row_size = 0;
    for (int c = 0; c < n_columns; c++) row_size += H5Tget_size(types[c]);
    hid_t row_type = H5Tcreate(H5T_COMPOUND, row_size);
    size_t offset = 0;
    for (int c = 0; c < n_columns; c++) {
        H5Tinsert(row_type, names[c], offset, types[c]);
        offset += H5Tget_size(types[c]);
    }
    hsize_t no_rows = 0, unlimited = H5S_UNLIMITED, chunk = 16;
    hid_t space = H5Screate_simple(1, &no_rows, &unlimited);
    hid_t properties = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(properties, 1, &chunk);
    hid_t dataset = H5Dcreate2(file, path, row_type, space, H5P_DEFAULT, properties, H5P_DEFAULT);
    CHECK(dataset >= 0);
    H5Dclose(dataset);
    H5Pclose(properties);
    H5Sclose(space);
    H5Tclose(row_type);
}

static hid_t name_type(void) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, OB_H5LOG_NAME_MAX);
    return type;
}

static void drop_comm_seconds(hid_t file) {
    hid_t name = name_type();
    const char *const names[] = {"rank", "op", "category", "bytes", "calls"};
    const hid_t types[] = {H5T_NATIVE_INT32, name, name, H5T_NATIVE_INT64, H5T_NATIVE_INT64};
    replace_table(file, "/comm", 5, names, types);
    H5Tclose(name);
}

static void make_peak_bytes_float(hid_t file) {
    hid_t name = name_type();
    const char *const names[] = {"rank", "category", "peak_bytes"};
    const hid_t types[] = {H5T_NATIVE_INT32, name, H5T_NATIVE_DOUBLE};
    replace_table(file, "/memory", 3, names, types);
    H5Tclose(name);
}

static void swap_timing_seconds_and_calls(hid_t file) {
    hid_t name = name_type();
    const char *const names[] = {"rank", "phase", "calls", "seconds"};
    const hid_t types[] = {H5T_NATIVE_INT32, name, H5T_NATIVE_INT64, H5T_NATIVE_DOUBLE};
    replace_table(file, "/timing", 4, names, types);
    H5Tclose(name);
}

static void add_events_column(hid_t file) {
    hid_t name = name_type(), text = H5Tcopy(H5T_C_S1);
    H5Tset_size(text, H5T_VARIABLE);
    const char *const names[] = {"time_ms", "key", "value", "rank"};
    const hid_t types[] = {H5T_NATIVE_DOUBLE, name, text, H5T_NATIVE_INT32};
    replace_table(file, "/events", 4, names, types);
    H5Tclose(text);
    H5Tclose(name);
}

static void make_eval_secondary_integer(hid_t file) {
    const char *const names[] = {"step", "epoch", "train_s", "eval_s", "metric", "loss", "top5"};
    const hid_t types[] = {H5T_NATIVE_INT64,  H5T_NATIVE_DOUBLE, H5T_NATIVE_DOUBLE, H5T_NATIVE_DOUBLE,
                           H5T_NATIVE_DOUBLE, H5T_NATIVE_DOUBLE, H5T_NATIVE_INT64};
    replace_table(file, "/eval", 7, names, types);
}

static void delete_events(hid_t file) { CHECK(H5Ldelete(file, "/events", H5P_DEFAULT) >= 0); }
static void delete_precision(hid_t file) { CHECK(H5Ldelete(file, "/precision", H5P_DEFAULT) >= 0); }

/* /precision joined schema v1 later: files written before it still validate. */
static void test_precision_table_optional(void) {
    char path[512], err[512] = "";
    write_damaged_run(path_of("no_precision.h5", path, sizeof(path)), delete_precision);
    CHECK(ob_h5log_validate(path, err, sizeof(err)) == 0);
}

static void test_validate_rejects(void) {
    static const struct {
        const char *file_name;
        void (*damage)(hid_t file);
        const char *message;
    } cases[] = {
        {"no_hostname.h5", delete_hostname, "missing root attribute hostname"},
        {"string_world_size.h5", replace_world_size_by_string,
         "world_size should be an integer, found a string"},
        {"schema_2.h5", set_schema_version_2, "schema_version is 2"},
        {"no_seconds.h5", drop_comm_seconds, "table /comm is missing column seconds"},
        {"no_events.h5", delete_events, "missing table /events"},
        {"float_peak.h5", make_peak_bytes_float,
         "column peak_bytes of /memory should be an integer, found a float"},
        {"swapped.h5", swap_timing_seconds_and_calls, "table /timing column 3 is calls, expected seconds"},
        {"extra.h5", add_events_column, "table /events has an unexpected column rank"},
        {"int_top5.h5", make_eval_secondary_integer, "secondary column top5 of /eval should be a float"},
    };
    char path[512], err[512];
    for (size_t i = 0; i < COUNT(cases); i++) {
        write_damaged_run(path_of(cases[i].file_name, path, sizeof(path)), cases[i].damage);
        err[0] = '\0';
        CHECK_ERROR(ob_h5log_validate(path, err, sizeof(err)), err, cases[i].message);
        ob_h5log *log = NULL;
        const ob_h5log_counts none = {0, 0, 0, 0};
        CHECK_ERROR(ob_h5log_reopen(&log, path, &none, err, sizeof(err)), err, cases[i].message);
    }

    FILE *text = fopen(path_of("not_hdf5.h5", path, sizeof(path)), "w");
    fputs("step,loss\n0,2.3\n", text);
    fclose(text);
    CHECK_ERROR(ob_h5log_validate(path, err, sizeof(err)), err, "is not an HDF5 file");
    char *status = NULL;
    CHECK_ERROR(ob_h5log_read_attr_str(path, "status", &status, err, sizeof(err)), err, "not an HDF5");
    CHECK(status == NULL);
    CHECK_ERROR(ob_h5log_validate(path_of("absent.h5", path, sizeof(path)), err, sizeof(err)), err,
                "No such file or directory");
}

int main(void) {
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_existing_output();
    test_unwritable_output();
    test_reopen();
    test_validate_rejects();
    test_precision_table_optional();

    char command[600];
    snprintf(command, sizeof(command), "rm -rf '%s'", dir);
    if (n_failed == 0 && system(command) != 0) fprintf(stderr, "could not remove %s\n", dir);
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed != 0;
}
