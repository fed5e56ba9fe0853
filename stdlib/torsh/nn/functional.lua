-- torsh/nn/functional.lua — the functional forms of torsh.nn (like
-- torch.nn.functional): activations, linear/conv/pool/norm wrappers with
-- PyTorch's argument names, dropout, and the losses. Everything is built on
-- the core's recording ops, so gradients flow through all of it. Fused C
-- kernels are used when the core provides them (torsh.cross_entropy,
-- torsh.batch_norm_train); otherwise the same math is composed from ops.
local torsh = require "torsh"
local F = {}

-- ---- activations -------------------------------------------------------------
function F.relu(x) return x:relu() end
function F.gelu(x, approximate) return approximate == "tanh" and x:gelu_tanh() or x:gelu() end
function F.silu(x) return x:silu() end
function F.tanh(x) return x:tanh() end
function F.sigmoid(x) return x:sigmoid() end
function F.leaky_relu(x, slope) return x:leaky_relu(slope or 0.01) end
function F.softmax(x, dim) return torsh.softmax(x, dim) end
function F.log_softmax(x, dim) return torsh.log_softmax(x, dim) end

-- ---- autocast ----------------------------------------------------------------------
-- Mixed precision: inside torsh.autocast("bf16", fn) the matrix-heavy layers
-- (linear, conv1d, conv2d) round their input, weight and bias to bf16 and
-- compute in bf16 precision, while parameters (the master weights),
-- activations between layers, normalisation and losses stay f32. The casts
-- are recorded, so gradients reach the f32 parameters as f32. On this CPU
-- the bf16 kernels widen to f32 internally: autocast changes the numerics
-- (like PyTorch's CPU autocast) but is not a speed-up here.
local autocast_dtype = nil

--- autocast(dtype, fn, ...) runs fn(...) with autocast on ("bf16" or "f16"; nil turns it off).
function F.autocast(dtype, fn, ...)
  if dtype ~= nil and dtype ~= "bf16" and dtype ~= "f16" then
    error(string.format("autocast: dtype must be 'bf16' or 'f16', got '%s'", tostring(dtype)), 2)
  end
  local prev = autocast_dtype
  autocast_dtype = dtype
  local res = table.pack(pcall(fn, ...))
  autocast_dtype = prev
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

function F.autocast_dtype() return autocast_dtype end

-- Runs op(x, w, b, ...) in the autocast dtype when autocast is on.
local function autocast_op(op, x, w, b, ...)
  local dt = autocast_dtype
  if not dt or x:dtype() ~= "f32" then return op(x, w, b, ...) end
  local y = op(x:to(dt), w:to(dt), b and b:to(dt) or nil, ...)
  return y:to("f32")
end
F.autocast_op = autocast_op

-- ---- layers ---------------------------------------------------------------------
function F.linear(x, w, b) return autocast_op(torsh.linear, x, w, b) end
function F.conv1d(x, w, b, opts) return autocast_op(torsh.conv1d, x, w, b, opts) end
function F.conv2d(x, w, b, opts) return autocast_op(torsh.conv2d, x, w, b, opts) end
function F.max_pool2d(x, k, opts) return torsh.max_pool2d(x, k, opts) end
function F.avg_pool2d(x, k, opts) return torsh.avg_pool2d(x, k, opts) end
function F.adaptive_avg_pool2d(x, size) return torsh.adaptive_avg_pool2d(x, size) end
function F.embedding(idx, w) return torsh.embedding(w, idx) end
function F.flatten(x, s, e) return x:flatten(s or 2, e or -1) end

--- dropout(x, p, training): zeroes elements with probability p and scales the rest by 1/(1-p).
function F.dropout(x, p, training)
  p = p or 0.5
  if training == false or p == 0 then return x end
  if p < 0 or p > 1 then error(string.format("dropout: probability has to be between 0 and 1, got %g", p), 2) end
  if p == 1 then return x * 0 end
  local keep = torsh.rand(x:shape(), x:dtype()):ge(p)
  return x * keep * (1 / (1 - p))
end

--- batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
--- Training: normalises with the batch statistics and updates the running
--- ones in place (momentum as in PyTorch; unbiased variance for the update).
function F.batch_norm(x, rmean, rvar, weight, bias, training, momentum, eps)
  eps = eps or 1e-5
  momentum = momentum or 0.1
  if not training then return torsh.batch_norm(x, rmean, rvar, weight, bias, eps) end
  if torsh.batch_norm_train then
    return torsh.batch_norm_train(x, weight, bias, rmean, rvar, momentum, eps)
  end
  local C = x:size(2)
  local dims = { 1 }
  for d = 3, x:dim() do dims[#dims + 1] = d end
  local shape = { 1, C }
  for _ = 3, x:dim() do shape[#shape + 1] = 1 end
  local mean = x:mean(dims, true)
  local centered = x - mean
  local var = (centered * centered):mean(dims, true)
  local y = centered * (var + eps):rsqrt()
  if weight then y = y * weight:view(shape) end
  if bias then y = y + bias:view(shape) end
  if rmean then
    local n = x:numel() // C
    torsh.no_grad(function()
      rmean:mul_(1 - momentum):add_(mean:detach():view(C) * momentum)
      rvar:mul_(1 - momentum):add_(var:detach():view(C) * (momentum * n / math.max(n - 1, 1)))
    end)
  end
  return y
end

function F.layer_norm(x, shape, w, b, eps) return torsh.layer_norm(x, shape, w, b, eps or 1e-5) end
function F.group_norm(x, groups, w, b, eps) return torsh.group_norm(x, groups, w, b, eps or 1e-5) end

-- ---- losses ------------------------------------------------------------------------
local function reduce(loss, reduction, weight_sum)
  if reduction == "none" then return loss end
  if reduction == "sum" then return loss:sum() end
  if weight_sum then return loss:sum() / weight_sum end
  return loss:mean()
end

--- cross_entropy(logits [N,C] or [N,C,...], target (class indices, 0-based), {weight=, ignore_index=-100,
--- label_smoothing=0, reduction="mean"})
function F.cross_entropy(logits, target, opts)
  opts = opts or {}
  if torsh.cross_entropy then return torsh.cross_entropy(logits, target, opts) end
  local logp = logits - logits:logsumexp(2, true)
  return F.nll_loss(logp, target, opts, opts.label_smoothing or 0)
end

--- nll_loss(log_probs [N,C], target, {weight=, ignore_index=-100, reduction="mean"})
function F.nll_loss(logp, target, opts, smoothing)
  opts = opts or {}
  smoothing = smoothing or 0
  local C = logp:size(2)
  local ignore = opts.ignore_index or -100
  local valid = target:ne(ignore)
  local safe_target = torsh.where(valid, target, 0)
  local onehot = torsh.one_hot(safe_target, C):to(logp:dtype())
  if logp:dim() > 2 then                                   -- [N, d.., C] -> [N, C, d..]
    local order = { 1, logp:dim() }
    for d = 2, logp:dim() - 1 do order[#order + 1] = d end
    onehot = onehot:permute(order)
  end
  local w = opts.weight
  local picked = (onehot * logp):sum(2)                     -- log p of the target class
  local wshape = { 1, C }
  for _ = 3, logp:dim() do wshape[#wshape + 1] = 1 end
  local validf = valid:to(logp:dtype())
  -- weight of each sample's target class (zero where ignored)
  local wt = w and (onehot * w:view(wshape)):sum(2) * validf or validf
  local nll = -picked * wt
  local reduction = opts.reduction or "mean"
  local smooth
  if smoothing > 0 then   -- PyTorch: eps/C * sum over classes of -(w_c log p_c), ignored rows zeroed
    smooth = -(w and (logp * w:view(wshape)) or logp):sum(2) * validf
  end
  if reduction == "none" then
    return smooth and (nll * (1 - smoothing) + smooth * (smoothing / C)) or nll
  end
  local denom = reduction == "mean" and wt:sum() or nil
  local loss = denom and nll:sum() / denom or nll:sum()
  if smooth then
    local s = smooth:sum()
    if reduction == "mean" then s = w and s / denom or s / valid:numel() end
    loss = loss * (1 - smoothing) + s * (smoothing / C)
  end
  return loss
end

function F.mse_loss(a, b, opts)
  local d = a - b
  return reduce(d * d, (opts or {}).reduction or "mean")
end

function F.l1_loss(a, b, opts) return reduce((a - b):abs(), (opts or {}).reduction or "mean") end

function F.smooth_l1_loss(a, b, opts)
  opts = opts or {}
  local beta = opts.beta or 1.0
  local d = (a - b):abs()
  local loss = beta > 0 and torsh.where(d:lt(beta), d * d * (0.5 / beta), d - 0.5 * beta) or d
  return reduce(loss, opts.reduction or "mean")
end

--- binary_cross_entropy_with_logits(x, y, {weight=, pos_weight=, reduction=})
function F.binary_cross_entropy_with_logits(x, y, opts)
  opts = opts or {}
  -- (1 - y) x + (1 + (pw - 1) y) * log(1 + exp(-x)), written stably
  local log_sig_neg = (x:neg():clamp(0, nil)) + ((x:abs():neg()):exp() + 1):log()   -- log(1 + exp(-x))
  local loss
  if opts.pos_weight then
    local lw = (opts.pos_weight - 1) * y + 1
    loss = (1 - y) * x + lw * log_sig_neg
  else
    loss = (1 - y) * x + log_sig_neg
  end
  if opts.weight then loss = loss * opts.weight end
  return reduce(loss, opts.reduction or "mean")
end

return F
