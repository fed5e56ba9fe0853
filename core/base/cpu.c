/* cpu.c — CPU feature detection with cpuid/xgetbv (x86-64), read once. */
#include "torsh/base.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void)
{
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static void detect(ts_cpu_features *f)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    unsigned maxleaf = a;
    memcpy(f->vendor, &b, 4); memcpy(f->vendor + 4, &d, 4); memcpy(f->vendor + 8, &c, 4);
    __get_cpuid(1, &a, &b, &c, &d);
    bool osxsave = c & (1u << 27);
    unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
    bool ymm = (xcr0 & 6) == 6, zmm = (xcr0 & 0xe6) == 0xe6, tiles = (xcr0 & 0x60000) == 0x60000;
    f->sse42 = c & (1u << 20);
    f->fma = (c & (1u << 12)) && ymm;
    f->f16c = (c & (1u << 29)) && ymm;
    f->avx = (c & (1u << 28)) && ymm;
    if (maxleaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        f->avx2 = (b & (1u << 5)) && ymm;
        f->avx512f = (b & (1u << 16)) && zmm;
        f->avx512dq = (b & (1u << 17)) && zmm;
        f->avx512bw = (b & (1u << 30)) && zmm;
        f->avx512vl = (b & (1u << 31)) && zmm;
        f->avx512_vnni = (c & (1u << 11)) && zmm;
        f->amx_bf16 = (d & (1u << 22)) && tiles;
        f->amx_tile = (d & (1u << 24)) && tiles;
        f->amx_int8 = (d & (1u << 25)) && tiles;
        __cpuid_count(7, 1, a, b, c, d);
        f->avx512_bf16 = (a & (1u << 5)) && zmm;
    }
    __get_cpuid(0x80000000, &a, &b, &c, &d);
    if (a >= 0x80000004) {
        unsigned *w = (unsigned *)f->brand;
        for (unsigned leaf = 0; leaf < 3; leaf++)
            __get_cpuid(0x80000002 + leaf, &w[leaf * 4], &w[leaf * 4 + 1], &w[leaf * 4 + 2], &w[leaf * 4 + 3]);
        f->brand[sizeof f->brand - 1] = '\0';
    }
}
#else
static void detect(ts_cpu_features *f) { strcpy(f->vendor, "unknown"); }
#endif

const ts_cpu_features *ts_cpu(void)
{
    static ts_cpu_features features;
    static int done;   /* benign race: every thread computes the same values */
    if (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
        ts_cpu_features f = {0};
        detect(&f);
        /* trim leading spaces some brands carry */
        char *p = f.brand;
        while (*p == ' ') p++;
        memmove(f.brand, p, strlen(p) + 1);
        features = f;
        __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    }
    return &features;
}
