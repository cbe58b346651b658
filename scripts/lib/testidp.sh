# shellcheck shell=bash
# Shared by scripts/bench, bench-scale and soak: the test IdP, a Portcullis config pointing
# at it, browser logins through it with curl, the headers Traefik sends with a forward-auth
# request, and the flags of the benchmarked oauth2-proxy. Source it after common.sh; it
# defines functions and one array and runs nothing.
#
# start_test_idp sets the globals `issuer` and `idp_base`; login and
# write_portcullis_config read `issuer`, write_portcullis_config also `SESSION_REFRESH`.

# What Traefik adds to every forward-auth request (PROXIES.md); callers append their
# own User-Agent.
# shellcheck disable=SC2034 # used by the scripts that source this file
TRAEFIK_FORWARDED=(
  -H "X-Forwarded-Method: GET" -H "X-Forwarded-Proto: http" -H "X-Forwarded-Host: localhost"
  -H "X-Forwarded-Uri: /app/dashboard?tab=1" -H "X-Forwarded-For: 127.0.0.1"
)

# start_test_idp BINARY [ARGS...]: runs the test IdP as component `idp` and waits for the
# issuer line it prints; sets `issuer` (…/realms/NAME) and `idp_base` (scheme://host:port).
start_test_idp() {
  run_bg idp "$@"
  for _ in $(seq 100); do
    grep -q '^issuer=' "$RUN_DIR/idp.log" 2>/dev/null && break
    is_running idp || die "test IdP exited: $(cat "$RUN_DIR/idp.log")"
    sleep 0.1
  done
  issuer="$(sed -n 's/^issuer=//p' "$RUN_DIR/idp.log")"
  [[ -n "$issuer" ]] || die "test IdP printed no issuer"
  idp_base="${issuer%/realms/*}"
  log "test IdP at $issuer"
}

# mint_token: prints an access token for alice, signed with the IdP's RSA key.
mint_token() {
  curl -sS --fail -X POST -d '{"user":"alice","kid":"rsa-1"}' "$idp_base/test/mint"
}

# write_portcullis_config PORT FILE [EXTRA_BEARER_LINE]: a Portcullis config on
# 127.0.0.1:PORT, with a fresh cookie secret, using the test IdP.
write_portcullis_config() {
  cat >"$2" <<EOF
listen = "127.0.0.1:$1"
public_url = "http://127.0.0.1:$1"
log_format = "text"
[oidc]
issuer_url = "$issuer"
client_id = "portcullis"
client_secret = "test-secret"
[session]
cookie_secret = "$(openssl rand -base64 32)"
cookie_secure = false
# The default (5m) would refresh the session during the runs and answer every later request
# with a new Set-Cookie that wrk never takes up (a browser would). oauth2-proxy's cookie
# refresh is off by default, too.
refresh = "$SESSION_REFRESH"
[redirect]
allowed_domains = ["127.0.0.1", "localhost"]
[bearer]
audiences = ["portcullis"]
${3:-}
EOF
}

# login BASE JAR: /oauth2/start -> IdP (auto-approves) -> /oauth2/callback, no redirects
# followed, cookies kept in JAR.
login() {
  local base="$1" jar="$2" idp_url callback_url code
  idp_url="$(curl -sS -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$base/oauth2/start?rd=/")"
  [[ "$idp_url" == "$issuer/protocol/openid-connect/auth"* ]] ||
    die "login at $base: /oauth2/start redirected to '$idp_url', not to the IdP"
  callback_url="$(curl -sS -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$idp_url")"
  [[ "$callback_url" == "$base/oauth2/callback"* ]] ||
    die "login at $base: the IdP redirected to '$callback_url', not to the callback"
  code="$(curl -sS -c "$jar" -b "$jar" -o /dev/null -w '%{http_code}' "$callback_url")"
  [[ "$code" == 302 ]] || die "login at $base: callback answered $code, not 302"
}

# cookie_header JAR NAME: "NAME=v" (or "NAME_0=v; NAME_1=v" when split) from a curl jar.
cookie_header() {
  sed 's/^#HttpOnly_//' "$1" | awk -F '\t' -v n="$2" '
    !/^#/ && NF >= 7 && ($6 == n || $6 ~ ("^" n "_[0-9]+$")) { h = h (h ? "; " : "") $6 "=" $7 }
    END { if (h == "") exit 1; print h }'
}

# oauth2_proxy_flags JWKS_URL: sets the array `oauth2_proxy_args`, the flags every benchmarked
# oauth2-proxy runs with against the test IdP (reads `issuer`): its endpoints given without
# discovery, because its JOSE library refuses the whole JWKS when one key has an unknown kty
# (the test IdP publishes such a decoy), so it reads a filtered copy from JWKS_URL. Same keys,
# same tokens; static upstream 202, X-Auth-Request headers, bearer tokens accepted, no logs.
oauth2_proxy_flags() {
  # shellcheck disable=SC2034 # used by the scripts that source this file
  oauth2_proxy_args=(--reverse-proxy --provider=oidc --oidc-issuer-url="$issuer" --skip-oidc-discovery
    --login-url="$issuer/protocol/openid-connect/auth" --redeem-url="$issuer/protocol/openid-connect/token"
    --profile-url="$issuer/protocol/openid-connect/userinfo" --oidc-jwks-url="$1"
    --client-id=portcullis --client-secret=test-secret --cookie-secret="$(openssl rand -hex 16)"
    --cookie-secure=false --email-domain='*' --upstream=static://202
    --set-xauthrequest --skip-provider-button --skip-jwt-bearer-tokens --code-challenge-method=S256
    --request-logging=false --auth-logging=false --standard-logging=false)
}
