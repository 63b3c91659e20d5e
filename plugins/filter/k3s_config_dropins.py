# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: k3s_config_dropins
short_description: Validate K3s config.yaml.d drop-ins and reject keys K3s does not know
version_added: 0.1.0
description:
  - Takes a dictionary of drop-in file name (without C(.yaml)) to a dictionary of K3s configuration keys
    and returns it with every drop-in validated as P(homelab.pi_cluster.k3s_config#filter) validates a layer,
    keys sorted.
  - File names may hold letters, digits, C(.), C(_) and C(-), and must not end in C(.yaml) or C(.yml).
author:
  - homelab.pi_cluster maintainers (@homelab)
options:
  _input:
    description: Drop-in name to configuration dictionary.
    type: dict
    required: true
  node_type:
    description: Which flags are allowed.
    type: str
    choices: [server, agent]
    required: true
"""

EXAMPLES = r"""
- name: Write the drop-ins
  ansible.builtin.copy:
    content: "{{ item.value | to_nice_yaml }}"
    dest: "/etc/rancher/k3s/config.yaml.d/{{ item.key }}.yaml"
    mode: "0600"
  loop: "{{ k3s_config_dropins | homelab.pi_cluster.k3s_config_dropins('agent') | dict2items }}"
"""

RETURN = r"""
_value:
  description: The drop-ins, each configuration with sorted keys.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.pi_cluster.plugins.plugin_utils._k3s_config import K3sConfigError, dropins


def k3s_config_dropins(files, node_type):
    try:
        return dropins(files, node_type)
    except K3sConfigError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"k3s_config_dropins": k3s_config_dropins}
