#!/usr/bin/env python3
"""Checks the platform realm of a running Keycloak at the HTTP level.

Runs the authorization-code flow with PKCE (S256) for the `portcullis`
client as a browser would (cookie jar, manual redirects, login form POST),
redeems the code, and checks the claims Portcullis relies on. Also checks
client_credentials for `portcullis-cli`. Prints the decoded claims as JSON
with --dump. Standard library only.

usage: kc_check.py KEYCLOAK_URL [--redirect-uri URI] [--dump]
"""
import argparse
import base64
import hashlib
import html
import http.cookiejar
import json
import re
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

REALM = "platform"
CLIENT_ID = "portcullis"
CLIENT_SECRET = "portcullis-demo-secret"
CLI_ID = "portcullis-cli"
CLI_SECRET = "portcullis-cli-secret"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class LoopbackPolicy(http.cookiejar.DefaultCookiePolicy):
    """Sends Secure cookies to http://127.0.0.1 and *.localhost, as browsers
    do for these trustworthy origins (Keycloak marks its cookies Secure and
    SameSite=None even over plain http)."""

    def return_ok_secure(self, cookie, request):
        host = urllib.parse.urlsplit(request.get_full_url()).hostname or ""
        if host == "127.0.0.1" or host == "localhost" or host.endswith(".localhost"):
            return True
        return super().return_ok_secure(cookie, request)


def opener():
    jar = http.cookiejar.CookieJar(policy=LoopbackPolicy())
    return urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(jar), NoRedirect()
    )


def request(op, url, data=None, headers=None):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with op.open(req, timeout=20) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode(errors="replace")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(jwt):
    payload = jwt.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


def as_list(aud):
    return aud if isinstance(aud, list) else [aud]


def check(cond, what, failures):
    print(("ok   " if cond else "FAIL ") + what, file=sys.stderr)
    if not cond:
        failures.append(what)


def login(base, username, password, redirect_uri, failures):
    issuer = f"{base}/realms/{REALM}"
    op = opener()
    _, _, disc = request(op, f"{issuer}/.well-known/openid-configuration")
    disc = json.loads(disc)
    verifier = b64url(secrets.token_bytes(32))
    challenge = b64url(hashlib.sha256(verifier.encode()).digest())
    state = b64url(secrets.token_bytes(16))
    nonce = b64url(secrets.token_bytes(16))
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": redirect_uri,
        "scope": "openid profile email",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    status, _, page = request(
        op, disc["authorization_endpoint"] + "?" + urllib.parse.urlencode(params)
    )
    check(status == 200, f"{username}: login page served (status {status})", failures)
    m = re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', page)
    if not m:
        m = re.search(r'<form[^>]*action="([^"]+)"', page)
    if not m:
        check(False, f"{username}: login form found", failures)
        return None
    action = html.unescape(m.group(1))
    status, headers, page = request(
        op, action, {"username": username, "password": password, "credentialId": ""}
    )
    location = headers.get("Location", "")
    check(
        status == 302 and location.startswith(redirect_uri),
        f"{username}: login redirects straight back to the client (status {status},"
        f" no required action page)",
        failures,
    )
    if not location.startswith(redirect_uri):
        print(page[:2000], file=sys.stderr)
        return None
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    check(query.get("state") == [state], f"{username}: state echoed", failures)
    code = query["code"][0]
    status, _, body = request(
        op,
        disc["token_endpoint"],
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "code_verifier": verifier,
        },
    )
    check(status == 200, f"{username}: code redeemed with PKCE (status {status})", failures)
    if status != 200:
        print(body, file=sys.stderr)
        return None
    tokens = json.loads(body)
    idt, at = claims(tokens["id_token"]), claims(tokens["access_token"])
    check(idt.get("nonce") == nonce, f"{username}: id_token nonce matches", failures)
    _, _, ui = request(
        op, disc["userinfo_endpoint"], headers={"Authorization": "Bearer " + tokens["access_token"]}
    )
    return {"token_response": {k: v for k, v in tokens.items() if not k.endswith("token")},
            "id_token": idt, "access_token": at, "userinfo": json.loads(ui),
            "refresh_token": claims(tokens["refresh_token"]) if "refresh_token" in tokens else None,
            "discovery": disc}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("keycloak_url")
    ap.add_argument("--redirect-uri", default="http://app.localhost:8080/oauth2/callback")
    ap.add_argument("--dump", action="store_true")
    args = ap.parse_args()
    base = args.keycloak_url.rstrip("/")
    failures = []
    out = {}

    # PKCE is required: a request without code_challenge must be refused.
    status, headers, _ = request(
        opener(),
        f"{base}/realms/{REALM}/protocol/openid-connect/auth?"
        + urllib.parse.urlencode({"response_type": "code", "client_id": CLIENT_ID,
                                  "redirect_uri": args.redirect_uri, "scope": "openid"}),
    )
    loc = headers.get("Location", "")
    check("error=invalid_request" in loc or status == 400,
          f"request without PKCE refused (status {status})", failures)

    alice = login(base, "alice", "alice-password", args.redirect_uri, failures)
    if alice:
        at, idt, ui = alice["access_token"], alice["id_token"], alice["userinfo"]
        check(CLIENT_ID in as_list(at.get("aud")), f"alice: access aud contains portcullis ({at.get('aud')})", failures)
        check(at.get("azp") == CLIENT_ID, "alice: azp = portcullis", failures)
        check(at.get("groups") == ["admins"], f"alice: access groups = ['admins'] ({at.get('groups')})", failures)
        check(idt.get("groups") == ["admins"], "alice: id_token groups = ['admins']", failures)
        check(ui.get("groups") == ["admins"], "alice: userinfo groups = ['admins']", failures)
        check("platform-user" in at.get("realm_access", {}).get("roles", []), "alice: realm role platform-user", failures)
        check(bool(at.get("sid")) and bool(idt.get("sid")), "alice: sid present in access and id token", failures)
        check(idt.get("email") == "alice@example.com" and idt.get("preferred_username") == "alice",
              "alice: email and preferred_username", failures)
        check(at["exp"] - at["iat"] == 60, f"alice: access token lifetime 60s ({at['exp'] - at['iat']})", failures)
        out["alice"] = alice
    bob = login(base, "bob", "bob-password", args.redirect_uri, failures)
    if bob:
        at = bob["access_token"]
        check(at.get("groups", []) == [], f"bob: no groups ({at.get('groups')})", failures)
        check("platform-user" not in at.get("realm_access", {}).get("roles", []), "bob: no platform-user role", failures)
        out["bob"] = bob

    # Wrong redirect URI must be refused.
    status, headers, page = request(
        opener(),
        f"{base}/realms/{REALM}/protocol/openid-connect/auth?"
        + urllib.parse.urlencode({"response_type": "code", "client_id": CLIENT_ID,
                                  "redirect_uri": "http://evil.example/oauth2/callback",
                                  "scope": "openid", "code_challenge": "x" * 43,
                                  "code_challenge_method": "S256"}),
    )
    check(status == 400 and "redirect" in page.lower(), f"foreign redirect_uri refused (status {status})", failures)

    status, _, body = request(
        opener(),
        f"{base}/realms/{REALM}/protocol/openid-connect/token",
        {"grant_type": "client_credentials", "client_id": CLI_ID, "client_secret": CLI_SECRET},
    )
    check(status == 200, f"portcullis-cli: client_credentials (status {status})", failures)
    if status == 200:
        at = claims(json.loads(body)["access_token"])
        check(CLIENT_ID in as_list(at.get("aud")), f"portcullis-cli: aud contains portcullis ({at.get('aud')})", failures)
        out["portcullis-cli"] = {"access_token": at}

    if args.dump:
        for v in out.values():
            v.pop("discovery", None)
        print(json.dumps(out, indent=2, sort_keys=True))
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
