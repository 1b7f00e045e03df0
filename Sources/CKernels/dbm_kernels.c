#include "dbm_kernels.h"
#include "dbm_blas_kernel.h"   // dbm_cpu_detect: the CPU features as the BLAS kernel choice sees them

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
CLONES static T exp_shift_sum_loop_##S(T *row, T shift, long n) {                                                  \
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
CLONES static void scale_loop_##S(T *row, T s, long n) { for (long j = 0; j < n; j++) row[j] *= s; }               \
                                                                                                            \
CLONES static void softmax_backward_row_loop_##S(const T *p, T *dp, long n) {                                      \
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
double dbm_exp_shift_sum_f64(double *row, double shift, long n) { return exp_shift_sum_loop_f64(row, shift, n); }
void dbm_scale_f64(double *row, double s, long n) { scale_loop_f64(row, s, n); }
void dbm_softmax_backward_row_f64(const double *p, double *dp, long n) { softmax_backward_row_loop_f64(p, dp, n); }

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

// The float32 row loops with AVX2 + FMA written out: the compiled loops above run 16 lanes at a time and
// finish each row one element at a time, and attention's rows are short (the cpu preset's average 32
// keys: a quarter of the elements in the scalar tail, most of the exp time). Here the last < 8 elements
// go through one masked vector. exp8 is dbm_exp_f32 on eight lanes (the same constants and steps).
#define AVX2 __attribute__((target("avx2,fma")))
static inline AVX2 __m256 exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.33654f), hi = _mm256_set1_ps(88.72283f), magic = _mm256_set1_ps(12582912.0f);
    __m256 c = _mm256_min_ps(hi, _mm256_max_ps(lo, x));   // NaN stays NaN (min/max return their second operand)
    __m256 t = _mm256_fmadd_ps(c, _mm256_set1_ps(1.44269504f), magic);
    __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), c));
    __m256 r2 = _mm256_mul_ps(r, r), r4 = _mm256_mul_ps(r2, r2);
    __m256 q = _mm256_add_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.3334519073e-3f), r, _mm256_set1_ps(4.1665795894e-2f)), r2,
                        _mm256_fmadd_ps(_mm256_set1_ps(1.6666665459e-1f), r, _mm256_set1_ps(5.0000001201e-1f))),
        _mm256_mul_ps(_mm256_fmadd_ps(_mm256_set1_ps(1.9875691500e-4f), r, _mm256_set1_ps(1.3981999507e-3f)), r4));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B400000)),
                                                      _mm256_set1_epi32(127)), 23);
    __m256 e = _mm256_mul_ps(_mm256_add_ps(_mm256_fmadd_ps(q, r2, r), _mm256_set1_ps(1.0f)), _mm256_castsi256_ps(bits));
    return _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), e);   // below the range: 0
}
static inline AVX2 __m256i tail_mask(long count) {   // lanes 0 ..< count (1 ≤ count < 8)
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline AVX2 float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
static AVX2 float exp_shift_sum_avx2(float *row, float shift, long n) {
    __m256 s = _mm256_set1_ps(shift), acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    long j = 0;
    for (; j + 16 <= n; j += 16) {
        __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), s)), e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j + 8), s));
        _mm256_storeu_ps(row + j, e0); _mm256_storeu_ps(row + j + 8, e1);
        acc0 = _mm256_add_ps(acc0, e0); acc1 = _mm256_add_ps(acc1, e1);
    }
    if (j + 8 <= n) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), s));
        _mm256_storeu_ps(row + j, e); acc0 = _mm256_add_ps(acc0, e); j += 8;
    }
    if (j < n) {
        __m256i m = tail_mask(n - j);
        __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(row + j, m), s)), _mm256_castsi256_ps(m));
        _mm256_maskstore_ps(row + j, m, e); acc1 = _mm256_add_ps(acc1, e);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}
static AVX2 void scale_avx2(float *row, float s, long n) {
    __m256 f = _mm256_set1_ps(s);
    long j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(row + j, _mm256_mul_ps(_mm256_loadu_ps(row + j), f));
    if (j < n) { __m256i m = tail_mask(n - j); _mm256_maskstore_ps(row + j, m, _mm256_mul_ps(_mm256_maskload_ps(row + j, m), f)); }
}
static AVX2 void softmax_backward_row_avx2(const float *p, float *dp, long n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    long j = 0;
    for (; j + 16 <= n; j += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(p + j), _mm256_loadu_ps(dp + j), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(p + j + 8), _mm256_loadu_ps(dp + j + 8), acc1);
    }
    if (j + 8 <= n) { acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(p + j), _mm256_loadu_ps(dp + j), acc0); j += 8; }
    if (j < n) { __m256i m = tail_mask(n - j); acc1 = _mm256_fmadd_ps(_mm256_maskload_ps(p + j, m), _mm256_maskload_ps(dp + j, m), acc1); }
    __m256 dot = _mm256_set1_ps(hsum8(_mm256_add_ps(acc0, acc1)));
    for (j = 0; j + 8 <= n; j += 8)
        _mm256_storeu_ps(dp + j, _mm256_mul_ps(_mm256_loadu_ps(p + j), _mm256_sub_ps(_mm256_loadu_ps(dp + j), dot)));
    if (j < n) {
        __m256i m = tail_mask(n - j);
        _mm256_maskstore_ps(dp + j, m, _mm256_mul_ps(_mm256_maskload_ps(p + j, m), _mm256_sub_ps(_mm256_maskload_ps(dp + j, m), dot)));
    }
}
int dbm_avx2_fma_available(void) {
    static int available = -1;   // a benign race: every thread computes the same value (CPUID is slow in a VM: once)
    if (available < 0) available = dbm_cpu_detect().avx2_fma ? 1 : 0;
    return available;
}
float dbm_exp_shift_sum_f32(float *row, float shift, long n) {
    return dbm_avx2_fma_available() ? exp_shift_sum_avx2(row, shift, n) : exp_shift_sum_loop_f32(row, shift, n);
}
void dbm_scale_f32(float *row, float s, long n) { if (dbm_avx2_fma_available()) scale_avx2(row, s, n); else scale_loop_f32(row, s, n); }
void dbm_softmax_backward_row_f32(const float *p, float *dp, long n) {
    if (dbm_avx2_fma_available()) softmax_backward_row_avx2(p, dp, n); else softmax_backward_row_loop_f32(p, dp, n);
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
int dbm_avx2_fma_available(void) { return 0; }
void dbm_transpose_f32(float *dst, long ldd, const float *src, long lds, long rows, long cols) {
    transpose_tiles_f32(dst, ldd, src, lds, rows, cols);
}
float dbm_exp_shift_sum_f32(float *row, float shift, long n) { return exp_shift_sum_loop_f32(row, shift, n); }
void dbm_scale_f32(float *row, float s, long n) { scale_loop_f32(row, s, n); }
void dbm_softmax_backward_row_f32(const float *p, float *dp, long n) { softmax_backward_row_loop_f32(p, dp, n); }
#endif
