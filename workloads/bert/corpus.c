#define _DEFAULT_SOURCE /* scandir, alphasort */

#include "workloads/bert/ob_bert_corpus.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "workloads/bert/ob_grow.h"

#define PATH_LEN 4096
/* gzread takes an unsigned count and returns an int: read in slices that fit. */
#define READ_SLICE (1u << 30)
/* Room made for each read of a file. */
#define READ_ROOM ((size_t)1 << 20)
/* dictd offsets and lengths: far beyond any dictionary, so a bad index. */
#define MAX_DICT_NUMBER ((uint64_t)1 << 40)

static const char DICTD_DIGITS[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char *const DIRECTORY_SUFFIXES[] = {".txt", ".txt.gz", ".dict.dz"};

typedef struct {
    char *bytes;
    size_t length;
} file_bytes;

/* One dictionary entry: a byte range of the uncompressed .dict. */
typedef struct {
    uint64_t offset, length;
} dict_entry;

static bool ends_with(const char *text, const char *suffix) {
    size_t n = strlen(text), m = strlen(suffix);
    return n >= m && strcmp(text + n - m, suffix) == 0;
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == '\0';
}

static bool corpus_full(const ob_bert_corpus *corpus) {
    return corpus->max_docs > 0 && corpus->docs.count >= corpus->max_docs;
}

/* ---- growing the corpus ---- */

/* Terminates the sentence being written at the end of the text. */
static int end_sentence(ob_bert_corpus *corpus) {
    corpus->text[corpus->text_used++] = '\0';
    return ob_ranges_close(&corpus->sentences, (int64_t)corpus->text_used);
}

/* One document: whitespace runs become one space, sentences end after
 * '.', '!' or '?' that whitespace follows; nothing is added when the text
 * holds no sentence. */
static int add_document(ob_bert_corpus *corpus, const char *bytes, size_t length) {
    if (corpus_full(corpus)) return 0;
    /* At most every byte plus a space before it and the sentence's NUL. */
    int64_t most = (int64_t)corpus->text_used + 2 * (int64_t)length + 1;
    if (ob_grow(&corpus->text, &corpus->text_capacity, most, 1)) return 1;
    int64_t first_sentence = corpus->sentences.count;
    size_t begin = corpus->text_used;
    bool space_pending = false;
    for (size_t i = 0; i < length; i++) {
        char c = bytes[i];
        if (is_space(c)) {
            space_pending = corpus->text_used > begin;
            continue;
        }
        if (space_pending) corpus->text[corpus->text_used++] = ' ';
        space_pending = false;
        corpus->text[corpus->text_used++] = c;
        if ((c == '.' || c == '!' || c == '?') && (i + 1 == length || is_space(bytes[i + 1]))) {
            if (end_sentence(corpus)) return 1;
            begin = corpus->text_used;
        }
    }
    if (corpus->text_used > begin && end_sentence(corpus)) return 1;
    bool has_sentences = corpus->sentences.count > first_sentence;
    return has_sentences ? ob_ranges_close(&corpus->docs, corpus->sentences.count) : 0;
}

/* ---- reading files ---- */

static int read_error(gzFile file, const char *path, char *err, size_t err_len) {
    int code;
    const char *message = gzerror(file, &code);
    snprintf(err, err_len, "%s: read error: %s", path, code == Z_ERRNO ? strerror(errno) : message);
    return 2;
}

/* The whole file, gunzipped when it is gzip (or dictzip). */
static int read_whole_file(const char *path, file_bytes *out, char *err, size_t err_len) {
    *out = (file_bytes){0};
    gzFile file = gzopen(path, "rb");
    if (!file) {
        snprintf(err, err_len, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
        return 2;
    }
    int64_t capacity = 0;
    int rc = 0, got = 1;
    while (!rc && got > 0) {
        if (ob_grow(&out->bytes, &capacity, (int64_t)out->length + READ_ROOM, 1)) rc = 1;
        size_t room = (size_t)capacity - out->length;
        got = rc ? 0 : gzread(file, out->bytes + out->length, (unsigned)(room < READ_SLICE ? room : READ_SLICE));
        if (got < 0) rc = read_error(file, path, err, err_len);
        if (got > 0) out->length += (size_t)got;
    }
    gzclose(file);
    if (rc) {
        free(out->bytes);
        *out = (file_bytes){0};
    }
    return rc;
}

/* Blank lines (only whitespace) separate documents. */
static int add_text_file(ob_bert_corpus *corpus, const char *path, char *err, size_t err_len) {
    file_bytes file;
    int rc = read_whole_file(path, &file, err, err_len);
    size_t document = 0, line = 0;
    while (!rc && line < file.length && !corpus_full(corpus)) {
        const char *newline = memchr(file.bytes + line, '\n', file.length - line);
        size_t next = newline ? (size_t)(newline - file.bytes) + 1 : file.length;
        bool blank = true;
        for (size_t i = line; i < next && blank; i++) blank = is_space(file.bytes[i]);
        if (blank) {
            rc = add_document(corpus, file.bytes + document, line - document);
            document = next;
        }
        line = next;
    }
    if (!rc) rc = add_document(corpus, file.bytes + document, file.length - document);
    free(file.bytes);
    return rc;
}

/* A dictd number: base-64 digits, most significant first. */
static bool parse_dictd_number(const char *digits, size_t n, uint64_t *value) {
    *value = 0;
    for (size_t i = 0; i < n; i++) {
        const char *digit = memchr(DICTD_DIGITS, digits[i], 64);
        if (!digit || *value >= MAX_DICT_NUMBER) return false;
        *value = *value * 64 + (uint64_t)(digit - DICTD_DIGITS);
    }
    return n > 0;
}

/* headword TAB offset TAB length [TAB ...]; false when malformed. Entries
 * of the dictionary itself (00-database-info, ...) get length 0. */
static bool parse_index_line(const char *line, size_t n, dict_entry *entry) {
    const char *tab1 = memchr(line, '\t', n);
    const char *tab2 = tab1 ? memchr(tab1 + 1, '\t', n - (size_t)(tab1 + 1 - line)) : NULL;
    if (!tab2) return false;
    const char *end = memchr(tab2 + 1, '\t', n - (size_t)(tab2 + 1 - line));
    if (!end) end = line + n;
    if (!parse_dictd_number(tab1 + 1, (size_t)(tab2 - tab1 - 1), &entry->offset) ||
        !parse_dictd_number(tab2 + 1, (size_t)(end - tab2 - 1), &entry->length))
        return false;
    if (strncmp(line, "00-", 3) == 0 || strncmp(line, "00database", 10) == 0) entry->length = 0;
    return true;
}

static int compare_entries(const void *x, const void *y) {
    const dict_entry *a = x, *b = y;
    if (a->offset != b->offset) return a->offset < b->offset ? -1 : 1;
    return a->length < b->length ? -1 : a->length > b->length;
}

/* The index's entries sorted by offset; *n_entries of them. */
static int read_dict_index(const char *index_path, dict_entry **entries, size_t *n_entries, char *err, size_t err_len) {
    file_bytes index;
    int rc = read_whole_file(index_path, &index, err, err_len);
    int64_t capacity = 0;
    size_t number = 0;
    *entries = NULL;
    *n_entries = 0;
    for (size_t line = 0, next; !rc && line < index.length; line = next) {
        const char *newline = memchr(index.bytes + line, '\n', index.length - line);
        next = newline ? (size_t)(newline - index.bytes) + 1 : index.length;
        number++;
        if (ob_grow(entries, &capacity, (int64_t)*n_entries + 1, sizeof **entries)) rc = 1;
        if (!rc && !parse_index_line(index.bytes + line, next - line - (newline != NULL), &(*entries)[*n_entries])) {
            snprintf(err, err_len, "%s: line %zu: expected headword, offset and length separated by tabs", index_path,
                     number);
            rc = 2;
        }
        if (!rc) ++*n_entries;
    }
    free(index.bytes);
    if (!rc) qsort(*entries, *n_entries, sizeof **entries, compare_entries);
    return rc;
}

/* NAME.dict.dz or NAME.dict -> NAME.index */
static int index_path_of(const char *dict_path, char *index_path, char *err, size_t err_len) {
    size_t stem = strlen(dict_path) - (ends_with(dict_path, ".dz") ? strlen(".dict.dz") : strlen(".dict"));
    if (snprintf(index_path, PATH_LEN, "%.*s.index", (int)stem, dict_path) >= PATH_LEN) {
        snprintf(err, err_len, "%s: path too long", dict_path);
        return 2;
    }
    return 0;
}

static int add_dictd(ob_bert_corpus *corpus, const char *dict_path, char *err, size_t err_len) {
    char index_path[PATH_LEN];
    dict_entry *entries = NULL;
    size_t n_entries = 0;
    file_bytes dict = {0};
    int rc = index_path_of(dict_path, index_path, err, err_len);
    if (!rc) rc = read_dict_index(index_path, &entries, &n_entries, err, err_len);
    if (!rc) rc = read_whole_file(dict_path, &dict, err, err_len);
    const dict_entry *added = NULL; /* several headwords may share an entry */
    for (size_t i = 0; !rc && i < n_entries && !corpus_full(corpus); i++) {
        const dict_entry *e = &entries[i];
        if (e->length == 0 || (added && e->offset == added->offset)) continue;
        added = e;
        if (e->offset + e->length > dict.length) {
            snprintf(err, err_len, "%s: an entry at offset %llu runs past the end of %s (%zu bytes)", index_path,
                     (unsigned long long)e->offset, dict_path, dict.length);
            rc = 2;
        }
        if (!rc) rc = add_document(corpus, dict.bytes + e->offset, (size_t)e->length);
    }
    free(entries);
    free(dict.bytes);
    return rc;
}

/* ---- paths ---- */

static int is_corpus_file(const struct dirent *entry) {
    for (size_t i = 0; i < sizeof DIRECTORY_SUFFIXES / sizeof DIRECTORY_SUFFIXES[0]; i++)
        if (ends_with(entry->d_name, DIRECTORY_SUFFIXES[i])) return 1;
    return 0;
}

static int add_file(ob_bert_corpus *corpus, const char *path, char *err, size_t err_len) {
    if (ends_with(path, ".dict.dz") || ends_with(path, ".dict")) return add_dictd(corpus, path, err, err_len);
    return add_text_file(corpus, path, err, err_len);
}

static int add_directory(ob_bert_corpus *corpus, const char *dir, char *err, size_t err_len) {
    struct dirent **names;
    int n = scandir(dir, &names, is_corpus_file, alphasort);
    if (n < 0) {
        snprintf(err, err_len, "%s: cannot list: %s", dir, strerror(errno));
        return 2;
    }
    int rc = n == 0 ? 2 : 0;
    if (n == 0) snprintf(err, err_len, "%s: no .txt, .txt.gz or .dict.dz files in the directory", dir);
    for (int i = 0; i < n; i++) {
        char path[PATH_LEN];
        if (!rc && snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name) >= (int)sizeof path) {
            snprintf(err, err_len, "%s/%s: path too long", dir, names[i]->d_name);
            rc = 2;
        }
        if (!rc) rc = add_file(corpus, path, err, err_len);
        free(names[i]);
    }
    free(names);
    return rc;
}

int ob_bert_corpus_add(ob_bert_corpus *corpus, const char *path, char *err, size_t err_len) {
    struct stat info;
    if (stat(path, &info) != 0) {
        snprintf(err, err_len, "%s: %s (expected a text file, a directory of .txt files or a dictd .dict.dz)", path,
                 strerror(errno));
        return 2;
    }
    return S_ISDIR(info.st_mode) ? add_directory(corpus, path, err, err_len) : add_file(corpus, path, err, err_len);
}

const char *ob_bert_corpus_sentence(const ob_bert_corpus *corpus, int64_t s) {
    return corpus->text + ob_ranges_begin(&corpus->sentences, s);
}

void ob_bert_corpus_free(ob_bert_corpus *corpus) {
    free(corpus->text);
    ob_ranges_free(&corpus->sentences);
    ob_ranges_free(&corpus->docs);
    *corpus = (ob_bert_corpus){0};
}
