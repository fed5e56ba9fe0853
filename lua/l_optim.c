/* l_optim.c — torsh._optim: the fused optimizer steps and gradient clipping
 * of the core (torsh/optim.h) for stdlib/torsh/optim.lua, which owns the
 * optimizer objects, their state and their hyperparameters.
 *
 *   _optim.sgd_step(params, grads, buffers|nil, opts, first_step)
 *   _optim.adam_step(params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq|nil, step, opts)
 *   _optim.rmsprop_step(params, grads, square_avg, grad_avg|nil, momentum_buffer|nil, opts)
 *   _optim.adagrad_step(params, grads, sum, step, opts)
 *   _optim.clip_grad_norm(grads, max_norm, norm_type, error_if_nonfinite) -> total_norm
 *   _optim.clip_grad_value(grads, clip_value)
 *
 * Tensor lists are Lua arrays of equal length; opts are tables of numbers and
 * booleans named like the fields of the core's ts_*_opts structs. Every
 * tensor is written in place; nothing is returned but the clipping norm. */
#include "tsl.h"

/* Reads the Lua array at idx into a GC-owned C array (pushed on the stack,
 * so callers first settop to their argument count); NULL when the value is
 * nil. n < 0 takes the array's length into *n. */
static ts_tensor **check_list(lua_State *L, int idx, int *n, const char *op, const char *what)
{
    if (lua_isnoneornil(L, idx)) return NULL;
    luaL_checktype(L, idx, LUA_TTABLE);
    int len = (int)luaL_len(L, idx);
    if (*n < 0) *n = len;
    else if (len != *n) luaL_error(L, "%s: %s has %d tensors but params has %d", op, what, len, *n);
    ts_tensor **arr = lua_newuserdatauv(L, sizeof(ts_tensor *) * (size_t)(len + 1), 0);
    for (int i = 0; i < len; i++) {
        lua_rawgeti(L, idx, i + 1);
        ts_tensor *t = tsL_totensor(L, -1);
        if (!t) luaL_error(L, "%s: %s[%d] is a %s, not a Tensor", op, what, i + 1, luaL_typename(L, -1));
        arr[i] = t;
        lua_pop(L, 1);
    }
    return arr;
}

/* The required list at idx (error if nil). */
static ts_tensor **need_list(lua_State *L, int idx, int *n, const char *op, const char *what)
{
    if (lua_isnoneornil(L, idx)) luaL_error(L, "%s: %s is missing", op, what);
    return check_list(L, idx, n, op, what);
}

static double field(lua_State *L, int idx, const char *name, double def)
{
    return tsL_optfield_number(L, idx, name, def);
}

static bool flag(lua_State *L, int idx, const char *name) { return tsL_optfield_bool(L, idx, name, 0) != 0; }

static int l_sgd_step(lua_State *L)
{
    lua_settop(L, 5);                           /* the lists' C arrays are pushed above the arguments */
    const char *op = "sgd";
    int n = -1;
    ts_tensor **p = need_list(L, 1, &n, op, "params");
    ts_tensor **g = need_list(L, 2, &n, op, "grads");
    ts_tensor **buf = check_list(L, 3, &n, op, "momentum_buffers");
    luaL_checktype(L, 4, LUA_TTABLE);
    ts_sgd_opts o = {
        .lr = field(L, 4, "lr", 0), .momentum = field(L, 4, "momentum", 0), .dampening = field(L, 4, "dampening", 0),
        .weight_decay = field(L, 4, "weight_decay", 0), .nesterov = flag(L, 4, "nesterov"),
        .maximize = flag(L, 4, "maximize"),
    };
    tsL_check(L, ts_sgd_step(p, g, buf, n, &o, lua_toboolean(L, 5)));
    return 0;
}

static int l_adam_step(lua_State *L)
{
    lua_settop(L, 7);                           /* the lists' C arrays are pushed above the arguments */
    const char *op = "adam";
    int n = -1;
    ts_tensor **p = need_list(L, 1, &n, op, "params");
    ts_tensor **g = need_list(L, 2, &n, op, "grads");
    ts_tensor **m = need_list(L, 3, &n, op, "exp_avg");
    ts_tensor **v = need_list(L, 4, &n, op, "exp_avg_sq");
    ts_tensor **vmax = check_list(L, 5, &n, op, "max_exp_avg_sq");
    lua_Integer step = luaL_checkinteger(L, 6);
    luaL_checktype(L, 7, LUA_TTABLE);
    ts_adam_opts o = {
        .lr = field(L, 7, "lr", 1e-3), .beta1 = field(L, 7, "beta1", 0.9), .beta2 = field(L, 7, "beta2", 0.999),
        .eps = field(L, 7, "eps", 1e-8), .weight_decay = field(L, 7, "weight_decay", 0),
        .decoupled = flag(L, 7, "decoupled"), .amsgrad = flag(L, 7, "amsgrad"), .maximize = flag(L, 7, "maximize"),
    };
    tsL_check(L, ts_adam_step(p, g, m, v, vmax, n, (int64_t)step, &o));
    return 0;
}

static int l_rmsprop_step(lua_State *L)
{
    lua_settop(L, 6);                           /* the lists' C arrays are pushed above the arguments */
    const char *op = "rmsprop";
    int n = -1;
    ts_tensor **p = need_list(L, 1, &n, op, "params");
    ts_tensor **g = need_list(L, 2, &n, op, "grads");
    ts_tensor **sq = need_list(L, 3, &n, op, "square_avg");
    ts_tensor **ga = check_list(L, 4, &n, op, "grad_avg");
    ts_tensor **buf = check_list(L, 5, &n, op, "momentum_buffer");
    luaL_checktype(L, 6, LUA_TTABLE);
    ts_rmsprop_opts o = {
        .lr = field(L, 6, "lr", 1e-2), .alpha = field(L, 6, "alpha", 0.99), .eps = field(L, 6, "eps", 1e-8),
        .weight_decay = field(L, 6, "weight_decay", 0), .momentum = field(L, 6, "momentum", 0),
        .centered = flag(L, 6, "centered"), .maximize = flag(L, 6, "maximize"),
    };
    tsL_check(L, ts_rmsprop_step(p, g, sq, ga, buf, n, &o));
    return 0;
}

static int l_adagrad_step(lua_State *L)
{
    lua_settop(L, 5);                           /* the lists' C arrays are pushed above the arguments */
    const char *op = "adagrad";
    int n = -1;
    ts_tensor **p = need_list(L, 1, &n, op, "params");
    ts_tensor **g = need_list(L, 2, &n, op, "grads");
    ts_tensor **sum = need_list(L, 3, &n, op, "sum");
    lua_Integer step = luaL_checkinteger(L, 4);
    luaL_checktype(L, 5, LUA_TTABLE);
    ts_adagrad_opts o = {
        .lr = field(L, 5, "lr", 1e-2), .lr_decay = field(L, 5, "lr_decay", 0),
        .weight_decay = field(L, 5, "weight_decay", 0), .eps = field(L, 5, "eps", 1e-10),
        .maximize = flag(L, 5, "maximize"),
    };
    tsL_check(L, ts_adagrad_step(p, g, sum, n, (int64_t)step, &o));
    return 0;
}

static int l_clip_grad_norm(lua_State *L)
{
    lua_settop(L, 4);                           /* the lists' C arrays are pushed above the arguments */
    int n = -1;
    ts_tensor **g = need_list(L, 1, &n, "clip_grad_norm", "grads");
    double max_norm = luaL_checknumber(L, 2);
    double norm_type = luaL_optnumber(L, 3, 2.0);
    bool nonfinite = lua_toboolean(L, 4);
    double total = 0;
    tsL_check(L, ts_clip_grad_norm(g, n, max_norm, norm_type, nonfinite, &total));
    lua_pushnumber(L, total);
    return 1;
}

static int l_clip_grad_value(lua_State *L)
{
    lua_settop(L, 2);                           /* the lists' C arrays are pushed above the arguments */
    int n = -1;
    ts_tensor **g = need_list(L, 1, &n, "clip_grad_value", "grads");
    tsL_check(L, ts_clip_grad_value(g, n, luaL_checknumber(L, 2)));
    return 0;
}

static const luaL_Reg fns[] = {
    {"sgd_step", l_sgd_step}, {"adam_step", l_adam_step}, {"rmsprop_step", l_rmsprop_step},
    {"adagrad_step", l_adagrad_step}, {"clip_grad_norm", l_clip_grad_norm}, {"clip_grad_value", l_clip_grad_value},
    {NULL, NULL}
};

void tsL_open_optim(lua_State *L, int module)
{
    lua_createtable(L, 0, (int)(sizeof fns / sizeof *fns) - 1);
    luaL_setfuncs(L, fns, 0);
    lua_setfield(L, module, "_optim");
}
