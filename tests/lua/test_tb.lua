-- test_tb.lua — torsh.tb.SummaryWriter from Lua: files and folders it makes,
-- buffering (max_queue, flush_secs, flush, close, <close>, garbage
-- collection), NaN/Inf scalars, and the errors a script gets (unwritable log
-- dir, a log dir that is a file, bad arguments, use after close) as Lua errors
-- with the core's message. Event contents are read with a small Lua decoder
-- of the framing and of a scalar's fields; the full independent check (every
-- CRC, every plugin) is tests/sh/test_tensorboard.sh.
local T = require "torsh.test"
local torsh = require "torsh"
local tb = require "torsh.tb"

local _, tmp = T.tmpdir()

-- records of an event file (framing only)
local function records(path)
  local s, pos, out = T.read_file(path), 1, {}
  while pos <= #s do
    local n = string.unpack("<I8", s, pos)
    out[#out + 1] = s:sub(pos + 12, pos + 11 + n)
    pos = pos + 16 + n
  end
  return out
end

-- top-level protobuf fields of a message: {[field] = {raw values}}
local function varint(s, pos)
  local v, shift = 0, 0
  while true do
    local b = s:byte(pos)
    pos = pos + 1
    v = v | ((b & 0x7f) << shift)
    if b < 0x80 then return v, pos end
    shift = shift + 7
  end
end
local function fields(s)
  local out, pos = {}, 1
  while pos <= #s do
    local key
    key, pos = varint(s, pos)
    local num, wt, v = key >> 3, key & 7, nil
    if wt == 0 then v, pos = varint(s, pos)
    elseif wt == 1 then v = s:sub(pos, pos + 7); pos = pos + 8
    elseif wt == 5 then v = s:sub(pos, pos + 3); pos = pos + 4
    elseif wt == 2 then
      local n
      n, pos = varint(s, pos)
      v = s:sub(pos, pos + n - 1)
      pos = pos + n
    else error("wire type " .. wt) end
    out[num] = out[num] or {}
    table.insert(out[num], v)
  end
  return out
end

-- (step, tag, simple_value) of a scalar event record
local function scalar_of(rec)
  local ev = fields(rec)
  local step = ev[2] and ev[2][1] or 0
  local value = fields(fields(ev[5][1])[1][1])
  return step, value[1][1], string.unpack("<f", value[2][1])
end

T.case("SummaryWriter makes the log dir and one event file named like PyTorch's", function()
  local w <close> = tb.SummaryWriter(tmp("a/b/run1"))
  T.eq(w:get_logdir(), tmp("a/b/run1"))
  local names = T.listdir(tmp("a/b/run1"))
  T.eq(#names, 1)
  local host = tb.hostname()
  T.ok(names[1]:find("^events%.out%.tfevents%.%d%d%d%d%d%d%d%d%d%d%." .. host:gsub("%p", "%%%0") .. "%.%d+%.%d+$"),
    names[1])
  T.eq(w:event_file(), tmp("a/b/run1/" .. names[1]))
  local recs = records(w:event_file())
  T.eq(#recs, 1, "the file version is written at once")
  T.eq(fields(recs[1])[3][1], "brain.Event:2")
end)

T.case("filename_suffix and a second writer on the same dir", function()
  local w1 <close> = tb.SummaryWriter(tmp("same"), { filename_suffix = ".v2" })
  local w2 <close> = tb.SummaryWriter(tmp("same"), { filename_suffix = ".v2" })
  T.ok(w1:event_file() ~= w2:event_file())
  T.ok(w1:event_file():find("%.v2$"))
end)

T.case("scalars, NaN and Inf included, read back", function()
  local path
  do
    local w <close> = tb.SummaryWriter(tmp("scalars"))
    path = w:event_file()
    w:add_scalar("loss", 0.5, 3)
    w:add_scalar("loss", 0 / 0, 4)
    w:add_scalar("loss", math.huge, 5)
    w:add_scalar("loss", torsh.tensor({ 0.25 }), 6)
    w:add_scalar("flag", true, 7)
  end
  local recs = records(path)
  T.eq(#recs, 6)
  local s, tag, v = scalar_of(recs[2])
  T.eq(s, 3); T.eq(tag, "loss"); T.eq(v, 0.5)
  s, tag, v = scalar_of(recs[3])
  T.eq(s, 4); T.ok(v ~= v, "NaN kept")
  s, tag, v = scalar_of(recs[4])
  T.eq(v, math.huge)
  s, tag, v = scalar_of(recs[5])
  T.eq(v, 0.25)
  s, tag, v = scalar_of(recs[6])
  T.eq(tag, "flag"); T.eq(v, 1.0)
end)

T.case("events are buffered until max_queue, flush, the timer or close", function()
  local w = tb.SummaryWriter(tmp("buf"), { flush_secs = 1000, max_queue = 3 })
  local path = w:event_file()
  local size0 = #T.read_file(path)
  w:add_scalar("x", 1, 1)
  w:add_scalar("x", 2, 2)
  T.eq(#T.read_file(path), size0, "two events pending")
  T.eq(w.file_writer:pending(), 2)
  w:add_scalar("x", 3, 3)
  T.eq(#records(path), 4, "the third fills the queue")
  w:add_scalar("x", 4, 4)
  w:flush()
  T.eq(#records(path), 5)
  w:add_scalar("x", 5, 5)
  w:close()
  T.eq(#records(path), 6, "close writes what is pending")
  w:close()                                   -- idempotent
  T.raises(function() w:add_scalar("x", 6, 6) end, "closed")

  local t = tb.SummaryWriter(tmp("timer"), { flush_secs = 0.2, max_queue = 1000 })
  t:add_scalar("x", 1, 1)
  T.eq(t.file_writer:pending(), 1)
  os.execute("sleep 0.3")
  t:add_scalar("x", 2, 2)                     -- the timer is checked on add
  T.eq(t.file_writer:pending(), 0)
  T.eq(#records(t:event_file()), 3)
  t:close()
end)

T.case("a writer dropped without close still writes its events", function()
  local path
  do
    local w = tb.SummaryWriter(tmp("gc"))
    path = w:event_file()
    w:add_scalar("x", 1, 1)
  end
  collectgarbage()
  collectgarbage()
  T.eq(#records(path), 2)
end)

T.case("add_scalars writes one run per key", function()
  local w <close> = tb.SummaryWriter(tmp("multi"))
  w:add_scalars("loss/all", { train = 1, test = 2 }, 1)
  local names = T.listdir(tmp("multi"))
  T.eq(#names, 3)
  T.ok(names[1]:find("^events"))
  T.eq(names[2], "loss_all_test")
  T.eq(names[3], "loss_all_train")
end)

T.case("add_hparams makes a run named by the time unless given one", function()
  local w <close> = tb.SummaryWriter(tmp("hp"))
  w:add_hparams({ lr = 0.1 }, { acc = 0.5 })
  w:add_hparams({ lr = 0.2 }, { acc = 0.6 }, nil, "second")
  local names = T.listdir(tmp("hp"))
  T.eq(#names, 3)
  T.ok(names[1]:find("^%d+%.%d+$"), names[1])
  T.eq(names[3], "second")
end)

T.case("an unwritable log dir is an error with the reason", function()
  local f = assert(io.open(tmp("plainfile"), "w"))
  f:close()
  T.raises(function() tb.SummaryWriter(tmp("plainfile/logs")) end, "cannot create log dir")
  T.raises(function() tb.SummaryWriter(tmp("plainfile")) end, "not a directory")
  T.raises(function() tb.SummaryWriter(tmp("x"), { filename_suffix = "a/b" }) end, "filename_suffix")
  T.raises(function() tb.SummaryWriter(42) end, "logdir must be a string")
end)

T.case("bad arguments raise with the tag and the problem", function()
  local w <close> = tb.SummaryWriter(tmp("bad"))
  T.raises(function() w:add_scalar("s", torsh.ones(2), 1) end, "2 elements")
  T.raises(function() w:add_scalar("s", "x", 1) end, "number expected")
  T.raises(function() w:add_image("img", torsh.zeros(2, 4, 4), 1) end, "add_image 'img': image [2, 4, 4] (CHW) has 2 channels")
  T.raises(function() w:add_image("img", torsh.zeros(3, 4, 4), 1, nil, "HWCN") end, "dataformats")
  T.raises(function() w:add_histogram("h", torsh.randn(10), 1, "auto") end, "not supported")
  -- the message points at the caller's line, not at torsh/tb.lua
  local err = T.raises(function() w:add_text("t", 42, 1, "soon") end, "number expected")
  T.ok(err:find("test_tb.lua:%d+:"), err)
  T.raises(function() w:add_histogram("h", torsh.randn(10), 1, { 1, 0 }) end, "increase")
  T.raises(function() w:add_audio("a", torsh.zeros(2, 3), 1, 8000) end, "1-dimensional")
  T.raises(function() w:add_pr_curve("pr", torsh.zeros(3), torsh.zeros(4), 1) end, "counts must match")
  T.raises(function() w:add_custom_scalars({ c = { t = { "Pie", { "a" } } } }) end, "Multiline or Margin")
  T.raises(function() w:add_custom_scalars({ c = { t = { "Margin", { "a" } } } }) end, "3 tags")
  T.raises(function() w:add_hparams({ f = print }, {}) end, "values must be")
  T.raises(function() w:add_hparams({ a = 1 }, {}, { a = { "x" } }) end, "same type")
  T.raises(function() w:add_embedding(torsh.zeros(3, 2), { "a", "b" }) end, "2 metadata labels for 3 points")
  T.raises(function() w:add_embedding(torsh.zeros(3), nil) end, "2-D")
  T.raises(function() w:add_graph(42) end, "expected a graph")
  T.raises(function() w:add_graph(require("torsh.nn").Linear(2, 2)) end, "input_to_model")
  -- nothing of that reached the file
  w:flush()
  T.eq(#records(w:event_file()), 1)
end)

T.case("a closed writer refuses every method", function()
  local w = tb.SummaryWriter(tmp("closed"))
  w:close()
  T.raises(function() w:add_text("t", "x", 1) end, "closed")
  T.raises(function() w:add_histogram("h", torsh.ones(3), 1) end, "closed")
  w:flush()   -- flushing a closed writer is a no-op, as in PyTorch
end)

T.case("add_graph of a graph, a model and a traced module", function()
  local nn = require "torsh.nn"
  local m = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
  local g = torsh.jit.trace(m, torsh.randn(1, 3))
  local w <close> = tb.SummaryWriter(tmp("graph"), { max_queue = 1 })
  w:add_graph(g)
  w:add_graph(m, torsh.randn(1, 3))
  w:add_graph(torsh.model.from_graph(g))
  local recs = records(w:event_file())
  T.eq(#recs, 7, "file version + (graph_def, run metadata) x 3")
  local gd = fields(fields(recs[2])[4][1])
  T.eq(#gd[1], 7, "nodes: input, 2 weights, Gemm, Relu, the tracer's Identity, output")
end)

T.finish()
