-- torsh/hub/semver.lua — semantic versions (semver.org 2.0) and npm-style
-- ranges for the hub's registry: parse, compare, and range matching.
--
--   local semver = require "torsh.hub.semver"
--   semver.compare("1.10.0", "1.9.3")            --> 1
--   local r = assert(semver.range("^1.2"))       -- >=1.2.0 <2.0.0
--   r:matches("1.4.0"), r:matches("2.0.0")       --> true, false
--   semver.best({"1.2.0", "1.5.1", "2.0.0"}, "~1.5") --> "1.5.1"
--
-- Ranges: "1.2.3" (exact), "1.2" / "1.2.x" (any 1.2.*), "^1.2.3"
-- (>=1.2.3 <2.0.0; ^0.2.3 is <0.3.0, ^0.0.3 is <0.0.4), "~1.4.0"
-- (>=1.4.0 <1.5.0; ~1 is <2.0.0), ">=2", ">1.2", "<3", "<=1.4", "=1.0.0",
-- "*" / "" / "latest" (anything); space- or comma-separated comparators
-- must all hold; "||" separates alternatives. A prerelease (1.3.0-rc.1) only
-- matches when a comparator of the range names a prerelease of the same
-- 1.3.0, as in npm.
local M = {}

--- M.parse(text) -> {major, minor, patch, pre = {...}, text} or nil, message.
--- A leading "v" is allowed; missing minor/patch count as 0.
function M.parse(text)
  if type(text) ~= "string" then return nil, "version must be a string" end
  local s = text:gsub("^%s*[vV]?", ""):gsub("%s*$", "")
  s = s:gsub("%+.*$", "")                               -- build metadata does not order
  local core, pre = s:match("^([%d%.]+)%-(.+)$")
  core = core or s
  local a, b, c = core:match("^(%d+)%.(%d+)%.(%d+)$")
  if not a then a, b = core:match("^(%d+)%.(%d+)$") end
  if not a then a = core:match("^(%d+)$") end
  if not a then return nil, string.format("'%s' is not a version (like 1.2.3)", text) end
  local v = { major = tonumber(a), minor = tonumber(b or 0), patch = tonumber(c or 0), pre = {}, text = text }
  if pre then
    for id in pre:gmatch("[^%.]+") do v.pre[#v.pre + 1] = tonumber(id) or id end
  end
  return v
end

local function as_version(v)
  if type(v) == "table" then return v end
  local p, err = M.parse(v)
  if not p then error(err, 3) end
  return p
end

local function compare_pre(a, b)
  if #a == 0 and #b == 0 then return 0 end
  if #a == 0 then return 1 end       -- a release is above its prereleases
  if #b == 0 then return -1 end
  for i = 1, math.max(#a, #b) do
    local x, y = a[i], b[i]
    if x == nil then return -1 end
    if y == nil then return 1 end
    if x ~= y then
      local nx, ny = type(x) == "number", type(y) == "number"
      if nx and ny then return x < y and -1 or 1 end
      if nx then return -1 end          -- numbers sort below names
      if ny then return 1 end
      return x < y and -1 or 1
    end
  end
  return 0
end

--- M.compare(a, b) -> -1, 0, 1 (strings or parsed versions).
function M.compare(a, b)
  a, b = as_version(a), as_version(b)
  for _, k in ipairs { "major", "minor", "patch" } do
    if a[k] ~= b[k] then return a[k] < b[k] and -1 or 1 end
  end
  return compare_pre(a.pre, b.pre)
end

--- M.sort(list [, descending]) sorts version strings in place; returns list.
function M.sort(list, descending)
  table.sort(list, function(x, y)
    local c = M.compare(x, y)
    if descending then return c > 0 end
    return c < 0
  end)
  return list
end

-- ---- ranges --------------------------------------------------------------------

local Range = {}
Range.__index = Range

-- A partial version "1", "1.2", "1.2.x", "1.2.3-rc.1": numbers given and how many.
local function parse_partial(s)
  s = s:gsub("^[vV]", "")
  if s == "" or s == "*" or s == "x" or s == "X" then return { n = 0 } end
  local core, pre = s:match("^([%dxX%*%.]+)%-(.+)$")
  core = core or s
  local parts = {}
  for p in (core .. "."):gmatch("([^%.]*)%.") do parts[#parts + 1] = p end
  if #parts > 3 or #parts == 0 then return nil end
  local out = { n = 0 }
  for i, p in ipairs(parts) do
    if p == "x" or p == "X" or p == "*" then break end
    if not p:match("^%d+$") then return nil end
    out[i] = tonumber(p)
    out.n = i
  end
  if pre then
    if out.n < 3 then return nil end
    out.pre = {}
    for id in pre:gmatch("[^%.]+") do out.pre[#out.pre + 1] = tonumber(id) or id end
  end
  return out
end

local function ver(major, minor, patch, pre)
  return { major = major, minor = minor or 0, patch = patch or 0, pre = pre or {} }
end

-- Comparators {op, version} for one range token.
local function comparators(tok)
  local op, rest = tok:match("^([<>=~^]*)(.*)$")
  local p = parse_partial(rest)
  if not p then return nil end
  local a, b, c, n = p[1], p[2], p[3], p.n
  if op == "" or op == "=" then
    if n == 0 then return {} end
    if n == 3 then return { { "=", ver(a, b, c, p.pre) } } end
    if n == 2 then return { { ">=", ver(a, b, 0) }, { "<", ver(a, b + 1, 0) } } end
    return { { ">=", ver(a, 0, 0) }, { "<", ver(a + 1, 0, 0) } }
  elseif op == "^" then
    if n == 0 then return {} end
    local lo = ver(a, b, c, p.pre)
    if a > 0 or n == 1 then return { { ">=", lo }, { "<", ver(a + 1, 0, 0) } } end
    if b > 0 or n == 2 then return { { ">=", lo }, { "<", ver(0, b + 1, 0) } } end
    return { { ">=", lo }, { "<", ver(0, 0, c + 1) } }
  elseif op == "~" then
    if n == 0 then return {} end
    local lo = ver(a, b, c, p.pre)
    if n == 1 then return { { ">=", lo }, { "<", ver(a + 1, 0, 0) } } end
    return { { ">=", lo }, { "<", ver(a, b + 1, 0) } }
  elseif op == ">=" then
    return n == 0 and {} or { { ">=", ver(a, b, c, p.pre) } }
  elseif op == ">" then
    if n == 0 then return { { "<", ver(0, 0, 0) } } end      -- >* matches nothing
    if n == 3 then return { { ">", ver(a, b, c, p.pre) } } end
    if n == 2 then return { { ">=", ver(a, b + 1, 0) } } end
    return { { ">=", ver(a + 1, 0, 0) } }
  elseif op == "<" then
    if n == 0 then return { { "<", ver(0, 0, 0) } } end
    return { { "<", ver(a, b, c, p.pre) } }
  elseif op == "<=" then
    if n == 0 then return {} end
    if n == 3 then return { { "<=", ver(a, b, c, p.pre) } } end
    if n == 2 then return { { "<", ver(a, b + 1, 0) } } end
    return { { "<", ver(a + 1, 0, 0) } }
  end
  return nil
end

--- M.range(text) -> Range or nil, message.
function M.range(text)
  text = text or "*"
  if type(text) ~= "string" then return nil, "version range must be a string" end
  local sets = {}
  local trimmed = text:gsub("^%s+", ""):gsub("%s+$", "")
  if trimmed == "latest" then trimmed = "*" end
  for alt in (trimmed .. "||"):gmatch("(.-)||") do
    local set = {}
    -- "> = 2" style spacing is not allowed; ">= 2" is: glue operators to what follows
    local glued = alt:gsub("([<>=~^]+)%s+", "%1"):gsub(",", " ")
    local any = false
    for tok in glued:gmatch("%S+") do
      any = true
      local cs = comparators(tok)
      if not cs then return nil, string.format("'%s' is not a version range (like ^1.2, ~1.4.0, >=2, 1.2.3)", text) end
      for _, c in ipairs(cs) do set[#set + 1] = c end
    end
    if not any and #sets > 0 and alt:match("^%s*$") then
      return nil, string.format("'%s' is not a version range (empty alternative)", text)
    end
    sets[#sets + 1] = set
  end
  return setmetatable({ text = text, sets = sets }, Range)
end

local function holds(op, v, w)
  local c = M.compare(v, w)
  if op == "=" then return c == 0 end
  if op == ">=" then return c >= 0 end
  if op == ">" then return c > 0 end
  if op == "<" then return c < 0 end
  if op == "<=" then return c <= 0 end
  return false
end

local function same_tuple(a, b) return a.major == b.major and a.minor == b.minor and a.patch == b.patch end

--- range:matches(version) -> boolean
function Range:matches(v)
  local pv = type(v) == "table" and v or M.parse(v)
  if not pv then return false end
  for _, set in ipairs(self.sets) do
    local ok = true
    for _, c in ipairs(set) do
      if not holds(c[1], pv, c[2]) then ok = false break end
    end
    if ok and #pv.pre > 0 then        -- prereleases need an explicit invitation
      ok = false
      for _, c in ipairs(set) do
        if #c[2].pre > 0 and same_tuple(c[2], pv) then ok = true break end
      end
    end
    if ok then return true end
  end
  return false
end

function Range:__tostring() return self.text end

--- M.satisfies(version, range_text) -> boolean (raises on a bad range)
function M.satisfies(v, range_text)
  local r, err = M.range(range_text)
  if not r then error(err, 2) end
  return r:matches(v)
end

--- M.best(versions, range_text) -> the highest version matching, or nil.
function M.best(versions, range_text)
  local r, err = M.range(range_text)
  if not r then return nil, err end
  local best
  for _, v in ipairs(versions) do
    if r:matches(v) and (not best or M.compare(v, best) > 0) then best = v end
  end
  return best
end

return M
