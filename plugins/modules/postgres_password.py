#!/usr/bin/python
# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: postgres_password
short_description: Set a PostgreSQL role's password with psql and verify it
version_added: 0.1.0
description:
  - Sets the password of a PostgreSQL role with C(ALTER ROLE ... PASSWORD), connected as an admin
    user through the C(psql) client. No Python database driver is needed.
  - The statement carries a SCRAM-SHA-256 verifier computed by the module, as psql's C(\password)
    does, so the plain password never reaches the server's statement log or C(pg_stat_activity).
  - Passwords go to C(psql) in its environment (C(PGPASSWORD)), never on the command line; the SQL goes on stdin.
  - Idempotent. The module first tries to log in as O(role) with O(password); if that works, nothing changes.
    After a change it logs in with the new password, and checks that O(old_password) is refused when given.
  - Used by the C(postgres_role) kind of the C(homelab.pi_cluster.credentials) role.
author:
  - homelab.pi_cluster maintainers (@homelab)
attributes:
  check_mode:
    support: full
    description: Logs in as O(role) to find out whether a change is needed; changes nothing.
  diff_mode:
    support: none
    description: The values are secrets; there is nothing to show.
options:
  role:
    description: The role whose password is set.
    type: str
    required: true
  password:
    description: The new password.
    type: str
    required: true
  old_password:
    description: The role's password before the change. When given, a login with it must fail afterwards.
    type: str
  login_host:
    description: Host (or Unix socket directory) of the server.
    type: str
    required: true
  login_port:
    description: Port of the server.
    type: int
    default: 5432
  login_user:
    description: The admin user that runs C(ALTER ROLE) (a superuser or a role with C(CREATEROLE)).
    type: str
    required: true
  login_password:
    description: Password of O(login_user).
    type: str
    required: true
  login_db:
    description: Database the admin connects to.
    type: str
    default: postgres
  db:
    description: Database used to verify logins as O(role). Defaults to O(login_db).
    type: str
  verify:
    description: After a change, log in as O(role) with the new password (and check O(old_password) is refused).
    type: bool
    default: true
  psql:
    description: The C(psql) executable.
    type: str
    default: psql
requirements:
  - the PostgreSQL client C(psql) on the host that runs the module
notes:
  - The server must authenticate O(role) by password (C(scram-sha-256) or C(md5) in C(pg_hba.conf)).
    With C(trust) any password logs in, so the module cannot tell whether the change is needed.
"""

EXAMPLES = r"""
- name: Rotate the Airflow database password
  homelab.pi_cluster.postgres_password:
    login_host: 192.168.1.240
    login_port: 30432
    login_user: postgres
    login_password: "{{ vault_postgres_admin_password }}"
    role: airflow
    db: airflow
    old_password: "{{ vault_airflow_db_password }}"
    password: "{{ new_password }}"
  no_log: true
"""

RETURN = r"""
verified:
  description: Whether a login as O(role) with the new password succeeded.
  returned: always
  type: bool
old_rejected:
  description: Whether a login with O(old_password) was refused after the change (null when not checked).
  returned: always
  type: bool
"""

import os
from typing import Dict, List, Optional, Tuple

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pi_cluster.plugins.module_utils._postgres_password import (
    PostgresError,
    Target,
    set_role_password,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "role": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
            "old_password": {"type": "str", "no_log": True},
            "login_host": {"type": "str", "required": True},
            "login_port": {"type": "int", "default": 5432},
            "login_user": {"type": "str", "required": True},
            "login_password": {"type": "str", "required": True, "no_log": True},
            "login_db": {"type": "str", "default": "postgres"},
            "db": {"type": "str"},
            "verify": {"type": "bool", "default": True},
            "psql": {"type": "str", "default": "psql"},
        },
        supports_check_mode=True,
    )
    p = module.params
    if not p["password"]:
        module.fail_json(msg="password: must not be empty; nothing was sent")
    psql = p["psql"] if os.path.sep in p["psql"] else module.get_bin_path(p["psql"])
    if not psql:
        module.fail_json(msg="psql: the PostgreSQL client is not installed (Debian: apt-get install postgresql-client)")

    def run(argv: List[str], stdin: Optional[str], env: Dict[str, str]) -> Tuple[int, str, str]:
        return module.run_command(argv, data=stdin, environ_update=env)

    admin = Target(psql, p["login_host"], p["login_port"], p["login_db"])
    verify_target = Target(psql, p["login_host"], p["login_port"], p["db"] or p["login_db"])
    try:
        outcome = set_role_password(
            run,
            admin=admin,
            login_user=p["login_user"],
            login_password=p["login_password"],
            verify_target=verify_target,
            role=p["role"],
            new_password=p["password"],
            old_password=p["old_password"] or "",
            check_mode=module.check_mode,
            verify=p["verify"],
        )
    except PostgresError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=outcome.changed, verified=outcome.verified, old_rejected=outcome.old_rejected)


if __name__ == "__main__":
    main()
