# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The postgres_password module's logic: set a role's password with psql and prove it.

Internal to homelab.pi_cluster: names here may change without notice.

No Python driver is needed: ``psql`` runs with the password in its environment
(``PGPASSWORD``, never argv) and the SQL on stdin. ALTER ROLE gets a SCRAM-SHA-256 verifier
computed here (as psql's ``\\password`` does), so the plain password never reaches the server's
statement log or ``pg_stat_activity``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from ansible_collections.homelab.pi_cluster.plugins.module_utils._credentials import scram_sha256_verifier

# run(argv, stdin, env) -> (rc, stdout, stderr)
Runner = Callable[[List[str], Optional[str], Dict[str, str]], Tuple[int, str, str]]
AUTH_FAILED = ("password authentication failed", "authentication failed")


class PostgresError(Exception):
    """psql failed for another reason than a refused password."""


@dataclass
class Target:
    psql: str
    host: str
    port: int
    database: str


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def psql_argv(target: Target, user: str, command: Optional[str] = None) -> List[str]:
    argv = [target.psql, "-X", "-q", "-w", "-v", "ON_ERROR_STOP=1", "-h", target.host, "-p", str(target.port)]
    argv += ["-U", user, "-d", target.database]
    if command:
        argv += ["-c", command]
    return argv


def env_for(password: str) -> Dict[str, str]:
    return {"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10", "PGAPPNAME": "homelab.pi_cluster.postgres_password"}


def can_connect(run: Runner, target: Target, user: str, password: str) -> bool:
    """True when ``user`` logs in with ``password``; False when the server refuses the password."""
    rc, _out, err = run(psql_argv(target, user, "SELECT 1"), None, env_for(password))
    if rc == 0:
        return True
    if any(marker in err for marker in AUTH_FAILED):
        return False
    raise PostgresError(f"connect to {target.host}:{target.port} as {user}: {err.strip() or f'psql exit {rc}'}")


def alter_role_sql(role: str, password: str) -> str:
    return f"ALTER ROLE {quote_ident(role)} PASSWORD '{scram_sha256_verifier(password)}';\n"


@dataclass
class Outcome:
    changed: bool = False
    verified: bool = False
    old_rejected: Optional[bool] = None


def set_role_password(
    run: Runner,
    *,
    admin: Target,
    login_user: str,
    login_password: str,
    verify_target: Target,
    role: str,
    new_password: str,
    old_password: str = "",
    check_mode: bool = False,
    verify: bool = True,
) -> Outcome:
    outcome = Outcome()
    if not can_connect(run, verify_target, role, new_password):
        outcome.changed = True
        if check_mode:
            return outcome
        rc, _out, err = run(psql_argv(admin, login_user), alter_role_sql(role, new_password), env_for(login_password))
        if rc != 0:
            raise PostgresError(f"ALTER ROLE {role} as {login_user}@{admin.host}:{admin.port}: {err.strip()}")
        if verify:
            outcome.verified = can_connect(run, verify_target, role, new_password)
            if not outcome.verified:
                raise PostgresError(f"the password of role {role} was changed but a login with it is refused")
    else:
        outcome.verified = True
    if verify and not check_mode and old_password and old_password != new_password:
        outcome.old_rejected = not can_connect(run, verify_target, role, old_password)
        if not outcome.old_rejected:
            raise PostgresError(f"role {role} still logs in with the old password")
    return outcome
