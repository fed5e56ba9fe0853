-- torsh/hub.lua — the model hub from Lua: torsh.hub.download, load, search,
-- info, recommend, upload, index, and the cache commands (ls, rm, prune,
-- verify, mirrors). This is the policy half; the bytes move in C
-- (core/hub via `torsh.hub.core`: resumable, retried, SHA-256-verified
-- transfers and locks between processes).
--
--   local hub = torsh.hub
--   local path = assert(hub.download("https://host/model.bin", { sha256 = "ab12..." }))
--   local dir = assert(hub.download("resnet18@^1.2", { registry = "https://host/index.json" }))
--   local file = assert(hub.download("hf:OWNER/REPO/model.safetensors@main"))
--   for _, m in ipairs(assert(hub.search("resnet", { task = "image-classification" }))) do print(m.name) end
--
-- Expected failures (network, checksum, offline, unknown model) return
-- nil, message; wrong argument types raise.
local torsh = require "torsh"
local M = rawget(torsh, "hub") or {}
setmetatable(M, nil)            -- stop loading lazily: this module is here now

local core = require "torsh.hub.core"
local util = require "torsh.hub.util"
local cache = require "torsh.hub.cache"
local registry = require "torsh.hub.registry"
local mirrors = require "torsh.hub.mirrors"
local semver = require "torsh.hub.semver"

M.core, M.util, M.cache, M.registry, M.semver = core, util, cache, registry, semver
M.mirror_health = mirrors

-- ---- settings ---------------------------------------------------------------------------

--- M.hf_endpoint() -> $HF_ENDPOINT or https://huggingface.co
function M.hf_endpoint()
  local e = os.getenv("HF_ENDPOINT")
  return ((e and e ~= "") and e or "https://huggingface.co"):gsub("/+$", "")
end

-- The auth token for a URL, or nil. A token goes only where it belongs:
-- HF_TOKEN to the Hugging Face endpoint; TORSH_TOKEN (or config "token")
-- to the registry's host and to hosts in TORSH_TOKEN_HOSTS / config
-- "token_hosts". opts.token is sent as given.
local function token_for(url, opts)
  if opts.token then return opts.token end
  local host = util.host_of(url)
  if not host then return nil end
  local cfg = util.config()
  local general = os.getenv("TORSH_TOKEN") or cfg.token
  if host == util.host_of(M.hf_endpoint()) then
    return os.getenv("HF_TOKEN") or os.getenv("HUGGING_FACE_HUB_TOKEN") or general
  end
  if not general then return nil end
  local reg = registry.source(opts)
  if reg and util.is_url(reg) and util.host_of(reg) == host then return general end
  for _, h in ipairs(util.env_list("TORSH_TOKEN_HOSTS")) do if h:lower() == host then return general end end
  for _, h in ipairs(cfg.token_hosts or {}) do if h:lower() == host then return general end end
  return nil
end
M.token_for = token_for

-- ---- progress ------------------------------------------------------------------------------

local function clock() return torsh.clock and torsh.clock() or os.clock() end

local function fmt_eta(s)
  if not s or s ~= s or s == math.huge or s < 0 then return "--:--" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60) end
  return string.format("%d:%02d", s // 60, s % 60)
end

--- M.progress_bar(label) -> update(done, total), finish() when stderr is a
--- terminal; nil otherwise. Shows percent, bytes, rate and ETA.
function M.progress_bar(label)
  if not core.isatty(2) then return nil end
  local t0, first = clock(), nil
  local shown = false
  local function update(done, total)
    first = first or done
    local dt = clock() - t0
    local rate = dt > 0.05 and (done - first) / dt or nil
    local pct = total and total > 0 and string.format("%3d%%", math.floor(100 * done / total)) or "    "
    local size = total and total > 0 and (util.human_size(done) .. " / " .. util.human_size(total)) or util.human_size(done)
    local eta = rate and rate > 0 and total and total > 0 and (total - done) / rate or nil
    local line = string.format("%s %s  %s  %s/s  ETA %s", label, pct, size, rate and util.human_size(rate) or "?", fmt_eta(eta))
    io.stderr:write("\r", line, "\27[K")
    shown = true
  end
  local function finish() if shown then io.stderr:write("\n") end end
  return update, finish
end

-- The progress function for a transfer: the caller's callback, else a bar on
-- a terminal, else a no-op (it still lets Ctrl-C cancel a transfer).
local function progress_for(label, opts)
  if opts.progress == false then return function() end, function() end end
  if type(opts.progress) == "function" then return opts.progress, function() end end
  if not opts.quiet then
    local update, finish = M.progress_bar(label)
    if update then return update, finish end
  end
  return function() end, function() end
end

local function say(opts, fmt, ...)
  if not opts.quiet then io.stderr:write("torsh: ", string.format(fmt, ...), "\n") end
end

-- ---- transfers with mirrors and locks ----------------------------------------------------------

-- Takes the lock at path, telling the user whom it waits for.
local function acquire(path, opts)
  local before = core.lock_holder(path)
  local lk, took = core.lock(path, 0)
  if not lk then
    say(opts, "waiting for pid %s, which is downloading the same file", before ~= "" and before or "?")
    local deadline = clock() + (opts.lock_timeout or 6 * 3600)
    repeat lk, took = core.lock(path, 0.5) until lk or clock() >= deadline
    if not lk then return nil, took end     -- the message
  end
  if took then
    say(opts, "took over the lock left by %s (no longer running)", before ~= "" and ("pid " .. before) or "a dead process")
  end
  return lk
end

-- Runs core.download against the URL, then each mirror, until one succeeds.
local function transfer(spec, opts)
  local cands = mirrors.candidates(spec.url, spec.mirrors)
  local errors = {}
  local update, finish = progress_for(spec.label, opts)
  for i, c in ipairs(cands) do
    local more = i < #cands
    local res, err, r = core.download {
      url = c.url, dest = spec.dest, dest_dir = spec.dest_dir, partial = spec.partial,
      sha256 = spec.sha256, size = spec.size, no_resume = opts.no_resume,
      token = token_for(c.url, opts), tries = opts.tries or (more and 2 or nil),
      connect_timeout = opts.connect_timeout, low_speed_time = opts.low_speed_time,
      timeout = opts.timeout, backoff = opts.backoff, max_backoff = opts.max_backoff,
      progress = update,
    }
    if res then
      finish()
      pcall(mirrors.record_ok, c.base, res.seconds, res.received)
      res.url = core.redact(c.url)
      if i > 1 then say(opts, "got %s from mirror %s", spec.label, c.base) end
      return res
    end
    errors[#errors + 1] = err
    local reason = r and r.reason
    if reason == "cancelled" or reason == "io" or reason == "offline" or reason == "arg" then break end
    pcall(mirrors.record_failure, c.base, reason, err)
    if more then say(opts, "%s; trying %s", err, cands[i + 1].base) end
  end
  finish()
  if #errors == 1 then return nil, errors[1] end
  return nil, string.format("all %d sources failed:\n  %s", #errors, table.concat(errors, "\n  "))
end

local function check_sha(sha)
  if sha == nil then return nil end
  if type(sha) ~= "string" or #sha ~= 64 or not sha:match("^%x+$") then
    return nil, string.format("download: sha256 must be 64 hex digits, got '%s'", tostring(sha))
  end
  return sha:lower()
end

local function mirror_list(opts) return mirrors.configured(opts.mirrors) end

-- A blob of repo at a snapshot path: from the cache when there, else fetched
-- under the blob's lock (sha known) or the URL's (sha not known).
local function ensure_file(repo, rev, fname, url, sha, size, opts)
  local function from_cache()
    if opts.force then return nil end
    local p = cache.cached(repo, rev, fname)
    if p and (not sha or (core.readlink(p) or ""):sub(-64) == sha) then return p end
    if sha and util.exists(cache.blob(repo, sha)) then return cache.link(repo, rev, fname, sha) end
    return nil
  end
  local p = from_cache()
  if p then return p, { cached = true, sha256 = sha } end
  if util.offline() then
    return nil, string.format("offline mode (TORSH_OFFLINE is set): %s is not in the cache", core.redact(url))
  end
  local ok, err = core.mkdirs(repo .. "/blobs")
  if not ok then return nil, err end
  local key = sha or ("url-" .. core.sha256(url):sub(1, 16))
  local lk, lerr = acquire(repo .. "/blobs/" .. key .. ".lock", opts)
  if not lk then return nil, lerr end
  p = not opts.force and from_cache()
  if p then lk:release() return p, { cached = true, sha256 = sha } end
  local res, terr = transfer({
    url = url, mirrors = mirror_list(opts), sha256 = sha, size = size, label = fname,
    dest = sha and cache.blob(repo, sha) or nil,
    dest_dir = not sha and (repo .. "/blobs") or nil,
    partial = not sha and (repo .. "/blobs/" .. key .. ".incomplete") or nil,
  }, opts)
  if not res then lk:release() return nil, terr end
  local path, lerr2 = cache.link(repo, rev, fname, res.sha256)
  lk:release()
  if not path then return nil, lerr2 end
  return path, res
end

-- ---- the three kinds of download ------------------------------------------------------------------

local function url_escape_path(p)
  return (p:gsub("[^%w%-%._~/]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- -o PATH: straight to PATH (PATH.incomplete while it arrives), not the cache.
local function download_to(url, out, sha, opts)
  local st = core.stat(out)
  if st and st.type == "dir" then out = out .. "/" .. util.basename(url) end
  local dst = core.stat(util.dirname(out))
  if not dst or dst.type ~= "dir" then
    return nil, string.format("download: folder '%s' does not exist", util.dirname(out))
  end
  if sha and not opts.force and util.exists(out) and core.sha256_file(out) == sha then
    return out, { cached = true, sha256 = sha }
  end
  local _, host = util.split_url(url)
  local blob = sha and cache.blob(cache.repo_dir("url", host ~= "" and host or "local"), sha)
  if blob and not opts.force and util.exists(blob) then
    local ok, err = core.copy_file(blob, out)
    if not ok then return nil, err end
    return out, { cached = true, sha256 = sha }
  end
  if util.offline() then
    return nil, string.format("offline mode (TORSH_OFFLINE is set): %s is not in the cache", core.redact(url))
  end
  local lk, lerr = acquire(out .. ".lock", opts)
  if not lk then return nil, lerr end
  local res, err = transfer({ url = url, mirrors = mirror_list(opts), sha256 = sha, size = opts.size,
                              label = util.basename(out), dest = out }, opts)
  lk:release()
  if not res then return nil, err end
  return out, res
end

local function download_url(url, opts)
  local scheme, host = util.split_url(url)
  if scheme ~= "http" and scheme ~= "https" and scheme ~= "file" then
    return nil, string.format("download: unsupported URL scheme '%s' (http, https, file)", tostring(scheme))
  end
  local sha, err = check_sha(opts.sha256)
  if err then return nil, err end
  if opts.output then return download_to(url, opts.output, sha, opts) end
  local repo = cache.repo_dir("url", host ~= "" and host or "local")
  local rev = "url-" .. core.sha256(url):sub(1, 16)
  local fname = util.basename(url)
  if fname == "" then fname = "index" end
  local path, res = ensure_file(repo, rev, fname, url, sha, opts.size, opts)
  if not path then return nil, res end
  cache.write_ref(repo, rev, core.redact(url))
  res.kind = "url"
  return path, res
end

--- M.parse_hf("hf:OWNER/REPO/FILE[@REV]") -> owner, repo, file, rev or nil, message
function M.parse_hf(spec)
  local body = spec:gsub("^hf:", "")
  local rev
  local b, r = body:match("^(.-)@([^@/]+)$")
  if b then body, rev = b, r end
  local owner, repo, file = body:match("^([^/]+)/([^/]+)/(.+)$")
  if not owner then return nil, string.format("'%s' is not hf:OWNER/REPO/FILE[@REVISION]", spec) end
  return owner, repo, file, rev or "main"
end

--- M.hf_url(owner, repo, file, rev) -> {endpoint}/{owner}/{repo}/resolve/{rev}/{file}
function M.hf_url(owner, repo, file, rev)
  return string.format("%s/%s/%s/resolve/%s/%s", M.hf_endpoint(), url_escape_path(owner), url_escape_path(repo),
                       url_escape_path(rev or "main"), url_escape_path(file))
end

local function download_hf(spec, opts)
  local owner, name, file, rev = M.parse_hf(spec)
  if not owner then return nil, name end
  local sha, err = check_sha(opts.sha256)
  if err then return nil, err end
  local url = M.hf_url(owner, name, file, rev)
  if opts.output then return download_to(url, opts.output, sha, opts) end
  local repo = cache.repo_dir("hf", owner .. "/" .. name)
  local path, res = ensure_file(repo, rev, file, url, sha, opts.size, opts)
  if not path then return nil, res end
  cache.write_ref(repo, rev, rev)
  res.kind = "hf"
  return path, res
end

--- M.split_spec("name@range") -> name, range ("*" when none)
function M.split_spec(spec)
  local name, range = spec:match("^(.-)@(.+)$")
  if name and name ~= "" then return name, range end
  return spec, "*"
end

local function download_model(spec, opts)
  if opts.output then
    return nil, "download: --output takes a URL or an hf: file; a registry model is a folder in the cache"
  end
  local name, range = M.split_spec(spec)
  local reg, err = registry.load(opts)
  if not reg then return nil, err end
  local plan, perr = registry.resolve(reg, name, range)
  if not plan then return nil, perr end
  local files = {}
  for _, step in ipairs(plan) do
    local m, v = step.model, step.version
    local repo = cache.repo_dir("model", m.name)
    for _, f in ipairs(v.files) do
      local path, res = ensure_file(repo, v.version, f.name, f.url, f.sha256, f.size, opts)
      if not path then return nil, string.format("%s@%s: %s", m.name, v.version, res) end
      files[#files + 1] = { model = m.name, version = v.version, file = f.name, path = path,
                            cached = res.cached or false, sha256 = res.sha256 }
    end
    cache.write_ref(repo, v.version, v.version)
    step.path = cache.snapshot(repo, v.version)
  end
  local root = plan[#plan]
  local resolved = {}
  for _, s in ipairs(plan) do resolved[#resolved + 1] = { name = s.model.name, version = s.version.version, path = s.path } end
  return root.path, { kind = "model", name = root.model.name, version = root.version.version,
                      resolved = resolved, files = files }
end

--- M.download(url_or_name [, opts]) -> path, info | nil, message
--- url_or_name: an http(s)/file URL (cached under hub/urls--HOST), a
--- registry model "name[@range]" (returns its snapshot folder, with its
--- dependencies downloaded too), or "hf:OWNER/REPO/FILE[@REV]".
--- opts: sha256, size, output (a path outside the cache), mirrors (base
--- URLs), registry, force, token, tries, connect_timeout, low_speed_time,
--- timeout, backoff, progress (function(done, total) or false), quiet.
function M.download(what, opts)
  if type(what) ~= "string" or what == "" then error("hub.download: expected a URL or a model name", 2) end
  opts = opts or {}
  if type(opts) ~= "table" then error("hub.download: options must be a table", 2) end
  if what:match("^hf:") then return download_hf(what, opts) end
  if util.is_url(what) then return download_url(what, opts) end
  return download_model(what, opts)
end

--- M.load(name [, opts]) -> path | nil, message. Downloads when needed and,
--- for now, returns the path: loading the model itself comes with the model
--- formats (a later part of torsh).
function M.load(name, opts) return M.download(name, opts) end

-- ---- registry queries -----------------------------------------------------------------------------

--- M.search(query [, filters]) -> rows | nil, message
--- filters: task, tag, license, format, max_size, registry.
function M.search(query, filters)
  filters = filters or {}
  local reg, err = registry.load(filters)
  if not reg then return nil, err end
  if filters.max_size then
    local _, serr = util.parse_size(filters.max_size)
    if serr then return nil, serr end
  end
  return registry.search(reg, query, filters)
end

--- M.info(name [, opts]) -> model table (versions newest first, each with
--- files, dependencies, metrics, and `cached` when in the cache) | nil, message
function M.info(name, opts)
  opts = opts or {}
  local reg, err = registry.load(opts)
  if not reg then return nil, err end
  local n = M.split_spec(name)
  local m = reg.by_name[n]
  if not m then
    local _, rerr = registry.resolve(reg, n, "*")
    return nil, rerr
  end
  local repo = cache.repo_dir("model", m.name)
  local out = { name = m.name, description = m.description, task = m.task, tags = m.tags, license = m.license,
                latest = m.latest.version, versions = {} }
  for _, v in ipairs(m.versions) do
    local files, all = {}, #v.files > 0
    for _, f in ipairs(v.files) do
      local cached = cache.cached(repo, v.version, f.name) ~= nil
      all = all and cached
      files[#files + 1] = { name = f.name, size = f.size, sha256 = f.sha256, format = f.format, url = core.redact(f.url),
                            cached = cached }
    end
    out.versions[#out.versions + 1] = { version = v.version, task = v.task, tags = v.tags, license = v.license,
      size = v.size, metrics = v.metrics, dependencies = v.dependencies, files = files, cached = all }
  end
  return out
end

--- M.recommend{task=, max_size=, max_latency=, min_accuracy=, registry=} -> ranked, rejected | nil, message
function M.recommend(want)
  want = want or {}
  for _, k in ipairs { "max_size", "max_latency" } do
    if want[k] then
      local _, err = (k == "max_size" and util.parse_size or util.parse_ms)(want[k])
      if err then return nil, err end
    end
  end
  if want.min_accuracy and not tonumber(want.min_accuracy) then
    return nil, string.format("min_accuracy must be a number, got '%s'", tostring(want.min_accuracy))
  end
  local reg, err = registry.load(want)
  if not reg then return nil, err end
  return registry.recommend(reg, want)
end

--- M.resolve(name_with_range [, opts]) -> list of {name, version} (dependencies first) | nil, message
function M.resolve(spec, opts)
  local reg, err = registry.load(opts or {})
  if not reg then return nil, err end
  local plan, perr = registry.resolve(reg, M.split_spec(spec))
  if not plan then return nil, perr end
  local out = {}
  for _, s in ipairs(plan) do out[#out + 1] = { name = s.model.name, version = s.version.version } end
  return out
end

-- ---- cache ---------------------------------------------------------------------------------------------

M.ls = cache.ls
M.rm = cache.rm
M.prune = cache.prune
M.verify = cache.verify
M.cache_dir = cache.root

-- ---- mirrors ---------------------------------------------------------------------------------------------

--- M.mirrors([extra_bases]) -> rows {base, state, ok, fail, latency_ms, speed, last_error}
function M.mirrors(extra) return mirrors.list(extra) end

--- M.probe(bases) -> rows {base, ok, latency_ms, status, error}
function M.probe(bases, opts)
  if util.offline() then return nil, "probe: offline mode (TORSH_OFFLINE is set), no network access" end
  local out = {}
  for _, b in ipairs(bases) do out[#out + 1] = mirrors.probe(b, opts) end
  return out
end

-- ---- publishing --------------------------------------------------------------------------------------------

--- M.upload(file, url [, opts]) -> {url, sha256, size, http_status} | nil, message
--- A URL ending in "/" gets the file's name appended. HTTP PUT with the
--- SHA-256 in "X-Checksum-Sha256" and "Digest" headers.
function M.upload(file, url, opts)
  opts = opts or {}
  if not util.exists(file) then return nil, string.format("upload: no file '%s'", file) end
  if url:sub(-1) == "/" then url = url .. url_escape_path(util.basename(file)) end
  local update, finish = progress_for(util.basename(file), opts)
  local res, err = core.upload(file, url, { token = token_for(url, opts), tries = opts.tries,
    connect_timeout = opts.connect_timeout, low_speed_time = opts.low_speed_time, progress = update })
  finish()
  if not res then return nil, err end
  return { url = core.redact(url), sha256 = res.sha256, size = res.size, http_status = res.http_status,
           seconds = res.seconds }
end

local FORMATS = { safetensors = "safetensors", gguf = "gguf", onnx = "onnx", pt = "pytorch", pth = "pytorch",
                  bin = "bin", npz = "npz", npy = "npy", json = "json", txt = "text", h5 = "hdf5", tflite = "tflite" }

--- M.index(dir [, opts]) -> index, rows, warnings | nil, message
--- Builds a registry index from dir/<model>/<version>/<files>; optional
--- dir/<model>/model.json (description, task, tags, license) and
--- dir/<model>/<version>/version.json (metrics, dependencies, and overrides).
--- Writes opts.output (default dir/index.json) unless opts.dry_run.
function M.index(dir, opts)
  opts = opts or {}
  dir = dir:gsub("/+$", "")
  local st = core.stat(dir)
  if not st or st.type ~= "dir" then return nil, string.format("index: '%s' is not a folder", dir) end
  local models, rows, warnings = {}, {}, {}
  local function warn(fmt, ...) warnings[#warnings + 1] = string.format(fmt, ...) end
  for _, mname in ipairs(core.listdir(dir)) do
    local mdir = dir .. "/" .. mname
    local ms = core.stat(mdir)
    if ms and ms.type == "dir" and not mname:match("^%.") then
      local meta = util.exists(mdir .. "/model.json") and util.read_json(mdir .. "/model.json") or {}
      if type(meta) ~= "table" then return nil, string.format("index: %s/model.json is not a JSON object", mdir) end
      local model = { name = meta.name or mname, description = meta.description, task = meta.task, tags = meta.tags,
                      license = meta.license, versions = {} }
      for _, vname in ipairs(core.listdir(mdir)) do
        local vdir = mdir .. "/" .. vname
        local vs = core.stat(vdir)
        if vs and vs.type == "dir" then
          if not semver.parse(vname) then
            warn("%s: '%s' is not a version folder (like 1.2.0), skipped", mname, vname)
          else
            local vmeta = util.exists(vdir .. "/version.json") and util.read_json(vdir .. "/version.json") or {}
            if type(vmeta) ~= "table" then return nil, string.format("index: %s/version.json is not a JSON object", vdir) end
            local version = { version = vname, files = {}, dependencies = vmeta.dependencies or {},
                              metrics = vmeta.metrics, task = vmeta.task, tags = vmeta.tags, license = vmeta.license,
                              description = vmeta.description }
            local total = 0
            cache.walk(vdir, function(p, fst, rel)
              local base = util.basename(rel)
              if fst.type == "file" and rel ~= "version.json" and not base:match("^%.")
                 and not base:match("%.incomplete$") and not base:match("%.lock$") and not base:match("%.meta$") then
                local sha, size = core.sha256_file(p)
                if sha then
                  local ext = (base:match("%.([%w]+)$") or ""):lower()
                  version.files[#version.files + 1] = {
                    name = rel, url = url_escape_path(mname .. "/" .. vname .. "/" .. rel), size = size,
                    sha256 = sha, format = FORMATS[ext] or (ext ~= "" and ext or nil),
                  }
                  total = total + size
                else
                  warn("%s: %s", p, size)
                end
              end
            end)
            table.sort(version.files, function(a, b) return a.name < b.name end)
            if #version.files == 0 then warn("%s %s: no files, skipped", mname, vname)
            else
              model.versions[#model.versions + 1] = version
              rows[#rows + 1] = { name = model.name, version = vname, files = #version.files, size = total,
                                  task = version.task or model.task }
            end
          end
        end
      end
      table.sort(model.versions, function(a, b) return semver.compare(a.version, b.version) > 0 end)
      if #model.versions > 0 then models[#models + 1] = model
      else warn("%s: no version folders with files, skipped", mname) end
    end
  end
  local index = { format = "torsh-registry/1", generated = os.date("!%Y-%m-%dT%H:%M:%SZ"), models = models }
  -- check it the way a reader will
  local _, perr = registry.parse(require("cjson").encode(index), util.file_url(dir .. "/index.json"), "index")
  if perr then return nil, perr end
  if not opts.dry_run then
    local out = opts.output or (dir .. "/index.json")
    local ok, err = util.write_json(out, index)
    if not ok then return nil, string.format("index: cannot write '%s': %s", out, err) end
    index.path = out
  end
  return index, rows, warnings
end

return M
