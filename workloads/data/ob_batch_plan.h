/* ob_batch_plan: how an image dataset's samples become batches, shared by
 * the in-memory dataset (ob_image_data) and the ImageNet folder reader
 * (ob_image_folder), so both hand out the same positions to the same ranks.
 *
 * An epoch's global order is a permutation of the training samples keyed by
 * (seed, OB_RNG_SHUFFLE, rank 0, step = epoch); global batch b holds
 * positions [b * global_batch, (b + 1) * global_batch) of it, and rank r's
 * slice is rows [r * local, (r + 1) * local) of that with local =
 * global_batch / world_size. Random augmentation is keyed by the position,
 * never by the rank, so a slice equals the same rows of the 1-rank batch. */
#ifndef OB_BATCH_PLAN_H
#define OB_BATCH_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/ob_rng.h"
#include "nn/ob_tensor.h"

/* ob_rng streams take steps below 2^40; the step is the epoch. */
#define OB_MAX_EPOCH ((int64_t)1 << 40)

/* Full batches per epoch; the last partial batch is dropped. */
int64_t ob_batches_per_epoch(int64_t samples, int64_t global_batch);

/* Rank's contiguous shard of `samples` evaluation samples: world_size
 * near-equal shards, the first (samples % world_size) one sample larger; a
 * rank outside the world gets an empty shard. */
void ob_eval_shard(int64_t samples, int rank, int world_size, int64_t *start, int64_t *count);

/* items = a uniform permutation of [0, n), by Fisher-Yates from the
 * identity: step i (from n - 1 down) swaps item i with one drawn from
 * [0, i] by index first_index + i of the stream. Disjoint index ranges of
 * one stream give independent permutations. n < 2^32. */
void ob_shuffle_indices(int64_t *items, int64_t n, const ob_rng_stream *stream, uint64_t first_index);

/* The shuffled order of one epoch: sample_at[position] = training index.
 * It is recomputed only when (seed, epoch) changes, so one epoch's batches
 * share one shuffle; not safe to share between threads. */
typedef struct {
    int64_t *sample_at; /* `samples` entries, owned by whoever made the struct */
    int64_t samples;
    bool valid;
    uint64_t seed;
    int64_t epoch;
} ob_epoch_order;

const int64_t *ob_epoch_order_get(ob_epoch_order *order, uint64_t seed, int64_t epoch);

/* Checks a training-batch request against `samples` training samples.
 * Returns 0, or 2 with one line in err. */
int ob_train_request_check(int64_t samples, int64_t epoch, int64_t batch_index, int64_t global_batch,
                           int rank, int world_size, char *err, size_t err_len);

/* Batch tensors must be CPU f32 [rows, height, width, channels] and i32
 * [rows]; with exact_rows false, at least `rows` rows. Returns 0, or 2 with
 * one line in err (err may be NULL). */
int ob_batch_tensors_check(int height, int width, int channels, int64_t rows, bool exact_rows,
                           const ob_tensor *images, const ob_tensor *labels, char *err, size_t err_len);

#endif
