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

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / ".build" / "collections")]

from lab.kubeapi.server import KubeAPIServer  # noqa: E402
from lab.playbook import run_playbook, write_playbook  # noqa: E402

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _longhorn as lh  # noqa: E402

NS = "longhorn-system"
VOLUMES = f"/apis/longhorn.io/v1beta2/namespaces/{NS}/volumes/"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
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


@dataclass
class Measure:
    seconds: float
    requests: int  # non-discovery
    volume_gets: int
    writes: int  # sent for real
    dry_runs: int  # writes with ?dryRun=All (how kubernetes.core.k8s compares)
    discovery: int
    changed: int
    failed: int


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


def measure(server: KubeAPIServer, playbook: Path, env: dict[str, str]) -> Measure:
    server.clear_requests()
    start = time.perf_counter()
    run = run_playbook(playbook, env=env, verbosity=0)
    seconds = time.perf_counter() - start
    if run.rc != 0:
        raise SystemExit(f"{playbook.name} failed:\n{run.output[-3000:]}")
    requests = list(server.requests)
    return Measure(
        seconds=seconds,
        requests=sum(1 for r in requests if not r.discovery),
        volume_gets=sum(1 for r in requests if r.method == "GET" and r.path.startswith(VOLUMES)),
        writes=sum(1 for r in requests if r.method in WRITES and not r.query.get("dryRun")),
        dry_runs=sum(1 for r in requests if r.method in WRITES and r.query.get("dryRun")),
        discovery=sum(1 for r in requests if r.discovery),
        changed=len(run.changed_tasks()),
        failed=len(run.failed_tasks()),
    )


def bench(tool: str, count: int, workdir: Path) -> tuple[Measure, Measure]:
    directory = workdir / tool
    (directory / "tmp").mkdir(parents=True)
    with KubeAPIServer() as server:
        server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        server.on_write("Volume", longhorn)
        kubeconfig = server.write_kubeconfig(directory / "kubeconfig")
        env = {
            "K8S_AUTH_KUBECONFIG": str(kubeconfig),
            "TMPDIR": str(directory / "tmp"),
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        }
        playbook = write_playbook(directory, tasks_for(tool, count))
        first = measure(server, playbook, env)
        again = measure(server, playbook, env)
        if server.hook_errors:
            raise SystemExit("simulated Longhorn failed:\n" + "\n".join(server.hook_errors))
    return first, again


def row(label: str, m: Measure) -> str:
    return (
        f"{label:<34}{m.seconds:>8.1f}s {m.requests:>6} {m.volume_gets:>8} {m.writes:>6} {m.dry_runs:>7} "
        f"{m.discovery:>6} {m.changed:>7} {m.failed:>6}"
    )


def ratio(a: float, b: float) -> str:
    return "n/a" if b == 0 else f"{a / b:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    count = parser.parse_args().count
    with tempfile.TemporaryDirectory(prefix="longhorn-bench-") as tmp:
        ours = bench("longhorn_volume", count, Path(tmp))
        theirs = bench("kubernetes.core.k8s", count, Path(tmp))
    print(f"{count} volumes, ansible-playbook, test API server with simulated Longhorn webhook and manager\n")
    header = (
        f"{'':<34}{'wall':>9} {'reqs':>6} {'vol GETs':>8} {'writes':>6} {'dry-run':>7} {'disco':>6} "
        f"{'changed':>7} {'failed':>6}"
    )
    print(header)
    for label, (first, again) in (("longhorn_volume", ours), ("kubernetes.core.k8s", theirs)):
        print(row(f"{label} first run", first))
        print(row(f"{label} no-op re-run", again))
    print("\nratios longhorn_volume / kubernetes.core.k8s")
    for label, index in (("first run", 0), ("no-op re-run", 1)):
        a, b = ours[index], theirs[index]
        print(
            f"  {label:<14} wall {ratio(a.seconds, b.seconds)}  requests {ratio(a.requests, b.requests)}  "
            f"writes {ratio(a.writes, b.writes)}  changed {a.changed} vs {b.changed}"
        )
    again = ours[1]
    ok = again.changed == 0 and again.writes == 0 and again.volume_gets <= count
    print(
        f"\ntarget (no-op re-run: 0 changed, <= 1 GET per volume): {'met' if ok else 'NOT met'} "
        f"({again.changed} changed, {again.volume_gets} Volume GETs for {count} volumes, {again.writes} writes)"
    )


if __name__ == "__main__":
    main()
