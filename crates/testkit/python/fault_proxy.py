"""A reverse proxy that injects faults on demand in front of a SCIM server, on 127.0.0.1.

usage: python fault_proxy.py PORT UPSTREAM_BASE_URL RULES_JSON
  UPSTREAM_BASE_URL  e.g. http://127.0.0.1:8080 (request paths are appended unchanged)
  RULES_JSON         a list of rules, each applied to the requests it matches:
    {"method": "POST", "path": "/scim/v2/Users",   match (path is a prefix; both optional)
     "query_contains": "filter=",          match a substring of the decoded query (optional)
     "skip": 0,            let this many matching requests through first
     "count": 1,           then fault this many (-1: all)
     "fault": "status" | "drop" | "delay_after" | "delay_before" | "existing",
     "status": 503, "retry_after": "1",   for "status" (and "scim_type": "invalidFilter")
     "seconds": 2.0,                      for the delays
     "user_name": "ann"}                  for "existing"
  "drop" closes the connection without an answer; "delay_after" forwards the request, lets the
  upstream act on it, and only answers after the delay (a client timeout then happens after
  the write). "existing" answers a create as a target that matches it to a user it has (an
  upsert) would: 201 with the user whose userName is "user_name", upstream, and creates nothing.
GET /_proxy/stats answers {"METHOD /path": count} of the requests received (query removed, ids
after Users/ and Groups/ replaced by {id}), {"faults": n}, and {"METHOD /path STATUS": count}
of the upstream's answers (those of delayed requests included). Prints "ready" once listening.
"""
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, upstream = int(sys.argv[1]), sys.argv[2].rstrip("/")
rules = json.loads(sys.argv[3])
for rule in rules:
    rule["seen"] = 0
lock = threading.Lock()
stats = {"faults": 0}


def path_class(path):
    path = path.split("?")[0]
    return re.sub(r"/(Users|Groups)/[^/]+", r"/\1/{id}", path)


def matching_fault(method, path):
    query = urllib.parse.unquote_plus(path.partition("?")[2])
    with lock:
        key = f"{method} {path_class(path)}"
        stats[key] = stats.get(key, 0) + 1
        for rule in rules:
            if rule.get("method", method) != method or not path.startswith(rule.get("path", "")):
                continue
            if rule.get("query_contains", "") not in query:
                continue
            rule["seen"] += 1
            skip, count = rule.get("skip", 0), rule.get("count", 1)
            if rule["seen"] > skip and (count < 0 or rule["seen"] <= skip + count):
                stats["faults"] += 1
                return rule
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.path == "/_proxy/stats":
            with lock:
                return self.answer(200, {"Content-Type": "application/json"}, json.dumps(stats).encode())
        rule = matching_fault(self.command, self.path)
        fault = rule["fault"] if rule else None
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if fault == "status":
            headers = {"Content-Type": "application/scim+json"}
            if rule.get("retry_after") is not None:
                headers["Retry-After"] = str(rule["retry_after"])
            error = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                     "status": str(rule["status"]), "detail": "injected fault"}
            if rule.get("scim_type"):
                error["scimType"] = rule["scim_type"]
            detail = json.dumps(error)
            return self.answer(rule["status"], headers, detail.encode())
        if fault == "existing":
            query = urllib.parse.urlencode({"filter": f'userName eq "{rule["user_name"]}"'})
            lookup = urllib.request.Request(f"{upstream}{self.path.split('?')[0]}?{query}")
            lookup.add_header("Authorization", self.headers.get("Authorization", ""))
            with urllib.request.urlopen(lookup, timeout=30) as response:
                existing = json.load(response)["Resources"][0]
            return self.answer(201, {"Content-Type": "application/scim+json"}, json.dumps(existing).encode())
        if fault == "delay_before":
            time.sleep(rule["seconds"])
        status, headers, data = self.forward(body)
        with lock:
            key = f"{self.command} {path_class(self.path)} {status}"
            stats[key] = stats.get(key, 0) + 1
        if fault == "delay_after":
            time.sleep(rule["seconds"])
        try:
            self.answer(status, headers, data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting, as the test intends

    def forward(self, body):
        request = urllib.request.Request(upstream + self.path, data=body, method=self.command)
        for name in ("Authorization", "Content-Type", "Accept", "If-Match"):
            if self.headers.get(name):
                request.add_header(name, self.headers[name])
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def answer(self, status, headers, data):
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # dropped and timed-out connections are the point


server = Server(("127.0.0.1", port), Handler)
print("ready", flush=True)
server.serve_forever()
