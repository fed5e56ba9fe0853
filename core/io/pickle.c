/* pickle.c — the restricted unpickler of torsh/pickle.h: a loop over the
 * opcodes of protocols 2-5 that builds a value tree in a document (nodes in
 * fixed chunks, freed all at once, so shared and cyclic values are fine),
 * the allow-list of globals, the calls of plain containers, dict hashing,
 * and hooks for the calls and persistent ids a checkpoint reader handles.
 * Uses only the C library; the torch parts live in pt_read.c. */
#include "torsh/pickle.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_NODES 1024
#define MAX_GLOBAL_PART 200

struct ts_pickle {
    ts_pkval **chunks;
    size_t nchunks, chunk_cap, used;   /* nodes used in the last chunk */
    ts_pkval *root;
};

/* ---- the allow-list --------------------------------------------------------------- */

enum gclass {
    G_VALUE = 1,      /* opaque: dtypes, storage and tensor classes */
    G_ORDEREDDICT, G_SET, G_FROZENSET, G_BYTEARRAY, G_ENCODE, G_SIZE, G_DEVICE,
    G_HOOK,           /* torch rebuild functions and Parameter: the reader's hooks */
};

typedef struct gname { const char *name; enum gclass cls; } gname;

static const gname ALLOWED[] = {
    { "collections.OrderedDict", G_ORDEREDDICT },
    { "builtins.set", G_SET }, { "builtins.frozenset", G_FROZENSET },
    { "builtins.bytearray", G_BYTEARRAY }, { "_codecs.encode", G_ENCODE },
    { "torch.Size", G_SIZE }, { "torch.device", G_DEVICE },
    { "torch._utils._rebuild_tensor", G_HOOK }, { "torch._utils._rebuild_tensor_v2", G_HOOK },
    { "torch._utils._rebuild_tensor_v3", G_HOOK }, { "torch._utils._rebuild_parameter", G_HOOK },
    { "torch._utils._rebuild_parameter_with_state", G_HOOK }, { "torch._tensor._rebuild_from_type_v2", G_HOOK },
    { "torch.nn.parameter.Parameter", G_HOOK },
    { "torch._utils._rebuild_qtensor", G_HOOK }, { "torch._utils._rebuild_sparse_tensor", G_HOOK },
    { "torch._utils._rebuild_sparse_csr_tensor", G_HOOK }, { "torch._utils._rebuild_meta_tensor_no_storage", G_HOOK },
    { "torch._utils._rebuild_wrapper_subclass", G_HOOK }, { "torch._utils._rebuild_nested_tensor", G_HOOK },
    { "torch._utils._rebuild_device_tensor_from_numpy", G_HOOK },
    { "torch.Tensor", G_VALUE }, { "torch._tensor.Tensor", G_VALUE },
    { "torch.serialization._get_layout", G_VALUE }, { "torch.UntypedStorage", G_VALUE },
    { "torch.storage.UntypedStorage", G_VALUE }, { "torch.storage.TypedStorage", G_VALUE },
    { "torch.storage._TypedStorage", G_VALUE }, { "torch.storage._UntypedStorage", G_VALUE },
};

/* Storage classes, torch.<X>Storage and torch.cuda.<X>Storage. */
static const char *const STORAGE_KINDS[] = {
    "Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
    "ComplexDouble", "ComplexFloat", "QInt8", "QUInt8", "QInt32", "QUInt4x2", "QUInt2x4",
};
/* torch.<dtype> names (canonical spellings only: dtypes pickle by name). */
static const char *const DTYPES[] = {
    "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
    "complex32", "complex64", "complex128", "uint16", "uint32", "uint64", "qint8", "quint8", "qint32",
    "quint4x2", "quint2x4", "float8_e5m2", "float8_e4m3fn", "float8_e5m2fnuz", "float8_e4m3fnuz",
    "float8_e8m0fnu", "bits8", "bits16", "bits1x8", "bits2x4", "bits4x2",
};

static enum gclass global_class(const char *full)
{
    for (size_t i = 0; i < sizeof ALLOWED / sizeof *ALLOWED; i++)
        if (strcmp(full, ALLOWED[i].name) == 0) return ALLOWED[i].cls;
    const char *rest = NULL;
    if (strncmp(full, "torch.cuda.", 11) == 0) rest = full + 11;
    else if (strncmp(full, "torch.", 6) == 0) rest = full + 6;
    if (!rest || strchr(rest, '.')) return 0;
    size_t k = strlen(rest);
    for (size_t i = 0; i < sizeof STORAGE_KINDS / sizeof *STORAGE_KINDS; i++) {
        size_t m = strlen(STORAGE_KINDS[i]);
        if (k == m + 7 && strncmp(rest, STORAGE_KINDS[i], m) == 0 && strcmp(rest + m, "Storage") == 0) return G_VALUE;
        if (k == m + 6 && strncmp(rest, STORAGE_KINDS[i], m) == 0 && strcmp(rest + m, "Tensor") == 0) return G_VALUE;
    }
    if (rest == full + 6)
        for (size_t i = 0; i < sizeof DTYPES / sizeof *DTYPES; i++)
            if (strcmp(rest, DTYPES[i]) == 0) return G_VALUE;
    return 0;
}

/* ---- the document -------------------------------------------------------------------- */

ts_pkval *ts_pickle_new(ts_pickle *p, ts_pk_kind kind)
{
    if (p->nchunks == 0 || p->used == CHUNK_NODES) {
        if (p->nchunks == p->chunk_cap) {
            size_t cap = p->chunk_cap ? 2 * p->chunk_cap : 8;
            ts_pkval **c = realloc(p->chunks, cap * sizeof *c);
            if (!c) return ts_fail_null(TS_ERR_MEMORY, "pickle: out of memory");
            p->chunks = c;
            p->chunk_cap = cap;
        }
        ts_pkval *chunk = calloc(CHUNK_NODES, sizeof *chunk);
        if (!chunk) return ts_fail_null(TS_ERR_MEMORY, "pickle: out of memory");
        p->chunks[p->nchunks++] = chunk;
        p->used = 0;
    }
    ts_pkval *v = &p->chunks[p->nchunks - 1][p->used++];
    memset(v, 0, sizeof *v);
    v->kind = kind;
    return v;
}

/* Node memory that is not part of the chunks: freed with the node. */
static void free_node(ts_pkval *v)
{
    switch (v->kind) {
    case TS_PK_STR: case TS_PK_BYTES: case TS_PK_GLOBAL: free((void *)v->u.str.s); break;
    case TS_PK_TUPLE: case TS_PK_LIST: case TS_PK_SET: case TS_PK_FROZENSET: free(v->u.seq.items); break;
    case TS_PK_DICT: free(v->u.dict.keys); free(v->u.dict.vals); free(v->u.dict.index); break;
    case TS_PK_STORAGE: ts_storage_release(v->u.storage.s); free((void *)v->u.storage.key); free((void *)v->u.storage.error); break;
    case TS_PK_TENSOR: ts_tensor_release(v->u.tensor.t); free((void *)v->u.tensor.error); break;
    default: break;
    }
}

void ts_pickle_free(ts_pickle *p)
{
    if (!p) return;
    for (size_t c = 0; c < p->nchunks; c++) {
        size_t k = c + 1 == p->nchunks ? p->used : CHUNK_NODES;
        for (size_t i = 0; i < k; i++) free_node(&p->chunks[c][i]);
        free(p->chunks[c]);
    }
    free(p->chunks);
    free(p);
}

const ts_pkval *ts_pickle_root(const ts_pickle *p) { return p->root; }

/* Strings hang off their node, so ts_pickle_strdup makes a BYTES node to own them. */
const char *ts_pickle_strdup(ts_pickle *p, const char *s)
{
    ts_pkval *v = ts_pickle_new(p, TS_PK_BYTES);
    if (!v) return NULL;
    size_t n = strlen(s);
    char *c = malloc(n + 1);
    if (!c) return ts_fail_null(TS_ERR_MEMORY, "pickle: out of memory");
    memcpy(c, s, n + 1);
    v->u.str.s = c;
    v->u.str.len = n;
    return c;
}

const char *ts_pk_kind_name(ts_pk_kind k)
{
    static const char *const names[] = { "None", "bool", "int", "float", "str", "bytes", "tuple", "list", "set",
                                         "frozenset", "dict", "global", "storage", "tensor" };
    return (unsigned)k < TS_PK_KIND_COUNT ? names[k] : "?";
}

bool ts_pk_as_int(const ts_pkval *v, int64_t *out)
{
    if (v && v->kind == TS_PK_INT) { *out = v->u.i; return true; }
    if (v && v->kind == TS_PK_BOOL) { *out = v->u.b; return true; }
    return false;
}

const ts_pkval *ts_pk_dict_get(const ts_pkval *d, const char *key)
{
    if (!d || d->kind != TS_PK_DICT) return NULL;
    size_t k = strlen(key);
    for (size_t i = 0; i < d->u.dict.n; i++) {
        const ts_pkval *x = d->u.dict.keys[i];
        if (x->kind == TS_PK_STR && x->u.str.len == k && memcmp(x->u.str.s, key, k) == 0) return d->u.dict.vals[i];
    }
    return NULL;
}

/* ---- the machine ---------------------------------------------------------------------- */

typedef struct machine {
    ts_pickle *p;
    const unsigned char *data;
    size_t n, pos;
    size_t op_at;               /* offset of the opcode being run */
    unsigned char op;
    ts_pkval **stack;
    size_t sp, stack_cap;
    size_t *marks;
    size_t nmarks, marks_cap;
    ts_pkval **memo;
    size_t memo_cap, memo_count;
    const ts_pickle_hooks *hooks;
    size_t charged, budget;     /* bytes of strings and arrays made so far, and the most allowed */
} machine;

static ts_status mfail(machine *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ts_status mfail(machine *m, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ts_fail(TS_ERR_FORMAT, "pickle: %s (offset %zu)", msg, m->op_at);
}

/* A hook or helper failed with its own message: add the offset. */
static ts_status mfail_hook(machine *m)
{
    char msg[768];
    snprintf(msg, sizeof msg, "%s", ts_last_error());
    ts_status st = ts_last_status();
    return ts_fail(st ? st : TS_ERR_FORMAT, "%s (offset %zu)", msg, m->op_at);
}

static ts_status need(machine *m, size_t k)
{
    if (m->n - m->pos < k)
        return mfail(m, "truncated: opcode 0x%02x needs %zu more bytes, %zu are left", m->op, k, m->n - m->pos);
    return TS_OK;
}

static ts_status read_len(machine *m, size_t width, size_t *len)
{
    if (need(m, width)) return ts_last_status();
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++) v |= (uint64_t)m->data[m->pos + i] << (8 * i);
    m->pos += width;
    if (v > m->n - m->pos)
        return mfail(m, "truncated: a length of %llu bytes, but %zu are left", (unsigned long long)v, m->n - m->pos);
    *len = (size_t)v;
    return TS_OK;
}

/* Counts bytes the values need beyond their nodes: memo references let a
 * few input bytes copy a big string or list again and again, so the total
 * is bounded by a multiple of the input size. */
static ts_status charge(machine *m, size_t bytes)
{
    if (bytes > m->budget - m->charged)
        return mfail(m, "the values need more memory than a %zu-byte pickle can justify", m->n);
    m->charged += bytes;
    return TS_OK;
}

static size_t avail(const machine *m) { return m->sp - (m->nmarks ? m->marks[m->nmarks - 1] : 0); }

static ts_status push(machine *m, ts_pkval *v)
{
    if (!v) return ts_last_status() ? ts_last_status() : TS_ERR_MEMORY;
    if (m->sp == m->stack_cap) {
        if (m->stack_cap >= TS_PICKLE_MAX_STACK) return mfail(m, "the stack is deeper than %zu values", TS_PICKLE_MAX_STACK);
        size_t cap = m->stack_cap ? 2 * m->stack_cap : 64;
        ts_pkval **s = realloc(m->stack, cap * sizeof *s);
        if (!s) return ts_fail(TS_ERR_MEMORY, "pickle: out of memory (stack)");
        m->stack = s;
        m->stack_cap = cap;
    }
    m->stack[m->sp++] = v;
    return TS_OK;
}

static ts_pkval *pop(machine *m)
{
    if (avail(m) == 0) {
        mfail(m, "opcode 0x%02x pops from an empty stack", m->op);
        return NULL;
    }
    return m->stack[--m->sp];
}

static ts_pkval *top(machine *m)
{
    if (avail(m) == 0) {
        mfail(m, "opcode 0x%02x needs a value on the stack, which is empty", m->op);
        return NULL;
    }
    return m->stack[m->sp - 1];
}

static ts_pkval *new_val(machine *m, ts_pk_kind k) { return ts_pickle_new(m->p, k); }

static ts_pkval *new_str(machine *m, ts_pk_kind kind, const void *s, size_t len)
{
    if (charge(m, len + 1)) return NULL;
    ts_pkval *v = new_val(m, kind);
    if (!v) return NULL;
    char *c = malloc(len + 1);
    if (!c) return ts_fail_null(TS_ERR_MEMORY, "pickle: out of memory (%zu-byte string)", len);
    if (len) memcpy(c, s, len);
    c[len] = '\0';
    v->u.str.s = c;
    v->u.str.len = len;
    return v;
}

/* Nesting: a container is one deeper than its deepest item. */
static ts_status deepen(machine *m, ts_pkval *container, const ts_pkval *item)
{
    if (item->depth + 1 > container->depth) container->depth = item->depth + 1;
    if (container->depth > TS_PICKLE_MAX_DEPTH) return mfail(m, "values are nested deeper than %d levels", TS_PICKLE_MAX_DEPTH);
    return TS_OK;
}

static ts_status seq_add(machine *m, ts_pkval *s, ts_pkval *item)
{
    if (s->u.seq.n == s->u.seq.cap) {
        size_t cap = s->u.seq.cap ? 2 * s->u.seq.cap : 4;
        if (charge(m, (cap - s->u.seq.cap) * sizeof(ts_pkval *))) return ts_last_status();
        ts_pkval **it = realloc(s->u.seq.items, cap * sizeof *it);
        if (!it) return ts_fail(TS_ERR_MEMORY, "pickle: out of memory (list)");
        s->u.seq.items = it;
        s->u.seq.cap = cap;
    }
    s->u.seq.items[s->u.seq.n++] = item;
    return deepen(m, s, item);
}

/* A new sequence of `kind` holding items[0, k). */
static ts_pkval *new_seq(machine *m, ts_pk_kind kind, ts_pkval *const *items, size_t k)
{
    ts_pkval *v = new_val(m, kind);
    if (!v) return NULL;
    for (size_t i = 0; i < k; i++)
        if (seq_add(m, v, items[i])) return NULL;
    return v;
}

/* ---- dict keys: Python's hashing and equality, for the kinds that are hashable ---- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static bool hash_key(const ts_pkval *k, uint64_t *h)
{
    switch (k->kind) {
    case TS_PK_NONE: *h = 0x6e6f6e65; return true;
    case TS_PK_BOOL: *h = mix((uint64_t)k->u.b); return true;      /* True == 1, as in Python */
    case TS_PK_INT: *h = mix((uint64_t)k->u.i); return true;
    case TS_PK_FLOAT: {
        double f = k->u.f;
        if (f == floor(f) && f >= -9.2e18 && f <= 9.2e18) { *h = mix((uint64_t)(int64_t)f); return true; }
        uint64_t bits;
        memcpy(&bits, &f, 8);
        *h = mix(bits);
        return true;
    }
    case TS_PK_STR: case TS_PK_BYTES: case TS_PK_GLOBAL: {
        uint64_t x = 1469598103934665603ull ^ (uint64_t)k->kind;
        for (size_t i = 0; i < k->u.str.len; i++) x = (x ^ (unsigned char)k->u.str.s[i]) * 1099511628211ull;
        *h = x;
        return true;
    }
    case TS_PK_TUPLE: case TS_PK_FROZENSET: {
        uint64_t x = 0x7475706c65 + k->kind;
        for (size_t i = 0; i < k->u.seq.n; i++) {
            uint64_t y;
            if (!hash_key(k->u.seq.items[i], &y)) return false;
            x = mix(x ^ y) + i;
        }
        *h = x;
        return true;
    }
    case TS_PK_TENSOR: case TS_PK_STORAGE: *h = mix((uint64_t)(uintptr_t)k); return true;   /* by identity */
    default: return false;
    }
}

static bool num_of(const ts_pkval *v, double *d, int64_t *i, bool *is_int)
{
    if (v->kind == TS_PK_INT || v->kind == TS_PK_BOOL) { *i = v->kind == TS_PK_INT ? v->u.i : v->u.b; *is_int = true; return true; }
    if (v->kind == TS_PK_FLOAT) { *d = v->u.f; *is_int = false; return true; }
    return false;
}

static bool key_eq(const ts_pkval *a, const ts_pkval *b)
{
    if (a == b) return true;
    double da = 0, db = 0;
    int64_t ia = 0, ib = 0;
    bool inta, intb;
    if (num_of(a, &da, &ia, &inta) && num_of(b, &db, &ib, &intb)) {
        if (inta && intb) return ia == ib;
        if (!inta && !intb) return da == db;
        return inta ? (double)ia == db && db == floor(db) && (int64_t)db == ia : (double)ib == da && da == floor(da) && (int64_t)da == ib;
    }
    if (a->kind != b->kind) return false;
    switch (a->kind) {
    case TS_PK_NONE: return true;
    case TS_PK_STR: case TS_PK_BYTES: case TS_PK_GLOBAL:
        return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    case TS_PK_TUPLE: case TS_PK_FROZENSET:
        if (a->u.seq.n != b->u.seq.n) return false;
        for (size_t i = 0; i < a->u.seq.n; i++)
            if (!key_eq(a->u.seq.items[i], b->u.seq.items[i])) return false;
        return true;
    default: return false;   /* identity, handled above */
    }
}

static ts_status dict_reindex(machine *m, ts_pkval *d, size_t icap)
{
    if (charge(m, (icap - d->u.dict.icap) * sizeof(uint32_t))) return ts_last_status();
    uint32_t *idx = calloc(icap, sizeof *idx);
    if (!idx) return ts_fail(TS_ERR_MEMORY, "pickle: out of memory (dict)");
    for (size_t i = 0; i < d->u.dict.n; i++) {
        uint64_t h;
        hash_key(d->u.dict.keys[i], &h);   /* keys in the dict were hashable */
        size_t j = (size_t)h & (icap - 1);
        while (idx[j]) j = (j + 1) & (icap - 1);
        idx[j] = (uint32_t)(i + 1);
    }
    free(d->u.dict.index);
    d->u.dict.index = idx;
    d->u.dict.icap = icap;
    return TS_OK;
}

/* d[k] = v, keeping the first insertion's position when k is already there. */
static ts_status dict_set(machine *m, ts_pkval *d, ts_pkval *k, ts_pkval *v)
{
    uint64_t h;
    if (!hash_key(k, &h)) return mfail(m, "a dict key is a %s, which is not hashable", ts_pk_kind_name(k->kind));
    if (d->u.dict.n >= UINT32_MAX - 1) return mfail(m, "a dict has too many items");
    if ((d->u.dict.n + 1) * 2 > d->u.dict.icap && dict_reindex(m, d, d->u.dict.icap ? 2 * d->u.dict.icap : 8))
        return ts_last_status();
    size_t mask = d->u.dict.icap - 1, j = (size_t)h & mask;
    for (; d->u.dict.index[j]; j = (j + 1) & mask) {
        size_t i = d->u.dict.index[j] - 1;
        if (key_eq(d->u.dict.keys[i], k)) {
            d->u.dict.vals[i] = v;
            return deepen(m, d, v);
        }
    }
    if (d->u.dict.n == d->u.dict.cap) {
        size_t cap = d->u.dict.cap ? 2 * d->u.dict.cap : 4;
        if (charge(m, 2 * (cap - d->u.dict.cap) * sizeof(ts_pkval *))) return ts_last_status();
        ts_pkval **ks = realloc(d->u.dict.keys, cap * sizeof *ks);
        if (!ks) return ts_fail(TS_ERR_MEMORY, "pickle: out of memory (dict)");
        d->u.dict.keys = ks;
        ts_pkval **vs = realloc(d->u.dict.vals, cap * sizeof *vs);
        if (!vs) return ts_fail(TS_ERR_MEMORY, "pickle: out of memory (dict)");
        d->u.dict.vals = vs;
        d->u.dict.cap = cap;
    }
    d->u.dict.keys[d->u.dict.n] = k;
    d->u.dict.vals[d->u.dict.n] = v;
    d->u.dict.n++;
    d->u.dict.index[j] = (uint32_t)d->u.dict.n;
    if (deepen(m, d, k)) return ts_last_status();
    return deepen(m, d, v);
}

/* ---- globals and calls ------------------------------------------------------------------ */

static bool name_char_ok(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.'; }

/* Pushes the GLOBAL for module.name, or fails naming it when not allowed. */
static ts_status push_global(machine *m, const char *module, size_t mlen, const char *name, size_t nlen)
{
    char full[2 * MAX_GLOBAL_PART + 16];
    if (mlen > MAX_GLOBAL_PART || nlen > MAX_GLOBAL_PART) return mfail(m, "a global name is longer than %d bytes", MAX_GLOBAL_PART);
    bool ok = mlen > 0 && nlen > 0;
    for (size_t i = 0; i < mlen; i++) ok = ok && name_char_ok((unsigned char)module[i]);
    for (size_t i = 0; i < nlen; i++) ok = ok && name_char_ok((unsigned char)name[i]);
    if (!ok) {
        /* show it, with anything unprintable escaped */
        char shown[2 * MAX_GLOBAL_PART * 4 + 8];
        size_t k = 0;
        for (size_t i = 0; i < mlen + 1 + nlen; i++) {
            unsigned char c = i < mlen ? (unsigned char)module[i] : i == mlen ? '.' : (unsigned char)name[i - mlen - 1];
            if (c >= 32 && c < 127 && c != '\'' && c != '\\') shown[k++] = (char)c;
            else k += (size_t)snprintf(shown + k, 5, "\\x%02x", c);
        }
        shown[k] = '\0';
        return mfail(m, "global '%s' is not allowed", shown);
    }
    if (mlen == 11 && memcmp(module, "__builtin__", 11) == 0) { module = "builtins"; mlen = 8; }
    snprintf(full, sizeof full, "%.*s.%.*s", (int)mlen, module, (int)nlen, name);
    enum gclass cls = global_class(full);
    if (!cls) return mfail(m, "global '%s' is not allowed", full);
    ts_pkval *v = new_str(m, TS_PK_GLOBAL, full, strlen(full));
    if (!v) return ts_last_status();
    v->aux = cls;
    return push(m, v);
}

/* Reads one '\n'-terminated line of a GLOBAL opcode. */
static ts_status read_line(machine *m, const char **s, size_t *len)
{
    const unsigned char *start = m->data + m->pos;
    size_t left = m->n - m->pos, lim = left < MAX_GLOBAL_PART + 1 ? left : MAX_GLOBAL_PART + 1;
    const unsigned char *nl = memchr(start, '\n', lim);
    if (!nl) {
        if (left <= MAX_GLOBAL_PART) return mfail(m, "truncated: the GLOBAL opcode's name has no end of line");
        return mfail(m, "a global name is longer than %d bytes", MAX_GLOBAL_PART);
    }
    *s = (const char *)start;
    *len = (size_t)(nl - start);
    m->pos += *len + 1;
    return TS_OK;
}

/* Decodes UTF-8 text as Latin-1 code points (each < 256) into bytes. */
static ts_pkval *latin1_bytes(machine *m, const ts_pkval *s)
{
    ts_pkval *v = new_str(m, TS_PK_BYTES, "", 0);
    if (!v || charge(m, s->u.str.len + 1)) return NULL;
    char *out = malloc(s->u.str.len + 1);
    if (!out) return ts_fail_null(TS_ERR_MEMORY, "pickle: out of memory");
    size_t k = 0;
    const unsigned char *p = (const unsigned char *)s->u.str.s;
    for (size_t i = 0; i < s->u.str.len;) {
        unsigned c = p[i];
        if (c < 0x80) { out[k++] = (char)c; i++; }
        else if ((c & 0xE0) == 0xC0 && i + 1 < s->u.str.len && (p[i + 1] & 0xC0) == 0x80 && (((c & 0x1F) << 6) | (p[i + 1] & 0x3F)) < 256 &&
                 (((c & 0x1F) << 6) | (p[i + 1] & 0x3F)) >= 0x80) {
            out[k++] = (char)(((c & 0x1F) << 6) | (p[i + 1] & 0x3F));
            i += 2;
        } else {
            free(out);
            mfail(m, "_codecs.encode: the text is not Latin-1");
            return NULL;
        }
    }
    out[k] = '\0';
    free((void *)v->u.str.s);
    v->u.str.s = out;
    v->u.str.len = k;
    return v;
}

static bool is_seq(const ts_pkval *v)
{
    return v->kind == TS_PK_TUPLE || v->kind == TS_PK_LIST || v->kind == TS_PK_SET || v->kind == TS_PK_FROZENSET;
}

/* Calls an allowed global with an argument tuple (REDUCE, NEWOBJ). */
static ts_pkval *call(machine *m, const ts_pkval *fn, const ts_pkval *args, const char *how)
{
    if (fn->kind != TS_PK_GLOBAL) {
        mfail(m, "%s calls a %s, which is not an allowed callable", how, ts_pk_kind_name(fn->kind));
        return NULL;
    }
    if (args->kind != TS_PK_TUPLE) {
        mfail(m, "%s of '%s': the arguments are a %s, not a tuple", how, fn->u.str.s, ts_pk_kind_name(args->kind));
        return NULL;
    }
    size_t na = args->u.seq.n;
    ts_pkval *const *a = args->u.seq.items;
    switch ((enum gclass)fn->aux) {
    case G_ORDEREDDICT: {
        ts_pkval *d = new_val(m, TS_PK_DICT);
        if (!d) return NULL;
        d->flags |= TS_PK_ORDERED;
        if (na == 0) return d;
        if (na == 1 && is_seq(a[0])) {
            for (size_t i = 0; i < a[0]->u.seq.n; i++) {
                const ts_pkval *pair = a[0]->u.seq.items[i];
                if (!is_seq(pair) || pair->u.seq.n != 2) { mfail(m, "OrderedDict(): item %zu is not a pair", i); return NULL; }
                if (dict_set(m, d, pair->u.seq.items[0], pair->u.seq.items[1])) return NULL;
            }
            return d;
        }
        mfail(m, "OrderedDict() takes no arguments or a list of pairs");
        return NULL;
    }
    case G_SET: case G_FROZENSET: {
        ts_pk_kind k = fn->aux == G_SET ? TS_PK_SET : TS_PK_FROZENSET;
        if (na == 0) return new_val(m, k);
        if (na == 1 && is_seq(a[0])) return new_seq(m, k, a[0]->u.seq.items, a[0]->u.seq.n);
        mfail(m, "'%s' takes no arguments or one sequence", fn->u.str.s);
        return NULL;
    }
    case G_BYTEARRAY:
        if (na == 0) return new_str(m, TS_PK_BYTES, "", 0);
        if (na == 1 && a[0]->kind == TS_PK_BYTES) return new_str(m, TS_PK_BYTES, a[0]->u.str.s, a[0]->u.str.len);
        if (na == 2 && a[0]->kind == TS_PK_STR && a[1]->kind == TS_PK_STR) return latin1_bytes(m, a[0]);
        mfail(m, "bytearray() with unsupported arguments");
        return NULL;
    case G_ENCODE:
        if (na == 2 && a[0]->kind == TS_PK_STR && a[1]->kind == TS_PK_STR) {
            const char *enc = a[1]->u.str.s;
            if (strcmp(enc, "latin1") == 0 || strcmp(enc, "latin-1") == 0 || strcmp(enc, "iso-8859-1") == 0)
                return latin1_bytes(m, a[0]);
            if (strcmp(enc, "utf-8") == 0 || strcmp(enc, "utf8") == 0 || strcmp(enc, "ascii") == 0)
                return new_str(m, TS_PK_BYTES, a[0]->u.str.s, a[0]->u.str.len);
            mfail(m, "_codecs.encode: encoding '%.40s' is not supported", enc);
            return NULL;
        }
        mfail(m, "_codecs.encode takes (str, encoding)");
        return NULL;
    case G_SIZE:
        if (na == 1 && is_seq(a[0])) {
            for (size_t i = 0; i < a[0]->u.seq.n; i++)
                if (a[0]->u.seq.items[i]->kind != TS_PK_INT) { mfail(m, "torch.Size(): item %zu is not an int", i); return NULL; }
            return new_seq(m, TS_PK_TUPLE, a[0]->u.seq.items, a[0]->u.seq.n);
        }
        if (na == 0) return new_val(m, TS_PK_TUPLE);
        mfail(m, "torch.Size() takes one sequence of ints");
        return NULL;
    case G_DEVICE:
        if ((na == 1 || na == 2) && a[0]->kind == TS_PK_STR && a[0]->u.str.len < 64) {
            char buf[96];
            if (na == 2 && a[1]->kind == TS_PK_INT) snprintf(buf, sizeof buf, "%s:%lld", a[0]->u.str.s, (long long)a[1]->u.i);
            else if (na == 1) snprintf(buf, sizeof buf, "%s", a[0]->u.str.s);
            else { mfail(m, "torch.device() with unsupported arguments"); return NULL; }
            return new_str(m, TS_PK_STR, buf, strlen(buf));
        }
        mfail(m, "torch.device() with unsupported arguments");
        return NULL;
    case G_HOOK: {
        if (!m->hooks || !m->hooks->call) {
            mfail(m, "'%s' needs a checkpoint reader (use ts_pt_load)", fn->u.str.s);
            return NULL;
        }
        ts_clear_error();
        ts_pkval *r = m->hooks->call(m->p, fn->u.str.s, args, m->hooks->ctx);
        if (!r) { mfail_hook(m); return NULL; }
        return r;
    }
    case G_VALUE:
    default:
        mfail(m, "'%s' cannot be called", fn->u.str.s);
        return NULL;
    }
}

/* ---- the opcodes ----------------------------------------------------------------------------- */

/* Items since the last MARK, which is removed; *k gets their count. */
static ts_pkval **pop_mark(machine *m, size_t *k)
{
    if (m->nmarks == 0) {
        mfail(m, "opcode 0x%02x needs a MARK, and there is none", m->op);
        return NULL;
    }
    static ts_pkval *no_items[1];
    size_t base = m->marks[--m->nmarks];
    *k = m->sp - base;
    m->sp = base;
    return m->stack ? m->stack + base : no_items;    /* valid until the next push */
}

static ts_status op_memo_put(machine *m, uint64_t idx)
{
    ts_pkval *v = top(m);
    if (!v) return ts_last_status();
    if (idx >= m->pos) return mfail(m, "memo index %llu is too large", (unsigned long long)idx);
    if (idx >= m->memo_cap) {
        size_t cap = m->memo_cap ? m->memo_cap : 64;
        while (cap <= idx) cap *= 2;
        ts_pkval **memo = realloc(m->memo, cap * sizeof *memo);
        if (!memo) return ts_fail(TS_ERR_MEMORY, "pickle: out of memory (memo)");
        memset(memo + m->memo_cap, 0, (cap - m->memo_cap) * sizeof *memo);
        m->memo = memo;
        m->memo_cap = cap;
    }
    if (!m->memo[idx]) m->memo_count++;
    m->memo[idx] = v;
    return TS_OK;
}

static ts_status op_memo_get(machine *m, uint64_t idx)
{
    if (idx >= m->memo_cap || !m->memo[idx]) return mfail(m, "memo index %llu is not set", (unsigned long long)idx);
    return push(m, m->memo[idx]);
}

static uint64_t read_uint(const unsigned char *p, size_t width)
{
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* LONG1 / LONG4: little-endian two's complement of k bytes. */
static ts_pkval *make_long(machine *m, const unsigned char *b, size_t k)
{
    if (k == 0) {
        ts_pkval *v = new_val(m, TS_PK_INT);
        return v;
    }
    bool neg = b[k - 1] & 0x80;
    /* fits in int64 when every byte above the 8th is pure sign extension */
    bool fits = true;
    for (size_t i = 8; i < k; i++) fits = fits && b[i] == (neg ? 0xFF : 0x00);
    if (fits && k > 8) fits = ((b[7] & 0x80) != 0) == neg;
    if (fits) {
        uint64_t u = neg ? UINT64_MAX : 0;
        for (size_t i = 0; i < k && i < 8; i++) u = (u & ~((uint64_t)0xFF << (8 * i))) | (uint64_t)b[i] << (8 * i);
        ts_pkval *v = new_val(m, TS_PK_INT);
        if (v) v->u.i = (int64_t)u;
        return v;
    }
    double d = 0;
    for (size_t i = k; i-- > 0;) d = d * 256.0 + (double)(neg ? (unsigned char)~b[i] : b[i]);
    ts_pkval *v = new_val(m, TS_PK_FLOAT);
    if (v) {
        v->u.f = neg ? -(d + 1) : d;
        v->flags |= TS_PK_BIGINT;
    }
    return v;
}

static ts_status push_string(machine *m, ts_pk_kind kind, size_t width)
{
    size_t len = 0;
    if (read_len(m, width, &len)) return ts_last_status();
    ts_pkval *v = new_str(m, kind, m->data + m->pos, len);
    m->pos += len;
    return push(m, v);
}

static ts_status op_tuple_n(machine *m, size_t k)
{
    if (avail(m) < k) return mfail(m, "TUPLE%zu needs %zu values on the stack", k, k);
    ts_pkval *t = new_seq(m, TS_PK_TUPLE, m->stack + m->sp - k, k);
    if (!t) return ts_last_status();
    m->sp -= k;
    return push(m, t);
}

static ts_status op_build(machine *m)
{
    ts_pkval *state = pop(m), *inst = state ? top(m) : NULL;
    if (!inst) return ts_last_status();
    if (inst->kind == TS_PK_DICT) {
        inst->u.dict.state = state;
        return deepen(m, inst, state);
    }
    if (inst->kind == TS_PK_TENSOR) return TS_OK;      /* Python attributes of a tensor: ignored */
    return mfail(m, "BUILD on a %s is not allowed", ts_pk_kind_name(inst->kind));
}

static ts_status op_reduce(machine *m)
{
    ts_pkval *args = pop(m), *fn = args ? top(m) : NULL;
    if (!fn) return ts_last_status();
    ts_pkval *r = call(m, fn, args, "REDUCE");
    if (!r) return ts_last_status();
    m->stack[m->sp - 1] = r;
    return TS_OK;
}

static ts_status op_newobj(machine *m, bool ex)
{
    ts_pkval *kwargs = NULL;
    if (ex && !(kwargs = pop(m))) return ts_last_status();
    ts_pkval *args = pop(m), *cls = args ? pop(m) : NULL;
    if (!cls) return ts_last_status();
    if (kwargs && !(kwargs->kind == TS_PK_DICT && kwargs->u.dict.n == 0))
        return mfail(m, "NEWOBJ_EX with keyword arguments is not supported");
    if (cls->kind == TS_PK_GLOBAL && cls->aux != G_ORDEREDDICT && cls->aux != G_SET && cls->aux != G_FROZENSET &&
        cls->aux != G_HOOK)
        return mfail(m, "NEWOBJ of '%s' is not allowed", cls->u.str.s);
    ts_pkval *r = call(m, cls, args, "NEWOBJ");
    if (!r) return ts_last_status();
    return push(m, r);
}

static ts_status op_persid(machine *m)
{
    ts_pkval *pid = pop(m);
    if (!pid) return ts_last_status();
    if (!m->hooks || !m->hooks->persistent_load) return mfail(m, "a persistent id, but no checkpoint reader to resolve it");
    ts_clear_error();
    ts_pkval *r = m->hooks->persistent_load(m->p, pid, m->hooks->ctx);
    if (!r) return mfail_hook(m);
    return push(m, r);
}

static ts_status op_appends(machine *m, ts_pk_kind want, const char *opname)
{
    size_t k;
    ts_pkval **items = pop_mark(m, &k);
    if (!items) return ts_last_status();
    ts_pkval *target = top(m);
    if (!target) return ts_last_status();
    if (target->kind != want) return mfail(m, "%s to a %s is not allowed", opname, ts_pk_kind_name(target->kind));
    for (size_t i = 0; i < k; i++)
        if (seq_add(m, target, items[i])) return ts_last_status();
    return TS_OK;
}

static ts_status op_setitems(machine *m)
{
    size_t k;
    ts_pkval **items = pop_mark(m, &k);
    if (!items) return ts_last_status();
    ts_pkval *d = top(m);
    if (!d) return ts_last_status();
    if (d->kind != TS_PK_DICT) return mfail(m, "SETITEMS on a %s is not allowed", ts_pk_kind_name(d->kind));
    if (k % 2) return mfail(m, "SETITEMS with an odd number (%zu) of keys and values", k);
    for (size_t i = 0; i < k; i += 2)
        if (dict_set(m, d, items[i], items[i + 1])) return ts_last_status();
    return TS_OK;
}

/* Runs one opcode. *stop is set by STOP. */
static ts_status step(machine *m, bool *stop)
{
    m->op_at = m->pos;
    m->op = m->data[m->pos++];
    const unsigned char *p = m->data + m->pos;
    switch (m->op) {
    case 0x80:   /* PROTO */
        if (need(m, 1)) return ts_last_status();
        if (p[0] > 5) return mfail(m, "pickle protocol %u is newer than 5", p[0]);
        m->pos++;
        return TS_OK;
    case 0x95: { /* FRAME */
        size_t len = 0;
        return read_len(m, 8, &len);   /* framing only groups opcodes: checked, then ignored */
    }
    case '.': {  /* STOP */
        ts_pkval *v = pop(m);
        if (!v) return ts_last_status();
        m->p->root = v;
        *stop = true;
        return TS_OK;
    }
    case '(':    /* MARK */
        if (m->nmarks == m->marks_cap) {
            if (m->marks_cap >= TS_PICKLE_MAX_MARKS) return mfail(m, "more than %zu open MARKs", TS_PICKLE_MAX_MARKS);
            size_t cap = m->marks_cap ? 2 * m->marks_cap : 16;
            size_t *mk = realloc(m->marks, cap * sizeof *mk);
            if (!mk) return ts_fail(TS_ERR_MEMORY, "pickle: out of memory (marks)");
            m->marks = mk;
            m->marks_cap = cap;
        }
        m->marks[m->nmarks++] = m->sp;
        return TS_OK;
    case '0':    /* POP */
        if (avail(m) > 0) { m->sp--; return TS_OK; }
        if (m->nmarks > 0) { m->nmarks--; return TS_OK; }
        return mfail(m, "POP from an empty stack");
    case '1': {  /* POP_MARK */
        size_t k;
        return pop_mark(m, &k) ? TS_OK : ts_last_status();
    }
    case '2': {  /* DUP */
        ts_pkval *v = top(m);
        return v ? push(m, v) : ts_last_status();
    }
    case 'c': {  /* GLOBAL */
        const char *mod = NULL, *name = NULL;
        size_t ml = 0, nl = 0;
        if (read_line(m, &mod, &ml) || read_line(m, &name, &nl)) return ts_last_status();
        return push_global(m, mod, ml, name, nl);
    }
    case 0x93: { /* STACK_GLOBAL */
        ts_pkval *name = pop(m), *mod = name ? pop(m) : NULL;
        if (!mod) return ts_last_status();
        if (mod->kind != TS_PK_STR || name->kind != TS_PK_STR) return mfail(m, "STACK_GLOBAL needs two str values");
        return push_global(m, mod->u.str.s, mod->u.str.len, name->u.str.s, name->u.str.len);
    }
    case 'Q': return op_persid(m);                       /* BINPERSID */
    case 'R': return op_reduce(m);                       /* REDUCE */
    case 0x81: return op_newobj(m, false);               /* NEWOBJ */
    case 0x92: return op_newobj(m, true);                /* NEWOBJ_EX */
    case 'b': return op_build(m);                        /* BUILD */
    case 'N': return push(m, new_val(m, TS_PK_NONE));    /* NONE */
    case 0x88: case 0x89: {                              /* NEWTRUE, NEWFALSE */
        ts_pkval *v = new_val(m, TS_PK_BOOL);
        if (v) v->u.b = m->op == 0x88;
        return push(m, v);
    }
    case 'K': case 'M': case 'J': {                      /* BININT1, BININT2, BININT */
        size_t w = m->op == 'K' ? 1 : m->op == 'M' ? 2 : 4;
        if (need(m, w)) return ts_last_status();
        ts_pkval *v = new_val(m, TS_PK_INT);
        if (v) v->u.i = w == 4 ? (int64_t)(int32_t)(uint32_t)read_uint(p, 4) : (int64_t)read_uint(p, w);
        m->pos += w;
        return push(m, v);
    }
    case 0x8a: case 0x8b: {                              /* LONG1, LONG4 */
        size_t len = 0;
        if (read_len(m, m->op == 0x8a ? 1 : 4, &len)) return ts_last_status();
        ts_pkval *v = make_long(m, m->data + m->pos, len);
        m->pos += len;
        return push(m, v);
    }
    case 'G': {                                          /* BINFLOAT: big-endian double */
        if (need(m, 8)) return ts_last_status();
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = bits << 8 | p[i];
        ts_pkval *v = new_val(m, TS_PK_FLOAT);
        if (v) memcpy(&v->u.f, &bits, 8);
        m->pos += 8;
        return push(m, v);
    }
    case 'X': return push_string(m, TS_PK_STR, 4);       /* BINUNICODE */
    case 0x8c: return push_string(m, TS_PK_STR, 1);      /* SHORT_BINUNICODE */
    case 0x8d: return push_string(m, TS_PK_STR, 8);      /* BINUNICODE8 */
    case 'U': return push_string(m, TS_PK_STR, 1);       /* SHORT_BINSTRING (Python 2 str, read as text) */
    case 'T': return push_string(m, TS_PK_STR, 4);       /* BINSTRING */
    case 'C': return push_string(m, TS_PK_BYTES, 1);     /* SHORT_BINBYTES */
    case 'B': return push_string(m, TS_PK_BYTES, 4);     /* BINBYTES */
    case 0x8e: return push_string(m, TS_PK_BYTES, 8);    /* BINBYTES8 */
    case 0x96: return push_string(m, TS_PK_BYTES, 8);    /* BYTEARRAY8 */
    case ')': return push(m, new_val(m, TS_PK_TUPLE));   /* EMPTY_TUPLE */
    case ']': return push(m, new_val(m, TS_PK_LIST));    /* EMPTY_LIST */
    case '}': return push(m, new_val(m, TS_PK_DICT));    /* EMPTY_DICT */
    case 0x8f: return push(m, new_val(m, TS_PK_SET));    /* EMPTY_SET */
    case 0x85: return op_tuple_n(m, 1);                  /* TUPLE1 */
    case 0x86: return op_tuple_n(m, 2);                  /* TUPLE2 */
    case 0x87: return op_tuple_n(m, 3);                  /* TUPLE3 */
    case 't': case 0x91: {                               /* TUPLE, FROZENSET */
        size_t k;
        ts_pkval **items = pop_mark(m, &k);
        if (!items) return ts_last_status();
        return push(m, new_seq(m, m->op == 't' ? TS_PK_TUPLE : TS_PK_FROZENSET, items, k));
    }
    case 'a': {                                          /* APPEND */
        ts_pkval *v = pop(m), *l = v ? top(m) : NULL;
        if (!l) return ts_last_status();
        if (l->kind != TS_PK_LIST) return mfail(m, "APPEND to a %s is not allowed", ts_pk_kind_name(l->kind));
        return seq_add(m, l, v);
    }
    case 'e': return op_appends(m, TS_PK_LIST, "APPENDS");
    case 0x90: return op_appends(m, TS_PK_SET, "ADDITEMS");
    case 's': {                                          /* SETITEM */
        ts_pkval *v = pop(m), *k = v ? pop(m) : NULL, *d = k ? top(m) : NULL;
        if (!d) return ts_last_status();
        if (d->kind != TS_PK_DICT) return mfail(m, "SETITEM on a %s is not allowed", ts_pk_kind_name(d->kind));
        return dict_set(m, d, k, v);
    }
    case 'u': return op_setitems(m);
    case 'q': if (need(m, 1)) return ts_last_status(); m->pos += 1; return op_memo_put(m, p[0]);              /* BINPUT */
    case 'r': if (need(m, 4)) return ts_last_status(); m->pos += 4; return op_memo_put(m, read_uint(p, 4));  /* LONG_BINPUT */
    case 0x94: return op_memo_put(m, m->memo_count);                                                       /* MEMOIZE */
    case 'h': if (need(m, 1)) return ts_last_status(); m->pos += 1; return op_memo_get(m, p[0]);              /* BINGET */
    case 'j': if (need(m, 4)) return ts_last_status(); m->pos += 4; return op_memo_get(m, read_uint(p, 4));  /* LONG_BINGET */
    default:
        if (m->op >= 32 && m->op < 127)
            return mfail(m, "opcode 0x%02x ('%c') is not supported", m->op, m->op);
        return mfail(m, "opcode 0x%02x is not supported", m->op);
    }
}

ts_pickle *ts_pickle_load(const void *data, size_t n, const ts_pickle_hooks *hooks, size_t *consumed)
{
    ts_pickle *p = calloc(1, sizeof *p);
    if (!p) return ts_fail_null(TS_ERR_MEMORY, "pickle: out of memory");
    machine m = { .p = p, .data = data, .n = n, .hooks = hooks };
    m.budget = n < SIZE_MAX / 32 - ((size_t)1 << 20) ? 32 * n + ((size_t)1 << 20) : SIZE_MAX;
    bool stop = false;
    ts_status st = TS_OK;
    while (!stop && st == TS_OK) {
        if (m.pos >= m.n) {
            m.op_at = m.pos;
            st = mfail(&m, n == 0 ? "empty input" : "truncated: the data ends before the STOP opcode");
            break;
        }
        st = step(&m, &stop);
    }
    if (st == TS_OK && !consumed && m.pos != m.n) {
        m.op_at = m.pos;
        st = mfail(&m, "%zu bytes follow the STOP opcode", m.n - m.pos);
    }
    free(m.stack);
    free(m.marks);
    free(m.memo);
    if (st != TS_OK) {
        ts_pickle_free(p);
        return NULL;
    }
    if (consumed) *consumed = m.pos;
    return p;
}
