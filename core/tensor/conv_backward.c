/* conv_backward.c — gradients of 2-D convolution (conv1d comes here as a
 * convolution of height 1): ts_conv2d_backward computes any of grad_input,
 * grad_weight and grad_bias in one pass over the images.
 *
 * The images are cut into chunks whose number depends only on the shapes;
 * chunks run in parallel on the core's threads, each calling a
 * single-threaded BLAS (as the forward does). Per image, group and tile of
 * output positions:
 *   grad_weight: the input patches are unfolded (ts_im2col, shared with
 *     conv.c) and the GEMM gy[og, tile] x col[kdim, tile]^T accumulates into
 *     the chunk's own partial [O, kdim];
 *   grad_input: the GEMM w[og, kdim]^T x gy[og, tile] gives the gradient of
 *     every patch, which col2im (the adjoint of im2col) adds onto the image
 *     (but see below);
 *   grad_bias: the row sums of gy, into the chunk's partial [O].
 * The partials are summed in chunk order afterwards, so the results do not
 * depend on the thread count. 1x1 convolutions with stride 1 and no padding
 * multiply the input (and write the input gradient) in place.
 * With stride 1 (and padding at most dilation * (K - 1)) grad_input is itself
 * a convolution: of gy with the flipped filters, input and output channels
 * swapped in each group, padding dilation * (K - 1) - padding. It then runs on
 * conv.c's forward, whose GEMMs (inner dimension O*KH*KW) are faster than the
 * patch-gradient GEMMs (inner dimension O) plus col2im.
 * f32 and f64 run natively; f16 and bf16 as f32.
 * Uses: nn_grad.h (conv.c's geometry and im2col), torsh/blas.h. */
#include "nn_grad.h"
#include "torsh/blas.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct convb_job {
    conv_geom g;
    bool dbl;                    /* f64 (else f32) */
    bool direct;                 /* 1x1, stride 1, no padding */
    bool same;                   /* stride 1 and OW == W */
    size_t es;
    const char *x, *w, *gy;      /* contiguous, compute dtype (x NULL when grad_weight is not wanted) */
    char *gx;                    /* [N, C, H, W] or NULL */
    char *gw_part;               /* [nchunks, O * kdim] or NULL */
    double *gb_part;             /* [nchunks, O] or NULL */
    int64_t kdim, ohw, tile, ntiles, chunk, nchunks;
    atomic_int failed;
} convb_job;

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }   /* a >= 0, b > 0 */
static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* dst[i] += src[i] for n values. */
TS_NN_INLINE void add_run(char *dst, const char *src, int64_t n, bool dbl)
{
    if (dbl) {
        double *restrict d = (double *)dst;
        const double *restrict s = (const double *)src;
        for (int64_t i = 0; i < n; i++) d[i] += s[i];
    } else {
        float *restrict d = (float *)dst;
        const float *restrict s = (const float *)src;
        for (int64_t i = 0; i < n; i++) d[i] += s[i];
    }
}

/* C = op(A) op(B) + beta * C in the job's dtype (row-major, alpha 1). */
static void gemm(const convb_job *j, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const char *a, int64_t lda,
                 const char *b, int64_t ldb, double beta, char *c, int64_t ldc)
{
    if (j->dbl)
        ts_dgemm(ta, tb, m, n, k, 1.0, (const double *)a, lda, (const double *)b, ldb, beta, (double *)c, ldc);
    else
        ts_sgemm(ta, tb, m, n, k, 1.0f, (const float *)a, lda, (const float *)b, ldb, (float)beta, (float *)c, ldc);
}

/* ---- col2im: the adjoint of conv.c's im2col ---------------------------------------- */

/* row[(o0 + i) * sw + off] += src[i] for the i < seg that fall inside the
 * input columns, which are output columns [vlo, vhi) (as unfold_row reads). */
static void fold_row(char *row, int64_t o0, int64_t seg, int64_t off, int64_t sw, int64_t vlo, int64_t vhi,
                     const char *src, bool dbl)
{
    int64_t lo = clamp64(vlo - o0, 0, seg), hi = clamp64(vhi - o0, lo, seg);
    if (dbl) {
        double *d = (double *)row + (o0 + lo) * sw + off;
        const double *s = (const double *)src + lo;
        for (int64_t i = 0; i < hi - lo; i++) d[i * sw] += s[i];
    } else if (sw == 1) {
        add_run(row + ((o0 + lo) + off) * 4, src + lo * 4, hi - lo, false);
    } else {
        float *d = (float *)row + (o0 + lo) * sw + off;
        const float *s = (const float *)src + lo;
        for (int64_t i = 0; i < hi - lo; i++) d[i * sw] += s[i];
    }
}

/* Adds the patch gradients col [Cg*KH*KW, cols] of output positions
 * [p0, p0 + cols) onto the image x (the group's first input channel). */
static void col2im(const conv_geom *g, const char *col, int64_t p0, int64_t cols, char *x, bool dbl)
{
    int64_t e = dbl ? 8 : 4, r = 0, plane = g->h * g->w * e, row = g->w * e;
    int64_t oh0 = p0 / g->ow, ow0 = p0 % g->ow;
    for (int64_t c = 0; c < g->cg; c++)
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++, r++) {
                const char *src = col + r * cols * e;
                char *xp = x + c * plane;
                int64_t off = kj * g->dw - g->pw;
                int64_t vlo = off >= 0 ? 0 : ceil_div(-off, g->sw);
                int64_t vhi = g->w - off <= 0 ? 0 : ceil_div(g->w - off, g->sw);
                int64_t oh = oh0, o0 = ow0;
                for (int64_t done = 0; done < cols; oh++, o0 = 0) {
                    int64_t seg = min64(g->ow - o0, cols - done);
                    int64_t ih = oh * g->sh - g->ph + ki * g->dh;
                    if (ih >= 0 && ih < g->h) fold_row(xp + ih * row, o0, seg, off, g->sw, vlo, vhi, src + done * e, dbl);
                    done += seg;
                }
            }
}

/* The adjoint of ts_im2col_same (stride 1, OW == W): each patch row is one
 * shifted run of the image; the entries im2col zeroed (columns in the left
 * or right padding, which wrap onto a neighbouring row) are dropped first. */
static void col2im_same(const conv_geom *g, char *col, int64_t p0, int64_t cols, char *x, bool dbl)
{
    int64_t e = dbl ? 8 : 4, r = 0, hw = g->h * g->w, plane = hw * e;
    for (int64_t c = 0; c < g->cg; c++)
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++, r++) {
                char *src = col + r * cols * e;
                int64_t shift = kj * g->dw - g->pw;
                int64_t delta = (ki * g->dh - g->ph) * g->w + shift;
                int64_t nlo = clamp64(-shift, 0, g->ow), nhi = clamp64(shift, 0, g->ow);
                if (nlo || nhi)
                    for (int64_t rs = p0 - p0 % g->ow; rs < p0 + cols; rs += g->ow) {
                        int64_t a = clamp64(rs, p0, p0 + cols), b = clamp64(rs + nlo, p0, p0 + cols);
                        if (b > a) memset(src + (a - p0) * e, 0, (size_t)((b - a) * e));
                        a = clamp64(rs + g->ow - nhi, p0, p0 + cols);
                        b = clamp64(rs + g->ow, p0, p0 + cols);
                        if (b > a) memset(src + (a - p0) * e, 0, (size_t)((b - a) * e));
                    }
                int64_t lo = clamp64(-delta - p0, 0, cols), hi = clamp64(hw - delta - p0, lo, cols);
                add_run(x + c * plane + (p0 + lo + delta) * e, src + lo * e, hi - lo, dbl);
            }
}

/* ---- the pass over the images ---------------------------------------------------------- */

/* One (image, group, tile): the three gradients' share of it. */
static void convb_tile(const convb_job *j, int64_t n, int64_t gi, int64_t t, char *gwp, double *gbp, char *col,
                       char *gcol)
{
    const conv_geom *g = &j->g;
    int64_t es = (int64_t)j->es, hw = g->h * g->w;
    int64_t p0 = t * j->tile, cols = min64(j->ohw - p0, j->tile);
    const char *gyt = j->gy + ((n * g->o + gi * g->og) * j->ohw + p0) * es;
    if (gbp)
        for (int64_t o = 0; o < g->og; o++) gbp[gi * g->og + o] += ts_sum_run(gyt + o * j->ohw * es, cols, j->dbl);
    if (gwp) {
        const char *xg = j->x + (n * g->c + gi * g->cg) * hw * es;
        const char *b = xg + p0 * es;
        int64_t ldb = hw;
        if (!j->direct) {
            if (j->same) ts_im2col_same(g, xg, p0, cols, col, j->es);
            else ts_im2col(g, xg, p0, cols, col, j->es);
            b = col;
            ldb = cols;
        }
        gemm(j, false, true, g->og, j->kdim, cols, gyt, j->ohw, b, ldb, 1.0, gwp + gi * g->og * j->kdim * es, j->kdim);
    }
    if (j->gx) {
        const char *wg = j->w + gi * g->og * j->kdim * es;
        char *gxg = j->gx + (n * g->c + gi * g->cg) * hw * es;
        if (j->direct) {
            gemm(j, true, false, j->kdim, cols, g->og, wg, j->kdim, gyt, j->ohw, 0.0, gxg + p0 * es, hw);
        } else {
            gemm(j, true, false, j->kdim, cols, g->og, wg, j->kdim, gyt, j->ohw, 0.0, gcol, cols);
            if (j->same) col2im_same(g, gcol, p0, cols, gxg, j->dbl);
            else col2im(g, gcol, p0, cols, gxg, j->dbl);
        }
    }
}

/* One chunk of images, its partials zeroed first. */
static void convb_chunk(const convb_job *j, int64_t k, char *col, char *gcol)
{
    const conv_geom *g = &j->g;
    int64_t es = (int64_t)j->es;
    char *gwp = j->gw_part ? j->gw_part + k * g->o * j->kdim * es : NULL;
    double *gbp = j->gb_part ? j->gb_part + k * g->o : NULL;
    if (gwp) memset(gwp, 0, (size_t)(g->o * j->kdim * es));
    if (gbp) memset(gbp, 0, sizeof(double) * (size_t)g->o);
    for (int64_t n = k * j->chunk; n < min64(g->n, (k + 1) * j->chunk); n++) {
        if (j->gx && !j->direct) memset(j->gx + n * g->c * g->h * g->w * es, 0, (size_t)(g->c * g->h * g->w * es));
        for (int64_t gi = 0; gi < g->groups; gi++)
            for (int64_t t = 0; t < j->ntiles; t++) convb_tile(j, n, gi, t, gwp, gbp, col, gcol);
    }
}

TS_NN_SIMD
static void convb_chunks(int64_t begin, int64_t end, void *ctx)
{
    convb_job *j = ctx;
    size_t bytes = (size_t)(j->kdim * j->tile) * j->es;
    bool need_col = j->gw_part && !j->direct, need_gcol = j->gx && !j->direct;
    char *col = need_col ? malloc(bytes) : NULL, *gcol = need_gcol ? malloc(bytes) : NULL;
    if ((need_col && !col) || (need_gcol && !gcol)) {
        atomic_store(&j->failed, 1);
    } else {
        for (int64_t k = begin; k < end; k++) convb_chunk(j, k, col, gcol);
    }
    free(col);
    free(gcol);
}

/* ---- summing the partials ------------------------------------------------------------------ */

typedef struct partsum_job {
    const convb_job *j;
    char *gw;                    /* [O * kdim], compute dtype */
} partsum_job;

/* Elements [begin, end) of grad_weight: the chunks' partials added in chunk
 * order, a block of elements at a time so every partial is read in order. */
TS_NN_SIMD
static void partsum_range(int64_t begin, int64_t end, void *ctx)
{
    enum { BLOCK = 512 };
    const partsum_job *s = ctx;
    const convb_job *j = s->j;
    int64_t per = j->g.o * j->kdim;
    double acc[BLOCK];
    for (int64_t b0 = begin; b0 < end; b0 += BLOCK) {
        int64_t n = end - b0 < BLOCK ? end - b0 : BLOCK;
        memset(acc, 0, sizeof(double) * (size_t)n);
        for (int64_t k = 0; k < j->nchunks; k++) {
            if (j->dbl) {
                const double *p = (const double *)j->gw_part + k * per + b0;
                for (int64_t i = 0; i < n; i++) acc[i] += p[i];
            } else {
                const float *p = (const float *)j->gw_part + k * per + b0;
                for (int64_t i = 0; i < n; i++) acc[i] += p[i];
            }
        }
        for (int64_t i = 0; i < n; i++) {
            if (j->dbl) ((double *)s->gw)[b0 + i] = acc[i];
            else ((float *)s->gw)[b0 + i] = (float)acc[i];
        }
    }
}

/* ---- front door -------------------------------------------------------------------------------- */

/* Chunks of images: at most 32, fewer when the weight partials would pass
 * 2^23 elements; depends on the shapes only. */
static void choose_chunks(convb_job *j, bool want_w)
{
    int64_t most = min64(j->g.n, 32);
    if (want_w) most = min64(most, ((int64_t)1 << 23) / (j->g.o * j->kdim + 1) + 1);
    if (most < 1) most = 1;
    j->chunk = ceil_div(j->g.n, most);
    j->nchunks = ceil_div(j->g.n, j->chunk);
}

/* ---- grad_input as a convolution ---------------------------------------------------------- */

static bool input_grad_is_conv(const conv_geom *g)
{
    return g->sh == 1 && g->sw == 1 && g->dh * (g->kh - 1) >= g->ph && g->dw * (g->kw - 1) >= g->pw;
}

/* The filters of that convolution: [C, O/groups, KH, KW], flipped in space;
 * wc is the contiguous weight in the compute dtype. */
static ts_tensor *flipped_filters(const conv_geom *g, const ts_tensor *wc)
{
    int64_t shape[4] = { g->c, g->og, g->kh, g->kw }, khw = g->kh * g->kw;
    ts_tensor *t = ts_tensor_new(shape, 4, wc->dtype);
    if (!t) return NULL;
    size_t es = ts_dtype_size(wc->dtype);
    const char *src = ts_tensor_data(wc);
    char *dst = ts_tensor_data(t);
    for (int64_t gi = 0; gi < g->groups; gi++)
        for (int64_t o = 0; o < g->og; o++)
            for (int64_t c = 0; c < g->cg; c++)
                for (int64_t k = 0; k < khw; k++) {
                    int64_t from = ((gi * g->og + o) * g->cg + c) * khw + k;
                    int64_t to = ((gi * g->cg + c) * g->og + o) * khw + (khw - 1 - k);
                    memcpy(dst + to * (int64_t)es, src + from * (int64_t)es, es);
                }
    return t;
}

/* grad_input of a stride-1 convolution by conv.c's forward. */
static ts_tensor *input_grad_by_conv(const conv_geom *g, const ts_tensor *gyc, const ts_tensor *wc)
{
    ts_tensor *ft = flipped_filters(g, wc);
    if (!ft) return NULL;
    ts_conv_params q = { { 1, 1 }, { g->dh * (g->kh - 1) - g->ph, g->dw * (g->kw - 1) - g->pw }, { g->dh, g->dw },
                         g->groups };
    ts_tensor *gx = ts_conv2d(gyc, ft, NULL, &q);
    ts_tensor_release(ft);
    return gx;
}

/* Runs the job (buffers in place) over every chunk; sums the partials. */
static ts_status convb_run(convb_job *j, ts_tensor *gw, ts_tensor *gb)
{
    const conv_geom *g = &j->g;
    if (j->kdim > INT_MAX || j->ohw > INT_MAX || g->h * g->w > INT_MAX || g->og > INT_MAX)
        return ts_fail(TS_ERR_UNSUPPORTED, "conv2d backward: a %lldx%lldx%lld product exceeds the BLAS's 32-bit sizes",
                       (long long)g->og, (long long)j->ohw, (long long)j->kdim);
    if (ts_blas_init()) return ts_last_status();
    int64_t flops = g->og * j->kdim * j->ohw * g->groups * j->chunk * ((gw ? 1 : 0) + (j->gx ? 1 : 0) + 1);
    int64_t grain = 1 + ((int64_t)1 << 20) / (flops + 1);
    bool ours = ts_get_num_threads() > 1 && j->nchunks / grain >= 2;
    if (ours) ts_blas_single_begin();
    ts_parallel_for(j->nchunks, grain, convb_chunks, j);
    if (ours) ts_blas_single_end();
    if (atomic_load(&j->failed))
        return ts_fail(TS_ERR_MEMORY, "conv2d backward: out of memory for a %lldx%lld patch buffer",
                       (long long)j->kdim, (long long)j->tile);
    if (gw) {
        partsum_job s = { j, ts_tensor_data(gw) };
        ts_parallel_for(g->o * j->kdim, TS_GRAIN_ELEMENTWISE / (j->nchunks + 1) + 1, partsum_range, &s);
    }
    if (gb) {
        for (int64_t o = 0; o < g->o; o++) {
            double acc = 0;
            for (int64_t k = 0; k < j->nchunks; k++) acc += j->gb_part[k * g->o + o];
            ts_store_f64(ts_tensor_data(gb), gb->dtype, o, acc);
        }
    }
    return TS_OK;
}

ts_status ts_conv2d_backward(const ts_tensor *x, const ts_tensor *w, const ts_tensor *gy, const ts_conv_params *p,
                             ts_tensor **gx, ts_tensor **gw, ts_tensor **gb)
{
    if (gx) *gx = NULL;
    if (gw) *gw = NULL;
    if (gb) *gb = NULL;
    if (ts_require_cpu("conv2d backward", x) || ts_require_cpu("conv2d backward", gy)) return ts_last_status();
    ts_dtype ct = ts_dtype_promote(x->dtype, w->dtype) == TS_F64 ? TS_F64 : TS_F32;
    convb_job j;
    memset(&j, 0, sizeof j);
    ts_conv_geom_of(&j.g, x, w, p);
    if (gy->ndim != 4 || gy->shape[0] != j.g.n || gy->shape[1] != j.g.o || gy->shape[2] != j.g.oh ||
        gy->shape[3] != j.g.ow)
        return ts_fail(TS_ERR_ARG, "conv2d backward: output gradient has the wrong shape");
    j.dbl = ct == TS_F64;
    j.es = ts_dtype_size(ct);
    j.kdim = j.g.cg * j.g.kh * j.g.kw;
    j.ohw = j.g.oh * j.g.ow;
    j.direct = j.g.kh == 1 && j.g.kw == 1 && j.g.sh == 1 && j.g.sw == 1 && j.g.ph == 0 && j.g.pw == 0;
    j.same = j.g.sh == 1 && j.g.sw == 1 && j.g.ow == j.g.w;
    j.tile = ts_conv_tile(j.kdim, j.ohw, j.g.n * j.g.groups);
    j.ntiles = j.ohw > 0 ? ceil_div(j.ohw, j.tile) : 0;
    choose_chunks(&j, gw != NULL);
    atomic_init(&j.failed, 0);

    int64_t wshape[4] = { j.g.o, j.g.cg, j.g.kh, j.g.kw };
    bool gx_conv = gx && j.kdim > 0 && j.g.n > 0 && input_grad_is_conv(&j.g);
    /* the pass over the images: for grad_weight/bias, and grad_input unless by convolution */
    bool run = j.kdim > 0 && j.g.n > 0 && (gw || gb || (gx && !gx_conv));
    ts_tensor *xc = NULL, *wc = NULL, *gyc = NULL, *rx = NULL, *rw = NULL, *rb = NULL, *part = NULL;
    double *bpart = NULL;
    if (!(gyc = ts_contiguous_as(gy, ct)) || (gw && !(xc = ts_contiguous_as(x, ct))) || (gx && !(wc = ts_contiguous_as(w, ct))))
        goto fail;
    /* grad_input: every image is zeroed (or fully written, direct) by its chunk */
    if (gx_conv && !(rx = input_grad_by_conv(&j.g, gyc, wc))) goto fail;
    if (gx && !gx_conv && !(rx = run ? ts_tensor_new(x->shape, 4, ct) : ts_tensor_zeros(x->shape, 4, ct))) goto fail;
    if ((gw && !(rw = ts_tensor_zeros(wshape, 4, ct))) || (gb && !(rb = ts_tensor_zeros(&j.g.o, 1, ct)))) goto fail;
    if (run && gw) {
        int64_t pshape[2] = { j.nchunks, j.g.o * j.kdim };
        if (!(part = ts_tensor_new(pshape, 2, ct))) goto fail;
        j.gw_part = ts_tensor_data(part);
    }
    if (gb && !(bpart = j.gb_part = calloc((size_t)(j.nchunks * j.g.o + 1), sizeof(double)))) {
        ts_fail(TS_ERR_MEMORY, "conv2d backward: out of memory");
        goto fail;
    }
    j.gy = ts_tensor_data(gyc);
    j.x = xc ? ts_tensor_data(xc) : NULL;
    j.w = wc ? ts_tensor_data(wc) : NULL;
    j.gx = rx && !gx_conv ? ts_tensor_data(rx) : NULL;
    if (run && convb_run(&j, rw, rb)) goto fail;
    if (!run && gb && j.g.n > 0) {
        int dims[3] = { 0, 2, 3 };
        ts_tensor *s = ts_reduce(TS_SUM, gyc, dims, 3, false);
        bool bad = !s || ts_copy_(rb, s);
        ts_tensor_release(s);
        if (bad) goto fail;
    }
    ts_tensor_release(xc);
    ts_tensor_release(wc);
    ts_tensor_release(gyc);
    ts_tensor_release(part);
    free(bpart);
    if (gx) *gx = rx;
    if (gw) *gw = rw;
    if (gb) *gb = rb;
    return TS_OK;
fail:
    ts_tensor_release(xc);
    ts_tensor_release(wc);
    ts_tensor_release(gyc);
    ts_tensor_release(part);
    ts_tensor_release(rx);
    ts_tensor_release(rw);
    ts_tensor_release(rb);
    free(bpart);
    return ts_last_status() ? ts_last_status() : TS_ERR_INTERNAL;
}
