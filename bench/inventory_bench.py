"""Benchmark: the cluster inventory plugin on a 1,000-node cluster file vs. the same hosts as static YAML.

What a user would otherwise write is a static YAML inventory with every host, its ansible_host
and ansible_user, and the same groups. Both are parsed

- by ``ansible-inventory --list`` (what a playbook run pays, process start-up included), and
- in-process (the parse alone: the plugin vs. Ansible's ``yaml`` inventory plugin),

and the script prints the median times and the ratios. Target: the plugin's parse < 1 s.
Not part of the tests (no timing assertions there).

    .venv/bin/python bench/inventory_bench.py [--nodes 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".build" / "collections"
SERVERS = 3
NETWORK = ipaddress.ip_network("10.20.0.0/16")


def cluster_file(nodes: int) -> str:
    agents = nodes - SERVERS
    return f"""plugin: homelab.pi_cluster.cluster
cluster_name: bench
domain: bench.home.arpa
network: {NETWORK}
ssh_user: pi
node_groups:
  servers:
    names: pi-master-[1:{SERVERS}]
    ip_start: 10
    roles: [k3s_server]
  agents:
    names: pi-worker-[0001:{agents:04d}]
    ip_start: 100
    roles: [k3s_agent]
    vars:
      longhorn_disk: /dev/nvme0n1
"""


def static_inventory(nodes: int) -> dict:
    """The same hosts, groups and host variables as the plugin produces, written out by hand."""

    def host(name: str, number: int, group: str) -> tuple[str, dict]:
        hostvars = {
            "ansible_host": str(NETWORK.network_address + number),
            "ansible_user": "pi",
            "pi_cluster_node_group": group,
            "pi_cluster_fqdn": f"{name}.bench.home.arpa",
        }
        if group == "agents":
            hostvars["longhorn_disk"] = "/dev/nvme0n1"
        return name, hostvars

    servers = dict(host(f"pi-master-{i}", 9 + i, "servers") for i in range(1, SERVERS + 1))
    agents = dict(host(f"pi-worker-{i:04d}", 99 + i, "agents") for i in range(1, nodes - SERVERS + 1))
    return {
        "all": {
            "vars": {"pi_cluster_name": "bench", "pi_cluster_domain": "bench.home.arpa"},
            "children": {
                "k3s_cluster": {"children": {"k3s_server": {"hosts": servers}, "k3s_agent": {"hosts": agents}}},
                "etcd": {"hosts": dict.fromkeys(servers)},
                "pihole": {"hosts": {}},
                "nas": {"hosts": {}},
            },
        }
    }


def median_time(func: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cli_list(source: Path) -> Callable[[], object]:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1",
    }

    def run() -> int:
        proc = subprocess.run(
            ["ansible-inventory", "-i", str(source), "--list"], capture_output=True, text=True, env=env, check=False
        )
        if proc.returncode != 0:
            sys.exit(f"ansible-inventory failed on {source}:\n{proc.stderr}")
        return len(json.loads(proc.stdout)["_meta"]["hostvars"])

    return run


def in_process(plugin_name: str, source: Path, expected_hosts: int) -> Callable[[], object]:
    from ansible.inventory.data import InventoryData  # noqa: PLC0415 - after the collection path is known
    from ansible.parsing.dataloader import DataLoader  # noqa: PLC0415
    from ansible.plugins.loader import inventory_loader  # noqa: PLC0415

    loader = DataLoader()

    def run() -> int:
        inventory = InventoryData()
        plugin = inventory_loader.get(plugin_name)
        plugin.parse(inventory, loader, str(source), cache=False)
        if len(inventory.hosts) != expected_hosts:
            sys.exit(f"{plugin_name}: {len(inventory.hosts)} hosts, expected {expected_hosts}")
        return len(inventory.hosts)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    from ansible.plugins.loader import init_plugin_loader  # noqa: PLC0415 - after ANSIBLE_CONFIG is set

    init_plugin_loader([str(COLLECTIONS)])

    with tempfile.TemporaryDirectory(prefix="inventory-bench-") as tmp:
        cluster = Path(tmp) / "bench.pi_cluster.yml"
        cluster.write_text(cluster_file(args.nodes), encoding="utf-8")
        static = Path(tmp) / "static.yml"
        static.write_text(json.dumps(static_inventory(args.nodes), indent=1), encoding="utf-8")  # JSON is YAML
        print(
            f"{args.nodes} nodes: cluster file {cluster.stat().st_size:,} bytes, "
            f"static YAML {static.stat().st_size:,} bytes; median of {args.repeat} runs"
        )

        plugin_cli = median_time(cli_list(cluster), args.repeat)
        static_cli = median_time(cli_list(static), args.repeat)
        plugin_parse = median_time(in_process("homelab.pi_cluster.cluster", cluster, args.nodes), args.repeat)
        static_parse = median_time(in_process("ansible.builtin.yaml", static, args.nodes), args.repeat)

    rows = [
        ("ansible-inventory --list", plugin_cli, static_cli),
        ("parse in-process", plugin_parse, static_parse),
    ]
    print(f"{'':26} {'cluster plugin':>15} {'static YAML':>12} {'ratio':>7}")
    for label, plugin_time, static_time in rows:
        print(f"{label:26} {plugin_time:14.3f}s {static_time:11.3f}s {plugin_time / static_time:6.2f}x")
    verdict = "meets" if plugin_parse < 1.0 else "MISSES"
    print(f"plugin parse of {args.nodes} nodes: {plugin_parse:.3f} s ({verdict} the < 1 s target)")


if __name__ == "__main__":
    main()
