/* Element access by flat index for tests that run on F32 and F64 tensors
 * alike: values go through double either way. */
#ifndef OB_TENSOR_ACCESS_H
#define OB_TENSOR_ACCESS_H

#include "nn/ob_tensor.h"

static inline double get(const ob_tensor *t, int64_t i) {
    return t->dtype == OB_F64 ? ob_f64(t)[i] : ob_f32(t)[i];
}

static inline void set(ob_tensor *t, int64_t i, double v) {
    if (t->dtype == OB_F64)
        ob_f64(t)[i] = v;
    else
        ob_f32(t)[i] = (float)v;
}

#endif
