/* l_tensor.c — the torsh.Tensor object: life cycle (__gc/__close/free),
 * constructors, properties (shape, dtype, item, totable), views and copies.
 * Elementwise math is in l_elementwise.c, reductions in l_reduce.c, ... */
#include "tsl.h"
#include "torsh/autograd_ops.h"

#include <math.h>
#include <string.h>

ts_tensor *tsL_tensor_from_table(lua_State *L, int idx, int dt);

/* ---- life cycle ------------------------------------------------------------ */

static int t_release(lua_State *L)
{
    ts_tensor **ud = luaL_checkudata(L, 1, TSL_TENSOR_MT);
    if (*ud) {
        ts_tensor_release(*ud);
        *ud = NULL;
    }
    return 0;
}

static int t_isfreed(lua_State *L)
{
    ts_tensor **ud = luaL_checkudata(L, 1, TSL_TENSOR_MT);
    lua_pushboolean(L, *ud == NULL);
    return 1;
}

/* ---- constructors -------------------------------------------------------------- */

/* torsh.tensor(table_or_number [, dtype]) */
static int l_tensor(lua_State *L)
{
    int dt = lua_isnoneornil(L, 2) ? -1 : (int)tsL_optdtype(L, 2, TS_F32);
    ts_tensor **slot = tsL_newslot(L);
    if (lua_istable(L, 1)) {
        *slot = tsL_tensor_from_table(L, 1, dt);
    } else if (lua_isboolean(L, 1)) {
        *slot = ts_tensor_scalar(lua_toboolean(L, 1), dt < 0 ? TS_BOOL : (ts_dtype)dt);
    } else {
        lua_Number v = luaL_checknumber(L, 1);
        ts_dtype d = dt >= 0 ? (ts_dtype)dt : (lua_isinteger(L, 1) ? TS_I64 : TS_F32);
        *slot = ts_tensor_scalar(v, d);
    }
    return tsL_result(L, *slot);
}

/* Reads "shape..., [dtype]" starting at idx. */
static int shape_and_dtype(lua_State *L, int idx, int64_t *shape, ts_dtype *dt)
{
    int next;
    int nd = tsL_checkshape(L, idx, shape, &next);
    *dt = tsL_optdtype(L, next, TS_F32);
    return nd;
}

static int l_zeros(lua_State *L)
{
    int64_t shape[TS_MAX_DIMS];
    ts_dtype dt;
    int nd = shape_and_dtype(L, 1, shape, &dt);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_tensor_zeros(shape, nd, dt);
    return tsL_result(L, *slot);
}

static int l_ones(lua_State *L)
{
    int64_t shape[TS_MAX_DIMS];
    ts_dtype dt;
    int nd = shape_and_dtype(L, 1, shape, &dt);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_tensor_full(shape, nd, dt, 1.0);
    return tsL_result(L, *slot);
}

static int l_empty(lua_State *L)
{
    int64_t shape[TS_MAX_DIMS];
    ts_dtype dt;
    int nd = shape_and_dtype(L, 1, shape, &dt);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_tensor_new(shape, nd, dt);
    return tsL_result(L, *slot);
}

/* torsh.full(shape_table, value [, dtype]) */
static int l_full(lua_State *L)
{
    int64_t shape[TS_MAX_DIMS];
    luaL_checktype(L, 1, LUA_TTABLE);
    int nd = tsL_checkshape(L, 1, shape, NULL);
    double v = lua_isboolean(L, 2) ? lua_toboolean(L, 2) : luaL_checknumber(L, 2);
    ts_dtype def = lua_isboolean(L, 2) ? TS_BOOL : lua_isinteger(L, 2) ? TS_I64 : TS_F32;
    ts_dtype dt = tsL_optdtype(L, 3, def);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_tensor_full(shape, nd, dt, v);
    return tsL_result(L, *slot);
}

/* zeros_like / ones_like / full_like(t, value) / empty_like */
static int like(lua_State *L, int kind)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int dtidx = kind == 2 ? 3 : 2;
    ts_dtype dt = tsL_optdtype(L, dtidx, t->dtype);
    double v = kind == 0 ? 0 : kind == 1 ? 1 : kind == 2 ? luaL_checknumber(L, 2) : 0;
    ts_tensor **slot = tsL_newslot(L);
    *slot = kind == 3 ? ts_tensor_new(t->shape, t->ndim, dt) : ts_tensor_full(t->shape, t->ndim, dt, v);
    return tsL_result(L, *slot);
}
static int l_zeros_like(lua_State *L) { return like(L, 0); }
static int l_ones_like(lua_State *L) { return like(L, 1); }
static int l_full_like(lua_State *L) { return like(L, 2); }
static int l_empty_like(lua_State *L) { return like(L, 3); }

/* torsh.arange(end) / arange(start, end [, step]) [, dtype] — end excluded,
 * like PyTorch; integer arguments give i64, else f32. */
static int l_arange(lua_State *L)
{
    int n = 0;
    while (n < 3 && lua_type(L, n + 1) == LUA_TNUMBER) n++;
    if (n == 0) return luaL_argerror(L, 1, "number expected");
    double start = 0, end, step = 1;
    bool all_int = true;
    for (int i = 1; i <= n; i++) all_int = all_int && lua_isinteger(L, i);
    if (n == 1) end = lua_tonumber(L, 1);
    else { start = lua_tonumber(L, 1); end = lua_tonumber(L, 2); if (n == 3) step = lua_tonumber(L, 3); }
    ts_dtype dt = tsL_optdtype(L, n + 1, all_int ? TS_I64 : TS_F32);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_arange(start, end, step, dt);
    return tsL_result(L, *slot);
}

static int l_linspace(lua_State *L)
{
    double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
    lua_Integer steps = luaL_checkinteger(L, 3);
    ts_dtype dt = tsL_optdtype(L, 4, TS_F32);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_linspace(a, b, steps, dt);
    return tsL_result(L, *slot);
}

static int l_eye(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    lua_Integer m = lua_isinteger(L, 2) ? lua_tointeger(L, 2) : n;
    ts_dtype dt = tsL_optdtype(L, lua_isinteger(L, 2) ? 3 : 2, TS_F32);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_eye(n, m, dt);
    return tsL_result(L, *slot);
}

/* ---- properties ------------------------------------------------------------------ */

static void push_shape(lua_State *L, const int64_t *shape, int nd)
{
    lua_createtable(L, nd, 0);
    for (int i = 0; i < nd; i++) {
        lua_pushinteger(L, shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

/* t:shape() -> {d1, d2, ...}; t:size(dim) -> size of one dim (1-based) */
static int t_shape(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    push_shape(L, t->shape, t->ndim);
    return 1;
}

static int t_size(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    if (lua_isnoneornil(L, 2)) { push_shape(L, t->shape, t->ndim); return 1; }
    if (t->ndim == 0) return luaL_argerror(L, 2, "a 0-dim tensor has no dims");
    lua_pushinteger(L, t->shape[tsL_checkdim(L, 2, t->ndim)]);
    return 1;
}

static int t_stride(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    push_shape(L, t->stride, t->ndim);
    return 1;
}

static int t_dim(lua_State *L) { lua_pushinteger(L, tsL_checktensor(L, 1)->ndim); return 1; }
static int t_numel(lua_State *L) { lua_pushinteger(L, ts_tensor_numel(tsL_checktensor(L, 1))); return 1; }
static int t_nbytes(lua_State *L) { lua_pushinteger(L, (lua_Integer)ts_tensor_nbytes(tsL_checktensor(L, 1))); return 1; }
static int t_dtype(lua_State *L) { lua_pushstring(L, ts_dtype_name(tsL_checktensor(L, 1)->dtype)); return 1; }
static int t_is_contiguous(lua_State *L) { lua_pushboolean(L, ts_tensor_is_contiguous(tsL_checktensor(L, 1))); return 1; }
static int t_device(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    const ts_backend *be = ts_backend_of(t);
    lua_pushstring(L, be ? be->name : "?");
    return 1;
}
static int t_storage_offset(lua_State *L) { lua_pushinteger(L, tsL_checktensor(L, 1)->offset); return 1; }
/* True when two tensors share one storage. */
static int t_shares_storage(lua_State *L)
{
    lua_pushboolean(L, tsL_checktensor(L, 1)->storage == tsL_checktensor(L, 2)->storage);
    return 1;
}

static void check_cpu(lua_State *L, const ts_tensor *t, const char *op)
{
    if (t->storage->device.type != TS_CPU) luaL_error(L, "%s: tensor is on %s; copy it to the CPU first", op, ts_backend_of(t)->name);
}

static void push_value(lua_State *L, const ts_tensor *t, int64_t linear)
{
    double v = ts_tensor_item_at(t, linear);
    if (t->dtype == TS_BOOL) lua_pushboolean(L, v != 0);
    else if (!ts_dtype_is_float(t->dtype)) {
        /* exact for i64: read as integer */
        int64_t off = 0, rem = linear;
        for (int i = t->ndim - 1; i >= 0; i--) { off += (rem % t->shape[i]) * t->stride[i]; rem /= t->shape[i]; }
        lua_pushinteger(L, ts_load_i64(ts_tensor_data(t), t->dtype, off));
    } else lua_pushnumber(L, v);
}

/* t:item() -> the one element as a Lua value: a boolean for bool tensors, an
 * integer for integer tensors, and for floating tensors an integer when the
 * value is a whole number that fits (so sum():item() prints 6, not 6.0;
 * Lua treats both alike in arithmetic and as table keys), a float otherwise. */
static int t_item(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    if (ts_tensor_numel(t) != 1)
        return luaL_error(L, "item: tensor has %d elements, item() needs exactly one", (int)ts_tensor_numel(t));
    check_cpu(L, t, "item");
    if (ts_dtype_is_float(t->dtype)) {
        double v = ts_tensor_item_at(t, 0);
        if (v == floor(v) && fabs(v) < 9007199254740992.0 && !(v == 0 && signbit(v))) lua_pushinteger(L, (lua_Integer)v);
        else lua_pushnumber(L, v);
        return 1;
    }
    push_value(L, t, 0);
    return 1;
}

static void totable_rec(lua_State *L, const ts_tensor *t, int dim, int64_t *linear)
{
    if (dim == t->ndim) { push_value(L, t, (*linear)++); return; }
    lua_createtable(L, (int)t->shape[dim], 0);
    for (int64_t i = 0; i < t->shape[dim]; i++) {
        totable_rec(L, t, dim + 1, linear);
        lua_rawseti(L, -2, i + 1);
    }
}

static int t_totable(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    check_cpu(L, t, "totable");
    int64_t linear = 0;
    luaL_checkstack(L, t->ndim + 4, "totable");
    totable_rec(L, t, 0, &linear);
    return 1;
}

/* t:get(i, j, ...) / t:set(v, i, j, ...) — 1-based element access. */
static void read_index(lua_State *L, const ts_tensor *t, int first, int64_t *idx)
{
    int n = lua_gettop(L) - first + 1;
    if (n != t->ndim) luaL_error(L, "get/set: %d indices given for a tensor with %d dims", n, t->ndim);
    for (int i = 0; i < n; i++) {
        lua_Integer v = luaL_checkinteger(L, first + i);
        int64_t size = t->shape[i];
        if (v < 0) v += size + 1;
        if (v < 1 || v > size)
            luaL_argerror(L, first + i, lua_pushfstring(L, "index %d is out of range 1..%d (indices are 1-based)", (int)luaL_checkinteger(L, first + i), (int)size));
        idx[i] = v - 1;
    }
}

static int t_get(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int64_t idx[TS_MAX_DIMS];
    read_index(L, t, 2, idx);
    double v = ts_tensor_get_f64(t, idx);
    if (t->dtype == TS_BOOL) lua_pushboolean(L, v != 0);
    else if (!ts_dtype_is_float(t->dtype)) lua_pushinteger(L, ts_tensor_get_i64(t, idx));
    else lua_pushnumber(L, v);
    return 1;
}

static int t_set(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    double v = lua_isboolean(L, 2) ? lua_toboolean(L, 2) : luaL_checknumber(L, 2);
    int64_t idx[TS_MAX_DIMS];
    read_index(L, t, 3, idx);
    tsL_check(L, ts_ag_check_inplace("set", t));
    tsL_check(L, ts_tensor_set_f64(t, idx, v));
    lua_settop(L, 1);
    return 1;
}

/* ---- conversions and copies ------------------------------------------------------ */

static int t_to(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    ts_dtype dt = tsL_optdtype(L, 2, t->dtype);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_to_dtype(t, dt);
    return tsL_result(L, *slot);
}

static int t_contiguous(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    if (ts_tensor_is_contiguous(t)) { lua_settop(L, 1); return 1; }
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_contiguous(t);
    return tsL_result(L, *slot);
}

static int t_clone(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_clone(t);
    return tsL_result(L, *slot);
}

static int t_copy_(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int owned;
    tsL_check(L, ts_ag_check_inplace("copy_", t));
    ts_tensor *src = tsL_checktensorlike(L, 2, t, &owned);
    ts_status st = ts_copy_(t, src);
    if (owned) ts_tensor_release(src);
    tsL_check(L, st);
    lua_settop(L, 1);
    return 1;
}

static int t_fill_(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    double v = lua_isboolean(L, 2) ? lua_toboolean(L, 2) : luaL_checknumber(L, 2);
    tsL_check(L, ts_ag_check_inplace("fill_", t));
    tsL_check(L, ts_fill_(t, v));
    lua_settop(L, 1);
    return 1;
}

static int t_zero_(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    tsL_check(L, ts_ag_check_inplace("zero_", t));
    tsL_check(L, ts_fill_(t, 0));
    lua_settop(L, 1);
    return 1;
}

/* ---- views --------------------------------------------------------------------- */

static int reshape_like(lua_State *L, ts_tensor *(*fn)(const ts_tensor *, const int64_t *, int))
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int64_t shape[TS_MAX_DIMS];
    int nd = tsL_checkshape(L, 2, shape, NULL);
    ts_tensor **slot = tsL_newslot(L);
    *slot = fn(t, shape, nd);
    return tsL_result(L, *slot);
}
static int t_view(lua_State *L) { return reshape_like(L, ts_ag_view); }
static int t_reshape(lua_State *L) { return reshape_like(L, ts_ag_reshape); }
static int t_expand(lua_State *L) { return reshape_like(L, ts_ag_expand); }

static int t_expand_as(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1), *o = tsL_checktensor(L, 2);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_expand(t, o->shape, o->ndim);
    return tsL_result(L, *slot);
}

static int t_view_as(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1), *o = tsL_checktensor(L, 2);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_view(t, o->shape, o->ndim);
    return tsL_result(L, *slot);
}

static int t_permute(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int dims[TS_MAX_DIMS], n = 0;
    if (lua_istable(L, 2)) {
        n = tsL_optdims(L, 2, t->ndim, dims);
    } else {
        int top = lua_gettop(L);
        if (top - 1 > TS_MAX_DIMS) return luaL_error(L, "permute: too many dims");
        for (int i = 2; i <= top; i++) dims[n++] = tsL_checkdim(L, i, t->ndim);
    }
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_permute(t, dims, n);
    return tsL_result(L, *slot);
}

static int t_transpose(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int a = tsL_optdim(L, 2, t->ndim, 0), b = tsL_optdim(L, 3, t->ndim, 1);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_transpose(t, a, b);
    return tsL_result(L, *slot);
}

/* t.T for 2-D: t:t() */
static int t_t(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    if (t->ndim > 2) return luaL_error(L, "t(): expects a tensor with <= 2 dims, got %d (use transpose)", t->ndim);
    if (t->ndim < 2) { lua_settop(L, 1); return 1; }
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_transpose(t, 0, 1);
    return tsL_result(L, *slot);
}

/* t:slice(dim, start, stop [, step]) — 1-based, stop inclusive (like Lua's
 * string.sub); negative positions count from the end. */
static int t_slice(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int d = tsL_checkdim(L, 2, t->ndim);
    int64_t n = t->ndim ? t->shape[d] : 0;
    lua_Integer start = luaL_optinteger(L, 3, 1), stop = luaL_optinteger(L, 4, -1), step = luaL_optinteger(L, 5, 1);
    if (start < 0) start += n + 1;
    if (stop < 0) stop += n + 1;
    if (start < 1) start = 1;
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_slice(t, d, start - 1, stop, step);
    return tsL_result(L, *slot);
}

/* t:narrow(dim, start, length) — start is 1-based. */
static int t_narrow(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int d = tsL_checkdim(L, 2, t->ndim);
    lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
    if (start == 0) return luaL_argerror(L, 3, "positions are 1-based");
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_narrow(t, d, start > 0 ? start - 1 : start, len);
    return tsL_result(L, *slot);
}

/* t:select(dim, index) — index is 1-based (negative from the end). */
static int t_select(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int d = tsL_checkdim(L, 2, t->ndim);
    lua_Integer i = luaL_checkinteger(L, 3);
    if (i == 0) return luaL_argerror(L, 3, "indices are 1-based");
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_select(t, d, i > 0 ? i - 1 : i);
    return tsL_result(L, *slot);
}

static int t_squeeze(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int d = lua_isnoneornil(L, 2) ? TS_ALL_DIMS : tsL_checkdim(L, 2, t->ndim);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_squeeze(t, d);
    return tsL_result(L, *slot);
}

static int t_unsqueeze(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int d = tsL_checkdim(L, 2, t->ndim + 1);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_unsqueeze(t, d);
    return tsL_result(L, *slot);
}

static int t_flatten(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int s = tsL_optdim(L, 2, t->ndim, 0), e = tsL_optdim(L, 3, t->ndim, t->ndim ? t->ndim - 1 : 0);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_flatten(t, s, e);
    return tsL_result(L, *slot);
}

static const luaL_Reg tensor_methods[] = {
    {"shape", t_shape}, {"size", t_size}, {"stride", t_stride}, {"dim", t_dim}, {"numel", t_numel},
    {"nbytes", t_nbytes}, {"dtype", t_dtype}, {"device", t_device}, {"is_contiguous", t_is_contiguous},
    {"storage_offset", t_storage_offset}, {"shares_storage", t_shares_storage},
    {"item", t_item}, {"totable", t_totable}, {"get", t_get}, {"set", t_set},
    {"to", t_to}, {"contiguous", t_contiguous}, {"clone", t_clone}, {"copy_", t_copy_}, {"fill_", t_fill_},
    {"zero_", t_zero_},
    {"view", t_view}, {"reshape", t_reshape}, {"expand", t_expand}, {"expand_as", t_expand_as},
    {"view_as", t_view_as}, {"permute", t_permute}, {"transpose", t_transpose}, {"t", t_t},
    {"slice", t_slice}, {"narrow", t_narrow}, {"select", t_select}, {"squeeze", t_squeeze},
    {"unsqueeze", t_unsqueeze}, {"flatten", t_flatten},
    {"free", t_release}, {"is_freed", t_isfreed},
    {NULL, NULL}
};

static const luaL_Reg module_fns[] = {
    {"tensor", l_tensor}, {"from_table", l_tensor}, {"zeros", l_zeros}, {"ones", l_ones}, {"empty", l_empty},
    {"full", l_full}, {"zeros_like", l_zeros_like}, {"ones_like", l_ones_like}, {"full_like", l_full_like},
    {"empty_like", l_empty_like}, {"arange", l_arange}, {"linspace", l_linspace}, {"eye", l_eye},
    {NULL, NULL}
};

void tsL_open_tensor(lua_State *L, int methods, int module, int mt)
{
    tsL_register(L, tensor_methods, methods, module, mt);
    tsL_register(L, module_fns, 0, module, mt);
    lua_pushcfunction(L, t_release);
    lua_setfield(L, mt, "__gc");
    lua_pushcfunction(L, t_release);
    lua_setfield(L, mt, "__close");
}
