/* The pieces of attention that are not GEMMs: the softmax over the keys a
 * padding mask leaves, and the head transposes. Scores are
 * [batch, rows_per_batch, keys] (rows_per_batch = heads * queries), the key
 * mask [batch, keys] with nonzero = a real token. exp is OB_EXP
 * (fast_math.h): a vectorised polynomial in the float instantiation. */
#include <math.h>

#include "nn/cpu/real.h"
#include "nn/cpu/fast_math.h"
#include "nn/cpu/kernels.h"

/* p_j = exp(s_j - max) / sum_k exp(s_k - max) over the unmasked keys, and
 * 0 for a masked key (exp(-inf)). A row with every key masked has nothing
 * to attend to: its probabilities are all 0, so its attention output is 0
 * (not 0/0). Sums in ob_real; the max shift keeps every exp <= 1. */
void OB_FN(k_masked_softmax_forward)(int64_t batch, int64_t rows_per_batch, int64_t keys,
                                     const ob_real *scores, const int32_t *key_mask, ob_real *probs) {
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < batch * rows_per_batch; row++) {
        const int32_t *mask = key_mask + row / rows_per_batch * keys;
        const ob_real *s = scores + row * keys;
        ob_real *p = probs + row * keys;
        ob_real max = -INFINITY, sum = 0;
#pragma omp simd reduction(max : max)
        for (int64_t j = 0; j < keys; j++) max = mask[j] && s[j] > max ? s[j] : max;
        /* A masked key's score counts as -inf, so exp gives it 0; choosing the
         * score (not the exp) keeps the loop free of branches around
         * arithmetic, which vectorises. A fully masked row shifts by 0, not by
         * -inf (-inf - -inf would be NaN). */
        ob_real shift = max == -INFINITY ? 0 : max;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < keys; j++) {
            ob_real score = mask[j] ? s[j] : -INFINITY;
            p[j] = OB_EXP(score - shift);
            sum += p[j];
        }
        ob_real inverse = sum > 0 ? 1 / sum : 0;
#pragma omp simd
        for (int64_t j = 0; j < keys; j++) p[j] *= inverse;
    }
}

/* ds_j += p_j (dp_j - sum_k p_k dp_k): the softmax Jacobian. Masked keys
 * (and fully masked rows) have p = 0 and get no gradient. */
void OB_FN(k_masked_softmax_backward)(int64_t rows, int64_t keys, const ob_real *probs, const ob_real *dprobs,
                                      ob_real *dscores) {
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < rows; row++) {
        const ob_real *p = probs + row * keys, *dp = dprobs + row * keys;
        ob_real dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < keys; j++) dot += p[j] * dp[j];
#pragma omp simd
        for (int64_t j = 0; j < keys; j++) dscores[row * keys + j] += p[j] * (dp[j] - dot);
    }
}

/* dst[o, j, i, :] = src[o, i, j, :] (or += when accumulate) for src
 * [outer, d1, d2, inner] and dst [outer, d2, d1, inner]: [batch, seq,
 * heads, d] <-> [batch, heads, seq, d]. */
void OB_FN(k_swap_middle_axes)(int64_t outer, int64_t d1, int64_t d2, int64_t inner, const ob_real *src,
                               ob_real *dst, int accumulate) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < d1; i++)
            for (int64_t j = 0; j < d2; j++) {
                const ob_real *from = src + ((o * d1 + i) * d2 + j) * inner;
                ob_real *to = dst + ((o * d2 + j) * d1 + i) * inner;
#pragma omp simd
                for (int64_t c = 0; c < inner; c++) to[c] = (accumulate ? to[c] : 0) + from[c];
            }
}
