/* fuzz_safetensors.c — libFuzzer target of the .safetensors reader
 * (core/io/safetensors.c): each input becomes a memfd file opened with
 * ts_safetensors_open (header length, JSON parse, layout validation,
 * mapping); every entry is then turned into a tensor as a mapped view and
 * as a heap copy, every byte handed out is read (so ASan sees an overrun),
 * the metadata and the name index are walked. A failure must leave a
 * message. Seeds: tests/fuzz/corpus_safetensors/ (tests/fuzz/make_corpus_safetensors.py).
 *
 * Build and run (see README.md; the library supplies everything else):
 *     clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icore/include \
 *         tests/fuzz/fuzz_safetensors.c core/io/safetensors.c core/io/io_map.c build/libtorsh.a \
 *         -lz -lcurl -lm -lpthread -ldl -o /tmp/fuzz_safetensors
 *     mkdir -p /tmp/corpus_st && /tmp/fuzz_safetensors -max_total_time=60 -max_len=4096 \
 *         /tmp/corpus_st tests/fuzz/corpus_safetensors
 */
// fuzz-sources: core/io/safetensors.c core/io/io_map.c
#include "fuzz_common.h"

#include <string.h>
#include <torsh/safetensors.h>
#include <torsh/torsh.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    if (!path) return 0;
    ts_clear_error();
    ts_safetensors *f = ts_safetensors_open(path);
    if (!fuzz_ok(f != NULL)) return 0;
    size_t n = ts_safetensors_count(f);
    for (size_t i = 0; i < n; i++) {
        const ts_safetensors_entry *e = ts_safetensors_entry_at(f, i);
        if (!e || !e->name || ts_safetensors_find(f, e->name) != (long)i) __builtin_trap();
        fuzz_sink += (unsigned)strlen(e->name) + (unsigned)strlen(e->dtype_name);
        for (unsigned flags = 0; flags <= TS_SAFETENSORS_COPY; flags++) {
            ts_clear_error();
            ts_tensor *t = ts_safetensors_tensor(f, i, flags);
            if (fuzz_ok(t != NULL)) fuzz_touch_tensor(t);
            ts_tensor_release(t);
        }
    }
    for (size_t i = 0; i < ts_safetensors_meta_count(f); i++)
        fuzz_sink += (unsigned)strlen(ts_safetensors_meta_key(f, i)) + (unsigned)strlen(ts_safetensors_meta_value(f, i));
    ts_safetensors_close(f);
    return 0;
}
