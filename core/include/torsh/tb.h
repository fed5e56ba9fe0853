/* torsh/tb.h — TensorBoard logging: event files that TensorBoard reads, and
 * the projector's files for embeddings.
 *
 *     ts_tb_writer *w = ts_tb_writer_open("runs/exp1", NULL);    // mkdir -p, new event file
 *     if (!w) fprintf(stderr, "%s\n", ts_last_error());
 *     for (int step = 0; step < 100; step++)
 *         ts_tb_add_scalar(w, "loss", 1.0 / (step + 1), step, TS_TB_NOW, TS_TB_SIMPLE);
 *     ts_tb_add_histogram(w, "fc.weight", weight, NULL, 100, TS_TB_NOW);
 *     if (ts_tb_writer_close(w)) fprintf(stderr, "%s\n", ts_last_error()); // flush + close
 *     ts_tb_writer_free(w);
 *
 * Files. ts_tb_writer_open creates `logdir` (and its parents) and one event
 * file in it, named like the Python writer PyTorch uses:
 * events.out.tfevents.<10-digit unix time>.<hostname>.<pid>.<counter><suffix>
 * (the counter counts writers opened by this process, so names never
 * collide). The file is a sequence of TFRecords (u64 length, masked CRC-32C
 * of the length, the serialized Event, masked CRC-32C of the data); the
 * first record is Event{file_version: "brain.Event:2"} and is on disk when
 * open returns. Every add_* call appends one Event (PyTorch's layout of
 * tags, plugin metadata and values; see each function).
 *
 * Buffering. Events are kept in memory and written (write(2), in order)
 * when ts_tb_flush or ts_tb_writer_close is called, when `max_queue` events
 * are pending, or by the first add_* call made `flush_secs` seconds or more
 * after the last write (the timer is checked on each add; no thread).
 *
 * Errors. Every function returns a status (TS_OK == 0) with the reason in
 * ts_last_error(), naming the function, the tag and the file: an unwritable
 * log dir, a full disk ("tb: writing <file>: No space left on device") or a
 * bad argument never crash or print. Events that could not be written stay
 * pending (up to 64 MiB) and are written by the next flush that succeeds;
 * a record is never written half and then abandoned.
 *
 * Ownership. ts_tb_writer_open returns a writer the caller owns and frees
 * with ts_tb_writer_free (which also closes it, dropping a close error;
 * call ts_tb_writer_close first to see that error). Tensors, strings and
 * graphs passed to the add functions are borrowed for the call only.
 * A writer is used by one thread at a time.
 */
#ifndef TORSH_TB_H
#define TORSH_TB_H

#include "torsh/base.h"
#include "torsh/tensor.h"
#include "torsh/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_tb_writer ts_tb_writer;

/* walltime argument meaning "now" (any negative value does). */
#define TS_TB_NOW (-1.0)

typedef struct ts_tb_options {
    double flush_secs;            /* write pending events this often; 0 = 120 s (PyTorch) */
    int max_queue;                /* write when this many events are pending; 0 = 10 (PyTorch) */
    const char *filename_suffix;  /* appended to the event file name; NULL = none */
} ts_tb_options;

/* Creates logdir (mkdir -p) and a new event file in it; opt may be NULL. */
ts_tb_writer *ts_tb_writer_open(const char *logdir, const ts_tb_options *opt);
/* Writes pending events. */
ts_status ts_tb_flush(ts_tb_writer *w);
/* Flushes, fsyncs and closes the event file. Later adds fail with "closed";
 * closing again is a no-op returning TS_OK. */
ts_status ts_tb_writer_close(ts_tb_writer *w);
/* Closes (errors dropped) and frees. NULL is fine. */
void ts_tb_writer_free(ts_tb_writer *w);
/* The log dir and the event file path (borrowed, valid until free). */
const char *ts_tb_writer_logdir(const ts_tb_writer *w);
const char *ts_tb_writer_file(const ts_tb_writer *w);
/* Events added but not yet written. */
int ts_tb_writer_pending(const ts_tb_writer *w);

/* ---- scalars --------------------------------------------------------------- */

typedef enum ts_tb_scalar_style {
    TS_TB_SIMPLE = 0,      /* Summary.Value.simple_value (f32), no metadata: PyTorch's default */
    TS_TB_TENSOR_F32,      /* new style: rank-0 DT_FLOAT tensor, plugin "scalars" */
    TS_TB_TENSOR_F64,      /* new style, double precision: DT_DOUBLE tensor */
} ts_tb_scalar_style;

/* Adds one point of the scalar series `tag`. NaN and +-Inf are written as
 * they are (TensorBoard plots them as gaps / at the edge). */
ts_status ts_tb_add_scalar(ts_tb_writer *w, const char *tag, double value, int64_t step,
                           double walltime, ts_tb_scalar_style style);

/* ---- histograms --------------------------------------------------------------- */

/* How values are bucketed (numpy.histogram semantics, as PyTorch uses):
 *  - NULL, or edges == NULL and count == 0: TensorFlow's default edges
 *    (PyTorch's bins="tensorflow": 0, +-1e-12 * 1.1^k up to 1e20);
 *  - edges == NULL, count > 0: `count` equal-width bins over [min, max] of
 *    the values (bins=int; [v-0.5, v+0.5] when all values are equal);
 *  - edges != NULL: n_edges increasing edges.
 * Then, like PyTorch, empty buckets are trimmed from both ends except one
 * empty bucket on the left, and only right edges are stored. max_bins > 0
 * merges neighbouring bins until at most max_bins remain. */
typedef struct ts_tb_bins {
    const double *edges;
    int64_t n_edges;
    int64_t count;
    int64_t max_bins;
} ts_tb_bins;

/* Histogram of every element of `values` (any real dtype and shape).
 * Non-finite elements (NaN, +-Inf) are left out, as TensorBoard expects;
 * num, min, max, sum and sum_squares describe the finite ones. With no
 * finite element the histogram is empty (num 0, one empty bucket at 0). */
ts_status ts_tb_add_histogram(ts_tb_writer *w, const char *tag, const ts_tensor *values,
                              const ts_tb_bins *bins, int64_t step, double walltime);
/* Histogram from precomputed statistics: n right edges and n counts. */
ts_status ts_tb_add_histogram_raw(ts_tb_writer *w, const char *tag, double min, double max,
                                  double num, double sum, double sum_squares,
                                  const double *bucket_limits, const double *bucket_counts, int64_t n,
                                  int64_t step, double walltime);

/* ---- images, audio, text ------------------------------------------------------------ */

/* One image, PNG-encoded. `dataformats` (NULL = "CHW") names the dims of
 * img: "CHW", "HWC", "HW", or "NCHW" / "NHWC" for a batch laid out as a grid
 * 8 images wide (PyTorch's add_images). u8 values are taken as they are;
 * every other dtype is read as [0, 1] and maps to trunc(v * 255) in f32
 * (PyTorch's rule; clamped to [0, 255], NaN -> 0). 1 channel is written as
 * grey replicated to RGB (as PyTorch does), 3 as RGB, 4 as RGBA. */
ts_status ts_tb_add_image(ts_tb_writer *w, const char *tag, const ts_tensor *img, const char *dataformats,
                          int64_t step, double walltime);

/* Mono 16-bit PCM WAV at sample_rate Hz from samples in [-1, 1] (any shape
 * with one non-1 dim; clipped; NaN -> 0; scaled by 32767 and truncated). */
ts_status ts_tb_add_audio(ts_tb_writer *w, const char *tag, const ts_tensor *samples, double sample_rate,
                          int64_t step, double walltime);

/* Text (markdown) under tag "<tag>/text_summary", plugin "text". */
ts_status ts_tb_add_text(ts_tb_writer *w, const char *tag, const char *text, size_t len,
                         int64_t step, double walltime);

/* ---- PR curves -------------------------------------------------------------------------- */

/* Precision-recall curve of `predictions` (probabilities in [0, 1]) against
 * `labels` (0/1, bool or numbers), optional `weights` (NULL = 1), same
 * number of elements. Written as PyTorch does: plugin "pr_curves", DT_FLOAT
 * tensor [6, num_thresholds] of rows TP, FP, TN, FN, precision, recall;
 * num_thresholds is clamped to [2, 127] (0 means 127). */
ts_status ts_tb_add_pr_curve(ts_tb_writer *w, const char *tag, const ts_tensor *labels,
                             const ts_tensor *predictions, const ts_tensor *weights, int num_thresholds,
                             int64_t step, double walltime);

/* ---- hyper-parameters ---------------------------------------------------------------------- */

typedef enum ts_tb_hvalue_type { TS_TB_HP_NUMBER, TS_TB_HP_STRING, TS_TB_HP_BOOL } ts_tb_hvalue_type;

typedef struct ts_tb_hvalue {
    ts_tb_hvalue_type type;
    double number;
    const char *string;
    bool boolean;
} ts_tb_hvalue;

typedef struct ts_tb_hparam {
    const char *name;
    ts_tb_hvalue value;
    const ts_tb_hvalue *domain;   /* optional discrete domain (same type as value) */
    int n_domain;
} ts_tb_hparam;

/* Writes what the hparams plugin reads, as PyTorch's add_hparams does:
 * three value-less summaries (tags _hparams_/experiment,
 * _hparams_/session_start_info, _hparams_/session_end_info; plugin
 * "hparams") and then one scalar per metric (tag = the metric name, step 0).
 * PyTorch writes them into a writer of their own at <logdir>/<run_name>;
 * the caller opens that writer (torsh.tb's add_hparams does). */
ts_status ts_tb_add_hparams(ts_tb_writer *w, const ts_tb_hparam *hparams, int n_hparams,
                            const char *const *metric_tags, const double *metric_values, int n_metrics,
                            double walltime);

/* ---- custom scalar layouts ------------------------------------------------------------------ */

typedef struct ts_tb_chart {
    const char *title;
    bool margin;                  /* margin chart: tags are value, lower, upper */
    const char *const *tags;      /* multiline chart: regular expressions of tags */
    int n_tags;
} ts_tb_chart;

typedef struct ts_tb_category {
    const char *title;
    const ts_tb_chart *charts;
    int n_charts;
    bool closed;
} ts_tb_category;

/* The custom_scalars plugin's Layout (tag "custom_scalars__config__"). */
ts_status ts_tb_add_custom_scalars(ts_tb_writer *w, const ts_tb_category *categories, int n_categories,
                                   double walltime);

/* ---- graphs -------------------------------------------------------------------------------- */

/* The model graph as a GraphDef (Event.graph_def) followed by PyTorch's
 * tagged_run_metadata "step1" event. Nodes: one "IO Node" per graph input
 * ("input/<name>") and output ("output/<name>"), one "Parameter" node per
 * constant value, one node per IR node (op = op type, prefixed "domain::"
 * outside the default domain) reading its producers' nodes; attributes are
 * summarised in attr["attr"] and output shapes in attr["_output_shapes"]. */
ts_status ts_tb_add_graph(ts_tb_writer *w, const ts_graph *g, double walltime);

/* ---- embeddings (the projector) ------------------------------------------------------------- */

typedef struct ts_tb_embedding {
    const ts_tensor *mat;          /* [N, D] real */
    const char *const *metadata;   /* N labels, or N rows of tab-separated columns; NULL = none */
    const char *metadata_header;   /* tab-separated column names (several columns); NULL = one column */
    const ts_tensor *label_img;    /* [N, C, H, W] images (C 1 or 3; [0,1] floats or u8); NULL = none */
    int64_t step;
    const char *tag;               /* NULL = "default" */
} ts_tb_embedding;

/* Writes <logdir>/<%05d step>/<tag with % / \ escaped>/tensors.tsv (one row
 * per point, tab-separated, shortest round-trip decimals), metadata.tsv and
 * sprite.png (a square grid of the label images) when given, and rewrites
 * <logdir>/projector_config.pbtxt listing every embedding this writer has
 * added (tensor_name "<tag>:<%05d step>"), as PyTorch does. Each file is
 * written to a temporary name and renamed. No event is written. */
ts_status ts_tb_add_embedding(ts_tb_writer *w, const ts_tb_embedding *e);

/* The host name used in event file names (never NULL; borrowed). */
const char *ts_tb_hostname(void);
/* Wall-clock seconds since the epoch (what walltimes default to). */
double ts_tb_now(void);

#ifdef __cplusplus
}
#endif
#endif
