/* prof_record.c — the profiler session: start/stop, the step schedule, open
 * events per thread, the ring buffer of complete events, and the hooks
 * through which core code (graph nodes, prof_hook.h) reaches the recorder. */
#include "prof_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

prof_state prof = { .mu = PTHREAD_MUTEX_INITIALIZER };
_Thread_local prof_thread prof_tls;

static char overflow_token;        /* handed out beyond TS_PROF_MAX_DEPTH */

int64_t prof_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t ts_prof_now_ns(void) { return prof_now(); }

int32_t prof_gettid(void) { return (int32_t)syscall(SYS_gettid); }

prof_thread *prof_thread_get(void)
{
    prof_thread *t = &prof_tls;
    unsigned gen = atomic_load_explicit(&prof.gen, memory_order_acquire);
    if (t->gen != gen) {
        t->gen = gen;
        t->n = t->over = 0;
    }
    if (!t->tid) t->tid = prof_gettid();
    return t;
}

ts_prof_config ts_prof_config_default(void)
{
    ts_prof_config c = { .max_events = TS_PROF_DEFAULT_EVENTS, .record_shapes = true, .profile_memory = true };
    return c;
}

ts_prof_action ts_prof_schedule_action(const ts_prof_schedule *s, int64_t step)
{
    if (!s || s->active <= 0) return TS_PROF_RECORD;
    if (step < s->skip_first) return TS_PROF_NONE;
    step -= s->skip_first;
    int64_t cycle = (int64_t)s->wait + s->warmup + s->active;
    if (s->repeat > 0 && step / cycle >= s->repeat) return TS_PROF_NONE;
    int64_t m = step % cycle;
    if (m < s->wait) return TS_PROF_NONE;
    if (m < s->wait + s->warmup) return TS_PROF_WARMUP;
    return m < cycle - 1 ? TS_PROF_RECORD : TS_PROF_RECORD_AND_SAVE;
}

/* ---- the ring ------------------------------------------------------------------ */
static void append_locked(const ts_prof_event *e)
{
    prof.ring[(size_t)(prof.head % (int64_t)prof.cap)] = *e;
    prof.head++;
}

static void finish(prof_thread *t, const prof_open *o, int64_t end)
{
    if (!o->keep) return;
    ts_prof_event e = {
        .start_ns = o->start, .end_ns = end,
        .bytes_alloc = t->alloc_bytes - o->alloc0, .bytes_freed = t->freed_bytes - o->freed0,
        .name = o->name, .op = o->op, .inputs = o->inputs, .stack = o->stack,
        .tid = t->tid, .step = o->step, .kind = o->kind, .device = o->device, .device_index = o->device_index,
    };
    pthread_mutex_lock(&prof.mu);
    if (atomic_load(&prof.running) && o->gen == atomic_load(&prof.gen)) append_locked(&e);
    pthread_mutex_unlock(&prof.mu);
    if (prof.cfg.profile_memory) prof_memory_sample(end, false);
}

void *ts_prof_begin(ts_prof_kind kind, int32_t name, int32_t op, int32_t inputs, int32_t stack, ts_device dev)
{
    int act = atomic_load_explicit(&prof.action, memory_order_relaxed);
    if (act == TS_PROF_NONE) return NULL;
    prof_thread *t = prof_thread_get();
    if (t->n >= TS_PROF_MAX_DEPTH) {
        t->over++;
        return &overflow_token;
    }
    prof_open *o = &t->ev[t->n++];
    o->name = name; o->op = op; o->inputs = inputs; o->stack = stack;
    o->kind = (uint8_t)kind;
    o->device = (uint8_t)dev.type;
    o->device_index = (int16_t)dev.index;
    o->gen = t->gen;
    o->keep = act >= TS_PROF_RECORD;
    o->step = (int32_t)prof.step;
    o->alloc0 = t->alloc_bytes;
    o->freed0 = t->freed_bytes;
    o->start = prof_now();          /* last, so the bookkeeping above is not timed */
    return o;
}

void ts_prof_end(void *token)
{
    if (!token) return;
    int64_t end = prof_now();
    prof_thread *t = &prof_tls;
    if (token == &overflow_token) {
        if (t->over > 0) t->over--;
        return;
    }
    uintptr_t p = (uintptr_t)token, base = (uintptr_t)t->ev;
    if (p < base || p >= base + (uintptr_t)t->n * sizeof(prof_open)) return;   /* not open on this thread */
    int idx = (int)((p - base) / sizeof(prof_open));
    /* events opened inside this one and never closed (an error unwound past
     * their end) end here too */
    for (int i = t->n - 1; i >= idx; i--) finish(t, &t->ev[i], end);
    t->n = idx;
    t->over = 0;
}

void *ts_prof_range_begin(const char *name)
{
    if (atomic_load_explicit(&prof.action, memory_order_relaxed) == TS_PROF_NONE) return NULL;
    ts_device cpu = { TS_CPU, 0 };
    return ts_prof_begin(TS_PROF_RANGE, ts_prof_intern_cstr(name), 0, 0, ts_prof_current_stack(), cpu);
}

int32_t ts_prof_current_stack(void)
{
    prof_thread *t = prof_thread_get();
    for (int i = t->n - 1; i >= 0; i--)
        if (t->ev[i].stack) return t->ev[i].stack;
    return 0;
}

bool ts_prof_records_shapes(void) { return prof.cfg.record_shapes; }

/* ---- hooks for core code (prof_hook.h) ------------------------------------------ */
static void *hook_begin(ts_prof_kind kind, const char *name, const char *op, ts_tensor *const *in, int n)
{
    if (atomic_load_explicit(&prof.action, memory_order_relaxed) == TS_PROF_NONE) return NULL;
    if (!name || !*name) name = op && *op ? op : "?";
    ts_device dev = { TS_CPU, 0 };
    for (int i = 0; i < n; i++)
        if (in && in[i] && in[i]->storage) { dev = in[i]->storage->device; break; }
    int32_t desc = prof.cfg.record_shapes && in ? ts_prof_describe(in, n) : 0;
    return ts_prof_begin(kind, ts_prof_intern_cstr(name), op && *op ? ts_prof_intern_cstr(op) : 0, desc,
                         ts_prof_current_stack(), dev);
}

static void hook_end(void *token, ts_tensor *const *out, int n)
{
    (void)out; (void)n;
    ts_prof_end(token);
}

static const ts_prof_hooks hooks = { hook_begin, hook_end };

/* ---- the session ----------------------------------------------------------------- */
static void free_buffers_locked(void)
{
    free(prof.ring);
    free(prof.samples);
    prof.ring = NULL;
    prof.samples = NULL;
    prof.cap = prof.scap = 0;
    prof.head = prof.shead = 0;
}

ts_status ts_prof_start(const ts_prof_config *cfg)
{
    ts_prof_config c = cfg ? *cfg : ts_prof_config_default();
    const ts_prof_schedule *s = &c.schedule;
    if (s->skip_first < 0 || s->wait < 0 || s->warmup < 0 || s->active < 0 || s->repeat < 0)
        return ts_fail(TS_ERR_ARG, "profiler: schedule counts must be >= 0 (skip_first %d, wait %d, warmup %d, active %d, repeat %d)",
                       s->skip_first, s->wait, s->warmup, s->active, s->repeat);
    if (s->active == 0 && (s->wait || s->warmup || s->repeat || s->skip_first))
        return ts_fail(TS_ERR_ARG, "profiler: a schedule needs active >= 1 (got wait %d, warmup %d, active 0)", s->wait, s->warmup);
    if (c.max_events == 0) c.max_events = TS_PROF_DEFAULT_EVENTS;
    if (c.max_events > ((size_t)1 << 28))
        return ts_fail(TS_ERR_ARG, "profiler: max_events %zu is more than %zu", c.max_events, (size_t)1 << 28);
    if (c.track_allocs) c.profile_memory = true;
    pthread_mutex_lock(&prof.mu);
    if (atomic_load(&prof.running)) {
        pthread_mutex_unlock(&prof.mu);
        return ts_fail(TS_ERR_ARG, "profiler: already running (stop it first)");
    }
    free_buffers_locked();
    prof.ring = calloc(c.max_events, sizeof *prof.ring);
    prof.samples = calloc(c.max_events, sizeof *prof.samples);
    if (!prof.ring || !prof.samples) {
        free_buffers_locked();
        pthread_mutex_unlock(&prof.mu);
        return ts_fail(TS_ERR_MEMORY, "profiler: cannot allocate a buffer of %zu events", c.max_events);
    }
    prof.cap = prof.scap = c.max_events;
    prof.cfg = c;
    prof.step = 0;
    prof.start_ns = prof.step_start_ns = prof_now();
    prof.stop_ns = 0;
    prof.main_tid = prof_gettid();
    atomic_fetch_add(&prof.gen, 1);
    atomic_store(&prof.action, ts_prof_schedule_action(&c.schedule, 0));
    atomic_store(&prof.running, 1);
    pthread_mutex_unlock(&prof.mu);
    prof_memory_clear();
    if (c.profile_memory) {
        prof_memory_start();
        prof_memory_sample(prof.start_ns, true);
    }
    ts_prof_set_hooks(&hooks);
    return TS_OK;
}

/* The range of a kept step, from its start to now. Called with prof.mu held. */
static void append_step_locked(int64_t now)
{
    char name[40];
    snprintf(name, sizeof name, "ProfilerStep#%lld", (long long)prof.step);
    ts_prof_event e = {
        .start_ns = prof.step_start_ns, .end_ns = now, .name = ts_prof_intern_cstr(name),
        .tid = prof_gettid(), .step = (int32_t)prof.step, .kind = (uint8_t)TS_PROF_RANGE,
    };
    append_locked(&e);
}

ts_prof_action ts_prof_step(void)
{
    pthread_mutex_lock(&prof.mu);
    if (!atomic_load(&prof.running)) {
        pthread_mutex_unlock(&prof.mu);
        return TS_PROF_NONE;
    }
    int64_t now = prof_now();
    if (atomic_load(&prof.action) >= TS_PROF_RECORD) append_step_locked(now);
    prof.step++;
    prof.step_start_ns = now;
    ts_prof_action a = ts_prof_schedule_action(&prof.cfg.schedule, prof.step);
    atomic_store(&prof.action, a);
    pthread_mutex_unlock(&prof.mu);
    if (prof.cfg.profile_memory) prof_memory_sample(now, false);
    return a;
}

void ts_prof_stop(void)
{
    if (!atomic_load(&prof.running)) return;
    /* close what this thread left open (begin_range without end_range) */
    prof_thread *t = prof_thread_get();
    if (t->n > 0) ts_prof_end(&t->ev[0]);
    int64_t now = prof_now();
    if (prof.cfg.profile_memory) prof_memory_sample(now, true);
    ts_prof_set_hooks(NULL);
    prof_memory_stop();
    pthread_mutex_lock(&prof.mu);
    if (prof.step > 0 && atomic_load(&prof.action) >= TS_PROF_RECORD) append_step_locked(now);
    atomic_store(&prof.action, TS_PROF_NONE);
    atomic_store(&prof.running, 0);
    prof.stop_ns = now;
    pthread_mutex_unlock(&prof.mu);
}

void ts_prof_clear(void)
{
    pthread_mutex_lock(&prof.mu);
    bool running = atomic_load(&prof.running);
    if (!running) free_buffers_locked();
    pthread_mutex_unlock(&prof.mu);
    if (!running) prof_memory_clear();
}

bool ts_prof_running(void) { return atomic_load(&prof.running) != 0; }

ts_prof_action ts_prof_action_now(void) { return (ts_prof_action)atomic_load(&prof.action); }

void ts_prof_get_info(ts_prof_info *out)
{
    pthread_mutex_lock(&prof.mu);
    out->start_ns = prof.start_ns;
    out->stop_ns = prof.stop_ns;
    out->main_tid = prof.main_tid;
    out->step = (int32_t)prof.step;
    out->recorded = prof.head;
    out->dropped = prof.head > (int64_t)prof.cap ? prof.head - (int64_t)prof.cap : 0;
    out->capacity = prof.cap;
    out->running = atomic_load(&prof.running) != 0;
    out->action = (ts_prof_action)atomic_load(&prof.action);
    pthread_mutex_unlock(&prof.mu);
}

size_t ts_prof_events(ts_prof_event *out, size_t max)
{
    pthread_mutex_lock(&prof.mu);
    size_t n = prof.head < (int64_t)prof.cap ? (size_t)prof.head : prof.cap;
    if (out) {
        size_t first = prof.head > (int64_t)prof.cap ? (size_t)(prof.head % (int64_t)prof.cap) : 0;
        for (size_t i = 0; i < n && i < max; i++) out[i] = prof.ring[(first + i) % prof.cap];
    }
    pthread_mutex_unlock(&prof.mu);
    return n;
}

int64_t ts_prof_dropped(void)
{
    pthread_mutex_lock(&prof.mu);
    int64_t d = prof.head > (int64_t)prof.cap ? prof.head - (int64_t)prof.cap : 0;
    pthread_mutex_unlock(&prof.mu);
    return d;
}
