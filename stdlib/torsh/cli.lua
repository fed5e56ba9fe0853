-- torsh/cli.lua — what every `torsh COMMAND` script needs: argument parsing
-- with generated --help, output as table / json / yaml, and usage errors
-- that exit with status 2.
--
--   local cli = require "torsh.cli"
--   local opts = cli.parse(arg, {
--     name = "info", summary = "show the environment",
--     options = { { "format", "table|json|yaml", default = "table", help = "output format" } },
--   })
--   cli.output(data, opts.format, render_table_fn)
local M = {}

--- M.usage_error(msg): prints "torsh: msg" and exits 2.
function M.usage_error(msg)
  io.stderr:write("torsh: ", msg, "\n")
  os.exit(2)
end

local function help_text(spec)
  local lines = { string.format("usage: torsh %s%s%s", spec.name,
    #(spec.options or {}) > 0 and " [options]" or "", spec.positional and (" " .. spec.positional) or "") }
  if spec.summary then lines[#lines + 1] = "\n" .. spec.summary end
  if spec.options and #spec.options > 0 then
    lines[#lines + 1] = "\noptions:"
    for _, o in ipairs(spec.options) do
      local flag = "--" .. o[1] .. (o.flag and "" or (" " .. (o[2] or "VALUE")))
      local dflt = o.default ~= nil and string.format(" (default: %s)", tostring(o.default)) or ""
      lines[#lines + 1] = string.format("  %-28s %s%s", flag, o.help or "", dflt)
    end
  end
  lines[#lines + 1] = string.format("  %-28s %s", "--help", "show this help")
  if spec.examples then
    lines[#lines + 1] = "\nexamples:"
    for _, e in ipairs(spec.examples) do lines[#lines + 1] = "  " .. e end
  end
  return table.concat(lines, "\n") .. "\n"
end

--- M.parse(args, spec) -> opts table (positional arguments in opts[1..n]).
--- spec.options: { {name, metavar, default=, flag=true, multi=true, choices={...}, help=} ... }
--- (multi: the option may repeat; its value is the list of the values given)
function M.parse(args, spec)
  local opts, byname = {}, {}
  for _, o in ipairs(spec.options or {}) do
    byname[o[1]] = o
    if o.default ~= nil then opts[o[1]] = o.default end
  end
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--help" or a == "-h" then
      io.write(help_text(spec))
      os.exit(0)
    elseif a:sub(1, 2) == "--" then
      local name, value = a:sub(3):match("^([^=]+)=(.*)$")
      name = name or a:sub(3)
      local o = byname[name]
      if not o then M.usage_error(string.format("%s: unknown option '--%s' (see torsh %s --help)", spec.name, name, spec.name)) end
      if o.flag then
        opts[name] = true
      else
        if not value then
          i = i + 1
          value = args[i]
          if value == nil then M.usage_error(string.format("%s: option --%s needs a value", spec.name, name)) end
        end
        if o.choices then
          local ok = false
          for _, c in ipairs(o.choices) do ok = ok or c == value end
          if not ok then
            M.usage_error(string.format("%s: --%s must be one of %s, got '%s'", spec.name, name, table.concat(o.choices, ", "), value))
          end
        end
        if o.multi then                 -- repeatable: a list of the values in order
          if type(opts[name]) ~= "table" then opts[name] = {} end
          table.insert(opts[name], value)
        else
          opts[name] = value
        end
      end
    else
      opts[#opts + 1] = a
    end
    i = i + 1
  end
  return opts
end

-- ---- JSON / YAML -------------------------------------------------------------

local function is_array(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local map = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
    return map[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

--- M.json(value [, indent]) -> JSON text (keys sorted; NaN/inf become null).
function M.json(v, indent, depth)
  depth = depth or 0
  local t = type(v)
  if t == "nil" then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    if math.type(v) == "integer" then return tostring(v) end
    return string.format("%.17g", v)
  end
  if t == "string" then return json_string(v) end
  if t ~= "table" then return json_string(tostring(v)) end
  local nl = indent and ("\n" .. string.rep(indent, depth + 1)) or ""
  local close = indent and ("\n" .. string.rep(indent, depth)) or ""
  local sep = indent and ": " or ":"
  local parts = {}
  if next(v) == nil then return is_array(v) and "[]" or "{}" end
  if is_array(v) then
    for _, x in ipairs(v) do parts[#parts + 1] = nl .. M.json(x, indent, depth + 1) end
    return "[" .. table.concat(parts, ",") .. close .. "]"
  end
  for _, k in ipairs(sorted_keys(v)) do
    parts[#parts + 1] = nl .. json_string(tostring(k)) .. sep .. M.json(v[k], indent, depth + 1)
  end
  return "{" .. table.concat(parts, ",") .. close .. "}"
end

local function yaml_scalar(v)
  if type(v) == "string" then
    if v == "" or v:find("[:#%[%]{},&*!|>'\"%%@`]") or v:match("^%s") or v:match("%s$") or tonumber(v) then
      return json_string(v)
    end
    return v
  end
  if type(v) == "number" and (v ~= v or v == math.huge or v == -math.huge) then return ".nan" end
  return tostring(v)
end

--- M.yaml(value) -> YAML text (block style, keys sorted).
function M.yaml(v, depth)
  depth = depth or 0
  local pad = string.rep("  ", depth)
  if type(v) ~= "table" then return pad .. yaml_scalar(v) .. "\n" end
  local out = {}
  if is_array(v) then
    if #v == 0 then return pad .. "[]\n" end
    for _, x in ipairs(v) do
      if type(x) == "table" and next(x) ~= nil then
        local inner = M.yaml(x, depth + 1)
        out[#out + 1] = pad .. "- " .. inner:sub(#pad + 3)
      else
        out[#out + 1] = pad .. "- " .. yaml_scalar(x) .. "\n"
      end
    end
  else
    for _, k in ipairs(sorted_keys(v)) do
      local x = v[k]
      if type(x) == "table" and next(x) ~= nil then
        out[#out + 1] = pad .. tostring(k) .. ":\n" .. M.yaml(x, depth + 1)
      else
        out[#out + 1] = pad .. tostring(k) .. ": " .. (type(x) == "table" and "{}" or yaml_scalar(x)) .. "\n"
      end
    end
  end
  return table.concat(out)
end

--- M.table(rows, columns) -> aligned text table; columns = { {key, title}, ... }.
local function pad(s, width) return s .. string.rep(" ", width - #s) end   -- (format's %-Ns stops at 99)

function M.table(rows, columns)
  local widths = {}
  for i, c in ipairs(columns) do widths[i] = #(c[2] or c[1]) end
  for _, r in ipairs(rows) do
    for i, c in ipairs(columns) do widths[i] = math.max(widths[i], #tostring(r[c[1]] or "")) end
  end
  local lines = {}
  local head = {}
  for i, c in ipairs(columns) do head[i] = pad(c[2] or c[1], widths[i]) end
  lines[1] = table.concat(head, "  ")
  for _, r in ipairs(rows) do
    local cells = {}
    for i, c in ipairs(columns) do cells[i] = pad(tostring(r[c[1]] or ""), widths[i]) end
    lines[#lines + 1] = table.concat(cells, "  ")
  end
  return table.concat(lines, "\n") .. "\n"
end

--- M.output(data, format, as_table): writes data as json, yaml, or (format
--- "table") the text that as_table(data) returns.
function M.output(data, format, as_table)
  if format == "json" then io.write(M.json(data, "  "), "\n")
  elseif format == "yaml" then io.write(M.yaml(data))
  else io.write(as_table(data)) end
end

return M
