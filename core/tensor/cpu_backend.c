/* cpu_backend.c — the CPU backend's kernel table and the backend registry. */
#include "internal.h"

ts_status ts_cpu_binary(ts_binop op, ts_tensor *out, const ts_tensor *a, const ts_tensor *b);
ts_status ts_cpu_unary(ts_unop op, ts_tensor *out, const ts_tensor *a);
ts_status ts_cpu_where(ts_tensor *out, const ts_tensor *c, const ts_tensor *a, const ts_tensor *b);
ts_status ts_cpu_clamp(ts_tensor *out, const ts_tensor *a, double lo, double hi);
ts_status ts_cpu_copy(ts_tensor *dst, const ts_tensor *src);
ts_status ts_cpu_reduce(ts_redop op, ts_tensor *out, const ts_tensor *a, const bool *mask);
ts_status ts_cpu_bmm(ts_tensor *out, const ts_tensor *a, const ts_tensor *b);
ts_status ts_cpu_conv2d(ts_tensor *out, const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias,
                        const ts_conv_params *p);
ts_status ts_cpu_softmax(ts_tensor *out, const ts_tensor *x, int dim, bool log);

static ts_storage *cpu_storage_new(int index, size_t nbytes)
{
    (void)index;
    return ts_storage_new(nbytes);
}

static const ts_backend cpu_backend = {
    .name = "cpu",
    .type = TS_CPU,
    .storage_new = cpu_storage_new,
    .copy = ts_cpu_copy,
    .binary = ts_cpu_binary,
    .unary = ts_cpu_unary,
    .where = ts_cpu_where,
    .clamp = ts_cpu_clamp,
    .reduce = ts_cpu_reduce,
    .bmm = ts_cpu_bmm,
    .conv2d = ts_cpu_conv2d,
    .softmax = ts_cpu_softmax,
};

static const ts_backend *registry[TS_DEVICE_TYPES] = { [TS_CPU] = &cpu_backend };

const ts_backend *ts_backend_get(ts_device_type type)
{
    return (unsigned)type < TS_DEVICE_TYPES ? registry[type] : NULL;
}

void ts_backend_register(const ts_backend *b)
{
    if (b && (unsigned)b->type < TS_DEVICE_TYPES) registry[b->type] = b;
}
