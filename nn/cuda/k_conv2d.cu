/* im2col for K-FAC's convolution factors (the convolutions themselves run
 * on cuDNN, conv_cudnn.c). One thread per column-matrix element; NHWC makes
 * consecutive threads read consecutive input channels. */
#include <stdint.h>

extern "C" {
#include "nn/ob_backend.h"
}
#include "nn/cuda/cuda_backend_kernels.h"
#include "nn/cuda/cuda_launch.cuh"

namespace {

/* cols[r, k] with r = (b, oh, ow), k = (kh, kw, ic):
 *   x[b, oh*stride - pad + kh*dilation, ow*stride - pad + kw*dilation, ic], 0 outside the image */
struct im2col_op {
    ob_conv2d_geom g;
    int64_t patch;
    const float *x;
    float *cols;
    __device__ void operator()(int64_t i) const {
        int64_t r = i / patch, k = i % patch;
        int ic = (int)(k % g.in_c), kw = (int)(k / g.in_c % g.kernel_w), kh = (int)(k / g.in_c / g.kernel_w);
        int ow = (int)(r % g.out_w), oh = (int)(r / g.out_w % g.out_h);
        int64_t b = r / g.out_w / g.out_h;
        int ih = oh * g.stride - g.pad + kh * g.dilation, iw = ow * g.stride - g.pad + kw * g.dilation;
        bool inside = ih >= 0 && ih < g.in_h && iw >= 0 && iw < g.in_w;
        cols[i] = inside ? x[((b * g.in_h + ih) * g.in_w + iw) * g.in_c + ic] : 0.0f;
    }
};

} // namespace

extern "C" void cuda_k_im2col(const ob_conv2d_geom *g, const float *x, float *cols) {
    int64_t patch = ob_conv2d_patch_size(g);
    ob_cuda_map(g->batch * g->out_h * g->out_w * patch, im2col_op{*g, patch, x, cols});
}
