"""Cluster file model of the inventory plugin: ranges, addresses, checks (no Ansible needed)."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

import pytest

from ansible_collections.homelab.pi_cluster.plugins.plugin_utils._cluster_spec import (
    ClusterSpecError,
    assign_addresses,
    build_cluster,
    expand_names,
)


def reference() -> dict[str, Any]:
    return {
        "cluster_name": "pi-cluster",
        "domain": "home.example.com",
        "ssh_user": "pi",
        "network": "192.168.1.0/24",
        "node_groups": {
            "server": {"names": "pi-master", "ip_start": "192.168.1.240", "roles": ["k3s_server"]},
            "workers": {"names": "pi-worker-[01:07]", "ip_start": "192.168.1.241", "roles": ["k3s_agent"]},
            "dns": {"names": "pihole-[1:2]", "ips": ["192.168.1.25", "192.168.1.26"], "roles": ["pihole"]},
            "storage": {"names": "synology", "ips": ["192.168.1.10"], "roles": ["nas"], "ssh_user": "admin"},
        },
    }


def with_groups(**node_groups: Any) -> dict[str, Any]:
    config = reference()
    config["node_groups"] = node_groups
    return config


def error_of(config: dict[str, Any]) -> ClusterSpecError:
    with pytest.raises(ClusterSpecError) as info:
        build_cluster(config)
    return info.value


# --- ranges -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("pi-master", ["pi-master"]),
        ("pi-worker-[01:03]", ["pi-worker-01", "pi-worker-02", "pi-worker-03"]),
        ("node[8:11]", ["node8", "node9", "node10", "node11"]),
        ("node[08:11]", ["node08", "node09", "node10", "node11"]),
        ("pi-[a:c]", ["pi-a", "pi-b", "pi-c"]),
        ("pi-[A:B]", ["pi-A", "pi-B"]),
        ("n[01:10:3]", ["n01", "n04", "n07", "n10"]),
        ("n[a:e:2]", ["na", "nc", "ne"]),
        ("rack[1:2]-node[1:2]", ["rack1-node1", "rack1-node2", "rack2-node1", "rack2-node2"]),
        ("[1:2].pi.lan", ["1.pi.lan", "2.pi.lan"]),
        ("n[5:5]", ["n5"]),
    ],
)
def test_expand_names(pattern: str, expected: list[str]) -> None:
    assert expand_names(pattern) == expected


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("pi-[01:07", "unbalanced"),
        ("pi-01:07]", "unbalanced"),
        ("pi-[1-7]", "use [start:end]"),
        ("pi-[:7]", "use [start:end]"),
        ("pi-[1:]", "use [start:end]"),
        ("pi-[1:2:3:4]", "use [start:end]"),
        ("pi-[7:1]", "start is after end"),
        ("pi-[c:a]", "start is after end"),
        ("pi-[01:7]", "same width"),
        ("pi-[01:100]", "same width"),
        ("pi-[1:5:0]", "step"),
        ("pi-[1:5:x]", "step"),
        ("pi-[a:5]", "two numbers"),
        ("pi-[a:C]", "two numbers"),
        ("pi-[aa:ab]", "two numbers"),
        ("pi worker", "not a valid host name"),
        ("pi_worker-[1:2]", "not a valid host name"),
        ("-pi", "not a valid host name"),
        ("", "expected a host name"),
    ],
)
def test_malformed_ranges_name_the_pattern(pattern: str, fragment: str) -> None:
    with pytest.raises(ClusterSpecError) as info:
        expand_names(pattern, "node_groups.workers.names")
    assert info.value.key == "node_groups.workers.names"
    assert fragment in info.value.message


# --- addresses ----------------------------------------------------------------------


def test_ip_start_counts_up() -> None:
    assert assign_addresses(["a", "b", "c"], "k", ip_start="192.168.1.241") == [
        "192.168.1.241",
        "192.168.1.242",
        "192.168.1.243",
    ]


def test_ip_start_ipv6() -> None:
    assert assign_addresses(["a", "b"], "k", ip_start="fd00::fe") == ["fd00::fe", "fd00::ff"]


def test_explicit_ips_keep_order() -> None:
    assert assign_addresses(["a", "b"], "k", ips=["10.0.0.9", "10.0.0.3"]) == ["10.0.0.9", "10.0.0.3"]


def test_no_addresses() -> None:
    assert assign_addresses(["a", "b"], "k") == [None, None]


@pytest.mark.parametrize(
    ("kwargs", "key", "fragment"),
    [
        ({"ip_start": "10.0.0.1", "ips": ["10.0.0.1"]}, "k", "mutually exclusive"),
        ({"ip_start": "10.0.0.300"}, "k.ip_start", "not an IPv4 or IPv6 address"),
        ({"ips": ["10.0.0.1", "nas.lan", "10.0.0.3"]}, "k.ips[1]", "not an IPv4 or IPv6 address"),
        ({"ips": "10.0.0.1"}, "k.ips", "expected a list"),
        ({"ips": ["10.0.0.1", "10.0.0.2"]}, "k.ips", "more names than addresses: 3 names but 2 addresses"),
        ({"ips": ["10.0.0.1"] * 4}, "k.ips", "more addresses than names"),
        ({"ip_start": "10.0.0.253"}, "k.ip_start", "more names than addresses"),
        ({"ip_start": "255.255.255.254"}, "k.ip_start", "run past the last address"),
    ],
)
def test_address_errors(kwargs: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(ClusterSpecError) as info:
        assign_addresses(["a", "b", "c"], "k", **kwargs)
    assert info.value.key == key
    assert fragment in info.value.message


def test_network_bounds_the_range() -> None:
    network = ipaddress.ip_network("10.0.0.0/29")  # usable .1 - .6
    assert assign_addresses(["a", "b"], "k", ip_start="10.0.0.5", network=network) == ["10.0.0.5", "10.0.0.6"]
    with pytest.raises(ClusterSpecError, match=r"only 2 usable addresses left in network 10\.0\.0\.0/29"):
        assign_addresses(["a", "b", "c"], "k", ip_start="10.0.0.5", network=network)
    with pytest.raises(ClusterSpecError, match=r"k.ips\[1\]: 10.0.1.1 is not a usable host address"):
        assign_addresses(["a", "b"], "k", ips=["10.0.0.1", "10.0.1.1"], network=network)


def test_wider_network_allows_crossing_dot_255() -> None:
    config = with_groups(s={"names": "n[1:3]", "ip_start": "10.0.0.254", "roles": ["k3s_server"]})
    config["network"] = "10.0.0.0/16"
    hosts = build_cluster(config).hosts
    assert [h.address for h in hosts] == ["10.0.0.254", "10.0.0.255", "10.0.1.0"]


# --- the whole cluster --------------------------------------------------------------------


def test_reference_cluster_hosts_and_groups() -> None:
    spec = build_cluster(reference())
    assert [(h.name, h.address, h.user) for h in spec.hosts][:3] == [
        ("pi-master", "192.168.1.240", "pi"),
        ("pi-worker-01", "192.168.1.241", "pi"),
        ("pi-worker-02", "192.168.1.242", "pi"),
    ]
    assert spec.groups["k3s_server"] == ["pi-master"]
    assert spec.groups["k3s_agent"] == [f"pi-worker-{n:02d}" for n in range(1, 8)]
    assert spec.groups["pihole"] == ["pihole-1", "pihole-2"]
    assert spec.groups["nas"] == ["synology"]
    assert spec.groups["etcd"] == []  # a single server keeps K3s's SQLite datastore
    assert spec.groups["k3s_cluster"] == []  # filled through its children
    synology = next(h for h in spec.hosts if h.name == "synology")
    assert (synology.user, synology.address, synology.roles) == ("admin", "192.168.1.10", ("nas",))
    assert spec.embedded_etcd is False
    assert spec.warnings == []


def test_group_and_node_vars_merge_node_wins() -> None:
    config = reference()
    config["node_groups"]["workers"]["vars"] = {"disk": "/dev/sda", "zone": "a"}
    config["node_groups"]["workers"]["hosts"] = {"pi-worker-07": {"disk": "/dev/nvme0n1"}}
    hosts = {h.name: h for h in build_cluster(config).hosts}
    assert hosts["pi-worker-01"].vars == {"disk": "/dev/sda", "zone": "a"}
    assert hosts["pi-worker-07"].vars == {"disk": "/dev/nvme0n1", "zone": "a"}


def test_list_of_patterns() -> None:
    config = with_groups(
        s={"names": "srv", "roles": ["k3s_server"]},
        w={"names": ["w[1:2]", "w[10:14:2]"], "ip_start": "192.168.1.20", "roles": ["k3s_agent"]},
    )
    spec = build_cluster(config)
    assert spec.groups["k3s_agent"] == ["w1", "w2", "w10", "w12", "w14"]
    assert [h.address for h in spec.hosts if h.name.startswith("w")][-1] == "192.168.1.24"


@pytest.mark.parametrize(("servers", "etcd", "warned"), [(1, None, False), (3, None, False), (2, None, True)])
def test_embedded_etcd_is_automatic_for_ha(servers: int, etcd: bool | None, warned: bool) -> None:
    config = with_groups(s={"names": f"srv-[1:{servers}]", "ip_start": "192.168.1.10", "roles": ["k3s_server"]})
    spec = build_cluster(config)
    assert spec.embedded_etcd is (servers > 1)
    assert spec.groups["etcd"] == (spec.groups["k3s_server"] if servers > 1 else [])
    assert bool(spec.warnings) is warned


def test_even_embedded_etcd_servers_warn_about_quorum() -> None:
    config = with_groups(s={"names": "srv-[1:4]", "ip_start": "192.168.1.10", "roles": ["k3s_server"]})
    spec = build_cluster(config)
    assert len(spec.warnings) == 1
    assert "4 servers run embedded etcd" in spec.warnings[0]
    assert "odd number" in spec.warnings[0]
    assert spec.warnings[0].startswith("embedded_etcd:")


def test_embedded_etcd_off_for_external_datastore() -> None:
    config = with_groups(s={"names": "srv-[1:2]", "ip_start": "192.168.1.10", "roles": ["k3s_server"]})
    config["embedded_etcd"] = False
    spec = build_cluster(config)
    assert spec.groups["etcd"] == []
    assert spec.warnings == []


def test_single_server_can_opt_into_embedded_etcd() -> None:
    config = reference()
    config["embedded_etcd"] = True
    assert build_cluster(config).groups["etcd"] == ["pi-master"]


def mutate(path: str, value: Any) -> dict[str, Any]:
    """The reference config with one value replaced (``a.b.c`` path; value ``...`` deletes)."""
    config = copy.deepcopy(reference())
    *parents, last = path.split(".")
    node = config
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return config


@pytest.mark.parametrize(
    ("config", "key", "fragment"),
    [
        # overlapping ranges / duplicate host names
        (
            mutate("node_groups.dns.names", "pi-worker-[06:07]"),
            "node_groups.dns.names",
            "host 'pi-worker-06' is already defined by node_groups.workers.names (overlapping ranges)",
        ),
        (
            mutate("node_groups.workers.names", ["pi-worker-[01:04]", "pi-worker-[04:07]"]),
            "node_groups.workers.names[1]",
            "already defined by node_groups.workers.names[0]",
        ),
        (mutate("node_groups.server.names", "pi-master-[1:2"), "node_groups.server.names", "unbalanced"),
        (mutate("node_groups.storage.names", "nas"), "node_groups.storage.names", "also the name of a group"),
        # addresses
        (
            mutate("node_groups.dns.ips", ["192.168.1.25"]),
            "node_groups.dns.ips",
            "more names than addresses: 2 names but 1 addresses",
        ),
        (
            mutate("node_groups.workers.ip_start", "192.168.1.250"),
            "node_groups.workers.ip_start",
            "more names than addresses: 7 names from 192.168.1.250 but only 5 usable addresses",
        ),
        (
            mutate("node_groups.dns.ips", ["192.168.1.25", "192.168.1.240"]),
            "node_groups.dns",
            "duplicate address 192.168.1.240: given to both pi-master and pihole-2",
        ),
        (
            mutate("node_groups.server.ip_start", "192.168.1.245"),
            "node_groups.workers",
            "duplicate address 192.168.1.245",
        ),
        (mutate("node_groups.storage.ips", ["10.9.9.9"]), "node_groups.storage.ips[0]", "not a usable host address"),
        (
            mutate("node_groups.server.ip_start", "10.9.9.9"),
            "node_groups.server.ip_start",
            "10.9.9.9 is not a usable host address in network 192.168.1.0/24",
        ),
        # roles
        (
            mutate("node_groups.dns.roles", ["pihole", "dns"]),
            "node_groups.dns.roles",
            "unknown role 'dns'; accepted roles: k3s_server, k3s_agent, pihole, nas",
        ),
        (mutate("node_groups.server.roles", ["k3s_server", "etcd"]), "node_groups.server.roles", "not set by hand"),
        (mutate("node_groups.server.roles", ["k3s_server", "k3s_agent"]), "node_groups.server.roles", "exclusive"),
        (mutate("node_groups.server.roles", []), "node_groups.server.roles", "required"),
        (mutate("node_groups.server.roles", ...), "node_groups.server.roles", "required"),
        (mutate("node_groups.server.roles", "k3s_agent"), "node_groups", "no node has the k3s_server role"),
        (mutate("node_groups.workers.names", "Pi-Worker-[1:2]"), "node_groups.workers.names", "must be lowercase"),
        # structure
        (mutate("node_groups.workers.ip-start", "10.0.0.1"), "node_groups.workers.ip-start", "unknown key"),
        (mutate("node_groups.workers.names", ...), "node_groups.workers.names", "required"),
        (mutate("node_groups.workers.names", 7), "node_groups.workers.names", "expected a string or a list"),
        (mutate("node_groups.workers.names", []), "node_groups.workers.names", "no names"),
        (mutate("node_groups.workers.vars", ["a"]), "node_groups.workers.vars", "expected a mapping"),
        (
            mutate("node_groups.workers.hosts", {"pi-worker-08": {"a": 1}}),
            "node_groups.workers.hosts.pi-worker-08",
            "not one of this node group's names",
        ),
        (mutate("node_groups", {}), "node_groups", "at least one node group"),
        (mutate("node_groups", ["a"]), "node_groups", "expected a mapping"),
        (mutate("cluster_name", ""), "cluster_name", "required"),
        (mutate("network", "192.168.1.0/33"), "network", "CIDR"),
    ],
)
def test_errors_name_the_key(config: dict[str, Any], key: str, fragment: str) -> None:
    error = error_of(config)
    assert error.key == key
    assert fragment in error.message
    assert str(error) == f"{key}: {error.message}"


def test_host_numbers_in_the_network() -> None:
    network = ipaddress.ip_network("10.251.78.0/24")
    assert assign_addresses(["a", "b"], "k", ip_start=11, network=network) == ["10.251.78.11", "10.251.78.12"]
    assert assign_addresses(["a", "b"], "k", ips=[20, "10.251.78.5"], network=network) == [
        "10.251.78.20",
        "10.251.78.5",
    ]
    with pytest.raises(ClusterSpecError, match="host number 11 needs 'network'"):
        assign_addresses(["a"], "k", ip_start=11)
    with pytest.raises(ClusterSpecError, match=r"k.ips\[0\]: host number 256 is outside network"):
        assign_addresses(["a"], "k", ips=[256], network=network)
    with pytest.raises(ClusterSpecError, match="more names than addresses"):
        assign_addresses(["a", "b", "c"], "k", ip_start=253, network=network)
