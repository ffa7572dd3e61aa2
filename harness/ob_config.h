/* ob_config: the validated key/value configuration of a run (DESIGN.md section 5).
 *
 * Keys are "section.key" (sgd.lr, run.seed). Every known key is listed once,
 * with type, default, bounds and help, in the const table returned by
 * ob_config_keys(); the store itself is generic over that table. The same key
 * can be given three ways that say the same thing:
 *   ob_config_set(cfg, "sgd.lr", "0.1")          API
 *   --set sgd.lr=0.1                             ob_config_set_assignment
 *   [sgd]  lr = 0.1                              ob_config_load_ini
 *
 * A config holds each key's text exactly as it was set (or the table's
 * default), so ob_config_get_str() and ob_config_to_ini() reproduce what the
 * user wrote, and typed getters parse that already-validated text.
 *
 * Value syntax per type:
 *   BOOL        true/false, 1/0, yes/no, on/off (any letter case)
 *   INT         decimal int64, optional sign, nothing else around it
 *   FLOAT       a finite number as strtod reads it (C locale), nothing else
 *               around it; nan, inf and overflowing values are rejected
 *   STRING      anything, including the empty string
 *   ENUM        exactly one of the key's choices
 *   FLOAT_LIST  comma-separated FLOATs, blanks around items allowed; the empty
 *               string is the empty list; every item obeys the key's bounds
 * Numeric bounds come from the table: an infinite bound is no bound; INT
 * bounds are whole numbers and inclusive (the exclusive flags are for floats).
 *
 * Errors: functions that take err/err_len return 0 on success, 2 on bad input
 * (DESIGN.md section 10's exit code) and 1 when memory ran out; on failure
 * they write one line, without a trailing newline, to err (truncated to
 * err_len; err may be NULL) and leave the config unchanged.
 *
 * INI files use libinih: "[section]" then "key = value" lines, ';' or '#'
 * comment lines, and inline comments after " ;". Blanks around a value are
 * dropped. A value may be written in double quotes to carry what plain INI
 * cannot (blanks at either end, ';', control characters, a leading quote);
 * inside the quotes \\ \" \; and \xHH (two hex digits) are escapes.
 * ob_config_to_ini() quotes exactly the values that need it. libinih reads
 * lines of at most 198 characters; a longer line is reported as an error.
 *
 * No global mutable state: configs are independent, the key table is const.
 */
#ifndef OB_CONFIG_H
#define OB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ob_config ob_config;

typedef enum {
    OB_CFG_BOOL,
    OB_CFG_INT,
    OB_CFG_FLOAT,
    OB_CFG_STRING,
    OB_CFG_ENUM,
    OB_CFG_FLOAT_LIST
} ob_config_type;

typedef struct {
    const char *key;           /* "section.key" */
    ob_config_type type;
    const char *default_value; /* text, valid for the key's type and bounds */
    double min, max;           /* INT, FLOAT, FLOAT_LIST items; +-INFINITY = unbounded */
    bool min_exclusive, max_exclusive; /* FLOAT and FLOAT_LIST only */
    const char *choices;       /* ENUM only: "a|b|c" */
    const char *help;          /* one line: meaning and unit */
} ob_config_key;

/* The key table, in its fixed order (sections are contiguous). count may be NULL. */
const ob_config_key *ob_config_keys(int *count);

/* A config with every key at its default; NULL when out of memory. */
ob_config *ob_config_new(void);
void ob_config_free(ob_config *cfg);
/* A deep copy, including which keys were set; NULL when out of memory. */
ob_config *ob_config_clone(const ob_config *cfg);

/* Validates value for key and stores it. Error lines look like
 *   unknown config key "sgd.lrr"
 *   sgd.lr: expected a number > 0 and <= 1000, got "-1"
 *   run.batch_size: expected an integer >= 1 and <= 1048576, got "0"
 *   run.workload: expected one of resnet50, got "vgg"
 *   sgd.nesterov: expected true or false, got "maybe" */
int ob_config_set(ob_config *cfg, const char *key, const char *value, char *err, size_t err_len);
/* The --set form "section.key=value": split at the first '=', blanks around
 * key and value dropped (as in INI), no quote processing (the shell did it). */
int ob_config_set_assignment(ob_config *cfg, const char *assignment, char *err, size_t err_len);
/* Applies every key in an INI file, all or nothing. Error lines name the file:
 *   cannot read config file "x.ini": No such file or directory
 *   x.ini:7: sgd.lr: expected a number > 0 and <= 1000, got "-1"
 *   x.ini:3: syntax error: expected [section] or key = value */
int ob_config_load_ini(ob_config *cfg, const char *path, char *err, size_t err_len);
/* The same for INI text in memory (a config stored in a checkpoint or result
 * file); source_name stands for the file name in error lines. */
int ob_config_load_ini_text(ob_config *cfg, const char *text, const char *source_name, char *err,
                            size_t err_len);

/* Typed getters. An unknown key, or a key of another type, is a programming
 * error: it prints the key to stderr and aborts (also under NDEBUG). */
bool ob_config_get_bool(const ob_config *cfg, const char *key);
int64_t ob_config_get_int(const ob_config *cfg, const char *key);
double ob_config_get_float(const ob_config *cfg, const char *key);
/* Any key's text as set (an ENUM's choice, a number as written); owned by cfg,
 * valid until the key is set again or cfg is freed. */
const char *ob_config_get_str(const ob_config *cfg, const char *key);
/* Writes up to max items to out and returns the number of items in the list,
 * which may exceed max (the caller can then retry with a bigger array). */
int ob_config_get_float_list(const ob_config *cfg, const char *key, double *out, int max);
/* True when the key was explicitly set (by any of the three ways), even to its
 * default text; false while it still holds the table default. Presets use it to
 * fill in only what the user left alone. Unknown keys abort as in the getters. */
bool ob_config_was_set(const ob_config *cfg, const char *key);

/* The whole resolved config as INI text: every key, sections in table order,
 * "[section]\nkey = value\n"; ob_config_load_ini() of that text gives an equal
 * config (same text for every key). malloc'd, caller frees; NULL when out of memory. */
char *ob_config_to_ini(const ob_config *cfg);

#endif
