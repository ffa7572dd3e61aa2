#include "workloads/data/ob_image_folder.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ob_rng.h"
#include "workloads/data/ob_batch_plan.h"
#include "workloads/data/ob_image_crop.h"
#include "workloads/data/ob_image_list.h"
#include "workloads/data/ob_jpeg.h"
#include "workloads/data/ob_row_pool.h"

#define MAX_PATH_LEN 4096
/* DIR's longest name: what is left of a path for "/train/<class>/<file>". */
#define MAX_DIR_LEN (MAX_PATH_LEN / 2)
#define MAX_WORKERS 256
#define ERROR_LEN 1024
#define NO_ERROR INT64_MAX
/* The shuffle draws ob_rng_below(i + 1) with a uint32 bound. */
#define MAX_TRAIN_IMAGES INT32_MAX

/* Draws of the OB_RNG_AUGMENT stream at each position of an epoch's order. */
enum { DRAW_CROP = 0, DRAW_FLIP = OB_RRC_DRAWS, DRAWS_PER_POSITION };

/* One batch's worth of rows for the row pool: which image goes to which
 * row, and where the pixels go. Each row writes only its own output and, on
 * failure, its worker's error slot, so workers never share a write. */
typedef struct {
    ob_image_folder *folder;
    const ob_image_list *list;
    const char *split; /* "train" or "val" */
    bool random_crop, flip;
    ob_rng_stream stream;
    int64_t rows, capacity;
    int64_t *image_at, *position; /* per row: index in list, position in the epoch's order */
    float *images;
    int32_t *labels;
    int64_t *error_row;       /* per worker: lowest failed row, NO_ERROR if none */
    char (*error)[ERROR_LEN]; /* per worker: that row's message */
} decode_job;

/* What identifies a training batch, so a prefetched one is only handed out for the same request. */
typedef struct {
    uint64_t seed;
    int64_t epoch, batch_index, global_batch;
    int rank, world_size;
    bool random_crop, flip;
} batch_key;

struct ob_image_folder {
    ob_ctx *ctx;
    char dir[MAX_DIR_LEN];
    int side, eval_resize, workers;
    ob_class_list classes;
    ob_image_list train, eval;
    ob_epoch_order order;
    ob_row_pool *pool;
    ob_rgb8_image *scratch; /* per worker, the caller last */
    decode_job train_job, eval_job;
    float *prefetch_images; /* train_job's output: room for prefetch_rows rows */
    int32_t *prefetch_labels;
    int64_t prefetch_rows;
    batch_key pending; /* the batch train_job holds or is decoding */
    bool pending_valid;
    int64_t charged_bytes;
};

static int64_t sample_values(const ob_image_folder *f) { return (int64_t)f->side * f->side * 3; }

/* ---- memory accounting -------------------------------------------------- */

static int64_t job_bytes(const ob_image_folder *f, const decode_job *job) {
    int64_t slots = f->workers + 1;
    return job->capacity * 2 * (int64_t)sizeof(int64_t) + slots * ((int64_t)sizeof(int64_t) + ERROR_LEN);
}

/* Brings the OB_MEM_DATA charge up to date with what the folder holds now
 * (scratch buffers grow inside the workers, which must not touch ctx). */
static void charge_held(ob_image_folder *f) {
    int64_t bytes = (int64_t)sizeof *f + (int64_t)(f->train.bytes + f->eval.bytes) +
                    f->order.samples * (int64_t)sizeof(int64_t) + job_bytes(f, &f->train_job) +
                    job_bytes(f, &f->eval_job) +
                    f->prefetch_rows * (sample_values(f) * (int64_t)sizeof(float) + (int64_t)sizeof(int32_t));
    for (int i = 0; i <= f->workers; i++) bytes += (int64_t)f->scratch[i].capacity;
    for (int i = 0; i < f->classes.count; i++) bytes += (int64_t)strlen(f->classes.names[i]) + 1;
    ob_mem_charge(f->ctx, OB_MEM_DATA, bytes - f->charged_bytes);
    f->charged_bytes = bytes;
}

/* ---- decoding one sample ------------------------------------------------ */

static int decode_sample(decode_job *job, int64_t row, ob_rgb8_image *scratch, char *err, size_t err_len) {
    ob_image_folder *f = job->folder;
    const char *name = ob_image_list_path(job->list, job->image_at[row]);
    char path[MAX_PATH_LEN];
    int len = snprintf(path, sizeof path, "%s/%s/%s", f->dir, job->split, name);
    if (len < 0 || len >= (int)sizeof path) {
        snprintf(err, err_len, "%.400s/%s/%.400s: path too long: expected under %d characters", f->dir,
                 job->split, name, MAX_PATH_LEN);
        return 2;
    }
    ob_jpeg_file *file;
    int width, height;
    int status = ob_jpeg_open(path, &file, &width, &height, err, err_len);
    if (status) return status;
    uint64_t first_draw = (uint64_t)job->position[row] * DRAWS_PER_POSITION;
    ob_crop_box box = job->random_crop
                          ? ob_random_resized_crop(width, height, &job->stream, first_draw + DRAW_CROP)
                          : ob_center_crop_box(width, height, f->eval_resize, f->side);
    status = ob_jpeg_read(file, ob_dct_scale_denom(box, f->side), scratch, err, err_len);
    ob_jpeg_close(file);
    if (status) return status;
    bool flip = job->flip && ob_rng_below(&job->stream, first_draw + DRAW_FLIP, 2) == 1;
    box = ob_crop_box_scaled(box, width, height, scratch->width, scratch->height);
    ob_resample_box(scratch, box, f->side, flip, &ob_imagenet_norm, job->images + row * sample_values(f));
    return 0;
}

static void decode_row(void *job_arg, int64_t row, int worker) {
    decode_job *job = job_arg;
    job->labels[row] = job->list->label[job->image_at[row]];
    char err[ERROR_LEN];
    if (decode_sample(job, row, &job->folder->scratch[worker], err, sizeof err) == 0) return;
    if (row < job->error_row[worker]) {
        job->error_row[worker] = row;
        memcpy(job->error[worker], err, sizeof err);
    }
}

/* The error of the job's lowest failed row, whichever worker had it, so the
 * message does not depend on scheduling. */
static int job_status(const ob_image_folder *f, const decode_job *job, char *err, size_t err_len) {
    int first = -1;
    for (int w = 0; w <= f->workers; w++)
        if (job->error_row[w] != NO_ERROR && (first < 0 || job->error_row[w] < job->error_row[first]))
            first = w;
    if (first < 0) return 0;
    snprintf(err, err_len, "%s", job->error[first]);
    return 2;
}

/* ---- jobs --------------------------------------------------------------- */

static bool job_init(decode_job *job, ob_image_folder *f, const ob_image_list *list, const char *split) {
    *job = (decode_job){.folder = f, .list = list, .split = split};
    job->error_row = calloc((size_t)f->workers + 1, sizeof *job->error_row);
    job->error = calloc((size_t)f->workers + 1, sizeof *job->error);
    return job->error_row && job->error;
}

static void job_free(decode_job *job) {
    free(job->image_at);
    free(job->position);
    free(job->error_row);
    free(job->error);
}

/* realloc that leaves the array as it was when memory runs out. */
static bool resize_array(void **array, size_t bytes) {
    void *resized = realloc(*array, bytes);
    if (!resized) return false;
    *array = resized;
    return true;
}

static bool job_reserve(decode_job *job, int64_t rows) {
    if (rows <= job->capacity) return true;
    if (!resize_array((void **)&job->image_at, (size_t)rows * sizeof *job->image_at) ||
        !resize_array((void **)&job->position, (size_t)rows * sizeof *job->position))
        return false;
    job->capacity = rows;
    return true;
}

static void job_start(ob_image_folder *f, decode_job *job, int64_t rows) {
    job->rows = rows;
    for (int w = 0; w <= f->workers; w++) job->error_row[w] = NO_ERROR;
    ob_row_pool_start(f->pool, decode_row, job, rows);
}

static bool prefetch_reserve(ob_image_folder *f, int64_t rows) {
    if (rows <= f->prefetch_rows) return true;
    size_t values = (size_t)(rows * sample_values(f));
    if (!resize_array((void **)&f->prefetch_images, values * sizeof *f->prefetch_images) ||
        !resize_array((void **)&f->prefetch_labels, (size_t)rows * sizeof *f->prefetch_labels))
        return false;
    f->prefetch_rows = rows;
    return true;
}

/* Starts decoding the batch `key` names into the prefetch buffer. The pool
 * must be idle. Returns 0, or 2 when out of memory. */
static int start_train_job(ob_image_folder *f, const batch_key *key, char *err, size_t err_len) {
    int64_t local = key->global_batch / key->world_size;
    decode_job *job = &f->train_job;
    if (!prefetch_reserve(f, local) || !job_reserve(job, local)) {
        snprintf(err, err_len, "%s: out of memory for a batch of %" PRId64 " images", f->dir, local);
        f->pending_valid = false;
        return 2;
    }
    const int64_t *sample_at = ob_epoch_order_get(&f->order, key->seed, key->epoch);
    int64_t first = key->batch_index * key->global_batch + key->rank * local;
    for (int64_t row = 0; row < local; row++) {
        job->position[row] = first + row;
        job->image_at[row] = sample_at[first + row];
    }
    job->random_crop = key->random_crop;
    job->flip = key->flip;
    job->stream = ob_rng_stream_make(key->seed, OB_RNG_AUGMENT, 0, (uint64_t)key->epoch);
    job->images = f->prefetch_images;
    job->labels = f->prefetch_labels;
    f->pending = *key;
    f->pending_valid = true;
    job_start(f, job, local);
    return 0;
}

/* The batch after `key` in training order, if there is one. */
static bool next_batch_key(const ob_image_folder *f, const batch_key *key, batch_key *next) {
    *next = *key;
    next->batch_index++;
    if (next->batch_index < ob_batches_per_epoch(f->train.count, key->global_batch)) return true;
    next->batch_index = 0;
    next->epoch++;
    return next->epoch < OB_MAX_EPOCH;
}

/* ---- public ------------------------------------------------------------- */

static int check_config(const ob_image_folder_config *c, char *err, size_t err_len) {
    if (!c || !c->dir || !c->dir[0]) {
        snprintf(err, err_len, "ImageNet folder: no directory given: expected DIR holding train/ and val/");
        return 2;
    }
    bool ok = c->side >= 1 && c->side <= OB_CROP_MAX_SIDE && c->workers >= 0 && c->workers <= MAX_WORKERS &&
              (c->eval_resize == 0 || c->eval_resize >= c->side) && c->train_limit >= 0 &&
              c->eval_limit >= 0 && strlen(c->dir) < MAX_DIR_LEN;
    if (!ok) {
        snprintf(err, err_len,
                 "%s: side %d, eval resize %d, %d workers, limits %" PRId64 "/%" PRId64
                 ": expected side 1 to %d, eval resize 0 or >= side, 0 to %d workers, limits >= 0, "
                 "a path under %d characters",
                 c->dir, c->side, c->eval_resize, c->workers, c->train_limit, c->eval_limit, OB_CROP_MAX_SIDE,
                 MAX_WORKERS, MAX_DIR_LEN);
        return 2;
    }
    return 0;
}

/* Lists train/ and val/ into f. */
static int scan_folders(ob_image_folder *f, const ob_image_folder_config *c, char *err, size_t err_len) {
    char split_dir[MAX_DIR_LEN + 8];
    snprintf(split_dir, sizeof split_dir, "%s/train", f->dir);
    int status = ob_class_list_scan(split_dir, &f->classes, err, err_len);
    if (!status) status = ob_image_list_scan(split_dir, &f->classes, c->train_limit, &f->train, err, err_len);
    if (!status && f->train.count > MAX_TRAIN_IMAGES) {
        snprintf(err, err_len, "%s: %" PRId64 " images: expected at most %d", split_dir, f->train.count,
                 MAX_TRAIN_IMAGES);
        status = 2;
    }
    snprintf(split_dir, sizeof split_dir, "%s/val", f->dir);
    if (!status) status = ob_image_list_scan(split_dir, &f->classes, c->eval_limit, &f->eval, err, err_len);
    return status;
}

/* Everything but the listing: the epoch order, the workers and their buffers. */
static int build_runtime(ob_image_folder *f, char *err, size_t err_len) {
    f->order.samples = f->train.count;
    f->order.sample_at = malloc((size_t)f->train.count * sizeof *f->order.sample_at);
    f->scratch = calloc((size_t)f->workers + 1, sizeof *f->scratch);
    bool ok = f->order.sample_at && f->scratch && job_init(&f->train_job, f, &f->train, "train") &&
              job_init(&f->eval_job, f, &f->eval, "val");
    f->pool = ok ? ob_row_pool_new(f->workers) : NULL;
    if (!f->pool) {
        snprintf(err, err_len, "%s: cannot start %d decode workers: out of memory or threads", f->dir,
                 f->workers);
        return 2;
    }
    return 0;
}

static void folder_release(ob_image_folder *f) {
    ob_row_pool_free(f->pool);
    for (int i = 0; f->scratch && i <= f->workers; i++) ob_rgb8_image_free(&f->scratch[i]);
    free(f->scratch);
    job_free(&f->train_job);
    job_free(&f->eval_job);
    free(f->prefetch_images);
    free(f->prefetch_labels);
    free(f->order.sample_at);
    ob_image_list_free(&f->train);
    ob_image_list_free(&f->eval);
    ob_class_list_free(&f->classes);
    free(f);
}

int ob_image_folder_open(ob_ctx *ctx, const ob_image_folder_config *config, ob_image_folder **out, char *err,
                         size_t err_len) {
    *out = NULL;
    int status = check_config(config, err, err_len);
    if (status) return status;
    ob_image_folder *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, err_len, "%s: out of memory", config->dir);
        return 2;
    }
    f->ctx = ctx;
    snprintf(f->dir, sizeof f->dir, "%s", config->dir);
    f->side = config->side;
    f->eval_resize =
        config->eval_resize ? config->eval_resize : (int)lround(config->side * OB_EVAL_RESIZE_PER_SIDE);
    f->workers = config->workers;
    status = scan_folders(f, config, err, err_len);
    if (!status) status = build_runtime(f, err, err_len);
    if (status) {
        folder_release(f);
        return status;
    }
    charge_held(f);
    *out = f;
    return 0;
}

void ob_image_folder_free(ob_ctx *ctx, ob_image_folder *folder) {
    if (!folder) return;
    ob_mem_charge(ctx, OB_MEM_DATA, -folder->charged_bytes);
    folder_release(folder);
}

int64_t ob_image_folder_train_size(const ob_image_folder *folder) { return folder->train.count; }
int64_t ob_image_folder_eval_size(const ob_image_folder *folder) { return folder->eval.count; }
int ob_image_folder_side(const ob_image_folder *folder) { return folder->side; }
int ob_image_folder_classes(const ob_image_folder *folder) { return folder->classes.count; }
const char *ob_image_folder_class_name(const ob_image_folder *folder, int label) {
    return label >= 0 && label < folder->classes.count ? folder->classes.names[label] : NULL;
}

static bool same_batch(const batch_key *a, const batch_key *b) {
    return a->seed == b->seed && a->epoch == b->epoch && a->batch_index == b->batch_index &&
           a->global_batch == b->global_batch && a->rank == b->rank && a->world_size == b->world_size &&
           a->random_crop == b->random_crop && a->flip == b->flip;
}

static int check_augment(const ob_image_folder *f, const ob_augment_config *augment, char *err,
                         size_t err_len) {
    if (!augment || !augment->augment || augment->crop_padding == 0) return 0;
    snprintf(
        err, err_len,
        "data.crop_padding %d: expected 0 for the ImageNet folder %s (it crops with random-resized-crop)",
        augment->crop_padding, f->dir);
    return 2;
}

int ob_image_folder_train_batch(ob_image_folder *f, uint64_t seed, int64_t epoch, int64_t batch_index,
                                int64_t global_batch, int rank, int world_size,
                                const ob_augment_config *augment, ob_tensor *images, ob_tensor *labels,
                                char *err, size_t err_len) {
    int status = ob_train_request_check(f->train.count, epoch, batch_index, global_batch, rank, world_size,
                                        err, err_len);
    if (!status) status = check_augment(f, augment, err, err_len);
    int64_t local = global_batch / (world_size > 0 ? world_size : 1);
    if (!status)
        status = ob_batch_tensors_check(f->side, f->side, 3, local, true, images, labels, err, err_len);
    if (status) return status;
    bool random_crop = augment && augment->augment;
    batch_key key = {.seed = seed,
                     .epoch = epoch,
                     .batch_index = batch_index,
                     .global_batch = global_batch,
                     .rank = rank,
                     .world_size = world_size,
                     .random_crop = random_crop,
                     .flip = random_crop && augment->hflip};
    if (!(f->pending_valid && same_batch(&f->pending, &key))) {
        ob_row_pool_cancel(f->pool); /* a prefetch nobody asked for */
        status = start_train_job(f, &key, err, err_len);
    }
    if (!status) ob_row_pool_wait(f->pool);
    f->pending_valid = false;
    /* Now, while no worker runs: the scratch buffers may have grown. */
    charge_held(f);
    if (!status) status = job_status(f, &f->train_job, err, err_len);
    if (!status) {
        memcpy(ob_f32(images), f->prefetch_images, (size_t)(local * sample_values(f)) * sizeof(float));
        memcpy(labels->data, f->prefetch_labels, (size_t)local * sizeof(int32_t));
        batch_key next;
        char prefetch_err[ERROR_LEN];
        /* Without workers a prefetch would only be decoded at the next request anyway. One
         * that cannot start (memory) leaves the next request to decode, and report, itself. */
        if (f->workers > 0 && next_batch_key(f, &key, &next))
            start_train_job(f, &next, prefetch_err, sizeof prefetch_err);
    }
    return status;
}

int ob_image_folder_eval_batch(ob_image_folder *f, int64_t first, int64_t count, ob_tensor *images,
                               ob_tensor *labels, char *err, size_t err_len) {
    if (first < 0 || count < 0 || first > f->eval.count - count) {
        snprintf(err, err_len,
                 "evaluation batch [%" PRId64 ", +%" PRId64 "): expected inside the %" PRId64
                 " validation images of %s",
                 first, count, f->eval.count, f->dir);
        return 2;
    }
    int status = ob_batch_tensors_check(f->side, f->side, 3, count, false, images, labels, err, err_len);
    if (status) return status;
    decode_job *job = &f->eval_job;
    if (!job_reserve(job, count)) {
        snprintf(err, err_len, "%s: out of memory for a batch of %" PRId64 " images", f->dir, count);
        return 2;
    }
    for (int64_t row = 0; row < count; row++) {
        job->image_at[row] = first + row;
        job->position[row] = first + row;
    }
    job->images = ob_f32(images);
    job->labels = labels->data;
    ob_row_pool_wait(f->pool); /* a training prefetch in flight completes into its own buffer */
    job_start(f, job, count);
    ob_row_pool_wait(f->pool);
    charge_held(f);
    return job_status(f, job, err, err_len);
}
