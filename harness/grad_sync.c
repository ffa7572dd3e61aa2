/* Bucketed gradient all-reduce (see ob_grad_sync.h). */
#include "harness/ob_grad_sync.h"

#include <stdlib.h>
#include <string.h>

#include "nn/ob_backend.h"

struct ob_grad_sync {
    ob_ctx *ctx;
    ob_params *params;
    ob_comm *comm;
    ob_tensor *bucket; /* 1-D, the parameters' dtype; NULL on one rank */
};

ob_grad_sync *ob_grad_sync_new(ob_ctx *ctx, ob_params *params, ob_comm *comm, int64_t bucket_bytes) {
    ob_grad_sync *sync = calloc(1, sizeof *sync);
    if (!sync) {
        ob_ctx_set_error(ctx, "out of memory");
        return NULL;
    }
    *sync = (ob_grad_sync){ctx, params, comm, NULL};
    ob_dtype dtype = ob_params_dtype(params);
    if (dtype != OB_F32 && dtype != OB_F64) {
        ob_ctx_set_error(ctx, "gradient averaging: parameters must be F32 or F64, not %s", ob_dtype_name(dtype));
        free(sync);
        return NULL;
    }
    if (ob_comm_size(comm) > 1) {
        int64_t elements = bucket_bytes / (int64_t)ob_dtype_size(dtype);
        sync->bucket = ob_tensor_new(ctx, OB_MEM_COMM_BUFFERS, dtype, OB_SHAPE(elements > 0 ? elements : 1));
        if (!sync->bucket) {
            ob_ctx_set_error(ctx, "out of memory for a %lld-byte gradient bucket", (long long)bucket_bytes);
            free(sync);
            return NULL;
        }
    }
    return sync;
}

void ob_grad_sync_free(ob_ctx *ctx, ob_grad_sync *sync) {
    if (!sync) return;
    if (sync->bucket) ob_tensor_free(ctx, sync->bucket);
    free(sync);
}

/* The walk both the averaging and the bucket count follow: reverse
 * registration order, a bucket closes when the next gradient would not fit;
 * a gradient larger than a bucket is all-reduced on its own, in place.
 * visit(first, last, packed) is called once per all-reduce with the
 * parameter index range [last, first] it covers. */
typedef int (*bucket_visit)(void *user, int first, int last, bool packed);

static int walk_buckets(const ob_params *params, int64_t bucket_elements, bucket_visit visit, void *user) {
    int first = ob_params_count(params) - 1;
    while (first >= 0) {
        int64_t numel = ob_params_at(params, first)->value->numel;
        if (numel > bucket_elements) {
            int rc = visit(user, first, first, false);
            if (rc) return rc;
            first--;
            continue;
        }
        int last = first;
        int64_t filled = numel;
        while (last - 1 >= 0 && filled + ob_params_at(params, last - 1)->value->numel <= bucket_elements)
            filled += ob_params_at(params, --last)->value->numel;
        int rc = visit(user, first, last, true);
        if (rc) return rc;
        first = last - 1;
    }
    return 0;
}

static int count_visit(void *user, int first, int last, bool packed) {
    (void)first, (void)last, (void)packed;
    ++*(int64_t *)user;
    return 0;
}

int64_t ob_grad_sync_buckets(const ob_params *params, int64_t bucket_bytes) {
    int64_t count = 0;
    walk_buckets(params, bucket_bytes / (int64_t)ob_dtype_size(ob_params_dtype(params)), count_visit, &count);
    return count;
}

/* Copies gradients [last, first] into the bucket (to_bucket) or back out,
 * scaled by scale on the way back. */
static void move_grads(ob_grad_sync *sync, int first, int last, bool to_bucket, double scale) {
    size_t element = ob_dtype_size(sync->bucket->dtype), offset = 0;
    for (int i = first; i >= last; i--) {
        ob_tensor *grad = ob_params_at(sync->params, i)->value->grad;
        size_t bytes = ob_tensor_bytes(grad);
        char *slot = (char *)sync->bucket->data + offset;
        if (to_bucket) {
            memcpy(slot, grad->data, bytes);
        } else {
            memcpy(grad->data, slot, bytes);
            ob_backend_of(grad)->scale(scale, grad);
        }
        offset += bytes / element * element;
    }
}

static int average_visit(void *user, int first, int last, bool packed) {
    ob_grad_sync *sync = user;
    double scale = 1.0 / ob_comm_size(sync->comm);
    if (!packed) {
        ob_tensor *grad = ob_params_at(sync->params, first)->value->grad;
        if (ob_comm_allreduce_sum(sync->comm, grad->data, grad->numel, grad->dtype, OB_COMM_GRADS)) return -1;
        ob_backend_of(grad)->scale(scale, grad);
        return 0;
    }
    int64_t count = 0;
    for (int i = first; i >= last; i--) count += ob_params_at(sync->params, i)->value->numel;
    move_grads(sync, first, last, true, 1.0);
    if (ob_comm_allreduce_sum(sync->comm, sync->bucket->data, count, sync->bucket->dtype, OB_COMM_GRADS)) return -1;
    move_grads(sync, first, last, false, scale);
    return 0;
}

int ob_grad_sync_average(ob_grad_sync *sync) {
    if (ob_comm_size(sync->comm) == 1) return 0;
    if (walk_buckets(sync->params, sync->bucket->numel, average_visit, sync)) {
        ob_ctx_set_error(sync->ctx, "gradient all-reduce: %s", ob_comm_error(sync->comm));
        return -1;
    }
    return 0;
}
