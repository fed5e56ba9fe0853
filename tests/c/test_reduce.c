/* test_reduce.c — C tests of the reduction API without Lua: result shapes
 * and dtypes (keepdim, dim lists), the error contract (NULL / status with a
 * message, both outputs NULL for two-result ops, no tensor memory left
 * behind), accuracy of long f32 sums, and results that do not change with
 * the thread count on both loop shapes of the kernel. The numbers
 * themselves are checked against PyTorch by tests/lua/test_reduce.lua. */
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <torsh/torsh.h>

/* [rows, cols] f32 with a fixed pattern in [-0.5, 0.5). */
static ts_tensor *pattern(int64_t rows, int64_t cols)
{
    ts_tensor *t = ts_tensor_new((int64_t[]){ rows, cols }, 2, TS_F32);
    float *p = ts_tensor_data(t);
    for (int64_t i = 0; i < rows * cols; i++) p[i] = (float)((i * 7919) % 10007) / 10007.0f - 0.5f;
    return t;
}

static void test_shapes_and_dtypes(void)
{
    ts_tensor *a = ts_tensor_full((int64_t[]){ 2, 3, 4 }, 3, TS_I32, 2);
    ts_tensor *s = ts_reduce(TS_SUM, a, (int[]){ 0, -1 }, 2, false);
    CHECK(s && s->ndim == 1 && s->shape[0] == 3 && s->dtype == TS_I64);
    CHECK(s && ts_tensor_item_at(s, 1) == 16);
    ts_tensor *k = ts_reduce(TS_PROD, a, (int[]){ 1 }, 1, true);
    CHECK(k && k->ndim == 3 && k->shape[0] == 2 && k->shape[1] == 1 && k->shape[2] == 4);
    CHECK(k && ts_tensor_item_at(k, 0) == 8);
    ts_tensor *all = ts_reduce(TS_AMAX, a, NULL, 0, true);
    CHECK(all && all->ndim == 3 && ts_tensor_numel(all) == 1 && all->dtype == TS_I32);
    ts_tensor *any = ts_reduce(TS_ANY, a, NULL, 0, false);
    CHECK(any && any->ndim == 0 && any->dtype == TS_BOOL && ts_tensor_item_at(any, 0) == 1);
    ts_tensor *lse = ts_reduce(TS_LOGSUMEXP, a, NULL, 0, false);
    CHECK(lse && lse->dtype == TS_F32);
    CHECK_NEAR(lse ? ts_tensor_item_at(lse, 0) : 0, 2 + log(24.0), 1e-6);
    ts_tensor *c = ts_cumsum(a, 2);
    CHECK(c && c->dtype == TS_I64 && ts_tensor_item_at(c, 3) == 8);
    ts_tensor *am = ts_argmax(a, 0, true, true);
    CHECK(am && am->ndim == 3 && am->dtype == TS_I64 && ts_tensor_item_at(am, 0) == 0);
    ts_tensor *v = NULL, *ix = NULL;
    CHECK(ts_topk(a, 2, -1, true, true, &v, &ix) == TS_OK);
    CHECK(v && ix && v->shape[2] == 2 && ix->dtype == TS_I64);
    CHECK(ix && ts_tensor_item_at(ix, 1) == 1);   /* ties keep their order */
    ts_tensor *rs[] = { a, s, k, all, any, lse, c, am, v, ix };
    for (size_t i = 0; i < sizeof rs / sizeof *rs; i++) ts_tensor_release(rs[i]);
}

static void test_errors(void)
{
    int64_t live = ts_mem_get_stats(TS_CPU).live_bytes;
    ts_tensor *a = ts_tensor_zeros((int64_t[]){ 0, 3 }, 2, TS_F32);
    ts_tensor *i = ts_tensor_zeros((int64_t[]){ 2, 3 }, 2, TS_I64);
    CHECK(ts_reduce(TS_AMAX, a, (int[]){ 0 }, 1, false) == NULL);
    CHECK(strstr(ts_last_error(), "amax: cannot perform reduction on an empty dim (dim 0 of shape [0, 3]") != NULL);
    CHECK(ts_reduce(TS_SUM, i, (int[]){ 2 }, 1, false) == NULL);
    CHECK(strstr(ts_last_error(), "sum: dim 2 is out of range") != NULL);
    CHECK(ts_reduce(TS_SUM, i, (int[]){ 1, -1 }, 2, false) == NULL);
    CHECK(strstr(ts_last_error(), "appears more than once") != NULL);
    CHECK(ts_reduce(TS_MEAN, i, NULL, 0, false) == NULL);
    CHECK(strstr(ts_last_error(), "mean: input dtype i64 is not floating point") != NULL);
    CHECK(ts_reduce((ts_redop)99, i, NULL, 0, false) == NULL);
    CHECK(ts_var(i, NULL, 0, 1, false) == NULL && ts_last_status() == TS_ERR_ARG);
    CHECK(ts_norm(i, 2, NULL, 0, false) == NULL);
    ts_tensor *v = (ts_tensor *)1, *ix = (ts_tensor *)1;
    CHECK(ts_max_dim(a, 0, false, &v, &ix) == TS_ERR_ARG && v == NULL && ix == NULL);
    v = ix = (ts_tensor *)1;
    CHECK(ts_topk(i, 4, 1, true, true, &v, &ix) == TS_ERR_ARG && v == NULL && ix == NULL);
    CHECK(strstr(ts_last_error(), "topk: k = 4 is out of range for dim 1 of shape [2, 3] (size 3)") != NULL);
    v = ix = (ts_tensor *)1;
    CHECK(ts_sort(i, 5, false, &v, &ix) == TS_ERR_ARG && v == NULL && ix == NULL);
    CHECK(ts_argmin(a, 0, true, false) == NULL);
    CHECK(ts_cumprod(i, -3) == NULL);
    /* the backend kernel refuses an output of the wrong shape */
    ts_tensor *bad = ts_tensor_zeros((int64_t[]){ 2, 2 }, 2, TS_I64);
    CHECK(ts_backend_get(TS_CPU)->reduce(TS_SUM, bad, i, (bool[TS_MAX_DIMS]){ true }) != TS_OK);
    ts_tensor_release(bad);
    ts_tensor_release(a);
    ts_tensor_release(i);
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes == live);
}

static void test_long_sum_accuracy(void)
{
    enum { N = 1000003 };
    ts_tensor *a = ts_tensor_new((int64_t[]){ N }, 1, TS_F32);
    float *p = ts_tensor_data(a);
    double exact = 0;
    for (int64_t i = 0; i < N; i++) { p[i] = (float)((i * 7919) % 10007) / 10007.0f + 0.1f; exact += p[i]; }
    ts_tensor *s = ts_reduce(TS_SUM, a, NULL, 0, false), *m = ts_reduce(TS_MEAN, a, NULL, 0, false);
    CHECK_NEAR(s ? ts_tensor_item_at(s, 0) : 0, exact, 1e-7);
    CHECK_NEAR(m ? ts_tensor_item_at(m, 0) : 0, exact / N, 1e-7);
    ts_tensor_release(s);
    ts_tensor_release(m);
    ts_tensor_release(a);
}

/* Every reduction of x on 1 and on 4 threads, bit for bit. */
static void test_thread_count_independence(void)
{
    int saved = ts_get_num_threads();
    ts_tensor *x = pattern(1536, 2600);
    ts_tensor *xt = ts_transpose(x, 0, 1);
    const ts_tensor *inputs[] = { x, xt };
    for (int in = 0; in < 2; in++)
        for (int op = 0; op < TS_REDOP_COUNT; op++)
            for (int d = -1; d < 2; d++) {
                ts_tensor *r[2];
                for (int k = 0; k < 2; k++) {
                    ts_set_num_threads(k ? 4 : 1);
                    r[k] = ts_reduce((ts_redop)op, inputs[in], &d, d < 0 ? 0 : 1, false);
                }
                CHECK(r[0] && r[1] && ts_tensor_nbytes(r[0]) == ts_tensor_nbytes(r[1]));
                if (r[0] && r[1]) CHECK(memcmp(ts_tensor_data(r[0]), ts_tensor_data(r[1]), ts_tensor_nbytes(r[0])) == 0);
                ts_tensor_release(r[0]);
                ts_tensor_release(r[1]);
            }
    ts_set_num_threads(saved);
    ts_tensor_release(xt);
    ts_tensor_release(x);
}

int main(void)
{
    RUN(test_shapes_and_dtypes);
    RUN(test_errors);
    RUN(test_long_sum_accuracy);
    RUN(test_thread_count_independence);
    return check_finish("test_reduce");
}
