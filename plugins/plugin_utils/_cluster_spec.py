# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cluster file model for the ``homelab.pi_cluster.cluster`` inventory plugin.

Internal to homelab.pi_cluster: names here may change without notice.

Pure logic, no Ansible import: expand node name ranges, assign addresses, check
the whole description and turn it into hosts and groups. Every error names the
key of the cluster file it is about (``node_groups.workers.ips[2]``) so the plugin
can report "<file>: <key>: <what is wrong>".
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any, Optional, Union

ROLES = ("k3s_server", "k3s_agent", "pihole", "nas")
"""Roles a node group may list; each is also the name of the inventory group."""

CLUSTER_GROUP = "k3s_cluster"
ETCD_GROUP = "etcd"
GROUPS = (CLUSTER_GROUP, *ROLES, ETCD_GROUP)
"""Groups the plugin always creates (empty ones too, so ``groups['etcd']`` is always defined)."""

RESERVED_NAMES = frozenset((*GROUPS, "all", "ungrouped", "k3s_ready", "k3s_not_ready", "k3s_unmanaged"))
"""Ansible cannot have a host and a group of the same name."""

NODE_GROUP_KEYS = ("names", "ip_start", "ips", "roles", "ssh_user", "vars", "hosts")

_RANGE = re.compile(r"\[([^\[\]]*)\]")
# RFC 1123 host names with dots allowed, which is also what Kubernetes accepts for
# node names once lowercased.
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class ClusterSpecError(ValueError):
    """The cluster file is wrong at ``key``."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass
class HostSpec:
    name: str
    node_group: str
    roles: tuple[str, ...]
    address: Optional[str]
    user: Optional[str]
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass
class ClusterSpec:
    name: str
    domain: Optional[str]
    embedded_etcd: bool
    hosts: list[HostSpec]
    groups: dict[str, list[str]]
    vars: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


# --- name ranges -----------------------------------------------------------------


def _range_values(body: str, key: str, pattern: str) -> list[str]:
    """The values of one ``[start:end]`` or ``[start:end:step]`` bracket."""
    parts = body.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ClusterSpecError(key, f"malformed range [{body}] in {pattern!r}: use [start:end] or [start:end:step]")
    start, end = parts[0], parts[1]
    step_text = parts[2] if len(parts) == 3 else "1"
    if not step_text.isdigit() or int(step_text) < 1:
        raise ClusterSpecError(key, f"malformed range [{body}] in {pattern!r}: the step must be a whole number >= 1")
    step = int(step_text)

    if start.isdigit() and end.isdigit():
        first, last = int(start), int(end)
        # A leading zero means a fixed width (01..07); both ends must then agree on it.
        width = len(start) if start.startswith("0") and len(start) > 1 else 0
        if width and len(end) != width:
            raise ClusterSpecError(
                key, f"malformed range [{body}] in {pattern!r}: zero-padded bounds must have the same width"
            )
        if first > last:
            raise ClusterSpecError(key, f"malformed range [{body}] in {pattern!r}: start is after end")
        return [str(n).zfill(width) for n in range(first, last + 1, step)]

    for letters in (string.ascii_lowercase, string.ascii_uppercase):
        if len(start) == 1 and len(end) == 1 and start in letters and end in letters:
            if start > end:
                raise ClusterSpecError(key, f"malformed range [{body}] in {pattern!r}: start is after end")
            return list(letters[letters.index(start) : letters.index(end) + 1 : step])
    raise ClusterSpecError(
        key,
        f"malformed range [{body}] in {pattern!r}: "
        "bounds must be two numbers (01:07) or two letters of the same case (a:c)",
    )


def expand_names(pattern: str, key: str = "names") -> list[str]:
    """Expand ``pi-worker-[01:07]``, ``rack[a:b]-node[1:3]`` or ``n[01:10:2]`` into host names.

    Several brackets give every combination, the first bracket varying slowest.
    """
    if not isinstance(pattern, str) or not pattern.strip():
        raise ClusterSpecError(key, f"expected a host name or range pattern, got {pattern!r}")
    pattern = pattern.strip()
    pieces: list[list[str]] = []
    pos = 0
    for match in _RANGE.finditer(pattern):
        pieces.append([pattern[pos : match.start()]])
        pieces.append(_range_values(match.group(1), key, pattern))
        pos = match.end()
    pieces.append([pattern[pos:]])
    names = ["".join(combo) for combo in product(*pieces)]
    for name in names:
        if "[" in name or "]" in name:
            raise ClusterSpecError(key, f"malformed range in {pattern!r}: unbalanced '[' or ']'")
        if not _HOSTNAME.match(name):
            raise ClusterSpecError(
                key, f"{name!r} (from {pattern!r}) is not a valid host name: letters, digits, '-' and '.' only"
            )
    return names


# --- addresses ---------------------------------------------------------------------


def _parse_ip(value: Any, key: str, network: Optional[Network] = None) -> IPAddress:
    """An address, or a host number inside ``network`` (``11`` in 10.251.78.0/24 is 10.251.78.11)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if network is None:
            raise ClusterSpecError(key, f"host number {value} needs 'network' to be set (or give a full address)")
        if not 0 < value < network.num_addresses:
            raise ClusterSpecError(key, f"host number {value} is outside network {network}")
        return network.network_address + value
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise ClusterSpecError(key, f"{value!r} is not an IPv4 or IPv6 address") from None


def assign_addresses(
    names: Sequence[str],
    key: str,
    ip_start: Any = None,
    ips: Any = None,
    network: Optional[Network] = None,
) -> list[Optional[str]]:
    """One address per name: consecutive from ``ip_start``, or ``ips`` in order, or none at all."""
    if ip_start is not None and ips is not None:
        raise ClusterSpecError(key, "ip_start and ips are mutually exclusive; set one of them")
    if ip_start is not None:
        start = _parse_ip(ip_start, f"{key}.ip_start", network)
        addresses = _address_range(names, f"{key}.ip_start", start, network)
    elif ips is not None:
        addresses = _address_list(names, f"{key}.ips", ips, network)
    else:
        return [None] * len(names)
    return [str(a) for a in addresses]


def _address_range(names: Sequence[str], key: str, start: IPAddress, network: Optional[Network]) -> list[IPAddress]:
    try:
        addresses = [start + offset for offset in range(len(names))]
    except ipaddress.AddressValueError:
        raise ClusterSpecError(key, f"{len(names)} names from {start} run past the last address") from None
    if network is not None:
        if not _usable(start, network):
            raise ClusterSpecError(key, f"{start} is not a usable host address in network {network}")
        room = sum(1 for a in addresses if _usable(a, network))
        if room != len(addresses):
            raise ClusterSpecError(
                key,
                f"more names than addresses: {len(names)} names from {start} but only {room} usable "
                f"addresses left in network {network}",
            )
    elif start.version == 4 and any(int(a) & 0xFF in (0, 255) for a in addresses[1:]):
        # Without a network, assume the common /24: running past .254 is almost always a typo.
        raise ClusterSpecError(
            key,
            f"more names than addresses: {len(names)} names from {start} run past .254 of its /24; "
            "set 'network' if the subnet is larger",
        )
    return addresses


def _address_list(names: Sequence[str], key: str, ips: Any, network: Optional[Network]) -> list[IPAddress]:
    if isinstance(ips, (str, bytes)) or not isinstance(ips, Sequence):
        raise ClusterSpecError(key, f"expected a list of addresses, got {ips!r}")
    addresses = [_parse_ip(value, f"{key}[{i}]", network) for i, value in enumerate(ips)]
    if len(addresses) != len(names):
        problem = "more names than addresses" if len(names) > len(addresses) else "more addresses than names"
        raise ClusterSpecError(key, f"{problem}: {len(names)} names but {len(addresses)} addresses")
    for i, address in enumerate(addresses):
        if network is not None and not _usable(address, network):
            raise ClusterSpecError(f"{key}[{i}]", f"{address} is not a usable host address in {network}")
    return addresses


def _usable(address: IPAddress, network: Network) -> bool:
    if address.version != network.version or address not in network:
        return False
    if network.version == 4 and network.prefixlen < 31:
        return address not in (network.network_address, network.broadcast_address)
    return True


# --- the whole cluster ------------------------------------------------------------


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ClusterSpecError(key, f"expected a mapping, got {type(value).__name__}")
    return value


def _str_list(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ClusterSpecError(key, f"expected a string or a list of strings, got {value!r}")


def build_cluster(config: Mapping[str, Any]) -> ClusterSpec:
    """Check a cluster description (the plugin's options) and return its hosts and groups.

    Accepted keys: ``cluster_name``, ``domain``, ``ssh_user``, ``network``,
    ``embedded_etcd`` (``None`` = automatic: on when there is more than one server),
    ``vars`` and ``node_groups``.
    """
    name = config.get("cluster_name")
    if not isinstance(name, str) or not name.strip():
        raise ClusterSpecError("cluster_name", "required: a name for the cluster")
    network = None
    if config.get("network") is not None:
        try:
            network = ipaddress.ip_network(str(config["network"]), strict=False)
        except ValueError:
            raise ClusterSpecError("network", f"{config['network']!r} is not a network in CIDR notation") from None

    node_groups = _mapping(config.get("node_groups"), "node_groups")
    if not node_groups:
        raise ClusterSpecError("node_groups", "required: at least one node group with names and roles")

    builder = _NodeGroupBuilder(network=network, default_user=config.get("ssh_user"))
    hosts = [host for group_name, group in node_groups.items() for host in builder.build(str(group_name), group)]

    groups: dict[str, list[str]] = {g: [] for g in GROUPS}
    for host in hosts:
        for role in host.roles:
            groups[role].append(host.name)
    servers = groups["k3s_server"]
    if not servers:
        raise ClusterSpecError(
            "node_groups", "no node has the k3s_server role: a K3s cluster needs at least one server"
        )

    embedded_etcd = config.get("embedded_etcd")
    if embedded_etcd is None:
        embedded_etcd = len(servers) > 1
    warnings: list[str] = []
    if embedded_etcd:
        groups[ETCD_GROUP] = list(servers)
        if len(servers) % 2 == 0:
            warnings.append(
                f"embedded_etcd: {len(servers)} servers run embedded etcd; an even number adds no fault tolerance "
                f"over {len(servers) - 1} (quorum is {len(servers) // 2 + 1}) - use an odd number of servers"
            )
    return ClusterSpec(
        name=name,
        domain=config.get("domain") or None,
        embedded_etcd=bool(embedded_etcd),
        hosts=hosts,
        groups=groups,
        vars=dict(_mapping(config.get("vars"), "vars")),
        warnings=warnings,
    )


class _NodeGroupBuilder:
    """Builds the hosts of one node group after another, remembering names and addresses already taken."""

    def __init__(self, network: Optional[Network], default_user: Optional[str]) -> None:
        self.network = network
        self.default_user = default_user
        self.defined_by: dict[str, str] = {}  # host name -> key of the pattern that made it
        self.address_of: dict[str, str] = {}  # address -> host name

    def build(self, group_name: str, group: Any) -> list[HostSpec]:
        key = f"node_groups.{group_name}"
        group = _mapping(group, key)
        unknown = sorted(set(group) - set(NODE_GROUP_KEYS))
        if unknown:
            raise ClusterSpecError(f"{key}.{unknown[0]}", f"unknown key; accepted keys: {', '.join(NODE_GROUP_KEYS)}")
        names = self._names(key, group)
        roles = _roles(key, group, names)
        addresses = assign_addresses(
            names, key, ip_start=group.get("ip_start"), ips=group.get("ips"), network=self.network
        )
        for host, address in zip(names, addresses, strict=True):
            if address is None:
                continue
            if address in self.address_of:
                raise ClusterSpecError(
                    key, f"duplicate address {address}: given to both {self.address_of[address]} and {host}"
                )
            self.address_of[address] = host

        group_vars = _mapping(group.get("vars"), f"{key}.vars")
        node_vars = _mapping(group.get("hosts"), f"{key}.hosts")
        for host in node_vars:
            if host not in names:
                raise ClusterSpecError(f"{key}.hosts.{host}", f"{host!r} is not one of this node group's names")
        user = group.get("ssh_user", self.default_user)
        result = []
        for host, address in zip(names, addresses, strict=True):
            merged = dict(group_vars)
            merged.update(_mapping(node_vars.get(host), f"{key}.hosts.{host}"))
            result.append(
                HostSpec(name=host, node_group=group_name, roles=roles, address=address, user=user, vars=merged)
            )
        return result

    def _names(self, key: str, group: Mapping[str, Any]) -> list[str]:
        if "names" not in group:
            raise ClusterSpecError(f"{key}.names", "required: a host name or range pattern such as pi-worker-[01:07]")
        names: list[str] = []
        for i, pattern in enumerate(_str_list(group["names"], f"{key}.names")):
            pattern_key = f"{key}.names" if isinstance(group["names"], str) else f"{key}.names[{i}]"
            for host in expand_names(pattern, pattern_key):
                if host in RESERVED_NAMES:
                    raise ClusterSpecError(
                        pattern_key, f"host name {host!r} is also the name of a group this plugin creates"
                    )
                if host in self.defined_by:
                    raise ClusterSpecError(
                        pattern_key, f"host {host!r} is already defined by {self.defined_by[host]} (overlapping ranges)"
                    )
                self.defined_by[host] = pattern_key
                names.append(host)
        if not names:
            raise ClusterSpecError(f"{key}.names", "no names: give a host name or range pattern")
        return names


def _roles(key: str, group: Mapping[str, Any], names: Sequence[str]) -> tuple[str, ...]:
    roles = _str_list(group.get("roles", []), f"{key}.roles")
    if not roles:
        raise ClusterSpecError(f"{key}.roles", f"required: one or more of {', '.join(ROLES)}")
    for role in roles:
        if role == ETCD_GROUP:
            raise ClusterSpecError(
                f"{key}.roles", "'etcd' is not set by hand: servers join it when embedded_etcd is on"
            )
        if role not in ROLES:
            raise ClusterSpecError(f"{key}.roles", f"unknown role {role!r}; accepted roles: {', '.join(ROLES)}")
    if "k3s_server" in roles and "k3s_agent" in roles:
        raise ClusterSpecError(f"{key}.roles", "k3s_server and k3s_agent are exclusive: a K3s server runs an agent too")
    if any(r.startswith("k3s_") for r in roles):
        for host in names:
            if host != host.lower():
                raise ClusterSpecError(f"{key}.names", f"{host!r}: Kubernetes node names must be lowercase")
    return tuple(roles)
