-- torsh/profiler.lua — torsh.profiler: where the time and memory of a script go.
--
--   local profiler = torsh.profiler
--   profiler.start { with_stack = true }                -- every op from Lua is now recorded
--   ... work ...
--   local prof = profiler.stop()
--   print(prof:summary { sort = "self", limit = 15 })   -- table by op (format = "json" too)
--   print(prof:bottleneck_report())
--   prof:export_chrome_trace("trace.json")              -- Perfetto / chrome://tracing
--   prof:export_html("report.html")                      -- one self-contained file
--
--   local prof, result = profiler.profile(fn, opts)     -- start, fn(), stop (also on error)
--   profiler.range("data", fn, ...)                      -- a named range around fn(...)
--   local tok = profiler.begin_range("fwd") ... profiler.end_range(tok)
--
-- Options of start/profile: record_shapes (true), profile_memory (true: bytes
-- per event and the live/peak curve), track_allocs (false: the leak report,
-- allocations made while on and still alive at stop, with the op and Lua stack
-- that made them), with_stack (false: Lua call stacks at op boundaries, so
-- time folds into stacks), max_events (ring buffer size, default 2^20; the
-- oldest events are dropped beyond it), schedule = {skip_first, wait, warmup,
-- active, repeat} (like torch.profiler.schedule; steps advance with
-- profiler.step(), or with every DataLoader batch when step_on_batch = true),
-- on_trace_ready = function(prof) called at the end of each active cycle.
--
-- Events: every op a script calls through torsh (methods, arithmetic, torsh.*
-- functions, fused optimizer steps) while the profiler runs, every graph node
-- the executor runs, user ranges, "data" ranges around DataLoader batches and
-- "ProfilerStep#N" ranges. How ops are instrumented at no cost when off:
-- lua/l_prof.c. The recorder: core/include/torsh/prof.h.
local torsh = require "torsh"
local A = require "torsh.profiler.analysis"
local E = require "torsh.profiler.export"
local C = torsh._prof

local M = {}

--- profiler.active: true while a session runs (a cheap test for callers).
M.active = false

local state = nil        -- the running session's options
-- the last Profile made by stop(), held weakly: a big profile nobody keeps
-- must not stay in the heap (it would slow the collector for the rest of the run)
local last_ref = setmetatable({}, { __mode = "v" })

-- ---- the Profile --------------------------------------------------------------------------
local Profile = {}
Profile.__index = Profile
M.Profile = Profile

-- Builds a Profile from the recorder's data (events of steps lo..hi when given).
local function snapshot(opts, lo, hi)
  local info = C.info()
  local events = C.events()
  if lo then
    local kept = {}
    for _, e in ipairs(events) do
      if e.step >= lo and e.step <= hi then kept[#kept + 1] = e end
    end
    events = kept
  end
  local stop = info.stop_ns > 0 and info.stop_ns or C.now()
  local p = setmetatable({
    events = events, stacks = C.stacks(), memory = C.memory(), live_allocs = opts.track_allocs and C.leaks() or {},
    main_tid = info.main_tid, dropped = info.dropped, duration = stop - info.start_ns, steps = info.step,
    version = torsh.version, title = opts.title, options = opts,
  }, Profile)
  local max_t = 0
  for _, e in ipairs(events) do if e.t1 > max_t then max_t = e.t1 end end
  if max_t > p.duration then p.duration = max_t end
  p.frame_memo = A.frame_memo(opts.hide_sources)
  A.nest(p.events)
  p.tree = A.tree(p.events, p.stacks, p.frame_memo)
  return p
end

--- prof:key_averages{group_by_shape=, sort=, limit=} -> rows (times in ns; see analysis.key_averages).
function Profile:key_averages(opts) return A.key_averages(self, opts) end

--- prof:summary{group_by_shape=, sort="self"|"total"|"count"|"mean"|"name"|"alloc", limit=, format="table"|"json"} -> text
function Profile:summary(opts)
  opts = opts or {}
  local rows = A.key_averages(self, opts)
  if opts.format == "json" then
    local cli = require "torsh.cli"
    local list = {}
    for i, r in ipairs(rows) do
      list[i] = { name = r.name, kind = r.kind, shapes = r.shapes, count = r.count, total_us = r.total / 1e3,
                  self_us = r.self / 1e3, mean_us = r.mean / 1e3, self_pct = r.self_pct, total_pct = r.total_pct,
                  alloc_bytes = r.alloc, freed_bytes = r.freed }
    end
    local _, window = A.windows(self)
    return cli.json({ wall_us = window / 1e3, events = #self.events, dropped = self.dropped, ops = list }, "  ") .. "\n"
  elseif opts.format ~= nil and opts.format ~= "table" then
    error(string.format("profiler: summary format must be 'table' or 'json', got '%s'", tostring(opts.format)), 2)
  end
  return A.summary_table(rows, opts)
end

--- prof:bottlenecks() -> {window=, ops_time=, data_wait=, host=, top=, suggestions=} (ns)
function Profile:bottlenecks(opts) return A.bottlenecks(self, opts) end
function Profile:bottleneck_report(opts) return A.bottleneck_report(A.bottlenecks(self, opts)) end

--- prof:leaks() -> rows {op, stack, count, bytes}; prof:leak_report() -> text
function Profile:leaks() return A.leak_rows(self) end
function Profile:leak_report() return A.leak_report(A.leak_rows(self)) end

function Profile:chrome_trace() return E.chrome_trace(self) end
function Profile:speedscope() return E.speedscope(self) end
function Profile:folded() return E.folded(self) end
function Profile:flamegraph(opts) return E.flamegraph(self, opts) end
function Profile:html() return require("torsh.profiler.html").report(self) end

--- prof:export_chrome_trace(path) (and _speedscope, _folded, _flamegraph (SVG), _html)
--- -> true | nil, message (an unwritable path is a message, not an error).
function Profile:export_chrome_trace(path) return E.write(path, self:chrome_trace()) end
function Profile:export_speedscope(path) return E.write(path, self:speedscope()) end
function Profile:export_folded(path) return E.write(path, self:folded()) end
function Profile:export_flamegraph(path, opts) return E.write(path, self:flamegraph(opts)) end
function Profile:export_html(path) return E.write(path, self:html()) end

function Profile:__tostring()
  return string.format("Profile(%d events, %s, %d dropped)", #self.events, A.fmt_time(self.duration), self.dropped or 0)
end

-- ---- the session -------------------------------------------------------------------------------
--- profiler.start(opts): see the options above. Errors when one is running.
function M.start(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("profiler.start: options must be a table", 2) end
  if C.running() then error("profiler.start: the profiler is already running (stop it first)", 2) end
  local ok, err = pcall(C.start, opts)
  if not ok then error(err, 2) end
  state = { opts = opts, cycle_first = 0, manual = false }
  M.active = true
end

--- profiler.stop() -> Profile (the recorded data; also profiler.last()).
function M.stop()
  if not state then
    if last_ref[1] then return last_ref[1] end
    error("profiler.stop: the profiler is not running", 2)
  end
  -- drop unreachable tensors first, so the leak report lists only what is kept
  if state.opts.track_allocs then collectgarbage(); collectgarbage() end
  C.stop()
  M.active = false
  local opts = state.opts
  state = nil
  local p = snapshot(opts)
  last_ref[1] = p
  return p
end

--- profiler.last() -> the Profile of the last stop(), or nil.
function M.last() return last_ref[1] end

--- profiler.running() -> bool
function M.running() return C.running() end

local function advance()
  local prev = C.action()
  local step = C.info().step
  local action = C.step()
  if prev == "record_and_save" and state.opts.on_trace_ready then
    local p = snapshot(state.opts, state.cycle_first, step)
    state.cycle_first = step + 1
    state.opts.on_trace_ready(p)
  elseif prev == "none" or prev == "warmup" then
    state.cycle_first = step + 1
  end
  return action
end

--- profiler.step() -> action of the new step ("none", "warmup", "record", "record_and_save").
--- Calling it turns off step_on_batch for the session (the script counts its own steps).
function M.step()
  if not state then return "none" end
  state.manual = true
  return advance()
end

--- profiler.begin_range(name) -> token (nil when not recording); profiler.end_range(token)
function M.begin_range(name)
  if type(name) ~= "string" then error("profiler.begin_range: name must be a string", 2) end
  return C.begin_range(name)
end
M.end_range = C.end_range

--- profiler.range(name, fn, ...) -> fn(...): fn's time as a range named `name` (also on error).
function M.range(name, fn, ...)
  if type(fn) ~= "function" then error("profiler.range: fn must be a function", 2) end
  if not M.active then return fn(...) end
  local tok = C.begin_range(name)
  local res = table.pack(pcall(fn, ...))
  C.end_range(tok)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end
M.record_function = M.range

--- profiler.profile(fn, opts) -> Profile, fn's results. On error the profiler is
--- stopped (profiler.last() has what was recorded) and the error raised again.
function M.profile(fn, opts)
  M.start(opts)
  local res = table.pack(pcall(fn))
  local p = M.stop()
  if not res[1] then error(res[2], 0) end
  return p, table.unpack(res, 2, res.n)
end

--- profiler.schedule{skip_first=, wait=, warmup=, active=, repeat=} -> the same table (checked),
--- for habit: profiler.start{schedule = profiler.schedule{wait = 1, warmup = 1, active = 3}}.
function M.schedule(s)
  for _, k in ipairs { "skip_first", "wait", "warmup", "active", "repeat" } do
    local v = s[k]
    if v ~= nil and (math.type(v) ~= "integer" or v < 0) then
      error(string.format("profiler.schedule: %s must be an integer >= 0", k), 2)
    end
  end
  return s
end

--- profiler.schedule_action(schedule, step) -> action of a 0-based step (torch's rule).
function M.schedule_action(s, step) return C.schedule_action(s, step) end

-- Called by the DataLoader for every batch (stdlib/torsh/data.lua): the
-- batch is made inside a "data" range, and with step_on_batch each batch
-- starts a new step.
function M._data_next(batches)
  -- a new step starts before a fetch when a batch was handed out since the last one
  if state and state.opts.step_on_batch and not state.manual and state.fetched then
    state.fetched = false
    advance()
  end
  local tok = C.begin_range("data")
  local ok, x, y = pcall(batches.next, batches)
  C.end_range(tok)
  if not ok then error(x, 0) end
  if state and x ~= nil then state.fetched = true end
  return x, y
end

return M
