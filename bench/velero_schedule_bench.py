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

from typing import Any

from _k8s_bench import compare, count_option, report  # first: puts tests/ and the built collection on sys.path

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _velero

NS = "velero"


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


def main() -> None:
    count = count_option(__doc__)
    results = compare(
        ("velero_schedule", "kubernetes.core.k8s"),
        tasks_for,
        count,
        "velero-bench-",
        namespace=NS,
        hooks={"Schedule": enable},
        counted_get=lambda r: not r.discovery,
        simulated="simulated Velero controller",
    )
    report(
        f"{count} schedules, ansible-playbook, test API server with a simulated Velero controller",
        results,
        (
            ("reqs", 6, "requests"),
            ("GETs", 6, "gets"),
            ("writes", 6, "all_writes"),  # dry-run writes included, as this bench always counted them
            ("disco", 6, "discovery"),
            ("changed", 7, "changed"),
            ("failed", 6, "failed"),
        ),
    )
    again = results["velero_schedule"][1]
    ok = again.changed == 0 and again.all_writes == 0 and again.gets <= count
    print(
        f"\ntarget (no-op re-run: 0 changed, <= 1 GET per schedule): {'met' if ok else 'NOT met'} "
        f"({again.changed} changed, {again.gets} GETs for {count} schedules, {again.all_writes} writes)"
    )


if __name__ == "__main__":
    main()
