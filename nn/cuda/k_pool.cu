/* Max-pooling and global average pooling over NHWC images, one thread per
 * output element (forward) or input element (backward). Max-pool backward
 * gathers: each dx element adds, in output order, the dy of the windows
 * whose argmax is it, so it needs no atomics and adds in the CPU's order. */
#include <stdint.h>

extern "C" {
#include "nn/ob_backend.h"
}
#include "nn/cuda/cuda_backend_kernels.h"
#include "nn/cuda/cuda_launch.cuh"

namespace {

/* y[b, oh, ow, c] = max over the window's in-image taps; the first of equal
 * maxima wins, padding never does, and a NaN wins and stays (as the CPU). */
struct maxpool_forward_op {
    ob_pool2d_geom g;
    const float *x;
    float *y;
    int32_t *argmax;
    __device__ void operator()(int64_t i) const {
        int c = (int)(i % g.channels), ow = (int)(i / g.channels % g.out_w),
            oh = (int)(i / g.channels / g.out_w % g.out_h);
        int64_t b = i / g.channels / g.out_w / g.out_h;
        int ih0 = oh * g.stride - g.pad, iw0 = ow * g.stride - g.pad;
        float best = 0.0f;
        int64_t where = -1;
        for (int ih = ih0 > 0 ? ih0 : 0; ih < ih0 + g.kernel && ih < g.in_h; ih++)
            for (int iw = iw0 > 0 ? iw0 : 0; iw < iw0 + g.kernel && iw < g.in_w; iw++) {
                int64_t at = ((b * g.in_h + ih) * g.in_w + iw) * g.channels + c;
                float v = x[at];
                if (where < 0 || v > best || v != v) {
                    best = v;
                    where = at;
                }
            }
        y[i] = best;
        argmax[i] = (int32_t)where;
    }
};

/* First output index o with o * stride - pad + kernel > i (windows reaching i),
 * and the last with o * stride - pad <= i, clipped to [0, out). */
__device__ int first_window(int i, int pad, int kernel, int stride) {
    int reach = i + pad - kernel + 1;
    return reach <= 0 ? 0 : (reach + stride - 1) / stride;
}
__device__ int last_window(int i, int pad, int stride, int out) {
    int last = (i + pad) / stride;
    return last < out - 1 ? last : out - 1;
}

/* dx[j] += dy[o] for every output o (in order) with argmax[o] == j */
struct maxpool_backward_op {
    ob_pool2d_geom g;
    const int32_t *argmax;
    const float *dy;
    float *dx;
    __device__ void operator()(int64_t j) const {
        int c = (int)(j % g.channels), iw = (int)(j / g.channels % g.in_w),
            ih = (int)(j / g.channels / g.in_w % g.in_h);
        int64_t b = j / g.channels / g.in_w / g.in_h;
        float acc = dx[j];
        int oh_last = last_window(ih, g.pad, g.stride, g.out_h),
            ow_last = last_window(iw, g.pad, g.stride, g.out_w);
        for (int oh = first_window(ih, g.pad, g.kernel, g.stride); oh <= oh_last; oh++)
            for (int ow = first_window(iw, g.pad, g.kernel, g.stride); ow <= ow_last; ow++) {
                int64_t o = ((b * g.out_h + oh) * g.out_w + ow) * g.channels + c;
                if (argmax[o] == j) acc += dy[o];
            }
        dx[j] = acc;
    }
};

/* y[b, c] = (sum_p x[b, p, c]) / hw, summed in float in p order as the CPU */
struct gap_forward_op {
    int64_t hw, channels;
    const float *x;
    float *y;
    __device__ void operator()(int64_t i) const {
        int64_t b = i / channels, c = i % channels;
        float sum = 0.0f;
        for (int64_t p = 0; p < hw; p++) sum += x[(b * hw + p) * channels + c];
        y[i] = sum / (float)hw;
    }
};

/* dx[b, p, c] += dy[b, c] / hw */
struct gap_backward_op {
    int64_t hw, channels;
    const float *dy;
    float *dx;
    __device__ void operator()(int64_t i) const {
        int64_t c = i % channels, b = i / channels / hw;
        dx[i] += dy[b * channels + c] / (float)hw;
    }
};

} // namespace

extern "C" void cuda_k_maxpool2d_forward(const ob_pool2d_geom *g, const float *x, float *y, int32_t *argmax) {
    ob_cuda_map(g->batch * g->out_h * g->out_w * g->channels, maxpool_forward_op{*g, x, y, argmax});
}

extern "C" void cuda_k_maxpool2d_backward(const ob_pool2d_geom *g, const int32_t *argmax, const float *dy,
                                          float *dx) {
    ob_cuda_map(g->batch * g->in_h * g->in_w * g->channels, maxpool_backward_op{*g, argmax, dy, dx});
}

extern "C" void cuda_k_global_avgpool_forward(int64_t batch, int64_t hw, int64_t channels, const float *x,
                                              float *y) {
    ob_cuda_map(batch * channels, gap_forward_op{hw, channels, x, y});
}

extern "C" void cuda_k_global_avgpool_backward(int64_t batch, int64_t hw, int64_t channels, const float *dy,
                                               float *dx) {
    ob_cuda_map(batch * hw * channels, gap_backward_op{hw, channels, dy, dx});
}
