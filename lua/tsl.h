/* tsl.h — helpers shared by the Lua binding files (prefix tsL_).
 *
 * The binding only translates: check arguments, call one ts_ function, map
 * the status, push the result. Conventions every binding file follows:
 *  - Tensor functions are registered with one upvalue, the Tensor metatable,
 *    so checks are a pointer compare (no registry look-up).
 *  - Results: push the empty slot first (tsL_newslot), then fill it, then
 *    tsL_result(): if the core failed, the Lua error carries ts_last_error()
 *    and the empty slot is collected; nothing leaks past a longjmp.
 *  - Dims and positions typed as Lua numbers are 1-based (negative counts
 *    from the end: -1 is the last dim); index *tensors* are data and stay
 *    0-based like PyTorch and every file format. tsL_checkdim converts.
 */
#ifndef TORSH_TSL_H
#define TORSH_TSL_H

#include <lauxlib.h>
#include <lua.h>

#include "torsh/torsh.h"

#define TSL_TENSOR_MT "torsh.Tensor"
#define TSL_MT_UPVALUE lua_upvalueindex(1)

/* The tensor at idx (error if not a live tensor). Borrowed. */
ts_tensor *tsL_checktensor(lua_State *L, int idx);
/* The tensor at idx or NULL if the value is not a tensor (error if freed). */
ts_tensor *tsL_totensor(lua_State *L, int idx);
/* The tensor at idx, or a new 0-dim/1-D tensor made from a number or table
 * (typed like `like` when given); *owned tells the caller to release it. */
ts_tensor *tsL_checktensorlike(lua_State *L, int idx, const ts_tensor *like, int *owned);
/* Pushes an empty tensor userdata; returns its slot. Needs the metatable upvalue. */
ts_tensor **tsL_newslot(lua_State *L);
/* Same, for functions without the upvalue. */
ts_tensor **tsL_newslot_mt(lua_State *L);
/* Checks the slot just filled at the top of the stack: raises the core's
 * error if it is NULL; tells the GC about its bytes. Returns 1. */
int tsL_result(lua_State *L, ts_tensor *t);
/* Pushes a new reference (takes ownership of t; raises if t is NULL). */
int tsL_pushtensor(lua_State *L, ts_tensor *t);
/* Raises the core's last error as a Lua error. */
int tsL_error(lua_State *L);
/* Raises when st != TS_OK. */
void tsL_check(lua_State *L, ts_status st);

/* 1-based Lua dim (negative from the end) -> 0-based core dim. */
int tsL_checkdim(lua_State *L, int idx, int ndim);
int tsL_optdim(lua_State *L, int idx, int ndim, int def0);
/* dtype name at idx (default when none/nil). */
ts_dtype tsL_optdtype(lua_State *L, int idx, ts_dtype def);
/* Shape from varargs of integers starting at idx, or one table at idx.
 * Returns ndim; stops at the first non-integer value (*next gets its index). */
int tsL_checkshape(lua_State *L, int idx, int64_t *shape, int *next);
/* List of dims (1-based in Lua) from a number or table at idx; ndims 0 if nil. */
int tsL_optdims(lua_State *L, int idx, int ndim, int *dims);
/* Reads an optional field of an options table at idx. */
double tsL_optfield_number(lua_State *L, int idx, const char *field, double def);
int tsL_optfield_bool(lua_State *L, int idx, const char *field, int def);

/* ---- file functions (lua/l_util.c): expected failures return nil, message --- */
/* Pushes nil and ts_last_error(); returns 2. */
int tsL_pushfail(lua_State *L);
/* The list of tensors at idx into a GC-owned array pushed on the stack
 * (borrowed tensors); *n gets its length. `op` starts error messages. */
ts_tensor **tsL_checktensorlist(lua_State *L, int idx, const char *op, size_t *n);
/* Named tensors at idx, either a table name -> Tensor (sorted by name) or a
 * list of {name, Tensor} pairs (list order), into two GC-owned arrays
 * pushed on the stack; the names are borrowed from the table at idx (keep
 * it alive). `op` starts error messages. Returns the count. */
size_t tsL_checknamedtensors(lua_State *L, int idx, const char *op, const char ***names, ts_tensor ***tensors);
/* Entry i of a file as a new reference (NULL on failure) and its name. */
typedef ts_tensor *(*tsL_tensor_at)(void *ctx, size_t i, const char **name);
/* Pushes a table name -> Tensor of the n entries at(ctx, 0..n-1). Returns
 * false when one fails (the table stays pushed; see ts_last_error()). */
bool tsL_pushtensortable(lua_State *L, size_t n, tsL_tensor_at at, void *ctx);
/* Creates the metatable `name` of a handle userdata: __index = `methods`
 * (none when NULL), __gc = __close = `close` (idempotent). Leaves it on
 * the stack. */
void tsL_newhandletype(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction close);

/* The graph of a torsh.Graph userdata at idx (lua/l_graph.c); error if
 * not a live graph. Borrowed. */
ts_graph *tsL_checkgraph(lua_State *L, int idx);

/* Tells the Lua GC about nbytes of tensor memory just allocated. */
void tsL_account(lua_State *L, size_t nbytes);
/* The per-state random generator. */
ts_generator *tsL_generator(lua_State *L);

/* Registers functions both as Tensor methods (table at methods_idx) and
 * module functions (table at module_idx), each with the metatable upvalue. */
void tsL_register(lua_State *L, const luaL_Reg *fns, int methods_idx, int module_idx, int mt_idx);

/* Openers of each family of bindings (called by luaopen_torsh). */
void tsL_open_tensor(lua_State *L, int methods, int module, int mt);
void tsL_open_elementwise(lua_State *L, int methods, int module, int mt);
void tsL_open_reduce(lua_State *L, int methods, int module, int mt);
void tsL_open_nn(lua_State *L, int methods, int module, int mt);
void tsL_open_index(lua_State *L, int methods, int module, int mt);
void tsL_open_random(lua_State *L, int methods, int module, int mt);
void tsL_open_system(lua_State *L, int module);
void tsL_open_data(lua_State *L, int module);
void tsL_open_optim(lua_State *L, int module);
void tsL_open_io(lua_State *L, int module);
void tsL_open_hub(lua_State *L, int module);
void tsL_open_graph(lua_State *L, int module);
void tsL_open_prof(lua_State *L, int module);
void tsL_open_tb(lua_State *L, int module);
void tsL_open_safetensors(lua_State *L, int module);
void tsL_open_npz(lua_State *L, int module);
void tsL_open_pt(lua_State *L, int module);
void tsL_open_autograd(lua_State *L, int methods, int module, int mt);

#endif
