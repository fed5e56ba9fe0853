-- torsh/nn/zoo.lua — ready-made models with PyTorch / torchvision parameter
-- names, so their state dicts load both ways:
--   zoo.mlp{sizes={784, 256, 128, 10}}      Sequential of Linear/ReLU ("0.weight", "2.weight", ...)
--   zoo.fashion_cnn()                        the two-conv CNN of recipes/fashion_mnist.lua
--   zoo.lenet()                              LeNet-5 style CNN for 28x28 inputs
--   zoo.resnet18{num_classes=1000}, zoo.resnet34   torchvision.models.resnet*
--   zoo.mobilenet_v2{num_classes=1000}       torchvision.models.mobilenet_v2
--   zoo.vit{image_size=32, patch_size=4, ...}  a small ViT named like torchvision's VisionTransformer
local torsh = require "torsh"
local Module = require "torsh.nn.module"
local L = require "torsh.nn.layers"

local zoo = {}

function zoo.mlp(opts)
  opts = opts or {}
  local sizes = opts.sizes or { 784, 256, 128, 10 }
  local layers = {}
  for i = 1, #sizes - 1 do
    layers[#layers + 1] = L.Linear(sizes[i], sizes[i + 1])
    if i < #sizes - 1 then layers[#layers + 1] = L.ReLU() end
  end
  local seq = L.Sequential(layers)
  if opts.flatten ~= false then
    local Net = Module:extend("MLP")
    function Net:init() self.net = seq end
    function Net:forward(x) return self.net(x:flatten(2)) end
    -- keep PyTorch's plain Sequential names: the state dict is the Sequential's
    local net = Net()
    net.state_dict = function() return seq:state_dict() end
    net.state_dict_keys = function() return seq:state_dict_keys() end
    net.load_state_dict = function(_, sd, o) return seq:load_state_dict(sd, o) end
    return net
  end
  return seq
end

--- The CNN of the Fashion-MNIST recipe: conv(1->32,3,pad 1)-BN-ReLU-maxpool2,
--- conv(32->64)-BN-ReLU-maxpool2, flatten, linear(3136->128)-ReLU, linear(128->10).
function zoo.fashion_cnn(opts)
  opts = opts or {}
  return L.Sequential(
    L.Conv2d(1, 32, 3, { padding = 1 }), L.BatchNorm2d(32), L.ReLU(), L.MaxPool2d(2),
    L.Conv2d(32, 64, 3, { padding = 1 }), L.BatchNorm2d(64), L.ReLU(), L.MaxPool2d(2),
    L.Flatten(), L.Linear(3136, 128), L.ReLU(), L.Linear(128, opts.num_classes or 10))
end

function zoo.lenet(opts)
  opts = opts or {}
  return L.Sequential(
    L.Conv2d(1, 6, 5, { padding = 2 }), L.ReLU(), L.MaxPool2d(2),
    L.Conv2d(6, 16, 5), L.ReLU(), L.MaxPool2d(2),
    L.Flatten(), L.Linear(400, 120), L.ReLU(), L.Linear(120, 84), L.ReLU(), L.Linear(84, opts.num_classes or 10))
end

-- ---- ResNet ---------------------------------------------------------------------
local BasicBlock = Module:extend("BasicBlock")
function BasicBlock:init(inp, out, stride)
  self.conv1 = L.Conv2d(inp, out, 3, { stride = stride, padding = 1, bias = false })
  self.bn1 = L.BatchNorm2d(out)
  self.relu = L.ReLU()
  self.conv2 = L.Conv2d(out, out, 3, { padding = 1, bias = false })
  self.bn2 = L.BatchNorm2d(out)
  if stride ~= 1 or inp ~= out then
    self.downsample = L.Sequential(L.Conv2d(inp, out, 1, { stride = stride, bias = false }), L.BatchNorm2d(out))
  end
end
function BasicBlock:forward(x)
  local out = self.relu(self.bn1(self.conv1(x)))
  out = self.bn2(self.conv2(out))
  local identity = self.downsample and self.downsample(x) or x
  return (out + identity):relu()
end

local ResNet = Module:extend("ResNet")
function ResNet:init(blocks, num_classes)
  self.conv1 = L.Conv2d(3, 64, 7, { stride = 2, padding = 3, bias = false })
  self.bn1 = L.BatchNorm2d(64)
  self.relu = L.ReLU()
  self.maxpool = L.MaxPool2d(3, { stride = 2, padding = 1 })
  local inp = 64
  for i, width in ipairs { 64, 128, 256, 512 } do
    local layer = L.Sequential()
    for b = 1, blocks[i] do
      local stride = (b == 1 and i > 1) and 2 or 1
      layer:append(BasicBlock(inp, width, stride))
      inp = width
    end
    self["layer" .. i] = layer
  end
  self.avgpool = L.AdaptiveAvgPool2d({ 1, 1 })
  self.fc = L.Linear(512, num_classes)
  -- torchvision: kaiming_normal_(fan_out, relu) for convs, BN weight 1 bias 0
  torsh.no_grad(function()
    for _, nm in ipairs(self:named_modules()) do
      local m = nm[2]
      if m.__name == "Conv2d" then
        local w = m.weight
        local fan_out = w:size(1) * w:size(3) * w:size(4)
        w:normal_(0, math.sqrt(2 / fan_out))
      end
    end
  end)
end
function ResNet:forward(x)
  x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
  x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
  return self.fc(self.avgpool(x):flatten(2))
end

function zoo.resnet18(opts) return ResNet({ 2, 2, 2, 2 }, (opts or {}).num_classes or 1000) end
function zoo.resnet34(opts) return ResNet({ 3, 4, 6, 3 }, (opts or {}).num_classes or 1000) end

-- ---- MobileNetV2 ----------------------------------------------------------------------
local ReLU6 = Module:extend("ReLU6")
function ReLU6:forward(x) return x:clamp(0, 6) end

local function conv_bn_act(inp, out, k, stride, groups)
  return L.Sequential(L.Conv2d(inp, out, k, { stride = stride or 1, padding = (k - 1) // 2, groups = groups or 1, bias = false }),
    L.BatchNorm2d(out), ReLU6())
end

local InvertedResidual = Module:extend("InvertedResidual")
function InvertedResidual:init(inp, out, stride, t)
  local hidden = inp * t
  self.use_res_connect = stride == 1 and inp == out
  local layers = {}
  if t ~= 1 then layers[#layers + 1] = conv_bn_act(inp, hidden, 1) end
  layers[#layers + 1] = conv_bn_act(hidden, hidden, 3, stride, hidden)
  layers[#layers + 1] = L.Conv2d(hidden, out, 1, { bias = false })
  layers[#layers + 1] = L.BatchNorm2d(out)
  self.conv = L.Sequential(layers)
end
function InvertedResidual:forward(x)
  if self.use_res_connect then return x + self.conv(x) end
  return self.conv(x)
end

local MobileNetV2 = Module:extend("MobileNetV2")
function MobileNetV2:init(num_classes)
  local features = { conv_bn_act(3, 32, 3, 2) }
  local inp = 32
  for _, s in ipairs { { 1, 16, 1, 1 }, { 6, 24, 2, 2 }, { 6, 32, 3, 2 }, { 6, 64, 4, 2 }, { 6, 96, 3, 1 }, { 6, 160, 3, 2 }, { 6, 320, 1, 1 } } do
    for i = 1, s[3] do
      features[#features + 1] = InvertedResidual(inp, s[2], i == 1 and s[4] or 1, s[1])
      inp = s[2]
    end
  end
  features[#features + 1] = conv_bn_act(inp, 1280, 1)
  self.features = L.Sequential(features)
  self.classifier = L.Sequential(L.Dropout(0.2), L.Linear(1280, num_classes))
end
function MobileNetV2:forward(x)
  x = self.features(x)
  return self.classifier(torsh.adaptive_avg_pool2d(x, { 1, 1 }):flatten(2))
end

function zoo.mobilenet_v2(opts) return MobileNetV2((opts or {}).num_classes or 1000) end

-- ---- a small ViT -------------------------------------------------------------------------
local EncoderBlock = Module:extend("EncoderBlock")
function EncoderBlock:init(dim, heads, mlp_dim, dropout)
  self.ln_1 = L.LayerNorm(dim, { eps = 1e-6 })
  self.self_attention = L.MultiheadAttention(dim, heads, { dropout = dropout, batch_first = true })
  self.dropout = L.Dropout(dropout)
  self.ln_2 = L.LayerNorm(dim, { eps = 1e-6 })
  self.mlp = L.Sequential(L.Linear(dim, mlp_dim), L.GELU(), L.Dropout(dropout), L.Linear(mlp_dim, dim), L.Dropout(dropout))
end
function EncoderBlock:forward(x)
  local h = self.ln_1(x)
  h = self.self_attention(h, h, h, { need_weights = false })
  x = x + self.dropout(h)
  return x + self.mlp(self.ln_2(x))
end

local Encoder = Module:extend("Encoder")
function Encoder:init(seq_len, layers, dim, heads, mlp_dim, dropout)
  local pos = torsh.empty({ 1, seq_len, dim })
  pos:normal_(0, 0.02)
  self:register_parameter("pos_embedding", pos)
  self.dropout = L.Dropout(dropout)
  self.layers = L.Sequential()
  for i = 1, layers do self.layers:add_module("encoder_layer_" .. (i - 1), EncoderBlock(dim, heads, mlp_dim, dropout)) end
  self.ln = L.LayerNorm(dim, { eps = 1e-6 })
end
function Encoder:forward(x) return self.ln(self.layers(self.dropout(x + self.pos_embedding))) end

local ViT = Module:extend("VisionTransformer")
function ViT:init(o)
  self.patch_size, self.hidden_dim = o.patch_size, o.hidden_dim
  self.conv_proj = L.Conv2d(o.channels, o.hidden_dim, o.patch_size, { stride = o.patch_size })
  self:register_parameter("class_token", torsh.zeros(1, 1, o.hidden_dim))
  local n = (o.image_size // o.patch_size) ^ 2
  self.encoder = Encoder(n + 1, o.num_layers, o.hidden_dim, o.num_heads, o.mlp_dim, o.dropout)
  self.heads = L.Sequential()
  self.heads:add_module("head", L.Linear(o.hidden_dim, o.num_classes))
end
function ViT:forward(x)
  local B = x:size(1)
  local p = self.conv_proj(x)                                   -- [B, D, h, w]
  p = p:flatten(3):transpose(2, 3)                              -- [B, h*w, D]
  local cls = self.class_token:expand(B, 1, self.hidden_dim)
  local h = self.encoder(torsh.cat({ cls, p }, 2))
  return self.heads(h:select(2, 1))
end

function zoo.vit(opts)
  opts = opts or {}
  return ViT {
    image_size = opts.image_size or 32, patch_size = opts.patch_size or 4, channels = opts.channels or 3,
    num_layers = opts.num_layers or 6, num_heads = opts.num_heads or 4, hidden_dim = opts.hidden_dim or 192,
    mlp_dim = opts.mlp_dim or 768, dropout = opts.dropout or 0, num_classes = opts.num_classes or 10,
  }
end

return zoo
