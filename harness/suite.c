/* Suite files: reading (libinih), checking and expanding into runs. The
 * syntax and the expansion order are documented in ob_suite.h. */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include "harness/ob_suite.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness/ob_config.h"
#include "harness/ob_ini.h"
#include "harness/ob_text.h"

#define KEY_MAX 64
#define MAX_ITEMS (OB_SUITE_VALUE_MAX / 2) /* "a,b,c..." holds at most this many items */
#define MAX_RUNS_PER_SECTION 100000
#define MESSAGE_MAX 512

/* One `key = value` line; the value is split into items in place. */
typedef struct {
    char key[KEY_MAX];
    char value[OB_SUITE_VALUE_MAX];
    char *items[MAX_ITEMS];
    int n_items;
    int line;
} suite_entry;

typedef struct {
    char name[OB_SUITE_NAME_MAX]; /* the run's NAME; "" for [suite] */
    bool is_suite;
    int line;
    suite_entry *entries;
    int n_entries;
} suite_section;

/* Everything a load works on; the first failure is kept in err and status. */
typedef struct {
    const char *path;
    ob_ini_parser parser; /* the file, and the line being read */
    suite_section *sections;
    int n_sections;
    ob_config *scratch; /* validates values the way a run will */
    char *err;
    size_t err_len;
    int status;
} suite_loader;

/* Grid keys in expansion order (ranks and seeds vary fastest): the flag of
 * `optbench run` each becomes and the config key that validates its items. */
typedef struct {
    const char *name, *flag, *config_key;
} grid_key;

static const grid_key grid_keys[] = {
    {"workload", "--workload", "run.workload"},
    {"preset", "--preset", "run.preset"},
    {"optimizer", "--optimizer", "run.optimizer"},
    {"precond", "--precond", "run.precond"},
    {"precision", "--precision", "run.precision"},
    {"loss_scale", "--loss-scale", "run.loss_scale"},
    {"ranks", NULL, NULL},
    {"seeds", "--seed", "run.seed"},
};
enum { GRID_RANKS = 6, GRID_SEEDS = 7, N_GRID = 8 };

/* run.* keys the suite sets itself, besides the grid's. */
static const char *const suite_owned_keys[] = {"run.out", "run.force", "run.threads", "run.resume"};

static int fail(suite_loader *l, int line, int code, const char *format, ...) __attribute__((format(printf, 4, 5)));

static int fail(suite_loader *l, int line, int code, const char *format, ...) {
    if (l->status) return l->status;
    char message[MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (line > 0)
        snprintf(l->err, l->err_len, "%s:%d: %s", l->path, line, message);
    else
        snprintf(l->err, l->err_len, "%s: %s", l->path, message);
    l->status = code;
    return code;
}

/* Names become directory and job names. */
static bool is_valid_name(const char *name) {
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
    size_t length = strlen(name);
    return length > 0 && length < OB_SUITE_NAME_MAX && name[0] != '.' && strspn(name, allowed) == length;
}

/* ---- reading ------------------------------------------------------------- */

static const suite_section *find_run_section(const suite_loader *l, const char *name) {
    for (int i = 0; i < l->n_sections; i++)
        if (!l->sections[i].is_suite && strcmp(l->sections[i].name, name) == 0) return &l->sections[i];
    return NULL;
}

static const suite_section *find_suite_section(const suite_loader *l) {
    for (int i = 0; i < l->n_sections; i++)
        if (l->sections[i].is_suite) return &l->sections[i];
    return NULL;
}

static int add_section(suite_loader *l, bool is_suite, const char *name) {
    suite_section *grown = realloc(l->sections, (size_t)(l->n_sections + 1) * sizeof *grown);
    if (!grown) return fail(l, l->parser.line, 1, "out of memory");
    l->sections = grown;
    suite_section *s = &l->sections[l->n_sections++];
    *s = (suite_section){.is_suite = is_suite, .line = l->parser.line};
    snprintf(s->name, sizeof s->name, "%s", name);
    return 0;
}

/* A "[...]" line (ob_ini's section hook, so that a section without keys is
 * known too, and where each one starts). */
static int open_section(suite_loader *l, const char *text) {
    const char *close = strchr(text, ']');
    if (!close) return 0; /* libinih reports the syntax error */
    char header[OB_SUITE_VALUE_MAX];
    snprintf(header, sizeof header, "%.*s", (int)(close - text - 1), text + 1);
    char *name = ob_ini_trim(header);
    if (strcmp(name, "suite") == 0) {
        const suite_section *first = find_suite_section(l);
        if (first) return fail(l, l->parser.line, 2, "a second [suite] section (the first is at line %d)", first->line);
        return add_section(l, true, "");
    }
    if (strncmp(name, "run", 3) != 0 || (name[3] != ' ' && name[3] != '\t'))
        return fail(l, l->parser.line, 2, "expected [suite] or [run NAME], got [%s]", name);
    char *run_name = ob_ini_trim(name + 3);
    if (!is_valid_name(run_name))
        return fail(l, l->parser.line, 2,
                    "[run %s]: expected a NAME of up to %d letters, digits, _ . - (not starting with .)", run_name,
                    OB_SUITE_NAME_MAX - 1);
    const suite_section *first = find_run_section(l, run_name);
    if (first) return fail(l, l->parser.line, 2, "duplicate [run %s] (the first is at line %d)", run_name, first->line);
    return add_section(l, false, run_name);
}

/* ob_ini's section hook: nonzero to go on. */
static int on_section_line(void *user, const char *line) {
    return open_section(user, line) == 0;
}

static const suite_entry *find_entry(const suite_section *s, const char *key) {
    for (int i = 0; s && i < s->n_entries; i++)
        if (strcmp(s->entries[i].key, key) == 0) return &s->entries[i];
    return NULL;
}

/* Adds key = value to the section on_section_line opened last. */
static int keep_entry(suite_loader *l, const char *key, const char *value) {
    if (l->n_sections == 0)
        return fail(l, l->parser.line, 2, "key %s before any section: expected [suite] or [run NAME]", key);
    suite_section *s = &l->sections[l->n_sections - 1];
    const suite_entry *first = find_entry(s, key);
    if (first) return fail(l, l->parser.line, 2, "duplicate key %s (the first is at line %d)", key, first->line);
    if (strlen(key) >= KEY_MAX)
        return fail(l, l->parser.line, 2, "key %s: expected at most %d characters", key, KEY_MAX - 1);
    suite_entry *grown = realloc(s->entries, (size_t)(s->n_entries + 1) * sizeof *grown);
    if (!grown) return fail(l, l->parser.line, 1, "out of memory");
    s->entries = grown;
    suite_entry *e = &s->entries[s->n_entries++];
    *e = (suite_entry){.line = l->parser.line};
    snprintf(e->key, sizeof e->key, "%s", key);
    snprintf(e->value, sizeof e->value, "%s", value);
    return 0;
}

/* ob_ini's pair hook: nonzero to go on. */
static int on_pair(void *user, const char *section, const char *key, const char *value) {
    (void)section; /* on_section_line saw the header line and knows more: where it is */
    return keep_entry(user, key, value) == 0;
}

static int read_sections(suite_loader *l) {
    l->parser = (ob_ini_parser){.file = fopen(l->path, "r"), .on_pair = on_pair, .on_section = on_section_line,
                                .user = l};
    if (!l->parser.file) return fail(l, 0, 2, "cannot read suite file: %s", strerror(errno));
    int result = ob_ini_parse(&l->parser);
    fclose(l->parser.file);
    if (l->status) return l->status;
    if (l->parser.read_errno) return fail(l, 0, 2, "cannot read suite file: %s", strerror(l->parser.read_errno));
    char message[MESSAGE_MAX];
    int code = ob_ini_parse_failure(&l->parser, result, l->path, message, sizeof message);
    if (code) {
        snprintf(l->err, l->err_len, "%s", message);
        return l->status = code;
    }
    if (l->n_sections == (find_suite_section(l) ? 1 : 0)) return fail(l, 0, 2, "no [run NAME] section: nothing to run");
    return 0;
}

/* ---- checking ------------------------------------------------------------ */

static int grid_index(const char *key) {
    for (int g = 0; g < N_GRID; g++)
        if (strcmp(grid_keys[g].name, key) == 0) return g;
    return -1;
}

/* Splits e's value at separator into trimmed, non-empty items. */
static int split_items(suite_loader *l, suite_entry *e, char separator) {
    if (e->value[0] == '\0') return fail(l, e->line, 2, "%s: expected at least one value", e->key);
    char shown[OB_SUITE_VALUE_MAX];
    snprintf(shown, sizeof shown, "%s", e->value);
    char *item = e->value;
    for (;;) {
        char *end = strchr(item, separator);
        if (end) *end = '\0';
        char *trimmed = ob_ini_trim(item);
        if (trimmed[0] == '\0')
            return fail(l, e->line, 2, "%s: expected a list separated by '%c' without empty items, got \"%s\"", e->key,
                        separator, shown);
        e->items[e->n_items++] = trimmed;
        if (!end) return 0;
        item = end + 1;
    }
}

static int parse_count(const char *text, long min, long max, long *value) {
    char *end;
    errno = 0;
    *value = strtol(text, &end, 10);
    return end != text && *end == '\0' && errno == 0 && *value >= min && *value <= max ? 0 : 2;
}

/* Rank counts are the suite's own; the other grid keys are config keys. */
static int check_grid_item(suite_loader *l, const suite_entry *e, int g, const char *item) {
    if (g == GRID_RANKS) {
        long ranks;
        if (parse_count(item, 1, OB_SUITE_MAX_RANKS, &ranks) == 0) return 0;
        return fail(l, e->line, 2, "ranks: expected world sizes from 1 to %d, got \"%s\"", OB_SUITE_MAX_RANKS, item);
    }
    char message[MESSAGE_MAX];
    int code = ob_config_set(l->scratch, grid_keys[g].config_key, item, message, sizeof message);
    return code ? fail(l, e->line, code, "%s: %s", e->key, message) : 0;
}

static int check_grid_entry(suite_loader *l, suite_entry *e, int g) {
    int rc = split_items(l, e, ',');
    for (int i = 0; !rc && i < e->n_items; i++) rc = check_grid_item(l, e, g, e->items[i]);
    return rc;
}

static bool is_suite_owned(const char *key) {
    for (size_t i = 0; i < sizeof suite_owned_keys / sizeof suite_owned_keys[0]; i++)
        if (strcmp(key, suite_owned_keys[i]) == 0) return true;
    return false;
}

static int check_setting_entry(suite_loader *l, suite_entry *e) {
    for (int g = 0; g < N_GRID; g++)
        if (grid_keys[g].config_key && strcmp(e->key, grid_keys[g].config_key) == 0)
            return fail(l, e->line, 2, "%s: expected the grid key %s instead", e->key, grid_keys[g].name);
    if (is_suite_owned(e->key))
        return fail(l, e->line, 2, "%s: the suite sets it for every run; it cannot be a setting", e->key);
    int rc = split_items(l, e, '|');
    for (int i = 0; !rc && i < e->n_items; i++) {
        char message[MESSAGE_MAX];
        int code = ob_config_set(l->scratch, e->key, e->items[i], message, sizeof message);
        if (code) rc = fail(l, e->line, code, "%s", message);
    }
    return rc;
}

/* ---- the [suite] header -------------------------------------------------- */

typedef enum { VALUE_WORD, VALUE_TIME, VALUE_COUNT, VALUE_LAUNCHER, VALUE_FLAGS, VALUE_MODULES, VALUE_ENV } value_kind;

typedef struct {
    const char *key;
    value_kind kind;
    size_t offset; /* into ob_suite_cluster */
    long min;      /* VALUE_COUNT */
} cluster_key;

static const cluster_key cluster_keys[] = {
    {"account", VALUE_WORD, offsetof(ob_suite_cluster, account), 0},
    {"partition", VALUE_WORD, offsetof(ob_suite_cluster, partition), 0},
    {"time", VALUE_TIME, offsetof(ob_suite_cluster, time), 0},
    {"gpus_per_node", VALUE_COUNT, offsetof(ob_suite_cluster, gpus_per_node), 0},
    {"ranks_per_node", VALUE_COUNT, offsetof(ob_suite_cluster, ranks_per_node), 1},
    {"cpus_per_task", VALUE_COUNT, offsetof(ob_suite_cluster, cpus_per_task), 1},
    {"launcher", VALUE_LAUNCHER, offsetof(ob_suite_cluster, launcher), 0},
    {"launcher_flags", VALUE_FLAGS, offsetof(ob_suite_cluster, launcher_flags), 0},
    {"modules", VALUE_MODULES, offsetof(ob_suite_cluster, modules), 0},
    {"env", VALUE_ENV, offsetof(ob_suite_cluster, env), 0},
};

static const cluster_key *find_cluster_key(const char *key) {
    for (size_t i = 0; i < sizeof cluster_keys / sizeof cluster_keys[0]; i++)
        if (strcmp(cluster_keys[i].key, key) == 0) return &cluster_keys[i];
    return NULL;
}

static bool only_chars(const char *text, const char *allowed) {
    return text[0] && strspn(text, allowed) == strlen(text);
}

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"

static bool has_control_chars(const char *text) {
    for (const char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) return true;
    return false;
}

/* Every NAME=VALUE of a comma-separated env list has a shell variable name. */
static bool is_env_list(const char *text) {
    char copy[OB_SUITE_VALUE_MAX];
    snprintf(copy, sizeof copy, "%s", text);
    char *save = NULL;
    int n = 0;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save), n++) {
        item = ob_ini_trim(item);
        size_t name_length = strcspn(item, "=");
        if (item[name_length] != '=' || name_length == 0 || (item[0] >= '0' && item[0] <= '9') ||
            strspn(item, NAME_CHARS) != name_length)
            return false;
    }
    return n > 0;
}

/* Why value is not valid for k, or NULL when it is. */
static const char *cluster_value_problem(const cluster_key *k, const char *value) {
    switch (k->kind) {
    case VALUE_WORD:
        return only_chars(value, NAME_CHARS ".,-") ? NULL : "a name of letters, digits, _ . , -";
    case VALUE_TIME:
        return only_chars(value, "0123456789:-") ? NULL : "a Slurm time such as 90, 02:00:00 or 1-12:00:00";
    case VALUE_COUNT: {
        long count;
        return parse_count(value, k->min, 1 << 20, &count) ? (k->min ? "a whole number >= 1" : "a whole number >= 0")
                                                           : NULL;
    }
    case VALUE_LAUNCHER:
        return strcmp(value, "srun") == 0 || strcmp(value, "mpirun") == 0 ? NULL : "srun or mpirun";
    case VALUE_FLAGS:
        return has_control_chars(value) ? "launcher words without control characters" : NULL;
    case VALUE_MODULES:
        return only_chars(value, NAME_CHARS "./+-, ") ? NULL : "comma-separated module names";
    case VALUE_ENV:
        return is_env_list(value) ? NULL : "comma-separated NAME=VALUE";
    }
    return "a known kind of value";
}

static void store_cluster_value(ob_suite_cluster *cluster, const cluster_key *k, const char *value) {
    char *field = (char *)cluster + k->offset;
    if (k->kind == VALUE_COUNT)
        *(int *)field = atoi(value);
    else if (k->kind == VALUE_LAUNCHER)
        *(ob_suite_launcher *)field = strcmp(value, "mpirun") == 0 ? OB_SUITE_MPIRUN : OB_SUITE_SRUN;
    else
        snprintf(field, OB_SUITE_VALUE_MAX, "%s", value);
}

/* 0, or 2 with "key: expected ..., got ..." in message. */
static int set_cluster_value(ob_suite_cluster *cluster, const char *key, const char *value, char *message,
                             size_t message_len) {
    const cluster_key *k = find_cluster_key(key);
    const char *problem = k ? cluster_value_problem(k, value) : "a cluster key";
    if (problem || strlen(value) >= OB_SUITE_VALUE_MAX) {
        snprintf(message, message_len, "%s: expected %s, got \"%s\"", key, problem ? problem : "a shorter value",
                 value);
        return 2;
    }
    store_cluster_value(cluster, k, value);
    return 0;
}

int ob_suite_set_cluster(ob_suite *suite, const char *key, const char *value, char *err, size_t err_len) {
    return set_cluster_value(&suite->cluster, key, value, err, err_len);
}

static int set_header_entry(suite_loader *l, ob_suite *suite, const suite_entry *e) {
    char message[MESSAGE_MAX];
    if (strcmp(e->key, "name") == 0) {
        if (!is_valid_name(e->value))
            return fail(l, e->line, 2,
                        "name: expected up to %d letters, digits, _ . - (not starting with .), got \"%s\"",
                        OB_SUITE_NAME_MAX - 1, e->value);
        snprintf(suite->name, sizeof suite->name, "%s", e->value);
        return 0;
    }
    if (strcmp(e->key, "out_dir") == 0) {
        if (e->value[0] == '\0') return fail(l, e->line, 2, "out_dir: expected a directory");
        snprintf(suite->out_dir, sizeof suite->out_dir, "%s", e->value);
        return 0;
    }
    if (strcmp(e->key, "threads") == 0) {
        int code = ob_config_set(l->scratch, "run.threads", e->value, message, sizeof message);
        if (code) return fail(l, e->line, code, "threads: %s", message);
        suite->threads = atoi(e->value);
        return 0;
    }
    if (find_cluster_key(e->key)) {
        int code = set_cluster_value(&suite->cluster, e->key, e->value, message, sizeof message);
        return code ? fail(l, e->line, code, "%s", message) : 0;
    }
    return fail(l, e->line, 2,
                "unknown key %s: expected name, out_dir, threads, a cluster key (account, partition, time, "
                "gpus_per_node, ranks_per_node, cpus_per_task, launcher, launcher_flags, modules, env), a grid "
                "key or a config setting section.key",
                e->key);
}

static int check_entry(suite_loader *l, ob_suite *suite, const suite_section *s, suite_entry *e) {
    int g = grid_index(e->key);
    if (g >= 0) return check_grid_entry(l, e, g);
    if (strchr(e->key, '.')) return check_setting_entry(l, e);
    if (s->is_suite) return set_header_entry(l, suite, e);
    return fail(l, e->line, 2,
                "unknown key %s in [run %s]: expected a grid key (workload, preset, optimizer, precond, precision, "
                "loss_scale, seeds, ranks) or a config setting section.key%s",
                e->key, s->name,
                strcmp(e->key, "name") == 0 || find_cluster_key(e->key) ? " (this one belongs in [suite])" : "");
}

static int check_sections(suite_loader *l, ob_suite *suite) {
    for (int i = 0; i < l->n_sections; i++)
        for (int j = 0; j < l->sections[i].n_entries; j++)
            if (check_entry(l, suite, &l->sections[i], &l->sections[i].entries[j])) return l->status;
    return 0;
}

/* ---- expansion ----------------------------------------------------------- */

/* One axis of a section's grid: a grid key or a setting with its items. */
typedef struct {
    const suite_entry *entry;
    int grid; /* grid key index; -1 for a setting */
} dimension;

/* The section's axes in expansion order, ending with ranks and seeds; suite
 * defaults fill what it leaves out. */
static int collect_dimensions(const suite_section *run, const suite_section *suite_defaults, const suite_entry *one,
                              dimension *dims) {
    int n = 0;
    for (int g = 0; g < GRID_RANKS; g++) {
        const suite_entry *e = find_entry(run, grid_keys[g].name);
        if (!e) e = find_entry(suite_defaults, grid_keys[g].name);
        if (e) dims[n++] = (dimension){e, g};
    }
    for (int i = 0; suite_defaults && i < suite_defaults->n_entries; i++) {
        const suite_entry *e = &suite_defaults->entries[i];
        if (strchr(e->key, '.') && !find_entry(run, e->key)) dims[n++] = (dimension){e, -1};
    }
    for (int i = 0; i < run->n_entries; i++)
        if (strchr(run->entries[i].key, '.')) dims[n++] = (dimension){&run->entries[i], -1};
    for (int g = GRID_RANKS; g < N_GRID; g++) {
        const suite_entry *e = find_entry(run, grid_keys[g].name);
        if (!e) e = find_entry(suite_defaults, grid_keys[g].name);
        dims[n++] = (dimension){e ? e : one, g};
    }
    return n;
}

/* One varying value's part of an id; a setting's starts with the key's last
 * part (damping0.003 for kfac.damping = 0.003 | ...). */
static void append_id_segment(ob_text *id, const dimension *d, const char *value) {
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+_-";
    if (id->length) ob_text_append(id, "-", 1);
    if (d->grid < 0) {
        const char *last = strrchr(d->entry->key, '.') + 1;
        ob_text_append(id, last, strlen(last));
    }
    for (const char *p = value; *p; p++) ob_text_append(id, strchr(allowed, *p) ? p : "_", 1);
}

static int push_arg(ob_suite_run *run, const char *arg) {
    char **grown = realloc(run->args, (size_t)(run->n_args + 1) * sizeof *grown);
    if (!grown) return 1;
    run->args = grown;
    run->args[run->n_args] = strdup(arg);
    return run->args[run->n_args++] ? 0 : 1;
}

/* Grid flags first, then the settings: the order a person would type them. */
static int fill_args(ob_suite_run *run, const dimension *dims, int n_dims, const int *choice) {
    int rc = 0;
    for (int d = 0; d < n_dims && !rc; d++) {
        const char *value = dims[d].entry->items[choice[d]];
        if (dims[d].grid == GRID_RANKS)
            run->ranks = atoi(value);
        else if (dims[d].grid >= 0)
            rc = push_arg(run, grid_keys[dims[d].grid].flag) || push_arg(run, value);
    }
    for (int d = 0; d < n_dims && !rc; d++) {
        if (dims[d].grid >= 0) continue;
        ob_text assignment = {0};
        ob_text_printf(&assignment, "%s=%s", dims[d].entry->key, dims[d].entry->items[choice[d]]);
        rc = assignment.failed || push_arg(run, "--set") || push_arg(run, assignment.data);
        ob_text_free(&assignment);
    }
    return rc;
}

static void free_run(ob_suite_run *run) {
    for (int i = 0; i < run->n_args; i++) free(run->args[i]);
    free(run->args);
}

static int add_run(suite_loader *l, ob_suite *suite, const suite_section *s, const dimension *dims, int n_dims,
                   const int *choice) {
    ob_suite_run *grown = realloc(suite->runs, (size_t)(suite->n_runs + 1) * sizeof *grown);
    if (!grown) return fail(l, s->line, 1, "out of memory");
    suite->runs = grown;
    ob_suite_run *run = &suite->runs[suite->n_runs++];
    *run = (ob_suite_run){0};
    snprintf(run->run_name, sizeof run->run_name, "%s", s->name);
    ob_text id = {0};
    for (int d = 0; d < n_dims; d++)
        if (dims[d].grid != GRID_RANKS && dims[d].grid != GRID_SEEDS && dims[d].entry->n_items > 1)
            append_id_segment(&id, &dims[d], dims[d].entry->items[choice[d]]);
    const char *seed = dims[n_dims - 1].entry->items[choice[n_dims - 1]]; /* see collect_dimensions */
    const char *ranks = dims[n_dims - 2].entry->items[choice[n_dims - 2]];
    ob_text_printf(&id, "%ss%s-r%s", id.length ? "-" : "", seed, ranks);
    int rc = id.failed || fill_args(run, dims, n_dims, choice) ? fail(l, s->line, 1, "out of memory") : 0;
    if (!rc && snprintf(run->id, sizeof run->id, "%s", id.data) >= (int)sizeof run->id)
        rc = fail(l, s->line, 2, "[run %s]: the id %s is too long", s->name, id.data);
    if (!rc && snprintf(run->out_path, sizeof run->out_path, "%s/%s/%s.h5", suite->out_dir, s->name, run->id) >=
                   (int)sizeof run->out_path)
        rc = fail(l, s->line, 2, "[run %s]: the result path of %s is longer than %d characters", s->name, run->id,
                  OB_SUITE_PATH_MAX - 1);
    ob_text_free(&id);
    return rc;
}

static int compare_ids(const void *a, const void *b) {
    return strcmp((*(const ob_suite_run *const *)a)->id, (*(const ob_suite_run *const *)b)->id);
}

/* Items that differ only in characters ids replace, or a repeated item. */
static int check_unique_ids(suite_loader *l, const suite_section *s, ob_suite_run *runs, int n) {
    const ob_suite_run **sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted) return fail(l, s->line, 1, "out of memory");
    for (int i = 0; i < n; i++) sorted[i] = &runs[i];
    qsort(sorted, (size_t)n, sizeof *sorted, compare_ids);
    int rc = 0;
    for (int i = 1; i < n && !rc; i++)
        if (strcmp(sorted[i - 1]->id, sorted[i]->id) == 0)
            rc = fail(l, s->line, 2,
                      "[run %s] expands to the id %s twice: a list repeats an item, or two items "
                      "differ only in characters an id replaces by _",
                      s->name, sorted[i]->id);
    free(sorted);
    return rc;
}

static long grid_size(const dimension *dims, int n_dims) {
    long total = 1;
    for (int d = 0; d < n_dims && total <= MAX_RUNS_PER_SECTION; d++) total *= dims[d].entry->n_items;
    return total;
}

/* Counts choice up like an odometer whose last wheel turns fastest; false after the last combination. */
static bool next_choice(const dimension *dims, int n_dims, int *choice) {
    for (int d = n_dims - 1; d >= 0; d--) {
        if (++choice[d] < dims[d].entry->n_items) return true;
        choice[d] = 0;
    }
    return false;
}

static int expand_section(suite_loader *l, ob_suite *suite, const suite_section *s) {
    suite_entry one = {.n_items = 1, .value = "1"};
    one.items[0] = one.value;
    const suite_section *defaults = find_suite_section(l);
    int capacity = N_GRID + s->n_entries + (defaults ? defaults->n_entries : 0);
    dimension *dims = malloc((size_t)capacity * sizeof *dims);
    int *choice = calloc((size_t)capacity, sizeof *choice);
    int rc = dims && choice ? 0 : fail(l, s->line, 1, "out of memory");
    int n_dims = rc ? 0 : collect_dimensions(s, defaults, &one, dims);
    if (!rc && grid_size(dims, n_dims) > MAX_RUNS_PER_SECTION)
        rc = fail(l, s->line, 2, "[run %s] expands to more than %d runs", s->name, MAX_RUNS_PER_SECTION);
    int first = suite->n_runs;
    for (bool more = !rc; more && !rc; more = next_choice(dims, n_dims, choice))
        rc = add_run(l, suite, s, dims, n_dims, choice);
    if (!rc) rc = check_unique_ids(l, s, suite->runs + first, suite->n_runs - first);
    free(dims);
    free(choice);
    return rc;
}

/* ---- load ---------------------------------------------------------------- */

/* The file name without directory and .ini. */
static void default_name(const char *path, char *name, size_t name_len) {
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t length = strlen(base);
    if (length > 4 && strcmp(base + length - 4, ".ini") == 0) length -= 4;
    snprintf(name, name_len, "%.*s", (int)length, base);
}

static int fill_defaults(suite_loader *l, ob_suite *suite) {
    if (!suite->name[0]) {
        default_name(l->path, suite->name, sizeof suite->name);
        if (!is_valid_name(suite->name))
            return fail(l, 0, 2, "the file name does not make a suite name: set name = in [suite]");
    }
    if (!suite->out_dir[0]) snprintf(suite->out_dir, sizeof suite->out_dir, "runs/%s", suite->name);
    return 0;
}

static void free_sections(suite_loader *l) {
    for (int i = 0; i < l->n_sections; i++) free(l->sections[i].entries);
    free(l->sections);
}

int ob_suite_load(const char *path, ob_suite **out, char *err, size_t err_len) {
    *out = NULL;
    suite_loader l = {.path = path, .err = err, .err_len = err_len, .scratch = ob_config_new()};
    ob_suite *suite = calloc(1, sizeof *suite);
    if (!suite || !l.scratch) fail(&l, 0, 1, "out of memory");
    if (!l.status) read_sections(&l);
    if (!l.status) check_sections(&l, suite);
    if (!l.status) fill_defaults(&l, suite);
    for (int i = 0; i < l.n_sections && !l.status; i++)
        if (!l.sections[i].is_suite) expand_section(&l, suite, &l.sections[i]);
    free_sections(&l);
    ob_config_free(l.scratch);
    if (l.status) {
        ob_suite_free(suite);
        return l.status;
    }
    *out = suite;
    return 0;
}

/* ---- selection (--only) --------------------------------------------------- */

static bool matches_any(char *const *patterns, int n_patterns, const char *name) {
    for (int i = 0; i < n_patterns; i++)
        if (fnmatch(patterns[i], name, 0) == 0) return true;
    return false;
}

/* Splits the comma-separated list in text (changed in place) into trimmed,
 * non-empty patterns; their count, or -1 when an item is empty. */
static int split_patterns(char *text, char **patterns) {
    int n = 0;
    for (char *item = text, *end;; item = end + 1) {
        end = strchr(item, ',');
        if (end) *end = '\0';
        patterns[n] = ob_ini_trim(item);
        if (patterns[n++][0] == '\0') return -1;
        if (!end) return n;
    }
}

/* The pattern that matches no run's section, or NULL. */
static const char *unmatched_pattern(const ob_suite *suite, char *const *patterns, int n_patterns) {
    for (int p = 0; p < n_patterns; p++) {
        bool found = false;
        for (int i = 0; i < suite->n_runs && !found; i++) found = fnmatch(patterns[p], suite->runs[i].run_name, 0) == 0;
        if (!found) return patterns[p];
    }
    return NULL;
}

/* "a, b, c": the sections' names in file order (a section's runs are contiguous). */
static void append_run_names(const ob_suite *suite, ob_text *names) {
    for (int i = 0; i < suite->n_runs; i++)
        if (i == 0 || strcmp(suite->runs[i].run_name, suite->runs[i - 1].run_name) != 0)
            ob_text_printf(names, "%s%s", i ? ", " : "", suite->runs[i].run_name);
}

static void keep_matching_runs(ob_suite *suite, char *const *patterns, int n_patterns) {
    int kept = 0;
    for (int i = 0; i < suite->n_runs; i++) {
        if (matches_any(patterns, n_patterns, suite->runs[i].run_name))
            suite->runs[kept++] = suite->runs[i];
        else
            free_run(&suite->runs[i]);
    }
    suite->n_runs = kept;
}

int ob_suite_select(ob_suite *suite, const char *names, char *err, size_t err_len) {
    size_t length = strlen(names);
    char *text = malloc(length + 1);
    char **patterns = malloc((length / 2 + 1) * sizeof *patterns); /* "a,b,..." has at most this many items */
    int rc = text && patterns ? 0 : 1;
    if (rc) snprintf(err, err_len, "out of memory");
    int n_patterns = rc ? 0 : split_patterns(memcpy(text, names, length + 1), patterns);
    if (!rc && n_patterns < 0) {
        snprintf(err, err_len, "--only: expected NAME[,NAME...] without empty names, got \"%s\"", names);
        rc = 2;
    }
    const char *unmatched = rc ? NULL : unmatched_pattern(suite, patterns, n_patterns);
    if (unmatched) {
        ob_text run_names = {0};
        append_run_names(suite, &run_names);
        snprintf(err, err_len, "--only %s: no [run NAME] of suite %s matches it; its runs are %s", unmatched,
                 suite->name, ob_text_str(&run_names));
        ob_text_free(&run_names);
        rc = 2;
    }
    if (!rc) keep_matching_runs(suite, patterns, n_patterns);
    free(text);
    free(patterns);
    return rc;
}

void ob_suite_free(ob_suite *suite) {
    if (!suite) return;
    for (int i = 0; i < suite->n_runs; i++) free_run(&suite->runs[i]);
    free(suite->runs);
    free(suite);
}
