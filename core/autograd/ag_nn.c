/* ag_nn.c — recording wrappers and backward functions of the neural-network
 * ops: conv1d/conv2d, max and average pooling (1-D, 2-D, adaptive), batch
 * norm (inference and training), layer norm, group norm, softmax and
 * log_softmax, and the fused cross-entropy and NLL losses.
 *
 * The gradients are C kernels (core/tensor/conv_backward.c,
 * pool_backward.c, norm_backward.c, loss.c, declared in nn_grad.h); this
 * file records what they need (saved operands, options in n->i / n->d) and
 * shapes their results: 1-D convolutions and unbatched inputs are handed
 * to the kernels as batched 2-D views. Max pooling always runs the forward
 * that yields indices, so its backward can route the gradient. */
#include "agx.h"
#include "nn_grad.h"
#include "torsh/autograd_ops.h"

#include <string.h>

static bool wants(const ts_node *n, int i) { return n->next[i].node || n->next[i].leaf; }

/* Makes out output k of n and drops the creator's reference to n; on
 * failure releases both and returns NULL. */
static ts_tensor *attach_or_fail(ts_node *n, ts_tensor *out, int k)
{
    if (!n || ts_node_attach(n, out, k)) {
        ts_node_release(n);
        ts_tensor_release(out);
        return NULL;
    }
    ts_node_release(n);
    return out;
}

/* gi[i] = g finished to input i's shape and dtype (g is taken; NULL g
 * gives no gradient). False on failure. */
static bool give(const ts_node *n, int i, ts_tensor *g, ts_tensor **gi)
{
    if (!g) return true;
    gi[i] = ag_finish(n, i, g);
    ts_tensor_release(g);
    return gi[i] != NULL;
}

/* g reshaped to input i's shape first (for kernels that ran on a view). */
static bool give_reshaped(const ts_node *n, int i, ts_tensor *g, ts_tensor **gi)
{
    if (!g) return true;
    ts_tensor *r = ts_reshape(g, n->in_shape[i], n->in_ndim[i]);
    ts_tensor_release(g);
    return r ? give(n, i, r, gi) : false;
}

/* Releases gi[0..n) after a failure and returns the error. */
static ts_status drop_all(ts_tensor **gi, int n)
{
    ts_status st = ts_last_status();
    for (int i = 0; i < n; i++) {
        ts_tensor_release(gi[i]);
        gi[i] = NULL;
    }
    return st ? st : TS_ERR_INTERNAL;
}

static ts_tensor *unsqueezed(const ts_tensor *t, int dim, bool really)
{
    if (really) return ts_unsqueeze(t, dim);
    ts_tensor_retain((ts_tensor *)t);
    return (ts_tensor *)t;
}

/* ---- convolution ----------------------------------------------------------------------- */

/* n->i: stride[2], padding[2], dilation[2], groups, spatial dims, unbatched */
static void conv_params_of(const ts_node *n, ts_conv_params *p)
{
    for (int k = 0; k < 2; k++) {
        p->stride[k] = n->i[k];
        p->padding[k] = n->i[2 + k];
        p->dilation[k] = n->i[4 + k];
    }
    p->groups = n->i[6];
}

static ts_status conv_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    if (!go[0]) return TS_OK;
    ts_conv_params p;
    conv_params_of(n, &p);
    int nsp = (int)n->i[7];
    bool unb = n->i[8] != 0;
    if (nsp == 1) {   /* [N,C,L] -> [N,C,1,L], as ts_conv1d runs it */
        ts_conv_params q = { { 1, p.stride[0] }, { 0, p.padding[0] }, { 1, p.dilation[0] }, p.groups };
        p = q;
    }
    ts_tensor *xb = unsqueezed(n->saved[0], 0, unb), *gb = unsqueezed(go[0], 0, unb);
    ts_tensor *x4 = xb ? unsqueezed(xb, 2, nsp == 1) : NULL, *g4 = gb ? unsqueezed(gb, 2, nsp == 1) : NULL;
    ts_tensor *w4 = unsqueezed(n->saved[1], 2, nsp == 1);
    ts_tensor *dx = NULL, *dw = NULL, *db = NULL;
    ts_status st = TS_ERR_INTERNAL;
    if (x4 && g4 && w4)
        st = ts_conv2d_backward(x4, w4, g4, &p, wants(n, 0) ? &dx : NULL, wants(n, 1) ? &dw : NULL,
                                n->n_in > 2 && wants(n, 2) ? &db : NULL);
    ts_tensor_release(xb);
    ts_tensor_release(gb);
    ts_tensor_release(x4);
    ts_tensor_release(g4);
    ts_tensor_release(w4);
    if (st) {
        if (!ts_last_status()) ts_fail(TS_ERR_INTERNAL, "conv backward: could not view the operands");
        return ts_last_status();
    }
    bool ok = give_reshaped(n, 0, dx, gi);
    ok = give_reshaped(n, 1, dw, gi) && ok;
    ok = give(n, 2, db, gi) && ok;
    return ok ? TS_OK : drop_all(gi, 3);
}

static ts_tensor *record_conv(int nsp, const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias,
                              const ts_conv_params *p, ts_tensor *out)
{
    const ts_tensor *in[3] = { x, w, bias };
    if (!out || !ts_ag_needed(3, in)) return out;
    ts_node *n = ts_node_new(nsp == 1 ? "conv1d" : "conv2d", conv_backward, bias ? 3 : 2, in, 1);
    if (n && (ts_node_save(n, 0, x) || ts_node_save(n, 1, w))) {
        ts_node_release(n);
        n = NULL;
    }
    if (n) {
        for (int k = 0; k < 2; k++) {
            n->i[k] = p->stride[k];
            n->i[2 + k] = p->padding[k];
            n->i[4 + k] = p->dilation[k];
        }
        n->i[6] = p->groups;
        n->i[7] = nsp;
        n->i[8] = x->ndim == nsp + 1;   /* unbatched */
    }
    return attach_or_fail(n, out, 0);
}

ts_tensor *ts_ag_conv1d(const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias, const ts_conv_params *p)
{
    return record_conv(1, x, w, bias, p, ts_conv1d(x, w, bias, p));
}

ts_tensor *ts_ag_conv2d(const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias, const ts_conv_params *p)
{
    return record_conv(2, x, w, bias, p, ts_conv2d(x, w, bias, p));
}

/* ---- pooling ------------------------------------------------------------------------------ */

/* n->i: spatial dims; saved[0]: the indices */
static ts_status max_pool_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    if (!go[0]) return TS_OK;
    ts_tensor *g = ts_max_pool_backward(go[0], n->saved[0], n->in_shape[0], n->in_ndim[0], (int)n->i[0]);
    return g && give(n, 0, g, gi) ? TS_OK : drop_all(gi, 1);
}

/* Max pool of nsp dims (adaptive when out_size is given), recorded; the
 * indices go to *indices when asked for. */
static ts_tensor *max_pool_common(const char *op, const ts_tensor *x, const ts_pool_params *p, int nsp,
                                  const int64_t *out_size, ts_tensor **indices)
{
    ts_tensor *idx = NULL;
    if (indices) *indices = NULL;
    ts_tensor *out = ts_max_pool_indices(op, x, p, nsp, out_size, &idx);
    if (!out) return NULL;
    const ts_tensor *in[1] = { x };
    if (ts_ag_needed(1, in)) {
        ts_node *n = ts_node_new(op, max_pool_backward, 1, in, 1);
        if (n && ts_node_save(n, 0, idx)) {
            ts_node_release(n);
            n = NULL;
        }
        if (n) n->i[0] = nsp;
        if (!(out = attach_or_fail(n, out, 0))) {
            ts_tensor_release(idx);
            return NULL;
        }
    }
    if (indices) *indices = idx;
    else ts_tensor_release(idx);
    return out;
}

ts_tensor *ts_ag_max_pool2d(const ts_tensor *x, const ts_pool_params *p, ts_tensor **indices)
{
    return max_pool_common("max_pool2d", x, p, 2, NULL, indices);
}

ts_tensor *ts_ag_max_pool1d(const ts_tensor *x, const ts_pool_params *p)
{
    return max_pool_common("max_pool1d", x, p, 1, NULL, NULL);
}

ts_tensor *ts_ag_adaptive_max_pool2d(const ts_tensor *x, int64_t out_h, int64_t out_w)
{
    int64_t size[2] = { out_h, out_w };
    return max_pool_common("adaptive_max_pool2d", x, NULL, 2, size, NULL);
}

/* n->i: kernel[2], stride[2], padding[2], ceil_mode, count_include_pad, spatial dims, adaptive */
static ts_status avg_pool_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    if (!go[0]) return TS_OK;
    ts_pool_params p;
    memset(&p, 0, sizeof p);
    for (int k = 0; k < 2; k++) {
        p.kernel[k] = n->i[k];
        p.stride[k] = n->i[2 + k];
        p.padding[k] = n->i[4 + k];
        p.dilation[k] = 1;
    }
    p.ceil_mode = n->i[6] != 0;
    p.count_include_pad = n->i[7] != 0;
    ts_tensor *g = ts_avg_pool_backward(go[0], n->in_shape[0], n->in_ndim[0], &p, (int)n->i[8], n->i[9] != 0);
    return g && give(n, 0, g, gi) ? TS_OK : drop_all(gi, 1);
}

static ts_tensor *record_avg_pool(const char *op, const ts_tensor *x, const ts_pool_params *p, int nsp,
                                  ts_tensor *out)
{
    const ts_tensor *in[1] = { x };
    if (!out || !ts_ag_needed(1, in)) return out;
    ts_node *n = ts_node_new(op, avg_pool_backward, 1, in, 1);
    if (n) {
        for (int k = 0; k < 2 && p; k++) {
            n->i[k] = p->kernel[k];
            n->i[2 + k] = p->stride[k];
            n->i[4 + k] = p->padding[k];
        }
        n->i[6] = p && p->ceil_mode;
        n->i[7] = p && p->count_include_pad;
        n->i[8] = nsp;
        n->i[9] = p == NULL;   /* adaptive */
    }
    return attach_or_fail(n, out, 0);
}

ts_tensor *ts_ag_avg_pool2d(const ts_tensor *x, const ts_pool_params *p)
{
    return record_avg_pool("avg_pool2d", x, p, 2, ts_avg_pool2d(x, p));
}

ts_tensor *ts_ag_avg_pool1d(const ts_tensor *x, const ts_pool_params *p)
{
    return record_avg_pool("avg_pool1d", x, p, 1, ts_avg_pool1d(x, p));
}

ts_tensor *ts_ag_adaptive_avg_pool2d(const ts_tensor *x, int64_t out_h, int64_t out_w)
{
    return record_avg_pool("adaptive_avg_pool2d", x, NULL, 2, ts_adaptive_avg_pool2d(x, out_h, out_w));
}

/* ---- batch norm ------------------------------------------------------------------------------ */

/* inputs x, mean, var, weight, bias; saved the first four; d[0] = eps */
static ts_status batch_norm_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    if (!go[0]) return TS_OK;
    ts_tensor *d[5] = { NULL };
    ts_tensor **want[5];
    for (int i = 0; i < 5; i++) want[i] = i < n->n_in && wants(n, i) ? &d[i] : NULL;
    if (ts_batch_norm_backward(go[0], n->saved[0], n->saved[1], n->saved[2], n->saved[3], n->d[0], want[0], want[1],
                               want[2], want[3], want[4]))
        return ts_last_status();
    bool ok = true;
    for (int i = 0; i < 5; i++) ok = give(n, i, d[i], gi) && ok;
    return ok ? TS_OK : drop_all(gi, 5);
}

ts_tensor *ts_ag_batch_norm(const ts_tensor *x, const ts_tensor *mean, const ts_tensor *var, const ts_tensor *weight,
                            const ts_tensor *bias, double eps)
{
    ts_tensor *out = ts_batch_norm(x, mean, var, weight, bias, eps);
    const ts_tensor *in[5] = { x, mean, var, weight, bias };
    if (!out || !ts_ag_needed(5, in)) return out;
    ts_node *n = ts_node_new("batch_norm", batch_norm_backward, 5, in, 1);
    if (n && (ts_node_save(n, 0, x) || ts_node_save(n, 1, mean) || ts_node_save(n, 2, var) ||
              ts_node_save(n, 3, weight))) {
        ts_node_release(n);
        n = NULL;
    }
    if (n) n->d[0] = eps;
    return attach_or_fail(n, out, 0);
}

/* inputs x, weight, bias; saved x, weight, batch mean, batch invstd */
static ts_status batch_norm_train_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    if (!go[0]) return TS_OK;
    ts_tensor *dx = NULL, *dw = NULL, *db = NULL;
    if (ts_batch_norm_train_backward(go[0], n->saved[0], n->saved[1], n->saved[2], n->saved[3],
                                     wants(n, 0) ? &dx : NULL, wants(n, 1) ? &dw : NULL, wants(n, 2) ? &db : NULL))
        return ts_last_status();
    bool ok = give(n, 0, dx, gi);
    ok = give(n, 1, dw, gi) && ok;
    ok = give(n, 2, db, gi) && ok;
    return ok ? TS_OK : drop_all(gi, 3);
}

ts_tensor *ts_ag_batch_norm_train(const ts_tensor *x, const ts_tensor *weight, const ts_tensor *bias,
                                  ts_tensor *running_mean, ts_tensor *running_var, double momentum, double eps)
{
    const ts_tensor *in[3] = { x, weight, bias };
    bool need = ts_ag_needed(3, in);
    ts_tensor *mean = NULL, *invstd = NULL;
    ts_tensor *out = ts_batch_norm_train(x, weight, bias, running_mean, running_var, momentum, eps,
                                         need ? &mean : NULL, need ? &invstd : NULL);
    if (!out || !need) return out;
    ts_node *n = ts_node_new("batch_norm_train", batch_norm_train_backward, 3, in, 1);
    if (n && (ts_node_save(n, 0, x) || ts_node_save(n, 1, weight) || ts_node_save(n, 2, mean) ||
              ts_node_save(n, 3, invstd))) {
        ts_node_release(n);
        n = NULL;
    }
    ts_tensor_release(mean);
    ts_tensor_release(invstd);
    return attach_or_fail(n, out, 0);
}

/* ---- layer norm and group norm ---------------------------------------------------------------- */

/* inputs x, weight, bias; saved x, weight; i[0] = norm_ndim or groups; i[1] = group norm; d[0] = eps */
static ts_status rownorm_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    if (!go[0]) return TS_OK;
    ts_tensor *dx = NULL, *dw = NULL, *db = NULL;
    ts_tensor **px = wants(n, 0) ? &dx : NULL, **pw = wants(n, 1) ? &dw : NULL, **pb = wants(n, 2) ? &db : NULL;
    ts_status st = n->i[1] ? ts_group_norm_backward(go[0], n->saved[0], n->i[0], n->saved[1], n->d[0], px, pw, pb)
                           : ts_layer_norm_backward(go[0], n->saved[0], (int)n->i[0], n->saved[1], n->d[0], px, pw, pb);
    if (st) return st;
    bool ok = give(n, 0, dx, gi);
    ok = give(n, 1, dw, gi) && ok;
    ok = give(n, 2, db, gi) && ok;
    return ok ? TS_OK : drop_all(gi, 3);
}

static ts_tensor *record_rownorm(const char *op, bool group, int64_t arg, const ts_tensor *x, const ts_tensor *weight,
                                 const ts_tensor *bias, double eps, ts_tensor *out)
{
    const ts_tensor *in[3] = { x, weight, bias };
    if (!out || !ts_ag_needed(3, in)) return out;
    ts_node *n = ts_node_new(op, rownorm_backward, 3, in, 1);
    if (n && (ts_node_save(n, 0, x) || ts_node_save(n, 1, weight))) {
        ts_node_release(n);
        n = NULL;
    }
    if (n) {
        n->i[0] = arg;
        n->i[1] = group;
        n->d[0] = eps;
    }
    return attach_or_fail(n, out, 0);
}

ts_tensor *ts_ag_layer_norm(const ts_tensor *x, int norm_ndim, const ts_tensor *weight, const ts_tensor *bias,
                            double eps)
{
    return record_rownorm("layer_norm", false, norm_ndim, x, weight, bias, eps,
                          ts_layer_norm(x, norm_ndim, weight, bias, eps));
}

ts_tensor *ts_ag_group_norm(const ts_tensor *x, int64_t groups, const ts_tensor *weight, const ts_tensor *bias,
                            double eps)
{
    return record_rownorm("group_norm", true, groups, x, weight, bias, eps,
                          ts_group_norm(x, groups, weight, bias, eps));
}

/* ---- softmax ---------------------------------------------------------------------------------- */

/* saved[0]: the output; i[0] = dim (0-based), i[1] = log */
static ts_status softmax_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    if (!go[0]) return TS_OK;
    ts_tensor *g = ts_softmax_backward(go[0], n->saved[0], (int)n->i[0], n->i[1] != 0);
    return g && give(n, 0, g, gi) ? TS_OK : drop_all(gi, 1);
}

static ts_tensor *record_softmax(const char *op, bool log, const ts_tensor *x, int dim, ts_tensor *out)
{
    const ts_tensor *in[1] = { x };
    int d;
    if (!out || !ts_ag_needed(1, in)) return out;
    if (ts_wrap_dim(op, dim, x->ndim, &d)) {
        ts_tensor_release(out);
        return NULL;
    }
    ts_node *n = ts_node_new(op, softmax_backward, 1, in, 1);
    if (n && ts_node_save(n, 0, out)) {
        ts_node_release(n);
        n = NULL;
    }
    if (n) {
        n->i[0] = d;
        n->i[1] = log;
    }
    return attach_or_fail(n, out, 0);
}

ts_tensor *ts_ag_softmax(const ts_tensor *x, int dim)
{
    return record_softmax("softmax", false, x, dim, ts_softmax(x, dim));
}

ts_tensor *ts_ag_log_softmax(const ts_tensor *x, int dim)
{
    return record_softmax("log_softmax", true, x, dim, ts_log_softmax(x, dim));
}

/* ---- losses ------------------------------------------------------------------------------------ */

/* input: the logits (or log-probabilities); saved x, target, weight, lse;
 * i[0] = ignore_index, i[1] = reduction, i[2] = cross-entropy; d[0] = label smoothing */
static ts_status loss_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    if (!go[0]) return TS_OK;
    ts_reduction red = (ts_reduction)n->i[1];
    ts_tensor *g = n->i[2] ? ts_cross_entropy_backward(go[0], n->saved[0], n->saved[1], n->saved[2], n->saved[3],
                                                       n->i[0], n->d[0], red)
                           : ts_nll_loss_backward(go[0], n->saved[0], n->saved[1], n->saved[2], n->i[0], red);
    return g && give(n, 0, g, gi) ? TS_OK : drop_all(gi, 1);
}

static ts_tensor *record_loss(const char *op, bool ce, const ts_tensor *x, const ts_tensor *target,
                              const ts_tensor *weight, int64_t ignore_index, double smoothing, ts_reduction red,
                              ts_tensor *out, ts_tensor *lse)
{
    const ts_tensor *in[1] = { x };
    if (!out || !ts_ag_needed(1, in)) {
        ts_tensor_release(lse);
        return out;
    }
    ts_node *n = ts_node_new(op, loss_backward, 1, in, 1);
    if (n && (ts_node_save(n, 0, x) || ts_node_save(n, 1, target) || ts_node_save(n, 2, weight) ||
              ts_node_save(n, 3, lse))) {
        ts_node_release(n);
        n = NULL;
    }
    ts_tensor_release(lse);
    if (n) {
        n->i[0] = ignore_index;
        n->i[1] = red;
        n->i[2] = ce;
        n->d[0] = smoothing;
    }
    return attach_or_fail(n, out, 0);
}

ts_tensor *ts_ag_cross_entropy(const ts_tensor *logits, const ts_tensor *target, const ts_tensor *weight,
                               int64_t ignore_index, double label_smoothing, ts_reduction reduction)
{
    const ts_tensor *in[1] = { logits };
    ts_tensor *lse = NULL;
    ts_tensor *out = ts_cross_entropy_lse(logits, target, weight, ignore_index, label_smoothing, reduction,
                                          ts_ag_needed(1, in) ? &lse : NULL);
    return record_loss("cross_entropy", true, logits, target, weight, ignore_index, label_smoothing, reduction, out,
                       lse);
}

ts_tensor *ts_ag_nll_loss(const ts_tensor *logp, const ts_tensor *target, const ts_tensor *weight,
                          int64_t ignore_index, ts_reduction reduction)
{
    return record_loss("nll_loss", false, logp, target, weight, ignore_index, 0.0, reduction,
                       ts_nll_loss(logp, target, weight, ignore_index, reduction), NULL);
}
