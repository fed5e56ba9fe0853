/* l_io.c — torsh._io, the C half of torsh.save / torsh.load
 * (stdlib/torsh/io.lua): lays out and checksums tensors, writes a .torsh
 * file atomically, and opens one as a TorshFile handle that hands out the
 * JSON header and mmap-backed (or copied) tensors. Uses torsh/torsh_file.h.
 *
 *   _io.plan({t1, t2, ...})            -> {{offset=, nbytes=, crc32=}, ...}
 *   _io.write(path, json, {t1, ...})   -> true | nil, message
 *   _io.open(path)                     -> TorshFile | nil, message
 *   _io.crc32(t)                       -> integer
 *   _io.crc32(s [, crc])               -> integer (zlib's, continuing crc)
 *   _io.write_tensor(fh, t)            -> nbytes, crc32 (streams t's bytes, row-major,
 *                                         into the Lua file handle fh; one pass)
 *   _io.fsync(fh | path)               -> true | nil, message (a folder path is fine)
 *   f:json() -> string ; f:info() -> {major=, minor=, flags=, json_len=,
 *   data_offset=, size=} ; f:tensor(entry [, verify [, copy]]) -> Tensor,
 *   where entry is a decoded tensor-table row {name=, dtype=, shape=,
 *   offset=, nbytes= [, crc32=]} ; f:close() (also __gc and __close).
 */
#include "tsl.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define TSL_TORSHFILE_MT "torsh.TorshFile"

/* ---- writing ------------------------------------------------------------------ */

static ts_torsh_entry *new_entries(lua_State *L, size_t n)
{
    return lua_newuserdatauv(L, (n ? n : 1) * sizeof(ts_torsh_entry), 0);
}

/* _io.plan(tensors) -> list of {offset=, nbytes=, crc32=} */
static int l_plan(lua_State *L)
{
    size_t n;
    ts_tensor **ts = tsL_checktensorlist(L, 1, "torsh._io", &n);
    ts_torsh_entry *es = new_entries(L, n);
    tsL_check(L, ts_torsh_plan(ts, n, es, true));
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, (lua_Integer)es[i].offset); lua_setfield(L, -2, "offset");
        lua_pushinteger(L, (lua_Integer)es[i].nbytes); lua_setfield(L, -2, "nbytes");
        lua_pushinteger(L, (lua_Integer)es[i].crc32); lua_setfield(L, -2, "crc32");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* _io.write(path, json, tensors) -> true | nil, message */
static int l_write(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t json_len;
    const char *json = luaL_checklstring(L, 2, &json_len);
    size_t n;
    ts_tensor **ts = tsL_checktensorlist(L, 3, "torsh._io", &n);
    ts_torsh_entry *es = new_entries(L, n);
    if (ts_torsh_plan(ts, n, es, false) || ts_torsh_write(path, json, json_len, ts, es, n)) return tsL_pushfail(L);
    lua_pushboolean(L, 1);
    return 1;
}

/* _io.crc32(t) -> CRC-32 of a tensor's bytes; _io.crc32(s [, crc]) -> of a string */
static int l_crc32(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, 1, &n);
        lua_Integer prev = luaL_optinteger(L, 2, 0);
        luaL_argcheck(L, prev >= 0 && prev <= (lua_Integer)UINT32_MAX, 2, "not a CRC-32 value");
        lua_pushinteger(L, (lua_Integer)crc32_z((uLong)prev, (const Bytef *)s, n));
        return 1;
    }
    uint32_t crc;
    tsL_check(L, ts_torsh_crc32(tsL_checktensor(L, 1), &crc));
    lua_pushinteger(L, (lua_Integer)crc);
    return 1;
}

#define WRITE_CHUNK ((size_t)1 << 20)   /* checksummed while in cache, then written */

static FILE *check_stream(lua_State *L, int idx)
{
    luaL_Stream *s = luaL_checkudata(L, idx, LUA_FILEHANDLE);
    if (!s->closef || !s->f) luaL_argerror(L, idx, "file is closed");
    return s->f;
}

/* _io.write_tensor(fh, t) -> nbytes, crc32 | nil, message. A non-contiguous
 * t is copied once into a contiguous tensor (released before returning). */
static int l_write_tensor(lua_State *L)
{
    FILE *f = check_stream(L, 1);
    ts_tensor *t = tsL_checktensor(L, 2);
    ts_tensor **slot = tsL_newslot_mt(L);    /* owns the contiguous copy until GC / below */
    *slot = ts_contiguous(t);
    if (!*slot) return tsL_error(L);
    const unsigned char *p = ts_tensor_data(*slot);
    size_t n = ts_tensor_nbytes(*slot);
    uLong crc = crc32_z(0L, Z_NULL, 0);
    bool ok = true;
    errno = 0;
    for (size_t off = 0; off < n && ok; off += WRITE_CHUNK) {
        size_t k = n - off < WRITE_CHUNK ? n - off : WRITE_CHUNK;
        crc = crc32_z(crc, p + off, k);
        ok = fwrite(p + off, 1, k, f) == k;
    }
    ts_tensor_release(*slot);
    *slot = NULL;
    if (!ok) return luaL_fileresult(L, 0, NULL);
    lua_pushinteger(L, (lua_Integer)n);
    lua_pushinteger(L, (lua_Integer)crc);
    return 2;
}

/* _io.fsync(fh | path) -> true | nil, message: flushes and syncs an open
 * Lua file, or syncs the file or folder at path (folders on file systems
 * that cannot sync them count as synced). */
static int l_fsync(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TSTRING) {
        const char *path = lua_tostring(L, 1);
        int fd = open(path, O_RDONLY);
        if (fd < 0) return luaL_fileresult(L, 0, path);
        int rc = fsync(fd), e = errno;
        close(fd);
        if (rc != 0 && e != EINVAL && e != EROFS && e != ENOTSUP) { errno = e; return luaL_fileresult(L, 0, path); }
        lua_pushboolean(L, 1);
        return 1;
    }
    FILE *f = check_stream(L, 1);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) return luaL_fileresult(L, 0, NULL);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- the TorshFile handle ------------------------------------------------------- */

static ts_torsh_file *check_file(lua_State *L, int idx)
{
    ts_torsh_file **ud = luaL_checkudata(L, idx, TSL_TORSHFILE_MT);
    if (!*ud) luaL_argerror(L, idx, "torsh file is closed");
    return *ud;
}

static int f_close(lua_State *L)
{
    ts_torsh_file **ud = luaL_checkudata(L, 1, TSL_TORSHFILE_MT);
    ts_torsh_close(*ud);
    *ud = NULL;
    return 0;
}

/* _io.open(path) -> TorshFile | nil, message */
static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    ts_torsh_file **ud = lua_newuserdatauv(L, sizeof *ud, 0);   /* closed before it is opened */
    *ud = NULL;
    luaL_setmetatable(L, TSL_TORSHFILE_MT);
    *ud = ts_torsh_open(path);
    return *ud ? 1 : tsL_pushfail(L);
}

static int f_json(lua_State *L)
{
    size_t n;
    const char *json = ts_torsh_json(check_file(L, 1), &n);
    lua_pushlstring(L, json, n);
    return 1;
}

static int f_info(lua_State *L)
{
    ts_torsh_info in = ts_torsh_get_info(check_file(L, 1));
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, in.major); lua_setfield(L, -2, "major");
    lua_pushinteger(L, in.minor); lua_setfield(L, -2, "minor");
    lua_pushinteger(L, in.flags); lua_setfield(L, -2, "flags");
    lua_pushinteger(L, (lua_Integer)in.json_len); lua_setfield(L, -2, "json_len");
    lua_pushinteger(L, (lua_Integer)in.data_offset); lua_setfield(L, -2, "data_offset");
    lua_pushinteger(L, (lua_Integer)in.file_size); lua_setfield(L, -2, "size");
    return 1;
}

/* A non-negative integer field of a decoded JSON row (cjson gives floats);
 * returns false when missing and `optional`. Raises naming file and tensor. */
static bool entry_uint(lua_State *L, int idx, const char *field, uint64_t max, bool optional,
                       uint64_t *out, const char *path, const char *name)
{
    lua_getfield(L, idx, field);
    bool present = !lua_isnil(L, -1);
    if (!present && optional) { lua_pop(L, 1); return false; }
    double v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
    if (!(v >= 0 && v <= (double)max && v == floor(v)))
        luaL_error(L, "'%s': tensor '%s': field '%s' must be an integer in [0, %I]", path, name, field, (lua_Integer)max);
    *out = (uint64_t)v;
    lua_pop(L, 1);
    return true;
}

static ts_dtype entry_dtype(lua_State *L, int idx, const char *path, const char *name)
{
    lua_getfield(L, idx, "dtype");
    const char *s = lua_tostring(L, -1);
    for (int d = 0; s && d < TS_DTYPE_COUNT; d++)
        if (strcmp(s, ts_dtype_name((ts_dtype)d)) == 0) { lua_pop(L, 1); return (ts_dtype)d; }
    luaL_error(L, "'%s': tensor '%s': unknown dtype '%s'", path, name, s ? s : luaL_typename(L, -1));
    return TS_F32;
}

static int entry_shape(lua_State *L, int idx, int64_t *shape, const char *path, const char *name)
{
    lua_getfield(L, idx, "shape");
    if (!lua_istable(L, -1)) luaL_error(L, "'%s': tensor '%s': field 'shape' must be a list of sizes", path, name);
    lua_Integer nd = (lua_Integer)lua_rawlen(L, -1);
    if (nd > TS_MAX_DIMS) luaL_error(L, "'%s': tensor '%s': %I dims (at most %d)", path, name, nd, TS_MAX_DIMS);
    for (int i = 0; i < (int)nd; i++) {
        lua_rawgeti(L, -1, i + 1);
        double v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
        if (!(v >= 0 && v <= 9007199254740992.0 && v == floor(v)))
            luaL_error(L, "'%s': tensor '%s': shape entry %d is not a size", path, name, i + 1);
        shape[i] = (int64_t)v;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return (int)nd;
}

/* f:tensor(entry [, verify [, copy]]) -> Tensor */
static int f_tensor(lua_State *L)
{
    ts_torsh_file *f = check_file(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    unsigned flags = (lua_toboolean(L, 3) ? TS_TORSH_VERIFY : 0) | (lua_toboolean(L, 4) ? TS_TORSH_COPY : 0);
    const char *path = ts_torsh_path(f);
    ts_torsh_entry e;
    memset(&e, 0, sizeof e);
    lua_getfield(L, 2, "name");
    e.name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";   /* stays on the stack */
    e.dtype = entry_dtype(L, 2, path, e.name);
    e.ndim = entry_shape(L, 2, e.shape, path, e.name);
    entry_uint(L, 2, "offset", (uint64_t)1 << 53, false, &e.offset, path, e.name);
    entry_uint(L, 2, "nbytes", (uint64_t)1 << 53, false, &e.nbytes, path, e.name);
    uint64_t crc = 0;
    e.has_crc = entry_uint(L, 2, "crc32", UINT32_MAX, true, &crc, path, e.name);
    e.crc32 = (uint32_t)crc;
    ts_tensor **slot = tsL_newslot_mt(L);
    *slot = ts_torsh_tensor(f, &e, flags);
    return tsL_result(L, *slot);
}

static const luaL_Reg file_methods[] = {
    {"json", f_json}, {"info", f_info}, {"tensor", f_tensor}, {"close", f_close},
    {NULL, NULL}
};

static const luaL_Reg fns[] = {
    {"plan", l_plan}, {"write", l_write}, {"open", l_open}, {"crc32", l_crc32},
    {"write_tensor", l_write_tensor}, {"fsync", l_fsync},
    {NULL, NULL}
};

void tsL_open_io(lua_State *L, int module)
{
    tsL_newhandletype(L, TSL_TORSHFILE_MT, file_methods, f_close);
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_setfield(L, module, "_io");
}
