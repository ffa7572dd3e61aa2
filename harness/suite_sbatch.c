/* Slurm job arrays of a suite, written from the templates in ci/slurm/.
 *
 * Runs with different rank counts need different resource requests, so each
 * rank count gets its own array (array-r<R>.sbatch, --ntasks=R, one task per
 * run, in suite order); collect.sbatch waits for all of them (afterany) and
 * writes the suite's summary table; submit.sh submits them in that order.
 *
 * Templates hold the shell text; this file only fills in @KEY@ placeholders
 * (capital letters, digits, _), and a placeholder it has no value for is an
 * error rather than text left in a job script. A placeholder alone on its
 * line that expands to nothing takes the line with it, so optional blocks
 * (#SBATCH options, module and export lines) leave no gaps. */
#define _POSIX_C_SOURCE 200809L /* strtok_r */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness/ob_suite.h"
#include "harness/ob_text.h"

typedef struct {
    const char *key, *value;
} placeholder;

#define MAX_PLACEHOLDERS 16

typedef struct {
    placeholder items[MAX_PLACEHOLDERS];
    int count;
} placeholders;

static void put(placeholders *p, const char *key, const char *value) {
    p->items[p->count++] = (placeholder){key, value};
}

static const char *find_value(const placeholders *p, const char *key, size_t key_len) {
    for (int i = 0; i < p->count; i++)
        if (strlen(p->items[i].key) == key_len && strncmp(p->items[i].key, key, key_len) == 0) return p->items[i].value;
    return NULL;
}

/* Appends template with every @KEY@ replaced by its value. */
static int substitute(const char *template_name, const char *template, const placeholders *values, ob_text *out,
                      char *err, size_t err_len) {
    static const char key_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    const char *p = template;
    for (const char *at = strchr(p, '@'); at; at = strchr(p, '@')) {
        ob_text_append(out, p, (size_t)(at - p));
        size_t key_len = strspn(at + 1, key_chars);
        if (key_len == 0 || at[1 + key_len] != '@' || at[1] < 'A' || at[1] > 'Z') {
            ob_text_append(out, "@", 1); /* "$@", "${a[@]}": not a placeholder */
            p = at + 1;
            continue;
        }
        const char *value = find_value(values, at + 1, key_len);
        if (!value) {
            snprintf(err, err_len, "template %s: unknown placeholder @%.*s@", template_name, (int)key_len, at + 1);
            return 2;
        }
        ob_text_append(out, value, strlen(value));
        p = at + key_len + 2;
        bool alone_on_line = (at == template || at[-1] == '\n') && *p == '\n';
        if (alone_on_line && value[0] == '\0') p++;
    }
    ob_text_append(out, p, strlen(p));
    return 0;
}

/* ---- files ---------------------------------------------------------------- */

static int read_file(const char *path, ob_text *out, char *err, size_t err_len) {
    FILE *file = fopen(path, "rb");
    if (!file) {
        snprintf(err, err_len, "cannot read %s: %s", path, strerror(errno));
        return 2;
    }
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, file)) > 0) ob_text_append(out, buffer, n);
    bool failed = ferror(file) != 0;
    fclose(file);
    if (failed) {
        snprintf(err, err_len, "cannot read %s", path);
        return 2;
    }
    return 0;
}

static int read_template(const char *dir, const char *name, ob_text *out, char *err, size_t err_len) {
    char path[OB_SUITE_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return read_file(path, out, err, err_len);
}

static int write_file(const char *dir, const char *name, const ob_text *text, mode_t mode, char *err, size_t err_len) {
    char path[OB_SUITE_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (text->failed) {
        snprintf(err, err_len, "out of memory writing %s", path);
        return 1;
    }
    FILE *file = fopen(path, "w");
    bool ok = file && fwrite(ob_text_str(text), 1, text->length, file) == text->length;
    if (file) ok = fclose(file) == 0 && ok;
    if (ok && chmod(path, mode) == 0) return 0;
    snprintf(err, err_len, "cannot write %s: %s", path, strerror(errno));
    return 2;
}

/* The suite file's name, which its copy in the output directory keeps. */
static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* ---- what the templates are filled with ------------------------------------ */

/* Everything every job script shares. */
typedef struct {
    const ob_suite *suite;
    const ob_suite_sbatch_options *options;
    ob_text optbench;      /* shell word */
    ob_text suite_copy;    /* shell word: the copy of the suite file in dir */
    ob_text setup;         /* module load / export lines */
    ob_text sbatch_common; /* account, partition, time */
    ob_text launch;        /* the launcher's words, before optbench */
} job_context;

/* Blocks of lines are joined by newlines, without one at the end: the
 * template's line break after the placeholder ends the block. */
static void start_line(ob_text *block) {
    if (block->length) ob_text_append(block, "\n", 1);
}

static void fill_setup(const ob_suite_cluster *cluster, ob_text *setup) {
    char list[OB_SUITE_VALUE_MAX];
    char *save = NULL;
    snprintf(list, sizeof list, "%s", cluster->modules);
    for (char *module = strtok_r(list, ", ", &save); module; module = strtok_r(NULL, ", ", &save))
        ob_text_printf(setup, "%s%s", setup->length ? " " : "module load ", module);
    snprintf(list, sizeof list, "%s", cluster->env);
    for (char *item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        item += strspn(item, " \t");
        char *equals = strchr(item, '=');
        *equals = '\0';
        char *value = equals + 1 + strspn(equals + 1, " \t");
        size_t end = strlen(value);
        while (end > 0 && (value[end - 1] == ' ' || value[end - 1] == '\t')) value[--end] = '\0';
        start_line(setup);
        ob_text_printf(setup, "export %s=", item);
        ob_text_append_shell_word(setup, value);
    }
}

static void add_option(ob_text *lines, const char *name, const char *value) {
    if (!value[0]) return;
    start_line(lines);
    ob_text_printf(lines, "#SBATCH --%s=%s", name, value);
}

static void fill_common_options(const ob_suite_cluster *cluster, ob_text *lines) {
    add_option(lines, "account", cluster->account);
    add_option(lines, "partition", cluster->partition);
    add_option(lines, "time", cluster->time);
}

static int fill_launch(job_context *c, char *err, size_t err_len) {
    const ob_suite_cluster *cluster = &c->suite->cluster;
    const char *name = cluster->launcher == OB_SUITE_MPIRUN ? "launch-mpirun.in" : "launch-srun.in";
    ob_text template = {0}, mpirun = {0};
    int rc = read_template(c->options->template_dir, name, &template, err, err_len);
    /* A template file ends in a newline; the launcher's words are one line. */
    while (!rc && template.length && (template.data[template.length - 1] == '\n'))
        template.data[--template.length] = '\0';
    ob_text_append_shell_word(&mpirun, c->options->programs.mpirun);
    placeholders values = {0};
    put(&values, "MPIRUN", ob_text_str(&mpirun));
    if (!rc) rc = substitute(name, ob_text_str(&template), &values, &c->launch, err, err_len);
    if (!rc && cluster->launcher_flags[0]) ob_text_printf(&c->launch, " %s", cluster->launcher_flags);
    ob_text_free(&template);
    ob_text_free(&mpirun);
    return rc;
}

/* Paths that #SBATCH lines and shell lines can both hold as they are. */
static int check_plain_path(const char *what, const char *path, char *err, size_t err_len) {
    static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.,:/%";
    if (path[0] && strspn(path, plain) == strlen(path)) return 0;
    snprintf(err, err_len, "%s %s: job scripts need a path of letters, digits and _ - + = . , : / %% only", what, path);
    return 2;
}

static int open_context(job_context *c, char *err, size_t err_len) {
    const ob_suite_sbatch_options *o = c->options;
    int rc = check_plain_path("working directory", o->workdir, err, err_len);
    if (!rc) rc = check_plain_path("output directory", o->dir, err, err_len);
    if (rc) return rc;
    ob_text copy_path = {0};
    ob_text_printf(&copy_path, "%s/%s", o->dir, base_name(o->suite_file));
    ob_text_append_shell_word(&c->suite_copy, ob_text_str(&copy_path));
    ob_text_free(&copy_path);
    ob_text_append_shell_word(&c->optbench, o->programs.optbench);
    fill_setup(&c->suite->cluster, &c->setup);
    fill_common_options(&c->suite->cluster, &c->sbatch_common);
    return fill_launch(c, err, err_len);
}

static void close_context(job_context *c) {
    ob_text_free(&c->optbench);
    ob_text_free(&c->suite_copy);
    ob_text_free(&c->setup);
    ob_text_free(&c->sbatch_common);
    ob_text_free(&c->launch);
}

/* ---- the scripts ----------------------------------------------------------- */

/* The case arms that give each array task its run. */
static int append_tasks(const job_context *c, int ranks, ob_text *tasks) {
    int n = 0;
    for (int i = 0; i < c->options->n_runs; i++) {
        const ob_suite_run *run = &c->suite->runs[c->options->runs[i]];
        if (run->ranks != ranks) continue;
        ob_text_printf(tasks, "%s  %d) out=", n ? "\n" : "", n);
        ob_text_append_shell_word(tasks, run->out_path);
        ob_text_append(tasks, "; args=(", 8);
        for (int a = 0; a < run->n_args; a++) {
            if (a) ob_text_append(tasks, " ", 1);
            ob_text_append_shell_word(tasks, run->args[a]);
        }
        ob_text_append(tasks, ") ;;", 4);
        n++;
    }
    return n;
}

static int emit_from_template(const job_context *c, const char *template_name, const char *output_name, mode_t mode,
                              const placeholders *values, char *err, size_t err_len) {
    ob_text template = {0}, script = {0};
    int rc = read_template(c->options->template_dir, template_name, &template, err, err_len);
    if (!rc) rc = substitute(template_name, ob_text_str(&template), values, &script, err, err_len);
    if (!rc) rc = write_file(c->options->dir, output_name, &script, mode, err, err_len);
    ob_text_free(&template);
    ob_text_free(&script);
    return rc;
}

/* What one array task asks Slurm for. */
typedef struct {
    int nodes, ranks_per_node, cpus_per_task, gpus_per_node;
} array_resources;

static array_resources resources_for(const ob_suite *suite, int ranks) {
    const ob_suite_cluster *cluster = &suite->cluster;
    array_resources r = {.ranks_per_node = cluster->ranks_per_node ? cluster->ranks_per_node : cluster->gpus_per_node,
                         .cpus_per_task = cluster->cpus_per_task ? cluster->cpus_per_task : suite->threads};
    if (r.ranks_per_node == 0 || r.ranks_per_node > ranks) r.ranks_per_node = ranks;
    if (r.cpus_per_task == 0) r.cpus_per_task = 1;
    r.nodes = (ranks + r.ranks_per_node - 1) / r.ranks_per_node;
    /* One GPU per rank: a node that holds fewer ranks than it has GPUs asks for fewer. */
    r.gpus_per_node = cluster->gpus_per_node < r.ranks_per_node ? cluster->gpus_per_node : r.ranks_per_node;
    return r;
}

/* Formatted numbers and names that placeholder values point to. */
typedef struct {
    char text[8][OB_SUITE_NAME_MAX + 16];
    int count;
} value_texts;

static const char *format_value(value_texts *v, const char *format, ...) __attribute__((format(printf, 2, 3)));

static const char *format_value(value_texts *v, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(v->text[v->count], sizeof v->text[0], format, args);
    va_end(args);
    return v->text[v->count++];
}

static int emit_array(const job_context *c, int ranks, const char *script_name, char *err, size_t err_len) {
    array_resources r = resources_for(c->suite, ranks);
    ob_text tasks = {0}, options = {0};
    int n_tasks = append_tasks(c, ranks, &tasks);
    value_texts v = {0};
    ob_text_append(&options, ob_text_str(&c->sbatch_common), c->sbatch_common.length);
    add_option(&options, "gpus-per-node", r.gpus_per_node ? format_value(&v, "%d", r.gpus_per_node) : "");
    placeholders values = {0};
    put(&values, "SUITE_NAME", c->suite->name);
    put(&values, "JOB_NAME", format_value(&v, "%s-r%d", c->suite->name, ranks));
    put(&values, "ARRAY", format_value(&v, "0-%d", n_tasks - 1));
    put(&values, "NODES", format_value(&v, "%d", r.nodes));
    put(&values, "RANKS", format_value(&v, "%d", ranks));
    put(&values, "RANKS_PER_NODE", format_value(&v, "%d", r.ranks_per_node));
    put(&values, "CPUS_PER_TASK", format_value(&v, "%d", r.cpus_per_task));
    put(&values, "WORKDIR", c->options->workdir);
    put(&values, "EMIT_DIR", c->options->dir);
    put(&values, "SBATCH_OPTIONS", ob_text_str(&options));
    put(&values, "SETUP", ob_text_str(&c->setup));
    put(&values, "TASKS", ob_text_str(&tasks));
    put(&values, "LAUNCH", ob_text_str(&c->launch));
    put(&values, "OPTBENCH", ob_text_str(&c->optbench));
    int rc = emit_from_template(c, "array.sbatch.in", script_name, 0644, &values, err, err_len);
    ob_text_free(&tasks);
    ob_text_free(&options);
    return rc;
}

static int emit_collect(const job_context *c, char *err, size_t err_len) {
    char job_name[OB_SUITE_NAME_MAX + 16];
    snprintf(job_name, sizeof job_name, "%s-collect", c->suite->name);
    /* The summary covers the runs this emission chose from. */
    ob_text only = {0};
    if (c->options->only) {
        ob_text_append(&only, " --only ", 8);
        ob_text_append_shell_word(&only, c->options->only);
    }
    placeholders values = {0};
    put(&values, "SUITE_NAME", c->suite->name);
    put(&values, "JOB_NAME", job_name);
    put(&values, "WORKDIR", c->options->workdir);
    put(&values, "EMIT_DIR", c->options->dir);
    put(&values, "SBATCH_OPTIONS", ob_text_str(&c->sbatch_common));
    put(&values, "SETUP", ob_text_str(&c->setup));
    put(&values, "OPTBENCH", ob_text_str(&c->optbench));
    put(&values, "SUITE_FILE", ob_text_str(&c->suite_copy));
    put(&values, "ONLY", ob_text_str(&only));
    int rc = emit_from_template(c, "collect.sbatch.in", "collect.sbatch", 0644, &values, err, err_len);
    ob_text_free(&only);
    return rc;
}

static int emit_submit(const job_context *c, const ob_text *array_scripts, char *err, size_t err_len) {
    placeholders values = {0};
    put(&values, "SUITE_NAME", c->suite->name);
    put(&values, "ARRAY_SCRIPTS", ob_text_str(array_scripts));
    return emit_from_template(c, "submit.sh.in", "submit.sh", 0755, &values, err, err_len);
}

static int copy_suite_file(const job_context *c, char *err, size_t err_len) {
    ob_text text = {0};
    int rc = read_file(c->options->suite_file, &text, err, err_len);
    if (!rc) rc = write_file(c->options->dir, base_name(c->options->suite_file), &text, 0644, err, err_len);
    ob_text_free(&text);
    return rc;
}

/* The smallest rank count among the chosen runs above `above`, or 0. */
static int next_rank_count(const ob_suite *suite, const ob_suite_sbatch_options *o, int above) {
    int next = 0;
    for (int i = 0; i < o->n_runs; i++) {
        int ranks = suite->runs[o->runs[i]].ranks;
        if (ranks > above && (next == 0 || ranks < next)) next = ranks;
    }
    return next;
}

int ob_suite_emit_sbatch(const ob_suite *suite, const ob_suite_sbatch_options *options, char *err, size_t err_len) {
    job_context c = {.suite = suite, .options = options};
    ob_text array_scripts = {0};
    int rc = open_context(&c, err, err_len);
    if (!rc) rc = ob_suite_make_dirs(options->dir, false, err, err_len);
    if (!rc) rc = copy_suite_file(&c, err, err_len);
    for (int ranks = next_rank_count(suite, options, 0); ranks && !rc; ranks = next_rank_count(suite, options, ranks)) {
        char name[32];
        snprintf(name, sizeof name, "array-r%d.sbatch", ranks);
        ob_text_printf(&array_scripts, "%s%s", array_scripts.length ? " " : "", name);
        rc = emit_array(&c, ranks, name, err, err_len);
    }
    if (!rc) rc = emit_collect(&c, err, err_len);
    /* Last, so that a directory without submit.sh is visibly incomplete. */
    if (!rc) rc = emit_submit(&c, &array_scripts, err, err_len);
    ob_text_free(&array_scripts);
    close_context(&c);
    return rc;
}
