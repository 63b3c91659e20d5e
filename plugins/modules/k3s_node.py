#!/usr/bin/python
# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k3s_node
short_description: Declarative state of a K3s node (labels, taints, cordon, drain) through the Kubernetes API
version_added: 0.1.0
description:
  - Sets labels, annotations and taints of an existing Kubernetes C(Node) and cordons, uncordons, drains
    or deletes it. Only the keys you list change unless you ask to purge.
  - All changes to the Node go in one JSON merge patch carrying the C(resourceVersion) that was read;
    when someone else changed the Node meanwhile (HTTP 409) the Node is re-read and the change recomputed.
  - Draining works like C(kubectl drain) - it cordons the node, then evicts its pods through the
    Eviction API (C(policy/v1)), which honours PodDisruptionBudgets. An eviction refused with HTTP 429
    (no disruption allowed now) is retried every 5 seconds until O(timeout). Mirror pods are always skipped,
    DaemonSet pods when O(ignore_daemonsets=true). On failure the node is left cordoned and the error
    names each blocking pod, why, and the PodDisruptionBudget involved.
  - Every option is validated (label and taint syntax as Kubernetes checks it) before any request is sent.
  - Transient API errors (connection errors, HTTP 429 and 5xx) are retried with exponential backoff.
author:
  - homelab.pi_cluster maintainers (@homelab-pi-cluster)
options:
  name:
    description: Name of the Node (as in C(kubectl get nodes)).
    type: str
    required: true
  state:
    description:
      - V(present) sets labels, annotations and taints only.
      - V(cordoned) also marks the node unschedulable, V(uncordoned) schedulable again.
      - V(drained) cordons the node and evicts its pods.
      - V(absent) deletes the Node object (drain it first). Nothing to do when it does not exist.
    type: str
    choices: [present, cordoned, uncordoned, drained, absent]
    default: present
  labels:
    description:
      - Labels to set. A V(null) value removes that label.
      - Keys are C([prefix/]name) - the prefix a DNS subdomain of at most 253 characters, the name at most
        63 characters of C([A-Za-z0-9_.-]) starting and ending alphanumeric; values the same without prefix
        (may be empty). Quote values like V("true") - YAML booleans are refused.
    type: dict
  purge_labels:
    description:
      - Remove labels not listed in O(labels). Labels under the C(kubernetes.io), C(k8s.io), C(k3s.io) and
        C(cattle.io) domains (set by the kubelet and K3s) are never purged; list one with V(null) to remove it.
    type: bool
    default: false
  annotations:
    description: Annotations to set (keys as for labels; any string value). A V(null) value removes one.
    type: dict
  taints:
    description:
      - Taints to add, update (same O(taints[].key) and O(taints[].effect)) or remove. Taints not listed are
        kept unless O(purge_taints=true). Taints of the node lifecycle controller (C(node.kubernetes.io/*))
        are never touched; use O(state=cordoned) for C(node.kubernetes.io/unschedulable).
    type: list
    elements: dict
    suboptions:
      key:
        description: Taint key, same syntax as a label key.
        type: str
        required: true
      value:
        description: Taint value, same syntax as a label value.
        type: str
      effect:
        description: Required for a present taint. For an absent one, omit it to remove the key with any effect.
        type: str
        choices: [NoSchedule, PreferNoSchedule, NoExecute]
      state:
        description: Whether the taint should be on the node.
        type: str
        choices: [present, absent]
        default: present
  purge_taints:
    description: Remove taints not listed in O(taints) (except the node lifecycle controller's).
    type: bool
    default: false
  grace_period:
    description: Seconds each evicted pod gets to terminate. Default is each pod's own C(terminationGracePeriodSeconds).
    type: int
  timeout:
    description: Seconds a drain may take in total (evictions refused by PodDisruptionBudgets, pods terminating).
    type: int
    default: 300
  delete_emptydir_data:
    description: Drain pods using C(emptyDir) volumes too; their data is lost.
    type: bool
    default: false
  ignore_daemonsets:
    description: Skip DaemonSet-managed pods (their controller ignores cordoning). With V(false) they block the drain.
    type: bool
    default: true
  force:
    description: Drain pods that no controller manages (they will not be recreated anywhere).
    type: bool
    default: false
  disable_eviction:
    description: Delete pods instead of evicting them. B(Bypasses PodDisruptionBudgets.)
    type: bool
    default: false
  wait:
    description: Wait until the node reports C(Ready=True) (read-only, also in check mode).
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for O(wait), and for the Node to disappear with O(state=absent).
    type: int
    default: 120
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.pi_cluster.k8s
attributes:
  check_mode:
    description: Reads the node and its pods, predicts the result and writes nothing.
    support: full
  diff_mode:
    description: Shows labels, taints, schedulability (and annotations when managed) and, for a drain, the pods.
    support: full
seealso:
  - module: homelab.pi_cluster.k3s_node_info
  - name: kubectl drain
    description: The behaviour the drain follows.
    link: https://kubernetes.io/docs/tasks/administer-cluster/safely-drain-node/
"""

EXAMPLES = r"""
- name: Manage the Pi nodes
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/homelab.pi_cluster.k8s:
      kubeconfig: "{{ playbook_dir }}/kubeconfig-pi-master.yaml"
  tasks:
    - name: Label and taint a worker with an NVMe disk
      homelab.pi_cluster.k3s_node:
        name: pi-worker-01
        labels:
          node-role.kubernetes.io/worker: "true"
          storage.homelab.example/nvme: "true"
          obsolete-label: null
        taints:
          - key: dedicated
            value: storage
            effect: PreferNoSchedule

    - name: Drain a node for maintenance; uncordon it again if anything fails
      block:
        - name: Drain pi-worker-03
          homelab.pi_cluster.k3s_node:
            name: pi-worker-03
            state: drained
            delete_emptydir_data: true
            grace_period: 60
            timeout: 600
          register: drain
        - name: Show what moved
          ansible.builtin.debug:
            var: drain.evicted
      rescue:
        - name: Put the node back into service
          homelab.pi_cluster.k3s_node:
            name: pi-worker-03
            state: uncordoned

    - name: Uncordon after the reboot and wait until Ready
      homelab.pi_cluster.k3s_node:
        name: pi-worker-03
        state: uncordoned
        wait: true
        wait_timeout: 300

    - name: Keep exactly these taints on the server
      homelab.pi_cluster.k3s_node:
        name: pi-master
        purge_taints: true
        taints:
          - key: node-role.kubernetes.io/control-plane
            effect: NoSchedule
"""

RETURN = r"""
name:
  description: The node's name.
  returned: always
  type: str
labels:
  description: The node's labels afterwards (predicted in check mode).
  returned: when O(state) is not V(absent)
  type: dict
  sample: {"kubernetes.io/hostname": "pi-worker-01", "node-role.kubernetes.io/worker": "true"}
annotations:
  description: The node's annotations afterwards.
  returned: when O(annotations) is set
  type: dict
taints:
  description: The node's taints afterwards.
  returned: when O(state) is not V(absent)
  type: list
  elements: dict
  sample: [{"key": "dedicated", "value": "storage", "effect": "PreferNoSchedule"}]
unschedulable:
  description: Whether the node is cordoned afterwards.
  returned: when O(state) is not V(absent)
  type: bool
ready:
  description: Whether the node's C(Ready) condition is C(True).
  returned: when O(state) is not V(absent)
  type: bool
evicted:
  description: Pods (C(namespace/name)) evicted, or deleted with O(disable_eviction) (would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["default/web-7d4b9-abcde"]
skipped_pods:
  description: Pods a drain left alone (mirror and DaemonSet pods), with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{"pod": "kube-system/svclb-traefik-x1", "reason": "DaemonSet-managed (svclb-traefik)"}]
blocked:
  description: On a failed drain, each pod that blocked it and why (including the PodDisruptionBudget).
  returned: on drain failure
  type: list
  elements: dict
api_retries:
  description: Transient API failures (409, 429, 5xx, connection errors) that were retried.
  returned: always
  type: int
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pi_cluster.plugins.module_utils._k3s_node import (
    STATES,
    TAINT_EFFECTS,
    DrainError,
    NodeInputError,
    NodeManager,
    validate_params,
)
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_client import (
    get_client,
    k8s_argument_spec,
)
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import (
    K8sError,
    ResourceService,
)

OPTIONS = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=list(STATES)),
    labels=dict(type="dict"),
    purge_labels=dict(type="bool", default=False),
    annotations=dict(type="dict"),
    taints=dict(
        type="list",
        elements="dict",
        options=dict(
            key=dict(type="str", required=True, no_log=False),
            value=dict(type="str"),
            effect=dict(type="str", choices=list(TAINT_EFFECTS)),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
    ),
    purge_taints=dict(type="bool", default=False),
    grace_period=dict(type="int"),
    timeout=dict(type="int", default=300),
    delete_emptydir_data=dict(type="bool", default=False),
    ignore_daemonsets=dict(type="bool", default=True),
    force=dict(type="bool", default=False),
    disable_eviction=dict(type="bool", default=False),
    wait=dict(type="bool", default=False),
    wait_timeout=dict(type="int", default=120),
)


def main() -> None:
    module = AnsibleModule(argument_spec=k8s_argument_spec(OPTIONS), supports_check_mode=True)
    try:
        spec = validate_params(module.params)  # all input checked: no request for bad input
    except NodeInputError as exc:
        module.fail_json(msg=f"Invalid option {exc}", field=exc.field)

    service = ResourceService(get_client(module), module.check_mode)
    manager = NodeManager(service, spec)
    result = {"name": spec.name, "evicted": [], "skipped_pods": [], "api_retries": 0}
    try:
        outcome = manager.run()
    except DrainError as exc:
        module.fail_json(
            msg=str(exc),
            changed=manager.wrote,
            blocked=exc.blocked,
            evicted=exc.evicted,
            name=spec.name,
            api_retries=service.retries,
        )
    except K8sError as exc:
        module.fail_json(
            msg=f"{spec.name}: {exc}",
            changed=manager.wrote,
            status=exc.status,
            reason=exc.reason,
            causes=exc.causes,
            api_retries=service.retries,
            exception=traceback.format_exc(),
        )

    result.update(changed=outcome.changed, evicted=outcome.evicted, skipped_pods=outcome.skipped)
    result["api_retries"] = service.retries
    if spec.state != "absent":
        result.update(
            labels=outcome.after.get("labels", {}),
            taints=outcome.after.get("taints", []),
            unschedulable=outcome.after.get("unschedulable", False),
            ready=outcome.ready,
        )
        if "annotations" in outcome.after:
            result["annotations"] = outcome.after["annotations"]
    if module._diff:
        result["diff"] = {"before": outcome.before, "after": outcome.after}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
