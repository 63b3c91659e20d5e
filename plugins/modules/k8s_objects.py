#!/usr/bin/python
# Copyright: homelab.pi_cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_objects
short_description: Apply a list of Kubernetes objects, writing only those that differ
version_added: 0.1.0
description:
  - Creates, updates or deletes a list of Kubernetes objects of any kind (Namespaces, K3s C(HelmChart) objects,
    StorageClasses, Secrets, Longhorn and Velero custom resources, ...) in one task.
  - Each object is read with one GET; a missing object is created, an existing one is sent a JSON merge
    patch only when a field you give differs from the live object, with a C(metadata.resourceVersion)
    precondition (a conflicting concurrent write makes it re-read and compare again).
    A re-run with the same definitions therefore makes one GET per object and no write.
  - Fields you do not give are not managed; mappings are compared key by key, lists as a whole
    (same length, items compared the same way). A V(null) value removes the key.
    Server-owned fields (C(status), C(metadata.resourceVersion), C(uid), ...) are never compared.
  - Objects are applied in the order given, so put Namespaces and the HelmCharts that install CRDs first.
    When a kind is not served yet (its CRD is being installed by a controller), O(api_wait_timeout) makes
    the task re-discover it every 2 seconds until it is served instead of failing.
  - For a C(v1) C(Secret), C(stringData) is compared as the base64 C(data) the server returns, so an
    unchanged Secret is not rewritten. Values of C(data) and C(stringData) never appear in the result,
    the diff or messages.
author:
  - homelab.pi_cluster maintainers (@homelab-pi-cluster)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.pi_cluster.k8s
attributes:
  check_mode:
    description: >-
      Reads every object and predicts the creates, patches and deletes without writing. Objects in a
      Namespace the same task would create are predicted as created; an object whose kind is not served
      yet is reported as would-be-created with a warning.
    support: full
  diff_mode:
    description: >-
      One before/after per object with only the fields given in its definition; Secret values are shown
      as C(********) (C(******** (changed)) where a value differs).
    support: full
notes:
  - O(state=absent) deletes without waiting for the objects to disappear (a Namespace terminates in
    the background). Objects that do not exist, are already being deleted, or whose kind is not served
    are left alone (V(unchanged)).
  - A namespace given for a cluster-scoped kind is ignored, as the API server ignores it.
  - C(metadata.generateName) is not supported; every object needs a C(metadata.name).
options:
  definitions:
    description:
      - The objects, each a full Kubernetes object with C(apiVersion), C(kind), C(metadata.name) and,
        for namespaced kinds, C(metadata.namespace).
      - >-
        Every definition is checked before any request is sent; an error names the item index and the
        field (for example C(definitions[2]: metadata.name is required)). The same object may be given
        only once.
      - For O(state=absent) only the identity (C(apiVersion), C(kind), C(metadata)) is used.
    type: list
    elements: dict
    required: true
  state:
    description:
      - V(present) creates missing objects and patches those that differ, in the given order.
      - V(absent) deletes the objects that exist, in reverse order.
    type: str
    choices: [present, absent]
    default: present
  api_wait_timeout:
    description:
      - How many seconds to wait, per object, for its kind to be served when it is not (a CRD installed
        after the HelmChart that ships it was written earlier in the list).
      - V(0) fails at once with a message naming the kind and the object.
      - Not used in check mode, which reports such objects as would-be-created with a warning.
    type: int
    default: 0
seealso:
  - module: kubernetes.core.k8s
    description: Applies any object too, but patches every object on every run.
"""

EXAMPLES = r"""
- name: Install Longhorn through the K3s Helm controller and configure it in one task
  homelab.pi_cluster.k8s_objects:
    api_wait_timeout: 300
    definitions:
      - apiVersion: v1
        kind: Namespace
        metadata:
          name: longhorn-system
      - apiVersion: helm.cattle.io/v1
        kind: HelmChart
        metadata:
          name: longhorn
          namespace: kube-system
        spec:
          repo: https://charts.longhorn.io
          chart: longhorn
          version: 1.7.2
          targetNamespace: longhorn-system
      - apiVersion: longhorn.io/v1beta2
        kind: RecurringJob
        metadata:
          name: daily-snapshot
          namespace: longhorn-system
        spec:
          cron: "0 3 * * *"
          task: snapshot
          groups: [default]
          retain: 7
          concurrency: 2

- name: A backup credential (values never shown, unchanged Secrets not rewritten)
  homelab.pi_cluster.k8s_objects:
    definitions:
      - apiVersion: v1
        kind: Secret
        metadata:
          name: velero-credentials
          namespace: velero
        type: Opaque
        stringData:
          cloud: "{{ velero_cloud_credentials }}"

- name: Remove objects (deleted in reverse order; missing ones are fine)
  homelab.pi_cluster.k8s_objects:
    state: absent
    definitions:
      - apiVersion: v1
        kind: Namespace
        metadata:
          name: demo
      - apiVersion: v1
        kind: ConfigMap
        metadata:
          name: demo-settings
          namespace: demo
"""

RETURN = r"""
objects:
  description: One entry per definition (in the order processed; reverse order for O(state=absent)).
  returned: always
  type: list
  elements: dict
  contains:
    api_version:
      description: The object's C(apiVersion).
      type: str
      sample: longhorn.io/v1beta2
    kind:
      description: The object's kind.
      type: str
      sample: RecurringJob
    name:
      description: The object's name.
      type: str
      sample: daily-snapshot
    namespace:
      description: The object's namespace; V(null) for cluster-scoped kinds.
      type: str
      sample: longhorn-system
    action:
      description: What was done (what would be done, in check mode).
      type: str
      choices: [created, patched, deleted, unchanged]
      sample: patched
    status:
      description:
        - The object's C(status) as the server returned it on the read or the write, for example a
          BackupStorageLocation's C(phase), so a play can check it without another request.
        - Only for objects that have one; never for Secrets or for creates predicted in check mode.
      type: dict
      returned: when the object has a status
      sample: {phase: Available}
  sample:
    - {api_version: v1, kind: Namespace, name: longhorn-system, namespace: null, action: unchanged}
    - {api_version: longhorn.io/v1beta2, kind: RecurringJob, name: daily-snapshot, namespace: longhorn-system,
       action: patched}
"""

import traceback
from typing import Any, Dict, List, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _k8s_objects as objects
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_client import get_client, k8s_argument_spec
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import K8sError, ResourceService


def main() -> None:
    module = AnsibleModule(argument_spec=k8s_argument_spec(objects.argument_spec()), supports_check_mode=True)
    params = module.params
    # before anything else (a failure message included), so no Secret value is ever shown
    module.no_log_values.update(objects.secret_values(params["definitions"]))
    applier: Optional[objects.ObjectsApplier] = None
    result: Dict[str, Any] = {"changed": False, "objects": []}
    try:
        # all input is validated before the client exists, so bad input sends no request
        if params["api_wait_timeout"] < 0:
            raise objects.K8sObjectsInputError("api_wait_timeout must be 0 or more seconds")
        definitions = objects.validate_definitions(params["definitions"])
        service = ResourceService(get_client(module), check_mode=module.check_mode)
        applier = objects.ObjectsApplier(service, params["api_wait_timeout"], warn=module.warn)
        if params["state"] == "absent":
            applier.absent(definitions)
        else:
            applier.present(definitions)
    except (objects.K8sObjectsError, K8sError) as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc(), **_result(module, applier, result))
    module.exit_json(**_result(module, applier, result))


def _result(module: AnsibleModule, applier: Optional[objects.ObjectsApplier], result: Dict[str, Any]) -> Dict[str, Any]:
    """``changed``, ``objects`` (and ``diff``) of what was done so far."""
    if applier is None:
        return result
    out: Dict[str, Any] = {"changed": applier.changed, "objects": [o.entry() for o in applier.outcomes]}
    if module._diff:
        diffs: List[Dict[str, Any]] = [o.diff() for o in applier.outcomes]
        out["diff"] = diffs
    return out


if __name__ == "__main__":
    main()
