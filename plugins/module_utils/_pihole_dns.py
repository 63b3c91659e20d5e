# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pihole_dns module's logic: input checks, per-server sync (v6 API or v5 files), results.

Internal to homelab.pi_cluster: names here may change without notice.

Every server gets the full change independently: a failure on one is recorded and the
next server is still written. Each v6 server gets exactly one session, always closed in
``finally`` (Pi-hole has 16 session seats by default; leaked ones lock out the web UI).
"""

from __future__ import annotations

import copy
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_api import HTTP_OPTIONS_SPEC, PiholeClient
from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_records import (
    Desired,
    PiholeError,
    PiholeInputError,
    Plan,
    parse_records,
    plan_changes,
)
from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_v5 import (
    PiholeFileError,
    atomic_write,
    join_cname_conf,
    read_lines,
    split_cname_conf,
)

RECORD_KEYS = ("name", "ip", "target", "ttl")

# Connection options, documented by the homelab.pi_cluster.pihole doc fragment.
_CONNECTION_SPEC: Dict[str, Any] = {
    "servers": {
        "type": "list",
        "elements": "dict",
        "options": {
            "url": {"type": "str", "required": True},
            "password": {"type": "str", "no_log": True},
            "name": {"type": "str"},
            "validate_certs": {"type": "bool"},
            "ca_path": {"type": "path"},
        },
    },
    "server": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    **HTTP_OPTIONS_SPEC,
}


def pihole_connection_spec() -> Dict[str, Any]:
    """A deep copy of the connection options, for a module to extend."""
    return copy.deepcopy(_CONNECTION_SPEC)


@dataclass
class ServerSpec:
    name: str
    url: str
    password: Optional[str] = field(repr=False, default=None)
    validate_certs: bool = True
    ca_path: Optional[str] = None


def desired_from_params(params: Dict[str, Any]) -> Desired:
    """Records from ``records`` or from the single-record shorthand (name/ip/target/ttl)."""
    shorthand = params.get("records") is None
    if shorthand:
        records = [{k: params.get(k) for k in RECORD_KEYS}] if params.get("name") is not None else []
    else:
        records = params["records"]
    if not records and params.get("state") == "present" and not params.get("exclusive"):
        raise PiholeInputError("records", "give at least one record (records, or name with ip or target)")
    return parse_records(
        records,
        params.get("state") or "present",
        bool(params.get("exclusive")),
        params.get("domain"),
        from_shorthand=shorthand,
    )


def servers_from_params(params: Dict[str, Any]) -> List[ServerSpec]:
    """Validated server list for the v6 API; raise PiholeInputError naming the bad field."""
    raw: Sequence[Dict[str, Any]]
    if params.get("server"):
        raw, prefix = [{"url": params["server"]}], None
    else:
        raw, prefix = params.get("servers") or [], "servers"
    if not raw:
        raise PiholeInputError("servers", "at least one server is required for the v6 API (servers or server)")
    specs: List[ServerSpec] = []
    for index, item in enumerate(raw):
        where = f"{prefix}[{index}]" if prefix else "server"
        url = str(item.get("url") or "").strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PiholeInputError(
                f"{where}.url" if prefix else where, f"{url!r} must be an http:// or https:// URL with a host"
            )
        try:
            parts.port  # noqa: B018  # raises ValueError for a bad port
        except ValueError:
            raise PiholeInputError(f"{where}.url" if prefix else where, f"{url!r} has an invalid port") from None
        password = item.get("password") if item.get("password") is not None else params.get("password")
        if password is None:
            raise PiholeInputError(
                f"{where}.password" if prefix else "password",
                "no password: give the admin password or an app password (from a vault)",
            )
        ca_path = item.get("ca_path") or params.get("ca_path")
        if ca_path and not os.path.isfile(ca_path):
            raise PiholeInputError(f"{where}.ca_path" if prefix else "ca_path", f"{ca_path!r} is not a file")
        validate = item.get("validate_certs")
        specs.append(
            ServerSpec(
                name=str(item.get("name") or parts.netloc),
                url=url,
                password=password,
                validate_certs=params.get("validate_certs", True) if validate is None else bool(validate),
                ca_path=ca_path,
            )
        )
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PiholeInputError("servers", f"server names must be unique, duplicated: {', '.join(duplicates)}")
    return specs


def check_numbers(params: Dict[str, Any]) -> None:
    if params.get("timeout") is not None and params["timeout"] <= 0:
        raise PiholeInputError("timeout", f"must be a positive number of seconds, got {params['timeout']}")
    if params.get("retries") is not None and params["retries"] < 0:
        raise PiholeInputError("retries", f"must be 0 or more, got {params['retries']}")


@dataclass
class ServerResult:
    name: str
    url: Optional[str]
    api_version: int
    changed: bool = False
    failed: bool = False
    msg: str = ""
    read: bool = False
    added: List[str] = field(default_factory=list)
    removed: List[str] = field(default_factory=list)
    before: Dict[str, List[str]] = field(default_factory=dict)
    after: Dict[str, List[str]] = field(default_factory=dict)
    requests: int = 0
    sessions: int = 0

    def take_plan(self, plan: Plan) -> None:
        self.read = True
        self.changed = plan.changed
        self.added, self.removed = plan.added, plan.removed
        self.before = {"hosts": list(plan.hosts.before), "cnameRecords": list(plan.cnames.before)}
        self.after = {"hosts": list(plan.hosts.after), "cnameRecords": list(plan.cnames.after)}

    def as_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {
            "name": self.name,
            "api_version": self.api_version,
            "changed": self.changed,
            "failed": self.failed,
            "added": self.added,
            "removed": self.removed,
            "requests": self.requests,
            "sessions": self.sessions,
        }
        if self.url:
            data["url"] = self.url
        if self.msg:
            data["msg"] = self.msg
        return data

    def diff(self) -> Dict[str, str]:
        where = f"{self.name} ({self.url})" if self.url else self.name
        return {
            "before_header": where,
            "after_header": where,
            "before": _diff_text(self.before),
            "after": _diff_text(self.after),
        }


def _diff_text(arrays: Dict[str, List[str]]) -> str:
    lines = []
    for key in ("hosts", "cnameRecords"):
        lines.append(f"{key}:")
        lines.extend(f"  {entry}" for entry in arrays.get(key, []))
    return "\n".join(lines) + "\n"


class DnsSync:
    """Applies one Desired record set to servers; reads always, writes unless ``check_mode``."""

    def __init__(
        self,
        desired: Desired,
        check_mode: bool,
        *,
        write_mode: str = "batch",
        timeout: float = 10.0,
        retries: int = 3,
        client_factory: Callable[..., PiholeClient] = PiholeClient,
    ) -> None:
        self.desired = desired
        self.check_mode = check_mode
        self.write_mode = write_mode
        self.timeout = timeout
        self.retries = retries
        self.client_factory = client_factory

    def client(self, server: ServerSpec) -> PiholeClient:
        return self.client_factory(
            server.url,
            server.password,
            validate_certs=server.validate_certs,
            ca_path=server.ca_path,
            timeout=self.timeout,
            retries=self.retries,
        )

    def sync_v6(self, server: ServerSpec) -> ServerResult:
        result = ServerResult(server.name, server.url, 6)
        client = self.client(server)
        try:
            client.login()
            hosts, cnames = client.read_records()
            plan = plan_changes(hosts, cnames, self.desired)
            result.take_plan(plan)
            if plan.changed and not self.check_mode:
                self._apply_v6(client, plan)
        except PiholeError as exc:
            result.failed, result.msg = True, str(exc)
            if result.read and not self.check_mode:
                result.changed = client.writes > 0  # batch: nothing; per_item: the items before the error
        finally:
            client.logout()
            result.requests, result.sessions = client.requests_sent, client.sessions_opened
        return result

    def _apply_v6(self, client: PiholeClient, plan: Plan) -> None:
        if self.write_mode == "batch":
            client.patch_arrays(
                plan.hosts.after if plan.hosts.changed else None, plan.cnames.after if plan.cnames.changed else None
            )
            return
        # per_item: CNAMEs out first (FTL test-loads the dnsmasq config on every write, and a
        # name may not be a CNAME twice), then hosts in before out (no gap while an IP changes).
        ops: List[Tuple[str, str, str]] = [("DELETE", "cnameRecords", e) for e in plan.cnames.remove_entries]
        ops += [("PUT", "hosts", e) for e in plan.hosts.add_entries]
        ops += [("DELETE", "hosts", e) for e in plan.hosts.remove_entries]
        ops += [("PUT", "cnameRecords", e) for e in plan.cnames.add_entries]
        effective_before_last = False
        for index, (method, array, entry) in enumerate(ops):
            last = index == len(ops) - 1
            effective = client.put_or_delete_item(method, array, entry, restart=last)
            if last and not effective and effective_before_last:
                client.restart_dns()  # the restart=true write was a no-op: restart explicitly
            effective_before_last = effective_before_last or effective

    def sync_v5(
        self,
        *,
        custom_list: str,
        cname_conf: str,
        reload_command: str,
        restart_command: str,
        run_command: Callable[[str], Tuple[int, str, str]],
    ) -> ServerResult:
        result = ServerResult(socket.gethostname(), None, 5)
        try:
            host_lines = read_lines(custom_list)
            other, cname_entries = split_cname_conf(read_lines(cname_conf))
            plan = plan_changes(host_lines, cname_entries, self.desired)
            result.take_plan(plan)
            if plan.changed and not self.check_mode:
                if plan.hosts.changed:
                    atomic_write(custom_list, plan.hosts.after)
                if plan.cnames.changed:
                    atomic_write(cname_conf, join_cname_conf(other, plan.cnames.after))
                # hosts files are re-read on SIGHUP; cname= lines need a full restart
                command = restart_command if plan.cnames.changed else reload_command
                rc, out, err = run_command(command)
                if rc != 0:
                    raise PiholeFileError(f"{command!r} failed with rc={rc}: {(err or out).strip()[-500:]}")
        except PiholeError as exc:
            result.failed, result.msg = True, str(exc)
        return result


def failure_message(results: List[ServerResult], desired: Desired) -> str:
    """Names each failed server, why, and what is missing there."""
    failed = [r for r in results if r.failed]
    parts = []
    for r in failed:
        where = f"{r.name} ({r.url})" if r.url else r.name
        if r.read:
            pending = [f"add {a}" for a in r.added] + [f"remove {x}" for x in r.removed]
        else:
            pending = _all_changes(desired)
        missing = "; not applied there: " + ", ".join(pending) if pending else ""
        parts.append(f"{where}: {r.msg}{missing}")
    ok = [r.name for r in results if not r.failed]
    done = f" (written: {', '.join(ok)})" if ok else ""
    return f"pihole_dns failed on {len(failed)} of {len(results)} server(s){done}: " + " | ".join(parts)


def _all_changes(desired: Desired) -> List[str]:
    verb = "ensure" if desired.state == "present" else "remove"
    items = [h.describe() for h in desired.hosts] + [c.describe() for c in desired.cnames] + desired.absent_names
    if desired.exclusive:
        items.append(f"purge of other records in {desired.domain}")
    return [f"{verb} {i}" for i in items]
