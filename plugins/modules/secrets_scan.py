#!/usr/bin/python
# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: secrets_scan
short_description: Find plaintext secrets in inventories and playbooks and replace them with vault references
version_added: 0.1.0
description:
  - Scans YAML files (vars files, playbooks) and INI inventories for plaintext secrets. A secret
    is a value under a known secret name (C(*_password), C(*_token), C(*secret*), API, access and
    private keys) or a high-entropy string of 20 or more characters under any name.
  - Values that are templates already, vault-encrypted files, block scalars and obvious
    placeholders (V(changeme), empty) are skipped.
  - With O(state=scan) it returns the findings, each with the vault variable it would move to
    (C(vault_<name>)), and the values in RV(values) for the vault file. The task must set C(no_log).
  - With O(state=rewrite) it replaces the value of every finding whose vault variable is listed in
    O(vault_vars) with a C({{ vault_<name> }}) reference. Only those lines change; comments and
    formatting stay. Every file is checked before any is written, and each file is replaced atomically.
  - The C(playbooks/migrate_secrets.yml) playbook combines it with M(homelab.pi_cluster.vault_keys).
author:
  - homelab.pi_cluster maintainers (@homelab)
attributes:
  check_mode:
    support: full
    description: O(state=rewrite) reports the files it would change and writes nothing.
  diff_mode:
    support: none
    description: The lines hold secrets; no diff is shown.
options:
  paths:
    description: Files and directories to scan (directories recursively; C(roles) and hidden directories are skipped).
    type: list
    elements: path
    required: true
  state:
    description: V(scan) reports the findings. V(rewrite) replaces the values of the findings listed in O(vault_vars).
    type: str
    choices: [scan, rewrite]
    default: scan
  vault_vars:
    description: With O(state=rewrite), the vault variables (from a scan) whose values are safely in the vault now.
    type: list
    elements: str
    default: []
  min_entropy:
    description: Shannon entropy (bits per character) from which a long token-like string counts as a secret.
    type: float
    default: 4.0
"""

EXAMPLES = r"""
- name: Find plaintext secrets
  homelab.pi_cluster.secrets_scan:
    paths: [inventory, playbooks]
  register: found
  no_log: true

- name: Show what was found (names and places, no values)
  ansible.builtin.debug:
    msg: "{{ found.findings }}"
"""

RETURN = r"""
findings:
  description: Each finding without its value.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file.
      type: str
    line:
      description: Line number (1-based).
      type: int
    key:
      description: The variable name.
      type: str
    reason:
      description: V(secret variable name) or V(high-entropy string).
      type: str
    vault_var:
      description: The vault variable the value moves to.
      type: str
values:
  description: The values by vault variable (secret; use C(no_log)).
  returned: when O(state=scan)
  type: dict
files:
  description: The files rewritten (or that would be, in check mode).
  returned: when O(state=rewrite)
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pi_cluster.plugins.module_utils._secret_scan import ScanError, rewrite, scan


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "path", "required": True},
            "state": {"type": "str", "choices": ["scan", "rewrite"], "default": "scan"},
            "vault_vars": {"type": "list", "elements": "str", "default": []},
            "min_entropy": {"type": "float", "default": 4.0},
        },
        required_if=[("state", "rewrite", ("vault_vars",))],
        supports_check_mode=True,
    )
    params = module.params
    try:
        findings = scan(params["paths"], params["min_entropy"])
        if params["state"] == "scan":
            module.exit_json(
                changed=False,
                findings=[f.public() for f in findings],
                values={f.vault_var: f.value for f in findings},
            )
        selected = [f for f in findings if f.vault_var in set(params["vault_vars"])]
        files = rewrite(selected, check_mode=module.check_mode)
    except (ScanError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=bool(files), findings=[f.public() for f in selected], files=files)


if __name__ == "__main__":
    main()
