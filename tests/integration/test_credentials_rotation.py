"""Integration tests: playbooks/rotate_credentials.yml through ansible-playbook -vvv.

Few, rich runs (each run costs seconds): one test rotates every kind we can run here at once
(a Pi-hole pair, a Secret key with its Deployment, a real PostgreSQL role, a command) and checks
--check, apply and re-run; one test kills the run after apply (fault hook) and resumes it; one
rolls an interrupted rotation back. Every run: the vault file is encrypted with no temp file
beside it, and no value (old or new) appears in the -vvv output.
"""

from __future__ import annotations

import base64
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from credentials_lab import Postgres, Vault, make_vault, rotate, start_postgres
from lab.kubeapi.fixtures import KubeAPI
from lab.pihole import PiholeServer
from lab.pihole.ftl import check_hash
from lab.playbook import PlaybookRun, assert_no_secrets

NS = "creds"
REPORT = "homelab.pi_cluster.credentials : Report the rotation"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    yield from start_postgres()


def pihole_accepts(server: PiholeServer, password: str) -> bool:
    return check_hash(server.ftl.config["webserver"]["api"]["pwhash"], password)


def k8s_objects(kube_api: KubeAPI) -> None:
    server = kube_api.require_server()
    server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    server.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "grafana", "namespace": NS},
            "type": "Opaque",
            "stringData": {"admin-user": "admin", "admin-password": "set-by-helm"},
        }
    )
    labels = {"app": "grafana"}
    server.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "grafana", "namespace": NS},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "grafana", "image": "grafana/grafana:11.3.0"}]},
                },
            },
        }
    )


def secret_value(kube_api: KubeAPI, key: str) -> str:
    secret = kube_api.require_server().get("v1", "Secret", "grafana", NS) or {}
    return base64.b64decode((secret.get("data") or {}).get(key, "")).decode()


def restarted_at(kube_api: KubeAPI) -> str | None:
    deployment = kube_api.require_server().get("apps/v1", "Deployment", "grafana", NS) or {}
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    return annotations.get("kubectl.kubernetes.io/restartedAt")


def registry(piholes: list[PiholeServer], postgres: Postgres | None, marker: Path | None) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = [
        {
            "name": "pihole_admin",
            "kind": "pihole_admin",
            "var": "vault_pihole_password",
            "servers": [s.url for s in piholes],
            "length": 24,
            "charset": "alnum_symbols",
            "interval_days": 30,
        },
        {
            "name": "grafana_admin",
            "kind": "k8s_secret",
            "namespace": NS,
            "secret": "grafana",
            "key": "admin-password",
            "restart": [{"kind": "Deployment", "name": "grafana"}],
        },
    ]
    if postgres:
        entries.append(
            {
                "name": "airflow_db",
                "kind": "postgres_role",
                "role": "airflow",
                "login_host": postgres.host,
                "login_port": postgres.port,
                "login_user": "postgres",
                "login_password_var": "vault_postgres_admin_password",
                "charset": "hex",
                "length": 40,
            }
        )
    if marker:
        script = 'printf %s "$NAS_PASSWORD" > "$0"'
        entries.append(
            {
                "name": "nas_admin",
                "kind": "command",
                "env_new": "NAS_PASSWORD",
                "apply": ["sh", "-c", script, str(marker)],
                "verify": ["sh", "-c", 'test "$(cat "$0")" = "$NAS_PASSWORD"', str(marker)],
            }
        )
    return entries


def every_value(vault: Vault, *extra: str) -> list[str]:
    """Every secret in the vault file (current, pending, previous), plus ``extra``."""
    data = vault.read()
    values = [v for k, v in data.items() if k != "vault_credentials_state" and isinstance(v, str)]
    for state in (data.get("vault_credentials_state") or {}).values():
        values += [state[k] for k in ("pending", "previous") if k in state]
    return [*values, *extra]


def check_run(run: PlaybookRun, vault: Vault, secrets_: list[str], rc: int = 0) -> None:
    assert run.rc == rc, run.output[-5000:]
    vault.assert_sealed()
    assert "AnsiballZ" not in run.output  # pipelined: module arguments (values) never land in a temp file
    for value in secrets_:  # name where a value leaked (the value itself masked) before the generic check
        at = run.output.find(value) if value else -1
        assert at < 0, "a secret leaked here: " + run.output[max(0, at - 300) : at + 300].replace(value, "<SECRET>")
    assert_no_secrets(run.output, secrets_)


def test_rotate_every_kind(
    tmp_path: Path, pihole_pair: tuple[PiholeServer, PiholeServer], kube_api: KubeAPI, postgres: Postgres
) -> None:
    piholes = list(pihole_pair)
    k8s_objects(kube_api)
    airflow_old = secrets.token_hex(16)
    postgres.set_role("airflow", airflow_old)
    marker = tmp_path / "nas-password"
    vault = make_vault(tmp_path / "vault")
    old_pihole = piholes[0].password or ""
    piholes[1].ftl.config["webserver"]["api"]["pwhash"] = piholes[0].ftl.config["webserver"]["api"]["pwhash"]
    vault.write(
        {
            "vault_pihole_password": old_pihole,
            "vault_postgres_admin_password": postgres.admin_password,
            "vault_airflow_db": airflow_old,
            "unrelated_key": "kept as it is",
        }
    )
    entries = registry(piholes, postgres, marker)
    env = {"ANSIBLE_PYTHON_INTERPRETER": sys.executable, **kube_api.env}
    known = [
        old_pihole,
        airflow_old,
        postgres.admin_password,
        "set-by-helm",
        *(s for server in piholes for s in server.secrets),
    ]

    # --check: lists what is due, changes nothing (not even the vault file)
    before = vault.path.read_bytes()
    run = rotate(vault, entries, env=env, check=True)
    check_run(run, vault, known)
    report = run.task(REPORT).result["msg"]
    assert report["would_rotate"] == ["pihole_admin", "grafana_admin", "airflow_db", "nas_admin"]
    assert vault.path.read_bytes() == before
    assert pihole_accepts(piholes[0], old_pihole) and postgres.can_login("airflow", airflow_old)
    assert restarted_at(kube_api) is None and not marker.exists()

    # apply: everything is rotated, verified and promoted
    run = rotate(vault, entries, env=env)
    check_run(run, vault, every_value(vault, *known))
    report = run.task(REPORT).result["msg"]
    assert report["rotated"] == ["pihole_admin", "grafana_admin", "airflow_db", "nas_admin"], report
    assert report["failed"] == []
    data = vault.read()
    new_pihole, new_airflow = data["vault_pihole_password"], data["vault_airflow_db"]
    assert len(new_pihole) == 24 and new_pihole != old_pihole
    assert len(new_airflow) == 40 and set(new_airflow) <= set("0123456789abcdef")
    assert data["unrelated_key"] == "kept as it is"
    for server in piholes:
        assert pihole_accepts(server, new_pihole) and not pihole_accepts(server, old_pihole)
    assert postgres.can_login("airflow", new_airflow) and not postgres.can_login("airflow", airflow_old)
    assert secret_value(kube_api, "admin-password") == data["vault_grafana_admin"]
    assert secret_value(kube_api, "admin-user") == "admin"  # the other keys of the Secret are kept
    first_restart = restarted_at(kube_api)
    assert first_restart
    assert marker.read_text(encoding="utf-8") == data["vault_nas_admin"]
    states = data["vault_credentials_state"]
    assert states["pihole_admin"]["previous"] == old_pihole and "pending" not in states["pihole_admin"]
    assert states["airflow_db"]["previous"] == airflow_old
    assert "previous" not in states["grafana_admin"]  # it had no value in the vault before
    assert "vault_credentials_state.<name>.previous" in report["previous_values"]

    # re-run: nothing is due, nothing changes
    before = vault.path.read_bytes()
    run = rotate(vault, entries, env=env)
    check_run(run, vault, every_value(vault, *known))
    report = run.task(REPORT).result["msg"]
    assert report["rotated"] == [] and len(report["skipped"]) == 4
    assert all("not due until" in line for line in report["skipped"])
    assert vault.path.read_bytes() == before and restarted_at(kube_api) == first_restart
    assert not [t for t in run.changed_tasks() if t.action != "ansible.builtin.set_fact"]


def test_fault_after_apply_then_resume(
    tmp_path: Path, pihole_pair: tuple[PiholeServer, PiholeServer], kube_api: KubeAPI
) -> None:
    """Killed after apply, before promote: the vault keeps the pending value the Pi-holes already
    have; the next run finishes with that same value. A second interrupted rotation is rolled back."""
    piholes = list(pihole_pair)
    k8s_objects(kube_api)
    old = piholes[0].password or ""
    piholes[1].ftl.config["webserver"]["api"]["pwhash"] = piholes[0].ftl.config["webserver"]["api"]["pwhash"]
    vault = make_vault(tmp_path / "vault")
    vault.write({"vault_pihole_password": old})
    entries = registry(piholes, None, None)
    env = {"ANSIBLE_PYTHON_INTERPRETER": sys.executable, **kube_api.env}
    known = [old, *(s for server in piholes for s in server.secrets)]

    run = rotate(vault, entries, env=env, only="pihole_admin", credentials_fault_after="apply")
    check_run(run, vault, every_value(vault, *known), rc=2)
    assert "fault injected" in run.output
    state = vault.state("pihole_admin")
    pending = state["pending"]
    assert state["phase"] == "applied" and vault.read()["vault_pihole_password"] == old
    # the service has the pending value: the vault knows it
    assert all(pihole_accepts(s, pending) and not pihole_accepts(s, old) for s in piholes)

    run = rotate(vault, entries, env=env)
    check_run(run, vault, every_value(vault, *known))
    report = run.task(REPORT).result["msg"]
    assert report["rotated"] == ["pihole_admin", "grafana_admin"]
    assert vault.read()["vault_pihole_password"] == pending and "pending" not in vault.state("pihole_admin")
    assert all(pihole_accepts(s, pending) for s in piholes)

    # interrupted again, then rolled back: the Secret gets the current value back
    current = vault.read()["vault_grafana_admin"]
    run = rotate(vault, entries, env=env, only="grafana_admin", credentials_fault_after="apply")
    check_run(run, vault, every_value(vault, *known), rc=2)
    assert secret_value(kube_api, "admin-password") == vault.state("grafana_admin")["pending"]
    run = rotate(vault, entries, env=env, only="grafana_admin", credentials_resume="rollback")
    check_run(run, vault, every_value(vault, *known))
    assert run.task(REPORT).result["msg"]["rotated"] == ["grafana_admin"]
    assert secret_value(kube_api, "admin-password") == current == vault.read()["vault_grafana_admin"]
    assert "pending" not in vault.state("grafana_admin")

    # one Pi-hole down: that credential fails (reported, pending kept), the others still rotate
    piholes[1].stop()
    run = rotate(vault, entries, env=env, credentials_force=True)
    check_run(run, vault, every_value(vault, *known), rc=2)
    report = run.task(REPORT).result["msg"]
    assert report["rotated"] == ["grafana_admin"] and report["pending_kept"] == ["pihole_admin"]
    [failure] = report["failed"]
    assert failure.startswith("pihole_admin: Set the new admin password on every Pi-hole server: ")
    assert f"{piholes[1].url}: " in failure and "cannot reach" in failure
    pending = vault.state("pihole_admin")["pending"]
    assert pihole_accepts(piholes[0], pending)  # the server that was up has it, and the vault knows it
    piholes[1].start()
    run = rotate(vault, entries, env=env, only="pihole_admin")
    check_run(run, vault, every_value(vault, *known))
    assert vault.read()["vault_pihole_password"] == pending
    assert all(pihole_accepts(s, pending) for s in piholes)


def test_bad_registry_changes_nothing(tmp_path: Path) -> None:
    vault = make_vault(tmp_path / "vault")
    vault.write({"vault_x": "kept"})
    before = vault.path.read_bytes()
    bad = [{"name": "nas", "kind": "command", "apply": "set-password $CREDENTIAL_NEW"}]
    run = rotate(vault, bad)
    assert run.rc == 2
    assert "credentials_registry[0] (nas): apply: an argv list of strings" in run.output
    assert vault.path.read_bytes() == before
