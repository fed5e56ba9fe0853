/* test_graph_ops_nn.c — C tests of the graph's nn ops (core/graph/ops_nn*.c):
 * each op runs as a one-node graph through ts_graph_infer and ts_exec and is
 * compared with PyTorch's numbers (tests/fixtures/graph_ops_ref.h, made by
 * gen_graph_ops.py) or with values computed here; the infer fns are checked
 * with a symbolic batch dim and on bad shapes, the FLOPs formulas on known
 * cases, and the Conv+BN folding and Conv+activation fusion passes on small
 * graphs (same results, fewer nodes), and the Winograd prepacking pass
 * (WinogradConv against the convolutions it replaces). Ends with an unasserted timing of a
 * ResNet-like conv block (set TORSH_TEST_TIMING=0 to skip it). */
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <torsh/graph.h>
#include <torsh/ops.h>

#include "../fixtures/graph_ops_ref.h"

/* the passes of core/graph/ops_nn_fuse.c (declared in core/graph/ops_nn.h) */
ts_status ts_graph_fold_conv_bn(ts_graph *g);
ts_status ts_graph_fuse_conv_act(ts_graph *g);
ts_status ts_graph_prepack_winograd(ts_graph *g);
ts_status ts_graph_optimize_nn(ts_graph *g);

/* ---- helpers --------------------------------------------------------------------------- */

static ts_tensor *ref(const char *name)
{
    for (size_t i = 0; i < sizeof ref_table / sizeof ref_table[0]; i++)
        if (!strcmp(ref_table[i].name, name))
            return ts_tensor_from_data(ref_table[i].data, TS_F32, ref_table[i].shape, ref_table[i].ndim, TS_F32);
    fprintf(stderr, "  no reference array '%s' (rerun gen_graph_ops.py)\n", name);
    return NULL;
}

static ts_tensor *from_f32(const float *v, const int64_t *shape, int ndim)
{
    return ts_tensor_from_data(v, TS_F32, shape, ndim, TS_F32);
}

static bool error_has(const char *fragment)
{
    bool ok = strstr(ts_last_error(), fragment) != NULL;
    if (!ok) fprintf(stderr, "  error was: %s\n  expected: %s\n", ts_last_error(), fragment);
    return ok;
}

/* got and want have the same shape and |got - want| <= tol * (1 + |want|) everywhere. */
static bool close_to(const ts_tensor *got, const ts_tensor *want, double tol, const char *what)
{
    char a[TS_SHAPE_STR_CAP], b[TS_SHAPE_STR_CAP];
    if (!got || !want) {
        fprintf(stderr, "  %s: missing tensor (%s)\n", what, ts_last_error());
        return false;
    }
    bool same = got->ndim == want->ndim;
    for (int i = 0; same && i < got->ndim; i++) same = got->shape[i] == want->shape[i];
    if (!same) {
        fprintf(stderr, "  %s: shape %s, expected %s\n", what, ts_shape_str(got->shape, got->ndim, a, sizeof a),
                ts_shape_str(want->shape, want->ndim, b, sizeof b));
        return false;
    }
    int64_t n = ts_tensor_numel(want);
    for (int64_t i = 0; i < n; i++) {
        double g = ts_tensor_item_at(got, i), w = ts_tensor_item_at(want, i);
        if (!(fabs(g - w) <= tol * (1 + fabs(w))) && !(isnan(g) && isnan(w))) {
            fprintf(stderr, "  %s: element %lld is %.9g, expected %.9g\n", what, (long long)i, g, w);
            return false;
        }
    }
    return true;
}

#define CLOSE(got, want, tol) CHECK(close_to((got), (want), (tol), #got))

/* A one-node graph under construction. Input kinds (spec): 'i' a graph
 * input fed at run time, 'c' a constant (initializer), '-' omitted. */
typedef struct onenode {
    ts_graph *g;
    int node;
    const char *spec;
    int ins[8], outs[4];
    int n_in, n_out;
    ts_tensor *feeds[8];
    int n_feeds;
} onenode;

static void nn_begin(onenode *c, const char *op, const char *domain, const char *spec, int n_out, int64_t opset)
{
    memset(c, 0, sizeof *c);
    c->g = ts_graph_new("one");
    ts_graph_set_opset(c->g, "", opset);
    c->spec = spec;
    c->n_in = (int)strlen(spec);
    c->n_out = n_out;
    char name[32];
    for (int i = 0; i < c->n_in; i++) {
        snprintf(name, sizeof name, "in%d", i);
        c->ins[i] = spec[i] == '-' ? -1 : ts_graph_value(c->g, name);
    }
    for (int o = 0; o < n_out; o++) {
        snprintf(name, sizeof name, "out%d", o);
        c->outs[o] = ts_graph_value(c->g, name);
    }
    c->node = ts_graph_add_node(c->g, op, domain, "n", c->ins, c->n_in, c->outs, n_out);
    CHECK(c->node >= 0);
}

/* Binds input i to t (borrowed; a graph input gets t's shape, with dim 0
 * the symbol "N" when sym_batch). */
static void nn_in(onenode *c, int i, ts_tensor *t, bool sym_batch)
{
    if (!t) { CHECK(t != NULL); return; }
    if (c->spec[i] == 'c') {
        CHECK(ts_graph_set_const(c->g, c->ins[i], t, true) == TS_OK);
        return;
    }
    ts_dim dims[TS_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) dims[d] = d == 0 && sym_batch ? ts_dim_sym(c->g, "N") : ts_dim_of(t->shape[d]);
    CHECK(ts_graph_set_info(c->g, c->ins[i], t->dtype, t->ndim, dims) == TS_OK);
    CHECK(ts_graph_add_input(c->g, c->ins[i]) == TS_OK);
    ts_tensor_retain(t);
    c->feeds[c->n_feeds++] = t;
}

static ts_status nn_infer(onenode *c)
{
    for (int o = 0; o < c->n_out; o++) ts_graph_add_output(c->g, c->outs[o]);
    ts_status st = ts_graph_infer(c->g, NULL, NULL, 0);
    if (st) fprintf(stderr, "  infer: %s\n", ts_last_error());
    return st;
}

/* Infers (if not done), runs, and checks each output's dtype and shape
 * against the inferred info (unknown dims match anything, symbols bind). */
static ts_status nn_exec(onenode *c, ts_tensor **outs)
{
    for (int o = 0; o < c->n_out; o++) outs[o] = NULL;
    if (ts_graph_output_count(c->g) == 0 && nn_infer(c)) return ts_last_status();
    ts_exec *e = ts_exec_new(c->g, NULL);
    if (!e) return ts_last_status();
    ts_status st = ts_exec_run(e, c->feeds, c->n_feeds, outs, c->n_out);
    ts_exec_free(e);
    if (st) return st;
    for (int o = 0; o < c->n_out; o++) {
        const ts_gvalue *v = ts_graph_val(c->g, c->outs[o]);
        CHECK(v->dtype == outs[o]->dtype);
        CHECK(v->ndim == outs[o]->ndim);
        for (int d = 0; d < v->ndim && d < outs[o]->ndim; d++)
            if (v->dims[d].size >= 0 && v->dims[d].size != outs[o]->shape[d]) {
                fprintf(stderr, "  output %d dim %d inferred %lld, got %lld\n", o, d, (long long)v->dims[d].size,
                        (long long)outs[o]->shape[d]);
                CHECK(0);
            }
    }
    return TS_OK;
}

/* Runs and returns output 0 (new reference); the other outputs are dropped. */
static ts_tensor *nn_run(onenode *c)
{
    ts_tensor *outs[4];
    if (nn_exec(c, outs)) {
        fprintf(stderr, "  run: %s\n", ts_last_error());
        return NULL;
    }
    for (int o = 1; o < c->n_out; o++) ts_tensor_release(outs[o]);
    return outs[0];
}

static void nn_end(onenode *c)
{
    for (int i = 0; i < c->n_feeds; i++) ts_tensor_release(c->feeds[i]);
    ts_graph_free(c->g);
}

static double node_flops(onenode *c)
{
    const ts_gnode *n = ts_graph_node(c->g, c->node);
    const ts_op_def *def = ts_op_find(n->domain, n->op_type);
    if (!def || !def->flops) return -2;
    const ts_gvalue *in[8], *out[4];
    for (int i = 0; i < n->n_inputs; i++) in[i] = n->inputs[i] >= 0 ? ts_graph_val(c->g, n->inputs[i]) : NULL;
    for (int o = 0; o < n->n_outputs; o++) out[o] = ts_graph_val(c->g, n->outputs[o]);
    return def->flops(n, in, out);
}

static const ts_gvalue *out_info(onenode *c, int o) { return ts_graph_val(c->g, c->outs[o]); }

/* The inferred dims of output o are dims (NULL entries of sym_name: concrete
 * size; else the symbol of that name; size -1 and no name: unknown). */
static bool dims_are(onenode *c, int o, int ndim, const int64_t *sizes, const char *const *syms)
{
    const ts_gvalue *v = out_info(c, o);
    char buf[TS_SHAPE_STR_CAP];
    bool ok = v->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) {
        if (syms && syms[d]) ok = v->dims[d].size < 0 && v->dims[d].sym == ts_graph_symbol(c->g, syms[d]);
        else if (sizes[d] < 0) ok = v->dims[d].size < 0 && v->dims[d].sym < 0;
        else ok = v->dims[d].size == sizes[d];
    }
    if (!ok) {
        buf[0] = 0;
        if (v->ndim >= 0) {
            size_t len = 0;
            for (int d = 0; d < v->ndim; d++)
                len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%lld/%d", d ? "," : "",
                                        (long long)v->dims[d].size, (int)v->dims[d].sym);
        }
        fprintf(stderr, "  output %d: inferred rank %d dims %s\n", o, v->ndim, buf);
    }
    return ok;
}

/* ---- Conv -------------------------------------------------------------------------------- */

static void test_conv2d(void)
{
    onenode c;
    ts_tensor *x = ref("conv2d.x"), *w = ref("conv2d.w"), *b = ref("conv2d.b"), *want = ref("conv2d.y");
    nn_begin(&c, "Conv", "", "icc", 1, 17);
    nn_in(&c, 0, x, true);
    nn_in(&c, 1, w, false);
    nn_in(&c, 2, b, false);
    ts_gnode_set_int(c.g, c.node, "group", 2);
    ts_gnode_set_ints(c.g, c.node, "strides", (int64_t[]){ 2, 1 }, 2);
    ts_gnode_set_ints(c.g, c.node, "dilations", (int64_t[]){ 1, 2 }, 2);
    ts_gnode_set_ints(c.g, c.node, "pads", (int64_t[]){ 1, 2, 0, 1 }, 4);
    ts_gnode_set_ints(c.g, c.node, "kernel_shape", (int64_t[]){ 3, 3 }, 2);
    CHECK(nn_infer(&c) == TS_OK);
    /* H: (7 + 1 - 3) / 2 + 1 = 3; W: 6 + 3 - 5 + 1 = 5; the batch stays symbolic */
    CHECK(dims_are(&c, 0, 4, (int64_t[]){ 0, 6, 3, 5 }, (const char *[]){ "N", NULL, NULL, NULL }));
    ts_tensor *y = nn_run(&c);
    CLOSE(y, want, 1e-5);
    ts_tensor_release(y);
    nn_end(&c);
    ts_tensor_release(x); ts_tensor_release(w); ts_tensor_release(b); ts_tensor_release(want);
}

static void test_conv_auto_pad(void)
{
    const char *modes[2] = { "SAME_UPPER", "SAME_LOWER" }, *refs[2] = { "conv_same.y", "conv_same_lower.y" };
    ts_tensor *x = ref("conv_same.x"), *w = ref("conv_same.w");
    for (int m = 0; m < 2; m++) {
        onenode c;
        ts_tensor *want = ref(refs[m]);
        nn_begin(&c, "Conv", "", "ic", 1, 11);
        nn_in(&c, 0, x, false);
        nn_in(&c, 1, w, false);
        ts_gnode_set_string(c.g, c.node, "auto_pad", modes[m], strlen(modes[m]));
        ts_gnode_set_ints(c.g, c.node, "strides", (int64_t[]){ 2, 2 }, 2);
        ts_tensor *y = nn_run(&c);
        CHECK(dims_are(&c, 0, 4, (int64_t[]){ 1, 2, 5, 4 }, NULL));
        CLOSE(y, want, 1e-5);
        ts_tensor_release(y);
        ts_tensor_release(want);
        nn_end(&c);
    }
    /* VALID ignores pads; SAME with stride 1 keeps symbolic spatial dims */
    onenode c;
    nn_begin(&c, "Conv", "", "ic", 1, 11);
    ts_dim dims[4] = { ts_dim_sym(c.g, "N"), ts_dim_of(3), ts_dim_sym(c.g, "H"), ts_dim_sym(c.g, "W") };
    ts_graph_set_info(c.g, c.ins[0], TS_F32, 4, dims);
    ts_graph_add_input(c.g, c.ins[0]);
    nn_in(&c, 1, w, false);
    ts_gnode_set_string(c.g, c.node, "auto_pad", "SAME_UPPER", 10);
    CHECK(nn_infer(&c) == TS_OK);
    CHECK(dims_are(&c, 0, 4, (int64_t[]){ 0, 2, 0, 0 }, (const char *[]){ "N", NULL, "H", "W" }));
    nn_end(&c);
    nn_begin(&c, "Conv", "", "ic", 1, 11);
    nn_in(&c, 0, x, false);
    nn_in(&c, 1, w, false);
    ts_gnode_set_string(c.g, c.node, "auto_pad", "VALID", 5);
    ts_gnode_set_ints(c.g, c.node, "pads", (int64_t[]){ 3, 3, 3, 3 }, 4);
    CHECK(nn_infer(&c) == TS_OK);
    CHECK(dims_are(&c, 0, 4, (int64_t[]){ 1, 2, 6, 5 }, NULL));
    nn_end(&c);
    ts_tensor_release(x);
    ts_tensor_release(w);
}

static void test_conv1d(void)
{
    onenode c;
    ts_tensor *x = ref("conv1d.x"), *w = ref("conv1d.w"), *want = ref("conv1d.y");
    nn_begin(&c, "Conv", "", "ic-", 1, 13);
    nn_in(&c, 0, x, true);
    nn_in(&c, 1, w, false);
    ts_gnode_set_ints(c.g, c.node, "strides", (int64_t[]){ 2 }, 1);
    ts_gnode_set_ints(c.g, c.node, "dilations", (int64_t[]){ 2 }, 1);
    ts_gnode_set_ints(c.g, c.node, "pads", (int64_t[]){ 1, 1 }, 2);
    ts_tensor *y = nn_run(&c);
    CHECK(dims_are(&c, 0, 3, (int64_t[]){ 0, 4, 4 }, (const char *[]){ "N", NULL, NULL }));
    CLOSE(y, want, 1e-5);
    ts_tensor_release(y);
    nn_end(&c);
    ts_tensor_release(x); ts_tensor_release(w); ts_tensor_release(want);
}

static void test_conv_errors_and_flops(void)
{
    /* channel mismatch caught by inference, naming the node */
    onenode c;
    int64_t xs[4] = { 1, 5, 8, 8 }, ws[4] = { 4, 4, 3, 3 };
    ts_tensor *x = ts_tensor_zeros(xs, 4, TS_F32), *w = ts_tensor_zeros(ws, 4, TS_F32);
    nn_begin(&c, "Conv", "", "ic", 1, 17);
    nn_in(&c, 0, x, false);
    nn_in(&c, 1, w, false);
    for (int o = 0; o < c.n_out; o++) ts_graph_add_output(c.g, c.outs[o]);
    CHECK(ts_graph_infer(c.g, NULL, NULL, 0) != TS_OK);
    CHECK(error_has("node 'n' (Conv)") && error_has("5 channels"));
    nn_end(&c);
    /* a bad auto_pad is refused at run time too */
    nn_begin(&c, "Conv", "", "ic", 1, 17);
    ts_tensor_release(x);
    xs[1] = 4;
    x = ts_tensor_zeros(xs, 4, TS_F32);
    nn_in(&c, 0, x, false);
    nn_in(&c, 1, w, false);
    ts_gnode_set_string(c.g, c.node, "auto_pad", "BOGUS", 5);
    for (int o = 0; o < c.n_out; o++) ts_graph_add_output(c.g, c.outs[o]);
    CHECK(ts_graph_infer(c.g, NULL, NULL, 0) != TS_OK && error_has("auto_pad \"BOGUS\""));
    nn_end(&c);
    ts_tensor_release(x);
    ts_tensor_release(w);
    /* ResNet's first conv: 2 * 64 * 112 * 112 * 3 * 7 * 7 */
    int64_t xs2[4] = { 1, 3, 224, 224 }, ws2[4] = { 64, 3, 7, 7 };
    x = ts_tensor_zeros(xs2, 4, TS_F32);
    w = ts_tensor_zeros(ws2, 4, TS_F32);
    nn_begin(&c, "Conv", "", "ic", 1, 17);
    nn_in(&c, 0, x, false);
    nn_in(&c, 1, w, false);
    ts_gnode_set_ints(c.g, c.node, "strides", (int64_t[]){ 2, 2 }, 2);
    ts_gnode_set_ints(c.g, c.node, "pads", (int64_t[]){ 3, 3, 3, 3 }, 4);
    CHECK(nn_infer(&c) == TS_OK);
    CHECK(dims_are(&c, 0, 4, (int64_t[]){ 1, 64, 112, 112 }, NULL));
    CHECK(node_flops(&c) == 2.0 * 64 * 112 * 112 * 3 * 49);
    nn_end(&c);
    /* symbolic batch: FLOPs unknown (< 0) */
    nn_begin(&c, "Conv", "", "ic", 1, 17);
    nn_in(&c, 0, x, true);
    nn_in(&c, 1, w, false);
    CHECK(nn_infer(&c) == TS_OK);
    CHECK(node_flops(&c) < 0);
    nn_end(&c);
    ts_tensor_release(x);
    ts_tensor_release(w);
}

static void test_conv_transpose(void)
{
    onenode c;
    ts_tensor *x = ref("convt2d.x"), *w = ref("convt2d.w"), *b = ref("convt2d.b"), *want = ref("convt2d.y");
    nn_begin(&c, "ConvTranspose", "", "icc", 1, 17);
    nn_in(&c, 0, x, true);
    nn_in(&c, 1, w, false);
    nn_in(&c, 2, b, false);
    ts_gnode_set_int(c.g, c.node, "group", 2);
    ts_gnode_set_ints(c.g, c.node, "strides", (int64_t[]){ 2, 2 }, 2);
    ts_gnode_set_ints(c.g, c.node, "pads", (int64_t[]){ 1, 1, 1, 1 }, 4);
    ts_gnode_set_ints(c.g, c.node, "output_padding", (int64_t[]){ 1, 1 }, 2);
    ts_tensor *y = nn_run(&c);
    CHECK(dims_are(&c, 0, 4, (int64_t[]){ 0, 6, 6, 8 }, (const char *[]){ "N", NULL, NULL, NULL }));
    CLOSE(y, want, 1e-5);
    ts_tensor_release(y);
    nn_end(&c);
    ts_tensor_release(x); ts_tensor_release(w); ts_tensor_release(b); ts_tensor_release(want);

    x = ref("convt1d.x"), w = ref("convt1d.w"), want = ref("convt1d.y");
    nn_begin(&c, "ConvTranspose", "", "ic", 1, 17);
    nn_in(&c, 0, x, false);
    nn_in(&c, 1, w, false);
    ts_gnode_set_ints(c.g, c.node, "strides", (int64_t[]){ 3 }, 1);
    ts_gnode_set_ints(c.g, c.node, "pads", (int64_t[]){ 1, 1 }, 2);
    ts_gnode_set_ints(c.g, c.node, "dilations", (int64_t[]){ 2 }, 1);
    y = nn_run(&c);
    CLOSE(y, want, 1e-5);
    /* 2 * numel(X) * Cout/group * K */
    CHECK(node_flops(&c) == 2.0 * (2 * 3 * 5) * 2 * 4);
    ts_tensor_release(y);
    nn_end(&c);
    /* output_shape: pads derived from it (the odd one at the start unless SAME_UPPER) */
    nn_begin(&c, "ConvTranspose", "", "ic", 1, 17);
    nn_in(&c, 0, x, false);
    nn_in(&c, 1, w, false);
    ts_gnode_set_ints(c.g, c.node, "strides", (int64_t[]){ 3 }, 1);
    ts_gnode_set_ints(c.g, c.node, "dilations", (int64_t[]){ 2 }, 1);
    ts_gnode_set_ints(c.g, c.node, "output_shape", (int64_t[]){ 17 }, 1);
    y = nn_run(&c);
    CLOSE(y, want, 1e-5);   /* total padding 2: 1 at each end, as above */
    ts_tensor_release(y);
    nn_end(&c);
    ts_tensor_release(x); ts_tensor_release(w); ts_tensor_release(want);
}

/* FusedConv(X, W, B, Z) with Relu == relu(conv(X, W, B) + Z). */
static void test_fused_conv(void)
{
    ts_tensor *x = ref("conv2d.x"), *w = ref("conv2d.w"), *b = ref("conv2d.b"), *base = ref("conv2d.y");
    int64_t zs[4] = { 2, 6, 3, 5 };
    ts_tensor *z = ts_linspace(-3, 3, 2 * 6 * 3 * 5, TS_F32), *zr = z ? ts_reshape(z, zs, 4) : NULL;
    ts_tensor *sum = ts_binary(TS_ADD, base, zr), *want = sum ? ts_unary(TS_RELU, sum) : NULL;
    ts_tensor *want_clip = sum ? ts_clamp(sum, -0.5, 0.25) : NULL;
    for (int k = 0; k < 2; k++) {
        onenode c;
        nn_begin(&c, "FusedConv", "com.microsoft", "icci", 1, 17);
        nn_in(&c, 0, x, false);
        nn_in(&c, 1, w, false);
        nn_in(&c, 2, b, false);
        nn_in(&c, 3, zr, false);
        ts_gnode_set_int(c.g, c.node, "group", 2);
        ts_gnode_set_ints(c.g, c.node, "strides", (int64_t[]){ 2, 1 }, 2);
        ts_gnode_set_ints(c.g, c.node, "dilations", (int64_t[]){ 1, 2 }, 2);
        ts_gnode_set_ints(c.g, c.node, "pads", (int64_t[]){ 1, 2, 0, 1 }, 4);
        ts_gnode_set_string(c.g, c.node, "activation", k ? "Clip" : "Relu", 4);
        if (k) ts_gnode_set_floats(c.g, c.node, "activation_params", (double[]){ -0.5, 0.25 }, 2);
        ts_tensor *y = nn_run(&c);
        CLOSE(y, k ? want_clip : want, 1e-5);
        ts_tensor_release(y);
        nn_end(&c);
    }
    ts_tensor_release(x); ts_tensor_release(w); ts_tensor_release(b); ts_tensor_release(base);
    ts_tensor_release(z); ts_tensor_release(zr); ts_tensor_release(sum); ts_tensor_release(want);
    ts_tensor_release(want_clip);
}

/* ---- Gemm / MatMul --------------------------------------------------------------------------- */

static void test_gemm(void)
{
    onenode c;
    ts_tensor *a = ref("gemm.a"), *b = ref("gemm.b"), *cc = ref("gemm.c"), *want = ref("gemm.y");
    nn_begin(&c, "Gemm", "", "icc", 1, 13);
    nn_in(&c, 0, a, false);
    nn_in(&c, 1, b, false);
    nn_in(&c, 2, cc, false);
    ts_gnode_set_int(c.g, c.node, "transA", 1);
    ts_gnode_set_int(c.g, c.node, "transB", 1);
    ts_gnode_set_float(c.g, c.node, "alpha", 0.5);
    ts_gnode_set_float(c.g, c.node, "beta", 2.0);
    ts_tensor *y = nn_run(&c);
    CLOSE(y, want, 1e-5);
    CHECK(node_flops(&c) == 2.0 * 3 * 4 * 5);
    ts_tensor_release(y);
    nn_end(&c);
    ts_tensor_release(a); ts_tensor_release(b); ts_tensor_release(cc); ts_tensor_release(want);

    a = ref("gemm2.a"), b = ref("gemm2.b"), cc = ref("gemm2.c"), want = ref("gemm2.y");
    nn_begin(&c, "Gemm", "", "ici", 1, 13);
    nn_in(&c, 0, a, true);
    nn_in(&c, 1, b, false);
    nn_in(&c, 2, cc, false);
    ts_tensor *y2 = nn_run(&c);
    CHECK(dims_are(&c, 0, 2, (int64_t[]){ 0, 4 }, (const char *[]){ "N", NULL }));
    CLOSE(y2, want, 1e-5);
    ts_tensor_release(y2);
    nn_end(&c);
    /* no C; f64 inputs */
    ts_tensor *a64 = ts_to_dtype(a, TS_F64), *b64 = ts_to_dtype(b, TS_F64);
    ts_tensor *ab = ts_matmul(a, b);
    nn_begin(&c, "Gemm", "", "ic", 1, 13);
    nn_in(&c, 0, a64, false);
    nn_in(&c, 1, b64, false);
    y2 = nn_run(&c);
    CHECK(y2 && y2->dtype == TS_F64);
    CLOSE(y2, ab, 1e-6);
    ts_tensor_release(y2);
    nn_end(&c);
    /* integer Gemm with alpha and C */
    int64_t ai[6] = { 1, 2, 3, 4, 5, 6 }, bi[6] = { 1, 0, -1, 2, 1, 1 }, ci[2] = { 10, 20 };
    ts_tensor *A = ts_tensor_from_data(ai, TS_I64, (int64_t[]){ 2, 3 }, 2, TS_I64);
    ts_tensor *B = ts_tensor_from_data(bi, TS_I64, (int64_t[]){ 3, 2 }, 2, TS_I64);
    ts_tensor *C = ts_tensor_from_data(ci, TS_I64, (int64_t[]){ 2 }, 1, TS_I64);
    nn_begin(&c, "Gemm", "", "iii", 1, 13);
    nn_in(&c, 0, A, false);
    nn_in(&c, 1, B, false);
    nn_in(&c, 2, C, false);
    ts_gnode_set_float(c.g, c.node, "alpha", 2.0);
    y2 = nn_run(&c);
    /* A @ B = [[2, 7], [5, 16]]; 2 * that + [10, 20] */
    CHECK(y2 && y2->dtype == TS_I64 && ts_tensor_item_at(y2, 0) == 14 && ts_tensor_item_at(y2, 1) == 34 &&
          ts_tensor_item_at(y2, 2) == 20 && ts_tensor_item_at(y2, 3) == 52);
    ts_tensor_release(y2);
    nn_end(&c);
    /* mismatched K: inference and the kernel both refuse */
    nn_begin(&c, "Gemm", "", "ic", 1, 13);
    nn_in(&c, 0, b, false);
    nn_in(&c, 1, b, false);
    for (int o = 0; o < c.n_out; o++) ts_graph_add_output(c.g, c.outs[o]);
    CHECK(ts_graph_infer(c.g, NULL, NULL, 0) != TS_OK && error_has("do not line up"));
    nn_end(&c);
    ts_tensor_release(A); ts_tensor_release(B); ts_tensor_release(C);
    ts_tensor_release(a64); ts_tensor_release(b64); ts_tensor_release(ab);
    ts_tensor_release(a); ts_tensor_release(b); ts_tensor_release(cc); ts_tensor_release(want);
}

static void test_matmul(void)
{
    const char *cases[3] = { "matmul", "matmul_v", "matmul_bv" };
    for (int k = 0; k < 3; k++) {
        char na[32], nb[32], ny[32];
        snprintf(na, sizeof na, "%s.a", cases[k]);
        snprintf(nb, sizeof nb, "%s.b", cases[k]);
        snprintf(ny, sizeof ny, "%s.y", cases[k]);
        ts_tensor *a = ref(na), *b = ref(nb), *want = ref(ny);
        onenode c;
        nn_begin(&c, "MatMul", "", "ic", 1, 13);
        nn_in(&c, 0, a, false);
        nn_in(&c, 1, b, false);
        ts_tensor *y = nn_run(&c);
        CLOSE(y, want, 1e-5);
        if (k == 0) CHECK(node_flops(&c) == 2.0 * (2 * 3 * 3 * 5) * 4);
        ts_tensor_release(y);
        nn_end(&c);
        ts_tensor_release(a); ts_tensor_release(b); ts_tensor_release(want);
    }
    /* inference with symbols: [N, 1, S, 4] x [3, 4, 5] -> [N, 3, S, 5] */
    onenode c;
    nn_begin(&c, "MatMul", "", "ii", 1, 13);
    ts_dim da[4] = { ts_dim_sym(c.g, "N"), ts_dim_of(1), ts_dim_sym(c.g, "S"), ts_dim_of(4) };
    ts_dim db[3] = { ts_dim_of(3), ts_dim_of(4), ts_dim_of(5) };
    ts_graph_set_info(c.g, c.ins[0], TS_F32, 4, da);
    ts_graph_set_info(c.g, c.ins[1], TS_F32, 3, db);
    ts_graph_add_input(c.g, c.ins[0]);
    ts_graph_add_input(c.g, c.ins[1]);
    CHECK(nn_infer(&c) == TS_OK);
    CHECK(dims_are(&c, 0, 4, (int64_t[]){ 0, 3, 0, 5 }, (const char *[]){ "N", NULL, "S", NULL }));
    nn_end(&c);
    /* K mismatch and batch mismatch */
    nn_begin(&c, "MatMul", "", "ii", 1, 13);
    ts_graph_set_info(c.g, c.ins[0], TS_F32, 2, (ts_dim[]){ ts_dim_of(2), ts_dim_of(3) });
    ts_graph_set_info(c.g, c.ins[1], TS_F32, 2, (ts_dim[]){ ts_dim_of(4), ts_dim_of(5) });
    ts_graph_add_input(c.g, c.ins[0]);
    ts_graph_add_input(c.g, c.ins[1]);
    for (int o = 0; o < c.n_out; o++) ts_graph_add_output(c.g, c.outs[o]);
    CHECK(ts_graph_infer(c.g, NULL, NULL, 0) != TS_OK && error_has("(3 != 4)"));
    nn_end(&c);
    nn_begin(&c, "MatMul", "", "ii", 1, 13);
    ts_graph_set_info(c.g, c.ins[0], TS_F32, 3, (ts_dim[]){ ts_dim_of(2), ts_dim_of(2), ts_dim_of(3) });
    ts_graph_set_info(c.g, c.ins[1], TS_F32, 3, (ts_dim[]){ ts_dim_of(4), ts_dim_of(3), ts_dim_of(5) });
    ts_graph_add_input(c.g, c.ins[0]);
    ts_graph_add_input(c.g, c.ins[1]);
    for (int o = 0; o < c.n_out; o++) ts_graph_add_output(c.g, c.outs[o]);
    CHECK(ts_graph_infer(c.g, NULL, NULL, 0) != TS_OK);
    nn_end(&c);
}

/* ---- normalisation --------------------------------------------------------------------------- */

static void test_norms(void)
{
    ts_tensor *x = ref("bn.x"), *s = ref("bn.scale"), *b = ref("bn.b"), *m = ref("bn.mean"), *v = ref("bn.var");
    ts_tensor *want = ref("bn.y"), *want_in = ref("in.y");
    onenode c;
    nn_begin(&c, "BatchNormalization", "", "icccc", 1, 15);
    nn_in(&c, 0, x, true);
    nn_in(&c, 1, s, false);
    nn_in(&c, 2, b, false);
    nn_in(&c, 3, m, false);
    nn_in(&c, 4, v, false);
    ts_gnode_set_float(c.g, c.node, "epsilon", 1e-3);
    ts_tensor *y = nn_run(&c);
    CHECK(dims_are(&c, 0, 4, (int64_t[]){ 0, 3, 4, 5 }, (const char *[]){ "N", NULL, NULL, NULL }));
    CLOSE(y, want, 1e-5);
    CHECK(node_flops(&c) < 0);   /* symbolic batch */
    ts_tensor_release(y);
    nn_end(&c);
    nn_begin(&c, "BatchNormalization", "", "icccc", 1, 15);
    nn_in(&c, 0, x, false);
    for (int i = 1; i < 5; i++) nn_in(&c, i, (ts_tensor *[]){ NULL, s, b, m, v }[i], false);
    ts_gnode_set_int(c.g, c.node, "training_mode", 1);
    CHECK(nn_infer(&c) == TS_OK);
    CHECK(node_flops(&c) == 2.0 * 2 * 3 * 4 * 5);
    ts_tensor *outs[1];
    CHECK(nn_exec(&c, outs) != TS_OK && error_has("training_mode"));
    nn_end(&c);

    nn_begin(&c, "InstanceNormalization", "", "icc", 1, 15);
    nn_in(&c, 0, x, true);
    nn_in(&c, 1, s, false);
    nn_in(&c, 2, b, false);
    ts_gnode_set_float(c.g, c.node, "epsilon", 1e-4);
    y = nn_run(&c);
    CLOSE(y, want_in, 1e-4);
    ts_tensor_release(y);
    nn_end(&c);
    ts_tensor_release(x); ts_tensor_release(s); ts_tensor_release(b); ts_tensor_release(m); ts_tensor_release(v);
    ts_tensor_release(want); ts_tensor_release(want_in);

    /* LayerNormalization over the last two dims, with Mean and InvStdDev */
    x = ref("ln.x"), s = ref("ln.scale"), b = ref("ln.b"), want = ref("ln.y");
    ts_tensor *wm = ref("ln.mean"), *wi = ref("ln.invstd");
    nn_begin(&c, "LayerNormalization", "", "icc", 3, 17);
    nn_in(&c, 0, x, true);
    nn_in(&c, 1, s, false);
    nn_in(&c, 2, b, false);
    ts_gnode_set_int(c.g, c.node, "axis", 1);
    ts_tensor *o3[3];
    CHECK(nn_exec(&c, o3) == TS_OK);
    CHECK(dims_are(&c, 1, 3, (int64_t[]){ 0, 1, 1 }, (const char *[]){ "N", NULL, NULL }));
    CLOSE(o3[0], want, 1e-5);
    CLOSE(o3[1], wm, 1e-5);
    CLOSE(o3[2], wi, 1e-5);
    for (int i = 0; i < 3; i++) ts_tensor_release(o3[i]);
    nn_end(&c);
    /* a scale that merely broadcasts ([4] against [3, 4]) */
    ts_tensor *s4 = ts_select(s, 0, 0), *z = ts_layer_norm(x, 2, NULL, NULL, 1e-5);
    ts_tensor *want4 = z ? ts_binary(TS_MUL, z, s4) : NULL;
    nn_begin(&c, "LayerNormalization", "", "ic", 1, 17);
    nn_in(&c, 0, x, false);
    nn_in(&c, 1, s4, false);
    ts_gnode_set_int(c.g, c.node, "axis", -2);
    y = nn_run(&c);
    CLOSE(y, want4, 1e-5);
    ts_tensor_release(y);
    nn_end(&c);
    ts_tensor_release(s4); ts_tensor_release(z); ts_tensor_release(want4);
    ts_tensor_release(x); ts_tensor_release(s); ts_tensor_release(b); ts_tensor_release(want);
    ts_tensor_release(wm); ts_tensor_release(wi);
}

/* ---- pooling ---------------------------------------------------------------------------------- */

typedef struct pool_case {
    const char *op, *want;
    int64_t k[2], s[2], pads[4], d[2];
    int ceil, incl;
} pool_case;

static void test_pools(void)
{
    ts_tensor *x = ref("pool.x");
    const pool_case cases[] = {
        { "MaxPool", "maxpool.y", { 3, 2 }, { 2, 2 }, { 1, 0, 1, 1 }, { 1, 1 }, 0, 0 },
        { "MaxPool", "maxpool_ceil.y", { 3, 3 }, { 2, 2 }, { 1, 1, 1, 1 }, { 1, 1 }, 1, 0 },
        { "MaxPool", "maxpool_dil.y", { 2, 2 }, { 1, 1 }, { 0, 0, 0, 0 }, { 2, 2 }, 0, 0 },
        { "AveragePool", "avgpool.y", { 3, 3 }, { 2, 2 }, { 1, 1, 1, 1 }, { 1, 1 }, 1, 0 },
        { "AveragePool", "avgpool_incl.y", { 3, 3 }, { 2, 2 }, { 1, 1, 1, 1 }, { 1, 1 }, 1, 1 },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const pool_case *pc = &cases[k];
        onenode c;
        ts_tensor *want = ref(pc->want);
        nn_begin(&c, pc->op, "", "i", 1, 19);
        nn_in(&c, 0, x, true);
        ts_gnode_set_ints(c.g, c.node, "kernel_shape", pc->k, 2);
        ts_gnode_set_ints(c.g, c.node, "strides", pc->s, 2);
        ts_gnode_set_ints(c.g, c.node, "pads", pc->pads, 4);
        if (pc->d[0] != 1) ts_gnode_set_ints(c.g, c.node, "dilations", pc->d, 2);
        ts_gnode_set_int(c.g, c.node, "ceil_mode", pc->ceil);
        if (pc->incl) ts_gnode_set_int(c.g, c.node, "count_include_pad", 1);
        ts_tensor *y = nn_run(&c);
        if (!close_to(y, want, 1e-6, pc->want)) CHECK(0);
        CHECK(out_info(&c, 0)->dims[0].sym == ts_graph_symbol(c.g, "N"));
        ts_tensor_release(y);
        ts_tensor_release(want);
        nn_end(&c);
    }
    /* MaxPool's Indices output (flat over N, C, H, W) and FLOPs */
    onenode c;
    ts_tensor *want = ref("maxpool.y"), *want_idx = ref("maxpool.idx");
    nn_begin(&c, "MaxPool", "", "i", 2, 12);
    nn_in(&c, 0, x, false);
    ts_gnode_set_ints(c.g, c.node, "kernel_shape", (int64_t[]){ 3, 2 }, 2);
    ts_gnode_set_ints(c.g, c.node, "strides", (int64_t[]){ 2, 2 }, 2);
    ts_gnode_set_ints(c.g, c.node, "pads", (int64_t[]){ 1, 0, 1, 1 }, 4);
    ts_tensor *o2[2];
    CHECK(nn_exec(&c, o2) == TS_OK);
    CLOSE(o2[0], want, 1e-6);
    CHECK(o2[1] && o2[1]->dtype == TS_I64);
    CLOSE(o2[1], want_idx, 0);
    CHECK(node_flops(&c) == 2.0 * 4 * 4 * 6);
    ts_tensor_release(o2[0]);
    ts_tensor_release(o2[1]);
    ts_tensor_release(want);
    ts_tensor_release(want_idx);
    nn_end(&c);
    /* 1-D */
    ts_tensor *x1 = ref("pool1d.x");
    const char *ops1[2] = { "MaxPool", "AveragePool" }, *refs1[2] = { "maxpool1d.y", "avgpool1d.y" };
    const int64_t k1[2] = { 3, 4 }, s1[2] = { 2, 3 }, p1[2] = { 1, 2 };
    for (int k = 0; k < 2; k++) {
        want = ref(refs1[k]);
        nn_begin(&c, ops1[k], "", "i", 1, 11);
        nn_in(&c, 0, x1, false);
        ts_gnode_set_ints(c.g, c.node, "kernel_shape", &k1[k], 1);
        ts_gnode_set_ints(c.g, c.node, "strides", &s1[k], 1);
        ts_gnode_set_ints(c.g, c.node, "pads", (int64_t[]){ p1[k], p1[k] }, 2);
        if (k) ts_gnode_set_int(c.g, c.node, "count_include_pad", 1);
        ts_tensor *y = nn_run(&c);
        CLOSE(y, want, 1e-6);
        ts_tensor_release(y);
        ts_tensor_release(want);
        nn_end(&c);
    }
    ts_tensor_release(x1);
    /* global pools, against reductions */
    for (int k = 0; k < 2; k++) {
        nn_begin(&c, k ? "GlobalMaxPool" : "GlobalAveragePool", "", "i", 1, 11);
        nn_in(&c, 0, x, true);
        ts_tensor *y = nn_run(&c);
        CHECK(dims_are(&c, 0, 4, (int64_t[]){ 0, 2, 1, 1 }, (const char *[]){ "N", NULL, NULL, NULL }));
        ts_tensor *r = ts_reduce(k ? TS_AMAX : TS_MEAN, x, (int[]){ 2, 3 }, 2, true);
        CLOSE(y, r, 1e-6);
        ts_tensor_release(y);
        ts_tensor_release(r);
        nn_end(&c);
    }
    /* too small for the window */
    nn_begin(&c, "MaxPool", "", "i", 1, 11);
    nn_in(&c, 0, x, false);
    ts_gnode_set_ints(c.g, c.node, "kernel_shape", (int64_t[]){ 9, 2 }, 2);
    for (int o = 0; o < c.n_out; o++) ts_graph_add_output(c.g, c.outs[o]);
    CHECK(ts_graph_infer(c.g, NULL, NULL, 0) != TS_OK && error_has("too small"));
    nn_end(&c);
    ts_tensor_release(x);
}

/* ---- elementwise ------------------------------------------------------------------------------ */

static double gelu_ref(double v, bool tanh_form)
{
    if (tanh_form) return 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    return 0.5 * v * (1 + erf(v / sqrt(2)));
}

typedef struct unary_case {
    const char *op;
    int kind;            /* which reference formula */
    const char *attr;    /* one float attribute or NULL */
    double attr_v;
    double tol;
} unary_case;

static double unary_ref(int kind, double v, double a)
{
    switch (kind) {
    case 0: return v > 0 ? v : 0;
    case 1: return 1 / (1 + exp(-v));
    case 2: return tanh(v);
    case 3: return erf(v);
    case 4: return sqrt(fabs(v));
    case 5: return exp(v);
    case 6: return log(fabs(v));
    case 7: return -v;
    case 8: return fabs(v);
    case 9: return 1 / v;
    case 10: return floor(v);
    case 11: return ceil(v);
    case 12: return sin(v);
    case 13: return cos(v);
    case 14: return gelu_ref(v, false);
    case 15: return v >= 0 ? v : a * v;                               /* LeakyRelu */
    case 16: return fmax(0, fmin(1, a * v + 0.4));                    /* HardSigmoid alpha a, beta .4 */
    case 17: return v * fmax(0, fmin(1, v / 6 + 0.5));                /* HardSwish */
    case 18: return v < 0 ? a * (exp(v) - 1) : v;                     /* Elu */
    case 19: return v <= 0 ? 1.05070102214813232421875 * 1.67326319217681884765625 * (exp(v) - 1)
                           : 1.05070102214813232421875 * v;           /* Selu */
    case 20: return log1p(exp(v));                                    /* Softplus */
    case 21: return v / (1 + fabs(v));                                /* Softsign */
    }
    return NAN;
}

static void test_unary(void)
{
    const unary_case cases[] = {
        { "Relu", 0, NULL, 0, 0 }, { "Sigmoid", 1, NULL, 0, 1e-6 }, { "Tanh", 2, NULL, 0, 1e-6 },
        { "Erf", 3, NULL, 0, 1e-6 }, { "Sqrt", 4, NULL, 0, 1e-6 }, { "Exp", 5, NULL, 0, 1e-6 },
        { "Log", 6, NULL, 0, 1e-6 }, { "Neg", 7, NULL, 0, 0 }, { "Abs", 8, NULL, 0, 0 },
        { "Reciprocal", 9, NULL, 0, 1e-6 }, { "Floor", 10, NULL, 0, 0 }, { "Ceil", 11, NULL, 0, 0 },
        { "Sin", 12, NULL, 0, 1e-6 }, { "Cos", 13, NULL, 0, 1e-6 }, { "Gelu", 14, NULL, 0, 1e-6 },
        { "LeakyRelu", 15, "alpha", 0.2, 1e-6 }, { "HardSigmoid", 16, "alpha", 0.3, 1e-6 },
        { "HardSwish", 17, NULL, 0, 1e-6 }, { "Elu", 18, "alpha", 0.7, 1e-6 }, { "Selu", 19, NULL, 0, 1e-6 },
        { "Softplus", 20, NULL, 0, 1e-6 }, { "Softsign", 21, NULL, 0, 1e-6 },
    };
    float v[24];
    for (int i = 0; i < 24; i++) v[i] = (float)(-4.1 + 0.37 * i);   /* never 0 */
    int64_t shape[3] = { 2, 3, 4 };
    ts_tensor *x = from_f32(v, shape, 3);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const unary_case *uc = &cases[k];
        bool positive = uc->kind == 4 || uc->kind == 6;
        ts_tensor *xin = positive ? ts_unary(TS_ABS, x) : (ts_tensor_retain(x), x);
        onenode c;
        nn_begin(&c, uc->op, "", "i", 1, 17);
        nn_in(&c, 0, xin, true);
        if (uc->attr) ts_gnode_set_float(c.g, c.node, uc->attr, uc->attr_v);
        if (uc->kind == 16) ts_gnode_set_float(c.g, c.node, "beta", 0.4);
        ts_tensor *y = nn_run(&c);
        ts_tensor *want = ts_tensor_new(shape, 3, TS_F64);
        for (int i = 0; i < 24 && want; i++) ts_store_f64(ts_tensor_data(want), TS_F64, i, unary_ref(uc->kind, v[i], uc->attr_v));
        if (!close_to(y, want, uc->tol + 1e-7, uc->op)) CHECK(0);
        CHECK(y && y->dtype == TS_F32);
        CHECK(dims_are(&c, 0, 3, (int64_t[]){ 0, 3, 4 }, (const char *[]){ "N", NULL, NULL }));
        ts_tensor_release(y);
        ts_tensor_release(want);
        ts_tensor_release(xin);
        nn_end(&c);
    }
    /* more math through ts_unary, against libm */
    static const struct { const char *op; double (*f)(double); bool unit; } more[] = {
        { "Tan", tan, true }, { "Asin", asin, true }, { "Acos", acos, true }, { "Atan", atan, false },
        { "Sinh", sinh, false }, { "Cosh", cosh, false }, { "Round", nearbyint, false },
    };
    for (size_t k = 0; k < sizeof more / sizeof more[0]; k++) {
        float w[24];
        for (int i = 0; i < 24; i++) w[i] = more[k].unit ? v[i] / 4.5f : (k == 6 ? (float)(i - 12) * 0.5f : v[i]);
        ts_tensor *xw = from_f32(w, shape, 3);
        onenode c;
        nn_begin(&c, more[k].op, "", "i", 1, 17);
        nn_in(&c, 0, xw, false);
        ts_tensor *y = nn_run(&c);
        for (int i = 0; y && i < 24; i++) CHECK_NEAR(ts_tensor_item_at(y, i), more[k].f(w[i]), 1e-5);
        ts_tensor_release(y);
        ts_tensor_release(xw);
        nn_end(&c);
    }
    /* IsNaN / IsInf (one side only) give bools */
    float sp[4] = { NAN, INFINITY, -INFINITY, 1.0f };
    ts_tensor *xs = from_f32(sp, (int64_t[]){ 4 }, 1);
    for (int k = 0; k < 3; k++) {
        onenode c;
        nn_begin(&c, k ? "IsInf" : "IsNaN", "", "i", 1, 17);
        nn_in(&c, 0, xs, false);
        if (k == 2) ts_gnode_set_int(c.g, c.node, "detect_positive", 0);
        ts_tensor *y = nn_run(&c);
        const int want[3][4] = { { 1, 0, 0, 0 }, { 0, 1, 1, 0 }, { 0, 0, 1, 0 } };
        CHECK(y && y->dtype == TS_BOOL);
        for (int i = 0; y && i < 4; i++) CHECK(ts_tensor_item_at(y, i) == want[k][i]);
        ts_tensor_release(y);
        nn_end(&c);
    }
    ts_tensor_release(xs);
    /* Sign and Mod (integer: the divisor's sign; fmod: the dividend's) */
    {
        int64_t ma[4] = { 7, -7, 7, -7 }, mb[4] = { 3, 3, -3, -3 };
        ts_tensor *A = ts_tensor_from_data(ma, TS_I64, (int64_t[]){ 4 }, 1, TS_I64);
        ts_tensor *B = ts_tensor_from_data(mb, TS_I64, (int64_t[]){ 4 }, 1, TS_I64);
        const int64_t want_mod[2][4] = { { 1, 2, -2, -1 }, { 1, -1, 1, -1 } };
        for (int k = 0; k < 2; k++) {
            onenode c;
            nn_begin(&c, "Mod", "", "ii", 1, 13);
            nn_in(&c, 0, A, false);
            nn_in(&c, 1, B, false);
            if (k) ts_gnode_set_int(c.g, c.node, "fmod", 1);
            ts_tensor *y = nn_run(&c);
            CHECK(y && y->dtype == TS_I64);
            for (int i = 0; y && i < 4; i++) CHECK(ts_tensor_item_at(y, i) == want_mod[k][i]);
            ts_tensor_release(y);
            nn_end(&c);
        }
        onenode c;
        nn_begin(&c, "Sign", "", "i", 1, 13);
        nn_in(&c, 0, A, false);
        ts_tensor *y = nn_run(&c);
        CHECK(y && y->dtype == TS_I64 && ts_tensor_item_at(y, 1) == -1 && ts_tensor_item_at(y, 0) == 1);
        ts_tensor_release(y);
        nn_end(&c);
        ts_tensor_release(A);
        ts_tensor_release(B);
    }
    /* Gelu tanh form (opset 20), on f64 */
    ts_tensor *x64 = ts_to_dtype(x, TS_F64);
    onenode c;
    nn_begin(&c, "Gelu", "", "i", 1, 20);
    nn_in(&c, 0, x64, false);
    ts_gnode_set_string(c.g, c.node, "approximate", "tanh", 4);
    ts_tensor *y = nn_run(&c);
    CHECK(y && y->dtype == TS_F64);
    for (int i = 0; y && i < 24; i++) CHECK_NEAR(ts_tensor_item_at(y, i), gelu_ref(v[i], true), 1e-6);
    ts_tensor_release(y);
    nn_end(&c);
    ts_tensor_release(x64);
    /* integer Neg / Abs / Relu keep their dtype */
    int32_t iv[4] = { -3, 0, 5, -7 };
    ts_tensor *xi = ts_tensor_from_data(iv, TS_I32, (int64_t[]){ 4 }, 1, TS_I32);
    const char *iops[3] = { "Neg", "Abs", "Relu" };
    const int64_t iwant[3][4] = { { 3, 0, -5, 7 }, { 3, 0, 5, 7 }, { 0, 0, 5, 0 } };
    for (int k = 0; k < 3; k++) {
        nn_begin(&c, iops[k], "", "i", 1, 17);
        nn_in(&c, 0, xi, false);
        y = nn_run(&c);
        CHECK(y && y->dtype == TS_I32);
        for (int i = 0; y && i < 4; i++) CHECK(ts_tensor_item_at(y, i) == iwant[k][i]);
        ts_tensor_release(y);
        nn_end(&c);
    }
    ts_tensor_release(xi);
    /* PRelu with a per-channel slope [3, 1] */
    float sl[3] = { 0.1f, -0.5f, 2.0f };
    ts_tensor *slope = from_f32(sl, (int64_t[]){ 3, 1 }, 2);
    nn_begin(&c, "PRelu", "", "ic", 1, 16);
    nn_in(&c, 0, x, false);
    nn_in(&c, 1, slope, false);
    y = nn_run(&c);
    for (int i = 0; y && i < 24; i++) {
        double s = sl[(i / 4) % 3];
        CHECK_NEAR(ts_tensor_item_at(y, i), v[i] < 0 ? s * v[i] : v[i], 1e-6);
    }
    ts_tensor_release(y);
    nn_end(&c);
    ts_tensor_release(slope);
    ts_tensor_release(x);
}

static void test_clip(void)
{
    float v[6] = { -3, -1, 0, 0.5f, 2, 9 };
    ts_tensor *x = from_f32(v, (int64_t[]){ 6 }, 1), *lo = ts_tensor_scalar(-1.5, TS_F32);
    ts_tensor *hi = ts_tensor_scalar(1.0, TS_F32);
    onenode c;
    /* opset 11+: bounds as inputs, max omitted */
    nn_begin(&c, "Clip", "", "ic-", 1, 13);
    nn_in(&c, 0, x, false);
    nn_in(&c, 1, lo, false);
    ts_tensor *y = nn_run(&c);
    const double w1[6] = { -1.5, -1, 0, 0.5, 2, 9 };
    for (int i = 0; y && i < 6; i++) CHECK(ts_tensor_item_at(y, i) == w1[i]);
    CHECK(node_flops(&c) == 6);
    ts_tensor_release(y);
    nn_end(&c);
    nn_begin(&c, "Clip", "", "i-c", 1, 13);
    nn_in(&c, 0, x, false);
    nn_in(&c, 2, hi, false);
    y = nn_run(&c);
    const double w2[6] = { -3, -1, 0, 0.5, 1, 1 };
    for (int i = 0; y && i < 6; i++) CHECK(ts_tensor_item_at(y, i) == w2[i]);
    ts_tensor_release(y);
    nn_end(&c);
    /* opset 6: attributes */
    nn_begin(&c, "Clip", "", "i", 1, 6);
    nn_in(&c, 0, x, false);
    ts_gnode_set_float(c.g, c.node, "min", 0.0);
    ts_gnode_set_float(c.g, c.node, "max", 6.0);
    y = nn_run(&c);
    const double w3[6] = { 0, 0, 0, 0.5, 2, 6 };
    for (int i = 0; y && i < 6; i++) CHECK(ts_tensor_item_at(y, i) == w3[i]);
    ts_tensor_release(y);
    nn_end(&c);
    /* integers keep their dtype */
    int64_t iv[4] = { -5, 0, 3, 100 };
    ts_tensor *xi = ts_tensor_from_data(iv, TS_I64, (int64_t[]){ 4 }, 1, TS_I64);
    ts_tensor *ilo = ts_tensor_scalar(-2, TS_I64), *ihi = ts_tensor_scalar(10, TS_I64);
    nn_begin(&c, "Clip", "", "icc", 1, 13);
    nn_in(&c, 0, xi, false);
    nn_in(&c, 1, ilo, false);
    nn_in(&c, 2, ihi, false);
    y = nn_run(&c);
    CHECK(y && y->dtype == TS_I64 && ts_tensor_item_at(y, 0) == -2 && ts_tensor_item_at(y, 3) == 10);
    ts_tensor_release(y);
    nn_end(&c);
    ts_tensor_release(xi); ts_tensor_release(ilo); ts_tensor_release(ihi);
    ts_tensor_release(x); ts_tensor_release(lo); ts_tensor_release(hi);
}

static void test_softmax(void)
{
    float v[24];
    for (int i = 0; i < 24; i++) v[i] = (float)sin(i * 1.3) * 3;
    int64_t shape[3] = { 2, 3, 4 };
    ts_tensor *x = from_f32(v, shape, 3);
    for (int k = 0; k < 4; k++) {
        bool take_log = k & 1, old = k >= 2;
        onenode c;
        nn_begin(&c, take_log ? "LogSoftmax" : "Softmax", "", "i", 1, old ? 11 : 13);
        nn_in(&c, 0, x, true);
        ts_gnode_set_int(c.g, c.node, "axis", 1);
        ts_tensor *y = nn_run(&c);
        /* opset 13: over dim 1 (3 values, stride 4); opset 11: over the 12 values of each row */
        for (int i = 0; y && i < 24; i++) {
            int n = i / 12, col = i % 4;
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < (old ? 12 : 3); j++) {
                double e = v[old ? n * 12 + j : n * 12 + j * 4 + col];
                mx = fmax(mx, e);
            }
            for (int j = 0; j < (old ? 12 : 3); j++) sum += exp(v[old ? n * 12 + j : n * 12 + j * 4 + col] - mx);
            double want = take_log ? v[i] - mx - log(sum) : exp(v[i] - mx) / sum;
            CHECK_NEAR(ts_tensor_item_at(y, i), want, 1e-5);
        }
        CHECK(dims_are(&c, 0, 3, (int64_t[]){ 0, 3, 4 }, (const char *[]){ "N", NULL, NULL }));
        ts_tensor_release(y);
        nn_end(&c);
    }
    /* default axis of opset 13 is -1 */
    onenode c;
    nn_begin(&c, "Softmax", "", "i", 1, 13);
    nn_in(&c, 0, x, false);
    ts_tensor *y = nn_run(&c), *want = ts_softmax(x, -1);
    CLOSE(y, want, 1e-6);
    CHECK(node_flops(&c) == 3 * 24);
    ts_tensor_release(y);
    ts_tensor_release(want);
    nn_end(&c);
    ts_tensor_release(x);
}

static void test_binary(void)
{
    float av[6] = { 1, -2, 3, -4, 5, -6 }, bv[4] = { 0.5f, -1, 2, 4 };
    ts_tensor *a = from_f32(av, (int64_t[]){ 2, 3, 1 }, 3), *b = from_f32(bv, (int64_t[]){ 4 }, 1);
    const char *ops[5] = { "Add", "Sub", "Mul", "Div", "Pow" };
    for (int k = 0; k < 5; k++) {
        onenode c;
        nn_begin(&c, ops[k], "", "ii", 1, 14);
        nn_in(&c, 0, a, true);
        nn_in(&c, 1, b, false);
        ts_tensor *y = nn_run(&c);
        CHECK(dims_are(&c, 0, 3, (int64_t[]){ 0, 3, 4 }, (const char *[]){ "N", NULL, NULL }));
        for (int i = 0; y && i < 24; i++) {
            double p = av[i / 4], q = bv[i % 4];
            double w = k == 0 ? p + q : k == 1 ? p - q : k == 2 ? p * q : k == 3 ? p / q : pow(p, q);
            if (!isnan(w)) CHECK_NEAR(ts_tensor_item_at(y, i), w, 1e-6);
            else CHECK(isnan(ts_tensor_item_at(y, i)));   /* a negative base to a fractional power */
        }
        CHECK(node_flops(&c) < 0);
        ts_tensor_release(y);
        nn_end(&c);
    }
    /* symbolic broadcasting: [N, 1, 4] + [3, 1] -> [N, 3, 4] */
    onenode c;
    nn_begin(&c, "Add", "", "ii", 1, 14);
    ts_graph_set_info(c.g, c.ins[0], TS_F32, 3, (ts_dim[]){ ts_dim_sym(c.g, "N"), ts_dim_of(1), ts_dim_of(4) });
    ts_graph_set_info(c.g, c.ins[1], TS_F32, 2, (ts_dim[]){ ts_dim_of(3), ts_dim_of(1) });
    ts_graph_add_input(c.g, c.ins[0]);
    ts_graph_add_input(c.g, c.ins[1]);
    CHECK(nn_infer(&c) == TS_OK);
    CHECK(dims_are(&c, 0, 3, (int64_t[]){ 0, 3, 4 }, (const char *[]){ "N", NULL, NULL }));
    nn_end(&c);
    /* integer Div truncates toward zero and refuses division by zero */
    int64_t ia[4] = { 7, -7, 7, -7 }, ib[4] = { 2, 2, -2, -2 }, iz[4] = { 1, 0, 1, 1 };
    ts_tensor *A = ts_tensor_from_data(ia, TS_I64, (int64_t[]){ 4 }, 1, TS_I64);
    ts_tensor *B = ts_tensor_from_data(ib, TS_I64, (int64_t[]){ 4 }, 1, TS_I64);
    ts_tensor *Z = ts_tensor_from_data(iz, TS_I64, (int64_t[]){ 4 }, 1, TS_I64);
    nn_begin(&c, "Div", "", "ii", 1, 14);
    nn_in(&c, 0, A, false);
    nn_in(&c, 1, B, false);
    ts_tensor *y = nn_run(&c);
    CHECK(y && y->dtype == TS_I64);
    const int64_t wd[4] = { 3, -3, -3, 3 };
    for (int i = 0; y && i < 4; i++) CHECK(ts_tensor_item_at(y, i) == wd[i]);
    ts_tensor_release(y);
    nn_end(&c);
    nn_begin(&c, "Div", "", "ii", 1, 14);
    nn_in(&c, 0, A, false);
    nn_in(&c, 1, Z, false);
    ts_tensor *o1[1];
    CHECK(nn_exec(&c, o1) != TS_OK && error_has("node 'n' (Div)") && error_has("division by zero"));
    nn_end(&c);
    /* Pow keeps the base's dtype; mixed dtypes promote (i32 + f32 -> f32) */
    float e[4] = { 2, 2, 0.5f, 3 };
    ts_tensor *E = from_f32(e, (int64_t[]){ 4 }, 1);
    nn_begin(&c, "Pow", "", "ii", 1, 15);
    nn_in(&c, 0, B, false);
    nn_in(&c, 1, E, false);
    y = nn_run(&c);
    CHECK(y && y->dtype == TS_I64 && ts_tensor_item_at(y, 0) == 4 && ts_tensor_item_at(y, 3) == -8);
    ts_tensor_release(y);
    nn_end(&c);
    ts_tensor *A32 = ts_to_dtype(A, TS_I32);
    nn_begin(&c, "Add", "", "ii", 1, 14);
    nn_in(&c, 0, A32, false);
    nn_in(&c, 1, E, false);
    y = nn_run(&c);   /* nn_exec checks inferred dtype == actual */
    CHECK(y && y->dtype == TS_F32 && ts_tensor_item_at(y, 2) == 7.5);
    ts_tensor_release(y);
    nn_end(&c);
    /* constant inputs fold at inference: the output becomes a constant */
    nn_begin(&c, "Mul", "", "cc", 1, 14);
    nn_in(&c, 0, A, false);
    nn_in(&c, 1, B, false);
    CHECK(nn_infer(&c) == TS_OK);
    const ts_tensor *folded = out_info(&c, 0)->constant;
    CHECK(folded && ts_tensor_item_at(folded, 1) == -14);
    nn_end(&c);
    ts_tensor_release(A); ts_tensor_release(B); ts_tensor_release(Z); ts_tensor_release(E); ts_tensor_release(A32);
    ts_tensor_release(a); ts_tensor_release(b);
}

static void test_variadic(void)
{
    float p[6] = { 1, 5, -2, 8, 0, 3 }, q[3] = { 2, 2, 2 }, r[1] = { 4 };
    ts_tensor *P = from_f32(p, (int64_t[]){ 2, 3 }, 2), *Q = from_f32(q, (int64_t[]){ 3 }, 1);
    ts_tensor *R = from_f32(r, (int64_t[]){ 1 }, 1);
    const char *ops[4] = { "Min", "Max", "Sum", "Mean" };
    for (int k = 0; k < 4; k++) {
        onenode c;
        nn_begin(&c, ops[k], "", "iii", 1, 13);
        nn_in(&c, 0, P, true);
        nn_in(&c, 1, Q, false);
        nn_in(&c, 2, R, false);
        ts_tensor *y = nn_run(&c);
        for (int i = 0; y && i < 6; i++) {
            double w = k == 0 ? fmin(fmin(p[i], 2), 4) : k == 1 ? fmax(fmax(p[i], 2), 4) : p[i] + 6;
            if (k == 3) w /= 3;
            CHECK_NEAR(ts_tensor_item_at(y, i), w, 1e-6);
        }
        ts_tensor_release(y);
        nn_end(&c);
        /* FLOPs on concrete shapes: (inputs - 1) * numel, Mean inputs * numel */
        nn_begin(&c, ops[k], "", "iii", 1, 13);
        nn_in(&c, 0, P, false);
        nn_in(&c, 1, Q, false);
        nn_in(&c, 2, R, false);
        CHECK(nn_infer(&c) == TS_OK);
        CHECK(node_flops(&c) == (k == 3 ? 18 : 12));
        nn_end(&c);
    }
    onenode c;
    nn_begin(&c, "Sum", "", "i", 1, 13);
    nn_in(&c, 0, P, false);
    ts_tensor *y = nn_run(&c);
    CLOSE(y, P, 0);
    ts_tensor_release(y);
    nn_end(&c);
    ts_tensor_release(P); ts_tensor_release(Q); ts_tensor_release(R);
}

/* ---- Einsum (the equations of gen_graph_ops.py, in its order) ------------------------------------ */

static void test_einsum(void)
{
    static const struct { const char *eq; int n; } cases[] = {
        { "bij,bjk->bik", 2 }, { "ij->ji", 1 }, { "ii->i", 1 }, { "...ij,...jk->...ik", 2 }, { "ij,jk", 2 },
        { "bhqd,bhkd->bhqk", 2 }, { "i,i->", 2 }, { "ijk->k", 1 }, { "ij,jk,kl->il", 3 }, { "iij->j", 1 },
        { "bi,bj->bij", 2 },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char name[32], spec[8] = { 0 };
        ts_tensor *ins[3];
        for (int i = 0; i < cases[k].n; i++) {
            snprintf(name, sizeof name, "einsum%d.in%d", (int)k, i);
            ins[i] = ref(name);
            spec[i] = 'i';
        }
        snprintf(name, sizeof name, "einsum%d.y", (int)k);
        ts_tensor *want = ref(name);
        onenode c;
        nn_begin(&c, "Einsum", "", spec, 1, 12);
        for (int i = 0; i < cases[k].n; i++) nn_in(&c, i, ins[i], false);
        ts_gnode_set_string(c.g, c.node, "equation", cases[k].eq, strlen(cases[k].eq));
        ts_tensor *y = nn_run(&c);
        if (!close_to(y, want, 1e-5, cases[k].eq)) CHECK(0);
        if (k == 0) CHECK(node_flops(&c) == 2.0 * 2 * 3 * 4 * 5);
        ts_tensor_release(y);
        ts_tensor_release(want);
        for (int i = 0; i < cases[k].n; i++) ts_tensor_release(ins[i]);
        nn_end(&c);
    }
    /* symbolic batch flows through; bad equations are refused */
    onenode c;
    nn_begin(&c, "Einsum", "", "ii", 1, 12);
    ts_graph_set_info(c.g, c.ins[0], TS_F32, 3, (ts_dim[]){ ts_dim_sym(c.g, "N"), ts_dim_of(3), ts_dim_of(4) });
    ts_graph_set_info(c.g, c.ins[1], TS_F32, 2, (ts_dim[]){ ts_dim_of(4), ts_dim_of(6) });
    ts_graph_add_input(c.g, c.ins[0]);
    ts_graph_add_input(c.g, c.ins[1]);
    ts_gnode_set_string(c.g, c.node, "equation", "nij,jk->nki", 11);
    CHECK(nn_infer(&c) == TS_OK);
    CHECK(dims_are(&c, 0, 3, (int64_t[]){ 0, 6, 3 }, (const char *[]){ "N", NULL, NULL }));
    nn_end(&c);
    const char *bad[4] = { "ij,jk->iz", "ijk,jk->", "i.j,jk->ik", "ij,jk->ii" };
    const char *why[4] = { "in no input", "does not fit", "bad ellipsis", "repeats" };
    for (int k = 0; k < 4; k++) {
        nn_begin(&c, "Einsum", "", "ii", 1, 12);
        for (int i = 0; i < 2; i++) {
            ts_graph_set_info(c.g, c.ins[i], TS_F32, 2, (ts_dim[]){ ts_dim_of(2), ts_dim_of(2) });
            ts_graph_add_input(c.g, c.ins[i]);
        }
        ts_gnode_set_string(c.g, c.node, "equation", bad[k], strlen(bad[k]));
        for (int o = 0; o < c.n_out; o++) ts_graph_add_output(c.g, c.outs[o]);
        CHECK(ts_graph_infer(c.g, NULL, NULL, 0) != TS_OK && error_has("node 'n' (Einsum)") && error_has(why[k]));
        nn_end(&c);
    }
}

/* ---- passes -------------------------------------------------------------------------------------- */

static ts_tensor *randn_like(const int64_t *shape, int ndim, double scale, uint32_t seed)
{
    ts_tensor *t = ts_tensor_new(shape, ndim, TS_F32);
    int64_t n = ts_tensor_numel(t);
    float *p = ts_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(((seed >> 8) / 16777216.0 - 0.5) * 2 * scale);
    }
    return t;
}

/* Adds a const value named `name` holding t (taken). */
static int add_const(ts_graph *g, const char *name, ts_tensor *t)
{
    int v = ts_graph_value(g, name);
    ts_graph_set_const(g, v, t, true);
    ts_tensor_release(t);
    return v;
}

/* conv(3x3, pad 1, no bias) -> BN, writing `out`. */
static void add_conv_bn(ts_graph *g, const char *tag, int in, int out, int64_t ci, int64_t co, uint32_t seed)
{
    char name[64];
    snprintf(name, sizeof name, "%s.w", tag);
    int w = add_const(g, name, randn_like((int64_t[]){ co, ci, 3, 3 }, 4, 0.3, seed));
    int bnp[4];
    const char *pn[4] = { "scale", "bias", "mean", "var" };
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.bn.%s", tag, pn[i]);
        ts_tensor *t = randn_like((int64_t[]){ co }, 1, 0.5, seed + 7 * (uint32_t)i + 1);
        if (i == 3) { ts_unary_(TS_ABS, t); ts_binary_scalar_(TS_ADD, t, 0.5); }
        if (i == 0) ts_binary_scalar_(TS_ADD, t, 1.0);
        bnp[i] = add_const(g, name, t);
    }
    snprintf(name, sizeof name, "%s.conv_out", tag);
    int y = ts_graph_value(g, name);
    snprintf(name, sizeof name, "%s.conv", tag);
    int n = ts_graph_add_node(g, "Conv", "", name, (int[]){ in, w }, 2, &y, 1);
    ts_gnode_set_ints(g, n, "pads", (int64_t[]){ 1, 1, 1, 1 }, 4);
    snprintf(name, sizeof name, "%s.bn", tag);
    ts_graph_add_node(g, "BatchNormalization", "", name, (int[]){ y, bnp[0], bnp[1], bnp[2], bnp[3] }, 5, &out, 1);
}

/* ResNet's basic block: relu(bn(conv(relu(bn(conv(x))))) + x). */
static ts_graph *basic_block(int64_t c, int64_t hw)
{
    ts_graph *g = ts_graph_new("block");
    ts_graph_set_opset(g, "", 13);
    int x = ts_graph_value(g, "x");
    ts_graph_set_info(g, x, TS_F32, 4, (ts_dim[]){ ts_dim_sym(g, "N"), ts_dim_of(c), ts_dim_of(hw), ts_dim_of(hw) });
    ts_graph_add_input(g, x);
    int b1 = ts_graph_value(g, "b1"), r1 = ts_graph_value(g, "r1"), b2 = ts_graph_value(g, "b2");
    int s = ts_graph_value(g, "s"), y = ts_graph_value(g, "y");
    add_conv_bn(g, "c1", x, b1, c, c, 11);
    ts_graph_add_node(g, "Relu", "", "relu1", &b1, 1, &r1, 1);
    add_conv_bn(g, "c2", r1, b2, c, c, 23);
    ts_graph_add_node(g, "Add", "", "add", (int[]){ b2, x }, 2, &s, 1);
    ts_graph_add_node(g, "Relu", "", "relu2", &s, 1, &y, 1);
    ts_graph_add_output(g, y);
    return g;
}

static ts_tensor *run_graph(ts_graph *g, ts_tensor *x)
{
    ts_exec *e = ts_exec_new(g, NULL);
    ts_tensor *y = NULL;
    if (!e || ts_exec_run(e, &x, 1, &y, 1)) fprintf(stderr, "  run: %s\n", ts_last_error());
    ts_exec_free(e);
    return y;
}

static void test_fold_and_fuse(void)
{
    ts_graph *g = basic_block(8, 6);
    CHECK(ts_graph_infer(g, NULL, NULL, 0) == TS_OK);
    ts_tensor *x = randn_like((int64_t[]){ 2, 8, 6, 6 }, 4, 1.0, 5);
    ts_tensor *before = run_graph(g, x);
    CHECK(ts_graph_node_count(g) == 7);
    CHECK(ts_graph_fold_conv_bn(g) == TS_OK);
    CHECK(ts_graph_node_count(g) == 5);
    CHECK(ts_graph_infer(g, NULL, NULL, 0) == TS_OK);
    ts_tensor *folded = run_graph(g, x);
    CLOSE(folded, before, 1e-5);
    CHECK(ts_graph_fuse_conv_act(g) == TS_OK);
    CHECK(ts_graph_node_count(g) == 2);
    CHECK(ts_graph_opset(g, "com.microsoft") == 1);
    for (int k = 0; k < ts_graph_node_count(g); k++) {
        const ts_gnode *n = ts_graph_node(g, k);
        CHECK(!strcmp(n->op_type, "FusedConv") && !strcmp(n->domain, "com.microsoft"));
        CHECK(!strcmp(ts_gnode_string(n, "activation", ""), "Relu"));
        CHECK(n->n_inputs == (k ? 4 : 3));
    }
    /* the graph output keeps its name; the BN statistics and old weights are gone */
    CHECK(!strcmp(ts_graph_val(g, ts_graph_output(g, 0))->name, "y"));
    CHECK(ts_graph_find_value(g, "c1.bn.mean") < 0 && ts_graph_find_value(g, "c1.w") < 0);
    CHECK(ts_graph_infer(g, NULL, NULL, 0) == TS_OK);
    CHECK(ts_graph_val(g, ts_graph_output(g, 0))->dims[0].sym == ts_graph_symbol(g, "N"));
    ts_tensor *fused = run_graph(g, x);
    CLOSE(fused, before, 1e-5);
    /* the 8-channel convolutions stay FusedConv; all of it again on a wider block, through optimize_nn */
    CHECK(ts_graph_prepack_winograd(g) == TS_OK && ts_graph_node_count(g) == 2);
    ts_graph *g2 = basic_block(16, 7);
    ts_tensor *x2 = randn_like((int64_t[]){ 1, 16, 7, 7 }, 4, 1.0, 8);
    CHECK(ts_graph_infer(g2, NULL, NULL, 0) == TS_OK);
    ts_tensor *before2 = run_graph(g2, x2);
    CHECK(ts_graph_optimize_nn(g2) == TS_OK && ts_graph_infer(g2, NULL, NULL, 0) == TS_OK);
    CHECK(ts_graph_node_count(g2) == 2 && !strcmp(ts_graph_node(g2, 0)->op_type, "WinogradConv") &&
          !strcmp(ts_graph_node(g2, 1)->op_type, "WinogradConv") && ts_graph_node(g2, 1)->n_inputs == 4);
    ts_tensor *after2 = run_graph(g2, x2);
    CLOSE(after2, before2, 1e-5);
    ts_tensor_release(before2);
    ts_tensor_release(after2);
    ts_tensor_release(x2);
    ts_graph_free(g2);
    ts_tensor_release(before);
    ts_tensor_release(folded);
    ts_tensor_release(fused);
    ts_tensor_release(x);
    ts_graph_free(g);

    /* not folded: the conv output is also a graph output; a shared intermediate is not fused */
    g = basic_block(4, 5);
    int b1 = ts_graph_find_value(g, "c1.conv_out");
    ts_graph_add_output(g, b1);
    CHECK(ts_graph_infer(g, NULL, NULL, 0) == TS_OK);
    CHECK(ts_graph_fold_conv_bn(g) == TS_OK);
    CHECK(ts_graph_node_count(g) == 6);
    CHECK(ts_graph_fuse_conv_act(g) == TS_OK);
    int fusedn = 0;
    for (int k = 0; k < ts_graph_node_count(g); k++) fusedn += !strcmp(ts_graph_node(g, k)->op_type, "FusedConv");
    CHECK(fusedn == 1);   /* c2 (+ Add + Relu); c1 feeds a graph output */
    ts_graph_free(g);
}

/* Graph: one conv node (op, domain) reading x [N, C, H, W] (N symbolic),
 * constant w, optional constant bias and graph input z; output y. */
static ts_graph *conv_graph(const char *op, const char *domain, const int64_t *xs, ts_tensor *w, ts_tensor *b, bool z,
                            int *node)
{
    ts_graph *g = ts_graph_new("conv");
    ts_graph_set_opset(g, "", 13);
    int x = ts_graph_value(g, "x"), wv = ts_graph_value(g, "w"), bv = -1, zv = -1, y = ts_graph_value(g, "y");
    ts_graph_set_info(g, x, TS_F32, 4, (ts_dim[]){ ts_dim_sym(g, "N"), ts_dim_of(xs[1]), ts_dim_of(xs[2]), ts_dim_of(xs[3]) });
    ts_graph_add_input(g, x);
    ts_graph_set_const(g, wv, w, true);
    if (b) {
        bv = ts_graph_value(g, "b");
        ts_graph_set_const(g, bv, b, true);
    }
    if (z) {
        zv = ts_graph_value(g, "z");
        ts_graph_set_info(g, zv, TS_F32, 4, (ts_dim[]){ ts_dim_sym(g, "N"), ts_dim_unknown(), ts_dim_unknown(), ts_dim_unknown() });
        ts_graph_add_input(g, zv);
    }
    *node = ts_graph_add_node(g, op, domain, "conv", (int[]){ x, wv, bv, zv }, z ? 4 : b ? 3 : 2, &y, 1);
    ts_graph_add_output(g, y);
    return g;
}

static ts_tensor *run_graph2(ts_graph *g, ts_tensor *x, ts_tensor *z)
{
    ts_exec *e = ts_exec_new(g, NULL);
    ts_tensor *y = NULL, *in[2] = { x, z };
    if (!e || ts_exec_run(e, in, z ? 2 : 1, &y, 1)) fprintf(stderr, "  run: %s\n", ts_last_error());
    ts_exec_free(e);
    return y;
}

static void test_winograd(void)
{
    /* odd output sizes (edge tiles), asymmetric pads, bias, batch 2 */
    int64_t xs[4] = { 2, 16, 9, 7 }, ws[4] = { 24, 16, 3, 3 };
    ts_tensor *x = randn_like(xs, 4, 1.0, 3), *w = randn_like(ws, 4, 0.3, 4), *b = randn_like(&ws[0], 1, 0.5, 5);
    int node;
    ts_graph *g = conv_graph("Conv", "", xs, w, b, false, &node);
    ts_gnode_set_ints(g, node, "pads", (int64_t[]){ 1, 0, 2, 1 }, 4);
    CHECK(ts_graph_infer(g, NULL, NULL, 0) == TS_OK);
    ts_tensor *want = run_graph2(g, x, NULL);
    CHECK(ts_graph_prepack_winograd(g) == TS_OK);
    CHECK(ts_graph_node_count(g) == 1 && !strcmp(ts_graph_node(g, 0)->op_type, "WinogradConv"));
    CHECK(ts_graph_opset(g, "ai.torsh") == 1 && ts_graph_find_value(g, "w") < 0);
    CHECK(ts_graph_infer(g, NULL, NULL, 0) == TS_OK);
    const ts_gvalue *yv = ts_graph_val(g, ts_graph_output(g, 0));
    CHECK(yv->ndim == 4 && yv->dims[0].sym == ts_graph_symbol(g, "N") && yv->dims[1].size == 24 &&
          yv->dims[2].size == 10 && yv->dims[3].size == 6);
    ts_tensor *got = run_graph2(g, x, NULL);
    CLOSE(got, want, 1e-5);
    ts_tensor_release(got);
    ts_tensor_release(want);
    ts_graph_free(g);
    /* FusedConv with Z and Relu, SAME_UPPER; FLOPs kept */
    int64_t ys[4] = { 2, 24, 9, 7 };
    ts_tensor *z = randn_like(ys, 4, 1.0, 6);
    g = conv_graph("FusedConv", "com.microsoft", xs, w, b, true, &node);
    ts_gnode_set_string(g, node, "auto_pad", "SAME_UPPER", 10);
    ts_gnode_set_string(g, node, "activation", "Relu", 4);
    CHECK(ts_graph_infer(g, (const char *[]){ "N" }, (int64_t[]){ 2 }, 1) == TS_OK);
    const ts_op_def *def = ts_op_find("com.microsoft", "FusedConv");
    const ts_gnode *n = ts_graph_node(g, 0);
    const ts_gvalue *in[4], *out[1];
    for (int i = 0; i < 4; i++) in[i] = ts_graph_val(g, n->inputs[i]);
    out[0] = ts_graph_val(g, n->outputs[0]);
    double flops = def->flops(n, in, out);
    CHECK(flops == 2.0 * 2 * 24 * 9 * 7 * 16 * 9);
    want = run_graph2(g, x, z);
    CHECK(ts_graph_prepack_winograd(g) == TS_OK);
    CHECK(ts_graph_infer(g, (const char *[]){ "N" }, (int64_t[]){ 2 }, 1) == TS_OK);
    n = ts_graph_node(g, 0);
    CHECK(!strcmp(n->op_type, "WinogradConv") && !strcmp(ts_gnode_string(n, "activation", ""), "Relu"));
    def = ts_op_find("ai.torsh", "WinogradConv");
    for (int i = 0; i < 4; i++) in[i] = ts_graph_val(g, n->inputs[i]);
    out[0] = ts_graph_val(g, n->outputs[0]);
    CHECK(def && def->flops(n, in, out) == flops);
    got = run_graph2(g, x, z);
    CLOSE(got, want, 1e-5);
    ts_tensor_release(got);
    ts_tensor_release(want);
    ts_graph_free(g);
    /* left alone: stride 2, group 2, too few channels */
    for (int k = 0; k < 3; k++) {
        ts_tensor *wk = k == 1 ? randn_like((int64_t[]){ 24, 8, 3, 3 }, 4, 0.3, 7) : k == 2 ? randn_like((int64_t[]){ 8, 16, 3, 3 }, 4, 0.3, 7) : w;
        if (k) ts_tensor_retain(w);
        g = conv_graph("Conv", "", xs, wk, NULL, false, &node);
        if (k == 0) ts_gnode_set_ints(g, node, "strides", (int64_t[]){ 2, 2 }, 2);
        if (k == 1) ts_gnode_set_int(g, node, "group", 2);
        CHECK(ts_graph_infer(g, NULL, NULL, 0) == TS_OK);
        CHECK(ts_graph_prepack_winograd(g) == TS_OK);
        CHECK(!strcmp(ts_graph_node(g, 0)->op_type, "Conv"));
        ts_graph_free(g);
        if (k) {
            ts_tensor_release(wk);
            ts_tensor_release(w);
        }
    }
    ts_tensor_release(x); ts_tensor_release(w); ts_tensor_release(b); ts_tensor_release(z);
}

/* ---- timing (not asserted) ------------------------------------------------------------------------- */

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void test_timing(void)
{
    const char *env = getenv("TORSH_TEST_TIMING");
    if (env && !strcmp(env, "0")) return;
    ts_graph *g = basic_block(64, 56);
    ts_graph_infer(g, NULL, NULL, 0);
    ts_tensor *x = randn_like((int64_t[]){ 1, 64, 56, 56 }, 4, 1.0, 9);
    double t_plain = 0, t_fused = 0;
    for (int pass = 0; pass < 2; pass++) {
        ts_exec *e = ts_exec_new(g, NULL);
        ts_tensor *y = NULL;
        for (int i = 0; i < 2; i++) { ts_exec_run(e, &x, 1, &y, 1); ts_tensor_release(y); }
        double t0 = now_ms();
        for (int i = 0; i < 10; i++) { ts_exec_run(e, &x, 1, &y, 1); ts_tensor_release(y); }
        double t = (now_ms() - t0) / 10;
        ts_exec_free(e);
        if (pass == 0) {
            t_plain = t;
            ts_graph_optimize_nn(g);
            ts_graph_infer(g, NULL, NULL, 0);
        } else {
            t_fused = t;
        }
    }
    printf("# timing: ResNet basic block 64x56x56 batch 1: %.2f ms as exported, %.2f ms after ts_graph_optimize_nn "
           "(2 convs = %.0f MFLOPs)\n", t_plain, t_fused, 2 * 2.0 * 64 * 56 * 56 * 64 * 9 / 1e6);
    ts_tensor_release(x);
    ts_graph_free(g);
}

int main(void)
{
    RUN(test_conv2d);
    RUN(test_conv_auto_pad);
    RUN(test_conv1d);
    RUN(test_conv_errors_and_flops);
    RUN(test_conv_transpose);
    RUN(test_fused_conv);
    RUN(test_gemm);
    RUN(test_matmul);
    RUN(test_norms);
    RUN(test_pools);
    RUN(test_unary);
    RUN(test_clip);
    RUN(test_softmax);
    RUN(test_binary);
    RUN(test_variadic);
    RUN(test_einsum);
    RUN(test_fold_and_fuse);
    RUN(test_winograd);
    RUN(test_timing);
    return check_finish("graph_ops_nn");
}
