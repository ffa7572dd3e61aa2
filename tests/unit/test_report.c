/* `optbench report` (harness/ob_report.h) on synthetic run files whose
 * numbers are chosen here, so every statistic can be worked by hand:
 *
 *   sgd (baseline)      5 seeds, all converged: epochs 2.0 2.25 2.5 2.0 1.75,
 *                       time 100 110 120 105 95 s
 *   sgd+kfac            seeds 1-2 converged (epochs 1.5 1.75, time 90 100 s),
 *                       seed 3 budget_exhausted, seed 4 still running
 *   sgd-fp16-dynamic    one converged run with skipped steps and /precision rows
 *   sgd-fqt, fqt.bits 5 and 8: one run each, named apart by that key
 *   sgd+dp-kfac         one run whose K-FAC traffic and memory are compared
 *                       with sgd+kfac's
 * The tables are compared with tests/golden/report/ (OB_UPDATE_GOLDEN=1
 * rewrites them); the files are written under relative paths from a
 * temporary working directory, so nothing machine-dependent is printed.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, open_memstream */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/ob_h5log.h"
#include "harness/ob_report.h"
#include "ob_check.h"

#ifndef OB_SOURCE_DIR
#error "OB_SOURCE_DIR must be defined: tests/CMakeLists.txt sets it"
#endif
#define GOLDEN_DIR OB_SOURCE_DIR "/tests/golden/report"
#define MIB (1024.0 * 1024.0)

static bool near(double a, double b) { return fabs(a - b) <= 1e-9 * fmax(1, fabs(b)); }

/* ---- synthetic runs ---------------------------------------------------------- */

typedef struct {
    const char *file, *precond, *precision, *loss_scale, *fqt_bits, *status;
    int64_t seed;
    double epochs_to_target, time_to_target_s, skipped_steps; /* skipped_steps NaN: attribute left out */
    double total_mib, kfac_mib;
    int64_t grads_bytes, kfac_bytes; /* /comm of rank 0 over the run's 10 steps */
} run_spec;

#define STEPS 10

static char *config_text(const run_spec *r) {
    ob_config *config = ob_config_new();
    char seed[32];
    snprintf(seed, sizeof seed, "%lld", (long long)r->seed);
    const char *settings[][2] = {{"run.preset", "smoke"},      {"run.precond", r->precond},
                                 {"run.precision", r->precision}, {"run.loss_scale", r->loss_scale},
                                 {"run.seed", seed},           {"fqt.bits", r->fqt_bits ? r->fqt_bits : "8"}};
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        CHECK(ob_config_set(config, settings[i][0], settings[i][1], NULL, 0) == 0);
    char *text = ob_config_to_ini(config);
    ob_config_free(config);
    return text;
}

static void write_identity(ob_h5log *log, const run_spec *r) {
    const char *strings[][2] = {
        {"optbench_version", "0.1.0"}, {"git_commit", "abc1234"},   {"created_utc", "2026-01-01T00:00:00Z"},
        {"hostname", "testhost"},      {"cpu_model", "Test CPU"},   {"gpu_model", ""},
        {"workload", "resnet50"},      {"preset", "smoke"},         {"optimizer", "sgd"},
        {"precond", r->precond},       {"precision", r->precision}, {"loss_scale", r->loss_scale},
        {"target_metric", "top1"},     {"target_direction", "max"}, {"status", r->status},
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        CHECK(ob_h5log_attr_str(log, strings[i][0], strings[i][1]) == 0);
    char *config = config_text(r);
    CHECK(ob_h5log_attr_str(log, "config", config) == 0);
    free(config);
}

static void write_outcome(ob_h5log *log, const run_spec *r) {
    const char *ints[] = {"world_size", "threads", "global_batch_size", "params", "steps_to_target"};
    const int64_t int_values[] = {1, 2, 32, 1000, -1};
    for (int i = 0; i < 5; i++) CHECK(ob_h5log_attr_int(log, ints[i], int_values[i]) == 0);
    CHECK(ob_h5log_attr_int(log, "seed", r->seed) == 0);
    CHECK(ob_h5log_attr_float(log, "target_value", 0.5) == 0);
    CHECK(ob_h5log_attr_float(log, "epochs_to_target", r->epochs_to_target) == 0);
    CHECK(ob_h5log_attr_float(log, "time_to_target_s", r->time_to_target_s) == 0);
    if (!isnan(r->skipped_steps)) CHECK(ob_h5log_attr_int(log, "skipped_steps", (int64_t)r->skipped_steps) == 0);
}

/* Eval points every 0.5 epoch up to the target epoch (or 3), metric 0.2 e + 0.1 + seed / 100. */
static void write_curve(ob_h5log *log, const run_spec *r) {
    double last = isfinite(r->epochs_to_target) ? r->epochs_to_target : 3.0;
    for (double epoch = 0.5; epoch <= last + 1e-9; epoch += 0.5) {
        ob_eval_row row = {(int64_t)(epoch * 4), epoch, epoch * 40, 1, 0.2 * epoch + 0.1 + r->seed / 100.0, 2, NULL};
        CHECK(ob_h5log_eval(log, &row) == 0);
    }
    for (int64_t step = 1; step <= STEPS; step++) {
        ob_train_row row = {step, step / 4.0, 32 * step, step * 10.0, 2.0, 0.1, 1, 1};
        CHECK(ob_h5log_train(log, &row) == 0);
    }
}

static void write_summaries(ob_h5log *log, const run_spec *r) {
    ob_memory_row memory[] = {{0, "params", (int64_t)(10 * MIB)},
                              {0, "kfac_factors", (int64_t)(r->kfac_mib * MIB / 2)},
                              {0, "kfac_inverses", (int64_t)(r->kfac_mib * MIB / 2)},
                              {0, "total_accounted", (int64_t)(r->total_mib * MIB)},
                              {1, "total_accounted", (int64_t)(999 * MIB)}}; /* rank 1: not in the report */
    for (size_t i = 0; i < sizeof memory / sizeof memory[0]; i++) CHECK(ob_h5log_memory(log, &memory[i]) == 0);
    ob_comm_row comm[] = {{0, "allreduce", "grads", r->grads_bytes, STEPS, 0.1},
                          {0, "broadcast", "precond_grads", r->kfac_bytes, STEPS, 0.1},
                          {0, "allreduce", "eval", 12345, 3, 0.1},      /* not training traffic */
                          {1, "allreduce", "grads", 777777, STEPS, 0.1}}; /* rank 1 */
    for (size_t i = 0; i < sizeof comm / sizeof comm[0]; i++) CHECK(ob_h5log_comm(log, &comm[i]) == 0);
    if (strcmp(r->precision, "fp16") != 0) return;
    /* Underflow over all values: (0.1 * 1000 + 0.4 * 3000) / 4000 = 0.325. */
    ob_precision_row precision[] = {{4, "conv1", 1024, 1000, 0.1, 0}, {4, "fc", 1024, 3000, 0.4, 0}};
    for (size_t i = 0; i < 2; i++) CHECK(ob_h5log_precision(log, &precision[i]) == 0);
}

static void write_run(const run_spec *r) {
    char err[512] = "";
    ob_h5log *log = NULL;
    CHECK(ob_h5log_create(&log, r->file, true, 0, NULL, err, sizeof err) == 0);
    if (!log) {
        printf("  %s\n", err);
        return;
    }
    write_identity(log, r);
    write_outcome(log, r);
    if (strcmp(r->status, "running") != 0) {
        write_curve(log, r);
        write_summaries(log, r);
    }
    CHECK(ob_h5log_close(log) == 0);
}

static run_spec converged(const char *file, const char *precond, int64_t seed, double epochs, double time_s) {
    return (run_spec){.file = file, .precond = precond, .precision = "fp32", .loss_scale = "none",
                      .status = "converged", .seed = seed, .epochs_to_target = epochs, .time_to_target_s = time_s,
                      .skipped_steps = 0, .total_mib = 100, .grads_bytes = 4000};
}

static run_spec not_converged(const char *file, const char *precond, int64_t seed, const char *status) {
    run_spec r = converged(file, precond, seed, NAN, NAN);
    r.status = status;
    return r;
}

static void write_runs(void) {
    CHECK(mkdir("runs", 0777) == 0);
    const double sgd_epochs[] = {2.0, 2.25, 2.5, 2.0, 1.75}, sgd_times[] = {100, 110, 120, 105, 95};
    const char *sgd_files[] = {"runs/a-sgd-1.h5", "runs/a-sgd-2.h5", "runs/a-sgd-3.h5", "runs/a-sgd-4.h5",
                               "runs/a-sgd-5.h5"};
    for (int s = 0; s < 5; s++) {
        run_spec r = converged(sgd_files[s], "none", s + 1, sgd_epochs[s], sgd_times[s]);
        write_run(&r);
    }
    run_spec kfac[] = {converged("runs/b-kfac-1.h5", "kfac", 1, 1.5, 90),
                       converged("runs/b-kfac-2.h5", "kfac", 2, 1.75, 100),
                       not_converged("runs/b-kfac-3.h5", "kfac", 3, "budget_exhausted"),
                       not_converged("runs/b-kfac-4.h5", "kfac", 4, "running")};
    for (int i = 0; i < 4; i++) {
        kfac[i].total_mib = 300;
        kfac[i].kfac_mib = 120;
        kfac[i].kfac_bytes = 4000; /* K-FAC 400 B/step, all training traffic 800 B/step */
        write_run(&kfac[i]);
    }
    run_spec fp16 = converged("runs/c-fp16.h5", "none", 1, 2.0, 80);
    fp16.precision = "fp16";
    fp16.loss_scale = "dynamic";
    fp16.skipped_steps = 3;
    write_run(&fp16);
    run_spec fqt5 = not_converged("runs/d-fqt5.h5", "none", 1, "budget_exhausted");
    fqt5.precision = "fqt";
    fqt5.fqt_bits = "5";
    fqt5.skipped_steps = NAN; /* a file from before skipped_steps */
    run_spec fqt8 = fqt5;
    fqt8.file = "runs/e-fqt8.h5";
    fqt8.fqt_bits = "8";
    write_run(&fqt5);
    write_run(&fqt8);
    run_spec dp = not_converged("runs/f-dp.h5", "dp-kfac", 1, "diverged");
    dp.total_mib = 200;
    dp.kfac_mib = 40;
    dp.kfac_bytes = 1000; /* K-FAC 100 B/step: 4x less than sgd+kfac */
    write_run(&dp);
}

static const char PAPERS[] =
    "paper,workload,configuration,metric,value,source\n"
    "KAISA,resnet50,run.precond=kfac,time_to_target_reduction_pct,18.1-36.3,\"Pauloski et al., SC'21\"\n"
    "DP-KFAC,*,run.precond=dp-kfac,comm_ratio_vs_kfac,2.79-3.15,\"Zhang et al., TCC 2022\"\n"
    "DP-KFAC,*,run.precond=dp-kfac,memory_ratio_vs_kfac,1.14-1.47,\"Zhang et al., TCC 2022\"\n"
    "FQT,resnet50,run.precision=fqt fqt.bits=5,final_metric_gap_pct,<= 0.5,\"Chen et al., NeurIPS 2020\"\n"
    "Elsewhere,bert,run.precond=kfac,speedup_time,2,\"no such workload here\"\n";

static void write_text(const char *path, const char *text) {
    FILE *file = fopen(path, "w");
    CHECK(file != NULL);
    if (!file) return;
    fputs(text, file);
    fclose(file);
}

/* ---- the report ----------------------------------------------------------------- */

static int build(ob_report *report, const char *baseline, char *err, size_t err_len) {
    ob_paper_row *papers = NULL;
    int n_papers = 0;
    int rc = ob_paper_rows_read("papers", &papers, &n_papers, err, err_len);
    CHECK(rc == 0 && n_papers == 5);
    char *dir[] = {"runs"}, **paths = NULL;
    int n_paths = 0;
    if (!rc) rc = ob_report_expand_paths(dir, 1, &paths, &n_paths, err, err_len);
    if (!rc)
        rc = ob_report_build((const char *const *)paths, n_paths, baseline, papers, n_papers, report, err, err_len);
    ob_run_paths_free(paths, n_paths);
    return rc;
}

static int group_named(const ob_report *report, const char *name) {
    for (int g = 0; g < report->n_groups; g++)
        if (strcmp(report->groups[g].name, name) == 0) return g;
    printf("  no group %s\n", name);
    return -1;
}

static void test_grouping(const ob_report *report) {
    CHECK(report->n_runs == 13 && report->n_groups == 6);
    static const char *const names[] = {"sgd", "sgd+kfac", "sgd-fp16-dynamic", "sgd-fqt fqt.bits=5",
                                        "sgd-fqt fqt.bits=8", "sgd+dp-kfac"};
    for (int g = 0; g < 6 && g < report->n_groups; g++) CHECK(strcmp(report->groups[g].name, names[g]) == 0);
    int kfac = group_named(report, "sgd+kfac");
    if (kfac < 0) return;
    const ob_report_group *g = &report->groups[kfac];
    CHECK(g->n_runs == 4 && g->n_final == 3 && g->n_converged == 2);
}

static void test_statistics_by_hand(const ob_report *report) {
    int sgd = group_named(report, "sgd"), kfac = group_named(report, "sgd+kfac");
    if (sgd < 0 || kfac < 0) return;
    const ob_report_group *a = &report->groups[sgd], *b = &report->groups[kfac];
    /* sgd epochs: mean 10.5 / 5 = 2.1; squared deviations .01 .0225 .16 .01 .1225 = .325, / 4. */
    CHECK(near(a->epochs.mean, 2.1) && near(a->epochs.std, sqrt(0.325 / 4)) && a->epochs.count == 5);
    /* olympic: drop 1.75 and 2.5, mean of 2.0 2.25 2.0. */
    CHECK(near(a->olympic_epochs, 6.25 / 3));
    /* times: mean 106, squared deviations 36 16 196 1 121 = 370, / 4. */
    CHECK(near(a->time_s.mean, 106) && near(a->time_s.std, sqrt(370.0 / 4)));
    CHECK(near(b->epochs.mean, 1.625) && near(b->time_s.mean, 95) && near(b->time_s.std, sqrt(50)));
    CHECK(isnan(b->olympic_epochs)); /* 2 converged runs: too few */
    CHECK(a->baseline == sgd && b->baseline == sgd);
    double speedup = 106.0 / 95.0;
    CHECK(near(b->speedup_time.ratio, speedup));
    CHECK(near(b->speedup_time.se, speedup * sqrt((370.0 / 4 / 5) / (106.0 * 106) + (50.0 / 2) / (95.0 * 95))));
    CHECK(near(b->speedup_epochs.ratio, 2.1 / 1.625));
    /* rank 0 only; eval traffic left out: (4000 + 4000) / 10 steps. */
    CHECK(near(b->comm_per_step.mean, 800) && near(b->kfac_comm_per_step.mean, 400));
    int total = ob_report_category_index(report, "total_accounted");
    CHECK(total >= 0 && near(b->memory[total].mean, 300 * MIB) && b->memory[total].count == 3);
    CHECK(near(ob_report_metric_value(report, kfac, OB_METRIC_TIME_REDUCTION_PCT), 100 * (1 - 95.0 / 106)));
}

static void test_precision_and_peers(const ob_report *report) {
    int fp16 = group_named(report, "sgd-fp16-dynamic"), fqt = group_named(report, "sgd-fqt fqt.bits=5");
    int dp = group_named(report, "sgd+dp-kfac"), kfac = group_named(report, "sgd+kfac");
    if (fp16 < 0 || fqt < 0 || dp < 0 || kfac < 0) return;
    CHECK(near(report->groups[fp16].skipped_steps.mean, 3) && near(report->groups[fp16].underflow_frac.mean, 0.325));
    CHECK(report->groups[fqt].skipped_steps.count == 0 && isnan(report->groups[fqt].underflow_frac.mean));
    CHECK(report->groups[dp].kfac_peer == kfac && report->groups[kfac].kfac_peer == -1);
    CHECK(near(ob_report_metric_value(report, dp, OB_METRIC_COMM_RATIO_VS_KFAC), 4.0));
    CHECK(near(ob_report_metric_value(report, dp, OB_METRIC_MEMORY_RATIO_VS_KFAC), 1.5));
    /* final metric: the last eval point, 0.2 * 3 + 0.1 + 0.01; the baseline's mean over seeds 1-5 at their targets. */
    double baseline_final = 0;
    const double sgd_epochs[] = {2.0, 2.25, 2.5, 2.0, 1.75};
    for (int s = 0; s < 5; s++) baseline_final += (0.2 * floor(sgd_epochs[s] * 2) / 2 + 0.1 + (s + 1) / 100.0) / 5;
    CHECK(near(ob_report_metric_value(report, fqt, OB_METRIC_FINAL_METRIC_GAP_PCT), 100 * (baseline_final - 0.71)));
    int sgd = group_named(report, "sgd");
    if (sgd >= 0) CHECK(near(report->groups[sgd].final_metric.mean, baseline_final));
    CHECK(near(report->groups[fqt].final_metric.mean, 0.71));
}

/* A report of the fp16 run alone has no sgd group to be its baseline: no
 * speedups (a "-", not a ratio of 0). */
static void test_without_baseline(void) {
    const char *paths[] = {"runs/c-fp16.h5"};
    ob_report report;
    char err[512] = "";
    CHECK(ob_report_build(paths, 1, NULL, NULL, 0, &report, err, sizeof err) == 0);
    if (report.n_groups != 1) return;
    CHECK(report.groups[0].baseline == -1 && isnan(report.groups[0].speedup_time.ratio) &&
          isnan(report.groups[0].speedup_epochs.ratio));
    char *text = NULL;
    size_t length = 0;
    FILE *out = open_memstream(&text, &length);
    CHECK(out && ob_report_write_table(&report, OB_REPORT_MARKDOWN, out, err, sizeof err) == 0);
    if (out) fclose(out);
    CHECK(text && strstr(text, "| 80.0 | - | - | - |") != NULL); /* time to target, baseline, both speedups */
    if (text && !strstr(text, "| 80.0 | - | - | - |")) printf("%s", text);
    free(text);
    ob_report_free(&report);
}

static void test_paper_matching(const ob_report *report) {
    int kfac = group_named(report, "sgd+kfac"), dp = group_named(report, "sgd+dp-kfac");
    int fqt5 = group_named(report, "sgd-fqt fqt.bits=5"), fqt8 = group_named(report, "sgd-fqt fqt.bits=8");
    if (kfac < 0 || dp < 0 || fqt5 < 0 || fqt8 < 0) return;
    const ob_paper_row *papers = report->papers;
    CHECK(ob_paper_row_matches(&papers[0], &report->groups[kfac]));
    CHECK(!ob_paper_row_matches(&papers[0], &report->groups[dp]));
    CHECK(ob_paper_row_matches(&papers[1], &report->groups[dp])); /* workload pattern * */
    CHECK(ob_paper_row_matches(&papers[3], &report->groups[fqt5]));
    CHECK(!ob_paper_row_matches(&papers[3], &report->groups[fqt8])); /* every KEY=PATTERN must match */
    CHECK(!ob_paper_row_matches(&papers[4], &report->groups[kfac])); /* another workload */
    CHECK(!ob_paper_row_used(report, 4));
    ob_text cell = {0};
    ob_report_paper_cell(report, kfac, &cell);
    CHECK(strcmp(ob_text_str(&cell), "time_to_target_reduction_pct: 10.38 measured, 18.1-36.3 paper (KAISA)") == 0);
    ob_text_free(&cell);
    ob_report_paper_cell(report, group_named(report, "sgd"), &cell);
    CHECK(cell.length == 0);
    ob_text_free(&cell);
}

/* The table as the CLI writes it, against the golden file. */
static void compare_table(const ob_report *report, ob_report_format format, const char *golden_name) {
    char *text = NULL, err[256] = "";
    size_t length = 0;
    FILE *out = open_memstream(&text, &length);
    CHECK(out && ob_report_write_table(report, format, out, err, sizeof err) == 0);
    if (out) fclose(out);
    char golden_path[1024];
    snprintf(golden_path, sizeof golden_path, "%s/%s", GOLDEN_DIR, golden_name);
    if (getenv("OB_UPDATE_GOLDEN")) write_text(golden_path, text ? text : "");
    FILE *golden = fopen(golden_path, "r");
    char *expected = calloc(1 << 16, 1);
    size_t n = golden && expected ? fread(expected, 1, (1 << 16) - 1, golden) : 0;
    if (golden) fclose(golden);
    bool same = text && expected && n == length && memcmp(text, expected, n) == 0;
    if (!same) printf("  the %s table differs from %s:\n%s", golden_name, golden_path, text ? text : "");
    check(same, golden_name);
    free(text);
    free(expected);
}

static void test_named_baseline(void) {
    ob_report report;
    char err[512] = "";
    CHECK(build(&report, "sgd-fp16-dynamic", err, sizeof err) == 0);
    int kfac = group_named(&report, "sgd+kfac");
    if (kfac >= 0) CHECK(near(report.groups[kfac].speedup_time.ratio, 80.0 / 95.0));
    ob_report_free(&report);
    CHECK(build(&report, "adamw", err, sizeof err) == 2 && strstr(err, "--baseline: no configuration named adamw"));
}

/* ---- plots ------------------------------------------------------------------------------ */

static bool file_contains(const char *path, const char *needle) {
    FILE *file = fopen(path, "r");
    char *text = calloc(1 << 20, 1);
    size_t n = file && text ? fread(text, 1, (1 << 20) - 1, file) : 0;
    bool found = n > 0 && strstr(text, needle) != NULL;
    if (file) fclose(file);
    free(text);
    return found;
}

/* The five sgd seeds make a reference; its band shades the convergence plot. */
static void test_plots(const ob_report *report) {
    const char *seeds[] = {"runs/a-sgd-1.h5", "runs/a-sgd-2.h5", "runs/a-sgd-3.h5", "runs/a-sgd-4.h5",
                           "runs/a-sgd-5.h5"};
    ob_reference_build_options options = {.out = "refs/resnet50/smoke/sgd.h5", .command = "test"};
    char err[512] = "";
    CHECK(ob_reference_build(seeds, 5, &options, NULL, 0, err, sizeof err) == 0);
    ob_text written = {0};
    CHECK(mkdir("plots", 0777) == 0);
    CHECK(ob_report_write_plots(report, "plots/p", "refs", &written, err, sizeof err) == 0);
    CHECK(strstr(ob_text_str(&written), "plot: plots/p-memory_vs_comm.svg\n") != NULL);
    CHECK(file_contains("plots/p-convergence.svg", "fill-opacity:0.2;")); /* the band */
    CHECK(file_contains("plots/p-convergence.svg", "width=\"1000px\" height=\"700px\""));
    ob_text_free(&written);
    /* A directory that does not exist: 2, one line, nothing left behind. */
    CHECK(ob_report_write_plots(report, "nowhere/p", "refs", &written, err, sizeof err) == 2);
    CHECK(strstr(err, "cannot create plot nowhere/p-convergence.png: No such file or directory") != NULL);
    CHECK(written.length == 0 && access("nowhere", F_OK) != 0);
    ob_text_free(&written);
}

/* ---- errors ---------------------------------------------------------------------------- */

static void expect_error(const char *what, char *const *args, int n_args, const char *needle) {
    char err[512] = "", **paths = NULL;
    int n_paths = 0;
    ob_report report;
    int rc = ob_report_expand_paths(args, n_args, &paths, &n_paths, err, sizeof err);
    if (!rc) rc = ob_report_build((const char *const *)paths, n_paths, NULL, NULL, 0, &report, err, sizeof err);
    ob_run_paths_free(paths, n_paths);
    bool ok = rc == 2 && strstr(err, needle) && !strchr(err, '\n');
    if (!ok) printf("  %s: rc %d, \"%s\", expected 2 and \"%s\"\n", what, rc, err, needle);
    check(ok, what);
    if (!rc) ob_report_free(&report);
}

static void expect_paper_error(const char *what, const char *csv, const char *needle) {
    CHECK(mkdir("bad_papers", 0777) == 0 || access("bad_papers", F_OK) == 0);
    write_text("bad_papers/bad.csv", csv);
    char err[512] = "";
    ob_paper_row *rows = NULL;
    int n = 0, rc = ob_paper_rows_read("bad_papers", &rows, &n, err, sizeof err);
    bool ok = rc == 2 && strstr(err, needle) && rows == NULL;
    if (!ok) printf("  %s: rc %d, \"%s\", expected 2 and \"%s\"\n", what, rc, err, needle);
    check(ok, what);
}

static void test_errors(void) {
    expect_error("missing file", (char *[]){"runs/nope.h5"}, 1, "cannot read runs/nope.h5: No such file");
    write_text("corrupt.h5", "not an HDF5 file\n");
    expect_error("corrupt file", (char *[]){"corrupt.h5"}, 1, "corrupt.h5 is not an HDF5 file");
    CHECK(mkdir("empty", 0777) == 0);
    expect_error("no run files", (char *[]){"empty"}, 1, "directory empty holds no .h5 run files");
    expect_error("nothing given", NULL, 0, "expected run files or directories");
    expect_paper_error("paper header", "paper,workload\n", "expected the header");
    expect_paper_error("paper metric",
                       "paper,workload,configuration,metric,value,source\nP,*,,speed,1,s\n", "unknown metric speed");
    expect_paper_error("paper key",
                       "paper,workload,configuration,metric,value,source\nP,*,kfac.nope=1,speedup_time,1,s\n",
                       "kfac.nope");
    expect_paper_error("paper fields", "paper,workload,configuration,metric,value,source\nP,*,,speedup_time\n",
                       "record 2 has 4 fields, expected 6");
}

int main(void) {
    char dir[] = "/tmp/test_report.XXXXXX";
    if (!mkdtemp(dir) || chdir(dir) != 0) return 1;
    write_runs();
    CHECK(mkdir("papers", 0777) == 0);
    write_text("papers/test.csv", PAPERS);
    ob_report report;
    char err[512] = "";
    int built = build(&report, NULL, err, sizeof err);
    if (built) printf("  %s\n", err);
    CHECK(built == 0);
    if (built == 0) {
        test_grouping(&report);
        test_statistics_by_hand(&report);
        test_precision_and_peers(&report);
        test_paper_matching(&report);
        compare_table(&report, OB_REPORT_MARKDOWN, "report.md");
        compare_table(&report, OB_REPORT_CSV, "report.csv");
        test_plots(&report);
        ob_report_free(&report);
    }
    test_named_baseline();
    test_without_baseline();
    test_errors();
    if (checks_failed == 0) {
        char command[128];
        snprintf(command, sizeof command, "rm -rf %s", dir);
        CHECK(system(command) == 0);
    }
    return report_checks();
}
