-- fetch, cache, search and publish models: resumable verified downloads, registries, mirrors
local cli = require "torsh.cli"
local hub = require "torsh.hub"
local util = hub.util

local FORMAT = { "format", "table|json|yaml", default = "table", choices = { "table", "json", "yaml" }, help = "output format" }
local REGISTRY = { "registry", "URL_OR_FILE", help = "registry index (default $TORSH_REGISTRY or config.json)" }

local function die(sub, msg)
  msg = tostring(msg):gsub("^" .. sub .. ": ", "")
  io.stderr:write("torsh: hub ", sub, ": ", msg, "\n")
  os.exit(1, true)
end

-- cli.table cells stay under 100 characters
local function clip(s, n)
  s = tostring(s or ""):gsub("%s+", " ")
  n = n or 60
  return #s > n and (s:sub(1, n - 3) .. "...") or s
end

-- cli.parse keeps one value per option: pull repeatable ones (and -o) out first.
local function take_repeated(args, name)
  local out, rest = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local v = a:match("^%-%-" .. name .. "=(.*)$")
    if v then out[#out + 1] = v
    elseif a == "--" .. name then
      if args[i + 1] == nil then cli.usage_error("option --" .. name .. " needs a value") end
      out[#out + 1] = args[i + 1]
      i = i + 1
    elseif a == "-o" then
      rest[#rest + 1] = "--output"
    else rest[#rest + 1] = a end
    i = i + 1
  end
  return out, rest
end

local function parse(sub, args, spec)
  spec.name = "hub " .. sub
  return cli.parse(args, spec)
end

local function need(opts, n, sub, what)
  if #opts < n then cli.usage_error(string.format("hub %s: missing %s (see torsh hub %s --help)", sub, what, sub)) end
end

local function num(v, sub, what)
  if v == nil then return nil end
  local n = tonumber(v)
  if not n then cli.usage_error(string.format("hub %s: --%s must be a number, got '%s'", sub, what, v)) end
  return n
end

local function hsize(n) return n and util.human_size(n) or "" end

local function fmt(v, pattern) return v and string.format(pattern, v) or "" end

-- ---- subcommands ----------------------------------------------------------------------------

local commands = {}

commands.download = function(args)
  local mirror_list, rest = take_repeated(args, "mirror")
  local o = parse("download", rest, {
    summary = "Downloads a URL, a registry model NAME[@VERSION-RANGE] (with its dependencies) or\n" ..
              "hf:OWNER/REPO/FILE[@REVISION] into the cache, resuming partial data, retrying,\n" ..
              "trying mirrors, and verifying the SHA-256. Prints the path of the verified file (a\n" ..
              "snapshot folder for registry models) as the last line; fails with exit status 1\n" ..
              "and the reason on stderr.",
    positional = "URL|NAME[@RANGE]|hf:OWNER/REPO/FILE[@REV]",
    options = {
      { "sha256", "HEX", help = "expected SHA-256 of a URL's file" },
      { "size", "BYTES", help = "expected size" },
      { "mirror", "BASE_URL", help = "also try the same path under BASE_URL (repeatable, in order)" },
      { "output", "PATH", help = "write the file to PATH instead of the cache (also -o)" },
      REGISTRY,
      { "force", flag = true, help = "download again even when cached" },
      { "tries", "N", help = "attempts in a row without progress (default 5)" },
      { "connect-timeout", "SECONDS", help = "connection timeout (default 10)" },
      { "stall-timeout", "SECONDS", help = "give up an attempt after this long without data (default 30)" },
      { "quiet", flag = true, help = "no progress bar or notes" },
      FORMAT,
    },
    examples = {
      "torsh hub download https://example.org/model.safetensors --sha256 9f86d0...",
      "torsh hub download resnet18@^1.2 --registry https://models.example.org/index.json",
      "torsh hub download hf:openai-community/gpt2/config.json",
      "torsh hub download https://a.example/m.bin --mirror https://b.example --mirror https://c.example -o m.bin",
    },
  })
  need(o, 1, "download", "what to download")
  local path, info = hub.download(o[1], {
    sha256 = o.sha256, size = num(o.size, "download", "size"), mirrors = mirror_list, output = o.output,
    registry = o.registry, force = o.force, tries = num(o.tries, "download", "tries"),
    connect_timeout = num(o["connect-timeout"], "download", "connect-timeout"),
    low_speed_time = num(o["stall-timeout"], "download", "stall-timeout"), quiet = o.quiet,
  })
  if not path then die("download", info) end
  if o.format ~= "table" then
    info.path = path
    cli.output(info, o.format)
    return
  end
  if info.resolved and #info.resolved > 1 and not o.quiet then
    local parts = {}
    for _, r in ipairs(info.resolved) do parts[#parts + 1] = r.name .. "@" .. r.version end
    io.stderr:write("torsh: resolved ", table.concat(parts, ", "), "\n")
  end
  io.write(path, "\n")
end

commands.search = function(args)
  local o = parse("search", args, {
    summary = "Searches the registry: the newest version of each model matching QUERY (name,\n" ..
              "tags, task, description) and the filters.",
    positional = "[QUERY]",
    options = {
      { "task", "TASK", help = "only this task (e.g. image-classification)" },
      { "tag", "TAG", help = "only models with this tag" },
      { "license", "LICENSE", help = "only this license" },
      { "file-format", "FMT", help = "only versions with a file of this format (safetensors, onnx, ...)" },
      { "max-size", "SIZE", help = "only versions up to this size (20MB, 1.5GiB)" },
      REGISTRY, FORMAT,
    },
    examples = { "torsh hub search resnet --task image-classification --max-size 50MB" },
  })
  local rows, err = hub.search(o[1], { task = o.task, tag = o.tag, license = o.license, format = o["file-format"],
                                       max_size = o["max-size"], registry = o.registry })
  if not rows then die("search", err) end
  for _, r in ipairs(rows) do r.score = nil end
  cli.output(rows, o.format, function(d)
    if #d == 0 then return "no models match\n" end
    local t = {}
    for _, r in ipairs(d) do
      t[#t + 1] = { name = r.name, version = r.version, task = r.task or "", size = hsize(r.size),
                    accuracy = fmt(r.accuracy, "%g"), latency = fmt(r.latency_ms, "%g ms"),
                    tags = clip(table.concat(r.tags or {}, ","), 40) }
    end
    return cli.table(t, { { "name", "NAME" }, { "version", "VERSION" }, { "task", "TASK" }, { "size", "SIZE" },
                          { "accuracy", "ACCURACY" }, { "latency", "LATENCY" }, { "tags", "TAGS" } })
  end)
end

commands.info = function(args)
  local o = parse("info", args, {
    summary = "Shows a registry model: every version with its files, sizes, SHA-256,\n" ..
              "metrics, dependencies, and whether it is in the cache.",
    positional = "NAME", options = { REGISTRY, FORMAT },
  })
  need(o, 1, "info", "NAME")
  local m, err = hub.info(o[1], { registry = o.registry })
  if not m then die("info", err) end
  cli.output(m, o.format, function(d)
    local lines = { string.format("%s — %s", d.name, d.description or ""),
                    string.format("task: %s   license: %s   tags: %s", d.task or "?", d.license or "?",
                                  table.concat(d.tags or {}, ", ")) }
    for _, v in ipairs(d.versions) do
      local deps = {}
      for _, dep in ipairs(v.dependencies) do deps[#deps + 1] = dep.name .. " " .. dep.version end
      lines[#lines + 1] = string.format("\n%s%s  %s  accuracy %s  latency %s%s", v.version,
        v.version == d.latest and " (latest)" or "", hsize(v.size), fmt(v.metrics.accuracy, "%g"),
        fmt(v.metrics.latency_ms, "%g ms"), v.cached and "  [cached]" or "")
      if #deps > 0 then lines[#lines + 1] = "  needs: " .. table.concat(deps, ", ") end
      for _, f in ipairs(v.files) do
        lines[#lines + 1] = string.format("  %-28s %10s  %s  sha256:%s%s", f.name, hsize(f.size), f.format or "",
                                          (f.sha256 or "?"):sub(1, 16), f.cached and "  [cached]" or "")
      end
    end
    return table.concat(lines, "\n") .. "\n"
  end)
end

commands.ls = function(args)
  local o = parse("ls", args, {
    summary = "Lists the cache ($TORSH_HOME/hub): each model, repository or host with its\n" ..
              "revisions, files and size.",
    options = { { "files", flag = true, help = "list every file" }, FORMAT },
  })
  local rows = hub.ls()
  if not o.files then for _, r in ipairs(rows) do r.file_list = nil end end
  cli.output(rows, o.format, function(d)
    if #d == 0 then return "the cache is empty (" .. hub.cache_dir() .. ")\n" end
    local t = {}
    for _, r in ipairs(d) do
      t[#t + 1] = { name = clip(r.name, 50), kind = r.kind, revs = clip(table.concat(r.revisions, ","), 40), files = r.files,
                    size = hsize(r.size), partial = r.partial > 0 and hsize(r.partial) or "" }
      for _, f in ipairs(r.file_list or {}) do
        t[#t + 1] = { name = clip("  " .. f.revision .. "/" .. f.file, 90), kind = f.ok and "" or "(missing blob)",
                      revs = "", files = "", size = "", partial = "" }
      end
    end
    return cli.table(t, { { "name", "NAME" }, { "kind", "KIND" }, { "revs", "REVISIONS" }, { "files", "FILES" },
                          { "size", "SIZE" }, { "partial", "PARTIAL" } })
  end)
end

commands.rm = function(args)
  local o = parse("rm", args, {
    summary = "Removes a model, repository or host from the cache, or one revision of it\n" ..
              "(NAME@REVISION; blobs no other revision uses go too).",
    positional = "NAME[@REVISION]...", options = { FORMAT },
    examples = { "torsh hub rm resnet18@1.2.0", "torsh hub rm hf:openai-community/gpt2", "torsh hub rm url:example.org" },
  })
  need(o, 1, "rm", "NAME")
  local all = { removed = {}, freed = 0 }
  for _, target in ipairs(o) do
    local res, err = hub.rm(target)
    if not res then die("rm", err) end
    for _, p in ipairs(res.removed) do all.removed[#all.removed + 1] = p end
    all.freed = all.freed + res.freed
  end
  cli.output(all, o.format, function(d)
    return string.format("removed %d item%s, freed %s\n", #d.removed, #d.removed == 1 and "" or "s", hsize(d.freed))
  end)
end

commands.prune = function(args)
  local o = parse("prune", args, {
    summary = "Removes what no snapshot uses: unreferenced blobs, dangling links, empty\n" ..
              "revisions, partial downloads older than --older days whose lock is free.",
    options = { { "dry-run", flag = true, help = "only list what would go" },
                { "older", "DAYS", default = "7", help = "age of partial downloads to remove" }, FORMAT },
  })
  local res = hub.prune { dry_run = o["dry-run"], partial_age = num(o.older, "prune", "older") * 86400 }
  cli.output(res, o.format, function(d)
    local lines = {}
    for _, p in ipairs(d.removed) do lines[#lines + 1] = (o["dry-run"] and "would remove " or "removed ") .. p end
    lines[#lines + 1] = string.format("%s %s%s", o["dry-run"] and "would free" or "freed", hsize(d.freed),
      d.kept_partial > 0 and string.format(" (%d partial download%s kept)", d.kept_partial, d.kept_partial == 1 and "" or "s") or "")
    return table.concat(lines, "\n") .. "\n"
  end)
end

commands.verify = function(args)
  local o = parse("verify", args, {
    summary = "Re-hashes every blob in the cache and compares with its name (its SHA-256).\n" ..
              "Exit status 1 when any is corrupt.",
    options = { { "repo", "NAME", help = "only this model / repository" },
                { "delete", flag = true, help = "delete corrupt blobs and the links to them" }, FORMAT },
  })
  local rows, bad = hub.verify { repo = o.repo, delete = o.delete }
  cli.output({ blobs = rows, bad = bad }, o.format, function(d)
    local t = {}
    for _, r in ipairs(d.blobs) do
      t[#t + 1] = { repo = r.repo, blob = r.blob:sub(1, 16), size = hsize(r.size),
                    state = r.ok and "ok" or ("CORRUPT (got " .. tostring(r.got):sub(1, 16) .. ")" .. (r.deleted and ", deleted" or "")) }
    end
    return (#t > 0 and cli.table(t, { { "repo", "REPO" }, { "blob", "BLOB" }, { "size", "SIZE" }, { "state", "STATE" } }) or "")
      .. string.format("%d blob%s checked, %d corrupt\n", #d.blobs, #d.blobs == 1 and "" or "s", d.bad)
  end)
  if bad > 0 then os.exit(1, true) end
end

commands.mirrors = function(args)
  local extra, rest = take_repeated(args, "mirror")
  local o = parse("mirrors", rest, {
    summary = "Shows the mirrors and servers the hub knows (TORSH_MIRRORS, config.json,\n" ..
              "--mirror, and every server used so far) with their health; --probe sends each\n" ..
              "a HEAD request and records its latency.",
    positional = "[BASE_URL...]",
    options = { { "mirror", "BASE_URL", help = "a mirror to include (repeatable)" },
                { "probe", flag = true, help = "probe every mirror now" }, FORMAT },
  })
  for _, b in ipairs(o) do extra[#extra + 1] = b end
  local probes = {}
  if o.probe then
    local bases = {}
    for _, r in ipairs(hub.mirrors(extra)) do bases[#bases + 1] = r.base end
    local res, err = hub.probe(bases)
    if not res then die("mirrors", err) end
    for _, p in ipairs(res) do probes[p.base] = p end
  end
  local rows = hub.mirrors(extra)
  for _, r in ipairs(rows) do
    local p = probes[r.base]
    if p then r.probe = p.ok and string.format("%.1f ms (HTTP %d)", p.latency_ms, p.status) or ("failed: " .. p.error) end
  end
  cli.output(rows, o.format, function(d)
    if #d == 0 then return "no mirrors known (set TORSH_MIRRORS or pass --mirror)\n" end
    local t = {}
    for _, r in ipairs(d) do
      t[#t + 1] = { base = r.base, state = r.state, ok = r.ok, fail = r.fail,
                    latency = fmt(r.latency_ms, "%.1f ms"), speed = r.speed and (hsize(r.speed) .. "/s") or "",
                    note = clip(r.probe or r.last_error) }
    end
    return cli.table(t, { { "base", "BASE" }, { "state", "STATE" }, { "ok", "OK" }, { "fail", "FAIL" },
                          { "latency", "LATENCY" }, { "speed", "SPEED" }, { "note", "PROBE / LAST ERROR" } })
  end)
end

commands.upload = function(args)
  local o = parse("upload", args, {
    summary = "Uploads FILE with HTTP PUT, its SHA-256 in the X-Checksum-Sha256 and Digest\n" ..
              "headers (any WebDAV-style server, e.g. nginx with dav_methods PUT). A URL ending\n" ..
              "in / gets the file name appended.",
    positional = "FILE",
    options = { { "to", "URL", help = "where to PUT the file (required)" },
                { "tries", "N", help = "attempts in a row without progress (default 5)" },
                { "quiet", flag = true, help = "no progress bar" }, FORMAT },
    examples = { "torsh hub upload model.safetensors --to https://models.example.org/resnet18/1.3.0/" },
  })
  need(o, 1, "upload", "FILE")
  if not o.to then cli.usage_error("hub upload: --to URL is required") end
  local res, err = hub.upload(o[1], o.to, { tries = num(o.tries, "upload", "tries"), quiet = o.quiet })
  if not res then die("upload", err) end
  cli.output(res, o.format, function(d)
    return string.format("uploaded %s (%s, sha256 %s): HTTP %d\n", d.url, hsize(d.size), d.sha256, d.http_status)
  end)
end

commands.index = function(args)
  local o = parse("index", args, {
    summary = "Builds a registry index from DIR/<model>/<version>/<files> (optional\n" ..
              "<model>/model.json and <model>/<version>/version.json add task, tags, license,\n" ..
              "metrics and dependencies), hashing every file. Writes DIR/index.json; serve\n" ..
              "DIR with any static web server and point --registry at index.json.",
    positional = "DIR",
    options = { { "output", "PATH", help = "where to write the index (default DIR/index.json)" },
                { "dry-run", flag = true, help = "check and list, write nothing" }, FORMAT },
  })
  need(o, 1, "index", "DIR")
  local index, rows, warnings = hub.index(o[1], { output = o.output, dry_run = o["dry-run"] })
  if not index then die("index", rows) end
  for _, w in ipairs(warnings) do io.stderr:write("torsh: hub index: ", w, "\n") end
  cli.output(rows, o.format, function(d)
    local t = {}
    for _, r in ipairs(d) do t[#t + 1] = { name = r.name, version = r.version, files = r.files, size = hsize(r.size), task = r.task or "" } end
    return cli.table(t, { { "name", "NAME" }, { "version", "VERSION" }, { "files", "FILES" }, { "size", "SIZE" }, { "task", "TASK" } })
      .. (index.path and ("wrote " .. index.path .. "\n") or "")
  end)
end

commands.recommend = function(args)
  local o = parse("recommend", args, {
    summary = "Ranks the registry's models that fit a task and budgets (newest fitting\n" ..
              "version of each): by accuracy, then latency, then size; says why each fits\n" ..
              "and, with --all, why the others do not.",
    options = {
      { "task", "TASK", help = "the task (e.g. image-classification)" },
      { "max-size", "SIZE", help = "largest download (20MB, 1.5GiB)" },
      { "max-latency", "TIME", help = "slowest latency (10ms, 0.5s)" },
      { "min-accuracy", "X", help = "lowest accuracy" },
      { "all", flag = true, help = "also list the models left out and why" },
      REGISTRY, FORMAT,
    },
    examples = { "torsh hub recommend --task image-classification --max-size 20MB --max-latency 10ms" },
  })
  local ranked, rejected = hub.recommend { task = o.task, max_size = o["max-size"], max_latency = o["max-latency"],
                                           min_accuracy = o["min-accuracy"], registry = o.registry }
  if not ranked then die("recommend", rejected) end
  local data = { recommended = ranked, rejected = o.all and rejected or nil }
  cli.output(data, o.format, function(d)
    local out = {}
    if #d.recommended == 0 then out[1] = "no model fits\n"
    else
      local t = {}
      for _, r in ipairs(d.recommended) do
        t[#t + 1] = { rank = r.rank, name = r.name .. "@" .. r.version, accuracy = fmt(r.accuracy, "%g"),
                      latency = fmt(r.latency_ms, "%g ms"), size = hsize(r.size), why = clip(r.why, 90) }
      end
      out[1] = cli.table(t, { { "rank", "#" }, { "name", "MODEL" }, { "accuracy", "ACCURACY" }, { "latency", "LATENCY" },
                              { "size", "SIZE" }, { "why", "WHY" } })
    end
    if d.rejected and #d.rejected > 0 then
      out[#out + 1] = "\nleft out:\n"
      for _, r in ipairs(d.rejected) do out[#out + 1] = string.format("  %s@%s: %s\n", r.name, r.version, r.why) end
    end
    return table.concat(out)
  end)
end

commands.resolve = function(args)
  local o = parse("resolve", args, {
    summary = "Resolves NAME[@RANGE] and its dependencies to one consistent set of versions\n" ..
              "(or explains the conflict), without downloading.",
    positional = "NAME[@RANGE]", options = { REGISTRY, FORMAT },
  })
  need(o, 1, "resolve", "NAME")
  local plan, err = hub.resolve(o[1], { registry = o.registry })
  if not plan then die("resolve", err) end
  cli.output(plan, o.format, function(d)
    local t = {}
    for _, r in ipairs(d) do t[#t + 1] = r.name .. "@" .. r.version end
    return table.concat(t, "\n") .. "\n"
  end)
end

-- ---- dispatch -----------------------------------------------------------------------------------------

local ORDER = { "download", "search", "info", "recommend", "resolve", "ls", "rm", "prune", "verify", "mirrors",
                "upload", "index" }
local BRIEF = {
  download = "download a URL, a registry model or an hf: file, verified",
  search = "search the registry", info = "show a registry model's versions and files",
  recommend = "rank models that fit a task and size/latency budgets",
  resolve = "resolve a model's dependencies", ls = "list the cache", rm = "remove from the cache",
  prune = "remove unused blobs and stale partial downloads", verify = "re-hash every blob in the cache",
  mirrors = "show (and probe) mirrors and their health", upload = "HTTP PUT a file with its SHA-256",
  index = "build a registry index from a folder of models",
}

local function usage(out)
  local lines = { "usage: torsh hub COMMAND [options] ...", "",
                  "Models and files from URLs, registries and the Hugging Face Hub: resumable,",
                  "retried, SHA-256-verified downloads into a cache shared by processes.", "", "commands:" }
  for _, c in ipairs(ORDER) do lines[#lines + 1] = string.format("  %-10s %s", c, BRIEF[c]) end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "torsh hub COMMAND --help shows a command's options. Environment: TORSH_HOME (cache,"
  lines[#lines + 1] = "default ~/.cache/torsh), TORSH_REGISTRY, TORSH_MIRRORS, TORSH_TOKEN, HF_ENDPOINT,"
  lines[#lines + 1] = "HF_TOKEN, TORSH_OFFLINE=1 (no network at all). See docs/HUB.md."
  out:write(table.concat(lines, "\n"), "\n")
end

local sub = arg[1]
if sub == nil then usage(io.stderr) os.exit(2) end
if sub == "--help" or sub == "-h" or sub == "help" then usage(io.stdout) os.exit(0) end
local fn = commands[sub]
if not fn then cli.usage_error(string.format("hub: unknown command '%s' (see torsh hub --help)", sub)) end
fn({ table.unpack(arg, 2) })
