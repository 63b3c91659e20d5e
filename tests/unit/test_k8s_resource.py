"""Unit tests for the shared Kubernetes resource helper (pure logic + a scripted fake client)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException
from lab.clock import FakeClock
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _k8s_resource as r

# ----------------------------------------------------------------------------- pure helpers


def test_strip_server_fields_drops_server_owned_and_ignored_paths() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "n1",
            "uid": "u",
            "resourceVersion": "7",
            "generation": 2,
            "creationTimestamp": "t",
            "managedFields": [],
            "selfLink": "/x",
            "labels": {"a": "b"},
        },
        "spec": {"skipImmediately": False, "keep": 1},
        "status": {"phase": "Enabled"},
    }
    clean = r.strip_server_fields(obj, ["spec.skipImmediately", "spec.missing.deeper"])
    assert clean == {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n1", "labels": {"a": "b"}},
        "spec": {"keep": 1},
    }
    assert obj["status"] == {"phase": "Enabled"}, "the input must not be modified"
    assert r.strip_server_fields(None) == {}


@pytest.mark.parametrize(
    ("desired", "current", "expected"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": {"b": 1}}, {"a": {"b": 1, "c": 3}}, True),
        ({"a": None}, {"b": 1}, True),
        ({"a": None}, {"a": 1}, False),
        ({"a": [{"x": 1}]}, {"a": [{"x": 1, "default": True}]}, True),
        ({"a": [1, 2]}, {"a": [1, 2, 3]}, False),
        ({"a": [1, 2]}, {"a": [2, 1]}, False),
        ({"a": {}}, {}, False),
        ({"a": "1"}, {"a": 1}, False),
        ({}, {"anything": 1}, True),
    ],
)
def test_is_subset(desired: Any, current: Any, expected: bool) -> None:
    assert r.is_subset(desired, current) is expected


def test_merge_patch_for_contains_only_differences() -> None:
    current = {"metadata": {"labels": {"a": "1", "b": "2"}, "uid": "u"}, "spec": {"x": [1], "y": 1}}
    desired = {"metadata": {"labels": {"a": "1", "b": "3", "c": None, "gone": None}}, "spec": {"x": [1, 2]}}
    assert r.merge_patch_for(current, desired) == {"metadata": {"labels": {"b": "3"}}, "spec": {"x": [1, 2]}}
    assert r.merge_patch_for(current, {"metadata": {"labels": {"a": None}}}) == {"metadata": {"labels": {"a": None}}}
    assert r.merge_patch_for(current, {"spec": {"y": 1}}) == {}
    assert r.merge_patch_for(None, {"spec": {"y": 1}}) == {"spec": {"y": 1}}


def test_apply_merge_patch_rfc7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "l": [3], "n": {"m": 1}}
    assert r.apply_merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "l": [3], "n": {"m": 1}}
    assert target["c"] == {"d": "e", "f": "g"}


def test_apply_json_patch() -> None:
    target = {"spec": {"taints": [{"key": "a"}], "unschedulable": False}}
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": "/spec/unschedulable", "value": False},
        {"op": "replace", "path": "/spec/unschedulable", "value": True},
        {"op": "add", "path": "/spec/taints/-", "value": {"key": "b"}},
        {"op": "remove", "path": "/spec/taints/0"},
        {"op": "add", "path": "/metadata~1x", "value": 1},
    ]
    assert r.apply_json_patch(target, ops) == {
        "spec": {"taints": [{"key": "b"}], "unschedulable": True},
        "metadata/x": 1,
    }
    with pytest.raises(r.K8sInvalidError, match="test failed"):
        r.apply_json_patch(target, [{"op": "test", "path": "/spec/unschedulable", "value": True}])
    with pytest.raises(r.K8sInvalidError, match="does not apply"):
        r.apply_json_patch(target, [{"op": "remove", "path": "/spec/nothing/here"}])


def _api_exc(status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> ApiException:
    exc = ApiException(status=status, reason="Reason", body=json.dumps(body) if body else None)
    exc.headers = headers or {}
    return exc


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (_api_exc(429), True),
        (_api_exc(500), True),
        (_api_exc(502), True),
        (_api_exc(503), True),
        (_api_exc(504), True),
        (_api_exc(501), False),
        (_api_exc(404), False),
        (_api_exc(409), False),
        (_api_exc(422), False),
        (_api_exc(403), False),
        (MaxRetryError(None, "/api", NewConnectionError(None, "refused")), True),  # type: ignore[arg-type]
        (ProtocolError("Connection aborted.", ConnectionResetError()), True),
        (ConnectionResetError(), True),
        (ValueError("no"), False),
    ],
)
def test_retry_classification(exc: BaseException, retryable: bool) -> None:
    assert r.is_retryable(exc) is retryable


def test_backoff_delays_grow_and_cap() -> None:
    assert r.backoff_delays(5, 0.5) == [0.5, 1.0, 2.0, 4.0]
    assert r.backoff_delays(8, 1, cap=5) == [1, 2, 4, 5, 5, 5, 5]
    assert r.backoff_delays(1) == []


def test_translate_api_error_keeps_status_causes() -> None:
    body = {
        "kind": "Status",
        "reason": "Invalid",
        "message": 'Schedule.velero.io "s" is invalid: spec.ttl: Invalid value',
        "details": {"causes": [{"field": "spec.ttl", "message": "Invalid value"}]},
    }
    err = r.translate_api_error(_api_exc(422, body), "creating Schedule velero/s")
    assert isinstance(err, r.K8sInvalidError)
    assert err.causes == [{"field": "spec.ttl", "message": "Invalid value"}]
    assert "spec.ttl" in str(err) and str(err).startswith("creating Schedule velero/s: ")
    assert isinstance(r.translate_api_error(_api_exc(404), "x"), r.K8sNotFoundError)
    assert isinstance(r.translate_api_error(_api_exc(409), "x"), r.K8sConflictError)
    assert isinstance(r.translate_api_error(_api_exc(403), "x"), r.K8sForbiddenError)
    assert isinstance(r.translate_api_error(_api_exc(429), "x"), r.K8sTooManyRequestsError)
    assert isinstance(r.translate_api_error(_api_exc(503), "x"), r.K8sUnavailableError)
    teapot = r.translate_api_error(_api_exc(418), "x")
    assert teapot.status == 418 and teapot.__class__.__name__ == "K8sError"


# ----------------------------------------------------------------------------- service with a scripted client


class _Response:
    def __init__(self, obj: Any) -> None:
        self.data = json.dumps(obj).encode()


class FakeDyn:
    """Serves ConfigMaps from a dict; ``script`` lists exceptions to raise on the next requests."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, Any]] = []
        self.script: list[BaseException] = []
        self.rv = 10

    def request(self, method: str, path: str, serialize: bool = True, **params: Any) -> _Response:
        self.calls.append((method, path, params.get("body")))
        if self.script:
            raise self.script.pop(0)
        name = path.rsplit("/", 1)[-1]
        if path == "/api/v1":
            return _Response(
                {
                    "resources": [
                        {"name": "configmaps", "namespaced": True, "kind": "ConfigMap"},
                        {"name": "pods/eviction", "namespaced": True, "kind": "Eviction"},
                    ]
                }
            )
        if method == "get":
            if path.endswith("/configmaps"):
                return _Response({"items": list(self.objects.values()), "metadata": {}})
            if name not in self.objects:
                raise _api_exc(404, {"reason": "NotFound", "message": f'configmaps "{name}" not found'})
            return _Response(self.objects[name])
        if method == "post":
            body = json.loads(json.dumps(params["body"]))
            self.rv += 1
            body["metadata"].update(uid="uid-1", resourceVersion=str(self.rv))
            self.objects[body["metadata"]["name"]] = body
            return _Response(body)
        if method == "patch":
            current = self.objects[name]
            patch = params["body"]
            want_rv = patch.get("metadata", {}).get("resourceVersion")
            if want_rv and want_rv != current["metadata"]["resourceVersion"]:
                raise _api_exc(409, {"reason": "Conflict", "message": "the object has been modified"})
            self.rv += 1
            new = r.apply_merge_patch(current, patch)
            new["metadata"]["resourceVersion"] = str(self.rv)
            self.objects[name] = new
            return _Response(new)
        if method == "delete":
            self.objects.pop(name)
            return _Response({"kind": "Status", "status": "Success"})
        raise AssertionError(method)

    def writes(self) -> list[tuple[str, str, Any]]:
        return [c for c in self.calls if c[0] != "get"]


def _cm(name: str = "cm", data: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"}, "data": data or {}}


@pytest.fixture
def dyn() -> FakeDyn:
    return FakeDyn()


def _service(dyn: FakeDyn, check_mode: bool = False) -> tuple[r.ResourceService, list[float]]:
    sleeps: list[float] = []
    return r.ResourceService(dyn, check_mode, sleep=sleeps.append), sleeps


def test_ensure_creates_then_is_idempotent(dyn: FakeDyn) -> None:
    svc, _sleeps = _service(dyn)
    first = svc.ensure(_cm(data={"a": "1"}))
    assert first.changed and first.created
    assert first.diff["before"] == {} and first.diff["after"]["data"] == {"a": "1"}
    assert "uid" not in first.after["metadata"]
    second = svc.ensure(_cm(data={"a": "1"}))
    assert not second.changed
    assert [c[0] for c in dyn.writes()] == ["post"]


def test_ensure_patches_only_managed_difference_with_resource_version(dyn: FakeDyn) -> None:
    svc, _sleeps = _service(dyn)
    svc.create(_cm(data={"a": "1", "other": "x"}))
    result = svc.ensure(_cm(data={"a": "2"}))
    assert result.changed
    method, _path, body = dyn.writes()[-1]
    assert method == "patch"
    assert body == {"data": {"a": "2"}, "metadata": {"resourceVersion": "11"}}
    assert result.after["data"] == {"a": "2", "other": "x"}
    assert result.diff["before"]["data"]["a"] == "1" and result.diff["after"]["data"]["a"] == "2"


def test_ensure_conflict_rereads_and_reapplies(dyn: FakeDyn) -> None:
    svc, _sleeps = _service(dyn)
    svc.create(_cm(data={"a": "1"}))
    original = dyn.request
    state = {"patches": 0}

    def racing(method: str, path: str, serialize: bool = True, **params: Any) -> _Response:
        if method == "patch" and state["patches"] == 0:
            state["patches"] += 1
            dyn.objects["cm"]["metadata"]["resourceVersion"] = "99"  # someone else wrote meanwhile
            dyn.objects["cm"]["data"]["theirs"] = "y"
        return original(method, path, serialize, **params)

    dyn.request = racing  # type: ignore[method-assign]
    result = svc.ensure(_cm(data={"a": "2"}))
    assert result.changed
    assert dyn.objects["cm"]["data"] == {"a": "2", "theirs": "y"}
    patch_bodies = [c[2] for c in dyn.writes() if c[0] == "patch"]
    assert [b["metadata"]["resourceVersion"] for b in patch_bodies] == ["11", "99"]


def test_ensure_conflict_gives_up_after_bounded_attempts(dyn: FakeDyn) -> None:
    svc, _sleeps = _service(dyn)
    svc.create(_cm(data={"a": "1"}))
    conflict = _api_exc(409, {"reason": "Conflict", "message": "modified"})
    original = dyn.request

    def always_conflict(method: str, path: str, serialize: bool = True, **params: Any) -> _Response:
        if method == "patch":
            dyn.calls.append((method, path, params.get("body")))
            raise conflict
        return original(method, path, serialize, **params)

    dyn.request = always_conflict  # type: ignore[method-assign]
    with pytest.raises(r.K8sConflictError):
        svc.ensure(_cm(data={"a": "2"}))
    assert len([c for c in dyn.calls if c[0] == "patch"]) == svc.conflict_attempts


def test_check_mode_sends_no_writes(dyn: FakeDyn) -> None:
    svc, _sleeps = _service(dyn)
    svc.create(_cm(data={"a": "1"}))
    dyn.calls.clear()
    check, _sleeps = _service(dyn, check_mode=True)
    assert check.ensure(_cm(data={"a": "2"})).changed
    assert check.ensure(_cm("new", data={"a": "2"})).created
    assert check.patch("v1", "ConfigMap", "cm", "ns", [{"op": "add", "path": "/data/b", "value": "3"}], "json")[
        "data"
    ] == {"a": "1", "b": "3"}
    assert check.delete("v1", "ConfigMap", "cm", "ns") is not None
    assert check.post_subresource("v1", "ConfigMap", "cm", "ns", "eviction", {"x": 1}) == {"x": 1}
    assert dyn.writes() == []
    assert dyn.objects["cm"]["data"] == {"a": "1"}


def test_transient_errors_are_retried_with_backoff(dyn: FakeDyn) -> None:
    svc, sleeps = _service(dyn)
    svc.create(_cm())
    dyn.script = [
        _api_exc(503),
        ProtocolError("reset", ConnectionResetError()),
        _api_exc(429, headers={"Retry-After": "2"}),
    ]
    assert svc.get("v1", "ConfigMap", "cm", "ns") is not None
    assert sleeps == [0.5, 1.0, 2.0]
    assert svc.retries == 3


def test_api_that_stays_down_fails_clearly(dyn: FakeDyn) -> None:
    svc, sleeps = _service(dyn)
    dyn.script = [_refused()] * 10
    with pytest.raises(r.K8sUnavailableError) as info:
        svc.get("v1", "ConfigMap", "cm", "ns")
    assert str(info.value) == (
        "discovering v1: Kubernetes API at the API server still failing after 5 attempts: "
        "unreachable: [Errno 111] Connection refused"
    )
    assert len(sleeps) == 4


def _refused() -> MaxRetryError:
    """A real connection-refused error (nothing listens on loopback port 1)."""
    try:
        urllib3.PoolManager().request("GET", "https://127.0.0.1:1/api", retries=0)
    except MaxRetryError as exc:
        return exc
    raise AssertionError("port 1 answered")


def test_transport_error_parts_are_short() -> None:
    assert r.transport_error_parts(_refused()) == (" at https://127.0.0.1:1", "[Errno 111] Connection refused")
    assert r.transport_error_parts(ProtocolError("Connection aborted.", ConnectionResetError())) == (
        "",
        "('Connection aborted.', ConnectionResetError())",
    )


def test_429_can_be_returned_unretried(dyn: FakeDyn) -> None:
    svc, sleeps = _service(dyn)
    svc.create(_cm())
    dyn.script = [_api_exc(429, {"reason": "TooManyRequests", "message": "Cannot evict pod"})]
    with pytest.raises(r.K8sTooManyRequestsError, match="Cannot evict pod") as info:
        svc.post_subresource("v1", "ConfigMap", "cm", "ns", "eviction", {}, retry_429=False)
    assert info.value.status == 429 and info.value.reason == "TooManyRequests"
    assert sleeps == []


def test_non_transient_errors_are_not_retried(dyn: FakeDyn) -> None:
    svc, sleeps = _service(dyn)
    dyn.script = [_api_exc(403, {"reason": "Forbidden", "message": "nodes is forbidden"})]
    with pytest.raises(r.K8sForbiddenError, match="forbidden"):
        svc.get("v1", "ConfigMap", "cm", "ns")
    assert sleeps == []


def test_get_list_delete(dyn: FakeDyn) -> None:
    svc, _sleeps = _service(dyn)
    assert svc.get("v1", "ConfigMap", "nope", "ns") is None
    svc.create(_cm("a"))
    svc.create(_cm("b"))
    items = svc.list("v1", "ConfigMap", "ns")
    assert [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert svc.delete("v1", "ConfigMap", "a", "ns") is not None
    assert svc.delete("v1", "ConfigMap", "a", "ns") is None


def test_wait_times_out_with_a_readable_reason(dyn: FakeDyn) -> None:
    clock = FakeClock()
    svc = r.ResourceService(dyn, sleep=clock.sleep, clock=clock.monotonic)
    svc.create(_cm(data={"phase": "New"}))
    with pytest.raises(r.K8sTimeoutError) as info:
        svc.wait(
            "v1",
            "ConfigMap",
            "cm",
            "ns",
            lambda o: bool(o and o["data"].get("phase") == "Enabled"),
            3,
            describe=lambda o: f"phase is {o['data']['phase'] if o else 'absent'}",
        )
    assert str(info.value) == "timed out after 3s waiting for ConfigMap ns/cm: phase is New"
    assert sum(clock.sleeps) == 3
    assert svc.wait("v1", "ConfigMap", "cm", "ns", lambda o: o is not None, 3) is not None


def test_discovery_builds_paths_and_reports_unknown_kinds(dyn: FakeDyn) -> None:
    svc, _sleeps = _service(dyn)
    res = svc.resource("v1", "ConfigMap")
    assert res.path("cm", "ns") == "/api/v1/namespaces/ns/configmaps/cm"
    assert res.path(None, None) == "/api/v1/configmaps"
    with pytest.raises(r.K8sNotFoundError, match="CustomResourceDefinition"):
        svc.resource("v1", "Eviction")
    assert [c[1] for c in dyn.calls].count("/api/v1") == 1, "discovery is fetched once per service"
    assert r.ApiResource("/apis/velero.io/v1", "schedules", True, "Schedule").path("s", "velero") == (
        "/apis/velero.io/v1/namespaces/velero/schedules/s"
    )


def test_discovery_is_retried_like_any_request(dyn: FakeDyn) -> None:
    svc, sleeps = _service(dyn)
    dyn.script = [_api_exc(503)]
    assert svc.resource("v1", "ConfigMap").plural == "configmaps"
    assert sleeps == [0.5]


def test_identity_required() -> None:
    svc = r.ResourceService(FakeDyn())
    with pytest.raises(r.K8sInvalidError, match=r"metadata\.name"):
        svc.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})


def test_known_kinds_need_no_discovery(dyn: FakeDyn) -> None:
    svc, _sleeps = _service(dyn)
    assert svc.resource("velero.io/v1", "Schedule").path("daily", "velero") == (
        "/apis/velero.io/v1/namespaces/velero/schedules/daily"
    )
    assert svc.resource("v1", "Node").path("pi-master", None) == "/api/v1/nodes/pi-master"
    assert dyn.calls == [], "kinds the collection manages are addressed without a discovery request"
