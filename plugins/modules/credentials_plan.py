#!/usr/bin/python
# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: credentials_plan
short_description: Validate a credential registry and work out which credentials are due for rotation
version_added: 0.1.0
description:
  - Checks every entry of a credential registry (the C(credentials_registry) variable of the
    C(homelab.pi_cluster.credentials) role) and returns the entries normalized, with defaults filled in.
  - Works out what is due from the rotation state that C(homelab.pi_cluster.vault_keys) returns
    (no values, only phases and times). A credential is due when it was never rotated, when
    C(interval_days) have passed since its last rotation, when a rotation is still in
    flight (an earlier run stopped after staging a value), when O(force=true), or when it is the
    one O(only) names.
  - Pure computation on the input; changes nothing.
author:
  - homelab.pi_cluster maintainers (@homelab)
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes.
options:
  registry:
    description:
      - The credential entries. Each has C(name) and C(kind), plus the fields of its kind
        (see the credentials role README). Entries never hold a secret value; a login secret is
        referenced by the name of its vault key (for example C(login_password_var)).
    type: list
    elements: dict
    required: true
  states:
    description: Rotation state per credential name, as RV(homelab.pi_cluster.vault_keys#module:credentials) returns it.
    type: dict
    default: {}
  only:
    description: Rotate only the credential with this name (and regardless of its due date).
    type: str
    default: ""
  force:
    description: Treat every selected credential as due.
    type: bool
    default: false
  now:
    description: The time to compute due dates for (ISO 8601, UTC). Default is the current time.
    type: str
"""

EXAMPLES = r"""
- name: Work out what is due
  homelab.pi_cluster.credentials_plan:
    registry: "{{ credentials_registry }}"
    states: "{{ vault_status.credentials }}"
    only: "{{ only | default('') }}"
  register: rotation_plan
"""

RETURN = r"""
entries:
  description: The registry entries by name, normalized (defaults filled in).
  returned: success
  type: dict
due:
  description: The credentials to rotate now, in registry order, each with its C(name), C(kind) and C(reason).
  returned: success
  type: list
  elements: dict
skipped:
  description: The credentials not rotated now, each with its C(name) and C(reason).
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pi_cluster.plugins.module_utils._credentials import (
    CredentialError,
    now_utc,
    parse_time,
    plan,
    validate_registry,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "registry": {"type": "list", "elements": "dict", "required": True},
            "states": {"type": "dict", "default": {}},
            "only": {"type": "str", "default": ""},
            "force": {"type": "bool", "default": False},
            "now": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    now = parse_time(params["now"]) if params["now"] else now_utc()
    if now is None:
        module.fail_json(msg=f"now: not an ISO 8601 time: {params['now']!r} (e.g. 2026-11-26T02:00:00Z)")
        return
    try:
        entries = validate_registry(params["registry"])
        result = plan(entries, params["states"] or {}, now, only=params["only"] or "", force=params["force"])
    except CredentialError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, entries={e["name"]: e for e in entries}, **result)


if __name__ == "__main__":
    main()
