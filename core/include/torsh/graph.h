/* torsh/graph.h — the model IR (a graph of named values and nodes), shape and
 * dtype inference with symbolic dims, the op registry, and the executor.
 *
 * The IR mirrors ONNX's model so importers and exporters are direct:
 *   - values: named, with a dtype and a shape whose dims are concrete sizes
 *     or symbols ("N", "batch"); a value may hold a constant tensor (an
 *     initializer, or the result of constant folding);
 *   - nodes: op type + domain + typed attributes, reading and writing values
 *     by id (an omitted optional input is id -1);
 *   - graph inputs / outputs (value ids), metadata (key/value strings), the
 *     opset per domain, the producer.
 *
 *     ts_graph *g = ts_graph_new("mlp");
 *     int x = ts_graph_value(g, "x");                 // creates or finds
 *     ts_graph_set_info(g, x, TS_F32, 2, (ts_dim[]){ts_dim_sym(g, "N"), ts_dim_of(784)});
 *     ts_graph_add_input(g, x);
 *     int w = ts_graph_value(g, "fc.weight");
 *     ts_graph_set_const(g, w, weight_tensor);        // graph takes a reference
 *     int y = ts_graph_value(g, "y");
 *     int n = ts_graph_add_node(g, "Gemm", "", "fc", (int[]){x, w}, 2, &y, 1);
 *     ts_gnode_set_int(g, n, "transB", 1);
 *     ts_graph_add_output(g, y);
 *     ts_graph_infer(g, NULL, NULL, 0);               // y: f32 [N, 10]
 *     ts_exec *e = ts_exec_new(g, NULL);              // plans; checks every op has a kernel
 *     ts_tensor *out[1];
 *     ts_exec_run(e, &input, 1, out, 1);              // out[0]: a new reference
 *     ts_exec_free(e); ts_graph_free(g);
 *
 * Ownership: the graph owns its values, nodes, attributes and strings (all
 * copied in) and holds one reference on every constant tensor; pointers into
 * it (ts_graph_node, ts_graph_val) stay valid until the next call that adds
 * to the graph. An executor borrows its graph (free the executor first).
 * Errors: NULL / ts_status with the reason in ts_last_error(), naming the
 * node ("node 'conv1' (Conv): ...") and the value.
 */
#ifndef TORSH_GRAPH_H
#define TORSH_GRAPH_H

#include "torsh/base.h"
#include "torsh/dtype.h"
#include "torsh/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TS_DTYPE_UNKNOWN ((ts_dtype)-1)
#define TS_RANK_UNKNOWN (-1)

/* One dim of a value's shape: a concrete size (size >= 0, sym < 0), a
 * symbol (size < 0, sym = index into the graph's symbol table), or unknown
 * (both < 0). */
typedef struct ts_dim { int64_t size; int32_t sym; } ts_dim;
static inline ts_dim ts_dim_of(int64_t size) { ts_dim d = {size, -1}; return d; }
static inline ts_dim ts_dim_unknown(void) { ts_dim d = {-1, -1}; return d; }
static inline bool ts_dim_known(ts_dim d) { return d.size >= 0; }

typedef enum ts_attr_type {   /* ONNX's AttributeType numbers */
    TS_ATTR_FLOAT = 1, TS_ATTR_INT = 2, TS_ATTR_STRING = 3, TS_ATTR_TENSOR = 4,
    TS_ATTR_FLOATS = 6, TS_ATTR_INTS = 7, TS_ATTR_STRINGS = 8,
} ts_attr_type;

typedef struct ts_attr {
    char *name;
    ts_attr_type type;
    double f;               /* FLOAT */
    int64_t i;              /* INT */
    char *s; size_t s_len;  /* STRING (NUL-terminated too; may hold bytes) */
    ts_tensor *t;           /* TENSOR (a reference) */
    int64_t n;              /* count for FLOATS / INTS / STRINGS */
    double *floats;
    int64_t *ints;
    char **strings;
} ts_attr;

typedef struct ts_gvalue {
    char *name;
    ts_dtype dtype;         /* TS_DTYPE_UNKNOWN until known */
    int ndim;               /* TS_RANK_UNKNOWN until known */
    ts_dim dims[TS_MAX_DIMS];
    ts_tensor *constant;    /* initializer / folded constant (a reference), or NULL */
    bool is_initializer;    /* constant came from the file (a weight), not folding */
    int producer;           /* node id that writes it, or -1 */
} ts_gvalue;

typedef struct ts_gnode {
    char *name;             /* unique in the graph ("" made unique on add) */
    char *op_type;          /* "Conv" */
    char *domain;           /* "" for the default ONNX domain */
    int n_inputs, n_outputs, n_attrs;
    int *inputs;            /* value ids; -1 for an omitted optional input */
    int *outputs;
    ts_attr *attrs;
} ts_gnode;

typedef struct ts_graph ts_graph;

/* ---- building ------------------------------------------------------------- */

ts_graph *ts_graph_new(const char *name);
void ts_graph_free(ts_graph *g);                /* NULL is fine */
/* Deep copy (constants shared by reference). */
ts_graph *ts_graph_clone(const ts_graph *g);

/* The id of the value called `name`, created (unknown dtype and rank) if new. */
int ts_graph_value(ts_graph *g, const char *name);
/* The id of `name`, or -1. */
int ts_graph_find_value(const ts_graph *g, const char *name);
/* The id of a symbol ("N"), interned; use in ts_dim.sym. */
int32_t ts_graph_symbol(ts_graph *g, const char *name);
const char *ts_graph_symbol_name(const ts_graph *g, int32_t sym);
int ts_graph_symbol_count(const ts_graph *g);
static inline ts_dim ts_dim_sym(ts_graph *g, const char *name) { ts_dim d = {-1, ts_graph_symbol(g, name)}; return d; }

ts_status ts_graph_set_info(ts_graph *g, int value, ts_dtype dt, int ndim, const ts_dim *dims);
/* Makes `value` a constant holding `t` (the graph retains it): an initializer
 * (weight) when is_initializer. Sets dtype and shape from t. */
ts_status ts_graph_set_const(ts_graph *g, int value, ts_tensor *t, bool is_initializer);
ts_status ts_graph_add_input(ts_graph *g, int value);
ts_status ts_graph_add_output(ts_graph *g, int value);

/* Adds a node; returns its id or -1. Output values must not have a producer
 * yet. `name` NULL or "" gets a unique one ("Conv_3"). */
int ts_graph_add_node(ts_graph *g, const char *op_type, const char *domain, const char *name,
                      const int *inputs, int n_inputs, const int *outputs, int n_outputs);
ts_status ts_gnode_set_int(ts_graph *g, int node, const char *name, int64_t v);
ts_status ts_gnode_set_float(ts_graph *g, int node, const char *name, double v);
ts_status ts_gnode_set_string(ts_graph *g, int node, const char *name, const char *s, size_t len);
ts_status ts_gnode_set_ints(ts_graph *g, int node, const char *name, const int64_t *v, int64_t n);
ts_status ts_gnode_set_floats(ts_graph *g, int node, const char *name, const double *v, int64_t n);
ts_status ts_gnode_set_strings(ts_graph *g, int node, const char *name, const char *const *v, int64_t n);
ts_status ts_gnode_set_tensor(ts_graph *g, int node, const char *name, ts_tensor *t); /* retains */

/* Metadata (key -> value, replacing), producer name/version, opsets. */
ts_status ts_graph_set_meta(ts_graph *g, const char *key, const char *value);
ts_status ts_graph_set_producer(ts_graph *g, const char *name, const char *version);
ts_status ts_graph_set_opset(ts_graph *g, const char *domain, int64_t version);

/* ---- reading -------------------------------------------------------------- */

const char *ts_graph_name(const ts_graph *g);
int ts_graph_value_count(const ts_graph *g);
int ts_graph_node_count(const ts_graph *g);
ts_gvalue *ts_graph_val(const ts_graph *g, int value);     /* borrowed */
ts_gnode *ts_graph_node(const ts_graph *g, int node);      /* borrowed */
int ts_graph_input_count(const ts_graph *g);
int ts_graph_input(const ts_graph *g, int i);             /* value id */
int ts_graph_output_count(const ts_graph *g);
int ts_graph_output(const ts_graph *g, int i);
int ts_graph_meta_count(const ts_graph *g);
void ts_graph_meta_at(const ts_graph *g, int i, const char **key, const char **value);
const char *ts_graph_producer(const ts_graph *g, const char **version);
/* Opset of `domain` ("" = default ONNX), or 0 when not imported. */
int64_t ts_graph_opset(const ts_graph *g, const char *domain);
int ts_graph_opset_count(const ts_graph *g);
void ts_graph_opset_at(const ts_graph *g, int i, const char **domain, int64_t *version);

/* Attribute lookup on a node; NULL when absent. */
const ts_attr *ts_gnode_attr(const ts_gnode *n, const char *name);
int64_t ts_gnode_int(const ts_gnode *n, const char *name, int64_t dflt);
double ts_gnode_float(const ts_gnode *n, const char *name, double dflt);
/* STRING attribute or dflt. */
const char *ts_gnode_string(const ts_gnode *n, const char *name, const char *dflt);
/* INTS attribute: count in *n_out (0 and NULL when absent). */
const int64_t *ts_gnode_ints(const ts_gnode *n, const char *name, int64_t *n_out);

/* Sorts nodes so every node comes after the producers of its inputs (stable
 * for an already sorted graph); fails naming a cycle or a value that is
 * read but neither produced, constant nor a graph input. */
ts_status ts_graph_toposort(ts_graph *g);
/* Drops nodes whose outputs reach no graph output, and unused constants. */
ts_status ts_graph_prune(ts_graph *g);

/* ---- inference --------------------------------------------------------------- */

/* Infers dtype and shape of every value from the graph inputs, in node
 * order. `bind` maps symbols to sizes (n_bind pairs, symbol names), so
 * ts_graph_infer(g, (const char*[]){"N"}, (int64_t[]){1}, 1) makes every
 * shape concrete for batch 1; unbound symbols flow through as symbols.
 * Nodes whose inputs are all constant and small are folded (their outputs
 * become constants), which resolves shape arithmetic (Shape -> Gather ->
 * Concat -> Reshape). Fails naming the node on a shape mismatch. Overwrites
 * earlier inference results of non-input values. */
ts_status ts_graph_infer(ts_graph *g, const char *const *sym_names, const int64_t *sizes, int n_bind);
/* Size bound to symbol `sym` by the last ts_graph_infer, or -1. */
int64_t ts_graph_symbol_bound(const ts_graph *g, int32_t sym);
/* FLOPs of node `node` (a multiply-add counts 2) from the shapes of the last
 * ts_graph_infer, its bound symbols made concrete; 0 for an op without a
 * FLOPs rule (data movement), < 0 when the op is unknown or a shape is not
 * concrete. */
double ts_graph_node_flops(const ts_graph *g, int node);

/* ---- optimization passes (core/graph/ops_nn_fuse.c) ----------------------------
 * For running, not for export: run them on a clone after ts_graph_infer,
 * then infer again. Each ends by pruning and re-sorting the graph.
 *  - fold_conv_bn: Conv followed by inference BatchNormalization becomes one
 *    Conv with scaled weights and a bias (the BN statistics disappear, so
 *    count parameters before folding);
 *  - fuse_conv_act: Conv -> Relu/Clip/... and Conv -> Add -> Relu become
 *    com.microsoft::FusedConv (the op ONNX Runtime produces);
 *  - prepack_winograd: eligible 3x3 stride-1 convs become
 *    ai.torsh::WinogradConv with pre-transformed weights (torsh-only op);
 *  - optimize_nn: all three, in that order. */
ts_status ts_graph_fold_conv_bn(ts_graph *g);
ts_status ts_graph_fuse_conv_act(ts_graph *g);
ts_status ts_graph_prepack_winograd(ts_graph *g);
ts_status ts_graph_optimize_nn(ts_graph *g);

/* ---- ops ------------------------------------------------------------------ */

/* What a kernel sees: the node (attributes), the graph's opset for its
 * domain, and the op's user pointer (Lua registry ref for custom ops). */
typedef struct ts_kernel_ctx {
    const ts_graph *graph;
    const ts_gnode *node;
    int64_t opset;
    void *user;
} ts_kernel_ctx;

/* Runs one node: in[i] NULL for omitted optional inputs; must set every
 * out[i] to a new reference (or fail, leaving them NULL). Inputs are
 * borrowed and may be non-contiguous; constants are read-only. */
typedef ts_status (*ts_kernel_fn)(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in,
                                  ts_tensor **out, int n_out);
/* Sets dtype/shape (and optionally ->constant) of the node's outputs from its
 * inputs' infos; in[i] NULL for omitted inputs. */
typedef ts_status (*ts_infer_fn)(ts_graph *g, const ts_gnode *n, int64_t opset,
                                 const ts_gvalue *const *in, ts_gvalue *const *out);
/* Work of one node in FLOPs (a multiply-add counts 2), from concrete shapes;
 * < 0 when shapes are not concrete. NULL in the op def means 0 (data movement). */
typedef double (*ts_flops_fn)(const ts_gnode *n, const ts_gvalue *const *in, const ts_gvalue *const *out);

typedef struct ts_op_def {
    const char *op_type;
    const char *domain;     /* "" default */
    ts_kernel_fn run;
    ts_infer_fn infer;      /* NULL: outputs stay unknown */
    ts_flops_fn flops;      /* NULL: 0 */
    bool foldable;          /* may be evaluated at inference time on constants */
    void *user;
    void (*free_user)(void *user);
} ts_op_def;

/* Registers (or replaces) an op for (domain, op_type); the registry copies
 * the def (strings too). The built-in ops are registered on first use. */
ts_status ts_op_register(const ts_op_def *def);
const ts_op_def *ts_op_find(const char *domain, const char *op_type);
/* Names of the registered ops of a domain, sorted, comma separated, in a
 * thread-local buffer (for "supported ops: ..." messages). */
const char *ts_op_list(const char *domain);

/* ---- execution ------------------------------------------------------------- */

typedef struct ts_exec ts_exec;
typedef struct ts_exec_options {
    bool keep_intermediates;    /* keep every value after run (debugging/validation) */
} ts_exec_options;

/* Prepares to run g: resolves each node's kernel (an unknown op fails with
 * "node 'x' (FooOp): no kernel for op FooOp; supported ops: ..."), computes
 * each value's last use so buffers are released (and reused by the
 * allocator's cache) as soon as they are dead. */
ts_exec *ts_exec_new(const ts_graph *g, const ts_exec_options *opt);
/* Runs with inputs in graph-input order (borrowed; dtype and rank checked
 * against the graph's infos, concrete dims too); outputs[i] new references
 * in graph-output order. No Lua calls unless the graph has Lua custom ops. */
ts_status ts_exec_run(ts_exec *e, ts_tensor *const *inputs, int n_inputs, ts_tensor **outputs, int n_outputs);
/* With keep_intermediates: the last run's tensor of a value (borrowed) or NULL. */
ts_tensor *ts_exec_value(const ts_exec *e, int value);
void ts_exec_free(ts_exec *e);

#ifdef __cplusplus
}
#endif
#endif
