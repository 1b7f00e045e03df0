// Which OpenBLAS kernel runs, and choosing a better one when OpenBLAS fell back to a generic one (issue 12).
//
// OpenBLAS reads OPENBLAS_CORETYPE once, when the library loads, before main. Debian 12's 0.3.21 does not
// know every CPU and silently falls back to its SSE3 `Prescott` kernels there (1.6–4× slower). A
// constructor in this target (linked into every executable of the package: dbm-lua, dbm-bench, the test
// runner) looks at the kernel OpenBLAS picked; when it is below what the CPU and the OS support (CPUID and
// XCR0), it restarts the process once (execv of /proc/self/exe, same arguments and streams) with
// OPENBLAS_CORETYPE set to the best kernel this OpenBLAS build has. After the restart it confirms the
// kernel and checks a few sgemm/dgemm products against plain loops in a child process; on a failure it
// restarts once more with the kernel OpenBLAS first picked. Then it removes its variables from the
// environment, so child processes see the user's own. A user or machine that sets OPENBLAS_CORETYPE or
// OPENBLAS_L2_SIZE is obeyed: nothing is changed.
#ifndef DBM_BLAS_KERNEL_H
#define DBM_BLAS_KERNEL_H

// The CPU's vector features, as far as the OS enables them (XCR0).
typedef struct {
    int avx2_fma;      // AVX, AVX2 and FMA, YMM state enabled by the OS
    int avx512;        // AVX-512 F, BW, DQ and VL, opmask and ZMM state enabled by the OS
    int avx512_bf16;   // AVX512_BF16 (Cooper Lake and later)
    int amx_bf16;      // AMX-BF16 and AMX-TILE with the tile state enabled (Sapphire Rapids and later)
    int amd;           // vendor AuthenticAMD
} dbm_cpu_features;

// The features of this CPU (all zero on other architectures).
dbm_cpu_features dbm_cpu_detect(void);

// 3 for an AVX-512 kernel (SkylakeX, Cooperlake, SapphireRapids), 2 for AVX2 (Haswell, Zen, Excavator),
// 1 for AVX-only kernels (Sandybridge, Bulldozer, ...), 0 for the generic SSE ones (Prescott, Core2, ...).
int dbm_blas_core_level(const char *core);

// The kernels dbm-lua may ask for, as bits of a set.
enum { DBM_CORE_HASWELL = 1, DBM_CORE_ZEN = 2, DBM_CORE_SKYLAKEX = 4, DBM_CORE_COOPERLAKE = 8, DBM_CORE_SAPPHIRERAPIDS = 16 };

// The kernel to ask for when OpenBLAS picked `picked` on a CPU with features `f`, or NULL to keep it:
// only when `picked` is below AVX2 and the CPU has AVX2 and FMA; the best of SapphireRapids, Cooperlake,
// SkylakeX (AVX-512), then Zen (AMD) or Haswell, among `available` (a set of DBM_CORE_* bits).
const char *dbm_blas_better_core(const char *picked, dbm_cpu_features f, unsigned available);

// The DBM_CORE_* kernels this OpenBLAS build has (a DYNAMIC_ARCH build exports gotoblas_<NAME> for each).
unsigned dbm_blas_build_cores(void);

// Checks sgemm and dgemm (several shapes and transpositions, several threads) against plain loops:
// 1 when every element is within (k + 2)·u·(|A||B|)ᵢⱼ, else 0.
int dbm_blas_products_agree(void);

// What runs, as the constructor settled it: the kernel in use, the one OpenBLAS picked on its own, and
// who chose the kernel in use: "openblas", "user" (OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE was set) or
// "dbm-lua". dbm_blas_note is NULL or the message printed on stderr when a chosen kernel failed its check.
const char *dbm_blas_core(void);
const char *dbm_blas_openblas_core(void);
const char *dbm_blas_source(void);
const char *dbm_blas_note(void);

#endif
