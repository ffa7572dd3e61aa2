#include "optimizers/ob_clip.h"

#include <math.h>

#include "nn/ob_backend.h"

/* ||g|| = sqrt(sum_p sum_i g_p[i]^2) */
double ob_grad_norm(const ob_params *params) {
    double sumsq = 0.0;
    for (int i = 0; i < ob_params_count(params); i++) {
        const ob_tensor *grad = ob_params_at(params, i)->value->grad;
        sumsq += ob_backend_of(grad)->sumsq(grad);
    }
    return sqrt(sumsq);
}

/* g = g clip / (||g|| + 1e-6) when ||g|| > clip > 0 */
double ob_clip_grad_norm(const ob_params *params, double norm, double clip_norm) {
    if (!(clip_norm > 0 && isfinite(norm) && norm > clip_norm)) return 1.0;
    double factor = clip_norm / (norm + 1e-6);
    for (int i = 0; i < ob_params_count(params); i++) {
        ob_tensor *grad = ob_params_at(params, i)->value->grad;
        ob_backend_of(grad)->scale(factor, grad);
    }
    return factor;
}
