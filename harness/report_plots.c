/* `optbench report --plot`: convergence curves with the reference band,
 * time-to-target bars and memory against communication (ob_report.h),
 * drawn with the primitives of report_canvas.h. */
#define _DEFAULT_SOURCE /* access */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/ob_check.h"
#include "harness/ob_fail.h"
#include "harness/ob_report.h"
#include "harness/report_canvas.h"

#define MIB (1024.0 * 1024.0)
#define BAND_POINTS 64
#define MAX_TARGETS 8
/* Margins around the data area: room for tick labels, axis titles and the legend. */
#define LEFT_MARGIN 90.0
#define TOP_MARGIN 60.0
#define BOTTOM_MARGIN 80.0
#define LEGEND_WIDTH 290.0
#define NAMES_WIDTH 300.0 /* the bar chart's group names */

static ob_plot_axes axes_with_margins(cairo_t *cr, double left, double right) {
    return (ob_plot_axes){.cr = cr, .left = left, .top = TOP_MARGIN, .width = OB_REPORT_PLOT_WIDTH - left - right,
                          .height = OB_REPORT_PLOT_HEIGHT - TOP_MARGIN - BOTTOM_MARGIN};
}

static void fit_axes(ob_plot_axes *axes, double x_min, double x_max, double y_min, double y_max) {
    axes->x_min = x_min;
    axes->x_max = x_max;
    axes->y_min = y_min;
    axes->y_max = y_max;
    axes->x_step = ob_plot_nice_range(&axes->x_min, &axes->x_max);
    axes->y_step = ob_plot_nice_range(&axes->y_min, &axes->y_max);
}

static void widen(double value, double *low, double *high) {
    if (!isfinite(value)) return;
    if (value < *low) *low = value;
    if (value > *high) *high = value;
}

/* ---- convergence -------------------------------------------------------------- */

/* A reference's band (ob_check.h's band test: mean +- max(k std, abs_tol)) at
 * evenly spaced epochs where enough seeds cover it. */
typedef struct {
    int n;
    double epoch[BAND_POINTS], lower[BAND_POINTS], upper[BAND_POINTS];
} reference_band;

static void band_of(const ob_reference *ref, reference_band *band) {
    double first = INFINITY, last = -INFINITY;
    for (int s = 0; s < ref->n_seeds; s++) {
        widen(ref->seeds[s].epoch[0], &first, &last);
        widen(ref->seeds[s].epoch[ref->seeds[s].n_points - 1], &first, &last);
    }
    band->n = 0;
    for (int i = 0; i < BAND_POINTS; i++) {
        double epoch = first + (last - first) * i / (BAND_POINTS - 1);
        ob_band_point point =
            ob_band_test_point(ref->seeds, ref->n_seeds, epoch, 0, OB_BAND_K_DEFAULT, OB_BAND_ABS_TOL_DEFAULT);
        if (point.verdict == OB_BAND_NOT_TESTED) continue;
        band->epoch[band->n] = epoch;
        band->lower[band->n] = point.lower;
        band->upper[band->n++] = point.upper;
    }
}

/* The group's first final run: only final runs carry their identity. NULL when none. */
static const ob_report_run *first_final_run(const ob_report *report, const ob_report_group *group) {
    for (int i = 0; i < group->n_runs; i++)
        if (report->runs[group->runs[i]].final) return &report->runs[group->runs[i]];
    return NULL;
}

/* The reference of each group that has one; a reference that exists but cannot be read is an error. */
static int read_bands(const ob_report *report, const char *reference_dir, reference_band *bands, char *err,
                      size_t err_len) {
    for (int g = 0; g < report->n_groups; g++) {
        const ob_report_run *first = first_final_run(report, &report->groups[g]);
        char path[4096];
        bands[g].n = 0;
        if (!first || ob_reference_path(reference_dir, &first->record.id, path, sizeof path) ||
            access(path, F_OK) != 0)
            continue;
        ob_reference ref;
        if (ob_reference_read(path, &ref, err, err_len)) return 2;
        band_of(&ref, &bands[g]);
        ob_reference_free(&ref);
    }
    return 0;
}

typedef struct {
    const ob_report *report;
    const reference_band *bands;
} convergence_plot;

/* The distinct targets of the final runs, at most MAX_TARGETS. */
static int distinct_targets(const ob_report *report, double *targets) {
    int n = 0;
    for (int r = 0; r < report->n_runs; r++) {
        const ob_report_run *run = &report->runs[r];
        int t = 0;
        while (t < n && targets[t] != run->record.id.target_value) t++;
        if (run->final && t == n && n < MAX_TARGETS) targets[n++] = run->record.id.target_value;
    }
    return n;
}

static const char *metric_label(const ob_report *report) {
    for (int r = 0; r < report->n_runs; r++)
        if (report->runs[r].final) return report->runs[r].record.id.target_metric;
    return "eval metric";
}

static void fit_convergence_axes(const convergence_plot *plot, const double *targets, int n_targets,
                                 ob_plot_axes *axes) {
    double x_low = 0, x_high = 0, y_low = INFINITY, y_high = -INFINITY;
    for (int r = 0; r < plot->report->n_runs; r++) {
        const ob_run_record *record = &plot->report->runs[r].record;
        for (int i = 0; plot->report->runs[r].final && i < record->n_eval; i++) {
            widen(record->eval_epoch[i], &x_low, &x_high);
            widen(record->eval_metric[i], &y_low, &y_high);
        }
    }
    for (int g = 0; g < plot->report->n_groups; g++)
        for (int i = 0; i < plot->bands[g].n; i++) {
            widen(plot->bands[g].epoch[i], &x_low, &x_high);
            widen(plot->bands[g].lower[i], &y_low, &y_high);
            widen(plot->bands[g].upper[i], &y_low, &y_high);
        }
    for (int t = 0; t < n_targets; t++) widen(targets[t], &y_low, &y_high);
    fit_axes(axes, x_low, x_high, isfinite(y_low) ? y_low : 0, isfinite(y_high) ? y_high : 1);
}

static void draw_band(const ob_plot_axes *axes, const reference_band *band, int color) {
    if (band->n < 2) return;
    for (int i = 0; i < band->n; i++)
        cairo_line_to(axes->cr, ob_plot_x(axes, band->epoch[i]), ob_plot_y(axes, band->upper[i]));
    for (int i = band->n - 1; i >= 0; i--)
        cairo_line_to(axes->cr, ob_plot_x(axes, band->epoch[i]), ob_plot_y(axes, band->lower[i]));
    cairo_close_path(axes->cr);
    ob_plot_color(axes->cr, color, 0.2);
    cairo_fill(axes->cr);
}

/* One path per run: its eval metric against epochs. */
static void draw_curve(const ob_plot_axes *axes, const ob_run_record *record, int color) {
    for (int i = 0; i < record->n_eval; i++)
        cairo_line_to(axes->cr, ob_plot_x(axes, record->eval_epoch[i]), ob_plot_y(axes, record->eval_metric[i]));
    ob_plot_color(axes->cr, color, 1);
    cairo_set_line_width(axes->cr, OB_PLOT_CURVE_WIDTH);
    cairo_stroke(axes->cr);
}

static void draw_target(const ob_plot_axes *axes, double target) {
    cairo_save(axes->cr);
    cairo_set_source_rgb(axes->cr, 0.3, 0.3, 0.3);
    cairo_set_dash(axes->cr, (const double[]){6, 4}, 2, 0);
    cairo_set_line_width(axes->cr, 1.5);
    cairo_move_to(axes->cr, axes->left, ob_plot_y(axes, target));
    cairo_line_to(axes->cr, axes->left + axes->width, ob_plot_y(axes, target));
    cairo_stroke(axes->cr);
    cairo_restore(axes->cr);
}

static void paint_convergence(cairo_t *cr, const void *data) {
    const convergence_plot *plot = data;
    const ob_report *report = plot->report;
    double targets[MAX_TARGETS];
    int n_targets = distinct_targets(report, targets);
    ob_plot_axes axes = axes_with_margins(cr, LEFT_MARGIN, LEGEND_WIDTH);
    fit_convergence_axes(plot, targets, n_targets, &axes);
    ob_plot_page(cr, "Convergence: one curve per run, shaded: reference band");
    ob_plot_clip(&axes);
    for (int g = 0; g < report->n_groups; g++) draw_band(&axes, &plot->bands[g], g);
    for (int t = 0; t < n_targets; t++) draw_target(&axes, targets[t]);
    for (int g = 0; g < report->n_groups; g++)
        for (int i = 0; i < report->groups[g].n_runs; i++) {
            const ob_report_run *run = &report->runs[report->groups[g].runs[i]];
            if (run->final) draw_curve(&axes, &run->record, g);
        }
    ob_plot_unclip(&axes);
    ob_plot_frame(&axes, "epoch", metric_label(report), true);
    int row = 0;
    for (int g = 0; g < report->n_groups; g++) {
        char label[OB_REPORT_NAME_MAX + 32];
        snprintf(label, sizeof label, "%s, %lld rank%s", report->groups[g].name,
                 (long long)report->groups[g].world_size, report->groups[g].world_size == 1 ? "" : "s");
        ob_plot_color(cr, g, 1);
        ob_plot_legend(&axes, row++, OB_PLOT_LINE, label);
        ob_plot_color(cr, g, 0.2);
        if (plot->bands[g].n) ob_plot_legend(&axes, row++, OB_PLOT_BAND, "its reference band");
    }
    for (int t = 0; t < n_targets; t++) {
        char label[64];
        snprintf(label, sizeof label, "target %g", targets[t]);
        cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
        ob_plot_legend(&axes, row++, OB_PLOT_DASHED, label);
    }
}

/* ---- time to target ------------------------------------------------------------ */

static double group_row_y(const ob_plot_axes *axes, int n_groups, int g) {
    return axes->top + (g + 0.5) * axes->height / n_groups;
}

static void fit_time_axes(const ob_report *report, ob_plot_axes *axes) {
    double low = 0, high = 0;
    for (int g = 0; g < report->n_groups; g++) {
        const ob_report_group *group = &report->groups[g];
        widen(group->time_s.mean + (isfinite(group->time_s.std) ? group->time_s.std : 0), &low, &high);
        for (int i = 0; i < group->n_runs; i++) widen(report->runs[group->runs[i]].time_to_target_s, &low, &high);
    }
    fit_axes(axes, low, high, 0, 1);
}

/* A bar to the mean, a whisker over mean +- std, a dot per converged run. */
static void draw_time_bar(const ob_plot_axes *axes, const ob_report *report, int g, double y, double thickness) {
    const ob_report_group *group = &report->groups[g];
    cairo_t *cr = axes->cr;
    double x0 = ob_plot_x(axes, 0);
    ob_plot_color(cr, g, 0.75);
    cairo_rectangle(cr, x0, y - thickness / 2, ob_plot_x(axes, group->time_s.mean) - x0, thickness);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1.5);
    if (isfinite(group->time_s.std)) {
        double low = ob_plot_x(axes, group->time_s.mean - group->time_s.std);
        double high = ob_plot_x(axes, group->time_s.mean + group->time_s.std);
        cairo_move_to(cr, low, y - thickness / 4);
        cairo_line_to(cr, low, y + thickness / 4);
        cairo_move_to(cr, low, y);
        cairo_line_to(cr, high, y);
        cairo_move_to(cr, high, y - thickness / 4);
        cairo_line_to(cr, high, y + thickness / 4);
        cairo_stroke(cr);
    }
    for (int i = 0; i < group->n_runs; i++) {
        double t = report->runs[group->runs[i]].time_to_target_s;
        if (isfinite(t)) ob_plot_marker(cr, ob_plot_x(axes, t), y, 3.5, false);
    }
}

static void paint_time_to_target(cairo_t *cr, const void *data) {
    const ob_report *report = data;
    ob_plot_axes axes = axes_with_margins(cr, NAMES_WIDTH, 40);
    fit_time_axes(report, &axes);
    ob_plot_page(cr, "Time to target: mean +- std over converged runs, one ring per run");
    double thickness = fmin(40, 0.6 * axes.height / report->n_groups);
    for (int g = 0; g < report->n_groups; g++) {
        const ob_report_group *group = &report->groups[g];
        double y = group_row_y(&axes, report->n_groups, g);
        char label[OB_REPORT_NAME_MAX + 32];
        cairo_set_source_rgb(cr, 0, 0, 0);
        snprintf(label, sizeof label, "%s (%lld)", group->name, (long long)group->world_size);
        ob_plot_text(cr, axes.left - 8, y, 1, 0.5, label);
        if (group->n_converged > 0) {
            draw_time_bar(&axes, report, g, y, thickness);
            continue;
        }
        snprintf(label, sizeof label, "target not reached (0 of %d runs)", group->n_final);
        ob_plot_text(cr, axes.left + 8, y, 0, 0.5, label);
    }
    ob_plot_frame(&axes, "time to target (s of training, train_s)", "configuration (ranks)", false);
}

/* ---- memory against communication ------------------------------------------------ */

static double memory_mib(const ob_report *report, const ob_report_group *group, const char *category) {
    int c = ob_report_category_index(report, category);
    return c >= 0 && isfinite(group->memory[c].mean) ? group->memory[c].mean / MIB : 0;
}

static double kfac_memory_mib(const ob_report *report, const ob_report_group *group) {
    return memory_mib(report, group, "kfac_factors") + memory_mib(report, group, "kfac_inverses");
}

static bool has_point(const ob_report_group *group) { return isfinite(group->comm_per_step.mean); }

static void paint_memory_vs_comm(cairo_t *cr, const void *data) {
    const ob_report *report = data;
    ob_plot_axes axes = axes_with_margins(cr, LEFT_MARGIN, LEGEND_WIDTH);
    double x_high = 0, y_high = 0, low = 0;
    for (int g = 0; g < report->n_groups; g++)
        if (has_point(&report->groups[g])) {
            widen(report->groups[g].comm_per_step.mean / MIB, &low, &x_high);
            widen(memory_mib(report, &report->groups[g], "total_accounted"), &low, &y_high);
        }
    fit_axes(&axes, 0, x_high, 0, y_high);
    ob_plot_page(cr, "Peak memory against communication per step (rank 0)");
    for (int g = 0; g < report->n_groups; g++) {
        const ob_report_group *group = &report->groups[g];
        if (!has_point(group)) continue;
        double x = ob_plot_x(&axes, group->comm_per_step.mean / MIB);
        double y = ob_plot_y(&axes, memory_mib(report, group, "total_accounted"));
        double kfac = kfac_memory_mib(report, group);
        ob_plot_color(cr, g, 1);
        ob_plot_marker(cr, x, y, 6, true);
        if (kfac > 0) ob_plot_marker(cr, x, ob_plot_y(&axes, kfac), 6, false);
        cairo_set_source_rgb(cr, 0, 0, 0);
        ob_plot_text(cr, x + 10, y - 4, 0, 1, group->name);
    }
    ob_plot_frame(&axes, "communication per step (MiB, rank 0, training traffic)", "peak memory (MiB, rank 0)", true);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    ob_plot_legend(&axes, 0, OB_PLOT_DOT, "total accounted memory");
    ob_plot_legend(&axes, 1, OB_PLOT_RING, "K-FAC factors + inverses");
}

/* ---- all plots ------------------------------------------------------------------- */

int ob_report_write_plots(const ob_report *report, const char *prefix, const char *reference_dir,
                          ob_text *written, char *err, size_t err_len) {
    if (report->n_groups == 0) return ob_fail(err, err_len, "--plot: no runs to plot");
    reference_band *bands = calloc((size_t)report->n_groups, sizeof *bands);
    if (!bands) return 1;
    convergence_plot convergence = {report, bands};
    int rc = read_bands(report, reference_dir, bands, err, err_len);
    if (!rc) rc = ob_plot_write(prefix, "convergence", paint_convergence, &convergence, written, err, err_len);
    if (!rc) rc = ob_plot_write(prefix, "time_to_target", paint_time_to_target, report, written, err, err_len);
    if (!rc) rc = ob_plot_write(prefix, "memory_vs_comm", paint_memory_vs_comm, report, written, err, err_len);
    free(bands);
    return rc;
}
