# shellcheck shell=bash
# Shared helpers for scripts/setup, scripts/demo and scripts/e2e.
# Source it; it defines functions and a few variables and runs nothing.
#
# Process model: every component is started with `run_bg NAME CMD...` in its
# own session (setsid), with output in "$RUN_DIR/NAME.log" and its pid in
# "$RUN_DIR/NAME.pid". `stop_all` stops them in reverse start order, first
# with SIGTERM to the whole process group, then SIGKILL after a grace period.

PORTCULLIS_ROOT="${PORTCULLIS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
PORTCULLIS_CACHE="${PORTCULLIS_CACHE:-$HOME/.cache/portcullis}"
KEYCLOAK_VERSION="${KEYCLOAK_VERSION:-26.5.6}"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

keycloak_home() { printf '%s\n' "${KEYCLOAK_DIST:-$PORTCULLIS_CACHE/keycloak-$KEYCLOAK_VERSION}"; }

# Prints the major version of the java binary given as $1 (0 if unusable).
java_major() {
  local v
  v="$("$1" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')" || true
  v="${v#1.}"
  printf '%s\n' "${v%%[.+-]*}" | grep -E '^[0-9]+$' || echo 0
}

# Prints a JAVA_HOME with Java >= 21 (Keycloak 26 needs it). Honours
# KEYCLOAK_JAVA_HOME, then JAVA_HOME/PATH, then /usr/lib/jvm/*, newest first.
keycloak_java() {
  local cand home
  if [[ -n "${KEYCLOAK_JAVA_HOME:-}" ]]; then printf '%s\n' "$KEYCLOAK_JAVA_HOME"; return 0; fi
  for home in "${JAVA_HOME:-}" "$(dirname "$(dirname "$(readlink -f "$(command -v java 2>/dev/null || echo /nonexistent)")")")"; do
    if [[ -n "$home" && -x "$home/bin/java" ]] && (($(java_major "$home/bin/java") >= 21)); then
      printf '%s\n' "$home"; return 0
    fi
  done
  for cand in $(ls -d /usr/lib/jvm/*/ 2>/dev/null | sort -rV); do
    cand="${cand%/}"
    if [[ -x "$cand/bin/java" ]] && (($(java_major "$cand/bin/java") >= 21)); then
      printf '%s\n' "$cand"; return 0
    fi
  done
  return 1
}

# Prints a TCP port that is free on 127.0.0.1 right now. Ports handed out by
# this shell are remembered so two calls never return the same one.
_PORTCULLIS_PORTS_TAKEN=" "
free_port() {
  local p i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    p="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    if [[ "$_PORTCULLIS_PORTS_TAKEN" != *" $p "* ]]; then
      _PORTCULLIS_PORTS_TAKEN+="$p "
      printf '%s\n' "$p"; return 0
    fi
  done
  die "free_port: could not find a free port"
}

# Creates (if needed) and exports RUN_DIR, the per-run state directory.
ensure_run_dir() {
  if [[ -z "${RUN_DIR:-}" ]]; then
    RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/portcullis-run.XXXXXX")"
  fi
  mkdir -p "$RUN_DIR"
  export RUN_DIR
}

# run_bg NAME CMD [ARGS...]: start CMD in its own session, logging to
# $RUN_DIR/NAME.log. Extra environment can be passed with `env K=V CMD`.
run_bg() {
  local name="$1"; shift
  ensure_run_dir
  setsid "$@" </dev/null >"$RUN_DIR/$name.log" 2>&1 &
  local pid=$!
  printf '%s\n' "$pid" >"$RUN_DIR/$name.pid"
  printf '%s\n' "$name" >>"$RUN_DIR/components"
}

# is_running NAME: true while the component's process is alive.
is_running() {
  local f="$RUN_DIR/$1.pid"
  [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# stop_component NAME [GRACE_SECONDS]
stop_component() {
  local name="$1" grace="${2:-10}" f pid i
  f="$RUN_DIR/$name.pid"
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop within ${grace}s, killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # Reap stragglers left in the group (e.g. chromium helpers).
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$f"
}

# Stops every component started with run_bg, newest first.
stop_all() {
  [[ -n "${RUN_DIR:-}" && -f "$RUN_DIR/components" ]] || return 0
  local name
  for name in $(tac "$RUN_DIR/components"); do
    stop_component "$name"
  done
  : >"$RUN_DIR/components"
}

# Prints every component log (for CI failure diagnosis).
dump_logs() {
  [[ -n "${RUN_DIR:-}" && -d "$RUN_DIR" ]] || return 0
  local f
  for f in "$RUN_DIR"/*.log; do
    [[ -f "$f" ]] || continue
    printf '\n===== %s (last 200 lines) =====\n' "$(basename "$f")" >&2
    tail -n 200 "$f" >&2
  done
}

# wait_http NAME URL TIMEOUT_SECONDS [EXPECTED_STATUS_REGEX]
# Polls URL until it answers with a matching status. Fails early when the
# component NAME has exited, and prints its log tail on failure.
wait_http() {
  local name="$1" url="$2" timeout="$3" want="${4:-^2}" start code
  start=$SECONDS
  while :; do
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" 2>/dev/null || true)"
    if [[ "$code" =~ $want ]]; then return 0; fi
    if [[ -n "$name" ]] && ! is_running "$name"; then
      log "$name exited while waiting for $url"
      tail -n 60 "$RUN_DIR/$name.log" >&2 || true
      return 1
    fi
    if ((SECONDS - start >= timeout)); then
      log "timed out after ${timeout}s waiting for $url (last status: ${code:-none})"
      [[ -n "$name" ]] && tail -n 60 "$RUN_DIR/$name.log" >&2
      return 1
    fi
    sleep 0.5
  done
}

# render_template SRC DEST VAR...: substitute ${VAR} for the listed variables
# only (other $ signs, such as nginx variables, are left alone).
render_template() {
  local src="$1" dest="$2"; shift 2
  local vars="" v
  for v in "$@"; do vars+="\${$v} "; done
  envsubst "$vars" <"$src" >"$dest"
}

# go_tool_binary DIR NAME: prints the path of the Go program in DIR (a module of
# its own, e.g. tools/otel-collector) built into $PORTCULLIS_CACHE/bin/NAME-HASH,
# building it first when that file is missing. HASH is of DIR's go.mod, go.sum
# and *.go files, so a change of dependencies or code is a new binary and a
# cached one is never rebuilt. Built to a scratch file and renamed into place:
# runs from other worktrees never see a half-written binary. The build log is
# printed if it fails. Needs Go (and the Go module proxy the first time).
go_tool_binary() {
  local dir="$1" name="$2" hash bin tmp
  hash="$(cd "$dir" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)"
  bin="$PORTCULLIS_CACHE/bin/$name-$hash"
  if [[ ! -x "$bin" ]]; then
    mkdir -p "$PORTCULLIS_CACHE/bin"
    tmp="$(mktemp -d "$PORTCULLIS_CACHE/bin/.$name.XXXXXX")"
    log "building $dir into $bin (one time; a cold build takes minutes)"
    if ! (cd "$dir" && GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS=-mod=readonly go build -o "$tmp/$name" .) >"$tmp/build.log" 2>&1; then
      cat "$tmp/build.log" >&2
      rm -rf "$tmp"
      return 1
    fi
    mv -f "$tmp/$name" "$bin"
    rm -rf "$tmp"
  fi
  printf '%s\n' "$bin"
}

# oauth2_proxy_binary: prints the path of the oauth2-proxy the benchmarks compare against
# ($OAUTH2_PROXY, or $PORTCULLIS_CACHE/bin/oauth2-proxy, `go install`ed there at
# $OAUTH2_PROXY_VERSION the first time; the build log is printed if that fails).
OAUTH2_PROXY_VERSION="${OAUTH2_PROXY_VERSION:-v7.15.3}"
oauth2_proxy_binary() {
  local bin="${OAUTH2_PROXY:-$PORTCULLIS_CACHE/bin/oauth2-proxy}" logf
  if [[ ! -x "$bin" ]]; then
    command -v go >/dev/null || die "oauth2-proxy is missing and go is not installed"
    log "installing oauth2-proxy $OAUTH2_PROXY_VERSION into $PORTCULLIS_CACHE/bin (one time)"
    mkdir -p "$PORTCULLIS_CACHE/bin"
    logf="$(mktemp)"
    GOBIN="$PORTCULLIS_CACHE/bin" go install "github.com/oauth2-proxy/oauth2-proxy/v7@$OAUTH2_PROXY_VERSION" \
      >"$logf" 2>&1 || { cat "$logf" >&2; rm -f "$logf"; die "go install failed"; }
    rm -f "$logf"
  fi
  printf '%s\n' "$bin"
}
