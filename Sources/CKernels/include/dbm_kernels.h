// Element-wise float kernels in C, so that they can be compiled for more than baseline x86-64: the
// loops in dbm_kernels.c are built twice (AVX2 + FMA, and baseline SSE2) and the loader picks one for
// the CPU (target_clones); Swift code is built for baseline x86-64 only. The scalar functions here are
// the one home of the formulas; Swift's NNFloat calls them too (DBMNN/Support.swift).
#ifndef DBM_KERNELS_H
#define DBM_KERNELS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

// Cephes expf: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two for an exact product), e^r by a
// degree-6 polynomial (≤ 2 ulp), 2^n assembled in the exponent bits. n comes from adding 1.5·2²³,
// which rounds x/ln2 to an integer in the low mantissa bits: no float-to-int conversion, no branch,
// so loops over it vectorise (glibc's expf is a call per element, 3.3 ns here). The polynomial is
// evaluated by Estrin's scheme (short dependency chains). For x in [−87.34, 88.72] only.
static inline float dbm_exp_in_range_f32(float x) {
    float t = x * 1.44269504f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    float r2 = r * r, r4 = r2 * r2;
    float q = (5.0000001201e-1f + 1.6666665459e-1f * r) + (4.1665795894e-2f + 8.3334519073e-3f * r) * r2
            + (1.3981999507e-3f + 1.9875691500e-4f * r) * r4;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4B400000u + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return (q * r2 + r + 1) * scale;
}

// e^x for the hot loops (softmax, attention, GELU): inputs clamped to [−87.34, 88.72] (results 2⁻¹²⁶ … ∞),
// below that 0 (no subnormals; a −∞ mask gives exact zeros); NaN stays NaN.
static inline float dbm_exp_f32(float x) {
    float c = x < -87.33654f ? -87.33654f : (x > 88.72283f ? 88.72283f : x);
    float e = dbm_exp_in_range_f32(c);
    return x < -87.33654f ? 0.0f : e;
}

// Φ(x) and φ(x), the standard normal CDF and density, sharing one exp. With z = |x|/√2 and
// t = 1/(1 + z/2): erfc(z) = t·e^(−z²)·R(t), R smooth on (0, 1] (the form of Numerical Recipes' erfcc,
// whose exp(poly(t)) is replaced by a polynomial fitted to erfc(z)·e^(z²)/t: degree 10, relative error
// 2.5e-8 in exact arithmetic). Φ(x) = 1 − erfc(z)/2 for x ≥ 0, erfc(z)/2 for x < 0 (the left tail keeps
// its relative accuracy: ≤ 1.5e-6 for x ≥ −4, the exp of −z² limiting beyond). 1/√(2π) sits in the
// exponent (φ comes straight out of the exp) and √(2π)/2 in R's coefficients (erfc(z)/2 = t·φ·R̃(t)); the
// exponent is clamped at −80, where everything stays a normal number: for |x| > 12.57, φ and the left
// tail of Φ come out as about 1e-35 instead of their smaller true values, absolutely negligible.
// Measured against float64, GELU's relative error ≤ 1.0e-6 for x ≥ −4 and ≤ 2.1e-6 for −8 ≤ x < −4.
static inline void dbm_normal_cdf_pdf_f32(float x, float *cdf, float *pdf) {
    float t = 1 / (1 + fabsf(x) * 0.35355339059327376f);
    float e = x * x * -0.5f - 0.91893853320467274f;
    float p = dbm_exp_in_range_f32(e < -80.0f ? -80.0f : e);
    float t2 = t * t, t4 = t2 * t2, t8 = t4 * t4;
    float r = ((0.3535526904899872f + 0.35359260096205575f * t) + (0.30856867839025853f + 0.2286480351619912f * t) * t2)
            + ((0.06435429716902706f + 0.11588933639911572f * t) + (-0.2649676154031617f + 0.0449950050127987f * t) * t2) * t4
            + (0.08177447815274667f + -0.033094121220121835f * t) * t8;
    float half = t * p * r;   // erfc(z)/2
    *cdf = x >= 0 ? 1 - half : half;
    *pdf = p;
}

static inline double dbm_exp_f64(double x) { return exp(x); }

static inline void dbm_normal_cdf_pdf_f64(double x, double *cdf, double *pdf) {
    *cdf = 0.5 * erfc(-x * 0.70710678118654752440);
    *pdf = 0.39894228040143267794 * exp(-0.5 * x * x);
}

// GELU, exact x·Φ(x) (`tanh` = 0: erf form) or the tanh approximation 0.5·x·(1 + tanh u),
// u = √(2/π)(x + 0.044715x³). x, out, deriv, dout, dinp are (n).
//   forward:  out = GELU(x), and deriv = GELU'(x) when deriv is not NULL;
//   backward: dinp = dout · GELU'(x);
//   backward_from_output: the same, with Φ(x) = out/x taken from the forward's output (one exp instead of
//   the erfc polynomial; tanh: no exp at all); dinp may be out itself.
void dbm_gelu_forward_f32(int tanh_form, float *out, float *deriv, const float *x, long n);
void dbm_gelu_backward_f32(int tanh_form, float *dinp, const float *dout, const float *x, long n);
void dbm_gelu_backward_from_output_f32(int tanh_form, float *dinp, const float *dout, const float *x,
                                       const float *out, long n);
void dbm_gelu_forward_f64(int tanh_form, double *out, double *deriv, const double *x, long n);
void dbm_gelu_backward_f64(int tanh_form, double *dinp, const double *dout, const double *x, long n);
void dbm_gelu_backward_from_output_f64(int tanh_form, double *dinp, const double *dout, const double *x,
                                       const double *out, long n);

// Causal attention's row loops (DBMNN/Attention.swift), over the n = i + 1 keys of query row i:
//   exp_shift_sum: row ← e^(row − shift), returns Σ row (P's row before normalising; shift = max or lse);
//   scale: row ← s · row;
//   softmax_backward_row: dp ← p ⊙ (dp − Σ_j p·dp) (dS from P and dP).
// Sums in 16 partial sums, as DBMNN's vsum and vdot.
float dbm_exp_shift_sum_f32(float *row, float shift, long n);
void dbm_scale_f32(float *row, float s, long n);
void dbm_softmax_backward_row_f32(const float *p, float *dp, long n);
double dbm_exp_shift_sum_f64(double *row, double shift, long n);
void dbm_scale_f64(double *row, double s, long n);
void dbm_softmax_backward_row_f64(const double *p, double *dp, long n);

// dst (cols, rows) with leading dimension ldd ← srcᵀ, src (rows, cols) with leading dimension lds: in
// 8 × 8 blocks through AVX registers where the CPU has AVX (float32), else in tiles of 8 rows.
void dbm_transpose_f32(float *dst, long ldd, const float *src, long lds, long rows, long cols);
void dbm_transpose_f64(double *dst, long ldd, const double *src, long lds, long rows, long cols);

// Attention's small float32 products (dbm_small_gemm.c): C (m, n) = alpha · Σ_p A(i, p) · B(p, j) with
// A(i, p) at a[i·ars + p·acs] (any strides: Aᵀ is A with the strides swapped), B row-major with leading
// dimension ldb, C row-major with leading dimension ldc, overwritten (C's old values are never read).
// Returns 1 when done, 0 (nothing written) when the CPU lacks AVX2 with FMA: the caller uses BLAS.
int dbm_small_sgemm(long m, long n, long k, float alpha, const float *a, long ars, long acs,
                    const float *b, long ldb, float *c, long ldc);

// 1 where the CPU has AVX2 and FMA and the OS saves their registers (XCR0): the kernels written with
// AVX2 intrinsics run (the product above, attention's float32 row loops); 0 elsewhere.
int dbm_avx2_fma_available(void);

#endif
