/* onnx_read.c — the ONNX importer (torsh/onnx.h): a serialized ModelProto,
 * unpacked by protobuf-c (core/proto/onnx.proto), becomes a ts_graph.
 *
 * Memory: the model file is mapped, not read into the heap. protobuf-c
 * unpacks it with an allocator that takes big blocks (raw_data above all)
 * from the counted tensor allocator, 64-byte aligned, so an initializer
 * whose raw_data has the expected size adopts that block as its storage:
 * each weight exists once in memory. External data is mapped read-only when its offset
 * is aligned, read otherwise. When unpacking fails, onnx_wire.c says where
 * and why.
 */
#include "onnx_internal.h"
#include "io_internal.h"
#include "onnx.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the unpack allocator ----------------------------------------------------------- */

/* Every block handed to protobuf-c carries a header just before it: its
 * size at p-16 and a tag at p-8. Small blocks come from malloc (16-byte
 * header); big ones (raw_data above all) from the counted tensor allocator
 * with a 64-byte header, so the data stays 64-byte aligned and the block
 * can become a tensor storage as it is. */
#define BIG_BLOCK 16384
#define SMALL_HEAD 16
#define BIG_HEAD 64
enum { TAG_SMALL = 0x6f6e6e78736d6c31ull, TAG_BIG = 0x6f6e6e7862696731ull };

typedef struct unpack_alloc { bool out_of_memory; } unpack_alloc;

static void set_head(unsigned char *p, size_t size, uint64_t tag)
{
    uint64_t sz = size;
    memcpy(p - 16, &sz, 8);
    memcpy(p - 8, &tag, 8);
}

static void *ua_alloc(void *ud, size_t size)
{
    unpack_alloc *a = ud;
    unsigned char *p;
    if (size < BIG_BLOCK) {
        unsigned char *base = malloc(size + SMALL_HEAD);
        if (!base) { a->out_of_memory = true; return NULL; }
        p = base + SMALL_HEAD;
        set_head(p, size, TAG_SMALL);
    } else {
        unsigned char *base = ts_mem_alloc(size + BIG_HEAD);
        if (!base) { a->out_of_memory = true; return NULL; }
        p = base + BIG_HEAD;
        set_head(p, size, TAG_BIG);
    }
    return p;
}

static void ua_free(void *ud, void *ptr)
{
    (void)ud;
    if (!ptr) return;
    unsigned char *p = ptr;
    uint64_t size, tag;
    memcpy(&size, p - 16, 8);
    memcpy(&tag, p - 8, 8);
    if (tag == TAG_BIG) ts_mem_free(p - BIG_HEAD, (size_t)size + BIG_HEAD);
    else free(p - SMALL_HEAD);
}

static void big_release(ts_storage *s) { ts_mem_free(s->owner, s->owner_len); }

/* Takes the block p of an unpacked bytes field away from the message as a
 * heap storage of exactly `size` bytes; NULL when p is not a big block of
 * that size (then the caller copies). */
static ts_storage *ua_adopt(void *ptr, size_t size)
{
    unsigned char *p = ptr;
    uint64_t have, tag;
    memcpy(&have, p - 16, 8);
    memcpy(&tag, p - 8, 8);
    if (tag != TAG_BIG || have != size) return NULL;
    ts_storage *s = ts_storage_wrap(p, size, big_release, p - BIG_HEAD);
    if (!s) return NULL;
    s->kind = TS_STORAGE_HEAP;
    s->owner_len = size + BIG_HEAD;
    return s;
}

/* ---- the reader state and its errors ------------------------------------------------------- */

typedef struct reader {
    const char *name;       /* the model, for messages */
    const char *base_dir;   /* external data folder, or NULL */
    unpack_alloc alloc;
    Onnx__ModelProto *m;
    ts_graph *g;
} reader;

/* Records "onnx_load: NAME: <message>" and returns code. */
__attribute__((format(printf, 3, 4)))
static ts_status rfail(const reader *r, ts_status code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ts_fail(code, "onnx_load: %s: %s", r->name, msg);
}

/* Prefixes the current error (from a graph or tensor call) with the place
 * (NULL: with the file only). */
static ts_status rwrap(const reader *r, const char *place)
{
    char prev[768];
    snprintf(prev, sizeof prev, "%s", ts_last_error());
    ts_status code = ts_last_status();
    if (!place) return rfail(r, code == TS_OK ? TS_ERR_INTERNAL : code, "%s", prev);
    return rfail(r, code == TS_OK ? TS_ERR_INTERNAL : code, "%s: %s", place, prev);
}

/* ---- tensors ------------------------------------------------------------------------------- */

/* Checked numel and byte size of dims; fails naming `what`. */
static ts_status check_dims(const reader *r, const char *what, const int64_t *dims, size_t n, ts_dtype dt,
                            int64_t *numel, int64_t *bytes)
{
    if (n > TS_MAX_DIMS)
        return rfail(r, TS_ERR_FORMAT, "%s has rank %zu; torsh supports at most %d dims", what, n, TS_MAX_DIMS);
    for (size_t i = 0; i < n; i++)
        if (dims[i] < 0)
            return rfail(r, TS_ERR_FORMAT, "%s: dim %zu is negative (%lld)", what, i, (long long)dims[i]);
    if (!io_checked_bytes(dims, (int)n, ts_dtype_size(dt), numel, bytes))
        return rfail(r, TS_ERR_FORMAT, "%s: dims are too large (over %zu bytes)", what, (size_t)TS_MAX_ALLOC_BYTES);
    return TS_OK;
}

/* Parses a decimal key of external_data into *out. */
static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s) return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        if (v > (UINT64_MAX - 9) / 10) return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

/* true when rel is a relative path that stays inside its folder: not
 * absolute, no ".." component (either separator), not empty. */
static bool path_is_inside(const char *rel)
{
    if (!*rel || rel[0] == '/' || rel[0] == '\\') return false;
    if (strchr(rel, ':') && rel[1] == ':') return false;     /* "C:\..." */
    const char *s = rel;
    while (*s) {
        size_t n = strcspn(s, "/\\");
        if (n == 2 && s[0] == '.' && s[1] == '.') return false;
        s += n;
        if (*s) s++;
    }
    return true;
}

static ts_tensor *external_tensor(const reader *r, const Onnx__TensorProto *tp, const char *what, ts_dtype dt,
                                  const int64_t *shape, int ndim, int64_t bytes)
{
    const char *location = NULL, *off_s = NULL, *len_s = NULL;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *kv = tp->external_data[i];
        if (!kv->key) continue;
        if (strcmp(kv->key, "location") == 0) location = kv->value;
        else if (strcmp(kv->key, "offset") == 0) off_s = kv->value;
        else if (strcmp(kv->key, "length") == 0) len_s = kv->value;
    }
    if (!location)
        return rfail(r, TS_ERR_FORMAT, "%s: external data without a 'location'", what), NULL;
    if (!path_is_inside(location))
        return rfail(r, TS_ERR_FORMAT, "%s: external data location '%s' is refused: it must be a relative path "
                     "inside the model's folder (no absolute path, no '..')", what, location), NULL;
    if (!r->base_dir)
        return rfail(r, TS_ERR_ARG, "%s: external data '%s' needs the model's folder (no base_dir was given)",
                     what, location), NULL;
    uint64_t offset = 0, length = (uint64_t)bytes;
    if (off_s && !parse_u64(off_s, &offset))
        return rfail(r, TS_ERR_FORMAT, "%s: external data offset '%s' is not a number", what, off_s), NULL;
    if (len_s && !parse_u64(len_s, &length))
        return rfail(r, TS_ERR_FORMAT, "%s: external data length '%s' is not a number", what, len_s), NULL;
    if (length != (uint64_t)bytes)
        return rfail(r, TS_ERR_FORMAT, "%s: external data length is %llu bytes, expected %lld", what,
                     (unsigned long long)length, (long long)bytes), NULL;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", r->base_dir, location) >= sizeof path)
        return rfail(r, TS_ERR_ARG, "%s: external data path is too long", what), NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rfail(r, TS_ERR_IO, "%s: cannot open external data '%s': %s", what, path, strerror(errno)), NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return rfail(r, TS_ERR_IO, "%s: external data '%s' is not a regular file", what, path), NULL;
    }
    uint64_t fsize = (uint64_t)st.st_size;
    if (offset > fsize || length > fsize - offset) {
        close(fd);
        return rfail(r, TS_ERR_FORMAT, "%s: external data [%llu, +%llu) is past the end of '%s' (%llu bytes)", what,
                     (unsigned long long)offset, (unsigned long long)length, path, (unsigned long long)fsize), NULL;
    }
    ts_tensor *t = NULL;
    if (offset % 64 == 0 && length >= 4096) {
        close(fd);
        ts_storage *s = ts_storage_mmap(path, (size_t)offset, (size_t)length);
        if (!s) return rwrap(r, what), NULL;
        t = ts_tensor_from_storage(s, dt, 0, shape, NULL, ndim);
        ts_storage_release(s);
        if (!t) rwrap(r, what);
        return t;
    }
    t = ts_tensor_new(shape, ndim, dt);
    if (!t) { close(fd); return rwrap(r, what), NULL; }
    char *dst = ts_tensor_data(t);
    size_t done = 0;
    while (done < length) {
        ssize_t n = pread(fd, dst + done, (size_t)length - done, (off_t)(offset + done));
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            close(fd);
            ts_tensor_release(t);
            return rfail(r, TS_ERR_IO, "%s: reading external data '%s': %s", what, path, strerror(err)), NULL;
        }
        done += (size_t)n;
    }
    close(fd);
    return t;
}

/* The tensor a TensorProto holds (new reference), or NULL naming `what`
 * ("initializer 'fc.weight'"). raw_data of the exact size is adopted, not copied. */
static ts_tensor *tensor_from_proto(reader *r, Onnx__TensorProto *tp, const char *what)
{
    int32_t ot = tp->has_data_type ? tp->data_type : ONNX_UNDEFINED;
    ts_dtype dt;
    if (!onnx_to_ts_dtype(ot, &dt))
        return rfail(r, TS_ERR_UNSUPPORTED, "%s has data type %s (%d), which torsh does not support "
                     "(supported: FLOAT DOUBLE FLOAT16 BFLOAT16 INT8 UINT8 INT16 INT32 INT64 BOOL)",
                     what, onnx_dtype_name(ot), (int)ot), NULL;
    int64_t numel = 0, bytes = 0;
    if (check_dims(r, what, tp->dims, tp->n_dims, dt, &numel, &bytes)) return NULL;
    int ndim = (int)tp->n_dims;
    int64_t shape[TS_MAX_DIMS];
    for (int i = 0; i < ndim; i++) shape[i] = tp->dims[i];
    size_t es = ts_dtype_size(dt);

    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return external_tensor(r, tp, what, dt, shape, ndim, bytes);

    if (tp->has_raw_data) {
        if (tp->raw_data.len != (size_t)bytes) {
            char sb[TS_SHAPE_STR_CAP];
            return rfail(r, TS_ERR_FORMAT, "%s: raw_data has %zu bytes, expected %lld (%s %s)", what,
                         tp->raw_data.len, (long long)bytes, ts_dtype_name(dt), ts_shape_str(shape, ndim, sb, sizeof sb)),
                   NULL;
        }
        ts_storage *s = bytes > 0 ? ua_adopt(tp->raw_data.data, (size_t)bytes) : NULL;
        if (s) {
            tp->raw_data.data = NULL;   /* the storage owns it now */
            tp->raw_data.len = 0;
            ts_tensor *t = ts_tensor_from_storage(s, dt, 0, shape, NULL, ndim);
            ts_storage_release(s);
            if (!t) rwrap(r, what);
            return t;
        }
        ts_tensor *t = ts_tensor_new(shape, ndim, dt);
        if (!t) return rwrap(r, what), NULL;
        if (bytes) memcpy(ts_tensor_data(t), tp->raw_data.data, (size_t)bytes);
        return t;
    }

    /* typed fields */
    const char *field;
    size_t have;
    switch (dt) {
    case TS_F32: field = "float_data"; have = tp->n_float_data; break;
    case TS_F64: field = "double_data"; have = tp->n_double_data; break;
    case TS_I64: field = "int64_data"; have = tp->n_int64_data; break;
    default: field = "int32_data"; have = tp->n_int32_data; break;
    }
    if (have != (size_t)numel) {
        if (have == 0 && numel > 0)
            return rfail(r, TS_ERR_FORMAT, "%s has no data (neither raw_data nor %s; %lld values expected)", what,
                         field, (long long)numel), NULL;
        return rfail(r, TS_ERR_FORMAT, "%s: %s has %zu values, expected %lld", what, field, have, (long long)numel), NULL;
    }
    ts_tensor *t = ts_tensor_new(shape, ndim, dt);
    if (!t) return rwrap(r, what), NULL;
    void *dst = ts_tensor_data(t);
    if (numel == 0) return t;
    switch (dt) {
    case TS_F32: memcpy(dst, tp->float_data, (size_t)numel * es); break;
    case TS_F64: memcpy(dst, tp->double_data, (size_t)numel * es); break;
    case TS_I64: memcpy(dst, tp->int64_data, (size_t)numel * es); break;
    case TS_I32: memcpy(dst, tp->int32_data, (size_t)numel * es); break;
    case TS_F16: case TS_BF16:   /* bit patterns in the low 16 bits */
        for (int64_t i = 0; i < numel; i++) ((uint16_t *)dst)[i] = (uint16_t)tp->int32_data[i];
        break;
    case TS_BOOL:
        for (int64_t i = 0; i < numel; i++) ((uint8_t *)dst)[i] = tp->int32_data[i] != 0;
        break;
    default:   /* i8 u8 i16: wrap like a C cast */
        for (int64_t i = 0; i < numel; i++) ts_store_i64(dst, dt, i, tp->int32_data[i]);
        break;
    }
    return t;
}

/* ---- value infos --------------------------------------------------------------------------- */

/* dtype and shape of a ValueInfoProto; *usable false for non-tensor types or
 * dtypes torsh lacks (then `required` makes that an error). */
static ts_status value_info(reader *r, const Onnx__ValueInfoProto *vi, const char *role, bool required,
                            bool *usable, ts_dtype *dt, int *ndim, ts_dim *dims)
{
    *usable = false;
    *dt = TS_DTYPE_UNKNOWN;
    *ndim = TS_RANK_UNKNOWN;
    const Onnx__TypeProto *ty = vi->type;
    if (!ty || ty->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET) { *usable = true; return TS_OK; }
    if (ty->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !ty->tensor_type) {
        if (!required) return TS_OK;
        const char *kind = ty->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE ? "a sequence"
                         : ty->value_case == ONNX__TYPE_PROTO__VALUE_MAP_TYPE ? "a map"
                         : ty->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE ? "an optional"
                         : ty->value_case == ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE ? "a sparse tensor" : "not a tensor";
        return rfail(r, TS_ERR_UNSUPPORTED, "%s '%s' is %s; torsh supports dense tensors only", role, vi->name, kind);
    }
    const Onnx__TypeProto__Tensor *tt = ty->tensor_type;
    if (tt->has_elem_type && tt->elem_type != ONNX_UNDEFINED && !onnx_to_ts_dtype(tt->elem_type, dt)) {
        *dt = TS_DTYPE_UNKNOWN;
        if (!required) return TS_OK;
        return rfail(r, TS_ERR_UNSUPPORTED, "%s '%s' has data type %s (%d), which torsh does not support", role,
                     vi->name, onnx_dtype_name(tt->elem_type), (int)tt->elem_type);
    }
    if (tt->shape) {
        const Onnx__TensorShapeProto *sh = tt->shape;
        if (sh->n_dim > TS_MAX_DIMS)
            return rfail(r, TS_ERR_FORMAT, "%s '%s' has rank %zu; torsh supports at most %d dims", role, vi->name,
                         sh->n_dim, TS_MAX_DIMS);
        *ndim = (int)sh->n_dim;
        for (size_t i = 0; i < sh->n_dim; i++) {
            const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
            if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
                if (d->dim_value < 0)
                    return rfail(r, TS_ERR_FORMAT, "%s '%s': dim %zu is negative (%lld)", role, vi->name, i,
                                 (long long)d->dim_value);
                dims[i] = ts_dim_of(d->dim_value);
            } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param && *d->dim_param) {
                int32_t sym = ts_graph_symbol(r->g, d->dim_param);
                if (sym < 0) return rwrap(r, vi->name);
                dims[i] = (ts_dim){ -1, sym };
            } else {
                dims[i] = ts_dim_unknown();
            }
        }
    }
    *usable = true;
    return TS_OK;
}

/* ---- nodes ---------------------------------------------------------------------------------- */

static int attr_type_of(const Onnx__AttributeProto *a)
{
    if (a->has_type && a->type != 0) return a->type;
    /* IR version 1 files have no type field: the one field that is set */
    if (a->has_f) return TS_ATTR_FLOAT;
    if (a->has_i) return TS_ATTR_INT;
    if (a->has_s) return TS_ATTR_STRING;
    if (a->t) return TS_ATTR_TENSOR;
    if (a->has_g) return ONNX_ATTR_GRAPH;
    if (a->n_floats) return TS_ATTR_FLOATS;
    if (a->n_ints) return TS_ATTR_INTS;
    if (a->n_strings) return TS_ATTR_STRINGS;
    if (a->n_tensors) return ONNX_ATTR_TENSORS;
    if (a->n_graphs) return ONNX_ATTR_GRAPHS;
    return 0;
}

static const char *attr_type_name(int t)
{
    static const char *const names[] = { "UNDEFINED", "FLOAT", "INT", "STRING", "TENSOR", "GRAPH", "FLOATS", "INTS",
                                         "STRINGS", "TENSORS", "GRAPHS", "SPARSE_TENSOR", "SPARSE_TENSORS",
                                         "TYPE_PROTO", "TYPE_PROTOS" };
    return t >= 0 && t < (int)(sizeof names / sizeof *names) ? names[t] : "unknown";
}

static ts_status add_attr(reader *r, int node, const char *where, Onnx__AttributeProto *a)
{
    ts_graph *g = r->g;
    const char *name = a->name;
    if (!name || !*name) return rfail(r, TS_ERR_FORMAT, "%s: an attribute has no name", where);
    if (a->ref_attr_name && *a->ref_attr_name)
        return rfail(r, TS_ERR_FORMAT, "%s: attribute '%s' refers to a function attribute ('%s') outside a function",
                     where, name, a->ref_attr_name);
    int type = attr_type_of(a);
    ts_status st = TS_OK;
    switch (type) {
    case TS_ATTR_FLOAT: st = ts_gnode_set_float(g, node, name, a->f); break;
    case TS_ATTR_INT: st = ts_gnode_set_int(g, node, name, a->i); break;
    case TS_ATTR_STRING:
        st = ts_gnode_set_string(g, node, name, a->s.data ? (const char *)a->s.data : "", a->s.len);
        break;
    case TS_ATTR_TENSOR: {
        if (!a->t) return rfail(r, TS_ERR_FORMAT, "%s: TENSOR attribute '%s' holds no tensor", where, name);
        char what[512];
        snprintf(what, sizeof what, "%s attribute '%s'", where, name);
        ts_tensor *t = tensor_from_proto(r, a->t, what);
        if (!t) return ts_last_status();
        st = ts_gnode_set_tensor(g, node, name, t);
        ts_tensor_release(t);
        break;
    }
    case TS_ATTR_FLOATS: {
        double *v = malloc((a->n_floats ? a->n_floats : 1) * sizeof *v);
        if (!v) return rfail(r, TS_ERR_MEMORY, "%s: out of memory", where);
        for (size_t i = 0; i < a->n_floats; i++) v[i] = a->floats[i];
        st = ts_gnode_set_floats(g, node, name, v, (int64_t)a->n_floats);
        free(v);
        break;
    }
    case TS_ATTR_INTS: st = ts_gnode_set_ints(g, node, name, a->ints, (int64_t)a->n_ints); break;
    case TS_ATTR_STRINGS: {
        char **v = calloc(a->n_strings ? a->n_strings : 1, sizeof *v);
        bool ok = v != NULL;
        for (size_t i = 0; ok && i < a->n_strings; i++) {
            v[i] = malloc(a->strings[i].len + 1);
            if (!v[i]) { ok = false; break; }
            if (a->strings[i].len) memcpy(v[i], a->strings[i].data, a->strings[i].len);
            v[i][a->strings[i].len] = '\0';
        }
        st = ok ? ts_gnode_set_strings(g, node, name, (const char *const *)v, (int64_t)a->n_strings)
                : rfail(r, TS_ERR_MEMORY, "%s: out of memory", where);
        for (size_t i = 0; v && i < a->n_strings; i++) free(v[i]);
        free(v);
        if (!ok) return st;
        break;
    }
    case ONNX_ATTR_GRAPH: case ONNX_ATTR_GRAPHS:
        return rfail(r, TS_ERR_UNSUPPORTED, "%s: attribute '%s' is a %s (a subgraph): control flow (If, Loop, Scan) "
                     "is not supported yet", where, name, attr_type_name(type));
    default:
        return rfail(r, TS_ERR_UNSUPPORTED, "%s: attribute '%s' has type %s (%d), which torsh does not support",
                     where, name, attr_type_name(type), type);
    }
    if (st != TS_OK) {
        char place[600];
        snprintf(place, sizeof place, "%s attribute '%s'", where, name);
        return rwrap(r, place);
    }
    return TS_OK;
}

static const char *norm_domain(const char *d)
{
    return !d || strcmp(d, "ai.onnx") == 0 ? "" : d;
}

/* A Constant node whose value torsh can hold becomes a constant value;
 * *done false when the node should be added as a node after all. */
static ts_status constant_node(reader *r, Onnx__NodeProto *np, const char *where, bool *done)
{
    *done = false;
    if (np->n_output != 1 || np->n_input != 0 || np->n_attribute != 1 || !np->output[0][0]) return TS_OK;
    Onnx__AttributeProto *a = np->attribute[0];
    const char *an = a->name ? a->name : "";
    int type = attr_type_of(a);
    ts_tensor *t = NULL;
    char what[512];
    snprintf(what, sizeof what, "%s attribute '%s'", where, an);
    if (strcmp(an, "value") == 0 && type == TS_ATTR_TENSOR && a->t) {
        t = tensor_from_proto(r, a->t, what);
        if (!t) return ts_last_status();
    } else if (strcmp(an, "value_float") == 0 && type == TS_ATTR_FLOAT) {
        t = ts_tensor_scalar(a->f, TS_F32);
    } else if (strcmp(an, "value_int") == 0 && type == TS_ATTR_INT) {
        int64_t none = 0;
        t = ts_tensor_new(&none, 0, TS_I64);
        if (t) *(int64_t *)ts_tensor_data(t) = a->i;
    } else if (strcmp(an, "value_floats") == 0 && type == TS_ATTR_FLOATS) {
        int64_t n = (int64_t)a->n_floats;
        t = ts_tensor_new(&n, 1, TS_F32);
        if (t && n) memcpy(ts_tensor_data(t), a->floats, (size_t)n * sizeof(float));
    } else if (strcmp(an, "value_ints") == 0 && type == TS_ATTR_INTS) {
        int64_t n = (int64_t)a->n_ints;
        t = ts_tensor_new(&n, 1, TS_I64);
        if (t && n) memcpy(ts_tensor_data(t), a->ints, (size_t)n * sizeof(int64_t));
    } else {
        return TS_OK;   /* value_string(s), sparse_value: left to the executor */
    }
    if (!t) return rwrap(r, what);
    const char *out = np->output[0];
    int v = ts_graph_value(r->g, out);
    ts_status st = TS_OK;
    if (v < 0) st = rwrap(r, where);
    else if (ts_graph_val(r->g, v)->constant || ts_graph_val(r->g, v)->producer >= 0)
        st = rfail(r, TS_ERR_FORMAT, "%s: output '%s' is already defined", where, out);
    for (int j = 0; j < ts_graph_input_count(r->g) && !st; j++)
        if (ts_graph_input(r->g, j) == v) st = rfail(r, TS_ERR_FORMAT, "%s: output '%s' is also a graph input", where, out);
    if (!st && ts_graph_set_const(r->g, v, t, false) != TS_OK) st = rwrap(r, where);
    ts_tensor_release(t);
    *done = st == TS_OK;
    return st;
}

static bool is_function(const reader *r, const char *domain, const char *op)
{
    for (size_t i = 0; i < r->m->n_functions; i++) {
        const Onnx__FunctionProto *f = r->m->functions[i];
        if (f->name && strcmp(f->name, op) == 0 && strcmp(norm_domain(f->domain), domain) == 0) return true;
    }
    return false;
}

static ts_status add_node(reader *r, size_t k, Onnx__NodeProto *np)
{
    ts_graph *g = r->g;
    const char *op = np->op_type ? np->op_type : "";
    const char *domain = norm_domain(np->domain);
    char where[400];
    if (np->name && *np->name) snprintf(where, sizeof where, "node '%s' (%s)", np->name, op);
    else snprintf(where, sizeof where, "node %zu (%s)", k, op);
    if (!*op) return rfail(r, TS_ERR_FORMAT, "%s has no op_type", where);
    if (is_function(r, domain, op))
        return rfail(r, TS_ERR_UNSUPPORTED, "%s calls the model-local function %s%s%s; functions are not supported yet",
                     where, *domain ? domain : "", *domain ? "." : "", op);
    if (np->n_input > 100000 || np->n_output > 100000 || np->n_attribute > 100000)
        return rfail(r, TS_ERR_FORMAT, "%s has too many inputs, outputs or attributes", where);

    if (!*domain && ts_graph_opset(r->g, "") == 0)
        return rfail(r, TS_ERR_FORMAT, "%s is in the default domain, but the model imports no opset for it", where);
    if (strcmp(op, "Constant") == 0 && !*domain) {
        bool done;
        if (constant_node(r, np, where, &done)) return ts_last_status();
        if (done) return TS_OK;
    }

    int n_in = (int)np->n_input, n_out = (int)np->n_output;
    int *ids = malloc(((size_t)n_in + (size_t)n_out + 1) * sizeof *ids);
    if (!ids) return rfail(r, TS_ERR_MEMORY, "%s: out of memory", where);
    ts_status st = TS_OK;
    for (int i = 0; i < n_in && !st; i++) {
        const char *vn = np->input[i];
        ids[i] = *vn ? ts_graph_value(g, vn) : -1;
        if (*vn && ids[i] < 0) st = rwrap(r, where);
    }
    for (int i = 0; i < n_out && !st; i++) {
        const char *vn = np->output[i];
        ids[n_in + i] = -1;   /* "": an omitted optional output */
        if (!*vn) continue;
        int v = ts_graph_value(g, vn);
        if (v < 0) { st = rwrap(r, where); break; }
        if (ts_graph_val(g, v)->constant)
            st = rfail(r, TS_ERR_FORMAT, "%s: output '%s' is also an initializer or constant", where, vn);
        for (int j = 0; j < ts_graph_input_count(g) && !st; j++)
            if (ts_graph_input(g, j) == v) st = rfail(r, TS_ERR_FORMAT, "%s: output '%s' is also a graph input", where, vn);
        ids[n_in + i] = v;
    }
    if (st) { free(ids); return st; }

    /* the graph makes names unique ("relu_1") and names nameless nodes ("Relu_7") */
    int n = ts_graph_add_node(g, op, domain, np->name, ids, n_in, ids + n_in, n_out);
    free(ids);
    if (n < 0) return rwrap(r, NULL);
    snprintf(where, sizeof where, "node '%s' (%s)", ts_graph_node(g, n)->name, op);
    for (size_t i = 0; i < np->n_attribute; i++)
        if (add_attr(r, n, where, np->attribute[i])) return ts_last_status();
    return TS_OK;
}

/* ---- the model ------------------------------------------------------------------------------ */

static ts_status read_model(reader *r)
{
    Onnx__ModelProto *m = r->m;
    if (!m->has_ir_version || m->ir_version <= 0)
        return rfail(r, TS_ERR_FORMAT, "no ir_version (is this an ONNX model?)");
    if (m->ir_version > ONNX_MAX_IR_VERSION)
        return rfail(r, TS_ERR_UNSUPPORTED, "IR version %lld is newer than torsh understands (max %d)",
                     (long long)m->ir_version, ONNX_MAX_IR_VERSION);
    Onnx__GraphProto *gp = m->graph;
    if (!gp) return rfail(r, TS_ERR_FORMAT, "the model has no graph");
    if (gp->n_sparse_initializer)
        return rfail(r, TS_ERR_UNSUPPORTED, "the graph has %zu sparse initializers; sparse tensors are not supported",
                     gp->n_sparse_initializer);

    /* opsets */
    bool have_default = false;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *os = m->opset_import[i];
        const char *d = norm_domain(os->domain);
        int64_t ver = os->has_version ? os->version : 0;
        for (size_t j = 0; j < i; j++)
            if (strcmp(norm_domain(m->opset_import[j]->domain), d) == 0)
                return rfail(r, TS_ERR_FORMAT, "opset_import lists domain '%s' twice", d);
        if (!*d) {
            have_default = true;
            if (ver < 1) return rfail(r, TS_ERR_FORMAT, "default-domain opset %lld is invalid", (long long)ver);
            if (ver > TS_ONNX_MAX_OPSET)
                return rfail(r, TS_ERR_UNSUPPORTED, "opset %lld of the default domain is newer than torsh supports "
                             "(max %d); re-export the model with opset_version <= %d", (long long)ver,
                             TS_ONNX_MAX_OPSET, TS_ONNX_MAX_OPSET);
        }
    }

    r->g = ts_graph_new(gp->name ? gp->name : "");
    if (!r->g) return rwrap(r, "graph");
    ts_graph *g = r->g;
    if (m->producer_name || m->producer_version)
        if (ts_graph_set_producer(g, m->producer_name ? m->producer_name : "", m->producer_version ? m->producer_version : ""))
            return rwrap(r, "producer");
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *os = m->opset_import[i];
        if (ts_graph_set_opset(g, norm_domain(os->domain), os->has_version ? os->version : 1)) return rwrap(r, "opset_import");
    }
    if (!have_default && m->ir_version < 3 && ts_graph_set_opset(g, "", 1)) return rwrap(r, "opset_import");
    if (m->n_opset_import == 0 && m->ir_version >= 3)
        return rfail(r, TS_ERR_FORMAT, "the model imports no opset (opset_import is empty)");
    for (size_t i = 0; i < m->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *kv = m->metadata_props[i];
        if (!kv->key) continue;
        if (ts_graph_set_meta(g, kv->key, kv->value ? kv->value : "")) return rwrap(r, "metadata_props");
    }

    /* initializers */
    for (size_t i = 0; i < gp->n_initializer; i++) {
        Onnx__TensorProto *tp = gp->initializer[i];
        char what[400];
        if (!tp->name || !*tp->name) return rfail(r, TS_ERR_FORMAT, "initializer %zu has no name", i);
        snprintf(what, sizeof what, "initializer '%s'", tp->name);
        int v = ts_graph_value(g, tp->name);
        if (v < 0) return rwrap(r, what);
        if (ts_graph_val(g, v)->constant) return rfail(r, TS_ERR_FORMAT, "%s is defined twice", what);
        ts_tensor *t = tensor_from_proto(r, tp, what);
        if (!t) return ts_last_status();
        ts_status st = ts_graph_set_const(g, v, t, true);
        ts_tensor_release(t);
        if (st) return rwrap(r, what);
    }

    /* inputs (less initializers), outputs, value_info */
    ts_dim dims[TS_MAX_DIMS];
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !*vi->name) return rfail(r, TS_ERR_FORMAT, "graph input %zu has no name", i);
        int v = ts_graph_value(g, vi->name);
        if (v < 0) return rwrap(r, vi->name);
        if (ts_graph_val(g, v)->constant) continue;   /* an initializer listed as an input */
        for (int j = 0; j < ts_graph_input_count(g); j++)
            if (ts_graph_input(g, j) == v) return rfail(r, TS_ERR_FORMAT, "graph input '%s' is listed twice", vi->name);
        bool usable;
        ts_dtype dt;
        int ndim;
        if (value_info(r, vi, "graph input", true, &usable, &dt, &ndim, dims)) return ts_last_status();
        char what[400];
        snprintf(what, sizeof what, "graph input '%s'", vi->name);
        if (ts_graph_set_info(g, v, dt, ndim, dims) || ts_graph_add_input(g, v)) return rwrap(r, what);
    }
    for (size_t i = 0; i < gp->n_value_info; i++) {
        const Onnx__ValueInfoProto *vi = gp->value_info[i];
        if (!vi->name || !*vi->name) continue;
        bool usable;
        ts_dtype dt;
        int ndim;
        if (value_info(r, vi, "value", false, &usable, &dt, &ndim, dims)) return ts_last_status();
        if (!usable) continue;
        int v = ts_graph_value(g, vi->name);
        if (v < 0) return rwrap(r, vi->name);
        if (ts_graph_val(g, v)->constant) continue;
        char what[400];
        snprintf(what, sizeof what, "value_info '%s'", vi->name);
        if (ts_graph_set_info(g, v, dt, ndim, dims)) return rwrap(r, what);
    }
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        if (!vi->name || !*vi->name) return rfail(r, TS_ERR_FORMAT, "graph output %zu has no name", i);
        bool usable;
        ts_dtype dt;
        int ndim;
        if (value_info(r, vi, "graph output", true, &usable, &dt, &ndim, dims)) return ts_last_status();
        int v = ts_graph_value(g, vi->name);
        if (v < 0) return rwrap(r, vi->name);
        char what[400];
        snprintf(what, sizeof what, "graph output '%s'", vi->name);
        if (!ts_graph_val(g, v)->constant && ts_graph_set_info(g, v, dt, ndim, dims)) return rwrap(r, what);
        if (ts_graph_add_output(g, v)) return rwrap(r, what);
    }

    for (size_t k = 0; k < gp->n_node; k++)
        if (add_node(r, k, gp->node[k])) return ts_last_status();
    if (ts_graph_toposort(g)) return rwrap(r, "graph");
    return TS_OK;
}

ts_graph *ts_onnx_load_buffer(const void *data, size_t len, const char *name_for_messages, const char *base_dir)
{
    reader r = { .name = name_for_messages ? name_for_messages : "<buffer>", .base_dir = base_dir };
    if (!data || len == 0) return rfail(&r, TS_ERR_FORMAT, "empty file"), NULL;
    if (!onnx_host_is_little_endian()) return rfail(&r, TS_ERR_UNSUPPORTED, "big-endian hosts are not supported"), NULL;
    ProtobufCAllocator pa = { ua_alloc, ua_free, &r.alloc };
    r.m = onnx__model_proto__unpack(&pa, len, data);
    if (!r.m) {
        if (r.alloc.out_of_memory) {
            rfail(&r, TS_ERR_MEMORY, "out of memory while decoding %zu bytes", len);
        } else {
            char why[600];
            if (onnx_wire_diagnose(data, len, why, sizeof why))
                rfail(&r, TS_ERR_FORMAT, "not a valid ONNX model: %s", why);
            else
                rfail(&r, TS_ERR_FORMAT, "not a valid ONNX model (protobuf-c cannot decode its %zu bytes)", len);
        }
        return NULL;
    }
    ts_status st = read_model(&r);
    onnx__model_proto__free_unpacked(r.m, &pa);
    if (st != TS_OK) {
        ts_graph_free(r.g);
        return NULL;
    }
    return r.g;
}

ts_graph *ts_onnx_load(const char *path)
{
    if (!path) return ts_fail_null(TS_ERR_ARG, "onnx_load: no path");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ts_fail_null(TS_ERR_IO, "onnx_load: cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ts_fail_null(TS_ERR_IO, "onnx_load: '%s' is not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    if (len == 0) {
        close(fd);
        return ts_fail_null(TS_ERR_FORMAT, "onnx_load: %s: empty file", path);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return ts_fail_null(TS_ERR_IO, "onnx_load: cannot map '%s': %s", path, strerror(errno));
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    ts_graph *g = ts_onnx_load_buffer(map, len, path, dir);
    munmap(map, len);
    return g;
}
