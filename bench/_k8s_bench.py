"""What the Kubernetes benches share: one tool's playbook run twice against a fresh test API server
(tests/lab/kubeapi), measured from the server's request log, and the table of runs and ratios.

Each bench keeps its own objects, its simulated controller or webhook, which GETs it counts and its
target; see ``longhorn_volume_bench.py`` and ``velero_schedule_bench.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / ".build" / "collections")]

from lab.kubeapi.server import KubeAPIServer  # noqa: E402
from lab.playbook import run_playbook, write_playbook  # noqa: E402

WRITES = ("POST", "PUT", "PATCH", "DELETE")
RUNS = ("first run", "no-op re-run")

Hook = Callable[[Any, dict[str, Any]], None]  # (server, object written), as KubeAPIServer.on_write calls it


@dataclass
class Measure:
    seconds: float
    requests: int  # non-discovery
    gets: int  # GETs the bench counts (see ``counted_get`` of measure)
    writes: int  # sent for real
    dry_runs: int  # writes with ?dryRun=All (how kubernetes.core.k8s compares)
    discovery: int
    changed: int
    failed: int

    @property
    def all_writes(self) -> int:
        """Every write request, dry-run or not."""
        return self.writes + self.dry_runs


def measure(server: KubeAPIServer, playbook: Path, env: dict[str, str], counted_get: Callable[[Any], bool]) -> Measure:
    """Run the playbook once; count from the server's log. ``counted_get(request)`` picks the GETs counted."""
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
        gets=sum(1 for r in requests if r.method == "GET" and counted_get(r)),
        writes=sum(1 for r in requests if r.method in WRITES and not r.query.get("dryRun")),
        dry_runs=sum(1 for r in requests if r.method in WRITES and r.query.get("dryRun")),
        discovery=sum(1 for r in requests if r.discovery),
        changed=len(run.changed_tasks()),
        failed=len(run.failed_tasks()),
    )


def bench(
    tool: str,
    tasks: list[dict[str, Any]],
    workdir: Path,
    *,
    namespace: str,
    hooks: Mapping[str, Hook],
    counted_get: Callable[[Any], bool],
    simulated: str,
) -> tuple[Measure, Measure]:
    """A fresh server with ``namespace`` and the ``hooks`` (kind -> callback); the playbook of ``tasks``
    measured on its first run and on a no-op re-run. A failing hook stops the bench (``simulated`` names
    what it stands in for)."""
    directory = workdir / tool
    (directory / "tmp").mkdir(parents=True)
    with KubeAPIServer() as server:
        server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        for kind, hook in hooks.items():
            server.on_write(kind, hook)
        kubeconfig = server.write_kubeconfig(directory / "kubeconfig")
        env = {
            "K8S_AUTH_KUBECONFIG": str(kubeconfig),
            "TMPDIR": str(directory / "tmp"),
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            # ansible-playbook from this interpreter's environment, activated or not
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)]),
        }
        playbook = write_playbook(directory, tasks)
        first = measure(server, playbook, env, counted_get)
        again = measure(server, playbook, env, counted_get)
        if server.hook_errors:
            raise SystemExit(f"{simulated} failed:\n" + "\n".join(server.hook_errors))
    return first, again


def count_option(doc: str | None) -> int:
    """``--count`` from the command line (default 50); ``doc``'s first line describes the script."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    count: int = parser.parse_args().count
    return count


def compare(
    tools: Sequence[str], tasks_for: Callable[[str, int], list[dict[str, Any]]], count: int, prefix: str, **server: Any
) -> dict[str, tuple[Measure, Measure]]:
    """``bench`` for each tool in turn (``server``: its keyword arguments), in one temporary directory."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        return {tool: bench(tool, tasks_for(tool, count), Path(tmp), **server) for tool in tools}


def ratio(a: float, b: float) -> str:
    return "n/a" if b == 0 else f"{a / b:.2f}"


def report(
    title: str,
    results: Mapping[str, tuple[Measure, Measure]],
    columns: Sequence[tuple[str, int, str]],
) -> None:
    """Print ``title``, a row per tool and run (wall time, then ``columns``: header, width, Measure attribute)
    and the ratios of the first tool to the second; the ``writes`` column's attribute is the one in the ratios."""
    print(f"{title}\n")
    print(f"{'':<34}{'wall':>9}" + "".join(f" {header:>{width}}" for header, width, _ in columns))
    for tool, runs in results.items():
        for run, m in zip(RUNS, runs, strict=True):
            label = f"{tool} {run}"
            print(f"{label:<34}{m.seconds:>8.1f}s" + "".join(f" {getattr(m, a):>{w}}" for _, w, a in columns))
    writes = next(attribute for header, _, attribute in columns if header == "writes")
    (ours_name, ours), (theirs_name, theirs) = results.items()
    print(f"\nratios {ours_name} / {theirs_name}")
    for index, run in enumerate(RUNS):
        a, b = ours[index], theirs[index]
        print(
            f"  {run:<14} wall {ratio(a.seconds, b.seconds)}  requests {ratio(a.requests, b.requests)}  "
            f"writes {ratio(getattr(a, writes), getattr(b, writes))}  changed {a.changed} vs {b.changed}"
        )
