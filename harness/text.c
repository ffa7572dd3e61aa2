#include "harness/ob_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(ob_text *text, size_t extra) {
    if (text->failed) return false;
    size_t needed = text->length + extra + 1;
    if (needed <= text->capacity) return true;
    size_t capacity = text->capacity ? text->capacity : 256;
    while (capacity < needed) capacity *= 2;
    char *grown = realloc(text->data, capacity);
    if (!grown) {
        text->failed = true;
        return false;
    }
    text->data = grown;
    text->capacity = capacity;
    return true;
}

void ob_text_append(ob_text *text, const char *bytes, size_t length) {
    if (!reserve(text, length)) return;
    memcpy(text->data + text->length, bytes, length);
    text->length += length;
    text->data[text->length] = '\0';
}

void ob_text_printf(ob_text *text, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int needed = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (needed < 0 || !reserve(text, (size_t)needed)) {
        text->failed = true;
        return;
    }
    va_start(args, format);
    vsnprintf(text->data + text->length, (size_t)needed + 1, format, args);
    va_end(args);
    text->length += (size_t)needed;
}

void ob_text_append_shell_word(ob_text *text, const char *word) {
    static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.,:/@%";
    if (word[0] && strspn(word, plain) == strlen(word)) {
        ob_text_append(text, word, strlen(word));
        return;
    }
    ob_text_append(text, "'", 1);
    for (const char *p = word; *p; p++) {
        if (*p == '\'')
            ob_text_append(text, "'\\''", 4);
        else
            ob_text_append(text, p, 1);
    }
    ob_text_append(text, "'", 1);
}

const char *ob_text_str(const ob_text *text) { return text->data && !text->failed ? text->data : ""; }

void ob_text_free(ob_text *text) {
    free(text->data);
    *text = (ob_text){0};
}
