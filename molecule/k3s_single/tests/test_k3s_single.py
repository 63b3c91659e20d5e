"""Verify k3s_single: what the k3s role left on the lab hosts, in the API and on the controller."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from lab.k3s_hosts import AGENTS, INVENTORY, RUNNER, SERVERS, name_of, node_host, unit_of
from lab.playbook import assert_no_secrets, run_playbook

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
testinfra_hosts = SERVERS + AGENTS

VERSION = "v1.31.4+k3s1"
CONTEXT = "k3s-single"
KUBECONFIG = EPHEMERAL / "kubeconfig"
TOKEN_FILE = "/etc/rancher/k3s/cluster-token"  # noqa: S105 - a path


def main_pid_and_start(name: str) -> str:
    """As converge recorded it in /var/tmp/molecule-k3s-start.txt (same command, same format)."""
    unit = unit_of(name)
    return node_host(name).check_output(f"systemctl show --property=MainPID --property=ActiveEnterTimestamp {unit}")


@pytest.fixture(scope="module")
def token() -> str:
    value = node_host(SERVERS[0]).file(TOKEN_FILE).content_string.strip()
    assert len(value) >= 32
    return value


@pytest.fixture(scope="module")
def core() -> Any:
    client = kubernetes.config.new_client_from_config(str(KUBECONFIG), context=CONTEXT)
    return kubernetes.client.CoreV1Api(client)


# ------------------------------------------------------------------------------ on every node


def test_binary_is_the_pinned_checksummed_one(host: Any) -> None:
    assert host.check_output("/usr/local/bin/k3s --version").splitlines()[0].startswith(f"k3s version {VERSION} (")
    sums = dict(line.split()[::-1] for line in (EPHEMERAL / "airgap" / "sha256sum-amd64.txt").read_text().splitlines())
    assert host.file("/usr/local/bin/k3s").sha256sum == sums["k3s"]
    assert (
        host.file("/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.gz").sha256sum
        == sums["k3s-airgap-images-amd64.tar.gz"]
    )


def test_config_yaml_is_private_and_has_the_role_keys(host: Any) -> None:
    config_file = host.file("/etc/rancher/k3s/config.yaml")
    assert (config_file.user, config_file.mode) == ("root", 0o600)
    config = yaml.safe_load(config_file.content_string)
    assert config["token-file"] == TOKEN_FILE
    assert config["node-name"] == name_of(host)
    assert config["kubelet-arg"] == ["max-pods=110"]
    assert "token" not in config
    if name_of(host) in SERVERS:
        assert config["cluster-init"] is True
        assert config["secrets-encryption"] is True
        assert config["etcd-snapshot-schedule-cron"] == "0 */6 * * *"
        assert config["etcd-snapshot-retention"] == 48
        assert config["write-kubeconfig-mode"] == "0600"
        assert "server" not in config
    else:
        master = RUNNER.get_variables(SERVERS[0])["ansible_host"]
        assert config["server"] == f"https://{master}:6443"
        dropin = host.file("/etc/rancher/k3s/config.yaml.d/10-lab.yaml")
        assert dropin.mode == 0o600
        assert yaml.safe_load(dropin.content_string) == {"node-label+": ["homelab.example/lab=true"]}


def test_token_file_is_private_and_the_same_everywhere(host: Any, token: str) -> None:
    token_file = host.file(TOKEN_FILE)
    assert (token_file.user, token_file.mode) == ("root", 0o600)
    assert token_file.content_string.strip() == token


def test_token_is_nowhere_else_on_the_node(host: Any, token: str) -> None:
    unit = unit_of(name_of(host))
    places = {
        "unit file": f"cat /etc/systemd/system/{unit}.service",
        "env file": f"cat /etc/systemd/system/{unit}.service.env",
        "process list": "ps -eo args",
        "journal": "journalctl --no-pager -o cat",
        "service environment": f"cat /proc/$(systemctl show -P MainPID {unit})/environ | tr '\\0' '\\n'",
        "config": "cat /etc/rancher/k3s/config.yaml /etc/rancher/k3s/config.yaml.d/*",
    }
    for place, command in places.items():
        output = host.run(command).stdout
        assert output, f"{place}: nothing read ({command})"
        assert token not in output, f"the join token appears in the {place}"
    assert host.file(f"/etc/systemd/system/{unit}.service.env").mode == 0o600


def test_service_runs_as_installed(host: Any) -> None:
    service = host.service(unit_of(name_of(host)))
    assert service.is_running and service.is_enabled
    unit = host.file(f"/etc/systemd/system/{unit_of(name_of(host))}.service").content_string
    assert f"ExecStart=/usr/local/bin/k3s {'server' if name_of(host) in SERVERS else 'agent'}\n" in unit
    assert ("Type=notify" if name_of(host) in SERVERS else "Type=exec") in unit


def test_idempotence_run_restarted_nothing(host: Any) -> None:
    recorded = host.file("/var/tmp/molecule-k3s-start.txt").content_string.strip()  # noqa: S108 - on the lab host
    assert "MainPID=" in recorded and "MainPID=0" not in recorded
    assert main_pid_and_start(name_of(host)) == recorded


def test_server_writes_node_token_and_kubeconfig_privately(host: Any, token: str) -> None:
    if name_of(host) not in SERVERS:
        pytest.skip("servers only")
    node_token = host.file("/var/lib/rancher/k3s/server/token")
    assert node_token.mode == 0o600
    assert node_token.content_string.strip().endswith(f"::server:{token}")
    assert host.file("/var/lib/rancher/k3s/server/node-token").linked_to == "/var/lib/rancher/k3s/server/token"
    assert host.file("/etc/rancher/k3s/k3s.yaml").mode == 0o600


# ------------------------------------------------------------------------------ API and controller


def test_nodes_registered_ready_labelled_and_tainted(core: Any) -> None:
    nodes = {n.metadata.name: n for n in core.list_node().items}
    assert sorted(nodes) == sorted(SERVERS + AGENTS)
    for name, node in nodes.items():
        ready = [c.status for c in node.status.conditions if c.type == "Ready"]
        assert ready == ["True"], name
        assert node.status.node_info.kubelet_version == VERSION
        assert node.metadata.labels["topology.kubernetes.io/zone"] == "rack-1"
    master = nodes[SERVERS[0]]
    assert master.metadata.labels["node-role.kubernetes.io/control-plane"] == "true"
    assert [(t.key, t.effect) for t in master.spec.taints or []] == [
        ("node-role.kubernetes.io/control-plane", "NoSchedule")
    ]
    for agent in AGENTS:
        assert nodes[agent].metadata.labels["homelab.example/lab"] == "true"
        assert "node-role.kubernetes.io/control-plane" not in nodes[agent].metadata.labels


def test_kubeconfig_merged_next_to_the_other_context() -> None:
    assert KUBECONFIG.stat().st_mode & 0o777 == 0o600
    config = yaml.safe_load(KUBECONFIG.read_text(encoding="utf-8"))
    assert [c["name"] for c in config["contexts"]] == ["elsewhere", CONTEXT]
    assert config["contexts"][0]["context"] == {"cluster": "elsewhere", "user": "elsewhere-admin", "namespace": "ops"}
    assert config["users"][0] == {"name": "elsewhere-admin", "user": {"token": "not-a-real-credential"}}
    assert config["current-context"] == "elsewhere"
    master = RUNNER.get_variables(SERVERS[0])["ansible_host"]
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == CONTEXT)
    assert cluster["server"] == f"https://{master}:6443"


def test_converge_vvv_output_never_shows_the_token(token: str) -> None:
    log = (EPHEMERAL / "ansible-vvv.log").read_text(encoding="utf-8", errors="replace")
    assert "ESTABLISH SSH CONNECTION" in log  # really the -vvv output
    assert "Write the join token file" in log
    assert_no_secrets(log, [token])


def test_wrong_token_is_refused_like_k3s(core: Any) -> None:
    agent = node_host(AGENTS[0])
    master = RUNNER.get_variables(SERVERS[0])["ansible_host"]
    wrong = hashlib.sha256(os.urandom(16)).hexdigest()
    result = agent.run(
        f"K3S_TOKEN={wrong} timeout 6 /usr/local/bin/k3s agent --server https://{master}:6443 "
        "--node-name intruder --config /nonexistent.yaml"
    )
    assert "401 Unauthorized" in result.stderr
    assert "intruder" not in [n.metadata.name for n in core.list_node().items]


def test_a_tampered_airgap_binary_is_refused_before_anything_is_copied(tmp_path: Path) -> None:
    """The checksum file names a binary the nodes do not have yet (as for a new release), and the directory's
    binary is not that one: refused before any node gets it."""
    airgap = tmp_path / "airgap"
    shutil.copytree(EPHEMERAL / "airgap", airgap)
    with (airgap / "k3s").open("ab") as binary:
        binary.write(b"\n# tampered\n")
    sums = airgap / "sha256sum-amd64.txt"
    release = hashlib.sha256(b"the release's k3s binary").hexdigest()
    sums.write_text(re.sub(r"^[0-9a-f]{64}(\s+k3s)$", release + r"\1", sums.read_text(), flags=re.M), encoding="utf-8")
    assert release in sums.read_text()
    before = {name: node_host(name).file("/usr/local/bin/k3s").sha256sum for name in SERVERS + AGENTS}
    run = run_playbook(
        SCENARIO / "converge.yml",
        inventory=Path(INVENTORY).parent,
        verbosity=1,
        extra_vars={"k3s_airgap_dir": str(airgap)},
    )
    assert run.rc != 0
    failed = run.failed_tasks()
    assert failed and all(t.task.endswith("Check the airgap files against the checksum file") for t in failed)
    assert "k3s is missing or its sha256" in run.output and "does not match sha256sum-amd64.txt" in run.output
    assert not run.changed_tasks()
    assert {name: node_host(name).file("/usr/local/bin/k3s").sha256sum for name in SERVERS + AGENTS} == before


# Last: changes the cluster (and puts it back).
def test_a_config_change_restarts_exactly_that_node(tmp_path: Path, token: str) -> None:
    inventory = tmp_path / "inventory"
    shutil.copytree(Path(INVENTORY).parent, inventory)
    changed, others = AGENTS[-1], [n for n in SERVERS + AGENTS if n != AGENTS[-1]]
    (inventory / "host_vars").mkdir(exist_ok=True)
    (inventory / "host_vars" / f"{changed}.yml").write_text(
        yaml.safe_dump({"k3s_agent_config": {"kubelet-arg": ["max-pods=120"]}}), encoding="utf-8"
    )
    before = {name: main_pid_and_start(name) for name in SERVERS + AGENTS}
    run = run_playbook(SCENARIO / "converge.yml", inventory=inventory, verbosity=3)
    assert run.rc == 0, run.output[-4000:]
    assert_no_secrets(run.output, [token])
    assert {t.host for t in run.changed_tasks()} == {changed}
    assert [t.host for t in run.tasks if t.task.endswith("Restart K3s") and t.status != "skipped"] == [changed]
    after = {name: main_pid_and_start(name) for name in SERVERS + AGENTS}
    assert after[changed] != before[changed]
    assert {n: after[n] for n in others} == {n: before[n] for n in others}
    restore = run_playbook(SCENARIO / "converge.yml", inventory=Path(INVENTORY).parent, verbosity=1)
    assert restore.rc == 0, restore.output[-4000:]
    assert {t.host for t in restore.changed_tasks()} == {changed}
