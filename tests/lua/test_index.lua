-- test_index.lua — indexing, joining and rearranging ops against PyTorch
-- results (tests/fixtures/index_ref.lua, made by gen_index.py), plus
-- hand-written edge cases, bad input, views, in-place forms and the
-- parallel paths (results must not depend on the thread count).
local torsh = require "torsh"
local T = require "torsh.test"

local cases = dofile("tests/fixtures/index_ref.lua")

-- 0-based PyTorch dim -> 1-based Lua dim
local function ld(d) return d >= 0 and d + 1 or d end

local function build(d)
  local t = torsh.tensor(d.data, d.dtype):reshape(d.shape)
  if d.view == "T" then t = t:transpose(-2, -1)
  elseif d.view == "slice" then t = t:slice(-1, 1, -1, 2)
  elseif d.view == "expand" then t = t:expand(d.expand) end
  if d.view then T.ok(not t:is_contiguous() or d.view == "expand", "view should be non-contiguous") end
  return t
end

local function check(got, want, name)
  T.eq(got:dtype(), want.dtype, name .. " dtype")
  T.close(got, build(want), 0, name)
end

local function check_list(got, want, name)
  T.eq(#got, #want, name .. " number of pieces")
  for i = 1, #want do check(got[i], want[i], name .. " piece " .. i) end
end

local function run_case(c)
  local ins = {}
  for i, d in ipairs(c.inputs) do ins[i] = build(d) end
  local x = ins[1]
  local op = c.op
  if op == "cat" then return check(torsh.cat(ins, ld(c.dim)), c.want, c.name)
  elseif op == "stack" then return check(torsh.stack(ins, ld(c.dim)), c.want, c.name)
  elseif op == "split" then return check_list(x:split(c.sizes or c.size, ld(c.dim)), c.want, c.name)
  elseif op == "chunk" then return check_list(x:chunk(c.chunks, ld(c.dim)), c.want, c.name)
  elseif op == "pad" then return check(x:pad(c.pads, c.mode, c.value), c.want, c.name)
  elseif op == "gather" then return check(x:gather(ld(c.dim), ins[2]), c.want, c.name)
  elseif op == "scatter_add" then
    check(x:scatter_add(ld(c.dim), ins[2], ins[3]), c.want, c.name)
    local y = x:clone()
    T.ok(rawequal(y:scatter_add_(ld(c.dim), ins[2], ins[3]), y), "scatter_add_ returns self")
    return check(y, c.want, c.name .. " (in place)")
  elseif op == "index_select" then return check(x:index_select(ld(c.dim), ins[2]), c.want, c.name)
  elseif op == "embedding" then return check(torsh.embedding(x, ins[2]), c.want, c.name)
  elseif op == "one_hot" then return check(torsh.one_hot(x, c.num_classes), c.want, c.name)
  elseif op == "masked_select" then return check(x:masked_select(ins[2]), c.want, c.name)
  elseif op == "masked_fill" then return check(x:masked_fill(ins[2], c.value), c.want, c.name)
  elseif op == "tril" then return check(x:tril(c.diagonal), c.want, c.name)
  elseif op == "triu" then return check(x:triu(c.diagonal), c.want, c.name)
  elseif op == "flip" then
    local dims = {}
    for i, d in ipairs(c.dims) do dims[i] = ld(d) end
    return check(x:flip(dims), c.want, c.name)
  elseif op == "repeat" then return check(x["repeat"](x, c.reps), c.want, c.name)
  end
  error("unknown op " .. op)
end

for _, c in ipairs(cases) do
  T.case("ref: " .. c.name, function() run_case(c) end)
end

-- ---- hand-written cases -------------------------------------------------------------

local a = torsh.arange(12):reshape(3, 4):to("f32")

T.case("index given as a Lua table or integer", function()
  T.close(a:index_select(1, { 2, 0 }), { { 8, 9, 10, 11 }, { 0, 1, 2, 3 } })
  T.close(a:index_select(2, 3), { { 3 }, { 7 }, { 11 } })
  T.close(torsh.embedding(a, { { 0 }, { 2 } }), { { { 0, 1, 2, 3 } }, { { 8, 9, 10, 11 } } })
  T.close(torsh.embedding(a, 1), { 4, 5, 6, 7 })
  T.eq(a:index_select(1, {}):size(1), 0)
  T.close(torsh.one_hot({ 1, 0 }), { { 0, 1 }, { 1, 0 } })
end)

T.case("index_select and gather on 0-dim tensors", function()
  local s = torsh.tensor(5.5)
  T.close(s:index_select(1, torsh.tensor(0)), 5.5)
  T.eq(s:index_select(1, torsh.tensor(0)):dim(), 0)
  T.close(s:gather(1, torsh.tensor(0)), 5.5)
end)

T.case("scatter_add accumulates duplicates in order", function()
  local z = torsh.zeros(3)
  z:scatter_add_(1, { 0, 0, 2, 0 }, torsh.tensor({ 1, 2, 3, 4 }, "f32"))
  T.close(z, { 7, 0, 3 })
  local b = torsh.zeros(2, 2, "i64"):scatter_add(2, { { 1, 1 }, { 0, 1 } }, torsh.tensor({ { 5, 6 }, { 7, 8 } }))
  T.close(b, { { 0, 11 }, { 7, 8 } })
  -- empty index: nothing happens
  T.close(torsh.ones(2):scatter_add(1, {}, torsh.ones(0)), { 1, 1 })
end)

T.case("one_hot: empty index, explicit classes", function()
  local e = torsh.one_hot(torsh.zeros(0, "i64"), 3)
  T.eq(#e:shape(), 2)
  T.eq(e:size(2), 3)
  T.eq(e:dtype(), "i64")
end)

T.case("masked_fill with a table mask and bool tensor", function()
  T.close(a:masked_fill({ true, false, false, true }, -1), { { -1, 1, 2, -1 }, { -1, 5, 6, -1 }, { -1, 9, 10, -1 } })
  local b = torsh.tensor({ true, false }):masked_fill(torsh.tensor({ false, true }), true)
  T.close(b, { true, true })
end)

T.case("cat and stack: dims, 1-based, negative", function()
  local b = torsh.ones(3, 2)
  T.eq(torsh.cat({ a, b }, 2):size(2), 6)
  T.eq(torsh.cat({ a, b }, -1):size(2), 6)
  T.eq(torsh.cat{ a }:size(1), 3)
  T.eq(torsh.stack({ a, a }, 3):size(3), 2)
  T.eq(torsh.stack({ a, a }, -1):size(3), 2)
  T.eq(torsh.stack({ a, a }):size(1), 2)
end)

T.case("split and chunk return views", function()
  local parts = a:split(2)
  T.eq(#parts, 2)
  T.ok(parts[1]:shares_storage(a), "split pieces are views")
  T.eq(parts[2]:size(1), 1)
  local ch = a:chunk(4, 2)
  T.eq(#ch, 4)
  T.ok(ch[3]:shares_storage(a), "chunk pieces are views")
  ch[1]:fill_(100)
  T.eq(a:get(1, 1), 100.0)
  a:set(0, 1, 1)
  -- chunk of an empty dim: `n` empty pieces, like PyTorch
  T.eq(#torsh.zeros(0, 2):chunk(3), 3)
  T.eq(#torsh.zeros(0, 2):split(2), 1)
end)

T.case("pad: 1-based API shapes and default constant 0", function()
  local p = a:pad({ 1, 1 })
  T.eq(p:size(2), 6)
  T.close(p:select(2, 1), { 0, 0, 0 })
  T.close(a:pad({ 0, 0, 0, 0 }), a)
  T.close(torsh.ones(2, 2, "i32"):pad({ 1, 0 }, "constant", 7), { { 7, 1, 1 }, { 7, 1, 1 } })
end)

T.case("tile accepts fewer counts than dims; repeat adds leading dims", function()
  T.close(a:tile(2), a["repeat"](a, 1, 2))
  T.close(a:tile({ 2, 1 }), torsh.cat{ a, a })
  local r = torsh.tensor({ 1, 2 })["repeat"](torsh.tensor({ 1, 2 }), 2, 2)
  T.close(r, { { 1, 2, 1, 2 }, { 1, 2, 1, 2 } })
end)

T.case("flip with no dims copies; tril/triu need 2 dims", function()
  local f = a:flip({})
  T.close(f, a)
  T.ok(not f:shares_storage(a), "flip copies")
  T.close(a:flip(2), a:flip({ -1 }))
end)

-- ---- bad input -----------------------------------------------------------------------

T.case("out-of-range and negative indices are errors naming op, value and range", function()
  T.raises(function() a:index_select(1, { 0, 3 }) end, "index_select: index 3 is out of range for dim 0 of size 3 (valid: 0..2)")
  T.raises(function() a:index_select(2, { -1 }) end, "negative indices are not accepted")
  T.raises(function() torsh.embedding(a, { { 1, 7 } }) end, "embedding: index 7 is out of range for dim 0 of size 3")
  T.raises(function() a:gather(2, { { 4 } }) end, "gather: index 4 is out of range for dim 1 of size 4 (valid: 0..3)")
  T.raises(function() a:gather(1, { { -1 } }) end, "gather: index -1 is out of range")
  T.raises(function() a:scatter_add(1, { { 3 } }, torsh.ones(1, 1)) end, "scatter_add: index 3 is out of range for dim 0 of size 3")
  T.raises(function() torsh.one_hot({ 0, 5 }, 3) end, "one_hot: class value 5 is out of range for 3 classes (valid: 0..2)")
  T.raises(function() torsh.one_hot({ 0, -2 }) end, "one_hot: class values must be non-negative, got -2")
  T.raises(function() torsh.one_hot(torsh.zeros(0, "i64")) end, "cannot infer the number of classes")
  T.raises(function() torsh.zeros(0):index_select(1, { 0 }) end, "dim 0 of size 0 (the dim is empty)")
end)

T.case("bad index dtype and shapes", function()
  T.raises(function() a:index_select(1, torsh.zeros(2)) end, "index_select: index must have an integer dtype, got f32")
  T.raises(function() a:index_select(1, torsh.zeros(2, 2, "i64")) end, "index_select: index must be 0-D or 1-D, got shape [2, 2]")
  T.raises(function() a:gather(1, torsh.zeros(2, "i64")) end, "gather: index of shape [2] must have as many dims as the input of shape [3, 4]")
  T.raises(function() a:gather(1, torsh.zeros(2, 5, "i64")) end, "gather: index of shape [2, 5] is larger than the input of shape [3, 4] at dim 1")
  T.raises(function() a:scatter_add(1, torsh.zeros(2, 2, "i64"), torsh.ones(1, 2)) end, "is larger than src of shape [1, 2] at dim 0")
  T.raises(function() a:scatter_add(1, torsh.zeros(1, 1, "i64"), torsh.ones(1, 1, "f64")) end, "scatter_add: src dtype f64 does not match the input's dtype f32")
  T.raises(function() torsh.zeros(1, 3):expand(2, 3):scatter_add_(1, { { 0 } }, torsh.ones(1, 1)) end, "elements sharing memory")
  T.raises(function() torsh.embedding(torsh.zeros(3), { 0 }) end, "embedding: weight must be 2-D")
  T.raises(function() a:masked_select(torsh.ones(3, 4)) end, "masked_select: mask must have dtype bool, got f32")
  T.raises(function() a:masked_fill(torsh.ones(2, "bool"), 1) end, "masked_fill: shapes [3, 4] and [2] cannot be broadcast")
  T.raises(function() a:index_select(3, { 0 }) end, "out of range")
end)

T.case("bad joins, splits, pads, repeats", function()
  T.raises(function() torsh.cat({ a, torsh.ones(2, 5) }) end, "cat: sizes must match except in dim 0")
  T.raises(function() torsh.cat({ a, torsh.ones(12) }) end, "cat: tensors must have the same number of dims")
  T.raises(function() torsh.cat({ torsh.tensor(1.0) }) end, "cat: zero-dimensional tensor (at position 0) cannot be concatenated")
  T.raises(function() torsh.cat({}) end, "non-empty list")
  T.raises(function() torsh.cat({ a, 3 }) end, "entry 2 is a number, not a Tensor")
  T.raises(function() torsh.stack({ a, torsh.ones(3, 5) }) end, "stack: expects tensors of equal shape, got [3, 4] at entry 0 and [3, 5] at entry 1")
  T.raises(function() a:split({ 1, 1 }) end, "split_sizes: sizes sum to 2 but dim 0 has size 3")
  T.raises(function() a:split({ 4, -1 }) end, "split_sizes: size -1 at position 1 is negative")
  T.raises(function() a:split(0) end, "split: split size must be positive")
  T.raises(function() a:chunk(0) end, "number of chunks")
  T.raises(function() a:pad({ 1 }) end, "pad: padding length must be even")
  T.raises(function() a:pad({ 1, 1, 1, 1, 1, 1 }) end, "at most 2 * ndim")
  T.raises(function() a:pad({ 4, 0 }, "reflect") end, "pad: reflect padding (4, 0) must be less than the size 4 of dim 1")
  T.raises(function() a:pad({ 5, 0 }, "circular") end, "wraps around dim 1 of size 4 more than once")
  T.raises(function() a:pad({ -3, -2 }) end, "would have a negative size")
  T.raises(function() a:pad({ 1, 1 }, "mirror") end, "invalid option 'mirror'")
  T.raises(function() a["repeat"](a, 2) end, "repeat: 1 repeat counts given for a tensor with 2 dims")
  T.raises(function() a["repeat"](a, 2, -1) end, "repeat: count -1 at position 1 is negative")
  T.raises(function() torsh.ones(3):tril() end, "tril: input must have at least 2 dims, got 1")
  T.raises(function() a:flip({ 1, 1 }) end, "flip: dim 0 appears more than once")
end)

-- ---- big inputs: parallel paths, thread-count independence ------------------------------

local function with_threads(n, fn)
  local old = torsh.get_num_threads()
  torsh.set_num_threads(n)
  local ok, r = pcall(fn)
  torsh.set_num_threads(old)
  if not ok then error(r, 0) end
  return r
end

local function exact(x, y, msg) T.close(x, y, 0, msg) end

T.case("embedding / index_select / gather agree on big inputs", function()
  torsh.manual_seed(7)
  local V, D, N = 1000, 64, 3000
  local w = torsh.randn(V, D)
  local idx = torsh.randint(0, V, { N })
  local e = torsh.embedding(w, idx)
  exact(e, w:index_select(1, idx))
  exact(e, w:gather(1, idx:unsqueeze(2):expand(N, D)))
  -- strided weight: same rows
  local wt = w:t():contiguous():t()
  T.ok(not wt:is_contiguous(), "transposed copy is strided")
  exact(torsh.embedding(wt, idx), e)
  exact(with_threads(1, function() return torsh.embedding(w, idx) end), e)
  -- f64 and i32 index
  exact(torsh.embedding(w:to("f64"), idx:to("i32")), e:to("f64"))
end)

T.case("scatter_add on big inputs does not depend on the thread count", function()
  torsh.manual_seed(8)
  local src = torsh.randn(20000, 16)
  local idx = torsh.randint(0, 50, { 20000, 16 })
  local r1 = with_threads(1, function() return torsh.zeros(50, 16):scatter_add(1, idx, src) end)
  local r2 = with_threads(2, function() return torsh.zeros(50, 16):scatter_add(1, idx, src) end)
  exact(r1, r2)
  -- column sums are kept
  local total = r1:to("f64"):totable()
  local s = 0
  for _, row in ipairs(total) do s = s + row[1] end
  local want = 0
  for _, row in ipairs(src:to("f64"):totable()) do want = want + row[1] end
  T.close(s, want, 1e-3)
  -- along the last dim, strided target
  local tgt = torsh.zeros(16, 50):t()
  local r3 = with_threads(2, function() return tgt:scatter_add(1, idx, src) end)
  exact(r3, r1)
end)

T.case("big pad / flip / repeat / tril round trips", function()
  torsh.manual_seed(9)
  local x = torsh.randn(300, 200)
  local p = x:pad({ 3, 4, 5, 6 }, "constant", 1.5)
  exact(p:slice(1, 6, 305):slice(2, 4, 203), x)
  exact(p:select(1, 1), torsh.full({ 207 }, 1.5))
  exact(x:flip({ 1, 2 }):flip({ 1, 2 }), x)
  exact(with_threads(1, function() return x:flip(2) end), x:flip(2))
  local r = x["repeat"](x, 2, 3)
  exact(r:slice(1, 301, 600):slice(2, 401, 600), x)
  local lower, upper = x:tril(-1), x:triu()
  exact(lower + upper, x)
  local rp = x:pad({ 7, 7 }, "reflect")
  exact(rp:slice(2, 8, 207), x)
  exact(rp:select(2, 1), x:select(2, 8))
  local cp = x:pad({ 2, 2 }, "circular")
  exact(cp:select(2, 1), x:select(2, 199))
end)

T.case("cat of many strided inputs", function()
  local parts, want = {}, {}
  for i = 1, 10 do
    parts[i] = torsh.full({ 3, i }, i):t()
    for _ = 1, i do want[#want + 1] = { i, i, i } end
  end
  exact(torsh.cat(parts), want)
end)

T.finish()
