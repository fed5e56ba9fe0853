# servers.sh — sourced by tests/sh/test_hub*.sh and bench/bench_hub.sh:
# starts the hub tests' servers on 127.0.0.1 (each on a free port, each in its
# own folder) and stops them. Needs /usr/sbin/nginx and /usr/bin/python3.
#   free_port                     prints a port nothing listens on
#   start_nginx ROOT PREFIX       sets NGINX_PORT, NGINX_PID (access log: PREFIX/access.log)
#   start_fault ROOT DIR          sets FAULT_PORT, FAULT_PID, FAULT_LOG (JSON lines)
#   stop_servers                  stops what was started
HUB_TEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NGINX_PID=""; FAULT_PID=""

# loopback only: proxies from the environment must not see the tests' requests
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() {   # wait_port PORT: until something accepts connections (10 s)
  local i
  for i in $(seq 100); do
    if /usr/bin/python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),0.2).close()' "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

start_nginx() {
  local root=$1 prefix=$2 try user=""
  [ "$(id -u)" -eq 0 ] && user="user root;"
  mkdir -p "$prefix/tmp"
  for try in 1 2 3 4 5; do
    NGINX_PORT=$(free_port)
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@ROOT@|$root|g" -e "s|@PORT@|$NGINX_PORT|g" -e "s|@USER@|$user|g" \
      "$HUB_TEST_DIR/nginx.conf.in" > "$prefix/nginx.conf"
    /usr/sbin/nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" 2>>"$prefix/start.log" &
    NGINX_PID=$!
    if wait_port "$NGINX_PORT" && kill -0 "$NGINX_PID" 2>/dev/null; then return 0; fi
    kill "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null; NGINX_PID=""
  done
  echo "could not start nginx:" >&2; cat "$prefix/start.log" "$prefix/error.log" >&2 2>/dev/null
  return 1
}

start_fault() {
  local root=$1 dir=$2
  mkdir -p "$dir"
  rm -f "$dir/port"
  FAULT_LOG=$dir/requests.log
  : > "$FAULT_LOG"
  /usr/bin/python3 "$HUB_TEST_DIR/fault_server.py" "$root" "$dir/port" "$FAULT_LOG" 2>"$dir/server.err" &
  FAULT_PID=$!
  local i
  for i in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
  FAULT_PORT=$(cat "$dir/port" 2>/dev/null)
  [ -n "$FAULT_PORT" ] && wait_port "$FAULT_PORT"
}

stop_servers() {
  if [ -n "$NGINX_PID" ]; then kill "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null; NGINX_PID=""; fi
  if [ -n "$FAULT_PID" ]; then kill "$FAULT_PID" 2>/dev/null; wait "$FAULT_PID" 2>/dev/null; FAULT_PID=""; fi
}
