/* ob_bert_shard: BERT pretraining shards in the NVIDIA/MLPerf HDF5 layout,
 * so that shards made elsewhere train here and ours train elsewhere.
 *
 * A shard holds N sequences of seq_len tokens with up to max_pred masked
 * predictions each, as six datasets at the root:
 *   input_ids            [N, seq_len]   token ids, 0 ([PAD]) after the end
 *   input_mask           [N, seq_len]   1 for a real token, 0 for padding
 *   segment_ids          [N, seq_len]   0 for [CLS] A [SEP], 1 for B [SEP]
 *   masked_lm_positions  [N, max_pred]  positions of the masked tokens, 0-padded
 *   masked_lm_ids        [N, max_pred]  their original ids, 0-padded
 *   next_sentence_labels [N]            1 when B is a random segment, 0 when it follows A
 * Published shards store int64 for some of these and int8 or uint8 for
 * others, depending on the script version: any integer type is read,
 * converted by HDF5 to int32. We write int32, chunked and gzip-compressed.
 *
 * Padding predictions are stored as position 0 / id 0 (position 0 is [CLS],
 * which is never masked). The reader hands them out as id -1, the label
 * the engine's masked-LM gather (ob_masked_lm_gather) skips, and the writer
 * takes -1 back to 0, so a write then read returns the batch unchanged.
 */
#ifndef OB_BERT_SHARD_H
#define OB_BERT_SHARD_H

#include <stddef.h>
#include <stdint.h>

/* One batch of rows in caller-owned row-major buffers. */
typedef struct {
    int32_t *input_ids;            /* [n, seq_len] */
    int32_t *input_mask;           /* [n, seq_len] */
    int32_t *segment_ids;          /* [n, seq_len] */
    int32_t *masked_lm_positions;  /* [n, max_pred], 0 for padding */
    int32_t *masked_lm_ids;        /* [n, max_pred], -1 for padding */
    int32_t *next_sentence_labels; /* [n] */
} ob_bert_batch;

/* Buffers for `rows` rows in one allocation; 0, or 1 when out of memory. */
int ob_bert_batch_alloc(ob_bert_batch *batch, int64_t rows, int seq_len, int max_pred);
void ob_bert_batch_free(ob_bert_batch *batch);

typedef struct ob_bert_shard ob_bert_shard;
typedef struct ob_bert_shard_writer ob_bert_shard_writer;

/* Opens a shard and checks its layout: every dataset present, of an
 * integer type, 2-D (next_sentence_labels 1-D), the same N everywhere, at
 * least one row, the same seq_len in the three token datasets and the same
 * max_pred in the two prediction datasets. Returns 0, or 2 with one line
 * naming the file and the dataset. */
int ob_bert_shard_open(const char *path, ob_bert_shard **out, char *err, size_t err_len);
int64_t ob_bert_shard_rows(const ob_bert_shard *shard);
int ob_bert_shard_seq_len(const ob_bert_shard *shard);
int ob_bert_shard_max_pred(const ob_bert_shard *shard);
/* Reads rows [start, start + n) into batch (hyperslab reads: only those
 * rows leave the file, and nothing is allocated here). Returns 0, or 2
 * when the rows are out of range, a masked position lies outside the
 * sequence, or the file cannot be read. */
int ob_bert_shard_read(ob_bert_shard *shard, int64_t start, int64_t n, ob_bert_batch *batch, char *err, size_t err_len);
void ob_bert_shard_close(ob_bert_shard *shard);

/* Creates a shard of `rows` rows (>= 1) at path, replacing any file there.
 * Returns 0, or 2 when the file cannot be created or the sizes are bad. */
int ob_bert_shard_create(const char *path, int64_t rows, int seq_len, int max_pred, ob_bert_shard_writer **out,
                         char *err, size_t err_len);
/* Writes rows [start, start + n); 0 or 2. */
int ob_bert_shard_write(ob_bert_shard_writer *writer, int64_t start, int64_t n, const ob_bert_batch *batch, char *err,
                        size_t err_len);
/* Closes the file and frees the writer (also after a failed write); 0, or
 * 2 when the data did not reach the disk. */
int ob_bert_shard_finish(ob_bert_shard_writer *writer, char *err, size_t err_len);

#endif
