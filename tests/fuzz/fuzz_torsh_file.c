/* fuzz_torsh_file.c — libFuzzer target for the .torsh reader
 * (core/io/torsh_file.c): each input becomes a memfd file, opened
 * with ts_torsh_open (fixed-header checks, mapping), and every tensor row
 * found in its JSON header (a small scanner for the "dtype", "shape",
 * "offset", "nbytes" and "crc32" fields the writer emits; the real JSON
 * parsing is Lua's) is turned into a tensor, mapped and copied, with CRC
 * verification; every byte handed out is read so ASan sees any overrun.
 * Build and run: tests/fuzz/README_torsh.md. Seeds: tests/fuzz/corpus_torsh/.
 */
// fuzz-sources: core/io/torsh_file.c core/io/io_map.c
// fuzz-corpus: tests/fuzz/corpus_torsh
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ROWS 64

/* Finds `key` in json[from, n); returns the index just past it or n. */
static size_t find_after(const char *json, size_t n, size_t from, const char *key)
{
    size_t k = strlen(key);
    for (size_t i = from; i + k <= n; i++)
        if (memcmp(json + i, key, k) == 0) return i + k;
    return n;
}

/* Reads an unsigned decimal at json[*pos, n) (bounded copy, no NUL needed). */
static bool read_uint(const char *json, size_t n, size_t *pos, uint64_t *out)
{
    char buf[32];
    size_t i = *pos, k = 0;
    while (i < n && k + 1 < sizeof buf && ((json[i] >= '0' && json[i] <= '9') || json[i] == '-')) buf[k++] = json[i++];
    if (k == 0) return false;
    buf[k] = 0;
    *out = strtoull(buf, NULL, 10);
    *pos = i;
    return true;
}

/* Parses the row starting at the "dtype" key found at `at`; false if malformed. */
static bool scan_row(const char *json, size_t n, size_t at, ts_torsh_entry *e)
{
    memset(e, 0, sizeof *e);
    e->name = "fuzz";
    size_t i = at, start = at;
    while (i < n && json[i] != '"') i++;
    char dt[16];
    size_t len = i - start < sizeof dt - 1 ? i - start : sizeof dt - 1;
    memcpy(dt, json + start, len);
    dt[len] = 0;
    if (ts_dtype_parse(dt, &e->dtype) != TS_OK) e->dtype = (ts_dtype)(len % 16);   /* also try bad dtypes */
    i = find_after(json, n, i, "\"shape\":[");
    while (i < n && json[i] != ']') {
        uint64_t d;
        if (!read_uint(json, n, &i, &d)) { i++; continue; }
        if (e->ndim == TS_MAX_DIMS) { e->ndim++; break; }    /* one too many: the reader must refuse */
        e->shape[e->ndim++] = (int64_t)d;
    }
    if (e->ndim > TS_MAX_DIMS) e->ndim = TS_MAX_DIMS + 1;
    i = find_after(json, n, i, "\"offset\":");
    if (!read_uint(json, n, &i, &e->offset)) return false;
    i = find_after(json, n, i, "\"nbytes\":");
    if (!read_uint(json, n, &i, &e->nbytes)) return false;
    uint64_t crc;
    size_t j = find_after(json, n, i, "\"crc32\":");
    if (read_uint(json, n, &j, &crc)) { e->crc32 = (uint32_t)crc; e->has_crc = true; }
    return true;
}

static void try_rows(ts_torsh_file *f, const char *json, size_t n)
{
    size_t at = 0;
    for (int row = 0; row < MAX_ROWS; row++) {
        at = find_after(json, n, at, "\"dtype\":\"");
        if (at >= n) return;
        ts_torsh_entry e;
        if (!scan_row(json, n, at, &e)) continue;
        static const unsigned modes[] = { 0, TS_TORSH_VERIFY, TS_TORSH_VERIFY | TS_TORSH_COPY, TS_TORSH_COPY };
        for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
            ts_tensor *t = ts_torsh_tensor(f, &e, modes[m]);
            if (t) fuzz_touch_tensor(t);
            ts_tensor_release(t);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    if (!path) return 0;
    ts_clear_error();
    ts_torsh_file *f = ts_torsh_open(path);
    if (!fuzz_ok(f != NULL)) return 0;
    size_t n;
    const char *json = ts_torsh_json(f, &n);
    fuzz_touch_bytes(json, n);
    try_rows(f, json, n);
    ts_torsh_close(f);
    return 0;
}
