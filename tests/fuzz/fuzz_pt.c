/* fuzz_pt.c — libFuzzer target of the PyTorch checkpoint reader: the zip
 * reader (core/io/zip_read.c: every entry read, inflated, CRC-checked and
 * handed out as a storage), then ts_pt_load (core/io/pt_read.c,
 * pt_legacy.c, pickle.c) with mapped and copied storages, with and without
 * CRC checks. Every tensor that comes out has each of its elements read
 * through its strides, so ASan sees any view that reaches past its storage.
 * A failure must leave a message. Seeds: tests/fuzz/corpus_pt/ plus the
 * checkpoint fixtures of tests/fixtures/pt/ (good and hostile).
 */
// fuzz-sources: core/io/zip_read.c core/io/io_map.c core/io/pickle.c core/io/pt_read.c core/io/pt_legacy.c
// fuzz-corpus: tests/fuzz/corpus_pt tests/fixtures/pt tests/fixtures/pt/hostile
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

#include "torsh/pt.h"
#include "torsh/zip.h"

/* Reads every element of t through its strides (bytes only: any dtype). */
static void fuzz_zip(const char *path)
{
    ts_zip *z = ts_zip_open(path);
    if (!fuzz_ok(z != NULL)) return;
    for (size_t i = 0; i < ts_zip_count(z) && i < 64; i++) {
        const ts_zip_entry *e = ts_zip_entry_at(z, i);
        if (ts_zip_find(z, e->name) != e) __builtin_trap();       /* names are unique */
        size_t n;
        void *buf = ts_zip_read_alloc(z, e, true, &n);
        if (buf) {
            unsigned s = 0;
            for (size_t k = 0; k < n; k++) s += ((unsigned char *)buf)[k];
            fuzz_sink += s;
        }
        free(buf);
        for (unsigned flags = 0; flags < 4; flags++) {
            ts_storage *st = ts_zip_storage(z, e, 8, flags);
            if (st) {
                unsigned s = 0;
                for (size_t k = 0; k < st->nbytes; k++) s += ((unsigned char *)st->data)[k];
                fuzz_sink += s;
            }
            ts_storage_release(st);
        }
    }
    ts_zip_close(z);
}

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
        if (!fuzz_ok(p != NULL)) continue;
        fuzz_walk((ts_pkval *)ts_pickle_root(p), 0);
        ts_pickle_free(p);
    }
    return 0;
}
