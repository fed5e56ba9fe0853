/* torsh/base.h — status codes and errors, tensor-memory accounting, the
 * thread pool and CPU feature detection: the parts every other core part uses.
 *
 * Errors: a function that can fail returns ts_status (TS_OK == 0) or a
 * pointer (NULL on failure). Either way the reason is in a thread-local
 * buffer, read with ts_last_error(). The core never prints, exits or aborts
 * on bad input.
 *
 * Memory: every tensor byte is allocated through ts_mem_alloc/ts_mem_free,
 * which count live and peak bytes per device; the host may install its own
 * allocator with ts_mem_set_allocator().
 */
#ifndef TORSH_BASE_H
#define TORSH_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TS_VERSION_MAJOR 0
#define TS_VERSION_MINOR 1
#define TS_VERSION_PATCH 0
#define TS_VERSION_STRING "0.1.0"

typedef enum ts_status {
    TS_OK = 0,
    TS_ERR_ARG,       /* bad argument: shape, dtype, dim, index */
    TS_ERR_MEMORY,    /* allocation failed or request too large */
    TS_ERR_IO,        /* file system or read/write failure */
    TS_ERR_FORMAT,    /* malformed input file */
    TS_ERR_UNSUPPORTED, /* valid request the core cannot do (yet) */
    TS_ERR_INTERNAL,
} ts_status;

/* Message of the last failure on this thread ("" when none). Borrowed. */
const char *ts_last_error(void);
/* Records a printf-style message and returns `code`, so a failing path can
 * read `return ts_fail(TS_ERR_ARG, "add: ...")`. */
ts_status ts_fail(ts_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Like ts_fail, but returns NULL for functions that return pointers. */
void *ts_fail_null(ts_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Code of the last failure on this thread. */
ts_status ts_last_status(void);
void ts_clear_error(void);

/* ---- tensor memory ---------------------------------------------------- */

typedef enum ts_device_type { TS_CPU = 0, TS_CUDA = 1, TS_DEVICE_TYPES } ts_device_type;

typedef struct ts_mem_stats {
    int64_t live_bytes;   /* bytes allocated and not yet freed */
    int64_t peak_bytes;   /* high-water mark of live_bytes since the last reset */
    int64_t total_allocs; /* number of allocations so far */
} ts_mem_stats;

/* Host allocator hooks. alloc must return memory aligned to 64 bytes. */
typedef struct ts_allocator {
    void *(*alloc)(size_t nbytes, void *user);
    void (*free)(void *ptr, size_t nbytes, void *user);
    void *user;
} ts_allocator;

/* Allocates nbytes (64-byte aligned) of CPU tensor memory, counted.
 * Returns NULL with an error message when it cannot. */
void *ts_mem_alloc(size_t nbytes);
void ts_mem_free(void *ptr, size_t nbytes);
/* Counts bytes allocated elsewhere (a device backend) against `dev`. */
void ts_mem_count(ts_device_type dev, int64_t delta_bytes);
ts_mem_stats ts_mem_get_stats(ts_device_type dev);
void ts_mem_reset_peak(ts_device_type dev);
/* Gives cached free blocks back to the system; bytes currently cached. */
void ts_mem_release_cache(void);
size_t ts_mem_cached_bytes(void);
/* NULL restores the default (aligned malloc). */
void ts_mem_set_allocator(const ts_allocator *a);
/* Allocation observer (the profiler's, core/prof): called after every
 * counted allocation (delta > 0) and before every free (delta < 0) with the
 * block's address (NULL for bytes counted with ts_mem_count) and its rounded
 * size; from any thread. NULL (the default) turns it off at the cost of one
 * load and branch per allocation. */
typedef void (*ts_mem_observer_fn)(void *ptr, int64_t delta_bytes, ts_device_type dev);
void ts_mem_set_observer(ts_mem_observer_fn fn);
/* Largest single tensor allocation accepted (default 1 TiB) */
#define TS_MAX_ALLOC_BYTES ((size_t)1 << 40)

/* ---- threads ----------------------------------------------------------- */

/* Body of a parallel loop: handles indices [begin, end). */
typedef void (*ts_range_fn)(int64_t begin, int64_t end, void *ctx);

/* Runs fn over [0, n) split into contiguous ranges across the pool's threads.
 * Work below `grain` elements per thread runs on the caller's thread alone.
 * Ranges never overlap; the call returns when all are done. Nested calls
 * from inside a worker run serially. */
void ts_parallel_for(int64_t n, int64_t grain, ts_range_fn fn, void *ctx);
/* Threads used by ts_parallel_for (and BLAS). 0 means "all cores". */
void ts_set_num_threads(int n);
int ts_get_num_threads(void);
int ts_num_cores(void);

/* ---- CPU features -------------------------------------------------------- */

typedef struct ts_cpu_features {
    bool sse42, avx, avx2, fma, f16c;
    bool avx512f, avx512bw, avx512dq, avx512vl, avx512_vnni, avx512_bf16;
    bool amx_tile, amx_bf16, amx_int8;
    char vendor[16];
    char brand[64];
} ts_cpu_features;

const ts_cpu_features *ts_cpu(void);

#ifdef __cplusplus
}
#endif
#endif
