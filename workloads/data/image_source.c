#include "workloads/data/ob_image_source.h"

#include <inttypes.h>
#include <stdio.h>

static int data_train_batch(void *impl, uint64_t seed, int64_t epoch, int64_t batch_index,
                            int64_t global_batch, int rank, int world_size, const ob_augment_config *augment,
                            ob_tensor *images, ob_tensor *labels, char *err, size_t err_len) {
    return ob_image_data_train_batch(impl, seed, epoch, batch_index, global_batch, rank, world_size, augment,
                                     images, labels, err, err_len);
}

static int data_eval_batch(void *impl, int64_t first, int64_t count, ob_tensor *images, ob_tensor *labels,
                           char *err, size_t err_len) {
    if (ob_image_data_eval_batch(impl, first, count, images, labels) == 0) return 0;
    snprintf(err, err_len,
             "evaluation batch [%" PRId64 ", +%" PRId64 "): expected inside the %" PRId64
             " evaluation samples and batch tensors that fit",
             first, count, ob_image_data_eval_size(impl));
    return 2;
}

static void data_free(ob_ctx *ctx, void *impl) { ob_image_data_free(ctx, impl); }

ob_image_source ob_image_source_of_data(ob_image_data *data) {
    return (ob_image_source){.impl = data,
                             .height = ob_image_data_height(data),
                             .width = ob_image_data_width(data),
                             .channels = ob_image_data_channels(data),
                             .train_size = ob_image_data_train_size(data),
                             .eval_size = ob_image_data_eval_size(data),
                             .train_batch = data_train_batch,
                             .eval_batch = data_eval_batch,
                             .free = data_free};
}

static int folder_train_batch(void *impl, uint64_t seed, int64_t epoch, int64_t batch_index,
                              int64_t global_batch, int rank, int world_size,
                              const ob_augment_config *augment, ob_tensor *images, ob_tensor *labels,
                              char *err, size_t err_len) {
    return ob_image_folder_train_batch(impl, seed, epoch, batch_index, global_batch, rank, world_size,
                                       augment, images, labels, err, err_len);
}

static int folder_eval_batch(void *impl, int64_t first, int64_t count, ob_tensor *images, ob_tensor *labels,
                             char *err, size_t err_len) {
    return ob_image_folder_eval_batch(impl, first, count, images, labels, err, err_len);
}

static void folder_free(ob_ctx *ctx, void *impl) { ob_image_folder_free(ctx, impl); }

ob_image_source ob_image_source_of_folder(ob_image_folder *folder) {
    int side = ob_image_folder_side(folder);
    return (ob_image_source){.impl = folder,
                             .height = side,
                             .width = side,
                             .channels = 3,
                             .train_size = ob_image_folder_train_size(folder),
                             .eval_size = ob_image_folder_eval_size(folder),
                             .train_batch = folder_train_batch,
                             .eval_batch = folder_eval_batch,
                             .free = folder_free};
}

void ob_image_source_free(ob_ctx *ctx, ob_image_source *source) {
    if (source->impl) source->free(ctx, source->impl);
    *source = (ob_image_source){0};
}
