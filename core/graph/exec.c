/* exec.c — the graph executor of torsh/graph.h: ts_exec_new, ts_exec_run,
 * ts_exec_value, ts_exec_free.
 *
 * Planning (ts_exec_new) does every lookup once: the nodes in topological
 * order, each node's kernel from the registry (all unknown ops are reported
 * together, with the supported list), the value slot of each input, and
 * each value's last reader. Nodes whose outputs are all constants (folded
 * by ts_graph_infer) are skipped, and so are nodes no graph output depends
 * on (unless keep_intermediates). Running is a loop over that plan: gather
 * input tensors, call the kernel between TS_PROF_BEGIN/END, store the
 * outputs, release every value whose last reader just ran so its buffer
 * returns to the allocator's cache for the next node.
 *
 * Ownership: the executor borrows its graph (free the executor first, and
 * do not change the graph while an executor exists); it holds one reference
 * per live slot (graph constants are borrowed from the graph). An executor
 * is used by one thread at a time.
 */
#include "graph_internal.h"
#include "ops.h"
#include "torsh/prof_hook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct exec_step {
    const ts_gnode *node;
    ts_kernel_fn run;
    ts_kernel_ctx ctx;
    int free_off, n_free;   /* values released after this step: e->free_list[free_off ..] */
} exec_step;

struct ts_exec {
    const ts_graph *g;
    ts_exec_options opt;
    exec_step *steps;
    int n_steps;
    int *free_list;
    int *initial_free;      /* graph inputs nobody reads (released at once) */
    int n_initial_free;
    bool *is_const;         /* per value: slot borrowed from the graph */
    ts_tensor **slots;      /* per value */
    ts_tensor **in_buf, **out_buf;
    int max_in, max_out;
    int n_values;
    int64_t *sym_seen;      /* per symbol, scratch of the input check */
    int n_syms;
};

void ts_exec_free(ts_exec *e)
{
    if (!e) return;
    if (e->slots)
        for (int v = 0; v < e->n_values; v++)
            if (!e->is_const[v]) ts_tensor_release(e->slots[v]);
    free(e->steps);
    free(e->free_list);
    free(e->initial_free);
    free(e->is_const);
    free(e->slots);
    free(e->in_buf);
    free(e->out_buf);
    free(e->sym_seen);
    free(e);
}

/* Fails listing every node that would run (run_node) whose op has no kernel. */
static ts_status report_unknown(const ts_graph *g, const int *order, int n, const bool *run_node)
{
    char msg[1000];
    size_t len = 0;
    int count = 0;
    const ts_gnode *first = NULL;
    for (int i = 0; i < n; i++) {
        const ts_gnode *nd = &g->nodes[order[i]];
        if (!run_node[order[i]] || ts_op_find(nd->domain, nd->op_type)) continue;
        if (!first) {
            first = nd;
            len += (size_t)snprintf(msg + len, sizeof msg - len, "node '%s' (%s): no kernel for op %s%s%s", nd->name,
                                    nd->op_type, nd->op_type, *nd->domain ? " in domain " : "", nd->domain);
        } else if (count < 8 && len < sizeof msg) {
            len += (size_t)snprintf(msg + len, sizeof msg - len, "%snode '%s' (%s%s%s)", count == 1 ? "; also " : ", ",
                                    nd->name, *nd->domain ? nd->domain : "", *nd->domain ? "::" : "", nd->op_type);
        }
        count++;
    }
    if (!first) return TS_OK;
    if (count > 8 && len < sizeof msg)
        len += (size_t)snprintf(msg + len, sizeof msg - len, " and %d more", count - 8);
    if (len >= sizeof msg) len = sizeof msg - 1;
    return ts_fail(TS_ERR_UNSUPPORTED, "%s; supported ops: %s", msg, ts_op_list(first->domain));
}

ts_exec *ts_exec_new(const ts_graph *g, const ts_exec_options *opt)
{
    if (!g) return ts_fail_null(TS_ERR_ARG, "exec_new: NULL graph");
    ts_exec *e = calloc(1, sizeof *e);
    int *order = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof(int));
    int *last = malloc((size_t)(g->n_values ? g->n_values : 1) * sizeof(int));
    int *nfree = NULL;
    bool *needed = calloc((size_t)g->n_values + 1, sizeof(bool));
    bool *run_node = calloc((size_t)g->n_nodes + 1, sizeof(bool));
    if (!e || !order || !last || !needed || !run_node) goto oom;
    if (opt) e->opt = *opt;
    e->g = g;
    e->n_values = g->n_values;
    e->n_syms = g->n_syms;
    e->is_const = calloc((size_t)g->n_values + 1, sizeof(bool));
    e->slots = calloc((size_t)g->n_values + 1, sizeof(ts_tensor *));
    e->sym_seen = malloc((size_t)(g->n_syms ? g->n_syms : 1) * sizeof(int64_t));
    if (!e->is_const || !e->slots || !e->sym_seen) goto oom;

    if (ts_graph_topo_order(g, order)) goto fail;
    for (int v = 0; v < g->n_values; v++) {
        e->is_const[v] = g->values[v].constant != NULL;
        if (e->is_const[v]) e->slots[v] = g->values[v].constant;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        e->is_const[v] = false;     /* a graph input is fed by the caller */
        e->slots[v] = NULL;
    }

    /* which nodes run: not folded, and (unless keep_intermediates) needed by an output */
    for (int i = 0; i < g->n_outputs; i++) needed[g->outputs[i]] = true;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const ts_gnode *nd = &g->nodes[order[i]];
        bool all_const = true, any_needed = false;
        for (int o = 0; o < nd->n_outputs; o++) {
            int v = nd->outputs[o];
            if (v < 0) continue;
            if (!e->is_const[v]) all_const = false;
            if (needed[v]) any_needed = true;
        }
        if (all_const && nd->n_outputs > 0) continue;
        if (!any_needed && !e->opt.keep_intermediates) continue;
        run_node[order[i]] = true;
        for (int k = 0; k < nd->n_inputs; k++)
            if (nd->inputs[k] >= 0) needed[nd->inputs[k]] = true;
    }

    if (report_unknown(g, order, g->n_nodes, run_node)) goto fail;

    /* every graph output must be computable */
    for (int i = 0; i < g->n_outputs; i++) {
        int v = g->outputs[i];
        const ts_gvalue *gv = &g->values[v];
        bool fed = e->is_const[v] || gv->producer >= 0;
        for (int k = 0; k < g->n_inputs; k++) fed = fed || g->inputs[k] == v;
        if (!fed) {
            ts_fail(TS_ERR_ARG, "exec_new: graph output '%s' is neither produced by a node, a constant nor a graph input",
                    gv->name);
            goto fail;
        }
    }

    e->steps = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *e->steps);
    if (!e->steps) goto oom;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!run_node[order[i]]) continue;
        const ts_gnode *nd = &g->nodes[order[i]];
        const ts_op_def *def = ts_op_find(nd->domain, nd->op_type);
        exec_step *s = &e->steps[e->n_steps++];
        s->node = nd;
        s->run = def->run;
        s->ctx.graph = g;
        s->ctx.node = nd;
        s->ctx.opset = ts_graph_opset(g, nd->domain);
        s->ctx.user = def->user;
        if (nd->n_inputs > e->max_in) e->max_in = nd->n_inputs;
        if (nd->n_outputs > e->max_out) e->max_out = nd->n_outputs;
    }

    /* last reader of each value; -1: never read. Graph outputs are kept. */
    for (int v = 0; v < g->n_values; v++) last[v] = -1;
    for (int s = 0; s < e->n_steps; s++) {
        const ts_gnode *nd = e->steps[s].node;
        for (int k = 0; k < nd->n_inputs; k++)
            if (nd->inputs[k] >= 0) last[nd->inputs[k]] = s;
        for (int o = 0; o < nd->n_outputs; o++)     /* written but never read: free at once */
            if (nd->outputs[o] >= 0 && last[nd->outputs[o]] < s) last[nd->outputs[o]] = s;
    }
    for (int i = 0; i < g->n_outputs; i++) last[g->outputs[i]] = -2;
    if (e->opt.keep_intermediates)
        for (int v = 0; v < g->n_values; v++) last[v] = -2;
    nfree = calloc((size_t)e->n_steps + 1, sizeof(int));
    e->free_list = malloc((size_t)(g->n_values ? g->n_values : 1) * sizeof(int));
    e->initial_free = malloc((size_t)(g->n_inputs ? g->n_inputs : 1) * sizeof(int));
    e->in_buf = calloc((size_t)e->max_in + 1, sizeof(ts_tensor *));
    e->out_buf = calloc((size_t)e->max_out + 1, sizeof(ts_tensor *));
    if (!nfree || !e->free_list || !e->initial_free || !e->in_buf || !e->out_buf) goto oom;
    for (int v = 0; v < g->n_values; v++)
        if (last[v] >= 0 && !e->is_const[v]) nfree[last[v]]++;
    int off = 0;
    for (int s = 0; s < e->n_steps; s++) {
        e->steps[s].free_off = off;
        off += nfree[s];
        nfree[s] = 0;
    }
    for (int v = 0; v < g->n_values; v++)
        if (last[v] >= 0 && !e->is_const[v]) {
            exec_step *s = &e->steps[last[v]];
            e->free_list[s->free_off + s->n_free++] = v;
        }
    for (int i = 0; i < g->n_inputs; i++)
        if (last[g->inputs[i]] == -1) e->initial_free[e->n_initial_free++] = g->inputs[i];

    free(order);
    free(last);
    free(nfree);
    free(needed);
    free(run_node);
    return e;
oom:
    ts_fail(TS_ERR_MEMORY, "exec_new: out of memory");
fail:
    free(order);
    free(last);
    free(nfree);
    free(needed);
    free(run_node);
    ts_exec_free(e);
    return NULL;
}

/* Checks input i against the graph's info of its value. */
static ts_status check_input(ts_exec *e, int i, const ts_tensor *t)
{
    const ts_graph *g = e->g;
    const ts_gvalue *v = &g->values[g->inputs[i]];
    char a[TS_SHAPE_STR_CAP], b[TS_SHAPE_STR_CAP];
    if (!t) return ts_fail(TS_ERR_ARG, "exec_run: input %d ('%s') is NULL", i, v->name);
    if (v->dtype != TS_DTYPE_UNKNOWN && t->dtype != v->dtype)
        return ts_fail(TS_ERR_ARG, "exec_run: input %d ('%s'): expected dtype %s, got %s", i, v->name,
                       ts_dtype_name(v->dtype), ts_dtype_name(t->dtype));
    if (v->ndim < 0) return TS_OK;
    if (t->ndim != v->ndim)
        return ts_fail(TS_ERR_ARG, "exec_run: input %d ('%s'): expected rank %d %s, got shape %s", i, v->name, v->ndim,
                       ts_dims_str(g, v->dims, v->ndim, a, sizeof a), ts_shape_str(t->shape, t->ndim, b, sizeof b));
    for (int d = 0; d < v->ndim; d++) {
        int64_t want = v->dims[d].size;
        int32_t sym = v->dims[d].sym;
        if (want < 0 && sym >= 0) {
            want = ts_graph_symbol_bound(g, sym);
            if (want < 0) {
                if (e->sym_seen[sym] < 0) {
                    e->sym_seen[sym] = t->shape[d];
                    continue;
                }
                if (e->sym_seen[sym] != t->shape[d])
                    return ts_fail(TS_ERR_ARG,
                                   "exec_run: input %d ('%s'): dim %d (%s) is %lld, but %s is %lld in an earlier input",
                                   i, v->name, d, g->syms[sym], (long long)t->shape[d], g->syms[sym],
                                   (long long)e->sym_seen[sym]);
                continue;
            }
        }
        if (want >= 0 && t->shape[d] != want)
            return ts_fail(TS_ERR_ARG, "exec_run: input %d ('%s'): expected shape %s%s, got %s (dim %d)", i, v->name,
                           ts_dims_str(g, v->dims, v->ndim, a, sizeof a),
                           (sym >= 0 && v->dims[d].size < 0) ? " (symbol bound by inference)" : "",
                           ts_shape_str(t->shape, t->ndim, b, sizeof b), d);
    }
    return TS_OK;
}

/* Releases every slot the run filled (not the graph's constants). */
static void clear_slots(ts_exec *e)
{
    for (int v = 0; v < e->n_values; v++)
        if (!e->is_const[v] && e->slots[v]) {
            ts_tensor_release(e->slots[v]);
            e->slots[v] = NULL;
        }
}

ts_status ts_exec_run(ts_exec *e, ts_tensor *const *inputs, int n_inputs, ts_tensor **outputs, int n_outputs)
{
    if (!e) return ts_fail(TS_ERR_ARG, "exec_run: NULL executor");
    const ts_graph *g = e->g;
    for (int i = 0; i < n_outputs && outputs; i++) outputs[i] = NULL;
    if (n_inputs != g->n_inputs)
        return ts_fail(TS_ERR_ARG, "exec_run: graph '%s' takes %d inputs, got %d", g->name, g->n_inputs, n_inputs);
    if (n_outputs != g->n_outputs || (n_outputs && !outputs))
        return ts_fail(TS_ERR_ARG, "exec_run: graph '%s' has %d outputs, %d slots given", g->name, g->n_outputs,
                       n_outputs);
    for (int s = 0; s < e->n_syms; s++) e->sym_seen[s] = -1;
    for (int i = 0; i < n_inputs; i++) {
        ts_status st = check_input(e, i, inputs[i]);
        if (st) return st;
    }
    clear_slots(e);     /* the previous run's kept values */
    for (int i = 0; i < n_inputs; i++) {
        int v = g->inputs[i];
        ts_tensor_retain(inputs[i]);
        ts_tensor_release(e->slots[v]);     /* an input listed twice */
        e->slots[v] = inputs[i];
    }
    for (int i = 0; i < e->n_initial_free; i++) {
        ts_tensor_release(e->slots[e->initial_free[i]]);
        e->slots[e->initial_free[i]] = NULL;
    }

    ts_tensor **in = e->in_buf, **out = e->out_buf;
    for (int s = 0; s < e->n_steps; s++) {
        const exec_step *step = &e->steps[s];
        const ts_gnode *nd = step->node;
        int n_in = nd->n_inputs, n_out = nd->n_outputs;
        for (int k = 0; k < n_in; k++) {
            int v = nd->inputs[k];
            in[k] = v >= 0 ? e->slots[v] : NULL;
            if (v >= 0 && !in[k]) {
                ts_fail(TS_ERR_INTERNAL, "node '%s' (%s): input %d ('%s') has no value", nd->name, nd->op_type, k,
                        g->values[v].name);
                goto fail;
            }
        }
        for (int o = 0; o < n_out; o++) out[o] = NULL;
        void *tok = TS_PROF_BEGIN(TS_PROF_NODE, nd->name, nd->op_type, in, n_in);
        ts_status st = step->run(&step->ctx, in, n_in, out, n_out);
        TS_PROF_END(tok, out, n_out);
        if (st) {
            ts_graph_node_error(nd, st);
            for (int o = 0; o < n_out; o++) ts_tensor_release(out[o]);
            goto fail;
        }
        for (int o = 0; o < n_out; o++) {
            int v = nd->outputs[o];
            if (v < 0 || e->is_const[v]) {    /* omitted, or already folded to a constant */
                ts_tensor_release(out[o]);
                continue;
            }
            if (!out[o]) {
                ts_fail(TS_ERR_INTERNAL, "node '%s' (%s): the kernel gave no tensor for output %d ('%s')", nd->name,
                        nd->op_type, o, g->values[v].name);
                for (int p = o + 1; p < n_out; p++) ts_tensor_release(out[p]);
                goto fail;
            }
            ts_tensor_release(e->slots[v]);
            e->slots[v] = out[o];
        }
        for (int k = 0; k < step->n_free; k++) {
            int v = e->free_list[step->free_off + k];
            ts_tensor_release(e->slots[v]);
            e->slots[v] = NULL;
        }
    }
    for (int i = 0; i < n_outputs; i++) {
        ts_tensor *t = e->slots[g->outputs[i]];
        if (!t) {
            ts_fail(TS_ERR_INTERNAL, "exec_run: graph output '%s' was not computed", g->values[g->outputs[i]].name);
            goto fail;
        }
        ts_tensor_retain(t);
        outputs[i] = t;
    }
    if (!e->opt.keep_intermediates) clear_slots(e);
    return TS_OK;
fail:
    for (int i = 0; i < n_outputs; i++) {
        ts_tensor_release(outputs[i]);
        outputs[i] = NULL;
    }
    if (!e->opt.keep_intermediates) clear_slots(e);
    return ts_last_status() ? ts_last_status() : TS_ERR_INTERNAL;
}

ts_tensor *ts_exec_value(const ts_exec *e, int value)
{
    if (!e || value < 0 || value >= e->n_values) return NULL;
    return e->slots[value];
}
