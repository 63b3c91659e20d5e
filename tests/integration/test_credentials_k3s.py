"""The k3s_token kind through ansible-playbook -vvv, against stand-ins for k3s and systemctl.

A quick check without the lab: three inventory hosts (two servers, one agent, all local
connections whose interpreter wrapper names the host) and fake ``k3s`` / ``systemctl``
executables that keep the cluster token, refuse a wrong old token, and log every rotate, restart
and readiness probe. What it proves: the old token reaches ``k3s token rotate`` through
``K3S_TOKEN`` (never argv) and the new one through ``--new-token`` (K3s has no environment
variable for it), the order (rotate on the first server, token files, servers restarted one at a
time, then agents, then every node Ready), and a resume after a kill between apply and promote
that does not rotate twice. The same kind against the lab's K3s stand-in on real hosts (joins
refused with the old token, agents rejoining) is molecule/k3s_token.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from credentials_lab import make_vault, rotate
from lab.playbook import assert_no_secrets

FAKE_K3S = """#!/usr/bin/env python3
import json, os, sys, time
state, log = os.environ["FAKE_STATE"], os.environ["FAKE_LOG"]
host = os.environ.get("FAKE_HOST", "?")
args = sys.argv[1:]
def note(line):
    with open(log, "a") as fh:
        fh.write(line + "\\n")
if args[:2] == ["token", "rotate"]:
    old = os.environ.get("K3S_TOKEN")
    new = args[args.index("--new-token") + 1] if "--new-token" in args else ""
    data_dir = args[args.index("--data-dir") + 1]
    with open(state) as fh:
        current = fh.read().strip()
    if old != current:
        note(f"rotate-refused {host}")
        sys.exit("https://127.0.0.1:6443/v1-k3s/token: 401 Unauthorized")
    if not new:
        sys.exit("no --new-token: K3s would pick a random token")
    with open(state, "w") as fh:
        fh.write(new)
    with open(os.path.join(data_dir, "server", "token"), "w") as fh:
        fh.write(f"K10cafe::server:{new}\\n")
    note(f"rotate {host} data-dir={data_dir} old-token-in-argv={old in args}")
    sys.exit(0)
if args[:1] == ["kubectl"] and "--raw" in args:
    name = args[args.index("--raw") + 1].rsplit("/", 1)[-1]
    note(f"ready {name}")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ready = {"type": "Ready", "status": "True", "lastHeartbeatTime": now}
    print(json.dumps({"kind": "Node", "metadata": {"name": name}, "status": {"conditions": [ready]}}))
    sys.exit(0)
sys.exit(f"fake k3s: unsupported {args}")
"""

FAKE_SYSTEMCTL = """#!/bin/sh
case "$1" in
  show) printf 'Id=%s.service\\nLoadState=loaded\\nActiveState=active\\n' "$2"
        printf 'SubState=running\\nUnitFileState=enabled\\n' ;;
  restart) echo "restart $2 $FAKE_HOST" >> "$FAKE_LOG" ;;
  is-enabled) echo enabled ;;
esac
exit 0
"""


def test_k3s_token_rotation_order_and_resume(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "k3s").write_text(FAKE_K3S, encoding="utf-8")
    (fake_bin / "systemctl").write_text(FAKE_SYSTEMCTL, encoding="utf-8")
    state, log, token_file = tmp_path / "cluster-token-state", tmp_path / "calls.log", tmp_path / "cluster-token"
    old = os.urandom(16).hex()
    state.write_text(old, encoding="utf-8")
    token_file.write_text(old, encoding="utf-8")
    data_dir = tmp_path / "data"
    (data_dir / "server").mkdir(parents=True)
    (data_dir / "server" / "token").write_text(f"K10cafe::server:{old}\n", encoding="utf-8")
    hosts = {}
    for host in ("srv1", "srv2", "agt1"):
        wrapper = tmp_path / f"python-{host}"  # the delegated host's interpreter names it (sudo resets env)
        wrapper.write_text(
            f"#!/bin/sh\nexport FAKE_HOST={host} FAKE_STATE={state} FAKE_LOG={log} PATH={fake_bin}:$PATH\n"
            'exec /usr/bin/python3 "$@"\n',
            encoding="utf-8",
        )
        hosts[host] = {"ansible_connection": "local", "ansible_python_interpreter": str(wrapper)}
    for path in fake_bin.iterdir():
        path.chmod(0o755)
    for host in hosts:
        (tmp_path / f"python-{host}").chmod(0o755)
    inventory = tmp_path / "inventory.json"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {
                        "localhost": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
                    },
                    "children": {
                        "k3s_server": {"hosts": {h: hosts[h] for h in ("srv1", "srv2")}},
                        "k3s_agent": {"hosts": {"agt1": hosts["agt1"]}},
                    },
                }
            }
        ),
        encoding="utf-8",
    )
    vault = make_vault(tmp_path / "vault")
    vault.write({"vault_k3s_token": old})
    registry = [
        {
            "name": "k3s_token",
            "kind": "k3s_token",
            "token_file": str(token_file),
            "charset": "hex",
            "length": 64,
            "data_dir": str(data_dir),
        }
    ]
    common = {"credentials_k3s_bin": str(fake_bin / "k3s"), "credentials_k3s_ready_timeout": 5}

    # killed after apply: k3s has the new token, the token files too, nothing restarted yet
    run = rotate(vault, registry, inventory=inventory, credentials_fault_after="apply", **common)
    assert run.rc == 2, run.output[-4000:]
    pending = vault.state("k3s_token")["pending"]
    assert vault.state("k3s_token")["phase"] == "applied" and len(pending) == 64
    # the token file exactly as the k3s role writes it (no newline), so the role finds nothing to change
    assert state.read_text(encoding="utf-8") == pending == token_file.read_text(encoding="utf-8")
    assert (token_file.stat().st_mode & 0o777) == 0o600
    assert log.read_text(encoding="utf-8").splitlines() == [f"rotate srv1 data-dir={data_dir} old-token-in-argv=False"]
    vault.assert_sealed()
    assert_no_secrets(run.output, [old, pending])

    # the next run finishes: no second rotate (k3s would refuse the old token), then the restarts in order
    run = rotate(vault, registry, inventory=inventory, **common)
    assert run.rc == 0, run.output[-4000:]
    assert "AnsiballZ" not in run.output  # pipelined, also through become: values never in a temp file
    assert log.read_text(encoding="utf-8").splitlines()[1:] == [
        "restart k3s srv1",
        "restart k3s srv2",
        "restart k3s-agent agt1",
        "ready srv1",
        "ready srv2",
        "ready agt1",
    ]
    data = vault.read()
    assert data["vault_k3s_token"] == pending and data["vault_credentials_state"]["k3s_token"]["previous"] == old
    vault.assert_sealed()
    assert_no_secrets(run.output, [old, pending])
