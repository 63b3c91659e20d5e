"""Benchmark: 50 Velero schedules through velero_schedule vs the same objects through kubernetes.core.k8s.

Each tool gets a fresh test API server (tests/lab/kubeapi) with a simulated Velero controller that
sets ``status.phase: Enabled`` after every Schedule write, as the real one does. For each tool the
playbook of 50 tasks runs twice (first run, then a no-op re-run) through ``ansible-playbook``; the
script prints wall time, API requests from the server's log (discovery counted apart) and reported
changes, then the ratios velero_schedule / kubernetes.core.k8s.

Target (issue 4): the no-op re-run reports 0 changed and costs at most one GET per schedule.

    .venv/bin/python bench/velero_schedule_bench.py [--count 50]

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

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _velero  # noqa: E402

NS = "velero"
WRITES = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class Measure:
    seconds: float
    requests: int  # non-discovery
    gets: int
    writes: int
    discovery: int
    changed: int
    failed: int


def schedule_args(i: int) -> dict[str, Any]:
    """What a user writes: a daily schedule per app namespace, alternating durations styles."""
    return {
        "name": f"app-{i:02d}",
        "schedule": f"{i % 60} 2 * * *",
        "included_namespaces": [f"app-{i:02d}"],
        "ttl": "720h" if i % 2 else "30d",
        "storage_location": "default",
        "snapshot_volumes": True,
        "labels": {"app.kubernetes.io/managed-by": "ansible"},
    }


def k8s_definition(i: int) -> dict[str, Any]:
    """The same Schedule as a kubernetes.core.k8s user writes it (Go duration, no day unit)."""
    args = schedule_args(i)
    params = {**dict.fromkeys(_velero.schedule_argument_spec()), **args, "namespace": NS, "state": "present"}
    params["ttl"] = "720h"
    return _velero.build_schedule(params)


def tasks_for(tool: str, count: int) -> list[dict[str, Any]]:
    if tool == "velero_schedule":
        return [{"name": f"s{i}", "homelab.pi_cluster.velero_schedule": schedule_args(i)} for i in range(count)]
    return [
        {"name": f"s{i}", "kubernetes.core.k8s": {"state": "present", "definition": k8s_definition(i)}}
        for i in range(count)
    ]


def enable(server: Any, obj: dict[str, Any]) -> None:
    if (obj.get("status") or {}).get("phase") != "Enabled":
        meta = obj["metadata"]
        server.patch("velero.io/v1", "Schedule", meta["name"], meta["namespace"], {"status": {"phase": "Enabled"}})


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
        gets=sum(1 for r in requests if r.method == "GET" and not r.discovery),
        writes=sum(1 for r in requests if r.method in WRITES),
        discovery=sum(1 for r in requests if r.discovery),
        changed=len(run.changed_tasks()),
        failed=len(run.failed_tasks()),
    )


def bench(tool: str, count: int, workdir: Path) -> tuple[Measure, Measure]:
    directory = workdir / tool
    (directory / "tmp").mkdir(parents=True)
    with KubeAPIServer() as server:
        server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        server.on_write("Schedule", enable)
        kubeconfig = server.write_kubeconfig(directory / "kubeconfig")
        env = {
            "K8S_AUTH_KUBECONFIG": str(kubeconfig),
            "TMPDIR": str(directory / "tmp"),
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        }
        playbook = write_playbook(directory, tasks_for(tool, count))
        first = measure(server, playbook, env)
        again = measure(server, playbook, env)
    return first, again


def row(label: str, m: Measure) -> str:
    return (
        f"{label:<34}{m.seconds:>8.1f}s {m.requests:>6} {m.gets:>6} {m.writes:>6} {m.discovery:>6} "
        f"{m.changed:>7} {m.failed:>6}"
    )


def ratio(a: float, b: float) -> str:
    return "n/a" if b == 0 else f"{a / b:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    count = parser.parse_args().count
    with tempfile.TemporaryDirectory(prefix="velero-bench-") as tmp:
        ours = bench("velero_schedule", count, Path(tmp))
        theirs = bench("kubernetes.core.k8s", count, Path(tmp))
    print(f"{count} schedules, ansible-playbook, test API server with a simulated Velero controller\n")
    print(f"{'':<34}{'wall':>9} {'reqs':>6} {'GETs':>6} {'writes':>6} {'disco':>6} {'changed':>7} {'failed':>6}")
    for label, (first, again) in (("velero_schedule", ours), ("kubernetes.core.k8s", theirs)):
        print(row(f"{label} first run", first))
        print(row(f"{label} no-op re-run", again))
    print("\nratios velero_schedule / kubernetes.core.k8s")
    for label, index in (("first run", 0), ("no-op re-run", 1)):
        a, b = ours[index], theirs[index]
        print(
            f"  {label:<14} wall {ratio(a.seconds, b.seconds)}  requests {ratio(a.requests, b.requests)}  "
            f"writes {ratio(a.writes, b.writes)}  changed {a.changed} vs {b.changed}"
        )
    again = ours[1]
    ok = again.changed == 0 and again.writes == 0 and again.gets <= count
    print(
        f"\ntarget (no-op re-run: 0 changed, <= 1 GET per schedule): {'met' if ok else 'NOT met'} "
        f"({again.changed} changed, {again.gets} GETs for {count} schedules, {again.writes} writes)"
    )


if __name__ == "__main__":
    main()
