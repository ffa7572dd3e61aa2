/* Unit tests of harness/config.c and the key table (harness/config_keys.c). */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fork, waitpid */

#include "harness/ob_config.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed, failed;

static void check(bool ok, const char *what, int line) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL line %d: %s\n", line, what);
    }
}

static void check_str(const char *actual, const char *expected, const char *what, int line) {
    bool ok = actual && strcmp(actual, expected) == 0;
    check(ok, what, line);
    if (!ok)
        printf("    got      \"%s\"\n    expected \"%s\"\n", actual ? actual : "(null)", expected);
}

#define CHECK(cond) check((cond), #cond, __LINE__)
#define CHECK_STR(actual, expected) check_str((actual), (expected), #actual, __LINE__)

/* ob_config_set must fail with code 2 and exactly this error line. */
static void check_rejected(ob_config *cfg, const char *key, const char *value, const char *message,
                           int line) {
    char err[512] = "";
    int code = ob_config_set(cfg, key, value, err, sizeof err);
    check(code == 2, "ob_config_set returns 2 on bad input", line);
    check_str(err, message, "error line", line);
}
#define CHECK_REJECTED(cfg, key, value, message) check_rejected((cfg), (key), (value), (message), __LINE__)

static bool set_ok(ob_config *cfg, const char *key, const char *value) {
    char err[512] = "";
    int code = ob_config_set(cfg, key, value, err, sizeof err);
    if (code != 0)
        printf("    unexpected error: %s\n", err);
    return code == 0;
}

/* Writes text to a fresh temporary file; its path goes to path (size >= 64). */
static bool write_temp_file(const char *text, char *path) {
    strcpy(path, "/tmp/test_config_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return false;
    size_t length = strlen(text);
    bool ok = write(fd, text, length) == (ssize_t)length;
    return close(fd) == 0 && ok;
}

/* Loads text as an INI file into cfg; returns the code, the error line in err. */
static int load_temp_ini(ob_config *cfg, const char *text, char *path, char *err, size_t err_len) {
    if (!write_temp_file(text, path)) {
        snprintf(err, err_len, "cannot write temporary file");
        return -1;
    }
    int code = ob_config_load_ini(cfg, path, err, err_len);
    unlink(path);
    return code;
}

static bool configs_equal(const ob_config *a, const ob_config *b) {
    int count;
    const ob_config_key *keys = ob_config_keys(&count);
    for (int i = 0; i < count; i++) {
        if (strcmp(ob_config_get_str(a, keys[i].key), ob_config_get_str(b, keys[i].key)) != 0) {
            printf("    %s differs: \"%s\" vs \"%s\"\n", keys[i].key, ob_config_get_str(a, keys[i].key),
                   ob_config_get_str(b, keys[i].key));
            return false;
        }
    }
    return true;
}

/* ---- the key table ---- */

static bool well_formed_key(const char *key) {
    const char *dot = strchr(key, '.');
    if (!dot || dot == key || dot[1] == '\0' || strchr(dot + 1, '.'))
        return false;
    for (const char *c = key; *c; c++)
        if (!(*c == '.' || *c == '_' || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')))
            return false;
    return true;
}

static bool integral_int64_bound(double bound) {
    return isinf(bound) || (bound == floor(bound) && fabs(bound) < 0x1p63);
}

/* A section that shows up again after another one would be written twice by to_ini. */
static bool section_reopened(const ob_config_key *keys, int index) {
    size_t length = (size_t)(strchr(keys[index].key, '.') - keys[index].key);
    bool same_as_previous = index > 0 && strncmp(keys[index - 1].key, keys[index].key, length + 1) == 0;
    if (same_as_previous)
        return false;
    for (int j = 0; j < index; j++)
        if (strncmp(keys[j].key, keys[index].key, length + 1) == 0)
            return true;
    return false;
}

static void test_key_table(void) {
    int count = 0;
    const ob_config_key *keys = ob_config_keys(&count);
    CHECK(count >= 46);
    CHECK(ob_config_keys(NULL) == keys);
    CHECK_STR(keys[0].key, "run.workload");
    CHECK_STR(keys[count - 1].key, "debug.kill_at_step");
    ob_config *cfg = ob_config_new();
    for (int i = 0; i < count; i++) {
        const ob_config_key *k = &keys[i];
        bool numeric = k->type == OB_CFG_INT || k->type == OB_CFG_FLOAT || k->type == OB_CFG_FLOAT_LIST;
        CHECK(well_formed_key(k->key));
        CHECK(k->help && strlen(k->help) > 10 && !strchr(k->help, '\n'));
        CHECK((k->type == OB_CFG_ENUM) == (k->choices != NULL));
        CHECK(!numeric || k->min <= k->max);
        CHECK(k->type != OB_CFG_INT || (integral_int64_bound(k->min) && integral_int64_bound(k->max)
                                        && !k->min_exclusive && !k->max_exclusive));
        CHECK(!section_reopened(keys, i));
        CHECK(set_ok(cfg, k->key, k->default_value)); /* every default passes its own validation */
        for (int j = 0; j < i; j++)
            CHECK(strcmp(keys[j].key, k->key) != 0);
    }
    ob_config_free(cfg);
}

/* ---- defaults and typed access ---- */

static void test_defaults(void) {
    ob_config *cfg = ob_config_new();
    CHECK(cfg != NULL);
    CHECK_STR(ob_config_get_str(cfg, "run.workload"), "resnet50");
    CHECK_STR(ob_config_get_str(cfg, "run.preset"), "workstation");
    CHECK_STR(ob_config_get_str(cfg, "schedule.kind"), "cosine");
    CHECK(ob_config_get_int(cfg, "run.seed") == 1);
    CHECK(ob_config_get_int(cfg, "run.batch_size") == 128);
    CHECK(ob_config_get_float(cfg, "sgd.lr") == 0.1);
    CHECK(ob_config_get_float(cfg, "model.bn_eps") == 1e-5);
    CHECK(ob_config_get_float(cfg, "schedule.final_div_factor") == 1e4);
    CHECK(ob_config_get_bool(cfg, "data.augment") == true);
    CHECK(ob_config_get_bool(cfg, "sgd.nesterov") == false);
    CHECK_STR(ob_config_get_str(cfg, "run.out"), "");
    double milestones[4];
    CHECK(ob_config_get_float_list(cfg, "schedule.milestones", milestones, 4) == 0);
    CHECK(!ob_config_was_set(cfg, "sgd.lr"));
    ob_config_free(cfg);
}

static void test_bool_values(void) {
    ob_config *cfg = ob_config_new();
    static const struct { const char *text; bool value; } cases[] = {
        {"true", true}, {"false", false}, {"1", true},    {"0", false},  {"yes", true},
        {"no", false},  {"on", true},     {"off", false}, {"TRUE", true}, {"Off", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(set_ok(cfg, "sgd.nesterov", cases[i].text));
        CHECK(ob_config_get_bool(cfg, "sgd.nesterov") == cases[i].value);
        CHECK_STR(ob_config_get_str(cfg, "sgd.nesterov"), cases[i].text);
    }
    ob_config_free(cfg);
}

static void test_int_values(void) {
    ob_config *cfg = ob_config_new();
    CHECK(set_ok(cfg, "run.batch_size", "256"));
    CHECK(ob_config_get_int(cfg, "run.batch_size") == 256);
    CHECK(set_ok(cfg, "run.batch_size", "+1"));
    CHECK(ob_config_get_int(cfg, "run.batch_size") == 1);
    CHECK(set_ok(cfg, "run.seed", "4611686018427387904")); /* 2^62, the inclusive maximum */
    CHECK(ob_config_get_int(cfg, "run.seed") == (int64_t)1 << 62);
    CHECK(set_ok(cfg, "data.train_limit", "9223372036854775807")); /* unbounded above: int64 max */
    CHECK(ob_config_get_int(cfg, "data.train_limit") == INT64_MAX);
    CHECK_STR(ob_config_get_str(cfg, "run.batch_size"), "+1");
    ob_config_free(cfg);
}

static void test_float_values(void) {
    ob_config *cfg = ob_config_new();
    CHECK(set_ok(cfg, "sgd.lr", "0.25"));
    CHECK(ob_config_get_float(cfg, "sgd.lr") == 0.25);
    CHECK(set_ok(cfg, "sgd.lr", "1e3")); /* inclusive maximum */
    CHECK(ob_config_get_float(cfg, "sgd.lr") == 1000.0);
    CHECK(set_ok(cfg, "sgd.momentum", "0")); /* inclusive minimum */
    CHECK(ob_config_get_float(cfg, "sgd.momentum") == 0.0);
    CHECK(set_ok(cfg, "run.target", "-0.5"));
    CHECK(ob_config_get_float(cfg, "run.target") == -0.5);
    CHECK(set_ok(cfg, "run.eval_every", "1e300")); /* unbounded above */
    CHECK(ob_config_get_float(cfg, "run.eval_every") == 1e300);
    ob_config_free(cfg);
}

static void test_string_and_enum_values(void) {
    ob_config *cfg = ob_config_new();
    CHECK(set_ok(cfg, "run.out", "/tmp/a run; with = signs.h5"));
    CHECK_STR(ob_config_get_str(cfg, "run.out"), "/tmp/a run; with = signs.h5");
    CHECK(set_ok(cfg, "run.out", ""));
    CHECK_STR(ob_config_get_str(cfg, "run.out"), "");
    CHECK(ob_config_was_set(cfg, "run.out"));
    CHECK(set_ok(cfg, "run.preset", "smoke"));
    CHECK_STR(ob_config_get_str(cfg, "run.preset"), "smoke");
    CHECK(set_ok(cfg, "schedule.kind", "onecycle"));
    CHECK_STR(ob_config_get_str(cfg, "schedule.kind"), "onecycle");
    ob_config_free(cfg);
}

static void test_float_list_values(void) {
    ob_config *cfg = ob_config_new();
    double items[4] = {0};
    CHECK(set_ok(cfg, "schedule.milestones", "30, 60,90.5 "));
    CHECK(ob_config_get_float_list(cfg, "schedule.milestones", items, 4) == 3);
    CHECK(items[0] == 30 && items[1] == 60 && items[2] == 90.5);
    double two[2] = {0};
    items[3] = -7;
    CHECK(set_ok(cfg, "schedule.milestones", "1,2,3,4,5"));
    CHECK(ob_config_get_float_list(cfg, "schedule.milestones", two, 2) == 5); /* the full count */
    CHECK(two[0] == 1 && two[1] == 2);
    CHECK(ob_config_get_float_list(cfg, "schedule.milestones", NULL, 0) == 5);
    CHECK(set_ok(cfg, "schedule.milestones", "7"));
    CHECK(ob_config_get_float_list(cfg, "schedule.milestones", items, 4) == 1 && items[0] == 7);
    CHECK(set_ok(cfg, "schedule.milestones", ""));
    CHECK(ob_config_get_float_list(cfg, "schedule.milestones", items, 4) == 0);
    ob_config_free(cfg);
}

/* ---- rejections ---- */

static void test_rejection_messages(void) {
    ob_config *cfg = ob_config_new();
    CHECK_REJECTED(cfg, "sgd.lrr", "0.1", "unknown config key \"sgd.lrr\"");
    CHECK_REJECTED(cfg, "lr", "0.1", "unknown config key \"lr\"");
    CHECK_REJECTED(cfg, "sgd.lr", "-1", "sgd.lr: expected a number > 0 and <= 1000, got \"-1\"");
    CHECK_REJECTED(cfg, "sgd.lr", "0", "sgd.lr: expected a number > 0 and <= 1000, got \"0\"");
    CHECK_REJECTED(cfg, "sgd.lr", "fast", "sgd.lr: expected a number > 0 and <= 1000, got \"fast\"");
    CHECK_REJECTED(cfg, "model.bn_eps", "0", "model.bn_eps: expected a number > 0, got \"0\"");
    CHECK_REJECTED(cfg, "run.eval_every", "inf", "run.eval_every: expected a number > 0, got \"inf\"");
    CHECK_REJECTED(cfg, "run.eval_every", "1e999", "run.eval_every: expected a number > 0, got \"1e999\"");
    CHECK_REJECTED(cfg, "sgd.momentum", "1", "sgd.momentum: expected a number >= 0 and < 1, got \"1\"");
    CHECK_REJECTED(cfg, "run.workload", "vgg", "run.workload: expected one of resnet50, bert, got \"vgg\"");
    CHECK_REJECTED(cfg, "run.preset", "work",
                   "run.preset: expected one of full, workstation, smoke, got \"work\"");
    CHECK_REJECTED(cfg, "run.preset", "Smoke",
                   "run.preset: expected one of full, workstation, smoke, got \"Smoke\"");
    CHECK_REJECTED(cfg, "run.batch_size", "0",
                   "run.batch_size: expected an integer >= 1 and <= 1048576, got \"0\"");
    CHECK_REJECTED(cfg, "run.log_every", "0", "run.log_every: expected an integer >= 1, got \"0\"");
    CHECK_REJECTED(cfg, "run.seed", "4611686018427387905",
                   "run.seed: expected an integer >= 0 and <= 4611686018427387904, "
                   "got \"4611686018427387905\"");
    CHECK_REJECTED(cfg, "sgd.nesterov", "maybe", "sgd.nesterov: expected true or false, got \"maybe\"");
    CHECK_REJECTED(cfg, "sgd.nesterov", "", "sgd.nesterov: expected true or false, got \"\"");
    CHECK_REJECTED(cfg, "schedule.milestones", "30,,60",
                   "schedule.milestones: expected comma-separated numbers >= 0 and <= 1e+06, got \"30,,60\"");
    ob_config_free(cfg);
}

static void test_rejected_numbers(void) {
    ob_config *cfg = ob_config_new();
    char err[256];
    static const char *bad_ints[] = {"", " 5", "5 ", "12abc", "1.5", "1e3", "0x10", "-",
                                     "9223372036854775808", "-9223372036854775809"};
    for (size_t i = 0; i < sizeof bad_ints / sizeof bad_ints[0]; i++)
        CHECK(ob_config_set(cfg, "data.train_limit", bad_ints[i], err, sizeof err) == 2);
    static const char *bad_floats[] = {"", " 0.1", "0.1 ", "0.1x", "nan", "NAN", "inf", "-Infinity",
                                       "1e999", ".", "1,5"};
    for (size_t i = 0; i < sizeof bad_floats / sizeof bad_floats[0]; i++)
        CHECK(ob_config_set(cfg, "run.target", bad_floats[i], err, sizeof err) == 2);
    static const char *bad_lists[] = {",", "1,", ",1", "1 2", "1;2", "nan", "1,inf", "-1", "2e6"};
    for (size_t i = 0; i < sizeof bad_lists / sizeof bad_lists[0]; i++)
        CHECK(ob_config_set(cfg, "schedule.milestones", bad_lists[i], err, sizeof err) == 2);
    CHECK(!ob_config_was_set(cfg, "data.train_limit"));
    CHECK(!ob_config_was_set(cfg, "run.target"));
    CHECK(!ob_config_was_set(cfg, "schedule.milestones"));
    ob_config_free(cfg);
}

static void test_rejection_keeps_old_value(void) {
    ob_config *cfg = ob_config_new();
    char err[256];
    CHECK(set_ok(cfg, "sgd.lr", "0.5"));
    CHECK(ob_config_set(cfg, "sgd.lr", "-3", err, sizeof err) == 2);
    CHECK(ob_config_get_float(cfg, "sgd.lr") == 0.5);
    CHECK(ob_config_set(cfg, "sgd.weight_decay", "2", err, sizeof err) == 2);
    CHECK(!ob_config_was_set(cfg, "sgd.weight_decay"));
    ob_config_free(cfg);
}

static void test_error_line_shape(void) {
    ob_config *cfg = ob_config_new();
    char err[512];
    CHECK(ob_config_set(cfg, "sgd.lr", "1\n2", err, sizeof err) == 2);
    CHECK_STR(err, "sgd.lr: expected a number > 0 and <= 1000, got \"1\\x0A2\"");
    char long_value[400];
    memset(long_value, 'x', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    CHECK(ob_config_set(cfg, "sgd.lr", long_value, err, sizeof err) == 2);
    CHECK(strlen(err) < 200 && strstr(err, "x...\"") != NULL);
    char tiny[8];
    CHECK(ob_config_set(cfg, "sgd.lrr", "1", tiny, sizeof tiny) == 2);
    CHECK_STR(tiny, "unknown");
    CHECK(ob_config_set(cfg, "sgd.lrr", "1", NULL, 0) == 2);
    ob_config_free(cfg);
}

/* ---- the --set form ---- */

static void test_assignment(void) {
    ob_config *cfg = ob_config_new();
    char err[256] = "";
    CHECK(ob_config_set_assignment(cfg, "sgd.lr=0.4", err, sizeof err) == 0);
    CHECK(ob_config_get_float(cfg, "sgd.lr") == 0.4);
    CHECK(ob_config_set_assignment(cfg, " sgd.momentum = 0.5 ", err, sizeof err) == 0);
    CHECK(ob_config_get_float(cfg, "sgd.momentum") == 0.5);
    CHECK(ob_config_set_assignment(cfg, "run.out=a=b.h5", err, sizeof err) == 0);
    CHECK_STR(ob_config_get_str(cfg, "run.out"), "a=b.h5");
    CHECK(ob_config_set_assignment(cfg, "run.out=", err, sizeof err) == 0);
    CHECK_STR(ob_config_get_str(cfg, "run.out"), "");
    CHECK(ob_config_set_assignment(cfg, "sgd.lr", err, sizeof err) == 2);
    CHECK_STR(err, "expected section.key=value, got \"sgd.lr\"");
    CHECK(ob_config_set_assignment(cfg, "sgd.lrr=1", err, sizeof err) == 2);
    CHECK_STR(err, "unknown config key \"sgd.lrr\"");
    CHECK(ob_config_set_assignment(cfg, "run.batch_size=0", err, sizeof err) == 2);
    CHECK_STR(err, "run.batch_size: expected an integer >= 1 and <= 1048576, got \"0\"");
    CHECK(ob_config_get_int(cfg, "run.batch_size") == 128);
    ob_config_free(cfg);
}

/* ---- INI files ---- */

static void test_ini_good_file(void) {
    ob_config *cfg = ob_config_new();
    char path[64], err[512] = "";
    const char *text = "; a suite's settings\n"
                       "# another comment style\n"
                       "[run]\n"
                       "preset = smoke\n"
                       "seed=7\n"
                       "\n"
                       "[sgd]\n"
                       "  lr = 0.05 ; inline comment\n"
                       "  nesterov = yes\n"
                       "[schedule]\n"
                       "kind = multistep\n"
                       "milestones = 10, 20\n"
                       "[data]\n"
                       "dir = \"  spaced \\;dir\\\\x\"\n";
    CHECK(load_temp_ini(cfg, text, path, err, sizeof err) == 0);
    CHECK_STR(err, "");
    CHECK_STR(ob_config_get_str(cfg, "run.preset"), "smoke");
    CHECK(ob_config_get_int(cfg, "run.seed") == 7);
    CHECK(ob_config_get_float(cfg, "sgd.lr") == 0.05);
    CHECK(ob_config_get_bool(cfg, "sgd.nesterov"));
    CHECK_STR(ob_config_get_str(cfg, "schedule.kind"), "multistep");
    double milestones[4];
    CHECK(ob_config_get_float_list(cfg, "schedule.milestones", milestones, 4) == 2 && milestones[1] == 20);
    CHECK_STR(ob_config_get_str(cfg, "data.dir"), "  spaced ;dir\\x");
    CHECK(ob_config_was_set(cfg, "sgd.lr"));
    CHECK(!ob_config_was_set(cfg, "sgd.momentum"));
    ob_config_free(cfg);
}

static bool nothing_set(const ob_config *cfg) {
    int count;
    const ob_config_key *keys = ob_config_keys(&count);
    for (int i = 0; i < count; i++)
        if (ob_config_was_set(cfg, keys[i].key))
            return false;
    return true;
}

/* Loads text as a file and as an in-memory text; both must fail with code 2 and
 * the error line "<path or source name><suffix>", leaving the config untouched. */
static void check_ini_rejected(const char *text, const char *suffix, int line) {
    ob_config *cfg = ob_config_new();
    char path[64], err[512] = "", expected[640];
    check(load_temp_ini(cfg, text, path, err, sizeof err) == 2, "ob_config_load_ini returns 2", line);
    snprintf(expected, sizeof expected, "%s%s", path, suffix);
    check_str(err, expected, "INI file error line", line);
    check(nothing_set(cfg), "a failed file load leaves the config unchanged", line);

    err[0] = '\0';
    check(ob_config_load_ini_text(cfg, text, "stored", err, sizeof err) == 2, "load_ini_text returns 2",
          line);
    snprintf(expected, sizeof expected, "stored%s", suffix);
    check_str(err, expected, "INI text error line", line);
    check(nothing_set(cfg), "a failed text load leaves the config unchanged", line);
    ob_config_free(cfg);
}
#define CHECK_INI_REJECTED(text, suffix) check_ini_rejected((text), (suffix), __LINE__)

#define SYNTAX_ERROR ": syntax error: expected [section] or key = value"
#define MALFORMED_QUOTE "malformed quoted value (escapes are \\\\ \\\" \\; \\xHH)"

static void test_ini_rejections(void) {
    CHECK_INI_REJECTED("[run]\nseed = 3\n[sgd]\nlrr = 0.1\n", ":4: unknown config key \"sgd.lrr\"");
    CHECK_INI_REJECTED("[run]\nseed = 3\n[sgd]\n\n; comment\nlr = -1\nmomentum = 0.5\n",
                       ":6: sgd.lr: expected a number > 0 and <= 1000, got \"-1\"");
    CHECK_INI_REJECTED("[sgd]\nlr = 0.2\n[run\nseed = 2\n", ":3" SYNTAX_ERROR);
    CHECK_INI_REJECTED("[sgd]\nlr = 0.2\njust words\n", ":3" SYNTAX_ERROR);
    CHECK_INI_REJECTED("[sgd]\nlr = 0.2\n    0.3\n", ":3" SYNTAX_ERROR); /* no multi-line values */
    CHECK_INI_REJECTED("seed = 3\n", ":1: key \"seed\" is outside any [section]");
    CHECK_INI_REJECTED("[run]\nout = \"abc\n", ":2: run.out: " MALFORMED_QUOTE ", got \"\"abc\"");
    CHECK_INI_REJECTED("[run]\nout = \"a\\qb\"\n", ":2: run.out: " MALFORMED_QUOTE ", got \"\"a\\qb\"\"");
    CHECK_INI_REJECTED("[run]\nout = \"a\"b\"\n", ":2: run.out: " MALFORMED_QUOTE ", got \"\"a\"b\"\"");
    CHECK_INI_REJECTED("[run]\nout = \"a\\x00b\"\n",
                       ":2: run.out: " MALFORMED_QUOTE ", got \"\"a\\x00b\"\"");
    /* libinih ends the value at " ;" before the quotes are read, hence the escape \; */
    CHECK_INI_REJECTED("[run]\nout = \"a ;b\"\n", ":2: run.out: " MALFORMED_QUOTE ", got \"\"a\"");
    /* the first problem wins, whether it is a bad value or bad syntax */
    CHECK_INI_REJECTED("[sgd]\nlr = 5000\n[run\n",
                       ":2: sgd.lr: expected a number > 0 and <= 1000, got \"5000\"");
    CHECK_INI_REJECTED("[run\n[sgd]\nlr = 5000\n", ":1" SYNTAX_ERROR);
    CHECK_INI_REJECTED("[sgd]\nlr = 5000\nmomentum = 7\n",
                       ":2: sgd.lr: expected a number > 0 and <= 1000, got \"5000\"");

    char long_file[400];
    snprintf(long_file, sizeof long_file, "[run]\nseed = 2\nout = %0193d\n", 0);
    CHECK_INI_REJECTED(long_file, ":3: line longer than 198 characters");
}

/* libinih's 200-byte line buffer holds 198 characters plus newline and NUL. */
static void test_ini_longest_line(void) {
    char text[300], path[64], err[512] = "";
    ob_config *cfg = ob_config_new();
    snprintf(text, sizeof text, "[run]\nout = %0192d\nseed = 5\n", 0);
    CHECK(load_temp_ini(cfg, text, path, err, sizeof err) == 0);
    CHECK(strlen(ob_config_get_str(cfg, "run.out")) == 192 && ob_config_get_int(cfg, "run.seed") == 5);
    snprintf(text, sizeof text, "[run]\nseed = 6\nout = %0193d", 0); /* last line, no newline */
    CHECK(load_temp_ini(cfg, text, path, err, sizeof err) == 0);
    CHECK(strlen(ob_config_get_str(cfg, "run.out")) == 193 && ob_config_get_int(cfg, "run.seed") == 6);
    snprintf(text, sizeof text, "[run]\nout = %0192d\nseed = 7\n", 0);
    CHECK(ob_config_load_ini_text(cfg, text, "stored", err, sizeof err) == 0);
    CHECK(strlen(ob_config_get_str(cfg, "run.out")) == 192 && ob_config_get_int(cfg, "run.seed") == 7);
    snprintf(text, sizeof text, "[run]\nseed = 8\nout = %0193d", 0);
    CHECK(ob_config_load_ini_text(cfg, text, "stored", err, sizeof err) == 0);
    CHECK(strlen(ob_config_get_str(cfg, "run.out")) == 193 && ob_config_get_int(cfg, "run.seed") == 8);
    ob_config_free(cfg);
}

static void test_ini_missing_file(void) {
    ob_config *cfg = ob_config_new();
    char err[512] = "";
    CHECK(ob_config_load_ini(cfg, "/nonexistent/dir/x.ini", err, sizeof err) == 2);
    CHECK_STR(err, "cannot read config file \"/nonexistent/dir/x.ini\": No such file or directory");
    CHECK(ob_config_load_ini(cfg, "/tmp", err, sizeof err) == 2);
    CHECK_STR(err, "cannot read config file \"/tmp\": Is a directory");
    ob_config_free(cfg);
}

/* ---- to_ini ---- */

static void test_to_ini_format(void) {
    ob_config *cfg = ob_config_new();
    char *text = ob_config_to_ini(cfg);
    CHECK(text != NULL);
    CHECK(strncmp(text, "[run]\nworkload = resnet50\npreset = workstation\n", 47) == 0);
    CHECK(strstr(text, "\nout = \n") != NULL);
    CHECK(strstr(text, "\n[sgd]\nlr = 0.1\nmomentum = 0.9\n") != NULL);
    const char *run = strstr(text, "[run]"), *data = strstr(text, "[data]"), *model = strstr(text, "[model]");
    const char *schedule = strstr(text, "[schedule]"), *sgd = strstr(text, "[sgd]");
    const char *dist = strstr(text, "[dist]"), *kfac = strstr(text, "[kfac]"), *debug = strstr(text, "[debug]");
    const char *precision = strstr(text, "[precision]"), *loss_scale = strstr(text, "[loss_scale]");
    const char *fqt = strstr(text, "[fqt]"), *adamw = strstr(text, "[adamw]"), *lamb = strstr(text, "[lamb]");
    const char *grad = strstr(text, "[grad]");
    CHECK(run && data && model && schedule && sgd && adamw && lamb && grad && dist && kfac && precision &&
          loss_scale && fqt && debug);
    CHECK(run < data && data < model && model < schedule && schedule < sgd && sgd < adamw && adamw < lamb &&
          lamb < grad && grad < dist && dist < kfac && kfac < precision && precision < loss_scale &&
          loss_scale < fqt && fqt < debug);
    CHECK(strstr(data + 1, "[data]") == NULL);
    int count, lines = 0;
    ob_config_keys(&count);
    for (const char *c = text; *c; c++)
        lines += *c == '\n';
    CHECK(lines == count + 14); /* one line per key plus fourteen section headers */
    free(text);
    ob_config_free(cfg);
}

/* to_ini, then loading that text as a file and as a string, gives back an equal config. */
static void check_round_trip(const ob_config *original, int line) {
    char *text = ob_config_to_ini(original);
    check(text != NULL, "ob_config_to_ini gives text", line);
    ob_config *from_file = ob_config_new(), *from_text = ob_config_new();
    char path[64], err[512] = "";
    check(load_temp_ini(from_file, text ? text : "", path, err, sizeof err) == 0, "file loads", line);
    check_str(err, "", "no error", line);
    check(configs_equal(original, from_file), "equal after a file round trip", line);
    check(ob_config_load_ini_text(from_text, text ? text : "", "stored", err, sizeof err) == 0, "text loads",
          line);
    check(configs_equal(original, from_text), "equal after a text round trip", line);
    char *again = ob_config_to_ini(from_file);
    check(text && again && strcmp(text, again) == 0, "the round trip's text is the same text", line);
    free(again);
    free(text);
    ob_config_free(from_text);
    ob_config_free(from_file);
}
#define CHECK_ROUND_TRIP(cfg) check_round_trip((cfg), __LINE__)

static void test_to_ini_round_trip(void) {
    ob_config *cfg = ob_config_new();
    CHECK_ROUND_TRIP(cfg);
    CHECK(set_ok(cfg, "sgd.lr", "0.0125"));
    CHECK(set_ok(cfg, "sgd.nesterov", "on"));
    CHECK(set_ok(cfg, "run.seed", "4611686018427387904"));
    CHECK(set_ok(cfg, "schedule.milestones", "30, 60"));
    CHECK_ROUND_TRIP(cfg);
    /* strings that plain INI lines cannot carry, and some that they can */
    static const char *hostile[] = {
        "  leading and trailing blanks  ", " leading blank", "trailing blank ", "\ttab first",
        "a ;b;c", ";first", "\"starts with a quote", "ends with a quote\"", "\"both\"",
        "back\\slash \\\" \\x41 \\;", "new\nline", "cr\r", "del\x7f", "# not a comment = x",
        "[not a section]", "key = value", "", "\xc3\xa9t\xc3\xa9 (UTF-8)",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        CHECK(set_ok(cfg, "run.out", hostile[i]));
        CHECK_ROUND_TRIP(cfg);
    }
    ob_config_free(cfg);
}

/* ---- was_set, clone ---- */

static void test_was_set(void) {
    ob_config *cfg = ob_config_new();
    char err[256];
    CHECK(!ob_config_was_set(cfg, "run.seed"));
    CHECK(set_ok(cfg, "run.seed", "1")); /* same as the default, still explicitly set */
    CHECK(ob_config_was_set(cfg, "run.seed"));
    CHECK(ob_config_set_assignment(cfg, "run.epochs=2", err, sizeof err) == 0);
    CHECK(ob_config_was_set(cfg, "run.epochs"));
    CHECK(!ob_config_was_set(cfg, "run.max_steps"));
    ob_config_free(cfg);
}

static void test_clone(void) {
    ob_config *cfg = ob_config_new();
    CHECK(set_ok(cfg, "sgd.lr", "0.3"));
    CHECK(set_ok(cfg, "run.workload", "resnet50"));
    CHECK(set_ok(cfg, "debug.kill_at_step", "9"));
    ob_config *clone = ob_config_clone(cfg);
    CHECK(clone != NULL);
    CHECK(configs_equal(cfg, clone));
    CHECK(ob_config_was_set(clone, "sgd.lr") && !ob_config_was_set(clone, "sgd.momentum"));
    CHECK(ob_config_was_set(clone, "run.workload") && ob_config_was_set(clone, "debug.kill_at_step"));
    CHECK(set_ok(clone, "sgd.lr", "0.7"));
    CHECK(ob_config_get_float(cfg, "sgd.lr") == 0.3);
    CHECK(ob_config_get_float(clone, "sgd.lr") == 0.7);
    ob_config_free(clone);
    ob_config_free(cfg);
    ob_config_free(NULL);
}

/* ---- getter misuse ---- */

typedef enum { GET_UNKNOWN_FLOAT, GET_INT_AS_FLOAT, GET_FLOAT_AS_BOOL, GET_UNKNOWN_STR } misuse;

static void commit_misuse(misuse kind) {
    ob_config *cfg = ob_config_new();
    switch (kind) {
    case GET_UNKNOWN_FLOAT: ob_config_get_float(cfg, "sgd.lrr"); break;
    case GET_INT_AS_FLOAT: ob_config_get_float(cfg, "run.seed"); break;
    case GET_FLOAT_AS_BOOL: ob_config_get_bool(cfg, "sgd.lr"); break;
    case GET_UNKNOWN_STR: ob_config_get_str(cfg, "nope"); break;
    }
    ob_config_free(cfg);
}

/* Runs the misuse in a child, whose stderr is silenced; true when the child aborted. */
static bool misuse_aborts(misuse kind) {
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        if (!freopen("/dev/null", "w", stderr))
            _exit(3);
        commit_misuse(kind);
        _exit(0);
    }
    int status = 0;
    return child > 0 && waitpid(child, &status, 0) == child && WIFSIGNALED(status)
           && WTERMSIG(status) == SIGABRT;
}

static void test_getter_misuse_aborts(void) {
    CHECK(misuse_aborts(GET_UNKNOWN_FLOAT));
    CHECK(misuse_aborts(GET_INT_AS_FLOAT));
    CHECK(misuse_aborts(GET_FLOAT_AS_BOOL));
    CHECK(misuse_aborts(GET_UNKNOWN_STR));
}

int main(void) {
    test_key_table();
    test_defaults();
    test_bool_values();
    test_int_values();
    test_float_values();
    test_string_and_enum_values();
    test_float_list_values();
    test_rejection_messages();
    test_rejected_numbers();
    test_rejection_keeps_old_value();
    test_error_line_shape();
    test_assignment();
    test_ini_good_file();
    test_ini_rejections();
    test_ini_longest_line();
    test_ini_missing_file();
    test_to_ini_format();
    test_to_ini_round_trip();
    test_was_set();
    test_clone();
    test_getter_misuse_aborts();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
