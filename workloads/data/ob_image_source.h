/* ob_image_source: one face for the image datasets a workload trains on,
 * the in-memory ob_image_data (Fashion-MNIST, synthetic) and the streaming
 * ob_image_folder (ImageNet), so the workload does not care which it got.
 * Both share ob_batch_plan, so batches_per_epoch and the eval shards are
 * plain functions of the sizes. */
#ifndef OB_IMAGE_SOURCE_H
#define OB_IMAGE_SOURCE_H

#include "workloads/data/ob_image_data.h"
#include "workloads/data/ob_image_folder.h"

typedef struct {
    void *impl; /* the ob_image_data or ob_image_folder; owned */
    int height, width, channels;
    int64_t train_size, eval_size;
    /* As ob_image_data_train_batch. */
    int (*train_batch)(void *impl, uint64_t seed, int64_t epoch, int64_t batch_index, int64_t global_batch,
                       int rank, int world_size, const ob_augment_config *augment, ob_tensor *images,
                       ob_tensor *labels, char *err, size_t err_len);
    /* As ob_image_data_eval_batch, with a message in err on failure. */
    int (*eval_batch)(void *impl, int64_t first, int64_t count, ob_tensor *images, ob_tensor *labels,
                      char *err, size_t err_len);
    void (*free)(ob_ctx *ctx, void *impl);
} ob_image_source;

/* Sources that take ownership of the dataset (freed by ob_image_source_free). */
ob_image_source ob_image_source_of_data(ob_image_data *data);
ob_image_source ob_image_source_of_folder(ob_image_folder *folder);
/* Frees the dataset; a zeroed source is fine. */
void ob_image_source_free(ob_ctx *ctx, ob_image_source *source);

#endif
