/* l_util.c — the tsL_ helpers (see tsl.h): tensor checks and slots, dims,
 * shapes, dtypes, options, what the file functions share (nil, message;
 * tensor lists and name -> tensor tables in and out; handle metatables),
 * GC accounting and the per-state generator. */
#include "tsl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char GEN_KEY[] = "torsh.generator";
static const char GC_KEY[] = "torsh.gcstate";

ts_tensor *tsL_totensor(lua_State *L, int idx)
{
    ts_tensor **ud = luaL_testudata(L, idx, TSL_TENSOR_MT);
    if (ud && !*ud) luaL_argerror(L, idx, "tensor was freed");
    return ud ? *ud : NULL;
}

ts_tensor *tsL_checktensor(lua_State *L, int idx)
{
    ts_tensor **ud = lua_touserdata(L, idx);
    if (ud && lua_getmetatable(L, idx)) {
        /* fast path: compare with the upvalue when the caller has it */
        int same = lua_rawequal(L, -1, TSL_MT_UPVALUE);
        if (!same) {
            luaL_getmetatable(L, TSL_TENSOR_MT);
            same = lua_rawequal(L, -1, -2);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        if (same) {
            if (!*ud) luaL_argerror(L, idx, "tensor was freed");
            return *ud;
        }
    }
    luaL_typeerror(L, idx, "Tensor");
    return NULL;
}

/* Reads a nested table of numbers into a flat double array. */
static int table_shape(lua_State *L, int idx, int64_t *shape, int depth)
{
    if (depth >= TS_MAX_DIMS) luaL_error(L, "tensor: table nested more than %d deep", TS_MAX_DIMS);
    shape[depth] = (int64_t)lua_rawlen(L, idx);
    if (shape[depth] == 0) return depth + 1;
    lua_rawgeti(L, idx, 1);
    int nd = lua_istable(L, -1) ? table_shape(L, lua_gettop(L), shape, depth + 1) : depth + 1;
    lua_pop(L, 1);
    return nd;
}

static void table_fill(lua_State *L, int idx, const int64_t *shape, int nd, int depth, double *out, int64_t *pos)
{
    int64_t n = (int64_t)lua_rawlen(L, idx);
    if (n != shape[depth]) luaL_error(L, "tensor: ragged nested table (dim %d has %d and %d entries)", depth + 1, (int)shape[depth], (int)n);
    for (int64_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        if (depth + 1 < nd) {
            if (!lua_istable(L, -1)) luaL_error(L, "tensor: ragged nested table at depth %d", depth + 1);
            table_fill(L, lua_gettop(L), shape, nd, depth + 1, out, pos);
        } else if (lua_isboolean(L, -1)) {
            out[(*pos)++] = lua_toboolean(L, -1);
        } else {
            int ok;
            out[(*pos)++] = lua_tonumberx(L, -1, &ok);
            if (!ok) luaL_error(L, "tensor: entry %d at depth %d is a %s, not a number", (int)i, depth + 1, luaL_typename(L, -1));
        }
        lua_pop(L, 1);
    }
}

/* Builds a tensor from a (nested) table at idx. dtype: f32 unless all are
 * integers (i64) or booleans (bool), or `dt` is given (>= 0). */
ts_tensor *tsL_tensor_from_table(lua_State *L, int idx, int dt)
{
    int64_t shape[TS_MAX_DIMS];
    idx = lua_absindex(L, idx);
    int nd = table_shape(L, idx, shape, 0);
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= shape[i];
    double *buf = lua_newuserdatauv(L, sizeof(double) * (size_t)(n ? n : 1), 0);   /* GC-owned scratch */
    int64_t pos = 0;
    if (n) table_fill(L, idx, shape, nd, 0, buf, &pos);
    if (dt < 0) {
        bool all_int = true;
        for (int64_t i = 0; i < n && all_int; i++) all_int = buf[i] == floor(buf[i]) && fabs(buf[i]) < 9.007e15;
        /* booleans come in as 0/1 too; peek at the first leaf to tell */
        int leaf = lua_gettop(L);
        lua_pushvalue(L, idx);
        for (int d = 0; d < nd && n; d++) { lua_rawgeti(L, -1, 1); lua_remove(L, -2); }
        bool is_bool = n && lua_isboolean(L, -1);
        lua_settop(L, leaf);
        dt = is_bool ? TS_BOOL : all_int && n ? TS_I64 : TS_F32;
    }
    ts_tensor *t = ts_tensor_from_data(buf, TS_F64, shape, nd, (ts_dtype)dt);
    lua_pop(L, 1);
    return t;
}

ts_tensor *tsL_checktensorlike(lua_State *L, int idx, const ts_tensor *like, int *owned)
{
    ts_tensor *t = tsL_totensor(L, idx);
    *owned = 0;
    if (t) return t;
    if (lua_isnumber(L, idx)) {
        double v = lua_tonumber(L, idx);
        ts_dtype dt = like ? like->dtype : TS_F32;
        if (like && !ts_dtype_is_float(dt) && v != floor(v)) dt = TS_F32;
        t = ts_tensor_scalar(v, dt);
    } else if (lua_isboolean(L, idx)) {
        t = ts_tensor_scalar(lua_toboolean(L, idx), TS_BOOL);
    } else if (lua_istable(L, idx)) {
        t = tsL_tensor_from_table(L, idx, like ? (int)like->dtype : -1);
    } else {
        luaL_typeerror(L, idx, "Tensor, number or table");
    }
    if (!t) tsL_error(L);
    *owned = 1;
    return t;
}

ts_tensor **tsL_newslot(lua_State *L)
{
    ts_tensor **ud = lua_newuserdatauv(L, sizeof(ts_tensor *), 0);
    *ud = NULL;
    lua_pushvalue(L, TSL_MT_UPVALUE);
    lua_setmetatable(L, -2);
    return ud;
}

ts_tensor **tsL_newslot_mt(lua_State *L)
{
    ts_tensor **ud = lua_newuserdatauv(L, sizeof(ts_tensor *), 0);
    *ud = NULL;
    luaL_setmetatable(L, TSL_TENSOR_MT);
    return ud;
}

int tsL_error(lua_State *L)
{
    const char *msg = ts_last_error();
    return luaL_error(L, "%s", *msg ? msg : "torsh: unknown error");
}

void tsL_check(lua_State *L, ts_status st)
{
    if (st != TS_OK) tsL_error(L);
}

int tsL_result(lua_State *L, ts_tensor *t)
{
    if (!t) return tsL_error(L);
    tsL_account(L, t->storage->refcount == 1 ? t->storage->nbytes : 0);
    return 1;
}

int tsL_pushtensor(lua_State *L, ts_tensor *t)
{
    if (!t) return tsL_error(L);
    /* the userdata allocation may raise: hold t in a slot we can't lose */
    ts_tensor **ud = lua_newuserdatauv(L, sizeof(ts_tensor *), 0);
    *ud = t;
    luaL_setmetatable(L, TSL_TENSOR_MT);
    tsL_account(L, t->storage->refcount == 1 ? t->storage->nbytes : 0);
    return 1;
}

int tsL_checkdim(lua_State *L, int idx, int ndim)
{
    lua_Integer d = luaL_checkinteger(L, idx);
    int n = ndim > 0 ? ndim : 1;
    if (d == 0) luaL_argerror(L, idx, "dims are 1-based in Lua (use 1 for the first dim, -1 for the last)");
    if (d < -n || d > n)
        luaL_argerror(L, idx, lua_pushfstring(L, "dim %d is out of range for a tensor with %d dims", (int)d, ndim));
    return d > 0 ? (int)d - 1 : (int)d + n;
}

int tsL_optdim(lua_State *L, int idx, int ndim, int def0)
{
    return lua_isnoneornil(L, idx) ? def0 : tsL_checkdim(L, idx, ndim);
}

ts_dtype tsL_optdtype(lua_State *L, int idx, ts_dtype def)
{
    if (lua_isnoneornil(L, idx)) return def;
    ts_dtype dt;
    if (ts_dtype_parse(luaL_checkstring(L, idx), &dt)) luaL_argerror(L, idx, ts_last_error());
    return dt;
}

int tsL_checkshape(lua_State *L, int idx, int64_t *shape, int *next)
{
    int nd = 0;
    if (lua_istable(L, idx) && !tsL_totensor(L, idx)) {
        int n = (int)lua_rawlen(L, idx);
        if (n > TS_MAX_DIMS) luaL_argerror(L, idx, "too many dims");
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            int ok;
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            if (!ok) luaL_argerror(L, idx, "shape entries must be integers");
            shape[nd++] = v;
            lua_pop(L, 1);
        }
        if (next) *next = idx + 1;
        return nd;
    }
    int top = lua_gettop(L);
    while (idx <= top && lua_isinteger(L, idx)) {
        if (nd >= TS_MAX_DIMS) luaL_argerror(L, idx, "too many dims");
        shape[nd++] = lua_tointeger(L, idx++);
    }
    if (idx <= top && lua_type(L, idx) == LUA_TNUMBER)
        luaL_argerror(L, idx, "sizes must be integers");
    if (next) *next = idx;
    return nd;
}

int tsL_optdims(lua_State *L, int idx, int ndim, int *dims)
{
    if (lua_isnoneornil(L, idx)) return 0;
    if (lua_istable(L, idx)) {
        int n = (int)lua_rawlen(L, idx);
        if (n > TS_MAX_DIMS) luaL_argerror(L, idx, "too many dims");
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            dims[i - 1] = tsL_checkdim(L, lua_gettop(L), ndim);
            lua_pop(L, 1);
        }
        if (n == 0) luaL_argerror(L, idx, "empty dim list");
        return n;
    }
    dims[0] = tsL_checkdim(L, idx, ndim);
    return 1;
}

double tsL_optfield_number(lua_State *L, int idx, const char *field, double def)
{
    if (!lua_istable(L, idx)) return def;
    lua_getfield(L, idx, field);
    double v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

int tsL_optfield_bool(lua_State *L, int idx, const char *field, int def)
{
    if (!lua_istable(L, idx)) return def;
    lua_getfield(L, idx, field);
    int v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* ---- file functions -------------------------------------------------------- */

int tsL_pushfail(lua_State *L)
{
    lua_pushnil(L);
    lua_pushstring(L, ts_last_error());
    return 2;
}

ts_tensor **tsL_checktensorlist(lua_State *L, int idx, const char *op, size_t *n)
{
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    *n = (size_t)lua_rawlen(L, idx);
    ts_tensor **ts = lua_newuserdatauv(L, (*n ? *n : 1) * sizeof *ts, 0);
    for (size_t i = 0; i < *n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        ts[i] = tsL_totensor(L, -1);
        if (!ts[i]) luaL_error(L, "%s: entry %d of the tensor list is a %s, not a tensor", op, (int)i + 1, luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    return ts;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The {name, tensor} pairs of the list at idx (n of them). */
static void check_pairs(lua_State *L, int idx, const char *op, size_t n, const char **names, ts_tensor **ts)
{
    int top = lua_gettop(L);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        if (!lua_istable(L, -1))
            luaL_error(L, "%s: entry %d is a %s, not a {name, tensor} pair", op, (int)i + 1, luaL_typename(L, -1));
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: entry %d: the name is a %s, not a string", op, (int)i + 1, luaL_typename(L, -2));
        ts[i] = tsL_totensor(L, -1);
        if (!ts[i])
            luaL_error(L, "%s: entry %d ('%s'): a %s, not a tensor", op, (int)i + 1, lua_tostring(L, -2), luaL_typename(L, -1));
        names[i] = lua_tostring(L, -2);         /* lives in the pair table, which lives in the argument */
        lua_settop(L, top);
    }
}

/* The name -> tensor pairs of the table at idx (n of them), sorted by name. */
static void check_map(lua_State *L, int idx, const char *op, size_t n, const char **names, ts_tensor **ts)
{
    int top = lua_gettop(L);
    size_t i = 0;
    lua_pushnil(L);
    while (i < n && lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: tensor names must be strings (found a %s key)", op, luaL_typename(L, -2));
        if (!luaL_testudata(L, -1, TSL_TENSOR_MT))
            luaL_error(L, "%s: '%s' is a %s, not a tensor", op, lua_tostring(L, -2), luaL_typename(L, -1));
        names[i++] = lua_tostring(L, -2);       /* the key string lives in the table */
        lua_pop(L, 1);
    }
    lua_settop(L, top);
    qsort(names, n, sizeof *names, cmp_names);  /* deterministic order */
    for (size_t k = 0; k < n; k++) {
        lua_getfield(L, idx, names[k]);
        ts[k] = tsL_totensor(L, -1);            /* raises if freed */
        lua_pop(L, 1);
    }
}

size_t tsL_checknamedtensors(lua_State *L, int idx, const char *op, const char ***names_out, ts_tensor ***ts_out)
{
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_rawgeti(L, idx, 1);
    bool pairs = lua_istable(L, -1) && !luaL_testudata(L, -1, TSL_TENSOR_MT);
    lua_pop(L, 1);
    size_t n = 0;
    if (pairs) n = (size_t)lua_rawlen(L, idx);
    else {
        lua_pushnil(L);
        while (lua_next(L, idx)) { n++; lua_pop(L, 1); }
    }
    const char **names = lua_newuserdatauv(L, (n ? n : 1) * sizeof *names, 0);
    ts_tensor **ts = lua_newuserdatauv(L, (n ? n : 1) * sizeof *ts, 0);
    if (pairs) check_pairs(L, idx, op, n, names, ts);
    else check_map(L, idx, op, n, names, ts);
    *names_out = names;
    *ts_out = ts;
    return n;
}

bool tsL_pushtensortable(lua_State *L, size_t n, tsL_tensor_at at, void *ctx)
{
    lua_createtable(L, 0, (int)n);
    int table = lua_gettop(L);
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        ts_tensor **slot = tsL_newslot_mt(L);
        *slot = at(ctx, i, &name);
        if (!*slot) {
            lua_settop(L, table);
            return false;
        }
        tsL_result(L, *slot);
        lua_setfield(L, table, name);
    }
    return true;
}

void tsL_newhandletype(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction close)
{
    luaL_newmetatable(L, name);
    if (methods) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__close");
}

/* ---- GC accounting -------------------------------------------------------
 * Lua 5.4 has no API for external memory, so the binding drives the
 * collector itself: every MiB of new tensor memory advances the incremental
 * collector by the same amount (LUA_GCSTEP), and when live tensor bytes
 * grow past twice what survived the last full collection (and at least
 * 256 MiB) a full collection runs. Together these keep a loop that drops
 * big tensors bounded without collectgarbage(). */
typedef struct { size_t debt; int64_t after_full; } gc_state;
/* C-side bytes behind one tensor userdata besides its data (tensor and
 * storage headers, allocator slack), so Lua paces collection by real cost. */
#define TSL_TENSOR_OVERHEAD 256

static gc_state *get_gc_state(lua_State *L)
{
    static gc_state fallback;
    if (lua_getfield(L, LUA_REGISTRYINDEX, GC_KEY) != LUA_TUSERDATA) {
        lua_pop(L, 1);
        return &fallback;
    }
    gc_state *g = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return g;
}

void tsL_account(lua_State *L, size_t nbytes)
{
    gc_state *g = get_gc_state(L);
    g->debt += nbytes + TSL_TENSOR_OVERHEAD;
    if (g->debt < ((size_t)1 << 20)) return;
    int kb = (int)(g->debt >> 10);
    g->debt = 0;
    int64_t live = ts_mem_get_stats(TS_CPU).live_bytes;
    int64_t limit = g->after_full * 2;
    if (limit < ((int64_t)256 << 20)) limit = (int64_t)256 << 20;
    if (live > limit) {
        lua_gc(L, LUA_GCCOLLECT);
        g->after_full = ts_mem_get_stats(TS_CPU).live_bytes;
    } else {
        lua_gc(L, LUA_GCSTEP, kb);
    }
}

ts_generator *tsL_generator(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, GEN_KEY);
    ts_generator *g = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return g;
}

void tsL_register(lua_State *L, const luaL_Reg *fns, int methods, int module, int mt)
{
    for (; fns->name; fns++) {
        lua_pushvalue(L, mt);
        lua_pushcclosure(L, fns->func, 1);
        if (methods) {
            lua_pushvalue(L, -1);
            lua_setfield(L, methods, fns->name);
        }
        if (module) lua_setfield(L, module, fns->name);
        else lua_pop(L, 1);
    }
}

/* Called once per state by luaopen_torsh. */
void tsL_init_state(lua_State *L)
{
    ts_generator *g = lua_newuserdatauv(L, sizeof *g, 0);
    ts_generator_seed(g, 0x5eed);
    lua_setfield(L, LUA_REGISTRYINDEX, GEN_KEY);
    gc_state *s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    lua_setfield(L, LUA_REGISTRYINDEX, GC_KEY);
}
