"""The stand-in k3s server's controllers (helm-controller, longhorn-manager, Velero) on the test API server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab.k3s_standin.controllers import Controllers, valid_cron
from lab.kubeapi import KubeAPIServer, wait_until
from lab.kubeapi.rawclient import request

VELERO = "velero.io/v1"
LONGHORN = "longhorn.io/v1beta2"


@pytest.fixture
def srv() -> Iterator[KubeAPIServer]:
    with KubeAPIServer() as server:
        for name in ("velero", "longhorn-system", "shop"):
            server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        yield server


@pytest.fixture
def ctl(srv: KubeAPIServer, tmp_path: Path) -> Controllers:
    return Controllers(srv, tmp_path / "bucket")


def secret(name: str, namespace: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}, "data": encoded}


def location(**spec: Any) -> dict[str, Any]:
    base = {
        "provider": "aws",
        "objectStorage": {"bucket": "velero"},
        "credential": {"name": "velero-credentials", "key": "cloud"},
        "config": {"s3Url": "http://minio.minio.svc:9000"},
    }
    return {
        "apiVersion": VELERO,
        "kind": "BackupStorageLocation",
        "metadata": {"name": "default", "namespace": "velero"},
        "spec": {**base, **spec},
    }


def status(srv: KubeAPIServer, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any]:
    obj = srv.get(api_version, kind, name, namespace)
    assert obj is not None
    return obj.get("status") or {}


def available_location(srv: KubeAPIServer, ctl: Controllers) -> None:
    srv.create(secret("velero-credentials", "velero", cloud="[default]\n"))
    if srv.get(VELERO, "BackupStorageLocation", "default", "velero") is None:
        srv.create(location())
    ctl.reconcile()
    assert status(srv, VELERO, "BackupStorageLocation", "default", "velero")["phase"] == "Available"


def backup(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": VELERO, "kind": "Backup", "metadata": {"name": name, "namespace": "velero"}, "spec": spec}


def test_helm_chart_gets_its_job_and_longhorn_its_storage_class(srv: KubeAPIServer, ctl: Controllers) -> None:
    srv.create(
        {
            "apiVersion": "helm.cattle.io/v1",
            "kind": "HelmChart",
            "metadata": {"name": "longhorn", "namespace": "kube-system"},
            "spec": {
                "chart": "longhorn",
                "version": "1.8.1",
                "valuesContent": "persistence:\n  defaultClass: true\n  defaultClassReplicaCount: 2\n",
            },
        }
    )
    ctl.reconcile()
    chart_status = status(srv, "helm.cattle.io/v1", "HelmChart", "longhorn", "kube-system")
    assert chart_status["jobName"] == "helm-install-longhorn"
    assert [(c["type"], c["status"]) for c in chart_status["conditions"]] == [("JobCreated", "True")]
    klass = srv.get("storage.k8s.io/v1", "StorageClass", "longhorn")
    assert klass is not None
    assert klass["provisioner"] == "driver.longhorn.io"
    assert klass["parameters"]["numberOfReplicas"] == "2"
    assert klass["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"

    def chart_version() -> str:
        chart = srv.get("helm.cattle.io/v1", "HelmChart", "longhorn", "kube-system")
        assert chart is not None
        return str(chart["metadata"]["resourceVersion"])

    version = chart_version()
    ctl.reconcile()  # nothing new to say: nothing written
    assert chart_version() == version


def test_volumes_settle_detached_or_attached(srv: KubeAPIServer, ctl: Controllers) -> None:
    for name, spec in (("free", {}), ("used", {"nodeID": "pi-worker-01"})):
        srv.create(
            {
                "apiVersion": LONGHORN,
                "kind": "Volume",
                "metadata": {"name": name, "namespace": "longhorn-system"},
                "spec": {"numberOfReplicas": 2, "size": "1073741824", **spec},
            }
        )
    ctl.reconcile()
    free = status(srv, LONGHORN, "Volume", "free", "longhorn-system")
    used = status(srv, LONGHORN, "Volume", "used", "longhorn-system")
    assert (free["state"], free["robustness"]) == ("detached", "unknown")
    assert (used["state"], used["robustness"], used["currentNodeID"]) == ("attached", "healthy", "pi-worker-01")


def test_backup_target_needs_its_credential_secret(srv: KubeAPIServer, ctl: Controllers) -> None:
    srv.create(
        {
            "apiVersion": LONGHORN,
            "kind": "BackupTarget",
            "metadata": {"name": "default", "namespace": "longhorn-system"},
            "spec": {"backupTargetURL": "s3://backups@minio/", "credentialSecret": "s3-creds", "pollInterval": "5m0s"},
        }
    )
    ctl.reconcile()
    assert status(srv, LONGHORN, "BackupTarget", "default", "longhorn-system")["available"] is False
    srv.create(secret("s3-creds", "longhorn-system", AWS_ACCESS_KEY_ID="k"))
    ctl.reconcile()
    assert status(srv, LONGHORN, "BackupTarget", "default", "longhorn-system")["available"] is True


@pytest.mark.parametrize(
    ("secret_data", "spec", "message"),
    [
        (None, {}, 'unable to get credentials: Secret "velero-credentials" not found'),
        ({"other": "x"}, {}, 'key "cloud" not found in Secret "velero-credentials"'),
        ({"cloud": "x"}, {"objectStorage": {"bucket": ""}}, "bucket is required"),
        ({"cloud": "x"}, {"config": {"region": "minio"}}, "s3Url is required"),
    ],
)
def test_storage_location_unavailable_says_why(
    srv: KubeAPIServer, ctl: Controllers, secret_data: dict[str, str] | None, spec: dict[str, Any], message: str
) -> None:
    if secret_data is not None:
        srv.create(secret("velero-credentials", "velero", **secret_data))
    srv.create(location(**spec))
    ctl.reconcile()
    found = status(srv, VELERO, "BackupStorageLocation", "default", "velero")
    assert found["phase"] == "Unavailable"
    assert message in found["message"]
    assert found["message"].startswith('BackupStorageLocation "default" is unavailable: ')


def test_storage_location_becomes_available_when_the_secret_appears(srv: KubeAPIServer, ctl: Controllers) -> None:
    srv.create(location())
    ctl.reconcile()
    assert status(srv, VELERO, "BackupStorageLocation", "default", "velero")["phase"] == "Unavailable"
    available_location(srv, ctl)
    assert "message" not in status(srv, VELERO, "BackupStorageLocation", "default", "velero")


def test_schedules_enabled_or_failed_validation(srv: KubeAPIServer, ctl: Controllers) -> None:
    for name, cron in (("daily", "0 2 * * *"), ("broken", "every day")):
        srv.create(
            {
                "apiVersion": VELERO,
                "kind": "Schedule",
                "metadata": {"name": name, "namespace": "velero"},
                "spec": {"schedule": cron, "template": {}},
            }
        )
    ctl.reconcile()
    assert status(srv, VELERO, "Schedule", "daily", "velero")["phase"] == "Enabled"
    broken = status(srv, VELERO, "Schedule", "broken", "velero")
    assert broken["phase"] == "FailedValidation"
    assert "every day" in broken["validationErrors"][0]


@pytest.mark.parametrize(
    ("cron", "valid"), [("@daily", True), ("@every 1h", True), ("* * *", False), ("@often", False)]
)
def test_cron_check(cron: str, valid: bool) -> None:
    assert valid_cron(cron) is valid


def test_backup_then_restore_into_another_namespace(srv: KubeAPIServer, ctl: Controllers) -> None:
    available_location(srv, ctl)
    srv.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "shop"}, "data": {"a": "1"}}
    )
    srv.create(secret("db", "shop", password="s3cret"))
    srv.create(backup("b1", includedNamespaces=["shop"], ttl="24h0m0s"))
    ctl.reconcile()
    started = status(srv, VELERO, "Backup", "b1", "velero")
    assert started["phase"] == "InProgress"
    assert started["formatVersion"] == "1.1.0"
    ctl.reconcile()
    done = status(srv, VELERO, "Backup", "b1", "velero")
    assert done["phase"] == "Completed"
    assert done["progress"]["totalItems"] == done["progress"]["itemsBackedUp"] == 3  # namespace, configmap, secret
    assert (ctl.bucket.directory / "b1.json").stat().st_mode & 0o777 == 0o600  # type: ignore[operator]

    srv.create(
        {
            "apiVersion": VELERO,
            "kind": "Restore",
            "metadata": {"name": "r1", "namespace": "velero"},
            "spec": {"backupName": "b1", "includedNamespaces": ["shop"], "namespaceMapping": {"shop": "shop-drill"}},
        }
    )
    ctl.reconcile()
    assert status(srv, VELERO, "Restore", "r1", "velero")["phase"] == "InProgress"
    ctl.reconcile()
    restore = status(srv, VELERO, "Restore", "r1", "velero")
    assert restore["phase"] == "Completed"
    assert restore["progress"] == {"totalItems": 3, "itemsRestored": 3}
    copied = srv.get("v1", "ConfigMap", "cfg", "shop-drill")
    assert copied is not None
    assert copied["data"] == {"a": "1"}
    assert copied["metadata"]["labels"]["velero.io/restore-name"] == "r1"
    assert srv.get("v1", "Secret", "db", "shop-drill")["data"] == srv.get("v1", "Secret", "db", "shop")["data"]  # type: ignore[index]

    # the same restore again: everything exists already, Velero warns and restores nothing
    srv.create({**srv.get(VELERO, "Restore", "r1", "velero"), "metadata": {"name": "r2", "namespace": "velero"}})  # type: ignore[dict-item]
    srv.update_status(VELERO, "Restore", "r2", "velero", {}, merge=False)
    ctl.reconcile()
    ctl.reconcile()
    again = status(srv, VELERO, "Restore", "r2", "velero")
    assert (again["phase"], again["warnings"], again["progress"]["itemsRestored"]) == ("Completed", 2, 0)


def test_backup_to_an_unavailable_location_fails_validation(srv: KubeAPIServer, ctl: Controllers) -> None:
    srv.create(location())
    srv.create(backup("b1"))
    ctl.reconcile()
    failed = status(srv, VELERO, "Backup", "b1", "velero")
    assert failed["phase"] == "FailedValidation"
    assert "Unavailable" in failed["validationErrors"][0]


def test_fault_hook_fails_backups_and_restore_of_missing_backup_fails(srv: KubeAPIServer, ctl: Controllers) -> None:
    available_location(srv, ctl)
    ctl.fail_backups = "the bucket is gone"
    srv.create(backup("b1"))
    ctl.reconcile()
    ctl.reconcile()
    failed = status(srv, VELERO, "Backup", "b1", "velero")
    assert (failed["phase"], failed["failureReason"]) == ("Failed", "the bucket is gone")
    srv.create(
        {
            "apiVersion": VELERO,
            "kind": "Restore",
            "metadata": {"name": "r1", "namespace": "velero"},
            "spec": {"backupName": "b1"},
        }
    )
    ctl.reconcile()
    assert status(srv, VELERO, "Restore", "r1", "velero")["phase"] == "FailedValidation"


def test_api_writes_wake_the_running_controllers(srv: KubeAPIServer, tmp_path: Path) -> None:
    ctl = Controllers(srv, None, resync=60).start()  # only the write hooks can make it act in time
    try:
        srv.create(secret("velero-credentials", "velero", cloud="x"))
        reply = request(srv, "POST", "/apis/velero.io/v1/namespaces/velero/backupstoragelocations", location())
        assert reply.status == 201
        assert wait_until(
            lambda: (
                (srv.get(VELERO, "BackupStorageLocation", "default", "velero") or {}).get("status", {}).get("phase")
                == "Available"
            ),
            timeout=5,
        )
        request(srv, "POST", "/apis/velero.io/v1/namespaces/velero/backups", backup("b1"))
        assert wait_until(
            lambda: (srv.get(VELERO, "Backup", "b1", "velero") or {}).get("status", {}).get("phase") == "Completed",
            timeout=5,
        )
        assert ctl.errors == []
    finally:
        ctl.stop()
