#!/usr/bin/env python3
"""Mint unique access tokens from the test IdP for the cold-signature bench scenario.

    mint_tokens.py --base http://127.0.0.1:PORT --count N --out FILE [--parallel K]

POSTs `/test/mint` (see test-idp/README.md) N times over K keep-alive connections and
writes one token per line. Every token gets its own `jti` from the IdP, so every token
is a distinct string that Portcullis has never verified. Standard library only.
"""

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse


def mint_range(base, start, count, step, out, errors, user, kid):
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    body = json.dumps({"user": user, "kid": kid, "type": "access"})
    headers = {"Content-Type": "application/json"}
    try:
        for i in range(start, count, step):
            conn.request("POST", "/test/mint", body, headers)
            resp = conn.getresponse()
            text = resp.read().decode("ascii", "replace").strip()
            if resp.status != 200 or text.count(".") != 2:
                errors.append(f"token {i}: HTTP {resp.status}: {text[:200]}")
                return
            out[i] = text
    except (OSError, http.client.HTTPException) as e:
        errors.append(f"connection {start}: {e}")
    finally:
        conn.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="IdP base URL (without /realms/...)")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--parallel", type=int, default=4)
    p.add_argument("--user", default="alice")
    p.add_argument("--kid", default="rsa-1")
    a = p.parse_args()

    tokens = [None] * a.count
    errors = []
    started = time.monotonic()
    workers = [
        threading.Thread(
            target=mint_range,
            args=(a.base, k, a.count, a.parallel, tokens, errors, a.user, a.kid),
        )
        for k in range(a.parallel)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        sys.exit("mint_tokens: " + "; ".join(errors[:5]))
    if len(set(tokens)) != a.count:
        sys.exit(f"mint_tokens: only {len(set(tokens))} distinct tokens out of {a.count}")
    with open(a.out, "w", encoding="ascii") as f:
        f.write("\n".join(tokens))
        f.write("\n")
    took = time.monotonic() - started
    print(
        f"minted {a.count} tokens in {took:.1f}s ({a.count / took:.0f}/s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
