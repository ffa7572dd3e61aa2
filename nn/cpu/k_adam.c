/* Adam-family update: AdamW's whole step and LAMB's direction (the
 * formulas are in nn/ob_backend.h, adam_update). Element-wise, so every
 * thread count gives the same bits. */
#include <tgmath.h> /* sqrt of a float stays in float */

#include "nn/cpu/real.h"
#include "nn/cpu/kernels.h"

/* Below this many elements a parallel region costs more than it saves. */
#define ADAM_PARALLEL_MIN 16384

/* The step's scalars in the kernel's precision. The bias corrections enter
 * as reciprocals formed once in double, as PyTorch folds them into its
 * step size and denominator. */
typedef struct {
    ob_real beta1, one_minus_beta1, beta2, one_minus_beta2, eps, inv_c1, inv_sqrt_c2;
} adam_scalars;

static adam_scalars scalars_of(const ob_adam_hyper *h) {
    return (adam_scalars){
        .beta1 = (ob_real)h->beta1,
        .one_minus_beta1 = (ob_real)(1.0 - h->beta1),
        .beta2 = (ob_real)h->beta2,
        .one_minus_beta2 = (ob_real)(1.0 - h->beta2),
        .eps = (ob_real)h->eps,
        .inv_c1 = (ob_real)(1.0 / h->bias_correction1),
        .inv_sqrt_c2 = (ob_real)(1.0 / sqrt(h->bias_correction2)),
    };
}

/* m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
 * returns u = (m / c1) / (sqrt(v) / sqrt(c2) + eps). */
static inline ob_real adam_direction(const adam_scalars *s, ob_real g, ob_real *m, ob_real *v) {
    ob_real m_new = s->beta1 * *m + s->one_minus_beta1 * g;
    ob_real v_new = s->beta2 * *v + s->one_minus_beta2 * g * g;
    *m = m_new;
    *v = v_new;
    return m_new * s->inv_c1 / (sqrt(v_new) * s->inv_sqrt_c2 + s->eps);
}

/* AdamW: p = p (1 - lr wd) - lr u */
static void adamw_loop(int64_t n, ob_real *param, const ob_real *grad, ob_real *m, ob_real *v,
                       const adam_scalars *s, ob_real lr, ob_real shrink) {
#pragma omp parallel for simd if (n >= ADAM_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) param[i] = param[i] * shrink - lr * adam_direction(s, grad[i], &m[i], &v[i]);
}

/* LAMB: g = u + wd p. g is read before it is overwritten, element by element. */
static void lamb_direction_loop(int64_t n, const ob_real *param, ob_real *grad, ob_real *m, ob_real *v,
                                const adam_scalars *s, ob_real weight_decay) {
#pragma omp parallel for simd if (n >= ADAM_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) grad[i] = adam_direction(s, grad[i], &m[i], &v[i]) + weight_decay * param[i];
}

void OB_FN(k_adam_update)(int64_t n, ob_real *param, ob_real *grad, ob_real *m, ob_real *v,
                          const ob_adam_hyper *h) {
    adam_scalars s = scalars_of(h);
    if (h->direction_into_grad) {
        lamb_direction_loop(n, param, grad, m, v, &s, (ob_real)h->weight_decay);
        return;
    }
    /* The decoupled shrink factor is formed in double, once, as in sgd. */
    adamw_loop(n, param, grad, m, v, &s, (ob_real)h->lr, (ob_real)(1.0 - h->lr * h->weight_decay));
}
