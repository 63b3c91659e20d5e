"""Verify upgrade: the rolling upgrade (servers one at a time, agents drained), then the failure case,
reboot.yml and reset.yml on the same lab. The tests after the marker below change the cluster in order."""

from __future__ import annotations

import hashlib
import itertools
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from lab.k3s_hosts import AGENTS, INVENTORY, SERVERS, name_of, node_host, service_times, unit_of
from lab.k3s_standin.build import ARCH_ASSETS
from lab.playbook import PlaybookRun, assert_no_secrets, run_playbook

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
REPO = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
testinfra_hosts = SERVERS + AGENTS

OLD, NEW, NEXT = "v1.31.4+k3s1", "v1.31.5+k3s1", "v1.31.6+k3s1"
CONTEXT = "k3s-upgrade"
KUBECONFIG = EPHEMERAL / "kubeconfig"
BROKEN_AGENT = "pi-worker-01"
OLD_PID_FILE = "/var/tmp/molecule-k3s-old-pid"  # noqa: S108 - on the lab host, written by prepare.yml


def core() -> Any:
    """A fresh client each time: a reset and reinstall gives the cluster a new CA and credential."""
    client = kubernetes.config.new_client_from_config(str(KUBECONFIG), context=CONTEXT)
    return kubernetes.client.CoreV1Api(client)


def nodes() -> dict[str, Any]:
    return {n.metadata.name: n for n in core().list_node().items}


def is_ready(node: Any) -> bool:
    return [c.status for c in node.status.conditions if c.type == "Ready"] == ["True"]


def playbook(name: str, *args: str, **extra_vars: Any) -> PlaybookRun:
    return run_playbook(
        REPO / "playbooks" / name, inventory=Path(INVENTORY).parent, extra_vars=extra_vars, args=args, verbosity=3
    )


def boots(name: str) -> int:
    out = subprocess.run(
        [str(REPO / "tests/lab/hostlab"), "boots", name],
        env={**os.environ, "HOSTLAB_ID": "upg"},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


@pytest.fixture(scope="module")
def token() -> str:
    return (EPHEMERAL / "vault-token").read_text(encoding="utf-8").strip()


# ----------------------------------------------------------------------------- after converge + idempotence


def test_the_binary_on_every_node_is_the_new_version(host: Any) -> None:
    assert f"k3s version {NEW} " in host.check_output("/usr/local/bin/k3s --version")


def test_every_node_reports_the_new_version_and_is_ready() -> None:
    found = nodes()
    assert sorted(found) == sorted(SERVERS + AGENTS)
    for name, node in found.items():
        assert node.status.node_info.kubelet_version == NEW, name
        assert is_ready(node), name


def test_every_node_was_restarted_by_the_upgrade(host: Any) -> None:
    old_pid = int(host.file(OLD_PID_FILE).content_string.strip())
    assert service_times(name_of(host))["MainPID"] not in (0, old_pid)


def test_servers_were_restarted_strictly_one_at_a_time() -> None:
    times = {name: service_times(name) for name in SERVERS}
    for earlier, later in itertools.pairwise(SERVERS):
        assert times[later]["InactiveExitTimestampMonotonic"] > times[earlier]["ActiveEnterTimestampMonotonic"], (
            f"{later} started before {earlier} was ready"
        )


def test_no_node_is_left_cordoned() -> None:
    assert {name: bool(node.spec.unschedulable) for name, node in nodes().items()} == dict.fromkeys(
        SERVERS + AGENTS, False
    )


def test_agents_were_drained_servers_were_not() -> None:
    pods = {p.metadata.name for p in core().list_namespaced_pod("default").items}
    assert pods == {f"web-{name}" for name in SERVERS}


def test_converge_vvv_output_never_shows_the_token(token: str) -> None:
    log = (EPHEMERAL / "ansible-vvv.log").read_text(encoding="utf-8", errors="replace")
    assert "ESTABLISH SSH CONNECTION" in log and "Drain the agent" in log
    assert_no_secrets(log, [token])


# ----------------------------------------------------------------------------- these change the cluster, in order


def airgap_dirs() -> tuple[Path, Path]:
    """A good airgap dir of NEXT, and one whose binary matches its checksum file but never starts."""
    good, broken = EPHEMERAL / f"airgap-{NEXT}", EPHEMERAL / "airgap-broken"
    subprocess.run(
        [sys.executable, "-m", "lab.k3s_standin.build", str(good), "--version", NEXT], cwd=REPO / "tests", check=True
    )
    arch, binary = ARCH_ASSETS[platform.machine()]
    broken.mkdir(exist_ok=True)
    script = b"#!/bin/sh\necho 'k3s: this build is broken on purpose' >&2\nexit 1\n"
    (broken / binary).write_bytes(script)
    (broken / binary).chmod(0o755)
    (broken / f"sha256sum-{arch}.txt").write_text(f"{hashlib.sha256(script).hexdigest()}  {binary}\n")
    return good, broken


def test_a_failed_agent_upgrade_leaves_it_uncordoned_and_the_next_agent_untouched(token: str) -> None:
    good, broken = airgap_dirs()
    other = [a for a in AGENTS if a != BROKEN_AGENT]
    before = {name: service_times(name) for name in other}
    run = playbook(
        "upgrade.yml",
        "--limit",
        ",".join(AGENTS),  # the servers' upgrade is what converge showed; keep this run short
        k3s_version=NEXT,
        k3s_airgap_dir=f"{{{{ '{broken}' if inventory_hostname == '{BROKEN_AGENT}' else '{good}' }}}}",
        # the broken agent never gets Ready: find out in seconds, not the default 5 minutes
        k3s_wait_timeout=20,
        upgrade_gate_timeout=20,
    )
    assert run.rc != 0, run.output[-4000:]
    assert_no_secrets(run.output, [token])
    assert {(t.host, t.task) for t in run.failed_tasks()} >= {(BROKEN_AGENT, "Report the failed upgrade")}
    assert {t.host for t in run.failed_tasks()} == {BROKEN_AGENT}
    assert run.task("Uncordon the agent after the failure", BROKEN_AGENT).changed
    found = nodes()
    assert not found[BROKEN_AGENT].spec.unschedulable
    for name in other:  # never reached: same process, same version, schedulable
        assert found[name].status.node_info.kubelet_version == NEW, name
        assert not found[name].spec.unschedulable, name
        assert service_times(name) == before[name], name
    assert "this build is broken on purpose" in node_host(BROKEN_AGENT).run("/usr/local/bin/k3s --version").stderr


def test_a_rerun_with_a_good_build_finishes_the_upgrade(token: str) -> None:
    run = playbook(
        "upgrade.yml",
        "--limit",
        ",".join(AGENTS),
        k3s_version=NEXT,
        k3s_airgap_dir=str(EPHEMERAL / f"airgap-{NEXT}"),
        upgrade_agent_batch=2,  # both agents in one batch
    )
    assert run.rc == 0, run.output[-4000:]
    assert_no_secrets(run.output, [token])
    assert {t.host for t in run.changed_tasks()} == set(AGENTS)
    for name, node in nodes().items():
        assert node.status.node_info.kubelet_version == (NEXT if name in AGENTS else NEW), name
        assert is_ready(node) and not node.spec.unschedulable, name


def test_reboot_boots_each_node_once_and_brings_it_back_ready(token: str) -> None:
    chosen = [SERVERS[0], AGENTS[-1]]  # the first server holds the API; the agent is drained
    before = {name: boots(name) for name in SERVERS + AGENTS}
    run = playbook("reboot.yml", "--limit", ",".join(chosen))
    assert run.rc == 0, run.output[-4000:]
    assert_no_secrets(run.output, [token])
    assert {name: boots(name) - before[name] for name in before} == {
        name: int(name in chosen) for name in SERVERS + AGENTS
    }
    assert run.task("Drain the agent", AGENTS[-1]).changed
    for name, node in nodes().items():
        assert is_ready(node) and not node.spec.unschedulable, name


def test_reset_without_confirmation_changes_nothing() -> None:
    run = playbook("reset.yml", reset_confirm="no")
    assert run.rc != 0
    assert "Reset not confirmed" in run.output
    assert not run.changed_tasks()
    assert node_host(SERVERS[0]).file("/usr/local/bin/k3s").exists


def assert_k3s_gone(name: str) -> None:
    node = node_host(name)
    for path in ("/usr/local/bin/k3s", f"/etc/systemd/system/{unit_of(name)}.service", "/var/lib/rancher/k3s"):
        assert not node.file(path).exists, f"{name}: {path}"
    assert not node.run(f"systemctl cat {unit_of(name)}").succeeded, name


def test_reset_of_one_agent_removes_it_from_the_cluster(token: str) -> None:
    run = playbook("reset.yml", "--limit", AGENTS[-1], reset_confirm=True)
    assert run.rc == 0, run.output[-4000:]
    assert_no_secrets(run.output, [token])
    assert_k3s_gone(AGENTS[-1])
    assert sorted(nodes()) == sorted(SERVERS + AGENTS[:-1])


def test_reset_removes_k3s_everywhere_and_the_context(token: str) -> None:
    run = playbook("reset.yml", reset_confirm="yes")
    assert run.rc == 0, run.output[-4000:]
    assert_no_secrets(run.output, [token])
    for name in SERVERS + AGENTS:
        assert_k3s_gone(name)
    config = yaml.safe_load(KUBECONFIG.read_text(encoding="utf-8"))
    assert [c["name"] for c in config["contexts"]] == ["elsewhere"]
    assert [c["name"] for c in config["clusters"]] == ["elsewhere"]
    assert config["current-context"] == "elsewhere"
    assert KUBECONFIG.stat().st_mode & 0o777 == 0o600


def test_site_yml_installs_the_reset_hosts_again(token: str) -> None:
    run = playbook("site.yml", "--tags", "k3s")
    assert run.rc == 0, run.output[-4000:]
    assert_no_secrets(run.output, [token])
    found = nodes()
    assert sorted(found) == sorted(SERVERS + AGENTS)
    for name, node in found.items():
        assert node.status.node_info.kubelet_version == NEW and is_ready(node), name
