/* ob_philox: the Philox4x32-10 block function behind ob_rng (Salmon et al.,
 * SC'11), in a header so that the CPU generator (nn/rng.c) and the CUDA
 * kernels (nn/cuda, where the functions are __host__ __device__) run one
 * definition: a dropout mask drawn on the GPU is the CPU's bit for bit.
 *
 * Block `index` of a stream: counter = (index low, index high, step low,
 * purpose << 24 | rank << 8 | step bits 32..39), key = the seed's two halves;
 * ten rounds, the key bumped by the Weyl constants between rounds. */
#ifndef OB_PHILOX_H
#define OB_PHILOX_H

#include <math.h>
#include <stdint.h>

#include "nn/ob_rng.h"

#ifdef __CUDACC__
#define OB_PHILOX_FN static inline __host__ __device__
#else
#define OB_PHILOX_FN static inline
#endif

/* Round multipliers and Weyl key increments (Salmon et al., Table 2). */
#define OB_PHILOX_M0 0xD2511F53u
#define OB_PHILOX_M1 0xCD9E8D57u
#define OB_PHILOX_W0 0x9E3779B9u
#define OB_PHILOX_W1 0xBB67AE85u

/* Counter word 3 of every block of the stream. */
OB_PHILOX_FN uint32_t ob_philox_counter_high(const ob_rng_stream *stream) {
    return ((stream->purpose & 0xffu) << 24) | ((stream->rank & 0xffffu) << 8) |
           (uint32_t)((stream->step >> 32) & 0xffu);
}

/* Ten rounds on ctr in place: each multiplies words 0 and 2, swaps the
 * halves across and mixes in the key. */
OB_PHILOX_FN void ob_philox4x32_10(uint32_t ctr[4], uint32_t key0, uint32_t key1) {
    for (int round = 0; round < 10; round++) {
        uint64_t product0 = (uint64_t)OB_PHILOX_M0 * ctr[0], product1 = (uint64_t)OB_PHILOX_M1 * ctr[2];
        uint32_t next0 = (uint32_t)(product1 >> 32) ^ ctr[1] ^ key0;
        uint32_t next2 = (uint32_t)(product0 >> 32) ^ ctr[3] ^ key1;
        ctr[0] = next0;
        ctr[1] = (uint32_t)product1;
        ctr[2] = next2;
        ctr[3] = (uint32_t)product0;
        key0 += OB_PHILOX_W0;
        key1 += OB_PHILOX_W1;
    }
}

/* The four words of block `index` of the stream (ob_rng_block). */
OB_PHILOX_FN void ob_philox_block(const ob_rng_stream *stream, uint64_t index, uint32_t out[4]) {
    out[0] = (uint32_t)index;
    out[1] = (uint32_t)(index >> 32);
    out[2] = (uint32_t)stream->step;
    out[3] = ob_philox_counter_high(stream);
    ob_philox4x32_10(out, (uint32_t)stream->seed, (uint32_t)(stream->seed >> 32));
}

/* The word a draw of probability p compares against: word < threshold has
 * probability p (to within 2^-32), threshold = p 2^32 rounded, at most
 * 2^32 - 1. Dropout keeps an element when its word is >= this. */
static inline uint32_t ob_philox_threshold(double p) {
    double scaled = ldexp(p, 32) + 0.5;
    return scaled >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)scaled;
}

#endif
