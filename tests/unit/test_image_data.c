/* Image dataset: loading (a tiny IDX set written here, and the installed
 * Fashion-MNIST when present), normalisation, epoch orders that are
 * permutations, rank slices that tile the world-1 batch (augmentation
 * included), augmentation that is exactly a crop and/or a flip, and
 * evaluation shards; the same batch properties on synthetic data. */
#include "tests/unit/data_test_support.h" /* first: it sets _POSIX_C_SOURCE */

#include <math.h>
#include <omp.h>

#include "nn/ob_ctx.h"
#include "workloads/data/ob_idx.h"
#include "workloads/data/ob_image_data.h"

static ob_ctx *ctx;
static const ob_augment_config no_augment = {false, 0, false};

/* ---- batches gathered into one buffer ---------------------------------- */

typedef struct {
    int64_t count, per_sample;
    float *images;
    int32_t *labels;
} samples;

static samples samples_alloc(int64_t count, int64_t per_sample) {
    samples s = {count, per_sample, calloc((size_t)(count * per_sample), sizeof(float)),
                 calloc((size_t)count, sizeof(int32_t))};
    return s;
}

static void samples_free(samples *s) {
    free(s->images);
    free(s->labels);
}

static const float *sample_image(const samples *s, int64_t i) { return s->images + i * s->per_sample; }

static bool samples_equal(const samples *a, const samples *b) {
    return a->count == b->count && a->per_sample == b->per_sample &&
           memcmp(a->images, b->images, (size_t)(a->count * a->per_sample) * sizeof(float)) == 0 &&
           memcmp(a->labels, b->labels, (size_t)a->count * sizeof(int32_t)) == 0;
}

static int64_t per_sample_of(const ob_image_data *d) {
    return (int64_t)ob_image_data_height(d) * ob_image_data_width(d) * ob_image_data_channels(d);
}

/* Tensors over rows [first, first + rows) of s: the batch API writes only ->data. */
static void tensors_over(const ob_image_data *d, samples *s, int64_t first, int64_t rows, ob_tensor *images,
                         ob_tensor *labels) {
    *images = (ob_tensor){.dtype = OB_F32, .device = OB_CPU, .category = OB_MEM_DATA, .ndim = 4};
    images->shape[0] = rows;
    images->shape[1] = ob_image_data_height(d);
    images->shape[2] = ob_image_data_width(d);
    images->shape[3] = ob_image_data_channels(d);
    images->numel = rows * s->per_sample;
    images->data = s->images + first * s->per_sample;
    *labels = (ob_tensor){.dtype = OB_I32, .device = OB_CPU, .category = OB_MEM_DATA, .ndim = 1};
    labels->shape[0] = labels->numel = rows;
    labels->data = s->labels + first;
}

/* Every batch of an epoch as `world_size` ranks see it, each batch's rank
 * slices laid side by side in rank order. */
static samples epoch_samples(const ob_image_data *d, uint64_t seed, int64_t epoch, int64_t global_batch,
                             int world_size, const ob_augment_config *augment) {
    int64_t batches = ob_image_data_batches_per_epoch(d, global_batch), local = global_batch / world_size;
    samples s = samples_alloc(batches * global_batch, per_sample_of(d));
    char err[512] = "";
    int failures = 0;
    for (int64_t b = 0; b < batches; b++) {
        for (int rank = 0; rank < world_size; rank++) {
            ob_tensor images, labels;
            tensors_over(d, &s, b * global_batch + rank * local, local, &images, &labels);
            failures += ob_image_data_train_batch(d, seed, epoch, b, global_batch, rank, world_size, augment,
                                                  &images, &labels, err, sizeof err) != 0;
        }
    }
    CHECK(failures == 0);
    if (failures) fprintf(stderr, "  train_batch: %s\n", err);
    return s;
}

static samples eval_samples(const ob_image_data *d, int64_t first, int64_t count) {
    samples s = samples_alloc(count, per_sample_of(d));
    ob_tensor images, labels;
    tensors_over(d, &s, 0, count, &images, &labels);
    CHECK(ob_image_data_eval_batch(d, first, count, &images, &labels) == 0);
    return s;
}

/* ---- properties of one epoch ------------------------------------------ */

static float fill_value_of(const ob_image_data *d) {
    double mean, std;
    ob_image_data_normalisation(d, &mean, &std);
    return (float)((0 - mean) / std);
}

/* Whether `augmented` is `plain` mirrored (when flip) and read at offset
 * (dy, dx), with `fill` wherever that reads outside the image. */
static bool is_transform_of(const ob_image_data *d, const float *plain, const float *augmented, int dy,
                            int dx, bool flip, float fill) {
    int h = ob_image_data_height(d), w = ob_image_data_width(d), c = ob_image_data_channels(d);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            int sy = y + dy, sx = (flip ? w - 1 - x : x) + dx;
            bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
            for (int k = 0; k < c; k++) {
                float want = inside ? plain[(sy * w + sx) * c + k] : fill;
                if (fabsf(augmented[(y * w + x) * c + k] - want) > 1e-6f) return false;
            }
        }
    }
    return true;
}

typedef struct {
    int64_t unexplained, shifted, flipped, unchanged;
} transform_counts;

/* Explains each augmented sample as a transform of the plain one at the
 * same position (the order does not depend on augmentation). */
static transform_counts classify_transforms(const ob_image_data *d, const samples *plain,
                                            const samples *augmented, int max_shift, bool may_flip) {
    transform_counts counts = {0, 0, 0, 0};
    float fill = fill_value_of(d);
    for (int64_t i = 0; i < plain->count; i++) {
        bool found = false;
        for (int flip = 0; flip <= (int)may_flip && !found; flip++) {
            for (int dy = -max_shift; dy <= max_shift && !found; dy++) {
                for (int dx = -max_shift; dx <= max_shift && !found; dx++) {
                    found = is_transform_of(d, sample_image(plain, i), sample_image(augmented, i), dy, dx,
                                            flip, fill);
                    counts.shifted += found && (dy || dx);
                    counts.flipped += found && flip;
                    counts.unchanged += found && !dy && !dx && !flip;
                }
            }
        }
        counts.unexplained += !found || plain->labels[i] != augmented->labels[i];
    }
    return counts;
}

static void check_augmentation(const ob_image_data *d, uint64_t seed, int64_t global_batch) {
    samples plain = epoch_samples(d, seed, 2, global_batch, 1, NULL);
    const ob_augment_config switched_off = {false, 3, true}, crop = {true, 3, false}, flip = {true, 0, true},
                            both = {true, 2, true};
    samples off = epoch_samples(d, seed, 2, global_batch, 1, &switched_off);
    CHECK(samples_equal(&plain, &off));
    samples cropped = epoch_samples(d, seed, 2, global_batch, 1, &crop);
    transform_counts counts = classify_transforms(d, &plain, &cropped, 3, false);
    CHECK(counts.unexplained == 0);
    CHECK(counts.shifted > plain.count / 2); /* 48 of the 49 offsets move the image */
    samples flipped = epoch_samples(d, seed, 2, global_batch, 1, &flip);
    counts = classify_transforms(d, &plain, &flipped, 0, true);
    CHECK(counts.unexplained == 0);
    CHECK(counts.flipped > plain.count / 4 && counts.unchanged > plain.count / 4);
    samples cropped_flipped = epoch_samples(d, seed, 2, global_batch, 1, &both);
    counts = classify_transforms(d, &plain, &cropped_flipped, 2, true);
    CHECK(counts.unexplained == 0);
    CHECK(counts.flipped > 0 && counts.shifted > 0);
    samples next_epoch = epoch_samples(d, seed, 3, global_batch, 1, &both);
    CHECK(!samples_equal(&cropped_flipped, &next_epoch));
    samples_free(&plain);
    samples_free(&off);
    samples_free(&cropped);
    samples_free(&flipped);
    samples_free(&cropped_flipped);
    samples_free(&next_epoch);
}

/* Orders are fixed by (seed, epoch), differ between epochs and seeds, and
 * survive the per-epoch cache being refilled in between. */
static void check_epoch_orders(const ob_image_data *d, uint64_t seed, int64_t global_batch) {
    samples first = epoch_samples(d, seed, 0, global_batch, 1, &no_augment);
    samples next = epoch_samples(d, seed, 1, global_batch, 1, &no_augment);
    samples again = epoch_samples(d, seed, 0, global_batch, 1, &no_augment);
    samples other_seed = epoch_samples(d, seed + 1, 0, global_batch, 1, &no_augment);
    CHECK(first.count == ob_image_data_batches_per_epoch(d, global_batch) * global_batch);
    CHECK(samples_equal(&first, &again));
    CHECK(!samples_equal(&first, &next));
    CHECK(!samples_equal(&first, &other_seed));
    samples_free(&first);
    samples_free(&next);
    samples_free(&again);
    samples_free(&other_seed);
}

/* Rank slices tile the world-1 batches exactly, and neither depends on the
 * thread count. */
static void check_sharding(const ob_image_data *d, uint64_t seed, int64_t global_batch) {
    const ob_augment_config augment = {true, 2, true};
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    samples one_thread = epoch_samples(d, seed, 5, global_batch, 1, &augment);
    omp_set_num_threads(4);
    samples world1 = epoch_samples(d, seed, 5, global_batch, 1, &augment);
    omp_set_num_threads(threads);
    samples world4 = epoch_samples(d, seed, 5, global_batch, 4, &augment);
    samples world2_plain = epoch_samples(d, seed, 5, global_batch, 2, &no_augment);
    samples world1_plain = epoch_samples(d, seed, 5, global_batch, 1, NULL);
    CHECK(samples_equal(&one_thread, &world1));
    CHECK(samples_equal(&world1, &world4));
    CHECK(samples_equal(&world1_plain, &world2_plain));
    samples_free(&one_thread);
    samples_free(&world1);
    samples_free(&world4);
    samples_free(&world2_plain);
    samples_free(&world1_plain);
}

/* Bad requests give 2 and one line saying what was expected. */
static void check_bad_requests(const ob_image_data *d, int64_t global_batch) {
    samples s = samples_alloc(global_batch, per_sample_of(d));
    ob_tensor images, labels;
    char err[512];
    int64_t batches = ob_image_data_batches_per_epoch(d, global_batch);
    const ob_augment_config bad_crop = {true, -1, false};
    tensors_over(d, &s, 0, global_batch / 4, &images, &labels);
    CHECK(ob_image_data_train_batch(d, 1, 0, 0, global_batch + 2, 0, 4, NULL, &images, &labels, err,
                                    sizeof err) == 2);
    CHECK(strstr(err, "divisible") != NULL);
    CHECK(ob_image_data_train_batch(d, 1, 0, 0, global_batch, 4, 4, NULL, &images, &labels, err,
                                    sizeof err) == 2);
    CHECK(ob_image_data_train_batch(d, 1, 0, batches, global_batch, 0, 4, NULL, &images, &labels, err,
                                    sizeof err) == 2);
    CHECK(strstr(err, "expected 0 <= batch <") != NULL);
    CHECK(ob_image_data_train_batch(d, 1, -1, 0, global_batch, 0, 4, NULL, &images, &labels, err,
                                    sizeof err) == 2);
    CHECK(ob_image_data_train_batch(d, 1, 0, 0, global_batch, 0, 4, &bad_crop, &images, &labels, err,
                                    sizeof err) == 2);
    CHECK(strstr(err, "crop padding -1") != NULL);
    tensors_over(d, &s, 0, global_batch, &images, &labels); /* world 4 wants a quarter */
    CHECK(ob_image_data_train_batch(d, 1, 0, 0, global_batch, 0, 4, NULL, &images, &labels, err,
                                    sizeof err) == 2);
    CHECK(strstr(err, "batch tensors: expected cpu f32") != NULL);
    labels.dtype = OB_F32;
    CHECK(ob_image_data_train_batch(d, 1, 0, 0, global_batch, 0, 1, NULL, &images, &labels, err,
                                    sizeof err) == 2);
    CHECK(strchr(err, '\n') == NULL);
    samples_free(&s);
}

/* Shards tile the test set contiguously, near-equal; batches within them
 * match one batch over the whole set. */
static void check_eval_shards(const ob_image_data *d, int world_size, int64_t batch) {
    int64_t n = ob_image_data_eval_size(d), next_start = 0, smallest = n, largest = 0;
    samples whole = eval_samples(d, 0, n);
    bool contents_match = true;
    for (int rank = 0; rank < world_size; rank++) {
        int64_t start, count;
        ob_image_data_eval_shard(d, rank, world_size, &start, &count);
        CHECK(start == next_start);
        next_start = start + count;
        smallest = count < smallest ? count : smallest;
        largest = count > largest ? count : largest;
        samples buffer = samples_alloc(batch, whole.per_sample); /* reused: last batch may be short */
        for (int64_t first = start; first < start + count; first += batch) {
            int64_t rows = start + count - first < batch ? start + count - first : batch;
            ob_tensor images, labels;
            tensors_over(d, &buffer, 0, batch, &images, &labels);
            CHECK(ob_image_data_eval_batch(d, first, rows, &images, &labels) == 0);
            contents_match &=
                memcmp(buffer.images, sample_image(&whole, first),
                       (size_t)(rows * whole.per_sample) * sizeof(float)) == 0 &&
                memcmp(buffer.labels, whole.labels + first, (size_t)rows * sizeof(int32_t)) == 0;
        }
        samples_free(&buffer);
    }
    CHECK(next_start == n);
    CHECK(largest - smallest <= 1);
    CHECK(contents_match);
    ob_tensor images, labels;
    tensors_over(d, &whole, 0, n, &images, &labels);
    CHECK(ob_image_data_eval_batch(d, 1, n, &images, &labels) == 2);
    CHECK(ob_image_data_eval_batch(d, -1, 1, &images, &labels) == 2);
    samples_free(&whole);
}

static void check_batch_properties(const ob_image_data *d, uint64_t seed, int64_t global_batch) {
    check_epoch_orders(d, seed, global_batch);
    check_sharding(d, seed, global_batch);
    check_augmentation(d, seed, global_batch);
    check_bad_requests(d, global_batch);
    check_eval_shards(d, 3, 7);
    check_eval_shards(d, 4, 64);
}

/* ---- stored images against the raw IDX bytes -------------------------- */

typedef struct {
    ob_idx_array images, labels;
} raw_split;

static bool raw_split_read(const char *dir, const char *prefix, raw_split *raw) {
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    int status = ob_idx_read(path, 3, &raw->images, err, sizeof err);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    if (!status) status = ob_idx_read(path, 1, &raw->labels, err, sizeof err);
    if (status) fprintf(stderr, "  %s\n", err);
    return status == 0;
}

static void raw_split_free(raw_split *raw) {
    ob_idx_free(&raw->images);
    ob_idx_free(&raw->labels);
}

/* Mean and std of the first n raw images padded to `side` with zeros,
 * summed plainly (the dataset sums a histogram). */
static void padded_stats(const raw_split *raw, int64_t n, int side, double *mean, double *std) {
    int64_t raw_pixels = n * raw->images.dims[1] * raw->images.dims[2], total = n * side * side;
    double sum = 0, squares = 0;
    for (int64_t i = 0; i < raw_pixels; i++) sum += raw->images.data[i];
    *mean = sum / total;
    for (int64_t i = 0; i < raw_pixels; i++) squares += pow(raw->images.data[i] - *mean, 2);
    squares += (total - raw_pixels) * *mean * *mean;
    *std = sqrt(squares / total);
}

/* The raw bytes behind one stored single-channel image padded by `pad`;
 * false if a padding pixel is not normalised 0 or a pixel is not a
 * normalised byte. */
static bool recover_raw(const ob_image_data *d, const float *image, int pad, uint8_t *raw) {
    double mean, std;
    ob_image_data_normalisation(d, &mean, &std);
    int h = ob_image_data_height(d), w = ob_image_data_width(d), raw_w = w - 2 * pad;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            double value = image[y * w + x] * std + mean;
            long byte = lround(value);
            bool border = y < pad || y >= h - pad || x < pad || x >= w - pad;
            if (fabs(value - byte) > 1e-3 || byte < 0 || byte > 255 || (border && byte != 0)) return false;
            if (!border) raw[(y - pad) * raw_w + (x - pad)] = (uint8_t)byte;
        }
    }
    return true;
}

/* Matches every gathered sample to a distinct raw sample with the same
 * bytes and label (identical duplicates are interchangeable); returns how
 * many found none. With count == n this proves a permutation. */
static int64_t unmatched_in_raw(const ob_image_data *d, const samples *got, const raw_split *raw, int64_t n,
                                int pad) {
    int64_t raw_size = raw->images.dims[1] * raw->images.dims[2], unmatched = 0;
    bool *used = calloc((size_t)n, sizeof *used);
    uint8_t *bytes = malloc((size_t)raw_size);
    for (int64_t i = 0; i < got->count; i++) {
        int64_t match = -1;
        if (recover_raw(d, sample_image(got, i), pad, bytes))
            for (int64_t j = 0; j < n && match < 0; j++)
                if (!used[j] && raw->labels.data[j] == got->labels[i] &&
                    memcmp(raw->images.data + j * raw_size, bytes, (size_t)raw_size) == 0)
                    match = j;
        if (match >= 0) used[match] = true;
        unmatched += match < 0;
    }
    free(used);
    free(bytes);
    return unmatched;
}

/* Test sample i is raw test sample i, for every i. */
static int64_t eval_mismatches(const ob_image_data *d, const raw_split *raw, int pad) {
    samples got = eval_samples(d, 0, ob_image_data_eval_size(d));
    int64_t raw_size = raw->images.dims[1] * raw->images.dims[2], mismatches = 0;
    uint8_t *bytes = malloc((size_t)raw_size);
    for (int64_t i = 0; i < got.count; i++)
        mismatches += !recover_raw(d, sample_image(&got, i), pad, bytes) ||
                      memcmp(bytes, raw->images.data + i * raw_size, (size_t)raw_size) != 0 ||
                      got.labels[i] != raw->labels.data[i];
    free(bytes);
    samples_free(&got);
    return mismatches;
}

/* Normalisation constants, normalised moments, and contents against the
 * raw files in dir. global_batch must divide the training size. */
static void check_against_raw(const ob_image_data *d, const char *dir, int pad, int64_t global_batch) {
    raw_split train = {0}, test = {0};
    if (!raw_split_read(dir, "train", &train) || !raw_split_read(dir, "t10k", &test)) {
        CHECK(!"raw files readable");
        return;
    }
    int64_t n = ob_image_data_train_size(d);
    double mean, std, want_mean, want_std;
    ob_image_data_normalisation(d, &mean, &std);
    padded_stats(&train, n, ob_image_data_height(d), &want_mean, &want_std);
    CHECK(fabs(mean - want_mean) < 1e-9 * want_mean && fabs(std - want_std) < 1e-9 * want_std);
    samples epoch = epoch_samples(d, 7, 4, global_batch, 1, &no_augment);
    CHECK(epoch.count == n);
    double sum = 0, squares = 0;
    int64_t values = epoch.count * epoch.per_sample;
    for (int64_t i = 0; i < values; i++) sum += epoch.images[i];
    for (int64_t i = 0; i < values; i++) squares += pow(epoch.images[i] - sum / values, 2);
    CHECK(fabs(sum / values) < 1e-4);
    CHECK(fabs(sqrt(squares / values) - 1) < 1e-4);
    CHECK(unmatched_in_raw(d, &epoch, &train, n, pad) == 0);
    CHECK(eval_mismatches(d, &test, pad) == 0);
    samples_free(&epoch);
    raw_split_free(&train);
    raw_split_free(&test);
}

/* ---- a tiny IDX dataset written here ---------------------------------- */

enum { TINY_SIDE = 6, TINY_TRAIN = 12, TINY_TEST = 5 };

typedef struct {
    int64_t train_images, train_labels, test_images, test_labels; /* counts written */
    int test_side;
    uint8_t bad_label; /* written as train label 3 when nonzero */
} tiny_layout;

static void write_tiny_split(const char *dir, const char *prefix, int64_t images, int64_t labels, int side,
                             uint8_t label_3) {
    uint8_t pixels[TINY_TRAIN * (TINY_SIDE + 1) * (TINY_SIDE + 1)], classes[TINY_TRAIN];
    for (size_t i = 0; i < sizeof pixels; i++) pixels[i] = (uint8_t)(i * 37 % 251);
    for (int i = 0; i < TINY_TRAIN; i++) classes[i] = (uint8_t)(i * 7 % 10);
    if (label_3) classes[3] = label_3;
    char path[1024];
    const uint32_t image_dims[3] = {(uint32_t)images, (uint32_t)side, (uint32_t)side},
                   label_dims[1] = {(uint32_t)labels};
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    write_idx(path, true, 0x803, 3, image_dims, pixels, (size_t)(images * side * side));
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    write_idx(path, true, 0x801, 1, label_dims, classes, (size_t)labels);
}

static void write_tiny(const char *dir, tiny_layout layout) {
    write_tiny_split(dir, "train", layout.train_images, layout.train_labels, TINY_SIDE, layout.bad_label);
    write_tiny_split(dir, "t10k", layout.test_images, layout.test_labels, layout.test_side, 0);
}

static const tiny_layout tiny_good = {TINY_TRAIN, TINY_TRAIN, TINY_TEST, TINY_TEST, TINY_SIDE, 0};

/* Loading fails with 2, charges nothing, and says `phrase` in one line. */
static void expect_load_error(const ob_image_data_config *config, const char *phrase) {
    char err[512] = "";
    ob_image_data *d = (ob_image_data *)&err; /* must come back NULL */
    int64_t charged = ob_mem_current(ctx, OB_MEM_DATA);
    int status = ob_image_data_load_fashion_mnist(ctx, config, &d, err, sizeof err);
    CHECK(status == 2 && d == NULL);
    CHECK(strstr(err, phrase) != NULL);
    CHECK(strchr(err, '\n') == NULL);
    CHECK(ob_mem_current(ctx, OB_MEM_DATA) == charged);
    if (status != 2 || !strstr(err, phrase))
        fprintf(stderr, "  expected '%s', got %d: %s\n", phrase, status, err);
}

static void test_tiny_load_errors(const char *dir) {
    char train_images[1024], train_labels[1024], test_images[1024];
    snprintf(train_images, sizeof train_images, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(train_labels, sizeof train_labels, "%s/train-labels-idx1-ubyte.gz", dir);
    snprintf(test_images, sizeof test_images, "%s/t10k-images-idx3-ubyte.gz", dir);
    ob_image_data_config config = {dir, 0, 0, 10};
    write_tiny(dir, tiny_good);
    config.pad_to = 9; /* odd padding */
    expect_load_error(&config, "pad_to 9");
    config.pad_to = 4; /* smaller than the images */
    expect_load_error(&config, "pad_to 4");
    config.pad_to = 10;
    config.train_limit = -1;
    expect_load_error(&config, "expected >= 0");
    config.train_limit = 0;
    write_tiny(dir, (tiny_layout){TINY_TRAIN, TINY_TRAIN - 1, TINY_TEST, TINY_TEST, TINY_SIDE, 0});
    expect_load_error(&config, train_labels);
    expect_load_error(&config, train_images);
    write_tiny(dir, (tiny_layout){TINY_TRAIN, TINY_TRAIN, TINY_TEST, TINY_TEST, TINY_SIDE, 10});
    expect_load_error(&config, "label 10 at index 3: expected labels below 10");
    write_tiny(dir, (tiny_layout){TINY_TRAIN, TINY_TRAIN, TINY_TEST, TINY_TEST, TINY_SIDE + 1, 0});
    expect_load_error(&config, test_images);
    unlink(test_images);
    expect_load_error(&config, test_images);
    config.dir = "/nonexistent/optbench";
    expect_load_error(&config, "/nonexistent/optbench/train-images-idx3-ubyte.gz: cannot open");
    config.dir = NULL;
    expect_load_error(&config, "no directory");
}

static void test_tiny_dataset(void) {
    char dir[32];
    if (!scratch_dir_make(dir)) {
        CHECK(!"scratch directory");
        return;
    }
    write_tiny(dir, tiny_good);
    char err[512] = "";
    int64_t charged = ob_mem_current(ctx, OB_MEM_DATA);
    ob_image_data *d = NULL;
    const ob_image_data_config config = {dir, 0, 0, TINY_SIDE + 4};
    CHECK(ob_image_data_load_fashion_mnist(ctx, &config, &d, err, sizeof err) == 0 && d);
    if (!d) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK(ob_image_data_train_size(d) == TINY_TRAIN && ob_image_data_eval_size(d) == TINY_TEST);
    CHECK(ob_image_data_height(d) == TINY_SIDE + 4 && ob_image_data_width(d) == TINY_SIDE + 4);
    CHECK(ob_image_data_channels(d) == 1 && ob_image_data_classes(d) == 10);
    int64_t stored = (TINY_TRAIN + TINY_TEST) * (TINY_SIDE + 4) * (TINY_SIDE + 4) * (int64_t)sizeof(float);
    CHECK(ob_mem_current(ctx, OB_MEM_DATA) - charged >= stored);
    check_against_raw(d, dir, 2, 4);
    check_batch_properties(d, 3, 4);
    ob_image_data_free(ctx, d);
    CHECK(ob_mem_current(ctx, OB_MEM_DATA) == charged);

    const ob_image_data_config limited = {dir, 5, 2, 0};
    CHECK(ob_image_data_load_fashion_mnist(ctx, &limited, &d, err, sizeof err) == 0);
    CHECK(ob_image_data_train_size(d) == 5 && ob_image_data_eval_size(d) == 2);
    CHECK(ob_image_data_height(d) == TINY_SIDE);
    check_against_raw(d, dir, 0, 5);
    ob_image_data_free(ctx, d);

    test_tiny_load_errors(dir);
    scratch_dir_remove(dir);
}

/* ---- synthetic and real data ------------------------------------------ */

static void test_synthetic(void) {
    char err[512] = "";
    int64_t charged = ob_mem_current(ctx, OB_MEM_DATA);
    ob_image_data *d = NULL, *same = NULL, *other = NULL;
    CHECK(ob_image_data_synthetic(ctx, 96, 30, 6, 5, 2, 7, 42, &d, err, sizeof err) == 0 && d);
    CHECK(ob_image_data_synthetic(ctx, 96, 30, 6, 5, 2, 7, 42, &same, err, sizeof err) == 0);
    CHECK(ob_image_data_synthetic(ctx, 96, 30, 6, 5, 2, 7, 43, &other, err, sizeof err) == 0);
    CHECK(ob_image_data_train_size(d) == 96 && ob_image_data_eval_size(d) == 30);
    CHECK(ob_image_data_height(d) == 6 && ob_image_data_width(d) == 5);
    CHECK(ob_image_data_channels(d) == 2 && ob_image_data_classes(d) == 7);
    CHECK(ob_image_data_batches_per_epoch(d, 16) == 6 && ob_image_data_batches_per_epoch(d, 20) == 4);
    CHECK(ob_mem_current(ctx, OB_MEM_DATA) - charged >= 3 * (96 + 30) * 60 * (int64_t)sizeof(float));
    double mean, std;
    ob_image_data_normalisation(d, &mean, &std);
    CHECK(mean == 0 && std == 1);

    samples epoch = epoch_samples(d, 9, 0, 16, 1, NULL);
    samples same_epoch = epoch_samples(same, 9, 0, 16, 1, NULL);
    samples other_epoch = epoch_samples(other, 9, 0, 16, 1, NULL);
    CHECK(samples_equal(&epoch, &same_epoch));
    CHECK(!samples_equal(&epoch, &other_epoch));
    /* The pixels are continuous draws, so 96 distinct images in 96 slots
     * are each training sample exactly once. */
    int64_t repeats = 0, bad_labels = 0, values = epoch.count * epoch.per_sample;
    for (int64_t i = 0; i < epoch.count; i++) {
        bad_labels += epoch.labels[i] < 0 || epoch.labels[i] >= 7;
        for (int64_t j = 0; j < i; j++)
            repeats += memcmp(sample_image(&epoch, i), sample_image(&epoch, j),
                              (size_t)epoch.per_sample * sizeof(float)) == 0;
    }
    CHECK(epoch.count == 96 && repeats == 0 && bad_labels == 0);
    double sum = 0, squares = 0;
    for (int64_t i = 0; i < values; i++) sum += epoch.images[i];
    for (int64_t i = 0; i < values; i++) squares += pow(epoch.images[i] - sum / values, 2);
    CHECK(fabs(sum / values) < 0.06 && fabs(sqrt(squares / values) - 1) < 0.06); /* 5760 draws: 4 sigma */
    check_batch_properties(d, 9, 16);
    samples_free(&epoch);
    samples_free(&same_epoch);
    samples_free(&other_epoch);
    ob_image_data_free(ctx, d);
    ob_image_data_free(ctx, same);
    ob_image_data_free(ctx, other);
    CHECK(ob_mem_current(ctx, OB_MEM_DATA) == charged);
    d = (ob_image_data *)&err;
    CHECK(ob_image_data_synthetic(ctx, 10, 10, 0, 5, 1, 10, 1, &d, err, sizeof err) == 2 && d == NULL);
    CHECK(strstr(err, "synthetic data: images 0x5x1") != NULL);
    CHECK(ob_image_data_synthetic(ctx, -1, 10, 4, 4, 1, 10, 1, &d, err, sizeof err) == 2);
}

static void test_fashion_mnist(void) {
    if (!fashion_mnist_present()) {
        printf("note: %s absent, skipping the real-data checks\n", FASHION_MNIST_DIR);
        return;
    }
    char err[512] = "";
    ob_image_data *d = NULL;
    const ob_image_data_config config = {FASHION_MNIST_DIR, 2000, 500, 32};
    CHECK(ob_image_data_load_fashion_mnist(ctx, &config, &d, err, sizeof err) == 0 && d);
    if (!d) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK(ob_image_data_train_size(d) == 2000 && ob_image_data_eval_size(d) == 500);
    CHECK(ob_image_data_height(d) == 32 && ob_image_data_width(d) == 32 && ob_image_data_channels(d) == 1);
    check_against_raw(d, FASHION_MNIST_DIR, 2, 100);
    check_batch_properties(d, 11, 100);
    ob_image_data_free(ctx, d);
}

int main(void) {
    ctx = ob_ctx_new(&(ob_ctx_config){.threads = 0, .seed = 1, .rank = 0, .world_size = 1});
    if (!ctx) return 1;
    test_synthetic();
    test_tiny_dataset();
    test_fashion_mnist();
    ob_ctx_free(ctx);
    return report_checks();
}
