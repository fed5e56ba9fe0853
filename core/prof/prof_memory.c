/* prof_memory.c — the profiler's view of tensor memory: the allocator
 * observer (base.h ts_mem_set_observer) that counts bytes per thread and
 * live/peak per device, the samples taken at event ends, and the table of
 * allocations made while profiling and not yet freed (the leak report). */
#include "prof_internal.h"

#include <stdlib.h>
#include <string.h>

/* Live allocations: open addressing on the address, with tombstones. */
#define TOMB ((uint64_t)1)
static struct {
    pthread_mutex_t mu;
    ts_prof_alloc *slot;       /* address 0: empty, TOMB: deleted */
    size_t cap, used, tombs;
    atomic_bool on;
} A = { .mu = PTHREAD_MUTEX_INITIALIZER };

static size_t addr_hash(uint64_t a) { return (size_t)((a >> 6) * 0x9E3779B97F4A7C15ull); }

static bool rehash_locked(size_t ncap)
{
    ts_prof_alloc *ns = calloc(ncap, sizeof *ns);
    if (!ns) return false;
    for (size_t i = 0; i < A.cap; i++) {
        uint64_t a = A.slot[i].address;
        if (a == 0 || a == TOMB) continue;
        size_t j = addr_hash(a) & (ncap - 1);
        while (ns[j].address) j = (j + 1) & (ncap - 1);
        ns[j] = A.slot[i];
    }
    free(A.slot);
    A.slot = ns;
    A.cap = ncap;
    A.tombs = 0;
    return true;
}

static void alloc_insert(void *ptr, int64_t bytes, ts_device_type dev, const prof_thread *t)
{
    pthread_mutex_lock(&A.mu);
    if (!A.on) goto out;
    if ((A.used + A.tombs + 1) * 10 > A.cap * 7) {
        size_t ncap = A.cap ? A.cap : 4096;
        while ((A.used + 1) * 10 > ncap * 5) ncap *= 2;
        if (!rehash_locked(ncap)) goto out;     /* out of memory: this one goes untracked */
    }
    uint64_t a = (uint64_t)(uintptr_t)ptr;
    size_t i = addr_hash(a) & (A.cap - 1);
    while (A.slot[i].address && A.slot[i].address != TOMB) i = (i + 1) & (A.cap - 1);
    if (A.slot[i].address == TOMB) A.tombs--;
    /* the innermost open event of this thread made it */
    int depth = t->n < TS_PROF_MAX_DEPTH ? t->n : TS_PROF_MAX_DEPTH;
    const prof_open *o = depth > 0 && t->gen == atomic_load(&prof.gen) ? &t->ev[depth - 1] : NULL;
    A.slot[i] = (ts_prof_alloc){
        .t_ns = prof_now(), .bytes = bytes, .address = a, .op = o ? o->name : 0,
        .stack = o ? o->stack : 0, .tid = t->tid ? t->tid : prof_gettid(), .device = (int32_t)dev,
    };
    A.used++;
out:
    pthread_mutex_unlock(&A.mu);
}

static void alloc_remove(void *ptr)
{
    uint64_t a = (uint64_t)(uintptr_t)ptr;
    pthread_mutex_lock(&A.mu);
    if (A.cap) {
        size_t i = addr_hash(a) & (A.cap - 1);
        for (; A.slot[i].address; i = (i + 1) & (A.cap - 1))
            if (A.slot[i].address == a) {
                A.slot[i].address = TOMB;
                A.used--;
                A.tombs++;
                break;
            }
    }
    pthread_mutex_unlock(&A.mu);
}

static void observe(void *ptr, int64_t delta, ts_device_type dev)
{
    prof_thread *t = &prof_tls;
    if (delta > 0) t->alloc_bytes += delta;
    else t->freed_bytes -= delta;
    long long now = atomic_fetch_add(&prof.live[dev], delta) + delta;
    long long p = atomic_load(&prof.peak[dev]);
    while (now > p && !atomic_compare_exchange_weak(&prof.peak[dev], &p, now)) {}
    if (ptr && A.on) {
        if (delta > 0) alloc_insert(ptr, delta, dev, t);
        else alloc_remove(ptr);
    }
}

void prof_memory_start(void)
{
    for (int d = 0; d < TS_DEVICE_TYPES; d++) {
        int64_t live = ts_mem_get_stats((ts_device_type)d).live_bytes;
        atomic_store(&prof.live[d], live);
        atomic_store(&prof.peak[d], live);
        prof.last_sampled[d] = -1;
    }
    pthread_mutex_lock(&A.mu);
    A.on = prof.cfg.track_allocs;
    pthread_mutex_unlock(&A.mu);
    ts_mem_set_observer(observe);
}

void prof_memory_stop(void)
{
    ts_mem_set_observer(NULL);
    pthread_mutex_lock(&A.mu);
    A.on = false;
    pthread_mutex_unlock(&A.mu);
}

void prof_memory_clear(void)
{
    pthread_mutex_lock(&A.mu);
    free(A.slot);
    A.slot = NULL;
    A.cap = A.used = A.tombs = 0;
    pthread_mutex_unlock(&A.mu);
}

void prof_memory_sample(int64_t t, bool force)
{
    for (int d = 0; d < TS_DEVICE_TYPES; d++) {
        int64_t live = atomic_load(&prof.live[d]);
        /* devices never used stay out of the samples */
        if (d != TS_CPU && live == 0 && prof.last_sampled[d] <= 0) continue;
        if (!force && live == prof.last_sampled[d]) continue;
        pthread_mutex_lock(&prof.mu);
        if (prof.samples && prof.scap) {
            prof.samples[(size_t)(prof.shead % (int64_t)prof.scap)] = (ts_prof_mem_sample){
                .t_ns = t, .live_bytes = live, .peak_bytes = atomic_load(&prof.peak[d]), .device = d,
            };
            prof.shead++;
            prof.last_sampled[d] = live;
        }
        pthread_mutex_unlock(&prof.mu);
    }
}

size_t ts_prof_memory_samples(ts_prof_mem_sample *out, size_t max)
{
    pthread_mutex_lock(&prof.mu);
    size_t n = prof.shead < (int64_t)prof.scap ? (size_t)prof.shead : prof.scap;
    if (out) {
        size_t first = prof.shead > (int64_t)prof.scap ? (size_t)(prof.shead % (int64_t)prof.scap) : 0;
        for (size_t i = 0; i < n && i < max; i++) out[i] = prof.samples[(first + i) % prof.scap];
    }
    pthread_mutex_unlock(&prof.mu);
    return n;
}

size_t ts_prof_live_allocs(ts_prof_alloc *out, size_t max)
{
    pthread_mutex_lock(&A.mu);
    size_t n = 0;
    for (size_t i = 0; i < A.cap; i++) {
        uint64_t a = A.slot[i].address;
        if (a == 0 || a == TOMB) continue;
        if (out && n < max) out[n] = A.slot[i];
        n++;
    }
    pthread_mutex_unlock(&A.mu);
    return n;
}
