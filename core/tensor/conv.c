/* conv.c — 1-D and 2-D convolution (NCL / NCHW): the front-ends ts_conv1d and
 * ts_conv2d (shape checks, result allocation, dispatch through the backend's
 * conv2d entry) and that entry for the CPU, ts_cpu_conv2d.
 *
 * The CPU kernel lowers convolution to GEMM. The output positions of each
 * image are cut into tiles whose size depends only on the shapes; for each
 * (image, group, tile) the input patches are unfolded (im2col) into a buffer
 * owned by the thread, and one GEMM [Og, Cg*KH*KW] x [Cg*KH*KW, tile] writes
 * that tile of the output. 1x1 convolutions with stride 1 and no padding skip
 * the unfolding and multiply the input in place. Tiles run in parallel on the
 * core's threads, each calling a single-threaded BLAS: OpenBLAS's own
 * threading gains next to nothing on these short, wide GEMMs, while a tile of
 * patches that stays in cache does. Every output element comes from one GEMM
 * whatever the thread count, so results do not depend on it. f32 and f64 run
 * natively; f16 and bf16 are widened to f32 and narrowed back.
 * Uses: torsh/blas.h (ts_sgemm, ts_dgemm), ts_parallel_for. The geometry,
 * the tiling and the unfolding are shared with conv_backward.c (nn_grad.h). */
#include "nn_grad.h"
#include "torsh/blas.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- geometry (conv_geom is in nn_grad.h) --------------------------------------- */

/* Output length of one spatial dim (may be < 1 when the input is too small). */
static int64_t conv_out_len(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil)
{
    int64_t span = dil * (k - 1) + 1;
    int64_t room = in + 2 * pad - span;
    return room < 0 ? 0 : room / stride + 1;
}

/* Geometry of 4-D operands x [N,C,H,W] and w [O,Cg,KH,KW]. */
void ts_conv_geom_of(conv_geom *g, const ts_tensor *x, const ts_tensor *w, const ts_conv_params *p)
{
    g->n = x->shape[0]; g->c = x->shape[1]; g->h = x->shape[2]; g->w = x->shape[3];
    g->o = w->shape[0]; g->kh = w->shape[2]; g->kw = w->shape[3];
    g->groups = p->groups;
    g->cg = g->c / g->groups;
    g->og = g->o / g->groups;
    g->sh = p->stride[0]; g->sw = p->stride[1];
    g->ph = p->padding[0]; g->pw = p->padding[1];
    g->dh = p->dilation[0]; g->dw = p->dilation[1];
    g->oh = conv_out_len(g->h, g->kh, g->sh, g->ph, g->dh);
    g->ow = conv_out_len(g->w, g->kw, g->sw, g->pw, g->dw);
}

/* ---- front-ends ------------------------------------------------------------------ */

/* Checks x [N,C,*sp], w [O,C/groups,*k] and bias [O] for an op with nsp
 * spatial dims (1: params index 0; 2: indices 0 and 1). */
static ts_status conv_check(const char *op, int nsp, const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias,
                            const ts_conv_params *p)
{
    char sx[TS_SHAPE_STR_CAP], sw[TS_SHAPE_STR_CAP];
    const char *layout = nsp == 1 ? "[N, C, L]" : "[N, C, H, W]";
    if (x->ndim != nsp + 2)
        return ts_fail(TS_ERR_ARG, "%s: input must be %s, got %s", op, layout, ts_shape_str(x->shape, x->ndim, sx, sizeof sx));
    if (w->ndim != nsp + 2)
        return ts_fail(TS_ERR_ARG, "%s: weight must be %s, got %s", op,
                       nsp == 1 ? "[O, C/groups, K]" : "[O, C/groups, KH, KW]", ts_shape_str(w->shape, w->ndim, sw, sizeof sw));
    if (!ts_dtype_is_float(x->dtype) || !ts_dtype_is_float(w->dtype) || (bias && !ts_dtype_is_float(bias->dtype)))
        return ts_fail(TS_ERR_ARG, "%s: needs floating tensors, got input %s and weight %s%s%s", op,
                       ts_dtype_name(x->dtype), ts_dtype_name(w->dtype), bias ? " and bias " : "",
                       bias ? ts_dtype_name(bias->dtype) : "");
    if (ts_require_same_device(op, x, w) || (bias && ts_require_same_device(op, x, bias))) return ts_last_status();
    int64_t groups = p->groups, c = x->shape[1], o = w->shape[0];
    ts_shape_str(w->shape, w->ndim, sw, sizeof sw);
    if (groups < 1) return ts_fail(TS_ERR_ARG, "%s: groups must be >= 1, got %lld", op, (long long)groups);
    if (c % groups)
        return ts_fail(TS_ERR_ARG, "%s: input channels (%lld) are not divisible by groups (%lld)", op, (long long)c,
                       (long long)groups);
    if (o % groups)
        return ts_fail(TS_ERR_ARG, "%s: output channels (%lld, weight %s) are not divisible by groups (%lld)", op,
                       (long long)o, sw, (long long)groups);
    if (w->shape[1] * groups != c)
        return ts_fail(TS_ERR_ARG, "%s: input has %lld channels but weight expects %lld (weight %s, groups %lld)", op,
                       (long long)c, (long long)(w->shape[1] * groups), sw, (long long)groups);
    for (int i = 0; i < nsp; i++) {
        if (p->stride[i] < 1 || p->dilation[i] < 1 || p->padding[i] < 0)
            return ts_fail(TS_ERR_ARG, "%s: stride and dilation must be >= 1 and padding >= 0, got stride %lld, "
                           "padding %lld, dilation %lld", op, (long long)p->stride[i], (long long)p->padding[i],
                           (long long)p->dilation[i]);
        int64_t in = x->shape[2 + i], k = w->shape[2 + i];
        if (conv_out_len(in, k, p->stride[i], p->padding[i], p->dilation[i]) < 1 || k < 1)
            return ts_fail(TS_ERR_ARG, "%s: input %s is too small for weight %s (padding %lld, dilation %lld): "
                           "the output would be empty", op, ts_shape_str(x->shape, x->ndim, sx, sizeof sx), sw,
                           (long long)p->padding[i], (long long)p->dilation[i]);
    }
    if (bias && (bias->ndim != 1 || bias->shape[0] != o))
        return ts_fail(TS_ERR_ARG, "%s: bias must be [%lld] (one value per output channel), got %s", op, (long long)o,
                       ts_shape_str(bias->shape, bias->ndim, sx, sizeof sx));
    return TS_OK;
}

/* conv2d on checked 4-D operands. */
static ts_tensor *conv2d_run(const char *op, const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias,
                             const ts_conv_params *p)
{
    const ts_backend *be = ts_backend_of(x);
    if (!be->conv2d) return ts_fail_null(TS_ERR_UNSUPPORTED, "%s: not implemented on %s", op, be->name);
    conv_geom g;
    ts_conv_geom_of(&g, x, w, p);
    int64_t shape[4] = { g.n, g.o, g.oh, g.ow };
    ts_tensor *out = ts_tensor_new_on(x, shape, 4, ts_dtype_promote(x->dtype, w->dtype));
    if (out && be->conv2d(out, x, w, bias, p)) {
        ts_tensor_release(out);
        return NULL;
    }
    return out;
}

/* Adds a leading batch dim of 1 to an unbatched input (ndim == batched - 1). */
static ts_tensor *batched(const ts_tensor *x, int batched_ndim)
{
    if (x->ndim == batched_ndim - 1) return ts_unsqueeze(x, 0);
    ts_tensor_retain((ts_tensor *)x);
    return (ts_tensor *)x;
}

/* Drops the batch dim added by batched(). */
static ts_tensor *unbatched(ts_tensor *y, bool was_unbatched)
{
    if (!y || !was_unbatched) return y;
    ts_tensor *r = ts_squeeze(y, 0);
    ts_tensor_release(y);
    return r;
}

ts_tensor *ts_conv2d(const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias, const ts_conv_params *p)
{
    bool unb = x->ndim == 3;
    ts_tensor *xb = batched(x, 4);
    if (!xb) return NULL;
    ts_tensor *y = NULL;
    if (!conv_check("conv2d", 2, xb, w, bias, p)) y = conv2d_run("conv2d", xb, w, bias, p);
    ts_tensor_release(xb);
    return unbatched(y, unb);
}

ts_tensor *ts_conv1d(const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias, const ts_conv_params *p)
{
    bool unb = x->ndim == 2;
    ts_tensor *xb = batched(x, 3);
    if (!xb) return NULL;
    ts_tensor *x4 = NULL, *w4 = NULL, *y4 = NULL, *y = NULL;
    /* [N,C,L] -> [N,C,1,L]: a 2-D convolution of height 1 */
    ts_conv_params p2 = { { 1, p->stride[0] }, { 0, p->padding[0] }, { 1, p->dilation[0] }, p->groups };
    if (conv_check("conv1d", 1, xb, w, bias, p)) goto done;
    if (!(x4 = ts_unsqueeze(xb, 2)) || !(w4 = ts_unsqueeze(w, 2))) goto done;
    if (!(y4 = conv2d_run("conv1d", x4, w4, bias, &p2))) goto done;
    y = ts_squeeze(y4, 2);
done:
    ts_tensor_release(xb);
    ts_tensor_release(x4);
    ts_tensor_release(w4);
    ts_tensor_release(y4);
    return unbatched(y, unb);
}

/* ---- CPU kernel: im2col + GEMM per tile ------------------------------------------ */

typedef struct conv_job {
    conv_geom g;
    bool dbl;                    /* f64 (else f32) */
    bool direct;                 /* 1x1, stride 1, no padding: no unfolding */
    bool same;                   /* stride 1 and OW == W: im2col_same */
    size_t es;                   /* element size */
    const char *x, *w, *bias;    /* contiguous, compute dtype; bias may be NULL */
    char *y;                     /* contiguous output [N, O, OH, OW] */
    int64_t kdim, ohw, tile, ntiles;
    atomic_int failed;           /* a worker could not get its patch buffer */
} conv_job;

static int64_t ceil_div(int64_t a, int64_t b)   /* b > 0 */
{
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* dst[i] = row[(o0 + i) * sw + off] for i < seg, zero outside the input
 * columns, which are output columns [vlo, vhi) of every row. */
static void unfold_row(const char *row, int64_t o0, int64_t seg, int64_t off, int64_t sw, int64_t vlo, int64_t vhi,
                       char *dst, size_t es)
{
    int64_t lo = clamp64(vlo - o0, 0, seg), hi = clamp64(vhi - o0, lo, seg), e = (int64_t)es;
    if (lo > 0) memset(dst, 0, (size_t)(lo * e));
    const char *src = row + ((o0 + lo) * sw + off) * e;
    if (sw == 1) {
        memcpy(dst + lo * e, src, (size_t)((hi - lo) * e));
    } else if (es == 4 && sw == 2) {   /* the common strided case, in a loop the compiler vectorises */
        float *restrict d = (float *)dst + lo;
        const float *restrict s = (const float *)src;
        for (int64_t i = 0; i < hi - lo; i++) d[i] = s[2 * i];
    } else if (es == 4) {
        float *d = (float *)dst + lo;
        const float *s = (const float *)src;
        for (int64_t i = 0; i < hi - lo; i++) d[i] = s[i * sw];
    } else {
        double *d = (double *)dst + lo;
        const double *s = (const double *)src;
        for (int64_t i = 0; i < hi - lo; i++) d[i] = s[i * sw];
    }
    if (hi < seg) memset(dst + hi * e, 0, (size_t)((seg - hi) * e));
}

/* Fast im2col for stride 1 when OW == W ("same" padding): output position p
 * reads the input at flat position p + delta, so each patch row is one copy
 * of the input clamped to [0, H*W), then the columns that fall into the left
 * or right padding are zeroed. */
void ts_im2col_same(const conv_geom *g, const char *x, int64_t p0, int64_t cols, char *col, size_t es)
{
    int64_t r = 0, hw = g->h * g->w, plane = hw * (int64_t)es, e = (int64_t)es;
    for (int64_t c = 0; c < g->cg; c++)
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++, r++) {
                char *dst = col + r * cols * e;
                int64_t shift = kj * g->dw - g->pw;
                int64_t delta = (ki * g->dh - g->ph) * g->w + shift;
                int64_t lo = clamp64(-delta - p0, 0, cols), hi = clamp64(hw - delta - p0, lo, cols);
                if (lo > 0) memset(dst, 0, (size_t)(lo * e));
                memcpy(dst + lo * e, x + c * plane + (p0 + lo + delta) * e, (size_t)((hi - lo) * e));
                if (hi < cols) memset(dst + hi * e, 0, (size_t)((cols - hi) * e));
                /* left padding: ow < -shift; right padding: ow >= W - shift */
                int64_t nlo = clamp64(-shift, 0, g->ow), nhi = clamp64(shift, 0, g->ow);
                if (!nlo && !nhi) continue;
                for (int64_t rs = p0 - p0 % g->ow; rs < p0 + cols; rs += g->ow) {
                    int64_t a = clamp64(rs, p0, p0 + cols), b = clamp64(rs + nlo, p0, p0 + cols);
                    if (b > a) memset(dst + (a - p0) * e, 0, (size_t)((b - a) * e));
                    a = clamp64(rs + g->ow - nhi, p0, p0 + cols);
                    b = clamp64(rs + g->ow, p0, p0 + cols);
                    if (b > a) memset(dst + (a - p0) * e, 0, (size_t)((b - a) * e));
                }
            }
}

/* Unfolds output positions [p0, p0 + cols) of one image and group into
 * col [Cg*KH*KW, cols]; x points at the group's first input channel. */
void ts_im2col(const conv_geom *g, const char *x, int64_t p0, int64_t cols, char *col, size_t es)
{
    int64_t r = 0, e = (int64_t)es, plane = g->h * g->w * e, row = g->w * e;
    int64_t oh0 = p0 / g->ow, ow0 = p0 % g->ow;
    for (int64_t c = 0; c < g->cg; c++)
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++, r++) {
                char *dst = col + r * cols * e;
                const char *xp = x + c * plane;
                int64_t off = kj * g->dw - g->pw;
                /* output columns that read inside the input: 0 <= ow * sw + off < W */
                int64_t vlo = ceil_div(-off, g->sw), vhi = ceil_div(g->w - off, g->sw);
                int64_t oh = oh0, o0 = ow0;
                for (int64_t done = 0; done < cols; oh++, o0 = 0) {
                    int64_t seg = g->ow - o0 < cols - done ? g->ow - o0 : cols - done;
                    int64_t ih = oh * g->sh - g->ph + ki * g->dh;
                    if (ih < 0 || ih >= g->h) memset(dst + done * e, 0, (size_t)(seg * e));
                    else unfold_row(xp + ih * row, o0, seg, off, g->sw, vlo, vhi, dst + done * e, es);
                    done += seg;
                }
            }
}

/* y[og, cols] (leading dim ohw) = w[og, kdim] @ b[kdim, cols] (leading dim
 * ldb), plus what y holds when `accumulate` (the bias, filled in first:
 * cheaper than OpenBLAS zeroing y for beta = 0 and a bias pass after). */
static void gemm_tile(const conv_job *j, const char *w, const char *b, int64_t ldb, int64_t cols, char *y,
                      bool accumulate)
{
    if (j->dbl)
        ts_dgemm(false, false, j->g.og, cols, j->kdim, 1.0, (const double *)w, j->kdim, (const double *)b, ldb,
                 accumulate ? 1.0 : 0.0, (double *)y, j->ohw);
    else
        ts_sgemm(false, false, j->g.og, cols, j->kdim, 1.0f, (const float *)w, j->kdim, (const float *)b, ldb,
                 accumulate ? 1.0f : 0.0f, (float *)y, j->ohw);
}

/* Row o of the tile y[og, cols] (leading dim ohw) = bias[o]. */
static void fill_bias(const conv_job *j, const char *bias, int64_t cols, char *y)
{
    for (int64_t o = 0; o < j->g.og; o++) {
        if (j->dbl) {
            double *r = (double *)y + o * j->ohw, b = ((const double *)bias)[o];
            for (int64_t i = 0; i < cols; i++) r[i] = b;
        } else {
            float *r = (float *)y + o * j->ohw, b = ((const float *)bias)[o];
            for (int64_t i = 0; i < cols; i++) r[i] = b;
        }
    }
}

/* Work items [begin, end): item = (image * groups + group) * ntiles + tile. */
static void conv_items(int64_t begin, int64_t end, void *ctx)
{
    conv_job *j = ctx;
    const conv_geom *g = &j->g;
    int64_t es = (int64_t)j->es;
    char *col = NULL;
    if (!j->direct && !(col = malloc((size_t)(j->kdim * j->tile * es)))) {
        atomic_store(&j->failed, 1);
        return;
    }
    for (int64_t item = begin; item < end; item++) {
        int64_t t = item % j->ntiles, ng = item / j->ntiles, gi = ng % g->groups, n = ng / g->groups;
        int64_t p0 = t * j->tile, cols = j->ohw - p0 < j->tile ? j->ohw - p0 : j->tile;
        const char *x = j->x + (n * g->c + gi * g->cg) * g->h * g->w * es;
        char *y = j->y + ((n * g->o + gi * g->og) * j->ohw + p0) * es;
        const char *w = j->w + gi * g->og * j->kdim * es;   /* the group's filters */
        if (j->bias) fill_bias(j, j->bias + gi * g->og * es, cols, y);
        if (j->direct) {
            gemm_tile(j, w, x + p0 * es, g->h * g->w, cols, y, j->bias != NULL);
        } else {
            if (j->same) ts_im2col_same(g, x, p0, cols, col, j->es);
            else ts_im2col(g, x, p0, cols, col, j->es);
            gemm_tile(j, w, col, cols, cols, y, j->bias != NULL);
        }
    }
    free(col);
}

/* Output positions per tile: about 1 MiB of f32 patches, at least 8 tiles
 * of work in all where the output allows; depends on shapes only. */
int64_t ts_conv_tile(int64_t kdim, int64_t ohw, int64_t images)
{
    int64_t t = clamp64((256 * 1024) / (kdim > 0 ? kdim : 1), 64, 4096);
    while (t > 64 && images * ceil_div(ohw, t) < 8) t /= 2;
    if (t >= ohw) return ohw;
    return t > 16 ? t - t % 16 : t;
}

/* The tiles run on the core's threads, so BLAS must run one thread per call.
 * A tiny GEMM first lets ts_sgemm sync BLAS's thread count here, on the
 * calling thread, so that no call inside the loop changes it again. */
void ts_blas_single_begin(void)
{
    float a = 0, b = 0, c = 0;
    ts_sgemm(false, false, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
    ts_blas_set_num_threads(1);
}

void ts_blas_single_end(void) { ts_blas_set_num_threads(ts_get_num_threads()); }

/* Runs the job over every (image, group, tile). */
static ts_status conv_run(conv_job *j)
{
    const conv_geom *g = &j->g;
    if (ts_blas_init()) return ts_last_status();
    if (j->kdim > INT_MAX || j->ohw > INT_MAX || g->h * g->w > INT_MAX || g->og > INT_MAX)
        return ts_fail(TS_ERR_UNSUPPORTED, "conv2d: a %lldx%lldx%lld product exceeds the BLAS's 32-bit sizes",
                       (long long)g->og, (long long)j->ohw, (long long)j->kdim);
    int64_t items = g->n * g->groups * j->ntiles;
    /* about a million multiply-adds per thread at least; small convolutions stay on one */
    int64_t grain = 1 + ((int64_t)1 << 20) / (g->og * j->kdim * j->tile + 1);
    bool ours = ts_get_num_threads() > 1 && items / grain >= 2;   /* ts_parallel_for's own test */
    if (ours) ts_blas_single_begin();
    ts_parallel_for(items, grain, conv_items, j);
    if (ours) ts_blas_single_end();
    if (atomic_load(&j->failed))
        return ts_fail(TS_ERR_MEMORY, "conv2d: out of memory for a %lldx%lld patch buffer", (long long)j->kdim,
                       (long long)j->tile);
    return TS_OK;
}

/* Output of K == 0 convolutions (a zero-channel group): the bias or zeros. */
static void fill_bias_only(const conv_job *j)
{
    int64_t per = j->ohw, es = (int64_t)j->es;
    memset(j->y, 0, (size_t)(j->g.n * j->g.o * per * es));
    if (!j->bias) return;
    for (int64_t n = 0; n < j->g.n; n++)
        for (int64_t o = 0; o < j->g.o; o++)
            for (int64_t i = 0; i < per; i++) {
                if (j->dbl) ((double *)j->y)[(n * j->g.o + o) * per + i] = ((const double *)j->bias)[o];
                else ((float *)j->y)[(n * j->g.o + o) * per + i] = ((const float *)j->bias)[o];
            }
}

ts_status ts_cpu_conv2d(ts_tensor *out, const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias,
                        const ts_conv_params *p)
{
    ts_dtype ct = out->dtype == TS_F64 ? TS_F64 : TS_F32;
    conv_job j;
    memset(&j, 0, sizeof j);
    ts_conv_geom_of(&j.g, x, w, p);
    j.dbl = ct == TS_F64;
    j.es = ts_dtype_size(ct);
    j.kdim = j.g.cg * j.g.kh * j.g.kw;
    j.ohw = j.g.oh * j.g.ow;
    j.direct = j.g.kh == 1 && j.g.kw == 1 && j.g.sh == 1 && j.g.sw == 1 && j.g.ph == 0 && j.g.pw == 0;
    j.same = j.g.sh == 1 && j.g.sw == 1 && j.g.ow == j.g.w;
    j.tile = ts_conv_tile(j.kdim, j.ohw, j.g.n * j.g.groups);
    j.ntiles = j.ohw > 0 ? ceil_div(j.ohw, j.tile) : 0;
    atomic_init(&j.failed, 0);

    ts_status st = TS_OK;
    ts_tensor *xc = ts_contiguous_as(x, ct), *wc = xc ? ts_contiguous_as(w, ct) : NULL;
    ts_tensor *bc = wc && bias ? ts_contiguous_as(bias, ct) : NULL;
    bool in_place = out->dtype == ct && ts_tensor_is_contiguous(out);
    ts_tensor *yc = in_place ? out : ts_tensor_new(out->shape, out->ndim, ct);
    if (!xc || !wc || (bias && !bc) || !yc) {
        st = ts_last_status();
        goto done;
    }
    j.x = ts_tensor_data(xc);
    j.w = ts_tensor_data(wc);
    j.bias = bc ? ts_tensor_data(bc) : NULL;
    j.y = ts_tensor_data(yc);
    if (ts_tensor_numel(yc) == 0) goto done;
    if (j.kdim == 0) fill_bias_only(&j);
    else st = conv_run(&j);
    if (!st && !in_place) st = ts_copy_(out, yc);
done:
    ts_tensor_release(xc);
    ts_tensor_release(wc);
    ts_tensor_release(bc);
    if (!in_place) ts_tensor_release(yc);
    return st;
}
