"""The inventory plugin through Ansible's own commands: ``ansible-inventory`` and ``ansible-playbook``.

Static part: the reference and lab cluster files as users run them. Live part: ``live: true``
against the test API server (``kube_api`` fixture) - ready/not-ready/unregistered nodes, an
unmanaged node, an API that is down, request counts with and without the inventory cache, and API
strings that must never be templated.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from lab.playbook import run_playbook, write_playbook

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "inventory" / "reference.pi_cluster.yml"
LAB = REPO / "inventory" / "lab.pi_cluster.yml"
LAB_HOSTS = ["pi-master"] + [f"pi-worker-{n:02d}" for n in range(1, 8)]
EVIL = "{{ lookup('pipe', 'id') }}"


def ansible_inventory(source: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    run_env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),  # sets inventory = inventory/lab: -i below replaces it
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".build" / "collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1",  # a broken cluster file must fail the command
        **(env or {}),
    }
    return subprocess.run(
        ["ansible-inventory", "-i", str(source), *args],
        capture_output=True,
        text=True,
        env=run_env,
        timeout=120,
        check=False,
    )


def plain(value: Any) -> Any:
    """Drop the ``{"__ansible_unsafe": ...}`` wrappers ``--list`` puts around untrusted strings."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def inventory_list(source: Path, env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    proc = ansible_inventory(source, "--list", env=env)
    assert proc.returncode == 0, proc.stderr
    return plain(json.loads(proc.stdout)), proc.stderr


def hosts_of(listing: dict[str, Any], group: str) -> list[str]:
    return sorted(listing.get(group, {}).get("hosts", []))


# --- the reference cluster ---------------------------------------------------------------------

REFERENCE_GRAPH = """\
@all:
  |--@ungrouped:
  |--@k3s_cluster:
  |  |--@k3s_server:
  |  |  |--pi-master
  |  |--@k3s_agent:
  |  |  |--pi-worker-01
  |  |  |--pi-worker-02
  |  |  |--pi-worker-03
  |  |  |--pi-worker-04
  |  |  |--pi-worker-05
  |  |  |--pi-worker-06
  |  |  |--pi-worker-07
  |--@pihole:
  |  |--pihole-1
  |  |--pihole-2
  |--@nas:
  |  |--synology
  |--@etcd:
  |  |--pi-master
"""


def test_reference_graph() -> None:
    proc = ansible_inventory(REFERENCE, "--graph")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == REFERENCE_GRAPH
    assert "WARNING" not in proc.stderr


def test_reference_list() -> None:
    listing, _ = inventory_list(REFERENCE)
    hostvars = listing["_meta"]["hostvars"]
    assert sorted(listing["k3s_cluster"]["children"]) == ["k3s_agent", "k3s_server"]
    assert hosts_of(listing, "k3s_server") == ["pi-master"]
    assert hosts_of(listing, "k3s_agent") == [f"pi-worker-{n:02d}" for n in range(1, 8)]
    assert hosts_of(listing, "pihole") == ["pihole-1", "pihole-2"]
    assert hosts_of(listing, "nas") == ["synology"]
    expected = {"pi-master": "192.168.1.240", "pihole-1": "192.168.1.25", "pihole-2": "192.168.1.26"}
    expected |= {f"pi-worker-{n:02d}": f"192.168.1.{240 + n}" for n in range(1, 8)}
    expected["synology"] = "192.168.1.10"
    assert {host: v["ansible_host"] for host, v in hostvars.items()} == expected
    assert {v["ansible_user"] for h, v in hostvars.items() if h != "synology"} == {"pi"}
    assert hostvars["synology"]["ansible_user"] == "admin"
    assert hostvars["pi-worker-03"]["pi_cluster_fqdn"] == "pi-worker-03.home.example.com"


def test_reference_inventory_in_a_playbook(tmp_path: Path) -> None:
    """What roles see: the groups, the cluster variables and inventory/group_vars, with no SSH at all."""
    playbook = write_playbook(
        tmp_path,
        [
            {
                "name": "Show the cluster",
                "ansible.builtin.debug": {
                    "msg": {
                        "agents": "{{ groups['k3s_agent'] | length }}",
                        "cluster": "{{ groups['k3s_cluster'] | length }}",
                        "server": "{{ hostvars[groups['k3s_server'][0]].ansible_host }}",
                        "piholes": "{{ groups['pihole'] | map('extract', hostvars, 'ansible_host') | list }}",
                        "name": "{{ pi_cluster_name }}",
                        "group_vars_loaded": "{{ k3s_version is defined }}",
                    }
                },
            }
        ],
    )
    run = run_playbook(playbook, inventory=REFERENCE, verbosity=1)
    assert run.rc == 0, run.output[-4000:]
    assert run.task("Show the cluster").result["msg"] == {
        "agents": 7,
        "cluster": 8,
        "server": "192.168.1.240",
        "piholes": ["192.168.1.25", "192.168.1.26"],
        "name": "pi-cluster",
        "group_vars_loaded": True,
    }


def test_lab_inventory() -> None:
    listing, _ = inventory_list(LAB)
    hostvars = listing["_meta"]["hostvars"]
    assert hosts_of(listing, "k3s_server") == ["pi-master"]
    assert hosts_of(listing, "k3s_agent") == [f"pi-worker-{n:02d}" for n in range(1, 8)]
    net_file = REPO / ".lab" / "run" / "lab" / "net"
    net = net_file.read_text(encoding="utf-8").strip() if net_file.exists() else "10.251.78"
    assert hostvars["pi-master"]["ansible_host"] == f"{net}.11"  # hostlab: host N is .(10+N)
    assert hostvars["pi-worker-07"]["ansible_host"] == f"{net}.18"
    assert hostvars["pi-worker-07"]["ansible_user"] == "root"
    # the lab hosts share this machine's kernel; the reference group_vars must not turn that back on
    assert all(v["rpi_base_apply_kernel_globals"] is False for v in hostvars.values())
    assert hosts_of(listing, "hostlab_pi") == ["pi-master"] + [f"pi-worker-{n:02d}" for n in range(1, 8)]


# --- errors and warnings through the CLI ------------------------------------------------------


def write_cluster(tmp_path: Path, body: str, name: str = "test.pi_cluster.yml") -> Path:
    path = tmp_path / name
    path.write_text("plugin: homelab.pi_cluster.cluster\ncluster_name: t\n" + textwrap.dedent(body), encoding="utf-8")
    return path


SMALL = """
node_groups:
  server:
    names: pi-master
    ip_start: 10.0.0.10
    roles: [k3s_server]
  workers:
    names: pi-worker-[01:03]
    ip_start: 10.0.0.11
    roles: [k3s_agent]
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (SMALL.replace("pi-worker-[01:03]", "pi-worker-[01:3]"), "node_groups.workers.names: malformed range"),
        (SMALL.replace("pi-master", "pi-worker-02"), "node_groups.workers.names: host 'pi-worker-02' is already"),
        (SMALL.replace("10.0.0.11", "10.0.0.9"), "node_groups.workers: duplicate address 10.0.0.10"),
        (SMALL.replace("[k3s_agent]", "[k3s_agent, gpu]"), "node_groups.workers.roles: unknown role 'gpu'"),
        (SMALL.replace("[k3s_server]", "[k3s_agent]"), "node_groups: no node has the k3s_server role"),
        (
            SMALL.replace("ip_start: 10.0.0.11", "ips: [10.0.0.11, 10.0.0.12]"),
            "node_groups.workers.ips: more names than addresses",
        ),
    ],
)
def test_bad_files_fail_naming_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    path = write_cluster(tmp_path, body)
    proc = ansible_inventory(path, "--list")
    assert proc.returncode != 0
    output = " ".join(proc.stderr.split())  # the CLI wraps long lines
    assert f"{path}: {message}" in output


def test_even_etcd_servers_warn(tmp_path: Path) -> None:
    path = write_cluster(tmp_path, SMALL.replace("names: pi-master", "names: pi-master-[1:2]").replace(".10", ".20"))
    listing, stderr = inventory_list(path)
    assert hosts_of(listing, "etcd") == ["pi-master-1", "pi-master-2"]
    assert "2 servers run embedded etcd" in " ".join(stderr.split())


def test_constructed_through_the_cli(tmp_path: Path) -> None:
    path = write_cluster(
        tmp_path,
        SMALL
        + textwrap.dedent(
            """
        compose:
          node_ip: ansible_host
        groups:
          first_worker: inventory_hostname == 'pi-worker-01'
        keyed_groups:
          - key: pi_cluster_node_group
            prefix: ng
        """
        ),
    )
    listing, _ = inventory_list(path)
    assert listing["_meta"]["hostvars"]["pi-worker-02"]["node_ip"] == "10.0.0.12"
    assert hosts_of(listing, "first_worker") == ["pi-worker-01"]
    assert hosts_of(listing, "ng_workers") == ["pi-worker-01", "pi-worker-02", "pi-worker-03"]


# --- live enrichment against the test API server ------------------------------------------------


def k8s_node(name: str, ready: str = "True", version: str = "v1.31.4+k3s1", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/arch": "arm64", "kubernetes.io/hostname": name, **labels}},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady", "message": "kubelet is ready"}],
            "nodeInfo": {"kubeletVersion": version, "architecture": "arm64", "operatingSystem": "linux"},
            "addresses": [{"type": "InternalIP", "address": "10.0.0.99"}, {"type": "Hostname", "address": name}],
        },
    }


LIVE = (
    SMALL
    + """
live: true
label_groups: [topology.kubernetes.io/zone]
unmanaged_group: true
keyed_groups:
  - key: k3s_live_version | default(omit)
    prefix: version
"""
)


@pytest.fixture
def cluster_nodes(kube_api: Any) -> Any:
    server = kube_api.require_server()
    server.create(k8s_node("pi-master", **{"topology.kubernetes.io/zone": "rack1"}))
    server.create(k8s_node("pi-worker-01", **{"topology.kubernetes.io/zone": "rack1"}))
    server.create(k8s_node("pi-worker-02", ready="False"))
    server.create(k8s_node("stray-pi", version="v1.30.0+k3s1"))  # in the cluster, not in the file
    # pi-worker-03 never registered
    server.clear_requests()
    return server


def test_live_ready_not_ready_and_unmanaged(tmp_path: Path, kube_api: Any, cluster_nodes: Any) -> None:
    listing, stderr = inventory_list(write_cluster(tmp_path, LIVE), env=kube_api.env)
    hostvars = listing["_meta"]["hostvars"]
    assert hosts_of(listing, "k3s_ready") == ["pi-master", "pi-worker-01", "stray-pi"]
    assert hosts_of(listing, "k3s_not_ready") == ["pi-worker-02", "pi-worker-03"]
    assert hosts_of(listing, "k3s_unmanaged") == ["stray-pi"]
    assert "stray-pi" not in hosts_of(listing, "k3s_agent")
    assert hostvars["pi-master"]["k3s_live_version"] == "v1.31.4+k3s1"
    assert hostvars["pi-master"]["k3s_live_arch"] == "arm64"
    assert hostvars["pi-master"]["k3s_live_labels"]["topology.kubernetes.io/zone"] == "rack1"
    assert hostvars["pi-worker-02"]["k3s_live_ready"] is False
    assert hostvars["pi-worker-03"]["k3s_live_registered"] is False
    assert hostvars["stray-pi"]["ansible_host"] == "10.0.0.99"
    assert hosts_of(listing, "k3s_label_topology_kubernetes_io_zone_rack1") == ["pi-master", "pi-worker-01"]
    assert hosts_of(listing, "version_v1_30_0_k3s1") == ["stray-pi"]
    assert "not described in this file (unmanaged): stray-pi" in " ".join(stderr.split())
    # exactly one request: the Node LIST, and no discovery at all
    assert cluster_nodes.count(method="GET", path_prefix="/api/v1/nodes") == 1
    assert cluster_nodes.count(exclude_discovery=False) == 1


def test_live_cache_hit_sends_no_request(tmp_path: Path, kube_api: Any, cluster_nodes: Any) -> None:
    cache_dir = tmp_path / "inventory-cache"
    path = write_cluster(
        tmp_path,
        LIVE + f"cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: {cache_dir}\n",
    )
    first, _ = inventory_list(path, env=kube_api.env)
    assert cluster_nodes.count(exclude_discovery=False) == 1
    assert len(list(cache_dir.iterdir())) == 1

    cluster_nodes.create(k8s_node("pi-worker-03"))  # joins now; the cached view does not know yet
    second, _ = inventory_list(path, env=kube_api.env)
    assert cluster_nodes.count(exclude_discovery=False) == 1  # cache hit: zero requests
    assert hosts_of(second, "k3s_ready") == hosts_of(first, "k3s_ready")

    proc = ansible_inventory(path, "--list", "--flush-cache", env=kube_api.env)
    assert proc.returncode == 0, proc.stderr
    assert cluster_nodes.count(exclude_discovery=False) == 2
    assert "pi-worker-03" in hosts_of(plain(json.loads(proc.stdout)), "k3s_ready")
    third, _ = inventory_list(path, env=kube_api.env)  # the refresh was written back
    assert cluster_nodes.count(exclude_discovery=False) == 2
    assert "pi-worker-03" in hosts_of(third, "k3s_ready")


def test_live_api_down_gives_the_static_inventory(tmp_path: Path, kube_api: Any, cluster_nodes: Any) -> None:
    cluster_nodes.faults.down(True)
    path = write_cluster(tmp_path, LIVE + "request_timeout: 3\napi_retries: 1\n")
    listing, stderr = inventory_list(path, env=kube_api.env)
    assert hosts_of(listing, "k3s_agent") == ["pi-worker-01", "pi-worker-02", "pi-worker-03"]
    assert hosts_of(listing, "k3s_ready") == hosts_of(listing, "k3s_not_ready") == []
    assert "k3s_live_version" not in listing["_meta"]["hostvars"]["pi-master"]
    assert "live data not available, using the static inventory only" in " ".join(stderr.split())


def test_live_api_error_status_gives_the_static_inventory(tmp_path: Path, kube_api: Any, cluster_nodes: Any) -> None:
    cluster_nodes.faults.fail_next(5, status=503)
    path = write_cluster(tmp_path, LIVE + "api_retries: 1\n")
    listing, stderr = inventory_list(path, env=kube_api.env)
    assert hosts_of(listing, "k3s_ready") == []
    assert cluster_nodes.count(method="GET", path_prefix="/api/v1/nodes") == 2  # first try + one retry
    assert "HTTP 503" in stderr


def test_live_strings_are_not_templated_in_a_playbook(tmp_path: Path, kube_api: Any) -> None:
    """A node reports its own kubeletVersion: a compromised node could put a template there.

    (Label values cannot carry one: the API server rejects them, as the test server does.)
    """
    server = kube_api.require_server()
    server.create(k8s_node("pi-master", version=EVIL))
    path = write_cluster(tmp_path, LIVE + "compose:\n  version_copy: k3s_live_version\n")
    playbook = write_playbook(
        tmp_path,
        [
            {
                "name": "Read API strings",
                "ansible.builtin.debug": {
                    "msg": "{{ hostvars['pi-master'].k3s_live_version }}|{{ hostvars['pi-master'].version_copy }}"
                },
            }
        ],
    )
    run = run_playbook(playbook, inventory=path, env=kube_api.env, verbosity=1)
    assert run.rc == 0, run.output[-4000:]
    assert run.task("Read API strings").result["msg"] == f"{EVIL}|{EVIL}"
    assert "uid=" not in run.output


def test_refresh_inventory_in_a_play_fetches_again(tmp_path: Path, kube_api: Any, cluster_nodes: Any) -> None:
    """``meta: refresh_inventory`` bypasses the cache and rewrites it; groups change within the run."""
    path = write_cluster(
        tmp_path,
        LIVE + f"cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: {tmp_path / 'cache'}\n",
    )
    playbook = write_playbook(
        tmp_path,
        [
            {"name": "Ready before", "ansible.builtin.debug": {"msg": "{{ groups['k3s_ready'] | sort }}"}},
            {"name": "Refresh", "ansible.builtin.meta": "refresh_inventory"},
            {"name": "Ready after", "ansible.builtin.debug": {"msg": "{{ groups['k3s_ready'] | sort }}"}},
        ],
    )

    def join_after_the_first_list() -> None:
        """pi-worker-03 registers once the playbook has read the inventory (and before its refresh)."""
        while cluster_nodes.count(method="GET", path_prefix="/api/v1/nodes") < 1:
            time.sleep(0.05)
        cluster_nodes.create(k8s_node("pi-worker-03"))

    joiner = threading.Thread(target=join_after_the_first_list, daemon=True)
    joiner.start()
    run = run_playbook(playbook, inventory=path, env=kube_api.env, verbosity=1)
    joiner.join(timeout=30)
    assert run.rc == 0, run.output[-4000:]
    assert "pi-worker-03" not in run.task("Ready before").result["msg"]
    assert "pi-worker-03" in run.task("Ready after").result["msg"]
    assert cluster_nodes.count(method="GET", path_prefix="/api/v1/nodes") == 2
    again, _ = inventory_list(path, env=kube_api.env)  # the refreshed list was cached
    assert cluster_nodes.count(method="GET", path_prefix="/api/v1/nodes") == 2
    assert "pi-worker-03" in hosts_of(again, "k3s_ready")


# --- the lab file against real lab hosts ---------------------------------------------------------


@pytest.mark.lab
def test_lab_file_reaches_every_lab_host(tmp_path: Path) -> None:
    """Bring up 8 lab hosts under their own lab id and reach each through inventory/lab.pi_cluster.yml."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    hostlab = REPO / "tests" / "lab" / "hostlab"
    env = {**os.environ, "HOSTLAB_ID": "invtest"}
    up = subprocess.run([str(hostlab), "up", "8"], capture_output=True, text=True, env=env, timeout=1800, check=False)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        playbook = write_playbook(
            tmp_path,
            [
                {"name": "Network facts", "ansible.builtin.setup": {"gather_subset": ["!all", "network"]}},
                {
                    "name": "Address and name match the cluster file",
                    "ansible.builtin.assert": {
                        "that": [
                            "ansible_host in ansible_all_ipv4_addresses",
                            "ansible_host.split('.')[-1] | int == host_number[inventory_hostname]",
                        ]
                    },
                },
            ],
            hosts="k3s_cluster",
            play_vars={"host_number": {name: 11 + i for i, name in enumerate(LAB_HOSTS)}},  # hostlab: .(10+N)
        )
        run = run_playbook(playbook, inventory=LAB, env={"HOSTLAB_ID": "invtest"}, verbosity=1)
        assert run.rc == 0, run.output[-4000:]
        reached = {t.host for t in run.tasks if t.task == "Address and name match the cluster file" and not t.failed}
        assert reached == set(LAB_HOSTS)
    finally:
        down = subprocess.run([str(hostlab), "down"], capture_output=True, text=True, env=env, timeout=600, check=False)
        assert down.returncode == 0, down.stderr[-2000:]
