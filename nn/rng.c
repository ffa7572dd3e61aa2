#include "nn/ob_rng.h"

#include <math.h>

#define OB_PI 3.14159265358979323846

/* Philox4x32-10 round constants (Salmon et al., SC'11, Table 2). */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t product = (uint64_t)a * b;
    *hi = (uint32_t)(product >> 32);
    *lo = (uint32_t)product;
}

static void philox4x32_10(uint32_t ctr[4], uint32_t key[2]) {
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(PHILOX_M0, ctr[0], &hi0, &lo0);
        mulhilo(PHILOX_M1, ctr[2], &hi1, &lo1);
        uint32_t next[4] = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
        for (int i = 0; i < 4; i++) ctr[i] = next[i];
        key[0] += PHILOX_W0;
        key[1] += PHILOX_W1;
    }
}

void ob_rng_block(const ob_rng_stream *stream, uint64_t index, uint32_t out[4]) {
    uint32_t key[2] = {(uint32_t)stream->seed, (uint32_t)(stream->seed >> 32)};
    out[0] = (uint32_t)index;
    out[1] = (uint32_t)(index >> 32);
    out[2] = (uint32_t)stream->step;
    out[3] = ((stream->purpose & 0xffu) << 24) | ((stream->rank & 0xffffu) << 8) |
             (uint32_t)((stream->step >> 32) & 0xffu);
    philox4x32_10(out, key);
}

uint32_t ob_rng_u32(const ob_rng_stream *stream, uint64_t index) {
    uint32_t block[4];
    ob_rng_block(stream, index, block);
    return block[0];
}

float ob_rng_uniform(const ob_rng_stream *stream, uint64_t index) {
    return (float)(ob_rng_u32(stream, index) >> 8) * (1.0f / 16777216.0f);
}

uint32_t ob_rng_below(const ob_rng_stream *stream, uint64_t index, uint32_t n) {
    /* Draw 32-bit words until one falls below the largest multiple of n;
     * the block's four words are tried in turn, then index is re-keyed. */
    uint32_t limit = (uint32_t)(((uint64_t)1 << 32) - (((uint64_t)1 << 32) % n));
    for (uint64_t attempt = 0;; attempt++) {
        uint32_t block[4];
        ob_rng_block(stream, index ^ (attempt << 48), block);
        for (int i = 0; i < 4; i++)
            if (limit == 0 || block[i] < limit) return block[i] % n;
    }
}

double ob_rng_normal(const ob_rng_stream *stream, uint64_t index) {
    uint32_t block[4];
    ob_rng_block(stream, index, block);
    /* 53-bit uniforms in (0, 1]: never log(0). */
    double u1 = (((uint64_t)block[0] << 21 ^ block[1]) & ((1ull << 53) - 1)) + 1.0;
    double u2 = (((uint64_t)block[2] << 21 ^ block[3]) & ((1ull << 53) - 1));
    u1 /= 9007199254740992.0;
    u2 /= 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * OB_PI * u2);
}
