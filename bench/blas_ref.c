/* blas_ref.c — the reference for the matmul benchmark: times OpenBLAS's
 * cblas_sgemm directly (no torsh), on whichever kernel family
 * OPENBLAS_CORETYPE selects, so bench/bench_core.lua can compare torsh's
 * matmul with the fastest OpenBLAS kernel on this machine.
 * Usage: bench_blas_ref N THREADS REPEATS -> prints "gflops <x> core <name>". */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2048, threads = argc > 2 ? atoi(argv[2]) : 2, reps = argc > 3 ? atoi(argv[3]) : 10;
    void *h = dlopen("libopenblas.so.0", RTLD_NOW);
    if (!h) { fprintf(stderr, "blas_ref: %s\n", dlerror()); return 1; }
    sgemm_fn sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
    void (*set_threads)(int) = (void (*)(int))dlsym(h, "openblas_set_num_threads");
    char *(*corename)(void) = (char *(*)(void))dlsym(h, "openblas_get_corename");
    if (!sgemm || !set_threads || !corename) { fprintf(stderr, "blas_ref: missing symbols\n"); return 1; }
    set_threads(threads);
    size_t sz = (size_t)n * (size_t)n;
    float *a = malloc(sz * 4), *b = malloc(sz * 4), *c = malloc(sz * 4);
    if (!a || !b || !c || reps < 1 || reps > 1000) return 1;
    for (size_t i = 0; i < sz; i++) { a[i] = (float)(i % 7) * 0.1f; b[i] = (float)(i % 5) * 0.2f; }
    double times[1000];
    sgemm(101, 111, 111, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);   /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t = now();
        sgemm(101, 111, 111, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        times[r] = now() - t;
    }
    qsort(times, (size_t)reps, sizeof *times, cmp);
    printf("gflops %.2f core %s\n", 2.0 * n * n * (double)n / times[reps / 2] / 1e9, corename());
    free(a); free(b); free(c);
    return 0;
}
