"""Run playbooks the way users do (``ansible-playbook``) and read back per-task results.

Every integration test goes through here so that modules are exercised through the real
executor (argument validation, check/diff mode, no_log, connection plugins) and the full
``-vvv`` output is available to scan for leaked secrets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CALLBACKS = Path(__file__).resolve().parent / "callback_plugins"
COLLECTIONS = REPO / ".build" / "collections"


@dataclass
class TaskResult:
    status: str
    host: str
    task: str
    action: str
    result: dict[str, Any]

    @property
    def changed(self) -> bool:
        return bool(self.result.get("changed"))

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "unreachable")


@dataclass
class PlaybookRun:
    rc: int
    output: str
    tasks: list[TaskResult] = field(default_factory=list)

    def task(self, name: str, host: str | None = None) -> TaskResult:
        """The single result of the task called ``name`` (on ``host``)."""
        hits = [t for t in self.tasks if t.task == name and (host is None or t.host == host)]
        if len(hits) != 1:
            seen = sorted({t.task for t in self.tasks})
            raise AssertionError(f"expected one result for task {name!r}, got {len(hits)}; tasks seen: {seen}")
        return hits[0]

    def changed_tasks(self) -> list[TaskResult]:
        return [t for t in self.tasks if t.changed]

    def failed_tasks(self) -> list[TaskResult]:
        return [t for t in self.tasks if t.failed and not t.result.get("_ansible_ignore_errors")]


def write_playbook(
    directory: Path,
    tasks: Sequence[Mapping[str, Any]],
    *,
    hosts: str = "localhost",
    gather_facts: bool = False,
    play_vars: Mapping[str, Any] | None = None,
    name: str = "playbook.yml",
) -> Path:
    """Write a one-play playbook (connection local for localhost) and return its path."""
    play: dict[str, Any] = {"name": "Test play", "hosts": hosts, "gather_facts": gather_facts, "tasks": list(tasks)}
    if hosts == "localhost":
        play["connection"] = "local"
    if play_vars:
        play["vars"] = dict(play_vars)
    path = directory / name
    path.write_text(json.dumps([play], indent=2), encoding="utf-8")  # JSON is valid YAML
    return path


def module_task(module: str, args: Mapping[str, Any], name: str, ignore_errors: bool = False) -> dict[str, Any]:
    """One task calling ``module`` with ``args`` (for write_playbook)."""
    task: dict[str, Any] = {"name": name, module: dict(args)}
    if ignore_errors:
        task["ignore_errors"] = True
    return task


def run_tasks(directory: Path, tasks: Iterable[Mapping[str, Any]], **kwargs: Any) -> PlaybookRun:
    """write_playbook(directory, tasks) on localhost, then run_playbook(it, **kwargs)."""
    return run_playbook(write_playbook(directory, list(tasks)), **kwargs)


def run_playbook(
    playbook: Path,
    *,
    inventory: str | Path | None = None,
    extra_vars: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = False,
    diff: bool = False,
    verbosity: int = 3,
    tags: Iterable[str] = (),
    args: Sequence[str] = (),
    timeout: float = 900,
) -> PlaybookRun:
    """Run ``ansible-playbook`` and return its exit code, full output and recorded task results."""
    with tempfile.TemporaryDirectory(prefix="pbrun-") as tmp:
        record = Path(tmp) / "results.jsonl"
        cmd = ["ansible-playbook", str(playbook)]
        cmd += ["-i", str(inventory) if inventory else "localhost,"]
        if extra_vars:
            vars_file = Path(tmp) / "extra_vars.json"
            vars_file.write_text(json.dumps(dict(extra_vars)), encoding="utf-8")
            cmd += ["-e", f"@{vars_file}"]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        tag_list = list(tags)
        if tag_list:
            cmd += ["--tags", ",".join(tag_list)]
        cmd += list(args)
        run_env = dict(os.environ)
        run_env.update(
            {
                "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
                "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
                "ANSIBLE_CALLBACKS_ENABLED": "record",
                "RECORD_CALLBACK_FILE": str(record),
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_FORCE_COLOR": "0",
                "ANSIBLE_LOCALHOST_WARNING": "0",
                "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            }
        )
        if inventory is None:
            # localhost runs modules with this interpreter: the venv has the kubernetes client
            run_env["ANSIBLE_PYTHON_INTERPRETER"] = sys.executable
        if env:
            run_env.update(env)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, timeout=timeout, check=False)
        tasks = []
        if record.exists():
            for line in record.read_text(encoding="utf-8").splitlines():
                tasks.append(TaskResult(**json.loads(line)))
        return PlaybookRun(rc=proc.returncode, output=proc.stdout + proc.stderr, tasks=tasks)


def four_runs(playbook: Path, task: str, **kwargs: Any) -> list[PlaybookRun]:
    """check, apply, check, apply: the named task must report changed, changed, unchanged, unchanged."""
    runs = []
    for check in (True, False, True, False):
        run = run_playbook(playbook, check=check, diff=True, **kwargs)
        assert run.rc == 0, f"{'check' if check else 'apply'} run failed:\n{run.output[-6000:]}"
        runs.append(run)
    changed = [r.task(task).changed for r in runs]
    assert changed == [True, True, False, False], f"task {task!r} changed pattern {changed}, want [T, T, F, F]"
    return runs


def assert_no_secrets(output: str, secrets: Iterable[str]) -> None:
    """Fail if any secret value appears anywhere in the (-vvv) output."""
    leaked = [s for s in secrets if s and s in output]
    assert not leaked, f"{len(leaked)} secret value(s) appear in the playbook output"
