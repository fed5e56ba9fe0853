-- torsh/nn/module.lua — the Module base class: parameters, buffers and
-- child modules kept in registration order, train/eval, PyTorch-style state
-- dicts ("features.3.weight", "bn.running_mean", "bn.num_batches_tracked"),
-- and errors that name the module path ("features.3: Conv2d expects 64 input
-- channels, got 32").
--
--   local Net = nn.Module:extend("Net")
--   function Net:init() self.fc = nn.Linear(4, 2) end      -- assignment registers
--   function Net:forward(x) return self.fc(x):relu() end
--   local net = Net()
local torsh = require "torsh"

local Module = {}
Module.__index = Module
Module.__name = "Module"

local function is_module(v) return type(v) == "table" and getmetatable(v) and rawget(getmetatable(v), "__is_module") end

--- Module:extend(name) -> a subclass; instances are made by calling it.
function Module:extend(name)
  local cls = setmetatable({}, { __index = self, __call = function(c, ...) return c.new(c, ...) end })
  cls.__name = name
  cls.__is_module = true
  cls.__index = function(obj, key)
    -- fields first (rawget), then registered children/params/buffers, then methods
    local st = rawget(obj, "_state")
    if st then
      local v = st.modules[key] or st.params[key] or st.buffers[key]
      if v ~= nil then return v end
    end
    return cls[key]
  end
  cls.__newindex = function(obj, key, value)
    local st = rawget(obj, "_state")
    if st and (is_module(value) or st.modules[key]) then obj:add_module(key, value)
    elseif st and st.params[key] ~= nil then obj:register_parameter(key, value)
    elseif st and st.buffers[key] ~= nil then st.buffers[key] = value
    else rawset(obj, key, value) end
  end
  cls.__call = function(obj, ...) return obj:_call(...) end
  cls.__tostring = function(obj) return obj:repr() end
  return cls
end

--- cls.new(cls, ...) creates an instance and runs cls.init(self, ...).
function Module.new(cls, ...)
  local obj = setmetatable({ _state = {
    params = {}, param_order = {}, buffers = {}, buffer_order = {}, persistent = {},
    modules = {}, module_order = {}, training = true, name = nil, parent = nil,
  } }, cls)
  if cls.init then cls.init(obj, ...) end
  return obj
end

function Module:register_parameter(name, t)
  local st = self._state
  if t ~= nil and not torsh.is_tensor(t) then error(string.format("%s: parameter '%s' must be a tensor", self.__name, name), 2) end
  if st.params[name] == nil then st.param_order[#st.param_order + 1] = name end
  if t ~= nil and not t:requires_grad() and (t:dtype() == "f32" or t:dtype() == "f64" or t:dtype() == "f16" or t:dtype() == "bf16") then
    t:requires_grad_(true)
  end
  st.params[name] = t or false        -- false keeps the slot (a bias=None)
  return t
end

function Module:register_buffer(name, t, persistent)
  local st = self._state
  if st.buffers[name] == nil then st.buffer_order[#st.buffer_order + 1] = name end
  st.buffers[name] = t or false
  st.persistent[name] = persistent ~= false
  return t
end

function Module:add_module(name, m)
  local st = self._state
  if m ~= nil and not is_module(m) then error(string.format("%s: '%s' is not a module", self.__name, name), 2) end
  if st.modules[name] == nil then st.module_order[#st.module_order + 1] = name end
  st.modules[name] = m or false
  if m then m._state.name = name; m._state.parent = self end
  return m
end

--- The dotted path of this module from the root ("features.3"), or its class name at the root.
function Module:path()
  local parts, m = {}, self
  while m and m._state.parent do
    table.insert(parts, 1, m._state.name)
    m = m._state.parent
  end
  return #parts > 0 and table.concat(parts, ".") or ""
end

local last_annotated
--- Calls forward; an error raised inside gets the module path and class once.
function Module:_call(...)
  local results = table.pack(pcall(self.forward, self, ...))
  if results[1] then return table.unpack(results, 2, results.n) end
  local err = results[2]
  if type(err) == "string" and err ~= last_annotated then
    local path = self:path()
    err = (path ~= "" and (path .. ": ") or "") .. err:gsub("^[^:]*:%d+: ", "")
    last_annotated = err
  end
  error(err, 0)
end

function Module:forward() error(self.__name .. ": forward() is not implemented", 2) end

local function walk(m, prefix, fn)
  fn(m, prefix)
  for _, name in ipairs(m._state.module_order) do
    local child = m._state.modules[name]
    if child then walk(child, prefix == "" and name or (prefix .. "." .. name), fn) end
  end
end

--- named_parameters() -> list of {name, tensor} in registration order (recursive).
function Module:named_parameters()
  local out, seen = {}, {}
  walk(self, "", function(m, prefix)
    for _, n in ipairs(m._state.param_order) do
      local p = m._state.params[n]
      if p and not seen[p] then
        seen[p] = true
        out[#out + 1] = { prefix == "" and n or (prefix .. "." .. n), p }
      end
    end
  end)
  return out
end

function Module:parameters()
  local out = {}
  for i, np in ipairs(self:named_parameters()) do out[i] = np[2] end
  return out
end

function Module:named_buffers()
  local out = {}
  walk(self, "", function(m, prefix)
    for _, n in ipairs(m._state.buffer_order) do
      local b = m._state.buffers[n]
      if b then out[#out + 1] = { prefix == "" and n or (prefix .. "." .. n), b, m._state.persistent[n] } end
    end
  end)
  return out
end

function Module:children()
  local out = {}
  for _, n in ipairs(self._state.module_order) do
    if self._state.modules[n] then out[#out + 1] = self._state.modules[n] end
  end
  return out
end

function Module:named_modules()
  local out = {}
  walk(self, "", function(m, prefix) out[#out + 1] = { prefix, m } end)
  return out
end

--- Number of parameters (elements).
function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p:numel() end
  return n
end

function Module:train(mode)
  if mode == nil then mode = true end
  walk(self, "", function(m) m._state.training = mode end)
  return self
end

function Module:eval() return self:train(false) end
function Module:is_training() return self._state.training end

--- zero_grad(): clears the gradients of every parameter.
function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p:set_grad(nil) end
end

--- state_dict() -> table name -> tensor (parameters and persistent buffers),
--- with the ordered key list in its field `_order` is avoided: use state_dict_keys().
function Module:state_dict()
  local sd = {}
  for _, np in ipairs(self:named_parameters()) do sd[np[1]] = np[2]:detach() end
  for _, nb in ipairs(self:named_buffers()) do if nb[3] then sd[nb[1]] = nb[2] end end
  return sd
end

--- state_dict_keys() -> the keys of state_dict() in PyTorch's order.
function Module:state_dict_keys()
  local keys = {}
  walk(self, "", function(m, prefix)
    local function key(n) return prefix == "" and n or (prefix .. "." .. n) end
    for _, n in ipairs(m._state.param_order) do if m._state.params[n] then keys[#keys + 1] = key(n) end end
    for _, n in ipairs(m._state.buffer_order) do
      if m._state.buffers[n] and m._state.persistent[n] then keys[#keys + 1] = key(n) end
    end
  end)
  return keys
end

local function shape_str(t) return "[" .. table.concat(t:shape(), ", ") .. "]" end

--- load_state_dict(sd, {strict=true}) copies tensors in (converting dtype).
--- Every missing key, unexpected key and shape mismatch is listed in one error.
function Module:load_state_dict(sd, opts)
  local strict = not (opts and opts.strict == false)
  local targets = {}
  walk(self, "", function(m, prefix)
    local function key(n) return prefix == "" and n or (prefix .. "." .. n) end
    for _, n in ipairs(m._state.param_order) do
      if m._state.params[n] then targets[key(n)] = { m, n, "param" } end
    end
    for _, n in ipairs(m._state.buffer_order) do
      if m._state.buffers[n] and m._state.persistent[n] then targets[key(n)] = { m, n, "buffer" } end
    end
  end)
  local missing, unexpected, mismatched = {}, {}, {}
  for k in pairs(targets) do if sd[k] == nil then missing[#missing + 1] = k end end
  for k, v in pairs(sd) do
    local t = targets[k]
    if not t then unexpected[#unexpected + 1] = k
    else
      local cur = t[3] == "param" and t[1]._state.params[t[2]] or t[1]._state.buffers[t[2]]
      if not torsh.is_tensor(v) then mismatched[#mismatched + 1] = k .. ": not a tensor"
      elseif shape_str(v) ~= shape_str(cur) then
        mismatched[#mismatched + 1] = string.format("%s: checkpoint has %s, model has %s", k, shape_str(v), shape_str(cur))
      end
    end
  end
  table.sort(missing); table.sort(unexpected); table.sort(mismatched)
  local problems = {}
  if strict and #missing > 0 then problems[#problems + 1] = "missing keys: " .. table.concat(missing, ", ") end
  if strict and #unexpected > 0 then problems[#problems + 1] = "unexpected keys: " .. table.concat(unexpected, ", ") end
  if #mismatched > 0 then problems[#problems + 1] = "shape mismatches: " .. table.concat(mismatched, "; ") end
  if #problems > 0 then error("load_state_dict: " .. table.concat(problems, "; "), 2) end
  torsh.no_grad(function()
    for k, v in pairs(sd) do
      local t = targets[k]
      if t then
        local cur = t[3] == "param" and t[1]._state.params[t[2]] or t[1]._state.buffers[t[2]]
        cur:copy_(v)
      end
    end
  end)
  return { missing = missing, unexpected = unexpected }
end

--- to(dtype): converts parameters and floating buffers in place (new tensors).
function Module:to(dtype)
  walk(self, "", function(m)
    for _, n in ipairs(m._state.param_order) do
      local p = m._state.params[n]
      if p then m._state.params[n] = p:detach():to(dtype):requires_grad_(true) end
    end
    for _, n in ipairs(m._state.buffer_order) do
      local b = m._state.buffers[n]
      if b and (b:dtype() == "f32" or b:dtype() == "f64" or b:dtype() == "f16" or b:dtype() == "bf16") then
        m._state.buffers[n] = b:to(dtype)
      end
    end
  end)
  return self
end

function Module:extra_repr() return "" end

function Module:repr(indent)
  indent = indent or ""
  local kids = self._state.module_order
  local head = self.__name .. "(" .. self:extra_repr()
  if #kids == 0 then return head .. ")" end
  local lines = { head }
  for _, n in ipairs(kids) do
    local m = self._state.modules[n]
    if m then lines[#lines + 1] = indent .. "  (" .. n .. "): " .. m:repr(indent .. "  ") end
  end
  lines[#lines + 1] = indent .. ")"
  return table.concat(lines, "\n")
end

Module.is_module = is_module
return Module
