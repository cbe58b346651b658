# shellcheck shell=bash
# Keycloak helpers. Source scripts/lib/common.sh first.
#
#   keycloak_start              start Keycloak in dev mode on a free port
#   keycloak_wait               wait until the platform realm is served
#   keycloak_restart [SIGNAL]   kill it (default SIGKILL) and start it again, same database
#   keycloak_stop               stop it
#
# Inputs (environment, all optional):
#   KEYCLOAK_PORT               port to bind on 127.0.0.1 (default: a free one)
#   KEYCLOAK_REALM_FILE         realm to import (default config/keycloak/platform-realm.json)
#   KEYCLOAK_BACKCHANNEL_URL    back-channel logout URL written into the
#                               portcullis client (default: keep the file's)
#   KEYCLOAK_REDIRECT_URIS      extra redirect URIs for the portcullis client
#                               (space separated), added to the file's list
#   KEYCLOAK_START_TIMEOUT      seconds to wait for readiness (default 180)
# Outputs (exported): KEYCLOAK_PORT, KEYCLOAK_URL, KEYCLOAK_ISSUER.
#
# Isolation: Keycloak keeps its state under its home directory (data/), and
# re-augments into lib/quarkus on start. Each run therefore gets its own
# small home under $RUN_DIR/keycloak-home: kc.sh and conf/ are copied, the
# large jar directories are symlinked to the cached distribution, and
# quarkus-run.jar and lib/quarkus are private copies. The database is an H2 file in that home
# (dev-file): it survives keycloak_restart, as a production database would, and since the home
# is the run's own, nothing survives the run and parallel runs never share state.

KEYCLOAK_ADMIN_USER="${KEYCLOAK_ADMIN_USER:-admin}"
KEYCLOAK_ADMIN_PASSWORD="${KEYCLOAK_ADMIN_PASSWORD:-admin-password}"

# keycloak_render_realm SRC DEST: writes the realm with the back-channel
# logout URL and extra redirect URIs applied.
keycloak_render_realm() {
  python3 - "$1" "$2" <<'PY'
import json, os, sys
src, dest = sys.argv[1], sys.argv[2]
with open(src) as f:
    realm = json.load(f)
backchannel = os.environ.get("KEYCLOAK_BACKCHANNEL_URL", "")
extra = os.environ.get("KEYCLOAK_REDIRECT_URIS", "").split()
for client in realm.get("clients", []):
    if client.get("clientId") != "portcullis":
        continue
    if backchannel:
        client.setdefault("attributes", {})["backchannel.logout.url"] = backchannel
    uris = client.setdefault("redirectUris", [])
    for uri in extra:
        if uri not in uris:
            uris.append(uri)
with open(dest, "w") as f:
    json.dump(realm, f, indent=2)
PY
}

keycloak_start() {
  ensure_run_dir
  local dist home java_home realm
  dist="$(keycloak_home)"
  [[ -x "$dist/bin/kc.sh" ]] || die "Keycloak not found in $dist; run scripts/setup"
  java_home="$(keycloak_java)" || die "no Java >= 21 for Keycloak; set KEYCLOAK_JAVA_HOME"
  realm="${KEYCLOAK_REALM_FILE:-$PORTCULLIS_ROOT/config/keycloak/platform-realm.json}"
  KEYCLOAK_PORT="${KEYCLOAK_PORT:-$(free_port)}"

  home="$RUN_DIR/keycloak-home"
  rm -rf "$home"
  mkdir -p "$home/bin" "$home/lib" "$home/data/import" "$home/providers" "$home/themes"
  cp "$dist/bin/kc.sh" "$home/bin/"
  cp -r "$dist/conf" "$home/conf"
  # quarkus-run.jar must be a real file: Quarkus writes its re-augmented
  # build next to the jar's resolved path, which must not be the cache.
  cp -p "$dist/lib/quarkus-run.jar" "$home/lib/"
  # A start-dev build (Quarkus augmentation, ~10 s) saved by an earlier run
  # is reused; Keycloak re-augments by itself if it does not match.
  if [[ -d "$(_keycloak_build_cache)" ]]; then
    cp -rp "$(_keycloak_build_cache)" "$home/lib/quarkus"
  else
    cp -rp "$dist/lib/quarkus" "$home/lib/quarkus"
  fi
  ln -s "$dist/lib/app" "$home/lib/app"
  ln -s "$dist/lib/lib" "$home/lib/lib"
  keycloak_render_realm "$realm" "$home/data/import/platform-realm.json"

  export KEYCLOAK_PORT
  export KEYCLOAK_URL="http://127.0.0.1:$KEYCLOAK_PORT"
  export KEYCLOAK_ISSUER="$KEYCLOAK_URL/realms/platform"
  KEYCLOAK_MANAGEMENT_PORT="$(free_port)"
  # What keycloak_restart needs to start the same Keycloak again.
  {
    printf 'KEYCLOAK_JAVA_HOME_USED=%q\n' "$java_home"
    printf 'KEYCLOAK_PORT=%q\nKEYCLOAK_MANAGEMENT_PORT=%q\n' "$KEYCLOAK_PORT" "$KEYCLOAK_MANAGEMENT_PORT"
  } >"$RUN_DIR/keycloak.env"
  printf '%s\n' "$SECONDS" >"$RUN_DIR/keycloak.started"
  _keycloak_run "$java_home"
}

# _keycloak_run JAVA_HOME: runs the Keycloak of $RUN_DIR/keycloak-home (log appended to on a
# restart, so both runs stay readable).
_keycloak_run() {
  local java_home="$1" home="$RUN_DIR/keycloak-home"
  run_bg keycloak env \
    JAVA_HOME="$java_home" \
    JAVA_OPTS_KC_HEAP="${KEYCLOAK_HEAP:--Xms128m -Xmx768m}" \
    JAVA_OPTS_APPEND="--add-opens=java.base/java.lang=ALL-UNNAMED" \
    KC_BOOTSTRAP_ADMIN_USERNAME="$KEYCLOAK_ADMIN_USER" \
    KC_BOOTSTRAP_ADMIN_PASSWORD="$KEYCLOAK_ADMIN_PASSWORD" \
    "$home/bin/kc.sh" start-dev \
    --http-host=127.0.0.1 \
    --http-port="$KEYCLOAK_PORT" \
    --http-management-port="$KEYCLOAK_MANAGEMENT_PORT" \
    --hostname="http://127.0.0.1:$KEYCLOAK_PORT" \
    --db=dev-file \
    --cache=local \
    --import-realm \
    --log-console-color=false
}

# keycloak_restart [SIGNAL]: stops the running Keycloak with SIGNAL (default KILL: a crash)
# and starts it again on the same port, home and database (realm, keys, users and sessions
# survive, as with a production database). Returns once it is started, not ready; wait
# with keycloak_wait. Needs RUN_DIR of the run that started it.
keycloak_restart() {
  local sig="${1:-KILL}" pid i
  # shellcheck source=/dev/null
  source "$RUN_DIR/keycloak.env"
  pid="$(cat "$RUN_DIR/keycloak.pid")"
  kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null || true
  # Gone, or a zombie its parent (scripts/e2e) has not reaped yet.
  _kc_alive() { [[ -e "/proc/$1" ]] && ! grep -qE '^[0-9]+ \(.*\) Z' "/proc/$1/stat" 2>/dev/null; }
  for ((i = 0; i < 300; i++)); do
    _kc_alive "$pid" || break
    sleep 0.1
  done
  if _kc_alive "$pid"; then die "Keycloak (pid $pid) did not stop on SIG$sig"; fi
  mv "$RUN_DIR/keycloak.log" "$RUN_DIR/keycloak-before-restart.log"
  printf '%s\n' "$SECONDS" >"$RUN_DIR/keycloak.started"
  _keycloak_run "$KEYCLOAK_JAVA_HOME_USED"
}

# Where the augmented start-dev build is cached (per version and build options).
_keycloak_build_cache() { printf '%s\n' "$PORTCULLIS_CACHE/keycloak-$KEYCLOAK_VERSION-build-dev-file"; }

_keycloak_save_build() {
  local cache tmp
  cache="$(_keycloak_build_cache)"
  [[ -d "$cache" ]] && return 0
  grep -q "Quarkus augmentation completed" "$RUN_DIR/keycloak.log" 2>/dev/null || return 0
  tmp="$(mktemp -d "$PORTCULLIS_CACHE/.kc-build.XXXXXX")"
  cp -rp "$RUN_DIR/keycloak-home/lib/quarkus/." "$tmp/" && mv -T "$tmp" "$cache" 2>/dev/null || rm -rf "$tmp"
}

keycloak_wait() {
  local timeout="${KEYCLOAK_START_TIMEOUT:-180}" t0
  t0="$(cat "$RUN_DIR/keycloak.started" 2>/dev/null || echo "$SECONDS")"
  wait_http keycloak "$KEYCLOAK_ISSUER/.well-known/openid-configuration" "$timeout" '^200$' ||
    die "Keycloak did not serve the platform realm within ${timeout}s (log: $RUN_DIR/keycloak.log)"
  log "Keycloak ready at $KEYCLOAK_URL after $((SECONDS - t0))s"
  _keycloak_save_build
}

keycloak_stop() { stop_component keycloak 20; }
