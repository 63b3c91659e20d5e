# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: cluster
short_description: A K3s Raspberry Pi cluster's hosts and groups from one short cluster file
version_added: 0.1.0
author:
  - homelab.pi_cluster maintainers (@homelab)
description:
  - Reads a cluster file whose name ends in C(.pi_cluster.yml) or C(.pi_cluster.yaml) and turns its node
    groups (name ranges such as C(pi-worker-[01:07]), an address range start or a list of addresses, roles and
    variables) into inventory hosts with C(ansible_host) and C(ansible_user), and into the groups every role of
    this collection expects - C(k3s_cluster) (children C(k3s_server) and C(k3s_agent)), C(k3s_server),
    C(k3s_agent), C(pihole), C(nas) and C(etcd). These groups always exist, even when empty.
  - The whole file is checked before any host is added; an error names the file and the key, for example
    overlapping ranges, a malformed range, more names than addresses, a duplicate address, an unknown role or
    a cluster without a server. An even number of servers running embedded etcd is a warning (no quorum gain).
  - "Name ranges: C([01:07]) (a leading zero fixes the width), C([1:12]), C([a:c]) (single letters of one case),
    with an optional step C([01:09:2]); several brackets in one name give every combination, the first bracket
    varying slowest (C(rack[1:2]-node[1:3])). C(names) may also be a list of such patterns."
  - With O(live=true), one LIST of Nodes (C(GET /api/v1/nodes), no API discovery) adds C(k3s_live_registered),
    C(k3s_live_ready), C(k3s_live_version) (the kubelet version, for example C(v1.31.4+k3s1)), C(k3s_live_arch) and
    C(k3s_live_labels) to each K3s host and fills the groups C(k3s_ready) and C(k3s_not_ready) (a K3s host without
    a Node is not ready, with C(k3s_live_registered=false)). The C(k3s_live_) prefix keeps them apart from the
    k3s role's settings (C(k3s_version), C(k3s_node_labels)), which host variables would otherwise override.
    Nodes the file does not describe are reported in a warning and can be put in the group C(k3s_unmanaged).
    An unreachable or failing API gives a warning and the static inventory, never an error. Everything read
    from the API is marked unsafe, so it is never templated.
  - "With O(cache=true) the Node list is cached (per file and API endpoint); a cache hit sends no request.
    C(ansible-inventory --flush-cache) or C(meta: refresh_inventory) fetch it again and rewrite the cache."
  - "Authentication is the one of M(kubernetes.core.k8s): the same options and the same C(K8S_AUTH_*)
    environment variables (C(K8S_AUTH_KUBECONFIG), C(K8S_AUTH_CONTEXT), C(K8S_AUTH_HOST), C(K8S_AUTH_API_KEY),
    C(K8S_AUTH_VERIFY_SSL), C(K8S_AUTH_SSL_CA_CERT), ...) when an option is not set in the file."
  - "Variables set on every host: C(ansible_host) (the assigned address; without one, C(<name>.<domain>) when
    O(domain) is set), C(ansible_user) (O(ssh_user) or the node group's C(ssh_user)), C(pi_cluster_node_group)
    (the node group's key) and C(pi_cluster_fqdn) (when O(domain) is set), then the node group's C(vars) and the
    node's own C(hosts) entry, in that order. The group C(all) gets C(pi_cluster_name), C(pi_cluster_domain),
    C(pi_cluster_embedded_etcd) and O(vars)."
requirements:
  - kubernetes >= 24.2.0 (Python library, only for O(live=true))
  - kubernetes.core >= 5.0.0 (collection, only for O(live=true))
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
  - kubernetes.core.k8s_auth_options
options:
  plugin:
    description: Marks the file as a source for this plugin.
    type: str
    required: true
    choices: [homelab.pi_cluster.cluster]
  cluster_name:
    description: Name of the cluster, set as C(pi_cluster_name) on the group C(all).
    type: str
    required: true
  domain:
    description:
      - DNS domain of the nodes, set as C(pi_cluster_domain); each host gets C(pi_cluster_fqdn=<name>.<domain>).
    type: str
  ssh_user:
    description: C(ansible_user) of every host, unless its node group sets C(ssh_user).
    type: str
    default: pi
  network:
    description:
      - The nodes' network in CIDR notation, for example C(192.168.1.0/24).
      - When set, every address must be a usable host address in it, and an O(node_groups) C(ip_start) with more
        names than addresses left is an error. When not set, a C(ip_start) range may not run past C(.254) of
        its C(/24).
      - With a network, addresses may also be given as host numbers - C(ip_start=11) in C(10.251.78.0/24) is
        C(10.251.78.11).
      - O(cluster_name), O(domain), O(ssh_user) and O(network) may be templates, rendered once when the inventory
        is read, with the extra variables and C(inventory_dir)/C(inventory_file) (the cluster file's) available.
    type: str
  embedded_etcd:
    description:
      - Whether the K3s servers run embedded etcd (then they are the members of the group C(etcd)).
      - Unset means automatic - on when there is more than one server (HA), off for a single server
        (K3s's default SQLite datastore). Set V(false) for HA with an external datastore.
      - An even number of servers with embedded etcd is warned about - it tolerates no more failures than one
        server fewer.
    type: bool
  vars:
    description: Variables for every host, set on the group C(all) (lowest inventory precedence).
    type: dict
    default: {}
  node_groups:
    description:
      - The nodes, in groups that share roles and settings. Keys are free names used in error messages and set
        as C(pi_cluster_node_group) on each host, so C(keyed_groups) can turn them into groups.
      - A host name may appear only once in the whole file; an address may be used only once.
    type: dict
    required: true
    suboptions:
      names:
        description: A host name or range pattern (C(pi-worker-[01:07])), or a list of them.
        type: raw
        required: true
      ip_start:
        description:
          - Address of the first name (or its host number in O(network)); the next names get the next addresses.
          - Exclusive with C(ips). Without C(ip_start) and C(ips), C(ansible_host) is C(<name>.<domain>) when
            O(domain) is set, else unset.
        type: raw
      ips:
        description: One address (or host number in O(network)) per name, in order. Exclusive with C(ip_start).
        type: list
        elements: raw
      roles:
        description:
          - Roles of these nodes - each is an inventory group. C(etcd) is not listed here; see O(embedded_etcd).
          - A node cannot be both C(k3s_server) and C(k3s_agent).
        type: list
        elements: str
        required: true
        choices: [k3s_server, k3s_agent, pihole, nas]
      ssh_user:
        description: C(ansible_user) for these nodes, overriding O(ssh_user).
        type: str
      vars:
        description: Variables for each of these nodes (host variables).
        type: dict
      hosts:
        description: Variables for single nodes of this group, by host name; they override C(vars).
        type: dict
  live:
    description:
      - Read the Nodes from the cluster's API to add readiness, version, architecture and labels.
      - Needs the kubernetes Python library and the kubernetes.core collection; without them, or when the API
        cannot be reached, the plugin warns and returns the static inventory.
    type: bool
    default: false
  label_groups:
    description:
      - Node label keys to make groups of, named O(label_group_prefix) + C(<key>_<value>) (sanitized), for
        example C(k3s_label_topology_kubernetes_io_zone_rack1). A label with an empty value gives
        O(label_group_prefix) + C(<key>).
      - For groups from every label use O(keyed_groups) with C(key=k3s_live_labels) instead.
    type: list
    elements: str
    default: []
  label_group_prefix:
    description: Prefix of the groups made by O(label_groups).
    type: str
    default: k3s_label_
  unmanaged_group:
    description:
      - Add Nodes that the file does not describe to the inventory, in the group C(k3s_unmanaged), with the
        live variables and C(ansible_host) set to their C(InternalIP). They are reported in a warning either way.
    type: bool
    default: false
  request_timeout:
    description: Seconds to wait for the API when O(live=true).
    type: float
    default: 10
  api_retries:
    description: How many times a transient API failure (connection error, HTTP 429 or 5xx) is retried, with backoff.
    type: int
    default: 2
"""

EXAMPLES = r"""
# inventory/reference.pi_cluster.yml - one server, seven agents, a Pi-hole pair and a NAS
plugin: homelab.pi_cluster.cluster
cluster_name: pi-cluster
domain: home.example.com
network: 192.168.1.0/24
ssh_user: pi
embedded_etcd: true  # etcd snapshots with a single server too
node_groups:
  server:
    names: pi-master
    ip_start: 192.168.1.240
    roles: [k3s_server]
  workers:
    names: pi-worker-[01:07]
    ip_start: 192.168.1.241
    roles: [k3s_agent]
    hosts:
      pi-worker-07:
        longhorn_disk: /dev/nvme0n1
  dns:
    names: pihole-[1:2]
    ips: [192.168.1.25, 192.168.1.26]
    roles: [pihole]
  storage:
    names: synology
    ips: [192.168.1.10]
    roles: [nas]
    ssh_user: admin
---
# Three servers with embedded etcd (HA) and live data from the cluster, cached for an hour
plugin: homelab.pi_cluster.cluster
cluster_name: pi-ha
ssh_user: pi
node_groups:
  servers:
    names: pi-master-[1:3]
    ip_start: 10.0.0.11
    roles: [k3s_server]
  agents:
    names: ["pi-worker-[01:04]", "pi-worker-[10:16:2]"]
    ip_start: 10.0.0.21
    roles: [k3s_agent]
live: true
kubeconfig: ~/.kube/config
context: pi-ha
label_groups: [topology.kubernetes.io/zone]
unmanaged_group: true
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/ansible-inventory
cache_timeout: 3600
---
# Constructed features on top: a variable, a conditional group and keyed groups
plugin: homelab.pi_cluster.cluster
cluster_name: pi-cluster
node_groups:
  server:
    names: pi-master
    ip_start: 192.168.1.240
    roles: [k3s_server]
  workers:
    names: pi-worker-[01:07]
    ip_start: 192.168.1.241
    roles: [k3s_agent]
    vars:
      rack: b
compose:
  node_ip: ansible_host
groups:
  rack_b: rack | default('') == 'b'
keyed_groups:
  - key: pi_cluster_node_group
    prefix: nodes
  - key: k3s_live_labels | default({})
    prefix: label
"""

import hashlib
import json
import os

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.helpers import get_group_vars
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.unsafe_proxy import wrap_var
from ansible.utils.vars import combine_vars

from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_client import AUTH_OPTIONS
from ansible_collections.homelab.pi_cluster.plugins.plugin_utils._cluster_live import (
    LiveError,
    enrich,
    fetch_nodes,
    label_groups,
    node_vars,
)
from ansible_collections.homelab.pi_cluster.plugins.plugin_utils._cluster_spec import (
    CLUSTER_GROUP,
    GROUPS,
    ClusterSpec,
    ClusterSpecError,
    build_cluster,
)

CLUSTER_OPTIONS = ("cluster_name", "domain", "ssh_user", "network", "embedded_etcd", "vars", "node_groups")
TEMPLATED_OPTIONS = ("cluster_name", "domain", "ssh_user", "network")
LIVE_GROUPS = ("k3s_ready", "k3s_not_ready")
UNMANAGED_GROUP = "k3s_unmanaged"
# Options that decide which API (and which view of it) the Node list comes from.
# Secrets (api_key, password) are left out: the key must not depend on, or leak, them.
CACHE_KEY_OPTIONS = ("kubeconfig", "context", "host", "username", "impersonate_user", "impersonate_groups")


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "homelab.pi_cluster.cluster"

    def verify_file(self, path):
        if super().verify_file(path) and path.endswith((".pi_cluster.yml", ".pi_cluster.yaml")):
            return True
        self.display.vvv(f"{path}: skipped by {self.NAME}, the file name does not end in .pi_cluster.yml/.yaml")
        return False

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        try:
            spec = build_cluster(self._cluster_options(path))
        except ClusterSpecError as exc:
            raise AnsibleParserError(f"{path}: {exc}") from exc
        for warning in spec.warnings:
            self.display.warning(f"{path}: {warning}")

        hosts = self._add_cluster(spec)
        if self.get_option("live"):
            hosts += self._add_live(spec, path, cache)
        for host in hosts:
            self._construct(host)

    def _cluster_options(self, path: str) -> dict:
        """The cluster description, with templates in the top-level scalar options rendered.

        Only those: ``vars`` stay templates, rendered lazily like any inventory variable.
        """
        options = {name: self.get_option(name) for name in CLUSTER_OPTIONS}
        self.templar.available_variables = combine_vars(
            self._vars, {"inventory_file": path, "inventory_dir": os.path.dirname(path)}
        )
        for name in TEMPLATED_OPTIONS:
            if isinstance(options[name], str) and self.templar.is_template(options[name]):
                try:
                    options[name] = self.templar.template(options[name])
                except AnsibleError as exc:
                    raise AnsibleParserError(f"{path}: {name}: could not render the template: {exc}") from exc
        return options

    # --- static part ------------------------------------------------------------

    def _add_cluster(self, spec: ClusterSpec) -> list[str]:
        for group in GROUPS:
            self.inventory.add_group(group)
        self.inventory.add_child(CLUSTER_GROUP, "k3s_server")
        self.inventory.add_child(CLUSTER_GROUP, "k3s_agent")
        cluster_vars = {
            "pi_cluster_name": spec.name,
            "pi_cluster_domain": spec.domain,
            "pi_cluster_embedded_etcd": spec.embedded_etcd,
        }
        for name, value in combine_vars(cluster_vars, spec.vars).items():
            self.inventory.set_variable("all", name, value)

        for host in spec.hosts:
            self.inventory.add_host(host.name)
            fqdn = f"{host.name}.{spec.domain}" if spec.domain else None
            connection = {
                "ansible_host": host.address or fqdn,
                "ansible_user": host.user,
                "pi_cluster_node_group": host.node_group,
                "pi_cluster_fqdn": fqdn,
            }
            for name, value in combine_vars(connection, host.vars).items():
                if value is not None:
                    self.inventory.set_variable(host.name, name, value)
        for group, members in spec.groups.items():
            for member in members:
                self.inventory.add_child(group, member)
        return [host.name for host in spec.hosts]

    # --- live part --------------------------------------------------------------

    def _add_live(self, spec: ClusterSpec, path: str, cache: bool) -> list[str]:
        """Add the Node list's variables and groups; return the hosts added for unmanaged Nodes."""
        for group in LIVE_GROUPS:
            self.inventory.add_group(group)
        nodes = self._nodes(path, cache)
        if nodes is None:
            return []
        k3s_hosts = spec.groups["k3s_server"] + spec.groups["k3s_agent"]
        result = enrich(k3s_hosts, nodes)
        for host, variables in result.host_vars.items():
            self._set_live_vars(host, variables)
        for host in result.ready:
            self.inventory.add_child("k3s_ready", host)
        for host in result.not_ready:
            self.inventory.add_child("k3s_not_ready", host)

        added = []
        if result.unmanaged:
            names = ", ".join(node["name"] for node in result.unmanaged)
            self.display.warning(f"{path}: K3s nodes not described in this file (unmanaged): {names}")
        if result.unmanaged and self.get_option("unmanaged_group"):
            self.inventory.add_group(UNMANAGED_GROUP)
            for node in result.unmanaged:
                if node["name"] in self.inventory.groups:  # Ansible cannot have a host and a group of one name
                    self.display.warning(f"{path}: unmanaged node {node['name']!r} not added: a group has that name")
                    continue
                host = self.inventory.add_host(node["name"], group=UNMANAGED_GROUP)
                if node.get("internal_ip"):
                    self.inventory.set_variable(host, "ansible_host", node["internal_ip"])
                self._set_live_vars(host, node_vars(node))
                group = "k3s_ready" if node["ready"] else "k3s_not_ready"
                self.inventory.add_child(group, host)
                added.append(host)
        return added

    def _set_live_vars(self, host: str, variables: dict) -> None:
        for name, value in variables.items():
            if value is not None:
                self.inventory.set_variable(host, name, value)
        labels = variables.get("k3s_live_labels") or {}
        for raw in label_groups(labels, self.get_option("label_groups"), self.get_option("label_group_prefix")):
            group = self.inventory.add_group(self._sanitize_group_name(raw))
            self.inventory.add_child(group, host)

    def _nodes(self, path: str, cache: bool):
        """Node summaries from the cache or the API (marked unsafe), or None when the API failed."""
        use_cache = self.get_option("cache")
        key = self._live_cache_key(path)
        if use_cache and cache:
            try:
                return wrap_var(self._cache[key]["nodes"])
            except (KeyError, TypeError):
                pass  # a miss (or an entry of another shape): fetch below and fill the cache
        auth = {name: self.get_option(name) for name in AUTH_OPTIONS}
        try:
            nodes = fetch_nodes(
                auth, timeout=self.get_option("request_timeout"), retries=self.get_option("api_retries")
            )
        except LiveError as exc:
            self.display.warning(f"{path}: live data not available, using the static inventory only: {exc}")
            return None  # and nothing cached: the next run tries again
        if use_cache:
            self._cache[key] = {"nodes": nodes}
        return wrap_var(nodes)

    def _live_cache_key(self, path: str) -> str:
        """The standard per-file key plus a digest of the API settings, so two endpoints never share data."""
        # An option left unset falls back to its K8S_AUTH_* variable in the client, so the key does too.
        settings = {
            name: self.get_option(name) or os.environ.get(f"K8S_AUTH_{name.upper()}") for name in CACHE_KEY_OPTIONS
        }
        settings["cluster_name"] = self.get_option("cluster_name")
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
        return f"{self.get_cache_key(path)}_{digest}"

    # --- constructed --------------------------------------------------------------

    def _construct(self, host: str) -> None:
        if not (self.get_option("compose") or self.get_option("groups") or self.get_option("keyed_groups")):
            return
        strict = self.get_option("strict")
        self._set_composite_vars(self.get_option("compose"), self._host_vars(host), host, strict=strict)
        # re-read so that groups and keyed_groups see the composed variables
        variables = self._host_vars(host)
        self._add_host_to_composed_groups(self.get_option("groups"), variables, host, strict=strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, host, strict=strict)

    def _host_vars(self, host: str) -> dict:
        """A host's variables with its groups' (incl. ``all``, which hosts join only after parsing)."""
        inventory_host = self.inventory.get_host(host)
        groups = inventory_host.get_groups()
        if self.inventory.groups["all"] not in groups:
            groups = [self.inventory.groups["all"], *groups]
        return combine_vars(get_group_vars(groups), inventory_host.get_vars())
