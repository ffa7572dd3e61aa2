/* Gradient clipping by global norm (the BERT recipe's; PyTorch's
 * clip_grad_norm_ arrangement), applied by the harness to the averaged
 * gradients before any preconditioner and the base optimizer. */
#ifndef OB_CLIP_H
#define OB_CLIP_H

#include "nn/ob_layers.h"

/* sqrt(sum of g^2 over every parameter's gradient), summed in double. */
double ob_grad_norm(const ob_params *params);

/* When clip_norm > 0 and norm > clip_norm, multiplies every gradient by
 * clip_norm / (norm + 1e-6) (PyTorch's guard against a norm of 0, so the
 * clipped norm lands just under clip_norm) and returns that factor; else
 * returns 1 and changes nothing. norm is ob_grad_norm(params), measured
 * once by the caller. A non-finite norm is left alone: scaling by 0 or NaN
 * would hide an overflow the precision policy must see. */
double ob_clip_grad_norm(const ob_params *params, double norm, double clip_norm);

#endif
