/* elementwise.c — binary, unary, where and clamp: the device-independent
 * front-ends (dtype and shape rules, result allocation) and the CPU backend
 * entries that drive the kernels of elementwise_kernels.c over strided,
 * broadcast, mixed-dtype operands through a small conversion buffer. */
#include "elementwise_kernels.h"
#include "internal.h"

#include <math.h>
#include <string.h>

static const char *const binop_names[TS_BINOP_COUNT] = {
    "add", "sub", "mul", "div", "pow", "maximum", "minimum", "remainder", "floor_divide", "atan2",
    "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
};
static const char *const unop_names[TS_UNOP_COUNT] = {
    "abs", "neg", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu", "gelu",
    "gelu_tanh", "silu", "erf", "floor", "ceil", "round", "trunc", "sign", "reciprocal", "square",
    "log1p", "expm1", "log2", "exp2", "tan", "asin", "acos", "atan", "sinh", "cosh", "logical_not",
    "isnan", "isinf",
};

const char *ts_binop_name(ts_binop op) { return (unsigned)op < TS_BINOP_COUNT ? binop_names[op] : "?"; }
const char *ts_unop_name(ts_unop op) { return (unsigned)op < TS_UNOP_COUNT ? unop_names[op] : "?"; }

static bool is_predicate(ts_binop op) { return op >= TS_EQ; }

static ts_dtype compute_of(ts_dtype dt)
{
    if (dt == TS_F64) return TS_F64;
    return ts_dtype_is_float(dt) ? TS_F32 : TS_I64;
}

static int category(ts_dtype dt)
{
    ts_dtype_kind k = ts_dtype_info(dt)->kind;
    return k == TS_KIND_FLOAT ? 2 : k == TS_KIND_INT ? 1 : 0;
}

/* PyTorch's result type of two operands: a 0-dim tensor only decides the
 * dtype when it is of a higher category (bool < int < float) than the
 * tensor with dims, so ones(3, f32) + tensor(1.5, f64) stays f32. */
static ts_dtype promote_operands(const ts_tensor *a, const ts_tensor *b)
{
    bool za = a->ndim == 0, zb = b->ndim == 0;
    if (za == zb) return ts_dtype_promote(a->dtype, b->dtype);
    ts_dtype dims = za ? b->dtype : a->dtype, zero = za ? a->dtype : b->dtype;
    return category(zero) > category(dims) ? zero : dims;
}

/* Result dtype and compute type of a binary op on a and b. */
static ts_dtype binary_dtypes(ts_binop op, const ts_tensor *a, const ts_tensor *b, ts_dtype *compute)
{
    ts_dtype common = promote_operands(a, b);
    if ((op == TS_DIV || op == TS_ATAN2) && !ts_dtype_is_float(common)) common = TS_F32;
    *compute = compute_of(common);
    return is_predicate(op) ? TS_BOOL : common;
}

/* Result dtype and compute type of a unary op on dtype a. */
static ts_dtype unary_dtypes(ts_unop op, ts_dtype a, ts_dtype *compute)
{
    ts_dtype c = compute_of(a);
    if (!ts_unary_kernel_for(op, c)) c = TS_F32;          /* exp(int) etc. give f32 */
    *compute = c;
    if (op == TS_LOGICAL_NOT || op == TS_ISNAN || op == TS_ISINF) return TS_BOOL;
    return c == compute_of(a) ? a : c;
}

/* ---- CPU: binary -------------------------------------------------------------- */

#define CHUNK 256

typedef struct {
    ts_binary_kernel k;
    ts_dtype ct, kout;            /* compute type; kernel output type (ct or bool) */
    ts_dtype dto, dta, dtb;
    ts_dtype common;              /* operands are cast to this first (PyTorch semantics) */
} binary_ctx;

/* Points *p at m elements of compute type for operand (ptr, byte stride, dtype),
 * converting into buf when needed; returns the element step (0 or 1). */
static int64_t stage(const char *ptr, int64_t stride, ts_dtype dt, ts_dtype ct, int64_t m, void *buf, const void **p)
{
    int64_t es = (int64_t)ts_dtype_size(dt);
    if (stride == 0) {
        if (dt == ct) { *p = ptr; return 0; }
        ts_convert(buf, ct, 1, ptr, dt, 0, 1);
        *p = buf;
        return 0;
    }
    if (dt == ct && stride == es) { *p = ptr; return 1; }
    ts_convert(buf, ct, 1, ptr, dt, stride / es, m);
    *p = buf;
    return 1;
}

/* Like stage, but an integer operand is first cast to the common integer
 * dtype (u8 max i8 compares 251 with 1 when -5 becomes u8, as in PyTorch). */
static int64_t stage_via(const char *ptr, int64_t stride, ts_dtype dt, ts_dtype common, ts_dtype ct, int64_t m,
                         void *buf, const void **p)
{
    if (dt == common || ct != TS_I64 || common == TS_I64 || common == TS_BOOL) return stage(ptr, stride, dt, ct, m, buf, p);
    _Alignas(64) char tmp[CHUNK * 8];
    const void *q;
    int64_t step = stage(ptr, stride, dt, common, m, tmp, &q);
    ts_convert(buf, ct, 1, q, common, 1, step ? m : 1);
    *p = buf;
    return step;
}

static void binary_loop(char **p, const int64_t *s, int64_t n, void *vctx)
{
    const binary_ctx *c = vctx;
    int64_t oes = (int64_t)ts_dtype_size(c->dto);
    _Alignas(64) char abuf[CHUNK * 8], bbuf[CHUNK * 8], obuf[CHUNK * 8];
    for (int64_t off = 0; off < n; off += CHUNK) {
        int64_t m = n - off < CHUNK ? n - off : CHUNK;
        const void *ap, *bp;
        int64_t sa = stage_via(p[1] + off * s[1], s[1], c->dta, c->common, c->ct, m, abuf, &ap);
        int64_t sb = stage_via(p[2] + off * s[2], s[2], c->dtb, c->common, c->ct, m, bbuf, &bp);
        char *op = p[0] + off * s[0];
        if (c->dto == c->kout && s[0] == oes) {
            c->k(m, op, ap, sa, bp, sb);
        } else {
            c->k(m, obuf, ap, sa, bp, sb);
            ts_convert(op, c->dto, s[0] / oes, obuf, c->kout, 1, m);
        }
    }
}

typedef struct { const binary_ctx *c; char *o, *a, *b; int64_t sa, sb, oes, aes, bes; } flat_ctx;

static void binary_flat_part(int64_t begin, int64_t end, void *v)
{
    const flat_ctx *f = v;
    f->c->k(end - begin, f->o + begin * f->oes, f->a + begin * f->sa * f->aes, f->sa,
            f->b + begin * f->sb * f->bes, f->sb);
}

static ts_status cpu_binary(ts_binop op, ts_tensor *out, const ts_tensor *a, const ts_tensor *b)
{
    binary_ctx c;
    binary_dtypes(op, a, b, &c.ct);
    c.common = promote_operands(a, b);
    c.k = ts_binary_kernel_for(op, c.ct);
    if (!c.k)
        return ts_fail(TS_ERR_ARG, "%s: not defined for dtypes %s and %s", ts_binop_name(op),
                       ts_dtype_name(a->dtype), ts_dtype_name(b->dtype));
    c.kout = is_predicate(op) ? TS_BOOL : c.ct;
    c.dto = out->dtype; c.dta = a->dtype; c.dtb = b->dtype;
    int64_t n = ts_tensor_numel(out);
    int64_t na = ts_tensor_numel(a), nb = ts_tensor_numel(b);
    /* fast path: everything contiguous in the compute dtype, b same size or a scalar */
    if (c.dto == c.kout && c.dta == c.ct && c.dtb == c.ct && ts_tensor_is_contiguous(out) &&
        ts_tensor_is_contiguous(a) && ts_tensor_is_contiguous(b) &&
        (na == n || na == 1) && (nb == n || nb == 1)) {
        flat_ctx f = { &c, ts_tensor_data(out), ts_tensor_data(a), ts_tensor_data(b), na == n, nb == n,
                       (int64_t)ts_dtype_size(c.dto), (int64_t)ts_dtype_size(c.ct), (int64_t)ts_dtype_size(c.ct) };
        if (n < 2 * TS_GRAIN_ELEMENTWISE) binary_flat_part(0, n, &f);
        else ts_parallel_for(n, TS_GRAIN_ELEMENTWISE, binary_flat_part, &f);
        return TS_OK;
    }
    ts_iter it;
    const ts_tensor *ops[3] = { out, a, b };
    ts_iter_init(&it, 3, ops, out->shape, out->ndim);
    ts_iter_run(&it, binary_loop, &c, TS_GRAIN_ELEMENTWISE);
    return TS_OK;
}

/* ---- CPU: unary ------------------------------------------------------------------ */

typedef struct { ts_unary_kernel k; ts_dtype ct, kout, dto, dta; } unary_ctx;

static void unary_loop(char **p, const int64_t *s, int64_t n, void *vctx)
{
    const unary_ctx *c = vctx;
    int64_t oes = (int64_t)ts_dtype_size(c->dto);
    _Alignas(64) char abuf[CHUNK * 8], obuf[CHUNK * 8];
    for (int64_t off = 0; off < n; off += CHUNK) {
        int64_t m = n - off < CHUNK ? n - off : CHUNK;
        const void *ap;
        if (stage(p[1] + off * s[1], s[1], c->dta, c->ct, m, abuf, &ap) == 0) {
            /* broadcast input: expand the one value */
            ts_convert(abuf, c->ct, 1, ap, c->ct, 0, m);
            ap = abuf;
        }
        char *op = p[0] + off * s[0];
        if (c->dto == c->kout && s[0] == oes) {
            c->k(m, op, ap);
        } else {
            c->k(m, obuf, ap);
            ts_convert(op, c->dto, s[0] / oes, obuf, c->kout, 1, m);
        }
    }
}

static ts_status cpu_unary(ts_unop op, ts_tensor *out, const ts_tensor *a)
{
    unary_ctx c;
    unary_dtypes(op, a->dtype, &c.ct);
    c.k = ts_unary_kernel_for(op, c.ct);
    if (!c.k) return ts_fail(TS_ERR_ARG, "%s: not defined for dtype %s", ts_unop_name(op), ts_dtype_name(a->dtype));
    c.kout = (op == TS_LOGICAL_NOT || op == TS_ISNAN || op == TS_ISINF) ? TS_BOOL : c.ct;
    c.dto = out->dtype; c.dta = a->dtype;
    ts_iter it;
    const ts_tensor *ops[2] = { out, a };
    ts_iter_init(&it, 2, ops, out->shape, out->ndim);
    ts_iter_run(&it, unary_loop, &c, TS_GRAIN_HEAVY);
    return TS_OK;
}

/* ---- CPU: where, clamp --------------------------------------------------------- */

typedef struct { ts_dtype dto, dtc, dta, dtb; } where_ctx;

static void where_loop(char **p, const int64_t *s, int64_t n, void *vctx)
{
    const where_ctx *c = vctx;
    size_t es = ts_dtype_size(c->dto);
    _Alignas(64) char cbuf[CHUNK], abuf[CHUNK * 8], bbuf[CHUNK * 8];
    for (int64_t off = 0; off < n; off += CHUNK) {
        int64_t m = n - off < CHUNK ? n - off : CHUNK;
        const void *cp, *ap, *bp;
        int64_t sc = stage(p[1] + off * s[1], s[1], c->dtc, TS_BOOL, m, cbuf, &cp);
        int64_t sa = stage(p[2] + off * s[2], s[2], c->dta, c->dto, m, abuf, &ap);
        int64_t sb = stage(p[3] + off * s[3], s[3], c->dtb, c->dto, m, bbuf, &bp);
        for (int64_t i = 0; i < m; i++) {
            const char *src = ((const uint8_t *)cp)[i * sc] ? (const char *)ap + (size_t)(i * sa) * es
                                                             : (const char *)bp + (size_t)(i * sb) * es;
            memcpy(p[0] + (off + i) * s[0], src, es);
        }
    }
}

static ts_status cpu_where(ts_tensor *out, const ts_tensor *cond, const ts_tensor *a, const ts_tensor *b)
{
    where_ctx c = { out->dtype, cond->dtype, a->dtype, b->dtype };
    ts_iter it;
    const ts_tensor *ops[4] = { out, cond, a, b };
    ts_iter_init(&it, 4, ops, out->shape, out->ndim);
    ts_iter_run(&it, where_loop, &c, TS_GRAIN_ELEMENTWISE);
    return TS_OK;
}

typedef struct { ts_dtype dto, dta; double lo, hi; } clamp_ctx;

static void clamp_loop(char **p, const int64_t *s, int64_t n, void *vctx)
{
    const clamp_ctx *c = vctx;
    int64_t oes = (int64_t)ts_dtype_size(c->dto), aes = (int64_t)ts_dtype_size(c->dta);
    if (c->dto == TS_F32 && c->dta == TS_F32 && s[0] == 4 && s[1] == 4) {
        float *o = (float *)p[0];
        const float *x = (const float *)p[1];
        float lo = (float)c->lo, hi = (float)c->hi;
        bool has_lo = !isnan(c->lo), has_hi = !isnan(c->hi);
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            if (has_lo && v < lo) v = lo;
            if (has_hi && v > hi) v = hi;
            o[i] = v;
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double v = ts_load_f64(p[1] + i * s[1], c->dta, 0);
        if (!isnan(c->lo) && v < c->lo) v = c->lo;
        if (!isnan(c->hi) && v > c->hi) v = c->hi;
        ts_store_f64(p[0] + i * s[0], c->dto, 0, v);
    }
    (void)oes; (void)aes;
}

static ts_status cpu_clamp(ts_tensor *out, const ts_tensor *a, double lo, double hi)
{
    clamp_ctx c = { out->dtype, a->dtype, lo, hi };
    ts_iter it;
    const ts_tensor *ops[2] = { out, a };
    ts_iter_init(&it, 2, ops, out->shape, out->ndim);
    ts_iter_run(&it, clamp_loop, &c, TS_GRAIN_ELEMENTWISE);
    return TS_OK;
}

/* Registered in cpu_backend.c. */
ts_status ts_cpu_binary(ts_binop op, ts_tensor *out, const ts_tensor *a, const ts_tensor *b) { return cpu_binary(op, out, a, b); }
ts_status ts_cpu_unary(ts_unop op, ts_tensor *out, const ts_tensor *a) { return cpu_unary(op, out, a); }
ts_status ts_cpu_where(ts_tensor *out, const ts_tensor *c, const ts_tensor *a, const ts_tensor *b) { return cpu_where(out, c, a, b); }
ts_status ts_cpu_clamp(ts_tensor *out, const ts_tensor *a, double lo, double hi) { return cpu_clamp(out, a, lo, hi); }

/* ---- front-ends ------------------------------------------------------------------- */

static const ts_backend *backend_for(const char *op, const ts_tensor *a, void *entry)
{
    const ts_backend *be = ts_backend_of(a);
    if (!be || !entry)
        return ts_fail_null(TS_ERR_UNSUPPORTED, "%s: not implemented on the %s device", op, be ? be->name : "?");
    return be;
}

ts_status ts_binary_out(ts_binop op, ts_tensor *out, const ts_tensor *a, const ts_tensor *b)
{
    if ((unsigned)op >= TS_BINOP_COUNT) return ts_fail(TS_ERR_ARG, "binary: invalid op %d", (int)op);
    const char *name = ts_binop_name(op);
    if (ts_require_same_device(name, a, b) || ts_require_same_device(name, out, a)) return ts_last_status();
    if (ts_require_writable(name, out)) return ts_last_status();
    int64_t shape[TS_MAX_DIMS];
    int nd;
    if (ts_broadcast_shapes(name, a->shape, a->ndim, b->shape, b->ndim, shape, &nd)) return ts_last_status();
    if (nd != out->ndim || memcmp(shape, out->shape, sizeof(int64_t) * (size_t)nd) != 0) {
        char s1[TS_SHAPE_STR_CAP], s2[TS_SHAPE_STR_CAP];
        return ts_fail(TS_ERR_ARG, "%s: output has shape %s but the operands broadcast to %s", name,
                       ts_shape_str(out->shape, out->ndim, s1, sizeof s1), ts_shape_str(shape, nd, s2, sizeof s2));
    }
    const ts_backend *be = ts_backend_of(a);
    if (!backend_for(name, a, be ? (void *)be->binary : NULL)) return ts_last_status();
    return be->binary(op, out, a, b);
}

ts_tensor *ts_binary(ts_binop op, const ts_tensor *a, const ts_tensor *b)
{
    if ((unsigned)op >= TS_BINOP_COUNT) return ts_fail_null(TS_ERR_ARG, "binary: invalid op %d", (int)op);
    const char *name = ts_binop_name(op);
    if (ts_require_same_device(name, a, b)) return NULL;
    int64_t shape[TS_MAX_DIMS];
    int nd;
    if (ts_broadcast_shapes(name, a->shape, a->ndim, b->shape, b->ndim, shape, &nd)) return NULL;
    ts_dtype ct, odt = binary_dtypes(op, a, b, &ct);
    const ts_backend *be = backend_for(name, a, ts_backend_of(a) ? (void *)ts_backend_of(a)->binary : NULL);
    if (!be) return NULL;
    ts_tensor *out = ts_tensor_new_on(a, shape, nd, odt);
    if (!out) return NULL;
    if (be->binary(op, out, a, b)) { ts_tensor_release(out); return NULL; }
    return out;
}

ts_status ts_binary_(ts_binop op, ts_tensor *a, const ts_tensor *b)
{
    ts_dtype ct, odt = binary_dtypes(op, a, b, &ct);
    if (!is_predicate(op) && ts_dtype_is_float(odt) && !ts_dtype_is_float(a->dtype))
        return ts_fail(TS_ERR_ARG, "%s_: result type %s can't be cast to the in-place operand's type %s",
                       ts_binop_name(op), ts_dtype_name(odt), ts_dtype_name(a->dtype));
    return ts_binary_out(op, a, a, b);
}

/* A 0-dim CPU tensor on the stack holding v, typed for pairing with `t`. */
typedef struct { ts_tensor t; ts_storage s; double buf; } stack_scalar;

static const ts_tensor *make_scalar(stack_scalar *sc, const ts_tensor *t, double v)
{
    ts_dtype dt;
    if (ts_dtype_is_float(t->dtype)) dt = t->dtype;
    else if (v != floor(v) || isinf(v)) dt = TS_F32;
    else dt = t->dtype == TS_BOOL ? TS_I64 : t->dtype;
    memset(sc, 0, sizeof *sc);
    sc->s.refcount = 1;
    sc->s.kind = TS_STORAGE_EXTERNAL;
    sc->s.data = &sc->buf;
    sc->s.nbytes = sizeof sc->buf;
    sc->s.device = t->storage->device;   /* device kernels read scalars from host memory */
    sc->t.refcount = 1;
    sc->t.dtype = dt;
    sc->t.storage = &sc->s;
    ts_store_f64(&sc->buf, dt, 0, v);
    return &sc->t;
}

ts_tensor *ts_binary_scalar(ts_binop op, const ts_tensor *a, double s, bool reversed)
{
    stack_scalar sc;
    const ts_tensor *b = make_scalar(&sc, a, s);
    return reversed ? ts_binary(op, b, a) : ts_binary(op, a, b);
}

ts_status ts_binary_scalar_(ts_binop op, ts_tensor *a, double s)
{
    stack_scalar sc;
    return ts_binary_(op, a, make_scalar(&sc, a, s));
}

ts_status ts_unary_out(ts_unop op, ts_tensor *out, const ts_tensor *a)
{
    if ((unsigned)op >= TS_UNOP_COUNT) return ts_fail(TS_ERR_ARG, "unary: invalid op %d", (int)op);
    const char *name = ts_unop_name(op);
    if (ts_require_same_device(name, out, a) || ts_require_writable(name, out)) return ts_last_status();
    int64_t shape[TS_MAX_DIMS];
    int nd;
    if (ts_broadcast_shapes(name, out->shape, out->ndim, a->shape, a->ndim, shape, &nd)) return ts_last_status();
    if (nd != out->ndim || memcmp(shape, out->shape, sizeof(int64_t) * (size_t)nd) != 0)
        return ts_fail(TS_ERR_ARG, "%s: input does not fit the output's shape", name);
    const ts_backend *be = ts_backend_of(a);
    if (!backend_for(name, a, be ? (void *)be->unary : NULL)) return ts_last_status();
    return be->unary(op, out, a);
}

ts_tensor *ts_unary(ts_unop op, const ts_tensor *a)
{
    if ((unsigned)op >= TS_UNOP_COUNT) return ts_fail_null(TS_ERR_ARG, "unary: invalid op %d", (int)op);
    ts_dtype ct, odt = unary_dtypes(op, a->dtype, &ct);
    const ts_backend *be = ts_backend_of(a);
    if (!backend_for(ts_unop_name(op), a, be ? (void *)be->unary : NULL)) return NULL;
    ts_tensor *out = ts_tensor_new_on(a, a->shape, a->ndim, odt);
    if (!out) return NULL;
    if (be->unary(op, out, a)) { ts_tensor_release(out); return NULL; }
    return out;
}

ts_status ts_unary_(ts_unop op, ts_tensor *a)
{
    ts_dtype ct, odt = unary_dtypes(op, a->dtype, &ct);
    if (ts_dtype_is_float(odt) && !ts_dtype_is_float(a->dtype))
        return ts_fail(TS_ERR_ARG, "%s_: result type %s can't be cast to the in-place operand's type %s",
                       ts_unop_name(op), ts_dtype_name(odt), ts_dtype_name(a->dtype));
    return ts_unary_out(op, a, a);
}

ts_tensor *ts_where(const ts_tensor *cond, const ts_tensor *a, const ts_tensor *b)
{
    if (ts_require_same_device("where", cond, a) || ts_require_same_device("where", a, b)) return NULL;
    int64_t s1[TS_MAX_DIMS], shape[TS_MAX_DIMS];
    int n1, nd;
    if (ts_broadcast_shapes("where", cond->shape, cond->ndim, a->shape, a->ndim, s1, &n1) ||
        ts_broadcast_shapes("where", s1, n1, b->shape, b->ndim, shape, &nd))
        return NULL;
    const ts_backend *be = ts_backend_of(a);
    if (!backend_for("where", a, be ? (void *)be->where : NULL)) return NULL;
    ts_tensor *out = ts_tensor_new_on(a, shape, nd, promote_operands(a, b));
    if (!out) return NULL;
    if (be->where(out, cond, a, b)) { ts_tensor_release(out); return NULL; }
    return out;
}

ts_tensor *ts_clamp(const ts_tensor *a, double lo, double hi)
{
    if (!isnan(lo) && !isnan(hi) && lo > hi)
        return ts_fail_null(TS_ERR_ARG, "clamp: min %g is greater than max %g", lo, hi);
    const ts_backend *be = ts_backend_of(a);
    if (!backend_for("clamp", a, be ? (void *)be->clamp : NULL)) return NULL;
    ts_tensor *out = ts_tensor_new_on(a, a->shape, a->ndim, a->dtype);
    if (!out) return NULL;
    if (be->clamp(out, a, lo, hi)) { ts_tensor_release(out); return NULL; }
    return out;
}

ts_status ts_clamp_(ts_tensor *a, double lo, double hi)
{
    if (ts_require_writable("clamp_", a)) return ts_last_status();
    const ts_backend *be = ts_backend_of(a);
    if (!backend_for("clamp_", a, be ? (void *)be->clamp : NULL)) return ts_last_status();
    return be->clamp(a, a, lo, hi);
}

ts_tensor *ts_leaky_relu(const ts_tensor *a, double slope)
{
    /* where(a > 0, a, a * slope) */
    ts_tensor *zero = ts_tensor_scalar(0, a->dtype);
    ts_tensor *pos = zero ? ts_binary(TS_GT, a, zero) : NULL;
    ts_tensor *neg = pos ? ts_binary_scalar(TS_MUL, a, slope, false) : NULL;
    ts_tensor *out = neg ? ts_where(pos, a, neg) : NULL;
    ts_tensor_release(zero);
    ts_tensor_release(pos);
    ts_tensor_release(neg);
    return out;
}
