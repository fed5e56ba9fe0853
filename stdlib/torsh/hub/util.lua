-- torsh/hub/util.lua — small helpers the hub modules share: the settings
-- (TORSH_HOME, config.json, environment), sizes and durations with units,
-- URL pieces, JSON files written atomically, and path helpers.
local core = require "torsh.hub.core"
local cjson = require "cjson"

local M = {}

-- ---- settings ----------------------------------------------------------------------

local home_override

--- M.set_home(path): use path instead of $TORSH_HOME in this Lua state
--- (tests, embedding hosts); nil goes back to the environment.
function M.set_home(path) home_override = path end

--- M.home() -> $TORSH_HOME or ~/.cache/torsh
function M.home()
  if home_override then return home_override end
  local h = os.getenv("TORSH_HOME")
  if h and h ~= "" then return (h:gsub("/+$", "")) end
  local xdg = os.getenv("XDG_CACHE_HOME")
  if xdg and xdg ~= "" then return xdg .. "/torsh" end
  return (os.getenv("HOME") or ".") .. "/.cache/torsh"
end

--- M.config() -> the table in $TORSH_HOME/config.json ({} when absent).
--- Keys: registry, mirrors (list of base URLs), token, token_hosts (list).
function M.config()
  local t = M.read_json(M.home() .. "/config.json")
  return type(t) == "table" and t or {}
end

--- M.env_list(name) -> list from a comma- or space-separated variable.
function M.env_list(name)
  local out = {}
  for item in (os.getenv(name) or ""):gmatch("[^,%s]+") do out[#out + 1] = item end
  return out
end

function M.offline() return core.offline() end

-- ---- JSON files ---------------------------------------------------------------------

--- M.decode(text, what) -> value or nil, message (JSON null becomes nil,
--- whole numbers become Lua integers).
function M.decode(text, what)
  local ok, v = pcall(cjson.decode, text)
  if not ok then return nil, string.format("%s: invalid JSON: %s", what, tostring(v):gsub("^.-:%d+: ", "")) end
  local function strip(x)
    if x == cjson.null then return nil end
    if math.type(x) == "float" then return math.tointeger(x) or x end
    if type(x) == "table" then
      for k, y in pairs(x) do x[k] = strip(y) end
    end
    return x
  end
  return strip(v)
end

--- M.read_file(path) -> text or nil, message
function M.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

--- M.read_json(path) -> value or nil, message
function M.read_json(path)
  local s, err = M.read_file(path)
  if not s then return nil, err end
  return M.decode(s, path)
end

--- M.write_file(path, text) writes atomically (temp file + rename).
function M.write_file(path, text)
  local tmp = string.format("%s.tmp-%d", path, core.getpid())
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(text)
  f:close()
  if not ok then os.remove(tmp) return nil, werr end
  local rok, rerr = os.rename(tmp, path)
  if not rok then os.remove(tmp) return nil, rerr end
  return true
end

--- M.write_json(path, value) with cli's stable, indented JSON.
function M.write_json(path, value)
  local cli = require "torsh.cli"
  return M.write_file(path, cli.json(value, "  ") .. "\n")
end

-- ---- units ------------------------------------------------------------------------------

local SIZE_UNITS = { b = 1, kb = 1e3, mb = 1e6, gb = 1e9, tb = 1e12, k = 1e3, m = 1e6, g = 1e9,
                     kib = 2 ^ 10, mib = 2 ^ 20, gib = 2 ^ 30, tib = 2 ^ 40 }

--- M.parse_size("20MB") -> 20000000 (KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024).
function M.parse_size(s)
  if type(s) == "number" then return s end
  if type(s) ~= "string" then return nil, "size must be a number or a string like 20MB" end
  local num, unit = s:match("^%s*([%d%.]+)%s*(%a*)%s*$")
  local n = tonumber(num)
  local mul = SIZE_UNITS[(unit or ""):lower()] or (unit == "" and 1)
  if not n or not mul then return nil, string.format("'%s' is not a size (like 20MB, 1.5GiB)", s) end
  return math.floor(n * mul + 0.5)
end

--- M.parse_ms("10ms") -> 10 ; "0.5s" -> 500 ; "200us" -> 0.2 ; a number is ms.
function M.parse_ms(s)
  if type(s) == "number" then return s end
  if type(s) ~= "string" then return nil, "duration must be a number or a string like 10ms" end
  local num, unit = s:match("^%s*([%d%.]+)%s*(%a*)%s*$")
  local n = tonumber(num)
  local mul = ({ [""] = 1, ms = 1, s = 1000, us = 1e-3, ["µs"] = 1e-3, m = 60000, min = 60000 })[(unit or ""):lower()]
  if not n or not mul then return nil, string.format("'%s' is not a duration (like 10ms, 0.5s)", s) end
  return n * mul
end

--- M.human_size(bytes) -> "12.3 MB"
function M.human_size(n)
  if not n or n < 0 then return "?" end
  if n < 1000 then return string.format("%d B", n) end
  local units = { "kB", "MB", "GB", "TB" }
  local i = 0
  repeat n = n / 1000; i = i + 1 until n < 1000 or i == #units
  return string.format(n < 10 and "%.2f %s" or "%.1f %s", n, units[i])
end

-- ---- URLs and paths -------------------------------------------------------------------------

--- M.is_url(s) -> true for scheme://...
function M.is_url(s) return type(s) == "string" and s:match("^%a[%w+.-]*://") ~= nil end

--- M.split_url(url) -> scheme, authority (host[:port], no credentials), path_and_query
function M.split_url(url)
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then return nil end
  local auth, tail = rest:match("^([^/?#]*)(.*)$")
  auth = auth:gsub("^.*@", "")
  return scheme:lower(), auth:lower(), tail
end

--- M.host_of(url) -> "host[:port]" or nil
function M.host_of(url)
  local _, auth = M.split_url(url)
  return auth
end

--- M.origin(url) -> "scheme://host[:port]"
function M.origin(url)
  local scheme, auth = M.split_url(url)
  if not scheme then return nil end
  return scheme .. "://" .. auth
end

--- M.rebase(url, base): the same path and query under another base URL.
function M.rebase(url, base)
  local _, _, tail = M.split_url(url)
  return (base:gsub("/+$", "")) .. (tail or "")
end

--- M.join_url(base, rel): rel resolved against the URL or path of an index.
function M.join_url(base, rel)
  if M.is_url(rel) or rel:sub(1, 1) == "/" and not M.is_url(base) then return rel end
  local dir = base:gsub("[^/]*$", "")
  if rel:sub(1, 1) == "/" then return (M.origin(base) or "") .. rel end
  rel = rel:gsub("^%./", "")
  while rel:sub(1, 3) == "../" do
    local up = dir:gsub("[^/]*/$", "")
    if up == dir or up:match("://$") then break end
    dir, rel = up, rel:sub(4)
  end
  return dir .. rel
end

--- M.basename(path or URL path) without query
function M.basename(p)
  p = p:gsub("[?#].*$", ""):gsub("/+$", "")
  return p:match("([^/]*)$")
end

function M.dirname(p)
  local d = p:match("^(.*)/[^/]*$")
  if d == nil then return "." end
  return d == "" and "/" or d
end

--- M.abspath(p) -> p made absolute against $PWD
function M.abspath(p)
  if p:sub(1, 1) == "/" then return p end
  local pwd = os.getenv("PWD")
  if not pwd or pwd == "" then
    local h = io.popen("pwd")
    pwd = h and h:read("l") or "."
    if h then h:close() end
  end
  return (pwd:gsub("/+$", "")) .. "/" .. p:gsub("^%./", "")
end

--- M.file_url(path) -> file:// URL of a local path
function M.file_url(path)
  return "file://" .. M.abspath(path):gsub("[^%w/%._~%-]", function(c) return string.format("%%%02X", c:byte()) end)
end

--- M.safe_name(s): s made into one path component.
function M.safe_name(s) return (s:gsub("/", "--"):gsub("[^%w%._%-]", "_")) end

function M.exists(path) return core.stat(path) ~= nil end

return M
