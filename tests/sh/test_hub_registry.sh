#!/usr/bin/env bash
# test_hub_registry.sh BUILD — the hub's commands against a registry served
# by nginx on 127.0.0.1: `index` builds it from tests/hub/registry plus model
# files, then search, info, download NAME@RANGE with dependencies, resolve
# (and its conflict message), recommend, ls, verify (and a corrupted blob),
# rm, prune, mirrors (and --probe), upload (WebDAV PUT), hf: URLs against
# HF_ENDPOINT, -o PATH, resume of a partial file from nginx (only the missing
# range sent), offline mode with no request at all, and usage errors.
set -u
build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/../hub/servers.sh"
torsh="$build/torsh"
tmp=$(mktemp -d)
trap 'stop_servers; rm -rf "$tmp"' EXIT
export TORSH_HOME=$tmp/home
unset TORSH_OFFLINE TORSH_TOKEN TORSH_MIRRORS TORSH_REGISTRY HF_TOKEN HF_ENDPOINT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

www=$tmp/www
mkdir -p "$www"
cp -r "$here/../hub/registry" "$www/models"
rm -f "$www/models/README.md"
head -c 100000 /dev/urandom > "$www/models/tiny-cnn/1.0.0/model.safetensors"
head -c 150000 /dev/urandom > "$www/models/tiny-cnn/1.2.0/model.safetensors"
head -c 600000 /dev/urandom > "$www/models/mid-net/1.0.0/model.onnx"
head -c 3000000 /dev/urandom > "$www/models/big-net/2.0.0/model.bin"
head -c 50000 /dev/urandom > "$www/models/detector/1.0.0/weights.safetensors"
head -c 10000 /dev/urandom > "$www/models/bad-combo/1.0.0/x.bin"
mkdir -p "$www/hf/acme/tiny/resolve/main/sub" "$www/hf/acme/tiny/resolve/v1" "$www/files"
echo '{"hidden_size": 8}' > "$www/hf/acme/tiny/resolve/main/config.json"
head -c 20000 /dev/urandom > "$www/hf/acme/tiny/resolve/main/sub/weights.bin"
echo '{"hidden_size": 4}' > "$www/hf/acme/tiny/resolve/v1/config.json"
head -c 2000000 /dev/urandom > "$www/files/blob.bin"
BLOB_SHA=$(sha256sum "$www/files/blob.bin" | cut -d' ' -f1)

hub() { "$torsh" hub "$@"; }
json() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $2" "$1"; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

t_index() {
  hub index "$www/models" > "$tmp/index.out" 2>"$tmp/index.err" || { cat "$tmp/index.err"; return 1; }
  grep -q "wrote $www/models/index.json" "$tmp/index.out" || return 1
  /usr/bin/python3 - "$www/models/index.json" "$www/models" <<'PY'
import hashlib, json, os, sys
d = json.load(open(sys.argv[1]))
names = sorted(m["name"] for m in d["models"])
assert names == ["bad-combo", "big-net", "detector", "labels", "mid-net", "tiny-cnn"], names
tiny = [m for m in d["models"] if m["name"] == "tiny-cnn"][0]
assert [v["version"] for v in tiny["versions"]] == ["1.2.0", "1.0.0"]
assert tiny["task"] == "image-classification" and tiny["license"] == "MIT"
v = tiny["versions"][0]
assert v["metrics"]["accuracy"] == 0.71 and v["dependencies"] == [{"name": "labels", "version": "^1.0"}]
f = v["files"][0]
assert f["name"] == "model.safetensors" and f["format"] == "safetensors" and f["size"] == 150000
data = open(os.path.join(sys.argv[2], f["url"]), "rb").read()
assert hashlib.sha256(data).hexdigest() == f["sha256"]
PY
}
check "index builds a registry from a folder (sizes, sha256, metadata)" t_index

start_nginx "$www" "$tmp/nginx" || { echo "cannot start nginx"; exit 1; }
BASE=http://127.0.0.1:$NGINX_PORT
REG=$BASE/models/index.json
export TORSH_REGISTRY=$REG
access() { cat "$tmp/nginx/access.log" 2>/dev/null; }

t_search() {
  hub search net --format json > "$tmp/s.json" || return 1
  json "$tmp/s.json" 'n=[r["name"] for r in d]; assert set(n) == {"big-net", "mid-net"}, n' || return 1
  hub search --task image-classification --max-size 1MB --format json > "$tmp/s2.json" || return 1
  json "$tmp/s2.json" 'n=[r["name"] for r in d]; assert n == ["mid-net", "tiny-cnn"], n' || return 1
  hub search vision --tag small --registry "$REG" | grep -q "tiny-cnn"
}
check "search by name, task, tag and size" t_search

t_info() {
  hub info tiny-cnn --format json > "$tmp/i.json" || return 1
  json "$tmp/i.json" 'v=d["versions"]; assert [x["version"] for x in v] == ["1.2.0","1.0.0"]; assert v[0]["dependencies"][0]["name"] == "labels"; assert v[0]["files"][0]["cached"] is False' || return 1
  hub info tiny-cnn | grep -q "1.2.0 (latest)" || return 1
  hub info tiny 2>"$tmp/i.err"; [ $? -eq 1 ] && grep -q "did you mean tiny-cnn" "$tmp/i.err"
}
check "info shows versions, files and dependencies; unknown names suggest" t_info

t_download_model() {
  local out; out=$(hub download --quiet tiny-cnn@^1.0 2>"$tmp/d.err") || { cat "$tmp/d.err"; return 1; }
  local dir; dir=$(echo "$out" | tail -1)
  [ "$dir" = "$TORSH_HOME/hub/models--tiny-cnn/snapshots/1.2.0" ] || { echo "got $dir"; return 1; }
  [ "$(sha_of "$dir/model.safetensors")" = "$(sha_of "$www/models/tiny-cnn/1.2.0/model.safetensors")" ] || return 1
  [ "$(cat "$TORSH_HOME/hub/models--labels/snapshots/1.1.0/labels.txt")" = "$(printf 'cat\ndog\nbird')" ] || return 1
  out=$(hub download --quiet "tiny-cnn@~1.0.0") || return 1
  [ "$(echo "$out" | tail -1)" = "$TORSH_HOME/hub/models--tiny-cnn/snapshots/1.0.0" ] || return 1
  hub info tiny-cnn --format json > "$tmp/i2.json" && json "$tmp/i2.json" 'assert all(v["cached"] for v in d["versions"])'
}
check "download NAME@RANGE picks the newest match and its dependencies" t_download_model

t_resolve() {
  hub resolve detector --format json > "$tmp/r.json" || return 1
  json "$tmp/r.json" 'got=[(r["name"], r["version"]) for r in d]; assert got == [("labels","1.0.0"),("tiny-cnn","1.2.0"),("detector","1.0.0")], got' || return 1
  hub resolve bad-combo 2>"$tmp/r.err"; [ $? -eq 1 ] || return 1
  grep -q "no version of labels satisfies every requirement" "$tmp/r.err" && grep -q "bad-combo@1.0.0 needs labels >=2" "$tmp/r.err" &&
    grep -q "tiny-cnn@1.2.0 needs labels \^1.0" "$tmp/r.err" && grep -q "available: 2.0.0, 1.1.0, 1.0.0" "$tmp/r.err" ||
    { cat "$tmp/r.err"; return 1; }
  hub download --quiet bad-combo 2>/dev/null; [ $? -eq 1 ] && [ ! -d "$TORSH_HOME/hub/models--bad-combo" ]
}
check "resolve finds one consistent set or explains the conflict" t_resolve

t_recommend() {
  hub recommend --task image-classification --max-size 1MB --max-latency 10ms --all --format json > "$tmp/rec.json" || return 1
  json "$tmp/rec.json" '
r=d["recommended"]; assert [x["name"] for x in r] == ["mid-net","tiny-cnn"], r
assert r[0]["rank"] == 1 and "best accuracy" in r[0]["why"], r[0]
rej={x["name"]: x["why"] for x in d["rejected"]}; assert "too big" in rej["big-net"] and "too slow" in rej["big-net"], rej' || return 1
  hub recommend --task image-classification --max-size 20MB --max-latency 10ms | grep -q "mid-net@1.0.0"
}
check "recommend ranks what fits and says why" t_recommend

t_ls_verify_corrupt() {
  hub ls --format json > "$tmp/ls.json" || return 1
  json "$tmp/ls.json" 'n={r["name"]: r for r in d}; assert n["tiny-cnn"]["revisions"] == ["1.0.0","1.2.0"]; assert n["labels"]["files"] >= 1' || return 1
  hub ls | grep -q "tiny-cnn" || return 1
  hub verify > "$tmp/v.out" || { cat "$tmp/v.out"; return 1; }
  local blob; blob=$(ls "$TORSH_HOME/hub/models--mid-net/blobs" 2>/dev/null | head -1)
  hub download --quiet mid-net > /dev/null || return 1
  blob=$(ls "$TORSH_HOME/hub/models--mid-net/blobs" | head -1)
  chmod u+w "$TORSH_HOME/hub/models--mid-net/blobs/$blob"; echo garbage >> "$TORSH_HOME/hub/models--mid-net/blobs/$blob"
  hub verify > "$tmp/v2.out"; [ $? -eq 1 ] && grep -q "CORRUPT" "$tmp/v2.out" && grep -q "1 corrupt" "$tmp/v2.out" || { cat "$tmp/v2.out"; return 1; }
  hub verify --delete > /dev/null; [ ! -e "$TORSH_HOME/hub/models--mid-net/blobs/$blob" ] || return 1
  local out; out=$(hub download --quiet mid-net) || return 1
  [ "$(sha_of "$(echo "$out" | tail -1)/model.onnx")" = "$blob" ] && hub verify > /dev/null
}
check "ls lists the cache; verify finds a corrupted blob; it is fetched again" t_ls_verify_corrupt

t_rm_prune() {
  hub rm tiny-cnn@1.0.0 > "$tmp/rm.out" || return 1
  [ ! -e "$TORSH_HOME/hub/models--tiny-cnn/snapshots/1.0.0" ] && [ -e "$TORSH_HOME/hub/models--tiny-cnn/snapshots/1.2.0/model.safetensors" ] || return 1
  [ "$(ls "$TORSH_HOME/hub/models--tiny-cnn/blobs" | wc -l)" -eq 1 ] || return 1
  head -c 1000 /dev/urandom > "$TORSH_HOME/hub/models--tiny-cnn/blobs/$(printf 'a%.0s' $(seq 64))"
  hub prune --dry-run | grep -q "would remove" || return 1
  hub prune --format json > "$tmp/prune.json" || return 1
  json "$tmp/prune.json" 'assert len(d["removed"]) == 1 and d["freed"] == 1000, d' || return 1
  hub rm labels > /dev/null && [ ! -e "$TORSH_HOME/hub/models--labels" ] || return 1
  hub rm nothing-here 2>/dev/null; [ $? -eq 1 ]
}
check "rm removes a revision or a model; prune removes unreferenced blobs" t_rm_prune

t_plain_resume_nginx() {
  local repo="$TORSH_HOME/hub/urls--127.0.0.1_$NGINX_PORT"
  mkdir -p "$repo/blobs"
  head -c 700000 "$www/files/blob.bin" > "$repo/blobs/$BLOB_SHA.incomplete"
  printf 'torsh-partial 1\nsha256 %s\n' "$BLOB_SHA" > "$repo/blobs/$BLOB_SHA.incomplete.meta"
  local out; out=$(hub download --quiet "$BASE/files/blob.bin" --sha256 "$BLOB_SHA") || return 1
  [ "$(sha_of "$(echo "$out" | tail -1)")" = "$BLOB_SHA" ] || return 1
  access | grep "GET /files/blob.bin" | tail -1 | grep -q "\"bytes=700000-\" 206 1300000" || { access | tail -3; return 1; }
}
check "a partial file is resumed from nginx: only the missing range is sent" t_plain_resume_nginx

t_output_path() {
  local out; out=$(hub download --quiet "$BASE/files/blob.bin" -o "$tmp/copy.bin" --sha256 "$BLOB_SHA") || return 1
  [ "$(echo "$out" | tail -1)" = "$tmp/copy.bin" ] && [ "$(sha_of "$tmp/copy.bin")" = "$BLOB_SHA" ] || return 1
  mkdir -p "$tmp/outdir"
  out=$(hub download --quiet "$BASE/files/blob.bin" --output "$tmp/outdir" --force) || return 1
  [ "$(echo "$out" | tail -1)" = "$tmp/outdir/blob.bin" ] && [ "$(sha_of "$tmp/outdir/blob.bin")" = "$BLOB_SHA" ]
}
check "-o PATH writes the verified file there" t_output_path

t_mirrors_probe() {
  local dead; dead=$(free_port)
  local out; out=$(hub download --quiet "$BASE/files/blob.bin" --mirror "http://127.0.0.1:$dead/x" --sha256 "$BLOB_SHA") || return 1
  hub mirrors --probe --mirror "$BASE" --mirror "http://127.0.0.1:$dead" --format json > "$tmp/m.json" || return 1
  json "$tmp/m.json" "
rows={r['base']: r for r in d}
good=rows['$BASE']; bad=rows['http://127.0.0.1:$dead']
assert good['state'] == 'healthy' and good['latency_ms'] > 0 and good['probe'].startswith(''), good
assert bad['state'] == 'down' and bad['probe'].startswith('failed'), bad" || return 1
  hub mirrors | grep -q "healthy"
}
check "mirrors shows state and probes" t_mirrors_probe

t_upload() {
  head -c 300000 /dev/urandom > "$tmp/up.bin"
  local sha; sha=$(sha_of "$tmp/up.bin")
  hub upload --quiet "$tmp/up.bin" --to "$BASE/upload/team/" --format json > "$tmp/up.json" || return 1
  json "$tmp/up.json" "assert d['sha256'] == '$sha' and d['http_status'] in (201, 204), d" || return 1
  [ "$(sha_of "$www/upload/team/up.bin")" = "$sha" ] || return 1
  local out; out=$(hub download --quiet "$BASE/upload/team/up.bin" --sha256 "$sha") || return 1
  [ "$(sha_of "$(echo "$out" | tail -1)")" = "$sha" ] || return 1
  hub upload "$tmp/nope.bin" --to "$BASE/upload/" 2>/dev/null; [ $? -eq 1 ]
}
check "upload PUTs a file nginx stores; it downloads back verified" t_upload

t_hf() {
  export HF_ENDPOINT=$BASE/hf
  local out; out=$(hub download --quiet hf:acme/tiny/config.json) || return 1
  [ "$(echo "$out" | tail -1)" = "$TORSH_HOME/hub/hf--acme--tiny/snapshots/main/config.json" ] &&
    grep -q '"hidden_size": 8' "$(echo "$out" | tail -1)" || return 1
  out=$(hub download --quiet hf:acme/tiny/sub/weights.bin) || return 1
  [ "$(sha_of "$(echo "$out" | tail -1)")" = "$(sha_of "$www/hf/acme/tiny/resolve/main/sub/weights.bin")" ] || return 1
  out=$(hub download --quiet hf:acme/tiny/config.json@v1) || return 1
  grep -q '"hidden_size": 4' "$(echo "$out" | tail -1)" || return 1
  access | grep -q "GET /hf/acme/tiny/resolve/v1/config.json" || return 1
  hub ls | grep -q "hf:acme/tiny" || return 1
  hub download hf:acme/config.json 2>/dev/null; [ $? -eq 1 ]
  unset HF_ENDPOINT
}
check "hf:OWNER/REPO/FILE[@REV] resolves against HF_ENDPOINT" t_hf

t_offline() {
  hub download --quiet tiny-cnn@^1.2 > /dev/null || return 1     # labels was removed above
  local before; before=$(access | wc -l)
  local out; out=$(TORSH_OFFLINE=1 hub download --quiet tiny-cnn@^1.2) || return 1
  [ -e "$(echo "$out" | tail -1)/model.safetensors" ] || return 1
  TORSH_OFFLINE=1 hub search tiny | grep -q tiny-cnn || return 1
  TORSH_OFFLINE=1 hub download --quiet big-net 2>"$tmp/off.err"; [ $? -eq 1 ] && grep -q "offline" "$tmp/off.err" || return 1
  TORSH_OFFLINE=1 hub search x --registry "$BASE/other/index.json" 2>"$tmp/off2.err"; [ $? -eq 1 ] && grep -q "offline" "$tmp/off2.err" || return 1
  TORSH_OFFLINE=1 hub mirrors --probe --mirror "$BASE" 2>/dev/null; [ $? -eq 1 ] || return 1
  [ "$(access | wc -l)" -eq "$before" ]
}
check "offline mode serves the cache and the cached index, makes no request" t_offline

t_lua_api() {
  "$torsh" -e "
    local hub = torsh.hub
    local p = assert(hub.download('$BASE/files/blob.bin', { sha256 = '$BLOB_SHA', progress = false }))
    assert(hub.core.sha256_file(p) == '$BLOB_SHA')
    local calls = 0
    local q = assert(hub.download('$BASE/models/big-net/2.0.0/model.bin', { progress = function(done, total) calls = calls + 1 end }))
    assert(calls >= 1, 'progress callback not called')
    local rows = assert(hub.search('net', { max_size = '1MB' }))
    assert(#rows == 1 and rows[1].name == 'mid-net')
    assert(hub.load('labels@1.0.0'):match('models%-%-labels/snapshots/1.0.0$'))
    local m = assert(hub.info('detector'))
    assert(m.versions[1].dependencies[2].name == 'tiny-cnn')
    local ok, err = hub.download('$BASE/files/none.bin', { progress = false, tries = 1 })
    assert(ok == nil and err:match('HTTP 404'), err)
    local ok2, err2 = pcall(hub.download, '$BASE/files/blob.bin', { force = true, progress = function() error('stop here') end })
    assert(not ok2 and tostring(err2):match('stop here'), err2)
    print('lua api ok')
  " | grep -q "lua api ok"
}
check "Lua API: download, progress, search, load, info, errors, cancel" t_lua_api

t_usage() {
  hub 2>/dev/null; [ $? -eq 2 ] || return 1
  hub nonsense 2>/dev/null; [ $? -eq 2 ] || return 1
  hub download --nope 2>/dev/null; [ $? -eq 2 ] || return 1
  hub download 2>/dev/null; [ $? -eq 2 ] || return 1
  hub --help | grep -q "recommend" && hub download --help | grep -q -- "--sha256" && hub upload --help | grep -q -- "--to"
}
check "usage errors exit 2; --help works" t_usage

finish hub_registry
