"""Verify dns: both lab Pi-holes, read through their API, hold exactly the role's records in the domain."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab.playbook import assert_no_secrets, run_playbook

INVENTORY = Path(os.environ["MOLECULE_INVENTORY_FILE"])
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
RUN = PROJECT / ".lab" / "run" / os.environ["HOSTLAB_ID"]
HOSTLAB = PROJECT / "tests" / "lab" / "hostlab"
LAB = json.loads((RUN / "hosts.json").read_text(encoding="utf-8"))
PIHOLES = LAB["piholes"]
PASSWORD = yaml.safe_load((RUN / "vault.yml").read_text(encoding="utf-8"))["vault_pihole_password"]
LAB_VARS = yaml.safe_load((PROJECT / "inventory" / "lab" / "group_vars" / "all.yml").read_text(encoding="utf-8"))
DOMAIN = LAB_VARS["dns_domain"]
INGRESS = next(h["address"] for h in LAB["hosts"] if h["group"] == "k3s_server")
KEPT = {"hosts": ["192.168.1.5 nas.home.arpa"], "cnameRecords": ["tv.home.arpa,nas.home.arpa"]}  # prepare.yml
TLS = ssl.create_default_context(cafile=str(RUN / "piholes" / "ca.pem"))

testinfra_hosts: list[str] = []  # API checks only: the role touches no host


def call(url: str, method: str = "GET", body: Any = None, sid: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - the lab Pi-holes' https URLs
    request.add_header("Content-Type", "application/json")
    if sid:
        request.add_header("X-FTL-SID", sid)
    with urllib.request.urlopen(request, context=TLS, timeout=30) as answer:  # noqa: S310 - as above
        raw = answer.read()
    return json.loads(raw) if raw else None


@contextmanager
def session(pihole: dict[str, str]) -> Iterator[str]:
    sid = call(f"{pihole['url']}/api/auth", "POST", {"password": PASSWORD})["session"]["sid"]
    try:
        yield sid
    finally:
        call(f"{pihole['url']}/api/auth", "DELETE", sid=sid)


def records(pihole: dict[str, str]) -> dict[str, list[str]]:
    with session(pihole) as sid:
        dns = call(f"{pihole['url']}/api/config/dns", sid=sid)["config"]["dns"]
    return {"hosts": sorted(dns["hosts"]), "cnameRecords": sorted(dns["cnameRecords"])}


def add_records(pihole: dict[str, str], hosts: list[str]) -> None:
    current = records(pihole)
    with session(pihole) as sid:
        body = {"config": {"dns": {"hosts": current["hosts"] + hosts}}}
        call(f"{pihole['url']}/api/config", "PATCH", body, sid=sid)


def expected() -> dict[str, list[str]]:
    hosts = [f"{INGRESS} {name}.{DOMAIN}" for name in LAB_VARS["dns_records"]]
    return {"hosts": sorted(hosts + KEPT["hosts"]), "cnameRecords": KEPT["cnameRecords"]}


def hostlab(*args: str) -> None:
    subprocess.run([str(HOSTLAB), *args], check=True, timeout=120, env={**os.environ, "HOSTLAB_ID": LAB["id"]})


# ------------------------------------------------------------------------------ converged state


@pytest.mark.parametrize("pihole", PIHOLES, ids=[p["name"] for p in PIHOLES])
def test_every_service_host_and_nothing_else_in_the_domain(pihole: dict[str, str]) -> None:
    # every listed name -> the ingress address; the stray A record and CNAME seeded inside the
    # domain are gone; the records seeded outside the domain are untouched
    assert len(LAB_VARS["dns_records"]) >= 4
    assert records(pihole) == expected()


def test_the_role_logged_out_and_the_api_saw_no_spec_violation() -> None:
    for pihole in PIHOLES:
        log = (RUN / "piholes" / pihole["name"] / "server.log").read_text(encoding="utf-8").splitlines()
        assert not [line for line in log if line.startswith("VIOLATION")]
        logins = sum(1 for line in log if line == "POST /auth -> 200")
        assert logins >= 3  # prepare, converge, idempotence (and this test's own sessions)
        assert sum(1 for line in log if line == "DELETE /auth -> 204") == logins


def test_no_pihole_password_in_the_vvv_log() -> None:
    log = (EPHEMERAL / "ansible-vvv.log").read_text(encoding="utf-8")
    # the log does hold the converge and idempotence runs, with the module's -vvv results
    assert log.count("TASK [homelab.pi_cluster.dns : Write the records on the Pi-holes]") == 2
    assert '"per_server": [' in log
    assert_no_secrets(log, [PASSWORD])


# ------------------------------------------------------------------------------ HA: one Pi-hole down


def test_one_pihole_down_fails_naming_it_after_writing_the_other() -> None:
    up, down = PIHOLES
    add_records(up, [f"10.251.0.98 stray.{DOMAIN}"])
    hostlab("pihole", "stop", down["name"])
    try:
        run = run_playbook(SCENARIO / "converge.yml", inventory=INVENTORY.parent, verbosity=3)
    finally:
        hostlab("pihole", "start", down["name"])
    assert run.rc != 0
    failure = run.task("homelab.pi_cluster.dns : Write the records on the Pi-holes").result["msg"]
    assert f"failed on 1 of 2 server(s) (written: {up['name']})" in failure
    assert f"{down['name']} ({down['url']})" in failure
    assert_no_secrets(run.output, [PASSWORD])
    # the Pi-hole that was up was still written; the other one kept its records through the restart
    assert records(up) == expected()
    assert records(down) == expected()
