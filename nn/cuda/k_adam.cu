/* Adam-family update (AdamW's step, LAMB's direction; formulas in
 * nn/ob_backend.h): element-wise, float arithmetic in the CPU's order
 * (nn/cpu/k_adam.c), the bias corrections folded into reciprocals formed
 * once in double. */
#include <math.h>
#include <stdint.h>

extern "C" {
#include "nn/ob_backend.h"
}
#include "nn/cuda/cuda_backend_kernels.h"
#include "nn/cuda/cuda_launch.cuh"

namespace {

struct adam_op {
    float *param, *grad, *m, *v;
    float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, inv_c1, inv_sqrt_c2;
    float lr, shrink, weight_decay;
    bool direction_into_grad;
    /* m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
     * AdamW: p = p shrink - lr u;  LAMB: g = u + wd p,
     * u = (m / c1) / (sqrt(v) / sqrt(c2) + eps) */
    __device__ void operator()(int64_t i) const {
        float g = grad[i];
        float m_new = beta1 * m[i] + one_minus_beta1 * g;
        float v_new = beta2 * v[i] + one_minus_beta2 * g * g;
        m[i] = m_new;
        v[i] = v_new;
        float u = m_new * inv_c1 / (sqrtf(v_new) * inv_sqrt_c2 + eps);
        if (direction_into_grad)
            grad[i] = u + weight_decay * param[i];
        else
            param[i] = param[i] * shrink - lr * u;
    }
};

} // namespace

extern "C" void cuda_k_adam_update(int64_t n, float *param, float *grad, float *m, float *v,
                                   const ob_adam_hyper *h) {
    ob_cuda_map(n,
                adam_op{param, grad, m, v, (float)h->beta1, (float)(1.0 - h->beta1), (float)h->beta2,
                        (float)(1.0 - h->beta2), (float)h->eps, (float)(1.0 / h->bias_correction1),
                        (float)(1.0 / sqrt(h->bias_correction2)), (float)h->lr,
                        (float)(1.0 - h->lr * h->weight_decay), (float)h->weight_decay, h->direction_into_grad});
}
