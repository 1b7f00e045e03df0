#include "dbm_kernels.h"

// Attention's per-head products (DBMNN/Attention.swift) without BLAS's fixed costs. At the `cpu`
// preset (T = 64, head size 32) each product is 32 × 64 × 32 or so, and in perf of attention forward +
// backward OpenBLAS's sgemm kernel was 28% of the samples, its packing copies 16%, the mutex of its
// buffer allocator 8% and its beta pass 4%. Here A is read by broadcasts straight from its rows or
// columns (so Aᵀ costs nothing), B by vector loads from its rows, C written once: no copies at all.
// The tile is 4 rows × 16 columns: 8 accumulators, as many as the two FMA pipes × 4 cycles of latency
// keep busy.

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

// C[0..mr, 0..8·nv] = alpha · Σ_p A(r, p) · B(p, ·); the last of the nv vectors of columns is masked
// (tail) when `masked`. mr, nv and masked are constants at every call: the loops unroll.
INLINE AVX2 void tile_f32(int mr, int nv, int masked, __m256i mask, long k, float alpha,
                          const float *a, long ars, long acs, const float *b, long ldb, float *c, long ldc) {
    __m256 acc[4][2];
    for (int r = 0; r < mr; r++) for (int v = 0; v < nv; v++) acc[r][v] = _mm256_setzero_ps();
    for (long p = 0; p < k; p++) {
        const float *bp = b + p * ldb;
        __m256 bv[2];
        for (int v = 0; v < nv; v++)
            bv[v] = masked && v == nv - 1 ? _mm256_maskload_ps(bp + 8 * v, mask) : _mm256_loadu_ps(bp + 8 * v);
        const float *ap = a + p * acs;
        for (int r = 0; r < mr; r++) {
            __m256 ar = _mm256_broadcast_ss(ap + r * ars);
            for (int v = 0; v < nv; v++) acc[r][v] = _mm256_fmadd_ps(ar, bv[v], acc[r][v]);
        }
    }
    __m256 s = _mm256_set1_ps(alpha);
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) {
            __m256 x = _mm256_mul_ps(acc[r][v], s);
            if (masked && v == nv - 1) _mm256_maskstore_ps(c + r * ldc + 8 * v, mask, x);
            else _mm256_storeu_ps(c + r * ldc + 8 * v, x);
        }
}

// One block of up to 4 rows across all n columns: tiles of 16, then 8, then the masked tail.
INLINE AVX2 void rows_f32(int mr, long n, long k, float alpha, const float *a, long ars, long acs,
                          const float *b, long ldb, float *c, long ldc) {
    long j = 0;
    __m256i all = _mm256_set1_epi32(-1);
    for (; j + 16 <= n; j += 16) tile_f32(mr, 2, 0, all, k, alpha, a, ars, acs, b + j, ldb, c + j, ldc);
    if (j + 8 <= n) { tile_f32(mr, 1, 0, all, k, alpha, a, ars, acs, b + j, ldb, c + j, ldc); j += 8; }
    if (j < n) {
        __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - j)), lane);
        tile_f32(mr, 1, 1, mask, k, alpha, a, ars, acs, b + j, ldb, c + j, ldc);
    }
}

static AVX2 void small_sgemm_avx2(long m, long n, long k, float alpha, const float *a, long ars, long acs,
                                  const float *b, long ldb, float *c, long ldc) {
    long i = 0;
    for (; i + 4 <= m; i += 4) rows_f32(4, n, k, alpha, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc);
    switch (m - i) {
    case 3: rows_f32(3, n, k, alpha, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc); break;
    case 2: rows_f32(2, n, k, alpha, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc); break;
    case 1: rows_f32(1, n, k, alpha, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc); break;
    default: break;
    }
}

int dbm_small_sgemm(long m, long n, long k, float alpha, const float *a, long ars, long acs,
                    const float *b, long ldb, float *c, long ldc) {
    if (!dbm_avx2_fma_available()) return 0;
    if (m > 0 && n > 0) {
        if (k == 0) { for (long i = 0; i < m; i++) memset(c + i * ldc, 0, (size_t)n * sizeof(float)); }
        else small_sgemm_avx2(m, n, k, alpha, a, ars, acs, b, ldb, c, ldc);
    }
    return 1;
}
#else
int dbm_small_sgemm(long m, long n, long k, float alpha, const float *a, long ars, long acs,
                    const float *b, long ldb, float *c, long ldc) {
    (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)ars; (void)acs; (void)b; (void)ldb; (void)c; (void)ldc;
    return 0;
}
#endif
