/* BERT pretraining shards: what the writer writes the reader reads back
 * unchanged (padding predictions as -1, in any row split), to the byte the
 * same each time; shards written with other integer types (as published
 * ones are) read correctly; each kind of bad shard is refused with one
 * line naming the file and the dataset. */
#include "tests/unit/data_test_support.h" /* first: it sets _POSIX_C_SOURCE */

#include <hdf5.h>

#include "workloads/bert/ob_bert_shard.h"

#define ROWS 100
#define SEQ 16
#define PRED 4

enum { INPUT_IDS, INPUT_MASK, SEGMENT_IDS, POSITIONS, MASKED_IDS, LABELS, N_DATASETS };
static const char *const NAMES[N_DATASETS] = {"input_ids",           "input_mask",    "segment_ids",
                                              "masked_lm_positions", "masked_lm_ids", "next_sentence_labels"};

static char scratch[32];

static int32_t *field(const ob_bert_batch *batch, int k) {
    int32_t *const fields[N_DATASETS] = {batch->input_ids,           batch->input_mask,    batch->segment_ids,
                                         batch->masked_lm_positions, batch->masked_lm_ids, batch->next_sentence_labels};
    return fields[k];
}

static size_t field_count(int k, int64_t rows) {
    return (size_t)rows * (k <= SEGMENT_IDS ? SEQ : k <= MASKED_IDS ? PRED : 1);
}

/* Rows a shard could hold: row r has 6 + r % 10 tokens, (r % 3) + 1 real
 * predictions at increasing positions >= 1, the rest padding. */
static void fill_rows(const ob_bert_batch *b) {
    for (int r = 0; r < ROWS; r++) {
        int length = 6 + r % 10;
        for (int t = 0; t < SEQ; t++) {
            b->input_ids[r * SEQ + t] = t < length ? 5 + (r * 7 + t * 3) % 90 : 0;
            b->input_mask[r * SEQ + t] = t < length;
            b->segment_ids[r * SEQ + t] = t < length && t >= length / 2;
        }
        for (int j = 0; j < PRED; j++) {
            bool real = j <= r % 3;
            b->masked_lm_positions[r * PRED + j] = real ? 1 + 2 * j : 0;
            b->masked_lm_ids[r * PRED + j] = real ? 10 + r % 50 + j : -1;
        }
        b->next_sentence_labels[r] = r % 2;
    }
}

/* The same buffers from row `start` on. */
static ob_bert_batch rows_from(const ob_bert_batch *b, int64_t start) {
    return (ob_bert_batch){b->input_ids + start * SEQ,      b->input_mask + start * SEQ,
                           b->segment_ids + start * SEQ,    b->masked_lm_positions + start * PRED,
                           b->masked_lm_ids + start * PRED, b->next_sentence_labels + start};
}

static bool batches_equal(const ob_bert_batch *x, const ob_bert_batch *y, int64_t rows) {
    for (int k = 0; k < N_DATASETS; k++)
        if (memcmp(field(x, k), field(y, k), field_count(k, rows) * sizeof(int32_t)) != 0) return false;
    return true;
}

static void scratch_path(const char *name, char *path, size_t len) { snprintf(path, len, "%s/%s", scratch, name); }

static int write_shard(const char *path, const ob_bert_batch *rows, char *err, size_t err_len) {
    ob_bert_shard_writer *writer;
    int rc = ob_bert_shard_create(path, ROWS, SEQ, PRED, &writer, err, err_len);
    ob_bert_batch tail = rows_from(rows, 60);
    if (!rc) rc = ob_bert_shard_write(writer, 0, 60, rows, err, err_len);
    if (!rc) rc = ob_bert_shard_write(writer, 60, ROWS - 60, &tail, err, err_len);
    int finished = writer ? ob_bert_shard_finish(writer, err, err_len) : 0;
    return rc ? rc : finished;
}

/* Reads [start, start + n) into rows start.. of out. */
static int read_into(ob_bert_shard *shard, int64_t start, int64_t n, const ob_bert_batch *out, char *err,
                     size_t err_len) {
    ob_bert_batch at = rows_from(out, start);
    return ob_bert_shard_read(shard, start, n, &at, err, err_len);
}

static bool same_bytes(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    for (int ca = 0, cb = 0; same && ca != EOF; same = ca == cb) {
        ca = fgetc(fa);
        cb = fgetc(fb);
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static void test_round_trip(void) {
    char err[512] = "", path[512], again[512];
    ob_bert_batch written, read;
    if (ob_bert_batch_alloc(&written, ROWS, SEQ, PRED) || ob_bert_batch_alloc(&read, ROWS, SEQ, PRED)) return;
    fill_rows(&written);
    scratch_path("round_trip.h5", path, sizeof path);
    scratch_path("round_trip_again.h5", again, sizeof again);
    CHECK(write_shard(path, &written, err, sizeof err) == 0);
    CHECK(write_shard(again, &written, err, sizeof err) == 0);
    check(same_bytes(path, again), "the same rows give the same file bytes");

    ob_bert_shard *shard = NULL;
    CHECK(ob_bert_shard_open(path, &shard, err, sizeof err) == 0);
    if (!shard) return;
    CHECK(ob_bert_shard_rows(shard) == ROWS && ob_bert_shard_seq_len(shard) == SEQ &&
          ob_bert_shard_max_pred(shard) == PRED);
    memset(read.input_ids, 0x55, field_count(INPUT_IDS, ROWS) * sizeof(int32_t));
    CHECK(read_into(shard, 0, 37, &read, err, sizeof err) == 0);
    CHECK(read_into(shard, 37, ROWS - 37, &read, err, sizeof err) == 0);
    check(batches_equal(&written, &read, ROWS), "write then read gives the same tensors, padding as -1");
    CHECK(read.masked_lm_ids[PRED - 1] == -1 && read.masked_lm_positions[PRED - 1] == 0);

    CHECK(ob_bert_shard_read(shard, 90, 11, &read, err, sizeof err) == 2 && strstr(err, path));
    printf("  %s\n", err);
    ob_bert_shard_close(shard);
    ob_bert_batch_free(&written);
    ob_bert_batch_free(&read);
}

/* How the raw test files lay a dataset out. */
typedef struct {
    bool absent;
    hid_t file_type; /* e.g. H5T_STD_I64LE, H5T_IEEE_F32LE */
    int rank;
    hsize_t dims[2];
} raw_layout;

static void default_layouts(raw_layout layouts[N_DATASETS]) {
    for (int k = 0; k < N_DATASETS; k++) {
        hsize_t width = k <= SEGMENT_IDS ? SEQ : PRED;
        layouts[k] = (raw_layout){false, H5T_STD_I32LE, k == LABELS ? 1 : 2, {ROWS, width}};
    }
}

/* A shard written with plain HDF5 calls, values from rows converted to
 * each dataset's file type (padding ids stored as 0, as published). */
static void write_raw_shard(const char *path, const raw_layout layouts[N_DATASETS], const ob_bert_batch *rows) {
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int32_t *stored_ids = malloc(field_count(MASKED_IDS, ROWS) * sizeof *stored_ids);
    for (size_t i = 0; i < field_count(MASKED_IDS, ROWS); i++)
        stored_ids[i] = rows->masked_lm_ids[i] < 0 ? 0 : rows->masked_lm_ids[i];
    for (int k = 0; k < N_DATASETS; k++) {
        const raw_layout *l = &layouts[k];
        if (l->absent) continue;
        hid_t space = H5Screate_simple(l->rank, l->dims, NULL);
        hid_t dataset = H5Dcreate2(file, NAMES[k], l->file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t cells = l->dims[0] * (l->rank == 2 ? l->dims[1] : 1);
        int32_t *values = calloc(cells, sizeof *values);
        const int32_t *source = k == MASKED_IDS ? stored_ids : field(rows, k);
        memcpy(values, source, (cells < field_count(k, ROWS) ? cells : field_count(k, ROWS)) * sizeof *values);
        H5Dwrite(dataset, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, values);
        free(values);
        H5Dclose(dataset);
        H5Sclose(space);
    }
    free(stored_ids);
    H5Fclose(file);
}

static void test_other_integer_types(void) {
    char err[512] = "", path[512];
    ob_bert_batch rows, read;
    if (ob_bert_batch_alloc(&rows, ROWS, SEQ, PRED) || ob_bert_batch_alloc(&read, ROWS, SEQ, PRED)) return;
    fill_rows(&rows);
    raw_layout layouts[N_DATASETS];
    default_layouts(layouts);
    layouts[INPUT_IDS].file_type = H5T_STD_I64LE;
    layouts[INPUT_MASK].file_type = H5T_STD_I8LE;
    layouts[SEGMENT_IDS].file_type = H5T_STD_U8LE;
    layouts[POSITIONS].file_type = H5T_STD_I16BE;
    layouts[MASKED_IDS].file_type = H5T_STD_I64BE;
    layouts[LABELS].file_type = H5T_STD_I8LE;
    scratch_path("int64_int8.h5", path, sizeof path);
    write_raw_shard(path, layouts, &rows);
    ob_bert_shard *shard = NULL;
    CHECK(ob_bert_shard_open(path, &shard, err, sizeof err) == 0);
    CHECK(shard && ob_bert_shard_read(shard, 0, ROWS, &read, err, sizeof err) == 0);
    check(batches_equal(&rows, &read, ROWS), "int64, int8, uint8, int16 datasets read as int32, padding as -1");
    ob_bert_shard_close(shard);
    ob_bert_batch_free(&rows);
    ob_bert_batch_free(&read);
}

/* A raw shard with one dataset changed must be refused naming the file,
 * the dataset and `needle`. */
static void expect_refused(const char *name, int k, raw_layout change, const char *needle) {
    char err[512] = "", path[512], what[256];
    ob_bert_batch rows;
    if (ob_bert_batch_alloc(&rows, ROWS, SEQ, PRED)) return;
    fill_rows(&rows);
    raw_layout layouts[N_DATASETS];
    default_layouts(layouts);
    layouts[k] = change;
    scratch_path(name, path, sizeof path);
    write_raw_shard(path, layouts, &rows);
    ob_bert_shard *shard = NULL;
    int rc = ob_bert_shard_open(path, &shard, err, sizeof err);
    snprintf(what, sizeof what, "%s: refused naming the file, %s and \"%s\"", name, NAMES[k], needle);
    check(rc == 2 && !shard && strstr(err, path) && strstr(err, NAMES[k]) && strstr(err, needle) && !strchr(err, '\n'),
          what);
    printf("  %s\n", err);
    ob_bert_batch_free(&rows);
}

static void test_bad_shards(void) {
    expect_refused("missing.h5", SEGMENT_IDS, (raw_layout){.absent = true}, "no dataset");
    expect_refused("float.h5", MASKED_IDS, (raw_layout){false, H5T_IEEE_F32LE, 2, {ROWS, PRED}}, "floating-point");
    expect_refused("short_labels.h5", LABELS, (raw_layout){false, H5T_STD_I32LE, 1, {ROWS - 1, 0}}, "99 rows");
    expect_refused("short_mask.h5", INPUT_MASK, (raw_layout){false, H5T_STD_I32LE, 2, {ROWS - 3, SEQ}}, "97 rows");
    expect_refused("narrow_mask.h5", INPUT_MASK, (raw_layout){false, H5T_STD_I32LE, 2, {ROWS, SEQ - 1}}, "15 columns");
    expect_refused("wide_ids.h5", MASKED_IDS, (raw_layout){false, H5T_STD_I32LE, 2, {ROWS, PRED + 1}}, "5 columns");
    expect_refused("labels_2d.h5", LABELS, (raw_layout){false, H5T_STD_I32LE, 2, {ROWS, 1}}, "1 dimension");

    char err[512] = "", path[512];
    ob_bert_shard *shard = NULL;
    scratch_path("not_hdf5.h5", path, sizeof path);
    write_file(path, false, (const unsigned char *)"input_ids\n", 10);
    CHECK(ob_bert_shard_open(path, &shard, err, sizeof err) == 2 && strstr(err, path) && strstr(err, "not an HDF5"));
    CHECK(ob_bert_shard_open("/nonexistent/shard.h5", &shard, err, sizeof err) == 2 &&
          strstr(err, "/nonexistent/shard.h5"));
}

static void test_position_outside_sequence(void) {
    char err[512] = "", path[512];
    ob_bert_batch rows;
    if (ob_bert_batch_alloc(&rows, ROWS, SEQ, PRED)) return;
    fill_rows(&rows);
    rows.masked_lm_positions[5 * PRED] = SEQ;
    raw_layout layouts[N_DATASETS];
    default_layouts(layouts);
    scratch_path("bad_position.h5", path, sizeof path);
    write_raw_shard(path, layouts, &rows);
    ob_bert_shard *shard = NULL;
    CHECK(ob_bert_shard_open(path, &shard, err, sizeof err) == 0);
    int rc = shard ? ob_bert_shard_read(shard, 0, ROWS, &rows, err, sizeof err) : 0;
    check(rc == 2 && strstr(err, "masked_lm_positions") && strstr(err, "row 5"), "a position past the sequence");
    printf("  %s\n", err);
    ob_bert_shard_close(shard);
    ob_bert_batch_free(&rows);
}

int main(void) {
    if (!scratch_dir_make(scratch)) return 1;
    test_round_trip();
    test_other_integer_types();
    test_bad_shards();
    test_position_outside_sequence();
    scratch_dir_remove(scratch);
    return report_checks();
}
