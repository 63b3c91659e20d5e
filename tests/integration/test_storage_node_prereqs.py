"""The storage role's node prerequisites (``--tags storage_node``) on real lab hosts.

node_prereqs.yml reads each host in one read-only probe and includes node_changes.yml only where that
reading shows something to change. Asserted here on two hosts of a lab of their own (``HOSTLAB_ID=stnode``):
check, apply, check, apply from a bare host (changed, changed, unchanged, unchanged); a converged run is
the probe and one skipped include per host; a drifted part (the modules-load file, the multipath block,
iscsid) is found and fixed by exactly its task, on the drifted host only; the multipathd handler follows
the probe's answer; ``storage_manage_node_prereqs: false`` leaves the hosts alone.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab.playbook import PlaybookRun, run_playbook

REPO = Path(__file__).resolve().parents[2]
HOSTLAB = REPO / "tests" / "lab" / "hostlab"
LAB_ID = "stnode"
# One lab for the whole module: make integration runs xdist with --dist loadfile, so every test of this file
# runs on the same worker (two workers would bring up, converge and take down the same lab at once).
pytestmark = pytest.mark.lab
INVENTORY = REPO / ".lab" / "run" / LAB_ID / "inventory.yml"  # its group_vars: storage_apply_kernel_globals false
HOSTS = ["pi-master", "pi-worker-01"]
DRIFTED = "pi-worker-01"
ENV = {**os.environ, "HOSTLAB_ID": LAB_ID}

ROLE = "homelab.pi_cluster.storage : "  # how task names are recorded
PROBE = ROLE + "Read the packages, the modules-load file, iscsid and the multipath configuration"
INCLUDE = ROLE + "Bring the node prerequisites in line (only where the probe found something to change)"
APT = ROLE + "Install the missing iSCSI and NFS client packages"
COPY = ROLE + "Persist iscsi_tcp to load at boot"
ISCSID = ROLE + "Enable and start iscsid"
BLOCK = ROLE + "Keep multipathd away from sd* devices (Longhorn's volumes)"
HANDLER = ROLE + "Restart multipathd"
VALIDATE = "ansible.builtin.validate_argument_spec"  # runs on the controller, always

# a bare host: none of the three parts in place (the lab image has the packages)
UNDO = (
    "rm -f /etc/modules-load.d/longhorn.conf /etc/multipath.conf"
    " && systemctl disable --quiet iscsid 2>/dev/null; systemctl is-enabled iscsid || true"
)


def hostlab(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HOSTLAB), *args], capture_output=True, text=True, env=ENV, timeout=timeout, check=False)


def on(host: str, command: str) -> str:
    proc = hostlab("ssh", host, command, timeout=60)
    assert proc.returncode == 0, f"{host}: {command}: {proc.stdout}{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def lab() -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    up = hostlab("up", "--hosts", ",".join(HOSTS), timeout=1800)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        yield
    finally:
        down = hostlab("down")
        assert down.returncode == 0, down.stderr[-2000:]


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The role as site.yml's storage play has it (``roles:``, so ``--tags storage_node`` selects its tasks)."""
    play = {"name": "Storage", "hosts": "k3s_cluster", "become": True, "gather_facts": False}
    path = tmp_path_factory.mktemp("stnode") / "playbook.yml"
    path.write_text(json.dumps([{**play, "roles": [{"role": "homelab.pi_cluster.storage"}]}]), encoding="utf-8")
    return path


def storage_node(playbook: Path, *, check: bool = False, **extra_vars: object) -> PlaybookRun:
    run = run_playbook(
        playbook, inventory=INVENTORY, env={"HOSTLAB_ID": LAB_ID}, check=check, diff=True, verbosity=1,
        tags=["storage_node"], extra_vars=extra_vars or None,
    )  # fmt: skip
    assert run.rc == 0, f"{'check' if check else 'apply'} run failed:\n{run.output[-6000:]}"
    assert not run.failed_tasks(), run.failed_tasks()
    return run


def changed(run: PlaybookRun, host: str) -> set[str]:
    return {t.task for t in run.tasks if t.host == host and t.changed}


def remote_tasks(run: PlaybookRun, host: str) -> list[str]:
    """The tasks that did something on ``host`` (not skipped, not the controller-side argument check)."""
    return [t.task for t in run.tasks if t.host == host and t.status != "skipped" and t.action != VALIDATE]


def assert_converged(run: PlaybookRun) -> None:
    """Per host: the probe, then the include skipped; nothing else ran and nothing changed."""
    for host in HOSTS:
        assert remote_tasks(run, host) == [PROBE], (host, remote_tasks(run, host))
        assert run.task(INCLUDE, host).status == "skipped", host
        assert not changed(run, host), (host, changed(run, host))


def probe_lines(run: PlaybookRun, host: str) -> list[str]:
    return [str(line) for line in run.task(PROBE, host).result["stdout_lines"]]


@pytest.fixture(scope="module")
def converged(lab: None, playbook: Path) -> Path:
    """Four runs from bare hosts: check, apply, check, apply."""
    for host in HOSTS:
        on(host, UNDO)
    runs = [storage_node(playbook, check=check) for check in (True, False, True, False)]
    for host in HOSTS:
        for run in runs[:2]:  # check mode reports what apply then does
            assert changed(run, host) == {COPY, ISCSID, BLOCK}, host
            assert run.task(APT, host).status == "skipped"  # the image has the packages
            assert run.task(HANDLER, host).status == "skipped"  # multipathd is not installed in the lab
    for run in runs[2:]:
        assert_converged(run)
    return playbook


def test_four_runs_converge_to_one_probe_per_host(converged: Path) -> None:
    run = storage_node(converged)
    assert_converged(run)
    for host in HOSTS:
        lines = probe_lines(run, host)
        assert "iscsid_enabled enabled" in lines
        assert {"package open-iscsi", "package nfs-common", "multipath_conf 644"} <= set(lines)
        assert "multipathd" not in lines
    text = on(DRIFTED, "cat /etc/multipath.conf /etc/modules-load.d/longhorn.conf; stat -c %a /etc/multipath.conf")
    assert 'devnode "^sd[a-z0-9]+"' in text and "\niscsi_tcp\n" in text and text.endswith("644\n")


DRIFTS = {
    "modules-load file edited": ("echo dm_crypt >> /etc/modules-load.d/longhorn.conf", COPY),
    "modules-load file mode": ("chmod 600 /etc/modules-load.d/longhorn.conf", COPY),
    "modules-load file owner": ("chown nobody /etc/modules-load.d/longhorn.conf", COPY),
    "multipath block edited": ("sed -i 's/sd\\[a-z0-9\\]+/nvme.*/' /etc/multipath.conf", BLOCK),
    "multipath block line added": ("sed -i '/^blacklist {/a \\    wwid .*' /etc/multipath.conf", BLOCK),
    "multipath end marker gone": ("sed -i '/^# END ANSIBLE MANAGED BLOCK/d' /etc/multipath.conf", BLOCK),
    "multipath.conf mode": ("chmod 600 /etc/multipath.conf", BLOCK),
    "multipath.conf gone": ("rm /etc/multipath.conf", BLOCK),
    "iscsid disabled": ("systemctl disable --quiet iscsid", ISCSID),
}


@pytest.mark.parametrize("drift", DRIFTS)
def test_drift_is_found_and_fixed_by_exactly_its_task(converged: Path, drift: str) -> None:
    command, task = DRIFTS[drift]
    on(DRIFTED, command)
    preview = storage_node(converged, check=True)
    assert changed(preview, DRIFTED) == {task}
    fixed = storage_node(converged)
    assert changed(fixed, DRIFTED) == {task}
    for run in (preview, fixed):
        other = HOSTS[0]
        assert remote_tasks(run, other) == [PROBE] and not changed(run, other)
    assert_converged(storage_node(converged, check=True))


def test_content_after_the_block_and_no_final_newline(converged: Path) -> None:
    """Lines of the user's after the block stay; a file without its final newline is rewritten only then."""
    on(DRIFTED, "printf 'defaults {\\n    user_friendly_names yes\\n}\\n' >> /etc/multipath.conf")
    assert_converged(storage_node(converged))  # the user's lines are not the role's business
    on(DRIFTED, "truncate -s -1 /etc/multipath.conf")
    run = storage_node(converged)
    assert "multipath_no_final_newline" in probe_lines(run, DRIFTED)
    assert DRIFTED not in {t.host for t in run.tasks if t.task == INCLUDE and t.status == "skipped"}
    # blockinfile leaves a block before the user's last line alone: the include ran, nothing changed
    assert not changed(run, DRIFTED)
    assert on(DRIFTED, "tail -n 2 /etc/multipath.conf") == "    user_friendly_names yes\n}"
    on(DRIFTED, "echo >> /etc/multipath.conf")
    assert_converged(storage_node(converged))


def test_handler_restarts_multipathd_where_the_probe_found_it(converged: Path) -> None:
    """A stand-in multipathd (script and unit): the block's change restarts it, on that host only."""
    on(
        DRIFTED,
        "printf '#!/bin/sh\\nexec sleep infinity\\n' > /usr/sbin/multipathd && chmod 755 /usr/sbin/multipathd"
        " && printf '[Service]\\nExecStart=/usr/sbin/multipathd\\n' > /etc/systemd/system/multipathd.service"
        " && systemctl daemon-reload && systemctl start multipathd",
    )
    try:
        pid = on(DRIFTED, "systemctl show -P MainPID multipathd").strip()
        on(DRIFTED, "sed -i 's/sd\\[a-z0-9\\]+/nvme.*/' /etc/multipath.conf")
        preview = storage_node(converged, check=True)
        assert changed(preview, DRIFTED) == {BLOCK}
        assert preview.task(HANDLER, DRIFTED).status == "skipped"  # nothing restarts in check mode
        assert on(DRIFTED, "systemctl show -P MainPID multipathd").strip() == pid
        run = storage_node(converged)
        assert "multipathd" in probe_lines(run, DRIFTED)
        assert changed(run, DRIFTED) == {BLOCK, HANDLER}
        assert [t.host for t in run.tasks if t.task == HANDLER] == [DRIFTED]
        assert on(DRIFTED, "systemctl show -P MainPID multipathd").strip() not in ("0", pid)
        assert_converged(storage_node(converged))
    finally:
        on(
            DRIFTED,
            "systemctl stop multipathd; rm -f /usr/sbin/multipathd /etc/systemd/system/multipathd.service"
            " && systemctl daemon-reload",
        )


def test_check_mode_with_a_package_to_install_skips_iscsid(converged: Path) -> None:
    """A package the probe finds missing: apt reports it in check mode; iscsid (whose unit could be the
    package's) is not looked at then. (The lab has no mirror, so only check mode is run.)"""
    on(DRIFTED, "systemctl disable --quiet iscsid")
    try:
        run = storage_node(converged, check=True, storage_node_packages=["open-iscsi", "nfs-common", "multipath-tools"])
        for host in HOSTS:
            assert changed(run, host) >= {APT}
            assert run.task(ISCSID, host).status == "skipped"
    finally:
        storage_node(converged)
    assert_converged(storage_node(converged))


def test_off_leaves_the_hosts_alone(converged: Path) -> None:
    on(DRIFTED, "rm /etc/modules-load.d/longhorn.conf")
    try:
        run = storage_node(converged, storage_manage_node_prereqs=False)
        for host in HOSTS:
            assert remote_tasks(run, host) == [] and not changed(run, host)
        on(DRIFTED, "test ! -e /etc/modules-load.d/longhorn.conf")
    finally:
        storage_node(converged)
