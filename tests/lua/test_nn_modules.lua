-- test_nn_modules.lua — torsh.nn modules against PyTorch: PyTorch's state
-- dicts load with strict=true and give PyTorch's outputs (eval and train
-- mode, BatchNorm running stats), losses match for every option, the zoo's
-- state-dict keys and shapes equal torchvision's, initialisation follows
-- PyTorch's bounds, and bad input names the module path.
local T = require "torsh.test"
local nn = require "torsh.nn"
local ref = dofile("tests/fixtures/nn_modules_ref.lua")

local make = T.tensor

local function build(ctor)
  if ctor == "CNN" then
    return nn.Sequential(nn.Conv2d(1, 2, 3, { padding = 1 }), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3))
  end
  return assert(load("return nn." .. ctor, "ctor", "t", { nn = nn }))()
end

T.case("modules load PyTorch state dicts and match PyTorch outputs", function()
  for _, c in ipairs(ref.modules) do
    local m = build(c.ctor)
    local sd = {}
    for _, e in ipairs(c.state) do sd[e.name] = make(e.t) end
    m:load_state_dict(sd)            -- strict
    m:train(c.train)
    local inputs = {}
    for i, x in ipairs(c.inputs) do inputs[i] = make(x) end
    local y = m(table.unpack(inputs))
    T.close(y, make(c.out), { atol = 1e-5, rtol = 1e-4 }, c.name)
    if c.state_after then
      local after = m:state_dict()
      for _, e in ipairs(c.state_after) do T.close(after[e.name], make(e.t), { atol = 1e-6, rtol = 1e-5 }, c.name .. " " .. e.name) end
    end
  end
end)

T.case("losses match PyTorch for every option", function()
  for i, c in ipairs(ref.losses) do
    local opts = {}
    for k, v in pairs(c.opts) do opts[k] = type(v) == "table" and make(v) or v end
    local got = nn.functional[c.fn](make(c.a), make(c.b), opts)
    T.close(got, make(c.out), { atol = 1e-6, rtol = 1e-5 }, string.format("#%d %s", i, c.fn))
  end
end)

T.case("zoo models have torchvision's state-dict keys, order and shapes", function()
  local zoo = nn.zoo
  for name, keys in pairs(ref.keys) do
    local m = zoo[name]()
    local mine = m:state_dict_keys()
    local sd = m:state_dict()
    T.eq(#mine, #keys, name .. " key count")
    for i, k in ipairs(keys) do
      T.eq(mine[i], k.name, name .. " key " .. i)
      T.close(sd[k.name]:shape(), k.shape, 0, name .. " " .. k.name)
    end
  end
  T.eq(zoo.resnet18():num_parameters(), 11689512)
end)

T.case("initialisation follows PyTorch's bounds", function()
  torsh.manual_seed(1)
  local l = nn.Linear(400, 300)
  local bound = 1 / math.sqrt(400)
  T.ok(l.weight:amax():item() <= bound and l.weight:amin():item() >= -bound)
  T.ok(l.weight:amax():item() > 0.95 * bound, "uses the whole range")
  T.close(l.weight:std():item(), bound / math.sqrt(3), 0.02)
  local c = nn.Conv2d(16, 8, 3)
  local cb = 1 / math.sqrt(16 * 9)
  T.ok(c.weight:abs():amax():item() <= cb and c.bias:abs():amax():item() <= cb)
  T.ok(l.weight:requires_grad() and l.weight:is_leaf())
end)

T.case("state dicts: names, buffers, strict errors list every problem", function()
  local m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
  T.close(m:state_dict_keys(), { "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked" })
  local sd = m:state_dict()
  sd["0.bias"] = nil
  sd["extra.weight"] = torsh.zeros(1)
  sd["1.weight"] = torsh.zeros(3)
  local err = T.raises(function() m:load_state_dict(sd) end, "missing keys: 0.bias")
  T.ok(err:find("unexpected keys: extra.weight", 1, true), err)
  T.ok(err:find("1.weight: checkpoint has [3], model has [2]", 1, true), err)
  sd["1.weight"] = torsh.ones(2)
  local r = m:load_state_dict(sd, { strict = false })
  T.close(r.missing, { "0.bias" })
  T.close(m:get(2).weight, { 1, 1 })
end)

T.case("errors name the module path", function()
  local model = nn.Sequential(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(8, 4, 3)))
  T.raises(function() model(torsh.randn(1, 1, 8, 8)) end, "0.2: Conv2d expects 8 input channels, got 4")
  T.raises(function() nn.Linear(3, 2)(torsh.randn(2, 4)) end, "Linear expects 3 input features, got 4")
end)

T.case("train/eval, dropout, parameters, zero_grad", function()
  local m = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
  T.ok(m:is_training())
  m:eval()
  T.ok(not m:get(2):is_training())
  local x = torsh.ones(2, 4)
  T.close(m(x), m:get(1)(x))
  m:train()
  torsh.manual_seed(5)
  local y = nn.functional.dropout(torsh.ones(10000), 0.3, true)
  local kept = y:gt(0):to("f32"):mean():item()
  T.close(kept, 0.7, 0.02)
  T.close(y:amax():item(), 1 / 0.7, 1e-5)
  T.eq(#m:parameters(), 2)
  local l = m(x):sum()
  l:backward()
  T.ok(m:get(1).weight:grad() ~= nil)
  m:zero_grad()
  T.ok(m:get(1).weight:grad() == nil)
end)

T.case("a small model trains: loss goes down", function()
  torsh.manual_seed(0)
  local model = nn.zoo.mlp { sizes = { 8, 16, 3 }, flatten = false }
  local x = torsh.randn(64, 8)
  local y = (x:narrow(2, 1, 3)):argmax(2)
  local first, last
  for step = 1, 60 do
    local loss = nn.functional.cross_entropy(model(x), y)
    if step == 1 then first = loss:item() end
    last = loss:item()
    model:zero_grad()
    loss:backward()
    torsh.no_grad(function()
      for _, p in ipairs(model:parameters()) do p:sub_(p:grad() * 0.5) end
    end)
  end
  T.ok(last < first * 0.5, string.format("loss %g -> %g", first, last))
end)

T.case("bf16 autocast: bf16 math in linear/conv, f32 master weights and gradients", function()
  torsh.manual_seed(2)
  local m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
  local x = torsh.randn(5, 1, 8, 8)
  local full = m(x)
  local mixed = nn.functional.autocast("bf16", m, x)
  T.eq(mixed:dtype(), "f32")
  local d = (full - mixed):abs():amax():item()
  T.ok(d > 0 and d < 0.05, "bf16 rounding changes the result a little: " .. d)
  -- the result equals doing the same casts by hand
  local h = torsh.conv2d(x:to("bf16"), m:get(1).weight:to("bf16"), m:get(1).bias:to("bf16")):to("f32"):relu():flatten(2)
  local by_hand = torsh.linear(h:to("bf16"), m:get(4).weight:to("bf16"), m:get(4).bias:to("bf16")):to("f32")
  T.close(mixed, by_hand, 0)
  local loss = nn.functional.cross_entropy(mixed, torsh.tensor { 0, 1, 2, 1, 0 })
  loss:backward()
  T.eq(m:get(1).weight:grad():dtype(), "f32")
  T.eq(m:get(1).weight:dtype(), "f32")
  T.raises(function() nn.functional.autocast("f8", m, x) end, "autocast: dtype must be")
  T.eq(nn.functional.autocast_dtype(), nil)
end)

T.finish()
