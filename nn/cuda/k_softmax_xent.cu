/* Softmax cross-entropy with label smoothing over logits [batch, classes]
 * (the formulas are those of nn/cpu/k_softmax_xent.c): one block per row
 * for the probabilities and the row's loss in double, then one thread adds
 * the row losses in row order, as the CPU does. */
#include <math.h>
#include <stdint.h>

extern "C" {
#include "nn/ob_backend.h"
}
#include "nn/cuda/cuda_backend_kernels.h"
#include "nn/cuda/cuda_launch.cuh"

namespace {

/* p = exp(x - max) / sum exp(x - max);
 * row loss = max + log(sum exp(x - max)) - (1 - s) x_label - s mean_j x_j */
__global__ void softmax_xent_rows_kernel(int64_t batch, int64_t classes, const float *logits,
                                         const int32_t *labels, double smoothing, float *probs,
                                         double *row_loss) {
    OB_CUDA_ROW_STRIDE(r, batch) {
        const float *x = logits + r * classes;
        float *p = probs + r * classes;
        float part_max = x[0];
        for (int64_t j = threadIdx.x; j < classes; j += blockDim.x) part_max = fmaxf(part_max, x[j]);
        double max = ob_cuda_block_reduce(part_max, ob_cuda_max{});
        double part_exp = 0.0, part_logits = 0.0;
        for (int64_t j = threadIdx.x; j < classes; j += blockDim.x) {
            double e = exp(x[j] - max);
            p[j] = (float)e;
            part_exp += e;
            part_logits += x[j];
        }
        double sum_exp = ob_cuda_block_reduce(part_exp, ob_cuda_sum{});
        double sum_logits = ob_cuda_block_reduce(part_logits, ob_cuda_sum{});
        for (int64_t j = threadIdx.x; j < classes; j += blockDim.x) p[j] = (float)(p[j] / sum_exp);
        if (threadIdx.x == 0)
            row_loss[r] =
                max + log(sum_exp) - (1.0 - smoothing) * x[labels[r]] - smoothing * sum_logits / classes;
    }
}

/* loss = (sum of the row losses in row order) / batch */
__global__ void mean_in_order_kernel(int64_t batch, const double *row_loss, float *loss) {
    double total = 0.0;
    for (int64_t r = 0; r < batch; r++) total += row_loss[r];
    *loss = (float)(total / batch);
}

/* dlogits += dloss / batch (probs - s / classes), and -= dloss / batch (1 - s)
 * at the label: the CPU's two roundings, in its order. */
struct softmax_xent_backward_op {
    int64_t batch, classes;
    const float *probs;
    const int32_t *labels;
    double smoothing;
    const float *dloss;
    float *dlogits;
    __device__ void operator()(int64_t i) const {
        int64_t r = i / classes, j = i % classes;
        float row_scale = (float)((double)*dloss / batch), uniform = (float)(smoothing / classes);
        float d = dlogits[i] + row_scale * (probs[i] - uniform);
        if (j == labels[r]) d -= row_scale * (float)(1.0 - smoothing);
        dlogits[i] = d;
    }
};

} // namespace

extern "C" void cuda_k_softmax_xent_forward(int64_t batch, int64_t classes, const float *logits,
                                            const int32_t *labels, double smoothing, float *probs,
                                            double *row_loss, float *loss) {
    if (batch == 0 || classes == 0) return;
    softmax_xent_rows_kernel<<<ob_cuda_capped_blocks(batch), OB_CUDA_THREADS>>>(batch, classes, logits, labels,
                                                                                smoothing, probs, row_loss);
    mean_in_order_kernel<<<1, 1>>>(batch, row_loss, loss);
}

extern "C" void cuda_k_softmax_xent_backward(int64_t batch, int64_t classes, const float *probs,
                                             const int32_t *labels, double smoothing, const float *dloss,
                                             float *dlogits) {
    ob_cuda_map(batch * classes,
                softmax_xent_backward_op{batch, classes, probs, labels, smoothing, dloss, dlogits});
}
