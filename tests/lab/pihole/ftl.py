"""FTL-like state and API semantics for the test Pi-hole (no HTTP here; see server.py).

Behaviour follows Pi-hole FTL v6 as its source and API spec describe it (written anew, not
copied): config arrays are compared as exact strings ("Item already present" on a duplicate
PUT, 404 with a bare ``{"took"}`` body on an unknown DELETE), the dns.hosts/dns.cnameRecords
validators and their hints, 16 session seats (429 ``api_seats_exceeded``), sessions valid for
``webserver.session.timeout`` seconds after their last use, app passwords whose sessions may
only change settings with ``webserver.api.app_sudo``, and a password change through
``PATCH /api/config`` (``webserver.api.password``) that ends every session.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .spec import Spec

Response = tuple[int, Any]
PASSWORD_PLACEHOLDER = "********"
WRITE_ONLY = ("webserver.api.password", "webserver.api.totp_secret")
INVALIDATES_SESSIONS = (
    "webserver.api.password",
    "webserver.api.pwhash",
    "webserver.api.app_pwhash",
    "webserver.api.totp_secret",
)
_DOMAIN_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$")


def error(status: int, key: str, message: str, hint: str | None = None) -> Response:
    return status, {"error": {"key": key, "message": message, "hint": hint}}


def make_hash(password: str, salt: bytes | None = None) -> str:
    """A stand-in for FTL's BALLOON-SHA256 hash (same shape, not the same algorithm)."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.sha256(salt + password.encode("utf-8")).digest()
    return f"$BALLOON-SHA256$v=1$s=1024,t=32${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_hash(stored: str, password: str) -> bool:
    parts = stored.split("$")
    if len(parts) != 6:
        return False
    return hmac.compare_digest(make_hash(password, base64.b64decode(parts[4])), stored)


def _new_token() -> str:
    return base64.b64encode(secrets.token_bytes(16)).decode()


@dataclass
class Session:
    id: int
    sid: str
    csrf: str
    login_at: float
    valid_until: float
    remote_addr: str
    user_agent: str | None
    app: bool


@dataclass
class Request:
    method: str
    path: str  # below /api, percent-encoded as received
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    remote_addr: str
    json: Any = None
    session: Session | None = None
    path_params: dict[str, str] = field(default_factory=dict)


def valid_domain(name: str) -> bool:
    if not name or len(name) > 253:
        return False
    return all(_DOMAIN_LABEL.match(label) and len(label) <= 63 for label in name.rstrip(".").split("."))


def _valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def validate_hosts(  # noqa: PLR0911 - one return per FTL error message
    items: list[Any], key: str = "dns.hosts"
) -> str | None:
    """FTL's rules for dns.hosts entries ("IP HOSTNAME [HOSTNAME...] [# comment]")."""
    for i, item in enumerate(items):
        if not isinstance(item, str):
            return f"{key}[{i}]: not a string"
        if "\n" in item or "\r" in item:
            return f"{key}[{i}]: contains newline characters"
        tokens = re.split(r"[ \t]+", item.strip())
        ip = tokens[0] if tokens else ""
        if not ip:
            return f'{key}[{i}]: found no first element ("{item}")'
        if not _valid_ip(ip):
            return f'{key}[{i}]: neither a valid IPv4 nor IPv6 address ("{ip}")'
        names = 0
        for host in tokens[1:]:
            if host.startswith("#"):
                break
            if not valid_domain(host):
                return f'{key}[{i}]: invalid hostname ("{host}")'
            names += 1
        if names < 1:
            return f'{key}[{i}]: entry does not have at least one hostname ("{item}")'
    return None


def validate_cnames(items: list[Any], key: str = "dns.cnameRecords") -> str | None:
    """FTL's rules for dns.cnameRecords entries ("<cname>,[<cname>,]<target>[,<TTL>]")."""
    for i, item in enumerate(items):
        if not isinstance(item, str):
            return f"{key}[{i}]: not a string"
        parts = item.split(",")
        for position, part in enumerate(parts):
            if not part:
                return f"{key}[{i}]: contains an empty string at position {position}"
        if len(parts) < 2:
            return f"{key}[{i}]: not a valid CNAME definition (too few elements)"
        if "\n" in item or "\r" in item:
            return f"{key}[{i}]: contains newline characters"
    return None


VALIDATORS = {"dns.hosts": validate_hosts, "dns.cnameRecords": validate_cnames}


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(_leaves(value, path))
        else:
            out[path] = value
    return out


def _get(tree: dict[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set(tree: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = tree
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def _type_error(current: Any, value: Any) -> str | None:  # noqa: PLR0911
    if isinstance(current, bool):
        return None if isinstance(value, bool) else "not of type bool"
    if isinstance(current, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else "not of type integer"
    if isinstance(current, float):
        return None if isinstance(value, int | float) and not isinstance(value, bool) else "not a number"
    if isinstance(current, str):
        return None if isinstance(value, str) else "not of type string"
    if isinstance(current, list):
        if not isinstance(value, list):
            return "not of type array"
        return None if all(isinstance(v, str) for v in value) else "array has invalid elements"
    return None


class FTL:
    """The API behaviour of one Pi-hole. ``handle()`` returns (status, JSON body or None)."""

    def __init__(self, spec: Spec, password: str | None, *, max_sessions: int = 16, timeout: int = 1800) -> None:
        self.spec = spec
        example = spec.resolve({"$ref": "config.yaml#/components/examples/config/value/config"}, "main.yaml")
        self.config: dict[str, Any] = copy.deepcopy(example)
        self.config["dns"]["hosts"] = []
        self.config["dns"]["cnameRecords"] = []
        api = self.config["webserver"]["api"]
        api.update(
            {
                "max_sessions": max_sessions,
                "pwhash": make_hash(password) if password else "",
                "app_pwhash": "",
                "app_sudo": False,
                "totp_secret": "",
                "password": "",
            }
        )
        self.config["webserver"]["session"]["timeout"] = timeout
        self.sessions: list[Session | None] = [None] * max_sessions
        self.time_offset = 0.0
        self.restarts = 0  # resolver restarts FTL would have done
        self.issued: list[str] = []  # every sid and csrf ever handed out (for secret scans)
        self.app_passwords_issued: dict[str, str] = {}  # hash -> password from GET /auth/app

    # -- time and sessions -------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.time_offset

    @property
    def session_timeout(self) -> int:
        return int(self.config["webserver"]["session"]["timeout"])

    @property
    def open_sessions(self) -> int:
        now = self.now()
        return sum(1 for s in self.sessions if s is not None and s.valid_until >= now)

    def expire_sessions(self) -> None:
        """Test hook: every session times out now (as if 1800 s passed without use)."""
        for s in self.sessions:
            if s is not None:
                s.valid_until = self.now() - 1

    def delete_all_sessions(self) -> None:
        self.sessions = [None] * len(self.sessions)

    def _find_session(self, req: Request) -> Session | None:
        sid = req.headers.get("sid") or req.headers.get("x-ftl-sid")
        cookie_auth = False
        if not sid:
            cookie = req.headers.get("cookie", "")
            match = re.search(r"(?:^|;\s*)sid=([^;]+)", cookie)
            if match:
                sid, cookie_auth = match.group(1), True
        if not sid and req.query.get("sid"):
            sid = req.query["sid"][-1].replace(" ", "+")
        if not sid:
            return None
        now = self.now()
        for s in self.sessions:
            if s is not None and s.valid_until >= now and hmac.compare_digest(s.sid, sid):
                # cookie sessions (the browser) must also send the CSRF token
                if cookie_auth and not hmac.compare_digest(req.headers.get("x-csrf-token", ""), s.csrf):
                    return None
                s.valid_until = now + self.session_timeout  # any use extends the session
                return s
        return None

    def _session_object(self, session: Session | None, message: str | None) -> dict[str, Any]:
        totp = bool(self.config["webserver"]["api"]["totp_secret"])
        if session is None:
            return {
                "session": {"valid": False, "totp": totp, "sid": None, "csrf": None, "validity": -1, "message": message}
            }
        return {
            "session": {
                "valid": True,
                "totp": totp,
                "sid": session.sid,
                "csrf": session.csrf,
                "validity": round(session.valid_until - self.now()),
                "message": message,
            }
        }

    @property
    def no_password(self) -> bool:
        return not self.config["webserver"]["api"]["pwhash"]

    # -- routing -------------------------------------------------------------------------------

    def handle(self, req: Request, auth_required: bool) -> Response:
        req.session = self._find_session(req)
        if auth_required and req.session is None and not self.no_password:
            return error(401, "unauthorized", "Unauthorized")
        route = (req.method, self._route_name(req.path))
        handler = {
            ("GET", "auth"): self.get_auth,
            ("POST", "auth"): self.post_auth,
            ("DELETE", "auth"): self.delete_auth,
            ("GET", "auth/sessions"): self.get_sessions,
            ("DELETE", "auth/session"): self.delete_session,
            ("GET", "auth/app"): self.get_app_password,
            ("GET", "config"): self.get_config,
            ("PATCH", "config"): self.patch_config,
            ("PUT", "config/item"): self.put_delete_item,
            ("DELETE", "config/item"): self.put_delete_item,
            ("POST", "action/restartdns"): self.restart_dns,
        }.get(route)
        if handler is None:
            return error(404, "not_found", "Not found", f"/api{req.path}")
        return handler(req)

    @staticmethod
    def _route_name(path: str) -> str:
        if path.startswith("/auth/session/"):
            return "auth/session"
        if path.startswith("/config/") and path.count("/") >= 3:
            return "config/item"
        if path.startswith("/config"):
            return "config"
        return path.strip("/")

    # -- /auth -----------------------------------------------------------------------------------

    def get_auth(self, req: Request) -> Response:
        if self.no_password:
            return 200, {
                "session": {
                    "valid": True,
                    "totp": False,
                    "sid": None,
                    "csrf": None,
                    "validity": -1,
                    "message": "no password set",
                }
            }
        if req.session is not None:
            return 200, self._session_object(req.session, None)
        return 401, self._session_object(None, "no valid session")

    def post_auth(self, req: Request) -> Response:  # noqa: PLR0911 - FTL answers each case differently
        if not isinstance(req.json, dict):
            return error(400, "bad_request", "No valid JSON payload found")
        if "password" not in req.json:
            return error(400, "bad_request", "No password found in JSON payload")
        password = req.json["password"]
        if not isinstance(password, str):
            return error(400, "bad_request", "Field password has to be of type 'string'")
        api = self.config["webserver"]["api"]
        if self.no_password:
            return 200, {
                "session": {
                    "valid": True,
                    "totp": False,
                    "sid": None,
                    "csrf": None,
                    "validity": -1,
                    "message": "no password set",
                }
            }
        app = bool(api["app_pwhash"]) and check_hash(api["app_pwhash"], password)
        if not app and not check_hash(api["pwhash"], password):
            return 401, self._session_object(None, "password incorrect")
        if api["totp_secret"] and not app and "totp" not in req.json:
            return error(400, "bad_request", "No 2FA token found in JSON payload")
        now = self.now()
        for index, seat in enumerate(self.sessions):
            if seat is not None and seat.valid_until < now:
                self.sessions[index] = None  # expired seats are reclaimed on login
            if self.sessions[index] is None:
                session = Session(
                    index,
                    _new_token(),
                    _new_token(),
                    now,
                    now + self.session_timeout,
                    req.remote_addr,
                    req.headers.get("user-agent"),
                    app,
                )
                self.sessions[index] = session
                self.issued += [session.sid, session.csrf]
                return 200, self._session_object(session, "app password correct" if app else "correct password")
        return error(429, "api_seats_exceeded", "API seats exceeded", "increase webserver.api.max_sessions")

    def delete_auth(self, req: Request) -> Response:
        if req.session is None:
            return 401, self._session_object(None, "no valid session")
        self.sessions[req.session.id] = None
        return 204, None

    def get_sessions(self, req: Request) -> Response:
        now = self.now()
        listed = [
            {
                "id": s.id,
                "current_session": s is req.session,
                "valid": s.valid_until >= now,
                "tls": {"login": False, "mixed": False},
                "app": s.app,
                "cli": False,
                "login_at": int(s.login_at),
                "last_active": int(s.valid_until - self.session_timeout),
                "valid_until": int(s.valid_until),
                "remote_addr": s.remote_addr,
                "user_agent": s.user_agent,
                "x_forwarded_for": None,
            }
            for s in self.sessions
            if s is not None
        ]
        return 200, {"sessions": listed}

    def delete_session(self, req: Request) -> Response:
        raw = req.path.rsplit("/", 1)[-1]
        if not raw.isdigit():
            return error(400, "bad_request", "Missing or invalid session ID")
        uid = int(raw)
        if uid >= len(self.sessions):
            return error(400, "bad_request", "Session ID out of bounds")
        if self.sessions[uid] is None:
            return error(400, "bad_request", "Session ID not in use")
        self.sessions[uid] = None
        return 204, None

    def get_app_password(self, req: Request) -> Response:
        password = base64.b64encode(secrets.token_bytes(32)).decode()
        pwhash = make_hash(password)
        self.app_passwords_issued[pwhash] = password
        return 200, {"app": {"password": password, "hash": pwhash}}

    # -- /config ---------------------------------------------------------------------------------

    def _config_view(self) -> dict[str, Any]:
        view = copy.deepcopy(self.config)
        for key in WRITE_ONLY:
            _set(view, key, PASSWORD_PLACEHOLDER)
        return view

    def get_config(self, req: Request) -> Response:
        view = self._config_view()
        element = req.path[len("/config") :].strip("/")
        if element:
            subset: dict[str, Any] = {}
            value = _get(view, element.replace("/", "."))
            if value is not None:
                node = subset
                parts = element.split("/")
                for part in parts[:-1]:
                    node = node.setdefault(part, {})
                node[parts[-1]] = value
            view = subset
        return 200, {"config": view}

    def _config_write_refused(self, req: Request) -> Response | None:
        if req.session is not None and req.session.app and not self.config["webserver"]["api"]["app_sudo"]:
            return error(
                403,
                "forbidden",
                "Unable to change configuration (read-only)",
                "The current app session is not allowed to modify Pi-hole config settings "
                "(webserver.api.app_sudo is false)",
            )
        if self.config["misc"]["readOnly"]:
            return error(403, "forbidden", "The config is currently in read-only mode")
        return None

    def _restart_wanted(self, req: Request) -> bool:
        return req.query.get("restart", ["true"])[-1] != "false"

    def patch_config(self, req: Request) -> Response:
        refused = self._config_write_refused(req)
        if refused:
            return refused
        body = req.json.get("config") if isinstance(req.json, dict) else None
        if not isinstance(body, dict):
            return error(400, "body_error", 'No "config" object in body data')
        new = copy.deepcopy(self.config)
        known = _leaves(self.config)
        changed: list[str] = []
        for key, value in _leaves(body).items():
            if key not in known:
                continue  # FTL only looks at the items it knows
            current = known[key]
            if key in WRITE_ONLY and value == PASSWORD_PLACEHOLDER:
                continue
            problem = _type_error(current, value)
            if problem:
                return error(400, "bad_request", "Config item is invalid", f"{key}: {problem}")
            if key != "webserver.api.password" and current == value:
                continue
            if key in VALIDATORS:
                failure = VALIDATORS[key](value)
                if failure:
                    return error(400, "bad_request", "Config item validation failed", failure)
            if key == "webserver.api.password":
                _set(new, "webserver.api.pwhash", make_hash(value) if value else "")
            else:
                _set(new, key, value)
            changed.append(key)
        if changed:  # applied as a whole, after every item passed
            self.config = new
            if any(k in INVALIDATES_SESSIONS for k in changed):
                self.delete_all_sessions()
            if any(k.startswith("dns.") for k in changed) and self._restart_wanted(req):
                self.restarts += 1
        return self.get_config(Request("GET", "/config", {}, {}, b"", req.remote_addr))

    def put_delete_item(self, req: Request) -> Response:
        refused = self._config_write_refused(req)
        if refused:
            return refused
        parts = req.path[len("/config/") :].split("/")
        value = unquote(parts[-1])
        key = ".".join(unquote(p) for p in parts[:-1])
        array = _get(self.config, key)
        if not isinstance(array, list):
            return 404, {}
        if req.method == "PUT":
            if value in array:
                return error(400, "bad_request", "Item already present", "Uniqueness of items is enforced")
            candidate = [*array, value]
            failure = VALIDATORS.get(key, lambda _items: None)(candidate)
            if failure:
                return error(400, "bad_request", "Invalid value", failure)
            _set(self.config, key, candidate)
            status: int = 201
            body: Any = {}
        else:
            if value not in array:
                return 404, {}
            candidate = list(array)
            candidate.remove(value)
            _set(self.config, key, candidate)
            status, body = 204, None
        if key.startswith("dns.") and self._restart_wanted(req):
            self.restarts += 1
        return status, body

    def restart_dns(self, req: Request) -> Response:
        self.restarts += 1
        return 200, {"status": "success"}

    # -- test helpers ----------------------------------------------------------------------------

    @property
    def hosts(self) -> list[str]:
        return list(self.config["dns"]["hosts"])

    @property
    def cnames(self) -> list[str]:
        return list(self.config["dns"]["cnameRecords"])

    def set_records(self, hosts: list[str] | None = None, cnames: list[str] | None = None) -> None:
        if hosts is not None:
            self.config["dns"]["hosts"] = list(hosts)
        if cnames is not None:
            self.config["dns"]["cnameRecords"] = list(cnames)

    def set_app_password(self, password: str, sudo: bool = False) -> None:
        self.config["webserver"]["api"]["app_pwhash"] = make_hash(password)
        self.config["webserver"]["api"]["app_sudo"] = sudo
        self.delete_all_sessions()
