/* fuzz_npz.c — libFuzzer target of the .npz reader (core/io/npz.c, the
 * in-memory .npy parser core/io/npy_mem.c, and the ZIP reader under them):
 * each input becomes a memfd file opened with ts_npz_open; every entry is
 * turned into a tensor as a copy (CRC checked) and with TS_NPZ_MMAP, and
 * every byte handed out is read (so ASan sees an overrun). A failure must
 * leave a message. Seeds: tests/fuzz/corpus_npz/ (make_corpus_npz.py).
 *
 * Build and run (see README.md; the library supplies everything else):
 *     clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icore/include \
 *         tests/fuzz/fuzz_npz.c core/io/npz.c core/io/npy_mem.c core/io/zip_read.c core/io/io_map.c build/libtorsh.a \
 *         -lz -lcurl -lm -lpthread -ldl -o /tmp/fuzz_npz
 *     mkdir -p /tmp/corpus_npz && /tmp/fuzz_npz -max_total_time=60 -max_len=4096 \
 *         /tmp/corpus_npz tests/fuzz/corpus_npz
 */
// fuzz-sources: core/io/npz.c core/io/npy_mem.c core/io/zip_read.c core/io/io_map.c
#include "fuzz_common.h"

#include <string.h>
#include <torsh/npz.h>
#include <torsh/torsh.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    if (!path) return 0;
    ts_clear_error();
    ts_npz *z = ts_npz_open(path);
    if (!fuzz_ok(z != NULL)) return 0;
    for (size_t i = 0; i < ts_npz_count(z); i++) {
        const char *key = ts_npz_name(z, i);
        if (!key || ts_npz_find(z, key) != (long)i) __builtin_trap();
        static const unsigned modes[] = { 0, TS_NPZ_MMAP, TS_NPZ_MMAP | TS_NPZ_NO_VERIFY };
        for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
            ts_clear_error();
            ts_tensor *t = ts_npz_tensor(z, i, modes[m]);
            if (fuzz_ok(t != NULL)) fuzz_touch_tensor(t);
            ts_tensor_release(t);
        }
    }
    ts_npz_close(z);
    return 0;
}
