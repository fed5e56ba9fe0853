/* pt_read.c — the PyTorch checkpoint reader of torsh/pt.h: format
 * sniffing, the zip-format loader (top folder, TorchScript refusal,
 * byteorder, data.pkl through the restricted unpickler, storages mapped in
 * place) and the unpickler hooks shared with the legacy reader
 * (pt_legacy.c): persistent ids -> storages cached by key, rebuild calls ->
 * tensors with offset/size/stride checked, and the final walk that names the
 * place of a tensor that could not be made. Uses torsh/zip.h and
 * torsh/pickle.h. */
#include "torsh/pt.h"
#include "torsh/zip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io_internal.h"
#include "pt_internal.h"

#define MAX_KEY 256
#define STORAGE_ALIGN 8        /* mapped storages must be aligned so for any dtype */

/* ---- dtypes ------------------------------------------------------------------------ */

typedef struct storage_kind { const char *name; int dtype; const char *torch; } storage_kind;

/* torch.<name>Storage -> dtype; -1: a dtype torsh does not have */
static const storage_kind STORAGE_KINDS[] = {
    { "Double", TS_F64, "float64" }, { "Float", TS_F32, "float32" }, { "Half", TS_F16, "float16" },
    { "BFloat16", TS_BF16, "bfloat16" }, { "Long", TS_I64, "int64" }, { "Int", TS_I32, "int32" },
    { "Short", TS_I16, "int16" }, { "Char", TS_I8, "int8" }, { "Byte", TS_U8, "uint8" }, { "Bool", TS_BOOL, "bool" },
    { "ComplexDouble", -1, "complex128" }, { "ComplexFloat", -1, "complex64" }, { "QInt8", -1, "qint8" },
    { "QUInt8", -1, "quint8" }, { "QInt32", -1, "qint32" }, { "QUInt4x2", -1, "quint4x2" }, { "QUInt2x4", -1, "quint2x4" },
    { "Untyped", TS_U8, "uint8" },
};

#define SUPPORTED "f32 f64 f16 bf16 i64 i32 i16 i8 u8 bool"

/* Storage class name -> kind; NULL when it is not a storage class. */
static const storage_kind *storage_kind_of(const char *g)
{
    const char *rest = NULL;
    if (strncmp(g, "torch.cuda.", 11) == 0) rest = g + 11;
    else if (strncmp(g, "torch.storage.", 14) == 0) rest = g + 14;
    else if (strncmp(g, "torch.", 6) == 0) rest = g + 6;
    if (!rest) return NULL;
    if (rest[0] == '_') rest++;                 /* torch.storage._UntypedStorage */
    for (size_t i = 0; i < sizeof STORAGE_KINDS / sizeof *STORAGE_KINDS; i++) {
        size_t m = strlen(STORAGE_KINDS[i].name);
        if (strncmp(rest, STORAGE_KINDS[i].name, m) == 0 && strcmp(rest + m, "Storage") == 0) return &STORAGE_KINDS[i];
    }
    return NULL;
}

/* "torch.float32" -> dtype; -1 for a dtype torsh does not have, -2 for a non-dtype. */
static int dtype_of_global(const char *g)
{
    if (strncmp(g, "torch.", 6) != 0) return -2;
    ts_dtype dt;
    for (int d = 0; d < TS_DTYPE_COUNT; d++) {
        dt = (ts_dtype)d;
        if (strcmp(g + 6, ts_dtype_info(dt)->torch) == 0) return d;
    }
    return -1;
}

/* ---- small helpers ------------------------------------------------------------------- */

static char *fmt_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_alloc(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return strdup(buf);
}

static const char *text_of(const ts_pkval *v)
{
    return v && (v->kind == TS_PK_STR || v->kind == TS_PK_BYTES) ? v->u.str.s : NULL;
}

static ts_storage *cache_get(const pt_ctx *c, const char *key)
{
    for (size_t i = c->n; i-- > 0;)     /* most recent first: keys tend to repeat nearby */
        if (strcmp(c->keys[i], key) == 0) return c->storages[i];
    return NULL;
}

static ts_status cache_put(pt_ctx *c, const char *key, ts_storage *s)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        char **k = realloc(c->keys, cap * sizeof *k);
        if (!k) return ts_fail(TS_ERR_MEMORY, "pt: out of memory");
        c->keys = k;
        ts_storage **s2 = realloc(c->storages, cap * sizeof *s2);
        if (!s2) return ts_fail(TS_ERR_MEMORY, "pt: out of memory");
        c->storages = s2;
        c->cap = cap;
    }
    char *k = strdup(key);
    if (!k) return ts_fail(TS_ERR_MEMORY, "pt: out of memory");
    c->keys[c->n] = k;
    c->storages[c->n] = s;      /* takes the caller's reference */
    c->n++;
    return TS_OK;
}

void pt_ctx_clear(pt_ctx *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->keys[i]);
        ts_storage_release(c->storages[i]);
    }
    free(c->keys);
    free(c->storages);
    c->keys = NULL;
    c->storages = NULL;
    c->n = c->cap = 0;
}

static void release_subview(ts_storage *s) { ts_storage_release(s->owner); }

/* ---- persistent ids ------------------------------------------------------------------ */

/* A legacy view (view_key, offset, size) of root: a storage over part of it. */
static ts_storage *legacy_view(pt_ctx *c, ts_storage *root, const ts_pkval *view, size_t esize, const char *key, int64_t *numel)
{
    if (view->kind != TS_PK_TUPLE || view->u.seq.n != 3 || !text_of(view->u.seq.items[0]))
        return ts_fail_null(TS_ERR_FORMAT, "storage '%s': its view metadata is not (key, offset, size)", key);
    const char *vkey = text_of(view->u.seq.items[0]);
    int64_t off, size;
    if (!ts_pk_as_int(view->u.seq.items[1], &off) || !ts_pk_as_int(view->u.seq.items[2], &size) || off < 0 || size < 0 ||
        (uint64_t)off > root->nbytes / esize || (uint64_t)size > root->nbytes / esize - (uint64_t)off)
        return ts_fail_null(TS_ERR_FORMAT, "storage '%s': view '%s' lies outside its %zu bytes", key, vkey, root->nbytes);
    char vk[MAX_KEY + 8];
    snprintf(vk, sizeof vk, "view:%s", vkey);
    ts_storage *s = cache_get(c, vk);
    if (!s) {
        s = ts_storage_wrap((char *)root->data + (size_t)off * esize, (size_t)size * esize, release_subview, root);
        if (!s) return NULL;
        ts_storage_retain(root);
        s->kind = root->kind;
        s->readonly = root->readonly;
        if (cache_put(c, vk, s)) { ts_storage_release(s); return NULL; }
    }
    *numel = size;
    ts_storage_retain(s);
    return s;
}

ts_pkval *pt_persistent_load(ts_pickle *p, const ts_pkval *pid, void *vctx)
{
    pt_ctx *c = vctx;
    if (pid->kind != TS_PK_TUPLE || pid->u.seq.n == 0)
        return ts_fail_null(TS_ERR_FORMAT, "a persistent id is a %s, not a ('storage', ...) tuple", ts_pk_kind_name(pid->kind));
    ts_pkval *const *a = pid->u.seq.items;
    const char *tag = text_of(a[0]);
    if (!tag || strcmp(tag, "storage") != 0)
        return ts_fail_null(TS_ERR_UNSUPPORTED, "a persistent id of kind '%.40s' (only 'storage' is supported)", tag ? tag : "?");
    if (pid->u.seq.n != 5 && pid->u.seq.n != 6)
        return ts_fail_null(TS_ERR_FORMAT, "a storage persistent id has %zu items, 5 expected", pid->u.seq.n);
    const char *key = text_of(a[2]);
    int64_t numel;
    if (a[1]->kind != TS_PK_GLOBAL) return ts_fail_null(TS_ERR_FORMAT, "a storage persistent id has no storage class");
    if (!key || !*key || strlen(key) > MAX_KEY || strchr(key, '/'))
        return ts_fail_null(TS_ERR_FORMAT, "a storage persistent id has a bad key");
    if (!text_of(a[3])) return ts_fail_null(TS_ERR_FORMAT, "storage '%s': the location is not a string", key);
    if (!ts_pk_as_int(a[4], &numel) || numel < 0)
        return ts_fail_null(TS_ERR_FORMAT, "storage '%s': the element count is not a non-negative int", key);
    const storage_kind *sk = storage_kind_of(a[1]->u.str.s);
    if (!sk) return ts_fail_null(TS_ERR_FORMAT, "storage '%s': '%s' is not a storage class", key, a[1]->u.str.s);
    ts_pkval *v = ts_pickle_new(p, TS_PK_STORAGE);
    if (!v) return NULL;
    if (!(v->u.storage.key = strdup(key))) return ts_fail_null(TS_ERR_MEMORY, "pt: out of memory");
    v->u.storage.numel = numel;
    if (sk->dtype < 0) {
        v->u.storage.error = fmt_alloc("dtype %s is not supported (torsh has " SUPPORTED ")", sk->torch);
        return v->u.storage.error ? v : ts_fail_null(TS_ERR_MEMORY, "pt: out of memory");
    }
    ts_dtype dt = (ts_dtype)sk->dtype;
    size_t esize = ts_dtype_size(dt);
    if ((uint64_t)numel > (uint64_t)TS_MAX_ALLOC_BYTES / esize)
        return ts_fail_null(TS_ERR_FORMAT, "storage '%s': %lld elements is too many", key, (long long)numel);
    uint64_t nbytes = (uint64_t)numel * esize;
    ts_storage *s = cache_get(c, key);
    if (s) {
        if (s->nbytes < nbytes)
            return ts_fail_null(TS_ERR_FORMAT, "storage '%s' holds %zu bytes, but a persistent id claims %lld elements of %s (%llu bytes)",
                                key, s->nbytes, (long long)numel, ts_dtype_name(dt), (unsigned long long)nbytes);
        ts_storage_retain(s);
    } else {
        s = c->resolve(c, key, esize, nbytes);
        if (!s) return NULL;
        ts_storage_retain(s);
        if (cache_put(c, key, s)) { ts_storage_release(s); ts_storage_release(s); return NULL; }
    }
    v->u.storage.dtype = dt;
    if (pid->u.seq.n == 6 && a[5]->kind != TS_PK_NONE) {
        ts_storage *view = legacy_view(c, s, a[5], esize, key, &numel);
        ts_storage_release(s);
        if (!view) return NULL;
        s = view;
        v->u.storage.numel = numel;
    }
    v->u.storage.s = s;
    return v;
}

/* ---- rebuild calls ---------------------------------------------------------------------- */

static ts_pkval *tensor_error(ts_pickle *p, char *msg)
{
    if (!msg) return ts_fail_null(TS_ERR_MEMORY, "pt: out of memory");
    ts_pkval *v = ts_pickle_new(p, TS_PK_TENSOR);
    if (!v) { free(msg); return NULL; }
    v->u.tensor.error = msg;
    return v;
}

static bool int_list(const ts_pkval *v, int64_t *out, size_t cap, size_t *n)
{
    if (v->kind != TS_PK_TUPLE && v->kind != TS_PK_LIST) return false;
    *n = v->u.seq.n;
    for (size_t i = 0; i < v->u.seq.n; i++) {
        int64_t x;
        if (!ts_pk_as_int(v->u.seq.items[i], &x) || x < 0) return false;
        if (i < cap) out[i] = x;
    }
    return true;
}

/* _rebuild_tensor(_v2/_v3)(storage, offset, size, stride, ...) with the dtype
 * given by v3 (dtype_arg) or by the storage class. */
static ts_pkval *rebuild(ts_pickle *p, const char *fn, ts_pkval *const *a, const ts_pkval *dtype_arg, bool requires_grad)
{
    const ts_pkval *st = a[0];
    if (st->kind != TS_PK_STORAGE) return ts_fail_null(TS_ERR_FORMAT, "%s: the first argument is a %s, not a storage", fn, ts_pk_kind_name(st->kind));
    if (st->u.storage.error) return tensor_error(p, strdup(st->u.storage.error));
    ts_dtype dt = st->u.storage.dtype;
    if (dtype_arg) {
        int d = dtype_arg->kind == TS_PK_GLOBAL ? dtype_of_global(dtype_arg->u.str.s) : -2;
        if (d == -2) return ts_fail_null(TS_ERR_FORMAT, "%s: the dtype argument is not a dtype", fn);
        if (d == -1) return tensor_error(p, fmt_alloc("dtype %s is not supported (torsh has " SUPPORTED ")", dtype_arg->u.str.s + 6));
        dt = (ts_dtype)d;
    }
    int64_t offset, shape[TS_MAX_DIMS], stride[TS_MAX_DIMS];
    size_t nd, ns;
    if (!ts_pk_as_int(a[1], &offset) || offset < 0) return ts_fail_null(TS_ERR_FORMAT, "%s: the storage offset is not a non-negative int", fn);
    if (!int_list(a[2], shape, TS_MAX_DIMS, &nd)) return ts_fail_null(TS_ERR_FORMAT, "%s: the size is not a tuple of non-negative ints", fn);
    if (!int_list(a[3], stride, TS_MAX_DIMS, &ns)) return ts_fail_null(TS_ERR_FORMAT, "%s: the stride is not a tuple of non-negative ints", fn);
    if (nd != ns) return ts_fail_null(TS_ERR_FORMAT, "%s: %zu sizes but %zu strides", fn, nd, ns);
    if (nd > TS_MAX_DIMS) return tensor_error(p, fmt_alloc("it has %zu dims; torsh supports at most %d", nd, TS_MAX_DIMS));
    (void)requires_grad;
    size_t esize = ts_dtype_size(dt);
    uint64_t have = st->u.storage.s->nbytes, need = 0;
    uint64_t claimed = (uint64_t)st->u.storage.numel * ts_dtype_size(st->u.storage.dtype);
    if (claimed < have) have = claimed;
    bool empty = false, overflow = false;
    uint64_t last = (uint64_t)offset;
    for (size_t i = 0; i < nd; i++) {
        if (shape[i] == 0) empty = true;
        uint64_t step;
        if (shape[i] > 0 && (__builtin_mul_overflow((uint64_t)(shape[i] - 1), (uint64_t)stride[i], &step) ||
                             __builtin_add_overflow(last, step, &last)))
            overflow = true;
    }
    if (!overflow) {
        uint64_t elems = empty ? (uint64_t)offset : last + 1;
        overflow = __builtin_mul_overflow(elems, (uint64_t)esize, &need) || need > (uint64_t)INT64_MAX;
    }
    if (overflow || need > have) {
        char sb[TS_SHAPE_STR_CAP], tb[TS_SHAPE_STR_CAP];
        return ts_fail_null(TS_ERR_FORMAT, "storage '%s' is shorter than a tensor claims: size %s, stride %s, offset %lld of %s need %s%llu bytes, the storage has %llu",
                            st->u.storage.key, ts_shape_str(shape, (int)nd, sb, sizeof sb), ts_shape_str(stride, (int)nd, tb, sizeof tb),
                            (long long)offset, ts_dtype_name(dt), overflow ? "more than " : "",
                            (unsigned long long)(overflow ? (uint64_t)INT64_MAX : need), (unsigned long long)have);
    }
    if ((uintptr_t)st->u.storage.s->data % esize)
        return ts_fail_null(TS_ERR_FORMAT, "storage '%s' is not aligned for %s", st->u.storage.key, ts_dtype_name(dt));
    ts_tensor *t = ts_tensor_from_storage(st->u.storage.s, dt, offset, shape, stride, (int)nd);
    if (!t) return NULL;
    ts_pkval *v = ts_pickle_new(p, TS_PK_TENSOR);
    if (!v) { ts_tensor_release(t); return NULL; }
    v->u.tensor.t = t;
    if (requires_grad) v->flags |= TS_PK_REQUIRES_GRAD;
    return v;
}

/* A new tensor value sharing x's tensor (or error), flagged as a Parameter. */
static ts_pkval *as_parameter(ts_pickle *p, const char *fn, const ts_pkval *x, const ts_pkval *rg)
{
    if (x->kind != TS_PK_TENSOR) return ts_fail_null(TS_ERR_FORMAT, "%s: the data is a %s, not a tensor", fn, ts_pk_kind_name(x->kind));
    ts_pkval *v = ts_pickle_new(p, TS_PK_TENSOR);
    if (!v) return NULL;
    if (x->u.tensor.error) {
        if (!(v->u.tensor.error = strdup(x->u.tensor.error))) return ts_fail_null(TS_ERR_MEMORY, "pt: out of memory");
    } else {
        ts_tensor_retain(x->u.tensor.t);
        v->u.tensor.t = x->u.tensor.t;
    }
    v->flags = x->flags | TS_PK_PARAMETER;
    if (rg && rg->kind == TS_PK_BOOL) v->flags = rg->u.b ? v->flags | TS_PK_REQUIRES_GRAD : v->flags & ~(uint32_t)TS_PK_REQUIRES_GRAD;
    return v;
}

static bool is_tensor_type(const char *g)
{
    return strcmp(g, "torch.Tensor") == 0 || strcmp(g, "torch._tensor.Tensor") == 0 ||
           strcmp(g, "torch.nn.parameter.Parameter") == 0;
}

ts_pkval *pt_call(ts_pickle *p, const char *fn, const ts_pkval *args, void *ctx)
{
    size_t n = args->u.seq.n;
    ts_pkval *const *a = args->u.seq.items;
    const char *short_fn = strrchr(fn, '.') ? strrchr(fn, '.') + 1 : fn;
    if (strcmp(fn, "torch._utils._rebuild_tensor_v2") == 0) {
        if (n != 6 && n != 7) return ts_fail_null(TS_ERR_FORMAT, "%s takes 6 or 7 arguments, not %zu", short_fn, n);
        return rebuild(p, short_fn, a, NULL, a[4]->kind == TS_PK_BOOL && a[4]->u.b);
    }
    if (strcmp(fn, "torch._utils._rebuild_tensor_v3") == 0) {
        if (n != 7 && n != 8) return ts_fail_null(TS_ERR_FORMAT, "%s takes 7 or 8 arguments, not %zu", short_fn, n);
        return rebuild(p, short_fn, a, a[6], a[4]->kind == TS_PK_BOOL && a[4]->u.b);
    }
    if (strcmp(fn, "torch._utils._rebuild_tensor") == 0) {
        if (n != 4) return ts_fail_null(TS_ERR_FORMAT, "%s takes 4 arguments, not %zu", short_fn, n);
        return rebuild(p, short_fn, a, NULL, false);
    }
    if (strcmp(fn, "torch._utils._rebuild_parameter") == 0 || strcmp(fn, "torch._utils._rebuild_parameter_with_state") == 0) {
        size_t want = strcmp(short_fn, "_rebuild_parameter") == 0 ? 3 : 4;
        if (n != want) return ts_fail_null(TS_ERR_FORMAT, "%s takes %zu arguments, not %zu", short_fn, want, n);
        return as_parameter(p, short_fn, a[0], a[1]);
    }
    if (strcmp(fn, "torch.nn.parameter.Parameter") == 0) {
        if (n == 0) return ts_fail_null(TS_ERR_FORMAT, "Parameter() without data is not supported");
        if (n > 2) return ts_fail_null(TS_ERR_FORMAT, "Parameter takes 1 or 2 arguments, not %zu", n);
        return as_parameter(p, short_fn, a[0], n == 2 ? a[1] : NULL);
    }
    if (strcmp(fn, "torch._tensor._rebuild_from_type_v2") == 0) {
        if (n != 4) return ts_fail_null(TS_ERR_FORMAT, "%s takes 4 arguments, not %zu", short_fn, n);
        if (a[1]->kind != TS_PK_GLOBAL || !is_tensor_type(a[1]->u.str.s))
            return ts_fail_null(TS_ERR_UNSUPPORTED, "tensor subclass '%s' is not supported (only torch.Tensor and nn.Parameter)",
                                a[1]->kind == TS_PK_GLOBAL ? a[1]->u.str.s : ts_pk_kind_name(a[1]->kind));
        if (a[0]->kind != TS_PK_GLOBAL || strcmp(a[0]->u.str.s, fn) == 0 || strncmp(a[0]->u.str.s, "torch._utils._rebuild_", 22) != 0)
            return ts_fail_null(TS_ERR_FORMAT, "%s: the function is not a torch rebuild function", short_fn);
        if (a[2]->kind != TS_PK_TUPLE) return ts_fail_null(TS_ERR_FORMAT, "%s: the arguments are not a tuple", short_fn);
        ts_pkval *r = pt_call(p, a[0]->u.str.s, a[2], ctx);
        if (!r) return NULL;
        if (r->kind != TS_PK_TENSOR) return ts_fail_null(TS_ERR_FORMAT, "%s did not make a tensor", short_fn);
        if (strcmp(a[1]->u.str.s, "torch.nn.parameter.Parameter") == 0) r->flags |= TS_PK_PARAMETER;
        return r;
    }
    if (strcmp(fn, "torch._utils._rebuild_qtensor") == 0) return tensor_error(p, strdup("quantized tensors are not supported"));
    if (strstr(fn, "sparse")) return tensor_error(p, strdup("sparse tensors are not supported"));
    if (strstr(fn, "meta_tensor")) return tensor_error(p, strdup("meta tensors (no data) are not supported"));
    return tensor_error(p, fmt_alloc("tensors rebuilt by %s are not supported", short_fn));
}

/* ---- the walk naming a bad tensor ---------------------------------------------------------- */

typedef struct walker {
    char path[600];
    size_t len;
    const char *file;
    int depth;
} walker;

static void path_push(walker *w, const ts_pkval *key, size_t index)
{
    char seg[96];
    const char *k = key ? text_of(key) : NULL;
    if (k) snprintf(seg, sizeof seg, "['%.*s%s']", 64, k, strlen(k) > 64 ? "..." : "");
    else if (key && key->kind == TS_PK_INT) snprintf(seg, sizeof seg, "[%lld]", (long long)key->u.i);
    else if (key) snprintf(seg, sizeof seg, "[<%s>]", ts_pk_kind_name(key->kind));
    else snprintf(seg, sizeof seg, "[%zu]", index);
    size_t s = strlen(seg);
    if (w->len + s < sizeof w->path) memcpy(w->path + w->len, seg, s + 1);
    w->len += s;
}

static ts_status walk(walker *w, ts_pkval *v)
{
    if (v->kind == TS_PK_TENSOR && v->u.tensor.error) {
        if (w->len >= sizeof w->path) strcpy(w->path + sizeof w->path - 4, "...");
        return ts_fail(TS_ERR_UNSUPPORTED, "pt: '%s': the tensor at %s cannot be loaded: %s", w->file,
                       w->len ? w->path : "the top level", v->u.tensor.error);
    }
    bool container = v->kind == TS_PK_TUPLE || v->kind == TS_PK_LIST || v->kind == TS_PK_SET ||
                     v->kind == TS_PK_FROZENSET || v->kind == TS_PK_DICT;
    if (!container || v->aux) return TS_OK;
    v->aux = 1;                                  /* visited: shared and cyclic values are walked once */
    if (++w->depth > TS_PICKLE_MAX_DEPTH + 1)
        return ts_fail(TS_ERR_FORMAT, "pt: '%s': values are nested deeper than %d levels", w->file, TS_PICKLE_MAX_DEPTH);
    size_t saved = w->len;
    ts_status st = TS_OK;
    if (v->kind == TS_PK_DICT) {
        for (size_t i = 0; i < v->u.dict.n && st == TS_OK; i++) {
            path_push(w, v->u.dict.keys[i], i);
            st = walk(w, v->u.dict.vals[i]);
            if (st == TS_OK) st = walk(w, v->u.dict.keys[i]);
            w->len = saved;
            if (w->len < sizeof w->path) w->path[w->len] = '\0';
        }
        if (st == TS_OK && v->u.dict.state) st = walk(w, v->u.dict.state);
    } else {
        for (size_t i = 0; i < v->u.seq.n && st == TS_OK; i++) {
            path_push(w, NULL, i);
            st = walk(w, v->u.seq.items[i]);
            w->len = saved;
            if (w->len < sizeof w->path) w->path[w->len] = '\0';
        }
    }
    w->depth--;
    return st;
}

ts_status pt_check_tensors(const ts_pkval *root, const char *path)
{
    walker w = { .file = path };
    return walk(&w, (ts_pkval *)root);
}

/* ---- sniffing ----------------------------------------------------------------------------- */

static const unsigned char LEGACY_MAGIC[] = { 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 };

static const char *sniff_bytes(const unsigned char *h, size_t n)
{
    if (n >= 4 && memcmp(h, "PK\x03\x04", 4) == 0) return "zip";
    if (n >= 4 && memcmp(h, "PK\x05\x06", 4) == 0) return "zip";
    if (n >= 8 && memcmp(h, "PYTORCH1", 8) == 0) return "preview";
    if (n >= 2 + sizeof LEGACY_MAGIC && h[0] == 0x80 && memcmp(h + 2, LEGACY_MAGIC, sizeof LEGACY_MAGIC) == 0) return "legacy";
    if (n >= 262 && memcmp(h + 257, "ustar", 5) == 0) return "tar";
    return NULL;
}

const char *ts_pt_sniff(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    unsigned char h[512];
    ssize_t n;
    do n = pread(fd, h, sizeof h, 0); while (n < 0 && errno == EINTR);
    close(fd);
    return n > 0 ? sniff_bytes(h, (size_t)n) : NULL;
}

/* ---- the zip format ------------------------------------------------------------------------ */

typedef struct zip_impl {
    ts_zip *z;
    char prefix[512];          /* "<folder>/" */
} zip_impl;

static ts_storage *zip_resolve(pt_ctx *c, const char *key, size_t esize, uint64_t nbytes)
{
    zip_impl *zi = c->impl;
    char name[sizeof zi->prefix + MAX_KEY + 8];
    snprintf(name, sizeof name, "%sdata/%s", zi->prefix, key);
    const ts_zip_entry *e = ts_zip_find(zi->z, name);
    if (!e) return ts_fail_null(TS_ERR_FORMAT, "storage '%s': the archive has no entry '%s'", key, name);
    if (e->usize < nbytes)
        return ts_fail_null(TS_ERR_FORMAT, "storage '%s': entry '%s' holds %llu bytes, but its persistent id claims %llu",
                            key, name, (unsigned long long)e->usize, (unsigned long long)nbytes);
    unsigned zf = (c->flags & TS_PT_VERIFY ? TS_ZIP_VERIFY : 0) | (c->flags & TS_PT_COPY || c->swap ? TS_ZIP_COPY : 0);
    ts_storage *s = ts_zip_storage(zi->z, e, STORAGE_ALIGN, zf);
    if (s && c->swap) io_swap_bytes(s->data, (int64_t)(s->nbytes / esize), esize);
    return s;
}

/* A small text entry (byteorder, version) into buf; false when absent. */
static bool small_entry(const ts_zip *z, const char *name, char *buf, size_t cap, ts_status *st)
{
    const ts_zip_entry *e = ts_zip_find(z, name);
    *st = TS_OK;
    if (!e) return false;
    if (e->usize >= cap) {
        *st = ts_fail(TS_ERR_FORMAT, "pt: '%s': entry '%s' is %llu bytes; a few were expected", ts_zip_path(z), name,
                      (unsigned long long)e->usize);
        return true;
    }
    if ((*st = ts_zip_read(z, e, buf, cap, true)) == TS_OK) buf[e->usize] = '\0';
    return true;
}

static ts_status zip_setup(pt_ctx *c, zip_impl *zi, const char *path)
{
    ts_zip *z = zi->z;
    const ts_zip_entry *first = ts_zip_entry_at(z, 0);
    if (!first) return ts_fail(TS_ERR_FORMAT, "pt: '%s': the zip archive is empty: not a PyTorch checkpoint", path);
    const char *slash = strchr(first->name, '/');
    if (!slash || (size_t)(slash - first->name) + 2 > sizeof zi->prefix) {
        size_t k = strlen(first->name);
        bool npy = k > 4 && strcmp(first->name + k - 4, ".npy") == 0;
        return ts_fail(TS_ERR_FORMAT, "pt: '%s': entry '%s' is not inside a top-level folder: not a PyTorch checkpoint%s",
                       path, first->name, npy ? " (it looks like a NumPy .npz archive)" : "");
    }
    memcpy(zi->prefix, first->name, (size_t)(slash - first->name) + 1);
    zi->prefix[slash - first->name + 1] = '\0';
    char name[sizeof zi->prefix + 32], buf[32];
    ts_status st;
    snprintf(name, sizeof name, "%sconstants.pkl", zi->prefix);
    if (ts_zip_find(z, name))
        return ts_fail(TS_ERR_UNSUPPORTED, "pt: '%s' is a TorchScript archive (torch.jit.save), not a torch.save checkpoint; "
                       "load it in PyTorch and save its state_dict() with torch.save", path);
    snprintf(name, sizeof name, "%sdata.pkl", zi->prefix);
    if (!ts_zip_find(z, name))
        return ts_fail(TS_ERR_FORMAT, "pt: '%s': no entry '%s': not a torch.save checkpoint", path, name);
    snprintf(name, sizeof name, "%sbyteorder", zi->prefix);
    if (small_entry(z, name, buf, sizeof buf, &st)) {
        if (st) return st;
        if (strcmp(buf, "big") == 0) c->swap = true;
        else if (strcmp(buf, "little") != 0)
            return ts_fail(TS_ERR_FORMAT, "pt: '%s': entry '%s' says '%.16s', not 'little' or 'big'", path, name, buf);
    }
    snprintf(name, sizeof name, "%s.data/version", zi->prefix);
    bool have = small_entry(z, name, buf, sizeof buf, &st);
    if (!have) {
        snprintf(name, sizeof name, "%sversion", zi->prefix);
        have = small_entry(z, name, buf, sizeof buf, &st);
    }
    if (have) {
        if (st) return st;
        char *end;
        long v = strtol(buf, &end, 10);
        if (end == buf || (*end && *end != '\n') || v < 1)
            return ts_fail(TS_ERR_FORMAT, "pt: '%s': entry '%s' is not a format version number", path, name);
        if (v > 20)
            return ts_fail(TS_ERR_UNSUPPORTED, "pt: '%s' has archive format version %ld, newer than this reader knows", path, v);
    }
    return TS_OK;
}

ts_pickle *pt_unpickle(pt_ctx *c, const void *bytes, size_t n, const char *what, size_t *consumed)
{
    ts_pickle_hooks hooks = { .ctx = c, .persistent_load = pt_persistent_load, .call = pt_call };
    ts_pickle *doc = ts_pickle_load(bytes, n, &hooks, consumed);
    if (!doc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", ts_last_error());
        ts_status st = ts_last_status();
        return ts_fail_null(st ? st : TS_ERR_FORMAT, "pt: '%s': %s: %s", c->path, what, msg);
    }
    if (pt_check_tensors(ts_pickle_root(doc), c->path)) {
        ts_pickle_free(doc);
        return NULL;
    }
    return doc;
}

static ts_pickle *load_zip(int fd, const char *path, unsigned flags)
{
    zip_impl zi = { .z = ts_zip_open_fd(fd, path) };
    if (!zi.z) return NULL;
    pt_ctx c = { .path = path, .flags = flags, .resolve = zip_resolve, .impl = &zi };
    ts_pickle *doc = NULL;
    if (zip_setup(&c, &zi, path) == TS_OK) {
        char name[sizeof zi.prefix + 16];
        snprintf(name, sizeof name, "%sdata.pkl", zi.prefix);
        size_t n;
        void *pkl = ts_zip_read_alloc(zi.z, ts_zip_find(zi.z, name), true, &n);
        if (pkl) doc = pt_unpickle(&c, pkl, n, name, NULL);
        free(pkl);
    }
    pt_ctx_clear(&c);
    ts_zip_close(zi.z);      /* the storages keep the mapping */
    return doc;
}

ts_pickle *ts_pt_load(const char *path, unsigned flags)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ts_fail_null(TS_ERR_IO, "pt: cannot open '%s': %s", path, strerror(errno));
    unsigned char h[512];
    ssize_t got;
    do got = pread(fd, h, sizeof h, 0); while (got < 0 && errno == EINTR);
    ts_pickle *doc = NULL;
    const char *kind = got > 0 ? sniff_bytes(h, (size_t)got) : NULL;
    struct stat st;
    if (got < 0) ts_fail(TS_ERR_IO, "pt: cannot read '%s': %s", path, strerror(errno));
    else if (!kind)
        ts_fail(TS_ERR_FORMAT, "pt: '%s' is not a PyTorch checkpoint (no zip magic 'PK\\x03\\x04' and no legacy pickle magic)", path);
    else if (strcmp(kind, "zip") == 0) doc = load_zip(fd, path, flags);
    else if (strcmp(kind, "preview") == 0)
        ts_fail(TS_ERR_UNSUPPORTED, "pt: '%s' uses the PyTorch 1.4 preview format (PYTORCH1), which is not supported; re-save it with a newer torch", path);
    else if (strcmp(kind, "tar") == 0)
        ts_fail(TS_ERR_UNSUPPORTED, "pt: '%s' is a pre-0.3 PyTorch tar checkpoint, which is not supported; re-save it with a newer torch", path);
    else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0)
        ts_fail(TS_ERR_IO, "pt: '%s' is not a regular file", path);
    else {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) ts_fail(TS_ERR_IO, "pt: cannot map '%s': %s", path, strerror(errno));
        else {
            doc = pt_load_legacy(path, m, (uint64_t)st.st_size, flags);
            munmap(m, (size_t)st.st_size);     /* legacy storages are copies */
        }
    }
    close(fd);
    return doc;
}
