// Winograd F(2×2, 3×3) transforms for the decoder's 3×3 convolutions on channels-last maps: a
// 4×4 input tile becomes 16 positions (V = Bᵀ d B), each position is one GEMM over the tiles
// (M = V · U, U = G g Gᵀ the transformed weights), and 2×2 outputs come back as Y = Aᵀ M A:
// 16 multiplications per output pair of channels where the direct convolution has 36.
// The loops run over channels, contiguous in memory, so clang vectorises them.
#include "ckernels.h"

#include "clones.h"

#pragma clang fp contract(off)

CK_CLONES void ck_winograd_input(const float *padded, long padded_width, long channels, long tiles_w, long tile_begin,
                                 long tile_end, float *v, long ldv, long plane) {
    for (long t = tile_begin; t < tile_end; t++) {
        long ty = t / tiles_w, tx = t % tiles_w;
        const float *d[4][4];
        for (long r = 0; r < 4; r++)
            for (long c = 0; c < 4; c++) d[r][c] = padded + ((2 * ty + r) * padded_width + 2 * tx + c) * channels;
        float *out = v + (t - tile_begin) * ldv;
        for (long ch = 0; ch < channels; ch++) {
            float x[4][4], u[4][4];
            for (long r = 0; r < 4; r++)
                for (long c = 0; c < 4; c++) x[r][c] = d[r][c][ch];
            // Bᵀ x (rows), then · B (columns); Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1].
            for (long c = 0; c < 4; c++) {
                u[0][c] = x[0][c] - x[2][c];
                u[1][c] = x[1][c] + x[2][c];
                u[2][c] = x[2][c] - x[1][c];
                u[3][c] = x[1][c] - x[3][c];
            }
            for (long r = 0; r < 4; r++) {
                out[(4 * r + 0) * plane + ch] = u[r][0] - u[r][2];
                out[(4 * r + 1) * plane + ch] = u[r][1] + u[r][2];
                out[(4 * r + 2) * plane + ch] = u[r][2] - u[r][1];
                out[(4 * r + 3) * plane + ch] = u[r][1] - u[r][3];
            }
        }
    }
}

// Aᵀ x A for one channel; Aᵀ = [1 1 1 0; 0 1 −1 −1].
static inline void output_tile(const float *in, long plane, long ch, float y[2][2]) {
    float x[4][4], u[2][4];
    for (long p = 0; p < 16; p++) x[p / 4][p % 4] = in[p * plane + ch];
    for (long c = 0; c < 4; c++) {
        u[0][c] = x[0][c] + x[1][c] + x[2][c];
        u[1][c] = x[1][c] - x[2][c] - x[3][c];
    }
    for (long a = 0; a < 2; a++) {
        y[a][0] = u[a][0] + u[a][1] + u[a][2];
        y[a][1] = u[a][1] - u[a][2] - u[a][3];
    }
}

static inline float finish(float value, const float *bias, long ch, int relu) {
    value = value + (bias ? bias[ch] : 0.0f);
    return relu && value < 0 ? 0.0f : value;
}

CK_CLONES void ck_winograd_output(const float *m, long ldm, long plane, long channels, long tiles_w, long tile_begin,
                                  long tile_end, const float *bias, int relu, float *y, long ldy, long height, long width) {
    for (long t = tile_begin; t < tile_end; t++) {
        long ty = t / tiles_w, tx = t % tiles_w;
        const float *in = m + (t - tile_begin) * ldm;
        float *top = y + ((2 * ty) * width + 2 * tx) * ldy, *bottom = top + width * ldy;
        if (2 * ty + 1 < height && 2 * tx + 1 < width) {  // the whole 2×2 block is inside the map
            for (long ch = 0; ch < channels; ch++) {
                float out[2][2];
                output_tile(in, plane, ch, out);
                top[ch] = finish(out[0][0], bias, ch, relu);
                top[ldy + ch] = finish(out[0][1], bias, ch, relu);
                bottom[ch] = finish(out[1][0], bias, ch, relu);
                bottom[ldy + ch] = finish(out[1][1], bias, ch, relu);
            }
        } else {  // the last row or column of an odd-sized map
            for (long ch = 0; ch < channels; ch++) {
                float out[2][2];
                output_tile(in, plane, ch, out);
                for (long a = 0; a < 2; a++)
                    for (long b = 0; b < 2; b++)
                        if (2 * ty + a < height && 2 * tx + b < width) (a ? bottom : top)[b * ldy + ch] = finish(out[a][b], bias, ch, relu);
            }
        }
    }
}
