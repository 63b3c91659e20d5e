#!/usr/bin/python
# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation only: the work is done by the action plugin of the same name (plugins/action/vault_keys.py).

from __future__ import annotations

DOCUMENTATION = r"""
module: vault_keys
short_description: Read and write keys of an ansible-vault encrypted vars file on the controller
version_added: 0.1.0
description:
  - Reads, sets and removes top-level keys of an ansible-vault encrypted YAML vars file on the
    controller, using the vault secrets the running C(ansible-playbook) already loaded
    (C(--vault-id), C(--vault-password-file), C(--ask-vault-pass)). Nothing is sent to a managed host.
  - Writes are atomic and never put plaintext on disk. The new content is encrypted in memory,
    written to a temp file in the same directory with the mode and owner of the file it replaces
    (V(0600) for a new file), fsynced and renamed over the original.
  - Keeps the rotation state of credentials (pending, current, previous value, phase) under the
    key C(vault_credentials_state). This is the store behind the C(homelab.pi_cluster.credentials) role.
  - A task that reads values (O(get), or any O(transition) other than V(status)) must set
    C(no_log=true); the plugin refuses to run otherwise.
  - The file's YAML is re-written on change. Comments in the encrypted file are not kept.
author:
  - homelab.pi_cluster maintainers (@homelab)
attributes:
  check_mode:
    support: full
    description: Reports what would change; the file is not written.
  diff_mode:
    support: none
    description: Values are secrets; no diff is shown.
  action:
    support: full
    description: Runs on the controller as an action plugin; nothing is sent to a managed host.
  async:
    support: none
    description: Runs synchronously on the controller.
  platform:
    support: full
    platforms: posix
    description: The controller (POSIX) holds the vault file.
options:
  path:
    description:
      - The encrypted vars file on the controller. It is created (mode V(0600)) on the first write.
      - A file that exists but is not vault encrypted is refused.
    type: path
    required: true
  vault_id:
    description:
      - The vault id to encrypt with. Default is the id the file is encrypted with now,
        else the first loaded vault secret.
    type: str
  get:
    description: Keys whose values are returned in RV(values). Missing keys are listed in RV(missing).
    type: list
    elements: str
    default: []
  set:
    description: Keys to set to the given values.
    type: dict
    default: {}
  overwrite:
    description:
      - Whether O(set) may replace a key that holds another value. With V(false) the task fails naming
        such keys, and nothing is written.
    type: bool
    default: true
  remove:
    description: Keys to remove.
    type: list
    elements: str
    default: []
  credential:
    description: Name of the credential whose rotation state O(transition) acts on.
    type: str
  var:
    description: The key holding the current value of O(credential). Required with O(credential).
    type: str
  transition:
    description:
      - The rotation step to record for O(credential).
      - V(status) reads the state only. V(stage) stores a new pending value, or keeps the pending value
        an earlier run left. V(applied) and V(verified) record progress.
      - V(promote) makes the pending value current and keeps the old one as previous.
        V(rollback) drops the pending value.
    type: str
    choices: [status, stage, applied, verified, promote, rollback]
    default: status
  value:
    description: The value to stage. Default is a new random value from O(length) and O(charset).
    type: str
  length:
    description: Length of a generated value.
    type: int
    default: 32
  charset:
    description:
      - Characters of a generated value. V(alnum_symbols) adds symbols that need no quoting in YAML,
        shells, SQL or URLs.
    type: str
    choices: [alnum, alnum_symbols, hex, urlsafe]
    default: alnum
seealso:
  - name: Credential rotation
    description: The role and playbook built on this plugin.
    link: https://github.com/homelab/pi_cluster/blob/main/docs/credential-rotation.md
"""

EXAMPLES = r"""
- name: Store an API key in the vault file
  homelab.pi_cluster.vault_keys:
    path: "{{ playbook_dir }}/group_vars/all/vault.yml"
    set:
      vault_grafana_api_key: "{{ new_key }}"
  no_log: true

- name: Start a rotation (new random pending value, or the one a stopped run left)
  homelab.pi_cluster.vault_keys:
    path: "{{ playbook_dir }}/group_vars/all/vault.yml"
    credential: grafana_admin
    var: vault_grafana_admin_password
    transition: stage
    length: 32
  register: staged
  no_log: true
"""

RETURN = r"""
path:
  description: Absolute path of the vault file.
  returned: always
  type: str
credentials:
  description: Rotation state per credential, without any value.
  returned: always
  type: dict
  sample:
    grafana_admin: {phase: applied, rotated_at: "2026-11-01T02:00:00Z", pending_since: "2026-11-26T02:00:00Z",
                    has_pending: true, has_previous: true}
values:
  description: The values of the O(get) keys (V(null) for a missing key).
  returned: when O(get) is set
  type: dict
missing:
  description: The O(get) keys that the file does not have.
  returned: when O(get) is set
  type: list
  elements: str
phase:
  description: The phase of the credential's rotation after the step (empty when none is in flight).
  returned: when O(credential) is set
  type: str
resumed:
  description: Whether O(transition=stage) found a pending value from an earlier run.
  returned: when O(credential) is set
  type: bool
current:
  description: The current value after the step.
  returned: when O(credential) is set and O(transition) is not V(status)
  type: str
pending:
  description: The pending value after the step (empty when none).
  returned: when O(credential) is set and O(transition) is not V(status)
  type: str
previous:
  description: The value before the last promotion (empty when none).
  returned: when O(credential) is set and O(transition) is not V(status)
  type: str
"""
