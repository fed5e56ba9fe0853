/* onnx_write.c — the ONNX exporter (torsh/onnx.h): a ts_graph becomes a
 * ModelProto built from protobuf-c structs (core/proto/onnx.proto) that
 * point at the graph's own strings and tensor bytes (nothing is copied but
 * non-contiguous constants), streamed to a temporary file next to the
 * destination, synced and renamed into place. With external data, big
 * initializers go to a second temporary file (PATH.data) renamed the same
 * way just before the model.
 */
#include "onnx_internal.h"
#include "onnx.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Everything allocated while building the message, freed at the end. */
typedef struct arena {
    void **ptrs;
    size_t n, cap;
    ts_tensor **refs;       /* contiguous copies of constants */
    size_t n_refs, cap_refs;
    bool oom;
} arena;

static void *ar_alloc(arena *a, size_t size)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        void **p = realloc(a->ptrs, cap * sizeof *p);
        if (!p) { a->oom = true; return NULL; }
        a->ptrs = p;
        a->cap = cap;
    }
    void *p = calloc(1, size ? size : 1);
    if (!p) { a->oom = true; return NULL; }
    a->ptrs[a->n++] = p;
    return p;
}

static char *ar_printf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *ar_printf(arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = ar_alloc(a, (size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static bool ar_keep(arena *a, ts_tensor *t)
{
    if (a->n_refs == a->cap_refs) {
        size_t cap = a->cap_refs ? a->cap_refs * 2 : 64;
        ts_tensor **p = realloc(a->refs, cap * sizeof *p);
        if (!p) { a->oom = true; return false; }
        a->refs = p;
        a->cap_refs = cap;
    }
    a->refs[a->n_refs++] = t;
    return true;
}

static void ar_free(arena *a)
{
    for (size_t i = 0; i < a->n; i++) free(a->ptrs[i]);
    for (size_t i = 0; i < a->n_refs; i++) ts_tensor_release(a->refs[i]);
    free(a->ptrs);
    free(a->refs);
}

/* The writer's state: the arena, the external data file being written. */
typedef struct writer {
    const char *path;
    arena ar;
    bool external;
    size_t external_min;
    FILE *data;              /* temporary external data file, or NULL */
    char *data_tmp;          /* its name */
    const char *data_location; /* basename(path).data */
    uint64_t data_size;      /* bytes written to it so far */
} writer;

static ts_status wfail(const writer *w, ts_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static ts_status wfail(const writer *w, ts_status code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ts_fail(code, "onnx_save: %s: %s", w->path, msg);
}

static ts_status woom(const writer *w) { return wfail(w, TS_ERR_MEMORY, "out of memory"); }

/* ---- tensors ------------------------------------------------------------------------------- */

static ts_status write_all(FILE *f, const void *p, size_t n)
{
    return fwrite(p, 1, n, f) == n ? TS_OK : TS_ERR_IO;
}

/* A TensorProto of t (name may be NULL); raw_data points at t's bytes, or
 * external data when allowed and t is big enough. */
static Onnx__TensorProto *tensor_proto(writer *w, const ts_tensor *t, const char *name, bool allow_external)
{
    arena *a = &w->ar;
    int32_t ot = ts_to_onnx_dtype(t->dtype);
    if (ot == ONNX_UNDEFINED) {
        wfail(w, TS_ERR_UNSUPPORTED, "tensor '%s': dtype %d has no ONNX type", name ? name : "", (int)t->dtype);
        return NULL;
    }
    if (t->storage && t->storage->device.type != TS_CPU) {
        wfail(w, TS_ERR_UNSUPPORTED, "tensor '%s' is not on the CPU", name ? name : "");
        return NULL;
    }
    Onnx__TensorProto *tp = ar_alloc(a, sizeof *tp);
    int64_t *dims = ar_alloc(a, sizeof(int64_t) * (size_t)(t->ndim ? t->ndim : 1));
    if (!tp || !dims) { woom(w); return NULL; }
    onnx__tensor_proto__init(tp);
    for (int i = 0; i < t->ndim; i++) dims[i] = t->shape[i];
    tp->n_dims = (size_t)t->ndim;
    tp->dims = dims;
    tp->has_data_type = true;
    tp->data_type = ot;
    tp->name = (char *)name;
    ts_tensor *c = ts_contiguous(t);
    if (!c) {
        char prev[512];
        snprintf(prev, sizeof prev, "%s", ts_last_error());
        wfail(w, ts_last_status(), "tensor '%s': %s", name ? name : "", prev);
        return NULL;
    }
    if (!ar_keep(a, c)) { ts_tensor_release(c); woom(w); return NULL; }
    size_t nbytes = ts_tensor_nbytes(c);
    const void *bytes = nbytes ? ts_tensor_data(c) : NULL;
    if (allow_external && w->external && nbytes >= w->external_min) {
        uint64_t align = nbytes >= 65536 ? 4096 : 64;
        uint64_t offset = (w->data_size + align - 1) / align * align;
        static const char zeros[4096];
        if (write_all(w->data, zeros, (size_t)(offset - w->data_size)) || write_all(w->data, bytes, nbytes)) {
            wfail(w, TS_ERR_IO, "writing external data '%s': %s", w->data_tmp, strerror(errno));
            return NULL;
        }
        w->data_size = offset + nbytes;
        Onnx__StringStringEntryProto **kv = ar_alloc(a, 3 * sizeof *kv);
        if (!kv) { woom(w); return NULL; }
        const char *keys[3] = { "location", "offset", "length" };
        char *vals[3] = { (char *)w->data_location, ar_printf(a, "%llu", (unsigned long long)offset),
                          ar_printf(a, "%zu", nbytes) };
        for (int i = 0; i < 3; i++) {
            kv[i] = ar_alloc(a, sizeof **kv);
            if (!kv[i] || !vals[i]) { woom(w); return NULL; }
            onnx__string_string_entry_proto__init(kv[i]);
            kv[i]->key = (char *)keys[i];
            kv[i]->value = vals[i];
        }
        tp->n_external_data = 3;
        tp->external_data = kv;
        tp->has_data_location = true;
        tp->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
        return tp;
    }
    tp->has_raw_data = true;
    tp->raw_data.len = nbytes;
    tp->raw_data.data = (uint8_t *)bytes;
    return tp;
}

/* ---- value infos --------------------------------------------------------------------------- */

static Onnx__ValueInfoProto *value_info(writer *w, const ts_graph *g, const ts_gvalue *v)
{
    arena *a = &w->ar;
    Onnx__ValueInfoProto *vi = ar_alloc(a, sizeof *vi);
    Onnx__TypeProto *ty = ar_alloc(a, sizeof *ty);
    Onnx__TypeProto__Tensor *tt = ar_alloc(a, sizeof *tt);
    if (!vi || !ty || !tt) return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(ty);
    onnx__type_proto__tensor__init(tt);
    vi->name = v->name;
    vi->type = ty;
    ty->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    ty->tensor_type = tt;
    if (v->dtype != TS_DTYPE_UNKNOWN) {
        tt->has_elem_type = true;
        tt->elem_type = ts_to_onnx_dtype(v->dtype);
    }
    if (v->ndim >= 0) {
        Onnx__TensorShapeProto *sh = ar_alloc(a, sizeof *sh);
        Onnx__TensorShapeProto__Dimension **dims = ar_alloc(a, sizeof *dims * (size_t)(v->ndim ? v->ndim : 1));
        if (!sh || !dims) return NULL;
        onnx__tensor_shape_proto__init(sh);
        for (int i = 0; i < v->ndim; i++) {
            Onnx__TensorShapeProto__Dimension *d = ar_alloc(a, sizeof *d);
            if (!d) return NULL;
            onnx__tensor_shape_proto__dimension__init(d);
            if (v->dims[i].size >= 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = v->dims[i].size;
            } else if (v->dims[i].sym >= 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = (char *)ts_graph_symbol_name(g, v->dims[i].sym);
            }
            dims[i] = d;
        }
        sh->n_dim = (size_t)v->ndim;
        sh->dim = dims;
        tt->shape = sh;
    }
    return vi;
}

/* ---- nodes ---------------------------------------------------------------------------------- */

static Onnx__AttributeProto *attr_proto(writer *w, const ts_gnode *n, const ts_attr *at)
{
    arena *a = &w->ar;
    Onnx__AttributeProto *p = ar_alloc(a, sizeof *p);
    if (!p) { woom(w); return NULL; }
    onnx__attribute_proto__init(p);
    p->name = at->name;
    p->has_type = true;
    p->type = (int32_t)at->type;
    switch (at->type) {
    case TS_ATTR_FLOAT: p->has_f = true; p->f = (float)at->f; break;
    case TS_ATTR_INT: p->has_i = true; p->i = at->i; break;
    case TS_ATTR_STRING:
        p->has_s = true;
        p->s.len = at->s_len;
        p->s.data = (uint8_t *)at->s;
        break;
    case TS_ATTR_TENSOR:
        if (!at->t) { wfail(w, TS_ERR_ARG, "node '%s' (%s): attribute '%s' holds no tensor", n->name, n->op_type, at->name); return NULL; }
        if (!(p->t = tensor_proto(w, at->t, NULL, false))) return NULL;
        break;
    case TS_ATTR_FLOATS: {
        float *f = ar_alloc(a, sizeof *f * (size_t)(at->n ? at->n : 1));
        if (!f) { woom(w); return NULL; }
        for (int64_t i = 0; i < at->n; i++) f[i] = (float)at->floats[i];
        p->n_floats = (size_t)at->n;
        p->floats = f;
        break;
    }
    case TS_ATTR_INTS: p->n_ints = (size_t)at->n; p->ints = at->ints; break;
    case TS_ATTR_STRINGS: {
        ProtobufCBinaryData *s = ar_alloc(a, sizeof *s * (size_t)(at->n ? at->n : 1));
        if (!s) { woom(w); return NULL; }
        for (int64_t i = 0; i < at->n; i++) {
            s[i].data = (uint8_t *)at->strings[i];
            s[i].len = strlen(at->strings[i]);
        }
        p->n_strings = (size_t)at->n;
        p->strings = s;
        break;
    }
    default:
        wfail(w, TS_ERR_UNSUPPORTED, "node '%s' (%s): attribute '%s' has type %d", n->name, n->op_type, at->name,
              (int)at->type);
        return NULL;
    }
    return p;
}

static Onnx__NodeProto *node_proto(writer *w, const ts_graph *g, const ts_gnode *n)
{
    arena *a = &w->ar;
    Onnx__NodeProto *p = ar_alloc(a, sizeof *p);
    char **in = ar_alloc(a, sizeof *in * (size_t)(n->n_inputs ? n->n_inputs : 1));
    char **out = ar_alloc(a, sizeof *out * (size_t)(n->n_outputs ? n->n_outputs : 1));
    Onnx__AttributeProto **at = ar_alloc(a, sizeof *at * (size_t)(n->n_attrs ? n->n_attrs : 1));
    if (!p || !in || !out || !at) { woom(w); return NULL; }
    onnx__node_proto__init(p);
    for (int i = 0; i < n->n_inputs; i++) in[i] = n->inputs[i] >= 0 ? ts_graph_val(g, n->inputs[i])->name : "";
    for (int i = 0; i < n->n_outputs; i++) out[i] = n->outputs[i] >= 0 ? ts_graph_val(g, n->outputs[i])->name : "";
    for (int i = 0; i < n->n_attrs; i++)
        if (!(at[i] = attr_proto(w, n, &n->attrs[i]))) return NULL;
    p->n_input = (size_t)n->n_inputs;
    p->input = in;
    p->n_output = (size_t)n->n_outputs;
    p->output = out;
    p->name = n->name;
    p->op_type = n->op_type;
    p->n_attribute = (size_t)n->n_attrs;
    p->attribute = at;
    if (n->domain && *n->domain) p->domain = n->domain;
    return p;
}

/* A Constant node (no name) writing v's constant. */
static Onnx__NodeProto *constant_node(writer *w, const ts_gvalue *v)
{
    arena *a = &w->ar;
    Onnx__NodeProto *p = ar_alloc(a, sizeof *p);
    char **out = ar_alloc(a, sizeof *out);
    Onnx__AttributeProto **at = ar_alloc(a, sizeof *at);
    Onnx__AttributeProto *value = ar_alloc(a, sizeof *value);
    if (!p || !out || !at || !value) { woom(w); return NULL; }
    onnx__node_proto__init(p);
    onnx__attribute_proto__init(value);
    value->name = "value";
    value->has_type = true;
    value->type = TS_ATTR_TENSOR;
    if (!(value->t = tensor_proto(w, v->constant, NULL, false))) return NULL;
    out[0] = v->name;
    at[0] = value;
    p->n_output = 1;
    p->output = out;
    p->op_type = "Constant";
    p->n_attribute = 1;
    p->attribute = at;
    return p;
}

/* ---- the model ------------------------------------------------------------------------------ */

static bool is_graph_io(const ts_graph *g, int v)
{
    for (int i = 0; i < ts_graph_input_count(g); i++)
        if (ts_graph_input(g, i) == v) return true;
    for (int i = 0; i < ts_graph_output_count(g); i++)
        if (ts_graph_output(g, i) == v) return true;
    return false;
}

/* Fills m from g; every pointer lives in the arena or in g. */
static ts_status build_model(writer *w, const ts_graph *g, int64_t opset, Onnx__ModelProto *m)
{
    arena *a = &w->ar;
    Onnx__GraphProto *gp = ar_alloc(a, sizeof *gp);
    if (!gp) return woom(w);
    onnx__model_proto__init(m);
    onnx__graph_proto__init(gp);
    m->has_ir_version = true;
    m->ir_version = onnx_ir_for_opset(opset);
    m->producer_name = "torsh";
    m->producer_version = TS_VERSION_STRING;
    m->graph = gp;
    gp->name = (char *)(ts_graph_name(g) && *ts_graph_name(g) ? ts_graph_name(g) : "torsh");

    /* opsets: the default domain, the graph's others, and any domain a node uses */
    int n_nodes = ts_graph_node_count(g), n_os = ts_graph_opset_count(g);
    Onnx__OperatorSetIdProto **os = ar_alloc(a, sizeof *os * (size_t)(n_os + n_nodes + 1));
    if (!os) return woom(w);
    size_t k = 0;
    for (int i = -1; i < n_os + n_nodes; i++) {
        const char *dom;
        int64_t ver;
        if (i < 0) { dom = ""; ver = opset; }
        else if (i < n_os) ts_graph_opset_at(g, i, &dom, &ver);
        else { dom = ts_graph_node(g, i - n_os)->domain; ver = 1; }
        if (!dom) dom = "";
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++) seen = strcmp(os[j]->domain ? os[j]->domain : "", dom) == 0;
        if (seen) continue;
        Onnx__OperatorSetIdProto *o = ar_alloc(a, sizeof *o);
        if (!o) return woom(w);
        onnx__operator_set_id_proto__init(o);
        o->domain = (char *)dom;
        o->has_version = true;
        o->version = ver;
        os[k++] = o;
    }
    m->n_opset_import = k;
    m->opset_import = os;

    int n_meta = ts_graph_meta_count(g);
    Onnx__StringStringEntryProto **meta = ar_alloc(a, sizeof *meta * (size_t)(n_meta ? n_meta : 1));
    if (!meta) return woom(w);
    for (int i = 0; i < n_meta; i++) {
        const char *key, *val;
        ts_graph_meta_at(g, i, &key, &val);
        if (!(meta[i] = ar_alloc(a, sizeof **meta))) return woom(w);
        onnx__string_string_entry_proto__init(meta[i]);
        meta[i]->key = (char *)key;
        meta[i]->value = (char *)val;
    }
    m->n_metadata_props = (size_t)n_meta;
    m->metadata_props = meta;

    /* inputs, outputs, initializers, value_info */
    int n_vals = ts_graph_value_count(g), n_in = ts_graph_input_count(g), n_out = ts_graph_output_count(g);
    gp->input = ar_alloc(a, sizeof *gp->input * (size_t)(n_in ? n_in : 1));
    gp->output = ar_alloc(a, sizeof *gp->output * (size_t)(n_out ? n_out : 1));
    gp->initializer = ar_alloc(a, sizeof *gp->initializer * (size_t)(n_vals ? n_vals : 1));
    gp->value_info = ar_alloc(a, sizeof *gp->value_info * (size_t)(n_vals ? n_vals : 1));
    if (!gp->input || !gp->output || !gp->initializer || !gp->value_info) return woom(w);
    for (int i = 0; i < n_in; i++)
        if (!(gp->input[gp->n_input++] = value_info(w, g, ts_graph_val(g, ts_graph_input(g, i))))) return woom(w);
    for (int i = 0; i < n_out; i++) {
        const ts_gvalue *v = ts_graph_val(g, ts_graph_output(g, i));
        if (v->dtype == TS_DTYPE_UNKNOWN)
            return wfail(w, TS_ERR_ARG, "graph output '%s' has no known dtype (run ts_graph_infer first)", v->name);
        if (!(gp->output[gp->n_output++] = value_info(w, g, v))) return woom(w);
    }
    gp->node = ar_alloc(a, sizeof *gp->node * (size_t)(n_nodes + n_vals + 1));
    if (!gp->node) return woom(w);
    for (int i = 0; i < n_vals; i++) {
        const ts_gvalue *v = ts_graph_val(g, i);
        if (v->constant && v->producer < 0 && v->is_initializer) {
            if (!(gp->initializer[gp->n_initializer++] = tensor_proto(w, v->constant, v->name, true)))
                return ts_last_status();
        } else if (v->constant && v->producer < 0) {
            /* a constant no node computes (an imported Constant node): a Constant node again */
            if (!(gp->node[gp->n_node++] = constant_node(w, v))) return ts_last_status();
        } else if (v->producer >= 0 && v->dtype != TS_DTYPE_UNKNOWN && !is_graph_io(g, i)) {
            if (!(gp->value_info[gp->n_value_info++] = value_info(w, g, v))) return woom(w);
        }
    }
    for (int i = 0; i < n_nodes; i++)
        if (!(gp->node[gp->n_node++] = node_proto(w, g, ts_graph_node(g, i)))) return ts_last_status();
    return a->oom ? woom(w) : TS_OK;
}

/* protobuf-c output straight into a FILE. */
typedef struct file_buffer { ProtobufCBuffer base; FILE *f; bool failed; } file_buffer;
static void fb_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    file_buffer *fb = (file_buffer *)b;
    if (!fb->failed && len && fwrite(data, 1, len, fb->f) != len) fb->failed = true;
}

/* Flushes, syncs and closes f; false (errno set) on any failure. */
static bool close_synced(FILE *f)
{
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = errno;
    if (fclose(f) != 0) ok = false;
    else errno = e;
    return ok;
}

/* A new file "BASE.tmp.PID.RANDOM" (mode 0666 less the umask), opened for
 * writing; its name in *name_out. NULL (errno set) when it cannot be made. */
static FILE *open_temp(const char *base, char **name_out)
{
    size_t n = strlen(base) + 48;
    char *name = malloc(n);
    if (!name) return NULL;
    for (int attempt = 0; attempt < 16; attempt++) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
            r = (uint64_t)clock() * 0x9E3779B97F4A7C15ull ^ ((uint64_t)attempt << 56) ^ (uint64_t)(uintptr_t)name;
        snprintf(name, n, "%s.tmp.%ld.%016llx", base, (long)getpid(), (unsigned long long)r);
        int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0) {
            if (errno == EEXIST) continue;
            break;
        }
        FILE *f = fdopen(fd, "wb");
        if (!f) { int e = errno; close(fd); unlink(name); errno = e; break; }
        *name_out = name;
        return f;
    }
    free(name);
    return NULL;
}

static void sync_dir_of(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { (void)fsync(fd); close(fd); }
}

ts_status ts_onnx_save(const ts_graph *g, const char *path, const ts_onnx_save_options *opt)
{
    if (!g || !path || !*path) return ts_fail(TS_ERR_ARG, "onnx_save: NULL graph or empty path");
    writer w = { .path = path };
    if (!onnx_host_is_little_endian()) return wfail(&w, TS_ERR_UNSUPPORTED, "big-endian hosts are not supported");
    int64_t opset = opt && opt->opset ? opt->opset : ts_graph_opset(g, "");
    if (opset == 0) opset = 17;
    if (opset < 1 || opset > TS_ONNX_MAX_OPSET)
        return wfail(&w, TS_ERR_ARG, "opset %lld is out of range (1..%d)", (long long)opset, TS_ONNX_MAX_OPSET);
    w.external = opt && opt->external_data;
    w.external_min = opt && opt->external_min_bytes ? opt->external_min_bytes : 1024;

    char *data_path = NULL, *model_tmp = NULL;
    FILE *mf = NULL;
    ts_status st = TS_OK;
    bool data_renamed = false, data_existed = false;
    Onnx__ModelProto m;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return wfail(&w, TS_ERR_IO, "it is a folder; give a file name to save to");
    if (w.external) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        data_path = malloc(strlen(path) + 6);
        w.data_location = ar_printf(&w.ar, "%s.data", base);
        if (!data_path || !w.data_location) { st = woom(&w); goto done; }
        sprintf(data_path, "%s.data", path);
        if (stat(data_path, &sb) == 0) {
            data_existed = true;
            if (S_ISDIR(sb.st_mode)) { st = wfail(&w, TS_ERR_IO, "'%s' is a folder", data_path); goto done; }
        }
        if (!(w.data = open_temp(data_path, &w.data_tmp))) {
            st = wfail(&w, TS_ERR_IO, "cannot create a temporary file next to '%s': %s", data_path, strerror(errno));
            goto done;
        }
    }
    if ((st = build_model(&w, g, opset, &m))) goto done;
    size_t size = onnx__model_proto__get_packed_size(&m);
    if (size > (size_t)INT32_MAX) {
        st = wfail(&w, TS_ERR_UNSUPPORTED, "the model would take %zu bytes; protobuf limits ONNX files to 2 GiB "
                   "(save with external_data)", size);
        goto done;
    }
    if (!(mf = open_temp(path, &model_tmp))) {
        st = wfail(&w, TS_ERR_IO, "cannot create a temporary file next to it: %s", strerror(errno));
        goto done;
    }
    file_buffer fb = { { fb_append }, mf, false };
    onnx__model_proto__pack_to_buffer(&m, &fb.base);
    bool ok = !fb.failed;
    int err = errno;
    if (!close_synced(mf)) { ok = false; err = errno; }
    mf = NULL;
    if (!ok) { st = wfail(&w, TS_ERR_IO, "writing '%s': %s", model_tmp, strerror(err)); goto done; }
    if (w.data) {
        ok = close_synced(w.data);
        w.data = NULL;
        if (!ok) { st = wfail(&w, TS_ERR_IO, "writing '%s': %s", w.data_tmp, strerror(errno)); goto done; }
        if (rename(w.data_tmp, data_path) != 0) {
            st = wfail(&w, TS_ERR_IO, "cannot rename '%s' to '%s': %s", w.data_tmp, data_path, strerror(errno));
            goto done;
        }
        free(w.data_tmp);
        w.data_tmp = NULL;
        data_renamed = true;
    }
    if (rename(model_tmp, path) != 0) {
        st = wfail(&w, TS_ERR_IO, "cannot rename '%s' to it: %s", model_tmp, strerror(errno));
        if (data_renamed && !data_existed) unlink(data_path);   /* no stray PATH.data */
        goto done;
    }
    free(model_tmp);
    model_tmp = NULL;
    sync_dir_of(path);
done:
    if (mf) fclose(mf);
    if (w.data) fclose(w.data);
    if (model_tmp) { unlink(model_tmp); free(model_tmp); }
    if (w.data_tmp) { unlink(w.data_tmp); free(w.data_tmp); }
    free(data_path);
    ar_free(&w.ar);
    return st;
}
