// Blending kernels of the stitcher: memory-bound loops over the accumulators, vectorised by clang
// (AVX2 clone beside the baseline) with restrict pointers. Contraction into FMA is off so that
// every build and clone rounds exactly as the scalar expression (w_y·w_x)·logit does.
#include "ckernels.h"
#include <stdint.h>

#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__) && defined(__clang__)
#define CK_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CK_CLONES
#endif

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
