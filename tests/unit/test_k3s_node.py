"""Unit tests for k3s_node: validation, label/taint merging, drain planning and the drain loop."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args
from lab.clock import FakeClock

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _k3s_node as kn
from ansible_collections.homelab.pi_cluster.plugins.module_utils import _k8s_resource as r
from ansible_collections.homelab.pi_cluster.plugins.modules import k3s_node as module
from ansible_collections.homelab.pi_cluster.plugins.modules import k3s_node_info

# ----------------------------------------------------------------------------- syntax


@pytest.mark.parametrize(
    "key",
    [
        "app",
        "a",
        "node-role.kubernetes.io/worker",
        "storage.homelab.example/nvme",
        "A_b.c-D",
        "x" * 63,
        ("p" * 63 + ".") * 3 + "p" * 61 + "/name",  # prefix of exactly 253
    ],
)
def test_valid_keys(key: str) -> None:
    assert kn.qualified_name_error(key) is None


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("", "empty"),
        ("x" * 64, "63"),
        ("-app", "alphanumeric"),
        ("app_", "alphanumeric"),
        ("a b", "consist"),
        ("a/b/c", "single '/'"),
        ("/name", "must not be empty"),
        ("example.com/", "empty"),
        ("Example.com/name", "lowercase"),
        ("ex_ample.com/name", "lowercase"),
        ("p" * 254 + "/name", "253"),
    ],
)
def test_invalid_keys(key: str, fragment: str) -> None:
    problem = kn.qualified_name_error(key)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("", True),
        ("true", True),
        ("v1.2_3-x", True),
        ("x" * 63, True),
        ("x" * 64, False),
        ("-x", False),
        ("x.", False),
        ("a b", False),
        ("héllo", False),
    ],
)
def test_label_values(value: str, ok: bool) -> None:
    assert (kn.label_value_error(value) is None) is ok


# ----------------------------------------------------------------------------- validate_params


def params(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "pi-worker-01",
        "state": "present",
        "labels": None,
        "annotations": None,
        "taints": None,
        "purge_labels": False,
        "purge_taints": False,
        "grace_period": None,
        "timeout": 300,
        "delete_emptydir_data": False,
        "ignore_daemonsets": True,
        "force": False,
        "disable_eviction": False,
        "wait": False,
        "wait_timeout": 120,
    }
    base.update(overrides)
    return base


BAD_PARAMS = [
    ({"name": "Pi_Worker"}, "name"),
    ({"name": ""}, "name"),
    ({"state": "rebooted"}, "state"),
    ({"labels": {"x" * 64: "v"}}, "labels"),
    ({"labels": {"Bad.Prefix/name": "v"}}, "labels"),
    ({"labels": {"a/b/c": "v"}}, "labels"),
    ({"labels": {"app": "x" * 64}}, "labels"),
    ({"labels": {"app": "not valid!"}}, "labels"),
    ({"labels": {"app": True}}, "labels"),
    ({"labels": {"app": ["list"]}}, "labels"),
    ({"annotations": {"bad key": "v"}}, "annotations"),
    ({"annotations": {"big": "x" * (256 * 1024)}}, "annotations"),
    ({"taints": [{"key": "dedicated", "effect": "NoRun", "value": None, "state": "present"}]}, "taints[0].effect"),
    ({"taints": [{"key": "dedicated", "effect": None, "value": None, "state": "present"}]}, "taints[0].effect"),
    ({"taints": [{"key": "bad key", "effect": "NoSchedule", "value": None, "state": "present"}]}, "taints[0].key"),
    ({"taints": [{"key": "k", "effect": "NoSchedule", "value": "-bad", "state": "present"}]}, "taints[0].value"),
    (
        {
            "taints": [
                {"key": "k", "effect": "NoSchedule", "value": "a", "state": "present"},
                {"key": "k", "effect": "NoSchedule", "value": "b", "state": "present"},
            ]
        },
        "taints[1]",
    ),
    (
        {
            "taints": [
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "value": None, "state": "present"}
            ]
        },
        "taints[0].key",
    ),
    ({"grace_period": -5}, "grace_period"),
    ({"timeout": 0}, "timeout"),
    ({"wait_timeout": -1}, "wait_timeout"),
    ({"state": "absent", "labels": {"a": "b"}}, "labels"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD_PARAMS)
def test_bad_params_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(kn.NodeInputError) as info:
        kn.validate_params(params(**overrides))
    assert info.value.field.startswith(field)  # e.g. labels['app'], taints[0].effect
    assert str(info.value).startswith(info.value.field + ": ")


def test_valid_params_are_normalised() -> None:
    spec = kn.validate_params(
        params(
            state="drained",
            labels={"a": "1", "n": 5, "gone": None},
            taints=[
                {"key": "dedicated", "value": "storage", "effect": "NoSchedule", "state": "present"},
                {"key": "old", "value": None, "effect": None, "state": "absent"},
            ],
            grace_period=0,
            force=True,
        )
    )
    assert spec.labels == {"a": "1", "n": "5", "gone": None}
    assert spec.taints == [kn.Taint("dedicated", "NoSchedule", "storage")]
    assert spec.absent_taints == [("old", None)]
    assert spec.manages_taints
    assert spec.drain.grace_period == 0 and spec.drain.force and spec.drain.ignore_daemonsets
    assert not kn.validate_params(params()).manages_taints


# ----------------------------------------------------------------------------- merging


def spec_for(**overrides: Any) -> kn.NodeSpec:
    return kn.validate_params(params(**overrides))


def taint(key: str, effect: str = "NoSchedule", value: str | None = None, state: str = "present") -> dict[str, Any]:
    return {"key": key, "effect": effect, "value": value, "state": state}


def test_merge_taints_keeps_order_extra_fields_and_unlisted() -> None:
    current = [
        {"key": "a", "effect": "NoSchedule", "value": "1"},
        {"key": "b", "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
    ]
    spec = spec_for(taints=[taint("b", "NoExecute", "2"), taint("c")])
    assert kn.merge_taints(current, spec) == [
        {"key": "a", "effect": "NoSchedule", "value": "1"},
        {"key": "b", "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z", "value": "2"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
        {"key": "c", "effect": "NoSchedule"},
    ]


def test_merge_taints_same_key_other_effect_is_another_taint() -> None:
    current = [{"key": "a", "effect": "NoSchedule"}]
    assert kn.merge_taints(current, spec_for(taints=[taint("a", "NoExecute")])) == [
        {"key": "a", "effect": "NoSchedule"},
        {"key": "a", "effect": "NoExecute"},
    ]


def test_merge_taints_removal_and_purge() -> None:
    current = [
        {"key": "a", "effect": "NoSchedule"},
        {"key": "a", "effect": "NoExecute"},
        {"key": "b", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
    ]
    only_a_noexec = spec_for(taints=[{"key": "a", "effect": "NoExecute", "value": None, "state": "absent"}])
    assert [t["effect"] for t in kn.merge_taints(current, only_a_noexec) if t["key"] == "a"] == ["NoSchedule"]
    any_a = spec_for(taints=[{"key": "a", "effect": None, "value": None, "state": "absent"}])
    assert [t["key"] for t in kn.merge_taints(current, any_a)] == ["b", "node.kubernetes.io/not-ready"]
    purge = spec_for(taints=[taint("b")], purge_taints=True)
    assert [t["key"] for t in kn.merge_taints(current, purge)] == ["b", "node.kubernetes.io/not-ready"]


def test_wanted_labels_purge_spares_system_domains() -> None:
    current = {
        "kubernetes.io/hostname": "n",
        "beta.kubernetes.io/arch": "arm64",
        "node.k3s.io/x": "1",
        "p2p.k3s.cattle.io/enabled": "true",
        "node-role.kubernetes.io/worker": "true",
        "mine": "1",
        "example.com/team": "a",
    }
    spec = spec_for(labels={"keep": "1"}, purge_labels=True)
    assert kn.wanted_labels(current, spec) == {"keep": "1", "mine": None, "example.com/team": None}
    assert kn.wanted_labels(current, spec_for(labels={"keep": "1"})) == {"keep": "1"}


@pytest.mark.parametrize(
    ("state", "unschedulable"),
    [("present", "missing"), ("cordoned", True), ("drained", True), ("uncordoned", None)],
)
def test_desired_fields_per_state(state: str, unschedulable: Any) -> None:
    node = {"metadata": {"name": "n", "labels": {}}, "spec": {"unschedulable": True}}
    wanted = kn.desired_node_fields(node, spec_for(state=state, labels={"a": "1"}))
    assert wanted["metadata"] == {"labels": {"a": "1"}}
    assert wanted.get("spec", {}).get("unschedulable", "missing") == unschedulable


def test_uncordon_treats_an_explicit_false_as_schedulable() -> None:
    node = {"metadata": {"name": "n"}, "spec": {"unschedulable": False}}
    assert kn.desired_node_fields(node, spec_for(state="uncordoned")) == {}


def test_desired_fields_untouched_taints_are_not_sent() -> None:
    node = {"metadata": {"name": "n"}, "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}}
    assert kn.desired_node_fields(node, spec_for(taints=[taint("a")])) == {}
    removed = kn.desired_node_fields(node, spec_for(taints=[taint("a", state="absent")]))
    assert removed == {"spec": {"taints": None}}


def test_readiness() -> None:
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    not_ready = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]}}
    assert kn.is_ready(ready) and not kn.is_ready(not_ready) and not kn.is_ready(None) and not kn.is_ready({})
    assert "KubeletNotReady" in kn.describe_readiness(not_ready)
    assert "no Ready condition" in kn.describe_readiness({"metadata": {}})


# ----------------------------------------------------------------------------- drain planning


def pod(
    name: str,
    *,
    owner: str | None = "ReplicaSet",
    phase: str = "Running",
    empty_dir: bool = False,
    mirror: bool = False,
    deleting: bool = False,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"uid-{name}", "labels": labels or {}}
    if owner:
        metadata["ownerReferences"] = [{"kind": owner, "name": f"{name}-owner", "controller": True}]
    if mirror:
        metadata["annotations"] = {kn.MIRROR_ANNOTATION: "hash"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    volumes = [{"name": "scratch", "emptyDir": {}}] if empty_dir else [{"name": "cfg", "configMap": {"name": "x"}}]
    return {"metadata": metadata, "spec": {"nodeName": "n", "volumes": volumes}, "status": {"phase": phase}}


def refs(pods: list[dict[str, Any]]) -> list[str]:
    return [kn.pod_ref(p) for p in pods]


def test_plan_drain_like_kubectl() -> None:
    pods = [
        pod("web"),
        pod("ds", owner="DaemonSet"),
        pod("static", owner="Node", mirror=True),
        pod("bare", owner=None),
        pod("cache", empty_dir=True),
        pod("done", owner=None, phase="Succeeded", empty_dir=True),
        pod("leaving", deleting=True),
        pod("sts", owner="StatefulSet"),
    ]
    plan = kn.plan_drain(pods, kn.DrainOptions())
    assert refs(plan.evict) == ["default/web", "default/done", "default/sts"]
    assert [s["pod"] for s in plan.skipped] == ["default/ds", "default/static"]
    assert "DaemonSet" in plan.skipped[0]["reason"] and "mirror" in plan.skipped[1]["reason"]
    assert {b["pod"]: b["reason"] for b in plan.blocked}.keys() == {"default/bare", "default/cache"}
    assert "force" in plan.blocked[0]["reason"] and "delete_emptydir_data" in plan.blocked[1]["reason"]
    assert refs(plan.terminating) == ["default/leaving"]

    permissive = kn.plan_drain(pods, kn.DrainOptions(force=True, delete_emptydir_data=True))
    assert permissive.blocked == []
    assert refs(permissive.evict) == ["default/web", "default/bare", "default/cache", "default/done", "default/sts"]

    strict = kn.plan_drain([pod("ds", owner="DaemonSet")], kn.DrainOptions(ignore_daemonsets=False))
    assert strict.blocked and "ignore_daemonsets" in strict.blocked[0]["reason"]
    orphan = kn.plan_drain([pod("ds", owner="DaemonSet")], kn.DrainOptions(), {"default/ds-owner"})
    assert orphan.blocked and "force" in orphan.blocked[0]["reason"]
    forced = kn.plan_drain([pod("ds", owner="DaemonSet")], kn.DrainOptions(force=True), {"default/ds-owner"})
    assert refs(forced.evict) == ["default/ds"]
    both = kn.plan_drain([pod("x", owner=None, empty_dir=True)], kn.DrainOptions())
    assert "force" in both.blocked[0]["reason"] and "emptyDir" in both.blocked[0]["reason"]


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        (None, False),
        ({}, True),
        ({"matchLabels": {"app": "web"}}, True),
        ({"matchLabels": {"app": "db"}}, False),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["x"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
        ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]}, False),
    ],
)
def test_selector_matches(selector: dict[str, Any] | None, matches: bool) -> None:
    assert kn.selector_matches(selector, {"app": "web"}) is matches


# ----------------------------------------------------------------------------- the manager on a fake service


class FakeService:
    """Node + pods in memory; ``blocked`` pods answer 429 to eviction ``blocked[name]`` times (-1: always)."""

    def __init__(self, node: dict[str, Any], pods: list[dict[str, Any]], check_mode: bool = False) -> None:
        self.node = node
        self.pods = {p["metadata"]["name"]: p for p in pods}
        self.check_mode = check_mode
        self.blocked: dict[str, int] = {}
        self.writes: list[tuple[str, str]] = []
        self.pdbs: list[dict[str, Any]] = []
        self.retries = 0

    def modify(self, api_version: str, kind: str, name: str, namespace: Any, build: Any) -> r.Result:
        before = copy.deepcopy(self.node)
        wanted = build(copy.deepcopy(self.node))
        patch = r.merge_patch_for(before, wanted)
        if not patch:
            return r.Result(False, before, before, raw=before)
        after = r.apply_merge_patch(before, patch)
        if not self.check_mode:
            self.writes.append(("patch", json.dumps(patch, sort_keys=True)))
            self.node = after
        return r.Result(True, before, after, raw=after)

    def get(self, api_version: str, kind: str, name: str, namespace: Any = None) -> Any:
        if kind == "Node":
            return self.node
        if kind == "DaemonSet":
            return {"metadata": {"name": name, "namespace": namespace}}
        return self.pods.get(name)

    def list(self, api_version: str, kind: str, namespace: Any = None, field_selector: Any = None) -> Any:
        if kind == "PodDisruptionBudget":
            return self.pdbs
        assert field_selector == f"spec.nodeName={self.node['metadata']['name']}"
        return list(self.pods.values())

    def post_subresource(  # noqa: PLR0917 (mirrors ResourceService)
        self, api_version: str, kind: str, name: str, namespace: str, sub: str, body: Any, retry_429: bool = True
    ) -> Any:
        assert sub == "eviction" and not retry_429 and body["kind"] == "Eviction"
        assert not self.check_mode
        self.writes.append(("evict", name))
        left = self.blocked.get(name, 0)
        if left:
            self.blocked[name] = left - 1
            raise r.K8sTooManyRequestsError(
                f"eviction of Pod {namespace}/{name}: "
                "Cannot evict pod as it would violate the pod's disruption budget.",
                429,
                "TooManyRequests",
                [{"reason": "DisruptionBudget", "message": "The disruption budget web needs 1 healthy pods"}],
            )
        self.pods.pop(name, None)
        return body

    def delete(self, api_version: str, kind: str, name: str, namespace: Any = None, grace_period: Any = None) -> Any:
        self.writes.append(("delete", name))
        return self.pods.pop(name, None)

    def wait(self, *args: Any) -> Any:
        raise AssertionError("not used here")


def node(unschedulable: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n", "labels": {"kubernetes.io/hostname": "n"}},
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def manager(service: FakeService, **overrides: Any) -> tuple[kn.NodeManager, FakeClock]:
    clock = FakeClock()
    spec = kn.validate_params(params(name="n", **overrides))
    return kn.NodeManager(service, spec, sleep=clock.sleep, clock=clock.monotonic), clock  # type: ignore[arg-type]


def test_drain_evicts_skips_and_is_idempotent() -> None:
    service = FakeService(node(), [pod("web"), pod("ds", owner="DaemonSet"), pod("static", mirror=True)])
    mgr, _clock = manager(service, state="drained")
    outcome = mgr.run()
    assert outcome.changed and outcome.evicted == ["default/web"]
    assert [s["pod"] for s in outcome.skipped] == ["default/ds", "default/static"]
    assert service.node["spec"]["unschedulable"] is True
    assert outcome.before["pods"] == ["default/ds", "default/static", "default/web"]
    assert outcome.after["pods"] == ["default/ds", "default/static"]
    assert outcome.ready is True
    again, _clock = manager(service, state="drained")
    second = again.run()
    assert not second.changed and second.evicted == []


def test_drain_check_mode_predicts_without_writing() -> None:
    service = FakeService(node(), [pod("web")], check_mode=True)
    mgr, _clock = manager(service, state="drained")
    outcome = mgr.run()
    assert outcome.changed and outcome.evicted == ["default/web"] and outcome.after["unschedulable"] is True
    assert service.writes == [] and "web" in service.pods


def test_drain_retries_429_until_the_pdb_allows() -> None:
    service = FakeService(node(), [pod("web"), pod("api")])
    service.blocked = {"web": 2}
    mgr, clock = manager(service, state="drained", timeout=60)
    outcome = mgr.run()
    assert sorted(outcome.evicted) == ["default/api", "default/web"]
    assert [w for w in service.writes if w[0] == "evict"] == [
        ("evict", "web"),
        ("evict", "api"),
        ("evict", "web"),
        ("evict", "web"),
    ]
    assert clock.sleeps == [5.0, 5.0]


def test_drain_blocked_by_pdb_times_out_naming_pod_and_pdb_and_stays_cordoned() -> None:
    service = FakeService(node(), [pod("web", labels={"app": "web"}), pod("api")])
    service.blocked = {"web": -1}
    service.pdbs = [
        {
            "metadata": {"name": "web-pdb", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}},
            "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1},
        },
        {"metadata": {"name": "other", "namespace": "default"}, "spec": {"selector": {"matchLabels": {"app": "db"}}}},
    ]
    mgr, clock = manager(service, state="drained", timeout=12)
    with pytest.raises(kn.DrainError) as info:
        mgr.run()
    message = str(info.value)
    assert "timed out after 12s" in message and "left cordoned" in message
    assert "default/web" in message and "PodDisruptionBudget default/web-pdb" in message and "other" not in message
    assert "disruption budget web needs 1 healthy" in message
    assert info.value.blocked[0]["pod"] == "default/web" and info.value.evicted == ["default/api"]
    assert service.node["spec"]["unschedulable"] is True
    assert sum(clock.sleeps) == 12


def test_drain_refuses_blocked_pods_before_evicting_anything() -> None:
    service = FakeService(node(), [pod("web"), pod("bare", owner=None)])
    mgr, _clock = manager(service, state="drained")
    with pytest.raises(kn.DrainError, match=r"default/bare \(not managed by a controller"):
        mgr.run()
    assert [w[0] for w in service.writes] == ["patch"], "cordoned, nothing evicted"


def test_disable_eviction_deletes() -> None:
    service = FakeService(node(), [pod("web")])
    mgr, _clock = manager(service, state="drained", disable_eviction=True, grace_period=0)
    assert mgr.run().evicted == ["default/web"]
    assert ("delete", "web") in service.writes and not any(w[0] == "evict" for w in service.writes)


def test_uncordon_and_labels() -> None:
    service = FakeService(node(unschedulable=True), [])
    mgr, _clock = manager(service, state="uncordoned", labels={"a": "1"})
    outcome = mgr.run()
    assert outcome.changed and outcome.before["unschedulable"] and not outcome.after["unschedulable"]
    assert service.node["metadata"]["labels"] == {"kubernetes.io/hostname": "n", "a": "1"}
    assert "unschedulable" not in service.node["spec"]


# ----------------------------------------------------------------------------- module entry point


class Exit(Exception):
    pass


@pytest.fixture
def no_client(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(_module: Any) -> Any:
        raise AssertionError("a client was built for bad input")

    monkeypatch.setattr(module, "get_client", forbidden)


def run_module(args: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"name": "n", "state": "rebooted"}, "state"),
        ({"name": "n", "taints": [{"key": "k", "effect": "NoRun"}]}, "effect"),
        ({"name": "n", "taints": [{"effect": "NoSchedule"}]}, "key"),
        ({"name": "n", "bogus": 1}, "bogus"),
        ({"name": "n", "labels": "not-a-dict"}, "labels"),
        ({"name": "n", "labels": {"x" * 64: "v"}}, "labels"),
        ({"name": "n", "labels": {"app": "bad value"}}, "labels"),
        ({"state": "present"}, "name"),
        ({"name": "n", "timeout": "soon"}, "timeout"),
        ({"name": "n", "taints": [{"key": "k"}]}, "taints[0].effect"),
    ],
)
def test_module_rejects_bad_input_without_a_client(
    args: dict[str, Any], fragment: str, no_client: None, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_module(args, capsys)
    assert result["failed"] is True
    assert fragment in result["msg"]


def test_node_info_summary() -> None:
    summary = k3s_node_info.summarize(
        {
            "metadata": {
                "name": "pi-master",
                "labels": {"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/etcd": "true"},
            },
            "spec": {"unschedulable": True},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [
                    {"type": "Hostname", "address": "pi-master"},
                    {"type": "InternalIP", "address": "192.168.1.240"},
                ],
                "nodeInfo": {"kubeletVersion": "v1.33.5+k3s1", "architecture": "arm64"},
            },
        }
    )
    assert summary["roles"] == ["control-plane", "etcd"] and summary["ready"] and summary["unschedulable"]
    assert summary["internal_ip"] == "192.168.1.240" and summary["kubelet_version"] == "v1.33.5+k3s1"
    assert summary["architecture"] == "arm64" and summary["taints"] == []
