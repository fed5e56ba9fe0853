-- test_autograd_index.lua — gradients of the indexing, joining and
-- sort-family ops: one finite-difference gradcheck (f64) per op and option
-- (dims, negative dims, split sizes, pad modes, k of topk, ...), PyTorch's
-- results where the gradient is a choice (ties in max/min/sort/topk) or
-- must match exactly (embedding with repeated ids, cumprod through zeros),
-- and the big-input paths of the index-add kernel (thread-count
-- independence, agreement with a one-hot matmul).
local torsh = require "torsh"
local T = require "torsh.test"
local gradcheck = torsh.autograd.gradcheck

torsh.manual_seed(11)
local function leaf(...) return torsh.randn(...):to("f64"):requires_grad_() end
local function const(...) return torsh.randn(...):to("f64") end
local function check(name, fn, inputs, opts)
  local ok, err = gradcheck(fn, inputs, opts)
  if not ok then error(name .. ": " .. err, 2) end
end
-- a non-trivial weight so gradients that only sum outputs are not enough
local function weigh(y) return y * (torsh.arange(y:numel()):reshape(y:shape()):to("f64") + 1):sin() end

-- PyTorch's results (tests/fixtures/gen_autograd_index.py prints this table)
local REF = {
  embedding = { { -2.5, -2, -1.5 }, { 0, 0, 0 }, { 1.5, 2.25, 3 }, { 0, 0, 0 }, { 0.25, 0.5, 0.75 } },
  cumprod_x = { { 2, 0, 3, 0.5, -1 }, { 0, 2, 0, 4, 1.5 } },
  cumprod_g = { { 1, -0.5, 2, 0.25, 1 }, { 0.5, 1, -1, 2, 0.75 } },
  cumprod_dx = { { 1, 8.75, 0, 0, 0 }, { 2.5, 0, 0, 0, 0 } },
  cumprod_dx_dim0 = { { 1, 1.5, 2, 8.25, 2.125 }, { 1, 0, -3, 1, -0.75 } },
  ties_x = { { 1, 3, 3, 0 }, { 2, 2, -1, 2 }, { -1, -1, -1, -1 } },
  max_ties_dx = { { 0, 1, 0, 0 }, { 2, 0, 0, 0 }, { 3, 0, 0, 0 } },
  min_ties_dx = { { 0, 0, 0, 1 }, { 0, 0, 2, 0 }, { 3, 0, 0, 0 } },
  sort_ties_dx = { { 2, 3, 4, 1 }, { 6, 7, 5, 8 }, { 9, 10, 11, 12 } },
  sort_desc_ties_dx = { { 3, 1, 2, 4 }, { 5, 6, 8, 7 }, { 9, 10, 11, 12 } },
  topk2_dx = { { 0, 10, 1, 0 }, { 0, 20, 0, 2 }, { 0, 0, 30, 3 } },
  topk_x_shift = { 0, 0.125, 0.25, 0.375 },
}

local function with_threads(n, fn)
  local old = torsh.get_num_threads()
  torsh.set_num_threads(n)
  local ok, r = pcall(fn)
  torsh.set_num_threads(old)
  if not ok then error(r, 0) end
  return r
end

-- ---- indexing -------------------------------------------------------------------------

T.case("index_select", function()
  local idx = torsh.tensor({ 2, 0, 2, 1, 2 }, "i64")
  check("dim 1", function(a) return a:index_select(1, idx) end, { leaf(3, 4) })
  check("dim 2", function(a) return a:index_select(2, idx) end, { leaf(2, 3, 2) })
  check("dim -1", function(a) return weigh(a:index_select(-1, idx)) end, { leaf(2, 4, 3) })
  check("i32 index, table index", function(a)
    return a:index_select(2, idx:to("i32")) + a:index_select(2, { 1, 1 }):sum()
  end, { leaf(3, 3) })
  check("0-dim index", function(a) return a:index_select(1, torsh.tensor(1, "i64")) end, { leaf(3, 2) })
  check("strided input", function(a) return weigh(a:t():index_select(1, idx)) end, { leaf(2, 3) })
  check("0-dim input", function(a) return a:index_select(1, { 0 }) * 3 end, { torsh.tensor(1.5, "f64"):requires_grad_() })
  T.eq(leaf(3):index_select(1, idx):grad_fn(), "index_select")
end)

T.case("embedding, and PyTorch's gradient for repeated ids", function()
  local ids = torsh.tensor({ { 0, 2, 0 }, { 4, 2, 2 } }, "i64")
  check("2-D ids", function(w) return weigh(torsh.embedding(w, ids)) end, { leaf(5, 3) })
  check("1-D table ids", function(w) return weigh(torsh.embedding(w, { 3, 1, 3 })) end, { leaf(4, 2) })
  check("0-dim id", function(w) return torsh.embedding(w, 1) * 2 end, { leaf(3, 2) })
  check("strided weight", function(w) return weigh(torsh.embedding(w:t(), ids)) end, { leaf(3, 5) })
  local g = torsh.arange(18):reshape(2, 3, 3):to("f64") * 0.25 - 2
  for _, dt in ipairs { "f32", "f64", "bf16", "f16" } do
    local w = torsh.zeros(5, 3, dt):requires_grad_()
    torsh.embedding(w, ids):backward(g:to(dt))
    T.eq(w:grad():dtype(), dt)
    T.close(w:grad(), REF.embedding, 0, "embedding " .. dt)
  end
  local w = torsh.zeros(5, 3):requires_grad_()
  torsh.embedding(w, ids:to("i32")):backward(g:to("f32"))
  T.close(w:grad(), REF.embedding, 0, "i32 ids")
end)

T.case("embedding / index_select backward on big inputs", function()
  torsh.manual_seed(5)
  -- many ids over few rows (counting path), and few ids over many rows (sorting path)
  for _, c in ipairs { { V = 500, D = 64, N = 6000 }, { V = 30000, D = 16, N = 300 }, { V = 3, D = 1, N = 5000 } } do
    local ids = torsh.randint(0, c.V, { c.N })
    local g = torsh.randn(c.N, c.D)
    local function grad(threads)
      return with_threads(threads, function()
        local w = torsh.zeros(c.V, c.D):requires_grad_()
        torsh.embedding(w, ids):backward(g)
        return w:grad()
      end)
    end
    local g1, g2 = grad(1), grad(4)
    T.close(g1, g2, 0, "thread count")
    -- reference: one_hot(ids)^T @ g in f64
    local want = torsh.one_hot(ids, c.V):to("f64"):t():matmul(g:to("f64"))
    T.close(g1, want, 1e-4, string.format("V=%d N=%d", c.V, c.N))
  end
  -- index_select along a middle dim of a strided input
  local x = torsh.randn(6, 40, 5):transpose(1, 3):requires_grad_()   -- [5, 40, 6], strided
  local ids = torsh.randint(0, 40, { 300 })
  local g = torsh.randn(5, 300, 6)
  x:index_select(2, ids):backward(g)
  local want = torsh.zeros(5, 40, 6, "f64")
  for j = 1, 300 do
    local r = ids:get(j) + 1
    want:narrow(2, r, 1):copy_(want:narrow(2, r, 1) + g:narrow(2, j, 1):to("f64"))
  end
  T.close(x:grad(), want, 1e-4)
end)

T.case("gather", function()
  local idx = torsh.tensor({ { 0, 2, 2 }, { 1, 1, 0 } }, "i64")
  check("dim 2", function(a) return weigh(a:gather(2, idx)) end, { leaf(2, 3) })
  check("dim 1, index smaller than input", function(a) return weigh(a:gather(1, idx)) end, { leaf(3, 4) })
  check("dim -1, 3-D", function(a) return weigh(a:gather(-1, torsh.tensor({ { { 1, 1 } }, { { 0, 2 } } }, "i64"))) end,
        { leaf(2, 2, 3) })
  check("strided input", function(a) return weigh(a:t():gather(1, idx)) end, { leaf(4, 3) })
end)

T.case("scatter_add: input and src", function()
  local idx = torsh.tensor({ { 0, 2, 2 }, { 1, 1, 0 } }, "i64")
  check("dim 2", function(a, s) return weigh(a:scatter_add(2, idx, s)) end, { leaf(2, 3), leaf(2, 3) })
  check("dim 1, src larger than the index", function(a, s) return weigh(a:scatter_add(1, idx, s)) end,
        { leaf(3, 4), leaf(3, 5) })
  check("dim -1, src only", function(a, s) return weigh(a:scatter_add(-1, idx, s)) end, { const(2, 4), leaf(2, 3) })
  check("input only", function(a, s) return weigh(a:scatter_add(1, idx, s)) end, { leaf(3, 3), const(2, 3) })
  T.eq(leaf(3, 3):scatter_add(1, idx, const(2, 3)):grad_fn(), "scatter_add")
end)

T.case("scatter_add_ refuses tensors in a graph", function()
  local idx = torsh.tensor({ { 0, 1 } }, "i64")
  local w = torsh.zeros(2, 2, "f64"):requires_grad_()
  T.raises(function() w:scatter_add_(1, idx, torsh.ones(1, 2, "f64")) end, "scatter_add_: in-place change of a tensor that requires grad")
  local y = w * 2
  T.raises(function() y:scatter_add_(1, idx, torsh.ones(1, 2, "f64")) end, "in-place")
  torsh.no_grad(function() w:scatter_add_(1, idx, torsh.ones(1, 2, "f64")) end)
  T.close(w, { { 1, 0 }, { 0, 1 } })
  local plain = torsh.zeros(2, 2)
  plain:scatter_add_(1, idx, torsh.ones(1, 2))
  T.close(plain, { { 1, 0 }, { 0, 1 } })
end)

T.case("masked_fill and masked_select, with broadcasting", function()
  local m = torsh.tensor({ true, false, true }, "bool")
  local m2 = torsh.tensor({ { true, false, false }, { false, true, true } }, "bool")
  check("masked_fill", function(a) return weigh(a:masked_fill(m2, 5)) end, { leaf(2, 3) })
  check("masked_fill, mask broadcast", function(a) return weigh(a:masked_fill(m, -1)) end, { leaf(2, 3) })
  check("masked_fill, input broadcast", function(a) return weigh(a:masked_fill(m2, 0)) end, { leaf(3) })
  check("masked_select", function(a) return weigh(a:masked_select(m2)) end, { leaf(2, 3) })
  check("masked_select, mask broadcast", function(a) return weigh(a:masked_select(m)) end, { leaf(2, 3) })
  check("masked_select, input broadcast", function(a) return weigh(a:masked_select(m2)) end, { leaf(3) })
  check("masked_select, strided", function(a) return weigh(a:t():masked_select(m2)) end, { leaf(3, 2) })
  check("masked_select, nothing selected", function(a) return a:masked_select(torsh.zeros(2, 3, "bool")):sum() + a:sum() end,
        { leaf(2, 3) })
end)

T.case("one_hot has no gradient", function()
  T.ok(not torsh.one_hot(torsh.tensor({ 0, 2 }, "i64"), 3):requires_grad())
end)

-- ---- joining ----------------------------------------------------------------------------

T.case("cat", function()
  check("dim 1", function(a, b) return weigh(torsh.cat({ a, b })) end, { leaf(2, 3), leaf(4, 3) })
  check("dim 2", function(a, b, c) return weigh(torsh.cat({ a, b, c }, 2)) end, { leaf(2, 1), leaf(2, 3), leaf(2, 2) })
  check("dim -1, one input constant", function(a, b) return weigh(torsh.cat({ a, b, a }, -1)) end,
        { leaf(2, 2, 1), const(2, 2, 3) })
  check("legacy empty input", function(a) return weigh(torsh.cat({ torsh.zeros(0, "f64"), a })) end, { leaf(2, 2) })
  check("mixed dtypes", function(a, b) return weigh(torsh.cat({ a, b:to("f32") }, 1):to("f64")) end,
        { leaf(2, 2), leaf(1, 2) }, { eps = 1e-3, atol = 1e-3 })
  -- more inputs needing grad than a node has edges: a tree of nodes over views
  local xs = {}
  for i = 1, 19 do xs[i] = leaf(1, i % 3 + 1) end
  check("19 inputs", function(...) return weigh(torsh.cat({ ... }, 2)) end, xs)
  local ys = {}
  for i = 1, 70 do ys[i] = leaf(1) end
  check("70 inputs", function(...) return weigh(torsh.cat({ ... })) end, ys)
  T.eq(torsh.cat({ xs[1], xs[2] }, 2):grad_fn(), "cat")
end)

T.case("stack", function()
  check("dim 1", function(a, b) return weigh(torsh.stack({ a, b })) end, { leaf(2, 3), leaf(2, 3) })
  check("dim 2", function(a, b) return weigh(torsh.stack({ a, b, a }, 2)) end, { leaf(2, 3), leaf(2, 3) })
  check("dim -1 (new last)", function(a, b) return weigh(torsh.stack({ a, b }, -1)) end, { leaf(3, 2), const(3, 2) })
  local xs = {}
  for i = 1, 12 do xs[i] = leaf(2) end
  check("12 inputs", function(...) return weigh(torsh.stack({ ... }, 2)) end, xs)
  T.eq(torsh.stack({ xs[1], xs[2] }):grad_fn(), "stack")
end)

T.case("split, split sizes, chunk: one node, missing pieces count as zeros", function()
  local function use(pieces, which)
    local s
    for _, i in ipairs(which) do
      local p = weigh(pieces[i]):sum() * i
      s = s and s + p or p
    end
    return s
  end
  check("split size", function(a) return use(a:split(2), { 1, 2, 3 }) end, { leaf(5, 2) })
  check("split size, dim 2, some pieces", function(a) return use(a:split(2, 2), { 1, 3 }) end, { leaf(2, 5) })
  check("split sizes, dim -1", function(a) return use(a:split({ 1, 3, 0, 2 }, -1), { 4, 2, 3 }) end, { leaf(2, 6) })
  check("chunk", function(a) return use(a:chunk(3), { 2, 3 }) end, { leaf(7, 2) })
  check("chunk dim 2", function(a) return use(a:chunk(2, 2), { 1, 2 }) end, { leaf(2, 3, 3) })
  check("pieces used twice", function(a)
    local p = a:split(1)
    return p[1] * p[2] + p[1]
  end, { leaf(2, 3) })
  -- more pieces than a node has outputs
  check("split into 150", function(a) return use(a:split(1), { 1, 64, 65, 66, 100, 150 }) end, { leaf(150) })
  check("chunk into 70, all used", function(a) return weigh(torsh.cat(a:chunk(70, 2), 2)) end, { leaf(2, 70) })
  local x = leaf(4, 2)
  T.eq(x:split(2)[1]:grad_fn(), "split")
  T.eq(x:chunk(2)[2]:grad_fn(), "split")
end)

T.case("pad: constant, reflect, replicate, circular", function()
  for _, mode in ipairs { "constant", "reflect", "replicate", "circular" } do
    check(mode .. " last dim", function(a) return weigh(a:pad({ 2, 1 }, mode)) end, { leaf(2, 4) })
    check(mode .. " two dims", function(a) return weigh(a:pad({ 1, 2, 2, 0 }, mode)) end, { leaf(2, 3, 4) })
    check(mode .. " three dims", function(a) return weigh(a:pad({ 1, 1, 0, 1, 1, 0 }, mode)) end, { leaf(2, 3, 3) })
    check(mode .. " with crops", function(a) return weigh(a:pad({ -1, 2, 1, -1 }, mode)) end, { leaf(3, 4) })
  end
  check("constant value", function(a) return weigh(a:pad({ 1, 1 }, "constant", 7)) end, { leaf(3) })
  check("constant, crop only", function(a) return weigh(a:pad({ -1, -1, 0, -1 })) end, { leaf(3, 4) })
  check("circular, wraps a full side", function(a) return weigh(a:pad({ 3, 3 }, "circular")) end, { leaf(2, 3) })
  check("reflect, wide", function(a) return weigh(a:pad({ 3, 3 }, "reflect")) end, { leaf(1, 4) })
  T.eq(leaf(2, 2):pad({ 1, 1 }):grad_fn(), "pad")
end)

T.case("flip, repeat, tile, tril, triu", function()
  check("flip dim 1", function(a) return weigh(a:flip(1)) end, { leaf(3, 2) })
  check("flip dims", function(a) return weigh(a:flip({ 1, -1 })) end, { leaf(2, 3, 2) })
  check("flip no dims", function(a) return weigh(a:flip({})) end, { leaf(3) })
  check("repeat", function(a) return weigh(a["repeat"](a, 2, 3)) end, { leaf(2, 2) })
  check("repeat, new leading dims", function(a) return weigh(a["repeat"](a, 2, 1, 3)) end, { leaf(3) })
  check("repeat, zero count", function(a) return weigh(a["repeat"](a, 2, 0)):sum() + a:sum() end, { leaf(2, 2) })
  check("repeat, table", function(a) return weigh(a["repeat"](a, { 1, 2, 1 })) end, { leaf(2, 1, 3) })
  check("tile with fewer counts", function(a) return weigh(a:tile(2)) end, { leaf(2, 3) })
  for _, k in ipairs { -1, 0, 1 } do
    check("tril " .. k, function(a) return weigh(a:tril(k)) end, { leaf(3, 4) })
    check("triu " .. k, function(a) return weigh(a:triu(k)) end, { leaf(2, 3, 3) })
  end
end)

-- ---- along one dim ------------------------------------------------------------------------

T.case("max / min along a dim", function()
  for _, op in ipairs { "max", "min" } do
    check(op .. " dim 1", function(a) return weigh((a[op](a, 1))) end, { leaf(3, 4) })
    check(op .. " dim 2 keepdim", function(a) return weigh((a[op](a, 2, true))) end, { leaf(3, 4) })
    check(op .. " dim -1, 3-D", function(a) return weigh((a[op](a, -1))) end, { leaf(2, 3, 4) })
    check(op .. " strided", function(a) return weigh((a:t()[op](a:t(), 2))) end, { leaf(4, 3) })
    check(op .. " 1-D", function(a) return (a[op](a, 1)) * 2 end, { leaf(5) })
    local v, i = leaf(2, 3)[op](leaf(2, 3), 2)
    T.ok(v:requires_grad() and not i:requires_grad())
    T.eq(v:grad_fn(), op)
  end
  -- ties: the first occurrence takes the whole gradient, like PyTorch
  local g = torsh.tensor({ 1, 2, 3 }, "f64")
  for _, c in ipairs { { "max", REF.max_ties_dx }, { "min", REF.min_ties_dx } } do
    local x = torsh.tensor(REF.ties_x, "f64"):requires_grad_()
    local v = x[c[1]](x, 2)
    v:backward(g)
    T.close(x:grad(), c[2], 0, c[1] .. " ties")
  end
  -- the indices output is not differentiable: using it keeps no graph
  local x = leaf(3, 4)
  local _, i = x:max(2)
  T.ok(not i:to("f64"):requires_grad())
end)

T.case("sort and topk", function()
  check("sort", function(a) return weigh((a:sort())) end, { leaf(3, 5) })
  check("sort dim 1 descending", function(a) return weigh((a:sort(1, true))) end, { leaf(4, 3) })
  check("sort dim -2, 3-D", function(a) return weigh((a:sort(-2))) end, { leaf(2, 4, 3) })
  for _, k in ipairs { 1, 2, 5 } do
    check("topk " .. k, function(a) return weigh((a:topk(k))) end, { leaf(3, 5) })
  end
  check("topk smallest, dim 1", function(a) return weigh((a:topk(2, 1, false))) end, { leaf(4, 3) })
  check("topk k = 0", function(a) return a:topk(0):sum() + a:sum() end, { leaf(3, 2) })
  check("topk strided", function(a) return weigh((a:t():topk(2, 2))) end, { leaf(4, 3) })
  -- ties go through the (stable) indices, like PyTorch's stable sort
  local gs = torsh.arange(12):reshape(3, 4):to("f64") + 1
  for _, c in ipairs { { false, REF.sort_ties_dx }, { true, REF.sort_desc_ties_dx } } do
    local x = torsh.tensor(REF.ties_x, "f64"):requires_grad_()
    local v = x:sort(2, c[1])
    v:backward(gs)
    T.close(x:grad(), c[2], 0, "sort ties")
  end
  local x = (torsh.tensor(REF.ties_x, "f64") + torsh.tensor(REF.topk_x_shift, "f64")):requires_grad_()
  local v = x:topk(2, 2)
  v:backward(torsh.tensor({ { 1, 10 }, { 2, 20 }, { 3, 30 } }, "f64"))
  T.close(x:grad(), REF.topk2_dx, 0, "topk")
  T.eq(v:grad_fn(), "topk")
end)

T.case("cumsum and cumprod", function()
  check("cumsum dim 1", function(a) return weigh(a:cumsum(1)) end, { leaf(4, 3) })
  check("cumsum dim 2", function(a) return weigh(a:cumsum(2)) end, { leaf(2, 3, 4) })
  check("cumsum dim -1, strided", function(a) return weigh(a:t():cumsum(-1)) end, { leaf(3, 4) })
  for _, dt in ipairs { "f32", "bf16", "f16" } do
    local x = torsh.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, dt):requires_grad_()
    x:cumsum(2):backward(torsh.tensor({ { 1, 2, 3 }, { 1, 1, 1 } }, dt))
    T.eq(x:grad():dtype(), dt)
    T.close(x:grad(), { { 6, 5, 3 }, { 3, 2, 1 } }, 0, "cumsum " .. dt)
  end
  check("cumprod dim 1", function(a) return weigh(a:cumprod(1)) end, { leaf(4, 3) })
  check("cumprod dim -1, 3-D", function(a) return weigh(a:cumprod(-1)) end, { leaf(2, 2, 5) })
  check("cumprod strided", function(a) return weigh(a:t():cumprod(2)) end, { leaf(4, 3) })
  -- zeros in the input: the gradient is still exact (no division)
  local z = torsh.tensor(REF.cumprod_x, "f64")
  check("cumprod with zeros", function(a) return weigh(a:cumprod(2)) end, { z:clone():requires_grad_() })
  check("cumprod with zeros, dim 1", function(a) return weigh(a:cumprod(1)) end, { z:clone():requires_grad_() })
  for _, c in ipairs { { 2, REF.cumprod_dx }, { 1, REF.cumprod_dx_dim0 } } do
    for _, dt in ipairs { "f64", "f32" } do
      local x = torsh.tensor(REF.cumprod_x, dt):requires_grad_()
      x:cumprod(c[1]):backward(torsh.tensor(REF.cumprod_g, dt))
      T.close(x:grad(), c[2], 1e-6, "cumprod through zeros " .. dt)
    end
  end
  local x = torsh.tensor({ 1, 2, 3 }, "bf16"):requires_grad_()
  x:cumprod(1):backward(torsh.ones(3, "bf16"))
  T.close(x:grad(), { 9, 4, 2 }, 0.05)
  -- integer inputs give i64 and no graph
  T.ok(not torsh.tensor({ 1, 2 }, "i32"):cumsum(1):requires_grad())
end)

-- ---- graph behaviour ----------------------------------------------------------------------

T.case("no_grad records nothing; graphs are freed", function()
  local x = leaf(4, 3)
  T.ok(not torsh.no_grad(function() return x:index_select(1, { 0 }) end):requires_grad())
  T.ok(not torsh.no_grad(function() return x:split(2)[1] end):requires_grad())
  collectgarbage()
  local before = torsh.memory().live
  do
    local w = torsh.randn(200, 32):requires_grad_()
    for _ = 1, 10 do
      local e = torsh.embedding(w, torsh.randint(0, 200, { 64 }))
      local parts = e:chunk(100, 1)
      local l = torsh.cat(parts, 1):pad({ 1, 1 }, "reflect"):cumsum(2):sort(2):sum()
      l:backward()
    end
    w:set_grad(nil)
  end
  collectgarbage()
  collectgarbage()
  T.ok(torsh.memory().live <= before + 1024, string.format("%d bytes still live", torsh.memory().live - before))
end)

T.finish()
