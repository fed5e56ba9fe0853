/* l_prof.c — torsh._prof: the binding of the profiler's recorder
 * (torsh/prof.h) for stdlib/torsh/profiler.lua, and the instrumentation of
 * every op called from Lua.
 *
 *   _prof.start{max_events=, record_shapes=, profile_memory=, track_allocs=,
 *               with_stack=, schedule={skip_first=, wait=, warmup=, active=, repeat=}}
 *   _prof.stop()   _prof.clear()   _prof.running() -> bool
 *   _prof.step() -> action        _prof.action() -> action
 *       (action: "none" | "warmup" | "record" | "record_and_save")
 *   _prof.begin_range(name) -> token | nil     _prof.end_range(token)
 *   _prof.events() -> { {name=, kind="op"|"node"|"range", op=, inputs=, stack=,
 *                        t0=, t1= (ns since start), tid=, step=, device=,
 *                        alloc=, freed=}, ... }   oldest first
 *   _prof.stacks() -> { [id] = {parent id, frame string} }
 *   _prof.memory() -> { {t=, live=, peak=, device=}, ... }
 *   _prof.leaks() -> { {t=, bytes=, op=, stack=, tid=, device=}, ... }
 *   _prof.info() -> {start_ns=, stop_ns=, main_tid=, step=, recorded=,
 *                    dropped=, capacity=, running=, action=, wrapped=}
 *   _prof.schedule_action(schedule, step) -> action
 *   _prof.now() -> ns (CLOCK_MONOTONIC)
 *
 * How ops are instrumented, and why here. An op called from Lua is a C
 * function in one of four tables: the Tensor methods, the Tensor metatable
 * (arithmetic metamethods), the torsh module and torsh._optim. While the
 * profiler runs, start() replaces each of those entries with a wrapper
 * closure (the original function, the interned op name and the Tensor
 * metatable as upvalues) that describes the arguments, opens an event, calls
 * the original under lua_pcall, closes the event and re-raises any error;
 * stop() puts the originals back. So the instrumented path exists only while
 * profiling: with the profiler off the binding runs exactly the code it runs
 * without a profiler (not even a flag test), which is the "< 1% when off"
 * requirement met at 0%. The alternatives cost something on every op: a
 * macro around the core call in each binding file is a load and branch per
 * op (and ~250 call sites to keep instrumented), the result path
 * (tsL_result) misses ops that return numbers or raise, and the backend
 * dispatch sees kernels, not the ops the user wrote. Lua code that saved a
 * reference to an op in a local before start() bypasses the wrappers
 * (stdlib looks ops up at call time, so it is all seen).
 */
#include "tsl.h"
#include "torsh/prof.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SAVED_KEY[] = "torsh.prof.saved";   /* registry: {tbl, key, original, wrapper} ... */

static bool with_stack, record_shapes;

static const char *const action_names[] = { "none", "warmup", "record", "record_and_save" };
static const char *const kind_names[] = { "op", "node", "range" };

/* Module functions and methods that only read or set metadata: not ops. */
static const char *const not_ops[] = {
    "blas", "clock", "cpu", "device", "dim", "dtype", "empty_cache", "enable_grad", "free", "get_num_threads",
    "get_rng_state", "grad", "grad_fn", "interrupted", "is_contiguous", "is_freed", "is_grad_enabled", "is_leaf",
    "isatty", "manual_seed", "memory", "nbytes", "no_grad", "num_cores", "numel", "requires_grad",
    "requires_grad_", "reset_peak_memory", "set_grad", "set_grad_enabled", "set_num_threads", "set_rng_state",
    "shape", "shares_storage", "size", "storage_offset", "stride", "trap_interrupt", NULL,
};

/* Metamethods that are ops, with the op's name. */
static const char *const metamethods[][2] = {
    { "__add", "add" }, { "__sub", "sub" }, { "__mul", "mul" }, { "__div", "div" }, { "__mod", "remainder" },
    { "__idiv", "floor_divide" }, { "__pow", "pow" }, { "__unm", "neg" }, { NULL, NULL },
};

static bool is_not_op(const char *name)
{
    for (int i = 0; not_ops[i]; i++)
        if (strcmp(name, not_ops[i]) == 0) return true;
    return false;
}

/* ---- Lua stacks ------------------------------------------------------------------
 * A stack is found by walking lua_getstack with "S" only (no name search)
 * and hashing each Lua frame's (source, linedefined); a cache maps that hash
 * to the trie node, so the frames' names are formatted only the first time
 * a stack is seen. */
#define STACK_MAX 48
#define STACK_CACHE 4096
static struct { uint64_t hash; int32_t id; } stack_cache[STACK_CACHE];
static pthread_mutex_t stack_mu = PTHREAD_MUTEX_INITIALIZER;

/* A function called from C (pcall, a metamethod) has no name in the debug
 * info: take it from its definition line in the source file instead
 * ("function Module:_call(" -> "Module:_call"), or leave it empty. */
static void name_from_source(const char *source, int line, char *out, size_t cap)
{
    out[0] = '\0';
    if (source[0] != '@' || line <= 0) return;
    FILE *f = fopen(source + 1, "r");
    if (!f) return;
    char buf[512];
    int n = 0;
    while (fgets(buf, sizeof buf, f))
        if (strchr(buf, '\n') && ++n == line) break;
    fclose(f);
    if (n != line) return;
    const char *p = strstr(buf, "function");
    if (!p) return;
    p += 8;
    while (*p == ' ' || *p == '\t') p++;
    size_t k = 0;
    while (k + 1 < cap && (isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == ':')) out[k++] = *p++;
    out[k] = '\0';
}

#define FRAME_CACHE 1024
static struct { const void *source; int line; int32_t id; } frame_cache[FRAME_CACHE];

static int32_t frame_id(lua_Debug *ar)
{
    size_t slot = ((uintptr_t)ar->source / 16 + (size_t)ar->linedefined * 31) % FRAME_CACHE;
    bool named = ar->name != NULL;
    if (!named && frame_cache[slot].source == ar->source && frame_cache[slot].line == ar->linedefined)
        return frame_cache[slot].id;
    char buf[256], guess[96];
    if (*ar->what == 'm') {
        snprintf(buf, sizeof buf, "main chunk (%s)", ar->short_src);
    } else {
        if (!named) name_from_source(ar->source, ar->linedefined, guess, sizeof guess);
        snprintf(buf, sizeof buf, "%s (%s:%d)", named ? ar->name : *guess ? guess : "<anonymous>", ar->short_src,
                 ar->linedefined);
    }
    for (char *p = buf; *p; p++) if (*p == ';' || *p == '\n') *p = ':';   /* folded-stack separators */
    int32_t id = ts_prof_intern_cstr(buf);
    if (!named) {
        frame_cache[slot].source = ar->source;
        frame_cache[slot].line = ar->linedefined;
        frame_cache[slot].id = id;
    }
    return id;
}

static int32_t lua_stack_id(lua_State *L)
{
    lua_Debug ar;
    uint64_t h = 1469598103934665603ull;
    int depth = 0;
    for (int level = 1; depth < STACK_MAX && lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "S", &ar);
        if (*ar.what == 'C') continue;
        h = (h ^ (uint64_t)(uintptr_t)ar.source) * 1099511628211ull;
        h = (h ^ (uint64_t)ar.linedefined) * 1099511628211ull;
        depth++;
    }
    if (!depth) return 0;
    h ^= (uint64_t)depth;
    size_t slot = (size_t)(h % STACK_CACHE);
    pthread_mutex_lock(&stack_mu);     /* guards both caches; nothing below can raise */
    int32_t id = stack_cache[slot].hash == h ? stack_cache[slot].id : 0;
    if (!id) {
        /* new stack: name the frames (leaf first), then push them root first */
        int32_t frames[STACK_MAX];
        int n = 0;
        for (int level = 1; n < STACK_MAX && lua_getstack(L, level, &ar); level++) {
            lua_getinfo(L, "Sn", &ar);
            if (*ar.what == 'C') continue;
            frames[n++] = frame_id(&ar);
        }
        for (int i = n - 1; i >= 0; i--) id = ts_prof_stack_push(id, frames[i]);
        stack_cache[slot].hash = h;
        stack_cache[slot].id = id;
    }
    pthread_mutex_unlock(&stack_mu);
    return id;
}

/* ---- the op wrapper ---------------------------------------------------------------- */
/* The tensor at idx when it is a live one (metatable compare), else NULL. */
static ts_tensor *arg_tensor(lua_State *L, int idx, int mt_idx)
{
    ts_tensor **ud = lua_touserdata(L, idx);
    if (!ud || !lua_getmetatable(L, idx)) return NULL;
    int same = lua_rawequal(L, -1, mt_idx);
    lua_pop(L, 1);
    return same ? *ud : NULL;
}

/* "f32[2,3] scalar f32[3]": tensors, numbers, and tensors in list arguments. */
static int32_t describe_args(lua_State *L, int n, int mt_idx, ts_device *dev)
{
    char buf[512];
    size_t len = 0;
    bool have_dev = false;
    buf[0] = '\0';
    for (int i = 1; i <= n; i++) {
        int type = lua_type(L, i);
        if (type == LUA_TUSERDATA) {
            ts_tensor *t = arg_tensor(L, i, mt_idx);
            if (!t) continue;
            ts_prof_describe_one(t, buf, sizeof buf, &len);
            if (!have_dev && t->storage) { *dev = t->storage->device; have_dev = true; }
        } else if (type == LUA_TNUMBER) {
            const char *s = len ? " scalar" : "scalar";
            size_t k = strlen(s);
            if (len + k < sizeof buf) { memcpy(buf + len, s, k + 1); len += k; }
        } else if (type == LUA_TTABLE) {
            lua_Integer m = (lua_Integer)lua_rawlen(L, i);
            for (lua_Integer j = 1; j <= m && j <= 64; j++) {
                lua_rawgeti(L, i, j);
                ts_tensor *t = lua_type(L, -1) == LUA_TUSERDATA ? arg_tensor(L, lua_gettop(L), mt_idx) : NULL;
                if (t) ts_prof_describe_one(t, buf, sizeof buf, &len);
                lua_pop(L, 1);
                if (!t) break;
            }
        }
    }
    return len ? ts_prof_intern(buf, len) : 0;
}

/* upvalues: 1 the original function, 2 the op name id, 3 the Tensor metatable */
static int op_wrapper(lua_State *L)
{
    int n = lua_gettop(L);
    if (ts_prof_action_now() == TS_PROF_NONE) {
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_insert(L, 1);
        lua_call(L, n, LUA_MULTRET);
        return lua_gettop(L);
    }
    ts_device dev = { TS_CPU, 0 };
    int32_t inputs = record_shapes ? describe_args(L, n, lua_upvalueindex(3), &dev) : 0;
    int32_t stack = with_stack ? lua_stack_id(L) : 0;
    int32_t name = (int32_t)lua_tointeger(L, lua_upvalueindex(2));
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    void *tok = ts_prof_begin(TS_PROF_OP, name, 0, inputs, stack, dev);
    int st = lua_pcall(L, n, LUA_MULTRET, 0);
    ts_prof_end(tok);
    if (st != LUA_OK) {
        /* luaL_argerror names the function by searching package.loaded, where
         * the wrapper now stands: put the op's name back */
        if (lua_type(L, -1) == LUA_TSTRING && strstr(lua_tostring(L, -1), " to '?'")) {
            char with[128];
            snprintf(with, sizeof with, " to '%s'", ts_prof_string(name));
            luaL_gsub(L, lua_tostring(L, -1), " to '?'", with);
        }
        return lua_error(L);
    }
    return lua_gettop(L);
}

/* Replaces the C functions of the table at tbl (filter: 0 all ops, 1 the
 * metamethods listed above) with wrappers, remembering them in `saved`. */
static void wrap_table(lua_State *L, int tbl, int saved, int mt, int metatable_mode)
{
    /* collect first: assigning during lua_next is only safe for existing keys */
    lua_newtable(L);
    int todo = lua_gettop(L);
    int ntodo = 0;
    lua_pushnil(L);
    while (lua_next(L, tbl)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_iscfunction(L, -1) && lua_tocfunction(L, -1) != op_wrapper) {
            const char *key = lua_tostring(L, -2);
            const char *name = NULL;
            if (metatable_mode) {
                for (int i = 0; metamethods[i][0]; i++)
                    if (strcmp(key, metamethods[i][0]) == 0) name = metamethods[i][1];
            } else if (!is_not_op(key) && key[0] != '_') {
                name = key;
            }
            if (name) {
                lua_pushvalue(L, -2);
                lua_rawseti(L, todo, ++ntodo);
                lua_pushstring(L, name);
                lua_rawseti(L, todo, ++ntodo);
            }
        }
        lua_pop(L, 1);
    }
    for (int i = 1; i <= ntodo; i += 2) {
        lua_rawgeti(L, todo, i);                 /* key */
        int key = lua_gettop(L);
        lua_rawgeti(L, todo, i + 1);             /* op name */
        int32_t name = ts_prof_intern_cstr(lua_tostring(L, -1));
        lua_pop(L, 1);
        lua_pushvalue(L, key);
        lua_rawget(L, tbl);                      /* original */
        int orig = lua_gettop(L);
        lua_pushvalue(L, orig);
        lua_pushinteger(L, name);
        lua_pushvalue(L, mt);
        lua_pushcclosure(L, op_wrapper, 3);
        int wrapper = lua_gettop(L);
        lua_createtable(L, 4, 0);                /* saved entry */
        lua_pushvalue(L, tbl); lua_rawseti(L, -2, 1);
        lua_pushvalue(L, key); lua_rawseti(L, -2, 2);
        lua_pushvalue(L, orig); lua_rawseti(L, -2, 3);
        lua_pushvalue(L, wrapper); lua_rawseti(L, -2, 4);
        lua_rawseti(L, saved, (lua_Integer)lua_rawlen(L, saved) + 1);
        lua_pushvalue(L, key);
        lua_pushvalue(L, wrapper);
        lua_rawset(L, tbl);
        lua_settop(L, key - 1);
    }
    lua_settop(L, todo - 1);
}

/* Puts the original functions back where the wrappers still stand. */
static void unwrap_all(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, SAVED_KEY) != LUA_TTABLE) { lua_pop(L, 1); return; }
    int saved = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, saved);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, saved, i);
        int e = lua_gettop(L);
        lua_rawgeti(L, e, 1);                    /* tbl */
        lua_rawgeti(L, e, 2);                    /* key */
        lua_rawget(L, -2);                       /* current */
        lua_rawgeti(L, e, 4);                    /* wrapper */
        if (lua_rawequal(L, -1, -2)) {
            lua_rawgeti(L, e, 2);
            lua_rawgeti(L, e, 3);
            lua_rawset(L, e + 1);
        }
        lua_settop(L, saved);
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, SAVED_KEY);
}

static int wrap_all(lua_State *L)
{
    unwrap_all(L);
    lua_newtable(L);
    int saved = lua_gettop(L);
    luaL_getmetatable(L, TSL_TENSOR_MT);
    int mt = lua_gettop(L);
    wrap_table(L, mt, saved, mt, 1);
    lua_getfield(L, mt, "__index");
    if (lua_istable(L, -1)) wrap_table(L, lua_gettop(L), saved, mt, 0);
    lua_pop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, "torsh.module");
    int module = lua_gettop(L);
    if (lua_istable(L, module)) {
        wrap_table(L, module, saved, mt, 0);
        lua_pushliteral(L, "_optim");
        if (lua_rawget(L, module) == LUA_TTABLE) wrap_table(L, lua_gettop(L), saved, mt, 0);
        lua_pop(L, 1);
    }
    int count = (int)lua_rawlen(L, saved);
    lua_pushvalue(L, saved);
    lua_setfield(L, LUA_REGISTRYINDEX, SAVED_KEY);
    lua_settop(L, saved - 1);
    return count;
}

/* ---- functions ---------------------------------------------------------------------- */
static int opt_int_field(lua_State *L, int idx, const char *k, int def)
{
    lua_getfield(L, idx, k);
    int v = def;
    if (!lua_isnil(L, -1)) {
        int ok;
        lua_Integer x = lua_tointegerx(L, -1, &ok);
        if (!ok || x < 0 || x > 1 << 30) luaL_error(L, "profiler: %s must be an integer >= 0", k);
        v = (int)x;
    }
    lua_pop(L, 1);
    return v;
}

static int l_start(lua_State *L)
{
    ts_prof_config c = ts_prof_config_default();
    bool stack = false;
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        double me = tsL_optfield_number(L, 1, "max_events", 0);
        if (me < 0 || me > (double)((size_t)1 << 28)) luaL_error(L, "profiler: max_events must be 1 .. 2^28");
        c.max_events = (size_t)me;
        c.record_shapes = tsL_optfield_bool(L, 1, "record_shapes", 1);
        c.profile_memory = tsL_optfield_bool(L, 1, "profile_memory", 1);
        c.track_allocs = tsL_optfield_bool(L, 1, "track_allocs", 0);
        stack = tsL_optfield_bool(L, 1, "with_stack", 0);
        lua_getfield(L, 1, "schedule");
        if (lua_istable(L, -1)) {
            int s = lua_gettop(L);
            c.schedule.skip_first = opt_int_field(L, s, "skip_first", 0);
            c.schedule.wait = opt_int_field(L, s, "wait", 0);
            c.schedule.warmup = opt_int_field(L, s, "warmup", 0);
            c.schedule.active = opt_int_field(L, s, "active", 0);
            c.schedule.repeat = opt_int_field(L, s, "repeat", 0);
        } else if (!lua_isnil(L, -1)) {
            luaL_error(L, "profiler: schedule must be a table {skip_first=, wait=, warmup=, active=, repeat=}");
        }
        lua_pop(L, 1);
    }
    tsL_check(L, ts_prof_start(&c));
    with_stack = stack;
    record_shapes = c.record_shapes;
    lua_pushinteger(L, wrap_all(L));
    return 1;
}

static int l_stop(lua_State *L)
{
    ts_prof_stop();
    unwrap_all(L);
    return 0;
}

static int l_clear(lua_State *L) { (void)L; ts_prof_clear(); return 0; }
static int l_running(lua_State *L) { lua_pushboolean(L, ts_prof_running()); return 1; }
static int l_step(lua_State *L) { lua_pushstring(L, action_names[ts_prof_step()]); return 1; }
static int l_action(lua_State *L) { lua_pushstring(L, action_names[ts_prof_action_now()]); return 1; }
static int l_now(lua_State *L) { lua_pushinteger(L, ts_prof_now_ns()); return 1; }

static int l_begin_range(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    if (ts_prof_action_now() == TS_PROF_NONE) return 0;
    ts_device cpu = { TS_CPU, 0 };
    int32_t stack = with_stack ? lua_stack_id(L) : ts_prof_current_stack();
    void *tok = ts_prof_begin(TS_PROF_RANGE, ts_prof_intern(name, len), 0, 0, stack, cpu);
    if (!tok) return 0;
    lua_pushlightuserdata(L, tok);
    return 1;
}

static int l_end_range(lua_State *L)
{
    if (lua_islightuserdata(L, 1)) ts_prof_end(lua_touserdata(L, 1));
    else if (!lua_isnoneornil(L, 1)) luaL_typeerror(L, 1, "range token");
    return 0;
}

static int l_events(lua_State *L)
{
    ts_prof_info info;
    ts_prof_get_info(&info);
    size_t n = ts_prof_events(NULL, 0);
    /* a userdata the GC owns, so a Lua error below leaks nothing */
    ts_prof_event *copy = lua_newuserdatauv(L, (n ? n : 1) * sizeof *copy, 0);
    size_t have = ts_prof_events(copy, n);
    if (have < n) n = have;
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        const ts_prof_event *e = &copy[i];
        lua_createtable(L, 0, 12);
        lua_pushstring(L, ts_prof_string(e->name)); lua_setfield(L, -2, "name");
        lua_pushstring(L, kind_names[e->kind < 3 ? e->kind : 0]); lua_setfield(L, -2, "kind");
        if (e->op) { lua_pushstring(L, ts_prof_string(e->op)); lua_setfield(L, -2, "op"); }
        if (e->inputs) { lua_pushstring(L, ts_prof_string(e->inputs)); lua_setfield(L, -2, "inputs"); }
        lua_pushinteger(L, e->stack); lua_setfield(L, -2, "stack");
        lua_pushinteger(L, e->start_ns - info.start_ns); lua_setfield(L, -2, "t0");
        lua_pushinteger(L, e->end_ns - info.start_ns); lua_setfield(L, -2, "t1");
        lua_pushinteger(L, e->tid); lua_setfield(L, -2, "tid");
        lua_pushinteger(L, e->step); lua_setfield(L, -2, "step");
        lua_pushstring(L, e->device == TS_CUDA ? "cuda" : "cpu"); lua_setfield(L, -2, "device");
        lua_pushinteger(L, e->bytes_alloc); lua_setfield(L, -2, "alloc");
        lua_pushinteger(L, e->bytes_freed); lua_setfield(L, -2, "freed");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int l_stacks(lua_State *L)
{
    int32_t n = ts_prof_stack_count();
    lua_createtable(L, n, 0);
    for (int32_t id = 1; id <= n; id++) {
        int32_t parent, frame;
        if (!ts_prof_stack_node(id, &parent, &frame)) break;
        lua_createtable(L, 2, 0);
        lua_pushinteger(L, parent); lua_rawseti(L, -2, 1);
        lua_pushstring(L, ts_prof_string(frame)); lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, id);
    }
    return 1;
}

static int l_memory(lua_State *L)
{
    ts_prof_info info;
    ts_prof_get_info(&info);
    size_t n = ts_prof_memory_samples(NULL, 0);
    ts_prof_mem_sample *s = lua_newuserdatauv(L, (n ? n : 1) * sizeof *s, 0);
    n = ts_prof_memory_samples(s, n);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, s[i].t_ns - info.start_ns); lua_setfield(L, -2, "t");
        lua_pushinteger(L, s[i].live_bytes); lua_setfield(L, -2, "live");
        lua_pushinteger(L, s[i].peak_bytes); lua_setfield(L, -2, "peak");
        lua_pushstring(L, s[i].device == TS_CUDA ? "cuda" : "cpu"); lua_setfield(L, -2, "device");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int l_leaks(lua_State *L)
{
    ts_prof_info info;
    ts_prof_get_info(&info);
    size_t n = ts_prof_live_allocs(NULL, 0);
    ts_prof_alloc *a = lua_newuserdatauv(L, (n ? n : 1) * sizeof *a, 0);
    n = ts_prof_live_allocs(a, n);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 6);
        lua_pushinteger(L, a[i].t_ns - info.start_ns); lua_setfield(L, -2, "t");
        lua_pushinteger(L, a[i].bytes); lua_setfield(L, -2, "bytes");
        lua_pushstring(L, a[i].op ? ts_prof_string(a[i].op) : "(outside any op)"); lua_setfield(L, -2, "op");
        lua_pushinteger(L, a[i].stack); lua_setfield(L, -2, "stack");
        lua_pushinteger(L, a[i].tid); lua_setfield(L, -2, "tid");
        lua_pushstring(L, a[i].device == TS_CUDA ? "cuda" : "cpu"); lua_setfield(L, -2, "device");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int l_info(lua_State *L)
{
    ts_prof_info i;
    ts_prof_get_info(&i);
    lua_createtable(L, 0, 10);
    lua_pushinteger(L, i.start_ns); lua_setfield(L, -2, "start_ns");
    lua_pushinteger(L, i.stop_ns); lua_setfield(L, -2, "stop_ns");
    lua_pushinteger(L, i.main_tid); lua_setfield(L, -2, "main_tid");
    lua_pushinteger(L, i.step); lua_setfield(L, -2, "step");
    lua_pushinteger(L, i.recorded); lua_setfield(L, -2, "recorded");
    lua_pushinteger(L, i.dropped); lua_setfield(L, -2, "dropped");
    lua_pushinteger(L, (lua_Integer)i.capacity); lua_setfield(L, -2, "capacity");
    lua_pushboolean(L, i.running); lua_setfield(L, -2, "running");
    lua_pushstring(L, action_names[i.action]); lua_setfield(L, -2, "action");
    int wrapped = 0;
    if (lua_getfield(L, LUA_REGISTRYINDEX, SAVED_KEY) == LUA_TTABLE) wrapped = (int)lua_rawlen(L, -1);
    lua_pop(L, 1);
    lua_pushinteger(L, wrapped); lua_setfield(L, -2, "wrapped");
    return 1;
}

static int l_schedule_action(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    ts_prof_schedule s = {
        opt_int_field(L, 1, "skip_first", 0), opt_int_field(L, 1, "wait", 0), opt_int_field(L, 1, "warmup", 0),
        opt_int_field(L, 1, "active", 0), opt_int_field(L, 1, "repeat", 0),
    };
    lua_pushstring(L, action_names[ts_prof_schedule_action(&s, luaL_checkinteger(L, 2))]);
    return 1;
}

void tsL_open_prof(lua_State *L, int module)
{
    static const luaL_Reg fns[] = {
        { "start", l_start }, { "stop", l_stop }, { "clear", l_clear }, { "running", l_running },
        { "step", l_step }, { "action", l_action }, { "now", l_now },
        { "begin_range", l_begin_range }, { "end_range", l_end_range },
        { "events", l_events }, { "stacks", l_stacks }, { "memory", l_memory }, { "leaks", l_leaks },
        { "info", l_info }, { "schedule_action", l_schedule_action }, { NULL, NULL },
    };
    luaL_newlib(L, fns);
    lua_setfield(L, module, "_prof");
}
