// C += A·B for the model's GEMMs, with B (the weights) packed once into 32-column panels and A
// (the activations) read in place or packed per call into row groups, so that the micro-kernels
// read both sequentially. ckernels.h gives the layouts and the rounding contract.
//
// Why not OpenBLAS: at these tall-skinny shapes (197 or 788 rows, K = 1024…4096) it re-packs the
// weights on every call and its two threads meet at barriers inside every GEMM; with the weights
// packed once and each thread owning whole panels or row ranges (GEMM.swift), no call packs B and
// no thread waits for another until the call ends.
#include "ckernels.h"
#include <math.h>
#include <stddef.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Every kernel is written with explicit fmaf / FMA intrinsics; nothing else may be contracted.
#pragma clang fp contract(off)

#define NR CK_GEMM_PANEL
#define KC CK_GEMM_KBLOCK

long ck_gemm_packed_b_floats(long n, long k) { return (n + NR - 1) / NR * k * NR; }

void ck_gemm_pack_b(const float *w, long ldw, int transposed, long n, long k, float *packed) {
    long panels = (n + NR - 1) / NR;
    for (long p = 0; p < panels; p++) {
        float *dst = packed + p * k * NR;
        long width = n - p * NR < NR ? n - p * NR : NR;
        if (transposed) {  // w is n × k: column `col` of B is row `col` of w, read along its length
            for (long j = 0; j < NR; j++) {
                const float *src = w + (p * NR + j) * ldw;
                for (long kk = 0; kk < k; kk++) dst[kk * NR + j] = j < width ? src[kk] : 0;
            }
        } else {  // w is k × n: each panel row is a run of a row of w (column by column, rows ldw
                  // apart, would read one cache line per value, all in one L1 set when ldw is 4 KiB × m)
            for (long kk = 0; kk < k; kk++) {
                memcpy(dst + kk * NR, w + kk * ldw + p * NR, (size_t)width * sizeof(float));
                for (long j = width; j < NR; j++) dst[kk * NR + j] = 0;
            }
        }
    }
}

int ck_gemm_group_rows(int variant) {
    switch (variant) {
    case CK_GEMM_AVX512: return 12;
    case CK_GEMM_AVX2: return 6;
    default: return 4;
    }
}

// Rows of a packed block are kc + APAD floats apart: with a stride that is a multiple of 4 KiB
// (kc = 1024) a group's twelve rows would share one L1 set (measured: 110 → 96 GFLOP/s).
#define APAD 16
static long group_floats(long mr, long k) { return mr * (k + APAD * ((k + KC - 1) / KC)); }
static long block_offset(long mr, long k0) { return mr * (k0 + APAD * (k0 / KC)); }

long ck_gemm_packed_a_floats(int variant, long m, long k) {
    long mr = ck_gemm_group_rows(variant);
    return (m + mr - 1) / mr * group_floats(mr, k);
}

// Logical columns [c0, c1) of a row of A, made of `segments` runs of `width` values.
static void copy_columns(const float *row, long width, const long *offsets, long c0, long c1, float *dst) {
    if (!offsets) { memcpy(dst, row + c0, (size_t)(c1 - c0) * sizeof(float)); return; }
    while (c0 < c1) {
        long s = c0 / width, within = c0 - s * width;
        long count = width - within < c1 - c0 ? width - within : c1 - c0;
        memcpy(dst, row + offsets[s] + within, (size_t)count * sizeof(float));
        dst += count; c0 += count;
    }
}

void ck_gemm_pack_a(int variant, const float *x, long ldx, const long *row_offsets, long m, long segments, long segment_width,
                    const long *segment_offsets, float *packed, long group_begin, long group_end) {
    long mr = ck_gemm_group_rows(variant);
    long k = segments * segment_width;
    for (long g = group_begin; g < group_end; g++) {
        long rows = m - g * mr < mr ? m - g * mr : mr;
        float *dst = packed + g * group_floats(mr, k);
        for (long k0 = 0; k0 < k; k0 += KC) {
            long kc = k - k0 < KC ? k - k0 : KC;
            for (long i = 0; i < rows; i++)
                copy_columns(x + (row_offsets ? row_offsets[g * mr + i] : (g * mr + i) * ldx), segment_width, segment_offsets, k0, k0 + kc, dst + block_offset(mr, k0) + i * (kc + APAD));
        }
    }
}

// ---- portable kernel: one fmaf chain per element, exactly the vector kernels' arithmetic ----

static void kernel_portable(long mr, long nr, long kc, const float *a, long as, const float *b, float *c, long ldc) {
    for (long i = 0; i < mr; i++) {
        float acc[NR] = {0};  // all 32 columns (B is zero past n): the j loop vectorises where fmaf is an instruction
        for (long k = 0; k < kc; k++) {
            float av = a[i * as + k];
            for (long j = 0; j < NR; j++) acc[j] = fmaf(av, b[k * NR + j], acc[j]);
        }
        for (long j = 0; j < nr; j++) c[i * ldc + j] = c[i * ldc + j] + acc[j];
    }
}

#if defined(__x86_64__) && defined(__clang__)

// The row loops must unroll completely, or the accumulators live on the stack.
#define UNROLL _Pragma("clang loop unroll(full)")

// ---- AVX-512: 12 rows × 32 columns (24 zmm accumulators, 2 for B, broadcasts of A) ----

#define AVX512 __attribute__((target("avx512f")))

static inline __attribute__((always_inline)) AVX512 void
kernel_avx512(const long MR, long nr, long kc, const float *a, long as, const float *b, float *c, long ldc) {
    __m512 acc0[12], acc1[12];
    // C's tile is read once, after the k loop: ask for it now so that it arrives meanwhile.
    UNROLL for (long i = 0; i < MR; i++) { _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0); _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0); }
    UNROLL for (long i = 0; i < MR; i++) { acc0[i] = _mm512_setzero_ps(); acc1[i] = _mm512_setzero_ps(); }
    for (long k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b + k * NR), b1 = _mm512_loadu_ps(b + k * NR + 16);
        UNROLL for (long i = 0; i < MR; i++) {
            __m512 av = _mm512_set1_ps(a[i * as + k]);
            acc0[i] = _mm512_fmadd_ps(av, b0, acc0[i]);
            acc1[i] = _mm512_fmadd_ps(av, b1, acc1[i]);
        }
    }
    if (nr == NR) {
        UNROLL for (long i = 0; i < MR; i++) {
            float *row = c + i * ldc;
            _mm512_storeu_ps(row, _mm512_add_ps(_mm512_loadu_ps(row), acc0[i]));
            _mm512_storeu_ps(row + 16, _mm512_add_ps(_mm512_loadu_ps(row + 16), acc1[i]));
        }
    } else {  // the last panel of a matrix whose width is no multiple of 32
        __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
        __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (1u << (nr - 16)) - 1);
        UNROLL for (long i = 0; i < MR; i++) {
            float *row = c + i * ldc;
            _mm512_mask_storeu_ps(row, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, row), acc0[i]));
            _mm512_mask_storeu_ps(row + 16, m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m1, row + 16), acc1[i]));
        }
    }
}

#define AVX512_ROWS(R) \
    static AVX512 void kernel_avx512_##R(long nr, long kc, const float *a, long as, const float *b, float *c, long ldc) { \
        kernel_avx512(R, nr, kc, a, as, b, c, ldc); \
    }
AVX512_ROWS(1) AVX512_ROWS(2) AVX512_ROWS(3) AVX512_ROWS(4) AVX512_ROWS(5) AVX512_ROWS(6)
AVX512_ROWS(7) AVX512_ROWS(8) AVX512_ROWS(9) AVX512_ROWS(10) AVX512_ROWS(11) AVX512_ROWS(12)

typedef void (*row_kernel)(long nr, long kc, const float *a, long as, const float *b, float *c, long ldc);
static const row_kernel avx512_kernels[13] = {
    0, kernel_avx512_1, kernel_avx512_2, kernel_avx512_3, kernel_avx512_4, kernel_avx512_5, kernel_avx512_6,
    kernel_avx512_7, kernel_avx512_8, kernel_avx512_9, kernel_avx512_10, kernel_avx512_11, kernel_avx512_12,
};

// ---- AVX2 + FMA: 6 rows × 16 columns, half a panel at a time (12 ymm accumulators) ----

#define AVX2 __attribute__((target("avx2,fma")))

static inline __attribute__((always_inline)) AVX2 void
kernel_avx2(const long MR, long nr, long kc, const float *a, long as, const float *b, float *c, long ldc) {
    __m256 acc0[6], acc1[6];
    UNROLL for (long i = 0; i < MR; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    UNROLL for (long i = 0; i < MR; i++) { acc0[i] = _mm256_setzero_ps(); acc1[i] = _mm256_setzero_ps(); }
    // Four k steps per iteration: 1–3 % on one core (197 rows, k = 1024/4096). The AVX-512 kernel
    // must not be unrolled: its 24 accumulators then spill (110 → 65 GFLOP/s).
    _Pragma("clang loop unroll_count(4)")
    for (long k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b + k * NR), b1 = _mm256_loadu_ps(b + k * NR + 8);
        UNROLL for (long i = 0; i < MR; i++) {
            __m256 av = _mm256_broadcast_ss(a + i * as + k);
            acc0[i] = _mm256_fmadd_ps(av, b0, acc0[i]);
            acc1[i] = _mm256_fmadd_ps(av, b1, acc1[i]);
        }
    }
    if (nr >= 16) {
        UNROLL for (long i = 0; i < MR; i++) {
            float *row = c + i * ldc;
            _mm256_storeu_ps(row, _mm256_add_ps(_mm256_loadu_ps(row), acc0[i]));
            _mm256_storeu_ps(row + 8, _mm256_add_ps(_mm256_loadu_ps(row + 8), acc1[i]));
        }
    } else {
        float tile[6][16];
        UNROLL for (long i = 0; i < MR; i++) { _mm256_storeu_ps(tile[i], acc0[i]); _mm256_storeu_ps(tile[i] + 8, acc1[i]); }
        for (long i = 0; i < MR; i++)
            for (long j = 0; j < nr; j++) c[i * ldc + j] = c[i * ldc + j] + tile[i][j];
    }
}

#define AVX2_ROWS(R) \
    static AVX2 void kernel_avx2_##R(long nr, long kc, const float *a, long as, const float *b, float *c, long ldc) { \
        kernel_avx2(R, nr, kc, a, as, b, c, ldc); \
    }
AVX2_ROWS(1) AVX2_ROWS(2) AVX2_ROWS(3) AVX2_ROWS(4) AVX2_ROWS(5) AVX2_ROWS(6)
static const row_kernel avx2_kernels[7] = {
    0, kernel_avx2_1, kernel_avx2_2, kernel_avx2_3, kernel_avx2_4, kernel_avx2_5, kernel_avx2_6,
};

#endif

int ck_gemm_supported(int variant) {
    switch (variant) {
    case CK_GEMM_PORTABLE: return 1;
#if defined(__x86_64__) && defined(__clang__)
    case CK_GEMM_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CK_GEMM_AVX512: return __builtin_cpu_supports("avx512f");
#endif
    default: return 0;
    }
}

int ck_gemm_best_variant(void) {
    if (ck_gemm_supported(CK_GEMM_AVX512)) return CK_GEMM_AVX512;
    if (ck_gemm_supported(CK_GEMM_AVX2)) return CK_GEMM_AVX2;
    return CK_GEMM_PORTABLE;
}

// Before a tile's first k block: C = bias (or 0), or C += bias; the same additions, in the same
// order, as a separate pass would make, but on the tile while it is in cache and on every thread.
static void tile_prologue(int init, const float *bias, float *tile, long ldc, long rows, long nr) {
    for (long i = 0; i < rows; i++) {
        float *row = tile + i * ldc;
        if (init == CK_GEMM_SET) {
            if (bias) memcpy(row, bias, (size_t)nr * sizeof(float));
            else memset(row, 0, (size_t)nr * sizeof(float));
        } else if (init == CK_GEMM_ADD_BIAS && bias) {
            for (long j = 0; j < nr; j++) row[j] = row[j] + bias[j];
        }
    }
}

// After a tile's last k block.
static void tile_epilogue(int activation, float *tile, long ldc, long rows, long nr) {
    for (long i = 0; i < rows; i++) {
        float *row = tile + i * ldc;
        if (activation == CK_GEMM_RELU) {
            for (long j = 0; j < nr; j++) row[j] = row[j] > 0 ? row[j] : 0;
        } else if (activation == CK_GEMM_GELU) {
            ck_gelu(row, nr);
        }
    }
}

void ck_gemm_run(int variant, long m, long n, long k, const float *packed_a, long lda, const float *packed_b, float *c, long ldc,
                 const float *bias, int init, int activation,
                 long group_begin, long group_end, long panel_begin, long panel_end) {
    long mr = ck_gemm_group_rows(variant);
    // Row groups are taken a few at a time so that their packed A (rows × KC) stays in L2 while
    // every panel of the range passes over it.
    const long groups_per_block = (256 + mr - 1) / mr;
    const long step = variant == CK_GEMM_AVX2 ? 16 : NR;
    for (long g0 = group_begin; g0 < group_end; g0 += groups_per_block) {
        long g1 = g0 + groups_per_block < group_end ? g0 + groups_per_block : group_end;
        // At least one k block, so that with k = 0 C is still started and finished.
        for (long k0 = 0; k0 == 0 || k0 < k; k0 += KC) {
            long kc = k - k0 < KC ? k - k0 : KC;
            for (long p = panel_begin; p < panel_end; p++) {
                const float *b = packed_b + (p * k + k0) * NR;
                long width = n - p * NR < NR ? n - p * NR : NR;
                for (long g = g0; g < g1; g++) {
                    long rows = m - g * mr < mr ? m - g * mr : mr;
                    // packed (lda 0): a group's k block is its rows of kc values, kc + APAD apart
                    const float *a = lda ? packed_a + g * mr * lda + k0 : packed_a + g * group_floats(mr, k) + block_offset(mr, k0);
                    long as = lda ? lda : kc + APAD;
                    float *tile = c + g * mr * ldc + p * NR;
                    if (k0 == 0) tile_prologue(init, bias ? bias + p * NR : NULL, tile, ldc, rows, width);
                    // AVX2 takes a panel as two halves of 16 columns.
                    for (long q = 0; q < width; q += step) {
                        long nr = width - q < step ? width - q : step;
                        switch (variant) {
#if defined(__x86_64__) && defined(__clang__)
                        case CK_GEMM_AVX512: avx512_kernels[rows](nr, kc, a, as, b + q, tile + q, ldc); break;
                        case CK_GEMM_AVX2: avx2_kernels[rows](nr, kc, a, as, b + q, tile + q, ldc); break;
#endif
                        default: kernel_portable(rows, nr, kc, a, as, b + q, tile + q, ldc);
                        }
                    }
                    if (k0 + kc >= k) tile_epilogue(activation, tile, ldc, rows, width);
                }
            }
        }
    }
}

// ---- attention: one head, query rows a group at a time, through the GEMM kernels ----

long ck_attention_scratch_floats(int variant, long tokens, long d) {
    long mr = ck_gemm_group_rows(variant), padded = (tokens + NR - 1) / NR * NR;
    return ck_gemm_packed_b_floats(tokens, d) + ck_gemm_packed_b_floats(d, tokens) + mr * (d + APAD) + mr * (padded + APAD);
}

void ck_attention_head(int variant, const float *q, const float *k, const float *v, long ld, long tokens, long d, float scale,
                       float *out, long ldo, float *scratch) {
    long mr = ck_gemm_group_rows(variant), padded = (tokens + NR - 1) / NR * NR;
    float *keys = scratch;                                           // Kᵀ as B: k = d, n = tokens
    float *values = keys + ck_gemm_packed_b_floats(tokens, d);       // V as B: k = tokens, n = d
    float *group = values + ck_gemm_packed_b_floats(d, tokens);      // a group's queries, rows d + APAD apart
    float *scores = group + mr * (d + APAD);                         // its scores, rows padded + APAD apart
    long lq = d + APAD, ls = padded + APAD;
    ck_gemm_pack_b(k, ld, 1, tokens, d, keys);
    ck_gemm_pack_b(v, ld, 0, d, tokens, values);
    long key_panels = padded / NR, value_panels = (d + NR - 1) / NR;
    for (long i0 = 0; i0 < tokens; i0 += mr) {
        long rows = tokens - i0 < mr ? tokens - i0 : mr;
        for (long i = 0; i < rows; i++) memcpy(group + i * lq, q + (i0 + i) * ld, (size_t)d * sizeof(float));
        // scores = q · kᵀ (the columns past `tokens` meet zero keys), softmax(scale · scores) row-wise,
        // then out rows = scores · v: the group's scores never leave L1.
        ck_gemm_run(variant, rows, padded, d, group, lq, keys, scores, ls, NULL, CK_GEMM_SET, CK_GEMM_NO_ACTIVATION, 0, 1, 0, key_panels);
        ck_softmax_rows(scores, rows, tokens, ls, scale);
        ck_gemm_run(variant, rows, d, tokens, scores, ls, values, out + i0 * ldo, ldo, NULL, CK_GEMM_SET, CK_GEMM_NO_ACTIVATION,
                    0, 1, 0, value_panels);
    }
}
