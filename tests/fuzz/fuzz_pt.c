/* fuzz_pt.c — libFuzzer target of the PyTorch checkpoint reader: the zip
 * reader (core/io/zip_read.c: every entry read, inflated, CRC-checked and
 * handed out as a storage), then ts_pt_load (core/io/pt_read.c,
 * pt_legacy.c, pickle.c) with mapped and copied storages, with and without
 * CRC checks. Every tensor that comes out has each of its elements read
 * through its strides, so ASan sees any view that reaches past its storage.
 * A failure must leave a message. Seeds: tests/fuzz/corpus_pt/ plus the
 * checkpoint fixtures of tests/fixtures/pt/ (good and hostile).
 */
// fuzz-sources: core/io/zip_read.c core/io/pickle.c core/io/pt_read.c core/io/pt_legacy.c
// fuzz-corpus: tests/fuzz/corpus_pt tests/fixtures/pt tests/fixtures/pt/hostile
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

#include "torsh/pt.h"
#include "torsh/zip.h"

static volatile unsigned sink;

/* Reads every element of t through its strides (bytes only: any dtype). */
static void touch_tensor(const ts_tensor *t)
{
    int64_t n = ts_tensor_numel(t);
    if (n == 0) return;
    const unsigned char *base = (const unsigned char *)t->storage->data;
    size_t es = ts_dtype_size(t->dtype);
    int64_t idx[TS_MAX_DIMS] = { 0 };
    unsigned s = 0;
    for (int64_t k = 0; k < n && k < (1 << 20); k++) {
        int64_t off = t->offset;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        for (size_t b = 0; b < es; b++) s += base[(size_t)off * es + b];
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    sink += s;
}

static void walk(ts_pkval *v, int depth)
{
    if (depth > TS_PICKLE_MAX_DEPTH + 16) __builtin_trap();
    switch (v->kind) {
    case TS_PK_TENSOR:
        if (v->u.tensor.t) touch_tensor(v->u.tensor.t);
        else if (!v->u.tensor.error) __builtin_trap();
        return;
    case TS_PK_TUPLE: case TS_PK_LIST: case TS_PK_SET: case TS_PK_FROZENSET:
        if (v->aux == 7) return;
        v->aux = 7;
        for (size_t i = 0; i < v->u.seq.n; i++) walk(v->u.seq.items[i], depth + 1);
        return;
    case TS_PK_DICT:
        if (v->aux == 7) return;
        v->aux = 7;
        for (size_t i = 0; i < v->u.dict.n; i++) {
            walk(v->u.dict.keys[i], depth + 1);
            walk(v->u.dict.vals[i], depth + 1);
        }
        if (v->u.dict.state) walk(v->u.dict.state, depth + 1);
        return;
    default:
        return;
    }
}

static void fuzz_zip(const char *path)
{
    ts_zip *z = ts_zip_open(path);
    if (!z) {
        if (ts_last_error()[0] == '\0') __builtin_trap();
        return;
    }
    for (size_t i = 0; i < ts_zip_count(z) && i < 64; i++) {
        const ts_zip_entry *e = ts_zip_entry_at(z, i);
        if (ts_zip_find(z, e->name) != e) __builtin_trap();       /* names are unique */
        size_t n;
        void *buf = ts_zip_read_alloc(z, e, true, &n);
        if (buf) {
            unsigned s = 0;
            for (size_t k = 0; k < n; k++) s += ((unsigned char *)buf)[k];
            sink += s;
        }
        free(buf);
        for (unsigned flags = 0; flags < 4; flags++) {
            ts_storage *st = ts_zip_storage(z, e, 8, flags);
            if (st) {
                unsigned s = 0;
                for (size_t k = 0; k < st->nbytes; k++) s += ((unsigned char *)st->data)[k];
                sink += s;
            }
            ts_storage_release(st);
        }
    }
    ts_zip_close(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    if (!path) return 0;
    ts_clear_error();
    fuzz_zip(path);
    static const unsigned modes[] = { 0, TS_PT_VERIFY, TS_PT_COPY };
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        ts_clear_error();
        ts_pickle *p = ts_pt_load(path, modes[m]);
        if (!p) {
            if (ts_last_error()[0] == '\0') __builtin_trap();
            continue;
        }
        walk((ts_pkval *)ts_pickle_root(p), 0);
        ts_pickle_free(p);
    }
    return 0;
}
