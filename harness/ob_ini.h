/* ob_ini: the one INI reader of optbench (config files and texts,
 * ob_config.h; suite files, ob_suite.h). libinih parses; this module feeds
 * it lines so that every INI file behaves alike:
 *   - lines are counted, so a handler can name its line (Debian's libinih
 *     is built without INI_HANDLER_LINENO);
 *   - a line longer than libinih's buffer stops the parse (it would be
 *     split or cut);
 *   - a UTF-8 byte-order mark and leading blanks are dropped, so an indented
 *     key is a key rather than libinih's multi-line continuation;
 *   - each "[..." line is shown to the caller before libinih parses it
 *     (libinih tells handlers only a section's name, and nothing about a
 *     section without keys);
 *   - the first pair a handler refuses stops the parse.
 */
#ifndef OB_INI_H
#define OB_INI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Both hooks return nonzero to go on (libinih's convention), 0 to stop. */
typedef int (*ob_ini_pair_fn)(void *user, const char *section, const char *key, const char *value);
typedef int (*ob_ini_section_fn)(void *user, const char *line);

typedef struct {
    /* The source, set by the caller: a file, or (file NULL) INI text. */
    FILE *file;
    const char *text;
    ob_ini_pair_fn on_pair;
    ob_ini_section_fn on_section; /* optional: each line that starts with '[' */
    void *user;
    /* Filled by ob_ini_parse. */
    int line;          /* the line being parsed: handlers read it */
    int too_long_line; /* 0, or the line that did not fit libinih's buffer */
    int line_limit;    /* the characters that fit, for that error line */
    int read_errno;    /* 0, or errno of a failed read from file */
    bool stopped;      /* a hook said stop */
} ob_ini_parser;

/* Parses the source; libinih's result: 0, the line of the first syntax
 * error or refused pair, or -1 when memory ran out. */
int ob_ini_parse(ob_ini_parser *parser);

/* The failures of a parse that are not a hook's (those come first, in the
 * caller's words): a syntax error, a line too long (the earlier line wins),
 * memory. One line "NAME:LINE: ..." in err and 2 (1 for memory); 0 when
 * there was none. name is the source as error lines show it. */
int ob_ini_parse_failure(const ob_ini_parser *parser, int result, const char *name, char *err, size_t err_len);

/* Drops blanks at both ends of text, in place, as libinih does around keys
 * and values; returns the first kept character. */
char *ob_ini_trim(char *text);

#endif
