/* fma_peak.c — the machine's f32 FMA peak: 12 independent chains of fused
 * multiply-adds on 512-bit registers (or 256-bit when AVX-512 is missing)
 * per thread, no memory traffic. The ceiling against which GEMM numbers in
 * docs/PERFORMANCE.md are read. Usage: bench_fma_peak [THREADS] */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 12
#define ITERS 100000000L

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

__attribute__((target("avx512f"))) static void *run512(void *out)
{
    __m512 acc[CHAINS];
    __m512 b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long i = 0; i < ITERS; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_fmadd_ps(acc[j], b, c);
    }
    float s = 0;
    for (int i = 0; i < CHAINS; i++) s += _mm512_reduce_add_ps(acc[i]);
    *(float *)out = s;   /* keeps the work observable */
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 64) return 2;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) { fprintf(stderr, "fma_peak: needs AVX-512F\n"); return 1; }
    pthread_t t[64];
    float r[64];
    double t0 = now();
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, run512, &r[i]);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    double dt = now() - t0;
    printf("fma peak: %d threads, %.1f GFLOP/s (checksum %g)\n", threads,
           threads * (double)ITERS * CHAINS * 16 * 2 / dt / 1e9, (double)r[0]);
    return 0;
}
