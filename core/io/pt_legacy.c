/* pt_legacy.c — reader of the legacy (non-zip) PyTorch checkpoint format
 * (torch <= 1.5, or _use_new_zipfile_serialization=False): five pickles
 * back to back (magic number, protocol version 1001, sys_info, the object,
 * the sorted list of storage keys) and then each storage as an i64 LE
 * element count plus its little-endian bytes. The object pickle is read
 * twice: once to learn each storage key's element size (the raw section
 * can only be walked with it), once for real. Storages are heap copies.
 * Uses the hooks of pt_read.c. */
#include "torsh/pt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_internal.h"

typedef struct legacy {
    const unsigned char *bytes;
    uint64_t size;
    /* first pass: element size of each key; second: where its bytes are */
    char **keys;
    size_t *esize;
    uint64_t *offset, *nbytes;
    size_t n, cap;
} legacy;

static ptrdiff_t find_key(const legacy *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->keys[i], key) == 0) return (ptrdiff_t)i;
    return -1;
}

static void legacy_free(legacy *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->keys[i]);
    free(l->keys);
    free(l->esize);
    free(l->offset);
    free(l->nbytes);
}

/* First pass: remember the key's element size; hand out a storage with no
 * bytes behind it (the document is dropped without touching tensor data). */
static ts_storage *scan_resolve(pt_ctx *c, const char *key, size_t esize, uint64_t nbytes)
{
    legacy *l = c->impl;
    if (find_key(l, key) < 0) {
        if (l->n == l->cap) {
            size_t cap = l->cap ? 2 * l->cap : 16;
            char **k = realloc(l->keys, cap * sizeof *k);
            if (k) l->keys = k;
            size_t *e = realloc(l->esize, cap * sizeof *e);
            if (e) l->esize = e;
            uint64_t *o = realloc(l->offset, cap * sizeof *o);
            if (o) l->offset = o;
            uint64_t *b = realloc(l->nbytes, cap * sizeof *b);
            if (b) l->nbytes = b;
            if (!k || !e || !o || !b) return ts_fail_null(TS_ERR_MEMORY, "pt: out of memory");
            l->cap = cap;
        }
        if (!(l->keys[l->n] = strdup(key))) return ts_fail_null(TS_ERR_MEMORY, "pt: out of memory");
        l->esize[l->n] = esize;
        l->offset[l->n] = l->nbytes[l->n] = 0;
        l->n++;
    }
    static char nothing[8] __attribute__((aligned(8)));
    return ts_storage_wrap(nothing, (size_t)nbytes, NULL, NULL);
}

static ts_storage *copy_resolve(pt_ctx *c, const char *key, size_t esize, uint64_t nbytes)
{
    legacy *l = c->impl;
    ptrdiff_t i = find_key(l, key);
    if (i < 0) return ts_fail_null(TS_ERR_FORMAT, "storage '%s' is not in the file's storage list", key);
    if (l->nbytes[i] < nbytes)
        return ts_fail_null(TS_ERR_FORMAT, "storage '%s' holds %llu bytes, but its persistent id claims %llu",
                            key, (unsigned long long)l->nbytes[i], (unsigned long long)nbytes);
    (void)esize;
    ts_storage *s = ts_storage_new((size_t)l->nbytes[i]);
    if (s && s->nbytes) memcpy(s->data, l->bytes + l->offset[i], s->nbytes);
    return s;
}

/* One plain pickle (no persistent ids) at *pos; advances *pos. */
static ts_pickle *plain(const char *path, const legacy *l, uint64_t *pos, const char *what)
{
    size_t used;
    ts_pickle *p = ts_pickle_load(l->bytes + *pos, (size_t)(l->size - *pos), NULL, &used);
    if (!p) {
        char msg[768];
        snprintf(msg, sizeof msg, "%s", ts_last_error());
        return ts_fail_null(TS_ERR_FORMAT, "pt: '%s': legacy checkpoint, %s (at byte %llu): %s", path, what,
                            (unsigned long long)*pos, msg);
    }
    *pos += used;
    return p;
}

static ts_status check_header(const char *path, legacy *l, uint64_t *pos)
{
    ts_pickle *magic = plain(path, l, pos, "magic number");
    if (!magic) return ts_last_status();
    ts_pickle_free(magic);                           /* its bytes were matched when sniffing */
    ts_pickle *ver = plain(path, l, pos, "protocol version");
    if (!ver) return ts_last_status();
    int64_t v = 0;
    bool ok = ts_pk_as_int(ts_pickle_root(ver), &v) && v == 1001;
    ts_pickle_free(ver);
    if (!ok) return ts_fail(TS_ERR_UNSUPPORTED, "pt: '%s': legacy checkpoint protocol version %lld (only 1001 is supported)", path, (long long)v);
    ts_pickle *info = plain(path, l, pos, "sys_info");
    if (!info) return ts_last_status();
    ok = ts_pickle_root(info)->kind == TS_PK_DICT;
    ts_pickle_free(info);
    if (!ok) return ts_fail(TS_ERR_FORMAT, "pt: '%s': legacy checkpoint: sys_info is not a dict", path);
    return TS_OK;
}

/* The key list and the raw storages after the object pickle. */
static ts_status read_storages(const char *path, legacy *l, uint64_t pos)
{
    ts_pickle *list = plain(path, l, &pos, "storage key list");
    if (!list) return ts_last_status();
    const ts_pkval *keys = ts_pickle_root(list);
    ts_status st = TS_OK;
    if (keys->kind != TS_PK_LIST && keys->kind != TS_PK_TUPLE)
        st = ts_fail(TS_ERR_FORMAT, "pt: '%s': legacy checkpoint: the storage key list is a %s", path, ts_pk_kind_name(keys->kind));
    for (size_t i = 0; st == TS_OK && i < keys->u.seq.n; i++) {
        const ts_pkval *k = keys->u.seq.items[i];
        const char *key = k->kind == TS_PK_STR || k->kind == TS_PK_BYTES ? k->u.str.s : NULL;
        ptrdiff_t j = key ? find_key(l, key) : -1;
        if (j < 0) {
            st = ts_fail(TS_ERR_UNSUPPORTED, "pt: '%s': legacy checkpoint: storage %s%s%s is not used by any tensor torsh can load (an unsupported dtype?)",
                         path, key ? "'" : "", key ? key : "(not a string)", key ? "'" : "");
            break;
        }
        if (l->size - pos < 8) {
            st = ts_fail(TS_ERR_FORMAT, "pt: '%s' is truncated: legacy storage '%s' has no size", path, key);
            break;
        }
        uint64_t numel = 0;
        for (int b = 7; b >= 0; b--) numel = numel << 8 | l->bytes[pos + (uint64_t)b];
        pos += 8;
        if (numel > (l->size - pos) / l->esize[j]) {
            st = ts_fail(TS_ERR_FORMAT, "pt: '%s' is truncated: legacy storage '%s' claims %llu elements of %zu bytes, %llu bytes are left",
                         path, key, (unsigned long long)numel, l->esize[j], (unsigned long long)(l->size - pos));
            break;
        }
        l->offset[j] = pos;
        l->nbytes[j] = numel * l->esize[j];
        pos += l->nbytes[j];
    }
    ts_pickle_free(list);
    return st;
}

ts_pickle *pt_load_legacy(const char *path, const unsigned char *bytes, uint64_t size, unsigned flags)
{
    legacy l = { .bytes = bytes, .size = size };
    pt_ctx c = { .path = path, .flags = flags, .resolve = scan_resolve, .impl = &l };
    ts_pickle *doc = NULL;
    uint64_t pos = 0;
    size_t used;
    if (check_header(path, &l, &pos)) goto done;
    /* first pass: element sizes and where the object pickle ends */
    ts_pickle *scan = pt_unpickle(&c, bytes + pos, (size_t)(size - pos), "legacy checkpoint, object", &used);
    pt_ctx_clear(&c);
    if (!scan) goto done;
    ts_pickle_free(scan);
    if (read_storages(path, &l, pos + used)) goto done;
    c.resolve = copy_resolve;
    doc = pt_unpickle(&c, bytes + pos, (size_t)(size - pos), "legacy checkpoint, object", &used);
done:
    pt_ctx_clear(&c);
    legacy_free(&l);
    return doc;
}
