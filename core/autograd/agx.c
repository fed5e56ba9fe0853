/* agx.c — the scope helpers of agx.h. */
#include "agx.h"

ts_tensor *ag_keep(ag_scope *s, ts_tensor *t)
{
    if (!t || s->n >= AG_SCOPE_MAX) {
        if (t) { ts_tensor_release(t); ts_fail(TS_ERR_INTERNAL, "autograd: scope overflow"); }
        s->failed = true;
        return NULL;
    }
    s->items[s->n++] = t;
    return t;
}

ts_tensor *ag_result(ag_scope *s, ts_tensor *t)
{
    if (s->failed || !t) return NULL;
    ts_tensor_retain(t);
    return t;
}

void ag_end(ag_scope *s)
{
    for (int i = 0; i < s->n; i++) ts_tensor_release(s->items[i]);
    s->n = 0;
}

#define GUARD1(a) if (s->failed || !(a)) { s->failed = true; return NULL; }
#define GUARD2(a, b) if (s->failed || !(a) || !(b)) { s->failed = true; return NULL; }

ts_tensor *AG_B(ag_scope *s, ts_binop op, const ts_tensor *a, const ts_tensor *b) { GUARD2(a, b) return ag_keep(s, ts_binary(op, a, b)); }
ts_tensor *AG_BS(ag_scope *s, ts_binop op, const ts_tensor *a, double v) { GUARD1(a) return ag_keep(s, ts_binary_scalar(op, a, v, false)); }
ts_tensor *AG_SB(ag_scope *s, ts_binop op, double v, const ts_tensor *a) { GUARD1(a) return ag_keep(s, ts_binary_scalar(op, a, v, true)); }
ts_tensor *AG_U(ag_scope *s, ts_unop op, const ts_tensor *a) { GUARD1(a) return ag_keep(s, ts_unary(op, a)); }
ts_tensor *AG_WHERE(ag_scope *s, const ts_tensor *c, const ts_tensor *a, const ts_tensor *b)
{
    GUARD2(c, a) GUARD1(b) return ag_keep(s, ts_where(c, a, b));
}
ts_tensor *AG_ZEROS(ag_scope *s, const int64_t *shape, int ndim, ts_dtype dt)
{
    if (s->failed) return NULL;
    return ag_keep(s, ts_tensor_zeros(shape, ndim, dt));
}
ts_tensor *AG_RESHAPE(ag_scope *s, const ts_tensor *a, const int64_t *shape, int ndim) { GUARD1(a) return ag_keep(s, ts_reshape(a, shape, ndim)); }
ts_tensor *AG_SUM(ag_scope *s, const ts_tensor *a, const int *dims, int ndims, bool keepdim) { GUARD1(a) return ag_keep(s, ts_reduce(TS_SUM, a, dims, ndims, keepdim)); }
ts_tensor *AG_EXPAND(ag_scope *s, const ts_tensor *a, const int64_t *shape, int ndim) { GUARD1(a) return ag_keep(s, ts_expand(a, shape, ndim)); }
ts_tensor *AG_MATMUL(ag_scope *s, const ts_tensor *a, const ts_tensor *b) { GUARD2(a, b) return ag_keep(s, ts_matmul(a, b)); }
ts_tensor *AG_T(ag_scope *s, const ts_tensor *a, int d0, int d1) { GUARD1(a) return ag_keep(s, ts_transpose(a, d0, d1)); }

ts_tensor *ag_finish(const ts_node *n, int i, const ts_tensor *g)
{
    if (!g) return NULL;
    ts_tensor *r = ts_sum_to_shape(g, n->in_shape[i], n->in_ndim[i]);
    if (!r || r->dtype == n->in_dtype[i]) return r;
    ts_tensor *c = ts_to_dtype(r, n->in_dtype[i]);
    ts_tensor_release(r);
    return c;
}

ts_tensor *ag_attach(ts_node *n, ts_tensor *out, int k)
{
    if (!n || ts_node_attach(n, out, k)) {
        ts_node_release(n);
        ts_tensor_release(out);
        return NULL;
    }
    ts_node_release(n);
    return out;
}
