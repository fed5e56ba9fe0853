/* ag_index.c — recording wrappers and backward formulas of the indexing and
 * joining ops: index_select, embedding, gather, scatter_add, masked_select,
 * masked_fill, cat, stack, split / split_sizes / chunk (one node with an
 * output per piece), pad (all modes), flip, repeat, tril and triu. one_hot
 * has no gradient.
 *
 * The gradients of index_select and embedding, and of reflect / replicate /
 * circular padding and repeat (outputs that repeat input elements), are row
 * sums done by one index-add kernel. Many small blocks (the dims before the
 * indexed one) are each built by one thread; otherwise the source rows are
 * grouped by target (a counting sort, or a sort of (target, row) pairs when
 * targets are many more than rows) and each target row is summed by one
 * thread. Either way every sum runs in index order, so results do not
 * depend on the thread count. f32 and f64 rows add in place; other dtypes
 * through an f64 accumulator.
 *
 * cat / stack with more inputs that need a gradient than a node has edges,
 * and split with more pieces than a node has outputs, are recorded as a
 * small tree of nodes over views of the one result (no extra copies). */
#include "agx.h"
#include "torsh/autograd_ops.h"

#include <stdlib.h>
#include <string.h>


/* True when `out` (from the op on `a`) should get a node. */
static bool records(const ts_tensor *a, const ts_tensor *out)
{
    const ts_tensor *in[1] = { a };
    return out && ts_dtype_is_float(out->dtype) && ts_ag_needed(1, in);
}

/* gi[0] = ag_finish(n, 0, r), releasing r (may be NULL after a failure). */
static ts_status finish_one(ts_node *n, ts_tensor *r, ts_tensor **gi)
{
    gi[0] = r ? ag_finish(n, 0, r) : NULL;
    ts_tensor_release(r);
    return gi[0] ? TS_OK : ts_last_status();
}

/* The index tensor as contiguous i64 (new reference). */
static ts_tensor *index_i64(const ts_tensor *index)
{
    return index->dtype == TS_I64 ? ts_contiguous(index) : ts_to_dtype(index, TS_I64);
}

/* ---- the index-add kernel -------------------------------------------------------------- */

/* Source rows grouped by target: group u holds order[start[u] .. start[u+1])
 * in increasing order, and targets row rows[u] (row u when rows is NULL:
 * then every target row has a group, possibly empty). */
typedef struct {
    int64_t *start, *order, *rows;
    int64_t U;
} row_groups;

static void groups_free(row_groups *gr)
{
    free(gr->start);
    free(gr->order);
    free(gr->rows);
}

typedef struct { int64_t key, pos; } keyed;

static int keyed_cmp(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static bool in_range(int64_t i, int64_t V) { return i >= 0 && i < V; }

/* Counting sort of positions by target: O(N + V). */
static bool group_by_counting(const int64_t *idx, int64_t N, int64_t V, row_groups *gr)
{
    gr->start = calloc((size_t)V + 1, sizeof(int64_t));
    gr->order = malloc(sizeof(int64_t) * (size_t)(N > 0 ? N : 1));
    if (!gr->start || !gr->order) return false;
    for (int64_t j = 0; j < N; j++)
        if (in_range(idx[j], V)) gr->start[idx[j] + 1]++;
    for (int64_t v = 0; v < V; v++) gr->start[v + 1] += gr->start[v];
    for (int64_t j = 0; j < N; j++)                /* start[v] moves to the end of group v */
        if (in_range(idx[j], V)) gr->order[gr->start[idx[j]]++] = j;
    for (int64_t v = V; v > 0; v--) gr->start[v] = gr->start[v - 1];
    gr->start[0] = 0;
    gr->U = V;
    return true;
}

/* Sort of (target, position) pairs: O(N log N), for targets much more
 * numerous than positions; only the hit rows get a group. */
static bool group_by_sorting(const int64_t *idx, int64_t N, int64_t V, row_groups *gr)
{
    keyed *k = malloc(sizeof *k * (size_t)(N > 0 ? N : 1));
    gr->order = malloc(sizeof(int64_t) * (size_t)(N > 0 ? N : 1));
    gr->rows = malloc(sizeof(int64_t) * (size_t)(N > 0 ? N : 1));
    gr->start = malloc(sizeof(int64_t) * (size_t)(N + 1));
    if (!k || !gr->order || !gr->rows || !gr->start) { free(k); return false; }
    int64_t m = 0;
    for (int64_t j = 0; j < N; j++)
        if (in_range(idx[j], V)) k[m++] = (keyed){ idx[j], j };
    qsort(k, (size_t)m, sizeof *k, keyed_cmp);
    int64_t U = 0;
    for (int64_t p = 0; p < m; p++) {
        if (p == 0 || k[p].key != k[p - 1].key) { gr->rows[U] = k[p].key; gr->start[U++] = p; }
        gr->order[p] = k[p].pos;
    }
    gr->start[U] = m;
    gr->U = U;
    free(k);
    return true;
}

/* Groups positions j of idx[0..N) by their target idx[j] in [0, V);
 * entries outside [0, V) (fill positions of a map) are skipped. */
static ts_status group_rows(const int64_t *idx, int64_t N, int64_t V, row_groups *gr)
{
    memset(gr, 0, sizeof *gr);
    bool ok = V <= 4 * N + 4096 ? group_by_counting(idx, N, V, gr) : group_by_sorting(idx, N, V, gr);
    if (ok) return TS_OK;
    groups_free(gr);
    return ts_fail(TS_ERR_MEMORY, "backward: out of memory grouping %lld index rows", (long long)N);
}

typedef struct {
    char *dst;             /* contiguous [O, V, I] */
    const char *src;       /* contiguous [O, N, I] */
    ts_dtype dt;
    int64_t V, N, I;
    const row_groups *gr;
    int failed;
} iadd_ctx;

static void add_f32(float *restrict d, const float *restrict s, int64_t n)
{
    for (int64_t k = 0; k < n; k++) d[k] += s[k];
}

static void add_f64(double *restrict d, const double *restrict s, int64_t n)
{
    for (int64_t k = 0; k < n; k++) d[k] += s[k];
}

/* Sums group u's source rows (block o) into its target row; acc/tmp are
 * f64 scratch rows for dtypes other than f32/f64. */
static void iadd_group(const iadd_ctx *c, int64_t o, int64_t u, double *acc, double *tmp)
{
    const row_groups *gr = c->gr;
    int64_t I = c->I, rb = I * (int64_t)ts_dtype_size(c->dt);
    int64_t v = gr->rows ? gr->rows[u] : u, b = gr->start[u], e = gr->start[u + 1];
    char *d = c->dst + (o * c->V + v) * rb;
    if (b == e) { memset(d, 0, (size_t)rb); return; }
    const char *base = c->src + o * c->N * rb;
    if (c->dt == TS_F32 || c->dt == TS_F64) {
        memcpy(d, base + gr->order[b] * rb, (size_t)rb);
        for (int64_t p = b + 1; p < e; p++) {
            const char *s = base + gr->order[p] * rb;
            if (c->dt == TS_F32) add_f32((float *)d, (const float *)s, I);
            else add_f64((double *)d, (const double *)s, I);
        }
        return;
    }
    ts_convert(acc, TS_F64, 1, base + gr->order[b] * rb, c->dt, 1, I);
    for (int64_t p = b + 1; p < e; p++) {
        ts_convert(tmp, TS_F64, 1, base + gr->order[p] * rb, c->dt, 1, I);
        add_f64(acc, tmp, I);
    }
    ts_convert(d, c->dt, 1, acc, TS_F64, 1, I);
}

/* Work items are (block o, group u) pairs. */
static void iadd_items(int64_t begin, int64_t end, void *vctx)
{
    iadd_ctx *c = vctx;
    double *acc = NULL;
    if (c->dt != TS_F32 && c->dt != TS_F64) {
        acc = malloc(sizeof(double) * 2 * (size_t)c->I);
        if (!acc) { __atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED); return; }
    }
    int64_t U = c->gr->U;
    for (int64_t w = begin; w < end; w++) iadd_group(c, w / U, w % U, acc, acc ? acc + c->I : NULL);
    free(acc);
}

/* Many small blocks (pad, repeat, index_select of an inner dim): each block
 * o of dst is zeroed and built by one thread, adding src's rows in j order.
 * f32 / f64 only. */
typedef struct {
    char *dst;             /* contiguous [O, V, I] */
    const char *src;       /* contiguous [O, N, I] */
    ts_dtype dt;
    int64_t V, N, I;
    const int64_t *idx;
} block_ctx;

static void add_blocks(int64_t begin, int64_t end, void *vctx)
{
    const block_ctx *c = vctx;
    int64_t V = c->V, N = c->N, I = c->I, rb = I * (int64_t)ts_dtype_size(c->dt);
    bool f32 = c->dt == TS_F32;
    for (int64_t o = begin; o < end; o++) {
        char *d = c->dst + o * V * rb;
        const char *s = c->src + o * N * rb;
        memset(d, 0, (size_t)(V * rb));
        for (int64_t j = 0; j < N; j++) {
            int64_t v = c->idx[j];
            if (!in_range(v, V)) continue;
            if (I == 1 && f32) ((float *)d)[v] += ((const float *)s)[j];
            else if (I == 1) ((double *)d)[v] += ((const double *)s)[j];
            else if (f32) add_f32((float *)(d + v * rb), (const float *)(s + j * rb), I);
            else add_f64((double *)(d + v * rb), (const double *)(s + j * rb), I);
        }
    }
}

/* Runs fn over n items of about `cost` elements each. */
static void run_items(int64_t n, int64_t cost, ts_range_fn fn, void *ctx)
{
    int64_t grain = TS_GRAIN_ELEMENTWISE / (cost > 0 ? cost : 1);
    if (grain < 1) grain = 1;
    if (n < 2 * grain) fn(0, n, ctx);
    else ts_parallel_for(n, grain, fn, ctx);
}

/* The grouped path: one work item per (block, target row). */
static ts_tensor *add_grouped(const ts_tensor *gc, const int64_t *shape, const int64_t *idx, int64_t O, int64_t V,
                              int64_t N, int64_t I)
{
    row_groups gr;
    if (group_rows(idx, N, V, &gr)) return NULL;
    ts_tensor *out = gr.rows ? ts_tensor_zeros(shape, gc->ndim, gc->dtype) : ts_tensor_new(shape, gc->ndim, gc->dtype);
    if (out && O * gr.U > 0 && I > 0) {
        iadd_ctx c = { ts_tensor_data(out), ts_tensor_data(gc), gc->dtype, V, N, I, &gr, 0 };
        run_items(O * gr.U, I * (N / (gr.U > 0 ? gr.U : 1) + 1), iadd_items, &c);
        if (c.failed) {
            ts_tensor_release(out);
            out = ts_fail_null(TS_ERR_MEMORY, "backward: out of memory (index-add rows)");
        }
    }
    groups_free(&gr);
    return out;
}

/* The adjoint of taking rows idx[j] along dim d: a new contiguous tensor of
 * g's shape and dtype with dim d of size V, whose row v is the sum of g's
 * rows j with idx[j] == v (zero where none); other idx[j] are dropped.
 * g's dim d has one row per index. Blocks (the dims before d) that are
 * many and small are built one per thread; otherwise the rows are grouped
 * by target. */
static ts_tensor *index_add_rows(const ts_tensor *g, int d, const int64_t *idx, int64_t V)
{
    int64_t shape[TS_MAX_DIMS], O = 1, I = 1, N = g->shape[d];
    memcpy(shape, g->shape, sizeof(int64_t) * (size_t)g->ndim);
    shape[d] = V;
    for (int k = 0; k < d; k++) O *= shape[k];
    for (int k = d + 1; k < g->ndim; k++) I *= shape[k];
    ts_tensor *gc = ts_contiguous(g);
    if (!gc) return NULL;
    ts_tensor *out;
    bool blocks = (g->dtype == TS_F32 || g->dtype == TS_F64) && O >= 4 && V * I <= 8192;
    if (blocks) {
        out = ts_tensor_new(shape, g->ndim, g->dtype);
        if (out && O * V * I > 0) {
            block_ctx c = { ts_tensor_data(out), ts_tensor_data(gc), g->dtype, V, N, I, idx };
            run_items(O, (V + N) * I, add_blocks, &c);
        }
    } else {
        out = add_grouped(gc, shape, idx, O, V, N, I);
    }
    ts_tensor_release(gc);
    return out;
}

/* ---- index_select and embedding --------------------------------------------------------- */

/* i[0]: dim; saved[0]: the index */
static ts_status index_select_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    int d = (int)n->i[0];
    if (n->in_ndim[0] == 0) return finish_one(n, (ts_tensor_retain(go[0]), go[0]), gi);
    ts_tensor *idx = index_i64(n->saved[0]);
    ts_tensor *r = idx ? index_add_rows(go[0], d, ts_tensor_data(idx), n->in_shape[0][d]) : NULL;
    ts_tensor_release(idx);
    return finish_one(n, r, gi);
}

ts_tensor *ts_ag_index_select(const ts_tensor *a, int dim, const ts_tensor *index)
{
    ts_tensor *out = ts_index_select(a, dim, index);
    if (!records(a, out)) return out;
    int d = 0;
    if (a->ndim) ts_wrap_dim("index_select", dim, a->ndim, &d);
    const ts_tensor *in[1] = { a };
    ts_node *n = ts_node_new("index_select", index_select_backward, 1, in, 1);
    if (n) n->i[0] = d;
    if (n && ts_node_save(n, 0, index)) { ts_node_release(n); n = NULL; }
    return ag_attach(n, out, 0);
}

/* saved[0]: the index */
static ts_status embedding_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    int64_t V = n->in_shape[0][0], D = n->in_shape[0][1];
    ts_tensor *idx = index_i64(n->saved[0]);
    ts_tensor *g2 = idx ? ts_reshape(go[0], (int64_t[]){ ts_tensor_numel(idx), D }, 2) : NULL;
    ts_tensor *r = g2 ? index_add_rows(g2, 0, ts_tensor_data(idx), V) : NULL;
    ts_tensor_release(g2);
    ts_tensor_release(idx);
    return finish_one(n, r, gi);
}

ts_tensor *ts_ag_embedding(const ts_tensor *weight, const ts_tensor *index)
{
    ts_tensor *out = ts_embedding(weight, index);
    if (!records(weight, out)) return out;
    const ts_tensor *in[1] = { weight };
    ts_node *n = ts_node_new("embedding", embedding_backward, 1, in, 1);
    if (n && ts_node_save(n, 0, index)) { ts_node_release(n); n = NULL; }
    return ag_attach(n, out, 0);
}

/* ---- gather and scatter_add ----------------------------------------------------------- */

/* zeros of input 0's shape with g added at the index positions along d */
static ts_tensor *scatter_into_zeros(const ts_node *n, const ts_tensor *g, int d, const ts_tensor *index)
{
    ts_tensor *z = ts_tensor_zeros(n->in_shape[0], n->in_ndim[0], g->dtype);
    if (z && ts_scatter_add_(z, d, index, g)) { ts_tensor_release(z); return NULL; }
    return z;
}

/* i[0]: dim; saved[0]: the index */
static ts_status gather_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    return finish_one(n, scatter_into_zeros(n, go[0], (int)n->i[0], n->saved[0]), gi);
}

ts_tensor *ts_ag_gather(const ts_tensor *a, int dim, const ts_tensor *index)
{
    ts_tensor *out = ts_gather(a, dim, index);
    if (!records(a, out)) return out;
    int d = 0;
    if (a->ndim) ts_wrap_dim("gather", dim, a->ndim, &d);
    const ts_tensor *in[1] = { a };
    ts_node *n = ts_node_new("gather", gather_backward, 1, in, 1);
    if (n) n->i[0] = d;
    if (n && ts_node_save(n, 0, index)) { ts_node_release(n); n = NULL; }
    return ag_attach(n, out, 0);
}

/* gather(g) placed at the front corner of zeros of src's shape (src may be
 * larger than the index) */
static ts_tensor *gather_for_src(const ts_node *n, const ts_tensor *g, int d, const ts_tensor *index)
{
    ts_tensor *part = ts_gather(g, d, index);
    int nd = n->in_ndim[1];
    if (!part || (part->ndim == nd && !memcmp(part->shape, n->in_shape[1], sizeof(int64_t) * (size_t)nd)))
        return part;
    ts_tensor *z = ts_tensor_zeros(n->in_shape[1], nd, g->dtype);
    ts_tensor *view = z;
    if (z) ts_tensor_retain(z);
    for (int k = 0; k < nd && view; k++) {
        ts_tensor *v = ts_narrow(view, k, 0, part->shape[k]);
        ts_tensor_release(view);
        view = v;
    }
    if (!view || ts_copy_(view, part)) { ts_tensor_release(z); z = NULL; }
    ts_tensor_release(view);
    ts_tensor_release(part);
    return z;
}

/* inputs (a, src); i[0]: dim; saved[0]: the index */
static ts_status scatter_add_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    if (ag_wants(n, 0) && !(gi[0] = ag_finish(n, 0, go[0]))) return ts_last_status();
    if (ag_wants(n, 1)) {
        ts_tensor *r = gather_for_src(n, go[0], (int)n->i[0], n->saved[0]);
        gi[1] = r ? ag_finish(n, 1, r) : NULL;
        ts_tensor_release(r);
        if (!gi[1]) return ts_last_status();
    }
    return TS_OK;
}

ts_tensor *ts_ag_scatter_add(const ts_tensor *a, int dim, const ts_tensor *index, const ts_tensor *src)
{
    ts_tensor *out = ts_scatter_add(a, dim, index, src);
    const ts_tensor *in[2] = { a, src };
    if (!out || !ts_dtype_is_float(out->dtype) || !ts_ag_needed(2, in)) return out;
    int d = 0;
    if (a->ndim) ts_wrap_dim("scatter_add", dim, a->ndim, &d);
    ts_node *n = ts_node_new("scatter_add", scatter_add_backward, 2, in, 1);
    if (n) n->i[0] = d;
    if (n && ts_node_save(n, 0, index)) { ts_node_release(n); n = NULL; }
    return ag_attach(n, out, 0);
}

/* ---- masked_fill and masked_select ---------------------------------------------------- */

/* saved[0]: the mask */
static ts_status masked_fill_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    return finish_one(n, ts_masked_fill(go[0], n->saved[0], 0.0), gi);
}

ts_tensor *ts_ag_masked_fill(const ts_tensor *a, const ts_tensor *mask, double value)
{
    ts_tensor *out = ts_masked_fill(a, mask, value);
    if (!records(a, out)) return out;
    const ts_tensor *in[1] = { a };
    ts_node *n = ts_node_new("masked_fill", masked_fill_backward, 1, in, 1);
    if (n && ts_node_save(n, 0, mask)) { ts_node_release(n); n = NULL; }
    return ag_attach(n, out, 0);
}

typedef struct { const char *src; int64_t next; size_t es; } unselect_ctx;

/* p[0]: the gradient being built, p[1]: the mask; masked positions take the
 * next selected gradient, in row-major order like masked_select. */
static void unselect_loop(char **p, const int64_t *s, int64_t n, void *vctx)
{
    unselect_ctx *c = vctx;
    for (int64_t i = 0; i < n; i++) {
        if (!p[1][i * s[1]]) continue;
        memcpy(p[0] + i * s[0], c->src + c->next * (int64_t)c->es, c->es);
        c->next++;
    }
}

/* i[0]: ndim of the broadcast shape, i[1..]: the shape; saved[0]: the mask */
static ts_status masked_select_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    int nd = (int)n->i[0];
    const int64_t *shape = n->i + 1;
    ts_tensor *g = ts_contiguous(go[0]);
    ts_tensor *z = g ? ts_tensor_zeros(shape, nd, g->dtype) : NULL;
    if (z && ts_tensor_numel(z) > 0) {
        ts_iter it;
        const ts_tensor *ops[2] = { z, n->saved[0] };
        ts_iter_init(&it, 2, ops, shape, nd);
        unselect_ctx c = { ts_tensor_data(g), 0, ts_dtype_size(g->dtype) };
        ts_iter_run_range(&it, unselect_loop, &c, 0, it.numel);
    }
    ts_tensor_release(g);
    return finish_one(n, z, gi);
}

ts_tensor *ts_ag_masked_select(const ts_tensor *a, const ts_tensor *mask)
{
    ts_tensor *out = ts_masked_select(a, mask);
    if (!records(a, out)) return out;
    int64_t shape[TS_MAX_DIMS];
    int nd;
    if (ts_broadcast_shapes("masked_select", a->shape, a->ndim, mask->shape, mask->ndim, shape, &nd)) {
        ts_tensor_release(out);
        return NULL;
    }
    const ts_tensor *in[1] = { a };
    ts_node *n = ts_node_new("masked_select", masked_select_backward, 1, in, 1);
    if (n) {
        n->i[0] = nd;
        memcpy(n->i + 1, shape, sizeof(int64_t) * (size_t)nd);
    }
    if (n && ts_node_save(n, 0, mask)) { ts_node_release(n); n = NULL; }
    return ag_attach(n, out, 0);
}

/* ---- cat and stack ------------------------------------------------------------------ */

/* A part of a joined result along d: `len` positions from `off` (cat), or
 * the one position `off` with the dim dropped (stack: len < 0). */
typedef struct { const ts_tensor *t; int64_t off, len; } piece;

/* i[0]: dim; i[1 + 2s], i[2 + 2s]: offset and length (< 0: selected) of input s */
static ts_status join_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    int d = (int)n->i[0];
    for (int s = 0; s < n->n_in; s++) {
        if (!ag_wants(n, s)) continue;
        int64_t off = n->i[1 + 2 * s], len = n->i[2 + 2 * s];
        ts_tensor *part = len < 0 ? ts_select(go[0], d, off) : ts_narrow(go[0], d, off, len);
        gi[s] = part ? ag_finish(n, s, part) : NULL;
        ts_tensor_release(part);
        if (!gi[s]) return ts_last_status();
    }
    return TS_OK;
}

static int64_t piece_end(const piece *p) { return p->off + (p->len < 0 ? 1 : p->len); }

/* Gives `out` (the part of the joined result from `base` along d) a node
 * whose inputs are the m pieces. More pieces than a node has inputs are
 * grouped under narrowed views of out, each with its own node. */
static ts_status record_join(const char *name, ts_tensor *out, int d, const piece *p, int m, int64_t base)
{
    if (m <= TS_NODE_MAX_INPUTS) {
        const ts_tensor *in[TS_NODE_MAX_INPUTS] = {0};
        for (int s = 0; s < m; s++) in[s] = p[s].t;
        ts_node *n = ts_node_new(name, join_backward, m, in, 1);
        if (!n) return ts_last_status();
        n->i[0] = d;
        for (int s = 0; s < m; s++) {
            n->i[1 + 2 * s] = p[s].off - base;
            n->i[2 + 2 * s] = p[s].len;
        }
        ts_status st = ts_node_attach(n, out, 0);
        ts_node_release(n);
        return st;
    }
    int per = (m + TS_NODE_MAX_INPUTS - 1) / TS_NODE_MAX_INPUTS, ng = 0;
    piece groups[TS_NODE_MAX_INPUTS];
    ts_tensor *views[TS_NODE_MAX_INPUTS];
    ts_status st = TS_OK;
    for (int a = 0; a < m && !st; a += per, ng++) {
        int b = a + per < m ? a + per : m;
        int64_t start = p[a].off, len = piece_end(&p[b - 1]) - start;
        views[ng] = ts_narrow(out, d, start - base, len);
        if (!views[ng]) { st = ts_last_status(); break; }
        groups[ng] = (piece){ views[ng], start, len };
        st = record_join(name, views[ng], d, p + a, b - a, start);
    }
    if (!st) st = record_join(name, out, d, groups, ng, base);
    for (int k = 0; k < ng; k++) ts_tensor_release(views[k]);
    return st;
}

/* Records the joined result `out` of ts along d (stack: positions) */
static ts_tensor *record_joined(const char *name, ts_tensor *out, ts_tensor *const *ts, int n, int d, bool stack)
{
    piece *p = malloc(sizeof *p * (size_t)n);
    if (!p) { ts_tensor_release(out); return ts_fail_null(TS_ERR_MEMORY, "%s: out of memory", name); }
    int m = 0;
    int64_t pos = 0;
    for (int i = 0; i < n; i++) {
        const ts_tensor *t = ts[i];
        bool skipped = !stack && t->ndim == 1 && t->shape[0] == 0 && out->ndim != 1;   /* cat's legacy rule */
        int64_t len = stack ? -1 : (skipped ? 0 : t->shape[d]);
        if (ts_requires_grad(t) && !skipped) p[m++] = (piece){ t, pos, len };
        pos += stack ? 1 : len;
    }
    ts_status st = m ? record_join(name, out, d, p, m, 0) : TS_OK;
    free(p);
    if (st) { ts_tensor_release(out); return NULL; }
    return out;
}

ts_tensor *ts_ag_cat(ts_tensor *const *ts, int n, int dim)
{
    ts_tensor *out = ts_cat(ts, n, dim);
    if (!out || !ts_dtype_is_float(out->dtype) || !ts_ag_needed(n, (const ts_tensor *const *)ts)) return out;
    int d;
    ts_wrap_dim("cat", dim, out->ndim, &d);
    return record_joined("cat", out, ts, n, d, false);
}

ts_tensor *ts_ag_stack(ts_tensor *const *ts, int n, int dim)
{
    ts_tensor *out = ts_stack(ts, n, dim);
    if (!out || !ts_dtype_is_float(out->dtype) || !ts_ag_needed(n, (const ts_tensor *const *)ts)) return out;
    int d;
    ts_wrap_dim("stack", dim, out->ndim, &d);
    return record_joined("stack", out, ts, n, d, true);
}

/* ---- split, split_sizes, chunk ---------------------------------------------------------- */

/* i[0]: dim; saved[0]: i64 boundaries b[0..n_out] of the pieces along dim */
static ts_status split_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    int d = (int)n->i[0];
    const int64_t *b = ts_tensor_data(n->saved[0]);
    ts_dtype dt = n->in_dtype[0];
    for (int k = 0; k < n->n_out; k++)
        if (go[k]) { dt = go[k]->dtype; break; }
    ts_tensor *z = ts_tensor_zeros(n->in_shape[0], n->in_ndim[0], dt);
    for (int k = 0; k < n->n_out && z; k++) {
        if (!go[k]) continue;
        ts_tensor *part = ts_narrow(z, d, b[k], b[k + 1] - b[k]);
        if (!part || ts_copy_(part, go[k])) { ts_tensor_release(z); z = NULL; }
        ts_tensor_release(part);
    }
    return finish_one(n, z, gi);
}

/* Makes outs[0..m) (consecutive views along d of src, which starts at
 * `base`; piece k starts at starts[k] and ends at starts[k + 1]) the
 * outputs of a node on src. More pieces than a node has outputs are
 * grouped: src gets a node whose outputs are views over the groups, and
 * each group view a node whose outputs are its pieces. */
static ts_status record_split(const ts_tensor *src, int d, ts_tensor **outs, const int64_t *starts, int m, int64_t base)
{
    ts_tensor *views[TS_NODE_MAX_OUTPUTS];
    int64_t vstart[TS_NODE_MAX_OUTPUTS + 1];
    int per = (m + TS_NODE_MAX_OUTPUTS - 1) / TS_NODE_MAX_OUTPUTS, ng = 0;
    bool grouped = per > 1;
    ts_tensor **node_outs = outs;
    const int64_t *bounds = starts;
    int nout = m;
    ts_status st = TS_OK;
    if (grouped) {
        for (int a = 0; a < m; a += per, ng++) {
            int b = a + per < m ? a + per : m;
            vstart[ng] = starts[a];
            vstart[ng + 1] = starts[b];
            views[ng] = ts_narrow(src, d, starts[a] - base, starts[b] - starts[a]);
            if (!views[ng]) { st = ts_last_status(); break; }
        }
        node_outs = views;
        bounds = vstart;
        nout = ng;
    }
    int64_t rel[TS_NODE_MAX_OUTPUTS + 1];
    for (int k = 0; k <= nout && !st; k++) rel[k] = bounds[k] - base;
    ts_tensor *b = st ? NULL : ts_tensor_from_data(rel, TS_I64, (int64_t[]){ nout + 1 }, 1, TS_I64);
    const ts_tensor *in[1] = { src };
    ts_node *n = b ? ts_node_new("split", split_backward, 1, in, nout) : NULL;
    if (!n || ts_node_save(n, 0, b)) st = ts_last_status();
    if (n) n->i[0] = d;
    for (int k = 0; k < nout && !st; k++) st = ts_node_attach(n, node_outs[k], k);
    ts_node_release(n);
    ts_tensor_release(b);
    for (int g = 0; g < ng && !st; g++) {
        int a = g * per, e = a + per < m ? a + per : m;
        st = record_split(views[g], d, outs + a, starts + a, e - a, starts[a]);
    }
    for (int g = 0; g < ng; g++) ts_tensor_release(views[g]);
    return st;
}

/* Records the pieces of a split of a along dim (in place in *outs); on
 * failure releases them and sets *outs to NULL (and *n to 0). */
static ts_status record_pieces(const ts_tensor *a, int dim, ts_tensor ***outs, int *n, int count)
{
    ts_tensor **o = *outs;
    const ts_tensor *in[1] = { a };
    if (count == 0 || !ts_dtype_is_float(a->dtype) || !ts_ag_needed(1, in)) return TS_OK;
    int d;
    ts_wrap_dim("split", dim, a->ndim, &d);
    int64_t *starts = malloc(sizeof *starts * ((size_t)count + 1));
    ts_status st = starts ? TS_OK : ts_fail(TS_ERR_MEMORY, "split: out of memory");
    if (!st) {
        starts[0] = 0;
        for (int k = 0; k < count; k++) starts[k + 1] = starts[k] + o[k]->shape[d];
        st = record_split(a, d, o, starts, count, 0);
    }
    free(starts);
    if (!st) return TS_OK;
    for (int k = 0; k < count; k++) ts_tensor_release(o[k]);
    free(o);
    *outs = NULL;
    if (n) *n = 0;
    return st;
}

ts_status ts_ag_split(const ts_tensor *a, int64_t size, int dim, ts_tensor ***outs, int *n)
{
    ts_status st = ts_split(a, size, dim, outs, n);
    return st ? st : record_pieces(a, dim, outs, n, *n);
}

ts_status ts_ag_split_sizes(const ts_tensor *a, const int64_t *sizes, int nsizes, int dim, ts_tensor ***outs)
{
    ts_status st = ts_split_sizes(a, sizes, nsizes, dim, outs);
    return st ? st : record_pieces(a, dim, outs, NULL, nsizes);
}

ts_status ts_ag_chunk(const ts_tensor *a, int chunks, int dim, ts_tensor ***outs, int *n)
{
    ts_status st = ts_chunk(a, chunks, dim, outs, n);
    return st ? st : record_pieces(a, dim, outs, n, *n);
}

/* ---- pad ---------------------------------------------------------------------------- */

/* Source coordinate of output coordinate o along a dim of `size` padded by
 * (lo, hi), or -1 for fill; the same map as ts_pad's (join.c). */
static int64_t pad_source(int64_t o, int64_t lo, int64_t hi, int64_t size, ts_pad_mode mode)
{
    int64_t x = o - lo;
    if (mode == TS_PAD_CIRCULAR) {
        int64_t start = lo < 0 ? -lo : 0, kept = size - start - (hi < 0 ? -hi : 0);
        int64_t y = o - (lo > 0 ? lo : 0);
        return start + ((y % kept) + kept) % kept;
    }
    if (x >= 0 && x < size) return x;
    switch (mode) {
    case TS_PAD_REFLECT: return x < 0 ? -x : 2 * (size - 1) - x;
    case TS_PAD_REPLICATE: return x < 0 ? 0 : size - 1;
    default: return -1;
    }
}

/* Constant padding: the gradient is the part of g over the kept input,
 * placed in zeros where pads cropped the input. */
static ts_tensor *unpad_constant(const ts_node *n, const ts_tensor *g)
{
    int nd = n->in_ndim[0], npads = (int)n->i[1];
    const int64_t *pads = n->i + 2;
    bool crops = false;
    for (int k = 0; k < npads; k++) crops = crops || pads[k] < 0;
    ts_tensor *z = crops ? ts_tensor_zeros(n->in_shape[0], nd, g->dtype) : NULL;
    if (crops && !z) return NULL;
    ts_tensor *gv = (ts_tensor *)g, *zv = z;
    ts_tensor_retain(gv);
    if (zv) ts_tensor_retain(zv);
    for (int k = 0; k < npads / 2 && gv && (!crops || zv); k++) {
        int d = nd - 1 - k;
        int64_t lo = pads[2 * k], hi = pads[2 * k + 1], size = n->in_shape[0][d];
        int64_t x0 = lo < 0 ? -lo : 0, len = size - x0 - (hi < 0 ? -hi : 0);
        ts_tensor *v = ts_narrow(gv, d, x0 + lo, len);
        ts_tensor_release(gv);
        gv = v;
        if (zv) {
            v = ts_narrow(zv, d, x0, len);
            ts_tensor_release(zv);
            zv = v;
        }
    }
    ts_tensor *r = NULL;
    if (gv && !crops) { r = gv; gv = NULL; }
    else if (gv && zv && !ts_copy_(zv, gv)) { r = z; z = NULL; }
    ts_tensor_release(gv);
    ts_tensor_release(zv);
    ts_tensor_release(z);
    return r;
}

/* i[0]: mode; i[1]: number of pads; i[2..]: the pads */
static ts_status pad_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    ts_pad_mode mode = (ts_pad_mode)n->i[0];
    if (mode == TS_PAD_CONSTANT) return finish_one(n, unpad_constant(n, go[0]), gi);
    int nd = n->in_ndim[0], npads = (int)n->i[1];
    const int64_t *pads = n->i + 2;
    ts_tensor *cur = go[0];
    ts_tensor_retain(cur);
    for (int k = 0; k < npads / 2 && cur; k++) {
        int d = nd - 1 - k;
        int64_t lo = pads[2 * k], hi = pads[2 * k + 1], size = n->in_shape[0][d], len = cur->shape[d];
        if (lo == 0 && hi == 0) continue;
        int64_t *map = malloc(sizeof *map * (size_t)(len > 0 ? len : 1));
        ts_tensor *next = NULL;
        if (map) {
            for (int64_t o = 0; o < len; o++) map[o] = pad_source(o, lo, hi, size, mode);
            next = index_add_rows(cur, d, map, size);
            free(map);
        } else {
            ts_fail(TS_ERR_MEMORY, "pad backward: out of memory");
        }
        ts_tensor_release(cur);
        cur = next;
    }
    return finish_one(n, cur, gi);
}

ts_tensor *ts_ag_pad(const ts_tensor *a, const int64_t *pads, int npads, ts_pad_mode mode, double value)
{
    ts_tensor *out = ts_pad(a, pads, npads, mode, value);
    if (!records(a, out)) return out;
    const ts_tensor *in[1] = { a };
    ts_node *n = ts_node_new("pad", pad_backward, 1, in, 1);
    if (n) {
        n->i[0] = mode;
        n->i[1] = npads;
        memcpy(n->i + 2, pads, sizeof(int64_t) * (size_t)npads);
    }
    return ag_attach(n, out, 0);
}

/* ---- flip, repeat, tril, triu ------------------------------------------------------------- */

/* i[0]: number of dims; i[1..]: the dims */
static ts_status flip_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    int dims[TS_MAX_DIMS], nd = (int)n->i[0];
    for (int k = 0; k < nd; k++) dims[k] = (int)n->i[1 + k];
    return finish_one(n, ts_flip(go[0], dims, nd), gi);
}

ts_tensor *ts_ag_flip(const ts_tensor *a, const int *dims, int ndims)
{
    ts_tensor *out = ts_flip(a, dims, ndims);
    if (!records(a, out)) return out;
    const ts_tensor *in[1] = { a };
    ts_node *n = ts_node_new("flip", flip_backward, 1, in, 1);
    if (n) {
        n->i[0] = ndims;
        for (int k = 0; k < ndims; k++) n->i[1 + k] = dims[k];
    }
    return ag_attach(n, out, 0);
}

/* i[0]: number of counts; i[1..]: the counts. Each dim's tiles are summed
 * back onto the input's positions (o -> o mod size). */
static ts_status repeat_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    int nreps = (int)n->i[0], lead = nreps - n->in_ndim[0];
    ts_tensor *cur = go[0];
    ts_tensor_retain(cur);
    for (int k = 0; k < nreps && cur; k++) {
        int64_t size = k < lead ? 1 : n->in_shape[0][k - lead], len = cur->shape[k];
        if (n->i[1 + k] == 1) continue;
        int64_t *map = malloc(sizeof *map * (size_t)(len > 0 ? len : 1));
        ts_tensor *next = NULL;
        if (map) {
            for (int64_t o = 0; o < len; o++) map[o] = o % size;
            next = index_add_rows(cur, k, map, size);
            free(map);
        } else {
            ts_fail(TS_ERR_MEMORY, "repeat backward: out of memory");
        }
        ts_tensor_release(cur);
        cur = next;
    }
    return finish_one(n, cur, gi);   /* ag_finish drops the leading ones */
}

ts_tensor *ts_ag_repeat(const ts_tensor *a, const int64_t *reps, int nreps)
{
    ts_tensor *out = ts_repeat(a, reps, nreps);
    if (!records(a, out)) return out;
    const ts_tensor *in[1] = { a };
    ts_node *n = ts_node_new("repeat", repeat_backward, 1, in, 1);
    if (n) {
        n->i[0] = nreps;
        memcpy(n->i + 1, reps, sizeof(int64_t) * (size_t)nreps);
    }
    return ag_attach(n, out, 0);
}

/* i[0]: diagonal; i[1]: lower */
static ts_status triangle_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    return finish_one(n, n->i[1] ? ts_tril(go[0], n->i[0]) : ts_triu(go[0], n->i[0]), gi);
}

static ts_tensor *record_triangle(const char *name, const ts_tensor *a, ts_tensor *out, int64_t diagonal, bool lower)
{
    if (!records(a, out)) return out;
    const ts_tensor *in[1] = { a };
    ts_node *n = ts_node_new(name, triangle_backward, 1, in, 1);
    if (n) {
        n->i[0] = diagonal;
        n->i[1] = lower;
    }
    return ag_attach(n, out, 0);
}

ts_tensor *ts_ag_tril(const ts_tensor *a, int64_t diagonal) { return record_triangle("tril", a, ts_tril(a, diagonal), diagonal, true); }
ts_tensor *ts_ag_triu(const ts_tensor *a, int64_t diagonal) { return record_triangle("triu", a, ts_triu(a, diagonal), diagonal, false); }
