/* npy_write.c — the .npy writer (torsh/npz.h: ts_npy_header, ts_npy_write):
 * headers byte-identical to numpy's format.write_array for C-ordered
 * little-endian arrays (numpy/lib/format.py: keys sorted, the
 * 21 - len(repr(shape[0])) spare spaces, padding so the data starts at a
 * multiple of 64, a final '\n'), format 1.0, and the atomic file writer
 * (io_atomic.h). */
#include "torsh/npz.h"

#include "io_atomic.h"

#include <stdio.h>
#include <string.h>

#define NPY_ALIGN 64
#define GROWTH_AXIS_MAX_DIGITS 21

static const char *npy_descr(ts_dtype dt)
{
    switch (dt) {
    case TS_F32: return "<f4";
    case TS_F64: return "<f8";
    case TS_F16: return "<f2";
    case TS_I8: return "|i1";
    case TS_U8: return "|u1";
    case TS_I16: return "<i2";
    case TS_I32: return "<i4";
    case TS_I64: return "<i8";
    case TS_BOOL: return "|b1";
    default: return NULL;           /* bf16: NumPy has no such dtype */
    }
}

static bool host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

ts_status ts_npy_header(const ts_tensor *t, unsigned char *buf, size_t cap, size_t *len)
{
    if (!host_is_little_endian()) return ts_fail(TS_ERR_UNSUPPORTED, "npy write: big-endian hosts are not supported");
    const char *descr = npy_descr(t->dtype);
    if (!descr)
        return ts_fail(TS_ERR_UNSUPPORTED, "npy write: NumPy has no %s dtype; convert the tensor (to f32) first",
                       ts_dtype_name(t->dtype));
    char shape[TS_MAX_DIMS * 24 + 8];
    size_t k = 0;
    shape[k++] = '(';
    for (int d = 0; d < t->ndim; d++)
        k += (size_t)snprintf(shape + k, sizeof shape - k, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (t->ndim == 1) shape[k++] = ',';
    shape[k++] = ')';
    shape[k] = '\0';
    char text[TS_NPY_HEADER_MAX];
    int n = snprintf(text, sizeof text, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    if (t->ndim > 0) {
        char first[24];
        int digits = snprintf(first, sizeof first, "%lld", (long long)t->shape[0]);
        for (int i = digits; i < GROWTH_AXIS_MAX_DIGITS; i++) text[n++] = ' ';
    }
    size_t hlen = (size_t)n + 1;                                   /* with the final '\n' */
    size_t pad = NPY_ALIGN - (8 + 2 + hlen) % NPY_ALIGN;           /* 1..64, as numpy */
    size_t total = 10 + hlen + pad;
    if (total > cap) return ts_fail(TS_ERR_ARG, "npy write: header buffer of %zu bytes is too small (%zu)", cap, total);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)((hlen + pad) & 0xFF);
    buf[9] = (unsigned char)((hlen + pad) >> 8);
    memcpy(buf + 10, text, (size_t)n);
    memset(buf + 10 + n, ' ', pad);
    buf[total - 1] = '\n';
    *len = total;
    return TS_OK;
}

ts_status ts_npy_write(const char *path, const ts_tensor *t)
{
    if (!t) return ts_fail(TS_ERR_ARG, "npy write: tensor is NULL");
    if (t->storage->device.type != TS_CPU)
        return ts_fail(TS_ERR_UNSUPPORTED, "npy write: the tensor is not on the CPU; copy it to the CPU first");
    unsigned char head[TS_NPY_HEADER_MAX];
    size_t hlen;
    if (ts_npy_header(t, head, sizeof head, &hlen)) return ts_last_status();
    ts_io_atomic a;
    if (ts_io_atomic_begin(&a, path, "npy write")) return ts_last_status();
    if (ts_io_atomic_write(&a, head, hlen) || ts_io_atomic_write_tensor(&a, t)) {
        ts_io_atomic_abort(&a);
        return ts_last_status();
    }
    return ts_io_atomic_commit(&a);
}
