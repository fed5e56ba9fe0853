/* l_safetensors.c — torsh._safetensors, the C half of torsh.safetensors
 * (stdlib/torsh/safetensors.lua): loads and saves .safetensors files
 * through torsh/safetensors.h.
 *
 *   _safetensors.load(path [, {mmap = true}])
 *       -> tensors (name -> Tensor), metadata (key -> string), names (data order)
 *        | nil, message
 *     mmap = true: read-only views of one mapping of the file (zero copy);
 *     mmap = false: writable heap copies.
 *   _safetensors.save(path, tensors [, metadata]) -> true | nil, message
 *     tensors: a table name -> Tensor, or a list of {name, Tensor} pairs;
 *     metadata: a table string -> string (or nil).
 *   _safetensors.open(path) -> SafetensorsFile | nil, message, with
 *     f:names() -> list (data order), f:metadata() -> table,
 *     f:info(name) -> {dtype=, shape=, data_offsets={begin, end}} | nil
 *       (dtype is the file's spelling: "F32", "BF16", "U16", ...),
 *     f:tensor(name [, copy]) -> Tensor (raises when the name is missing
 *       or torsh has no such dtype), f:close() (also __gc and __close).
 * Argument mistakes raise; file problems return nil, message.
 */
#include "tsl.h"

#include "torsh/safetensors.h"

#define TSL_STFILE_MT "torsh.SafetensorsFile"

/* ---- the handle ------------------------------------------------------------------ */

static ts_safetensors *check_file(lua_State *L, int idx)
{
    ts_safetensors **ud = luaL_checkudata(L, idx, TSL_STFILE_MT);
    if (!*ud) luaL_argerror(L, idx, "safetensors file is closed");
    return *ud;
}

static int f_close(lua_State *L)
{
    ts_safetensors **ud = luaL_checkudata(L, 1, TSL_STFILE_MT);
    ts_safetensors_close(*ud);
    *ud = NULL;
    return 0;
}

/* Pushes a closed handle, then opens path into it; returns it or NULL (the
 * message stays in ts_last_error()). The handle stays on the stack. */
static ts_safetensors **push_open(lua_State *L, const char *path)
{
    ts_safetensors **ud = lua_newuserdatauv(L, sizeof *ud, 0);
    *ud = NULL;
    luaL_setmetatable(L, TSL_STFILE_MT);
    *ud = ts_safetensors_open(path);
    return ud;
}

/* _safetensors.open(path) -> SafetensorsFile | nil, message */
static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    ts_safetensors **ud = push_open(L, path);
    return *ud ? 1 : tsL_pushfail(L);
}

static void push_names(lua_State *L, const ts_safetensors *f)
{
    size_t n = ts_safetensors_count(f);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, ts_safetensors_name(f, i));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static void push_metadata(lua_State *L, const ts_safetensors *f)
{
    size_t n = ts_safetensors_meta_count(f);
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, ts_safetensors_meta_value(f, i));
        lua_setfield(L, -2, ts_safetensors_meta_key(f, i));
    }
}

static int f_names(lua_State *L)
{
    push_names(L, check_file(L, 1));
    return 1;
}

static int f_metadata(lua_State *L)
{
    push_metadata(L, check_file(L, 1));
    return 1;
}

/* f:info(name) -> {dtype=, shape=, data_offsets=} | nil */
static int f_info(lua_State *L)
{
    ts_safetensors *f = check_file(L, 1);
    long i = ts_safetensors_find(f, luaL_checkstring(L, 2));
    if (i < 0) { lua_pushnil(L); return 1; }
    const ts_safetensors_entry *e = ts_safetensors_entry_at(f, (size_t)i);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, e->dtype_name);
    lua_setfield(L, -2, "dtype");
    lua_createtable(L, e->ndim, 0);
    for (int d = 0; d < e->ndim; d++) {
        lua_pushinteger(L, (lua_Integer)e->shape[d]);
        lua_rawseti(L, -2, d + 1);
    }
    lua_setfield(L, -2, "shape");
    lua_createtable(L, 2, 0);
    lua_pushinteger(L, (lua_Integer)e->begin);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, (lua_Integer)e->end);
    lua_rawseti(L, -2, 2);
    lua_setfield(L, -2, "data_offsets");
    return 1;
}

/* f:tensor(name [, copy]) -> Tensor */
static int f_tensor(lua_State *L)
{
    ts_safetensors *f = check_file(L, 1);
    const char *name = luaL_checkstring(L, 2);
    unsigned flags = lua_toboolean(L, 3) ? TS_SAFETENSORS_COPY : 0;
    long i = ts_safetensors_find(f, name);
    if (i < 0) return luaL_error(L, "safetensors: '%s' has no tensor named '%s'", ts_safetensors_path(f), name);
    ts_tensor **slot = tsL_newslot_mt(L);
    *slot = ts_safetensors_tensor(f, (size_t)i, flags);
    return tsL_result(L, *slot);
}

typedef struct st_at_ctx { ts_safetensors *f; unsigned flags; } st_at_ctx;

static ts_tensor *st_at(void *ctx, size_t i, const char **name)
{
    st_at_ctx *c = ctx;
    *name = ts_safetensors_name(c->f, i);
    return ts_safetensors_tensor(c->f, i, c->flags);
}

/* _safetensors.load(path [, opts]) -> tensors, metadata, names | nil, message */
static int l_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    unsigned flags = tsL_optfield_bool(L, 2, "mmap", 1) ? 0 : TS_SAFETENSORS_COPY;
    lua_settop(L, 2);
    ts_safetensors **ud = push_open(L, path);       /* 3: the handle (closed by GC if we raise) */
    if (!*ud) return tsL_pushfail(L);
    st_at_ctx c = { *ud, flags };
    bool ok = tsL_pushtensortable(L, ts_safetensors_count(*ud), st_at, &c);    /* 4: tensors */
    if (ok) {
        push_metadata(L, *ud);                      /* 5 */
        push_names(L, *ud);                         /* 6 */
    }
    ts_safetensors_close(*ud);                      /* the tensors keep the mapping alive */
    *ud = NULL;
    return ok ? 3 : tsL_pushfail(L);
}

/* ---- saving ------------------------------------------------------------------------ */

static size_t check_metadata(lua_State *L, int idx, const char ***keys_out, const char ***values_out)
{
    size_t n = 0;
    if (lua_isnoneornil(L, idx)) {
        *keys_out = *values_out = NULL;
        return 0;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) { n++; lua_pop(L, 1); }
    const char **keys = lua_newuserdatauv(L, (n ? n : 1) * sizeof *keys, 0);
    const char **values = lua_newuserdatauv(L, (n ? n : 1) * sizeof *values, 0);
    size_t i = 0;
    lua_pushnil(L);
    while (i < n && lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "safetensors save: metadata keys must be strings (found a %s key)", luaL_typename(L, -2));
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "safetensors save: metadata value of '%s' must be a string (got a %s)", lua_tostring(L, -2), luaL_typename(L, -1));
        keys[i] = lua_tostring(L, -2);
        values[i++] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    *keys_out = keys;
    *values_out = values;
    return n;
}

/* _safetensors.save(path, tensors [, metadata]) -> true | nil, message */
static int l_save(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_settop(L, 3);
    const char **names, **mk, **mv;
    ts_tensor **ts;
    size_t n = tsL_checknamedtensors(L, 2, "safetensors save", &names, &ts);
    size_t n_meta = check_metadata(L, 3, &mk, &mv);
    if (ts_safetensors_write(path, names, ts, n, mk, mv, n_meta)) return tsL_pushfail(L);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg file_methods[] = {
    {"names", f_names}, {"metadata", f_metadata}, {"info", f_info}, {"tensor", f_tensor}, {"close", f_close},
    {NULL, NULL}
};

static const luaL_Reg fns[] = {
    {"load", l_load}, {"save", l_save}, {"open", l_open},
    {NULL, NULL}
};

void tsL_open_safetensors(lua_State *L, int module)
{
    tsL_newhandletype(L, TSL_STFILE_MT, file_methods, f_close);
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_setfield(L, module, "_safetensors");
}
