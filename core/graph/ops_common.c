/* ops_common.c — the helpers of ops.h shared by the graph op families:
 * node-prefixed errors, reading integer/scalar inputs, axis normalisation,
 * setting values' infos, symbolic broadcasting, ready-made infer fns, and
 * the ONNX dtype numbers. */
#include "graph_internal.h"
#include "ops.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

ts_status ts_node_fail(const ts_gnode *n, ts_status code, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!n) return ts_fail(code, "%s", msg);
    return ts_fail(code, "node '%s' (%s): %s", n->name, n->op_type, msg);
}

ts_status ts_graph_node_error(const ts_gnode *nd, ts_status st)
{
    if (st == TS_OK) st = TS_ERR_INTERNAL;
    const char *m = ts_last_error();
    if (strncmp(m, "node '", 6) == 0) return st;
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", *m ? m : "failed");
    return ts_fail(st, "node '%s' (%s): %s", nd->name, nd->op_type, copy);
}

char *ts_dims_str(const ts_graph *g, const ts_dim *dims, int ndim, char *buf, size_t cap)
{
    if (!cap) return buf;
    if (ndim < 0) {
        snprintf(buf, cap, "[?rank]");
        return buf;
    }
    size_t len = 0;
    buf[0] = '\0';
    len += (size_t)snprintf(buf + len, cap - len, "[");
    for (int i = 0; i < ndim && len < cap; i++) {
        const char *sep = i ? ", " : "";
        if (dims[i].size >= 0)
            len += (size_t)snprintf(buf + len, cap - len, "%s%lld", sep, (long long)dims[i].size);
        else if (dims[i].sym >= 0 && ts_graph_symbol_name(g, dims[i].sym))
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", sep, ts_graph_symbol_name(g, dims[i].sym));
        else
            len += (size_t)snprintf(buf + len, cap - len, "%s?", sep);
    }
    if (len < cap) snprintf(buf + len, cap - len, "]");
    return buf;
}

/* ---- reading inputs ---------------------------------------------------------------- */

ts_status ts_tensor_read_ints(const ts_tensor *t, const char *what, int64_t *out, int64_t cap, int64_t *n_out)
{
    if (!t) return ts_fail(TS_ERR_ARG, "%s: missing", what);
    if (ts_dtype_info(t->dtype)->kind == TS_KIND_FLOAT)
        return ts_fail(TS_ERR_ARG, "%s: expected an integer tensor, got %s", what, ts_dtype_name(t->dtype));
    if (t->ndim > 1) {
        char b[TS_SHAPE_STR_CAP];
        return ts_fail(TS_ERR_ARG, "%s: expected a 1-D tensor, got shape %s", what, ts_shape_str(t->shape, t->ndim, b, sizeof b));
    }
    int64_t n = ts_tensor_numel(t);
    if (n > cap) return ts_fail(TS_ERR_ARG, "%s: %lld values, at most %lld allowed", what, (long long)n, (long long)cap);
    if (t->storage && t->storage->device.type != TS_CPU)
        return ts_fail(TS_ERR_UNSUPPORTED, "%s: must be on the CPU", what);
    const char *base = (const char *)t->storage->data + (size_t)t->offset * ts_dtype_size(t->dtype);
    int64_t stride = t->ndim ? t->stride[0] : 0;
    for (int64_t i = 0; i < n; i++) out[i] = ts_load_i64(base, t->dtype, i * stride);
    *n_out = n;
    return TS_OK;
}

ts_status ts_tensor_read_scalar(const ts_tensor *t, const char *what, double *out)
{
    if (!t) return ts_fail(TS_ERR_ARG, "%s: missing", what);
    if (ts_tensor_numel(t) != 1) {
        char b[TS_SHAPE_STR_CAP];
        return ts_fail(TS_ERR_ARG, "%s: expected one value, got shape %s", what, ts_shape_str(t->shape, t->ndim, b, sizeof b));
    }
    if (t->storage && t->storage->device.type != TS_CPU)
        return ts_fail(TS_ERR_UNSUPPORTED, "%s: must be on the CPU", what);
    const char *base = (const char *)t->storage->data + (size_t)t->offset * ts_dtype_size(t->dtype);
    *out = ts_load_f64(base, t->dtype, 0);
    return TS_OK;
}

bool ts_gval_const_ints(const ts_gvalue *v, int64_t *out, int64_t cap, int64_t *n_out)
{
    if (!v || !v->constant) return false;
    const ts_tensor *t = v->constant;
    if (ts_dtype_info(t->dtype)->kind == TS_KIND_FLOAT || t->ndim > 1 || ts_tensor_numel(t) > cap) return false;
    return ts_tensor_read_ints(t, "constant", out, cap, n_out) == TS_OK;
}

ts_status ts_node_axis(const ts_gnode *n, int64_t axis, int rank, int *out)
{
    if (rank <= 0 || axis < -rank || axis >= rank)
        return ts_node_fail(n, TS_ERR_ARG, "axis %lld out of range for rank %d", (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return TS_OK;
}

ts_status ts_node_axes(const ts_gnode *n, int64_t *axes, int64_t n_axes, int rank)
{
    for (int64_t i = 0; i < n_axes; i++) {
        if (axes[i] < -rank || axes[i] >= rank)
            return ts_node_fail(n, TS_ERR_ARG, "axis %lld out of range for rank %d", (long long)axes[i], rank);
        if (axes[i] < 0) axes[i] += rank;
        for (int64_t j = 0; j < i; j++)
            if (axes[j] == axes[i]) return ts_node_fail(n, TS_ERR_ARG, "axis %lld listed twice", (long long)axes[i]);
    }
    return TS_OK;
}

/* ---- values' infos ---------------------------------------------------------------- */

void ts_gval_set(ts_gvalue *v, ts_dtype dt, int ndim, const ts_dim *dims)
{
    if (ndim > TS_MAX_DIMS) ndim = TS_RANK_UNKNOWN;
    v->dtype = dt;
    v->ndim = ndim < 0 ? TS_RANK_UNKNOWN : ndim;
    for (int i = 0; i < TS_MAX_DIMS; i++) {
        ts_dim d = (i < ndim && dims) ? dims[i] : ts_dim_unknown();
        if (d.size >= 0) d.sym = -1;
        else d.size = -1;
        if (d.sym < 0) d.sym = -1;
        v->dims[i] = d;
    }
}

void ts_gval_set_sizes(ts_gvalue *v, ts_dtype dt, int ndim, const int64_t *sizes)
{
    ts_dim d[TS_MAX_DIMS];
    for (int i = 0; i < ndim && i < TS_MAX_DIMS; i++) d[i] = sizes[i] >= 0 ? ts_dim_of(sizes[i]) : ts_dim_unknown();
    ts_gval_set(v, dt, ndim, d);
}

void ts_gval_copy_info(ts_gvalue *dst, const ts_gvalue *src)
{
    ts_gval_set(dst, src->dtype, src->ndim, src->dims);
}

void ts_gval_set_const(ts_gvalue *v, ts_tensor *t)
{
    ts_tensor_release(v->constant);
    v->constant = t;
    v->is_initializer = false;
    if (t) ts_gval_set_sizes(v, t->dtype, t->ndim, t->shape);
}

bool ts_gval_concrete(const ts_gvalue *v, int64_t *sizes)
{
    if (!v || v->ndim < 0) return false;
    for (int i = 0; i < v->ndim; i++) {
        if (v->dims[i].size < 0) return false;
        if (sizes) sizes[i] = v->dims[i].size;
    }
    return true;
}

int64_t ts_gval_numel(const ts_gvalue *v)
{
    if (!ts_gval_concrete(v, NULL)) return -1;
    int64_t n = 1;
    for (int i = 0; i < v->ndim; i++) {
        if (v->dims[i].size && n > INT64_MAX / v->dims[i].size) return -1;
        n *= v->dims[i].size;
    }
    return n;
}

/* The value id of v when it points into g's value array, else -1. */
static int value_id(const ts_graph *g, const ts_gvalue *v)
{
    if (!v || !g->values || v < g->values || v >= g->values + g->n_values) return -1;
    return (int)(v - g->values);
}

bool ts_gval_shape_value(const ts_graph *g, const ts_gvalue *v, ts_dim *dims, int *n)
{
    if (!v) return false;
    int64_t iv[TS_MAX_DIMS], cnt;
    if (v->constant) {
        if (!ts_gval_const_ints(v, iv, TS_MAX_DIMS, &cnt)) return false;
        for (int i = 0; i < cnt; i++) dims[i] = iv[i] >= 0 ? ts_dim_of(iv[i]) : (ts_dim){iv[i], TS_SV_NEG};
        *n = (int)cnt;
        return true;
    }
    int id = value_id(g, v);
    if (id < 0 || id >= g->shape_vals_cap || !g->shape_val_n || g->shape_val_n[id] < 0) return false;
    *n = g->shape_val_n[id];
    memcpy(dims, g->shape_vals[id], sizeof(ts_dim) * (size_t)*n);
    return true;
}

void ts_gval_set_shape_value(ts_graph *g, const ts_gvalue *v, const ts_dim *dims, int n)
{
    int id = value_id(g, v);
    if (id < 0 || id >= g->shape_vals_cap || n < 0 || n > TS_MAX_DIMS) return;
    g->shape_val_n[id] = (int8_t)n;
    memcpy(g->shape_vals[id], dims, sizeof(ts_dim) * (size_t)n);
}

bool ts_dim_eq(ts_dim a, ts_dim b)
{
    if (a.size >= 0 || b.size >= 0) return a.size == b.size;
    return a.sym >= 0 && a.sym == b.sym;
}

ts_status ts_dims_broadcast(const ts_graph *g, const ts_gnode *n, const ts_dim *a, int na,
                            const ts_dim *b, int nb, ts_dim *out, int *n_out)
{
    int nd = na > nb ? na : nb;
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - na), ib = i - (nd - nb);
        ts_dim da = ia >= 0 ? a[ia] : ts_dim_of(1), db = ib >= 0 ? b[ib] : ts_dim_of(1);
        ts_dim r;
        if (da.size == 1) r = db;
        else if (db.size == 1) r = da;
        else if (da.size >= 0 && db.size >= 0) {
            if (da.size != db.size) {
                char sa[TS_SHAPE_STR_CAP], sb[TS_SHAPE_STR_CAP];
                return ts_node_fail(n, TS_ERR_ARG, "shapes %s and %s do not broadcast (dim %d: %lld vs %lld)",
                                    ts_dims_str(g, a, na, sa, sizeof sa), ts_dims_str(g, b, nb, sb, sizeof sb), i,
                                    (long long)da.size, (long long)db.size);
            }
            r = da;
        } else if (da.size >= 0) r = da;   /* symbol/unknown vs size > 1: the size */
        else if (db.size >= 0) r = db;
        else if (da.sym >= 0 && da.sym == db.sym) r = da;
        else r = ts_dim_unknown();
        out[i] = r;
    }
    *n_out = nd;
    return TS_OK;
}

ts_status ts_infer_broadcast_to(ts_graph *g, const ts_gnode *n, const ts_gvalue *const *in,
                                ts_gvalue *out, ts_dtype dt)
{
    ts_dim acc[TS_MAX_DIMS];
    int nacc = 0;
    bool unknown_rank = false, any = false;
    ts_dtype first = TS_DTYPE_UNKNOWN;
    for (int i = 0; i < n->n_inputs; i++) {
        const ts_gvalue *v = in[i];
        if (!v) continue;
        if (!any) first = v->dtype;
        any = true;
        if (v->ndim < 0) {
            unknown_rank = true;
            continue;
        }
        if (unknown_rank) continue;
        ts_dim tmp[TS_MAX_DIMS];
        int nt;
        ts_status st = ts_dims_broadcast(g, n, acc, nacc, v->dims, v->ndim, tmp, &nt);
        if (st) return st;
        memcpy(acc, tmp, sizeof(ts_dim) * (size_t)nt);
        nacc = nt;
    }
    if (dt == TS_DTYPE_UNKNOWN) dt = first;
    ts_gval_set(out, dt, unknown_rank ? TS_RANK_UNKNOWN : nacc, acc);
    return TS_OK;
}

ts_status ts_infer_same(ts_graph *g, const ts_gnode *n, int64_t opset,
                        const ts_gvalue *const *in, ts_gvalue *const *out)
{
    if (n->n_inputs < 1 || !in[0]) return ts_node_fail(n, TS_ERR_ARG, "missing input 0");
    for (int i = 0; i < n->n_outputs; i++)
        if (out[i]) ts_gval_copy_info(out[i], in[0]);
    return TS_OK;
}

ts_status ts_infer_broadcast(ts_graph *g, const ts_gnode *n, int64_t opset,
                             const ts_gvalue *const *in, ts_gvalue *const *out)
{
    if (n->n_outputs < 1 || !out[0]) return TS_OK;
    return ts_infer_broadcast_to(g, n, in, out[0], TS_DTYPE_UNKNOWN);
}

ts_status ts_infer_compare(ts_graph *g, const ts_gnode *n, int64_t opset,
                           const ts_gvalue *const *in, ts_gvalue *const *out)
{
    if (n->n_outputs < 1 || !out[0]) return TS_OK;
    return ts_infer_broadcast_to(g, n, in, out[0], TS_BOOL);
}

/* ---- kernels ------------------------------------------------------------------------ */

ts_status ts_kernel_need(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, int i)
{
    if (i < n_in && in[i]) return TS_OK;
    return ts_node_fail(ctx->node, TS_ERR_ARG, "input %d is required", i);
}

ts_tensor *ts_kernel_as(const ts_tensor *t, ts_dtype dt)
{
    if (t->dtype == dt) return ts_contiguous(t);
    return ts_to_dtype(t, dt);
}

/* ---- ONNX dtype numbers ------------------------------------------------------------------ */

ts_dtype ts_onnx_dtype(int64_t onnx_type)
{
    switch (onnx_type) {
    case 1: return TS_F32;
    case 2: return TS_U8;
    case 3: return TS_I8;
    case 5: return TS_I16;
    case 6: return TS_I32;
    case 7: return TS_I64;
    case 9: return TS_BOOL;
    case 10: return TS_F16;
    case 11: return TS_F64;
    case 16: return TS_BF16;
    default: return TS_DTYPE_UNKNOWN;
    }
}

int ts_onnx_dtype_number(ts_dtype dt)
{
    switch (dt) {
    case TS_F32: return 1;
    case TS_U8: return 2;
    case TS_I8: return 3;
    case TS_I16: return 5;
    case TS_I32: return 6;
    case TS_I64: return 7;
    case TS_BOOL: return 9;
    case TS_F16: return 10;
    case TS_F64: return 11;
    case TS_BF16: return 16;
    default: return 0;
    }
}
