#!/usr/bin/env python3
"""A local stand-in for the Pulumi ESC API, for tests and benchmarks.

Speaks the two calls esc-hook makes (POST .../open, GET .../open/{id}) with the shapes of
the real service (see tests/fixtures), checks the token, records every request, and can
misbehave on demand. Standard library only.

    esc_stand_in.py CONFIG.json        # prints "listening on PORT" once ready

CONFIG.json:
    {"token": "pul-test",
     "environments": {"acme/payments/dev": {"read": {...read response...}},
                      "acme/payments/broken": {"fault": "500"}}}

String values containing @@OPEN@@ have it replaced by the number of the open session (1, 2,
...), so a test can tell fresh credentials from old ones.

Anonymous environments (POST .../{org}/yaml/open with a definition whose `imports:` lists
`project/env[@version]`, then GET .../{org}/yaml/open/{id}) merge the named environments' read
responses the way ESC merges imports: later wins, objects merged deeply.

Faults: "400" (evaluation diagnostics), "401", "403", "404", "429", "500" (with a request
id), "html" (an HTML page with status 502), "truncated" (a JSON body cut in half), "endless"
(a 200 whose body goes on, without a length, until the client stops reading or 64 MiB are
sent), "huge-length" (a 200 announcing a 3 GiB body), "slow:S" (answer after S seconds),
"wait-for:PATH" (answer once PATH exists, at most a minute), "hang" (never answer). A fault applies to the open request;
"read-500" applies to the read instead. With "fault_after": N the fault only starts once N
opens of any environment have succeeded (credentials that cannot be refreshed).

It can also play an AWS STS endpoint that only fails: with "sts_fault": CODE in the
configuration, any STS query (POST /) gets that AWS error (AccessDenied, ExpiredToken,
InvalidIdentityToken, RegionDisabledException, Throttling). Successful STS calls are tested
against moto instead.

Control endpoints (never recorded): GET /_stand-in/requests lists what was received;
POST /_stand-in/config replaces the configuration with the request body.
"""

import errno
import json
import os
import pathlib
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
PREFIX = "/api/esc/environments/"


class StandIn:
    def __init__(self, config):
        self.lock = threading.Lock()
        self.config = config
        self.requests = []
        self.sessions = {}
        self.opens = 0


def fixture(name):
    return (FIXTURES / name).read_bytes()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "esc-stand-in/1"

    def setup(self):
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every keep-alive response.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):  # quiet: tests read the request log instead
        pass

    @property
    def state(self):
        return self.server.stand_in

    def reply(self, status, body, content_type="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def reply_json(self, status, obj, headers=()):
        self.reply(status, json.dumps(obj).encode(), headers=headers)

    def federation(self, query):
        """The AWS federation endpoint's getSigninToken: with "federation": {"access_key_id"}
        in the config, a session of that key is answered with a sign-in token."""
        params = urllib.parse.parse_qs(query)
        with self.state.lock:
            self.state.requests.append({"method": "GET", "path": "/federation",
                                        "query": query, "headers": {}})
            config = self.state.config.get("federation", {})
        if params.get("Action") != ["getSigninToken"]:
            return self.reply_json(400, {"message": "only getSigninToken"})
        session = json.loads(params.get("Session", ["{}"])[0])
        if session.get("sessionId") != config.get("access_key_id") or not session.get("sessionToken"):
            return self.reply_json(400, {"message": "bad session"})
        return self.reply_json(200, {"SigninToken": "signin-token-from-stand-in"})

    def do_GET(self):
        if self.path.startswith("/federation?"):
            return self.federation(self.path.split("?", 1)[1])
        if self.path == "/_stand-in/requests":
            with self.state.lock:
                return self.reply_json(200, self.state.requests)
        self.handle_api("GET")

    def do_POST(self):
        if self.path == "/_stand-in/config":
            length = int(self.headers.get("Content-Length") or 0)
            config = json.loads(self.rfile.read(length))
            with self.state.lock:
                self.state.config = config
            return self.reply_json(200, {})
        if self.path == "/" and self.state.config.get("sts_fault"):
            return self.sts_fault(self.state.config["sts_fault"])
        if self.path == "/api/oauth/token":
            return self.token_exchange()
        self.handle_api("POST")

    def token_exchange(self):
        """RFC 8693 as Pulumi Cloud takes it: with "oidc": {"subject_token", "org", "expires_in"}
        in the config, a matching exchange is answered with the stand-in's own token."""
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        with self.state.lock:
            self.state.requests.append({"method": "POST", "path": "/api/oauth/token",
                                        "query": "", "body": body,
                                        "headers": {k.lower(): v for k, v in self.headers.items()}})
            config = self.state.config
        oidc = config.get("oidc", {})
        expected = {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        }
        for key, value in expected.items():
            if body.get(key) != value:
                return self.reply_json(400, {"error": "invalid_request",
                                             "error_description": f"{key} must be {value}"})
        if body.get("audience") != "urn:pulumi:org:" + oidc.get("org", ""):
            return self.reply_json(400, {"error": "invalid_request",
                                         "error_description": "unknown organization"})
        if body.get("subject_token") != oidc.get("subject_token"):
            return self.reply_json(401, {"error": "invalid_grant",
                                         "error_description": "the ID token is not trusted"})
        return self.reply_json(200, {
            "access_token": config.get("token", ""),
            "issued_token_type": body.get("requested_token_type"),
            "token_type": "token",
            "expires_in": oidc.get("expires_in", 7200),
            "scope": body.get("scope", ""),
        })

    STS_STATUS = {"AccessDenied": 403, "RegionDisabledException": 403}

    def sts_fault(self, code):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        with self.state.lock:
            self.state.requests.append({"method": "POST", "path": "/", "query": "",
                                        "headers": {k.lower(): v for k, v in self.headers.items()}})
        body = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            f"<Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>stand-in says {code}</Message></Error>"
            "<RequestId>sts-req-1</RequestId></ErrorResponse>"
        ).encode()
        self.reply(self.STS_STATUS.get(code, 400), body, "text/xml")

    def handle_api(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        # Asked as an HTTP proxy (`GET http://host/path`): answered as that host, and recorded.
        target = self.path
        proxied_to = None
        if target.startswith("http://"):
            proxied_to, _, rest = target[len("http://"):].partition("/")
            target = "/" + rest
        path, _, query = target.partition("?")
        with self.state.lock:
            self.state.requests.append(
                {"method": method, "path": path, "query": query, "body": body,
                 "headers": {k.lower(): v for k, v in self.headers.items()},
                 "proxied_to": proxied_to}
            )
            config = self.state.config
        if path == "/api/user":
            if self.headers.get("Authorization") != "token " + config.get("token", ""):
                return self.reply(401, fixture("error-401.json"))
            return self.reply_json(200, {"githubLogin": "stand-in-user", "name": "Stand-in User"})
        if not path.startswith(PREFIX):
            return self.reply_json(404, {"code": 404, "message": "Not Found"})
        parts = path[len(PREFIX):].split("/")
        if self.headers.get("Authorization") != "token " + config.get("token", ""):
            return self.reply(401, fixture("error-401.json"))
        # org/yaml/open (an anonymous environment) | org/yaml/open/ID
        if method == "POST" and len(parts) == 3 and parts[1:] == ["yaml", "open"]:
            return self.open_yaml(parts[0], body, config)
        if method == "GET" and len(parts) == 4 and parts[1:3] == ["yaml", "open"]:
            return self.read_yaml(parts[0], parts[3])
        # org/project/env/open | org/project/env/versions/V/open | org/project/env/open/ID
        if method == "POST" and len(parts) == 4 and parts[3] == "open":
            return self.open_env("/".join(parts[:3]), config)
        if method == "POST" and len(parts) == 6 and parts[3] == "versions" and parts[5] == "open":
            return self.open_env("/".join(parts[:3]) + "@" + parts[4], config)
        if method == "GET" and len(parts) == 5 and parts[3] == "open":
            return self.read_env("/".join(parts[:3]), parts[4])
        return self.reply_json(404, {"code": 404, "message": "Not Found"})

    def fault(self, fault, name):
        if fault.startswith("slow:"):
            time.sleep(float(fault[5:]))
            return False
        if fault.startswith("wait-for:"):
            # Answers once the file exists (at most a minute): a test acts in between.
            deadline = time.monotonic() + 60
            while not os.path.exists(fault[9:]) and time.monotonic() < deadline:
                time.sleep(0.02)
            return False
        if fault == "hang":
            time.sleep(3600)
        if fault == "400":
            self.reply(400, fixture("open-400-diagnostics.json"))
        elif fault == "404":
            self.reply_json(404, {"code": 404, "message": f"Environment '{name}' not found"})
        elif fault in ("401", "403", "429"):
            self.reply_json(int(fault), {"code": int(fault), "message": "denied by stand-in"})
        elif fault == "500":
            self.reply_json(500, {"code": 500, "message": "Internal Server Error"},
                            headers=[("X-Pulumi-Request-ID", "req-0123456789")])
        elif fault == "html":
            self.reply(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
        elif fault == "endless":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            chunk = b" " * 65536
            try:
                self.wfile.write(b'{"id": "')
                for _ in range(1024):
                    self.wfile.write(chunk)
                self.wfile.write(b'"}')
            except OSError:
                pass
            self.close_connection = True
        elif fault == "huge-length":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(3 * 1024 ** 3))
            self.end_headers()
            self.close_connection = True
        elif fault == "truncated":
            body = json.dumps({"id": "cut-" + "x" * 64}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            return False
        return True

    def open_env(self, name, config):
        env = config.get("environments", {}).get(name)
        if env is None:
            return self.reply_json(404, {"code": 404, "message": f"Environment '{name}' not found"})
        return self.start_session(name, [(name, env)])

    def start_session(self, key, environments):
        """Answers an open: each environment's fault (if due) first, else a new session that
        reads `key` (a name, or the list of an anonymous open's imports)."""
        for name, env in environments:
            with self.state.lock:
                faulty = self.state.opens >= env.get("fault_after", 0)
            if faulty and self.fault(env.get("fault", ""), name):
                return None
        session = str(uuid.uuid4())
        with self.state.lock:
            self.state.opens += 1
            self.state.sessions[session] = (key, self.state.opens)
        return self.reply_json(200, {"id": session})

    def open_yaml(self, org, definition, config):
        """An anonymous environment whose definition imports others, the way ESC takes it:
        `imports:` then `- project/env[@version]` items; each must exist in `org` (404 naming
        the import), and an import naming another organization is refused (400)."""
        imports, inside = [], False
        for line in definition.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line.rstrip() == "imports:":
                inside = True
            elif inside and line.lstrip().startswith("- "):
                imports.append(line.strip()[2:].strip())
            else:
                return self.reply_json(400, {"code": 400, "message": "unsupported definition",
                                             "diagnostics": [{"summary": f"unexpected line: {line}"}]})
        if not imports:
            return self.reply_json(400, {"code": 400, "message": "no imports",
                                         "diagnostics": [{"summary": "the definition imports nothing"}]})
        names = []
        for item in imports:
            base = item.split("@")[0]
            if base.count("/") != 1:
                return self.reply_json(400, {"code": 400, "message": "invalid import",
                                             "diagnostics": [{"summary": f"{item}: imports name project/env in this organization"}]})
            name = f"{org}/{item}"
            env = config.get("environments", {}).get(name) or config.get("environments", {}).get(f"{org}/{base}")
            if env is None:
                return self.reply_json(404, {"code": 404, "message": f"Environment '{org}/{base}' not found"})
            names.append(name if name in config.get("environments", {}) else f"{org}/{base}")
        return self.start_session(names, [(n, config["environments"][n]) for n in names])

    def read_yaml(self, org, session):
        with self.state.lock:
            names, number = self.state.sessions.get(session, (None, 0))
            environments = self.state.config.get("environments", {})
        if not isinstance(names, list) or any(not n.startswith(org + "/") for n in names):
            return self.reply_json(404, {"code": 404, "message": "open session not found"})
        merged = {"properties": {}}
        for name in names:
            read = environments.get(name, {}).get("read", {"properties": {}})
            merged = merge(merged, traced(read, name.split("/", 1)[1]))
        body = json.dumps(merged).replace("@@OPEN@@", str(number))
        return self.reply(200, body.encode())

    def read_env(self, base, session):
        with self.state.lock:
            name, number = self.state.sessions.get(session, (None, 0))
            env = self.state.config.get("environments", {}).get(name or "")
        if not isinstance(name, str) or name.split("@")[0] != base or env is None:
            return self.reply_json(404, {"code": 404, "message": "open session not found"})
        fault = env.get("fault", "")
        if fault.startswith("read-") and self.fault(fault[5:], name):
            return None
        body = json.dumps(env.get("read", {"properties": {}})).replace("@@OPEN@@", str(number))
        return self.reply(200, body.encode())


def traced(read, import_name):
    """A read response whose variables say where they are defined, as ESC's traces do: an
    imported environment is named as it was imported (`project/env`)."""
    read = json.loads(json.dumps(read))
    for key in ("environmentVariables", "files"):
        children = read.get("properties", {}).get(key, {}).get("value")
        if isinstance(children, dict):
            for node in children.values():
                if isinstance(node, dict):
                    node.setdefault("trace", {"def": {"environment": import_name}})
    return read


def merge(base, later):
    """ESC's import merge: later wins; objects (here, value maps) merged deeply. In a read
    response a value is {"value": ..., "secret": ..., "trace": ...}: two values whose `value`
    is an object merge key by key; anything else is replaced by the later one."""
    if not (isinstance(base, dict) and isinstance(later, dict)):
        return later
    out = dict(base)
    for key, value in later.items():
        if key in out and isinstance(out[key], dict) and isinstance(value, dict):
            if "value" in value and not isinstance(value.get("value"), dict):
                out[key] = value
            else:
                out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def main():
    config = json.loads(pathlib.Path(sys.argv[1]).read_text())
    port = int(config.get("port", 0))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError as error:
        reason = "is in use" if error.errno == errno.EADDRINUSE else f"cannot be used ({error.strerror})"
        print(f"esc_stand_in: port {port} {reason}: leave out \"port\" to have a free one", file=sys.stderr)
        sys.exit(1)
    server.daemon_threads = True
    server.stand_in = StandIn(config)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
