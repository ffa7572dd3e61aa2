#include "nn/ob_tensor.h"

#include <string.h>

static const size_t dtype_sizes[OB_DTYPE_COUNT] = {4, 8, 4, 1, 2, 2};
static const char *const dtype_names[OB_DTYPE_COUNT] = {"f32", "f64", "i32", "u8", "f16", "bf16"};
static const char *const category_names[OB_MEM_CATEGORY_COUNT] = {
    "params",     "grads",     "optimizer_state", "kfac_factors", "kfac_inverses",
    "activations", "workspace", "comm_buffers",    "data"};

size_t ob_dtype_size(ob_dtype dtype) { return dtype_sizes[dtype]; }
bool ob_dtype_is_half(ob_dtype dtype) { return dtype == OB_F16 || dtype == OB_BF16; }
const char *ob_dtype_name(ob_dtype dtype) { return dtype_names[dtype]; }
const char *ob_mem_category_name(ob_mem_category category) { return category_names[category]; }
size_t ob_tensor_bytes(const ob_tensor *t) { return (size_t)t->numel * ob_dtype_size(t->dtype); }

ob_tensor *ob_tensor_view_shaped(ob_tensor *view, const ob_tensor *buffer, const ob_tensor *like) {
    *view = *buffer;
    view->ndim = like->ndim;
    memcpy(view->shape, like->shape, sizeof view->shape);
    view->numel = like->numel;
    view->grad = NULL;
    return view;
}

bool ob_tensor_same_shape(const ob_tensor *a, const ob_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}
