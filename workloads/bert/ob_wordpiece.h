/* ob_wordpiece: BERT's uncased WordPiece vocabulary: training on plain
 * text, vocab.txt load/save, and tokenization.
 *
 * Text is UTF-8; the basic tokenizer (ob_basic_tokenizer.h) cuts it into
 * lowercased, accent-stripped words and single punctuation characters.
 *
 * A word is then split greedily, longest piece first, into vocabulary
 * tokens: the first piece as is, later ones with a "##" prefix. A word of
 * more than OB_WORDPIECE_MAX_WORD_CHARS characters, or one that cannot be
 * split completely, becomes the single token [UNK].
 *
 * Special tokens: a trained vocabulary has [PAD] = 0, [UNK] = 1,
 * [CLS] = 2, [SEP] = 3, [MASK] = 4. A loaded vocab.txt keeps its own ids
 * (id = line number from 0; Google's BERT files have [PAD] = 0 and
 * [UNK], [CLS], [SEP], [MASK] = 100..103) and must contain all five.
 */
#ifndef OB_WORDPIECE_H
#define OB_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

#define OB_WORDPIECE_MAX_WORD_CHARS 100
#define OB_WORDPIECE_N_SPECIALS 5

typedef struct ob_wordpiece ob_wordpiece;
typedef struct ob_wordpiece_trainer ob_wordpiece_trainer;

typedef struct {
    int32_t pad, unk, cls, sep, mask;
} ob_wordpiece_specials;

/* A growable list of token ids. */
typedef struct {
    int32_t *ids;
    int64_t count, capacity;
} ob_token_ids;

/* 0, or -1 when out of memory. */
int ob_token_ids_push(ob_token_ids *list, int32_t id);
void ob_token_ids_free(ob_token_ids *list);

/* ---- training ----
 * Counts the distinct words of everything added, then starts from the
 * special tokens and every character the words use, in both forms ("c" and
 * "##c", so any word spelt in that alphabet tokenizes without [UNK]), sorted
 * by bytes. It then merges adjacent pieces of the words until the
 * vocabulary has vocab_size tokens or no pair is left: each merge takes the
 * pair (a, b) that occurs most often in the corpus, ties going to the
 * smallest (a, b) by bytes, and its token is a's text followed by b's
 * without its "##" (a merge whose token exists already adds none). Words
 * over OB_WORDPIECE_MAX_WORD_CHARS characters are left out (they are [UNK]).
 *
 * Why frequency and not the likelihood score count(ab) / (count(a)
 * count(b)): that score is highest for pairs seen once whose pieces are
 * seen once, so on dict-gcide an 8192-token vocabulary went to digit runs,
 * chemical formulas and whole rare words (hypophysial, subconjunctival)
 * while "the" stayed "th ##e". Frequency spends the vocabulary on the
 * pieces the model reads most, as Hugging Face's WordPiece trainer also
 * does, and its integer counts make the result exact on every machine. */
int ob_wordpiece_trainer_new(ob_wordpiece_trainer **out); /* 0, or 1 when out of memory */
/* Adds the words of text; 0, or 1 when out of memory. */
int ob_wordpiece_trainer_add_text(ob_wordpiece_trainer *trainer, const char *text, size_t length);
/* Returns 0; 2 when vocab_size cannot hold the special tokens and the
 * alphabet or nothing was added (one line in err); 1 when out of memory. */
int ob_wordpiece_train(const ob_wordpiece_trainer *trainer, int32_t vocab_size, ob_wordpiece **out, char *err,
                       size_t err_len);
void ob_wordpiece_trainer_free(ob_wordpiece_trainer *trainer);

/* ---- vocab.txt: one token per line, id = line number from 0 ----
 * Load returns 0, or 2 with one line naming the file and the line (empty
 * or repeated token, missing special token, unreadable file). */
int ob_wordpiece_load(const char *path, ob_wordpiece **out, char *err, size_t err_len);
int ob_wordpiece_save(const ob_wordpiece *vocab, const char *path, char *err, size_t err_len);
void ob_wordpiece_free(ob_wordpiece *vocab);

int32_t ob_wordpiece_size(const ob_wordpiece *vocab);
const char *ob_wordpiece_token(const ob_wordpiece *vocab, int32_t id);
/* The token's id, or -1. */
int32_t ob_wordpiece_id(const ob_wordpiece *vocab, const char *token);
ob_wordpiece_specials ob_wordpiece_special_ids(const ob_wordpiece *vocab);

/* Appends the ids of text's tokens to out; 0, or 1 when out of memory. */
int ob_wordpiece_tokenize(const ob_wordpiece *vocab, const char *text, size_t length, ob_token_ids *out);

#endif
