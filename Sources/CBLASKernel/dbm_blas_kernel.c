// See dbm_blas_kernel.h. Plain C, run from a constructor: before main, before the Swift runtime and any
// Lua, and before any thread of ours exists.
#define _GNU_SOURCE
#include "dbm_blas_kernel.h"

#include <cblas.h>
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

// The restart's guard: "<stage> <kernel OpenBLAS picked> <kernel asked for>", stage 1 after the first
// restart, 2 after the fallback. Never left in the environment of the program itself.
static const char *const guard_variable = "DBM_LUA_BLAS_RESTART";
// For tests of the fallback path only: "fail" makes the check after a restart fail.
static const char *const test_check_variable = "DBM_LUA_TEST_BLAS_CHECK";

static char openblas_core[32] = "";
static const char *source = "openblas";
static char note[256] = "";

const char *dbm_blas_core(void) { return openblas_get_corename(); }
const char *dbm_blas_openblas_core(void) { return openblas_core[0] ? openblas_core : openblas_get_corename(); }
const char *dbm_blas_source(void) { return source; }
const char *dbm_blas_note(void) { return note[0] ? note : NULL; }

// ---------------------------------------------------------------------- the CPU

#if defined(__x86_64__)
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

dbm_cpu_features dbm_cpu_detect(void) {
    dbm_cpu_features f = {0, 0, 0, 0, 0};
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
    unsigned max_leaf = a;
    f.amd = b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163;   // "AuthenticAMD"
    __get_cpuid(1, &a, &b, &c, &d);
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx || max_leaf < 7) return f;
    uint64_t xcr0 = xgetbv0();
    int ymm_state = (xcr0 & 0x6) == 0x6;                  // SSE and AVX state
    int zmm_state = ymm_state && (xcr0 & 0xe0) == 0xe0;   // opmask, ZMM_Hi256, Hi16_ZMM
    int tile_state = (xcr0 & 0x60000) == 0x60000;         // XTILECFG, XTILEDATA
    __cpuid_count(7, 0, a, b, c, d);
    unsigned leaf7_eax = a;
    int avx2 = (b >> 5) & 1;
    int avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);   // F, DQ, BW, VL
    int amx = ((d >> 22) & 1) && ((d >> 24) & 1);                                             // AMX-BF16, AMX-TILE
    int bf16 = 0;
    if (leaf7_eax >= 1) { __cpuid_count(7, 1, a, b, c, d); bf16 = (a >> 5) & 1; }
    f.avx2_fma = ymm_state && avx2 && fma;
    f.avx512 = f.avx2_fma && zmm_state && avx512;
    f.avx512_bf16 = f.avx512 && bf16;
    f.amx_bf16 = f.avx512 && amx && tile_state;
#endif
    return f;
}

// ---------------------------------------------------------------------- the kernels

int dbm_blas_core_level(const char *core) {
    static const char *const avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
    static const char *const avx2[] = {"Haswell", "Zen", "Excavator"};
    static const char *const avx[] = {"Sandybridge", "Bulldozer", "Piledriver", "Steamroller"};
    if (core == NULL) return 0;
    for (size_t i = 0; i < sizeof avx512 / sizeof *avx512; i++) if (!strcasecmp(core, avx512[i])) return 3;
    for (size_t i = 0; i < sizeof avx2 / sizeof *avx2; i++) if (!strcasecmp(core, avx2[i])) return 2;
    for (size_t i = 0; i < sizeof avx / sizeof *avx; i++) if (!strcasecmp(core, avx[i])) return 1;
    return 0;
}

const char *dbm_blas_better_core(const char *picked, dbm_cpu_features f, unsigned available) {
    // A kernel OpenBLAS chose for this CPU on purpose (Haswell or Zen on a CPU with AVX-512, say) stays.
    if (!f.avx2_fma || dbm_blas_core_level(picked) >= 2) return NULL;
    if (f.avx512) {
        if (f.avx512_bf16 && f.amx_bf16 && (available & DBM_CORE_SAPPHIRERAPIDS)) return "SapphireRapids";
        if (f.avx512_bf16 && (available & DBM_CORE_COOPERLAKE)) return "Cooperlake";
        if (available & DBM_CORE_SKYLAKEX) return "SkylakeX";
    }
    if (f.amd && (available & DBM_CORE_ZEN)) return "Zen";
    if (available & DBM_CORE_HASWELL) return "Haswell";
    return NULL;
}

unsigned dbm_blas_build_cores(void) {
    static const struct { const char *symbol; unsigned bit; } tables[] = {
        {"gotoblas_HASWELL", DBM_CORE_HASWELL}, {"gotoblas_ZEN", DBM_CORE_ZEN}, {"gotoblas_SKYLAKEX", DBM_CORE_SKYLAKEX},
        {"gotoblas_COOPERLAKE", DBM_CORE_COOPERLAKE}, {"gotoblas_SAPPHIRERAPIDS", DBM_CORE_SAPPHIRERAPIDS}};
    if (dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init") == NULL) return 0;   // not a DYNAMIC_ARCH build
    unsigned cores = 0;
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) if (dlsym(RTLD_DEFAULT, tables[i].symbol)) cores |= tables[i].bit;
    return cores;
}

// ---------------------------------------------------------------------- the check

static double next_uniform(uint64_t *state) {   // in [-1, 1)
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*state >> 11) * 0x1p-52 - 1.0;
}

// C = op(A)·op(B) in float (or double), m×n with inner size k, against a loop in double (long double):
// a correctly working kernel is within γ_k·(|A||B|)ᵢⱼ ≈ k·u·(|A||B|)ᵢⱼ; (k + 2)·u leaves room for the
// reference's own rounding (u = 2⁻²⁴ against 2⁻⁵³, and 2⁻⁵³ against 2⁻⁶⁴).
static int product_agrees(int dbl, int m, int n, int k, int ta, int tb, uint64_t seed) {
    size_t sa = (size_t)m * k, sb = (size_t)k * n, sc = (size_t)m * n;
    double *a = malloc(sa * sizeof *a), *b = malloc(sb * sizeof *b);
    void *c = malloc(sc * (dbl ? sizeof(double) : sizeof(float)));
    void *af = malloc(sa * (dbl ? sizeof(double) : sizeof(float))), *bf = malloc(sb * (dbl ? sizeof(double) : sizeof(float)));
    int ok = a && b && c && af && bf;
    if (ok) {
        for (size_t i = 0; i < sa; i++) { a[i] = next_uniform(&seed); if (!dbl) a[i] = (float)a[i]; }
        for (size_t i = 0; i < sb; i++) { b[i] = next_uniform(&seed); if (!dbl) b[i] = (float)b[i]; }
        for (size_t i = 0; i < sa; i++) { if (dbl) ((double *)af)[i] = a[i]; else ((float *)af)[i] = (float)a[i]; }
        for (size_t i = 0; i < sb; i++) { if (dbl) ((double *)bf)[i] = b[i]; else ((float *)bf)[i] = (float)b[i]; }
        // Row-major; op(A) is m×k stored as A (m×k, lda k) or Aᵀ (k×m, lda m); op(B) likewise.
        int lda = ta ? m : k, ldb = tb ? k : n;
        enum CBLAS_TRANSPOSE tA = ta ? CblasTrans : CblasNoTrans, tB = tb ? CblasTrans : CblasNoTrans;
        if (dbl) cblas_dgemm(CblasRowMajor, tA, tB, m, n, k, 1.0, af, lda, bf, ldb, 0.0, c, n);
        else cblas_sgemm(CblasRowMajor, tA, tB, m, n, k, 1.0f, af, lda, bf, ldb, 0.0f, c, n);
        double u = dbl ? 0x1p-53 : 0x1p-24;
        for (int i = 0; i < m && ok; i++) {
            for (int j = 0; j < n; j++) {
                long double exact = 0, scale = 0;
                for (int p = 0; p < k; p++) {
                    long double x = ta ? a[(size_t)p * m + i] : a[(size_t)i * k + p];
                    long double y = tb ? b[(size_t)j * k + p] : b[(size_t)p * n + j];
                    exact += x * y; scale += fabsl(x * y);
                }
                double got = dbl ? ((double *)c)[(size_t)i * n + j] : ((float *)c)[(size_t)i * n + j];
                if (!(fabsl((long double)got - exact) <= (k + 2) * u * scale)) { ok = 0; break; }
            }
        }
    }
    free(a); free(b); free(c); free(af); free(bf);
    return ok;
}

int dbm_blas_products_agree(void) {
    // Shapes that reach the small-matrix paths and the edge tiles of the blocked kernels (all four
    // transpositions), and one large enough for OpenBLAS to split over its threads; both precisions.
    // About 20 ms, paid once per start only where dbm-lua chose the kernel.
    static const int shapes[][4] = {{3, 5, 7, 4}, {13, 17, 19, 4}, {67, 45, 129, 4}, {192, 160, 128, 1}};
    uint64_t seed = 20261202;
    for (int dbl = 0; dbl <= 1; dbl++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (int t = 0; t < shapes[s][3]; t++)
                if (!product_agrees(dbl, shapes[s][0], shapes[s][1], shapes[s][2], t & 1, t >> 1, seed++)) return 0;
    return 1;
}

// The check in a child process, so that a kernel that crashes (an illegal instruction) fails it rather
// than the program. OpenBLAS stops its thread pool before fork and restarts it in the child on demand.
static int products_agree_in_child(void) {
    const char *forced = getenv(test_check_variable);
    if (forced && !strcmp(forced, "fail")) return 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return dbm_blas_products_agree();
    if (pid == 0) _exit(dbm_blas_products_agree() ? 0 : 1);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) { }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// ---------------------------------------------------------------------- the restart

static void restart(char **argv, int stage, const char *picked, const char *asked) {
    char value[96];
    snprintf(value, sizeof value, "%d %s %s", stage, picked, asked);
    setenv("OPENBLAS_CORETYPE", stage == 1 ? asked : picked, 1);   // stage 2: what OpenBLAS picked itself
    setenv(guard_variable, value, 1);
    fflush(NULL);
    execv("/proc/self/exe", argv);
    // exec failed: go on with the kernel loaded now; nothing of ours stays in the environment.
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(guard_variable);
}

__attribute__((constructor))
static void dbm_blas_choose_kernel(int argc, char **argv, char **envp) {
    (void)argc; (void)envp;
    const char *guard = getenv(guard_variable);
    if (guard) {
        int stage = 0;
        char picked[32] = "", asked[32] = "";
        int parsed = sscanf(guard, "%d %31s %31s", &stage, picked, asked);
        unsetenv(guard_variable);
        unsetenv("OPENBLAS_CORETYPE");
        snprintf(openblas_core, sizeof openblas_core, "%s", parsed == 3 ? picked : openblas_get_corename());
        if (parsed != 3) return;
        if (stage == 1) {
            if (!strcasecmp(openblas_get_corename(), asked) && products_agree_in_child()) { source = "dbm-lua"; return; }
            if (argv) restart(argv, 2, picked, asked);
            return;
        }
        snprintf(note, sizeof note, "dbm-lua: the BLAS kernel %s (chosen for this CPU instead of OpenBLAS's %s) failed "
                 "its check against plain loops; running %s. Set OPENBLAS_CORETYPE to choose one yourself.\n",
                 asked, picked, openblas_get_corename());
        fputs(note, stderr);
        return;
    }
    if (getenv("OPENBLAS_CORETYPE") || getenv("OPENBLAS_L2_SIZE")) { source = "user"; return; }
    const char *picked = openblas_get_corename();
    snprintf(openblas_core, sizeof openblas_core, "%s", picked);
    const char *better = dbm_blas_better_core(picked, dbm_cpu_detect(), dbm_blas_build_cores());
    if (better && argv) restart(argv, 1, openblas_core, better);
}
