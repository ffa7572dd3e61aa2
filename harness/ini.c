/* The INI reader (ob_ini.h): libinih behind a line reader. */
#include "harness/ob_ini.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include <ini.h>

typedef enum { LINE_READ, LINE_NONE, LINE_TOO_LONG } line_status;

static bool is_blank(char c) {
    return isspace((unsigned char)c) != 0;
}

static bool at_end_of_file(FILE *file) {
    int c = getc(file);
    if (c == EOF) return true;
    ungetc(c, file);
    return false;
}

static line_status next_file_line(ob_ini_parser *p, char *buffer, int size) {
    if (!fgets(buffer, size, p->file)) {
        if (ferror(p->file)) p->read_errno = errno;
        return LINE_NONE;
    }
    size_t length = strlen(buffer);
    bool cut = length + 1 == (size_t)size && buffer[length - 1] != '\n' && !at_end_of_file(p->file);
    return cut ? LINE_TOO_LONG : LINE_READ;
}

static line_status next_text_line(ob_ini_parser *p, char *buffer, int size) {
    if (*p->text == '\0') return LINE_NONE;
    size_t length = strcspn(p->text, "\n");
    if (p->text[length] == '\n') length++;
    if (length + 1 > (size_t)size) return LINE_TOO_LONG;
    memcpy(buffer, p->text, length);
    buffer[length] = '\0';
    p->text += length;
    return LINE_READ;
}

/* libinih's reader: NULL ends the parse. */
static char *read_line(char *buffer, int size, void *stream) {
    ob_ini_parser *p = stream;
    if (p->stopped || p->too_long_line) return NULL;
    line_status status = p->file ? next_file_line(p, buffer, size) : next_text_line(p, buffer, size);
    if (status == LINE_NONE) return NULL;
    p->line++;
    if (status == LINE_TOO_LONG) {
        p->too_long_line = p->line;
        p->line_limit = size - 2; /* room is left for the newline and the NUL */
        return NULL;
    }
    /* libinih drops a byte-order mark itself, but only after the blanks
     * before it would have made the line a continuation. */
    size_t skip = p->line == 1 && strncmp(buffer, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    while (is_blank(buffer[skip])) skip++;
    memmove(buffer, buffer + skip, strlen(buffer + skip) + 1);
    if (buffer[0] == '[' && p->on_section && !p->on_section(p->user, buffer)) {
        p->stopped = true;
        return NULL;
    }
    return buffer;
}

static int on_pair(void *user, const char *section, const char *key, const char *value) {
    ob_ini_parser *p = user;
    if (!p->on_pair(p->user, section, key, value)) p->stopped = true;
    return !p->stopped;
}

int ob_ini_parse(ob_ini_parser *parser) {
    return ini_parse_stream(read_line, parser, on_pair, parser);
}

int ob_ini_parse_failure(const ob_ini_parser *parser, int result, const char *name, char *err, size_t err_len) {
    if (result > 0) {
        snprintf(err, err_len, "%s:%d: syntax error: expected [section] or key = value", name, result);
        return 2;
    }
    if (parser->too_long_line) {
        snprintf(err, err_len, "%s:%d: line longer than %d characters", name, parser->too_long_line,
                 parser->line_limit);
        return 2;
    }
    if (result < 0) {
        snprintf(err, err_len, "%s: out of memory while parsing", name);
        return 1;
    }
    return 0;
}

char *ob_ini_trim(char *text) {
    while (is_blank(*text)) text++;
    size_t length = strlen(text);
    while (length > 0 && is_blank(text[length - 1])) text[--length] = '\0';
    return text;
}
