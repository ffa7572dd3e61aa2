/* WordPiece vocabulary training (ob_wordpiece.h says what it computes).
 *
 * The corpus is reduced to its distinct words with their counts; each merge
 * then touches only the words that hold the merged pair: every pair keeps
 * the list of words it occurs in, and a merge rewrites those words and
 * updates the pair counts by what changed. Picking the best pair scans the
 * pair table, whose size is the number of distinct adjacent pieces, not
 * the corpus. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/bert/ob_basic_tokenizer.h"
#include "workloads/bert/ob_grow.h"
#include "workloads/bert/wordpiece_impl.h"

#define CONTINUATION "##"
#define CONTINUATION_LEN 2
/* count_word's list_with: no pair, or every pair, lists the word. */
#define LIST_NONE (-1)
#define LIST_ALL (-2)

struct ob_wordpiece_trainer {
    ob_string_table words;
    int64_t *count_of; /* word id -> occurrences */
    int64_t counts_capacity;
};

typedef struct {
    int32_t *ids;
    int64_t count, capacity;
} word_list;

/* An adjacent piece pair (a, b) with its corpus count and the words it
 * occurs in (a word may be listed twice, or after the pair left it:
 * merging checks). */
typedef struct {
    int32_t a, b;
    int64_t count;
    word_list words;
} pair;

/* Pairs are never removed; a count of 0 means gone. */
typedef struct {
    pair *at;
    int32_t n;
    int64_t capacity;
    int32_t *slots; /* pair index or -1; a power of two, at most half full */
    size_t n_slots;
} pair_table;

typedef struct {
    const ob_wordpiece_trainer *corpus;
    ob_string_table vocab;
    int32_t *pieces; /* every distinct word's current pieces, back to back */
    int64_t *word_start;
    int32_t *word_length;
    pair_table pairs;
} merge_state;

int ob_wordpiece_trainer_new(ob_wordpiece_trainer **out) {
    *out = calloc(1, sizeof **out);
    return *out ? 0 : 1;
}

static int count_word_occurrence(ob_wordpiece_trainer *trainer, const ob_word *word) {
    int32_t known = trainer->words.count;
    int32_t id = ob_string_table_add(&trainer->words, word->bytes, word->length);
    if (id < 0 || ob_grow(&trainer->count_of, &trainer->counts_capacity, id + 1, sizeof *trainer->count_of)) return 1;
    if (id == known) trainer->count_of[id] = 0;
    trainer->count_of[id]++;
    return 0;
}

int ob_wordpiece_trainer_add_text(ob_wordpiece_trainer *trainer, const char *text, size_t length) {
    ob_word_reader reader;
    ob_word word;
    ob_word_reader_init(&reader, text, length);
    while (ob_word_reader_next(&reader, &word))
        if (word.chars <= OB_WORDPIECE_MAX_WORD_CHARS && count_word_occurrence(trainer, &word) != 0) return 1;
    return 0;
}

void ob_wordpiece_trainer_free(ob_wordpiece_trainer *trainer) {
    if (!trainer) return;
    ob_string_table_free(&trainer->words);
    free(trainer->count_of);
    free(trainer);
}

/* ---- the pair table ---- */

static size_t pair_hash(int32_t a, int32_t b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17);
}

/* The slot of (a, b), or the empty slot where it belongs. */
static size_t pair_slot(const pair_table *pairs, int32_t a, int32_t b) {
    size_t mask = pairs->n_slots - 1, slot = pair_hash(a, b) & mask;
    for (int32_t p; (p = pairs->slots[slot]) >= 0 && (pairs->at[p].a != a || pairs->at[p].b != b);)
        slot = (slot + 1) & mask;
    return slot;
}

static int grow_pair_slots(pair_table *pairs) {
    size_t n_slots = pairs->n_slots ? pairs->n_slots * 2 : 4096;
    int32_t *slots = malloc(n_slots * sizeof *slots);
    if (!slots) return 1;
    memset(slots, 0xff, n_slots * sizeof *slots); /* all -1 */
    free(pairs->slots);
    pairs->slots = slots;
    pairs->n_slots = n_slots;
    for (int32_t p = 0; p < pairs->n; p++) slots[pair_slot(pairs, pairs->at[p].a, pairs->at[p].b)] = p;
    return 0;
}

/* The index of (a, b), added with count 0 when new; -1 when out of memory. */
static int32_t pair_index(pair_table *pairs, int32_t a, int32_t b) {
    if ((size_t)pairs->n * 2 >= pairs->n_slots && grow_pair_slots(pairs) != 0) return -1;
    size_t slot = pair_slot(pairs, a, b);
    if (pairs->slots[slot] >= 0) return pairs->slots[slot];
    if (pairs->n == INT32_MAX || ob_grow(&pairs->at, &pairs->capacity, pairs->n + 1, sizeof *pairs->at)) return -1;
    int32_t p = pairs->n++;
    pairs->at[p] = (pair){.a = a, .b = b};
    pairs->slots[slot] = p;
    return p;
}

static int list_word(word_list *list, int32_t word) {
    if (list->count > 0 && list->ids[list->count - 1] == word) return 0;
    if (ob_grow(&list->ids, &list->capacity, list->count + 1, sizeof *list->ids)) return 1;
    list->ids[list->count++] = word;
    return 0;
}

static void pair_table_free(pair_table *pairs) {
    for (int32_t p = 0; p < pairs->n; p++) free(pairs->at[p].words.ids);
    free(pairs->at);
    free(pairs->slots);
}

/* ---- the initial vocabulary: special tokens, then the alphabet ---- */

static int compare_strings(const void *x, const void *y) {
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Every character of every word, as "c" and as "##c". */
static int collect_alphabet(const ob_wordpiece_trainer *corpus, ob_string_table *alphabet) {
    char piece[CONTINUATION_LEN + 4] = CONTINUATION;
    for (int32_t w = 0; w < corpus->words.count; w++) {
        const char *word = ob_string_table_at(&corpus->words, w);
        for (size_t at = 0, n; word[at]; at += n) {
            n = ob_utf8_char_length(word + at);
            memcpy(piece + CONTINUATION_LEN, word + at, n);
            if (ob_string_table_add(alphabet, piece + CONTINUATION_LEN, n) < 0 ||
                ob_string_table_add(alphabet, piece, CONTINUATION_LEN + n) < 0)
                return 1;
        }
    }
    return 0;
}

static int start_vocabulary(merge_state *state, int32_t vocab_size, char *err, size_t err_len) {
    static const char *const specials[] = OB_WORDPIECE_SPECIAL_NAMES;
    ob_string_table alphabet = OB_STRING_TABLE_EMPTY;
    int rc = collect_alphabet(state->corpus, &alphabet);
    const char **sorted = rc ? NULL : malloc((size_t)alphabet.count * sizeof *sorted);
    if (!sorted) rc = 1;
    int32_t needed = OB_WORDPIECE_N_SPECIALS + alphabet.count;
    if (!rc && vocab_size < needed) {
        snprintf(err, err_len,
                 "vocabulary size %d is too small: the %d special tokens and the corpus's %d characters "
                 "(word-initial and ## forms: %d tokens) need at least %d",
                 vocab_size, OB_WORDPIECE_N_SPECIALS, alphabet.count / 2, alphabet.count, needed);
        rc = 2;
    }
    for (int i = 0; !rc && i < OB_WORDPIECE_N_SPECIALS; i++)
        if (ob_string_table_add(&state->vocab, specials[i], strlen(specials[i])) < 0) rc = 1;
    for (int32_t i = 0; !rc && i < alphabet.count; i++) sorted[i] = ob_string_table_at(&alphabet, i);
    if (!rc) qsort(sorted, (size_t)alphabet.count, sizeof *sorted, compare_strings);
    for (int32_t i = 0; !rc && i < alphabet.count; i++)
        if (ob_string_table_add(&state->vocab, sorted[i], strlen(sorted[i])) < 0) rc = 1;
    free(sorted);
    ob_string_table_free(&alphabet);
    return rc;
}

/* ---- pieces of the words and their counts ---- */

/* Adds delta occurrences of word w's adjacent pairs; the word is
 * listed under its pairs that hold list_with (a piece id, LIST_ALL or
 * LIST_NONE): the pairs a merge created, which are the only ones new to it. */
static int count_word(merge_state *state, int32_t w, int64_t delta, int32_t list_with) {
    const int32_t *piece = state->pieces + state->word_start[w];
    int32_t n = state->word_length[w];
    for (int32_t i = 0; i + 1 < n; i++) {
        int32_t p = pair_index(&state->pairs, piece[i], piece[i + 1]);
        if (p < 0) return 1;
        state->pairs.at[p].count += delta;
        bool listed = list_with == LIST_ALL || piece[i] == list_with || piece[i + 1] == list_with;
        if (listed && list_word(&state->pairs.at[p].words, w) != 0) return 1;
    }
    return 0;
}

/* Each word as its characters: the first as is, the others as "##c". */
static int split_words(merge_state *state) {
    const ob_wordpiece_trainer *corpus = state->corpus;
    int64_t total = 0;
    state->word_start = malloc((size_t)corpus->words.count * sizeof *state->word_start);
    state->word_length = malloc((size_t)corpus->words.count * sizeof *state->word_length);
    if (!state->word_start || !state->word_length) return 1;
    for (int32_t w = 0; w < corpus->words.count; w++) total += (int64_t)ob_string_table_length(&corpus->words, w);
    state->pieces = malloc((size_t)total * sizeof *state->pieces);
    if (!state->pieces) return 1;
    char piece[CONTINUATION_LEN + 4] = CONTINUATION;
    int64_t next = 0;
    for (int32_t w = 0; w < corpus->words.count; w++) {
        const char *word = ob_string_table_at(&corpus->words, w);
        state->word_start[w] = next;
        for (size_t at = 0, n; word[at]; at += n) {
            n = ob_utf8_char_length(word + at);
            memcpy(piece + CONTINUATION_LEN, word + at, n);
            const char *form = at == 0 ? piece + CONTINUATION_LEN : piece;
            state->pieces[next++] = ob_string_table_find(&state->vocab, form, at == 0 ? n : CONTINUATION_LEN + n);
        }
        state->word_length[w] = (int32_t)(next - state->word_start[w]);
        if (count_word(state, w, corpus->count_of[w], LIST_ALL) != 0) return 1;
    }
    return 0;
}

/* ---- merging ---- */

/* Whether pair p goes before pair q: more occurrences, ties to the
 * smaller (a, b) by bytes. */
static bool goes_before(const merge_state *state, const pair *p, const pair *q) {
    if (p->count != q->count) return p->count > q->count;
    const ob_string_table *vocab = &state->vocab;
    int by_a = strcmp(ob_string_table_at(vocab, p->a), ob_string_table_at(vocab, q->a));
    if (by_a != 0) return by_a < 0;
    return strcmp(ob_string_table_at(vocab, p->b), ob_string_table_at(vocab, q->b)) < 0;
}

/* The pair to merge next, or -1 when none is left. */
static int32_t best_pair(const merge_state *state) {
    int32_t best = -1;
    const pair *at = state->pairs.at;
    for (int32_t p = 0; p < state->pairs.n; p++)
        if (at[p].count > 0 && (best < 0 || goes_before(state, &at[p], &at[best]))) best = p;
    return best;
}

static bool holds_pair(const int32_t *piece, int32_t n, int32_t a, int32_t b) {
    for (int32_t i = 0; i + 1 < n; i++)
        if (piece[i] == a && piece[i + 1] == b) return true;
    return false;
}

/* Replaces every (a, b) in word w, left to right, by merged. */
static int merge_in_word(merge_state *state, int32_t w, int32_t a, int32_t b, int32_t merged) {
    int32_t *piece = state->pieces + state->word_start[w];
    int32_t n = state->word_length[w], kept = 0;
    if (!holds_pair(piece, n, a, b)) return 0;
    int64_t count = state->corpus->count_of[w];
    if (count_word(state, w, -count, LIST_NONE) != 0) return 1;
    for (int32_t i = 0; i < n; kept++) {
        bool joins = piece[i] == a && i + 1 < n && piece[i + 1] == b;
        piece[kept] = joins ? merged : piece[i];
        i += joins ? 2 : 1;
    }
    state->word_length[w] = kept;
    return count_word(state, w, count, merged);
}

/* The pair's right piece always has the "##" form (it follows another). */
static int32_t add_merged_token(merge_state *state, int32_t a, int32_t b) {
    const char *left = ob_string_table_at(&state->vocab, a), *right = ob_string_table_at(&state->vocab, b);
    size_t left_len = strlen(left), right_len = strlen(right) - CONTINUATION_LEN;
    char *text = malloc(left_len + right_len + 1);
    if (!text) return -1;
    memcpy(text, left, left_len);
    memcpy(text + left_len, right + CONTINUATION_LEN, right_len);
    int32_t id = ob_string_table_add(&state->vocab, text, left_len + right_len);
    free(text);
    return id;
}

static int merge(merge_state *state, int32_t p) {
    int32_t a = state->pairs.at[p].a, b = state->pairs.at[p].b;
    int32_t merged = add_merged_token(state, a, b);
    if (merged < 0) return 1;
    /* Detached first: merging adds pairs, which may move the table. */
    word_list words = state->pairs.at[p].words;
    state->pairs.at[p].words = (word_list){0};
    int rc = 0;
    for (int32_t i = 0; i < words.count && !rc; i++) rc = merge_in_word(state, words.ids[i], a, b, merged);
    free(words.ids);
    return rc;
}

int ob_wordpiece_train(const ob_wordpiece_trainer *trainer, int32_t vocab_size, ob_wordpiece **out, char *err,
                       size_t err_len) {
    *out = NULL;
    if (trainer->words.count == 0) {
        snprintf(err, err_len, "no words to train a vocabulary on: the corpus is empty");
        return 2;
    }
    merge_state state = {.corpus = trainer};
    int rc = start_vocabulary(&state, vocab_size, err, err_len);
    if (!rc) rc = split_words(&state);
    for (int32_t p; !rc && state.vocab.count < vocab_size && (p = best_pair(&state)) >= 0;) rc = merge(&state, p);
    if (!rc) rc = ob_wordpiece_adopt(&state.vocab, "trained vocabulary", out, err, err_len);
    ob_string_table_free(&state.vocab);
    free(state.pieces);
    free(state.word_start);
    free(state.word_length);
    pair_table_free(&state.pairs);
    return rc;
}
