"""longhorn_volume through ansible-playbook -vvv against the test API server.

The server validates every Volume against the upstream Longhorn CRD schema (422 on a wrong type or
enum, unknown fields pruned, CEL immutability), so what the module writes is what a real cluster
would accept. Longhorn's manager is not there: where the tests need its reactions (status, a CSI
resize, a faulted volume) they play them through the server's hooks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lab.playbook import PlaybookRun, assert_no_secrets, four_runs, module_task, run_playbook, write_playbook

GI = 1024**3
NS = "longhorn-system"
VOLUMES = f"/apis/longhorn.io/v1beta2/namespaces/{NS}/volumes"
MODULE = "homelab.pi_cluster.longhorn_volume"
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def kube(kube_api: Any) -> Any:
    """The test API server with the namespaces these tests use."""
    kube_api.require_server()
    for ns in (NS, "apps"):
        if kube_api.server.get("v1", "Namespace", ns) is None:
            kube_api.server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kube_api.server.clear_requests()
    return kube_api


def lv(task_name: str = "lv", ignore_errors: bool = False, **args: Any) -> dict[str, Any]:
    return module_task(MODULE, {"name": "data", **args}, task_name, ignore_errors)


def playbook(tmp_path: Path, *tasks: dict[str, Any], name: str = "playbook.yml") -> Path:
    return write_playbook(tmp_path, list(tasks), name=name)


def run(kube: Any, path: Path, **kwargs: Any) -> PlaybookRun:
    return run_playbook(path, env=kube.env, **kwargs)


def volume_body(
    name: str = "data", size: int = 10 * GI, labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    """A Volume as Longhorn's webhook leaves it after create (defaults filled in)."""
    body = {
        "size": str(size),
        "numberOfReplicas": 3,
        "dataLocality": "disabled",
        "accessMode": "rwo",
        "frontend": "blockdev",
        "dataEngine": "v1",
        "backupCompressionMethod": "lz4",
        "nodeSelector": [],
        "diskSelector": [],
        "replicaAutoBalance": "ignored",
        "snapshotDataIntegrity": "ignored",
        "staleReplicaTimeout": 30,
        "encrypted": False,
        "image": "longhornio/longhorn-engine:v1.9.0",
        "snapshotMaxCount": 250,
    }
    body.update(spec)
    meta: dict[str, Any] = {"name": name, "namespace": NS}
    meta["labels"] = {"longhornvolume": name, **(labels or {})}
    return {"apiVersion": "longhorn.io/v1beta2", "kind": "Volume", "metadata": meta, "spec": body}


def create_volume(kube: Any, status: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    obj = kube.server.create(volume_body(**kwargs))
    if status:
        set_status(kube, obj["metadata"]["name"], status)
    kube.server.clear_requests()
    return obj


def set_status(kube: Any, name: str, status: dict[str, Any]) -> None:
    kube.server.update_status("longhorn.io/v1beta2", "Volume", name, NS, status)


def get_volume(kube: Any, name: str = "data") -> dict[str, Any] | None:
    return kube.server.get("longhorn.io/v1beta2", "Volume", name, NS)


def writes(kube: Any) -> int:
    return sum(kube.server.count(method=m) for m in WRITE_METHODS)


def bound_status(pvc: str = "data", namespace: str = "apps") -> dict[str, Any]:
    return {
        "state": "attached",
        "robustness": "healthy",
        "kubernetesStatus": {"pvName": "data", "pvStatus": "Bound", "pvcName": pvc, "namespace": namespace},
    }


def create_bound_pvc(kube: Any, expandable: bool = True) -> None:
    """A PVC bound to the volume's PV, in Longhorn's static StorageClass (which allows expansion)."""
    kube.server.create(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "longhorn-static"},
            "provisioner": "driver.longhorn.io",
            "allowVolumeExpansion": expandable,
        }
    )
    kube.server.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "apps"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "10Gi"}},
                "storageClassName": "longhorn-static",
                "volumeName": "data",
            },
        }
    )
    kube.server.update_status(
        "v1",
        "PersistentVolumeClaim",
        "data",
        "apps",
        {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}},
    )
    kube.server.clear_requests()


# --------------------------------------------------------------------------- create / no-op


def test_create_four_runs_then_noop_costs_one_get(kube: Any, tmp_path: Path) -> None:
    pb = playbook(
        tmp_path,
        lv(
            size="1.5Gi",
            number_of_replicas=2,
            data_locality="best-effort",
            node_selector=["nvme", "ssd"],
            recurring_jobs=["daily-backup"],
            recurring_job_groups=["critical"],
        ),
    )
    runs = four_runs(pb, "lv", env=kube.env)
    assert runs[0].task("lv").result["volume"]["size"] == 1536 * 1024**2  # check mode predicted it
    assert "create Volume longhorn-system/data" in runs[1].task("lv").result["actions"]

    vol = get_volume(kube)
    assert vol is not None
    assert vol["spec"]["size"] == str(1536 * 1024**2)
    assert vol["spec"]["numberOfReplicas"] == 2
    assert vol["spec"]["dataLocality"] == "best-effort"
    assert vol["spec"]["nodeSelector"] == ["nvme", "ssd"]
    assert vol["spec"]["frontend"] == "blockdev"
    assert vol["metadata"]["labels"]["recurring-job.longhorn.io/daily-backup"] == "enabled"
    assert vol["metadata"]["labels"]["recurring-job-group.longhorn.io/critical"] == "enabled"

    # the same size written differently is the same volume; a re-run is one GET and no write
    kube.server.clear_requests()
    pb = playbook(
        tmp_path,
        lv(
            size=1536 * 1024**2,
            number_of_replicas=2,
            data_locality="best-effort",
            node_selector=["ssd", "nvme"],
            recurring_jobs=["daily-backup"],
            recurring_job_groups=["critical"],
        ),
        name="again.yml",
    )
    again = run(kube, pb)
    assert again.rc == 0, again.output[-3000:]
    assert again.task("lv").changed is False
    assert kube.server.count(method="GET", path_prefix=f"{VOLUMES}/data") == 1
    assert writes(kube) == 0
    for r in (*runs, again):
        assert_no_secrets(r.output, [kube.server.token])


def test_check_mode_create_writes_nothing(kube: Any, tmp_path: Path) -> None:
    result = run(kube, playbook(tmp_path, lv(size="10Gi")), check=True, diff=True)
    assert result.rc == 0, result.output[-3000:]
    assert result.task("lv").changed is True
    assert writes(kube) == 0
    assert get_volume(kube) is None
    assert "+" in result.output or "after" in result.output  # the diff is shown


def test_server_side_defaults_never_show_as_changes(kube: Any, tmp_path: Path) -> None:
    create_volume(kube)  # everything Longhorn's webhook fills in
    result = run(kube, playbook(tmp_path, lv(size="10Gi", encrypted=False, data_engine="v1")))
    assert result.rc == 0, result.output[-3000:]
    assert result.task("lv").changed is False
    assert writes(kube) == 0


# --------------------------------------------------------------------------- update each mutable field


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("number_of_replicas", 2, "numberOfReplicas"),
        ("data_locality", "best-effort", "dataLocality"),
        ("access_mode", "rwx", "accessMode"),
        ("frontend", "iscsi", "frontend"),
        ("node_selector", ["nvme"], "nodeSelector"),
        ("disk_selector", ["fast"], "diskSelector"),
        ("stale_replica_timeout", 60, "staleReplicaTimeout"),
        ("replica_auto_balance", "best-effort", "replicaAutoBalance"),
        ("snapshot_data_integrity", "fast-check", "snapshotDataIntegrity"),
    ],
)
def test_update_each_mutable_field(kube: Any, tmp_path: Path, option: str, value: Any, field: str) -> None:
    create_volume(kube)
    four_runs(playbook(tmp_path, lv(**{option: value})), "lv", env=kube.env)
    vol = get_volume(kube)
    assert vol is not None
    assert vol["spec"][field] == value
    assert vol["spec"]["size"] == str(10 * GI), "fields the task did not set stay as they were"


def test_update_recurring_job_labels_is_exclusive(kube: Any, tmp_path: Path) -> None:
    create_volume(
        kube, labels={"recurring-job.longhorn.io/old": "enabled", "recurring-job-group.longhorn.io/default": "enabled"}
    )
    four_runs(playbook(tmp_path, lv(recurring_jobs=["daily", "weekly"])), "lv", env=kube.env)
    labels = (get_volume(kube) or {})["metadata"]["labels"]
    assert labels["recurring-job.longhorn.io/daily"] == "enabled"
    assert labels["recurring-job.longhorn.io/weekly"] == "enabled"
    assert "recurring-job.longhorn.io/old" not in labels
    assert labels["recurring-job-group.longhorn.io/default"] == "enabled", "groups were not managed"
    assert labels["longhornvolume"] == "data", "labels of others stay"


# --------------------------------------------------------------------------- grow


def test_grow_without_pvc_patches_the_volume(kube: Any, tmp_path: Path) -> None:
    create_volume(kube, status={"state": "detached", "robustness": "unknown"})
    runs = four_runs(playbook(tmp_path, lv(size="20Gi")), "lv", env=kube.env)
    assert runs[1].task("lv").result["actions"] == ["patch Volume longhorn-system/data: size"]
    assert (get_volume(kube) or {})["spec"]["size"] == str(20 * GI)


def test_grow_with_bound_pvc_patches_the_pvc(kube: Any, tmp_path: Path) -> None:
    create_volume(kube, status=bound_status())
    create_bound_pvc(kube)
    runs = four_runs(playbook(tmp_path, lv(size="20Gi")), "lv", env=kube.env)
    assert runs[1].task("lv").result["actions"] == ["patch PersistentVolumeClaim apps/data to request 20Gi"]
    pvc = kube.server.get("v1", "PersistentVolumeClaim", "data", "apps")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert (get_volume(kube) or {})["spec"]["size"] == str(10 * GI), "the CSI resizer grows the Volume, not us"
    assert kube.server.count(method="PATCH", path_prefix=VOLUMES) == 0


def test_grow_through_pvc_waits_for_the_resizer(kube: Any, tmp_path: Path) -> None:
    create_volume(kube, status=bound_status())
    create_bound_pvc(kube)

    def csi_resizer(server: Any, obj: dict[str, Any]) -> None:  # external-resizer -> Longhorn ControllerExpandVolume
        requested = obj["spec"]["resources"]["requests"]["storage"]
        vol = get_volume(kube) or {}
        if requested == "20Gi" and vol["spec"]["size"] != str(20 * GI):
            kube.server.patch("longhorn.io/v1beta2", "Volume", "data", NS, {"spec": {"size": str(20 * GI)}})

    kube.server.on_write("PersistentVolumeClaim", csi_resizer)
    result = run(kube, playbook(tmp_path, lv(size="20Gi", wait=True, wait_timeout=20)))
    assert result.rc == 0, result.output[-3000:]
    assert result.task("lv").result["volume"]["size"] == 20 * GI


def test_grow_through_a_pvc_kubernetes_will_not_expand_fails_clearly(kube: Any, tmp_path: Path) -> None:
    create_volume(kube, status=bound_status())
    create_bound_pvc(kube, expandable=False)
    result = run(kube, playbook(tmp_path, lv(size="20Gi")))
    assert result.rc != 0
    msg = result.task("lv").result["msg"]
    assert msg.startswith("patching PersistentVolumeClaim apps/data")
    assert "storageclass" in msg
    assert kube.server.count(method="PATCH", path_prefix=VOLUMES) == 0, "no Volume resize behind the PVC's back"
    assert (get_volume(kube) or {})["spec"]["size"] == str(10 * GI)


def test_shrink_and_immutable_changes_fail_without_a_write(kube: Any, tmp_path: Path) -> None:
    create_volume(kube, size=20 * GI)
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "shrink": ({"size": "10Gi"}, "size"),
        "encrypted": ({"encrypted": True}, "encrypted"),
        "data_engine": ({"data_engine": "v2"}, "data_engine"),
        "backing_image": ({"backing_image": "ubuntu-22.04"}, "backing_image"),
        "data_source": ({"data_source": "vol://other"}, "data_source"),
        "from_backup": ({"from_backup": "s3://b@us/?backup=backup-1&volume=data"}, "from_backup"),
        "compression": ({"backup_compression_method": "gzip"}, "backup_compression_method"),
        "strict_local": ({"data_locality": "strict-local"}, "number_of_replicas"),
    }
    tasks = [lv(name, ignore_errors=True, **args) for name, (args, _field) in cases.items()]
    result = run(kube, playbook(tmp_path, *tasks))
    for name, (_args, field) in cases.items():
        task = result.task(name)
        assert task.failed, f"{name} should fail"
        assert task.result["msg"].startswith(f"{field}:"), task.result["msg"]
        assert task.result["field"] == field
    assert "create a new volume" in result.task("encrypted").result["msg"]
    assert "cannot shrink" in result.task("shrink").result["msg"]
    assert writes(kube) == 0
    assert (get_volume(kube) or {})["spec"]["size"] == str(20 * GI)


# --------------------------------------------------------------------------- PV / PVC


def test_pv_and_pvc_like_longhorns_create_pv_pvc(kube: Any, tmp_path: Path) -> None:
    create_volume(
        kube,
        size=2 * GI,
        numberOfReplicas=2,
        nodeSelector=["nvme"],
        status={"state": "detached", "robustness": "unknown"},
    )
    pb = playbook(tmp_path, lv(pv={"fs_type": "ext4"}, pvc={"name": "web-data", "namespace": "apps"}))
    runs = four_runs(pb, "lv", env=kube.env)
    assert runs[1].task("lv").result["actions"] == [
        "create PersistentVolume data",
        "create PersistentVolumeClaim apps/web-data",
    ]
    pv = kube.server.get("v1", "PersistentVolume", "data")
    assert pv["spec"]["csi"]["driver"] == "driver.longhorn.io"
    assert pv["spec"]["csi"]["volumeHandle"] == "data"
    assert pv["spec"]["csi"]["fsType"] == "ext4"
    assert pv["spec"]["csi"]["volumeAttributes"] == {
        "diskSelector": "",
        "nodeSelector": "nvme",
        "numberOfReplicas": "2",
        "staleReplicaTimeout": "30",
    }
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["storageClassName"] == "longhorn-static"
    assert pv["spec"]["capacity"]["storage"] == "2Gi"
    assert pv["spec"]["accessModes"] == ["ReadWriteOnce"]
    pvc = kube.server.get("v1", "PersistentVolumeClaim", "web-data", "apps")
    assert pvc["spec"]["volumeName"] == "data"
    assert pvc["spec"]["storageClassName"] == "longhorn-static"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_existing_pv_of_another_volume_is_refused(kube: Any, tmp_path: Path) -> None:
    create_volume(kube)
    kube.server.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "data"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "csi": {"driver": "driver.longhorn.io", "volumeHandle": "other"},
            },
        }
    )
    kube.server.clear_requests()
    result = run(kube, playbook(tmp_path, lv(pv={})))
    assert result.rc != 0
    assert result.task("lv").result["msg"].startswith("pv.name: PersistentVolume data exists but is not")
    assert writes(kube) == 0


# --------------------------------------------------------------------------- delete


def test_delete_four_runs(kube: Any, tmp_path: Path) -> None:
    create_volume(kube)
    four_runs(playbook(tmp_path, lv(state="absent")), "lv", env=kube.env)
    assert get_volume(kube) is None


def test_delete_refuses_a_bound_pvc_unless_forced(kube: Any, tmp_path: Path) -> None:
    create_volume(kube, status=bound_status())
    result = run(kube, playbook(tmp_path, lv(state="absent")))
    assert result.rc != 0
    assert "PersistentVolumeClaim apps/data" in result.task("lv").result["msg"]
    assert result.task("lv").result["field"] == "state"
    assert writes(kube) == 0
    forced = run(
        kube, playbook(tmp_path, lv(state="absent", force=True, wait=True, wait_timeout=10), name="forced.yml")
    )
    assert forced.rc == 0, forced.output[-3000:]
    assert get_volume(kube) is None


# --------------------------------------------------------------------------- wait


def test_faulted_volume_fails_wait_with_robustness_and_conditions(kube: Any, tmp_path: Path) -> None:
    def longhorn_manager(server: Any, obj: dict[str, Any]) -> None:  # replicas cannot be scheduled
        if (obj.get("status") or {}).get("robustness") != "faulted":
            set_status(
                kube,
                obj["metadata"]["name"],
                {
                    "state": "detached",
                    "robustness": "faulted",
                    "conditions": [
                        {
                            "type": "Scheduled",
                            "status": "False",
                            "reason": "ReplicaSchedulingFailure",
                            "message": "insufficient storage on every node",
                        }
                    ],
                },
            )

    kube.server.on_write("Volume", longhorn_manager)
    result = run(kube, playbook(tmp_path, lv(size="10Gi", wait=True, wait_timeout=30)))
    assert result.rc != 0
    msg = result.task("lv").result["msg"]
    assert "robustness=faulted" in msg
    assert "Scheduled=False (ReplicaSchedulingFailure: insufficient storage on every node)" in msg


def test_wait_timeout_reports_robustness_and_conditions(kube: Any, tmp_path: Path) -> None:
    create_volume(
        kube,
        status={
            "state": "attached",
            "robustness": "degraded",
            "conditions": [
                {
                    "type": "Scheduled",
                    "status": "False",
                    "reason": "ReplicaSchedulingFailure",
                    "message": "1 of 3 missing",
                }
            ],
        },
    )
    result = run(kube, playbook(tmp_path, lv(wait=True, wait_timeout=2)))
    assert result.rc != 0
    msg = result.task("lv").result["msg"]
    assert "timed out" in msg
    assert "robustness=degraded" in msg
    assert "1 of 3 missing" in msg


def test_wait_succeeds_once_longhorn_reports_healthy(kube: Any, tmp_path: Path) -> None:
    def longhorn_manager(server: Any, obj: dict[str, Any]) -> None:
        if not (obj.get("status") or {}).get("state"):
            set_status(kube, obj["metadata"]["name"], {"state": "attached", "robustness": "healthy"})

    kube.server.on_write("Volume", longhorn_manager)
    result = run(kube, playbook(tmp_path, lv(size="10Gi", wait=True, wait_state="attached", wait_timeout=30)))
    assert result.rc == 0, result.output[-3000:]
    assert result.task("lv").result["volume"]["robustness"] == "healthy"


# --------------------------------------------------------------------------- bad input: no request at all

BAD_INPUTS: list[tuple[dict[str, Any], str]] = [
    ({"size": "10GB"}, "size"),
    ({"size": "ten"}, "size"),
    ({"size": "-5Gi"}, "size"),
    ({"size": "0"}, "size"),
    ({"size": "1.5Zi"}, "size"),
    ({"size": True}, "size"),
    ({"size": "9Ei"}, "size"),
    ({"name": "Data_Volume"}, "name"),
    ({"name": "a-very-long-volume-name-that-longhorn-rejects"}, "name"),
    ({"namespace": "Longhorn"}, "namespace"),
    ({"number_of_replicas": 0}, "number_of_replicas"),
    ({"number_of_replicas": 21}, "number_of_replicas"),
    ({"data_locality": "strict-local", "number_of_replicas": 3}, "number_of_replicas"),
    ({"data_locality": "local"}, "data_locality"),
    ({"access_mode": "ReadWriteMany"}, "access_mode"),
    ({"frontend": "nbd"}, "frontend"),
    ({"data_engine": "v3"}, "data_engine"),
    ({"data_engine": "v2", "encrypted": True}, "encrypted"),
    ({"encrypted": True, "size": "16Mi"}, "size"),
    ({"replica_auto_balance": "always"}, "replica_auto_balance"),
    ({"snapshot_data_integrity": "on"}, "snapshot_data_integrity"),
    ({"backup_compression_method": "zstd"}, "backup_compression_method"),
    ({"stale_replica_timeout": 0}, "stale_replica_timeout"),
    ({"node_selector": ["ssd,nvme"]}, "node_selector"),
    ({"recurring_jobs": ["daily backup"]}, "recurring_jobs"),
    ({"recurring_job_groups": ["-bad"]}, "recurring_job_groups"),
    ({"data_source": "pvc://data"}, "data_source"),
    ({"from_backup": "s3://bucket@us-east-1/"}, "from_backup"),
    ({"pv": {"fs_type": "btrfs"}}, "fs_type"),
    ({"pv": {"fs_type": "xfs"}, "size": "100Mi"}, "pv.fs_type"),
    ({"pvc": {"name": "x"}}, "namespace"),
    ({"state": "absent", "pvc": {"namespace": "apps"}}, "pvc"),
    ({"from_backup": "s3://b@r/?backup=b&volume=v", "data_source": "vol://x"}, "from_backup"),
]


def test_bad_inputs_fail_naming_the_field_without_any_request(kube: Any, tmp_path: Path) -> None:
    tasks = [lv(f"bad{i}", ignore_errors=True, **args) for i, (args, _field) in enumerate(BAD_INPUTS)]
    result = run(kube, playbook(tmp_path, *tasks))
    assert len(BAD_INPUTS) >= 20
    for i, (args, field) in enumerate(BAD_INPUTS):
        task = result.task(f"bad{i}")
        assert task.failed, f"{args} should fail"
        assert field in task.result["msg"], f"{args}: {task.result['msg']!r} does not name {field}"
    assert kube.server.count() == 0, "bad input must not reach the API server"


def test_module_defaults_group_configures_auth(kube: Any, tmp_path: Path) -> None:
    """Auth set once through `module_defaults: group/homelab.pi_cluster.k8s` (no K8S_AUTH_KUBECONFIG)."""
    env = {k: v for k, v in kube.env.items() if k != "K8S_AUTH_KUBECONFIG"}
    block = {
        "module_defaults": {"group/homelab.pi_cluster.k8s": {"kubeconfig": str(kube.kubeconfig)}},
        "block": [lv(size="1Gi"), {"name": "info", "homelab.pi_cluster.longhorn_volume_info": {"name": "data"}}],
    }
    result = run_playbook(playbook(tmp_path, block), env=env)
    assert result.rc == 0, result.output[-3000:]
    assert result.task("lv").changed is True
    volumes = result.task("info").result["volumes"]
    assert [v["name"] for v in volumes] == ["data"]
    assert volumes[0]["size"] == GI
