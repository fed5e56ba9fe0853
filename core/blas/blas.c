/* blas.c — finds and opens OpenBLAS at run time and exposes GEMM.
 * See torsh/blas.h for why it is loaded late (to choose its AVX-512 kernels
 * on CPUs that Debian's OpenBLAS 0.3.21 does not recognise). The library is
 * searched as: $TORSH_BLAS, the soname libopenblas.so.0, then the path CMake
 * found at configure time (TORSH_BLAS_PATH). */
#include "torsh/blas.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TORSH_BLAS_PATH
#define TORSH_BLAS_PATH "libopenblas.so"
#endif

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double *, int, const double *, int, double, double *, int);

static struct {
    pthread_once_t once;
    ts_status status;
    char error[512];
    void *handle;
    sgemm_fn sgemm;
    dgemm_fn dgemm;
    void (*set_threads)(int);
    int (*get_threads)(void);
    char *(*get_corename)(void);
    char *(*get_config)(void);
    ts_blas_info info;
    char library[400];
    int threads_set;
} blas = { .once = PTHREAD_ONCE_INIT };

static bool cpu_wants_skylakex(void)
{
    const ts_cpu_features *f = ts_cpu();
    return f->avx512f && f->avx512bw && f->avx512dq && f->avx512vl;
}

static void load(void)
{
    if (!getenv("OPENBLAS_CORETYPE") && cpu_wants_skylakex()) {
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
        blas.info.coretype_forced = true;
    }
    const char *candidates[3] = { getenv("TORSH_BLAS"), "libopenblas.so.0", TORSH_BLAS_PATH };
    for (int i = 0; i < 3 && !blas.handle; i++) {
        if (!candidates[i] || !*candidates[i]) continue;
        blas.handle = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (blas.handle) snprintf(blas.library, sizeof blas.library, "%s", candidates[i]);
    }
    if (!blas.handle) {
        snprintf(blas.error, sizeof blas.error, "cannot load OpenBLAS (tried $TORSH_BLAS, libopenblas.so.0, %s): %s; "
                 "install libopenblas0 (tools/install-deps.sh)", TORSH_BLAS_PATH, dlerror());
        blas.status = TS_ERR_UNSUPPORTED;
        return;
    }
    blas.sgemm = (sgemm_fn)dlsym(blas.handle, "cblas_sgemm");
    blas.dgemm = (dgemm_fn)dlsym(blas.handle, "cblas_dgemm");
    blas.set_threads = (void (*)(int))dlsym(blas.handle, "openblas_set_num_threads");
    blas.get_threads = (int (*)(void))dlsym(blas.handle, "openblas_get_num_threads");
    blas.get_corename = (char *(*)(void))dlsym(blas.handle, "openblas_get_corename");
    blas.get_config = (char *(*)(void))dlsym(blas.handle, "openblas_get_config");
    if (!blas.sgemm || !blas.dgemm) {
        snprintf(blas.error, sizeof blas.error, "%s has no cblas_sgemm/cblas_dgemm", blas.library);
        blas.status = TS_ERR_UNSUPPORTED;
        return;
    }
    blas.info.library = blas.library;
    blas.info.corename = blas.get_corename ? blas.get_corename() : "unknown";
    blas.info.config = blas.get_config ? blas.get_config() : "unknown";
    blas.status = TS_OK;
}

ts_status ts_blas_init(void)
{
    pthread_once(&blas.once, load);
    if (blas.status) return ts_fail(blas.status, "%s", blas.error);
    return TS_OK;
}

const ts_blas_info *ts_blas_get_info(void)
{
    if (ts_blas_init()) return NULL;
    blas.info.threads = blas.get_threads ? blas.get_threads() : 1;
    return &blas.info;
}

void ts_blas_set_num_threads(int n)
{
    if (ts_blas_init() == TS_OK && blas.set_threads) blas.set_threads(n);
}

/* Keeps OpenBLAS's thread count equal to the core's. */
static void sync_threads(void)
{
    int want = ts_get_num_threads();
    if (blas.threads_set != want && blas.set_threads) {
        blas.set_threads(want);
        blas.threads_set = want;
    }
}

static ts_status check_dims(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc)
{
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX)
        return ts_fail(TS_ERR_UNSUPPORTED, "gemm: dimensions %lldx%lldx%lld exceed the BLAS's 32-bit indices",
                       (long long)m, (long long)n, (long long)k);
    return TS_OK;
}

ts_status ts_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (ts_blas_init() || check_dims(m, n, k, lda, ldb, ldc)) return ts_last_status();
    if (m == 0 || n == 0) return TS_OK;
    sync_threads();
    blas.sgemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, (int)m, (int)n, (int)k, alpha, a,
               (int)(lda ? lda : 1), b, (int)(ldb ? ldb : 1), beta, c, (int)(ldc ? ldc : 1));
    return TS_OK;
}

ts_status ts_dgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double *a, int64_t lda,
                   const double *b, int64_t ldb, double beta, double *c, int64_t ldc)
{
    if (ts_blas_init() || check_dims(m, n, k, lda, ldb, ldc)) return ts_last_status();
    if (m == 0 || n == 0) return TS_OK;
    sync_threads();
    blas.dgemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, (int)m, (int)n, (int)k, alpha, a,
               (int)(lda ? lda : 1), b, (int)(ldb ? ldb : 1), beta, c, (int)(ldc ? ldc : 1));
    return TS_OK;
}
