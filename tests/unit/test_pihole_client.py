"""Unit tests: the v6 client and per-server sync against the spec-validating test server (in process)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from lab.pihole import PiholeServer

from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_api import (
    PiholeApiError,
    PiholeAuthError,
    PiholeClient,
    PiholeConnectionError,
)
from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_dns import (
    DnsSync,
    ServerSpec,
    failure_message,
    servers_from_params,
)
from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_records import (
    PiholeInputError,
    parse_records,
)
from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_v5 import atomic_write


def client(server: PiholeServer, password: str | None = None, retries: int = 2) -> PiholeClient:
    return PiholeClient(server.url, password or server.password, retries=retries, backoff=0.01)


def sync(records: list[dict], *, check: bool = False, mode: str = "batch", **options) -> DnsSync:
    state = options.pop("state", "present")
    return DnsSync(parse_records(records, state, **options), check, write_mode=mode, retries=1)


def spec(server: PiholeServer) -> ServerSpec:
    return ServerSpec(server.name, server.url, server.password)


def test_wrong_password_is_an_auth_error(pihole: PiholeServer) -> None:
    with pytest.raises(PiholeAuthError, match="password incorrect"):
        client(pihole, "wrong").login()
    assert pihole.open_sessions == 0


def test_seats_exhausted_is_reported_after_retries(pihole_factory) -> None:
    server = pihole_factory("small", max_sessions=1)
    holder = client(server)
    holder.login()
    try:
        with pytest.raises(PiholeApiError, match="api_seats_exceeded") as caught:
            client(server, retries=1).login()
        assert caught.value.status == 429
        assert server.count("POST", "^/auth") == 3  # holder + first try + one retry
    finally:
        holder.logout()


def test_retry_on_5xx_and_connection_reset(pihole: PiholeServer) -> None:
    pihole.inject(503, method="GET", path="^/config/dns")
    pihole.inject("reset", method="GET", path="^/config/dns")
    c = client(pihole)
    c.login()
    try:
        assert c.read_records() == ([], [])
    finally:
        c.logout()
    assert pihole.count("GET", "^/config/dns") == 3


def test_expired_session_is_reopened_exactly_once(pihole: PiholeServer) -> None:
    c = client(pihole)
    c.login()
    pihole.ftl.expire_sessions()
    c.read_records()
    assert c.relogins == 1
    pihole.ftl.expire_sessions()
    with pytest.raises(PiholeAuthError):
        c.read_records()
    c.logout()


def test_unreachable_server(pihole: PiholeServer) -> None:
    pihole.stop()
    with pytest.raises(PiholeConnectionError, match="cannot reach"):
        client(pihole, retries=1).login()


@pytest.mark.parametrize("mode", ["batch", "per_item"])
def test_sync_writes_then_is_idempotent(pihole: PiholeServer, mode: str) -> None:
    records = [{"name": "grafana.lab", "ip": "10.0.0.5"}, {"name": "www.lab", "target": "grafana.lab"}]
    first = sync(records, mode=mode).sync_v6(spec(pihole))
    assert first.changed and not first.failed, first.msg
    assert pihole.ftl.hosts == ["10.0.0.5 grafana.lab"]
    assert pihole.ftl.cnames == ["www.lab,grafana.lab"]
    assert pihole.ftl.restarts == 1  # one resolver restart for the whole change
    pihole.reset_log()
    second = sync(records, mode=mode).sync_v6(spec(pihole))
    assert not second.changed
    assert [f"{r.method} {r.path}" for r in pihole.requests] == ["POST /auth", "GET /config/dns", "DELETE /auth"]


def test_per_item_uses_restart_false_until_the_last_write(pihole: PiholeServer) -> None:
    pihole.ftl.set_records(hosts=["10.0.0.1 old.lab"])
    records = [{"name": f"h{i}.lab", "ip": f"10.0.0.{10 + i}"} for i in range(3)]
    result = sync(records, mode="per_item", exclusive=True, domain="lab").sync_v6(spec(pihole))
    assert result.changed, result.msg
    writes = [r.path for r in pihole.requests if r.method in ("PUT", "DELETE") and r.path.startswith("/config")]
    assert len(writes) == 4
    assert all(w.endswith("?restart=false") for w in writes[:-1])
    assert "restart" not in writes[-1]
    assert pihole.ftl.restarts == 1


def test_check_mode_reads_only(pihole: PiholeServer) -> None:
    result = sync([{"name": "a.lab", "ip": "10.0.0.1"}], check=True).sync_v6(spec(pihole))
    assert result.changed
    assert pihole.ftl.hosts == []
    assert [r.method for r in pihole.requests] == ["POST", "GET", "DELETE"]


def test_app_password_without_app_sudo_is_refused(pihole: PiholeServer) -> None:
    pihole.ftl.set_app_password("app-secret-for-test", sudo=False)
    server = ServerSpec("p", pihole.url, "app-secret-for-test")
    result = sync([{"name": "a.lab", "ip": "10.0.0.1"}]).sync_v6(server)
    assert result.failed
    assert "403" in result.msg and "app_sudo" in result.msg
    pihole.ftl.config["webserver"]["api"]["app_sudo"] = True
    assert not sync([{"name": "a.lab", "ip": "10.0.0.1"}]).sync_v6(server).failed


def test_password_change_ends_every_session(pihole: PiholeServer) -> None:
    c = client(pihole)
    c.login()
    other = client(pihole)
    other.login()
    assert pihole.open_sessions == 2
    c.request("PATCH", "/config", body={"config": {"webserver": {"api": {"password": "n3w-Passw0rd"}}}})
    assert pihole.open_sessions == 0
    with pytest.raises(PiholeAuthError):
        client(pihole).login()
    fresh = client(pihole, "n3w-Passw0rd")
    fresh.login()
    fresh.logout()
    c.logged_in = other.logged_in = False  # their sessions are gone already


def test_failure_message_names_server_and_missing_records(pihole_pair) -> None:
    primary, secondary = pihole_pair
    secondary.stop()
    desired = parse_records([{"name": "a.lab", "ip": "10.0.0.1"}], "present")
    worker = DnsSync(desired, False, retries=0)
    results = [worker.sync_v6(spec(primary)), worker.sync_v6(spec(secondary))]
    assert not results[0].failed and results[1].failed
    message = failure_message(results, desired)
    assert "secondary" in message and "ensure A a.lab 10.0.0.1" in message and "written: primary" in message


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"servers": []}, "servers"),
        ({"servers": [{"url": "ftp://x", "password": "p"}]}, "servers[0].url"),
        ({"servers": [{"url": "http://", "password": "p"}]}, "servers[0].url"),
        ({"servers": [{"url": "http://h:99999", "password": "p"}]}, "servers[0].url"),
        ({"servers": [{"url": "http://h"}]}, "servers[0].password"),
        ({"server": "http://h"}, "password"),
        (
            {
                "servers": [
                    {"url": "http://a", "password": "p", "name": "x"},
                    {"url": "http://b", "password": "p", "name": "x"},
                ]
            },
            "servers",
        ),
        ({"servers": [{"url": "https://a", "password": "p", "ca_path": "/nonexistent/ca.pem"}]}, "servers[0].ca_path"),
    ],
)
def test_server_input_errors(params: dict, field: str) -> None:
    with pytest.raises(PiholeInputError) as caught:
        servers_from_params(params)
    assert caught.value.field == field


def test_atomic_write_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "custom.list"
    target.write_text("old\n")
    target.chmod(0o640)
    atomic_write(str(target), ["10.0.0.1 a.lab"])
    assert target.read_text() == "10.0.0.1 a.lab\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["custom.list"]  # no temporary file left
