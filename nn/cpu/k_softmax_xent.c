/* Softmax cross-entropy with label smoothing, logits [batch, classes].
 * Target q = (1 - s) onehot(label) + s / classes (sums to 1). Labels are
 * checked by the op; the kernels trust them. */
#include <math.h>

#include "nn/cpu/real.h"
#include "nn/cpu/kernels.h"

/* One row. p = exp(x - max) / sum exp(x - max) (the max keeps exp finite);
 * since sum q = 1 and log p_j = x_j - lse,
 *   -sum_j q_j log p_j = lse - (1 - s) x_label - s mean_j x_j,
 * computed in double from the logits, so no log of an underflowed p. */
static double softmax_xent_row(int64_t classes, const ob_real *logits, int32_t label, double smoothing,
                               ob_real *probs) {
    double max = logits[0];
    for (int64_t j = 1; j < classes; j++)
        if (logits[j] > max) max = logits[j];
    double sum_exp = 0.0, sum_logits = 0.0;
    for (int64_t j = 0; j < classes; j++) {
        double e = exp(logits[j] - max);
        probs[j] = (ob_real)e;
        sum_exp += e;
        sum_logits += logits[j];
    }
    for (int64_t j = 0; j < classes; j++) probs[j] = (ob_real)(probs[j] / sum_exp);
    double log_sum_exp = max + log(sum_exp);
    return log_sum_exp - (1.0 - smoothing) * logits[label] - smoothing * sum_logits / classes;
}

/* loss = mean over rows of -sum_j q_j log softmax(logits)_j. Row losses are
 * added in row order (ordered), so the loss does not depend on threads. */
void OB_FN(k_softmax_xent_forward)(int64_t batch, int64_t classes, const ob_real *logits,
                                   const int32_t *labels, double smoothing, ob_real *probs, ob_real *loss) {
    double total = 0.0;
#pragma omp parallel for ordered schedule(static, 1)
    for (int64_t r = 0; r < batch; r++) {
        double row_loss =
            softmax_xent_row(classes, logits + r * classes, labels[r], smoothing, probs + r * classes);
#pragma omp ordered
        total += row_loss;
    }
    *loss = (ob_real)(total / batch);
}

/* dlogits += dloss / batch * (probs - q) */
void OB_FN(k_softmax_xent_backward)(int64_t batch, int64_t classes, const ob_real *probs,
                                    const int32_t *labels, double smoothing, ob_real dloss,
                                    ob_real *dlogits) {
    ob_real row_scale = (ob_real)((double)dloss / batch), uniform = (ob_real)(smoothing / classes);
    ob_real label_weight = (ob_real)(1.0 - smoothing);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < batch; r++) {
        ob_real *d_row = dlogits + r * classes;
#pragma omp simd
        for (int64_t j = 0; j < classes; j++) d_row[j] += row_scale * (probs[r * classes + j] - uniform);
        d_row[labels[r]] -= row_scale * label_weight;
    }
}
