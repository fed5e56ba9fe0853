/* sysinfo.c — the CUDA probe and the build summary (torsh/sysinfo.h).
 *
 * The probe opens the driver API (libcuda.so.1) and the runtime
 * (libcudart.so.*) with dlopen and calls a handful of entry points through
 * function pointers whose signatures are those of the public CUDA API, so
 * libtorsh needs no CUDA toolkit to build and still reports the GPU. */
#include "torsh/sysinfo.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef int (*cu_init_fn)(unsigned);
typedef int (*cu_int_fn)(int *);
typedef int (*cu_device_get_fn)(int *, int);
typedef int (*cu_name_fn)(char *, int, int);
typedef int (*cu_mem_fn)(size_t *, int);
typedef int (*cu_attr_fn)(int *, int, int);
typedef int (*cu_error_fn)(int, const char **);

enum { CU_ATTR_MULTIPROCESSORS = 16, CU_ATTR_CC_MAJOR = 75, CU_ATTR_CC_MINOR = 76 };

static void *open_first(const char *const *names, char *path, size_t path_len)
{
    for (int i = 0; names[i]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) {
            snprintf(path, path_len, "%s", names[i]);
            return h;
        }
    }
    return NULL;
}

static void probe_driver(ts_cuda_info *info)
{
    static const char *const names[] = {"libcuda.so.1", "libcuda.so", NULL};
    void *h = open_first(names, info->driver_path, sizeof info->driver_path);
    if (!h) {
        snprintf(info->error, sizeof info->error, "no CUDA driver (libcuda.so.1 not found)");
        return;
    }
    cu_init_fn cu_init = (cu_init_fn)dlsym(h, "cuInit");
    cu_int_fn cu_driver_version = (cu_int_fn)dlsym(h, "cuDriverGetVersion");
    cu_int_fn cu_count = (cu_int_fn)dlsym(h, "cuDeviceGetCount");
    cu_device_get_fn cu_get = (cu_device_get_fn)dlsym(h, "cuDeviceGet");
    cu_name_fn cu_name = (cu_name_fn)dlsym(h, "cuDeviceGetName");
    cu_mem_fn cu_mem = (cu_mem_fn)dlsym(h, "cuDeviceTotalMem_v2");
    cu_attr_fn cu_attr = (cu_attr_fn)dlsym(h, "cuDeviceGetAttribute");
    cu_error_fn cu_err = (cu_error_fn)dlsym(h, "cuGetErrorString");
    if (!cu_init || !cu_driver_version || !cu_count || !cu_get || !cu_name || !cu_mem || !cu_attr) {
        snprintf(info->error, sizeof info->error, "%.200s lacks the driver API entry points", info->driver_path);
        dlclose(h);
        return;
    }
    int rc = cu_init(0);
    if (rc != 0) {
        const char *msg = NULL;
        if (cu_err) cu_err(rc, &msg);
        snprintf(info->error, sizeof info->error, "cuInit failed: %s (error %d)", msg ? msg : "unknown", rc);
        cu_driver_version(&info->driver_version);
        dlclose(h);
        return;
    }
    info->driver_found = true;
    cu_driver_version(&info->driver_version);
    int count = 0;
    cu_count(&count);
    if (count > TS_CUDA_MAX_DEVICES) count = TS_CUDA_MAX_DEVICES;
    for (int i = 0; i < count; i++) {
        int dev;
        if (cu_get(&dev, i) != 0) continue;
        ts_cuda_device *d = &info->devices[info->device_count++];
        cu_name(d->name, (int)sizeof d->name, dev);
        size_t mem = 0;
        cu_mem(&mem, dev);
        d->total_memory = (int64_t)mem;
        cu_attr(&d->cc_major, CU_ATTR_CC_MAJOR, dev);
        cu_attr(&d->cc_minor, CU_ATTR_CC_MINOR, dev);
        cu_attr(&d->multiprocessors, CU_ATTR_MULTIPROCESSORS, dev);
    }
    /* the driver stays loaded: unloading it after cuInit is not supported */
}

static void probe_runtime(ts_cuda_info *info)
{
    static const char *const names[] = {"libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", NULL};
    void *h = open_first(names, info->runtime_path, sizeof info->runtime_path);
    if (!h) return;
    cu_int_fn version = (cu_int_fn)dlsym(h, "cudaRuntimeGetVersion");
    if (version && version(&info->runtime_version) == 0) info->runtime_found = true;
    dlclose(h);
}

void ts_cuda_probe(ts_cuda_info *info)
{
    memset(info, 0, sizeof *info);
    probe_driver(info);
    probe_runtime(info);
}

const char *ts_build_info(void)
{
    return "compiler "
#if defined(__clang__)
        "clang " __clang_version__
#elif defined(__GNUC__)
        "gcc " __VERSION__
#else
        "unknown"
#endif
#ifdef NDEBUG
        ", optimized (NDEBUG)"
#else
        ", debug (assertions on)"
#endif
#if defined(__SANITIZE_ADDRESS__)
        ", ASan+UBSan"
#endif
#if defined(__AVX512F__)
        ", -mavx512f"
#endif
        ", C11";
}
