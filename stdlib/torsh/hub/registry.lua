-- torsh/hub/registry.lua — registry indexes: loading one (a URL, fetched
-- with the hub's transfers and cached for offline use, or a local file),
-- checking and normalising it, searching, recommending, and resolving a
-- model's dependencies into one consistent set of versions (or explaining
-- the conflict). The format is described in docs/HUB.md:
--
--   {"format": "torsh-registry/1", "models": [{"name": "resnet18", "task": ...,
--     "versions": [{"version": "1.2.0", "files": [{"name", "url", "size",
--       "sha256", "format"}], "dependencies": [{"name", "version"}],
--       "metrics": {"accuracy", "latency_ms"}, "task", "tags", "license"}]}]}
local core = require "torsh.hub.core"
local semver = require "torsh.hub.semver"
local util = require "torsh.hub.util"

local M = {}

-- ---- loading ---------------------------------------------------------------------

local function cache_paths(url)
  local dir = util.home() .. "/registry"
  local key = core.sha256(url):sub(1, 16)
  return dir, dir .. "/" .. key .. ".json"
end

--- M.source(opts) -> the registry to use: opts.registry, $TORSH_REGISTRY or config.registry.
function M.source(opts)
  local src = opts and opts.registry or os.getenv("TORSH_REGISTRY") or util.config().registry
  if not src or src == "" then
    return nil, "no registry: pass --registry URL_OR_FILE, set TORSH_REGISTRY, or set \"registry\" in " ..
                util.home() .. "/config.json"
  end
  return src
end

-- Text of the index at src, and the base its relative file URLs resolve against.
local function read_index(src, opts)
  if not util.is_url(src) then
    local text, err = util.read_file(src)
    if not text then return nil, string.format("registry: cannot read '%s': %s", src, err) end
    return text, util.file_url(src)
  end
  if src:match("^file://") then
    local text, err = util.read_file((src:gsub("^file://", ""):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)))
    if not text then return nil, string.format("registry: cannot read '%s': %s", src, err) end
    return text, src
  end
  local dir, cached = cache_paths(src)
  if util.offline() then
    local text = util.read_file(cached)
    if not text then
      return nil, string.format("registry: %s is not in the cache and offline mode (TORSH_OFFLINE) allows no network access",
                                core.redact(src))
    end
    return text, src
  end
  local body, err = core.fetch(src, { token = opts.token, tries = opts.tries, connect_timeout = opts.connect_timeout,
                                      low_speed_time = opts.low_speed_time })
  if body then
    core.mkdirs(dir)
    util.write_file(cached, body)
    return body, src
  end
  local text = util.read_file(cached)
  if text then
    if not opts.quiet then io.stderr:write("torsh: ", err, "; using the cached copy of the registry\n") end
    return text, src
  end
  return nil, "registry: " .. err
end

local function check_string(v, what)
  if type(v) ~= "string" or v == "" then error(what .. " must be a non-empty string", 0) end
end

local function list_of(v) return type(v) == "table" and v or {} end

-- Checks one model entry and fills defaults; raises a message naming it.
local function normalise_model(m, i, base)
  if type(m) ~= "table" then error(string.format("models[%d] is not an object", i), 0) end
  check_string(m.name, string.format("models[%d].name", i))
  if type(m.versions) ~= "table" or #m.versions == 0 then
    error(string.format("model '%s' has no versions", m.name), 0)
  end
  m.tags = list_of(m.tags)
  for j, v in ipairs(m.versions) do
    local where = string.format("model '%s' versions[%d]", m.name, j)
    if type(v) ~= "table" then error(where .. " is not an object", 0) end
    check_string(v.version, where .. ".version")
    local ok, err = semver.parse(v.version)
    if not ok then error(string.format("model '%s': %s", m.name, err), 0) end
    where = string.format("model '%s' version %s", m.name, v.version)
    v.files = list_of(v.files)
    v.dependencies = list_of(v.dependencies)
    v.metrics = type(v.metrics) == "table" and v.metrics or {}
    v.task = v.task or m.task
    v.tags = v.tags and list_of(v.tags) or m.tags
    v.license = v.license or m.license
    v.description = v.description or m.description
    v.size = 0
    for k, f in ipairs(v.files) do
      if type(f) ~= "table" then error(string.format("%s files[%d] is not an object", where, k), 0) end
      check_string(f.name, string.format("%s files[%d].name", where, k))
      if f.name:find("%.%.") or f.name:sub(1, 1) == "/" then
        error(string.format("%s: file name '%s' must be a relative path without '..'", where, f.name), 0)
      end
      local loc = f.url or f.path
      check_string(loc, string.format("%s file '%s' url", where, f.name))
      f.url = util.join_url(base, loc)
      if f.sha256 ~= nil and not (type(f.sha256) == "string" and f.sha256:match("^%x+$") and #f.sha256 == 64) then
        error(string.format("%s file '%s': sha256 must be 64 hex digits", where, f.name), 0)
      end
      f.sha256 = f.sha256 and f.sha256:lower()
      if f.size ~= nil and math.type(f.size) ~= "integer" then
        f.size = tonumber(f.size) and math.floor(tonumber(f.size)) or nil
      end
      f.format = f.format or f.name:match("%.([%w]+)$")
      v.size = v.size + (f.size or 0)
    end
    for k, d in ipairs(v.dependencies) do
      if type(d) == "string" then
        local name, range = d:match("^([^@]+)@(.+)$")
        d = { name = name or d, version = range or "*" }
        v.dependencies[k] = d
      end
      check_string(d.name, string.format("%s dependencies[%d].name", where, k))
      d.version = d.version or "*"
      local r, rerr = semver.range(d.version)
      if not r then error(string.format("%s dependency '%s': %s", where, d.name, rerr), 0) end
    end
  end
  table.sort(m.versions, function(a, b) return semver.compare(a.version, b.version) > 0 end)
  m.latest = m.versions[1]
  return m
end

--- M.parse(text, base) -> registry {models = {...}, by_name = {...}} or nil, message.
function M.parse(text, base, what)
  local doc, err = util.decode(text, what or "registry")
  if not doc then return nil, err end
  if type(doc) ~= "table" or type(doc.models) ~= "table" then
    return nil, string.format("%s: not a registry index (no \"models\" list)", what or "registry")
  end
  local reg = { models = {}, by_name = {}, base = base, format = doc.format, name = doc.name }
  for i, m in ipairs(doc.models) do
    local ok, merr = pcall(normalise_model, m, i, base)
    if not ok then return nil, string.format("%s: %s", what or "registry", merr) end
    if reg.by_name[m.name] then return nil, string.format("%s: model '%s' is listed twice", what or "registry", m.name) end
    reg.models[#reg.models + 1] = m
    reg.by_name[m.name] = m
  end
  return reg
end

--- M.load(opts) -> registry or nil, message. opts.registry: URL or file.
function M.load(opts)
  opts = opts or {}
  local src, err = M.source(opts)
  if not src then return nil, err end
  local text, base = read_index(src, opts)
  if not text then return nil, base end
  local reg, perr = M.parse(text, base, "registry " .. (util.is_url(src) and core.redact(src) or src))
  if not reg then return nil, perr end
  reg.source = src
  return reg
end

-- ---- search and recommend --------------------------------------------------------------

local function has_tag(v, tag)
  for _, t in ipairs(v.tags or {}) do if t:lower() == tag:lower() then return true end end
  return false
end

local function has_format(v, fmt)
  for _, f in ipairs(v.files) do if (f.format or ""):lower() == fmt:lower() then return true end end
  return false
end

-- Score of a model for a query: exact name 100, name prefix 60, name part 40, tag 30, task 20, description 10.
local function relevance(m, q)
  if not q or q == "" then return 1 end
  q = q:lower()
  local name = m.name:lower()
  if name == q then return 100 end
  if name:sub(1, #q) == q then return 60 end
  if name:find(q, 1, true) then return 40 end
  for _, t in ipairs(m.latest.tags or {}) do if t:lower():find(q, 1, true) then return 30 end end
  if (m.latest.task or ""):lower():find(q, 1, true) then return 20 end
  if (m.latest.description or ""):lower():find(q, 1, true) then return 10 end
  return 0
end

local function row_of(m, v)
  return { name = m.name, version = v.version, task = v.task, tags = v.tags, license = v.license,
           size = v.size, accuracy = v.metrics.accuracy, latency_ms = v.metrics.latency_ms,
           description = v.description, files = #v.files }
end

--- M.search(reg, query, filters) -> rows {name, version, task, tags, size, accuracy, latency_ms, ...}
--- filters: task, tag, license, format, max_size (bytes or "20MB"). The newest
--- version of each model that passes the filters is shown.
function M.search(reg, query, filters)
  filters = filters or {}
  local max_size = filters.max_size and assert(util.parse_size(filters.max_size))
  local rows = {}
  for _, m in ipairs(reg.models) do
    local score = relevance(m, query)
    if score > 0 then
      for _, v in ipairs(m.versions) do
        local ok = (not filters.task or (v.task or ""):lower() == filters.task:lower())
          and (not filters.tag or has_tag(v, filters.tag))
          and (not filters.license or (v.license or ""):lower() == filters.license:lower())
          and (not filters.format or has_format(v, filters.format))
          and (not max_size or v.size <= max_size)
        if ok and #(semver.parse(v.version).pre) == 0 then
          local r = row_of(m, v)
          r.score = score
          rows[#rows + 1] = r
          break
        end
      end
    end
  end
  table.sort(rows, function(a, b)
    if a.score ~= b.score then return a.score > b.score end
    return a.name < b.name
  end)
  return rows
end

--- M.recommend(reg, want) -> ranked, rejected. want: task, max_size, max_latency
--- (ms or "10ms"), min_accuracy. For each model the newest version that
--- fits is a candidate; candidates rank by accuracy (higher first), then
--- latency, then size; each row says why it fits or why it was left out.
function M.recommend(reg, want)
  local max_size = want.max_size and assert(util.parse_size(want.max_size))
  local max_lat = want.max_latency and assert(util.parse_ms(want.max_latency))
  local min_acc = want.min_accuracy and tonumber(want.min_accuracy)
  local ranked, rejected = {}, {}
  for _, m in ipairs(reg.models) do
    local best, why_not
    for _, v in ipairs(m.versions) do
      if #(semver.parse(v.version).pre) == 0 then
        local acc, lat = v.metrics.accuracy, v.metrics.latency_ms
        local reasons = {}
        if want.task and (v.task or ""):lower() ~= want.task:lower() then
          reasons[#reasons + 1] = string.format("task is %s", v.task or "unknown")
        end
        if max_size and v.size > max_size then
          reasons[#reasons + 1] = string.format("too big: %s > %s", util.human_size(v.size), util.human_size(max_size))
        end
        if max_lat and not lat then reasons[#reasons + 1] = "no latency measured"
        elseif max_lat and lat > max_lat then
          reasons[#reasons + 1] = string.format("too slow: %g ms > %g ms", lat, max_lat)
        end
        if min_acc and not acc then reasons[#reasons + 1] = "no accuracy measured"
        elseif min_acc and acc < min_acc then
          reasons[#reasons + 1] = string.format("accuracy %g < %g", acc, min_acc)
        end
        if #reasons == 0 then best = v break end
        why_not = why_not or { version = v.version, reasons = reasons }
      end
    end
    if best then
      local r = row_of(m, best)
      local fit = {}
      if max_size then fit[#fit + 1] = string.format("%s <= %s", util.human_size(best.size), util.human_size(max_size)) end
      if max_lat then fit[#fit + 1] = string.format("%g ms <= %g ms", best.metrics.latency_ms, max_lat) end
      if min_acc then fit[#fit + 1] = string.format("accuracy %g >= %g", best.metrics.accuracy, min_acc) end
      r.fits = fit
      ranked[#ranked + 1] = r
    elseif why_not and not (want.task and why_not.reasons[1]:match("^task is")) then
      rejected[#rejected + 1] = { name = m.name, version = why_not.version, why = table.concat(why_not.reasons, "; ") }
    end
  end
  table.sort(ranked, function(a, b)
    local aa, ba = a.accuracy or -1, b.accuracy or -1
    if aa ~= ba then return aa > ba end
    local al, bl = a.latency_ms or math.huge, b.latency_ms or math.huge
    if al ~= bl then return al < bl end
    if a.size ~= b.size then return a.size < b.size end
    return a.name < b.name
  end)
  for i, r in ipairs(ranked) do
    r.rank = i
    local lead
    if i == 1 then
      lead = #ranked > 1 and "best accuracy of the " .. #ranked .. " that fit" or "the only one that fits"
    else
      local up = ranked[i - 1]
      if (r.accuracy or -1) < (up.accuracy or -1) then
        lead = string.format("accuracy %s below #%d", r.accuracy and string.format("%g", r.accuracy) or "unknown", i - 1)
      elseif (r.latency_ms or math.huge) > (up.latency_ms or math.huge) then
        lead = string.format("same accuracy as #%d, slower", i - 1)
      else
        lead = string.format("same accuracy and latency as #%d, larger", i - 1)
      end
    end
    r.why = lead .. (#r.fits > 0 and ("; fits: " .. table.concat(r.fits, ", ")) or "")
  end
  table.sort(rejected, function(a, b) return a.name < b.name end)
  return ranked, rejected
end

-- ---- dependency resolution -----------------------------------------------------------------

--- M.resolve(reg, name, range_text) -> plan or nil, message.
--- plan: list of {model, version (entry), needed_by} with dependencies
--- before the models that need them; the root last.
function M.resolve(reg, root, range_text)
  range_text = range_text or "*"
  local root_range, rerr = semver.range(range_text)
  if not root_range then return nil, rerr end
  if not reg.by_name[root] then
    local names = {}
    for _, m in ipairs(reg.models) do
      if m.name:lower():find(root:lower(), 1, true) then names[#names + 1] = m.name end
    end
    return nil, string.format("unknown model '%s'%s", root,
      #names > 0 and (" (did you mean " .. table.concat(names, ", ") .. "?)") or "")
  end

  local constraints = { [root] = { { range = root_range, text = range_text, from = "you" } } }
  local selected, order = {}, {}
  local conflict
  local steps = 0

  local function candidates(name)
    local m = reg.by_name[name]
    local out = {}
    for _, v in ipairs(m.versions) do
      local ok = true
      for _, c in ipairs(constraints[name]) do
        if not c.range:matches(v.version) then ok = false break end
      end
      if ok then out[#out + 1] = v end
    end
    return out
  end

  local function explain(name)
    local m = reg.by_name[name]
    local lines = {}
    for _, c in ipairs(constraints[name]) do
      if c.from == "you" then lines[#lines + 1] = string.format("  you asked for %s %s", name, c.text)
      else lines[#lines + 1] = string.format("  %s needs %s %s", c.from, name, c.text) end
    end
    local avail = {}
    for _, v in ipairs(m.versions) do avail[#avail + 1] = v.version end
    return string.format("no version of %s satisfies every requirement:\n%s\n  available: %s",
      name, table.concat(lines, "\n"), table.concat(avail, ", "))
  end

  local pending = { root }
  local solve
  solve = function()
    steps = steps + 1
    if steps > 20000 then
      conflict = conflict or "dependency resolution gave up after 20000 steps"
      return false
    end
    local name
    for i, n in ipairs(pending) do
      if not selected[n] then name = n table.remove(pending, i) break end
    end
    if not name then return true end
    local cands = candidates(name)
    if #cands == 0 then
      conflict = conflict or explain(name)
      table.insert(pending, 1, name)
      return false
    end
    for _, v in ipairs(cands) do
      selected[name] = v
      local from = name .. "@" .. v.version
      local added, ok = {}, true
      for _, d in ipairs(v.dependencies) do
        if not reg.by_name[d.name] then
          conflict = conflict or string.format("unknown model '%s' (needed by %s)", d.name, from)
          ok = false
          break
        end
        constraints[d.name] = constraints[d.name] or {}
        local c = { range = assert(semver.range(d.version)), text = d.version, from = from }
        table.insert(constraints[d.name], c)
        added[#added + 1] = d.name
        local sel = selected[d.name]
        if sel and not c.range:matches(sel.version) then
          conflict = conflict or explain(d.name)
          ok = false
          break
        end
      end
      local saved = { table.unpack(pending) }
      if ok then
        for _, d in ipairs(v.dependencies) do pending[#pending + 1] = d.name end
        if solve() then return true end
      end
      pending = saved
      for i = #added, 1, -1 do table.remove(constraints[added[i]]) end
      selected[name] = nil
    end
    table.insert(pending, 1, name)
    return false
  end

  if not solve() then
    return nil, string.format("cannot resolve %s@%s: %s", root, range_text, conflict or "no solution")
  end

  -- dependencies first (depth-first post-order from the root)
  local seen = {}
  local function visit(name, needed_by)
    if seen[name] then return end
    seen[name] = true
    local v = selected[name]
    for _, d in ipairs(v.dependencies) do visit(d.name, name .. "@" .. v.version) end
    order[#order + 1] = { model = reg.by_name[name], version = v, needed_by = needed_by }
  end
  visit(root, nil)
  return order
end

return M
