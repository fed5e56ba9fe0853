/* l_tb.c — the binding of core/tb (torsh/tb.h) for stdlib/torsh/tb.lua,
 * registered as `require "torsh.tb.core"`. One userdata type, the event
 * file writer (metatable "torsh.tb.Writer"), whose __gc and __close are the
 * same idempotent release; w:close() flushes and closes the file but keeps
 * the object (its logdir and file stay readable). Every failure raises the
 * core's message (an unwritable log dir, a full disk, a bad argument).
 *
 *   core.open(logdir [, {flush_secs=, max_queue=, filename_suffix=}]) -> Writer
 *   core.hostname() -> string           core.now() -> wall-clock seconds
 *   w:add_scalar(tag, value, step, walltime, style)      style "simple"|"f32"|"f64"
 *   w:add_histogram(tag, values, step, walltime, bins, max_bins)
 *       bins: nil|"tensorflow" (default edges), integer (equal bins), table of edges
 *   w:add_histogram_raw(tag, min, max, num, sum, sum_squares, limits, counts, step, walltime)
 *   w:add_image(tag, img, step, walltime, dataformats)
 *   w:add_audio(tag, samples, step, walltime, sample_rate)
 *   w:add_text(tag, text, step, walltime)
 *   w:add_pr_curve(tag, labels, predictions, step, walltime, num_thresholds, weights)
 *   w:add_hparams({{name=, value=, domain={...}}, ...}, {{name, value}, ...}, walltime)
 *   w:add_custom_scalars({{title=, closed=, charts={{title=, margin=, tags={...}}}}}, walltime)
 *   w:add_graph(graph, walltime)                           graph: a torsh._graph Graph
 *   w:add_embedding(mat, labels|nil, header|nil, label_img|nil, step, tag)
 *   w:flush()  w:close()  w:logdir()  w:file()  w:pending()
 * Steps default to 0 and walltimes to now; tensors may also be given as
 * numbers or (nested) tables. */
#include "tsl.h"
#include "torsh/tb.h"

#include <stdlib.h>
#include <string.h>

#define WRITER_MT "torsh.tb.Writer"

typedef struct lwriter { ts_tb_writer *w; } lwriter;

static ts_tb_writer *check_writer(lua_State *L)
{
    lwriter *lw = luaL_checkudata(L, 1, WRITER_MT);
    if (!lw->w) luaL_error(L, "SummaryWriter: the writer was released");
    return lw->w;
}

static int writer_release(lua_State *L)
{
    lwriter *lw = luaL_checkudata(L, 1, WRITER_MT);
    ts_tb_writer_free(lw->w);
    lw->w = NULL;
    return 0;
}

static int64_t opt_step(lua_State *L, int idx) { return (int64_t)luaL_optinteger(L, idx, 0); }
static double opt_walltime(lua_State *L, int idx) { return luaL_optnumber(L, idx, TS_TB_NOW); }

/* A tensor argument: a live tensor (borrowed) or a number/table turned into
 * a tensor that the caller releases (*owned). Checked before anything else
 * is held, so a Lua error here leaks nothing. */
static ts_tensor *tensor_arg(lua_State *L, int idx, int *owned)
{
    return tsL_checktensorlike(L, idx, NULL, owned);
}

/* ---- open ----------------------------------------------------------------------------- */

static int l_open(lua_State *L)
{
    const char *logdir = luaL_checkstring(L, 1);
    ts_tb_options o = {0};
    if (lua_istable(L, 2)) {
        o.flush_secs = tsL_optfield_number(L, 2, "flush_secs", 0);
        o.max_queue = (int)tsL_optfield_number(L, 2, "max_queue", 0);
        lua_getfield(L, 2, "filename_suffix");            /* stays on the stack during the call */
        if (!lua_isnil(L, -1)) o.filename_suffix = luaL_checkstring(L, -1);
        if (o.flush_secs < 0) luaL_error(L, "SummaryWriter: flush_secs must be positive");
    }
    lwriter *lw = lua_newuserdatauv(L, sizeof *lw, 0);
    lw->w = NULL;
    luaL_setmetatable(L, WRITER_MT);
    lw->w = ts_tb_writer_open(logdir, &o);
    if (!lw->w) return tsL_error(L);
    return 1;
}

static int l_hostname(lua_State *L)
{
    lua_pushstring(L, ts_tb_hostname());
    return 1;
}

static int l_now(lua_State *L)
{
    lua_pushnumber(L, ts_tb_now());
    return 1;
}

/* ---- methods ----------------------------------------------------------------------------- */

static int l_add_scalar(lua_State *L)
{
    ts_tb_writer *w = check_writer(L);
    const char *tag = luaL_checkstring(L, 2);
    double v;
    ts_tensor *t = tsL_totensor(L, 3);
    if (t) {
        if (ts_tensor_numel(t) != 1) return luaL_error(L, "add_scalar '%s': the tensor has %d elements, expected 1", tag, (int)ts_tensor_numel(t));
        v = ts_tensor_item_at(t, 0);
    } else if (lua_isboolean(L, 3)) {
        v = lua_toboolean(L, 3);
    } else {
        v = luaL_checknumber(L, 3);
    }
    int64_t step = opt_step(L, 4);
    double wt = opt_walltime(L, 5);
    static const char *const styles[] = {"simple", "f32", "f64", NULL};
    int style = luaL_checkoption(L, 6, "simple", styles);
    tsL_check(L, ts_tb_add_scalar(w, tag, v, step, wt, (ts_tb_scalar_style)style));
    return 0;
}

static int l_add_histogram(lua_State *L)
{
    ts_tb_writer *w = check_writer(L);
    const char *tag = luaL_checkstring(L, 2);
    int64_t step = opt_step(L, 4);
    double wt = opt_walltime(L, 5);
    ts_tb_bins bins = {0};
    bins.max_bins = (int64_t)luaL_optinteger(L, 7, 0);
    double *edges = NULL;
    if (lua_type(L, 6) == LUA_TSTRING) {
        if (strcmp(lua_tostring(L, 6), "tensorflow") != 0)
            return luaL_error(L, "add_histogram '%s': bins '%s' is not supported (use \"tensorflow\", a count or a list of edges)", tag, lua_tostring(L, 6));
    } else if (lua_isinteger(L, 6)) {
        bins.count = (int64_t)lua_tointeger(L, 6);
        if (bins.count < 1) return luaL_error(L, "add_histogram '%s': bins must be at least 1", tag);
    } else if (lua_istable(L, 6)) {
        lua_Integer n = luaL_len(L, 6);
        edges = lua_newuserdatauv(L, sizeof(double) * (size_t)(n ? n : 1), 0);   /* GC-owned scratch */
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, 6, i);
            int ok;
            edges[i - 1] = lua_tonumberx(L, -1, &ok);
            if (!ok) return luaL_error(L, "add_histogram '%s': bin edge %d is not a number", tag, (int)i);
            lua_pop(L, 1);
        }
        bins.edges = edges;
        bins.n_edges = n;
    } else if (!lua_isnoneornil(L, 6)) {
        return luaL_typeerror(L, 6, "nil, \"tensorflow\", integer or table of edges");
    }
    int owned;
    ts_tensor *t = tensor_arg(L, 3, &owned);
    ts_status st = ts_tb_add_histogram(w, tag, t, &bins, step, wt);
    if (owned) ts_tensor_release(t);
    tsL_check(L, st);
    return 0;
}

static double *number_list(lua_State *L, int idx, lua_Integer *n, const char *what)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    *n = luaL_len(L, idx);
    double *v = lua_newuserdatauv(L, sizeof(double) * (size_t)(*n ? *n : 1), 0);
    for (lua_Integer i = 1; i <= *n; i++) {
        lua_rawgeti(L, idx, i);
        int ok;
        v[i - 1] = lua_tonumberx(L, -1, &ok);
        if (!ok) luaL_error(L, "add_histogram_raw: %s[%d] is not a number", what, (int)i);
        lua_pop(L, 1);
    }
    return v;
}

static int l_add_histogram_raw(lua_State *L)
{
    ts_tb_writer *w = check_writer(L);
    const char *tag = luaL_checkstring(L, 2);
    double mn = luaL_checknumber(L, 3), mx = luaL_checknumber(L, 4), num = luaL_checknumber(L, 5);
    double sum = luaL_checknumber(L, 6), ss = luaL_checknumber(L, 7);
    lua_Integer nl, nc;
    double *lim = number_list(L, 8, &nl, "bucket_limits"), *cnt = number_list(L, 9, &nc, "bucket_counts");
    if (nl != nc) return luaL_error(L, "add_histogram_raw '%s': %d bucket limits but %d counts", tag, (int)nl, (int)nc);
    tsL_check(L, ts_tb_add_histogram_raw(w, tag, mn, mx, num, sum, ss, lim, cnt, nl, opt_step(L, 10), opt_walltime(L, 11)));
    return 0;
}

static int l_add_image(lua_State *L)
{
    ts_tb_writer *w = check_writer(L);
    const char *tag = luaL_checkstring(L, 2);
    int64_t step = opt_step(L, 4);
    double wt = opt_walltime(L, 5);
    const char *fmt = luaL_optstring(L, 6, NULL);
    int owned;
    ts_tensor *t = tensor_arg(L, 3, &owned);
    ts_status st = ts_tb_add_image(w, tag, t, fmt, step, wt);
    if (owned) ts_tensor_release(t);
    tsL_check(L, st);
    return 0;
}

static int l_add_audio(lua_State *L)
{
    ts_tb_writer *w = check_writer(L);
    const char *tag = luaL_checkstring(L, 2);
    int64_t step = opt_step(L, 4);
    double wt = opt_walltime(L, 5);
    double rate = luaL_optnumber(L, 6, 44100);
    int owned;
    ts_tensor *t = tensor_arg(L, 3, &owned);
    ts_status st = ts_tb_add_audio(w, tag, t, rate, step, wt);
    if (owned) ts_tensor_release(t);
    tsL_check(L, st);
    return 0;
}

static int l_add_text(lua_State *L)
{
    ts_tb_writer *w = check_writer(L);
    const char *tag = luaL_checkstring(L, 2);
    size_t len;
    const char *text = luaL_checklstring(L, 3, &len);
    tsL_check(L, ts_tb_add_text(w, tag, text, len, opt_step(L, 4), opt_walltime(L, 5)));
    return 0;
}

static int l_add_pr_curve(lua_State *L)
{
    ts_tb_writer *w = check_writer(L);
    const char *tag = luaL_checkstring(L, 2);
    int64_t step = opt_step(L, 5);
    double wt = opt_walltime(L, 6);
    int nt = (int)luaL_optinteger(L, 7, 127);
    int ol = 0, op = 0, ow = 0;
    ts_tensor *lab = tensor_arg(L, 3, &ol);
    ts_tensor *pred = NULL, *wts = NULL;
    /* later conversions may raise: anchor the owned ones as Lua values first */
    if (ol) { tsL_pushtensor(L, lab); lab = tsL_checktensor(L, -1); }
    pred = tensor_arg(L, 4, &op);
    if (op) { tsL_pushtensor(L, pred); pred = tsL_checktensor(L, -1); }
    if (!lua_isnoneornil(L, 8)) {
        wts = tensor_arg(L, 8, &ow);
        if (ow) { tsL_pushtensor(L, wts); wts = tsL_checktensor(L, -1); }
    }
    tsL_check(L, ts_tb_add_pr_curve(w, tag, lab, pred, wts, nt, step, wt));
    return 0;
}

/* {type, number, string, boolean} from the Lua value at idx (borrowed string). */
static ts_tb_hvalue hvalue(lua_State *L, int idx, const char *name)
{
    ts_tb_hvalue v = {0};
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER: v.type = TS_TB_HP_NUMBER; v.number = lua_tonumber(L, idx); break;
    case LUA_TBOOLEAN: v.type = TS_TB_HP_BOOL; v.boolean = lua_toboolean(L, idx); break;
    case LUA_TSTRING: v.type = TS_TB_HP_STRING; v.string = lua_tostring(L, idx); break;
    default: {
        ts_tensor *t = tsL_totensor(L, idx);
        if (t && ts_tensor_numel(t) == 1) { v.type = TS_TB_HP_NUMBER; v.number = ts_tensor_item_at(t, 0); break; }
        luaL_error(L, "add_hparams: '%s' is a %s; values must be numbers, strings, booleans or 1-element tensors",
                   name, luaL_typename(L, idx));
    }
    }
    return v;
}

static int l_add_hparams(lua_State *L)
{
    ts_tb_writer *w = check_writer(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    double wt = opt_walltime(L, 4);
    lua_settop(L, 4);
    int nh = (int)luaL_len(L, 2), nm = (int)luaL_len(L, 3), ndom = 0;
    for (int i = 1; i <= nh; i++) {
        lua_rawgeti(L, 2, i);
        luaL_checktype(L, -1, LUA_TTABLE);
        lua_getfield(L, -1, "domain");
        if (lua_istable(L, -1)) ndom += (int)luaL_len(L, -1);
        lua_pop(L, 2);
    }
    ts_tb_hparam *hp = lua_newuserdatauv(L, sizeof *hp * (size_t)(nh ? nh : 1), 0);
    ts_tb_hvalue *dom = lua_newuserdatauv(L, sizeof *dom * (size_t)(ndom ? ndom : 1), 0);
    const char **mtags = lua_newuserdatauv(L, sizeof *mtags * (size_t)(nm ? nm : 1), 0);
    double *mvals = lua_newuserdatauv(L, sizeof *mvals * (size_t)(nm ? nm : 1), 0);
    /* every string the core borrows stays on the stack until the call returns */
    luaL_checkstack(L, 4 * nh + ndom + 3 * nm + 8, "add_hparams: too many hyper-parameters");
    int d = 0;
    for (int i = 1; i <= nh; i++) {
        lua_rawgeti(L, 2, i);
        int e = lua_gettop(L);
        lua_getfield(L, e, "name");
        hp[i - 1].name = luaL_checkstring(L, -1);
        lua_getfield(L, e, "value");
        hp[i - 1].value = hvalue(L, -1, hp[i - 1].name);
        lua_getfield(L, e, "domain");
        int dt = lua_gettop(L);
        hp[i - 1].domain = &dom[d];
        hp[i - 1].n_domain = 0;
        if (lua_istable(L, dt)) {
            int n = (int)luaL_len(L, dt);
            for (int k = 1; k <= n && d < ndom; k++) {
                lua_rawgeti(L, dt, k);
                dom[d++] = hvalue(L, -1, hp[i - 1].name);
                hp[i - 1].n_domain++;
            }
        }
    }
    for (int i = 1; i <= nm; i++) {
        lua_rawgeti(L, 3, i);
        luaL_checktype(L, -1, LUA_TTABLE);
        lua_rawgeti(L, -1, 1);
        mtags[i - 1] = luaL_checkstring(L, -1);
        lua_rawgeti(L, -2, 2);
        ts_tensor *t = tsL_totensor(L, -1);
        if (t && ts_tensor_numel(t) == 1) mvals[i - 1] = ts_tensor_item_at(t, 0);
        else {
            int ok;
            mvals[i - 1] = lua_tonumberx(L, -1, &ok);
            if (!ok) return luaL_error(L, "add_hparams: metric '%s' must be a number", mtags[i - 1]);
        }
    }
    tsL_check(L, ts_tb_add_hparams(w, hp, nh, mtags, mvals, nm, wt));
    return 0;
}

static int l_add_custom_scalars(lua_State *L)
{
    ts_tb_writer *w = check_writer(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    double wt = opt_walltime(L, 3);
    lua_settop(L, 3);
    int nc = (int)luaL_len(L, 2), nch = 0, ntags = 0;
    for (int i = 1; i <= nc; i++) {
        lua_rawgeti(L, 2, i);
        luaL_checktype(L, -1, LUA_TTABLE);
        lua_getfield(L, -1, "charts");
        luaL_checktype(L, -1, LUA_TTABLE);
        int n = (int)luaL_len(L, -1);
        nch += n;
        for (int k = 1; k <= n; k++) {
            lua_rawgeti(L, -1, k);
            luaL_checktype(L, -1, LUA_TTABLE);
            lua_getfield(L, -1, "tags");
            luaL_checktype(L, -1, LUA_TTABLE);
            ntags += (int)luaL_len(L, -1);
            lua_pop(L, 2);
        }
        lua_pop(L, 2);
    }
    ts_tb_category *cats = lua_newuserdatauv(L, sizeof *cats * (size_t)(nc ? nc : 1), 0);
    ts_tb_chart *charts = lua_newuserdatauv(L, sizeof *charts * (size_t)(nch ? nch : 1), 0);
    const char **tags = lua_newuserdatauv(L, sizeof *tags * (size_t)(ntags ? ntags : 1), 0);
    /* every string the core borrows stays on the stack until the call returns */
    luaL_checkstack(L, 3 * nc + 4 * nch + ntags + 8, "add_custom_scalars: layout too large");
    int c = 0, t = 0;
    for (int i = 1; i <= nc; i++) {
        lua_rawgeti(L, 2, i);
        int cat = lua_gettop(L);
        lua_getfield(L, cat, "title");
        cats[i - 1].title = luaL_optstring(L, -1, "");
        cats[i - 1].closed = tsL_optfield_bool(L, cat, "closed", 0);
        lua_getfield(L, cat, "charts");
        int chs = lua_gettop(L);
        int n = (int)luaL_len(L, chs);
        cats[i - 1].charts = &charts[c];
        cats[i - 1].n_charts = 0;
        for (int k = 1; k <= n && c < nch; k++, c++) {
            lua_rawgeti(L, chs, k);
            int ch = lua_gettop(L);
            lua_getfield(L, ch, "title");
            charts[c].title = luaL_optstring(L, -1, "");
            charts[c].margin = tsL_optfield_bool(L, ch, "margin", 0);
            lua_getfield(L, ch, "tags");
            int tg = lua_gettop(L);
            int nt = (int)luaL_len(L, tg);
            charts[c].tags = &tags[t];
            charts[c].n_tags = 0;
            for (int j = 1; j <= nt && t < ntags; j++) {
                lua_rawgeti(L, tg, j);
                tags[t++] = luaL_checkstring(L, -1);
                charts[c].n_tags++;
            }
            cats[i - 1].n_charts++;
        }
    }
    tsL_check(L, ts_tb_add_custom_scalars(w, cats, nc, wt));
    return 0;
}

static int l_add_graph(lua_State *L)
{
    ts_tb_writer *w = check_writer(L);
    ts_graph *g = tsL_checkgraph(L, 2);
    tsL_check(L, ts_tb_add_graph(w, g, opt_walltime(L, 3)));
    return 0;
}

static int l_add_embedding(lua_State *L)
{
    ts_tb_writer *w = check_writer(L);
    ts_tb_embedding e = {0};
    lua_settop(L, 7);
    int n_labels = 0;
    const char **labels = NULL;
    if (!lua_isnil(L, 3)) {
        /* labels are copied into one GC-owned block: there may be too many to keep on the stack */
        luaL_checktype(L, 3, LUA_TTABLE);
        n_labels = (int)luaL_len(L, 3);
        size_t bytes = 0;
        for (int i = 1; i <= n_labels; i++) {
            lua_rawgeti(L, 3, i);
            size_t len;
            if (!lua_isstring(L, -1)) return luaL_error(L, "add_embedding: metadata label %d is a %s", i, luaL_typename(L, -1));
            lua_tolstring(L, -1, &len);
            bytes += len + 1;
            lua_pop(L, 1);
        }
        labels = lua_newuserdatauv(L, sizeof *labels * (size_t)(n_labels ? n_labels : 1) + bytes, 0);
        char *text = (char *)(labels + (n_labels ? n_labels : 1));
        for (int i = 1; i <= n_labels; i++) {
            lua_rawgeti(L, 3, i);
            size_t len;
            const char *sv = lua_tolstring(L, -1, &len);
            memcpy(text, sv, len + 1);
            labels[i - 1] = text;
            text += len + 1;
            lua_pop(L, 1);
        }
    }
    e.metadata_header = luaL_optstring(L, 4, NULL);
    e.step = opt_step(L, 6);
    e.tag = luaL_optstring(L, 7, "default");
    int om = 0, oi = 0;
    ts_tensor *mat = tensor_arg(L, 2, &om);
    if (om) { tsL_pushtensor(L, mat); mat = tsL_checktensor(L, -1); }
    ts_tensor *img = NULL;
    if (!lua_isnil(L, 5)) {
        img = tensor_arg(L, 5, &oi);
        if (oi) { tsL_pushtensor(L, img); img = tsL_checktensor(L, -1); }
    }
    if (labels && mat->ndim >= 1 && n_labels != mat->shape[0])
        return luaL_error(L, "add_embedding '%s': %d metadata labels for %d points", e.tag, n_labels, (int)mat->shape[0]);
    e.mat = mat;
    e.metadata = labels;
    e.label_img = img;
    tsL_check(L, ts_tb_add_embedding(w, &e));
    return 0;
}

static int l_flush(lua_State *L)
{
    tsL_check(L, ts_tb_flush(check_writer(L)));
    return 0;
}

static int l_close(lua_State *L)
{
    tsL_check(L, ts_tb_writer_close(check_writer(L)));
    return 0;
}

static int l_logdir(lua_State *L) { lua_pushstring(L, ts_tb_writer_logdir(check_writer(L))); return 1; }
static int l_file(lua_State *L) { lua_pushstring(L, ts_tb_writer_file(check_writer(L))); return 1; }
static int l_pending(lua_State *L) { lua_pushinteger(L, ts_tb_writer_pending(check_writer(L))); return 1; }

static int l_tostring(lua_State *L)
{
    lwriter *lw = luaL_checkudata(L, 1, WRITER_MT);
    if (lw->w) lua_pushfstring(L, "torsh.tb.Writer(%s)", ts_tb_writer_file(lw->w));
    else lua_pushliteral(L, "torsh.tb.Writer(<released>)");
    return 1;
}

static const luaL_Reg writer_methods[] = {
    {"add_scalar", l_add_scalar}, {"add_histogram", l_add_histogram}, {"add_histogram_raw", l_add_histogram_raw},
    {"add_image", l_add_image}, {"add_audio", l_add_audio}, {"add_text", l_add_text},
    {"add_pr_curve", l_add_pr_curve}, {"add_hparams", l_add_hparams}, {"add_custom_scalars", l_add_custom_scalars},
    {"add_graph", l_add_graph}, {"add_embedding", l_add_embedding},
    {"flush", l_flush}, {"close", l_close}, {"release", writer_release},
    {"logdir", l_logdir}, {"file", l_file}, {"pending", l_pending},
    {NULL, NULL},
};

static const luaL_Reg core_fns[] = {
    {"open", l_open}, {"hostname", l_hostname}, {"now", l_now}, {NULL, NULL},
};

void tsL_open_tb(lua_State *L, int module)
{
    (void)module;                      /* torsh.tb itself is loaded lazily (stdlib/torsh/tb.lua) */
    tsL_newhandletype(L, WRITER_MT, writer_methods, writer_release);
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);

    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    luaL_newlib(L, core_fns);
    lua_setfield(L, -2, "torsh.tb.core");
    lua_pop(L, 1);
}
