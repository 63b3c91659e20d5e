"""Benchmark: 20 cluster objects through k8s_objects vs the same list through kubernetes.core.k8s.

The objects are what the addons/storage/backup roles write: Namespaces, K3s HelmCharts, a StorageClass,
Secrets (stringData), Longhorn's BackupTarget and RecurringJobs, a Velero BackupStorageLocation and
ConfigMaps. Each tool gets a fresh test API server (tests/lab/kubeapi, which validates the custom
resources against the upstream CRD schemas) and applies the list in one task, as the roles do
(``kubernetes.core.k8s`` with ``definition:`` a list), twice through ``ansible-playbook``: first run,
then a no-op re-run. The script prints wall time, API requests from the server's log by method
(discovery counted apart) and reported changes, then the ratios k8s_objects / kubernetes.core.k8s.

Target: the no-op re-run reports 0 changed, sends no write and costs one GET per object.

    .venv/bin/python bench/k8s_objects_bench.py [--count 20]

``--count`` is the number of objects (at least 13, the fixed set; ConfigMaps make up the rest).
Not part of any test run; numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import secrets
from collections import Counter
from typing import Any

import _k8s_bench  # first: puts tests/ and the built collection on sys.path
from _k8s_bench import RUNS, Measure, compare, report

METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")

TOOLS = ("k8s_objects", "kubernetes.core.k8s")
LONGHORN = "longhorn-system"


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": namespace} if namespace else {"name": name}


def helm_chart(name: str, repo: str, target: str) -> dict[str, Any]:
    return {
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChart",
        "metadata": _meta(name, "kube-system"),
        "spec": {"repo": repo, "chart": name, "version": "1.0.0", "targetNamespace": target, "createNamespace": False},
    }


def secret(name: str, namespace: str, **values: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(name, namespace),
        "type": "Opaque",
        "stringData": values,
    }


def recurring_job(name: str, task: str, cron: str, retain: int) -> dict[str, Any]:
    return {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "RecurringJob",
        "metadata": _meta(name, LONGHORN),
        "spec": {"cron": cron, "task": task, "groups": ["default"], "retain": retain, "concurrency": 2},
    }


# The Secrets' S3 key: a throwaway value per bench run for the test server, never a literal in the repo.
S3_KEY = secrets.token_urlsafe(18)


def definitions(count: int) -> list[dict[str, Any]]:
    """The roles' objects in the order they need (namespaces, then HelmCharts, then what lives in them)."""
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns)} for ns in (LONGHORN, "velero", "apps")
    ]
    objects += [
        helm_chart("longhorn", "https://charts.longhorn.io", LONGHORN),
        helm_chart("nfs-subdir-external-provisioner", "https://kubernetes-sigs.github.io/nfs", "kube-system"),
        helm_chart("velero", "https://vmware-tanzu.github.io/helm-charts", "velero"),
    ]
    objects.append(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": _meta("nfs-client"),
            "provisioner": "cluster.local/nfs-subdir-external-provisioner",
            "reclaimPolicy": "Retain",
            "allowVolumeExpansion": True,
            "parameters": {"archiveOnDelete": "true"},
        }
    )
    cloud = f"[default]\naws_access_key_id=bench\naws_secret_access_key={S3_KEY}\n"
    objects += [
        secret("velero-credentials", "velero", cloud=cloud),
        secret("longhorn-backup", LONGHORN, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY=S3_KEY),
    ]
    objects.append(
        {
            "apiVersion": "longhorn.io/v1beta2",
            "kind": "BackupTarget",
            "metadata": _meta("default", LONGHORN),
            "spec": {
                "backupTargetURL": "nfs://nas.lab:/export/longhorn",
                "credentialSecret": "longhorn-backup",
                "pollInterval": "5m0s",
            },
        }
    )
    objects += [
        recurring_job("snapshot-hourly", "snapshot", "0 * * * *", 24),
        recurring_job("backup-daily", "backup", "0 3 * * *", 14),
    ]
    objects.append(
        {
            "apiVersion": "velero.io/v1",
            "kind": "BackupStorageLocation",
            "metadata": _meta("default", "velero"),
            "spec": {
                "provider": "aws",
                "objectStorage": {"bucket": "velero"},
                "config": {"region": "minio", "s3ForcePathStyle": "true", "s3Url": "http://nas.lab:9000"},
                "default": True,
            },
        }
    )
    for i in range(max(0, count - len(objects))):
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _meta(f"settings-{i:02d}", "apps"),
                "data": {"LOG_LEVEL": "info", "INDEX": str(i)},
            }
        )
    return objects


def tasks_for(tool: str, count: int) -> list[dict[str, Any]]:
    if tool == "k8s_objects":
        return [{"name": "objects", "homelab.pi_cluster.k8s_objects": {"definitions": definitions(count)}}]
    return [{"name": "objects", "kubernetes.core.k8s": {"state": "present", "definition": definitions(count)}}]


SERVER: dict[str, Any] = {
    "namespace": "bench",  # unused: kube-system (the HelmCharts) exists on a fresh server
    "hooks": {},
    "counted_get": lambda r: not r.discovery,
    "simulated": "nothing",
}


def measure_by_method(log: list[Counter[str]]) -> Any:
    """``_k8s_bench.measure`` that also appends each run's non-discovery requests by method to ``log``."""
    plain = _k8s_bench.measure

    def measure(server: Any, *args: Any) -> Measure:
        result = plain(server, *args)
        log.append(Counter(r.method for r in server.requests if not r.discovery))
        return result

    return measure


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="objects (at least 13)")
    parser.add_argument("--repeat", type=int, default=1, help="measure this many times, keep each fastest run")
    options = parser.parse_args()
    count = max(13, options.count)
    log: list[Counter[str]] = []
    _k8s_bench.measure = measure_by_method(log)  # bench() looks measure up at call time
    rounds = [compare(TOOLS, tasks_for, count, "k8s-objects-bench-", **SERVER) for _ in range(max(1, options.repeat))]
    results = {
        tool: (
            min((r[tool][0] for r in rounds), key=lambda m: m.seconds),
            min((r[tool][1] for r in rounds), key=lambda m: m.seconds),
        )
        for tool in TOOLS
    }
    report(
        f"{count} objects in one task, ansible-playbook, test API server (fastest of {len(rounds)})",
        results,
        (
            ("reqs", 6, "requests"),
            ("GETs", 6, "gets"),
            ("writes", 6, "writes"),
            ("dryrun", 6, "dry_runs"),
            ("disco", 6, "discovery"),
            ("changed", 7, "changed"),
            ("failed", 6, "failed"),
        ),
    )
    print("\nrequests by method (discovery apart; the same in every round)")
    for (tool, run), counts in zip(((t, r) for t in TOOLS for r in RUNS), log, strict=False):
        label = f"{tool} {run}"
        print(f"  {label:<34}" + "  ".join(f"{m} {counts[m]:>3}" for m in METHODS))
    ours, theirs = results[TOOLS[0]], results[TOOLS[1]]
    for index, run in enumerate(RUNS):
        print(
            f"kubernetes.core.k8s / k8s_objects, {run}: {theirs[index].seconds / ours[index].seconds:.2f}x the time, "
            f"{theirs[index].requests / ours[index].requests:.2f}x the requests, "
            f"{theirs[index].all_writes} vs {ours[index].all_writes} writes"
        )
    again = ours[1]
    ok = again.changed == 0 and again.all_writes == 0 and again.gets <= count
    print(
        f"\ntarget (no-op re-run: 0 changed, no write, <= 1 GET per object): {'met' if ok else 'NOT met'} "
        f"({again.changed} changed, {again.gets} GETs for {count} objects, {again.all_writes} writes)"
    )


if __name__ == "__main__":
    main()
