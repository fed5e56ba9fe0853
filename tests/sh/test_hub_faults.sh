#!/usr/bin/env bash
# test_hub_faults.sh BUILD — `torsh hub download` against the project's
# fault-injecting server (tests/hub/fault_server.py) on 127.0.0.1: a
# connection cut mid-file (only the missing range is sent again), a kill -9
# mid-download (resumed by the next process, its lock taken over), 500s then
# success, Retry-After, a stalled server and the timeout, a slow server, a
# mirror that is down, a wrong checksum, a server without ranges, a file
# changed between attempts, two processes at once (one transfer), a lock held
# for a dead process, offline mode and the auth token. Every case ends with
# the verified file or a clear error, and `hub verify` finds nothing corrupt.
# HUB_KEEP=1 keeps the temporary folder (server log, cache) for a look.
set -u
build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/../hub/servers.sh"
torsh="$build/torsh"
tmp=$(mktemp -d); [ -n "${HUB_KEEP:-}" ] && echo "tmp=$tmp"
trap 'stop_servers; kill $(jobs -p) 2>/dev/null; [ -n "${HUB_KEEP:-}" ] || rm -rf "$tmp"' EXIT
export TORSH_HOME=$tmp/home
unset TORSH_OFFLINE TORSH_TOKEN TORSH_MIRRORS TORSH_REGISTRY HF_TOKEN
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

www=$tmp/www
mkdir -p "$www"
head -c 8000000 /dev/urandom > "$www/data.bin"
SHA=$(sha256sum "$www/data.bin" | cut -d' ' -f1)
SIZE=8000000
start_fault "$www" "$tmp/fault" || { echo "cannot start the fault server"; cat "$tmp/fault/server.err"; exit 1; }
URL=http://127.0.0.1:$FAULT_PORT
HOST_DIR=$TORSH_HOME/hub/urls--127.0.0.1_$FAULT_PORT

dl() { "$torsh" hub download --quiet "$@"; }
# requests PATH_FRAGMENT -> the log lines of GETs whose path contains it
requests() { grep -F "\"path\": \"/f/$1" "$FAULT_LOG" | grep '"method": "GET"'; }
count() { requests "$1" | wc -l; }
field() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2]))' "$1" "$2"; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
no_partial_left() { ! ls "$HOST_DIR"/blobs/ 2>/dev/null | grep -q -E '\.incomplete$'; }

t_plain() {
  local out
  out=$(dl "$URL/f/-/data.bin" --sha256 "$SHA") || return 1
  local path=$(echo "$out" | tail -1)
  [ "$(sha_of "$path")" = "$SHA" ] && [ -L "$path" ] && [ -f "$HOST_DIR/blobs/$SHA" ]
}
check "plain download is verified and linked into a snapshot" t_plain

t_cached_no_request() {
  local before=$(count "-/data.bin")
  dl "$URL/f/-/data.bin" --sha256 "$SHA" > /dev/null || return 1
  [ "$(count "-/data.bin")" -eq "$before" ]
}
check "a cached file is served without a request" t_cached_no_request

t_drop_resume() {
  local out path
  out=$(dl "$URL/f/drop=3000000/data.bin" --sha256 "$SHA" --force) || return 1
  path=$(echo "$out" | tail -1)
  [ "$(sha_of "$path")" = "$SHA" ] || return 1
  local lines; lines=$(requests "drop=3000000/data.bin")
  [ "$(echo "$lines" | wc -l)" -eq 2 ] || { echo "$lines"; return 1; }
  local first=$(echo "$lines" | sed -n 1p) second=$(echo "$lines" | sed -n 2p)
  [ "$(field "$first" sent)" = 3000000 ] && [ "$(field "$first" range)" = None ] &&
  [ "$(field "$second" range)" = "bytes=3000000-" ] && [ "$(field "$second" status)" = 206 ] &&
  [ "$(field "$second" sent)" = $((SIZE - 3000000)) ] && [ "$(field "$second" if_range)" != None ] || { echo "$lines"; return 1; }
}
check "connection cut mid-file: only the missing range is sent again" t_drop_resume

t_kill_resume() {
  rm -rf "$TORSH_HOME"
  "$torsh" hub download --quiet "$URL/f/slow=2000000:1/data.bin" --sha256 "$SHA" > /dev/null 2>&1 &
  local pid=$! part="$HOST_DIR/blobs/$SHA.incomplete" i size=0
  for i in $(seq 100); do
    size=$(stat -c %s "$part" 2>/dev/null || echo 0)
    [ "$size" -ge 1500000 ] && break
    sleep 0.1
  done
  kill -9 $pid; wait $pid 2>/dev/null
  [ "$size" -ge 1500000 ] || { echo "no partial data ($size)"; return 1; }
  [ ! -e "$HOST_DIR/blobs/$SHA" ] || { echo "final blob exists after kill"; return 1; }
  [ -e "$HOST_DIR/blobs/$SHA.lock" ] || { echo "no lock left by the killed process"; return 1; }
  size=$(stat -c %s "$part")
  local out path
  out=$("$torsh" hub download "$URL/f/slow=2000000:1/data.bin" --sha256 "$SHA" 2>"$tmp/kill.err") || { cat "$tmp/kill.err"; return 1; }
  path=$(echo "$out" | tail -1)
  [ "$(sha_of "$path")" = "$SHA" ] || return 1
  local last; last=$(requests "slow=2000000:1/data.bin" | grep '"range": "bytes' | tail -1)
  [ "$(field "$last" range)" = "bytes=$size-" ] && [ "$(field "$last" sent)" = $((SIZE - size)) ] || { echo "$last (partial $size)"; return 1; }
  grep -q "took over the lock" "$tmp/kill.err" || { echo "no take-over note"; cat "$tmp/kill.err"; return 1; }
  [ ! -e "$HOST_DIR/blobs/$SHA.lock" ] && no_partial_left
}
check "kill -9 mid-download: the next process resumes (range from the partial size) and takes the lock" t_kill_resume

t_500_then_ok() {
  local out; out=$(dl "$URL/f/status=500:2/data.bin" --sha256 "$SHA" --force) || return 1
  [ "$(sha_of "$(echo "$out" | tail -1)")" = "$SHA" ] || return 1
  local statuses; statuses=$(requests "status=500:2/data.bin" | while read -r l; do field "$l" status; done | tr '\n' ' ')
  [ "$statuses" = "500 500 200 " ] || { echo "statuses: $statuses"; return 1; }
}
check "500, 500, then success after backoff" t_500_then_ok

t_retry_after() {
  local out; out=$(dl "$URL/f/status=503:1,retry_after=2/data.bin" --sha256 "$SHA" --force) || return 1
  local lines; lines=$(requests "status=503:1,retry_after=2/data.bin")
  local t1 t2
  t1=$(field "$(echo "$lines" | sed -n 1p)" t); t2=$(field "$(echo "$lines" | sed -n 2p)" t)
  /usr/bin/python3 -c 'import sys; d=float(sys.argv[2])-float(sys.argv[1]); sys.exit(0 if 1.8 <= d <= 10 else 1)' "$t1" "$t2" ||
    { echo "waited $t1 -> $t2"; return 1; }
}
check "Retry-After is honoured" t_retry_after

t_stall_timeout() {
  local start=$SECONDS
  dl "$URL/f/stall=0/data.bin" --sha256 "$SHA" --force --tries 2 --stall-timeout 1 -o "$tmp/stall.bin" 2>"$tmp/stall.err"
  local rc=$? took=$((SECONDS - start))
  [ $rc -eq 1 ] && grep -q "timed out" "$tmp/stall.err" && [ $took -lt 20 ] && [ ! -e "$tmp/stall.bin" ] ||
    { echo "rc=$rc took=${took}s"; cat "$tmp/stall.err"; return 1; }
}
check "a stalled server times out with a clear error and no file" t_stall_timeout

t_slow_ok() {
  local out; out=$(dl "$URL/f/slow=6000000/data.bin" --sha256 "$SHA" --force --stall-timeout 1) || return 1
  [ "$(sha_of "$(echo "$out" | tail -1)")" = "$SHA" ]
}
check "a slow but steady server is not timed out" t_slow_ok

t_mirror_down() {
  local dead; dead=$(free_port)
  local out; out=$(dl "http://127.0.0.1:$dead/f/-/data.bin" --mirror "$URL" --sha256 "$SHA" --force 2>"$tmp/mirror.err") ||
    { cat "$tmp/mirror.err"; return 1; }
  [ "$(sha_of "$(echo "$out" | tail -1)")" = "$SHA" ] || return 1
  "$torsh" hub mirrors --format json > "$tmp/mirrors.json" || return 1
  /usr/bin/python3 - "$tmp/mirrors.json" "$dead" "$FAULT_PORT" <<'PY' || return 1
import json, sys
rows = {r["base"]: r for r in json.load(open(sys.argv[1]))}
dead = rows["http://127.0.0.1:%s" % sys.argv[2]]
good = rows["http://127.0.0.1:%s" % sys.argv[3]]
assert dead["state"] == "down" and dead["fail"] >= 1, dead
assert good["state"] == "healthy" and good["ok"] >= 1, good
PY
  # both down: one clear error naming both
  dl "http://127.0.0.1:$dead/f/-/data.bin" --mirror "http://127.0.0.1:$(free_port)" --force -o "$tmp/none.bin" 2>"$tmp/both.err"
  [ $? -eq 1 ] && grep -q "all 2 sources failed" "$tmp/both.err" && [ ! -e "$tmp/none.bin" ] || { cat "$tmp/both.err"; return 1; }
}
check "a mirror takes over from a server that is down; health is remembered" t_mirror_down

t_bad_checksum() {
  local bad=0000000000000000000000000000000000000000000000000000000000000001
  dl "$URL/f/-/data.bin" --sha256 "$bad" 2>"$tmp/sum.err"
  [ $? -eq 1 ] && grep -q "expected $bad, got $SHA" "$tmp/sum.err" || { cat "$tmp/sum.err"; return 1; }
  [ ! -e "$HOST_DIR/blobs/$bad" ] && no_partial_left
}
check "a wrong checksum: the data is deleted, the error says expected vs got" t_bad_checksum

t_corrupt_server() {
  dl "$URL/f/corrupt/data.bin" --sha256 "$SHA" --force -o "$tmp/corrupt.bin" 2>"$tmp/corrupt.err"
  [ $? -eq 1 ] && grep -q "sha256 mismatch: expected $SHA" "$tmp/corrupt.err" && [ ! -e "$tmp/corrupt.bin" ] &&
    [ ! -e "$tmp/corrupt.bin.incomplete" ] || { cat "$tmp/corrupt.err"; ls "$tmp"; return 1; }
}
check "a server sending corrupt bytes never leaves a file" t_corrupt_server

t_norange() {
  local out; out=$(dl "$URL/f/norange,drop=3000000/data.bin" --sha256 "$SHA" --force) || return 1
  [ "$(sha_of "$(echo "$out" | tail -1)")" = "$SHA" ] || return 1
  local second; second=$(requests "norange,drop=3000000/data.bin" | sed -n 2p)
  [ "$(field "$second" range)" = "bytes=3000000-" ] && [ "$(field "$second" status)" = 200 ] &&
    [ "$(field "$second" sent)" = $SIZE ] || { requests "norange,drop"; return 1; }
}
check "a server without Range support: the download restarts cleanly" t_norange

t_changed_file() {
  head -c 6000000 /dev/urandom > "$www/v.bin"
  "$torsh" hub download --quiet "$URL/f/slow=1500000:1/v.bin" -o "$tmp/v.bin" > /dev/null 2>&1 &
  local pid=$! i
  for i in $(seq 100); do [ "$(stat -c %s "$tmp/v.bin.incomplete" 2>/dev/null || echo 0)" -ge 1000000 ] && break; sleep 0.1; done
  kill -9 $pid; wait $pid 2>/dev/null
  [ -s "$tmp/v.bin.incomplete" ] || return 1
  sleep 0.05
  head -c 3500000 /dev/urandom > "$www/v.bin.new" && mv "$www/v.bin.new" "$www/v.bin"
  local out; out=$(dl "$URL/f/slow=1500000:1/v.bin" -o "$tmp/v.bin") || return 1
  [ "$(sha_of "$tmp/v.bin")" = "$(sha_of "$www/v.bin")" ] || return 1
  local last; last=$(requests "slow=1500000:1/v.bin" | grep '"if_range": "' | tail -1)
  [ "$(field "$last" if_range)" != None ] && [ "$(field "$last" status)" = 200 ] && [ "$(field "$last" sent)" = 3500000 ] ||
    { echo "$last"; return 1; }
}
check "a file changed on the server since the partial download: If-Range restarts it" t_changed_file

t_two_processes() {
  local u="$URL/f/slow=8000000,two/data.bin"
  rm -rf "$TORSH_HOME/hub"
  dl "$u" --sha256 "$SHA" > "$tmp/p1" 2>"$tmp/p1.err" & local a=$!
  dl "$u" --sha256 "$SHA" > "$tmp/p2" 2>"$tmp/p2.err" & local b=$!
  wait $a || return 1
  wait $b || return 1
  [ "$(tail -1 "$tmp/p1")" = "$(tail -1 "$tmp/p2")" ] && [ "$(sha_of "$(tail -1 "$tmp/p1")")" = "$SHA" ] || return 1
  [ "$(count "slow=8000000,two/data.bin")" -eq 1 ] || { requests "slow=8000000,two"; return 1; }
  # the same without a known checksum (locked by URL)
  local v="$URL/f/slow=8000000,three/data.bin"
  dl "$v" > "$tmp/p3" 2>/dev/null & a=$!
  dl "$v" > "$tmp/p4" 2>/dev/null & b=$!
  wait $a && wait $b || return 1
  [ "$(sha_of "$(tail -1 "$tmp/p3")")" = "$SHA" ] && [ "$(sha_of "$(tail -1 "$tmp/p4")")" = "$SHA" ] &&
    [ "$(count "slow=8000000,three/data.bin")" -eq 1 ] || { requests "slow=8000000,three"; return 1; }
}
check "two processes downloading the same file: one transfer, both get it" t_two_processes

t_stale_lock() {
  rm -rf "$TORSH_HOME/hub"
  mkdir -p "$HOST_DIR/blobs"
  sh -c 'exit 0' & local dead=$!; wait $dead
  # a descriptor kept by a leftover process holds the lock, the file names a dead pid
  /usr/bin/python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "a+"); fcntl.flock(f, fcntl.LOCK_EX)
f.seek(0); f.truncate(); f.write(sys.argv[2] + "\n"); f.flush()
open(sys.argv[3], "w").close(); time.sleep(60)' "$HOST_DIR/blobs/$SHA.lock" "$dead $(/usr/bin/python3 -c 'import socket; print(socket.gethostname())')" "$tmp/held" &
  local holder=$! i
  for i in $(seq 50); do [ -e "$tmp/held" ] && break; sleep 0.1; done
  local start=$SECONDS out
  out=$(timeout 30 "$torsh" hub download "$URL/f/-/data.bin" --sha256 "$SHA" 2>"$tmp/stale.err") || { kill $holder; cat "$tmp/stale.err"; return 1; }
  kill $holder; wait $holder 2>/dev/null
  [ "$(sha_of "$(echo "$out" | tail -1)")" = "$SHA" ] && [ $((SECONDS - start)) -lt 10 ] &&
    grep -q "took over the lock left by pid $dead" "$tmp/stale.err" || { cat "$tmp/stale.err"; return 1; }
}
check "a lock held for a dead process is taken over" t_stale_lock

t_offline() {
  local before; before=$(wc -l < "$FAULT_LOG")
  local out; out=$(TORSH_OFFLINE=1 dl "$URL/f/-/data.bin" --sha256 "$SHA") || return 1
  [ "$(sha_of "$(echo "$out" | tail -1)")" = "$SHA" ] || return 1
  TORSH_OFFLINE=1 dl "$URL/f/-/never.bin" 2>"$tmp/off.err"
  [ $? -eq 1 ] && grep -q "offline" "$tmp/off.err" || { cat "$tmp/off.err"; return 1; }
  TORSH_OFFLINE=1 dl "$URL/f/-/never.bin" -o "$tmp/never.bin" 2>/dev/null && return 1
  [ "$(wc -l < "$FAULT_LOG")" -eq "$before" ] && [ ! -e "$tmp/never.bin" ]
}
check "offline mode: cached files served, missing ones a clear error, no request at all" t_offline

t_token() {
  local secret=s3cr3t-t0ken-value
  TORSH_TOKEN=$secret TORSH_TOKEN_HOSTS=127.0.0.1:$FAULT_PORT dl "$URL/f/token/data.bin" -o "$tmp/tok.bin" > "$tmp/tok.out" 2>&1 || return 1
  [ "$(field "$(requests "token/data.bin" | tail -1)" auth)" = True ] || return 1
  TORSH_TOKEN=$secret dl "$URL/f/token2/data.bin" -o "$tmp/tok2.bin" > /dev/null 2>&1 || return 1
  [ "$(field "$(requests "token2/data.bin" | tail -1)" auth)" = False ] || { echo "token sent to a host not allowed"; return 1; }
  TORSH_TOKEN=$secret TORSH_TOKEN_HOSTS=127.0.0.1:$FAULT_PORT dl "$URL/f/-/missing.bin?token=$secret" -o "$tmp/m.bin" > "$tmp/tok3.out" 2>&1
  [ $? -eq 1 ] && grep -q "HTTP 404" "$tmp/tok3.out" || { cat "$tmp/tok3.out"; return 1; }
  ! grep -q "$secret" "$tmp/tok.out" "$tmp/tok3.out" "$TORSH_HOME/mirrors.json"
}
check "the auth token goes only to allowed hosts and never into messages" t_token

t_upload_checksum() {
  local res; res=$("$torsh" hub upload --quiet "$www/data.bin" --to "$URL/put/" --format json) || return 1
  [ "$(sha_of "$www/uploads/data.bin")" = "$SHA" ] &&
    grep '"method": "PUT"' "$FAULT_LOG" | tail -1 | grep -q '"checksum_ok": true'
}
check "upload sends the SHA-256 the server checks" t_upload_checksum

t_verify_clean() {
  "$torsh" hub verify > "$tmp/verify.out" || { cat "$tmp/verify.out"; return 1; }
  grep -q ", 0 corrupt" "$tmp/verify.out"
}
check "nothing corrupt in the cache after all of it" t_verify_clean

finish hub_faults
