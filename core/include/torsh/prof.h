/* torsh/prof.h — the profiler's recorder (core/prof): timed events for core
 * ops, graph nodes and user ranges, a step schedule, memory samples and a
 * table of live allocations for leak reports. Formatting (Chrome trace,
 * speedscope, flame graphs, HTML) is done above the core, in
 * stdlib/torsh/profiler*.lua; this layer only records.
 *
 * Life cycle:
 *     ts_prof_config cfg = ts_prof_config_default();
 *     cfg.schedule = (ts_prof_schedule){ .wait = 1, .warmup = 1, .active = 3 };
 *     ts_prof_start(&cfg);              // installs the hooks (prof_hook.h, allocator)
 *     for (...) { ...ops...; ts_prof_step(); }
 *     ts_prof_stop();                   // uninstalls them; the data stays
 *     size_t n = ts_prof_events(NULL, 0);
 *     ts_prof_event *ev = malloc(n * sizeof *ev);
 *     ts_prof_events(ev, n);            // oldest first
 *     printf("%s\n", ts_prof_string(ev[0].name));
 *     ts_prof_clear();                  // or the next ts_prof_start
 *
 * Events: ts_prof_begin() stamps CLOCK_MONOTONIC and pushes an open event on
 * the calling thread's stack; ts_prof_end() closes it and appends a complete
 * event to one ring buffer (capacity cfg.max_events; when full the oldest
 * events are overwritten and counted in ts_prof_dropped()). Begin and end of
 * one event happen on the same thread; any thread may record. Events nest by
 * time per thread (a range containing ops); self times are left to the
 * exporters.
 *
 * Memory (cfg.profile_memory): an allocator observer counts the bytes each
 * event allocated and freed on its thread, keeps live/peak bytes per device
 * and samples them at event ends when they changed. With cfg.track_allocs
 * every allocation made while on is kept in a table with the innermost open
 * event (its name and stack) until freed: what is left at ts_prof_stop() is
 * the leak report (ts_prof_live_allocs).
 *
 * Strings (op names, node names, input descriptions, stack frames) are
 * interned once per process: ids are small positive integers, 0 means none;
 * ts_prof_string() pointers stay valid for the life of the process. Stacks
 * are nodes of one trie: (parent node, frame string) -> node id.
 *
 * Not owned by anyone: the recorder is one per process (a second
 * ts_prof_start while running fails).
 */
#ifndef TORSH_PROF_H
#define TORSH_PROF_H

#include "torsh/prof_hook.h"
#include "torsh/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The third event kind beside TS_PROF_OP and TS_PROF_NODE (prof_hook.h). */
#define TS_PROF_RANGE ((ts_prof_kind)2)

#define TS_PROF_DEFAULT_EVENTS ((size_t)1 << 20)
#define TS_PROF_MAX_DEPTH 64      /* open events per thread; deeper ones are not recorded */

/* Like torch.profiler.schedule: after skip_first steps, cycles of `wait`
 * idle steps, `warmup` steps recorded then discarded, `active` steps kept;
 * `repeat` cycles (0: forever). active == 0 means no schedule: every step
 * is recorded. Steps count from 0 and advance with ts_prof_step(). */
typedef struct ts_prof_schedule { int skip_first, wait, warmup, active, repeat; } ts_prof_schedule;

typedef enum ts_prof_action {
    TS_PROF_NONE = 0,             /* not recording this step */
    TS_PROF_WARMUP = 1,           /* recording, events discarded */
    TS_PROF_RECORD = 2,           /* recording, events kept */
    TS_PROF_RECORD_AND_SAVE = 3,  /* the last recorded step of a cycle */
} ts_prof_action;

typedef struct ts_prof_config {
    size_t max_events;            /* ring capacity (0: TS_PROF_DEFAULT_EVENTS) */
    bool record_shapes;           /* hook events describe their input tensors */
    bool profile_memory;          /* bytes per event, live/peak samples */
    bool track_allocs;            /* leak report (implies profile_memory) */
    ts_prof_schedule schedule;
} ts_prof_config;

typedef struct ts_prof_event {
    int64_t start_ns, end_ns;     /* CLOCK_MONOTONIC */
    int64_t bytes_alloc, bytes_freed;  /* on this thread during the event (0 without profile_memory) */
    int32_t name;                 /* op name, node name or range name */
    int32_t op;                   /* graph nodes: the op type; else 0 */
    int32_t inputs;               /* "f32[2,3] f32[3] scalar" or 0 */
    int32_t stack;                /* Lua stack node at begin, or 0 */
    int32_t tid;                  /* OS thread id */
    int32_t step;                 /* schedule step it began in */
    uint8_t kind;                 /* ts_prof_kind */
    uint8_t device;               /* ts_device_type of the first input */
    int16_t device_index;
    int32_t pad_;
} ts_prof_event;

typedef struct ts_prof_mem_sample {
    int64_t t_ns;
    int64_t live_bytes, peak_bytes;   /* peak: since ts_prof_start */
    int32_t device;                   /* ts_device_type */
    int32_t pad_;
} ts_prof_mem_sample;

typedef struct ts_prof_alloc {
    int64_t t_ns;
    int64_t bytes;
    uint64_t address;
    int32_t op;                   /* name of the innermost open event, or 0 */
    int32_t stack;                /* its stack node, or 0 */
    int32_t tid;
    int32_t device;
} ts_prof_alloc;

typedef struct ts_prof_info {
    int64_t start_ns, stop_ns;    /* stop_ns: 0 while running */
    int32_t main_tid;             /* the thread that called ts_prof_start */
    int32_t step;                 /* current step */
    int64_t recorded, dropped;    /* events appended in all / overwritten */
    size_t capacity;
    bool running;
    ts_prof_action action;
} ts_prof_info;

ts_prof_config ts_prof_config_default(void);   /* shapes and memory on, no schedule */

/* Starts a session: clears the previous data, installs the hooks. Fails
 * (TS_ERR_ARG) when one is running or the schedule has negative counts. */
ts_status ts_prof_start(const ts_prof_config *cfg);
/* Ends the session: closes this thread's open events, takes a last memory
 * sample, uninstalls the hooks. The data stays until the next start or
 * ts_prof_clear. No-op when not running. */
void ts_prof_stop(void);
/* Frees the recorded data (not the interned strings). */
void ts_prof_clear(void);
bool ts_prof_running(void);
/* What the current step does (TS_PROF_NONE when not running). */
ts_prof_action ts_prof_action_now(void);
/* Ends the current step, starts the next; returns the new step's action.
 * Kept steps also appear as "ProfilerStep#N" range events. */
ts_prof_action ts_prof_step(void);
/* The action of `step` under schedule s (pure; the rule torch uses). */
ts_prof_action ts_prof_schedule_action(const ts_prof_schedule *s, int64_t step);
void ts_prof_get_info(ts_prof_info *out);
int64_t ts_prof_now_ns(void);

/* ---- recording (any thread) ---------------------------------------------- */
/* Opens an event; returns a token for ts_prof_end, or NULL when not
 * recording (then ts_prof_end(NULL) does nothing). String ids from
 * ts_prof_intern, 0 for none. */
void *ts_prof_begin(ts_prof_kind kind, int32_t name, int32_t op, int32_t inputs, int32_t stack, ts_device dev);
void ts_prof_end(void *token);
/* Convenience for C callers: a named range around some work. */
void *ts_prof_range_begin(const char *name);
#define ts_prof_range_end ts_prof_end
/* Stack node of the innermost open event on this thread, or 0. */
int32_t ts_prof_current_stack(void);
/* True when record_shapes was asked for. */
bool ts_prof_records_shapes(void);

/* ---- strings and stacks ----------------------------------------------------- */
/* Interns len bytes of s; returns its id (> 0), or 0 when out of memory. */
int32_t ts_prof_intern(const char *s, size_t len);
int32_t ts_prof_intern_cstr(const char *s);
/* The string of an id ("" for 0 or an unknown id). Valid for the process. */
const char *ts_prof_string(int32_t id);
/* "f32[2,3] i64[4]" for n tensors (NULL entries are skipped), interned. */
int32_t ts_prof_describe(ts_tensor *const *tensors, int n);
/* Appends one tensor's description ("f32[2,3]") to buf at *len (cap bytes). */
void ts_prof_describe_one(const ts_tensor *t, char *buf, size_t cap, size_t *len);
/* The stack node (parent, frame) -> id (> 0); parent 0 is the root. */
int32_t ts_prof_stack_push(int32_t parent, int32_t frame);
/* Reads a node; false for an unknown id. */
bool ts_prof_stack_node(int32_t id, int32_t *parent, int32_t *frame);
/* Number of stack nodes so far (ids are 1..count). */
int32_t ts_prof_stack_count(void);

/* ---- reading the data -------------------------------------------------------- */
/* Copies up to max events, oldest first; returns how many there are. */
size_t ts_prof_events(ts_prof_event *out, size_t max);
size_t ts_prof_memory_samples(ts_prof_mem_sample *out, size_t max);
/* Allocations made while on and not freed (at stop: the leaks). */
size_t ts_prof_live_allocs(ts_prof_alloc *out, size_t max);
int64_t ts_prof_dropped(void);

#ifdef __cplusplus
}
#endif
#endif
