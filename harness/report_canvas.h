/* Internal to harness/report_*.c: the chart primitives the report's plots
 * are drawn with (report_canvas.c), on cairo.
 *
 * Why cairo and not PLplot: PLplot ends the process through plexit() when
 * its output file or driver fails, and keeps its state in a global stream;
 * this harness returns errors and holds no global mutable state. Cairo's
 * surfaces report failure as a status, one library writes both PNG and SVG
 * without run-time driver plug-ins, it needs no display (image and SVG
 * surfaces are headless), and each stroke is one SVG <path>, so a test can
 * count the curves. The price is drawing axes, ticks and legends here.
 *
 * Every plot is OB_REPORT_PLOT_WIDTH x OB_REPORT_PLOT_HEIGHT pixels: the PNG
 * at one pixel per unit, the SVG with px as its document unit. */
#ifndef OB_REPORT_CANVAS_H
#define OB_REPORT_CANVAS_H

#include <stdbool.h>
#include <stddef.h>

#include <cairo.h>

#include "harness/ob_text.h"

/* Curves are drawn this wide; frames, ticks and guides thinner. */
#define OB_PLOT_CURVE_WIDTH 2.0

typedef struct {
    cairo_t *cr;
    double left, top, width, height; /* the data area, in pixels */
    double x_min, x_max, x_step;     /* data range and tick spacing */
    double y_min, y_max, y_step;
} ob_plot_axes;

/* Widens [*low, *high] to whole multiples of a 1-2-5 tick step, about six
 * ticks, and returns the step; an empty range becomes [low, low + 1]. */
double ob_plot_nice_range(double *low, double *high);
/* Data coordinates to pixels. */
double ob_plot_x(const ob_plot_axes *axes, double x);
double ob_plot_y(const ob_plot_axes *axes, double y);

/* A white page with the title on top. */
void ob_plot_page(cairo_t *cr, const char *title);
/* The frame, x ticks, and y ticks unless y_ticks is false (a category axis). */
void ob_plot_frame(const ob_plot_axes *axes, const char *x_label, const char *y_label, bool y_ticks);
/* Restricts drawing to the data area until ob_plot_unclip. */
void ob_plot_clip(const ob_plot_axes *axes);
void ob_plot_unclip(const ob_plot_axes *axes);

/* The index-th colour of a fixed palette (it repeats), with alpha. */
void ob_plot_color(cairo_t *cr, int index, double alpha);
/* Text whose ink box is placed by (x, y): align_x 0 left, 0.5 centre, 1
 * right; align_y the same from top to bottom. */
void ob_plot_text(cairo_t *cr, double x, double y, double align_x, double align_y, const char *text);

/* Legend rows in the margin right of the data area: a sample (a line, a
 * dashed line, a filled or a hollow dot) in the current source colour, and
 * the label. */
typedef enum { OB_PLOT_LINE, OB_PLOT_DASHED, OB_PLOT_BAND, OB_PLOT_DOT, OB_PLOT_RING } ob_plot_mark;
void ob_plot_legend(const ob_plot_axes *axes, int row, ob_plot_mark mark, const char *label);
/* A dot (filled) or ring (hollow) of that radius at a pixel position. */
void ob_plot_marker(cairo_t *cr, double x, double y, double radius, bool filled);

typedef void (*ob_plot_painter)(cairo_t *cr, const void *data);
/* Paints PREFIX-NAME.png and PREFIX-NAME.svg and appends "plot: PATH\n"
 * for each to written; a file that could not be finished is removed. 0 or 2. */
int ob_plot_write(const char *prefix, const char *name, ob_plot_painter paint, const void *data, ob_text *written,
                  char *err, size_t err_len);

#endif
