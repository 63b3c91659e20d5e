"""Factories for objects tests seed through the state backdoor (``server.create(...)``).

They describe what the cluster's own components would have written (a kubelet's Node and Pod status,
a controller's ownerReferences), which a client-side test cannot create through the API alone.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def node(
    name: str,
    ready: bool = True,
    labels: dict[str, str] | None = None,
    unschedulable: bool = False,
    taints: list[Obj] | None = None,
) -> Obj:
    spec: Obj = {}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = taints
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "arm64",
                **(labels or {}),
            },
        },
        "spec": spec,
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady" if ready else "KubeletNotReady",
                }
            ],
            "nodeInfo": {"kubeletVersion": "v1.33.5+k3s1", "architecture": "arm64", "operatingSystem": "linux"},
        },
    }


def pod(
    name: str,
    namespace: str = "default",
    *,
    labels: dict[str, str] | None = None,
    node: str | None = "n1",
    ready: bool = True,
    phase: str = "Running",
    owner: Obj | None = None,
    annotations: dict[str, str] | None = None,
    volumes: list[Obj] | None = None,
) -> Obj:
    """A pod as the kubelet reports it. ``owner`` is the controlling object (e.g. a DaemonSet from the API)."""
    meta: Obj = {"name": name, "namespace": namespace, "labels": labels or {}}
    if annotations:
        meta["annotations"] = annotations
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    spec: Obj = {"containers": [{"name": "main", "image": "busybox:1.36"}]}
    if volumes:
        spec["volumes"] = volumes
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def mirror_pod(name: str, node: str, namespace: str = "kube-system") -> Obj:
    """A static pod's mirror (kubectl drain skips these; the server treats them as ordinary pods)."""
    return pod(name, namespace, node=node, annotations={"kubernetes.io/config.mirror": "0123456789abcdef"})


def daemonset(name: str, namespace: str = "default", labels: dict[str, str] | None = None) -> Obj:
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
            },
        },
    }


def workload(
    kind: str, name: str, replicas: int, namespace: str = "default", labels: dict[str, str] | None = None
) -> Obj:
    """A ReplicaSet / StatefulSet / Deployment: PDBs with maxUnavailable or a percentage need its scale."""
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
            },
        },
    }


def pdb(
    name: str,
    selector: dict[str, str],
    namespace: str = "default",
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
) -> Obj:
    spec: Obj = {"selector": {"matchLabels": selector}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
