-- torsh/format.lua — turns tensors into text the way PyTorch prints them:
--   tensor([[1.0000, 2.5000],
--           [3.0000, 4.0000]])
-- Floats print with 4 decimals (or as "1." when all are whole numbers),
-- switching to scientific notation for very large/small magnitudes; tensors
-- above `threshold` elements are summarised with "..." keeping `edgeitems`
-- rows at each end; dtypes other than the defaults (f32, i64, bool) are named.
local M = {}

local opts = { precision = 4, threshold = 1000, edgeitems = 3, linewidth = 80, sci_mode = nil }

--- set_printoptions{precision=, threshold=, edgeitems=, linewidth=, sci_mode=}
function M.set_printoptions(o)
  for k, v in pairs(o) do
    if opts[k] == nil and k ~= "sci_mode" then error("set_printoptions: unknown option '" .. tostring(k) .. "'", 2) end
    opts[k] = v
  end
end

local function is_float(dt) return dt == "f32" or dt == "f64" or dt == "f16" or dt == "bf16" end

-- Values that will be shown (all, or the edges when summarising), flattened.
local function shown_values(t, summarize)
  local vals = {}
  local function walk(x, depth)
    if x:dim() == 0 then vals[#vals + 1] = x:item(); return end
    local n = x:size(1)
    if x:dim() == 1 and not summarize then
      for _, v in ipairs(x:totable()) do vals[#vals + 1] = v end
      return
    end
    local e = opts.edgeitems
    for i = 1, n do
      if summarize and n > 2 * e and i > e and i <= n - e then goto continue end
      walk(x:select(1, i), depth + 1)
      ::continue::
    end
  end
  walk(t, 0)
  return vals
end

local function make_formatter(t, vals)
  local dt = t:dtype()
  if dt == "bool" then
    return function(v) return v and "True" or "False" end, 5
  end
  if not is_float(dt) then
    local w = 1
    for _, v in ipairs(vals) do w = math.max(w, #string.format("%d", v)) end
    return function(v) return string.format("%d", v) end, w
  end
  local finite, all_int, maxa, mina = {}, true, 0, math.huge
  for _, v in ipairs(vals) do
    if v == v and v ~= math.huge and v ~= -math.huge then
      finite[#finite + 1] = v
      if v ~= math.floor(v) then all_int = false end
      local a = math.abs(v)
      if a > maxa then maxa = a end
      if a ~= 0 and a < mina then mina = a end
    end
  end
  local p = opts.precision
  local sci = opts.sci_mode
  if sci == nil then
    sci = #finite > 0 and (maxa >= 1e8 or (mina ~= math.huge and (mina < 1e-4 or maxa / mina > 1000) and not all_int))
  end
  local fmt
  if sci then
    fmt = function(v) return string.format("%." .. p .. "e", v) end
  elseif all_int then
    fmt = function(v) return string.format("%.0f.", v) end
  else
    fmt = function(v) return string.format("%." .. p .. "f", v) end
  end
  local function show(v)
    if v ~= v then return "nan" end
    if v == math.huge then return "inf" end
    if v == -math.huge then return "-inf" end
    return fmt(v)
  end
  local w = 1
  for _, v in ipairs(vals) do w = math.max(w, #show(v)) end
  return show, w
end

local function render(x, show, width, indent, summarize)
  if x:dim() == 0 then return string.format("%" .. width .. "s", show(x:item())) end
  local n, e = x:size(1), opts.edgeitems
  local parts = {}
  if x:dim() == 1 then
    local vals = x:totable()
    local per_line = math.max(1, math.floor((opts.linewidth - indent) / (width + 2)))
    local items = {}
    for i = 1, n do
      if summarize and n > 2 * e and i > e and i <= n - e then
        if i == e + 1 then items[#items + 1] = " ..." end
      else
        items[#items + 1] = string.format("%" .. width .. "s", show(vals[i]))
      end
    end
    local lines, cur = {}, {}
    for _, it in ipairs(items) do
      cur[#cur + 1] = it
      if #cur == per_line then lines[#lines + 1] = table.concat(cur, ", "); cur = {} end
    end
    if #cur > 0 then lines[#lines + 1] = table.concat(cur, ", ") end
    return "[" .. table.concat(lines, ",\n" .. string.rep(" ", indent + 1)) .. "]"
  end
  for i = 1, n do
    if summarize and n > 2 * e and i > e and i <= n - e then
      if i == e + 1 then parts[#parts + 1] = "..." end
    else
      parts[#parts + 1] = render(x:select(1, i), show, width, indent + 1, summarize)
    end
  end
  local sep = "," .. string.rep("\n", x:dim() - 1) .. string.rep(" ", indent + 1)
  return "[" .. table.concat(parts, sep) .. "]"
end

--- format.tensor(t) -> string, the text tostring(t) gives.
function M.tensor(t)
  if t:is_freed() then return "tensor(<freed>)" end
  local dt = t:dtype()
  local suffix = {}
  if t:numel() == 0 then
    local s = "tensor([]"
    if t:dim() ~= 1 then suffix[#suffix + 1] = "size=(" .. table.concat(t:shape(), ", ") .. ")" end
    if dt ~= "f32" then suffix[#suffix + 1] = "dtype=" .. dt end
    return s .. (#suffix > 0 and ", " .. table.concat(suffix, ", ") or "") .. ")"
  end
  local summarize = t:numel() > opts.threshold
  local src = t
  if dt == "f16" or dt == "bf16" then src = t:to("f32") end
  local show, width = make_formatter(t, shown_values(src, summarize))
  local body = render(src, show, width, #"tensor(", summarize)
  if t:device() ~= "cpu" then suffix[#suffix + 1] = "device='" .. t:device() .. "'" end
  if dt ~= "f32" and dt ~= "i64" and dt ~= "bool" then suffix[#suffix + 1] = "dtype=" .. dt end
  return "tensor(" .. body .. (#suffix > 0 and ", " .. table.concat(suffix, ", ") or "") .. ")"
end

--- format.table(t) -> a short one-line rendering of a Lua table (REPL).
function M.table(tbl, depth)
  depth = depth or 0
  if depth > 2 then return "{...}" end
  local parts, n = {}, 0
  for i, v in ipairs(tbl) do
    n = n + 1
    if n > 20 then parts[#parts + 1] = "..."; break end
    parts[#parts + 1] = type(v) == "table" and M.table(v, depth + 1) or tostring(v)
  end
  local keys = {}
  for k in pairs(tbl) do
    if not (math.type(k) == "integer" and k >= 1 and k <= #tbl) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for i, k in ipairs(keys) do
    if i > 20 then parts[#parts + 1] = "..."; break end
    local v = tbl[k]
    parts[#parts + 1] = tostring(k) .. " = " .. (type(v) == "table" and M.table(v, depth + 1) or tostring(v))
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

return M
