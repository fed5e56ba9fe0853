/* torsh/autograd.h — reverse-mode automatic differentiation over core ops.
 *
 *     ts_requires_grad_(w, true);                 // a leaf that wants a gradient
 *     ts_tensor *y = ts_ag_binary(TS_MUL, w, x);  // recorded: y->ag->grad_fn = MulBackward
 *     ts_tensor *l = ts_ag_reduce(TS_SUM, y, NULL, 0, false);
 *     ts_backward(l, NULL, false);                // w's gradient now in ts_grad(w)
 *
 * The plain ops of ops.h never record. The ts_ag_* functions (same arguments
 * as their ops.h counterparts, declared in autograd_ops.h) run the op and, when
 * grad mode is on and an input requires grad, attach a node (grad_fn) to the
 * result. A node holds what its backward needs (saved tensors are kept as
 * detached aliases, so a graph never references itself) and edges to the
 * nodes or leaves that produced its inputs. ts_backward walks the graph from a
 * root in dependency order, summing gradients, and accumulates into leaves'
 * grad. Without retain_graph the saved tensors are freed as the walk passes,
 * and a second backward through the same nodes is an error.
 *
 * Grad mode is per thread (ts_set_grad_enabled); in-place ops on a tensor that
 * requires grad are refused while grad mode is on (disable it for optimizer
 * updates, as torch.no_grad does).
 */
#ifndef TORSH_AUTOGRAD_H
#define TORSH_AUTOGRAD_H

#include "torsh/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TS_NODE_MAX_INPUTS 8
#define TS_NODE_MAX_OUTPUTS 64
#define TS_NODE_MAX_SAVED 6

typedef struct ts_node ts_node;
/* Computes gradients of the node's inputs from the gradients of its outputs.
 * grad_out[k] is NULL when output k received no gradient (treat as zeros).
 * Fill grad_in[i] with NEW references (NULL = no gradient for input i). */
typedef ts_status (*ts_backward_fn)(ts_node *n, ts_tensor *const *grad_out, ts_tensor **grad_in);

typedef struct ts_edge {
    ts_node *node;        /* producer of the input (owned ref), or NULL */
    int output_nr;        /* which output of that node */
    ts_tensor *leaf;      /* or: a leaf that requires grad (owned ref) */
} ts_edge;

struct ts_node {
    int refcount;
    const char *name;                    /* "MulBackward", ... */
    ts_backward_fn backward;
    int n_in, n_out;
    ts_edge next[TS_NODE_MAX_INPUTS];
    ts_tensor *saved[TS_NODE_MAX_SAVED]; /* detached aliases; freed after backward */
    bool released;                       /* saved tensors freed (no retain_graph) */
    /* op attributes, free for the op's use */
    double d[8];
    int64_t i[TS_MAX_DIMS * 2 + 8];
    /* input geometry, often needed to shape gradients */
    int in_ndim[TS_NODE_MAX_INPUTS];
    int64_t in_shape[TS_NODE_MAX_INPUTS][TS_MAX_DIMS];
    ts_dtype in_dtype[TS_NODE_MAX_INPUTS];
    /* engine scratch */
    ts_tensor **pending;                 /* per output, during backward */
    int deps;
};

struct ts_autograd_meta {
    bool requires_grad;
    ts_tensor *grad;                     /* accumulated gradient (leaves) */
    ts_node *grad_fn;                    /* producer (non-leaves), owned ref */
    int output_nr;
};

/* ---- grad mode -------------------------------------------------------------- */
bool ts_grad_enabled(void);
/* Returns the previous setting. */
bool ts_set_grad_enabled(bool on);

/* ---- tensor side -------------------------------------------------------------- */
/* Marks a leaf (floating dtype only) as requiring grad, or clears it. */
ts_status ts_requires_grad_(ts_tensor *t, bool on);
bool ts_requires_grad(const ts_tensor *t);
bool ts_is_leaf(const ts_tensor *t);
/* The accumulated gradient of t, a NEW reference, or NULL (no error) when none. */
ts_tensor *ts_grad(const ts_tensor *t);
/* Replaces (g may be NULL to clear) t's gradient; g is retained. */
ts_status ts_set_grad(ts_tensor *t, ts_tensor *g);
/* A new tensor sharing t's storage, outside any graph. */
ts_tensor *ts_detach(const ts_tensor *t);
/* Name of t's grad_fn ("MulBackward") or NULL. */
const char *ts_grad_fn_name(const ts_tensor *t);
/* Backpropagates from root. grad: d(out)/d(root) of root's shape, or NULL
 * for a one-element root (taken as 1). */
ts_status ts_backward(ts_tensor *root, const ts_tensor *grad, bool retain_graph);
/* Finite-difference check of fn's gradient at inputs (f64 recommended):
 * returns TS_OK or TS_ERR_ARG with the worst mismatch described. fn gets the
 * inputs and returns a new tensor (any shape; the check uses random output
 * weights). */
typedef ts_tensor *(*ts_gradcheck_fn)(ts_tensor *const *inputs, int n, void *ctx);
ts_status ts_gradcheck(ts_gradcheck_fn fn, void *ctx, ts_tensor *const *inputs, int n, double eps, double atol, double rtol);

/* ---- recording (for op wrappers) ------------------------------------------------ */
/* True when grad mode is on and one of the tensors requires grad. */
bool ts_ag_needed(int n, const ts_tensor *const *ts);
/* A node with edges to `inputs` (n_in of them; NULLs allowed); NULL on OOM. */
ts_node *ts_node_new(const char *name, ts_backward_fn fn, int n_in, const ts_tensor *const *inputs, int n_out);
/* Saves a detached alias of t in slot k (t may be NULL). */
ts_status ts_node_save(ts_node *n, int k, const ts_tensor *t);
/* Makes `out` (freshly created, no meta) output number k of node n. */
ts_status ts_node_attach(ts_node *n, ts_tensor *out, int k);
void ts_node_release(ts_node *n);
/* Sums g over broadcast dims so it has `shape`; new reference. */
ts_tensor *ts_sum_to_shape(const ts_tensor *g, const int64_t *shape, int ndim);

void ts_autograd_meta_free(struct ts_autograd_meta *m);

#ifdef __cplusplus
}
#endif
#endif
