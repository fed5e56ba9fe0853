/* l_data.c — torsh._data, the C half of torsh.data (stdlib/torsh/data.lua
 * builds the user-facing API on it):
 *   idx_read(path), npy_read(path) -> tensor | nil, message
 *   cifar10_read(path) -> images, labels | nil, message
 *   Loader(samples, labels|nil, order|nil, opts) -> a Loader userdata with
 *     next() -> x, y (nil at the end), position(), len() / #, close()
 *   shuffle(seed, epoch, n), uniforms(seed, epoch, position, step, n),
 *   noise(seed, epoch, position, step, shape), transform(sample, steps,
 *     seed, epoch, position): the loader's randomness and transforms, so
 *     the Lua path makes the same decisions
 *   channel_stats(images) -> means, stds (Lua lists)
 *   listdir(path) -> sorted list of {name=, dir=} | nil, message
 * Sample positions are 0-based (data); `step` numbers a transform in its
 * pipeline from 1, as Lua lists do. File readers return nil, message for
 * missing or malformed files (expected failures) and raise on bad arguments.
 *
 * A Loader userdata holds a ts_loader* that starts NULL and is filled after
 * all arguments were read, so a Lua error never strands threads; __gc and
 * __close are the same idempotent close, which joins the workers. */
#include "tsl.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TSL_LOADER_MT "torsh.data.Loader"

/* Result of a reader: the filled slot at the top, or nil, message. */
static int reader_result(lua_State *L, ts_tensor *t)
{
    if (!t) {
        lua_pop(L, 1);
        return tsL_pushfail(L);
    }
    return tsL_result(L, t);
}

static int l_idx_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    ts_tensor **slot = tsL_newslot_mt(L);
    *slot = ts_idx_read(path);
    return reader_result(L, *slot);
}

static int l_npy_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    ts_tensor **slot = tsL_newslot_mt(L);
    *slot = ts_npy_read(path);
    return reader_result(L, *slot);
}

static int l_cifar10_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    ts_tensor **images = tsL_newslot_mt(L), **labels = tsL_newslot_mt(L);
    ts_tensor *im, *lb;
    if (ts_cifar10_read(path, &im, &lb) != TS_OK) {
        lua_pop(L, 2);
        return tsL_pushfail(L);
    }
    *images = im;
    *labels = lb;
    tsL_account(L, ts_tensor_nbytes(im) + ts_tensor_nbytes(lb));
    return 2;
}

/* ---- transform steps from Lua tables ------------------------------------------------------- */

static double field_number(lua_State *L, int idx, const char *name, double def)
{
    return tsL_optfield_number(L, idx, name, def);
}

/* A field holding a number or a list of 1..max numbers; returns the count. */
static int field_numbers(lua_State *L, int idx, const char *name, double *out, int max, int step)
{
    lua_getfield(L, idx, name);
    int n = 0;
    if (lua_isnumber(L, -1)) {
        out[n++] = lua_tonumber(L, -1);
    } else if (lua_istable(L, -1)) {
        n = (int)lua_rawlen(L, -1);
        if (n < 1 || n > max) luaL_error(L, "transform %d: '%s' needs 1 to %d numbers, got %d", step, name, max, n);
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, -1, i + 1);
            if (!lua_isnumber(L, -1)) luaL_error(L, "transform %d: '%s' entries must be numbers", step, name);
            out[i] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "transform %d: '%s' must be a number or a list of numbers", step, name);
    }
    lua_pop(L, 1);
    return n;
}

/* A (lo, hi) pair field with defaults. */
static void field_pair(lua_State *L, int idx, const char *name, double *lo, double *hi, int step)
{
    double v[2];
    int n = field_numbers(L, idx, name, v, 2, step);
    if (n == 1) luaL_error(L, "transform %d: '%s' needs two numbers {lo, hi}", step, name);
    if (n == 2) { *lo = v[0]; *hi = v[1]; }
}

static void read_step(lua_State *L, int idx, int step, ts_transform *t)
{
    memset(t, 0, sizeof *t);
    if (!lua_istable(L, idx)) luaL_error(L, "transform %d: expected a table", step);
    lua_getfield(L, idx, "kind");
    const char *kind = lua_tostring(L, -1);
    int k = 0;
    while (k < TS_TF_KINDS && !(kind && strcmp(kind, ts_transform_name((ts_transform_kind)k)) == 0)) k++;
    if (k == TS_TF_KINDS)
        luaL_error(L, "transform %d: unknown kind '%s' (to_float, normalize, random_crop, random_hflip, random_erasing)",
                   step, kind ? kind : "nil");
    lua_pop(L, 1);
    t->kind = (ts_transform_kind)k;
    switch (t->kind) {
    case TS_TF_TO_FLOAT:
        t->divisor = field_number(L, idx, "divisor", 255);
        t->add_channel = tsL_optfield_bool(L, idx, "add_channel", 0);
        break;
    case TS_TF_NORMALIZE: {
        int nm = field_numbers(L, idx, "mean", t->mean, TS_DATA_MAX_CHANNELS, step);
        int ns = field_numbers(L, idx, "std", t->std, TS_DATA_MAX_CHANNELS, step);
        if (nm == 0 || ns == 0) luaL_error(L, "transform %d: normalize needs mean and std", step);
        if (nm != ns && nm != 1 && ns != 1)
            luaL_error(L, "transform %d: normalize has %d means and %d stds", step, nm, ns);
        t->nchannels = nm > ns ? nm : ns;
        for (int c = 1; c < t->nchannels; c++) {
            if (nm == 1) t->mean[c] = t->mean[0];
            if (ns == 1) t->std[c] = t->std[0];
        }
        break;
    }
    case TS_TF_RANDOM_CROP: {
        double size[2];
        int n = field_numbers(L, idx, "size", size, 2, step);
        if (n == 0) luaL_error(L, "transform %d: random_crop needs a size", step);
        t->size_h = (int64_t)size[0];
        t->size_w = (int64_t)size[n - 1];
        t->padding = (int64_t)field_number(L, idx, "padding", 0);
        t->fill = field_number(L, idx, "fill", 0);
        break;
    }
    case TS_TF_RANDOM_HFLIP:
        t->p = field_number(L, idx, "p", 0.5);
        break;
    case TS_TF_RANDOM_ERASING:
        t->p = field_number(L, idx, "p", 0.5);
        t->scale_lo = 0.02, t->scale_hi = 0.33, t->ratio_lo = 0.3, t->ratio_hi = 3.3;
        field_pair(L, idx, "scale", &t->scale_lo, &t->scale_hi, step);
        field_pair(L, idx, "ratio", &t->ratio_lo, &t->ratio_hi, step);
        lua_getfield(L, idx, "value");
        if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "random") == 0) t->random_value = true;
        else if (!lua_isnil(L, -1) && !lua_isnumber(L, -1))
            luaL_error(L, "transform %d: random_erasing value must be a number or \"random\"", step);
        else t->value = lua_tonumber(L, -1);
        lua_pop(L, 1);
        break;
    default:
        break;
    }
}

/* Reads a list of steps at idx (nil: none) into tf; returns the count. */
static int read_steps(lua_State *L, int idx, ts_transform *tf)
{
    if (lua_isnoneornil(L, idx)) return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    int n = (int)lua_rawlen(L, idx);
    if (n > TS_DATA_MAX_TRANSFORMS) luaL_error(L, "transforms: at most %d steps, got %d", TS_DATA_MAX_TRANSFORMS, n);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        read_step(L, lua_gettop(L), i + 1, &tf[i]);
        lua_pop(L, 1);
    }
    return n;
}

static uint64_t check_seed(lua_State *L, int idx) { return (uint64_t)luaL_checkinteger(L, idx); }

/* step number (1-based) -> 0-based transform index */
static int check_step(lua_State *L, int idx)
{
    lua_Integer s = luaL_checkinteger(L, idx);
    luaL_argcheck(L, s >= 1 && s <= TS_DATA_MAX_TRANSFORMS, idx, "step must be 1..16");
    return (int)s - 1;
}

/* shuffle(seed, epoch, n) -> i64 permutation of 0..n-1 */
static int l_shuffle(lua_State *L)
{
    uint64_t seed = check_seed(L, 1);
    lua_Integer epoch = luaL_checkinteger(L, 2), n = luaL_checkinteger(L, 3);
    ts_tensor **slot = tsL_newslot_mt(L);
    *slot = ts_data_shuffle(seed, epoch, n);
    return tsL_result(L, *slot);
}

/* uniforms(seed, epoch, position, step, n) -> list of n numbers in [0, 1) */
static int l_uniforms(lua_State *L)
{
    uint64_t seed = check_seed(L, 1);
    lua_Integer epoch = luaL_checkinteger(L, 2), pos = luaL_checkinteger(L, 3);
    int tindex = check_step(L, 4);
    lua_Integer n = luaL_checkinteger(L, 5);
    luaL_argcheck(L, n >= 0 && n <= 4096, 5, "count must be 0..4096");
    double u[4096];
    ts_data_uniforms(seed, epoch, pos, tindex, 0, (int)n, u);
    lua_createtable(L, (int)n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushnumber(L, u[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* noise(seed, epoch, position, step, shape) -> f32 tensor */
static int l_noise(lua_State *L)
{
    uint64_t seed = check_seed(L, 1);
    lua_Integer epoch = luaL_checkinteger(L, 2), pos = luaL_checkinteger(L, 3);
    int tindex = check_step(L, 4);
    int64_t shape[TS_MAX_DIMS];
    int nd = tsL_checkshape(L, 5, shape, NULL);
    ts_tensor **slot = tsL_newslot_mt(L);
    *slot = ts_data_noise(seed, epoch, pos, tindex, shape, nd);
    return tsL_result(L, *slot);
}

/* transform(sample, steps, seed, epoch, position) -> f32 tensor */
static int l_transform(lua_State *L)
{
    ts_tensor *sample = tsL_checktensor(L, 1);
    ts_transform tf[TS_DATA_MAX_TRANSFORMS];
    int n = read_steps(L, 2, tf);
    uint64_t seed = check_seed(L, 3);
    lua_Integer epoch = luaL_checkinteger(L, 4), pos = luaL_checkinteger(L, 5);
    ts_tensor **slot = tsL_newslot_mt(L);
    *slot = ts_transform_apply(sample, tf, n, seed, epoch, pos);
    return tsL_result(L, *slot);
}

/* channel_stats(images) -> {means}, {stds} */
static int l_channel_stats(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    double mean[TS_DATA_MAX_CHANNELS * 4], std[TS_DATA_MAX_CHANNELS * 4];
    int n;
    tsL_check(L, ts_data_channel_stats(t, mean, std, TS_DATA_MAX_CHANNELS * 4, &n));
    for (int which = 0; which < 2; which++) {
        lua_createtable(L, n, 0);
        for (int c = 0; c < n; c++) {
            lua_pushnumber(L, which ? std[c] : mean[c]);
            lua_rawseti(L, -2, c + 1);
        }
    }
    return 2;
}

/* ---- the Loader userdata -------------------------------------------------------------------- */

static ts_loader **check_loader(lua_State *L)
{
    ts_loader **ud = luaL_checkudata(L, 1, TSL_LOADER_MT);
    return ud;
}

static ts_loader *live_loader(lua_State *L)
{
    ts_loader **ud = check_loader(L);
    if (!*ud) luaL_error(L, "loader is closed");
    return *ud;
}

/* Loader(samples, labels|nil, order|nil, {batch_size=, drop_last=, num_workers=,
 * prefetch=, seed=, epoch=, start_batch=, transforms={steps}}) */
static int l_loader_new(lua_State *L)
{
    ts_tensor *samples = tsL_checktensor(L, 1);
    ts_tensor *labels = lua_isnoneornil(L, 2) ? NULL : tsL_checktensor(L, 2);
    ts_tensor *order = lua_isnoneornil(L, 3) ? NULL : tsL_checktensor(L, 3);
    luaL_checktype(L, 4, LUA_TTABLE);
    ts_transform tf[TS_DATA_MAX_TRANSFORMS];
    lua_getfield(L, 4, "transforms");
    int ntf = read_steps(L, lua_gettop(L), tf);
    lua_pop(L, 1);
    lua_getfield(L, 4, "seed");
    uint64_t seed = (uint64_t)luaL_optinteger(L, -1, 0);
    lua_pop(L, 1);
    lua_getfield(L, 4, "epoch");
    int64_t epoch = luaL_optinteger(L, -1, 0);
    lua_pop(L, 1);
    ts_loader_options o = {
        .batch_size = (int64_t)tsL_optfield_number(L, 4, "batch_size", 1),
        .drop_last = tsL_optfield_bool(L, 4, "drop_last", 0),
        .num_workers = (int)tsL_optfield_number(L, 4, "num_workers", 1),
        .prefetch = (int)tsL_optfield_number(L, 4, "prefetch", 0),
        .seed = seed,
        .epoch = epoch,
        .start_batch = (int64_t)tsL_optfield_number(L, 4, "start_batch", 0),
        .transforms = tf,
        .ntransforms = ntf,
    };
    ts_loader **ud = lua_newuserdatauv(L, sizeof *ud, 0);
    *ud = NULL;
    luaL_setmetatable(L, TSL_LOADER_MT);
    *ud = ts_loader_new(samples, labels, order, &o);
    if (!*ud) return tsL_error(L);
    return 1;
}

/* ld:next() -> x, y (y nil without labels) | nil at the end of the epoch */
static int l_loader_next(lua_State *L)
{
    ts_loader *ld = live_loader(L);
    ts_tensor **xs = tsL_newslot_mt(L), **ys = tsL_newslot_mt(L);
    ts_tensor *x, *y;
    ts_status st = ts_loader_next(ld, &x, &y);
    *xs = x;
    *ys = y;
    if (st != TS_OK) return tsL_error(L);
    if (!x) {
        lua_pushnil(L);
        return 1;
    }
    tsL_account(L, ts_tensor_nbytes(x) + (y ? ts_tensor_nbytes(y) : 0));
    if (!y) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
    return 2;
}

static int l_loader_position(lua_State *L)
{
    lua_pushinteger(L, ts_loader_position(live_loader(L)));
    return 1;
}

static int l_loader_len(lua_State *L)
{
    lua_pushinteger(L, ts_loader_num_batches(live_loader(L)));
    return 1;
}

/* close(): stops and joins the workers; idempotent (also __gc and __close) */
static int l_loader_close(lua_State *L)
{
    ts_loader **ud = check_loader(L);
    ts_loader_free(*ud);
    *ud = NULL;
    return 0;
}

static int l_loader_closed(lua_State *L)
{
    lua_pushboolean(L, *check_loader(L) == NULL);
    return 1;
}

static int l_loader_tostring(lua_State *L)
{
    ts_loader *ld = *check_loader(L);
    if (!ld) lua_pushliteral(L, "Loader (closed)");
    else lua_pushfstring(L, "Loader (batch %d of %d)", (int)ts_loader_position(ld), (int)ts_loader_num_batches(ld));
    return 1;
}

/* ---- small file-system helpers ------------------------------------------------------------------ */

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* listdir(path) -> sorted { {name=, dir=bool}, ... } | nil, message */
static int l_listdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (!d) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot list %s: %s", path, strerror(errno));
        return 2;
    }
    /* names go into a Lua table first so nothing C-owned outlives an error */
    lua_newtable(L);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        lua_pushstring(L, e->d_name);
        lua_rawseti(L, -2, ++n);
    }
    closedir(d);
    int names = lua_gettop(L);
    const char **sorted = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n ? n : 1), 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, names, i + 1);
        sorted[i] = lua_tostring(L, -1);
        lua_pop(L, 1);   /* the string stays alive in the names table */
    }
    qsort(sorted, (size_t)n, sizeof *sorted, compare_names);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, sorted[i]);
        lua_setfield(L, -2, "name");
        const char *full = lua_pushfstring(L, "%s/%s", path, sorted[i]);
        struct stat st;
        lua_pushboolean(L, stat(full, &st) == 0 && S_ISDIR(st.st_mode));
        lua_setfield(L, -3, "dir");
        lua_pop(L, 1);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static const luaL_Reg loader_methods[] = {
    {"next", l_loader_next}, {"position", l_loader_position}, {"len", l_loader_len},
    {"close", l_loader_close}, {"closed", l_loader_closed},
    {NULL, NULL}
};

static const luaL_Reg fns[] = {
    {"idx_read", l_idx_read}, {"npy_read", l_npy_read}, {"cifar10_read", l_cifar10_read},
    {"shuffle", l_shuffle}, {"uniforms", l_uniforms}, {"noise", l_noise}, {"transform", l_transform},
    {"channel_stats", l_channel_stats}, {"listdir", l_listdir}, {"Loader", l_loader_new},
    {NULL, NULL}
};

void tsL_open_data(lua_State *L, int module)
{
    tsL_newhandletype(L, TSL_LOADER_MT, loader_methods, l_loader_close);
    lua_pushcfunction(L, l_loader_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, l_loader_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    lua_newtable(L);
    luaL_setfuncs(L, fns, 0);
    lua_setfield(L, module, "_data");
}
