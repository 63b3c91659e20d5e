"""Verify k3s_ha: three servers on embedded etcd joined one at a time, a vault-style token, throttled restarts."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from lab.k3s_hosts import AGENTS, INVENTORY, RUNNER, SERVERS, name_of, service_times, unit_of
from lab.playbook import assert_no_secrets, run_playbook

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
testinfra_hosts = SERVERS + AGENTS
TOKEN_FILE = "/etc/rancher/k3s/cluster-token"  # noqa: S105 - a path


def assert_one_at_a_time(times: dict[str, dict[str, int]]) -> None:
    for earlier, later in itertools.pairwise(SERVERS):
        assert times[later]["InactiveExitTimestampMonotonic"] >= times[earlier]["ActiveEnterTimestampMonotonic"], (
            f"{later} started before {earlier} was ready"
        )


@pytest.fixture(scope="module")
def token() -> str:
    return (EPHEMERAL / "vault-token").read_text(encoding="utf-8").strip()


@pytest.fixture(scope="module")
def core() -> Any:
    client = kubernetes.config.new_client_from_config(str(EPHEMERAL / "kubeconfig"), context="k3s-ha")
    return kubernetes.client.CoreV1Api(client)


def test_an_odd_number_of_servers() -> None:
    assert len(SERVERS) == 3


def test_first_server_inits_the_others_join_it(host: Any) -> None:
    config = yaml.safe_load(host.file("/etc/rancher/k3s/config.yaml").content_string)
    first = RUNNER.get_variables(SERVERS[0])["ansible_host"]
    if name_of(host) == SERVERS[0]:
        assert config.get("cluster-init") is True and "server" not in config
    else:
        assert config["server"] == f"https://{first}:6443" and "cluster-init" not in config
    if name_of(host) in SERVERS:
        assert config["secrets-encryption"] is True
        assert (config["etcd-snapshot-schedule-cron"], config["etcd-snapshot-retention"]) == ("0 */6 * * *", 48)


def test_vault_token_in_a_private_file_and_nowhere_else(host: Any, token: str) -> None:
    token_file = host.file(TOKEN_FILE)
    assert (token_file.mode, token_file.content_string.strip()) == (0o600, token)
    unit = unit_of(name_of(host))
    for command in (
        f"cat /etc/systemd/system/{unit}.service /etc/systemd/system/{unit}.service.env",
        "ps -eo args",
        "journalctl --no-pager -o cat",
        "cat /etc/rancher/k3s/config.yaml",
    ):
        output = host.run(command).stdout
        assert output and token not in output, command


def test_every_server_answers_for_the_whole_cluster(host: Any) -> None:
    if name_of(host) not in SERVERS:
        pytest.skip("servers only")
    assert host.run("k3s kubectl get --raw /readyz").stdout.strip() == "ok"
    listed = host.check_output("k3s kubectl get --raw /api/v1/nodes")
    for name in SERVERS + AGENTS:
        assert f'"name": "{name}"' in listed


def test_nodes_ready_with_etcd_role_on_servers(core: Any) -> None:
    nodes = {n.metadata.name: n for n in core.list_node().items}
    assert sorted(nodes) == sorted(SERVERS + AGENTS)
    for name, node in nodes.items():
        assert [c.status for c in node.status.conditions if c.type == "Ready"] == ["True"], name
        is_server = name in SERVERS
        assert (node.metadata.labels.get("node-role.kubernetes.io/etcd") == "true") is is_server, name


def test_servers_were_started_one_at_a_time() -> None:
    assert_one_at_a_time({name: service_times(name) for name in SERVERS})


def test_converge_vvv_output_never_shows_the_token(token: str) -> None:
    log = (EPHEMERAL / "ansible-vvv.log").read_text(encoding="utf-8", errors="replace")
    assert "ESTABLISH SSH CONNECTION" in log
    assert_no_secrets(log, [token])


# Last: changes the cluster (and puts it back).
def test_a_server_setting_restarts_only_servers_one_at_a_time(token: str) -> None:
    before = {name: service_times(name) for name in SERVERS + AGENTS}
    run = run_playbook(
        SCENARIO / "converge.yml",
        inventory=Path(INVENTORY).parent,
        verbosity=3,
        extra_vars={"k3s_etcd_snapshot_retention": 47},
    )
    assert run.rc == 0, run.output[-4000:]
    assert_no_secrets(run.output, [token])
    assert {t.host for t in run.changed_tasks()} == set(SERVERS)
    after = {name: service_times(name) for name in SERVERS + AGENTS}
    for name in SERVERS:
        assert after[name]["MainPID"] != before[name]["MainPID"], f"{name} was not restarted"
    for name in AGENTS:
        assert after[name] == before[name], f"{name} was restarted"
    assert_one_at_a_time(after)
    restore = run_playbook(SCENARIO / "converge.yml", inventory=Path(INVENTORY).parent, verbosity=1)
    assert restore.rc == 0, restore.output[-4000:]
    assert {t.host for t in restore.changed_tasks()} == set(SERVERS)
