/* pt_write.c — ts_pt_save (torsh/pt.h): a state dict as a zip-format
 * PyTorch checkpoint. data.pkl is a protocol-2 pickle of an OrderedDict
 * whose values are _rebuild_tensor_v2(persistent storage id, 0, size,
 * contiguous stride, False, OrderedDict()); storages go to data/<n>
 * (one per distinct tensor, row-major), through the aligned, atomic zip
 * writer (torsh/zip.h). The same bytes as stdlib/torsh/pt.lua writes. */
#include "torsh/pt.h"
#include "torsh/zip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf { unsigned char *p; size_t n, cap; bool oom; } buf;

static void put(buf *b, const void *s, size_t k)
{
    if (b->oom) return;
    if (b->n + k > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + k) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, k);
    b->n += k;
}

static void put_s(buf *b, const char *s) { put(b, s, strlen(s)); }
static void put_c(buf *b, unsigned char c) { put(b, &c, 1); }

static void p_int(buf *b, int64_t v)
{
    unsigned char x[10];
    if (v >= 0 && v < 256) { x[0] = 'K'; x[1] = (unsigned char)v; put(b, x, 2); }
    else if (v >= 0 && v < 65536) { x[0] = 'M'; x[1] = (unsigned char)v; x[2] = (unsigned char)(v >> 8); put(b, x, 3); }
    else if (v >= INT32_MIN && v <= INT32_MAX) {
        x[0] = 'J';
        for (int i = 0; i < 4; i++) x[1 + i] = (unsigned char)((uint32_t)v >> (8 * i));
        put(b, x, 5);
    } else {
        x[0] = 0x8a;
        x[1] = 8;
        for (int i = 0; i < 8; i++) x[2 + i] = (unsigned char)((uint64_t)v >> (8 * i));
        put(b, x, 10);
    }
}

static void p_str(buf *b, const char *s)
{
    size_t k = strlen(s);
    unsigned char x[5] = { 'X', (unsigned char)k, (unsigned char)(k >> 8), (unsigned char)(k >> 16), (unsigned char)(k >> 24) };
    put(b, x, 5);
    put(b, s, k);
}

/* Opens a tuple of k items (k known); close_tuple ends it. */
static void open_tuple(buf *b, size_t k) { if (k > 3) put_c(b, '('); }
static void close_tuple(buf *b, size_t k)
{
    if (k == 0) put_c(b, ')');
    else if (k <= 3) put_c(b, (unsigned char)(0x84 + k));
    else put_c(b, 't');
}

static const char *const STORAGE_NAME[TS_DTYPE_COUNT] = {
    [TS_F32] = "FloatStorage", [TS_F64] = "DoubleStorage", [TS_F16] = "HalfStorage", [TS_BF16] = "BFloat16Storage",
    [TS_I8] = "CharStorage", [TS_U8] = "ByteStorage", [TS_I16] = "ShortStorage", [TS_I32] = "IntStorage",
    [TS_I64] = "LongStorage", [TS_BOOL] = "BoolStorage",
};

#define ORDERED_DICT "ccollections\nOrderedDict\n)R"

static void p_tensor(buf *b, const ts_tensor *t, size_t key)
{
    char k[32];
    snprintf(k, sizeof k, "%zu", key);
    put_s(b, "ctorch._utils\n_rebuild_tensor_v2\n");
    open_tuple(b, 6);
    open_tuple(b, 5);                         /* the persistent id */
    p_str(b, "storage");
    put_s(b, "ctorch\n");
    put_s(b, STORAGE_NAME[t->dtype]);
    put_c(b, '\n');
    p_str(b, k);
    p_str(b, "cpu");
    p_int(b, ts_tensor_numel(t));
    close_tuple(b, 5);
    put_c(b, 'Q');
    p_int(b, 0);
    open_tuple(b, (size_t)t->ndim);
    for (int i = 0; i < t->ndim; i++) p_int(b, t->shape[i]);
    close_tuple(b, (size_t)t->ndim);
    open_tuple(b, (size_t)t->ndim);
    int64_t st = 1, strides[TS_MAX_DIMS];
    for (int i = t->ndim; i-- > 0;) { strides[i] = st; st *= t->shape[i]; }
    for (int i = 0; i < t->ndim; i++) p_int(b, strides[i]);
    close_tuple(b, (size_t)t->ndim);
    put_c(b, 0x89);                           /* requires_grad False */
    put_s(b, ORDERED_DICT);
    close_tuple(b, 6);
    put_c(b, 'R');
}

static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int k = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 && *p >= 0xC2 ? 1 : (*p & 0xF0) == 0xE0 ? 2 : (*p & 0xF8) == 0xF0 && *p <= 0xF4 ? 3 : -1;
        if (k < 0) return false;
        p++;
        for (int i = 0; i < k; i++, p++)
            if ((*p & 0xC0) != 0x80) return false;
    }
    return true;
}

/* "dir/model.v2.pt" -> "model.v2"; "archive" when that leaves nothing usable. */
static void archive_name(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t k = dot ? (size_t)(dot - base) : strlen(base);
    if (k == 0 || k >= cap - 1) { snprintf(out, cap, "archive"); return; }
    memcpy(out, base, k);
    out[k] = '\0';
    if (!valid_utf8(out) || ts_zip_check_name(out, k, path) != TS_OK) snprintf(out, cap, "archive");
    ts_clear_error();
}

static ts_status write_tensor(ts_zip_writer *w, const char *name, const ts_tensor *t)
{
    ts_tensor *c = ts_contiguous(t);          /* t itself (retained) when contiguous */
    if (!c) return ts_last_status();
    size_t n = ts_tensor_nbytes(c);
    ts_status st = ts_zip_writer_begin(w, name, n);
    const unsigned char *p = n ? ts_tensor_data(c) : NULL;
    for (size_t off = 0; st == TS_OK && off < n; off += (size_t)1 << 26) {
        size_t k = n - off < ((size_t)1 << 26) ? n - off : ((size_t)1 << 26);
        st = ts_zip_writer_write(w, p + off, k);
    }
    if (st == TS_OK) st = ts_zip_writer_end(w);
    ts_tensor_release(c);
    return st;
}

ts_status ts_pt_save(const char *path, const char *const *names, ts_tensor *const *tensors, size_t n, uint64_t zip64_at)
{
    const uint16_t one = 1;
    if (*(const unsigned char *)&one != 1) return ts_fail(TS_ERR_UNSUPPORTED, "pt save: big-endian hosts are not supported");
    size_t *key = malloc((n ? n : 1) * sizeof *key);
    if (!key) return ts_fail(TS_ERR_MEMORY, "pt save: out of memory");
    size_t nstorages = 0;
    ts_status st = TS_OK;
    for (size_t i = 0; i < n && st == TS_OK; i++) {
        const ts_tensor *t = tensors[i];
        if (!names[i] || !valid_utf8(names[i])) st = ts_fail(TS_ERR_ARG, "pt save: key %zu is not valid UTF-8 text", i);
        else if (!t) st = ts_fail(TS_ERR_ARG, "pt save: tensor '%s' is NULL", names[i]);
        else if (t->storage->device.type != TS_CPU) st = ts_fail(TS_ERR_ARG, "pt save: tensor '%s' is not on the CPU; copy it to the CPU first", names[i]);
        if (st) break;
        key[i] = nstorages;
        for (size_t j = 0; j < i; j++)
            if (tensors[j] == t) { key[i] = key[j]; break; }
        if (key[i] == nstorages) nstorages++;
        for (size_t j = 0; j < i && st == TS_OK; j++)
            if (strcmp(names[j], names[i]) == 0) st = ts_fail(TS_ERR_ARG, "pt save: key '%s' is given twice", names[i]);
    }
    buf b = { 0 };
    if (st == TS_OK) {
        put_s(&b, "\x80\x02" ORDERED_DICT);
        for (size_t s = 0; s < n; s += 1000) {
            size_t e = s + 1000 < n ? s + 1000 : n;
            put_c(&b, '(');
            for (size_t i = s; i < e; i++) {
                p_str(&b, names[i]);
                p_tensor(&b, tensors[i], key[i]);
            }
            put_c(&b, 'u');
        }
        put_c(&b, '.');
        if (b.oom) st = ts_fail(TS_ERR_MEMORY, "pt save: out of memory (pickle)");
    }
    ts_zip_writer *w = NULL;
    if (st == TS_OK) {
        ts_zip_write_opts o = { .align = 64, .zip64_at = zip64_at };
        w = ts_zip_writer_open(path, &o);
        if (!w) st = ts_last_status();
    }
    if (st == TS_OK) {
        char arc[256], name[320];
        archive_name(path, arc, sizeof arc);
        snprintf(name, sizeof name, "%s/data.pkl", arc);
        st = ts_zip_writer_add(w, name, b.p, b.n);
        snprintf(name, sizeof name, "%s/byteorder", arc);
        if (st == TS_OK) st = ts_zip_writer_add(w, name, "little", 6);
        size_t next = 0;
        for (size_t i = 0; i < n && st == TS_OK; i++) {
            if (key[i] != next) continue;     /* a tensor met before: already written */
            snprintf(name, sizeof name, "%s/data/%zu", arc, next++);
            st = write_tensor(w, name, tensors[i]);
        }
        snprintf(name, sizeof name, "%s/version", arc);
        if (st == TS_OK) st = ts_zip_writer_add(w, name, "3\n", 2);
        if (st == TS_OK) { st = ts_zip_writer_finish(w); w = NULL; }
    }
    if (w) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", ts_last_error());
        ts_zip_writer_abort(w);
        ts_fail(st, "pt save: %s", msg);
    }
    free(b.p);
    free(key);
    return st;
}
