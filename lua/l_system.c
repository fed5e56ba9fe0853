/* l_system.c — process-level facts and settings for Lua: threads, tensor
 * memory statistics, CPU features, the BLAS in use, the random seed. */
#include "tsl.h"

#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int l_set_num_threads(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 256, 1, "thread count must be 0 (all cores) .. 256");
    ts_set_num_threads((int)n);
    return 0;
}

static int l_get_num_threads(lua_State *L) { lua_pushinteger(L, ts_get_num_threads()); return 1; }
static int l_num_cores(lua_State *L) { lua_pushinteger(L, ts_num_cores()); return 1; }

/* torsh.memory() -> {live=, peak=, allocations=, cached=} in bytes (CPU tensors;
 * cached = freed big blocks the allocator keeps for reuse). */
static int l_memory(lua_State *L)
{
    ts_mem_stats s = ts_mem_get_stats(TS_CPU);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, s.live_bytes); lua_setfield(L, -2, "live");
    lua_pushinteger(L, s.peak_bytes); lua_setfield(L, -2, "peak");
    lua_pushinteger(L, s.total_allocs); lua_setfield(L, -2, "allocations");
    lua_pushinteger(L, (lua_Integer)ts_mem_cached_bytes()); lua_setfield(L, -2, "cached");
    return 1;
}

/* torsh.empty_cache(): gives the allocator's cached free blocks back. */
static int l_empty_cache(lua_State *L) { (void)L; ts_mem_release_cache(); return 0; }

static int l_reset_peak_memory(lua_State *L) { (void)L; ts_mem_reset_peak(TS_CPU); return 0; }

static int l_cpu(lua_State *L)
{
    const ts_cpu_features *f = ts_cpu();
    lua_createtable(L, 0, 16);
    lua_pushstring(L, f->vendor); lua_setfield(L, -2, "vendor");
    lua_pushstring(L, f->brand); lua_setfield(L, -2, "model");
    const struct { const char *name; bool on; } flags[] = {
        {"sse4_2", f->sse42}, {"avx", f->avx}, {"avx2", f->avx2}, {"fma", f->fma}, {"f16c", f->f16c},
        {"avx512f", f->avx512f}, {"avx512bw", f->avx512bw}, {"avx512dq", f->avx512dq}, {"avx512vl", f->avx512vl},
        {"avx512_vnni", f->avx512_vnni}, {"avx512_bf16", f->avx512_bf16}, {"amx_tile", f->amx_tile},
        {"amx_bf16", f->amx_bf16}, {"amx_int8", f->amx_int8},
    };
    lua_createtable(L, 0, 14);
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
        lua_pushboolean(L, flags[i].on);
        lua_setfield(L, -2, flags[i].name);
    }
    lua_setfield(L, -2, "features");
    lua_pushinteger(L, ts_num_cores()); lua_setfield(L, -2, "cores");
    return 1;
}

/* torsh.cuda_probe() -> {driver_found=, driver_version=, runtime_found=, runtime_version=,
 * driver_path=, runtime_path=, error=, devices={{name=, total_memory=, capability="8.9",
 * multiprocessors=}}}: CUDA found at run time by dlopen (torsh/sysinfo.h). */
static int l_cuda_probe(lua_State *L)
{
    ts_cuda_info info;
    ts_cuda_probe(&info);
    lua_createtable(L, 0, 8);
    lua_pushboolean(L, info.driver_found); lua_setfield(L, -2, "driver_found");
    lua_pushinteger(L, info.driver_version); lua_setfield(L, -2, "driver_version");
    lua_pushboolean(L, info.runtime_found); lua_setfield(L, -2, "runtime_found");
    lua_pushinteger(L, info.runtime_version); lua_setfield(L, -2, "runtime_version");
    lua_pushstring(L, info.driver_path); lua_setfield(L, -2, "driver_path");
    lua_pushstring(L, info.runtime_path); lua_setfield(L, -2, "runtime_path");
    lua_pushstring(L, info.error); lua_setfield(L, -2, "error");
    lua_createtable(L, info.device_count, 0);
    for (int i = 0; i < info.device_count; i++) {
        const ts_cuda_device *d = &info.devices[i];
        lua_createtable(L, 0, 4);
        lua_pushstring(L, d->name); lua_setfield(L, -2, "name");
        lua_pushinteger(L, d->total_memory); lua_setfield(L, -2, "total_memory");
        lua_pushfstring(L, "%d.%d", d->cc_major, d->cc_minor); lua_setfield(L, -2, "capability");
        lua_pushinteger(L, d->multiprocessors); lua_setfield(L, -2, "multiprocessors");
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "devices");
    return 1;
}

/* torsh.build_info() -> one-line summary of how libtorsh was compiled */
static int l_build_info(lua_State *L) { lua_pushstring(L, ts_build_info()); return 1; }

/* torsh.blas() -> {library=, kernel=, config=, threads=, coretype_forced=} or nil, err */
static int l_blas(lua_State *L)
{
    const ts_blas_info *b = ts_blas_get_info();
    if (!b) {
        lua_pushnil(L);
        lua_pushstring(L, ts_last_error());
        return 2;
    }
    lua_createtable(L, 0, 5);
    lua_pushstring(L, b->library); lua_setfield(L, -2, "library");
    lua_pushstring(L, b->corename); lua_setfield(L, -2, "kernel");
    lua_pushstring(L, b->config); lua_setfield(L, -2, "config");
    lua_pushinteger(L, b->threads); lua_setfield(L, -2, "threads");
    lua_pushboolean(L, b->coretype_forced); lua_setfield(L, -2, "coretype_forced");
    return 1;
}

static int l_manual_seed(lua_State *L)
{
    lua_Integer s = luaL_checkinteger(L, 1);
    ts_generator_seed(tsL_generator(L), (uint64_t)s);
    return 0;
}

/* torsh.get_rng_state() -> seed, offset ; set_rng_state(seed, offset) */
static int l_get_rng_state(lua_State *L)
{
    ts_generator *g = tsL_generator(L);
    lua_pushinteger(L, (lua_Integer)g->seed);
    lua_pushinteger(L, (lua_Integer)g->offset);
    return 2;
}

static int l_set_rng_state(lua_State *L)
{
    ts_generator *g = tsL_generator(L);
    g->seed = (uint64_t)luaL_checkinteger(L, 1);
    g->offset = (uint64_t)luaL_checkinteger(L, 2);
    return 0;
}

/* torsh.clock() -> seconds from a monotonic clock (wall time, for timing). */
static int l_clock(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
    return 1;
}

/* torsh.isatty(fd) -> whether the descriptor (0, 1, 2) is a terminal. */
static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

/* Interrupt trapping for long jobs (training): while trapped, SIGINT only
 * sets a flag that the job polls at a safe point (torsh.interrupted()), so
 * it can save a checkpoint and exit cleanly instead of dying mid-update.
 * The one process-wide flag is the only state a signal handler may touch. */
static volatile sig_atomic_t interrupted_flag;
static struct sigaction saved_sigint;
static int trapping;

static void on_sigint(int sig) { (void)sig; interrupted_flag = 1; }

static int l_trap_interrupt(lua_State *L)
{
    int on = lua_toboolean(L, 1);
    if (on && !trapping) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &saved_sigint);
        trapping = 1;
        interrupted_flag = 0;
    } else if (!on && trapping) {
        sigaction(SIGINT, &saved_sigint, NULL);
        trapping = 0;
    }
    return 0;
}

static int l_interrupted(lua_State *L) { lua_pushboolean(L, interrupted_flag != 0); return 1; }

static const luaL_Reg fns[] = {
    {"clock", l_clock}, {"isatty", l_isatty}, {"trap_interrupt", l_trap_interrupt}, {"interrupted", l_interrupted},
    {"set_num_threads", l_set_num_threads}, {"get_num_threads", l_get_num_threads}, {"num_cores", l_num_cores},
    {"memory", l_memory}, {"empty_cache", l_empty_cache}, {"reset_peak_memory", l_reset_peak_memory}, {"cpu", l_cpu}, {"cuda_probe", l_cuda_probe}, {"build_info", l_build_info}, {"blas", l_blas},
    {"manual_seed", l_manual_seed}, {"get_rng_state", l_get_rng_state}, {"set_rng_state", l_set_rng_state},
    {NULL, NULL}
};

void tsL_open_system(lua_State *L, int module)
{
    lua_pushvalue(L, module);
    luaL_setfuncs(L, fns, 0);
    lua_pop(L, 1);
}
