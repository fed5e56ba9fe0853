/* torsh/sysinfo.h — facts about the machine and the build for `torsh info`
 * and bug reports: the CUDA driver, runtime and devices found at run time
 * (dlopen, so a CPU-only build still reports a GPU), and how libtorsh was
 * compiled. Nothing here needs CUDA headers or libraries at build time.
 */
#ifndef TORSH_SYSINFO_H
#define TORSH_SYSINFO_H

#include "torsh/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TS_CUDA_MAX_DEVICES 16

typedef struct ts_cuda_device {
    char name[128];
    int64_t total_memory;       /* bytes */
    int cc_major, cc_minor;     /* compute capability */
    int multiprocessors;
} ts_cuda_device;

typedef struct ts_cuda_info {
    bool driver_found;          /* libcuda.so.1 opened and cuInit succeeded */
    int driver_version;         /* e.g. 12040 for 12.4; 0 when unknown */
    bool runtime_found;         /* a libcudart.so was found */
    int runtime_version;
    char driver_path[256];      /* the library that was opened */
    char runtime_path[256];
    int device_count;
    ts_cuda_device devices[TS_CUDA_MAX_DEVICES];
    char error[256];            /* why the driver is not usable ("" when it is) */
} ts_cuda_info;

/* Probes CUDA by dlopen; fills *info (never fails: absence is data). */
void ts_cuda_probe(ts_cuda_info *info);

/* "gcc 12.2.0, -O3, NDEBUG, ASan+UBSan: no" style one-line build summary;
 * borrowed static string. */
const char *ts_build_info(void);

#ifdef __cplusplus
}
#endif
#endif
