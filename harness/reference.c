/* Reference files (ob_reference.h): run records, naming, building, reading. */
#define _POSIX_C_SOURCE 200809L /* strdup, opendir, mkdir */

#include "harness/ob_reference.h"

#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/h5_attributes.h"
#include "harness/ob_check.h"
#include "harness/ob_fail.h"
#include "harness/ob_h5log.h"
#include "harness/ob_provenance.h"
#include "ob_version.h"

#ifndef OB_SOURCE_DIR
#error "OB_SOURCE_DIR (the source tree) must be defined: harness/CMakeLists.txt sets it"
#endif

#define ERR_LEN 1024
#define PATH_LEN 4096


/* ---- string attributes by table ----------------------------------------- */

/* A root string attribute and where its value lives in a struct. */
typedef struct {
    const char *attribute;
    size_t offset;
} string_field;

#define FIELD(type, member) {#member, offsetof(type, member)}
static const string_field IDENTITY_STRINGS[] = {
    FIELD(ob_run_identity, workload),  FIELD(ob_run_identity, preset),        FIELD(ob_run_identity, optimizer),
    FIELD(ob_run_identity, precond),   FIELD(ob_run_identity, precision),     FIELD(ob_run_identity, loss_scale),
    FIELD(ob_run_identity, target_metric), FIELD(ob_run_identity, target_direction),
};
static const string_field RECORD_STRINGS[] = {
    FIELD(ob_run_record, status),   FIELD(ob_run_record, git_commit),  FIELD(ob_run_record, hostname),
    FIELD(ob_run_record, cpu_model), FIELD(ob_run_record, created_utc),
};
static const string_field REFERENCE_STRINGS[] = {
    FIELD(ob_reference, name), FIELD(ob_reference, config), FIELD(ob_reference, created_utc),
    FIELD(ob_reference, git_commits),
};
#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))

static char **string_slot(void *base, const string_field *field) {
    return (char **)((char *)base + field->offset);
}

static int read_string_fields(const char *path, void *base, const string_field *fields, int n, char *err,
                              size_t err_len) {
    for (int i = 0; i < n; i++)
        if (ob_h5log_read_attr_str(path, fields[i].attribute, string_slot(base, &fields[i]), err, err_len))
            return 2;
    return 0;
}

static void free_string_fields(void *base, const string_field *fields, int n) {
    for (int i = 0; i < n; i++) {
        free(*string_slot(base, &fields[i]));
        *string_slot(base, &fields[i]) = NULL;
    }
}

/* Run files and references name their identity with the same attributes. */
static int read_identity(const char *path, ob_run_identity *id, char *err, size_t err_len) {
    if (read_string_fields(path, id, IDENTITY_STRINGS, COUNT(IDENTITY_STRINGS), err, err_len)) return 2;
    return ob_h5log_read_attr_float(path, "target_value", &id->target_value, err, err_len);
}

int ob_run_identity_compare(const ob_run_identity *what, const char *what_name, const ob_run_identity *ref,
                            const char *ref_name, char *err, size_t err_len) {
    for (int i = 0; i < COUNT(IDENTITY_STRINGS); i++) {
        const char *a = *string_slot((void *)what, &IDENTITY_STRINGS[i]);
        const char *b = *string_slot((void *)ref, &IDENTITY_STRINGS[i]);
        if (strcmp(a, b) != 0)
            return ob_fail(err, err_len, "%s: %s is %s but %s has %s", what_name, IDENTITY_STRINGS[i].attribute, a,
                        ref_name, b);
    }
    if (what->target_value != ref->target_value)
        return ob_fail(err, err_len, "%s: target_value is %.9g but %s has %.9g", what_name, what->target_value,
                    ref_name, ref->target_value);
    return 0;
}

/* ---- run records -------------------------------------------------------- */

static int read_int_attribute(const char *path, const char *name, int64_t *value, char *err, size_t err_len) {
    double number;
    if (ob_h5log_read_attr_float(path, name, &number, err, err_len)) return 2;
    *value = (int64_t)number;
    return 0;
}

/* The seed comes from the config text: as a double it would lose digits above 2^53. */
static int read_record_config(const char *path, ob_run_record *record, char *err, size_t err_len) {
    char *text = NULL;
    if (ob_h5log_read_attr_str(path, "config", &text, err, err_len)) return 2;
    record->config = ob_config_new();
    int rc = record->config ? ob_config_load_ini_text(record->config, text, path, err, err_len) : 1;
    free(text);
    if (!rc) record->seed = ob_config_get_int(record->config, "run.seed");
    return rc;
}

static int read_record_numbers(const char *path, ob_run_record *record, char *err, size_t err_len) {
    if (read_int_attribute(path, "threads", &record->threads, err, err_len) ||
        read_int_attribute(path, "world_size", &record->world_size, err, err_len) ||
        read_int_attribute(path, "global_batch_size", &record->global_batch_size, err, err_len) ||
        ob_h5log_read_attr_float(path, "epochs_to_target", &record->epochs_to_target, err, err_len))
        return 2;
    int64_t n_metric = 0;
    if (ob_h5log_read_column(path, "eval", "epoch", &record->eval_epoch, &record->n_eval, err, err_len) ||
        ob_h5log_read_column(path, "eval", "metric", &record->eval_metric, &n_metric, err, err_len))
        return 2;
    return 0;
}

int ob_run_record_read(const char *path, ob_run_record *out, char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    out->path = strdup(path);
    if (!out->path) return 1;
    int rc = ob_h5log_validate(path, err, err_len);
    if (!rc) rc = read_identity(path, &out->id, err, err_len);
    if (!rc) rc = read_string_fields(path, out, RECORD_STRINGS, COUNT(RECORD_STRINGS), err, err_len);
    if (!rc) rc = read_record_config(path, out, err, err_len);
    if (!rc) rc = read_record_numbers(path, out, err, err_len);
    if (!rc && strcmp(out->status, "running") == 0)
        rc = ob_fail(err, err_len, "%s: the run is not finished (status running)", path);
    if (rc) ob_run_record_free(out);
    return rc;
}

void ob_run_record_free(ob_run_record *record) {
    if (!record) return;
    free(record->path);
    free_string_fields(&record->id, IDENTITY_STRINGS, COUNT(IDENTITY_STRINGS));
    free_string_fields(record, RECORD_STRINGS, COUNT(RECORD_STRINGS));
    ob_config_free(record->config);
    free(record->eval_epoch);
    free(record->eval_metric);
    memset(record, 0, sizeof *record);
}

/* ---- configs, names, paths ---------------------------------------------- */

static const char *const FREE_KEYS[] = {
    "run.seed",          "run.out",  "run.force",           "run.threads",    "run.log_every",
    "run.checkpoint_every", "run.checkpoint_path", "run.resume", "dist.bucket_mb",
};

bool ob_reference_key_may_differ(const char *key) {
    for (int i = 0; i < COUNT(FREE_KEYS); i++)
        if (strcmp(key, FREE_KEYS[i]) == 0) return true;
    return false;
}

int ob_reference_next_config_difference(const ob_config *a, const ob_config *b, int from) {
    int count;
    const ob_config_key *keys = ob_config_keys(&count);
    for (int i = from < 0 ? 0 : from; i < count; i++)
        if (!ob_reference_key_may_differ(keys[i].key) &&
            strcmp(ob_config_get_str(a, keys[i].key), ob_config_get_str(b, keys[i].key)) != 0)
            return i;
    return -1;
}

int ob_reference_name(const ob_run_identity *id, char *out, size_t out_len) {
    bool preconditioned = strcmp(id->precond, "none") != 0;
    bool scaled = strcmp(id->loss_scale, "none") != 0;
    bool precision_named = scaled || strcmp(id->precision, "fp32") != 0;
    int n = snprintf(out, out_len, "%s%s%s%s%s%s%s", id->optimizer, preconditioned ? "+" : "",
                     preconditioned ? id->precond : "", precision_named ? "-" : "",
                     precision_named ? id->precision : "", scaled ? "-" : "", scaled ? id->loss_scale : "");
    return n < 0 || (size_t)n >= out_len ? 2 : 0;
}

const char *ob_reference_default_dir(void) {
    const char *dir = getenv("OB_REFERENCE_DIR");
    return dir && dir[0] ? dir : OB_SOURCE_DIR "/results/reference";
}

int ob_reference_path(const char *dir, const ob_run_identity *id, char *out, size_t out_len) {
    char name[256];
    if (ob_reference_name(id, name, sizeof name)) return 2;
    int n = snprintf(out, out_len, "%s/%s/%s/%s.h5", dir ? dir : ob_reference_default_dir(), id->workload,
                     id->preset, name);
    return n < 0 || (size_t)n >= out_len ? 2 : 0;
}

/* ---- writing a reference ------------------------------------------------ */


static int write_table(hid_t file, const char *name, hid_t row_type, hsize_t rows, const void *data) {
    hid_t space = H5Screate_simple(1, &rows, NULL);
    hid_t dataset = H5Dcreate2(file, name, row_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t written = dataset >= 0 ? H5Dwrite(dataset, row_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : -1;
    if (dataset >= 0) H5Dclose(dataset);
    H5Sclose(space);
    return written < 0 ? -1 : 0;
}

typedef struct {
    int64_t seed;
    double epochs_to_target;
    int64_t threads;
    const char *git_commit, *hostname, *cpu_model, *created_utc, *source;
} seed_row;

typedef struct {
    int64_t seed_index;
    double epoch, metric;
} curve_row;

static hid_t seed_row_type(void) {
    hid_t type = H5Tcreate(H5T_COMPOUND, sizeof(seed_row));
    hid_t text = ob_h5_string_type(H5T_VARIABLE);
    H5Tinsert(type, "seed", HOFFSET(seed_row, seed), H5T_NATIVE_INT64);
    H5Tinsert(type, "epochs_to_target", HOFFSET(seed_row, epochs_to_target), H5T_NATIVE_DOUBLE);
    H5Tinsert(type, "threads", HOFFSET(seed_row, threads), H5T_NATIVE_INT64);
    H5Tinsert(type, "git_commit", HOFFSET(seed_row, git_commit), text);
    H5Tinsert(type, "hostname", HOFFSET(seed_row, hostname), text);
    H5Tinsert(type, "cpu_model", HOFFSET(seed_row, cpu_model), text);
    H5Tinsert(type, "created_utc", HOFFSET(seed_row, created_utc), text);
    H5Tinsert(type, "source", HOFFSET(seed_row, source), text);
    H5Tclose(text);
    return type;
}

static hid_t curve_row_type(void) {
    hid_t type = H5Tcreate(H5T_COMPOUND, sizeof(curve_row));
    H5Tinsert(type, "seed_index", HOFFSET(curve_row, seed_index), H5T_NATIVE_INT64);
    H5Tinsert(type, "epoch", HOFFSET(curve_row, epoch), H5T_NATIVE_DOUBLE);
    H5Tinsert(type, "metric", HOFFSET(curve_row, metric), H5T_NATIVE_DOUBLE);
    return type;
}

static int write_seeds(hid_t file, const ob_run_record *runs, int n) {
    seed_row *rows = calloc((size_t)n, sizeof *rows);
    if (!rows) return -1;
    for (int i = 0; i < n; i++)
        rows[i] = (seed_row){runs[i].seed,       runs[i].epochs_to_target, runs[i].threads,
                             runs[i].git_commit, runs[i].hostname,         runs[i].cpu_model,
                             runs[i].created_utc, runs[i].path};
    hid_t type = seed_row_type();
    int rc = write_table(file, "/seeds", type, (hsize_t)n, rows);
    H5Tclose(type);
    free(rows);
    return rc;
}

static int write_curves(hid_t file, const ob_run_record *runs, int n) {
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += runs[i].n_eval;
    curve_row *rows = calloc((size_t)total, sizeof *rows);
    if (!rows) return -1;
    int64_t row = 0;
    for (int i = 0; i < n; i++)
        for (int64_t p = 0; p < runs[i].n_eval; p++)
            rows[row++] = (curve_row){i, runs[i].eval_epoch[p], runs[i].eval_metric[p]};
    hid_t type = curve_row_type();
    int rc = write_table(file, "/curves", type, (hsize_t)total, rows);
    H5Tclose(type);
    free(rows);
    return rc;
}

/* The distinct commits of the runs, in order of first appearance. */
static char *distinct_commits(const ob_run_record *runs, int n) {
    size_t size = 1;
    for (int i = 0; i < n; i++) size += strlen(runs[i].git_commit) + 1;
    char *text = calloc(size, 1);
    for (int i = 0; text && i < n; i++) {
        bool seen = false;
        for (int j = 0; j < i; j++) seen = seen || strcmp(runs[j].git_commit, runs[i].git_commit) == 0;
        if (seen) continue;
        if (text[0]) strcat(text, " ");
        strcat(text, runs[i].git_commit);
    }
    return text;
}

static char *free_keys_text(void) {
    size_t size = 1;
    for (int i = 0; i < COUNT(FREE_KEYS); i++) size += strlen(FREE_KEYS[i]) + 1;
    char *text = calloc(size, 1);
    for (int i = 0; text && i < COUNT(FREE_KEYS); i++) {
        if (i) strcat(text, " ");
        strcat(text, FREE_KEYS[i]);
    }
    return text;
}

static int write_identity(hid_t file, const ob_run_identity *id) {
    int rc = 0;
    for (int i = 0; i < COUNT(IDENTITY_STRINGS) && !rc; i++)
        rc = ob_h5_write_string_attribute(file, IDENTITY_STRINGS[i].attribute, *string_slot((void *)id, &IDENTITY_STRINGS[i]));
    return rc ? rc : ob_h5_write_attribute(file, "target_value", H5T_NATIVE_DOUBLE, &id->target_value);
}

/* What the reference says about itself: who built it, where, when and how. */
static int write_provenance(hid_t file, const ob_run_record *runs, int n, const char *command) {
    char now[64], host[256], cpu[256];
    ob_utc_now(now, sizeof now);
    ob_hostname(host, sizeof host);
    ob_cpu_model(cpu, sizeof cpu);
    char *commits = distinct_commits(runs, n), *free_keys = free_keys_text();
    char *config = ob_config_to_ini(runs[0].config);
    int rc = commits && free_keys && config ? 0 : -1;
    if (!rc)
        rc = ob_h5_write_string_attribute(file, "config", config) | ob_h5_write_string_attribute(file, "config_free_keys", free_keys) |
             ob_h5_write_string_attribute(file, "git_commits", commits) | ob_h5_write_string_attribute(file, "created_utc", now) |
             ob_h5_write_string_attribute(file, "hostname", host) | ob_h5_write_string_attribute(file, "cpu_model", cpu) |
             ob_h5_write_string_attribute(file, "optbench_version", OB_VERSION) | ob_h5_write_string_attribute(file, "git_commit", OB_GIT_COMMIT) |
             ob_h5_write_string_attribute(file, "command", command ? command : "");
    free(commits);
    free(free_keys);
    free(config);
    return rc;
}

static int write_reference_file(const char *path, const ob_run_record *runs, int n, const char *command) {
    char name[256];
    if (ob_reference_name(&runs[0].id, name, sizeof name)) return -1;
    hid_t access = H5Pcreate(H5P_FILE_ACCESS);
    /* The 1.8 object-header format holds attributes beyond 64 KiB (the config). */
    H5Pset_libver_bounds(access, H5F_LIBVER_V18, H5F_LIBVER_V18);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, access);
    H5Pclose(access);
    if (file < 0) return -1;
    int rc = ob_h5_write_int_attribute(file, "reference_schema_version", OB_REFERENCE_SCHEMA_VERSION) |
             ob_h5_write_string_attribute(file, "name", name) | write_identity(file, &runs[0].id) |
             ob_h5_write_int_attribute(file, "world_size", runs[0].world_size) |
             ob_h5_write_int_attribute(file, "global_batch_size", runs[0].global_batch_size) | ob_h5_write_int_attribute(file, "n_seeds", n) |
             write_provenance(file, runs, n, command) | write_seeds(file, runs, n) | write_curves(file, runs, n);
    return H5Fclose(file) < 0 ? -1 : rc;
}

/* ---- building ----------------------------------------------------------- */

static int check_converged(const ob_run_record *run, char *err, size_t err_len) {
    if (strcmp(run->status, "converged") != 0 || !isfinite(run->epochs_to_target))
        return ob_fail(err, err_len, "%s: status %s; a reference holds converged seeds only", run->path, run->status);
    return 0;
}

/* Epochs ascending and every value finite, so the band can interpolate. */
static int check_curve(const char *path, const double *epoch, const double *metric, int64_t n, char *err,
                       size_t err_len) {
    if (n < 1) return ob_fail(err, err_len, "%s: no eval points", path);
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(epoch[i]) || !isfinite(metric[i]))
            return ob_fail(err, err_len, "%s: eval point %lld is not finite (epoch %g, metric %g)", path,
                        (long long)i + 1, epoch[i], metric[i]);
        if (i > 0 && epoch[i] < epoch[i - 1])
            return ob_fail(err, err_len, "%s: eval epochs go backwards (%g after %g)", path, epoch[i], epoch[i - 1]);
    }
    return 0;
}

static int check_same_configuration(const ob_run_record *run, const ob_run_record *first, char *err,
                                    size_t err_len) {
    if (ob_run_identity_compare(&run->id, run->path, &first->id, first->path, err, err_len)) return 2;
    if (run->world_size != first->world_size)
        return ob_fail(err, err_len, "%s: world_size is %lld but %s has %lld", run->path, (long long)run->world_size,
                    first->path, (long long)first->world_size);
    int key = ob_reference_next_config_difference(run->config, first->config, 0);
    if (key < 0) return 0;
    const char *name = ob_config_keys(NULL)[key].key;
    char *free_keys = free_keys_text();
    ob_fail(err, err_len, "%s: %s is \"%s\" but %s has \"%s\" (the seeds of one reference may differ only in %s)",
         run->path, name, ob_config_get_str(run->config, name), first->path, ob_config_get_str(first->config, name),
         free_keys ? free_keys : "the seed");
    free(free_keys);
    return 2;
}

static int check_distinct_seeds(const ob_run_record *runs, int n, char *err, size_t err_len) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (runs[i].seed == runs[j].seed)
                return ob_fail(err, err_len, "%s and %s are both seed %lld", runs[j].path, runs[i].path,
                            (long long)runs[i].seed);
    return 0;
}

static int check_reference_runs(const ob_run_record *runs, int n, char *err, size_t err_len) {
    for (int i = 0; i < n; i++) {
        if (check_converged(&runs[i], err, err_len) ||
            check_curve(runs[i].path, runs[i].eval_epoch, runs[i].eval_metric, runs[i].n_eval, err, err_len) ||
            check_same_configuration(&runs[i], &runs[0], err, err_len))
            return 2;
    }
    return check_distinct_seeds(runs, n, err, err_len);
}

/* mkdir -p of everything before the last '/'. */
static int make_parent_directories(const char *path, char *err, size_t err_len) {
    char *copy = strdup(path);
    if (!copy) return 1;
    int rc = 0;
    for (char *p = copy + 1; *p && !rc; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(copy, 0777) != 0 && errno != EEXIST)
            rc = ob_fail(err, err_len, "cannot create directory %s: %s", copy, strerror(errno));
        *p = '/';
    }
    free(copy);
    return rc;
}

/* Written under a temporary name, then renamed: the final name only ever
 * names a complete file. */
static int publish_reference(const char *out, bool force, const ob_run_record *runs, int n, const char *command,
                             char *err, size_t err_len) {
    if (!force && access(out, F_OK) == 0)
        return ob_fail(err, err_len, "output %s exists (use --force to overwrite)", out);
    if (make_parent_directories(out, err, err_len)) return 2;
    char temporary[PATH_LEN];
    if (snprintf(temporary, sizeof temporary, "%s.tmp%ld", out, (long)getpid()) >= (int)sizeof temporary)
        return ob_fail(err, err_len, "output path too long: %s", out);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (write_reference_file(temporary, runs, n, command) != 0) {
        unlink(temporary);
        return ob_fail(err, err_len, "cannot write reference %s", out);
    }
    if (rename(temporary, out) != 0) {
        int saved = errno;
        unlink(temporary);
        return ob_fail(err, err_len, "cannot create output %s: %s", out, strerror(saved));
    }
    return 0;
}

int ob_reference_build(const char *const *run_paths, int n_runs, const ob_reference_build_options *options,
                       char *written, size_t written_len, char *err, size_t err_len) {
    if (n_runs < OB_REFERENCE_MIN_SEEDS)
        return ob_fail(err, err_len, "a reference needs at least %d seeds, got %d run%s", OB_REFERENCE_MIN_SEEDS,
                    n_runs, n_runs == 1 ? "" : "s");
    ob_run_record *runs = calloc((size_t)n_runs, sizeof *runs);
    if (!runs) return 1;
    int rc = 0;
    for (int i = 0; i < n_runs && !rc; i++) rc = ob_run_record_read(run_paths[i], &runs[i], err, err_len);
    if (!rc) rc = check_reference_runs(runs, n_runs, err, err_len);
    char out[PATH_LEN];
    if (!rc && options->out) snprintf(out, sizeof out, "%s", options->out);
    if (!rc && !options->out && ob_reference_path(options->reference_dir, &runs[0].id, out, sizeof out))
        rc = ob_fail(err, err_len, "reference path too long");
    if (!rc) rc = publish_reference(out, options->force, runs, n_runs, options->command, err, err_len);
    if (!rc && written) snprintf(written, written_len, "%s", out);
    for (int i = 0; i < n_runs; i++) ob_run_record_free(&runs[i]);
    free(runs);
    return rc;
}

/* ---- reading a reference ------------------------------------------------ */

/* Reads a whole table through a memory type naming the wanted members. */
static int read_table(hid_t file, const char *name, hid_t memory_type, size_t row_size, void **rows,
                      int64_t *n_rows) {
    hid_t dataset = H5Lexists(file, name, H5P_DEFAULT) > 0 ? H5Dopen2(file, name, H5P_DEFAULT) : -1;
    if (dataset < 0) return -1;
    hid_t space = H5Dget_space(dataset);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    *rows = n > 0 ? malloc((size_t)n * row_size) : NULL;
    herr_t read = n > 0 && *rows ? H5Dread(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *rows) : -1;
    H5Dclose(dataset);
    *n_rows = n;
    return read < 0 ? -1 : 0;
}

typedef struct {
    int64_t seed;
    double epochs_to_target;
} seed_numbers;

static int read_seed_table(hid_t file, ob_reference *ref, const char *path, char *err, size_t err_len) {
    hid_t type = H5Tcreate(H5T_COMPOUND, sizeof(seed_numbers));
    H5Tinsert(type, "seed", HOFFSET(seed_numbers, seed), H5T_NATIVE_INT64);
    H5Tinsert(type, "epochs_to_target", HOFFSET(seed_numbers, epochs_to_target), H5T_NATIVE_DOUBLE);
    seed_numbers *rows = NULL;
    int64_t n = 0;
    int rc = read_table(file, "/seeds", type, sizeof *rows, (void **)&rows, &n);
    H5Tclose(type);
    if (rc || n < OB_REFERENCE_MIN_SEEDS) {
        free(rows);
        return rc ? ob_fail(err, err_len, "%s: cannot read the /seeds table", path)
                  : ob_fail(err, err_len, "%s: %lld seeds, a reference needs at least %d", path, (long long)n,
                         OB_REFERENCE_MIN_SEEDS);
    }
    ref->seeds = calloc((size_t)n, sizeof *ref->seeds);
    for (int64_t i = 0; ref->seeds && i < n; i++)
        ref->seeds[i] = (ob_reference_seed){.seed = rows[i].seed, .epochs_to_target = rows[i].epochs_to_target};
    ref->n_seeds = ref->seeds ? (int)n : 0;
    free(rows);
    return ref->seeds ? 0 : 1;
}

/* Points each seed at its run of /curves rows; rows must come grouped by seed, in /seeds order. */
static int attach_curves(ob_reference *ref, const curve_row *rows, int64_t n, const char *path, char *err,
                         size_t err_len) {
    ref->curve_epoch = malloc((size_t)n * sizeof(double));
    ref->curve_metric = malloc((size_t)n * sizeof(double));
    if (!ref->curve_epoch || !ref->curve_metric) return 1;
    for (int64_t r = 0; r < n; r++) {
        int64_t s = rows[r].seed_index;
        bool in_order = s >= 0 && s < ref->n_seeds && (r == 0 || s == rows[r - 1].seed_index ||
                                                          s == rows[r - 1].seed_index + 1);
        if (!in_order) return ob_fail(err, err_len, "%s: /curves row %lld is out of seed order", path, (long long)r);
        ref->curve_epoch[r] = rows[r].epoch;
        ref->curve_metric[r] = rows[r].metric;
        if (ref->seeds[s].n_points == 0) {
            ref->seeds[s].epoch = &ref->curve_epoch[r];
            ref->seeds[s].metric = &ref->curve_metric[r];
        }
        ref->seeds[s].n_points++;
    }
    for (int s = 0; s < ref->n_seeds; s++) {
        char what[PATH_LEN + 32];
        snprintf(what, sizeof what, "%s seed %lld", path, (long long)ref->seeds[s].seed);
        if (check_curve(what, ref->seeds[s].epoch, ref->seeds[s].metric, ref->seeds[s].n_points, err, err_len))
            return 2;
        if (!isfinite(ref->seeds[s].epochs_to_target))
            return ob_fail(err, err_len, "%s: its epochs to target is not finite", what);
    }
    return 0;
}

static int read_curve_table(hid_t file, ob_reference *ref, const char *path, char *err, size_t err_len) {
    hid_t type = curve_row_type();
    curve_row *rows = NULL;
    int64_t n = 0;
    int rc = read_table(file, "/curves", type, sizeof *rows, (void **)&rows, &n);
    H5Tclose(type);
    rc = rc ? ob_fail(err, err_len, "%s: cannot read the /curves table", path)
            : attach_curves(ref, rows, n, path, err, err_len);
    free(rows);
    return rc;
}

static int read_reference_header(const char *path, ob_reference *ref, char *err, size_t err_len) {
    double schema;
    char ignored[ERR_LEN];
    if (ob_h5log_read_attr_float(path, "reference_schema_version", &schema, ignored, sizeof ignored))
        return ob_fail(err, err_len, "%s is not an optbench reference (no reference_schema_version attribute)", path);
    if (schema != OB_REFERENCE_SCHEMA_VERSION)
        return ob_fail(err, err_len, "%s: reference schema %g, this build reads schema %d", path, schema,
                    OB_REFERENCE_SCHEMA_VERSION);
    if (read_identity(path, &ref->id, err, err_len)) return 2;
    return read_string_fields(path, ref, REFERENCE_STRINGS, COUNT(REFERENCE_STRINGS), err, err_len);
}

int ob_reference_read(const char *path, ob_reference *out, char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* one line per failure, no HDF5 stack dump */
    FILE *probe = fopen(path, "rb");
    if (!probe) return ob_fail(err, err_len, "cannot open reference %s: %s", path, strerror(errno));
    fclose(probe);
    if (H5Fis_hdf5(path) <= 0) return ob_fail(err, err_len, "reference %s is not an HDF5 file", path);
    int rc = read_reference_header(path, out, err, err_len);
    hid_t file = rc ? -1 : H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (!rc && file < 0) rc = ob_fail(err, err_len, "cannot open reference %s: HDF5 cannot read it", path);
    if (!rc) rc = read_seed_table(file, out, path, err, err_len);
    if (!rc) rc = read_curve_table(file, out, path, err, err_len);
    if (file >= 0) H5Fclose(file);
    if (rc) ob_reference_free(out);
    return rc;
}

void ob_reference_free(ob_reference *ref) {
    if (!ref) return;
    free_string_fields(&ref->id, IDENTITY_STRINGS, COUNT(IDENTITY_STRINGS));
    free_string_fields(ref, REFERENCE_STRINGS, COUNT(REFERENCE_STRINGS));
    free(ref->seeds);
    free(ref->curve_epoch);
    free(ref->curve_metric);
    memset(ref, 0, sizeof *ref);
}

/* ---- run paths ---------------------------------------------------------- */

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_run_file_name(const char *name) {
    size_t length = strlen(name);
    return name[0] != '.' && length > 3 && strcmp(name + length - 3, ".h5") == 0;
}

/* Appends path to the growing list; 0 or 1 (out of memory). */
static int append_path(char ***paths, int *n, int *capacity, char *path) {
    if (!path) return 1;
    if (*n == *capacity) {
        int grown = *capacity ? 2 * *capacity : 16;
        char **bigger = realloc(*paths, (size_t)grown * sizeof *bigger);
        if (!bigger) {
            free(path);
            return 1;
        }
        *paths = bigger;
        *capacity = grown;
    }
    (*paths)[(*n)++] = path;
    return 0;
}

static char *join_path(const char *dir, const char *name) {
    size_t size = strlen(dir) + strlen(name) + 2;
    char *path = malloc(size);
    if (path) snprintf(path, size, "%s/%s", dir, name);
    return path;
}

static int expand_directory(const char *dir, char ***paths, int *n, int *capacity, char *err, size_t err_len) {
    DIR *handle = opendir(dir);
    if (!handle) return ob_fail(err, err_len, "cannot read directory %s: %s", dir, strerror(errno));
    int first = *n, rc = 0;
    for (struct dirent *entry = readdir(handle); entry && !rc; entry = readdir(handle))
        if (is_run_file_name(entry->d_name)) rc = append_path(paths, n, capacity, join_path(dir, entry->d_name));
    closedir(handle);
    if (rc) return rc;
    if (*n == first) return ob_fail(err, err_len, "directory %s holds no .h5 run files", dir);
    qsort(*paths + first, (size_t)(*n - first), sizeof **paths, compare_strings);
    return 0;
}

int ob_run_paths_expand(char *const *args, int n_args, char ***paths, int *n_paths, char *err, size_t err_len) {
    *paths = NULL;
    *n_paths = 0;
    int capacity = 0, rc = 0;
    for (int i = 0; i < n_args && !rc; i++) {
        struct stat info;
        bool is_directory = stat(args[i], &info) == 0 && S_ISDIR(info.st_mode);
        rc = is_directory ? expand_directory(args[i], paths, n_paths, &capacity, err, err_len)
                          : append_path(paths, n_paths, &capacity, strdup(args[i]));
    }
    if (rc) {
        ob_run_paths_free(*paths, *n_paths);
        *paths = NULL;
        *n_paths = 0;
    }
    return rc;
}

void ob_run_paths_free(char **paths, int n_paths) {
    for (int i = 0; i < n_paths && paths; i++) free(paths[i]);
    free(paths);
}

/* ---- optbench reference ------------------------------------------------- */

static const char REFERENCE_USAGE[] =
    "usage: optbench reference build [--out REF.h5] [--reference-dir DIR] [--force] RUN.h5|DIR ...\n"
    "  Builds a reference from >= 5 converged seeds of one configuration. --out defaults to\n"
    "  <reference-dir>/<workload>/<preset>/<name>.h5 (reference-dir: $OB_REFERENCE_DIR or the\n"
    "  source tree's results/reference).\n"
    "       optbench reference loo REF.h5 [--band-k K] [--abs-tol T] [--tolerate-transients]\n"
    "  Band-tests each seed against the others: how often honest runs fail the band at this K.\n";

/* The command line as one string, recorded in the reference. */
static char *joined_command(int argc, char **argv) {
    size_t size = 1;
    for (int i = 0; i < argc; i++) size += strlen(argv[i]) + 1;
    char *text = calloc(size, 1);
    for (int i = 0; text && i < argc; i++) {
        if (i) strcat(text, " ");
        strcat(text, argv[i]);
    }
    return text;
}

/* Flags into options, everything else into inputs; 0, or 2 with err. */
static int parse_build_args(int argc, char **argv, ob_reference_build_options *options, char **inputs,
                            int *n_inputs, char *err, size_t err_len) {
    for (int i = 3; i < argc; i++) {
        const char *arg = argv[i];
        bool valued = strcmp(arg, "--out") == 0 || strcmp(arg, "--reference-dir") == 0;
        if (valued && i + 1 >= argc) return ob_fail(err, err_len, "%s: expected a value after the flag", arg);
        if (strcmp(arg, "--out") == 0)
            options->out = argv[++i];
        else if (strcmp(arg, "--reference-dir") == 0)
            options->reference_dir = argv[++i];
        else if (strcmp(arg, "--force") == 0)
            options->force = true;
        else if (strncmp(arg, "--", 2) == 0)
            return ob_fail(err, err_len, "unknown flag %s (see optbench reference --help)", arg);
        else
            inputs[(*n_inputs)++] = argv[i];
    }
    if (*n_inputs == 0) return ob_fail(err, err_len, "expected run files or directories to build from");
    return 0;
}

int ob_reference_main(int argc, char **argv) {
    if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        fputs(REFERENCE_USAGE, stdout);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[2], "loo") == 0) return ob_check_loo_main(argc, argv);
    if (argc < 3 || strcmp(argv[2], "build") != 0) {
        fprintf(stderr,
                "optbench: reference: expected the subcommand build or loo (see optbench reference --help)\n");
        return 2;
    }
    char err[ERR_LEN] = "", written[PATH_LEN] = "";
    ob_reference_build_options options = {0};
    char **inputs = calloc((size_t)argc, sizeof *inputs), **paths = NULL;
    char *command = joined_command(argc, argv);
    int n_inputs = 0, n_paths = 0;
    int rc = inputs && command ? parse_build_args(argc, argv, &options, inputs, &n_inputs, err, sizeof err) : 1;
    options.command = command;
    if (!rc) rc = ob_run_paths_expand(inputs, n_inputs, &paths, &n_paths, err, sizeof err);
    if (!rc)
        rc = ob_reference_build((const char *const *)paths, n_paths, &options, written, sizeof written, err,
                                sizeof err);
    if (!rc) printf("reference: %s (%d seeds)\n", written, n_paths);
    if (rc && err[0]) fprintf(stderr, "optbench: reference: %s\n", err);
    ob_run_paths_free(paths, n_paths);
    free(inputs);
    free(command);
    return rc;
}
