/* ag_reduce.c — recording wrappers and backward formulas of reductions:
 * sum, mean, prod, amax/amin (ties share the gradient, as in PyTorch),
 * logsumexp; var/std/norm are composed from recorded ops. */
#include "agx.h"
#include "torsh/autograd_ops.h"

#include <math.h>
#include <string.h>

/* keepdim-shaped view of the reduced result's gradient, expanded to the input's shape */
static ts_tensor *spread(ag_scope *s, const ts_node *n, const ts_tensor *g)
{
    int nd = n->in_ndim[0];
    int64_t kshape[TS_MAX_DIMS];
    for (int d = 0; d < nd; d++) kshape[d] = (n->i[2] >> d) & 1 ? 1 : n->in_shape[0][d];
    ts_tensor *k = AG_RESHAPE(s, g, kshape, nd);
    return AG_EXPAND(s, k, n->in_shape[0], nd);
}

static int64_t reduced_count(const ts_node *n)
{
    int64_t c = 1;
    for (int d = 0; d < n->in_ndim[0]; d++)
        if ((n->i[2] >> d) & 1) c *= n->in_shape[0][d];
    return c;
}

static ts_status reduce_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    ts_redop op = (ts_redop)n->i[0];
    ag_scope s = {0};
    const ts_tensor *x = n->saved[0], *y = n->saved[1];
    ts_tensor *ge = spread(&s, n, go[0]), *r = NULL;
    switch (op) {
    case TS_SUM: r = ge; break;
    case TS_MEAN: r = AG_BS(&s, TS_DIV, ge, (double)reduced_count(n)); break;
    case TS_PROD: r = AG_B(&s, TS_DIV, AG_B(&s, TS_MUL, ge, spread(&s, n, y)), x); break;
    case TS_AMAX: case TS_AMIN: {
        ts_tensor *mask = AG_B(&s, TS_EQ, x, spread(&s, n, y));
        ts_tensor *maskf = AG_BS(&s, TS_MUL, mask, 1.0);
        int dims[TS_MAX_DIMS], nd = 0;
        for (int d = 0; d < n->in_ndim[0]; d++) if ((n->i[2] >> d) & 1) dims[nd++] = d;
        ts_tensor *count = AG_SUM(&s, maskf, dims, nd, true);
        r = AG_B(&s, TS_DIV, AG_B(&s, TS_MUL, ge, maskf), count);
        break;
    }
    case TS_LOGSUMEXP: r = AG_B(&s, TS_MUL, ge, AG_U(&s, TS_EXP, AG_B(&s, TS_SUB, x, spread(&s, n, y)))); break;
    default: ag_end(&s); return ts_fail(TS_ERR_INTERNAL, "reduction %d has no gradient", (int)op);
    }
    gi[0] = s.failed ? NULL : ag_finish(n, 0, r);
    ag_end(&s);
    return gi[0] ? TS_OK : ts_last_status();
}

static const char *const redop_names[] = { "sum", "mean", "prod", "amax", "amin", "logsumexp", "any", "all" };

ts_tensor *ts_ag_reduce(ts_redop op, const ts_tensor *a, const int *dims, int ndims, bool keepdim)
{
    ts_tensor *out = ts_reduce(op, a, dims, ndims, keepdim);
    const ts_tensor *in[1] = { a };
    if (!out || op == TS_ANY || op == TS_ALL || !ts_dtype_is_float(out->dtype) || !ts_ag_needed(1, in)) return out;
    bool mask[TS_MAX_DIMS];
    if (ts_dims_mask(redop_names[op], dims, ndims, a->ndim, mask)) { ts_tensor_release(out); return NULL; }
    ts_node *n = ts_node_new(redop_names[op], reduce_backward, 1, in, 1);
    if (n) {
        n->i[0] = op;
        n->i[1] = keepdim;
        n->i[2] = 0;
        for (int d = 0; d < a->ndim; d++) if (mask[d]) n->i[2] |= (int64_t)1 << d;
        if ((op != TS_SUM && op != TS_MEAN) && (ts_node_save(n, 0, a) || ts_node_save(n, 1, out))) {
            ts_node_release(n);
            n = NULL;
        }
    }
    return ag_attach(n, out, 0);
}

/* var = sum((x - mean)^2) / (N - correction), composed from recorded ops */
ts_tensor *ts_ag_var(const ts_tensor *a, const int *dims, int ndims, double correction, bool keepdim)
{
    const ts_tensor *in[1] = { a };
    if (!ts_ag_needed(1, in)) return ts_var(a, dims, ndims, correction, keepdim);
    bool mask[TS_MAX_DIMS];
    if (ts_dims_mask("var", dims, ndims, a->ndim, mask)) return NULL;
    int64_t count = 1;
    for (int d = 0; d < a->ndim; d++) if (mask[d]) count *= a->shape[d];
    ts_tensor *mean = ts_ag_reduce(TS_MEAN, a, dims, ndims, true);
    ts_tensor *diff = mean ? ts_ag_binary(TS_SUB, a, mean) : NULL;
    ts_tensor *sq = diff ? ts_ag_unary(TS_SQUARE, diff) : NULL;
    ts_tensor *sum = sq ? ts_ag_reduce(TS_SUM, sq, dims, ndims, keepdim) : NULL;
    double denom = (double)count - correction;
    ts_tensor *out = sum ? ts_ag_binary_scalar(TS_DIV, sum, denom > 0 ? denom : 0.0, false) : NULL;
    ts_tensor_release(mean);
    ts_tensor_release(diff);
    ts_tensor_release(sq);
    ts_tensor_release(sum);
    return out;
}

ts_tensor *ts_ag_std(const ts_tensor *a, const int *dims, int ndims, double correction, bool keepdim)
{
    const ts_tensor *in[1] = { a };
    if (!ts_ag_needed(1, in)) return ts_std(a, dims, ndims, correction, keepdim);
    ts_tensor *v = ts_ag_var(a, dims, ndims, correction, keepdim);
    ts_tensor *out = v ? ts_ag_unary(TS_SQRT, v) : NULL;
    ts_tensor_release(v);
    return out;
}

ts_tensor *ts_ag_norm(const ts_tensor *a, double p, const int *dims, int ndims, bool keepdim)
{
    const ts_tensor *in[1] = { a };
    if (!ts_ag_needed(1, in)) return ts_norm(a, p, dims, ndims, keepdim);
    ts_tensor *ab = ts_ag_unary(TS_ABS, a), *out = NULL;
    if (!ab) return NULL;
    if (isinf(p)) {
        out = ts_ag_reduce(p > 0 ? TS_AMAX : TS_AMIN, ab, dims, ndims, keepdim);
    } else if (p == 2) {
        ts_tensor *sq = ts_ag_unary(TS_SQUARE, a);
        ts_tensor *sum = sq ? ts_ag_reduce(TS_SUM, sq, dims, ndims, keepdim) : NULL;
        out = sum ? ts_ag_unary(TS_SQRT, sum) : NULL;
        ts_tensor_release(sq);
        ts_tensor_release(sum);
    } else if (p == 1) {
        out = ts_ag_reduce(TS_SUM, ab, dims, ndims, keepdim);
    } else if (p == 0) {
        out = ts_norm(a, p, dims, ndims, keepdim);   /* a count: no gradient */
    } else {
        ts_tensor *pw = ts_ag_binary_scalar(TS_POW, ab, p, false);
        ts_tensor *sum = pw ? ts_ag_reduce(TS_SUM, pw, dims, ndims, keepdim) : NULL;
        out = sum ? ts_ag_binary_scalar(TS_POW, sum, 1.0 / p, false) : NULL;
        ts_tensor_release(pw);
        ts_tensor_release(sum);
    }
    ts_tensor_release(ab);
    return out;
}
