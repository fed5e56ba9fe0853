/* l_graph.c — torsh._graph: the binding of the model IR and its executor
 * (torsh/graph.h, torsh/onnx.h) for stdlib/torsh/model.lua and
 * stdlib/torsh/jit.lua. Values are addressed by name, nodes by 1-based
 * position. A Graph userdata owns its ts_graph and a cached executor, which
 * any change to the graph drops.
 *
 *   _graph.new(name) -> Graph            _graph.load_onnx(path) -> Graph
 *   g:save_onnx(path [, {opset=, external_data=}])
 *   g:add_input(name, dtype, shape)      shape: {1, "N", -1 (unknown), ...}
 *   g:add_output(name)                   g:set_const(name, tensor [, is_weight])
 *   g:add_node(op, inputs, outputs [, attrs [, name [, domain]]]) -> index
 *       inputs: list of names (false or "" = omitted optional input);
 *       attrs: name -> integer | float | string | tensor | list of integers |
 *       list of floats | list of strings; {type="floats", value={1, 2}} forces
 *       a list type (needed for an empty or integral float list).
 *   g:set_meta(k, v)  g:set_producer(name, version)  g:set_opset(domain, v)
 *   g:info() -> {name=, producer=, producer_version=, opsets={[domain]=v},
 *                meta={k=v}, inputs={names}, outputs={names},
 *                n_nodes=, n_values=}
 *   g:value(name) -> {name=, dtype=, shape=, const=bool, weight=bool,
 *                     producer=node index|nil} | nil
 *   g:values() -> list of value names (graph order)
 *   g:const(name) -> Tensor | nil
 *   g:node(i) -> {name=, op=, domain=, inputs=, outputs=, attrs=}
 *   g:nodes() -> list of node tables        #g -> number of nodes
 *   g:infer([{N = 1, ...}])  g:toposort()  g:prune()  g:clone()
 *   g:optimize()   conv+bn folding, fusion, Winograd (for running, not export)
 *   g:flops() -> list of per-node FLOPs (after a concrete infer; -1 unknown)
 *   g:run(t1, t2, ...) -> out1, out2, ...   (inputs in graph-input order)
 *   g:run_all(t1, ...) -> table name -> tensor of every value computed
 *   _graph.ops([domain]) -> comma-separated supported op list
 *   _graph.register_op(op_type, fn [, {domain=, infer=}]) : a Lua kernel,
 *       fn(node, in1, in2, ...) -> out1, ... ; node is the node table.
 */
#include "tsl.h"
#include "torsh/onnx.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GRAPH_MT "torsh.Graph"
#define TSL_GRAPH_MAX_OUTPUTS 256
#define EXEC_BOX_MT "torsh.Graph.exec"

/* The Lua thread running the current g:run / g:infer (Lua kernels run on it). */
static _Thread_local lua_State *running_L;

typedef struct lgraph {
    ts_graph *g;
    ts_exec *exec;        /* cached; dropped on any change */
    ts_exec *exec_all;    /* with keep_intermediates */
    int busy;             /* > 0 while it runs or infers (a Lua kernel may call back) */
} lgraph;

static void drop_exec(lgraph *lg)
{
    ts_exec_free(lg->exec); lg->exec = NULL;
    ts_exec_free(lg->exec_all); lg->exec_all = NULL;
}

static lgraph *check_graph(lua_State *L, int idx)
{
    lgraph *lg = luaL_checkudata(L, idx, GRAPH_MT);
    if (!lg->g) luaL_error(L, "graph: used after free");
    return lg;
}

ts_graph *tsL_checkgraph(lua_State *L, int idx) { return check_graph(L, idx)->g; }

/* A changing call: drops the cached executors (refused while the graph runs:
 * a Lua kernel must not change or free the graph that is calling it). */
static lgraph *check_graph_mut(lua_State *L, int idx)
{
    lgraph *lg = check_graph(L, idx);
    if (lg->busy) luaL_error(L, "graph '%s': cannot change or free a graph while it runs (from a Lua kernel)", ts_graph_name(lg->g));
    drop_exec(lg);
    return lg;
}

static lgraph *push_graph(lua_State *L)
{
    lgraph *lg = lua_newuserdatauv(L, sizeof *lg, 0);
    memset(lg, 0, sizeof *lg);
    luaL_setmetatable(L, GRAPH_MT);
    return lg;
}

static int push_new_graph(lua_State *L, ts_graph *g)
{
    lgraph *lg = push_graph(L);
    if (!g) return tsL_error(L);
    lg->g = g;
    return 1;
}

static int exec_box_gc(lua_State *L)
{
    ts_exec **box = luaL_checkudata(L, 1, EXEC_BOX_MT);
    ts_exec_free(*box);
    *box = NULL;
    return 0;
}

static int graph_gc(lua_State *L)
{
    lgraph *lg = luaL_checkudata(L, 1, GRAPH_MT);
    drop_exec(lg);
    ts_graph_free(lg->g);
    lg->g = NULL;
    return 0;
}

/* g:free() / __close: like __gc, but refused while the graph runs */
static int graph_free(lua_State *L)
{
    lgraph *lg = luaL_checkudata(L, 1, GRAPH_MT);
    if (lg->g && lg->busy) check_graph_mut(L, 1);   /* raises */
    return graph_gc(L);
}

/* ---- building ------------------------------------------------------------------ */

static int l_new(lua_State *L)
{
    return push_new_graph(L, ts_graph_new(luaL_optstring(L, 1, "graph")));
}

static int l_load_onnx(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lgraph *lg = push_graph(L);
    lg->g = ts_onnx_load(path);
    if (!lg->g) { lua_pushnil(L); lua_pushstring(L, ts_last_error()); return 2; }
    return 1;
}

static int g_save_onnx(lua_State *L)
{
    lgraph *lg = check_graph(L, 1);
    const char *path = luaL_checkstring(L, 2);
    ts_onnx_save_options opt = {0};
    opt.opset = (int64_t)tsL_optfield_number(L, 3, "opset", 0);
    opt.external_data = tsL_optfield_bool(L, 3, "external_data", 0);
    opt.external_min_bytes = (size_t)tsL_optfield_number(L, 3, "external_min_bytes", 1024);
    if (ts_onnx_save(lg->g, path, &opt)) { lua_pushnil(L); lua_pushstring(L, ts_last_error()); return 2; }
    lua_pushboolean(L, 1);
    return 1;
}

static int read_shape(lua_State *L, lgraph *lg, int idx, ts_dim *dims)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    int n = (int)lua_rawlen(L, idx);
    if (n > TS_MAX_DIMS) luaL_error(L, "graph: shape has %d dims (max %d)", n, TS_MAX_DIMS);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *s = lua_tostring(L, -1);
            dims[i] = (s[0] == '?' && !s[1]) ? ts_dim_unknown() : ts_dim_sym(lg->g, s);
        } else if (lua_isinteger(L, -1)) {
            lua_Integer v = lua_tointeger(L, -1);
            dims[i] = v < 0 ? ts_dim_unknown() : ts_dim_of(v);
        } else {
            luaL_error(L, "graph: shape entry %d must be an integer or a symbol name", i + 1);
        }
        lua_pop(L, 1);
    }
    return n;
}

static int g_add_input(lua_State *L)
{
    lgraph *lg = check_graph_mut(L, 1);
    int v = ts_graph_value(lg->g, luaL_checkstring(L, 2));
    ts_dtype dt = tsL_optdtype(L, 3, TS_F32);
    ts_dim dims[TS_MAX_DIMS];
    int n = lua_isnoneornil(L, 4) ? TS_RANK_UNKNOWN : read_shape(L, lg, 4, dims);
    tsL_check(L, ts_graph_set_info(lg->g, v, dt, n, dims));
    tsL_check(L, ts_graph_add_input(lg->g, v));
    return 0;
}

static int g_add_output(lua_State *L)
{
    lgraph *lg = check_graph_mut(L, 1);
    tsL_check(L, ts_graph_add_output(lg->g, ts_graph_value(lg->g, luaL_checkstring(L, 2))));
    return 0;
}

static int g_set_const(lua_State *L)
{
    lgraph *lg = check_graph_mut(L, 1);
    int v = ts_graph_value(lg->g, luaL_checkstring(L, 2));
    ts_tensor *t = tsL_checktensor(L, 3);
    bool weight = lua_isnoneornil(L, 4) ? true : lua_toboolean(L, 4);
    tsL_check(L, ts_graph_set_const(lg->g, v, t, weight));
    return 0;
}

/* The list of value names at idx as ids (-1 for false / ""). */
static int *read_value_list(lua_State *L, lgraph *lg, int idx, int *n, bool outputs)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    *n = (int)lua_rawlen(L, idx);
    int *ids = lua_newuserdatauv(L, sizeof(int) * (size_t)(*n ? *n : 1), 0);
    for (int i = 0; i < *n; i++) {
        lua_rawgeti(L, idx, i + 1);
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (!s && lua_toboolean(L, -1)) luaL_error(L, "graph: %s %d must be a value name", outputs ? "output" : "input", i + 1);
        ids[i] = (s && *s) ? ts_graph_value(lg->g, s) : -1;
        if (outputs && ids[i] < 0) luaL_error(L, "graph: output %d must be a value name", i + 1);
        lua_pop(L, 1);
    }
    return ids;
}

/* Is the table at idx a list whose entries all satisfy pred? */
static bool list_all(lua_State *L, int idx, int (*pred)(lua_State *, int))
{
    int n = (int)lua_rawlen(L, idx);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        int ok = pred(L, -1);
        lua_pop(L, 1);
        if (!ok) return false;
    }
    return true;
}
static int is_integer(lua_State *L, int idx) { return lua_isinteger(L, idx); }
static int is_number(lua_State *L, int idx) { return lua_type(L, idx) == LUA_TNUMBER; }
static int is_string(lua_State *L, int idx) { return lua_type(L, idx) == LUA_TSTRING; }

/* Sets an attribute on `node`; with node < 0 only checks that it converts
 * (g:add_node validates every attribute before it adds the node). */
#define SET_ATTR(call) do { if (node >= 0) tsL_check(L, call); } while (0)

static void set_list_attr(lua_State *L, lgraph *lg, int node, const char *name, int idx, const char *type)
{
    int n = (int)lua_rawlen(L, idx);
    if (n == 0) {      /* an empty list, not a map */
        lua_pushnil(L);
        if (lua_next(L, idx)) luaL_error(L, "graph: attribute '%s' must be a list, not a map", name);
    }
    if (!type) type = list_all(L, idx, is_integer) ? "ints" : list_all(L, idx, is_number) ? "floats"
                    : list_all(L, idx, is_string) ? "strings" : NULL;
    if (!type) luaL_error(L, "graph: attribute '%s' must be a list of integers, floats or strings", name);
    if (!strcmp(type, "ints") || !strcmp(type, "floats")) {
        bool ints = type[0] == 'i';
        int64_t *iv = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(n ? n : 1), 0);
        double *fv = lua_newuserdatauv(L, sizeof(double) * (size_t)(n ? n : 1), 0);
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, idx, i + 1);
            if (ints && !lua_isinteger(L, -1)) luaL_error(L, "graph: attribute '%s' entry %d is not an integer", name, i + 1);
            if (!lua_isnumber(L, -1)) luaL_error(L, "graph: attribute '%s' entry %d is not a number", name, i + 1);
            iv[i] = ints ? lua_tointeger(L, -1) : 0;
            fv[i] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        SET_ATTR(ints ? ts_gnode_set_ints(lg->g, node, name, iv, n) : ts_gnode_set_floats(lg->g, node, name, fv, n));
        lua_pop(L, 2);
    } else if (!strcmp(type, "strings")) {
        const char **sv = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n ? n : 1), 0);
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, idx, i + 1);
            if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "graph: attribute '%s' entry %d is not a string", name, i + 1);
            sv[i] = lua_tostring(L, -1);      /* a real string: the list keeps it alive */
            lua_pop(L, 1);
        }
        SET_ATTR(ts_gnode_set_strings(lg->g, node, name, sv, n));
        lua_pop(L, 1);
    } else {
        luaL_error(L, "graph: attribute '%s': unknown list type '%s' (ints, floats, strings)", name, type);
    }
}

static void set_attr(lua_State *L, lgraph *lg, int node, const char *name, int idx)
{
    idx = lua_absindex(L, idx);
    ts_tensor *t;
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) SET_ATTR(ts_gnode_set_int(lg->g, node, name, lua_tointeger(L, idx)));
        else SET_ATTR(ts_gnode_set_float(lg->g, node, name, lua_tonumber(L, idx)));
        break;
    case LUA_TBOOLEAN:
        SET_ATTR(ts_gnode_set_int(lg->g, node, name, lua_toboolean(L, idx)));
        break;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        SET_ATTR(ts_gnode_set_string(lg->g, node, name, s, len));
        break;
    }
    case LUA_TUSERDATA:
        t = tsL_totensor(L, idx);
        if (!t) luaL_error(L, "graph: attribute '%s' has unsupported type %s", name, luaL_typename(L, idx));
        SET_ATTR(ts_gnode_set_tensor(lg->g, node, name, t));
        break;
    case LUA_TTABLE:
        if (lua_getfield(L, idx, "type") == LUA_TSTRING) {
            const char *type = lua_tostring(L, -1);
            lua_getfield(L, idx, "value");
            if (lua_type(L, -1) != LUA_TTABLE) {
                if (!strcmp(type, "float") && lua_isnumber(L, -1)) {
                    SET_ATTR(ts_gnode_set_float(lg->g, node, name, lua_tonumber(L, -1)));
                } else if (!strcmp(type, "int") && lua_isinteger(L, -1)) {
                    SET_ATTR(ts_gnode_set_int(lg->g, node, name, lua_tointeger(L, -1)));
                } else {
                    luaL_error(L, "graph: attribute '%s' of type '%s' has a bad value", name, type);
                }
            } else {
                set_list_attr(L, lg, node, name, lua_gettop(L), type);
            }
            lua_pop(L, 2);
        } else {
            lua_pop(L, 1);
            set_list_attr(L, lg, node, name, idx, NULL);
        }
        break;
    default:
        luaL_error(L, "graph: attribute '%s' has unsupported type %s", name, luaL_typename(L, idx));
    }
}

static int g_add_node(lua_State *L)
{
    lgraph *lg = check_graph_mut(L, 1);
    lua_settop(L, 7);       /* the lists below push scratch buffers */
    const char *op = luaL_checkstring(L, 2);
    int n_in, n_out;
    int *in = read_value_list(L, lg, 3, &n_in, false);
    int *out = read_value_list(L, lg, 4, &n_out, true);
    const char *name = luaL_optstring(L, 6, NULL);
    const char *domain = luaL_optstring(L, 7, "");
    for (int pass = 0; pass < 2; pass++) {   /* pass 0 checks every attribute, pass 1 sets them */
        int node = -1;
        if (pass == 1) {
            node = ts_graph_add_node(lg->g, op, domain, name, in, n_in, out, n_out);
            if (node < 0) return tsL_error(L);
            lua_pushinteger(L, node + 1);
            lua_replace(L, 2);     /* the result, kept where the op name was (no longer needed) */
        }
        if (lua_type(L, 5) != LUA_TTABLE) continue;
        lua_pushnil(L);
        while (lua_next(L, 5)) {
            if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "graph: attribute names must be strings");
            set_attr(L, lg, node, lua_tostring(L, -2), -1);
            lua_pop(L, 1);
        }
    }
    lua_pushvalue(L, 2);
    return 1;
}

static int g_set_meta(lua_State *L)
{
    lgraph *lg = check_graph(L, 1);
    tsL_check(L, ts_graph_set_meta(lg->g, luaL_checkstring(L, 2), luaL_checkstring(L, 3)));
    return 0;
}

static int g_set_producer(lua_State *L)
{
    lgraph *lg = check_graph(L, 1);
    tsL_check(L, ts_graph_set_producer(lg->g, luaL_checkstring(L, 2), luaL_optstring(L, 3, "")));
    return 0;
}

static int g_set_opset(lua_State *L)
{
    lgraph *lg = check_graph_mut(L, 1);
    tsL_check(L, ts_graph_set_opset(lg->g, luaL_checkstring(L, 2), luaL_checkinteger(L, 3)));
    return 0;
}

/* ---- reading ------------------------------------------------------------------- */

static void push_names(lua_State *L, const ts_graph *g, const int *ids, int n)
{
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0) lua_pushboolean(L, 0);
        else lua_pushstring(L, ts_graph_val(g, ids[i])->name);
        lua_rawseti(L, -2, i + 1);
    }
}

static int g_info(lua_State *L)
{
    lgraph *lg = check_graph(L, 1);
    const ts_graph *g = lg->g;
    lua_createtable(L, 0, 10);
    lua_pushstring(L, ts_graph_name(g)); lua_setfield(L, -2, "name");
    const char *pv = NULL;
    const char *prod = ts_graph_producer(g, &pv);
    lua_pushstring(L, prod ? prod : ""); lua_setfield(L, -2, "producer");
    lua_pushstring(L, pv ? pv : ""); lua_setfield(L, -2, "producer_version");
    lua_newtable(L);
    for (int i = 0; i < ts_graph_opset_count(g); i++) {
        const char *d; int64_t v;
        ts_graph_opset_at(g, i, &d, &v);
        lua_pushinteger(L, v);
        lua_setfield(L, -2, d);
    }
    lua_setfield(L, -2, "opsets");
    lua_newtable(L);
    for (int i = 0; i < ts_graph_meta_count(g); i++) {
        const char *k, *v;
        ts_graph_meta_at(g, i, &k, &v);
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
    lua_setfield(L, -2, "meta");
    int n = ts_graph_input_count(g);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) { lua_pushstring(L, ts_graph_val(g, ts_graph_input(g, i))->name); lua_rawseti(L, -2, i + 1); }
    lua_setfield(L, -2, "inputs");
    n = ts_graph_output_count(g);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) { lua_pushstring(L, ts_graph_val(g, ts_graph_output(g, i))->name); lua_rawseti(L, -2, i + 1); }
    lua_setfield(L, -2, "outputs");
    lua_pushinteger(L, ts_graph_node_count(g)); lua_setfield(L, -2, "n_nodes");
    lua_pushinteger(L, ts_graph_value_count(g)); lua_setfield(L, -2, "n_values");
    return 1;
}

static void push_value(lua_State *L, const ts_graph *g, const ts_gvalue *v)
{
    lua_createtable(L, 0, 6);
    lua_pushstring(L, v->name); lua_setfield(L, -2, "name");
    if ((int)v->dtype >= 0 && v->dtype < TS_DTYPE_COUNT) { lua_pushstring(L, ts_dtype_name(v->dtype)); lua_setfield(L, -2, "dtype"); }
    if (v->ndim >= 0) {
        lua_createtable(L, v->ndim, 0);
        for (int d = 0; d < v->ndim; d++) {
            if (v->dims[d].size >= 0) lua_pushinteger(L, v->dims[d].size);
            else if (v->dims[d].sym >= 0) lua_pushstring(L, ts_graph_symbol_name(g, v->dims[d].sym));
            else lua_pushliteral(L, "?");
            lua_rawseti(L, -2, d + 1);
        }
        lua_setfield(L, -2, "shape");
    }
    lua_pushboolean(L, v->constant != NULL); lua_setfield(L, -2, "const");
    lua_pushboolean(L, v->constant && v->is_initializer); lua_setfield(L, -2, "weight");
    if (v->producer >= 0) { lua_pushinteger(L, v->producer + 1); lua_setfield(L, -2, "producer"); }
}

static int g_value(lua_State *L)
{
    lgraph *lg = check_graph(L, 1);
    int v = ts_graph_find_value(lg->g, luaL_checkstring(L, 2));
    if (v < 0) { lua_pushnil(L); return 1; }
    push_value(L, lg->g, ts_graph_val(lg->g, v));
    return 1;
}

static int g_values(lua_State *L)
{
    lgraph *lg = check_graph(L, 1);
    int n = ts_graph_value_count(lg->g);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) { lua_pushstring(L, ts_graph_val(lg->g, i)->name); lua_rawseti(L, -2, i + 1); }
    return 1;
}

static int g_const(lua_State *L)
{
    lgraph *lg = check_graph(L, 1);
    int v = ts_graph_find_value(lg->g, luaL_checkstring(L, 2));
    ts_tensor *t = v < 0 ? NULL : ts_graph_val(lg->g, v)->constant;
    if (!t) { lua_pushnil(L); return 1; }
    ts_tensor_retain(t);
    return tsL_pushtensor(L, t);
}

static void push_attr(lua_State *L, const ts_attr *a)
{
    switch (a->type) {
    case TS_ATTR_FLOAT: lua_pushnumber(L, a->f); break;
    case TS_ATTR_INT: lua_pushinteger(L, a->i); break;
    case TS_ATTR_STRING: lua_pushlstring(L, a->s, a->s_len); break;
    case TS_ATTR_TENSOR: ts_tensor_retain(a->t); tsL_pushtensor(L, a->t); break;
    case TS_ATTR_FLOATS: case TS_ATTR_INTS: case TS_ATTR_STRINGS:
        lua_createtable(L, 0, 2);
        lua_pushstring(L, a->type == TS_ATTR_FLOATS ? "floats" : a->type == TS_ATTR_INTS ? "ints" : "strings");
        lua_setfield(L, -2, "type");
        lua_createtable(L, (int)a->n, 0);
        for (int64_t i = 0; i < a->n; i++) {
            if (a->type == TS_ATTR_FLOATS) lua_pushnumber(L, a->floats[i]);
            else if (a->type == TS_ATTR_INTS) lua_pushinteger(L, a->ints[i]);
            else lua_pushstring(L, a->strings[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_setfield(L, -2, "value");
        break;
    default: lua_pushnil(L);
    }
}

static void push_node(lua_State *L, const ts_graph *g, const ts_gnode *n)
{
    lua_createtable(L, 0, 6);
    lua_pushstring(L, n->name); lua_setfield(L, -2, "name");
    lua_pushstring(L, n->op_type); lua_setfield(L, -2, "op");
    lua_pushstring(L, n->domain); lua_setfield(L, -2, "domain");
    push_names(L, g, n->inputs, n->n_inputs); lua_setfield(L, -2, "inputs");
    push_names(L, g, n->outputs, n->n_outputs); lua_setfield(L, -2, "outputs");
    lua_createtable(L, 0, n->n_attrs);
    for (int i = 0; i < n->n_attrs; i++) {
        push_attr(L, &n->attrs[i]);
        lua_setfield(L, -2, n->attrs[i].name);
    }
    lua_setfield(L, -2, "attrs");
}

static int g_node(lua_State *L)
{
    lgraph *lg = check_graph(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    if (i < 1 || i > ts_graph_node_count(lg->g)) { lua_pushnil(L); return 1; }
    push_node(L, lg->g, ts_graph_node(lg->g, (int)i - 1));
    return 1;
}

static int g_nodes(lua_State *L)
{
    lgraph *lg = check_graph(L, 1);
    int n = ts_graph_node_count(lg->g);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) { push_node(L, lg->g, ts_graph_node(lg->g, i)); lua_rawseti(L, -2, i + 1); }
    return 1;
}

static int g_len(lua_State *L)
{
    lua_pushinteger(L, ts_graph_node_count(check_graph(L, 1)->g));
    return 1;
}

static int g_infer(lua_State *L)
{
    lgraph *lg = check_graph_mut(L, 1);
    const char *names[64];
    int64_t sizes[64];
    int n = 0;
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            if (n == 64) luaL_error(L, "graph:infer: too many symbols (max 64)");
            if (lua_type(L, -2) != LUA_TSTRING || !lua_isinteger(L, -1))
                luaL_error(L, "graph:infer: bindings are symbol = integer size");
            names[n] = lua_tostring(L, -2);   /* the table keeps the key alive */
            sizes[n++] = lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
    }
    lua_State *saved = running_L;
    running_L = L;
    lg->busy++;
    ts_status st = ts_graph_infer(lg->g, names, sizes, n);
    lg->busy--;
    running_L = saved;
    tsL_check(L, st);
    return 0;
}

/* g:optimize([passes]) : conv+bn folding ("fold_conv_bn"), conv+activation
 * fusion ("fuse_conv_act"), Winograd prepacking ("winograd"); all three when
 * passes is nil (for running; export the unoptimized graph). Re-infers. */
static int g_optimize(lua_State *L)
{
    static const char *const names[] = {"fold_conv_bn", "fuse_conv_act", "winograd", NULL};
    static ts_status (*const passes[])(ts_graph *) = {ts_graph_fold_conv_bn, ts_graph_fuse_conv_act,
                                                      ts_graph_prepack_winograd};
    lgraph *lg = check_graph_mut(L, 1);
    int which[8], n = 0;       /* read the pass list before running anything */
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, 2) && n < 8; i++) {
            lua_rawgeti(L, 2, i);
            which[n++] = luaL_checkoption(L, -1, NULL, names);
            lua_pop(L, 1);
        }
    }
    lua_State *saved = running_L;   /* inference may run Lua kernels */
    running_L = L;
    lg->busy++;
    ts_status st = ts_graph_infer(lg->g, NULL, NULL, 0);
    if (!st && lua_isnoneornil(L, 2)) st = ts_graph_optimize_nn(lg->g);
    for (int i = 0; i < n && !st; i++) {
        st = passes[which[i]](lg->g);
        if (!st) st = ts_graph_infer(lg->g, NULL, NULL, 0);
    }
    if (!st) st = ts_graph_infer(lg->g, NULL, NULL, 0);
    lg->busy--;
    running_L = saved;
    tsL_check(L, st);
    return 0;
}

static int g_toposort(lua_State *L) { tsL_check(L, ts_graph_toposort(check_graph_mut(L, 1)->g)); return 0; }
static int g_prune(lua_State *L) { tsL_check(L, ts_graph_prune(check_graph_mut(L, 1)->g)); return 0; }
static int g_clone(lua_State *L) { return push_new_graph(L, ts_graph_clone(check_graph(L, 1)->g)); }

static int g_flops(lua_State *L)
{
    lgraph *lg = check_graph(L, 1);
    int n = ts_graph_node_count(lg->g);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushnumber(L, ts_graph_node_flops(lg->g, i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* ---- running --------------------------------------------------------------------- */

static int run_graph(lua_State *L, bool all)
{
    lgraph *lg = check_graph(L, 1);
    ts_exec **slot = all ? &lg->exec_all : &lg->exec;
    ts_exec *temp = NULL;     /* a run from inside a Lua kernel of this graph gets its own executor */
    if (lg->busy) slot = &temp;
    if (!*slot) {
        ts_exec_options opt = {.keep_intermediates = all};
        *slot = ts_exec_new(lg->g, &opt);
        if (!*slot) return tsL_error(L);
    }
    if (temp) {   /* freed with this userdata, even if an error is raised below */
        ts_exec **box = lua_newuserdatauv(L, sizeof *box, 0);
        *box = temp;
        luaL_setmetatable(L, EXEC_BOX_MT);
        lua_insert(L, 2);
    }
    int first = temp ? 3 : 2;
    int n_in = lua_gettop(L) - first + 1;
    int want_in = ts_graph_input_count(lg->g);
    if (n_in != want_in)
        luaL_error(L, "graph '%s': run takes %d input tensor(s), got %d", ts_graph_name(lg->g), want_in, n_in);
    ts_tensor **in = lua_newuserdatauv(L, sizeof(ts_tensor *) * (size_t)(n_in ? n_in : 1), 0);
    for (int i = 0; i < n_in; i++) in[i] = tsL_checktensor(L, i + first);
    int n_out = ts_graph_output_count(lg->g);
    if (n_out > TSL_GRAPH_MAX_OUTPUTS) luaL_error(L, "graph: %d outputs (max %d)", n_out, TSL_GRAPH_MAX_OUTPUTS);
    luaL_checkstack(L, n_out + 4, "graph outputs");
    /* empty slots first: a failure or a Lua error cannot leak the outputs */
    ts_tensor ***slots = lua_newuserdatauv(L, sizeof(ts_tensor **) * (size_t)(n_out ? n_out : 1), 0);
    for (int i = 0; i < n_out; i++) slots[i] = tsL_newslot_mt(L);
    ts_tensor *out[TSL_GRAPH_MAX_OUTPUTS];
    memset(out, 0, sizeof(ts_tensor *) * (size_t)n_out);
    lua_State *saved = running_L;
    running_L = L;
    lg->busy++;
    ts_status st = ts_exec_run(*slot, in, n_in, out, n_out);   /* no Lua error crosses it (kernels are protected) */
    lg->busy--;
    running_L = saved;
    for (int i = 0; i < n_out; i++) *slots[i] = out[i];
    if (st) return tsL_error(L);
    for (int i = 0; i < n_out; i++) tsL_account(L, out[i] ? ts_tensor_nbytes(out[i]) : 0);
    if (!all) return n_out;
    lua_newtable(L);
    int nv = ts_graph_value_count(lg->g);
    for (int v = 0; v < nv; v++) {
        ts_tensor *t = ts_exec_value(*slot, v);
        if (!t) continue;
        ts_tensor_retain(t);
        tsL_pushtensor(L, t);
        lua_setfield(L, -2, ts_graph_val(lg->g, v)->name);
    }
    return 1;
}

static int g_run(lua_State *L) { return run_graph(L, false); }
static int g_run_all(lua_State *L) { return run_graph(L, true); }

static int l_ops(lua_State *L)
{
    lua_pushstring(L, ts_op_list(luaL_optstring(L, 1, "")));
    return 1;
}

/* ---- Lua custom ops ------------------------------------------------------------------ */

typedef struct lua_op {
    lua_State *L;       /* the main thread */
    int fn_ref;
    int infer_ref;      /* LUA_NOREF when none */
} lua_op;

static void lua_op_free(void *user)
{
    lua_op *op = user;
    /* the state may already be closing: references die with it */
    free(op);
}

/* Everything a Lua kernel call does with Lua happens inside one protected
 * call, so no Lua error (a kernel's own, a freed result tensor, memory)
 * ever longjmps through the C executor. */
typedef struct op_call {
    const ts_kernel_ctx *ctx;
    lua_op *op;
    ts_tensor *const *in;
    ts_tensor **out;
    int n_in, n_out;
} op_call;

static int op_call_body(lua_State *L)
{
    op_call *c = lua_touserdata(L, 1);
    luaL_checkstack(L, c->n_in + c->n_out + 8, "Lua kernel arguments");
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->op->fn_ref);
    push_node(L, c->ctx->graph, c->ctx->node);
    for (int i = 0; i < c->n_in; i++) {
        if (!c->in[i]) { lua_pushnil(L); continue; }
        ts_tensor_retain(c->in[i]);
        tsL_pushtensor(L, c->in[i]);
    }
    lua_call(L, c->n_in + 1, c->n_out);
    int base = lua_gettop(L) - c->n_out;
    for (int i = 0; i < c->n_out; i++) {
        if (!luaL_testudata(L, base + 1 + i, TSL_TENSOR_MT))
            luaL_error(L, "result %d is a %s, not a tensor", i + 1, luaL_typename(L, base + 1 + i));
        ts_tensor *t = tsL_totensor(L, base + 1 + i);      /* raises for a freed tensor */
        ts_tensor_retain(t);
        c->out[i] = t;
    }
    return 0;
}

static ts_status lua_op_run(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    lua_op *op = ctx->user;
    lua_State *L = running_L ? running_L : op->L;
    int top = lua_gettop(L);
    if (!lua_checkstack(L, 4)) return ts_fail(TS_ERR_MEMORY, "node '%s': Lua stack overflow", ctx->node->name);
    op_call c = {ctx, op, in, out, n_in, n_out};
    for (int i = 0; i < n_out; i++) out[i] = NULL;
    lua_pushcfunction(L, op_call_body);
    lua_pushlightuserdata(L, &c);
    ts_status st = TS_OK;
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        st = ts_fail(TS_ERR_ARG, "node '%s' (%s): Lua kernel failed: %s%s", ctx->node->name, ctx->node->op_type,
                     msg ? msg : "error object is a ", msg ? "" : luaL_typename(L, -1));
        for (int i = 0; i < n_out; i++) { ts_tensor_release(out[i]); out[i] = NULL; }
    }
    lua_settop(L, top);
    return st;
}

/* Shapes of a Lua op's outputs: found by running the kernel on zero-filled
 * inputs of the inferred shapes when every input shape is concrete. */
static ts_status lua_op_infer(ts_graph *g, const ts_gnode *n, int64_t opset,
                              const ts_gvalue *const *in, ts_gvalue *const *out)
{
    (void)opset;
    const ts_op_def *def = ts_op_find(n->domain, n->op_type);
    ts_tensor *ins[64] = {0}, *outs[64] = {0};
    if (n->n_inputs > 64 || n->n_outputs > 64) return TS_OK;
    ts_status st = TS_OK;
    for (int i = 0; i < n->n_inputs; i++) {
        if (!in[i]) continue;
        if (in[i]->constant) { ts_tensor_retain(in[i]->constant); ins[i] = in[i]->constant; continue; }
        if (in[i]->ndim < 0 || (int)in[i]->dtype < 0) goto done;
        int64_t shape[TS_MAX_DIMS];
        for (int d = 0; d < in[i]->ndim; d++) {
            if (in[i]->dims[d].size < 0) goto done;
            shape[d] = in[i]->dims[d].size;
        }
        ins[i] = ts_tensor_zeros(shape, in[i]->ndim, in[i]->dtype);
        if (!ins[i]) { st = TS_ERR_MEMORY; goto done; }
    }
    ts_kernel_ctx ctx = {.graph = g, .node = n, .opset = 0, .user = def->user};
    if (lua_op_run(&ctx, ins, n->n_inputs, outs, n->n_outputs) == TS_OK) {
        for (int i = 0; i < n->n_outputs; i++) {
            ts_dim dims[TS_MAX_DIMS];
            for (int d = 0; d < outs[i]->ndim; d++) dims[d] = ts_dim_of(outs[i]->shape[d]);
            out[i]->dtype = outs[i]->dtype;
            out[i]->ndim = outs[i]->ndim;
            memcpy(out[i]->dims, dims, sizeof(ts_dim) * (size_t)outs[i]->ndim);
            ts_tensor_release(outs[i]);
        }
    } else {
        ts_clear_error();
    }
done:
    for (int i = 0; i < n->n_inputs; i++) ts_tensor_release(ins[i]);
    return st;
}

static int l_register_op(lua_State *L)
{
    const char *op_type = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    const char *domain = "";
    if (lua_type(L, 3) == LUA_TTABLE) {
        lua_getfield(L, 3, "domain");
        if (!lua_isnil(L, -1)) domain = luaL_checkstring(L, -1);
        lua_pop(L, 1);       /* the options table keeps the string alive */
    }
    const ts_op_def *old = ts_op_find(domain, op_type);
    if (old && old->run == lua_op_run) {
        /* executors built earlier hold this op's user pointer: keep it, swap the function */
        lua_op *existing = old->user;
        lua_pushvalue(L, 2);
        int ref = luaL_ref(L, LUA_REGISTRYINDEX);
        luaL_unref(L, LUA_REGISTRYINDEX, existing->fn_ref);
        existing->fn_ref = ref;
        return 0;
    }
    lua_op *op = calloc(1, sizeof *op);
    if (!op) return luaL_error(L, "register_op: out of memory");
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    op->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, 2);
    op->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    op->infer_ref = LUA_NOREF;
    ts_op_def def = {.op_type = op_type, .domain = domain, .run = lua_op_run, .infer = lua_op_infer,
                     .user = op, .free_user = lua_op_free};
    if (ts_op_register(&def)) {
        luaL_unref(L, LUA_REGISTRYINDEX, op->fn_ref);
        free(op);
        return tsL_error(L);
    }
    return 0;
}

void tsL_open_graph(lua_State *L, int module)
{
    static const luaL_Reg methods[] = {
        {"save_onnx", g_save_onnx}, {"add_input", g_add_input}, {"add_output", g_add_output},
        {"set_const", g_set_const}, {"add_node", g_add_node}, {"set_meta", g_set_meta},
        {"set_producer", g_set_producer}, {"set_opset", g_set_opset}, {"info", g_info},
        {"value", g_value}, {"values", g_values}, {"const", g_const}, {"node", g_node},
        {"nodes", g_nodes}, {"infer", g_infer}, {"toposort", g_toposort}, {"optimize", g_optimize}, {"prune", g_prune},
        {"clone", g_clone}, {"flops", g_flops}, {"run", g_run}, {"run_all", g_run_all},
        {"free", graph_free}, {NULL, NULL},
    };
    static const luaL_Reg fns[] = {
        {"new", l_new}, {"load_onnx", l_load_onnx}, {"ops", l_ops}, {"register_op", l_register_op}, {NULL, NULL},
    };
    luaL_newmetatable(L, EXEC_BOX_MT);
    lua_pushcfunction(L, exec_box_gc); lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, GRAPH_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, graph_gc); lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, graph_free); lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, g_len); lua_setfield(L, -2, "__len");
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_setfield(L, module, "_graph");
}
