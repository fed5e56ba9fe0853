/* torsh/blas.h — the BLAS library in use, loaded at run time.
 *
 * torsh does not link BLAS; it opens OpenBLAS with dlopen the first time a
 * GEMM runs (or ts_blas_init() is called). Before opening it, when the
 * variable OPENBLAS_CORETYPE is unset and the CPU has AVX-512 (F, BW, DQ, VL),
 * torsh sets it to "SkylakeX": Debian's OpenBLAS 0.3.21 does not recognise
 * newer AVX-512 CPUs (Zen 4, Sapphire Rapids) and would otherwise pick its
 * Haswell kernels at about half the speed. Loading late is what makes this
 * possible: OpenBLAS chooses its kernels in a constructor that runs when the
 * library is loaded, before any code of ours could set the variable.
 */
#ifndef TORSH_BLAS_H
#define TORSH_BLAS_H

#include "torsh/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_blas_info {
    const char *library;   /* path or soname that was opened */
    const char *config;    /* openblas_get_config() */
    const char *corename;  /* kernel family in use: "SkylakeX", "Haswell", ... */
    bool coretype_forced;  /* torsh set OPENBLAS_CORETYPE */
    int threads;
} ts_blas_info;

ts_status ts_blas_init(void);
const ts_blas_info *ts_blas_get_info(void);   /* initialises on first use; NULL on failure */

/* Row-major GEMM: C = alpha * op(A) op(B) + beta * C. */
ts_status ts_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb,
                   float beta, float *c, int64_t ldc);
ts_status ts_dgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                   const double *a, int64_t lda, const double *b, int64_t ldb,
                   double beta, double *c, int64_t ldc);
void ts_blas_set_num_threads(int n);

#ifdef __cplusplus
}
#endif
#endif
