/* l_index.c — indexing, joining and rearranging for Lua: index_select,
 * embedding, gather, scatter_add(_), one_hot, masked_select, masked_fill,
 * cat, stack, split, chunk, pad, flip, repeat (also named tile), tril, triu.
 *
 * Dims are 1-based Lua numbers (negative from the end); index TENSORS
 * (index_select / embedding / gather / scatter_add indices, one_hot's
 * classes) are data and stay 0-based like PyTorch. An index may also be
 * given as a Lua table of integers (or one integer). split and chunk return
 * a Lua list of views. Everything but one_hot is differentiable (the
 * ts_ag_ versions are called); scatter_add_ refuses tensors in a graph. */
#include "tsl.h"
#include "torsh/autograd_ops.h"

#include <stdlib.h>
#include <string.h>

ts_tensor *tsL_tensor_from_table(lua_State *L, int idx, int dt);

/* The index at idx: a tensor (borrowed), or an integer / table of integers
 * made into a new i64 tensor (*owned = 1). Call it right before the core
 * op: nothing may raise between it and the release. */
static ts_tensor *check_index(lua_State *L, int idx, int *owned)
{
    ts_tensor *t = tsL_totensor(L, idx);
    *owned = 0;
    if (t) return t;
    if (lua_isinteger(L, idx)) {
        t = ts_tensor_scalar((double)lua_tointeger(L, idx), TS_I64);
    } else if (lua_istable(L, idx)) {
        t = tsL_tensor_from_table(L, idx, lua_rawlen(L, idx) == 0 ? TS_I64 : -1);
    } else {
        luaL_typeerror(L, idx, "Tensor, integer or table of integers");
    }
    if (!t) tsL_error(L);
    *owned = 1;
    return t;
}

/* The mask at idx: a tensor, or a (nested) table of booleans. */
static ts_tensor *check_mask(lua_State *L, int idx, int *owned)
{
    ts_tensor *t = tsL_totensor(L, idx);
    *owned = 0;
    if (t) return t;
    luaL_checktype(L, idx, LUA_TTABLE);
    t = tsL_tensor_from_table(L, idx, TS_BOOL);
    if (!t) tsL_error(L);
    *owned = 1;
    return t;
}

static int finish(lua_State *L, ts_tensor **slot, ts_tensor *owned)
{
    ts_tensor_release(owned);
    return tsL_result(L, *slot);
}

/* ---- indexing ------------------------------------------------------------------- */

/* t:index_select(dim, index) — dim 1-based; index holds 0-based positions. */
static int l_index_select(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int d = tsL_checkdim(L, 2, t->ndim);
    ts_tensor **slot = tsL_newslot(L);
    int owned;
    ts_tensor *idx = check_index(L, 3, &owned);
    *slot = ts_ag_index_select(t, d, idx);
    return finish(L, slot, owned ? idx : NULL);
}

/* torsh.embedding(weight, index) — rows of weight [V, D] for 0-based ids. */
static int l_embedding(lua_State *L)
{
    ts_tensor *w = tsL_checktensor(L, 1);
    ts_tensor **slot = tsL_newslot(L);
    int owned;
    ts_tensor *idx = check_index(L, 2, &owned);
    *slot = ts_ag_embedding(w, idx);
    return finish(L, slot, owned ? idx : NULL);
}

/* t:gather(dim, index) */
static int l_gather(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int d = tsL_checkdim(L, 2, t->ndim);
    ts_tensor **slot = tsL_newslot(L);
    int owned;
    ts_tensor *idx = check_index(L, 3, &owned);
    *slot = ts_ag_gather(t, d, idx);
    return finish(L, slot, owned ? idx : NULL);
}

/* t:scatter_add(dim, index, src) -> new tensor */
static int l_scatter_add(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int d = tsL_checkdim(L, 2, t->ndim);
    ts_tensor *src = tsL_checktensor(L, 4);
    ts_tensor **slot = tsL_newslot(L);
    int owned;
    ts_tensor *idx = check_index(L, 3, &owned);
    *slot = ts_ag_scatter_add(t, d, idx, src);
    return finish(L, slot, owned ? idx : NULL);
}

/* t:scatter_add_(dim, index, src) -> t */
static int l_scatter_add_(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int d = tsL_checkdim(L, 2, t->ndim);
    ts_tensor *src = tsL_checktensor(L, 4);
    tsL_check(L, ts_ag_check_inplace("scatter_add_", t));
    int owned;
    ts_tensor *idx = check_index(L, 3, &owned);
    ts_status st = ts_scatter_add_(t, d, idx, src);
    if (owned) ts_tensor_release(idx);
    tsL_check(L, st);
    lua_settop(L, 1);
    return 1;
}

/* torsh.one_hot(index [, num_classes = -1]) -> i64 with a trailing class dim */
static int l_one_hot(lua_State *L)
{
    lua_Integer classes = luaL_optinteger(L, 2, -1);
    ts_tensor **slot = tsL_newslot(L);
    int owned;
    ts_tensor *idx = check_index(L, 1, &owned);
    *slot = ts_one_hot(idx, classes);
    return finish(L, slot, owned ? idx : NULL);
}

/* t:masked_select(mask) -> 1-D tensor of the elements where mask is true */
static int l_masked_select(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    ts_tensor **slot = tsL_newslot(L);
    int owned;
    ts_tensor *mask = check_mask(L, 2, &owned);
    *slot = ts_ag_masked_select(t, mask);
    return finish(L, slot, owned ? mask : NULL);
}

/* t:masked_fill(mask, value) */
static int l_masked_fill(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    double v = lua_isboolean(L, 3) ? lua_toboolean(L, 3) : luaL_checknumber(L, 3);
    ts_tensor **slot = tsL_newslot(L);
    int owned;
    ts_tensor *mask = check_mask(L, 2, &owned);
    *slot = ts_ag_masked_fill(t, mask, v);
    return finish(L, slot, owned ? mask : NULL);
}

/* ---- cat and stack ------------------------------------------------------------------ */

/* Reads a list of tensors (borrowed; kept alive by the list) into a
 * userdata-backed array so nothing leaks if a check raises. */
static ts_tensor **check_list(lua_State *L, int idx, int *n)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    int len = (int)luaL_len(L, idx);
    if (len < 1) luaL_argerror(L, idx, "expected a non-empty list of tensors");
    ts_tensor **ts = lua_newuserdatauv(L, sizeof(ts_tensor *) * (size_t)len, 0);
    for (int i = 1; i <= len; i++) {
        lua_rawgeti(L, idx, i);
        ts_tensor **ud = luaL_testudata(L, -1, TSL_TENSOR_MT);
        if (!ud) luaL_argerror(L, idx, lua_pushfstring(L, "entry %d is a %s, not a Tensor", i, luaL_typename(L, -1)));
        if (!*ud) luaL_argerror(L, idx, lua_pushfstring(L, "entry %d was freed", i));
        ts[i - 1] = *ud;
        lua_pop(L, 1);
    }
    *n = len;
    return ts;
}

/* torsh.cat(list [, dim = 1]) / torsh.stack(list [, dim = 1]) */
static int join(lua_State *L, bool stack)
{
    int n;
    lua_settop(L, 2);                      /* the list's scratch array goes to 3 */
    ts_tensor **ts = check_list(L, 1, &n);
    int first = 0;                         /* cat skips 1-D empty tensors (PyTorch's legacy rule) */
    while (!stack && first < n - 1 && ts[first]->ndim == 1 && ts[first]->shape[0] == 0) first++;
    int ndim = ts[first]->ndim + (stack ? 1 : 0);
    int d = tsL_optdim(L, 2, ndim, 0);
    ts_tensor **slot = tsL_newslot(L);
    *slot = stack ? ts_ag_stack(ts, n, d) : ts_ag_cat(ts, n, d);
    return tsL_result(L, *slot);
}
static int l_cat(lua_State *L) { return join(L, false); }
static int l_stack(lua_State *L) { return join(L, true); }

/* ---- split and chunk ------------------------------------------------------------------ */

/* The views made by split / chunk live in a holder userdata until each has
 * its own Lua slot, so a raise (out of memory) in between leaks nothing:
 * the holder's __gc releases what it still owns. */
static const char HOLDER_MT[] = "torsh.split_holder";

typedef struct { ts_tensor **outs; int n; } holder;

static int holder_gc(lua_State *L)
{
    holder *h = luaL_checkudata(L, 1, HOLDER_MT);
    for (int i = 0; i < h->n; i++) ts_tensor_release(h->outs[i]);
    free(h->outs);
    h->outs = NULL;
    h->n = 0;
    return 0;
}

static holder *new_holder(lua_State *L)
{
    holder *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->outs = NULL;
    h->n = 0;
    luaL_setmetatable(L, HOLDER_MT);
    return h;
}

/* Replaces the holder at the top of the stack by a Lua list of its views. */
static int push_list(lua_State *L, holder *h)
{
    lua_createtable(L, h->n, 0);
    for (int i = 0; i < h->n; i++) {
        ts_tensor **slot = tsL_newslot(L);
        *slot = h->outs[i];
        h->outs[i] = NULL;
        lua_rawseti(L, -2, i + 1);
    }
    free(h->outs);
    h->outs = NULL;
    h->n = 0;
    return 1;
}

/* t:split(size [, dim = 1]) or t:split({sizes...} [, dim = 1]) -> list of views */
static int l_split(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int d = tsL_optdim(L, 3, t->ndim, 0);
    if (lua_istable(L, 2)) {
        int len = (int)luaL_len(L, 2);
        int64_t *sizes = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(len > 0 ? len : 1), 0);
        for (int i = 1; i <= len; i++) {
            lua_rawgeti(L, 2, i);
            int ok;
            sizes[i - 1] = lua_tointegerx(L, -1, &ok);
            if (!ok) luaL_argerror(L, 2, "split sizes must be integers");
            lua_pop(L, 1);
        }
        holder *h = new_holder(L);
        tsL_check(L, ts_ag_split_sizes(t, sizes, len, d, &h->outs));
        h->n = len;
        return push_list(L, h);
    }
    lua_Integer size = luaL_checkinteger(L, 2);
    holder *h = new_holder(L);
    tsL_check(L, ts_ag_split(t, size, d, &h->outs, &h->n));
    return push_list(L, h);
}

/* t:chunk(n [, dim = 1]) -> list of views (PyTorch's sizing: ceil(size/n) each) */
static int l_chunk(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    lua_Integer chunks = luaL_checkinteger(L, 2);
    int d = tsL_optdim(L, 3, t->ndim, 0);
    luaL_argcheck(L, chunks > 0 && chunks <= (1 << 24), 2, "number of chunks must be in 1..2^24");
    holder *h = new_holder(L);
    tsL_check(L, ts_ag_chunk(t, (int)chunks, d, &h->outs, &h->n));
    return push_list(L, h);
}

/* ---- pad, flip, repeat, tril, triu ------------------------------------------------------ */

/* t:pad({last_lo, last_hi, prev_lo, prev_hi, ...} [, mode = "constant" [, value = 0]])
 * — torch.nn.functional.pad's order: the last dim first; negative pads crop. */
static int l_pad(lua_State *L)
{
    static const char *const modes[] = { "constant", "reflect", "replicate", "circular", NULL };
    ts_tensor *t = tsL_checktensor(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = (int)luaL_len(L, 2);
    luaL_argcheck(L, n <= 2 * TS_MAX_DIMS, 2, "too many pads");
    int64_t pads[2 * TS_MAX_DIMS];
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        int ok;
        pads[i - 1] = lua_tointegerx(L, -1, &ok);
        if (!ok) luaL_argerror(L, 2, "pads must be integers");
        lua_pop(L, 1);
    }
    int mode = luaL_checkoption(L, 3, "constant", modes);
    double value = luaL_optnumber(L, 4, 0);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_pad(t, pads, n, (ts_pad_mode)mode, value);
    return tsL_result(L, *slot);
}

/* t:flip(dims) — dims: one 1-based dim or a table of them */
static int l_flip(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int dims[TS_MAX_DIMS];
    luaL_argcheck(L, !lua_isnoneornil(L, 2), 2, "dims expected");
    int n = lua_istable(L, 2) && luaL_len(L, 2) == 0 ? 0 : tsL_optdims(L, 2, t->ndim, dims);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_flip(t, dims, n);
    return tsL_result(L, *slot);
}

/* t:repeat(r1, r2, ...) / t["repeat"](t, {r...}): at least ndim counts, like
 * torch's repeat; t:tile(...) also accepts fewer (leading ones), like torch.tile. */
static int repeat_like(lua_State *L, bool tile)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    int64_t reps[TS_MAX_DIMS], full[TS_MAX_DIMS];
    int next, n = tsL_checkshape(L, 2, reps, &next);
    if (tile && n < t->ndim) {
        int lead = t->ndim - n;
        for (int i = 0; i < t->ndim; i++) full[i] = i < lead ? 1 : reps[i - lead];
        memcpy(reps, full, sizeof reps);
        n = t->ndim;
    }
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_repeat(t, reps, n);
    return tsL_result(L, *slot);
}
static int l_repeat(lua_State *L) { return repeat_like(L, false); }
static int l_tile(lua_State *L) { return repeat_like(L, true); }

/* t:tril([diagonal = 0]) / t:triu([diagonal = 0]) */
static int l_tril(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    lua_Integer k = luaL_optinteger(L, 2, 0);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_tril(t, k);
    return tsL_result(L, *slot);
}

static int l_triu(lua_State *L)
{
    ts_tensor *t = tsL_checktensor(L, 1);
    lua_Integer k = luaL_optinteger(L, 2, 0);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_triu(t, k);
    return tsL_result(L, *slot);
}

static const luaL_Reg both[] = {
    {"index_select", l_index_select}, {"gather", l_gather}, {"scatter_add", l_scatter_add},
    {"scatter_add_", l_scatter_add_}, {"one_hot", l_one_hot}, {"masked_select", l_masked_select},
    {"masked_fill", l_masked_fill}, {"split", l_split}, {"chunk", l_chunk}, {"pad", l_pad}, {"flip", l_flip},
    {"repeat", l_repeat}, {"tile", l_tile}, {"tril", l_tril}, {"triu", l_triu},
    {NULL, NULL}
};

static const luaL_Reg module_only[] = {
    {"embedding", l_embedding}, {"cat", l_cat}, {"stack", l_stack},
    {NULL, NULL}
};

void tsL_open_index(lua_State *L, int methods, int module, int mt)
{
    tsL_register(L, both, methods, module, mt);
    tsL_register(L, module_only, 0, module, mt);
    luaL_newmetatable(L, HOLDER_MT);
    lua_pushcfunction(L, holder_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}
