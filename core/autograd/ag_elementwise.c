/* ag_elementwise.c — recording wrappers and backward formulas of the
 * elementwise ops: binary arithmetic, unary math, where, clamp. */
#include "agx.h"
#include "torsh/autograd_ops.h"

#include <math.h>

ts_status ts_ag_check_inplace(const char *op, const ts_tensor *t)
{
    if (ts_grad_enabled() && t->ag && (t->ag->requires_grad))
        return ts_fail(TS_ERR_ARG, "%s: in-place change of a tensor that requires grad (a %s); "
                       "do it under no_grad, or on a clone", op, ts_is_leaf(t) ? "leaf" : "result of a recorded op");
    return TS_OK;
}

/* ---- binary --------------------------------------------------------------- */

static ts_status binary_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    ts_binop op = (ts_binop)n->i[0];
    const ts_tensor *g = go[0], *a = n->saved[0], *b = n->saved[1];
    ag_scope s = {0};
    ts_tensor *ga = NULL, *gb = NULL;
    bool need_a = ag_wants(n, 0), need_b = ag_wants(n, 1);
    switch (op) {
    case TS_ADD: ga = (ts_tensor *)g; gb = (ts_tensor *)g; break;
    case TS_SUB: ga = (ts_tensor *)g; gb = need_b ? AG_U(&s, TS_NEG, g) : NULL; break;
    case TS_MUL:
        ga = need_a ? AG_B(&s, TS_MUL, g, b) : NULL;
        gb = need_b ? AG_B(&s, TS_MUL, g, a) : NULL;
        break;
    case TS_DIV:
        ga = need_a ? AG_B(&s, TS_DIV, g, b) : NULL;
        gb = need_b ? AG_U(&s, TS_NEG, AG_B(&s, TS_DIV, AG_B(&s, TS_MUL, g, a), AG_U(&s, TS_SQUARE, b))) : NULL;
        break;
    case TS_POW: {
        /* d/da a^b = b a^(b-1); d/db a^b = a^b log a (0 where a == 0 and b >= 0) */
        ga = need_a ? AG_B(&s, TS_MUL, g, AG_B(&s, TS_MUL, b, AG_B(&s, TS_POW, a, AG_BS(&s, TS_SUB, b, 1.0)))) : NULL;
        if (need_b) {
            ts_tensor *ab = AG_B(&s, TS_POW, a, b);
            ts_tensor *lg = AG_U(&s, TS_LOG, a);
            ts_tensor *zero_case = AG_B(&s, TS_LOGICAL_AND, AG_BS(&s, TS_EQ, a, 0.0), AG_BS(&s, TS_GE, b, 0.0));
            ts_tensor *val = AG_B(&s, TS_MUL, g, AG_B(&s, TS_MUL, ab, lg));
            gb = AG_WHERE(&s, zero_case, AG_BS(&s, TS_MUL, val, 0.0), val);
        }
        break;
    }
    case TS_MAXIMUM: case TS_MINIMUM: {
        /* the winner takes the gradient; ties split it in half */
        ts_binop win = op == TS_MAXIMUM ? TS_GT : TS_LT;
        ts_tensor *half = AG_BS(&s, TS_MUL, g, 0.5);
        ts_tensor *tie = AG_B(&s, TS_EQ, a, b);
        ts_tensor *zero = AG_BS(&s, TS_MUL, g, 0.0);
        ga = need_a ? AG_WHERE(&s, tie, half, AG_WHERE(&s, AG_B(&s, win, a, b), g, zero)) : NULL;
        gb = need_b ? AG_WHERE(&s, tie, half, AG_WHERE(&s, AG_B(&s, win, b, a), g, zero)) : NULL;
        break;
    }
    case TS_ATAN2: {
        ts_tensor *den = AG_B(&s, TS_ADD, AG_U(&s, TS_SQUARE, a), AG_U(&s, TS_SQUARE, b));
        ga = need_a ? AG_B(&s, TS_MUL, g, AG_B(&s, TS_DIV, b, den)) : NULL;
        gb = need_b ? AG_U(&s, TS_NEG, AG_B(&s, TS_MUL, g, AG_B(&s, TS_DIV, a, den))) : NULL;
        break;
    }
    case TS_REMAINDER:
        ga = (ts_tensor *)g;
        gb = need_b ? AG_U(&s, TS_NEG, AG_B(&s, TS_MUL, g, AG_B(&s, TS_FLOOR_DIVIDE, a, b))) : NULL;
        break;
    default:
        ag_end(&s);
        return ts_fail(TS_ERR_INTERNAL, "%s has no gradient", ts_binop_name(op));
    }
    if (s.failed) { ag_end(&s); return ts_last_status(); }
    if (need_a) gi[0] = ag_finish(n, 0, ga);
    if (need_b) gi[1] = ag_finish(n, 1, gb);
    ag_end(&s);
    if ((need_a && !gi[0]) || (need_b && !gi[1])) return ts_last_status();
    return TS_OK;
}

static bool binop_differentiable(ts_binop op)
{
    return op <= TS_REMAINDER || op == TS_ATAN2;
}

static ts_tensor *record_binary(ts_binop op, const ts_tensor *a, const ts_tensor *b, ts_tensor *out)
{
    const ts_tensor *in[2] = { a, b };
    if (!out || !binop_differentiable(op) || !ts_dtype_is_float(out->dtype) || !ts_ag_needed(2, in)) return out;
    ts_node *n = ts_node_new(ts_binop_name(op), binary_backward, 2, in, 1);
    if (n) {
        n->i[0] = op;
        if (op != TS_ADD && op != TS_SUB && (ts_node_save(n, 0, a) || ts_node_save(n, 1, b))) {
            ts_node_release(n);
            n = NULL;
        }
    }
    return ag_attach(n, out, 0);
}

ts_tensor *ts_ag_binary(ts_binop op, const ts_tensor *a, const ts_tensor *b)
{
    return record_binary(op, a, b, ts_binary(op, a, b));
}

ts_tensor *ts_ag_binary_scalar(ts_binop op, const ts_tensor *a, double v, bool reversed)
{
    if (!ts_requires_grad(a) || !ts_grad_enabled()) return ts_binary_scalar(op, a, v, reversed);
    /* the scalar becomes a 0-dim constant typed like a (no gradient flows to it) */
    ts_tensor *c = ts_tensor_scalar(v, ts_dtype_is_float(a->dtype) ? a->dtype : TS_F32);
    if (!c) return NULL;
    ts_tensor *out = reversed ? ts_ag_binary(op, c, a) : ts_ag_binary(op, a, c);
    ts_tensor_release(c);
    return out;
}

/* ---- unary ------------------------------------------------------------------- */

static ts_status unary_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    ts_unop op = (ts_unop)n->i[0];
    const ts_tensor *g = go[0], *x = n->saved[0], *y = n->saved[1];
    ag_scope s = {0};
    ts_tensor *r = NULL;
    const double SQRT_2_PI = 0.7978845608028654, INV_SQRT_2PI = 0.3989422804014327;
    switch (op) {
    case TS_ABS: r = AG_B(&s, TS_MUL, g, AG_U(&s, TS_SIGN, x)); break;
    case TS_NEG: r = AG_U(&s, TS_NEG, g); break;
    case TS_EXP: r = AG_B(&s, TS_MUL, g, y); break;
    case TS_LOG: r = AG_B(&s, TS_DIV, g, x); break;
    case TS_SQRT: r = AG_B(&s, TS_DIV, g, AG_BS(&s, TS_MUL, y, 2.0)); break;
    case TS_RSQRT: r = AG_B(&s, TS_MUL, g, AG_BS(&s, TS_MUL, AG_BS(&s, TS_POW, y, 3.0), -0.5)); break;
    case TS_SIN: r = AG_B(&s, TS_MUL, g, AG_U(&s, TS_COS, x)); break;
    case TS_COS: r = AG_U(&s, TS_NEG, AG_B(&s, TS_MUL, g, AG_U(&s, TS_SIN, x))); break;
    case TS_TAN: r = AG_B(&s, TS_MUL, g, AG_BS(&s, TS_ADD, AG_U(&s, TS_SQUARE, y), 1.0)); break;
    case TS_TANH: r = AG_B(&s, TS_MUL, g, AG_SB(&s, TS_SUB, 1.0, AG_U(&s, TS_SQUARE, y))); break;
    case TS_SIGMOID: r = AG_B(&s, TS_MUL, g, AG_B(&s, TS_MUL, y, AG_SB(&s, TS_SUB, 1.0, y))); break;
    case TS_RELU: r = AG_B(&s, TS_MUL, g, AG_BS(&s, TS_GT, y, 0.0)); break;
    case TS_GELU: {
        ts_tensor *cdf = AG_BS(&s, TS_MUL, AG_BS(&s, TS_ADD, AG_U(&s, TS_ERF, AG_BS(&s, TS_MUL, x, 0.70710678118654752)), 1.0), 0.5);
        ts_tensor *pdf = AG_BS(&s, TS_MUL, AG_U(&s, TS_EXP, AG_BS(&s, TS_MUL, AG_U(&s, TS_SQUARE, x), -0.5)), INV_SQRT_2PI);
        r = AG_B(&s, TS_MUL, g, AG_B(&s, TS_ADD, cdf, AG_B(&s, TS_MUL, x, pdf)));
        break;
    }
    case TS_GELU_TANH: {
        /* y = 0.5 x (1 + tanh(u)), u = k (x + c x^3) */
        ts_tensor *x2 = AG_U(&s, TS_SQUARE, x);
        ts_tensor *u = AG_BS(&s, TS_MUL, AG_B(&s, TS_ADD, x, AG_BS(&s, TS_MUL, AG_B(&s, TS_MUL, x2, x), 0.044715)), SQRT_2_PI);
        ts_tensor *t = AG_U(&s, TS_TANH, u);
        ts_tensor *du = AG_BS(&s, TS_MUL, AG_BS(&s, TS_ADD, AG_BS(&s, TS_MUL, x2, 3 * 0.044715), 1.0), SQRT_2_PI);
        ts_tensor *left = AG_BS(&s, TS_MUL, AG_BS(&s, TS_ADD, t, 1.0), 0.5);
        ts_tensor *right = AG_B(&s, TS_MUL, AG_BS(&s, TS_MUL, x, 0.5), AG_B(&s, TS_MUL, AG_SB(&s, TS_SUB, 1.0, AG_U(&s, TS_SQUARE, t)), du));
        r = AG_B(&s, TS_MUL, g, AG_B(&s, TS_ADD, left, right));
        break;
    }
    case TS_SILU: {
        ts_tensor *sg = AG_U(&s, TS_SIGMOID, x);
        r = AG_B(&s, TS_MUL, g, AG_B(&s, TS_MUL, sg, AG_BS(&s, TS_ADD, AG_B(&s, TS_MUL, x, AG_SB(&s, TS_SUB, 1.0, sg)), 1.0)));
        break;
    }
    case TS_ERF:
        r = AG_B(&s, TS_MUL, g, AG_BS(&s, TS_MUL, AG_U(&s, TS_EXP, AG_U(&s, TS_NEG, AG_U(&s, TS_SQUARE, x))), 1.1283791670955126));
        break;
    case TS_FLOOR: case TS_CEIL: case TS_ROUND: case TS_TRUNC: case TS_SIGN:
        r = AG_BS(&s, TS_MUL, g, 0.0);
        break;
    case TS_RECIPROCAL: r = AG_U(&s, TS_NEG, AG_B(&s, TS_MUL, g, AG_U(&s, TS_SQUARE, y))); break;
    case TS_SQUARE: r = AG_B(&s, TS_MUL, g, AG_BS(&s, TS_MUL, x, 2.0)); break;
    case TS_LOG1P: r = AG_B(&s, TS_DIV, g, AG_BS(&s, TS_ADD, x, 1.0)); break;
    case TS_EXPM1: r = AG_B(&s, TS_MUL, g, AG_BS(&s, TS_ADD, y, 1.0)); break;
    case TS_LOG2: r = AG_B(&s, TS_DIV, g, AG_BS(&s, TS_MUL, x, M_LN2)); break;
    case TS_EXP2: r = AG_B(&s, TS_MUL, g, AG_BS(&s, TS_MUL, y, M_LN2)); break;
    case TS_ASIN: r = AG_B(&s, TS_MUL, g, AG_U(&s, TS_RSQRT, AG_SB(&s, TS_SUB, 1.0, AG_U(&s, TS_SQUARE, x)))); break;
    case TS_ACOS: r = AG_U(&s, TS_NEG, AG_B(&s, TS_MUL, g, AG_U(&s, TS_RSQRT, AG_SB(&s, TS_SUB, 1.0, AG_U(&s, TS_SQUARE, x))))); break;
    case TS_ATAN: r = AG_B(&s, TS_DIV, g, AG_BS(&s, TS_ADD, AG_U(&s, TS_SQUARE, x), 1.0)); break;
    case TS_SINH: r = AG_B(&s, TS_MUL, g, AG_U(&s, TS_COSH, x)); break;
    case TS_COSH: r = AG_B(&s, TS_MUL, g, AG_U(&s, TS_SINH, x)); break;
    default:
        return ts_fail(TS_ERR_INTERNAL, "%s has no gradient", ts_unop_name(op));
    }
    gi[0] = s.failed ? NULL : ag_finish(n, 0, r);
    ag_end(&s);
    return gi[0] ? TS_OK : ts_last_status();
}

static bool unop_differentiable(ts_unop op) { return op < TS_LOGICAL_NOT; }
/* which of input (1) / output (2) the backward formula reads */
static int unop_saves(ts_unop op)
{
    switch (op) {
    case TS_NEG: case TS_FLOOR: case TS_CEIL: case TS_ROUND: case TS_TRUNC: case TS_SIGN: return 0;
    case TS_EXP: case TS_SQRT: case TS_RSQRT: case TS_TAN: case TS_TANH: case TS_SIGMOID: case TS_RELU:
    case TS_RECIPROCAL: case TS_EXPM1: case TS_EXP2: return 2;
    default: return 1;
    }
}

ts_tensor *ts_ag_unary(ts_unop op, const ts_tensor *a)
{
    ts_tensor *out = ts_unary(op, a);
    const ts_tensor *in[1] = { a };
    if (!out || !unop_differentiable(op) || !ts_dtype_is_float(out->dtype) || !ts_ag_needed(1, in)) return out;
    ts_node *n = ts_node_new(ts_unop_name(op), unary_backward, 1, in, 1);
    if (n) {
        n->i[0] = op;
        int saves = unop_saves(op);
        if ((saves == 1 && ts_node_save(n, 0, a)) || (saves == 2 && ts_node_save(n, 1, out))) {
            ts_node_release(n);
            n = NULL;
        }
    }
    return ag_attach(n, out, 0);
}

/* ---- where, clamp, leaky_relu ------------------------------------------------ */

static ts_status where_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    ag_scope s = {0};
    const ts_tensor *g = go[0], *c = n->saved[0];
    ts_tensor *zero = AG_BS(&s, TS_MUL, g, 0.0);
    if (ag_wants(n, 1)) gi[1] = s.failed ? NULL : ag_finish(n, 1, AG_WHERE(&s, c, g, zero));
    if (ag_wants(n, 2)) gi[2] = s.failed ? NULL : ag_finish(n, 2, AG_WHERE(&s, c, zero, g));
    bool failed = s.failed;
    ag_end(&s);
    return failed ? ts_last_status() : TS_OK;
}

ts_tensor *ts_ag_where(const ts_tensor *cond, const ts_tensor *a, const ts_tensor *b)
{
    ts_tensor *out = ts_where(cond, a, b);
    const ts_tensor *in[3] = { cond, a, b };
    if (!out || !ts_dtype_is_float(out->dtype) || !ts_ag_needed(3, in)) return out;
    ts_node *n = ts_node_new("where", where_backward, 3, in, 1);
    /* the condition never gets a gradient */
    if (n && (n->next[0].node || n->next[0].leaf)) {
        ts_node_release(n->next[0].node);
        ts_tensor_release(n->next[0].leaf);
        n->next[0].node = NULL;
        n->next[0].leaf = NULL;
    }
    if (n && ts_node_save(n, 0, cond)) { ts_node_release(n); n = NULL; }
    return ag_attach(n, out, 0);
}

static ts_status clamp_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    ag_scope s = {0};
    const ts_tensor *g = go[0], *x = n->saved[0];
    double lo = n->d[0], hi = n->d[1];
    /* gradient passes where lo <= x <= hi (PyTorch's convention at the bounds) */
    ts_tensor *mask = AG_BS(&s, TS_MUL, g, 1.0);
    if (!isnan(lo)) mask = AG_B(&s, TS_MUL, mask, AG_BS(&s, TS_GE, x, lo));
    if (!isnan(hi)) mask = AG_B(&s, TS_MUL, mask, AG_BS(&s, TS_LE, x, hi));
    gi[0] = s.failed ? NULL : ag_finish(n, 0, mask);
    ag_end(&s);
    return gi[0] ? TS_OK : ts_last_status();
}

ts_tensor *ts_ag_clamp(const ts_tensor *a, double lo, double hi)
{
    ts_tensor *out = ts_clamp(a, lo, hi);
    const ts_tensor *in[1] = { a };
    if (!out || !ts_dtype_is_float(out->dtype) || !ts_ag_needed(1, in)) return out;
    ts_node *n = ts_node_new("clamp", clamp_backward, 1, in, 1);
    if (n) {
        n->d[0] = lo;
        n->d[1] = hi;
        if (ts_node_save(n, 0, a)) { ts_node_release(n); n = NULL; }
    }
    return ag_attach(n, out, 0);
}

ts_tensor *ts_ag_leaky_relu(const ts_tensor *a, double slope)
{
    /* composed from recorded ops: where(a > 0, a, a * slope) */
    ts_tensor *pos = ts_binary_scalar(TS_GT, a, 0.0, false);
    ts_tensor *neg = pos ? ts_ag_binary_scalar(TS_MUL, a, slope, false) : NULL;
    ts_tensor *out = neg ? ts_ag_where(pos, a, neg) : NULL;
    ts_tensor_release(pos);
    ts_tensor_release(neg);
    return out;
}
