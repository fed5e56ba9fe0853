-- bench_model.lua — model inference and loading, torsh against PyTorch measured
-- in the same run with the same threads (ratios > 1: torsh is faster):
--  * torchvision ResNet-18 (exported to ONNX by PyTorch) run by torsh's graph
--    executor vs PyTorch eager, batch 1 and 8, median ms after warm-up;
--  * opening resnet18.torsh ready to run (load + first inference-ready graph)
--    vs torch.load of the same weights as .pt;
--  * torsh.load of the same .pt (zip CRCs checked, and not) vs torch.load;
--  * converting .pt -> .torsh: MB/s of tensor data.
-- Usage (from the repository root): build/torsh bench/bench_model.lua [--threads N]
local threads = 2
for i = 1, #arg do
  if arg[i] == "--threads" then threads = tonumber(arg[i + 1]) end
end
torsh.set_num_threads(threads)

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))

local ref = {}
local p = assert(io.popen(("/usr/bin/python3 bench/bench_model.py '%s' %d"):format(dir, threads)))
for k, v in p:read("a"):gmatch("(%S+) (%S+)") do ref[k] = tonumber(v) end
p:close()
assert(ref.latency_b1, "the PyTorch side failed (is python3-torch installed?)")

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

local model = torsh.model
local m = model.load(dir .. "/resnet18.onnx")
local mine = {}
for _, c in ipairs { { 1, 20 }, { 8, 6 } } do
  local x = torsh.randn(c[1], 3, 224, 224)
  mine["latency_b" .. c[1]] = median_ms(function() local y <close> = m:run(x) end, c[2], 3)
end

-- .pt -> .torsh conversion throughput (tensor bytes / wall time; median of 5;
-- the .pt's zip CRCs are checked, the .torsh is checksummed, written and fsync'ed)
local bytes = 0
local conv_s = median_ms(function()
  local sd, names = model.load_weights(dir .. "/resnet18.pt")
  torsh.save(sd, dir .. "/weights.torsh", { keys = names })
  if bytes == 0 then for _, n in ipairs(names) do bytes = bytes + sd[n]:numel() * 4 end end
end, 5, 0) / 1e3
collectgarbage()

mine.load_pt = median_ms(function() local sd = torsh.load(dir .. "/resnet18.pt") end, 11, 2)
mine.load_pt_noverify = median_ms(function() local sd = torsh.load(dir .. "/resnet18.pt", { verify = false }) end, 11, 2)
collectgarbage()

m:save(dir .. "/resnet18.torsh")
mine.load_torsh = median_ms(function()
  local mm = model.load(dir .. "/resnet18.torsh")
  mm.graph:free()
end, 21, 2)

print(string.format("ResNet-18 (torchvision, random weights), f32, %d threads", threads))
print(string.format("%-34s %12s %12s %8s", "case", "torsh ms", "pytorch ms", "ratio"))
local function row(name, label, ref_name)
  local theirs = ref[ref_name or name]
  print(string.format("%-34s %12.2f %12.2f %7.2fx", label, mine[name], theirs, theirs / mine[name]))
end
row("latency_b1", "inference batch 1 (onnx graph)")
row("latency_b8", "inference batch 8 (onnx graph)")
row("load_torsh", "open .torsh vs torch.load .pt", "load_pt")
row("load_pt", "torsh.load .pt vs torch.load .pt")
row("load_pt_noverify", "  the same, {verify = false}", "load_pt")
print(string.format("open .torsh / torch.load time: %.3f (target <= 0.2)", mine.load_torsh / ref.load_pt))
-- what the first m:run adds on top: the optimized clone (conv+bn folding,
-- fusion, Winograd weight prepacking), done once per opened model
local prep = median_ms(function()
  local mm = model.load(dir .. "/resnet18.torsh")
  mm:exec_graph()
end, 5, 1)
print(string.format("open .torsh + prepare the optimized graph: %.2f ms (%.2fx torch.load)", prep, prep / ref.load_pt))
print(string.format("convert .pt -> .torsh: %.1f MB in %.3f s = %.0f MB/s (target >= 500)", bytes / 1e6, conv_s, bytes / 1e6 / conv_s))
os.execute("rm -rf '" .. dir .. "'")
