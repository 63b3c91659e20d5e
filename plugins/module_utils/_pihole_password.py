# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pihole_password module's logic: change the admin password of Pi-hole v6 servers and prove it.

Internal to homelab.pi_cluster: names here may change without notice.

Per server: a login with the new password first (it may already be set: an earlier run was
stopped, or this is a re-run), else a login with the current password and
``PATCH /api/config`` of ``webserver.api.password`` (FTL stores only its hash and ends every
session), then a login with the new password (verified) and one with the old password, which
must now be refused. Every session opened is closed; a password never appears in a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_api import (
    PiholeAuthError,
    PiholeClient,
)
from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_records import PiholeError

ClientFactory = Callable[[str, str], PiholeClient]


@dataclass
class ServerResult:
    url: str
    changed: bool = False
    verified: bool = False
    old_rejected: Optional[bool] = None
    error: str = ""

    def as_dict(self) -> Dict[str, Any]:
        return {
            "url": self.url,
            "changed": self.changed,
            "verified": self.verified,
            "old_rejected": self.old_rejected,
            "error": self.error,
        }


def can_login(factory: ClientFactory, url: str, password: str) -> bool:
    """True when ``password`` opens a session (closed again at once); False when refused (401)."""
    client = factory(url, password)
    try:
        client.login()
    except PiholeAuthError as exc:
        if exc.status == 401:
            return False
        raise
    finally:
        client.logout()
    return True


def set_password(factory: ClientFactory, url: str, password: str, new_password: str) -> None:
    client = factory(url, password)
    client.login()
    try:
        client.request(
            "PATCH",
            "/config",
            body={"config": {"webserver": {"api": {"password": new_password}}}},
            what="change the admin password",
        )
        client.logged_in = False  # FTL ended every session, ours too: nothing left to log out
    finally:
        client.logout()


def rotate_server(
    factory: ClientFactory, url: str, password: str, new_password: str, *, check_mode: bool, verify: bool
) -> ServerResult:
    result = ServerResult(url)
    try:
        if can_login(factory, url, new_password):
            result.verified = True
        elif check_mode:
            if not can_login(factory, url, password):
                raise PiholeAuthError(
                    401, "unauthorized", "neither the current nor the new password is accepted", None, "login"
                )
            result.changed = True
            return result
        else:
            set_password(factory, url, password, new_password)
            result.changed = True
            if verify:
                result.verified = can_login(factory, url, new_password)
                if not result.verified:
                    result.error = "the new password was set but a login with it is refused"
                    return result
        if verify and password and password != new_password and not check_mode:
            result.old_rejected = not can_login(factory, url, password)
            if not result.old_rejected:
                result.error = "the old password still logs in after the change"
    except PiholeError as exc:
        result.error = str(exc)
    return result


def rotate(
    factory: ClientFactory, urls: List[str], password: str, new_password: str, *, check_mode: bool, verify: bool = True
) -> List[ServerResult]:
    """Every server gets the change; one failing server does not stop the others."""
    return [rotate_server(factory, url, password, new_password, check_mode=check_mode, verify=verify) for url in urls]
