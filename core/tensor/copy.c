/* copy.c — copying and filling: copy_ (broadcasting, converting), fill_,
 * contiguous, clone, to_dtype, and the range constructors arange, linspace
 * and eye. */
#include "internal.h"

#include <math.h>
#include <string.h>

typedef struct { ts_dtype dd, sd; } copy_ctx;

static void copy_loop(char **p, const int64_t *s, int64_t n, void *vctx)
{
    const copy_ctx *c = vctx;
    int64_t des = (int64_t)ts_dtype_size(c->dd), ses = (int64_t)ts_dtype_size(c->sd);
    ts_convert(p[0], c->dd, s[0] / des, p[1], c->sd, s[1] / ses, n);
}

ts_status ts_cpu_copy(ts_tensor *dst, const ts_tensor *src)
{
    if (ts_tensor_numel(dst) == 0) return TS_OK;
    copy_ctx c = { dst->dtype, src->dtype };
    ts_iter it;
    const ts_tensor *ops[2] = { dst, src };
    ts_iter_init(&it, 2, ops, dst->shape, dst->ndim);
    ts_iter_run(&it, copy_loop, &c, TS_GRAIN_ELEMENTWISE);
    return TS_OK;
}

ts_status ts_copy_(ts_tensor *dst, const ts_tensor *src)
{
    if (ts_require_writable("copy_", dst)) return ts_last_status();
    int64_t shape[TS_MAX_DIMS];
    int nd;
    if (ts_broadcast_shapes("copy_", dst->shape, dst->ndim, src->shape, src->ndim, shape, &nd)) return ts_last_status();
    if (nd != dst->ndim || memcmp(shape, dst->shape, sizeof(int64_t) * (size_t)nd) != 0) {
        char a[TS_SHAPE_STR_CAP], b[TS_SHAPE_STR_CAP];
        return ts_fail(TS_ERR_ARG, "copy_: source of shape %s does not broadcast to destination shape %s",
                       ts_shape_str(src->shape, src->ndim, a, sizeof a), ts_shape_str(dst->shape, dst->ndim, b, sizeof b));
    }
    /* cross-device copies go to the non-CPU side's backend */
    const ts_backend *be = ts_backend_of(dst->storage->device.type != TS_CPU ? dst : src);
    if (!be || !be->copy) return ts_fail(TS_ERR_UNSUPPORTED, "copy_: no copy kernel for this device");
    return be->copy(dst, src);
}

typedef struct { ts_dtype dt; _Alignas(8) char value[8]; } fill_ctx;

static void fill_loop(char **p, const int64_t *s, int64_t n, void *vctx)
{
    const fill_ctx *c = vctx;
    size_t es = ts_dtype_size(c->dt);
    if (s[0] == (int64_t)es && es == 4) {
        uint32_t v;
        memcpy(&v, c->value, 4);
        uint32_t *o = (uint32_t *)p[0];
        for (int64_t i = 0; i < n; i++) o[i] = v;
        return;
    }
    if (s[0] == (int64_t)es && es == 1) { memset(p[0], c->value[0], (size_t)n); return; }
    for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * s[0], c->value, es);
}

ts_status ts_fill_(ts_tensor *t, double value)
{
    if (ts_require_writable("fill_", t)) return ts_last_status();
    if (t->storage->device.type != TS_CPU) {
        ts_tensor *v = ts_tensor_scalar(value, t->dtype);
        if (!v) return ts_last_status();
        ts_status st = ts_copy_(t, v);
        ts_tensor_release(v);
        return st;
    }
    fill_ctx c;
    c.dt = t->dtype;
    ts_store_f64(c.value, t->dtype, 0, value);
    if (ts_tensor_numel(t) == 0) return TS_OK;
    ts_iter it;
    const ts_tensor *ops[1] = { t };
    ts_iter_init(&it, 1, ops, t->shape, t->ndim);
    ts_iter_run(&it, fill_loop, &c, TS_GRAIN_ELEMENTWISE);
    return TS_OK;
}

ts_tensor *ts_contiguous(const ts_tensor *t)
{
    if (ts_tensor_is_contiguous(t)) {
        ts_tensor_retain((ts_tensor *)t);
        return (ts_tensor *)t;
    }
    return ts_clone(t);
}

ts_tensor *ts_clone(const ts_tensor *t)
{
    ts_tensor *out = ts_tensor_new_on(t, t->shape, t->ndim, t->dtype);
    if (out && ts_copy_(out, t)) { ts_tensor_release(out); return NULL; }
    return out;
}

ts_tensor *ts_to_dtype(const ts_tensor *t, ts_dtype dt)
{
    if ((unsigned)dt >= TS_DTYPE_COUNT) return ts_fail_null(TS_ERR_ARG, "to: invalid dtype %d", (int)dt);
    ts_tensor *out = ts_tensor_new_on(t, t->shape, t->ndim, dt);
    if (out && ts_copy_(out, t)) { ts_tensor_release(out); return NULL; }
    return out;
}

ts_tensor *ts_arange(double start, double end, double step, ts_dtype dt)
{
    if (step == 0 || isnan(step) || isnan(start) || isnan(end))
        return ts_fail_null(TS_ERR_ARG, "arange: step must be non-zero and bounds finite (start %g, end %g, step %g)",
                            start, end, step);
    if ((step > 0 && end < start) || (step < 0 && end > start))
        return ts_fail_null(TS_ERR_ARG, "arange: upper bound %g and lower bound %g are inconsistent with step sign %g",
                            end, start, step);
    double count = ceil((end - start) / step);
    if (!(count < 9e15)) return ts_fail_null(TS_ERR_ARG, "arange: %g elements is too many", count);
    int64_t n = (int64_t)count;
    ts_tensor *t = ts_tensor_new(&n, 1, dt);
    if (!t) return NULL;
    void *d = ts_tensor_data(t);
    if (!ts_dtype_is_float(dt) && start == floor(start) && step == floor(step)) {
        for (int64_t i = 0; i < n; i++) ts_store_i64(d, dt, i, (int64_t)start + i * (int64_t)step);
    } else {
        for (int64_t i = 0; i < n; i++) ts_store_f64(d, dt, i, start + (double)i * step);
    }
    return t;
}

ts_tensor *ts_linspace(double start, double end, int64_t steps, ts_dtype dt)
{
    if (steps < 0) return ts_fail_null(TS_ERR_ARG, "linspace: number of steps must be non-negative, got %lld", (long long)steps);
    ts_tensor *t = ts_tensor_new(&steps, 1, dt);
    if (!t) return NULL;
    void *d = ts_tensor_data(t);
    double step = steps > 1 ? (end - start) / (double)(steps - 1) : 0;
    /* like PyTorch: the first half counts up from start, the second down from end */
    int64_t half = steps / 2;
    for (int64_t i = 0; i < steps; i++) {
        double v = i < half ? start + step * (double)i : end - step * (double)(steps - 1 - i);
        ts_store_f64(d, dt, i, v);
    }
    return t;
}

ts_tensor *ts_eye(int64_t n, int64_t m, ts_dtype dt)
{
    if (m < 0) m = n;
    int64_t shape[2] = { n, m };
    ts_tensor *t = ts_tensor_zeros(shape, 2, dt);
    if (!t) return NULL;
    void *d = ts_tensor_data(t);
    for (int64_t i = 0; i < n && i < m; i++) ts_store_f64(d, dt, i * m + i, 1.0);
    return t;
}
