#ifndef PRITHVI_CKERNELS_H
#define PRITHVI_CKERNELS_H
// Elementwise float32 kernels with transcendental functions, in C so that clang vectorises them
// and builds an AVX2+FMA variant beside the baseline one, picked at load time (target_clones):
// one portable binary, full speed on x86-64-v3 machines.

/// y = e^x (Cephes expf, relative error ≤ 2e-7).
void ck_exp(const float *x, float *y, long n);
/// y = erf(x), Abramowitz–Stegun 7.1.26 as PyTorch's vectorised CPU kernel (|error| ≤ 1.5e-7).
void ck_erf(const float *x, float *y, long n);
/// x = x·Φ(x) = 0.5·x·(1 + erf(x/√2)) in place (exact GELU).
void ck_gelu(float *x, long n);
/// Softmax of scale·x along each of `rows` rows of `cols` values, `stride` apart, in place.
void ck_softmax_rows(float *x, long rows, long cols, long stride, float scale);
/// y = (x − mean)/√(var + eps)·w + b over rows of `dim` values (biased variance); y may be x.
void ck_layernorm(const float *x, long rows, long dim, const float *w, const float *b, float eps, float *y);

#include <stdint.h>
/// One source row of a tile into the stitcher's accumulators: weight_sums[c] += wy·w[c] and, for
/// each class k, sums[k·plane_stride + c] += (wy·w[c])·logits[k·logit_plane + c], c < n.
/// weight_sums may be NULL (masks: an argmax needs no normalisation).
void ck_blend_row(float *weight_sums, float *sums, long plane_stride, const float *logits, long logit_plane, long classes,
                  const float *w, float wy, long n);
/// dst[i] &= src[i].
void ck_and_bytes(uint8_t *dst, const uint8_t *src, long n);
/// Two-class mask from blended class margins: 255 where valid[p] == 1 and margins[p] > 0, else 0.
void ck_mask_margin(const float *margins, const uint8_t *valid, uint8_t *out, long n);
/// Packs n mask bytes that are 0 or 255 into (n + 7) / 8 bytes, pixel i → bit i % 8 of out[i / 8]
/// (1 = 255; the last byte's unused bits 0). Returns how many bytes were neither 0 nor 255
/// (packed as their top bit): 0 means the packing is exact.
long ck_pack_mask_bits(const uint8_t *in, uint8_t *out, long n);
/// The inverse: n bytes of 0 or 255 from (n + 7) / 8 packed bytes.
void ck_unpack_mask_bits(const uint8_t *in, uint8_t *out, long n);

#endif
