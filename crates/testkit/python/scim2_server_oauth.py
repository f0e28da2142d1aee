"""scim2-server (PyPI) whose bearer tokens are checked by OAuth 2 token introspection (RFC 7662)
at an authorization server, on every request: an expired or revoked token is refused at once.

usage: python scim2_server_oauth.py PORT INTROSPECT_URL CLIENT_ID CLIENT_SECRET
Base URL: http://127.0.0.1:PORT/v2. Prints "ready" once listening.
"""
import base64
import json
import sys
import urllib.parse
import urllib.request
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from scim2_models import UnauthorizedException
from scim2_server.memory import InMemoryStorage
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
from scim2_server.utils import load_default_provider

port, introspect_url, client_id, client_secret = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()


def active(token: str) -> bool:
    request = urllib.request.Request(
        introspect_url, data=urllib.parse.urlencode({"token": token}).encode(),
        headers={"Authorization": basic})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return bool(json.load(answer).get("active"))


class IntrospectingApplication(BearerTokenApplication):
    def check_auth(self, request):
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token or not active(token):
            raise UnauthorizedException


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


provider = load_default_provider()
provider.config.authentication_schemes = [BEARER_TOKEN_SCHEME]
app = IntrospectingApplication(InMemoryStorage(), provider, bearer_tokens=["unused"])
with make_server("127.0.0.1", port, app, server_class=ThreadingWSGIServer,
                 handler_class=QuietHandler) as server:
    print("ready", flush=True)
    server.serve_forever()
