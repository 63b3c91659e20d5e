"""longhorn_volume module: entry point validation (no request on bad input) and the manager's flows
against an in-memory stand-in for ResourceService."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any, cast

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _longhorn as lh
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import K8sTimeoutError, apply_merge_patch
from ansible_collections.homelab.pi_cluster.plugins.modules import longhorn_volume as mod

GI = 1024**3


class FakeService:
    """Just enough of ResourceService: a dict store keyed by (kind, namespace, name)."""

    def __init__(self, check_mode: bool = False) -> None:
        self.check_mode = check_mode
        self.store: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []

    def put(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.store[(obj["kind"], meta.get("namespace"), meta["name"])] = copy.deepcopy(obj)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        self.calls.append(("GET", kind, name))
        obj = self.store.get((kind, namespace, name))
        return copy.deepcopy(obj) if obj else None

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if not self.check_mode:
            self.calls.append(("CREATE", obj["kind"], obj["metadata"]["name"]))
            self.put(obj)
        return copy.deepcopy(obj)

    def patch(  # noqa: PLR0917 (mirrors ResourceService.patch)
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Any,
        patch_type: str = "merge",
        current: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        base = current if current is not None else self.store[(kind, namespace, name)]
        after = apply_merge_patch(base, patch)
        if not self.check_mode:
            self.calls.append(("PATCH", kind, name))
            self.store[(kind, namespace, name)] = after
        return copy.deepcopy(after)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        current = self.get(api_version, kind, name, namespace)
        if current is not None and not self.check_mode:
            self.calls.append(("DELETE", kind, name))
            del self.store[(kind, namespace, name)]
        return current

    def wait(  # noqa: PLR0917 (mirrors ResourceService.wait)
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        predicate: Callable[[Any], bool],
        timeout: float,
        describe: Callable[[Any], str] | None = None,
        interval: float = 1.0,
    ) -> dict[str, Any] | None:
        obj = self.get(api_version, kind, name, namespace)
        if predicate(obj):
            return obj
        raise K8sTimeoutError(f"timed out waiting for {kind} {name}: {describe(obj) if describe else ''}")

    def writes(self) -> list[tuple[str, str, str]]:
        return [c for c in self.calls if c[0] != "GET"]


def manager(service: FakeService, params: dict[str, Any]) -> mod.VolumeManager:
    return mod.VolumeManager(cast(Any, service), params)


def options(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {k: None for k in mod.argument_spec()}
    base.update(name="data", namespace="longhorn-system", state="present", force=False, wait=False, wait_timeout=5)
    base.update(overrides)
    return lh.validate_params(base)


def existing(service: FakeService, size: int = 10 * GI, status: dict[str, Any] | None = None, **spec: Any) -> None:
    body = {
        "size": str(size),
        "numberOfReplicas": 3,
        "accessMode": "rwo",
        "frontend": "blockdev",
        "dataEngine": "v1",
        "nodeSelector": [],
        "diskSelector": [],
        "staleReplicaTimeout": 30,
    }
    body.update(spec)
    service.put(
        {
            "apiVersion": lh.API_VERSION,
            "kind": "Volume",
            "metadata": {"name": "data", "namespace": "longhorn-system"},
            "spec": body,
            "status": status or {"state": "detached", "robustness": "unknown"},
        }
    )


def bound_status(pvc_ns: str = "apps", pvc: str = "data") -> dict[str, Any]:
    return {
        "state": "attached",
        "robustness": "healthy",
        "kubernetesStatus": {"pvName": "data", "pvcName": pvc, "namespace": pvc_ns},
    }


# --------------------------------------------------------------------------- entry point


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"size": "10GB"}, "size"),
        ({"size": "-1"}, "size"),
        ({"number_of_replicas": 0}, "number_of_replicas"),
        ({"name": "Bad_Name"}, "name"),
        ({"data_locality": "strict-local", "number_of_replicas": 2}, "number_of_replicas"),
    ],
)
def test_bad_input_fails_before_any_client_is_built(
    args: dict[str, Any], field: str, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_client(module: Any) -> None:
        raise AssertionError("a client was built for bad input")

    monkeypatch.setattr(mod, "get_client", no_client)
    with patch_module_args({"name": "data", **args}), pytest.raises(SystemExit):
        mod.main()
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] is True
    assert out["field"] == field
    assert out["msg"].startswith(field)


# --------------------------------------------------------------------------- manager flows


def test_create_then_noop() -> None:
    service = FakeService()
    result = manager(service, options(size="10Gi", number_of_replicas=2)).run()
    assert result["changed"] is True
    assert service.writes() == [("CREATE", "Volume", "data")]
    assert result["volume"]["size"] == 10 * GI
    service.calls.clear()
    result = manager(service, options(size="10737418240", number_of_replicas=2)).run()
    assert result["changed"] is False
    assert service.calls == [("GET", "Volume", "data")]


def test_check_mode_predicts_without_writing() -> None:
    service = FakeService(check_mode=True)
    existing(service)
    result = manager(service, options(size="20Gi", recurring_jobs=["daily"])).run()
    assert result["changed"] is True
    assert service.writes() == []
    assert result["volume"]["size"] == 20 * GI
    assert result["diff"]["before"]["size"] == "10Gi"
    assert result["diff"]["after"]["size"] == "20Gi"
    assert result["diff"]["after"]["labels"] == {"recurring-job.longhorn.io/daily": "enabled"}


def test_grow_without_pvc_patches_the_volume() -> None:
    service = FakeService()
    existing(service)
    result = manager(service, options(size="20Gi")).run()
    assert service.writes() == [("PATCH", "Volume", "data")]
    assert service.store[("Volume", "longhorn-system", "data")]["spec"]["size"] == str(20 * GI)
    assert result["actions"] == ["patch Volume longhorn-system/data: size"]


def test_grow_with_bound_pvc_patches_the_pvc_once() -> None:
    service = FakeService()
    existing(service, status=bound_status())
    service.put(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "apps"},
            "spec": {"resources": {"requests": {"storage": "10Gi"}}, "volumeName": "data"},
        }
    )
    result = manager(service, options(size="20Gi", number_of_replicas=2)).run()
    assert service.writes() == [("PATCH", "PersistentVolumeClaim", "data"), ("PATCH", "Volume", "data")]
    assert (
        service.store[("PersistentVolumeClaim", "apps", "data")]["spec"]["resources"]["requests"]["storage"] == "20Gi"
    )
    volume = service.store[("Volume", "longhorn-system", "data")]
    assert volume["spec"]["size"] == str(10 * GI), "the Volume's size must be left to the CSI resizer"
    assert volume["spec"]["numberOfReplicas"] == 2
    assert "patch PersistentVolumeClaim apps/data to request 20Gi" in result["actions"]
    service.calls.clear()
    result = manager(service, options(size="20Gi", number_of_replicas=2)).run()
    assert result["changed"] is False, "an expansion in flight must not be requested again"
    assert service.writes() == []


def test_shrink_and_immutable_fail_without_writes() -> None:
    service = FakeService()
    existing(service, size=20 * GI)
    with pytest.raises(lh.ShrinkError):
        manager(service, options(size="10Gi", number_of_replicas=1)).run()
    with pytest.raises(lh.ImmutableFieldError, match=r"^encrypted"):
        manager(service, options(encrypted=True, number_of_replicas=1)).run()
    assert service.writes() == []


def test_pv_and_pvc_created_like_longhorn_then_idempotent() -> None:
    service = FakeService()
    existing(service)
    params = options(
        pv={"name": None, "fs_type": "ext4", "storage_class": "longhorn-static"},
        pvc={"name": "web", "namespace": "apps"},
    )
    result = manager(service, params).run()
    assert service.writes() == [("CREATE", "PersistentVolume", "data"), ("CREATE", "PersistentVolumeClaim", "web")]
    pvc = service.store[("PersistentVolumeClaim", "apps", "web")]
    assert pvc["spec"]["volumeName"] == "data"
    assert pvc["spec"]["storageClassName"] == "longhorn-static"
    assert result["pv"] == "data" and result["pvc"] == "apps/web"
    assert result["diff"]["before"]["pvc"] is None and result["diff"]["after"]["pvc"] == "apps/web"
    service.calls.clear()
    assert manager(service, params).run()["changed"] is False
    assert service.writes() == []


def test_pvc_for_a_released_pv_clears_the_old_claim() -> None:
    service = FakeService()
    existing(service)
    pv = lh.pv_manifest(service.store[("Volume", "longhorn-system", "data")], None)
    pv["spec"]["claimRef"] = {"namespace": "old", "name": "gone"}
    pv["status"] = {"phase": "Released"}
    service.put(pv)
    manager(service, options(pvc={"name": None, "namespace": "apps"})).run()
    assert service.writes() == [("PATCH", "PersistentVolume", "data"), ("CREATE", "PersistentVolumeClaim", "data")]
    assert "claimRef" not in service.store[("PersistentVolume", None, "data")]["spec"]


def test_absent_refuses_bound_pvc_unless_forced() -> None:
    service = FakeService()
    existing(service, status=bound_status())
    with pytest.raises(lh.PVCBoundError, match="apps/data"):
        manager(service, options(state="absent")).run()
    assert service.writes() == []
    result = manager(service, options(state="absent", force=True)).run()
    assert result["changed"] is True and service.writes() == [("DELETE", "Volume", "data")]
    assert manager(service, options(state="absent")).run()["changed"] is False


def test_wait_reports_faulted_with_conditions() -> None:
    service = FakeService()
    existing(
        service,
        status={
            "state": "detached",
            "robustness": "faulted",
            "conditions": [
                {"type": "Scheduled", "status": "False", "reason": "ReplicaSchedulingFailure", "message": "no disk"}
            ],
        },
    )
    with pytest.raises(lh.VolumeFaultedError, match="ReplicaSchedulingFailure: no disk"):
        manager(service, options(wait=True)).run()


def test_wait_timeout_reports_robustness() -> None:
    service = FakeService()
    existing(service, status={"state": "attached", "robustness": "degraded"})
    with pytest.raises(K8sTimeoutError, match="robustness=degraded"):
        manager(service, options(wait=True)).run()


def test_conflicting_pv_fails_before_the_volume_is_written() -> None:
    service = FakeService()
    existing(service)
    service.put(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "data"},
            "spec": {"csi": {"driver": "driver.longhorn.io", "volumeHandle": "someone-else"}},
        }
    )
    with pytest.raises(lh.ConflictingObjectError, match=r"^pv\.name"):
        manager(service, options(size="20Gi", number_of_replicas=2, pv={"name": None})).run()
    assert service.writes() == [], "no partial write: the volume must not grow when the PV step cannot succeed"


def test_pv_bound_to_another_claim_fails_before_writes() -> None:
    service = FakeService()
    existing(service)
    pv = lh.pv_manifest(service.store[("Volume", "longhorn-system", "data")], None)
    pv["spec"]["claimRef"] = {"namespace": "other", "name": "theirs"}
    pv["status"] = {"phase": "Bound"}
    service.put(pv)
    with pytest.raises(lh.ConflictingObjectError, match="other/theirs"):
        manager(service, options(number_of_replicas=2, pvc={"name": None, "namespace": "apps"})).run()
    assert service.writes() == []


def test_existing_pv_with_other_fs_type_is_accepted_when_fs_type_is_not_set() -> None:
    service = FakeService()
    existing(service)
    service.put(lh.pv_manifest(service.store[("Volume", "longhorn-system", "data")], {"fs_type": "xfs"}))
    result = manager(service, options(pv={"name": None, "fs_type": None, "storage_class": None})).run()
    assert result["changed"] is False
    with pytest.raises(lh.ImmutableFieldError, match=r"^pv\.fs_type"):
        manager(service, options(pv={"name": None, "fs_type": "ext4", "storage_class": None})).run()
