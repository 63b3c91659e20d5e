#!/usr/bin/python
# Copyright: homelab.pi_cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: velero_schedule_info
short_description: List Velero backup schedules with their phase and last backup
version_added: 0.1.0
description:
  - Reads Velero C(Schedule) objects (C(velero.io/v1)) and reports, for each, its cron expression,
    whether it is paused, its C(status.phase), validation errors and the time of its last backup.
  - With O(include_backups=true) it also reads the namespace's Backups (one LIST request) and adds the
    newest backup of each schedule (by the C(velero.io/schedule-name) label) and its phase.
author:
  - homelab.pi_cluster maintainers (@homelab-pi-cluster)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.pi_cluster.k8s
attributes:
  check_mode:
    description: Only reads; runs the same in check mode.
    support: full
  diff_mode:
    description: Nothing changes, so there is nothing to diff.
    support: none
options:
  name:
    description: Only this schedule (an empty list is returned when it does not exist).
    type: str
  namespace:
    description: Namespace Velero runs in.
    type: str
    default: velero
  include_backups:
    description: Also report each schedule's newest Backup and its phase.
    type: bool
    default: false
seealso:
  - module: homelab.pi_cluster.velero_schedule
"""

EXAMPLES = r"""
- name: Read every schedule
  homelab.pi_cluster.velero_schedule_info:
  register: velero_schedules

- name: Fail when a schedule has not backed up for two days
  ansible.builtin.assert:
    that: >-
      (now(utc=true) - (item.last_backup | to_datetime('%Y-%m-%dT%H:%M:%SZ'))).total_seconds() < 172800
    fail_msg: "schedule {{ item.name }} last backed up at {{ item.last_backup }}"
  loop: "{{ velero_schedules.schedules }}"
  loop_control:
    label: "{{ item.name }}"

- name: The newest backup of the daily schedule and its phase
  homelab.pi_cluster.velero_schedule_info:
    name: daily
    include_backups: true
"""

RETURN = r"""
schedules:
  description: One entry per schedule, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Schedule name.
      type: str
      sample: daily
    namespace:
      description: Its namespace.
      type: str
      sample: velero
    schedule:
      description: The cron expression.
      type: str
      sample: "0 2 * * *"
    paused:
      description: Whether the schedule is paused.
      type: bool
    phase:
      description: C(status.phase) (V(New), V(Enabled) or V(FailedValidation)); null before Velero saw it.
      type: str
      sample: Enabled
    validation_errors:
      description: Velero's validation errors.
      type: list
      elements: str
    last_backup:
      description: When Velero last created a backup for it (RFC 3339), or null.
      type: str
      sample: "2026-11-26T02:00:00Z"
    last_skipped:
      description: When Velero last skipped a due backup (skipImmediately), or null.
      type: str
    ttl:
      description: Retention of its backups as written in the schedule.
      type: str
      sample: 720h0m0s
    storage_location:
      description: Its BackupStorageLocation, or null for Velero's default.
      type: str
    latest_backup:
      description: Name of its newest Backup.
      returned: when O(include_backups=true)
      type: str
      sample: daily-20261126020000
    latest_backup_phase:
      description: Phase of that Backup.
      returned: when O(include_backups=true)
      type: str
      sample: Completed
"""

import traceback
from typing import Any, Dict, List

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _velero as velero
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_client import (
    get_client,
    k8s_argument_spec,
)
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import (
    K8sError,
    ResourceService,
)


def read_schedules(service: ResourceService, params: Dict[str, Any]) -> List[Dict[str, Any]]:
    namespace = params["namespace"]
    if params["name"]:
        found = service.get(velero.API_VERSION, "Schedule", params["name"], namespace)
        schedules = [found] if found else []
    else:
        schedules = service.list(velero.API_VERSION, "Schedule", namespace)
    summaries = sorted((velero.schedule_summary(s) for s in schedules), key=lambda s: s["name"] or "")
    if params["include_backups"] and summaries:
        selector = f"{velero.SCHEDULE_NAME_LABEL}={params['name']}" if params["name"] else velero.SCHEDULE_NAME_LABEL
        latest = velero.latest_backups(service.list(velero.API_VERSION, "Backup", namespace, label_selector=selector))
        for summary in summaries:
            backup = latest.get(summary["name"])
            summary["latest_backup"] = (backup or {}).get("metadata", {}).get("name")
            summary["latest_backup_phase"] = velero.backup_phase(backup) or None
    return summaries


def main() -> None:
    module = AnsibleModule(
        argument_spec=k8s_argument_spec(
            {
                "name": {"type": "str"},
                "namespace": {"type": "str", "default": "velero"},
                "include_backups": {"type": "bool", "default": False},
            }
        ),
        supports_check_mode=True,
    )
    try:
        velero.check_dns_label("namespace", module.params["namespace"])
        if module.params["name"]:
            velero.check_dns_subdomain("name", module.params["name"])
        schedules = read_schedules(ResourceService(get_client(module)), module.params)
    except (velero.VeleroError, K8sError) as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())
    module.exit_json(changed=False, schedules=schedules)


if __name__ == "__main__":
    main()
