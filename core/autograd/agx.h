/* agx.h — a small scope for writing backward formulas with core ops:
 *
 *     ag_scope s = {0};
 *     ts_tensor *t = AG_B(&s, TS_MUL, g, n->saved[0]);   // kept in s
 *     ts_tensor *r = ag_result(&s, AG_U(&s, TS_NEG, t)); // new ref survives
 *     ag_end(&s);                                         // releases the rest
 *     if (!r) return ts_last_status();
 *
 * Every helper returns NULL once anything in the scope failed (or an input is
 * NULL), so a formula is written straight through and checked once. Also the
 * finishing step every gradient needs: sum over broadcast dims and cast back
 * to the input's dtype (ag_finish). Internal to core/autograd and the
 * backward files of other parts. */
#ifndef TORSH_AGX_H
#define TORSH_AGX_H

#include "torsh/autograd.h"
#include "internal.h"   /* core/tensor internals: ts_dims_mask, views */

#define AG_SCOPE_MAX 48

typedef struct { ts_tensor *items[AG_SCOPE_MAX]; int n; bool failed; } ag_scope;

ts_tensor *ag_keep(ag_scope *s, ts_tensor *t);
/* Returns a new reference to t (which stays in the scope too), or NULL. */
ts_tensor *ag_result(ag_scope *s, ts_tensor *t);
void ag_end(ag_scope *s);

ts_tensor *AG_B(ag_scope *s, ts_binop op, const ts_tensor *a, const ts_tensor *b);
ts_tensor *AG_BS(ag_scope *s, ts_binop op, const ts_tensor *a, double v);   /* a op v */
ts_tensor *AG_SB(ag_scope *s, ts_binop op, double v, const ts_tensor *a);   /* v op a */
ts_tensor *AG_U(ag_scope *s, ts_unop op, const ts_tensor *a);
ts_tensor *AG_WHERE(ag_scope *s, const ts_tensor *c, const ts_tensor *a, const ts_tensor *b);
ts_tensor *AG_ZEROS(ag_scope *s, const int64_t *shape, int ndim, ts_dtype dt);
ts_tensor *AG_RESHAPE(ag_scope *s, const ts_tensor *a, const int64_t *shape, int ndim);
ts_tensor *AG_SUM(ag_scope *s, const ts_tensor *a, const int *dims, int ndims, bool keepdim);
ts_tensor *AG_EXPAND(ag_scope *s, const ts_tensor *a, const int64_t *shape, int ndim);
ts_tensor *AG_MATMUL(ag_scope *s, const ts_tensor *a, const ts_tensor *b);
ts_tensor *AG_T(ag_scope *s, const ts_tensor *a, int d0, int d1);

/* Attaches `out` as output k of node n and drops the caller's reference to
 * n; on failure (n NULL or attach fails) releases out too. Returns out or NULL. */
ts_tensor *ag_attach(ts_node *n, ts_tensor *out, int k);
/* True when input i of node n needs a gradient. */
static inline bool ag_wants(const ts_node *n, int i) { return n->next[i].node || n->next[i].leaf; }

/* Gradient g for input i of node n: summed to the input's shape, cast to its
 * dtype. Returns a NEW reference (not kept in any scope), NULL on failure or
 * when g is NULL. */
ts_tensor *ag_finish(const ts_node *n, int i, const ts_tensor *g);

#endif
