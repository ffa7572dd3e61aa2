/* Unit test of suites (harness/ob_suite.h): grid expansion, errors that name
 * file:line, the resume decision from run files, and the Slurm scripts
 * against the golden files in tests/golden/suite_sbatch/ (run with
 * OB_UPDATE_GOLDEN=1 to rewrite those after a deliberate template change). */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, open_memstream */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/ob_h5log.h"
#include "harness/ob_suite.h"
#include "harness/ob_text.h"
#include "ob_check.h"

#define GOLDEN_DIR OB_SOURCE_DIR "/tests/golden/suite_sbatch"

static char dir[] = "/tmp/test_suite.XXXXXX";

static const char *path_in_dir(const char *name, char *path, size_t path_len) {
    snprintf(path, path_len, "%s/%s", dir, name);
    return path;
}

static void write_text(const char *path, const char *text) {
    FILE *file = fopen(path, "w");
    if (file) {
        fputs(text, file);
        fclose(file);
    }
}

/* The whole file, malloc'd; NULL when it cannot be read. */
static char *read_text(const char *path) {
    ob_text text = {0};
    FILE *file = fopen(path, "rb");
    if (!file) return NULL;
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, file)) > 0) ob_text_append(&text, buffer, n);
    fclose(file);
    char *copy = strdup(ob_text_str(&text));
    ob_text_free(&text);
    return copy;
}

static int load_text(const char *text, ob_suite **suite, char *err, size_t err_len) {
    char path[512];
    write_text(path_in_dir("suite.ini", path, sizeof path), text);
    return ob_suite_load(path, suite, err, err_len);
}

/* The run's flags joined by blanks. */
static void join_args(const ob_suite_run *run, char *out, size_t out_len) {
    out[0] = '\0';
    for (int i = 0; i < run->n_args; i++) {
        size_t used = strlen(out);
        snprintf(out + used, out_len - used, "%s%s", i ? " " : "", run->args[i]);
    }
}

/* ---- expansion ------------------------------------------------------------- */

static const char grid_suite[] = "; suite defaults, two sections\n"
                                 "[suite]\n"
                                 "name = grid\n"
                                 "out_dir = out\n"
                                 "threads = 2\n"
                                 "seeds = 1, 2\n"
                                 "sgd.lr = 0.1\n"
                                 "\n"
                                 "[run cmp]\n"
                                 "optimizer = sgd\n"
                                 "precond = none, kfac\n"
                                 "ranks = 1, 2\n"
                                 "kfac.damping = 0.003 | 0.001\n"
                                 "schedule.milestones = 10,20\n"
                                 "\n"
                                 "[run one]\n"
                                 "  seeds = 7 ; indented keys are keys\n"
                                 "sgd.lr = 0.2 | 0.4\n";

static void test_expansion(void) {
    ob_suite *suite = NULL;
    char err[512] = "";
    CHECK(load_text(grid_suite, &suite, err, sizeof err) == 0);
    if (!suite) {
        printf("FAIL: grid suite did not load: %s\n", err);
        checks_failed++;
        return;
    }
    CHECK(strcmp(suite->name, "grid") == 0);
    CHECK(suite->threads == 2);
    /* cmp: precond 2 x damping 2 x ranks 2 x seeds 2; one: lr 2 x seed 1 */
    CHECK(suite->n_runs == 18);
    static const char *const cmp_ids[] = {
        "none-damping0.003-s1-r1", "none-damping0.003-s2-r1", "none-damping0.003-s1-r2",
        "none-damping0.003-s2-r2", "none-damping0.001-s1-r1", "none-damping0.001-s2-r1",
        "none-damping0.001-s1-r2", "none-damping0.001-s2-r2", "kfac-damping0.003-s1-r1",
    };
    for (int i = 0; i < (int)(sizeof cmp_ids / sizeof cmp_ids[0]) && i < suite->n_runs; i++) {
        bool same = strcmp(suite->runs[i].id, cmp_ids[i]) == 0;
        if (!same) printf("  run %d: id %s, expected %s\n", i, suite->runs[i].id, cmp_ids[i]);
        CHECK(same);
    }
    char args[1024];
    join_args(&suite->runs[0], args, sizeof args);
    CHECK(strcmp(args, "--optimizer sgd --precond none --seed 1 --set sgd.lr=0.1 --set kfac.damping=0.003 "
                       "--set schedule.milestones=10,20") == 0);
    CHECK(strcmp(suite->runs[0].out_path, "out/cmp/none-damping0.003-s1-r1.h5") == 0);
    CHECK(suite->runs[0].ranks == 1 && suite->runs[2].ranks == 2);
    CHECK(strcmp(suite->runs[16].run_name, "one") == 0);
    CHECK(strcmp(suite->runs[16].id, "lr0.2-s7-r1") == 0);
    CHECK(strcmp(suite->runs[17].id, "lr0.4-s7-r1") == 0);
    join_args(&suite->runs[17], args, sizeof args);
    CHECK(strcmp(args, "--seed 7 --set sgd.lr=0.4") == 0);

    ob_suite_programs programs = {.optbench = "/bin/optbench", .mpirun = "/bin/mpirun"};
    char **argv = ob_suite_command(suite, &suite->runs[2], &programs, true);
    static const char *const expected[] = {"/bin/mpirun", "-np", "2", "--oversubscribe", "/bin/optbench", "run"};
    for (int i = 0; argv && i < 6; i++) CHECK(strcmp(argv[i], expected[i]) == 0);
    int n = 0;
    while (argv && argv[n]) n++;
    CHECK(n == 6 + suite->runs[2].n_args + 5);
    CHECK(n > 5 && strcmp(argv[n - 5], "--out") == 0 && strcmp(argv[n - 3], "--threads") == 0 &&
          strcmp(argv[n - 2], "2") == 0 && strcmp(argv[n - 1], "--force") == 0);
    ob_suite_command_free(argv);
    argv = ob_suite_command(suite, &suite->runs[0], &programs, false);
    CHECK(argv && strcmp(argv[0], "/bin/optbench") == 0 && strcmp(argv[1], "run") == 0);
    ob_suite_command_free(argv);
    ob_suite_free(suite);
}

/* Without [suite]: the name comes from the file, seeds and ranks are 1. */
static void test_defaults(void) {
    ob_suite *suite = NULL;
    char err[512] = "";
    CHECK(load_text("[run plain]\npreset = smoke\n", &suite, err, sizeof err) == 0);
    CHECK(suite && suite->n_runs == 1);
    if (!suite || suite->n_runs != 1) return;
    CHECK(strcmp(suite->name, "suite") == 0);
    CHECK(strcmp(suite->runs[0].id, "s1-r1") == 0);
    CHECK(strcmp(suite->runs[0].out_path, "runs/suite/plain/s1-r1.h5") == 0);
    char args[256];
    join_args(&suite->runs[0], args, sizeof args);
    CHECK(strcmp(args, "--preset smoke --seed 1") == 0);
    CHECK(suite->cluster.launcher == OB_SUITE_SRUN && suite->threads == 0);
    ob_suite_free(suite);
}

static void write_run_file(const char *path, const char *status, double epochs_to_target, double train_s);

/* A suite of `sections` whose out_dir is dir/NAME (out_dir, which exists);
 * NULL when it does not load. */
static ob_suite *load_in_dir(const char *name, const char *sections, char *out_dir, size_t out_dir_len) {
    char text[1024], path[600], err[512] = "";
    path_in_dir(name, out_dir, out_dir_len);
    snprintf(text, sizeof text, "[suite]\nout_dir = %s\n%s", out_dir, sections);
    snprintf(path, sizeof path, "%s/x", out_dir);
    CHECK(ob_suite_make_dirs(path, true, err, sizeof err) == 0);
    ob_suite *suite = NULL;
    CHECK(load_text(text, &suite, err, sizeof err) == 0);
    return suite;
}

/* What `optbench suite --dry-run` prints for the suite now, malloc'd. */
static char *dry_run_text(const ob_suite *suite) {
    char *plan = NULL;
    size_t plan_len = 0;
    FILE *plan_out = open_memstream(&plan, &plan_len);
    ob_suite_programs programs = {.optbench = "optbench", .mpirun = "mpirun"};
    CHECK(ob_suite_print_plan(suite, &programs, plan_out) == 0);
    fclose(plan_out);
    return plan;
}

/* ---- --only ------------------------------------------------------------------ */

static int count_runs_of(const ob_suite *suite, const char *run_name) {
    int n = 0;
    for (int i = 0; i < suite->n_runs; i++) n += strcmp(suite->runs[i].run_name, run_name) == 0;
    return n;
}

static void check_message(const char *err, const char *expected) {
    bool same = strcmp(err, expected) == 0;
    if (!same) printf("  message \"%s\"\n", err);
    check(same, expected);
}

/* grid_suite with only the runs that names select; NULL (err set) when refused. */
static ob_suite *load_selected(const char *names, int *rc, char *err, size_t err_len) {
    ob_suite *suite = NULL;
    if (load_text(grid_suite, &suite, err, err_len) != 0) return NULL;
    *rc = ob_suite_select(suite, names, err, err_len);
    if (*rc == 0) return suite;
    CHECK(suite->n_runs == 18); /* a refused selection leaves the suite whole */
    ob_suite_free(suite);
    return NULL;
}

static void test_only(void) {
    char err[512] = "";
    int rc = -1;
    ob_suite *suite = load_selected("one", &rc, err, sizeof err);
    CHECK(rc == 0 && suite && suite->n_runs == 2 && count_runs_of(suite, "one") == 2);
    if (suite && suite->n_runs == 2)
        CHECK(strcmp(suite->runs[0].id, "lr0.2-s7-r1") == 0 && strcmp(suite->runs[1].id, "lr0.4-s7-r1") == 0);
    ob_suite_free(suite);
    /* patterns and lists; the file order stays whatever order names come in */
    suite = load_selected("c*", &rc, err, sizeof err);
    CHECK(rc == 0 && suite && suite->n_runs == 16 && count_runs_of(suite, "cmp") == 16);
    CHECK(suite && strcmp(suite->runs[0].id, "none-damping0.003-s1-r1") == 0);
    ob_suite_free(suite);
    suite = load_selected(" one , cmp", &rc, err, sizeof err);
    CHECK(rc == 0 && suite && suite->n_runs == 18 && strcmp(suite->runs[17].run_name, "one") == 0);
    ob_suite_free(suite);
    suite = load_selected("o?e,one", &rc, err, sizeof err); /* two names for one section: its runs once */
    CHECK(rc == 0 && suite && suite->n_runs == 2);
    ob_suite_free(suite);

    CHECK(!load_selected("cmp,fp16-*", &rc, err, sizeof err) && rc == 2);
    check_message(err, "--only fp16-*: no [run NAME] of suite grid matches it; its runs are cmp, one");
    CHECK(!load_selected("cm", &rc, err, sizeof err) && rc == 2 && strstr(err, "--only cm: no [run NAME]"));
    CHECK(!load_selected("one,,cmp", &rc, err, sizeof err) && rc == 2);
    check_message(err, "--only: expected NAME[,NAME...] without empty names, got \"one,,cmp\"");
    CHECK(!load_selected("", &rc, err, sizeof err) && rc == 2);
}

/* --only with resume: the plan lists the chosen section's runs, skipping the final one. */
static void test_only_resume(void) {
    char out_dir[512], path[600], err[512] = "";
    ob_suite *suite =
        load_in_dir("only_runs", "[run a]\nseeds = 1, 2\n[run b]\nseeds = 1, 2\n", out_dir, sizeof out_dir);
    if (!suite) return;
    CHECK(ob_suite_select(suite, "b", err, sizeof err) == 0 && suite->n_runs == 2);
    snprintf(path, sizeof path, "%s/b/x", out_dir);
    CHECK(ob_suite_make_dirs(path, true, err, sizeof err) == 0);
    write_run_file(suite->runs[0].out_path, "converged", 1.5, 10);
    char *plan = dry_run_text(suite);
    CHECK(strstr(plan, "b/s1-r1: skip (converged)\n") != NULL);
    CHECK(strstr(plan, "b/s2-r1: optbench run --seed 2 --out ") != NULL);
    CHECK(strncmp(plan, "b/", 2) == 0 && strstr(plan, "\na/") == NULL); /* a's runs are not listed */
    free(plan);
    ob_suite_free(suite);
}

/* ---- errors ---------------------------------------------------------------- */

static const struct {
    const char *text, *message;
} bad_suites[] = {
    {"[run a]\nseedz = 1\n", "suite.ini:2: unknown key seedz in [run a]"},
    {"[run a]\nseeds =\n", "suite.ini:2: seeds: expected at least one value"},
    {"[run a]\nseeds = 1,,2\n", "suite.ini:2: seeds: expected a list separated by ','"},
    {"[run a]\nsgd.lr = 0.1 | \n", "suite.ini:2: sgd.lr: expected a list separated by '|'"},
    {"[run a]\nseeds = 1\n\n[run a]\n", "suite.ini:4: duplicate [run a] (the first is at line 1)"},
    {"[run a]\nseeds = 1\nseeds = 2\n", "suite.ini:3: duplicate key seeds (the first is at line 2)"},
    {"[run a]\nranks = 0\n", "suite.ini:2: ranks: expected world sizes from 1"},
    {"[run a]\nranks = 2x\n", "suite.ini:2: ranks: expected world sizes from 1"},
    {"[run a]\nseeds = 1, x\n", "suite.ini:2: seeds: run.seed: expected an integer"},
    {"[run a]\nprecond = kfc\n", "suite.ini:2: precond: run.precond: expected one of"},
    {"[run a]\nsgd.lr = 0.1 | -1\n", "suite.ini:2: sgd.lr: expected a number"},
    {"[run a]\nsgd.lrr = 1\n", "suite.ini:2: unknown config key \"sgd.lrr\""},
    {"[run a]\nrun.seed = 1\n", "suite.ini:2: run.seed: expected the grid key seeds instead"},
    {"[run a]\nrun.out = x.h5\n", "suite.ini:2: run.out: the suite sets it"},
    {"[run a]\naccount = x\n", "suite.ini:2: unknown key account in [run a]"},
    {"[runs a]\n", "suite.ini:1: expected [suite] or [run NAME], got [runs a]"},
    {"[run a/b]\n", "suite.ini:1: [run a/b]: expected a NAME"},
    {"[suite]\nname = x\n[suite]\n", "suite.ini:3: a second [suite] section"},
    {"[suite]\nname = a b\n[run a]\n", "suite.ini:2: name: expected up to"},
    {"[suite]\ngpus_per_node = -1\n[run a]\n", "suite.ini:2: gpus_per_node: expected a whole number >= 0"},
    {"[suite]\nlauncher = ssh\n[run a]\n", "suite.ini:2: launcher: expected srun or mpirun"},
    {"[suite]\nenv = 1X=2\n[run a]\n", "suite.ini:2: env: expected comma-separated NAME=VALUE"},
    {"[suite]\nthreads = -2\n[run a]\n", "suite.ini:2: threads: run.threads: expected an integer"},
    {"[suite]\ncolor = blue\n[run a]\n", "suite.ini:2: unknown key color: expected name, out_dir"},
    {"[suite]\nname = x\n", "suite.ini: no [run NAME] section"},
    {"seeds = 1\n[run a]\n", "suite.ini:1: key seeds before any section"},
    {"[run a]\nthis is not ini\n", "suite.ini:2: syntax error"},
    {"[run a]\nseeds = 1, 1\n", "suite.ini:1: [run a] expands to the id s1-r1 twice"},
    {"[run a]\ndata.dir = a b | a_b\n", "suite.ini:1: [run a] expands to the id dira_b-s1-r1"},
};

static void test_errors(void) {
    for (size_t i = 0; i < sizeof bad_suites / sizeof bad_suites[0]; i++) {
        ob_suite *suite = NULL;
        char err[512] = "";
        int rc = load_text(bad_suites[i].text, &suite, err, sizeof err);
        bool ok = rc == 2 && !suite && strstr(err, bad_suites[i].message) != NULL;
        if (!ok)
            printf("  case %zu: status %d, message \"%s\", expected 2 and \"%s\"\n", i, rc, err, bad_suites[i].message);
        check(ok, bad_suites[i].message);
        ob_suite_free(suite);
    }
    /* A line longer than libinih's buffer is refused, not cut. */
    char long_line[400] = "[run a]\ndata.dir = ";
    memset(long_line + strlen(long_line), 'x', 250);
    ob_suite *suite = NULL;
    char err[512] = "";
    CHECK(load_text(long_line, &suite, err, sizeof err) == 2 && strstr(err, "suite.ini:2: line longer than"));
    CHECK(ob_suite_load("/nonexistent/s.ini", &suite, err, sizeof err) == 2 &&
          strstr(err, "/nonexistent/s.ini: cannot read suite file"));
    /* Flags go through the file's validation. */
    CHECK(load_text("[run a]\n", &suite, err, sizeof err) == 0);
    if (!suite) return;
    CHECK(ob_suite_set_cluster(suite, "time", "2h", err, sizeof err) == 2 &&
          strstr(err, "time: expected a Slurm time"));
    CHECK(ob_suite_set_cluster(suite, "launcher", "mpirun", err, sizeof err) == 0 &&
          suite->cluster.launcher == OB_SUITE_MPIRUN);
    ob_suite_free(suite);
}

/* ---- resume ------------------------------------------------------------------ */

/* A run file as a run leaves it: status, outcome, train_s rows. */
static void write_run_file(const char *path, const char *status, double epochs_to_target, double train_s) {
    ob_h5log *log = NULL;
    char err[256];
    CHECK(ob_h5log_create(&log, path, true, 0, NULL, err, sizeof err) == 0);
    if (!log) return;
    CHECK(ob_h5log_attr_str(log, "status", status) == 0);
    CHECK(ob_h5log_attr_float(log, "epochs_to_target", epochs_to_target) == 0);
    ob_train_row row = {.step = 1, .epoch = 0.5, .samples = 32, .train_s = train_s, .loss = 2, .lr = 0.1};
    CHECK(ob_h5log_train(log, &row) == 0);
    CHECK(ob_h5log_close(log) == 0);
}

static void test_resume(void) {
    char out_dir[512], path[600], err[512] = "";
    ob_suite *suite = load_in_dir("runs", "[run a]\nseeds = 1, 2, 3, 4, 5, 6\n", out_dir, sizeof out_dir);
    if (!suite || suite->n_runs != 6) return;
    snprintf(path, sizeof path, "%s/a/x", out_dir);
    CHECK(ob_suite_make_dirs(path, true, err, sizeof err) == 0);
    write_run_file(suite->runs[0].out_path, "converged", 2.75, 30.5);
    write_run_file(suite->runs[1].out_path, "running", NAN, 3);
    write_run_file(suite->runs[2].out_path, "aborted", NAN, 4);
    write_run_file(suite->runs[3].out_path, "diverged", NAN, 5);
    write_text(suite->runs[5].out_path, "not an HDF5 file\n"); /* s5 stays missing */

    static const struct {
        ob_suite_state state;
        const char *status;
    } expected[] = {{OB_SUITE_FINAL, "converged"},    {OB_SUITE_UNFINISHED, "running"},
                    {OB_SUITE_UNFINISHED, "aborted"}, {OB_SUITE_FINAL, "diverged"},
                    {OB_SUITE_MISSING, "missing"},    {OB_SUITE_UNFINISHED, "unreadable"}};
    for (int i = 0; i < 6; i++) {
        ob_suite_outcome outcome = ob_suite_read_outcome(suite->runs[i].out_path);
        bool ok = outcome.state == expected[i].state && strcmp(outcome.status, expected[i].status) == 0;
        if (!ok) printf("  run %d: state %d status %s\n", i, (int)outcome.state, outcome.status);
        check(ok, expected[i].status);
    }
    ob_suite_outcome converged = ob_suite_read_outcome(suite->runs[0].out_path);
    CHECK(converged.epochs_to_target == 2.75 && converged.train_s == 30.5);
    CHECK(isnan(ob_suite_read_outcome(suite->runs[1].out_path).epochs_to_target));

    /* The plan skips final runs, forces over cut-short ones, runs missing ones plainly. */
    char *plan = dry_run_text(suite), *summary = NULL;
    size_t summary_len = 0;
    CHECK(strstr(plan, "a/s1-r1: skip (converged)\n") != NULL);
    CHECK(strstr(plan, "a/s4-r1: skip (diverged)\n") != NULL);
    CHECK(strstr(plan, "a/s2-r1: optbench run --seed 2 --out ") != NULL);
    CHECK(strstr(plan, "/a/s2-r1.h5 --force\n") != NULL);
    CHECK(strstr(plan, "/a/s3-r1.h5 --force\n") != NULL);
    CHECK(strstr(plan, "/a/s5-r1.h5\n") != NULL);
    CHECK(strstr(plan, "/a/s6-r1.h5 --force\n") != NULL);

    FILE *summary_out = open_memstream(&summary, &summary_len);
    CHECK(!ob_suite_print_summary(suite, summary_out));
    fclose(summary_out);
    CHECK(strstr(summary, "a/s1-r1  converged                     2.75       30.50\n") != NULL);
    CHECK(strstr(summary, "a/s5-r1  missing                          -           -\n") != NULL);
    CHECK(strstr(summary, "2 of 6 runs final") != NULL);
    free(plan);
    free(summary);
    ob_suite_free(suite);
}

/* ---- sbatch ---------------------------------------------------------------- */

/* Emitted text with the temporary directory replaced, so goldens are machine-independent. */
static char *normalised(const char *text, const char *temp_dir) {
    ob_text out = {0};
    size_t temp_len = strlen(temp_dir);
    for (const char *p = text; *p;) {
        if (strncmp(p, temp_dir, temp_len) == 0) {
            ob_text_printf(&out, "/scratch/sbatch");
            p += temp_len;
        } else {
            ob_text_append(&out, p++, 1);
        }
    }
    char *copy = strdup(ob_text_str(&out));
    ob_text_free(&out);
    return copy;
}

static void compare_with_golden(const char *emit_dir, const char *name, const char *golden_name) {
    char emitted_path[600], golden_path[600];
    snprintf(emitted_path, sizeof emitted_path, "%s/%s", emit_dir, name);
    snprintf(golden_path, sizeof golden_path, "%s/%s", GOLDEN_DIR, golden_name);
    char *emitted = read_text(emitted_path);
    char *text = emitted ? normalised(emitted, emit_dir) : NULL;
    if (text && getenv("OB_UPDATE_GOLDEN")) write_text(golden_path, text);
    char *golden = read_text(golden_path);
    bool same = text && golden && strcmp(text, golden) == 0;
    if (!same) printf("  %s differs from %s (emitted into %s, kept)\n", name, golden_path, emit_dir);
    check(same, golden_name);
    free(emitted);
    free(text);
    free(golden);
}

static int emit(const ob_suite *suite, const char *emit_dir, const char *template_dir, char *err, size_t err_len) {
    int *all = malloc((size_t)suite->n_runs * sizeof *all);
    for (int i = 0; all && i < suite->n_runs; i++) all[i] = i;
    ob_suite_sbatch_options options = {
        .dir = emit_dir,
        .template_dir = template_dir,
        .workdir = "/home/user/project",
        .suite_file = GOLDEN_DIR "/cluster.ini",
        .programs = {.optbench = "/opt/optbench/bin/optbench", .mpirun = "/usr/bin/mpirun"},
        .runs = all,
        .n_runs = suite->n_runs};
    int rc = all ? ob_suite_emit_sbatch(suite, &options, err, err_len) : 1;
    free(all);
    return rc;
}

static void test_sbatch(void) {
    ob_suite *suite = NULL;
    char err[512] = "", emit_dir[600];
    CHECK(ob_suite_load(GOLDEN_DIR "/cluster.ini", &suite, err, sizeof err) == 0);
    if (!suite) {
        printf("  %s\n", err);
        return;
    }
    path_in_dir("srun", emit_dir, sizeof emit_dir);
    CHECK(emit(suite, emit_dir, OB_SOURCE_DIR "/ci/slurm", err, sizeof err) == 0);
    static const char *const files[] = {"array-r1.sbatch", "array-r4.sbatch", "collect.sbatch", "submit.sh"};
    char golden_name[64];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(golden_name, sizeof golden_name, "srun/%s", files[i]);
        compare_with_golden(emit_dir, files[i], golden_name);
    }
    compare_with_golden(emit_dir, "cluster.ini", "cluster.ini");
    char submit[700];
    snprintf(submit, sizeof submit, "%s/submit.sh", emit_dir);
    CHECK(access(submit, X_OK) == 0);

    path_in_dir("mpirun", emit_dir, sizeof emit_dir);
    CHECK(ob_suite_set_cluster(suite, "launcher", "mpirun", err, sizeof err) == 0);
    CHECK(ob_suite_set_cluster(suite, "launcher_flags", "--report-bindings", err, sizeof err) == 0);
    CHECK(emit(suite, emit_dir, OB_SOURCE_DIR "/ci/slurm", err, sizeof err) == 0);
    compare_with_golden(emit_dir, "array-r4.sbatch", "mpirun/array-r4.sbatch");

    /* A placeholder the code has no value for is an error, not text in a job script. */
    char template_dir[600], template_path[700];
    path_in_dir("templates", template_dir, sizeof template_dir);
    CHECK(ob_suite_make_dirs(template_dir, false, err, sizeof err) == 0);
    static const char *const templates[][2] = {{"array.sbatch.in", "#SBATCH --ntasks=@RANKS@\n@NO_SUCH_KEY@\n"},
                                               {"collect.sbatch.in", "x\n"},
                                               {"submit.sh.in", "\"$@\"\n"},
                                               {"launch-mpirun.in", "mpirun\n"}};
    for (size_t i = 0; i < sizeof templates / sizeof templates[0]; i++) {
        snprintf(template_path, sizeof template_path, "%s/%s", template_dir, templates[i][0]);
        write_text(template_path, templates[i][1]);
    }
    path_in_dir("bad", emit_dir, sizeof emit_dir);
    CHECK(emit(suite, emit_dir, template_dir, err, sizeof err) == 2 &&
          strstr(err, "template array.sbatch.in: unknown placeholder @NO_SUCH_KEY@"));
    CHECK(emit(suite, "/tmp/a dir", template_dir, err, sizeof err) == 2 && strstr(err, "job scripts need a path"));
    ob_suite_free(suite);
}

int main(void) {
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_expansion();
    test_defaults();
    test_only();
    test_errors();
    test_resume();
    test_only_resume();
    test_sbatch();
    int rc = report_checks();
    if (rc == 0) {
        char command[128];
        snprintf(command, sizeof command, "rm -rf %s", dir);
        if (system(command) != 0) printf("could not remove %s\n", dir);
    }
    return rc;
}
