/* graph.c — the model IR of torsh/graph.h: building (values, nodes,
 * attributes, inputs/outputs, metadata, producer, opsets, symbols), reading,
 * deep copy, topological sort and pruning.
 *
 * Values and nodes live in growable arrays addressed by id; names are found
 * through open addressing hash tables of ids. Node names are made unique on
 * add ("" becomes "<Op>_<k>", a repeated name gets "_<k>" appended).
 * Uses only libc and the tensor reference counts.
 */
#include "graph_internal.h"
#include "ops.h"     /* ts_gval_set */

#include <stdlib.h>
#include <string.h>
#include <stdio.h>

/* ---- small helpers --------------------------------------------------------- */

char *ts_graph_strdup(const char *s)
{
    if (!s) s = "";
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static char *dup_bytes(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

const char *ts_graph_norm_domain(const char *domain)
{
    if (!domain || strcmp(domain, "ai.onnx") == 0) return "";
    return domain;
}

/* Grows *arr (elements of `size` bytes) to hold at least `need`. */
static bool grow(void **arr, int *cap, int need, size_t size)
{
    if (need <= *cap) return true;
    int nc = *cap ? *cap : 8;
    while (nc < need) {
        if (nc > (1 << 28)) return false;
        nc *= 2;
    }
    void *p = realloc(*arr, (size_t)nc * size);
    if (!p) return false;
    *arr = p;
    *cap = nc;
    return true;
}
#define GROW(arr, cap, need) grow((void **)&(arr), &(cap), (need), sizeof *(arr))

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* ---- name index ------------------------------------------------------------- */

static void index_free(ts_name_index *ix)
{
    free(ix->slots);
    ix->slots = NULL;
    ix->cap = ix->count = 0;
}

/* Finds the id whose name (names(ctx, id)) equals `name`, or -1. */
typedef const char *(*name_of_fn)(const ts_graph *g, int id);

static int index_find(const ts_graph *g, const ts_name_index *ix, name_of_fn name_of, const char *name)
{
    if (!ix->cap) return -1;
    size_t mask = (size_t)ix->cap - 1;
    for (size_t i = hash_str(name) & mask;; i = (i + 1) & mask) {
        int s = ix->slots[i];
        if (!s) return -1;
        if (strcmp(name_of(g, s - 1), name) == 0) return s - 1;
    }
}

static bool index_insert_raw(const ts_graph *g, ts_name_index *ix, name_of_fn name_of, int id)
{
    size_t mask = (size_t)ix->cap - 1;
    size_t i = hash_str(name_of(g, id)) & mask;
    while (ix->slots[i]) i = (i + 1) & mask;
    ix->slots[i] = id + 1;
    ix->count++;
    return true;
}

static bool index_rebuild(const ts_graph *g, ts_name_index *ix, name_of_fn name_of, int n, int want_cap)
{
    int cap = 16;
    while (cap < want_cap * 2 || cap < n * 2) cap *= 2;
    int *slots = calloc((size_t)cap, sizeof *slots);
    if (!slots) return false;
    free(ix->slots);
    ix->slots = slots;
    ix->cap = cap;
    ix->count = 0;
    for (int id = 0; id < n; id++) index_insert_raw(g, ix, name_of, id);
    return true;
}

static bool index_add(const ts_graph *g, ts_name_index *ix, name_of_fn name_of, int id, int n_total)
{
    if ((ix->count + 1) * 2 > ix->cap) return index_rebuild(g, ix, name_of, n_total, n_total + 1);
    return index_insert_raw(g, ix, name_of, id);
}

static const char *value_name_of(const ts_graph *g, int id) { return g->values[id].name; }
static const char *node_name_of(const ts_graph *g, int id) { return g->nodes[id].name; }

/* ---- life cycle ------------------------------------------------------------- */

ts_graph *ts_graph_new(const char *name)
{
    ts_graph *g = calloc(1, sizeof *g);
    if (!g) return ts_fail_null(TS_ERR_MEMORY, "graph_new: out of memory");
    g->name = ts_graph_strdup(name);
    if (!g->name) {
        free(g);
        return ts_fail_null(TS_ERR_MEMORY, "graph_new: out of memory");
    }
    return g;
}

static void attr_clear(ts_attr *a)
{
    free(a->name);
    free(a->s);
    ts_tensor_release(a->t);
    free(a->floats);
    free(a->ints);
    if (a->strings)
        for (int64_t i = 0; i < a->n; i++) free(a->strings[i]);
    free(a->strings);
    memset(a, 0, sizeof *a);
}

static void node_clear(ts_gnode *n)
{
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->inputs);
    free(n->outputs);
    for (int i = 0; i < n->n_attrs; i++) attr_clear(&n->attrs[i]);
    free(n->attrs);
    memset(n, 0, sizeof *n);
}

void ts_graph_free(ts_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n_values; i++) {
        free(g->values[i].name);
        ts_tensor_release(g->values[i].constant);
    }
    free(g->values);
    for (int i = 0; i < g->n_nodes; i++) node_clear(&g->nodes[i]);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    for (int i = 0; i < g->n_syms; i++) free(g->syms[i]);
    free(g->syms);
    free(g->sym_bound);
    for (int i = 0; i < g->n_meta; i++) {
        free(g->meta_keys[i]);
        free(g->meta_values[i]);
    }
    free(g->meta_keys);
    free(g->meta_values);
    free(g->producer);
    free(g->producer_version);
    for (int i = 0; i < g->n_opsets; i++) free(g->opset_domains[i]);
    free(g->opset_domains);
    free(g->opset_versions);
    free(g->shape_vals);
    free(g->shape_val_n);
    index_free(&g->value_index);
    index_free(&g->node_index);
    free(g->name);
    free(g);
}

static bool attr_copy(ts_attr *d, const ts_attr *s)
{
    memset(d, 0, sizeof *d);
    d->type = s->type;
    d->f = s->f;
    d->i = s->i;
    d->n = s->n;
    d->name = ts_graph_strdup(s->name);
    if (!d->name) return false;
    if (s->s) {
        d->s = dup_bytes(s->s, s->s_len);
        if (!d->s) return false;
        d->s_len = s->s_len;
    }
    if (s->t) {
        ts_tensor_retain(s->t);
        d->t = s->t;
    }
    if (s->floats) {
        d->floats = malloc((size_t)(s->n ? s->n : 1) * sizeof *d->floats);
        if (!d->floats) return false;
        memcpy(d->floats, s->floats, (size_t)s->n * sizeof *d->floats);
    }
    if (s->ints) {
        d->ints = malloc((size_t)(s->n ? s->n : 1) * sizeof *d->ints);
        if (!d->ints) return false;
        memcpy(d->ints, s->ints, (size_t)s->n * sizeof *d->ints);
    }
    if (s->strings) {
        d->strings = calloc((size_t)(s->n ? s->n : 1), sizeof *d->strings);
        if (!d->strings) return false;
        for (int64_t i = 0; i < s->n; i++) {
            d->strings[i] = ts_graph_strdup(s->strings[i]);
            if (!d->strings[i]) return false;
        }
    }
    return true;
}

static bool node_copy(ts_gnode *d, const ts_gnode *s)
{
    memset(d, 0, sizeof *d);
    d->name = ts_graph_strdup(s->name);
    d->op_type = ts_graph_strdup(s->op_type);
    d->domain = ts_graph_strdup(s->domain);
    d->inputs = malloc((size_t)(s->n_inputs ? s->n_inputs : 1) * sizeof(int));
    d->outputs = malloc((size_t)(s->n_outputs ? s->n_outputs : 1) * sizeof(int));
    d->attrs = calloc((size_t)(s->n_attrs ? s->n_attrs : 1), sizeof(ts_attr));
    if (!d->name || !d->op_type || !d->domain || !d->inputs || !d->outputs || !d->attrs) return false;
    d->n_inputs = s->n_inputs;
    d->n_outputs = s->n_outputs;
    if (s->n_inputs) memcpy(d->inputs, s->inputs, (size_t)s->n_inputs * sizeof(int));
    if (s->n_outputs) memcpy(d->outputs, s->outputs, (size_t)s->n_outputs * sizeof(int));
    for (int i = 0; i < s->n_attrs; i++) {
        d->n_attrs = i + 1;
        if (!attr_copy(&d->attrs[i], &s->attrs[i])) return false;
    }
    return true;
}

static char **dup_str_array(char *const *s, int n)
{
    char **d = calloc((size_t)(n ? n : 1), sizeof *d);
    if (!d) return NULL;
    for (int i = 0; i < n; i++) {
        d[i] = ts_graph_strdup(s[i]);
        if (!d[i]) {
            for (int j = 0; j < i; j++) free(d[j]);
            free(d);
            return NULL;
        }
    }
    return d;
}

/* A malloc'd copy of n elements of `size` bytes (n <= 0: an empty block). */
static void *dup_mem(const void *p, int64_t n, size_t size)
{
    size_t bytes = n > 0 ? (size_t)n * size : 0;
    void *d = malloc(bytes ? bytes : 1);
    if (d && bytes) memcpy(d, p, bytes);
    return d;
}

ts_graph *ts_graph_clone(const ts_graph *g)
{
    if (!g) return ts_fail_null(TS_ERR_ARG, "graph_clone: NULL graph");
    ts_graph *c = ts_graph_new(g->name);
    if (!c) return NULL;
    c->values = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *c->values);
    c->cap_values = g->n_values ? g->n_values : 1;
    c->nodes = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *c->nodes);
    c->cap_nodes = g->n_nodes ? g->n_nodes : 1;
    if (!c->values || !c->nodes) goto oom;
    for (int i = 0; i < g->n_values; i++) {
        c->values[i] = g->values[i];
        c->values[i].name = NULL;
        c->values[i].constant = NULL;
        c->n_values = i + 1;
        c->values[i].name = ts_graph_strdup(g->values[i].name);
        if (!c->values[i].name) goto oom;
        if (g->values[i].constant) {
            ts_tensor_retain(g->values[i].constant);
            c->values[i].constant = g->values[i].constant;
        }
    }
    for (int i = 0; i < g->n_nodes; i++) {
        c->n_nodes = i + 1;
        if (!node_copy(&c->nodes[i], &g->nodes[i])) goto oom;
    }
    c->inputs = dup_mem(g->inputs, g->n_inputs, sizeof(int));
    c->outputs = dup_mem(g->outputs, g->n_outputs, sizeof(int));
    if (!c->inputs || !c->outputs) goto oom;
    c->n_inputs = c->cap_inputs = g->n_inputs;
    c->n_outputs = c->cap_outputs = g->n_outputs;
    c->syms = dup_str_array(g->syms, g->n_syms);
    c->sym_bound = dup_mem(g->sym_bound, g->n_syms, sizeof(int64_t));
    if (!c->syms || !c->sym_bound) goto oom;
    c->n_syms = c->cap_syms = g->n_syms;
    c->meta_keys = dup_str_array(g->meta_keys, g->n_meta);
    c->meta_values = dup_str_array(g->meta_values, g->n_meta);
    if (!c->meta_keys || !c->meta_values) goto oom;
    c->n_meta = c->cap_meta = g->n_meta;
    if (g->producer && !(c->producer = ts_graph_strdup(g->producer))) goto oom;
    if (g->producer_version && !(c->producer_version = ts_graph_strdup(g->producer_version))) goto oom;
    c->opset_domains = dup_str_array(g->opset_domains, g->n_opsets);
    c->opset_versions = dup_mem(g->opset_versions, g->n_opsets, sizeof(int64_t));
    if (!c->opset_domains || !c->opset_versions) goto oom;
    c->n_opsets = c->cap_opsets = g->n_opsets;
    c->auto_name_counter = g->auto_name_counter;
    if (!index_rebuild(c, &c->value_index, value_name_of, c->n_values, c->n_values)) goto oom;
    if (!index_rebuild(c, &c->node_index, node_name_of, c->n_nodes, c->n_nodes)) goto oom;
    return c;
oom:
    ts_graph_free(c);
    return ts_fail_null(TS_ERR_MEMORY, "graph_clone: out of memory");
}

/* ---- values and symbols --------------------------------------------------------- */

int ts_graph_find_value(const ts_graph *g, const char *name)
{
    if (!g || !name) return -1;
    return index_find(g, &g->value_index, value_name_of, name);
}

int ts_graph_value(ts_graph *g, const char *name)
{
    if (!g || !name) {
        ts_fail(TS_ERR_ARG, "graph_value: NULL %s", g ? "name" : "graph");
        return -1;
    }
    int id = ts_graph_find_value(g, name);
    if (id >= 0) return id;
    if (!GROW(g->values, g->cap_values, g->n_values + 1)) goto oom;
    ts_gvalue *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = ts_graph_strdup(name);
    if (!v->name) goto oom;
    v->dtype = TS_DTYPE_UNKNOWN;
    v->ndim = TS_RANK_UNKNOWN;
    v->producer = -1;
    for (int i = 0; i < TS_MAX_DIMS; i++) v->dims[i] = ts_dim_unknown();
    id = g->n_values++;
    if (!index_add(g, &g->value_index, value_name_of, id, g->n_values)) {
        free(v->name);
        g->n_values--;
        goto oom;
    }
    return id;
oom:
    ts_fail(TS_ERR_MEMORY, "graph_value: out of memory adding value '%s'", name);
    return -1;
}

int32_t ts_graph_symbol(ts_graph *g, const char *name)
{
    if (!g || !name) return -1;
    for (int i = 0; i < g->n_syms; i++)
        if (strcmp(g->syms[i], name) == 0) return i;
    if (g->n_syms + 1 > g->cap_syms) {
        int cap = g->cap_syms;
        if (!GROW(g->syms, cap, g->n_syms + 1)) return -1;
        int64_t *b = realloc(g->sym_bound, (size_t)cap * sizeof *b);
        if (!b) return -1;
        g->sym_bound = b;
        g->cap_syms = cap;
    }
    char *s = ts_graph_strdup(name);
    if (!s) return -1;
    g->syms[g->n_syms] = s;
    g->sym_bound[g->n_syms] = -1;
    return g->n_syms++;
}

const char *ts_graph_symbol_name(const ts_graph *g, int32_t sym)
{
    if (!g || sym < 0 || sym >= g->n_syms) return NULL;
    return g->syms[sym];
}

int ts_graph_symbol_count(const ts_graph *g) { return g ? g->n_syms : 0; }

int64_t ts_graph_symbol_bound(const ts_graph *g, int32_t sym)
{
    if (!g || sym < 0 || sym >= g->n_syms) return -1;
    return g->sym_bound[sym];
}

static ts_status check_value(const ts_graph *g, int value, const char *fn)
{
    if (!g) return ts_fail(TS_ERR_ARG, "%s: NULL graph", fn);
    if (value < 0 || value >= g->n_values)
        return ts_fail(TS_ERR_ARG, "%s: value id %d out of range (graph has %d values)", fn, value, g->n_values);
    return TS_OK;
}

ts_status ts_graph_set_info(ts_graph *g, int value, ts_dtype dt, int ndim, const ts_dim *dims)
{
    ts_status st = check_value(g, value, "graph_set_info");
    if (st) return st;
    ts_gvalue *v = &g->values[value];
    if (dt != TS_DTYPE_UNKNOWN && ((int)dt < 0 || dt >= TS_DTYPE_COUNT))
        return ts_fail(TS_ERR_ARG, "graph_set_info: value '%s': bad dtype %d", v->name, (int)dt);
    if (ndim < TS_RANK_UNKNOWN || ndim > TS_MAX_DIMS)
        return ts_fail(TS_ERR_ARG, "graph_set_info: value '%s': rank %d out of range (at most %d)", v->name, ndim,
                       TS_MAX_DIMS);
    for (int i = 0; i < ndim && dims; i++)
        if (dims[i].size < 0 && dims[i].sym >= g->n_syms)
            return ts_fail(TS_ERR_ARG, "graph_set_info: value '%s': dim %d names symbol %d (graph has %d)", v->name,
                           i, (int)dims[i].sym, g->n_syms);
    ts_gval_set(v, dt, ndim, dims);
    return TS_OK;
}

ts_status ts_graph_set_const(ts_graph *g, int value, ts_tensor *t, bool is_initializer)
{
    ts_status st = check_value(g, value, "graph_set_const");
    if (st) return st;
    if (!t) return ts_fail(TS_ERR_ARG, "graph_set_const: value '%s': NULL tensor", g->values[value].name);
    ts_gvalue *v = &g->values[value];
    ts_tensor_retain(t);
    ts_tensor_release(v->constant);
    v->constant = t;
    v->is_initializer = is_initializer;
    v->dtype = t->dtype;
    v->ndim = t->ndim;
    for (int i = 0; i < TS_MAX_DIMS; i++) v->dims[i] = i < t->ndim ? ts_dim_of(t->shape[i]) : ts_dim_unknown();
    return TS_OK;
}

static ts_status add_io(ts_graph *g, int value, bool input)
{
    ts_status st = check_value(g, value, input ? "graph_add_input" : "graph_add_output");
    if (st) return st;
    int **arr = input ? &g->inputs : &g->outputs;
    int *n = input ? &g->n_inputs : &g->n_outputs;
    int *cap = input ? &g->cap_inputs : &g->cap_outputs;
    for (int i = 0; i < *n; i++)
        if ((*arr)[i] == value)
            return ts_fail(TS_ERR_ARG, "graph_add_%s: value '%s' is already a graph %s", input ? "input" : "output",
                           g->values[value].name, input ? "input" : "output");
    if (!grow((void **)arr, cap, *n + 1, sizeof(int))) return ts_fail(TS_ERR_MEMORY, "graph_add_io: out of memory");
    (*arr)[(*n)++] = value;
    return TS_OK;
}

ts_status ts_graph_add_input(ts_graph *g, int value) { return add_io(g, value, true); }
ts_status ts_graph_add_output(ts_graph *g, int value) { return add_io(g, value, false); }

/* ---- nodes --------------------------------------------------------------------- */

/* A name not used by any node: `base` itself when free, else base_1, base_2... */
static char *unique_node_name(ts_graph *g, const char *base)
{
    if (index_find(g, &g->node_index, node_name_of, base) < 0) return ts_graph_strdup(base);
    size_t n = strlen(base) + 24;
    char *buf = malloc(n);
    if (!buf) return NULL;
    for (int k = 1;; k++) {
        snprintf(buf, n, "%s_%d", base, k);
        if (index_find(g, &g->node_index, node_name_of, buf) < 0) return buf;
    }
}

int ts_graph_add_node(ts_graph *g, const char *op_type, const char *domain, const char *name,
                      const int *inputs, int n_inputs, const int *outputs, int n_outputs)
{
    if (!g) { ts_fail(TS_ERR_ARG, "graph_add_node: NULL graph"); return -1; }
    if (!op_type || !*op_type) { ts_fail(TS_ERR_ARG, "graph_add_node: empty op type"); return -1; }
    const char *label = (name && *name) ? name : op_type;
    if (n_inputs < 0 || n_outputs < 0 || (n_inputs && !inputs) || (n_outputs && !outputs)) {
        ts_fail(TS_ERR_ARG, "graph_add_node: node '%s' (%s): bad input/output lists", label, op_type);
        return -1;
    }
    /* ONNX requires an output on every node; an op of the default domain
     * without inputs is one of the few that make values from attributes only */
    if (n_outputs == 0) {
        ts_fail(TS_ERR_ARG, "graph_add_node: node '%s' (%s) has no outputs", label, op_type);
        return -1;
    }
    bool default_domain = !domain || !*domain || !strcmp(domain, "ai.onnx");
    if (n_inputs == 0 && default_domain && strcmp(op_type, "Constant") && strcmp(op_type, "RandomNormal") &&
        strcmp(op_type, "RandomUniform")) {
        ts_fail(TS_ERR_ARG, "graph_add_node: node '%s' (%s) has no inputs", label, op_type);
        return -1;
    }
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i] < -1 || inputs[i] >= g->n_values) {
            ts_fail(TS_ERR_ARG, "graph_add_node: node '%s' (%s): input %d is value id %d (graph has %d values)", label,
                    op_type, i, inputs[i], g->n_values);
            return -1;
        }
    for (int i = 0; i < n_outputs; i++) {
        int o = outputs[i];
        if (o < -1 || o >= g->n_values) {
            ts_fail(TS_ERR_ARG, "graph_add_node: node '%s' (%s): output %d is value id %d (graph has %d values)", label,
                    op_type, i, o, g->n_values);
            return -1;
        }
        if (o < 0) continue;
        if (g->values[o].producer >= 0) {
            ts_fail(TS_ERR_ARG, "graph_add_node: node '%s' (%s): output '%s' is already written by node '%s'", label,
                    op_type, g->values[o].name, g->nodes[g->values[o].producer].name);
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (outputs[j] == o) {
                ts_fail(TS_ERR_ARG, "graph_add_node: node '%s' (%s): output '%s' listed twice", label, op_type,
                        g->values[o].name);
                return -1;
            }
    }
    if (!GROW(g->nodes, g->cap_nodes, g->n_nodes + 1)) goto oom;
    ts_gnode nd;
    memset(&nd, 0, sizeof nd);
    if (name && *name) {
        nd.name = unique_node_name(g, name);
    } else {
        char base[96];
        snprintf(base, sizeof base, "%.80s_%d", op_type, g->auto_name_counter++);
        nd.name = unique_node_name(g, base);
    }
    nd.op_type = ts_graph_strdup(op_type);
    nd.domain = ts_graph_strdup(ts_graph_norm_domain(domain));
    nd.inputs = malloc((size_t)(n_inputs ? n_inputs : 1) * sizeof(int));
    nd.outputs = malloc((size_t)(n_outputs ? n_outputs : 1) * sizeof(int));
    if (!nd.name || !nd.op_type || !nd.domain || !nd.inputs || !nd.outputs) {
        node_clear(&nd);
        goto oom;
    }
    nd.n_inputs = n_inputs;
    nd.n_outputs = n_outputs;
    if (n_inputs) memcpy(nd.inputs, inputs, (size_t)n_inputs * sizeof(int));
    if (n_outputs) memcpy(nd.outputs, outputs, (size_t)n_outputs * sizeof(int));
    int id = g->n_nodes;
    g->nodes[id] = nd;
    g->n_nodes++;
    if (!index_add(g, &g->node_index, node_name_of, id, g->n_nodes)) {
        g->n_nodes--;
        node_clear(&g->nodes[id]);
        goto oom;
    }
    for (int i = 0; i < n_outputs; i++)
        if (outputs[i] >= 0) g->values[outputs[i]].producer = id;
    return id;
oom:
    ts_fail(TS_ERR_MEMORY, "graph_add_node: out of memory adding node '%s' (%s)", label, op_type);
    return -1;
}

/* The attribute slot called `name` on node `node` (cleared, named), or NULL. */
static ts_attr *attr_slot(ts_graph *g, int node, const char *name, const char *fn)
{
    if (!g) return ts_fail_null(TS_ERR_ARG, "%s: NULL graph", fn);
    if (node < 0 || node >= g->n_nodes)
        return ts_fail_null(TS_ERR_ARG, "%s: node id %d out of range (graph has %d nodes)", fn, node, g->n_nodes);
    if (!name || !*name) return ts_fail_null(TS_ERR_ARG, "%s: empty attribute name", fn);
    ts_gnode *n = &g->nodes[node];
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) {
            char *keep = n->attrs[i].name;
            n->attrs[i].name = NULL;
            attr_clear(&n->attrs[i]);
            n->attrs[i].name = keep;
            return &n->attrs[i];
        }
    ts_attr *a = realloc(n->attrs, (size_t)(n->n_attrs + 1) * sizeof *a);
    if (!a) return ts_fail_null(TS_ERR_MEMORY, "%s: out of memory", fn);
    n->attrs = a;
    ts_attr *s = &a[n->n_attrs];
    memset(s, 0, sizeof *s);
    s->name = ts_graph_strdup(name);
    if (!s->name) return ts_fail_null(TS_ERR_MEMORY, "%s: out of memory", fn);
    n->n_attrs++;
    return s;
}

/* Leaves a slot that failed to fill as an empty INTS attribute (valid, harmless). */
static ts_status attr_oom(ts_attr *a, const char *fn)
{
    a->type = TS_ATTR_INTS;
    a->n = 0;
    return ts_fail(TS_ERR_MEMORY, "%s: out of memory", fn);
}

ts_status ts_gnode_set_int(ts_graph *g, int node, const char *name, int64_t v)
{
    ts_attr *a = attr_slot(g, node, name, "gnode_set_int");
    if (!a) return ts_last_status();
    a->type = TS_ATTR_INT;
    a->i = v;
    return TS_OK;
}

ts_status ts_gnode_set_float(ts_graph *g, int node, const char *name, double v)
{
    ts_attr *a = attr_slot(g, node, name, "gnode_set_float");
    if (!a) return ts_last_status();
    a->type = TS_ATTR_FLOAT;
    a->f = v;
    return TS_OK;
}

ts_status ts_gnode_set_string(ts_graph *g, int node, const char *name, const char *s, size_t len)
{
    ts_attr *a = attr_slot(g, node, name, "gnode_set_string");
    if (!a) return ts_last_status();
    a->type = TS_ATTR_STRING;
    a->s = dup_bytes(s ? s : "", s ? len : 0);
    if (!a->s) return attr_oom(a, "gnode_set_string");
    a->s_len = s ? len : 0;
    return TS_OK;
}

ts_status ts_gnode_set_ints(ts_graph *g, int node, const char *name, const int64_t *v, int64_t n)
{
    if (n < 0 || (n && !v)) return ts_fail(TS_ERR_ARG, "gnode_set_ints: bad list (%lld values)", (long long)n);
    ts_attr *a = attr_slot(g, node, name, "gnode_set_ints");
    if (!a) return ts_last_status();
    a->type = TS_ATTR_INTS;
    a->ints = dup_mem(v, n, sizeof *v);
    if (!a->ints) return attr_oom(a, "gnode_set_ints");
    a->n = n;
    return TS_OK;
}

ts_status ts_gnode_set_floats(ts_graph *g, int node, const char *name, const double *v, int64_t n)
{
    if (n < 0 || (n && !v)) return ts_fail(TS_ERR_ARG, "gnode_set_floats: bad list (%lld values)", (long long)n);
    ts_attr *a = attr_slot(g, node, name, "gnode_set_floats");
    if (!a) return ts_last_status();
    a->type = TS_ATTR_FLOATS;
    a->floats = dup_mem(v, n, sizeof *v);
    if (!a->floats) return attr_oom(a, "gnode_set_floats");
    a->n = n;
    return TS_OK;
}

ts_status ts_gnode_set_strings(ts_graph *g, int node, const char *name, const char *const *v, int64_t n)
{
    if (n < 0 || (n && !v)) return ts_fail(TS_ERR_ARG, "gnode_set_strings: bad list (%lld values)", (long long)n);
    ts_attr *a = attr_slot(g, node, name, "gnode_set_strings");
    if (!a) return ts_last_status();
    a->type = TS_ATTR_STRINGS;
    a->strings = calloc((size_t)(n ? n : 1), sizeof *a->strings);
    if (!a->strings) return attr_oom(a, "gnode_set_strings");
    for (int64_t i = 0; i < n; i++) {
        a->strings[i] = ts_graph_strdup(v[i]);
        if (!a->strings[i]) {
            for (int64_t j = 0; j < i; j++) free(a->strings[j]);
            free(a->strings);
            a->strings = NULL;
            return attr_oom(a, "gnode_set_strings");
        }
    }
    a->n = n;
    return TS_OK;
}

ts_status ts_gnode_set_tensor(ts_graph *g, int node, const char *name, ts_tensor *t)
{
    if (!t) return ts_fail(TS_ERR_ARG, "gnode_set_tensor: NULL tensor");
    ts_attr *a = attr_slot(g, node, name, "gnode_set_tensor");
    if (!a) return ts_last_status();
    a->type = TS_ATTR_TENSOR;
    ts_tensor_retain(t);
    a->t = t;
    return TS_OK;
}

/* ---- metadata ----------------------------------------------------------------- */

static ts_status replace_str(char **slot, const char *s)
{
    char *d = ts_graph_strdup(s);
    if (!d) return ts_fail(TS_ERR_MEMORY, "graph: out of memory");
    free(*slot);
    *slot = d;
    return TS_OK;
}

ts_status ts_graph_set_meta(ts_graph *g, const char *key, const char *value)
{
    if (!g || !key) return ts_fail(TS_ERR_ARG, "graph_set_meta: NULL %s", g ? "key" : "graph");
    for (int i = 0; i < g->n_meta; i++)
        if (strcmp(g->meta_keys[i], key) == 0) return replace_str(&g->meta_values[i], value);
    int cap = g->cap_meta;
    if (!GROW(g->meta_keys, cap, g->n_meta + 1)) return ts_fail(TS_ERR_MEMORY, "graph_set_meta: out of memory");
    cap = g->cap_meta;
    if (!GROW(g->meta_values, cap, g->n_meta + 1)) return ts_fail(TS_ERR_MEMORY, "graph_set_meta: out of memory");
    g->cap_meta = cap;
    char *k = ts_graph_strdup(key), *v = ts_graph_strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return ts_fail(TS_ERR_MEMORY, "graph_set_meta: out of memory");
    }
    g->meta_keys[g->n_meta] = k;
    g->meta_values[g->n_meta] = v;
    g->n_meta++;
    return TS_OK;
}

ts_status ts_graph_set_producer(ts_graph *g, const char *name, const char *version)
{
    if (!g) return ts_fail(TS_ERR_ARG, "graph_set_producer: NULL graph");
    ts_status st = replace_str(&g->producer, name);
    if (st) return st;
    return replace_str(&g->producer_version, version);
}

ts_status ts_graph_set_opset(ts_graph *g, const char *domain, int64_t version)
{
    if (!g) return ts_fail(TS_ERR_ARG, "graph_set_opset: NULL graph");
    domain = ts_graph_norm_domain(domain);
    for (int i = 0; i < g->n_opsets; i++)
        if (strcmp(g->opset_domains[i], domain) == 0) {
            g->opset_versions[i] = version;
            return TS_OK;
        }
    int cap = g->cap_opsets;
    if (!GROW(g->opset_domains, cap, g->n_opsets + 1)) return ts_fail(TS_ERR_MEMORY, "graph_set_opset: out of memory");
    cap = g->cap_opsets;
    if (!GROW(g->opset_versions, cap, g->n_opsets + 1)) return ts_fail(TS_ERR_MEMORY, "graph_set_opset: out of memory");
    g->cap_opsets = cap;
    char *d = ts_graph_strdup(domain);
    if (!d) return ts_fail(TS_ERR_MEMORY, "graph_set_opset: out of memory");
    g->opset_domains[g->n_opsets] = d;
    g->opset_versions[g->n_opsets] = version;
    g->n_opsets++;
    return TS_OK;
}

/* ---- reading ------------------------------------------------------------------ */

const char *ts_graph_name(const ts_graph *g) { return g ? g->name : NULL; }
int ts_graph_value_count(const ts_graph *g) { return g ? g->n_values : 0; }
int ts_graph_node_count(const ts_graph *g) { return g ? g->n_nodes : 0; }

ts_gvalue *ts_graph_val(const ts_graph *g, int value)
{
    if (!g || value < 0 || value >= g->n_values) return NULL;
    return &g->values[value];
}

ts_gnode *ts_graph_node(const ts_graph *g, int node)
{
    if (!g || node < 0 || node >= g->n_nodes) return NULL;
    return &g->nodes[node];
}

int ts_graph_input_count(const ts_graph *g) { return g ? g->n_inputs : 0; }
int ts_graph_input(const ts_graph *g, int i) { return (g && i >= 0 && i < g->n_inputs) ? g->inputs[i] : -1; }
int ts_graph_output_count(const ts_graph *g) { return g ? g->n_outputs : 0; }
int ts_graph_output(const ts_graph *g, int i) { return (g && i >= 0 && i < g->n_outputs) ? g->outputs[i] : -1; }
int ts_graph_meta_count(const ts_graph *g) { return g ? g->n_meta : 0; }

void ts_graph_meta_at(const ts_graph *g, int i, const char **key, const char **value)
{
    bool ok = g && i >= 0 && i < g->n_meta;
    if (key) *key = ok ? g->meta_keys[i] : NULL;
    if (value) *value = ok ? g->meta_values[i] : NULL;
}

const char *ts_graph_producer(const ts_graph *g, const char **version)
{
    if (version) *version = g ? g->producer_version : NULL;
    return g ? g->producer : NULL;
}

int64_t ts_graph_opset(const ts_graph *g, const char *domain)
{
    if (!g) return 0;
    domain = ts_graph_norm_domain(domain);
    for (int i = 0; i < g->n_opsets; i++)
        if (strcmp(g->opset_domains[i], domain) == 0) return g->opset_versions[i];
    return 0;
}

int ts_graph_opset_count(const ts_graph *g) { return g ? g->n_opsets : 0; }

void ts_graph_opset_at(const ts_graph *g, int i, const char **domain, int64_t *version)
{
    bool ok = g && i >= 0 && i < g->n_opsets;
    if (domain) *domain = ok ? g->opset_domains[i] : NULL;
    if (version) *version = ok ? g->opset_versions[i] : 0;
}

const ts_attr *ts_gnode_attr(const ts_gnode *n, const char *name)
{
    if (!n || !name) return NULL;
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

int64_t ts_gnode_int(const ts_gnode *n, const char *name, int64_t dflt)
{
    const ts_attr *a = ts_gnode_attr(n, name);
    if (!a) return dflt;
    if (a->type == TS_ATTR_INT) return a->i;
    if (a->type == TS_ATTR_FLOAT) return (int64_t)a->f;
    return dflt;
}

double ts_gnode_float(const ts_gnode *n, const char *name, double dflt)
{
    const ts_attr *a = ts_gnode_attr(n, name);
    if (!a) return dflt;
    if (a->type == TS_ATTR_FLOAT) return a->f;
    if (a->type == TS_ATTR_INT) return (double)a->i;
    return dflt;
}

const char *ts_gnode_string(const ts_gnode *n, const char *name, const char *dflt)
{
    const ts_attr *a = ts_gnode_attr(n, name);
    return (a && a->type == TS_ATTR_STRING && a->s) ? a->s : dflt;
}

const int64_t *ts_gnode_ints(const ts_gnode *n, const char *name, int64_t *n_out)
{
    const ts_attr *a = ts_gnode_attr(n, name);
    if (!a || a->type != TS_ATTR_INTS) {
        if (n_out) *n_out = 0;
        return NULL;
    }
    if (n_out) *n_out = a->n;
    static const int64_t empty[1] = {0};
    return a->ints ? a->ints : empty;
}

bool ts_graph_reset_shape_values(ts_graph *g)
{
    if (g->n_values > g->shape_vals_cap) {
        int cap = g->n_values + 16;
        void *a = realloc(g->shape_vals, (size_t)cap * sizeof *g->shape_vals);
        if (!a) return false;
        g->shape_vals = a;
        void *b = realloc(g->shape_val_n, (size_t)cap);
        if (!b) return false;
        g->shape_val_n = b;
        g->shape_vals_cap = cap;
    }
    if (g->shape_val_n) memset(g->shape_val_n, 0xff, (size_t)g->shape_vals_cap);
    return true;
}

/* ---- topological order ------------------------------------------------------------ */

static bool is_graph_input(const ts_graph *g, int v)
{
    for (int i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] == v) return true;
    return false;
}

ts_status ts_graph_topo_order(const ts_graph *g, int *order)
{
    int n = g->n_nodes;
    if (!n) return TS_OK;
    /* pending[k]: inputs of node k not yet available; readers of each value as
     * a CSR list; ready nodes are taken smallest id first so a sorted graph
     * keeps its order. */
    int *pending = calloc((size_t)n, sizeof(int));
    int *rd_start = calloc((size_t)g->n_values + 1, sizeof(int));
    bool *avail = calloc((size_t)g->n_values + 1, sizeof(bool));
    int total = 0;
    for (int k = 0; k < n; k++) total += g->nodes[k].n_inputs;
    int *rd = malloc((size_t)(total ? total : 1) * sizeof(int));
    int *fill = calloc((size_t)g->n_values + 1, sizeof(int));
    /* a binary heap of ready node ids */
    int *heap = malloc((size_t)n * sizeof(int));
    ts_status st = TS_OK;
    if (!pending || !rd_start || !avail || !rd || !fill || !heap) {
        st = ts_fail(TS_ERR_MEMORY, "graph_toposort: out of memory");
        goto done;
    }
    for (int v = 0; v < g->n_values; v++)
        avail[v] = g->values[v].constant != NULL || g->values[v].producer < 0;
    for (int i = 0; i < g->n_inputs; i++) avail[g->inputs[i]] = true;
    /* a node may not overwrite what the caller feeds or what the file holds */
    for (int k = 0; k < n && !st; k++) {
        const ts_gnode *nd = &g->nodes[k];
        for (int o = 0; o < nd->n_outputs; o++) {
            int v = nd->outputs[o];
            if (v < 0) continue;
            if (is_graph_input(g, v) || g->values[v].is_initializer) {
                st = ts_fail(TS_ERR_ARG, "graph: node '%s' (%s) writes '%s', which is a graph %s", nd->name,
                             nd->op_type, g->values[v].name, is_graph_input(g, v) ? "input" : "initializer");
                break;
            }
        }
    }
    if (st) goto done;
    for (int k = 0; k < n; k++) {
        const ts_gnode *nd = &g->nodes[k];
        for (int i = 0; i < nd->n_inputs; i++) {
            int v = nd->inputs[i];
            if (v < 0) continue;
            const ts_gvalue *gv = &g->values[v];
            if (gv->producer < 0 && !gv->constant && !is_graph_input(g, v)) {
                st = ts_fail(TS_ERR_ARG,
                             "graph_toposort: node '%s' (%s) reads value '%s', which is neither produced by a node, "
                             "a constant nor a graph input",
                             nd->name, nd->op_type, gv->name);
                goto done;
            }
            if (!avail[v]) {
                pending[k]++;
                rd_start[v + 1]++;
            }
        }
    }
    for (int v = 0; v < g->n_values; v++) rd_start[v + 1] += rd_start[v];
    for (int k = 0; k < n; k++) {
        const ts_gnode *nd = &g->nodes[k];
        for (int i = 0; i < nd->n_inputs; i++) {
            int v = nd->inputs[i];
            if (v >= 0 && !avail[v]) rd[rd_start[v] + fill[v]++] = k;
        }
    }
    int hn = 0;
#define HEAP_PUSH(x) do { int _i = hn++; heap[_i] = (x); \
        while (_i > 0 && heap[(_i - 1) / 2] > heap[_i]) { int _p = (_i - 1) / 2, _t = heap[_p]; \
            heap[_p] = heap[_i]; heap[_i] = _t; _i = _p; } } while (0)
    for (int k = 0; k < n; k++)
        if (!pending[k]) HEAP_PUSH(k);
    int done_n = 0;
    while (hn) {
        int k = heap[0];
        heap[0] = heap[--hn];
        for (int i = 0;;) {
            int l = 2 * i + 1, r = l + 1, m = i;
            if (l < hn && heap[l] < heap[m]) m = l;
            if (r < hn && heap[r] < heap[m]) m = r;
            if (m == i) break;
            int t = heap[m]; heap[m] = heap[i]; heap[i] = t; i = m;
        }
        order[done_n++] = k;
        const ts_gnode *nd = &g->nodes[k];
        for (int o = 0; o < nd->n_outputs; o++) {
            int v = nd->outputs[o];
            if (v < 0 || avail[v]) continue;
            avail[v] = true;
            for (int j = rd_start[v]; j < rd_start[v + 1]; j++)
                if (--pending[rd[j]] == 0) HEAP_PUSH(rd[j]);
        }
    }
#undef HEAP_PUSH
    if (done_n < n) {
        int k = 0;
        while (k < n && !pending[k]) k++;
        const ts_gnode *nd = &g->nodes[k];
        const char *vname = "?";
        for (int i = 0; i < nd->n_inputs; i++) {
            int v = nd->inputs[i];
            if (v >= 0 && !avail[v]) { vname = g->values[v].name; break; }
        }
        st = ts_fail(TS_ERR_ARG, "graph_toposort: cycle: node '%s' (%s) waits on value '%s' (%d of %d nodes ordered)",
                     nd->name, nd->op_type, vname, done_n, n);
    }
done:
    free(pending);
    free(rd_start);
    free(avail);
    free(rd);
    free(fill);
    free(heap);
    return st;
}

ts_status ts_graph_toposort(ts_graph *g)
{
    if (!g) return ts_fail(TS_ERR_ARG, "graph_toposort: NULL graph");
    if (!g->n_nodes) return TS_OK;
    int *order = malloc((size_t)g->n_nodes * sizeof(int));
    ts_gnode *nodes = malloc((size_t)g->n_nodes * sizeof(ts_gnode));
    if (!order || !nodes) {
        free(order);
        free(nodes);
        return ts_fail(TS_ERR_MEMORY, "graph_toposort: out of memory");
    }
    ts_status st = ts_graph_topo_order(g, order);
    if (st) {
        free(order);
        free(nodes);
        return st;
    }
    for (int i = 0; i < g->n_nodes; i++) nodes[i] = g->nodes[order[i]];
    memcpy(g->nodes, nodes, (size_t)g->n_nodes * sizeof(ts_gnode));
    free(nodes);
    free(order);
    for (int v = 0; v < g->n_values; v++) g->values[v].producer = -1;
    for (int k = 0; k < g->n_nodes; k++)
        for (int o = 0; o < g->nodes[k].n_outputs; o++)
            if (g->nodes[k].outputs[o] >= 0) g->values[g->nodes[k].outputs[o]].producer = k;
    if (!index_rebuild(g, &g->node_index, node_name_of, g->n_nodes, g->n_nodes))
        return ts_fail(TS_ERR_MEMORY, "graph_toposort: out of memory");
    return TS_OK;
}

/* ---- pruning ---------------------------------------------------------------------- */

ts_status ts_graph_prune(ts_graph *g)
{
    if (!g) return ts_fail(TS_ERR_ARG, "graph_prune: NULL graph");
    bool *live_v = calloc((size_t)g->n_values + 1, sizeof(bool));
    bool *live_n = calloc((size_t)g->n_nodes + 1, sizeof(bool));
    int *stack = malloc(((size_t)g->n_values + 1) * sizeof(int));
    int *vmap = malloc(((size_t)g->n_values + 1) * sizeof(int));
    int *nmap = malloc(((size_t)g->n_nodes + 1) * sizeof(int));
    if (!live_v || !live_n || !stack || !vmap || !nmap) {
        free(live_v); free(live_n); free(stack); free(vmap); free(nmap);
        return ts_fail(TS_ERR_MEMORY, "graph_prune: out of memory");
    }
    /* walk back from the graph outputs through producers */
    int sp = 0;
    for (int i = 0; i < g->n_outputs; i++)
        if (!live_v[g->outputs[i]]) { live_v[g->outputs[i]] = true; stack[sp++] = g->outputs[i]; }
    while (sp) {
        int v = stack[--sp];
        int p = g->values[v].producer;
        if (p < 0 || live_n[p]) continue;
        live_n[p] = true;
        const ts_gnode *nd = &g->nodes[p];
        for (int i = 0; i < nd->n_inputs; i++) {
            int u = nd->inputs[i];
            if (u >= 0 && !live_v[u]) { live_v[u] = true; stack[sp++] = u; }
        }
    }
    /* outputs of live nodes and graph inputs stay too */
    for (int k = 0; k < g->n_nodes; k++)
        if (live_n[k])
            for (int o = 0; o < g->nodes[k].n_outputs; o++)
                if (g->nodes[k].outputs[o] >= 0) live_v[g->nodes[k].outputs[o]] = true;
    for (int i = 0; i < g->n_inputs; i++) live_v[g->inputs[i]] = true;

    int nv = 0, nn = 0;
    for (int v = 0; v < g->n_values; v++) {
        if (live_v[v]) {
            vmap[v] = nv;
            g->values[nv++] = g->values[v];
        } else {
            vmap[v] = -1;
            free(g->values[v].name);
            ts_tensor_release(g->values[v].constant);
        }
    }
    for (int k = 0; k < g->n_nodes; k++) {
        if (live_n[k]) {
            nmap[k] = nn;
            g->nodes[nn++] = g->nodes[k];
        } else {
            nmap[k] = -1;
            node_clear(&g->nodes[k]);
        }
    }
    g->n_values = nv;
    g->n_nodes = nn;
    ts_graph_reset_shape_values(g);    /* ids moved */
    for (int v = 0; v < nv; v++) {
        int p = g->values[v].producer;
        g->values[v].producer = p >= 0 ? nmap[p] : -1;
    }
    for (int k = 0; k < nn; k++) {
        ts_gnode *nd = &g->nodes[k];
        for (int i = 0; i < nd->n_inputs; i++) if (nd->inputs[i] >= 0) nd->inputs[i] = vmap[nd->inputs[i]];
        for (int o = 0; o < nd->n_outputs; o++) if (nd->outputs[o] >= 0) nd->outputs[o] = vmap[nd->outputs[o]];
    }
    for (int i = 0; i < g->n_inputs; i++) g->inputs[i] = vmap[g->inputs[i]];
    for (int i = 0; i < g->n_outputs; i++) g->outputs[i] = vmap[g->outputs[i]];
    free(live_v); free(live_n); free(stack); free(vmap); free(nmap);
    if (!index_rebuild(g, &g->value_index, value_name_of, g->n_values, g->n_values) ||
        !index_rebuild(g, &g->node_index, node_name_of, g->n_nodes, g->n_nodes))
        return ts_fail(TS_ERR_MEMORY, "graph_prune: out of memory");
    return TS_OK;
}
