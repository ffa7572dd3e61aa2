/* BERT pretraining examples over many synthetic documents: the layout of
 * every row ([CLS] A [SEP] B [SEP], segment ids, mask), the number of
 * masked tokens per row (round(15%) of the maskable ones, capped by
 * max_pred), its corpus-wide fraction, the 80/10/10 split and the share of
 * random next segments within 5 sigma of their probabilities, special tokens
 * never masked, the document split, and reproducibility by seed. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ob_check.h"
#include "workloads/bert/ob_bert_data.h"

#define VOCAB 1000
#define N_DOCS 300
#define SIGMAS 5.0

static const ob_wordpiece_specials SPECIALS = {0, 1, 2, 3, 4};

/* The test's data, not under test: a fixed linear congruential sequence. */
static int next_below(uint64_t *state, int n) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (int)((*state >> 33) % (uint64_t)n);
}

/* N_DOCS documents of min_sentences + [0, sentence_spread) sentences of
 * min_tokens + [0, token_spread) tokens, ids in [5, VOCAB). */
static int make_documents(ob_bert_documents *docs, int min_sentences, int sentence_spread, int min_tokens,
                          int token_spread) {
    uint64_t state = 12345;
    int32_t sentence[64];
    for (int d = 0; d < N_DOCS; d++) {
        int n_sentences = min_sentences + next_below(&state, sentence_spread);
        for (int s = 0; s < n_sentences; s++) {
            int n = min_tokens + next_below(&state, token_spread);
            for (int t = 0; t < n; t++) sentence[t] = 5 + next_below(&state, VOCAB - 5);
            if (ob_bert_documents_add_sentence(docs, sentence, n) != 0) return 1;
        }
        if (ob_bert_documents_end(docs) != 0) return 1;
    }
    return 0;
}

/* All examples of the documents (one split holding all) as rows. */
static ob_bert_examples *make_rows(const ob_bert_documents *docs, const ob_bert_example_options *options,
                                   ob_bert_batch *rows) {
    int64_t ids[N_DOCS];
    for (int d = 0; d < N_DOCS; d++) ids[d] = d;
    ob_bert_examples *examples = NULL;
    char err[256] = "";
    if (ob_bert_examples_make(docs, ids, N_DOCS, OB_BERT_SPLIT_TRAIN, options, &examples, err, sizeof err) != 0) {
        printf("FAIL: making examples: %s\n", err);
        return NULL;
    }
    int64_t n = ob_bert_examples_count(examples);
    if (ob_bert_batch_alloc(rows, n, options->seq_len, options->max_pred) != 0) {
        ob_bert_examples_free(examples);
        return NULL;
    }
    ob_bert_examples_rows(examples, 0, n, rows);
    return examples;
}

static bool within_sigmas(double observed, double p, double n) {
    return fabs(observed / n - p) <= SIGMAS * sqrt(p * (1 - p) / n);
}

static bool is_special(int32_t id) { return id >= 0 && id < 5; }

typedef struct {
    int64_t rows, bad_layout, bad_count, maskable, masked, masked_special, as_mask, as_random, kept, random_special,
        random_next;
} tally;

/* Row r: its length and where B starts, from the mask and segment ids. */
static void row_shape(const ob_bert_batch *b, int seq, int64_t r, int *length, int *b_start) {
    *length = 0;
    *b_start = seq;
    for (int t = 0; t < seq; t++) {
        *length += b->input_mask[r * seq + t];
        if (b->segment_ids[r * seq + t] && t < *b_start) *b_start = t;
    }
}

static void tally_row(const ob_bert_batch *b, const ob_bert_example_options *o, int64_t r, tally *t) {
    int seq = o->seq_len, pred = o->max_pred, length, b_start;
    const int32_t *ids = b->input_ids + r * seq;
    row_shape(b, seq, r, &length, &b_start);
    bool layout = ids[0] == SPECIALS.cls && ids[b_start - 1] == SPECIALS.sep && ids[length - 1] == SPECIALS.sep &&
                  b_start >= 2 && b_start < length - 1 && length <= seq;
    for (int i = length; i < seq; i++) layout &= ids[i] == SPECIALS.pad && b->segment_ids[r * seq + i] == 0;
    int n_pred = 0, last = 0;
    for (int j = 0; j < pred; j++) {
        int32_t position = b->masked_lm_positions[r * pred + j], original = b->masked_lm_ids[r * pred + j];
        if (original < 0) continue;
        n_pred++;
        layout &= position > last && position < length; /* increasing, inside the row */
        last = position;
        t->masked_special += position == b_start - 1 || position == length - 1 || is_special(original);
        int32_t shown = ids[position];
        t->as_mask += shown == SPECIALS.mask;
        t->kept += shown == original;
        t->as_random += shown != SPECIALS.mask && shown != original;
        t->random_special += shown != SPECIALS.mask && is_special(shown);
    }
    int maskable = length - 3;
    long wanted = lround(o->masked_lm_prob * maskable);
    long expected = wanted < 1 ? 1 : wanted > pred ? pred : wanted;
    t->bad_layout += !layout;
    t->bad_count += n_pred != expected;
    t->maskable += maskable;
    t->masked += n_pred;
    t->random_next += b->next_sentence_labels[r];
    t->rows++;
}

/* Makes the examples and tallies their rows; false when they could not be made. */
static bool tally_examples(const ob_bert_documents *docs, const ob_bert_example_options *o, tally *t) {
    ob_bert_batch rows;
    ob_bert_examples *examples = make_rows(docs, o, &rows);
    *t = (tally){0};
    if (!examples) return false;
    for (int64_t r = 0; r < ob_bert_examples_count(examples); r++) tally_row(&rows, o, r, t);
    ob_bert_examples_free(examples);
    ob_bert_batch_free(&rows);
    return true;
}

static void test_masking_proportions(const ob_bert_documents *docs) {
    ob_bert_example_options o = ob_bert_example_defaults(VOCAB, SPECIALS);
    o.dupe_factor = 2;
    tally t = {0};
    check(tally_examples(docs, &o, &t), "examples for the proportions");
    printf("  %lld rows, %lld of %lld maskable tokens masked (%.4f): %lld [MASK], %lld random, %lld kept\n",
           (long long)t.rows, (long long)t.masked, (long long)t.maskable, (double)t.masked / (double)t.maskable,
           (long long)t.as_mask, (long long)t.as_random, (long long)t.kept);
    CHECK(t.rows > 1000);
    check(t.bad_layout == 0, "every row is [CLS] A [SEP] B [SEP] with padding, predictions in order inside it");
    check(t.bad_count == 0, "each row masks min(max_pred, max(1, round(0.15 maskable)))");
    check(within_sigmas((double)t.masked, 0.15, (double)t.maskable), "15% of the maskable tokens, within 5 sigma");
    check(t.masked_special == 0, "[CLS] and [SEP] are never masked");
    /* A random token equals the original with probability 1 / (VOCAB - 5). */
    double same = 1.0 / (VOCAB - 5);
    check(within_sigmas((double)t.as_mask, 0.8, (double)t.masked), "80% become [MASK]");
    check(within_sigmas((double)t.as_random, 0.1 * (1 - same), (double)t.masked), "10% become a random token");
    check(within_sigmas((double)t.kept, 0.1 + 0.1 * same, (double)t.masked), "10% stay");
    check(t.random_special == 0, "random tokens are never special tokens");
}

static void test_max_pred_caps(const ob_bert_documents *docs) {
    ob_bert_example_options o = ob_bert_example_defaults(VOCAB, SPECIALS);
    o.dupe_factor = 1;
    o.max_pred = 5;
    tally t = {0};
    bool made = tally_examples(docs, &o, &t);
    check(made && t.bad_count == 0 && t.bad_layout == 0 && t.masked <= 5 * t.rows, "max_pred 5 caps the predictions");
}

/* A chunk of one sentence always takes a random B (as in Google's script):
 * the 1/2 holds for chunks of two or more. Documents of many short
 * sentences, without short targets, make one-sentence chunks rare. */
static void test_random_next_share(void) {
    ob_bert_documents docs = {0};
    ob_bert_example_options o = ob_bert_example_defaults(VOCAB, SPECIALS);
    o.short_seq_prob = 0;
    tally t = {0};
    bool made = make_documents(&docs, 300, 100, 3, 3) == 0 && tally_examples(&docs, &o, &t);
    printf("  %lld rows of many-sentence documents: %.3f random next\n", (long long)t.rows,
           (double)t.random_next / (double)t.rows);
    check(made && t.bad_layout == 0 && within_sigmas((double)t.random_next, 0.5, (double)t.rows),
          "half the B segments are random");
    ob_bert_documents_free(&docs);
}

/* Rows of the whole corpus under a seed, compared as bytes. */
static bool same_rows(const ob_bert_documents *docs, uint64_t seed_a, uint64_t seed_b) {
    ob_bert_example_options o = ob_bert_example_defaults(VOCAB, SPECIALS);
    o.dupe_factor = 1;
    ob_bert_batch a, b;
    o.seed = seed_a;
    ob_bert_examples *ea = make_rows(docs, &o, &a);
    o.seed = seed_b;
    ob_bert_examples *eb = make_rows(docs, &o, &b);
    int64_t n = ea ? ob_bert_examples_count(ea) : -1;
    /* A batch is one allocation starting at input_ids. */
    size_t row_ints = 3 * (size_t)o.seq_len + 2 * (size_t)o.max_pred + 1;
    bool same = ea && eb && n == ob_bert_examples_count(eb) &&
                memcmp(a.input_ids, b.input_ids, (size_t)n * row_ints * sizeof(int32_t)) == 0;
    if (ea) ob_bert_batch_free(&a);
    if (eb) ob_bert_batch_free(&b);
    ob_bert_examples_free(ea);
    ob_bert_examples_free(eb);
    return same;
}

static void test_seeds(const ob_bert_documents *docs) {
    check(same_rows(docs, 7, 7), "the same seed gives the same examples");
    check(!same_rows(docs, 7, 8), "another seed gives other examples");
}

static void test_split(void) {
    ob_bert_split a, b, c;
    CHECK(ob_bert_split_documents(200, 0.05, 3, &a) == 0);
    CHECK(ob_bert_split_documents(200, 0.05, 3, &b) == 0);
    CHECK(ob_bert_split_documents(200, 0.05, 4, &c) == 0);
    check(a.n_eval == 10 && a.n_train == 190, "5% of 200 documents are held out");
    bool seen[200] = {false}, disjoint = true, sorted = true;
    for (int64_t i = 0; i < a.n_eval; i++) seen[a.eval[i]] = true;
    for (int64_t i = 0; i < a.n_train; i++) {
        disjoint &= !seen[a.train[i]];
        seen[a.train[i]] = true;
        sorted &= i == 0 || a.train[i] > a.train[i - 1];
    }
    bool all = true;
    for (int d = 0; d < 200; d++) all &= seen[d];
    check(disjoint && all && sorted, "the split is a partition, each side in document order");
    check(memcmp(a.eval, b.eval, 10 * sizeof *a.eval) == 0, "the same seed holds out the same documents");
    check(memcmp(a.eval, c.eval, 10 * sizeof *a.eval) != 0, "another seed holds out others");
    ob_bert_split_free(&a);
    ob_bert_split_free(&b);
    ob_bert_split_free(&c);
    CHECK(ob_bert_split_documents(3, 0.05, 1, &a) == 0 && a.n_eval == 1 && a.n_train == 2);
    ob_bert_split_free(&a);
}

/* Alone in its split, a document has no other to take B from. */
static void test_single_document_split(const ob_bert_documents *docs) {
    ob_bert_example_options o = ob_bert_example_defaults(VOCAB, SPECIALS);
    int64_t only = 0;
    ob_bert_examples *examples = NULL;
    char err[256] = "";
    CHECK(ob_bert_examples_make(docs, &only, 1, OB_BERT_SPLIT_EVAL, &o, &examples, err, sizeof err) == 0);
    int64_t n = examples ? ob_bert_examples_count(examples) : 0;
    ob_bert_batch rows;
    if (n == 0 || ob_bert_batch_alloc(&rows, n, o.seq_len, o.max_pred) != 0) {
        ob_bert_examples_free(examples);
        check(false, "examples of one document");
        return;
    }
    ob_bert_examples_rows(examples, 0, n, &rows);
    int64_t random_next = 0;
    for (int64_t r = 0; r < n; r++) random_next += rows.next_sentence_labels[r];
    check(random_next == 0, "a one-document split has no random next segment");
    ob_bert_batch_free(&rows);
    ob_bert_examples_free(examples);
}

static void test_bad_options(const ob_bert_documents *docs) {
    ob_bert_example_options o = ob_bert_example_defaults(VOCAB, SPECIALS);
    o.seq_len = 4;
    int64_t ids[2] = {0, 1};
    ob_bert_examples *examples = NULL;
    char err[256] = "";
    CHECK(ob_bert_examples_make(docs, ids, 2, OB_BERT_SPLIT_TRAIN, &o, &examples, err, sizeof err) == 2 && !examples &&
          strstr(err, "seq_len"));
    o = ob_bert_example_defaults(OB_WORDPIECE_N_SPECIALS, SPECIALS);
    CHECK(ob_bert_examples_make(docs, ids, 2, OB_BERT_SPLIT_TRAIN, &o, &examples, err, sizeof err) == 2 &&
          strstr(err, "special tokens only"));
}

int main(void) {
    ob_bert_documents docs = {0};
    if (make_documents(&docs, 5, 36, 3, 22) != 0) return 1;
    test_masking_proportions(&docs);
    test_random_next_share();
    test_max_pred_caps(&docs);
    test_seeds(&docs);
    test_split();
    test_single_document_split(&docs);
    test_bad_options(&docs);
    ob_bert_documents_free(&docs);
    return report_checks();
}
