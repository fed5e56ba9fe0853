-- torsh/optim/lr_scheduler.lua — learning-rate schedulers with PyTorch 1.13's
-- formulas (the recursive "chainable" forms on step(), the closed forms on
-- step(epoch)), state_dict()/load_state_dict() and get_last_lr():
-- StepLR, MultiStepLR, ConstantLR, LinearLR (linear warm-up), ExponentialLR,
-- PolynomialLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, OneCycleLR,
-- LambdaLR, SequentialLR, ChainedScheduler and ReduceLROnPlateau.
--
--   local sched = require("torsh.optim").lr_scheduler
--   local s = sched.StepLR(opt, { step_size = 30, gamma = 0.1 })   -- or StepLR(opt, 30, 0.1)
--   for epoch = 1, 90 do train(); s:step() end
--
-- Arguments follow PyTorch's order after the optimizer, either positionally
-- or as one options table (a table with string keys); a trailing options
-- table may follow positional ones. Creating a scheduler sets each param
-- group's initial_lr and takes the first step, as PyTorch does. get_last_lr()
-- is a list with one learning rate per param group (group 1 first).
-- Epoch counters (last_epoch) are PyTorch's: -1 before the first step.
local S = {}

-- ---- helpers ------------------------------------------------------------------------------

-- Raises msg at the first caller outside torsh/optim*.lua.
local function fail(fmt, ...)
  local msg = string.format(fmt, ...)
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info then level = 1 break end
    if info.what ~= "C" and not info.source:find("torsh/optim", 1, true) then break end
    level = level + 1
  end
  error(msg, level)
end

local function copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return t
end

local function is_array(t)
  if next(t) == nil then return false end
  for k in pairs(t) do if math.type(k) ~= "integer" then return false end end
  return true
end

local function lrs_of(optimizer)
  local out = {}
  for i, g in ipairs(optimizer.param_groups) do out[i] = g.lr end
  return out
end

-- Number of entries of the sorted list xs that are <= x (Python's bisect_right).
local function bisect_right(xs, x)
  local lo, hi = 0, #xs
  while lo < hi do
    local mid = (lo + hi) // 2
    if x < xs[mid + 1] then hi = mid else lo = mid + 1 end
  end
  return lo
end

local function check_optimizer(name, optimizer)
  if type(optimizer) ~= "table" or type(optimizer.param_groups) ~= "table" then
    fail("%s: %s is not an Optimizer", name, type(optimizer))
  end
end

-- Options from (...): positional values in cls._args order and/or a final
-- options table; unknown names are an error.
local function parse_args(cls, ...)
  local n = select("#", ...)
  local opts = {}
  local last = n > 0 and select(n, ...) or nil
  if type(last) == "table" and not is_array(last) and not last.param_groups and not last.step then
    for k, v in pairs(last) do
      if not cls._allowed[k] then
        fail("%s: unknown option '%s' (known: %s)", cls.__name, tostring(k), table.concat(cls._args, ", "))
      end
      opts[k] = v
    end
    n = n - 1
  end
  if n > #cls._args then fail("%s: too many arguments (%d, at most %d: %s)", cls.__name, n, #cls._args, table.concat(cls._args, ", ")) end
  for i = 1, n do
    local v = select(i, ...)
    if v ~= nil then opts[cls._args[i]] = v end
  end
  return opts
end

local function need_number(name, key, v)
  if type(v) ~= "number" then fail("%s: %s must be a number, got %s", name, key, v == nil and "nothing" or type(v)) end
  return v
end

local function need_int(name, key, v, min)
  if math.type(v) ~= "integer" then
    v = type(v) == "number" and math.tointeger(v) or nil
    if v == nil then fail("%s: %s must be an integer", name, key) end
  end
  if v < min then fail("%s: %s must be >= %d, got %d", name, key, min, v) end
  return v
end

-- ---- LRScheduler: the base class -----------------------------------------------------------------

local LRScheduler = {}
LRScheduler.__index = LRScheduler
S.LRScheduler = LRScheduler

local function class(name, args, base)
  local cls = setmetatable({}, {
    __index = base or LRScheduler,
    __call = function(c, ...) return c.new(...) end,
  })
  cls.__name = name
  cls.__index = cls
  cls._args = args
  cls._allowed = {}
  for _, a in ipairs(args) do cls._allowed[a] = true end
  return cls
end
S.class = class

-- Attaches the optimizer, sets initial_lr and base_lrs, takes the first step.
function LRScheduler:_attach(optimizer, last_epoch, verbose)
  local name = getmetatable(self).__name
  self.optimizer = optimizer
  last_epoch = last_epoch == nil and -1 or need_int(name, "last_epoch", last_epoch, -1)
  for i, g in ipairs(optimizer.param_groups) do
    if last_epoch == -1 then
      if g.initial_lr == nil then g.initial_lr = g.lr end
    elseif g.initial_lr == nil then
      fail("%s: param 'initial_lr' is not specified in param_groups[%d] when resuming an optimizer", name, i)
    end
  end
  self.base_lrs = {}
  for i, g in ipairs(optimizer.param_groups) do self.base_lrs[i] = g.initial_lr end
  self.last_epoch = last_epoch
  self.verbose = verbose and true or false
  self:_initial_step()
end

function LRScheduler:_initial_step()
  self._step_count = 0
  self:step()
end

-- Sets the groups' lr to values and records them.
function LRScheduler:_apply(values, epoch)
  for i, g in ipairs(self.optimizer.param_groups) do
    g.lr = values[i]
    if self.verbose then
      if epoch == nil then io.write(string.format("Adjusting learning rate of group %d to %.4e.\n", i - 1, values[i]))
      else io.write(string.format("Epoch %s: adjusting learning rate of group %d to %.4e.\n", tostring(epoch), i - 1, values[i])) end
    end
  end
  self._last_lr = lrs_of(self.optimizer)
end

--- s:step([epoch]): advances one epoch (recursive form), or jumps to `epoch`
--- (closed form where the scheduler has one; deprecated in PyTorch).
function LRScheduler:step(epoch)
  self._step_count = self._step_count + 1
  local values
  if epoch == nil then
    self.last_epoch = self.last_epoch + 1
    values = self:get_lr()
  else
    self.last_epoch = epoch
    values = self.closed_form_lr and self:closed_form_lr() or self:get_lr()
  end
  self:_apply(values, epoch)
end

--- s:get_last_lr() -> {lr of group 1, lr of group 2, ...}
function LRScheduler:get_last_lr() return copy(self._last_lr) end

--- s:state_dict() -> a plain table of the scheduler's fields (not the optimizer).
function LRScheduler:state_dict()
  local sd = {}
  local unsaved = getmetatable(self)._unsaved or {}
  for k, v in pairs(self) do
    if k ~= "optimizer" and not unsaved[k] and type(v) ~= "function" then sd[k] = copy(v) end
  end
  return sd
end

function LRScheduler:load_state_dict(sd)
  if type(sd) ~= "table" then fail("%s: load_state_dict expects a table, got %s", getmetatable(self).__name, type(sd)) end
  for k, v in pairs(sd) do self[k] = copy(v) end
end

-- Maps f(group, base_lr, i) over the param groups.
local function per_group(self, f)
  local out = {}
  for i, g in ipairs(self.optimizer.param_groups) do out[i] = f(g, self.base_lrs[i], i) end
  return out
end

-- ---- LambdaLR ------------------------------------------------------------------------------------------

--- LambdaLR(opt, lr_lambda [, last_epoch]): lr = base_lr * lr_lambda(epoch);
--- lr_lambda is a function or a list of them (one per group). Functions are
--- not part of state_dict().
local LambdaLR = class("LambdaLR", { "lr_lambda", "last_epoch", "verbose" })
S.LambdaLR = LambdaLR
LambdaLR._unsaved = { lr_lambdas = true }

function LambdaLR.new(optimizer, ...)
  check_optimizer("LambdaLR", optimizer)
  local o = parse_args(LambdaLR, ...)
  local self = setmetatable({}, LambdaLR)
  local n = #optimizer.param_groups
  if type(o.lr_lambda) == "function" then
    self.lr_lambdas = {}
    for i = 1, n do self.lr_lambdas[i] = o.lr_lambda end
  elseif type(o.lr_lambda) == "table" then
    if #o.lr_lambda ~= n then fail("LambdaLR: expected %d lr_lambdas, but got %d", n, #o.lr_lambda) end
    self.lr_lambdas = copy(o.lr_lambda)
  else
    fail("LambdaLR: lr_lambda must be a function or a list of functions")
  end
  self:_attach(optimizer, o.last_epoch, o.verbose)
  return self
end

function LambdaLR:get_lr()
  return per_group(self, function(_, base, i) return base * self.lr_lambdas[i](self.last_epoch) end)
end

-- ---- StepLR ------------------------------------------------------------------------------------------------

--- StepLR(opt, step_size, gamma=0.1): lr *= gamma every step_size epochs.
local StepLR = class("StepLR", { "step_size", "gamma", "last_epoch", "verbose" })
S.StepLR = StepLR

function StepLR.new(optimizer, ...)
  check_optimizer("StepLR", optimizer)
  local o = parse_args(StepLR, ...)
  if o.step_size == nil then fail("StepLR: step_size is required") end
  local self = setmetatable({}, StepLR)
  self.step_size = need_int("StepLR", "step_size", o.step_size, 1)
  self.gamma = need_number("StepLR", "gamma", o.gamma or 0.1)
  self:_attach(optimizer, o.last_epoch, o.verbose)
  return self
end

function StepLR:get_lr()
  if self.last_epoch == 0 or self.last_epoch % self.step_size ~= 0 then return lrs_of(self.optimizer) end
  return per_group(self, function(g) return g.lr * self.gamma end)
end

function StepLR:closed_form_lr()
  return per_group(self, function(_, base) return base * self.gamma ^ (self.last_epoch // self.step_size) end)
end

-- ---- MultiStepLR --------------------------------------------------------------------------------------------

--- MultiStepLR(opt, milestones, gamma=0.1): lr *= gamma at each milestone
--- epoch (a milestone listed twice applies gamma twice).
local MultiStepLR = class("MultiStepLR", { "milestones", "gamma", "last_epoch", "verbose" })
S.MultiStepLR = MultiStepLR

function MultiStepLR.new(optimizer, ...)
  check_optimizer("MultiStepLR", optimizer)
  local o = parse_args(MultiStepLR, ...)
  if type(o.milestones) ~= "table" then fail("MultiStepLR: milestones must be a list of epochs") end
  local self = setmetatable({}, MultiStepLR)
  self.milestones = {}
  for i, m in ipairs(o.milestones) do self.milestones[i] = need_int("MultiStepLR", "milestones[" .. i .. "]", m, 0) end
  table.sort(self.milestones)
  self.gamma = need_number("MultiStepLR", "gamma", o.gamma or 0.1)
  self:_attach(optimizer, o.last_epoch, o.verbose)
  return self
end

function MultiStepLR:get_lr()
  local count = 0
  for _, m in ipairs(self.milestones) do if m == self.last_epoch then count = count + 1 end end
  if count == 0 then return lrs_of(self.optimizer) end
  return per_group(self, function(g) return g.lr * self.gamma ^ count end)
end

function MultiStepLR:closed_form_lr()
  local k = bisect_right(self.milestones, self.last_epoch)
  return per_group(self, function(_, base) return base * self.gamma ^ k end)
end

-- ---- ConstantLR -----------------------------------------------------------------------------------------------

--- ConstantLR(opt, factor=1/3, total_iters=5): lr = base_lr * factor until total_iters.
local ConstantLR = class("ConstantLR", { "factor", "total_iters", "last_epoch", "verbose" })
S.ConstantLR = ConstantLR

function ConstantLR.new(optimizer, ...)
  check_optimizer("ConstantLR", optimizer)
  local o = parse_args(ConstantLR, ...)
  local self = setmetatable({}, ConstantLR)
  self.factor = need_number("ConstantLR", "factor", o.factor or 1.0 / 3)
  if self.factor > 1.0 or self.factor < 0 then fail("ConstantLR: constant multiplicative factor expected to be between 0 and 1") end
  self.total_iters = need_int("ConstantLR", "total_iters", o.total_iters or 5, 0)
  self:_attach(optimizer, o.last_epoch, o.verbose)
  return self
end

function ConstantLR:get_lr()
  local e, n = self.last_epoch, self.total_iters
  if e == 0 then return per_group(self, function(g) return g.lr * self.factor end) end
  if e > n or e ~= n then return lrs_of(self.optimizer) end
  return per_group(self, function(g) return g.lr * (1.0 / self.factor) end)
end

function ConstantLR:closed_form_lr()
  local past = self.last_epoch >= self.total_iters and 1 or 0
  return per_group(self, function(_, base) return base * (self.factor + past * (1 - self.factor)) end)
end

-- ---- LinearLR ---------------------------------------------------------------------------------------------------

--- LinearLR(opt, start_factor=1/3, end_factor=1, total_iters=5): the factor
--- goes linearly from start_factor to end_factor over total_iters epochs
--- (a linear warm-up with end_factor = 1).
local LinearLR = class("LinearLR", { "start_factor", "end_factor", "total_iters", "last_epoch", "verbose" })
S.LinearLR = LinearLR

function LinearLR.new(optimizer, ...)
  check_optimizer("LinearLR", optimizer)
  local o = parse_args(LinearLR, ...)
  local self = setmetatable({}, LinearLR)
  self.start_factor = need_number("LinearLR", "start_factor", o.start_factor or 1.0 / 3)
  self.end_factor = need_number("LinearLR", "end_factor", o.end_factor or 1.0)
  if self.start_factor > 1.0 or self.start_factor <= 0 then
    fail("LinearLR: starting multiplicative factor expected to be greater than 0 and at most 1, got %s", tostring(self.start_factor))
  end
  if self.end_factor > 1.0 or self.end_factor < 0 then
    fail("LinearLR: ending multiplicative factor expected to be between 0 and 1, got %s", tostring(self.end_factor))
  end
  self.total_iters = need_int("LinearLR", "total_iters", o.total_iters or 5, 1)
  self:_attach(optimizer, o.last_epoch, o.verbose)
  return self
end

function LinearLR:get_lr()
  local e, s, f, n = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
  if e == 0 then return per_group(self, function(g) return g.lr * s end) end
  if e > n then return lrs_of(self.optimizer) end
  return per_group(self, function(g) return g.lr * (1. + (f - s) / (n * s + (e - 1) * (f - s))) end)
end

function LinearLR:closed_form_lr()
  local s, f, n = self.start_factor, self.end_factor, self.total_iters
  return per_group(self, function(_, base) return base * (s + (f - s) * math.min(n, self.last_epoch) / n) end)
end

-- ---- ExponentialLR ------------------------------------------------------------------------------------------------

--- ExponentialLR(opt, gamma): lr *= gamma every epoch.
local ExponentialLR = class("ExponentialLR", { "gamma", "last_epoch", "verbose" })
S.ExponentialLR = ExponentialLR

function ExponentialLR.new(optimizer, ...)
  check_optimizer("ExponentialLR", optimizer)
  local o = parse_args(ExponentialLR, ...)
  local self = setmetatable({}, ExponentialLR)
  self.gamma = need_number("ExponentialLR", "gamma", o.gamma)
  self:_attach(optimizer, o.last_epoch, o.verbose)
  return self
end

function ExponentialLR:get_lr()
  if self.last_epoch == 0 then return lrs_of(self.optimizer) end
  return per_group(self, function(g) return g.lr * self.gamma end)
end

function ExponentialLR:closed_form_lr()
  return per_group(self, function(_, base) return base * self.gamma ^ self.last_epoch end)
end

-- ---- PolynomialLR --------------------------------------------------------------------------------------------------

--- PolynomialLR(opt, total_iters=5, power=1): lr = base_lr * (1 - t/total_iters)^power.
local PolynomialLR = class("PolynomialLR", { "total_iters", "power", "last_epoch", "verbose" })
S.PolynomialLR = PolynomialLR

function PolynomialLR.new(optimizer, ...)
  check_optimizer("PolynomialLR", optimizer)
  local o = parse_args(PolynomialLR, ...)
  local self = setmetatable({}, PolynomialLR)
  self.total_iters = need_int("PolynomialLR", "total_iters", o.total_iters or 5, 1)
  self.power = need_number("PolynomialLR", "power", o.power or 1.0)
  self:_attach(optimizer, o.last_epoch, o.verbose)
  return self
end

function PolynomialLR:get_lr()
  local e, n = self.last_epoch, self.total_iters
  if e == 0 or e > n then return lrs_of(self.optimizer) end
  local decay = ((1.0 - e / n) / (1.0 - (e - 1) / n)) ^ self.power
  return per_group(self, function(g) return g.lr * decay end)
end

function PolynomialLR:closed_form_lr()
  local n = self.total_iters
  return per_group(self, function(_, base) return base * (1.0 - math.min(n, self.last_epoch) / n) ^ self.power end)
end

-- ---- CosineAnnealingLR ---------------------------------------------------------------------------------------------

--- CosineAnnealingLR(opt, T_max, eta_min=0): cosine from base_lr down to
--- eta_min over T_max epochs (and back up after, as PyTorch's recursion does).
local CosineAnnealingLR = class("CosineAnnealingLR", { "T_max", "eta_min", "last_epoch", "verbose" })
S.CosineAnnealingLR = CosineAnnealingLR

function CosineAnnealingLR.new(optimizer, ...)
  check_optimizer("CosineAnnealingLR", optimizer)
  local o = parse_args(CosineAnnealingLR, ...)
  if o.T_max == nil then fail("CosineAnnealingLR: T_max is required") end
  local self = setmetatable({}, CosineAnnealingLR)
  self.T_max = need_int("CosineAnnealingLR", "T_max", o.T_max, 1)
  self.eta_min = need_number("CosineAnnealingLR", "eta_min", o.eta_min or 0)
  self:_attach(optimizer, o.last_epoch, o.verbose)
  return self
end

function CosineAnnealingLR:get_lr()
  local e, T, m, pi = self.last_epoch, self.T_max, self.eta_min, math.pi
  if e == 0 then return lrs_of(self.optimizer) end
  if self._step_count == 1 and e > 0 then
    return per_group(self, function(_, base) return m + (base - m) * (1 + math.cos(e * pi / T)) / 2 end)
  end
  if (e - 1 - T) % (2 * T) == 0 then
    return per_group(self, function(g, base) return g.lr + (base - m) * (1 - math.cos(pi / T)) / 2 end)
  end
  return per_group(self, function(g)
    return (1 + math.cos(pi * e / T)) / (1 + math.cos(pi * (e - 1) / T)) * (g.lr - m) + m
  end)
end

function CosineAnnealingLR:closed_form_lr()
  local e, T, m = self.last_epoch, self.T_max, self.eta_min
  return per_group(self, function(_, base) return m + (base - m) * (1 + math.cos(math.pi * e / T)) / 2 end)
end

-- ---- CosineAnnealingWarmRestarts -------------------------------------------------------------------------------------

--- CosineAnnealingWarmRestarts(opt, T_0, T_mult=1, eta_min=0): cosine
--- annealing restarted after T_0 epochs, then T_0*T_mult, ... step(epoch)
--- accepts fractional epochs (step within an epoch).
local WarmRestarts = class("CosineAnnealingWarmRestarts", { "T_0", "T_mult", "eta_min", "last_epoch", "verbose" })
S.CosineAnnealingWarmRestarts = WarmRestarts

function WarmRestarts.new(optimizer, ...)
  local name = "CosineAnnealingWarmRestarts"
  check_optimizer(name, optimizer)
  local o = parse_args(WarmRestarts, ...)
  if o.T_0 == nil then fail("%s: T_0 is required", name) end
  local self = setmetatable({}, WarmRestarts)
  self.T_0 = need_int(name, "T_0", o.T_0, 1)
  self.T_i = self.T_0
  self.T_mult = need_int(name, "T_mult", o.T_mult or 1, 1)
  self.eta_min = need_number(name, "eta_min", o.eta_min or 0)
  self.T_cur = o.last_epoch or -1
  self:_attach(optimizer, o.last_epoch, o.verbose)
  return self
end

function WarmRestarts:get_lr()
  return per_group(self, function(_, base)
    return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
  end)
end

function WarmRestarts:step(epoch)
  if epoch == nil and self.last_epoch < 0 then epoch = 0 end
  if epoch == nil then
    epoch = self.last_epoch + 1
    self.T_cur = self.T_cur + 1
    if self.T_cur >= self.T_i then
      self.T_cur = self.T_cur - self.T_i
      self.T_i = self.T_i * self.T_mult
    end
  else
    if epoch < 0 then fail("CosineAnnealingWarmRestarts: expected non-negative epoch, but got %s", tostring(epoch)) end
    if epoch >= self.T_0 then
      if self.T_mult == 1 then
        self.T_cur = epoch % self.T_0
      else
        -- Python's int(math.log(x, base)) = trunc(log(x) / log(base))
        local n = math.floor(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1) / math.log(self.T_mult))
        self.T_cur = epoch - self.T_0 * (self.T_mult ^ n - 1) / (self.T_mult - 1)
        self.T_i = self.T_0 * self.T_mult ^ n
      end
    else
      self.T_i = self.T_0
      self.T_cur = epoch
    end
  end
  self.last_epoch = math.floor(epoch)
  self:_apply(self:get_lr(), epoch)
end

-- ---- OneCycleLR --------------------------------------------------------------------------------------------------------

--- OneCycleLR(opt, max_lr, total_steps | epochs + steps_per_epoch, pct_start=0.3,
--- anneal_strategy="cos", cycle_momentum=true, base_momentum=0.85,
--- max_momentum=0.95, div_factor=25, final_div_factor=1e4, three_phase=false):
--- the 1cycle policy, stepped once per batch. With cycle_momentum the
--- optimizer's momentum (or betas[1]) cycles inversely to the lr.
local OneCycleLR = class("OneCycleLR", { "max_lr", "total_steps", "epochs", "steps_per_epoch", "pct_start",
  "anneal_strategy", "cycle_momentum", "base_momentum", "max_momentum", "div_factor", "final_div_factor",
  "three_phase", "last_epoch", "verbose" })
S.OneCycleLR = OneCycleLR

-- A per-group list from a number or a list.
local function per_group_param(name, key, optimizer, v)
  local n = #optimizer.param_groups
  if type(v) == "table" then
    if #v ~= n then fail("%s: expected %d values for %s, got %d", name, n, key, #v) end
    return copy(v)
  end
  need_number(name, key, v)
  local out = {}
  for i = 1, n do out[i] = v end
  return out
end

function OneCycleLR.new(optimizer, ...)
  local name = "OneCycleLR"
  check_optimizer(name, optimizer)
  local o = parse_args(OneCycleLR, ...)
  local self = setmetatable({}, OneCycleLR)
  if o.max_lr == nil then fail("%s: max_lr is required", name) end
  if o.total_steps == nil and o.epochs == nil and o.steps_per_epoch == nil then
    fail("%s: you must define either total_steps OR (epochs AND steps_per_epoch)", name)
  elseif o.total_steps ~= nil then
    self.total_steps = need_int(name, "total_steps", o.total_steps, 1)
  else
    self.total_steps = need_int(name, "epochs", o.epochs, 1) * need_int(name, "steps_per_epoch", o.steps_per_epoch, 1)
  end
  local pct = o.pct_start == nil and 0.3 or o.pct_start
  if type(pct) ~= "number" or pct < 0 or pct > 1 then fail("%s: expected a number between 0 and 1 for pct_start, got %s", name, tostring(pct)) end
  if o.three_phase then
    self._schedule_phases = {
      { end_step = pct * self.total_steps - 1, start_lr = "initial_lr", end_lr = "max_lr",
        start_momentum = "max_momentum", end_momentum = "base_momentum" },
      { end_step = 2 * pct * self.total_steps - 2, start_lr = "max_lr", end_lr = "initial_lr",
        start_momentum = "base_momentum", end_momentum = "max_momentum" },
      { end_step = self.total_steps - 1, start_lr = "initial_lr", end_lr = "min_lr",
        start_momentum = "max_momentum", end_momentum = "max_momentum" },
    }
  else
    self._schedule_phases = {
      { end_step = pct * self.total_steps - 1, start_lr = "initial_lr", end_lr = "max_lr",
        start_momentum = "max_momentum", end_momentum = "base_momentum" },
      { end_step = self.total_steps - 1, start_lr = "max_lr", end_lr = "min_lr",
        start_momentum = "base_momentum", end_momentum = "max_momentum" },
    }
  end
  self.anneal_strategy = o.anneal_strategy or "cos"
  if self.anneal_strategy ~= "cos" and self.anneal_strategy ~= "linear" then
    fail("%s: anneal_strategy must be one of 'cos' or 'linear', got %s", name, tostring(self.anneal_strategy))
  end
  local div = need_number(name, "div_factor", o.div_factor or 25.)
  local final_div = need_number(name, "final_div_factor", o.final_div_factor or 1e4)
  local last_epoch = o.last_epoch == nil and -1 or o.last_epoch
  local max_lrs = per_group_param(name, "max_lr", optimizer, o.max_lr)
  if last_epoch == -1 then
    for i, g in ipairs(optimizer.param_groups) do
      g.initial_lr = max_lrs[i] / div
      g.max_lr = max_lrs[i]
      g.min_lr = g.initial_lr / final_div
    end
  end
  self.cycle_momentum = o.cycle_momentum == nil and true or o.cycle_momentum
  if self.cycle_momentum then
    local defaults = optimizer.defaults or {}
    if defaults.momentum == nil and defaults.betas == nil then
      fail("%s: optimizer must support momentum with `cycle_momentum` option enabled", name)
    end
    self.use_beta1 = defaults.betas ~= nil
    local maxm = per_group_param(name, "max_momentum", optimizer, o.max_momentum or 0.95)
    local basem = per_group_param(name, "base_momentum", optimizer, o.base_momentum or 0.85)
    if last_epoch == -1 then
      for i, g in ipairs(optimizer.param_groups) do
        if self.use_beta1 then g.betas = { maxm[i], g.betas[2] } else g.momentum = maxm[i] end
        g.max_momentum = maxm[i]
        g.base_momentum = basem[i]
      end
    end
  end
  self:_attach(optimizer, o.last_epoch, o.verbose)
  return self
end

function OneCycleLR:_anneal(start, stop, pct)
  if self.anneal_strategy == "linear" then return (stop - start) * pct + start end
  local cos_out = math.cos(math.pi * pct) + 1
  return stop + (start - stop) / 2.0 * cos_out
end

function OneCycleLR:get_lr()
  local step_num = self.last_epoch
  if step_num > self.total_steps then
    fail("OneCycleLR: tried to step %d times; the specified number of total steps is %d", step_num + 1, self.total_steps)
  end
  local lrs = {}
  local phases = self._schedule_phases
  for gi, g in ipairs(self.optimizer.param_groups) do
    local start_step, lr, mom = 0, nil, nil
    for i, phase in ipairs(phases) do
      local end_step = phase.end_step
      if step_num <= end_step or i == #phases then
        local pct = (step_num - start_step) / (end_step - start_step)
        lr = self:_anneal(g[phase.start_lr], g[phase.end_lr], pct)
        if self.cycle_momentum then mom = self:_anneal(g[phase.start_momentum], g[phase.end_momentum], pct) end
        break
      end
      start_step = phase.end_step
    end
    lrs[gi] = lr
    if self.cycle_momentum then
      if self.use_beta1 then g.betas = { mom, g.betas[2] } else g.momentum = mom end
    end
  end
  return lrs
end

-- ---- SequentialLR -------------------------------------------------------------------------------------------------------

--- SequentialLR(opt, schedulers, milestones): runs schedulers[i+1] from
--- epoch milestones[i] on (e.g. a LinearLR warm-up, then CosineAnnealingLR).
local SequentialLR = class("SequentialLR", { "schedulers", "milestones", "last_epoch", "verbose" })
S.SequentialLR = SequentialLR

function SequentialLR.new(optimizer, ...)
  local name = "SequentialLR"
  check_optimizer(name, optimizer)
  local o = parse_args(SequentialLR, ...)
  if type(o.schedulers) ~= "table" or #o.schedulers == 0 then fail("%s: schedulers must be a non-empty list", name) end
  if type(o.milestones) ~= "table" then fail("%s: milestones must be a list", name) end
  for i, s in ipairs(o.schedulers) do
    if s.optimizer ~= optimizer then
      fail("%s: expects all schedulers to belong to the same optimizer, but schedulers[%d] has another", name, i)
    end
  end
  if #o.milestones ~= #o.schedulers - 1 then
    fail("%s: expects one milestone fewer than schedulers, got %d schedulers and %d milestones", name,
      #o.schedulers, #o.milestones)
  end
  local self = setmetatable({}, SequentialLR)
  self._schedulers = o.schedulers
  self._milestones = copy(o.milestones)
  self.last_epoch = (o.last_epoch or -1) + 1
  self.optimizer = optimizer
  for _, g in ipairs(optimizer.param_groups) do g.lr = g.initial_lr end
  for _, s in ipairs(self._schedulers) do s.last_epoch = s.last_epoch - 1 end
  self._schedulers[1]:_initial_step()
  self._last_lr = self._schedulers[1]:get_last_lr()
  return self
end

function SequentialLR:step()
  self.last_epoch = self.last_epoch + 1
  local idx = bisect_right(self._milestones, self.last_epoch)
  local s = self._schedulers[idx + 1]
  if idx > 0 and self._milestones[idx] == self.last_epoch then s:step(0) else s:step() end
  self._last_lr = s:get_last_lr()
end

local function nested_state_dict(self)
  local sd = {}
  for k, v in pairs(self) do
    if k ~= "optimizer" and k ~= "_schedulers" then sd[k] = copy(v) end
  end
  sd._schedulers = {}
  for i, s in ipairs(self._schedulers) do sd._schedulers[i] = s:state_dict() end
  return sd
end

local function nested_load_state_dict(self, sd)
  for k, v in pairs(sd) do
    if k ~= "_schedulers" then self[k] = copy(v) end
  end
  for i, s in ipairs(sd._schedulers or {}) do self._schedulers[i]:load_state_dict(s) end
end

SequentialLR.state_dict = nested_state_dict
SequentialLR.load_state_dict = nested_load_state_dict

-- ---- ChainedScheduler -------------------------------------------------------------------------------------------------------

--- ChainedScheduler(schedulers): steps every scheduler at each step().
local ChainedScheduler = class("ChainedScheduler", { "schedulers" })
S.ChainedScheduler = ChainedScheduler

function ChainedScheduler.new(schedulers)
  if type(schedulers) ~= "table" or #schedulers == 0 then fail("ChainedScheduler: schedulers must be a non-empty list") end
  for i = 2, #schedulers do
    if schedulers[i].optimizer ~= schedulers[1].optimizer then
      fail("ChainedScheduler: expects all schedulers to belong to the same optimizer, but schedulers[1] and [%d] differ", i)
    end
  end
  local self = setmetatable({}, ChainedScheduler)
  self._schedulers = { table.unpack(schedulers) }
  self.optimizer = schedulers[1].optimizer
  self._last_lr = lrs_of(self._schedulers[#self._schedulers].optimizer)
  return self
end

function ChainedScheduler:step()
  for _, s in ipairs(self._schedulers) do s:step() end
  self._last_lr = lrs_of(self._schedulers[#self._schedulers].optimizer)
end

ChainedScheduler.state_dict = nested_state_dict
ChainedScheduler.load_state_dict = nested_load_state_dict

-- ---- ReduceLROnPlateau ---------------------------------------------------------------------------------------------------------

--- ReduceLROnPlateau(opt, mode="min", factor=0.1, patience=10, threshold=1e-4,
--- threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8): step(metric) after
--- each evaluation; lr *= factor when the metric has not improved for more
--- than `patience` steps. (step_metric = true tells loops to pass a metric.)
local Plateau = class("ReduceLROnPlateau", { "mode", "factor", "patience", "threshold", "threshold_mode",
  "cooldown", "min_lr", "eps", "verbose" })
S.ReduceLROnPlateau = Plateau
Plateau.step_metric = true

function Plateau.new(optimizer, ...)
  local name = "ReduceLROnPlateau"
  check_optimizer(name, optimizer)
  local o = parse_args(Plateau, ...)
  local self = setmetatable({}, Plateau)
  self.factor = need_number(name, "factor", o.factor or 0.1)
  if self.factor >= 1.0 then fail("%s: factor should be < 1.0, got %s", name, tostring(self.factor)) end
  self.optimizer = optimizer
  local n = #optimizer.param_groups
  if type(o.min_lr) == "table" then
    if #o.min_lr ~= n then fail("%s: expected %d min_lrs, got %d", name, n, #o.min_lr) end
    self.min_lrs = copy(o.min_lr)
  else
    self.min_lrs = {}
    for i = 1, n do self.min_lrs[i] = need_number(name, "min_lr", o.min_lr or 0) end
  end
  self.patience = need_int(name, "patience", o.patience or 10, 0)
  self.verbose = o.verbose and true or false
  self.cooldown = need_int(name, "cooldown", o.cooldown or 0, 0)
  self.cooldown_counter = 0
  self.eps = need_number(name, "eps", o.eps or 1e-8)
  self.last_epoch = 0
  self:_init_is_better(o.mode or "min", need_number(name, "threshold", o.threshold or 1e-4), o.threshold_mode or "rel")
  self:_reset()
  self._last_lr = lrs_of(optimizer)
  return self
end

function Plateau:_init_is_better(mode, threshold, threshold_mode)
  if mode ~= "min" and mode ~= "max" then fail("ReduceLROnPlateau: mode %s is unknown (use 'min' or 'max')", tostring(mode)) end
  if threshold_mode ~= "rel" and threshold_mode ~= "abs" then
    fail("ReduceLROnPlateau: threshold mode %s is unknown (use 'rel' or 'abs')", tostring(threshold_mode))
  end
  self.mode_worse = mode == "min" and math.huge or -math.huge
  self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode
end

function Plateau:_reset()
  self.best = self.mode_worse
  self.cooldown_counter = 0
  self.num_bad_epochs = 0
end

function Plateau:is_better(a, best)
  if self.mode == "min" and self.threshold_mode == "rel" then return a < best * (1. - self.threshold) end
  if self.mode == "min" then return a < best - self.threshold end
  if self.threshold_mode == "rel" then return a > best * (self.threshold + 1.) end
  return a > best + self.threshold
end

--- s:step(metric [, epoch]): metric is a number or a one-element tensor.
function Plateau:step(metrics, epoch)
  local current = metrics
  if type(current) ~= "number" then
    if type(current) == "userdata" and current.item then current = current:item()
    else fail("ReduceLROnPlateau: step expects a metric (a number), got %s", type(metrics)) end
  end
  epoch = epoch or self.last_epoch + 1
  self.last_epoch = epoch
  if self:is_better(current, self.best) then
    self.best = current
    self.num_bad_epochs = 0
  else
    self.num_bad_epochs = self.num_bad_epochs + 1
  end
  if self.cooldown_counter > 0 then
    self.cooldown_counter = self.cooldown_counter - 1
    self.num_bad_epochs = 0
  end
  if self.num_bad_epochs > self.patience then
    self:_reduce_lr(epoch)
    self.cooldown_counter = self.cooldown
    self.num_bad_epochs = 0
  end
  self._last_lr = lrs_of(self.optimizer)
end

function Plateau:_reduce_lr(epoch)
  for i, g in ipairs(self.optimizer.param_groups) do
    local old = g.lr
    local new = math.max(old * self.factor, self.min_lrs[i])
    if old - new > self.eps then
      g.lr = new
      if self.verbose then
        io.write(string.format("Epoch %s: reducing learning rate of group %d to %.4e.\n", tostring(epoch), i - 1, new))
      end
    end
  end
end

function Plateau:load_state_dict(sd)
  LRScheduler.load_state_dict(self, sd)
  self:_init_is_better(self.mode, self.threshold, self.threshold_mode)
end

return S
