/* loader.c — the batch producer of torsh/data.h (ts_loader_*): cuts an
 * in-memory dataset into batches in a given order, runs the transform
 * pipeline of transform.c on every sample, and makes the batches ahead on
 * background pthreads.
 *
 * The queue: `depth` slots; batch b lives in slot b % depth. A worker may
 * claim batch b only while b < next_out + depth (its slot is free), makes
 * it without holding the lock, then publishes it and wakes the consumer.
 * The consumer waits for slot next_out % depth to hold batch next_out, so
 * batches come out in order whatever finished first; when the batch it
 * needs has not been claimed by any worker yet (all busy, or not scheduled
 * on a loaded machine), the consumer makes it itself instead of sleeping —
 * any thread may make any batch. Errors travel in the
 * slot as a status and a copied message (ts_last_error is per thread).
 * ts_loader_free sets `stop`, wakes everyone and joins. */
#include "data_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LOADER_MAX_WORKERS 64
#define LOADER_MAX_DEPTH 256

typedef struct batch_slot {
    int64_t batch;          /* which batch the slot holds when ready */
    bool ready;
    ts_tensor *x, *y;
    ts_status code;         /* TS_OK, or why the batch failed */
    char *err;              /* its message (malloc'ed) */
} batch_slot;

struct ts_loader {
    ts_tensor *samples, *labels;          /* contiguous references */
    int64_t *order, norder;
    int64_t batch_size, nbatches;
    ts_pipeline pl;
    size_t sample_bytes;
    int64_t label_numel;
    ts_dtype label_out;
    uint64_t key;                         /* Philox key of this epoch's transforms */

    pthread_mutex_t mu;
    pthread_cond_t ready_cv, space_cv;
    batch_slot *slots;
    int depth;
    pthread_t *threads;
    int nthreads;
    int64_t next_claim, next_out;
    bool stop;
    float *scratch;                       /* the caller's thread, when nthreads == 0 */
};

/* ---- making one batch ----------------------------------------------------------------------- */

static size_t scratch_floats(const ts_loader *ld) { return ld->pl.has_crop ? 2 * (size_t)ld->pl.max_numel + 1 : 0; }

static ts_status make_batch(const ts_loader *ld, int64_t b, float *scratch, ts_tensor **x, ts_tensor **y)
{
    *x = *y = NULL;
    int64_t start = b * ld->batch_size;
    int64_t count = ld->norder - start < ld->batch_size ? ld->norder - start : ld->batch_size;
    int64_t shape[TS_MAX_DIMS];
    shape[0] = count;
    memcpy(shape + 1, ld->pl.out_shape, (size_t)ld->pl.out_ndim * sizeof *shape);
    *x = ts_tensor_new(shape, ld->pl.out_ndim + 1, TS_F32);
    if (!*x) return ts_last_status();
    if (ld->labels) {
        memcpy(shape + 1, ld->labels->shape + 1, (size_t)(ld->labels->ndim - 1) * sizeof *shape);
        *y = ts_tensor_new(shape, ld->labels->ndim, ld->label_out);
        if (!*y) {
            ts_tensor_release(*x);
            *x = NULL;
            return ts_last_status();
        }
    }
    const char *src = ts_tensor_data(ld->samples);
    float *out = ts_tensor_data(*x);
    ts_dtype sdt = ld->samples->dtype;
    for (int64_t j = 0; j < count; j++) {
        int64_t idx = ld->order[start + j];
        ts_pipeline_run(&ld->pl, src + (size_t)idx * ld->sample_bytes, sdt, out + j * ld->pl.out_numel, scratch, ld->key,
                        start + j);
        if (ld->labels) {
            const ts_tensor *l = ld->labels;
            size_t in_size = ts_dtype_size(l->dtype), out_size = ts_dtype_size(ld->label_out);
            ts_convert((char *)ts_tensor_data(*y) + (size_t)(j * ld->label_numel) * out_size, ld->label_out, 1,
                       (const char *)ts_tensor_data(l) + (size_t)(idx * ld->label_numel) * in_size, l->dtype, 1,
                       ld->label_numel);
        }
    }
    return TS_OK;
}

/* ---- workers ---------------------------------------------------------------------------------- */

static void publish(ts_loader *ld, int64_t b, ts_status st, ts_tensor *x, ts_tensor *y)
{
    batch_slot *s = &ld->slots[b % ld->depth];
    s->batch = b;
    s->x = x;
    s->y = y;
    s->code = st;
    s->err = st ? strdup(ts_last_error()) : NULL;
    s->ready = true;
    pthread_cond_broadcast(&ld->ready_cv);
}

static void *worker_main(void *arg)
{
    ts_loader *ld = arg;
    size_t nscratch = scratch_floats(ld);
    float *scratch = nscratch ? malloc(nscratch * sizeof(float)) : NULL;
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        while (!ld->stop && ld->next_claim < ld->nbatches && ld->next_claim >= ld->next_out + ld->depth)
            pthread_cond_wait(&ld->space_cv, &ld->mu);
        if (ld->stop || ld->next_claim >= ld->nbatches) break;
        int64_t b = ld->next_claim++;
        pthread_mutex_unlock(&ld->mu);
        ts_tensor *x = NULL, *y = NULL;
        ts_status st = nscratch && !scratch ? ts_fail(TS_ERR_MEMORY, "loader: out of memory for a worker's buffers")
                                            : make_batch(ld, b, scratch, &x, &y);
        pthread_mutex_lock(&ld->mu);
        publish(ld, b, st, x, y);
    }
    pthread_mutex_unlock(&ld->mu);
    free(scratch);
    return NULL;
}

/* ---- creation ----------------------------------------------------------------------------------- */

static ts_status check_options(const ts_loader_options *o)
{
    if (!o) return ts_fail(TS_ERR_ARG, "loader: options are NULL");
    if (o->batch_size < 1) return ts_fail(TS_ERR_ARG, "loader: batch_size must be >= 1, got %lld", (long long)o->batch_size);
    if (o->num_workers < 0 || o->num_workers > LOADER_MAX_WORKERS)
        return ts_fail(TS_ERR_ARG, "loader: num_workers must be 0..%d, got %d", LOADER_MAX_WORKERS, o->num_workers);
    if (o->prefetch > LOADER_MAX_DEPTH)
        return ts_fail(TS_ERR_ARG, "loader: prefetch must be at most %d, got %d", LOADER_MAX_DEPTH, o->prefetch);
    return TS_OK;
}

static ts_status check_data(const ts_tensor *samples, const ts_tensor *labels)
{
    char s1[TS_SHAPE_STR_CAP], s2[TS_SHAPE_STR_CAP];
    if (!samples) return ts_fail(TS_ERR_ARG, "loader: samples are NULL");
    if (ts_require_cpu("loader", samples)) return ts_last_status();
    if (samples->ndim < 1)
        return ts_fail(TS_ERR_ARG, "loader: samples must be [N, ...] (one sample per row), got a 0-dim tensor");
    if (!labels) return TS_OK;
    if (ts_require_cpu("loader", labels)) return ts_last_status();
    if (labels->ndim < 1 || labels->shape[0] != samples->shape[0])
        return ts_fail(TS_ERR_ARG, "loader: labels %s do not match samples %s (one label row per sample)",
                       ts_shape_str(labels->shape, labels->ndim, s1, sizeof s1),
                       ts_shape_str(samples->shape, samples->ndim, s2, sizeof s2));
    return TS_OK;
}

/* Copies the order (or 0..n-1) into ld->order, checking every index. */
static ts_status copy_order(ts_loader *ld, const ts_tensor *order, int64_t n)
{
    if (order && (order->ndim != 1 || ts_dtype_is_float(order->dtype) || order->dtype == TS_BOOL))
        return ts_fail(TS_ERR_ARG, "loader: order must be a 1-D integer tensor, got %d dims of %s", order->ndim,
                       ts_dtype_name(order->dtype));
    if (order && ts_require_cpu("loader", order)) return ts_last_status();
    ld->norder = order ? order->shape[0] : n;
    ld->order = malloc((size_t)(ld->norder ? ld->norder : 1) * sizeof *ld->order);
    if (!ld->order) return ts_fail(TS_ERR_MEMORY, "loader: out of memory for an order of %lld", (long long)ld->norder);
    if (!order) {
        for (int64_t i = 0; i < n; i++) ld->order[i] = i;
        return TS_OK;
    }
    for (int64_t i = 0; i < ld->norder; i++) {
        int64_t v = ts_tensor_get_i64(order, &i);
        if (v < 0 || v >= n)
            return ts_fail(TS_ERR_ARG, "loader: order[%lld] = %lld is out of range for %lld samples", (long long)i,
                           (long long)v, (long long)n);
        ld->order[i] = v;
    }
    return TS_OK;
}

static void start_workers(ts_loader *ld, int n)
{
    if (n == 0) return;
    ld->threads = malloc((size_t)n * sizeof *ld->threads);
    if (!ld->threads) return;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&ld->threads[i], NULL, worker_main, ld) != 0) break;
        ld->nthreads++;
    }
}

ts_loader *ts_loader_new(const ts_tensor *samples, const ts_tensor *labels, const ts_tensor *order,
                         const ts_loader_options *o)
{
    if (check_options(o) || check_data(samples, labels)) return NULL;
    ts_loader *ld = calloc(1, sizeof *ld);
    if (!ld) return ts_fail_null(TS_ERR_MEMORY, "loader: out of memory");
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->ready_cv, NULL);
    pthread_cond_init(&ld->space_cv, NULL);
    ld->batch_size = o->batch_size;
    ld->key = ts_data_key(o->seed, o->epoch, TS_DATA_STREAM_TRANSFORM);
    if (ts_pipeline_init(&ld->pl, o->transforms, o->ntransforms, samples->shape + 1, samples->ndim - 1) ||
        copy_order(ld, order, samples->shape[0]))
        goto fail;
    ld->samples = ts_contiguous(samples);
    ld->labels = labels ? ts_contiguous(labels) : NULL;
    if (!ld->samples || (labels && !ld->labels)) goto fail;
    ld->sample_bytes = (size_t)ld->pl.in_numel * ts_dtype_size(samples->dtype);
    if (labels) {
        ld->label_numel = 1;
        for (int d = 1; d < labels->ndim; d++) ld->label_numel *= labels->shape[d];
        ld->label_out = ts_dtype_is_float(labels->dtype) ? TS_F32 : TS_I64;
    }
    ld->nbatches = o->drop_last ? ld->norder / ld->batch_size : (ld->norder + ld->batch_size - 1) / ld->batch_size;
    if (o->start_batch < 0 || o->start_batch > ld->nbatches) {
        ts_fail(TS_ERR_ARG, "loader: start_batch %lld is out of range 0..%lld", (long long)o->start_batch,
                (long long)ld->nbatches);
        goto fail;
    }
    ld->next_claim = ld->next_out = o->start_batch;
    int nw = o->num_workers;
    ld->depth = o->prefetch > 0 ? o->prefetch : (2 * nw > 2 ? 2 * nw : 2);
    ld->slots = calloc((size_t)ld->depth, sizeof *ld->slots);
    size_t ns = scratch_floats(ld);
    ld->scratch = ns ? malloc(ns * sizeof(float)) : NULL;
    if (!ld->slots || (ns && !ld->scratch)) {
        ts_fail(TS_ERR_MEMORY, "loader: out of memory");
        goto fail;
    }
    start_workers(ld, nw);   /* none started: batches are made on the caller's thread */
    return ld;
fail:
    ts_loader_free(ld);
    return NULL;
}

/* ---- consuming --------------------------------------------------------------------------------- */

ts_status ts_loader_next(ts_loader *ld, ts_tensor **x, ts_tensor **y)
{
    if (!x || !y) return ts_fail(TS_ERR_ARG, "loader: NULL result pointers");
    *x = *y = NULL;
    if (!ld) return ts_fail(TS_ERR_ARG, "loader: NULL loader");
    if (ld->next_out >= ld->nbatches) return TS_OK;
    if (ld->nthreads == 0) {
        ts_status st = make_batch(ld, ld->next_out, ld->scratch, x, y);
        ld->next_out++;
        return st;
    }
    pthread_mutex_lock(&ld->mu);
    batch_slot *s = &ld->slots[ld->next_out % ld->depth];
    if (!s->ready && ld->next_claim == ld->next_out) {
        /* no worker has started this batch (they are all busy or not
         * scheduled): make it here rather than sleep */
        int64_t b = ld->next_claim++;
        pthread_mutex_unlock(&ld->mu);
        ts_status st = make_batch(ld, b, ld->scratch, x, y);
        pthread_mutex_lock(&ld->mu);
        ld->next_out++;
        pthread_cond_broadcast(&ld->space_cv);
        pthread_mutex_unlock(&ld->mu);
        return st;
    }
    while (!(s->ready && s->batch == ld->next_out)) pthread_cond_wait(&ld->ready_cv, &ld->mu);
    *x = s->x;
    *y = s->y;
    ts_status st = s->code;
    char *err = s->err;
    memset(s, 0, sizeof *s);
    ld->next_out++;
    pthread_cond_broadcast(&ld->space_cv);
    pthread_mutex_unlock(&ld->mu);
    if (st) {
        ts_fail(st, "%s", err ? err : "loader: a batch failed");
        free(err);
    }
    return st;
}

int64_t ts_loader_position(const ts_loader *ld) { return ld ? ld->next_out : 0; }

int64_t ts_loader_num_batches(const ts_loader *ld) { return ld ? ld->nbatches : 0; }

void ts_loader_free(ts_loader *ld)
{
    if (!ld) return;
    pthread_mutex_lock(&ld->mu);
    ld->stop = true;
    pthread_cond_broadcast(&ld->space_cv);
    pthread_cond_broadcast(&ld->ready_cv);
    pthread_mutex_unlock(&ld->mu);
    for (int i = 0; i < ld->nthreads; i++) pthread_join(ld->threads[i], NULL);
    for (int i = 0; ld->slots && i < ld->depth; i++) {
        ts_tensor_release(ld->slots[i].x);
        ts_tensor_release(ld->slots[i].y);
        free(ld->slots[i].err);
    }
    free(ld->slots);
    free(ld->threads);
    free(ld->scratch);
    free(ld->order);
    ts_tensor_release(ld->samples);
    ts_tensor_release(ld->labels);
    pthread_cond_destroy(&ld->ready_cv);
    pthread_cond_destroy(&ld->space_cv);
    pthread_mutex_destroy(&ld->mu);
    free(ld);
}
