-- torsh/hub/mirrors.lua — mirrors and their health. A mirror is a base URL
-- under which the same paths are served; the health file
-- $TORSH_HOME/mirrors.json remembers, per base (or origin of a plain URL),
-- successes, failures in a row, the last error, latency and speed (moving
-- averages). Candidates that failed recently go to the back; the others keep
-- the order they were given in (the URL's own server first).
local core = require "torsh.hub.core"
local util = require "torsh.hub.util"

local M = {}

M.DOWN_SECONDS = 600        -- a failure within this long marks a base as down

local function health_path() return util.home() .. "/mirrors.json" end

--- M.load() -> health table keyed by base URL
function M.load()
  local t = util.read_json(health_path())
  return type(t) == "table" and t or {}
end

local function key_of(base) return (base:gsub("/+$", "")) end

--- M.update(base, fn): fn(entry) changes the entry of base; saved under a short lock.
function M.update(base, fn)
  local home = util.home()
  if not core.mkdirs(home) then return end
  local lk = core.lock(health_path() .. ".lock", 5)
  local t = M.load()
  local k = key_of(base)
  local e = t[k] or { ok = 0, fail = 0, consecutive_failures = 0 }
  fn(e)
  t[k] = e
  util.write_json(health_path(), t)
  if lk then lk:release() end
end

--- M.record_ok(base, seconds, bytes)
function M.record_ok(base, seconds, bytes)
  M.update(base, function(e)
    e.ok = (e.ok or 0) + 1
    e.consecutive_failures = 0
    e.last_ok = os.time()
    if seconds and seconds > 0 and bytes and bytes > 0 then
      local speed = bytes / seconds
      e.speed = e.speed and (0.7 * e.speed + 0.3 * speed) or speed
    end
  end)
end

--- M.record_failure(base, reason, message)
function M.record_failure(base, reason, message)
  M.update(base, function(e)
    e.fail = (e.fail or 0) + 1
    e.consecutive_failures = (e.consecutive_failures or 0) + 1
    e.last_failure = os.time()
    e.last_error = (message or ""):sub(1, 200)
    e.last_reason = reason
  end)
end

--- M.record_latency(base, ms)
function M.record_latency(base, ms)
  M.update(base, function(e)
    e.latency_ms = e.latency_ms and (0.7 * e.latency_ms + 0.3 * ms) or ms
    e.last_probe = os.time()
  end)
end

--- M.state(entry) -> "healthy", "down" or "unknown"
function M.state(e, now)
  if not e then return "unknown" end
  now = now or os.time()
  if (e.consecutive_failures or 0) > 0 and e.last_failure and now - e.last_failure < M.DOWN_SECONDS then
    return "down"
  end
  if (e.ok or 0) > 0 or e.latency_ms then return "healthy" end
  return "unknown"
end

--- M.configured(extra) -> base URLs from TORSH_MIRRORS, config.json "mirrors" and extra.
function M.configured(extra)
  local out, seen = {}, {}
  local function add(b)
    local k = key_of(b)
    if not seen[k] then seen[k] = true out[#out + 1] = k end
  end
  for _, b in ipairs(extra or {}) do add(b) end
  for _, b in ipairs(util.env_list("TORSH_MIRRORS")) do add(b) end
  for _, b in ipairs(util.config().mirrors or {}) do add(b) end
  return out
end

--- M.candidates(url, bases) -> list of {url, base}: the URL itself, then the
--- same path under each base; bases that are down move behind the others.
function M.candidates(url, bases)
  local list = { { url = url, base = util.origin(url) or url, order = 0 } }
  for i, b in ipairs(bases or {}) do
    local u = util.rebase(url, b)
    if u ~= url then list[#list + 1] = { url = u, base = key_of(b), order = i } end
  end
  if #list == 1 then return list end
  local health, now = M.load(), os.time()
  for _, c in ipairs(list) do c.down = M.state(health[c.base], now) == "down" end
  table.sort(list, function(a, b)
    if a.down ~= b.down then return not a.down end
    return a.order < b.order
  end)
  return list
end

--- M.probe(base, opts) -> {base, ok, latency_ms, status, error}: one HEAD of the base.
function M.probe(base, opts)
  opts = opts or {}
  local res, err = core.head(base .. (base:match("/$") and "" or "/"),
    { connect_timeout = opts.connect_timeout or 5, low_speed_time = 5, token = opts.token })
  if res then
    M.record_latency(base, res.seconds * 1000)
    return { base = base, ok = true, latency_ms = res.seconds * 1000, status = res.http_status }
  end
  M.record_failure(base, "probe", err)
  return { base = base, ok = false, error = err }
end

--- M.list(extra) -> rows {base, state, ok, fail, consecutive_failures, latency_ms, speed, last_error}
function M.list(extra)
  local health = M.load()
  local rows, seen = {}, {}
  local function add(base)
    if seen[base] then return end
    seen[base] = true
    local e = health[base] or {}
    rows[#rows + 1] = { base = base, state = M.state(health[base]), ok = e.ok or 0, fail = e.fail or 0,
                        consecutive_failures = e.consecutive_failures or 0, latency_ms = e.latency_ms,
                        speed = e.speed, last_error = e.last_error, last_ok = e.last_ok,
                        last_failure = e.last_failure }
  end
  for _, b in ipairs(M.configured(extra)) do add(b) end
  local rest = {}
  for b in pairs(health) do if not seen[b] then rest[#rest + 1] = b end end
  table.sort(rest)
  for _, b in ipairs(rest) do add(b) end
  return rows
end

return M
