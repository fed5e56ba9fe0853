/* test_prof.c — the profiler's recorder without Lua (torsh/prof.h): events
 * from several threads at once (each thread's nesting intact, nothing
 * lost), the core hook that graph nodes go through, the schedule, the ring
 * buffer's cap, bytes per event from the allocator observer, the leak table,
 * interning and stack tries, and a recorder that is off recording nothing. */
#include "check.h"
#include "torsh/prof.h"
#include "torsh/torsh.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static ts_prof_event *all_events(size_t *n)
{
    *n = ts_prof_events(NULL, 0);
    ts_prof_event *ev = calloc(*n ? *n : 1, sizeof *ev);
    *n = ts_prof_events(ev, *n);
    return ev;
}

static void test_strings_and_stacks(void)
{
    int32_t a = ts_prof_intern_cstr("conv2d"), b = ts_prof_intern_cstr("conv2d"), c = ts_prof_intern("conv2d_x", 6);
    CHECK(a > 0 && a == b && c == a);
    CHECK(strcmp(ts_prof_string(a), "conv2d") == 0 && strcmp(ts_prof_string(0), "") == 0);
    int32_t f1 = ts_prof_intern_cstr("main"), f2 = ts_prof_intern_cstr("train");
    int32_t s1 = ts_prof_stack_push(0, f1), s2 = ts_prof_stack_push(s1, f2);
    CHECK(s1 > 0 && s2 > 0 && s1 != s2 && ts_prof_stack_push(s1, f2) == s2);
    int32_t parent, frame;
    CHECK(ts_prof_stack_node(s2, &parent, &frame) && parent == s1 && frame == f2);
    CHECK(!ts_prof_stack_node(ts_prof_stack_count() + 1, &parent, &frame));
    ts_tensor *t = ts_tensor_zeros((int64_t[]){ 2, 3 }, 2, TS_F32), *u = ts_tensor_zeros((int64_t[]){ 4 }, 1, TS_I64);
    ts_tensor *list[] = { t, NULL, u };
    CHECK(strcmp(ts_prof_string(ts_prof_describe(list, 3)), "f32[2,3] i64[4]") == 0);
    ts_tensor_release(t);
    ts_tensor_release(u);
}

static void test_schedule(void)
{
    ts_prof_schedule s = { .skip_first = 1, .wait = 1, .warmup = 1, .active = 2, .repeat = 1 };
    const ts_prof_action want[] = { TS_PROF_NONE, TS_PROF_NONE, TS_PROF_WARMUP, TS_PROF_RECORD,
                                    TS_PROF_RECORD_AND_SAVE, TS_PROF_NONE, TS_PROF_NONE };
    for (int i = 0; i < 7; i++) CHECK(ts_prof_schedule_action(&s, i) == want[i]);
    ts_prof_schedule none = { 0 };
    CHECK(ts_prof_schedule_action(&none, 5) == TS_PROF_RECORD);
    ts_prof_config c = ts_prof_config_default();
    c.schedule.wait = 2;   /* no active steps */
    CHECK(ts_prof_start(&c) == TS_ERR_ARG && strstr(ts_last_error(), "active"));
    c.schedule = (ts_prof_schedule){ .wait = -1, .active = 1 };
    CHECK(ts_prof_start(&c) == TS_ERR_ARG && !ts_prof_running());
}

static void test_off_records_nothing(void)
{
    CHECK(!ts_prof_running());
    CHECK(ts_prof_begin(TS_PROF_OP, 1, 0, 0, 0, (ts_device){ TS_CPU, 0 }) == NULL);
    CHECK(TS_PROF_BEGIN(TS_PROF_NODE, "n", "Relu", NULL, 0) == NULL);
    ts_prof_end(NULL);
}

static void test_nesting_and_hook(void)
{
    ts_prof_config c = ts_prof_config_default();
    CHECK(ts_prof_start(&c) == TS_OK);
    CHECK(ts_prof_start(&c) == TS_ERR_ARG && strstr(ts_last_error(), "already running"));
    ts_tensor *x = ts_tensor_zeros((int64_t[]){ 8 }, 1, TS_F32);
    void *outer = ts_prof_range_begin("outer");
    void *node = TS_PROF_BEGIN(TS_PROF_NODE, "relu_1", "Relu", &x, 1);
    ts_tensor *y = ts_tensor_zeros((int64_t[]){ 100 }, 1, TS_F32);    /* 400 bytes -> one 448-byte block */
    TS_PROF_END(node, &y, 1);
    ts_prof_range_end(outer);
    ts_prof_stop();
    size_t n;
    ts_prof_event *ev = all_events(&n);
    CHECK(n == 2);
    if (n == 2) {
        /* appended at their ends: the node first */
        CHECK(ev[0].kind == TS_PROF_NODE && strcmp(ts_prof_string(ev[0].name), "relu_1") == 0 &&
              strcmp(ts_prof_string(ev[0].op), "Relu") == 0 && strcmp(ts_prof_string(ev[0].inputs), "f32[8]") == 0);
        CHECK(ev[0].bytes_alloc == 448 && ev[0].bytes_freed == 0);
        CHECK(ev[1].kind == TS_PROF_RANGE && strcmp(ts_prof_string(ev[1].name), "outer") == 0);
        CHECK(ev[1].start_ns <= ev[0].start_ns && ev[0].end_ns <= ev[1].end_ns);
        CHECK(ev[0].tid == ev[1].tid);
    }
    free(ev);
    ts_prof_mem_sample s[64];
    size_t ns = ts_prof_memory_samples(s, 64);
    CHECK(ns >= 2 && s[ns - 1].live_bytes - s[0].live_bytes == 64 + 448 && s[ns - 1].peak_bytes >= s[ns - 1].live_bytes);
    ts_tensor_release(x);
    ts_tensor_release(y);
    ts_prof_clear();
    CHECK(ts_prof_events(NULL, 0) == 0);
}

static void test_ring_and_steps(void)
{
    ts_prof_config c = ts_prof_config_default();
    c.max_events = 10;
    c.schedule = (ts_prof_schedule){ .wait = 1, .active = 1 };   /* odd steps recorded */
    CHECK(ts_prof_start(&c) == TS_OK);
    int32_t name = ts_prof_intern_cstr("tick");
    for (int step = 0; step < 40; step++) {
        ts_prof_end(ts_prof_begin(TS_PROF_OP, name, 0, 0, 0, (ts_device){ TS_CPU, 0 }));
        ts_prof_step();
    }
    ts_prof_info info;
    ts_prof_get_info(&info);
    CHECK(info.step == 40 && info.recorded == 40 && info.dropped == 30 && info.capacity == 10);
    ts_prof_stop();
    size_t n;
    ts_prof_event *ev = all_events(&n);
    CHECK(n == 10);
    for (size_t i = 0; i < n; i++) CHECK(ev[i].step % 2 == 1 && ev[i].step >= 31);   /* a tick and a ProfilerStep each */
    free(ev);
    ts_prof_clear();
}

/* Several threads record nested events at once. */
typedef struct { int32_t outer, inner; int reps; } worker_arg;

static void *worker(void *p)
{
    const worker_arg *a = p;
    for (int i = 0; i < a->reps; i++) {
        void *o = ts_prof_begin(TS_PROF_RANGE, a->outer, 0, 0, 0, (ts_device){ TS_CPU, 0 });
        ts_prof_end(ts_prof_begin(TS_PROF_OP, a->inner, 0, 0, 0, (ts_device){ TS_CPU, 0 }));
        ts_prof_end(o);
    }
    return NULL;
}

static void test_threads(void)
{
    ts_prof_config c = ts_prof_config_default();
    CHECK(ts_prof_start(&c) == TS_OK);
    enum { THREADS = 4, REPS = 2000 };
    pthread_t th[THREADS];
    worker_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        char name[32];
        snprintf(name, sizeof name, "outer%d", i);
        args[i] = (worker_arg){ ts_prof_intern_cstr(name), ts_prof_intern_cstr("inner"), REPS };
        pthread_create(&th[i], NULL, worker, &args[i]);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    ts_prof_stop();
    size_t n;
    ts_prof_event *ev = all_events(&n);
    CHECK(n == THREADS * REPS * 2);
    /* each thread: every inner event lies inside the outer one appended right after it */
    int bad = 0, per_thread_outer[THREADS] = { 0 };
    int32_t tid_of[THREADS] = { 0 };
    for (size_t i = 0; i < n; i++) {
        if (ev[i].kind != TS_PROF_RANGE) continue;
        int w = -1;
        for (int k = 0; k < THREADS; k++) if (ev[i].name == args[k].outer) w = k;
        if (w < 0) { bad++; continue; }
        per_thread_outer[w]++;
        if (!tid_of[w]) tid_of[w] = ev[i].tid;
        if (ev[i].tid != tid_of[w]) bad++;
        /* find this thread's inner event appended just before */
        size_t j = i;
        while (j > 0 && !(ev[j - 1].tid == ev[i].tid)) j--;
        if (j == 0 || ev[j - 1].kind != TS_PROF_OP || ev[j - 1].start_ns < ev[i].start_ns || ev[j - 1].end_ns > ev[i].end_ns)
            bad++;
    }
    CHECK(bad == 0);
    for (int k = 0; k < THREADS; k++) CHECK(per_thread_outer[k] == REPS);
    for (int k = 1; k < THREADS; k++) CHECK(tid_of[k] != tid_of[0]);
    free(ev);
    ts_prof_clear();
}

static void test_leaks(void)
{
    ts_prof_config c = ts_prof_config_default();
    c.track_allocs = true;
    CHECK(ts_prof_start(&c) == TS_OK);
    void *op = ts_prof_begin(TS_PROF_OP, ts_prof_intern_cstr("make"), 0, 0, 0, (ts_device){ TS_CPU, 0 });
    ts_tensor *kept = ts_tensor_zeros((int64_t[]){ 1000 }, 1, TS_F32);
    ts_tensor *dropped = ts_tensor_zeros((int64_t[]){ 10 }, 1, TS_F32);
    ts_prof_end(op);
    ts_tensor_release(dropped);
    ts_tensor *outside = ts_tensor_zeros((int64_t[]){ 3 }, 1, TS_F32);
    ts_prof_stop();
    ts_prof_alloc a[8];
    size_t n = ts_prof_live_allocs(a, 8);
    CHECK(n == 2);
    int found = 0;
    for (size_t i = 0; i < n && i < 8; i++) {
        if (a[i].bytes == 4032 && strcmp(ts_prof_string(a[i].op), "make") == 0 &&
            a[i].address == (uint64_t)(uintptr_t)kept->storage->data) found |= 1;
        if (a[i].bytes == 64 && a[i].op == 0) found |= 2;
    }
    CHECK(found == 3);
    ts_tensor_release(kept);
    ts_tensor_release(outside);
    ts_prof_clear();
    CHECK(ts_prof_live_allocs(NULL, 0) == 0);
}

int main(void)
{
    RUN(test_strings_and_stacks);
    RUN(test_schedule);
    RUN(test_off_records_nothing);
    RUN(test_nesting_and_hook);
    RUN(test_ring_and_steps);
    RUN(test_threads);
    RUN(test_leaks);
    return check_finish("prof");
}
