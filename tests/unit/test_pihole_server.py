"""The test Pi-hole itself: FTL's answers and the spec checks (so tests built on it can be trusted)."""

from __future__ import annotations

import json
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from lab.pihole import PiholeServer


def call(
    server: PiholeServer, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = Request(server.url + "/api" + path, data=data, method=method, headers=headers or {})  # noqa: S310
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback test server
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def login(server: PiholeServer) -> dict[str, Any]:
    status, body = call(server, "POST", "/auth", {"password": server.password})
    assert status == 200
    return body["session"]


def logout(server: PiholeServer, sid: str) -> None:
    assert call(server, "DELETE", "/auth", headers={"X-FTL-SID": sid})[0] == 204


def test_session_sources_and_csrf(pihole: PiholeServer) -> None:
    session = login(pihole)
    sid, csrf = session["sid"], session["csrf"]
    assert session["validity"] == 1800 and session["message"] == "correct password"
    assert call(pihole, "GET", "/config/dns")[0] == 401
    assert call(pihole, "GET", "/config/dns", headers={"sid": sid})[0] == 200
    assert call(pihole, "GET", f"/config/dns?sid={sid.replace('+', '%2B')}")[0] == 200
    assert call(pihole, "GET", "/config/dns", headers={"Cookie": f"sid={sid}"})[0] == 401  # cookie needs CSRF
    assert call(pihole, "GET", "/config/dns", headers={"Cookie": f"sid={sid}", "X-CSRF-TOKEN": csrf})[0] == 200
    logout(pihole, sid)
    assert call(pihole, "GET", "/config/dns", headers={"X-FTL-SID": sid})[0] == 401


def test_sixteen_seats_then_429(pihole: PiholeServer) -> None:
    sids = [login(pihole)["sid"] for _seat in range(16)]
    status, body = call(pihole, "POST", "/auth", {"password": pihole.password})
    assert status == 429
    assert body["error"] == {
        "key": "api_seats_exceeded",
        "message": "API seats exceeded",
        "hint": "increase webserver.api.max_sessions",
    }
    pihole.ftl.time_offset = 1801  # sessions time out after 1800 s without use; their seats are reclaimed
    assert pihole.open_sessions == 0
    logout(pihole, login(pihole)["sid"])
    assert len(set(sids)) == 16


def test_ftl_error_bodies(pihole: PiholeServer) -> None:
    sid = login(pihole)["sid"]
    auth = {"X-FTL-SID": sid}
    assert call(pihole, "PUT", "/config/dns/hosts/10.0.0.1%20a.lab", headers=auth)[0] == 201
    status, body = call(pihole, "PUT", "/config/dns/hosts/10.0.0.1%20a.lab", headers=auth)
    assert (status, body["error"]["message"], body["error"]["hint"]) == (
        400,
        "Item already present",
        "Uniqueness of items is enforced",
    )
    status, body = call(pihole, "PUT", "/config/dns/hosts/10.0.0.300%20b.lab", headers=auth)
    assert status == 400 and body["error"]["message"] == "Invalid value"
    assert body["error"]["hint"] == 'dns.hosts[1]: neither a valid IPv4 nor IPv6 address ("10.0.0.300")'
    status, body = call(pihole, "DELETE", "/config/dns/hosts/10.0.0.9%20zzz.lab", headers=auth)
    assert status == 404 and set(body) == {"took"}
    status, body = call(pihole, "PUT", "/config/dns/cnameRecords/only-one", headers=auth)
    assert status == 400 and "too few elements" in body["error"]["hint"]
    wrong = call(pihole, "POST", "/auth", {"password": "nope"})
    assert wrong[0] == 401 and wrong[1]["session"]["valid"] is False
    assert pihole.ftl.hosts == ["10.0.0.1 a.lab"]
    logout(pihole, sid)


def test_requests_outside_the_spec_are_recorded(pihole: PiholeServer) -> None:
    sid = login(pihole)["sid"]
    call(pihole, "GET", "/config/dns?verbose=1", headers={"X-FTL-SID": sid})
    call(pihole, "PUT", "/config/dns/hosts/10.0.0.2%20c.lab?restart=maybe", headers={"X-FTL-SID": sid})
    call(pihole, "POST", "/auth", {"password": 12345})
    assert len(pihole.violations) == 3
    assert "verbose" in pihole.violations[0] and "restart" in pihole.violations[1]
    assert "password" in pihole.violations[2]
    pihole.violations.clear()  # expected here; the fixture fails on any left over
    logout(pihole, sid)


def test_app_password_created_through_the_api(pihole: PiholeServer) -> None:
    sid = login(pihole)["sid"]
    status, body = call(pihole, "GET", "/auth/app", headers={"X-FTL-SID": sid})
    assert status == 200
    app = body["app"]
    status, _body = call(
        pihole,
        "PATCH",
        "/config",
        {"config": {"webserver": {"api": {"app_pwhash": app["hash"]}}}},
        headers={"X-FTL-SID": sid},
    )
    assert status == 200 and pihole.open_sessions == 0  # a new app password ends all sessions
    app_session = call(pihole, "POST", "/auth", {"password": app["password"]})[1]["session"]
    assert app_session["message"] == "app password correct"
    status, body = call(pihole, "PUT", "/config/dns/hosts/10.0.0.3%20d.lab", headers={"X-FTL-SID": app_session["sid"]})
    assert status == 403 and "app_sudo" in body["error"]["hint"]
    logout(pihole, app_session["sid"])
