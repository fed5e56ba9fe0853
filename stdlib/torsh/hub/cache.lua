-- torsh/hub/cache.lua — the download cache under $TORSH_HOME/hub, shaped
-- like the Hugging Face cache:
--
--   hub/models--<name>/            a registry model ("/" in names becomes "--")
--   hub/hf--<owner>--<repo>/       a Hugging Face repository (hf:OWNER/REPO/FILE)
--   hub/urls--<host>[_<port>]/     files fetched by plain URL
--       blobs/<sha256>             the verified bytes, named by their digest
--       blobs/<name>.incomplete    data still arriving (+ .meta sidecar, .lock)
--       refs/<revision>            what a revision means (version, URL)
--       snapshots/<revision>/<file>  -> ../../blobs/<sha256> (relative symlink)
--
-- Operations: paths, linking a verified blob into a snapshot, listing
-- (ls), removing (rm), pruning unreferenced blobs and stale partial data
-- (prune), and re-hashing every blob (verify).
local core = require "torsh.hub.core"
local util = require "torsh.hub.util"

local M = {}

function M.root() return util.home() .. "/hub" end

-- ---- names ----------------------------------------------------------------------------

--- M.repo_dir(kind, name) -> folder of a repository. kind: "model", "hf", "url".
function M.repo_dir(kind, name)
  local prefix = ({ model = "models--", hf = "hf--", url = "urls--" })[kind]
  assert(prefix, "cache: unknown kind " .. tostring(kind))
  local n = kind == "url" and name:gsub(":", "_") or name
  return M.root() .. "/" .. prefix .. util.safe_name(n)
end

--- M.display(folder name) -> "name", "hf:owner/repo" or "url:host:port"
function M.display(dir)
  local n = dir:match("^models%-%-(.*)$")
  if n then return (n:gsub("%-%-", "/")), "model" end
  n = dir:match("^hf%-%-(.*)$")
  if n then return "hf:" .. n:gsub("%-%-", "/"), "hf" end
  n = dir:match("^urls%-%-(.*)$")
  if n then return "url:" .. n:gsub("_(%d+)$", ":%1"), "url" end
  return dir, "other"
end

--- M.find_repo(display or folder name) -> folder path or nil
function M.find_repo(name)
  local root = M.root()
  local names = core.listdir(root) or {}
  for _, d in ipairs(names) do
    if d == name or M.display(d) == name then return root .. "/" .. d, d end
  end
  return nil
end

function M.rev_name(rev) return util.safe_name(rev) end

-- ---- snapshots ------------------------------------------------------------------------------

--- M.blob(repo, sha) -> path of the blob
function M.blob(repo, sha) return repo .. "/blobs/" .. sha end

--- M.snapshot(repo, rev [, file]) -> path
function M.snapshot(repo, rev, file)
  local p = repo .. "/snapshots/" .. M.rev_name(rev)
  return file and (p .. "/" .. file) or p
end

--- M.cached(repo, rev, file) -> path of a snapshot file whose blob exists, or nil
function M.cached(repo, rev, file)
  local p = M.snapshot(repo, rev, file)
  local st = core.stat(p)
  if st and st.type == "link" and st.target == "file" then return p end
  return nil
end

--- M.link(repo, rev, file, sha): snapshots/<rev>/<file> -> ../../blobs/<sha>
function M.link(repo, rev, file, sha)
  local p = M.snapshot(repo, rev, file)
  local ok, err = core.mkdirs(util.dirname(p))
  if not ok then return nil, err end
  local _, depth = file:gsub("/", "")
  local target = string.rep("../", depth + 2) .. "blobs/" .. sha
  ok, err = core.symlink(target, p)
  if not ok then return nil, err end
  return p
end

--- M.write_ref(repo, rev, text)
function M.write_ref(repo, rev, text)
  core.mkdirs(repo .. "/refs")
  return util.write_file(repo .. "/refs/" .. M.rev_name(rev), text .. "\n")
end

function M.read_ref(repo, rev)
  local s = util.read_file(repo .. "/refs/" .. M.rev_name(rev))
  return s and (s:gsub("%s+$", ""))
end

-- ---- walking ----------------------------------------------------------------------------------

-- Calls fn(path, stat, relative) for every entry below dir (depth first).
local function walk(dir, fn, rel)
  for _, name in ipairs(core.listdir(dir) or {}) do
    local p = dir .. "/" .. name
    local r = rel and (rel .. "/" .. name) or name
    local st = core.stat(p)
    if st then
      if st.type == "dir" then walk(p, fn, r) end
      fn(p, st, r)
    end
  end
end
M.walk = walk

local function is_blob_name(n) return #n == 64 and n:match("^%x+$") ~= nil end

-- Snapshot links of a repo: list of {rev, file, path, blob (sha or nil), ok}
local function snapshot_links(repo)
  local out = {}
  local snap = repo .. "/snapshots"
  for _, rev in ipairs(core.listdir(snap) or {}) do
    walk(snap .. "/" .. rev, function(p, st, r)
      if st.type == "link" then
        local target = core.readlink(p) or ""
        out[#out + 1] = { rev = rev, file = r, path = p, blob = target:match("blobs/(%x+)$"), ok = st.target == "file" }
      end
    end)
  end
  return out
end

-- ---- ls -----------------------------------------------------------------------------------------

--- M.ls() -> rows {name, kind, revisions, files, blobs, size, partial, path}
function M.ls()
  local root = M.root()
  local rows = {}
  for _, d in ipairs(core.listdir(root) or {}) do
    local repo = root .. "/" .. d
    local st = core.stat(repo)
    if st and st.type == "dir" then
      local name, kind = M.display(d)
      local size, blobs, partial = 0, 0, 0
      for _, b in ipairs(core.listdir(repo .. "/blobs") or {}) do
        local bs = core.stat(repo .. "/blobs/" .. b)
        if bs and is_blob_name(b) then size = size + bs.size; blobs = blobs + 1
        elseif bs and b:match("%.incomplete$") then partial = partial + bs.size end
      end
      local revs = core.listdir(repo .. "/snapshots") or {}
      local files = 0
      local files_list = {}
      for _, l in ipairs(snapshot_links(repo)) do
        files = files + 1
        files_list[#files_list + 1] = { revision = l.rev, file = l.file, sha256 = l.blob, ok = l.ok }
      end
      local refs = {}
      for _, r in ipairs(revs) do refs[#refs + 1] = { revision = r, ref = M.read_ref(repo, r) } end
      rows[#rows + 1] = { name = name, kind = kind, revisions = revs, refs = refs, files = files,
                          file_list = files_list, blobs = blobs, size = size, partial = partial, path = repo }
    end
  end
  return rows
end

-- ---- rm ------------------------------------------------------------------------------------------

--- M.rm(target) -> {removed = {...}, freed = bytes} or nil, message.
--- target: "name", "name@revision", "hf:owner/repo[@rev]", "url:host[:port]", or a folder name.
function M.rm(target)
  local name, rev = target:match("^(.-)@([^@/]+)$")
  if not name or name == "" then name, rev = target, nil end
  local repo = M.find_repo(name)
  if not repo then return nil, string.format("rm: '%s' is not in the cache (see torsh hub ls)", name) end
  if not rev then
    local freed = 0
    walk(repo, function(_, st) if st.type == "file" then freed = freed + st.size end end)
    local ok, err = core.remove_tree(repo)
    if not ok then return nil, err end
    return { removed = { repo }, freed = freed }
  end
  local snap = M.snapshot(repo, rev)
  if not core.stat(snap) then
    return nil, string.format("rm: %s has no revision '%s' (has: %s)", name, rev,
                              table.concat(core.listdir(repo .. "/snapshots") or {}, ", "))
  end
  core.remove_tree(snap)
  os.remove(repo .. "/refs/" .. M.rev_name(rev))
  local res = M.prune { repos = { repo } }
  table.insert(res.removed, 1, snap)
  return res
end

-- ---- prune ----------------------------------------------------------------------------------------

local function removed_has(list, p)
  for _, x in ipairs(list) do if x == p then return true end end
  return false
end

--- M.prune(opts) -> {removed = {paths}, freed = bytes, kept_partial = n}
--- Removes blobs no snapshot links to, dangling links, empty snapshot
--- folders and their refs, partial downloads older than opts.partial_age
--- seconds (default 7 days) whose lock is free, free lock files, and
--- repositories left empty. opts.dry_run lists without removing;
--- opts.repos limits the work to these folders.
function M.prune(opts)
  opts = opts or {}
  local age = opts.partial_age or 7 * 86400
  local now = os.time()
  local removed, freed, kept = {}, 0, 0
  local function drop(p, size)
    removed[#removed + 1] = p
    freed = freed + (size or 0)
    if not opts.dry_run then core.remove_tree(p) end
  end
  local repos = opts.repos
  if not repos then
    repos = {}
    for _, d in ipairs(core.listdir(M.root()) or {}) do repos[#repos + 1] = M.root() .. "/" .. d end
  end
  for _, repo in ipairs(repos) do
    local used = {}
    for _, l in ipairs(snapshot_links(repo)) do
      if l.ok and l.blob then used[l.blob] = true else drop(l.path, 0) end
    end
    local blobs = repo .. "/blobs"
    local names = core.listdir(blobs) or {}
    local present = {}
    for _, n in ipairs(names) do present[n] = true end
    for _, n in ipairs(names) do
      local p = blobs .. "/" .. n
      local st = core.stat(p)
      if st then
        if is_blob_name(n) then
          if not used[n] then drop(p, st.size) end
        elseif n:match("%.incomplete$") then
          local lk = core.lock(p:gsub("%.incomplete$", "") .. ".lock", 0)
          if lk and now - st.mtime > age then
            drop(p, st.size)
            if present[n .. ".meta"] then drop(p .. ".meta", 0) end
          else
            kept = kept + 1
          end
          if lk then lk:release() end
        elseif n:match("%.incomplete%.meta$") then
          if not present[n:gsub("%.meta$", "")] then drop(p, st.size) end
        elseif n:match("%.lock$") then
          if not present[n:gsub("%.lock$", "") .. ".incomplete"] and not opts.dry_run then
            local lk = core.lock(p, 0)       -- free: taking and releasing it removes the file
            if lk then lk:release() removed[#removed + 1] = p end
          end
        elseif n:match("%.tmp%-%d+$") and now - st.mtime > 3600 then
          drop(p, st.size)
        end
      end
    end
    -- empty snapshot folders (their refs go with them), then an empty repository
    for _, rev in ipairs(core.listdir(repo .. "/snapshots") or {}) do
      local sdir = repo .. "/snapshots/" .. rev
      local nfiles = 0
      walk(sdir, function(p, st)
        if st.type ~= "dir" and not (opts.dry_run and removed_has(removed, p)) then nfiles = nfiles + 1 end
      end)
      if nfiles == 0 then
        drop(sdir, 0)
        if core.stat(repo .. "/refs/" .. rev) then drop(repo .. "/refs/" .. rev, 0) end
      end
    end
    if not opts.dry_run then
      local left = #(core.listdir(repo .. "/snapshots") or {}) + #(core.listdir(blobs) or {})
      if left == 0 then drop(repo, 0) end
    end
  end
  return { removed = removed, freed = freed, kept_partial = kept }
end

-- ---- verify ----------------------------------------------------------------------------------------

--- M.verify(opts) -> rows {repo, blob, size, ok, got}, bad_count
--- Re-hashes every blob; opts.delete removes the bad ones and the links to them.
function M.verify(opts)
  opts = opts or {}
  local rows, bad = {}, 0
  for _, d in ipairs(core.listdir(M.root()) or {}) do
    local repo = M.root() .. "/" .. d
    local name = M.display(d)
    if not opts.repo or opts.repo == name or opts.repo == d then
      for _, n in ipairs(core.listdir(repo .. "/blobs") or {}) do
        if is_blob_name(n) then
          local p = repo .. "/blobs/" .. n
          local got, size = core.sha256_file(p)
          local ok = got == n
          rows[#rows + 1] = { repo = name, blob = n, size = size, ok = ok, got = got or size }
          if not ok then
            bad = bad + 1
            if opts.delete then
              os.remove(p)
              rows[#rows].deleted = true
            end
          end
        end
      end
      if opts.delete then
        for _, l in ipairs(snapshot_links(repo)) do if not l.ok then os.remove(l.path) end end
      end
    end
  end
  return rows, bad
end

return M
