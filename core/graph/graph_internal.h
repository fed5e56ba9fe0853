/* graph_internal.h — the layout of ts_graph and helpers shared by the files
 * of core/graph (graph.c builds and reads it, infer.c, exec.c and the op
 * files use it). Not a public header.
 *
 * Ownership: the graph owns every array and string below and one reference
 * on each constant tensor; value and node names are looked up through open
 * addressing hash tables of ids (rebuilt when ids move).
 */
#ifndef TORSH_GRAPH_INTERNAL_H
#define TORSH_GRAPH_INTERNAL_H

#include "torsh/graph.h"

typedef struct ts_name_index {
    int *slots;      /* id + 1, 0 = empty; capacity is a power of two */
    int cap, count;
} ts_name_index;

struct ts_graph {
    char *name;
    ts_gvalue *values;
    int n_values, cap_values;
    ts_gnode *nodes;
    int n_nodes, cap_nodes;
    int *inputs, n_inputs, cap_inputs;
    int *outputs, n_outputs, cap_outputs;
    char **syms;
    int n_syms, cap_syms;
    int64_t *sym_bound;         /* per symbol: size bound by the last ts_graph_infer, or -1 */
    char **meta_keys, **meta_values;
    int n_meta, cap_meta;
    char *producer, *producer_version;
    char **opset_domains;
    int64_t *opset_versions;
    int n_opsets, cap_opsets;
    /* symbolic shape values (ops.h: ts_gval_shape_value), per value id, valid
     * during and after ts_graph_infer; n < 0: none */
    ts_dim (*shape_vals)[TS_MAX_DIMS];
    int8_t *shape_val_n;
    int shape_vals_cap;
    ts_name_index value_index;  /* by value name */
    ts_name_index node_index;   /* by node name */
    int auto_name_counter;
};

/* "" for NULL and for "ai.onnx" (the default domain's two spellings). */
const char *ts_graph_norm_domain(const char *domain);

/* A topological order of the nodes (ids into order[n_nodes]), stable for an
 * already sorted graph; fails naming a cycle or a value that is read but
 * neither produced, constant nor a graph input. */
ts_status ts_graph_topo_order(const ts_graph *g, int *order);

/* Size bound to symbol `sym` by the last ts_graph_infer, or -1. */
int64_t ts_graph_symbol_bound(const ts_graph *g, int32_t sym);

/* Puts "node 'x' (Op): " in front of the current error message unless it
 * already starts with "node '"; returns st (TS_ERR_INTERNAL when st is 0). */
ts_status ts_graph_node_error(const ts_gnode *nd, ts_status st);

/* Forgets every symbolic shape value and sizes the table for the values
 * the graph has now; false when out of memory. */
bool ts_graph_reset_shape_values(ts_graph *g);

/* strdup through malloc that tolerates NULL (gives ""). */
char *ts_graph_strdup(const char *s);

#endif
