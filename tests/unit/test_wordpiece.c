/* WordPiece: a vocabulary trained on a tiny corpus equals the one derived
 * by hand below; tokenization splits longest-first, round-trips words spelt
 * in the alphabet and gives [UNK] for the rest; vocab.txt saves and loads
 * back, and bad files are refused with the file and line named. */
#include "tests/unit/data_test_support.h" /* first: it sets _POSIX_C_SOURCE */

#include "workloads/bert/ob_wordpiece.h"

/* Words: abc x2, dbc x1, ab x1, ca x1. The alphabet a, b, c, d in both
 * forms sorts by bytes as ##a ##b ##c ##d a b c d (ids 5..12, after the
 * five special tokens). Pieces: abc = a ##b ##c, dbc = d ##b ##c,
 * ab = a ##b, ca = c ##a. Pair counts, and the merge each round makes:
 *   1. (a,##b) 3, (##b,##c) 3, (d,##b) 1, (c,##a) 1: a tie of 3;
 *      "##b" < "a"                                        -> ##bc (id 13)
 *   2. (a,##bc) 2, (d,##bc) 1, (a,##b) 1, (c,##a) 1      -> abc  (id 14)
 *   3. (d,##bc) 1, (a,##b) 1, (c,##a) 1: "a" < "c" < "d"  -> ab   (id 15)
 *   4. (d,##bc) 1, (c,##a) 1                              -> ca   (id 16)
 *   5. (d,##bc) 1                                         -> dbc  (id 17)
 * and no pair is left. The corpus is given in two orders: the result must
 * not depend on the order words first appear in. */
static const char CORPUS[] = "abc abc dbc ab ca";
static const char CORPUS_REORDERED[] = "ca ab\ndbc\tabc abc";
static const char *const EXPECTED[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "##a", "##b", "##c", "##d",
                                       "a",     "b",     "c",     "d",     "##bc",   "abc", "ab",  "ca",  "dbc"};
#define N_EXPECTED ((int32_t)(sizeof EXPECTED / sizeof EXPECTED[0]))

static char scratch[32];

static ob_wordpiece *train(const char *corpus, int32_t vocab_size, int *rc, char *err, size_t err_len) {
    ob_wordpiece_trainer *trainer = NULL;
    ob_wordpiece *vocab = NULL;
    *rc = ob_wordpiece_trainer_new(&trainer);
    if (!*rc) *rc = ob_wordpiece_trainer_add_text(trainer, corpus, strlen(corpus));
    if (!*rc) *rc = ob_wordpiece_train(trainer, vocab_size, &vocab, err, err_len);
    ob_wordpiece_trainer_free(trainer);
    return vocab;
}

static bool has_tokens(const ob_wordpiece *vocab, const char *const *tokens, int32_t n) {
    if (!vocab || ob_wordpiece_size(vocab) != n) return false;
    for (int32_t id = 0; id < n; id++)
        if (strcmp(ob_wordpiece_token(vocab, id), tokens[id]) != 0) return false;
    return true;
}

static void test_training_matches_hand_derivation(void) {
    char err[256] = "";
    int rc;
    ob_wordpiece *vocab = train(CORPUS, 100, &rc, err, sizeof err);
    check(rc == 0 && has_tokens(vocab, EXPECTED, N_EXPECTED), "all merges: the hand-derived vocabulary");
    ob_wordpiece_specials s = vocab ? ob_wordpiece_special_ids(vocab) : (ob_wordpiece_specials){0};
    CHECK(s.pad == 0 && s.unk == 1 && s.cls == 2 && s.sep == 3 && s.mask == 4);
    ob_wordpiece_free(vocab);

    vocab = train(CORPUS, 15, &rc, err, sizeof err);
    check(rc == 0 && has_tokens(vocab, EXPECTED, 15), "vocab size 15 stops after the second merge");
    ob_wordpiece_free(vocab);

    vocab = train(CORPUS_REORDERED, 100, &rc, err, sizeof err);
    check(rc == 0 && has_tokens(vocab, EXPECTED, N_EXPECTED), "word order does not change the vocabulary");
    ob_wordpiece_free(vocab);
}

static void test_training_refuses_bad_input(void) {
    char err[256] = "";
    int rc;
    ob_wordpiece *vocab = train(CORPUS, 12, &rc, err, sizeof err);
    check(rc == 2 && !vocab && strstr(err, "at least 13"), "a vocabulary without room for the alphabet");
    printf("  too small: %s\n", err);
    vocab = train(" \n\t ", 100, &rc, err, sizeof err);
    check(rc == 2 && !vocab && strstr(err, "empty"), "an empty corpus");
}

/* The ids of text, as their tokens joined by spaces. */
static void tokens_of(const ob_wordpiece *vocab, const char *text, char *out, size_t out_len) {
    ob_token_ids ids = {0};
    out[0] = '\0';
    if (ob_wordpiece_tokenize(vocab, text, strlen(text), &ids) != 0) return;
    size_t used = 0;
    for (int64_t i = 0; i < ids.count && used < out_len; i++)
        used +=
            (size_t)snprintf(out + used, out_len - used, "%s%s", i ? " " : "", ob_wordpiece_token(vocab, ids.ids[i]));
    ob_token_ids_free(&ids);
}

/* Tokens back to words: a "##" piece continues the word before it. */
static void detokenize(const ob_wordpiece *vocab, const ob_token_ids *ids, char *out, size_t out_len) {
    size_t used = 0;
    out[0] = '\0';
    for (int64_t i = 0; i < ids->count && used < out_len; i++) {
        const char *token = ob_wordpiece_token(vocab, ids->ids[i]);
        bool continues = strncmp(token, "##", 2) == 0;
        used += (size_t)snprintf(out + used, out_len - used, "%s%s", i > 0 && !continues ? " " : "",
                                 continues ? token + 2 : token);
    }
}

static void test_tokenization(void) {
    char err[256] = "", got[512];
    int rc;
    ob_wordpiece *vocab = train(CORPUS, 100, &rc, err, sizeof err);
    if (!vocab) {
        check(false, "training for the tokenization tests");
        return;
    }
    tokens_of(vocab, "abca cab ABC Ábc", got, sizeof got);
    check(strcmp(got, "abc ##a ca ##b abc abc") == 0, "longest match first, lowercased, accents stripped");
    printf("  abca cab ABC \xc3\x81\x62\x63 -> %s\n", got);
    tokens_of(vocab, "ab, xab ab.", got, sizeof got);
    check(strcmp(got, "ab [UNK] [UNK] ab [UNK]") == 0, "characters outside the alphabet give [UNK]");

    const char *words = "cab bac aaa cc abcab b a c bbbbc";
    ob_token_ids ids = {0};
    CHECK(ob_wordpiece_tokenize(vocab, words, strlen(words), &ids) == 0);
    detokenize(vocab, &ids, got, sizeof got);
    check(strcmp(got, words) == 0, "words spelt in the alphabet round-trip");
    ob_token_ids_free(&ids);

    char long_word[OB_WORDPIECE_MAX_WORD_CHARS + 2];
    memset(long_word, 'a', sizeof long_word - 1);
    long_word[sizeof long_word - 1] = '\0';
    tokens_of(vocab, long_word, got, sizeof got);
    check(strcmp(got, "[UNK]") == 0, "a word of 101 characters is [UNK]");
    long_word[OB_WORDPIECE_MAX_WORD_CHARS] = '\0';
    tokens_of(vocab, long_word, got, sizeof got);
    check(strncmp(got, "a ##a ##a", 9) == 0, "a word of 100 characters is split");
    ob_wordpiece_free(vocab);
}

static void write_text(const char *name, const char *text, char *path, size_t path_len) {
    snprintf(path, path_len, "%s/%s", scratch, name);
    write_file(path, false, (const unsigned char *)text, strlen(text));
}

static void test_vocab_file_round_trip(void) {
    char err[256] = "", path[512];
    int rc;
    ob_wordpiece *trained = train(CORPUS, 100, &rc, err, sizeof err);
    snprintf(path, sizeof path, "%s/vocab.txt", scratch);
    CHECK(trained && ob_wordpiece_save(trained, path, err, sizeof err) == 0);
    ob_wordpiece *loaded = NULL;
    CHECK(ob_wordpiece_load(path, &loaded, err, sizeof err) == 0);
    check(has_tokens(loaded, EXPECTED, N_EXPECTED), "vocab.txt saves and loads back");
    CHECK(loaded && ob_wordpiece_id(loaded, "##bc") == 13 && ob_wordpiece_id(loaded, "zz") == -1);
    ob_wordpiece_free(loaded);
    ob_wordpiece_free(trained);

    /* Google's layout: [PAD], then [unused*], then the other four. */
    write_text("google.txt", "[PAD]\n[unused0]\n[UNK]\r\n[CLS]\n[SEP]\n[MASK]\nthe\n##s\n", path, sizeof path);
    CHECK(ob_wordpiece_load(path, &loaded, err, sizeof err) == 0);
    ob_wordpiece_specials s = loaded ? ob_wordpiece_special_ids(loaded) : (ob_wordpiece_specials){0};
    check(s.pad == 0 && s.unk == 2 && s.cls == 3 && s.sep == 4 && s.mask == 5, "special ids come from the file");
    ob_wordpiece_free(loaded);
}

static void expect_load_error(const char *name, const char *text, const char *needle) {
    char err[256] = "", path[512], what[128];
    write_text(name, text, path, sizeof path);
    ob_wordpiece *vocab = NULL;
    int rc = ob_wordpiece_load(path, &vocab, err, sizeof err);
    snprintf(what, sizeof what, "%s is refused naming the file and \"%s\"", name, needle);
    check(rc == 2 && !vocab && strstr(err, path) && strstr(err, needle), what);
    printf("  %s\n", err);
    ob_wordpiece_free(vocab);
}

static void test_bad_vocab_files(void) {
    expect_load_error("no_mask.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n", "[MASK]");
    expect_load_error("repeat.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nthe\n", "line 7");
    expect_load_error("empty_line.txt", "[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n[MASK]\n", "line 3");
    char err[256] = "";
    ob_wordpiece *vocab = NULL;
    CHECK(ob_wordpiece_load("/nonexistent/vocab.txt", &vocab, err, sizeof err) == 2 &&
          strstr(err, "/nonexistent/vocab.txt"));
}

int main(void) {
    if (!scratch_dir_make(scratch)) return 1;
    test_training_matches_hand_derivation();
    test_training_refuses_bad_input();
    test_tokenization();
    test_vocab_file_round_trip();
    test_bad_vocab_files();
    scratch_dir_remove(scratch);
    return report_checks();
}
