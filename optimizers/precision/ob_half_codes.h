/* Whole arrays of fp32 values to and from 2-byte codes (OB_F16 binary16,
 * OB_BF16 bfloat16), rounded to nearest even: the storage conversions of
 * the precision module's saved inputs and of K-FAC's narrow factors and
 * inverses, which run over every element of a tensor each step and so must
 * go at memory speed, not at the pace of the generic per-element rounding
 * in ob_format.h (which stays the reference they are tested against).
 * Results equal ob_fp16_from_float / ob_bf16_from_float (nearest even) for
 * every non-NaN input, overflow to infinity and subnormals included; a NaN
 * gives a NaN code. Decoding is exact. Parallel over OpenMP threads. */
#ifndef OB_HALF_CODES_H
#define OB_HALF_CODES_H

#include <stdint.h>

#include "nn/ob_tensor.h"

/* codes[i] = values[i] rounded to dtype (OB_F16 or OB_BF16), i < n. */
void ob_half_encode(ob_dtype dtype, const float *values, uint16_t *codes, int64_t n);
/* values[i] = the value of codes[i] in dtype (OB_F16 or OB_BF16), i < n. */
void ob_half_decode(ob_dtype dtype, const uint16_t *codes, float *values, int64_t n);

#endif
