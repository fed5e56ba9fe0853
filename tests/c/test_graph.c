/* test_graph.c — C tests of the model IR (torsh/graph.h) without Lua:
 * building and reading graphs (names, attributes, metadata, opsets, clone),
 * shape inference with symbols and binding, constant folding of Shape ->
 * Gather -> Unsqueeze -> Concat -> Reshape, every shape op of ops_shape.c
 * against values worked out by hand from the ONNX spec (each op runs three
 * ways: inputs fed at run time, parameters as constants, everything folded
 * at inference), toposort, prune, the registry, the unknown-op message, the
 * executor releasing intermediates, profiler hooks, and bad inputs. */
#include "check.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <torsh/torsh.h>

/* ---- small helpers ---------------------------------------------------------------- */

static ts_tensor *tf(const int64_t *shape, int nd, const double *v)
{
    return ts_tensor_from_data(v, TS_F64, shape, nd, TS_F32);
}

static ts_tensor *ti(const int64_t *shape, int nd, const int64_t *v)
{
    return ts_tensor_from_data(v, TS_I64, shape, nd, TS_I64);
}

static ts_tensor *ints1(int64_t n, const int64_t *v) { return ti(&n, 1, v); }

static ts_tensor *arange_f(int64_t n, const int64_t *shape, int nd)
{
    ts_tensor *a = ts_arange(0, (double)n, 1, TS_F32);
    ts_tensor *r = ts_reshape(a, shape, nd);
    ts_tensor_release(a);
    return r;
}

static bool same_shape(const ts_tensor *t, const int64_t *shape, int nd)
{
    if (!t || t->ndim != nd) return false;
    for (int i = 0; i < nd; i++)
        if (t->shape[i] != shape[i]) return false;
    return true;
}

static bool same_vals(const ts_tensor *t, const double *v)
{
    if (!t) return false;
    for (int64_t i = 0; i < ts_tensor_numel(t); i++)
        if (ts_tensor_item_at(t, i) != v[i]) return false;
    return true;
}

static bool has(const char *msg, const char *part)
{
    if (strstr(msg, part)) return true;
    fprintf(stderr, "    message \"%s\" lacks \"%s\"\n", msg, part);
    return false;
}

static bool dims_are(const ts_graph *g, const ts_gvalue *v, int nd, ...)
{
    /* each dim: a size (>= 0) or -1 followed by a symbol name, or -2 for unknown */
    if (!v || v->ndim != nd) return false;
    va_list ap;
    va_start(ap, nd);
    bool ok = true;
    for (int i = 0; i < nd; i++) {
        int64_t s = va_arg(ap, int64_t);
        if (s >= 0) ok = ok && v->dims[i].size == s;
        else if (s == -1) {
            const char *name = va_arg(ap, const char *);
            ok = ok && v->dims[i].size < 0 && v->dims[i].sym >= 0 &&
                 strcmp(ts_graph_symbol_name(g, v->dims[i].sym), name) == 0;
        } else ok = ok && v->dims[i].size < 0 && v->dims[i].sym < 0;
    }
    va_end(ap);
    return ok;
}
#define S(x) ((int64_t)(x))
#define SYM(name) S(-1), (name)

/* Attributes of a test node from a spec "name=T:values;..." where T is i
 * (int), f (float), I (ints), F (floats), s (string) or t (the tensor
 * argument). */
static void set_attrs(ts_graph *g, int node, const char *spec, ts_tensor *t)
{
    if (!spec) return;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(tok, '=');
        *eq = '\0';
        char type = eq[1];
        char *val = eq + 3;
        int64_t iv[16];
        double fv[16];
        int n = 0;
        switch (type) {
        case 'i': ts_gnode_set_int(g, node, tok, strtoll(val, NULL, 10)); break;
        case 'f': ts_gnode_set_float(g, node, tok, strtod(val, NULL)); break;
        case 's': ts_gnode_set_string(g, node, tok, val, strlen(val)); break;
        case 't': ts_gnode_set_tensor(g, node, tok, t); break;
        case 'I':
            for (char *p = val; *p; n++) { iv[n] = strtoll(p, &p, 10); if (*p == ',') p++; }
            ts_gnode_set_ints(g, node, tok, iv, n);
            break;
        case 'F':
            for (char *p = val; *p; n++) { fv[n] = strtod(p, &p); if (*p == ',') p++; }
            ts_gnode_set_floats(g, node, tok, fv, n);
            break;
        }
    }
}

enum { FEED_ALL, CONST_PARAMS, CONST_ALL };
static bool quiet;     /* set around calls expected to fail */

/* Runs one node of `op` on `in` (NULL entries are omitted inputs); mode
 * says which inputs are graph inputs and which constants. Checks that
 * inference agrees with the executed shapes (and folds in CONST_ALL).
 * Fills out[0..n_out) with new references; returns false on any failure. */
static bool run_mode(const char *op, const char *attrs, ts_tensor *attr_t, int64_t opset, ts_tensor **in, int n_in,
                     ts_tensor **out, int n_out, int mode)
{
    for (int o = 0; o < n_out; o++) out[o] = NULL;
    ts_graph *g = ts_graph_new("op");
    ts_graph_set_opset(g, "", opset);
    int ids[8], oids[8];
    ts_tensor *feeds[8];
    int n_feed = 0;
    for (int i = 0; i < n_in; i++) {
        if (!in[i]) { ids[i] = -1; continue; }
        char name[16];
        snprintf(name, sizeof name, "in%d", i);
        ids[i] = ts_graph_value(g, name);
        bool is_const = mode == CONST_ALL || (mode == CONST_PARAMS && i > 0);
        if (is_const) {
            ts_graph_set_const(g, ids[i], in[i], false);
        } else {
            ts_dim d[TS_MAX_DIMS];
            for (int k = 0; k < in[i]->ndim; k++) d[k] = ts_dim_of(in[i]->shape[k]);
            ts_graph_set_info(g, ids[i], in[i]->dtype, in[i]->ndim, d);
            ts_graph_add_input(g, ids[i]);
            feeds[n_feed++] = in[i];
        }
    }
    for (int o = 0; o < n_out; o++) {
        char name[16];
        snprintf(name, sizeof name, "out%d", o);
        oids[o] = ts_graph_value(g, name);
    }
    int node = ts_graph_add_node(g, op, "", "the_node", ids, n_in, oids, n_out);
    set_attrs(g, node, attrs, attr_t);
    for (int o = 0; o < n_out; o++) ts_graph_add_output(g, oids[o]);
    bool ok = true;
    if (ts_graph_infer(g, NULL, NULL, 0)) {
        if (!quiet) fprintf(stderr, "    %s (mode %d): infer: %s\n", op, mode, ts_last_error());
        ok = false;
    }
    ts_exec *e = ok ? ts_exec_new(g, NULL) : NULL;
    if (ok && !e) {
        if (!quiet) fprintf(stderr, "    %s (mode %d): exec_new: %s\n", op, mode, ts_last_error());
        ok = false;
    }
    if (ok && ts_exec_run(e, feeds, n_feed, out, n_out)) {
        if (!quiet) fprintf(stderr, "    %s (mode %d): run: %s\n", op, mode, ts_last_error());
        ok = false;
    }
    for (int o = 0; ok && o < n_out; o++) {
        const ts_gvalue *v = ts_graph_val(g, oids[o]);
        bool agree = v->dtype == out[o]->dtype && v->ndim == out[o]->ndim;
        for (int k = 0; agree && k < v->ndim; k++)
            agree = v->dims[k].size < 0 ? mode != CONST_ALL : v->dims[k].size == out[o]->shape[k];
        if (mode == CONST_ALL && !v->constant) agree = false;
        if (!agree) {
            if (!quiet) fprintf(stderr, "    %s (mode %d): output %d: inferred %s rank %d%s disagrees with the run\n", op, mode, o,
                    v->dtype == TS_DTYPE_UNKNOWN ? "?" : ts_dtype_name(v->dtype), v->ndim,
                    v->constant ? "" : " (not folded)");
            ok = false;
        }
    }
    ts_exec_free(e);
    ts_graph_free(g);
    return ok;
}

/* Runs the three modes; they must agree; out gets FEED_ALL's results. */
static bool run_op(const char *op, const char *attrs, ts_tensor *attr_t, int64_t opset, ts_tensor **in, int n_in,
                   ts_tensor **out, int n_out)
{
    bool ok = run_mode(op, attrs, attr_t, opset, in, n_in, out, n_out, FEED_ALL);
    for (int mode = CONST_PARAMS; ok && mode <= CONST_ALL; mode++) {
        ts_tensor *o2[8] = {0};
        bool ok2 = run_mode(op, attrs, attr_t, opset, in, n_in, o2, n_out, mode);
        for (int o = 0; o < n_out && ok2; o++) {
            bool same = o2[o]->ndim == out[o]->ndim && o2[o]->dtype == out[o]->dtype &&
                        ts_tensor_numel(o2[o]) == ts_tensor_numel(out[o]);
            for (int64_t i = 0; same && i < ts_tensor_numel(out[o]); i++)
                same = ts_tensor_item_at(o2[o], i) == ts_tensor_item_at(out[o], i);
            if (!same && !quiet) fprintf(stderr, "    %s: mode %d gives other values\n", op, mode);
            ok2 = ok2 && same;
        }
        for (int o = 0; o < n_out; o++) ts_tensor_release(o2[o]);
        ok = ok && ok2;
    }
    if (!ok)
        for (int o = 0; o < n_out; o++) { ts_tensor_release(out[o]); out[o] = NULL; }
    return ok;
}

static void release_all(ts_tensor **t, int n)
{
    for (int i = 0; i < n; i++) {
        ts_tensor_release(t[i]);
        t[i] = NULL;
    }
}

/* ---- building and reading ---------------------------------------------------------- */

static void test_build_and_read(void)
{
    ts_graph *g = ts_graph_new("net");
    CHECK(strcmp(ts_graph_name(g), "net") == 0);
    int x = ts_graph_value(g, "x");
    CHECK(x == 0 && ts_graph_value(g, "x") == 0 && ts_graph_find_value(g, "x") == 0);
    CHECK(ts_graph_find_value(g, "nope") == -1);
    const ts_gvalue *xv = ts_graph_val(g, x);
    CHECK(xv->dtype == TS_DTYPE_UNKNOWN && xv->ndim == TS_RANK_UNKNOWN && xv->producer == -1);
    int32_t n = ts_graph_symbol(g, "N");
    CHECK(n == 0 && ts_graph_symbol(g, "N") == 0 && ts_graph_symbol(g, "T") == 1 && ts_graph_symbol_count(g) == 2);
    CHECK(strcmp(ts_graph_symbol_name(g, 1), "T") == 0 && ts_graph_symbol_name(g, 5) == NULL);
    CHECK(ts_graph_set_info(g, x, TS_F32, 2, (ts_dim[]){ts_dim_sym(g, "N"), ts_dim_of(4)}) == TS_OK);
    CHECK(dims_are(g, ts_graph_val(g, x), 2, SYM("N"), S(4)));
    CHECK(ts_graph_set_info(g, x, TS_F32, 9, NULL) == TS_ERR_ARG);
    CHECK(ts_graph_set_info(g, 99, TS_F32, 1, NULL) == TS_ERR_ARG);
    CHECK(ts_graph_add_input(g, x) == TS_OK);
    CHECK(ts_graph_add_input(g, x) == TS_ERR_ARG);

    /* many values: the name index must survive growth */
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "v%d", i);
        ts_graph_value(g, name);
    }
    CHECK(ts_graph_find_value(g, "v0") == 1 && ts_graph_find_value(g, "v299") == 300);
    CHECK(ts_graph_value_count(g) == 301);

    int y = ts_graph_value(g, "y"), z = ts_graph_value(g, "z");
    int a = ts_graph_add_node(g, "Relu", NULL, NULL, &x, 1, &y, 1);
    int b = ts_graph_add_node(g, "Relu", "ai.onnx", "", &y, 1, &z, 1);
    CHECK(a == 0 && b == 1);
    const ts_gnode *na = ts_graph_node(g, a), *nb = ts_graph_node(g, b);
    CHECK(strcmp(na->name, nb->name) != 0 && strncmp(na->name, "Relu", 4) == 0);
    CHECK(strcmp(nb->domain, "") == 0);
    CHECK(ts_graph_val(g, y)->producer == a);
    /* an output that already has a producer */
    CHECK(ts_graph_add_node(g, "Relu", "", "dup", &x, 1, &y, 1) == -1);
    CHECK(has(ts_last_error(), "already written by node"));
    CHECK(ts_graph_add_node(g, "Relu", "", "bad", (int[]){1000}, 1, NULL, 0) == -1);
    /* a repeated name is made unique */
    int w1 = ts_graph_value(g, "w1"), w2 = ts_graph_value(g, "w2");
    int c1 = ts_graph_add_node(g, "Identity", "", "same", &x, 1, &w1, 1);
    int c2 = ts_graph_add_node(g, "Identity", "", "same", &x, 1, &w2, 1);
    CHECK(strcmp(ts_graph_node(g, c1)->name, "same") == 0 && strcmp(ts_graph_node(g, c2)->name, "same") != 0);

    /* attributes: set, replace, read with defaults */
    CHECK(ts_gnode_set_int(g, a, "axis", 3) == TS_OK);
    CHECK(ts_gnode_set_int(g, a, "axis", -1) == TS_OK);
    ts_gnode_set_float(g, a, "alpha", 0.25);
    ts_gnode_set_string(g, a, "mode", "reflect", 7);
    ts_gnode_set_ints(g, a, "perm", (int64_t[]){2, 0, 1}, 3);
    ts_gnode_set_floats(g, a, "scales", (double[]){1.5, 2}, 2);
    ts_gnode_set_strings(g, a, "names", (const char *[]){"p", "q"}, 2);
    ts_tensor *t = ts_tensor_scalar(7, TS_F32);
    ts_gnode_set_tensor(g, a, "value", t);
    na = ts_graph_node(g, a);
    CHECK(na->n_attrs == 7);
    CHECK(ts_gnode_int(na, "axis", 0) == -1 && ts_gnode_int(na, "missing", 42) == 42);
    CHECK(ts_gnode_float(na, "alpha", 0) == 0.25 && ts_gnode_float(na, "nope", 1.5) == 1.5);
    CHECK(strcmp(ts_gnode_string(na, "mode", "x"), "reflect") == 0 && strcmp(ts_gnode_string(na, "m2", "d"), "d") == 0);
    int64_t np;
    const int64_t *perm = ts_gnode_ints(na, "perm", &np);
    CHECK(perm && np == 3 && perm[0] == 2 && perm[2] == 1);
    CHECK(ts_gnode_ints(na, "nope", &np) == NULL && np == 0);
    const ts_attr *sa = ts_gnode_attr(na, "names");
    CHECK(sa && sa->type == TS_ATTR_STRINGS && sa->n == 2 && strcmp(sa->strings[1], "q") == 0);
    const ts_attr *ta = ts_gnode_attr(na, "value");
    CHECK(ta && ta->type == TS_ATTR_TENSOR && ta->t == t && t->refcount == 2);
    CHECK(ts_gnode_set_int(g, 99, "x", 1) == TS_ERR_ARG);

    /* metadata, producer, opsets */
    ts_graph_set_meta(g, "author", "me");
    ts_graph_set_meta(g, "license", "MIT");
    ts_graph_set_meta(g, "author", "you");
    CHECK(ts_graph_meta_count(g) == 2);
    const char *k, *v;
    ts_graph_meta_at(g, 0, &k, &v);
    CHECK(strcmp(k, "author") == 0 && strcmp(v, "you") == 0);
    ts_graph_set_producer(g, "pytorch", "2.1");
    const char *ver;
    CHECK(strcmp(ts_graph_producer(g, &ver), "pytorch") == 0 && strcmp(ver, "2.1") == 0);
    ts_graph_set_opset(g, "ai.onnx", 13);
    ts_graph_set_opset(g, "com.microsoft", 1);
    ts_graph_set_opset(g, "", 17);
    CHECK(ts_graph_opset_count(g) == 2 && ts_graph_opset(g, "") == 17 && ts_graph_opset(g, "ai.onnx") == 17);
    CHECK(ts_graph_opset(g, "com.microsoft") == 1 && ts_graph_opset(g, "x") == 0);
    int64_t ov;
    const char *od;
    ts_graph_opset_at(g, 1, &od, &ov);
    CHECK(strcmp(od, "com.microsoft") == 0 && ov == 1);

    /* constants */
    int cst = ts_graph_value(g, "w");
    ts_tensor *wt = ts_tensor_zeros((int64_t[]){3, 2}, 2, TS_F16);
    CHECK(ts_graph_set_const(g, cst, wt, true) == TS_OK);
    const ts_gvalue *cv = ts_graph_val(g, cst);
    CHECK(cv->constant == wt && cv->is_initializer && cv->dtype == TS_F16 && dims_are(g, cv, 2, S(3), S(2)));
    CHECK(wt->refcount == 2);
    ts_graph_add_output(g, z);

    /* clone: deep for structure, constants shared */
    ts_graph *c = ts_graph_clone(g);
    CHECK(c && ts_graph_node_count(c) == ts_graph_node_count(g) && ts_graph_value_count(c) == ts_graph_value_count(g));
    CHECK(wt->refcount == 3 && t->refcount == 3);
    CHECK(ts_graph_find_value(c, "v299") == 300 && ts_graph_opset(c, "") == 17 && ts_graph_meta_count(c) == 2);
    CHECK(strcmp(ts_graph_node(c, a)->name, ts_graph_node(g, a)->name) == 0);
    ts_gnode_set_int(c, a, "axis", 5);
    CHECK(ts_gnode_int(ts_graph_node(g, a), "axis", 0) == -1);
    CHECK(ts_graph_input_count(c) == 1 && ts_graph_output(c, 0) == z);
    /* a node added to the clone gets a fresh unique name */
    int q = ts_graph_value(c, "q");
    int qn = ts_graph_add_node(c, "Identity", "", "same", &x, 1, &q, 1);
    CHECK(qn >= 0 && strcmp(ts_graph_node(c, qn)->name, "same") != 0);
    ts_graph_free(c);
    CHECK(wt->refcount == 2);
    ts_graph_free(g);
    CHECK(wt->refcount == 1 && t->refcount == 1);
    ts_tensor_release(wt);
    ts_tensor_release(t);
    ts_graph_free(NULL);
}

/* ---- registry -------------------------------------------------------------------------------- */

static int freed_users;
static void free_user(void *u) { freed_users += *(int *)u; }

/* A test op "Twice" (domain "test"): y = cat(x, x) along dim 1. */
static ts_status k_twice(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    ts_tensor *pair[2] = {in[0], in[0]};
    out[0] = ts_cat(pair, 2, 1);
    return out[0] ? TS_OK : ts_last_status();
}

static ts_status i_twice(ts_graph *g, const ts_gnode *n, int64_t opset, const ts_gvalue *const *in,
                         ts_gvalue *const *out)
{
    out[0]->dtype = in[0]->dtype;
    out[0]->ndim = in[0]->ndim;
    memcpy(out[0]->dims, in[0]->dims, sizeof in[0]->dims);
    if (in[0]->ndim >= 2) {
        ts_dim d = in[0]->dims[1];
        out[0]->dims[1] = d.size >= 0 ? ts_dim_of(2 * d.size) : ts_dim_unknown();
    }
    return TS_OK;
}

static void register_test_ops(void)
{
    ts_op_def d = {.op_type = "Twice", .domain = "test", .run = k_twice, .infer = i_twice};
    ts_op_register(&d);
}

static void test_registry(void)
{
    const ts_op_def *r = ts_op_find("", "Reshape");
    CHECK(r && r->run && r->infer && r->foldable);
    CHECK(ts_op_find("ai.onnx", "Reshape") == r);
    CHECK(ts_op_find("", "NoSuchOp") == NULL);
    const char *list = ts_op_list("");
    CHECK(has(list, "Reshape") && has(list, "Concat, ") && has(list, "Unsqueeze"));
    /* sorted */
    CHECK(strstr(list, "Cast") < strstr(list, "Concat") && strstr(list, "Concat") < strstr(list, "Transpose"));
    static int u1 = 1, u2 = 10;
    ts_op_def d = {.op_type = "MyOp", .domain = "my.dom", .run = k_twice, .user = &u1, .free_user = free_user};
    CHECK(ts_op_register(&d) == TS_OK);
    const ts_op_def *m = ts_op_find("my.dom", "MyOp");
    CHECK(m && m->user == &u1 && ts_op_find("", "MyOp") == NULL);
    d.user = &u2;
    CHECK(ts_op_register(&d) == TS_OK);   /* replaces; the old user pointer is freed */
    CHECK(freed_users == 1 && ts_op_find("my.dom", "MyOp") == m && m->user == &u2);
    CHECK(strcmp(ts_op_list("my.dom"), "MyOp") == 0);
    ts_op_def bad = {.op_type = "NoKernel"};
    CHECK(ts_op_register(&bad) == TS_ERR_ARG);
    register_test_ops();
    CHECK(ts_op_find("test", "Twice") != NULL);
}

/* ---- inference with symbols ---------------------------------------------------------------- */

/* x [N, 3, 8, 8] -> Twice [N, 6, 8, 8] -> Where(x' > 0, x', 0) -> Reshape [0, -1]
 * -> [N, 384] -> ReduceMean(axes 1, keepdims 0) -> [N]; Transpose on the side. */
static ts_graph *symbolic_net(int *ids)
{
    ts_graph *g = ts_graph_new("sym");
    ts_graph_set_opset(g, "", 17);
    int x = ts_graph_value(g, "x");
    ts_graph_set_info(g, x, TS_F32, 4, (ts_dim[]){ts_dim_sym(g, "N"), ts_dim_of(3), ts_dim_of(8), ts_dim_of(8)});
    ts_graph_add_input(g, x);
    int t = ts_graph_value(g, "t"), zero = ts_graph_value(g, "zero"), pos = ts_graph_value(g, "pos");
    int w = ts_graph_value(g, "w"), shp = ts_graph_value(g, "shape"), r = ts_graph_value(g, "r");
    int m = ts_graph_value(g, "m"), tr = ts_graph_value(g, "tr");
    ts_tensor *z = ts_tensor_scalar(0, TS_F32);
    ts_graph_set_const(g, zero, z, false);
    ts_tensor_release(z);
    ts_tensor *s = ints1(2, (int64_t[]){0, -1});
    ts_graph_set_const(g, shp, s, false);
    ts_tensor_release(s);
    ts_graph_add_node(g, "Twice", "test", "conv", &x, 1, &t, 1);
    ts_graph_add_node(g, "Greater", "", "gt", (int[]){t, zero}, 2, &pos, 1);
    ts_graph_add_node(g, "Where", "", "relu", (int[]){pos, t, zero}, 3, &w, 1);
    ts_graph_add_node(g, "Reshape", "", "flat", (int[]){w, shp}, 2, &r, 1);
    int mn = ts_graph_add_node(g, "ReduceMean", "", "mean", &r, 1, &m, 1);
    ts_gnode_set_ints(g, mn, "axes", (int64_t[]){1}, 1);
    ts_gnode_set_int(g, mn, "keepdims", 0);
    int tn = ts_graph_add_node(g, "Transpose", "", "tr", &w, 1, &tr, 1);
    ts_gnode_set_ints(g, tn, "perm", (int64_t[]){1, 0, 2, 3}, 4);
    ts_graph_add_output(g, m);
    ts_graph_add_output(g, tr);
    ids[0] = x, ids[1] = t, ids[2] = w, ids[3] = r, ids[4] = m, ids[5] = tr, ids[6] = pos;
    return g;
}

static void test_infer_symbols(void)
{
    register_test_ops();
    int id[7];
    ts_graph *g = symbolic_net(id);
    CHECK(ts_graph_infer(g, NULL, NULL, 0) == TS_OK);
    CHECK(dims_are(g, ts_graph_val(g, id[1]), 4, SYM("N"), S(6), S(8), S(8)));
    CHECK(dims_are(g, ts_graph_val(g, id[6]), 4, SYM("N"), S(6), S(8), S(8)) && ts_graph_val(g, id[6])->dtype == TS_BOOL);
    CHECK(dims_are(g, ts_graph_val(g, id[2]), 4, SYM("N"), S(6), S(8), S(8)));
    CHECK(dims_are(g, ts_graph_val(g, id[3]), 2, SYM("N"), S(384)));
    CHECK(dims_are(g, ts_graph_val(g, id[4]), 1, SYM("N")) && ts_graph_val(g, id[4])->dtype == TS_F32);
    CHECK(dims_are(g, ts_graph_val(g, id[5]), 4, S(6), SYM("N"), S(8), S(8)));

    /* bind N = 1: everything concrete; the input keeps its symbol */
    CHECK(ts_graph_infer(g, (const char *[]){"N"}, (int64_t[]){1}, 1) == TS_OK);
    CHECK(dims_are(g, ts_graph_val(g, id[3]), 2, S(1), S(384)));
    CHECK(dims_are(g, ts_graph_val(g, id[4]), 1, S(1)));
    CHECK(dims_are(g, ts_graph_val(g, id[5]), 4, S(6), S(1), S(8), S(8)));
    CHECK(dims_are(g, ts_graph_val(g, id[0]), 4, SYM("N"), S(3), S(8), S(8)));

    /* run with batch 1; a batch of 2 is refused while N is bound to 1 */
    ts_tensor *x1 = ts_tensor_full((int64_t[]){1, 3, 8, 8}, 4, TS_F32, -1);
    ts_tensor_set_f64(x1, (int64_t[]){0, 1, 2, 3}, 2.0);
    ts_tensor *x2 = ts_tensor_full((int64_t[]){2, 3, 8, 8}, 4, TS_F32, 0.5);
    ts_exec *e = ts_exec_new(g, NULL);
    CHECK(e != NULL);
    ts_tensor *out[2] = {0};
    CHECK(ts_exec_run(e, &x1, 1, out, 2) == TS_OK);
    CHECK(same_shape(out[0], (int64_t[]){1}, 1) && same_shape(out[1], (int64_t[]){6, 1, 8, 8}, 4));
    CHECK_NEAR(out[0] ? ts_tensor_item_at(out[0], 0) : 0, 4.0 / 384, 1e-6);   /* 2.0 twice in 384 */
    release_all(out, 2);
    CHECK(ts_exec_run(e, &x2, 1, out, 2) == TS_ERR_ARG);
    CHECK(has(ts_last_error(), "input 0 ('x')") && has(ts_last_error(), "bound"));
    CHECK(out[0] == NULL && out[1] == NULL);
    ts_exec_free(e);

    /* unbound again: any batch runs */
    CHECK(ts_graph_infer(g, NULL, NULL, 0) == TS_OK);
    CHECK(dims_are(g, ts_graph_val(g, id[3]), 2, SYM("N"), S(384)));
    e = ts_exec_new(g, NULL);
    CHECK(ts_exec_run(e, &x2, 1, out, 2) == TS_OK);
    CHECK(same_shape(out[0], (int64_t[]){2}, 1));
    CHECK_NEAR(out[0] ? ts_tensor_item_at(out[0], 1) : 0, 0.5, 1e-6);
    release_all(out, 2);
    ts_exec_free(e);
    ts_tensor_release(x1);
    ts_tensor_release(x2);
    ts_graph_free(g);
}

/* ---- folding shape arithmetic ------------------------------------------------------------- */

/* y = Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0), [0]), [-1])): x.view(x.size(0), -1) */
static ts_graph *flatten_net(int64_t opset, int *ids)
{
    ts_graph *g = ts_graph_new("fold");
    ts_graph_set_opset(g, "", opset);
    int x = ts_graph_value(g, "x");
    ts_graph_set_info(g, x, TS_F32, 4, (ts_dim[]){ts_dim_sym(g, "N"), ts_dim_of(3), ts_dim_of(4), ts_dim_of(4)});
    ts_graph_add_input(g, x);
    int sh = ts_graph_value(g, "sh"), i0 = ts_graph_value(g, "i0"), g0 = ts_graph_value(g, "g0");
    int ax = ts_graph_value(g, "ax"), u = ts_graph_value(g, "u"), m1 = ts_graph_value(g, "m1");
    int cat = ts_graph_value(g, "cat"), y = ts_graph_value(g, "y");
    ts_tensor *t = ti(NULL, 0, (int64_t[]){0});
    ts_graph_set_const(g, i0, t, false);
    ts_tensor_release(t);
    t = ints1(1, (int64_t[]){-1});
    ts_graph_set_const(g, m1, t, false);
    ts_tensor_release(t);
    ts_graph_add_node(g, "Shape", "", "shape", &x, 1, &sh, 1);
    ts_graph_add_node(g, "Gather", "", "gather", (int[]){sh, i0}, 2, &g0, 1);
    if (opset >= 13) {
        t = ints1(1, (int64_t[]){0});
        ts_graph_set_const(g, ax, t, false);
        ts_tensor_release(t);
        ts_graph_add_node(g, "Unsqueeze", "", "unsq", (int[]){g0, ax}, 2, &u, 1);
    } else {
        int n = ts_graph_add_node(g, "Unsqueeze", "", "unsq", &g0, 1, &u, 1);
        ts_gnode_set_ints(g, n, "axes", (int64_t[]){0}, 1);
    }
    int c = ts_graph_add_node(g, "Concat", "", "concat", (int[]){u, m1}, 2, &cat, 1);
    ts_gnode_set_int(g, c, "axis", 0);
    ts_graph_add_node(g, "Reshape", "", "reshape", (int[]){x, cat}, 2, &y, 1);
    ts_graph_add_output(g, y);
    ids[0] = x, ids[1] = sh, ids[2] = g0, ids[3] = u, ids[4] = cat, ids[5] = y;
    return g;
}

static void test_fold_shape_chain(void)
{
    for (int64_t opset = 11; opset <= 13; opset += 2) {
        int id[6];
        ts_graph *g = flatten_net(opset, id);
        CHECK(ts_graph_infer(g, NULL, NULL, 0) == TS_OK);
        /* N unknown: nothing folds, the shapes of the shape tensors are known */
        CHECK(ts_graph_val(g, id[1])->constant == NULL && dims_are(g, ts_graph_val(g, id[1]), 1, S(4)));
        CHECK(dims_are(g, ts_graph_val(g, id[2]), 0) && ts_graph_val(g, id[2])->dtype == TS_I64);
        CHECK(dims_are(g, ts_graph_val(g, id[4]), 1, S(2)));
        /* ... and the symbolic shape value [N, -1] keeps N through the reshape */
        CHECK(dims_are(g, ts_graph_val(g, id[5]), 2, SYM("N"), S(48)));

        CHECK(ts_graph_infer(g, (const char *[]){"N"}, (int64_t[]){2}, 1) == TS_OK);
        const ts_gvalue *cat = ts_graph_val(g, id[4]);
        CHECK(cat->constant && !cat->is_initializer && ts_tensor_numel(cat->constant) == 2);
        CHECK(cat->constant && ts_tensor_item_at(cat->constant, 0) == 2 && ts_tensor_item_at(cat->constant, 1) == -1);
        CHECK(ts_graph_val(g, id[2])->constant && ts_graph_val(g, id[3])->constant);
        CHECK(dims_are(g, ts_graph_val(g, id[5]), 2, S(2), S(48)));
        CHECK(ts_graph_val(g, id[5])->constant == NULL);

        /* the executor skips the folded nodes and runs the reshape */
        ts_tensor *x = arange_f(96, (int64_t[]){2, 3, 4, 4}, 4), *y = NULL;
        ts_exec *e = ts_exec_new(g, NULL);
        CHECK(e && ts_exec_run(e, &x, 1, &y, 1) == TS_OK);
        CHECK(same_shape(y, (int64_t[]){2, 48}, 2) && y && ts_tensor_item_at(y, 95) == 95);
        ts_tensor_release(y);
        ts_exec_free(e);

        /* unbinding drops the folded constants again; the executor computes the chain */
        CHECK(ts_graph_infer(g, NULL, NULL, 0) == TS_OK);
        CHECK(ts_graph_val(g, id[4])->constant == NULL);
        e = ts_exec_new(g, NULL);
        ts_tensor *x3 = arange_f(144, (int64_t[]){3, 3, 4, 4}, 4);
        y = NULL;
        CHECK(e && ts_exec_run(e, &x3, 1, &y, 1) == TS_OK);
        CHECK(same_shape(y, (int64_t[]){3, 48}, 2));
        ts_tensor_release(y);
        ts_exec_free(e);
        ts_tensor_release(x3);
        ts_tensor_release(x);
        ts_graph_free(g);
    }
}

/* ---- the shape ops, one by one -------------------------------------------------------------- */

static void test_reshape_transpose_flatten(void)
{
    ts_tensor *x = arange_f(24, (int64_t[]){2, 3, 4}, 3), *o[2] = {0};
    ts_tensor *in[2] = {x, ints1(2, (int64_t[]){0, -1})};
    CHECK(run_op("Reshape", NULL, NULL, 14, in, 2, o, 1) && same_shape(o[0], (int64_t[]){2, 12}, 2));
    CHECK(o[0] && ts_tensor_item_at(o[0], 13) == 13);
    ts_tensor_release(o[0]);
    ts_tensor_release(in[1]);
    in[1] = ints1(3, (int64_t[]){4, 0, -1});        /* 0 copies dim 1 (3): [4, 3, 2] */
    CHECK(run_op("Reshape", NULL, NULL, 14, in, 2, o, 1) && same_shape(o[0], (int64_t[]){4, 3, 2}, 3));
    ts_tensor_release(o[0]);
    ts_tensor_release(in[1]);
    ts_tensor *e = ts_tensor_zeros((int64_t[]){0, 3}, 2, TS_F32);
    ts_tensor *ein[2] = {e, ints1(2, (int64_t[]){3, 0})};   /* allowzero: a real 0 */
    CHECK(run_op("Reshape", "allowzero=i:1", NULL, 14, ein, 2, o, 1) && same_shape(o[0], (int64_t[]){3, 0}, 2));
    ts_tensor_release(o[0]);
    ts_tensor_release(ein[1]);
    ts_tensor_release(e);

    /* transpose perm [2, 0, 1]: out[i][j][k] = x[j][k][i] = 12j + 4k + i */
    CHECK(run_op("Transpose", "perm=I:2,0,1", NULL, 13, &x, 1, o, 1) && same_shape(o[0], (int64_t[]){4, 2, 3}, 3));
    CHECK(same_vals(o[0], (double[]){0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23}));
    ts_tensor_release(o[0]);
    CHECK(run_op("Transpose", NULL, NULL, 13, &x, 1, o, 1) && same_shape(o[0], (int64_t[]){4, 3, 2}, 3));
    CHECK(o[0] && ts_tensor_item_at(o[0], 1) == 12);
    ts_tensor_release(o[0]);

    ts_tensor *x4 = ts_tensor_zeros((int64_t[]){2, 3, 4, 5}, 4, TS_F32);
    CHECK(run_op("Flatten", "axis=i:2", NULL, 13, &x4, 1, o, 1) && same_shape(o[0], (int64_t[]){6, 20}, 2));
    ts_tensor_release(o[0]);
    CHECK(run_op("Flatten", "axis=i:0", NULL, 13, &x4, 1, o, 1) && same_shape(o[0], (int64_t[]){1, 120}, 2));
    ts_tensor_release(o[0]);
    CHECK(run_op("Flatten", "axis=i:-1", NULL, 13, &x4, 1, o, 1) && same_shape(o[0], (int64_t[]){24, 5}, 2));
    ts_tensor_release(o[0]);
    CHECK(run_op("Flatten", NULL, NULL, 13, &x4, 1, o, 1) && same_shape(o[0], (int64_t[]){2, 60}, 2));
    ts_tensor_release(o[0]);

    /* Shape with start/end, Size */
    CHECK(run_op("Shape", "start=i:1;end=i:-1", NULL, 15, &x4, 1, o, 1) && same_shape(o[0], (int64_t[]){2}, 1));
    CHECK(o[0] && o[0]->dtype == TS_I64 && same_vals(o[0], (double[]){3, 4}));
    ts_tensor_release(o[0]);
    CHECK(run_op("Shape", NULL, NULL, 13, &x4, 1, o, 1) && same_vals(o[0], (double[]){2, 3, 4, 5}));
    ts_tensor_release(o[0]);
    CHECK(run_op("Size", NULL, NULL, 13, &x4, 1, o, 1) && same_shape(o[0], NULL, 0) && same_vals(o[0], (double[]){120}));
    ts_tensor_release(o[0]);
    ts_tensor_release(x4);
    ts_tensor_release(x);
}

static void test_concat_split(void)
{
    ts_tensor *a = tf((int64_t[]){2, 2}, 2, (double[]){1, 2, 3, 4});
    ts_tensor *b = tf((int64_t[]){2, 3}, 2, (double[]){5, 6, 7, 8, 9, 10}), *o[3] = {0};
    ts_tensor *in[2] = {a, b};
    CHECK(run_op("Concat", "axis=i:-1", NULL, 13, in, 2, o, 1) && same_shape(o[0], (int64_t[]){2, 5}, 2));
    CHECK(same_vals(o[0], (double[]){1, 2, 5, 6, 7, 3, 4, 8, 9, 10}));
    ts_tensor_release(o[0]);

    ts_tensor *x = ts_arange(0, 10, 1, TS_F32);
    /* split as an input (13+) */
    ts_tensor *sin[2] = {x, ints1(2, (int64_t[]){3, 7})};
    CHECK(run_op("Split", NULL, NULL, 13, sin, 2, o, 2) && same_shape(o[0], (int64_t[]){3}, 1) &&
          same_shape(o[1], (int64_t[]){7}, 1));
    CHECK(o[1] && ts_tensor_item_at(o[1], 0) == 3);
    release_all(o, 2);
    ts_tensor_release(sin[1]);
    /* split as an attribute (before 13) */
    CHECK(run_op("Split", "split=I:5,5", NULL, 11, &x, 1, o, 2) && same_shape(o[1], (int64_t[]){5}, 1));
    CHECK(o[1] && ts_tensor_item_at(o[1], 4) == 9);
    release_all(o, 2);
    /* num_outputs (18): ceil(10 / 3) = 4 -> 4, 4, 2 */
    CHECK(run_op("Split", "num_outputs=i:3", NULL, 18, &x, 1, o, 3) && same_shape(o[0], (int64_t[]){4}, 1) &&
          same_shape(o[2], (int64_t[]){2}, 1));
    CHECK(o[2] && ts_tensor_item_at(o[2], 1) == 9);
    release_all(o, 3);
    /* equal parts by default; 10 into 3 without num_outputs is an error */
    CHECK(run_op("Split", NULL, NULL, 13, &x, 1, o, 2) && same_shape(o[0], (int64_t[]){5}, 1));
    release_all(o, 2);
    quiet = true;
    CHECK(!run_op("Split", NULL, NULL, 13, &x, 1, o, 3));
    quiet = false;
    CHECK(has(ts_last_error(), "node 'the_node' (Split)") && has(ts_last_error(), "evenly"));
    ts_tensor_release(x);
    ts_tensor_release(a);
    ts_tensor_release(b);
}

static void test_slice(void)
{
    ts_tensor *x = arange_f(20, (int64_t[]){4, 5}, 2), *o[1] = {0};
    /* x[1::2, -1:-6:-2] (ends clamp; negative step) = [[9, 7, 5], [19, 17, 15]] */
    ts_tensor *in[5] = {x, ints1(2, (int64_t[]){1, -1}), ints1(2, (int64_t[]){1000, -6}), ints1(2, (int64_t[]){0, 1}),
                        ints1(2, (int64_t[]){2, -2})};
    CHECK(run_op("Slice", NULL, NULL, 13, in, 5, o, 1) && same_shape(o[0], (int64_t[]){2, 3}, 2));
    CHECK(same_vals(o[0], (double[]){9, 7, 5, 19, 17, 15}));
    ts_tensor_release(o[0]);
    release_all(in + 1, 4);
    /* start -2, end INT64_MIN, step -1 on axis 1: x[:, 3::-1] */
    ts_tensor *in2[5] = {x, ints1(1, (int64_t[]){-2}), ints1(1, (int64_t[]){INT64_MIN}), ints1(1, (int64_t[]){1}),
                         ints1(1, (int64_t[]){-1})};
    CHECK(run_op("Slice", NULL, NULL, 13, in2, 5, o, 1) && same_shape(o[0], (int64_t[]){4, 4}, 2));
    CHECK(same_vals(o[0], (double[]){3, 2, 1, 0, 8, 7, 6, 5, 13, 12, 11, 10, 18, 17, 16, 15}));
    ts_tensor_release(o[0]);
    release_all(in2 + 1, 4);
    /* start 10 clamps to 3 for step -3: row 3 only */
    ts_tensor *in3[5] = {x, ints1(1, (int64_t[]){10}), ints1(1, (int64_t[]){0}), ints1(1, (int64_t[]){0}),
                         ints1(1, (int64_t[]){-3})};
    CHECK(run_op("Slice", NULL, NULL, 13, in3, 5, o, 1) && same_shape(o[0], (int64_t[]){1, 5}, 2));
    CHECK(same_vals(o[0], (double[]){15, 16, 17, 18, 19}));
    ts_tensor_release(o[0]);
    release_all(in3 + 1, 4);
    /* axes and steps omitted; an empty result */
    ts_tensor *in4[3] = {x, ints1(2, (int64_t[]){1, 2}), ints1(2, (int64_t[]){3, 2})};
    CHECK(run_op("Slice", NULL, NULL, 13, in4, 3, o, 1) && same_shape(o[0], (int64_t[]){2, 0}, 2));
    ts_tensor_release(o[0]);
    release_all(in4 + 1, 2);
    /* opset 1: attributes */
    CHECK(run_op("Slice", "starts=I:1;ends=I:-1;axes=I:1", NULL, 1, &x, 1, o, 1) && same_shape(o[0], (int64_t[]){4, 3}, 2));
    CHECK(o[0] && ts_tensor_item_at(o[0], 0) == 1 && ts_tensor_item_at(o[0], 11) == 18);
    ts_tensor_release(o[0]);
    ts_tensor_release(x);
}

static void test_gather_squeeze(void)
{
    ts_tensor *x = tf((int64_t[]){3, 2}, 2, (double[]){1, 2, 3, 4, 5, 6}), *o[1] = {0};
    ts_tensor *in[2] = {x, ti((int64_t[]){2, 2}, 2, (int64_t[]){0, -1, 1, 0})};
    CHECK(run_op("Gather", NULL, NULL, 13, in, 2, o, 1) && same_shape(o[0], (int64_t[]){2, 2, 2}, 3));
    CHECK(same_vals(o[0], (double[]){1, 2, 5, 6, 3, 4, 1, 2}));
    ts_tensor_release(o[0]);
    ts_tensor_release(in[1]);
    in[1] = ti(NULL, 0, (int64_t[]){-1});
    CHECK(run_op("Gather", "axis=i:1", NULL, 13, in, 2, o, 1) && same_shape(o[0], (int64_t[]){3}, 1));
    CHECK(same_vals(o[0], (double[]){2, 4, 6}));
    ts_tensor_release(o[0]);
    ts_tensor_release(in[1]);
    in[1] = ints1(1, (int64_t[]){3});
    quiet = true;
    CHECK(!run_op("Gather", NULL, NULL, 13, in, 2, o, 1) && has(ts_last_error(), "out of range"));
    quiet = false;
    ts_tensor_release(in[1]);

    ts_tensor *uin[2] = {x, ints1(2, (int64_t[]){0, -1})};
    CHECK(run_op("Unsqueeze", NULL, NULL, 13, uin, 2, o, 1) && same_shape(o[0], (int64_t[]){1, 3, 2, 1}, 4));
    ts_tensor_release(o[0]);
    ts_tensor_release(uin[1]);
    CHECK(run_op("Unsqueeze", "axes=I:1", NULL, 11, &x, 1, o, 1) && same_shape(o[0], (int64_t[]){3, 1, 2}, 3));
    ts_tensor_release(o[0]);

    ts_tensor *y = ts_tensor_zeros((int64_t[]){1, 2, 1}, 3, TS_F32);
    CHECK(run_op("Squeeze", NULL, NULL, 13, &y, 1, o, 1) && same_shape(o[0], (int64_t[]){2}, 1));
    ts_tensor_release(o[0]);
    ts_tensor *sin[2] = {y, ints1(1, (int64_t[]){-1})};
    CHECK(run_op("Squeeze", NULL, NULL, 13, sin, 2, o, 1) && same_shape(o[0], (int64_t[]){1, 2}, 2));
    ts_tensor_release(o[0]);
    ts_tensor_release(sin[1]);
    CHECK(run_op("Squeeze", "axes=I:0", NULL, 11, &y, 1, o, 1) && same_shape(o[0], (int64_t[]){2, 1}, 2));
    ts_tensor_release(o[0]);
    quiet = true;
    CHECK(!run_op("Squeeze", "axes=I:1", NULL, 11, &y, 1, o, 1) && has(ts_last_error(), "cannot squeeze axis 1"));
    quiet = false;
    ts_tensor_release(y);
    ts_tensor_release(x);
}

static void test_constants_expand_tile(void)
{
    ts_tensor *o[2] = {0};
    CHECK(run_op("Constant", "value_ints=I:1,2,3", NULL, 13, NULL, 0, o, 1) && same_shape(o[0], (int64_t[]){3}, 1));
    CHECK(o[0] && o[0]->dtype == TS_I64 && same_vals(o[0], (double[]){1, 2, 3}));
    ts_tensor_release(o[0]);
    CHECK(run_op("Constant", "value_float=f:2.5", NULL, 13, NULL, 0, o, 1) && same_shape(o[0], NULL, 0));
    CHECK(o[0] && o[0]->dtype == TS_F32 && same_vals(o[0], (double[]){2.5}));
    ts_tensor_release(o[0]);
    ts_tensor *v = tf((int64_t[]){2}, 1, (double[]){7, 8});
    CHECK(run_op("Constant", "value=t:", v, 13, NULL, 0, o, 1) && same_vals(o[0], (double[]){7, 8}));
    ts_tensor_release(o[0]);
    ts_tensor_release(v);

    ts_tensor *shape = ints1(2, (int64_t[]){2, 3});
    ts_tensor *seven = ti((int64_t[]){1}, 1, (int64_t[]){7});
    CHECK(run_op("ConstantOfShape", "value=t:", seven, 13, &shape, 1, o, 1) && same_shape(o[0], (int64_t[]){2, 3}, 2));
    CHECK(o[0] && o[0]->dtype == TS_I64 && same_vals(o[0], (double[]){7, 7, 7, 7, 7, 7}));
    ts_tensor_release(o[0]);
    CHECK(run_op("ConstantOfShape", NULL, NULL, 13, &shape, 1, o, 1) && o[0] && o[0]->dtype == TS_F32);
    CHECK(same_vals(o[0], (double[]){0, 0, 0, 0, 0, 0}));
    ts_tensor_release(o[0]);
    ts_tensor_release(seven);
    ts_tensor_release(shape);

    /* Expand [3, 1] to [2, 1, 4] (bidirectional): [2, 3, 4] */
    ts_tensor *x = tf((int64_t[]){3, 1}, 2, (double[]){1, 2, 3});
    ts_tensor *ein[2] = {x, ints1(3, (int64_t[]){2, 1, 4})};
    CHECK(run_op("Expand", NULL, NULL, 13, ein, 2, o, 1) && same_shape(o[0], (int64_t[]){2, 3, 4}, 3));
    CHECK(o[0] && ts_tensor_item_at(o[0], 0) == 1 && ts_tensor_item_at(o[0], 5) == 2 && ts_tensor_item_at(o[0], 23) == 3);
    ts_tensor_release(o[0]);
    ts_tensor_release(ein[1]);

    ts_tensor *t = tf((int64_t[]){2, 2}, 2, (double[]){1, 2, 3, 4});
    ts_tensor *tin[2] = {t, ints1(2, (int64_t[]){1, 2})};
    CHECK(run_op("Tile", NULL, NULL, 13, tin, 2, o, 1) && same_shape(o[0], (int64_t[]){2, 4}, 2));
    CHECK(same_vals(o[0], (double[]){1, 2, 1, 2, 3, 4, 3, 4}));
    ts_tensor_release(o[0]);
    ts_tensor_release(tin[1]);

    /* Identity, Dropout (inference: identity, mask all true) */
    CHECK(run_op("Identity", NULL, NULL, 13, &t, 1, o, 1) && same_vals(o[0], (double[]){1, 2, 3, 4}));
    ts_tensor_release(o[0]);
    CHECK(run_op("Dropout", NULL, NULL, 13, &t, 1, o, 2) && same_vals(o[0], (double[]){1, 2, 3, 4}));
    CHECK(o[1] && o[1]->dtype == TS_BOOL && same_vals(o[1], (double[]){1, 1, 1, 1}));
    release_all(o, 2);
    ts_tensor_release(t);
    ts_tensor_release(x);
}

static void test_cast_compare_where(void)
{
    ts_tensor *x = tf((int64_t[]){4}, 1, (double[]){1.7, -1.7, 0, 2.5}), *o[1] = {0};
    CHECK(run_op("Cast", "to=i:6", NULL, 13, &x, 1, o, 1) && o[0] && o[0]->dtype == TS_I32);
    CHECK(same_vals(o[0], (double[]){1, -1, 0, 2}));
    ts_tensor_release(o[0]);
    CHECK(run_op("Cast", "to=i:9", NULL, 13, &x, 1, o, 1) && o[0] && o[0]->dtype == TS_BOOL);
    CHECK(same_vals(o[0], (double[]){1, 1, 0, 1}));
    ts_tensor_release(o[0]);
    quiet = true;
    CHECK(!run_op("Cast", "to=i:8", NULL, 13, &x, 1, o, 1) && has(ts_last_error(), "cannot cast to ONNX data type 8"));
    quiet = false;
    ts_tensor *like = ti(NULL, 0, (int64_t[]){0});
    ts_tensor *cl[2] = {x, like};
    CHECK(run_op("CastLike", NULL, NULL, 15, cl, 2, o, 1) && o[0] && o[0]->dtype == TS_I64);
    ts_tensor_release(o[0]);
    ts_tensor_release(like);

    ts_tensor *y = tf((int64_t[]){2, 1}, 2, (double[]){0, 2});
    ts_tensor *pair[2] = {x, y};    /* [4] against [2, 1]: [2, 4] */
    CHECK(run_op("Equal", NULL, NULL, 13, pair, 2, o, 1) && same_shape(o[0], (int64_t[]){2, 4}, 2));
    CHECK(o[0] && o[0]->dtype == TS_BOOL && same_vals(o[0], (double[]){0, 0, 1, 0, 0, 0, 0, 0}));
    ts_tensor_release(o[0]);
    CHECK(run_op("Less", NULL, NULL, 13, pair, 2, o, 1) && same_vals(o[0], (double[]){0, 1, 0, 0, 1, 1, 1, 0}));
    ts_tensor_release(o[0]);
    CHECK(run_op("Greater", NULL, NULL, 13, pair, 2, o, 1) && same_vals(o[0], (double[]){1, 0, 0, 1, 0, 0, 0, 1}));
    ts_tensor_release(o[0]);
    CHECK(run_op("LessOrEqual", NULL, NULL, 13, pair, 2, o, 1) && same_vals(o[0], (double[]){0, 1, 1, 0, 1, 1, 1, 0}));
    ts_tensor_release(o[0]);
    CHECK(run_op("GreaterOrEqual", NULL, NULL, 13, pair, 2, o, 1) && same_vals(o[0], (double[]){1, 0, 1, 1, 0, 0, 0, 1}));
    ts_tensor_release(o[0]);
    ts_tensor *b = ts_tensor_from_data((uint8_t[]){1, 0}, TS_BOOL, (int64_t[]){2}, 1, TS_BOOL);
    CHECK(run_op("Not", NULL, NULL, 13, &b, 1, o, 1) && o[0] && o[0]->dtype == TS_BOOL && same_vals(o[0], (double[]){0, 1}));
    ts_tensor_release(o[0]);

    /* Where(cond [2], x [2, 1], y scalar) -> [2, 2] */
    ts_tensor *s = ts_tensor_scalar(-5, TS_F32);
    ts_tensor *w[3] = {b, y, s};
    CHECK(run_op("Where", NULL, NULL, 16, w, 3, o, 1) && same_shape(o[0], (int64_t[]){2, 2}, 2));
    CHECK(same_vals(o[0], (double[]){0, -5, 2, -5}));
    ts_tensor_release(o[0]);
    ts_tensor_release(s);
    ts_tensor_release(b);
    ts_tensor_release(y);
    ts_tensor_release(x);
}

static void test_range_reduce_pad(void)
{
    ts_tensor *o[1] = {0};
    ts_tensor *r[3] = {ti(NULL, 0, (int64_t[]){1}), ti(NULL, 0, (int64_t[]){10}), ti(NULL, 0, (int64_t[]){3})};
    CHECK(run_op("Range", NULL, NULL, 11, r, 3, o, 1) && o[0] && o[0]->dtype == TS_I64 && same_vals(o[0], (double[]){1, 4, 7}));
    CHECK(same_shape(o[0], (int64_t[]){3}, 1));
    ts_tensor_release(o[0]);
    release_all(r, 3);
    ts_tensor *rf[3] = {ts_tensor_scalar(5, TS_F32), ts_tensor_scalar(1, TS_F32), ts_tensor_scalar(-1.5, TS_F32)};
    CHECK(run_op("Range", NULL, NULL, 11, rf, 3, o, 1) && same_vals(o[0], (double[]){5, 3.5, 2}));
    ts_tensor_release(o[0]);
    release_all(rf, 3);
    ts_tensor *re[3] = {ti(NULL, 0, (int64_t[]){5}), ti(NULL, 0, (int64_t[]){1}), ti(NULL, 0, (int64_t[]){1})};
    CHECK(run_op("Range", NULL, NULL, 11, re, 3, o, 1) && same_shape(o[0], (int64_t[]){0}, 1));
    ts_tensor_release(o[0]);
    release_all(re, 3);

    ts_tensor *x = arange_f(6, (int64_t[]){2, 3}, 2);
    CHECK(run_op("ReduceMean", "axes=I:1", NULL, 13, &x, 1, o, 1) && same_shape(o[0], (int64_t[]){2, 1}, 2));
    CHECK(same_vals(o[0], (double[]){1, 4}));
    ts_tensor_release(o[0]);
    ts_tensor *ax[2] = {x, ints1(1, (int64_t[]){0})};
    CHECK(run_op("ReduceSum", "keepdims=i:0", NULL, 13, ax, 2, o, 1) && same_shape(o[0], (int64_t[]){3}, 1));
    CHECK(o[0] && o[0]->dtype == TS_F32 && same_vals(o[0], (double[]){3, 5, 7}));
    ts_tensor_release(o[0]);
    CHECK(run_op("ReduceMean", "keepdims=i:0", NULL, 18, ax, 2, o, 1) && same_vals(o[0], (double[]){1.5, 2.5, 3.5}));
    ts_tensor_release(o[0]);
    ts_tensor_release(ax[1]);
    CHECK(run_op("ReduceMax", NULL, NULL, 13, &x, 1, o, 1) && same_shape(o[0], (int64_t[]){1, 1}, 2));
    CHECK(same_vals(o[0], (double[]){5}));
    ts_tensor_release(o[0]);
    CHECK(run_op("ReduceMin", "axes=I:-1;keepdims=i:0", NULL, 13, &x, 1, o, 1) && same_vals(o[0], (double[]){0, 3}));
    ts_tensor_release(o[0]);
    CHECK(run_op("ReduceProd", "axes=I:0;keepdims=i:0", NULL, 13, &x, 1, o, 1) && same_vals(o[0], (double[]){0, 4, 10}));
    ts_tensor_release(o[0]);
    CHECK(run_op("ReduceSum", "noop_with_empty_axes=i:1", NULL, 13, &x, 1, o, 1) && same_shape(o[0], (int64_t[]){2, 3}, 2));
    ts_tensor_release(o[0]);
    ts_tensor *xi = ti((int64_t[]){2, 2}, 2, (int64_t[]){1, 2, 3, 5});
    CHECK(run_op("ReduceSum", "keepdims=i:0", NULL, 13, &xi, 1, o, 1) && o[0] && o[0]->dtype == TS_I64);
    CHECK(same_vals(o[0], (double[]){11}));
    ts_tensor_release(o[0]);
    ts_tensor_release(xi);
    ts_tensor_release(x);

    /* Pad: ONNX pads are [x1_begin, x2_begin, x1_end, x2_end] */
    ts_tensor *p = tf((int64_t[]){2, 2}, 2, (double[]){1, 2, 3, 4});
    ts_tensor *pc[3] = {p, ints1(4, (int64_t[]){0, 1, 0, 1}), ts_tensor_scalar(9, TS_F32)};
    CHECK(run_op("Pad", NULL, NULL, 13, pc, 3, o, 1) && same_shape(o[0], (int64_t[]){2, 4}, 2));
    CHECK(same_vals(o[0], (double[]){9, 1, 2, 9, 9, 3, 4, 9}));
    ts_tensor_release(o[0]);
    release_all(pc + 1, 2);
    ts_tensor *p3 = tf((int64_t[]){3, 2}, 2, (double[]){1, 2, 3, 4, 5, 6});
    ts_tensor *pr[2] = {p3, ints1(4, (int64_t[]){1, 0, 1, 0})};
    CHECK(run_op("Pad", "mode=s:reflect", NULL, 13, pr, 2, o, 1) && same_shape(o[0], (int64_t[]){5, 2}, 2));
    CHECK(same_vals(o[0], (double[]){3, 4, 1, 2, 3, 4, 5, 6, 3, 4}));
    ts_tensor_release(o[0]);
    ts_tensor_release(pr[1]);
    ts_tensor *pe[2] = {p, ints1(4, (int64_t[]){0, 2, 0, 0})};
    CHECK(run_op("Pad", "mode=s:edge", NULL, 13, pe, 2, o, 1) && same_vals(o[0], (double[]){1, 1, 1, 2, 3, 3, 3, 4}));
    ts_tensor_release(o[0]);
    ts_tensor_release(pe[1]);
    /* axes input (18): pads for the last axis only */
    ts_tensor *pa[4] = {p, ints1(2, (int64_t[]){1, 2}), NULL, ints1(1, (int64_t[]){-1})};
    CHECK(run_op("Pad", NULL, NULL, 18, pa, 4, o, 1) && same_shape(o[0], (int64_t[]){2, 5}, 2));
    CHECK(same_vals(o[0], (double[]){0, 1, 2, 0, 0, 0, 3, 4, 0, 0}));
    ts_tensor_release(o[0]);
    ts_tensor_release(pa[1]);
    ts_tensor_release(pa[3]);
    /* opset 2: attributes; negative pads crop */
    CHECK(run_op("Pad", "pads=I:0,-1,0,0;value=f:0", NULL, 2, &p, 1, o, 1) && same_shape(o[0], (int64_t[]){2, 1}, 2));
    CHECK(same_vals(o[0], (double[]){2, 4}));
    ts_tensor_release(o[0]);
    ts_tensor_release(p3);
    ts_tensor_release(p);
}

/* ---- toposort and prune ------------------------------------------------------------------------ */

static void test_toposort_prune(void)
{
    /* nodes added consumers first: c = Identity(b), b = Identity(a), a = Identity(x) */
    ts_graph *g = ts_graph_new("topo");
    int x = ts_graph_value(g, "x"), a = ts_graph_value(g, "a"), b = ts_graph_value(g, "b"), c = ts_graph_value(g, "c");
    ts_graph_set_info(g, x, TS_F32, 1, (ts_dim[]){ts_dim_of(3)});
    ts_graph_add_input(g, x);
    ts_graph_add_node(g, "Identity", "", "nc", &b, 1, &c, 1);
    ts_graph_add_node(g, "Identity", "", "nb", &a, 1, &b, 1);
    ts_graph_add_node(g, "Identity", "", "na", &x, 1, &a, 1);
    ts_graph_add_output(g, c);
    /* the executor orders on its own */
    ts_exec *e = ts_exec_new(g, NULL);
    ts_tensor *in = tf((int64_t[]){3}, 1, (double[]){1, 2, 3}), *out = NULL;
    CHECK(e && ts_exec_run(e, &in, 1, &out, 1) == TS_OK && same_vals(out, (double[]){1, 2, 3}));
    ts_tensor_release(out);
    ts_exec_free(e);
    CHECK(ts_graph_toposort(g) == TS_OK);
    CHECK(strcmp(ts_graph_node(g, 0)->name, "na") == 0 && strcmp(ts_graph_node(g, 2)->name, "nc") == 0);
    CHECK(ts_graph_val(g, c)->producer == 2 && ts_graph_val(g, a)->producer == 0);
    /* stable on a sorted graph: two independent branches keep their order */
    int d = ts_graph_value(g, "d"), f = ts_graph_value(g, "f");
    ts_graph_add_node(g, "Identity", "", "nd", &x, 1, &d, 1);
    ts_graph_add_node(g, "Identity", "", "nf", &x, 1, &f, 1);
    CHECK(ts_graph_toposort(g) == TS_OK);
    CHECK(strcmp(ts_graph_node(g, 3)->name, "nd") == 0 && strcmp(ts_graph_node(g, 4)->name, "nf") == 0);

    /* prune: nd, nf and an unused constant go; inputs stay */
    int w = ts_graph_value(g, "unused_w");
    ts_tensor *wt = ts_tensor_zeros((int64_t[]){4}, 1, TS_F32);
    ts_graph_set_const(g, w, wt, true);
    CHECK(ts_graph_prune(g) == TS_OK);
    CHECK(ts_graph_node_count(g) == 3 && wt->refcount == 1);
    CHECK(ts_graph_find_value(g, "d") == -1 && ts_graph_find_value(g, "unused_w") == -1);
    int c2 = ts_graph_find_value(g, "c");
    CHECK(c2 >= 0 && ts_graph_output(g, 0) == c2 && ts_graph_input(g, 0) == ts_graph_find_value(g, "x"));
    CHECK(ts_graph_val(g, c2)->producer == 2 && strcmp(ts_graph_node(g, ts_graph_val(g, c2)->producer)->name, "nc") == 0);
    e = ts_exec_new(g, NULL);
    out = NULL;
    CHECK(e && ts_exec_run(e, &in, 1, &out, 1) == TS_OK && same_vals(out, (double[]){1, 2, 3}));
    ts_tensor_release(out);
    ts_exec_free(e);
    ts_tensor_release(wt);

    /* a cycle, and a value nobody produces */
    int p = ts_graph_value(g, "p"), q = ts_graph_value(g, "q"), ghost = ts_graph_value(g, "ghost"), z = ts_graph_value(g, "z");
    ts_graph_add_node(g, "Identity", "", "loop1", &p, 1, &q, 1);
    ts_graph_add_node(g, "Identity", "", "loop2", &q, 1, &p, 1);
    CHECK(ts_graph_toposort(g) == TS_ERR_ARG && has(ts_last_error(), "cycle") && has(ts_last_error(), "loop1"));
    ts_graph *h = ts_graph_new("ghost");
    ghost = ts_graph_value(h, "ghost"), z = ts_graph_value(h, "z");
    ts_graph_add_node(h, "Identity", "", "reader", &ghost, 1, &z, 1);
    CHECK(ts_graph_toposort(h) == TS_ERR_ARG && has(ts_last_error(), "'reader'") && has(ts_last_error(), "'ghost'"));
    CHECK(ts_exec_new(h, NULL) == NULL);
    (void)p;
    ts_graph_free(h);
    ts_tensor_release(in);
    ts_graph_free(g);
}

/* ---- executor: errors, memory, hooks --------------------------------------------------------- */

static void test_unknown_ops(void)
{
    ts_graph *g = ts_graph_new("unk");
    int x = ts_graph_value(g, "x"), y = ts_graph_value(g, "y"), z = ts_graph_value(g, "z");
    ts_graph_add_input(g, x);
    ts_graph_add_node(g, "FooOp", "", "mystery", &x, 1, &y, 1);
    ts_graph_add_node(g, "BarOp", "", "other", &y, 1, &z, 1);
    ts_graph_add_output(g, z);
    CHECK(ts_graph_infer(g, NULL, NULL, 0) == TS_OK);   /* unknown ops leave outputs unknown */
    CHECK(ts_graph_val(g, z)->ndim == TS_RANK_UNKNOWN);
    CHECK(ts_exec_new(g, NULL) == NULL);
    const char *m = ts_last_error();
    CHECK(ts_last_status() == TS_ERR_UNSUPPORTED);
    CHECK(has(m, "node 'mystery' (FooOp): no kernel for op FooOp") && has(m, "'other'") && has(m, "BarOp"));
    CHECK(has(m, "supported ops: ") && has(m, "Concat"));
    ts_graph_free(g);

    /* an unknown op on a branch no output needs does not block running... */
    g = ts_graph_new("dead");
    x = ts_graph_value(g, "x"), y = ts_graph_value(g, "y"), z = ts_graph_value(g, "z");
    ts_graph_add_input(g, x);
    ts_graph_add_node(g, "Identity", "", "keep", &x, 1, &y, 1);
    ts_graph_add_node(g, "FooOp", "", "dead_branch", &x, 1, &z, 1);
    ts_graph_add_output(g, y);
    ts_exec *e = ts_exec_new(g, NULL);
    CHECK(e != NULL);
    ts_exec_free(e);
    /* ...unless every node must run */
    ts_exec_options opt = {.keep_intermediates = true};
    CHECK(ts_exec_new(g, &opt) == NULL && has(ts_last_error(), "'dead_branch'"));
    ts_graph_free(g);
}

/* Shape values: Shape(x) of x [N, 4] feeds ConstantOfShape, Expand and Slice -> Reshape */
static void test_shape_values(void)
{
    ts_graph *g = ts_graph_new("sv");
    int x = ts_graph_value(g, "x"), sh = ts_graph_value(g, "sh"), cos = ts_graph_value(g, "cos");
    int row = ts_graph_value(g, "row"), ex = ts_graph_value(g, "ex");
    int s0 = ts_graph_value(g, "s0"), s1 = ts_graph_value(g, "s1"), e1 = ts_graph_value(g, "e1");
    int tail = ts_graph_value(g, "tail"), m1 = ts_graph_value(g, "m1"), spec = ts_graph_value(g, "spec");
    int r = ts_graph_value(g, "r");
    ts_graph_set_info(g, x, TS_F32, 2, (ts_dim[]){ts_dim_sym(g, "N"), ts_dim_of(4)});
    ts_graph_add_input(g, x);
    ts_tensor *t = tf((int64_t[]){1, 4}, 2, (double[]){1, 2, 3, 4});
    ts_graph_set_const(g, row, t, true);
    ts_tensor_release(t);
    t = ints1(1, (int64_t[]){1});
    ts_graph_set_const(g, s1, t, false);
    ts_tensor_release(t);
    t = ints1(1, (int64_t[]){INT64_MAX});
    ts_graph_set_const(g, e1, t, false);
    ts_tensor_release(t);
    t = ints1(1, (int64_t[]){-1});
    ts_graph_set_const(g, m1, t, false);
    ts_tensor_release(t);
    ts_graph_add_node(g, "Shape", "", "shape", &x, 1, &sh, 1);
    ts_graph_add_node(g, "ConstantOfShape", "", "zeros", &sh, 1, &cos, 1);
    ts_graph_add_node(g, "Expand", "", "expand", (int[]){row, sh}, 2, &ex, 1);
    ts_graph_add_node(g, "Slice", "", "slice", (int[]){sh, s1, e1}, 3, &tail, 1);   /* [4] */
    int c = ts_graph_add_node(g, "Concat", "", "cat", (int[]){m1, tail}, 2, &spec, 1);   /* [-1, 4] */
    ts_gnode_set_int(g, c, "axis", 0);
    ts_graph_add_node(g, "Reshape", "", "reshape", (int[]){cos, spec}, 2, &r, 1);
    (void)s0;
    ts_graph_add_output(g, ex);
    ts_graph_add_output(g, r);
    CHECK(ts_graph_infer(g, NULL, NULL, 0) == TS_OK);
    CHECK(dims_are(g, ts_graph_val(g, cos), 2, SYM("N"), S(4)) && ts_graph_val(g, cos)->dtype == TS_F32);
    CHECK(dims_are(g, ts_graph_val(g, ex), 2, SYM("N"), S(4)));
    CHECK(dims_are(g, ts_graph_val(g, tail), 1, S(1)) && ts_graph_val(g, tail)->constant == NULL);
    CHECK(dims_are(g, ts_graph_val(g, r), 2, SYM("N"), S(4)));
    ts_exec *e = ts_exec_new(g, NULL);
    ts_tensor *in = ts_tensor_zeros((int64_t[]){3, 4}, 2, TS_F32), *out[2] = {0};
    CHECK(e && ts_exec_run(e, &in, 1, out, 2) == TS_OK);
    CHECK(same_shape(out[0], (int64_t[]){3, 4}, 2) && out[0] && ts_tensor_item_at(out[0], 11) == 4);
    CHECK(same_shape(out[1], (int64_t[]){3, 4}, 2));
    release_all(out, 2);
    ts_exec_free(e);
    ts_tensor_release(in);
    ts_graph_free(g);
}

static void test_bad_inputs(void)
{
    ts_graph *g = ts_graph_new("bad");
    int x = ts_graph_value(g, "x"), m = ts_graph_value(g, "m"), y = ts_graph_value(g, "y");
    ts_graph_set_info(g, x, TS_F32, 2, (ts_dim[]){ts_dim_sym(g, "N"), ts_dim_of(3)});
    ts_graph_set_info(g, m, TS_BOOL, 2, (ts_dim[]){ts_dim_sym(g, "N"), ts_dim_of(1)});
    ts_graph_add_input(g, x);
    ts_graph_add_input(g, m);
    ts_graph_add_node(g, "Where", "", "w", (int[]){m, x, x}, 3, &y, 1);
    ts_graph_add_output(g, y);
    CHECK(ts_graph_infer(g, NULL, NULL, 0) == TS_OK && dims_are(g, ts_graph_val(g, y), 2, SYM("N"), S(3)));
    ts_exec *e = ts_exec_new(g, NULL);
    ts_tensor *xf = ts_tensor_zeros((int64_t[]){2, 3}, 2, TS_F32), *xi = ts_tensor_zeros((int64_t[]){2, 3}, 2, TS_I32);
    ts_tensor *x1 = ts_tensor_zeros((int64_t[]){6}, 1, TS_F32), *x4 = ts_tensor_zeros((int64_t[]){2, 4}, 2, TS_F32);
    ts_tensor *mb = ts_tensor_zeros((int64_t[]){2, 1}, 2, TS_BOOL), *m3 = ts_tensor_zeros((int64_t[]){3, 1}, 2, TS_BOOL);
    ts_tensor *out = NULL;
    CHECK(ts_exec_run(e, (ts_tensor *[]){xf, mb}, 2, &out, 1) == TS_OK && same_shape(out, (int64_t[]){2, 3}, 2));
    ts_tensor_release(out);
    CHECK(ts_exec_run(e, (ts_tensor *[]){xi, mb}, 2, &out, 1) == TS_ERR_ARG);
    CHECK(has(ts_last_error(), "input 0 ('x')") && has(ts_last_error(), "dtype f32, got i32"));
    CHECK(ts_exec_run(e, (ts_tensor *[]){x1, mb}, 2, &out, 1) == TS_ERR_ARG && has(ts_last_error(), "rank 2"));
    CHECK(ts_exec_run(e, (ts_tensor *[]){x4, mb}, 2, &out, 1) == TS_ERR_ARG && has(ts_last_error(), "[N, 3]"));
    CHECK(ts_exec_run(e, (ts_tensor *[]){xf, m3}, 2, &out, 1) == TS_ERR_ARG);
    CHECK(has(ts_last_error(), "input 1 ('m')") && has(ts_last_error(), "N"));
    CHECK(ts_exec_run(e, (ts_tensor *[]){xf}, 1, &out, 1) == TS_ERR_ARG && has(ts_last_error(), "takes 2 inputs"));
    CHECK(out == NULL);
    ts_exec_free(e);

    /* inference errors name the node */
    int z = ts_graph_value(g, "z"), k = ts_graph_value(g, "k");
    ts_graph_set_info(g, k, TS_F32, 2, (ts_dim[]){ts_dim_of(5), ts_dim_of(4)});
    ts_graph_add_input(g, k);
    int cn = ts_graph_add_node(g, "Concat", "", "joiner", (int[]){x, k}, 2, &z, 1);
    ts_gnode_set_int(g, cn, "axis", 0);
    CHECK(ts_graph_infer(g, NULL, NULL, 0) == TS_ERR_ARG);
    CHECK(has(ts_last_error(), "node 'joiner' (Concat)") && has(ts_last_error(), "[5, 4]"));
    ts_graph *h = ts_graph_new("bc");
    int a = ts_graph_value(h, "a"), b = ts_graph_value(h, "b"), c = ts_graph_value(h, "c");
    ts_graph_set_info(h, a, TS_F32, 1, (ts_dim[]){ts_dim_of(3)});
    ts_graph_set_info(h, b, TS_F32, 1, (ts_dim[]){ts_dim_of(4)});
    ts_graph_add_input(h, a);
    ts_graph_add_input(h, b);
    ts_graph_add_node(h, "Equal", "", "eq", (int[]){a, b}, 2, &c, 1);
    CHECK(ts_graph_infer(h, NULL, NULL, 0) == TS_ERR_ARG && has(ts_last_error(), "node 'eq' (Equal)") &&
          has(ts_last_error(), "broadcast"));
    /* a kernel failure at run time names the node too */
    ts_graph *r = ts_graph_new("rt");
    int ra = ts_graph_value(r, "a"), rs = ts_graph_value(r, "s"), ro = ts_graph_value(r, "o");
    ts_graph_add_input(r, ra);
    ts_graph_add_input(r, rs);
    ts_graph_add_node(r, "Reshape", "", "rs", (int[]){ra, rs}, 2, &ro, 1);
    ts_graph_add_output(r, ro);
    e = ts_exec_new(r, NULL);
    ts_tensor *bad_shape = ints1(1, (int64_t[]){7});
    CHECK(ts_exec_run(e, (ts_tensor *[]){xf, bad_shape}, 2, &out, 1) == TS_ERR_ARG);
    CHECK(has(ts_last_error(), "node 'rs' (Reshape)") && has(ts_last_error(), "[2, 3]"));
    ts_exec_free(e);
    ts_tensor_release(bad_shape);
    ts_graph_free(r);
    ts_graph_free(h);
    ts_tensor_release(xf); ts_tensor_release(xi); ts_tensor_release(x1); ts_tensor_release(x4);
    ts_tensor_release(mb); ts_tensor_release(m3);
    ts_graph_free(g);
}

/* A probe op (domain "test"): identity that records live CPU bytes. */
static int64_t probe_live[8];
static int n_probe;
static ts_status k_probe(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (n_probe < 8) probe_live[n_probe++] = ts_mem_get_stats(TS_CPU).live_bytes;
    ts_tensor_retain(in[0]);
    out[0] = in[0];
    return TS_OK;
}

/* x f32 [512, 512] (1 MiB) -> Cast f64 (2 MiB) -> Cast f32 -> probe -> Cast f64 -> Cast f32 ... */
static ts_graph *cast_chain(int steps, int *ids)
{
    ts_op_def d = {.op_type = "Probe", .domain = "test", .run = k_probe, .infer = NULL};
    ts_op_register(&d);
    ts_graph *g = ts_graph_new("chain");
    int prev = ts_graph_value(g, "x");
    ts_graph_set_info(g, prev, TS_F32, 2, (ts_dim[]){ts_dim_of(512), ts_dim_of(512)});
    ts_graph_add_input(g, prev);
    ids[0] = prev;
    for (int i = 0; i < steps; i++) {
        char name[16];
        snprintf(name, sizeof name, "v%d", i);
        int v = ts_graph_value(g, name);
        int n;
        if (i == steps / 2) {
            n = ts_graph_add_node(g, "Probe", "test", NULL, &prev, 1, &v, 1);
        } else {
            n = ts_graph_add_node(g, "Cast", "", NULL, &prev, 1, &v, 1);
            ts_gnode_set_int(g, n, "to", i % 2 == 0 ? 11 : 1);
        }
        ids[i + 1] = v;
        prev = v;
    }
    ts_graph_add_output(g, prev);
    return g;
}

static void test_exec_releases(void)
{
    enum { STEPS = 9 };
    int ids[STEPS + 1];
    ts_graph *g = cast_chain(STEPS, ids);
    CHECK(ts_graph_infer(g, NULL, NULL, 0) == TS_OK);
    ts_tensor *x = ts_tensor_full((int64_t[]){512, 512}, 2, TS_F32, 1.5);
    const int64_t mib = 1 << 20;
    int64_t base = ts_mem_get_stats(TS_CPU).live_bytes;
    ts_exec *e = ts_exec_new(g, NULL);
    ts_tensor *out = NULL;
    n_probe = 0;
    ts_mem_reset_peak(TS_CPU);
    CHECK(e && ts_exec_run(e, &x, 1, &out, 1) == TS_OK);
    CHECK(out && out->dtype == TS_F64 && ts_tensor_item_at(out, 7) == 1.5);
    /* while the probe ran: the input x and one live intermediate (f32 or f64) */
    CHECK(n_probe == 1 && probe_live[0] - base <= 2 * mib);
    /* peak: at most two intermediates at once next to the input (no accumulation over 9 steps) */
    CHECK(ts_mem_get_stats(TS_CPU).peak_bytes - base <= 4 * mib);
    /* after: only the output stays */
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes - base == (int64_t)ts_tensor_nbytes(out));
    CHECK(ts_exec_value(e, ids[3]) == NULL);
    ts_tensor_release(out);
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes == base);
    ts_exec_free(e);

    /* keep_intermediates: everything stays until the executor goes */
    ts_exec_options opt = {.keep_intermediates = true};
    e = ts_exec_new(g, &opt);
    out = NULL;
    CHECK(e && ts_exec_run(e, &x, 1, &out, 1) == TS_OK);
    CHECK(ts_exec_value(e, ids[1]) && ts_exec_value(e, ids[1])->dtype == TS_F64);
    CHECK(ts_exec_value(e, ids[STEPS]) == out && ts_exec_value(e, ids[0]) == x);
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes - base >= 6 * mib);
    ts_tensor_release(out);
    out = NULL;
    CHECK(ts_exec_run(e, &x, 1, &out, 1) == TS_OK);    /* a second run replaces the kept values */
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes - base < 14 * mib);
    ts_tensor_release(out);
    ts_exec_free(e);
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes == base);
    ts_tensor_release(x);
    ts_graph_free(g);
}

static int hook_begins, hook_ends, hook_named;
static void *hook_begin(ts_prof_kind kind, const char *name, const char *op, ts_tensor *const *in, int n)
{
    hook_begins++;
    if (kind == TS_PROF_NODE && strcmp(op, "Cast") == 0 && strncmp(name, "Cast", 4) == 0 && n == 1 && in[0]) hook_named++;
    return &hook_begins;
}
static void hook_end(void *tok, ts_tensor *const *out, int n)
{
    if (tok == &hook_begins && n == 1 && out[0]) hook_ends++;
}

static void test_prof_hooks(void)
{
    int ids[6];
    ts_graph *g = cast_chain(5, ids);
    ts_exec *e = ts_exec_new(g, NULL);
    ts_tensor *x = ts_tensor_zeros((int64_t[]){512, 512}, 2, TS_F32), *out = NULL;
    static const ts_prof_hooks hooks = {hook_begin, hook_end};
    ts_prof_set_hooks(&hooks);
    CHECK(ts_exec_run(e, &x, 1, &out, 1) == TS_OK);
    ts_prof_set_hooks(NULL);
    CHECK(hook_begins == 5 && hook_ends == 5 && hook_named == 4);
    ts_tensor_release(out);
    ts_tensor_release(x);
    ts_exec_free(e);
    ts_graph_free(g);
}

int main(void)
{
    RUN(test_build_and_read);
    RUN(test_registry);
    RUN(test_infer_symbols);
    RUN(test_fold_shape_chain);
    RUN(test_reshape_transpose_flatten);
    RUN(test_concat_split);
    RUN(test_slice);
    RUN(test_gather_squeeze);
    RUN(test_constants_expand_tile);
    RUN(test_cast_compare_where);
    RUN(test_range_reduce_pad);
    RUN(test_toposort_prune);
    RUN(test_unknown_ops);
    RUN(test_shape_values);
    RUN(test_bad_inputs);
    RUN(test_exec_releases);
    RUN(test_prof_hooks);
    return check_finish("test_graph");
}
