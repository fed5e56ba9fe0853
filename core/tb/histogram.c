/* histogram.c — histograms the way PyTorch's SummaryWriter builds them
 * (torch/utils/tensorboard/summary.py make_histogram over numpy.histogram):
 * TensorFlow's default edges or numpy's equal-width / explicit bins, the
 * optional max_bins merge, trimming of empty buckets (one empty bucket kept
 * on the left, right edges stored), and the summary statistics. Non-finite
 * values are left out. Provides tb_histogram, tb_hist_free, tb_bin_counts
 * and ts_tb_add_histogram / ts_tb_add_histogram_raw. */
#include "tb_proto.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* numpy.linspace(first, last, n + 1) */
static void linspace_edges(double first, double last, int64_t nb, double *e)
{
    double step = (last - first) / (double)nb;
    for (int64_t i = 0; i <= nb; i++) e[i] = (double)i * step + first;
    e[nb] = last;
}

/* TensorFlow's default edges: 0 and +-1e-12 * 1.1^k while below 1e20
 * (computed by repeated multiplication, as PyTorch does). */
static double *tf_edges(int64_t *ne)
{
    int64_t npos = 0;
    for (double v = 1e-12; v < 1e20; v *= 1.1) npos++;
    double *e = malloc(sizeof *e * (size_t)(2 * npos + 1));
    if (!e) return ts_fail_null(TS_ERR_MEMORY, "add_histogram: out of memory");
    int64_t k = 0;
    for (double v = 1e-12; v < 1e20; v *= 1.1, k++) {
        e[npos + 1 + k] = v;
        e[npos - 1 - k] = -v;
    }
    e[npos] = 0;
    *ne = 2 * npos + 1;
    return e;
}

void tb_bin_counts(const double *v, int64_t n, const double *e, int64_t ne, bool uniform, double *counts,
                   const double *weights)
{
    int64_t nb = ne - 1;
    double first = e[0], last = e[nb];
    double norm = (double)nb / (last - first);
    for (int64_t b = 0; b < nb; b++) counts[b] = 0;
    for (int64_t j = 0; j < n; j++) {
        double x = v[j];
        if (!(x >= first && x <= last)) continue;      /* NaN too */
        int64_t i;
        if (uniform) {                                  /* numpy's arithmetic rule + corrections */
            i = (int64_t)((x - first) * norm);
            if (i >= nb) i = nb - 1;
            if (i < 0) i = 0;
            if (x < e[i]) i--;
            else if (x >= e[i + 1] && i != nb - 1) i++;
        } else {                                        /* last edge <= x (binary search) */
            int64_t lo = 0, hi = ne;                    /* first index with e > x */
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                if (e[mid] <= x) lo = mid + 1; else hi = mid;
            }
            i = lo - 1;
            if (i >= nb) i = nb - 1;
        }
        if (i < 0 || i >= nb) continue;
        counts[i] += weights ? weights[j] : 1.0;
    }
}

void tb_hist_free(tb_hist *h)
{
    free(h->limits);
    free(h->counts);
    h->limits = h->counts = NULL;
    h->n = 0;
}

static ts_status single_bucket(tb_hist *out, double at)
{
    out->limits = malloc(sizeof(double));
    out->counts = malloc(sizeof(double));
    if (!out->limits || !out->counts) { tb_hist_free(out); return ts_fail(TS_ERR_MEMORY, "add_histogram: out of memory"); }
    out->limits[0] = at;
    out->counts[0] = 0;
    out->n = 1;
    return TS_OK;
}

ts_status tb_histogram(const double *values, int64_t n, const ts_tb_bins *bins, tb_hist *out)
{
    memset(out, 0, sizeof *out);
    /* statistics of the finite values; they alone are bucketed */
    double *fin = malloc(sizeof *fin * (size_t)(n ? n : 1));
    if (!fin) return ts_fail(TS_ERR_MEMORY, "add_histogram: out of memory for %lld values", (long long)n);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(values[i])) fin[m++] = values[i];
    if (m == 0) { free(fin); return single_bucket(out, 0); }
    double mn = fin[0], mx = fin[0], sum = 0, ss = 0;
    for (int64_t i = 0; i < m; i++) {
        double x = fin[i];
        if (x < mn) mn = x;
        if (x > mx) mx = x;
        sum += x;
        ss += x * x;
    }
    out->min = mn; out->max = mx; out->num = (double)m; out->sum = sum; out->sum_squares = ss;

    /* edges */
    double *edges = NULL;
    int64_t ne = 0;
    bool uniform = false;
    if (bins && bins->edges) {
        if (bins->n_edges < 2) { free(fin); return ts_fail(TS_ERR_ARG, "add_histogram: bins need at least 2 edges, got %lld", (long long)bins->n_edges); }
        for (int64_t i = 1; i < bins->n_edges; i++)
            if (!(bins->edges[i] > bins->edges[i - 1])) {
                free(fin);
                return ts_fail(TS_ERR_ARG, "add_histogram: bin edges must increase (edge %lld is %g after %g)",
                               (long long)i + 1, bins->edges[i], bins->edges[i - 1]);
            }
        ne = bins->n_edges;
        edges = malloc(sizeof *edges * (size_t)ne);
        if (edges) memcpy(edges, bins->edges, sizeof *edges * (size_t)ne);
    } else if (bins && bins->count > 0) {
        if (bins->count > 100000000) { free(fin); return ts_fail(TS_ERR_ARG, "add_histogram: %lld bins is too many", (long long)bins->count); }
        double first = mn, last = mx;
        if (first == last) { first -= 0.5; last += 0.5; }
        ne = bins->count + 1;
        edges = malloc(sizeof *edges * (size_t)ne);
        if (edges) linspace_edges(first, last, bins->count, edges);
        uniform = true;
    } else {
        edges = tf_edges(&ne);
    }
    double *counts = edges ? malloc(sizeof *counts * (size_t)(ne - 1 + 1)) : NULL;
    if (!edges || !counts) { free(fin); free(edges); free(counts); return ts_fail(TS_ERR_MEMORY, "add_histogram: out of memory"); }
    int64_t nb = ne - 1;
    tb_bin_counts(fin, m, edges, ne, uniform, counts, NULL);
    free(fin);

    /* max_bins: sum groups of `sub` neighbouring bins */
    if (bins && bins->max_bins > 0 && nb > bins->max_bins) {
        int64_t sub = nb / bins->max_bins, k = 0;
        for (int64_t b = 0; b < nb; b += sub, k++) {
            double c = 0;
            for (int64_t j = b; j < b + sub && j < nb; j++) c += counts[j];
            counts[k] = c;
            edges[k] = edges[b];
        }
        edges[k] = edges[nb];
        nb = k;
    }

    /* trim: first..last non-empty bucket, plus the empty bucket left of it */
    int64_t start = -1, end = -1;
    for (int64_t b = 0; b < nb; b++)
        if (counts[b] > 0) { if (start < 0) start = b; end = b; }
    if (start < 0) { free(edges); free(counts); return single_bucket(out, mx); }
    end += 1;
    int64_t k = end - start + 1;
    out->limits = malloc(sizeof(double) * (size_t)k);
    out->counts = malloc(sizeof(double) * (size_t)k);
    if (!out->limits || !out->counts) {
        free(edges); free(counts); tb_hist_free(out);
        return ts_fail(TS_ERR_MEMORY, "add_histogram: out of memory");
    }
    for (int64_t i = 0; i < k; i++) {
        out->limits[i] = edges[start + i];
        int64_t b = start - 1 + i;
        out->counts[i] = b >= 0 ? counts[b] : 0;
    }
    out->n = k;
    free(edges);
    free(counts);
    return TS_OK;
}

/* ---- summaries ------------------------------------------------------------------------ */

ts_status ts_tb_add_histogram_raw(ts_tb_writer *w, const char *tag, double min, double max, double num, double sum,
                                  double sum_squares, const double *bucket_limits, const double *bucket_counts,
                                  int64_t n, int64_t step, double walltime)
{
    if (tb_check_open(w, "add_histogram", tag)) return ts_last_status();
    if (!tag || !*tag) return ts_fail(TS_ERR_ARG, "add_histogram: empty tag");
    if (n < 1 || !bucket_limits || !bucket_counts)
        return ts_fail(TS_ERR_ARG, "add_histogram '%s': needs at least one bucket", tag);
    Tensorboard__HistogramProto h = TENSORBOARD__HISTOGRAM_PROTO__INIT;
    h.min = min; h.max = max; h.num = num; h.sum = sum; h.sum_squares = sum_squares;
    h.n_bucket_limit = h.n_bucket = (size_t)n;
    h.bucket_limit = (double *)bucket_limits;
    h.bucket = (double *)bucket_counts;
    Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
    v.tag = (char *)tag;
    v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_HISTO;
    v.histo = &h;
    return tb_writer_add_value(w, &v, step, walltime);
}

ts_status ts_tb_add_histogram(ts_tb_writer *w, const char *tag, const ts_tensor *values, const ts_tb_bins *bins,
                              int64_t step, double walltime)
{
    if (tb_check_open(w, "add_histogram", tag)) return ts_last_status();
    if (!tag || !*tag) return ts_fail(TS_ERR_ARG, "add_histogram: empty tag");
    if (!values) return ts_fail(TS_ERR_ARG, "add_histogram '%s': no values", tag);
    if (ts_tensor_numel(values) == 0) return ts_fail(TS_ERR_ARG, "add_histogram '%s': the tensor has no elements", tag);
    ts_tensor *d = ts_to_dtype(values, TS_F64);
    if (!d) return tb_fail_context(ts_last_status(), "add_histogram '%s'", tag);
    tb_hist h;
    ts_status st = tb_histogram(ts_tensor_data(d), ts_tensor_numel(d), bins, &h);
    ts_tensor_release(d);
    if (st) return tb_fail_context(st, "add_histogram '%s'", tag);
    st = ts_tb_add_histogram_raw(w, tag, h.min, h.max, h.num, h.sum, h.sum_squares, h.limits, h.counts, h.n, step,
                                 walltime);
    tb_hist_free(&h);
    return st;
}
