/* ob_bert_data: BERT pretraining examples (masked LM + next sentence) from
 * tokenized documents, made the way Google's create_pretraining_data makes
 * them, and written as shards (ob_bert_shard.h).
 *
 * For each of dupe_factor passes and each document: a target length is
 * seq_len - 3, or with probability short_seq_prob a uniform length in
 * [2, seq_len - 3]. Sentences are gathered into a chunk until it reaches
 * the target or the document ends; segment A is the chunk's first k
 * sentences (k uniform in [1, sentences - 1], or 1). With probability 1/2,
 * and always when the chunk has one sentence, B is a random stretch of
 * another document of the same split (from a uniform sentence on, until
 * it fills the target; next_sentence_label 1) and the chunk's unused
 * sentences are put back; otherwise B is the rest of the chunk (label 0).
 * While the pair is longer than seq_len - 3 the longer segment (B on a tie)
 * loses a token at its front or back, with probability 1/2 each. The
 * example is [CLS] A [SEP] B [SEP] with segment ids 0 up to the first
 * [SEP], 1 after it. A split of one document has no other document: its
 * one-sentence chunks make no example and the others always take label 0.
 *
 * Masking: of the n tokens that are not [CLS] or [SEP], min(max_pred,
 * max(1, round(masked_lm_prob n))) distinct positions are chosen
 * uniformly (Google's script takes the fraction of all tokens, [CLS] and
 * [SEP] included; we take it of the tokens that can be masked). Each
 * becomes [MASK] with probability 0.8, stays with 0.1, and with 0.1 becomes
 * a token drawn uniformly from the vocabulary without its five special
 * tokens (which may be the same token). Predictions are listed by position.
 *
 * Every draw comes from ob_rng, keyed by the seed:
 *   OB_RNG_SHUFFLE, step 0            the train/eval split of the documents
 *   OB_RNG_SHUFFLE, step 1 + split    the order of that split's examples
 *   OB_RNG_MASKING, step pass * n_docs + document
 *                                     everything about one document in one pass
 * so the same seed gives the same examples, and a document's examples do
 * not depend on the order documents are processed in.
 */
#ifndef OB_BERT_DATA_H
#define OB_BERT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "workloads/bert/ob_bert_corpus.h"
#include "workloads/bert/ob_bert_shard.h"
#include "workloads/bert/ob_ranges.h"
#include "workloads/bert/ob_wordpiece.h"

enum { OB_BERT_SPLIT_TRAIN, OB_BERT_SPLIT_EVAL };

/* Token ids of sentences of documents. */
typedef struct {
    ob_token_ids tokens;
    ob_ranges sentences; /* ranges of tokens, none empty */
    ob_ranges docs;      /* ranges of sentences, none empty */
} ob_bert_documents;

/* Appends a sentence to the document being built (nothing when n is 0);
 * 0, or 1 when out of memory. */
int ob_bert_documents_add_sentence(ob_bert_documents *docs, const int32_t *ids, int64_t n);
/* Ends the document being built (nothing when it has no sentence); 0 or 1. */
int ob_bert_documents_end(ob_bert_documents *docs);
/* Appends the corpus's documents, tokenized; 0 or 1. */
int ob_bert_documents_tokenize(ob_bert_documents *docs, const ob_bert_corpus *corpus, const ob_wordpiece *vocab);
void ob_bert_documents_free(ob_bert_documents *docs);

/* Documents by split, each list in increasing order. */
typedef struct {
    int64_t *train, *eval;
    int64_t n_train, n_eval;
} ob_bert_split;

/* Holds out round(eval_frac n_docs) documents, at least 1 when eval_frac
 * > 0 and at most n_docs - 1, chosen uniformly. 0, or 1 when out of
 * memory. */
int ob_bert_split_documents(int64_t n_docs, double eval_frac, uint64_t seed, ob_bert_split *out);
void ob_bert_split_free(ob_bert_split *split);

typedef struct {
    int seq_len;           /* max_seq_length, >= 5 */
    int max_pred;          /* max_predictions_per_seq, in [1, seq_len] */
    int dupe_factor;       /* passes over the documents, each with new pairs and masks */
    double masked_lm_prob; /* 0.15 */
    double short_seq_prob; /* 0.1 */
    uint64_t seed;
    int32_t vocab_size; /* > OB_WORDPIECE_N_SPECIALS */
    ob_wordpiece_specials specials;
} ob_bert_example_options;

/* Google's settings for BERT phase 1 (seq_len 128, max_pred 20,
 * dupe_factor 5, masked_lm_prob 0.15, short_seq_prob 0.1) and seed 1. */
ob_bert_example_options ob_bert_example_defaults(int32_t vocab_size, ob_wordpiece_specials specials);

typedef struct ob_bert_examples ob_bert_examples;

/* The examples of documents doc_ids (one split), in a shuffled order.
 * Returns 0; 2 with one line in err when the options are out of range;
 * 1 when out of memory. */
int ob_bert_examples_make(const ob_bert_documents *docs, const int64_t *doc_ids, int64_t n_doc_ids, int split,
                          const ob_bert_example_options *options, ob_bert_examples **out, char *err, size_t err_len);
int64_t ob_bert_examples_count(const ob_bert_examples *examples);
/* Over all examples: tokens other than padding, and masked predictions. */
int64_t ob_bert_examples_tokens(const ob_bert_examples *examples);
int64_t ob_bert_examples_predictions(const ob_bert_examples *examples);
/* Examples [first, first + n) as shard rows (ob_bert_shard.h's batch, of
 * the options' seq_len and max_pred). */
void ob_bert_examples_rows(const ob_bert_examples *examples, int64_t first, int64_t n, const ob_bert_batch *batch);
/* Writes examples [first, first + n) as a shard at path; 0, 1 or 2. */
int ob_bert_examples_write_shard(const ob_bert_examples *examples, int64_t first, int64_t n, const char *path,
                                 char *err, size_t err_len);
void ob_bert_examples_free(ob_bert_examples *examples);

#endif
