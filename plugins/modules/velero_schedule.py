#!/usr/bin/python
# Copyright: homelab.pi_cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: velero_schedule
short_description: Manage Velero backup schedules and run them on demand
version_added: 0.1.0
description:
  - Creates, updates, pauses and deletes Velero C(Schedule) objects (C(velero.io/v1)) from typed options.
  - The cron expression and every duration are validated before any request is sent, exactly as
    Velero's parser (robfig/cron v3 C(ParseStandard), Go C(time.ParseDuration)) would read them.
  - Only the options you set are compared and written; durations are compared as time spans
    (C(720h) equals C(720h0m0s)), lists of names ignoring order. Status, C(spec.skipImmediately)
    (reset by the Velero controller), labels and annotations you do not name, and template fields
    you do not set are never compared, so a re-run with the same options makes one GET and no write.
  - To clear a list, mapping or string field set it to an empty value (V([]), V({}), V("")).
  - O(run_now=true) creates a C(Backup) from the schedule exactly as C(velero backup create --from-schedule)
    does and, with O(wait=true), waits for it to finish.
author:
  - homelab.pi_cluster maintainers (@homelab-pi-cluster)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.pi_cluster.k8s
attributes:
  check_mode:
    description: >-
      Reads the schedule, predicts the create, patch, pause or delete (and the Backup of O(run_now))
      and writes nothing.
    support: full
  diff_mode:
    description: Shows the schedule's managed spec fields and C(paused) before and after.
    support: full
notes:
  - Every Backup Velero creates from a schedule carries the label C(velero.io/schedule-name=<name>),
    so O(name) may be at most 63 characters.
  - Durations accept Go syntax (units V(h), V(m), V(s), V(ms), V(us), V(ns), e.g. V(720h), V(1h30m)) and, as a
    convenience, a leading whole number of days (V(30d), V(1d12h)) which is converted to hours because
    Velero has no day unit. They are written in Go's canonical form (V(720h0m0s)).
options:
  name:
    description: Name of the Schedule (a DNS subdomain name, at most 63 characters).
    type: str
    required: true
  namespace:
    description: Namespace Velero runs in.
    type: str
    default: velero
  state:
    description:
      - V(present) creates or updates the schedule, V(absent) deletes it.
      - V(paused) is V(present) with O(paused=true); it exists so a playbook can pause a schedule
        by state alone. O(paused=false) together with V(paused) is an error.
    type: str
    choices: [present, absent, paused]
    default: present
  schedule:
    description:
      - When to run, as Velero's cron parser accepts it, in UTC unless prefixed.
      - Five fields C(minute hour day-of-month month day-of-week) (day of week V(0)-V(6) or V(sun)-V(sat);
        V(7) is refused as Velero refuses it), a descriptor (V(@yearly), V(@annually), V(@monthly),
        V(@weekly), V(@daily), V(@midnight), V(@hourly)) or V(@every <duration>),
        optionally prefixed by C(CRON_TZ=<IANA zone> ) or C(TZ=<zone> ).
      - Required unless O(state=absent).
    type: str
  paused:
    description: Pause (V(true)) or resume (V(false)) the schedule. Not compared when omitted.
    type: bool
  skip_immediately:
    description:
      - Sent as C(spec.skipImmediately) when the schedule is created or when this task unpauses it,
        so a backup that is due at once is skipped. The controller resets it to V(false) after use,
        so it is never compared and never causes a change by itself.
    type: bool
  use_owner_references_in_backup:
    description: Set an owner reference to the schedule on its backups (they are deleted with it).
    type: bool
  labels:
    description: Labels of the Schedule object. Only the keys given are compared; others are kept.
      Backups inherit them unless O(backup_labels) is set.
    type: dict
  annotations:
    description: Annotations of the Schedule object (copied to its backups). Only the keys given are compared.
    type: dict
  backup_labels:
    description: Labels of the backups this schedule creates (C(spec.template.metadata.labels)).
      When set, Velero uses them instead of O(labels) for the backups. Compared as a whole.
    type: dict
  ttl:
    description: How long backups are kept (for example V(720h) or V(30d)). V(0s) means Velero's default.
    type: str
  csi_snapshot_timeout:
    description: How long to wait for CSI VolumeSnapshots to become ready (Velero's default is 10m).
    type: str
  item_operation_timeout:
    description: How long to wait for asynchronous BackupItemAction operations (Velero's default is 4h).
    type: str
  included_namespaces:
    description: Namespaces to back up; empty means all. Compared ignoring order.
    type: list
    elements: str
  excluded_namespaces:
    description: Namespaces not to back up. May not contain V(*) or a name in O(included_namespaces).
    type: list
    elements: str
  included_resources:
    description: Resources to back up (old-style filter; cannot be combined with the scoped filters).
    type: list
    elements: str
  excluded_resources:
    description: Resources not to back up (old-style filter).
    type: list
    elements: str
  include_cluster_resources:
    description: Whether cluster-scoped resources are backed up (old-style filter).
    type: bool
  included_cluster_scoped_resources:
    description: Cluster-scoped resources to back up (V(*) for all).
    type: list
    elements: str
  excluded_cluster_scoped_resources:
    description: Cluster-scoped resources not to back up.
    type: list
    elements: str
  included_namespace_scoped_resources:
    description: Namespace-scoped resources to back up (default all).
    type: list
    elements: str
  excluded_namespace_scoped_resources:
    description: Namespace-scoped resources not to back up.
    type: list
    elements: str
  label_selector:
    description: Back up only objects matching this selector. Mutually exclusive with O(or_label_selectors).
    type: dict
    suboptions: &selector
      match_labels:
        description: Labels an object must have.
        type: dict
      match_expressions:
        description: Label requirements, all of which must hold.
        type: list
        elements: dict
        suboptions:
          key:
            description: Label key.
            type: str
            required: true
          operator:
            description: V(In) and V(NotIn) need at least one of the values; V(Exists) and V(DoesNotExist) take none.
            type: str
            required: true
            choices: [In, NotIn, Exists, DoesNotExist]
          values:
            description: Label values.
            type: list
            elements: str
  or_label_selectors:
    description: Back up objects matching any of these selectors. Mutually exclusive with O(label_selector).
    type: list
    elements: dict
    suboptions: *selector
  storage_location:
    description: Name of the BackupStorageLocation (Velero's default location when omitted).
    type: str
  volume_snapshot_locations:
    description: Names of VolumeSnapshotLocations to use.
    type: list
    elements: str
  snapshot_volumes:
    description: Whether to take snapshots of persistent volumes.
    type: bool
  default_volumes_to_fs_backup:
    description: Back up all pod volumes with file system backup (Kopia) by default.
    type: bool
  snapshot_move_data:
    description: Move CSI snapshot data to the backup storage (data mover).
    type: bool
  datamover:
    description: Data mover to use; empty or V(velero) is the built-in one.
    type: str
  hooks:
    description: Exec hooks run in pods before (O(hooks[].pre)) and after (O(hooks[].post)) they are backed up.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the hook spec (unique).
        type: str
        required: true
      included_namespaces:
        description: Namespaces the hook applies to (all when empty).
        type: list
        elements: str
      excluded_namespaces:
        description: Namespaces the hook does not apply to.
        type: list
        elements: str
      included_resources:
        description: Resources the hook applies to.
        type: list
        elements: str
      excluded_resources:
        description: Resources the hook does not apply to.
        type: list
        elements: str
      label_selector:
        description: Only pods matching this selector.
        type: dict
        suboptions: *selector
      pre:
        description: Hooks run before the pod is backed up.
        type: list
        elements: dict
        suboptions: &exec
          exec:
            description: The command to run.
            type: dict
            required: true
            suboptions:
              command:
                description: Command and arguments.
                type: list
                elements: str
                required: true
              container:
                description: Container to run in (the pod's first container when omitted).
                type: str
              on_error:
                description: What Velero does when the command fails.
                type: str
                choices: [Continue, Fail]
              timeout:
                description: How long the command may run (a duration such as V(30s)).
                type: str
      post:
        description: Hooks run after the pod is backed up.
        type: list
        elements: dict
        suboptions: *exec
  ordered_resources:
    description:
      - Back up the named objects of a resource in this order. Keys are resource names
        (plural, e.g. V(pods)); values a list of names (V(namespace/name), or V(name) when cluster-scoped)
        or an already comma-separated string.
    type: dict
  resource_policy:
    description: Name of a ConfigMap holding Velero resource policies.
    type: str
  parallel_files_upload:
    description: Number of files the uploader uploads in parallel (C(uploaderConfig.parallelFilesUpload)).
    type: int
  volume_group_snapshot_label_key:
    description: Label key that groups PVCs into one VolumeGroupSnapshot.
    type: str
  run_now:
    description:
      - Create a Backup from the schedule now, like C(velero backup create --from-schedule <name>). It is
        named C(<name>-<UTC yyyymmddhhmmss>), labelled C(velero.io/schedule-name), and has the schedule's
        template as spec. Always reports a change.
    type: bool
    default: false
  wait:
    description:
      - Wait until the schedule's C(status.phase) is V(Enabled); V(FailedValidation) fails the task with the
        schedule's C(validationErrors). A paused schedule is not validated by Velero, so for it only
        V(FailedValidation) fails.
      - With O(run_now=true), then wait for the Backup to reach a terminal phase; V(Failed),
        V(PartiallyFailed) and V(FailedValidation) fail the task with Velero's reason.
      - Not done in check mode.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for the schedule to be V(Enabled).
    type: int
    default: 120
  run_now_timeout:
    description: Seconds to wait for the Backup created by O(run_now) to finish.
    type: int
    default: 3600
seealso:
  - module: homelab.pi_cluster.velero_schedule_info
  - name: Velero Schedule API type
    description: The Schedule resource this module manages.
    link: https://velero.io/docs/main/api-types/schedule/
"""

EXAMPLES = r"""
- name: Daily backup at 02:00 UTC of every namespace but kube-system, kept 30 days
  homelab.pi_cluster.velero_schedule:
    name: daily
    schedule: "0 2 * * *"
    excluded_namespaces: [kube-system]
    ttl: 720h
    storage_location: default
    wait: true

- name: Weekly full-cluster backup on Sunday 03:00, incl. kube-system and cluster resources, kept 90 days
  homelab.pi_cluster.velero_schedule:
    name: weekly-full
    schedule: "0 3 * * 0"
    include_cluster_resources: true
    ttl: 2160h
    storage_location: default

- name: Back up the database namespace every 6 hours, freezing the filesystem around the snapshot
  homelab.pi_cluster.velero_schedule:
    name: postgres
    schedule: "@every 6h"
    included_namespaces: [postgres]
    ttl: 7d
    hooks:
      - name: fsfreeze
        label_selector:
          match_labels:
            app: postgres
        pre:
          - exec: {container: fsfreeze, command: [/sbin/fsfreeze, --freeze, /var/lib/postgresql], timeout: 30s}
        post:
          - exec: {container: fsfreeze, command: [/sbin/fsfreeze, --unfreeze, /var/lib/postgresql]}

- name: Pause the daily schedule during maintenance
  homelab.pi_cluster.velero_schedule:
    name: daily
    schedule: "0 2 * * *"
    state: paused

- name: Take a backup now from the daily schedule and wait for it to complete
  homelab.pi_cluster.velero_schedule:
    name: daily
    schedule: "0 2 * * *"
    excluded_namespaces: [kube-system]
    ttl: 720h
    run_now: true
    wait: true

- name: Remove a schedule (its backups stay unless it used owner references)
  homelab.pi_cluster.velero_schedule:
    name: postgres
    state: absent
"""

RETURN = r"""
schedule:
  description: The Schedule as it is after the task (as it would be, in check mode); empty when absent.
  returned: always
  type: dict
  sample: {"apiVersion": "velero.io/v1", "kind": "Schedule", "metadata": {"name": "daily", "namespace": "velero"},
           "spec": {"schedule": "0 2 * * *", "template": {"ttl": "720h0m0s"}}, "status": {"phase": "Enabled"}}
patch:
  description: The JSON merge patch sent (or that would be sent) to update an existing schedule.
  returned: when an existing schedule changed
  type: dict
backup:
  description: The Backup created by O(run_now), as last read (after waiting, with its status).
  returned: when O(run_now=true)
  type: dict
  sample: {"metadata": {"name": "daily-20261126020000", "labels": {"velero.io/schedule-name": "daily"}},
           "status": {"phase": "Completed"}}
"""

import time
import traceback
from datetime import datetime, timezone
from typing import Any, Dict, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _velero as velero
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_client import get_client, k8s_argument_spec
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import (
    K8sConflictError,
    K8sError,
    K8sTimeoutError,
    ResourceService,
    apply_merge_patch,
)

KIND = "Schedule"
CONFLICT_ATTEMPTS = 3


class ScheduleManager:
    """Read the schedule, compute what differs, write only that, then wait / run as asked."""

    def __init__(self, module: AnsibleModule, service: ResourceService) -> None:
        self.module = module
        self.params = module.params
        self.service = service
        self.name = self.params["name"]
        self.namespace = self.params["namespace"]
        self.result: Dict[str, Any] = {"changed": False}
        self.before_phase = ""

    def run(self) -> Dict[str, Any]:
        if self.params["state"] == "absent":
            self.absent()
        else:
            current = self.present()
            if self.params["wait"] and not self.module.check_mode:
                current = self.wait_enabled(current)
            self.result["schedule"] = current
            if self.params["run_now"]:
                self.run_backup(current)
        return self.result

    def _diff(self, before: Optional[Dict[str, Any]], after: Optional[Dict[str, Any]]) -> None:
        if self.module._diff:
            self.result["diff"] = {"before": velero.diff_view(before), "after": velero.diff_view(after)}

    def absent(self) -> None:
        before = self.service.delete(velero.API_VERSION, KIND, self.name, self.namespace)
        self.result.update(changed=before is not None, schedule={})
        self._diff(before, None)

    def present(self) -> Dict[str, Any]:
        for _attempt in range(CONFLICT_ATTEMPTS):
            current = self.service.get(velero.API_VERSION, KIND, self.name, self.namespace)
            self.before_phase = velero.schedule_phase(current)
            try:
                if current is None:
                    after = self.service.create(velero.build_schedule(self.params))
                    self.result["changed"] = True
                    self._diff(None, after)
                    return after
                patch = velero.schedule_patch(current, self.params)
                if not patch:
                    self._diff(current, current)
                    return current
                # the resourceVersion makes the server refuse the patch if someone changed the schedule meanwhile
                sent = apply_merge_patch(
                    patch, {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]}}
                )
                after = self.service.patch(velero.API_VERSION, KIND, self.name, self.namespace, sent, current=current)
            except K8sConflictError:
                continue  # created or changed by someone else meanwhile: compare again with theirs
            self.result.update(changed=True, patch=patch)
            self._diff(current, after)
            return after
        raise velero.VeleroError(f"schedule {self.namespace}/{self.name} kept changing under us; try again")

    def wait_enabled(self, current: Dict[str, Any]) -> Dict[str, Any]:
        paused = bool((current.get("spec") or {}).get("paused"))
        # A FailedValidation we saw before our own fix is stale until Velero re-validates; as Velero's
        # status has no observedGeneration, keep waiting for Enabled then and fail only at the timeout.
        stale = self.result["changed"] and self.before_phase == velero.SCHEDULE_PHASE_FAILED_VALIDATION

        def done(obj: Optional[Dict[str, Any]]) -> bool:
            phase = ((obj or {}).get("status") or {}).get("phase")
            if phase == velero.SCHEDULE_PHASE_FAILED_VALIDATION and not stale:
                raise velero.VeleroScheduleInvalid(velero.schedule_validation_failure(obj or {}))
            return obj is not None and (phase == velero.SCHEDULE_PHASE_ENABLED or (paused and not stale))

        if done(current):  # the object we just read or wrote may already say so: no extra request
            return current
        last = [current]

        def describe(obj: Optional[Dict[str, Any]]) -> str:
            last[0] = obj or current
            return f"status.phase is {((obj or {}).get('status') or {}).get('phase') or 'not set'}"

        try:
            found = self.service.wait(
                velero.API_VERSION, KIND, self.name, self.namespace, done, self.params["wait_timeout"], describe
            )
        except K8sTimeoutError:
            if stale and velero.schedule_phase(last[0]) == velero.SCHEDULE_PHASE_FAILED_VALIDATION:
                raise velero.VeleroScheduleInvalid(velero.schedule_validation_failure(last[0])) from None
            raise
        return found or current

    def run_backup(self, schedule: Dict[str, Any]) -> None:
        backup = velero.backup_from_schedule(schedule, datetime.now(timezone.utc))
        for _attempt in range(CONFLICT_ATTEMPTS):
            try:
                backup = self.service.create(backup)
                break
            except K8sConflictError:  # a backup of this schedule was created this very second
                time.sleep(1.0)
                backup = velero.backup_from_schedule(schedule, datetime.now(timezone.utc))
        else:
            raise velero.VeleroError(f"could not find a free name for a backup of {self.name}")
        self.result.update(changed=True, backup=backup)
        if not self.params["wait"] or self.module.check_mode:
            return
        name = backup["metadata"]["name"]
        backup = (
            self.service.wait(
                velero.API_VERSION,
                "Backup",
                name,
                self.namespace,
                lambda o: velero.backup_phase(o) in velero.BACKUP_TERMINAL_PHASES,
                self.params["run_now_timeout"],
                describe=lambda o: f"status.phase is {velero.backup_phase(o) or 'not set'}",
            )
            or backup
        )
        self.result["backup"] = backup
        if velero.backup_phase(backup) in velero.BACKUP_FAILED_PHASES:
            raise velero.VeleroBackupFailed(velero.backup_failure(backup))


def main() -> None:
    module = AnsibleModule(
        argument_spec=k8s_argument_spec(velero.schedule_argument_spec()),
        mutually_exclusive=[("label_selector", "or_label_selectors")],
        supports_check_mode=True,
    )
    manager: Optional[ScheduleManager] = None
    try:
        # all input is validated before the client exists, so bad input sends no request
        velero.normalize_state(module.params)
        velero.validate_options(module.params)
        if module.params["state"] != "absent":
            velero.build_schedule(module.params)
        manager = ScheduleManager(module, ResourceService(get_client(module), check_mode=module.check_mode))
        result = manager.run()
    except velero.VeleroBackupFailed as exc:
        module.fail_json(msg=str(exc), **(manager.result if manager else {}))
    except (velero.VeleroError, K8sError) as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc(), **(manager.result if manager else {}))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
