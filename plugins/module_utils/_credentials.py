# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Credential rotation logic: registry checks, due dates, the rotation state machine, generation.

Internal to homelab.pi_cluster: names here may change without notice.

Pure functions only (no I/O), shared by the ``vault_keys`` action plugin, the
``credentials_plan`` module and the tests.

State of one credential in the vault file (under ``STATE_KEY``), beside its current value
(the top-level key the registry names in ``var``)::

    vault_credentials_state:
      grafana_admin:
        rotated_at: "2026-11-26T01:00:00Z"   # last promotion
        previous: <value before the last promotion>       # kept for rollback
        pending: <new value>                 # only while a rotation is in flight
        pending_since: "2026-11-26T02:00:00Z"
        phase: pending | applied | verified  # how far the in-flight rotation got

A rotation moves ``pending -> applied -> verified`` and is then promoted: ``previous`` gets
the old current value, the current value becomes the pending one, the pending one is gone.
A run that dies in between leaves the pending value (and its phase) in the vault, so the
next run can finish it or roll it back: the vault always knows every value a service may have.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Tuple

STATE_KEY = "vault_credentials_state"
PHASES = ("pending", "applied", "verified")
TRANSITIONS = ("status", "stage", "applied", "verified", "promote", "rollback")

# Character sets for generated values. "symbols" avoids quotes, backslash, '$', '{', '}' and
# whitespace so a value survives YAML, shells, SQL literals, URLs and Jinja untouched.
CHARSETS = {
    "alnum": string.ascii_letters + string.digits,
    "alnum_symbols": string.ascii_letters + string.digits + "!#%*+,-.:=?@^_~",
    "hex": "0123456789abcdef",
    "urlsafe": string.ascii_letters + string.digits + "-_",
}
MIN_LENGTH = 12
MAX_LENGTH = 256

# kind -> (required fields, optional fields); fields common to every kind are in COMMON_FIELDS.
COMMON_FIELDS = ("name", "kind", "var", "length", "charset", "interval_days", "description")
KINDS: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...]]] = {
    "pihole_admin": (("servers",), ("validate_certs", "ca_path")),
    "k8s_secret": (("namespace", "secret", "key"), ("restart", "create")),
    "postgres_role": (
        ("role", "login_host", "login_user", "login_password_var"),
        ("login_port", "login_db", "db", "psql"),
    ),
    "k3s_token": ((), ("servers", "agents", "token_file", "data_dir")),
    "command": (("apply",), ("verify", "host", "env_new", "env_old")),
}
RESTART_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULTS: Dict[str, Any] = {"length": 32, "charset": "alnum", "interval_days": 90}


class CredentialError(Exception):
    """Base class: every message names the bad field and, where it helps, the accepted values."""


class RegistryError(CredentialError):
    """A registry entry is malformed."""


class TransitionError(CredentialError):
    """A state change that the rotation state machine does not allow."""


def _fail(index: int, name: Any, field: str, problem: str) -> RegistryError:
    who = f"credentials_registry[{index}]" + (f" ({name})" if isinstance(name, str) and name else "")
    return RegistryError(f"{who}: {field}: {problem}")


def _check_int(entry: Dict[str, Any], index: int, field: str, low: int, high: int) -> int:
    value = entry[field]
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value))
        except ValueError:
            raise _fail(index, entry.get("name"), field, f"must be an integer, got {value!r}") from None
    if not low <= value <= high:
        raise _fail(index, entry.get("name"), field, f"must be between {low} and {high}, got {value}")
    return value


def _check_pihole(entry: Dict[str, Any], index: int) -> None:
    servers = entry["servers"]
    if not (isinstance(servers, list) and all(isinstance(s, str) and s for s in servers)):
        raise _fail(index, entry["name"], "servers", "a list of Pi-hole base URLs, e.g. ['https://192.168.1.25']")


def _check_k8s_secret(entry: Dict[str, Any], index: int) -> None:
    for item in entry.get("restart") or []:
        if not isinstance(item, dict) or item.get("kind") not in RESTART_KINDS or not item.get("name"):
            accepted = ", ".join(RESTART_KINDS)
            raise _fail(index, entry["name"], "restart", f"items need kind ({accepted}) and name, got {item!r}")


def _check_postgres(entry: Dict[str, Any], index: int) -> None:
    if not VAR_RE.match(str(entry["login_password_var"])):
        raise _fail(index, entry["name"], "login_password_var", "the NAME of the vault key holding the login password")


def _check_command(entry: Dict[str, Any], index: int) -> None:
    for field in ("env_new", "env_old"):
        if field in entry and not VAR_RE.match(str(entry[field])):
            raise _fail(index, entry["name"], field, "an environment variable name (letters, digits, '_')")
    for field in ("apply", "verify"):
        value = entry.get(field)
        if value is not None and not (isinstance(value, list) and value and all(isinstance(a, str) for a in value)):
            raise _fail(index, entry["name"], field, "an argv list of strings (the value goes to stdin, never argv)")


def _check_k3s(entry: Dict[str, Any], index: int) -> None:
    for field in ("servers", "agents"):
        if field in entry and not (isinstance(entry[field], str) and entry[field]):
            raise _fail(index, entry["name"], field, "the name of an inventory group (e.g. k3s_server)")


KIND_CHECKS = {
    "pihole_admin": _check_pihole,
    "k8s_secret": _check_k8s_secret,
    "postgres_role": _check_postgres,
    "command": _check_command,
    "k3s_token": _check_k3s,
}


def _check_kind_fields(entry: Dict[str, Any], index: int) -> None:
    name, kind = entry["name"], entry["kind"]
    required, optional = KINDS[kind]
    for field in required:
        if entry.get(field) in (None, "", []):
            raise _fail(index, name, field, f"required for kind {kind}")
    unknown = sorted(set(entry) - set(COMMON_FIELDS) - set(required) - set(optional))
    if unknown:
        accepted = ", ".join(sorted(set(COMMON_FIELDS) | set(required) | set(optional)))
        raise _fail(index, name, unknown[0], f"unknown field for kind {kind} (accepted: {accepted})")
    check = KIND_CHECKS.get(kind)
    if check:
        check(entry, index)


def validate_registry(registry: Any) -> List[Dict[str, Any]]:
    """Check every entry and return them normalized (defaults filled in). Raises RegistryError."""
    if not isinstance(registry, list):
        raise RegistryError(f"credentials_registry: must be a list of entries, got {type(registry).__name__}")
    seen_names: Dict[str, int] = {}
    seen_vars: Dict[str, str] = {}
    result = []
    for index, raw in enumerate(registry):
        if not isinstance(raw, dict):
            raise _fail(index, None, "entry", f"must be a mapping, got {type(raw).__name__}")
        entry = dict(DEFAULTS, **raw)
        name = entry.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise _fail(index, name, "name", "required; lower case letters, digits and '_' (starts with a letter)")
        if name in seen_names:
            raise _fail(index, name, "name", f"duplicate of entry {seen_names[name]}")
        seen_names[name] = index
        if entry.get("kind") not in KINDS:
            raise _fail(index, name, "kind", f"got {entry.get('kind')!r}; accepted: {', '.join(KINDS)}")
        entry.setdefault("var", f"vault_{name}")
        if not isinstance(entry["var"], str) or not VAR_RE.match(entry["var"]) or entry["var"] == STATE_KEY:
            raise _fail(index, name, "var", f"a variable name other than {STATE_KEY}")
        if entry["var"] in seen_vars:
            raise _fail(index, name, "var", f"{entry['var']} is already used by {seen_vars[entry['var']]}")
        seen_vars[entry["var"]] = name
        if entry["charset"] not in CHARSETS:
            raise _fail(index, name, "charset", f"got {entry['charset']!r}; accepted: {', '.join(CHARSETS)}")
        entry["length"] = _check_int(entry, index, "length", MIN_LENGTH, MAX_LENGTH)
        entry["interval_days"] = _check_int(entry, index, "interval_days", 0, 3650)
        _check_kind_fields(entry, index)
        result.append(entry)
    return result


# -- time ------------------------------------------------------------------------------------


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def format_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> Optional[datetime]:
    """ISO 8601 UTC time as written by format_time (or with an offset); None when absent or invalid."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# -- planning --------------------------------------------------------------------------------


def due_reason(entry: Dict[str, Any], state: Dict[str, Any], now: datetime, force: bool = False) -> Optional[str]:
    """Why the credential must be rotated now, or None when it is not due."""
    if state.get("phase") in PHASES or state.get("has_pending") or state.get("pending"):
        return f"resume: a rotation stopped at phase {state.get('phase') or 'pending'}"
    if force:
        return "forced"
    rotated = parse_time(state.get("rotated_at"))
    if rotated is None:
        return "never rotated"
    due_at = rotated + timedelta(days=entry["interval_days"])
    if now >= due_at:
        return f"last rotated {format_time(rotated)}, interval {entry['interval_days']} days"
    return None


def plan(
    registry: List[Dict[str, Any]], states: Dict[str, Any], now: datetime, only: str = "", force: bool = False
) -> Dict[str, Any]:
    """Split the (validated) registry into what is due and what is skipped, in registry order."""
    names = [e["name"] for e in registry]
    if only and only not in names:
        raise RegistryError(f"only: no credential named {only!r} (registry has: {', '.join(names) or 'none'})")
    due, skipped = [], []
    for entry in registry:
        state = states.get(entry["name"]) or {}
        if only and entry["name"] != only:
            skipped.append({"name": entry["name"], "reason": f"not selected (only={only})"})
            continue
        # naming one credential with -e only=<name> asks for it to be rotated now
        reason = due_reason(entry, state, now, force=force or bool(only))
        if reason is None:
            rotated = parse_time(state.get("rotated_at"))
            next_at = format_time(rotated + timedelta(days=entry["interval_days"])) if rotated else "now"
            skipped.append({"name": entry["name"], "reason": f"not due until {next_at}"})
        else:
            due.append({"name": entry["name"], "kind": entry["kind"], "reason": reason})
    return {"due": due, "skipped": skipped}


# -- the state machine -----------------------------------------------------------------------


def public_state(state: Dict[str, Any]) -> Dict[str, Any]:
    """What may be shown: phase and times, never a value."""
    return {
        "phase": state.get("phase") or "",
        "rotated_at": state.get("rotated_at") or "",
        "pending_since": state.get("pending_since") or "",
        "has_pending": "pending" in state,
        "has_previous": "previous" in state,
    }


def _progress(state: Dict[str, Any], action: str) -> Dict[str, Any]:
    """applied / verified: record how far the in-flight rotation got."""
    allowed = {"applied": ("pending", "applied"), "verified": ("applied", "verified")}[action]
    if state.get("phase") not in allowed:
        raise TransitionError(
            f"{action}: the rotation is at phase {state.get('phase')!r}; accepted: {', '.join(allowed)}"
        )
    return dict(state, phase=action)


def transition(
    state: Dict[str, Any], current: Optional[str], action: str, now: datetime, new_value: Optional[str] = None
) -> Tuple[Dict[str, Any], Optional[str]]:
    """Apply one state machine step. Returns (new state, new current value); inputs are not modified.

    stage:    no pending value -> pending = new_value (phase pending); an existing pending value
              is kept as it is (a resumed rotation must finish with the value it may have applied)
    applied:  pending|applied -> applied
    verified: applied|verified -> verified
    promote:  verified -> previous = current, current = pending, pending removed, rotated_at = now
    rollback: any pending -> pending removed (the service was set back to the current value)
    """
    if action not in TRANSITIONS:
        raise TransitionError(f"transition: got {action!r}; accepted: {', '.join(TRANSITIONS)}")
    new = dict(state)
    if action == "status" or (action == "stage" and "pending" in new):
        return new, current
    if action == "stage":
        if not new_value:
            raise TransitionError("stage: no new value to stage")
        new.update(pending=new_value, phase="pending", pending_since=format_time(now))
        return new, current
    if "pending" not in new:
        raise TransitionError(f"{action}: there is no pending value (stage one first)")
    if action in ("applied", "verified"):
        return _progress(new, action), current
    if action == "promote" and new.get("phase") != "verified":
        raise TransitionError(f"promote: the rotation is at phase {new.get('phase')!r}; accepted: verified")
    pending = new.pop("pending")
    for key in ("phase", "pending_since"):
        new.pop(key, None)
    if action == "rollback":
        return new, current
    if current:
        new["previous"] = current
    new["rotated_at"] = format_time(now)
    return new, pending


# -- values ----------------------------------------------------------------------------------


def generate(length: int = 32, charset: str = "alnum") -> str:
    """A random value from ``secrets``; alnum-based sets always contain a lower, an upper letter and a digit."""
    if charset not in CHARSETS:
        raise CredentialError(f"charset: got {charset!r}; accepted: {', '.join(CHARSETS)}")
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise CredentialError(f"length: must be between {MIN_LENGTH} and {MAX_LENGTH}, got {length}")
    alphabet = CHARSETS[charset]
    while True:
        value = "".join(secrets.choice(alphabet) for _position in range(length))
        if charset in ("hex", "urlsafe") or (
            any(c.islower() for c in value) and any(c.isupper() for c in value) and any(c.isdigit() for c in value)
        ):
            return value


def scram_sha256_verifier(password: str, salt: Optional[bytes] = None, iterations: int = 4096) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier (RFC 5802/7677), computed on the client as psql's \\password does.

    ALTER ROLE with the verifier instead of the plain password keeps the password out of the
    server's statement log and pg_stat_activity. (SASLprep is skipped: generated values are ASCII.)
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
