#!/usr/bin/env python3
"""Echo upstream for the demo and the end-to-end suite.

Answers every request with JSON describing what it received:
{"method", "path", "query", "headers", "body_length"}. Header names are
lower-cased; repeated headers are joined with ", ".

usage: echo_app.py PORT [HOST]   (HOST defaults to 127.0.0.1)
"""
import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    server_version = "portcullis-echo/1"
    protocol_version = "HTTP/1.1"

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        split = urllib.parse.urlsplit(self.path)
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
