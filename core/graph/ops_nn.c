/* ops_nn.c — the graph's math and activation ops with ONNX semantics
 * (opsets 11..17, and Gelu from opset 20): unary math (Relu, Sigmoid, Tanh,
 * Erf, Sqrt, Exp, Log, Neg, Abs, Reciprocal, Floor, Ceil, Round, Sign, Sin,
 * Cos, Tan, Asin, Acos, Atan, Sinh, Cosh; IsNaN, IsInf giving bools),
 * activations with parameters (LeakyRelu, PRelu, HardSigmoid, HardSwish,
 * Elu, Selu, Softplus, Softsign, Gelu, Clip), Softmax / LogSoftmax, the
 * broadcasting binary ops (Add, Sub, Mul, Div, Pow, Mod) and the variadic ones
 * (Min, Max, Sum, Mean); ts_graph_register_nn_ops(), which registers these
 * and the ops of ops_nn_conv.c, ops_nn_pool.c, ops_nn_wino.c and
 * ops_nn_einsum.c; and the family's shared sliding-window geometry
 * (ops_nn.h).
 *
 * Dtypes: binary ops give ts_dtype_promote() of their operands (the same
 * dtype for valid ONNX); Div of two integer tensors truncates toward zero
 * like ONNX Runtime (not PyTorch's true division); Pow keeps the base's
 * dtype. Unary ops keep the input's dtype. Every op here is marked
 * foldable. FLOPs: numel of the output (see ops_nn.h).
 * Uses: torsh/ops.h for the math, ops.h's infer helpers. */
#include "ops_nn.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

double nn_flops_numel_out(const ts_gnode *n, const ts_gvalue *const *in, const ts_gvalue *const *out, double per)
{
    int64_t e = ts_gval_numel(out[0]);
    return e < 0 ? -1 : (double)e * per;
}

/* ---- sliding windows (ops_nn.h; for Conv, ConvTranspose and the pools) ---------------------------------------------------------------------- */

ts_status nn_read_spatial(const ts_gnode *n, const char *name, int count, int64_t dflt, int64_t lo,
                              int64_t *out)
{
    int64_t got = 0;
    const int64_t *v = ts_gnode_ints(n, name, &got);
    if (!v) {
        for (int i = 0; i < count; i++) out[i] = dflt;
        return TS_OK;
    }
    if (got != count)
        return ts_fail(TS_ERR_ARG, "%s: attribute %s has %lld values, expected %d", n->op_type, name, (long long)got,
                       count);
    for (int i = 0; i < count; i++) {
        if (v[i] < lo)
            return ts_fail(TS_ERR_ARG, "%s: attribute %s must be >= %lld, got %lld", n->op_type, name, (long long)lo,
                           (long long)v[i]);
        out[i] = v[i];
    }
    return TS_OK;
}

ts_status nn_window_read(const ts_gnode *n, int nsp, const int64_t *kernel, const int64_t *in, nn_window *w)
{
    memset(w, 0, sizeof *w);
    if (nsp < 1 || nsp > NN_MAX_SP)
        return ts_fail(TS_ERR_UNSUPPORTED, "%s: %d spatial dims are not supported (1 to %d)", n->op_type, nsp,
                       NN_MAX_SP);
    w->nsp = nsp;
    if (kernel) {
        int64_t ks[NN_MAX_SP];
        int64_t got = 0;
        if (ts_gnode_ints(n, "kernel_shape", &got)) {
            if (nn_read_spatial(n, "kernel_shape", nsp, 1, 1, ks)) return ts_last_status();
            for (int i = 0; i < nsp; i++)
                if (kernel[i] >= 0 && ks[i] != kernel[i])
                    return ts_fail(TS_ERR_ARG, "%s: kernel_shape[%d] = %lld does not match the weight's %lld",
                                   n->op_type, i, (long long)ks[i], (long long)kernel[i]);
        }
        memcpy(w->k, kernel, sizeof(int64_t) * (size_t)nsp);
    } else {
        if (!ts_gnode_attr(n, "kernel_shape"))
            return ts_fail(TS_ERR_ARG, "%s: the kernel_shape attribute is required", n->op_type);
        if (nn_read_spatial(n, "kernel_shape", nsp, 1, 1, w->k)) return ts_last_status();
    }
    int64_t pads[2 * NN_MAX_SP];
    if (nn_read_spatial(n, "strides", nsp, 1, 1, w->s) || nn_read_spatial(n, "dilations", nsp, 1, 1, w->d) ||
        nn_read_spatial(n, "pads", 2 * nsp, 0, 0, pads))
        return ts_last_status();
    w->ceil_mode = ts_gnode_int(n, "ceil_mode", 0) != 0;
    const char *ap = ts_gnode_string(n, "auto_pad", "NOTSET");
    bool upper = !strcmp(ap, "SAME_UPPER"), lower = !strcmp(ap, "SAME_LOWER");
    if (!upper && !lower && strcmp(ap, "VALID") && strcmp(ap, "NOTSET") && *ap)
        return ts_fail(TS_ERR_ARG, "%s: auto_pad \"%s\" is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID",
                       n->op_type, ap);
    for (int i = 0; i < nsp; i++) {
        w->pb[i] = pads[i];
        w->pe[i] = pads[nsp + i];
        if (!strcmp(ap, "VALID")) w->pb[i] = w->pe[i] = 0;
        if (!upper && !lower) continue;
        w->auto_pad = true;
        w->pb[i] = w->pe[i] = 0;
        if (!in || in[i] < 0 || w->k[i] < 0) continue;
        int64_t out = (in[i] + w->s[i] - 1) / w->s[i];
        int64_t total = (out - 1) * w->s[i] + (w->k[i] - 1) * w->d[i] + 1 - in[i];
        if (total < 0) total = 0;
        w->pb[i] = upper ? total / 2 : total - total / 2;
        w->pe[i] = total - w->pb[i];
    }
    return TS_OK;
}

int64_t nn_window_out(const nn_window *w, int i, int64_t in)
{
    int64_t span = (w->k[i] - 1) * w->d[i] + 1, room = in + w->pb[i] + w->pe[i] - span;
    if (room < 0) return 0;
    int64_t out = (w->ceil_mode ? (room + w->s[i] - 1) / w->s[i] : room / w->s[i]) + 1;
    if (w->ceil_mode && (out - 1) * w->s[i] >= in + w->pb[i]) out--;
    return out;
}

ts_dim nn_window_out_dim(const nn_window *w, int i, ts_dim in)
{
    if (ts_dim_known(in)) return ts_dim_of(nn_window_out(w, i, in.size));
    int64_t span = (w->k[i] - 1) * w->d[i] + 1;
    bool same = w->auto_pad || w->pb[i] + w->pe[i] == span - 1;
    if (w->s[i] == 1 && same && in.sym >= 0) return in;
    return ts_dim_unknown();
}

static double flops_elementwise(const ts_gnode *n, const ts_gvalue *const *in, const ts_gvalue *const *out)
{
    return nn_flops_numel_out(n, in, out, 1);
}

static ts_status need_float(const ts_gnode *node, const ts_tensor *x)
{
    if (ts_dtype_is_float(x->dtype)) return TS_OK;
    return ts_fail(TS_ERR_ARG, "%s: needs a floating input, got %s", node->op_type, ts_dtype_name(x->dtype));
}

/* ---- unary math through ts_unary ------------------------------------------------- */

static ts_status k_unary(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0)) return ts_last_status();
    ts_unop op = (ts_unop)(intptr_t)ctx->user;
    ts_tensor *y = ts_unary(op, in[0]);
    return nn_out1(out, y ? ts_narrow_dtype(y, in[0]->dtype) : NULL);
}

static ts_status k_gelu(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0) || need_float(ctx->node, in[0])) return ts_last_status();
    const char *approx = ts_gnode_string(ctx->node, "approximate", "none");
    if (strcmp(approx, "none") && strcmp(approx, "tanh"))
        return ts_fail(TS_ERR_ARG, "Gelu: approximate must be \"none\" or \"tanh\", got \"%s\"", approx);
    return nn_out1(out, ts_unary(strcmp(approx, "tanh") ? TS_GELU : TS_GELU_TANH, in[0]));
}

static ts_status k_leaky_relu(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0) || need_float(ctx->node, in[0])) return ts_last_status();
    return nn_out1(out, ts_leaky_relu(in[0], ts_gnode_float(ctx->node, "alpha", 0.01)));
}

/* PRelu: x < 0 ? slope * x : x, slope broadcast (unidirectionally) to x. */
static ts_status k_prelu(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0) || ts_kernel_need(ctx, in, n_in, 1) || need_float(ctx->node, in[0]))
        return ts_last_status();
    ts_tensor *neg = ts_binary_scalar(TS_LT, in[0], 0, false);
    ts_tensor *scaled = neg ? ts_binary(TS_MUL, in[0], in[1]) : NULL;
    ts_tensor *y = scaled ? ts_where(neg, scaled, in[0]) : NULL;
    ts_tensor_release(neg);
    ts_tensor_release(scaled);
    return nn_out1(out, y ? ts_narrow_dtype(y, in[0]->dtype) : NULL);
}

/* ---- activations with parameters: one pass over a contiguous f32/f64 copy ------------ */

typedef enum map_kind { MAP_HARD_SIGMOID, MAP_HARD_SWISH, MAP_ELU, MAP_SELU, MAP_SOFTPLUS, MAP_SOFTSIGN } map_kind;

typedef struct map_job {
    map_kind kind;
    double a, b;       /* the op's alpha / beta (gamma for Selu) */
    bool dbl;
    const char *x;
    char *y;
} map_job;

static inline __attribute__((always_inline)) double map_one(map_kind k, double v, double a, double b)
{
    switch (k) {
    case MAP_HARD_SIGMOID: return fmax(0.0, fmin(1.0, a * v + b));
    case MAP_HARD_SWISH: return v * fmax(0.0, fmin(1.0, a * v + b));
    case MAP_ELU: return v < 0 ? a * expm1(v) : v;
    case MAP_SELU: return v <= 0 ? b * a * expm1(v) : b * v;
    case MAP_SOFTPLUS: return v > 20 ? v : log1p(exp(v));
    case MAP_SOFTSIGN: return v / (1 + fabs(v));
    }
    return v;
}

static void map_range(int64_t begin, int64_t end, void *ctx)
{
    const map_job *j = ctx;
    if (j->dbl) {
        const double *x = (const double *)j->x;
        double *y = (double *)j->y;
        for (int64_t i = begin; i < end; i++) y[i] = map_one(j->kind, x[i], j->a, j->b);
    } else {
        const float *x = (const float *)j->x;
        float *y = (float *)j->y;
        for (int64_t i = begin; i < end; i++) y[i] = (float)map_one(j->kind, x[i], j->a, j->b);
    }
}

static ts_tensor *nn_map(const ts_tensor *x, map_kind kind, double a, double b)
{
    ts_dtype ct = ts_float_compute_dtype(x->dtype);
    ts_tensor *xc = ts_contiguous_as(x, ct);
    ts_tensor *y = xc ? ts_tensor_new(x->shape, x->ndim, ct) : NULL;
    if (y) {
        map_job j = { kind, a, b, ct == TS_F64, ts_tensor_data(xc), ts_tensor_data(y) };
        ts_parallel_for(ts_tensor_numel(y), TS_GRAIN_HEAVY, map_range, &j);
    }
    ts_tensor_release(xc);
    return y ? ts_narrow_dtype(y, x->dtype) : NULL;
}

static ts_status k_map(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0) || need_float(ctx->node, in[0])) return ts_last_status();
    map_kind kind = (map_kind)(intptr_t)ctx->user;
    const ts_gnode *n = ctx->node;
    double a = 0, b = 0;
    switch (kind) {
    case MAP_HARD_SIGMOID: a = ts_gnode_float(n, "alpha", 0.2); b = ts_gnode_float(n, "beta", 0.5); break;
    case MAP_HARD_SWISH: a = 1.0 / 6; b = 0.5; break;
    case MAP_ELU: a = ts_gnode_float(n, "alpha", 1.0); break;
    case MAP_SELU:
        a = ts_gnode_float(n, "alpha", 1.67326319217681884765625);
        b = ts_gnode_float(n, "gamma", 1.05070102214813232421875);
        break;
    default: break;
    }
    return nn_out1(out, nn_map(in[0], kind, a, b));
}

/* IsNaN / IsInf (detect_negative, detect_positive): bool results. */
static ts_status k_is(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0)) return ts_last_status();
    bool inf = ctx->user != NULL;
    ts_tensor *y = ts_unary(inf ? TS_ISINF : TS_ISNAN, in[0]);
    bool neg = ts_gnode_int(ctx->node, "detect_negative", 1) != 0, pos = ts_gnode_int(ctx->node, "detect_positive", 1) != 0;
    if (y && inf && neg != pos) {   /* only one side: and with the sign test */
        ts_tensor *side = ts_binary_scalar(neg ? TS_LT : TS_GT, in[0], 0, false);
        ts_tensor *both = side ? ts_binary(TS_LOGICAL_AND, y, side) : NULL;
        ts_tensor_release(side);
        ts_tensor_release(y);
        y = both;
    } else if (y && inf && !neg) {
        ts_tensor_release(y);
        y = ts_tensor_zeros(in[0]->shape, in[0]->ndim, TS_BOOL);
    }
    return nn_out1(out, y);
}

static ts_status infer_bool_same(ts_graph *g, const ts_gnode *n, int64_t opset, const ts_gvalue *const *in,
                                 ts_gvalue *const *out)
{
    if (!in[0]) return ts_fail(TS_ERR_ARG, "%s: input X is missing", n->op_type);
    ts_gval_set(out[0], TS_BOOL, in[0]->ndim, in[0]->ndim >= 0 ? in[0]->dims : NULL);
    return TS_OK;
}

/* Mod: fmod = 0 (integers) takes the divisor's sign like Python's %;
 * fmod = 1 the dividend's, like C's fmod (required for floats). */
static ts_status k_mod(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0) || ts_kernel_need(ctx, in, n_in, 1)) return ts_last_status();
    const ts_tensor *a = in[0], *b = in[1];
    ts_dtype dt = ts_dtype_promote(a->dtype, b->dtype);
    bool fmod = ts_gnode_int(ctx->node, "fmod", 0) != 0;
    if (!fmod && ts_dtype_is_float(dt))
        return ts_fail(TS_ERR_ARG, "Mod: floating inputs need fmod = 1");
    ts_tensor *r = ts_binary(TS_REMAINDER, a, b);
    if (r && fmod) {   /* remainder has b's sign: where it is non-zero and the signs of a and b differ, r - b */
        ts_tensor *nz = ts_binary_scalar(TS_NE, r, 0, false);
        ts_tensor *sa = nz ? ts_binary_scalar(TS_LT, a, 0, false) : NULL, *sb = sa ? ts_binary_scalar(TS_LT, b, 0, false) : NULL;
        ts_tensor *diff = sb ? ts_binary(TS_NE, sa, sb) : NULL, *mask = diff ? ts_binary(TS_LOGICAL_AND, nz, diff) : NULL;
        ts_tensor *rb = mask ? ts_binary(TS_SUB, r, b) : NULL, *y = rb ? ts_where(mask, rb, r) : NULL;
        ts_tensor_release(nz); ts_tensor_release(sa); ts_tensor_release(sb); ts_tensor_release(diff);
        ts_tensor_release(mask); ts_tensor_release(rb); ts_tensor_release(r);
        r = y;
    }
    return nn_out1(out, r ? ts_narrow_dtype(r, dt) : NULL);
}

/* ---- Clip ----------------------------------------------------------------------------- */

/* Bounds: attributes min/max before opset 11, optional scalar inputs from 11. */
static ts_status k_clip(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0)) return ts_last_status();
    double lo = NAN, hi = NAN;
    if (ctx->opset > 0 && ctx->opset < 11) {
        if (ts_gnode_attr(ctx->node, "min")) lo = ts_gnode_float(ctx->node, "min", 0);
        if (ts_gnode_attr(ctx->node, "max")) hi = ts_gnode_float(ctx->node, "max", 0);
    } else {
        if (n_in > 1 && in[1] && ts_tensor_read_scalar(in[1], "Clip: min", &lo)) return ts_last_status();
        if (n_in > 2 && in[2] && ts_tensor_read_scalar(in[2], "Clip: max", &hi)) return ts_last_status();
    }
    return nn_out1(out, ts_clamp(in[0], lo, hi));
}

/* ---- Softmax / LogSoftmax ------------------------------------------------------------- */

/* Opset >= 13: along `axis` (default -1). Before 13: the input is coerced to
 * 2-D [prod(dims[:axis]), prod(dims[axis:])] (axis default 1) and each row
 * normalised. */
static ts_status k_softmax(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0) || need_float(ctx->node, in[0])) return ts_last_status();
    bool take_log = ctx->user != NULL;
    const ts_tensor *x = in[0];
    bool new_rule = ctx->opset <= 0 || ctx->opset >= 13;
    int axis;
    if (x->ndim == 0) return ts_fail(TS_ERR_ARG, "%s: input must have at least 1 dim", ctx->node->op_type);
    if (ts_node_axis(ctx->node, ts_gnode_int(ctx->node, "axis", new_rule ? -1 : 1), x->ndim, &axis))
        return ts_last_status();
    if (new_rule || axis == x->ndim - 1)
        return nn_out1(out, take_log ? ts_log_softmax(x, axis) : ts_softmax(x, axis));
    int64_t rows = 1, cols = 1;
    for (int i = 0; i < x->ndim; i++) *(i < axis ? &rows : &cols) *= x->shape[i];
    int64_t flat[2] = { rows, cols };
    ts_tensor *x2 = ts_reshape(x, flat, 2);
    ts_tensor *y2 = x2 ? (take_log ? ts_log_softmax(x2, 1) : ts_softmax(x2, 1)) : NULL;
    ts_tensor *y = y2 ? ts_reshape(y2, x->shape, x->ndim) : NULL;
    ts_tensor_release(x2);
    ts_tensor_release(y2);
    return nn_out1(out, y);
}

static double flops_softmax(const ts_gnode *n, const ts_gvalue *const *in, const ts_gvalue *const *out)
{
    return nn_flops_numel_out(n, in, out, 3);
}

/* ---- binary ops ---------------------------------------------------------------------- */

/* a / b for integer tensors, truncating toward zero, in dtype dt. */
static ts_tensor *int_div(const ts_tensor *a, const ts_tensor *b, ts_dtype dt)
{
    int64_t shape[TS_MAX_DIMS];
    int nd;
    if (ts_broadcast_shapes("Div", a->shape, a->ndim, b->shape, b->ndim, shape, &nd)) return NULL;
    ts_tensor *ae = ts_expand(a, shape, nd), *be = ae ? ts_expand(b, shape, nd) : NULL;
    ts_tensor *ac = be ? ts_contiguous_as(ae, TS_I64) : NULL, *bc = ac ? ts_contiguous_as(be, TS_I64) : NULL;
    ts_tensor *y = bc ? ts_tensor_new(shape, nd, TS_I64) : NULL;
    if (y) {
        const int64_t *pa = ts_tensor_data(ac), *pb = ts_tensor_data(bc);
        int64_t *py = ts_tensor_data(y), n = ts_tensor_numel(y);
        for (int64_t i = 0; i < n; i++) {
            if (pb[i] == 0) {
                ts_tensor_release(y);
                y = ts_fail_null(TS_ERR_ARG, "Div: integer division by zero (element %lld)", (long long)i);
                break;
            }
            py[i] = pb[i] == -1 ? (int64_t)(0 - (uint64_t)pa[i]) : pa[i] / pb[i];
        }
    }
    ts_tensor_release(ae);
    ts_tensor_release(be);
    ts_tensor_release(ac);
    ts_tensor_release(bc);
    return y ? ts_narrow_dtype(y, dt) : NULL;
}

static ts_dtype binary_dtype(ts_binop op, ts_dtype a, ts_dtype b)
{
    return op == TS_POW ? a : ts_dtype_promote(a, b);
}

static ts_status k_binary(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0) || ts_kernel_need(ctx, in, n_in, 1)) return ts_last_status();
    ts_binop op = (ts_binop)(intptr_t)ctx->user;
    ts_dtype dt = binary_dtype(op, in[0]->dtype, in[1]->dtype);
    if (op == TS_DIV && !ts_dtype_is_float(dt)) return nn_out1(out, int_div(in[0], in[1], dt));
    ts_tensor *y = ts_binary(op, in[0], in[1]);
    return nn_out1(out, y ? ts_narrow_dtype(y, dt) : NULL);
}

static ts_status infer_binary(ts_graph *g, const ts_gnode *n, int64_t opset, const ts_gvalue *const *in,
                              ts_gvalue *const *out)
{
    ts_dtype dt = TS_DTYPE_UNKNOWN;
    ts_binop op = strcmp(n->op_type, "Pow") ? TS_ADD : TS_POW;
    if (n->n_inputs >= 2 && in[0] && in[1] && in[0]->dtype != TS_DTYPE_UNKNOWN && in[1]->dtype != TS_DTYPE_UNKNOWN)
        dt = binary_dtype(op, in[0]->dtype, in[1]->dtype);
    return ts_infer_broadcast_to(g, n, in, out[0], dt);
}

/* ---- variadic: Min, Max, Sum, Mean ------------------------------------------------------ */

typedef enum var_kind { VAR_MIN, VAR_MAX, VAR_SUM, VAR_MEAN } var_kind;

static ts_status k_variadic(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    var_kind kind = (var_kind)(intptr_t)ctx->user;
    ts_binop op = kind == VAR_MIN ? TS_MINIMUM : kind == VAR_MAX ? TS_MAXIMUM : TS_ADD;
    if (n_in < 1) return ts_fail(TS_ERR_ARG, "%s: needs at least one input", ctx->node->op_type);
    ts_dtype dt = TS_DTYPE_UNKNOWN;
    for (int i = 0; i < n_in; i++) {
        if (ts_kernel_need(ctx, in, n_in, i)) return ts_last_status();
        dt = i == 0 ? in[0]->dtype : ts_dtype_promote(dt, in[i]->dtype);
    }
    if (kind == VAR_MEAN && !ts_dtype_is_float(dt))
        return ts_fail(TS_ERR_ARG, "Mean: needs floating inputs, got %s", ts_dtype_name(dt));
    ts_tensor *acc = in[0];
    ts_tensor_retain(acc);
    for (int i = 1; i < n_in && acc; i++) {
        ts_tensor *next = ts_binary(op, acc, in[i]);
        ts_tensor_release(acc);
        acc = next;
    }
    if (acc && kind == VAR_MEAN && n_in > 1) ts_binary_scalar_(TS_DIV, acc, (double)n_in);
    return nn_out1(out, acc ? ts_narrow_dtype(acc, dt) : NULL);
}

static ts_status infer_variadic(ts_graph *g, const ts_gnode *n, int64_t opset, const ts_gvalue *const *in,
                                ts_gvalue *const *out)
{
    ts_dtype dt = TS_DTYPE_UNKNOWN;
    for (int i = 0; i < n->n_inputs; i++) {
        if (!in[i]) continue;
        if (in[i]->dtype == TS_DTYPE_UNKNOWN) { dt = TS_DTYPE_UNKNOWN; break; }
        dt = dt == TS_DTYPE_UNKNOWN ? in[i]->dtype : ts_dtype_promote(dt, in[i]->dtype);
    }
    return ts_infer_broadcast_to(g, n, in, out[0], dt);
}

static double flops_variadic(const ts_gnode *n, const ts_gvalue *const *in, const ts_gvalue *const *out)
{
    bool mean = !strcmp(n->op_type, "Mean");
    int k = n->n_inputs;
    return nn_flops_numel_out(n, in, out, mean ? k : k - 1);
}

/* ---- registration --------------------------------------------------------------------- */

#define USER(v) ((void *)(intptr_t)(v))

static void reg(const char *op, ts_kernel_fn run, ts_infer_fn infer, ts_flops_fn flops, void *user)
{
    ts_op_def d = { op, "", run, infer, flops, true, user, NULL };
    ts_op_register(&d);
}

void ts_graph_register_nn_ops(void)
{
    static const struct { const char *name; ts_unop op; } unary[] = {
        { "Relu", TS_RELU }, { "Sigmoid", TS_SIGMOID }, { "Tanh", TS_TANH }, { "Erf", TS_ERF },
        { "Sqrt", TS_SQRT }, { "Exp", TS_EXP }, { "Log", TS_LOG }, { "Neg", TS_NEG }, { "Abs", TS_ABS },
        { "Reciprocal", TS_RECIPROCAL }, { "Floor", TS_FLOOR }, { "Ceil", TS_CEIL }, { "Sin", TS_SIN },
        { "Cos", TS_COS }, { "Tan", TS_TAN }, { "Asin", TS_ASIN }, { "Acos", TS_ACOS }, { "Atan", TS_ATAN },
        { "Sinh", TS_SINH }, { "Cosh", TS_COSH }, { "Sign", TS_SIGN }, { "Round", TS_ROUND },
    };
    for (size_t i = 0; i < sizeof unary / sizeof unary[0]; i++)
        reg(unary[i].name, k_unary, ts_infer_same, flops_elementwise, USER(unary[i].op));
    reg("IsNaN", k_is, infer_bool_same, flops_elementwise, NULL);
    reg("IsInf", k_is, infer_bool_same, flops_elementwise, USER(1));
    reg("Mod", k_mod, infer_binary, flops_elementwise, USER(TS_REMAINDER));
    reg("Gelu", k_gelu, ts_infer_same, flops_elementwise, NULL);
    reg("LeakyRelu", k_leaky_relu, ts_infer_same, flops_elementwise, NULL);
    reg("PRelu", k_prelu, ts_infer_same, flops_elementwise, NULL);
    reg("HardSigmoid", k_map, ts_infer_same, flops_elementwise, USER(MAP_HARD_SIGMOID));
    reg("HardSwish", k_map, ts_infer_same, flops_elementwise, USER(MAP_HARD_SWISH));
    reg("Elu", k_map, ts_infer_same, flops_elementwise, USER(MAP_ELU));
    reg("Selu", k_map, ts_infer_same, flops_elementwise, USER(MAP_SELU));
    reg("Softplus", k_map, ts_infer_same, flops_elementwise, USER(MAP_SOFTPLUS));
    reg("Softsign", k_map, ts_infer_same, flops_elementwise, USER(MAP_SOFTSIGN));
    reg("Clip", k_clip, ts_infer_same, flops_elementwise, NULL);
    reg("Softmax", k_softmax, ts_infer_same, flops_softmax, NULL);
    reg("LogSoftmax", k_softmax, ts_infer_same, flops_softmax, USER(1));
    static const struct { const char *name; ts_binop op; } binary[] = {
        { "Add", TS_ADD }, { "Sub", TS_SUB }, { "Mul", TS_MUL }, { "Div", TS_DIV }, { "Pow", TS_POW },
    };
    for (size_t i = 0; i < sizeof binary / sizeof binary[0]; i++)
        reg(binary[i].name, k_binary, infer_binary, flops_elementwise, USER(binary[i].op));
    reg("Min", k_variadic, infer_variadic, flops_variadic, USER(VAR_MIN));
    reg("Max", k_variadic, infer_variadic, flops_variadic, USER(VAR_MAX));
    reg("Sum", k_variadic, infer_variadic, flops_variadic, USER(VAR_SUM));
    reg("Mean", k_variadic, infer_variadic, flops_variadic, USER(VAR_MEAN));
    ts_nn_register_conv_ops();
    ts_nn_register_pool_norm_ops();
    ts_nn_register_wino_ops();
    ts_nn_register_einsum_ops();
}
