-- torsh/autograd.lua — autograd helpers written in Lua: gradcheck (finite
-- differences against the gradients backward() computes) and small
-- conveniences. The engine itself is C (core/autograd).
--
--   local ok, err = torsh.autograd.gradcheck(function(a, b) return a * b:sin() end,
--                                            { torsh.randn(3, "f64"):requires_grad_(), torsh.randn(3, "f64") })
local torsh = require "torsh"
local M = {}

-- Deterministic output weights so the check covers every output element.
local function weights_like(y)
  local n = y:numel()
  local w = {}
  for i = 1, n do w[i] = 0.5 + 0.25 * math.sin(i * 1.7 + 0.3) end
  return torsh.tensor(w, "f64"):reshape(y:shape()):to(y:dtype())
end

--- gradcheck(fn, inputs, {eps=1e-6, atol=1e-5, rtol=1e-4}) -> true | false, message
--- fn(inputs...) returns a tensor; inputs that require grad are checked
--- element by element with central differences (use f64 inputs).
function M.gradcheck(fn, inputs, opts)
  opts = opts or {}
  local eps, atol, rtol = opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-4
  for _, x in ipairs(inputs) do if torsh.is_tensor(x) then x:set_grad(nil) end end
  local y = fn(table.unpack(inputs))
  if not y:requires_grad() then return false, "gradcheck: the output does not require grad" end
  local w = weights_like(y)
  y:backward(w)
  local function objective()
    return torsh.no_grad(function() return (fn(table.unpack(inputs)):to("f64") * w:to("f64")):sum():item() end)
  end
  for k, x in ipairs(inputs) do
    if torsh.is_tensor(x) and x:requires_grad() then
      local g = x:grad()
      local flat = x:numel()
      local shape = x:shape()
      for i = 0, flat - 1 do
        -- 1-based multi-index of flat position i
        local idx, rem = {}, i
        for d = #shape, 1, -1 do idx[d] = rem % shape[d] + 1; rem = rem // shape[d] end
        local orig = x:get(table.unpack(idx))
        torsh.no_grad(function() x:set(orig + eps, table.unpack(idx)) end)
        local fp = objective()
        torsh.no_grad(function() x:set(orig - eps, table.unpack(idx)) end)
        local fm = objective()
        torsh.no_grad(function() x:set(orig, table.unpack(idx)) end)
        local numeric = (fp - fm) / (2 * eps)
        local analytic = g and g:get(table.unpack(idx)) or 0
        if math.abs(numeric - analytic) > atol + rtol * math.abs(numeric) then
          return false, string.format("gradcheck: input %d at (%s): analytic %.10g, numeric %.10g",
            k, table.concat(idx, ","), analytic, numeric)
        end
      end
    end
  end
  return true
end

return M
