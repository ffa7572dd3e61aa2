/* ob_image_data: an in-memory image classification dataset (Fashion-MNIST
 * or synthetic) that hands out normalised, optionally augmented, sharded
 * training batches and contiguous evaluation shards.
 *
 * Images are stored float32 NHWC, already normalised, so a batch is a copy
 * (plus crop/flip) into the caller's tensors. Every random choice is keyed
 * by (seed, purpose, rank 0, step = epoch) and the sample's position in the
 * epoch's global order, so a batch is the same whatever the world size and
 * thread count: rank r's slice of global batch b is rows
 * [r * global_batch / world_size, (r + 1) * global_batch / world_size) of
 * the world-size-1 batch b, augmentation included.
 */
#ifndef OB_IMAGE_DATA_H
#define OB_IMAGE_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/ob_ctx.h"
#include "nn/ob_tensor.h"

#define OB_FASHION_MNIST_CLASSES 10

typedef struct ob_image_data ob_image_data;

typedef struct {
    const char *dir;     /* holds {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz */
    int64_t train_limit; /* first N training images; 0 = all */
    int64_t eval_limit;  /* first N test images; 0 = all */
    int pad_to;          /* side after zero-padding equally on each side (32 for 28x28); 0 = none */
} ob_image_data_config;

/* Loads Fashion-MNIST. Pixels are normalised with the mean and std of the
 * (limited) training set after padding, padding pixels counting as raw 0;
 * the same constants are applied to the test set. The bytes held are
 * charged to OB_MEM_DATA of ctx (released by ob_image_data_free).
 * Returns 0, or 2 with one line in err naming the file and what was
 * expected (*out is then NULL). */
int ob_image_data_load_fashion_mnist(ob_ctx *ctx, const ob_image_data_config *config, ob_image_data **out,
                                     char *err, size_t err_len);
/* Synthetic data of any shape: pixels standard normal (so already
 * normalised: mean 0, std 1, and raw 0 is normalised 0), labels uniform in
 * [0, classes), all drawn with purpose OB_RNG_SYNTHETIC_DATA from `seed`. */
int ob_image_data_synthetic(ob_ctx *ctx, int64_t n_train, int64_t n_eval, int height, int width, int channels,
                            int classes, uint64_t seed, ob_image_data **out, char *err, size_t err_len);
void ob_image_data_free(ob_ctx *ctx, ob_image_data *data);

int64_t ob_image_data_train_size(const ob_image_data *data);
int64_t ob_image_data_eval_size(const ob_image_data *data);
int ob_image_data_height(const ob_image_data *data);
int ob_image_data_width(const ob_image_data *data);
int ob_image_data_channels(const ob_image_data *data);
int ob_image_data_classes(const ob_image_data *data);
/* Channel 0's normalisation, in raw pixel units (0-255 for Fashion-MNIST):
 * stored value = (raw - mean) / std. */
void ob_image_data_normalisation(const ob_image_data *data, double *mean, double *std);

typedef struct {
    bool augment;     /* master switch: false gives the stored images exactly */
    int crop_padding; /* random crop of the image zero-padded by this many px; 0 = no crop */
    bool hflip;       /* horizontal flip with probability 1/2 */
} ob_augment_config;

/* Full batches per epoch; the last partial batch is dropped. */
int64_t ob_image_data_batches_per_epoch(const ob_image_data *data, int64_t global_batch);
/* Writes rank's slice of global batch `batch_index` of `epoch` into images
 * (F32 [global_batch / world_size, H, W, C], CPU) and labels (I32 [same]).
 * The epoch's order is a Fisher-Yates shuffle keyed by (seed,
 * OB_RNG_SHUFFLE, rank 0, step = epoch), shared by all ranks; it is
 * computed once per epoch and cached in the dataset, so concurrent calls on
 * one dataset from several threads are not supported (the copy itself runs
 * on the OpenMP pool). augment may be NULL (no augmentation).
 * Returns 0, or 2 with one line in err. */
int ob_image_data_train_batch(const ob_image_data *data, uint64_t seed, int64_t epoch, int64_t batch_index,
                              int64_t global_batch, int rank, int world_size,
                              const ob_augment_config *augment, ob_tensor *images, ob_tensor *labels,
                              char *err, size_t err_len);

/* Rank's contiguous shard of the test set: world_size near-equal shards,
 * the first (eval_size % world_size) one sample larger. */
void ob_image_data_eval_shard(const ob_image_data *data, int rank, int world_size, int64_t *start,
                              int64_t *count);
/* Copies test samples [first, first + count) un-augmented into the first
 * `count` rows of images (F32 [>= count, H, W, C]) and labels (I32
 * [>= count]), so one pair of tensors serves a shard's short last batch.
 * Returns 0, or 2 when the range or the tensors do not fit. */
int ob_image_data_eval_batch(const ob_image_data *data, int64_t first, int64_t count, ob_tensor *images,
                             ob_tensor *labels);

#endif
