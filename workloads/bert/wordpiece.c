#define _POSIX_C_SOURCE 200809L /* getline */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/bert/ob_basic_tokenizer.h"
#include "workloads/bert/ob_grow.h"
#include "workloads/bert/wordpiece_impl.h"

#define CONTINUATION "##"
#define CONTINUATION_LEN 2

struct ob_wordpiece {
    ob_string_table tokens;
    ob_wordpiece_specials specials;
    size_t longest_token; /* bytes: no longer piece is worth looking up */
};

int ob_token_ids_push(ob_token_ids *list, int32_t id) {
    if (ob_grow(&list->ids, &list->capacity, list->count + 1, sizeof *list->ids)) return -1;
    list->ids[list->count++] = id;
    return 0;
}

void ob_token_ids_free(ob_token_ids *list) {
    free(list->ids);
    *list = (ob_token_ids){0};
}

int ob_wordpiece_adopt(ob_string_table *tokens, const char *source, ob_wordpiece **out, char *err, size_t err_len) {
    static const char *const names[] = OB_WORDPIECE_SPECIAL_NAMES;
    int32_t ids[OB_WORDPIECE_N_SPECIALS];
    for (int i = 0; i < OB_WORDPIECE_N_SPECIALS; i++) {
        ids[i] = ob_string_table_find(tokens, names[i], strlen(names[i]));
        if (ids[i] < 0) {
            snprintf(err, err_len, "%s: no %s token (a BERT vocabulary has [PAD], [UNK], [CLS], [SEP] and [MASK])",
                     source, names[i]);
            return 2;
        }
    }
    ob_wordpiece *vocab = calloc(1, sizeof *vocab);
    if (!vocab) return 1;
    vocab->tokens = *tokens;
    *tokens = (ob_string_table)OB_STRING_TABLE_EMPTY;
    vocab->specials = (ob_wordpiece_specials){ids[0], ids[1], ids[2], ids[3], ids[4]};
    for (int32_t id = 0; id < vocab->tokens.count; id++)
        if (ob_string_table_length(&vocab->tokens, id) > vocab->longest_token)
            vocab->longest_token = ob_string_table_length(&vocab->tokens, id);
    *out = vocab;
    return 0;
}

static int add_vocab_line(ob_string_table *tokens, const char *path, int64_t line_number, char *line, size_t length,
                          char *err, size_t err_len) {
    while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == '\r')) line[--length] = '\0';
    if (length == 0 || memchr(line, '\0', length)) {
        snprintf(err, err_len, "%s: line %lld: expected one token, got an empty line", path, (long long)line_number);
        return 2;
    }
    int32_t earlier = ob_string_table_find(tokens, line, length);
    if (earlier >= 0) {
        snprintf(err, err_len, "%s: line %lld: token \"%s\" repeats line %d", path, (long long)line_number, line,
                 earlier + 1);
        return 2;
    }
    return ob_string_table_add(tokens, line, length) < 0 ? 1 : 0;
}

int ob_wordpiece_load(const char *path, ob_wordpiece **out, char *err, size_t err_len) {
    *out = NULL;
    FILE *file = fopen(path, "r");
    if (!file) {
        snprintf(err, err_len, "%s: cannot read the vocabulary: %s", path, strerror(errno));
        return 2;
    }
    ob_string_table tokens = OB_STRING_TABLE_EMPTY;
    char *line = NULL;
    size_t line_capacity = 0;
    ssize_t length;
    int rc = 0;
    for (int64_t number = 1; !rc && (length = getline(&line, &line_capacity, file)) >= 0; number++)
        rc = add_vocab_line(&tokens, path, number, line, (size_t)length, err, err_len);
    if (!rc && ferror(file)) {
        snprintf(err, err_len, "%s: read error", path);
        rc = 2;
    }
    free(line);
    fclose(file);
    if (!rc) rc = ob_wordpiece_adopt(&tokens, path, out, err, err_len);
    ob_string_table_free(&tokens);
    return rc;
}

int ob_wordpiece_save(const ob_wordpiece *vocab, const char *path, char *err, size_t err_len) {
    FILE *file = fopen(path, "w");
    if (!file) {
        snprintf(err, err_len, "%s: cannot write the vocabulary: %s", path, strerror(errno));
        return 2;
    }
    for (int32_t id = 0; id < vocab->tokens.count; id++) fprintf(file, "%s\n", ob_string_table_at(&vocab->tokens, id));
    bool failed = ferror(file) != 0;
    if (fclose(file) != 0 || failed) {
        snprintf(err, err_len, "%s: cannot write the vocabulary (disk full?)", path);
        return 2;
    }
    return 0;
}

void ob_wordpiece_free(ob_wordpiece *vocab) {
    if (!vocab) return;
    ob_string_table_free(&vocab->tokens);
    free(vocab);
}

int32_t ob_wordpiece_size(const ob_wordpiece *vocab) { return vocab->tokens.count; }

const char *ob_wordpiece_token(const ob_wordpiece *vocab, int32_t id) { return ob_string_table_at(&vocab->tokens, id); }

int32_t ob_wordpiece_id(const ob_wordpiece *vocab, const char *token) {
    return ob_string_table_find(&vocab->tokens, token, strlen(token));
}

ob_wordpiece_specials ob_wordpiece_special_ids(const ob_wordpiece *vocab) { return vocab->specials; }

/* The id of word[start, end) as a piece (with "##" after the first), or -1. */
static int32_t piece_id(const ob_wordpiece *vocab, const ob_word *word, size_t start, size_t end) {
    size_t prefix = start > 0 ? CONTINUATION_LEN : 0;
    if (prefix + end - start > vocab->longest_token) return -1;
    char piece[CONTINUATION_LEN + OB_WORD_BYTES];
    memcpy(piece, CONTINUATION, prefix);
    memcpy(piece + prefix, word->bytes + start, end - start);
    return ob_string_table_find(&vocab->tokens, piece, prefix + end - start);
}

/* Greedy longest-match-first over the word's character boundaries; a word
 * that is too long or cannot be split completely is one [UNK]. */
static int tokenize_word(const ob_wordpiece *vocab, const ob_word *word, ob_token_ids *out) {
    if (word->chars > OB_WORDPIECE_MAX_WORD_CHARS) return ob_token_ids_push(out, vocab->specials.unk) != 0;
    size_t boundary[OB_WORDPIECE_MAX_WORD_CHARS + 1] = {0};
    int n = 0;
    for (size_t at = 0; at < word->length; boundary[++n] = at) at += ob_utf8_char_length(word->bytes + at);
    int64_t first = out->count;
    for (int start = 0; start < n;) {
        int end = n;
        int32_t id;
        while ((id = piece_id(vocab, word, boundary[start], boundary[end])) < 0 && --end > start) {}
        if (id < 0) {
            out->count = first;
            return ob_token_ids_push(out, vocab->specials.unk) != 0;
        }
        if (ob_token_ids_push(out, id) != 0) return 1;
        start = end;
    }
    return 0;
}

int ob_wordpiece_tokenize(const ob_wordpiece *vocab, const char *text, size_t length, ob_token_ids *out) {
    ob_word_reader reader;
    ob_word word;
    ob_word_reader_init(&reader, text, length);
    while (ob_word_reader_next(&reader, &word))
        if (tokenize_word(vocab, &word, out) != 0) return 1;
    return 0;
}
