-- show versions, CPU features, the BLAS kernel in use, threads and memory
local cli = require "torsh.cli"

local opts = cli.parse(arg, {
  name = "info",
  summary = "Shows what torsh runs on: versions, OS, CPU model and features, the BLAS\n" ..
            "library and the kernel family it uses, thread counts and memory.",
  options = { { "format", "table|json|yaml", default = "table", choices = { "table", "json", "yaml" },
                help = "output format" } },
  examples = { "torsh info", "torsh info --format json > env.json" },
})

local function read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function command(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  if not p then return nil end
  local s = p:read("a")
  p:close()
  return s and s:gsub("%s+$", "") or nil
end

local meminfo = read_file("/proc/meminfo") or ""
local function mem_kb(key) return tonumber(meminfo:match(key .. ":%s+(%d+)")) end
local osrel = read_file("/etc/os-release") or ""
local cpu = torsh.cpu()
local blas, blas_err = torsh.blas()
local mem = torsh.memory()

local features = {}
for name, on in pairs(cpu.features) do if on then features[#features + 1] = name end end
table.sort(features)

local info = {
  torsh = torsh.version,
  lua = _VERSION,
  os = osrel:match('PRETTY_NAME="([^"]*)"') or "unknown",
  kernel = command("uname -sr") or "unknown",
  libc = command("ldd --version | head -1") or "unknown",
  cpu = { model = cpu.model, vendor = cpu.vendor, cores = cpu.cores, features = features },
  threads = torsh.get_num_threads(),
  memory = {
    system_total = (mem_kb("MemTotal") or 0) * 1024,
    system_available = (mem_kb("MemAvailable") or 0) * 1024,
    tensors_live = mem.live,
    tensors_peak = mem.peak,
  },
  blas = blas and {
    library = blas.library, kernel = blas.kernel, config = blas.config, threads = blas.threads,
    coretype_forced = blas.coretype_forced,
  } or { error = blas_err },
  paths = {
    stdlib = package.path:match("([^;]*)/%?%.lua") or "",
    torsh_home = os.getenv("TORSH_HOME") or ((os.getenv("HOME") or "") .. "/.cache/torsh"),
  },
}

local function as_table(d)
  local function gib(b) return string.format("%.1f GiB", b / 2 ^ 30) end
  local rows = {
    { "torsh", d.torsh }, { "Lua", d.lua }, { "OS", d.os }, { "kernel", d.kernel }, { "libc", d.libc },
    { "CPU", string.format("%s (%s), %d cores", d.cpu.model, d.cpu.vendor, d.cpu.cores) },
    { "CPU features", table.concat(d.cpu.features, " ") },
    { "threads", tostring(d.threads) },
    { "memory", string.format("%s total, %s available", gib(d.memory.system_total), gib(d.memory.system_available)) },
    { "BLAS", d.blas.error or string.format("%s, kernel %s%s, %d threads", d.blas.library, d.blas.kernel,
        d.blas.coretype_forced and " (selected by torsh: OPENBLAS_CORETYPE=SkylakeX)" or "", d.blas.threads) },
    { "BLAS config", d.blas.config or "" },
    { "stdlib", d.paths.stdlib },
    { "cache", d.paths.torsh_home },
  }
  local out = {}
  for _, r in ipairs(rows) do out[#out + 1] = string.format("%-13s %s", r[1], r[2]) end
  return table.concat(out, "\n") .. "\n"
end

cli.output(info, opts.format, as_table)
