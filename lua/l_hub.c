/* l_hub.c — the binding of core/hub (torsh/hub.h) for the Lua half of the
 * model hub (stdlib/torsh/hub.lua). It registers `require "torsh.hub.core"`
 * (SHA-256, locks, download/fetch/head/upload, the few file operations the
 * cache needs) and makes `torsh.hub` a table that loads stdlib/torsh/hub.lua
 * on first use. Expected failures (network, files) return nil, message
 * [, result]; bad arguments raise. A Lua progress callback runs under
 * pcall: an error in it (Ctrl-C included) cancels the transfer, which ends
 * cleanly in C, and is raised again afterwards. */
#include "tsl.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOCK_MT "torsh.hub.Lock"
#define BOX_MT "torsh.hub.Box"

/* ---- helpers ------------------------------------------------------------------ */

/* A userdata owning one malloc'ed block: pushed empty before the C call,
 * so a Lua error while the result is turned into Lua values cannot leak it. */
static void **push_box(lua_State *L)
{
    void **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, BOX_MT);
    return box;
}

static int box_gc(lua_State *L)
{
    void **box = luaL_checkudata(L, 1, BOX_MT);
    free(*box);
    *box = NULL;
    return 0;
}

static const char *opt_string(lua_State *L, int idx, const char *field)
{
    if (lua_type(L, idx) != LUA_TTABLE) return NULL;
    lua_getfield(L, idx, field);        /* the table on the stack keeps the string alive */
    const char *s = lua_isnil(L, -1) ? NULL : lua_tostring(L, -1);
    if (!s && !lua_isnil(L, -1)) luaL_error(L, "hub: option '%s' must be a string", field);
    lua_pop(L, 1);
    return s;
}

static double opt_number(lua_State *L, int idx, const char *field, double def)
{
    if (lua_type(L, idx) != LUA_TTABLE) return def;
    return tsL_optfield_number(L, idx, field, def);
}

/* Progress: calls the Lua function at fn_idx under pcall. */
typedef struct lprog {
    lua_State *L;
    int fn_idx;
    int failed;                 /* the error object is then on top of the stack */
} lprog;

static int call_progress(int64_t done, int64_t total, void *user)
{
    lprog *p = user;
    lua_State *L = p->L;
    if (p->failed) return 1;
    if (!lua_checkstack(L, 4)) return 0;
    lua_pushvalue(L, p->fn_idx);
    lua_pushinteger(L, (lua_Integer)done);
    lua_pushinteger(L, (lua_Integer)total);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        p->failed = 1;                  /* keep the error object for later */
        return 1;
    }
    return 0;
}

/* Reads the options shared by every transfer from the table at idx. */
static void read_options(lua_State *L, int idx, ts_hub_options *o, lprog *prog)
{
    memset(o, 0, sizeof *o);
    o->token = opt_string(L, idx, "token");
    o->user_agent = opt_string(L, idx, "user_agent");
    o->connect_timeout_s = opt_number(L, idx, "connect_timeout", 0);
    o->low_speed_time_s = opt_number(L, idx, "low_speed_time", 0);
    o->low_speed_bytes = (int64_t)opt_number(L, idx, "low_speed_bytes", 0);
    o->timeout_s = opt_number(L, idx, "timeout", 0);
    o->tries = (int)opt_number(L, idx, "tries", 0);
    o->backoff_s = opt_number(L, idx, "backoff", 0);
    o->max_backoff_s = opt_number(L, idx, "max_backoff", 0);
    prog->L = L;
    prog->failed = 0;
    prog->fn_idx = 0;
    if (lua_type(L, idx) == LUA_TTABLE) {
        lua_getfield(L, idx, "progress");       /* stays on the stack during the call */
        if (lua_isfunction(L, -1)) {
            prog->fn_idx = lua_gettop(L);
            o->progress = call_progress;
            o->progress_user = prog;
        } else if (!lua_isnil(L, -1)) {
            luaL_error(L, "hub: option 'progress' must be a function");
        }
    }
}

static void push_result(lua_State *L, const ts_hub_result *r)
{
    lua_createtable(L, 0, 12);
    if (r->path[0]) { lua_pushstring(L, r->path); lua_setfield(L, -2, "path"); }
    if (r->sha256[0]) { lua_pushstring(L, r->sha256); lua_setfield(L, -2, "sha256"); }
    if (r->etag[0]) { lua_pushstring(L, r->etag); lua_setfield(L, -2, "etag"); }
    if (r->reason[0]) { lua_pushstring(L, r->reason); lua_setfield(L, -2, "reason"); }
    lua_pushinteger(L, (lua_Integer)r->size); lua_setfield(L, -2, "size");
    lua_pushinteger(L, (lua_Integer)r->received); lua_setfield(L, -2, "received");
    lua_pushinteger(L, (lua_Integer)r->resumed_from); lua_setfield(L, -2, "resumed_from");
    lua_pushinteger(L, r->attempts); lua_setfield(L, -2, "attempts");
    lua_pushboolean(L, r->restarted); lua_setfield(L, -2, "restarted");
    lua_pushinteger(L, r->http_status); lua_setfield(L, -2, "http_status");
    lua_pushnumber(L, r->seconds); lua_setfield(L, -2, "seconds");
}

/* After a transfer: re-raise a progress callback's error, else push
 * result (ok) or nil, message, result. */
static int finish(lua_State *L, ts_status st, const lprog *prog, const ts_hub_result *r, int nok_extra)
{
    if (prog->failed) return lua_error(L);
    if (st != TS_OK) {
        lua_pushnil(L);
        lua_pushstring(L, ts_last_error());
        push_result(L, r);
        return 3;
    }
    push_result(L, r);
    return 1 + nok_extra;
}

/* ---- SHA-256 ----------------------------------------------------------------------- */

/* core.sha256(string) -> hex */
static int l_sha256(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char hex[65];
    ts_sha256_hex_of(s, n, hex);
    lua_pushstring(L, hex);
    return 1;
}

/* core.sha256_file(path) -> hex, size | nil, message */
static int l_sha256_file(lua_State *L)
{
    char hex[65];
    int64_t size = 0;
    if (ts_sha256_file(luaL_checkstring(L, 1), hex, &size) != TS_OK) return tsL_pushfail(L);
    lua_pushstring(L, hex);
    lua_pushinteger(L, (lua_Integer)size);
    return 2;
}

static int l_sha256_impl(lua_State *L) { lua_pushstring(L, ts_sha256_impl()); return 1; }
static int l_sha256_select(lua_State *L) { ts_sha256_select(lua_toboolean(L, 1)); return 0; }

/* ---- locks ---------------------------------------------------------------------------- */

static int lock_release(lua_State *L)
{
    ts_hub_lock **slot = luaL_checkudata(L, 1, LOCK_MT);
    ts_hub_lock_release(*slot);
    *slot = NULL;
    return 0;
}

/* core.lock(path [, timeout_s]) -> lock, took_over | nil, message.
 * timeout: seconds to wait (0: try once; negative: forever; default 0). */
static int l_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    double timeout = luaL_optnumber(L, 2, 0);
    ts_hub_lock **slot = lua_newuserdatauv(L, sizeof *slot, 0);
    *slot = NULL;
    luaL_setmetatable(L, LOCK_MT);
    bool took_over = false;
    *slot = ts_hub_lock_acquire(path, timeout, &took_over);
    if (!*slot) return tsL_pushfail(L);
    lua_pushboolean(L, took_over);
    return 2;
}

/* core.lock_holder(path) -> "pid host" or "" */
static int l_lock_holder(lua_State *L)
{
    char buf[320];
    ts_hub_lock_holder(luaL_checkstring(L, 1), buf, sizeof buf);
    lua_pushstring(L, buf);
    return 1;
}

/* ---- transfers ------------------------------------------------------------------------ */

/* core.download{url=, dest= | dest_dir= + partial=, sha256=, size=, no_resume=,
 *   token=, connect_timeout=, low_speed_time=, timeout=, tries=, backoff=,
 *   progress=function(done, total)} -> result | nil, message, result */
static int l_download(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    ts_hub_request rq;
    memset(&rq, 0, sizeof rq);
    lprog prog;
    rq.url = opt_string(L, 1, "url");
    rq.dest = opt_string(L, 1, "dest");
    rq.dest_dir = opt_string(L, 1, "dest_dir");
    rq.partial = opt_string(L, 1, "partial");
    rq.sha256 = opt_string(L, 1, "sha256");
    rq.size = (int64_t)opt_number(L, 1, "size", 0);
    rq.no_resume = tsL_optfield_bool(L, 1, "no_resume", 0);
    if (!rq.url) luaL_argerror(L, 1, "download: 'url' is required");
    read_options(L, 1, &rq.opt, &prog);
    ts_hub_result res;
    ts_status st = ts_hub_download(&rq, &res);
    return finish(L, st, &prog, &res, 0);
}

/* core.fetch(url [, opts]) -> body, result | nil, message, result
 * opts: the transfer options plus max_bytes. */
static int l_fetch(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    ts_hub_options o;
    lprog prog;
    read_options(L, 2, &o, &prog);
    int64_t max = (int64_t)opt_number(L, 2, "max_bytes", 0);
    void **box = push_box(L);
    int box_idx = lua_gettop(L);
    size_t len = 0;
    ts_hub_result res;
    ts_status st = ts_hub_fetch(url, &o, max, (char **)box, &len, &res);
    if (prog.failed) return lua_error(L);
    if (st != TS_OK) return finish(L, st, &prog, &res, 0);
    lua_pushlstring(L, *box, len);
    free(*box);
    *box = NULL;
    lua_remove(L, box_idx);
    push_result(L, &res);
    return 2;
}

/* core.head(url [, opts]) -> result | nil, message, result */
static int l_head(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    ts_hub_options o;
    lprog prog;
    read_options(L, 2, &o, &prog);
    ts_hub_result res;
    ts_status st = ts_hub_head(url, &o, &res);
    return finish(L, st, &prog, &res, 0);
}

/* core.upload(path, url [, opts]) -> result | nil, message, result */
static int l_upload(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *url = luaL_checkstring(L, 2);
    ts_hub_options o;
    lprog prog;
    read_options(L, 3, &o, &prog);
    ts_hub_result res;
    ts_status st = ts_hub_upload(path, url, &o, &res);
    return finish(L, st, &prog, &res, 0);
}

/* core.redact(url) -> url with secrets masked */
static int l_redact(lua_State *L)
{
    char buf[2048];
    lua_pushstring(L, ts_hub_redact_url(luaL_checkstring(L, 1), buf, sizeof buf));
    return 1;
}

static int l_offline(lua_State *L) { lua_pushboolean(L, ts_hub_offline()); return 1; }

/* ---- files ---------------------------------------------------------------------------- */

static const char *ftype_name(ts_hub_ftype t)
{
    static const char *const names[] = { "none", "file", "dir", "link", "other" };
    return names[t];
}

/* core.stat(path) -> {type=, size=, mtime= [, target=]} or nil when missing */
static int l_stat(lua_State *L)
{
    ts_hub_stat st;
    if (ts_hub_stat_path(luaL_checkstring(L, 1), &st) != TS_OK) return tsL_pushfail(L);
    if (st.type == TS_HUB_NONE) { lua_pushnil(L); return 1; }
    lua_createtable(L, 0, 4);
    lua_pushstring(L, ftype_name(st.type)); lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)st.size); lua_setfield(L, -2, "size");
    lua_pushnumber(L, st.mtime); lua_setfield(L, -2, "mtime");
    if (st.type == TS_HUB_LINK) { lua_pushstring(L, ftype_name(st.target)); lua_setfield(L, -2, "target"); }
    return 1;
}

/* core.listdir(path) -> sorted names | nil, message */
static int l_listdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    void **box = push_box(L);
    size_t n = 0;
    *box = ts_hub_listdir(path, &n);
    if (!*box) return tsL_pushfail(L);
    lua_createtable(L, (int)n, 0);
    const char *p = *box;
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, p);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
        p += strlen(p) + 1;
    }
    return 1;
}

static int status_result(lua_State *L, ts_status st)
{
    if (st != TS_OK) return tsL_pushfail(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_mkdirs(lua_State *L) { return status_result(L, ts_hub_mkdirs(luaL_checkstring(L, 1))); }
static int l_symlink(lua_State *L) { return status_result(L, ts_hub_symlink(luaL_checkstring(L, 1), luaL_checkstring(L, 2))); }
static int l_remove_tree(lua_State *L) { return status_result(L, ts_hub_remove_tree(luaL_checkstring(L, 1))); }
static int l_copy_file(lua_State *L) { return status_result(L, ts_hub_copy_file(luaL_checkstring(L, 1), luaL_checkstring(L, 2))); }
static int l_fsync_dir(lua_State *L) { return status_result(L, ts_hub_fsync_dir(luaL_checkstring(L, 1))); }

static int l_readlink(lua_State *L)
{
    char buf[4096];
    if (ts_hub_readlink(luaL_checkstring(L, 1), buf, sizeof buf) != TS_OK) return tsL_pushfail(L);
    lua_pushstring(L, buf);
    return 1;
}

/* core.isatty(fd) -> whether fd (2 = stderr) is a terminal */
static int l_isatty(lua_State *L) { lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1))); return 1; }
static int l_getpid(lua_State *L) { lua_pushinteger(L, (lua_Integer)getpid()); return 1; }

static const luaL_Reg core_fns[] = {
    {"sha256", l_sha256}, {"sha256_file", l_sha256_file}, {"sha256_impl", l_sha256_impl},
    {"sha256_select", l_sha256_select},
    {"lock", l_lock}, {"lock_holder", l_lock_holder},
    {"download", l_download}, {"fetch", l_fetch}, {"head", l_head}, {"upload", l_upload},
    {"redact", l_redact}, {"offline", l_offline},
    {"stat", l_stat}, {"listdir", l_listdir}, {"mkdirs", l_mkdirs}, {"symlink", l_symlink},
    {"readlink", l_readlink}, {"remove_tree", l_remove_tree}, {"copy_file", l_copy_file},
    {"fsync_dir", l_fsync_dir}, {"isatty", l_isatty}, {"getpid", l_getpid},
    {NULL, NULL}
};

/* torsh.hub.X before stdlib/torsh/hub.lua is loaded: load it, then look X up. */
static int hub_index(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "torsh.hub");
    lua_call(L, 1, 1);
    lua_pushvalue(L, 2);
    lua_gettable(L, -2);
    return 1;
}

void tsL_open_hub(lua_State *L, int module)
{
    static const luaL_Reg lock_methods[] = { {"release", lock_release}, {NULL, NULL} };
    tsL_newhandletype(L, LOCK_MT, lock_methods, lock_release);
    lua_pop(L, 1);
    luaL_newmetatable(L, BOX_MT);
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    luaL_newlib(L, core_fns);
    lua_setfield(L, -2, "torsh.hub.core");
    lua_pop(L, 1);

    lua_newtable(L);                      /* torsh.hub: filled by hub.lua on first use */
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, hub_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setfield(L, module, "hub");
}
