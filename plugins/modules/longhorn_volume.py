#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.pi_cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: longhorn_volume
short_description: Manage Longhorn volumes, grow them safely and give them a PV and PVC
version_added: 0.1.0
description:
  - Creates, updates, grows and deletes Longhorn C(Volume) objects (C(longhorn.io/v1beta2)) through the
    Kubernetes API.
  - Compares only the options you set; the many fields Longhorn's webhook fills in are left alone, so a
    re-run with the same options makes one GET and no write.
  - Sizes are accepted as Kubernetes quantities (C(10Gi), C(512Mi), C(1.5Gi), C(1G)) or bytes and stored as
    Longhorn does, in bytes rounded up to a multiple of 2 MiB; C(10Gi) and C(10737418240) are the same size.
  - Growing a volume that a PVC is bound to patches the PVC's requested storage (Longhorn rejects a direct
    Volume resize then); otherwise the Volume's C(spec.size) is patched. Shrinking is refused.
  - Fields Longhorn fixes at creation (O(encrypted), O(data_engine), O(backing_image), O(data_source),
    O(from_backup), O(backup_compression_method)) are never changed; a different value fails the task
    with the field's name and how to proceed, before anything is written.
  - O(pv) and O(pvc) create the PersistentVolume and PersistentVolumeClaim for the volume the way Longhorn's
    C(Create PV/PVC) action does.
author:
  - homelab.pi_cluster maintainers (@homelab-pi-cluster)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.pi_cluster.k8s
attributes:
  check_mode:
    support: full
    description: Predicts every create, patch and delete without sending a write.
  diff_mode:
    support: full
    description: Shows the managed fields, recurring-job labels, PV and PVC before and after.
options:
  name:
    description: Volume name (lower-case letters, digits and C(-), at most 40 characters as in Longhorn).
    type: str
    required: true
  namespace:
    description: Namespace Longhorn runs in.
    type: str
    default: longhorn-system
  state:
    description:
      - V(present) creates or updates the volume; V(absent) deletes it.
      - V(absent) refuses while a PVC is bound to the volume, unless O(force=true).
    type: str
    choices: [present, absent]
    default: present
  size:
    description:
      - Nominal size, a Kubernetes quantity (V(10Gi), V(512Mi), V(1.5Gi), V(1G)) or a number of bytes.
      - Required to create a volume unless O(from_backup) is set (Longhorn then takes the backup's size).
      - Rounded up to 2 MiB. A larger size than the volume has grows it; a smaller one fails.
    type: raw
  number_of_replicas:
    description: Replica count, 1 to 20 (Longhorn's default setting applies when omitted on create).
    type: int
  data_locality:
    description: Replica locality; V(strict-local) needs exactly one replica.
    type: str
    choices: [disabled, best-effort, strict-local]
  access_mode:
    description: V(rwo) ReadWriteOnce, V(rwop) ReadWriteOncePod, V(rwx) ReadWriteMany (via a share manager).
    type: str
    choices: [rwo, rwop, rwx]
  frontend:
    description: Frontend; new volumes get V(blockdev) when omitted, as from Longhorn's UI and CSI driver.
    type: str
    choices: [blockdev, iscsi, nvmf, ublk]
  data_engine:
    description: Data engine, fixed at creation.
    type: str
    choices: [v1, v2]
  encrypted:
    description: Encrypt the volume (LUKS2; needs a size above 16Mi). Fixed at creation.
    type: bool
  node_selector:
    description: Node tags replicas may be scheduled on (compared as a set).
    type: list
    elements: str
  disk_selector:
    description: Disk tags replicas may be scheduled on (compared as a set).
    type: list
    elements: str
  stale_replica_timeout:
    description: Minutes before a failed replica is cleaned up.
    type: int
  replica_auto_balance:
    description: Replica auto-balance for this volume (V(ignored) follows the global setting).
    type: str
    choices: [ignored, disabled, least-effort, best-effort]
  snapshot_data_integrity:
    description: Snapshot checksum mode (V(ignored) follows the global setting).
    type: str
    choices: [ignored, disabled, enabled, fast-check]
  backing_image:
    description: Backing image name. Fixed at creation.
    type: str
  data_source:
    description: Clone source, V(vol://<volume>) or V(snap://<volume>/<snapshot>). Only read at creation.
    type: str
  from_backup:
    description: Backup URL to restore from (as shown on Longhorn's Backup page). Only read at creation.
    type: str
  backup_compression_method:
    description: Compression of this volume's backups. Fixed at creation.
    type: str
    choices: [none, lz4, gzip]
  recurring_jobs:
    description:
      - Recurring jobs for the volume, as C(recurring-job.longhorn.io/<name>=enabled) labels.
      - Exclusive when given; other job labels are removed. Omit to leave job labels alone.
    type: list
    elements: str
  recurring_job_groups:
    description:
      - Recurring job groups, as C(recurring-job-group.longhorn.io/<name>=enabled) labels.
      - Exclusive when given. When both lists end up empty Longhorn puts the volume into the V(default)
        group, and the module keeps that label rather than removing it on every run.
    type: list
    elements: str
  pv:
    description:
      - Create a PersistentVolume for the volume as Longhorn's C(Create PV/PVC) does (CSI driver
        C(driver.longhorn.io), C(volumeHandle) the volume name, reclaim policy C(Retain)).
      - An existing PV of that name must be this volume's; its fs type and storage class cannot change.
    type: dict
    suboptions:
      name:
        description: PV name; defaults to the PV Longhorn already records for the volume, else the volume name.
        type: str
      fs_type:
        description:
          - Filesystem the CSI driver formats the volume with (V(xfs) needs 300Mi).
          - A new PV gets V(ext4) when omitted; an existing PV is only compared when this is set.
        type: str
        choices: [ext4, xfs]
      storage_class:
        description:
          - StorageClass name written to the PV (and the PVC).
          - A new PV gets V(longhorn-static) (Longhorn's static class) when omitted; an existing PV is only
            compared when this is set.
        type: str
  pvc:
    description:
      - Create a PersistentVolumeClaim bound to the volume's PV (created as by O(pv) when missing).
      - An existing PVC of that name must point to the volume's PV.
    type: dict
    suboptions:
      name:
        description: PVC name; defaults to the volume name.
        type: str
      namespace:
        description: Namespace of the PVC.
        type: str
        required: true
  force:
    description: With O(state=absent), delete the volume even though a PVC is bound to it.
    type: bool
    default: false
  wait:
    description:
      - Wait until the volume is settled (see O(wait_state)), healthy when attached, and (after a grow
        through a PVC) has its new size. A detached volume reports robustness C(unknown) in Longhorn,
        which is accepted.
      - A C(faulted) volume fails at once; a timeout fails with the last robustness and conditions.
      - With O(state=absent), wait until the volume is gone.
    type: bool
    default: false
  wait_state:
    description: The C(status.state) to wait for; any of V(attached) or V(detached) when omitted.
    type: str
    choices: [attached, detached]
  wait_timeout:
    description: Seconds to wait.
    type: int
    default: 300
notes:
  - A bound PVC is found the way Longhorn's webhook finds it, from the volume's
    C(status.kubernetesStatus) (C(pvcName) set, C(lastPVCRefAt) empty), at no extra request.
  - Longhorn only accepts some changes on a detached volume (for example moving to or from
    V(strict-local)); its webhook's answer is returned as the error.
  - Include this module in C(module_defaults) through the C(homelab.pi_cluster.k8s) action group.
seealso:
  - module: kubernetes.core.k8s
"""

EXAMPLES = r"""
- name: A 10 GiB volume with two replicas and the daily backup job
  homelab.pi_cluster.longhorn_volume:
    name: postgres-data
    size: 10Gi
    number_of_replicas: 2
    data_locality: best-effort
    recurring_jobs: [daily-backup]
    wait: true

- name: Grow it (through its PVC when one is bound)
  homelab.pi_cluster.longhorn_volume:
    name: postgres-data
    size: 20Gi

- name: Give an existing volume a PV and a PVC, as Longhorn's UI does
  homelab.pi_cluster.longhorn_volume:
    name: postgres-data
    pv:
      fs_type: ext4
    pvc:
      name: postgres-data
      namespace: databases

- name: Restore a volume from a backup
  homelab.pi_cluster.longhorn_volume:
    name: postgres-restored
    from_backup: "s3://backups@us-east-1/?backup=backup-0a1b2c3d&volume=postgres-data"
    number_of_replicas: 2
    wait: true
    wait_timeout: 1800

- name: Delete a volume that is no longer claimed
  homelab.pi_cluster.longhorn_volume:
    name: scratch
    state: absent
"""

RETURN = r"""
volume:
  description: The volume after the task (predicted in check mode); empty after a delete.
  returned: always
  type: dict
  contains:
    name: {description: Volume name., type: str, returned: success}
    namespace: {description: Namespace., type: str, returned: success}
    size: {description: "C(spec.size) in bytes.", type: int, returned: success, sample: 10737418240}
    size_quantity: {description: The size as a quantity., type: str, returned: success, sample: 10Gi}
    spec: {description: "The full C(spec), defaults from Longhorn included.", type: dict, returned: success}
    recurring_jobs: {description: Recurring jobs from the labels., type: list, elements: str, returned: success}
    recurring_job_groups: {description: Recurring job groups., type: list, elements: str, returned: success}
    state: {description: "C(status.state): creating, attached, detached, ...", type: str, returned: success}
    robustness: {description: "C(status.robustness): healthy, degraded, faulted, unknown.", type: str,
                 returned: success}
    conditions: {description: "C(status.conditions).", type: list, elements: dict, returned: success}
    kubernetes_status: {description: "C(status.kubernetesStatus): PV, PVC and workloads.", type: dict,
                        returned: success}
    actual_size: {description: Bytes used on each replica., type: int, returned: success}
actions:
  description: What was done (or would be done in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["patch PersistentVolumeClaim databases/postgres-data to request 20Gi"]
pv:
  description: Name of the volume's PersistentVolume when O(pv) or O(pvc) was given.
  returned: when O(pv) or O(pvc) is set
  type: str
pvc:
  description: C(namespace/name) of the PersistentVolumeClaim when O(pvc) was given.
  returned: when O(pvc) is set
  type: str
"""

import traceback
from typing import Any, Dict, List, Optional, Tuple

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _longhorn as lh
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_client import get_client, k8s_argument_spec
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import (
    K8sConflictError,
    K8sError,
    ResourceService,
)

PVC_KIND = ("v1", "PersistentVolumeClaim")
PV_KIND = ("v1", "PersistentVolume")


class VolumeManager:
    """Read the volume, work out the wanted state, write only the differences."""

    def __init__(self, service: ResourceService, params: Dict[str, Any]) -> None:
        self.service = service
        self.p = params
        self.check_mode = service.check_mode
        self.actions: List[str] = []
        self.result: Dict[str, Any] = {}

    def get_volume(self) -> Optional[Dict[str, Any]]:
        return self.service.get(lh.API_VERSION, lh.KIND, self.p["name"], self.p["namespace"])

    def run(self) -> Dict[str, Any]:
        current = self.get_volume()
        after = self.absent(current) if self.p["state"] == "absent" else self.present(current)
        before_view = lh.diff_view(current, self.p)
        after_view = lh.diff_view(after, self.p)
        for key in ("pv", "pvc"):
            if key in self.result:
                before_view[key], after_view[key] = self.result.pop("_before_" + key), self.result[key]
        self.result.update(
            changed=bool(self.actions),
            actions=self.actions,
            volume=lh.summary(after),
            diff={"before": before_view, "after": after_view},
        )
        return self.result

    # -- present -------------------------------------------------------------------

    def present(self, current: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        name, ns = self.p["name"], self.p["namespace"]
        plan = lh.plan_update(current, self.p) if current is not None else None  # raises before any write
        claims = None
        if self.p.get("pv") is not None or self.p.get("pvc") is not None:
            claims = self.inspect_pv_pvc(current)  # reads and checks only: a conflict fails before writes
        volume = None
        if current is None:
            try:
                volume = self.service.create(lh.create_body(self.p))
                self.actions.append(f"create Volume {ns}/{name}")
            except K8sConflictError:  # created meanwhile (409 AlreadyExists): update that one instead
                current = self.get_volume()
                if current is None:
                    raise
                plan = lh.plan_update(current, self.p)
        if volume is None:
            volume = self.update(current or {}, plan or {"spec": {}, "labels": {}, "grow_to": None})
        if claims is not None:
            self.write_pv_pvc(volume, *claims)
        if self.p["wait"] and not self.check_mode:
            volume = self.wait_ready()
        return volume

    def update(self, current: Dict[str, Any], plan: Dict[str, Any]) -> Dict[str, Any]:
        name, ns = self.p["name"], self.p["namespace"]
        size_on_volume = True
        if plan["grow_to"] is not None:
            size_on_volume = not self.grow_through_pvc(current, plan["grow_to"])
        patch = lh.volume_patch(plan, size_on_volume)
        if not patch:
            return current
        self.actions.append(f"patch Volume {ns}/{name}: {', '.join(sorted(_patched_fields(patch)))}")
        return self.service.patch(lh.API_VERSION, lh.KIND, name, ns, patch, "merge", current=current)

    def grow_through_pvc(self, volume: Dict[str, Any], size: int) -> bool:
        """Grow via the bound PVC (True), or leave it to the Volume patch (False)."""
        claim = lh.bound_pvc(volume)
        if claim is None:
            return False
        pvc = self.service.get(*PVC_KIND, claim[1], claim[0])
        if pvc is None:  # Longhorn's status is stale: no PVC to go through
            return False
        if lh.pvc_request(pvc) < size:
            quantity = lh.format_quantity(size)
            patch = {"spec": {"resources": {"requests": {"storage": quantity}}}}
            self.service.patch(*PVC_KIND, claim[1], claim[0], patch, "merge", current=pvc)
            self.actions.append(f"patch PersistentVolumeClaim {claim[0]}/{claim[1]} to request {quantity}")
        return True  # requested already: the CSI resizer is on it

    def inspect_pv_pvc(self, volume: Optional[Dict[str, Any]]) -> Tuple[str, Optional[Dict[str, Any]], Any]:
        """Read the PV and PVC the task asks for and check they are this volume's; write nothing."""
        volume = volume or {"metadata": {"name": self.p["name"]}}
        pv_opts = self.p.get("pv") or {}
        pv_name = lh.pv_name_for(volume, pv_opts)
        recorded = ((volume.get("status") or {}).get("kubernetesStatus") or {}).get("pvName")
        if recorded and recorded != pv_name:
            raise lh.ConflictingObjectError(
                f"pv.name: volume {self.p['name']} already has PV {recorded} (Longhorn allows one); "
                f"drop pv.name or set it to {recorded}",
                "pv.name",
            )
        pv = self.service.get(*PV_KIND, pv_name)
        if pv is not None:
            lh.check_existing_pv(pv, self.p["name"], self.p.get("pv"))
        elif volume.get("spec") and self.p.get("size") is None:
            lh.pv_manifest(volume, pv_opts)  # e.g. xfs on a volume too small for it
        self.result["_before_pv"], self.result["pv"] = (pv_name if pv else None), pv_name
        pvc_opts = self.p.get("pvc")
        if pvc_opts is None:
            return pv_name, pv, None
        pvc_ns, pvc_name = pvc_opts["namespace"], pvc_opts.get("name") or self.p["name"]
        pvc = self.service.get(*PVC_KIND, pvc_name, pvc_ns)
        ref = f"{pvc_ns}/{pvc_name}"
        self.result["_before_pvc"], self.result["pvc"] = (ref if pvc else None), ref
        if pvc is not None:
            lh.check_existing_pvc(pvc, pv_name)
        elif pv is not None:
            claim = (pv.get("spec") or {}).get("claimRef") or {}
            claimed_by = (claim.get("namespace"), claim.get("name"))
            if (pv.get("status") or {}).get("phase") == "Bound" and claimed_by != (pvc_ns, pvc_name):
                raise lh.ConflictingObjectError(
                    f"pvc: PV {pv_name} is bound to {claimed_by[0]}/{claimed_by[1]}; "
                    "use that PVC (pvc.name/pvc.namespace) or delete it first",
                    "pvc",
                )
        return pv_name, pv, (pvc_ns, pvc_name, pvc)

    def write_pv_pvc(self, volume: Dict[str, Any], pv_name: str, pv: Optional[Dict[str, Any]], pvc: Any) -> None:
        """Create what is missing, as Longhorn's "Create PV/PVC" does."""
        if pv is None:
            pv = self.service.create(lh.pv_manifest(volume, self.p.get("pv")))
            self.actions.append(f"create PersistentVolume {pv_name}")
        if pvc is None or pvc[2] is not None:
            return
        pvc_ns, pvc_name = pvc[0], pvc[1]
        if (pv.get("spec") or {}).get("claimRef"):  # Released: Longhorn clears the stale claim so the PV can bind
            self.service.patch(*PV_KIND, pv_name, None, {"spec": {"claimRef": None}}, "merge", current=pv)
            self.actions.append(f"clear the old claimRef of PersistentVolume {pv_name}")
        self.service.create(lh.pvc_manifest(volume, pv, {"namespace": pvc_ns, "name": pvc_name}))
        self.actions.append(f"create PersistentVolumeClaim {pvc_ns}/{pvc_name}")

    def wait_ready(self) -> Dict[str, Any]:
        def ready(obj: Optional[Dict[str, Any]]) -> bool:
            return obj is not None and lh.volume_ready(obj, self.p.get("wait_state"), self.p.get("size"))

        volume = self.service.wait(
            lh.API_VERSION,
            lh.KIND,
            self.p["name"],
            self.p["namespace"],
            ready,
            self.p["wait_timeout"],
            describe=lambda obj: lh.describe_status(obj) if obj else "absent",
        )
        return volume or {}

    # -- absent --------------------------------------------------------------------

    def absent(self, current: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        name, ns = self.p["name"], self.p["namespace"]
        if current is None:
            return None
        claim = lh.bound_pvc(current)
        if claim and not self.p["force"]:
            raise lh.PVCBoundError(
                f"state: volume {name} is in use by PersistentVolumeClaim {claim[0]}/{claim[1]}; delete the "
                "PVC (and its workloads) first, or set force=true to delete the volume anyway",
                "state",
            )
        if not (current.get("metadata") or {}).get("deletionTimestamp"):
            self.service.delete(lh.API_VERSION, lh.KIND, name, ns)
            self.actions.append(f"delete Volume {ns}/{name}")
        if self.p["wait"] and not self.check_mode:
            self.service.wait(lh.API_VERSION, lh.KIND, name, ns, lambda obj: obj is None, self.p["wait_timeout"])
        return None


def _patched_fields(patch: Dict[str, Any]) -> List[str]:
    fields = list((patch.get("spec") or {}).keys())
    if (patch.get("metadata") or {}).get("labels"):
        fields.append("recurring-job labels")
    return fields


def argument_spec() -> Dict[str, Any]:
    return k8s_argument_spec(
        dict(
            name=dict(type="str", required=True),
            namespace=dict(type="str", default=lh.DEFAULT_NAMESPACE),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            size=dict(type="raw"),
            number_of_replicas=dict(type="int"),
            data_locality=dict(type="str", choices=list(lh.CHOICES["data_locality"])),
            access_mode=dict(type="str", choices=list(lh.CHOICES["access_mode"])),
            frontend=dict(type="str", choices=list(lh.CHOICES["frontend"])),
            data_engine=dict(type="str", choices=list(lh.CHOICES["data_engine"])),
            encrypted=dict(type="bool"),
            node_selector=dict(type="list", elements="str"),
            disk_selector=dict(type="list", elements="str"),
            stale_replica_timeout=dict(type="int"),
            replica_auto_balance=dict(type="str", choices=list(lh.CHOICES["replica_auto_balance"])),
            snapshot_data_integrity=dict(type="str", choices=list(lh.CHOICES["snapshot_data_integrity"])),
            backing_image=dict(type="str"),
            data_source=dict(type="str"),
            from_backup=dict(type="str"),
            backup_compression_method=dict(type="str", choices=list(lh.CHOICES["backup_compression_method"])),
            recurring_jobs=dict(type="list", elements="str"),
            recurring_job_groups=dict(type="list", elements="str"),
            pv=dict(
                type="dict",
                options=dict(
                    name=dict(type="str"),
                    fs_type=dict(type="str", choices=list(lh.CHOICES["fs_type"])),
                    storage_class=dict(type="str"),
                ),
            ),
            pvc=dict(
                type="dict",
                options=dict(name=dict(type="str"), namespace=dict(type="str", required=True)),
            ),
            force=dict(type="bool", default=False),
            wait=dict(type="bool", default=False),
            wait_state=dict(type="str", choices=["attached", "detached"]),
            wait_timeout=dict(type="int", default=300),
        )
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=[("from_backup", "data_source")],
    )
    try:
        params = lh.validate_params(module.params)  # before any request: bad input never writes
    except lh.LonghornError as exc:
        module.fail_json(msg=str(exc), field=exc.field, changed=False)
    service = ResourceService(get_client(module), check_mode=module.check_mode)
    manager = VolumeManager(service, params)
    try:
        result = manager.run()
    except lh.LonghornError as exc:
        module.fail_json(
            msg=str(exc),
            field=exc.field,
            changed=bool(manager.actions),
            actions=manager.actions,
            exception=traceback.format_exc(),
        )
    except K8sError as exc:
        module.fail_json(
            msg=str(exc),
            status=exc.status,
            reason=exc.reason,
            causes=exc.causes,
            changed=bool(manager.actions),
            actions=manager.actions,
            exception=traceback.format_exc(),
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
