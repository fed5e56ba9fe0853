/* l_module.c — luaopen_torsh: builds the `torsh` module table, the Tensor
 * metatable and its method table, opens every family of bindings, then
 * loads the Lua half of the module (stdlib/torsh/_init.lua: printing,
 * helpers written in Lua). The same opener serves the `torsh` interpreter
 * and `require "torsh"` from a stock lua5.4. */
#include "tsl.h"

#include <stdlib.h>
#include <string.h>

#ifndef TORSH_STDLIB_DIR
#define TORSH_STDLIB_DIR "stdlib"
#endif

void tsL_init_state(lua_State *L);

/* Makes sure <stdlib>/?.lua is on package.path so the Lua half is found. */
static void add_stdlib_path(lua_State *L)
{
    const char *dir = getenv("TORSH_STDLIB");
    if (!dir || !*dir) dir = TORSH_STDLIB_DIR;
    lua_getglobal(L, "package");
    if (!lua_istable(L, -1)) { lua_pop(L, 1); return; }
    lua_getfield(L, -1, "path");
    const char *path = lua_tostring(L, -1);
    lua_pushfstring(L, "%s/?.lua", dir);
    const char *entry = lua_tostring(L, -1);
    if (!path || !strstr(path, entry)) {
        lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, path ? path : "");
        lua_setfield(L, -4, "path");
    }
    lua_pop(L, 3);
}

int luaopen_torsh(lua_State *L)
{
    tsL_init_state(L);
    lua_newtable(L);                              /* module */
    int module = lua_gettop(L);
    luaL_newmetatable(L, TSL_TENSOR_MT);          /* Tensor metatable */
    int mt = lua_gettop(L);
    lua_newtable(L);                              /* methods */
    int methods = lua_gettop(L);
    lua_pushvalue(L, methods);
    lua_setfield(L, mt, "__index");

    tsL_open_tensor(L, methods, module, mt);
    tsL_open_elementwise(L, methods, module, mt);
    tsL_open_reduce(L, methods, module, mt);
    tsL_open_nn(L, methods, module, mt);
    tsL_open_index(L, methods, module, mt);
    tsL_open_random(L, methods, module, mt);
    tsL_open_autograd(L, methods, module, mt);
    tsL_open_system(L, module);
    tsL_open_data(L, module);
    tsL_open_optim(L, module);
    tsL_open_io(L, module);
    tsL_open_hub(L, module);
    tsL_open_graph(L, module);
    tsL_open_prof(L, module);
    tsL_open_tb(L, module);
    tsL_open_safetensors(L, module);
    tsL_open_npz(L, module);
    tsL_open_pt(L, module);

    lua_pushvalue(L, methods);
    lua_setfield(L, module, "Tensor");            /* torsh.Tensor: the method table, extendable from Lua */
    lua_pushliteral(L, TS_VERSION_STRING);
    lua_setfield(L, module, "version");
    lua_settop(L, module);

    /* Lua half: stdlib/torsh/_init.lua receives the module and extends it */
    lua_pushvalue(L, module);
    lua_setfield(L, LUA_REGISTRYINDEX, "torsh.module");
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, module);
    lua_setfield(L, -2, "torsh");                 /* so the Lua half can require "torsh" */
    lua_pop(L, 1);
    add_stdlib_path(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "torsh._init");
    lua_call(L, 1, 0);
    lua_settop(L, module);
    return 1;
}
