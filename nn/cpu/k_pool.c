/* Max-pooling and global average pooling over NHWC images.
 *
 * Forward loops split over output rows, backward loops over images: every
 * window, and every argmax, lies inside one image, so each dx element is
 * updated by one thread in a fixed order and results are the same for any
 * thread count. Channels are the innermost loop, contiguous in NHWC.
 */
#include <stdbool.h>

#include "nn/cpu/real.h"
#include "nn/cpu/kernels.h"

/* Window taps [*first, *last) of a pool window starting at `start` that lie in [0, extent). */
static void pool_taps(int start, int extent, int kernel, int *first, int *last) {
    *first = start < 0 ? -start : 0;
    *last = extent - start < kernel ? extent - start : kernel;
}

/* best[c] = max over the window's in-image taps of x[b, ih, iw, c]; where[c] = its flat
 * index in x. Padding never wins (it counts as -inf); the first of equal maxima wins,
 * and a NaN wins and stays, as in PyTorch. The op guarantees a non-empty window. */
static void maxpool_pixel(const ob_pool2d_geom *g, const ob_real *x, int64_t b, int oh, int ow,
                          ob_real *best, int32_t *where) {
    int ih0 = oh * g->stride - g->pad, iw0 = ow * g->stride - g->pad;
    int kh_first, kh_last, kw_first, kw_last;
    pool_taps(ih0, g->in_h, g->kernel, &kh_first, &kh_last);
    pool_taps(iw0, g->in_w, g->kernel, &kw_first, &kw_last);
    int channels = g->channels;
    for (int kh = kh_first; kh < kh_last; kh++)
        for (int kw = kw_first; kw < kw_last; kw++) {
            int64_t at = ((b * g->in_h + ih0 + kh) * g->in_w + iw0 + kw) * channels;
            bool first_tap = kh == kh_first && kw == kw_first;
            for (int c = 0; c < channels; c++) {
                ob_real v = x[at + c];
                if (first_tap || v > best[c] || v != v) {
                    best[c] = v;
                    where[c] = (int32_t)(at + c);
                }
            }
        }
}

/* y[b, oh, ow, c] = max_{kh, kw} x[b, oh*stride - pad + kh, ow*stride - pad + kw, c] */
void OB_FN(k_maxpool2d_forward)(const ob_pool2d_geom *g, const ob_real *x, ob_real *y, int32_t *argmax) {
    int64_t image_rows = g->batch * g->out_h;
#pragma omp parallel for schedule(static)
    for (int64_t image_row = 0; image_row < image_rows; image_row++)
        for (int ow = 0; ow < g->out_w; ow++) {
            int64_t at = (image_row * g->out_w + ow) * g->channels;
            maxpool_pixel(g, x, image_row / g->out_h, (int)(image_row % g->out_h), ow, y + at, argmax + at);
        }
}

/* dx[argmax[i]] += dy[i] */
void OB_FN(k_maxpool2d_backward)(const ob_pool2d_geom *g, const int32_t *argmax, const ob_real *dy,
                                 ob_real *dx) {
    int64_t per_image = (int64_t)g->out_h * g->out_w * g->channels;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < g->batch; b++)
        for (int64_t i = b * per_image; i < (b + 1) * per_image; i++) dx[argmax[i]] += dy[i];
}

/* y[b, c] = (1/hw) sum_p x[b, p, c] */
void OB_FN(k_global_avgpool_forward)(int64_t batch, int64_t hw, int64_t channels, const ob_real *x,
                                     ob_real *y) {
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < batch; b++) {
        ob_real *sum = y + b * channels;
        for (int64_t c = 0; c < channels; c++) sum[c] = 0;
        for (int64_t p = 0; p < hw; p++)
            for (int64_t c = 0; c < channels; c++) sum[c] += x[(b * hw + p) * channels + c];
        for (int64_t c = 0; c < channels; c++) sum[c] /= (ob_real)hw;
    }
}

/* dx[b, p, c] += dy[b, c] / hw */
void OB_FN(k_global_avgpool_backward)(int64_t batch, int64_t hw, int64_t channels, const ob_real *dy,
                                      ob_real *dx) {
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t p = 0; p < hw; p++)
            for (int64_t c = 0; c < channels; c++)
                dx[(b * hw + p) * channels + c] += dy[b * channels + c] / hw;
}
