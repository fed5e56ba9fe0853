/* l_random.c — random tensors for Lua, drawn from the per-state generator
 * (tsL_generator; torsh.manual_seed in l_system.c seeds it): rand, randn,
 * randint, bernoulli, randperm, rand_like, randn_like, and the in-place
 * fills t:uniform_() and t:normal_(). The same seed gives the same numbers
 * whatever torsh.set_num_threads says. */
#include "tsl.h"

/* Reads "shape..., [dtype]" starting at idx (like torsh.zeros). */
static int shape_and_dtype(lua_State *L, int idx, int64_t *shape, ts_dtype *dt, ts_dtype def)
{
    int next;
    int nd = tsL_checkshape(L, idx, shape, &next);
    *dt = tsL_optdtype(L, next, def);
    return nd;
}

/* torsh.rand(shape... [, dtype]) — uniform in [0, 1) */
static int l_rand(lua_State *L)
{
    int64_t shape[TS_MAX_DIMS];
    ts_dtype dt;
    int nd = shape_and_dtype(L, 1, shape, &dt, TS_F32);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_rand(tsL_generator(L), shape, nd, dt, 0, 1);
    return tsL_result(L, *slot);
}

/* torsh.randn(shape... [, dtype]) — standard normal */
static int l_randn(lua_State *L)
{
    int64_t shape[TS_MAX_DIMS];
    ts_dtype dt;
    int nd = shape_and_dtype(L, 1, shape, &dt, TS_F32);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_randn(tsL_generator(L), shape, nd, dt, 0, 1);
    return tsL_result(L, *slot);
}

/* torsh.randint(lo, hi, shape [, dtype = "i64"]) or randint(hi, shape [, dtype])
 * — integers uniform in [lo, hi) */
static int l_randint(lua_State *L)
{
    lua_Integer lo = 0, hi;
    int at = 2;
    if (lua_isinteger(L, 2)) {
        lo = luaL_checkinteger(L, 1);
        hi = luaL_checkinteger(L, 2);
        at = 3;
    } else {
        hi = luaL_checkinteger(L, 1);
    }
    luaL_checktype(L, at, LUA_TTABLE);
    int64_t shape[TS_MAX_DIMS];
    int nd = tsL_checkshape(L, at, shape, NULL);
    ts_dtype dt = tsL_optdtype(L, at + 1, TS_I64);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_randint(tsL_generator(L), lo, hi, shape, nd, dt);
    return tsL_result(L, *slot);
}

/* torsh.bernoulli(p) / p:bernoulli() — 1 with probability p[i] (dtype of p);
 * t:bernoulli(p_number) — t's shape and dtype, one probability for all. */
static int l_bernoulli(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    ts_tensor **slot = tsL_newslot(L);
    if (lua_type(L, 2) == LUA_TNUMBER)
        *slot = ts_bernoulli_scalar(tsL_generator(L), lua_tonumber(L, 2), t->shape, t->ndim, t->dtype);
    else
        *slot = ts_bernoulli(tsL_generator(L), t, t->dtype);
    return tsL_result(L, *slot);
}

/* torsh.randperm(n [, dtype = "i64"]) — a random permutation of 0..n-1 */
static int l_randperm(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    ts_dtype dt = tsL_optdtype(L, 2, TS_I64);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_randperm(tsL_generator(L), n);
    if (*slot && dt != TS_I64) {
        ts_tensor *p = *slot;
        *slot = ts_to_dtype(p, dt);
        ts_tensor_release(p);
    }
    return tsL_result(L, *slot);
}

/* torsh.rand_like(t [, dtype]) / randn_like(t [, dtype]) */
static int random_like(lua_State *L, bool normal)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    ts_dtype dt = tsL_optdtype(L, 2, t->dtype);
    ts_tensor **slot = tsL_newslot(L);
    ts_generator *g = tsL_generator(L);
    *slot = normal ? ts_randn(g, t->shape, t->ndim, dt, 0, 1) : ts_rand(g, t->shape, t->ndim, dt, 0, 1);
    return tsL_result(L, *slot);
}
static int l_rand_like(lua_State *L) { return random_like(L, false); }
static int l_randn_like(lua_State *L) { return random_like(L, true); }

/* t:uniform_([lo = 0 [, hi = 1]]) -> t */
static int l_uniform_(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    double lo = luaL_optnumber(L, 2, 0), hi = luaL_optnumber(L, 3, 1);
    tsL_check(L, ts_uniform_(tsL_generator(L), t, lo, hi));
    lua_settop(L, 1);
    return 1;
}

/* t:normal_([mean = 0 [, std = 1]]) -> t */
static int l_normal_(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    double mean = luaL_optnumber(L, 2, 0), std = luaL_optnumber(L, 3, 1);
    tsL_check(L, ts_normal_(tsL_generator(L), t, mean, std));
    lua_settop(L, 1);
    return 1;
}

static const luaL_Reg both[] = {
    {"bernoulli", l_bernoulli}, {"uniform_", l_uniform_}, {"normal_", l_normal_},
    {NULL, NULL}
};

static const luaL_Reg module_only[] = {
    {"rand", l_rand}, {"randn", l_randn}, {"randint", l_randint}, {"randperm", l_randperm},
    {"rand_like", l_rand_like}, {"randn_like", l_randn_like},
    {NULL, NULL}
};

void tsL_open_random(lua_State *L, int methods, int module, int mt)
{
    tsL_register(L, both, methods, module, mt);
    tsL_register(L, module_only, 0, module, mt);
}
