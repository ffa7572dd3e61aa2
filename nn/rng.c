#include "nn/ob_rng.h"
#include "nn/ob_philox.h"

#include <math.h>
#include <string.h>

#define OB_PI 3.14159265358979323846

void ob_rng_block(const ob_rng_stream *stream, uint64_t index, uint32_t out[4]) {
    ob_philox_block(stream, index, out);
}

uint32_t ob_rng_word(const ob_rng_stream *stream, uint64_t k) {
    uint32_t block[4];
    ob_rng_block(stream, k / 4, block);
    return block[k % 4];
}

/* LANES consecutive blocks side by side (one array per counter word), so
 * the ten rounds run as vector multiplies across blocks. */
#define LANES 8
static void philox_lanes(const ob_rng_stream *stream, uint64_t first_block, uint32_t out[LANES][4]) {
    uint32_t c0[LANES], c1[LANES], c2[LANES], c3[LANES];
    uint32_t high = ob_philox_counter_high(stream);
    for (int l = 0; l < LANES; l++) {
        uint64_t index = first_block + (uint64_t)l;
        c0[l] = (uint32_t)index;
        c1[l] = (uint32_t)(index >> 32);
        c2[l] = (uint32_t)stream->step;
        c3[l] = high;
    }
    uint32_t key0 = (uint32_t)stream->seed, key1 = (uint32_t)(stream->seed >> 32);
    for (int round = 0; round < 10; round++) {
#pragma omp simd
        for (int l = 0; l < LANES; l++) {
            uint64_t product0 = (uint64_t)OB_PHILOX_M0 * c0[l], product1 = (uint64_t)OB_PHILOX_M1 * c2[l];
            uint32_t next0 = (uint32_t)(product1 >> 32) ^ c1[l] ^ key0, next2 = (uint32_t)(product0 >> 32) ^ c3[l] ^ key1;
            c1[l] = (uint32_t)product1;
            c3[l] = (uint32_t)product0;
            c0[l] = next0;
            c2[l] = next2;
        }
        key0 += OB_PHILOX_W0;
        key1 += OB_PHILOX_W1;
    }
    for (int l = 0; l < LANES; l++) {
        out[l][0] = c0[l];
        out[l][1] = c1[l];
        out[l][2] = c2[l];
        out[l][3] = c3[l];
    }
}

/* Word k is word k % 4 of block k / 4: the lanes' blocks, laid out in
 * order, are the words themselves, copied out whole. */
void ob_rng_words(const ob_rng_stream *stream, uint64_t first, int64_t count, uint32_t *out) {
    int64_t j = 0;
    while (j < count) {
        uint64_t k = first + (uint64_t)j;
        uint32_t blocks[LANES][4];
        philox_lanes(stream, k / 4, blocks);
        int64_t offset = (int64_t)(k % 4), available = 4 * LANES - offset;
        int64_t taken = count - j < available ? count - j : available;
        memcpy(out + j, &blocks[0][0] + offset, (size_t)taken * sizeof *out);
        j += taken;
    }
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
