#include "workloads/bert/ob_basic_tokenizer.h"

#include <stdint.h>

#define REPLACEMENT_CHARACTER 0xFFFDu

typedef enum { CHAR_DROPPED, CHAR_SPACE, CHAR_PUNCTUATION, CHAR_LETTER } char_class;

/* Base letters of lowercase Latin-1 U+00E0..U+00FF after NFD strips the
 * accent; '_' where nothing decomposes (ae, eth, division sign, o-slash,
 * thorn). */
static const char LATIN1_BASE_LETTERS[] = "aaaaaa_ceeeeiiii_nooooo__uuuuy_y";

void ob_word_reader_init(ob_word_reader *reader, const char *text, size_t length) {
    reader->text = (const unsigned char *)text;
    reader->length = length;
    reader->position = 0;
}

static uint32_t skip_invalid_byte(ob_word_reader *reader) {
    reader->position++;
    return REPLACEMENT_CHARACTER;
}

/* Decodes the character at the reader's position and moves past it. */
static uint32_t next_code_point(ob_word_reader *reader) {
    const unsigned char *bytes = reader->text + reader->position;
    size_t available = reader->length - reader->position;
    unsigned char lead = bytes[0];
    if (lead < 0x80) {
        reader->position++;
        return lead;
    }
    size_t n;
    uint32_t code, smallest;
    if ((lead & 0xE0) == 0xC0) {
        n = 2, code = lead & 0x1Fu, smallest = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
        n = 3, code = lead & 0x0Fu, smallest = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
        n = 4, code = lead & 0x07u, smallest = 0x10000;
    } else {
        return skip_invalid_byte(reader);
    }
    if (available < n) return skip_invalid_byte(reader);
    for (size_t i = 1; i < n; i++) {
        if ((bytes[i] & 0xC0) != 0x80) return skip_invalid_byte(reader);
        code = code << 6 | (bytes[i] & 0x3Fu);
    }
    /* Overlong forms, surrogates and values past Unicode are not UTF-8. */
    if (code < smallest || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return skip_invalid_byte(reader);
    reader->position += n;
    return code;
}

static bool is_space(uint32_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static bool is_punctuation(uint32_t c) {
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126) ||
           (c >= 0xA1 && c <= 0xBF) || c == 0xD7 || c == 0xF7 || (c >= 0x2010 && c <= 0x2027) ||
           (c >= 0x2030 && c <= 0x205E) || (c >= 0x3001 && c <= 0x303F);
}

static char_class classify(uint32_t c) {
    if (is_space(c)) return CHAR_SPACE;
    if (c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == REPLACEMENT_CHARACTER) return CHAR_DROPPED;
    return is_punctuation(c) ? CHAR_PUNCTUATION : CHAR_LETTER;
}

static uint32_t lowercase_unaccented(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) c += 0x20;
    if (c >= 0xE0 && c <= 0xFF && LATIN1_BASE_LETTERS[c - 0xE0] != '_') return (uint32_t)LATIN1_BASE_LETTERS[c - 0xE0];
    return c;
}

/* Encodes c at the end of the word while it is short enough to be kept. */
static void append_char(ob_word *word, uint32_t c) {
    if (word->chars++ >= OB_WORDPIECE_MAX_WORD_CHARS) return;
    char *out = word->bytes + word->length;
    if (c < 0x80) {
        out[0] = (char)c;
        word->length += 1;
    } else if (c < 0x800) {
        out[0] = (char)(0xC0 | c >> 6);
        out[1] = (char)(0x80 | (c & 0x3F));
        word->length += 2;
    } else if (c < 0x10000) {
        out[0] = (char)(0xE0 | c >> 12);
        out[1] = (char)(0x80 | (c >> 6 & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        word->length += 3;
    } else {
        out[0] = (char)(0xF0 | c >> 18);
        out[1] = (char)(0x80 | (c >> 12 & 0x3F));
        out[2] = (char)(0x80 | (c >> 6 & 0x3F));
        out[3] = (char)(0x80 | (c & 0x3F));
        word->length += 4;
    }
}

bool ob_word_reader_next(ob_word_reader *reader, ob_word *word) {
    word->length = 0;
    word->chars = 0;
    while (reader->position < reader->length) {
        size_t start = reader->position;
        uint32_t c = next_code_point(reader);
        char_class kind = classify(c);
        if (kind == CHAR_DROPPED) continue;
        if (kind == CHAR_SPACE) {
            if (word->chars > 0) break;
            continue;
        }
        if (kind == CHAR_PUNCTUATION) {
            if (word->chars > 0)
                reader->position = start; /* the punctuation is the next word */
            else
                append_char(word, c);
            break;
        }
        append_char(word, lowercase_unaccented(c));
    }
    word->bytes[word->length] = '\0';
    return word->chars > 0;
}

size_t ob_utf8_char_length(const char *bytes) {
    unsigned char lead = (unsigned char)bytes[0];
    if (lead < 0x80) return 1;
    if (lead < 0xE0) return 2;
    return lead < 0xF0 ? 3 : 4;
}
