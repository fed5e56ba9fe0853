-- bench_train_step.lua — one training step (forward, cross-entropy, backward;
-- no optimizer) of the Fashion-MNIST recipe CNN, torsh against PyTorch run in
-- the same session (bench/bench_train_step.py) with the same shapes and thread
-- count: conv(1->32,3x3,pad1)-BN-ReLU-maxpool2, conv(32->64,3x3,pad1)-BN-ReLU-
-- maxpool2, flatten, linear(3136->128)-ReLU, linear(128->10), batch 128,
-- 28x28 inputs. The two take turns (3 rounds of 20 steps by default) so that
-- on a shared machine they meet the same load. Prints the median and minimum
-- ms per step of both and the ratios (torsh / PyTorch; the target is <= 0.8;
-- when other processes compete for the cores the minimum is the steadier
-- figure), then a per-op breakdown of torsh's
-- step: each op's forward alone and its backward (forward + backward minus
-- forward), on the shapes it sees in the model (minimum ms of 10).
-- The model is built from the functional ops with leaf tensors, so it does not
-- depend on torsh.nn.
-- Usage (from the repository root):
--   build/torsh bench/bench_train_step.lua [--threads N] [--reps N] [--rounds N] [--no-torch]
local threads, reps, rounds, torch_too = 2, 20, 3, true
for i = 1, #arg do
  if arg[i] == "--threads" then threads = tonumber(arg[i + 1]) end
  if arg[i] == "--reps" then reps = tonumber(arg[i + 1]) end
  if arg[i] == "--rounds" then rounds = tonumber(arg[i + 1]) end
  if arg[i] == "--no-torch" then torch_too = false end
end
torsh.set_num_threads(threads)
torsh.manual_seed(0)

local function param(scale, ...) return (torsh.randn(...) * scale):requires_grad_() end

local P = {
  c1w = param(0.1, 32, 1, 3, 3), c1b = param(0.1, 32), bn1w = param(0.1, 32), bn1b = param(0.1, 32),
  c2w = param(0.05, 64, 32, 3, 3), c2b = param(0.1, 64), bn2w = param(0.1, 64), bn2b = param(0.1, 64),
  f1w = param(0.02, 128, 3136), f1b = param(0.1, 128), f2w = param(0.1, 10, 128), f2b = param(0.1, 10),
}
local rm1, rv1, rm2, rv2 = torsh.zeros(32), torsh.ones(32), torsh.zeros(64), torsh.ones(64)
local x = torsh.randn(128, 1, 28, 28)
local target = torsh.randint(0, 10, { 128 }):to("i64")
local pad1 = { padding = 1 }

local function step()
  for _, p in pairs(P) do p:set_grad(nil) end
  local h = torsh.conv2d(x, P.c1w, P.c1b, pad1)
  h = torsh.batch_norm_train(h, P.bn1w, P.bn1b, rm1, rv1, 0.1, 1e-5)
  h = torsh.max_pool2d(h:relu(), 2)
  h = torsh.conv2d(h, P.c2w, P.c2b, pad1)
  h = torsh.batch_norm_train(h, P.bn2w, P.bn2b, rm2, rv2, 0.1, 1e-5)
  h = torsh.max_pool2d(h:relu(), 2)
  h = h:flatten(2)
  h = torsh.linear(h, P.f1w, P.f1b):relu()
  h = torsh.linear(h, P.f2w, P.f2b)
  local loss = torsh.cross_entropy(h, target)
  loss:backward()
  return loss
end

-- Times of n calls after warm-up, in ms, appended to `into`.
local function times_ms(fn, n, warm, into)
  for _ = 1, warm do fn() end
  for _ = 1, n do
    local t = torsh.clock()
    fn()
    into[#into + 1] = (torsh.clock() - t) * 1e3
  end
  return into
end

-- Median and minimum of a list of times.
local function stats(ts)
  table.sort(ts)
  return ts[(#ts + 1) // 2], ts[1]
end

-- torsh and PyTorch take turns (`rounds` of `reps` steps each), so that on a
-- shared machine both meet the same load; the medians and minima are over
-- all steps (PyTorch: the median of its rounds' medians, the least minimum).
local mine, tmeds, tmins = {}, {}, {}
for _ = 1, rounds do
  times_ms(step, reps, 3, mine)
  if torch_too then
    local p = io.popen(string.format("/usr/bin/python3 bench/bench_train_step.py %d %d", threads, reps))
    local out = p and p:read("a") or ""
    if p then p:close() end
    local m, b = out:match("step (%S+) (%S+)")
    if m then tmeds[#tmeds + 1], tmins[#tmins + 1] = tonumber(m), tonumber(b) end
  end
end
local med, best = stats(mine)
local tmed, tbest
if #tmeds > 0 then
  tmed = stats(tmeds)
  local _, b = stats(tmins)
  tbest = b
end

local info = torsh.blas and torsh.blas()
print(string.format("CNN training step (batch 128, forward + cross-entropy + backward), %d threads%s", threads,
  info and info.kernel and (", OpenBLAS kernel " .. info.kernel) or ""))
print(string.format("%-12s %12s %12s", "", "median ms", "min ms"))
print(string.format("%-12s %12.2f %12.2f", "torsh", med, best))
if tmed then
  print(string.format("%-12s %12.2f %12.2f", "pytorch", tmed, tbest))
  print(string.format("%-12s %12.2f %12.2f   (torsh / pytorch; target <= 0.80)", "ratio", med / tmed, best / tbest))
else
  print("pytorch      not run" .. (torch_too and " (could not run /usr/bin/python3 bench/bench_train_step.py)" or " (--no-torch)"))
end

-- ---- per-op breakdown ------------------------------------------------------------------
-- Inputs shaped as in the model; `grads` says which of them require grad.
-- Leaves made by the op functions; each timed call frees its own at the end, as
-- PyTorch's reference counting would (otherwise they wait for the Lua GC).
local made = {}
local function leaf(t, on)
  if on then t:requires_grad_() end
  made[#made + 1] = t
  return t
end
local function free_made()
  for i = #made, 1, -1 do
    made[i]:set_grad(nil)
    made[i]:free()
    made[i] = nil
  end
end
local h1 = torsh.randn(128, 32, 28, 28)
local p1 = torsh.randn(128, 32, 14, 14)
local h2 = torsh.randn(128, 64, 14, 14)
local flat = torsh.randn(128, 3136)
local ops = {
  { "conv1 1->32 28x28", function(g) return torsh.conv2d(x, leaf(P.c1w:detach(), g), leaf(P.c1b:detach(), g), pad1) end },
  { "bn1 train", function(g) return torsh.batch_norm_train(leaf(h1:detach(), g), leaf(P.bn1w:detach(), g), leaf(P.bn1b:detach(), g), rm1, rv1, 0.1, 1e-5) end },
  { "relu1", function(g) return leaf(h1:detach(), g):relu() end },
  { "maxpool1", function(g) return torsh.max_pool2d(leaf(h1:detach(), g), 2) end },
  { "conv2 32->64 14x14", function(g) return torsh.conv2d(leaf(p1:detach(), g), leaf(P.c2w:detach(), g), leaf(P.c2b:detach(), g), pad1) end },
  { "bn2 train", function(g) return torsh.batch_norm_train(leaf(h2:detach(), g), leaf(P.bn2w:detach(), g), leaf(P.bn2b:detach(), g), rm2, rv2, 0.1, 1e-5) end },
  { "relu2", function(g) return leaf(h2:detach(), g):relu() end },
  { "maxpool2", function(g) return torsh.max_pool2d(leaf(h2:detach(), g), 2) end },
  { "linear 3136->128", function(g) return torsh.linear(leaf(flat:detach(), g), leaf(P.f1w:detach(), g), leaf(P.f1b:detach(), g)) end },
  { "cross_entropy", function(g) return torsh.cross_entropy(leaf(torsh.randn(128, 10), g), target) end },
}
print(string.format("\n%-22s %10s %10s", "torsh op", "fwd ms", "bwd ms"))
local total = 0
for _, o in ipairs(ops) do
  local name, fn = o[1], o[2]
  local _, fwd = stats(times_ms(function()
    local y <close> = fn(false)
    free_made()
  end, 10, 2, {}))
  local gy
  local _, both = stats(times_ms(function()
    local y <close> = fn(true)
    gy = gy or torsh.ones(y:shape())
    y:backward(y:dim() == 0 and nil or gy)
    free_made()
  end, 10, 2, {}))
  total = total + both
  print(string.format("%-22s %10.2f %10.2f", name, fwd, both - fwd))
end
print(string.format("%-22s %21.2f  (forward + backward of the listed ops; linear 128->10, flatten and the", "sum", total))
print(string.format("%-22s %21s   gradient accumulation into the leaves are not listed)", "", ""))
