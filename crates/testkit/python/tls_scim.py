"""A minimal HTTPS server for TLS tests, on 127.0.0.1.

usage: python tls_scim.py PORT CERT KEY [CLIENT_CA]
  GET /scim/Users...  -> an empty SCIM ListResponse
  GET /html/...       -> an HTML page with status 200 (a login page, not SCIM)
  anything else       -> 404
With CLIENT_CA, clients must present a certificate signed by it (mutual TLS).
Prints "ready" once listening.
"""
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
client_ca = sys.argv[4] if len(sys.argv) > 4 else None
LIST = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/scim/Users":
            self.answer(200, "application/scim+json", json.dumps(LIST))
        elif path.startswith("/html/"):
            self.answer(200, "text/html", "<html><body>Please sign in</body></html>")
        else:
            self.answer(404, "text/plain", "not found")

    def answer(self, status, content_type, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # failed handshakes are what some tests are about


context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
if client_ca:
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(client_ca)
server = QuietServer(("127.0.0.1", port), Handler)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
