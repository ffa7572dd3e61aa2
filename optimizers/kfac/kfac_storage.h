/* K-FAC state kept narrower than the parameters (kfac.factor_dtype,
 * kfac.inv_dtype = fp16 or bf16), as KAISA's reference code offers to save
 * memory: a stored tensor holds OB_F16 or OB_BF16 codes, rounded to nearest
 * even from the wide values, and is widened to the parameters' dtype (F32
 * or F64) wherever it is used; every computation stays wide. A stored
 * tensor of the parameters' dtype is used as it is. CPU tensors only
 * (internal to the K-FAC module).
 *
 * The wide copies go to a few persistent buffers, each as large as the
 * largest tensor it takes (ob_kfac_scratch_elements) and reused slot after
 * slot, so that what narrow storage saves is not spent again in the step
 * arena (which keeps its largest block): the cost, charged to workspace, is
 * one wide copy of the largest A and one of the largest G (decomposed in
 * place there) against half of every factor and inverse. */
#ifndef OB_KFAC_STORAGE_H
#define OB_KFAC_STORAGE_H

#include "nn/ob_ctx.h"
#include "optimizers/kfac/ob_kfac.h" /* OB_KFAC_WIDE_BUFFERS */

typedef struct {
    ob_dtype wide;
    int64_t max_elements[OB_KFAC_WIDE_BUFFERS];
    ob_tensor *buffer[OB_KFAC_WIDE_BUFFERS]; /* persistent, allocated when first needed */
    ob_tensor view[OB_KFAC_WIDE_BUFFERS];    /* the stored tensor's shape over buffer's data */
} ob_kfac_wide_scratch;

/* stored = value, rounded when stored is narrow (same numel). */
void ob_kfac_store(const ob_tensor *value, ob_tensor *stored);
/* stored = the identity matrix. */
void ob_kfac_store_identity(ob_tensor *stored);

/* Scratch for wide copies of dtype wide, buffer i taking stored tensors of
 * at most max_elements[i] elements; nothing is allocated yet. */
void ob_kfac_wide_scratch_init(ob_kfac_wide_scratch *scratch, ob_dtype wide,
                               const int64_t max_elements[OB_KFAC_WIDE_BUFFERS]);
void ob_kfac_wide_scratch_free(ob_ctx *ctx, ob_kfac_wide_scratch *scratch);
/* stored itself when it is of the scratch's wide dtype, else its values
 * widened into buffer `which` (valid until that buffer is used again).
 * NULL, with the ctx error set, when the buffer cannot be allocated. */
ob_tensor *ob_kfac_widened(ob_ctx *ctx, ob_kfac_wide_scratch *scratch, int which, ob_tensor *stored);
/* Where to compute a value that goes to stored: stored itself when it is
 * wide, else buffer `which` shaped like it (then ob_kfac_store it). */
ob_tensor *ob_kfac_output_for(ob_ctx *ctx, ob_kfac_wide_scratch *scratch, int which, ob_tensor *stored);

#endif
