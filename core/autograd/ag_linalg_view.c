/* ag_linalg_view.c — recording wrappers and backward formulas of matmul,
 * bmm, linear, and of the view and copy ops (view, reshape, permute,
 * transpose, slice, narrow, select, expand, squeeze, unsqueeze, flatten,
 * contiguous, clone, to_dtype). */
#include "agx.h"
#include "torsh/autograd_ops.h"

#include <string.h>


/* ---- matmul ---------------------------------------------------------------- */

static ts_status matmul_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    ag_scope s = {0};
    const ts_tensor *a = n->saved[0], *b = n->saved[1];
    const ts_tensor *g = go[0];
    bool a1 = a->ndim == 1, b1 = b->ndim == 1;
    /* give vectors their matrix form, as matmul did */
    const ts_tensor *A = a1 ? ag_keep(&s, ts_unsqueeze(a, 0)) : a;
    const ts_tensor *B = b1 ? ag_keep(&s, ts_unsqueeze(b, 1)) : b;
    const ts_tensor *G = g;
    if (a1) G = ag_keep(&s, ts_unsqueeze(G, G->ndim - (b1 ? 0 : 1)));
    if (b1 && G) G = ag_keep(&s, ts_unsqueeze(G, G->ndim));
    ts_tensor *ga = NULL, *gb = NULL;
    if (ag_wants(n, 0)) {
        ga = AG_MATMUL(&s, G, AG_T(&s, B, -1, -2));
        if (a1 && ga) ga = ag_keep(&s, ts_squeeze(ga, ga->ndim - 2));
    }
    if (ag_wants(n, 1)) {
        gb = AG_MATMUL(&s, AG_T(&s, A, -1, -2), G);
        if (b1 && gb) gb = ag_keep(&s, ts_squeeze(gb, gb->ndim - 1));
    }
    if (!s.failed) {
        if (ag_wants(n, 0)) gi[0] = ag_finish(n, 0, ga);
        if (ag_wants(n, 1)) gi[1] = ag_finish(n, 1, gb);
    }
    bool failed = s.failed || (ag_wants(n, 0) && !gi[0]) || (ag_wants(n, 1) && !gi[1]);
    ag_end(&s);
    return failed ? ts_last_status() : TS_OK;
}

static ts_tensor *record_matmul(const char *name, const ts_tensor *a, const ts_tensor *b, ts_tensor *out)
{
    const ts_tensor *in[2] = { a, b };
    if (!out || !ts_dtype_is_float(out->dtype) || !ts_ag_needed(2, in)) return out;
    ts_node *n = ts_node_new(name, matmul_backward, 2, in, 1);
    if (n && (ts_node_save(n, 0, a) || ts_node_save(n, 1, b))) { ts_node_release(n); n = NULL; }
    return ag_attach(n, out, 0);
}

ts_tensor *ts_ag_matmul(const ts_tensor *a, const ts_tensor *b) { return record_matmul("matmul", a, b, ts_matmul(a, b)); }
ts_tensor *ts_ag_bmm(const ts_tensor *a, const ts_tensor *b) { return record_matmul("bmm", a, b, ts_bmm(a, b)); }

ts_tensor *ts_ag_linear(const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias)
{
    const ts_tensor *in[3] = { x, w, bias };
    if (!ts_ag_needed(3, in)) return ts_linear(x, w, bias);
    ts_tensor *wt = ts_ag_transpose(w, 0, 1);
    ts_tensor *y = wt ? ts_ag_matmul(x, wt) : NULL;
    ts_tensor *out = y && bias ? ts_ag_binary(TS_ADD, y, bias) : (y ? (ts_tensor_retain(y), y) : NULL);
    ts_tensor_release(wt);
    ts_tensor_release(y);
    return out;
}

/* ---- views ----------------------------------------------------------------------- */

enum { V_RESHAPE, V_PERMUTE, V_SLICE, V_SELECT, V_IDENTITY };

static ts_status view_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    ag_scope s = {0};
    const ts_tensor *g = go[0];
    ts_tensor *r = NULL;
    int nd = n->in_ndim[0];
    switch (n->i[0]) {
    case V_RESHAPE: r = AG_RESHAPE(&s, g, n->in_shape[0], nd); break;
    case V_PERMUTE: {
        int inv[TS_MAX_DIMS];
        for (int d = 0; d < nd; d++) inv[n->i[1 + d]] = d;
        r = ag_keep(&s, ts_permute(g, inv, nd));
        break;
    }
    case V_SLICE: case V_SELECT: {
        ts_tensor *z = AG_ZEROS(&s, n->in_shape[0], nd, g->dtype);
        ts_tensor *part = NULL;
        if (z) part = ag_keep(&s, n->i[0] == V_SLICE ? ts_slice(z, (int)n->i[1], n->i[2], n->i[3], n->i[4])
                                                     : ts_select(z, (int)n->i[1], n->i[2]));
        if (part && ts_copy_(part, g)) s.failed = true;
        r = z;
        break;
    }
    default: r = (ts_tensor *)g; break;
    }
    gi[0] = s.failed ? NULL : ag_finish(n, 0, r);
    ag_end(&s);
    return gi[0] ? TS_OK : ts_last_status();
}

static ts_tensor *record_view(const char *name, const ts_tensor *t, ts_tensor *out, int kind, const int64_t *args, int nargs)
{
    const ts_tensor *in[1] = { t };
    if (!out || !ts_dtype_is_float(t->dtype) || !ts_ag_needed(1, in)) return out;
    ts_node *n = ts_node_new(name, view_backward, 1, in, 1);
    if (n) {
        n->i[0] = kind;
        for (int k = 0; k < nargs; k++) n->i[1 + k] = args[k];
    }
    return ag_attach(n, out, 0);
}

ts_tensor *ts_ag_view(const ts_tensor *t, const int64_t *shape, int ndim)
{
    return record_view("view", t, ts_view(t, shape, ndim), V_RESHAPE, NULL, 0);
}
ts_tensor *ts_ag_reshape(const ts_tensor *t, const int64_t *shape, int ndim)
{
    return record_view("reshape", t, ts_reshape(t, shape, ndim), V_RESHAPE, NULL, 0);
}
ts_tensor *ts_ag_squeeze(const ts_tensor *t, int dim) { return record_view("squeeze", t, ts_squeeze(t, dim), V_RESHAPE, NULL, 0); }
ts_tensor *ts_ag_unsqueeze(const ts_tensor *t, int dim) { return record_view("unsqueeze", t, ts_unsqueeze(t, dim), V_RESHAPE, NULL, 0); }
ts_tensor *ts_ag_flatten(const ts_tensor *t, int s, int e) { return record_view("flatten", t, ts_flatten(t, s, e), V_RESHAPE, NULL, 0); }
ts_tensor *ts_ag_expand(const ts_tensor *t, const int64_t *shape, int ndim)
{
    return record_view("expand", t, ts_expand(t, shape, ndim), V_IDENTITY, NULL, 0);   /* ag_finish sums back */
}
ts_tensor *ts_ag_contiguous(const ts_tensor *t) { return record_view("contiguous", t, ts_contiguous(t), V_IDENTITY, NULL, 0); }
ts_tensor *ts_ag_clone(const ts_tensor *t) { return record_view("clone", t, ts_clone(t), V_IDENTITY, NULL, 0); }
ts_tensor *ts_ag_to_dtype(const ts_tensor *t, ts_dtype dt)
{
    ts_tensor *out = ts_to_dtype(t, dt);
    if (out && !ts_dtype_is_float(dt)) return out;       /* no gradient through integer casts */
    return record_view("to", t, out, V_IDENTITY, NULL, 0);
}

ts_tensor *ts_ag_permute(const ts_tensor *t, const int *dims, int ndim)
{
    ts_tensor *out = ts_permute(t, dims, ndim);
    int64_t args[TS_MAX_DIMS];
    for (int d = 0; d < ndim && out; d++) { int w; ts_wrap_dim("permute", dims[d], t->ndim, &w); args[d] = w; }
    return record_view("permute", t, out, V_PERMUTE, args, ndim);
}

ts_tensor *ts_ag_transpose(const ts_tensor *t, int d0, int d1)
{
    ts_tensor *out = ts_transpose(t, d0, d1);
    if (!out || t->ndim == 0) return record_view("transpose", t, out, V_IDENTITY, NULL, 0);
    int a, b;
    ts_wrap_dim("transpose", d0, t->ndim, &a);
    ts_wrap_dim("transpose", d1, t->ndim, &b);
    int64_t args[TS_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) args[d] = d;
    args[a] = b;
    args[b] = a;
    return record_view("transpose", t, out, V_PERMUTE, args, t->ndim);
}

ts_tensor *ts_ag_slice(const ts_tensor *t, int dim, int64_t start, int64_t end, int64_t step)
{
    ts_tensor *out = ts_slice(t, dim, start, end, step);
    if (!out) return NULL;
    int d;
    ts_wrap_dim("slice", dim, t->ndim, &d);
    int64_t args[4] = { d, start, end, step };
    return record_view("slice", t, out, V_SLICE, args, 4);
}

ts_tensor *ts_ag_narrow(const ts_tensor *t, int dim, int64_t start, int64_t length)
{
    ts_tensor *out = ts_narrow(t, dim, start, length);
    if (!out) return NULL;
    int d;
    ts_wrap_dim("narrow", dim, t->ndim, &d);
    if (start < 0) start += t->shape[d];
    int64_t args[4] = { d, start, start + length, 1 };
    return record_view("narrow", t, out, V_SLICE, args, 4);
}

ts_tensor *ts_ag_select(const ts_tensor *t, int dim, int64_t index)
{
    ts_tensor *out = ts_select(t, dim, index);
    if (!out) return NULL;
    int d;
    ts_wrap_dim("select", dim, t->ndim, &d);
    int64_t args[2] = { d, index };
    return record_view("select", t, out, V_SELECT, args, 2);
}
