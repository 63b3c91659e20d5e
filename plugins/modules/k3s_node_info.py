#!/usr/bin/python
# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k3s_node_info
short_description: Read the state of K3s nodes (readiness, roles, labels, taints, cordon) through the Kubernetes API
version_added: 0.1.0
description:
  - Returns one entry per Node with the fields a playbook usually needs to decide what to do next
    (for example, during a rolling upgrade, which nodes are Ready and schedulable).
  - One GET (O(name)) or one LIST (O(label_selector)); never writes.
author:
  - homelab.pi_cluster maintainers (@homelab-pi-cluster)
options:
  name:
    description: Only this node. Mutually exclusive with O(label_selector).
    type: str
  label_selector:
    description: Only nodes matching this label selector (for example V(node-role.kubernetes.io/control-plane=true)).
    type: str
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.pi_cluster.k8s
attributes:
  check_mode:
    description: Reads only; runs the same in check mode.
    support: full
  diff_mode:
    description: Nothing to diff.
    support: none
seealso:
  - module: homelab.pi_cluster.k3s_node
"""

EXAMPLES = r"""
- name: Check the cluster before an upgrade
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/homelab.pi_cluster.k8s:
      kubeconfig: "{{ playbook_dir }}/kubeconfig-pi-master.yaml"
  tasks:
    - name: Read all nodes
      homelab.pi_cluster.k3s_node_info:
      register: cluster

    - name: Every node must be Ready
      ansible.builtin.assert:
        that: cluster.nodes | rejectattr('ready') | list | length == 0
        fail_msg: "Not Ready: {{ cluster.nodes | rejectattr('ready') | map(attribute='name') | join(', ') }}"

    - name: Read the servers only
      homelab.pi_cluster.k3s_node_info:
        label_selector: node-role.kubernetes.io/control-plane=true
      register: servers
"""

RETURN = r"""
nodes:
  description: The nodes found, sorted by name (empty when O(name) does not exist).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Node name.
      type: str
    ready:
      description: Whether the C(Ready) condition is C(True).
      type: bool
    unschedulable:
      description: Whether the node is cordoned.
      type: bool
    roles:
      description: Roles from the C(node-role.kubernetes.io/<role>) labels.
      type: list
      elements: str
      sample: ["control-plane", "etcd", "master"]
    labels:
      description: All labels.
      type: dict
    taints:
      description: All taints.
      type: list
      elements: dict
    kubelet_version:
      description: The kubelet (K3s) version the node reports, for example C(v1.33.5+k3s1).
      type: str
    internal_ip:
      description: The node's C(InternalIP) address, when reported.
      type: str
    architecture:
      description: CPU architecture the node reports (C(arm64) on a Raspberry Pi 5).
      type: str
api_retries:
  description: Transient API failures (429, 5xx, connection errors) that were retried.
  returned: always
  type: int
"""

import traceback
from typing import Any, Dict

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pi_cluster.plugins.module_utils._k3s_node import is_ready
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_client import (
    get_client,
    k8s_argument_spec,
)
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import (
    K8sError,
    ResourceService,
)

OPTIONS = dict(name=dict(type="str"), label_selector=dict(type="str"))
ROLE_PREFIX = "node-role.kubernetes.io/"


def summarize(node: Dict[str, Any]) -> Dict[str, Any]:
    metadata = node.get("metadata") or {}
    status = node.get("status") or {}
    labels = metadata.get("labels") or {}
    info = status.get("nodeInfo") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    return {
        "name": metadata.get("name"),
        "ready": is_ready(node),
        "unschedulable": bool((node.get("spec") or {}).get("unschedulable")),
        "roles": sorted(key[len(ROLE_PREFIX) :] for key in labels if key.startswith(ROLE_PREFIX)),
        "labels": labels,
        "taints": (node.get("spec") or {}).get("taints") or [],
        "kubelet_version": info.get("kubeletVersion"),
        "internal_ip": addresses.get("InternalIP"),
        "architecture": info.get("architecture"),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec=k8s_argument_spec(OPTIONS),
        mutually_exclusive=[("name", "label_selector")],
        supports_check_mode=True,
    )
    service = ResourceService(get_client(module), module.check_mode)
    try:
        if module.params["name"]:
            found = service.get("v1", "Node", module.params["name"])
            nodes = [found] if found else []
        else:
            nodes = service.list("v1", "Node", label_selector=module.params["label_selector"])
    except K8sError as exc:
        module.fail_json(msg=str(exc), status=exc.status, exception=traceback.format_exc())
    summaries = sorted((summarize(n) for n in nodes), key=lambda n: n["name"] or "")
    module.exit_json(changed=False, nodes=summaries, api_retries=service.retries)


if __name__ == "__main__":
    main()
