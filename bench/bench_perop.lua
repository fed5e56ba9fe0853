-- bench_perop.lua — the per-op overhead alone (`c = a + b` on 1-element
-- tensors, best of 5 rounds of 200k ops, us/op), quick enough to alternate
-- two builds of torsh and compare them (an A/B of a change to the binding or
-- the core's dispatch, e.g. the profiler hooks when no profiler runs):
--   git worktree add /tmp/old REV && cmake -S /tmp/old -B /tmp/old/build && cmake --build /tmp/old/build --target torsh_bin
--   for i in 1 2 3 4 5 6; do /tmp/old/build/torsh bench/bench_perop.lua; build/torsh bench/bench_perop.lua; done
-- (the PyTorch comparison of the same loop is in bench/bench_core.lua)
local threads = 2
for i = 1, #arg do
  if arg[i] == "--threads" then threads = tonumber(arg[i + 1]) end
end
torsh.set_num_threads(threads)
local a, b = torsh.ones(1), torsh.ones(1)
local best = math.huge
for _ = 1, 5 do
  local t = torsh.clock()
  for _ = 1, 200000 do local c = a + b end
  best = math.min(best, (torsh.clock() - t) / 200000 * 1e6)
end
print(string.format("per-op c = a + b: %.4f us (best of 5 rounds, %d threads)", best, threads))
