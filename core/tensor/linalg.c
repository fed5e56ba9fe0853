/* linalg.c — matmul (torch.matmul semantics), bmm and linear, plus the CPU
 * batched-GEMM kernel: BLAS for f32/f64 (f16/bf16 are widened to f32 and
 * narrowed back), a plain triple loop for integer dtypes. */
#include "internal.h"
#include "torsh/blas.h"

#include <string.h>

/* A 2-D matrix view usable by BLAS: row-major with leading dim ld, or
 * transposed (column-major) with leading dim ld. */
static bool blas_layout(const int64_t *shape, const int64_t *stride, bool *trans, int64_t *ld)
{
    int64_t rows = shape[0], cols = shape[1];
    if (stride[1] == 1 && (rows <= 1 || stride[0] >= (cols > 1 ? cols : 1))) {
        *trans = false;
        *ld = rows <= 1 ? (cols > 1 ? cols : 1) : stride[0];
        return true;
    }
    if (stride[0] == 1 && (cols <= 1 || stride[1] >= (rows > 1 ? rows : 1))) {
        *trans = true;
        *ld = cols <= 1 ? (rows > 1 ? rows : 1) : stride[1];
        return true;
    }
    return false;
}

static ts_status gemm_float(ts_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void *a, int64_t lda,
                            const void *b, int64_t ldb, void *c, int64_t ldc)
{
    if (dt == TS_F32) return ts_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
    return ts_dgemm(ta, tb, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc);
}

/* out[bt] = a[bt] @ b[bt] for integer dtypes: accumulate in int64. */
static void int_matmul(ts_tensor *out, const ts_tensor *a, const ts_tensor *b)
{
    int64_t B = a->shape[0], M = a->shape[1], K = a->shape[2], N = b->shape[2];
    const char *ad = ts_tensor_data(a), *bd = ts_tensor_data(b);
    char *od = ts_tensor_data(out);
    for (int64_t bt = 0; bt < B; bt++)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                uint64_t acc = 0;
                for (int64_t p = 0; p < K; p++)
                    acc += (uint64_t)ts_load_i64(ad, a->dtype, bt * a->stride[0] + i * a->stride[1] + p * a->stride[2]) *
                           (uint64_t)ts_load_i64(bd, b->dtype, bt * b->stride[0] + p * b->stride[1] + j * b->stride[2]);
                ts_store_i64(od, out->dtype, bt * out->stride[0] + i * out->stride[1] + j * out->stride[2], (int64_t)acc);
            }
}

ts_status ts_cpu_bmm(ts_tensor *out, const ts_tensor *a, const ts_tensor *b)
{
    ts_dtype dt = out->dtype;
    if (!ts_dtype_is_float(dt)) { int_matmul(out, a, b); return TS_OK; }
    if (dt != TS_F32 && dt != TS_F64) {
        /* f16 / bf16: compute in f32 */
        ts_tensor *a32 = ts_to_dtype(a, TS_F32), *b32 = a32 ? ts_to_dtype(b, TS_F32) : NULL;
        ts_tensor *o32 = b32 ? ts_tensor_new(out->shape, 3, TS_F32) : NULL;
        ts_status st = o32 ? ts_cpu_bmm(o32, a32, b32) : ts_last_status();
        if (!st) st = ts_copy_(out, o32);
        ts_tensor_release(a32);
        ts_tensor_release(b32);
        ts_tensor_release(o32);
        return st;
    }
    int64_t B = a->shape[0], M = a->shape[1], K = a->shape[2], N = b->shape[2];
    ts_tensor *ac = NULL, *bc = NULL;
    bool ta = false, tb = false;
    int64_t lda = 0, ldb = 0;
    const ts_tensor *A = a, *Bm = b;
    if (!blas_layout(a->shape + 1, a->stride + 1, &ta, &lda) || a->dtype != dt) {
        if (!(ac = ts_to_dtype(a, dt))) return ts_last_status();
        A = ac;
        blas_layout(A->shape + 1, A->stride + 1, &ta, &lda);
    }
    if (!blas_layout(b->shape + 1, b->stride + 1, &tb, &ldb) || b->dtype != dt) {
        if (!(bc = ts_to_dtype(b, dt))) { ts_tensor_release(ac); return ts_last_status(); }
        Bm = bc;
        blas_layout(Bm->shape + 1, Bm->stride + 1, &tb, &ldb);
    }
    size_t es = ts_dtype_size(dt);
    const char *ad = ts_tensor_data(A), *bd = ts_tensor_data(Bm);
    char *od = ts_tensor_data(out);
    ts_status st = TS_OK;
    if (K == 0) {
        st = ts_fill_(out, 0);
    } else {
        for (int64_t bt = 0; bt < B && !st; bt++)
            st = gemm_float(dt, ta, tb, M, N, K, ad + (size_t)(bt * A->stride[0]) * es, lda,
                            bd + (size_t)(bt * Bm->stride[0]) * es, ldb, od + (size_t)(bt * out->stride[0]) * es,
                            out->stride[1] > 0 ? out->stride[1] : N);
    }
    ts_tensor_release(ac);
    ts_tensor_release(bc);
    return st;
}

static ts_status check_float_or_int(const char *op, const ts_tensor *a, const ts_tensor *b)
{
    if (a->dtype == TS_BOOL || b->dtype == TS_BOOL)
        return ts_fail(TS_ERR_ARG, "%s: bool tensors are not supported", op);
    return ts_require_same_device(op, a, b);
}

ts_tensor *ts_bmm(const ts_tensor *a, const ts_tensor *b)
{
    if (check_float_or_int("bmm", a, b)) return NULL;
    char sa[TS_SHAPE_STR_CAP], sb[TS_SHAPE_STR_CAP];
    if (a->ndim != 3 || b->ndim != 3 || a->shape[0] != b->shape[0] || a->shape[2] != b->shape[1])
        return ts_fail_null(TS_ERR_ARG, "bmm: shapes %s and %s do not line up (want [B,n,k] and [B,k,m])",
                            ts_shape_str(a->shape, a->ndim, sa, sizeof sa), ts_shape_str(b->shape, b->ndim, sb, sizeof sb));
    const ts_backend *be = ts_backend_of(a);
    if (!be->bmm) return ts_fail_null(TS_ERR_UNSUPPORTED, "bmm: not implemented on %s", be->name);
    int64_t shape[3] = { a->shape[0], a->shape[1], b->shape[2] };
    ts_tensor *out = ts_tensor_new_on(a, shape, 3, ts_dtype_promote(a->dtype, b->dtype));
    if (out && be->bmm(out, a, b)) { ts_tensor_release(out); return NULL; }
    return out;
}

/* [M,K] @ [K,N] for 2-D operands. */
static ts_tensor *mm(const ts_tensor *a, const ts_tensor *b)
{
    ts_tensor *a3 = ts_unsqueeze(a, 0), *b3 = a3 ? ts_unsqueeze(b, 0) : NULL;
    ts_tensor *o3 = b3 ? ts_bmm(a3, b3) : NULL;
    ts_tensor *o = o3 ? ts_squeeze(o3, 0) : NULL;
    ts_tensor_release(a3);
    ts_tensor_release(b3);
    ts_tensor_release(o3);
    return o;
}

ts_tensor *ts_matmul(const ts_tensor *a, const ts_tensor *b)
{
    if (check_float_or_int("matmul", a, b)) return NULL;
    char sa[TS_SHAPE_STR_CAP], sb[TS_SHAPE_STR_CAP];
    if (a->ndim == 0 || b->ndim == 0)
        return ts_fail_null(TS_ERR_ARG, "matmul: both arguments need at least 1 dim, got %s and %s",
                            ts_shape_str(a->shape, a->ndim, sa, sizeof sa), ts_shape_str(b->shape, b->ndim, sb, sizeof sb));
    int64_t ka = a->shape[a->ndim - 1], kb = b->ndim == 1 ? b->shape[0] : b->shape[b->ndim - 2];
    if (ka != kb)
        return ts_fail_null(TS_ERR_ARG, "matmul: shapes %s and %s do not line up (%lld != %lld)",
                            ts_shape_str(a->shape, a->ndim, sa, sizeof sa), ts_shape_str(b->shape, b->ndim, sb, sizeof sb),
                            (long long)ka, (long long)kb);
    /* promote vectors to matrices, remember which dims to drop at the end */
    ts_tensor *A = a->ndim == 1 ? ts_unsqueeze(a, 0) : (ts_tensor_retain((ts_tensor *)a), (ts_tensor *)a);
    ts_tensor *B = b->ndim == 1 ? ts_unsqueeze(b, 1) : (ts_tensor_retain((ts_tensor *)b), (ts_tensor *)b);
    ts_tensor *out = NULL;
    if (!A || !B) goto done;
    int64_t M = A->shape[A->ndim - 2], K = ka, N = B->shape[B->ndim - 1];
    int64_t oshape[TS_MAX_DIMS];
    int ond;
    if (B->ndim == 2) {
        /* fold all of A's batch dims into M: one big GEMM */
        int64_t rows = 1;
        for (int i = 0; i < A->ndim - 1; i++) rows *= A->shape[i];
        int64_t flat[2] = { rows, K };
        ts_tensor *A2 = ts_reshape(A, flat, 2);
        ts_tensor *o2 = A2 ? mm(A2, B) : NULL;
        ts_tensor_release(A2);
        if (!o2) goto done;
        memcpy(oshape, A->shape, sizeof(int64_t) * (size_t)A->ndim);
        oshape[A->ndim - 1] = N;
        ond = A->ndim;
        out = ts_reshape(o2, oshape, ond);
        ts_tensor_release(o2);
    } else {
        int64_t batch[TS_MAX_DIMS];
        int nb;
        if (ts_broadcast_shapes("matmul", A->shape, A->ndim - 2, B->shape, B->ndim - 2, batch, &nb)) goto done;
        int64_t bcount = 1;
        for (int i = 0; i < nb; i++) bcount *= batch[i];
        int64_t ea[TS_MAX_DIMS], eb[TS_MAX_DIMS];
        memcpy(ea, batch, sizeof(int64_t) * (size_t)nb);
        memcpy(eb, batch, sizeof(int64_t) * (size_t)nb);
        ea[nb] = M; ea[nb + 1] = K;
        eb[nb] = K; eb[nb + 1] = N;
        ts_tensor *Ae = ts_expand(A, ea, nb + 2), *Be = Ae ? ts_expand(B, eb, nb + 2) : NULL;
        int64_t s3a[3] = { bcount, M, K }, s3b[3] = { bcount, K, N };
        ts_tensor *A3 = Be ? ts_reshape(Ae, s3a, 3) : NULL, *B3 = A3 ? ts_reshape(Be, s3b, 3) : NULL;
        ts_tensor *o3 = B3 ? ts_bmm(A3, B3) : NULL;
        ts_tensor_release(Ae); ts_tensor_release(Be); ts_tensor_release(A3); ts_tensor_release(B3);
        if (!o3) goto done;
        memcpy(oshape, batch, sizeof(int64_t) * (size_t)nb);
        oshape[nb] = M; oshape[nb + 1] = N;
        ond = nb + 2;
        out = ts_reshape(o3, oshape, ond);
        ts_tensor_release(o3);
    }
    if (out && (a->ndim == 1 || b->ndim == 1)) {
        ts_tensor *sq = ts_squeeze(out, a->ndim == 1 ? -2 : -1);
        ts_tensor_release(out);
        out = sq;
        if (out && a->ndim == 1 && b->ndim == 1) {   /* vector . vector: a 0-dim result */
            sq = ts_squeeze(out, -1);
            ts_tensor_release(out);
            out = sq;
        }
    }
done:
    ts_tensor_release(A);
    ts_tensor_release(B);
    return out;
}

ts_tensor *ts_linear(const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias)
{
    char sx[TS_SHAPE_STR_CAP], sw[TS_SHAPE_STR_CAP];
    if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
        return ts_fail_null(TS_ERR_ARG, "linear: input %s and weight %s do not line up (want [..., in] and [out, in])",
                            ts_shape_str(x->shape, x->ndim, sx, sizeof sx), ts_shape_str(w->shape, w->ndim, sw, sizeof sw));
    if (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0]))
        return ts_fail_null(TS_ERR_ARG, "linear: bias %s does not match %lld outputs",
                            ts_shape_str(bias->shape, bias->ndim, sx, sizeof sx), (long long)w->shape[0]);
    ts_tensor *wt = ts_transpose(w, 0, 1);
    ts_tensor *y = wt ? ts_matmul(x, wt) : NULL;
    ts_tensor_release(wt);
    if (y && bias && ts_binary_(TS_ADD, y, bias)) { ts_tensor_release(y); return NULL; }
    return y;
}
