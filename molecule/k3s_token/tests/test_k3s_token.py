"""Verify k3s_token: the credentials role's k3s_token kind rotated the join token of a real-ish K3s.

Converge installed K3s (3 servers, 1 agent) with the token from the vault file and ran
playbooks/rotate_credentials.yml. Checked here: the vault (new token current, old one kept), every node's
token file, servers restarted one at a time then the agent, every node back with a fresh Ready heartbeat,
the old token refused for a join (401), the admin kubeconfig unchanged and working, no token in the -vvv
log; last, a run stopped between apply and promote and the run that completes it.
"""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret
from lab.k3s_hosts import AGENTS, INVENTORY, RUNNER, SERVERS, name_of, node_host, service_show
from lab.playbook import REPO, PlaybookRun, assert_no_secrets, run_playbook

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
testinfra_hosts = SERVERS + AGENTS

VAULT = EPHEMERAL / "vault.yml"
TOKEN_FILE = "/etc/rancher/k3s/cluster-token"  # noqa: S105 - a path
SERVER_TOKEN = "/var/lib/rancher/k3s/server/token"  # noqa: S105 - a path
BEFORE = "/var/tmp/molecule-before-rotation.txt"  # noqa: S108 - on the lab hosts


def read_vault() -> dict[str, Any]:
    secret = VaultSecret((EPHEMERAL / "vault-pass").read_bytes().strip())
    data = yaml.safe_load(VaultLib([("default", secret)]).decrypt(VAULT.read_bytes()))
    assert isinstance(data, dict)
    return data


def state() -> dict[str, Any]:
    return dict(read_vault()["vault_credentials_state"]["k3s_token"])


def service(name: str) -> dict[str, str]:
    """MainPID, when the last stop began and when the last start began/ended (shared kernel: one clock)."""
    return service_show(
        name,
        "MainPID",
        "ActiveExitTimestampMonotonic",
        "InactiveExitTimestampMonotonic",
        "ActiveEnterTimestampMonotonic",
        "InactiveExitTimestamp",
    )


def services() -> dict[str, dict[str, str]]:
    return {name: service(name) for name in SERVERS + AGENTS}


def assert_restarted_in_order(times: dict[str, dict[str, str]]) -> None:
    """Each server stopped only once the one before it was ready again; the agents after every server."""
    order = [*SERVERS, *AGENTS]
    for earlier, later in itertools.pairwise(order):
        ready = int(times[earlier]["ActiveEnterTimestampMonotonic"])
        if later in AGENTS and earlier in AGENTS:
            ready = int(times[SERVERS[-1]]["ActiveEnterTimestampMonotonic"])
        assert int(times[later]["ActiveExitTimestampMonotonic"]) >= ready, f"{later} stopped before {earlier} was up"


def core_api() -> Any:
    client = kubernetes.config.new_client_from_config(str(EPHEMERAL / "kubeconfig"), context="k3s-token")
    return kubernetes.client.CoreV1Api(client)


def assert_every_node_rejoined(times: dict[str, dict[str, str]]) -> None:
    """Ready, with a heartbeat posted after the node's service last started (the old status does not count)."""
    nodes = {n.metadata.name: n for n in core_api().list_node().items}  # the kubeconfig fetched before rotating
    assert sorted(nodes) == sorted(SERVERS + AGENTS)
    for name, node in nodes.items():
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        started = datetime.strptime(times[name]["InactiveExitTimestamp"], "%a %Y-%m-%d %H:%M:%S %Z").replace(tzinfo=UTC)
        assert ready.status == "True", name
        assert ready.last_heartbeat_time >= started, f"{name}: no heartbeat since its restart"


def join_with(token: str, name: str) -> str:
    """Start a throwaway agent on the agent host with ``token`` for a few seconds; its log."""
    first = RUNNER.get_variables(SERVERS[0])["ansible_host"]
    result = node_host(AGENTS[0]).run(
        f"K3S_TOKEN={token} timeout 8 /usr/local/bin/k3s agent --server https://{first}:6443 "
        f"--node-name {name} --config /nonexistent.yaml"
    )
    return str(result.stderr)


def rotate(**extra: Any) -> PlaybookRun:
    return run_playbook(
        REPO / "playbooks" / "rotate_credentials.yml",
        inventory=Path(INVENTORY).parent,
        extra_vars={"only": "k3s_token", **extra},
        env={"ANSIBLE_VAULT_PASSWORD_FILE": str(SCENARIO / "vault-pass.sh")},
    )


def task_status(output: str, name: str) -> str:
    """How the task ``name`` ended in a run's output: ok, changed, skipping or fatal."""
    after = output.split(f" : {name}]", 1)[1]
    return next(line.split(":", 1)[0] for line in after.splitlines() if line.startswith(RESULTS))


RESULTS = ("ok:", "changed:", "skipping:", "fatal:")


@pytest.fixture(scope="module")
def tokens() -> tuple[str, str]:
    """(old, new): the token K3s was installed with and the one the rotation made current."""
    data = read_vault()
    return data["vault_credentials_state"]["k3s_token"]["previous"], data["vault_k3s_token"]


# ------------------------------------------------------------------------------ the vault


def test_vault_has_the_new_token_and_keeps_the_old_one(tokens: tuple[str, str]) -> None:
    old, new = tokens
    assert VAULT.read_bytes().startswith(b"$ANSIBLE_VAULT;") and VAULT.stat().st_mode & 0o777 == 0o600
    assert len(new) == 64 and all(c in "0123456789abcdef" for c in new)
    assert len(old) == 64 and old != new
    assert "pending" not in state() and state()["rotated_at"]


def test_the_k3s_role_stored_the_generated_first_token(tokens: tuple[str, str]) -> None:
    # prepare leaves no vault file: the first server generated the token and the role kept it there
    log = (EPHEMERAL / "ansible-vvv.log").read_text(encoding="utf-8", errors="replace")
    results = log.split(" : Store the generated join token in the vault file]", 1)[1].split("TASK [", 1)[0]
    assert "changed: [" in results


# ------------------------------------------------------------------------------ on every node


def test_token_file_has_the_new_token_privately(host: Any, tokens: tuple[str, str]) -> None:
    token_file = host.file(TOKEN_FILE)
    assert (token_file.user, token_file.mode) == ("root", 0o600)
    assert token_file.content_string == tokens[1]  # exactly as the k3s role writes it: no newline


def test_servers_have_the_new_server_token(host: Any, tokens: tuple[str, str]) -> None:
    if name_of(host) not in SERVERS:
        pytest.skip("servers only")
    server_token = host.file(SERVER_TOKEN)
    assert server_token.mode == 0o600
    assert server_token.content_string.strip().endswith(f"::server:{tokens[1]}")


def test_the_rotation_restarted_every_node(host: Any) -> None:
    before = dict(line.split("=", 1) for line in host.file(BEFORE).content_string.splitlines())
    assert before["MainPID"] != "0"
    assert service(name_of(host))["MainPID"] not in ("0", before["MainPID"])


def test_admin_kubeconfig_unchanged_by_the_rotation(host: Any, tokens: tuple[str, str]) -> None:
    if name_of(host) not in SERVERS:
        pytest.skip("servers only")
    before = dict(line.split("=", 1) for line in host.file(BEFORE).content_string.splitlines())
    kubeconfig = host.file("/etc/rancher/k3s/k3s.yaml")
    assert kubeconfig.sha256sum == before["kubeconfig"]
    assert not any(t in kubeconfig.content_string for t in tokens)


# ------------------------------------------------------------------------------ the cluster


def test_servers_restarted_one_at_a_time_then_the_agent() -> None:
    assert_restarted_in_order(services())


def test_every_node_rejoined_with_the_new_token() -> None:
    assert_every_node_rejoined(services())
    log = node_host(AGENTS[0]).check_output("journalctl -u k3s-agent -o cat --no-pager")
    assert f"Node {AGENTS[0]} is Ready again" in log


def test_the_old_token_is_refused_and_the_new_one_accepted_for_a_join(tokens: tuple[str, str]) -> None:
    old, new = tokens
    assert "401 Unauthorized" in join_with(old, "intruder")
    assert "Successfully registered node probe" in join_with(new, "probe")
    core = core_api()
    names = [n.metadata.name for n in core.list_node().items]
    assert "intruder" not in names and "probe" in names
    core.delete_node("probe")
    refused = node_host(SERVERS[0]).run(f"K3S_TOKEN={old} /usr/local/bin/k3s token rotate --new-token {'0' * 64}")
    assert refused.rc == 1 and "401 Unauthorized" in refused.stderr


def test_converge_vvv_log_never_shows_a_token(tokens: tuple[str, str]) -> None:
    log = (EPHEMERAL / "ansible-vvv.log").read_text(encoding="utf-8", errors="replace")
    assert "ESTABLISH SSH CONNECTION" in log  # really the -vvv output
    assert "Rotate the server token (k3s token rotate on the first server)" in log
    assert_no_secrets(log, list(tokens))


# Last: rotates again, stopped between apply and promote, then completed by the next run.
def test_a_run_stopped_after_apply_is_completed_by_the_next(tokens: tuple[str, str]) -> None:
    old, current = tokens
    before = services()
    stopped = rotate(credentials_fault_after="apply")
    assert stopped.rc != 0, stopped.output[-4000:]
    pending = state()["pending"]
    assert state()["phase"] == "applied" and pending not in (old, current)
    first = node_host(SERVERS[0])
    assert first.file(SERVER_TOKEN).content_string.strip().endswith(f"::server:{pending}")
    assert all(node_host(n).file(TOKEN_FILE).content_string == pending for n in SERVERS + AGENTS)
    assert {n: s["MainPID"] for n, s in services().items()} == {n: s["MainPID"] for n, s in before.items()}

    resumed = rotate()
    assert resumed.rc == 0, resumed.output[-4000:]
    assert task_status(resumed.output, "Rotate the server token (k3s token rotate on the first server)") == "skipping"
    assert read_vault()["vault_k3s_token"] == pending and state()["previous"] == current
    after = services()
    assert all(after[n]["MainPID"] != before[n]["MainPID"] for n in after)
    assert_restarted_in_order(after)
    assert_every_node_rejoined(after)
    assert "401 Unauthorized" in join_with(current, "intruder-2")
    for run in (stopped, resumed):
        assert_no_secrets(run.output, [old, current, pending])

    # site.yml's K3s plays afterwards (token from the vault): nothing to change, nothing restarted
    again = run_playbook(
        SCENARIO / "converge.yml",
        inventory=Path(INVENTORY).parent,
        verbosity=1,
        env={"ANSIBLE_VAULT_PASSWORD_FILE": str(SCENARIO / "vault-pass.sh")},
    )
    assert again.rc == 0, again.output[-4000:]
    assert not again.changed_tasks(), [(t.host, t.task) for t in again.changed_tasks()]
