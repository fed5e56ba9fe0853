-- show versions, CPU features, the BLAS kernel, CUDA (found at run time), the build, threads and memory
local cli = require "torsh.cli"

local opts = cli.parse(arg, {
  name = "info",
  summary = "Shows what torsh runs on: versions, OS, CPU model and features, the BLAS\n" ..
            "library and the kernel family it uses, thread counts, memory, how torsh was built,\n" ..
            "the CUDA driver, runtime and GPUs (found at run time), and where caches and data sets live.",
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
  build = torsh.build_info(),
  cuda = torsh.cuda_probe(),
  paths = {
    datasets = "/usr/share/datasets",
    hub_cache = os.getenv("TORSH_HUB_CACHE") or ((os.getenv("TORSH_HOME") or ((os.getenv("HOME") or "") .. "/.cache/torsh")) .. "/hub"),
    stdlib = package.path:match("([^;]*)/%?%.lua") or "",
    torsh_home = os.getenv("TORSH_HOME") or ((os.getenv("HOME") or "") .. "/.cache/torsh"),
  },
}

local function cuda_text(c)
  if not c.driver_found then
    return (c.error ~= "" and c.error or "not found") .. (c.runtime_found and (", runtime " .. c.runtime_version) or "")
  end
  local parts = { ("driver %d.%d"):format(c.driver_version // 1000, c.driver_version % 1000 // 10) }
  if c.runtime_found then parts[#parts + 1] = ("runtime %d.%d"):format(c.runtime_version // 1000, c.runtime_version % 1000 // 10) end
  for i, dev in ipairs(c.devices) do
    parts[#parts + 1] = ("GPU %d: %s, %.1f GiB, compute %s"):format(i - 1, dev.name, dev.total_memory / 2 ^ 30, dev.capability)
  end
  if #c.devices == 0 then parts[#parts + 1] = "no devices" end
  return table.concat(parts, "; ")
end

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
    { "build", d.build },
    { "CUDA", cuda_text(d.cuda) },
    { "stdlib", d.paths.stdlib },
    { "datasets", d.paths.datasets },
    { "hub cache", d.paths.hub_cache },
    { "cache", d.paths.torsh_home },
  }
  local out = {}
  for _, r in ipairs(rows) do out[#out + 1] = string.format("%-13s %s", r[1], r[2]) end
  return table.concat(out, "\n") .. "\n"
end

cli.output(info, opts.format, as_table)
