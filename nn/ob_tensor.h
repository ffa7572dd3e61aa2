/* ob_tensor: the engine's one data type.
 *
 * Tensors are contiguous and row-major. Image activations are NHWC
 * ([batch, height, width, channels]) so that a convolution's im2col matrix
 * and a 1x1 convolution are single large GEMMs and per-channel reductions
 * (batch-norm) run over contiguous rows. Convolution weights are
 * [out_c, kernel_h, kernel_w, in_c]; linear weights are [out, in].
 *
 * Every tensor records the memory category it was charged to, so that the
 * per-category peaks in /memory need no guessing.
 */
#ifndef OB_TENSOR_H
#define OB_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OB_MAX_DIMS 6

/* OB_F16 (binary16) and OB_BF16 (bfloat16) are storage formats: no op
 * computes in them; state that is kept narrow (K-FAC's kfac.factor_dtype
 * and kfac.inv_dtype) is widened to the parameters' dtype to be used. The
 * numbering is the checkpoint's dtype code: new dtypes go at the end. */
typedef enum { OB_F32 = 0, OB_F64, OB_I32, OB_U8, OB_F16, OB_BF16, OB_DTYPE_COUNT } ob_dtype;
typedef enum { OB_CPU = 0, OB_CUDA, OB_DEVICE_COUNT } ob_device;

typedef enum {
    OB_MEM_PARAMS = 0,
    OB_MEM_GRADS,
    OB_MEM_OPTIMIZER_STATE,
    OB_MEM_KFAC_FACTORS,
    OB_MEM_KFAC_INVERSES,
    OB_MEM_ACTIVATIONS,
    OB_MEM_WORKSPACE,
    OB_MEM_COMM_BUFFERS,
    OB_MEM_DATA,
    OB_MEM_CATEGORY_COUNT
} ob_mem_category;

typedef struct ob_tensor {
    ob_dtype dtype;
    ob_device device;
    ob_mem_category category;
    int ndim;
    int64_t shape[OB_MAX_DIMS];
    int64_t numel;
    void *data;
    /* Gradient of the step's loss with respect to this tensor; NULL until
     * backward needs it. Parameters get a persistent one (category grads). */
    struct ob_tensor *grad;
    bool requires_grad;
    bool in_arena; /* lives until the step's arena is reset */
    /* Only for a gradient buffer under loss scaling (nn/ob_tape.h): the
     * factor its values carry, 0 while nothing has been accumulated into it,
     * and the smallest factor among the contributions it received. */
    double loss_scale, loss_scale_min;
} ob_tensor;

/* OB_SHAPE(a, b, c) expands to "3, (const int64_t[]){a, b, c}" for the
 * (ndim, shape) argument pairs below. */
#define OB_SHAPE(...) \
    (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}

size_t ob_dtype_size(ob_dtype dtype);
/* OB_F16 and OB_BF16: storage formats, stored and moved but never computed on. */
bool ob_dtype_is_half(ob_dtype dtype);
const char *ob_dtype_name(ob_dtype dtype);
const char *ob_mem_category_name(ob_mem_category category);
size_t ob_tensor_bytes(const ob_tensor *t);
bool ob_tensor_same_shape(const ob_tensor *a, const ob_tensor *b);
/* *view = buffer's storage seen with like's shape (like->numel must not
 * exceed buffer->numel); no copy, no grad. Returns view. */
ob_tensor *ob_tensor_view_shaped(ob_tensor *view, const ob_tensor *buffer, const ob_tensor *like);

static inline float *ob_f32(const ob_tensor *t) { return (float *)t->data; }
static inline double *ob_f64(const ob_tensor *t) { return (double *)t->data; }

#endif
