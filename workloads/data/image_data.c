#include "workloads/data/ob_image_data.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ob_rng.h"
#include "workloads/data/ob_batch_plan.h"
#include "workloads/data/ob_idx.h"

/* The shuffle draws ob_rng_below(i + 1) with a uint32 bound, and a split
 * this large is beyond any in-memory dataset anyway. */
#define MAX_SAMPLES INT32_MAX
/* Keeps height * width * channels below 2^40 and every side inside int. */
#define MAX_SIDE 65536
#define MAX_CHANNELS 256
/* Floats per split: 4 TiB of pixels is a mistake, not a dataset, and the
 * bound keeps every byte count and rng index far from overflow. */
#define MAX_SPLIT_ELEMENTS ((int64_t)1 << 40)
#define MAX_PATH_LEN 4096

/* Steps of the OB_RNG_SYNTHETIC_DATA stream, one per thing drawn. */
enum { SYNTHETIC_TRAIN_IMAGES, SYNTHETIC_TRAIN_LABELS, SYNTHETIC_EVAL_IMAGES, SYNTHETIC_EVAL_LABELS };
/* Draws of the OB_RNG_AUGMENT stream at each position of an epoch's order. */
enum { DRAW_CROP_Y, DRAW_CROP_X, DRAW_FLIP, DRAWS_PER_POSITION };

struct ob_image_data {
    int height, width, channels, classes;
    int64_t train_size, eval_size;
    float *train_images, *eval_images; /* NHWC, normalised */
    int32_t *train_labels, *eval_labels;
    double *channel_mean, *channel_std; /* raw units: stored = (raw - mean) / std */
    float *fill_value;                  /* per channel: raw 0 normalised, the crop's padding */
    /* Behind a pointer so the const batch API can refill it once per epoch. */
    ob_epoch_order *order;
    int64_t charged_bytes;
};

static int64_t sample_elements(const ob_image_data *data) {
    return (int64_t)data->height * data->width * data->channels;
}

/* ---- construction ---------------------------------------------------- */

/* malloc that never asks for 0 bytes, so an empty split still succeeds. */
static void *alloc_elements(int64_t count, size_t size, int64_t *charged) {
    size_t bytes = count > 0 ? (size_t)count * size : 1;
    *charged += (int64_t)bytes;
    return malloc(bytes);
}

static int check_split_size(const char *what, int64_t samples, int64_t per_sample, char *err,
                            size_t err_len) {
    if (samples < 0 || samples > MAX_SAMPLES || samples > MAX_SPLIT_ELEMENTS / per_sample) {
        snprintf(err, err_len,
                 "%s: %" PRId64 " samples of %" PRId64
                 " values: expected 0 to %d samples and at most %" PRId64 " values",
                 what, samples, per_sample, MAX_SAMPLES, MAX_SPLIT_ELEMENTS);
        return 2;
    }
    return 0;
}

static int check_image_shape(const char *what, int64_t height, int64_t width, int64_t channels, int classes,
                             char *err, size_t err_len) {
    bool ok = height >= 1 && height <= MAX_SIDE && width >= 1 && width <= MAX_SIDE && channels >= 1 &&
              channels <= MAX_CHANNELS && classes >= 1;
    if (!ok) {
        snprintf(err, err_len,
                 "%s: images %" PRId64 "x%" PRId64 "x%" PRId64 " with %d classes: expected height and width "
                 "1 to %d, channels 1 to %d, classes >= 1",
                 what, height, width, channels, classes, MAX_SIDE, MAX_CHANNELS);
        return 2;
    }
    return 0;
}

static void dataset_free_arrays(ob_image_data *data) {
    free(data->train_images);
    free(data->eval_images);
    free(data->train_labels);
    free(data->eval_labels);
    free(data->channel_mean);
    free(data->channel_std);
    free(data->fill_value);
    if (data->order) free(data->order->sample_at);
    free(data->order);
    free(data);
}

/* Allocates every array (contents unset) and charges them to OB_MEM_DATA.
 * Sizes are checked by the caller. */
static int dataset_new(ob_ctx *ctx, int64_t train_size, int64_t eval_size, int height, int width,
                       int channels, int classes, ob_image_data **out, char *err, size_t err_len) {
    ob_image_data *data = malloc(sizeof *data);
    *out = NULL;
    if (!data) {
        snprintf(err, err_len, "image dataset: out of memory");
        return 2;
    }
    *data = (ob_image_data){.height = height,
                            .width = width,
                            .channels = channels,
                            .classes = classes,
                            .train_size = train_size,
                            .eval_size = eval_size};
    int64_t per_sample = sample_elements(data), bytes = (int64_t)sizeof *data;
    data->train_images = alloc_elements(train_size * per_sample, sizeof(float), &bytes);
    data->eval_images = alloc_elements(eval_size * per_sample, sizeof(float), &bytes);
    data->train_labels = alloc_elements(train_size, sizeof(int32_t), &bytes);
    data->eval_labels = alloc_elements(eval_size, sizeof(int32_t), &bytes);
    data->channel_mean = alloc_elements(channels, sizeof(double), &bytes);
    data->channel_std = alloc_elements(channels, sizeof(double), &bytes);
    data->fill_value = alloc_elements(channels, sizeof(float), &bytes);
    data->order = calloc(1, sizeof *data->order);
    bytes += (int64_t)sizeof *data->order;
    if (data->order) {
        data->order->samples = train_size;
        data->order->sample_at = alloc_elements(train_size, sizeof(int64_t), &bytes);
    }
    bool complete = data->train_images && data->eval_images && data->train_labels && data->eval_labels &&
                    data->channel_mean && data->channel_std && data->fill_value && data->order &&
                    data->order->sample_at;
    if (!complete) {
        dataset_free_arrays(data);
        snprintf(err, err_len, "image dataset: out of memory for %" PRId64 " bytes", bytes);
        return 2;
    }
    data->charged_bytes = bytes;
    ob_mem_charge(ctx, OB_MEM_DATA, bytes);
    *out = data;
    return 0;
}

void ob_image_data_free(ob_ctx *ctx, ob_image_data *data) {
    if (!data) return;
    ob_mem_charge(ctx, OB_MEM_DATA, -data->charged_bytes);
    dataset_free_arrays(data);
}

/* ---- Fashion-MNIST --------------------------------------------------- */

typedef struct {
    char images_path[MAX_PATH_LEN], labels_path[MAX_PATH_LEN];
    ob_idx_array images, labels;
} idx_split;

static void idx_split_free(idx_split *split) {
    ob_idx_free(&split->images);
    ob_idx_free(&split->labels);
}

static int join_path(char *path, const char *dir, const char *prefix, const char *suffix, char *err,
                     size_t err_len) {
    int len = snprintf(path, MAX_PATH_LEN, "%s/%s%s", dir, prefix, suffix);
    if (len < 0 || len >= MAX_PATH_LEN) {
        snprintf(err, err_len, "%s: path too long: expected under %d characters", dir, MAX_PATH_LEN);
        return 2;
    }
    return 0;
}

static int check_labels(const idx_split *split, int classes, char *err, size_t err_len) {
    if (split->labels.numel != split->images.dims[0]) {
        snprintf(err, err_len,
                 "%s has %" PRId64 " labels but %s has %" PRId64 " images: expected equal counts",
                 split->labels_path, split->labels.numel, split->images_path, split->images.dims[0]);
        return 2;
    }
    for (int64_t i = 0; i < split->labels.numel; i++) {
        if (split->labels.data[i] >= classes) {
            snprintf(err, err_len, "%s: label %d at index %" PRId64 ": expected labels below %d",
                     split->labels_path, split->labels.data[i], i, classes);
            return 2;
        }
    }
    return 0;
}

/* Reads DIR/PREFIX-images-idx3-ubyte.gz and its labels; prefix is "train" or "t10k". */
static int read_split(const char *dir, const char *prefix, idx_split *split, char *err, size_t err_len) {
    int status = join_path(split->images_path, dir, prefix, "-images-idx3-ubyte.gz", err, err_len);
    if (!status) status = join_path(split->labels_path, dir, prefix, "-labels-idx1-ubyte.gz", err, err_len);
    if (!status) status = ob_idx_read(split->images_path, 3, &split->images, err, err_len);
    if (!status) status = ob_idx_read(split->labels_path, 1, &split->labels, err, err_len);
    if (!status) status = check_labels(split, OB_FASHION_MNIST_CLASSES, err, err_len);
    return status;
}

static int check_same_image_size(const idx_split *train, const idx_split *test, char *err, size_t err_len) {
    const int64_t *a = train->images.dims, *b = test->images.dims;
    if (a[1] == b[1] && a[2] == b[2]) return 0;
    snprintf(err, err_len,
             "%s has %" PRId64 "x%" PRId64 " images but %s has %" PRId64 "x%" PRId64
             ": expected the same size",
             train->images_path, a[1], a[2], test->images_path, b[1], b[2]);
    return 2;
}

/* Zero padding added on each side of one axis to reach pad_to (0 = none). */
static int padding_for(int pad_to, int64_t side, const char *path, int *pad, char *err, size_t err_len) {
    if (pad_to == 0) {
        *pad = 0;
        return 0;
    }
    int64_t extra = pad_to - side;
    if (extra < 0 || extra % 2 != 0) {
        snprintf(err, err_len,
                 "pad_to %d: expected 0 or a size >= %" PRId64 " leaving equal padding on each side of %s's "
                 "%" PRId64 "-pixel sides",
                 pad_to, side, path, side);
        return 2;
    }
    *pad = (int)(extra / 2);
    return 0;
}

static int64_t limit_count(int64_t available, int64_t limit) {
    return limit > 0 && limit < available ? limit : available;
}

/* Mean and std of the first n images after padding (padding pixels are raw
 * 0), from a histogram of byte values: exact integer sums, so the result
 * does not depend on summation order or thread count. */
static void padded_pixel_stats(const ob_idx_array *images, int64_t n, int64_t padded_pixels, double *mean,
                               double *std) {
    int64_t histogram[256] = {0};
    int64_t raw_pixels = n * images->dims[1] * images->dims[2];
    for (int64_t i = 0; i < raw_pixels; i++) histogram[images->data[i]]++;
    int64_t total = n * padded_pixels;
    histogram[0] += total - raw_pixels;
    double sum = 0, squares = 0;
    for (int v = 0; v < 256; v++) sum += (double)v * histogram[v];
    *mean = total > 0 ? sum / total : 0;
    for (int v = 0; v < 256; v++) squares += (v - *mean) * (v - *mean) * histogram[v];
    *std = total > 0 ? sqrt(squares / total) : 0;
    /* A constant training set has std 0; leave its scale alone rather than divide by 0. */
    if (*std == 0) *std = 1;
}

/* Pads the first n uint8 images by `pad` px of raw 0 and normalises them
 * through `normalised` (a table over the 256 byte values). */
static void normalise_images(const ob_idx_array *raw, int64_t n, int pad_y, int pad_x,
                             const float normalised[256], ob_image_data *data, float *dst) {
    int64_t raw_h = raw->dims[1], raw_w = raw->dims[2];
    int h = data->height, w = data->width;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *src = raw->data + i * raw_h * raw_w;
        float *out = dst + i * h * w;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int64_t sy = y - pad_y, sx = x - pad_x;
                bool inside = sy >= 0 && sy < raw_h && sx >= 0 && sx < raw_w;
                out[y * w + x] = normalised[inside ? src[sy * raw_w + sx] : 0];
            }
        }
    }
}

static void copy_labels(const ob_idx_array *raw, int64_t n, int32_t *dst) {
    for (int64_t i = 0; i < n; i++) dst[i] = raw->data[i];
}

/* Fills a freshly allocated single-channel dataset from the two splits. */
static void fill_from_idx(ob_image_data *data, const idx_split *train, const idx_split *test, int pad_y,
                          int pad_x) {
    double mean, std;
    padded_pixel_stats(&train->images, data->train_size, sample_elements(data), &mean, &std);
    float normalised[256];
    for (int v = 0; v < 256; v++) normalised[v] = (float)((v - mean) / std);
    data->channel_mean[0] = mean;
    data->channel_std[0] = std;
    data->fill_value[0] = normalised[0];
    normalise_images(&train->images, data->train_size, pad_y, pad_x, normalised, data, data->train_images);
    normalise_images(&test->images, data->eval_size, pad_y, pad_x, normalised, data, data->eval_images);
    copy_labels(&train->labels, data->train_size, data->train_labels);
    copy_labels(&test->labels, data->eval_size, data->eval_labels);
}

static int check_config(const ob_image_data_config *config, char *err, size_t err_len) {
    if (!config || !config->dir) {
        snprintf(err, err_len, "Fashion-MNIST: no directory given: expected the folder of its 4 .gz files");
        return 2;
    }
    if (config->train_limit < 0 || config->eval_limit < 0) {
        snprintf(err, err_len, "%s: train_limit %" PRId64 ", eval_limit %" PRId64 ": expected >= 0 (0 = all)",
                 config->dir, config->train_limit, config->eval_limit);
        return 2;
    }
    return 0;
}

/* Everything that can fail after the files are read: sizes, then memory. */
static int build_from_idx(ob_ctx *ctx, const ob_image_data_config *config, const idx_split *train,
                          const idx_split *test, ob_image_data **out, char *err, size_t err_len) {
    const char *path = train->images_path;
    const int64_t *dims = train->images.dims;
    int pad_y = 0, pad_x = 0;
    int status = check_same_image_size(train, test, err, err_len);
    if (!status) status = padding_for(config->pad_to, dims[1], path, &pad_y, err, err_len);
    if (!status) status = padding_for(config->pad_to, dims[2], path, &pad_x, err, err_len);
    int64_t height = dims[1] + 2 * pad_y, width = dims[2] + 2 * pad_x;
    if (!status) status = check_image_shape(path, height, width, 1, OB_FASHION_MNIST_CLASSES, err, err_len);
    int64_t train_size = limit_count(dims[0], config->train_limit);
    int64_t eval_size = limit_count(test->images.dims[0], config->eval_limit);
    if (!status) status = check_split_size(path, train_size, height * width, err, err_len);
    if (!status) status = check_split_size(test->images_path, eval_size, height * width, err, err_len);
    if (!status)
        status = dataset_new(ctx, train_size, eval_size, (int)height, (int)width, 1, OB_FASHION_MNIST_CLASSES,
                             out, err, err_len);
    if (!status) fill_from_idx(*out, train, test, pad_y, pad_x);
    return status;
}

int ob_image_data_load_fashion_mnist(ob_ctx *ctx, const ob_image_data_config *config, ob_image_data **out,
                                     char *err, size_t err_len) {
    *out = NULL;
    int status = check_config(config, err, err_len);
    if (status) return status;
    /* Two path buffers each: too big for comfort on the stack. */
    idx_split *splits = calloc(2, sizeof *splits);
    if (!splits) {
        snprintf(err, err_len, "%s: out of memory", config->dir);
        return 2;
    }
    status = read_split(config->dir, "train", &splits[0], err, err_len);
    if (!status) status = read_split(config->dir, "t10k", &splits[1], err, err_len);
    if (!status) status = build_from_idx(ctx, config, &splits[0], &splits[1], out, err, err_len);
    idx_split_free(&splits[0]);
    idx_split_free(&splits[1]);
    free(splits);
    return status;
}

/* ---- synthetic ------------------------------------------------------- */

static void fill_synthetic_split(uint64_t seed, uint64_t images_step, uint64_t labels_step, int64_t n,
                                 int64_t per_sample, int classes, float *images, int32_t *labels) {
    ob_rng_stream image_stream = ob_rng_stream_make(seed, OB_RNG_SYNTHETIC_DATA, 0, images_step);
    ob_rng_stream label_stream = ob_rng_stream_make(seed, OB_RNG_SYNTHETIC_DATA, 0, labels_step);
    int64_t values = n * per_sample;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < values; i++) images[i] = (float)ob_rng_normal(&image_stream, (uint64_t)i);
    for (int64_t i = 0; i < n; i++)
        labels[i] = (int32_t)ob_rng_below(&label_stream, (uint64_t)i, (uint32_t)classes);
}

int ob_image_data_synthetic(ob_ctx *ctx, int64_t n_train, int64_t n_eval, int height, int width, int channels,
                            int classes, uint64_t seed, ob_image_data **out, char *err, size_t err_len) {
    *out = NULL;
    int status = check_image_shape("synthetic data", height, width, channels, classes, err, err_len);
    int64_t per_sample = (int64_t)height * width * channels;
    if (!status) status = check_split_size("synthetic training set", n_train, per_sample, err, err_len);
    if (!status) status = check_split_size("synthetic evaluation set", n_eval, per_sample, err, err_len);
    if (!status)
        status = dataset_new(ctx, n_train, n_eval, height, width, channels, classes, out, err, err_len);
    if (status) return status;
    ob_image_data *data = *out;
    fill_synthetic_split(seed, SYNTHETIC_TRAIN_IMAGES, SYNTHETIC_TRAIN_LABELS, n_train, per_sample, classes,
                         data->train_images, data->train_labels);
    fill_synthetic_split(seed, SYNTHETIC_EVAL_IMAGES, SYNTHETIC_EVAL_LABELS, n_eval, per_sample, classes,
                         data->eval_images, data->eval_labels);
    for (int c = 0; c < channels; c++) {
        data->channel_mean[c] = 0;
        data->channel_std[c] = 1;
        data->fill_value[c] = 0;
    }
    return 0;
}

/* ---- accessors ------------------------------------------------------- */

int64_t ob_image_data_train_size(const ob_image_data *data) { return data->train_size; }
int64_t ob_image_data_eval_size(const ob_image_data *data) { return data->eval_size; }
int ob_image_data_height(const ob_image_data *data) { return data->height; }
int ob_image_data_width(const ob_image_data *data) { return data->width; }
int ob_image_data_channels(const ob_image_data *data) { return data->channels; }
int ob_image_data_classes(const ob_image_data *data) { return data->classes; }

void ob_image_data_normalisation(const ob_image_data *data, double *mean, double *std) {
    *mean = data->channel_mean[0];
    *std = data->channel_std[0];
}

/* ---- batches --------------------------------------------------------- */

int64_t ob_image_data_batches_per_epoch(const ob_image_data *data, int64_t global_batch) {
    return ob_batches_per_epoch(data->train_size, global_batch);
}

/* Where output pixel (y, x) reads from: source (y + shift_y, x' + shift_x)
 * with x' = width - 1 - x when flipped, i.e. a crop of the padded image at
 * offset (pad + shift) followed by the flip. */
typedef struct {
    int shift_y, shift_x;
    bool flip;
} sample_transform;

static sample_transform transform_at(const ob_rng_stream *stream, int64_t position,
                                     const ob_augment_config *augment) {
    sample_transform transform = {0, 0, false};
    if (!augment || !augment->augment) return transform;
    uint64_t draw = (uint64_t)position * DRAWS_PER_POSITION;
    int pad = augment->crop_padding;
    if (pad > 0) {
        uint32_t offsets = 2 * (uint32_t)pad + 1;
        transform.shift_y = (int)ob_rng_below(stream, draw + DRAW_CROP_Y, offsets) - pad;
        transform.shift_x = (int)ob_rng_below(stream, draw + DRAW_CROP_X, offsets) - pad;
    }
    if (augment->hflip) transform.flip = ob_rng_below(stream, draw + DRAW_FLIP, 2) == 1;
    return transform;
}

static void write_transformed(const ob_image_data *data, const float *src, sample_transform t, float *out) {
    int h = data->height, w = data->width, c = data->channels;
    if (t.shift_y == 0 && t.shift_x == 0 && !t.flip) {
        memcpy(out, src, (size_t)sample_elements(data) * sizeof(float));
        return;
    }
    for (int y = 0; y < h; y++) {
        int sy = y + t.shift_y;
        for (int x = 0; x < w; x++) {
            int sx = (t.flip ? w - 1 - x : x) + t.shift_x;
            bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
            const float *pixel = inside ? src + ((int64_t)sy * w + sx) * c : data->fill_value;
            float *target = out + ((int64_t)y * w + x) * c;
            for (int k = 0; k < c; k++) target[k] = pixel[k];
        }
    }
}

static int check_train_request(const ob_image_data *data, int64_t epoch, int64_t batch_index,
                               int64_t global_batch, int rank, int world_size,
                               const ob_augment_config *augment, char *err, size_t err_len) {
    int status = ob_train_request_check(data->train_size, epoch, batch_index, global_batch, rank, world_size,
                                        err, err_len);
    if (status) return status;
    int max_pad = data->height < data->width ? data->height : data->width;
    if (augment && augment->augment && (augment->crop_padding < 0 || augment->crop_padding > max_pad)) {
        snprintf(err, err_len, "crop padding %d: expected 0 to %d (the image's shorter side)",
                 augment->crop_padding, max_pad);
        return 2;
    }
    return 0;
}

static int check_batch_tensors(const ob_image_data *data, int64_t rows, bool exact_rows,
                               const ob_tensor *images, const ob_tensor *labels, char *err, size_t err_len) {
    return ob_batch_tensors_check(data->height, data->width, data->channels, rows, exact_rows, images, labels,
                                  err, err_len);
}

int ob_image_data_train_batch(const ob_image_data *data, uint64_t seed, int64_t epoch, int64_t batch_index,
                              int64_t global_batch, int rank, int world_size,
                              const ob_augment_config *augment, ob_tensor *images, ob_tensor *labels,
                              char *err, size_t err_len) {
    int status =
        check_train_request(data, epoch, batch_index, global_batch, rank, world_size, augment, err, err_len);
    if (status) return status;
    int64_t local_batch = global_batch / world_size;
    status = check_batch_tensors(data, local_batch, true, images, labels, err, err_len);
    if (status) return status;
    const int64_t *sample_at = ob_epoch_order_get(data->order, seed, epoch);
    ob_rng_stream stream = ob_rng_stream_make(seed, OB_RNG_AUGMENT, 0, (uint64_t)epoch);
    int64_t first_position = batch_index * global_batch + rank * local_batch,
            per_sample = sample_elements(data);
    float *image_rows = ob_f32(images);
    int32_t *label_rows = labels->data;
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < local_batch; row++) {
        int64_t position = first_position + row, sample = sample_at[position];
        write_transformed(data, data->train_images + sample * per_sample,
                          transform_at(&stream, position, augment), image_rows + row * per_sample);
        label_rows[row] = data->train_labels[sample];
    }
    return 0;
}

void ob_image_data_eval_shard(const ob_image_data *data, int rank, int world_size, int64_t *start,
                              int64_t *count) {
    ob_eval_shard(data->eval_size, rank, world_size, start, count);
}

int ob_image_data_eval_batch(const ob_image_data *data, int64_t first, int64_t count, ob_tensor *images,
                             ob_tensor *labels) {
    if (first < 0 || count < 0 || first > data->eval_size - count) return 2;
    if (check_batch_tensors(data, count, false, images, labels, NULL, 0)) return 2;
    int64_t per_sample = sample_elements(data);
    memcpy(images->data, data->eval_images + first * per_sample,
           (size_t)(count * per_sample) * sizeof(float));
    memcpy(labels->data, data->eval_labels + first, (size_t)count * sizeof(int32_t));
    return 0;
}
