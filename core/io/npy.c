/* npy.c — the NumPy .npy file reader (torsh/io.h: ts_npy_read), format
 * versions 1.0, 2.0 and 3.0. The preamble and header are read and parsed
 * by the parser the in-memory reader uses too (npy_internal.h, in
 * npy_mem.c), which checks the data size against the file size; only then
 * is the tensor allocated and the data read straight into it through
 * stdio (nothing is mapped). */
#include "npy_internal.h"

#include "io_internal.h"

#include <errno.h>
#include <stdlib.h>

/* Reads the preamble and header of f (of `size` bytes) and parses them. */
static ts_status read_head(FILE *f, int64_t size, const npy_source *src, ts_npy_info *h)
{
    unsigned char pre[NPY_PREAMBLE_MAX];
    size_t want = size < NPY_PREAMBLE_MAX ? (size_t)size : NPY_PREAMBLE_MAX;
    if (fread(pre, 1, want, f) != want) return ts_fail(TS_ERR_IO, "npy_read: %s: read error", src->name);
    uint64_t len;
    if (npy_head_len(pre, want, (uint64_t)size, src, &len)) return ts_last_status();
    unsigned char *head = malloc(len > want ? (size_t)len : want);     /* len <= size, checked */
    if (!head) return ts_fail(TS_ERR_MEMORY, "npy_read: %s: out of memory", src->name);
    memcpy(head, pre, want);
    ts_status st = TS_OK;
    if (len > want && fread(head + want, 1, (size_t)(len - want), f) != len - want)
        st = ts_fail(TS_ERR_IO, "npy_read: %s: read error", src->name);
    if (st == TS_OK) st = npy_parse_head(head, (size_t)len, (uint64_t)size, src, h);
    free(head);
    if (st == TS_OK && fseeko(f, (off_t)h->data_offset, SEEK_SET) != 0)
        st = ts_fail(TS_ERR_IO, "npy_read: %s: cannot seek to the data: %s", src->name, strerror(errno));
    return st;
}

static ts_tensor *read_data(FILE *f, const npy_source *src, const ts_npy_info *h)
{
    ts_tensor *t = npy_new_tensor(h);
    if (!t) return NULL;
    if (h->nbytes && fread(ts_tensor_data(t), 1, (size_t)h->nbytes, f) != (size_t)h->nbytes) {
        ts_tensor_release(t);
        return ts_fail_null(TS_ERR_IO, "npy_read: %s: read error (%s)", src->name,
                            ferror(f) ? strerror(errno) : "short read");
    }
    return npy_finish(t, h, true);
}

ts_tensor *ts_npy_read(const char *path)
{
    if (!path) return ts_fail_null(TS_ERR_ARG, "npy_read: path is NULL");
    FILE *f = fopen(path, "rbe");
    if (!f) return ts_fail_null(TS_ERR_IO, "npy_read: cannot open %s: %s", path, strerror(errno));
    int64_t size = io_file_size(f);
    npy_source src = { "npy_read", path, "file", "the file has" };
    ts_npy_info h;
    ts_tensor *t = NULL;
    if (size < 0) ts_fail(TS_ERR_IO, "npy_read: %s is not a regular file", path);
    else if (read_head(f, size, &src, &h) == TS_OK) t = read_data(f, &src, &h);
    fclose(f);
    return t;
}
