/* l_pt.c — torsh._pt: PyTorch checkpoints (torsh/pt.h) and pickles
 * (torsh/pickle.h) as Lua values; used by torsh.load (stdlib/torsh/io.lua).
 *
 *   _pt.load(path [, {mmap = true, verify = true}]) -> value, kind
 *       kind is "zip" or "legacy". mmap = false copies tensor data into
 *       memory (writable tensors); verify checks every storage's CRC-32.
 *   _pt.unpickle(bytes) -> value        (a plain pickle: no tensors)
 *   _pt.sniff(path) -> "zip" | "legacy" | "preview" | "tar" | nil
 *   _pt.save(path, names, tensors [, zip64_at]) -> true   (raises on failure)
 *   _pt.keys(dict) -> list of the dict's keys in the file's order, or nil
 *   _pt.kind(value) -> "OrderedDict", "dict", "list", "tuple", "set",
 *       "frozenset", "global" or nil for values not made here
 *
 * How Python values come out: None -> nil; bool; int -> integer (an int
 * beyond 64 bits -> float); float; str and bytes -> string; tensor (also
 * nn.Parameter) -> Tensor; a bare storage -> a 1-D Tensor over it;
 * list/tuple/set/frozenset -> a sequence 1..n; dict/OrderedDict -> a table
 * key -> value. Dicts keep the file's key order: pairs() walks them in that
 * order (keys added later come after, in any order), _pt.keys() lists it, and
 * the metatable holds it as __order. Other metatable fields: __kind (as
 * _pt.kind returns), __state (an OrderedDict's BUILD state, e.g. a
 * state_dict's _metadata), and for a sequence holding None, n (its length,
 * also what # gives). A global such as torch.float32 -> {global =
 * "torch.float32"}. A value met twice (or inside itself) is one Lua value.
 * A dict key None cannot be a Lua key: such a file fails to convert.
 */
#include "tsl.h"
#include "torsh/pickle.h"
#include "torsh/pt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DOC_MT "torsh.pt.document"
#define KIND_MT_PREFIX "torsh.pt."

/* ---- the document userdata: freed by __gc, so a Lua error never leaks it ---- */

static int doc_gc(lua_State *L)
{
    ts_pickle **ud = luaL_checkudata(L, 1, DOC_MT);
    ts_pickle_free(*ud);
    *ud = NULL;
    return 0;
}

static ts_pickle **new_doc(lua_State *L)
{
    ts_pickle **ud = lua_newuserdatauv(L, sizeof *ud, 0);
    *ud = NULL;
    luaL_setmetatable(L, DOC_MT);
    return ud;
}

/* ---- ordered pairs ----------------------------------------------------------------- */

/* next(t, k) in the metatable's __order, then the keys not in it. */
static int ordered_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (!lua_getmetatable(L, 1)) return 0;
    lua_getfield(L, 3, "__order");          /* 4 */
    lua_getfield(L, 3, "__pos");            /* 5 */
    if (!lua_istable(L, 4) || !lua_istable(L, 5)) {
        lua_settop(L, 2);
        return lua_next(L, 1) ? 2 : 0;
    }
    lua_Integer i = 0;
    bool rest = false;
    if (!lua_isnil(L, 2)) {
        lua_pushvalue(L, 2);
        lua_rawget(L, 5);
        if (lua_isinteger(L, -1)) i = lua_tointeger(L, -1);
        else rest = true;
        lua_pop(L, 1);
    }
    if (!rest) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, 4);
        for (lua_Integer j = i + 1; j <= n; j++) {
            lua_rawgeti(L, 4, j);
            lua_pushvalue(L, -1);
            lua_rawget(L, 1);
            if (!lua_isnil(L, -1)) return 2;
            lua_pop(L, 2);
        }
        lua_pushnil(L);                     /* the keys added later, from the start */
    } else {
        lua_pushvalue(L, 2);
    }
    while (lua_next(L, 1)) {
        lua_pushvalue(L, -2);
        lua_rawget(L, 5);
        bool ordered = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (!ordered) return 2;
        lua_pop(L, 1);
    }
    return 0;
}

static int ordered_pairs(lua_State *L)
{
    lua_pushcfunction(L, ordered_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int seq_len(lua_State *L)
{
    if (lua_getmetatable(L, 1)) {
        lua_getfield(L, -1, "n");
        if (lua_isinteger(L, -1)) return 1;
    }
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, 1));
    return 1;
}

/* ---- conversion -------------------------------------------------------------------- */

typedef struct conv {
    int cache;            /* stack index of lightuserdata(node) -> Lua value */
    int depth;
} conv;

static void push_value(lua_State *L, conv *c, const ts_pkval *v);

static bool cached(lua_State *L, conv *c, const ts_pkval *v)
{
    lua_rawgetp(L, c->cache, v);
    if (!lua_isnil(L, -1)) return true;
    lua_pop(L, 1);
    return false;
}

static void remember(lua_State *L, conv *c, const ts_pkval *v)
{
    lua_pushvalue(L, -1);
    lua_rawsetp(L, c->cache, v);
}

static void set_kind_mt(lua_State *L, const char *kind)
{
    char name[64];
    snprintf(name, sizeof name, KIND_MT_PREFIX "%s", kind);
    if (luaL_newmetatable(L, name)) {
        lua_pushstring(L, kind);
        lua_setfield(L, -2, "__kind");
    }
    lua_setmetatable(L, -2);
}

static const char *seq_kind(ts_pk_kind k)
{
    return k == TS_PK_TUPLE ? "tuple" : k == TS_PK_LIST ? "list" : k == TS_PK_SET ? "set" : "frozenset";
}

static void push_seq(lua_State *L, conv *c, const ts_pkval *v)
{
    lua_createtable(L, v->u.seq.n < INT32_MAX ? (int)v->u.seq.n : 0, 0);
    remember(L, c, v);
    int t = lua_gettop(L);
    bool holes = false;
    for (size_t i = 0; i < v->u.seq.n; i++) {
        const ts_pkval *x = v->u.seq.items[i];
        if (x->kind == TS_PK_NONE) { holes = true; continue; }
        push_value(L, c, x);
        lua_rawseti(L, t, (lua_Integer)i + 1);
    }
    if (!holes) { set_kind_mt(L, seq_kind(v->kind)); return; }
    lua_createtable(L, 0, 4);
    lua_pushstring(L, seq_kind(v->kind));
    lua_setfield(L, -2, "__kind");
    lua_pushinteger(L, (lua_Integer)v->u.seq.n);
    lua_setfield(L, -2, "n");
    lua_pushcfunction(L, seq_len);
    lua_setfield(L, -2, "__len");
    lua_setmetatable(L, t);
}

static void push_key(lua_State *L, conv *c, const ts_pkval *k)
{
    if (k->kind == TS_PK_NONE) luaL_error(L, "torsh._pt: a dict key is None, which cannot be a Lua table key");
    if (k->kind == TS_PK_FLOAT && isnan(k->u.f)) luaL_error(L, "torsh._pt: a dict key is NaN, which cannot be a Lua table key");
    push_value(L, c, k);
}

static void push_dict(lua_State *L, conv *c, const ts_pkval *v)
{
    int n = v->u.dict.n < INT32_MAX ? (int)v->u.dict.n : 0;
    lua_createtable(L, 0, n);
    remember(L, c, v);
    int t = lua_gettop(L);
    lua_createtable(L, 0, 6);                   /* its metatable */
    int mt = t + 1;
    lua_createtable(L, n, 0);                   /* __order */
    int order = t + 2;
    lua_createtable(L, 0, n);                   /* __pos */
    int pos = t + 3;
    lua_Integer k = 0;
    for (size_t i = 0; i < v->u.dict.n; i++) {
        push_key(L, c, v->u.dict.keys[i]);
        int key = lua_gettop(L);
        lua_pushvalue(L, key);
        lua_rawget(L, pos);
        bool seen = !lua_isnil(L, -1);          /* two pickled keys that are one Lua key (1 and 1.0) */
        lua_pop(L, 1);
        if (!seen) {
            lua_pushvalue(L, key);
            lua_rawseti(L, order, ++k);
            lua_pushvalue(L, key);
            lua_pushinteger(L, k);
            lua_rawset(L, pos);
        }
        if (v->u.dict.vals[i]->kind == TS_PK_NONE) { lua_pop(L, 1); continue; }
        push_value(L, c, v->u.dict.vals[i]);
        lua_rawset(L, t);
    }
    lua_pushvalue(L, order);
    lua_setfield(L, mt, "__order");
    lua_pushvalue(L, pos);
    lua_setfield(L, mt, "__pos");
    lua_pushstring(L, v->flags & TS_PK_ORDERED ? "OrderedDict" : "dict");
    lua_setfield(L, mt, "__kind");
    lua_pushcfunction(L, ordered_pairs);
    lua_setfield(L, mt, "__pairs");
    if (v->u.dict.state) {
        push_value(L, c, v->u.dict.state);
        lua_setfield(L, mt, "__state");
    }
    lua_settop(L, mt);
    lua_setmetatable(L, t);
}

static void push_tensor(lua_State *L, ts_tensor *t)
{
    ts_tensor **slot = tsL_newslot_mt(L);
    ts_tensor_retain(t);
    *slot = t;
    tsL_result(L, t);
}

static void push_value(lua_State *L, conv *c, const ts_pkval *v)
{
    if (!lua_checkstack(L, 12)) luaL_error(L, "torsh._pt: out of Lua stack");
    switch (v->kind) {
    case TS_PK_NONE: lua_pushnil(L); return;
    case TS_PK_BOOL: lua_pushboolean(L, v->u.b); return;
    case TS_PK_INT: lua_pushinteger(L, (lua_Integer)v->u.i); return;
    case TS_PK_FLOAT: lua_pushnumber(L, v->u.f); return;
    case TS_PK_STR: case TS_PK_BYTES:
        if (v->u.str.len <= 40) { lua_pushlstring(L, v->u.str.s, v->u.str.len); return; }
        break;
    default: break;
    }
    if (cached(L, c, v)) return;
    if (++c->depth > TS_PICKLE_MAX_DEPTH + 8) luaL_error(L, "torsh._pt: values are nested deeper than %d levels", TS_PICKLE_MAX_DEPTH);
    switch (v->kind) {
    case TS_PK_STR: case TS_PK_BYTES:
        lua_pushlstring(L, v->u.str.s, v->u.str.len);    /* long strings once, however often they are referenced */
        remember(L, c, v);
        break;
    case TS_PK_TUPLE: case TS_PK_LIST: case TS_PK_SET: case TS_PK_FROZENSET: push_seq(L, c, v); break;
    case TS_PK_DICT: push_dict(L, c, v); break;
    case TS_PK_GLOBAL:
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, v->u.str.s, v->u.str.len);
        lua_setfield(L, -2, "global");
        set_kind_mt(L, "global");
        remember(L, c, v);
        break;
    case TS_PK_TENSOR:
        if (!v->u.tensor.t) luaL_error(L, "torsh._pt: %s", v->u.tensor.error ? v->u.tensor.error : "a tensor could not be made");
        push_tensor(L, v->u.tensor.t);
        remember(L, c, v);
        break;
    case TS_PK_STORAGE: {
        if (!v->u.storage.s) luaL_error(L, "torsh._pt: storage '%s': %s", v->u.storage.key ? v->u.storage.key : "?",
                                        v->u.storage.error ? v->u.storage.error : "unusable");
        ts_tensor **slot = tsL_newslot_mt(L);
        int64_t n = v->u.storage.numel;
        *slot = ts_tensor_from_storage(v->u.storage.s, v->u.storage.dtype, 0, &n, NULL, 1);
        tsL_result(L, *slot);
        remember(L, c, v);
        break;
    }
    default:
        luaL_error(L, "torsh._pt: unexpected value kind %d", (int)v->kind);
    }
    c->depth--;
}

/* Converts the document's root; leaves the value on the stack. */
static void push_root(lua_State *L, const ts_pickle *doc)
{
    lua_newtable(L);
    conv c = { .cache = lua_gettop(L) };
    push_value(L, &c, ts_pickle_root(doc));
    lua_remove(L, c.cache);
}

/* ---- functions ---------------------------------------------------------------------------- */

static int l_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    unsigned flags = TS_PT_VERIFY;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        if (!tsL_optfield_bool(L, 2, "mmap", 1)) flags |= TS_PT_COPY;
        if (!tsL_optfield_bool(L, 2, "verify", 1)) flags &= ~(unsigned)TS_PT_VERIFY;
    }
    const char *kind = ts_pt_sniff(path);
    ts_pickle **doc = new_doc(L);
    *doc = ts_pt_load(path, flags);
    if (!*doc) return tsL_error(L);
    push_root(L, *doc);
    ts_pickle_free(*doc);           /* the Lua tensors hold their own references */
    *doc = NULL;
    lua_pushstring(L, kind ? kind : "zip");
    return 2;
}

static int l_unpickle(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    ts_pickle **doc = new_doc(L);
    *doc = ts_pickle_load(s, n, NULL, NULL);
    if (!*doc) return tsL_error(L);
    push_root(L, *doc);
    ts_pickle_free(*doc);
    *doc = NULL;
    return 1;
}

static int l_sniff(lua_State *L)
{
    const char *kind = ts_pt_sniff(luaL_checkstring(L, 1));
    if (kind) lua_pushstring(L, kind);
    else lua_pushnil(L);
    return 1;
}

static int l_save(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_Integer zip64_at = luaL_optinteger(L, 4, 0);
    luaL_argcheck(L, zip64_at >= 0, 4, "must be >= 0");
    size_t n = (size_t)lua_rawlen(L, 2);
    if ((size_t)lua_rawlen(L, 3) != n) luaL_error(L, "torsh._pt.save: %d names but %d tensors", (int)n, (int)lua_rawlen(L, 3));
    const char **names = lua_newuserdatauv(L, (n ? n : 1) * sizeof *names, 0);     /* GC-owned */
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (lua_Integer)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "torsh._pt.save: name %d is not a string", (int)i + 1);
        names[i] = lua_tostring(L, -1);              /* anchored by the table at 2 */
        lua_pop(L, 1);
    }
    ts_tensor **ts = tsL_checktensorlist(L, 3, "torsh._pt.save", &n);
    tsL_check(L, ts_pt_save(path, names, ts, n, (uint64_t)zip64_at));
    lua_pushboolean(L, 1);
    return 1;
}

static int l_keys(lua_State *L)
{
    if (!lua_istable(L, 1) || !lua_getmetatable(L, 1)) return 0;
    lua_getfield(L, -1, "__order");
    if (!lua_istable(L, -1)) return 0;
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -2, i);
        lua_rawseti(L, -2, i);
    }
    return 1;
}

static int l_kind(lua_State *L)
{
    if (!lua_istable(L, 1) || !lua_getmetatable(L, 1)) return 0;
    lua_getfield(L, -1, "__kind");
    return lua_type(L, -1) == LUA_TSTRING ? 1 : 0;
}

static const luaL_Reg fns[] = {
    {"load", l_load}, {"unpickle", l_unpickle}, {"sniff", l_sniff}, {"save", l_save},
    {"keys", l_keys}, {"kind", l_kind},
    {NULL, NULL}
};

void tsL_open_pt(lua_State *L, int module)
{
    luaL_newmetatable(L, DOC_MT);
    lua_pushcfunction(L, doc_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_setfield(L, module, "_pt");
}
