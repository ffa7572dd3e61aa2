/* The CPU backend's F32 convolution on oneDNN (built when OB_WITH_DNNL).
 *
 * Same contract as the conv entries of nn/ob_backend.h: NHWC activations,
 * weights [out_c, kh, kw, in_c], bias may be NULL, backward accumulates into
 * dx, dw and dbias. Primitives are made on a geometry's first use and cached
 * in the ctx's CPU backend state; failures leave a message in the ctx.
 */
#ifndef OB_DNNL_CONV_H
#define OB_DNNL_CONV_H

#include "nn/ob_backend.h"

/* Floats of workspace a direction needs: backward wants a dx-sized scratch. */
int64_t ob_dnnl_conv2d_workspace_elements(const ob_conv2d_geom *g, ob_conv2d_direction direction);
int ob_dnnl_conv2d_forward(ob_ctx *ctx, const ob_conv2d_geom *g, const float *x, const float *w,
                           const float *bias, float *y);
/* dx_scratch: the BACKWARD workspace, given when dx is wanted. */
int ob_dnnl_conv2d_backward(ob_ctx *ctx, const ob_conv2d_geom *g, const float *x, const float *w,
                            const float *dy, float *dx, float *dw, float *dbias, float *dx_scratch);

#endif
