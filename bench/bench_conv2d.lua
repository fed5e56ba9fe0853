-- bench_conv2d.lua — conv2d speed, torsh against PyTorch (oneDNN) measured in
-- the same run with the same thread count: median ms per call after warm-up,
-- and the ratio (> 1: torsh is faster). The first case is the target shape:
-- N=8, 64->64 channels, 56x56, 3x3, padding 1, f32.
-- Usage (from the repository root): build/torsh bench/bench_conv2d.lua [--threads N]
local threads = 2
for i = 1, #arg do
  if arg[i] == "--threads" then threads = tonumber(arg[i + 1]) end
end
torsh.set_num_threads(threads)

-- name, input shape, weight shape, stride, padding (same list as bench_conv2d.py)
local cases = {
  { "3x3_64_56_n8", { 8, 64, 56, 56 }, { 64, 64, 3, 3 }, 1, 1 },
  { "1x1_64to256_56_n8", { 8, 64, 56, 56 }, { 256, 64, 1, 1 }, 1, 0 },
  { "3x3s2_64to128_56_n8", { 8, 64, 56, 56 }, { 128, 64, 3, 3 }, 2, 1 },
  { "7x7s2_3to64_224_n2", { 2, 3, 224, 224 }, { 64, 3, 7, 7 }, 2, 3 },
}

local function median_ms(fn, reps, warm)
  for _ = 1, warm do fn() end
  local ts = {}
  for r = 1, reps do
    local t = torsh.clock()
    fn()
    ts[r] = torsh.clock() - t
  end
  table.sort(ts)
  return ts[(reps + 1) // 2] * 1e3
end

local mine = {}
for _, c in ipairs(cases) do
  local name, xs, ws, stride, pad = table.unpack(c)
  local x, w, b = torsh.randn(xs), torsh.randn(ws), torsh.randn(ws[1])
  local opts = { stride = stride, padding = pad }
  -- `<close>` frees each result at once, as PyTorch's refcounting does
  mine[name] = median_ms(function() local y <close> = torsh.conv2d(x, w, b, opts) end, 20, 10)
end

local ref = {}
local p = assert(io.popen("/usr/bin/python3 bench/bench_conv2d.py " .. threads))
for k, v in p:read("a"):gmatch("(%S+) (%S+)") do ref[k] = tonumber(v) end
p:close()

local info = torsh.blas()
print(string.format("conv2d f32, %d threads, OpenBLAS kernel %s", threads, info and info.kernel or "?"))
print(string.format("%-24s %12s %12s %8s", "case", "torsh ms", "pytorch ms", "ratio"))
for _, c in ipairs(cases) do
  local name = c[1]
  local theirs = ref[name]
  print(string.format("%-24s %12.3f %12s %8s", name, mine[name], theirs and string.format("%.3f", theirs) or "n/a",
    theirs and string.format("%.2fx", theirs / mine[name]) or "n/a"))
end
