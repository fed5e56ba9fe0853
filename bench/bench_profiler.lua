-- bench_profiler.lua — what torsh.profiler costs, off and on:
--   1. per-op overhead: `c = a + b` on 1-element tensors (bench_core.lua's loop),
--      never profiled, after a profiling session (wrappers removed: "off"),
--      profiling with shapes and memory, and with Lua stacks too;
--   2. the Fashion-MNIST CNN training step (nn.zoo.fashion_cnn, Adam, batch 128,
--      random data through a DataLoader, as recipes/fashion_mnist.lua does):
--      steps with the profiler off, on, and on with Lua stacks.
-- The variants take turns (--rounds R), and each keeps its best round, so a busy
-- moment on a shared machine does not decide. Prints times and ratios to "off".
-- Usage: build/torsh bench/bench_profiler.lua [--threads N] [--rounds R] [--steps S] [--ops N]
local threads, rounds, steps, nops = 2, 3, 60, 200000
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

-- ms per step of `count` steps
local function train_steps(count)
  local done, t = 0, torsh.clock()
  while done < count do
    for _, xb, yb in loader:iter() do
      opt:zero_grad()
      local loss = torsh.cross_entropy(model:forward(xb), yb)
      loss:backward()
      opt:step()
      done = done + 1
      if done == count then break end
    end
  end
  return (torsh.clock() - t) / count * 1e3
end

train_steps(5)   -- warm-up
local step_ms = {}
local events = {}
local function keep(k, v) if not step_ms[k] or v < step_ms[k] then step_ms[k] = v end end
for _ = 1, rounds do
  collectgarbage()
  keep("off", train_steps(steps))
  profiler.start { record_shapes = true, profile_memory = true }
  keep("on", train_steps(steps))
  events.on = #profiler.stop().events
  collectgarbage()
  profiler.start { record_shapes = true, profile_memory = true, with_stack = true }
  keep("stack", train_steps(steps))
  events.stack = #profiler.stop().events
  P.clear()
  collectgarbage()
end
print(string.format("CNN training step (fashion_cnn, Adam, batch 128, %d threads; %d steps per round, best of %d):",
  threads, steps, rounds))
print(string.format("  profiler off              %.2f ms/step", step_ms.off))
print(string.format("  on: shapes + memory       %.2f ms/step  (%+.1f%%, %d events per round)", step_ms.on,
  100 * (step_ms.on / step_ms.off - 1), events.on))
print(string.format("  on: + Lua stacks          %.2f ms/step  (%+.1f%%, %d events per round)", step_ms.stack,
  100 * (step_ms.stack / step_ms.off - 1), events.stack))
