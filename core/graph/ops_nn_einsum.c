/* ops_nn_einsum.c — ONNX Einsum (opset 12): "bij,bjk->bik", "ij->ji",
 * "ii->i", "...ij,...jk->...ik", implicit outputs ("ij,jk": the labels seen
 * once, in ASCII order, after the ellipsis dims), any number of operands.
 *
 * Each operand is first reduced to distinct labels: a repeated label takes
 * the diagonal (a strided view), and a label that no other operand nor the
 * output uses is summed out. Operands are then contracted left to right,
 * two at a time, as one batched GEMM: A permuted to [batch, A-only,
 * contracted], B to [batch, contracted, B-only], both reshaped to 3-D for
 * ts_bmm (labels "batch" when both operands and later work keep them;
 * ellipsis dims of size 1 broadcast). The result is summed over labels the
 * output lacks and permuted to the output's order. FLOPs: 2 * (product of
 * the sizes of all labels) per contraction (2 * B * M * N * K for two
 * operands), the product alone for one operand.
 * Uses: torsh/ops.h (ts_bmm, ts_reduce, ts_permute, ts_reshape). */
#include "ops_nn.h"

#include <stdio.h>
#include <string.h>

#define EIN_MAX_IN 16
#define EIN_LETTERS 52                       /* a-z, A-Z */
#define EIN_LABELS (EIN_LETTERS + TS_MAX_DIMS) /* then the ellipsis dims */

typedef struct ein_term {
    int n;                     /* labels (dims) */
    int label[TS_MAX_DIMS];
} ein_term;

typedef struct ein_eq {
    int n_in;
    ein_term in[EIN_MAX_IN];
    ein_term out;
    int ell;                   /* ellipsis rank (max over the operands) */
} ein_eq;

static int letter_id(char c)
{
    if (c >= 'a' && c <= 'z') return c - 'a';
    if (c >= 'A' && c <= 'Z') return 26 + c - 'A';
    return -1;
}

/* Parses one term of `len` chars against an operand of rank `rank` (-1 for
 * the output: the ellipsis then stands for all `ell` dims). */
static ts_status parse_term(const char *s, size_t len, int rank, int ell, ein_term *t, int *ell_rank)
{
    int letters = 0, dots = -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (dots >= 0 || i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.')
                return ts_fail(TS_ERR_ARG, "Einsum: bad ellipsis in \"%.*s\"", (int)len, s);
            dots = letters;
            i += 2;
        } else if (letter_id(s[i]) >= 0) {
            letters++;
        } else {
            return ts_fail(TS_ERR_ARG, "Einsum: unexpected '%c' in \"%.*s\"", s[i], (int)len, s);
        }
    }
    int e = dots < 0 ? 0 : rank < 0 ? ell : rank - letters;
    if (rank >= 0 && (e < 0 || (dots < 0 && letters != rank)))
        return ts_fail(TS_ERR_ARG, "Einsum: term \"%.*s\" does not fit an input of rank %d", (int)len, s, rank);
    if (letters + e > TS_MAX_DIMS) return ts_fail(TS_ERR_ARG, "Einsum: term \"%.*s\" has too many dims", (int)len, s);
    t->n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            for (int k = 0; k < e; k++) t->label[t->n++] = EIN_LETTERS + k;
            i += 2;
        } else {
            t->label[t->n++] = letter_id(s[i]);
        }
    }
    if (ell_rank) *ell_rank = e;
    return TS_OK;
}

/* Parses the equation against the inputs' ranks. Ellipsis dims of an
 * operand with fewer of them are aligned to the right: label EIN_LETTERS +
 * (ell - e + k). */
static ts_status parse_eq(const char *eq, const int *ranks, int n_in, ein_eq *q)
{
    char buf[512];
    size_t m = 0;
    for (const char *p = eq; *p; p++)
        if (*p != ' ' && m + 1 < sizeof buf) buf[m++] = *p;
    buf[m] = 0;
    if (n_in < 1 || n_in > EIN_MAX_IN) return ts_fail(TS_ERR_ARG, "Einsum: %d inputs (1 to %d supported)", n_in, EIN_MAX_IN);
    q->n_in = n_in;
    char *arrow = strstr(buf, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - buf) : m;
    int e_of[EIN_MAX_IN], k = 0;
    size_t start = 0;
    q->ell = 0;
    for (size_t i = 0; i <= lhs_len; i++) {
        if (i < lhs_len && buf[i] != ',') continue;
        if (k >= n_in) return ts_fail(TS_ERR_ARG, "Einsum: \"%s\" has more terms than the %d inputs", eq, n_in);
        if (parse_term(buf + start, i - start, ranks[k], 0, &q->in[k], &e_of[k])) return ts_last_status();
        if (e_of[k] > q->ell) q->ell = e_of[k];
        k++;
        start = i + 1;
    }
    if (k != n_in) return ts_fail(TS_ERR_ARG, "Einsum: \"%s\" has %d terms for %d inputs", eq, k, n_in);
    for (int i = 0; i < n_in; i++)   /* right-align the ellipsis labels */
        for (int d = 0; d < q->in[i].n; d++)
            if (q->in[i].label[d] >= EIN_LETTERS) q->in[i].label[d] += q->ell - e_of[i];
    if (arrow) {
        if (parse_term(arrow + 2, strlen(arrow + 2), -1, q->ell, &q->out, NULL)) return ts_last_status();
    } else {   /* implicit: the ellipsis dims, then the letters seen once, in ASCII order */
        int count[EIN_LETTERS] = { 0 };
        for (int i = 0; i < n_in; i++)
            for (int d = 0; d < q->in[i].n; d++)
                if (q->in[i].label[d] < EIN_LETTERS) count[q->in[i].label[d]]++;
        q->out.n = 0;
        for (int d = 0; d < q->ell; d++) q->out.label[q->out.n++] = EIN_LETTERS + d;
        for (int c = 26; c < 52; c++)   /* 'A'-'Z' sort before 'a'-'z' */
            if (count[c] == 1 && q->out.n < TS_MAX_DIMS) q->out.label[q->out.n++] = c;
        for (int c = 0; c < 26; c++)
            if (count[c] == 1 && q->out.n < TS_MAX_DIMS) q->out.label[q->out.n++] = c;
    }
    for (int d = 0; d < q->out.n; d++) {
        bool seen = false;
        for (int e = 0; e < d; e++)
            if (q->out.label[e] == q->out.label[d]) return ts_fail(TS_ERR_ARG, "Einsum: \"%s\": an output label repeats", eq);
        for (int i = 0; i < n_in && !seen; i++)
            for (int e = 0; e < q->in[i].n && !seen; e++) seen = q->in[i].label[e] == q->out.label[d];
        if (!seen) return ts_fail(TS_ERR_ARG, "Einsum: \"%s\": an output label is in no input", eq);
    }
    return TS_OK;
}

/* ---- the kernel --------------------------------------------------------------------- */

typedef struct ein_op {
    ts_tensor *t;              /* owned */
    ein_term lab;
} ein_op;

static bool has_label(const ein_term *t, int l)
{
    for (int d = 0; d < t->n; d++)
        if (t->label[d] == l) return true;
    return false;
}

/* Takes diagonals of repeated labels (views). */
static ts_status take_diagonals(ein_op *o)
{
    for (int d = 0; d < o->lab.n; d++)
        for (int e = d + 1; e < o->lab.n; e++) {
            if (o->lab.label[d] != o->lab.label[e]) continue;
            ts_tensor *t = o->t;
            if (t->shape[d] != t->shape[e])
                return ts_fail(TS_ERR_ARG, "Einsum: a repeated label has sizes %lld and %lld", (long long)t->shape[d],
                               (long long)t->shape[e]);
            int64_t shape[TS_MAX_DIMS], stride[TS_MAX_DIMS];
            int nd = 0;
            for (int k = 0; k < t->ndim; k++) {
                if (k == e) continue;
                shape[nd] = t->shape[k];
                stride[nd] = t->stride[k] + (k == d ? t->stride[e] : 0);
                nd++;
            }
            ts_tensor *v = ts_tensor_view_of(t, shape, stride, nd, t->offset);
            if (!v) return ts_last_status();
            ts_tensor_release(t);
            o->t = v;
            for (int k = e; k + 1 < o->lab.n; k++) o->lab.label[k] = o->lab.label[k + 1];
            o->lab.n--;
            e--;
        }
    return TS_OK;
}

/* Sums o over the labels `keep` lacks. */
static ts_status sum_unkept(ein_op *o, const bool *keep)
{
    int dims[TS_MAX_DIMS], nd = 0;
    ein_term rest = { 0, { 0 } };
    for (int d = 0; d < o->lab.n; d++) {
        if (keep[o->lab.label[d]]) rest.label[rest.n++] = o->lab.label[d];
        else dims[nd++] = d;
    }
    if (!nd) return TS_OK;
    ts_tensor *s = ts_reduce(TS_SUM, o->t, dims, nd, false);
    if (s) s = ts_narrow_dtype(s, o->t->dtype);
    if (!s) return ts_last_status();
    ts_tensor_release(o->t);
    o->t = s;
    o->lab = rest;
    return TS_OK;
}

/* Permutes o's dims to `order` (labels) and reshapes to the three groups'
 * products; the group sizes come from `size_of` per label. */
static ts_tensor *arrange(const ein_op *o, const int *order, int n, const int64_t *shape3)
{
    int perm[TS_MAX_DIMS];
    for (int i = 0; i < n; i++)
        for (int d = 0; d < o->lab.n; d++)
            if (o->lab.label[d] == order[i]) perm[i] = d;
    ts_tensor *p = ts_permute(o->t, perm, n);
    ts_tensor *r = p ? ts_reshape(p, shape3, 3) : NULL;
    ts_tensor_release(p);
    return r;
}

/* a := a (x) b over their shared labels, keeping the labels in keep. */
static ts_status contract(ein_op *a, ein_op *b, const bool *keep)
{
    int batch[TS_MAX_DIMS], ao[TS_MAX_DIMS], bo[TS_MAX_DIMS], ct[TS_MAX_DIMS];
    int nb = 0, na = 0, nbo = 0, nc = 0;
    int64_t size[EIN_LABELS];
    for (int d = 0; d < a->lab.n; d++) size[a->lab.label[d]] = a->t->shape[d];
    for (int d = 0; d < a->lab.n; d++) {
        int l = a->lab.label[d];
        if (!has_label(&b->lab, l)) ao[na++] = l;
        else if (keep[l]) batch[nb++] = l;
        else ct[nc++] = l;
    }
    for (int d = 0; d < b->lab.n; d++) {
        int l = b->lab.label[d];
        int64_t s = b->t->shape[d];
        if (!has_label(&a->lab, l)) {
            bo[nbo++] = l;
            size[l] = s;
        } else if (size[l] != s && size[l] != 1 && s != 1) {
            return ts_fail(TS_ERR_ARG, "Einsum: a label has sizes %lld and %lld", (long long)size[l], (long long)s);
        } else if (s > size[l]) {
            size[l] = s;
        }
    }
    /* broadcast size-1 dims of shared labels */
    for (int side = 0; side < 2; side++) {
        ein_op *o = side ? b : a;
        int64_t want[TS_MAX_DIMS];
        bool need = false;
        for (int d = 0; d < o->lab.n; d++) {
            want[d] = size[o->lab.label[d]];
            need = need || want[d] != o->t->shape[d];
        }
        if (!need) continue;
        ts_tensor *e = ts_expand(o->t, want, o->lab.n);
        if (!e) return ts_last_status();
        ts_tensor_release(o->t);
        o->t = e;
    }
    int64_t B = 1, M = 1, N = 1, K = 1;
    for (int i = 0; i < nb; i++) B *= size[batch[i]];
    for (int i = 0; i < na; i++) M *= size[ao[i]];
    for (int i = 0; i < nbo; i++) N *= size[bo[i]];
    for (int i = 0; i < nc; i++) K *= size[ct[i]];
    int order_a[TS_MAX_DIMS], order_b[TS_MAX_DIMS], n = 0;
    for (int i = 0; i < nb; i++) order_a[n++] = batch[i];
    for (int i = 0; i < na; i++) order_a[n++] = ao[i];
    for (int i = 0; i < nc; i++) order_a[n++] = ct[i];
    n = 0;
    for (int i = 0; i < nb; i++) order_b[n++] = batch[i];
    for (int i = 0; i < nc; i++) order_b[n++] = ct[i];
    for (int i = 0; i < nbo; i++) order_b[n++] = bo[i];
    ts_tensor *a3 = arrange(a, order_a, nb + na + nc, (int64_t[]){ B, M, K });
    ts_tensor *b3 = a3 ? arrange(b, order_b, nb + nc + nbo, (int64_t[]){ B, K, N }) : NULL;
    ts_tensor *y3 = b3 ? ts_bmm(a3, b3) : NULL;
    ts_tensor_release(a3);
    ts_tensor_release(b3);
    if (!y3) return ts_last_status();
    ein_term lab = { 0, { 0 } };
    int64_t shape[TS_MAX_DIMS];
    for (int i = 0; i < nb; i++) { lab.label[lab.n] = batch[i]; shape[lab.n++] = size[batch[i]]; }
    for (int i = 0; i < na; i++) { lab.label[lab.n] = ao[i]; shape[lab.n++] = size[ao[i]]; }
    for (int i = 0; i < nbo; i++) { lab.label[lab.n] = bo[i]; shape[lab.n++] = size[bo[i]]; }
    if (lab.n > TS_MAX_DIMS) {
        ts_tensor_release(y3);
        return ts_fail(TS_ERR_UNSUPPORTED, "Einsum: an intermediate has more than %d dims", TS_MAX_DIMS);
    }
    ts_tensor *y = ts_reshape(y3, shape, lab.n);
    ts_tensor_release(y3);
    if (!y) return ts_last_status();
    ts_tensor_release(a->t);
    a->t = y;
    a->lab = lab;
    return TS_OK;
}

/* Marks the labels used by the output and by operands [from, n_in). */
static void kept_labels(const ein_eq *q, const ein_op *ops, int from, bool *keep)
{
    memset(keep, 0, sizeof(bool) * EIN_LABELS);
    for (int d = 0; d < q->out.n; d++) keep[q->out.label[d]] = true;
    for (int i = from; i < q->n_in; i++)
        for (int d = 0; d < ops[i].lab.n; d++) keep[ops[i].lab.label[d]] = true;
}

static ts_status k_einsum(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    const char *eq = ts_gnode_string(ctx->node, "equation", NULL);
    if (!eq) return ts_fail(TS_ERR_ARG, "Einsum: the equation attribute is required");
    if (n_in < 1 || n_in > EIN_MAX_IN)
        return ts_fail(TS_ERR_ARG, "Einsum: %d inputs (1 to %d supported)", n_in, EIN_MAX_IN);
    int ranks[EIN_MAX_IN] = { 0 };
    for (int i = 0; i < n_in; i++) {
        if (ts_kernel_need(ctx, in, n_in, i)) return ts_last_status();
        ranks[i] = in[i]->ndim;
    }
    ein_eq q;
    if (parse_eq(eq, ranks, n_in, &q)) return ts_last_status();
    ein_op ops[EIN_MAX_IN];
    ts_status st = TS_OK;
    for (int i = 0; i < n_in; i++) {
        ops[i].t = in[i];
        ts_tensor_retain(in[i]);
        ops[i].lab = q.in[i];
    }
    bool keep[EIN_LABELS];
    for (int i = 0; i < n_in && !st; i++) st = take_diagonals(&ops[i]);
    /* sum what only one operand has and nothing keeps */
    for (int i = 0; i < n_in && !st; i++) {
        memset(keep, 0, sizeof keep);
        for (int d = 0; d < q.out.n; d++) keep[q.out.label[d]] = true;
        for (int j = 0; j < n_in; j++)
            if (j != i)
                for (int d = 0; d < ops[j].lab.n; d++) keep[ops[j].lab.label[d]] = true;
        st = sum_unkept(&ops[i], keep);
    }
    for (int i = 1; i < n_in && !st; i++) {
        kept_labels(&q, ops, i + 1, keep);
        st = contract(&ops[0], &ops[i], keep);
    }
    if (!st) {
        memset(keep, 0, sizeof keep);
        for (int d = 0; d < q.out.n; d++) keep[q.out.label[d]] = true;
        st = sum_unkept(&ops[0], keep);
    }
    ts_tensor *y = NULL;
    if (!st) {
        int perm[TS_MAX_DIMS];
        for (int d = 0; d < q.out.n; d++)
            for (int e = 0; e < ops[0].lab.n; e++)
                if (ops[0].lab.label[e] == q.out.label[d]) perm[d] = e;
        ts_tensor *p = ts_permute(ops[0].t, perm, q.out.n);
        y = p ? ts_contiguous(p) : NULL;
        ts_tensor_release(p);
        if (y) {
            ts_dtype dt = in[0]->dtype;
            for (int i = 1; i < n_in; i++) dt = ts_dtype_promote(dt, in[i]->dtype);
            y = ts_narrow_dtype(y, dt);
        }
        st = y ? TS_OK : ts_last_status();
    }
    for (int i = 0; i < n_in; i++) ts_tensor_release(ops[i].t);
    if (st) return st;
    return nn_out1(out, y);
}

/* ---- inference and FLOPs ------------------------------------------------------------ */

static ts_status infer_einsum(ts_graph *g, const ts_gnode *n, int64_t opset, const ts_gvalue *const *in,
                              ts_gvalue *const *out)
{
    const char *eq = ts_gnode_string(n, "equation", NULL);
    if (!eq) return ts_fail(TS_ERR_ARG, "Einsum: the equation attribute is required");
    int ranks[EIN_MAX_IN] = { 0 };
    ts_dtype dt = TS_DTYPE_UNKNOWN;
    if (n->n_inputs < 1 || n->n_inputs > EIN_MAX_IN)
        return ts_fail(TS_ERR_ARG, "Einsum: %d inputs (1 to %d supported)", n->n_inputs, EIN_MAX_IN);
    for (int i = 0; i < n->n_inputs; i++) {
        if (!in[i]) return ts_fail(TS_ERR_ARG, "Einsum: input %d is missing", i);
        if (in[i]->ndim < 0) {
            ts_gval_set(out[0], in[0]->dtype, TS_RANK_UNKNOWN, NULL);
            return TS_OK;
        }
        ranks[i] = in[i]->ndim;
        if (in[i]->dtype != TS_DTYPE_UNKNOWN) dt = dt == TS_DTYPE_UNKNOWN ? in[i]->dtype : ts_dtype_promote(dt, in[i]->dtype);
    }
    ein_eq q;
    if (parse_eq(eq, ranks, n->n_inputs, &q)) return ts_last_status();
    ts_dim dims[TS_MAX_DIMS];
    for (int d = 0; d < q.out.n; d++) {
        ts_dim best = ts_dim_unknown();
        for (int i = 0; i < q.n_in; i++)
            for (int e = 0; e < q.in[i].n; e++) {
                if (q.in[i].label[e] != q.out.label[d]) continue;
                ts_dim v = in[i]->dims[e];
                if (ts_dim_known(v) && ts_dim_known(best) && v.size != best.size && v.size != 1 && best.size != 1)
                    return ts_fail(TS_ERR_ARG, "Einsum: \"%s\": a label has sizes %lld and %lld", eq,
                                   (long long)best.size, (long long)v.size);
                if (!ts_dim_known(best) && best.sym < 0) best = v;
                else if (ts_dim_known(v) && (!ts_dim_known(best) || best.size == 1)) best = v;
            }
        dims[d] = best;
    }
    ts_gval_set(out[0], dt, q.out.n, dims);
    return TS_OK;
}

/* 2 * (product of the sizes of all labels) per contraction; one operand: the product. */
static double flops_einsum(const ts_gnode *n, const ts_gvalue *const *in, const ts_gvalue *const *out)
{
    const char *eq = ts_gnode_string(n, "equation", NULL);
    int ranks[EIN_MAX_IN] = { 0 };
    if (!eq || n->n_inputs < 1 || n->n_inputs > EIN_MAX_IN) return -1;
    for (int i = 0; i < n->n_inputs; i++) {
        if (!in[i] || !ts_gval_concrete(in[i], NULL)) return -1;
        ranks[i] = in[i]->ndim;
    }
    ein_eq q;
    if (parse_eq(eq, ranks, n->n_inputs, &q)) {
        ts_clear_error();
        return -1;
    }
    int64_t size[EIN_LABELS];
    bool seen[EIN_LABELS] = { false };
    for (int i = 0; i < q.n_in; i++)
        for (int e = 0; e < q.in[i].n; e++) {
            int l = q.in[i].label[e];
            int64_t s = in[i]->dims[e].size;
            if (!seen[l] || s > size[l]) size[l] = s;
            seen[l] = true;
        }
    double all = 1;
    for (int l = 0; l < EIN_LABELS; l++)
        if (seen[l]) all *= (double)size[l];
    return q.n_in > 1 ? 2.0 * all * (q.n_in - 1) : all;
}

void ts_nn_register_einsum_ops(void)
{
    ts_op_def d = { "Einsum", "", k_einsum, infer_einsum, flops_einsum, true, NULL, NULL };
    ts_op_register(&d);
}
