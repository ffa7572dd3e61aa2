#include "workloads/data/ob_batch_plan.h"

#include <inttypes.h>
#include <stdio.h>

#include "nn/ob_rng.h"

int64_t ob_batches_per_epoch(int64_t samples, int64_t global_batch) {
    return global_batch > 0 ? samples / global_batch : 0;
}

void ob_eval_shard(int64_t samples, int rank, int world_size, int64_t *start, int64_t *count) {
    /* A rank outside the world holds nothing rather than someone else's shard. */
    if (world_size < 1 || rank < 0 || rank >= world_size) {
        *start = *count = 0;
        return;
    }
    int64_t base = samples / world_size, larger = samples % world_size;
    *start = rank * base + (rank < larger ? rank : larger);
    *count = base + (rank < larger);
}

void ob_shuffle_indices(int64_t *items, int64_t n, const ob_rng_stream *stream, uint64_t first_index) {
    for (int64_t i = 0; i < n; i++) items[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = ob_rng_below(stream, first_index + (uint64_t)i, (uint32_t)(i + 1));
        int64_t swapped = items[i];
        items[i] = items[j];
        items[j] = swapped;
    }
}

const int64_t *ob_epoch_order_get(ob_epoch_order *order, uint64_t seed, int64_t epoch) {
    if (order->valid && order->seed == seed && order->epoch == epoch) return order->sample_at;
    ob_rng_stream stream = ob_rng_stream_make(seed, OB_RNG_SHUFFLE, 0, (uint64_t)epoch);
    ob_shuffle_indices(order->sample_at, order->samples, &stream, 0);
    order->valid = true;
    order->seed = seed;
    order->epoch = epoch;
    return order->sample_at;
}

int ob_train_request_check(int64_t samples, int64_t epoch, int64_t batch_index, int64_t global_batch,
                           int rank, int world_size, char *err, size_t err_len) {
    if (world_size < 1 || rank < 0 || rank >= world_size || global_batch < 1 || global_batch % world_size) {
        snprintf(err, err_len,
                 "training batch: global batch %" PRId64
                 ", rank %d of %d: expected a positive batch divisible by "
                 "the world size and 0 <= rank < world size",
                 global_batch, rank, world_size);
        return 2;
    }
    int64_t batches = ob_batches_per_epoch(samples, global_batch);
    if (epoch < 0 || epoch >= OB_MAX_EPOCH || batch_index < 0 || batch_index >= batches) {
        snprintf(err, err_len,
                 "training batch %" PRId64 " of epoch %" PRId64 ": expected 0 <= batch < %" PRId64
                 " (%" PRId64 " samples / batch %" PRId64 ") and 0 <= epoch < 2^40",
                 batch_index, epoch, batches, samples, global_batch);
        return 2;
    }
    return 0;
}

int ob_batch_tensors_check(int height, int width, int channels, int64_t rows, bool exact_rows,
                           const ob_tensor *images, const ob_tensor *labels, char *err, size_t err_len) {
    bool images_ok = images->device == OB_CPU && images->dtype == OB_F32 && images->ndim == 4 &&
                     images->shape[1] == height && images->shape[2] == width && images->shape[3] == channels;
    bool labels_ok = labels->device == OB_CPU && labels->dtype == OB_I32 && labels->ndim == 1;
    bool rows_ok = exact_rows ? images->shape[0] == rows && labels->shape[0] == rows
                              : images->shape[0] >= rows && labels->shape[0] >= rows;
    if (images_ok && labels_ok && rows_ok) return 0;
    snprintf(err, err_len,
             "batch tensors: expected cpu f32 [%s%" PRId64 ", %d, %d, %d] images and cpu i32 [%s%" PRId64
             "] labels, got %s %d-d images with %" PRId64 " rows and %s %d-d labels with %" PRId64 " rows",
             exact_rows ? "" : ">= ", rows, height, width, channels, exact_rows ? "" : ">= ", rows,
             ob_dtype_name(images->dtype), images->ndim, images->shape[0], ob_dtype_name(labels->dtype),
             labels->ndim, labels->shape[0]);
    return 2;
}
