"""playbooks/dr_drill.yml through ansible-playbook -vvv against the test API server, with the stand-in k3s
server's Velero controller (lab.k3s_standin.controllers) running on it: the happy path is also exercised on
the lab (molecule storage_backup); here, what the lab cannot arrange, a restore that does not match."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab.k3s_standin.controllers import Controllers
from lab.kubeapi import KubeAPIServer
from lab.kubeapi.fixtures import KubeAPI
from lab.playbook import PlaybookRun, assert_no_secrets, run_playbook

REPO = Path(__file__).resolve().parents[2]
VELERO = "velero.io/v1"


@pytest.fixture
def velero(kube_api: KubeAPI, tmp_path: Path) -> Iterator[Controllers]:
    """Velero installed as the backup role leaves it: an Available location and the daily schedule."""
    server = kube_api.require_server()
    server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "velero"}})
    cloud = base64.b64encode(b"[default]\naws_access_key_id=velero\n").decode()
    server.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "velero-credentials", "namespace": "velero"},
            "data": {"cloud": cloud},
        }
    )
    server.create(
        {
            "apiVersion": VELERO,
            "kind": "BackupStorageLocation",
            "metadata": {"name": "default", "namespace": "velero"},
            "spec": {
                "provider": "aws",
                "default": True,
                "objectStorage": {"bucket": "velero"},
                "credential": {"name": "velero-credentials", "key": "cloud"},
                "config": {"s3Url": "http://minio.minio.svc:9000"},
            },
        }
    )
    server.create(
        {
            "apiVersion": VELERO,
            "kind": "Schedule",
            "metadata": {"name": "daily", "namespace": "velero"},
            "spec": {"schedule": "0 2 * * *", "template": {"excludedNamespaces": ["kube-system"], "ttl": "720h0m0s"}},
        }
    )
    controllers = Controllers(server, tmp_path / "bucket", resync=1).start()
    yield controllers
    controllers.stop()
    assert controllers.errors == []


def seed_shop(server: KubeAPIServer) -> str:
    value = secrets.token_urlsafe(18)
    server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    server.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "shop"},
            "data": {"a": "1"},
        }
    )
    server.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": "shop"},
            "data": {"password": base64.b64encode(value.encode()).decode()},
        }
    )
    return value


def drill(kube: KubeAPI, tmp_path: Path, **extra: Any) -> PlaybookRun:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("k3s_server:\n  hosts:\n    pi-master:\n      ansible_connection: local\n", encoding="utf-8")
    variables = {"dr_drill_kubeconfig": str(kube.kubeconfig), "dr_drill_kube_context": "lab", **extra}
    return run_playbook(REPO / "playbooks/dr_drill.yml", inventory=inventory, extra_vars=variables, env=kube.env)


def test_drill_passes_and_cleans_up(kube_api: KubeAPI, velero: Controllers, tmp_path: Path) -> None:
    server = kube_api.require_server()
    password = seed_shop(server)
    schedule = server.get(VELERO, "Schedule", "daily", "velero")
    assert schedule is not None
    run = drill(kube_api, tmp_path, dr_drill_namespace="shop")
    assert run.rc == 0, run.output[-6000:]
    after = server.get(VELERO, "Schedule", "daily", "velero")
    assert after is not None
    assert after["spec"] == schedule["spec"]  # the drill only ran it
    assert "2 object(s) of shop restored from backup daily-" in run.output
    assert_no_secrets(run.output, [password])
    assert server.get("v1", "Namespace", "shop-dr-drill") is None
    assert server.list(VELERO, "Backup") == []
    assert server.list(VELERO, "Restore") == []


def test_drill_fails_naming_what_differs_and_still_cleans_up(
    kube_api: KubeAPI, velero: Controllers, tmp_path: Path
) -> None:
    """The source changes after the backup (as if the backup had missed the change): the comparison says
    which object differs, without printing any content."""
    server = kube_api.require_server()
    password = seed_shop(server)

    def change_the_source(srv: Any, _restore: dict[str, Any]) -> None:
        srv.patch("v1", "ConfigMap", "settings", "shop", {"data": {"a": "2"}})

    server.on_write("Restore.velero.io", change_the_source)
    run = drill(kube_api, tmp_path, dr_drill_namespace="shop")
    assert run.rc != 0
    assert [t.task for t in run.failed_tasks()] == ["Check the restored objects against the source"]
    assert "missing none; different content ConfigMap/settings" in run.output
    assert_no_secrets(run.output, [password])
    assert server.get("v1", "Namespace", "shop-dr-drill") is None
    assert server.list(VELERO, "Backup") == []


def test_drill_refuses_an_existing_scratch_namespace(kube_api: KubeAPI, velero: Controllers, tmp_path: Path) -> None:
    server = kube_api.require_server()
    seed_shop(server)
    server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop-dr-drill"}})
    run = drill(kube_api, tmp_path, dr_drill_namespace="shop")
    assert run.rc != 0
    assert [t.task for t in run.failed_tasks()] == [
        "Refuse a scratch namespace that exists (the drill deletes it at the end)"
    ]
    assert server.get("v1", "Namespace", "shop-dr-drill") is not None  # not ours: left alone
    assert server.list(VELERO, "Backup") == []
