/* Reference files and `check` on synthetic run files (harness/ob_reference.h,
 * harness/ob_check.h): build, read back, lookup by name, and the verdicts
 * and errors of check, with every curve written here so the numbers are known.
 *
 * The reference: 5 seeds whose top1 is 0.2 e + 0.1 + o at epoch e, offsets
 * o = -0.04 -0.02 0 0.02 0.04, evaluated every 0.25 epoch up to the first
 * point >= the target 0.485: epochs to target 2.25 2.25 2.0 2.0 1.75. Up to
 * epoch 1.75 the band is 0.2 e + 0.1 +- 3 sqrt(0.001) = +-0.0949; the RCP
 * lower bound for one run is 2.0833 - 2.920 * 0.1443 * sqrt(1/3 + 1) = 1.597.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, open_memstream */

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/ob_check.h"
#include "harness/ob_h5log.h"
#include "harness/ob_reference.h"
#include "ob_check.h"

#define TARGET 0.485 /* no eval point lands on it up to rounding */
#define MAX_POINTS 16
#define N_REF 5

static char dir[] = "/tmp/test_reference.XXXXXX";

static const char *path_in(const char *name, char *path, size_t len) {
    snprintf(path, len, "%s/%s", dir, name);
    return path;
}

/* ---- synthetic run files ------------------------------------------------ */

typedef struct {
    int64_t seed;
    const char *precond, *preset, *lr;
    int n;
    double epoch[MAX_POINTS], metric[MAX_POINTS];
    const char *status;
    double epochs_to_target;
} run_spec;

/* A run of the reference family: metric 0.2 e + 0.1 + offset * slope_scale,
 * slope scaled, stopped at the target or at epoch 2.5. */
static run_spec curve_run(int64_t seed, double slope, double offset) {
    run_spec r = {.seed = seed, .precond = "none", .preset = "smoke", .lr = "0.1",
                  .status = "budget_exhausted", .epochs_to_target = NAN};
    for (int i = 1; i <= 10; i++) {
        double epoch = 0.25 * i;
        r.epoch[r.n] = epoch;
        r.metric[r.n] = slope * epoch + 0.1 + offset;
        r.n++;
        if (r.metric[r.n - 1] >= TARGET) {
            r.status = "converged";
            r.epochs_to_target = epoch;
            break;
        }
    }
    return r;
}

static run_spec reference_run(int s) { return curve_run(s + 1, 0.2, 0.02 * (s - 2)); }

static char *config_text(const run_spec *r) {
    ob_config *config = ob_config_new();
    char seed[32], target[32];
    snprintf(seed, sizeof seed, "%lld", (long long)r->seed);
    snprintf(target, sizeof target, "%g", TARGET);
    ob_config_set(config, "run.preset", r->preset, NULL, 0);
    ob_config_set(config, "run.precond", r->precond, NULL, 0);
    ob_config_set(config, "run.seed", seed, NULL, 0);
    ob_config_set(config, "run.target", target, NULL, 0);
    ob_config_set(config, "sgd.lr", r->lr, NULL, 0);
    char *text = ob_config_to_ini(config);
    ob_config_free(config);
    return text;
}

static void write_attributes(ob_h5log *log, const run_spec *r) {
    const char *strings[][2] = {
        {"optbench_version", "0.1.0"}, {"git_commit", "abc1234"},  {"created_utc", "2026-01-01T00:00:00Z"},
        {"hostname", "testhost"},      {"cpu_model", "Test CPU"}, {"gpu_model", ""},
        {"workload", "resnet50"},      {"preset", r->preset},     {"optimizer", "sgd"},
        {"precond", r->precond},       {"precision", "fp32"},     {"loss_scale", "none"},
        {"target_metric", "top1"},     {"target_direction", "max"}, {"status", r->status},
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        CHECK(ob_h5log_attr_str(log, strings[i][0], strings[i][1]) == 0);
    const char *ints[] = {"world_size", "threads", "global_batch_size", "params", "steps_to_target"};
    const int64_t int_values[] = {1, 2, 32, 1000, -1};
    for (int i = 0; i < 5; i++) CHECK(ob_h5log_attr_int(log, ints[i], int_values[i]) == 0);
    CHECK(ob_h5log_attr_int(log, "seed", r->seed) == 0);
    CHECK(ob_h5log_attr_float(log, "target_value", TARGET) == 0);
    CHECK(ob_h5log_attr_float(log, "epochs_to_target", r->epochs_to_target) == 0);
    CHECK(ob_h5log_attr_float(log, "time_to_target_s", NAN) == 0);
    char *config = config_text(r);
    CHECK(ob_h5log_attr_str(log, "config", config) == 0);
    free(config);
}

static const char *write_run(const char *name, const run_spec *r, char *path, size_t len) {
    char err[512] = "";
    ob_h5log *log = NULL;
    path_in(name, path, len);
    const char *secondary[] = {"top5"};
    CHECK(ob_h5log_create(&log, path, true, 1, secondary, err, sizeof err) == 0);
    if (!log) return path;
    write_attributes(log, r);
    for (int i = 0; i < r->n; i++) {
        double top5 = 1.0;
        ob_eval_row row = {(int64_t)(8 * r->epoch[i]), r->epoch[i], i, 0.1, r->metric[i], 2.0, &top5};
        CHECK(ob_h5log_eval(log, &row) == 0);
    }
    CHECK(ob_h5log_close(log) == 0);
    return path;
}

/* The five reference seeds as ref/seed<N>.h5. */
static void write_reference_runs(char paths[N_REF][512]) {
    char subdir[512];
    CHECK(mkdir(path_in("ref", subdir, sizeof subdir), 0777) == 0);
    for (int s = 0; s < N_REF; s++) {
        char name[64];
        snprintf(name, sizeof name, "ref/seed%d.h5", s + 1);
        run_spec r = reference_run(s);
        write_run(name, &r, paths[s], sizeof paths[s]);
    }
}

/* ---- helpers for check -------------------------------------------------- */

typedef struct {
    int rc;
    char err[1024];
    char *report; /* malloc'd */
} check_outcome;

static check_outcome run_check(const char *const *runs, int n, const char *reference) {
    check_outcome o = {0};
    size_t size = 0;
    FILE *out = open_memstream(&o.report, &size);
    ob_check_options options = OB_CHECK_OPTIONS_DEFAULT;
    options.reference = reference;
    o.rc = ob_check_runs(runs, n, &options, out, o.err, sizeof o.err);
    fclose(out);
    return o;
}

static void expect_error(check_outcome o, const char *needle, const char *what) {
    bool ok = o.rc == 2 && strstr(o.err, needle) != NULL;
    if (!ok) printf("  %s: rc %d, err \"%s\", expected 2 and \"%s\"\n", what, o.rc, o.err, needle);
    check(ok, what);
    free(o.report);
}

static void expect_report(check_outcome o, int rc, const char *const *needles, const char *what) {
    bool ok = o.rc == rc;
    for (int i = 0; needles[i]; i++) ok = ok && strstr(o.report, needles[i]) != NULL;
    if (!ok) printf("  %s: rc %d (expected %d), err \"%s\", report:\n%s", what, o.rc, rc, o.err, o.report);
    check(ok, what);
    free(o.report);
}

/* ---- tests -------------------------------------------------------------- */

static void test_naming(void) {
    ob_run_identity id = {.optimizer = "sgd", .precond = "none", .precision = "fp32", .loss_scale = "none"};
    const struct {
        const char *precond, *precision, *loss_scale, *name;
    } cases[] = {{"none", "fp32", "none", "sgd"},          {"kfac", "fp32", "none", "sgd+kfac"},
                 {"none", "fp16", "dynamic", "sgd-fp16-dynamic"}, {"none", "bf16", "none", "sgd-bf16"},
                 {"dp-kfac", "fp32", "dynamic", "sgd+dp-kfac-fp32-dynamic"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64];
        id.precond = (char *)cases[i].precond;
        id.precision = (char *)cases[i].precision;
        id.loss_scale = (char *)cases[i].loss_scale;
        CHECK(ob_reference_name(&id, name, sizeof name) == 0 && strcmp(name, cases[i].name) == 0);
    }
    char small[4];
    CHECK(ob_reference_name(&id, small, sizeof small) == 2);
}

static void test_build_and_read_back(const char *const *runs, char *ref_path, size_t len) {
    char err[1024] = "", written[512] = "";
    path_in("sgd.h5", ref_path, len);
    ob_reference_build_options options = {.out = ref_path, .command = "test_reference build"};
    CHECK(ob_reference_build(runs, N_REF, &options, written, sizeof written, err, sizeof err) == 0);
    if (err[0]) printf("  build: %s\n", err);
    CHECK(strcmp(written, ref_path) == 0);

    ob_reference ref;
    CHECK(ob_reference_read(ref_path, &ref, err, sizeof err) == 0);
    if (err[0]) printf("  read: %s\n", err);
    CHECK(ref.n_seeds == N_REF && strcmp(ref.name, "sgd") == 0 && strcmp(ref.id.preset, "smoke") == 0);
    CHECK(ref.id.target_value == TARGET && strcmp(ref.id.target_direction, "max") == 0);
    CHECK(strcmp(ref.git_commits, "abc1234") == 0 && strstr(ref.config, "lr = 0.1") != NULL);
    const double expected_epochs[N_REF] = {2.25, 2.25, 2.0, 2.0, 1.75};
    for (int s = 0; s < ref.n_seeds; s++) {
        run_spec r = reference_run(s);
        CHECK(ref.seeds[s].seed == s + 1 && ref.seeds[s].epochs_to_target == expected_epochs[s]);
        CHECK(ref.seeds[s].n_points == r.n);
        for (int p = 0; p < r.n && p < ref.seeds[s].n_points; p++)
            CHECK(ref.seeds[s].epoch[p] == r.epoch[p] && ref.seeds[s].metric[p] == r.metric[p]);
    }
    ob_reference_free(&ref);
    char *command = NULL;
    CHECK(ob_h5log_read_attr_str(ref_path, "command", &command, err, sizeof err) == 0 &&
          strcmp(command, "test_reference build") == 0);
    free(command);
}

/* The final name appears only complete: nothing named *.tmp* is left beside it. */
static void test_no_temporary_left(void) {
    DIR *handle = opendir(dir);
    bool leftover = false;
    for (struct dirent *e = handle ? readdir(handle) : NULL; e; e = readdir(handle))
        leftover = leftover || strstr(e->d_name, ".tmp") != NULL;
    if (handle) closedir(handle);
    CHECK(handle && !leftover);
}

static void test_build_refusals(const char *const *runs) {
    char err[1024] = "", out[512], path[512];
    ob_reference_build_options options = {.out = path_in("refused.h5", out, sizeof out)};
    CHECK(ob_reference_build(runs, 4, &options, NULL, 0, err, sizeof err) == 2 && strstr(err, "at least 5"));

    const char *mixed[N_REF];
    memcpy(mixed, runs, sizeof mixed);
    run_spec other_lr = reference_run(4);
    other_lr.lr = "0.2";
    mixed[4] = write_run("other_lr.h5", &other_lr, path, sizeof path);
    CHECK(ob_reference_build(mixed, N_REF, &options, NULL, 0, err, sizeof err) == 2 && strstr(err, "sgd.lr"));
    if (!strstr(err, "sgd.lr")) printf("  config mismatch: %s\n", err);

    char slow_path[512];
    run_spec slow = curve_run(9, 0.1, 0);
    mixed[4] = write_run("unconverged.h5", &slow, slow_path, sizeof slow_path);
    CHECK(ob_reference_build(mixed, N_REF, &options, NULL, 0, err, sizeof err) == 2 &&
          strstr(err, "budget_exhausted"));

    mixed[4] = runs[0];
    CHECK(ob_reference_build(mixed, N_REF, &options, NULL, 0, err, sizeof err) == 2 && strstr(err, "both seed 1"));

    options.out = runs[0]; /* an existing file, no --force */
    CHECK(ob_reference_build(runs, N_REF, &options, NULL, 0, err, sizeof err) == 2 && strstr(err, "--force"));
    CHECK(access(out, F_OK) != 0);
}

static void test_good_run_passes(const char *ref_path) {
    char path[512];
    run_spec good = curve_run(6, 0.2, 0.01);
    const char *runs[] = {write_run("good.h5", &good, path, sizeof path)};
    const char *needles[] = {"verdict band", ": PASS (", "verdict rcp: PASS", "overall: PASS", NULL};
    expect_report(run_check(runs, 1, ref_path), 0, needles, "a fresh seed passes");
}

static void test_slow_run_fails_band_with_epochs(const char *ref_path) {
    char path[512];
    run_spec slow = curve_run(7, 0.1, 0); /* half the slope: below the band from epoch 1 */
    const char *runs[] = {write_run("slow.h5", &slow, path, sizeof path)};
    const char *needles[] = {"epoch 1: top1 0.2 below the band", "epoch 1.25: top1 0.225 below the band",
                             "verdict rcp: FAIL", "did not reach the target: status budget_exhausted",
                             "overall: FAIL", NULL};
    expect_report(run_check(runs, 1, ref_path), 1, needles, "a too-slow run fails, epochs named");
}

/* Inside the band all along (offset 0.09 < 0.0949), but at the target by epoch 1.5 < 1.597. */
static void test_fast_run_fails_rcp(const char *ref_path) {
    char path[512];
    run_spec fast = curve_run(8, 0.2, 0.09);
    fast.n = 6;
    fast.metric[5] = 0.494;
    fast.status = "converged";
    fast.epochs_to_target = 1.5;
    const char *runs[] = {write_run("fast.h5", &fast, path, sizeof path)};
    const char *needles[] = {"inside the band", "verdict rcp: FAIL", "implausibly fast", "overall: FAIL", NULL};
    expect_report(run_check(runs, 1, ref_path), 1, needles, "a too-fast run fails the RCP test");
}

static void test_set_of_runs(const char *ref_path) {
    char paths[3][512];
    const char *runs[3];
    for (int i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof name, "set%d.h5", i);
        run_spec r = curve_run(10 + i, 0.2, 0.01 * (i - 1));
        runs[i] = write_run(name, &r, paths[i], sizeof paths[i]);
    }
    const char *needles[] = {"RCP test of 3 runs", "verdict band", "verdict rcp: PASS", "overall: PASS", NULL};
    expect_report(run_check(runs, 3, ref_path), 0, needles, "a set of fresh seeds passes");
}

static void test_check_errors(const char *ref_path) {
    char path[512], missing[512];
    run_spec kfac = curve_run(6, 0.2, 0);
    kfac.precond = "kfac";
    const char *mismatched[] = {write_run("kfac.h5", &kfac, path, sizeof path)};
    expect_error(run_check(mismatched, 1, ref_path), "precond is kfac", "another precond is exit 2");

    run_spec workstation = curve_run(6, 0.2, 0);
    workstation.preset = "workstation";
    const char *other_preset[] = {write_run("workstation.h5", &workstation, path, sizeof path)};
    expect_error(run_check(other_preset, 1, ref_path), "preset is workstation", "another preset is exit 2");

    const char *absent[] = {path_in("absent.h5", missing, sizeof missing)};
    expect_error(run_check(absent, 1, ref_path), "absent.h5", "a missing run file is exit 2");

    run_spec good = curve_run(6, 0.2, 0.01);
    const char *runs[] = {write_run("good.h5", &good, path, sizeof path)};
    expect_error(run_check(runs, 1, path_in("no_reference.h5", missing, sizeof missing)), "cannot open reference",
                 "a missing reference is exit 2");
    expect_error(run_check(runs, 1, runs[0]), "not an optbench reference", "a run file as reference is exit 2");

    run_spec running = good;
    running.status = "running";
    const char *unfinished[] = {write_run("running.h5", &running, path, sizeof path)};
    expect_error(run_check(unfinished, 1, ref_path), "not finished", "an unfinished run is exit 2");
}

/* Without --reference the reference is <dir>/<workload>/<preset>/<name>.h5. */
static void test_lookup_by_name(const char *const *reference_runs) {
    char err[1024] = "", written[512] = "", expected[512], path[512];
    ob_reference_build_options build = {.reference_dir = dir};
    CHECK(ob_reference_build(reference_runs, N_REF, &build, written, sizeof written, err, sizeof err) == 0);
    CHECK(strcmp(written, path_in("resnet50/smoke/sgd.h5", expected, sizeof expected)) == 0);

    run_spec good = curve_run(6, 0.2, 0.01);
    const char *runs[] = {write_run("good.h5", &good, path, sizeof path)};
    ob_check_options options = OB_CHECK_OPTIONS_DEFAULT;
    options.reference_dir = dir;
    FILE *sink = fopen("/dev/null", "w");
    CHECK(ob_check_runs(runs, 1, &options, sink, err, sizeof err) == 0);
    options.reference_dir = "/nonexistent";
    CHECK(ob_check_runs(runs, 1, &options, sink, err, sizeof err) == 2 && strstr(err, "no reference for"));
    fclose(sink);
}

static void test_directory_expansion(void) {
    char ref_dir[512], err[512] = "";
    path_in("ref", ref_dir, sizeof ref_dir);
    char *args[] = {ref_dir};
    char **paths = NULL;
    int n = 0;
    CHECK(ob_run_paths_expand(args, 1, &paths, &n, err, sizeof err) == 0 && n == N_REF);
    CHECK(n == N_REF && strstr(paths[0], "ref/seed1.h5") && strstr(paths[4], "ref/seed5.h5"));
    ob_run_paths_free(paths, n);
    char empty[512];
    CHECK(mkdir(path_in("empty", empty, sizeof empty), 0777) == 0);
    args[0] = empty;
    CHECK(ob_run_paths_expand(args, 1, &paths, &n, err, sizeof err) == 2 && strstr(err, "no .h5"));
}

int main(void) {
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char reference_paths[N_REF][512], ref_path[512];
    const char *reference_runs[N_REF];
    write_reference_runs(reference_paths);
    for (int s = 0; s < N_REF; s++) reference_runs[s] = reference_paths[s];

    test_naming();
    test_build_and_read_back(reference_runs, ref_path, sizeof ref_path);
    test_no_temporary_left();
    test_build_refusals(reference_runs);
    test_good_run_passes(ref_path);
    test_slow_run_fails_band_with_epochs(ref_path);
    test_fast_run_fails_rcp(ref_path);
    test_set_of_runs(ref_path);
    test_check_errors(ref_path);
    test_lookup_by_name(reference_runs);
    test_directory_expansion();

    char command[600];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    if (system(command) != 0) printf("could not remove %s\n", dir);
    return report_checks();
}
