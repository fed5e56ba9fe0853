/* l_nn.c — neural-network functions for Lua, each both a torsh.* function and
 * a Tensor method: conv1d/conv2d, max/avg pooling (1-D and 2-D), adaptive
 * pooling, batch/layer/group norm (batch_norm_train: with batch statistics),
 * softmax and log_softmax, and the losses cross_entropy and nll_loss. All
 * go through the recording ops (torsh/autograd_ops.h), so they are
 * differentiable.
 *
 * Options come in a trailing table ({stride=, padding=, dilation=, groups=,
 * ceil_mode=, count_include_pad=, return_indices=}); a size is a number (the
 * same for every spatial dim) or a table {h, w}. Absent optional tensors
 * (bias, weight) are nil. Dims are 1-based (negative from the end). The
 * indices returned by max_pool2d are data, 0-based like PyTorch: the flat
 * position h * W + w of each maximum in its input plane. */
#include "tsl.h"
#include "torsh/autograd_ops.h"

#include <string.h>

/* ---- argument helpers --------------------------------------------------------------- */

/* Optional tensor at idx: NULL for none/nil. */
static ts_tensor *opttensor(lua_State *L, int idx)
{
    return lua_isnoneornil(L, idx) ? NULL : tsL_checktensor(L, idx);
}

/* A size at stack index idx: an integer or a table of n integers ({h, w});
 * `op` and `what` name it in errors. */
static void checksize(lua_State *L, int idx, int n, int64_t *out, const char *op, const char *what)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        int ok;
        lua_Integer v = lua_tointegerx(L, idx, &ok);
        if (!ok) luaL_error(L, "%s: %s must be an integer or a table of %d integers", op, what, n);
        for (int i = 0; i < n; i++) out[i] = v;
        return;
    }
    if (!lua_istable(L, idx) || (int)lua_rawlen(L, idx) != n)
        luaL_error(L, "%s: %s must be an integer or a table of %d integers", op, what, n);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok) luaL_error(L, "%s: %s must be an integer or a table of %d integers", op, what, n);
        out[i] = v;
        lua_pop(L, 1);
    }
}

/* Field `name` of the options table at idx as a size (def when absent). */
static void optsize(lua_State *L, int idx, const char *op, const char *name, int n, int64_t *out, int64_t def)
{
    for (int i = 0; i < n; i++) out[i] = def;
    if (!lua_istable(L, idx)) return;
    lua_getfield(L, idx, name);
    if (!lua_isnil(L, -1)) checksize(L, lua_gettop(L), n, out, op, name);
    lua_pop(L, 1);
}

static void checkopts(lua_State *L, int idx)
{
    if (!lua_isnoneornil(L, idx) && !lua_istable(L, idx)) luaL_typeerror(L, idx, "options table");
}

/* ---- convolution ----------------------------------------------------------------------- */

/* padding="same": PyTorch pads total = dilation * (k - 1) per dim, total / 2
 * before and the rest after. An odd total is computed with one more on both
 * sides and the first output dropped (stride 1 only, so that is exact). */

static ts_tensor *conv_call(int nsp, const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias,
                            const ts_conv_params *p)
{
    return nsp == 1 ? ts_ag_conv1d(x, w, bias, p) : ts_ag_conv2d(x, w, bias, p);
}

/* Drops the first output along each spatial dim i with extra[i] (takes y). */
static ts_tensor *drop_first(ts_tensor *y, int nsp, const bool *extra)
{
    for (int i = 0; i < nsp && y; i++) {
        if (!extra[i]) continue;
        int d = y->ndim - nsp + i;
        ts_tensor *v = ts_ag_narrow(y, d, 1, y->shape[d] - 1);
        ts_tensor *c = v ? ts_ag_contiguous(v) : NULL;
        ts_tensor_release(v);
        ts_tensor_release(y);
        y = c;
    }
    return y;
}

/* conv1d/conv2d(x, w, [bias], [opts]) */
static int conv_common(lua_State *L, int nsp)
{
    const char *op = nsp == 1 ? "conv1d" : "conv2d";
    ts_tensor *x = tsL_checktensor(L, 1), *w = tsL_checktensor(L, 2);
    int oi = 4;
    ts_tensor *bias = NULL;
    if (lua_istable(L, 3) && !tsL_totensor(L, 3)) oi = 3;   /* conv2d(x, w, opts) */
    else bias = opttensor(L, 3);
    checkopts(L, oi);
    ts_conv_params p;
    int64_t v[2];
    memset(&p, 0, sizeof p);
    /* for conv1d the single value goes to index 0, as ts_conv1d reads it */
    optsize(L, oi, op, "stride", nsp, v, 1);
    p.stride[0] = v[0]; p.stride[1] = v[nsp - 1];
    optsize(L, oi, op, "dilation", nsp, v, 1);
    p.dilation[0] = v[0]; p.dilation[1] = v[nsp - 1];
    p.groups = (int64_t)tsL_optfield_number(L, oi, "groups", 1);
    bool same = false, extra[2] = { false, false };
    if (lua_istable(L, oi)) {
        lua_getfield(L, oi, "padding");
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *mode = lua_tostring(L, -1);
            if (strcmp(mode, "same") == 0) same = true;
            else if (strcmp(mode, "valid") != 0)
                luaL_error(L, "%s: padding must be a number, a table, \"same\" or \"valid\", got \"%s\"", op, mode);
            lua_pop(L, 1);
            v[0] = v[1] = 0;
        } else {
            lua_pop(L, 1);
            optsize(L, oi, op, "padding", nsp, v, 0);
        }
    } else {
        v[0] = v[1] = 0;
    }
    p.padding[0] = v[0]; p.padding[1] = v[nsp - 1];
    if (same) {
        if (w->ndim != nsp + 2) luaL_error(L, "%s: padding=\"same\" needs a weight with %d dims", op, nsp + 2);
        for (int i = 0; i < nsp; i++) {
            int k = nsp == 1 ? 0 : i;   /* params index of spatial dim i */
            if (p.stride[k] != 1) luaL_error(L, "%s: padding=\"same\" is not supported for strided convolutions", op);
            int64_t total = p.dilation[k] * (w->shape[2 + i] - 1);
            p.padding[k] = total / 2 + total % 2;
            extra[i] = total % 2 != 0;
        }
    }
    ts_tensor **slot = tsL_newslot(L);
    *slot = drop_first(conv_call(nsp, x, w, bias, &p), nsp, extra);
    return tsL_result(L, *slot);
}

static int l_conv1d(lua_State *L) { return conv_common(L, 1); }
static int l_conv2d(lua_State *L) { return conv_common(L, 2); }

/* ---- pooling ------------------------------------------------------------------------------ */

/* Reads kernel (arg 2) and the options table (arg 3) of a pool over nsp dims
 * into p; the 1-D functions use index 0 like ts_max_pool1d. */
static void pool_params(lua_State *L, const char *op, int nsp, bool is_max, ts_pool_params *p)
{
    int64_t v[2];
    memset(p, 0, sizeof *p);
    checksize(L, 2, nsp, v, op, "kernel");
    p->kernel[0] = v[0]; p->kernel[1] = v[nsp - 1];
    checkopts(L, 3);
    bool has_stride = false;
    if (lua_istable(L, 3)) {
        has_stride = lua_getfield(L, 3, "stride") != LUA_TNIL;
        lua_pop(L, 1);
    }
    if (has_stride) optsize(L, 3, op, "stride", nsp, v, 1);
    else { v[0] = p->kernel[0]; v[1] = p->kernel[1]; }   /* stride defaults to the kernel */
    p->stride[0] = v[0]; p->stride[1] = v[nsp - 1];
    optsize(L, 3, op, "padding", nsp, v, 0);
    p->padding[0] = v[0]; p->padding[1] = v[nsp - 1];
    optsize(L, 3, op, "dilation", nsp, v, 1);
    p->dilation[0] = v[0]; p->dilation[1] = v[nsp - 1];
    if (!is_max && (p->dilation[0] != 1 || p->dilation[1] != 1)) luaL_error(L, "%s: there is no dilation option", op);
    p->ceil_mode = tsL_optfield_bool(L, 3, "ceil_mode", 0);
    p->count_include_pad = tsL_optfield_bool(L, 3, "count_include_pad", 1);
}

/* max_pool2d(x, kernel, [opts]) -> values [, indices with return_indices=true] */
static int l_max_pool2d(lua_State *L)
{
    ts_tensor *x = tsL_checktensor(L, 1);
    ts_pool_params p;
    pool_params(L, "max_pool2d", 2, true, &p);
    bool want = tsL_optfield_bool(L, 3, "return_indices", 0);
    ts_tensor **vs = tsL_newslot(L);
    ts_tensor **is = want ? tsL_newslot(L) : NULL;
    *vs = ts_ag_max_pool2d(x, &p, is);
    if (!*vs) return tsL_error(L);
    tsL_result(L, *vs);
    if (want) tsL_result(L, *is);
    return want ? 2 : 1;
}

static int l_avg_pool2d(lua_State *L)
{
    ts_tensor *x = tsL_checktensor(L, 1);
    ts_pool_params p;
    pool_params(L, "avg_pool2d", 2, false, &p);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_avg_pool2d(x, &p);
    return tsL_result(L, *slot);
}

static int l_max_pool1d(lua_State *L)
{
    ts_tensor *x = tsL_checktensor(L, 1);
    ts_pool_params p;
    pool_params(L, "max_pool1d", 1, true, &p);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_max_pool1d(x, &p);
    return tsL_result(L, *slot);
}

static int l_avg_pool1d(lua_State *L)
{
    ts_tensor *x = tsL_checktensor(L, 1);
    ts_pool_params p;
    pool_params(L, "avg_pool1d", 1, false, &p);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_avg_pool1d(x, &p);
    return tsL_result(L, *slot);
}

/* adaptive_avg_pool2d(x, size_or_{h, w}) / adaptive_max_pool2d */
static int adaptive(lua_State *L, bool is_max)
{
    ts_tensor *x = tsL_checktensor(L, 1);
    int64_t s[2];
    checksize(L, 2, 2, s, is_max ? "adaptive_max_pool2d" : "adaptive_avg_pool2d", "output size");
    ts_tensor **slot = tsL_newslot(L);
    *slot = is_max ? ts_ag_adaptive_max_pool2d(x, s[0], s[1]) : ts_ag_adaptive_avg_pool2d(x, s[0], s[1]);
    return tsL_result(L, *slot);
}

static int l_adaptive_avg_pool2d(lua_State *L) { return adaptive(L, false); }
static int l_adaptive_max_pool2d(lua_State *L) { return adaptive(L, true); }

/* ---- normalisation --------------------------------------------------------------------- */

/* batch_norm(x, running_mean, running_var, [weight], [bias], [eps=1e-5]) */
static int l_batch_norm(lua_State *L)
{
    ts_tensor *x = tsL_checktensor(L, 1), *m = tsL_checktensor(L, 2), *v = tsL_checktensor(L, 3);
    ts_tensor *w = opttensor(L, 4), *b = opttensor(L, 5);
    double eps = luaL_optnumber(L, 6, 1e-5);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_batch_norm(x, m, v, w, b, eps);
    return tsL_result(L, *slot);
}

/* batch_norm_train(x, [weight], [bias], [running_mean], [running_var],
 * [momentum=0.1], [eps=1e-5]): normalises with the batch statistics and
 * updates the running ones (when given) in place, like PyTorch in training. */
static int l_batch_norm_train(lua_State *L)
{
    ts_tensor *x = tsL_checktensor(L, 1), *w = opttensor(L, 2), *b = opttensor(L, 3);
    ts_tensor *m = opttensor(L, 4), *v = opttensor(L, 5);
    double momentum = luaL_optnumber(L, 6, 0.1), eps = luaL_optnumber(L, 7, 1e-5);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_batch_norm_train(x, w, b, m, v, momentum, eps);
    return tsL_result(L, *slot);
}

/* layer_norm(x, normalized_shape, [weight], [bias], [eps=1e-5]): the
 * normalized shape (a number or a table) must equal x's last dims. */
static int l_layer_norm(lua_State *L)
{
    ts_tensor *x = tsL_checktensor(L, 1);
    int64_t shape[TS_MAX_DIMS];
    int nd;
    if (lua_type(L, 2) == LUA_TNUMBER) {
        shape[0] = luaL_checkinteger(L, 2);
        nd = 1;
    } else {
        luaL_checktype(L, 2, LUA_TTABLE);
        nd = tsL_checkshape(L, 2, shape, NULL);
    }
    ts_tensor *w = opttensor(L, 3), *b = opttensor(L, 4);
    double eps = luaL_optnumber(L, 5, 1e-5);
    bool ok = nd >= 1 && nd <= x->ndim;
    for (int i = 0; ok && i < nd; i++) ok = shape[i] == x->shape[x->ndim - nd + i];
    if (!ok) {
        char a[TS_SHAPE_STR_CAP], c[TS_SHAPE_STR_CAP];
        return luaL_error(L, "layer_norm: normalized_shape %s does not match the last dims of input %s",
                          ts_shape_str(shape, nd, a, sizeof a), ts_shape_str(x->shape, x->ndim, c, sizeof c));
    }
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_layer_norm(x, nd, w, b, eps);
    return tsL_result(L, *slot);
}

/* group_norm(x, groups, [weight], [bias], [eps=1e-5]) */
static int l_group_norm(lua_State *L)
{
    ts_tensor *x = tsL_checktensor(L, 1);
    lua_Integer groups = luaL_checkinteger(L, 2);
    ts_tensor *w = opttensor(L, 3), *b = opttensor(L, 4);
    double eps = luaL_optnumber(L, 5, 1e-5);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_group_norm(x, groups, w, b, eps);
    return tsL_result(L, *slot);
}

/* softmax(x, dim) / log_softmax(x, dim): dim 1-based, negative from the end. */
static int softmax_common(lua_State *L, bool log)
{
    ts_tensor *x = tsL_checktensor(L, 1);
    int d = tsL_checkdim(L, 2, x->ndim);
    ts_tensor **slot = tsL_newslot(L);
    *slot = log ? ts_ag_log_softmax(x, d) : ts_ag_softmax(x, d);
    return tsL_result(L, *slot);
}

static int l_softmax(lua_State *L) { return softmax_common(L, false); }
static int l_log_softmax(lua_State *L) { return softmax_common(L, true); }

/* ---- losses ------------------------------------------------------------------------------ */

/* The options of a loss at idx: weight (a tensor or nil), ignore_index,
 * reduction ("none", "mean", "sum"). */
static void loss_opts(lua_State *L, int idx, const char *op, ts_tensor **weight, int64_t *ignore, ts_reduction *red)
{
    checkopts(L, idx);
    *weight = NULL;
    *ignore = (int64_t)tsL_optfield_number(L, idx, "ignore_index", -100);
    *red = TS_REDUCTION_MEAN;
    if (!lua_istable(L, idx)) return;
    if (lua_getfield(L, idx, "weight") != LUA_TNIL) {
        *weight = tsL_totensor(L, -1);
        if (!*weight) luaL_error(L, "%s: weight must be a tensor", op);
    }
    lua_pop(L, 1);   /* the table still holds the weight */
    if (lua_getfield(L, idx, "reduction") != LUA_TNIL) {
        const char *r = lua_tostring(L, -1);
        if (r && strcmp(r, "none") == 0) *red = TS_REDUCTION_NONE;
        else if (r && strcmp(r, "sum") == 0) *red = TS_REDUCTION_SUM;
        else if (!r || strcmp(r, "mean") != 0)
            luaL_error(L, "%s: reduction must be \"none\", \"mean\" or \"sum\", got %s", op,
                       r ? r : luaL_typename(L, -1));
    }
    lua_pop(L, 1);
}

/* cross_entropy(logits, target, [{weight=, ignore_index=-100, label_smoothing=0,
 * reduction="mean"}]): target holds 0-based class indices (data, like PyTorch). */
static int l_cross_entropy(lua_State *L)
{
    ts_tensor *x = tsL_checktensor(L, 1), *t = tsL_checktensor(L, 2), *w;
    int64_t ignore;
    ts_reduction red;
    loss_opts(L, 3, "cross_entropy", &w, &ignore, &red);
    double smoothing = tsL_optfield_number(L, 3, "label_smoothing", 0);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_cross_entropy(x, t, w, ignore, smoothing, red);
    return tsL_result(L, *slot);
}

/* nll_loss(log_probs, target, [{weight=, ignore_index=-100, reduction="mean"}]) */
static int l_nll_loss(lua_State *L)
{
    ts_tensor *x = tsL_checktensor(L, 1), *t = tsL_checktensor(L, 2), *w;
    int64_t ignore;
    ts_reduction red;
    loss_opts(L, 3, "nll_loss", &w, &ignore, &red);
    ts_tensor **slot = tsL_newslot(L);
    *slot = ts_ag_nll_loss(x, t, w, ignore, red);
    return tsL_result(L, *slot);
}

static const luaL_Reg nn_fns[] = {
    {"conv1d", l_conv1d}, {"conv2d", l_conv2d},
    {"max_pool2d", l_max_pool2d}, {"avg_pool2d", l_avg_pool2d},
    {"max_pool1d", l_max_pool1d}, {"avg_pool1d", l_avg_pool1d},
    {"adaptive_avg_pool2d", l_adaptive_avg_pool2d}, {"adaptive_max_pool2d", l_adaptive_max_pool2d},
    {"batch_norm", l_batch_norm}, {"batch_norm_train", l_batch_norm_train},
    {"layer_norm", l_layer_norm}, {"group_norm", l_group_norm},
    {"softmax", l_softmax}, {"log_softmax", l_log_softmax},
    {"cross_entropy", l_cross_entropy}, {"nll_loss", l_nll_loss},
    {NULL, NULL}
};

void tsL_open_nn(lua_State *L, int methods, int module, int mt)
{
    tsL_register(L, nn_fns, methods, module, mt);
}
