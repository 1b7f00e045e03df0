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
