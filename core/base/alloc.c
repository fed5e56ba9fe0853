/* alloc.c — the one allocator for tensor memory, with live/peak accounting
 * per device. Default policy:
 *  - small blocks (<= 4 KiB) come from aligned_alloc and are kept on
 *    per-thread, per-size free lists, because the per-op cost of tiny
 *    tensors is dominated by malloc/free;
 *  - big blocks (>= 256 KiB) are mapped directly; from 4 MiB up they are
 *    2 MiB aligned and marked MADV_HUGEPAGE, so touching them costs one page
 *    fault per 2 MiB instead of one per 4 KiB; freed big blocks are kept for reuse by the next
 *    allocation of the same rounded size (training and benchmark loops
 *    allocate the same sizes over and over), up to TS_BIG_CACHE_BYTES in all
 *    (env TORSH_ALLOC_CACHE_MB overrides; 0 disables); ts_mem_release_cache()
 *    gives them back;
 *  - everything else: aligned_alloc.
 * Cached blocks are not live bytes: the statistics count tensors only. */
#include "torsh/base.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define BIG_BLOCK ((size_t)256 << 10)     /* mapped directly and cached from here up */
#define HUGE_BLOCK ((size_t)4 << 20)     /* marked for transparent huge pages from here up */
#define HUGE_PAGE ((size_t)2 << 20)
#define BIG_CACHE_SLOTS 256
#define TS_BIG_CACHE_BYTES ((size_t)1 << 30)

static struct {
    pthread_mutex_t mu;
    void *ptr[BIG_CACHE_SLOTS];
    size_t size[BIG_CACHE_SLOTS];
    uint64_t age[BIG_CACHE_SLOTS];   /* when it was cached: the oldest is evicted first */
    uint64_t clock;
    size_t total, limit;
    int limit_read;
} big = { .mu = PTHREAD_MUTEX_INITIALIZER };

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

static void *map_big(size_t sz)
{
    if (sz < HUGE_BLOCK) {
        void *m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return m == MAP_FAILED ? NULL : m;
    }
    /* over-map by one huge page, then trim to a 2 MiB aligned range */
    size_t len = sz + HUGE_PAGE;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    char *p = (char *)round_up((size_t)m, HUGE_PAGE);
    if (p > m) munmap(m, (size_t)(p - m));
    size_t tail = (size_t)(m + len - (p + sz));
    if (tail) munmap(p + sz, tail);
#ifdef MADV_HUGEPAGE
    madvise(p, sz, MADV_HUGEPAGE);
#endif
    return p;
}

static size_t cache_limit(void)
{
    if (!big.limit_read) {
        const char *e = getenv("TORSH_ALLOC_CACHE_MB");
        big.limit = e ? (size_t)strtoull(e, NULL, 10) << 20 : TS_BIG_CACHE_BYTES;
        big.limit_read = 1;
    }
    return big.limit;
}

static void *big_alloc(size_t sz)
{
    pthread_mutex_lock(&big.mu);
    for (int i = 0; i < BIG_CACHE_SLOTS; i++)
        if (big.ptr[i] && big.size[i] == sz) {
            void *p = big.ptr[i];
            big.ptr[i] = NULL;
            big.total -= sz;
            pthread_mutex_unlock(&big.mu);
            return p;
        }
    pthread_mutex_unlock(&big.mu);
    return map_big(sz);
}

/* Index of the oldest cached block, or -1 when the cache is empty. */
static int oldest_slot(void)
{
    int best = -1;
    for (int i = 0; i < BIG_CACHE_SLOTS; i++)
        if (big.ptr[i] && (best < 0 || big.age[i] < big.age[best])) best = i;
    return best;
}

static void big_free(void *p, size_t sz)
{
    void *evict[BIG_CACHE_SLOTS];
    size_t evict_size[BIG_CACHE_SLOTS];
    int nevict = 0;
    pthread_mutex_lock(&big.mu);
    if (sz > cache_limit()) {
        pthread_mutex_unlock(&big.mu);
        munmap(p, sz);
        return;
    }
    /* make room: drop the oldest blocks until this one fits in count and bytes */
    int free_slot = -1;
    for (int i = 0; i < BIG_CACHE_SLOTS && free_slot < 0; i++) if (!big.ptr[i]) free_slot = i;
    while (free_slot < 0 || big.total + sz > big.limit) {
        int o = oldest_slot();
        if (o < 0) break;
        evict[nevict] = big.ptr[o];
        evict_size[nevict++] = big.size[o];
        big.total -= big.size[o];
        big.ptr[o] = NULL;
        if (free_slot < 0) free_slot = o;
    }
    big.ptr[free_slot] = p;
    big.size[free_slot] = sz;
    big.age[free_slot] = ++big.clock;
    big.total += sz;
    pthread_mutex_unlock(&big.mu);
    for (int i = 0; i < nevict; i++) munmap(evict[i], evict_size[i]);
}

void ts_mem_release_cache(void)
{
    pthread_mutex_lock(&big.mu);
    for (int i = 0; i < BIG_CACHE_SLOTS; i++)
        if (big.ptr[i]) {
            munmap(big.ptr[i], big.size[i]);
            big.ptr[i] = NULL;
        }
    big.total = 0;
    pthread_mutex_unlock(&big.mu);
}

size_t ts_mem_cached_bytes(void)
{
    pthread_mutex_lock(&big.mu);
    size_t t = big.total;
    pthread_mutex_unlock(&big.mu);
    return t;
}

static _Atomic int64_t live[TS_DEVICE_TYPES], peak[TS_DEVICE_TYPES], count[TS_DEVICE_TYPES];

static ts_allocator host;      /* host-installed allocator, when .alloc != NULL */

/* The profiler's allocation observer (core/prof): NULL when off, so every
 * allocation and free pays one load and one branch, nothing more. */
static ts_mem_observer_fn volatile observer;

void ts_mem_set_observer(ts_mem_observer_fn fn) { observer = fn; }

static void count_bytes(ts_device_type dev, int64_t delta)
{
    int64_t now = atomic_fetch_add(&live[dev], delta) + delta;
    if (delta > 0) {
        atomic_fetch_add(&count[dev], 1);
        int64_t p = atomic_load(&peak[dev]);
        while (now > p && !atomic_compare_exchange_weak(&peak[dev], &p, now)) {}
    }
}

void ts_mem_count(ts_device_type dev, int64_t delta)
{
    count_bytes(dev, delta);
    ts_mem_observer_fn obs = observer;
    if (obs) obs(NULL, delta, dev);
}

/* Small-block cache: blocks of up to 4 KiB, bucketed by 64-byte size class,
 * per thread so no locking is needed. A block freed on another thread than
 * the one that allocated it simply lands in that thread's cache. */
#define CACHE_CLASSES 64      /* 64 B .. 4 KiB */
#define CACHE_DEPTH 32
typedef struct { void *blocks[CACHE_DEPTH]; int n; } cache_bucket;
static _Thread_local cache_bucket cache[CACHE_CLASSES];

static size_t round_up64(size_t n) { return (n + 63) & ~(size_t)63; }

/* The size class a request is served from (what alloc and free agree on). */
static size_t block_size(size_t nbytes)
{
    size_t sz = round_up64(nbytes ? nbytes : 1);
    if (sz >= HUGE_BLOCK) return round_up(sz, HUGE_PAGE);
    if (sz >= BIG_BLOCK) return round_up(sz, (size_t)64 << 10);
    return sz;
}

void *ts_mem_alloc(size_t nbytes)
{
    if (nbytes > TS_MAX_ALLOC_BYTES)
        return ts_fail_null(TS_ERR_MEMORY, "cannot allocate %zu bytes (limit %zu)", nbytes, (size_t)TS_MAX_ALLOC_BYTES);
    size_t sz = block_size(nbytes);
    void *p = NULL;
    if (host.alloc) {
        p = host.alloc(sz, host.user);
    } else if (sz >= BIG_BLOCK) {
        p = big_alloc(sz);
    } else {
        size_t cls = sz / 64 - 1;
        if (cls < CACHE_CLASSES && cache[cls].n > 0)
            p = cache[cls].blocks[--cache[cls].n];
        else
            p = aligned_alloc(64, sz);
    }
    if (!p)
        return ts_fail_null(TS_ERR_MEMORY, "out of memory allocating %zu bytes", nbytes);
    count_bytes(TS_CPU, (int64_t)sz);
    ts_mem_observer_fn obs = observer;
    if (obs) obs(p, (int64_t)sz, TS_CPU);
    return p;
}

void ts_mem_free(void *ptr, size_t nbytes)
{
    if (!ptr) return;
    size_t sz = block_size(nbytes);
    count_bytes(TS_CPU, -(int64_t)sz);
    ts_mem_observer_fn obs = observer;
    if (obs) obs(ptr, -(int64_t)sz, TS_CPU);
    if (host.alloc) {
        host.free(ptr, sz, host.user);
        return;
    }
    if (sz >= BIG_BLOCK) {
        big_free(ptr, sz);
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
