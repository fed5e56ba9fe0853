-- torsh/profiler/export.lua — a profile as files other tools read:
--   chrome_trace(p)  Chrome Trace Event JSON (Perfetto, chrome://tracing):
--                    complete "X" events with args (input shapes, dtypes,
--                    bytes), memory counters "C", thread names "M"
--   speedscope(p)    speedscope JSON, one evented profile per thread
--   folded(p)        folded stacks (flamegraph.pl input; counts = ns of self time)
--   flamegraph(p)    an SVG flame graph drawn here (hover titles, no script)
--   write(path, text) writes atomically (temp file + rename); nil, message on failure
-- The profile `p` is a torsh.profiler Profile (events nested by analysis.nest).
local A = require "torsh.profiler.analysis"

local M = {}

local escapes = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
local function jstr(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(c) return escapes[c] or string.format("\\u%04x", c:byte()) end) .. '"'
end
M.jstr = jstr

local function us(ns) return string.format("%.3f", ns / 1000) end

local function thread_name(p, tid)
  return tid == p.main_tid and "main" or ("thread " .. tid)
end

-- ---- Chrome trace ------------------------------------------------------------------------------------
local function shapes_json(shapes)
  local parts = {}
  for i, s in ipairs(shapes) do parts[i] = "[" .. table.concat(s, ",") .. "]" end
  return "[" .. table.concat(parts, ",") .. "]"
end

local function strings_json(list)
  local parts = {}
  for i, s in ipairs(list) do parts[i] = jstr(s) end
  return "[" .. table.concat(parts, ",") .. "]"
end

function M.chrome_trace(p)
  local out, pid = {}, p.pid or 1
  out[#out + 1] = string.format('{"name":"process_name","ph":"M","pid":%d,"tid":0,"args":{"name":"torsh"}}', pid)
  local seen = {}
  for _, e in ipairs(p.events) do
    if not seen[e.tid] then
      seen[e.tid] = true
      out[#out + 1] = string.format('{"name":"thread_name","ph":"M","pid":%d,"tid":%d,"args":{"name":%s}}', pid, e.tid,
        jstr(thread_name(p, e.tid)))
      out[#out + 1] = string.format('{"name":"thread_sort_index","ph":"M","pid":%d,"tid":%d,"args":{"sort_index":%d}}',
        pid, e.tid, e.tid == p.main_tid and 0 or 1)
    end
  end
  for _, e in ipairs(p.events) do
    local args = { string.format('"step":%d', e.step) }
    if e.inputs then
      local shapes, dtypes = A.parse_inputs(e.inputs)
      args[#args + 1] = '"shapes":' .. shapes_json(shapes)
      args[#args + 1] = '"dtypes":' .. strings_json(dtypes)
    end
    if e.kind ~= "range" then args[#args + 1] = '"device":' .. jstr(e.device) end
    if e.op then args[#args + 1] = '"op":' .. jstr(e.op) end
    if (e.alloc or 0) ~= 0 or (e.freed or 0) ~= 0 then
      args[#args + 1] = string.format('"bytes_alloc":%d,"bytes_freed":%d', e.alloc, e.freed)
    end
    local stack = e.stack or 0
    if stack ~= 0 and (e.parent == nil or e.parent.stack ~= stack) then
      args[#args + 1] = '"stack":' .. strings_json(A.frames(p, stack))
    end
    out[#out + 1] = string.format('{"name":%s,"cat":"%s","ph":"X","ts":%s,"dur":%s,"pid":%d,"tid":%d,"args":{%s}}',
      jstr(e.name), e.kind, us(e.t0), us(e.t1 - e.t0), pid, e.tid, table.concat(args, ","))
  end
  for _, m in ipairs(p.memory or {}) do
    out[#out + 1] = string.format('{"name":"memory %s","ph":"C","ts":%s,"pid":%d,"tid":0,"args":{"live bytes":%d}}',
      m.device, us(m.t), pid, m.live)
    out[#out + 1] = string.format('{"name":"peak memory %s","ph":"C","ts":%s,"pid":%d,"tid":0,"args":{"peak bytes":%d}}',
      m.device, us(m.t), pid, m.peak)
  end
  local other = string.format('{"tool":"torsh profiler","version":%s,"events":%d,"dropped":%d,"wall_ns":%d}',
    jstr(p.version or ""), #p.events, p.dropped or 0, p.duration or 0)
  return '{"displayTimeUnit":"ms","otherData":' .. other .. ',"traceEvents":[\n' .. table.concat(out, ",\n") .. "\n]}\n"
end

-- ---- speedscope ----------------------------------------------------------------------------------------
function M.speedscope(p)
  local frames, index = {}, {}
  local function frame(name, kind)
    local k = kind .. "\0" .. name
    local i = index[k]
    if i then return i end
    local f
    local fname, file, line = name:match("^(.-) %((.*):(%d+)%)$")
    if kind == "lua" and fname then
      f = string.format('{"name":%s,"file":%s,"line":%s}', jstr(fname), jstr(file), line)
    else
      f = string.format('{"name":%s}', jstr(name))
    end
    frames[#frames + 1] = f
    i = #frames - 1
    index[k] = i
    return i
  end
  local profiles = {}
  local by_tid, order = {}, {}
  for _, e in ipairs(p.events) do
    if not by_tid[e.tid] then by_tid[e.tid] = {}; order[#order + 1] = e.tid end
    local list = by_tid[e.tid]
    list[#list + 1] = e
  end
  for _, tid in ipairs(order) do
    local evs, open, out = {}, {}, by_tid[tid]
    local last = 0
    local function close_until(t)
      while #open > 0 and open[#open].e.t1c <= t do
        local o = table.remove(open)
        for i = #o.ids, 1, -1 do evs[#evs + 1] = string.format('{"type":"C","at":%d,"frame":%d}', o.e.t1c, o.ids[i]) end
        last = o.e.t1c
      end
    end
    for _, e in ipairs(out) do
      close_until(e.t0)
      local ids = {}
      for _, f in ipairs(e.frames or {}) do ids[#ids + 1] = frame(f, "lua") end
      ids[#ids + 1] = frame(A.fold_label(e), e.kind)
      for _, id in ipairs(ids) do evs[#evs + 1] = string.format('{"type":"O","at":%d,"frame":%d}', e.t0, id) end
      open[#open + 1] = { e = e, ids = ids }
    end
    close_until(math.huge)
    local first = out[1] and out[1].t0 or 0
    profiles[#profiles + 1] = string.format('{"type":"evented","name":%s,"unit":"nanoseconds","startValue":%d,' ..
      '"endValue":%d,"events":[%s]}', jstr(thread_name(p, tid)), first, math.max(last, first), table.concat(evs, ","))
  end
  return '{"$schema":"https://www.speedscope.app/file-format-schema.json","exporter":"torsh profiler",' ..
    '"name":"torsh profile","activeProfileIndex":0,"shared":{"frames":[' .. table.concat(frames, ",") ..
    ']},"profiles":[' .. table.concat(profiles, ",") .. ']}\n'
end

-- ---- folded stacks and the SVG flame graph --------------------------------------------------------------
function M.folded(p) return A.folded(p.tree) end

local function hash(s)
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  return h
end

--- The fill colour of a flame-graph box by kind (Lua frames cool, ops warm).
function M.color(name, kind)
  local v = hash(name) % 1000 / 1000
  if kind == "lua" then return string.format("rgb(%d,%d,%d)", 80 + math.floor(60 * v), 160 + math.floor(60 * v), 220) end
  if kind == "range" then return string.format("rgb(%d,%d,%d)", 110 + math.floor(60 * v), 200, 110) end
  if kind == "node" then return string.format("rgb(%d,%d,%d)", 190, 130 + math.floor(60 * v), 220) end
  return string.format("rgb(%d,%d,%d)", 225 + math.floor(30 * v), 90 + math.floor(120 * v), 40 + math.floor(40 * v))
end

local function xml(s) return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" })) end
M.xml = xml

--- M.flame_svg(root, {width=, title=}) -> SVG text (root at the bottom).
function M.flame_svg(root, opts)
  opts = opts or {}
  local W, row, pad = opts.width or 1200, 17, 10
  local total = root.total
  local depth = 0
  local function measure(n, d)
    if d > depth then depth = d end
    for _, c in ipairs(n.order) do measure(c, d + 1) end
  end
  measure(root, 0)
  local H = (depth + 1) * row + 50
  local out = {}
  out[#out + 1] = string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" ' ..
    'font-family="Verdana, sans-serif" font-size="11">', W, H, W, H)
  out[#out + 1] = string.format('<rect x="0" y="0" width="%d" height="%d" fill="#fdfdf6"/>', W, H)
  out[#out + 1] = string.format('<text x="%d" y="22" font-size="15" text-anchor="middle">%s</text>', W // 2,
    xml(opts.title or "torsh profile: self time by stack"))
  local scale = total > 0 and (W - 2 * pad) / total or 0
  local function draw(n, x, d)
    local w = n.total * scale
    if w < 0.3 then return end
    local y = H - (d + 1) * row - 6
    local label = n.kind == "root" and "all" or n.name
    out[#out + 1] = string.format('<g><title>%s (%s, %.2f%%)</title><rect x="%.2f" y="%d" width="%.2f" height="%d" ' ..
      'rx="2" fill="%s"/>', xml(label), A.fmt_time(n.total), total > 0 and 100 * n.total / total or 0, x, y,
      math.max(w - 0.5, 0.1), row - 1, n.kind == "root" and "rgb(200,200,200)" or M.color(n.name, n.kind))
    local chars = math.floor((w - 6) / 6.6)
    if chars >= 3 then
      local text = #label > chars and (label:sub(1, chars - 2) .. "..") or label
      out[#out + 1] = string.format('<text x="%.2f" y="%d">%s</text>', x + 3, y + row - 5, xml(text))
    end
    out[#out + 1] = "</g>"
    local cx = x
    for _, c in ipairs(n.order) do
      draw(c, cx, d + 1)
      cx = cx + c.total * scale
    end
  end
  draw(root, pad, 0)
  out[#out + 1] = "</svg>\n"
  return table.concat(out, "\n")
end

function M.flamegraph(p, opts) return M.flame_svg(p.tree, opts) end

-- ---- files ------------------------------------------------------------------------------------------------
--- M.write(path, text) -> true | nil, message (temp file + rename, so a failure leaves no half file).
function M.write(path, text)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, string.format("cannot write %s: %s", path, (err or "?"):gsub("^[^:]*: ", "")) end
  local ok, werr = f:write(text)
  local cok, cerr = f:close()
  if not ok or not cok then
    os.remove(tmp)
    return nil, string.format("cannot write %s: %s", path, werr or cerr or "?")
  end
  local rok, rerr = os.rename(tmp, path)
  if not rok then
    os.remove(tmp)
    return nil, string.format("cannot write %s: %s", path, rerr or "?")
  end
  return true
end

return M
