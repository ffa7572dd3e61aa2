/* Row gathers with a scatter-add backward: embedding lookups (and any rows
 * picked by index, such as the pooler's [CLS] rows) and the masked-LM
 * selection of the predicted positions. Indices are I32 on the host (the
 * data loaders keep them there): they are checked here, and the kernels
 * trust them. */
#include <limits.h>

#include "nn/ob_backend.h"
#include "nn/ob_ops.h"
#include "nn/ob_tape.h"

/* Node input: the source. rows must outlive the backward. */
typedef struct {
    const ob_tensor *rows;
} gather_saved;

/* y[r, :] = src[rows[r], :]  =>  dsrc[rows[r], :] += dy[r, :] */
static int gather_backward(ob_ctx *ctx, const ob_node *node) {
    const gather_saved *saved = node->saved;
    ob_tensor *dsrc = ob_grad_of(ctx, node->in[0]);
    if (dsrc) ob_backend_of(dsrc)->scatter_add_rows(node->out->grad, saved->rows, dsrc);
    return 0;
}

/* y [rows->numel, width] = the rows of src (viewed as [numel / width, width]). */
static ob_tensor *gather_rows(ob_ctx *ctx, const char *op, ob_tensor *src, const ob_tensor *rows) {
    ob_tensor *y =
        ob_tensor_temp(ctx, OB_MEM_ACTIVATIONS, src->dtype, OB_SHAPE(rows->numel, src->shape[src->ndim - 1]));
    if (!y) return NULL;
    ob_backend_of(src)->gather_rows(src, rows, y);
    ob_node *node = ob_tape_record(ctx, op, gather_backward, y, sizeof(gather_saved), 1, &src);
    if (node && !node->saved) return NULL; /* arena exhausted; the error is set */
    if (node) *(gather_saved *)node->saved = (gather_saved){rows};
    return y;
}

/* A floating source of 2+ dims whose row count fits the I32 indices. */
static bool source_ok(ob_ctx *ctx, const char *op, const ob_tensor *src) {
    if (src->ndim < 2 || (src->dtype != OB_F32 && src->dtype != OB_F64) || src->numel == 0) {
        ob_ctx_set_error(ctx, "%s: the source must be a non-empty floating tensor [rows, width]", op);
        return false;
    }
    if (src->numel / src->shape[src->ndim - 1] > INT32_MAX) {
        ob_ctx_set_error(ctx, "%s: %lld rows are more than I32 indices can address", op,
                         (long long)(src->numel / src->shape[src->ndim - 1]));
        return false;
    }
    return true;
}

static bool embedding_args_ok(ob_ctx *ctx, const ob_tensor *table, const ob_tensor *ids) {
    if (!source_ok(ctx, "embedding", table)) return false;
    if (ids->dtype != OB_I32 || ids->numel == 0) {
        ob_ctx_set_error(ctx, "embedding: ids must be a non-empty i32 tensor");
        return false;
    }
    int64_t vocab = table->numel / table->shape[table->ndim - 1];
    const int32_t *values = ob_tensor_host_data(ctx, ids); /* downloaded from a device */
    if (!values) return false;
    for (int64_t i = 0; i < ids->numel; i++)
        if (values[i] < 0 || values[i] >= vocab) {
            ob_ctx_set_error(ctx, "embedding: id %d at %lld is outside [0, %lld)", values[i], (long long)i,
                             (long long)vocab);
            return false;
        }
    return true;
}

/* y[i, :] = table[ids[i], :];  dtable[ids[i], :] += dy[i, :] */
ob_tensor *ob_embedding(ob_ctx *ctx, ob_tensor *table, const ob_tensor *ids) {
    if (!embedding_args_ok(ctx, table, ids)) return NULL;
    return gather_rows(ctx, "embedding", table, ids);
}

static bool masked_lm_args_ok(ob_ctx *ctx, const ob_tensor *x, const ob_tensor *positions,
                              const ob_tensor *labels) {
    if (!source_ok(ctx, "masked_lm_gather", x)) return false;
    if (positions->dtype != OB_I32 || positions->ndim != 2 || labels->dtype != OB_I32 ||
        !ob_tensor_same_shape(positions, labels)) {
        ob_ctx_set_error(ctx, "masked_lm_gather: positions and labels must be i32 [batch, predictions]");
        return false;
    }
    int64_t rows = x->numel / x->shape[x->ndim - 1], batch = positions->shape[0];
    if (batch == 0 || rows % batch != 0) {
        ob_ctx_set_error(ctx, "masked_lm_gather: %lld token rows do not split into %lld sequences",
                         (long long)rows, (long long)batch);
        return false;
    }
    return true;
}

/* Fills the token rows and labels of the real predictions (label != -1),
 * host arrays; returns how many there are, or -1 with the ctx error set. */
static int64_t select_predictions(ob_ctx *ctx, const ob_tensor *positions, const ob_tensor *labels,
                                  int64_t seq, int32_t *rows, int32_t *selected) {
    const int32_t *position = ob_tensor_host_data(ctx, positions), *label = ob_tensor_host_data(ctx, labels);
    if (!position || !label) return -1;
    int64_t predictions = positions->shape[1], count = 0;
    for (int64_t i = 0; i < positions->numel; i++) {
        if (label[i] == -1) continue;
        if (label[i] < 0 || position[i] < 0 || position[i] >= seq) {
            ob_ctx_set_error(ctx,
                             "masked_lm_gather: prediction %lld has position %d (sequence %lld), label %d",
                             (long long)i, position[i], (long long)seq, label[i]);
            return -1;
        }
        rows[count] = (int32_t)(i / predictions * seq + position[i]);
        selected[count++] = label[i];
    }
    if (count == 0) ob_ctx_set_error(ctx, "masked_lm_gather: every prediction is padding (label -1)");
    return count ? count : -1;
}

/* y[n, :] = x[b seq + positions[b, j], :] over the real predictions (b, j);
 * dx[that row, :] += dy[n, :]. */
ob_tensor *ob_masked_lm_gather(ob_ctx *ctx, ob_tensor *x, const ob_tensor *positions, const ob_tensor *labels,
                               ob_tensor **selected_labels) {
    if (!masked_lm_args_ok(ctx, x, positions, labels)) return NULL;
    int64_t seq = x->numel / x->shape[x->ndim - 1] / positions->shape[0];
    ob_tensor *rows = ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_I32, OB_SHAPE(positions->numel));
    ob_tensor *selected =
        rows ? ob_tensor_temp(ctx, OB_MEM_WORKSPACE, OB_I32, OB_SHAPE(positions->numel)) : NULL;
    if (!selected) return NULL;
    /* On a device the selection is made in host arrays, then uploaded. */
    bool on_host = rows->device == OB_CPU;
    size_t bytes = ob_tensor_bytes(rows);
    int32_t *host_rows = on_host ? rows->data : ob_arena_alloc(ctx, bytes, OB_MEM_WORKSPACE);
    int32_t *host_selected = on_host ? selected->data : ob_arena_alloc(ctx, bytes, OB_MEM_WORKSPACE);
    if (!host_rows || !host_selected) return NULL;
    int64_t count = select_predictions(ctx, positions, labels, seq, host_rows, host_selected);
    if (count < 0) return NULL;
    rows->shape[0] = rows->numel = selected->shape[0] = selected->numel = count;
    if (!on_host && (ob_tensor_copy_from_host(ctx, rows, host_rows) ||
                     ob_tensor_copy_from_host(ctx, selected, host_selected)))
        return NULL;
    *selected_labels = selected;
    return gather_rows(ctx, "masked_lm_gather", x, rows);
}
