// Blending kernels of the stitcher: memory-bound loops over the accumulators, vectorised by clang
// (AVX2 clone beside the baseline) with restrict pointers. Contraction into FMA is off so that
// every build and clone rounds exactly as the scalar expression (w_y·w_x)·logit does.
#include "ckernels.h"
#include <stdint.h>
#include <string.h>

#include "clones.h"

#pragma clang fp contract(off)

CK_CLONES
void ck_blend_row(float *restrict weight_sums, float *restrict sums, long plane_stride, const float *restrict logits,
                  long logit_plane, long classes, const float *restrict w, float wy, long n) {
    if (weight_sums)
        for (long c = 0; c < n; c++) weight_sums[c] += wy * w[c];
    for (long k = 0; k < classes; k++) {
        float *restrict dst = sums + k * plane_stride;
        const float *restrict src = logits + k * logit_plane;
        for (long c = 0; c < n; c++) dst[c] += wy * w[c] * src[c];
    }
}

CK_CLONES
void ck_and_bytes(uint8_t *restrict dst, const uint8_t *restrict src, long n) {
    for (long i = 0; i < n; i++) dst[i] &= src[i];
}

CK_CLONES
void ck_mask_margin(const float *restrict margins, const uint8_t *restrict valid, uint8_t *restrict out, long n) {
    for (long p = 0; p < n; p++) out[p] = (uint8_t)(((valid[p] == 1) & (margins[p] > 0.0f)) ? 255 : 0);
}

// Eight mask bytes at a time as one little-endian word: the top bits gathered by one multiply
// (bit 7 of byte k lands in bit 56 + k), a byte is exact when it equals its top bit spread.
static const uint64_t top_bits = 0x8080808080808080ull;

long ck_pack_mask_bits(const uint8_t *restrict in, uint8_t *restrict out, long n) {
    long inexact = 0, groups = n / 8;
    for (long j = 0; j < groups; j++) {
        uint64_t x;
        memcpy(&x, in + 8 * j, 8);
        uint64_t top = x & top_bits;
        out[j] = (uint8_t)(((top >> 7) * 0x0102040810204080ull) >> 56);
        if (x != (top >> 7) * 0xFF)
            for (int k = 0; k < 8; k++) inexact += in[8 * j + k] != 0 && in[8 * j + k] != 255;
    }
    if (n % 8) {
        uint8_t b = 0;
        for (long i = groups * 8; i < n; i++) {
            b |= (uint8_t)((in[i] >> 7) << (i % 8));
            inexact += in[i] != 0 && in[i] != 255;
        }
        out[groups] = b;
    }
    return inexact;
}

void ck_unpack_mask_bits(const uint8_t *restrict in, uint8_t *restrict out, long n) {
    long groups = n / 8;
    for (long j = 0; j < groups; j++) {
        // The byte copied into all eight, byte k keeping bit k, each non-zero byte made 0xFF.
        uint64_t bits = (in[j] * 0x0101010101010101ull) & 0x8040201008040201ull;
        uint64_t spread = ((((bits + 0x7F7F7F7F7F7F7F7Full) | bits) & top_bits) >> 7) * 0xFF;
        memcpy(out + 8 * j, &spread, 8);
    }
    for (long i = groups * 8; i < n; i++) out[i] = (in[groups] >> (i % 8)) & 1 ? 255 : 0;
}
