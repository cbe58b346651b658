#!/usr/bin/env python3
"""HTTPS in front of an http server on this machine, for scripts/image's TLS check.

    tls_proxy.py UPSTREAM CERT KEY

Listens on a free 127.0.0.1 port with the certificate chain CERT (PEM) and its key, and
forwards every GET and POST to UPSTREAM (http://127.0.0.1:PORT). Its own https base
replaces UPSTREAM's in response bodies and Location headers, so a test IdP's discovery
document names the proxy (issuer, jwks_uri...). Prints one line, url=https://127.0.0.1:PORT,
then serves until SIGTERM. Not a general proxy: no streaming, hop-by-hop headers dropped.
"""

import http.server
import ssl
import sys
import urllib.error
import urllib.request

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "upgrade"}


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def main():
    upstream, cert, key = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    opener = urllib.request.build_opener(NoRedirect)
    public = ""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
            req = urllib.request.Request(upstream + self.path, data=body, headers=headers, method=self.command)
            try:
                resp = opener.open(req, timeout=10)
            except urllib.error.HTTPError as e:
                resp = e
            data = resp.read().replace(upstream.encode(), public.encode())
            self.send_response(resp.status)
            for k, v in resp.headers.items():
                if k.lower() not in HOP_BY_HOP:
                    self.send_header(k, v.replace(upstream, public))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = forward
        do_POST = forward

        def log_message(self, fmt, *args):
            sys.stderr.write("tls_proxy: " + fmt % args + "\n")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    public = f"https://127.0.0.1:{server.server_address[1]}"
    print(f"url={public}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
