#!/usr/bin/env python3
"""Copy a JWKS keeping only signing keys of the standard key types (RSA, EC, OKP).

    filter_jwks.py < certs.json > jwks.json

The test IdP publishes a decoy `use: enc` key and a key of an unknown `kty` to test that
verifiers skip them. Portcullis does; oauth2-proxy's JOSE library rejects the whole set
instead, so scripts/bench serves it this filtered copy. Standard library only.
"""

import json
import sys

doc = json.load(sys.stdin)
keys = [
    k
    for k in doc.get("keys", [])
    if k.get("kty") in ("RSA", "EC", "OKP") and k.get("use", "sig") == "sig"
]
if not keys:
    sys.exit("filter_jwks: no signing keys left")
json.dump({"keys": keys}, sys.stdout)
