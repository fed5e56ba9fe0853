-- bench_fashion.lua — time per epoch and peak memory of the Fashion-MNIST
-- recipes (CNN and MLP), torsh against PyTorch (bench/reference_fashion.py:
-- same model, data, normalisation, Adam, batch 128, threads), run one after
-- the other in the same session. Peak memory is the peak RSS of each whole
-- process (GNU time). Ratio = torsh time / PyTorch time (lower is better).
-- Usage: build/torsh bench/bench_fashion.lua [--epochs N] [--threads N] [--model cnn|mlp|both] [--build DIR]
local epochs, threads, which, build = 1, 2, "both", "build"
for i = 1, #arg do
  if arg[i] == "--epochs" then epochs = tonumber(arg[i + 1]) end
  if arg[i] == "--threads" then threads = tonumber(arg[i + 1]) end
  if arg[i] == "--model" then which = arg[i + 1] end
  if arg[i] == "--build" then build = arg[i + 1] end
end

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return out
end

local function torsh_run(model)
  local metrics = os.tmpname()
  local out = run(string.format("/usr/bin/time -f 'peak_rss_kb %%M' %s/torsh recipes/fashion_mnist.lua --model %s --epochs %d --threads %d --metrics %s",
    build, model, epochs, threads, metrics))
  local secs, acc = {}, nil
  for line in io.lines(metrics) do
    secs[#secs + 1] = tonumber(line:match('"seconds":([%d.e+-]+)'))
    acc = tonumber(line:match('"test_accuracy":([%d.e+-]+)'))
  end
  os.remove(metrics)
  return { seconds = secs, accuracy = acc, rss = tonumber(out:match("peak_rss_kb (%d+)")) / 1024 }
end

local function torch_run(model)
  local out = run(string.format("/usr/bin/time -f 'peak_rss_kb %%M' /usr/bin/python3 bench/reference_fashion.py --model %s --epochs %d --threads %d",
    model, epochs, threads))
  local secs, acc = {}, nil
  for s, a in out:gmatch('"seconds": ([%d.e+-]+), "test_accuracy": ([%d.e+-]+)') do
    secs[#secs + 1] = tonumber(s)
    acc = tonumber(a)
  end
  return { seconds = secs, accuracy = acc, rss = tonumber(out:match("peak_rss_kb (%d+)")) / 1024 }
end

local function median(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  return c[(#c + 1) // 2]
end

print(string.format("Fashion-MNIST, %d epoch(s), batch 128, %d threads", epochs, threads))
print(string.format("%-5s %-8s %12s %10s %10s", "model", "side", "s/epoch", "test acc", "peak MB"))
local models = which == "both" and { "mlp", "cnn" } or { which }
for _, model in ipairs(models) do
  local t = torsh_run(model)
  local p = torch_run(model)
  local ts, ps = median(t.seconds), median(p.seconds)
  print(string.format("%-5s %-8s %12.2f %10.4f %10.0f", model, "torsh", ts, t.accuracy, t.rss))
  print(string.format("%-5s %-8s %12.2f %10.4f %10.0f", model, "pytorch", ps, p.accuracy, p.rss))
  print(string.format("%-5s ratio time %.2fx, peak memory %.2fx (torsh / PyTorch)", model, ts / ps, t.rss / p.rss))
end
