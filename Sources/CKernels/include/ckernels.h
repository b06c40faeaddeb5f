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
/// Rows of x are dim apart, rows of y ldy apart.
void ck_layernorm(const float *x, long rows, long dim, const float *w, const float *b, float eps, float *y, long ldy);

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

// ---- GEMM (gemm.c): C += A·B with B packed once, A packed per call ----
// B (k × n) is packed in panels of CK_GEMM_PANEL columns: panel p holds, for each kk < k, the 32
// values B[kk][32p … 32p+31] (zeros past n). A (m × k) is packed in groups of
// ck_gemm_group_rows(variant) rows and, within a group, in blocks of CK_GEMM_KBLOCK k values: a
// block holds the group's rows one after another, kc + 16 floats apart (never a multiple of 4 KiB,
// whose rows would all fall into one L1 set). The last group may have fewer rows.
// Rounding contract: every element of C gets, for each block of CK_GEMM_KBLOCK k values in order,
// one fused multiply-add chain from 0 added to C — the same operations in the same order in every
// variant, whatever the thread split: results are bitwise identical across variants and threads.
#define CK_GEMM_PANEL 32
#define CK_GEMM_KBLOCK 1024
enum { CK_GEMM_PORTABLE = 0, CK_GEMM_AVX2 = 1, CK_GEMM_AVX512 = 2 };
/// Whether this CPU runs `variant`; the fastest one it runs.
int ck_gemm_supported(int variant);
int ck_gemm_best_variant(void);
/// Rows per packed A group of `variant`.
int ck_gemm_group_rows(int variant);
/// Floats of a packed B (k × n) and of a packed A (m × k).
long ck_gemm_packed_b_floats(long n, long k);
long ck_gemm_packed_a_floats(int variant, long m, long k);
/// Packs B from w: with `transposed`, w is n × k (PyTorch's Linear weight, B = wᵀ), else k × n;
/// rows of w are `ldw` apart.
void ck_gemm_pack_b(const float *w, long ldw, int transposed, long n, long k, float *packed);
/// Packs groups [group_begin, group_end) of A. Row r of A starts at x + r·ldx, or at
/// x + row_offsets[r] when row_offsets is not NULL, and is `segments` runs of `segment_width`
/// values, run s at that start + segment_offsets[s] (NULL: one run): a 3×3 convolution's nine
/// shifted taps of each pixel of a zero-padded map become one A of k = 9·channels without an
/// im2col copy.
void ck_gemm_pack_a(int variant, const float *x, long ldx, const long *row_offsets, long m, long segments, long segment_width,
                    const long *segment_offsets, float *packed, long group_begin, long group_end);
/// How C starts: as it is, C = bias (0 without one), or C + bias; bias has n values.
enum { CK_GEMM_ACCUMULATE = 0, CK_GEMM_SET = 1, CK_GEMM_ADD_BIAS = 2 };
/// What is applied to C once complete.
enum { CK_GEMM_NO_ACTIVATION = 0, CK_GEMM_RELU = 1, CK_GEMM_GELU = 2 };
/// C (m × n, rows ldc apart) = activation(init(C) + A·B) over row groups [group_begin, group_end)
/// and panels [panel_begin, panel_end); disjoint ranges may run on different threads. A is packed
/// (lda 0), or read in place with rows lda apart.
void ck_gemm_run(int variant, long m, long n, long k, const float *a, long lda, const float *packed_b, float *c, long ldc,
                 const float *bias, int init, int activation,
                 long group_begin, long group_end, long panel_begin, long panel_end);

// ---- Winograd F(2×2, 3×3) (winograd.c) ----
/// Tiles [tile_begin, tile_end) of a zero-padded channels-last map (padded_width pixels a row; tile t
/// at tile row t / tiles_w, column t % tiles_w reads padded pixels 2·row … 2·row + 3, 2·col … 2·col + 3)
/// into V: position p of tile t at v + p·plane + (t − tile_begin)·ldv, `channels` values.
void ck_winograd_input(const float *padded, long padded_width, long channels, long tiles_w, long tile_begin,
                       long tile_end, float *v, long ldv, long plane);
/// The 2×2 outputs of those tiles from the 16 GEMM products M (same layout as V, ldm per tile), plus
/// bias, then ReLU when `relu`; pixel (r, c) of the height × width output at y + (r·width + c)·ldy.
void ck_winograd_output(const float *m, long ldm, long plane, long channels, long tiles_w, long tile_begin,
                        long tile_end, const float *bias, int relu, float *y, long ldy, long height, long width);

/// Scratch floats of ck_attention_head.
long ck_attention_scratch_floats(int variant, long tokens, long d);
/// One attention head: out (tokens × d, rows ldo apart) = softmax(scale · q·kᵀ) · v, q, k, v being
/// tokens × d with rows ld apart; a group of query rows at a time, its scores kept in L1.
void ck_attention_head(int variant, const float *q, const float *k, const float *v, long ld, long tokens, long d, float scale,
                       float *out, long ldo, float *scratch);

#endif
