#!/usr/bin/python
# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kubeconfig_merge
short_description: Merge a cluster's kubeconfig into a kubeconfig file as a named context
version_added: 0.1.0
description:
  - Adds the current context of O(kubeconfig) (for example the C(/etc/rancher/k3s/k3s.yaml) a K3s server
    writes, read with M(ansible.builtin.slurp)) to the kubeconfig file O(path) as a cluster, a user and a
    context all called O(name), with the cluster's server URL replaced by O(server).
  - Entries of O(path) with other names are kept as they are; entries called O(name) are replaced in place.
    The file is written only when the merged content differs (compared as data, not as text), atomically,
    with mode O(mode). A missing file (and its directory, mode 0700) is created.
  - Usually run on the controller (C(delegate_to=localhost), C(run_once=true)).
author:
  - homelab.pi_cluster maintainers (@homelab)
options:
  path:
    description: The kubeconfig file to merge into, for example C(~/.kube/config).
    type: path
    required: true
  kubeconfig:
    description:
      - The kubeconfig to take the context from, as YAML text. It holds credentials and is never logged.
    type: str
    required: true
  name:
    description: Name of the cluster, user and context written to O(path).
    type: str
    required: true
  server:
    description:
      - Server URL for the cluster, replacing the source's (K3s writes C(https://127.0.0.1:6443)).
      - Omit to keep the source's URL.
    type: str
  set_current_context:
    description:
      - Make O(name) the current context. When V(false), it still becomes the current context of a file
        that has none.
    type: bool
    default: false
  mode:
    description: File mode of O(path).
    type: raw
    default: "0600"
attributes:
  check_mode:
    description: Can run in check mode and predict C(changed) without changing anything.
    support: full
  diff_mode:
    description: Returns details on what has changed (or would change in check mode).
    support: full
    details: The diff lists context names, clusters, users and server URLs, never credentials.
notes:
  - Comments and formatting of an existing O(path) are not kept when it is rewritten.
"""

EXAMPLES = r"""
- name: Read the kubeconfig K3s wrote
  ansible.builtin.slurp:
    src: /etc/rancher/k3s/k3s.yaml
  register: __k3s_kubeconfig
  no_log: true

- name: Merge it into ~/.kube/config as context pi-cluster
  homelab.pi_cluster.kubeconfig_merge:
    path: ~/.kube/config
    kubeconfig: "{{ __k3s_kubeconfig.content | b64decode }}"
    name: pi-cluster
    server: https://192.168.1.240:6443
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
path:
  description: The kubeconfig file.
  returned: always
  type: str
contexts:
  description: Names of all contexts in O(path) after the merge.
  returned: always
  type: list
  elements: str
  sample: [home-lab, pi-cluster]
current_context:
  description: The current context of O(path) after the merge.
  returned: always
  type: str
"""

import os
import tempfile
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.homelab.pi_cluster.plugins.module_utils._kubeconfig import (
    KubeconfigError,
    merge,
    summary,
)

YAML_IMPORT_ERROR = None
try:
    import yaml
except ImportError:
    YAML_IMPORT_ERROR = traceback.format_exc()


def _load(text, what):
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"{what} is not valid YAML: {exc}") from exc


def _write(module, path, config):
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".kubeconfig-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump(config, handle, default_flow_style=False, sort_keys=False)
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def run(module):
    params = module.params
    path = params["path"]
    text = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    existing = _load(text, f"{path}")
    merged = merge(
        existing,
        _load(params["kubeconfig"], "the kubeconfig option"),
        params["name"],
        server=params["server"],
        set_current_context=params["set_current_context"],
    )
    changed = merged != existing
    if changed and not module.check_mode:
        _write(module, path, merged)
    file_args = module.load_file_common_arguments({"path": path, "mode": params["mode"]})
    if os.path.exists(path):
        changed = module.set_fs_attributes_if_different(file_args, changed)
    result = {
        "changed": changed,
        "path": path,
        "contexts": [entry["name"] for entry in merged.get("contexts") or []],
        "current_context": merged.get("current-context", ""),
    }
    if module._diff:
        result["diff"] = {
            "before_header": path,
            "after_header": path,
            "before": summary(existing) if existing else "",
            "after": summary(merged),
        }
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "kubeconfig": {"type": "str", "required": True, "no_log": True},
            "name": {"type": "str", "required": True},
            "server": {"type": "str"},
            "set_current_context": {"type": "bool", "default": False},
            "mode": {"type": "raw", "default": "0600"},
        },
        supports_check_mode=True,
    )
    if YAML_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("PyYAML"), exception=YAML_IMPORT_ERROR)
    try:
        module.exit_json(**run(module))
    except KubeconfigError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())
    except OSError as exc:
        module.fail_json(msg=f"cannot update {module.params['path']}: {exc}", exception=traceback.format_exc())


if __name__ == "__main__":
    main()
