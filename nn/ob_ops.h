/* ob_ops: differentiable operations. Each computes its output through the
 * backend table and records a tape node (see ob_tape.h). On bad arguments
 * they return NULL and leave one line in ob_ctx_error.
 * Layouts: images NHWC, conv weights [out_c, kh, kw, in_c], linear weights
 * [out, in] (see ob_tensor.h). */
#ifndef OB_OPS_H
#define OB_OPS_H

#include "nn/ob_ctx.h"

struct ob_layer;

/* y = conv(x, w) + b. x [N,H,W,Cin], w [Cout,kh,kw,Cin], b [Cout] or NULL.
 * `hook` (may be NULL) is the owning layer: when hook->capture is on, the
 * op stores its input and output gradient there for K-FAC. */
ob_tensor *ob_conv2d(ob_ctx *ctx, ob_tensor *x, ob_tensor *w, ob_tensor *b, int stride, int pad,
                     int dilation, struct ob_layer *hook);
/* Batch-norm over all but the last (channel) dim. Training mode normalises
 * with batch statistics and updates the running ones in place. */
ob_tensor *ob_batchnorm(ob_ctx *ctx, ob_tensor *x, ob_tensor *gamma, ob_tensor *beta,
                        ob_tensor *running_mean, ob_tensor *running_var, bool training,
                        double momentum, double eps);
ob_tensor *ob_relu(ob_ctx *ctx, ob_tensor *x);
ob_tensor *ob_add(ob_ctx *ctx, ob_tensor *a, ob_tensor *b);
ob_tensor *ob_maxpool2d(ob_ctx *ctx, ob_tensor *x, int kernel, int stride, int pad);
/* [N,H,W,C] -> [N,C] */
ob_tensor *ob_global_avgpool(ob_ctx *ctx, ob_tensor *x);
/* y = x w^T + b. x [N,in], w [out,in], b [out] or NULL. */
ob_tensor *ob_linear(ob_ctx *ctx, ob_tensor *x, ob_tensor *w, ob_tensor *b, struct ob_layer *hook);
/* Mean label-smoothed cross-entropy of softmax(logits): a [1] tensor.
 * logits [N,classes], labels I32 [N] in [0, classes). */
ob_tensor *ob_softmax_cross_entropy(ob_ctx *ctx, ob_tensor *logits, const ob_tensor *labels,
                                    double label_smoothing);

/* Transformer ops (BERT). Token activations are 2-D [tokens, width], as
 * ob_linear takes them (tokens = batch * seq, sequence-major); attention
 * works on [batch, heads, seq, head_dim]. Index tensors (ids, positions,
 * labels) are I32, read and checked on the host, and must stay alive until
 * the backward has run; so must a key mask, which the kernels read. */

/* Row gather: y[i, :] = table[ids[i], :] for table [rows, width] and ids of
 * any shape with every id in [0, rows): y [ids->numel, width]. An embedding
 * lookup, or any rows picked by index (the pooler's [CLS] rows: ids
 * b * seq). The backward scatter-adds, so repeated ids add up. */
ob_tensor *ob_embedding(ob_ctx *ctx, ob_tensor *table, const ob_tensor *ids);
/* Masked-LM selection: x [batch * seq, width], positions and labels
 * [batch, predictions]. A label of -1 marks a padding prediction; the
 * others are gathered, in (b, j) order, as y[n, :] = x[b seq +
 * positions[b, j], :], and *selected_labels gets their labels [n] (step
 * arena). ob_softmax_cross_entropy on the head's logits for y and those
 * labels is then the mean loss over the real predictions only, and the LM
 * head spends nothing on padding. Fails when every label is -1. */
ob_tensor *ob_masked_lm_gather(ob_ctx *ctx, ob_tensor *x, const ob_tensor *positions, const ob_tensor *labels,
                               ob_tensor **selected_labels);
/* y = gamma (x - mean) / sqrt(var + eps) + beta, with the mean and biased
 * variance of each row's last dim (width); gamma, beta [width], eps > 0. */
ob_tensor *ob_layernorm(ob_ctx *ctx, ob_tensor *x, ob_tensor *gamma, ob_tensor *beta, double eps);
/* GELU, erf form: y = x (1 + erf(x / sqrt 2)) / 2. */
ob_tensor *ob_gelu(ob_ctx *ctx, ob_tensor *x);
ob_tensor *ob_tanh(ob_ctx *ctx, ob_tensor *x);

/* Which dropout draw this is. Masks come from the stream (ctx seed,
 * OB_RNG_DROPOUT, ctx rank, step); `site` tells apart the dropouts of one
 * step, so every dropout in a model needs its own. */
typedef struct {
    double p;       /* drop probability, in [0, 1) */
    bool training;  /* false: identity */
    uint64_t step;  /* the training step, < 2^40 */
    uint32_t site;  /* < 2^24; a site draws up to 2^40 elements */
} ob_dropout_spec;
/* y = x keep / (1 - p), keep ~ Bernoulli(1 - p) per element. Returns x
 * itself (no copy, no node) when not training or p = 0. */
ob_tensor *ob_dropout(ob_ctx *ctx, ob_tensor *x, const ob_dropout_spec *spec);

/* C[i] = alpha op(A[i]) op(B[i]) over the leading (batch) dims, which must
 * match; op(M) = M^T when its flag is set. */
ob_tensor *ob_batched_matmul(ob_ctx *ctx, ob_tensor *a, ob_tensor *b, bool trans_a, bool trans_b,
                             double alpha);
/* Softmax over the last dim of scores [batch, ..., keys] among the keys
 * with key_mask[batch, key] != 0 (key_mask I32 [batch, keys]); masked keys
 * get 0, and a row with every key masked is all 0 (not NaN). */
ob_tensor *ob_masked_softmax(ob_ctx *ctx, ob_tensor *scores, const ob_tensor *key_mask);
/* dropout(masked_softmax(q k^T / sqrt(head_dim))) v for q [batch, heads,
 * queries, head_dim], k [batch, heads, keys, head_dim], v [batch, heads,
 * keys, d_v]; key_mask I32 [batch, keys] (1 = real token, 0 = padding).
 * dropout NULL: none. A query with no real key gets a zero output row. */
ob_tensor *ob_attention(ob_ctx *ctx, ob_tensor *q, ob_tensor *k, ob_tensor *v, const ob_tensor *key_mask,
                        const ob_dropout_spec *dropout);
/* [batch * seq, heads * d] -> [batch, heads, seq, d], and back. */
ob_tensor *ob_split_heads(ob_ctx *ctx, ob_tensor *x, int64_t batch, int64_t heads);
ob_tensor *ob_merge_heads(ob_ctx *ctx, ob_tensor *x);

#endif
