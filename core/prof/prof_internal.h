/* prof_internal.h — state shared by the recorder's files (core/prof):
 * the session (prof_record.c), the allocation observer and leak table
 * (prof_memory.c), interned strings and stacks (prof_strings.c). */
#ifndef TORSH_PROF_INTERNAL_H
#define TORSH_PROF_INTERNAL_H

#include "torsh/prof.h"

#include <pthread.h>
#include <stdatomic.h>

/* One open event on a thread's stack. */
typedef struct prof_open {
    int64_t start, alloc0, freed0;
    int32_t name, op, inputs, stack, step;
    uint32_t gen;
    uint8_t kind, device;
    int16_t device_index;
    bool keep;                 /* recorded in a kept step (not warm-up) */
} prof_open;

/* Per-thread recorder state. gen tells a stale stack (left from an earlier
 * session) from the current one. */
typedef struct prof_thread {
    prof_open ev[TS_PROF_MAX_DEPTH];
    int n;                     /* open events in ev */
    int over;                  /* open events beyond TS_PROF_MAX_DEPTH (not recorded) */
    uint32_t gen;
    int32_t tid;
    int64_t alloc_bytes, freed_bytes;   /* running totals seen by the observer */
} prof_thread;

extern _Thread_local prof_thread prof_tls;

typedef struct prof_state {
    pthread_mutex_t mu;        /* ring, samples, step, config changes */
    atomic_int running;
    atomic_int action;         /* ts_prof_action of the current step */
    atomic_uint gen;           /* bumped by every start */
    ts_prof_config cfg;
    ts_prof_event *ring;
    size_t cap;
    int64_t head;              /* events appended in all */
    ts_prof_mem_sample *samples;
    size_t scap;
    int64_t shead;
    int64_t last_sampled[TS_DEVICE_TYPES];
    atomic_llong live[TS_DEVICE_TYPES], peak[TS_DEVICE_TYPES];
    int64_t start_ns, stop_ns, step_start_ns;
    int32_t main_tid;
    int64_t step;
} prof_state;

extern prof_state prof;

int64_t prof_now(void);
int32_t prof_gettid(void);
/* The calling thread's state, reset when it belongs to an older session. */
prof_thread *prof_thread_get(void);

/* prof_memory.c */
void prof_memory_start(void);      /* live/peak from the allocator, observer on */
void prof_memory_stop(void);       /* observer off */
void prof_memory_clear(void);      /* frees the leak table */
/* Appends a live/peak sample for each device whose live bytes changed
 * since the last one (force: always). Takes prof.mu. */
void prof_memory_sample(int64_t t, bool force);

#endif
