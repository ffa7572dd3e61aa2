#include "workloads/bert/ob_bert_data.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ob_rng.h"
#include "workloads/bert/ob_grow.h"

/* Shard rows converted and written at a time. */
#define WRITE_ROWS 256
/* ob_rng_below draws below a uint32 bound; steps stay below 2^40. */
#define MAX_DRAW_BOUND UINT32_MAX
#define MAX_RNG_STEP ((int64_t)1 << 40)
/* Masking choices: of 10 equally likely draws, 8 mask, 1 keeps, 1 replaces. */
#define MASK_CHOICES 10
#define MASK_KEEP 8
#define MASK_RANDOM 9

/* ---- documents ---- */

int ob_bert_documents_add_sentence(ob_bert_documents *docs, const int32_t *ids, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (ob_token_ids_push(&docs->tokens, ids[i]) != 0) return 1;
    return n > 0 ? ob_ranges_close(&docs->sentences, docs->tokens.count) : 0;
}

int ob_bert_documents_end(ob_bert_documents *docs) {
    bool has_sentences = docs->sentences.count > ob_ranges_next(&docs->docs);
    return has_sentences ? ob_ranges_close(&docs->docs, docs->sentences.count) : 0;
}

int ob_bert_documents_tokenize(ob_bert_documents *docs, const ob_bert_corpus *corpus, const ob_wordpiece *vocab) {
    for (int64_t d = 0; d < corpus->docs.count; d++) {
        for (int64_t s = ob_ranges_begin(&corpus->docs, d); s < ob_ranges_end(&corpus->docs, d); s++) {
            const char *text = ob_bert_corpus_sentence(corpus, s);
            int64_t before = docs->tokens.count;
            if (ob_wordpiece_tokenize(vocab, text, strlen(text), &docs->tokens) != 0) return 1;
            if (docs->tokens.count > before && ob_ranges_close(&docs->sentences, docs->tokens.count) != 0) return 1;
        }
        if (ob_bert_documents_end(docs) != 0) return 1;
    }
    return 0;
}

void ob_bert_documents_free(ob_bert_documents *docs) {
    ob_token_ids_free(&docs->tokens);
    ob_ranges_free(&docs->sentences);
    ob_ranges_free(&docs->docs);
}

/* ---- draws ---- */

/* A stream read in order: each draw takes the next index. */
typedef struct {
    ob_rng_stream stream;
    uint64_t next;
} draws;

static draws draws_make(uint64_t seed, ob_rng_purpose purpose, int64_t step) {
    return (draws){ob_rng_stream_make(seed, purpose, 0, (uint64_t)step), 0};
}

/* Uniform in [0, n), n >= 1. */
static int64_t draw_below(draws *d, int64_t n) { return ob_rng_below(&d->stream, d->next++, (uint32_t)n); }

static bool draw_chance(draws *d, double p) { return ob_rng_uniform(&d->stream, d->next++) < p; }

static void shuffle(int64_t *items, int64_t n, draws *d) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = draw_below(d, i + 1), kept = items[i];
        items[i] = items[j];
        items[j] = kept;
    }
}

static int compare_int64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* ---- the split ---- */

int ob_bert_split_documents(int64_t n_docs, double eval_frac, uint64_t seed, ob_bert_split *out) {
    *out = (ob_bert_split){0};
    int64_t *order = malloc((size_t)(n_docs > 0 ? n_docs : 1) * sizeof *order);
    if (!order) return 1;
    for (int64_t d = 0; d < n_docs; d++) order[d] = d;
    draws d = draws_make(seed, OB_RNG_SHUFFLE, 0);
    shuffle(order, n_docs, &d);
    int64_t n_eval = eval_frac > 0 ? llround(eval_frac * (double)n_docs) : 0;
    if (eval_frac > 0 && n_eval < 1) n_eval = 1;
    if (n_eval > n_docs - 1) n_eval = n_docs > 0 ? n_docs - 1 : 0;
    out->eval = malloc((size_t)(n_eval > 0 ? n_eval : 1) * sizeof *out->eval);
    if (!out->eval) {
        free(order);
        return 1;
    }
    memcpy(out->eval, order, (size_t)n_eval * sizeof *order);
    memmove(order, order + n_eval, (size_t)(n_docs - n_eval) * sizeof *order);
    out->train = order;
    out->n_eval = n_eval;
    out->n_train = n_docs - n_eval;
    qsort(out->eval, (size_t)out->n_eval, sizeof *out->eval, compare_int64);
    qsort(out->train, (size_t)out->n_train, sizeof *out->train, compare_int64);
    return 0;
}

void ob_bert_split_free(ob_bert_split *split) {
    free(split->train);
    free(split->eval);
    *split = (ob_bert_split){0};
}

/* ---- examples ---- */

ob_bert_example_options ob_bert_example_defaults(int32_t vocab_size, ob_wordpiece_specials specials) {
    return (ob_bert_example_options){.seq_len = 128,
                                     .max_pred = 20,
                                     .dupe_factor = 5,
                                     .masked_lm_prob = 0.15,
                                     .short_seq_prob = 0.1,
                                     .seed = 1,
                                     .vocab_size = vocab_size,
                                     .specials = specials};
}

/* One example: its tokens (masked) and predictions live in the pools. */
typedef struct {
    int64_t first_token, first_prediction;
    int32_t length, b_start, n_predictions, is_random_next;
} example;

struct ob_bert_examples {
    example *items;
    int64_t count, capacity;
    ob_token_ids tokens;       /* [CLS] A [SEP] B [SEP] of every example, masked */
    ob_token_ids positions;    /* masked positions (not token ids: an int32 list) */
    ob_token_ids original_ids; /* the tokens they had */
    int64_t *order;            /* row r is items[order[r]] */
    int seq_len, max_pred;
    int32_t pad;
};

/* A segment: a range of the documents' tokens. */
typedef struct {
    int64_t begin, end;
} segment;

/* What making the examples of one split needs. */
typedef struct {
    const ob_bert_documents *docs;
    const int64_t *doc_ids;
    int64_t n_doc_ids;
    const ob_bert_example_options *options;
    ob_bert_examples *out;
    int32_t *candidates; /* scratch: maskable positions, seq_len of them */
    int32_t sorted_specials[OB_WORDPIECE_N_SPECIALS];
    draws draws;
} builder;

static int64_t sentence_tokens(const ob_bert_documents *docs, int64_t s) {
    return ob_ranges_end(&docs->sentences, s) - ob_ranges_begin(&docs->sentences, s);
}

static int64_t segment_length(segment s) { return s.end - s.begin; }

/* While the pair is too long, the longer one (B on a tie) loses a token
 * at the front or the back. */
static void truncate_pair(builder *b, segment *a, segment *s_b, int64_t max_tokens) {
    while (segment_length(*a) + segment_length(*s_b) > max_tokens) {
        segment *longer = segment_length(*a) > segment_length(*s_b) ? a : s_b;
        if (draw_below(&b->draws, 2) == 0)
            longer->begin++;
        else
            longer->end--;
    }
}

/* A uniform token that is not one of the five special tokens. */
static int32_t random_token(builder *b) {
    int32_t id = (int32_t)draw_below(&b->draws, b->options->vocab_size - OB_WORDPIECE_N_SPECIALS);
    for (int i = 0; i < OB_WORDPIECE_N_SPECIALS; i++)
        if (id >= b->sorted_specials[i]) id++;
    return id;
}

static int compare_int32(const void *x, const void *y) {
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

/* Masks the example's tokens (at `tokens`, length long, B from b_start)
 * and records its predictions. */
static int mask_example(builder *b, example *e) {
    int32_t *tokens = b->out->tokens.ids + e->first_token;
    int32_t n = 0;
    for (int32_t position = 1; position < e->length - 1; position++)
        if (position != e->b_start - 1) b->candidates[n++] = position;
    int64_t wanted = llround(b->options->masked_lm_prob * n);
    int32_t k = (int32_t)(wanted < 1 ? 1 : wanted > b->options->max_pred ? b->options->max_pred : wanted);
    for (int32_t i = 0; i < k; i++) { /* the first k of a Fisher-Yates shuffle */
        int32_t j = i + (int32_t)draw_below(&b->draws, n - i), kept = b->candidates[i];
        b->candidates[i] = b->candidates[j];
        b->candidates[j] = kept;
    }
    qsort(b->candidates, (size_t)k, sizeof *b->candidates, compare_int32);
    e->first_prediction = b->out->positions.count;
    e->n_predictions = k;
    for (int32_t i = 0; i < k; i++) {
        int32_t position = b->candidates[i];
        if (ob_token_ids_push(&b->out->positions, position) != 0 ||
            ob_token_ids_push(&b->out->original_ids, tokens[position]) != 0)
            return 1;
        int64_t choice = draw_below(&b->draws, MASK_CHOICES);
        if (choice == MASK_RANDOM) tokens[position] = random_token(b);
        if (choice < MASK_KEEP) tokens[position] = b->options->specials.mask;
    }
    return 0;
}

static int push_segment(builder *b, segment s) {
    for (int64_t t = s.begin; t < s.end; t++)
        if (ob_token_ids_push(&b->out->tokens, b->docs->tokens.ids[t]) != 0) return 1;
    return 0;
}

static int add_example(builder *b, segment a, segment s_b, bool is_random_next) {
    ob_bert_examples *out = b->out;
    truncate_pair(b, &a, &s_b, b->options->seq_len - 3);
    if (ob_grow(&out->items, &out->capacity, out->count + 1, sizeof *out->items)) return 1;
    example *e = &out->items[out->count];
    *e = (example){.first_token = out->tokens.count,
                   .length = (int32_t)(segment_length(a) + segment_length(s_b) + 3),
                   .b_start = (int32_t)segment_length(a) + 2,
                   .is_random_next = is_random_next};
    const ob_wordpiece_specials *sp = &b->options->specials;
    if (ob_token_ids_push(&out->tokens, sp->cls) || push_segment(b, a) || ob_token_ids_push(&out->tokens, sp->sep) ||
        push_segment(b, s_b) || ob_token_ids_push(&out->tokens, sp->sep))
        return 1;
    out->count++;
    return mask_example(b, e);
}

/* B of a random next: another document of the split, from a uniform
 * sentence on, until it holds `target` tokens or that document ends. */
static segment random_continuation(builder *b, int64_t position, int64_t target) {
    const ob_bert_documents *docs = b->docs;
    int64_t other = draw_below(&b->draws, b->n_doc_ids - 1);
    int64_t doc = b->doc_ids[other >= position ? other + 1 : other];
    int64_t first = ob_ranges_begin(&docs->docs, doc), end = ob_ranges_end(&docs->docs, doc);
    int64_t s = first + draw_below(&b->draws, end - first);
    segment taken = {ob_ranges_begin(&docs->sentences, s), ob_ranges_end(&docs->sentences, s)};
    while (segment_length(taken) < target && ++s < end) taken.end = ob_ranges_end(&docs->sentences, s);
    return taken;
}

/* The examples of the document at doc_ids[position], one pass. */
static int add_document_examples(builder *b, int64_t position) {
    const ob_bert_documents *docs = b->docs;
    int64_t doc = b->doc_ids[position], max_tokens = b->options->seq_len - 3;
    int64_t first = ob_ranges_begin(&docs->docs, doc), end = ob_ranges_end(&docs->docs, doc);
    int64_t target = max_tokens;
    if (draw_chance(&b->draws, b->options->short_seq_prob)) target = 2 + draw_below(&b->draws, max_tokens - 1);
    int64_t chunk_first = first, chunk_tokens = 0;
    for (int64_t s = first; s < end; s++) {
        chunk_tokens += sentence_tokens(docs, s);
        if (s + 1 < end && chunk_tokens < target) continue;
        int64_t n_chunk = s - chunk_first + 1;
        int64_t a_sentences = n_chunk >= 2 ? 1 + draw_below(&b->draws, n_chunk - 1) : 1;
        int64_t a_last = chunk_first + a_sentences - 1;
        segment a = {ob_ranges_begin(&docs->sentences, chunk_first), ob_ranges_end(&docs->sentences, a_last)};
        bool has_other = b->n_doc_ids > 1;
        bool random_next = has_other && (n_chunk == 1 || draw_below(&b->draws, 2) == 0);
        int rc = 0;
        if (random_next) {
            rc = add_example(b, a, random_continuation(b, position, target - segment_length(a)), true);
            s = a_last; /* the chunk's unused sentences start the next chunk */
        } else if (n_chunk >= 2) {
            rc = add_example(b, a, (segment){a.end, ob_ranges_end(&docs->sentences, s)}, false);
        }
        if (rc) return rc;
        chunk_first = s + 1;
        chunk_tokens = 0;
    }
    return 0;
}

static int check_example_options(const ob_bert_documents *docs, const ob_bert_example_options *o, char *err,
                                 size_t err_len) {
    const char *problem = NULL;
    if (o->seq_len < 5)
        problem = "seq_len below 5 leaves no room for two segments";
    else if (o->max_pred < 1 || o->max_pred > o->seq_len)
        problem = "max_pred outside [1, seq_len]";
    else if (o->dupe_factor < 1)
        problem = "dupe_factor below 1";
    else if (!(o->masked_lm_prob > 0 && o->masked_lm_prob <= 1))
        problem = "masked_lm_prob outside (0, 1]";
    else if (!(o->short_seq_prob >= 0 && o->short_seq_prob <= 1))
        problem = "short_seq_prob outside [0, 1]";
    else if (o->vocab_size <= OB_WORDPIECE_N_SPECIALS)
        problem = "a vocabulary of the special tokens only";
    else if (docs->docs.count > MAX_DRAW_BOUND || docs->docs.count * o->dupe_factor >= MAX_RNG_STEP)
        problem = "more documents than the random streams can key";
    if (!problem) return 0;
    snprintf(err, err_len, "BERT examples: %s", problem);
    return 2;
}

static void sort_specials(const ob_wordpiece_specials *s, int32_t sorted[OB_WORDPIECE_N_SPECIALS]) {
    int32_t ids[OB_WORDPIECE_N_SPECIALS] = {s->pad, s->unk, s->cls, s->sep, s->mask};
    memcpy(sorted, ids, sizeof ids);
    qsort(sorted, OB_WORDPIECE_N_SPECIALS, sizeof *sorted, compare_int32);
}

/* Every pass over every document, then a shuffled order. */
static int make_examples(builder *b, int split, char *err, size_t err_len) {
    const ob_bert_example_options *o = b->options;
    for (int pass = 0; pass < o->dupe_factor; pass++)
        for (int64_t p = 0; p < b->n_doc_ids; p++) {
            b->draws = draws_make(o->seed, OB_RNG_MASKING, pass * b->docs->docs.count + b->doc_ids[p]);
            if (add_document_examples(b, p) != 0) return 1;
        }
    ob_bert_examples *out = b->out;
    if (out->count > MAX_DRAW_BOUND) {
        snprintf(err, err_len, "BERT examples: %lld examples, more than one split can shuffle", (long long)out->count);
        return 2;
    }
    out->order = malloc((size_t)(out->count > 0 ? out->count : 1) * sizeof *out->order);
    if (!out->order) return 1;
    for (int64_t i = 0; i < out->count; i++) out->order[i] = i;
    draws order_draws = draws_make(o->seed, OB_RNG_SHUFFLE, 1 + split);
    shuffle(out->order, out->count, &order_draws);
    return 0;
}

int ob_bert_examples_make(const ob_bert_documents *docs, const int64_t *doc_ids, int64_t n_doc_ids, int split,
                          const ob_bert_example_options *options, ob_bert_examples **out, char *err, size_t err_len) {
    *out = NULL;
    int rc = check_example_options(docs, options, err, err_len);
    if (rc) return rc;
    builder b = {.docs = docs, .doc_ids = doc_ids, .n_doc_ids = n_doc_ids, .options = options};
    sort_specials(&options->specials, b.sorted_specials);
    b.out = calloc(1, sizeof *b.out);
    b.candidates = malloc((size_t)options->seq_len * sizeof *b.candidates);
    rc = b.out && b.candidates ? make_examples(&b, split, err, err_len) : 1;
    free(b.candidates);
    if (rc) {
        ob_bert_examples_free(b.out);
        return rc;
    }
    b.out->seq_len = options->seq_len;
    b.out->max_pred = options->max_pred;
    b.out->pad = options->specials.pad;
    *out = b.out;
    return 0;
}

int64_t ob_bert_examples_count(const ob_bert_examples *examples) { return examples->count; }
int64_t ob_bert_examples_tokens(const ob_bert_examples *examples) { return examples->tokens.count; }
int64_t ob_bert_examples_predictions(const ob_bert_examples *examples) { return examples->positions.count; }

static void fill_row(const ob_bert_examples *examples, const example *e, int64_t row, const ob_bert_batch *batch) {
    int seq = examples->seq_len, max_pred = examples->max_pred;
    const int32_t *tokens = examples->tokens.ids + e->first_token;
    for (int t = 0; t < seq; t++) {
        bool real = t < e->length;
        batch->input_ids[row * seq + t] = real ? tokens[t] : examples->pad;
        batch->input_mask[row * seq + t] = real;
        batch->segment_ids[row * seq + t] = real && t >= e->b_start;
    }
    for (int j = 0; j < max_pred; j++) {
        bool real = j < e->n_predictions;
        batch->masked_lm_positions[row * max_pred + j] = real ? examples->positions.ids[e->first_prediction + j] : 0;
        batch->masked_lm_ids[row * max_pred + j] = real ? examples->original_ids.ids[e->first_prediction + j] : -1;
    }
    batch->next_sentence_labels[row] = e->is_random_next;
}

void ob_bert_examples_rows(const ob_bert_examples *examples, int64_t first, int64_t n, const ob_bert_batch *batch) {
    for (int64_t r = 0; r < n; r++) fill_row(examples, &examples->items[examples->order[first + r]], r, batch);
}

int ob_bert_examples_write_shard(const ob_bert_examples *examples, int64_t first, int64_t n, const char *path,
                                 char *err, size_t err_len) {
    ob_bert_batch batch;
    if (ob_bert_batch_alloc(&batch, WRITE_ROWS, examples->seq_len, examples->max_pred) != 0) return 1;
    ob_bert_shard_writer *writer;
    int rc = ob_bert_shard_create(path, n, examples->seq_len, examples->max_pred, &writer, err, err_len);
    for (int64_t done = 0; !rc && done < n; done += WRITE_ROWS) {
        int64_t rows = n - done < WRITE_ROWS ? n - done : WRITE_ROWS;
        ob_bert_examples_rows(examples, first + done, rows, &batch);
        rc = ob_bert_shard_write(writer, done, rows, &batch, err, err_len);
    }
    int finished = writer ? ob_bert_shard_finish(writer, rc ? NULL : err, err_len) : 0;
    ob_bert_batch_free(&batch);
    return rc ? rc : finished;
}

void ob_bert_examples_free(ob_bert_examples *examples) {
    if (!examples) return;
    free(examples->items);
    ob_token_ids_free(&examples->tokens);
    ob_token_ids_free(&examples->positions);
    ob_token_ids_free(&examples->original_ids);
    free(examples->order);
    free(examples);
}
