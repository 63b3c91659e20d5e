#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.pi_cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: longhorn_volume_info
short_description: List Longhorn volumes with their size, state, robustness and claims
version_added: 0.1.0
description:
  - Reads Longhorn C(Volume) objects (C(longhorn.io/v1beta2)) and returns a summary of each one,
    in the same shape as the C(volume) return value of M(homelab.pi_cluster.longhorn_volume).
  - One GET for a named volume, one LIST otherwise.
author:
  - homelab.pi_cluster maintainers (@homelab-pi-cluster)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.pi_cluster.k8s
attributes:
  check_mode:
    support: full
    description: Only reads.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
options:
  name:
    description: Only this volume. All volumes in O(namespace) when omitted.
    type: str
  namespace:
    description: Namespace Longhorn runs in.
    type: str
    default: longhorn-system
  label_selector:
    description:
      - Kubernetes label selector, for example C(recurring-job-group.longhorn.io/default=enabled).
      - Ignored when O(name) is set.
    type: str
  robustness:
    description: Only volumes with one of these C(status.robustness) values.
    type: list
    elements: str
    choices: [healthy, degraded, faulted, unknown]
"""

EXAMPLES = r"""
- name: Volumes that need attention
  homelab.pi_cluster.longhorn_volume_info:
    robustness: [degraded, faulted]
  register: sick

- name: Every volume in the default recurring-job group
  homelab.pi_cluster.longhorn_volume_info:
    label_selector: recurring-job-group.longhorn.io/default=enabled
"""

RETURN = r"""
volumes:
  description: One summary per volume, sorted by name; empty when a named volume does not exist.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Volume name., type: str, returned: success}
    size: {description: "C(spec.size) in bytes.", type: int, returned: success}
    size_quantity: {description: The size as a quantity., type: str, returned: success, sample: 10Gi}
    state: {description: "C(status.state).", type: str, returned: success}
    robustness: {description: "C(status.robustness).", type: str, returned: success}
    conditions: {description: "C(status.conditions).", type: list, elements: dict, returned: success}
    kubernetes_status: {description: "C(status.kubernetesStatus).", type: dict, returned: success}
    recurring_jobs: {description: Recurring jobs from the labels., type: list, elements: str, returned: success}
    recurring_job_groups: {description: Recurring job groups., type: list, elements: str, returned: success}
    spec: {description: The full C(spec)., type: dict, returned: success}
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _longhorn as lh
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_client import (
    get_client,
    k8s_argument_spec,
)
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import (
    K8sError,
    ResourceService,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=k8s_argument_spec(
            dict(
                name=dict(type="str"),
                namespace=dict(type="str", default=lh.DEFAULT_NAMESPACE),
                label_selector=dict(type="str"),
                robustness=dict(type="list", elements="str", choices=["healthy", "degraded", "faulted", "unknown"]),
            )
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        if params["name"] is not None:
            lh.validate_volume_name(params["name"])
    except lh.LonghornError as exc:
        module.fail_json(msg=str(exc), field=exc.field)
    service = ResourceService(get_client(module))
    try:
        if params["name"] is not None:
            found = service.get(lh.API_VERSION, lh.KIND, params["name"], params["namespace"])
            items = [found] if found else []
        else:
            items = service.list(lh.API_VERSION, lh.KIND, params["namespace"], label_selector=params["label_selector"])
    except K8sError as exc:
        module.fail_json(msg=str(exc), status=exc.status, reason=exc.reason, exception=traceback.format_exc())
    wanted = set(params["robustness"] or [])
    volumes = [lh.summary(item) for item in items]
    volumes = [v for v in volumes if not wanted or (v["robustness"] or "unknown") in wanted]
    module.exit_json(changed=False, volumes=sorted(volumes, key=lambda v: v["name"] or ""))


if __name__ == "__main__":
    main()
