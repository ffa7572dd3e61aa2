/* SGD update (PyTorch semantics, dampening 0, plus decoupled decay; the
 * formula is in nn/ob_backend.h): element-wise, float arithmetic in the
 * CPU's order (nn/cpu/k_sgd.c). */
#include <stdint.h>

extern "C" {
#include "nn/ob_backend.h"
}
#include "nn/cuda/cuda_backend_kernels.h"
#include "nn/cuda/cuda_launch.cuh"

namespace {

/* g = grad + l2 p;  buf = momentum buf + g (when there is a buffer);
 * p = p shrink - lr (grad_weight g + buf_weight buf), or p shrink - lr g without one */
struct sgd_op {
    float *param;
    const float *grad;
    float *momentum_buf;
    float lr, momentum, l2_decay, shrink, grad_weight, buf_weight;
    __device__ void operator()(int64_t i) const {
        float p = param[i];
        float g = grad[i] + l2_decay * p;
        if (!momentum_buf) {
            param[i] = p * shrink - lr * g;
            return;
        }
        float buf = momentum * momentum_buf[i] + g;
        momentum_buf[i] = buf;
        param[i] = p * shrink - lr * (grad_weight * g + buf_weight * buf);
    }
};

} // namespace

extern "C" void cuda_k_sgd_update(int64_t n, float *param, const float *grad, float *momentum_buf, double lr,
                                  double momentum, double l2_decay, double decoupled_decay, int nesterov) {
    /* the shrink factor formed in double, once, as on the CPU */
    float shrink = (float)(1.0 - lr * decoupled_decay);
    ob_cuda_map(n, sgd_op{param, grad, momentum_buf, (float)lr, (float)momentum, (float)l2_decay, shrink,
                          nesterov ? 1.0f : 0.0f, nesterov ? (float)momentum : 1.0f});
}
