"""k3s_node through ansible-playbook -vvv against the test API server (or a real cluster).

With ``K8S_AUTH_KUBECONFIG`` set, the ``kube_api`` fixture points at that cluster instead: the tests
that only need the API (labels, taints, cordon, drain of unmanaged pods, delete, bad input) run
unchanged on a throw-away Node they create; those that need the server's state backdoor (a kubelet's
pod status, controller-owned pods, PDB arithmetic on Running pods) or fault injection are skipped.
"""

from __future__ import annotations

import secrets
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from lab.kubeapi import objects
from lab.playbook import PlaybookRun, assert_no_secrets, four_runs, module_task, run_playbook, write_playbook

from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import ResourceService

MODULE = "homelab.pi_cluster.k3s_node"
WRITES = ("POST", "PUT", "PATCH", "DELETE")


class Lab:
    """Seeds and reads objects on the test server (backdoor) or on a real cluster (its API)."""

    def __init__(self, kube_api: Any) -> None:
        self.api = kube_api
        self.server = kube_api.server
        # the module runs on localhost with the interpreter that has the kubernetes library (this venv)
        self.env = {**kube_api.env, "ANSIBLE_PYTHON_INTERPRETER": sys.executable}
        self.node = f"test-{secrets.token_hex(4)}"
        self.namespace = f"t-{secrets.token_hex(4)}"
        self._created: list[tuple[str, str, str, str | None]] = []
        self._service: Any = None
        if self.server is None:
            self._service = ResourceService(get_api_client(kubeconfig=str(kube_api.kubeconfig)))
        self.create(objects.namespace(self.namespace))

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.server is not None:
            return self.server.create(obj)
        created = self._service.create(obj)
        metadata = obj["metadata"]
        self._created.append((obj["apiVersion"], obj["kind"], metadata["name"], metadata.get("namespace")))
        return created

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        if self.server is not None:
            return self.server.get(api_version, kind, name, namespace)
        return self._service.get(api_version, kind, name, namespace)

    def node_obj(self, name: str | None = None) -> dict[str, Any]:
        found = self.get("v1", "Node", name or self.node)
        assert found is not None
        return found

    def cleanup(self) -> None:
        if self._service is None:
            return
        for api_version, kind, name, namespace in reversed(self._created):
            grace = 0 if kind == "Pod" else None
            try:
                self._service.delete(api_version, kind, name, namespace, grace_period=grace)
            except Exception as exc:  # best effort on a real cluster: report and go on
                print(f"cleanup of {kind} {name} failed: {exc}")

    def run(self, path: Path, **kwargs: Any) -> PlaybookRun:
        return run_playbook(path, env=self.env, **kwargs)

    def secrets(self) -> list[str]:
        return [self.server.token] if self.server is not None else []


@pytest.fixture
def lab(kube_api: Any) -> Iterator[Lab]:
    env = Lab(kube_api)
    try:
        yield env
    finally:
        env.cleanup()


def task(lab: Lab, title: str = "node", ignore_errors: bool = False, **args: Any) -> dict[str, Any]:
    return module_task(MODULE, {"name": lab.node, **args}, title, ignore_errors)


def playbook(tmp_path: Path, *tasks: dict[str, Any], name: str = "playbook.yml") -> Path:
    return write_playbook(tmp_path, list(tasks), name=name)


def pod_on(
    lab: Lab, name: str, node: str | None = None, owner: dict[str, Any] | None = None, **kwargs: Any
) -> dict[str, Any]:
    return lab.create(objects.pod(name, lab.namespace, node=node or lab.node, owner=owner, **kwargs))


# --------------------------------------------------------------------------- four runs: labels, taints, cordon


def test_labels_four_runs_change_only_managed_keys(lab: Lab, tmp_path: Path) -> None:
    lab.create(objects.node(lab.node, labels={"team": "infra"}))
    path = playbook(tmp_path, task(lab, labels={"node-role.kubernetes.io/worker": "true", "disk": "nvme"}))
    runs = four_runs(path, "node", env=lab.env)

    labels = lab.node_obj()["metadata"]["labels"]
    assert labels["node-role.kubernetes.io/worker"] == "true" and labels["disk"] == "nvme"
    assert labels["team"] == "infra", "an unlisted label must survive"
    first = runs[0].task("node").result
    assert first["diff"]["before"]["labels"].get("disk") is None and first["diff"]["after"]["labels"]["disk"] == "nvme"
    assert runs[1].task("node").result["labels"] == labels
    for run in runs:
        assert_no_secrets(run.output, lab.secrets())


def test_label_removal_and_purge_four_runs(lab: Lab, tmp_path: Path) -> None:
    lab.create(objects.node(lab.node, labels={"team": "infra", "old": "x", "disk": "sd"}))
    path = playbook(tmp_path, task(lab, labels={"disk": "nvme", "old": None}, purge_labels=True))
    four_runs(path, "node", env=lab.env)
    labels = lab.node_obj()["metadata"]["labels"]
    assert labels["disk"] == "nvme"
    assert "old" not in labels and "team" not in labels, "purge_labels removes unlisted labels"
    assert labels["kubernetes.io/hostname"] == lab.node, "labels of the kubelet/K3s domains are never purged"


def test_taints_four_runs_keep_unmanaged_taints(lab: Lab, tmp_path: Path) -> None:
    lab.create(
        objects.node(
            lab.node,
            taints=[{"key": "other", "value": "x", "effect": "NoSchedule"}, {"key": "gone", "effect": "NoExecute"}],
        )
    )
    taints = [
        {"key": "dedicated", "value": "storage", "effect": "NoSchedule"},
        {"key": "dedicated", "value": "storage", "effect": "PreferNoSchedule"},
        {"key": "gone", "state": "absent"},
    ]
    path = playbook(tmp_path, task(lab, taints=taints))
    runs = four_runs(path, "node", env=lab.env)
    stored = [(t["key"], t.get("value"), t["effect"]) for t in lab.node_obj()["spec"]["taints"]]
    assert stored == [
        ("other", "x", "NoSchedule"),
        ("dedicated", "storage", "NoSchedule"),
        ("dedicated", "storage", "PreferNoSchedule"),
    ]
    assert runs[1].task("node").result["taints"] == lab.node_obj()["spec"]["taints"]

    # same key and effect, new value: updated in place
    path = playbook(
        tmp_path, task(lab, taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]), name="update.yml"
    )
    four_runs(path, "node", env=lab.env)
    values = {(t["key"], t["effect"]): t.get("value") for t in lab.node_obj()["spec"]["taints"]}
    assert values[("dedicated", "NoSchedule")] == "db" and values[("dedicated", "PreferNoSchedule")] == "storage"

    path = playbook(
        tmp_path,
        task(lab, taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}], purge_taints=True),
        name="purge.yml",
    )
    four_runs(path, "node", env=lab.env)
    assert [(t["key"], t["effect"]) for t in lab.node_obj()["spec"]["taints"]] == [("dedicated", "NoSchedule")]


def test_cordon_and_uncordon_four_runs(lab: Lab, tmp_path: Path) -> None:
    lab.create(objects.node(lab.node))
    runs = four_runs(playbook(tmp_path, task(lab, state="cordoned")), "node", env=lab.env)
    assert lab.node_obj()["spec"].get("unschedulable") is True
    assert runs[1].task("node").result["unschedulable"] is True
    assert runs[0].task("node").result["diff"]["before"]["unschedulable"] is False

    runs = four_runs(playbook(tmp_path, task(lab, state="uncordoned"), name="uncordon.yml"), "node", env=lab.env)
    assert not lab.node_obj()["spec"].get("unschedulable")
    assert runs[3].task("node").result["unschedulable"] is False


def test_absent_four_runs(lab: Lab, tmp_path: Path) -> None:
    lab.create(objects.node(lab.node))
    four_runs(playbook(tmp_path, task(lab, state="absent", wait=True)), "node", env=lab.env)
    assert lab.get("v1", "Node", lab.node) is None


def test_missing_node_fails_clearly(lab: Lab, tmp_path: Path) -> None:
    run = lab.run(playbook(tmp_path, task(lab, labels={"a": "b"}, ignore_errors=True)))
    result = run.task("node").result
    assert run.task("node").failed
    assert f"Node {lab.node} not found" in result["msg"]


def test_node_info_reads_without_writing(lab: Lab, tmp_path: Path) -> None:
    lab.create(
        objects.node(
            lab.node,
            labels={"node-role.kubernetes.io/worker": "true", "probe": lab.node},
            unschedulable=True,
            taints=[{"key": "dedicated", "effect": "NoSchedule"}],
        )
    )
    info = "homelab.pi_cluster.k3s_node_info"
    path = playbook(
        tmp_path,
        {"name": "by-name", info: {"name": lab.node}},
        {"name": "by-selector", info: {"label_selector": f"probe={lab.node}"}},
        {"name": "missing", info: {"name": f"{lab.node}-missing"}},
        {"name": "both", info: {"name": lab.node, "label_selector": "a=b"}, "ignore_errors": True},
    )
    for check in (True, False):
        run = lab.run(path, check=check)
        by_name = run.task("by-name").result["nodes"]
        assert [n["name"] for n in by_name] == [lab.node] and not run.task("by-name").changed
        summary = by_name[0]
        assert summary["roles"] == ["worker"] and summary["unschedulable"] is True
        assert summary["taints"] == [{"key": "dedicated", "effect": "NoSchedule"}]
        assert run.task("by-selector").result["nodes"] == by_name
        assert run.task("missing").result["nodes"] == []
        assert "mutually exclusive" in run.task("both").result["msg"]
    if lab.server is not None:
        assert lab.server.count(method="PATCH") + lab.server.count(method="POST") == 0


# --------------------------------------------------------------------------- drain


def test_drain_unmanaged_pending_pods_with_force_four_runs(lab: Lab, tmp_path: Path) -> None:
    """Runs on a real cluster too: bare pods on a kubelet-less node stay Pending, which is evictable."""
    lab.create(objects.node(lab.node))
    pod_on(lab, "bare-1", phase="Pending", ready=False)
    pod_on(lab, "bare-2", phase="Pending", ready=False)
    path = playbook(tmp_path, task(lab, state="drained", force=True, grace_period=0, timeout=60))
    runs = four_runs(path, "node", env=lab.env)
    applied = runs[1].task("node").result
    assert sorted(applied["evicted"]) == [f"{lab.namespace}/bare-1", f"{lab.namespace}/bare-2"]
    assert sorted(runs[0].task("node").result["evicted"]) == sorted(applied["evicted"]), "check mode predicts"
    assert applied["diff"]["after"]["pods"] == [] and applied["unschedulable"] is True
    assert lab.get("v1", "Pod", "bare-1", lab.namespace) is None
    assert lab.node_obj()["spec"]["unschedulable"] is True


def test_drain_four_runs_like_kubectl(lab: Lab, tmp_path: Path) -> None:
    server = lab.api.require_server()
    server.pod_shutdown_seconds = 0.5  # evicted pods take a moment to go; the module waits for them
    ns = lab.namespace
    lab.create(objects.node(lab.node))
    lab.create(objects.node("other-node"))
    if lab.get("v1", "Namespace", "kube-system") is None:
        lab.create(objects.namespace("kube-system"))
    rs = lab.create(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
                },
            },
        }
    )
    ds = lab.create(objects.daemonset("agent", ns))
    for name in ("web-1", "web-2"):
        pod_on(lab, name, owner=rs, labels={"app": "web"})
    pod_on(lab, "web-3", node="other-node", owner=rs, labels={"app": "web"})
    pod_on(lab, "agent-x", owner=ds, labels={"app": "agent"})
    pod_on(lab, "cache-1", owner=rs, labels={"app": "cache"}, volumes=[{"name": "scratch", "emptyDir": {}}])
    lab.create(objects.mirror_pod(f"kube-proxy-{lab.node}", lab.node))
    lab.create(objects.pdb("web", {"app": "web"}, ns, min_available=1))

    # without delete_emptydir_data the drain refuses before evicting anything, and leaves the node cordoned
    refused = lab.run(playbook(tmp_path, task(lab, state="drained", ignore_errors=True), name="refused.yml"))
    result = refused.task("node").result
    assert refused.task("node").failed
    assert f"{ns}/cache-1" in result["msg"] and "delete_emptydir_data" in result["msg"]
    assert result["blocked"] == [{"pod": f"{ns}/cache-1", "reason": result["blocked"][0]["reason"]}]
    assert lab.node_obj()["spec"]["unschedulable"] is True
    assert server.count("POST", f"/api/v1/namespaces/{ns}/pods") == 0, "nothing evicted"
    server.patch("v1", "Node", lab.node, None, {"spec": {"unschedulable": None}})

    path = playbook(tmp_path, task(lab, state="drained", delete_emptydir_data=True, timeout=60))
    runs = four_runs(path, "node", env=lab.env)
    applied = runs[1].task("node").result
    assert sorted(applied["evicted"]) == [f"{ns}/cache-1", f"{ns}/web-1", f"{ns}/web-2"]
    skipped = {s["pod"]: s["reason"] for s in applied["skipped_pods"]}
    assert "DaemonSet" in skipped[f"{ns}/agent-x"] and "mirror" in skipped[f"kube-system/kube-proxy-{lab.node}"]
    assert server.count("POST", f"/api/v1/namespaces/{ns}/pods/web-1/eviction") == 1
    assert server.count("DELETE") == 0, "pods leave through the Eviction API only"
    for gone in ("web-1", "web-2", "cache-1"):
        assert lab.get("v1", "Pod", gone, ns) is None
    for kept, kept_ns in (("web-3", ns), ("agent-x", ns), (f"kube-proxy-{lab.node}", "kube-system")):
        assert lab.get("v1", "Pod", kept, kept_ns) is not None
    assert applied["diff"]["after"]["pods"] == sorted([f"{ns}/agent-x", f"kube-system/kube-proxy-{lab.node}"])
    assert runs[3].task("node").result["evicted"] == []


def test_drain_blocked_by_pdb_times_out_and_leaves_node_cordoned(lab: Lab, tmp_path: Path) -> None:
    server = lab.api.require_server()
    ns = lab.namespace
    lab.create(objects.node(lab.node))
    rs = lab.create(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "db", "namespace": ns},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
                },
            },
        }
    )
    pod_on(lab, "db-0", owner=rs, labels={"app": "db"})
    pod_on(lab, "db-1", owner=rs, labels={"app": "db"})
    lab.create(objects.pdb("db-pdb", {"app": "db"}, ns, min_available=2))

    run = lab.run(playbook(tmp_path, task(lab, state="drained", timeout=6, ignore_errors=True)))
    node_task = run.task("node")
    result = node_task.result
    assert node_task.failed and result["changed"] is True, "the cordon was written"
    msg = result["msg"]
    assert "timed out after 6s" in msg and "left cordoned" in msg
    assert f"{ns}/db-0" in msg and f"{ns}/db-1" in msg
    assert f"PodDisruptionBudget {ns}/db-pdb" in msg and "disruptionsAllowed=0" in msg
    assert {b["pod"] for b in result["blocked"]} == {f"{ns}/db-0", f"{ns}/db-1"}
    assert lab.node_obj()["spec"]["unschedulable"] is True
    assert lab.get("v1", "Pod", "db-0", ns) is not None
    assert server.count("POST", f"/api/v1/namespaces/{ns}/pods/db-0/eviction") >= 2, "429 is retried"

    # a playbook's rescue can put the node back into service
    rescue = playbook(
        tmp_path,
        {
            "name": "maintenance",
            "block": [task(lab, "drain", state="drained", timeout=2)],
            "rescue": [task(lab, "uncordon", state="uncordoned")],
        },
        name="rescue.yml",
    )
    run = lab.run(rescue)
    assert run.rc == 0, run.output[-3000:]
    assert run.task("drain").failed and run.task("uncordon").changed
    assert not lab.node_obj()["spec"].get("unschedulable")


def test_wait_for_ready(lab: Lab, tmp_path: Path) -> None:
    server = lab.api.require_server()
    lab.create(objects.node(lab.node, ready=False))
    run = lab.run(playbook(tmp_path, task(lab, wait=True, wait_timeout=2, ignore_errors=True)))
    msg = run.task("node").result["msg"]
    assert "timed out after 2s waiting for Node" in msg and "Ready is False KubeletNotReady" in msg

    ready = {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}
    timer = threading.Timer(1.5, server.update_status, ("v1", "Node", lab.node, None, ready), {"merge": False})
    timer.start()
    try:
        run = lab.run(playbook(tmp_path, task(lab, wait=True, wait_timeout=60), name="ready.yml"))
    finally:
        timer.cancel()
    assert run.rc == 0, run.output[-3000:]
    assert run.task("node").result["ready"] is True


# --------------------------------------------------------------------------- faults


def test_conflict_on_first_write_is_retried_transparently(lab: Lab, tmp_path: Path) -> None:
    server = lab.api.require_server()
    lab.create(objects.node(lab.node))
    server.clear_requests()
    server.faults.conflict_next(1)
    run = lab.run(playbook(tmp_path, task(lab, labels={"a": "1"}, state="cordoned")))
    assert run.rc == 0, run.output[-3000:]
    result = run.task("node").result
    assert result["changed"] is True and result["api_retries"] == 1
    assert server.count("PATCH", f"/api/v1/nodes/{lab.node}") == 2
    node = lab.node_obj()
    assert node["metadata"]["labels"]["a"] == "1" and node["spec"]["unschedulable"] is True


def test_503_burst_on_reads_is_retried_then_succeeds(lab: Lab, tmp_path: Path) -> None:
    """GETs: urllib3 (inside the kubernetes client) already retries a 503 carrying Retry-After; whichever
    layer retries, the task must succeed after the burst."""
    server = lab.api.require_server()
    lab.create(objects.node(lab.node))
    server.clear_requests()
    server.faults.fail_next(3, status=503)
    run = lab.run(playbook(tmp_path, task(lab, labels={"a": "1"})))
    assert run.rc == 0, run.output[-3000:]
    statuses = [r.status for r in server.requests if r.method == "GET" and r.path == f"/api/v1/nodes/{lab.node}"]
    assert statuses == [503, 503, 503, 200]
    assert lab.node_obj()["metadata"]["labels"]["a"] == "1"


def test_503_burst_on_writes_is_retried_with_backoff(lab: Lab, tmp_path: Path) -> None:
    """PATCH is not retried by urllib3: this is the module's own backoff (reported as api_retries)."""
    server = lab.api.require_server()
    lab.create(objects.node(lab.node))
    server.clear_requests()
    server.faults.fail_next(3, status=503, methods="PATCH")
    run = lab.run(playbook(tmp_path, task(lab, labels={"a": "1"})))
    assert run.rc == 0, run.output[-3000:]
    assert run.task("node").result["api_retries"] == 3
    statuses = [r.status for r in server.requests if r.method == "PATCH"]
    assert statuses == [503, 503, 503, 200]
    assert lab.node_obj()["metadata"]["labels"]["a"] == "1"


def test_api_that_stays_down_fails_clearly(lab: Lab, tmp_path: Path) -> None:
    server = lab.api.require_server()
    lab.create(objects.node(lab.node))
    server.faults.down(True)
    try:
        run = lab.run(playbook(tmp_path, task(lab, labels={"a": "1"}, ignore_errors=True)))
    finally:
        server.faults.down(False)
    result = run.task("node").result
    assert run.task("node").failed
    assert "unreachable" in result["msg"] and "after 5 attempts" in result["msg"], result["msg"]
    assert server.url.split("//")[1] in result["msg"], "the message names the API address"
    assert "a" not in lab.node_obj()["metadata"]["labels"]


# --------------------------------------------------------------------------- bad input: no request at all

BAD_INPUTS: list[tuple[dict[str, Any], str]] = [
    ({"state": "rebooted"}, "value of state must be one of"),
    ({"taints": [{"key": "k", "effect": "NoRun"}]}, "effect must be one of"),
    ({"taints": [{"effect": "NoSchedule"}]}, "missing required arguments: key"),
    ({"taints": [{"key": "k"}]}, "taints[0].effect: is required"),
    ({"labels": {"x" * 64: "v"}}, "at most 63 characters"),
    ({"labels": {"Example.COM/x": "v"}}, "lowercase RFC 1123 subdomain"),
    ({"labels": {"a/b/c": "v"}}, "single '/'"),
    ({"labels": {"app": "v" * 64}}, "at most 63 characters (has 64)"),
    ({"labels": {"app": "bad value!"}}, "alphanumeric at both ends"),
    ({"labels": {"enabled": True}}, "quote the boolean"),
    ({"taints": [{"key": "bad key", "effect": "NoSchedule"}]}, "taints[0].key"),
    ({"taints": [{"key": "k", "value": "-x", "effect": "NoSchedule"}]}, "taints[0].value"),
    (
        {"taints": [{"key": "k", "effect": "NoSchedule"}, {"key": "k", "value": "v", "effect": "NoSchedule"}]},
        "duplicates taints[0]",
    ),
    ({"taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]}, "node lifecycle controller"),
    ({"name": "Pi_Worker"}, "name: 'Pi_Worker' must be a lowercase"),
    ({"grace_period": -1}, "grace_period"),
    ({"timeout": 0}, "timeout: must be a positive"),
    ({"state": "absent", "labels": {"a": "b"}}, "cannot be combined with state: absent"),
    ({"annotations": {"bad key": "v"}}, "annotations['bad key']"),
    ({"drain_timeout": 5}, "Unsupported parameters"),
]


def test_bad_inputs_fail_before_any_request(lab: Lab, tmp_path: Path) -> None:
    assert len(BAD_INPUTS) >= 15
    lab.create(objects.node(lab.node))
    if lab.server is not None:
        lab.server.clear_requests()
    tasks = [task(lab, f"bad-{i:02d}", ignore_errors=True, **args) for i, (args, _) in enumerate(BAD_INPUTS)]
    run = lab.run(playbook(tmp_path, *tasks))
    for i, (args, fragment) in enumerate(BAD_INPUTS):
        result = run.task(f"bad-{i:02d}")
        assert result.failed, f"{args} was accepted"
        assert fragment in result.result["msg"], f"{args}: {result.result['msg']!r} lacks {fragment!r}"
    if lab.server is not None:
        assert lab.server.count(exclude_discovery=False) == 0, [(r.method, r.path) for r in lab.server.requests]
    assert lab.node_obj()["metadata"]["labels"] == {
        "kubernetes.io/hostname": lab.node,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "arm64",
    }
