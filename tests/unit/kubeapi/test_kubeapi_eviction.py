"""pods/eviction against PodDisruptionBudgets, computed from the pods that are healthy right now."""

from __future__ import annotations

from typing import Any

from lab.kubeapi import KubeAPIServer
from lab.kubeapi.objects import daemonset, mirror_pod, pdb, pod, workload

PODS = "/api/v1/namespaces/default/pods"


def eviction(name: str, **options: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": "default"},
    }
    if options:
        body["deleteOptions"] = options
    return body


def test_eviction_without_a_budget_deletes_the_pod(api: Any, srv: KubeAPIServer) -> None:
    srv.create(pod("p1"))
    resp = api.post(f"{PODS}/p1/eviction", eviction("p1"))
    assert resp.status == 201
    assert resp.body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
    assert srv.get("v1", "Pod", "p1", "default") is None


def test_eviction_blocked_by_a_budget_is_429(api: Any, srv: KubeAPIServer) -> None:
    for name in ("w1", "w2"):
        srv.create(pod(name, labels={"app": "web"}))
    srv.create(pdb("web", {"app": "web"}, min_available=2))
    resp = api.post(f"{PODS}/w1/eviction", eviction("w1"))
    assert resp.status == 429
    assert resp.body["reason"] == "TooManyRequests"
    assert resp.body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert resp.body["details"]["causes"] == [
        {"reason": "DisruptionBudget", "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}
    ]
    assert srv.get("v1", "Pod", "w1", "default") is not None
    budget = srv.get("policy/v1", "PodDisruptionBudget", "web", "default")
    assert budget is not None
    assert budget["status"]["disruptionsAllowed"] == 0
    assert budget["status"]["currentHealthy"] == 2


def test_budget_counts_the_controller_scale(api: Any, srv: KubeAPIServer) -> None:
    rs = srv.create(workload("ReplicaSet", "web", replicas=3, labels={"app": "web"}))
    for name in ("w1", "w2", "w3"):
        srv.create(pod(name, labels={"app": "web"}, owner=rs))
    srv.create(pdb("web", {"app": "web"}, max_unavailable=1))
    assert api.post(f"{PODS}/w1/eviction", eviction("w1")).status == 201
    # 3 expected (the ReplicaSet's scale), 2 desired, 2 healthy left: nothing more may go
    blocked = api.post(f"{PODS}/w2/eviction", eviction("w2"))
    assert blocked.status == 429
    assert blocked.body["details"]["causes"][0]["message"] == (
        "The disruption budget web needs 2 healthy pods and has 2 currently"
    )
    srv.create(pod("w4", labels={"app": "web"}, owner=rs))  # the controller replaced w1
    assert api.post(f"{PODS}/w2/eviction", eviction("w2")).status == 201


def test_percentage_budget_over_bare_pods_cannot_be_computed(api: Any, srv: KubeAPIServer) -> None:
    srv.create(pod("a", labels={"app": "db"}))
    srv.create(pdb("db", {"app": "db"}, max_unavailable="50%"))
    resp = api.post(f"{PODS}/a/eviction", eviction("a"))
    assert resp.status == 429
    assert (
        resp.body["details"]["causes"][0]["message"]
        == "The disruption budget db is still being processed by the server."
    )
    budget = srv.get("policy/v1", "PodDisruptionBudget", "db", "default")
    assert budget is not None
    assert budget["status"]["conditions"][0]["reason"] == "SyncFailed"


def test_percentages_and_unready_pods(api: Any, srv: KubeAPIServer) -> None:
    sts = srv.create(workload("StatefulSet", "db", replicas=2, labels={"app": "db"}))
    srv.create(pod("a", labels={"app": "db"}, owner=sts))
    srv.create(pod("b", labels={"app": "db"}, ready=False, owner=sts))
    srv.create(pdb("db", {"app": "db"}, min_available="50%"))
    # 2 expected, 1 desired (50% rounded up), 1 healthy: the healthy pod is protected...
    assert api.post(f"{PODS}/a/eviction", eviction("a")).status == 429
    # ...but the unready one may go, since the budget is still met (IfHealthyBudget)
    assert api.post(f"{PODS}/b/eviction", eviction("b")).status == 201


def test_pending_and_finished_pods_ignore_the_budget(api: Any, srv: KubeAPIServer) -> None:
    srv.create(pod("done", labels={"app": "web"}, phase="Succeeded", ready=False))
    srv.create(pod("w1", labels={"app": "web"}))
    srv.create(pdb("web", {"app": "web"}, min_available=1))
    assert api.post(f"{PODS}/done/eviction", eviction("done")).status == 201


def test_two_budgets_for_one_pod_is_500(api: Any, srv: KubeAPIServer) -> None:
    srv.create(pod("w1", labels={"app": "web", "tier": "front"}))
    srv.create(pdb("a", {"app": "web"}, max_unavailable=1))
    srv.create(pdb("b", {"tier": "front"}, max_unavailable=1))
    resp = api.post(f"{PODS}/w1/eviction", eviction("w1"))
    assert resp.status == 500
    assert "more than one PodDisruptionBudget" in resp.body["message"]


def test_eviction_of_a_missing_pod_is_404(api: Any) -> None:
    resp = api.post(f"{PODS}/ghost/eviction", eviction("ghost"))
    assert resp.status == 404
    assert resp.body["message"] == 'pods "ghost" not found'


def test_daemonset_and_mirror_pods_are_ordinary_pods_to_the_server(api: Any, srv: KubeAPIServer) -> None:
    ds = srv.create(daemonset("agent"))
    srv.create(pod("agent-x", labels={"app": "agent"}, owner=ds))
    srv.create(mirror_pod("etcd-n1", node="n1"))
    assert api.post(f"{PODS}/agent-x/eviction", eviction("agent-x")).status == 201
    mirror = api.post(
        "/api/v1/namespaces/kube-system/pods/etcd-n1/eviction",
        {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "etcd-n1"}},
    )
    assert mirror.status == 201


def test_graceful_termination_and_dry_run(api: Any, srv: KubeAPIServer) -> None:
    srv.create(pod("p1"))
    assert api.post(f"{PODS}/p1/eviction", eviction("p1", dryRun=["All"])).status == 201
    assert srv.get("v1", "Pod", "p1", "default") is not None
    srv.pod_shutdown_seconds = 30  # the simulated kubelet takes its time: the pod stays, terminating
    assert api.post(f"{PODS}/p1/eviction", eviction("p1", gracePeriodSeconds=20)).status == 201
    terminating = srv.get("v1", "Pod", "p1", "default")
    assert terminating is not None
    assert terminating["metadata"]["deletionTimestamp"]
    assert terminating["metadata"]["deletionGracePeriodSeconds"] == 20
    # a terminating pod no longer counts as healthy and a second eviction is accepted
    assert api.post(f"{PODS}/p1/eviction", eviction("p1")).status == 201
    srv.create(pod("p2"))
    assert api.delete(f"{PODS}/p2?gracePeriodSeconds=0").status == 200
    assert srv.get("v1", "Pod", "p2", "default") is None
