/* ob_image_folder: ImageNet read from its folders, DIR/train/<wnid>/NAME.JPEG
 * and DIR/val/<wnid>/NAME.JPEG (the validation set sorted into class folders),
 * decoded batch by batch: only the file list is held.
 *
 * Classes are train/'s subfolders in byte order (label = position); val/
 * uses a subset of them. Training samples get torchvision's ImageNet
 * recipe: RandomResizedCrop to side x side (ob_image_crop.h), horizontal
 * flip with probability 1/2, then (pixel / 255 - mean) / std with ImageNet's
 * channel statistics; evaluation samples are resized to eval_resize on the
 * shorter side and centre-cropped to side x side. Output is F32 NHWC, C = 3.
 *
 * Batches are ob_batch_plan's: the same epoch order, rank slices and eval
 * shards as ob_image_data, and every random draw keyed by (seed,
 * OB_RNG_AUGMENT, rank 0, step = epoch) and the sample's position in the
 * epoch, so a batch is bit-identical for any world size, thread count and
 * worker count.
 *
 * Prefetch: after handing out training batch b, worker threads decode the
 * next one (b + 1, or batch 0 of the next epoch) while the caller trains;
 * a request for another batch is decoded on demand. Decode buffers and the
 * prefetched batch are charged to OB_MEM_DATA of the ctx given at open, on
 * the caller's thread. Calls on one folder must come from one thread. */
#ifndef OB_IMAGE_FOLDER_H
#define OB_IMAGE_FOLDER_H

#include <stddef.h>
#include <stdint.h>

#include "nn/ob_ctx.h"
#include "nn/ob_tensor.h"
#include "workloads/data/ob_image_data.h"

/* The shorter side an evaluation image is resized to per output pixel: 256 for 224. */
#define OB_EVAL_RESIZE_PER_SIDE (256.0 / 224.0)

typedef struct ob_image_folder ob_image_folder;

typedef struct {
    const char *dir;                 /* holds train/ and val/ */
    int side;                        /* output height = width, e.g. 224 */
    int eval_resize;                 /* shorter side before the evaluation crop; 0 = side * 256 / 224 */
    int workers;                     /* decode threads; 0 = decode on the caller's thread, no prefetch */
    int64_t train_limit, eval_limit; /* first N images of the sorted lists; 0 = all */
} ob_image_folder_config;

/* Lists the folders (nothing is decoded yet). Returns 0, or 2 with one line
 * in err naming the path and what was expected (no train/ or val/, a class
 * folder without images, a val/ class unknown to train/, a bad setting). */
int ob_image_folder_open(ob_ctx *ctx, const ob_image_folder_config *config, ob_image_folder **out, char *err,
                         size_t err_len);
/* Stops the prefetch, joins the workers, releases the memory. */
void ob_image_folder_free(ob_ctx *ctx, ob_image_folder *folder);

int64_t ob_image_folder_train_size(const ob_image_folder *folder);
int64_t ob_image_folder_eval_size(const ob_image_folder *folder);
int ob_image_folder_side(const ob_image_folder *folder);
int ob_image_folder_classes(const ob_image_folder *folder);
const char *ob_image_folder_class_name(const ob_image_folder *folder, int label);

/* As ob_image_data_train_batch, with images F32 [global_batch /
 * world_size, side, side, 3]. augment NULL or off: the evaluation
 * transform; on: random-resized crop, and flips when augment->hflip
 * (crop_padding must be 0). A file that cannot be decoded fails the batch
 * that needs it: 2 with one line in err naming the file. */
int ob_image_folder_train_batch(ob_image_folder *folder, uint64_t seed, int64_t epoch, int64_t batch_index,
                                int64_t global_batch, int rank, int world_size,
                                const ob_augment_config *augment, ob_tensor *images, ob_tensor *labels,
                                char *err, size_t err_len);

/* Decodes validation images [first, first + count) into the first `count`
 * rows of images (F32 [>= count, side, side, 3]) and labels. Returns 0, or 2
 * with one line in err. */
int ob_image_folder_eval_batch(ob_image_folder *folder, int64_t first, int64_t count, ob_tensor *images,
                               ob_tensor *labels, char *err, size_t err_len);

#endif
