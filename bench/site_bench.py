"""Benchmark: site.yml on the 8-host lab (the reference cluster) against the floor, a bare fact-gathering pass.

The lab (tests/lab/hostlab, id ``bench`` unless HOSTLAB_ID says otherwise) is pi-master plus pi-worker-01..07,
with the two lab Pi-holes, brought up fresh unless ``--reuse``. site.yml runs exactly as ``make demo`` runs it
(every play; the arguments come from tests/lab/site-args: the stand-in K3s through the airgap path, the lab's
secrets files); ``--skip-tags`` leaves areas out. Runs, in this order:

    floor, site.yml first run, floor, site.yml run 2 (no-op), floor, site.yml run 3 (no-op)

The floor is a play with ``gather_facts: true`` and no tasks over the same hosts, through the same
``ansible-playbook``, ansible.cfg and inventory; its median is what the ratios divide by. Every run starts
with no SSH control master open (as a run a minute after the last one would), and for each the script
prints wall time, the ratio to the floor, task results from the play recap (summed over hosts) and SSH use:

- sessions: every ssh/sftp process Ansible started (an ``ssh_executable`` / ``sftp_executable`` wrapper
  logs them); "new" ones found no control master socket and opened a TCP connection, the others were
  multiplexed over a master,
- sshd conns: connections the hosts' sshd accepted (``Accepted publickey`` in each host's journal).

    .venv/bin/python bench/site_bench.py [--reuse] [--keep | --down] [--skip-tags LIST] [--profile]

``--profile`` adds ansible.posix.profile_tasks (its own overhead is in the times) and prints the slowest
tasks of each run. Not part of any test run; numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from _k8s_bench import ratio  # first: puts tests/ and the built collection on sys.path

REPO = Path(__file__).resolve().parents[1]
HOSTLAB = REPO / "tests" / "lab" / "hostlab"
HOSTS = ["pi-master"] + [f"pi-worker-{i:02d}" for i in range(1, 8)]
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M)
FLOOR_PLAY = """\
- name: Floor, a bare fact-gathering pass
  hosts: k3s_cluster
  gather_facts: true
  tasks: []
"""
# Logs one line per ssh/sftp process Ansible starts: "new" when no control master socket is there yet.
WRAPPER = """\
#!/bin/sh
kind={tool}; cp=
for a in "$@"; do
  case $a in ControlPath=*) cp=${{a#ControlPath=}}; cp=${{cp#\\"}}; cp=${{cp%\\"}};; -O) kind=control;; esac
done
if [ "$kind" = ssh ]; then if [ -n "$cp" ] && [ -S "$cp" ]; then kind=mux; else kind=new; fi; fi
echo "$kind" >> {log}
exec {real} "$@"
"""


@dataclass
class Run:
    name: str
    seconds: float
    hosts: int
    ok: int
    changed: int
    skipped: int
    tasks: int  # TASK and RUNNING HANDLER headers: tasks the play ran (each on its hosts)
    sessions: dict[str, int] = field(default_factory=dict)  # wrapper log: new / mux / sftp / control
    sshd: int = 0
    slowest: list[str] = field(default_factory=list)

    @property
    def ssh_sessions(self) -> int:
        return sum(n for kind, n in self.sessions.items() if kind != "control")


def hostlab(*args: str) -> str:
    proc = subprocess.run([str(HOSTLAB), *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"hostlab {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return (proc.stdout + proc.stderr).strip()


def sshd_accepted(run_dir: Path) -> int:
    """Connections the lab's sshds accepted so far, from the journals the hosts keep in their upper dirs."""
    total = 0
    for host in HOSTS:
        journal = run_dir / "hosts" / host / "upper" / "var" / "log" / "journal"
        proc = subprocess.run(
            ["journalctl", "-D", str(journal), "--no-pager", "-o", "cat", "_COMM=sshd"],
            capture_output=True,
            text=True,
            check=False,
        )
        total += proc.stdout.count("Accepted publickey")
    return total


def close_masters(control_dir: Path) -> None:
    """Stop the control masters the last run left (each would otherwise serve the next run warm)."""
    for socket in control_dir.glob("*"):
        subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={socket}", "bench"], capture_output=True, check=False)
    for _ in range(50):
        if not any(control_dir.iterdir()):
            return
        time.sleep(0.1)


def play(name: str, cmd: list[str], env: dict[str, str], work: Path, run_dir: Path) -> Run:
    close_masters(work / "cp")
    ssh_log = work / "ssh.log"
    ssh_log.write_text("", encoding="utf-8")
    sshd_before = sshd_accepted(run_dir)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    seconds = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    (work / f"{name.replace(' ', '-')}.log").write_text(output, encoding="utf-8")
    recap = RECAP.findall(output)
    if proc.returncode != 0 or len(recap) != len(HOSTS):
        raise SystemExit(f"{name} failed (rc {proc.returncode}):\n{output[-4000:]}")
    sessions: dict[str, int] = {}
    for kind in ssh_log.read_text(encoding="utf-8").split():
        sessions[kind] = sessions.get(kind, 0) + 1
    slowest = [line for line in output.splitlines() if re.search(r" -{3,} \d+\.\d+s$", line)][:12]
    return Run(
        name=name,
        seconds=seconds,
        hosts=len(recap),
        ok=sum(int(r[1]) for r in recap),
        changed=sum(int(r[2]) for r in recap),
        skipped=sum(int(r[5]) for r in recap),
        tasks=len(re.findall(r"^(?:TASK|RUNNING HANDLER) \[", output, re.M)),
        sessions=sessions,
        sshd=sshd_accepted(run_dir) - sshd_before,
        slowest=slowest,
    )


def report(runs: list[Run], floor: float) -> None:
    print(f"\n{'':<22}{'wall':>8}{'x floor':>9}{'tasks':>7}{'ok':>6}{'changed':>8}{'skipped':>8}", end="")
    print(f"{'ssh sessions':>13}{'new':>5}{'sftp':>5}{'sshd conns':>11}")
    for run in runs:
        print(
            f"{run.name:<22}{run.seconds:>7.1f}s{ratio(run.seconds, floor):>9}{run.tasks:>7}{run.ok:>6}"
            f"{run.changed:>8}{run.skipped:>8}{run.ssh_sessions:>13}{run.sessions.get('new', 0):>5}"
            f"{run.sessions.get('sftp', 0):>5}{run.sshd:>11}"
        )
    print(f"\nfloor (median of the floor runs): {floor:.1f}s")
    for run in runs:
        if run.name.startswith("site.yml run"):
            per_host = run.ssh_sessions / run.hosts
            print(
                f"{run.name}: {ratio(run.seconds, floor)}x the floor, {run.ok + run.skipped} task results "
                f"({run.changed} changed), {per_host:.1f} SSH sessions and {run.sshd / run.hosts:.1f} "
                "new connections per host"
            )
    worst = max(r.seconds for r in runs if r.name in ("site.yml run 2", "site.yml run 3"))
    verdict = "meets" if worst <= 4 * floor else "MISSES"
    print(f"slower no-op re-run: {worst / floor:.2f}x the floor ({verdict} the <= 4x target)")


def prepare(work: Path, run_dir: Path, skip_tags: str, profile: bool) -> tuple[dict[str, str], list[str], list[str]]:
    """The airgap directory, the ssh/sftp wrappers and the floor play in ``work``; the environment and the
    floor and site.yml command lines."""
    lab_args = subprocess.run(
        [str(REPO / "tests" / "lab" / "site-args"), str(work / "airgap"), str(work / "kubeconfig")],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for tool in ("ssh", "sftp", "scp"):
        wrapper = work / tool
        real = shutil.which(tool) or f"/usr/bin/{tool}"
        wrapper.write_text(WRAPPER.format(tool=tool, log=work / "ssh.log", real=real), encoding="utf-8")
        wrapper.chmod(0o755)
    (work / "floor.yml").write_text(FLOOR_PLAY, encoding="utf-8")
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".build" / "collections"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work / "cp"),
        "ANSIBLE_SSH_EXECUTABLE": str(work / "ssh"),
        "ANSIBLE_SFTP_EXECUTABLE": str(work / "sftp"),
        "ANSIBLE_SCP_EXECUTABLE": str(work / "scp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        # ansible-playbook from this interpreter's environment, activated or not
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)]),
    }
    if profile:
        env["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks"
    inventory = str(run_dir / "inventory.yml")
    floor_cmd = ["ansible-playbook", "-i", inventory, str(work / "floor.yml")]
    site_cmd = ["ansible-playbook", "-i", inventory, "site.yml", *lab_args]
    if skip_tags:
        site_cmd += ["--skip-tags", skip_tags]
    return env, floor_cmd, site_cmd


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help="run on the running lab (run 1 is then no first run)")
    when_done = parser.add_mutually_exclusive_group()
    when_done.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    when_done.add_argument("--down", action="store_true", help="only take the bench lab down")
    parser.add_argument("--skip-tags", default="", help="for site.yml (default: none, every play as make demo)")
    parser.add_argument("--profile", action="store_true", help="enable ansible.posix.profile_tasks")
    args = parser.parse_args()

    os.environ.setdefault("HOSTLAB_ID", "bench")
    lab_id = os.environ["HOSTLAB_ID"]
    if args.down:
        hostlab("down")
        print(f"lab {lab_id} down")
        return

    work = REPO / ".lab" / f"site-bench-{lab_id}"  # airgap dir, kubeconfig, logs (git-ignored)
    shutil.rmtree(work, ignore_errors=True)
    (work / "cp").mkdir(parents=True)
    if not args.reuse:
        hostlab("down")
    start = time.perf_counter()
    print(hostlab("up", "--hosts", ",".join(HOSTS), "--servers", "1", "--piholes", "2").splitlines()[-1])
    print(f"lab up in {time.perf_counter() - start:.1f}s")
    run_dir = Path(hostlab("path").splitlines()[-1])
    env, floor_cmd, site_cmd = prepare(work, run_dir, args.skip_tags, args.profile)

    where = "on the running lab" if args.reuse else "on a fresh lab"
    print(f"site.yml {where}, skipping tags: {args.skip_tags or '-'}")
    runs: list[Run] = []
    for number in (1, 2, 3):
        runs.append(play(f"floor {number}", floor_cmd, env, work, run_dir))
        runs.append(play(f"site.yml run {number}", site_cmd, env, work, run_dir))
        print(f"  {runs[-2].name}: {runs[-2].seconds:.1f}s, {runs[-1].name}: {runs[-1].seconds:.1f}s")
    close_masters(work / "cp")
    for run in runs[1:]:
        if run.name != "site.yml run 1" and run.name.startswith("site.yml") and run.changed:
            raise SystemExit(f"{run.name} changed {run.changed} things: not a no-op re-run (log in {work})")

    report(runs, statistics.median(r.seconds for r in runs if r.name.startswith("floor")))
    if args.profile:
        for run in runs:
            if run.slowest:
                print(f"\nslowest tasks, {run.name}:\n" + "\n".join(run.slowest))
    print(f"\nlogs: {work}")
    if args.keep:
        print(f"lab {lab_id} left up: tests/lab/hostlab status (HOSTLAB_ID={lab_id}); --down takes it down")
    else:
        hostlab("down")


if __name__ == "__main__":
    main()
