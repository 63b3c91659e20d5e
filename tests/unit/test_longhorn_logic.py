"""Pure logic of longhorn_volume: sizes, validation, update planning, PV/PVC manifests, wait."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _longhorn as lh

GI = 1024**3
MI = 1024**2


def params(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "data", "namespace": "longhorn-system", "state": "present"}
    base.update(overrides)
    return base


def volume(
    size: int = 10 * GI, labels: dict[str, str] | None = None, status: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
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
    }
    body.update(spec)
    return {
        "apiVersion": lh.API_VERSION,
        "kind": "Volume",
        "metadata": {"name": "data", "namespace": "longhorn-system", "labels": labels or {}},
        "spec": body,
        "status": status or {},
    }


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10Gi", 10 * GI),
        ("512Mi", 512 * MI),
        ("1.5Gi", 1536 * MI),
        ("1G", 10**9),
        ("1e9", 10**9),
        ("2k", 2000),
        ("1Ki", 1024),
        (10737418240, 10 * GI),
        ("10737418240", 10 * GI),
        (" 1Ti ", 1024**4),
        ("0.5Mi", 512 * 1024),
        (".5Gi", 512 * MI),
        (3.0, 3),
    ],
)
def test_parse_size_accepts_quantities_and_bytes(raw: Any, expected: int) -> None:
    assert lh.parse_size(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "10GB", "10gi", "ten", "-1Gi", "0", 0, "1m", "Gi", True, None, 1.5, "10 Gi", "9Ei", "1e30"]
)
def test_parse_size_rejects_garbage_naming_the_field(raw: Any) -> None:
    with pytest.raises(lh.InvalidOptionError) as err:
        lh.parse_size(raw)
    assert str(err.value).startswith("size:")
    assert err.value.field == "size"


def test_parse_size_fraction_of_a_byte_rounds_up_like_a_quantity() -> None:
    assert lh.parse_size("1.5") == 2  # Quantity("1.5").Value() == 2


@pytest.mark.parametrize(
    ("size", "rounded"),
    [(1, 2 * MI), (2 * MI, 2 * MI), (2 * MI + 1, 4 * MI), (10**9, 477 * 2 * MI), (10 * GI, 10 * GI), (0, 2 * MI)],
)
def test_round_up_size_matches_longhorn(size: int, rounded: int) -> None:
    assert lh.round_up_size(size) == rounded


def test_normalize_size_makes_equal_requests_compare_equal() -> None:
    assert lh.normalize_size("10Gi") == lh.normalize_size(10 * GI) == lh.normalize_size("10240Mi")
    assert lh.normalize_size("1G") == 1000341504


@pytest.mark.parametrize(
    ("size", "text"),
    [(10 * GI, "10Gi"), (1536 * MI, "1536Mi"), (2 * MI, "2Mi"), (1024**4, "1Ti"), (1000, "1000"), (1536, "1536")],
)
def test_format_quantity_is_binary_si(size: int, text: str) -> None:
    assert lh.format_quantity(size) == text
    assert lh.parse_size(text) == size


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "Data"}, "name"),
        ({"name": "a" * 41}, "name"),
        ({"name": "-x"}, "name"),
        ({"namespace": "Longhorn"}, "namespace"),
        ({"size": "10GB"}, "size"),
        ({"number_of_replicas": 0}, "number_of_replicas"),
        ({"number_of_replicas": 21}, "number_of_replicas"),
        ({"data_locality": "local"}, "data_locality"),
        ({"access_mode": "ReadWriteOnce"}, "access_mode"),
        ({"frontend": "nbd"}, "frontend"),
        ({"data_engine": "v3"}, "data_engine"),
        ({"replica_auto_balance": "on"}, "replica_auto_balance"),
        ({"snapshot_data_integrity": "yes"}, "snapshot_data_integrity"),
        ({"backup_compression_method": "zstd"}, "backup_compression_method"),
        ({"stale_replica_timeout": 0}, "stale_replica_timeout"),
        ({"node_selector": ["ssd,fast"]}, "node_selector"),
        ({"disk_selector": [""]}, "disk_selector"),
        ({"recurring_jobs": ["bad name"]}, "recurring_jobs"),
        ({"recurring_job_groups": ["-x"]}, "recurring_job_groups"),
        ({"data_source": "pvc://x"}, "data_source"),
        ({"from_backup": "s3://bucket@us/"}, "from_backup"),
        ({"data_locality": "strict-local", "number_of_replicas": 3}, "number_of_replicas"),
        ({"data_engine": "v2", "encrypted": True}, "encrypted"),
        ({"data_engine": "v2", "backing_image": "img"}, "backing_image"),
        ({"encrypted": True, "size": "16Mi"}, "size"),
        ({"pv": {"fs_type": "btrfs"}}, "pv.fs_type"),
        ({"pv": {"name": "Bad_PV"}}, "pv.name"),
        ({"pv": {"fs_type": "xfs"}, "size": "100Mi"}, "pv.fs_type"),
        ({"pvc": {"name": "data"}}, "pvc.namespace"),
        ({"state": "absent", "pvc": {"namespace": "apps"}}, "pvc"),
    ],
)
def test_validate_params_rejects_what_longhorn_would(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(lh.InvalidOptionError) as err:
        lh.validate_params(params(**overrides))
    assert err.value.field == field
    assert str(err.value).startswith(field.split(".", maxsplit=1)[0])


def test_validate_params_normalizes_size() -> None:
    out = lh.validate_params(params(size="1.5Gi", number_of_replicas=2))
    assert out["size"] == 1536 * MI
    assert out["number_of_replicas"] == 2


# --------------------------------------------------------------------------- create


def test_create_body_contains_only_what_was_asked_plus_longhorn_api_defaults() -> None:
    p = lh.validate_params(
        params(
            size="10Gi",
            number_of_replicas=2,
            node_selector=["ssd", "nvme", "ssd"],
            recurring_jobs=["daily"],
            recurring_job_groups=["backup"],
        )
    )
    body = lh.create_body(p)
    assert body["apiVersion"] == "longhorn.io/v1beta2"
    assert body["spec"] == {
        "size": str(10 * GI),
        "numberOfReplicas": 2,
        "nodeSelector": ["nvme", "ssd"],
        "frontend": "blockdev",
    }
    assert body["metadata"]["labels"] == {
        "recurring-job.longhorn.io/daily": "enabled",
        "recurring-job-group.longhorn.io/backup": "enabled",
    }


def test_create_body_needs_a_size_unless_restoring() -> None:
    with pytest.raises(lh.InvalidOptionError, match=r"^size: required"):
        lh.create_body(lh.validate_params(params()))
    body = lh.create_body(lh.validate_params(params(from_backup="s3://b@r/?backup=backup-1&volume=data")))
    assert "size" not in body["spec"]
    assert body["spec"]["fromBackup"].startswith("s3://")


# --------------------------------------------------------------------------- update planning


def test_plan_update_unchanged_when_webhook_filled_the_rest() -> None:
    p = lh.validate_params(params(size="10Gi", number_of_replicas=3, encrypted=False, data_engine="v1"))
    plan = lh.plan_update(volume(), p)
    assert plan == {"spec": {}, "labels": {}, "grow_to": None}


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("number_of_replicas", 2, "numberOfReplicas"),
        ("data_locality", "best-effort", "dataLocality"),
        ("access_mode", "rwx", "accessMode"),
        ("frontend", "iscsi", "frontend"),
        ("node_selector", ["ssd"], "nodeSelector"),
        ("disk_selector", ["nvme"], "diskSelector"),
        ("stale_replica_timeout", 60, "staleReplicaTimeout"),
        ("replica_auto_balance", "best-effort", "replicaAutoBalance"),
        ("snapshot_data_integrity", "fast-check", "snapshotDataIntegrity"),
    ],
)
def test_plan_update_patches_each_mutable_field(option: str, value: Any, field: str) -> None:
    plan = lh.plan_update(volume(), lh.validate_params(params(**{option: value})))
    assert plan["spec"] == {field: value}
    assert plan["grow_to"] is None


def test_plan_update_selectors_compare_as_sets() -> None:
    plan = lh.plan_update(volume(nodeSelector=["b", "a"]), lh.validate_params(params(node_selector=["a", "b", "a"])))
    assert plan["spec"] == {}


def test_plan_update_grow_and_equal_size_after_rounding() -> None:
    assert lh.plan_update(volume(), lh.validate_params(params(size="20Gi")))["grow_to"] == 20 * GI
    assert lh.plan_update(volume(size=10 * GI), lh.validate_params(params(size="10737418239")))["grow_to"] is None


def test_plan_update_refuses_to_shrink() -> None:
    with pytest.raises(lh.ShrinkError) as err:
        lh.plan_update(volume(), lh.validate_params(params(size="5Gi")))
    assert err.value.field == "size"
    assert "10Gi" in str(err.value)
    assert "5Gi" in str(err.value)


@pytest.mark.parametrize(
    ("option", "value", "live"),
    [
        ("encrypted", True, {}),
        ("data_engine", "v2", {}),
        ("backing_image", "ubuntu", {}),
        ("data_source", "vol://other", {}),
        ("from_backup", "s3://b@r/?backup=backup-1&volume=data", {}),
        ("backup_compression_method", "gzip", {}),
        ("encrypted", False, {"encrypted": True}),
    ],
)
def test_plan_update_refuses_immutable_changes_naming_the_field(option: str, value: Any, live: dict) -> None:
    with pytest.raises(lh.ImmutableFieldError) as err:
        lh.plan_update(volume(**live), lh.validate_params(params(**{option: value})))
    assert err.value.field == option
    assert str(err.value).startswith(f"{option}: volume data has ")
    assert "create" in str(err.value) or "drop the option" in str(err.value)


def test_plan_update_checks_combination_with_the_live_volume() -> None:
    with pytest.raises(lh.InvalidOptionError, match="strict-local"):
        lh.plan_update(volume(), lh.validate_params(params(data_locality="strict-local")))
    plan = lh.plan_update(volume(), lh.validate_params(params(data_locality="strict-local", number_of_replicas=1)))
    assert plan["spec"] == {"dataLocality": "strict-local", "numberOfReplicas": 1}


def test_recurring_labels_are_exclusive_per_kind() -> None:
    current = {
        "recurring-job.longhorn.io/old": "enabled",
        "recurring-job-group.longhorn.io/keep": "enabled",
        "longhornvolume": "data",
    }
    changes = lh.recurring_labels(params(recurring_jobs=["daily"]), current)
    assert changes == {"recurring-job.longhorn.io/daily": "enabled", "recurring-job.longhorn.io/old": None}


def test_recurring_labels_untouched_when_not_asked() -> None:
    assert lh.recurring_labels(params(), {"recurring-job.longhorn.io/old": "enabled"}) == {}


def test_recurring_labels_empty_lists_leave_longhorns_default_group() -> None:
    current = {"recurring-job-group.longhorn.io/default": "enabled"}
    assert lh.recurring_labels(params(recurring_jobs=[], recurring_job_groups=[]), current) == {}
    current = {"recurring-job.longhorn.io/x": "enabled"}
    assert lh.recurring_labels(params(recurring_jobs=[], recurring_job_groups=[]), current) == {
        "recurring-job-group.longhorn.io/default": "enabled",
        "recurring-job.longhorn.io/x": None,
    }


def test_volume_patch_routes_growth() -> None:
    plan = {"spec": {"numberOfReplicas": 2}, "labels": {"a": None}, "grow_to": 20 * GI}
    assert lh.volume_patch(plan, size_on_volume=True) == {
        "spec": {"numberOfReplicas": 2, "size": str(20 * GI)},
        "metadata": {"labels": {"a": None}},
    }
    assert lh.volume_patch(plan, size_on_volume=False) == {
        "spec": {"numberOfReplicas": 2},
        "metadata": {"labels": {"a": None}},
    }
    assert lh.volume_patch({"spec": {}, "labels": {}, "grow_to": None}, True) == {}


def test_bound_pvc_follows_longhorns_kubernetes_status() -> None:
    assert lh.bound_pvc(volume()) is None
    bound = volume(status={"kubernetesStatus": {"pvcName": "data", "namespace": "apps", "pvName": "data"}})
    assert lh.bound_pvc(bound) == ("apps", "data")
    released = volume(
        status={"kubernetesStatus": {"pvcName": "data", "namespace": "apps", "lastPVCRefAt": "2026-01-01T00:00:00Z"}}
    )
    assert lh.bound_pvc(released) is None


def test_diff_view_and_summary() -> None:
    vol = volume(
        labels={"recurring-job.longhorn.io/daily": "enabled"}, status={"state": "detached", "robustness": "unknown"}
    )
    view = lh.diff_view(vol, params(size=10 * GI, number_of_replicas=3, recurring_jobs=["daily"]))
    assert view == {"size": "10Gi", "numberOfReplicas": 3, "labels": {"recurring-job.longhorn.io/daily": "enabled"}}
    info = lh.summary(vol)
    assert info["size"] == 10 * GI
    assert info["size_quantity"] == "10Gi"
    assert info["recurring_jobs"] == ["daily"]
    assert info["state"] == "detached"


# --------------------------------------------------------------------------- PV / PVC


def test_pv_manifest_matches_longhorn_create_pv() -> None:
    vol = volume(size=2 * GI, numberOfReplicas=2, nodeSelector=["a", "b"], staleReplicaTimeout=20)
    pv = lh.pv_manifest(vol, None)
    assert pv["metadata"] == {"name": "data"}
    assert pv["spec"] == {
        "capacity": {"storage": "2Gi"},
        "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain",
        "volumeMode": "Filesystem",
        "storageClassName": "longhorn-static",
        "csi": {
            "driver": "driver.longhorn.io",
            "fsType": "ext4",
            "volumeHandle": "data",
            "volumeAttributes": {
                "diskSelector": "",
                "nodeSelector": "a,b",
                "numberOfReplicas": "2",
                "staleReplicaTimeout": "20",
            },
        },
    }


def test_pv_manifest_rwx_encrypted_and_options() -> None:
    vol = volume(accessMode="rwx", encrypted=True)
    pv = lh.pv_manifest(vol, {"name": "pv-data", "fs_type": "xfs", "storage_class": "manual"})
    csi = pv["spec"]["csi"]
    assert pv["metadata"]["name"] == "pv-data"
    assert pv["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pv["spec"]["storageClassName"] == "manual"
    assert csi["fsType"] == "xfs"
    assert csi["volumeAttributes"]["encrypted"] == "true"
    assert csi["volumeAttributes"]["migratable"] == "false"
    assert csi["nodeStageSecretRef"] == {"name": "longhorn-crypto", "namespace": "longhorn-system"}
    # rwop maps to ReadWriteOnce, as in Longhorn
    assert lh.pv_manifest(volume(accessMode="rwop"), None)["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_pv_manifest_xfs_needs_300mi() -> None:
    with pytest.raises(lh.InvalidOptionError, match=r"^pv\.fs_type"):
        lh.pv_manifest(volume(size=100 * MI), {"fs_type": "xfs"})


def test_pv_name_prefers_option_then_longhorn_status() -> None:
    vol = volume(status={"kubernetesStatus": {"pvName": "existing"}})
    assert lh.pv_name_for(vol, None) == "existing"
    assert lh.pv_name_for(vol, {"name": "mine"}) == "mine"
    assert lh.pv_name_for(volume(), {}) == "data"


def test_pvc_manifest_matches_longhorn_create_pvc() -> None:
    vol = volume(size=2 * GI)
    pv = lh.pv_manifest(vol, {"storage_class": "manual"})
    pvc = lh.pvc_manifest(vol, pv, {"namespace": "apps"})
    assert pvc == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "apps"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "2Gi"}},
            "storageClassName": "manual",
            "volumeName": "data",
        },
    }


def test_existing_pv_and_pvc_checks() -> None:
    vol = volume()
    pv = lh.pv_manifest(vol, None)
    lh.check_existing_pv(pv, "data", None)
    lh.check_existing_pv(pv, "data", {"fs_type": "ext4", "storage_class": "longhorn-static"})
    with pytest.raises(lh.ConflictingObjectError, match=r"^pv\.name"):
        lh.check_existing_pv(pv, "other", None)
    with pytest.raises(lh.ImmutableFieldError, match=r"^pv\.storage_class"):
        lh.check_existing_pv(pv, "data", {"storage_class": "manual"})
    pvc = lh.pvc_manifest(vol, pv, {"namespace": "apps"})
    lh.check_existing_pvc(pvc, "data")
    with pytest.raises(lh.ConflictingObjectError, match=r"^pvc\.name"):
        lh.check_existing_pvc(pvc, "another-pv")
    assert lh.pvc_request(pvc) == 10 * GI


# --------------------------------------------------------------------------- wait


@pytest.mark.parametrize(
    ("status", "wait_state", "ready"),
    [
        ({"state": "creating", "robustness": "unknown"}, None, False),
        ({"state": "detached", "robustness": "unknown"}, None, True),
        ({"state": "attached", "robustness": "degraded"}, None, False),
        ({"state": "attached", "robustness": "healthy"}, None, True),
        ({"state": "detached", "robustness": "unknown"}, "attached", False),
        ({"state": "attached", "robustness": "healthy"}, "detached", False),
    ],
)
def test_volume_ready(status: dict[str, Any], wait_state: str | None, ready: bool) -> None:
    assert lh.volume_ready(volume(status=status), wait_state, None) is ready


def test_volume_ready_waits_for_expansion() -> None:
    vol = volume(size=10 * GI, status={"state": "detached", "robustness": "unknown"})
    assert lh.volume_ready(vol, None, 20 * GI) is False
    assert lh.volume_ready(vol, None, 10 * GI) is True


def test_volume_ready_fails_fast_on_faulted_with_conditions() -> None:
    vol = volume(
        status={
            "state": "detached",
            "robustness": "faulted",
            "conditions": [
                {
                    "type": "Scheduled",
                    "status": "False",
                    "reason": "ReplicaSchedulingFailure",
                    "message": "insufficient storage",
                }
            ],
        }
    )
    with pytest.raises(lh.VolumeFaultedError) as err:
        lh.volume_ready(vol, None, None)
    assert "robustness=faulted" in str(err.value)
    assert "Scheduled=False (ReplicaSchedulingFailure: insufficient storage)" in str(err.value)
