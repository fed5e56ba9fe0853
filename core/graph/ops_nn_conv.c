/* ops_nn_conv.c — the graph's convolution and matrix ops with ONNX
 * semantics: Conv (1-D and 2-D; group, strides, dilations, pads,
 * auto_pad SAME_UPPER / SAME_LOWER / VALID, optional bias), ConvTranspose
 * (1-D and 2-D; output_padding, output_shape, auto_pad), com.microsoft's
 * FusedConv (Conv, then + Z, then an activation: what ops_nn_fuse.c's
 * pass produces, as ONNX Runtime does), Gemm and MatMul (the sliding-window
 * helpers they share with the pools are in ops_nn.c).
 *
 * Conv runs ts_conv2d / ts_conv1d (im2col + GEMM); asymmetric pads pad the
 * input first. ConvTranspose is the input gradient of a convolution
 * (ts_conv2d_backward). Gemm calls BLAS on the operands as they lie (transA
 * / transB become GEMM flags, no copies for contiguous f32/f64), C (or its
 * row, for the common bias vector) written into the output first and
 * scaled by beta inside the GEMM. MatMul is ts_matmul (torch.matmul is
 * numpy's matmul). FLOPs: see ops_nn.h.
 * Uses: torsh/ops.h, torsh/blas.h, core/tensor's nn_grad.h (conv backward). */
#include "ops_nn.h"
#include "nn_grad.h"
#include "torsh/blas.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Spatial sizes of a value's dims [2..] as int64 (-1 when unknown). */
static void spatial_sizes(const ts_gvalue *v, int nsp, int64_t *out)
{
    for (int i = 0; i < nsp; i++) out[i] = v && v->ndim == nsp + 2 ? v->dims[2 + i].size : -1;
}

/* ---- Conv --------------------------------------------------------------------------- */

/* y = conv(x, w, b) with node's attributes; x [N, C, *sp], w [M, C/group, *k]. */
static ts_tensor *conv_run(const ts_gnode *node, const ts_tensor *x, const ts_tensor *w, const ts_tensor *b)
{
    char sx[TS_SHAPE_STR_CAP], sw[TS_SHAPE_STR_CAP];
    int nsp = w->ndim - 2;
    if (nsp < 1 || nsp > 2 || x->ndim != w->ndim)
        return ts_fail_null(nsp > 2 && x->ndim == w->ndim ? TS_ERR_UNSUPPORTED : TS_ERR_ARG,
                            "%s: input %s and weight %s: only 1-D and 2-D convolutions ([N, C, L] or [N, C, H, W]) "
                            "are supported", node->op_type, ts_shape_str(x->shape, x->ndim, sx, sizeof sx),
                            ts_shape_str(w->shape, w->ndim, sw, sizeof sw));
    nn_window win;
    if (nn_window_read(node, nsp, w->shape + 2, x->shape + 2, &win)) return NULL;
    ts_conv_params p = { { 1, 1 }, { 0, 0 }, { 1, 1 }, ts_gnode_int(node, "group", 1) };
    bool symmetric = true;
    for (int i = 0; i < nsp; i++) {
        p.stride[i] = win.s[i];
        p.dilation[i] = win.d[i];
        p.padding[i] = win.pb[i];
        symmetric = symmetric && win.pb[i] == win.pe[i];
    }
    ts_tensor *xp = (ts_tensor *)x;
    ts_tensor_retain(xp);
    if (!symmetric) {   /* pad explicitly: {last_lo, last_hi, prev_lo, prev_hi} */
        int64_t pads[4];
        for (int i = 0; i < nsp; i++) {
            pads[2 * i] = win.pb[nsp - 1 - i];
            pads[2 * i + 1] = win.pe[nsp - 1 - i];
            p.padding[i] = 0;
        }
        ts_tensor_release(xp);
        if (!(xp = ts_pad(x, pads, 2 * nsp, TS_PAD_CONSTANT, 0))) return NULL;
    }
    ts_tensor *y = nsp == 1 ? ts_conv1d(xp, w, b, &p) : ts_conv2d(xp, w, b, &p);
    ts_tensor_release(xp);
    return y;
}

static ts_status k_conv(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0) || ts_kernel_need(ctx, in, n_in, 1)) return ts_last_status();
    return nn_out1(out, conv_run(ctx->node, in[0], in[1], n_in > 2 ? in[2] : NULL));
}

bool nn_fused_activation_ok(const char *name)
{
    static const char *const ok[] = { "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid" };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(name, ok[i])) return true;
    return false;
}

/* FusedConv (com.microsoft): activation(conv(X, W, B) + Z); the activation
 * runs in place on the convolution's own fresh result. */
static ts_status k_fused_conv(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0) || ts_kernel_need(ctx, in, n_in, 1)) return ts_last_status();
    const ts_gnode *n = ctx->node;
    const char *act = ts_gnode_string(n, "activation", "");
    int64_t np = 0;
    const double *params = NULL;
    const ts_attr *pa = ts_gnode_attr(n, "activation_params");
    if (pa && pa->type == TS_ATTR_FLOATS) { params = pa->floats; np = pa->n; }
    if (*act && !nn_fused_activation_ok(act))
        return ts_fail(TS_ERR_UNSUPPORTED, "FusedConv: activation \"%s\" is not supported (Relu, LeakyRelu, Sigmoid, "
                       "Tanh, Clip, HardSigmoid)", act);
    ts_tensor *y = conv_run(n, in[0], in[1], n_in > 2 ? in[2] : NULL);
    if (!y) return ts_last_status();
    ts_status st = TS_OK;
    if (n_in > 3 && in[3]) st = ts_binary_(TS_ADD, y, in[3]);
    if (st || !*act) {
        /* nothing more */
    } else if (!strcmp(act, "Relu")) {
        st = ts_unary_(TS_RELU, y);
    } else if (!strcmp(act, "Sigmoid")) {
        st = ts_unary_(TS_SIGMOID, y);
    } else if (!strcmp(act, "Tanh")) {
        st = ts_unary_(TS_TANH, y);
    } else if (!strcmp(act, "Clip")) {
        st = ts_clamp_(y, np > 0 ? params[0] : NAN, np > 1 ? params[1] : NAN);
    } else if (!strcmp(act, "LeakyRelu")) {
        ts_tensor *r = ts_leaky_relu(y, np > 0 ? params[0] : 0.01);
        ts_tensor_release(y);
        y = r;
        st = r ? TS_OK : ts_last_status();
    } else if (!strcmp(act, "HardSigmoid")) {
        st = ts_binary_scalar_(TS_MUL, y, np > 0 ? params[0] : 0.2);
        if (!st) st = ts_binary_scalar_(TS_ADD, y, np > 1 ? params[1] : 0.5);
        if (!st) st = ts_clamp_(y, 0, 1);
    }
    if (st) {
        ts_tensor_release(y);
        return st;
    }
    return nn_out1(out, y);
}

static ts_status infer_conv(ts_graph *g, const ts_gnode *n, int64_t opset, const ts_gvalue *const *in,
                            ts_gvalue *const *out)
{
    const ts_gvalue *x = in[0], *w = n->n_inputs > 1 ? in[1] : NULL;
    char sa[TS_SHAPE_STR_CAP], sb[TS_SHAPE_STR_CAP];
    if (!x) return ts_fail(TS_ERR_ARG, "%s: input X is missing", n->op_type);
    if (!w) return ts_fail(TS_ERR_ARG, "%s: weight W is missing", n->op_type);
    int rank = x->ndim >= 0 ? x->ndim : w->ndim;
    if (rank < 0) {
        ts_gval_set(out[0], x->dtype, TS_RANK_UNKNOWN, NULL);
        return TS_OK;
    }
    if (x->ndim >= 0 && w->ndim >= 0 && x->ndim != w->ndim)
        return ts_fail(TS_ERR_ARG, "%s: input %s and weight %s differ in rank", n->op_type,
                       ts_dims_str(g, x->dims, x->ndim, sa, sizeof sa), ts_dims_str(g, w->dims, w->ndim, sb, sizeof sb));
    if (rank < 3) return ts_fail(TS_ERR_ARG, "%s: input must be [N, C, spatial...], got rank %d", n->op_type, rank);
    int nsp = rank - 2;
    int64_t group = ts_gnode_int(n, "group", 1);
    if (group < 1) return ts_fail(TS_ERR_ARG, "%s: group must be >= 1, got %lld", n->op_type, (long long)group);
    ts_dim dims[TS_MAX_DIMS];
    bool transpose = !strcmp(n->op_type, "ConvTranspose");
    dims[0] = x->ndim >= 0 ? x->dims[0] : ts_dim_unknown();
    dims[1] = ts_dim_unknown();
    if (w->ndim >= 0) {
        ts_dim wc = w->dims[transpose ? 1 : 0];
        dims[1] = transpose && ts_dim_known(wc) ? ts_dim_of(wc.size * group) : wc;
        ts_dim cin = transpose ? w->dims[0] : w->dims[1];
        if (x->ndim >= 0 && ts_dim_known(x->dims[1]) && ts_dim_known(cin) &&
            x->dims[1].size != cin.size * (transpose ? 1 : group))
            return ts_fail(TS_ERR_ARG, "%s: input %s has %lld channels but weight %s expects %lld (group %lld)",
                           n->op_type, ts_dims_str(g, x->dims, x->ndim, sa, sizeof sa), (long long)x->dims[1].size,
                           ts_dims_str(g, w->dims, w->ndim, sb, sizeof sb),
                           (long long)(cin.size * (transpose ? 1 : group)), (long long)group);
    }
    int64_t kernel[NN_MAX_SP], insz[NN_MAX_SP];
    bool kernel_known = w->ndim == rank;
    for (int i = 0; kernel_known && i < nsp && i < NN_MAX_SP; i++) {
        kernel[i] = w->dims[2 + i].size;
        kernel_known = kernel[i] >= 0;
    }
    if (!kernel_known && ts_gnode_attr(n, "kernel_shape")) {
        int64_t got = 0;
        const int64_t *ks = ts_gnode_ints(n, "kernel_shape", &got);
        kernel_known = got == nsp;
        for (int i = 0; kernel_known && i < nsp; i++) kernel[i] = ks[i];
    }
    for (int i = 0; i < nsp; i++) dims[2 + i] = ts_dim_unknown();
    if (nsp <= NN_MAX_SP && kernel_known) {
        spatial_sizes(x, nsp, insz);
        nn_window win;
        if (transpose) {
            int64_t got = 0;
            const int64_t *os = ts_gnode_ints(n, "output_shape", &got);
            int64_t op[NN_MAX_SP];
            if (nn_window_read(n, nsp, kernel, NULL, &win) || nn_read_spatial(n, "output_padding", nsp, 0, 0, op))
                return ts_last_status();
            for (int i = 0; i < nsp; i++) {
                if (os && got >= nsp) {
                    dims[2 + i] = ts_dim_of(os[got - nsp + i]);
                    continue;
                }
                if (insz[i] < 0) continue;
                int64_t full = win.s[i] * (insz[i] - 1) + op[i] + (win.k[i] - 1) * win.d[i] + 1;
                if (win.auto_pad) dims[2 + i] = ts_dim_of(insz[i] * win.s[i]);
                else dims[2 + i] = ts_dim_of(full - win.pb[i] - win.pe[i]);
            }
        } else {
            if (nn_window_read(n, nsp, kernel, insz, &win)) return ts_last_status();
            for (int i = 0; i < nsp; i++) {
                dims[2 + i] = nn_window_out_dim(&win, i, x->ndim >= 0 ? x->dims[2 + i] : ts_dim_unknown());
                if (ts_dim_known(dims[2 + i]) && dims[2 + i].size < 1)
                    return ts_fail(TS_ERR_ARG, "%s: input %s is too small for a kernel of %lld along spatial dim %d",
                                   n->op_type, ts_dims_str(g, x->dims, x->ndim, sa, sizeof sa), (long long)kernel[i],
                                   i);
            }
        }
    }
    ts_gval_set(out[0], x->dtype != TS_DTYPE_UNKNOWN ? x->dtype : w->dtype, rank, dims);
    return TS_OK;
}

/* 2 * numel(Y) * Cin/group * prod(kernel); ConvTranspose: 2 * numel(X) * Cout/group * prod(kernel). */
static double flops_conv(const ts_gnode *n, const ts_gvalue *const *in, const ts_gvalue *const *out)
{
    bool transpose = !strcmp(n->op_type, "ConvTranspose");
    int64_t work = ts_gval_numel(transpose ? in[0] : out[0]);
    int64_t wsz[TS_MAX_DIMS];
    if (work < 0 || n->n_inputs < 2 || !in[1] || !ts_gval_concrete(in[1], wsz) || in[1]->ndim < 2) return -1;
    double per = (double)wsz[1];
    for (int i = 2; i < in[1]->ndim; i++) per *= (double)wsz[i];
    return 2.0 * (double)work * per;
}

/* ---- ConvTranspose ------------------------------------------------------------------ */

/* The input gradient of the convolution [N, Cout, full] -> [N, Cin, in] with
 * weight W [Cin, Cout/group, *k], then cropped by the pads. */
static ts_status k_conv_transpose(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out,
                                  int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0) || ts_kernel_need(ctx, in, n_in, 1)) return ts_last_status();
    const ts_gnode *n = ctx->node;
    const ts_tensor *x = in[0], *w = in[1], *b = n_in > 2 ? in[2] : NULL;
    char sx[TS_SHAPE_STR_CAP], sw[TS_SHAPE_STR_CAP];
    int nsp = w->ndim - 2;
    int64_t group = ts_gnode_int(n, "group", 1);
    if (nsp < 1 || nsp > 2 || x->ndim != w->ndim || group < 1 || x->shape[1] != w->shape[0] ||
        w->shape[0] % group || !ts_dtype_is_float(x->dtype) || !ts_dtype_is_float(w->dtype))
        return ts_fail(TS_ERR_ARG, "ConvTranspose: input %s and weight %s (group %lld) do not fit: want floating "
                       "[N, C, L] or [N, C, H, W] and [C, Cout/group, *kernel]",
                       ts_shape_str(x->shape, x->ndim, sx, sizeof sx), ts_shape_str(w->shape, w->ndim, sw, sizeof sw),
                       (long long)group);
    nn_window win;
    int64_t op[NN_MAX_SP], full[2], target[2];
    if (nn_window_read(n, nsp, w->shape + 2, NULL, &win) || nn_read_spatial(n, "output_padding", nsp, 0, 0, op))
        return ts_last_status();
    int64_t got = 0;
    const int64_t *os = ts_gnode_ints(n, "output_shape", &got);
    for (int i = 0; i < nsp; i++) {
        int64_t span = (win.k[i] - 1) * win.d[i] + 1;
        full[i] = win.s[i] * (x->shape[2 + i] - 1) + op[i] + span;
        if (op[i] >= win.s[i] && op[i] >= win.d[i])
            return ts_fail(TS_ERR_ARG, "ConvTranspose: output_padding %lld must be smaller than the stride or the "
                           "dilation", (long long)op[i]);
        target[i] = os && got >= nsp ? os[got - nsp + i] : win.auto_pad ? x->shape[2 + i] * win.s[i] : -1;
        if (target[i] >= 0) {   /* pads from the wanted size: the odd one at the end for SAME_UPPER, else at the start (ONNX, ORT) */
            int64_t total = full[i] - target[i];
            if (total < 0)
                return ts_fail(TS_ERR_ARG, "ConvTranspose: output size %lld is larger than %lld", (long long)target[i],
                               (long long)full[i]);
            bool upper = !strcmp(ts_gnode_string(n, "auto_pad", ""), "SAME_UPPER");
            win.pb[i] = upper ? total / 2 : total - total / 2;
            win.pe[i] = total - win.pb[i];
        }
        if (full[i] - win.pb[i] - win.pe[i] < 1)
            return ts_fail(TS_ERR_ARG, "ConvTranspose: the pads leave an empty output along spatial dim %d", i);
    }
    /* geometry as a 2-D convolution: height 1 for 1-D */
    int64_t xs[4] = { x->shape[0], w->shape[1] * group, nsp == 2 ? full[0] : 1, nsp == 2 ? full[1] : full[0] };
    ts_conv_params p = { { nsp == 2 ? win.s[0] : 1, win.s[nsp - 1] }, { 0, 0 },
                         { nsp == 2 ? win.d[0] : 1, win.d[nsp - 1] }, group };
    int64_t one[4] = { 1, 1, 1, 1 };
    ts_tensor *z = ts_tensor_zeros(one, 4, x->dtype), *ghost = z ? ts_expand(z, xs, 4) : NULL;
    ts_tensor *x4 = ghost ? (nsp == 1 ? ts_unsqueeze(x, 2) : (ts_tensor_retain((ts_tensor *)x), (ts_tensor *)x)) : NULL;
    ts_tensor *w4 = x4 ? (nsp == 1 ? ts_unsqueeze(w, 2) : (ts_tensor_retain((ts_tensor *)w), (ts_tensor *)w)) : NULL;
    ts_tensor *full_y = NULL, *y = NULL;
    if (w4) ts_conv2d_backward(ghost, w4, x4, &p, &full_y, NULL, NULL);
    ts_tensor_release(z);
    ts_tensor_release(ghost);
    ts_tensor_release(x4);
    ts_tensor_release(w4);
    if (!full_y) return ts_last_status();
    /* crop the pads (a view), then make it contiguous in the input's dtype */
    ts_tensor *v = full_y;
    ts_tensor_retain(v);
    for (int i = 0; i < nsp && v; i++) {
        int dim = nsp == 1 ? 3 : 2 + i;
        ts_tensor *c = ts_narrow(v, dim, win.pb[i], full[i] - win.pb[i] - win.pe[i]);
        ts_tensor_release(v);
        v = c;
    }
    if (v && nsp == 1) {
        ts_tensor *s = ts_squeeze(v, 2);
        ts_tensor_release(v);
        v = s;
    }
    ts_tensor_release(full_y);
    if (v && b) {
        int64_t bshape[3] = { b->shape[0], 1, 1 };
        ts_tensor *bv = b->ndim == 1 ? ts_reshape(b, bshape, nsp + 1) : NULL;
        y = bv ? ts_binary(TS_ADD, v, bv) : ts_fail_null(TS_ERR_ARG, "ConvTranspose: bias must be 1-D");
        ts_tensor_release(bv);
    } else if (v) {
        y = ts_contiguous(v);
    }
    ts_tensor_release(v);
    return nn_out1(out, y ? ts_narrow_dtype(y, ts_dtype_promote(x->dtype, w->dtype)) : NULL);
}

/* ---- Gemm --------------------------------------------------------------------------- */

/* Fails unless C [*] broadcasts (unidirectionally) to [m, n]. */
static ts_status gemm_check_c(const ts_tensor *c, int64_t m, int64_t n)
{
    char sc[TS_SHAPE_STR_CAP];
    bool ok = c->ndim <= 2;
    for (int i = 0; ok && i < c->ndim; i++) {
        int64_t want = i == c->ndim - 1 ? n : m;
        ok = c->shape[i] == 1 || c->shape[i] == want;
    }
    if (ok) return TS_OK;
    return ts_fail(TS_ERR_ARG, "Gemm: C %s does not broadcast to the result [%lld, %lld]",
                   ts_shape_str(c->shape, c->ndim, sc, sizeof sc), (long long)m, (long long)n);
}

/* Writes C (broadcast) into y [m, n] of compute dtype ct. */
static ts_status gemm_fill_c(ts_tensor *y, const ts_tensor *c, int64_t m, int64_t n)
{
    bool row = (c->ndim == 1 && c->shape[0] == n) || (c->ndim == 2 && c->shape[0] == 1 && c->shape[1] == n);
    if (!row || c->dtype != y->dtype || !ts_tensor_is_contiguous(c)) return ts_copy_(y, c);
    size_t bytes = (size_t)n * ts_dtype_size(y->dtype);
    char *dst = ts_tensor_data(y);
    const char *src = ts_tensor_data(c);
    for (int64_t i = 0; i < m; i++) memcpy(dst + (size_t)i * bytes, src, bytes);
    return TS_OK;
}

static ts_status k_gemm(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0) || ts_kernel_need(ctx, in, n_in, 1)) return ts_last_status();
    const ts_gnode *node = ctx->node;
    const ts_tensor *a = in[0], *b = in[1], *c = n_in > 2 ? in[2] : NULL;
    bool ta = ts_gnode_int(node, "transA", 0) != 0, tb = ts_gnode_int(node, "transB", 0) != 0;
    double alpha = ts_gnode_float(node, "alpha", 1.0), beta = ts_gnode_float(node, "beta", 1.0);
    char sa[TS_SHAPE_STR_CAP], sb[TS_SHAPE_STR_CAP];
    if (a->ndim != 2 || b->ndim != 2 || a->shape[ta ? 0 : 1] != b->shape[tb ? 1 : 0])
        return ts_fail(TS_ERR_ARG, "Gemm: A %s%s and B %s%s do not line up", ts_shape_str(a->shape, a->ndim, sa, sizeof sa),
                       ta ? " (transposed)" : "", ts_shape_str(b->shape, b->ndim, sb, sizeof sb), tb ? " (transposed)" : "");
    int64_t m = a->shape[ta ? 1 : 0], k = a->shape[ta ? 0 : 1], n = b->shape[tb ? 0 : 1];
    if (c && gemm_check_c(c, m, n)) return ts_last_status();
    ts_dtype dt = ts_dtype_promote(a->dtype, b->dtype);
    if (!ts_dtype_is_float(dt)) {   /* integers: matmul of the (transposed) views, then scale */
        ts_tensor *av = ta ? ts_transpose(a, 0, 1) : (ts_tensor_retain((ts_tensor *)a), (ts_tensor *)a);
        ts_tensor *bv = av && tb ? ts_transpose(b, 0, 1) : av ? (ts_tensor_retain((ts_tensor *)b), (ts_tensor *)b) : NULL;
        ts_tensor *y = bv ? ts_matmul(av, bv) : NULL;
        ts_tensor_release(av);
        ts_tensor_release(bv);
        if (y && alpha != 1 && ts_binary_scalar_(TS_MUL, y, alpha)) { ts_tensor_release(y); y = NULL; }
        if (y && c && beta != 0) {
            ts_tensor *bc = beta == 1 ? (ts_tensor_retain((ts_tensor *)c), (ts_tensor *)c) : ts_binary_scalar(TS_MUL, c, beta, false);
            ts_tensor *s = bc ? ts_binary(TS_ADD, y, bc) : NULL;
            ts_tensor_release(bc);
            ts_tensor_release(y);
            y = s;
        }
        return nn_out1(out, y ? ts_narrow_dtype(y, dt) : NULL);
    }
    ts_dtype ct = ts_float_compute_dtype(dt);
    ts_tensor *ac = ts_contiguous_as(a, ct), *bc = ac ? ts_contiguous_as(b, ct) : NULL;
    int64_t shape[2] = { m, n };
    ts_tensor *y = bc ? ts_tensor_new(shape, 2, ct) : NULL;
    ts_status st = y ? TS_OK : ts_last_status();
    bool use_c = c && beta != 0 && m > 0 && n > 0;
    if (!st && use_c) st = gemm_fill_c(y, c, m, n);
    if (!st) {
        double bb = use_c ? beta : 0;
        if (k == 0 && !use_c) st = ts_fill_(y, 0);
        else if (ct == TS_F64)
            st = ts_dgemm(ta, tb, m, n, k, alpha, ts_tensor_data(ac), a->shape[1], ts_tensor_data(bc), b->shape[1], bb,
                          ts_tensor_data(y), n);
        else
            st = ts_sgemm(ta, tb, m, n, k, (float)alpha, ts_tensor_data(ac), a->shape[1], ts_tensor_data(bc),
                          b->shape[1], (float)bb, ts_tensor_data(y), n);
    }
    ts_tensor_release(ac);
    ts_tensor_release(bc);
    if (st) {
        ts_tensor_release(y);
        return st;
    }
    return nn_out1(out, ts_narrow_dtype(y, dt));
}

static ts_status infer_gemm(ts_graph *g, const ts_gnode *n, int64_t opset, const ts_gvalue *const *in,
                            ts_gvalue *const *out)
{
    const ts_gvalue *a = in[0], *b = n->n_inputs > 1 ? in[1] : NULL;
    char sa[TS_SHAPE_STR_CAP], sb[TS_SHAPE_STR_CAP];
    if (!a || !b) return ts_fail(TS_ERR_ARG, "Gemm: inputs A and B are required");
    if ((a->ndim >= 0 && a->ndim != 2) || (b->ndim >= 0 && b->ndim != 2))
        return ts_fail(TS_ERR_ARG, "Gemm: A %s and B %s must be 2-D", ts_dims_str(g, a->dims, a->ndim > 0 ? a->ndim : 0, sa, sizeof sa),
                       ts_dims_str(g, b->dims, b->ndim > 0 ? b->ndim : 0, sb, sizeof sb));
    bool ta = ts_gnode_int(n, "transA", 0) != 0, tb = ts_gnode_int(n, "transB", 0) != 0;
    ts_dim d[2] = { ts_dim_unknown(), ts_dim_unknown() };
    if (a->ndim == 2) d[0] = a->dims[ta ? 1 : 0];
    if (b->ndim == 2) d[1] = b->dims[tb ? 0 : 1];
    if (a->ndim == 2 && b->ndim == 2) {
        ts_dim ka = a->dims[ta ? 0 : 1], kb = b->dims[tb ? 1 : 0];
        if (ts_dim_known(ka) && ts_dim_known(kb) && ka.size != kb.size)
            return ts_fail(TS_ERR_ARG, "Gemm: A %s%s and B %s%s do not line up (%lld != %lld)",
                           ts_dims_str(g, a->dims, 2, sa, sizeof sa), ta ? " (transposed)" : "",
                           ts_dims_str(g, b->dims, 2, sb, sizeof sb), tb ? " (transposed)" : "", (long long)ka.size,
                           (long long)kb.size);
    }
    ts_dtype dt = a->dtype != TS_DTYPE_UNKNOWN ? a->dtype : b->dtype;
    ts_gval_set(out[0], dt, 2, d);
    return TS_OK;
}

static double flops_gemm(const ts_gnode *n, const ts_gvalue *const *in, const ts_gvalue *const *out)
{
    int64_t asz[2], osz[2];
    if (!in[0] || in[0]->ndim != 2 || !ts_gval_concrete(in[0], asz) || !ts_gval_concrete(out[0], osz)) return -1;
    int64_t k = asz[ts_gnode_int(n, "transA", 0) ? 0 : 1];
    return 2.0 * (double)osz[0] * (double)osz[1] * (double)k;
}

/* ---- MatMul ------------------------------------------------------------------------- */

static ts_status k_matmul(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0) || ts_kernel_need(ctx, in, n_in, 1)) return ts_last_status();
    ts_tensor *y = ts_matmul(in[0], in[1]);
    return nn_out1(out, y ? ts_narrow_dtype(y, ts_dtype_promote(in[0]->dtype, in[1]->dtype)) : NULL);
}

static ts_status infer_matmul(ts_graph *g, const ts_gnode *n, int64_t opset, const ts_gvalue *const *in,
                              ts_gvalue *const *out)
{
    const ts_gvalue *a = in[0], *b = n->n_inputs > 1 ? in[1] : NULL;
    char sa[TS_SHAPE_STR_CAP], sb[TS_SHAPE_STR_CAP];
    if (!a || !b) return ts_fail(TS_ERR_ARG, "MatMul: inputs A and B are required");
    ts_dtype dt = a->dtype != TS_DTYPE_UNKNOWN && b->dtype != TS_DTYPE_UNKNOWN ? ts_dtype_promote(a->dtype, b->dtype)
                                                                              : TS_DTYPE_UNKNOWN;
    if (a->ndim < 0 || b->ndim < 0) {
        ts_gval_set(out[0], dt, TS_RANK_UNKNOWN, NULL);
        return TS_OK;
    }
    if (a->ndim == 0 || b->ndim == 0) return ts_fail(TS_ERR_ARG, "MatMul: both inputs need at least 1 dim");
    ts_dim ka = a->dims[a->ndim - 1], kb = b->dims[b->ndim == 1 ? 0 : b->ndim - 2];
    if (ts_dim_known(ka) && ts_dim_known(kb) && ka.size != kb.size)
        return ts_fail(TS_ERR_ARG, "MatMul: shapes %s and %s do not line up (%lld != %lld)",
                       ts_dims_str(g, a->dims, a->ndim, sa, sizeof sa), ts_dims_str(g, b->dims, b->ndim, sb, sizeof sb),
                       (long long)ka.size, (long long)kb.size);
    ts_dim dims[TS_MAX_DIMS];
    int nd = 0;
    int ba = a->ndim >= 2 ? a->ndim - 2 : 0, bb = b->ndim >= 2 ? b->ndim - 2 : 0;
    if (ts_dims_broadcast(g, n, a->dims, ba, b->dims, bb, dims, &nd)) return ts_last_status();
    if (a->ndim >= 2) dims[nd++] = a->dims[a->ndim - 2];
    if (b->ndim >= 2) dims[nd++] = b->dims[b->ndim - 1];
    ts_gval_set(out[0], dt, nd, dims);
    return TS_OK;
}

static double flops_matmul(const ts_gnode *n, const ts_gvalue *const *in, const ts_gvalue *const *out)
{
    int64_t e = ts_gval_numel(out[0]);
    if (e < 0 || !in[0] || in[0]->ndim < 1 || !ts_dim_known(in[0]->dims[in[0]->ndim - 1])) return -1;
    return 2.0 * (double)e * (double)in[0]->dims[in[0]->ndim - 1].size;
}

/* ---- registration --------------------------------------------------------------------- */

void ts_nn_register_conv_ops(void)
{
    const ts_op_def defs[] = {
        { "Conv", "", k_conv, infer_conv, flops_conv, false, NULL, NULL },
        { "ConvTranspose", "", k_conv_transpose, infer_conv, flops_conv, false, NULL, NULL },
        { "FusedConv", "com.microsoft", k_fused_conv, infer_conv, flops_conv, false, NULL, NULL },
        { "Gemm", "", k_gemm, infer_gemm, flops_gemm, true, NULL, NULL },
        { "MatMul", "", k_matmul, infer_matmul, flops_matmul, true, NULL, NULL },
    };
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) ts_op_register(&defs[i]);
}
