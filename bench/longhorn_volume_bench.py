"""Benchmark: 50 Longhorn volumes through longhorn_volume vs the same objects through kubernetes.core.k8s.

Each tool gets a fresh test API server (tests/lab/kubeapi, Volumes validated against the upstream
Longhorn CRD). After every Volume write a stand-in for Longhorn's mutating webhook fills the defaults
the real one fills (replica auto-balance, selectors, data engine, compression, image, snapshot limits,
size rounded up to 2 MiB) and the manager sets ``status`` (detached, robustness unknown), so both
tools read back what a real cluster would return. Each tool's playbook of 50 tasks runs twice through
``ansible-playbook`` (first run, then a no-op re-run); the script prints wall time, API requests from
the server's log (discovery counted apart; "vol GETs" are GETs of Volume objects) and reported
changes, then the ratios longhorn_volume / kubernetes.core.k8s.

Target (issue 4): the no-op re-run reports 0 changed and costs at most one GET per volume.

    .venv/bin/python bench/longhorn_volume_bench.py [--count 50]

Not part of any test run; numbers depend on the machine.
"""

from __future__ import annotations

from typing import Any

from _k8s_bench import compare, count_option, report  # first: puts tests/ and the built collection on sys.path

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _longhorn as lh

NS = "longhorn-system"
VOLUMES = f"/apis/longhorn.io/v1beta2/namespaces/{NS}/volumes/"
GI = 1024**3

# What Longhorn's volume mutator fills when a field is empty (webhook/resources/volume/mutator.go).
WEBHOOK_DEFAULTS: dict[str, Any] = {
    "numberOfReplicas": 3,
    "dataLocality": "disabled",
    "accessMode": "rwo",
    "replicaAutoBalance": "ignored",
    "diskSelector": [],
    "nodeSelector": [],
    "snapshotDataIntegrity": "ignored",
    "restoreVolumeRecurringJob": "ignored",
    "unmapMarkSnapChainRemoved": "ignored",
    "replicaSoftAntiAffinity": "ignored",
    "replicaZoneSoftAntiAffinity": "ignored",
    "replicaDiskSoftAntiAffinity": "ignored",
    "dataEngine": "v1",
    "offlineRebuilding": "ignored",
    "backupCompressionMethod": "lz4",
    "snapshotMaxCount": 250,
    "image": "longhornio/longhorn-engine:v1.9.0",
}


def volume_args(i: int) -> dict[str, Any]:
    """What a user writes: sizes in mixed notations, replicas, locality, a recurring job."""
    size = ("10Gi", "10240Mi", str(10 * GI), "1.5Gi", "5G")[i % 5]
    return {
        "name": f"vol-{i:02d}",
        "size": size,
        "number_of_replicas": 2 + i % 2,
        "data_locality": "best-effort",
        "node_selector": ["nvme"],
        "recurring_jobs": ["daily-backup"],
    }


def k8s_definition(i: int) -> dict[str, Any]:
    """The same Volume as a kubernetes.core.k8s user writes it (the CRD wants the size in bytes)."""
    args = volume_args(i)
    spec = {
        "size": str(lh.parse_size(args["size"])),  # bytes as written by hand, not rounded to 2 MiB
        "numberOfReplicas": args["number_of_replicas"],
        "dataLocality": args["data_locality"],
        "nodeSelector": args["node_selector"],
        "frontend": "blockdev",
    }
    return {
        "apiVersion": lh.API_VERSION,
        "kind": lh.KIND,
        "metadata": {
            "name": args["name"],
            "namespace": NS,
            "labels": {lh.JOB_LABEL_PREFIX + "daily-backup": lh.LABEL_ENABLED},
        },
        "spec": spec,
    }


def tasks_for(tool: str, count: int) -> list[dict[str, Any]]:
    if tool == "longhorn_volume":
        return [{"name": f"v{i}", "homelab.pi_cluster.longhorn_volume": volume_args(i)} for i in range(count)]
    return [
        {"name": f"v{i}", "kubernetes.core.k8s": {"state": "present", "definition": k8s_definition(i)}}
        for i in range(count)
    ]


def longhorn(server: Any, obj: dict[str, Any]) -> None:
    """Longhorn's webhook and manager after a Volume write: defaults, 2 MiB rounding, status."""
    meta, spec = obj["metadata"], obj.get("spec") or {}
    patch: dict[str, Any] = {k: v for k, v in WEBHOOK_DEFAULTS.items() if spec.get(k) in (None, "", 0)}
    size = int(spec.get("size") or 0)
    if lh.round_up_size(size) != size:
        patch["size"] = str(lh.round_up_size(size))
    body: dict[str, Any] = {"spec": patch} if patch else {}
    if not (obj.get("status") or {}).get("state"):
        body["status"] = {"state": "detached", "robustness": "unknown"}
    if body:
        server.patch(lh.API_VERSION, lh.KIND, meta["name"], meta["namespace"], body)


def main() -> None:
    count = count_option(__doc__)
    results = compare(
        ("longhorn_volume", "kubernetes.core.k8s"),
        tasks_for,
        count,
        "longhorn-bench-",
        namespace=NS,
        hooks={"Volume": longhorn},
        counted_get=lambda r: r.path.startswith(VOLUMES),  # GETs of Volume objects
        simulated="simulated Longhorn",
    )
    report(
        f"{count} volumes, ansible-playbook, test API server with simulated Longhorn webhook and manager",
        results,
        (
            ("reqs", 6, "requests"),
            ("vol GETs", 8, "gets"),
            ("writes", 6, "writes"),
            ("dry-run", 7, "dry_runs"),
            ("disco", 6, "discovery"),
            ("changed", 7, "changed"),
            ("failed", 6, "failed"),
        ),
    )
    again = results["longhorn_volume"][1]
    ok = again.changed == 0 and again.writes == 0 and again.gets <= count
    print(
        f"\ntarget (no-op re-run: 0 changed, <= 1 GET per volume): {'met' if ok else 'NOT met'} "
        f"({again.changed} changed, {again.gets} Volume GETs for {count} volumes, {again.writes} writes)"
    )


if __name__ == "__main__":
    main()
