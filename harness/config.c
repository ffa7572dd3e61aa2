/* The configuration store (ob_config.h): generic over the key table in config_keys.c. */
#include "harness/ob_config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/ob_fail.h"
#include "harness/ob_ini.h"
#include "harness/ob_text.h"

struct ob_config {
    int key_count;
    char *texts[]; /* per key, in table order: the text as set, or NULL while at the default */
};

enum {
    SHOWN_MAX = 120,       /* longest echo of user text in an error line */
    MESSAGE_MAX = 512,     /* an error line before it is copied into the caller's buffer */
    ANY_TYPE = -1          /* getter_index: the key may be of any type */
};

/* ---- small text helpers ---- */

static char *copy_text(const char *text) {
    size_t size = strlen(text) + 1;
    char *copy = malloc(size);
    if (copy)
        memcpy(copy, text, size);
    return copy;
}

static bool is_blank(char c) {
    return isspace((unsigned char)c) != 0;
}

static bool is_control(char c) {
    unsigned char byte = (unsigned char)c;
    return byte < 0x20 || byte == 0x7f;
}

static const char *skip_blanks(const char *text) {
    while (is_blank(*text))
        text++;
    return text;
}

static bool equal_ignoring_case(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
    return *a == *b;
}

/* Error lines must stay one bounded line whatever the user typed: control
 * characters become \xHH and long text is cut with "...". */
static void show_text(const char *text, char shown[SHOWN_MAX]) {
    size_t used = 0;
    for (; *text; text++) {
        size_t needed = is_control(*text) ? 4 : 1;
        if (used + needed > SHOWN_MAX - 4) {
            memcpy(shown + used, "...", 3);
            used += 3;
            break;
        }
        if (needed == 4)
            snprintf(shown + used, 5, "\\x%02X", (unsigned char)*text);
        else
            shown[used] = *text;
        used += needed;
    }
    shown[used] = '\0';
}

/* ob_fail's line with another status: 1 when memory ran out, or a code
 * passed on from below. */
#define FAIL_WITH(code, err, err_len, ...) (ob_fail((err), (err_len), __VA_ARGS__), (code))

/* ---- the key table ---- */

static int find_key(const char *key) {
    int count;
    const ob_config_key *keys = ob_config_keys(&count);
    for (int i = 0; i < count; i++)
        if (strcmp(keys[i].key, key) == 0)
            return i;
    return -1;
}

/* A getter cannot report misuse to its caller, so misuse stops the program in
 * every build type, naming the key (a bare assert would vanish under NDEBUG). */
static int getter_index(const char *key, int wanted_type) {
    int index = find_key(key);
    if (index < 0 || (wanted_type != ANY_TYPE && (int)ob_config_keys(NULL)[index].type != wanted_type)) {
        fprintf(stderr, "ob_config: getter called with %s \"%s\"\n",
                index < 0 ? "unknown key" : "wrong type for key", key);
        abort();
    }
    return index;
}

static const char *text_at(const ob_config *cfg, int index) {
    return cfg->texts[index] ? cfg->texts[index] : ob_config_keys(NULL)[index].default_value;
}

/* ---- parsing and validating values ---- */

static bool parse_bool(const char *text, bool *value) {
    static const struct { const char *word; bool value; } words[] = {
        {"true", true}, {"false", false}, {"1", true}, {"0", false},
        {"yes", true},  {"no", false},    {"on", true}, {"off", false},
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (equal_ignoring_case(text, words[i].word)) {
            *value = words[i].value;
            return true;
        }
    }
    return false;
}

static bool parse_int(const char *text, int64_t *value) {
    if (*text == '\0' || is_blank(*text))
        return false;
    char *end;
    errno = 0;
    long long parsed = strtoll(text, &end, 10);
    if (errno == ERANGE || end == text || *end != '\0')
        return false;
    *value = (int64_t)parsed;
    return true;
}

/* Reads one finite number at the start of text; *end points past it. */
static bool parse_number_prefix(const char *text, char **end, double *value) {
    if (is_blank(*text))
        return false;
    *value = strtod(text, end);
    return *end != text && isfinite(*value);
}

static bool parse_float(const char *text, double *value) {
    char *end;
    return parse_number_prefix(text, &end, value) && *end == '\0';
}

/* Integers compare in int64 so that bounds near 2^62 are exact. */
static bool int_in_bounds(const ob_config_key *spec, int64_t value) {
    bool above_min = isinf(spec->min) || value >= (int64_t)spec->min;
    bool below_max = isinf(spec->max) || value <= (int64_t)spec->max;
    return above_min && below_max;
}

static bool float_in_bounds(const ob_config_key *spec, double value) {
    bool above_min = spec->min_exclusive ? value > spec->min : value >= spec->min;
    bool below_max = spec->max_exclusive ? value < spec->max : value <= spec->max;
    return above_min && below_max;
}

/* Stores up to max items in out; returns the item count, or -1 when an item is
 * malformed or out of bounds. Blanks around items are allowed, empty items not. */
static int parse_float_list(const ob_config_key *spec, const char *text, double *out, int max) {
    const char *cursor = skip_blanks(text);
    if (*cursor == '\0')
        return 0;
    int count = 0;
    for (;;) {
        char *end;
        double item;
        if (!parse_number_prefix(cursor, &end, &item) || !float_in_bounds(spec, item))
            return -1;
        if (count < max)
            out[count] = item;
        count++;
        cursor = skip_blanks(end);
        if (*cursor == '\0')
            return count;
        if (*cursor != ',')
            return -1;
        cursor = skip_blanks(cursor + 1);
    }
}

static bool is_choice(const char *choices, const char *text) {
    size_t text_length = strlen(text);
    for (const char *choice = choices;;) {
        size_t choice_length = strcspn(choice, "|");
        if (choice_length == text_length && strncmp(choice, text, text_length) == 0)
            return true;
        if (choice[choice_length] == '\0')
            return false;
        choice += choice_length + 1;
    }
}

static bool value_is_valid(const ob_config_key *spec, const char *text) {
    bool flag;
    int64_t integer;
    double number;
    switch (spec->type) {
    case OB_CFG_BOOL:
        return parse_bool(text, &flag);
    case OB_CFG_INT:
        return parse_int(text, &integer) && int_in_bounds(spec, integer);
    case OB_CFG_FLOAT:
        return parse_float(text, &number) && float_in_bounds(spec, number);
    case OB_CFG_STRING:
        return true;
    case OB_CFG_ENUM:
        return is_choice(spec->choices, text);
    case OB_CFG_FLOAT_LIST:
        return parse_float_list(spec, text, NULL, 0) >= 0;
    }
    return false;
}

/* ---- describing what a key expects, for error lines ---- */

static void describe_bound(const ob_config_key *spec, const char *relation, double bound, char *out,
                           size_t size) {
    if (spec->type == OB_CFG_INT)
        snprintf(out, size, " %s %" PRId64, relation, (int64_t)bound);
    else
        snprintf(out, size, " %s %g", relation, bound);
}

/* " >= 0 and < 1", " > 0", or "" when unbounded. */
static void describe_range(const ob_config_key *spec, char *out, size_t size) {
    char low[48] = "", high[48] = "";
    if (!isinf(spec->min))
        describe_bound(spec, spec->min_exclusive ? ">" : ">=", spec->min, low, sizeof low);
    if (!isinf(spec->max))
        describe_bound(spec, spec->max_exclusive ? "<" : "<=", spec->max, high, sizeof high);
    snprintf(out, size, "%s%s%s", low, low[0] && high[0] ? " and" : "", high);
}

/* "one of a, b, c" from "a|b|c". */
static void describe_choices(const char *choices, char *out, size_t size) {
    size_t used = (size_t)snprintf(out, size, "one of ");
    for (const char *c = choices; *c && used + 3 < size; c++) {
        if (*c == '|') {
            out[used++] = ',';
            out[used++] = ' ';
        } else {
            out[used++] = *c;
        }
    }
    out[used] = '\0';
}

static void describe_expectation(const ob_config_key *spec, char *out, size_t size) {
    char range[112];
    describe_range(spec, range, sizeof range);
    switch (spec->type) {
    case OB_CFG_BOOL:
        snprintf(out, size, "true or false");
        break;
    case OB_CFG_INT:
        snprintf(out, size, "an integer%s", range);
        break;
    case OB_CFG_FLOAT:
        snprintf(out, size, "a number%s", range);
        break;
    case OB_CFG_FLOAT_LIST:
        snprintf(out, size, "comma-separated numbers%s", range);
        break;
    case OB_CFG_ENUM:
        describe_choices(spec->choices, out, size);
        break;
    case OB_CFG_STRING:
        snprintf(out, size, "any text");
        break;
    }
}

/* ---- lifetime ---- */

static ob_config *allocate_config(void) {
    int count;
    ob_config_keys(&count);
    ob_config *cfg = calloc(1, sizeof *cfg + (size_t)count * sizeof cfg->texts[0]);
    if (cfg)
        cfg->key_count = count;
    return cfg;
}

ob_config *ob_config_new(void) {
    return allocate_config();
}

void ob_config_free(ob_config *cfg) {
    if (!cfg)
        return;
    for (int i = 0; i < cfg->key_count; i++)
        free(cfg->texts[i]);
    free(cfg);
}

ob_config *ob_config_clone(const ob_config *cfg) {
    ob_config *clone = allocate_config();
    if (!clone)
        return NULL;
    for (int i = 0; i < cfg->key_count; i++) {
        if (cfg->texts[i] && !(clone->texts[i] = copy_text(cfg->texts[i]))) {
            ob_config_free(clone);
            return NULL;
        }
    }
    return clone;
}

/* ---- setting ---- */

int ob_config_set(ob_config *cfg, const char *key, const char *value, char *err, size_t err_len) {
    char shown[SHOWN_MAX];
    int index = find_key(key);
    if (index < 0) {
        show_text(key, shown);
        return ob_fail(err, err_len, "unknown config key \"%s\"", shown);
    }
    const ob_config_key *spec = &ob_config_keys(NULL)[index];
    if (!value_is_valid(spec, value)) {
        char expected[256];
        describe_expectation(spec, expected, sizeof expected);
        show_text(value, shown);
        return ob_fail(err, err_len, "%s: expected %s, got \"%s\"", spec->key, expected, shown);
    }
    char *copy = copy_text(value);
    if (!copy)
        return FAIL_WITH(1, err, err_len, "out of memory while setting %s", spec->key);
    free(cfg->texts[index]);
    cfg->texts[index] = copy;
    return 0;
}

int ob_config_set_assignment(ob_config *cfg, const char *assignment, char *err, size_t err_len) {
    if (!strchr(assignment, '=')) {
        char shown[SHOWN_MAX];
        show_text(assignment, shown);
        return ob_fail(err, err_len, "expected section.key=value, got \"%s\"", shown);
    }
    char *copy = copy_text(assignment);
    if (!copy)
        return FAIL_WITH(1, err, err_len, "out of memory while parsing --set %s", assignment);
    char *equals = strchr(copy, '=');
    *equals = '\0';
    int code = ob_config_set(cfg, ob_ini_trim(copy), ob_ini_trim(equals + 1), err, err_len);
    free(copy);
    return code;
}

/* ---- INI quoting: what plain INI lines cannot carry ---- */

/* libinih drops blanks at both ends, ends the value at " ;", and the reader
 * would unquote a leading quote; control characters would break the line. */
static bool needs_quotes(const char *text) {
    size_t length = strlen(text);
    if (length == 0)
        return false;
    if (is_blank(text[0]) || is_blank(text[length - 1]) || text[0] == '"')
        return true;
    for (const char *c = text; *c; c++)
        if (*c == ';' || is_control(*c))
            return true;
    return false;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Writes value, unquoted and unescaped when it is quoted, to out (room for
 * strlen(value) + 1 bytes); false on a malformed quoted value. */
static bool unquote_ini_value(const char *value, char *out) {
    if (value[0] != '"') {
        strcpy(out, value);
        return true;
    }
    for (const char *c = value + 1;; c++) {
        if (*c == '\0')
            return false;
        if (*c == '"') {
            *out = '\0';
            return c[1] == '\0';
        }
        if (*c != '\\') {
            *out++ = *c;
        } else if (c[1] == '\\' || c[1] == '"' || c[1] == ';') {
            *out++ = *++c;
        } else if (c[1] == 'x' && hex_digit(c[2]) >= 0 && hex_digit(c[3]) >= 0
                   && hex_digit(c[2]) * 16 + hex_digit(c[3]) != 0) {
            *out++ = (char)(hex_digit(c[2]) * 16 + hex_digit(c[3]));
            c += 3;
        } else {
            return false;
        }
    }
}

/* ---- loading INI files and texts ---- */

typedef struct {
    ob_ini_parser parser;  /* the source and the line libinih is working on */
    ob_config *target;     /* a clone of the caller's config: applied only if the whole source is good */
    int error_line;        /* 0, or the line of the first rejected key or value */
    int error_code;
    char error[MESSAGE_MAX];
} ini_load;

static int record_ini_error(ini_load *load, int code, const char *message) {
    load->error_line = load->parser.line;
    load->error_code = code;
    snprintf(load->error, sizeof load->error, "%s", message);
    return 0;
}

static int apply_ini_pair(void *user, const char *section, const char *name, const char *value) {
    ini_load *load = user;
    char message[MESSAGE_MAX];
    char shown[SHOWN_MAX];
    if (section[0] == '\0') {
        show_text(name, shown);
        snprintf(message, sizeof message, "key \"%s\" is outside any [section]", shown);
        return record_ini_error(load, 2, message);
    }
    char key[128];
    snprintf(key, sizeof key, "%s.%s", section, name);
    char *text = malloc(strlen(value) + 1);
    if (!text)
        return record_ini_error(load, 1, "out of memory");
    if (!unquote_ini_value(value, text)) {
        show_text(value, shown);
        snprintf(message, sizeof message, "%s: malformed quoted value (escapes are \\\\ \\\" \\; \\xHH), "
                 "got \"%s\"", key, shown);
        free(text);
        return record_ini_error(load, 2, message);
    }
    int code = ob_config_set(load->target, key, text, message, sizeof message);
    free(text);
    return code == 0 ? 1 : record_ini_error(load, code, message);
}

/* Turns the parse outcome into the caller's error line; the earliest problem wins. */
static int report_ini_outcome(const ini_load *load, int parse_result, const char *source_name, char *err,
                              size_t err_len) {
    char shown[SHOWN_MAX];
    show_text(source_name, shown);
    if (load->parser.read_errno)
        return ob_fail(err, err_len, "cannot read config file \"%s\": %s", shown,
                      strerror(load->parser.read_errno));
    if (parse_result > 0 && parse_result == load->error_line)
        return FAIL_WITH(load->error_code, err, err_len, "%s:%d: %s", shown, parse_result, load->error);
    char message[MESSAGE_MAX];
    int code = ob_ini_parse_failure(&load->parser, parse_result, shown, message, sizeof message);
    return code ? FAIL_WITH(code, err, err_len, "%s", message) : 0;
}

static void swap_contents(ob_config *a, ob_config *b) {
    for (int i = 0; i < a->key_count; i++) {
        char *text = a->texts[i];
        a->texts[i] = b->texts[i];
        b->texts[i] = text;
    }
}

/* Parses the source set up in load into a clone of cfg, which replaces cfg's
 * contents only when the whole source was good. */
static int load_ini_source(ob_config *cfg, ini_load *load, const char *source_name, char *err,
                           size_t err_len) {
    load->target = ob_config_clone(cfg);
    if (!load->target)
        return FAIL_WITH(1, err, err_len, "out of memory while loading a config");
    load->parser.on_pair = apply_ini_pair;
    load->parser.user = load;
    int parse_result = ob_ini_parse(&load->parser);
    int code = report_ini_outcome(load, parse_result, source_name, err, err_len);
    if (code == 0)
        swap_contents(cfg, load->target);
    ob_config_free(load->target);
    return code;
}

int ob_config_load_ini(ob_config *cfg, const char *path, char *err, size_t err_len) {
    ini_load load = {.parser.file = fopen(path, "r")};
    if (!load.parser.file) {
        char shown[SHOWN_MAX];
        show_text(path, shown);
        return ob_fail(err, err_len, "cannot read config file \"%s\": %s", shown, strerror(errno));
    }
    int code = load_ini_source(cfg, &load, path, err, err_len);
    fclose(load.parser.file);
    return code;
}

int ob_config_load_ini_text(ob_config *cfg, const char *text, const char *source_name, char *err,
                            size_t err_len) {
    ini_load load = {.parser.text = text};
    return load_ini_source(cfg, &load, source_name, err, err_len);
}

/* ---- getters ---- */

bool ob_config_get_bool(const ob_config *cfg, const char *key) {
    bool value = false;
    parse_bool(text_at(cfg, getter_index(key, OB_CFG_BOOL)), &value);
    return value;
}

int64_t ob_config_get_int(const ob_config *cfg, const char *key) {
    int64_t value = 0;
    parse_int(text_at(cfg, getter_index(key, OB_CFG_INT)), &value);
    return value;
}

double ob_config_get_float(const ob_config *cfg, const char *key) {
    double value = 0;
    parse_float(text_at(cfg, getter_index(key, OB_CFG_FLOAT)), &value);
    return value;
}

const char *ob_config_get_str(const ob_config *cfg, const char *key) {
    return text_at(cfg, getter_index(key, ANY_TYPE));
}

int ob_config_get_float_list(const ob_config *cfg, const char *key, double *out, int max) {
    int index = getter_index(key, OB_CFG_FLOAT_LIST);
    return parse_float_list(&ob_config_keys(NULL)[index], text_at(cfg, index), out, max);
}

bool ob_config_was_set(const ob_config *cfg, const char *key) {
    return cfg->texts[getter_index(key, ANY_TYPE)] != NULL;
}

/* ---- writing INI ---- */

static void append_quoted(ob_text *out, const char *text) {
    ob_text_append(out, "\"", 1);
    for (const char *c = text; *c; c++) {
        if (is_control(*c))
            ob_text_printf(out, "\\x%02X", (unsigned char)*c);
        else if (*c == '\\' || *c == '"' || *c == ';')
            ob_text_printf(out, "\\%c", *c);
        else
            ob_text_append(out, c, 1);
    }
    ob_text_append(out, "\"", 1);
}

char *ob_config_to_ini(const ob_config *cfg) {
    int count;
    const ob_config_key *keys = ob_config_keys(&count);
    ob_text out = {0};
    const char *section = "";
    size_t section_length = 0;
    for (int i = 0; i < count; i++) {
        const char *name = strchr(keys[i].key, '.') + 1;
        size_t length = (size_t)(name - 1 - keys[i].key);
        if (length != section_length || strncmp(keys[i].key, section, length) != 0) {
            section = keys[i].key;
            section_length = length;
            ob_text_printf(&out, "[%.*s]\n", (int)section_length, section);
        }
        ob_text_printf(&out, "%s = ", name);
        if (needs_quotes(text_at(cfg, i)))
            append_quoted(&out, text_at(cfg, i));
        else
            ob_text_printf(&out, "%s", text_at(cfg, i));
        ob_text_append(&out, "\n", 1);
    }
    if (out.failed) {
        ob_text_free(&out);
        return NULL;
    }
    return out.data;
}
