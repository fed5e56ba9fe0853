/* infer.c — dtype/shape inference and constant folding of torsh/graph.h:
 * ts_graph_infer.
 *
 * The walk: bind the given symbols (recorded in the graph, so the executor
 * checks inputs against them), drop constants that earlier folding left on
 * node outputs, then visit the nodes in topological order. Each node's
 * infer fn (from the registry) sets its outputs' infos from its inputs'
 * (graph inputs are seen through copies with the bound symbols replaced by
 * their sizes, so the inputs keep their symbolic infos). A foldable node
 * whose inputs are all constants of at most TS_FOLD_MAX_ELEMS elements and
 * whose outputs are known to be as small is run once with its kernel and
 * its outputs become constants: this is what turns Shape -> Gather ->
 * Concat -> Reshape chains into plain reshapes.
 *
 * Nodes without an infer fn (custom ops) keep whatever infos their outputs
 * had (an importer's value_info), with bound symbols replaced.
 */
#include "graph_internal.h"
#include "ops.h"

#include <stdlib.h>
#include <string.h>

/* Replaces bound symbols of v's dims by their sizes. */
static void bind_dims(const ts_graph *g, ts_gvalue *v)
{
    for (int d = 0; d < v->ndim && d < TS_MAX_DIMS; d++)
        if (v->dims[d].size < 0 && v->dims[d].sym >= 0) {
            int64_t s = ts_graph_symbol_bound(g, v->dims[d].sym);
            if (s >= 0) v->dims[d] = ts_dim_of(s);
        }
}

/* Runs the node's kernel on its constant inputs and stores the outputs as
 * constants when it is foldable and small. */
static ts_status try_fold(ts_graph *g, const ts_gnode *nd, const ts_op_def *def, int64_t opset,
                          const ts_gvalue *const *in, ts_gvalue *const *out)
{
    if (!def->foldable || !def->run) return TS_OK;
    ts_tensor *tin[64], *tout[64];
    if (nd->n_inputs > 64 || nd->n_outputs > 64) return TS_OK;
    bool any_out = false, all_done = true;
    for (int o = 0; o < nd->n_outputs; o++) {
        if (!out[o]) continue;
        any_out = true;
        if (!out[o]->constant) all_done = false;
        int64_t n = ts_gval_numel(out[o]);
        if (n < 0 || n > TS_FOLD_MAX_ELEMS) return TS_OK;
    }
    if (!any_out || all_done) return TS_OK;
    for (int i = 0; i < nd->n_inputs; i++) {
        if (!in[i]) {
            tin[i] = NULL;
            continue;
        }
        if (!in[i]->constant || ts_tensor_numel(in[i]->constant) > TS_FOLD_MAX_ELEMS) return TS_OK;
        tin[i] = in[i]->constant;
    }
    for (int o = 0; o < nd->n_outputs; o++) tout[o] = NULL;
    ts_kernel_ctx ctx = {.graph = g, .node = nd, .opset = opset, .user = def->user};
    ts_status st = def->run(&ctx, tin, nd->n_inputs, tout, nd->n_outputs);
    if (st) {
        for (int o = 0; o < nd->n_outputs; o++) ts_tensor_release(tout[o]);
        return ts_graph_node_error(nd, st);
    }
    for (int o = 0; o < nd->n_outputs; o++) {
        if (!out[o] || !tout[o]) {
            ts_tensor_release(tout[o]);
            continue;
        }
        ts_gval_set_const(out[o], tout[o]);
    }
    return TS_OK;
}

ts_status ts_graph_infer(ts_graph *g, const char *const *sym_names, const int64_t *sizes, int n_bind)
{
    if (!g) return ts_fail(TS_ERR_ARG, "graph_infer: NULL graph");
    if (n_bind < 0 || (n_bind && (!sym_names || !sizes)))
        return ts_fail(TS_ERR_ARG, "graph_infer: bad symbol bindings");
    for (int i = 0; i < n_bind; i++) {
        if (!sym_names[i]) return ts_fail(TS_ERR_ARG, "graph_infer: binding %d has no symbol name", i);
        if (sizes[i] < 0)
            return ts_fail(TS_ERR_ARG, "graph_infer: symbol '%s' bound to a negative size %lld", sym_names[i],
                           (long long)sizes[i]);
    }
    for (int s = 0; s < g->n_syms; s++) g->sym_bound[s] = -1;
    for (int i = 0; i < n_bind; i++)
        for (int s = 0; s < g->n_syms; s++)
            if (strcmp(g->syms[s], sym_names[i]) == 0) g->sym_bound[s] = sizes[i];

    int n_in_max = 1, n_out_max = 1;
    for (int k = 0; k < g->n_nodes; k++) {
        if (g->nodes[k].n_inputs > n_in_max) n_in_max = g->nodes[k].n_inputs;
        if (g->nodes[k].n_outputs > n_out_max) n_out_max = g->nodes[k].n_outputs;
    }
    int *order = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof(int));
    ts_gvalue *shadow = malloc((size_t)(g->n_inputs ? g->n_inputs : 1) * sizeof(ts_gvalue));
    int *shadow_of = malloc((size_t)(g->n_values ? g->n_values : 1) * sizeof(int));
    const ts_gvalue **in = malloc((size_t)n_in_max * sizeof *in);
    ts_gvalue **out = malloc((size_t)n_out_max * sizeof *out);
    ts_status st = TS_OK;
    if (!order || !shadow || !shadow_of || !in || !out) {
        st = ts_fail(TS_ERR_MEMORY, "graph_infer: out of memory");
        goto done;
    }
    st = ts_graph_topo_order(g, order);
    if (st) goto done;
    if (!ts_graph_reset_shape_values(g)) {
        st = ts_fail(TS_ERR_MEMORY, "graph_infer: out of memory");
        goto done;
    }

    for (int v = 0; v < g->n_values; v++) shadow_of[v] = -1;
    for (int i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        shadow[i] = g->values[v];
        shadow[i].constant = NULL;     /* fed at run time: never folded through */
        bind_dims(g, &shadow[i]);
        shadow_of[v] = i;
    }
    /* forget what earlier folding computed */
    for (int v = 0; v < g->n_values; v++) {
        ts_gvalue *gv = &g->values[v];
        if (gv->producer >= 0 && shadow_of[v] < 0 && gv->constant && !gv->is_initializer) {
            ts_tensor_release(gv->constant);
            gv->constant = NULL;
        }
    }

    for (int i = 0; i < g->n_nodes; i++) {
        const ts_gnode *nd = &g->nodes[order[i]];
        const ts_op_def *def = ts_op_find(nd->domain, nd->op_type);
        int64_t opset = ts_graph_opset(g, nd->domain);
        for (int k = 0; k < nd->n_inputs; k++) {
            int v = nd->inputs[k];
            in[k] = v < 0 ? NULL : shadow_of[v] >= 0 ? &shadow[shadow_of[v]] : &g->values[v];
        }
        for (int o = 0; o < nd->n_outputs; o++) {
            int v = nd->outputs[o];
            out[o] = (v < 0 || shadow_of[v] >= 0) ? NULL : &g->values[v];
        }
        if (!def || !def->infer) {
            for (int o = 0; o < nd->n_outputs; o++)
                if (out[o]) bind_dims(g, out[o]);
            continue;
        }
        for (int o = 0; o < nd->n_outputs; o++)
            if (out[o]) {
                if (out[o]->constant && !out[o]->is_initializer) {
                    ts_tensor_release(out[o]->constant);
                    out[o]->constant = NULL;
                }
                ts_gval_set(out[o], TS_DTYPE_UNKNOWN, TS_RANK_UNKNOWN, NULL);
            }
        st = def->infer(g, nd, opset, in, out);
        if (st) {
            st = ts_graph_node_error(nd, st);
            goto done;
        }
        for (int o = 0; o < nd->n_outputs; o++)
            if (out[o] && (out[o]->ndim < TS_RANK_UNKNOWN || out[o]->ndim > TS_MAX_DIMS)) {
                st = ts_fail(TS_ERR_INTERNAL, "node '%s' (%s): inference gave output %d rank %d", nd->name,
                             nd->op_type, o, out[o]->ndim);
                goto done;
            }
        st = try_fold(g, nd, def, opset, in, out);
        if (st) goto done;
    }
done:
    free(order);
    free(shadow);
    free(shadow_of);
    free(in);
    free(out);
    return st;
}

double ts_graph_node_flops(const ts_graph *g, int node)
{
    if (!g || node < 0 || node >= g->n_nodes) return -1;
    const ts_gnode *nd = &g->nodes[node];
    const ts_op_def *def = ts_op_find(nd->domain, nd->op_type);
    if (!def) return -1;
    if (!def->flops) return 0;
    enum { MAX_IO = 64 };
    if (nd->n_inputs > MAX_IO || nd->n_outputs > MAX_IO) return -1;
    const ts_gvalue *in[MAX_IO], *out[MAX_IO];
    ts_gvalue bound[MAX_IO];    /* graph inputs keep their symbols: bind them as inference did */
    for (int k = 0; k < nd->n_inputs; k++) {
        if (nd->inputs[k] < 0) { in[k] = NULL; continue; }
        bound[k] = g->values[nd->inputs[k]];
        bind_dims(g, &bound[k]);
        in[k] = &bound[k];
    }
    for (int o = 0; o < nd->n_outputs; o++) out[o] = nd->outputs[o] < 0 ? NULL : &g->values[nd->outputs[o]];
    return def->flops(nd, in, out);
}
