/* ops.h — what the built-in graph ops share (internal to core/graph): the
 * registration entry points of each op family, and small helpers for
 * kernels (ts_kernel_fn) and inference functions (ts_infer_fn).
 *
 * Families: ops_shape.c (data movement, shape arithmetic, comparisons,
 * reductions) registers with ts_graph_register_shape_ops(); ops_nn.c (math,
 * activations, conv, pooling, norms, ...) with ts_graph_register_nn_ops().
 * registry.c calls both once (pthread_once) before the first lookup; each
 * calls ts_op_register() for its ops (inside it, the registry is already
 * initialised: calling ts_op_register/ts_op_find there is fine).
 *
 * Error messages: kernels and infer fns may fail with the op's message only
 * ("Reshape: cannot reshape [2, 3] to [4]"); the executor and ts_graph_infer
 * prefix "node 'name' (Op): " when the message does not already start with
 * "node '". ts_node_fail() writes the prefix itself.
 *
 * Opsets: ts_kernel_ctx.opset / the infer fn's opset is the graph's opset
 * for the node's domain, 0 when the graph declares none (hand-built
 * graphs); where an argument moved from an attribute to an input, read the
 * input when the node has it and the attribute otherwise.
 *
 * Ownership: every helper borrows its arguments; ts_gval_set_const takes
 * over one reference. The helpers live in ops_common.c.
 */
#ifndef TORSH_GRAPH_OPS_H
#define TORSH_GRAPH_OPS_H

#include "torsh/graph.h"
#include "torsh/ops.h"

void ts_graph_register_shape_ops(void);
void ts_graph_register_nn_ops(void);

/* Largest constant (elements) that inference folds or that an infer fn
 * should materialise as ->constant. */
#define TS_FOLD_MAX_ELEMS 65536

/* ---- errors ------------------------------------------------------------------ */

/* ts_fail with "node 'name' (Op): " in front; returns code. */
ts_status ts_node_fail(const ts_gnode *n, ts_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Formats dims as "[N, 3, ?]" into buf (TS_SHAPE_STR_CAP is enough); returns buf. */
char *ts_dims_str(const ts_graph *g, const ts_dim *dims, int ndim, char *buf, size_t cap);

/* ---- reading inputs / attributes ------------------------------------------------ */

/* The elements of an integer tensor (any integer or bool dtype; rank 0 or 1;
 * at most `cap` elements) as int64. what names it in messages ("Reshape:
 * shape"). */
ts_status ts_tensor_read_ints(const ts_tensor *t, const char *what, int64_t *out, int64_t cap, int64_t *n_out);
/* A float scalar (any dtype, exactly one element) as double. */
ts_status ts_tensor_read_scalar(const ts_tensor *t, const char *what, double *out);
/* For infer fns: true (and the ints) when `v` is a constant integer tensor of
 * rank <= 1 with at most cap elements; false otherwise (not an error). v may be NULL. */
bool ts_gval_const_ints(const ts_gvalue *v, int64_t *out, int64_t cap, int64_t *n_out);

/* Normalises an ONNX axis in [-rank, rank) into *out; fails naming the node. */
ts_status ts_node_axis(const ts_gnode *n, int64_t axis, int rank, int *out);
/* Normalises a list of axes in place (each in [-rank, rank), no duplicates). */
ts_status ts_node_axes(const ts_gnode *n, int64_t *axes, int64_t n_axes, int rank);

/* ---- values' infos (for infer fns) ----------------------------------------------- */

/* Sets dtype and shape (ndim TS_RANK_UNKNOWN: unknown rank; dims NULL with
 * ndim >= 0: all dims unknown). */
void ts_gval_set(ts_gvalue *v, ts_dtype dt, int ndim, const ts_dim *dims);
/* Same from concrete sizes (a size < 0 becomes an unknown dim). */
void ts_gval_set_sizes(ts_gvalue *v, ts_dtype dt, int ndim, const int64_t *sizes);
/* Copies dtype and shape (not the constant). */
void ts_gval_copy_info(ts_gvalue *dst, const ts_gvalue *src);
/* Makes v a folded (non-initializer) constant holding t — takes over the
 * reference; releases an earlier constant — and sets dtype/shape from t. */
void ts_gval_set_const(ts_gvalue *v, ts_tensor *t);
/* True when v's rank and every dim are concrete; sizes (may be NULL) get them. */
bool ts_gval_concrete(const ts_gvalue *v, int64_t *sizes);
/* Product of the dims, or -1 when some dim (or the rank) is not concrete. */
int64_t ts_gval_numel(const ts_gvalue *v);

/* Symbolic shape values: a small integer tensor (rank <= 1, at most
 * TS_MAX_DIMS elements) that is not constant but whose elements are known
 * as dims, e.g. Shape(x) for x [N, 3] is the shape value [N, 3]. Shape,
 * Gather, Unsqueeze, Squeeze, Concat, Slice, Cast and Identity propagate
 * them; Reshape, Expand and ConstantOfShape read them, so the batch symbol
 * survives x.view(x.size(0), -1). ts_gval_shape_value also answers for
 * integer constants (all dims concrete); false when neither. v may be NULL
 * or a graph input (never a shape value). */
bool ts_gval_shape_value(const ts_graph *g, const ts_gvalue *v, ts_dim *dims, int *n);
/* In a shape value, a negative literal (Reshape's -1) is {value, TS_SV_NEG}. */
#define TS_SV_NEG (-2)
void ts_gval_set_shape_value(ts_graph *g, const ts_gvalue *v, const ts_dim *dims, int n);

/* Dim equality: both concrete and equal, or the same symbol. */
bool ts_dim_eq(ts_dim a, ts_dim b);
/* NumPy broadcast of two shapes with symbols: 1 yields to anything; equal
 * dims stay; a symbol against a concrete size > 1 takes the size; different
 * symbols or unknowns give an unknown dim. Fails (naming the node and both
 * shapes) only on two different concrete sizes, neither 1. */
ts_status ts_dims_broadcast(const ts_graph *g, const ts_gnode *n, const ts_dim *a, int na,
                            const ts_dim *b, int nb, ts_dim *out, int *n_out);
/* Elementwise (multidirectional broadcasting) output: broadcasts the shapes
 * of every present input (unknown rank anywhere: unknown rank) and sets `out`
 * to dtype dt (TS_DTYPE_UNKNOWN: the first present input's dtype). */
ts_status ts_infer_broadcast_to(ts_graph *g, const ts_gnode *n, const ts_gvalue *const *in,
                                ts_gvalue *out, ts_dtype dt);

/* Ready-made ts_infer_fn's:
 *   ts_infer_same      out[i] = info of in[0] for every output (unary ops, Identity, Relu, Softmax...)
 *   ts_infer_broadcast out[0] = broadcast of all inputs, dtype of in[0] (Add, Mul, Pow, Where uses its own)
 *   ts_infer_compare   out[0] = broadcast of all inputs, bool (Equal, Less, And...) */
ts_status ts_infer_same(ts_graph *g, const ts_gnode *n, int64_t opset,
                        const ts_gvalue *const *in, ts_gvalue *const *out);
ts_status ts_infer_broadcast(ts_graph *g, const ts_gnode *n, int64_t opset,
                             const ts_gvalue *const *in, ts_gvalue *const *out);
ts_status ts_infer_compare(ts_graph *g, const ts_gnode *n, int64_t opset,
                           const ts_gvalue *const *in, ts_gvalue *const *out);

/* ---- kernels ------------------------------------------------------------------------ */

/* Checks that input i is present (not omitted); fails naming the node and i. */
ts_status ts_kernel_need(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, int i);
/* A contiguous tensor (new reference) of `t` converted to dt, or t itself
 * retained when it already is. */
ts_tensor *ts_kernel_as(const ts_tensor *t, ts_dtype dt);

/* ONNX TensorProto.DataType number <-> ts_dtype (TS_DTYPE_UNKNOWN when
 * torsh has no such dtype; 0 for an unknown ts_dtype). */
ts_dtype ts_onnx_dtype(int64_t onnx_type);
int ts_onnx_dtype_number(ts_dtype dt);

#endif
