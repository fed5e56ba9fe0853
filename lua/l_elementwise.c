/* l_elementwise.c — elementwise math for Lua: arithmetic metamethods
 * (+ - * / % // ^ unary -), binary methods with in-place (`add_`) forms,
 * comparisons (tensors of bool: `a:lt(b)`, never the < operator, which Lua
 * forces to a single boolean), unary math, where, clamp, matmul/linear. */
#include "tsl.h"
#include "torsh/autograd_ops.h"

#include <math.h>

/* a op b where either side may be a Lua number (or table / boolean). */
static int binary_any(lua_State *L, ts_binop op)
{
    ts_tensor *a = tsL_totensor(L, 1), *b = tsL_totensor(L, 2);
    if (a && b) {
        ts_tensor **slot = tsL_newslot(L);
        *slot = ts_ag_binary(op, a, b);
        return tsL_result(L, *slot);
    }
    if (a && lua_type(L, 2) == LUA_TNUMBER) {
        double s = lua_tonumber(L, 2);
        ts_tensor **slot = tsL_newslot(L);
        *slot = ts_ag_binary_scalar(op, a, s, false);
        return tsL_result(L, *slot);
    }
    if (b && lua_type(L, 1) == LUA_TNUMBER) {
        double s = lua_tonumber(L, 1);
        ts_tensor **slot = tsL_newslot(L);
        *slot = ts_ag_binary_scalar(op, b, s, true);
        return tsL_result(L, *slot);
    }
    /* tables / booleans: make tensors of them */
    int oa = 0, ob = 0;
    ts_tensor *ta = tsL_checktensorlike(L, 1, b, &oa);
    ts_tensor *tb = tsL_checktensorlike(L, 2, ta, &ob);
    ts_tensor *r = ts_ag_binary(op, ta, tb);
    if (oa) ts_tensor_release(ta);
    if (ob) ts_tensor_release(tb);
    return tsL_pushtensor(L, r);
}

static int binary_inplace(lua_State *L, ts_binop op)
{
    ts_tensor *a = tsL_checktensor(L, 1);
    ts_status st;
    tsL_check(L, ts_ag_check_inplace(ts_binop_name(op), a));
    if (lua_type(L, 2) == LUA_TNUMBER) {
        st = ts_binary_scalar_(op, a, lua_tonumber(L, 2));
    } else {
        int owned;
        ts_tensor *b = tsL_checktensorlike(L, 2, a, &owned);
        st = ts_binary_(op, a, b);
        if (owned) ts_tensor_release(b);
    }
    tsL_check(L, st);
    lua_settop(L, 1);
    return 1;
}

static int l_binary(lua_State *L) { return binary_any(L, (ts_binop)lua_tointeger(L, lua_upvalueindex(2))); }
static int l_binary_(lua_State *L) { return binary_inplace(L, (ts_binop)lua_tointeger(L, lua_upvalueindex(2))); }

/* add(a, b, alpha) / sub(a, b, alpha): a + alpha * b, like PyTorch. */
static int alpha_op(lua_State *L, ts_binop op, bool inplace)
{
    if (lua_isnoneornil(L, 3)) return inplace ? binary_inplace(L, op) : binary_any(L, op);
    double alpha = luaL_checknumber(L, 3);
    lua_settop(L, 2);
    int owned;
    ts_tensor *a = tsL_checktensor(L, 1);
    ts_tensor *b = tsL_checktensorlike(L, 2, a, &owned);
    ts_tensor *scaled = ts_ag_binary_scalar(TS_MUL, b, alpha, false);
    if (owned) ts_tensor_release(b);
    if (!scaled) return tsL_error(L);
    if (inplace) {
        ts_status st = ts_ag_check_inplace(ts_binop_name(op), a);
        if (!st) st = ts_binary_(op, a, scaled);
        ts_tensor_release(scaled);
        tsL_check(L, st);
        lua_settop(L, 1);
        return 1;
    }
    ts_tensor *r = ts_ag_binary(op, a, scaled);
    ts_tensor_release(scaled);
    return tsL_pushtensor(L, r);
}
static int l_add(lua_State *L) { return alpha_op(L, TS_ADD, false); }
static int l_sub(lua_State *L) { return alpha_op(L, TS_SUB, false); }
static int l_add_(lua_State *L) { return alpha_op(L, TS_ADD, true); }
static int l_sub_(lua_State *L) { return alpha_op(L, TS_SUB, true); }

/* Metamethods: fixed op, no alpha. */
static int mm_add(lua_State *L) { return binary_any(L, TS_ADD); }
static int mm_sub(lua_State *L) { return binary_any(L, TS_SUB); }
static int mm_mul(lua_State *L) { return binary_any(L, TS_MUL); }
static int mm_div(lua_State *L) { return binary_any(L, TS_DIV); }
static int mm_mod(lua_State *L) { return binary_any(L, TS_REMAINDER); }
static int mm_idiv(lua_State *L) { return binary_any(L, TS_FLOOR_DIVIDE); }
static int mm_pow(lua_State *L) { return binary_any(L, TS_POW); }

static int l_unary(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_unary((ts_unop)lua_tointeger(L, lua_upvalueindex(2)), t);
    return tsL_result(L, *slot);
}

static int l_unary_(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    ts_unop op = (ts_unop)lua_tointeger(L, lua_upvalueindex(2));
    tsL_check(L, ts_ag_check_inplace(ts_unop_name(op), t));
    tsL_check(L, ts_unary_(op, t));
    lua_settop(L, 1);
    return 1;
}

static int mm_unm(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_unary(TS_NEG, t);
    return tsL_result(L, *slot);
}

/* torsh.where(cond, a, b): a and b may be numbers. */
static int l_where(lua_State *L)
{
    ts_tensor *c = tsL_checktensor(L, 1);
    ts_tensor *ref = tsL_totensor(L, 2) ? tsL_totensor(L, 2) : tsL_totensor(L, 3);
    int oa, ob;
    ts_tensor *a = tsL_checktensorlike(L, 2, ref, &oa);
    ts_tensor *b = tsL_checktensorlike(L, 3, ref ? ref : a, &ob);
    ts_tensor *r = ts_ag_where(c, a, b);
    if (oa) ts_tensor_release(a);
    if (ob) ts_tensor_release(b);
    return tsL_pushtensor(L, r);
}

/* t:clamp(min, max) — nil for no bound. */
static int l_clamp(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    double lo = luaL_optnumber(L, 2, NAN), hi = luaL_optnumber(L, 3, NAN);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_clamp(t, lo, hi);
    return tsL_result(L, *slot);
}

static int l_clamp_(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    tsL_check(L, ts_ag_check_inplace("clamp_", t));
    tsL_check(L, ts_clamp_(t, luaL_optnumber(L, 2, NAN), luaL_optnumber(L, 3, NAN)));
    lua_settop(L, 1);
    return 1;
}

static int l_leaky_relu(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_leaky_relu(t, luaL_optnumber(L, 2, 0.01));
    return tsL_result(L, *slot);
}

static int l_matmul(lua_State *L)
{
    ts_tensor *a = tsL_checktensor(L, 1), *b = tsL_checktensor(L, 2);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_matmul(a, b);
    return tsL_result(L, *slot);
}

static int l_bmm(lua_State *L)
{
    ts_tensor *a = tsL_checktensor(L, 1), *b = tsL_checktensor(L, 2);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_bmm(a, b);
    return tsL_result(L, *slot);
}

/* linear(x, weight [, bias]) */
static int l_linear(lua_State *L)
{
    ts_tensor *x = tsL_checktensor(L, 1), *w = tsL_checktensor(L, 2);
    ts_tensor *b = lua_isnoneornil(L, 3) ? NULL : tsL_checktensor(L, 3);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_linear(x, w, b);
    return tsL_result(L, *slot);
}

static int mm_len(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    if (t->ndim == 0) return luaL_error(L, "len() of a 0-dim tensor");
    lua_pushinteger(L, t->shape[0]);
    return 1;
}

/* __eq: identity. Lua only calls it for two different userdata, so any
 * call means "not the same object" — elementwise equality is t:eq(u). */
static int mm_eq(lua_State *L) { lua_pushboolean(L, lua_rawequal(L, 1, 2)); return 1; }

static const struct { const char *name; ts_binop op; } binops[] = {
    {"mul", TS_MUL}, {"div", TS_DIV}, {"pow", TS_POW}, {"maximum", TS_MAXIMUM}, {"minimum", TS_MINIMUM},
    {"remainder", TS_REMAINDER}, {"fmod_floor", TS_REMAINDER}, {"floor_divide", TS_FLOOR_DIVIDE}, {"atan2", TS_ATAN2},
    {"eq", TS_EQ}, {"ne", TS_NE}, {"lt", TS_LT}, {"le", TS_LE}, {"gt", TS_GT}, {"ge", TS_GE},
    {"logical_and", TS_LOGICAL_AND}, {"logical_or", TS_LOGICAL_OR}, {"logical_xor", TS_LOGICAL_XOR},
};

static void register_closure(lua_State *L, lua_CFunction f, int op, const char *name, int methods, int module, int mt)
{
    lua_pushvalue(L, mt);
    lua_pushinteger(L, op);
    lua_pushcclosure(L, f, 2);
    lua_pushvalue(L, -1);
    lua_setfield(L, methods, name);
    lua_setfield(L, module, name);
}

static const luaL_Reg fixed[] = {
    {"add", l_add}, {"sub", l_sub}, {"add_", l_add_}, {"sub_", l_sub_},
    {"where", l_where}, {"clamp", l_clamp}, {"clamp_", l_clamp_}, {"clip", l_clamp},
    {"leaky_relu", l_leaky_relu}, {"matmul", l_matmul}, {"mm", l_matmul}, {"bmm", l_bmm}, {"linear", l_linear},
    {NULL, NULL}
};

static const luaL_Reg metamethods[] = {
    {"__add", mm_add}, {"__sub", mm_sub}, {"__mul", mm_mul}, {"__div", mm_div}, {"__mod", mm_mod},
    {"__idiv", mm_idiv}, {"__pow", mm_pow}, {"__unm", mm_unm}, {"__len", mm_len}, {"__eq", mm_eq},
    {NULL, NULL}
};

void tsL_open_elementwise(lua_State *L, int methods, int module, int mt)
{
    char buf[64];
    for (size_t i = 0; i < sizeof binops / sizeof *binops; i++) {
        register_closure(L, l_binary, binops[i].op, binops[i].name, methods, module, mt);
        snprintf(buf, sizeof buf, "%s_", binops[i].name);
        register_closure(L, l_binary_, binops[i].op, buf, methods, module, mt);
    }
    for (int op = 0; op < TS_UNOP_COUNT; op++) {
        const char *name = ts_unop_name((ts_unop)op);
        register_closure(L, l_unary, op, name, methods, module, mt);
        snprintf(buf, sizeof buf, "%s_", name);
        register_closure(L, l_unary_, op, buf, methods, module, mt);
    }
    tsL_register(L, fixed, methods, module, mt);
    /* metamethods live on the metatable itself */
    for (const luaL_Reg *r = metamethods; r->name; r++) {
        lua_pushvalue(L, mt);
        lua_pushcclosure(L, r->func, 1);
        lua_setfield(L, mt, r->name);
    }
}
