"""Integration tests: homelab.pi_cluster.pihole_dns through ansible-playbook -vvv.

v6: against the spec-validating test Pi-hole servers (lab.pihole); the fixture fails any
test that leaves an API session open or sends a request the spec does not allow.
v5: a real dnsmasq serving the files the module writes, queried with dig.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from lab.pihole import PiholeServer
from lab.pihole.dnsmasq import Dnsmasq
from lab.playbook import PlaybookRun, assert_no_secrets, four_runs, run_playbook, write_playbook

# The module needs only the standard library: run it with the system Python. (The runner's
# "auto_silent" discovery can pick a pyenv shim of a Python that is not installed.)
ENV = {"ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable}
TASK = "pihole dns"
MODULE = "homelab.pi_cluster.pihole_dns"


def server_list(servers: list[PiholeServer]) -> list[dict[str, Any]]:
    # passwords come from variables (a vault in real use), never literally in the task
    return [{"name": s.name, "url": s.url, "password": f"{{{{ pihole_password_{s.name} }}}}"} for s in servers]


def password_vars(servers: list[PiholeServer]) -> dict[str, str]:
    return {f"pihole_password_{s.name}": s.password or "" for s in servers}


def pihole_task(servers: list[PiholeServer], *, task_name: str = TASK, **options: Any) -> dict[str, Any]:
    args = {"servers": server_list(servers), "retries": 1, "timeout": 5, **options}
    return {"name": task_name, MODULE: args}


def playbook(tmp_path: Path, *tasks: dict[str, Any], name: str = "playbook.yml") -> Path:
    return write_playbook(tmp_path, list(tasks), name=name)


def run_four(tmp_path: Path, servers: list[PiholeServer], **options: Any) -> list[PlaybookRun]:
    path = playbook(tmp_path, pihole_task(servers, **options))
    runs = four_runs(path, TASK, extra_vars=password_vars(servers), env=ENV)
    for run in runs:
        assert_no_secrets(run.output, [secret for s in servers for secret in s.secrets])
    return runs


def test_add_on_both_servers(tmp_path: Path, pihole_pair: tuple[PiholeServer, PiholeServer]) -> None:
    servers = list(pihole_pair)
    records = [
        {"name": "Grafana.Lab.Example", "ip": "192.168.1.240"},
        {"name": "grafana.lab.example", "ip": "fd00::f0"},
    ]
    runs = run_four(tmp_path, servers, records=records)
    for server in servers:
        assert server.ftl.hosts == ["192.168.1.240 grafana.lab.example", "fd00::f0 grafana.lab.example"]
        assert server.ftl.restarts == 1
    check = runs[0].task(TASK).result
    assert [d["before_header"] for d in check["diff"]] == [f"{s.name} ({s.url})" for s in servers]
    assert "192.168.1.240 grafana.lab.example" in check["diff"][0]["after"]
    assert check["added"] == ["A grafana.lab.example 192.168.1.240", "AAAA grafana.lab.example fd00::f0"]
    # no-op re-sync: login, one read, logout per server
    last = runs[3].task(TASK).result
    assert [p["requests"] for p in last["per_server"]] == [3, 3]
    assert all(p["sessions"] == 1 for p in last["per_server"])


@pytest.mark.parametrize("write_mode", ["batch", "per_item"])
def test_change_ip(tmp_path: Path, pihole: PiholeServer, write_mode: str) -> None:
    pihole.ftl.set_records(hosts=["192.168.1.10 grafana.lab.example", "192.168.1.11 keep.lab.example"])
    runs = run_four(tmp_path, [pihole], name="grafana.lab.example", ip="192.168.1.240", write_mode=write_mode)
    assert pihole.ftl.hosts == ["192.168.1.11 keep.lab.example", "192.168.1.240 grafana.lab.example"]
    assert runs[1].task(TASK).result["removed"] == ["A grafana.lab.example 192.168.1.10"]
    if write_mode == "per_item":
        writes = pihole.requests_matching(path="^/config/dns/hosts/")
        assert [w.path for w in writes] == [
            "/config/dns/hosts/192.168.1.240%20grafana.lab.example?restart=false",
            "/config/dns/hosts/192.168.1.10%20grafana.lab.example",
        ]


def test_remove(tmp_path: Path, pihole_pair: tuple[PiholeServer, PiholeServer]) -> None:
    for server in pihole_pair:
        server.ftl.set_records(
            hosts=["192.168.1.5 old.lab.example", "192.168.1.6 keep.lab.example"],
            cnames=["www.old.lab.example,old.lab.example"],
        )
    run_four(
        tmp_path,
        list(pihole_pair),
        records=[{"name": "old.lab.example"}, {"name": "www.old.lab.example"}],
        state="absent",
    )
    for server in pihole_pair:
        assert server.ftl.hosts == ["192.168.1.6 keep.lab.example"]
        assert server.ftl.cnames == []


def test_exclusive_purge_stays_inside_the_domain(tmp_path: Path, pihole: PiholeServer) -> None:
    outside = ["192.168.1.50 printer.home", "192.168.1.51 notlab.example"]
    pihole.ftl.set_records(
        hosts=["192.168.1.9 stale.lab.example", *outside],
        cnames=["old.lab.example,stale.lab.example", "nas.home,printer.home"],
    )
    records = [{"name": "grafana.lab.example", "ip": "192.168.1.240"}]
    runs = run_four(tmp_path, [pihole], records=records, exclusive=True, domain="lab.example")
    assert pihole.ftl.hosts == [*outside, "192.168.1.240 grafana.lab.example"]
    assert pihole.ftl.cnames == ["nas.home,printer.home"]
    assert sorted(runs[1].task(TASK).result["removed"]) == [
        "A stale.lab.example 192.168.1.9",
        "CNAME old.lab.example -> stale.lab.example",
    ]


@pytest.mark.parametrize("write_mode", ["batch", "per_item"])
def test_cname(tmp_path: Path, pihole: PiholeServer, write_mode: str) -> None:
    pihole.ftl.set_records(hosts=["192.168.1.240 grafana.lab.example"], cnames=["www.lab.example,old.lab.example"])
    records = [
        {"name": "www.lab.example", "target": "grafana.lab.example", "ttl": 300},
        {"name": "*.apps.lab.example", "target": "grafana.lab.example"},
    ]
    run_four(tmp_path, [pihole], records=records, write_mode=write_mode)
    assert pihole.ftl.cnames == ["www.lab.example,grafana.lab.example,300", "*.apps.lab.example,grafana.lab.example"]


def test_ha_secondary_down_then_converges(tmp_path: Path, pihole_pair: tuple[PiholeServer, PiholeServer]) -> None:
    primary, secondary = pihole_pair
    secondary.stop()
    path = playbook(tmp_path, pihole_task([primary, secondary], records=[{"name": "a.lab.example", "ip": "10.1.1.1"}]))
    run = run_playbook(path, env=ENV, extra_vars=password_vars([primary, secondary]))
    assert run.rc != 0
    result = run.task(TASK)
    assert result.failed
    msg = result.result["msg"]
    assert f"secondary ({secondary.url})" in msg and "ensure A a.lab.example 10.1.1.1" in msg
    assert "written: primary" in msg and "primary (" not in msg
    assert primary.ftl.hosts == ["10.1.1.1 a.lab.example"]
    per_server = {p["name"]: p for p in result.result["per_server"]}
    assert per_server["primary"]["changed"] and not per_server["primary"]["failed"]
    assert per_server["secondary"]["failed"] and per_server["secondary"]["sessions"] == 0
    assert per_server["primary"]["sessions"] == 1 and per_server["primary"]["requests"] == 4

    secondary.start()
    again = run_playbook(path, env=ENV, extra_vars=password_vars([primary, secondary]))
    assert again.rc == 0, again.output[-3000:]
    per_server = {p["name"]: p for p in again.task(TASK).result["per_server"]}
    assert not per_server["primary"]["changed"] and per_server["secondary"]["changed"]
    assert secondary.ftl.hosts == ["10.1.1.1 a.lab.example"]
    final = run_playbook(path, env=ENV, extra_vars=password_vars([primary, secondary]))
    assert final.rc == 0 and not final.task(TASK).changed
    for r in (run, again, final):
        assert_no_secrets(r.output, primary.secrets + secondary.secrets)


def test_expired_session_is_reopened_once(tmp_path: Path, pihole: PiholeServer) -> None:
    pihole.inject("expire_sessions", method="PATCH", path="^/config")
    path = playbook(tmp_path, pihole_task([pihole], name="a.lab.example", ip="10.1.1.1"))
    run = run_playbook(path, env=ENV, extra_vars=password_vars([pihole]))
    assert run.rc == 0, run.output[-3000:]
    assert pihole.ftl.hosts == ["10.1.1.1 a.lab.example"]
    assert run.task(TASK).result["per_server"][0]["sessions"] == 2
    assert [f"{r.method} {r.path} {r.status}" for r in pihole.requests] == [
        "POST /auth 200",
        "GET /config/dns 200",
        "PATCH /config 401",
        "POST /auth 200",
        "PATCH /config 200",
        "DELETE /auth 204",
    ]
    assert_no_secrets(run.output, pihole.secrets)


def test_session_closed_when_the_write_fails(tmp_path: Path, pihole: PiholeServer) -> None:
    pihole.inject(500, method="PATCH", path="^/config", times=5)
    path = playbook(tmp_path, pihole_task([pihole], name="a.lab.example", ip="10.1.1.1"))
    run = run_playbook(path, env=ENV, extra_vars=password_vars([pihole]))
    assert run.rc != 0
    assert "HTTP 500" in run.task(TASK).result["msg"]
    assert pihole.count("DELETE", "^/auth$") == 1
    assert pihole.ftl.hosts == []
    assert_no_secrets(run.output, pihole.secrets)


def test_app_password_needs_app_sudo(tmp_path: Path, pihole: PiholeServer) -> None:
    app_password = "app-" + (pihole.password or "")[::-1]
    pihole.ftl.set_app_password(app_password, sudo=False)
    task = {
        "name": TASK,
        MODULE: {
            "server": pihole.url,
            "password": "{{ app_pw }}",
            "name": "a.lab.example",
            "ip": "10.1.1.1",
            "retries": 0,
        },
    }
    path = playbook(tmp_path, task)
    check = run_playbook(path, env=ENV, extra_vars={"app_pw": app_password}, check=True)
    assert check.rc == 0 and check.task(TASK).changed  # reading is allowed
    run = run_playbook(path, env=ENV, extra_vars={"app_pw": app_password})
    assert run.rc != 0
    assert "403" in run.task(TASK).result["msg"] and "app_sudo" in run.task(TASK).result["msg"]
    pihole.ftl.config["webserver"]["api"]["app_sudo"] = True
    assert run_playbook(path, env=ENV, extra_vars={"app_pw": app_password}).rc == 0
    assert pihole.ftl.hosts == ["10.1.1.1 a.lab.example"]
    assert_no_secrets(check.output + run.output, [app_password, *pihole.secrets])


def test_auto_detects_v6(tmp_path: Path, pihole: PiholeServer) -> None:
    path = playbook(tmp_path, pihole_task([pihole], name="a.lab.example", ip="10.1.1.1", api_version="auto"))
    run = run_playbook(path, env=ENV, extra_vars=password_vars([pihole]))
    assert run.rc == 0, run.output[-3000:]
    assert run.task(TASK).result["per_server"][0]["api_version"] == 6
    assert_no_secrets(run.output, pihole.secrets)


def test_https_certificate_checks(tmp_path: Path, pihole_tls: tuple[PiholeServer, Path]) -> None:
    server, cert = pihole_tls
    tasks = [
        pihole_task([server], task_name="untrusted", name="a.lab.example", ip="10.1.1.1") | {"ignore_errors": True},
        pihole_task([server], task_name="with ca_path", name="a.lab.example", ip="10.1.1.1", ca_path=str(cert)),
        pihole_task([server], task_name="no validation", name="b.lab.example", ip="10.1.1.2", validate_certs=False),
    ]
    run = run_playbook(playbook(tmp_path, *tasks), env=ENV, extra_vars=password_vars([server]))
    untrusted = run.task("untrusted")
    assert untrusted.failed and "TLS error" in untrusted.result["msg"] and "ca_path" in untrusted.result["msg"]
    assert run.task("with ca_path").changed and run.task("no validation").changed
    assert server.ftl.hosts == ["10.1.1.1 a.lab.example", "10.1.1.2 b.lab.example"]
    assert_no_secrets(run.output, server.secrets)


BAD_INPUTS: list[tuple[dict[str, Any], str]] = [
    ({"name": "a.lab", "ip": "10.0.0.300"}, "ip: '10.0.0.300' is not a valid IPv4 or IPv6 address"),
    ({"records": [{"name": "", "ip": "10.0.0.1"}]}, "records[0].name: must not be empty"),
    ({"records": [{"name": "a b", "ip": "10.0.0.1"}]}, "records[0].name"),
    ({"name": "a.lab", "target": "a.lab"}, "target: CNAME loop"),
    ({"records": [{"name": "a.lab", "target": "b.lab"}, {"name": "b.lab", "target": "a.lab"}]}, "records: CNAME loop"),
    ({"records": [{"name": "a.lab", "ip": "10.0.0.1", "colour": "red"}]}, "colour"),
    ({"name": "a.lab", "target": "b.lab", "ttl": -1}, "ttl: must be a non-negative integer"),
    ({"name": "a.lab", "ip": "10.0.0.1", "exclusive": True}, "domain"),
    ({"records": [{"name": "a.other", "ip": "10.0.0.1"}], "exclusive": True, "domain": "lab"}, "records[0].name"),
    ({"name": "a.lab", "ip": "10.0.0.1", "servers": []}, "servers: at least one server"),
    ({"name": "a.lab", "ip": "10.0.0.1", "servers": [{"url": "ftp://pihole", "password": "x"}]}, "servers[0].url"),
    ({"name": "a.lab", "ip": "10.0.0.1", "servers": [{"url": "http://pihole"}]}, "servers[0].password"),
    ({"name": "a.lab", "ip": "10.0.0.1", "target": "b.lab"}, "mutually exclusive"),
    ({"name": "a.lab", "ip": "10.0.0.1", "state": "gone"}, "state"),
    ({"name": "a.lab", "ip": "10.0.0.1", "timeout": 0}, "timeout"),
    ({"name": "a.lab", "ip": "10.0.0.1", "retries": -1}, "retries"),
    ({"name": "a.lab", "ip": "10.0.0.1", "api_version": "7"}, "api_version"),
    ({"ttl": 30}, "ttl"),
    ({"records": [{"name": "a.lab", "ip": "10.0.0.1", "ttl": 60}]}, "records[0].ttl"),
    ({"records": [{"name": "a.lab", "ip": "10.0.0.1"}], "name": "b.lab"}, "mutually exclusive"),
    ({"name": "a.lab", "ip": "10.0.0.1", "domain": "-bad-"}, "domain"),
    ({"name": "a.lab", "state": "present"}, "ip: state=present needs ip"),
    ({"records": [{"name": "a.lab"}], "state": "absent", "exclusive": True, "domain": "lab"}, "exclusive"),
]


def test_bad_inputs_fail_before_any_request(tmp_path: Path, pihole: PiholeServer) -> None:
    tasks = []
    for index, (options, _) in enumerate(BAD_INPUTS):
        args = {"servers": server_list([pihole]), "retries": 0, **options}
        tasks.append({"name": f"bad {index}", MODULE: args, "ignore_errors": True})
    run = run_playbook(playbook(tmp_path, *tasks), env=ENV, extra_vars=password_vars([pihole]))
    assert len(BAD_INPUTS) >= 15
    for index, (options, expected) in enumerate(BAD_INPUTS):
        result = run.task(f"bad {index}")
        assert result.failed, f"bad {index} {options} did not fail"
        assert expected in result.result.get("msg", ""), f"bad {index}: {result.result.get('msg')!r}"
    assert pihole.requests == [], [str(r) for r in pihole.requests]
    assert_no_secrets(run.output, pihole.secrets)


# --- v5: files + a real dnsmasq ------------------------------------------------------------------


def v5_task(dns: Dnsmasq, **options: Any) -> dict[str, Any]:
    args = {
        "api_version": "5",
        "v5_custom_list": str(dns.custom_list),
        "v5_cname_conf": str(dns.cname_conf),
        "v5_reload_command": str(dns.reload_script),
        "v5_restart_command": str(dns.restart_script),
        **options,
    }
    return {"name": TASK, MODULE: args}


def test_v5_files_and_dnsmasq(tmp_path: Path, dnsmasq_v5: Dnsmasq) -> None:
    dns = dnsmasq_v5
    dns.custom_list.write_text("# managed by Pi-hole\n192.168.1.9 printer.home\n", encoding="utf-8")
    dns.custom_list.chmod(0o640)
    dns.restart()
    assert dns.query("grafana.lab.example") == []

    records = [
        {"name": "grafana.lab.example", "ip": "192.168.1.240"},
        {"name": "www.lab.example", "target": "grafana.lab.example"},
    ]
    four_runs(playbook(tmp_path, v5_task(dns, records=records), name="add.yml"), TASK, env=ENV)
    assert (
        dns.custom_list.read_text()
        == "# managed by Pi-hole\n192.168.1.9 printer.home\n192.168.1.240 grafana.lab.example\n"
    )
    assert dns.cname_conf.read_text() == "cname=www.lab.example,grafana.lab.example\n"
    assert oct(dns.custom_list.stat().st_mode & 0o777) == "0o640"
    assert dns.query("grafana.lab.example") == ["192.168.1.240"]
    assert dns.query("www.lab.example") == ["grafana.lab.example.", "192.168.1.240"]
    assert dns.query("printer.home") == ["192.168.1.9"]

    pid = dns.pid
    four_runs(
        playbook(tmp_path, v5_task(dns, name="grafana.lab.example", ip="192.168.1.241"), name="ip.yml"), TASK, env=ENV
    )
    assert dns.query("grafana.lab.example") == ["192.168.1.241"]
    assert dns.pid == pid  # an A record change only reloads (SIGHUP), no restart

    four_runs(
        playbook(
            tmp_path,
            v5_task(dns, records=[{"name": "www.lab.example"}, {"name": "grafana.lab.example"}], state="absent"),
            name="rm.yml",
        ),
        TASK,
        env=ENV,
    )
    assert dns.pid != pid  # a CNAME change needs a full restart
    assert dns.query("grafana.lab.example") == []
    assert dns.query("www.lab.example") == []
    assert dns.query("printer.home") == ["192.168.1.9"]
