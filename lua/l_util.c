/* l_util.c — the tsL_ helpers (see tsl.h): tensor checks and slots, dims,
 * shapes, dtypes, options, GC accounting and the per-state generator. */
#include "tsl.h"

#include <math.h>
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
