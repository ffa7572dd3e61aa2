/* Inverted dropout with a counter-based mask: element i of site s at step t
 * is kept when word (s 2^40 + i) of the stream (seed, OB_RNG_DROPOUT, rank,
 * t) is >= p 2^32, and kept values are scaled by 1 / (1 - p).
 *
 * The mask is not stored: the backward draws the same words again. A mask
 * costs a byte per element of every dropped tensor (for BERT's attention
 * probabilities, a quarter of the probabilities themselves), while one
 * Philox evaluation (ten rounds of two multiplies) yields four elements'
 * words, so recomputing saves that memory for about the forward's cost.
 * Being a pure function of (seed, rank, step, site, i), the mask is
 * reproducible and does not depend on the thread count. */
#include "nn/ob_backend.h"
#include "nn/ob_ops.h"
#include "nn/ob_rng.h"
#include "nn/ob_tape.h"

/* Words a site may draw (elements per dropped tensor), and sites: their
 * product fills the 64-bit word index. */
#define SITE_WORDS_LOG2 40
#define MAX_SITES (UINT64_C(1) << (64 - SITE_WORDS_LOG2))
#define MAX_STEPS (UINT64_C(1) << 40) /* ob_rng_stream's step range */

/* Node input: x. */
typedef struct {
    ob_rng_stream stream;
    uint64_t first_word;
    double p;
} dropout_saved;

/* y = x keep / (1 - p)  =>  dx += dy keep / (1 - p), the same mask */
static int dropout_backward(ob_ctx *ctx, const ob_node *node) {
    const dropout_saved *saved = node->saved;
    ob_tensor *dx = ob_grad_of(ctx, node->in[0]);
    if (dx)
        ob_backend_of(dx)->dropout(&saved->stream, saved->first_word, saved->p, node->out->grad, dx, true);
    return 0;
}

static bool dropout_args_ok(ob_ctx *ctx, const ob_tensor *x, const ob_dropout_spec *spec) {
    if (x->dtype != OB_F32 && x->dtype != OB_F64) {
        ob_ctx_set_error(ctx, "dropout: x must be a floating tensor");
        return false;
    }
    if (!(spec->p >= 0.0 && spec->p < 1.0)) {
        ob_ctx_set_error(ctx, "dropout: probability %g is outside [0, 1)", spec->p);
        return false;
    }
    if (spec->site >= MAX_SITES || spec->step >= MAX_STEPS ||
        (uint64_t)x->numel > (UINT64_C(1) << SITE_WORDS_LOG2)) {
        ob_ctx_set_error(ctx,
                         "dropout: site %llu, step %llu or %lld elements beyond the mask's counter ranges",
                         (unsigned long long)spec->site, (unsigned long long)spec->step, (long long)x->numel);
        return false;
    }
    return true;
}

ob_tensor *ob_dropout(ob_ctx *ctx, ob_tensor *x, const ob_dropout_spec *spec) {
    if (!dropout_args_ok(ctx, x, spec)) return NULL;
    if (!spec->training || spec->p == 0.0) return x;
    ob_tensor *y = ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, x->dtype, x->ndim, x->shape);
    if (!y) return NULL;
    dropout_saved mask = {
        .stream =
            ob_rng_stream_make(ob_ctx_seed(ctx), OB_RNG_DROPOUT, (uint32_t)ob_ctx_rank(ctx), spec->step),
        .first_word = (uint64_t)spec->site << SITE_WORDS_LOG2,
        .p = spec->p,
    };
    ob_backend_of(x)->dropout(&mask.stream, mask.first_word, mask.p, x, y, false);
    ob_node *node = ob_tape_record(ctx, "dropout", dropout_backward, y, sizeof(dropout_saved), 1, &x);
    if (node && !node->saved) return NULL; /* arena exhausted; the error is set */
    if (node) *(dropout_saved *)node->saved = mask;
    return y;
}
