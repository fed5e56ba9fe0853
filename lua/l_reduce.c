/* l_reduce.c — reductions and ops along a dim for Lua: sum, mean, prod,
 * amax, amin, logsumexp, any, all, var, std, norm, max/min (with indices),
 * argmax/argmin, cumsum/cumprod, sort/argsort, topk. Each is a Tensor method
 * (t:sum()) and a module function (torsh.sum(t)).
 *
 * Dims are Lua numbers and 1-based (-1 is the last dim); a dims argument is
 * one dim or a table of dims, nil meaning all dims. Index tensors returned
 * by max/min/argmax/argmin/sort/argsort/topk are data and 0-based (i64),
 * like PyTorch, so they feed gather/index_select directly. */
#include "tsl.h"
#include "torsh/autograd_ops.h"

#include <math.h>
#include <string.h>

static bool opt_bool(lua_State *L, int idx, bool def) { return lua_isnoneornil(L, idx) ? def : lua_toboolean(L, idx); }

/* Pushes the two results of a values/indices op; raises on failure (the
 * slots were pushed first, so nothing leaks). */
static int push_pair(lua_State *L, ts_status st, ts_tensor *values, ts_tensor *indices)
{
    if (st) return tsL_error(L);
    tsL_result(L, values);
    tsL_result(L, indices);
    return 2;
}

/* t:sum([dims [, keepdim]]), and likewise mean, prod, amax, amin, logsumexp,
 * any, all. sum/prod of integers and bool give i64; mean needs a float
 * tensor; any/all give bool. t:sum() is a 0-dim tensor (use :item()). */
static int l_reduce(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int dims[TS_MAX_DIMS];
    int nd = tsL_optdims(L, 2, t->ndim, dims);
    bool keepdim = lua_toboolean(L, 3);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_reduce((ts_redop)lua_tointeger(L, lua_upvalueindex(2)), t, dims, nd, keepdim);
    return tsL_result(L, *slot);
}

/* Reads var/std's correction and keepdim from arguments 3 and 4: a number
 * is the correction (default 1), a boolean is PyTorch's `unbiased`, a table
 * is {correction=, keepdim=}. */
static double variance_args(lua_State *L, bool *keepdim)
{
    *keepdim = lua_toboolean(L, 4);
    switch (lua_type(L, 3)) {
    case LUA_TNONE: case LUA_TNIL: return 1;
    case LUA_TBOOLEAN: return lua_toboolean(L, 3) ? 1 : 0;
    case LUA_TTABLE:
        *keepdim = tsL_optfield_bool(L, 3, "keepdim", *keepdim);
        return tsL_optfield_number(L, 3, "correction", 1);
    default: return luaL_checknumber(L, 3);
    }
}

/* t:var([dims [, correction [, keepdim]]]) — sum((x - mean)^2) / (N - correction). */
static int l_var(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int dims[TS_MAX_DIMS];
    int nd = tsL_optdims(L, 2, t->ndim, dims);
    bool keepdim;
    double correction = variance_args(L, &keepdim);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_var(t, dims, nd, correction, keepdim);
    return tsL_result(L, *slot);
}

/* t:std([dims [, correction [, keepdim]]]) — the square root of var. */
static int l_std(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int dims[TS_MAX_DIMS];
    int nd = tsL_optdims(L, 2, t->ndim, dims);
    bool keepdim;
    double correction = variance_args(L, &keepdim);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_std(t, dims, nd, correction, keepdim);
    return tsL_result(L, *slot);
}

/* t:norm([p [, dims [, keepdim]]]) — p-norm, p = 2 by default; p may be any
 * number, math.huge / -math.huge (max / min of |x|), 0 (count of
 * non-zeros), or the strings "fro" (2), "inf", "-inf". */
static int l_norm(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    double p = 2;
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *s = lua_tostring(L, 2);
        if (strcmp(s, "fro") == 0) p = 2;
        else if (strcmp(s, "inf") == 0) p = INFINITY;
        else if (strcmp(s, "-inf") == 0) p = -INFINITY;
        else return luaL_argerror(L, 2, "norm: p must be a number, 'fro', 'inf' or '-inf'");
    } else if (!lua_isnoneornil(L, 2)) {
        p = luaL_checknumber(L, 2);
    }
    int dims[TS_MAX_DIMS];
    int nd = tsL_optdims(L, 3, t->ndim, dims);
    bool keepdim = lua_toboolean(L, 4);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_norm(t, p, dims, nd, keepdim);
    return tsL_result(L, *slot);
}

/* t:max() -> 0-dim tensor of the largest element;
 * t:max(dim [, keepdim]) -> values, indices (0-based i64; first occurrence;
 * NaN wins); t:max(other) -> elementwise maximum. min likewise. */
static int max_min(lua_State *L, bool is_max)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    if (lua_isnoneornil(L, 2)) {
        ts_tensor **slot = tsL_newslot(L);
        *slot = ts_ag_reduce(is_max ? TS_AMAX : TS_AMIN, t, NULL, 0, false);
        return tsL_result(L, *slot);
    }
    ts_tensor *other = tsL_totensor(L, 2);
    if (other) {
        ts_tensor **slot = tsL_newslot(L);
        *slot = ts_binary(is_max ? TS_MAXIMUM : TS_MINIMUM, t, other);
        return tsL_result(L, *slot);
    }
    int d = tsL_checkdim(L, 2, t->ndim);
    bool keepdim = lua_toboolean(L, 3);
    ts_tensor **values = tsL_newslot(L), **indices = tsL_newslot(L);
    ts_status st = (is_max ? ts_ag_max_dim : ts_ag_min_dim)(t, d, keepdim, values, indices);
    return push_pair(L, st, *values, *indices);
}

static int l_max(lua_State *L) { return max_min(L, true); }
static int l_min(lua_State *L) { return max_min(L, false); }

/* t:argmax([dim [, keepdim]]) -> 0-based i64 index tensor; no dim: the index
 * into the flattened tensor. argmin likewise. */
static int arg_best(lua_State *L, bool is_max)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    bool all = lua_isnoneornil(L, 2);
    int d = all ? 0 : tsL_checkdim(L, 2, t->ndim);
    bool keepdim = lua_toboolean(L, 3);
    ts_tensor **slot = tsL_newslot(L);
    *slot = (is_max ? ts_argmax : ts_argmin)(t, d, all, keepdim);
    return tsL_result(L, *slot);
}

static int l_argmax(lua_State *L) { return arg_best(L, true); }
static int l_argmin(lua_State *L) { return arg_best(L, false); }

/* t:cumsum(dim) / t:cumprod(dim) — running sum / product along dim;
 * integers and bool give i64. */
static int cumulative(lua_State *L, bool prod)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int d = tsL_checkdim(L, 2, t->ndim);
    ts_tensor **slot = tsL_newslot(L);
    *slot = (prod ? ts_ag_cumprod : ts_ag_cumsum)(t, d);
    return tsL_result(L, *slot);
}

static int l_cumsum(lua_State *L) { return cumulative(L, false); }
static int l_cumprod(lua_State *L) { return cumulative(L, true); }

/* Default dim of sort/topk: the last (0 for a 0-dim tensor). */
static int last_dim(const ts_tensor *t) { return t->ndim > 0 ? t->ndim - 1 : 0; }

/* t:sort([dim=-1 [, descending=false]]) -> values, indices (0-based i64).
 * Stable: equal elements keep their order; NaN sorts as the largest. */
static int l_sort(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int d = tsL_optdim(L, 2, t->ndim, last_dim(t));
    bool descending = lua_toboolean(L, 3);
    ts_tensor **values = tsL_newslot(L), **indices = tsL_newslot(L);
    ts_status st = ts_ag_sort(t, d, descending, values, indices);
    return push_pair(L, st, *values, *indices);
}

/* t:argsort([dim=-1 [, descending=false]]) -> the indices of sort. */
static int l_argsort(lua_State *L)
{
    l_sort(L);
    return 1;
}

/* t:topk(k [, dim=-1 [, largest=true [, sorted=true]]]) -> values, indices
 * (0-based i64) of the k largest (smallest) along dim, largest first
 * (smallest first); results are always sorted. */
static int l_topk(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    lua_Integer k = luaL_checkinteger(L, 2);
    int d = tsL_optdim(L, 3, t->ndim, last_dim(t));
    bool largest = opt_bool(L, 4, true), sorted = opt_bool(L, 5, true);
    ts_tensor **values = tsL_newslot(L), **indices = tsL_newslot(L);
    ts_status st = ts_ag_topk(t, (int64_t)k, d, largest, sorted, values, indices);
    return push_pair(L, st, *values, *indices);
}

static const struct { const char *name; ts_redop op; } redops[] = {
    {"sum", TS_SUM}, {"mean", TS_MEAN}, {"prod", TS_PROD}, {"amax", TS_AMAX}, {"amin", TS_AMIN},
    {"logsumexp", TS_LOGSUMEXP}, {"any", TS_ANY}, {"all", TS_ALL},
};

static const luaL_Reg fixed[] = {
    {"var", l_var}, {"std", l_std}, {"norm", l_norm}, {"max", l_max}, {"min", l_min},
    {"argmax", l_argmax}, {"argmin", l_argmin}, {"cumsum", l_cumsum}, {"cumprod", l_cumprod},
    {"sort", l_sort}, {"argsort", l_argsort}, {"topk", l_topk},
    {NULL, NULL}
};

void tsL_open_reduce(lua_State *L, int methods, int module, int mt)
{
    for (size_t i = 0; i < sizeof redops / sizeof *redops; i++) {
        lua_pushvalue(L, mt);
        lua_pushinteger(L, redops[i].op);
        lua_pushcclosure(L, l_reduce, 2);
        lua_pushvalue(L, -1);
        lua_setfield(L, methods, redops[i].name);
        lua_setfield(L, module, redops[i].name);
    }
    tsL_register(L, fixed, methods, module, mt);
}
