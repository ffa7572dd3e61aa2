/* ob_fqt: fully quantized training's quantizers (Chen et al., NeurIPS
 * 2020, "A Statistical Framework for Low-bitwidth Training of Deep Neural
 * Networks"; PAPERS.md "Fully quantized training").
 *
 * Forward: weights and activations on a deterministic per-tensor grid.
 * Backward: the gradient of a layer's output, a [rows = samples, cols]
 * matrix, quantize-dequantized to b bits with stochastic rounding, so that
 * the FQT gradient is an unbiased estimate of the QAT gradient. The three
 * gradient quantizers differ only in how they choose the grids, i.e. in
 * the variance they add:
 *   ptq  one range [min, max] for the whole tensor;
 *   psq  one range per row (sample): rows of very different magnitude
 *        no longer share the step of the largest;
 *   bhq  block Householder: when a few rows are much larger than the rest,
 *        each large row is grouped with small rows and spread evenly over
 *        its group by an orthogonal reflection, so that no row of the
 *        group needs a coarse step; quantized per row, reflected back.
 * Every quantizer is unbiased: its transforms and ranges are deterministic
 * functions of the input, and stochastic rounding on a fixed grid is
 * unbiased (ob_format.h).
 *
 * Random bits: element (r, c) of the matrix that is stochastically rounded
 * (the input itself for ptq/psq, the reflected matrix for bhq) takes
 * ob_rng_word(stream, r * cols + c), one draw per element per call. Two
 * tensors quantized in the same step therefore need different streams
 * (e.g. a different seed or purpose per layer), or they share draws. The
 * result does not depend on the thread count.
 */
#ifndef OB_FQT_H
#define OB_FQT_H

#include <stddef.h>
#include <stdint.h>

#include "nn/ob_rng.h"

typedef enum { OB_FQT_PTQ = 0, OB_FQT_PSQ, OB_FQT_BHQ, OB_FQT_QUANTIZER_COUNT } ob_fqt_quantizer;

const char *ob_fqt_quantizer_name(ob_fqt_quantizer q); /* "ptq","psq","bhq"; "unknown" */
int ob_fqt_quantizer_parse(const char *name, ob_fqt_quantizer *out); /* 0 ok, 2 unknown (or NULL) */

/* bits in 1..16: every quantizer's valid range. Returns 0, or 2 with one
 * line in err; callers validate a configuration with it once. */
int ob_fqt_check_bits(int bits, char *err, size_t err_len);

/* Deterministic `bits`-bit per-tensor forward quantization (weights,
 * activations): the asymmetric range [min, max] of the finite values, cut
 * into 2^bits - 1 equal steps, each value rounded to the nearest level
 * (ties to even). Asymmetric, because activations after a ReLU are all >= 0
 * and a symmetric range would leave half the levels unused. At most 2^bits
 * distinct values come out, each within half a step of its input; a
 * constant tensor is left as it is, non-finite values pass through
 * unchanged. out may be in itself. bits outside 1..16 are clamped into it
 * (validate with ob_fqt_check_bits). */
void ob_fqt_quantize_forward(const float *in, float *out, int64_t n, int bits);

/* Floats of workspace the gradient quantizer needs for a [rows, cols]
 * matrix: 0 for ptq and psq, 3 * rows for bhq. */
int64_t ob_fqt_workspace_floats(int64_t rows, int64_t cols, ob_fqt_quantizer q);

/* Unbiased stochastic b-bit quantize-dequantize of a gradient matrix
 * [rows = samples, cols], row-major: ptq one range for the tensor, psq one
 * range per row, bhq block Householder (fqt.c has the construction). out
 * may be in itself. workspace holds ob_fqt_workspace_floats floats (NULL
 * when that is 0); nothing is allocated. A non-finite gradient value makes
 * its row NaN (psq; bhq, which then falls back to psq rather than spread
 * it over a group) or the whole tensor (ptq), so that overflow checks
 * downstream still see it.
 * Returns 0, or 2 with one line in err for bad arguments (bits outside
 * 1..16, rows or cols < 1, NULL pointers, an unknown quantizer). */
int ob_fqt_quantize_gradient(const float *in, float *out, int64_t rows, int64_t cols, int bits, ob_fqt_quantizer q,
                             const ob_rng_stream *stream, float *workspace, char *err, size_t err_len);

/* One of several independent quantizations of the same gradient. */
typedef struct {
    float *out;
    int bits;
    const ob_rng_stream *stream;
} ob_fqt_gradient_output;

/* ob_fqt_quantize_gradient into `count` outputs at once, each bit for bit
 * what ob_fqt_quantize_gradient gives with its bits and stream (FQT's
 * activation-gradient and weight-gradient paths quantize one dy twice).
 * What does not depend on the bits is done once: the ranges, bhq's
 * grouping and reflection, the reads of each row. Output 0 may be `in`;
 * the others need their own buffers. Returns 0, or 2 with one line in err
 * (also for count < 1, a NULL output or stream, shared buffers). */
int ob_fqt_quantize_gradient_outputs(const float *in, int64_t rows, int64_t cols, ob_fqt_quantizer q,
                                     const ob_fqt_gradient_output *outputs, int count, float *workspace, char *err,
                                     size_t err_len);

#endif
