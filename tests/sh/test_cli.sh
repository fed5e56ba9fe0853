#!/usr/bin/env bash
# test_cli.sh BUILD — the torsh interpreter as a user drives it: -e, scripts
# with args, piped REPL input, commands, exit statuses (0 ok, 1 script error
# with file:line traceback, 2 usage), and `require "torsh"` from stock lua5.4.
set -u
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
torsh="$build/torsh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

t_eval() { [ "$("$torsh" -e 'print(torsh.ones(2,3):sum():item())')" = "6" ]; }
check "-e prints the sum" t_eval

t_pipe() { [ "$(echo 'x = torsh.arange(1, 6) print(x)' | "$torsh")" = "tensor([1, 2, 3, 4, 5])" ]; }
check "REPL reads a pipe" t_pipe

t_script_args() {
  printf 'print(arg[0], arg[1], select("#", ...))\n' > "$tmp/s.lua"
  [ "$("$torsh" "$tmp/s.lua" a b)" = "$(printf '%s\ta\t2' "$tmp/s.lua")" ]
}
check "script gets arg and ..." t_script_args

t_error_exit() {
  printf 'local x = 1\nerror("boom")\n' > "$tmp/e.lua"
  "$torsh" "$tmp/e.lua" 2> "$tmp/err"; rc=$?
  [ $rc -eq 1 ] && grep -q "e.lua:2: boom" "$tmp/err" && grep -q "traceback" "$tmp/err"
}
check "script error exits 1 with file:line and traceback" t_error_exit

t_core_error() {
  "$torsh" -e 'local a = torsh.ones(2,3) + torsh.ones(4)' 2> "$tmp/err"; rc=$?
  [ $rc -eq 1 ] && grep -q "add: shapes \[2, 3\] and \[4\] cannot be broadcast" "$tmp/err"
}
check "core errors reach Lua with their message" t_core_error

t_usage() {
  "$torsh" --no-such-option 2>/dev/null; [ $? -eq 2 ] || return 1
  "$torsh" no-such-command 2>"$tmp/err"; [ $? -eq 2 ] && grep -q "unknown command" "$tmp/err"
}
check "usage errors exit 2" t_usage

t_version_help() { "$torsh" --version | grep -q '^torsh 0\.' && "$torsh" --help | grep -q 'info'; }
check "--version and --help" t_version_help

t_info() {
  "$torsh" info --format json > "$tmp/info.json" || return 1
  /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["blas"]["kernel"]; assert d["threads"] >= 1; c=d["cuda"]; assert isinstance(c["driver_found"], bool); assert isinstance(c["devices"], list); assert c["driver_found"] or c["error"]; assert d["build"].startswith("compiler "); assert "avx2" in d["cpu"]["features"] or "sse4_2" in d["cpu"]["features"]' "$tmp/info.json"
}
check "torsh info --format json" t_info

t_lua_require() {
  local pre=""
  sanitized "$build" && pre=$(san_preload)
  [ "$(cd "$tmp" && LD_PRELOAD="$pre" ASAN_OPTIONS=detect_leaks=0 lua5.4 -e "package.cpath='$build/?.so;'..package.cpath; local t=require'torsh'; print(t.ones(3):sum():item())")" = "3" ]
}
check "require 'torsh' from stock lua5.4" t_lua_require

finish cli
