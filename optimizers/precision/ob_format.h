/* ob_format: the low-precision number formats that the CPU emulates
 * exactly (DESIGN.md section 2; PAPERS.md "8-bit floating point training"),
 * at two levels: codes (the format's own bits) and values (fp32 rounded to
 * what the format can hold, the form the emulated GEMMs consume).
 *
 *   format  bits  exponent  mantissa  bias  largest finite   inf   NaN codes
 *   fp16     16      5         10      15   65504            yes   exp all ones, mantissa != 0
 *   bf16     16      8          7     127   3.3895314e38     yes   exp all ones, mantissa != 0
 *   e5m2      8      5          2      15   57344            yes   exp all ones, mantissa != 0
 *   e4m3      8      4          3       7   448              no    S.1111.111 only
 * fp16 is IEEE binary16; bf16 is the top half of an fp32; e5m2 and e4m3
 * are the OCP FP8 formats (e4m3 trades inf for one more binade: exponent
 * 1111 holds normal numbers up to 1.75 * 2^8).
 *
 * Decisions, each the same in every function below:
 * - Subnormals are exact in every format (gradual underflow): small
 *   gradients are what loss scaling tries to keep, so flushing them to zero
 *   would make the emulation disagree with the hardware it stands for.
 *   fp32 subnormal inputs round like any other value.
 * - Signed zero is kept: -0 stays -0, and a negative value that rounds to
 *   zero gives -0, as IEEE conversion does.
 * - Nearest-even: the nearest representable value, ties to the even code
 *   (mantissa lsb 0) - IEEE's default, so fp16 matches the compiler's and
 *   the hardware's conversions bit for bit.
 * - Overflow, nearest-even: fp16, bf16 and e5m2 go to inf exactly when
 *   IEEE does (|x| >= max + half an ulp of max; the tie goes up, to the even
 *   virtual value 2^(emax+1)), so dynamic loss scaling sees the overflow it
 *   must back off from. e4m3 saturates to +-448: it has no inf to go to,
 *   and saturation is what FP8 training recipes (Transformer Engine's
 *   E4M3 forward casts) use. An inf input to e4m3 saturates too.
 * - Stochastic rounding: with lo <= |x| < hi the two neighbours, |x| rounds
 *   to hi with probability (|x| - lo) / (hi - lo), decided by comparing the
 *   32 random bits with floor(2^32 (|x| - lo) / (hi - lo)); E[round(x)] = x
 *   to within 2^-32 of an ulp, subnormals included, and representable
 *   values never move. Above max the next (virtual) step of the last binade
 *   is the format's inf: |x| in (max, max + ulp) rounds to max or inf with
 *   those same probabilities, and |x| >= max + ulp always gives inf. That
 *   keeps SR unbiased up to max and lets overflow be seen by loss scaling,
 *   instead of clipping gradients silently. e4m3 saturates there as well:
 *   (448, 480) always gives 448.
 * - NaN stays NaN, and loses its sign and payload: every NaN encodes to one
 *   canonical quiet NaN code (fp16 0x7E00, bf16 0x7FC0, e5m2 0x7E, e4m3
 *   0x7F) and every NaN code decodes to the fp32 quiet NaN 0x7FC00000.
 *   Training only ever asks "is it NaN".
 * - FP32 is the identity at the value level (no rounding, NaN unchanged).
 */
#ifndef OB_FORMAT_H
#define OB_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "nn/ob_rng.h" /* counter-based Philox: ob_rng_word(stream, k) */

typedef enum {
    OB_FORMAT_FP32 = 0,
    OB_FORMAT_FP16,
    OB_FORMAT_BF16,
    OB_FORMAT_E4M3,
    OB_FORMAT_E5M2,
    OB_FORMAT_COUNT
} ob_format;
typedef enum { OB_ROUND_NEAREST_EVEN = 0, OB_ROUND_STOCHASTIC } ob_rounding;

const char *ob_format_name(ob_format f);               /* "fp32","fp16","bf16","e4m3","e5m2"; "unknown" */
int ob_format_parse(const char *name, ob_format *out); /* 0 ok, 2 unknown (or NULL) */
/* Largest finite (65504, 3.3895e38, 448, 57344; fp32 FLT_MAX), smallest normal and smallest subnormal
 * magnitudes; NaN for an unknown format. */
double ob_format_max(ob_format f);
double ob_format_min_normal(ob_format f);
double ob_format_min_subnormal(ob_format f);

/* Code level. random_bits is ignored by OB_ROUND_NEAREST_EVEN. */
uint16_t ob_fp16_from_float(float x, ob_rounding mode, uint32_t random_bits);
float ob_fp16_to_float(uint16_t code);
uint16_t ob_bf16_from_float(float x, ob_rounding mode, uint32_t random_bits);
float ob_bf16_to_float(uint16_t code);
uint8_t ob_e4m3_from_float(float x, ob_rounding mode, uint32_t random_bits);
float ob_e4m3_to_float(uint8_t code);
uint8_t ob_e5m2_from_float(float x, ob_rounding mode, uint32_t random_bits);
float ob_e5m2_to_float(uint8_t code);

/* Value level: fp32 -> format -> fp32, i.e. to_float(from_float(x)) of the
 * format (FP32 = identity). */
float ob_format_round(float x, ob_format f, ob_rounding mode, uint32_t random_bits);

/* What rounding did to an array (for the /precision log): among finite
 * inputs, how many were nonzero, how many nonzero ones became 0
 * (underflow), and how many overflowed: rounded past max, so that they
 * became inf (fp16, bf16, e5m2) or were clamped to +-max (e4m3). A value
 * just above max that rounds down to max is not an overflow. */
typedef struct {
    int64_t nonzero, underflow, overflow;
} ob_round_stats;

/* Rounds n values. out may be in itself (exactly, not a partial overlap).
 * Stochastic mode takes element i's random bits from
 * ob_rng_word(stream, index_offset + i), so the result is independent of the
 * thread count; stream is not read in nearest-even mode. stats, when not
 * NULL, is overwritten with this call's counts; NULL skips the counting
 * entirely. */
void ob_format_round_array(const float *in, float *out, int64_t n, ob_format f, ob_rounding mode,
                           const ob_rng_stream *stream, uint64_t index_offset, ob_round_stats *stats);

/* b-bit integer grid: value = q*scale + zero_point, q in [0, 2^bits-1];
 * inputs outside clamp to the ends, NaN stays NaN. Nearest-even picks the
 * nearest level, ties to even q; stochastic rounds between the two levels
 * around x as above (unbiased inside the grid). The level is computed in
 * double, so the only error beyond the rounding itself is the final
 * rounding of q*scale + zero_point to fp32. Valid grids: see
 * ob_int_grid_check; other grids give unspecified values. */
typedef struct {
    int bits;
    float scale, zero_point;
} ob_int_grid;

float ob_int_grid_round(float x, const ob_int_grid *grid, ob_rounding mode, uint32_t random_bits);
/* The same for n values, value i taking random_bits[i] (NULL in
 * nearest-even mode); out may be in itself. Serial: callers split the
 * work across threads. */
void ob_int_grid_round_array(const float *in, float *out, int64_t n, const ob_int_grid *grid, ob_rounding mode,
                             const uint32_t *random_bits);
/* bits in 1..24 (every level exact in fp32's significand), scale > 0 and
 * finite, zero_point finite. Returns 0, or 2 with one line in err. */
int ob_int_grid_check(const ob_int_grid *grid, char *err, size_t err_len);

#endif
