-- torsh/nn/layers.lua — the layers of torsh.nn with PyTorch's parameter
-- names and initialisation (kaiming-uniform with a = sqrt(5) for Linear and
-- Conv weights, uniform(+-1/sqrt(fan_in)) biases), so a model defined the
-- same way starts from the same distribution and loads PyTorch state dicts.
local torsh = require "torsh"
local Module = require "torsh.nn.module"
local F = require "torsh.nn.functional"

local L = {}

local function uniform(shape, bound, dtype)
  local t = torsh.empty(shape, dtype or "f32")
  t:uniform_(-bound, bound)
  return t
end

local function pair(v) if type(v) == "table" then return v end return { v, v } end
local function fmt_pair(v) v = pair(v) return v[1] == v[2] and tostring(v[1]) or ("(" .. v[1] .. ", " .. v[2] .. ")") end

-- ---- Linear ------------------------------------------------------------------
L.Linear = Module:extend("Linear")
function L.Linear:init(in_features, out_features, opts)
  opts = opts or {}
  self.in_features, self.out_features = in_features, out_features
  local bound = 1 / math.sqrt(in_features)
  self:register_parameter("weight", uniform({ out_features, in_features }, bound, opts.dtype))
  self:register_parameter("bias", opts.bias ~= false and uniform({ out_features }, bound, opts.dtype) or nil)
end
function L.Linear:forward(x)
  if x:size(-1) ~= self.in_features then
    error(string.format("Linear expects %d input features, got %d (input [%s])", self.in_features, x:size(-1),
      table.concat(x:shape(), ", ")), 0)
  end
  return F.linear(x, self.weight, self.bias or nil)
end
function L.Linear:extra_repr()
  return string.format("in_features=%d, out_features=%d, bias=%s", self.in_features, self.out_features, tostring(self.bias ~= false))
end

-- ---- convolutions -----------------------------------------------------------------
local function make_conv(name, nsp)
  local C = Module:extend(name)
  function C:init(cin, cout, kernel, opts)
    opts = opts or {}
    self.in_channels, self.out_channels = cin, cout
    self.kernel_size = nsp == 1 and { type(kernel) == "table" and kernel[1] or kernel } or pair(kernel)
    self.stride = opts.stride or 1
    self.padding = opts.padding or 0
    self.dilation = opts.dilation or 1
    self.groups = opts.groups or 1
    if cin % self.groups ~= 0 or cout % self.groups ~= 0 then
      error(string.format("%s: in_channels %d and out_channels %d must be divisible by groups %d", name, cin, cout, self.groups), 2)
    end
    local wshape = { cout, cin // self.groups }
    local fan_in = cin // self.groups
    for _, k in ipairs(self.kernel_size) do wshape[#wshape + 1] = k; fan_in = fan_in * k end
    local bound = 1 / math.sqrt(fan_in)
    self:register_parameter("weight", uniform(wshape, bound, opts.dtype))
    self:register_parameter("bias", opts.bias ~= false and uniform({ cout }, bound, opts.dtype) or nil)
  end
  function C:forward(x)
    if x:dim() ~= nsp + 2 then
      error(string.format("%s expects a %d-D input [N, C, ...], got [%s]", name, nsp + 2, table.concat(x:shape(), ", ")), 0)
    end
    if x:size(2) ~= self.in_channels then
      error(string.format("%s expects %d input channels, got %d", name, self.in_channels, x:size(2)), 0)
    end
    local o = { stride = self.stride, padding = self.padding, dilation = self.dilation, groups = self.groups }
    return (nsp == 1 and F.conv1d or F.conv2d)(x, self.weight, self.bias or nil, o)
  end
  function C:extra_repr()
    local s = string.format("%d, %d, kernel_size=%s, stride=%s", self.in_channels, self.out_channels,
      fmt_pair(self.kernel_size), fmt_pair(self.stride))
    if self.padding ~= 0 then s = s .. ", padding=" .. (type(self.padding) == "string" and self.padding or fmt_pair(self.padding)) end
    if self.groups ~= 1 then s = s .. ", groups=" .. self.groups end
    if not self.bias then s = s .. ", bias=false" end
    return s
  end
  return C
end
L.Conv1d = make_conv("Conv1d", 1)
L.Conv2d = make_conv("Conv2d", 2)

-- ---- normalisation ---------------------------------------------------------------------
local function make_bn(name, dims)
  local B = Module:extend(name)
  function B:init(features, opts)
    opts = opts or {}
    self.num_features = features
    self.eps = opts.eps or 1e-5
    self.momentum = opts.momentum == nil and 0.1 or opts.momentum
    local affine = opts.affine ~= false
    self:register_parameter("weight", affine and torsh.ones(features) or nil)
    self:register_parameter("bias", affine and torsh.zeros(features) or nil)
    if opts.track_running_stats ~= false then
      self:register_buffer("running_mean", torsh.zeros(features))
      self:register_buffer("running_var", torsh.ones(features))
      self:register_buffer("num_batches_tracked", torsh.tensor(0))
    end
  end
  function B:forward(x)
    if not (x:dim() == dims[1] or x:dim() == dims[2]) then
      error(string.format("%s expects a %s-D input, got [%s]", name, table.concat(dims, " or "), table.concat(x:shape(), ", ")), 0)
    end
    if x:size(2) ~= self.num_features then
      error(string.format("%s expects %d channels, got %d", name, self.num_features, x:size(2)), 0)
    end
    local training = self:is_training() or not self.running_mean
    if self:is_training() and self.num_batches_tracked then
      self.num_batches_tracked:add_(1)
    end
    return F.batch_norm(x, self.running_mean or nil, self.running_var or nil, self.weight or nil, self.bias or nil,
      training, self.momentum, self.eps)
  end
  function B:extra_repr() return string.format("%d, eps=%g, momentum=%g", self.num_features, self.eps, self.momentum) end
  return B
end
L.BatchNorm1d = make_bn("BatchNorm1d", { 2, 3 })
L.BatchNorm2d = make_bn("BatchNorm2d", { 4, 4 })

L.LayerNorm = Module:extend("LayerNorm")
function L.LayerNorm:init(shape, opts)
  opts = opts or {}
  self.normalized_shape = type(shape) == "table" and shape or { shape }
  self.eps = opts.eps or 1e-5
  local affine = opts.elementwise_affine ~= false
  self:register_parameter("weight", affine and torsh.ones(self.normalized_shape) or nil)
  self:register_parameter("bias", affine and opts.bias ~= false and torsh.zeros(self.normalized_shape) or nil)
end
function L.LayerNorm:forward(x) return F.layer_norm(x, self.normalized_shape, self.weight or nil, self.bias or nil, self.eps) end
function L.LayerNorm:extra_repr() return "(" .. table.concat(self.normalized_shape, ", ") .. "), eps=" .. self.eps end

L.GroupNorm = Module:extend("GroupNorm")
function L.GroupNorm:init(groups, channels, opts)
  opts = opts or {}
  self.num_groups, self.num_channels, self.eps = groups, channels, opts.eps or 1e-5
  local affine = opts.affine ~= false
  self:register_parameter("weight", affine and torsh.ones(channels) or nil)
  self:register_parameter("bias", affine and torsh.zeros(channels) or nil)
end
function L.GroupNorm:forward(x) return F.group_norm(x, self.num_groups, self.weight or nil, self.bias or nil, self.eps) end

-- ---- simple layers -----------------------------------------------------------------
local function simple(name, fn, repr)
  local M = Module:extend(name)
  function M:init(...) self.args = table.pack(...) end
  function M:forward(x) return fn(self, x) end
  if repr then M.extra_repr = repr end
  return M
end
L.ReLU = simple("ReLU", function(_, x) return x:relu() end)
L.GELU = simple("GELU", function(self, x) return F.gelu(x, self.args[1]) end)
L.SiLU = simple("SiLU", function(_, x) return x:silu() end)
L.Tanh = simple("Tanh", function(_, x) return x:tanh() end)
L.Sigmoid = simple("Sigmoid", function(_, x) return x:sigmoid() end)
L.Identity = simple("Identity", function(_, x) return x end)
L.LeakyReLU = simple("LeakyReLU", function(self, x) return x:leaky_relu(self.args[1] or 0.01) end)
L.Softmax = simple("Softmax", function(self, x) return torsh.softmax(x, self.args[1] or -1) end)
L.LogSoftmax = simple("LogSoftmax", function(self, x) return torsh.log_softmax(x, self.args[1] or -1) end)
L.Flatten = simple("Flatten", function(self, x) return x:flatten(self.args[1] or 2, self.args[2] or -1) end)
L.Dropout = simple("Dropout", function(self, x) return F.dropout(x, self.args[1] or 0.5, self:is_training()) end,
  function(self) return "p=" .. (self.args[1] or 0.5) end)

L.MaxPool2d = Module:extend("MaxPool2d")
function L.MaxPool2d:init(kernel, opts)
  opts = opts or {}
  self.kernel_size, self.opts = kernel, { stride = opts.stride or kernel, padding = opts.padding or 0,
    dilation = opts.dilation or 1, ceil_mode = opts.ceil_mode or false }
end
function L.MaxPool2d:forward(x) return torsh.max_pool2d(x, self.kernel_size, self.opts) end
function L.MaxPool2d:extra_repr() return "kernel_size=" .. fmt_pair(self.kernel_size) .. ", stride=" .. fmt_pair(self.opts.stride) end

L.AvgPool2d = Module:extend("AvgPool2d")
function L.AvgPool2d:init(kernel, opts)
  opts = opts or {}
  self.kernel_size, self.opts = kernel, { stride = opts.stride or kernel, padding = opts.padding or 0,
    ceil_mode = opts.ceil_mode or false, count_include_pad = opts.count_include_pad ~= false }
end
function L.AvgPool2d:forward(x) return torsh.avg_pool2d(x, self.kernel_size, self.opts) end

L.AdaptiveAvgPool2d = Module:extend("AdaptiveAvgPool2d")
function L.AdaptiveAvgPool2d:init(size) self.output_size = size end
function L.AdaptiveAvgPool2d:forward(x) return torsh.adaptive_avg_pool2d(x, self.output_size) end

L.Embedding = Module:extend("Embedding")
function L.Embedding:init(num, dim, opts)
  opts = opts or {}
  self.num_embeddings, self.embedding_dim = num, dim
  local w = torsh.empty({ num, dim }, opts.dtype or "f32")
  w:normal_(0, 1)
  if opts.padding_idx then torsh.no_grad(function() w:select(1, opts.padding_idx + 1):zero_() end) end
  self:register_parameter("weight", w)
end
function L.Embedding:forward(idx) return torsh.embedding(self.weight, idx) end

-- ---- containers ----------------------------------------------------------------------
L.Sequential = Module:extend("Sequential")
function L.Sequential:init(...)
  local mods = table.pack(...)
  if mods.n == 1 and type(mods[1]) == "table" and not Module.is_module(mods[1]) then mods = mods[1]; mods.n = #mods end
  for i = 1, mods.n do self:add_module(tostring(i - 1), mods[i]) end
end
function L.Sequential:forward(x)
  for _, m in ipairs(self:children()) do x = m(x) end
  return x
end
function L.Sequential:__len() return #self._state.module_order end
--- seq:get(i) -> the i-th module (1-based); seq:append(m)
function L.Sequential:get(i) return self._state.modules[tostring(i - 1)] end
function L.Sequential:append(m) self:add_module(tostring(#self._state.module_order), m) return self end

L.ModuleList = Module:extend("ModuleList")
function L.ModuleList:init(list)
  for i, m in ipairs(list or {}) do self:add_module(tostring(i - 1), m) end
end
function L.ModuleList:get(i) return self._state.modules[tostring(i - 1)] end
function L.ModuleList:append(m) self:add_module(tostring(#self._state.module_order), m) return self end
function L.ModuleList:len() return #self._state.module_order end
function L.ModuleList:forward() error("ModuleList has no forward(); iterate over its children", 0) end

-- ---- attention -----------------------------------------------------------------------
L.MultiheadAttention = Module:extend("MultiheadAttention")
function L.MultiheadAttention:init(embed_dim, num_heads, opts)
  opts = opts or {}
  if embed_dim % num_heads ~= 0 then
    error(string.format("MultiheadAttention: embed_dim %d must be divisible by num_heads %d", embed_dim, num_heads), 2)
  end
  self.embed_dim, self.num_heads = embed_dim, num_heads
  self.dropout_p = opts.dropout or 0
  self.batch_first = opts.batch_first ~= false
  -- xavier_uniform_ on [3E, E]: bound = sqrt(6 / (fan_in + fan_out))
  self:register_parameter("in_proj_weight", uniform({ 3 * embed_dim, embed_dim }, math.sqrt(6 / (4 * embed_dim))))
  self:register_parameter("in_proj_bias", opts.bias ~= false and torsh.zeros(3 * embed_dim) or nil)
  self.out_proj = L.Linear(embed_dim, embed_dim, { bias = opts.bias })
  if self.out_proj.bias then torsh.no_grad(function() self.out_proj.bias:zero_() end) end
end

--- forward(query, key, value, {attn_mask=, key_padding_mask=, need_weights=true}) -> out, weights
function L.MultiheadAttention:forward(q, k, v, opts)
  opts = opts or {}
  if not self.batch_first then q, k, v = q:transpose(1, 2), k:transpose(1, 2), v:transpose(1, 2) end
  local B, Lq, E = q:size(1), q:size(2), q:size(3)
  local Lk = k:size(2)
  local H = self.num_heads
  local D = E // H
  local W, b = self.in_proj_weight, self.in_proj_bias
  local function proj(x, i)
    return torsh.linear(x, W:narrow(1, i * E + 1, E), b and b:narrow(1, i * E + 1, E) or nil)
  end
  local function heads(x, len) return x:reshape(B, len, H, D):transpose(2, 3) end   -- [B, H, L, D]
  local qh, kh, vh = heads(proj(q, 0), Lq), heads(proj(k, 1), Lk), heads(proj(v, 2), Lk)
  local scores = qh:matmul(kh:transpose(3, 4)) * (1 / math.sqrt(D))                 -- [B, H, Lq, Lk]
  if opts.attn_mask then
    local m = opts.attn_mask
    scores = m:dtype() == "bool" and scores:masked_fill(m, -math.huge) or scores + m
  end
  if opts.key_padding_mask then
    scores = scores:masked_fill(opts.key_padding_mask:view(B, 1, 1, Lk), -math.huge)
  end
  local attn = torsh.softmax(scores, -1)
  attn = F.dropout(attn, self.dropout_p, self:is_training())
  local out = attn:matmul(vh):transpose(2, 3):reshape(B, Lq, E)
  out = self.out_proj(out)
  if not self.batch_first then out = out:transpose(1, 2) end
  if opts.need_weights == false then return out end
  return out, attn:mean(2)
end

L.TransformerEncoderLayer = Module:extend("TransformerEncoderLayer")
function L.TransformerEncoderLayer:init(d_model, nhead, opts)
  opts = opts or {}
  local ff = opts.dim_feedforward or 2048
  local p = opts.dropout == nil and 0.1 or opts.dropout
  local eps = opts.layer_norm_eps or 1e-5
  self.norm_first = opts.norm_first or false
  self.activation = opts.activation or "relu"
  self.self_attn = L.MultiheadAttention(d_model, nhead, { dropout = p, batch_first = opts.batch_first ~= false })
  self.linear1 = L.Linear(d_model, ff)
  self.dropout = L.Dropout(p)
  self.linear2 = L.Linear(ff, d_model)
  self.norm1 = L.LayerNorm(d_model, { eps = eps })
  self.norm2 = L.LayerNorm(d_model, { eps = eps })
  self.dropout1 = L.Dropout(p)
  self.dropout2 = L.Dropout(p)
end
function L.TransformerEncoderLayer:_sa(x, mask, pad)
  local y = self.self_attn(x, x, x, { attn_mask = mask, key_padding_mask = pad, need_weights = false })
  return self.dropout1(y)
end
function L.TransformerEncoderLayer:_ff(x)
  local h = self.linear1(x)
  h = self.activation == "gelu" and h:gelu() or h:relu()
  return self.dropout2(self.linear2(self.dropout(h)))
end
function L.TransformerEncoderLayer:forward(x, opts)
  opts = opts or {}
  if self.norm_first then
    x = x + self:_sa(self.norm1(x), opts.src_mask, opts.src_key_padding_mask)
    return x + self:_ff(self.norm2(x))
  end
  x = self.norm1(x + self:_sa(x, opts.src_mask, opts.src_key_padding_mask))
  return self.norm2(x + self:_ff(x))
end

L.TransformerEncoder = Module:extend("TransformerEncoder")
function L.TransformerEncoder:init(make_layer, num_layers, opts)
  self.layers = L.ModuleList()
  for _ = 1, num_layers do self.layers:append(make_layer()) end
  if opts and opts.norm then self.norm = opts.norm end
end
function L.TransformerEncoder:forward(x, opts)
  for _, layer in ipairs(self.layers:children()) do x = layer(x, opts) end
  if self.norm then x = self.norm(x) end
  return x
end

return L
