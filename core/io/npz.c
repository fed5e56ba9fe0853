/* npz.c — NumPy .npz archives (torsh/npz.h: ts_npz_*): the ZIP layer is
 * torsh/zip.h (reader: mapping, directory checks, inflate, CRC; writer:
 * aligned stored entries, atomic replace), each entry is one .npy parsed in
 * memory (npy_mem.c) or written with numpy's header (npy_write.c). */
#include "torsh/npz.h"

#include "torsh/zip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPZ_ALIGN 64    /* entry data alignment in written archives: with numpy's
                           64-multiple headers, every array is 64-byte aligned */

struct ts_npz {
    ts_zip *zip;
    char **keys;        /* per entry: its name without ".npy" */
    size_t n;
};

static bool ends_with_npy(const char *s, size_t n) { return n >= 4 && memcmp(s + n - 4, ".npy", 4) == 0; }

void ts_npz_close(ts_npz *z)
{
    if (!z) return;
    for (size_t i = 0; i < z->n; i++) free(z->keys[i]);
    free(z->keys);
    ts_zip_close(z->zip);
    free(z);
}

static int cmp_strp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

ts_npz *ts_npz_open(const char *path)
{
    ts_zip *zip = ts_zip_open(path);
    if (!zip) return NULL;
    ts_npz *z = calloc(1, sizeof *z);
    size_t n = ts_zip_count(zip);
    char **sorted = NULL;
    if (!z) { ts_zip_close(zip); return ts_fail_null(TS_ERR_MEMORY, "npz: out of memory"); }
    z->zip = zip;
    z->keys = calloc(n ? n : 1, sizeof *z->keys);
    sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!z->keys || !sorted) { ts_fail(TS_ERR_MEMORY, "npz: '%s': out of memory", path); goto fail; }
    for (size_t i = 0; i < n; i++) {
        const char *name = ts_zip_entry_at(zip, i)->name;
        size_t len = strlen(name);
        z->keys[i] = strndup(name, ends_with_npy(name, len) ? len - 4 : len);
        if (!z->keys[i]) { ts_fail(TS_ERR_MEMORY, "npz: '%s': out of memory", path); goto fail; }
        z->n = i + 1;
        sorted[i] = z->keys[i];
    }
    qsort(sorted, n, sizeof *sorted, cmp_strp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(sorted[i], sorted[i - 1]) == 0) {
            ts_fail(TS_ERR_FORMAT, "npz: '%s': two entries share the key '%s' ('%s' and '%s.npy')", path, sorted[i],
                    sorted[i], sorted[i]);
            goto fail;
        }
    free(sorted);
    return z;
fail:
    free(sorted);
    ts_npz_close(z);
    return NULL;
}

size_t ts_npz_count(const ts_npz *z) { return z->n; }
const char *ts_npz_name(const ts_npz *z, size_t i) { return i < z->n ? z->keys[i] : NULL; }

long ts_npz_find(const ts_npz *z, const char *key)
{
    for (size_t i = 0; i < z->n; i++)
        if (strcmp(z->keys[i], key) == 0) return (long)i;
    return -1;
}

ts_tensor *ts_npz_tensor(ts_npz *z, size_t i, unsigned flags)
{
    if (i >= z->n)
        return ts_fail_null(TS_ERR_ARG, "npz: '%s': entry index %zu out of range (%zu entries)", ts_zip_path(z->zip), i,
                            z->n);
    const ts_zip_entry *e = ts_zip_entry_at(z->zip, i);
    unsigned zf = (flags & TS_NPZ_NO_VERIFY ? 0 : TS_ZIP_VERIFY) | (flags & TS_NPZ_MMAP ? 0 : TS_ZIP_COPY);
    ts_storage *s = ts_zip_storage(z->zip, e, 0, zf);
    if (!s) return NULL;
    /* name messages "<archive>: <entry>" */
    const char *path = ts_zip_path(z->zip);
    size_t cap = strlen(path) + strlen(e->name) + 4;
    char *where = malloc(cap);
    ts_tensor *t = NULL;
    if (!where) ts_fail(TS_ERR_MEMORY, "npz: out of memory");
    else {
        snprintf(where, cap, "%s: %s", path, e->name);
        t = ts_npy_from_storage(s, where);
        free(where);
    }
    ts_storage_release(s);      /* the tensor holds its own reference (or copied) */
    return t;
}

/* ---- writing ------------------------------------------------------------------------- */

static ts_status add_array(ts_zip_writer *w, const char *name, const ts_tensor *t)
{
    if (!t) return ts_fail(TS_ERR_ARG, "npz write: tensor '%s' is NULL", name);
    if (t->storage->device.type != TS_CPU)
        return ts_fail(TS_ERR_UNSUPPORTED, "npz write: tensor '%s' is not on the CPU; copy it to the CPU first", name);
    unsigned char head[TS_NPY_HEADER_MAX];
    size_t hlen;
    if (ts_npy_header(t, head, sizeof head, &hlen)) {
        char why[256];
        snprintf(why, sizeof why, "%s", ts_last_error());
        return ts_fail(ts_last_status(), "npz write: tensor '%s': %s", name, why);
    }
    size_t len = strlen(name);
    char *entry = malloc(len + 5);
    if (!entry) return ts_fail(TS_ERR_MEMORY, "npz write: out of memory");
    memcpy(entry, name, len);
    memcpy(entry + len, ".npy", 5);
    ts_tensor *c = ts_contiguous(t);
    ts_status st = c ? TS_OK : ts_last_status();
    if (!st) st = ts_zip_writer_begin(w, entry, hlen + ts_tensor_nbytes(c));
    if (!st) st = ts_zip_writer_write(w, head, hlen);
    if (!st) st = ts_zip_writer_write(w, ts_tensor_data(c), ts_tensor_nbytes(c));
    if (!st) st = ts_zip_writer_end(w);
    ts_tensor_release(c);
    free(entry);
    return st;
}

ts_status ts_npz_write(const char *path, const char *const *names, ts_tensor *const *tensors, size_t n)
{
    if (n && (!names || !tensors)) return ts_fail(TS_ERR_ARG, "npz write: NULL name or tensor list");
    for (size_t i = 0; i < n; i++)
        if (!names[i] || !*names[i]) return ts_fail(TS_ERR_ARG, "npz write: name %zu is empty", i);
    if (n > 1) {
        char **sorted = malloc(n * sizeof *sorted);
        if (!sorted) return ts_fail(TS_ERR_MEMORY, "npz write: out of memory");
        memcpy(sorted, names, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_strp);
        ts_status st = TS_OK;
        for (size_t i = 1; i < n && !st; i++)
            if (strcmp(sorted[i], sorted[i - 1]) == 0) st = ts_fail(TS_ERR_ARG, "npz write: duplicate name '%s'", sorted[i]);
        free(sorted);
        if (st) return st;
    }
    ts_zip_write_opts opts = { .align = NPZ_ALIGN };
    ts_zip_writer *w = ts_zip_writer_open(path, &opts);
    if (!w) return ts_last_status();
    for (size_t i = 0; i < n; i++)
        if (add_array(w, names[i], tensors[i])) {
            ts_status st = ts_last_status();
            ts_zip_writer_abort(w);
            return st;
        }
    return ts_zip_writer_finish(w);
}
