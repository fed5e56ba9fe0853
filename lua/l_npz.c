/* l_npz.c — torsh._npz, the C half of torsh.load_npz / torsh.save_npz
 * (stdlib/torsh/npz.lua): NumPy .npz archives and .npy files through
 * torsh/npz.h.
 *
 *   _npz.load(path [, {mmap = false, verify = true}])
 *       -> tensors (key -> Tensor), names (archive order) | nil, message
 *     mmap = true: stored, aligned arrays become read-only views of the
 *     mapped file (zero copy); otherwise writable heap tensors.
 *     verify = false skips the CRC-32 checks.
 *   _npz.save(path, tensors) -> true | nil, message
 *     tensors: a table key -> Tensor (written in sorted key order) or a list
 *     of {key, Tensor} pairs (written in list order); entries "<key>.npy".
 *   _npz.save_npy(path, tensor) -> true | nil, message
 * Argument mistakes raise; file problems return nil, message.
 */
#include "tsl.h"

#include <stdlib.h>
#include <string.h>

#include "torsh/npz.h"

#define TSL_NPZ_MT "torsh.NpzFile"

static int push_failure(lua_State *L)
{
    lua_pushnil(L);
    lua_pushstring(L, ts_last_error());
    return 2;
}

static int z_close(lua_State *L)
{
    ts_npz **ud = luaL_checkudata(L, 1, TSL_NPZ_MT);
    ts_npz_close(*ud);
    *ud = NULL;
    return 0;
}

/* _npz.load(path [, opts]) -> tensors, names | nil, message */
static int l_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    unsigned flags = (tsL_optfield_bool(L, 2, "mmap", 0) ? TS_NPZ_MMAP : 0) |
                     (tsL_optfield_bool(L, 2, "verify", 1) ? 0 : TS_NPZ_NO_VERIFY);
    lua_settop(L, 2);
    ts_npz **ud = lua_newuserdatauv(L, sizeof *ud, 0);   /* 3: closed by GC if we raise */
    *ud = NULL;
    luaL_setmetatable(L, TSL_NPZ_MT);
    *ud = ts_npz_open(path);
    if (!*ud) return push_failure(L);
    size_t n = ts_npz_count(*ud);
    lua_createtable(L, 0, (int)n);                       /* 4: tensors */
    lua_createtable(L, (int)n, 0);                       /* 5: names */
    for (size_t i = 0; i < n; i++) {
        ts_tensor **slot = tsL_newslot_mt(L);
        *slot = ts_npz_tensor(*ud, i, flags);
        if (!*slot) {
            ts_npz_close(*ud);
            *ud = NULL;
            return push_failure(L);
        }
        tsL_result(L, *slot);
        lua_setfield(L, 4, ts_npz_name(*ud, i));
        lua_pushstring(L, ts_npz_name(*ud, i));
        lua_rawseti(L, 5, (lua_Integer)i + 1);
    }
    ts_npz_close(*ud);
    *ud = NULL;
    return 2;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Reads the tensors argument at idx into GC-owned arrays (on the stack);
 * names are borrowed from the table (an argument, so it stays alive). */
static size_t check_tensors(lua_State *L, int idx, const char ***names_out, ts_tensor ***ts_out)
{
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
    int top = lua_gettop(L);
    if (pairs) {
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, idx, (lua_Integer)i + 1);
            if (!lua_istable(L, -1))
                luaL_error(L, "npz save: entry %d is a %s, not a {key, tensor} pair", (int)i + 1, luaL_typename(L, -1));
            lua_rawgeti(L, -1, 1);
            lua_rawgeti(L, -2, 2);
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "npz save: entry %d: the key is a %s, not a string", (int)i + 1, luaL_typename(L, -2));
            ts[i] = tsL_totensor(L, -1);
            if (!ts[i])
                luaL_error(L, "npz save: entry %d ('%s'): a %s, not a tensor", (int)i + 1, lua_tostring(L, -2),
                           luaL_typename(L, -1));
            names[i] = lua_tostring(L, -2);
            lua_settop(L, top);
        }
    } else {
        size_t i = 0;
        lua_pushnil(L);
        while (i < n && lua_next(L, idx)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "npz save: keys must be strings (found a %s key)", luaL_typename(L, -2));
            if (!luaL_testudata(L, -1, TSL_TENSOR_MT))
                luaL_error(L, "npz save: '%s' is a %s, not a tensor", lua_tostring(L, -2), luaL_typename(L, -1));
            names[i++] = lua_tostring(L, -2);
            lua_pop(L, 1);
        }
        lua_settop(L, top);
        qsort(names, n, sizeof *names, cmp_names);         /* deterministic order */
        for (size_t k = 0; k < n; k++) {
            lua_getfield(L, idx, names[k]);
            ts[k] = tsL_totensor(L, -1);                   /* raises if freed */
            lua_pop(L, 1);
        }
    }
    *names_out = names;
    *ts_out = ts;
    return n;
}

/* _npz.save(path, tensors) -> true | nil, message */
static int l_save(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_settop(L, 2);
    const char **names;
    ts_tensor **ts;
    size_t n = check_tensors(L, 2, &names, &ts);
    if (ts_npz_write(path, names, ts, n)) return push_failure(L);
    lua_pushboolean(L, 1);
    return 1;
}

/* _npz.save_npy(path, tensor) -> true | nil, message */
static int l_save_npy(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    ts_tensor *t = tsL_checktensor(L, 2);
    if (ts_npy_write(path, t)) return push_failure(L);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg fns[] = {
    {"load", l_load}, {"save", l_save}, {"save_npy", l_save_npy},
    {NULL, NULL}
};

void tsL_open_npz(lua_State *L, int module)
{
    luaL_newmetatable(L, TSL_NPZ_MT);
    lua_pushcfunction(L, z_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, z_close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_setfield(L, module, "_npz");
}
