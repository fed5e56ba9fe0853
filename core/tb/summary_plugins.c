/* summary_plugins.c — summaries whose meaning lives in a TensorBoard plugin's
 * data, written as PyTorch's torch/utils/tensorboard/summary.py does:
 * PR curves (plugin "pr_curves", PrCurvePluginData + DT_FLOAT [6, n]),
 * hyper-parameters (plugin "hparams": experiment, session start and end
 * infos, then the metrics as scalars) and custom scalar layouts (plugin
 * "custom_scalars", a serialized Layout in a DT_STRING tensor). Provides
 * ts_tb_add_pr_curve, ts_tb_add_hparams and ts_tb_add_custom_scalars. */
#include "tb_proto.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- PR curves ---------------------------------------------------------------------- */

static double *flat_f64(const ts_tensor *t, ts_tensor **holder)
{
    *holder = ts_to_dtype(t, TS_F64);
    return *holder ? ts_tensor_data(*holder) : NULL;
}

ts_status ts_tb_add_pr_curve(ts_tb_writer *w, const char *tag, const ts_tensor *labels, const ts_tensor *predictions,
                             const ts_tensor *weights, int num_thresholds, int64_t step, double walltime)
{
    if (tb_check_open(w, "add_pr_curve", tag)) return ts_last_status();
    if (!tag || !*tag) return ts_fail(TS_ERR_ARG, "add_pr_curve: empty tag");
    if (!labels || !predictions) return ts_fail(TS_ERR_ARG, "add_pr_curve '%s': needs labels and predictions", tag);
    int64_t m = ts_tensor_numel(predictions);
    if (ts_tensor_numel(labels) != m || (weights && ts_tensor_numel(weights) != m))
        return ts_fail(TS_ERR_ARG, "add_pr_curve '%s': %lld labels, %lld predictions%s: the counts must match", tag,
                       (long long)ts_tensor_numel(labels), (long long)m, weights ? " and weights" : "");
    int n = num_thresholds == 0 ? 127 : num_thresholds;
    if (n > 127) n = 127;   /* PyTorch's cap */
    if (n < 2) return ts_fail(TS_ERR_ARG, "add_pr_curve '%s': num_thresholds must be at least 2, got %d", tag, num_thresholds);

    ts_tensor *hl = NULL, *hp = NULL, *hw = NULL;
    const double *lab = flat_f64(labels, &hl), *pred = flat_f64(predictions, &hp);
    const double *wt = weights ? flat_f64(weights, &hw) : NULL;
    double *buf = malloc(sizeof(double) * (size_t)(3 * (m ? m : 1) + 4 * n + 2));
    if (!lab || !pred || (weights && !wt) || !buf) {
        ts_tensor_release(hl); ts_tensor_release(hp); ts_tensor_release(hw); free(buf);
        return ts_fail(TS_ERR_MEMORY, "add_pr_curve '%s': out of memory", tag);
    }
    double *idx = buf, *wpos = buf + m, *wneg = buf + 2 * m;
    double *edges = buf + 3 * m, *tp = edges + n + 1, *fp = tp + n;
    for (int64_t i = 0; i < m; i++) {
        double b = floor(pred[i] * (n - 1));
        idx[i] = isfinite(b) ? b : NAN;                 /* NaN predictions are ignored */
        double wi = wt ? wt[i] : 1.0;
        wpos[i] = lab[i] * wi;
        wneg[i] = (1.0 - lab[i]) * wi;
    }
    double step_e = (double)(n - 1) / n;
    for (int i = 0; i <= n; i++) edges[i] = i * step_e;
    edges[n] = n - 1;
    tb_bin_counts(idx, m, edges, n + 1, true, tp, wpos);
    tb_bin_counts(idx, m, edges, n + 1, true, fp, wneg);
    ts_tensor_release(hl); ts_tensor_release(hp); ts_tensor_release(hw);
    for (int i = n - 2; i >= 0; i--) { tp[i] += tp[i + 1]; fp[i] += fp[i + 1]; }
    float *data = malloc(sizeof(float) * 6 * (size_t)n);
    if (!data) { free(buf); return ts_fail(TS_ERR_MEMORY, "add_pr_curve '%s': out of memory", tag); }
    for (int i = 0; i < n; i++) {
        double TP = tp[i], FP = fp[i], TN = fp[0] - fp[i], FN = tp[0] - tp[i];
        data[i] = (float)TP;
        data[n + i] = (float)FP;
        data[2 * n + i] = (float)TN;
        data[3 * n + i] = (float)FN;
        data[4 * n + i] = (float)(TP / fmax(1e-7, TP + FP));
        data[5 * n + i] = (float)(TP / fmax(1e-7, TP + FN));
    }
    free(buf);

    Tensorboard__PrCurvePluginData pd = TENSORBOARD__PR_CURVE_PLUGIN_DATA__INIT;
    pd.num_thresholds = (uint32_t)n;
    uint8_t content[16];
    size_t clen = tensorboard__pr_curve_plugin_data__pack(&pd, content);
    tb_meta meta;
    tb_meta_init(&meta, "pr_curves", content, clen);
    tb_shape shape;
    tb_shape_init(&shape, (int64_t[]){6, n}, 2);
    Tensorboard__TensorProto t = TENSORBOARD__TENSOR_PROTO__INIT;
    t.dtype = TENSORBOARD__DATA_TYPE__DT_FLOAT;
    t.tensor_shape = &shape.proto;
    t.n_float_val = 6 * (size_t)n;
    t.float_val = data;
    Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
    v.tag = (char *)tag;
    v.metadata = &meta.meta;
    v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_TENSOR;
    v.tensor = &t;
    ts_status st = tb_writer_add_value(w, &v, step, walltime);
    free(data);
    return st;
}

/* ---- hparams ---------------------------------------------------------------------------- */

static void struct_value(Tensorboard__StructValue *sv, const ts_tb_hvalue *hv)
{
    tensorboard__struct_value__init(sv);
    switch (hv->type) {
    case TS_TB_HP_STRING:
        sv->kind_case = TENSORBOARD__STRUCT_VALUE__KIND_STRING_VALUE;
        sv->string_value = (char *)(hv->string ? hv->string : "");
        break;
    case TS_TB_HP_BOOL:
        sv->kind_case = TENSORBOARD__STRUCT_VALUE__KIND_BOOL_VALUE;
        sv->bool_value = hv->boolean;
        break;
    default:
        sv->kind_case = TENSORBOARD__STRUCT_VALUE__KIND_NUMBER_VALUE;
        sv->number_value = hv->number;
    }
}

/* one value-less summary value carrying HParamsPluginData */
static ts_status hparams_event(ts_tb_writer *w, const char *tag, Tensorboard__HParamsPluginData *pd, double walltime)
{
    size_t n = tensorboard__hparams_plugin_data__get_packed_size(pd);
    uint8_t *content = malloc(n ? n : 1);
    if (!content) return ts_fail(TS_ERR_MEMORY, "add_hparams: out of memory");
    tensorboard__hparams_plugin_data__pack(pd, content);
    tb_meta meta;
    tb_meta_init(&meta, "hparams", content, n);
    Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
    v.tag = (char *)tag;
    v.metadata = &meta.meta;
    ts_status st = tb_writer_add_value(w, &v, 0, walltime);
    free(content);
    return st;
}

ts_status ts_tb_add_hparams(ts_tb_writer *w, const ts_tb_hparam *hp, int nh, const char *const *metric_tags,
                            const double *metric_values, int nm, double walltime)
{
    if (tb_check_open(w, "add_hparams", NULL)) return ts_last_status();
    if (nh < 0 || nm < 0 || (nh && !hp) || (nm && (!metric_tags || !metric_values)))
        return ts_fail(TS_ERR_ARG, "add_hparams: bad arguments");
    int ndom = 0;
    for (int i = 0; i < nh; i++) {
        if (!hp[i].name || !*hp[i].name) return ts_fail(TS_ERR_ARG, "add_hparams: hyper-parameter %d has no name", i + 1);
        for (int k = 0; k < hp[i].n_domain; k++)
            if (hp[i].domain[k].type != hp[i].value.type)
                return ts_fail(TS_ERR_ARG, "add_hparams: the domain of '%s' mixes types with its value", hp[i].name);
        ndom += hp[i].n_domain > 0 ? hp[i].n_domain : 0;
    }
    for (int i = 0; i < nm; i++)
        if (!metric_tags[i] || !*metric_tags[i]) return ts_fail(TS_ERR_ARG, "add_hparams: metric %d has no name", i + 1);

    /* every proto object lives in these arrays until the events are queued */
    int n1 = nh ? nh : 1, m1 = nm ? nm : 1;
    Tensorboard__StructValue *vals = calloc((size_t)n1, sizeof *vals);
    Tensorboard__SessionStartInfo__HparamsEntry *ents = calloc((size_t)n1, sizeof *ents);
    Tensorboard__SessionStartInfo__HparamsEntry **entp = calloc((size_t)n1, sizeof *entp);
    Tensorboard__HParamInfo *infos = calloc((size_t)n1, sizeof *infos);
    Tensorboard__HParamInfo **infop = calloc((size_t)n1, sizeof *infop);
    Tensorboard__StructListValue *lists = calloc((size_t)n1, sizeof *lists);
    Tensorboard__StructValue *domv = calloc((size_t)(ndom ? ndom : 1), sizeof *domv);
    Tensorboard__StructValue **domp = calloc((size_t)(ndom ? ndom : 1), sizeof *domp);
    Tensorboard__MetricInfo *minfo = calloc((size_t)m1, sizeof *minfo);
    Tensorboard__MetricInfo **minfop = calloc((size_t)m1, sizeof *minfop);
    Tensorboard__MetricName *mname = calloc((size_t)m1, sizeof *mname);
    ts_status st = TS_OK;
    if (!vals || !ents || !entp || !infos || !infop || !lists || !domv || !domp || !minfo || !minfop || !mname) {
        st = ts_fail(TS_ERR_MEMORY, "add_hparams: out of memory");
        goto done;
    }
    int d = 0;
    for (int i = 0; i < nh; i++) {
        struct_value(&vals[i], &hp[i].value);
        tensorboard__session_start_info__hparams_entry__init(&ents[i]);
        ents[i].key = (char *)hp[i].name;
        ents[i].value = &vals[i];
        entp[i] = &ents[i];
        tensorboard__hparam_info__init(&infos[i]);
        infos[i].name = (char *)hp[i].name;
        infos[i].type = hp[i].value.type == TS_TB_HP_STRING ? TENSORBOARD__HPARAM_DATA_TYPE__DATA_TYPE_STRING
                      : hp[i].value.type == TS_TB_HP_BOOL   ? TENSORBOARD__HPARAM_DATA_TYPE__DATA_TYPE_BOOL
                                                            : TENSORBOARD__HPARAM_DATA_TYPE__DATA_TYPE_FLOAT64;
        if (hp[i].n_domain > 0) {
            tensorboard__struct_list_value__init(&lists[i]);
            lists[i].values = &domp[d];
            lists[i].n_values = (size_t)hp[i].n_domain;
            for (int k = 0; k < hp[i].n_domain; k++, d++) {
                struct_value(&domv[d], &hp[i].domain[k]);
                domp[d] = &domv[d];
            }
            infos[i].domain_case = TENSORBOARD__HPARAM_INFO__DOMAIN_DOMAIN_DISCRETE;
            infos[i].domain_discrete = &lists[i];
        }
        infop[i] = &infos[i];
    }
    for (int i = 0; i < nm; i++) {
        tensorboard__metric_name__init(&mname[i]);
        mname[i].tag = (char *)metric_tags[i];
        tensorboard__metric_info__init(&minfo[i]);
        minfo[i].name = &mname[i];
        minfop[i] = &minfo[i];
    }

    Tensorboard__Experiment exp = TENSORBOARD__EXPERIMENT__INIT;
    exp.n_hparam_infos = (size_t)nh;
    exp.hparam_infos = infop;
    exp.n_metric_infos = (size_t)nm;
    exp.metric_infos = minfop;
    Tensorboard__SessionStartInfo ssi = TENSORBOARD__SESSION_START_INFO__INIT;
    ssi.n_hparams = (size_t)nh;
    ssi.hparams = entp;
    Tensorboard__SessionEndInfo sei = TENSORBOARD__SESSION_END_INFO__INIT;
    sei.status = TENSORBOARD__STATUS__STATUS_SUCCESS;

    Tensorboard__HParamsPluginData pd = TENSORBOARD__HPARAMS_PLUGIN_DATA__INIT;
    pd.data_case = TENSORBOARD__HPARAMS_PLUGIN_DATA__DATA_EXPERIMENT;
    pd.experiment = &exp;
    if ((st = hparams_event(w, "_hparams_/experiment", &pd, walltime))) goto done;
    pd.data_case = TENSORBOARD__HPARAMS_PLUGIN_DATA__DATA_SESSION_START_INFO;
    pd.session_start_info = &ssi;
    if ((st = hparams_event(w, "_hparams_/session_start_info", &pd, walltime))) goto done;
    pd.data_case = TENSORBOARD__HPARAMS_PLUGIN_DATA__DATA_SESSION_END_INFO;
    pd.session_end_info = &sei;
    if ((st = hparams_event(w, "_hparams_/session_end_info", &pd, walltime))) goto done;
    for (int i = 0; i < nm && !st; i++) st = ts_tb_add_scalar(w, metric_tags[i], metric_values[i], 0, walltime, TS_TB_SIMPLE);
done:
    free(vals); free(ents); free(entp); free(infos); free(infop); free(lists);
    free(domv); free(domp); free(minfo); free(minfop); free(mname);
    return st;
}

/* ---- custom scalar layouts ------------------------------------------------------------------ */

ts_status ts_tb_add_custom_scalars(ts_tb_writer *w, const ts_tb_category *cats, int nc, double walltime)
{
    if (tb_check_open(w, "add_custom_scalars", NULL)) return ts_last_status();
    if (nc < 0 || (nc && !cats)) return ts_fail(TS_ERR_ARG, "add_custom_scalars: bad layout");
    int ncharts = 0;
    for (int i = 0; i < nc; i++) {
        for (int k = 0; k < cats[i].n_charts; k++) {
            const ts_tb_chart *ch = &cats[i].charts[k];
            if (ch->margin && ch->n_tags != 3)
                return ts_fail(TS_ERR_ARG, "add_custom_scalars: margin chart '%s' in '%s' needs 3 tags (value, lower, upper), got %d",
                               ch->title ? ch->title : "", cats[i].title ? cats[i].title : "", ch->n_tags);
            for (int j = 0; j < ch->n_tags; j++)
                if (!ch->tags[j]) return ts_fail(TS_ERR_ARG, "add_custom_scalars: chart '%s' has a missing tag", ch->title ? ch->title : "");
        }
        ncharts += cats[i].n_charts;
    }
    int nc1 = nc ? nc : 1, nch1 = ncharts ? ncharts : 1;
    Tensorboard__Category *cat = calloc((size_t)nc1, sizeof *cat);
    Tensorboard__Category **catp = calloc((size_t)nc1, sizeof *catp);
    Tensorboard__Chart *chart = calloc((size_t)nch1, sizeof *chart);
    Tensorboard__Chart **chartp = calloc((size_t)nch1, sizeof *chartp);
    Tensorboard__MultilineChartContent *ml = calloc((size_t)nch1, sizeof *ml);
    Tensorboard__MarginChartContent *mg = calloc((size_t)nch1, sizeof *mg);
    Tensorboard__MarginChartContent__Series *ser = calloc((size_t)nch1, sizeof *ser);
    Tensorboard__MarginChartContent__Series **serp = calloc((size_t)nch1, sizeof *serp);
    uint8_t *bytes = NULL;
    ts_status st = TS_OK;
    if (!cat || !catp || !chart || !chartp || !ml || !mg || !ser || !serp) {
        st = ts_fail(TS_ERR_MEMORY, "add_custom_scalars: out of memory");
        goto done;
    }
    int c = 0;
    for (int i = 0; i < nc; i++) {
        tensorboard__category__init(&cat[i]);
        cat[i].title = (char *)(cats[i].title ? cats[i].title : "");
        cat[i].closed = cats[i].closed;
        cat[i].chart = &chartp[c];
        cat[i].n_chart = (size_t)cats[i].n_charts;
        catp[i] = &cat[i];
        for (int k = 0; k < cats[i].n_charts; k++, c++) {
            const ts_tb_chart *src = &cats[i].charts[k];
            tensorboard__chart__init(&chart[c]);
            chart[c].title = (char *)(src->title ? src->title : "");
            if (src->margin) {
                tensorboard__margin_chart_content__series__init(&ser[c]);
                ser[c].value = (char *)src->tags[0];
                ser[c].lower = (char *)src->tags[1];
                ser[c].upper = (char *)src->tags[2];
                serp[c] = &ser[c];
                tensorboard__margin_chart_content__init(&mg[c]);
                mg[c].n_series = 1;
                mg[c].series = &serp[c];
                chart[c].content_case = TENSORBOARD__CHART__CONTENT_MARGIN;
                chart[c].margin = &mg[c];
            } else {
                tensorboard__multiline_chart_content__init(&ml[c]);
                ml[c].n_tag = (size_t)src->n_tags;
                ml[c].tag = (char **)src->tags;
                chart[c].content_case = TENSORBOARD__CHART__CONTENT_MULTILINE;
                chart[c].multiline = &ml[c];
            }
            chartp[c] = &chart[c];
        }
    }
    Tensorboard__Layout layout = TENSORBOARD__LAYOUT__INIT;
    layout.n_category = (size_t)nc;
    layout.category = catp;
    size_t n = tensorboard__layout__get_packed_size(&layout);
    bytes = malloc(n ? n : 1);
    if (!bytes) { st = ts_fail(TS_ERR_MEMORY, "add_custom_scalars: out of memory"); goto done; }
    tensorboard__layout__pack(&layout, bytes);

    tb_meta meta;
    tb_meta_init(&meta, "custom_scalars", NULL, 0);
    tb_shape shape;
    tb_shape_init(&shape, NULL, 0);
    ProtobufCBinaryData s = {n, bytes};
    Tensorboard__TensorProto t = TENSORBOARD__TENSOR_PROTO__INIT;
    t.dtype = TENSORBOARD__DATA_TYPE__DT_STRING;
    t.tensor_shape = &shape.proto;
    t.n_string_val = 1;
    t.string_val = &s;
    Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
    v.tag = "custom_scalars__config__";
    v.metadata = &meta.meta;
    v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_TENSOR;
    v.tensor = &t;
    st = tb_writer_add_value(w, &v, 0, walltime);
done:
    free(cat); free(catp); free(chart); free(chartp); free(ml); free(mg); free(ser); free(serp); free(bytes);
    return st;
}
