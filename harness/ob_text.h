/* ob_text: a growable NUL-terminated string for building commands, scripts
 * and tables. A failed allocation makes the text sticky-failed instead of
 * stopping each caller: build everything, then check `failed` once. */
#ifndef OB_TEXT_H
#define OB_TEXT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data; /* NULL until something was appended */
    size_t length, capacity;
    bool failed;
} ob_text;

void ob_text_printf(ob_text *text, const char *format, ...) __attribute__((format(printf, 2, 3)));
void ob_text_append(ob_text *text, const char *bytes, size_t length);
/* One shell word: as is when it holds only characters no shell treats
 * specially, otherwise in single quotes (a quote inside becomes '\''). */
void ob_text_append_shell_word(ob_text *text, const char *word);
/* The text so far ("" when empty). */
const char *ob_text_str(const ob_text *text);
void ob_text_free(ob_text *text);

#endif
