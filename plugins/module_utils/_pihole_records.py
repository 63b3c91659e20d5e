# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pi-hole local DNS records: input validation, normalisation and change planning.

Internal to homelab.pi_cluster: names here may change without notice.

Pi-hole keeps local records as plain strings and compares them as exact strings:
``dns.hosts`` (v6) and ``custom.list`` (v5) hold ``"IP NAME [NAME...]"`` lines,
``dns.cnameRecords`` (v6) and ``05-pihole-custom-cname.conf`` (v5, with a ``cname=``
prefix) hold ``"NAME[,NAME...],TARGET[,TTL]"``. This module parses those strings,
compares them after normalisation (lower-case names, canonical IP addresses) and
plans the smallest change, writing new entries in exactly the format Pi-hole stores.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple


class PiholeError(Exception):
    """Base class of every error the pihole_dns code raises on purpose."""


class PiholeInputError(PiholeError):
    """Bad module input; raised before any request or write. ``field`` names the option."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


# One DNS label: letters, digits, hyphen, underscore (used by SRV-style names), 1-63 chars.
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


def normalize_name(value: Any) -> str:
    """Lower-case, strip whitespace and one trailing dot (``Grafana.Lab.`` -> ``grafana.lab``)."""
    name = str(value if value is not None else "").strip().lower()
    return name[:-1] if name.endswith(".") else name


def canonical_ip(value: Any) -> Optional[str]:
    """The canonical text of an IPv4/IPv6 address (``2001:DB8::0:1`` -> ``2001:db8::1``), or None."""
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        return None


def ip_family(ip: str) -> int:
    return ipaddress.ip_address(ip).version


def valid_hostname(name: str, allow_wildcard: bool = False) -> bool:
    if allow_wildcard and name.startswith("*."):
        name = name[2:]
    if not name or len(name) > 253:
        return False
    return all(_LABEL.match(label) for label in name.split("."))


def in_domain(name: str, domain: str) -> bool:
    return name == domain or name.endswith("." + domain)


@dataclass(frozen=True)
class HostRecord:
    """An A or AAAA record, stored by Pi-hole as ``"IP NAME"``."""

    name: str
    ip: str

    @property
    def entry(self) -> str:
        return f"{self.ip} {self.name}"

    def describe(self) -> str:
        kind = "A" if ip_family(self.ip) == 4 else "AAAA"
        return f"{kind} {self.name} {self.ip}"


@dataclass(frozen=True)
class CnameRecord:
    """A CNAME record, stored by Pi-hole as ``"NAME,TARGET[,TTL]"``."""

    name: str
    target: str
    ttl: Optional[int] = None

    @property
    def entry(self) -> str:
        return f"{self.name},{self.target}" if self.ttl is None else f"{self.name},{self.target},{self.ttl}"

    def describe(self) -> str:
        ttl = "" if self.ttl is None else f" ttl={self.ttl}"
        return f"CNAME {self.name} -> {self.target}{ttl}"


@dataclass
class Desired:
    """Validated, normalised input: what the records should (not) be on every server."""

    state: str = "present"
    hosts: List[HostRecord] = field(default_factory=list)
    cnames: List[CnameRecord] = field(default_factory=list)
    # state=absent with only a name: every record of that name goes
    absent_names: List[str] = field(default_factory=list)
    exclusive: bool = False
    domain: Optional[str] = None


def _check_options(state: str, exclusive: bool, domain: Optional[str], count: int) -> Optional[str]:
    if state not in ("present", "absent"):
        raise PiholeInputError("state", f"must be one of present, absent, got {state!r}")
    norm_domain = None
    if domain is not None:
        norm_domain = normalize_name(domain)
        if not valid_hostname(norm_domain):
            raise PiholeInputError("domain", f"{domain!r} is not a valid DNS domain name")
    if exclusive and state != "present":
        raise PiholeInputError("exclusive", "exclusive=true is only allowed with state=present")
    if exclusive and not norm_domain:
        raise PiholeInputError("domain", "is required when exclusive=true (it limits which records are purged)")
    if not count and state == "absent":
        raise PiholeInputError("records", "state=absent needs at least one record")
    return norm_domain


def _check_record_shape(raw: Dict[str, Any], name: str, where: Callable[[str], str], desired: Desired) -> None:
    """Checks of one record on its own: name syntax, ip/target/ttl combination, domain."""
    ip_raw, target_raw, ttl = raw.get("ip"), raw.get("target"), raw.get("ttl")
    if not name:
        raise PiholeInputError(where("name"), "must not be empty")
    if not valid_hostname(name, allow_wildcard=target_raw is not None):
        raise PiholeInputError(
            where("name"),
            f"{raw.get('name')!r} is not a valid DNS name (labels of a-z, 0-9, '-', '_', at most 63 characters)",
        )
    if ip_raw is not None and target_raw is not None:
        raise PiholeInputError(where("ip"), "ip and target are mutually exclusive (A/AAAA or CNAME)")
    if ttl is not None:
        if target_raw is None:
            raise PiholeInputError(where("ttl"), "ttl is only supported for CNAME records (target)")
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0:
            raise PiholeInputError(where("ttl"), f"must be a non-negative integer, got {ttl!r}")
    if desired.exclusive and desired.domain and not in_domain(name, desired.domain):
        raise PiholeInputError(
            where("name"),
            f"{name!r} is outside domain {desired.domain!r}; with exclusive=true every record must be in it",
        )
    if ip_raw is None and target_raw is None and desired.state == "present":
        raise PiholeInputError(where("ip"), "state=present needs ip (A/AAAA) or target (CNAME)")


def _add_host(raw: Dict[str, Any], name: str, where: Callable[[str], str], desired: Desired) -> None:
    ip = canonical_ip(raw["ip"])
    if ip is None:
        raise PiholeInputError(where("ip"), f"{raw['ip']!r} is not a valid IPv4 or IPv6 address")
    if any(c.name == name for c in desired.cnames):
        raise PiholeInputError(where("name"), f"{name!r} is also given as a CNAME")
    record = HostRecord(name, ip)
    if record not in desired.hosts:
        desired.hosts.append(record)


def _add_cname(raw: Dict[str, Any], name: str, where: Callable[[str], str], desired: Desired) -> None:
    target = normalize_name(raw["target"])
    if not valid_hostname(target):
        raise PiholeInputError(where("target"), f"{raw['target']!r} is not a valid DNS name")
    if target == name:
        raise PiholeInputError(where("target"), f"CNAME loop: {name!r} points to itself")
    if any(h.name == name for h in desired.hosts):
        raise PiholeInputError(where("name"), f"{name!r} is also given with an ip")
    record = CnameRecord(name, target, raw.get("ttl"))
    known = [c for c in desired.cnames if c.name == name]
    if known and known[0] != record:
        raise PiholeInputError(where("name"), f"{name!r} is given twice with different targets")
    if not known:
        desired.cnames.append(record)


def parse_records(
    records: Sequence[Dict[str, Any]],
    state: str,
    exclusive: bool = False,
    domain: Optional[str] = None,
    from_shorthand: bool = False,
) -> Desired:
    """Validate the module's record input and return it normalised; raise PiholeInputError otherwise.

    ``from_shorthand``: the record came from the top-level name/ip/target/ttl options, so
    errors name those options instead of ``records[N].<key>``.
    """
    norm_domain = _check_options(state, exclusive, domain, len(records))
    desired = Desired(state=state, exclusive=exclusive, domain=norm_domain)
    for position, raw in enumerate(records):
        if not isinstance(raw, dict):
            raise PiholeInputError(f"records[{position}]", "must be a dictionary with name and ip or target")

        def where(key: str, position: int = position) -> str:
            return key if from_shorthand else f"records[{position}].{key}"

        name = normalize_name(raw.get("name"))
        _check_record_shape(raw, name, where, desired)
        if raw.get("ip") is not None:
            _add_host(raw, name, where, desired)
        elif raw.get("target") is not None:
            _add_cname(raw, name, where, desired)
        elif name not in desired.absent_names:
            desired.absent_names.append(name)
    _check_cname_loops(desired.cnames, "target" if from_shorthand else "records")
    return desired


def _check_cname_loops(cnames: List[CnameRecord], field_name: str) -> None:
    """Reject chains that come back to their start (a -> b -> a); resolvers would loop forever."""
    targets = {c.name: c.target for c in cnames}
    for start, first_target in targets.items():
        seen = [start]
        current = first_target
        while current in targets:
            if current in seen:
                raise PiholeInputError(field_name, f"CNAME loop: {' -> '.join([*seen, current])}")
            seen.append(current)
            current = targets[current]


# --- parsing what Pi-hole stores ---------------------------------------------------------


def parse_host_entry(entry: str) -> Optional[Tuple[str, List[str]]]:
    """``"10.0.0.5 grafana.lab  # note"`` -> (canonical ip, [names]); None for comments and junk."""
    text = entry.split("#", 1)[0].strip()
    parts = text.split()
    if len(parts) < 2:
        return None
    ip = canonical_ip(parts[0])
    if ip is None:
        return None
    return ip, [normalize_name(p) for p in parts[1:]]


def parse_cname_entry(entry: str) -> Optional[Tuple[List[str], str, Optional[int]]]:
    """``"a.lab,b.lab,target.lab,300"`` -> ([names], target, ttl); None when it is not a CNAME line."""
    parts = [p.strip() for p in entry.strip().split(",")]
    ttl = None
    if len(parts) >= 3 and parts[-1].isdigit():
        ttl = int(parts.pop())
    if len(parts) < 2 or not all(parts):
        return None
    return [normalize_name(p) for p in parts[:-1]], normalize_name(parts[-1]), ttl


# --- planning ------------------------------------------------------------------------------


@dataclass
class ArrayPlan:
    """The new content of one Pi-hole array, and the exact-string changes leading to it."""

    before: List[str]
    after: List[str]
    remove_entries: List[str] = field(default_factory=list)
    add_entries: List[str] = field(default_factory=list)
    added: List[str] = field(default_factory=list)  # human-readable records
    removed: List[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass
class Plan:
    hosts: ArrayPlan
    cnames: ArrayPlan

    @property
    def changed(self) -> bool:
        return self.hosts.changed or self.cnames.changed

    @property
    def added(self) -> List[str]:
        return self.hosts.added + self.cnames.added

    @property
    def removed(self) -> List[str]:
        return self.hosts.removed + self.cnames.removed


def plan_changes(current_hosts: Sequence[str], current_cnames: Sequence[str], desired: Desired) -> Plan:
    """Compute the new hosts and CNAME arrays from what a server has and what is desired.

    Entries that cannot be parsed, and names outside what the input manages, are kept
    exactly as they are (same string, same position).
    """
    return Plan(_plan_hosts(list(current_hosts), desired), _plan_cnames(list(current_cnames), desired))


def _host_pair_unwanted(ip: str, name: str, desired: Desired) -> bool:
    if desired.state == "absent":
        return name in desired.absent_names or HostRecord(name, ip) in desired.hosts
    wanted = HostRecord(name, ip)
    if wanted in desired.hosts:
        return False
    # the input manages (name, address family): other addresses of that family go (IP change)
    if any(h.name == name and ip_family(h.ip) == ip_family(ip) for h in desired.hosts):
        return True
    if any(c.name == name for c in desired.cnames):  # the name becomes a CNAME
        return True
    return bool(desired.exclusive and desired.domain and in_domain(name, desired.domain))


def _plan_hosts(current: List[str], desired: Desired) -> ArrayPlan:
    plan = ArrayPlan(before=current, after=[])
    present: Set[Tuple[str, str]] = set()
    for entry in current:
        parsed = parse_host_entry(entry)
        if parsed is None:
            plan.after.append(entry)
            continue
        ip, names = parsed
        keep = [n for n in names if not _host_pair_unwanted(ip, n, desired)]
        present.update((ip, n) for n in keep)
        if len(keep) == len(names):
            plan.after.append(entry)
            continue
        plan.remove_entries.append(entry)
        plan.removed.extend(HostRecord(n, ip).describe() for n in names if n not in keep)
        if keep:  # an entry shared with names we do not touch is rewritten without ours
            rest = f"{ip} {' '.join(keep)}"
            plan.after.append(rest)
            plan.add_entries.append(rest)
    if desired.state == "present":
        for host in desired.hosts:
            if (host.ip, host.name) not in present:
                present.add((host.ip, host.name))
                plan.after.append(host.entry)
                plan.add_entries.append(host.entry)
                plan.added.append(host.describe())
    return plan


def _cname_unwanted(name: str, target: str, ttl: Optional[int], desired: Desired) -> bool:
    record = CnameRecord(name, target, ttl)
    if desired.state == "absent":
        if name in desired.absent_names:
            return True
        return any(c.name == name and c.target == target and (c.ttl is None or c.ttl == ttl) for c in desired.cnames)
    if record in desired.cnames:
        return False
    if any(c.name == name for c in desired.cnames):  # target or ttl change
        return True
    if any(h.name == name for h in desired.hosts):  # the name becomes an A/AAAA record
        return True
    return bool(desired.exclusive and desired.domain and in_domain(name, desired.domain))


def _plan_cnames(current: List[str], desired: Desired) -> ArrayPlan:
    plan = ArrayPlan(before=current, after=[])
    present: Set[CnameRecord] = set()
    for entry in current:
        parsed = parse_cname_entry(entry)
        if parsed is None:
            plan.after.append(entry)
            continue
        names, target, ttl = parsed
        keep = [n for n in names if not _cname_unwanted(n, target, ttl, desired)]
        present.update(CnameRecord(n, target, ttl) for n in keep)
        if len(keep) == len(names):
            plan.after.append(entry)
            continue
        plan.remove_entries.append(entry)
        plan.removed.extend(CnameRecord(n, target, ttl).describe() for n in names if n not in keep)
        if keep:
            rest = ",".join([*keep, target] + ([] if ttl is None else [str(ttl)]))
            plan.after.append(rest)
            plan.add_entries.append(rest)
    if desired.state == "present":
        for cname in desired.cnames:
            if cname not in present:
                present.add(cname)
                plan.after.append(cname.entry)
                plan.add_entries.append(cname.entry)
                plan.added.append(cname.describe())
    return plan


def records_text(entries: Sequence[str]) -> str:
    """Diff-friendly text of an array: one entry per line."""
    return "".join(f"{e}\n" for e in entries)
