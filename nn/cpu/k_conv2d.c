/* Convolution as im2col + GEMM (NHWC activations, weights [out_c, kh, kw, in_c]).
 *
 * Row r = (b, oh, ow) of the column matrix holds output pixel r's receptive
 * field ordered (kh, kw, ic), like a row of w, so with M = batch*out_h*out_w
 *   y[M, out_c] = cols[M, patch] . w[out_c, patch]^T
 * is a single GEMM. In NHWC a pixel's in_c values are contiguous, and so are
 * the pixels along an image row, so each kernel row of a patch is one copy
 * (dilation 1) or kernel_w copies of in_c values (dilated), plus zeros where
 * the window hangs over the padding.
 *
 * Threads: im2col splits over output rows and col2im over input rows (each
 * gathers what it receives), every element is written by one thread in a
 * fixed order and nothing is reduced across threads, so these loops give the
 * same bits for any thread count. GEMMs run outside parallel regions, on
 * OpenBLAS's own threads.
 */
#include <stdbool.h>
#include <string.h>

#include "nn/cpu/real.h"
#include "nn/cpu/kernels.h"

/* The part of output pixel (oh, ow)'s window inside the image: kernel rows
 * [kh_first, kh_last) and columns [kw_first, kw_last). The in-image columns
 * of a kernel row move as `runs` runs of `run` values each: with dilation 1
 * adjacent taps are adjacent pixels, so one run covers all of them. */
typedef struct {
    int ih0, iw0; /* image coordinates of tap (0, 0), possibly in the padding */
    int kh_first, kh_last, kw_first, kw_last;
    int runs;
    int64_t run;
} conv_window;

/* Taps [*first, *last) of a `taps`-tap kernel keep start + t*dilation in [0, extent). */
static void valid_taps(int start, int extent, int taps, int dilation, int *first, int *last) {
    int lo = start >= 0 ? 0 : (-start + dilation - 1) / dilation;
    int hi = start < extent ? (extent - start + dilation - 1) / dilation : 0;
    *first = lo < taps ? lo : taps;
    *last = hi < taps ? hi : taps;
    if (*last < *first) *last = *first;
}

static conv_window pixel_window(const ob_conv2d_geom *g, int oh, int ow) {
    conv_window win;
    win.ih0 = oh * g->stride - g->pad;
    win.iw0 = ow * g->stride - g->pad;
    valid_taps(win.ih0, g->in_h, g->kernel_h, g->dilation, &win.kh_first, &win.kh_last);
    valid_taps(win.iw0, g->in_w, g->kernel_w, g->dilation, &win.kw_first, &win.kw_last);
    int taps = win.kw_last - win.kw_first;
    win.runs = g->dilation == 1 ? (taps > 0) : taps;
    win.run = (int64_t)(g->dilation == 1 ? taps : 1) * g->in_c;
    return win;
}

static bool window_is_full(const ob_conv2d_geom *g, const conv_window *win) {
    return win->kh_first == 0 && win->kh_last == g->kernel_h && win->kw_first == 0 &&
           win->kw_last == g->kernel_w;
}

/* Offset of tap (kh, kw) in a patch row, and of x[ih, iw, 0] in an image. */
static int64_t tap_offset(const ob_conv2d_geom *g, int kh, int kw) {
    return ((int64_t)kh * g->kernel_w + kw) * g->in_c;
}
static int64_t pixel_offset(const ob_conv2d_geom *g, const conv_window *win, int kh, int kw) {
    int ih = win->ih0 + kh * g->dilation, iw = win->iw0 + kw * g->dilation;
    return ((int64_t)ih * g->in_w + iw) * g->in_c;
}

/* row[(kh, kw, ic)] = image[ih(kh), iw(kw), ic], 0 in the padding. */
static void im2col_pixel(const ob_conv2d_geom *g, const ob_real *image, int oh, int ow, ob_real *row) {
    conv_window win = pixel_window(g, oh, ow);
    if (!window_is_full(g, &win)) memset(row, 0, (size_t)ob_conv2d_patch_size(g) * sizeof *row);
    for (int kh = win.kh_first; kh < win.kh_last; kh++)
        for (int r = 0; r < win.runs; r++) {
            int kw = win.kw_first + r;
            memcpy(row + tap_offset(g, kh, kw), image + pixel_offset(g, &win, kh, kw),
                   (size_t)win.run * sizeof *row);
        }
}

/* image[ih(kh), iw(kw), ic] += row[(kh, kw, ic)] for one kernel row kh: the adjoint of
 * im2col_pixel, one image row at a time. */
static void col2im_pixel_row(const ob_conv2d_geom *g, const ob_real *row, int oh, int ow, int kh,
                             ob_real *image) {
    conv_window win = pixel_window(g, oh, ow);
    for (int r = 0; r < win.runs; r++) {
        int kw = win.kw_first + r;
        const ob_real *src = row + tap_offset(g, kh, kw);
        ob_real *dst = image + pixel_offset(g, &win, kh, kw);
#pragma omp simd
        for (int64_t i = 0; i < win.run; i++) dst[i] += src[i];
    }
}

static int64_t image_size(const ob_conv2d_geom *g) { return (int64_t)g->in_h * g->in_w * g->in_c; }

/* cols[(b, oh, ow), (kh, kw, ic)] = x[b, oh*stride - pad + kh*dilation, ow*stride - pad + kw*dilation, ic] */
void OB_FN(k_im2col)(const ob_conv2d_geom *g, const ob_real *x, ob_real *cols) {
    int64_t patch = ob_conv2d_patch_size(g), image_rows = g->batch * g->out_h;
#pragma omp parallel for schedule(static)
    for (int64_t image_row = 0; image_row < image_rows; image_row++) {
        const ob_real *image = x + (image_row / g->out_h) * image_size(g);
        int oh = (int)(image_row % g->out_h);
        for (int ow = 0; ow < g->out_w; ow++)
            im2col_pixel(g, image, oh, ow, cols + (image_row * g->out_w + ow) * patch);
    }
}

/* dx[b, ih, iw, ic] += every dcols entry that im2col copied from x[b, ih, iw, ic].
 * Image row ih gathers from the patches (oh, ow) and kernel rows kh with
 * oh*stride - pad + kh*dilation = ih, so threads own disjoint dx rows. */
static void col2im_add(const ob_conv2d_geom *g, const ob_real *dcols, ob_real *dx) {
    int64_t patch = ob_conv2d_patch_size(g), pixels = (int64_t)g->out_h * g->out_w;
    int64_t image_rows = g->batch * g->in_h;
#pragma omp parallel for schedule(static)
    for (int64_t image_row = 0; image_row < image_rows; image_row++) {
        int64_t b = image_row / g->in_h;
        int ih = (int)(image_row % g->in_h);
        for (int kh = 0; kh < g->kernel_h; kh++) {
            int offset = ih + g->pad - kh * g->dilation;
            int oh = offset / g->stride;
            if (offset < 0 || offset % g->stride != 0 || oh >= g->out_h) continue;
            for (int ow = 0; ow < g->out_w; ow++)
                col2im_pixel_row(g, dcols + (b * pixels + (int64_t)oh * g->out_w + ow) * patch, oh, ow, kh,
                                 dx + b * image_size(g));
        }
    }
}

/* y[r, :] = bias for every row r */
static void broadcast_rows(int64_t rows, int64_t width, const ob_real *bias, ob_real *y) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) memcpy(y + r * width, bias, (size_t)width * sizeof *y);
}

#define SUM_ROWS_PER_CHUNK 1024
#define SUM_COLUMNS_PER_BLOCK 256

/* sums[c] += sum_r m[r, c]. Partial sums over fixed row chunks are added in
 * chunk order, so the result does not depend on the thread count; chunks are
 * dealt round-robin (static, 1) so the ordered adds do not serialise. */
static void column_sums_add(int64_t rows, int64_t width, const ob_real *m, ob_real *sums) {
    int64_t chunks = (rows + SUM_ROWS_PER_CHUNK - 1) / SUM_ROWS_PER_CHUNK;
    for (int64_t c0 = 0; c0 < width; c0 += SUM_COLUMNS_PER_BLOCK) {
        int64_t block = width - c0 < SUM_COLUMNS_PER_BLOCK ? width - c0 : SUM_COLUMNS_PER_BLOCK;
#pragma omp parallel for ordered schedule(static, 1)
        for (int64_t chunk = 0; chunk < chunks; chunk++) {
            ob_real partial[SUM_COLUMNS_PER_BLOCK] = {0};
            int64_t end = (chunk + 1) * SUM_ROWS_PER_CHUNK < rows ? (chunk + 1) * SUM_ROWS_PER_CHUNK : rows;
            for (int64_t r = chunk * SUM_ROWS_PER_CHUNK; r < end; r++)
                for (int64_t c = 0; c < block; c++) partial[c] += m[r * width + c0 + c];
#pragma omp ordered
            for (int64_t c = 0; c < block; c++) sums[c0 + c] += partial[c];
        }
    }
}

/* Non-pointwise convs run im2col + GEMM (GEMM + col2im in backward) one block of
 * images at a time, so the GEMM finds the block of the column matrix that was
 * just written still in cache. Measured on 2 Zen cores, 3x3 16->16 on
 * [128, 32, 32, 16]: 1 to 4 MiB blocks are ~1.7x faster than one whole-batch
 * pass, 16 MiB blocks gain little. Each block hands the cores from OpenMP to
 * OpenBLAS and back, which is cheap only when idle threads of either pool
 * sleep soon (OMP_WAIT_POLICY=passive and OPENBLAS_THREAD_TIMEOUT, or an
 * OpenMP build of OpenBLAS); with both pools' default busy-waiting every
 * hand-off oversubscribes the cores and blocking loses. */
#define BLOCK_BYTES ((int64_t)4 << 20)

static int64_t images_per_block(const ob_conv2d_geom *g) {
    int64_t image_bytes = (int64_t)g->out_h * g->out_w * ob_conv2d_patch_size(g) * (int64_t)sizeof(ob_real);
    return BLOCK_BYTES > image_bytes ? BLOCK_BYTES / image_bytes : 1;
}

/* The geometry of images [b0, b0 + step) of g's batch (fewer at the end). */
static ob_conv2d_geom image_block(const ob_conv2d_geom *g, int64_t b0, int64_t step) {
    ob_conv2d_geom block = *g;
    block.batch = g->batch - b0 < step ? g->batch - b0 : step;
    return block;
}

/* y[M, out_c] = cols[M, patch] . w[out_c, patch]^T + bias, M = batch*out_h*out_w.
 * A pointwise conv's column matrix is x itself, so it is one GEMM. */
void OB_FN(k_conv2d_forward)(const ob_conv2d_geom *g, const ob_real *x, const ob_real *w,
                             const ob_real *bias, ob_real *y, ob_real *cols) {
    int64_t pixels = (int64_t)g->out_h * g->out_w, patch = ob_conv2d_patch_size(g);
    bool pointwise = ob_conv2d_is_pointwise(g);
    /* Starting y at the bias lets the GEMMs add it (beta = 1) in their own pass over y. */
    if (bias) broadcast_rows(g->batch * pixels, g->out_c, bias, y);
    int64_t step = pointwise ? g->batch : images_per_block(g);
    for (int64_t b0 = 0; b0 < g->batch; b0 += step) {
        ob_conv2d_geom block = image_block(g, b0, step);
        const ob_real *block_cols = x + b0 * image_size(g);
        if (!pointwise) {
            OB_FN(k_im2col)(&block, block_cols, cols + b0 * pixels * patch);
            block_cols = cols + b0 * pixels * patch;
        }
        int block_rows = (int)(block.batch * pixels);
        OB_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, block_rows, g->out_c, (int)patch, 1, block_cols,
                (int)patch, w, (int)patch, bias ? 1 : 0, y + b0 * pixels * g->out_c, g->out_c);
    }
}

/* dw += dy^T . cols;  dbias += column sums of dy;
 * dx += col2im(dy . w), or dx += dy . w directly when pointwise.
 * Blocks reuse the start of dcols, which then stays in cache. */
void OB_FN(k_conv2d_backward)(const ob_conv2d_geom *g, const ob_real *x, const ob_real *w,
                              const ob_real *dy, ob_real *dx, ob_real *dw, ob_real *dbias,
                              const ob_real *cols, ob_real *dcols) {
    int64_t pixels = (int64_t)g->out_h * g->out_w, rows = g->batch * pixels;
    int64_t patch = ob_conv2d_patch_size(g);
    bool pointwise = ob_conv2d_is_pointwise(g);
    if (dw)
        OB_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, g->out_c, (int)patch, (int)rows, 1, dy, g->out_c,
                pointwise ? x : cols, (int)patch, 1, dw, (int)patch);
    if (dbias) column_sums_add(rows, g->out_c, dy, dbias);
    if (!dx) return;
    int64_t step = pointwise ? g->batch : images_per_block(g);
    for (int64_t b0 = 0; b0 < g->batch; b0 += step) {
        ob_conv2d_geom block = image_block(g, b0, step);
        ob_real *block_dx = dx + b0 * image_size(g);
        int block_rows = (int)(block.batch * pixels);
        OB_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, block_rows, (int)patch, g->out_c, 1,
                dy + b0 * pixels * g->out_c, g->out_c, w, (int)patch, pointwise ? 1 : 0,
                pointwise ? block_dx : dcols, (int)patch);
        if (!pointwise) col2im_add(&block, dcols, block_dx);
    }
}
