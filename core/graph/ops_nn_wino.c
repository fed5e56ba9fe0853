/* ops_nn_wino.c — 3x3 stride-1 convolution by Winograd's F(2x2, 3x3)
 * algorithm (Lavin & Gray 2015), for f32 NCHW: each 2x2 block of outputs
 * comes from a 4x4 input tile through 16 elementwise products in the
 * transformed domain, 16 multiply-adds per 4 outputs per (in, out) channel
 * pair instead of 36, so the GEMMs do 2.25x less work than im2col's.
 *
 *   U = G g G^T      per (out, in) channel pair: weights, done once
 *                    (nn_wino_weights; the caller keeps U) into U[16][K][C];
 *   V = B^T d B      per (in channel, tile): V[16][C][tiles];
 *   M[i] = U[i] V[i] 16 GEMMs [K, C] x [C, tiles] (BLAS, one thread each);
 *   Y = A^T m A      per (out channel, tile), plus the bias, Z and ReLU.
 *
 * Tiles (rows of tiles of every image of the batch) are processed in
 * blocks small enough for V and M to stay in the last-level cache; each phase runs on ts_parallel_for (input
 * transform over channels, GEMMs over the 16 positions, output transform
 * over output channels), so the result does not depend on the thread count.
 * Rounding differs from direct convolution by a few ulps of the inputs'
 * magnitude (the transforms add and subtract up to 4 terms). */
#include "ops_nn.h"
#include "nn_grad.h"
#include "torsh/blas.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- weights ------------------------------------------------------------------------ */

typedef struct wino_pack_job { const float *g; float *U; int64_t K, C; } wino_pack_job;

/* U[., k, .] for output channels [k0, k1): G g G^T per (k, c), computed for
 * 16 input channels at a time (lane = channel) so every loop below is a
 * straight vector loop and the 16 output planes are written in runs. */
#define WINO_LANES 16
static void wino_pack_rows(int64_t k0, int64_t k1, void *ctx)
{
    const wino_pack_job *j = ctx;
    const int64_t K = j->K, C = j->C;
    float q[9][WINO_LANES], t[4][3][WINO_LANES], r[16][WINO_LANES];
    for (int64_t k = k0; k < k1; k++)
        for (int64_t c0 = 0; c0 < C; c0 += WINO_LANES) {
            int n = (int)(C - c0 < WINO_LANES ? C - c0 : WINO_LANES);
            const float *src = j->g + (k * C + c0) * 9;
            for (int l = 0; l < n; l++)
                for (int e = 0; e < 9; e++) q[e][l] = src[l * 9 + e];
            for (int i = 0; i < 3; i++)     /* G g: rows */
                for (int l = 0; l < WINO_LANES; l++) {
                    t[0][i][l] = q[i][l];
                    t[1][i][l] = 0.5f * (q[i][l] + q[3 + i][l] + q[6 + i][l]);
                    t[2][i][l] = 0.5f * (q[i][l] - q[3 + i][l] + q[6 + i][l]);
                    t[3][i][l] = q[6 + i][l];
                }
            for (int i = 0; i < 4; i++)     /* (G g) G^T: columns */
                for (int l = 0; l < WINO_LANES; l++) {
                    r[i * 4 + 0][l] = t[i][0][l];
                    r[i * 4 + 1][l] = 0.5f * (t[i][0][l] + t[i][1][l] + t[i][2][l]);
                    r[i * 4 + 2][l] = 0.5f * (t[i][0][l] - t[i][1][l] + t[i][2][l]);
                    r[i * 4 + 3][l] = t[i][2][l];
                }
            for (int p = 0; p < 16; p++) memcpy(j->U + (p * K + k) * C + c0, r[p], sizeof(float) * (size_t)n);
        }
}

ts_tensor *nn_wino_weights(const ts_tensor *w)
{
    char sw[TS_SHAPE_STR_CAP];
    if (w->ndim != 4 || w->shape[2] != 3 || w->shape[3] != 3)
        return ts_fail_null(TS_ERR_ARG, "winograd: weight must be [K, C, 3, 3], got %s",
                            ts_shape_str(w->shape, w->ndim, sw, sizeof sw));
    int64_t K = w->shape[0], C = w->shape[1];
    ts_tensor *wc = ts_contiguous_as(w, TS_F32);
    ts_tensor *u = wc ? ts_tensor_new((int64_t[]){ 16, K, C }, 3, TS_F32) : NULL;
    if (!u) {
        ts_tensor_release(wc);
        return NULL;
    }
    /* prepacking a whole model's weights is a load-time cost: split over threads */
    wino_pack_job j = { ts_tensor_data(wc), ts_tensor_data(u), K, C };
    ts_parallel_for(K, 1 + 4096 / (C ? C : 1), wino_pack_rows, &j);
    ts_tensor_release(wc);
    return u;
}

/* ---- the convolution ------------------------------------------------------------------ */

typedef struct wino_job {
    const float *x;          /* [N, C, H, W] */
    float *y;                /* [N, K, OH, OW] */
    const float *z;          /* added before the activation, [N, K, OH, OW], or NULL */
    const float *u, *bias;   /* U [16, K, C]; bias [K] or NULL */
    bool relu;
    int64_t C, K, H, W, OH, OW, ph, pw, TH, TW;
    int64_t r0, nr;          /* the block: tile rows [r0, r0 + nr) counted over all images (image
                                r / TH, row r % TH); nt = nr * TW tiles */
    int64_t nt;
    float *v, *m;            /* V [16, C, nt], M [16, K, nt] */
    atomic_int failed;       /* a worker could not get its scratch rows */
} wino_job;

/* Scratch rows of the transforms: 4 x 4 rows of TW values plus one padded
 * input row; on the stack up to this many tiles per row, else malloc'd. */
#define WINO_STACK_TW 64

/* V for channels [c0, c1) of the block: per tile row, each of the 4 input
 * rows gets the column transform (d B) for all tiles at once, then the 4
 * rows are combined (B^T .); every loop runs over the tiles of the row, so
 * it vectorises. */
static void wino_input(int64_t c0, int64_t c1, void *ctx)
{
    const wino_job *j = ctx;
    int64_t TW = j->TW, plane = j->C * j->nt, padw = 2 * TW + 2;
    float stack[16 * WINO_STACK_TW + 2 * WINO_STACK_TW + 2];
    float *heap = TW > WINO_STACK_TW ? malloc(sizeof(float) * (size_t)(16 * TW + padw)) : NULL;
    float *h = heap ? heap : stack, *row = h + 16 * TW;
    if (TW > WINO_STACK_TW && !heap) {
        atomic_store(&((wino_job *)ctx)->failed, 1);
        return;
    }
    for (int64_t c = c0; c < c1; c++) {
        for (int64_t tr = 0; tr < j->nr; tr++) {
            int64_t img = (j->r0 + tr) / j->TH, trow = (j->r0 + tr) % j->TH;
            const float *x = j->x + (img * j->C + c) * j->H * j->W;
            for (int a = 0; a < 4; a++) {
                int64_t r = trow * 2 - j->ph + a;
                float *h0 = h + (a * 4) * TW, *h1 = h0 + TW, *h2 = h1 + TW, *h3 = h2 + TW;
                if (r < 0 || r >= j->H) {
                    memset(h0, 0, sizeof(float) * (size_t)(4 * TW));
                    continue;
                }
                /* row[q] = x[r][q - pw], zero outside the input */
                int64_t lo = j->pw < padw ? j->pw : padw, n = j->W < padw - lo ? j->W : padw - lo;
                memset(row, 0, sizeof(float) * (size_t)lo);
                memcpy(row + lo, x + r * j->W, sizeof(float) * (size_t)n);
                if (lo + n < padw) memset(row + lo + n, 0, sizeof(float) * (size_t)(padw - lo - n));
                for (int64_t t = 0; t < TW; t++) {
                    float d0 = row[2 * t], d1 = row[2 * t + 1], d2 = row[2 * t + 2], d3 = row[2 * t + 3];
                    h0[t] = d0 - d2;
                    h1[t] = d1 + d2;
                    h2[t] = d2 - d1;
                    h3[t] = d1 - d3;
                }
            }
            for (int b = 0; b < 4; b++) {
                const float *e0 = h + b * TW, *e1 = e0 + 4 * TW, *e2 = e1 + 4 * TW, *e3 = e2 + 4 * TW;
                float *v0 = j->v + (0 * 4 + b) * plane + c * j->nt + tr * TW;
                float *v1 = v0 + 4 * plane, *v2 = v1 + 4 * plane, *v3 = v2 + 4 * plane;
                for (int64_t t = 0; t < TW; t++) {
                    v0[t] = e0[t] - e2[t];
                    v1[t] = e1[t] + e2[t];
                    v2[t] = e2[t] - e1[t];
                    v3[t] = e1[t] - e3[t];
                }
            }
        }
    }
    free(heap);
}

/* The GEMMs of positions [p0, p1). */
static void wino_gemm(int64_t p0, int64_t p1, void *ctx)
{
    const wino_job *j = ctx;
    for (int64_t p = p0; p < p1; p++)
        ts_sgemm(false, false, j->K, j->nt, j->C, 1.0f, j->u + p * j->K * j->C, j->C, j->v + p * j->C * j->nt, j->nt,
                 0.0f, j->m + p * j->K * j->nt, j->nt);
}

/* Y for output channels [k0, k1) of the block: per tile row, the row
 * transform (. A) of each of the 4 rows of M, then the column transform
 * (A^T .) into two output rows, interleaved, plus bias, Z and ReLU. */
static void wino_output(int64_t k0, int64_t k1, void *ctx)
{
    const wino_job *j = ctx;
    int64_t TW = j->TW, plane = j->K * j->nt;
    float stack[8 * WINO_STACK_TW + 4 * WINO_STACK_TW];
    float *heap = TW > WINO_STACK_TW ? malloc(sizeof(float) * (size_t)(12 * TW)) : NULL;
    float *s = heap ? heap : stack, *o = s + 8 * TW;
    if (TW > WINO_STACK_TW && !heap) {
        atomic_store(&((wino_job *)ctx)->failed, 1);
        return;
    }
    for (int64_t k = k0; k < k1; k++) {
        float bias = j->bias ? j->bias[k] : 0.0f;
        for (int64_t tr = 0; tr < j->nr; tr++) {
            for (int a = 0; a < 4; a++) {
                const float *m0 = j->m + (a * 4) * plane + k * j->nt + tr * TW;
                const float *m1 = m0 + plane, *m2 = m1 + plane, *m3 = m2 + plane;
                float *s0 = s + (a * 2) * TW, *s1 = s0 + TW;
                for (int64_t t = 0; t < TW; t++) {
                    s0[t] = m0[t] + m1[t] + m2[t];
                    s1[t] = m1[t] - m2[t] - m3[t];
                }
            }
            /* o[row][2 t + b]: rows 2 tr and 2 tr + 1 of the output */
            for (int b = 0; b < 2; b++) {
                const float *a0 = s + b * TW, *a1 = a0 + 2 * TW, *a2 = a1 + 2 * TW, *a3 = a2 + 2 * TW;
                for (int64_t t = 0; t < TW; t++) {
                    o[2 * t + b] = a0[t] + a1[t] + a2[t] + bias;
                    o[2 * TW + 2 * t + b] = a1[t] - a2[t] - a3[t] + bias;
                }
            }
            int64_t img = (j->r0 + tr) / j->TH, trow = (j->r0 + tr) % j->TH;
            for (int a = 0; a < 2; a++) {
                int64_t r = trow * 2 + a;
                if (r >= j->OH) break;
                int64_t at = ((img * j->K + k) * j->OH + r) * j->OW;
                float *y = j->y + at;
                const float *src = o + a * 2 * TW, *z = j->z ? j->z + at : NULL;
                if (z && j->relu)
                    for (int64_t q = 0; q < j->OW; q++) { float v = src[q] + z[q]; y[q] = v > 0 ? v : 0.0f; }
                else if (z)
                    for (int64_t q = 0; q < j->OW; q++) y[q] = src[q] + z[q];
                else if (j->relu)
                    for (int64_t q = 0; q < j->OW; q++) y[q] = src[q] > 0 ? src[q] : 0.0f;
                else
                    memcpy(y, src, sizeof(float) * (size_t)j->OW);
            }
        }
    }
    free(heap);
}

ts_tensor *nn_conv_wino(const ts_tensor *x, const ts_tensor *u, const ts_tensor *bias, const ts_tensor *z,
                        const int64_t *pb, const int64_t *pe, bool relu)
{
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], K = u->shape[1];
    const int64_t max_pad = (int64_t)1 << 30;    /* keeps every size below in range */
    if (pb[0] < 0 || pb[1] < 0 || pe[0] < 0 || pe[1] < 0 || pb[0] > max_pad || pb[1] > max_pad || pe[0] > max_pad ||
        pe[1] > max_pad)
        return ts_fail_null(TS_ERR_ARG, "winograd: pads must be in [0, 2^30]");
    int64_t OH = H + pb[0] + pe[0] - 2, OW = W + pb[1] + pe[1] - 2;
    if (u->ndim != 3 || u->shape[0] != 16 || u->shape[2] != C || OH < 1 || OW < 1)
        return ts_fail_null(TS_ERR_ARG, "winograd: input and transformed weights do not fit");
    if (N == 0 || K == 0 || C == 0) {
        /* nothing to transform: zeros (C == 0), or an empty result */
        ts_tensor *e = ts_tensor_zeros((int64_t[]){ N, K, OH, OW }, 4, TS_F32);
        if (e && bias && C == 0 && N * K > 0) {
            ts_tensor *b = ts_reshape(bias, (int64_t[]){ 1, K, 1, 1 }, 4);
            ts_tensor *eb = b ? ts_binary(TS_ADD, e, b) : NULL;
            ts_tensor_release(b);
            ts_tensor_release(e);
            e = eb;
        }
        return e;
    }
    int64_t TH = (OH + 1) / 2, TW = (OW + 1) / 2;
    /* tile rows per block: V and M together about 4 MiB */
    int64_t nr = ((int64_t)1 << 20) / (16 * (C + K) * TW);
    if (nr < 1) nr = 1;
    if (nr > N * TH) nr = N * TH;
    ts_tensor *xc = ts_contiguous_as(x, TS_F32), *bc = bias && xc ? ts_contiguous_as(bias, TS_F32) : NULL;
    ts_tensor *zc = z && xc ? ts_contiguous_as(z, TS_F32) : NULL;
    ts_tensor *uc = xc ? ts_contiguous_as(u, TS_F32) : NULL;   /* U may be any view */
    ts_tensor *y = xc && uc && (!bias || bc) && (!z || zc) ? ts_tensor_new((int64_t[]){ N, K, OH, OW }, 4, TS_F32) : NULL;
    float *buf = y ? malloc(sizeof(float) * (size_t)(16 * (C + K) * nr * TW)) : NULL;
    if (y && !buf) ts_fail(TS_ERR_MEMORY, "winograd: out of memory for %lld tiles", (long long)(nr * TW));
    if (buf && ts_blas_init()) {
        free(buf);
        buf = NULL;
    }
    if (!buf) {
        ts_tensor_release(xc);
        ts_tensor_release(bc);
        ts_tensor_release(zc);
        ts_tensor_release(uc);
        ts_tensor_release(y);
        return NULL;
    }
    wino_job j = { NULL, NULL, NULL, ts_tensor_data(uc), bc ? ts_tensor_data(bc) : NULL, relu,
                   C, K, H, W, OH, OW, pb[0], pb[1], TH, TW, 0, 0, 0, buf, buf + 16 * C * nr * TW, 0 };
    atomic_init(&j.failed, 0);
    bool ours = ts_get_num_threads() > 1;
    if (ours) ts_blas_single_begin();
    j.x = ts_tensor_data(xc);
    j.y = ts_tensor_data(y);
    j.z = zc ? ts_tensor_data(zc) : NULL;
    for (j.r0 = 0; j.r0 < N * TH && !atomic_load(&j.failed); j.r0 += nr) {
        j.nr = N * TH - j.r0 < nr ? N * TH - j.r0 : nr;
        j.nt = j.nr * TW;
        ts_parallel_for(C, 1 + 2048 / (j.nt * 16), wino_input, &j);
        ts_parallel_for(16, 1, wino_gemm, &j);
        ts_parallel_for(K, 1 + 2048 / (j.nt * 8), wino_output, &j);
    }
    if (ours) ts_blas_single_end();
    free(buf);
    ts_tensor_release(xc);
    ts_tensor_release(bc);
    ts_tensor_release(zc);
    ts_tensor_release(uc);
    if (atomic_load(&j.failed)) {
        ts_tensor_release(y);
        return ts_fail_null(TS_ERR_MEMORY, "winograd: out of memory for the rows of %lld tiles", (long long)TW);
    }
    return y;
}

/* ---- the graph op: WinogradConv (domain ai.torsh) ------------------------------------------
 * Inputs X [N, C, H, W] (f32), U [16, K, C] (nn_wino_weights of a 3x3
 * weight), optional B [K] and Z (shaped like Y); attributes pads [4] (ONNX
 * order: top, left, bottom, right) and activation ("" or "Relu"). What
 * ts_graph_prepack_winograd (ops_nn_fuse.c) turns eligible convolutions
 * into. FLOPs: those of the 3x3 convolution it replaces. */

static ts_status wino_pads(const ts_gnode *n, int64_t *pb, int64_t *pe)
{
    int64_t p[4];
    if (nn_read_spatial(n, "pads", 4, 0, 0, p)) return ts_last_status();
    pb[0] = p[0]; pb[1] = p[1]; pe[0] = p[2]; pe[1] = p[3];
    return TS_OK;
}

static ts_status k_wino_conv(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0) || ts_kernel_need(ctx, in, n_in, 1)) return ts_last_status();
    const ts_tensor *x = in[0], *u = in[1];
    char sx[TS_SHAPE_STR_CAP], su[TS_SHAPE_STR_CAP];
    if (x->ndim != 4 || u->ndim != 3 || u->shape[0] != 16 || u->shape[2] != x->shape[1] || u->dtype != TS_F32 ||
        !ts_dtype_is_float(x->dtype))
        return ts_fail(TS_ERR_ARG, "WinogradConv: input %s %s and transformed weight %s %s do not fit",
                       ts_dtype_name(x->dtype), ts_shape_str(x->shape, x->ndim, sx, sizeof sx), ts_dtype_name(u->dtype),
                       ts_shape_str(u->shape, u->ndim, su, sizeof su));
    int64_t pb[2], pe[2];
    if (wino_pads(ctx->node, pb, pe)) return ts_last_status();
    const char *act = ts_gnode_string(ctx->node, "activation", "");
    if (*act && strcmp(act, "Relu"))
        return ts_fail(TS_ERR_UNSUPPORTED, "WinogradConv: activation \"%s\" is not supported (Relu)", act);
    const ts_tensor *b = n_in > 2 ? in[2] : NULL, *z = n_in > 3 ? in[3] : NULL;
    if (b && (b->ndim != 1 || b->shape[0] != u->shape[1]))
        return ts_fail(TS_ERR_ARG, "WinogradConv: bias must be [%lld]", (long long)u->shape[1]);
    int64_t oshape[4] = { x->shape[0], u->shape[1], x->shape[2] + pb[0] + pe[0] - 2, x->shape[3] + pb[1] + pe[1] - 2 };
    if (z && (z->ndim != 4 || memcmp(z->shape, oshape, sizeof oshape)))
        return ts_fail(TS_ERR_ARG, "WinogradConv: Z %s must be shaped like the output %s",
                       ts_shape_str(z->shape, z->ndim, sx, sizeof sx), ts_shape_str(oshape, 4, su, sizeof su));
    ts_tensor *y = nn_conv_wino(x, u, b, z, pb, pe, *act != 0);
    return nn_out1(out, y ? ts_narrow_dtype(y, x->dtype) : NULL);
}

static ts_status infer_wino_conv(ts_graph *g, const ts_gnode *n, int64_t opset, const ts_gvalue *const *in,
                                 ts_gvalue *const *out)
{
    const ts_gvalue *x = in[0], *u = n->n_inputs > 1 ? in[1] : NULL;
    if (!x || !u) return ts_fail(TS_ERR_ARG, "WinogradConv: inputs X and U are required");
    int64_t pb[2], pe[2];
    if (wino_pads(n, pb, pe)) return ts_last_status();
    if (x->ndim >= 0 && x->ndim != 4) return ts_fail(TS_ERR_ARG, "WinogradConv: input must be [N, C, H, W]");
    ts_dim d[4] = { ts_dim_unknown(), ts_dim_unknown(), ts_dim_unknown(), ts_dim_unknown() };
    if (u->ndim == 3) d[1] = u->dims[1];
    if (x->ndim == 4) {
        d[0] = x->dims[0];
        for (int i = 0; i < 2; i++) {
            ts_dim in_d = x->dims[2 + i];
            if (ts_dim_known(in_d)) {
                d[2 + i] = ts_dim_of(in_d.size + pb[i] + pe[i] - 2);
                if (d[2 + i].size < 1) return ts_fail(TS_ERR_ARG, "WinogradConv: input too small for a 3x3 kernel");
            } else if (pb[i] + pe[i] == 2) {
                d[2 + i] = in_d;
            }
        }
    }
    ts_gval_set(out[0], x->dtype, 4, d);
    return TS_OK;
}

static double flops_wino_conv(const ts_gnode *n, const ts_gvalue *const *in, const ts_gvalue *const *out)
{
    int64_t e = ts_gval_numel(out[0]), usz[3];
    if (e < 0 || n->n_inputs < 2 || !in[1] || in[1]->ndim != 3 || !ts_gval_concrete(in[1], usz)) return -1;
    return 2.0 * (double)e * (double)usz[2] * 9;
}

void ts_nn_register_wino_ops(void)
{
    ts_op_def d = { "WinogradConv", "ai.torsh", k_wino_conv, infer_wino_conv, flops_wino_conv, false, NULL, NULL };
    ts_op_register(&d);
}
