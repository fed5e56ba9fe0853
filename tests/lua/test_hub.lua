-- test_hub.lua — the hub's Lua half without a server: semver parsing,
-- ordering and ranges; dependency resolution and its conflict messages;
-- registry checking, search and recommend; sizes, durations and URL
-- helpers; hf: URLs; which hosts get the token; mirror ordering by health;
-- the cache (download of file:// URLs, snapshots, ls, rm, prune, verify,
-- offline); locks from Lua; progress callbacks and cancelling.
local T = require "torsh.test"
local hub = torsh.hub
local semver = require "torsh.hub.semver"
local registry = require "torsh.hub.registry"
local util = require "torsh.hub.util"
local mirrors = require "torsh.hub.mirrors"
local core = require "torsh.hub.core"

local tmp = T.tmpdir()
util.set_home(tmp .. "/home")

local function write(path, text)
  assert(core.mkdirs(util.dirname(path)))
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

T.case("semver parse and compare", function()
  local v = assert(semver.parse("v1.2.3-rc.1+build.5"))
  T.eq(v.major, 1); T.eq(v.minor, 2); T.eq(v.patch, 3); T.eq(v.pre[1], "rc"); T.eq(v.pre[2], 1)
  T.eq(semver.parse("2").minor, 0)
  T.eq(semver.parse("x.y"), nil)
  T.eq(semver.compare("1.10.0", "1.9.3"), 1)
  T.eq(semver.compare("1.0.0", "1.0.0+other"), 0)
  -- semver.org's precedence example, in order
  local chain = { "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
                  "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0" }
  for i = 1, #chain - 1 do T.eq(semver.compare(chain[i], chain[i + 1]), -1, chain[i]) end
  T.eq(table.concat(semver.sort({ "1.2.0", "0.9.1", "1.10.0", "1.2.0-rc.1" }, true), " "), "1.10.0 1.2.0 1.2.0-rc.1 0.9.1")
  T.raises(function() semver.compare("1.0", "nope") end, "is not a version")
end)

T.case("semver ranges", function()
  local function m(range, v) return semver.satisfies(v, range) end
  T.ok(m("^1.2", "1.2.0") and m("^1.2", "1.9.9") and not m("^1.2", "2.0.0") and not m("^1.2", "1.1.9"))
  T.ok(m("^0.2.3", "0.2.9") and not m("^0.2.3", "0.3.0"))
  T.ok(m("^0.0.3", "0.0.3") and not m("^0.0.3", "0.0.4"))
  T.ok(m("~1.4.0", "1.4.7") and not m("~1.4.0", "1.5.0") and m("~1", "1.9.0") and not m("~1", "2.0.0"))
  T.ok(m(">=2", "2.0.0") and m(">=2", "10.1.0") and not m(">=2", "1.9.9"))
  T.ok(m(">1.2", "1.3.0") and not m(">1.2", "1.2.9") and m(">1.2.3", "1.2.4"))
  T.ok(m("<=1.4", "1.4.9") and not m("<=1.4", "1.5.0") and m("<2", "1.99.0") and not m("<2", "2.0.0"))
  T.ok(m("1.2.3", "1.2.3") and not m("1.2.3", "1.2.4") and m("=1.2.3", "1.2.3"))
  T.ok(m("1.2", "1.2.8") and m("1.2.x", "1.2.0") and not m("1.2", "1.3.0"))
  T.ok(m("*", "0.0.1") and m("", "5.0.0") and m("latest", "3.1.4"))
  T.ok(m(">=1.2 <1.5", "1.4.0") and not m(">=1.2, <1.5", "1.5.0"))
  T.ok(m("^1 || ^3", "3.2.0") and not m("^1 || ^3", "2.0.0"))
  T.ok(m(">= 2", "2.1.0"))
  -- prereleases only when the range asks for one of the same version
  T.ok(not m("^1.2", "1.3.0-rc.1") and m(">=1.3.0-rc.0", "1.3.0-rc.1") and not m(">=1.3.0-rc.0", "1.4.0-rc.1"))
  T.eq(semver.best({ "1.2.0", "1.5.1", "1.5.0", "2.0.0" }, "~1.5"), "1.5.1")
  T.eq(semver.best({ "1.2.0" }, "^2"), nil)
  local r, err = semver.range("1.2 - 2.0")
  T.eq(r, nil)
  T.ok(err:match("not a version range"))
  T.raises(function() semver.satisfies("1.0.0", "^^") end, "not a version range")
end)

local function index_doc()
  return [[{
  "format": "torsh-registry/1",
  "models": [
    {"name": "net", "task": "image-classification", "tags": ["vision"], "license": "MIT",
     "versions": [
       {"version": "1.0.0", "files": [{"name": "w.bin", "url": "net/1.0.0/w.bin", "size": 100}],
        "dependencies": [{"name": "labels", "version": "^1.0"}], "metrics": {"accuracy": 0.6, "latency_ms": 2}},
       {"version": "2.0.0", "files": [{"name": "w.bin", "url": "net/2.0.0/w.bin", "size": 5000000}],
        "dependencies": [{"name": "labels", "version": "^2"}], "metrics": {"accuracy": 0.9, "latency_ms": 30}},
       {"version": "2.1.0-beta.1", "files": [{"name": "w.bin", "url": "https://cdn.example/w.bin", "size": 1}]}
     ]},
    {"name": "labels", "task": "labels", "versions": [
       {"version": "1.0.0", "files": [{"name": "l.txt", "url": "labels/1/l.txt", "size": 10}]},
       {"version": "1.3.0", "files": [{"name": "l.txt", "url": "labels/13/l.txt", "size": 10}]},
       {"version": "2.0.0", "files": [{"name": "l.txt", "url": "labels/2/l.txt", "size": 10}]}]},
    {"name": "pipeline", "task": "detection", "versions": [
       {"version": "1.0.0", "files": [], "dependencies": ["net@^1", "labels@~1.3.0"]}]},
    {"name": "broken", "versions": [
       {"version": "1.0.0", "files": [], "dependencies": [{"name": "net", "version": "^2"}, {"name": "labels", "version": "~1.3.0"}]}]},
    {"name": "orphan", "versions": [{"version": "0.1.0", "files": [], "dependencies": [{"name": "ghost", "version": "*"}]}]},
    {"name": "fast-net", "task": "image-classification", "description": "small and quick", "versions": [
       {"version": "0.3.0", "files": [{"name": "w.bin", "url": "f/w.bin", "size": 300000}], "metrics": {"accuracy": 0.6, "latency_ms": 1.5}}]}
  ]}]]
end

local function reg()
  return assert(registry.parse(index_doc(), "https://models.example/reg/index.json"))
end

T.case("registry: parse, defaults, relative URLs", function()
  local r = reg()
  local net = r.by_name.net
  T.eq(net.latest.version, "2.1.0-beta.1")
  T.eq(net.versions[2].version, "2.0.0")
  T.eq(net.versions[3].files[1].url, "https://models.example/reg/net/1.0.0/w.bin")
  T.eq(net.versions[1].files[1].url, "https://cdn.example/w.bin")
  T.eq(net.versions[2].task, "image-classification")
  T.eq(net.versions[2].license, "MIT")
  T.eq(net.versions[3].files[1].format, "bin")
  T.eq(r.by_name.pipeline.versions[1].dependencies[2].version, "~1.3.0")
  local bad = {
    { '{"models": [{"versions": []}]}', "models%[1%]%.name" },
    { '{"models": [{"name": "a", "versions": []}]}', "has no versions" },
    { '{"models": [{"name": "a", "versions": [{"version": "one"}]}]}', "not a version" },
    { '{"models": [{"name": "a", "versions": [{"version": "1.0.0", "files": [{"name": "../x", "url": "u"}]}]}]}', "without '%.%.'" },
    { '{"models": [{"name": "a", "versions": [{"version": "1.0.0", "files": [{"name": "x", "url": "u", "sha256": "zz"}]}]}]}', "64 hex digits" },
    { '{"models": [{"name": "a", "versions": [{"version": "1.0.0", "dependencies": [{"name": "b", "version": "^^"}]}]}]}', "not a version range" },
    { '{"nothing": 1}', "no \"models\" list" },
    { '{"models": [', "invalid JSON" },
  }
  for _, case in ipairs(bad) do
    local r2, err = registry.parse(case[1], "file:///x/index.json", "test")
    T.eq(r2, nil, case[1])
    T.ok(err:match(case[2]), err)
  end
end)

T.case("resolve: newest consistent set, dependencies first", function()
  local r = reg()
  local plan = assert(registry.resolve(r, "pipeline", "*"))
  local got = {}
  for _, s in ipairs(plan) do got[#got + 1] = s.model.name .. "@" .. s.version.version end
  T.eq(table.concat(got, " "), "labels@1.3.0 net@1.0.0 pipeline@1.0.0")
  plan = assert(registry.resolve(r, "net", "^2"))
  T.eq(plan[1].model.name .. "@" .. plan[1].version.version, "labels@2.0.0")
  plan = assert(registry.resolve(r, "net", "*"))        -- backtracks from the prerelease? no: * excludes it
  T.eq(plan[#plan].version.version, "2.0.0")
end)

T.case("resolve: conflicts and unknown names are explained", function()
  local r = reg()
  local plan, err = registry.resolve(r, "broken", "*")
  T.eq(plan, nil)
  T.ok(err:match("cannot resolve broken@%*"), err)
  T.ok(err:match("no version of labels satisfies every requirement"), err)
  T.ok(err:match("broken@1%.0%.0 needs labels ~1%.3%.0"), err)
  T.ok(err:match("net@2%.0%.0 needs labels %^2"), err)
  T.ok(err:match("available: 2%.0%.0, 1%.3%.0, 1%.0%.0"), err)
  _, err = registry.resolve(r, "orphan", "*")
  T.ok(err:match("unknown model 'ghost' %(needed by orphan@0%.1%.0%)"), err)
  _, err = registry.resolve(r, "net", "^3")
  T.ok(err:match("you asked for net %^3"), err)
  _, err = registry.resolve(r, "ne", "*")
  T.ok(err:match("unknown model 'ne' %(did you mean"), err)
end)

T.case("search and recommend", function()
  local r = reg()
  local rows = registry.search(r, "net", {})
  T.eq(rows[1].name, "net")                         -- exact name first
  T.eq(#rows, 2)
  rows = registry.search(r, nil, { task = "image-classification", max_size = "1MB" })
  T.eq(#rows, 2)
  T.eq(rows[1].name, "fast-net"); T.eq(rows[2].name, "net"); T.eq(rows[2].version, "1.0.0")
  T.eq(#registry.search(r, "quick", {}), 1)         -- description
  T.eq(#registry.search(r, "vision", { tag = "vision" }), 1)
  local ranked, rejected = registry.recommend(r, { task = "image-classification", max_size = "20MB", max_latency = "10ms" })
  T.eq(#ranked, 2)
  T.eq(ranked[1].name, "fast-net")                                  -- same accuracy, faster
  T.eq(ranked[2].name, "net"); T.eq(ranked[2].version, "1.0.0")    -- 2.0.0 is too slow: the newest that fits
  T.ok(ranked[1].why:match("^best accuracy of the 2 that fit"), ranked[1].why)
  T.ok(ranked[2].why:match("^same accuracy as #1, slower; fits: 100 B <= 20%.0 MB, 2 ms <= 10 ms"), ranked[2].why)
  ranked = registry.recommend(r, { task = "image-classification", max_latency = "1ms" })
  T.eq(#ranked, 0)
  ranked, rejected = registry.recommend(r, { max_size = "1kB" })
  T.ok(#rejected >= 1)
  local why = {}
  for _, x in ipairs(rejected) do why[x.name] = x.why end
  T.ok(why["fast-net"]:match("too big: 300%.0 kB > 1%.00 kB"), why["fast-net"])
end)

T.case("sizes, durations, URLs", function()
  T.eq(util.parse_size("20MB"), 20000000)
  T.eq(util.parse_size("1.5GiB"), 1610612736)
  T.eq(util.parse_size(" 7 "), 7)
  T.eq(util.parse_size("12 parsecs"), nil)
  T.eq(util.parse_ms("10ms"), 10); T.eq(util.parse_ms("0.5s"), 500); T.eq(util.parse_ms("200us"), 0.2)
  T.eq(util.human_size(1234567), "1.23 MB")
  T.eq(util.join_url("https://h/a/b/index.json", "m/1/w.bin"), "https://h/a/b/m/1/w.bin")
  T.eq(util.join_url("https://h/a/b/index.json", "../w.bin"), "https://h/a/w.bin")
  T.eq(util.join_url("https://h/a/b/index.json", "/top/w.bin"), "https://h/top/w.bin")
  T.eq(util.join_url("https://h/a/index.json", "http://o/w.bin"), "http://o/w.bin")
  T.eq(util.rebase("https://a.org:8443/m/x.bin?v=1", "http://mirror/base/"), "http://mirror/base/m/x.bin?v=1")
  T.eq(util.host_of("https://user:pw@Host.org:81/x"), "host.org:81")
  T.eq(util.basename("https://h/a/b.bin?x=1"), "b.bin")
  T.eq(core.redact("https://u:p@h/x?token=abc"), "https://***@h/x?token=***")
end)

T.case("hf: specs and resolve URLs", function()
  local owner, repo, file, rev = hub.parse_hf("hf:acme/tiny/sub/weights.bin@v1.0")
  T.eq(owner, "acme"); T.eq(repo, "tiny"); T.eq(file, "sub/weights.bin"); T.eq(rev, "v1.0")
  _, _, _, rev = hub.parse_hf("hf:acme/tiny/config.json")
  T.eq(rev, "main")
  T.eq(hub.parse_hf("hf:acme/config.json"), nil)
  T.ok(hub.hf_url("acme", "tiny", "a b.json", "main"):match("/acme/tiny/resolve/main/a%%20b%.json$"))
end)

T.case("the token goes only to its hosts", function()
  T.eq(hub.token_for("https://anywhere.example/x", { token = "explicit" }), "explicit")
  -- without TORSH_TOKEN in the environment nothing is sent to arbitrary hosts
  if not os.getenv("TORSH_TOKEN") then T.eq(hub.token_for("https://anywhere.example/x", {}), nil) end
end)

T.case("mirror candidates: down ones go last", function()
  local list = mirrors.candidates("http://a.example/m/x.bin", { "http://b.example/base", "http://c.example" })
  T.eq(list[1].url, "http://a.example/m/x.bin")
  T.eq(list[2].url, "http://b.example/base/m/x.bin")
  T.eq(list[3].url, "http://c.example/m/x.bin")
  mirrors.record_failure("http://a.example", "network", "connection refused")
  mirrors.record_ok("http://c.example", 1, 1000)
  list = mirrors.candidates("http://a.example/m/x.bin", { "http://b.example/base", "http://c.example" })
  T.eq(list[1].base, "http://b.example/base")
  T.eq(list[3].base, "http://a.example")
  local rows = hub.mirrors({ "http://b.example/base" })
  local state = {}
  for _, r in ipairs(rows) do state[r.base] = r.state end
  T.eq(state["http://a.example"], "down"); T.eq(state["http://c.example"], "healthy"); T.eq(state["http://b.example/base"], "unknown")
end)

T.case("cache: file:// downloads, snapshots, ls, verify, rm, prune", function()
  local src = tmp .. "/src/model.bin"
  write(src, string.rep("torsh", 20000))
  local sha = core.sha256(string.rep("torsh", 20000))
  local url = util.file_url(src)
  local path, info = hub.download(url, { sha256 = sha, progress = false })
  T.ok(path, info)
  T.eq(core.sha256_file(path), sha)
  T.eq(core.stat(path).type, "link")
  T.ok(path:match("/hub/urls%-%-local/snapshots/url%-%x+/model%.bin$"), path)
  local again, info2 = hub.download(url, { sha256 = sha, progress = false })
  T.eq(again, path); T.ok(info2.cached)
  -- a registry in a local file, its files next to it
  write(tmp .. "/reg/m/1.0.0/w.bin", "weights")
  write(tmp .. "/reg/index.json", string.format([[{"models": [{"name": "m", "versions": [
    {"version": "1.0.0", "files": [{"name": "w.bin", "url": "m/1.0.0/w.bin", "size": 7, "sha256": "%s"}]}]}]}]],
    core.sha256("weights")))
  local dir = assert(hub.download("m@^1", { registry = tmp .. "/reg/index.json", progress = false }))
  T.ok(dir:match("models%-%-m/snapshots/1%.0%.0$"), dir)
  T.eq(util.read_file(dir .. "/w.bin"), "weights")
  local rows = hub.ls()
  local names = {}
  for _, r in ipairs(rows) do names[r.name] = r end
  T.ok(names["m"] and names["url:local"])
  T.eq(names["m"].files, 1)
  local checked, bad = hub.verify()
  T.eq(bad, 0); T.eq(#checked, 2)
  T.ok(hub.rm("m@1.0.0"))
  T.eq(core.stat(dir), nil)
  local _, err = hub.rm("m@9.9.9")
  T.ok(err and err:match("not in the cache") or err:match("no revision"), err)
  T.ok(select(2, hub.rm("nothing")):match("not in the cache"))
  local res = hub.prune()
  T.ok(res.freed >= 0)
end)

T.case("offline: cached is served, missing is a clear error", function()
  local src = tmp .. "/src/other.bin"
  write(src, "other")
  -- TORSH_OFFLINE is read from the environment; run a child torsh with it set
  local cmd = string.format("TORSH_HOME=%q TORSH_OFFLINE=1 %q -e %q 2>&1", tmp .. "/home", arg[-1] or "torsh",
    "local p, e = torsh.hub.download('http://127.0.0.1:9/never.bin', {progress=false}) print(p, e)")
  local h = io.popen(cmd)
  local out = h:read("a")
  h:close()
  T.ok(out:match("nil%s+offline mode %(TORSH_OFFLINE is set%)"), out)
end)

T.case("locks from Lua", function()
  local path = tmp .. "/l.lock"
  local a, took = core.lock(path, 0)
  T.ok(a); T.eq(took, false)
  local b, err = core.lock(path, 0.05)
  T.eq(b, nil)
  T.ok(err:match("is held by pid " .. core.getpid()), err)
  a:release()
  a:release()                                 -- idempotent
  T.eq(core.stat(path), nil)
  do
    local c <close> = core.lock(path, 0)
    T.ok(core.stat(path))
  end
  T.eq(core.stat(path), nil)
end)

T.case("progress callbacks, and an error in one cancels cleanly", function()
  local src = tmp .. "/src/big.bin"
  write(src, string.rep("x", 3 * 1024 * 1024))
  local dest = tmp .. "/out/big.bin"
  core.mkdirs(tmp .. "/out")
  local calls, last = 0, 0
  local res = assert(core.download { url = util.file_url(src), dest = dest, progress = function(done, total)
    calls = calls + 1
    last = done
    T.ok(total == -1 or total == 3 * 1024 * 1024, total)
  end })
  T.ok(calls >= 2); T.eq(last, 3 * 1024 * 1024); T.eq(res.size, 3 * 1024 * 1024)
  local ok, err = pcall(core.download, { url = util.file_url(src), dest = tmp .. "/out/never.bin",
                                         progress = function() error("user says stop") end })
  T.eq(ok, false)
  T.ok(tostring(err):match("user says stop"), err)
  T.eq(core.stat(tmp .. "/out/never.bin"), nil)
  T.raises(function() core.download { dest = "x" } end, "'url' is required")
  T.raises(function() hub.download(42) end, "expected a URL or a model name")
  local p, e = hub.download("ftp://h/x", {})
  T.eq(p, nil); T.ok(e:match("unsupported URL scheme"))
  p, e = hub.download(util.file_url(src), { sha256 = "xyz" })
  T.eq(p, nil); T.ok(e:match("64 hex digits"))
end)

T.case("index: a folder becomes a registry", function()
  write(tmp .. "/models/a/1.0.0/w.safetensors", "aaa")
  write(tmp .. "/models/a/1.1.0/w.safetensors", "aaaa")
  write(tmp .. "/models/a/model.json", '{"task": "t", "tags": ["x"], "license": "MIT"}')
  write(tmp .. "/models/a/1.1.0/version.json", '{"metrics": {"accuracy": 0.5}, "dependencies": [{"name": "a", "version": "1.0.0"}]}')
  write(tmp .. "/models/a/notes/readme.txt", "not a version")
  local index, rows, warnings = hub.index(tmp .. "/models")
  T.ok(index, rows)
  T.eq(#index.models, 1)
  T.eq(index.models[1].versions[1].version, "1.1.0")
  T.eq(index.models[1].versions[1].files[1].sha256, core.sha256("aaaa"))
  T.eq(index.models[1].versions[1].files[1].format, "safetensors")
  T.eq(#rows, 2)
  T.ok(warnings[1]:match("notes.*not a version folder"), warnings[1])
  local r = assert(registry.parse(util.read_file(tmp .. "/models/index.json"), util.file_url(tmp .. "/models/index.json")))
  T.eq(r.by_name.a.latest.metrics.accuracy, 0.5)
  local bad, err = hub.index(tmp .. "/nope")
  T.eq(bad, nil); T.ok(err:match("is not a folder"))
end)

T.finish()
