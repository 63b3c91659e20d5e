# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: k3s_config
short_description: Merge K3s config.yaml dictionaries and reject keys K3s does not know
version_added: 0.1.0
description:
  - Merges a list of dictionaries of K3s configuration keys left to right (a later key replaces an
    earlier one, as K3s does across C(config.yaml) and C(config.yaml.d/*.yaml)) and returns the result
    with sorted keys, so the rendered file never changes order between runs.
  - Every key must be a flag of C(k3s server) or C(k3s agent) (per O(node_type)) of the K3s v1.31
    line, without the leading C(--); a trailing C(+) (append to a list) is accepted. The error names
    each unknown key, the layer it came from and the closest known flag.
  - C(token), C(agent-token) and C(vpn-auth) are refused; secrets go to 0600 files referenced by the
    matching C(*-file) key, never into C(config.yaml).
author:
  - homelab.pi_cluster maintainers (@homelab)
options:
  _input:
    description: The dictionaries to merge, lowest precedence first. C(null) entries are skipped.
    type: list
    elements: dict
    required: true
  node_type:
    description: Which flags are allowed.
    type: str
    choices: [server, agent]
    required: true
  names:
    description: A label for each layer (for example the variable it came from), used in errors.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Build the config of a server
  ansible.builtin.set_fact:
    _k3s_config: >-
      {{ [_k3s_role_config, k3s_config, k3s_server_config]
         | homelab.pi_cluster.k3s_config('server', names=['role', 'k3s_config', 'k3s_server_config']) }}
"""

RETURN = r"""
_value:
  description: The merged configuration, keys sorted.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.pi_cluster.plugins.plugin_utils._k3s_config import K3sConfigError, merge


def k3s_config(layers, node_type, names=None):
    if not isinstance(layers, list):
        raise AnsibleFilterError(f"k3s_config expects a list of dictionaries, got {type(layers).__name__}")
    try:
        return merge(layers, node_type, names or ())
    except K3sConfigError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"k3s_config": k3s_config}
