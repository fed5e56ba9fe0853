/* engine.c — the autograd machinery: grad mode, per-tensor autograd data,
 * nodes and edges, the backward walk, and gradient helpers. The backward
 * functions of individual ops live in backward_*.c. */
#include "internal.h"
#include "torsh/autograd.h"
#include "torsh/prof_hook.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local int grad_disabled;

bool ts_grad_enabled(void) { return !grad_disabled; }

bool ts_set_grad_enabled(bool on)
{
    bool prev = !grad_disabled;
    grad_disabled = !on;
    return prev;
}

/* ---- tensor side ----------------------------------------------------------- */

static struct ts_autograd_meta *meta_of(ts_tensor *t)
{
    if (!t->ag) t->ag = calloc(1, sizeof *t->ag);
    return t->ag;
}

void ts_autograd_meta_free(struct ts_autograd_meta *m)
{
    if (!m) return;
    ts_tensor_release(m->grad);
    ts_node_release(m->grad_fn);
    free(m);
}

bool ts_requires_grad(const ts_tensor *t) { return t->ag && t->ag->requires_grad; }
bool ts_is_leaf(const ts_tensor *t) { return !t->ag || !t->ag->grad_fn; }
const char *ts_grad_fn_name(const ts_tensor *t) { return t->ag && t->ag->grad_fn ? t->ag->grad_fn->name : NULL; }

ts_status ts_requires_grad_(ts_tensor *t, bool on)
{
    if (!ts_is_leaf(t))
        return ts_fail(TS_ERR_ARG, "requires_grad_: only leaf tensors can change requires_grad (this one comes from %s); use detach()",
                       t->ag->grad_fn->name);
    if (on && !ts_dtype_is_float(t->dtype))
        return ts_fail(TS_ERR_ARG, "requires_grad_: only floating point tensors can require gradients, got %s", ts_dtype_name(t->dtype));
    if (!on && !t->ag) return TS_OK;
    struct ts_autograd_meta *m = meta_of(t);
    if (!m) return ts_fail(TS_ERR_MEMORY, "out of memory");
    m->requires_grad = on;
    return TS_OK;
}

ts_tensor *ts_grad(const ts_tensor *t)
{
    if (!t->ag || !t->ag->grad) return NULL;
    ts_tensor_retain(t->ag->grad);
    return t->ag->grad;
}

ts_status ts_set_grad(ts_tensor *t, ts_tensor *g)
{
    if (g) {
        if (g->ndim != t->ndim || memcmp(g->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim) != 0) {
            char a[TS_SHAPE_STR_CAP], b[TS_SHAPE_STR_CAP];
            return ts_fail(TS_ERR_ARG, "set grad: gradient shape %s does not match tensor shape %s",
                           ts_shape_str(g->shape, g->ndim, a, sizeof a), ts_shape_str(t->shape, t->ndim, b, sizeof b));
        }
    }
    if (!g && !t->ag) return TS_OK;
    struct ts_autograd_meta *m = meta_of(t);
    if (!m) return ts_fail(TS_ERR_MEMORY, "out of memory");
    if (g) ts_tensor_retain(g);
    ts_tensor_release(m->grad);
    m->grad = g;
    return TS_OK;
}

ts_tensor *ts_detach(const ts_tensor *t)
{
    return ts_tensor_view_of(t, t->shape, t->stride, t->ndim, t->offset);
}

/* ---- nodes --------------------------------------------------------------------- */

bool ts_ag_needed(int n, const ts_tensor *const *ts)
{
    if (grad_disabled) return false;
    for (int i = 0; i < n; i++)
        if (ts[i] && ts[i]->ag && ts[i]->ag->requires_grad) return true;
    return false;
}

ts_node *ts_node_new(const char *name, ts_backward_fn fn, int n_in, const ts_tensor *const *inputs, int n_out)
{
    if (n_in > TS_NODE_MAX_INPUTS || n_out > TS_NODE_MAX_OUTPUTS)
        return ts_fail_null(TS_ERR_INTERNAL, "%s: too many inputs/outputs for a node", name);
    ts_node *n = calloc(1, sizeof *n);
    if (!n) return ts_fail_null(TS_ERR_MEMORY, "out of memory (autograd node)");
    n->refcount = 1;
    n->name = name;
    n->backward = fn;
    n->n_in = n_in;
    n->n_out = n_out;
    for (int i = 0; i < n_in; i++) {
        const ts_tensor *t = inputs[i];
        if (!t) continue;
        n->in_ndim[i] = t->ndim;
        memcpy(n->in_shape[i], t->shape, sizeof(int64_t) * (size_t)t->ndim);
        n->in_dtype[i] = t->dtype;
        if (!t->ag || !t->ag->requires_grad) continue;
        if (t->ag->grad_fn) {
            n->next[i].node = t->ag->grad_fn;
            __atomic_add_fetch(&t->ag->grad_fn->refcount, 1, __ATOMIC_RELAXED);
            n->next[i].output_nr = t->ag->output_nr;
        } else {
            n->next[i].leaf = (ts_tensor *)t;
            ts_tensor_retain((ts_tensor *)t);
        }
    }
    return n;
}

ts_status ts_node_save(ts_node *n, int k, const ts_tensor *t)
{
    if (!t) return TS_OK;
    ts_tensor *alias = ts_detach(t);
    if (!alias) return ts_last_status();
    ts_tensor_release(n->saved[k]);
    n->saved[k] = alias;
    return TS_OK;
}

ts_status ts_node_attach(ts_node *n, ts_tensor *out, int k)
{
    struct ts_autograd_meta *m = meta_of(out);
    if (!m) return ts_fail(TS_ERR_MEMORY, "out of memory");
    m->requires_grad = true;
    __atomic_add_fetch(&n->refcount, 1, __ATOMIC_RELAXED);
    ts_node_release(m->grad_fn);
    m->grad_fn = n;
    m->output_nr = k;
    return TS_OK;
}

static void free_saved(ts_node *n)
{
    for (int k = 0; k < TS_NODE_MAX_SAVED; k++) {
        ts_tensor_release(n->saved[k]);
        n->saved[k] = NULL;
    }
}

void ts_node_release(ts_node *n)
{
    /* iterative over the chain of single-owner nodes, so a long graph (an
     * RNN unrolled 10^5 steps) does not overflow the C stack */
    while (n) {
        if (__atomic_sub_fetch(&n->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
        free_saved(n);
        ts_node *follow = NULL;
        for (int i = 0; i < n->n_in; i++) {
            ts_tensor_release(n->next[i].leaf);
            if (!n->next[i].node) continue;
            if (!follow) follow = n->next[i].node;
            else ts_node_release(n->next[i].node);
        }
        free(n->pending);
        free(n);
        n = follow;
    }
}

/* ---- gradient helpers ---------------------------------------------------------- */

ts_tensor *ts_sum_to_shape(const ts_tensor *g, const int64_t *shape, int ndim)
{
    if (g->ndim == ndim && memcmp(g->shape, shape, sizeof(int64_t) * (size_t)ndim) == 0) {
        ts_tensor_retain((ts_tensor *)g);
        return (ts_tensor *)g;
    }
    int dims[TS_MAX_DIMS], nd = 0;
    int lead = g->ndim - ndim;
    for (int d = 0; d < g->ndim; d++) {
        int td = d - lead;
        if (td < 0 || (shape[td] == 1 && g->shape[d] != 1)) dims[nd++] = d;
    }
    ts_tensor *s = nd ? ts_reduce(TS_SUM, g, dims, nd, true) : (ts_tensor_retain((ts_tensor *)g), (ts_tensor *)g);
    if (!s) return NULL;
    ts_tensor *r = ts_reshape(s, shape, ndim);
    ts_tensor_release(s);
    return r;
}

/* ---- the backward walk ------------------------------------------------------- */

typedef struct { ts_node **items; int n, cap; } node_list;

static bool list_push(node_list *l, ts_node *n)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        ts_node **p = realloc(l->items, sizeof *p * (size_t)cap);
        if (!p) return false;
        l->items = p;
        l->cap = cap;
    }
    l->items[l->n++] = n;
    return true;
}

/* Collects every node reachable from root and counts, for each, how many
 * edges of reachable nodes point at it (deps). Iterative DFS. */
static ts_status collect(ts_node *root, node_list *all)
{
    node_list stack = {0};
    root->deps = 0;
    root->pending = NULL;
    if (!list_push(all, root) || !list_push(&stack, root)) goto oom;
    /* mark visited by a non-NULL pending pointer set below */
    root->pending = calloc((size_t)root->n_out, sizeof(ts_tensor *));
    if (!root->pending) goto oom;
    while (stack.n) {
        ts_node *n = stack.items[--stack.n];
        for (int i = 0; i < n->n_in; i++) {
            ts_node *m = n->next[i].node;
            if (!m) continue;
            if (!m->pending) {
                m->deps = 0;
                m->pending = calloc((size_t)m->n_out, sizeof(ts_tensor *));
                if (!m->pending || !list_push(all, m) || !list_push(&stack, m)) goto oom;
            }
            m->deps++;
        }
    }
    free(stack.items);
    return TS_OK;
oom:
    free(stack.items);
    return ts_fail(TS_ERR_MEMORY, "backward: out of memory walking the graph");
}

/* dst += g (dst may be NULL: becomes g). Takes ownership of g. */
static ts_status accumulate(ts_tensor **dst, ts_tensor *g)
{
    if (!*dst) { *dst = g; return TS_OK; }
    ts_tensor *s = ts_binary(TS_ADD, *dst, g);
    ts_tensor_release(g);
    if (!s) return ts_last_status();
    ts_tensor_release(*dst);
    *dst = s;
    return TS_OK;
}

static ts_status accumulate_leaf(ts_tensor *leaf, ts_tensor *g)
{
    struct ts_autograd_meta *m = meta_of(leaf);
    if (!m) { ts_tensor_release(g); return ts_fail(TS_ERR_MEMORY, "out of memory"); }
    if (g->dtype != leaf->dtype) {
        ts_tensor *c = ts_to_dtype(g, leaf->dtype);
        ts_tensor_release(g);
        if (!c) return ts_last_status();
        g = c;
    }
    if (!m->grad) {
        /* own a contiguous buffer so later in-place accumulation is safe */
        ts_tensor *c = ts_contiguous(g);
        ts_tensor_release(g);
        if (!c) return ts_last_status();
        if (c->storage->refcount > 1) {
            ts_tensor *cl = ts_clone(c);
            ts_tensor_release(c);
            if (!cl) return ts_last_status();
            c = cl;
        }
        m->grad = c;
        return TS_OK;
    }
    ts_status st = ts_binary_(TS_ADD, m->grad, g);
    ts_tensor_release(g);
    return st;
}

ts_status ts_backward(ts_tensor *root, const ts_tensor *grad, bool retain_graph)
{
    if (!ts_requires_grad(root))
        return ts_fail(TS_ERR_ARG, "backward: the tensor does not require grad and has no grad_fn");
    ts_tensor *g0;
    if (grad) {
        if (grad->ndim != root->ndim || memcmp(grad->shape, root->shape, sizeof(int64_t) * (size_t)root->ndim)) {
            char a[TS_SHAPE_STR_CAP], b[TS_SHAPE_STR_CAP];
            return ts_fail(TS_ERR_ARG, "backward: gradient of shape %s given for a tensor of shape %s",
                           ts_shape_str(grad->shape, grad->ndim, a, sizeof a), ts_shape_str(root->shape, root->ndim, b, sizeof b));
        }
        /* the walk never writes into gradients it was given (accumulate builds
         * new tensors; leaves get their own buffer), so the caller's can be shared */
        if (grad->dtype == root->dtype) { ts_tensor_retain((ts_tensor *)grad); g0 = (ts_tensor *)grad; }
        else g0 = ts_to_dtype(grad, root->dtype);
    } else {
        if (ts_tensor_numel(root) != 1) {
            char a[TS_SHAPE_STR_CAP];
            return ts_fail(TS_ERR_ARG, "backward: grad can be implicitly created only for one-element outputs (got shape %s); pass a gradient",
                           ts_shape_str(root->shape, root->ndim, a, sizeof a));
        }
        g0 = ts_tensor_full(root->shape, root->ndim, root->dtype, 1.0);
    }
    if (!g0) return ts_last_status();
    bool prev = ts_set_grad_enabled(false);
    ts_status st = TS_OK;
    if (!root->ag->grad_fn) {                       /* the root is itself a leaf */
        st = accumulate_leaf(root, g0);
        ts_set_grad_enabled(prev);
        return st;
    }
    ts_node *top = root->ag->grad_fn;
    node_list all = {0};
    node_list ready = {0};
    st = collect(top, &all);
    if (!st) {
        top->pending[root->ag->output_nr] = g0;
        g0 = NULL;
        if (!list_push(&ready, top)) st = ts_fail(TS_ERR_MEMORY, "backward: out of memory");
    }
    while (!st && ready.n) {
        ts_node *n = ready.items[--ready.n];
        if (n->released) {
            st = ts_fail(TS_ERR_ARG, "backward: trying to backward through %s a second time; its saved tensors were "
                         "freed (pass retain_graph=true to the first backward)", n->name);
            break;
        }
        ts_tensor *grad_in[TS_NODE_MAX_INPUTS] = {0};
        bool any = false;
        for (int k = 0; k < n->n_out; k++) any = any || n->pending[k];
        if (any) {   /* else no gradient reached it */
            /* one profiler event per backward node ("mul_backward"), nested in the
               Lua-level backward() event; a NULL test when no profiler runs */
            void *tok = NULL;
            if (ts_prof_active_hooks) {
                char name[80];     /* "matmul_backward": apart from the forward op's events */
                snprintf(name, sizeof name, "%s_backward", n->name);
                tok = TS_PROF_BEGIN(TS_PROF_OP, name, "backward", n->pending, n->n_out);
            }
            st = n->backward(n, n->pending, grad_in);
            TS_PROF_END(tok, grad_in, n->n_in);
        }
        if (st) {
            for (int i = 0; i < n->n_in; i++) ts_tensor_release(grad_in[i]);
            break;
        }
        for (int k = 0; k < n->n_out; k++) { ts_tensor_release(n->pending[k]); n->pending[k] = NULL; }
        if (!retain_graph) { free_saved(n); n->released = true; }
        for (int i = 0; i < n->n_in && !st; i++) {
            ts_edge *e = &n->next[i];
            ts_tensor *g = grad_in[i];
            grad_in[i] = NULL;
            if (e->node) {
                if (g) st = accumulate(&e->node->pending[e->output_nr], g);
                if (--e->node->deps == 0 && !list_push(&ready, e->node)) st = ts_fail(TS_ERR_MEMORY, "backward: out of memory");
            } else if (e->leaf && g) {
                st = accumulate_leaf(e->leaf, g);
            } else {
                ts_tensor_release(g);
            }
        }
        for (int i = 0; i < n->n_in; i++) ts_tensor_release(grad_in[i]);
    }
    for (int k = 0; k < all.n; k++) {
        ts_node *n = all.items[k];
        if (n->pending)
            for (int j = 0; j < n->n_out; j++) ts_tensor_release(n->pending[j]);
        free(n->pending);
        n->pending = NULL;
    }
    ts_tensor_release(g0);
    free(all.items);
    free(ready.items);
    ts_set_grad_enabled(prev);
    return st;
}

/* ---- gradcheck ---------------------------------------------------------------- */

/* sum(fn(inputs) * w) as a double, with grad mode as set by the caller */
static double weighted_out(ts_gradcheck_fn fn, void *ctx, ts_tensor *const *in, int n, const ts_tensor *w, ts_status *st)
{
    ts_tensor *y = fn(in, n, ctx);
    if (!y) { *st = ts_last_status(); return 0; }
    double s = 0;
    for (int64_t i = 0; i < ts_tensor_numel(y); i++) s += ts_tensor_item_at(y, i) * ts_tensor_item_at(w, i);
    ts_tensor_release(y);
    return s;
}

ts_status ts_gradcheck(ts_gradcheck_fn fn, void *ctx, ts_tensor *const *inputs, int n, double eps, double atol, double rtol)
{
    /* analytic: backward of sum(y * w) with fixed pseudo-random w */
    ts_tensor *y = fn(inputs, n, ctx);
    if (!y) return ts_last_status();
    ts_tensor *w = ts_tensor_new(y->shape, y->ndim, y->dtype);
    if (!w) { ts_tensor_release(y); return ts_last_status(); }
    for (int64_t i = 0; i < ts_tensor_numel(w); i++)
        ts_store_f64(ts_tensor_data(w), w->dtype, i, 0.5 + 0.25 * sin((double)i * 1.7 + 0.3));
    for (int k = 0; k < n; k++) ts_set_grad(inputs[k], NULL);
    ts_status st = ts_requires_grad(y) ? ts_backward(y, w, false) : ts_fail(TS_ERR_ARG, "gradcheck: output does not require grad");
    ts_tensor_release(y);
    if (st) { ts_tensor_release(w); return st; }
    bool prev = ts_set_grad_enabled(false);
    double worst = 0;
    char where[256] = "";
    for (int k = 0; k < n && !st; k++) {
        ts_tensor *x = inputs[k];
        if (!ts_requires_grad(x)) continue;
        if (!ts_tensor_is_contiguous(x) || x->storage->readonly) { st = ts_fail(TS_ERR_ARG, "gradcheck: inputs must be contiguous and writable"); break; }
        ts_tensor *ga = ts_grad(x);
        for (int64_t i = 0; i < ts_tensor_numel(x) && !st; i++) {
            double *px = (double *)NULL;
            double orig = ts_load_f64(ts_tensor_data(x), x->dtype, i);
            (void)px;
            ts_store_f64(ts_tensor_data(x), x->dtype, i, orig + eps);
            double fp = weighted_out(fn, ctx, inputs, n, w, &st);
            ts_store_f64(ts_tensor_data(x), x->dtype, i, orig - eps);
            double fm = weighted_out(fn, ctx, inputs, n, w, &st);
            ts_store_f64(ts_tensor_data(x), x->dtype, i, orig);
            double numeric = (fp - fm) / (2 * eps);
            double analytic = ga ? ts_tensor_item_at(ga, i) : 0;
            double err = fabs(numeric - analytic);
            if (err > atol + rtol * fabs(numeric) && err > worst) {
                worst = err;
                snprintf(where, sizeof where, "input %d element %lld: analytic %.8g vs numeric %.8g", k, (long long)i, analytic, numeric);
            }
        }
        ts_tensor_release(ga);
    }
    ts_set_grad_enabled(prev);
    ts_tensor_release(w);
    if (st) return st;
    if (worst > 0) return ts_fail(TS_ERR_ARG, "gradcheck failed: %s", where);
    return TS_OK;
}
