/* ob_h5log: the one-file-per-run HDF5 log (DESIGN.md section 6, schema v1)
 * and the schema validator that `check`, `report` and the tests rely on.
 *
 * Layout of a run file:
 *   root attributes   scalar; strings are fixed-length (exact length,
 *                     null-padded), integers int64, floats float64
 *   /train /eval /memory /timing /comm /events
 *                     1-D extendible, chunked datasets of a compound type
 *                     with exactly the columns of section 6, in that order.
 *                     Integers are int64 (rank: int32), reals float64,
 *                     identifiers (category, phase, op, key) 32-byte
 *                     null-padded strings, the event value a variable-length
 *                     string; /eval carries one float64 column per secondary
 *                     metric after its six fixed ones.
 *   All strings are tagged UTF-8; a raw HDF5 reader must read them with a
 *   UTF-8 memory type, as HDF5 converts no character set into another.
 *
 * A new file says status="running" from the first moment, and its outcome
 * attributes say "target not reached" (time_to_target_s = epochs_to_target =
 * NaN, steps_to_target = -1) until the harness overwrites them, so a killed
 * run never looks complete.
 *
 * Rows are buffered in memory and written in blocks of one chunk; flush (done
 * at each evaluation) writes every buffered row and flushes the file, so a
 * killed run keeps everything up to its last flush. Flush before saving the
 * counts of a checkpoint: reopen refuses counts the file does not hold.
 *
 * Every int-returning function returns 0 on success and 2 on failure (the CLI
 * exit code for bad input/output). Functions taking err/err_len write one
 * line there; functions on an open log keep it for ob_h5log_error.
 * A NULL string argument is written as the empty string.
 */
#ifndef OB_H5LOG_H
#define OB_H5LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OB_H5LOG_SCHEMA_VERSION 1
/* Longest identifier (category, phase, op, event key), in bytes. */
#define OB_H5LOG_NAME_MAX 32

typedef struct ob_h5log ob_h5log;

typedef struct {
    int64_t step;
    double epoch;
    int64_t samples;
    double train_s, loss, lr, loss_scale, grad_norm;
} ob_train_row;

typedef struct {
    int64_t step;
    double epoch;
    double train_s, eval_s, metric, loss;
    const double *secondary; /* secondary[i] for each name given at create */
} ob_eval_row;

typedef struct {
    int32_t rank;
    const char *category;
    int64_t peak_bytes;
} ob_memory_row;

typedef struct {
    int32_t rank;
    const char *phase;
    double seconds;
    int64_t calls;
} ob_timing_row;

typedef struct {
    int32_t rank;
    const char *op;
    const char *category;
    int64_t bytes, calls;
    double seconds;
} ob_comm_row;

/* One layer's gradient statistics under a precision policy (issue #4),
 * over the steps since the previous row: the loss scale its output gradient
 * carried, how many gradient values reached its GEMMs, and the fractions of
 * the nonzero ones that rounding flushed to zero or to inf / the format's
 * largest value. Every new file has the table; it stays empty in fp32. */
typedef struct {
    int64_t step;
    const char *layer;
    double loss_scale;
    int64_t values;
    double underflow_frac, overflow_frac;
} ob_precision_row;

/* Row counts of the tables a checkpoint must rewind (memory, timing and comm
 * hold end-of-run summaries and are left as they are). */
typedef struct {
    int64_t train, eval, events, precision;
} ob_h5log_counts;

/* Creates path. An existing file without force -> 2, "output FILE exists (use
 * --force to overwrite)"; unwritable -> 2, "cannot create output FILE:
 * <reason>". secondary_names: the workload's extra eval columns (e.g. "top5"),
 * n_secondary may be 0. */
int ob_h5log_create(ob_h5log **out, const char *path, bool force, int n_secondary,
                    const char *const *secondary_names, char *err, size_t err_len);
/* Reopens a run file to continue it after a checkpoint: truncates /train,
 * /eval and /events to `counts` rows, empties the end-of-run summaries
 * (/memory, /timing, /comm), sets status back to "running" and the
 * outcome attributes back to "not reached". The secondary eval columns are
 * taken from the file. Missing/corrupt file, wrong schema or counts beyond
 * the rows in the file -> 2. */
int ob_h5log_reopen(ob_h5log **out, const char *path, const ob_h5log_counts *counts, char *err,
                    size_t err_len);
/* Rows logged so far, buffered ones included. */
ob_h5log_counts ob_h5log_get_counts(const ob_h5log *log);
/* The last failure on this log, "" if none. */
const char *ob_h5log_error(const ob_h5log *log);

/* Root attributes; an existing attribute of that name is replaced. */
int ob_h5log_attr_str(ob_h5log *log, const char *name, const char *value);
int ob_h5log_attr_int(ob_h5log *log, const char *name, int64_t value);
int ob_h5log_attr_float(ob_h5log *log, const char *name, double value);

/* Append one row. Identifiers longer than OB_H5LOG_NAME_MAX bytes -> 2. */
int ob_h5log_train(ob_h5log *log, const ob_train_row *row);
int ob_h5log_eval(ob_h5log *log, const ob_eval_row *row);
int ob_h5log_memory(ob_h5log *log, const ob_memory_row *row);
int ob_h5log_timing(ob_h5log *log, const ob_timing_row *row);
int ob_h5log_comm(ob_h5log *log, const ob_comm_row *row);
int ob_h5log_event(ob_h5log *log, double time_ms, const char *key, const char *value);
int ob_h5log_precision(ob_h5log *log, const ob_precision_row *row);

/* Writes buffered rows and flushes the file (called at each evaluation). */
int ob_h5log_flush(ob_h5log *log);
/* Flushes, closes and frees; NULL-safe. Returns 2 if anything failed. */
int ob_h5log_close(ob_h5log *log);

/* Checks a finished or running file against schema v1: every root attribute
 * present with its type, schema_version == 1, every table present with
 * exactly its columns (eval: the six fixed ones, then float secondaries). */
int ob_h5log_validate(const char *path, char *err, size_t err_len);

/* Small readers for tests and `check`; results are malloc'd. */
int ob_h5log_read_attr_str(const char *path, const char *name, char **value, char *err,
                           size_t err_len);
/* Integer attributes are converted. */
int ob_h5log_read_attr_float(const char *path, const char *name, double *value, char *err,
                             size_t err_len);
/* One numeric column of a table ("train" or "/train") as doubles. */
int ob_h5log_read_column(const char *path, const char *table, const char *column, double **values,
                         int64_t *count, char *err, size_t err_len);

#endif
