"""The test Pi-hole v6 API server: HTTP(S) on loopback around the FTL model in ftl.py.

Every request is checked against the upstream OpenAPI spec (path, method, parameters, body);
every response this server sends is checked too. Anything off is kept in ``violations``
(the pytest fixture fails the test on it). Requests are recorded (passwords redacted) so
tests can count them, and ``inject()`` adds faults: an expired session before a matching
request, an HTTP error status, or a connection reset. ``stop()``/``start()`` take the
server down and up again on the same address, keeping its state.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .ftl import FTL, Request, error
from .spec import Spec, SpecViolation

# Answers FTL really gives (see its src/api/config.c) that the spec does not list: config writes
# refused for app sessions without app_sudo (403), and PATCH /config validation errors (400).
UNDOCUMENTED_BUT_REAL = {
    ("patch", "/config", 400),
    ("patch", "/config", 403),
    ("put", "/config/{element}/{value}", 403),
    ("delete", "/config/{element}/{value}", 403),
}

_SPEC: Spec | None = None
_SPEC_LOCK = threading.Lock()


def shared_spec() -> Spec:
    """The parsed spec, loaded once per process."""
    global _SPEC  # noqa: PLW0603 - one parse of ~9,000 lines of YAML per process
    with _SPEC_LOCK:
        if _SPEC is None:
            _SPEC = Spec()
        return _SPEC


@dataclass
class RecordedRequest:
    method: str
    path: str  # as sent, below /api, with the query string
    authenticated: bool
    body: Any
    status: int = 0

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


@dataclass
class Fault:
    method: str | None
    path: re.Pattern[str]
    action: str | int  # "expire_sessions", "reset", or an HTTP status
    times: int


@dataclass
class PiholeServer:
    host: str = "127.0.0.1"
    password: str | None = None
    port: int = 0
    name: str = "pihole"
    max_sessions: int = 16
    session_timeout: int = 1800
    tls: tuple[str, str] | None = None  # (certfile, keyfile)
    requests: list[RecordedRequest] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ftl = FTL(shared_spec(), self.password, max_sessions=self.max_sessions, timeout=self.session_timeout)
        self._faults: list[Fault] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # FTL answers API requests one at a time, too

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> PiholeServer:
        handler = type("Handler", (_Handler,), {"pihole": self})
        httpd = ThreadingHTTPServer((self.host, self.port), handler)
        httpd.daemon_threads = True
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name=f"pihole-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take the server down (connections are refused); state and sessions are kept."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # -- test hooks ------------------------------------------------------------------------------

    @property
    def open_sessions(self) -> int:
        return self.ftl.open_sessions

    @property
    def secrets(self) -> list[str]:
        """Every value that must never appear in playbook output: the password, sids, CSRF tokens."""
        return [s for s in [self.password, *self.ftl.issued] if s]

    def inject(self, action: str | int, *, method: str | None = None, path: str = ".*", times: int = 1) -> None:
        """Fault on the next ``times`` requests matching ``method`` and the ``path`` regex (below /api)."""
        self._faults.append(Fault(method, re.compile(path), action, times))

    def requests_matching(self, method: str | None = None, path: str = ".*") -> list[RecordedRequest]:
        pattern = re.compile(path)
        return [r for r in self.requests if (method is None or r.method == method) and pattern.search(r.path)]

    def count(self, method: str | None = None, path: str = ".*") -> int:
        return len(self.requests_matching(method, path))

    def reset_log(self) -> None:
        self.requests.clear()

    # -- request handling ------------------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.times > 0 and (fault.method in (None, method)) and fault.path.search(path):
                fault.times -= 1
                return fault
        return None

    def dispatch(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes, remote_addr: str
    ) -> tuple[int, Any] | None:
        """Handle one request; None means: drop the connection without answering."""
        with self._lock:
            parts = urlsplit(raw_path)
            api_path = parts.path[4:] if parts.path.startswith("/api/") else None
            shown = (api_path or parts.path) + (f"?{parts.query}" if parts.query else "")
            record = RecordedRequest(method, shown, bool(headers.get("x-ftl-sid") or headers.get("sid")), _redact(body))
            self.requests.append(record)
            fault = self._take_fault(method, shown)
            if fault is not None and fault.action == "reset":
                record.status = -1
                return None
            if fault is not None and fault.action == "expire_sessions":
                self.ftl.expire_sessions()
            elif fault is not None:
                record.status = int(fault.action)
                return record.status, {
                    "error": {"key": "injected", "message": "Injected fault", "hint": None},
                    "took": 0.0,
                }
            req = Request(
                method,
                api_path or parts.path,
                parse_qs(parts.query, keep_blank_values=True),
                headers,
                body,
                remote_addr,
            )
            status, payload = self._answer(req, api_path is not None)
            record.status = status
            return status, payload

    def _answer(self, req: Request, is_api: bool) -> tuple[int, Any]:
        started = time.monotonic()
        method, api_path, query, body = req.method, req.path, req.query, req.body
        if not is_api:
            return error(404, "not_found", "Not found", "only /api/ is served here")
        spec = self.ftl.spec
        op = spec.operation(method, api_path)
        if op is None:
            what = "method not allowed" if spec.path_known(api_path) else "unknown path"
            self.violations.append(f"request {method} /api{api_path}: {what} in the spec")
            return error(404, "not_found", "Not found", f"/api{api_path}")
        try:
            req.json = spec.validate_request(op, query, body)
        except SpecViolation as exc:
            self.violations.append(f"request {method} /api{api_path}: {exc}")
            try:  # still answer like FTL does (it has its own checks)
                req.json = json.loads(body) if body else None
            except ValueError:
                req.json = None
        status, payload = self.ftl.handle(req, op.auth_required)
        if isinstance(payload, dict):
            payload["took"] = round(time.monotonic() - started, 6)
        try:
            if (op.method, op.template, status) not in UNDOCUMENTED_BUT_REAL:
                spec.validate_response(op, status, payload)
        except SpecViolation as exc:
            self.violations.append(f"server answer to {method} /api{api_path}: {exc}")
        return status, payload


def _redact(body: bytes) -> Any:
    if not body:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return "<not JSON>"
    if isinstance(parsed, dict) and "password" in parsed:
        parsed["password"] = "<redacted>"
    return parsed


class _Handler(BaseHTTPRequestHandler):
    pihole: PiholeServer
    server_version = "pihole-test"

    def log_message(self, format: str, *args: Any) -> None:  # silence the default logging
        return

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer = self.pihole.dispatch(self.command, self.path, headers, body, self.client_address[0])
        if answer is None:
            self.close_connection = True
            self.connection.close()
            return
        status, payload = answer
        data = b"" if payload is None else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle
