# Copyright: homelab.pi_cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Velero Schedule logic for the ``velero_schedule`` modules.

Internal to this collection and may change without notice. Pure logic only (no API
access): cron validation as Velero's robfig/cron v3 parser does it, Go duration
parsing/formatting, building a Schedule from module options, comparing it with the
live object, and building a Backup exactly as ``velero backup create --from-schedule``.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime, timezone
from typing import Any, Callable, Optional

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones
except ImportError:  # Python < 3.9 on the target: time zones are left to Velero to check
    ZoneInfo = None  # type: ignore[assignment,misc]

API_VERSION = "velero.io/v1"
SCHEDULE_NAME_LABEL = "velero.io/schedule-name"

SCHEDULE_PHASE_ENABLED = "Enabled"
SCHEDULE_PHASE_FAILED_VALIDATION = "FailedValidation"
# Backup phases after which nothing changes any more (as the Velero CLI's --wait treats them).
BACKUP_SUCCESS_PHASES = frozenset({"Completed"})
BACKUP_FAILED_PHASES = frozenset({"PartiallyFailed", "Failed", "FailedValidation"})
BACKUP_TERMINAL_PHASES = BACKUP_SUCCESS_PHASES | BACKUP_FAILED_PHASES


class VeleroError(Exception):
    """Base class of every error this module_utils raises."""


class VeleroInputError(VeleroError):
    """A module option is invalid; raised before any API request is made."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class VeleroScheduleInvalid(VeleroError):
    """The Velero controller set the Schedule to FailedValidation."""


class VeleroBackupFailed(VeleroError):
    """A Backup created by run_now ended in a failed phase."""


# ---------------------------------------------------------------------------
# Go durations (time.ParseDuration / time.Duration.String), in integer nanoseconds
# ---------------------------------------------------------------------------

_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek small letter mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_MAX_DURATION = (1 << 63) - 1
_DIGITS = "0123456789"
_DAYS_PREFIX = re.compile(r"^(\d+)d(.*)$")


def _take(s: str, allowed: str) -> tuple[str, str]:
    """Split ``s`` after its leading run of characters from ``allowed``."""
    i = 0
    while i < len(s) and s[i] in allowed:
        i += 1
    return s[:i], s[i:]


def _duration_term(s: str, orig: str) -> tuple[int, str]:
    """One ``<number>[.<fraction>]<unit>`` term of a Go duration: (nanoseconds, rest)."""
    whole, s = _take(s, _DIGITS)
    frac = ""
    if s[:1] == ".":
        frac, s = _take(s[1:], _DIGITS)
    if not whole and not frac:
        raise ValueError(f'time: invalid duration "{orig}"')
    i = 0
    while i < len(s) and s[i] != "." and s[i] not in _DIGITS:
        i += 1
    unit, s = s[:i], s[i:]
    if not unit:
        raise ValueError(f'time: missing unit in duration "{orig}"')
    if unit not in _NS_PER_UNIT:
        raise ValueError(f'time: unknown unit "{unit}" in duration "{orig}"')
    scale = _NS_PER_UNIT[unit]
    value = int(whole or "0") * scale + (int(frac) * scale // 10 ** len(frac) if frac else 0)
    return value, s


def parse_go_duration(text: str) -> int:
    """Parse ``text`` the way Go's ``time.ParseDuration`` does; return nanoseconds.

    Raises ValueError with Go's own wording, so messages match what Velero would log.
    """
    s = text
    negative = s[:1] == "-"
    if s[:1] in ("+", "-"):
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0
    while s:
        value, s = _duration_term(s, text)
        total += value
        if total > _MAX_DURATION + (1 if negative else 0):
            raise ValueError(f'time: invalid duration "{text}"')
    return -total if negative else total


def _with_fraction(value: int, digits: int) -> str:
    whole, frac = divmod(value, 10**digits)
    if not frac:
        return str(whole)
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


def _sub_second(u: int) -> str:
    if u < 1_000:
        return f"{u}ns"
    if u < 1_000_000:
        return f"{_with_fraction(u, 3)}\u00b5s"
    return f"{_with_fraction(u, 6)}ms"


def format_go_duration(ns: int) -> str:
    """Format nanoseconds the way Go's ``time.Duration.String`` does (``720h0m0s``)."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000_000_000:
        return sign + _sub_second(u)
    minute = 60 * 1_000_000_000
    text = _with_fraction(u % minute, 9) + "s"
    hours, minutes = divmod(u // minute, 60)
    if hours:
        text = f"{hours}h{minutes}m{text}"
    elif minutes:
        text = f"{minutes}m{text}"
    return sign + text


def parse_duration_option(field: str, value: str) -> str:
    """Validate a duration option and return its canonical Go form.

    Accepts every Go duration plus a leading whole number of days (``30d``, ``1d12h``),
    converted to hours because Go (and so Velero) has no day unit. Negative values are refused.
    """
    text = str(value).strip()
    match = _DAYS_PREFIX.match(text)
    try:
        if match:
            rest = match.group(2)
            ns = int(match.group(1)) * 24 * _NS_PER_UNIT["h"] + (parse_go_duration(rest) if rest else 0)
            if rest[:1] in ("+", "-"):
                raise ValueError(f'time: invalid duration "{text}"')
        else:
            ns = parse_go_duration(text)
    except ValueError as exc:
        raise VeleroInputError(
            field,
            f"{value!r} is not a duration ({exc}); use Go duration syntax with units h, m, s, ms, us, ns "
            "(for example 720h or 1h30m) or whole days such as 30d",
        ) from None
    if ns < 0:
        raise VeleroInputError(field, f"{value!r} is negative; a duration must be 0 or more")
    if ns > _MAX_DURATION:
        raise VeleroInputError(field, f"{value!r} is longer than Go's maximum duration (about 290 years)")
    return format_go_duration(ns)


def durations_equal(a: Any, b: Any) -> bool:
    """True when two duration strings mean the same time span (``720h`` == ``720h0m0s``)."""
    if a is None or b is None:
        return a is None and b is None
    try:
        return parse_go_duration(str(a)) == parse_go_duration(str(b))
    except ValueError:
        return str(a) == str(b)


# ---------------------------------------------------------------------------
# Cron: robfig/cron v3 ParseStandard, which the Velero schedule controller uses
# ---------------------------------------------------------------------------

_MONTH_NAMES = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_DOW_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
# (field name, minimum, maximum, names)
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTH_NAMES),
    ("day-of-week", 0, 6, _DOW_NAMES),
)
_DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_EVERY = "@every "
_CRON_HELP = (
    "use 5 fields 'minute hour day-of-month month day-of-week' (for example '0 2 * * *'), "
    "a descriptor (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly) or '@every <duration>', "
    "optionally prefixed by 'CRON_TZ=<zone> '"
)


def _go_atoi(text: str) -> int:
    """strconv.Atoi: optional sign and decimal digits only."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ValueError(f"{text!r} is not a number")
    return int(text)


def _cron_value(text: str, names: dict[str, int]) -> int:
    if names and text.lower() in names:
        return names[text.lower()]
    number = _go_atoi(text)
    if number < 0:
        raise ValueError(f"negative number ({number}) not allowed")
    return number


def _cron_bounds(expr: str, low: int, high: int, names: dict[str, int]) -> tuple[int, int, int]:
    """(start, end, step) of one range expression, as robfig/cron's getRange reads it."""
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    if len(range_and_step) > 2:
        raise ValueError(f"too many slashes in {expr!r}")
    if low_and_high[0] in ("*", "?"):
        start, end = low, high
    elif len(low_and_high) > 2:
        raise ValueError(f"too many hyphens in {expr!r}")
    else:
        start = _cron_value(low_and_high[0], names)
        end = _cron_value(low_and_high[1], names) if len(low_and_high) == 2 else start
    step = 1
    if len(range_and_step) == 2:
        step = _cron_value(range_and_step[1], {})
        if len(low_and_high) == 1:
            end = high  # "N/step" means "N-max/step"
    return start, end, step


def _check_cron_range(expr: str, name: str, low: int, high: int, names: dict[str, int]) -> None:
    start, end, step = _cron_bounds(expr, low, high, names)
    hint = f"{name} accepts {low}-{high}"
    if names:
        hint += " or " + "-".join((min(names, key=names.__getitem__), max(names, key=names.__getitem__)))
    if start < low:
        raise ValueError(f"{start} is below the minimum {low} in {expr!r} ({hint})")
    if end > high:
        raise ValueError(f"{end} is above the maximum {high} in {expr!r} ({hint})")
    if start > end:
        raise ValueError(f"beginning of range {start} is beyond its end {end} in {expr!r}")
    if step == 0:
        raise ValueError(f"step of range should be a positive number in {expr!r}")


def _check_time_zone(zone: str) -> None:
    """time.LoadLocation: '' and 'UTC' mean UTC, 'Local' the server's zone, else an IANA name."""
    if zone in ("", "UTC", "Local"):
        return
    if ZoneInfo is None or not available_timezones():  # no tz database here: let Velero decide
        return
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone!r} (use an IANA name such as Europe/Berlin, or UTC)") from None


def validate_cron(spec: str, field: str = "schedule") -> None:
    """Raise VeleroInputError unless Velero's cron parser accepts ``spec`` exactly as given."""
    try:
        _parse_cron(spec)
    except ValueError as exc:
        raise VeleroInputError(field, f"invalid cron expression {spec!r}: {exc}; {_CRON_HELP}") from None


def _parse_cron(spec: str) -> None:
    if not spec:
        raise ValueError("it is empty")
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space = spec.find(" ")
        if space < 0:
            raise ValueError("a time zone prefix must be followed by a space and the schedule")
        _check_time_zone(spec[spec.find("=") + 1 : space])
        spec = spec[space:].strip()
    if spec.startswith("@"):
        if spec in _DESCRIPTORS:
            return
        if spec.startswith(_EVERY):
            parse_go_duration(spec[len(_EVERY) :])
            return
        raise ValueError(f"unrecognized descriptor {spec!r}")
    fields = spec.split()
    if len(fields) != 5:
        raise ValueError(f"expected exactly 5 fields, found {len(fields)} (Velero does not accept a seconds field)")
    for text, (name, low, high, names) in zip(fields, _CRON_FIELDS):  # noqa: B905 (targets may run Python < 3.10)
        for expr in (part for part in text.split(",") if part):
            _check_cron_range(expr, name, low, high, names)


# ---------------------------------------------------------------------------
# Kubernetes names and labels
# ---------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def check_dns_label(field: str, value: str) -> None:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise VeleroInputError(
            field,
            f"{value!r} is not a valid name: at most 63 lower-case letters, digits and '-', alphanumeric at both ends",
        )


def check_dns_subdomain(field: str, value: str) -> None:
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise VeleroInputError(
            field, f"{value!r} is not a valid name: lower-case letters, digits, '-' and '.', alphanumeric at both ends"
        )


def check_label_key(field: str, key: str) -> None:
    prefix, _slash, name = key.rpartition("/")
    if (
        (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)))
        or len(name) > 63
        or not _LABEL_NAME.match(name)
    ):
        raise VeleroInputError(
            field, f"{key!r} is not a valid label key: '[prefix/]name', name at most 63 characters of [A-Za-z0-9-_.]"
        )


def check_labels(field: str, labels: Optional[dict[str, Any]]) -> None:
    for key, value in (labels or {}).items():
        check_label_key(field, key)
        text = "" if value is None else str(value)
        if text and (len(text) > 63 or not _LABEL_NAME.match(text)):
            raise VeleroInputError(
                field,
                f"label {key!r} has invalid value {text!r}: "
                "at most 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends",
            )


# ---------------------------------------------------------------------------
# Options -> Schedule spec
# ---------------------------------------------------------------------------

# module option -> (key in spec.template, kind). Kinds decide conversion and comparison.
TEMPLATE_OPTIONS: dict[str, tuple[str, str]] = {
    "included_namespaces": ("includedNamespaces", "set"),
    "excluded_namespaces": ("excludedNamespaces", "set"),
    "included_resources": ("includedResources", "set"),
    "excluded_resources": ("excludedResources", "set"),
    "included_cluster_scoped_resources": ("includedClusterScopedResources", "set"),
    "excluded_cluster_scoped_resources": ("excludedClusterScopedResources", "set"),
    "included_namespace_scoped_resources": ("includedNamespaceScopedResources", "set"),
    "excluded_namespace_scoped_resources": ("excludedNamespaceScopedResources", "set"),
    "include_cluster_resources": ("includeClusterResources", "value"),
    "label_selector": ("labelSelector", "selector"),
    "or_label_selectors": ("orLabelSelectors", "selectors"),
    "storage_location": ("storageLocation", "value"),
    "volume_snapshot_locations": ("volumeSnapshotLocations", "set"),
    "snapshot_volumes": ("snapshotVolumes", "value"),
    "default_volumes_to_fs_backup": ("defaultVolumesToFsBackup", "value"),
    "snapshot_move_data": ("snapshotMoveData", "value"),
    "datamover": ("datamover", "value"),
    "ttl": ("ttl", "duration"),
    "csi_snapshot_timeout": ("csiSnapshotTimeout", "duration"),
    "item_operation_timeout": ("itemOperationTimeout", "duration"),
    "hooks": ("hooks", "hooks"),
    "ordered_resources": ("orderedResources", "ordered"),
    "resource_policy": ("resourcePolicy", "policy"),
    "parallel_files_upload": ("uploaderConfig", "uploader"),
    "volume_group_snapshot_label_key": ("volumeGroupSnapshotLabelKey", "value"),
    "backup_labels": ("metadata", "template_labels"),
}
# module option -> key directly under spec
SPEC_OPTIONS: dict[str, str] = {
    "schedule": "schedule",
    "paused": "paused",
    "use_owner_references_in_backup": "useOwnerReferencesInBackup",
}
_OLD_RESOURCE_FILTERS = ("included_resources", "excluded_resources", "include_cluster_resources")
_NEW_RESOURCE_FILTERS = (
    "included_cluster_scoped_resources",
    "excluded_cluster_scoped_resources",
    "included_namespace_scoped_resources",
    "excluded_namespace_scoped_resources",
)
_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _selector_to_api(field: str, selector: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    labels = selector.get("match_labels")
    if labels:
        check_labels(f"{field}.match_labels", labels)
        out["matchLabels"] = {str(k): str(v) for k, v in labels.items()}
    expressions = []
    for i, expr in enumerate(selector.get("match_expressions") or []):
        where = f"{field}.match_expressions[{i}]"
        operator, values = expr.get("operator"), list(expr.get("values") or [])
        if operator not in _SELECTOR_OPERATORS:
            raise VeleroInputError(where, f"operator {operator!r} is not one of {', '.join(_SELECTOR_OPERATORS)}")
        if operator in ("In", "NotIn") and not values:
            raise VeleroInputError(where, f"operator {operator} needs at least one value")
        if operator in ("Exists", "DoesNotExist") and values:
            raise VeleroInputError(where, f"operator {operator} takes no values")
        check_label_key(where + ".key", str(expr.get("key") or ""))
        item: dict[str, Any] = {"key": str(expr["key"]), "operator": operator}
        if values:
            item["values"] = [str(v) for v in values]
        expressions.append(item)
    if expressions:
        out["matchExpressions"] = expressions
    return out


def _exec_to_api(where: str, entry: dict[str, Any]) -> dict[str, Any]:
    exec_spec = entry.get("exec") or {}
    command = [str(c) for c in exec_spec.get("command") or []]
    if not command:
        raise VeleroInputError(where + ".command", "needs at least one item (the program to run)")
    out: dict[str, Any] = {"command": command}
    if exec_spec.get("container"):
        out["container"] = exec_spec["container"]
    if exec_spec.get("on_error"):
        if exec_spec["on_error"] not in ("Continue", "Fail"):
            raise VeleroInputError(where + ".on_error", "must be Continue or Fail")
        out["onError"] = exec_spec["on_error"]
    if exec_spec.get("timeout") is not None:
        out["timeout"] = parse_duration_option(where + ".timeout", exec_spec["timeout"])
    return {"exec": out}


_HOOK_LISTS = (
    ("included_namespaces", "includedNamespaces"),
    ("excluded_namespaces", "excludedNamespaces"),
    ("included_resources", "includedResources"),
    ("excluded_resources", "excludedResources"),
)


def _hook_to_api(where: str, hook: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"name": hook["name"]}
    for option, key in _HOOK_LISTS:
        if hook.get(option):
            item[key] = [str(v) for v in hook[option]]
    if hook.get("label_selector"):
        item["labelSelector"] = _selector_to_api(where + ".label_selector", hook["label_selector"])
    if not hook.get("pre") and not hook.get("post"):
        raise VeleroInputError(where, "a hook needs at least one 'pre' or 'post' exec entry")
    for phase in ("pre", "post"):
        entries = [_exec_to_api(f"{where}.{phase}[{j}].exec", e) for j, e in enumerate(hook.get(phase) or [])]
        if entries:
            item[phase] = entries
    return item


def _hooks_to_api(option: str, hooks: list[dict[str, Any]]) -> dict[str, Any]:
    resources = []
    seen = set()
    for i, hook in enumerate(hooks):
        where = f"{option}[{i}]"
        name = hook.get("name")
        if not name:
            raise VeleroInputError(where + ".name", "every hook needs a name")
        if name in seen:
            raise VeleroInputError(where + ".name", f"hook name {name!r} is used twice")
        seen.add(name)
        resources.append(_hook_to_api(where, hook))
    return {"resources": resources} if resources else {}


def _ordered_to_api(option: str, ordered: dict[str, Any]) -> dict[str, str]:
    """Kind -> comma-separated names; a list of names is joined for the user."""
    return {
        str(kind): ",".join(str(n) for n in names) if isinstance(names, (list, tuple)) else str(names)
        for kind, names in ordered.items()
    }


def _policy_to_api(option: str, name: str) -> dict[str, Any]:
    if not name:
        return {}
    check_dns_subdomain(option, name)
    return {"kind": "configmap", "name": name}  # the kind Velero's own CLI writes


def _uploader_to_api(option: str, value: int) -> dict[str, Any]:
    if value < 1:
        raise VeleroInputError(option, f"{value} must be 1 or more")
    return {"parallelFilesUpload": int(value)}


def _template_labels_to_api(option: str, labels: dict[str, Any]) -> dict[str, Any]:
    check_labels(option, labels)
    return {"labels": {str(k): str(v) for k, v in labels.items()}} if labels else {}


# kind -> converter(option name, option value) -> API value; empty collections mean "clear"
_CONVERTERS: dict[str, Callable[[str, Any], Any]] = {
    "set": lambda option, value: [str(v) for v in value],
    "duration": parse_duration_option,
    "selector": lambda option, value: _selector_to_api(option, value) if value else {},
    "selectors": lambda option, value: [_selector_to_api(f"{option}[{i}]", s or {}) for i, s in enumerate(value)],
    "hooks": _hooks_to_api,
    "ordered": _ordered_to_api,
    "policy": _policy_to_api,
    "uploader": _uploader_to_api,
    "template_labels": _template_labels_to_api,
    "value": lambda option, value: value,
}


def validate_options(params: dict[str, Any]) -> None:
    """Checks across options that Velero would only report later (as a failed backup)."""
    state = params.get("state")
    name = params.get("name") or ""
    check_dns_subdomain("name", name)
    check_dns_label("namespace", params.get("namespace") or "")
    if state == "absent":
        return
    if len(name) > 63:
        # Velero copies the name into the velero.io/schedule-name label of every Backup
        raise VeleroInputError(
            "name", f"{name!r} is longer than 63 characters, too long for the label Velero puts on its backups"
        )
    if params.get("schedule") is None:
        raise VeleroInputError("schedule", f"is required when state is {state}")
    validate_cron(params["schedule"])
    old = [o for o in _OLD_RESOURCE_FILTERS if params.get(o) is not None]
    new = [o for o in _NEW_RESOURCE_FILTERS if params.get(o) is not None]
    if old and new:
        raise VeleroInputError(
            old[0],
            f"cannot be combined with {new[0]}: Velero refuses to mix the old resource filters "
            f"({', '.join(_OLD_RESOURCE_FILTERS)}) with the scoped ones ({', '.join(_NEW_RESOURCE_FILTERS)})",
        )
    included = set(params.get("included_namespaces") or [])
    excluded = params.get("excluded_namespaces") or []
    if "*" in excluded:
        raise VeleroInputError("excluded_namespaces", "cannot contain '*' (that would exclude everything)")
    overlap = sorted(included.intersection(excluded))
    if overlap:
        raise VeleroInputError("excluded_namespaces", f"also lists included namespace(s) {', '.join(overlap)}")
    if params.get("storage_location"):
        check_dns_subdomain("storage_location", params["storage_location"])
    for location in params.get("volume_snapshot_locations") or []:
        check_dns_subdomain("volume_snapshot_locations", location)
    check_labels("labels", params.get("labels"))
    for key in params.get("annotations") or {}:
        check_label_key("annotations", key)


def desired_fields(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(spec fields, template fields) the user set, converted to API values (validated)."""
    spec = {key: params[opt] for opt, key in SPEC_OPTIONS.items() if params.get(opt) is not None}
    template = {}
    for option, (key, kind) in TEMPLATE_OPTIONS.items():
        if params.get(option) is not None:
            template[key] = _CONVERTERS[kind](option, params[option])
    return spec, template


def build_schedule(params: dict[str, Any]) -> dict[str, Any]:
    """The Schedule object to create from the module options (only fields the user set)."""
    spec, template = desired_fields(params)
    spec["template"] = {k: v for k, v in template.items() if not _is_empty(v)}
    if params.get("skip_immediately") is not None:
        spec["skipImmediately"] = params["skip_immediately"]
    metadata: dict[str, Any] = {"name": params["name"], "namespace": params["namespace"]}
    if params.get("labels"):
        metadata["labels"] = {str(k): str(v) for k, v in params["labels"].items()}
    if params.get("annotations"):
        metadata["annotations"] = {str(k): str(v) for k, v in params["annotations"].items()}
    return {"apiVersion": API_VERSION, "kind": "Schedule", "metadata": metadata, "spec": spec}


# ---------------------------------------------------------------------------
# Comparison: only what the user set, never status or controller-owned fields
# ---------------------------------------------------------------------------


def _is_empty(value: Any) -> bool:
    return value is None or value in ([], {}, "")


def _canonical_duration(value: Any) -> Any:
    try:
        return parse_go_duration(str(value))
    except ValueError:
        return str(value)


def _canonical_policy(value: Any) -> Any:
    return (str(value.get("kind", "")).lower(), value.get("name"), value.get("apiGroup") or None)


def _canonical(kind: str, value: Any) -> Any:
    """A form of a template value in which equal meanings compare equal."""
    if _is_empty(value):
        return None
    return _CANONICAL.get(kind, lambda v: v)(value)


def _canonical_selector(selector: Any) -> Any:
    if not isinstance(selector, dict):
        return selector
    labels = selector.get("matchLabels") or {}
    expressions = [
        (e.get("key"), e.get("operator"), tuple(sorted(e.get("values") or [])))
        for e in selector.get("matchExpressions") or []
    ]
    return (labels, sorted(expressions, key=repr))


def _canonical_hooks(hooks: Any) -> Any:
    if not isinstance(hooks, dict):
        return hooks
    out = []
    for resource in hooks.get("resources") or []:
        item = {k: v for k, v in resource.items() if not _is_empty(v)}
        if "labelSelector" in item:
            item["labelSelector"] = _canonical_selector(item["labelSelector"])
        for phase in ("pre", "post"):
            entries = []
            for entry in item.get(phase) or []:
                exec_spec = dict(entry.get("exec") or {})
                if exec_spec.get("timeout"):
                    exec_spec["timeout"] = _canonical_duration(exec_spec["timeout"])
                entries.append({k: v for k, v in exec_spec.items() if not _is_empty(v)})
            if entries:
                item[phase] = entries
        out.append(item)
    return out or None


# kind -> canonical form of a (non-empty) API value
_CANONICAL: dict[str, Callable[[Any], Any]] = {
    "set": lambda value: sorted(str(v) for v in value),
    "duration": _canonical_duration,
    "selector": _canonical_selector,
    "selectors": lambda value: [_canonical_selector(s) for s in value],
    "hooks": _canonical_hooks,
    "ordered": lambda value: {k: ",".join(p.strip() for p in str(v).split(",")) for k, v in value.items()},
    "policy": _canonical_policy,
    "template_labels": lambda value: value.get("labels") or None,
}


def schedule_patch(current: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch with only the fields whose meaning differs; {} when up to date.

    Never touches status, skipImmediately (the controller resets it), labels or annotations
    the user did not name, or template fields the user did not set.
    """
    spec_now = current.get("spec") or {}
    template_now = spec_now.get("template") or {}
    want_spec, want_template = desired_fields(params)
    spec_patch: dict[str, Any] = {}
    for key, value in want_spec.items():
        if spec_now.get(key) != value:
            spec_patch[key] = value
    template_patch: dict[str, Any] = {}
    for key, kind in TEMPLATE_OPTIONS.values():
        if key not in want_template:
            continue
        wanted = want_template[key]
        if _canonical(kind, wanted) != _canonical(kind, template_now.get(key)):
            template_patch[key] = None if _is_empty(wanted) else wanted
    if template_patch:
        spec_patch["template"] = template_patch
    # skipImmediately is one-shot: send it again only when this change unpauses the schedule
    if params.get("skip_immediately") is not None and spec_now.get("paused") and spec_patch.get("paused") is False:
        spec_patch["skipImmediately"] = params["skip_immediately"]
    patch: dict[str, Any] = {}
    meta_patch = {}
    for field in ("labels", "annotations"):
        now = (current.get("metadata") or {}).get(field) or {}
        changed = {str(k): str(v) for k, v in (params.get(field) or {}).items() if now.get(str(k)) != str(v)}
        if changed:
            meta_patch[field] = changed
    if meta_patch:
        patch["metadata"] = meta_patch
    if spec_patch:
        patch["spec"] = spec_patch
    return patch


def diff_view(obj: Optional[dict[str, Any]]) -> dict[str, Any]:
    """The part of a Schedule shown in --diff output (no status, no server bookkeeping)."""
    if not obj:
        return {}
    meta = obj.get("metadata") or {}
    view: dict[str, Any] = {"metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")}}
    for field in ("labels", "annotations"):
        if meta.get(field):
            view["metadata"][field] = meta[field]
    view["spec"] = obj.get("spec") or {}
    return view


# ---------------------------------------------------------------------------
# Backups: velero backup create --from-schedule, and their outcome
# ---------------------------------------------------------------------------


def backup_name(schedule_name: str, now: datetime) -> str:
    """``<schedule>-<yyyymmddhhmmss>`` in UTC, as Schedule.TimestampedName with time.Now().UTC()."""
    return f"{schedule_name}-{now.astimezone(timezone.utc).strftime('%Y%m%d%H%M%S')}"


def backup_from_schedule(schedule: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The Backup that ``velero backup create --from-schedule`` builds from ``schedule``.

    Spec = the schedule's template; labels = the template's labels when it has any, else
    the schedule's own labels, plus velero.io/schedule-name; annotations = the schedule's;
    an owner reference to the schedule when useOwnerReferencesInBackup is true.
    """
    meta = schedule.get("metadata") or {}
    spec = schedule.get("spec") or {}
    template = copy.deepcopy(spec.get("template") or {})
    template_labels = (template.get("metadata") or {}).get("labels")
    labels = dict(template_labels if template_labels is not None else meta.get("labels") or {})
    labels[SCHEDULE_NAME_LABEL] = meta["name"]
    metadata: dict[str, Any] = {
        "name": backup_name(meta["name"], now),
        "namespace": meta.get("namespace"),
        "labels": labels,
    }
    if meta.get("annotations"):
        metadata["annotations"] = dict(meta["annotations"])
    if spec.get("useOwnerReferencesInBackup") is True:
        metadata["ownerReferences"] = [
            {
                "apiVersion": API_VERSION,
                "kind": "Schedule",
                "name": meta["name"],
                "uid": meta.get("uid"),
                "controller": True,
            }
        ]
    if (template.get("resourcePolicy") or {}).get("name"):
        template["resourcePolicy"] = {"kind": "configmap", "name": template["resourcePolicy"]["name"]}
    return {"apiVersion": API_VERSION, "kind": "Backup", "metadata": metadata, "spec": template}


def schedule_phase(schedule: Optional[dict[str, Any]]) -> str:
    return str(((schedule or {}).get("status") or {}).get("phase") or "")


def backup_phase(backup: Optional[dict[str, Any]]) -> str:
    return str(((backup or {}).get("status") or {}).get("phase") or "")


def backup_failure(backup: dict[str, Any]) -> str:
    """A one-line reason for a failed Backup, from what Velero records in its status."""
    status = backup.get("status") or {}
    name = (backup.get("metadata") or {}).get("name")
    parts = [f"backup {name} ended in phase {status.get('phase')}"]
    if status.get("failureReason"):
        parts.append(f"reason: {status['failureReason']}")
    if status.get("validationErrors"):
        parts.append("validation errors: " + "; ".join(status["validationErrors"]))
    if status.get("errors"):
        parts.append(
            f"{status['errors']} error(s), {status.get('warnings') or 0} warning(s) (see `velero backup logs {name}`)"
        )
    return ", ".join(parts)


def schedule_validation_failure(schedule: dict[str, Any]) -> str:
    status = schedule.get("status") or {}
    errors = status.get("validationErrors") or ["(no validationErrors reported)"]
    name = (schedule.get("metadata") or {}).get("name")
    return f"schedule {name} is in phase FailedValidation: " + "; ".join(errors)


def schedule_summary(schedule: dict[str, Any]) -> dict[str, Any]:
    """What the _info module and RETURN report about one Schedule."""
    meta = schedule.get("metadata") or {}
    spec = schedule.get("spec") or {}
    status = schedule.get("status") or {}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "schedule": spec.get("schedule"),
        "paused": bool(spec.get("paused")),
        "phase": status.get("phase"),
        "last_backup": status.get("lastBackup"),
        "last_skipped": status.get("lastSkipped"),
        "validation_errors": status.get("validationErrors") or [],
        "ttl": (spec.get("template") or {}).get("ttl"),
        "storage_location": (spec.get("template") or {}).get("storageLocation"),
    }


# ---------------------------------------------------------------------------
# Argument spec (kept here so a future velero_backup module can share it)
# ---------------------------------------------------------------------------


def _selector_spec() -> dict[str, Any]:
    return {
        "match_labels": {"type": "dict"},
        "match_expressions": {
            "type": "list",
            "elements": "dict",
            "options": {
                "key": {"type": "str", "required": True, "no_log": False},
                "operator": {"type": "str", "required": True, "choices": list(_SELECTOR_OPERATORS)},
                "values": {"type": "list", "elements": "str"},
            },
        },
    }


def _exec_spec() -> dict[str, Any]:
    return {
        "exec": {
            "type": "dict",
            "required": True,
            "options": {
                "command": {"type": "list", "elements": "str", "required": True},
                "container": {"type": "str"},
                "on_error": {"type": "str", "choices": ["Continue", "Fail"]},
                "timeout": {"type": "str"},
            },
        }
    }


def _strings() -> dict[str, Any]:
    return {"type": "list", "elements": "str"}


def schedule_argument_spec() -> dict[str, Any]:
    """The velero_schedule options (kubernetes.core's auth options are added by the module)."""
    return {
        "name": {"type": "str", "required": True},
        "namespace": {"type": "str", "default": "velero"},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent", "paused"]},
        "schedule": {"type": "str"},
        "paused": {"type": "bool"},
        "skip_immediately": {"type": "bool"},
        "use_owner_references_in_backup": {"type": "bool"},
        "labels": {"type": "dict"},
        "annotations": {"type": "dict"},
        "backup_labels": {"type": "dict"},
        "ttl": {"type": "str"},
        "csi_snapshot_timeout": {"type": "str"},
        "item_operation_timeout": {"type": "str"},
        "included_namespaces": _strings(),
        "excluded_namespaces": _strings(),
        "included_resources": _strings(),
        "excluded_resources": _strings(),
        "included_cluster_scoped_resources": _strings(),
        "excluded_cluster_scoped_resources": _strings(),
        "included_namespace_scoped_resources": _strings(),
        "excluded_namespace_scoped_resources": _strings(),
        "include_cluster_resources": {"type": "bool"},
        "label_selector": {"type": "dict", "options": _selector_spec()},
        "or_label_selectors": {"type": "list", "elements": "dict", "options": _selector_spec()},
        "storage_location": {"type": "str"},
        "volume_snapshot_locations": _strings(),
        "snapshot_volumes": {"type": "bool"},
        "default_volumes_to_fs_backup": {"type": "bool"},
        "snapshot_move_data": {"type": "bool"},
        "datamover": {"type": "str"},
        "hooks": {
            "type": "list",
            "elements": "dict",
            "options": {
                "name": {"type": "str", "required": True},
                "included_namespaces": _strings(),
                "excluded_namespaces": _strings(),
                "included_resources": _strings(),
                "excluded_resources": _strings(),
                "label_selector": {"type": "dict", "options": _selector_spec()},
                "pre": {"type": "list", "elements": "dict", "options": _exec_spec()},
                "post": {"type": "list", "elements": "dict", "options": _exec_spec()},
            },
        },
        "ordered_resources": {"type": "dict"},
        "resource_policy": {"type": "str"},
        "parallel_files_upload": {"type": "int"},
        "volume_group_snapshot_label_key": {"type": "str", "no_log": False},
        "run_now": {"type": "bool", "default": False},
        "wait": {"type": "bool", "default": False},
        "wait_timeout": {"type": "int", "default": 120},
        "run_now_timeout": {"type": "int", "default": 3600},
    }


def normalize_state(params: dict[str, Any]) -> None:
    """``state: paused`` is ``state: present`` with ``paused: true``; reject contradictions."""
    if params.get("state") == "paused":
        if params.get("paused") is False:
            raise VeleroInputError("paused", "is false but state is paused; use state: present with paused: false")
        params["paused"] = True
    if params.get("state") == "absent" and params.get("run_now"):
        raise VeleroInputError("run_now", "cannot be used with state: absent")
    for option in ("wait_timeout", "run_now_timeout"):
        if params.get(option) is not None and params[option] < 0:
            raise VeleroInputError(option, f"{params[option]} must be 0 or more seconds")


def latest_backups(backups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Schedule name -> its newest Backup (by creation time, then name, which embeds the time)."""
    latest: dict[str, dict[str, Any]] = {}
    for backup in backups:
        meta = backup.get("metadata") or {}
        schedule = (meta.get("labels") or {}).get(SCHEDULE_NAME_LABEL)
        if not schedule:
            continue
        key = (meta.get("creationTimestamp") or "", meta.get("name") or "")
        held = latest.get(schedule)
        if held is None or key > (held["metadata"].get("creationTimestamp") or "", held["metadata"].get("name") or ""):
            latest[schedule] = backup
    return latest
