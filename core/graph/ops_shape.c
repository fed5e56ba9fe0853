/* ops_shape.c — kernels and infer fns of the data-movement and shape ops,
 * with ONNX semantics for opsets 1..18+: Reshape, Transpose, Concat, Split,
 * Slice, Gather, Unsqueeze, Squeeze, Flatten, Shape, Size, Constant,
 * ConstantOfShape, Expand, Cast, CastLike, Identity, Dropout, Where, Equal,
 * Less, LessOrEqual, Greater, GreaterOrEqual, Not, Range, ReduceMean,
 * ReduceSum, ReduceMax, ReduceMin, ReduceProd, Tile, Pad.
 *
 * Where an argument moved from an attribute to an input between opsets
 * (Reshape's shape, Split's split, Slice's starts/ends, Squeeze/Unsqueeze's
 * axes, Reduce*'s axes, Pad's pads), the kernel takes the input when the
 * node has it and the attribute otherwise, so both forms run whatever
 * opset the graph declares. All are registered foldable: on small constant
 * inputs ts_graph_infer evaluates them, which resolves shape arithmetic.
 * Kernels return views where the core op does (Reshape, Transpose, Slice,
 * Split, Squeeze, Expand, Identity).
 */
#include "graph_internal.h"
#include "ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIST 64     /* longest integer list read from an input (axes, starts, pads...) */

typedef ts_tensor *const *tin_t;
typedef const ts_gvalue *const *gin_t;
typedef ts_gvalue *const *gout_t;

/* ---- shared pieces ------------------------------------------------------------------ */

/* Reads an integer list from input idx when present, else from the INTS
 * attribute `attr`. *present = false when neither exists. */
static ts_status k_ints(const ts_kernel_ctx *ctx, tin_t in, int n_in, int idx, const char *attr, int64_t *out,
                        int64_t *n, bool *present)
{
    const ts_gnode *nd = ctx->node;
    *present = false;
    *n = 0;
    if (idx >= 0 && idx < n_in && in[idx]) {
        char what[96];
        snprintf(what, sizeof what, "input %d", idx);
        if (ts_tensor_read_ints(in[idx], what, out, MAX_LIST, n)) return ts_graph_node_error(nd, ts_last_status());
        *present = true;
        return TS_OK;
    }
    if (attr) {
        int64_t cnt;
        const int64_t *v = ts_gnode_ints(nd, attr, &cnt);
        if (v) {
            if (cnt > MAX_LIST) return ts_node_fail(nd, TS_ERR_ARG, "attribute %s has %lld values", attr, (long long)cnt);
            memcpy(out, v, (size_t)cnt * sizeof *out);
            *n = cnt;
            *present = true;
        }
    }
    return TS_OK;
}

/* The same for infer fns: 1 = known, 0 = absent, -1 = an input that is not a
 * constant (its length in *n when the input's shape says, else -1). */
static int i_ints(const ts_gnode *nd, gin_t in, int idx, const char *attr, int64_t *out, int64_t *n)
{
    *n = 0;
    if (idx >= 0 && idx < nd->n_inputs && in[idx]) {
        if (ts_gval_const_ints(in[idx], out, MAX_LIST, n)) return 1;
        const ts_gvalue *v = in[idx];
        *n = (v->ndim == 1 && v->dims[0].size >= 0) ? v->dims[0].size : v->ndim == 0 ? 1 : -1;
        return -1;
    }
    if (attr) {
        int64_t cnt;
        const int64_t *v = ts_gnode_ints(nd, attr, &cnt);
        if (v && cnt <= MAX_LIST) {
            memcpy(out, v, (size_t)cnt * sizeof *out);
            *n = cnt;
            return 1;
        }
    }
    return 0;
}

static ts_status need_in(const ts_gnode *nd, gin_t in, int i)
{
    if (i < nd->n_inputs && in[i]) return TS_OK;
    return ts_node_fail(nd, TS_ERR_ARG, "input %d is required", i);
}

static ts_status k_need(const ts_kernel_ctx *ctx, tin_t in, int n_in, int i)
{
    return ts_kernel_need(ctx, in, n_in, i);
}

/* out[0] = r (a new reference) or the current error naming the node. */
static ts_status k_set(const ts_kernel_ctx *ctx, ts_tensor **out, ts_tensor *r)
{
    if (!r) return ts_graph_node_error(ctx->node, ts_last_status());
    out[0] = r;
    return TS_OK;
}

/* Product of dims [from, to): concrete, a lone symbol (times 1s), or unknown. */
static ts_dim dims_product(const ts_dim *d, int from, int to)
{
    int64_t p = 1;
    int n_sym = 0;
    ts_dim sym = ts_dim_unknown();
    for (int i = from; i < to; i++) {
        if (d[i].size >= 0) {
            p *= d[i].size;
        } else if (d[i].sym >= 0) {
            n_sym++;
            sym = d[i];
        } else {
            return ts_dim_unknown();
        }
    }
    if (n_sym == 0) return ts_dim_of(p);
    if (n_sym == 1 && p == 1) return sym;
    if (p == 0) return ts_dim_of(0);
    return ts_dim_unknown();
}

static char *dstr(const ts_graph *g, const ts_gvalue *v, char *buf)
{
    return ts_dims_str(g, v->dims, v->ndim, buf, TS_SHAPE_STR_CAP);
}

/* ---- Identity, Dropout ------------------------------------------------------------------ */

static ts_status k_identity(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    if (k_need(ctx, in, n_in, 0)) return ts_last_status();
    ts_tensor_retain(in[0]);
    out[0] = in[0];
    return TS_OK;
}

/* Inference-mode dropout: the input unchanged; the optional mask all true. */
static ts_status k_dropout(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    if (k_need(ctx, in, n_in, 0)) return ts_last_status();
    if (n_out > 1 && ctx->node->outputs[1] >= 0) {
        out[1] = ts_tensor_full(in[0]->shape, in[0]->ndim, TS_BOOL, 1);
        if (!out[1]) return ts_graph_node_error(ctx->node, ts_last_status());
    }
    ts_tensor_retain(in[0]);
    out[0] = in[0];
    return TS_OK;
}

static ts_status i_dropout(ts_graph *g, const ts_gnode *n, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(n, in, 0)) return ts_last_status();
    if (out[0]) ts_gval_copy_info(out[0], in[0]);
    if (n->n_outputs > 1 && out[1]) ts_gval_set(out[1], TS_BOOL, in[0]->ndim, in[0]->dims);
    return TS_OK;
}

/* ---- Reshape --------------------------------------------------------------------------- */

/* The target shape with 0 copied from the input (unless allowzero) and -1 resolved. */
static ts_status reshape_target(const ts_gnode *nd, const int64_t *in_shape, int in_nd, const int64_t *spec,
                                int64_t n, bool allowzero, int64_t *shape)
{
    if (n > TS_MAX_DIMS) return ts_node_fail(nd, TS_ERR_ARG, "shape has %lld dims (at most %d)", (long long)n, TS_MAX_DIMS);
    int neg = -1;
    int64_t known = 1, numel = 1;
    for (int i = 0; i < in_nd; i++) numel *= in_shape[i];
    for (int i = 0; i < n; i++) {
        int64_t s = spec[i];
        if (s == 0 && !allowzero) {
            if (i >= in_nd)
                return ts_node_fail(nd, TS_ERR_ARG, "shape entry %d is 0 (copy) but the input has only %d dims", i, in_nd);
            s = in_shape[i];
        }
        if (s == -1) {
            if (neg >= 0) return ts_node_fail(nd, TS_ERR_ARG, "shape has more than one -1");
            neg = i;
            shape[i] = -1;
            continue;
        }
        if (s < 0) return ts_node_fail(nd, TS_ERR_ARG, "invalid shape entry %lld", (long long)s);
        shape[i] = s;
        known *= s;
    }
    if (neg >= 0) {
        if (known == 0 || numel % known) {
            char a[TS_SHAPE_STR_CAP], b[TS_SHAPE_STR_CAP];
            return ts_node_fail(nd, TS_ERR_ARG, "cannot reshape %s to %s", ts_shape_str(in_shape, in_nd, a, sizeof a),
                                ts_shape_str(spec, (int)n, b, sizeof b));
        }
        shape[neg] = numel / known;
    } else if (known != numel) {
        char a[TS_SHAPE_STR_CAP], b[TS_SHAPE_STR_CAP];
        return ts_node_fail(nd, TS_ERR_ARG, "cannot reshape %s (%lld elements) to %s",
                            ts_shape_str(in_shape, in_nd, a, sizeof a), (long long)numel,
                            ts_shape_str(spec, (int)n, b, sizeof b));
    }
    return TS_OK;
}

static ts_status k_reshape(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    int64_t spec[MAX_LIST], n, shape[TS_MAX_DIMS];
    bool have;
    if (k_need(ctx, in, n_in, 0) || k_ints(ctx, in, n_in, 1, "shape", spec, &n, &have)) return ts_last_status();
    if (!have) return ts_node_fail(ctx->node, TS_ERR_ARG, "missing the shape input");
    bool allowzero = ts_gnode_int(ctx->node, "allowzero", 0) != 0;
    if (reshape_target(ctx->node, in[0]->shape, in[0]->ndim, spec, n, allowzero, shape)) return ts_last_status();
    return k_set(ctx, out, ts_reshape(in[0], shape, (int)n));
}

static ts_status i_reshape(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0)) return ts_last_status();
    const ts_gvalue *x = in[0];
    int64_t spec[MAX_LIST], n;
    ts_dim sv[TS_MAX_DIMS];
    int nsv = 0;
    int k = i_ints(nd, in, 1, "shape", spec, &n);
    if (k == 0) return ts_node_fail(nd, TS_ERR_ARG, "missing the shape input");
    bool allowzero = ts_gnode_int(nd, "allowzero", 0) != 0;
    if (k == 1) {
        if (n > TS_MAX_DIMS)
            return ts_node_fail(nd, TS_ERR_ARG, "shape has %lld dims (at most %d)", (long long)n, TS_MAX_DIMS);
        int64_t sizes[TS_MAX_DIMS];
        if (ts_gval_concrete(x, sizes)) {
            int64_t shape[TS_MAX_DIMS];
            if (reshape_target(nd, sizes, x->ndim, spec, n, allowzero, shape)) return ts_last_status();
            ts_gval_set_sizes(out[0], x->dtype, (int)n, shape);
            return TS_OK;
        }
        for (int i = 0; i < n; i++) sv[i] = spec[i] >= 0 ? ts_dim_of(spec[i]) : (ts_dim){spec[i], TS_SV_NEG};
        nsv = (int)n;
    } else if (!ts_gval_shape_value(g, in[1], sv, &nsv)) {
        ts_gval_set(out[0], x->dtype, n >= 0 && n <= TS_MAX_DIMS ? (int)n : TS_RANK_UNKNOWN, NULL);
        return TS_OK;
    }
    /* symbolic: copy 0s, cancel the input's symbols against the output's for -1 */
    ts_dim dims[TS_MAX_DIMS];
    int neg = -1;
    for (int i = 0; i < nsv; i++) {
        ts_dim e = sv[i];
        if (e.size == 0 && !allowzero) {
            if (x->ndim >= 0 && i >= x->ndim)
                return ts_node_fail(nd, TS_ERR_ARG, "shape entry %d is 0 (copy) but the input has only %d dims", i, x->ndim);
            dims[i] = x->ndim >= 0 ? x->dims[i] : ts_dim_unknown();
        } else if (e.sym == TS_SV_NEG) {
            if (e.size != -1) return ts_node_fail(nd, TS_ERR_ARG, "invalid shape entry %lld", (long long)e.size);
            if (neg >= 0) return ts_node_fail(nd, TS_ERR_ARG, "shape has more than one -1");
            neg = i;
            dims[i] = ts_dim_unknown();
        } else {
            dims[i] = e;    /* a size, a symbol or unknown */
        }
    }
    if (neg >= 0 && x->ndim >= 0) {
        int32_t syms[TS_MAX_DIMS];
        int ns = 0;
        int64_t pin = 1, pout = 1;
        bool ok = true;
        for (int i = 0; i < x->ndim && ok; i++) {
            if (x->dims[i].size >= 0) pin *= x->dims[i].size;
            else if (x->dims[i].sym >= 0) syms[ns++] = x->dims[i].sym;
            else ok = false;
        }
        for (int i = 0; i < nsv && ok; i++) {
            if (i == neg) continue;
            if (dims[i].size >= 0) {
                pout *= dims[i].size;
                continue;
            }
            int j = 0;
            while (j < ns && syms[j] != dims[i].sym) j++;
            if (dims[i].sym < 0 || j == ns) { ok = false; break; }
            syms[j] = syms[--ns];
        }
        if (ok && ns == 0 && pout > 0 && pin % pout == 0) dims[neg] = ts_dim_of(pin / pout);
        else if (ok && ns == 1 && pin == pout) dims[neg] = (ts_dim){-1, syms[0]};
    }
    ts_gval_set(out[0], x->dtype, nsv, dims);
    return TS_OK;
}

/* ---- Transpose ----------------------------------------------------------------------- */

static ts_status get_perm(const ts_gnode *nd, int rank, int *perm)
{
    int64_t n;
    const int64_t *p = ts_gnode_ints(nd, "perm", &n);
    if (!p) {
        for (int i = 0; i < rank; i++) perm[i] = rank - 1 - i;
        return TS_OK;
    }
    if (n != rank) return ts_node_fail(nd, TS_ERR_ARG, "perm has %lld entries for a rank-%d input", (long long)n, rank);
    bool seen[TS_MAX_DIMS] = {0};
    for (int i = 0; i < rank; i++) {
        int a;
        if (ts_node_axis(nd, p[i], rank, &a)) return ts_last_status();
        if (seen[a]) return ts_node_fail(nd, TS_ERR_ARG, "perm repeats axis %d", a);
        seen[a] = true;
        perm[i] = a;
    }
    return TS_OK;
}

static ts_status k_transpose(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    int perm[TS_MAX_DIMS];
    if (k_need(ctx, in, n_in, 0) || get_perm(ctx->node, in[0]->ndim, perm)) return ts_last_status();
    return k_set(ctx, out, ts_permute(in[0], perm, in[0]->ndim));
}

static ts_status i_transpose(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0)) return ts_last_status();
    const ts_gvalue *x = in[0];
    if (x->ndim < 0) {
        int64_t n;
        const int64_t *p = ts_gnode_ints(nd, "perm", &n);
        ts_gval_set(out[0], x->dtype, p && n <= TS_MAX_DIMS ? (int)n : TS_RANK_UNKNOWN, NULL);
        return TS_OK;
    }
    int perm[TS_MAX_DIMS];
    if (get_perm(nd, x->ndim, perm)) return ts_last_status();
    ts_dim d[TS_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) d[i] = x->dims[perm[i]];
    ts_gval_set(out[0], x->dtype, x->ndim, d);
    return TS_OK;
}

/* ---- Concat ---------------------------------------------------------------------------- */

static ts_status k_concat(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    const ts_gnode *nd = ctx->node;
    ts_tensor *parts[256];
    int np = 0;
    if (n_in > 256) return ts_node_fail(nd, TS_ERR_UNSUPPORTED, "%d inputs (at most 256)", n_in);
    for (int i = 0; i < n_in; i++)
        if (in[i]) parts[np++] = in[i];
    if (!np) return ts_node_fail(nd, TS_ERR_ARG, "no inputs");
    int axis = 0;
    if (ts_node_axis(nd, ts_gnode_int(nd, "axis", 0), parts[0]->ndim, &axis)) return ts_last_status();
    for (int i = 1; i < np; i++)
        if (parts[i]->ndim != parts[0]->ndim)
            return ts_node_fail(nd, TS_ERR_ARG, "input %d has rank %d, input 0 has rank %d", i, parts[i]->ndim,
                                parts[0]->ndim);
    if (np == 1) {
        ts_tensor_retain(parts[0]);
        out[0] = parts[0];
        return TS_OK;
    }
    return k_set(ctx, out, ts_cat(parts, np, axis));
}

static ts_status i_concat(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    const ts_gvalue *first = NULL;
    int rank = TS_RANK_UNKNOWN;
    for (int i = 0; i < nd->n_inputs; i++) {
        if (!in[i]) continue;
        if (!first) first = in[i];
        if (in[i]->ndim >= 0) {
            if (rank >= 0 && in[i]->ndim != rank)
                return ts_node_fail(nd, TS_ERR_ARG, "input %d has rank %d, an earlier input rank %d", i, in[i]->ndim, rank);
            rank = in[i]->ndim;
        }
    }
    if (!first) return ts_node_fail(nd, TS_ERR_ARG, "no inputs");
    if (!ts_gnode_attr(nd, "axis")) return ts_node_fail(nd, TS_ERR_ARG, "missing the axis attribute");
    if (rank < 0) {
        ts_gval_set(out[0], first->dtype, TS_RANK_UNKNOWN, NULL);
        return TS_OK;
    }
    int axis = 0;
    if (ts_node_axis(nd, ts_gnode_int(nd, "axis", 0), rank, &axis)) return ts_last_status();
    ts_dim d[TS_MAX_DIMS];
    for (int k = 0; k < rank; k++) d[k] = ts_dim_unknown();
    int64_t total = 0;
    bool total_known = true;
    ts_dim only = ts_dim_unknown();
    int n_nonzero = 0;
    for (int i = 0; i < nd->n_inputs; i++) {
        const ts_gvalue *v = in[i];
        if (!v) continue;
        if (v->ndim < 0) {
            total_known = false;
            n_nonzero += 2;
            continue;
        }
        for (int k = 0; k < rank; k++) {
            if (k == axis) continue;
            ts_dim a = d[k], b = v->dims[k];
            if (a.size >= 0 && b.size >= 0 && a.size != b.size) {
                char s1[TS_SHAPE_STR_CAP], s2[TS_SHAPE_STR_CAP];
                return ts_node_fail(nd, TS_ERR_ARG, "input %d has shape %s, input 0 %s (dim %d differs)", i,
                                    dstr(g, v, s1), dstr(g, first, s2), k);
            }
            if (a.size < 0 && (b.size >= 0 || (a.sym < 0 && b.sym >= 0))) d[k] = b;
        }
        ts_dim ax = v->dims[axis];
        if (ax.size == 0) continue;
        n_nonzero++;
        only = ax;
        if (ax.size >= 0) total += ax.size;
        else total_known = false;
    }
    if (total_known) d[axis] = ts_dim_of(total);
    else if (n_nonzero == 1) d[axis] = only;
    ts_gval_set(out[0], first->dtype, rank, d);
    if (rank == 1) {    /* joining shape values */
        ts_dim sv[TS_MAX_DIMS], part[TS_MAX_DIMS];
        int nsv = 0, np;
        bool all = true;
        for (int i = 0; i < nd->n_inputs && all; i++) {
            if (!in[i]) continue;
            all = ts_gval_shape_value(g, in[i], part, &np) && nsv + np <= TS_MAX_DIMS;
            if (all) memcpy(sv + nsv, part, sizeof(ts_dim) * (size_t)np);
            nsv += np;
        }
        if (all) ts_gval_set_shape_value(g, out[0], sv, nsv);
    }
    return TS_OK;
}

/* ---- Split ------------------------------------------------------------------------------ */

/* Sizes of each output along the axis of size `dim`. */
static ts_status split_sizes(const ts_gnode *nd, int64_t opset, const int64_t *split, bool have_split, int64_t n_split,
                             int64_t dim, int n_out, int64_t *sizes)
{
    if (have_split) {
        if (n_split != n_out)
            return ts_node_fail(nd, TS_ERR_ARG, "split has %lld sizes for %d outputs", (long long)n_split, n_out);
        int64_t s = 0;
        for (int i = 0; i < n_out; i++) {
            if (split[i] < 0) return ts_node_fail(nd, TS_ERR_ARG, "split size %lld is negative", (long long)split[i]);
            sizes[i] = split[i];
            s += split[i];
        }
        if (s != dim)
            return ts_node_fail(nd, TS_ERR_ARG, "split sizes add up to %lld, the axis has %lld", (long long)s,
                                (long long)dim);
        return TS_OK;
    }
    if (n_out <= 0) return ts_node_fail(nd, TS_ERR_ARG, "no outputs");
    const ts_attr *no = ts_gnode_attr(nd, "num_outputs");
    if (no && no->i != n_out)
        return ts_node_fail(nd, TS_ERR_ARG, "num_outputs is %lld but the node has %d outputs", (long long)no->i, n_out);
    if (dim % n_out == 0) {
        for (int i = 0; i < n_out; i++) sizes[i] = dim / n_out;
        return TS_OK;
    }
    if (!no)
        return ts_node_fail(nd, TS_ERR_ARG, "axis of size %lld does not split evenly into %d outputs", (long long)dim,
                            n_out);
    /* opset 18 num_outputs: ceil(dim / n) each, the last smaller */
    int64_t chunk = (dim + n_out - 1) / n_out, left = dim;
    for (int i = 0; i < n_out; i++) {
        sizes[i] = left < chunk ? left : chunk;
        left -= sizes[i];
    }
    return TS_OK;
}

static ts_status k_split(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    const ts_gnode *nd = ctx->node;
    int64_t split[MAX_LIST], n_split, sizes[MAX_LIST];
    bool have;
    if (k_need(ctx, in, n_in, 0) || k_ints(ctx, in, n_in, 1, "split", split, &n_split, &have)) return ts_last_status();
    if (n_out > MAX_LIST) return ts_node_fail(nd, TS_ERR_UNSUPPORTED, "%d outputs (at most %d)", n_out, MAX_LIST);
    int axis = 0;
    if (ts_node_axis(nd, ts_gnode_int(nd, "axis", 0), in[0]->ndim, &axis)) return ts_last_status();
    if (split_sizes(nd, ctx->opset, split, have, n_split, in[0]->shape[axis], n_out, sizes)) return ts_last_status();
    int64_t pos = 0;
    for (int i = 0; i < n_out; i++) {
        out[i] = ts_slice(in[0], axis, pos, pos + sizes[i], 1);
        if (!out[i]) {
            for (int j = 0; j < i; j++) { ts_tensor_release(out[j]); out[j] = NULL; }
            return ts_graph_node_error(nd, ts_last_status());
        }
        pos += sizes[i];
    }
    return TS_OK;
}

static ts_status i_split(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0)) return ts_last_status();
    const ts_gvalue *x = in[0];
    int n_out = nd->n_outputs;
    if (n_out > MAX_LIST) return ts_node_fail(nd, TS_ERR_UNSUPPORTED, "%d outputs (at most %d)", n_out, MAX_LIST);
    if (x->ndim < 0) {
        for (int i = 0; i < n_out; i++)
            if (out[i]) ts_gval_set(out[i], x->dtype, TS_RANK_UNKNOWN, NULL);
        return TS_OK;
    }
    int axis = 0;
    if (ts_node_axis(nd, ts_gnode_int(nd, "axis", 0), x->ndim, &axis)) return ts_last_status();
    int64_t split[MAX_LIST], n_split, sizes[MAX_LIST];
    int k = i_ints(nd, in, 1, "split", split, &n_split);
    ts_dim ad = x->dims[axis];
    bool known = false;
    if (k == 1) {
        if (n_split != n_out)
            return ts_node_fail(nd, TS_ERR_ARG, "split has %lld sizes for %d outputs", (long long)n_split, n_out);
        if (ad.size >= 0 && split_sizes(nd, opset, split, true, n_split, ad.size, n_out, sizes)) return ts_last_status();
        memcpy(sizes, split, (size_t)n_out * sizeof *sizes);
        known = true;
    } else if (k == 0 && ad.size >= 0) {
        if (split_sizes(nd, opset, split, false, 0, ad.size, n_out, sizes)) return ts_last_status();
        known = true;
    }
    for (int i = 0; i < n_out; i++) {
        if (!out[i]) continue;
        ts_dim d[TS_MAX_DIMS];
        memcpy(d, x->dims, sizeof d);
        d[axis] = known ? ts_dim_of(sizes[i]) : ts_dim_unknown();
        ts_gval_set(out[i], x->dtype, x->ndim, d);
    }
    return TS_OK;
}

/* ---- Slice ---------------------------------------------------------------------------- */

typedef struct slice_spec {
    int64_t start[TS_MAX_DIMS], step[TS_MAX_DIMS], len[TS_MAX_DIMS];
    bool sliced[TS_MAX_DIMS];
} slice_spec;

/* ONNX's clamping: start/end counted from the end when negative, then
 * clamped to [0, dim] (step > 0) or [0, dim-1] / [-1, dim-1] (step < 0). */
static void slice_one(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *s_out, int64_t *len_out)
{
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    int64_t len;
    if (step > 0) {
        start = start < 0 ? 0 : start > dim ? dim : start;
        end = end < 0 ? 0 : end > dim ? dim : end;
        len = end > start ? (end - start + step - 1) / step : 0;
    } else {
        start = start < 0 ? 0 : start > dim - 1 ? dim - 1 : start;
        end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
        len = start > end ? (start - end + (-step) - 1) / (-step) : 0;
    }
    *s_out = start;
    *len_out = len;
}

/* Reads starts/ends/axes/steps (inputs 1..4 since opset 10, attributes
 * before); the per-axis lists go into the arrays. rank: the data's. */
static ts_status slice_args(const ts_gnode *nd, int rank, const int64_t *starts, const int64_t *ends, int64_t n,
                            const int64_t *axes_in, bool have_axes, int64_t n_axes, const int64_t *steps_in,
                            bool have_steps, int64_t n_steps, int64_t *axis_of, int64_t *step_of)
{
    if (have_axes && n_axes != n)
        return ts_node_fail(nd, TS_ERR_ARG, "%lld axes for %lld starts", (long long)n_axes, (long long)n);
    if (have_steps && n_steps != n)
        return ts_node_fail(nd, TS_ERR_ARG, "%lld steps for %lld starts", (long long)n_steps, (long long)n);
    if (n > rank) return ts_node_fail(nd, TS_ERR_ARG, "%lld starts for a rank-%d input", (long long)n, rank);
    for (int64_t i = 0; i < n; i++) {
        axis_of[i] = have_axes ? axes_in[i] : i;
        step_of[i] = have_steps ? steps_in[i] : 1;
        if (step_of[i] == 0) return ts_node_fail(nd, TS_ERR_ARG, "step %lld is 0", (long long)i);
    }
    (void)starts;
    (void)ends;
    return ts_node_axes(nd, axis_of, n, rank);
}

static ts_status k_slice(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    const ts_gnode *nd = ctx->node;
    int64_t starts[MAX_LIST], ends[MAX_LIST], axes[MAX_LIST], steps[MAX_LIST], n_s, n_e, n_a, n_st;
    bool hs, he, ha, hst;
    if (k_need(ctx, in, n_in, 0) || k_ints(ctx, in, n_in, 1, "starts", starts, &n_s, &hs) ||
        k_ints(ctx, in, n_in, 2, "ends", ends, &n_e, &he) || k_ints(ctx, in, n_in, 3, "axes", axes, &n_a, &ha) ||
        k_ints(ctx, in, n_in, 4, NULL, steps, &n_st, &hst))
        return ts_last_status();
    if (!hs || !he) return ts_node_fail(nd, TS_ERR_ARG, "missing starts or ends");
    if (n_s != n_e) return ts_node_fail(nd, TS_ERR_ARG, "%lld starts but %lld ends", (long long)n_s, (long long)n_e);
    const ts_tensor *x = in[0];
    int64_t axis_of[MAX_LIST], step_of[MAX_LIST];
    if (slice_args(nd, x->ndim, starts, ends, n_s, axes, ha, n_a, steps, hst, n_st, axis_of, step_of))
        return ts_last_status();
    ts_tensor *cur = (ts_tensor *)x;
    ts_tensor_retain(cur);
    int flip[TS_MAX_DIMS], nflip = 0;
    for (int64_t i = 0; i < n_s; i++) {
        int a = (int)axis_of[i];
        int64_t s, len, st = step_of[i];
        slice_one(cur->shape[a], starts[i], ends[i], st, &s, &len);
        ts_tensor *next;
        if (st > 0) {
            next = ts_slice(cur, a, s, len ? s + (len - 1) * st + 1 : s, st);
        } else {
            /* elements s, s+st, ... (len of them): slice forward then flip */
            int64_t lo = len ? s + (len - 1) * st : 0;
            next = ts_slice(cur, a, lo, len ? s + 1 : 0, -st);
            flip[nflip++] = a;
        }
        ts_tensor_release(cur);
        if (!next) return ts_graph_node_error(nd, ts_last_status());
        cur = next;
    }
    if (nflip) {
        ts_tensor *f = ts_flip(cur, flip, nflip);
        ts_tensor_release(cur);
        if (!f) return ts_graph_node_error(nd, ts_last_status());
        cur = f;
    }
    out[0] = cur;
    return TS_OK;
}

static ts_status i_slice(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0)) return ts_last_status();
    const ts_gvalue *x = in[0];
    if (x->ndim < 0) {
        ts_gval_set(out[0], x->dtype, TS_RANK_UNKNOWN, NULL);
        return TS_OK;
    }
    int64_t starts[MAX_LIST], ends[MAX_LIST], axes[MAX_LIST], steps[MAX_LIST], n_s, n_e, n_a, n_st;
    int ks = i_ints(nd, in, 1, "starts", starts, &n_s), ke = i_ints(nd, in, 2, "ends", ends, &n_e);
    int ka = i_ints(nd, in, 3, "axes", axes, &n_a), kst = i_ints(nd, in, 4, NULL, steps, &n_st);
    ts_dim d[TS_MAX_DIMS];
    memcpy(d, x->dims, sizeof d);
    if (ks == 0 || ke == 0) return ts_node_fail(nd, TS_ERR_ARG, "missing starts or ends");
    if (ks < 0 || ke < 0 || ka < 0 || kst < 0) {
        /* dims that cannot be sliced keep their size only when the axes are known */
        if (ka == 1 && ts_node_axes(nd, axes, n_a, x->ndim) == TS_OK)
            for (int64_t i = 0; i < n_a; i++) d[axes[i]] = ts_dim_unknown();
        else
            for (int i = 0; i < x->ndim; i++) d[i] = ts_dim_unknown();
        ts_gval_set(out[0], x->dtype, x->ndim, d);
        return TS_OK;
    }
    if (n_s != n_e) return ts_node_fail(nd, TS_ERR_ARG, "%lld starts but %lld ends", (long long)n_s, (long long)n_e);
    int64_t axis_of[MAX_LIST], step_of[MAX_LIST];
    if (slice_args(nd, x->ndim, starts, ends, n_s, axes, ka == 1, n_a, steps, kst == 1, n_st, axis_of, step_of))
        return ts_last_status();
    for (int64_t i = 0; i < n_s; i++) {
        int a = (int)axis_of[i];
        if (x->dims[a].size >= 0) {
            int64_t s, len;
            slice_one(x->dims[a].size, starts[i], ends[i], step_of[i], &s, &len);
            d[a] = ts_dim_of(len);
        } else if (!(starts[i] == 0 && step_of[i] == 1 && ends[i] >= INT32_MAX)) {
            d[a] = ts_dim_unknown();
        }
    }
    ts_gval_set(out[0], x->dtype, x->ndim, d);
    ts_dim sv[TS_MAX_DIMS], r[TS_MAX_DIMS];
    int nsv;
    if (x->ndim == 1 && n_s == 1 && ts_gval_shape_value(g, x, sv, &nsv)) {
        int64_t s0, len;
        slice_one(nsv, starts[0], ends[0], step_of[0], &s0, &len);
        for (int64_t i = 0; i < len; i++) r[i] = sv[s0 + i * step_of[0]];
        ts_gval_set_shape_value(g, out[0], r, (int)len);
    }
    return TS_OK;
}

/* ---- Gather ------------------------------------------------------------------------------ */

static ts_status k_gather(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    const ts_gnode *nd = ctx->node;
    if (k_need(ctx, in, n_in, 0) || k_need(ctx, in, n_in, 1)) return ts_last_status();
    const ts_tensor *x = in[0], *idx = in[1];
    int axis = 0;
    if (ts_node_axis(nd, ts_gnode_int(nd, "axis", 0), x->ndim, &axis)) return ts_last_status();
    if (ts_dtype_info(idx->dtype)->kind != TS_KIND_INT)
        return ts_node_fail(nd, TS_ERR_ARG, "indices must be integers, got %s", ts_dtype_name(idx->dtype));
    if (x->ndim - 1 + idx->ndim > TS_MAX_DIMS)
        return ts_node_fail(nd, TS_ERR_ARG, "result would have %d dims (at most %d)", x->ndim - 1 + idx->ndim, TS_MAX_DIMS);
    int64_t dim = x->shape[axis], n = ts_tensor_numel(idx);
    ts_tensor *iv = ts_kernel_as(idx, TS_I64);
    ts_tensor *flat = iv ? ts_tensor_new(&n, 1, TS_I64) : NULL;
    if (!flat) {
        ts_tensor_release(iv);
        return ts_graph_node_error(nd, ts_last_status());
    }
    int64_t *f = ts_tensor_data(flat);
    const int64_t *src = ts_tensor_data(iv);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = src[i];
        if (v < -dim || v >= dim) {
            ts_tensor_release(iv);
            ts_tensor_release(flat);
            return ts_node_fail(nd, TS_ERR_ARG, "index %lld out of range for axis %d of size %lld", (long long)v, axis,
                                (long long)dim);
        }
        f[i] = v < 0 ? v + dim : v;
    }
    ts_tensor_release(iv);
    ts_tensor *sel = ts_index_select(x, axis, flat);
    ts_tensor_release(flat);
    if (!sel) return ts_graph_node_error(nd, ts_last_status());
    int64_t shape[TS_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < axis; i++) shape[k++] = x->shape[i];
    for (int i = 0; i < idx->ndim; i++) shape[k++] = idx->shape[i];
    for (int i = axis + 1; i < x->ndim; i++) shape[k++] = x->shape[i];
    ts_tensor *r = ts_reshape(sel, shape, k);
    ts_tensor_release(sel);
    return k_set(ctx, out, r);
}

static ts_status i_gather(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0) || need_in(nd, in, 1)) return ts_last_status();
    const ts_gvalue *x = in[0], *idx = in[1];
    if (x->ndim < 0 || idx->ndim < 0) {
        ts_gval_set(out[0], x->dtype, TS_RANK_UNKNOWN, NULL);
        return TS_OK;
    }
    int axis = 0;
    if (ts_node_axis(nd, ts_gnode_int(nd, "axis", 0), x->ndim, &axis)) return ts_last_status();
    if (x->ndim - 1 + idx->ndim > TS_MAX_DIMS)
        return ts_node_fail(nd, TS_ERR_ARG, "result would have %d dims (at most %d)", x->ndim - 1 + idx->ndim, TS_MAX_DIMS);
    ts_dim d[TS_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < axis; i++) d[k++] = x->dims[i];
    for (int i = 0; i < idx->ndim; i++) d[k++] = idx->dims[i];
    for (int i = axis + 1; i < x->ndim; i++) d[k++] = x->dims[i];
    ts_gval_set(out[0], x->dtype, k, d);
    /* picking from a shape value with constant indices */
    ts_dim sv[TS_MAX_DIMS], r[TS_MAX_DIMS];
    int nsv;
    int64_t iv[TS_MAX_DIMS], ni;
    if (x->ndim == 1 && idx->ndim <= 1 && ts_gval_shape_value(g, x, sv, &nsv) &&
        ts_gval_const_ints(idx, iv, TS_MAX_DIMS, &ni)) {
        for (int64_t i = 0; i < ni; i++) {
            int64_t j = iv[i] < 0 ? iv[i] + nsv : iv[i];
            if (j < 0 || j >= nsv) return ts_node_fail(nd, TS_ERR_ARG, "index %lld out of range for axis 0 of size %d",
                                                     (long long)iv[i], nsv);
            r[i] = sv[j];
        }
        ts_gval_set_shape_value(g, out[0], r, (int)ni);
    }
    return TS_OK;
}

/* ---- Unsqueeze, Squeeze, Flatten ----------------------------------------------------------- */

static ts_status k_unsqueeze(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    const ts_gnode *nd = ctx->node;
    int64_t axes[MAX_LIST], n;
    bool have;
    if (k_need(ctx, in, n_in, 0) || k_ints(ctx, in, n_in, 1, "axes", axes, &n, &have)) return ts_last_status();
    if (!have) return ts_node_fail(nd, TS_ERR_ARG, "missing axes");
    const ts_tensor *x = in[0];
    int r = x->ndim + (int)n;
    if (r > TS_MAX_DIMS) return ts_node_fail(nd, TS_ERR_ARG, "result would have %d dims (at most %d)", r, TS_MAX_DIMS);
    if (ts_node_axes(nd, axes, n, r)) return ts_last_status();
    bool is_new[TS_MAX_DIMS] = {0};
    for (int64_t i = 0; i < n; i++) is_new[axes[i]] = true;
    int64_t shape[TS_MAX_DIMS];
    for (int i = 0, k = 0; i < r; i++) shape[i] = is_new[i] ? 1 : x->shape[k++];
    return k_set(ctx, out, ts_reshape(x, shape, r));
}

static ts_status i_unsqueeze(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0)) return ts_last_status();
    const ts_gvalue *x = in[0];
    int64_t axes[MAX_LIST], n;
    int k = i_ints(nd, in, 1, "axes", axes, &n);
    if (k == 0) return ts_node_fail(nd, TS_ERR_ARG, "missing axes");
    if (x->ndim < 0 || k < 0) {
        int r = (x->ndim >= 0 && n >= 0 && x->ndim + n <= TS_MAX_DIMS) ? x->ndim + (int)n : TS_RANK_UNKNOWN;
        ts_gval_set(out[0], x->dtype, r, NULL);
        return TS_OK;
    }
    int r = x->ndim + (int)n;
    if (r > TS_MAX_DIMS) return ts_node_fail(nd, TS_ERR_ARG, "result would have %d dims (at most %d)", r, TS_MAX_DIMS);
    if (ts_node_axes(nd, axes, n, r)) return ts_last_status();
    bool is_new[TS_MAX_DIMS] = {0};
    for (int64_t i = 0; i < n; i++) is_new[axes[i]] = true;
    ts_dim d[TS_MAX_DIMS];
    for (int i = 0, j = 0; i < r; i++) d[i] = is_new[i] ? ts_dim_of(1) : x->dims[j++];
    ts_gval_set(out[0], x->dtype, r, d);
    ts_dim sv[TS_MAX_DIMS];
    int nsv;
    if (x->ndim == 0 && r == 1 && ts_gval_shape_value(g, x, sv, &nsv)) ts_gval_set_shape_value(g, out[0], sv, nsv);
    return TS_OK;
}

static ts_status k_squeeze(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    const ts_gnode *nd = ctx->node;
    int64_t axes[MAX_LIST], n;
    bool have;
    if (k_need(ctx, in, n_in, 0) || k_ints(ctx, in, n_in, 1, "axes", axes, &n, &have)) return ts_last_status();
    const ts_tensor *x = in[0];
    bool drop[TS_MAX_DIMS] = {0};
    if (have) {
        if (ts_node_axes(nd, axes, n, x->ndim)) return ts_last_status();
        for (int64_t i = 0; i < n; i++) {
            if (x->shape[axes[i]] != 1)
                return ts_node_fail(nd, TS_ERR_ARG, "cannot squeeze axis %lld of size %lld", (long long)axes[i],
                                    (long long)x->shape[axes[i]]);
            drop[axes[i]] = true;
        }
    } else {
        for (int i = 0; i < x->ndim; i++) drop[i] = x->shape[i] == 1;
    }
    int64_t shape[TS_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < x->ndim; i++)
        if (!drop[i]) shape[k++] = x->shape[i];
    return k_set(ctx, out, ts_reshape(x, shape, k));
}

static ts_status i_squeeze(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0)) return ts_last_status();
    const ts_gvalue *x = in[0];
    int64_t axes[MAX_LIST], n;
    int k = i_ints(nd, in, 1, "axes", axes, &n);
    if (x->ndim < 0 || k < 0) {
        int r = (x->ndim >= 0 && k < 0 && n >= 0) ? x->ndim - (int)n : TS_RANK_UNKNOWN;
        ts_gval_set(out[0], x->dtype, r >= 0 ? r : TS_RANK_UNKNOWN, NULL);
        return TS_OK;
    }
    bool drop[TS_MAX_DIMS] = {0};
    if (k == 1) {
        if (ts_node_axes(nd, axes, n, x->ndim)) return ts_last_status();
        for (int64_t i = 0; i < n; i++) {
            ts_dim dd = x->dims[axes[i]];
            if (dd.size >= 0 && dd.size != 1)
                return ts_node_fail(nd, TS_ERR_ARG, "cannot squeeze axis %lld of size %lld", (long long)axes[i],
                                    (long long)dd.size);
            drop[axes[i]] = true;
        }
    } else {
        for (int i = 0; i < x->ndim; i++) {
            if (x->dims[i].size < 0 && x->dims[i].sym < 0) {    /* might be 1 */
                ts_gval_set(out[0], x->dtype, TS_RANK_UNKNOWN, NULL);
                return TS_OK;
            }
            drop[i] = x->dims[i].size == 1;     /* a symbol is taken to be > 1 */
        }
    }
    ts_dim d[TS_MAX_DIMS];
    int r = 0;
    for (int i = 0; i < x->ndim; i++)
        if (!drop[i]) d[r++] = x->dims[i];
    ts_gval_set(out[0], x->dtype, r, d);
    ts_dim sv[TS_MAX_DIMS];
    int nsv;
    if (x->ndim == 1 && r == 0 && ts_gval_shape_value(g, x, sv, &nsv)) ts_gval_set_shape_value(g, out[0], sv, nsv);
    return TS_OK;
}

static ts_status flatten_axis(const ts_gnode *nd, int rank, int *axis)
{
    int64_t a = ts_gnode_int(nd, "axis", 1);
    if (a < -rank || a > rank)
        return ts_node_fail(nd, TS_ERR_ARG, "axis %lld out of range for rank %d", (long long)a, rank);
    *axis = (int)(a < 0 ? a + rank : a);
    return TS_OK;
}

static ts_status k_flatten(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    int axis = 0;
    if (k_need(ctx, in, n_in, 0) || flatten_axis(ctx->node, in[0]->ndim, &axis)) return ts_last_status();
    int64_t shape[2] = {1, 1};
    for (int i = 0; i < in[0]->ndim; i++) shape[i < axis ? 0 : 1] *= in[0]->shape[i];
    return k_set(ctx, out, ts_reshape(in[0], shape, 2));
}

static ts_status i_flatten(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0)) return ts_last_status();
    const ts_gvalue *x = in[0];
    if (x->ndim < 0) {
        ts_gval_set(out[0], x->dtype, 2, NULL);
        return TS_OK;
    }
    int axis = 0;
    if (flatten_axis(nd, x->ndim, &axis)) return ts_last_status();
    ts_dim d[2] = {dims_product(x->dims, 0, axis), dims_product(x->dims, axis, x->ndim)};
    ts_gval_set(out[0], x->dtype, 2, d);
    return TS_OK;
}

/* ---- Shape, Size ------------------------------------------------------------------------------ */

static void shape_range(const ts_gnode *nd, int rank, int *lo, int *hi)
{
    int64_t s = ts_gnode_int(nd, "start", 0), e = ts_gnode_int(nd, "end", rank);
    if (s < 0) s += rank;
    if (e < 0) e += rank;
    s = s < 0 ? 0 : s > rank ? rank : s;
    e = e < 0 ? 0 : e > rank ? rank : e;
    *lo = (int)s;
    *hi = (int)(e > s ? e : s);
}

static ts_status k_shape(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    if (k_need(ctx, in, n_in, 0)) return ts_last_status();
    int lo, hi;
    shape_range(ctx->node, in[0]->ndim, &lo, &hi);
    int64_t n = hi - lo;
    return k_set(ctx, out, ts_tensor_from_data(in[0]->shape + lo, TS_I64, &n, 1, TS_I64));
}

static ts_status i_shape(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0)) return ts_last_status();
    const ts_gvalue *x = in[0];
    if (x->ndim < 0) {
        ts_gval_set(out[0], TS_I64, 1, NULL);
        return TS_OK;
    }
    int lo, hi;
    shape_range(nd, x->ndim, &lo, &hi);
    int64_t n = hi - lo, sizes[TS_MAX_DIMS];
    bool concrete = true;
    for (int i = lo; i < hi; i++) {
        if (x->dims[i].size < 0) concrete = false;
        sizes[i - lo] = x->dims[i].size;
    }
    if (concrete) {
        ts_tensor *t = ts_tensor_from_data(sizes, TS_I64, &n, 1, TS_I64);
        if (!t) return ts_graph_node_error(nd, ts_last_status());
        ts_gval_set_const(out[0], t);
        return TS_OK;
    }
    ts_gval_set_sizes(out[0], TS_I64, 1, &n);
    ts_gval_set_shape_value(g, out[0], x->dims + lo, (int)n);
    return TS_OK;
}

static ts_status k_size(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    if (k_need(ctx, in, n_in, 0)) return ts_last_status();
    return k_set(ctx, out, ts_tensor_scalar((double)ts_tensor_numel(in[0]), TS_I64));
}

static ts_status i_size(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0)) return ts_last_status();
    int64_t n = ts_gval_numel(in[0]);
    if (n >= 0) {
        ts_tensor *t = ts_tensor_from_data(&n, TS_I64, NULL, 0, TS_I64);
        if (!t) return ts_graph_node_error(nd, ts_last_status());
        ts_gval_set_const(out[0], t);
        return TS_OK;
    }
    ts_gval_set(out[0], TS_I64, 0, NULL);
    return TS_OK;
}

/* ---- Constant, ConstantOfShape ------------------------------------------------------------ */

static ts_tensor *constant_value(const ts_gnode *nd)
{
    const ts_attr *a;
    if ((a = ts_gnode_attr(nd, "value")) && a->type == TS_ATTR_TENSOR && a->t) {
        ts_tensor_retain(a->t);
        return a->t;
    }
    if ((a = ts_gnode_attr(nd, "value_float")) && a->type == TS_ATTR_FLOAT)
        return ts_tensor_scalar(a->f, TS_F32);
    if ((a = ts_gnode_attr(nd, "value_int")) && a->type == TS_ATTR_INT)
        return ts_tensor_from_data(&a->i, TS_I64, NULL, 0, TS_I64);
    if ((a = ts_gnode_attr(nd, "value_floats")) && a->type == TS_ATTR_FLOATS) {
        int64_t n = a->n;
        return ts_tensor_from_data(a->floats, TS_F64, &n, 1, TS_F32);
    }
    if ((a = ts_gnode_attr(nd, "value_ints")) && a->type == TS_ATTR_INTS) {
        int64_t n = a->n;
        return ts_tensor_from_data(a->ints, TS_I64, &n, 1, TS_I64);
    }
    if (ts_gnode_attr(nd, "sparse_value") || ts_gnode_attr(nd, "value_string") || ts_gnode_attr(nd, "value_strings"))
        return ts_fail_null(TS_ERR_UNSUPPORTED, "node '%s' (Constant): sparse and string constants are not supported",
                            nd->name);
    return ts_fail_null(TS_ERR_ARG, "node '%s' (Constant): no value attribute", nd->name);
}

static ts_status k_constant(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    return k_set(ctx, out, constant_value(ctx->node));
}

static ts_status i_constant(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    ts_tensor *t = constant_value(nd);
    if (!t) return ts_last_status();
    ts_gval_set_const(out[0], t);
    return TS_OK;
}

static ts_status cos_value(const ts_gnode *nd, ts_tensor **v)
{
    const ts_attr *a = ts_gnode_attr(nd, "value");
    if (!a) {
        *v = ts_tensor_scalar(0, TS_F32);
        return *v ? TS_OK : ts_graph_node_error(nd, ts_last_status());
    }
    if (a->type != TS_ATTR_TENSOR || !a->t || ts_tensor_numel(a->t) != 1)
        return ts_node_fail(nd, TS_ERR_ARG, "value must be a one-element tensor");
    *v = ts_reshape(a->t, NULL, 0);
    return *v ? TS_OK : ts_graph_node_error(nd, ts_last_status());
}

static ts_status k_constant_of_shape(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    const ts_gnode *nd = ctx->node;
    int64_t shape[MAX_LIST], n;
    bool have;
    if (k_need(ctx, in, n_in, 0) || k_ints(ctx, in, n_in, 0, NULL, shape, &n, &have)) return ts_last_status();
    if (n > TS_MAX_DIMS) return ts_node_fail(nd, TS_ERR_ARG, "shape has %lld dims (at most %d)", (long long)n, TS_MAX_DIMS);
    for (int i = 0; i < n; i++)
        if (shape[i] < 0) return ts_node_fail(nd, TS_ERR_ARG, "negative size %lld", (long long)shape[i]);
    ts_tensor *v;
    if (cos_value(nd, &v)) return ts_last_status();
    ts_tensor *r = ts_tensor_new(shape, (int)n, v->dtype);
    if (r && ts_copy_(r, v)) {
        ts_tensor_release(r);
        r = NULL;
    }
    ts_tensor_release(v);
    return k_set(ctx, out, r);
}

static ts_status i_constant_of_shape(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0)) return ts_last_status();
    ts_tensor *v;
    if (cos_value(nd, &v)) return ts_last_status();
    ts_dtype dt = v->dtype;
    ts_tensor_release(v);
    int64_t shape[MAX_LIST], n;
    int k = i_ints(nd, in, 0, NULL, shape, &n);
    if (k == 1) {
        if (n > TS_MAX_DIMS) return ts_node_fail(nd, TS_ERR_ARG, "shape has %lld dims (at most %d)", (long long)n, TS_MAX_DIMS);
        ts_gval_set_sizes(out[0], dt, (int)n, shape);
    } else {
        ts_dim sv[TS_MAX_DIMS];
        int nsv;
        if (ts_gval_shape_value(g, in[0], sv, &nsv)) {
            for (int i = 0; i < nsv; i++)
                if (sv[i].sym == TS_SV_NEG) sv[i] = ts_dim_unknown();
            ts_gval_set(out[0], dt, nsv, sv);
        } else {
            ts_gval_set(out[0], dt, n >= 0 && n <= TS_MAX_DIMS ? (int)n : TS_RANK_UNKNOWN, NULL);
        }
    }
    return TS_OK;
}

/* ---- Expand, Tile ------------------------------------------------------------------------------ */

static ts_status k_expand(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    const ts_gnode *nd = ctx->node;
    int64_t shape[MAX_LIST], n, res[TS_MAX_DIMS];
    bool have;
    int nres;
    if (k_need(ctx, in, n_in, 0) || k_need(ctx, in, n_in, 1) || k_ints(ctx, in, n_in, 1, NULL, shape, &n, &have))
        return ts_last_status();
    if (n > TS_MAX_DIMS) return ts_node_fail(nd, TS_ERR_ARG, "shape has %lld dims (at most %d)", (long long)n, TS_MAX_DIMS);
    if (ts_broadcast_shapes("Expand", in[0]->shape, in[0]->ndim, shape, (int)n, res, &nres))
        return ts_graph_node_error(nd, ts_last_status());
    return k_set(ctx, out, ts_expand(in[0], res, nres));
}

static ts_status i_expand(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0) || need_in(nd, in, 1)) return ts_last_status();
    const ts_gvalue *x = in[0];
    int64_t shape[MAX_LIST], n;
    int k = i_ints(nd, in, 1, NULL, shape, &n);
    ts_dim sv[TS_MAX_DIMS];
    int nsv;
    if (k < 0 && x->ndim >= 0 && ts_gval_shape_value(g, in[1], sv, &nsv)) {
        ts_dim d[TS_MAX_DIMS];
        int r;
        for (int i = 0; i < nsv; i++)
            if (sv[i].sym == TS_SV_NEG) sv[i] = ts_dim_unknown();
        if (ts_dims_broadcast(g, nd, x->dims, x->ndim, sv, nsv, d, &r)) return ts_last_status();
        ts_gval_set(out[0], x->dtype, r, d);
        return TS_OK;
    }
    if (k != 1 || x->ndim < 0) {
        int r = (x->ndim >= 0 && n >= 0 && n <= TS_MAX_DIMS) ? (x->ndim > n ? x->ndim : (int)n) : TS_RANK_UNKNOWN;
        ts_gval_set(out[0], x->dtype, r, NULL);
        return TS_OK;
    }
    if (n > TS_MAX_DIMS) return ts_node_fail(nd, TS_ERR_ARG, "shape has %lld dims (at most %d)", (long long)n, TS_MAX_DIMS);
    ts_dim sd[TS_MAX_DIMS], d[TS_MAX_DIMS];
    for (int i = 0; i < n; i++) sd[i] = ts_dim_of(shape[i]);
    int r;
    if (ts_dims_broadcast(g, nd, x->dims, x->ndim, sd, (int)n, d, &r)) return ts_last_status();
    ts_gval_set(out[0], x->dtype, r, d);
    return TS_OK;
}

static ts_status k_tile(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    const ts_gnode *nd = ctx->node;
    int64_t reps[MAX_LIST], n;
    bool have;
    if (k_need(ctx, in, n_in, 0) || k_need(ctx, in, n_in, 1) || k_ints(ctx, in, n_in, 1, NULL, reps, &n, &have))
        return ts_last_status();
    if (n != in[0]->ndim)
        return ts_node_fail(nd, TS_ERR_ARG, "%lld repeats for a rank-%d input", (long long)n, in[0]->ndim);
    if (n == 0) {
        ts_tensor_retain(in[0]);
        out[0] = in[0];
        return TS_OK;
    }
    return k_set(ctx, out, ts_repeat(in[0], reps, (int)n));
}

static ts_status i_tile(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0) || need_in(nd, in, 1)) return ts_last_status();
    const ts_gvalue *x = in[0];
    int64_t reps[MAX_LIST], n;
    int k = i_ints(nd, in, 1, NULL, reps, &n);
    if (k != 1 || x->ndim < 0) {
        ts_gval_set(out[0], x->dtype, x->ndim, NULL);
        return TS_OK;
    }
    if (n != x->ndim) return ts_node_fail(nd, TS_ERR_ARG, "%lld repeats for a rank-%d input", (long long)n, x->ndim);
    ts_dim d[TS_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        if (reps[i] < 0) return ts_node_fail(nd, TS_ERR_ARG, "negative repeat %lld", (long long)reps[i]);
        d[i] = reps[i] == 1 ? x->dims[i] : x->dims[i].size >= 0 ? ts_dim_of(x->dims[i].size * reps[i])
             : reps[i] == 0 ? ts_dim_of(0) : ts_dim_unknown();
    }
    ts_gval_set(out[0], x->dtype, x->ndim, d);
    return TS_OK;
}

/* ---- Cast, CastLike ------------------------------------------------------------------------------ */

static ts_status cast_to(const ts_gnode *nd, ts_dtype *dt)
{
    const ts_attr *a = ts_gnode_attr(nd, "to");
    if (!a || a->type != TS_ATTR_INT) return ts_node_fail(nd, TS_ERR_ARG, "missing the 'to' attribute");
    *dt = ts_onnx_dtype(a->i);
    if (*dt == TS_DTYPE_UNKNOWN)
        return ts_node_fail(nd, TS_ERR_UNSUPPORTED, "cannot cast to ONNX data type %lld", (long long)a->i);
    return TS_OK;
}

static ts_status k_cast(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    ts_dtype dt;
    if (k_need(ctx, in, n_in, 0) || cast_to(ctx->node, &dt)) return ts_last_status();
    if (in[0]->dtype == dt) {
        ts_tensor_retain(in[0]);
        out[0] = in[0];
        return TS_OK;
    }
    return k_set(ctx, out, ts_to_dtype(in[0], dt));
}

static ts_status i_cast(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    ts_dtype dt;
    if (need_in(nd, in, 0) || cast_to(nd, &dt)) return ts_last_status();
    ts_gval_set(out[0], dt, in[0]->ndim, in[0]->dims);
    ts_dim sv[TS_MAX_DIMS];
    int nsv;
    if (ts_dtype_info(dt)->kind == TS_KIND_INT && !in[0]->constant && ts_gval_shape_value(g, in[0], sv, &nsv))
        ts_gval_set_shape_value(g, out[0], sv, nsv);
    return TS_OK;
}

static ts_status i_identity(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0)) return ts_last_status();
    ts_gval_copy_info(out[0], in[0]);
    ts_dim sv[TS_MAX_DIMS];
    int nsv;
    if (!in[0]->constant && ts_gval_shape_value(g, in[0], sv, &nsv)) ts_gval_set_shape_value(g, out[0], sv, nsv);
    return TS_OK;
}

static ts_status k_cast_like(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    if (k_need(ctx, in, n_in, 0) || k_need(ctx, in, n_in, 1)) return ts_last_status();
    if (in[0]->dtype == in[1]->dtype) {
        ts_tensor_retain(in[0]);
        out[0] = in[0];
        return TS_OK;
    }
    return k_set(ctx, out, ts_to_dtype(in[0], in[1]->dtype));
}

static ts_status i_cast_like(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0) || need_in(nd, in, 1)) return ts_last_status();
    ts_gval_set(out[0], in[1]->dtype, in[0]->ndim, in[0]->dims);
    return TS_OK;
}

/* ---- Where, comparisons, Not ------------------------------------------------------------------- */

static ts_status k_where(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    if (k_need(ctx, in, n_in, 0) || k_need(ctx, in, n_in, 1) || k_need(ctx, in, n_in, 2)) return ts_last_status();
    return k_set(ctx, out, ts_where(in[0], in[1], in[2]));
}

static ts_status i_where(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0) || need_in(nd, in, 1) || need_in(nd, in, 2)) return ts_last_status();
    ts_dtype dt = in[1]->dtype != TS_DTYPE_UNKNOWN ? in[1]->dtype : in[2]->dtype;
    return ts_infer_broadcast_to(g, nd, in, out[0], dt);
}

static ts_status k_compare(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, ts_binop op)
{
    if (k_need(ctx, in, n_in, 0) || k_need(ctx, in, n_in, 1)) return ts_last_status();
    return k_set(ctx, out, ts_binary(op, in[0], in[1]));
}

static ts_status k_equal(const ts_kernel_ctx *c, tin_t in, int n_in, ts_tensor **out, int n_out) { return k_compare(c, in, n_in, out, TS_EQ); }
static ts_status k_less(const ts_kernel_ctx *c, tin_t in, int n_in, ts_tensor **out, int n_out) { return k_compare(c, in, n_in, out, TS_LT); }
static ts_status k_less_eq(const ts_kernel_ctx *c, tin_t in, int n_in, ts_tensor **out, int n_out) { return k_compare(c, in, n_in, out, TS_LE); }
static ts_status k_greater(const ts_kernel_ctx *c, tin_t in, int n_in, ts_tensor **out, int n_out) { return k_compare(c, in, n_in, out, TS_GT); }
static ts_status k_greater_eq(const ts_kernel_ctx *c, tin_t in, int n_in, ts_tensor **out, int n_out) { return k_compare(c, in, n_in, out, TS_GE); }

static ts_status k_not(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    if (k_need(ctx, in, n_in, 0)) return ts_last_status();
    return k_set(ctx, out, ts_unary(TS_LOGICAL_NOT, in[0]));
}

static ts_status i_not(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0)) return ts_last_status();
    ts_gval_set(out[0], TS_BOOL, in[0]->ndim, in[0]->dims);
    return TS_OK;
}

/* ---- Range ----------------------------------------------------------------------------------------- */

static int64_t range_len(double start, double limit, double delta)
{
    double n = ceil((limit - start) / delta);
    return n > 0 ? (int64_t)n : 0;
}

static ts_status k_range(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    const ts_gnode *nd = ctx->node;
    double v[3];
    for (int i = 0; i < 3; i++) {
        if (k_need(ctx, in, n_in, i)) return ts_last_status();
        if (ts_tensor_read_scalar(in[i], i == 0 ? "Range: start" : i == 1 ? "Range: limit" : "Range: delta", &v[i]))
            return ts_graph_node_error(nd, ts_last_status());
    }
    if (v[2] == 0) return ts_node_fail(nd, TS_ERR_ARG, "delta is 0");
    ts_dtype dt = in[0]->dtype;
    int64_t n = range_len(v[0], v[1], v[2]);
    ts_tensor *r = ts_tensor_new(&n, 1, dt);
    if (!r) return ts_graph_node_error(nd, ts_last_status());
    void *d = ts_tensor_data(r);
    if (ts_dtype_is_float(dt)) {
        for (int64_t i = 0; i < n; i++) ts_store_f64(d, dt, i, v[0] + (double)i * v[2]);
    } else {
        for (int64_t i = 0; i < n; i++) ts_store_i64(d, dt, i, (int64_t)v[0] + i * (int64_t)v[2]);
    }
    out[0] = r;
    return TS_OK;
}

static ts_status i_range(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    for (int i = 0; i < 3; i++)
        if (need_in(nd, in, i)) return ts_last_status();
    double v[3];
    bool known = true;
    for (int i = 0; i < 3; i++)
        if (!in[i]->constant || ts_tensor_numel(in[i]->constant) != 1 ||
            ts_tensor_read_scalar(in[i]->constant, "Range", &v[i]))
            known = false;
    ts_dim d = ts_dim_unknown();
    if (known) {
        if (v[2] == 0) return ts_node_fail(nd, TS_ERR_ARG, "delta is 0");
        d = ts_dim_of(range_len(v[0], v[1], v[2]));
    }
    ts_gval_set(out[0], in[0]->dtype, 1, &d);
    return TS_OK;
}

/* ---- Reduce* --------------------------------------------------------------------------------------- */

/* Axes of a reduction: input 1 when present, else the attribute. *all: reduce
 * every axis; *noop: return the input unchanged. */
static ts_status reduce_axes(const ts_kernel_ctx *ctx, tin_t in, int n_in, int rank, int *dims, int *nd_out,
                             bool *noop)
{
    const ts_gnode *nd = ctx->node;
    int64_t axes[MAX_LIST], n;
    bool have;
    if (k_ints(ctx, in, n_in, 1, "axes", axes, &n, &have)) return ts_last_status();
    *noop = false;
    *nd_out = 0;
    if (!have || n == 0) {
        if (ts_gnode_int(nd, "noop_with_empty_axes", 0)) *noop = true;
        return TS_OK;
    }
    if (ts_node_axes(nd, axes, n, rank)) return ts_last_status();
    for (int64_t i = 0; i < n; i++) dims[i] = (int)axes[i];
    *nd_out = (int)n;
    return TS_OK;
}

static ts_status k_reduce(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, ts_redop op)
{
    const ts_gnode *nd = ctx->node;
    if (k_need(ctx, in, n_in, 0)) return ts_last_status();
    const ts_tensor *x = in[0];
    int dims[TS_MAX_DIMS], ndims;
    bool noop;
    if (reduce_axes(ctx, in, n_in, x->ndim, dims, &ndims, &noop)) return ts_last_status();
    if (noop) {
        ts_tensor_retain(in[0]);
        out[0] = in[0];
        return TS_OK;
    }
    if (ndims == 0) {       /* all axes, listed so ts_reduce keeps dims when asked */
        for (int i = 0; i < x->ndim; i++) dims[i] = i;
        ndims = x->ndim;
    }
    bool keep = ts_gnode_int(nd, "keepdims", 1) != 0;
    ts_tensor *src = NULL, *r;
    if (op == TS_MEAN && !ts_dtype_is_float(x->dtype)) {
        src = ts_to_dtype(x, TS_F64);
        if (!src) return ts_graph_node_error(nd, ts_last_status());
    }
    if (ndims == 0) {
        r = ts_clone(src ? src : x);     /* a 0-dim input: the reduction is the value itself */
    } else {
        r = ts_reduce(op, src ? src : x, dims, ndims, keep);
    }
    ts_tensor_release(src);
    if (r && r->dtype != x->dtype) {
        ts_tensor *c = ts_to_dtype(r, x->dtype);
        ts_tensor_release(r);
        r = c;
    }
    return k_set(ctx, out, r);
}

static ts_status k_reduce_mean(const ts_kernel_ctx *c, tin_t in, int n_in, ts_tensor **out, int n_out) { return k_reduce(c, in, n_in, out, TS_MEAN); }
static ts_status k_reduce_sum(const ts_kernel_ctx *c, tin_t in, int n_in, ts_tensor **out, int n_out) { return k_reduce(c, in, n_in, out, TS_SUM); }
static ts_status k_reduce_max(const ts_kernel_ctx *c, tin_t in, int n_in, ts_tensor **out, int n_out) { return k_reduce(c, in, n_in, out, TS_AMAX); }
static ts_status k_reduce_min(const ts_kernel_ctx *c, tin_t in, int n_in, ts_tensor **out, int n_out) { return k_reduce(c, in, n_in, out, TS_AMIN); }
static ts_status k_reduce_prod(const ts_kernel_ctx *c, tin_t in, int n_in, ts_tensor **out, int n_out) { return k_reduce(c, in, n_in, out, TS_PROD); }

static ts_status i_reduce(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0)) return ts_last_status();
    const ts_gvalue *x = in[0];
    bool keep = ts_gnode_int(nd, "keepdims", 1) != 0;
    int64_t axes[MAX_LIST], n;
    int k = i_ints(nd, in, 1, "axes", axes, &n);
    if (x->ndim < 0 || k < 0) {
        int r = TS_RANK_UNKNOWN;
        if (x->ndim >= 0 && keep) r = x->ndim;
        else if (x->ndim >= 0 && n > 0) r = x->ndim - (int)n;
        ts_gval_set(out[0], x->dtype, r >= 0 ? r : TS_RANK_UNKNOWN, NULL);
        return TS_OK;
    }
    if (k == 0 || n == 0) {
        if (ts_gnode_int(nd, "noop_with_empty_axes", 0)) {
            ts_gval_copy_info(out[0], x);
            return TS_OK;
        }
        n = x->ndim;
        for (int i = 0; i < x->ndim; i++) axes[i] = i;
    } else if (ts_node_axes(nd, axes, n, x->ndim)) {
        return ts_last_status();
    }
    bool red[TS_MAX_DIMS] = {0};
    for (int64_t i = 0; i < n; i++) red[axes[i]] = true;
    ts_dim d[TS_MAX_DIMS];
    int r = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (!red[i]) d[r++] = x->dims[i];
        else if (keep) d[r++] = ts_dim_of(1);
    }
    ts_gval_set(out[0], x->dtype, r, d);
    return TS_OK;
}

/* ---- Pad ------------------------------------------------------------------------------------------- */

typedef struct pad_args {
    int64_t lo[TS_MAX_DIMS], hi[TS_MAX_DIMS];
    ts_pad_mode mode;
} pad_args;

/* Reads pads (input 1 / attribute), axes (input 3) and mode; lo/hi per dim. */
static ts_status pad_read(const ts_gnode *nd, int rank, const int64_t *pads, int64_t n_pads, bool have_axes,
                          int64_t *axes, int64_t n_axes, pad_args *p)
{
    const char *mode = ts_gnode_string(nd, "mode", "constant");
    if (strcmp(mode, "constant") == 0) p->mode = TS_PAD_CONSTANT;
    else if (strcmp(mode, "reflect") == 0) p->mode = TS_PAD_REFLECT;
    else if (strcmp(mode, "edge") == 0) p->mode = TS_PAD_REPLICATE;
    else if (strcmp(mode, "wrap") == 0) p->mode = TS_PAD_CIRCULAR;
    else return ts_node_fail(nd, TS_ERR_UNSUPPORTED, "unknown mode '%s' (constant, reflect, edge, wrap)", mode);
    int64_t list[TS_MAX_DIMS];
    int64_t na = have_axes ? n_axes : rank;
    if (have_axes) {
        if (na > TS_MAX_DIMS) return ts_node_fail(nd, TS_ERR_ARG, "%lld axes", (long long)na);
        memcpy(list, axes, (size_t)na * sizeof *list);
        if (ts_node_axes(nd, list, na, rank)) return ts_last_status();
    } else {
        for (int i = 0; i < rank; i++) list[i] = i;
    }
    if (n_pads != 2 * na)
        return ts_node_fail(nd, TS_ERR_ARG, "%lld pads for %lld axes (need 2 per axis)", (long long)n_pads, (long long)na);
    memset(p->lo, 0, sizeof p->lo);
    memset(p->hi, 0, sizeof p->hi);
    for (int64_t i = 0; i < na; i++) {
        p->lo[list[i]] = pads[i];
        p->hi[list[i]] = pads[i + na];
    }
    return TS_OK;
}

static ts_status k_pad(const ts_kernel_ctx *ctx, tin_t in, int n_in, ts_tensor **out, int n_out)
{
    const ts_gnode *nd = ctx->node;
    int64_t pads[MAX_LIST], n_pads, axes[MAX_LIST], n_axes;
    bool have_pads, have_axes;
    if (k_need(ctx, in, n_in, 0) || k_ints(ctx, in, n_in, 1, "pads", pads, &n_pads, &have_pads) ||
        k_ints(ctx, in, n_in, 3, NULL, axes, &n_axes, &have_axes))
        return ts_last_status();
    if (!have_pads) return ts_node_fail(nd, TS_ERR_ARG, "missing pads");
    const ts_tensor *x = in[0];
    pad_args p;
    if (pad_read(nd, x->ndim, pads, n_pads, have_axes, axes, n_axes, &p)) return ts_last_status();
    double value = ts_gnode_float(nd, "value", 0);
    if (n_in > 2 && in[2] && ts_tensor_numel(in[2]) > 0 &&
        ts_tensor_read_scalar(in[2], "Pad: constant_value", &value))
        return ts_graph_node_error(nd, ts_last_status());
    int64_t tp[2 * TS_MAX_DIMS];
    for (int k = 0; k < x->ndim; k++) {
        int d = x->ndim - 1 - k;
        tp[2 * k] = p.lo[d];
        tp[2 * k + 1] = p.hi[d];
    }
    return k_set(ctx, out, ts_pad(x, tp, 2 * x->ndim, p.mode, value));
}

static ts_status i_pad(ts_graph *g, const ts_gnode *nd, int64_t opset, gin_t in, gout_t out)
{
    if (need_in(nd, in, 0)) return ts_last_status();
    const ts_gvalue *x = in[0];
    int64_t pads[MAX_LIST], n_pads, axes[MAX_LIST], n_axes;
    int kp = i_ints(nd, in, 1, "pads", pads, &n_pads), ka = i_ints(nd, in, 3, NULL, axes, &n_axes);
    if (kp == 0) return ts_node_fail(nd, TS_ERR_ARG, "missing pads");
    if (x->ndim < 0 || kp < 0 || ka < 0) {
        ts_gval_set(out[0], x->dtype, x->ndim, NULL);
        return TS_OK;
    }
    pad_args p;
    if (pad_read(nd, x->ndim, pads, n_pads, ka == 1, axes, n_axes, &p)) return ts_last_status();
    ts_dim d[TS_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        if (p.lo[i] == 0 && p.hi[i] == 0) d[i] = x->dims[i];
        else if (x->dims[i].size >= 0) {
            int64_t s = x->dims[i].size + p.lo[i] + p.hi[i];
            if (s < 0) return ts_node_fail(nd, TS_ERR_ARG, "pads make axis %d negative", i);
            d[i] = ts_dim_of(s);
        } else d[i] = ts_dim_unknown();
    }
    ts_gval_set(out[0], x->dtype, x->ndim, d);
    return TS_OK;
}

/* One operation per input element for the reductions. */
static double flops_reduce(const ts_gnode *n, const ts_gvalue *const *in, const ts_gvalue *const *out)
{
    int64_t e = in[0] ? ts_gval_numel(in[0]) : -1;
    return e < 0 ? -1 : (double)e;
}

/* ---- registration ------------------------------------------------------------------------------ */

void ts_graph_register_shape_ops(void)
{
    static const struct { const char *name; ts_kernel_fn run; ts_infer_fn infer; } ops[] = {
        {"Identity", k_identity, i_identity},
        {"Dropout", k_dropout, i_dropout},
        {"Reshape", k_reshape, i_reshape},
        {"Transpose", k_transpose, i_transpose},
        {"Concat", k_concat, i_concat},
        {"Split", k_split, i_split},
        {"Slice", k_slice, i_slice},
        {"Gather", k_gather, i_gather},
        {"Unsqueeze", k_unsqueeze, i_unsqueeze},
        {"Squeeze", k_squeeze, i_squeeze},
        {"Flatten", k_flatten, i_flatten},
        {"Shape", k_shape, i_shape},
        {"Size", k_size, i_size},
        {"Constant", k_constant, i_constant},
        {"ConstantOfShape", k_constant_of_shape, i_constant_of_shape},
        {"Expand", k_expand, i_expand},
        {"Tile", k_tile, i_tile},
        {"Cast", k_cast, i_cast},
        {"CastLike", k_cast_like, i_cast_like},
        {"Where", k_where, i_where},
        {"Equal", k_equal, ts_infer_compare},
        {"Less", k_less, ts_infer_compare},
        {"LessOrEqual", k_less_eq, ts_infer_compare},
        {"Greater", k_greater, ts_infer_compare},
        {"GreaterOrEqual", k_greater_eq, ts_infer_compare},
        {"Not", k_not, i_not},
        {"Range", k_range, i_range},
        {"ReduceMean", k_reduce_mean, i_reduce},
        {"ReduceSum", k_reduce_sum, i_reduce},
        {"ReduceMax", k_reduce_max, i_reduce},
        {"ReduceMin", k_reduce_min, i_reduce},
        {"ReduceProd", k_reduce_prod, i_reduce},
        {"Pad", k_pad, i_pad},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        ts_op_def d = {.op_type = ops[i].name, .domain = "", .run = ops[i].run, .infer = ops[i].infer,
                       .flops = strncmp(ops[i].name, "Reduce", 6) == 0 ? flops_reduce : NULL, .foldable = true};
        ts_op_register(&d);
    }
}
