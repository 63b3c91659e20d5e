#!/usr/bin/python
# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pihole_password
short_description: Change the admin password of Pi-hole v6 servers and verify it
version_added: 0.1.0
description:
  - Sets the web/API admin password of one or more Pi-hole v6 servers (an HA pair) through the
    FTL REST API. It sends C(PATCH /api/config) with C(webserver.api.password); FTL stores only the
    hash and ends every session.
  - Idempotent and safe to re-run after an interrupted run. A server that already accepts
    O(new_password) is left alone. Otherwise the module logs in with O(password), changes it,
    logs in with the new password and checks that the old one is refused (O(verify)).
  - Every server gets the change. One failing server does not stop the others; the task then
    fails naming the failed server(s).
  - Every session the module opens is closed. Passwords are never logged or returned.
  - Used by the C(pihole_admin) kind of the C(homelab.pi_cluster.credentials) role.
author:
  - homelab.pi_cluster maintainers (@homelab)
extends_documentation_fragment:
  - homelab.pi_cluster.pihole.http
attributes:
  check_mode:
    support: full
    description: Logs in to find out whether a change is needed; changes nothing.
  diff_mode:
    support: none
    description: The values are secrets; there is nothing to show.
options:
  servers:
    description: Base URLs of the Pi-hole servers, for example V(https://192.168.1.25). A trailing V(/api) is optional.
    type: list
    elements: str
    required: true
  password:
    description: The current admin password.
    type: str
    required: true
  new_password:
    description: The password to set.
    type: str
    required: true
  verify:
    description: After a change, log in with O(new_password) and check that O(password) is refused.
    type: bool
    default: true
notes:
  - Pi-hole v5 is not supported (its password is set with C(pihole -a -p) on the host; use the
    C(command) kind of the credentials role).
seealso:
  - module: homelab.pi_cluster.pihole_dns
"""

EXAMPLES = r"""
- name: Rotate the admin password of the Pi-hole pair
  homelab.pi_cluster.pihole_password:
    servers: [https://192.168.1.25, https://192.168.1.26]
    password: "{{ vault_pihole_admin_password }}"
    new_password: "{{ new_password }}"
    ca_path: /etc/ssl/lab-ca.pem
  no_log: true
"""

RETURN = r"""
per_server:
  description: One entry per server, in the order of O(servers).
  returned: always
  type: list
  elements: dict
  contains:
    url:
      description: The server.
      type: str
    changed:
      description: Whether the password was (or in check mode would be) changed.
      type: bool
    verified:
      description: Whether a login with O(new_password) succeeded.
      type: bool
    old_rejected:
      description: Whether a login with the old password was refused (null when not checked).
      type: bool
    error:
      description: What went wrong on this server (empty when nothing did).
      type: str
"""

import copy
from typing import Any, Dict

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_api import HTTP_OPTIONS_SPEC, PiholeClient
from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_password import rotate


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "servers": {"type": "list", "elements": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
            "new_password": {"type": "str", "required": True, "no_log": True},
            "verify": {"type": "bool", "default": True},
            **copy.deepcopy(HTTP_OPTIONS_SPEC),
        },
        supports_check_mode=True,
    )
    params = module.params
    if not params["servers"] or not all(params["servers"]):
        module.fail_json(msg="servers: give at least one Pi-hole base URL, e.g. https://192.168.1.25; nothing was sent")
    if not params["new_password"]:
        module.fail_json(msg="new_password: must not be empty; nothing was sent")

    def factory(url: str, password: str) -> PiholeClient:
        return PiholeClient(
            url,
            password,
            validate_certs=params["validate_certs"],
            ca_path=params["ca_path"],
            timeout=params["timeout"],
            retries=params["retries"],
        )

    results = rotate(
        factory,
        params["servers"],
        params["password"],
        params["new_password"],
        check_mode=module.check_mode,
        verify=params["verify"],
    )
    output: Dict[str, Any] = {
        "changed": any(r.changed for r in results),
        "per_server": [r.as_dict() for r in results],
    }
    failed = [r for r in results if r.error]
    if failed:
        module.fail_json(msg="; ".join(f"{r.url}: {r.error}" for r in failed), **output)
    module.exit_json(**output)


if __name__ == "__main__":
    main()
