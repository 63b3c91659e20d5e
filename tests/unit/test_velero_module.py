"""velero_schedule / velero_schedule_info entry points: bad input fails before any client exists,
and the manager's flows (create, no-op, update, conflict, pause, delete, wait, run_now) against an
in-memory stand-in for ResourceService."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _velero as v
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import (
    K8sConflictError,
    K8sTimeoutError,
    apply_merge_patch,
)
from ansible_collections.homelab.pi_cluster.plugins.modules import velero_schedule as mod
from ansible_collections.homelab.pi_cluster.plugins.modules import velero_schedule_info as info_mod

Key = tuple[str, str, str]
Calls = list[tuple[str, str, str]]  # named here: inside FakeService `list` is a method


class FakeService:
    """Enough of ResourceService: objects in a dict, a call log, optional injected conflicts."""

    def __init__(self, check_mode: bool = False) -> None:
        self.check_mode = check_mode
        self.store: dict[Key, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.conflicts = 0
        self.on_write: Callable[[dict[str, Any]], None] | None = None
        self.version = 0

    def put(self, obj: dict[str, Any]) -> None:
        self.version += 1
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("uid", f"uid-{obj['metadata']['name']}")
        obj["metadata"]["resourceVersion"] = str(self.version)
        if self.on_write:
            self.on_write(obj)
        self.store[(obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        self.calls.append(("GET", kind, name))
        obj = self.store.get((kind, namespace or "", name))
        return copy.deepcopy(obj) if obj else None

    def list(self, api_version: str, kind: str, namespace: str | None = None, **_: Any) -> list[dict[str, Any]]:
        self.calls.append(("LIST", kind, ""))
        return [copy.deepcopy(o) for (k, ns, _n), o in sorted(self.store.items()) if k == kind and ns == namespace]

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.check_mode:
            return copy.deepcopy(obj)
        self.calls.append(("CREATE", obj["kind"], obj["metadata"]["name"]))
        key = (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
        if key in self.store:
            raise K8sConflictError("already exists", 409, "AlreadyExists")
        self.put(obj)
        return copy.deepcopy(self.store[key])

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
        key = (kind, namespace or "", name)
        if self.check_mode:
            return apply_merge_patch(current, patch)
        self.calls.append(("PATCH", kind, name))
        if self.conflicts:
            self.conflicts -= 1
            self.put(self.store[key])  # someone else wrote: resourceVersion moves on
            raise K8sConflictError("conflict", 409, "Conflict")
        assert patch["metadata"]["resourceVersion"] == self.store[key]["metadata"]["resourceVersion"]
        self.put(apply_merge_patch(self.store[key], patch))
        return copy.deepcopy(self.store[key])

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        current = self.get(api_version, kind, name, namespace)
        if current is not None and not self.check_mode:
            self.calls.append(("DELETE", kind, name))
            del self.store[(kind, namespace or "", name)]
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
        raise K8sTimeoutError(f"timed out: {describe(obj) if describe else ''}")

    def writes(self) -> Calls:
        return [c for c in self.calls if c[0] not in ("GET", "LIST")]


def run_module(module: Any, args: dict[str, Any], service: FakeService | None, capsys: Any) -> dict[str, Any]:
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeService]:
    fake = FakeService()

    def make(client: Any, check_mode: bool = False) -> FakeService:
        fake.check_mode = check_mode
        return fake

    monkeypatch.setattr(mod, "get_client", lambda module: object())
    monkeypatch.setattr(mod, "ResourceService", make)
    monkeypatch.setattr(info_mod, "get_client", lambda module: object())
    monkeypatch.setattr(info_mod, "ResourceService", lambda client, check_mode=False: fake)
    yield fake


DAILY = {"name": "daily", "schedule": "0 2 * * *", "excluded_namespaces": ["kube-system"], "ttl": "720h"}

BAD_INPUTS = [
    ({"schedule": "0 2 * * 7"}, "schedule: invalid cron expression"),
    ({"schedule": "0 2 * *"}, "exactly 5 fields"),
    ({"schedule": "@fortnightly"}, "unrecognized descriptor"),
    ({"schedule": "CRON_TZ=Nowhere/City 0 2 * * *"}, "unknown time zone"),
    ({"schedule": "@every 2d"}, 'unknown unit "d"'),
    ({"schedule": None}, "schedule: is required"),
    ({"ttl": "30"}, "ttl: '30' is not a duration"),
    ({"ttl": "-1h"}, "ttl: '-1h' is negative"),
    ({"csi_snapshot_timeout": "ten minutes"}, "csi_snapshot_timeout:"),
    ({"item_operation_timeout": "4hours"}, "item_operation_timeout:"),
    ({"name": "Daily_Backup"}, "name: 'Daily_Backup' is not a valid name"),
    ({"name": "d" * 64}, "longer than 63"),
    ({"namespace": "Velero"}, "namespace:"),
    ({"excluded_namespaces": ["*"]}, "excluded_namespaces: cannot contain '*'"),
    ({"included_namespaces": ["apps"], "excluded_namespaces": ["apps"]}, "excluded_namespaces: also lists"),
    ({"included_resources": ["pods"], "excluded_cluster_scoped_resources": ["nodes"]}, "included_resources: cannot be"),
    ({"label_selector": {"match_labels": {"a": "b"}}, "or_label_selectors": [{}]}, "mutually exclusive"),
    ({"label_selector": {"match_expressions": [{"key": "a", "operator": "Near"}]}}, "operator"),
    ({"label_selector": {"match_expressions": [{"key": "a", "operator": "In"}]}}, "needs at least one value"),
    ({"hooks": [{"name": "h"}]}, "hooks[0]: a hook needs"),
    (
        {"hooks": [{"name": "h", "pre": [{"exec": {"command": ["x"], "timeout": "1 min"}}]}]},
        "hooks[0].pre[0].exec.timeout",
    ),
    ({"hooks": [{"name": "h", "pre": [{"exec": {"command": ["x"], "on_error": "Ignore"}}]}]}, "on_error"),
    ({"storage_location": "Default BSL"}, "storage_location:"),
    ({"labels": {"app": "x" * 70}}, "labels: label 'app' has invalid value"),
    ({"parallel_files_upload": 0}, "parallel_files_upload:"),
    ({"state": "paused", "paused": False}, "paused: is false but state is paused"),
    ({"state": "absent", "run_now": True}, "run_now: cannot be used"),
    ({"wait_timeout": -1}, "wait_timeout:"),
    ({"state": "gone"}, "value of state must be one of"),
    ({"ttl": ["720h"]}, "ttl"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUTS)
def test_bad_input_fails_before_any_client(
    overrides: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    def no_client(module: Any) -> Any:
        raise AssertionError("a client was created for bad input")

    monkeypatch.setattr(mod, "get_client", no_client)
    result = run_module(mod, {**DAILY, **overrides}, None, capsys)
    assert result.get("failed"), result
    assert message in result["msg"], result["msg"]


def test_create_then_noop(service: FakeService, capsys: Any) -> None:
    first = run_module(mod, dict(DAILY, _ansible_diff=True), service, capsys)
    assert first["changed"] is True
    assert service.writes() == [("CREATE", "Schedule", "daily")]
    stored = service.store[("Schedule", "velero", "daily")]
    assert stored["spec"]["template"] == {"excludedNamespaces": ["kube-system"], "ttl": "720h0m0s"}
    assert first["diff"]["before"] == {}
    service.calls.clear()
    second = run_module(mod, dict(DAILY, ttl="30d"), service, capsys)
    assert second["changed"] is False
    assert service.calls == [("GET", "Schedule", "daily")]


def test_check_mode_predicts_without_writing(service: FakeService, capsys: Any) -> None:
    result = run_module(mod, dict(DAILY, _ansible_check_mode=True, run_now=True, wait=True), service, capsys)
    assert result["changed"] is True
    assert result["backup"]["metadata"]["labels"] == {"velero.io/schedule-name": "daily"}
    assert service.writes() == []
    run_module(mod, DAILY, service, capsys)
    service.calls.clear()
    result = run_module(mod, dict(DAILY, ttl="2160h", _ansible_check_mode=True), service, capsys)
    assert result["changed"] is True
    assert result["patch"] == {"spec": {"template": {"ttl": "2160h0m0s"}}}
    assert result["schedule"]["spec"]["template"]["ttl"] == "2160h0m0s"
    assert service.writes() == []


def test_update_retries_on_conflict(service: FakeService, capsys: Any) -> None:
    run_module(mod, DAILY, service, capsys)
    service.conflicts = 1
    service.calls.clear()
    result = run_module(mod, dict(DAILY, paused=True), service, capsys)
    assert result["changed"] is True
    assert [c[0] for c in service.calls] == ["GET", "PATCH", "GET", "PATCH"]
    assert service.store[("Schedule", "velero", "daily")]["spec"]["paused"] is True


def test_state_paused_then_unpause_with_skip_immediately(service: FakeService, capsys: Any) -> None:
    run_module(mod, DAILY, service, capsys)
    assert run_module(mod, dict(DAILY, state="paused"), service, capsys)["changed"] is True
    assert run_module(mod, dict(DAILY, state="paused"), service, capsys)["changed"] is False
    result = run_module(mod, dict(DAILY, paused=False, skip_immediately=True), service, capsys)
    assert result["patch"] == {"spec": {"paused": False, "skipImmediately": True}}
    service.store[("Schedule", "velero", "daily")]["spec"]["skipImmediately"] = False  # what the controller does
    assert run_module(mod, dict(DAILY, paused=False, skip_immediately=True), service, capsys)["changed"] is False


def test_delete(service: FakeService, capsys: Any) -> None:
    run_module(mod, DAILY, service, capsys)
    assert run_module(mod, {"name": "daily", "state": "absent"}, service, capsys)["changed"] is True
    assert run_module(mod, {"name": "daily", "state": "absent"}, service, capsys)["changed"] is False
    assert not service.store


def test_wait_fails_with_validation_errors(service: FakeService, capsys: Any) -> None:
    def invalid(obj: dict[str, Any]) -> None:
        obj["status"] = {"phase": "FailedValidation", "validationErrors": ["storage location not found"]}

    service.on_write = invalid
    result = run_module(mod, dict(DAILY, wait=True), service, capsys)
    assert result["failed"] is True
    assert "FailedValidation: storage location not found" in result["msg"]


def test_wait_enabled_uses_the_written_object(service: FakeService, capsys: Any) -> None:
    service.on_write = lambda obj: obj.setdefault("status", {"phase": "Enabled"})
    result = run_module(mod, dict(DAILY, wait=True), service, capsys)
    assert result["changed"] is True
    assert [c[0] for c in service.calls] == ["GET", "CREATE"]


def test_run_now_waits_and_reports_failure(service: FakeService, capsys: Any) -> None:
    def controller(obj: dict[str, Any]) -> None:
        if obj["kind"] == "Schedule":
            obj.setdefault("status", {"phase": "Enabled"})
        else:
            obj["status"] = {"phase": "PartiallyFailed", "errors": 3, "warnings": 1}

    service.on_write = controller
    result = run_module(mod, dict(DAILY, use_owner_references_in_backup=True, run_now=True, wait=True), service, capsys)
    assert result["failed"] is True and result["changed"] is True
    assert "phase PartiallyFailed" in result["msg"] and "3 error(s)" in result["msg"]
    backup = result["backup"]
    assert backup["metadata"]["name"].startswith("daily-") and len(backup["metadata"]["name"]) == len("daily-") + 14
    assert backup["metadata"]["ownerReferences"][0]["uid"] == "uid-daily"
    assert backup["spec"]["ttl"] == "720h0m0s"


def test_info_lists_schedules_and_latest_backup(service: FakeService, capsys: Any) -> None:
    run_module(mod, DAILY, service, capsys)
    for stamp in ("20261124020000", "20261125020000"):
        service.put(
            {
                "kind": "Backup",
                "metadata": {
                    "name": f"daily-{stamp}",
                    "namespace": "velero",
                    "labels": {v.SCHEDULE_NAME_LABEL: "daily"},
                },
                "status": {"phase": "Completed"},
            }
        )
    result = run_module(info_mod, {"include_backups": True}, service, capsys)
    assert result["changed"] is False
    assert result["schedules"][0]["name"] == "daily"
    assert result["schedules"][0]["latest_backup"] == "daily-20261125020000"
    assert result["schedules"][0]["latest_backup_phase"] == "Completed"


def _failed_schedule(service: FakeService) -> None:
    bad = v.build_schedule({**dict.fromkeys(v.schedule_argument_spec()), **DAILY, "namespace": "velero"})
    bad["spec"]["template"]["storageLocation"] = "gone"
    bad["status"] = {"phase": "FailedValidation", "validationErrors": ["backup storage location 'gone' not found"]}
    service.put(bad)


def test_stale_failed_validation_waits_for_revalidation(service: FakeService, capsys: Any) -> None:
    _failed_schedule(service)
    service.on_write = lambda obj: obj.update(status={"phase": "Enabled"})  # the controller re-validates the fix
    result = run_module(mod, dict(DAILY, storage_location="default", wait=True), service, capsys)
    assert result["changed"] is True and not result.get("failed")
    assert result["schedule"]["status"]["phase"] == "Enabled"


def test_stale_failed_validation_still_failing_reports_errors(service: FakeService, capsys: Any) -> None:
    _failed_schedule(service)
    result = run_module(mod, dict(DAILY, storage_location="other", wait=True), service, capsys)
    assert result["failed"] is True
    assert "backup storage location 'gone' not found" in result["msg"]


def test_unchanged_failed_schedule_fails_wait_at_once(service: FakeService, capsys: Any) -> None:
    _failed_schedule(service)
    service.calls.clear()
    result = run_module(mod, dict(DAILY, storage_location="gone", wait=True), service, capsys)
    assert result["failed"] is True and "FailedValidation" in result["msg"]
    assert service.calls == [("GET", "Schedule", "daily")]
