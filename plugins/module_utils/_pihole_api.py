# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small Pi-hole v6 (FTL) REST API client: one session, retries, re-login on 401.

Internal to homelab.pi_cluster: names here may change without notice.

Only the standard library and ``ansible.module_utils.urls`` are used, so the module runs
on any controller or host without extra Python packages. The session ID and CSRF token
live only in this object: they are sent in the ``X-FTL-SID`` header (never in a URL) and
never appear in an exception message.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode

from ansible.module_utils.urls import open_url

from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_records import PiholeError

# The client's HTTP options as module arguments (documented by the homelab.pi_cluster.pihole.http
# doc fragment); modules deep-copy them into their own argument spec.
HTTP_OPTIONS_SPEC: Dict[str, Dict[str, Any]] = {
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "timeout": {"type": "float", "default": 10.0},
    "retries": {"type": "int", "default": 3},
}

# HTTP statuses worth another try: FTL rate limiting / seats (429) and server-side trouble.
RETRY_STATUSES = (429, 500, 502, 503, 504)


class PiholeApiError(PiholeError):
    """The API answered with an error: ``status`` plus FTL's ``{"error": {key, message, hint}}``."""

    def __init__(self, status: int, key: str, message: str, hint: Optional[str], what: str) -> None:
        text = f"{what}: HTTP {status}"
        if key or message:
            text += f" {key}: {message}".rstrip(": ")
        if hint:
            text += f" (hint: {hint})"
        super().__init__(text)
        self.status, self.key, self.message, self.hint = status, key, message, hint


class PiholeAuthError(PiholeApiError):
    """Login refused or session lost twice."""


class PiholeForbiddenError(PiholeApiError):
    """403: typically an app-password session without ``webserver.api.app_sudo``."""


class PiholeConnectionError(PiholeError):
    """The server could not be reached (after retries)."""


def _error_fields(body: Any) -> Tuple[str, str, Optional[str]]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return str(err.get("key") or ""), str(err.get("message") or ""), err.get("hint")
    if isinstance(body, dict) and isinstance(body.get("session"), dict):
        return "unauthorized", str(body["session"].get("message") or "password incorrect"), None
    return "", "", None


class PiholeClient:
    """One Pi-hole server: ``login()``, ``request()``, ``logout()``; counts the requests it sends."""

    def __init__(
        self,
        url: str,
        password: Optional[str],
        *,
        validate_certs: bool = True,
        ca_path: Optional[str] = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base = url.rstrip("/")
        if not self.base.endswith("/api"):
            self.base += "/api"
        self._password = password
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._sid: Optional[str] = None
        self._csrf: Optional[str] = None
        self.logged_in = False
        self.requests_sent = 0
        self.sessions_opened = 0
        self.relogins = 0
        self.writes = 0  # successful non-GET requests besides login/logout

    # -- transport --------------------------------------------------------------------------

    def _send(self, method: str, path: str, query: Optional[Dict[str, str]], body: Any) -> Tuple[int, Any]:
        """One HTTP exchange. Returns (status, parsed JSON or None); raises on transport errors."""
        url = self.base + path + ("?" + urlencode(query) if query else "")
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self._sid:
            headers["X-FTL-SID"] = self._sid
        self.requests_sent += 1
        try:
            resp = open_url(
                url,
                data=data,
                headers=headers,
                method=method,
                validate_certs=self.validate_certs,
                ca_path=self.ca_path,
                timeout=self.timeout,
                follow_redirects="none",
                use_proxy=False,
            )
            status, raw = resp.getcode(), resp.read()
        except HTTPError as exc:
            status, raw = exc.code, exc.read() if exc.fp else b""
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None

    def _send_with_retries(
        self, method: str, path: str, query: Optional[Dict[str, str]], body: Any, what: str
    ) -> Tuple[int, Any]:
        attempt = 0
        while True:
            try:
                status, parsed = self._send(method, path, query, body)
            except (URLError, ConnectionError, http.client.HTTPException, socket.timeout, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, ssl.SSLError):  # a certificate problem does not go away by retrying
                    raise PiholeConnectionError(
                        f"{what}: TLS error with {self.base}: {reason} (set ca_path to the CA that signed the "
                        "server certificate, or validate_certs=false)"
                    ) from None
                if attempt >= self.retries:
                    raise PiholeConnectionError(
                        f"{what}: cannot reach {self.base} after {attempt + 1} attempt(s): {reason}"
                    ) from None
            else:
                if status not in RETRY_STATUSES or attempt >= self.retries:
                    return status, parsed
            attempt += 1
            self._sleep(self.backoff * (2 ** (attempt - 1)))

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Dict[str, str]] = None,
        body: Any = None,
        what: str = "request",
        ok: Tuple[int, ...] = (200, 201, 204),
    ) -> Tuple[int, Any]:
        """Send an authenticated request; a 401 (expired session) triggers exactly one re-login."""
        status, parsed = self._send_with_retries(method, path, query, body, what)
        if status == 401 and self.logged_in and self.relogins == 0:
            self.relogins += 1
            self.logged_in, self._sid, self._csrf = False, None, None
            self.login()
            status, parsed = self._send_with_retries(method, path, query, body, what)
        if status in ok:
            if method != "GET":
                self.writes += 1
            return status, parsed
        key, message, hint = _error_fields(parsed)
        if status == 401:
            raise PiholeAuthError(status, key, message, hint, what)
        if status == 403:
            raise PiholeForbiddenError(status, key, message, hint, what)
        raise PiholeApiError(status, key, message, hint, what)

    # -- session ----------------------------------------------------------------------------

    def login(self) -> None:
        """POST /api/auth. Works with the admin password or an app password (no 2FA needed)."""
        status, parsed = self._send_with_retries("POST", "/auth", None, {"password": self._password or ""}, "login")
        session = parsed.get("session") if isinstance(parsed, dict) else None
        if status == 200 and isinstance(session, dict) and session.get("valid"):
            self._sid = session.get("sid") or None  # None: this Pi-hole has no password set
            self._csrf = session.get("csrf") or None
            self.logged_in = self._sid is not None
            self.sessions_opened += int(self.logged_in)
            return
        key, message, hint = _error_fields(parsed)
        if status == 400 and "2FA" in message:
            hint = "2FA is enabled on this Pi-hole: use an app password (it needs no TOTP code)"
        if status == 429:
            raise PiholeApiError(status, key, message, hint, "login (no free API session)")
        raise PiholeAuthError(status, key, message or "password incorrect", hint, "login")

    def logout(self) -> None:
        """DELETE /api/auth; frees the session seat. Never raises: it runs in ``finally``."""
        if not self.logged_in:
            return
        try:
            self._send_with_retries("DELETE", "/auth", None, None, "logout")
        except PiholeError:
            pass
        finally:
            self.logged_in, self._sid, self._csrf = False, None, None

    # -- local DNS --------------------------------------------------------------------------

    def read_records(self) -> Tuple[List[str], List[str]]:
        """GET /api/config/dns once: (dns.hosts, dns.cnameRecords)."""
        _status, parsed = self.request("GET", "/config/dns", what="read dns config")
        try:
            dns = parsed["config"]["dns"]
            return list(dns.get("hosts") or []), list(dns.get("cnameRecords") or [])
        except (KeyError, TypeError):
            raise PiholeApiError(200, "", "unexpected answer (no config.dns object)", None, "read dns config") from None

    def patch_arrays(self, hosts: Optional[List[str]], cnames: Optional[List[str]]) -> None:
        """Replace the arrays in one PATCH /api/config: FTL validates and applies it as a whole."""
        dns: Dict[str, Any] = {}
        if hosts is not None:
            dns["hosts"] = hosts
        if cnames is not None:
            dns["cnameRecords"] = cnames
        if dns:
            self.request("PATCH", "/config", body={"config": {"dns": dns}}, what="write dns config")

    def put_or_delete_item(self, method: str, array: str, entry: str, restart: bool) -> bool:
        """PUT/DELETE /api/config/dns/<array>/<entry>. Returns False for FTL's idempotent outcomes."""
        path = f"/config/dns/{array}/{quote(entry, safe='')}"
        query = None if restart else {"restart": "false"}
        what = f"{'add' if method == 'PUT' else 'remove'} {array} entry {entry!r}"
        try:
            self.request(method, path, query=query, what=what)
            return True
        except PiholeApiError as exc:
            if method == "PUT" and exc.status == 400 and exc.message == "Item already present":
                return False
            if method == "DELETE" and exc.status == 404:
                return False
            raise

    def restart_dns(self) -> None:
        self.request("POST", "/action/restartdns", what="restart DNS")

    def probe(self) -> Optional[bool]:
        """GET /api/auth without a session: True for an FTL v6 API, False for 404, None if unreachable."""
        try:
            status, parsed = self._send("GET", "/auth", None, None)
        except (URLError, ConnectionError, http.client.HTTPException, socket.timeout, OSError):
            return None
        if status in (200, 401) and isinstance(parsed, dict) and "session" in parsed:
            return True
        return False if status == 404 else None
