/* `optbench report`: runs pooled into configurations, their statistics,
 * baselines and the metrics paper numbers are matched on (ob_report.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/ob_check.h"
#include "harness/ob_fail.h"
#include "harness/ob_report.h"

/* ---- statistics ------------------------------------------------------------ */

ob_report_stat ob_report_stat_of(const double *values, int n) {
    ob_report_stat stat = {.mean = NAN, .std = NAN, .count = n};
    if (n == 0) return stat;
    double sum = 0, squares = 0;
    for (int i = 0; i < n; i++) sum += values[i];
    stat.mean = sum / n;
    for (int i = 0; i < n; i++) squares += (values[i] - stat.mean) * (values[i] - stat.mean);
    if (n >= 2) stat.std = sqrt(squares / (n - 1));
    return stat;
}

/* Relative variance of a mean: (s^2 / n) / m^2. */
static double relative_variance_of_mean(const ob_report_stat *s) {
    return s->std * s->std / s->count / (s->mean * s->mean);
}

ob_report_ratio ob_report_ratio_of(const ob_report_stat *baseline, const ob_report_stat *group) {
    ob_report_ratio r = {.ratio = NAN, .se = NAN};
    if (baseline->count == 0 || group->count == 0 || group->mean == 0) return r;
    r.ratio = baseline->mean / group->mean;
    if (baseline->count >= 2 && group->count >= 2)
        r.se = r.ratio * sqrt(relative_variance_of_mean(baseline) + relative_variance_of_mean(group));
    return r;
}

/* ---- configurations ------------------------------------------------------- */

static const char *setting(const ob_report_group *g, const char *key) { return ob_config_get_str(g->config, key); }

static bool same_setting(const ob_report_group *a, const ob_report_group *b, const char *key) {
    return strcmp(setting(a, key), setting(b, key)) == 0;
}

/* The reference name of a configuration (sgd, sgd+kfac, sgd-fp16-dynamic). */
static int configuration_name(const ob_config *config, char *out, size_t out_len) {
    /* ob_reference_name only reads these four fields. */
    ob_run_identity id = {.optimizer = (char *)ob_config_get_str(config, "run.optimizer"),
                          .precond = (char *)ob_config_get_str(config, "run.precond"),
                          .precision = (char *)ob_config_get_str(config, "run.precision"),
                          .loss_scale = (char *)ob_config_get_str(config, "run.loss_scale")};
    return ob_reference_name(&id, out, out_len);
}

static bool same_configuration(const ob_report_group *g, const ob_run_record *record) {
    return g->world_size == record->world_size &&
           ob_reference_next_config_difference(g->config, record->config, 0) < 0;
}

/* Whether two groups would print the same workload, preset, ranks and configuration name. */
static bool same_row_label(const ob_report_group *a, const ob_report_group *b, const char *a_name, const char *b_name) {
    return strcmp(a->workload, b->workload) == 0 && strcmp(a->preset, b->preset) == 0 &&
           a->world_size == b->world_size && strcmp(a_name, b_name) == 0;
}

static int add_group(ob_report *report, const ob_run_record *record) {
    ob_report_group *grown = realloc(report->groups, (size_t)(report->n_groups + 1) * sizeof *grown);
    if (!grown) return 1;
    report->groups = grown;
    ob_report_group *g = &grown[report->n_groups++];
    /* No baseline until choose_baselines finds one: no speedups either. */
    *g = (ob_report_group){.config = record->config, .world_size = record->world_size, .baseline = -1,
                           .speedup_time = {NAN, NAN}, .speedup_epochs = {NAN, NAN}, .kfac_peer = -1,
                           .runs = calloc((size_t)report->n_runs, sizeof(int))};
    g->workload = ob_config_get_str(record->config, "run.workload");
    g->preset = ob_config_get_str(record->config, "run.preset");
    return g->runs ? 0 : 1;
}

/* Groups in the order of their first run. */
static int pool_runs(ob_report *report) {
    for (int r = 0; r < report->n_runs; r++) {
        const ob_run_record *record = &report->runs[r].record;
        if (!record->config) continue; /* known by its status alone: listed, in no group */
        int g = 0;
        while (g < report->n_groups && !same_configuration(&report->groups[g], record)) g++;
        if (g == report->n_groups && add_group(report, record)) return 1;
        report->groups[g].runs[report->groups[g].n_runs++] = r;
    }
    return 0;
}

/* Appends " key=value" for each key in which g differs from a group that
 * would otherwise print the same row label. */
static int name_distinguishing_settings(ob_report *report, int g, const char *base_names, char *err, size_t err_len) {
    int n_keys;
    const ob_config_key *keys = ob_config_keys(&n_keys);
    bool *differs = calloc((size_t)n_keys, sizeof *differs);
    if (!differs) return 1;
    ob_report_group *group = &report->groups[g];
    for (int h = 0; h < report->n_groups; h++) {
        const ob_report_group *other = &report->groups[h];
        if (h == g || !same_row_label(group, other, base_names + (size_t)g * OB_REPORT_NAME_MAX,
                                      base_names + (size_t)h * OB_REPORT_NAME_MAX))
            continue;
        for (int k = ob_reference_next_config_difference(group->config, other->config, 0); k >= 0;
             k = ob_reference_next_config_difference(group->config, other->config, k + 1))
            differs[k] = true;
    }
    size_t length = strlen(group->name);
    for (int k = 0; k < n_keys && length < sizeof group->name; k++)
        if (differs[k])
            length += (size_t)snprintf(group->name + length, sizeof group->name - length, " %s=%s", keys[k].key,
                                       ob_config_get_str(group->config, keys[k].key));
    free(differs);
    return length < sizeof group->name ? 0 : ob_fail(err, err_len, "configuration name too long: %s", group->name);
}

static int name_groups(ob_report *report, char *err, size_t err_len) {
    char *base_names = calloc((size_t)report->n_groups, OB_REPORT_NAME_MAX);
    if (!base_names) return 1;
    int rc = 0;
    for (int g = 0; g < report->n_groups && !rc; g++) {
        rc = configuration_name(report->groups[g].config, report->groups[g].name, OB_REPORT_NAME_MAX);
        memcpy(base_names + (size_t)g * OB_REPORT_NAME_MAX, report->groups[g].name, OB_REPORT_NAME_MAX);
    }
    if (rc) rc = ob_fail(err, err_len, "configuration name too long");
    for (int g = 0; g < report->n_groups && !rc; g++)
        rc = name_distinguishing_settings(report, g, base_names, err, err_len);
    free(base_names);
    return rc;
}

/* ---- statistics per group ------------------------------------------------- */

typedef double (*run_quantity)(const ob_report_run *run);

static double epochs_to_target(const ob_report_run *run) { return run->record.epochs_to_target; }
static double time_to_target(const ob_report_run *run) { return run->time_to_target_s; }
static double final_metric(const ob_report_run *run) { return run->final_metric; }
static double skipped_steps(const ob_report_run *run) { return run->skipped_steps; }
static double underflow_frac(const ob_report_run *run) { return run->underflow_frac; }
static double comm_per_step(const ob_report_run *run) {
    return run->steps > 0 ? run->comm_bytes / (double)run->steps : NAN;
}
static double kfac_comm_per_step(const ob_report_run *run) {
    return run->steps > 0 ? run->kfac_comm_bytes / (double)run->steps : NAN;
}

/* The quantity over the group's final runs where it is finite, into values. */
static ob_report_stat group_stat(const ob_report *report, const ob_report_group *g, run_quantity quantity,
                                 double *values) {
    int n = 0;
    for (int i = 0; i < g->n_runs; i++) {
        const ob_report_run *run = &report->runs[g->runs[i]];
        double value = run->final ? quantity(run) : NAN;
        if (isfinite(value)) values[n++] = value;
    }
    return ob_report_stat_of(values, n);
}

static ob_report_stat memory_stat(const ob_report *report, const ob_report_group *g, int category,
                                  double *values) {
    int n = 0;
    for (int i = 0; i < g->n_runs; i++) {
        const ob_report_run *run = &report->runs[g->runs[i]];
        for (int c = 0; run->final && c < run->n_memory; c++)
            if (strcmp(run->memory_category[c], report->categories[category]) == 0) values[n++] = run->memory_bytes[c];
    }
    return ob_report_stat_of(values, n);
}

static void count_outcomes(const ob_report *report, ob_report_group *g) {
    for (int i = 0; i < g->n_runs; i++) {
        const ob_report_run *run = &report->runs[g->runs[i]];
        g->n_final += run->final;
        g->n_converged += run->final && strcmp(run->record.status, "converged") == 0;
    }
}

static void describe_group(const ob_report *report, ob_report_group *g, double *values) {
    count_outcomes(report, g);
    g->epochs = group_stat(report, g, epochs_to_target, values);
    g->olympic_epochs = g->epochs.count >= OB_REPORT_OLYMPIC_MIN ? ob_olympic(values, g->epochs.count).mean : NAN;
    g->time_s = group_stat(report, g, time_to_target, values);
    g->final_metric = group_stat(report, g, final_metric, values);
    g->comm_per_step = group_stat(report, g, comm_per_step, values);
    g->kfac_comm_per_step = group_stat(report, g, kfac_comm_per_step, values);
    g->skipped_steps = group_stat(report, g, skipped_steps, values);
    g->underflow_frac = group_stat(report, g, underflow_frac, values);
    for (int c = 0; c < report->n_categories; c++) g->memory[c] = memory_stat(report, g, c, values);
}

/* ---- baselines and peers ---------------------------------------------------- */

static bool is_plain_fp32(const ob_report_group *g) {
    return strcmp(setting(g, "run.precond"), "none") == 0 && strcmp(setting(g, "run.precision"), "fp32") == 0 &&
           strcmp(setting(g, "run.loss_scale"), "none") == 0;
}

/* The best candidate of g's workload and preset: same world size first, then same optimizer, then table order. */
static int closest_candidate(const ob_report *report, int g, bool (*candidate)(const ob_report_group *, const void *),
                             const void *context) {
    const ob_report_group *group = &report->groups[g];
    int best = -1, best_score = -1;
    for (int h = 0; h < report->n_groups; h++) {
        const ob_report_group *other = &report->groups[h];
        if (strcmp(other->workload, group->workload) != 0 || strcmp(other->preset, group->preset) != 0 ||
            !candidate(other, context))
            continue;
        int score = 2 * (other->world_size == group->world_size) + same_setting(other, group, "run.optimizer");
        if (score > best_score) {
            best = h;
            best_score = score;
        }
    }
    return best;
}

static bool is_named(const ob_report_group *g, const void *name) { return strcmp(g->name, name) == 0; }
static bool is_default_baseline(const ob_report_group *g, const void *unused) {
    (void)unused;
    return is_plain_fp32(g);
}

/* D-KFAC's counterpart of a DP-KFAC group: precond kfac, the rest of its name alike, same world size. */
static bool is_kfac_peer(const ob_report_group *g, const void *dp_group) {
    const ob_report_group *dp = dp_group;
    return g->world_size == dp->world_size && strcmp(setting(g, "run.precond"), "kfac") == 0 &&
           same_setting(g, dp, "run.optimizer") && same_setting(g, dp, "run.precision") &&
           same_setting(g, dp, "run.loss_scale");
}

static int choose_baselines(ob_report *report, const char *baseline, char *err, size_t err_len) {
    bool named_found = false;
    for (int g = 0; g < report->n_groups; g++) {
        ob_report_group *group = &report->groups[g];
        group->baseline = baseline ? closest_candidate(report, g, is_named, baseline)
                                   : closest_candidate(report, g, is_default_baseline, NULL);
        named_found |= group->baseline >= 0;
        if (strcmp(setting(group, "run.precond"), "dp-kfac") == 0)
            group->kfac_peer = closest_candidate(report, g, is_kfac_peer, group);
    }
    if (baseline && !named_found)
        return ob_fail(err, err_len, "--baseline: no configuration named %s among the runs", baseline);
    for (int g = 0; g < report->n_groups; g++) {
        ob_report_group *group = &report->groups[g];
        if (group->baseline < 0) continue;
        const ob_report_group *base = &report->groups[group->baseline];
        bool own = group->baseline == g; /* exactly 1, with no spread */
        group->speedup_time = own ? (ob_report_ratio){1, NAN} : ob_report_ratio_of(&base->time_s, &group->time_s);
        group->speedup_epochs = own ? (ob_report_ratio){1, NAN} : ob_report_ratio_of(&base->epochs, &group->epochs);
    }
    return 0;
}

int ob_report_group_runs(ob_report *report, const char *baseline, char *err, size_t err_len) {
    double *values = malloc((size_t)(report->n_runs + 1) * sizeof *values);
    int rc = values ? pool_runs(report) : 1;
    if (!rc) rc = name_groups(report, err, err_len);
    for (int g = 0; g < report->n_groups && !rc; g++) describe_group(report, &report->groups[g], values);
    if (!rc) rc = choose_baselines(report, baseline, err, err_len);
    free(values);
    return rc;
}

int ob_report_category_index(const ob_report *report, const char *category) {
    for (int c = 0; c < report->n_categories; c++)
        if (strcmp(report->categories[c], category) == 0) return c;
    return -1;
}

/* ---- metrics ----------------------------------------------------------------- */

static const char *const METRIC_NAMES[OB_METRIC_COUNT] = {
    [OB_METRIC_EPOCHS_TO_TARGET] = "epochs_to_target",
    [OB_METRIC_TIME_TO_TARGET_S] = "time_to_target_s",
    [OB_METRIC_SPEEDUP_TIME] = "speedup_time",
    [OB_METRIC_SPEEDUP_EPOCHS] = "speedup_epochs",
    [OB_METRIC_TIME_REDUCTION_PCT] = "time_to_target_reduction_pct",
    [OB_METRIC_FINAL_METRIC_PCT] = "final_metric_pct",
    [OB_METRIC_FINAL_METRIC_GAP_PCT] = "final_metric_gap_pct",
    [OB_METRIC_COMM_RATIO_VS_KFAC] = "comm_ratio_vs_kfac",
    [OB_METRIC_MEMORY_RATIO_VS_KFAC] = "memory_ratio_vs_kfac",
};

const char *ob_report_metric_name(ob_report_metric metric) { return METRIC_NAMES[metric]; }

int ob_report_metric_find(const char *name) {
    for (int m = 0; m < OB_METRIC_COUNT; m++)
        if (strcmp(METRIC_NAMES[m], name) == 0) return m;
    return -1;
}

static double total_memory(const ob_report *report, const ob_report_group *g) {
    int c = ob_report_category_index(report, "total_accounted");
    return c >= 0 ? g->memory[c].mean : NAN;
}

double ob_report_metric_value(const ob_report *report, int group, ob_report_metric metric) {
    const ob_report_group *g = &report->groups[group];
    const ob_report_group *base = g->baseline >= 0 ? &report->groups[g->baseline] : NULL;
    const ob_report_group *peer = g->kfac_peer >= 0 ? &report->groups[g->kfac_peer] : NULL;
    switch (metric) {
    case OB_METRIC_EPOCHS_TO_TARGET: return g->epochs.mean;
    case OB_METRIC_TIME_TO_TARGET_S: return g->time_s.mean;
    case OB_METRIC_SPEEDUP_TIME: return g->speedup_time.ratio;
    case OB_METRIC_SPEEDUP_EPOCHS: return g->speedup_epochs.ratio;
    case OB_METRIC_TIME_REDUCTION_PCT: return base ? 100 * (1 - g->time_s.mean / base->time_s.mean) : NAN;
    case OB_METRIC_FINAL_METRIC_PCT: return 100 * g->final_metric.mean;
    case OB_METRIC_FINAL_METRIC_GAP_PCT: return base ? 100 * (base->final_metric.mean - g->final_metric.mean) : NAN;
    case OB_METRIC_COMM_RATIO_VS_KFAC:
        return peer ? peer->kfac_comm_per_step.mean / g->kfac_comm_per_step.mean : NAN;
    case OB_METRIC_MEMORY_RATIO_VS_KFAC: return peer ? total_memory(report, peer) / total_memory(report, g) : NAN;
    case OB_METRIC_COUNT: break;
    }
    return NAN;
}
