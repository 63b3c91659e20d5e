"""A minimal HTTP client for tests that need exact requests (content types, headers, raw bodies)."""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from typing import Any

from .server import KubeAPIServer


@dataclass
class Response:
    status: int
    body: Any
    headers: http.client.HTTPMessage

    @property
    def warnings(self) -> list[str]:
        """Warning header texts (``299 - "text"`` decoded to ``text``)."""
        out = []
        for header in self.headers.get_all("Warning") or []:
            _code, _agent, text = header.split(" ", 2)
            out.append(json.loads(text))
        return out


def connection(server: KubeAPIServer, timeout: float = 10) -> http.client.HTTPConnection:
    if server.tls:
        context = ssl.create_default_context(cafile=str(server.ca_path))
        return http.client.HTTPSConnection(server.host, server.port, context=context, timeout=timeout)
    return http.client.HTTPConnection(server.host, server.port, timeout=timeout)


def request(
    server: KubeAPIServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    token: str | None = None,
    timeout: float = 10,
) -> Response:
    conn = connection(server, timeout)
    headers = {"Accept": "application/json", "Authorization": f"Bearer {token or server.token}"}
    data: bytes | None = None
    if body is not None:
        data = (
            body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        )
        headers["Content-Type"] = content_type
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        parsed: Any = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Response(resp.status, parsed, resp.headers)


def watch_lines(
    server: KubeAPIServer, path: str, count: int | None = None, timeout: float = 10
) -> list[dict[str, Any]]:
    """GET a watch URL and return its decoded events: all of them until the server ends the stream
    (``timeoutSeconds``), or the first ``count``."""
    conn = connection(server, timeout)
    events: list[dict[str, Any]] = []
    try:
        conn.request("GET", path, headers={"Accept": "application/json", "Authorization": f"Bearer {server.token}"})
        resp = conn.getresponse()
        if resp.status != 200:
            return [json.loads(resp.read())]
        while count is None or len(events) < count:
            line = resp.readline()
            if not line:
                break
            if line.strip():
                events.append(json.loads(line))
    finally:
        conn.close()
    return events
