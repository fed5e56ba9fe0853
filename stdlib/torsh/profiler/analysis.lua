-- torsh/profiler/analysis.lua — what the exporters and reports share: the
-- nesting of events per thread (parent, depth, self time), the call tree
-- that folds Lua stacks and nested events into one path per event, input
-- descriptions parsed into shapes and dtypes, the summary by op, the
-- bottleneck report and the leak report. Times are integer nanoseconds
-- since the profiler started.
local M = {}

-- ---- inputs ---------------------------------------------------------------------------------
local parsed_inputs = {}

--- M.parse_inputs("f32[2,3] scalar") -> {{2, 3}, {}}, {"f32", "scalar"}
function M.parse_inputs(s)
  if not s then return {}, {} end
  local hit = parsed_inputs[s]
  if hit then return hit[1], hit[2] end
  local shapes, dtypes = {}, {}
  for item in s:gmatch("%S+") do
    local dt, dims = item:match("^([%w_]+)%[([%d,%-]*)%]$")
    local shape = {}
    if dt then
      for d in dims:gmatch("%-?%d+") do shape[#shape + 1] = tonumber(d) end
    else
      dt = item
    end
    shapes[#shapes + 1], dtypes[#dtypes + 1] = shape, dt
  end
  parsed_inputs[s] = { shapes, dtypes }
  return shapes, dtypes
end

-- ---- nesting ------------------------------------------------------------------------------------
--- M.nest(events): sorts events by thread then start (longest first on ties)
--- and sets e.parent, e.depth, e.t1c (end clamped into the parent) and
--- e.self (duration minus direct children). Returns the thread ids in order.
function M.nest(events)
  table.sort(events, function(a, b)
    if a.tid ~= b.tid then return a.tid < b.tid end
    if a.t0 ~= b.t0 then return a.t0 < b.t0 end
    if a.t1 ~= b.t1 then return a.t1 > b.t1 end
    return a.kind == "range" and b.kind ~= "range"
  end)
  local tids, stack, tid = {}, {}, nil
  for _, e in ipairs(events) do
    if e.tid ~= tid then
      tid, stack = e.tid, {}
      tids[#tids + 1] = tid
    end
    while #stack > 0 and stack[#stack].t1c <= e.t0 do stack[#stack] = nil end
    local p = stack[#stack]
    e.t1c = e.t1
    if p and e.t1c > p.t1c then e.t1c = p.t1c end
    e.parent, e.depth = p, #stack
    e.self = e.t1c - e.t0
    if p then p.self = p.self - (e.t1c - e.t0) end
    stack[#stack + 1] = e
  end
  return tids
end

-- ---- Lua stacks and the call tree ----------------------------------------------------------------
-- stacks[id] = {parent id, frame}; frames of a stack, root first, memoised in
-- `memo`. Frames for which memo.hide(frame) is true are left out.
local function stack_frames(stacks, id, memo)
  if id == 0 or not stacks[id] then return {} end
  local f = memo[id]
  if f then return f end
  local node = stacks[id]
  local up = stack_frames(stacks, node[1], memo)
  if memo.hide and memo.hide(node[2]) then
    f = up
  else
    f = table.move(up, 1, #up, 1, {})
    f[#f + 1] = node[2]
  end
  memo[id] = f
  return f
end

--- M.frame_memo(hide_sources) -> a memo for stack_frames that hides the
--- profiler's own frames and those of the listed sources (short_src strings).
function M.frame_memo(hide_sources)
  local hidden = {}
  for _, src in ipairs(hide_sources or {}) do hidden[#hidden + 1] = src end
  return { hide = function(frame)
    if frame:find("torsh/profiler%.lua:%d+%)$") then return true end
    for _, src in ipairs(hidden) do
      if frame:find("(" .. src .. ":", 1, true) or frame:sub(-#src - 2) == "(" .. src .. ")" then return true end
    end
    return false
  end }
end

--- M.frames(p, id) -> the Lua frames of stack `id` of profile p, root first.
function M.frames(p, id)
  p.frame_memo = p.frame_memo or M.frame_memo(p.options and p.options.hide_sources)
  return stack_frames(p.stacks, id or 0, p.frame_memo)
end

-- The frames of stack `s` below its common ancestor with stack `p`.
local function extra_frames(stacks, p, s, memo, cache)
  local key = p .. ":" .. s
  local hit = cache[key]
  if hit then return hit end
  local pf, sf = stack_frames(stacks, p, memo), stack_frames(stacks, s, memo)
  local common = 0
  while common < #pf and common < #sf and pf[common + 1] == sf[common + 1] do common = common + 1 end
  -- only the leaf part that belongs to s: stacks of nested events share a prefix
  local out = table.move(sf, common + 1, #sf, 1, {})
  cache[key] = out
  return out
end

--- The label of an event on a timeline: graph nodes show their op type.
function M.label(e)
  if e.kind == "node" and e.op and e.op ~= e.name then return e.op .. " " .. e.name end
  return e.name
end

--- The label in stacks and flame graphs: the same, with every ProfilerStep#N
--- one frame, so the steps merge.
function M.fold_label(e)
  if e.kind == "range" and e.name:match("^ProfilerStep#%d+$") then return "ProfilerStep#*" end
  return M.label(e)
end

local function child(node, name, kind)
  local c = node.children[name]
  if not c then
    c = { name = name, kind = kind, self = 0, total = 0, children = {}, order = {} }
    node.children[name] = c
    node.order[#node.order + 1] = c
  end
  return c
end

--- M.tree(events, stacks) -> root: the call tree of nested events and the
--- Lua frames between them; node.self sums the self times (ns) of the
--- events ending there, node.total its subtree. Needs M.nest first.
--- Each event gets e.node and e.frames (the Lua frames opened before it).
function M.tree(events, stacks, memo)
  local root = { name = "all", kind = "root", self = 0, total = 0, children = {}, order = {} }
  local cache = {}
  memo = memo or M.frame_memo()
  for _, e in ipairs(events) do
    local p = e.parent
    local node = p and p.node or root
    local frames = extra_frames(stacks, p and p.stack or 0, e.stack or 0, memo, cache)
    for _, f in ipairs(frames) do node = child(node, f, "lua") end
    node = child(node, M.fold_label(e), e.kind)
    e.node, e.frames = node, frames
    node.self = node.self + e.self
  end
  local function sum(n)
    local t = n.self
    for _, c in ipairs(n.order) do t = t + sum(c) end
    n.total = t
    return t
  end
  sum(root)
  return root
end

--- M.folded(root) -> "a;b;c 123\n..." (flamegraph.pl input; counts are ns of self time).
function M.folded(root)
  local out, path = {}, {}
  local function walk(n)
    path[#path + 1] = (n.name:gsub("[;\n]", ":"))
    if n.self > 0 then out[#out + 1] = table.concat(path, ";") .. " " .. math.floor(n.self) end
    for _, c in ipairs(n.order) do walk(c) end
    path[#path] = nil
  end
  for _, c in ipairs(root.order) do walk(c) end
  return table.concat(out, "\n") .. (#out > 0 and "\n" or "")
end

-- ---- windows and coverage -------------------------------------------------------------------------
local function merge(iv)
  table.sort(iv, function(a, b) return a[1] < b[1] end)
  local out = {}
  for _, x in ipairs(iv) do
    local last = out[#out]
    if last and x[1] <= last[2] then
      if x[2] > last[2] then last[2] = x[2] end
    else
      out[#out + 1] = { x[1], x[2] }
    end
  end
  return out
end

local function length_within(iv, windows)
  local total = 0
  for _, w in ipairs(windows) do
    for _, x in ipairs(iv) do
      local a, b = math.max(x[1], w[1]), math.min(x[2], w[2])
      if b > a then total = total + (b - a) end
    end
  end
  return total
end

local function is_step(e) return e.kind == "range" and e.name:match("^ProfilerStep#%d+$") ~= nil end
M.is_step = is_step

--- M.windows(profile) -> list of {t0, t1} the profile covers on the main
--- thread (its kept steps, or the whole session), and their total length.
function M.windows(p)
  local w, total = {}, 0
  for _, e in ipairs(p.events) do
    if is_step(e) then w[#w + 1] = { e.t0, e.t1 } end
  end
  if #w == 0 then w[1] = { 0, p.duration } end
  w = merge(w)
  for _, x in ipairs(w) do total = total + x[2] - x[1] end
  return w, total
end

-- ---- summary by op ------------------------------------------------------------------------------------
local function summary_key(e)
  if is_step(e) then return "ProfilerStep#*" end
  if e.kind == "node" and e.op then return e.op end
  return e.name
end

--- M.key_averages(profile, {group_by_shape=, sort="self"|"total"|"count"|"mean"|"name", kinds=})
--- -> rows {name, kind, shapes, count, total, self, mean, self_pct, total_pct, alloc, freed}
--- (times in ns; percentages of the profiled wall time).
function M.key_averages(p, opts)
  opts = opts or {}
  local _, window = M.windows(p)
  local rows, by = {}, {}
  for _, e in ipairs(p.events) do
    local name = summary_key(e)
    local key = opts.group_by_shape and (name .. "\0" .. (e.inputs or "")) or name
    local r = by[key]
    if not r then
      r = { name = name, kind = e.kind, shapes = opts.group_by_shape and (e.inputs or "") or nil,
            count = 0, total = 0, self = 0, alloc = 0, freed = 0 }
      by[key] = r
      rows[#rows + 1] = r
    end
    r.count = r.count + 1
    r.total = r.total + (e.t1 - e.t0)
    r.self = r.self + e.self
    r.alloc = r.alloc + (e.alloc or 0)
    r.freed = r.freed + (e.freed or 0)
  end
  for _, r in ipairs(rows) do
    r.mean = r.total / r.count
    r.self_pct = window > 0 and 100 * r.self / window or 0
    r.total_pct = window > 0 and 100 * r.total / window or 0
  end
  local sort = opts.sort or "self"
  local keys = { self = "self", total = "total", count = "count", mean = "mean", name = "name",
                 self_pct = "self", total_pct = "total", alloc = "alloc" }
  local k = keys[sort]
  if not k then error(string.format("profiler: cannot sort by '%s' (self, total, count, mean, name, alloc)", tostring(sort)), 3) end
  table.sort(rows, function(a, b)
    if k == "name" then return a.name < b.name end
    if a[k] ~= b[k] then return a[k] > b[k] end
    return a.name < b.name
  end)
  if opts.limit and #rows > opts.limit then
    for i = #rows, opts.limit + 1, -1 do rows[i] = nil end
  end
  return rows
end

local function fmt_time(ns)
  if ns >= 1e9 then return string.format("%.3f s", ns / 1e9) end
  if ns >= 1e6 then return string.format("%.3f ms", ns / 1e6) end
  return string.format("%.3f us", ns / 1e3)
end
M.fmt_time = fmt_time

local function fmt_bytes(b)
  local a = math.abs(b)
  if a >= 2 ^ 30 then return string.format("%.2f GiB", b / 2 ^ 30) end
  if a >= 2 ^ 20 then return string.format("%.2f MiB", b / 2 ^ 20) end
  if a >= 2 ^ 10 then return string.format("%.1f KiB", b / 2 ^ 10) end
  return string.format("%d B", b)
end
M.fmt_bytes = fmt_bytes

--- M.summary_table(rows, opts) -> aligned text table.
function M.summary_table(rows, opts)
  local cols = { { "name", "Name" } }
  if opts and opts.group_by_shape then cols[#cols + 1] = { "shapes", "Input shapes" } end
  for _, c in ipairs { { "self_pct_s", "Self %" }, { "self_s", "Self" }, { "total_pct_s", "Total %" },
                       { "total_s", "Total" }, { "mean_s", "Mean" }, { "count", "Calls" }, { "alloc_s", "Alloc" } } do
    cols[#cols + 1] = c
  end
  local view = {}
  for i, r in ipairs(rows) do
    view[i] = { name = r.name, shapes = r.shapes, count = r.count,
                self_pct_s = string.format("%.2f%%", r.self_pct), self_s = fmt_time(r.self),
                total_pct_s = string.format("%.2f%%", r.total_pct), total_s = fmt_time(r.total),
                mean_s = fmt_time(r.mean), alloc_s = fmt_bytes(r.alloc) }
  end
  local widths = {}
  for i, c in ipairs(cols) do widths[i] = #c[2] end
  for _, r in ipairs(view) do
    for i, c in ipairs(cols) do widths[i] = math.max(widths[i], #tostring(r[c[1]] or "")) end
  end
  local lines = {}
  local function line(cells)
    local parts = {}
    for i, v in ipairs(cells) do
      -- padded by hand: string.format's %-Ns stops at a width of 99
      local fill = string.rep(" ", widths[i] - #v)
      parts[i] = i == 1 and (v .. fill) or (fill .. v)
    end
    lines[#lines + 1] = table.concat(parts, "  ")
  end
  local head = {}
  for i, c in ipairs(cols) do head[i] = c[2] end
  line(head)
  local rule = {}
  for i in ipairs(cols) do rule[i] = string.rep("-", widths[i]) end
  line(rule)
  for _, r in ipairs(view) do
    local cells = {}
    for i, c in ipairs(cols) do cells[i] = tostring(r[c[1]] or "") end
    line(cells)
  end
  return table.concat(lines, "\n") .. "\n"
end

-- ---- bottlenecks ----------------------------------------------------------------------------------------
local tips = {
  conv2d = "convolution is compute-bound here: check torsh.get_num_threads() against the cores, and the batch size",
  conv1d = "convolution is compute-bound here: check the thread count and the batch size",
  matmul = "BLAS-bound: check the BLAS kernel and threads (torsh info); larger batches use it better",
  mm = "BLAS-bound: check the BLAS kernel and threads (torsh info)",
  bmm = "BLAS-bound: check the BLAS kernel and threads (torsh info)",
  linear = "BLAS-bound: check the BLAS kernel and threads (torsh info); larger batches use it better",
  backward = "autograd's backward pass (gradients of the forward ops) is usually 1-2x the forward time",
  item = "each :item() copies one value to Lua; accumulate metrics in tensors and read them less often",
  totable = "copying tensors to Lua tables is slow; keep data in tensors",
  to = "dtype/device conversions copy the tensor; convert once outside the loop",
  contiguous = "layout copies: avoid transposes/permutes before ops that need contiguous inputs",
  clone = "copies: check the clones are needed",
  cat = "concatenation copies its inputs; preallocate and fill slices instead",
  stack = "stacking copies its inputs; batch in the data loader's C path instead",
}

--- M.bottlenecks(profile) -> {window=, ops_time=, data_wait=, host=, top={rows}, suggestions={lines}}
function M.bottlenecks(p, opts)
  opts = opts or {}
  local windows, window = M.windows(p)
  local main = p.main_tid
  local busy, data = {}, {}
  for _, e in ipairs(p.events) do
    if e.tid == main then
      if e.kind == "op" or e.kind == "node" then busy[#busy + 1] = { e.t0, e.t1 }
      elseif e.kind == "range" and e.name == "data" then
        busy[#busy + 1] = { e.t0, e.t1 }
        data[#data + 1] = { e.t0, e.t1 }
      end
    end
  end
  local covered = length_within(merge(busy), windows)
  local data_wait = length_within(merge(data), windows)
  local host = math.max(0, window - covered)
  local rows = M.key_averages(p, { sort = "self" })
  local top, op_self = {}, 0
  for _, r in ipairs(rows) do
    if r.kind == "op" or r.kind == "node" then
      op_self = op_self + r.self
      if #top < (opts.limit or 10) then top[#top + 1] = r end
    end
  end
  local s = {}
  local function pct(x) return window > 0 and 100 * x / window or 0 end
  if pct(data_wait) >= 10 then
    s[#s + 1] = string.format("waiting on data takes %.0f%% of the time: raise the DataLoader's num_workers/prefetch, " ..
      "or keep transforms in torsh.data.transforms so batches are made in C threads", pct(data_wait))
  end
  local n_ops = 0
  for _, r in ipairs(rows) do if r.kind == "op" or r.kind == "node" then n_ops = n_ops + r.count end end
  if n_ops == 0 then
    s[#s + 1] = "no ops were recorded: nothing called torsh ops while profiling, or the schedule kept no step"
  elseif pct(host) >= 30 then
    s[#s + 1] = string.format("%.0f%% of the time is outside any op (Lua and host code): %d ops averaged %s; " ..
      "fewer, larger ops (bigger batches, vectorised code instead of Lua loops) cut this", pct(host), n_ops,
      fmt_time(n_ops > 0 and covered / n_ops or 0))
  end
  for i = 1, math.min(3, #top) do
    local r = top[i]
    if r.self_pct >= 15 then
      local tip = tips[r.name] or "the largest share of op time: look at its input shapes (--group-by-shape)"
      s[#s + 1] = string.format("%s takes %.0f%% of the time (%d calls, mean %s): %s", r.name, r.self_pct, r.count,
        fmt_time(r.mean), tip)
    end
  end
  for _, r in ipairs(rows) do
    if (r.kind == "op") and r.count >= 1000 and r.mean < 5000 and r.total_pct >= 5 then
      s[#s + 1] = string.format("%d calls of %s averaging %s: per-op overhead dominates; batch these calls", r.count,
        r.name, fmt_time(r.mean))
      break
    end
  end
  if (p.dropped or 0) > 0 then
    s[#s + 1] = string.format("%d early events were dropped by the ring buffer: raise max_events or profile fewer steps " ..
      "with a schedule", p.dropped)
  end
  if p.live_allocs and #p.live_allocs > 0 then
    local b = 0
    for _, l in ipairs(p.live_allocs) do b = b + l.bytes end
    s[#s + 1] = string.format("%d allocations (%s) made while profiling are still alive at the end: see the leak report",
      #p.live_allocs, fmt_bytes(b))
  end
  if #s == 0 then s[1] = "no single bottleneck stands out" end
  return { window = window, ops_time = covered - data_wait, data_wait = data_wait, host = host, op_self = op_self,
           top = top, suggestions = s }
end

function M.bottleneck_report(b)
  local lines = {}
  local function pct(x) return b.window > 0 and 100 * x / b.window or 0 end
  lines[#lines + 1] = string.format("profiled wall time %s: ops %s (%.1f%%), waiting on data %s (%.1f%%), " ..
    "outside any op (Lua/host) %s (%.1f%%)", fmt_time(b.window), fmt_time(b.ops_time), pct(b.ops_time),
    fmt_time(b.data_wait), pct(b.data_wait), fmt_time(b.host), pct(b.host))
  if #b.top > 0 then
    lines[#lines + 1] = "top ops by self time:"
    for i, r in ipairs(b.top) do
      lines[#lines + 1] = string.format("  %2d. %-24s %10s  %5.1f%%  %6d calls  mean %s", i, r.name, fmt_time(r.self),
        r.self_pct, r.count, fmt_time(r.mean))
    end
  end
  lines[#lines + 1] = "suggestions:"
  for _, s in ipairs(b.suggestions) do lines[#lines + 1] = "  - " .. s end
  return table.concat(lines, "\n") .. "\n"
end

-- ---- leaks -------------------------------------------------------------------------------------------------
--- M.leak_rows(profile) -> rows {op, stack (leaf first, " < " joined), count, bytes} largest first.
function M.leak_rows(p)
  local by, rows = {}, {}
  for _, l in ipairs(p.live_allocs or {}) do
    local frames = M.frames(p, l.stack)
    local rev = {}
    for i = #frames, 1, -1 do rev[#rev + 1] = frames[i] end
    local where = table.concat(rev, " < ")
    local key = l.op .. "\0" .. where
    local r = by[key]
    if not r then
      r = { op = l.op, stack = where, count = 0, bytes = 0, device = l.device }
      by[key] = r
      rows[#rows + 1] = r
    end
    r.count, r.bytes = r.count + 1, r.bytes + l.bytes
  end
  table.sort(rows, function(a, b) return a.bytes > b.bytes end)
  return rows
end

function M.leak_report(rows)
  if #rows == 0 then return "no allocations made while profiling are left\n" end
  local lines, total, n = {}, 0, 0
  for _, r in ipairs(rows) do total, n = total + r.bytes, n + r.count end
  lines[1] = string.format("%d allocations (%s) made while profiling are still alive:", n, fmt_bytes(total))
  for _, r in ipairs(rows) do
    lines[#lines + 1] = string.format("  %10s in %4d block%s from %s%s", fmt_bytes(r.bytes), r.count,
      r.count == 1 and " " or "s", r.op, r.stack ~= "" and ("  at " .. r.stack) or "")
  end
  return table.concat(lines, "\n") .. "\n"
end

return M
