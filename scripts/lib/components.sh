# shellcheck shell=bash
# Start helpers for the non-Keycloak components. Source common.sh first.
# Each function takes its ports from the environment (choosing free ones when
# unset), exports what it chose, and starts the component with run_bg.
#
# Shared inputs:
#   APP_HOST           public host name of the protected app (app.localhost)
#   PROXY_PORT         public port of the reverse proxy (Caddy or nginx)
#   PORTCULLIS_PORT    port Portcullis listens on
#   APP_PORT           port of the echo app

_components_defaults() {
  APP_HOST="${APP_HOST:-app.localhost}"
  APP_PORT="${APP_PORT:-$(free_port)}"
  PORTCULLIS_PORT="${PORTCULLIS_PORT:-$(free_port)}"
  PROXY_PORT="${PROXY_PORT:-$(free_port)}"
  export APP_HOST APP_PORT PORTCULLIS_PORT PROXY_PORT
  export PUBLIC_URL="http://$APP_HOST:$PROXY_PORT"
  export PORTCULLIS_URL="http://127.0.0.1:$PORTCULLIS_PORT"
  export APP_URL="http://127.0.0.1:$APP_PORT"
}

echo_app_start() {
  _components_defaults
  run_bg echo-app python3 -u "$PORTCULLIS_ROOT/scripts/lib/echo_app.py" "$APP_PORT" 127.0.0.1
  wait_http echo-app "$APP_URL/" 20 '^200$' || die "echo app did not start"
}

# caddy_start: runs the shipped deploy/caddy/Caddyfile unchanged; only the
# environment placeholders in it are set (PORTCULLIS_AUTH_QUERY, optional:
# per-app constraints for the check, e.g. "allowed_groups=admins").
caddy_start() {
  _components_defaults
  local dir="$RUN_DIR/caddy"
  mkdir -p "$dir/data" "$dir/config"
  run_bg caddy env \
    HOME="$dir" XDG_DATA_HOME="$dir/data" XDG_CONFIG_HOME="$dir/config" \
    APP_HOST="$APP_HOST" PROXY_PORT="$PROXY_PORT" BIND_ADDR=127.0.0.1 \
    PORTCULLIS_ADDR="127.0.0.1:$PORTCULLIS_PORT" APP_UPSTREAM="127.0.0.1:$APP_PORT" \
    PORTCULLIS_AUTH_QUERY="${PORTCULLIS_AUTH_QUERY:-}" \
    caddy run --adapter caddyfile --config "${CADDYFILE:-$PORTCULLIS_ROOT/deploy/caddy/Caddyfile}"
  # Any HTTP answer means it is listening (the app itself needs a session).
  wait_http caddy "http://127.0.0.1:$PROXY_PORT/" 20 '^[1-5][0-9][0-9]$' || die "Caddy did not start"
}

# nginx_start: renders deploy/nginx/nginx.conf (placeholders only) into
# $RUN_DIR/nginx and runs it in the foreground.
nginx_start() {
  _components_defaults
  local prefix="$RUN_DIR/nginx"
  mkdir -p "$prefix/tmp"
  NGINX_PREFIX="$prefix" BIND_ADDR=127.0.0.1 PORTCULLIS_ADDR="127.0.0.1:$PORTCULLIS_PORT" \
    APP_UPSTREAM="127.0.0.1:$APP_PORT" \
    render_template "${NGINX_CONF_TEMPLATE:-$PORTCULLIS_ROOT/deploy/nginx/nginx.conf}" "$prefix/nginx.conf" \
    NGINX_PREFIX BIND_ADDR PROXY_PORT APP_HOST PORTCULLIS_ADDR APP_UPSTREAM
  nginx -t -q -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" ||
    die "nginx rejected $prefix/nginx.conf"
  run_bg nginx nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log"
  wait_http nginx "http://127.0.0.1:$PROXY_PORT/" 20 '^[1-5][0-9][0-9]$' || die "nginx did not start"
}

# portcullis_binary: prints the newest built binary (release or debug), or
# fails. PORTCULLIS_BIN overrides.
portcullis_binary() {
  if [[ -n "${PORTCULLIS_BIN:-}" ]]; then printf '%s\n' "$PORTCULLIS_BIN"; return 0; fi
  local target="${CARGO_TARGET_DIR:-$PORTCULLIS_ROOT/target}" best=""
  for b in "$target/release/portcullis" "$target/debug/portcullis"; do
    if [[ -x "$b" && (-z "$best" || "$b" -nt "$best") ]]; then best="$b"; fi
  done
  [[ -n "$best" ]] || return 1
  printf '%s\n' "$best"
}

# portcullis_write_config FILE: the config contract for a run against the
# local Keycloak. PORTCULLIS_TOP_TOML is added to the top-level keys (e.g.
# trusted_proxies), PORTCULLIS_SESSION_TOML to [session], and
# PORTCULLIS_EXTRA_TOML appended at the end ([bearer], [[rules]]), verbatim.
portcullis_write_config() {
  _components_defaults
  local file="$1" secret
  secret="$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
  cat >"$file" <<TOML
listen = "127.0.0.1:$PORTCULLIS_PORT"
public_url = "$PUBLIC_URL"
${PORTCULLIS_TOP_TOML:-}

[oidc]
issuer_url = "$KEYCLOAK_ISSUER"
client_id = "portcullis"
client_secret = "portcullis-demo-secret"

[session]
cookie_secret = "$secret"
cookie_secure = false
${PORTCULLIS_SESSION_TOML:-}

[redirect]
allowed_domains = [".localhost", "localhost"]

[authz]
allowed_groups = []
${PORTCULLIS_EXTRA_TOML:-}
TOML
}

# run_portcullis NAME BIN ARGS...: run_bg for Portcullis. Portcullis reads
# every PORTCULLIS_* environment variable as a configuration override and
# rejects unknown ones, so the harness's own PORTCULLIS_* variables are
# removed from its environment; the run's settings are all in the TOML file.
run_portcullis() {
  local name="$1"; shift
  local unset=() v
  for v in $(compgen -e); do
    if [[ "$v" == PORTCULLIS_* ]]; then unset+=(-u "$v"); fi
  done
  run_bg "$name" env "${unset[@]}" RUST_LOG="${RUST_LOG:-info}" "$@"
}

portcullis_start() {
  _components_defaults
  local bin
  bin="$(portcullis_binary)" || die "no portcullis binary; run cargo build"
  export PORTCULLIS_CONFIG="${PORTCULLIS_CONFIG:-$RUN_DIR/portcullis.toml}"
  [[ -f "$PORTCULLIS_CONFIG" ]] || portcullis_write_config "$PORTCULLIS_CONFIG"
  run_portcullis portcullis "$bin" --config "$PORTCULLIS_CONFIG"
  wait_http portcullis "$PORTCULLIS_URL/ready" "${PORTCULLIS_START_TIMEOUT:-30}" '^200$' ||
    die "Portcullis did not become ready (log: $RUN_DIR/portcullis.log)"
}

# otel_collector_start: the OpenTelemetry Collector of tools/otel-collector
# (built once into the cache, see go_tool_binary), with an OTLP/HTTP receiver on
# OTEL_COLLECTOR_PORT (a free one when unset) whose traces the file exporter
# writes as OTLP JSON, one line per received batch, flushed every 100 ms, to
# $RUN_DIR/otel-collector/traces.jsonl. Its own metrics are off (they would
# want a fixed port). Exports OTEL_COLLECTOR_URL (the base URL, what
# [telemetry] otlp_endpoint takes) and OTEL_COLLECTOR_FILE.
otel_collector_start() {
  local bin dir="$RUN_DIR/otel-collector"
  bin="$(go_tool_binary "$PORTCULLIS_ROOT/tools/otel-collector" otel-collector)" ||
    die "could not build tools/otel-collector"
  OTEL_COLLECTOR_PORT="${OTEL_COLLECTOR_PORT:-$(free_port)}"
  export OTEL_COLLECTOR_URL="http://127.0.0.1:$OTEL_COLLECTOR_PORT"
  export OTEL_COLLECTOR_FILE="$dir/traces.jsonl"
  mkdir -p "$dir"
  cat >"$dir/config.yaml" <<YAML
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$OTEL_COLLECTOR_PORT
exporters:
  file:
    path: $OTEL_COLLECTOR_FILE
    format: json
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
YAML
  "$bin" validate --config "$dir/config.yaml" >"$dir/validate.log" 2>&1 || {
    cat "$dir/validate.log" >&2
    die "tools/otel-collector rejected $dir/config.yaml"
  }
  run_bg otel-collector "$bin" --config "$dir/config.yaml"
  # The receiver serves only /v1/{traces,metrics,logs}: any answer means it listens.
  wait_http otel-collector "$OTEL_COLLECTOR_URL/" 20 '^[1-5][0-9][0-9]$' ||
    die "the OpenTelemetry Collector did not start"
}
