/* torsh/optim.h — fused optimizer steps and gradient clipping.
 *
 *     ts_adam_opts o = { .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8 };
 *     // params[i], grads[i], exp_avg[i], exp_avg_sq[i] for the n parameters of a group
 *     if (ts_adam_step(params, grads, exp_avg, exp_avg_sq, NULL, n, step, &o) != TS_OK)
 *         fprintf(stderr, "%s\n", ts_last_error());
 *
 * One call updates every parameter of a group: the elements of all the
 * tensors form one range that is split across the thread pool, so a model of
 * many small tensors steps as fast as one of a few large ones. The update
 * formulas are PyTorch 1.13's (the _single_tensor_<name> functions of
 * torch/optim/<name>.py), applied in the parameter's precision with the same
 * operation order and scalar roundings: f32 and f64
 * tensors are updated in place directly; f16/bf16 parameters and
 * non-contiguous tensors are staged through contiguous f32 (f64) copies and
 * written back. Results do not depend on the thread count.
 *
 * Ownership: every tensor argument is borrowed. Parameters and state tensors
 * are written in place, bypassing autograd (parameters are leaves that may
 * require grad; the step is not recorded). State tensors must have the shape
 * and dtype of their parameter; a gradient must have its parameter's shape
 * (any floating dtype). Arrays hold n tensors; an optional state array is
 * NULL when the option that needs it is off. Indices in error messages are
 * 0-based positions in these arrays.
 */
#ifndef TORSH_OPTIM_H
#define TORSH_OPTIM_H

#include "torsh/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- SGD ----------------------------------------------------------------------
 * d = maximize ? -g : g;  d += weight_decay * p
 * momentum != 0: buf = first_step ? d : momentum * buf + (1 - dampening) * d
 *                d = nesterov ? d + momentum * buf : buf
 * p -= lr * d
 * momentum_buffers may be NULL when momentum == 0; with first_step the
 * buffers' old contents are ignored (they are set to d). */
typedef struct ts_sgd_opts {
    double lr, momentum, dampening, weight_decay;
    bool nesterov, maximize;
} ts_sgd_opts;

ts_status ts_sgd_step(ts_tensor *const *params, ts_tensor *const *grads, ts_tensor *const *momentum_buffers,
                      int n, const ts_sgd_opts *o, bool first_step);

/* ---- Adam and AdamW --------------------------------------------------------------
 * `step` is the step number after this update (1 on the first call).
 * decoupled (AdamW): p *= 1 - lr * weight_decay; else g += weight_decay * p.
 * m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 * amsgrad: vmax = max(vmax, v) is used in place of v
 * p -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
 * max_exp_avg_sq may be NULL unless amsgrad. */
typedef struct ts_adam_opts {
    double lr, beta1, beta2, eps, weight_decay;
    bool decoupled, amsgrad, maximize;
} ts_adam_opts;

ts_status ts_adam_step(ts_tensor *const *params, ts_tensor *const *grads, ts_tensor *const *exp_avg,
                       ts_tensor *const *exp_avg_sq, ts_tensor *const *max_exp_avg_sq,
                       int n, int64_t step, const ts_adam_opts *o);

/* ---- RMSprop -------------------------------------------------------------------------
 * sq = alpha sq + (1 - alpha) g^2;  centered: ga = alpha ga + (1 - alpha) g,
 * avg = sqrt(sq - ga^2) + eps, else sqrt(sq) + eps
 * momentum > 0: buf = momentum buf + g / avg; p -= lr buf;  else p -= lr g / avg
 * grad_avg may be NULL unless centered, momentum_buffer unless momentum > 0. */
typedef struct ts_rmsprop_opts {
    double lr, alpha, eps, weight_decay, momentum;
    bool centered, maximize;
} ts_rmsprop_opts;

ts_status ts_rmsprop_step(ts_tensor *const *params, ts_tensor *const *grads, ts_tensor *const *square_avg,
                          ts_tensor *const *grad_avg, ts_tensor *const *momentum_buffer,
                          int n, const ts_rmsprop_opts *o);

/* ---- Adagrad -----------------------------------------------------------------------------
 * `step` counts from 1. clr = lr / (1 + (step - 1) lr_decay)
 * sum += g^2;  p -= clr g / (sqrt(sum) + eps) */
typedef struct ts_adagrad_opts {
    double lr, lr_decay, weight_decay, eps;
    bool maximize;
} ts_adagrad_opts;

ts_status ts_adagrad_step(ts_tensor *const *params, ts_tensor *const *grads, ts_tensor *const *state_sum,
                          int n, int64_t step, const ts_adagrad_opts *o);

/* ---- gradient clipping -------------------------------------------------------------------
 * ts_clip_grad_norm: the norm of all n gradients taken together as one vector
 * (norm_type p > 0, or INFINITY for the largest |g|), computed like PyTorch's
 * clip_grad_norm_ (each tensor's norm rounded to its dtype, then the norm of
 * those norms); every gradient is scaled in place by min(1, max_norm /
 * (total + 1e-6)). *total_norm_out (may be NULL) gets the total before
 * scaling. With error_if_nonfinite a NaN/inf total fails and scales nothing.
 * n == 0 gives a total of 0. Sums are taken in fixed blocks and combined in
 * order, so the result does not depend on the thread count. */
ts_status ts_clip_grad_norm(ts_tensor *const *grads, int n, double max_norm, double norm_type,
                            bool error_if_nonfinite, double *total_norm_out);
/* Clamps every gradient in place to [-clip_value, clip_value]. */
ts_status ts_clip_grad_value(ts_tensor *const *grads, int n, double clip_value);

#ifdef __cplusplus
}
#endif
#endif
