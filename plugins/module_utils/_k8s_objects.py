# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of the ``k8s_objects`` module: apply a list of objects, writing only what differs.

Internal to homelab.pi_cluster: names here may change without notice.

* ``validate_definitions`` checks the input before any request and returns normalised
  copies (a Secret's ``stringData`` becomes base64 ``data``, which is how the server
  stores and returns it, so an unchanged Secret compares equal);
* ``ObjectsApplier`` applies them in order through ``ResourceService.ensure`` (one GET per
  existing object), waits for kinds the server does not serve yet, deletes in reverse order;
* ``secret_values`` / ``mask_secret`` keep Secret values out of results, diffs and warnings.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import (
    CRD_HINT,
    K8sNotFoundError,
    ResourceService,
    known_resource,
    object_ref,
    strip_server_fields,
)

SECRET_FIELDS = ("data", "stringData")
MASK = "********"
MASK_CHANGED = "******** (changed)"
# Seconds between discovery requests while waiting for a kind to be served.
API_WAIT_INTERVAL = 2.0
ACTIONS = ("created", "patched", "deleted", "unchanged")

Identity = Tuple[str, str, str, Optional[str]]


class K8sObjectsError(Exception):
    """Base class of this module_utils' own errors (``K8sError`` covers the API's)."""


class K8sObjectsInputError(K8sObjectsError):
    """A definition is invalid; raised before any request is sent."""


class KindNotServedError(K8sObjectsError):
    """The kind of a definition is not served (its CRD is not installed), also after waiting."""


def argument_spec() -> Dict[str, Any]:
    """The module's own options (the auth options are added by ``k8s_argument_spec``)."""
    return {
        "definitions": {"type": "list", "elements": "dict", "required": True},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "api_wait_timeout": {"type": "int", "default": 0},
    }


# --------------------------------------------------------------------------- input


def is_secret(obj: Dict[str, Any]) -> bool:
    return obj.get("apiVersion") == "v1" and obj.get("kind") == "Secret"


def _is_builtin_group(api_version: str) -> bool:
    group = api_version.rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def _canonical_b64(value: str) -> str:
    """``value`` decoded and encoded again as the server returns it (standard alphabet, padded)."""
    raw = base64.b64decode("".join(value.split()), validate=True)
    return base64.b64encode(raw).decode("ascii")


def _normalize_secret(obj: Dict[str, Any], where: str) -> None:
    """Check a Secret's values and turn ``stringData`` into base64 ``data`` (in place)."""
    data: Dict[str, Any] = {}
    for name in SECRET_FIELDS:
        values = obj.get(name)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise K8sObjectsInputError(f"{where}: {name} must be a mapping of key to string")
        for key, value in values.items():
            if value is not None and not isinstance(value, str):
                raise K8sObjectsInputError(f"{where}: {name}.{key} must be a string, got {type(value).__name__}")
            if value is None:
                data[key] = None
            elif name == "stringData":
                data[key] = base64.b64encode(value.encode("utf-8")).decode("ascii")
            else:
                try:
                    data[key] = _canonical_b64(value)
                except (binascii.Error, ValueError):
                    raise K8sObjectsInputError(f"{where}: data.{key} is not valid base64") from None
    obj.pop("stringData", None)
    if data:
        obj["data"] = data  # stringData wins over data for the same key, as on the server


def _check_metadata(item: Dict[str, Any], where: str) -> None:
    metadata = item.get("metadata")
    if not isinstance(metadata, dict):
        raise K8sObjectsInputError(f"{where}: metadata is required (a mapping with at least name)")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise K8sObjectsInputError(f"{where}: metadata.name is required")
    if "/" in name or name in (".", ".."):
        raise K8sObjectsInputError(f"{where}: metadata.name {name!r} is not a valid object name")
    namespace = metadata.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not namespace or "/" in namespace):
        raise K8sObjectsInputError(f"{where}: metadata.namespace must be a non-empty name")
    if metadata.get("generateName") is not None:
        raise K8sObjectsInputError(f"{where}: metadata.generateName is not supported (objects need a fixed name)")


def validate_definitions(definitions: Any) -> List[Dict[str, Any]]:
    """Check every definition and return normalised deep copies, in the given order.

    Messages name the item index and the field (``definitions[2]: metadata.name is required``).
    Namespaced kinds this collection knows must carry ``metadata.namespace``; cluster-scoped
    known kinds lose a given namespace (the server would drop it too). Other kinds are checked
    against discovery when they are applied.
    """
    if not isinstance(definitions, list):
        raise K8sObjectsInputError("definitions must be a list of objects")
    seen: Dict[Identity, int] = {}
    out: List[Dict[str, Any]] = []
    for index, item in enumerate(definitions):
        where = f"definitions[{index}]"
        if not isinstance(item, dict):
            raise K8sObjectsInputError(f"{where}: must be a mapping (an object with apiVersion, kind, metadata)")
        for field_name in ("apiVersion", "kind"):
            value = item.get(field_name)
            if not isinstance(value, str) or not value.strip():
                raise K8sObjectsInputError(f"{where}: {field_name} is required")
        if item["kind"].endswith("List") and isinstance(item.get("items"), list):
            raise K8sObjectsInputError(f"{where}: kind {item['kind']} is a list; give its items as definitions")
        _check_metadata(item, where)
        obj = copy.deepcopy(item)
        metadata = obj["metadata"]
        known = known_resource(obj["apiVersion"], obj["kind"])
        if known is not None and known.namespaced and not metadata.get("namespace"):
            raise K8sObjectsInputError(f"{where}: metadata.namespace is required ({obj['kind']} is namespaced)")
        if known is not None and not known.namespaced:
            metadata.pop("namespace", None)
        if is_secret(obj):
            _normalize_secret(obj, where)
        identity = identity_of(obj)
        if identity in seen:
            raise K8sObjectsInputError(
                f"{where}: {describe(identity)} is already defined by definitions[{seen[identity]}]"
            )
        seen[identity] = index
        out.append(obj)
    return out


def identity_of(obj: Dict[str, Any]) -> Identity:
    metadata = obj["metadata"]
    return obj["apiVersion"], obj["kind"], metadata["name"], metadata.get("namespace") or None


def describe(identity: Identity) -> str:
    """``RecurringJob longhorn-system/daily (longhorn.io/v1beta2)`` for messages."""
    api_version, kind, name, namespace = identity
    return f"{object_ref(kind, name, namespace)} ({api_version})"


# --------------------------------------------------------------------------- secrets


def secret_values(definitions: List[Dict[str, Any]]) -> Set[str]:
    """Every Secret value of the raw definitions in every form it may show up in: as given,
    base64-encoded and base64-decoded. For ``module.no_log_values``."""
    values: Set[str] = set()
    for item in definitions:
        if not isinstance(item, dict) or item.get("kind") != "Secret":
            continue
        for name in SECRET_FIELDS:
            mapping = item.get(name)
            if not isinstance(mapping, dict):
                continue
            for value in mapping.values():
                if not isinstance(value, str) or not value:
                    continue
                values.add(value)
                values.add(base64.b64encode(value.encode("utf-8")).decode("ascii"))
                # not base64 (a stringData value): its raw and encoded forms are enough
                with contextlib.suppress(binascii.Error, ValueError):
                    values.add(base64.b64decode("".join(value.split()), validate=True).decode("utf-8"))
    values.discard("")
    return values


def mask_secret(before: Dict[str, Any], after: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Copies of a Secret's before/after with every ``data``/``stringData`` value replaced by a
    marker; a key whose value changed is marked ``MASK_CHANGED`` in ``after``."""
    before, after = copy.deepcopy(before), copy.deepcopy(after)
    old = dict(before["data"]) if isinstance(before.get("data"), dict) else {}
    for obj in (before, after):
        for name in SECRET_FIELDS:
            values = obj.get(name)
            if not isinstance(values, dict):
                continue
            for key in values:
                changed = obj is after and values[key] != old.get(key)
                values[key] = MASK_CHANGED if changed else MASK
    return before, after


def managed_view(obj: Optional[Dict[str, Any]], wanted: Dict[str, Any]) -> Dict[str, Any]:
    """The fields of ``obj`` that ``wanted`` names (recursively for mappings; lists whole)."""
    if not obj:
        return {}
    view: Dict[str, Any] = {}
    for key, want in wanted.items():
        if key not in obj:
            continue
        if isinstance(want, dict) and isinstance(obj[key], dict):
            view[key] = managed_view(obj[key], want)
        else:
            view[key] = copy.deepcopy(obj[key])
    return view


# --------------------------------------------------------------------------- apply


@dataclass
class Outcome:
    """What happened to one object; ``entry()`` is its item in the module's ``objects`` result."""

    identity: Identity
    action: str
    before: Dict[str, Any]
    after: Dict[str, Any]
    status: Optional[Dict[str, Any]] = None  # the live object's, so a caller can skip a separate read

    def entry(self) -> Dict[str, Any]:
        api_version, kind, name, namespace = self.identity
        entry: Dict[str, Any] = {
            "api_version": api_version,
            "kind": kind,
            "name": name,
            "namespace": namespace,
            "action": self.action,
        }
        if self.status is not None:
            entry["status"] = self.status
        return entry

    def diff(self) -> Dict[str, Any]:
        before, after = self.before, self.after
        if self.identity[1] == "Secret" and self.identity[0] == "v1":
            before, after = mask_secret(before, after)
        header = describe(self.identity)
        return {"before": before, "after": after, "before_header": header, "after_header": header}


class ObjectsApplier:
    """Apply normalised definitions in order (or delete them in reverse order).

    ``warn`` receives messages for the module's warnings; ``clock``/``sleep`` drive the
    wait for kinds not served yet (injected by the unit tests).
    """

    def __init__(
        self,
        service: ResourceService,
        api_wait_timeout: float = 0,
        *,
        warn: Callable[[str], None] = lambda _msg: None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        interval: float = API_WAIT_INTERVAL,
    ) -> None:
        self.service = service
        self.api_wait_timeout = max(0.0, float(api_wait_timeout))
        self.warn = warn
        self._clock = clock
        self._sleep = sleep
        self.interval = interval
        self.outcomes: List[Outcome] = []
        self._served: Set[str] = set()  # api versions whose discovery confirmed them this run

    @property
    def changed(self) -> bool:
        return any(o.action != "unchanged" for o in self.outcomes)

    def present(self, definitions: List[Dict[str, Any]]) -> List[Outcome]:
        for index, obj in enumerate(definitions):
            self.outcomes.append(self._apply(index, obj))
        return self.outcomes

    def absent(self, definitions: List[Dict[str, Any]]) -> List[Outcome]:
        for obj in reversed(definitions):
            identity = identity_of(obj)
            api_version, kind, name, namespace = identity
            try:
                before = self.service.get(api_version, kind, name, namespace)
                if before is not None and not (before.get("metadata") or {}).get("deletionTimestamp"):
                    before = self.service.delete(api_version, kind, name, namespace)
                    action = "unchanged" if before is None else "deleted"
                else:
                    action = "unchanged"  # missing, or already being deleted (finalizers, a terminating Namespace)
            except K8sNotFoundError as exc:
                if exc.status == 404 or self.service.serves(api_version, kind):
                    raise
                before, action = None, "unchanged"  # the kind is not served: no object of it can exist
            self.outcomes.append(Outcome(identity, action, managed_view(before, obj), {}))
        return self.outcomes

    def _apply(self, index: int, obj: Dict[str, Any]) -> Outcome:
        identity = identity_of(obj)
        api_version, kind = identity[0], identity[1]
        deadline: Optional[float] = None
        while True:
            try:
                wanted = self._scoped(index, obj)
                result = self.service.ensure(wanted)
            except K8sNotFoundError:
                # A known custom kind whose CRD is missing answers 404 on create; an unknown kind
                # fails discovery. Anything else that is served (e.g. a missing namespace) is real.
                if self._is_served(api_version, kind, fresh=True):
                    raise
                if self.service.check_mode:
                    return self._predict_unserved(identity, obj)
                if deadline is None:
                    deadline = self._clock() + self.api_wait_timeout
                self._wait_served(index, identity, deadline)
                continue
            if result.created and self.service.check_mode and not self._is_served(api_version, kind):
                return self._predict_unserved(identity, obj)
            action = "created" if result.created else "patched" if result.changed else "unchanged"
            status = (result.raw or {}).get("status") if not is_secret(wanted) else None
            return Outcome(
                identity,
                action,
                managed_view(result.before, wanted),
                managed_view(result.raw, wanted),
                status if isinstance(status, dict) else None,
            )

    def _scoped(self, index: int, obj: Dict[str, Any]) -> Dict[str, Any]:
        """``obj`` checked against discovery for kinds not in KNOWN_RESOURCES (namespaced or not)."""
        api_version, kind = obj["apiVersion"], obj["kind"]
        if known_resource(api_version, kind) is not None:
            return obj
        resource = self.service.resource(api_version, kind)  # K8sNotFoundError when not served
        self._served.add(api_version)
        metadata = obj["metadata"]
        if resource.namespaced and not metadata.get("namespace"):
            raise K8sObjectsInputError(f"definitions[{index}]: metadata.namespace is required ({kind} is namespaced)")
        if not resource.namespaced and metadata.get("namespace"):
            obj = copy.deepcopy(obj)
            del obj["metadata"]["namespace"]  # cluster-scoped: the server ignores it, so would we
        return obj

    def _is_served(self, api_version: str, kind: str, fresh: bool = False) -> bool:
        """Built-in groups are always served; others are confirmed by discovery once per run."""
        if _is_builtin_group(api_version) and known_resource(api_version, kind) is not None:
            return True
        if api_version in self._served and not fresh:
            return True
        served = self.service.serves(api_version, kind)
        if served:
            self._served.add(api_version)
        return served

    def _predict_unserved(self, identity: Identity, obj: Dict[str, Any]) -> Outcome:
        kind = identity[1]
        self.warn(
            f"{describe(identity)}: kind {kind} is not served yet ({CRD_HINT}); "
            "reported as would be created (a real run waits api_wait_timeout seconds for it)"
        )
        return Outcome(identity, "created", {}, strip_server_fields(obj))

    def _wait_served(self, index: int, identity: Identity, deadline: float) -> None:
        """Re-discover every ``interval`` seconds until the kind is served or ``deadline`` passes."""
        api_version, kind = identity[0], identity[1]
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                hint = (
                    f"still not served after waiting {self.api_wait_timeout:g}s (api_wait_timeout)"
                    if self.api_wait_timeout
                    else "set api_wait_timeout to wait for a CRD that is being installed"
                )
                raise KindNotServedError(
                    f"definitions[{index}]: {describe(identity)}: the API server does not serve kind "
                    f"{kind!r} in {api_version!r} ({CRD_HINT}); {hint}"
                )
            self._sleep(min(self.interval, remaining))
            if self._is_served(api_version, kind, fresh=True):
                return
