/* alloc.c — the one allocator for tensor memory, with live/peak accounting
 * per device. Default: 64-byte aligned memory from aligned_alloc. Small
 * blocks are kept on per-size free lists (a tiny cache) because the per-op
 * cost of tiny tensors is dominated by malloc/free; large blocks go straight
 * back to the system so memory is returned promptly. */
#include "torsh/base.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int64_t live[TS_DEVICE_TYPES], peak[TS_DEVICE_TYPES], count[TS_DEVICE_TYPES];

static ts_allocator host;      /* host-installed allocator, when .alloc != NULL */

void ts_mem_count(ts_device_type dev, int64_t delta)
{
    int64_t now = atomic_fetch_add(&live[dev], delta) + delta;
    if (delta > 0) {
        atomic_fetch_add(&count[dev], 1);
        int64_t p = atomic_load(&peak[dev]);
        while (now > p && !atomic_compare_exchange_weak(&peak[dev], &p, now)) {}
    }
}

/* Small-block cache: blocks of up to 4 KiB, bucketed by 64-byte size class,
 * per thread so no locking is needed. A block freed on another thread than
 * the one that allocated it simply lands in that thread's cache. */
#define CACHE_CLASSES 64      /* 64 B .. 4 KiB */
#define CACHE_DEPTH 32
typedef struct { void *blocks[CACHE_DEPTH]; int n; } cache_bucket;
static _Thread_local cache_bucket cache[CACHE_CLASSES];

static size_t round_up64(size_t n) { return (n + 63) & ~(size_t)63; }

void *ts_mem_alloc(size_t nbytes)
{
    if (nbytes > TS_MAX_ALLOC_BYTES)
        return ts_fail_null(TS_ERR_MEMORY, "cannot allocate %zu bytes (limit %zu)", nbytes, (size_t)TS_MAX_ALLOC_BYTES);
    size_t sz = round_up64(nbytes ? nbytes : 1);
    void *p = NULL;
    if (host.alloc) {
        p = host.alloc(sz, host.user);
    } else {
        size_t cls = sz / 64 - 1;
        if (cls < CACHE_CLASSES && cache[cls].n > 0)
            p = cache[cls].blocks[--cache[cls].n];
        else
            p = aligned_alloc(64, sz);
    }
    if (!p)
        return ts_fail_null(TS_ERR_MEMORY, "out of memory allocating %zu bytes", nbytes);
    ts_mem_count(TS_CPU, (int64_t)sz);
    return p;
}

void ts_mem_free(void *ptr, size_t nbytes)
{
    if (!ptr) return;
    size_t sz = round_up64(nbytes ? nbytes : 1);
    ts_mem_count(TS_CPU, -(int64_t)sz);
    if (host.alloc) {
        host.free(ptr, sz, host.user);
        return;
    }
    size_t cls = sz / 64 - 1;
    if (cls < CACHE_CLASSES && cache[cls].n < CACHE_DEPTH) {
        cache[cls].blocks[cache[cls].n++] = ptr;
        return;
    }
    free(ptr);
}

ts_mem_stats ts_mem_get_stats(ts_device_type dev)
{
    ts_mem_stats s = { atomic_load(&live[dev]), atomic_load(&peak[dev]), atomic_load(&count[dev]) };
    return s;
}

void ts_mem_reset_peak(ts_device_type dev) { atomic_store(&peak[dev], atomic_load(&live[dev])); }

void ts_mem_set_allocator(const ts_allocator *a)
{
    if (a) host = *a;
    else memset(&host, 0, sizeof host);
}
