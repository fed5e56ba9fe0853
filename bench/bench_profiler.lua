-- bench_profiler.lua — what torsh.profiler costs, off and on:
--   1. per-op overhead: `c = a + b` on 1-element tensors (bench_core.lua's loop),
--      never profiled, after a profiling session (wrappers removed: "off"),
--      profiling with shapes and memory, and with Lua stacks too;
--   2. the Fashion-MNIST CNN training step (nn.zoo.fashion_cnn, Adam, batch 128,
--      random data through a DataLoader, as recipes/fashion_mnist.lua does):
--      steps with the profiler off, on, and on with Lua stacks (median and
--      minimum of the single steps).
-- The variants take turns (--rounds R; the CNN variants in a rotating order), so
-- a busy moment on a shared machine does not decide: the per-op loop keeps each
-- variant's best round, the CNN prints the median and the minimum step. Prints
-- times and ratios to "off".
-- Usage: build/torsh bench/bench_profiler.lua [--threads N] [--rounds R] [--steps S] [--ops N]
local threads, rounds, steps, nops = 2, 5, 20, 200000
for i = 1, #arg do
  if arg[i] == "--threads" then threads = tonumber(arg[i + 1]) end
  if arg[i] == "--rounds" then rounds = tonumber(arg[i + 1]) end
  if arg[i] == "--steps" then steps = tonumber(arg[i + 1]) end
  if arg[i] == "--ops" then nops = tonumber(arg[i + 1]) end
end
torsh.set_num_threads(threads)
local profiler = torsh.profiler
local nn, optim, data = require "torsh.nn", require "torsh.optim", require "torsh.data"

local function median(t)
  local s = table.move(t, 1, #t, 1, {})
  table.sort(s)
  return s[(#s + 1) // 2]
end

-- ---- 1. per-op overhead -------------------------------------------------------------------
local x, y = torsh.ones(1), torsh.ones(1)
local function op_loop()
  local reps = {}
  for r = 1, 5 do
    local t = torsh.clock()
    for _ = 1, nops do local c = x + y end
    reps[r] = (torsh.clock() - t) / nops * 1e6
  end
  return median(reps)
end

-- The recorder is driven through torsh._prof directly here, so no Profile
-- (a Lua table per event) is built between the timed loops.
local P = torsh._prof
local per_op = {}
local function keep_min(k, v) if not per_op[k] or v < per_op[k] then per_op[k] = v end end
for _ = 1, rounds do
  collectgarbage()
  keep_min("never", op_loop())
  -- a ring large enough that no event is dropped; cleared after each session
  P.start { max_events = 6 * nops, record_shapes = true, profile_memory = true }
  keep_min("on", op_loop())
  P.stop(); P.clear(); collectgarbage()
  keep_min("off", op_loop())
  P.start { max_events = 6 * nops, record_shapes = true, profile_memory = true, with_stack = true }
  keep_min("stack", op_loop())
  P.stop(); P.clear(); collectgarbage()
end
print(string.format("per-op overhead (c = a + b, 1-element tensors, %d threads, best of %d rounds):", threads, rounds))
print(string.format("  never profiled            %.3f us/op", per_op.never))
print(string.format("  profiler off (after stop) %.3f us/op  (%.2f%% vs never)", per_op.off,
  100 * (per_op.off / per_op.never - 1)))
print(string.format("  on: shapes + memory       %.3f us/op  (x%.2f)", per_op.on, per_op.on / per_op.off))
print(string.format("  on: + Lua stacks          %.3f us/op  (x%.2f)", per_op.stack, per_op.stack / per_op.off))

-- ---- 2. the CNN training step ---------------------------------------------------------------
torsh.manual_seed(0)
local n = 128 * 16
local images = torsh.randn(n, 1, 28, 28)
local labels = torsh.randint(0, 10, { n }):to("i64")
local loader = data.DataLoader(data.TensorDataset(images, labels), { batch_size = 128, shuffle = true, seed = 1 })
local model = nn.zoo.fashion_cnn()
local opt = optim.Adam(model:parameters(), { lr = 1e-3 })

-- Appends the ms of each of `count` steps (data fetch included) to `into`.
local function train_steps(count, into)
  local done = 0
  while done < count do
    local t = torsh.clock()
    for _, xb, yb in loader:iter() do
      opt:zero_grad()
      local loss = torsh.cross_entropy(model:forward(xb), yb)
      loss:backward()
      opt:step()
      done = done + 1
      local now = torsh.clock()
      if into then into[#into + 1] = (now - t) * 1e3 end
      t = now
      if done == count then break end
    end
  end
end

local function min(t) local m = math.huge for _, v in ipairs(t) do if v < m then m = v end end return m end

train_steps(5)   -- warm-up
local times = { off = {}, on = {}, stack = {} }
local events = {}
local variants = {
  off = function() train_steps(steps, times.off) end,
  on = function()
    profiler.start { record_shapes = true, profile_memory = true }
    train_steps(steps, times.on)
    events.on = #profiler.stop().events
  end,
  stack = function()
    profiler.start { record_shapes = true, profile_memory = true, with_stack = true }
    train_steps(steps, times.stack)
    events.stack = #profiler.stop().events
  end,
}
-- the order turns each round, so no variant always follows the same one
local order = { "off", "on", "stack" }
for r = 1, rounds do
  for i = 0, 2 do
    collectgarbage()
    variants[order[(r + i) % 3 + 1]]()
  end
  P.clear()
end
print(string.format("CNN training step (fashion_cnn, Adam, batch 128, %d threads; %d rounds of %d steps per variant):",
  threads, rounds, steps))
local m_off, d_off = median(times.off), min(times.off)
print(string.format("  profiler off              median %.2f ms/step, min %.2f", m_off, d_off))
for _, k in ipairs { "on", "stack" } do
  local m, d = median(times[k]), min(times[k])
  print(string.format("  %-25s median %.2f ms/step (%+.1f%%), min %.2f (%+.1f%%); %d events per %d steps",
    k == "on" and "on: shapes + memory" or "on: + Lua stacks", m, 100 * (m / m_off - 1), d, 100 * (d / d_off - 1),
    events[k], steps))
end
