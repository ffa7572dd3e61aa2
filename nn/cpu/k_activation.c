/* Smooth activations: GELU (erf form) and tanh. GELU's erf and exp are
 * OB_ERF / OB_EXP (fast_math.h): vectorised polynomials in the float
 * instantiation, libm in the double one. <tgmath.h> makes tanh the float
 * function in the float instantiation. */
#include <tgmath.h>

#include "nn/cpu/real.h"
#include "nn/cpu/fast_math.h"
#include "nn/cpu/kernels.h"

#define SQRT_HALF 0.70710678118654752440    /* 1 / sqrt(2) */
#define INV_SQRT_2PI 0.39894228040143267794 /* 1 / sqrt(2 pi) */

/* y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2 the standard normal CDF */
void OB_FN(k_gelu_forward)(int64_t n, const ob_real *x, ob_real *y) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = (ob_real)0.5 * x[i] * (1 + OB_ERF(x[i] * (ob_real)SQRT_HALF));
}

/* dy/dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi);  dx += dy dy/dx */
void OB_FN(k_gelu_backward)(int64_t n, const ob_real *x, const ob_real *dy, ob_real *dx) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) {
        ob_real cdf = (ob_real)0.5 * (1 + OB_ERF(x[i] * (ob_real)SQRT_HALF));
        ob_real pdf = (ob_real)INV_SQRT_2PI * OB_EXP((ob_real)-0.5 * x[i] * x[i]);
        dx[i] += dy[i] * (cdf + x[i] * pdf);
    }
}

/* y = tanh(x) */
void OB_FN(k_tanh_forward)(int64_t n, const ob_real *x, ob_real *y) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = tanh(x[i]);
}

/* d tanh(x)/dx = 1 - y^2;  dx += dy (1 - y^2) */
void OB_FN(k_tanh_backward)(int64_t n, const ob_real *y, const ob_real *dy, ob_real *dx) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (1 - y[i] * y[i]);
}
