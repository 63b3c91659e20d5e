"""What the K3s molecule scenarios' testinfra checks share: the scenario's lab hosts and how to ask them
about their K3s service. Import it only from a molecule verifier (it reads molecule's inventory)."""

from __future__ import annotations

import os
from typing import Any

import testinfra
import testinfra.utils.ansible_runner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
SERVERS: list[str] = RUNNER.get_hosts("k3s_server")
AGENTS: list[str] = RUNNER.get_hosts("k3s_agent")


def name_of(host: Any) -> str:
    return str(host.backend.get_hostname())


def node_host(name: str) -> Any:
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def unit_of(name: str) -> str:
    return "k3s" if name in SERVERS else "k3s-agent"


def service_show(name: str, *properties: str) -> dict[str, str]:
    """``systemctl show`` of the node's K3s unit: property -> value (monotonic timestamps share one clock:
    the lab hosts share the machine's kernel)."""
    args = " ".join(f"--property={prop}" for prop in properties)
    out = node_host(name).check_output(f"systemctl show {args} {unit_of(name)}")
    return dict(line.split("=", 1) for line in out.splitlines())


def service_times(name: str) -> dict[str, int]:
    """Main PID, start (left inactive) and ready (became active) on the monotonic clock."""
    props = service_show(name, "MainPID", "InactiveExitTimestampMonotonic", "ActiveEnterTimestampMonotonic")
    return {key: int(value) for key, value in props.items()}
