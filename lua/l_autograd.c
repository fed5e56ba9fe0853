/* l_autograd.c — autograd from Lua: requires_grad_, grad, backward, detach,
 * is_leaf, grad_fn, and grad mode (torsh.no_grad(fn), set_grad_enabled).
 * The recording itself happens in the core (ts_ag_* functions), which the
 * other binding files call. */
#include "tsl.h"
#include "torsh/autograd_ops.h"

/* t:requires_grad_([on=true]) -> t */
static int t_requires_grad_(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int on = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
    tsL_check(L, ts_requires_grad_(t, on));
    lua_settop(L, 1);
    return 1;
}

static int t_requires_grad(lua_State *L) { lua_pushboolean(L, ts_requires_grad(tsL_checktensor(L, 1))); return 1; }
static int t_is_leaf(lua_State *L) { lua_pushboolean(L, ts_is_leaf(tsL_checktensor(L, 1))); return 1; }

static int t_grad_fn(lua_State *L)
{
    const char *name = ts_grad_fn_name(tsL_checktensor(L, 1));
    if (name) lua_pushstring(L, name);
    else lua_pushnil(L);
    return 1;
}

/* t:grad() -> the accumulated gradient or nil */
static int t_grad(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    ts_tensor *g = ts_grad(t);
    if (!g) { lua_pushnil(L); return 1; }
    return tsL_pushtensor(L, g);
}

/* t:set_grad(g or nil) ; t:zero_grad() clears it */
static int t_set_grad(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    ts_tensor *g = lua_isnoneornil(L, 2) ? NULL : tsL_checktensor(L, 2);
    tsL_check(L, ts_set_grad(t, g));
    return 0;
}

/* t:backward([gradient [, {retain_graph=false}]]) */
static int t_backward(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    ts_tensor *g = lua_isnoneornil(L, 2) ? NULL : tsL_checktensor(L, 2);
    bool retain = tsL_optfield_bool(L, 3, "retain_graph", 0);
    if (lua_isboolean(L, 3)) retain = lua_toboolean(L, 3);
    tsL_check(L, ts_backward(t, g, retain));
    return 0;
}

static int t_detach(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_detach(t);
    return tsL_result(L, *slot);
}

static int l_is_grad_enabled(lua_State *L) { lua_pushboolean(L, ts_grad_enabled()); return 1; }

static int l_set_grad_enabled(lua_State *L)
{
    lua_pushboolean(L, ts_set_grad_enabled(lua_toboolean(L, 1)));
    return 1;
}

/* Runs fn(...) with grad mode set to `on`, restoring it even on error. */
static int with_grad_mode(lua_State *L, bool on)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    bool prev = ts_set_grad_enabled(on);
    int nargs = lua_gettop(L) - 1;
    int st = lua_pcall(L, nargs, LUA_MULTRET, 0);
    ts_set_grad_enabled(prev);
    if (st != LUA_OK) return lua_error(L);
    return lua_gettop(L);
}

static int l_no_grad(lua_State *L) { return with_grad_mode(L, false); }
static int l_enable_grad(lua_State *L) { return with_grad_mode(L, true); }

static const luaL_Reg methods[] = {
    {"requires_grad_", t_requires_grad_}, {"requires_grad", t_requires_grad}, {"is_leaf", t_is_leaf},
    {"grad_fn", t_grad_fn}, {"grad", t_grad}, {"set_grad", t_set_grad}, {"backward", t_backward},
    {"detach", t_detach},
    {NULL, NULL}
};

static const luaL_Reg module_fns[] = {
    {"is_grad_enabled", l_is_grad_enabled}, {"set_grad_enabled", l_set_grad_enabled},
    {"no_grad", l_no_grad}, {"enable_grad", l_enable_grad},
    {NULL, NULL}
};

void tsL_open_autograd(lua_State *L, int methods_idx, int module, int mt)
{
    tsL_register(L, methods, methods_idx, module, mt);
    tsL_register(L, module_fns, 0, module, mt);
}
