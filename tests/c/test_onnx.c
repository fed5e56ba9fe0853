/* test_onnx.c — C tests of the ONNX importer and exporter (torsh/onnx.h):
 * the committed PyTorch exports (tests/fixtures/onnx/: an MLP and a CNN at
 * opsets 13 and 17, made by tests/fixtures/gen_onnx.py) load with the right
 * structure, run through the executor to PyTorch's outputs (max abs 1e-4),
 * and survive export -> import (inline and external data); and every broken
 * model we can build here (with a tiny protobuf encoder independent of the
 * reader's) is refused with a message naming the file and the place:
 * truncation at every byte, lying raw_data sizes, future opsets and IR
 * versions, negative dims, rank > 8, dtypes torsh lacks, subgraph
 * attributes, unknown ops (at ts_exec_new), external data escaping the
 * folder, missing or short external files. Also replays the fuzz seeds
 * (tests/fuzz/corpus_onnx/). */
#include "check.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <torsh/graph.h>
#include <torsh/io.h>
#include <torsh/onnx.h>
#include <torsh/torsh.h>
#include <unistd.h>

static const char *tmpdir;

static bool file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---- a tiny protobuf encoder (independent of the reader's protobuf-c) ------------------ */

typedef struct pb { uint8_t *p; size_t n, cap; } pb;

static void pb_raw(pb *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void pb_varint(pb *b, uint64_t v)
{
    uint8_t t[10];
    int n = 0;
    do { t[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)); v >>= 7; } while (v);
    pb_raw(b, t, (size_t)n);
}
static void pb_key(pb *b, int field, int wt) { pb_varint(b, (uint64_t)field << 3 | (uint64_t)wt); }
static void pb_int(pb *b, int field, int64_t v) { pb_key(b, field, 0); pb_varint(b, (uint64_t)v); }
static void pb_bytes(pb *b, int field, const void *d, size_t n) { pb_key(b, field, 2); pb_varint(b, n); pb_raw(b, d, n); }
static void pb_str(pb *b, int field, const char *s) { pb_bytes(b, field, s, strlen(s)); }
static void pb_float(pb *b, int field, float f) { pb_key(b, field, 5); pb_raw(b, &f, 4); }
/* Appends sub as a length-delimited field and frees it. */
static void pb_msg(pb *b, int field, pb *sub) { pb_bytes(b, field, sub->p, sub->n); free(sub->p); *sub = (pb){ 0 }; }

/* ValueInfoProto: dims[i] >= 0 is a dim_value, < 0 takes the dim_param params[i]
 * (params NULL: every dim is a dim_value). */
static pb vi(const char *name, int elem, int ndim, const int64_t *dims, const char *const *params)
{
    pb v = { 0 }, ty = { 0 }, tt = { 0 }, sh = { 0 };
    pb_str(&v, 1, name);
    pb_int(&tt, 1, elem);
    for (int i = 0; i < ndim; i++) {
        pb d = { 0 };
        if (dims[i] >= 0 || !params) pb_int(&d, 1, dims[i]);   /* no params: negatives stay (broken files) */
        else pb_str(&d, 2, params[i]);
        pb_msg(&sh, 1, &d);
    }
    pb_msg(&tt, 2, &sh);
    pb_msg(&ty, 1, &tt);
    pb_msg(&v, 2, &ty);
    return v;
}

/* TensorProto with dims, data_type and name; the caller appends the data. */
static pb tensor_head(const char *name, int dtype, int ndim, const int64_t *dims)
{
    pb t = { 0 };
    for (int i = 0; i < ndim; i++) pb_int(&t, 1, dims[i]);
    pb_int(&t, 2, dtype);
    if (name) pb_str(&t, 8, name);
    return t;
}

static pb tensor_raw(const char *name, int dtype, int ndim, const int64_t *dims, const void *raw, size_t len)
{
    pb t = tensor_head(name, dtype, ndim, dims);
    pb_bytes(&t, 9, raw, len);
    return t;
}

static void pb_kv(pb *b, int field, const char *k, const char *v)
{
    pb e = { 0 };
    pb_str(&e, 1, k);
    pb_str(&e, 2, v);
    pb_msg(b, field, &e);
}

static const float W[6] = { 1, 2, 3, 4, 5, 6 };   /* w: f32 [2, 3] */

/* The standard test model: y = MatMul(x f32 [N, 2], w f32 [2, 3]), node "mm".
 * Each knob left 0 / NULL keeps the default. */
typedef struct mopts {
    int64_t ir;             /* 8 */
    int64_t opset;          /* 13; < 0: no opset_import */
    const char *op;         /* "MatMul" */
    const char *node_name;  /* "mm" */
    pb *init;               /* the initializer "w" (consumed); NULL: raw f32 W */
    pb *attr;               /* one attribute of the node (consumed) */
    pb *extra_node;         /* one more node (consumed), before "mm" */
    bool w_as_input;        /* list "w" among the graph inputs too (older exporters) */
} mopts;

static pb model(const mopts *o)
{
    pb m = { 0 }, g = { 0 }, n = { 0 };
    pb_int(&m, 1, o->ir ? o->ir : 8);
    pb_str(&m, 2, "test-encoder");
    pb_str(&m, 3, "0.1");
    if (o->extra_node) pb_msg(&g, 1, o->extra_node);
    pb_str(&n, 1, "x");
    pb_str(&n, 1, "w");
    pb_str(&n, 2, "y");
    pb_str(&n, 3, o->node_name ? o->node_name : "mm");
    pb_str(&n, 4, o->op ? o->op : "MatMul");
    if (o->attr) pb_msg(&n, 5, o->attr);
    pb_msg(&g, 1, &n);
    pb_str(&g, 2, "g");
    if (o->init) {
        pb_msg(&g, 5, o->init);
    } else {
        pb w = tensor_raw("w", 1, 2, (int64_t[]){ 2, 3 }, W, sizeof W);
        pb_msg(&g, 5, &w);
    }
    pb x = vi("x", 1, 2, (int64_t[]){ -1, 2 }, (const char *[]){ "N", NULL });
    pb_msg(&g, 11, &x);
    if (o->w_as_input) {
        pb wi = vi("w", 1, 2, (int64_t[]){ 2, 3 }, NULL);
        pb_msg(&g, 11, &wi);
    }
    pb y = vi("y", 1, 2, (int64_t[]){ -1, 3 }, (const char *[]){ "N", NULL });
    pb_msg(&g, 12, &y);
    pb_msg(&m, 7, &g);
    if (o->opset >= 0) {
        pb os = { 0 };
        pb_str(&os, 1, "");
        pb_int(&os, 2, o->opset ? o->opset : 13);
        pb_msg(&m, 8, &os);
    }
    pb_kv(&m, 14, "author", "test");
    return m;
}

/* Writes m (freed) to tmpdir/name and loads it. */
static ts_graph *load_model(const char *name, pb *m)
{
    const char *p = check_write_file(name, m->p, m->n);
    free(m->p);
    *m = (pb){ 0 };
    ts_clear_error();
    ts_graph *g = ts_onnx_load(p);
    if (!g) CHECK(strstr(ts_last_error(), name) != NULL);   /* every message names the file */
    return g;
}

static ts_graph *load_opts(const char *name, mopts o)
{
    pb m = model(&o);
    return load_model(name, &m);
}

/* ---- running ---------------------------------------------------------------------------- */

/* Runs g on one input; a new reference or NULL (message printed). */
static ts_tensor *run1(const ts_graph *g, ts_tensor *x)
{
    ts_exec *e = ts_exec_new(g, NULL);
    if (!e) { fprintf(stderr, "  exec_new: %s\n", ts_last_error()); return NULL; }
    ts_tensor *y = NULL;
    if (ts_exec_run(e, &x, 1, &y, 1) != TS_OK) fprintf(stderr, "  exec_run: %s\n", ts_last_error());
    ts_exec_free(e);
    return y;
}

static int count_initializers(const ts_graph *g)
{
    int n = 0;
    for (int i = 0; i < ts_graph_value_count(g); i++)
        if (ts_graph_val(g, i)->constant && ts_graph_val(g, i)->is_initializer) n++;
    return n;
}

/* ---- the committed PyTorch exports ---------------------------------------------------------- */

static const char *const SMALL[] = { "mlp_op13", "mlp_op17", "cnn_op13", "cnn_op17" };

static void test_structure(void)
{
    char rel[256];
    for (int k = 0; k < 4; k++) {
        snprintf(rel, sizeof rel, "fixtures/onnx/%s/model.onnx", SMALL[k]);
        ts_graph *g = ts_onnx_load(check_tests_path(rel));
        CHECK(g != NULL);
        if (!g) { fprintf(stderr, "  %s\n", ts_last_error()); continue; }
        bool mlp = SMALL[k][0] == 'm';
        const char *ver = NULL;
        CHECK(strcmp(ts_graph_producer(g, &ver), "pytorch") == 0 && ver && strcmp(ver, "1.13.0") == 0);
        CHECK(ts_graph_opset(g, "") == (strstr(SMALL[k], "13") ? 13 : 17));
        CHECK(ts_graph_input_count(g) == 1 && ts_graph_output_count(g) == 1);
        const ts_gvalue *in = ts_graph_val(g, ts_graph_input(g, 0));
        CHECK(strcmp(in->name, "input") == 0 && in->dtype == TS_F32 && in->ndim == (mlp ? 2 : 4));
        CHECK(in->dims[0].size < 0 && in->dims[0].sym >= 0 && strcmp(ts_graph_symbol_name(g, in->dims[0].sym), "batch") == 0);
        CHECK(in->dims[1].size == (mlp ? 16 : 1));
        const ts_gvalue *out = ts_graph_val(g, ts_graph_output(g, 0));
        CHECK(strcmp(out->name, "output") == 0 && out->dtype == TS_F32 && out->ndim == 2);
        CHECK(out->dims[1].size == (mlp ? 10 : 5) && out->dims[0].sym == in->dims[0].sym);
        /* mlp: 2 x (weight, bias); cnn: 2 convs (BN folded in) + the linear layer */
        CHECK(count_initializers(g) == (mlp ? 4 : 6));
        CHECK(ts_graph_node_count(g) == (mlp ? 4 : 8));
        /* nodes are sorted and named uniquely */
        for (int i = 0; i < ts_graph_node_count(g); i++)
            for (int j = 0; j < i; j++) CHECK(strcmp(ts_graph_node(g, i)->name, ts_graph_node(g, j)->name) != 0);
        if (mlp) {
            const ts_gnode *n0 = ts_graph_node(g, 0);
            CHECK(strcmp(n0->op_type, "Gemm") == 0 && ts_gnode_int(n0, "transB", 0) == 1);
            CHECK(ts_gnode_float(n0, "alpha", 0) == 1.0);
            const ts_gnode *sm = ts_graph_node(g, 3);
            CHECK(strcmp(sm->op_type, "Softmax") == 0 && ts_gnode_int(sm, "axis", 0) == -1);
            CHECK(strcmp(n0->name, "/0/Gemm") == 0 && strcmp(ts_graph_val(g, n0->inputs[1])->name, "0.weight") == 0);
        } else {
            const ts_gnode *c = ts_graph_node(g, 0);
            int64_t n = 0;
            const int64_t *ks = ts_gnode_ints(c, "kernel_shape", &n);
            CHECK(strcmp(c->op_type, "Conv") == 0 && n == 2 && ks && ks[0] == 3 && ks[1] == 3);
            const ts_gvalue *w = ts_graph_val(g, c->inputs[1]);
            CHECK(w->constant && w->constant->ndim == 4 && w->constant->shape[0] == 4 && w->constant->dtype == TS_F32);
        }
        ts_graph_free(g);
    }
}

static void test_run_small(void)
{
    char rel[256];
    for (int k = 0; k < 4; k++) {
        snprintf(rel, sizeof rel, "fixtures/onnx/%s/model.onnx", SMALL[k]);
        ts_graph *g = ts_onnx_load(check_tests_path(rel));
        snprintf(rel, sizeof rel, "fixtures/onnx/%s/input.npy", SMALL[k]);
        ts_tensor *x = ts_npy_read(check_tests_path(rel));
        snprintf(rel, sizeof rel, "fixtures/onnx/%s/expected.npy", SMALL[k]);
        ts_tensor *want = ts_npy_read(check_tests_path(rel));
        CHECK(g && x && want);
        if (g && x && want) {
            ts_tensor *y = run1(g, x);
            double d = check_max_abs_diff(y, want);
            printf("  %s: max abs difference vs PyTorch %.3g\n", SMALL[k], d);
            CHECK(d <= 1e-4);
            ts_tensor_release(y);
            /* the same after inference (shapes made concrete, constants folded) */
            CHECK(ts_graph_infer(g, (const char *[]){ "batch" }, (int64_t[]){ x->shape[0] }, 1) == TS_OK);
            const ts_gvalue *out = ts_graph_val(g, ts_graph_output(g, 0));
            CHECK(out->dims[0].size == x->shape[0]);
            y = run1(g, x);
            CHECK(check_max_abs_diff(y, want) <= 1e-4);
            ts_tensor_release(y);
        }
        ts_tensor_release(x);
        ts_tensor_release(want);
        ts_graph_free(g);
    }
}

/* Same names, ops, wiring, attributes and constants. */
static void check_same_graph(const ts_graph *a, const ts_graph *b)
{
    CHECK(ts_graph_input_count(a) == ts_graph_input_count(b) && ts_graph_output_count(a) == ts_graph_output_count(b));
    CHECK(ts_graph_node_count(a) == ts_graph_node_count(b));
    CHECK(count_initializers(a) == count_initializers(b));
    CHECK(ts_graph_opset(a, "") == ts_graph_opset(b, ""));
    for (int i = 0; i < ts_graph_input_count(a) && i < ts_graph_input_count(b); i++) {
        const ts_gvalue *va = ts_graph_val(a, ts_graph_input(a, i)), *vb = ts_graph_val(b, ts_graph_input(b, i));
        CHECK(strcmp(va->name, vb->name) == 0 && va->dtype == vb->dtype && va->ndim == vb->ndim);
        for (int d = 0; d < va->ndim && d < vb->ndim; d++) {
            CHECK(va->dims[d].size == vb->dims[d].size);
            if (va->dims[d].sym >= 0)
                CHECK(vb->dims[d].sym >= 0 && strcmp(ts_graph_symbol_name(a, va->dims[d].sym),
                                                     ts_graph_symbol_name(b, vb->dims[d].sym)) == 0);
        }
    }
    for (int i = 0; i < ts_graph_node_count(a) && i < ts_graph_node_count(b); i++) {
        const ts_gnode *na = ts_graph_node(a, i), *nb = ts_graph_node(b, i);
        CHECK(strcmp(na->name, nb->name) == 0 && strcmp(na->op_type, nb->op_type) == 0);
        CHECK(na->n_inputs == nb->n_inputs && na->n_outputs == nb->n_outputs && na->n_attrs == nb->n_attrs);
        for (int j = 0; j < na->n_inputs && j < nb->n_inputs; j++) {
            CHECK((na->inputs[j] < 0) == (nb->inputs[j] < 0));
            if (na->inputs[j] >= 0 && nb->inputs[j] >= 0) {
                const ts_gvalue *va = ts_graph_val(a, na->inputs[j]), *vb = ts_graph_val(b, nb->inputs[j]);
                CHECK(strcmp(va->name, vb->name) == 0);
                CHECK(!va->constant == !vb->constant);
                if (va->constant && vb->constant) CHECK(check_max_abs_diff(va->constant, vb->constant) == 0);
            }
        }
        for (int j = 0; j < na->n_attrs && j < nb->n_attrs; j++) {
            const ts_attr *x = &na->attrs[j], *y = ts_gnode_attr(nb, x->name);
            CHECK(y && y->type == x->type);
            if (!y || y->type != x->type) continue;
            if (x->type == TS_ATTR_INT) CHECK(x->i == y->i);
            if (x->type == TS_ATTR_FLOAT) CHECK((float)x->f == (float)y->f);
            if (x->type == TS_ATTR_INTS) CHECK(x->n == y->n && (x->n == 0 || memcmp(x->ints, y->ints, (size_t)x->n * 8) == 0));
        }
    }
}

static void test_roundtrip_small(void)
{
    char rel[256];
    for (int k = 0; k < 4; k++) {
        snprintf(rel, sizeof rel, "fixtures/onnx/%s/model.onnx", SMALL[k]);
        ts_graph *g = ts_onnx_load(check_tests_path(rel));
        snprintf(rel, sizeof rel, "fixtures/onnx/%s/input.npy", SMALL[k]);
        ts_tensor *x = ts_npy_read(check_tests_path(rel));
        CHECK(g && x);
        if (!g || !x) { ts_graph_free(g); ts_tensor_release(x); continue; }
        ts_tensor *y0 = run1(g, x);
        for (int ext = 0; ext < 2; ext++) {
            char name[64];
            snprintf(name, sizeof name, "%s%s.onnx", SMALL[k], ext ? "_ext" : "");
            const char *p = check_tmp_path(name);
            ts_onnx_save_options o = { .external_data = ext, .external_min_bytes = ext ? 64 : 0 };
            CHECK(ts_onnx_save(g, p, &o) == TS_OK);
            char data[600];
            snprintf(data, sizeof data, "%s.data", p);
            CHECK(file_exists(data) == (ext == 1));
            ts_graph *h = ts_onnx_load(p);
            CHECK(h != NULL);
            if (!h) { fprintf(stderr, "  %s\n", ts_last_error()); continue; }
            const char *ver = NULL;
            CHECK(strcmp(ts_graph_producer(h, &ver), "torsh") == 0 && ver && strcmp(ver, TS_VERSION_STRING) == 0);
            check_same_graph(g, h);
            ts_tensor *y1 = run1(h, x);
            CHECK(y0 && y1 && check_max_abs_diff(y0, y1) == 0);
            ts_tensor_release(y1);
            ts_graph_free(h);
        }
        ts_tensor_release(y0);
        ts_tensor_release(x);
        ts_graph_free(g);
    }
    /* the file layout written: IR 8 for opset 13, IR 9 for 19, the opset option */
    ts_graph *g = ts_onnx_load(check_tests_path("fixtures/onnx/mlp_op13/model.onnx"));
    CHECK(g != NULL);
    if (!g) return;
    const char *p = check_tmp_path("opset.onnx");
    CHECK(ts_onnx_save(g, p, &(ts_onnx_save_options){ .opset = 19 }) == TS_OK);
    ts_graph *h = ts_onnx_load(p);
    CHECK(h && ts_graph_opset(h, "") == 19);
    ts_graph_free(h);
    CHECK(ts_onnx_save(g, p, &(ts_onnx_save_options){ .opset = 22 }) != TS_OK && check_error_has("opset 22"));
    ts_graph_free(g);
}

/* ---- models built here ----------------------------------------------------------------------- */

static void test_standard_model(void)
{
    ts_graph *g = load_opts("std.onnx", (mopts){ .w_as_input = true });
    CHECK(g != NULL);
    if (!g) { fprintf(stderr, "  %s\n", ts_last_error()); return; }
    /* w is an initializer, so it is not a graph input even though listed as one */
    CHECK(ts_graph_input_count(g) == 1 && strcmp(ts_graph_val(g, ts_graph_input(g, 0))->name, "x") == 0);
    const ts_gvalue *w = ts_graph_val(g, ts_graph_find_value(g, "w"));
    CHECK(w->constant && w->is_initializer && w->dtype == TS_F32 && w->ndim == 2);
    CHECK(w->constant && ts_tensor_item_at(w->constant, 5) == 6 && ts_tensor_item_at(w->constant, 1) == 2);
    const char *k, *v;
    CHECK(ts_graph_meta_count(g) == 1);
    ts_graph_meta_at(g, 0, &k, &v);
    CHECK(strcmp(k, "author") == 0 && strcmp(v, "test") == 0);
    CHECK(strcmp(ts_graph_name(g), "g") == 0);
    ts_tensor *x = ts_tensor_from_data((float[]){ 1, 1, 0, 2 }, TS_F32, (int64_t[]){ 2, 2 }, 2, TS_F32);
    ts_tensor *y = run1(g, x);
    CHECK(y && y->shape[0] == 2 && y->shape[1] == 3);
    if (y) CHECK(ts_tensor_item_at(y, 0) == 5 && ts_tensor_item_at(y, 2) == 9 && ts_tensor_item_at(y, 5) == 12);
    ts_tensor_release(y);
    ts_tensor_release(x);
    ts_graph_free(g);
}

static void test_truncation(void)
{
    mopts o = { 0 };
    pb m = model(&o);
    int64_t before = ts_mem_get_stats(TS_CPU).live_bytes;
    int refused = 0, said_truncated = 0;
    for (size_t n = 0; n < m.n; n++) {
        ts_clear_error();
        ts_graph *g = ts_onnx_load_buffer(m.p, n, "cut.onnx", NULL);
        if (g) { ts_graph_free(g); continue; }
        refused++;
        CHECK(strstr(ts_last_error(), "onnx_load: cut.onnx: ") == ts_last_error());
        if (strstr(ts_last_error(), "truncated")) said_truncated++;
    }
    /* a prefix ending on a field boundary may still be a (different) valid
     * message; every other cut is refused, most as truncated */
    CHECK(refused > (int)m.n * 3 / 4 && said_truncated > (int)m.n / 2);
    /* a cut inside w's raw_data names the byte offset and the path of the field */
    size_t at = 0;
    for (size_t i = 0; i + sizeof W <= m.n; i++)
        if (memcmp(m.p + i, W, sizeof W) == 0) at = i;
    CHECK(at > 0);
    const char *p = check_write_file("cut_raw.onnx", m.p, at + 10);
    CHECK(!ts_onnx_load(p) && check_error_has("cut_raw.onnx") && check_error_has("truncated") && check_error_has("in graph"));
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes == before);
    free(m.p);
    CHECK(!ts_onnx_load(check_write_file("empty.onnx", "", 0)) && check_error_has("empty file"));
    CHECK(!ts_onnx_load(check_tmp_path("missing.onnx")) && check_error_has("cannot open") && check_error_has("missing.onnx"));
    CHECK(!ts_onnx_load(tmpdir) && check_error_has("not a regular file"));
    const char junk[] = "this is not a protobuf at all";
    CHECK(!ts_onnx_load(check_write_file("junk.onnx", junk, sizeof junk - 1)) && check_error_has("junk.onnx"));
}

static void test_sizes_and_versions(void)
{
    /* raw_data one float short */
    pb w = tensor_raw("w", 1, 2, (int64_t[]){ 2, 3 }, W, sizeof W - 4);
    CHECK(!load_opts("short_raw.onnx", (mopts){ .init = &w }) &&
          check_error_has("initializer 'w': raw_data has 20 bytes, expected 24"));
    /* raw_data claiming 2^62 elements in a 24-byte field */
    w = tensor_raw("w", 1, 2, (int64_t[]){ 1ll << 31, 1ll << 31 }, W, sizeof W);
    int64_t before = ts_mem_get_stats(TS_CPU).peak_bytes;
    CHECK(!load_opts("huge_dims.onnx", (mopts){ .init = &w }) && check_error_has("initializer 'w'"));
    CHECK(ts_mem_get_stats(TS_CPU).peak_bytes - before < (1 << 20));
    w = tensor_raw("w", 1, 2, (int64_t[]){ 2, -3 }, W, sizeof W);
    CHECK(!load_opts("neg_dim.onnx", (mopts){ .init = &w }) && check_error_has("initializer 'w': dim 1 is negative (-3)"));
    int64_t nine[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    w = tensor_raw("w", 1, 9, nine, W, 4);
    CHECK(!load_opts("rank9.onnx", (mopts){ .init = &w }) && check_error_has("initializer 'w' has rank 9"));
    /* dtypes torsh lacks */
    w = tensor_raw("w", 14, 2, (int64_t[]){ 1, 3 }, W, sizeof W);
    CHECK(!load_opts("c64.onnx", (mopts){ .init = &w }) && check_error_has("initializer 'w' has data type COMPLEX64"));
    w = tensor_head("w", 8, 1, (int64_t[]){ 1 });
    pb_bytes(&w, 6, "hi", 2);
    CHECK(!load_opts("string.onnx", (mopts){ .init = &w }) && check_error_has("initializer 'w' has data type STRING"));
    /* versions */
    CHECK(!load_opts("opset22.onnx", (mopts){ .opset = 22 }) && check_error_has("opset 22") && check_error_has("max 21"));
    ts_graph *g = load_opts("opset21.onnx", (mopts){ .opset = 21, .ir = 10 });
    CHECK(g && ts_graph_opset(g, "") == 21);
    ts_graph_free(g);
    CHECK(!load_opts("ir99.onnx", (mopts){ .ir = 99 }) && check_error_has("IR version 99"));
    CHECK(!load_opts("noopset.onnx", (mopts){ .opset = -1 }) && check_error_has("opset"));
    /* two initializers with one name */
    pb w2 = tensor_raw("w", 1, 2, (int64_t[]){ 2, 3 }, W, sizeof W);
    pb m = model(&(mopts){ 0 });
    /* append a second graph field holding another "w": protobuf merges repeated fields */
    pb g2 = { 0 };
    pb_msg(&g2, 5, &w2);
    pb_msg(&m, 7, &g2);
    CHECK(!load_model("dup_init.onnx", &m) && check_error_has("initializer 'w' is defined twice"));
}

static void test_typed_fields(void)
{
    /* float_data, packed (as onnx writes it) */
    pb w = tensor_head("w", 1, 2, (int64_t[]){ 2, 3 });
    pb_bytes(&w, 4, W, sizeof W);
    ts_graph *g = load_opts("float_data.onnx", (mopts){ .init = &w });
    CHECK(g && ts_tensor_item_at(ts_graph_val(g, ts_graph_find_value(g, "w"))->constant, 4) == 5);
    ts_graph_free(g);
    /* float_data unpacked (one fixed32 field per value) is accepted too */
    w = tensor_head("w", 1, 2, (int64_t[]){ 2, 3 });
    for (int i = 0; i < 6; i++) pb_float(&w, 4, W[i]);
    g = load_opts("float_unpacked.onnx", (mopts){ .init = &w });
    CHECK(g && ts_tensor_item_at(ts_graph_val(g, ts_graph_find_value(g, "w"))->constant, 5) == 6);
    ts_graph_free(g);
    w = tensor_head("w", 1, 2, (int64_t[]){ 2, 3 });
    pb_bytes(&w, 4, W, 4 * 5);
    CHECK(!load_opts("float_short.onnx", (mopts){ .init = &w }) && check_error_has("float_data has 5 values, expected 6"));
    w = tensor_head("w", 1, 2, (int64_t[]){ 2, 3 });
    CHECK(!load_opts("nodata.onnx", (mopts){ .init = &w }) && check_error_has("has no data"));

    /* every other dtype through an unused extra initializer */
    struct { int onnx; ts_dtype dt; int field; } cases[] = {
        { 3, TS_I8, 5 }, { 2, TS_U8, 5 }, { 5, TS_I16, 5 }, { 6, TS_I32, 5 }, { 9, TS_BOOL, 5 },
        { 7, TS_I64, 7 }, { 11, TS_F64, 10 }, { 10, TS_F16, 5 }, { 16, TS_BF16, 5 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        pb m = model(&(mopts){ 0 });
        pb extra = { 0 }, t = tensor_head("v", cases[c].onnx, 1, (int64_t[]){ 3 });
        pb packed = { 0 };
        if (cases[c].field == 10) {
            double d[3] = { -1.5, 0, 2.25 };
            pb_raw(&packed, d, sizeof d);
        } else if (cases[c].dt == TS_F16) {
            int64_t h[3] = { 0xBE00, 0, 0x4080 };   /* -1.5, 0, 2.25 */
            for (int i = 0; i < 3; i++) pb_varint(&packed, (uint64_t)h[i]);
        } else if (cases[c].dt == TS_BF16) {
            int64_t h[3] = { 0xBFC0, 0, 0x4010 };
            for (int i = 0; i < 3; i++) pb_varint(&packed, (uint64_t)h[i]);
        } else {
            int64_t v[3] = { -1, 0, 2 };
            if (cases[c].dt == TS_U8) v[0] = 255;
            if (cases[c].dt == TS_BOOL) v[0] = 1;
            for (int i = 0; i < 3; i++) pb_varint(&packed, (uint64_t)v[i]);
        }
        pb_msg(&t, cases[c].field, &packed);
        pb_msg(&extra, 5, &t);
        pb_msg(&m, 7, &extra);
        g = load_model("typed.onnx", &m);
        CHECK(g != NULL);
        if (!g) { fprintf(stderr, "  dtype %d: %s\n", cases[c].onnx, ts_last_error()); continue; }
        const ts_tensor *v = ts_graph_val(g, ts_graph_find_value(g, "v"))->constant;
        CHECK(v && v->dtype == cases[c].dt && v->ndim == 1 && v->shape[0] == 3);
        if (v) {
            double want0 = cases[c].dt == TS_U8 ? 255 : cases[c].dt == TS_BOOL ? 1 : ts_dtype_is_float(cases[c].dt) ? -1.5 : -1;
            double want2 = ts_dtype_is_float(cases[c].dt) ? 2.25 : cases[c].dt == TS_BOOL ? 1 : 2;
            CHECK(ts_tensor_item_at(v, 0) == want0 && ts_tensor_item_at(v, 1) == 0 && ts_tensor_item_at(v, 2) == want2);
        }
        ts_graph_free(g);
    }
}

static void test_nodes_and_attributes(void)
{
    /* attributes of every type, one of them without a `type` field (IR 1 style) */
    pb m = { 0 }, g = { 0 }, n = { 0 }, a;
    pb_int(&m, 1, 8);
    pb_str(&n, 1, "x");
    pb_str(&n, 2, "y");
    pb_str(&n, 4, "Custom");
    pb_str(&n, 7, "my.domain");
    a = (pb){ 0 }; pb_str(&a, 1, "f"); pb_float(&a, 2, 0.5f); pb_int(&a, 20, 1); pb_msg(&n, 5, &a);
    a = (pb){ 0 }; pb_str(&a, 1, "i"); pb_int(&a, 3, -7); pb_msg(&n, 5, &a);   /* no type */
    a = (pb){ 0 }; pb_str(&a, 1, "s"); pb_bytes(&a, 4, "abc", 3); pb_int(&a, 20, 3); pb_msg(&n, 5, &a);
    pb t = tensor_raw(NULL, 7, 1, (int64_t[]){ 2 }, (int64_t[]){ 40, -2 }, 16);
    a = (pb){ 0 }; pb_str(&a, 1, "t"); pb_msg(&a, 5, &t); pb_int(&a, 20, 4); pb_msg(&n, 5, &a);
    a = (pb){ 0 }; pb_str(&a, 1, "fs"); pb_float(&a, 7, 1.5f); pb_float(&a, 7, -2); pb_int(&a, 20, 6); pb_msg(&n, 5, &a);
    a = (pb){ 0 }; pb_str(&a, 1, "is"); pb_int(&a, 8, 3); pb_int(&a, 8, -1); pb_int(&a, 8, 9); pb_int(&a, 20, 7); pb_msg(&n, 5, &a);
    a = (pb){ 0 }; pb_str(&a, 1, "ss"); pb_str(&a, 9, "p"); pb_str(&a, 9, "qr"); pb_int(&a, 20, 8); pb_msg(&n, 5, &a);
    pb_msg(&g, 1, &n);
    /* a nameless Relu, two nodes called "dup", a Constant node */
    const char *names[3] = { "", "dup", "dup" };
    const char *ins[3] = { "y", "r0", "r1" }, *outs[3] = { "r0", "r1", "r2" };
    for (int i = 0; i < 3; i++) {
        pb r = { 0 };
        pb_str(&r, 1, ins[i]);
        pb_str(&r, 2, outs[i]);
        if (*names[i]) pb_str(&r, 3, names[i]);
        pb_str(&r, 4, "Relu");
        pb_msg(&g, 1, &r);
    }
    pb c = { 0 };
    pb_str(&c, 2, "k");
    pb_str(&c, 3, "const");
    pb_str(&c, 4, "Constant");
    a = (pb){ 0 }; pb_str(&a, 1, "value_ints"); pb_int(&a, 8, 4); pb_int(&a, 8, 5); pb_int(&a, 20, 7); pb_msg(&c, 5, &a);
    pb_msg(&g, 1, &c);
    pb x = vi("x", 1, 1, (int64_t[]){ 4 }, NULL), y = vi("r2", 1, 1, (int64_t[]){ 4 }, NULL);
    pb k = vi("k", 7, 1, (int64_t[]){ 2 }, NULL);
    pb_msg(&g, 11, &x);
    pb_msg(&g, 12, &y);
    pb_msg(&g, 12, &k);
    pb_msg(&m, 7, &g);
    pb os = { 0 };
    pb_int(&os, 2, 17);
    pb_msg(&m, 8, &os);
    os = (pb){ 0 };
    pb_str(&os, 1, "my.domain");
    pb_int(&os, 2, 3);
    pb_msg(&m, 8, &os);
    ts_graph *gr = load_model("attrs.onnx", &m);
    CHECK(gr != NULL);
    if (!gr) { fprintf(stderr, "  %s\n", ts_last_error()); return; }
    CHECK(ts_graph_opset(gr, "my.domain") == 3 && ts_graph_opset(gr, "") == 17);
    CHECK(ts_graph_node_count(gr) == 4);   /* the Constant became a constant value */
    int custom = -1;
    for (int i = 0; i < ts_graph_node_count(gr); i++)
        if (strcmp(ts_graph_node(gr, i)->op_type, "Custom") == 0) custom = i;
    CHECK(custom >= 0);
    if (custom >= 0) {
        const ts_gnode *nd = ts_graph_node(gr, custom);
        CHECK(strcmp(nd->domain, "my.domain") == 0 && nd->n_attrs == 7);
        CHECK(ts_gnode_float(nd, "f", 0) == 0.5 && ts_gnode_int(nd, "i", 0) == -7);
        CHECK(strcmp(ts_gnode_string(nd, "s", ""), "abc") == 0);
        const ts_attr *at = ts_gnode_attr(nd, "t");
        CHECK(at && at->type == TS_ATTR_TENSOR && at->t && at->t->dtype == TS_I64 && ts_tensor_item_at(at->t, 0) == 40);
        at = ts_gnode_attr(nd, "fs");
        CHECK(at && at->type == TS_ATTR_FLOATS && at->n == 2 && at->floats[0] == 1.5 && at->floats[1] == -2);
        int64_t ni = 0;
        const int64_t *iv = ts_gnode_ints(nd, "is", &ni);
        CHECK(ni == 3 && iv && iv[1] == -1 && iv[2] == 9);
        at = ts_gnode_attr(nd, "ss");
        CHECK(at && at->type == TS_ATTR_STRINGS && at->n == 2 && strcmp(at->strings[1], "qr") == 0);
    }
    /* names: unique, generated for the nameless one */
    for (int i = 0; i < ts_graph_node_count(gr); i++) {
        CHECK(ts_graph_node(gr, i)->name[0] != '\0');
        for (int j = 0; j < i; j++) CHECK(strcmp(ts_graph_node(gr, i)->name, ts_graph_node(gr, j)->name) != 0);
    }
    const ts_gvalue *kv = ts_graph_val(gr, ts_graph_find_value(gr, "k"));
    CHECK(kv->constant && !kv->is_initializer && kv->dtype == TS_I64 && ts_tensor_item_at(kv->constant, 1) == 5);
    /* an unknown op loads, and ts_exec_new names it with the supported ops */
    ts_clear_error();
    ts_exec *e = ts_exec_new(gr, NULL);
    CHECK(!e && check_error_has("Custom") && check_error_has("supported ops"));
    ts_exec_free(e);
    /* export keeps the attributes, domains and the constant */
    const char *p = check_tmp_path("attrs_rt.onnx");
    CHECK(ts_onnx_save(gr, p, NULL) == TS_OK);
    ts_graph *h = ts_onnx_load(p);
    CHECK(h != NULL);
    if (h) {
        check_same_graph(gr, h);
        CHECK(ts_graph_opset(h, "my.domain") == 3);
        const ts_gvalue *k2 = ts_graph_val(h, ts_graph_find_value(h, "k"));
        CHECK(k2->constant && ts_tensor_item_at(k2->constant, 0) == 4);
        for (int i = 0; i < ts_graph_node_count(h); i++)
            if (strcmp(ts_graph_node(h, i)->op_type, "Custom") == 0) {
                const ts_gnode *nd = ts_graph_node(h, i);
                CHECK(strcmp(ts_gnode_string(nd, "s", ""), "abc") == 0);
                const ts_attr *at = ts_gnode_attr(nd, "ss");
                CHECK(at && at->n == 2 && strcmp(at->strings[0], "p") == 0);
                at = ts_gnode_attr(nd, "t");
                CHECK(at && at->t && ts_tensor_item_at(at->t, 1) == -2);
            }
    }
    ts_graph_free(h);
    ts_graph_free(gr);

    /* a subgraph attribute (If) is refused naming the node and the op */
    a = (pb){ 0 };
    pb sub = { 0 };
    pb_str(&sub, 2, "then");
    pb_str(&a, 1, "then_branch");
    pb_msg(&a, 6, &sub);
    pb_int(&a, 20, 5);
    CHECK(!load_opts("if.onnx", (mopts){ .op = "If", .node_name = "branch", .attr = &a }) &&
          check_error_has("node 'branch' (If)") && check_error_has("then_branch") && check_error_has("not supported"));
    /* a node writing an initializer, a node output written twice */
    pb dup = { 0 };
    pb_str(&dup, 1, "x");
    pb_str(&dup, 2, "w");
    pb_str(&dup, 3, "clobber");
    pb_str(&dup, 4, "Relu");
    CHECK(!load_opts("write_init.onnx", (mopts){ .extra_node = &dup }) && check_error_has("node 'clobber' (Relu)") &&
          check_error_has("initializer"));
    dup = (pb){ 0 };
    pb_str(&dup, 1, "x");
    pb_str(&dup, 2, "y");
    pb_str(&dup, 3, "first");
    pb_str(&dup, 4, "Relu");
    CHECK(!load_opts("write_twice.onnx", (mopts){ .extra_node = &dup }) && check_error_has("'y'") && check_error_has("first"));
    /* a node reading a value nothing defines fails the sort */
    dup = (pb){ 0 };
    pb_str(&dup, 1, "nowhere");
    pb_str(&dup, 2, "z");
    pb_str(&dup, 3, "orphan");
    pb_str(&dup, 4, "Relu");
    CHECK(!load_opts("orphan.onnx", (mopts){ .extra_node = &dup }) && check_error_has("nowhere"));
}

static void test_more_refusals(void)
{
    /* an unknown op loads; ts_exec_new names the node, the op and the supported ops */
    ts_graph *g = load_opts("fooop.onnx", (mopts){ .op = "FooOp" });
    CHECK(g != NULL);
    ts_exec *e = g ? ts_exec_new(g, NULL) : NULL;
    CHECK(g && !e && check_error_has("node 'mm' (FooOp)") && check_error_has("supported ops: ") && check_error_has("MatMul"));
    ts_exec_free(e);
    ts_graph_free(g);
    /* a call of a model-local function */
    pb m = model(&(mopts){ .op = "MyFn" });
    pb fn = { 0 };
    pb_str(&fn, 1, "MyFn");
    pb_msg(&m, 25, &fn);
    CHECK(!load_model("function.onnx", &m) && check_error_has("node 'mm' (MyFn) calls the model-local function MyFn"));
    /* graph inputs: negative dim, rank 9, a sequence type, a STRING tensor */
    struct { int64_t dims[9]; int ndim; int elem; const char *want; } bad[] = {
        { { 2, -5 }, 2, 1, "graph input 'v': dim 1 is negative (-5)" },
        { { 1, 1, 1, 1, 1, 1, 1, 1, 1 }, 9, 1, "graph input 'v' has rank 9" },
        { { 1 }, 1, 8, "graph input 'v' has data type STRING" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        m = model(&(mopts){ 0 });
        pb gx = { 0 }, v = vi("v", bad[i].elem, bad[i].ndim, bad[i].dims, NULL);
        pb_msg(&gx, 11, &v);
        pb_msg(&m, 7, &gx);
        CHECK(!load_model("bad_input.onnx", &m) && check_error_has(bad[i].want));
    }
    m = model(&(mopts){ 0 });
    pb gx = { 0 }, v = { 0 }, ty = { 0 }, seq = { 0 };
    pb_str(&v, 1, "v");
    pb_msg(&ty, 4, &seq);
    pb_msg(&v, 2, &ty);
    pb_msg(&gx, 11, &v);
    pb_msg(&m, 7, &gx);
    CHECK(!load_model("seq_input.onnx", &m) && check_error_has("graph input 'v' is a sequence"));
    /* a sparse initializer */
    m = model(&(mopts){ 0 });
    gx = (pb){ 0 };
    pb_bytes(&gx, 15, "", 0);
    pb_msg(&m, 7, &gx);
    CHECK(!load_model("sparse.onnx", &m) && check_error_has("sparse"));
    /* no graph, no ir_version, a wrong wire type */
    pb only = { 0 };
    pb_int(&only, 1, 8);
    CHECK(!load_model("nograph.onnx", &only) && check_error_has("no graph"));
    only = (pb){ 0 };
    pb_str(&only, 2, "producer");
    CHECK(!load_model("noir.onnx", &only) && check_error_has("no ir_version"));
    only = (pb){ 0 };
    pb_int(&only, 1, 8);
    pb_int(&only, 7, 3);   /* graph as a varint */
    CHECK(!load_model("wiretype.onnx", &only) && check_error_has("field 7 (graph) has wire type 0, expected 2"));
}

/* raw_data from 16 KiB on becomes the tensor's storage without a copy,
 * 64-byte aligned and counted; freeing the graph gives it all back */
static void test_big_raw_adopted(void)
{
    enum { N = 8192 };
    float *v = malloc(N * sizeof *v);
    for (int i = 0; i < N; i++) v[i] = (float)i - 100.25f;
    int64_t before = ts_mem_get_stats(TS_CPU).live_bytes;
    pb w = tensor_raw("w", 1, 2, (int64_t[]){ 2, N / 2 }, v, N * sizeof *v);
    pb m = model(&(mopts){ .init = &w });
    ts_graph *g = ts_onnx_load_buffer(m.p, m.n, "big.onnx", NULL);
    free(m.p);
    CHECK(g != NULL);
    if (g) {
        const ts_tensor *t = ts_graph_val(g, ts_graph_find_value(g, "w"))->constant;
        CHECK(t && t->shape[1] == N / 2 && ((uintptr_t)ts_tensor_data(t) % 64) == 0);
        CHECK(t && t->storage->kind == TS_STORAGE_HEAP && !t->storage->readonly);
        CHECK(t && memcmp(ts_tensor_data(t), v, N * sizeof *v) == 0);
        CHECK(ts_mem_get_stats(TS_CPU).live_bytes - before >= (int64_t)(N * sizeof *v));
    }
    ts_graph_free(g);
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes == before);
    free(v);
}

static void test_external_data(void)
{
    /* 64 KiB of f32 at offset 4096 (mapped) and 24 bytes at offset 3 (read) */
    enum { BIG = 16384 };
    float *big = malloc(BIG * sizeof(float));
    for (int i = 0; i < BIG; i++) big[i] = (float)i * 0.5f;
    const char *dp = check_tmp_path("weights.bin");
    FILE *f = fopen(dp, "wb");
    static const char pad[4096];
    fwrite(pad, 1, 3, f);
    fwrite(W, 1, sizeof W, f);
    fwrite(pad, 1, 4096 - 3 - sizeof W, f);
    fwrite(big, sizeof(float), BIG, f);
    fclose(f);
    free(big);

    for (int variant = 0; variant < 2; variant++) {
        pb m = model(&(mopts){ 0 });
        pb gx = { 0 }, t = tensor_head(variant ? "big" : "w2", 1, 1, (int64_t[]){ variant ? BIG : 6 });
        pb_kv(&t, 13, "location", "weights.bin");
        pb_kv(&t, 13, "offset", variant ? "4096" : "3");
        pb_kv(&t, 13, "length", variant ? "65536" : "24");
        pb_int(&t, 14, 1);
        pb_msg(&gx, 5, &t);
        pb_msg(&m, 7, &gx);
        ts_graph *g = load_model("ext.onnx", &m);
        CHECK(g != NULL);
        if (!g) { fprintf(stderr, "  %s\n", ts_last_error()); continue; }
        const ts_tensor *c = ts_graph_val(g, ts_graph_find_value(g, variant ? "big" : "w2"))->constant;
        CHECK(c && (variant ? ts_tensor_item_at(c, BIG - 1) == (BIG - 1) * 0.5 : ts_tensor_item_at(c, 5) == 6));
        if (c) CHECK(c->storage->kind == (variant ? TS_STORAGE_MMAP : TS_STORAGE_HEAP));
        ts_graph_free(g);
    }
    /* refusals */
    struct { const char *loc, *off, *len, *want; } bad[] = {
        { "../weights.bin", "0", "24", "refused" },
        { "sub/../../etc/passwd", "0", "24", "refused" },
        { "/etc/passwd", "0", "24", "refused" },
        { "nothere.bin", "0", "24", "cannot open external data" },
        { "weights.bin", "70000", "24", "past the end" },
        { "weights.bin", "0", "28", "length is 28 bytes, expected 24" },
        { "weights.bin", "-4", "24", "offset '-4' is not a number" },
        { "weights.bin", "99999999999999999999999", "24", "not a number" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pb t = tensor_head("w", 1, 2, (int64_t[]){ 2, 3 });
        pb_kv(&t, 13, "location", bad[i].loc);
        pb_kv(&t, 13, "offset", bad[i].off);
        pb_kv(&t, 13, "length", bad[i].len);
        pb_int(&t, 14, 1);
        ts_graph *g = load_opts("ext_bad.onnx", (mopts){ .init = &t });
        CHECK(!g && check_error_has("initializer 'w'") && check_error_has(bad[i].want));
        ts_graph_free(g);
    }
    /* from a buffer without a folder */
    pb t = tensor_head("w", 1, 2, (int64_t[]){ 2, 3 });
    pb_kv(&t, 13, "location", "weights.bin");
    pb_int(&t, 14, 1);
    pb m = model(&(mopts){ .init = &t });
    CHECK(!ts_onnx_load_buffer(m.p, m.n, "buf.onnx", NULL) && check_error_has("buf.onnx") && check_error_has("base_dir"));
    ts_graph *g = ts_onnx_load_buffer(m.p, m.n, "buf.onnx", tmpdir);
    CHECK(g && ts_tensor_item_at(ts_graph_val(g, ts_graph_find_value(g, "w"))->constant, 0) == 0);
    ts_graph_free(g);
    free(m.p);
}

static void test_save_failures(void)
{
    ts_graph *g = load_opts("save_src.onnx", (mopts){ 0 });
    CHECK(g != NULL);
    if (!g) return;
    CHECK(ts_onnx_save(g, "/nonexistent-dir/x.onnx", NULL) != TS_OK && check_error_has("x.onnx"));
    /* a folder in the way: the rename fails, no temporary file is left */
    const char *d = check_tmp_path("adir");
    mkdir(d, 0777);
    CHECK(ts_onnx_save(g, d, &(ts_onnx_save_options){ .external_data = true, .external_min_bytes = 1 }) != TS_OK);
    int leftovers = 0;
    DIR *dir = opendir(tmpdir);
    struct dirent *e;
    while (dir && (e = readdir(dir)) != NULL)
        if (strstr(e->d_name, ".tmp") || strstr(e->d_name, "adir.")) leftovers++;
    if (dir) closedir(dir);
    CHECK(leftovers == 0);
    /* replacing an existing file */
    const char *p = check_tmp_path("replace.onnx");
    check_write_file("replace.onnx", "old", 3);
    CHECK(ts_onnx_save(g, p, NULL) == TS_OK);
    ts_graph *h = ts_onnx_load(p);
    CHECK(h && ts_graph_node_count(h) == 1);
    ts_graph_free(h);
    ts_graph_free(g);
    /* a graph built in C, no opset: saved as opset 17; symbols become dim_params */
    ts_graph *b = ts_graph_new("built");
    int x = ts_graph_value(b, "x"), y = ts_graph_value(b, "y");
    ts_graph_set_info(b, x, TS_F32, 2, (ts_dim[]){ ts_dim_sym(b, "B"), ts_dim_of(3) });
    ts_graph_add_input(b, x);
    ts_graph_add_node(b, "Relu", "", NULL, &x, 1, &y, 1);
    ts_graph_add_output(b, y);
    CHECK(ts_onnx_save(b, check_tmp_path("built.onnx"), NULL) != TS_OK && check_error_has("'y' has no known dtype"));
    ts_graph_set_info(b, y, TS_F32, 2, (ts_dim[]){ ts_dim_sym(b, "B"), ts_dim_of(3) });
    CHECK(ts_onnx_save(b, check_tmp_path("built.onnx"), NULL) == TS_OK);
    h = ts_onnx_load(check_tmp_path("built.onnx"));
    CHECK(h && ts_graph_opset(h, "") == 17);
    if (h) {
        const ts_gvalue *v = ts_graph_val(h, ts_graph_output(h, 0));
        CHECK(v->dtype == TS_F32 && v->ndim == 2 && v->dims[0].sym >= 0 && strcmp(ts_graph_symbol_name(h, v->dims[0].sym), "B") == 0);
    }
    ts_graph_free(h);
    ts_graph_free(b);
}

typedef struct corpus_count { int loaded; } corpus_count;

static void load_seed(const char *path, const char *name, void *ctx)
{
    ts_clear_error();
    ts_graph *g = ts_onnx_load(path);
    CHECK(g || ts_last_error()[0] != '\0');
    bool broken = strncmp(name, "bad_", 4) == 0;
    if (broken == (g != NULL)) fprintf(stderr, "  %s: %s\n", name, g ? "loaded" : ts_last_error());
    CHECK(broken ? g == NULL : g != NULL);
    ((corpus_count *)ctx)->loaded += g != NULL;
    ts_graph_free(g);
}

static void test_fuzz_corpus(void)
{
    corpus_count c = { 0 };
    int n = check_each_file("fuzz/corpus_onnx", load_seed, &c);
    CHECK(n >= 8 && c.loaded >= 4);
}

int main(void)
{
    if (!(tmpdir = check_tmpdir("onnx"))) return 1;
    RUN(test_structure);
    RUN(test_run_small);
    RUN(test_roundtrip_small);
    RUN(test_standard_model);
    RUN(test_truncation);
    RUN(test_sizes_and_versions);
    RUN(test_typed_fields);
    RUN(test_nodes_and_attributes);
    RUN(test_more_refusals);
    RUN(test_big_raw_adopted);
    RUN(test_external_data);
    RUN(test_save_failures);
    RUN(test_fuzz_corpus);
    return check_finish("onnx");
}
