/* ob_basic_tokenizer: BERT's uncased basic tokenizer, the step before
 * WordPiece. It reads UTF-8 text and hands out words:
 * - control characters are dropped (NUL, tab, CR and LF count as spaces),
 *   and so are bytes that are not UTF-8, as BERT drops U+FFFD;
 * - ASCII and Latin-1 letters are lowercased and Latin-1 accents stripped
 *   (every accented e becomes e, and so on; letters with no decomposition,
 *   such as ae or o-slash, stay); other scripts pass through unchanged;
 * - words end at whitespace, and every punctuation character (ASCII
 *   punctuation, Latin-1 punctuation and symbols, the General Punctuation
 *   block, CJK symbols and punctuation) is a word of its own.
 */
#ifndef OB_BASIC_TOKENIZER_H
#define OB_BASIC_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>

#include "workloads/bert/ob_wordpiece.h"

/* A word of up to OB_WORDPIECE_MAX_WORD_CHARS characters, 4 UTF-8 bytes
 * each at most, and a NUL. */
#define OB_WORD_BYTES (OB_WORDPIECE_MAX_WORD_CHARS * 4 + 1)

typedef struct {
    const unsigned char *text;
    size_t length, position;
} ob_word_reader;

typedef struct {
    char bytes[OB_WORD_BYTES]; /* normalised, NUL-terminated */
    size_t length;             /* bytes */
    int chars;                 /* characters; above the maximum the word is too long and bytes hold its start */
} ob_word;

void ob_word_reader_init(ob_word_reader *reader, const char *text, size_t length);
/* The next word, or false at the end of the text. */
bool ob_word_reader_next(ob_word_reader *reader, ob_word *word);
/* The byte length of the character that valid UTF-8 `bytes` starts with. */
size_t ob_utf8_char_length(const char *bytes);

#endif
