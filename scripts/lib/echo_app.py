#!/usr/bin/env python3
"""Echo upstream for the demo and the end-to-end suite.

Answers every request with JSON describing what it received:
{"method", "path", "query", "headers", "body_length"}. Header names are
lower-cased; repeated headers are joined with ", ". One exception: GET
/static/e2e-logo.svg is a small SVG, the logo of the branded pages in
tests/e2e/error_pages.rs (`[pages] logo_url` as a path on the app's host).

usage: echo_app.py PORT [HOST]   (HOST defaults to 127.0.0.1)
"""
import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


LOGO_PATH = "/static/e2e-logo.svg"
LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="112" height="32" viewBox="0 0 112 32">'
    b'<rect width="32" height="32" rx="7" fill="#fff"/>'
    b'<path d="M9 25V9h14v16h-4V13h-6v12z" fill="#5b21b6"/>'
    b'<text x="40" y="23" font-family="sans-serif" font-size="17" font-weight="700" fill="#fff">ACME</text>'
    b"</svg>"
)


class Echo(BaseHTTPRequestHandler):
    server_version = "portcullis-echo/1"
    protocol_version = "HTTP/1.1"

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        split = urllib.parse.urlsplit(self.path)
        if split.path == LOGO_PATH and self.command in ("GET", "HEAD"):
            self.send_response(200)
            self.send_header("Content-Type", "image/svg+xml")
            self.send_header("Content-Length", str(len(LOGO)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(LOGO)
            return
        headers = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = headers[key] + ", " + value if key in headers else value
        body = json.dumps(
            {
                "method": self.command,
                "path": split.path,
                "query": split.query,
                "headers": headers,
                "body_length": length,
            },
            indent=2,
            sort_keys=True,
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


def main():
    port = int(sys.argv[1])
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((host, port), Echo)
    print(f"echo app listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
