-- test_profiler.lua — torsh.profiler: an event per op called from Lua with
-- input shapes and dtypes, the original functions back after stop, nesting of
-- ranges (also when an error unwinds), schedules selecting the right steps
-- (torch's rule), the ring buffer's cap keeping the newest events, bytes per
-- event and the memory curve, the leak report finding a kept tensor (and not a
-- dropped one), "data" ranges from the DataLoader and the bottleneck report,
-- graph nodes through the core hook, and every export parsing with the
-- expected fields (Chrome trace, speedscope, folded stacks, SVG, HTML, JSON
-- summary) and refusing an unwritable path with a message.
local T = require "torsh.test"
local torsh = require "torsh"
local profiler = require "torsh.profiler"
local A = require "torsh.profiler.analysis"
local cjson = require "cjson"

local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p '" .. tmpdir .. "'"))
local function tmp(name) return tmpdir .. "/" .. name end
local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function find(p, pred)
  local out = {}
  for _, e in ipairs(p.events) do if pred(e) then out[#out + 1] = e end end
  return out
end
local function named(p, name) return find(p, function(e) return e.name == name end) end

T.case("every op called from Lua is an event with its input shapes and dtypes", function()
  local a, b = torsh.ones(2, 3), torsh.ones(3)
  local w = torsh.ones(3, 4, "f64")
  local p = profiler.profile(function()
    local c = a + b                      -- metamethod
    local d = a:matmul(w:to("f32"))      -- methods
    local e = torsh.relu(d)              -- module function
    local s = (c * 2):sum():item()       -- scalar argument, item
    return e, s
  end)
  local names = {}
  for _, e in ipairs(p.events) do names[#names + 1] = e.name end
  T.eq(table.concat(names, ","), "add,to,matmul,relu,mul,sum,item")
  local add = named(p, "add")[1]
  T.eq(add.kind, "op")
  T.eq(add.inputs, "f32[2,3] f32[3]")
  T.eq(add.device, "cpu")
  T.eq(named(p, "to")[1].inputs, "f64[3,4]")
  T.eq(named(p, "matmul")[1].inputs, "f32[2,3] f32[3,4]")
  T.eq(named(p, "mul")[1].inputs, "f32[2,3] scalar")
  local shapes, dtypes = A.parse_inputs(add.inputs)
  T.eq(#shapes, 2); T.eq(shapes[1][1], 2); T.eq(shapes[1][2], 3); T.eq(shapes[2][1], 3)
  T.eq(dtypes[1], "f32")
  for _, e in ipairs(p.events) do
    T.ok(e.t1 >= e.t0 and e.t0 >= 0, "times")
    T.eq(e.tid, p.main_tid)
  end
  T.eq(p.dropped, 0)
end)

T.case("list arguments are described, accessors are not ops", function()
  local a = torsh.ones(2, 2)
  local p = profiler.profile(function()
    local c = torsh.cat({ a, a }, 1)
    local n = a:numel() + a:dim() + #a:shape()
    return c, n
  end)
  T.eq(#p.events, 1)
  T.eq(p.events[1].name, "cat")
  T.eq(p.events[1].inputs, "f32[2,2] f32[2,2] scalar")
end)

T.case("stop puts the original functions back; nothing is recorded when off", function()
  local add, method, mm = torsh.add, torsh.Tensor.matmul, getmetatable(torsh.ones(1)).__add
  profiler.start()
  T.ok(torsh.add ~= add and torsh.Tensor.matmul ~= method and getmetatable(torsh.ones(1)).__add ~= mm, "wrapped while on")
  T.ok(torsh._prof.info().wrapped > 200, "wrapped count")
  local p = profiler.stop()
  T.ok(torsh.add == add and torsh.Tensor.matmul == method and getmetatable(torsh.ones(1)).__add == mm, "restored")
  T.eq(torsh._prof.info().wrapped, 0)
  local before = #torsh._prof.events()
  local _ = torsh.ones(3) + torsh.ones(3)
  T.eq(#torsh._prof.events(), before)
  T.ok(#p.events >= 1)
end)

T.case("errors inside ops keep their messages and close their events", function()
  local a = torsh.ones(2, 3)
  profiler.start()
  local ok, err = pcall(function() return a:matmul(torsh.ones(5, 5)) end)
  local ok2, err2 = pcall(torsh.add, "x", 1)
  local p = profiler.stop()
  T.ok(not ok and err:find("matmul: shapes [2, 3] and [5, 5] do not line up", 1, true), tostring(err))
  T.ok(not ok2 and err2:find("bad argument #1 to 'add'", 1, true), tostring(err2))
  T.eq(#named(p, "matmul"), 1)
  T.eq(#named(p, "add"), 1)
end)

T.case("ranges nest, with self time net of their children", function()
  local a = torsh.ones(64, 64)
  local p = profiler.profile(function()
    profiler.range("outer", function()
      local tok = profiler.begin_range("inner")
      local _ = a:matmul(a)
      profiler.end_range(tok)
      local _ = a + 1
    end)
  end)
  local outer, inner, mm, add = named(p, "outer")[1], named(p, "inner")[1], named(p, "matmul")[1], named(p, "add")[1]
  T.eq(outer.kind, "range")
  T.eq(outer.depth, 0); T.eq(inner.depth, 1); T.eq(mm.depth, 2); T.eq(add.depth, 1)
  T.ok(inner.parent == outer and mm.parent == inner and add.parent == outer, "parents")
  T.ok(inner.t0 >= outer.t0 and inner.t1 <= outer.t1, "inner inside outer")
  T.eq(outer.self, (outer.t1 - outer.t0) - (inner.t1 - inner.t0) - (add.t1 - add.t0))
  T.eq(inner.self, (inner.t1 - inner.t0) - (mm.t1 - mm.t0))
end)

T.case("a range left open by an error ends with the range() call; begin without end ends at stop", function()
  profiler.start()
  local ok = pcall(profiler.range, "failing", function() error("boom") end)
  T.ok(not ok)
  profiler.begin_range("never closed")
  local _ = torsh.ones(1)
  local p = profiler.stop()
  T.eq(#named(p, "failing"), 1)
  local open = named(p, "never closed")[1]
  T.ok(open ~= nil, "closed at stop")
  T.ok(named(p, "ones")[1].parent == open, "op inside it")
end)

T.case("schedules follow torch.profiler.schedule", function()
  local s = { skip_first = 1, wait = 1, warmup = 1, active = 2, ["repeat"] = 1 }
  local want = { "none", "none", "warmup", "record", "record_and_save", "none", "none", "none" }
  for step = 0, 7 do T.eq(profiler.schedule_action(s, step), want[step + 1], "step " .. step) end
  local forever = { wait = 1, active = 1 }
  local got = {}
  for step = 0, 5 do got[#got + 1] = profiler.schedule_action(forever, step) end
  T.eq(table.concat(got, ","), "none,record_and_save,none,record_and_save,none,record_and_save")
  T.eq(profiler.schedule_action({}, 12), "record")
  T.raises(function() profiler.start { schedule = { wait = 1 } } end, "active")
end)

T.case("a schedule keeps only its active steps and hands each cycle to on_trace_ready", function()
  local cycles = {}
  profiler.start { schedule = { wait = 1, warmup = 1, active = 2, ["repeat"] = 2 },
                   on_trace_ready = function(p) cycles[#cycles + 1] = p end }
  for i = 0, 9 do
    profiler.range("s" .. i, function() local _ = torsh.zeros(i + 1) end)
    profiler.step()
  end
  local p = profiler.stop()
  local kept = {}
  for _, e in ipairs(p.events) do if e.name:match("^s%d$") then kept[#kept + 1] = e.name end end
  T.eq(table.concat(kept, ","), "s2,s3,s6,s7")
  T.eq(#named(p, "ProfilerStep#2"), 1)
  T.eq(#named(p, "ProfilerStep#1"), 0)
  T.eq(#named(p, "zeros"), 4)
  T.eq(#cycles, 2)
  local c1 = {}
  for _, e in ipairs(cycles[1].events) do if e.kind == "range" then c1[#c1 + 1] = e.name end end
  table.sort(c1)
  T.eq(table.concat(c1, ","), "ProfilerStep#2,ProfilerStep#3,s2,s3")
  T.ok(p:summary():find("ProfilerStep#*", 1, true), "steps grouped in the summary")
end)

T.case("the ring buffer keeps the newest max_events and counts the dropped", function()
  profiler.start { max_events = 100 }
  for i = 1, 250 do profiler.range("r" .. i, function() end) end
  local p = profiler.stop()
  T.eq(#p.events, 100)
  T.eq(p.dropped, 150)
  T.eq(p.events[1].name, "r151")
  T.eq(p.events[100].name, "r250")
  T.ok(p:bottleneck_report():find("150 early events were dropped", 1, true), "reported")
end)

T.case("bytes allocated and freed per event, live and peak memory over time", function()
  local keep
  local p = profiler.profile(function()
    keep = torsh.zeros(1000)                   -- 4000 bytes, one 64-byte-rounded block
    local t = torsh.zeros(250000)              -- 1 MB
    t:free()
    local u = torsh.ones(10)
    u:free()
  end)
  local z = named(p, "zeros")
  T.eq(z[1].alloc, 4032)
  T.ok(z[2].alloc >= 1000000 and z[2].alloc < 1100000, "big block " .. z[2].alloc)
  T.eq(named(p, "free")[1], nil)               -- free is not an op, but its bytes are seen by the memory curve
  T.ok(#p.memory >= 3, "samples")
  local base, top = p.memory[1].live, 0
  for i, m in ipairs(p.memory) do
    if m.live > top then top = m.live end
    T.ok(m.peak >= m.live, "peak >= live")
    if i > 1 then T.ok(m.peak >= p.memory[i - 1].peak and m.t >= p.memory[i - 1].t, "monotonic") end
  end
  T.ok(top - base >= 1000000 + 4000, "the 1 MB tensor shows in the curve")
  T.ok(p.memory[#p.memory].live - base < 1000000, "and leaves it")
  T.ok(keep ~= nil)
end)

T.case("the leak report finds a kept tensor with the op and Lua stack that made it", function()
  local kept
  local function make_kept() return torsh.ones(123) end
  local p = profiler.profile(function()
    kept = make_kept()
    for _ = 1, 5 do local _ = torsh.zeros(77) end    -- dropped: collected before the report
  end, { track_allocs = true, with_stack = true })
  local rows = p:leaks()
  T.eq(#rows, 1)
  T.eq(rows[1].op, "ones")
  T.eq(rows[1].bytes, 512)                   -- 123 * 4 rounded up to 64
  T.ok(rows[1].stack:find("make_kept", 1, true), rows[1].stack)
  local text = p:leak_report()
  T.ok(text:find("1 allocations (512 B)", 1, true) and text:find("make_kept", 1, true), text)
  T.ok(kept ~= nil)
end)

T.case("DataLoader batches are 'data' ranges; the bottleneck report splits the time", function()
  local data = require "torsh.data"
  local ds = data.TensorDataset(torsh.randn(64, 4), torsh.zeros(64, "i64"))
  local loader = data.DataLoader(ds, { batch_size = 16 })
  local w = torsh.randn(4, 4)
  local p = profiler.profile(function()
    for _, x in loader:iter() do
      for _ = 1, 20 do x = x:matmul(w):tanh() end
    end
  end)
  local d = named(p, "data")
  T.ok(#d >= 4, "a range per batch")
  T.eq(d[1].kind, "range")
  local b = p:bottlenecks()
  T.ok(b.window > 0 and b.data_wait > 0 and b.ops_time > 0 and b.host >= 0, "split")
  T.ok(math.abs(b.ops_time + b.data_wait + b.host - b.window) <= 1, "the parts add up")
  T.eq(b.top[1].kind, "op")
  T.ok(#b.suggestions >= 1)
  local report = p:bottleneck_report()
  T.ok(report:find("waiting on data", 1, true) and report:find("top ops by self time", 1, true), report)
end)

T.case("step_on_batch: each DataLoader batch is a step of the schedule", function()
  local data = require "torsh.data"
  local loader = data.DataLoader(data.TensorDataset(torsh.randn(40, 2), torsh.zeros(40, "i64")), { batch_size = 10 })
  profiler.start { schedule = { wait = 1, active = 2, ["repeat"] = 1 }, step_on_batch = true }
  for i, x in loader:iter() do profiler.range("batch" .. i, function() local _ = x + 1 end) end
  local p = profiler.stop()
  local kept = {}
  for _, e in ipairs(p.events) do if e.name:match("^batch") then kept[#kept + 1] = e.name end end
  T.eq(table.concat(kept, ","), "batch2,batch3")
end)

T.case("graph nodes run by the executor are events (through the core hook)", function()
  local path = "tests/fixtures/onnx/mlp_op13/model.onnx"
  local ok, model = pcall(function() return torsh.model.load(path) end)
  if not ok then T.skip("torsh.model cannot load " .. path .. ": " .. tostring(model)) end
  local inp = model:inputs()[1]
  local shape = {}
  for i, d in ipairs(inp.shape) do shape[i] = math.type(d) == "integer" and d > 0 and d or 2 end
  local x = torsh.randn(shape)
  local p = profiler.profile(function() return profiler.range("inference", model.run, model, x) end)
  local nodes = find(p, function(e) return e.kind == "node" end)
  T.ok(#nodes >= 2, "node events")
  for _, n in ipairs(nodes) do
    T.ok(n.op ~= nil and n.op ~= "", "op type")
    T.ok(n.parent ~= nil, "inside the inference range")
  end
  T.ok(nodes[1].inputs and nodes[1].inputs:find("f32[", 1, true), tostring(nodes[1].inputs))
  local rows = p:key_averages()
  local by_op = false
  for _, r in ipairs(rows) do if r.name == nodes[1].op then by_op = true end end
  T.ok(by_op, "summary groups nodes by op type")
end)

-- one profile with stacks for the export checks
local function sample_profile()
  local a, b = torsh.ones(2, 3), torsh.ones(3)
  local function layer(x) return (x + b):relu() end
  return profiler.profile(function()
    for _ = 1, 3 do
      profiler.range("step", function()
        local h = layer(a)
        local _ = h:sum()
      end)
    end
  end, { with_stack = true })
end

T.case("Chrome trace: complete events with shapes, dtypes and bytes; thread names; memory counters", function()
  local p = sample_profile()
  local path = tmp("trace.json")
  T.ok(p:export_chrome_trace(path))
  local d = cjson.decode(read(path))
  T.eq(d.displayTimeUnit, "ms")
  local x, m, c = {}, {}, {}
  for _, e in ipairs(d.traceEvents) do
    if e.ph == "X" then x[#x + 1] = e elseif e.ph == "M" then m[#m + 1] = e elseif e.ph == "C" then c[#c + 1] = e end
  end
  T.eq(#x, #p.events)
  local add
  for _, e in ipairs(x) do
    T.ok(type(e.ts) == "number" and e.dur >= 0 and e.pid and e.tid and e.cat, "fields")
    if e.name == "add" then add = e end
  end
  T.eq(add.cat, "op")
  T.eq(add.args.shapes[1][1], 2); T.eq(add.args.shapes[1][2], 3); T.eq(add.args.shapes[2][1], 3)
  T.eq(add.args.dtypes[1], "f32")
  T.ok(add.args.bytes_alloc >= 24, "bytes")
  T.ok(type(add.args.stack) == "table" and add.args.stack[#add.args.stack]:find("layer", 1, true), "stack")
  local thread_named = false
  for _, e in ipairs(m) do if e.name == "thread_name" and e.args.name == "main" then thread_named = true end end
  T.ok(thread_named, "thread_name metadata")
  T.ok(#c >= 2 and c[1].args["live bytes"] ~= nil, "memory counters")
end)

T.case("speedscope: evented profiles with balanced, ordered open/close events", function()
  local p = sample_profile()
  local d = cjson.decode(p:speedscope())
  T.eq(d["$schema"], "https://www.speedscope.app/file-format-schema.json")
  T.ok(#d.shared.frames >= 4)
  local prof = d.profiles[1]
  T.eq(prof.type, "evented")
  T.eq(prof.unit, "nanoseconds")
  local open, last, opened = {}, -1, 0
  for _, e in ipairs(prof.events) do
    T.ok(e.at >= last, "at does not decrease")
    last = e.at
    if e.type == "O" then open[#open + 1] = e.frame; opened = opened + 1
    else T.eq(table.remove(open), e.frame, "closes the innermost open frame") end
  end
  T.eq(#open, 0)
  T.ok(opened >= #p.events)
  local lua_frame = false
  for _, f in ipairs(d.shared.frames) do if f.name == "layer" and f.line then lua_frame = true end end
  T.ok(lua_frame, "Lua frames carry file and line")
end)

T.case("folded stacks: root;...;leaf count lines whose counts add up to the self times", function()
  local p = sample_profile()
  local text = p:folded()
  local total, saw = 0, false
  for line in text:gmatch("[^\n]+") do
    local stack, count = line:match("^(.*)%s+(%d+)$")
    T.ok(stack ~= nil, "line format: " .. line)
    total = total + tonumber(count)
    local frames = {}
    for f in stack:gmatch("[^;]+") do frames[#frames + 1] = f end
    if frames[#frames] == "add" then
      saw = true
      T.eq(frames[#frames - 1]:match("^(%S+)"), "layer")
      local at = {}
      for i, f in ipairs(frames) do at[f:match("^(%S+)")] = i end
      T.ok(at.step and at.step < #frames - 1 and at.main, "step range below layer, main chunk at the root")
      T.eq(at.main, 1)
    end
  end
  T.ok(saw, "add under layer under step")
  local self = 0
  for _, e in ipairs(p.events) do self = self + e.self end
  T.eq(total, self)
  T.ok(p:export_folded(tmp("f.txt")))
end)

T.case("SVG flame graph and the HTML report are self-contained and carry the data", function()
  local p = sample_profile()
  local svg = p:flamegraph()
  T.ok(svg:match("^<svg ") and svg:find("</svg>", 1, true) and svg:find(">add<", 1, true) or svg:find("<title>add ", 1, true), "svg")
  local html = p:html()
  T.ok(html:find("^<!DOCTYPE html>") and html:find("data-rendered", 1, true), "html")
  T.ok(not html:find("https?://[%w.]+/[%w/]*%.js") and not html:find("<link ", 1, true), "no network")
  local json = html:match('<script type="application/json" id="profile%-data">(.-)</script>')
  local d = cjson.decode((json:gsub("<\\/", "</")))
  T.eq(#d.events, #p.events)
  T.ok(#d.ops >= 4 and d.flame[1] == "all", "ops and flame tree")
  T.ok(p:export_html(tmp("r.html")) and p:export_flamegraph(tmp("f.svg")))
end)

T.case("summary: sortable, grouped by shape on request, limited, JSON", function()
  local a, b = torsh.ones(2, 2), torsh.ones(4, 4)
  local p = profiler.profile(function()
    for _ = 1, 3 do local _ = a + a end
    local _ = b + b
    local _ = a:sum()
  end)
  local text = p:summary()
  T.ok(text:find("^Name%s+Self %%") and text:find("\nadd ", 1, true), text)
  local rows = p:key_averages { sort = "count" }
  T.eq(rows[1].name, "add"); T.eq(rows[1].count, 4)
  rows = p:key_averages { group_by_shape = true, sort = "count" }
  T.eq(rows[1].name, "add"); T.eq(rows[1].count, 3); T.eq(rows[1].shapes, "f32[2,2] f32[2,2]")
  T.eq(#p:key_averages { limit = 1 }, 1)
  T.eq(p:key_averages { sort = "name" }[1].name, "add")
  T.ok(p:summary { group_by_shape = true }:find("f32[4,4] f32[4,4]", 1, true))
  local d = cjson.decode(p:summary { format = "json" })
  T.eq(#d.ops, 2)
  T.ok(d.ops[1].self_us >= 0 and d.ops[1].count >= 1 and d.ops[1].name, "fields")
  T.raises(function() p:key_averages { sort = "bogus" } end, "cannot sort by 'bogus'")
end)

T.case("profile() returns fn's results; an error stops the profiler and is raised again", function()
  local p, x, y = profiler.profile(function() return 1, "two" end)
  T.eq(x, 1); T.eq(y, "two"); T.ok(getmetatable(p) == profiler.Profile)
  T.raises(function() profiler.profile(function() local _ = torsh.ones(1); error("inner failure") end) end,
    "inner failure")
  T.ok(not profiler.running())
  T.eq(#named(profiler.last(), "ones"), 1)
  T.raises(function() profiler.start(); profiler.start() end, "already running")
  profiler.stop()
end)

T.case("an unwritable output path is a message, not an error", function()
  local p = sample_profile()
  local ok, err = p:export_chrome_trace("/nonexistent-dir/t.json")
  T.eq(ok, nil)
  T.ok(err:find("cannot write /nonexistent-dir/t.json", 1, true), err)
  ok, err = p:export_html(tmpdir)          -- a directory
  T.eq(ok, nil)
  T.ok(err:find("cannot write", 1, true), err)
end)

T.case("backward records one event per autograd node, inside the backward() event", function()
  local m = torsh.nn.Linear(4, 3)
  local prof = profiler.profile(function() m(torsh.randn(2, 4)):sum():backward() end)
  local d = cjson.decode(prof:chrome_trace())
  local outer, inner = nil, {}
  for _, e in ipairs(d.traceEvents) do
    if e.ph == "X" and e.name == "backward" then outer = e end
    if e.ph == "X" and e.name:find("_backward$") then inner[#inner + 1] = e end
  end
  T.ok(outer, "a backward event")
  local names = {}
  for _, e in ipairs(inner) do
    names[e.name] = true
    T.ok(e.ts >= outer.ts and e.ts + e.dur <= outer.ts + outer.dur + 1, e.name .. " nested in backward")
  end
  T.ok(names.matmul_backward and names.sum_backward, "matmul_backward and sum_backward recorded")
end)

os.execute("rm -rf '" .. tmpdir .. "'")
T.finish()
