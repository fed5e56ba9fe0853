/* common.c — small helpers shared by the nn kernels (conv, pool, norm,
 * loss and their backward files): dtype staging and argument checks.
 * Declared in internal.h (which also holds the inline ts_sum_run). */
#include "internal.h"

ts_tensor *ts_contiguous_as(const ts_tensor *t, ts_dtype dt)
{
    return t->dtype == dt ? ts_contiguous(t) : ts_to_dtype(t, dt);
}

ts_tensor *ts_narrow_dtype(ts_tensor *y, ts_dtype dt)
{
    if (!y || y->dtype == dt) return y;
    ts_tensor *r = ts_to_dtype(y, dt);
    ts_tensor_release(y);
    return r;
}

ts_status ts_require_float_cpu(const char *op, const char *what, const ts_tensor *t)
{
    if (!ts_dtype_is_float(t->dtype))
        return ts_fail(TS_ERR_ARG, "%s: %s needs a floating dtype, got %s", op, what, ts_dtype_name(t->dtype));
    return ts_require_cpu(op, t);
}
