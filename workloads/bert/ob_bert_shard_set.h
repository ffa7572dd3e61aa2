/* ob_bert_shard_set: the sequences of one split (training or evaluation)
 * as one list, from every shard in a directory whose name matches a glob
 * pattern (optbench data bert's train_000.h5, train_001.h5, ...; the
 * NVIDIA/MLPerf training shards), in the pattern's sorted order.
 *
 * Training reads an epoch's order, shuffled at two levels, as MLPerf's
 * BERT reference and NVIDIA's loader shuffle: the shards' order is a
 * permutation keyed by (seed, OB_RNG_SHUFFLE, 0, epoch), and each shard's
 * rows are permuted by (seed, OB_RNG_SHUFFLE, 1, epoch) at indices from the
 * shard's first row. A global batch so spans one or two shards, and only
 * they need to be open (at most OB_BERT_SET_OPEN shards are open at once,
 * so thousands of published shards do not exhaust file descriptors) and
 * only their row permutations held: the memory is 8 bytes per sequence of
 * the largest shard, not of the set. Every rank computes the same order.
 *
 * A limit keeps the first `limit` sequences of the list (whole shards, the
 * last one cut). Errors are one line naming the file: 2 for bad data, 1
 * for out of memory. */
#ifndef OB_BERT_SHARD_SET_H
#define OB_BERT_SHARD_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "workloads/bert/ob_bert_shard.h"

#define OB_BERT_SET_OPEN 2

typedef struct ob_bert_shard_set ob_bert_shard_set;

/* Opens every shard matching dir/pattern (pattern alone when absolute),
 * checking each one's layout and that all share seq_len and max_pred;
 * keeps their row counts and closes them again. limit 0 = every sequence. */
int ob_bert_shard_set_open(const char *dir, const char *pattern, int64_t limit, ob_bert_shard_set **out, char *err,
                           size_t err_len);
int64_t ob_bert_shard_set_rows(const ob_bert_shard_set *set);
int ob_bert_shard_set_files(const ob_bert_shard_set *set);
int ob_bert_shard_set_seq_len(const ob_bert_shard_set *set);
int ob_bert_shard_set_max_pred(const ob_bert_shard_set *set);

/* Where position `position` of the list lies: in stored order
 * (shuffled false) or in epoch's shuffled order keyed by seed. *file
 * indexes the sorted shard list, *row the shard's rows. */
int ob_bert_shard_set_locate(ob_bert_shard_set *set, bool shuffled, uint64_t seed, int64_t epoch, int64_t position,
                             int *file, int64_t *row, char *err, size_t err_len);

/* Reads positions [start, start + n) of that order into rows [0, n) of
 * batch; runs of consecutive rows of one shard are read at once. */
int ob_bert_shard_set_read(ob_bert_shard_set *set, bool shuffled, uint64_t seed, int64_t epoch, int64_t start,
                           int64_t n, ob_bert_batch *batch, char *err, size_t err_len);

void ob_bert_shard_set_close(ob_bert_shard_set *set);

#endif
