/* threads.c — the core's thread pool and ts_parallel_for.
 *
 * Workers are started lazily on the first parallel loop and live for the
 * process. A loop is split into at most `num_threads` contiguous parts; the
 * caller runs parts too. Loops started from inside a worker, or while another
 * host thread holds the pool, run serially on the calling thread, so the
 * pool can never deadlock on itself. */
#include "torsh/base.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_THREADS 256

static struct {
    pthread_mutex_t lock;        /* held by the one host thread using the pool */
    pthread_mutex_t mu;          /* guards the fields below with the condvars */
    pthread_cond_t wake, done;
    pthread_t threads[MAX_THREADS];
    int started;                 /* workers running */
    uint64_t generation;
    ts_range_fn fn;
    void *ctx;
    int64_t n;
    int nparts;
    atomic_int next_part;
    int pending;                 /* parts not finished */
    int active;                  /* workers inside run_parts */
} pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
           PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER };

static atomic_int requested_threads;   /* 0 = all cores */
static _Thread_local int inside_worker;

int ts_num_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int c = CPU_COUNT(&set);
        if (c > 0) return c;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void ts_set_num_threads(int n)
{
    if (n < 0) n = 0;
    if (n > MAX_THREADS) n = MAX_THREADS;
    atomic_store(&requested_threads, n);
}

int ts_get_num_threads(void)
{
    int n = atomic_load(&requested_threads);
    return n > 0 ? n : ts_num_cores();
}

/* Runs parts until none is left; returns how many this thread ran. */
static int run_parts(void)
{
    int ran = 0;
    for (;;) {
        int p = atomic_fetch_add(&pool.next_part, 1);
        if (p >= pool.nparts) break;
        int64_t begin = pool.n * p / pool.nparts, end = pool.n * (p + 1) / pool.nparts;
        pool.fn(begin, end, pool.ctx);
        ran++;
    }
    return ran;
}

static void *worker_main(void *arg)
{
    (void)arg;
    inside_worker = 1;
    uint64_t seen = 0;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (pool.generation == seen)
            pthread_cond_wait(&pool.wake, &pool.mu);
        seen = pool.generation;
        pool.active++;
        pthread_mutex_unlock(&pool.mu);
        int ran = run_parts();
        pthread_mutex_lock(&pool.mu);
        pool.pending -= ran;
        pool.active--;
        if (pool.pending == 0 && pool.active == 0) pthread_cond_signal(&pool.done);
    }
    return NULL;
}

static int ensure_workers(int want)
{
    while (pool.started < want && pool.started < MAX_THREADS - 1) {
        if (pthread_create(&pool.threads[pool.started], NULL, worker_main, NULL) != 0) break;
        pthread_detach(pool.threads[pool.started]);
        pool.started++;
    }
    return pool.started;
}

void ts_parallel_for(int64_t n, int64_t grain, ts_range_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t nthreads = ts_get_num_threads();
    if (n / grain < nthreads) nthreads = n / grain;
    if (nthreads <= 1 || inside_worker || pthread_mutex_trylock(&pool.lock) != 0) {
        fn(0, n, ctx);
        return;
    }
    pthread_mutex_lock(&pool.mu);
    int workers = ensure_workers((int)nthreads - 1);
    if (workers < nthreads - 1) nthreads = workers + 1;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.nparts = (int)nthreads;
    atomic_store(&pool.next_part, 0);
    pool.pending = (int)nthreads;
    pool.generation++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);

    inside_worker = 1;               /* nested loops in our own parts run serially */
    int ran = run_parts();
    inside_worker = 0;

    pthread_mutex_lock(&pool.mu);
    pool.pending -= ran;
    /* wait until every part ran and no worker is still looking at this loop,
     * so the next loop may reset the shared fields safely */
    while (pool.pending > 0 || pool.active > 0)
        pthread_cond_wait(&pool.done, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
    pthread_mutex_unlock(&pool.lock);
}
