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

#include "torsh/npz.h"

#define TSL_NPZ_MT "torsh.NpzFile"

static int z_close(lua_State *L)
{
    ts_npz **ud = luaL_checkudata(L, 1, TSL_NPZ_MT);
    ts_npz_close(*ud);
    *ud = NULL;
    return 0;
}

typedef struct npz_at_ctx { ts_npz *z; unsigned flags; } npz_at_ctx;

static ts_tensor *npz_at(void *ctx, size_t i, const char **name)
{
    npz_at_ctx *c = ctx;
    *name = ts_npz_name(c->z, i);
    return ts_npz_tensor(c->z, i, c->flags);
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
    if (!*ud) return tsL_pushfail(L);
    size_t n = ts_npz_count(*ud);
    npz_at_ctx c = { *ud, flags };
    bool ok = tsL_pushtensortable(L, n, npz_at, &c);    /* 4: tensors */
    if (ok) {
        lua_createtable(L, (int)n, 0);                   /* 5: names */
        for (size_t i = 0; i < n; i++) {
            lua_pushstring(L, ts_npz_name(*ud, i));
            lua_rawseti(L, 5, (lua_Integer)i + 1);
        }
    }
    ts_npz_close(*ud);
    *ud = NULL;
    return ok ? 2 : tsL_pushfail(L);
}

/* _npz.save(path, tensors) -> true | nil, message */
static int l_save(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_settop(L, 2);
    const char **names;
    ts_tensor **ts;
    size_t n = tsL_checknamedtensors(L, 2, "npz save", &names, &ts);
    if (ts_npz_write(path, names, ts, n)) return tsL_pushfail(L);
    lua_pushboolean(L, 1);
    return 1;
}

/* _npz.save_npy(path, tensor) -> true | nil, message */
static int l_save_npy(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    ts_tensor *t = tsL_checktensor(L, 2);
    if (ts_npy_write(path, t)) return tsL_pushfail(L);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg fns[] = {
    {"load", l_load}, {"save", l_save}, {"save_npy", l_save_npy},
    {NULL, NULL}
};

void tsL_open_npz(lua_State *L, int module)
{
    tsL_newhandletype(L, TSL_NPZ_MT, NULL, z_close);
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_setfield(L, module, "_npz");
}
