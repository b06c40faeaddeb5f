#include "ckernels.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "clones.h"

static inline float ck_expf(float v) {
    float x = fminf(fmaxf(v, -87.3365f), 88.3762626647949f);
    float fx = floorf(x * 1.44269504088896341f + 0.5f);
    x = x - fx * 0.693359375f;
    x = x + fx * 2.12194440e-4f;
    float z = x * x;
    float y = 1.9875691500e-4f;
    y = y * x + 1.3981999507e-3f;
    y = y * x + 8.3334519073e-3f;
    y = y * x + 4.1665795894e-2f;
    y = y * x + 1.6666665459e-1f;
    y = y * x + 5.0000001201e-1f;
    y = y * z + x + 1.0f;
    int32_t n = (int32_t)fx;
    uint32_t bits = (uint32_t)(n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

static inline float ck_erff(float x) {
    float ax = fabsf(x);
    float t = 1.0f / (ax * 0.3275911f + 1.0f);
    float r = 1.061405429f;
    r = r * t - 1.453152027f;
    r = r * t + 1.421413741f;
    r = r * t - 0.284496736f;
    r = r * t + 0.254829592f;
    float magnitude = 1.0f - r * t * ck_expf(-ax * ax);
    return copysignf(magnitude, x);
}

/// Sum with eight independent partial sums, so the loop vectorises without -ffast-math.
static inline float ck_sum(const float *x, long n) {
    float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    long i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) lanes[k] += x[i + k];
    float total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for (; i < n; i++) total += x[i];
    return total;
}

static inline float ck_max(const float *x, long n) {
    float lanes[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    long i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) lanes[k] = lanes[k] > x[i + k] ? lanes[k] : x[i + k];
    float top = -INFINITY;
    for (int k = 0; k < 8; k++) top = top > lanes[k] ? top : lanes[k];
    for (; i < n; i++) top = top > x[i] ? top : x[i];
    return top;
}

CK_CLONES void ck_exp(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] = ck_expf(x[i]);
}

CK_CLONES void ck_erf(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] = ck_erff(x[i]);
}

CK_CLONES void ck_gelu(float *x, long n) {
    for (long i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + ck_erff(v * 0.70710678118654752f));
    }
}

CK_CLONES void ck_softmax_rows(float *x, long rows, long cols, long stride, float scale) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * stride;
        float shift = ck_max(row, cols) * scale;
        for (long i = 0; i < cols; i++) row[i] = ck_expf(row[i] * scale - shift);
        float inverse = 1.0f / ck_sum(row, cols);
        for (long i = 0; i < cols; i++) row[i] *= inverse;
    }
}

CK_CLONES void ck_layernorm(const float *x, long rows, long dim, const float *w, const float *b, float eps, float *y, long ldy) {
    for (long r = 0; r < rows; r++) {
        const float *src = x + r * dim;
        float *dst = y + r * ldy;
        float mean = ck_sum(src, dim) / (float)dim;
        float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        long i = 0;
        for (; i + 8 <= dim; i += 8)
            for (int k = 0; k < 8; k++) lanes[k] += (src[i + k] - mean) * (src[i + k] - mean);
        float squares = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
        for (; i < dim; i++) squares += (src[i] - mean) * (src[i] - mean);
        float inverse = 1.0f / sqrtf(squares / (float)dim + eps);
        for (long j = 0; j < dim; j++) dst[j] = (src[j] - mean) * inverse * w[j] + b[j];
    }
}
