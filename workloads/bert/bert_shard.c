#define _POSIX_C_SOURCE 200809L /* access */

#include "workloads/bert/ob_bert_shard.h"

#include <errno.h>
#include <hdf5.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Rows per chunk: a read of one training batch touches few chunks, and a
 * chunk of 128-token rows is 32 KiB per dataset. */
#define CHUNK_ROWS 64
/* gzip level of h5py's default, what published shards use. */
#define DEFLATE_LEVEL 4
#define MAX_WIDTH 65536

/* What a dataset's second dimension is. */
typedef enum { WIDTH_SEQ, WIDTH_PRED, WIDTH_NONE } dataset_width;

enum { INPUT_IDS, INPUT_MASK, SEGMENT_IDS, MASKED_LM_POSITIONS, MASKED_LM_IDS, NEXT_SENTENCE_LABELS, N_DATASETS };

static const struct {
    const char *name;
    dataset_width width;
} DATASETS[N_DATASETS] = {
    {"input_ids", WIDTH_SEQ},      {"input_mask", WIDTH_SEQ},
    {"segment_ids", WIDTH_SEQ},    {"masked_lm_positions", WIDTH_PRED},
    {"masked_lm_ids", WIDTH_PRED}, {"next_sentence_labels", WIDTH_NONE},
};

/* What the reader and the writer both hold: the open file and datasets. */
typedef struct {
    char *path;
    hid_t file, datasets[N_DATASETS];
    int64_t rows;
    int seq_len, max_pred;
} shard_file;

struct ob_bert_shard {
    shard_file f;
};

struct ob_bert_shard_writer {
    shard_file f;
    int32_t *stored_ids; /* masked_lm_ids with padding back at 0 */
    size_t stored_capacity;
};

/* A shard_file with nothing open yet; false when out of memory. */
static bool shard_file_init(shard_file *f, const char *path) {
    *f = (shard_file){.path = strdup(path), .file = -1};
    for (int k = 0; k < N_DATASETS; k++) f->datasets[k] = -1;
    return f->path != NULL;
}

/* Closes what is open (the path stays for messages); false when HDF5
 * could not flush or close. */
static bool shard_file_close(shard_file *f) {
    bool closed = true;
    H5E_BEGIN_TRY {
        for (int k = 0; k < N_DATASETS; k++)
            if (f->datasets[k] >= 0) closed &= H5Dclose(f->datasets[k]) >= 0;
        if (f->file >= 0) closed &= H5Fclose(f->file) >= 0;
    }
    H5E_END_TRY
    return closed;
}

static int32_t *batch_field(const ob_bert_batch *batch, int k) {
    int32_t *const fields[N_DATASETS] = {batch->input_ids,           batch->input_mask,    batch->segment_ids,
                                         batch->masked_lm_positions, batch->masked_lm_ids, batch->next_sentence_labels};
    return fields[k];
}

int ob_bert_batch_alloc(ob_bert_batch *batch, int64_t rows, int seq_len, int max_pred) {
    size_t tokens = (size_t)rows * (size_t)seq_len, predictions = (size_t)rows * (size_t)max_pred;
    int32_t *buffer = malloc((3 * tokens + 2 * predictions + (size_t)rows) * sizeof *buffer);
    *batch = (ob_bert_batch){0};
    if (!buffer) return 1;
    *batch = (ob_bert_batch){.input_ids = buffer,
                             .input_mask = buffer + tokens,
                             .segment_ids = buffer + 2 * tokens,
                             .masked_lm_positions = buffer + 3 * tokens,
                             .masked_lm_ids = buffer + 3 * tokens + predictions,
                             .next_sentence_labels = buffer + 3 * tokens + 2 * predictions};
    return 0;
}

void ob_bert_batch_free(ob_bert_batch *batch) {
    free(batch->input_ids); /* the start of the one allocation */
    *batch = (ob_bert_batch){0};
}

static int dataset_rank(int k) { return DATASETS[k].width == WIDTH_NONE ? 1 : 2; }

static hsize_t width_of(int k, int seq_len, int max_pred) {
    return DATASETS[k].width == WIDTH_SEQ ? (hsize_t)seq_len : DATASETS[k].width == WIDTH_PRED ? (hsize_t)max_pred : 1;
}

/* ---- reading ---- */

static const char *type_class_name(H5T_class_t type_class) {
    switch (type_class) {
    case H5T_FLOAT:
        return "a floating-point type";
    case H5T_STRING:
        return "a string type";
    case H5T_COMPOUND:
        return "a compound type";
    case H5T_ENUM:
        return "an enum type";
    case H5T_ARRAY:
        return "an array type";
    default:
        return "a non-integer type";
    }
}

static int open_file(shard_file *f, char *err, size_t err_len) {
    if (access(f->path, R_OK) != 0) {
        snprintf(err, err_len, "%s: cannot read the shard: %s", f->path, strerror(errno));
        return 2;
    }
    f->file = H5Fopen(f->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f->file < 0) {
        snprintf(err, err_len, "%s: not an HDF5 file (expected a BERT pretraining shard)", f->path);
        return 2;
    }
    return 0;
}

/* Opens dataset k and checks its type class and rank; dims gets its shape. */
static int open_dataset(shard_file *f, int k, hsize_t dims[2], char *err, size_t err_len) {
    const char *name = DATASETS[k].name;
    if (H5Lexists(f->file, name, H5P_DEFAULT) <= 0 || (f->datasets[k] = H5Dopen2(f->file, name, H5P_DEFAULT)) < 0) {
        snprintf(err, err_len,
                 "%s: no dataset %s (a BERT pretraining shard has input_ids, input_mask, segment_ids, "
                 "masked_lm_positions, masked_lm_ids and next_sentence_labels)",
                 f->path, name);
        return 2;
    }
    hid_t type = H5Dget_type(f->datasets[k]);
    H5T_class_t type_class = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    if (type >= 0) H5Tclose(type);
    if (type_class != H5T_INTEGER) {
        snprintf(err, err_len, "%s: dataset %s: expected an integer type, got %s", f->path, name,
                 type_class_name(type_class));
        return 2;
    }
    hid_t space = H5Dget_space(f->datasets[k]);
    int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (rank == dataset_rank(k)) H5Sget_simple_extent_dims(space, dims, NULL);
    if (space >= 0) H5Sclose(space);
    if (rank != dataset_rank(k)) {
        snprintf(err, err_len, "%s: dataset %s: expected %s, got %d dimension%s", f->path, name,
                 dataset_rank(k) == 1 ? "1 dimension [sequences]" : "2 dimensions [sequences, width]", rank,
                 rank == 1 ? "" : "s");
        return 2;
    }
    return 0;
}

/* input_ids fixes N and seq_len, masked_lm_positions max_pred; the other
 * datasets must agree with them. */
static int check_shape(shard_file *f, int k, const hsize_t dims[2], char *err, size_t err_len) {
    const char *name = DATASETS[k].name;
    bool has_width = DATASETS[k].width != WIDTH_NONE;
    if (has_width && (dims[1] < 1 || dims[1] > MAX_WIDTH)) {
        snprintf(err, err_len, "%s: dataset %s: expected 1 to %d columns, got %lld", f->path, name, MAX_WIDTH,
                 (long long)dims[1]);
        return 2;
    }
    if (k == INPUT_IDS) f->rows = (int64_t)dims[0], f->seq_len = (int)dims[1];
    if (k == MASKED_LM_POSITIONS) f->max_pred = (int)dims[1];
    if ((int64_t)dims[0] != f->rows) {
        snprintf(err, err_len, "%s: dataset %s has %lld rows, input_ids has %lld", f->path, name, (long long)dims[0],
                 (long long)f->rows);
        return 2;
    }
    hsize_t expected = width_of(k, f->seq_len, f->max_pred);
    if (has_width && dims[1] != expected) {
        snprintf(err, err_len, "%s: dataset %s has %lld columns, %s has %lld", f->path, name, (long long)dims[1],
                 DATASETS[k].width == WIDTH_SEQ ? "input_ids" : "masked_lm_positions", (long long)expected);
        return 2;
    }
    return 0;
}

static int open_shard(shard_file *f, char *err, size_t err_len) {
    int rc = open_file(f, err, err_len);
    for (int k = 0; k < N_DATASETS && !rc; k++) {
        hsize_t dims[2] = {0, 0};
        rc = open_dataset(f, k, dims, err, err_len);
        if (!rc) rc = check_shape(f, k, dims, err, err_len);
    }
    if (!rc && f->rows == 0) {
        snprintf(err, err_len, "%s: the shard holds no sequences", f->path);
        rc = 2;
    }
    return rc;
}

int ob_bert_shard_open(const char *path, ob_bert_shard **out, char *err, size_t err_len) {
    *out = NULL;
    ob_bert_shard *shard = calloc(1, sizeof *shard);
    if (!shard || !shard_file_init(&shard->f, path)) {
        free(shard);
        return 1;
    }
    int rc;
    H5E_BEGIN_TRY { rc = open_shard(&shard->f, err, err_len); }
    H5E_END_TRY
    if (rc) {
        ob_bert_shard_close(shard);
        return rc;
    }
    *out = shard;
    return 0;
}

int64_t ob_bert_shard_rows(const ob_bert_shard *shard) { return shard->f.rows; }
int ob_bert_shard_seq_len(const ob_bert_shard *shard) { return shard->f.seq_len; }
int ob_bert_shard_max_pred(const ob_bert_shard *shard) { return shard->f.max_pred; }

/* Reads (or writes) rows [start, start + n) of dataset k; 0 or -1. */
static int transfer_rows(const shard_file *f, int k, int64_t start, int64_t n, const int32_t *written, int32_t *read) {
    hsize_t offset[2] = {(hsize_t)start, 0}, count[2] = {(hsize_t)n, width_of(k, f->seq_len, f->max_pred)};
    hid_t file_space = H5Dget_space(f->datasets[k]);
    hid_t memory_space = H5Screate_simple(dataset_rank(k), count, NULL);
    int rc = file_space < 0 || memory_space < 0 ||
             H5Sselect_hyperslab(file_space, H5S_SELECT_SET, offset, NULL, count, NULL) < 0;
    if (!rc && read) rc = H5Dread(f->datasets[k], H5T_NATIVE_INT32, memory_space, file_space, H5P_DEFAULT, read) < 0;
    if (!rc && written)
        rc = H5Dwrite(f->datasets[k], H5T_NATIVE_INT32, memory_space, file_space, H5P_DEFAULT, written) < 0;
    if (file_space >= 0) H5Sclose(file_space);
    if (memory_space >= 0) H5Sclose(memory_space);
    return rc ? -1 : 0;
}

static int check_row_range(const shard_file *f, int64_t start, int64_t n, const char *verb, char *err, size_t err_len) {
    if (start >= 0 && n >= 1 && start <= f->rows - n) return 0;
    snprintf(err, err_len, "%s: rows [%lld, %lld) %s, the shard has %lld", f->path, (long long)start,
             (long long)(start + n), verb, (long long)f->rows);
    return 2;
}

/* Checks the positions and turns padding predictions (position 0) into
 * label -1. */
static int mark_padding(const shard_file *f, int64_t start, int64_t n, ob_bert_batch *batch, char *err,
                        size_t err_len) {
    for (int64_t i = 0; i < n * f->max_pred; i++) {
        int32_t position = batch->masked_lm_positions[i];
        if (position < 0 || position >= f->seq_len) {
            snprintf(err, err_len, "%s: dataset masked_lm_positions: row %lld holds position %d, outside [0, %d)",
                     f->path, (long long)(start + i / f->max_pred), position, f->seq_len);
            return 2;
        }
        if (position == 0) batch->masked_lm_ids[i] = -1;
    }
    return 0;
}

int ob_bert_shard_read(ob_bert_shard *shard, int64_t start, int64_t n, ob_bert_batch *batch, char *err,
                       size_t err_len) {
    const shard_file *f = &shard->f;
    if (check_row_range(f, start, n, "requested", err, err_len)) return 2;
    int failed = -1;
    H5E_BEGIN_TRY {
        for (int k = 0; k < N_DATASETS && failed < 0; k++)
            if (transfer_rows(f, k, start, n, NULL, batch_field(batch, k)) != 0) failed = k;
    }
    H5E_END_TRY
    if (failed >= 0) {
        snprintf(err, err_len, "%s: dataset %s: cannot read rows [%lld, %lld) (corrupt file?)", f->path,
                 DATASETS[failed].name, (long long)start, (long long)(start + n));
        return 2;
    }
    return mark_padding(f, start, n, batch, err, err_len);
}

void ob_bert_shard_close(ob_bert_shard *shard) {
    if (!shard) return;
    shard_file_close(&shard->f);
    free(shard->f.path);
    free(shard);
}

/* ---- writing ---- */

/* Chunked, shuffled and deflated int32. Object times are not stored, so
 * the same data gives the same bytes. */
static hid_t create_dataset(const shard_file *f, int k) {
    hsize_t dims[2] = {(hsize_t)f->rows, width_of(k, f->seq_len, f->max_pred)};
    hsize_t chunk[2] = {f->rows < CHUNK_ROWS ? (hsize_t)f->rows : CHUNK_ROWS, dims[1]};
    hid_t space = H5Screate_simple(dataset_rank(k), dims, NULL);
    hid_t properties = H5Pcreate(H5P_DATASET_CREATE);
    hid_t dataset = -1;
    if (space >= 0 && properties >= 0 && H5Pset_chunk(properties, dataset_rank(k), chunk) >= 0 &&
        H5Pset_shuffle(properties) >= 0 && H5Pset_deflate(properties, DEFLATE_LEVEL) >= 0 &&
        H5Pset_obj_track_times(properties, false) >= 0)
        dataset = H5Dcreate2(f->file, DATASETS[k].name, H5T_STD_I32LE, space, H5P_DEFAULT, properties, H5P_DEFAULT);
    if (properties >= 0) H5Pclose(properties);
    if (space >= 0) H5Sclose(space);
    return dataset;
}

static int create_shard(shard_file *f, char *err, size_t err_len) {
    f->file = H5Fcreate(f->path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f->file < 0) {
        snprintf(err, err_len, "%s: cannot create the shard", f->path);
        return 2;
    }
    for (int k = 0; k < N_DATASETS; k++)
        if ((f->datasets[k] = create_dataset(f, k)) < 0) {
            snprintf(err, err_len, "%s: cannot create dataset %s", f->path, DATASETS[k].name);
            return 2;
        }
    return 0;
}

int ob_bert_shard_create(const char *path, int64_t rows, int seq_len, int max_pred, ob_bert_shard_writer **out,
                         char *err, size_t err_len) {
    *out = NULL;
    if (rows < 1 || seq_len < 1 || seq_len > MAX_WIDTH || max_pred < 1 || max_pred > seq_len) {
        snprintf(err, err_len, "%s: bad shard shape: %lld rows of %d tokens with %d predictions", path, (long long)rows,
                 seq_len, max_pred);
        return 2;
    }
    ob_bert_shard_writer *writer = calloc(1, sizeof *writer);
    if (!writer || !shard_file_init(&writer->f, path)) {
        free(writer);
        return 1;
    }
    writer->f.rows = rows;
    writer->f.seq_len = seq_len;
    writer->f.max_pred = max_pred;
    int rc;
    H5E_BEGIN_TRY { rc = create_shard(&writer->f, err, err_len); }
    H5E_END_TRY
    if (rc) {
        ob_bert_shard_finish(writer, NULL, 0);
        return rc;
    }
    *out = writer;
    return 0;
}

/* batch's masked_lm_ids with -1 (padding) stored as 0. */
static const int32_t *stored_masked_ids(ob_bert_shard_writer *writer, const int32_t *ids, size_t count) {
    if (count > writer->stored_capacity) {
        int32_t *grown = realloc(writer->stored_ids, count * sizeof *grown);
        if (!grown) return NULL;
        writer->stored_ids = grown;
        writer->stored_capacity = count;
    }
    for (size_t i = 0; i < count; i++) writer->stored_ids[i] = ids[i] < 0 ? 0 : ids[i];
    return writer->stored_ids;
}

int ob_bert_shard_write(ob_bert_shard_writer *writer, int64_t start, int64_t n, const ob_bert_batch *batch, char *err,
                        size_t err_len) {
    const shard_file *f = &writer->f;
    if (check_row_range(f, start, n, "written", err, err_len)) return 2;
    const int32_t *ids = stored_masked_ids(writer, batch->masked_lm_ids, (size_t)(n * f->max_pred));
    if (!ids) return 1;
    int failed = -1;
    H5E_BEGIN_TRY {
        for (int k = 0; k < N_DATASETS && failed < 0; k++)
            if (transfer_rows(f, k, start, n, k == MASKED_LM_IDS ? ids : batch_field(batch, k), NULL) != 0) failed = k;
    }
    H5E_END_TRY
    if (failed >= 0) {
        snprintf(err, err_len, "%s: dataset %s: cannot write rows [%lld, %lld) (disk full?)", f->path,
                 DATASETS[failed].name, (long long)start, (long long)(start + n));
        return 2;
    }
    return 0;
}

int ob_bert_shard_finish(ob_bert_shard_writer *writer, char *err, size_t err_len) {
    if (!writer) return 0;
    bool closed = shard_file_close(&writer->f);
    if (!closed && err) snprintf(err, err_len, "%s: cannot finish writing the shard (disk full?)", writer->f.path);
    free(writer->f.path);
    free(writer->stored_ids);
    free(writer);
    return closed ? 0 : 2;
}
