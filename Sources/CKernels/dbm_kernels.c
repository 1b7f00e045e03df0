#include "dbm_kernels.h"

// Each loop is compiled for AVX2 + FMA (x86-64-v3) and for baseline x86-64; the dynamic loader picks
// the clone for the CPU it runs on (an ifunc). Measured on the `paper` preset's GELUs (16384 × 1536
// float32): see DBMNN/GELU.swift.
#if defined(__x86_64__) && defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

// One definition per precision: T the element type, S the suffix of the scalar helpers, SAFE_LOOP the
// pragma of the loops that write over their input (float64's exp and erfc are libm calls: no vectors).
#define ASSUME_SAFE _Pragma("clang loop vectorize(assume_safety)")
#define GELU_KERNELS(T, S, SAFE_LOOP)                                                                                  \
CLONES void dbm_gelu_forward_##S(int tanh_form, T *out, T *deriv, const T *x, long n) {                     \
    const T k = (T)0.79788456080286535588, c = (T)0.044715;   /* √(2/π) */                                  \
    if (!tanh_form && !deriv) {                                                                             \
        for (long i = 0; i < n; i++) { T cdf, pdf; dbm_normal_cdf_pdf_##S(x[i], &cdf, &pdf); out[i] = x[i] * cdf; } \
    } else if (!tanh_form) {                                                                                \
        for (long i = 0; i < n; i++) {                                                                      \
            T cdf, pdf; dbm_normal_cdf_pdf_##S(x[i], &cdf, &pdf);                                           \
            out[i] = x[i] * cdf; deriv[i] = cdf + x[i] * pdf;                                               \
        }                                                                                                   \
    } else {   /* tanh u = 1 − 2/(1 + e^(2u)) */                                                            \
        for (long i = 0; i < n; i++) {                                                                      \
            T v = x[i], v2 = v * v, t = 1 - 2 / (1 + dbm_exp_##S(2 * k * (v + c * v2 * v)));                \
            out[i] = (T)0.5 * v * (1 + t);                                                                  \
            if (deriv) deriv[i] = (T)0.5 * (1 + t) + (T)0.5 * v * (1 - t * t) * k * (1 + 3 * c * v2);       \
        }                                                                                                   \
    }                                                                                                       \
}                                                                                                           \
                                                                                                            \
CLONES void dbm_gelu_backward_##S(int tanh_form, T *dinp, const T *dout, const T *x, long n) {              \
    const T k = (T)0.79788456080286535588, c = (T)0.044715;                                                 \
    if (!tanh_form) {                                                                                       \
        for (long i = 0; i < n; i++) {                                                                      \
            T cdf, pdf; dbm_normal_cdf_pdf_##S(x[i], &cdf, &pdf); dinp[i] = dout[i] * (cdf + x[i] * pdf);   \
        }                                                                                                   \
    } else {                                                                                                \
        for (long i = 0; i < n; i++) {                                                                      \
            T v = x[i], v2 = v * v, t = 1 - 2 / (1 + dbm_exp_##S(2 * k * (v + c * v2 * v)));                \
            dinp[i] = dout[i] * ((T)0.5 * (1 + t) + (T)0.5 * v * (1 - t * t) * k * (1 + 3 * c * v2));      \
        }                                                                                                   \
    }                                                                                                       \
}                                                                                                           \
                                                                                                            \
/* Φ(x) = out/x (Φ(0) = 1/2; the quotient is computed first and then selected: a division under the   */  \
/* condition stays a branch). out/x carries out's relative rounding (a few ulp) into Φ. dinp may be out: */  \
/* each element is read before it is written, so the loop is vectorised without an overlap check (which */  \
/* fails for dinp == out and falls back to scalar code).                                                 */  \
CLONES void dbm_gelu_backward_from_output_##S(int tanh_form, T *dinp, const T *dout, const T *x,            \
                                              const T *out, long n) {                                       \
    const T k = (T)0.79788456080286535588, c = (T)0.044715, inv_sqrt_2pi = (T)0.39894228040143267794;       \
    if (!tanh_form) {                                                                                       \
        SAFE_LOOP                                                                                           \
        for (long i = 0; i < n; i++) {                                                                      \
            T v = x[i], q = out[i] / v, cdf = v != 0 ? q : (T)0.5;                                          \
            dinp[i] = dout[i] * (cdf + v * inv_sqrt_2pi * dbm_exp_##S(v * v * (T)-0.5));                    \
        }                                                                                                   \
    } else {                                                                                                \
        SAFE_LOOP                                                                                           \
        for (long i = 0; i < n; i++) {                                                                      \
            T v = x[i], v2 = v * v, q = 2 * out[i] / v - 1, t = v != 0 ? q : 0;   /* 1 + tanh u = 2·out/x */ \
            dinp[i] = dout[i] * ((T)0.5 * (1 + t) + (T)0.5 * v * (1 - t * t) * k * (1 + 3 * c * v2));      \
        }                                                                                                   \
    }                                                                                                       \
}

GELU_KERNELS(float, f32, ASSUME_SAFE)
GELU_KERNELS(double, f64, )

// ---------------------------------------------------------------------- attention rows

#define ATTENTION_KERNELS(T, S)                                                                             \
CLONES T dbm_exp_shift_sum_##S(T *row, T shift, long n) {                                                  \
    T acc[16] = {0};                                                                                        \
    long j = 0;                                                                                             \
    for (; j + 16 <= n; j += 16)                                                                            \
        for (int k = 0; k < 16; k++) { T e = dbm_exp_##S(row[j + k] - shift); row[j + k] = e; acc[k] += e; } \
    T s = 0;                                                                                                \
    for (int k = 0; k < 16; k++) s += acc[k];                                                               \
    for (; j < n; j++) { T e = dbm_exp_##S(row[j] - shift); row[j] = e; s += e; }                           \
    return s;                                                                                               \
}                                                                                                           \
                                                                                                            \
CLONES void dbm_scale_##S(T *row, T s, long n) { for (long j = 0; j < n; j++) row[j] *= s; }               \
                                                                                                            \
CLONES void dbm_softmax_backward_row_##S(const T *p, T *dp, long n) {                                      \
    T acc[16] = {0};                                                                                        \
    long j = 0;                                                                                             \
    for (; j + 16 <= n; j += 16) for (int k = 0; k < 16; k++) acc[k] += p[j + k] * dp[j + k];               \
    T dot = 0;                                                                                              \
    for (int k = 0; k < 16; k++) dot += acc[k];                                                             \
    for (; j < n; j++) dot += p[j] * dp[j];                                                                 \
    for (j = 0; j < n; j++) dp[j] = p[j] * (dp[j] - dot);                                                   \
}                                                                                                           \
                                                                                                            \
static void transpose_tiles_##S(T *dst, long ldd, const T *src, long lds, long rows, long cols) {          \
    for (long i0 = 0; i0 < rows; i0 += 8) {                                                                 \
        long i1 = i0 + 8 < rows ? i0 + 8 : rows;                                                            \
        for (long j = 0; j < cols; j++)                                                                     \
            for (long i = i0; i < i1; i++) dst[j * ldd + i] = src[i * lds + j];                             \
    }                                                                                                       \
}

ATTENTION_KERNELS(float, f32)
ATTENTION_KERNELS(double, f64)

void dbm_transpose_f64(double *dst, long ldd, const double *src, long lds, long rows, long cols) {
    transpose_tiles_f64(dst, ldd, src, lds, rows, cols);
}

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>

// One 8 × 8 block: rows of src in eight registers, transposed by unpack, shuffle and 128-bit permutes.
__attribute__((target("avx"))) static void transpose_8x8(float *dst, long ldd, const float *src, long lds) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds), r2 = _mm256_loadu_ps(src + 2 * lds),
           r3 = _mm256_loadu_ps(src + 3 * lds), r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds),
           r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
           t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
           t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE), u2 = _mm256_shuffle_ps(t1, t3, 0x44),
           u3 = _mm256_shuffle_ps(t1, t3, 0xEE), u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}

void dbm_transpose_f32(float *dst, long ldd, const float *src, long lds, long rows, long cols) {
    static int avx = -1;   // a benign race: every thread computes the same value
    if (avx < 0) { __builtin_cpu_init(); avx = __builtin_cpu_supports("avx") ? 1 : 0; }
    if (!avx) { transpose_tiles_f32(dst, ldd, src, lds, rows, cols); return; }
    long r8 = rows / 8 * 8, c8 = cols / 8 * 8;
    for (long i = 0; i < r8; i += 8)
        for (long j = 0; j < c8; j += 8) transpose_8x8(dst + j * ldd + i, ldd, src + i * lds + j, lds);
    if (c8 < cols) transpose_tiles_f32(dst + c8 * ldd, ldd, src + c8, lds, r8, cols - c8);   // right columns
    if (r8 < rows) transpose_tiles_f32(dst + r8, ldd, src + r8 * lds, lds, rows - r8, cols); // bottom rows
}
#else
void dbm_transpose_f32(float *dst, long ldd, const float *src, long lds, long rows, long cols) {
    transpose_tiles_f32(dst, ldd, src, lds, rows, cols);
}
#endif
