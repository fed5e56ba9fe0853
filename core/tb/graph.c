/* graph.c — the model graph for TensorBoard's Graphs tab: a GraphDef built
 * from the torsh IR (torsh/graph.h) the way PyTorch's add_graph lays one
 * out (torch/utils/tensorboard/_pytorch_graph.py, _proto_graph.py): "IO
 * Node" nodes for graph inputs and outputs, a node per weight/constant and
 * per IR node, inputs naming producer nodes ("name:k" for output k > 0),
 * attr["attr"] holding the node's attributes as text and
 * attr["_output_shapes"] its output shapes (unknown dims -1); versions
 * {producer: 22}. After the graph_def event comes PyTorch's
 * tagged_run_metadata "step1" event (RunMetadata with one CPU device).
 * Provides ts_tb_add_graph. */
#include "tb_proto.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything allocated while building is tracked here and freed at once. */
typedef struct arena {
    void **p;
    size_t n, cap;
    bool failed;
} arena;

static void *arena_alloc(arena *a, size_t size)
{
    if (a->failed) return NULL;
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        void **p = realloc(a->p, cap * sizeof *p);
        if (!p) { a->failed = true; return NULL; }
        a->p = p;
        a->cap = cap;
    }
    void *m = calloc(1, size ? size : 1);
    if (!m) { a->failed = true; return NULL; }
    a->p[a->n++] = m;
    return m;
}

static char *arena_strdup(arena *a, const char *s)
{
    size_t n = strlen(s);
    char *d = arena_alloc(a, n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static void arena_free(arena *a)
{
    for (size_t i = 0; i < a->n; i++) free(a->p[i]);
    free(a->p);
}

/* ---- attribute text ----------------------------------------------------------------- */

static void appendf(tb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(tb_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0) tb_buf_put(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* "{kernel_shape : [3, 3], pads : [1, 1, 1, 1]}" (long lists and strings cut) */
static void attr_text(const ts_gnode *n, tb_buf *b)
{
    enum { MAXN = 16 };
    tb_buf_put(b, "{", 1);
    for (int i = 0; i < n->n_attrs; i++) {
        const ts_attr *a = &n->attrs[i];
        appendf(b, "%s%s : ", i ? ", " : "", a->name);
        switch (a->type) {
        case TS_ATTR_FLOAT: appendf(b, "%g", a->f); break;
        case TS_ATTR_INT: appendf(b, "%" PRId64, a->i); break;
        case TS_ATTR_STRING: appendf(b, "'%.64s%s'", a->s ? a->s : "", a->s && a->s_len > 64 ? "..." : ""); break;
        case TS_ATTR_TENSOR:
            if (a->t) {
                char s[TS_SHAPE_STR_CAP];
                appendf(b, "tensor(%s %s)", ts_dtype_name(a->t->dtype), ts_shape_str(a->t->shape, a->t->ndim, s, sizeof s));
            } else appendf(b, "tensor()");
            break;
        case TS_ATTR_FLOATS: case TS_ATTR_INTS: case TS_ATTR_STRINGS:
            tb_buf_put(b, "[", 1);
            for (int64_t k = 0; k < a->n && k < MAXN; k++) {
                if (k) tb_buf_put(b, ", ", 2);
                if (a->type == TS_ATTR_FLOATS) appendf(b, "%g", a->floats[k]);
                else if (a->type == TS_ATTR_INTS) appendf(b, "%" PRId64, a->ints[k]);
                else appendf(b, "'%.32s'", a->strings[k] ? a->strings[k] : "");
            }
            if (a->n > MAXN) appendf(b, ", ... (%" PRId64 " items)", a->n);
            tb_buf_put(b, "]", 1);
            break;
        default: appendf(b, "?");
        }
    }
    tb_buf_put(b, "}", 1);
}

/* ---- nodes -------------------------------------------------------------------------------- */

typedef struct builder {
    arena a;
    const ts_graph *g;
    Tensorboard__NodeDef **nodes;
    size_t n_nodes, cap_nodes;
    char **value_ref;       /* per value id: the node output that makes it (or NULL) */
} builder;

static Tensorboard__TensorShapeProto *shape_of(builder *b, const ts_gvalue *v)
{
    Tensorboard__TensorShapeProto *s = arena_alloc(&b->a, sizeof *s);
    if (!s) return NULL;
    tensorboard__tensor_shape_proto__init(s);
    if (!v || v->ndim < 0) { s->unknown_rank = true; return s; }
    if (v->ndim == 0) return s;
    s->dim = arena_alloc(&b->a, sizeof *s->dim * (size_t)v->ndim);
    if (!s->dim) return NULL;
    s->n_dim = (size_t)v->ndim;
    for (int i = 0; i < v->ndim; i++) {
        Tensorboard__TensorShapeProto__Dim *d = arena_alloc(&b->a, sizeof *d);
        if (!d) return NULL;
        tensorboard__tensor_shape_proto__dim__init(d);
        d->size = v->dims[i].size >= 0 ? v->dims[i].size : -1;
        if (v->dims[i].size < 0 && v->dims[i].sym >= 0) {
            const char *sym = ts_graph_symbol_name(b->g, v->dims[i].sym);
            if (sym) d->name = arena_strdup(&b->a, sym);
            if (sym && !d->name) return NULL;
        }
        s->dim[i] = d;
    }
    return s;
}

/* Adds a node; `outs` are the value ids whose shapes go to _output_shapes. */
static Tensorboard__NodeDef *add_node(builder *b, const char *name, const char *op, const char *attr_s,
                                      const int *outs, int n_outs)
{
    if (b->n_nodes == b->cap_nodes) {
        size_t cap = b->cap_nodes ? 2 * b->cap_nodes : 32;
        Tensorboard__NodeDef **p = arena_alloc(&b->a, cap * sizeof *p);
        if (!p) return NULL;
        if (b->n_nodes) memcpy(p, b->nodes, b->n_nodes * sizeof *p);
        b->nodes = p;
        b->cap_nodes = cap;
    }
    Tensorboard__NodeDef *nd = arena_alloc(&b->a, sizeof *nd);
    Tensorboard__NodeDef__AttrEntry **ents = arena_alloc(&b->a, 2 * sizeof *ents);
    if (!nd || !ents) return NULL;
    tensorboard__node_def__init(nd);
    nd->name = arena_strdup(&b->a, name);
    nd->op = arena_strdup(&b->a, op);
    nd->attr = ents;
    if (attr_s) {
        Tensorboard__NodeDef__AttrEntry *e = arena_alloc(&b->a, sizeof *e);
        Tensorboard__AttrValue *av = arena_alloc(&b->a, sizeof *av);
        if (!e || !av) return NULL;
        tensorboard__node_def__attr_entry__init(e);
        tensorboard__attr_value__init(av);
        size_t len = strlen(attr_s);
        av->value_case = TENSORBOARD__ATTR_VALUE__VALUE_S;
        av->s.data = (uint8_t *)arena_strdup(&b->a, attr_s);
        av->s.len = len;
        e->key = "attr";
        e->value = av;
        ents[nd->n_attr++] = e;
    }
    if (n_outs > 0) {
        Tensorboard__NodeDef__AttrEntry *e = arena_alloc(&b->a, sizeof *e);
        Tensorboard__AttrValue *av = arena_alloc(&b->a, sizeof *av);
        Tensorboard__AttrValue__ListValue *lv = arena_alloc(&b->a, sizeof *lv);
        Tensorboard__TensorShapeProto **shapes = arena_alloc(&b->a, (size_t)n_outs * sizeof *shapes);
        if (!e || !av || !lv || !shapes) return NULL;
        tensorboard__node_def__attr_entry__init(e);
        tensorboard__attr_value__init(av);
        tensorboard__attr_value__list_value__init(lv);
        for (int i = 0; i < n_outs; i++)
            if (!(shapes[i] = shape_of(b, outs[i] >= 0 ? ts_graph_val(b->g, outs[i]) : NULL))) return NULL;
        lv->n_shape = (size_t)n_outs;
        lv->shape = shapes;
        av->value_case = TENSORBOARD__ATTR_VALUE__VALUE_LIST;
        av->list = lv;
        e->key = "_output_shapes";
        e->value = av;
        ents[nd->n_attr++] = e;
    }
    if (b->a.failed || !nd->name || !nd->op) return NULL;
    b->nodes[b->n_nodes++] = nd;
    return nd;
}

static ts_status set_inputs(builder *b, Tensorboard__NodeDef *nd, const int *ids, int n)
{
    nd->input = arena_alloc(&b->a, (size_t)(n ? n : 1) * sizeof *nd->input);
    if (!nd->input) return ts_fail(TS_ERR_MEMORY, "add_graph: out of memory");
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0) continue;                 /* omitted optional input */
        const char *ref = b->value_ref[ids[i]];
        if (!ref) ref = ts_graph_val(b->g, ids[i])->name;   /* dangling: name the value */
        nd->input[nd->n_input++] = (char *)ref;
    }
    return TS_OK;
}

static bool is_node_name(const ts_graph *g, const char *name)
{
    for (int i = 0; i < ts_graph_node_count(g); i++)
        if (strcmp(ts_graph_node(g, i)->name, name) == 0) return true;
    return false;
}

static void value_desc(const ts_gvalue *v, char *buf, size_t cap)
{
    char s[TS_SHAPE_STR_CAP] = "[?]";
    if (v->ndim >= 0) {
        int64_t d[TS_MAX_DIMS];
        for (int i = 0; i < v->ndim && i < TS_MAX_DIMS; i++) d[i] = v->dims[i].size;
        ts_shape_str(d, v->ndim, s, sizeof s);
    }
    snprintf(buf, cap, "%s %s", v->dtype == TS_DTYPE_UNKNOWN ? "?" : ts_dtype_name(v->dtype), s);
}

static ts_status build(builder *b)
{
    const ts_graph *g = b->g;
    int nv = ts_graph_value_count(g);
    b->value_ref = arena_alloc(&b->a, (size_t)(nv ? nv : 1) * sizeof *b->value_ref);
    if (!b->value_ref) return ts_fail(TS_ERR_MEMORY, "add_graph: out of memory");
    char desc[TS_SHAPE_STR_CAP + 32];
    /* graph inputs */
    for (int i = 0; i < ts_graph_input_count(g); i++) {
        int id = ts_graph_input(g, i);
        const ts_gvalue *v = ts_graph_val(g, id);
        char *name = tb_strdup_printf("input/%s", v->name);
        if (!name) return ts_last_status();
        value_desc(v, desc, sizeof desc);
        Tensorboard__NodeDef *nd = add_node(b, name, "IO Node", desc, &id, 1);
        free(name);
        if (!nd) return ts_fail(TS_ERR_MEMORY, "add_graph: out of memory");
        b->value_ref[id] = nd->name;
    }
    /* weights and other constants not made by a node */
    for (int id = 0; id < nv; id++) {
        const ts_gvalue *v = ts_graph_val(g, id);
        if (!v->constant || v->producer >= 0 || b->value_ref[id]) continue;
        char *name = is_node_name(g, v->name) ? tb_strdup_printf("param/%s", v->name) : tb_strdup_printf("%s", v->name);
        if (!name) return ts_last_status();
        value_desc(v, desc, sizeof desc);
        Tensorboard__NodeDef *nd = add_node(b, name, v->is_initializer ? "Parameter" : "Constant", desc, &id, 1);
        free(name);
        if (!nd) return ts_fail(TS_ERR_MEMORY, "add_graph: out of memory");
        b->value_ref[id] = nd->name;
    }
    /* node outputs are referenced as "node" / "node:k" */
    for (int i = 0; i < ts_graph_node_count(g); i++) {
        const ts_gnode *n = ts_graph_node(g, i);
        for (int k = 0; k < n->n_outputs; k++) {
            if (n->outputs[k] < 0) continue;
            char *ref = k ? tb_strdup_printf("%s:%d", n->name, k) : tb_strdup_printf("%s", n->name);
            if (!ref) return ts_last_status();
            b->value_ref[n->outputs[k]] = arena_strdup(&b->a, ref);
            free(ref);
            if (!b->value_ref[n->outputs[k]]) return ts_fail(TS_ERR_MEMORY, "add_graph: out of memory");
        }
    }
    /* the nodes */
    for (int i = 0; i < ts_graph_node_count(g); i++) {
        const ts_gnode *n = ts_graph_node(g, i);
        tb_buf at = {0};
        attr_text(n, &at);
        tb_buf_put(&at, "", 1);
        char *op = n->domain && *n->domain ? tb_strdup_printf("%s::%s", n->domain, n->op_type)
                                           : tb_strdup_printf("%s", n->op_type);
        Tensorboard__NodeDef *nd = op && at.data ? add_node(b, n->name, op, (char *)at.data, n->outputs, n->n_outputs) : NULL;
        free(op);
        tb_buf_free(&at);
        if (!nd) return ts_fail(TS_ERR_MEMORY, "add_graph: out of memory");
        if (set_inputs(b, nd, n->inputs, n->n_inputs)) return ts_last_status();
    }
    /* graph outputs */
    for (int i = 0; i < ts_graph_output_count(g); i++) {
        int id = ts_graph_output(g, i);
        const ts_gvalue *v = ts_graph_val(g, id);
        char *name = tb_strdup_printf("output/%s", v->name);
        if (!name) return ts_last_status();
        value_desc(v, desc, sizeof desc);
        Tensorboard__NodeDef *nd = add_node(b, name, "IO Node", desc, &id, 1);
        free(name);
        if (!nd) return ts_fail(TS_ERR_MEMORY, "add_graph: out of memory");
        if (set_inputs(b, nd, &id, 1)) return ts_last_status();
    }
    return TS_OK;
}

ts_status ts_tb_add_graph(ts_tb_writer *w, const ts_graph *g, double walltime)
{
    if (tb_check_open(w, "add_graph", NULL)) return ts_last_status();
    if (!g) return ts_fail(TS_ERR_ARG, "add_graph: no graph");
    builder b = {.g = g};
    ts_status st = build(&b);
    uint8_t *bytes = NULL;
    if (!st) {
        Tensorboard__VersionDef ver = TENSORBOARD__VERSION_DEF__INIT;
        ver.producer = 22;
        Tensorboard__GraphDef gd = TENSORBOARD__GRAPH_DEF__INIT;
        gd.n_node = b.n_nodes;
        gd.node = b.nodes;
        gd.versions = &ver;
        size_t n = tensorboard__graph_def__get_packed_size(&gd);
        bytes = malloc(n ? n : 1);
        if (!bytes) st = ts_fail(TS_ERR_MEMORY, "add_graph: out of memory (%zu bytes)", n);
        else {
            tensorboard__graph_def__pack(&gd, bytes);
            Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
            ev.what_case = TENSORBOARD__EVENT__WHAT_GRAPH_DEF;
            ev.graph_def.data = bytes;
            ev.graph_def.len = n;
            st = tb_writer_add_event(w, &ev, walltime);
        }
    }
    arena_free(&b.a);
    free(bytes);
    if (st) return st;

    Tensorboard__DeviceStepStats dev = TENSORBOARD__DEVICE_STEP_STATS__INIT;
    dev.device = "/device:CPU:0";
    Tensorboard__DeviceStepStats *devs[1] = {&dev};
    Tensorboard__StepStats ss = TENSORBOARD__STEP_STATS__INIT;
    ss.n_dev_stats = 1;
    ss.dev_stats = devs;
    Tensorboard__RunMetadata rm = TENSORBOARD__RUN_METADATA__INIT;
    rm.step_stats = &ss;
    uint8_t rmb[64];
    size_t rn = tensorboard__run_metadata__pack(&rm, rmb);
    Tensorboard__TaggedRunMetadata trm = TENSORBOARD__TAGGED_RUN_METADATA__INIT;
    trm.tag = "step1";
    trm.run_metadata.data = rmb;
    trm.run_metadata.len = rn;
    Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
    ev.what_case = TENSORBOARD__EVENT__WHAT_TAGGED_RUN_METADATA;
    ev.tagged_run_metadata = &trm;
    return tb_writer_add_event(w, &ev, walltime);
}
