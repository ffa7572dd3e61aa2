/* SGD update, PyTorch torch.optim.SGD semantics with dampening 0, plus
 * SGDW's decoupled decay (the formula is in nn/ob_backend.h, sgd_update).
 * Element-wise, so every thread count gives the same bits. */
#include "nn/cpu/real.h"
#include "nn/cpu/kernels.h"

/* Below this many elements a parallel region costs more than it saves
 * (biases, norm scales). */
#define SGD_PARALLEL_MIN 16384

/* No momentum buffer: the direction is the (L2-decayed) gradient. */
static void sgd_plain(int64_t n, ob_real *param, const ob_real *grad, ob_real lr, ob_real l2_decay,
                      ob_real shrink) {
#pragma omp parallel for simd if (n >= SGD_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        ob_real p = param[i];
        param[i] = p * shrink - lr * (grad[i] + l2_decay * p);
    }
}

/* The direction is grad_weight * g + buf_weight * buf: Nesterov's g + momentum * buf
 * or heavy-ball's buf. Weights rather than a branch keep the loop free of
 * control flow, which GCC at -O2 would not vectorize. */
static void sgd_momentum(int64_t n, ob_real *param, const ob_real *grad, ob_real *momentum_buf,
                         ob_real lr, ob_real momentum, ob_real l2_decay, ob_real shrink, int nesterov) {
    const ob_real grad_weight = nesterov ? 1 : 0, buf_weight = nesterov ? momentum : 1;
#pragma omp parallel for simd if (n >= SGD_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        ob_real p = param[i];
        ob_real g = grad[i] + l2_decay * p;
        ob_real buf = momentum * momentum_buf[i] + g;
        momentum_buf[i] = buf;
        param[i] = p * shrink - lr * (grad_weight * g + buf_weight * buf);
    }
}

void OB_FN(k_sgd_update)(int64_t n, ob_real *param, const ob_real *grad, ob_real *momentum_buf, double lr,
                         double momentum, double l2_decay, double decoupled_decay, int nesterov) {
    /* The decoupled shrink factor is formed in double, once, so f32 params
     * lose no precision to it beyond the final rounding. */
    ob_real shrink = (ob_real)(1.0 - lr * decoupled_decay);
    if (momentum_buf)
        sgd_momentum(n, param, grad, momentum_buf, (ob_real)lr, (ob_real)momentum, (ob_real)l2_decay,
                     shrink, nesterov);
    else
        sgd_plain(n, param, grad, (ob_real)lr, (ob_real)l2_decay, shrink);
}
