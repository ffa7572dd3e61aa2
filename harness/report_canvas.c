/* Chart primitives on cairo for the report's plots (report_canvas.h). */
#include "harness/report_canvas.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cairo-svg.h>

#include "harness/ob_fail.h"
#include "harness/ob_report.h"

#define FONT "DejaVu Sans" /* Debian's fonts-dejavu-core; fontconfig substitutes another sans otherwise */
#define TEXT_SIZE 13.0
#define TITLE_SIZE 17.0
#define TICK_LENGTH 5.0
#define LEGEND_GAP 24.0
#define LEGEND_ROW 22.0

/* ---- scales ---------------------------------------------------------------- */

double ob_plot_nice_range(double *low, double *high) {
    if (!(*high > *low)) *high = *low + 1;
    double raw = (*high - *low) / 6;
    double magnitude = pow(10, floor(log10(raw)));
    double fraction = raw / magnitude;
    double step = (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * magnitude;
    *low = floor(*low / step + 1e-9) * step;
    *high = ceil(*high / step - 1e-9) * step;
    return step;
}

double ob_plot_x(const ob_plot_axes *axes, double x) {
    return axes->left + (x - axes->x_min) / (axes->x_max - axes->x_min) * axes->width;
}

double ob_plot_y(const ob_plot_axes *axes, double y) {
    return axes->top + axes->height - (y - axes->y_min) / (axes->y_max - axes->y_min) * axes->height;
}

/* ---- text ------------------------------------------------------------------ */

void ob_plot_text(cairo_t *cr, double x, double y, double align_x, double align_y, const char *text) {
    cairo_text_extents_t extents;
    cairo_text_extents(cr, text, &extents);
    double ink_top = y - align_y * extents.height;
    cairo_move_to(cr, x - align_x * extents.x_advance, ink_top - extents.y_bearing);
    cairo_show_text(cr, text);
}

static void set_font(cairo_t *cr, double size) {
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

/* A tick label with as many decimals as the step needs. */
static void tick_label(double value, double step, char *label, size_t label_len) {
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(label, label_len, "%.*f", decimals, fabs(value) < step * 1e-9 ? 0.0 : value);
}

/* ---- page, frame, legend ------------------------------------------------------ */

void ob_plot_page(cairo_t *cr, const char *title) {
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    set_font(cr, TITLE_SIZE);
    ob_plot_text(cr, OB_REPORT_PLOT_WIDTH / 2.0, 18, 0.5, 0, title);
    set_font(cr, TEXT_SIZE);
}

static void tick(cairo_t *cr, double x0, double y0, double x1, double y1) {
    cairo_move_to(cr, x0, y0);
    cairo_line_to(cr, x1, y1);
}

void ob_plot_frame(const ob_plot_axes *axes, const char *x_label, const char *y_label, bool y_ticks) {
    cairo_t *cr = axes->cr;
    double bottom = axes->top + axes->height;
    char label[64];
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, axes->left, axes->top, axes->width, axes->height);
    int n_x = (int)lround((axes->x_max - axes->x_min) / axes->x_step);
    for (int i = 0; i <= n_x; i++) {
        double value = axes->x_min + i * axes->x_step, x = ob_plot_x(axes, value);
        tick(cr, x, bottom, x, bottom + TICK_LENGTH);
        tick_label(value, axes->x_step, label, sizeof label);
        ob_plot_text(cr, x, bottom + TICK_LENGTH + 4, 0.5, 0, label);
    }
    int n_y = y_ticks ? (int)lround((axes->y_max - axes->y_min) / axes->y_step) : -1;
    for (int i = 0; i <= n_y; i++) {
        double value = axes->y_min + i * axes->y_step, y = ob_plot_y(axes, value);
        tick(cr, axes->left - TICK_LENGTH, y, axes->left, y);
        tick_label(value, axes->y_step, label, sizeof label);
        ob_plot_text(cr, axes->left - TICK_LENGTH - 4, y, 1, 0.5, label);
    }
    cairo_stroke(cr);
    ob_plot_text(cr, axes->left + axes->width / 2, bottom + 32, 0.5, 0, x_label);
    cairo_save(cr);
    cairo_translate(cr, 22, axes->top + axes->height / 2);
    cairo_rotate(cr, -M_PI / 2);
    ob_plot_text(cr, 0, 0, 0.5, 0.5, y_label);
    cairo_restore(cr);
}

void ob_plot_clip(const ob_plot_axes *axes) {
    cairo_save(axes->cr);
    cairo_rectangle(axes->cr, axes->left, axes->top, axes->width, axes->height);
    cairo_clip(axes->cr);
}

void ob_plot_unclip(const ob_plot_axes *axes) { cairo_restore(axes->cr); }

/* Distinct hues first, then darker and lighter ones. */
static const double PALETTE[][3] = {
    {0.16, 0.38, 0.68}, {0.89, 0.44, 0.10}, {0.20, 0.60, 0.25}, {0.80, 0.15, 0.20}, {0.52, 0.36, 0.72},
    {0.55, 0.34, 0.26}, {0.88, 0.45, 0.72}, {0.45, 0.45, 0.45}, {0.70, 0.70, 0.15}, {0.10, 0.70, 0.78},
};

void ob_plot_color(cairo_t *cr, int index, double alpha) {
    const double *rgb = PALETTE[index % (int)(sizeof PALETTE / sizeof PALETTE[0])];
    cairo_set_source_rgba(cr, rgb[0], rgb[1], rgb[2], alpha);
}

void ob_plot_marker(cairo_t *cr, double x, double y, double radius, bool filled) {
    cairo_new_sub_path(cr);
    cairo_arc(cr, x, y, radius, 0, 2 * M_PI);
    cairo_set_line_width(cr, 1.5);
    if (filled)
        cairo_fill(cr);
    else
        cairo_stroke(cr);
}

void ob_plot_legend(const ob_plot_axes *axes, int row, ob_plot_mark mark, const char *label) {
    cairo_t *cr = axes->cr;
    double x = axes->left + axes->width + LEGEND_GAP, y = axes->top + 8 + row * LEGEND_ROW;
    cairo_save(cr);
    if (mark == OB_PLOT_DOT || mark == OB_PLOT_RING) {
        ob_plot_marker(cr, x + 12, y, 5, mark == OB_PLOT_DOT);
    } else if (mark == OB_PLOT_BAND) {
        cairo_rectangle(cr, x, y - 6, 24, 12);
        cairo_fill(cr);
    } else {
        if (mark == OB_PLOT_DASHED) cairo_set_dash(cr, (const double[]){6, 4}, 2, 0);
        cairo_set_line_width(cr, OB_PLOT_CURVE_WIDTH);
        tick(cr, x, y, x + 24, y);
        cairo_stroke(cr);
    }
    cairo_restore(cr);
    cairo_save(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    ob_plot_text(cr, x + 32, y, 0, 0.5, label);
    cairo_restore(cr);
}

/* ---- files ------------------------------------------------------------------- */

static cairo_status_t write_bytes(void *file, const unsigned char *data, unsigned int length) {
    return fwrite(data, 1, length, file) == length ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

static cairo_surface_t *new_surface(FILE *file, bool svg) {
    if (!svg) return cairo_image_surface_create(CAIRO_FORMAT_ARGB32, OB_REPORT_PLOT_WIDTH, OB_REPORT_PLOT_HEIGHT);
    cairo_surface_t *surface =
        cairo_svg_surface_create_for_stream(write_bytes, file, OB_REPORT_PLOT_WIDTH, OB_REPORT_PLOT_HEIGHT);
    cairo_svg_surface_set_document_unit(surface, CAIRO_SVG_UNIT_PX);
    return surface;
}

/* Paints into one surface and writes it to the open file. */
static cairo_status_t render(FILE *file, bool svg, ob_plot_painter paint, const void *data) {
    cairo_surface_t *surface = new_surface(file, svg);
    cairo_t *cr = cairo_create(surface);
    paint(cr, data);
    cairo_status_t status = cairo_status(cr);
    cairo_destroy(cr);
    if (status == CAIRO_STATUS_SUCCESS && svg) {
        cairo_surface_finish(surface);
        status = cairo_surface_status(surface);
    } else if (status == CAIRO_STATUS_SUCCESS) {
        status = cairo_surface_write_to_png_stream(surface, write_bytes, file);
    }
    cairo_surface_destroy(surface);
    return status;
}

static int write_file(const char *path, bool svg, ob_plot_painter paint, const void *data, char *err,
                      size_t err_len) {
    FILE *file = fopen(path, "wb");
    if (!file) return ob_fail(err, err_len, "cannot create plot %s: %s", path, strerror(errno));
    cairo_status_t status = render(file, svg, paint, data);
    int closed = fclose(file);
    if (status == CAIRO_STATUS_SUCCESS && closed == 0) return 0;
    unlink(path);
    return ob_fail(err, err_len, "cannot write plot %s: %s", path,
                   status != CAIRO_STATUS_SUCCESS ? cairo_status_to_string(status) : strerror(errno));
}

int ob_plot_write(const char *prefix, const char *name, ob_plot_painter paint, const void *data, ob_text *written,
                  char *err, size_t err_len) {
    static const char *const extensions[] = {"png", "svg"};
    for (int e = 0; e < 2; e++) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s-%s.%s", prefix, name, extensions[e]) >= (int)sizeof path)
            return ob_fail(err, err_len, "--plot: prefix too long: %s", prefix);
        if (write_file(path, e == 1, paint, data, err, err_len)) return 2;
        ob_text_printf(written, "plot: %s\n", path);
    }
    return 0;
}
