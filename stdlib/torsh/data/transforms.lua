-- torsh/data/transforms.lua — image transforms for torsh.data: ToTensor,
-- ToFloat, Normalize, RandomCrop, RandomHorizontalFlip, RandomErasing,
-- Lambda and Compose.
--
--   local T = require("torsh.data").transforms
--   local tf = T.Compose { T.RandomCrop(28, 4), T.RandomHorizontalFlip(), T.ToTensor(),
--                          T.Normalize(0.2860, 0.3530) }
--
-- Each step is a plain table ({kind = "random_crop", size = {28, 28}, ...}).
-- A DataLoader over an in-memory dataset hands the steps to C (lua/l_data.c,
-- core/data/transform.c), which runs them on its worker threads; for other
-- datasets, or when a pipeline holds a Lua function (T.Lambda), the steps run
-- here with torsh tensor ops. Both paths draw every random decision from
-- torsh._data.uniforms(seed, epoch, position, step, n) (Philox keyed by the
-- loader's seed, the epoch and the sample's 0-based position in the epoch),
-- so they make the same decisions and give the same numbers.
--
-- Samples are [C, H, W] or [H, W] (one channel). Every pipeline first turns
-- the sample into f32 by value; ToTensor / ToFloat then divide by 255 and
-- turn [H, W] into [1, H, W], as torchvision's ToTensor does (ToFloat takes
-- another divisor, and add_channel = false keeps the shape). Calling a step or a Compose on a tensor applies
-- it with ctx {seed = 0, epoch = 0, position = 0} unless a ctx is given.
local torsh = require "torsh"
local C = torsh._data

local M = {}
local MAX_STEPS = 16
local ERASE_ATTEMPTS = 10

local Step = {}
Step.__index = Step
local Compose = {}
Compose.__index = Compose

local function new_step(kind, fields)
  fields.kind = kind
  return setmetatable(fields, Step)
end

--- M.is_step(v): true for the steps made by this module.
function M.is_step(v) return getmetatable(v) == Step end

local function number_list(v, what)
  if type(v) == "number" then return { v } end
  if type(v) ~= "table" or #v == 0 then error(what .. " must be a number or a list of numbers", 3) end
  for i, x in ipairs(v) do
    if type(x) ~= "number" then error(string.format("%s[%d] must be a number", what, i), 3) end
  end
  return v
end

local function pair(v, default, what)
  if v == nil then return default end
  if type(v) ~= "table" or #v ~= 2 then error(what .. " must be a pair {lo, hi}", 3) end
  return { v[1], v[2] }
end

-- ---- constructors ----------------------------------------------------------------------

--- M.ToTensor(): u8 -> f32 / 255, and [H, W] -> [1, H, W].
function M.ToTensor() return new_step("to_float", { divisor = 255, add_channel = true }) end

--- M.ToFloat([divisor = 255]) or M.ToFloat{divisor = 255, add_channel = true}: -> f32 / divisor;
--- like ToTensor, [H, W] becomes [1, H, W] unless add_channel = false.
function M.ToFloat(divisor)
  local add = true
  if type(divisor) == "table" then divisor, add = divisor.divisor, divisor.add_channel ~= false end
  if divisor ~= nil and type(divisor) ~= "number" then error("ToFloat: divisor must be a number", 2) end
  return new_step("to_float", { divisor = divisor or 255, add_channel = add })
end

--- M.Normalize(mean, std): (x - mean[c]) / std[c]; numbers or per-channel lists.
function M.Normalize(mean, std)
  mean, std = number_list(mean, "Normalize: mean"), number_list(std, "Normalize: std")
  if #mean ~= #std and #mean ~= 1 and #std ~= 1 then
    error(string.format("Normalize: %d means and %d stds", #mean, #std), 2)
  end
  for i, s in ipairs(std) do
    if s == 0 then error(string.format("Normalize: std[%d] is 0", i), 2) end
  end
  return new_step("normalize", { mean = mean, std = std })
end

--- M.RandomCrop(size [, padding = 0 | {padding=, fill=}]): pads every side by
--- `padding` with `fill` (0), then takes a random size x size (or {h, w}) window.
function M.RandomCrop(size, padding)
  local fill = 0
  if type(padding) == "table" then padding, fill = padding.padding, padding.fill or 0 end
  local hw = number_list(size, "RandomCrop: size")
  if #hw > 2 then error("RandomCrop: size must be a number or {h, w}", 2) end
  return new_step("random_crop", { size = { hw[1], hw[#hw] }, padding = padding or 0, fill = fill })
end

--- M.RandomHorizontalFlip([p = 0.5]): mirrors the width with probability p.
function M.RandomHorizontalFlip(p) return new_step("random_hflip", { p = p or 0.5 }) end

--- M.RandomErasing([p = 0.5 [, scale = {0.02, 0.33} [, ratio = {0.3, 3.3} [, value = 0]]]])
--- or M.RandomErasing{p=, scale=, ratio=, value=}: torchvision's RandomErasing;
--- value is a number or "random" (standard-normal noise).
function M.RandomErasing(p, scale, ratio, value)
  if type(p) == "table" then p, scale, ratio, value = p.p, p.scale, p.ratio, p.value end
  if value ~= nil and value ~= "random" and type(value) ~= "number" then
    error('RandomErasing: value must be a number or "random"', 2)
  end
  return new_step("random_erasing", {
    p = p or 0.5, scale = pair(scale, { 0.02, 0.33 }, "RandomErasing: scale"),
    ratio = pair(ratio, { 0.3, 3.3 }, "RandomErasing: ratio"), value = value or 0,
  })
end

--- M.Lambda(fn): a Lua function x -> x as a step (forces the Lua path).
function M.Lambda(fn)
  if type(fn) ~= "function" then error("Lambda: expected a function", 2) end
  return fn
end

local function flatten_into(out, item)
  if getmetatable(item) == Compose then
    for _, s in ipairs(item.steps) do out[#out + 1] = s end
  elseif getmetatable(item) == Step or type(item) == "function" then
    out[#out + 1] = item
  elseif type(item) == "table" and getmetatable(item) == nil then
    for _, s in ipairs(item) do flatten_into(out, s) end
  else
    error("Compose: entries must be transforms, Compose objects or functions, got " .. type(item), 3)
  end
end

--- M.Compose(list): one pipeline from steps, other Composes (flattened) and
--- Lua functions; at most 16 steps.
function M.Compose(list)
  local steps = {}
  flatten_into(steps, list or {})
  if #steps > MAX_STEPS then error(string.format("Compose: at most %d steps, got %d", MAX_STEPS, #steps), 2) end
  return setmetatable({ steps = steps }, Compose)
end

--- M.steps(...) -> the flat list of steps of several transforms (nil skipped).
function M.steps(...)
  local out = {}
  for i = 1, select("#", ...) do
    local t = select(i, ...)
    if t ~= nil then flatten_into(out, t) end
  end
  if #out > MAX_STEPS then error(string.format("transforms: at most %d steps, got %d", MAX_STEPS, #out), 2) end
  return out
end

--- M.native(steps): true when every step can run in C (no Lua functions).
function M.native(steps)
  for _, s in ipairs(steps) do
    if getmetatable(s) ~= Step then return false end
  end
  return true
end

-- ---- the Lua path ----------------------------------------------------------------------------

-- [H, W] images are worked on as [1, H, W].
local function chw(x)
  if x:dim() == 2 then return x:unsqueeze(1), true end
  if x:dim() ~= 3 then error("transforms: image steps need [C, H, W] or [H, W] samples, got " .. x:dim() .. " dims", 4) end
  return x, false
end

local function unchw(x, flat) return flat and x:squeeze(1) or x end

-- Python's round(): halves go to the even neighbour (C's rint).
local function rint(v)
  local f = math.floor(v)
  local d = v - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then return f + 1 end
  return f
end

local run = {}

function run.to_float(s, x)
  x = x / ((s.divisor == 0 or s.divisor == nil) and 1 or s.divisor)
  if s.add_channel and x:dim() == 2 then x = x:unsqueeze(1) end
  return x
end

function run.normalize(s, x)
  local x3, flat = chw(x)
  local c = x3:size(1)
  local n = math.max(#s.mean, #s.std)
  if n ~= 1 and n ~= c then error(string.format("Normalize: %d mean/std values for %d channels", n, c), 3) end
  local mean, std = {}, {}
  for i = 1, c do mean[i], std[i] = s.mean[#s.mean == 1 and 1 or i], s.std[#s.std == 1 and 1 or i] end
  if n == 1 then return unchw((x3 - mean[1]) / std[1], flat) end
  local m, sd = torsh.tensor(mean, "f32"):view(c, 1, 1), torsh.tensor(std, "f32"):view(c, 1, 1)
  return unchw((x3 - m) / sd, flat)
end

function run.random_crop(s, x, ctx, k)
  local x3, flat = chw(x)
  local h, w, p = s.size[1], s.size[2], s.padding or 0
  local H, W = x3:size(2), x3:size(3)
  if H + 2 * p < h or W + 2 * p < w then
    error(string.format("RandomCrop: crop %dx%d does not fit the padded %dx%d image", h, w, H + 2 * p, W + 2 * p), 3)
  end
  local u = C.uniforms(ctx.seed, ctx.epoch, ctx.position, k, 2)
  local top = math.floor(u[1] * (H + 2 * p - h + 1))
  local left = math.floor(u[2] * (W + 2 * p - w + 1))
  if p > 0 then x3 = x3:pad({ p, p, p, p }, "constant", s.fill or 0) end
  return unchw(x3:narrow(2, top + 1, h):narrow(3, left + 1, w):contiguous(), flat)
end

function run.random_hflip(s, x, ctx, k)
  local u = C.uniforms(ctx.seed, ctx.epoch, ctx.position, k, 1)
  if u[1] < s.p then return x:flip(x:dim()) end
  return x
end

function run.random_erasing(s, x, ctx, k)
  local u = C.uniforms(ctx.seed, ctx.epoch, ctx.position, k, 1 + 4 * ERASE_ATTEMPTS)
  if not (u[1] < s.p) then return x end
  local x3, flat = chw(x)
  local c, H, W = x3:size(1), x3:size(2), x3:size(3)
  local area = H * W
  local lr0, lr1 = math.log(s.ratio[1]), math.log(s.ratio[2])
  for a = 0, ERASE_ATTEMPTS - 1 do
    local target = area * (s.scale[1] + (s.scale[2] - s.scale[1]) * u[2 + 4 * a])
    local ratio = math.exp(lr0 + (lr1 - lr0) * u[3 + 4 * a])
    local eh, ew = rint(math.sqrt(target * ratio)), rint(math.sqrt(target / ratio))
    if eh < H and ew < W then
      local top = math.floor(u[4 + 4 * a] * (H - eh + 1))
      local left = math.floor(u[5 + 4 * a] * (W - ew + 1))
      local out = x3:clone()
      if eh > 0 and ew > 0 then
        local box = out:narrow(2, top + 1, eh):narrow(3, left + 1, ew)
        if s.value == "random" then box:copy_(C.noise(ctx.seed, ctx.epoch, ctx.position, k, { c, eh, ew }))
        else box:fill_(s.value) end
      end
      return unchw(out, flat)
    end
  end
  return x
end

local DEFAULT_CTX = { seed = 0, epoch = 0, position = 0 }

--- M.apply(steps, x [, ctx]): runs a flat list of steps on one sample in Lua.
--- ctx = {seed=, epoch=, position=} keys the random decisions. Returns a new
--- f32 tensor (x itself is never modified).
function M.apply(steps, x, ctx)
  ctx = ctx or DEFAULT_CTX
  local y = x:to("f32")
  if rawequal(y, x) then y = x:clone() end
  for k, s in ipairs(steps) do
    if type(s) == "function" then y = s(y)
    else y = run[s.kind](s, y, ctx, k) end
  end
  return y
end

--- M.apply_native(steps, x [, ctx]): the same in C (no Lua functions allowed).
function M.apply_native(steps, x, ctx)
  ctx = ctx or DEFAULT_CTX
  return C.transform(x, steps, ctx.seed, ctx.epoch, ctx.position)
end

Step.__call = function(s, x, ctx) return M.apply({ s }, x, ctx) end
Compose.__call = function(c, x, ctx) return M.apply(c.steps, x, ctx) end
Step.__tostring = function(s) return "transform " .. s.kind end
Compose.__tostring = function(c)
  local names = {}
  for i, s in ipairs(c.steps) do names[i] = type(s) == "function" and "lambda" or s.kind end
  return "Compose(" .. table.concat(names, ", ") .. ")"
end

return M
