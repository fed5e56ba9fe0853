/* ops_nn_fuse.c — inference passes over a graph, for speed:
 *
 *   ts_graph_fold_conv_bn(g): Conv -> BatchNormalization (inference), where
 *     the Conv's output feeds only the BN and W, the Conv bias and the BN's
 *     four parameters are constants, becomes one Conv with new constant
 *     weights W' = W * s and bias b' = (b - mean) * s + beta, s = scale /
 *     sqrt(var + eps) per output channel (computed in double, stored in W's
 *     dtype). The BN node and what only it used are pruned.
 *   ts_graph_fuse_conv_act(g): Conv -> Relu / LeakyRelu / Sigmoid / Tanh /
 *     Clip (constant bounds), and Conv -> Add(., Z) -> Relu (ResNet's residual
 *     join, Z shaped like the Conv's output), where each intermediate value
 *     feeds only the next node, become one com.microsoft FusedConv node (the
 *     op ONNX Runtime's optimiser makes: activation(conv(X, W, B) + Z), with
 *     the activation and its activation_params as attributes); the graph
 *     gets the com.microsoft opset 1 import so an exported model still
 *     loads in ONNX Runtime;
 *   ts_graph_prepack_winograd(g): Conv / FusedConv (activation none or Relu)
 *     with a constant f32 3x3 weight of at least 16 in and out channels,
 *     group 1, stride 1, dilation 1, on an f32 input, becomes ai.torsh's
 *     WinogradConv (ops_nn_wino.c) reading the transformed weights U [16,
 *     K, C] (a new constant, not an initializer: 16/9 of the weight's size)
 *     instead of W. The graph then needs torsh to run (the opset import
 *     ai.torsh 1 is added): optimise a clone for running, export the
 *     original.
 *   ts_graph_optimize_nn(g): the three in that order.
 *
 * All keep every graph output's name, value id order aside: they end with
 * ts_graph_prune (which drops every node no output depends on, and unused
 * constants, renumbering ids) and ts_graph_toposort. Run them after
 * ts_graph_infer (the Add fusion checks shapes), count parameters before
 * folding (the BN statistics disappear), and infer again afterwards. FLOPs
 * of the convolutions do not change (bias, Z and activation are not
 * counted, and WinogradConv reports the FLOPs of the convolution it
 * replaces); the folded BNs' and fused activations' FLOPs go away.
 * Uses the graph's internal layout (graph_internal.h) to rewire nodes. */
#include "graph_internal.h"
#include "ops_nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Number of node input slots reading each value, plus 1000000 per graph
 * output listing it (so "read once and not an output" is readers == 1). */
static int *count_readers(const ts_graph *g)
{
    int *r = calloc((size_t)g->n_values + 1, sizeof(int));
    if (!r) return ts_fail_null(TS_ERR_MEMORY, "graph pass: out of memory");
    for (int k = 0; k < g->n_nodes; k++)
        for (int i = 0; i < g->nodes[k].n_inputs; i++)
            if (g->nodes[k].inputs[i] >= 0) r[g->nodes[k].inputs[i]]++;
    for (int i = 0; i < g->n_outputs; i++) r[g->outputs[i]] += 1000000;
    return r;
}

/* The one node reading value v (readers[v] == 1), or -1; *slot gets the input index. */
static int sole_reader(const ts_graph *g, const int *readers, int v, int *slot)
{
    if (v < 0 || readers[v] != 1) return -1;
    for (int k = 0; k < g->n_nodes; k++)
        for (int i = 0; i < g->nodes[k].n_inputs; i++)
            if (g->nodes[k].inputs[i] == v) {
                if (slot) *slot = i;
                return k;
            }
    return -1;
}

static bool is_op(const ts_gnode *n, const char *op_type) { return !strcmp(n->op_type, op_type) && !*n->domain; }

/* A new constant value named after `base` (made unique) holding t (an
 * initializer); -1 on failure. */
static int new_const(ts_graph *g, const char *base, const char *suffix, ts_tensor *t)
{
    char name[512];
    snprintf(name, sizeof name, "%s%s", base, suffix);
    for (int i = 1; ts_graph_find_value(g, name) >= 0; i++) snprintf(name, sizeof name, "%s%s_%d", base, suffix, i);
    int v = ts_graph_value(g, name);
    if (v < 0 || ts_graph_set_const(g, v, t, true)) return -1;
    return v;
}

/* Grows node k's input list to n entries (new ones omitted: -1). */
static ts_status grow_inputs(ts_graph *g, int k, int n)
{
    ts_gnode *nd = &g->nodes[k];
    if (nd->n_inputs >= n) return TS_OK;
    int *p = realloc(nd->inputs, (size_t)n * sizeof(int));
    if (!p) return ts_fail(TS_ERR_MEMORY, "graph pass: out of memory");
    for (int i = nd->n_inputs; i < n; i++) p[i] = -1;
    nd->inputs = p;
    nd->n_inputs = n;
    return TS_OK;
}

/* Makes node `from`'s output 0 the output of node `to` (whose own output 0
 * is dropped), detaching `from` so prune removes it. */
static void take_output(ts_graph *g, int to, int from)
{
    int old = g->nodes[to].outputs[0], v = g->nodes[from].outputs[0];
    g->nodes[to].outputs[0] = v;
    g->values[v].producer = to;
    g->nodes[from].outputs[0] = -1;
    if (old >= 0) g->values[old].producer = -1;
}

static ts_status finish(ts_graph *g, int changed)
{
    if (!changed) return TS_OK;
    if (ts_graph_prune(g)) return ts_last_status();
    return ts_graph_toposort(g);
}

/* ---- Conv + BatchNormalization ------------------------------------------------------------- */

/* The constant of value v when the passes may bake it in: a constant that is
 * also a graph input is only a default the caller may override. */
static ts_tensor *fixed_const(const ts_graph *g, int v)
{
    if (v < 0 || !g->values[v].constant) return NULL;
    for (int i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] == v) return NULL;
    return g->values[v].constant;
}

/* The f64 values of constant value v when it holds exactly n floating elements, else NULL. */
static ts_tensor *const_f64(const ts_graph *g, int v, int64_t n)
{
    ts_tensor *t = fixed_const(g, v);
    if (!t) return NULL;
    if (!ts_dtype_is_float(t->dtype) || ts_tensor_numel(t) != n) return NULL;
    return ts_to_dtype(t, TS_F64);
}

/* Folds BN node b into the Conv node c; 1 when done, 0 when it does not apply, -1 on error. */
static int fold_one(ts_graph *g, int c, int b)
{
    const ts_gnode *cn = &g->nodes[c], *bn = &g->nodes[b];
    if (bn->n_inputs < 5 || ts_gnode_int(bn, "training_mode", 0) || cn->n_inputs < 2) return 0;
    for (int o = 1; o < bn->n_outputs; o++)
        if (bn->outputs[o] >= 0) return 0;
    int wv = cn->inputs[1], cbv = cn->n_inputs > 2 ? cn->inputs[2] : -1;
    ts_tensor *w = fixed_const(g, wv);
    if (!w || !ts_dtype_is_float(w->dtype) || w->ndim < 3 || (cbv >= 0 && !fixed_const(g, cbv))) return 0;
    int64_t ch = w->shape[0], per = ch ? ts_tensor_numel(w) / ch : 0;
    double eps = ts_gnode_float(bn, "epsilon", 1e-5);
    ts_tensor *scale = const_f64(g, bn->inputs[1], ch), *beta = const_f64(g, bn->inputs[2], ch);
    ts_tensor *mean = const_f64(g, bn->inputs[3], ch), *var = const_f64(g, bn->inputs[4], ch);
    ts_tensor *cb = cbv >= 0 ? const_f64(g, cbv, ch) : NULL;
    ts_tensor *wd = ts_to_dtype(w, TS_F64), *bd = ts_tensor_zeros(&ch, 1, TS_F64);
    ts_tensor *wn = NULL, *bnew = NULL;
    int result = 0;
    if (!scale || !beta || !mean || !var || (cbv >= 0 && !cb) || !wd || !bd) goto done;
    const double *s = ts_tensor_data(scale), *be = ts_tensor_data(beta), *m = ts_tensor_data(mean);
    const double *va = ts_tensor_data(var), *b0 = cb ? ts_tensor_data(cb) : NULL;
    double *wp = ts_tensor_data(wd), *bp = ts_tensor_data(bd);
    for (int64_t o = 0; o < ch; o++) {
        double f = s[o] / sqrt(va[o] + eps);
        for (int64_t i = 0; i < per; i++) wp[o * per + i] *= f;
        bp[o] = ((b0 ? b0[o] : 0.0) - m[o]) * f + be[o];
    }
    result = -1;
    if (!(wn = ts_to_dtype(wd, w->dtype)) || !(bnew = ts_to_dtype(bd, w->dtype))) goto done;
    char base[400];
    snprintf(base, sizeof base, "%s", cn->name);
    int nw = new_const(g, base, ".weight_bn", wn), nb = nw >= 0 ? new_const(g, base, ".bias_bn", bnew) : -1;
    if (nb < 0 || grow_inputs(g, c, 3)) goto done;
    g->nodes[c].inputs[1] = nw;
    g->nodes[c].inputs[2] = nb;
    take_output(g, c, b);
    result = 1;
done:
    ts_tensor_release(scale);
    ts_tensor_release(beta);
    ts_tensor_release(mean);
    ts_tensor_release(var);
    ts_tensor_release(cb);
    ts_tensor_release(wd);
    ts_tensor_release(bd);
    ts_tensor_release(wn);
    ts_tensor_release(bnew);
    return result;
}

ts_status ts_graph_fold_conv_bn(ts_graph *g)
{
    if (!g) return ts_fail(TS_ERR_ARG, "fold_conv_bn: NULL graph");
    int *readers = count_readers(g), changed = 0;
    if (!readers) return ts_last_status();
    for (int c = 0; c < g->n_nodes; c++) {
        if (!is_op(&g->nodes[c], "Conv") || g->nodes[c].n_outputs != 1) continue;
        int b = sole_reader(g, readers, g->nodes[c].outputs[0], NULL);
        if (b < 0 || !is_op(&g->nodes[b], "BatchNormalization") || g->nodes[b].inputs[0] != g->nodes[c].outputs[0])
            continue;
        int r = fold_one(g, c, b);
        if (r < 0) {
            free(readers);
            return ts_graph_node_error(&g->nodes[b], ts_last_status());
        }
        changed += r;
    }
    free(readers);
    return finish(g, changed);
}

/* ---- Conv (+ Add) + activation --------------------------------------------------------------- */

/* The activation of node a as FusedConv attributes; false when not fusable. */
static bool activation_of(const ts_graph *g, const ts_gnode *a, const char **name, double *params, int *np)
{
    *np = 0;
    if (*a->domain) return false;
    if (is_op(a, "Relu") || is_op(a, "Sigmoid") || is_op(a, "Tanh")) {
        *name = a->op_type;
        return nn_fused_activation_ok(*name);
    }
    if (is_op(a, "LeakyRelu")) {
        *name = "LeakyRelu";
        params[(*np)++] = ts_gnode_float(a, "alpha", 0.01);
        return true;
    }
    if (!is_op(a, "Clip")) return false;
    int64_t opset = ts_graph_opset(g, "");
    double lo = -INFINITY, hi = INFINITY;
    if (opset > 0 && opset < 11) {
        lo = ts_gnode_float(a, "min", -INFINITY);
        hi = ts_gnode_float(a, "max", INFINITY);
    } else {
        for (int i = 1; i < 3 && i < a->n_inputs; i++) {
            int v = a->inputs[i];
            if (v < 0) continue;
            if (!fixed_const(g, v) || ts_tensor_numel(g->values[v].constant) != 1) return false;
            double x = ts_tensor_item_at(g->values[v].constant, 0);
            if (i == 1) lo = x;
            else hi = x;
        }
    }
    *name = "Clip";
    if (!nn_fused_activation_ok(*name)) return false;
    params[0] = lo;
    params[1] = hi;
    *np = 2;
    return true;
}

/* Same dtype and the same known dims (sizes or symbols). */
static bool same_info(const ts_gvalue *a, const ts_gvalue *b)
{
    if (a->dtype == TS_DTYPE_UNKNOWN || a->dtype != b->dtype || a->ndim < 0 || a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (!ts_dim_eq(a->dims[i], b->dims[i])) return false;
    return true;
}

/* Rewrites Conv node c into FusedConv reading Z (or -1) with activation
 * `act`, taking over the output of node `last`. */
static ts_status make_fused(ts_graph *g, int c, int z, int last, const char *act, const double *params, int np)
{
    ts_gnode *cn = &g->nodes[c];
    char *op = ts_graph_strdup("FusedConv"), *dom = ts_graph_strdup("com.microsoft");
    if (!op || !dom) {
        free(op);
        free(dom);
        return ts_fail(TS_ERR_MEMORY, "fuse_conv_act: out of memory");
    }
    free(cn->op_type);
    free(cn->domain);
    cn->op_type = op;
    cn->domain = dom;
    if (z >= 0) {
        if (grow_inputs(g, c, 4)) return ts_last_status();
        g->nodes[c].inputs[3] = z;
    }
    if (ts_gnode_set_string(g, c, "activation", act, strlen(act))) return ts_last_status();
    if (np && ts_gnode_set_floats(g, c, "activation_params", params, np)) return ts_last_status();
    take_output(g, c, last);
    return TS_OK;
}

ts_status ts_graph_fuse_conv_act(ts_graph *g)
{
    if (!g) return ts_fail(TS_ERR_ARG, "fuse_conv_act: NULL graph");
    int *readers = count_readers(g), changed = 0;
    if (!readers) return ts_last_status();
    ts_status st = TS_OK;
    for (int c = 0; c < g->n_nodes && !st; c++) {
        if (!is_op(&g->nodes[c], "Conv") || g->nodes[c].n_outputs != 1) continue;
        int y = g->nodes[c].outputs[0], slot = 0;
        int r = sole_reader(g, readers, y, &slot), z = -1;
        if (r < 0) continue;
        if (is_op(&g->nodes[r], "Add") && g->nodes[r].n_inputs == 2 && g->nodes[r].n_outputs == 1) {
            z = g->nodes[r].inputs[1 - slot];
            if (z < 0 || z == y || !same_info(&g->values[z], &g->values[y])) continue;
            int a = sole_reader(g, readers, g->nodes[r].outputs[0], NULL);
            if (a < 0 || !is_op(&g->nodes[a], "Relu")) continue;
            st = make_fused(g, c, z, a, "Relu", NULL, 0);
            /* the Add is dead now: detach it so no later match finds it reading Z */
            g->nodes[r].inputs[0] = g->nodes[r].inputs[1] = -1;
            changed++;
            continue;
        }
        const char *act;
        double params[2];
        int np;
        if (g->nodes[r].n_outputs != 1 || g->nodes[r].inputs[0] != y || !activation_of(g, &g->nodes[r], &act, params, &np))
            continue;
        st = make_fused(g, c, -1, r, act, params, np);
        changed++;
    }
    free(readers);
    if (st) return st;
    if (changed && ts_graph_opset(g, "com.microsoft") == 0 && ts_graph_set_opset(g, "com.microsoft", 1))
        return ts_last_status();
    return finish(g, changed);
}

/* ---- Winograd prepacking ------------------------------------------------------------------------ */

/* True when INTS attribute `name` is absent or all `want`. */
static bool ints_all(const ts_gnode *n, const char *name, int64_t want)
{
    int64_t k = 0;
    const int64_t *v = ts_gnode_ints(n, name, &k);
    for (int64_t i = 0; v && i < k; i++)
        if (v[i] != want) return false;
    return true;
}

/* Turns node k into WinogradConv when it qualifies; 1 when done, 0 when not, -1 on error. */
static int prepack_one(ts_graph *g, int k)
{
    const ts_gnode *n = &g->nodes[k];
    bool fused = !strcmp(n->op_type, "FusedConv") && !strcmp(n->domain, "com.microsoft");
    if ((!is_op(n, "Conv") && !fused) || n->n_outputs != 1 || n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0)
        return 0;
    /* a copy: setting the attribute below frees the node's own string */
    const char *act = fused && *ts_gnode_string(n, "activation", "") ? "Relu" : "";
    if (fused && *act && strcmp(ts_gnode_string(n, "activation", ""), "Relu")) return 0;
    const ts_gvalue *xv = &g->values[n->inputs[0]];
    ts_tensor *w = fixed_const(g, n->inputs[1]);
    if (xv->dtype != TS_F32 || xv->ndim != 4 || !w || w->dtype != TS_F32 || w->ndim != 4 || w->shape[2] != 3 ||
        w->shape[3] != 3 || w->shape[0] < 16 || w->shape[1] < 16)
        return 0;
    if (ts_gnode_int(n, "group", 1) != 1 || !ints_all(n, "strides", 1) || !ints_all(n, "dilations", 1)) return 0;
    if (ts_graph_val(g, n->inputs[0])->dims[1].size >= 0 && ts_graph_val(g, n->inputs[0])->dims[1].size != w->shape[1])
        return 0;
    int64_t pads[4] = { 0, 0, 0, 0 }, np = 0;
    const char *ap = ts_gnode_string(n, "auto_pad", "NOTSET");
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
        for (int i = 0; i < 4; i++) pads[i] = 1;   /* stride 1, kernel 3: one on each side whatever the size */
    } else if (strcmp(ap, "VALID")) {
        const int64_t *p = ts_gnode_ints(n, "pads", &np);
        if (p && np != 4) return 0;
        for (int i = 0; p && i < 4; i++) pads[i] = p[i];
    }
    ts_tensor *u = nn_wino_weights(w);
    if (!u) return -1;
    char base[400];
    snprintf(base, sizeof base, "%s", n->name);
    char name[512];
    snprintf(name, sizeof name, "%s.weight_winograd", base);
    for (int i = 1; ts_graph_find_value(g, name) >= 0; i++) snprintf(name, sizeof name, "%s.weight_winograd_%d", base, i);
    int uv = ts_graph_value(g, name);
    ts_status st = uv < 0 ? ts_last_status() : ts_graph_set_const(g, uv, u, false);
    ts_tensor_release(u);
    if (st) return -1;
    char *op = ts_graph_strdup("WinogradConv"), *dom = ts_graph_strdup("ai.torsh");
    if (!op || !dom) {
        free(op);
        free(dom);
        ts_fail(TS_ERR_MEMORY, "prepack_winograd: out of memory");
        return -1;
    }
    ts_gnode *nd = &g->nodes[k];
    free(nd->op_type);
    free(nd->domain);
    nd->op_type = op;
    nd->domain = dom;
    nd->inputs[1] = uv;
    if (ts_gnode_set_ints(g, k, "pads", pads, 4) || ts_gnode_set_string(g, k, "auto_pad", "NOTSET", 6) ||
        ts_gnode_set_string(g, k, "activation", act, strlen(act)))
        return -1;
    return 1;
}

ts_status ts_graph_prepack_winograd(ts_graph *g)
{
    if (!g) return ts_fail(TS_ERR_ARG, "prepack_winograd: NULL graph");
    int changed = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        int r = prepack_one(g, k);
        if (r < 0) return ts_graph_node_error(&g->nodes[k], ts_last_status());
        changed += r;
    }
    if (changed && ts_graph_opset(g, "ai.torsh") == 0 && ts_graph_set_opset(g, "ai.torsh", 1)) return ts_last_status();
    return finish(g, changed);
}

ts_status ts_graph_optimize_nn(ts_graph *g)
{
    if (ts_graph_fold_conv_bn(g) || ts_graph_fuse_conv_act(g) || ts_graph_prepack_winograd(g)) return ts_last_status();
    return TS_OK;
}
