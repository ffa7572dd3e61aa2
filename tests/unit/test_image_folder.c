/* ImageNet folder reader on a JPEG tree written here with the libjpeg
 * encoder: classes and labels, decoded colours after normalisation
 * (RGB, grayscale, CMYK), the random-resized-crop geometry over many draws,
 * the evaluation centre crop (also through a DCT-downscaled decode), flips,
 * determinism across world sizes and worker counts, prefetch out of order,
 * and the bad-input errors (no train/, an empty class folder, a val/ class
 * unknown to train/, a truncated JPEG). */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */

#include <ftw.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>

#include "nn/ob_ctx.h"
#include "nn/ob_rng.h"
#include "ob_check.h"
#include "workloads/data/ob_image_crop.h"
#include "workloads/data/ob_image_folder.h"

#define SIDE 32
/* Output tolerance of a decoded pixel: JPEG at quality 95 plus bilinear
 * rounding stay within a few levels of 255; divided by the smallest std. */
#define LEVELS_TOLERANCE 6.0
#define NORMALISED_TOLERANCE (LEVELS_TOLERANCE / 255.0 / 0.224)

static ob_ctx *ctx;

/* ---- writing the tree ---------------------------------------------------- */

typedef enum { SOLID_RGB, SOLID_GRAY, SOLID_CMYK, GRADIENT } image_kind;

typedef struct {
    const char *path; /* under the tree */
    int width, height;
    image_kind kind;
    unsigned char rgb[3]; /* the solid colour (gray: rgb[0]); gradients ignore it */
} tree_image;

static const unsigned char class_colour[3][3] = {{200, 30, 60}, {20, 180, 90}, {40, 90, 220}};

/* 13 training images (a 300x200 gradient decodes at a DCT scale) and 8
 * validation ones, two of them gradients for the centre-crop check. */
static const tree_image tree[] = {
    {"train/n01/a.JPEG", 50, 40, SOLID_RGB, {200, 30, 60}},
    {"train/n01/b.jpg", 37, 61, SOLID_RGB, {200, 30, 60}},
    {"train/n01/c.jpeg", 50, 40, GRADIENT, {0}},
    {"train/n01/d.JPG", 37, 61, GRADIENT, {0}},
    {"train/n01/e.JPEG", 300, 200, GRADIENT, {0}},
    {"train/n02/a.JPEG", 50, 40, SOLID_RGB, {20, 180, 90}},
    {"train/n02/b.JPEG", 37, 61, SOLID_RGB, {20, 180, 90}},
    {"train/n02/c.JPEG", 50, 40, GRADIENT, {0}},
    {"train/n02/d.JPEG", 37, 61, GRADIENT, {0}},
    {"train/n03/a.JPEG", 50, 40, SOLID_GRAY, {128, 128, 128}},
    {"train/n03/b.JPEG", 37, 61, SOLID_CMYK, {40, 90, 220}},
    {"train/n03/c.JPEG", 50, 40, GRADIENT, {0}},
    {"train/n03/d.JPEG", 37, 61, GRADIENT, {0}},
    {"val/n01/a.JPEG", 50, 40, SOLID_RGB, {200, 30, 60}},
    {"val/n01/b.JPEG", 37, 61, SOLID_RGB, {200, 30, 60}},
    {"val/n02/a.JPEG", 50, 40, SOLID_RGB, {20, 180, 90}},
    {"val/n02/b.JPEG", 37, 61, SOLID_RGB, {20, 180, 90}},
    {"val/n03/a.JPEG", 50, 40, SOLID_RGB, {40, 90, 220}},
    {"val/n03/b.JPEG", 37, 61, SOLID_RGB, {40, 90, 220}},
    {"val/n03/c.JPEG", 64, 48, GRADIENT, {0}},
    {"val/n03/d.JPEG", 640, 480, GRADIENT, {0}},
};
#define TREE_IMAGES ((int)(sizeof tree / sizeof tree[0]))
#define TRAIN_IMAGES 13
#define VAL_IMAGES 8

/* Gradient value at column x of a width-wide image, the same in R, G, B. */
static double gradient_level(double x, int width) { return 255.0 * x / (width - 1); }

/* The image's samples in the encoder's input layout (1, 3 or 4 per pixel). */
static unsigned char *image_samples(const tree_image *image, int components) {
    unsigned char *samples = malloc((size_t)image->width * image->height * components);
    for (int y = 0; y < image->height; y++) {
        for (int x = 0; x < image->width; x++) {
            unsigned char *pixel = samples + ((size_t)y * image->width + x) * components;
            for (int c = 0; c < components; c++) {
                if (image->kind == GRADIENT)
                    pixel[c] = (unsigned char)lround(gradient_level(x, image->width));
                /* Adobe CMYK stores 255 - ink: K stored 255 (no black) leaves R, G, B = stored C, M, Y. */
                else if (c == 3)
                    pixel[c] = 255;
                else
                    pixel[c] = image->rgb[c];
            }
        }
    }
    return samples;
}

static bool write_jpeg(const char *path, const tree_image *image) {
    FILE *file = fopen(path, "wb");
    if (!file) return false;
    struct jpeg_compress_struct info;
    struct jpeg_error_mgr errors;
    info.err = jpeg_std_error(&errors);
    jpeg_create_compress(&info);
    jpeg_stdio_dest(&info, file);
    info.image_width = (JDIMENSION)image->width;
    info.image_height = (JDIMENSION)image->height;
    bool gray = image->kind == SOLID_GRAY, cmyk = image->kind == SOLID_CMYK;
    info.input_components = gray ? 1 : cmyk ? 4 : 3;
    info.in_color_space = gray ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, 95, TRUE);
    jpeg_start_compress(&info, TRUE);
    unsigned char *samples = image_samples(image, info.input_components);
    size_t stride = (size_t)image->width * info.input_components;
    while (info.next_scanline < info.image_height) {
        JSAMPROW row = samples + stride * info.next_scanline;
        jpeg_write_scanlines(&info, &row, 1);
    }
    jpeg_finish_compress(&info);
    jpeg_destroy_compress(&info);
    free(samples);
    return fclose(file) == 0;
}

static void make_dirs_for(const char *path) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *slash = strchr(dir + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(dir, 0755);
        *slash = '/';
    }
}

static bool write_tree_image(const char *root, const tree_image *image) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, image->path);
    make_dirs_for(path);
    return write_jpeg(path, image);
}

/* A fresh scratch folder holding the first n tree images. */
static bool make_tree(char *root, int n) {
    strcpy(root, "/tmp/optbench_folder_XXXXXX");
    if (!mkdtemp(root)) return false;
    bool ok = true;
    for (int i = 0; i < n; i++) ok = ok && write_tree_image(root, &tree[i]);
    return ok;
}

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *walk) {
    (void)info;
    (void)flag;
    (void)walk;
    return remove(path);
}

static void remove_tree(const char *root) { nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* ---- batches ---------------------------------------------------------------- */

typedef struct {
    int64_t rows;
    float *images;
    int32_t *labels;
    ob_tensor image_tensor, label_tensor;
} batch;

static const int64_t values_per_sample = (int64_t)SIDE * SIDE * 3;

static batch batch_new(int64_t rows) {
    batch b = {.rows = rows,
               .images = calloc((size_t)(rows * values_per_sample), sizeof(float)),
               .labels = calloc((size_t)rows, sizeof(int32_t))};
    b.image_tensor = (ob_tensor){.dtype = OB_F32, .device = OB_CPU, .category = OB_MEM_DATA, .ndim = 4};
    int64_t shape[4] = {rows, SIDE, SIDE, 3};
    memcpy(b.image_tensor.shape, shape, sizeof shape);
    b.image_tensor.numel = rows * values_per_sample;
    b.image_tensor.data = b.images;
    b.label_tensor = (ob_tensor){.dtype = OB_I32, .device = OB_CPU, .category = OB_MEM_DATA, .ndim = 1};
    b.label_tensor.shape[0] = b.label_tensor.numel = rows;
    b.label_tensor.data = b.labels;
    return b;
}

static void batch_free(batch *b) {
    free(b->images);
    free(b->labels);
}

static const float *row_of(const batch *b, int64_t row) { return b->images + row * values_per_sample; }

static bool rows_equal(const float *a, const float *b) {
    return memcmp(a, b, (size_t)values_per_sample * sizeof(float)) == 0;
}

static ob_image_folder *open_folder(const char *root, int workers) {
    ob_image_folder_config config = {.dir = root, .side = SIDE, .workers = workers};
    ob_image_folder *folder = NULL;
    char err[1024] = "";
    int status = ob_image_folder_open(ctx, &config, &folder, err, sizeof err);
    CHECK(status == 0);
    if (status) fprintf(stderr, "  open: %s\n", err);
    return folder;
}

static const ob_augment_config plain = {.augment = false};
static const ob_augment_config recipe = {.augment = true, .hflip = true};
static const ob_augment_config crop_only = {.augment = true, .hflip = false};

/* Rank's slice of global batch `index`, as a fresh batch; rows 0 on failure. */
static batch train_batch(ob_image_folder *folder, uint64_t seed, int64_t epoch, int64_t index, int64_t global,
                         int rank, int world, const ob_augment_config *augment) {
    batch b = batch_new(global / world);
    char err[1024] = "";
    int status = ob_image_folder_train_batch(folder, seed, epoch, index, global, rank, world, augment,
                                             &b.image_tensor, &b.label_tensor, err, sizeof err);
    CHECK(status == 0);
    if (status) fprintf(stderr, "  train batch: %s\n", err);
    return b;
}

static float normalised(double level, int channel) {
    return (float)((level / 255.0 - ob_imagenet_norm.mean[channel]) / ob_imagenet_norm.std[channel]);
}

/* Whether every pixel of the row is the colour, after normalisation. */
static bool row_is_colour(const float *row, const unsigned char rgb[3]) {
    for (int64_t i = 0; i < values_per_sample; i++)
        if (fabsf(row[i] - normalised(rgb[i % 3], (int)(i % 3))) > NORMALISED_TOLERANCE) return false;
    return true;
}

static bool row_is_uniform(const float *row) {
    for (int64_t i = 3; i < values_per_sample; i++)
        if (fabsf(row[i] - row[i % 3]) > NORMALISED_TOLERANCE) return false;
    return true;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_listing_and_colours(const char *root) {
    ob_image_folder *folder = open_folder(root, 2);
    if (!folder) return;
    CHECK(ob_image_folder_classes(folder) == 3);
    CHECK(ob_image_folder_train_size(folder) == TRAIN_IMAGES);
    CHECK(ob_image_folder_eval_size(folder) == VAL_IMAGES);
    CHECK(strcmp(ob_image_folder_class_name(folder, 0), "n01") == 0);
    CHECK(strcmp(ob_image_folder_class_name(folder, 2), "n03") == 0);
    CHECK(ob_image_folder_class_name(folder, 3) == NULL);

    /* The whole training set un-augmented: 5/4/4 labels, and every solid
     * row is a colour of its own class (n03 also has a gray and a CMYK-coded one). */
    batch all = train_batch(folder, 7, 0, 0, TRAIN_IMAGES, 0, 1, &plain);
    int per_class[3] = {0, 0, 0}, solid = 0, solid_right = 0;
    static const unsigned char gray[3] = {128, 128, 128};
    for (int64_t i = 0; i < all.rows; i++) {
        int label = all.labels[i];
        if (label < 0 || label > 2) continue;
        per_class[label]++;
        if (!row_is_uniform(row_of(&all, i))) continue;
        solid++;
        solid_right += row_is_colour(row_of(&all, i), class_colour[label]) ||
                       (label == 2 && row_is_colour(row_of(&all, i), gray));
    }
    CHECK(per_class[0] == 5 && per_class[1] == 4 && per_class[2] == 4);
    CHECK(solid == 6);
    CHECK(solid_right == 6);
    batch_free(&all);

    /* Validation in file order: labels 0 0 1 1 2 2 2 2, solid rows exact colours. */
    batch val = batch_new(VAL_IMAGES);
    char err[1024] = "";
    CHECK(ob_image_folder_eval_batch(folder, 0, VAL_IMAGES, &val.image_tensor, &val.label_tensor, err,
                                     sizeof err) == 0);
    static const int32_t want_labels[VAL_IMAGES] = {0, 0, 1, 1, 2, 2, 2, 2};
    CHECK(memcmp(val.labels, want_labels, sizeof want_labels) == 0);
    for (int i = 0; i < 6; i++) CHECK(row_is_colour(row_of(&val, i), class_colour[i / 2]));
    batch_free(&val);
    /* A range past the end is refused with a message. */
    batch one = batch_new(1);
    CHECK(ob_image_folder_eval_batch(folder, VAL_IMAGES, 1, &one.image_tensor, &one.label_tensor, err,
                                     sizeof err) == 2);
    CHECK(strstr(err, "validation images") != NULL);
    batch_free(&one);
    ob_image_folder_free(ctx, folder);
}

/* The centre crop of a gradient image, checked against the analytic
 * gradient at each output column's source position: one small image
 * decoded at full scale, one 640x480 decoded at 1/8 (DCT scaling). */
static void test_center_crop(const char *root) {
    ob_image_folder *folder = open_folder(root, 0);
    if (!folder) return;
    batch val = batch_new(2);
    char err[1024] = "";
    CHECK(ob_image_folder_eval_batch(folder, 6, 2, &val.image_tensor, &val.label_tensor, err, sizeof err) ==
          0);
    int eval_resize = (int)lround(SIDE * OB_EVAL_RESIZE_PER_SIDE);
    for (int i = 0; i < 2; i++) {
        const tree_image *image = &tree[TRAIN_IMAGES + 6 + i];
        ob_crop_box box = ob_center_crop_box(image->width, image->height, eval_resize, SIDE);
        double worst = 0;
        for (int y = 0; y < SIDE; y++) {
            for (int x = 0; x < SIDE; x++) {
                double source_x = box.x + (x + 0.5) * box.width / SIDE - 0.5;
                for (int c = 0; c < 3; c++) {
                    double want = normalised(gradient_level(source_x, image->width), c);
                    double got = row_of(&val, i)[(y * SIDE + x) * 3 + c];
                    worst = fmax(worst, fabs(got - want));
                }
            }
        }
        CHECK(worst < NORMALISED_TOLERANCE);
        if (worst >= NORMALISED_TOLERANCE) fprintf(stderr, "  %s: worst error %g\n", image->path, worst);
    }
    CHECK(ob_dct_scale_denom(ob_center_crop_box(640, 480, eval_resize, SIDE), SIDE) == 8);
    CHECK(ob_dct_scale_denom(ob_center_crop_box(64, 48, eval_resize, SIDE), SIDE) == 1);
    batch_free(&val);
    ob_image_folder_free(ctx, folder);
}

static void test_crop_geometry(void) {
    /* Centre box: shorter side 40 -> 40 * 224 / 256 = 35, centred. */
    ob_crop_box center = ob_center_crop_box(50, 40, 256, 224);
    CHECK(center.width == 35 && center.height == 35 && center.x == 7.5 && center.y == 2.5);
    ob_crop_box big = {0, 0, 2000, 1800}, mid = {0, 0, 500, 500}, small = {0, 0, 224, 300};
    CHECK(ob_dct_scale_denom(big, 224) == 8 && ob_dct_scale_denom(mid, 224) == 2);
    CHECK(ob_dct_scale_denom(small, 224) == 1);

    static const int sizes[][2] = {{50, 40}, {37, 61}, {640, 480}, {500, 500}, {1000, 100}};
    for (int s = 0; s < 5; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        ob_rng_stream stream = ob_rng_stream_make(3, OB_RNG_TEST, 0, (uint64_t)s);
        int inside = 0, in_bounds = 0, attempts_won = 0;
        double area_sum = 0, min_log_ratio = 1, max_log_ratio = -1;
        const int draws = 4000;
        for (int i = 0; i < draws; i++) {
            ob_crop_box b = ob_random_resized_crop(w, h, &stream, (uint64_t)i * OB_RRC_DRAWS);
            inside += b.x >= 0 && b.y >= 0 && b.width >= 1 && b.height >= 1 && b.x + b.width <= w &&
                      b.y + b.height <= h && b.x == floor(b.x) && b.width == floor(b.width);
            double area = b.width * b.height / ((double)w * h), log_ratio = log(b.width / b.height);
            /* One pixel of rounding on each side bounds what a rounded box can stray. */
            double slack_ratio = 1.0 / b.width + 1.0 / b.height;
            double slack_area = (b.width + b.height + 1) / ((double)w * h);
            in_bounds += area >= OB_RRC_MIN_AREA - slack_area && area <= 1 + 1e-12 &&
                         log_ratio >= log(OB_RRC_MIN_RATIO) - slack_ratio &&
                         log_ratio <= log(OB_RRC_MAX_RATIO) + slack_ratio;
            attempts_won += !(b.width == w || b.height == h);
            area_sum += area;
            min_log_ratio = fmin(min_log_ratio, log_ratio);
            max_log_ratio = fmax(max_log_ratio, log_ratio);
        }
        check(inside == draws, "every random-resized crop lies inside its image on whole pixels");
        check(in_bounds == draws, "every random-resized crop keeps area and ratio within the bounds");
        if (s == 4) {
            /* Ratio 10: most attempts cannot fit; the fallback is 133x100, centred. */
            ob_rng_stream fallback_stream = ob_rng_stream_make(3, OB_RNG_TEST, 0, 99);
            int fallbacks = 0;
            for (int i = 0; i < 200; i++) {
                ob_crop_box b = ob_random_resized_crop(w, h, &fallback_stream, (uint64_t)i * OB_RRC_DRAWS);
                fallbacks += b.width == 133 && b.height == 100 && b.x == 433 && b.y == 0;
            }
            CHECK(fallbacks > 0);
        }
        if (s == 2) {
            /* 640x480: areas average about (0.08 + 1) / 2 (less the clipped large ones), both ratio ends
             * reached. */
            double mean_area = area_sum / draws;
            CHECK(mean_area > 0.35 && mean_area < 0.56);
            CHECK(min_log_ratio < log(OB_RRC_MIN_RATIO) + 0.02 &&
                  max_log_ratio > log(OB_RRC_MAX_RATIO) - 0.02);
            CHECK(attempts_won > draws / 2);
        }
    }
}

/* Resampling: the full box at the image's own size is the image; flip is an exact mirror. */
static void test_resample(void) {
    ob_rgb8_image image = {malloc(SIDE * SIDE * 3), SIDE, SIDE, SIDE * SIDE * 3};
    for (int i = 0; i < SIDE * SIDE * 3; i++) image.pixels[i] = (unsigned char)((i * 37) % 251);
    float *out = malloc(sizeof(float) * SIDE * SIDE * 3), *flipped = malloc(sizeof(float) * SIDE * SIDE * 3);
    ob_crop_box whole = {0, 0, SIDE, SIDE};
    ob_resample_box(&image, whole, SIDE, false, &ob_imagenet_norm, out);
    int exact = 0;
    for (int i = 0; i < SIDE * SIDE * 3; i++)
        exact += fabsf(out[i] - normalised(image.pixels[i], i % 3)) < 1e-5f;
    CHECK(exact == SIDE * SIDE * 3);
    ob_crop_box part = {3, 5, 20.5, 17};
    ob_resample_box(&image, part, SIDE, false, &ob_imagenet_norm, out);
    ob_resample_box(&image, part, SIDE, true, &ob_imagenet_norm, flipped);
    int mirrored = 0;
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++)
            mirrored += memcmp(out + (y * SIDE + x) * 3, flipped + (y * SIDE + SIDE - 1 - x) * 3,
                               3 * sizeof(float)) == 0;
    CHECK(mirrored == SIDE * SIDE);
    free(out);
    free(flipped);
    ob_rgb8_image_free(&image);
}

/* Flips through the reader: with and without hflip the crops are the same
 * draws, so each row is either the same or its exact mirror, and both occur. */
static void test_flip(const char *root) {
    ob_image_folder *folder = open_folder(root, 1);
    if (!folder) return;
    batch with = train_batch(folder, 11, 0, 0, 12, 0, 1, &recipe);
    batch without = train_batch(folder, 11, 0, 0, 12, 0, 1, &crop_only);
    int same = 0, mirrored_only = 0;
    for (int64_t i = 0; i < with.rows; i++) {
        bool is_same = rows_equal(row_of(&with, i), row_of(&without, i));
        bool is_mirror = true;
        for (int y = 0; y < SIDE && is_mirror; y++)
            for (int x = 0; x < SIDE && is_mirror; x++)
                is_mirror =
                    memcmp(row_of(&with, i) + (y * SIDE + x) * 3,
                           row_of(&without, i) + (y * SIDE + SIDE - 1 - x) * 3, 3 * sizeof(float)) == 0;
        same += is_same;
        mirrored_only += is_mirror && !is_same;
    }
    CHECK(memcmp(with.labels, without.labels, 12 * sizeof(int32_t)) == 0);
    CHECK(same + mirrored_only == 12);
    CHECK(mirrored_only >= 1);
    CHECK(same >= 1);
    batch_free(&with);
    batch_free(&without);
    ob_image_folder_free(ctx, folder);
}

/* Two epochs of 3 batches of 4 as one rank; the same batches from 0, 1 and
 * 3 workers, from 2 ranks (rank slices = halves), and requested out of order. */
static void test_determinism(const char *root) {
    enum { EPOCHS = 2, BATCHES = 3, GLOBAL = 4 };
    batch reference[EPOCHS][BATCHES];
    ob_image_folder *folder = open_folder(root, 0);
    if (!folder) return;
    for (int e = 0; e < EPOCHS; e++)
        for (int b = 0; b < BATCHES; b++)
            reference[e][b] = train_batch(folder, 5, e, b, GLOBAL, 0, 1, &recipe);
    ob_image_folder_free(ctx, folder);
    /* Another epoch, another shuffle and other crops. */
    CHECK(memcmp(reference[0][0].images, reference[1][0].images,
                 sizeof(float) * GLOBAL * values_per_sample) != 0);

    static const int worker_counts[] = {0, 1, 3};
    for (int k = 0; k < 3; k++) {
        int64_t charged = ob_mem_current(ctx, OB_MEM_DATA);
        folder = open_folder(root, worker_counts[k]);
        if (!folder) continue;
        int identical = 0, halves = 0;
        for (int e = 0; e < EPOCHS; e++) {
            for (int b = 0; b < BATCHES; b++) {
                batch got = train_batch(folder, 5, e, b, GLOBAL, 0, 1, &recipe);
                identical += memcmp(got.images, reference[e][b].images,
                                    sizeof(float) * GLOBAL * values_per_sample) == 0 &&
                             memcmp(got.labels, reference[e][b].labels, sizeof(int32_t) * GLOBAL) == 0;
                batch_free(&got);
            }
        }
        /* Two ranks' slices of epoch 1, rank 1 first then rank 0 (prefetch misses). */
        for (int b = BATCHES - 1; b >= 0; b--) {
            for (int rank = 1; rank >= 0; rank--) {
                batch slice = train_batch(folder, 5, 1, b, GLOBAL, rank, 2, &recipe);
                const batch *whole = &reference[1][b];
                halves += memcmp(slice.images, whole->images + rank * 2 * values_per_sample,
                                 sizeof(float) * 2 * values_per_sample) == 0 &&
                          memcmp(slice.labels, whole->labels + rank * 2, 2 * sizeof(int32_t)) == 0;
                batch_free(&slice);
            }
        }
        check(identical == EPOCHS * BATCHES, "batches bit-identical for 0, 1 and 3 workers");
        check(halves == 2 * BATCHES, "2-rank slices are the halves of the 1-rank batch");
        /* The decoded batch is held (and charged) between requests. */
        CHECK(ob_mem_current(ctx, OB_MEM_DATA) - charged >=
              GLOBAL * values_per_sample * (int64_t)sizeof(float));
        ob_image_folder_free(ctx, folder);
        CHECK(ob_mem_current(ctx, OB_MEM_DATA) == charged);
    }
    for (int e = 0; e < EPOCHS; e++)
        for (int b = 0; b < BATCHES; b++) batch_free(&reference[e][b]);
}

/* Opening root fails with exit status 2 and a message holding `names`. */
static void expect_open_error(const char *root, const char *names, const char *what) {
    ob_image_folder_config config = {.dir = root, .side = SIDE, .workers = 1};
    ob_image_folder *folder = NULL;
    char err[1024] = "";
    int status = ob_image_folder_open(ctx, &config, &folder, err, sizeof err);
    check(status == 2 && folder == NULL && strstr(err, names) != NULL, what);
    if (status != 2 || !strstr(err, names)) fprintf(stderr, "  got %d: %s\n", status, err);
    ob_image_folder_free(ctx, folder);
}

static void test_bad_folders(void) {
    char root[64], path[1024];
    /* No train/ at all. */
    if (!make_tree(root, 0)) return;
    snprintf(path, sizeof path, "%s/train", root);
    expect_open_error(root, path, "a folder without train/ is refused, naming DIR/train");
    /* train/ without class folders. */
    mkdir(path, 0755);
    expect_open_error(root, path, "a train/ without class folders is refused");
    /* An empty class folder beside a full one. */
    write_tree_image(root, &tree[0]);
    snprintf(path, sizeof path, "%s/train/n00", root);
    mkdir(path, 0755);
    expect_open_error(root, path, "an empty class folder is refused, naming it");
    rmdir(path);
    /* No val/. */
    snprintf(path, sizeof path, "%s/val", root);
    expect_open_error(root, path, "a folder without val/ is refused, naming DIR/val");
    /* A val/ class that train/ lacks. */
    write_tree_image(root, &(tree_image){"val/n09/a.JPEG", 20, 20, SOLID_RGB, {1, 2, 3}});
    snprintf(path, sizeof path, "%s/val/n09", root);
    expect_open_error(root, path, "a val/ class unknown to train/ is refused, naming it");
    remove_tree(root);
}

/* A truncated JPEG fails the batch that holds it, naming the file, for
 * every worker count; the listing itself does not read it. */
static void test_corrupt_file(void) {
    char root[64], path[1024];
    if (!make_tree(root, TREE_IMAGES)) return;
    snprintf(path, sizeof path, "%s/train/n02/c.JPEG", root);
    struct stat info;
    CHECK(stat(path, &info) == 0 && truncate(path, info.st_size / 2) == 0);
    static const int worker_counts[] = {0, 3};
    for (int k = 0; k < 2; k++) {
        ob_image_folder *folder = open_folder(root, worker_counts[k]);
        if (!folder) continue;
        batch all = batch_new(TRAIN_IMAGES);
        char err[1024] = "";
        int status = ob_image_folder_train_batch(folder, 1, 0, 0, TRAIN_IMAGES, 0, 1, &recipe,
                                                 &all.image_tensor, &all.label_tensor, err, sizeof err);
        check(status == 2 && strstr(err, path) != NULL, "a truncated JPEG fails its batch, naming the file");
        check(strchr(err, '\n') == NULL, "the message is one line");
        if (status != 2) fprintf(stderr, "  got %d: %s\n", status, err);
        batch_free(&all);
        ob_image_folder_free(ctx, folder);
    }
    remove_tree(root);
}

int main(void) {
    ctx = ob_ctx_new(&(ob_ctx_config){.threads = 0, .seed = 1, .rank = 0, .world_size = 1});
    if (!ctx) return 1;
    char root[64];
    if (!make_tree(root, TREE_IMAGES)) {
        fprintf(stderr, "cannot write the JPEG tree under /tmp\n");
        return 1;
    }
    int64_t charged = ob_mem_current(ctx, OB_MEM_DATA);
    test_listing_and_colours(root);
    test_center_crop(root);
    test_crop_geometry();
    test_resample();
    test_flip(root);
    test_determinism(root);
    CHECK(ob_mem_current(ctx, OB_MEM_DATA) == charged);
    remove_tree(root);
    test_bad_folders();
    test_corrupt_file();
    ob_ctx_free(ctx);
    return report_checks();
}
