-- test_model.lua — torsh.model and torsh.jit: tracing torsh.nn models into
-- graphs that the executor runs (same outputs as the module at any batch
-- size), graphs built by hand through torsh._graph, the .torsh model format
-- (save / mmap load / run), inspect's counting rules, ONNX export/import
-- round trips, Lua custom ops, and the errors for bad files and arguments.
local T = require "torsh.test"
local torsh = require "torsh"
local model = torsh.model
local nn = torsh.nn

local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p '" .. tmpdir .. "'"))
local function tmp(name) return tmpdir .. "/" .. name end

local function list(t) return table.concat(t, ",") end
local function max_diff(a, b) return (a:to("f64") - b:to("f64")):abs():max():item() end

torsh.manual_seed(0)

T.case("trace fashion_cnn: graph output equals the module's at batch 1 and 5", function()
  local m = nn.zoo.fashion_cnn()
  m:eval()
  local g = torsh.jit.trace(m, torsh.randn(1, 1, 28, 28))
  for _, b in ipairs { 1, 5 } do
    local x = torsh.randn(b, 1, 28, 28)
    local want = torsh.no_grad(function() return m(x) end)
    local got = g:run(x)
    T.eq(list(got:shape()), list(want:shape()))
    T.ok(max_diff(got, want) < 1e-5, "max diff " .. max_diff(got, want))
  end
  local ops = {}
  for _, n in ipairs(g:nodes()) do ops[n.op] = true end
  T.ok(ops.Conv and ops.Relu, "Conv and Relu nodes")
  T.eq(g:value("input").shape[1], "N")
end)

T.case("trace mlp and resnet18 (BatchNorm, residual adds, pooling)", function()
  local mlp = nn.zoo.mlp { sizes = { 20, 16, 4 } }
  local g = torsh.jit.trace(mlp, torsh.randn(3, 20))
  local x = torsh.randn(7, 20)
  T.ok(max_diff(g:run(x), torsh.no_grad(function() return mlp(x) end)) < 1e-5)
  local r = nn.zoo.resnet18 { num_classes = 10 }
  r:eval()
  local gr = torsh.jit.trace(r, torsh.randn(1, 3, 64, 64))
  local xr = torsh.randn(2, 3, 64, 64)
  local d = max_diff(gr:run(xr), torsh.no_grad(function() return r(xr) end))
  T.ok(d < 1e-4, "resnet18 traced max diff " .. d)
  -- node names come from the module paths
  local names = {}
  for _, n in ipairs(gr:nodes()) do names[n.name] = n.op end
  T.eq(names["layer1.0.conv1"], "Conv")
end)

T.case("trace a TransformerEncoderLayer (attention: matmul, softmax, layer norm)", function()
  local layer = nn.TransformerEncoderLayer(16, 2, { dim_feedforward = 32, dropout = 0 })
  layer:eval()
  local g = torsh.jit.trace(layer, torsh.randn(2, 5, 16))
  local x = torsh.randn(3, 5, 16)
  local d = max_diff(g:run(x), torsh.no_grad(function() return layer(x) end))
  T.ok(d < 1e-4, "encoder layer max diff " .. d)
end)

T.case("inspect counts params like PyTorch (BN running stats are buffers) and FLOPs", function()
  local m = nn.zoo.fashion_cnn()
  local mm = model.from_module(m, torsh.randn(1, 1, 28, 28))
  local rep = mm:inspect()
  T.eq(rep.params, m:num_parameters())
  T.ok(rep.flops and rep.flops > 0, "flops known")
  T.ok(rep.peak_activation_bytes and rep.peak_activation_bytes > 28 * 28 * 4, "peak activation memory")
  T.eq(rep.inputs[1].shape[1], "N")     -- the symbol is kept; shapes inside are for batch 1
  local r = nn.zoo.resnet18()
  local rr = model.from_module(r, torsh.randn(1, 3, 224, 224)):inspect()
  T.eq(rr.params, 11689512)
  T.ok(rr.buffers == 4800 * 2, "running mean/var: " .. rr.buffers)   -- 4800 BN channels in ResNet-18
  T.ok(math.abs(rr.flops / 1e9 - 3.64) < 0.05, "resnet18 GFLOPs " .. rr.flops / 1e9)
  -- a Linear: 2 * in * out multiply-adds + out bias adds
  local lin = nn.Linear(100, 10)
  local lr = model.from_module(lin, torsh.randn(1, 100)):inspect()
  T.ok(lr.flops >= 2000 and lr.flops <= 2010, "linear flops " .. lr.flops)
end)

T.case(".torsh model: save, load by mmap, run; metadata and producer kept", function()
  local m = nn.zoo.fashion_cnn()
  local mm = model.from_module(m, torsh.randn(1, 1, 28, 28))
  mm:save(tmp("cnn.torsh"))
  local back = model.load(tmp("cnn.torsh"))
  T.eq(back.format, "torsh")
  local x = torsh.randn(4, 1, 28, 28)
  T.ok(max_diff(back:run(x), mm:run(x)) == 0, "same outputs after reload")
  T.eq(back:info().producer, "torsh")
  T.eq(back:inputs()[1].shape[1], "N")
  T.eq(back:inspect().params, m:num_parameters())
end)

T.case("ONNX export and import round trip", function()
  local m = nn.zoo.fashion_cnn()
  local mm = model.from_module(m, torsh.randn(1, 1, 28, 28))
  mm:save(tmp("cnn.onnx"))
  local back = model.load(tmp("cnn.onnx"))
  T.eq(back.format, "onnx")
  local x = torsh.randn(3, 1, 28, 28)
  T.ok(max_diff(back:run(x), mm:run(x)) < 1e-6)
  T.eq(back:info().opsets[""], 17)
end)

T.case("graphs by hand, symbolic shapes, inference, run_all", function()
  local G = torsh._graph
  local g = G.new("hand")
  g:add_input("x", "f32", { "N", 3 })
  g:set_const("w", torsh.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }))
  g:add_node("Gemm", { "x", "w" }, { "y" }, { transB = 1 }, "fc")
  g:add_node("Relu", { "y" }, { "z" })
  g:add_output("z")
  g:infer()
  T.eq(list(g:value("z").shape), list { "N", 2 })
  T.eq(g:value("z").dtype, "f32")
  g:infer { N = 4 }
  T.eq(list(g:value("z").shape), list { 4, 2 })
  g:infer()                                   -- back to symbolic shapes: any batch runs
  T.eq(list(g:value("z").shape), list { "N", 2 })
  local out = g:run(torsh.tensor({ { 1, 0, 0 }, { -1, 0, 0 } }, "f32"))
  T.close(out, { { 1, 4 }, { 0, 0 } })
  local all = g:run_all(torsh.tensor({ { 1, 1, 1 } }, "f32"))
  T.close(all.y, { { 6, 15 } })
  T.eq(#g, 2)
  T.eq(g:node(1).attrs.transB, 1)
end)

T.case("a custom op written in Lua runs inside the graph", function()
  model.register_op("TimesTwoPlus", function(node, x)
    return x * 2 + node.attrs.plus
  end, { domain = "test.torsh" })
  local G = torsh._graph
  local g = G.new("custom")
  g:set_opset("test.torsh", 1)
  g:add_input("x", "f32", { 3 })
  g:add_node("TimesTwoPlus", { "x" }, { "y" }, { plus = 1.5 }, "t2", "test.torsh")
  g:add_node("Relu", { "y" }, { "z" })
  g:add_output("z")
  g:infer()
  T.eq(list(g:value("y").shape), list { 3 })
  T.close(g:run(torsh.tensor({ -3, 0, 1 }, "f32")), { 0, 1.5, 3.5 })
end)

T.case("unknown ops are listed with the node name and the supported ops", function()
  local G = torsh._graph
  local g = G.new("bad")
  g:add_input("x", "f32", { 2 })
  g:add_node("FancyOp", { "x" }, { "y" }, nil, "my_node")
  g:add_output("y")
  local err = T.raises(function() g:run(torsh.ones(2)) end, "node 'my_node' (FancyOp): no kernel for op FancyOp")
  T.ok(tostring(err):find("Relu", 1, true), "lists the supported ops")
end)

T.case("bad files and arguments: clear errors", function()
  T.raises(function() model.load(tmp("missing.onnx")) end, "missing.onnx")
  local f = assert(io.open(tmp("junk.bin"), "wb"))
  f:write("hello world, not a model")
  f:close()
  T.raises(function() model.load(tmp("junk.bin")) end, "unknown model format")
  local sd = nn.zoo.fashion_cnn():state_dict()
  torsh.save(sd, tmp("w.torsh"))
  T.raises(function() model.load(tmp("w.torsh")) end, "no graph; pass an architecture")
  T.raises(function() model.load(tmp("w.torsh"), { arch = "no_such_net" }) end, "unknown architecture 'no_such_net'")
  local m = model.load(tmp("w.torsh"), { arch = "fashion_cnn" })
  T.eq(list(m:run(torsh.zeros(2, 1, 28, 28)):shape()), list { 2, 10 })
  local g = torsh.jit.trace(nn.zoo.fashion_cnn(), torsh.randn(1, 1, 28, 28))
  T.raises(function() g:run(torsh.randn(1, 3, 28, 28)) end, "input")
  T.raises(function() g:run() end, "takes 1 input")
end)

T.case("Lua kernels: errors of any kind come back as messages; re-registering swaps the function", function()
  local G = torsh._graph
  local function graph(op)
    local g = G.new("k")
    g:add_input("x", "f32", { 2 })
    g:add_node(op, { "x" }, { "y" }, nil, "n", "test.k")
    g:add_output("y")
    return g
  end
  model.register_op("Twice", function(_, x) return x * 2 end, { domain = "test.k" })
  local g = graph("Twice")
  T.close(g:run(torsh.ones(2)), { 2, 2 })
  model.register_op("Twice", function(_, x) return x * 3 end, { domain = "test.k" })
  T.close(g:run(torsh.ones(2)), { 3, 3 })        -- the cached executor sees the new function
  model.register_op("Bad1", function() error({}) end, { domain = "test.k" })
  T.raises(function() graph("Bad1"):run(torsh.ones(2)) end, "error object is a table")
  model.register_op("Bad2", function() local t = torsh.ones(2); t:free(); return t end, { domain = "test.k" })
  T.raises(function() graph("Bad2"):run(torsh.ones(2)) end, "freed")
  model.register_op("Bad3", function() return 42 end, { domain = "test.k" })
  T.raises(function() graph("Bad3"):run(torsh.ones(2)) end, "result 1 is a number, not a tensor")
  local g4
  model.register_op("Meddle", function(_, x) g4:set_opset("", 17); return x end, { domain = "test.k" })
  g4 = graph("Meddle")
  T.raises(function() g4:run(torsh.ones(2)) end, "cannot change or free a graph while it runs")
  T.close(g:run(torsh.ones(2)), { 3, 3 })        -- still usable
end)

T.case("add_node checks every attribute before adding the node", function()
  local G = torsh._graph
  local g = G.new("attrs")
  g:add_input("x", "f32", { 2 })
  T.raises(function() g:add_node("LeakyRelu", { "x" }, { "y" }, { alpha = { 1, "a" } }) end, "alpha")
  T.eq(#g, 0)
  T.raises(function() g:add_node("LeakyRelu", { "x" }, { "y" }, { alpha = { k = 1 } }) end, "not a map")
  T.raises(function() g:add_node("LeakyRelu", { "x" }, { "y" }, { alpha = io.stdout }) end, "unsupported type")
  T.raises(function() g:add_node("Relu", { "x" }, {}) end, "has no outputs")
  g:add_node("LeakyRelu", { "x" }, { "y" }, { alpha = 0.5 })
  T.eq(#g, 1)
end)

T.case("the trace's self-check catches an op it does not record", function()
  local M = nn.Module:extend("SinNet")
  function M:forward(x) return x:sin() * 2 end
  T.raises(function() torsh.jit.trace(M(), torsh.randn(4)) end, "does not record")
end)

os.execute("rm -rf '" .. tmpdir .. "'")
T.finish()
