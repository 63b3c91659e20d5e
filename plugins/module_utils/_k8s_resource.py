# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One resource helper for every Kubernetes module of this collection.

Internal to homelab.pi_cluster: names here may change without notice.

``ResourceService`` wraps kubernetes.core's client (see ``_k8s_client.get_client``)
with what our modules need and nothing more:

* ``get`` / ``list`` / ``create`` / ``patch`` / ``delete`` / ``post_subresource``
  returning plain dicts;
* ``ensure``: read -> diff only the fields the caller manages -> merge-patch with a
  ``metadata.resourceVersion`` precondition; a 409 re-reads, re-diffs and re-applies;
* ``wait``: poll until a predicate holds, else ``K8sTimeoutError`` with a readable reason;
* retries with exponential backoff on 429/500/502/503/504 and connection errors;
* check mode: writes are predicted locally and never sent.

Errors are the ``K8sError`` hierarchy below; modules catch ``K8sError`` in ``main()``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple, Type


def transport_error_types() -> Tuple[Type[BaseException], ...]:
    """Connection-level errors: ``ConnectionError``, and urllib3's ``HTTPError`` once urllib3 is loaded.

    urllib3 is not imported here (~40 ms): the standard library client (``_k8s_http``) never loads
    it, and an exception of a module that was never imported cannot have been raised.
    """
    error = getattr(sys.modules.get("urllib3.exceptions"), "HTTPError", None)
    return (ConnectionError, error) if isinstance(error, type) else (ConnectionError,)


def client_error_types() -> Tuple[Type[BaseException], ...]:
    """What the kubernetes client raises for HTTP errors and lost connections.

    Imported on first use: ``kubernetes`` takes over a second to import, and a module
    should reject bad input without paying for it (``_k8s_client.get_client`` reports a
    missing library before any service exists).
    """
    try:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 (slow import, see above)
    except ImportError:
        return transport_error_types()
    return (ApiException, *transport_error_types())


# --------------------------------------------------------------------------- errors


class K8sError(Exception):
    """Any failure talking to the Kubernetes API; ``str()`` is meant for the user."""

    def __init__(
        self,
        message: str,
        status: Optional[int] = None,
        reason: Optional[str] = None,
        causes: Optional[List[Dict[str, Any]]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason  # the Status reason, e.g. "Conflict", "TooManyRequests"
        self.causes = causes or []


class K8sNotFoundError(K8sError):
    """404, or a kind the server does not serve (CRD not installed)."""


class K8sConflictError(K8sError):
    """409: AlreadyExists on create, or a stale resourceVersion that retries did not resolve."""


class K8sInvalidError(K8sError):
    """422/400: the server rejected the object; ``causes`` holds the Status details' causes."""


class K8sForbiddenError(K8sError):
    """401/403: the credentials are wrong or lack the permission."""


class K8sTimeoutError(K8sError):
    """A wait ran out of time; the message says what the object looked like last."""


class K8sUnavailableError(K8sError):
    """The API stayed unreachable or kept answering 429/5xx through every retry."""


class K8sTooManyRequestsError(K8sUnavailableError):
    """429 returned to the caller unretried (e.g. an eviction blocked by a PodDisruptionBudget)."""


# --------------------------------------------------------------------------- pure helpers

# Fields the API server writes; never compared, never shown as a change.
SERVER_OWNED_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")
SERVER_OWNED_TOP = ("status",)
RETRYABLE_STATUSES = frozenset((429, 500, 502, 503, 504))


def _split_path(path: str) -> List[str]:
    return [part for part in path.split(".") if part]


def _pop_path(obj: Any, parts: List[str]) -> None:
    for part in parts[:-1]:
        if not isinstance(obj, dict) or part not in obj:
            return
        obj = obj[part]
    if isinstance(obj, dict):
        obj.pop(parts[-1], None)


def strip_server_fields(obj: Optional[Dict[str, Any]], ignore_paths: Iterable[str] = ()) -> Dict[str, Any]:
    """A deep copy of ``obj`` without server-owned fields and without ``ignore_paths``.

    ``ignore_paths`` are dotted paths (``spec.skipImmediately``) a caller declares as
    owned by the server or a controller. ``None`` becomes ``{}`` (absent object).
    """
    if not obj:
        return {}
    clean = copy.deepcopy(obj)
    for key in SERVER_OWNED_TOP:
        clean.pop(key, None)
    metadata = clean.get("metadata")
    if isinstance(metadata, dict):
        for key in SERVER_OWNED_METADATA:
            metadata.pop(key, None)
    for path in ignore_paths:
        parts = _split_path(path)
        if parts:
            _pop_path(clean, parts)
    return clean


def is_subset(desired: Any, current: Any) -> bool:
    """True when ``current`` already satisfies ``desired``.

    Dicts: every desired key matches (``None`` means "must be absent"); extra keys in
    ``current`` are the server's. Lists: same length, items compared pairwise the
    same way (the server adds defaults inside list items). Scalars: equal.
    """
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(
            current.get(key) is None if want is None else key in current and is_subset(want, current[key])
            for key, want in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(current, list)
            and len(desired) == len(current)
            and all(is_subset(want, have) for want, have in zip(desired, current))  # noqa: B905 (lengths checked; targets may run Python < 3.10)
        )
    return desired == current


def merge_patch_for(current: Optional[Dict[str, Any]], desired: Dict[str, Any]) -> Dict[str, Any]:
    """The smallest JSON merge patch (RFC 7386) that makes ``current`` satisfy ``desired``.

    Only keys present in ``desired`` appear; ``None`` in ``desired`` deletes the key.
    Lists are replaced whole (merge-patch semantics). ``{}`` means nothing to do.
    """
    current = current or {}
    patch: Dict[str, Any] = {}
    for key, want in desired.items():
        have = current.get(key)
        if want is None:
            if have is not None:
                patch[key] = None
        elif isinstance(want, dict) and isinstance(have, dict):
            sub = merge_patch_for(have, want)
            if sub:
                patch[key] = sub
        elif key not in current or not is_subset(want, have):
            patch[key] = copy.deepcopy(want)
    return patch


def apply_merge_patch(target: Optional[Dict[str, Any]], patch: Any) -> Any:
    """RFC 7386 JSON merge patch applied to a copy of ``target`` (used to predict check mode)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> List[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise K8sInvalidError(f"JSON patch path {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _apply_json_op(parent: Any, last: str, op: Dict[str, Any]) -> None:
    kind = op["op"]
    is_list = isinstance(parent, list)
    if kind == "test":
        have = parent[int(last)] if is_list else parent.get(last)
        if have != op.get("value"):
            raise K8sInvalidError(f"JSON patch test failed at {op['path']}")
    elif kind == "remove":
        parent.pop(int(last) if is_list else last)
    elif kind in ("add", "replace"):
        value = copy.deepcopy(op.get("value"))
        if not is_list:
            parent[last] = value
        elif last == "-":
            parent.append(value)
        elif kind == "add":
            parent.insert(int(last), value)
        else:
            parent[int(last)] = value
    else:
        raise K8sInvalidError(f"JSON patch op {kind!r} is not supported here")


def apply_json_patch(target: Dict[str, Any], operations: List[Dict[str, Any]]) -> Dict[str, Any]:
    """RFC 6902 add/remove/replace/test applied to a copy of ``target`` (check-mode prediction)."""
    doc = copy.deepcopy(target)
    for op in operations:
        parts = _pointer(op["path"])
        if not parts:
            raise K8sInvalidError("JSON patch operations on the whole document are not supported")
        parent: Any = doc
        try:
            for part in parts[:-1]:
                parent = parent[int(part)] if isinstance(parent, list) else parent[part]
            _apply_json_op(parent, parts[-1], op)
        except (KeyError, IndexError, ValueError) as exc:
            raise K8sInvalidError(f"JSON patch path {op['path']} does not apply: {exc}") from exc
    return doc


def is_retryable(exc: BaseException) -> bool:
    """Transient failures worth another try: 429, 500, 502, 503, 504 and connection errors."""
    if isinstance(exc, transport_error_types()):
        return True
    status = getattr(exc, "status", None)
    return isinstance(status, int) and status in RETRYABLE_STATUSES


def backoff_delays(attempts: int, base: float = 0.5, cap: float = 8.0) -> List[float]:
    """Sleeps between ``attempts`` tries: base, 2*base, 4*base, ... each at most ``cap``."""
    return [min(cap, base * (2**i)) for i in range(max(0, attempts - 1))]


def _retry_after(exc: BaseException) -> Optional[float]:
    headers = getattr(exc, "headers", None) or {}
    try:
        value = headers.get("Retry-After")
        return float(value) if value is not None else None
    except (TypeError, ValueError, AttributeError):
        return None


def _status_body(exc: BaseException) -> Dict[str, Any]:
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            return {"message": body.strip()[:500]}
        return parsed if isinstance(parsed, dict) else {}
    return {}


_POOL_PREFIX = re.compile(r"^\w+\(host=[^)]*\):\s*")


def transport_error_parts(exc: BaseException) -> Tuple[str, str]:
    """(" at https://host:port" or "", short reason) of a connection-level error.

    urllib3 wraps the cause (``MaxRetryError(reason=NewConnectionError(...))``) and prefixes
    every message with the pool's repr; users need "Connection refused", not that.
    """
    pool = getattr(exc, "pool", None)
    where = ""
    if pool is not None and getattr(pool, "host", None):
        where = f" at {getattr(pool, 'scheme', 'https')}://{pool.host}:{pool.port}"
    cause = getattr(exc, "reason", None) or exc
    text = _POOL_PREFIX.sub("", str(cause)).strip()
    text = text.replace("Failed to establish a new connection: ", "")
    return where, text or type(cause).__name__


_ERROR_BY_STATUS = {
    400: K8sInvalidError,
    401: K8sForbiddenError,
    403: K8sForbiddenError,
    404: K8sNotFoundError,
    409: K8sConflictError,
    422: K8sInvalidError,
    429: K8sTooManyRequestsError,
}


def translate_api_error(exc: BaseException, what: str) -> K8sError:
    """Turn a client/HTTP exception into the matching ``K8sError`` with the server's message."""
    status = getattr(exc, "status", None)
    body = _status_body(exc)
    reason = body.get("reason") or getattr(exc, "reason", None)
    message = body.get("message") or str(getattr(exc, "reason", "") or exc)
    causes = (body.get("details") or {}).get("causes") or []
    if isinstance(exc, transport_error_types()):
        where, why = transport_error_parts(exc)
        return K8sUnavailableError(f"{what}: Kubernetes API{where} unreachable: {why}")
    if not isinstance(status, int) or not status:
        status = None
    error_class = _ERROR_BY_STATUS.get(status or 0, K8sError)
    if error_class is K8sError and status is not None and status >= 500:
        error_class = K8sUnavailableError
    return error_class(f"{what}: {message}", status, reason, causes)


def object_ref(kind: str, name: str, namespace: Optional[str] = None) -> str:
    """``Kind ns/name`` or ``Kind name`` for messages."""
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _group_version_path(api_version: str) -> str:
    """``v1`` -> ``/api/v1``; ``velero.io/v1`` -> ``/apis/velero.io/v1``."""
    return f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"


@dataclass(frozen=True)
class ApiResource:
    """A discovered resource: enough to build its URLs."""

    base: str  # /api/v1 or /apis/<group>/<version>
    plural: str
    namespaced: bool
    kind: str

    def path(self, name: Optional[str] = None, namespace: Optional[str] = None) -> str:
        parts = [self.base]
        if self.namespaced and namespace:
            parts += ["namespaces", namespace]
        parts.append(self.plural)
        if name:
            parts.append(name)
        return "/".join(parts)


@dataclass
class Result:
    """What ``ensure`` did; ``diff`` is ready for a module's ``diff`` return value."""

    changed: bool
    before: Dict[str, Any]
    after: Dict[str, Any]
    diff: Dict[str, Any] = field(default_factory=dict)
    created: bool = False
    raw: Optional[Dict[str, Any]] = None  # the full object afterwards (predicted in check mode), status included


def make_diff(before: Optional[Dict[str, Any]], after: Optional[Dict[str, Any]], ignore_paths: Iterable[str] = ()):
    """Ansible's ``{"before": ..., "after": ...}`` without server-owned fields."""
    paths = list(ignore_paths)
    return {"before": strip_server_fields(before, paths), "after": strip_server_fields(after, paths)}


# Where the kinds this collection's modules manage live. Built-in kinds are fixed by
# Kubernetes and the CRDs by their upstream definitions, so a module skips the discovery
# GET for them: a no-op re-run costs one GET per object. Other kinds are discovered.
KNOWN_RESOURCES: Dict[Tuple[str, str], Tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Node"): ("nodes", False),
    ("v1", "PersistentVolume"): ("persistentvolumes", False),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "Secret"): ("secrets", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("velero.io/v1", "Backup"): ("backups", True),
    ("velero.io/v1", "BackupStorageLocation"): ("backupstoragelocations", True),
    ("velero.io/v1", "Schedule"): ("schedules", True),
    ("longhorn.io/v1beta2", "BackupTarget"): ("backuptargets", True),
    ("longhorn.io/v1beta2", "RecurringJob"): ("recurringjobs", True),
    ("longhorn.io/v1beta2", "Volume"): ("volumes", True),
    ("helm.cattle.io/v1", "HelmChart"): ("helmcharts", True),
}
CRD_HINT = "is its CustomResourceDefinition installed?"


def known_resource(api_version: str, kind: str) -> Optional[ApiResource]:
    """The ApiResource of a kind in KNOWN_RESOURCES, without asking the server."""
    known = KNOWN_RESOURCES.get((api_version, kind))
    if known is None:
        return None
    return ApiResource(_group_version_path(api_version), known[0], known[1], kind)


# --------------------------------------------------------------------------- the service

PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}


class ResourceService:
    """CRUD, ensure and wait on any kind the server's discovery knows, with retries.

    ``client`` is what ``_k8s_client.get_client()`` returns (kubernetes.core's
    ``K8SClient``) or a ``kubernetes.dynamic.DynamicClient``. In check mode every
    write is predicted locally and no write request is sent; reads still happen.
    """

    def __init__(
        self,
        client: Any,
        check_mode: bool = False,
        *,
        attempts: int = 5,
        backoff_base: float = 0.5,
        conflict_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dyn = getattr(client, "client", client)
        self.check_mode = check_mode
        self.attempts = max(1, attempts)
        self.backoff_base = backoff_base
        self.conflict_attempts = max(1, conflict_attempts)
        self._sleep = sleep
        self._clock = clock
        self._resources: Dict[Tuple[str, str], ApiResource] = {}
        self._discovered: Set[str] = set()
        self.retries = 0  # transient failures retried so far (reported by modules / tests)
        # the stdlib client (_k8s_http) names its own; client_error_types() imports kubernetes
        self._errors = getattr(self._dyn, "error_types", None) or client_error_types()

    # -- plumbing ----------------------------------------------------------------

    def _with_retries(self, what: str, call: Callable[[], Any], retry_429: bool = True) -> Any:
        delays = backoff_delays(self.attempts, self.backoff_base)
        last: Optional[BaseException] = None
        for attempt in range(self.attempts):
            try:
                return call()
            # self._errors is a tuple of exception classes built at runtime (lazy kubernetes import)
            except self._errors as exc:  # pylint: disable=catching-non-exception
                status = getattr(exc, "status", None)
                retry = is_retryable(exc) and (retry_429 or status != 429)
                if not retry:
                    raise translate_api_error(exc, what) from exc
                last = exc
                if attempt < len(delays):
                    self.retries += 1
                    hint = _retry_after(exc)
                    self._sleep(min(hint, 30.0) if hint is not None else delays[attempt])
        if last is None:  # attempts >= 1, so only reachable if every try returned
            raise K8sError(f"{what}: no attempt was made")
        error = translate_api_error(last, what)
        if isinstance(error, K8sTooManyRequestsError):
            raise error from last
        host = getattr(getattr(self._dyn, "configuration", None), "host", None) or "the API server"
        if isinstance(last, transport_error_types()):
            reason = "unreachable: " + transport_error_parts(last)[1]
        else:
            reason = error.message[len(what) + 2 :] if error.message.startswith(what + ": ") else error.message
        raise K8sUnavailableError(
            f"{what}: Kubernetes API at {host} still failing after {self.attempts} attempts: {reason}",
            error.status,
            error.reason,
        ) from last

    def resource(self, api_version: str, kind: str) -> ApiResource:
        """Where ``kind`` of ``api_version`` lives (plural name, namespaced), from discovery.

        One GET of the group version's resource list per service, through the same
        retries as every other request (kubernetes.core's discoverer would turn a 503
        there into "kind not found" and cache that).
        """
        key = (api_version, kind)
        known = known_resource(api_version, kind)
        if known is not None:
            return known
        if key not in self._resources and api_version not in self._discovered:
            self._discover(api_version)
        if key not in self._resources:
            raise K8sNotFoundError(f"the API server does not serve kind {kind!r} in {api_version!r} ({CRD_HINT})")
        return self._resources[key]

    def _discover(self, api_version: str) -> None:
        self._discovered.add(api_version)
        base = _group_version_path(api_version)
        listing = self._request(f"discovering {api_version}", "get", base)
        for entry in listing.get("resources") or []:
            if "/" in entry.get("name", ""):
                continue  # subresources such as pods/eviction
            found = ApiResource(base, entry["name"], bool(entry.get("namespaced")), entry.get("kind", ""))
            self._resources[(api_version, found.kind)] = found

    def serves(self, api_version: str, kind: str) -> bool:
        """Whether the server serves ``kind`` right now, from a fresh discovery GET of its group version.

        Never answered from the cache nor from ``KNOWN_RESOURCES`` (for a known custom kind
        a missing CRD looks like a missing object), so a caller can poll it to wait for a
        CRD that a controller installs later. Refreshes the cache ``resource()`` uses.
        """
        self._discovered.discard(api_version)
        for key in [key for key in self._resources if key[0] == api_version]:
            del self._resources[key]
        try:
            self._discover(api_version)
        except K8sNotFoundError as exc:
            if exc.status == 404:
                return False  # the whole group version is not served (yet)
            raise
        return (api_version, kind) in self._resources

    def _path(self, api_version: str, kind: str, name: Optional[str], namespace: Optional[str]) -> str:
        return self.resource(api_version, kind).path(name, namespace)

    def _request(self, what: str, method: str, path: str, retry_429: bool = True, **params: Any) -> Any:
        def call() -> Any:
            response = self._dyn.request(method, path, serialize=False, **params)
            data = response.data
            if not data:
                return {}
            return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)

        return self._with_retries(what, call, retry_429=retry_429)

    # -- reads ---------------------------------------------------------------------

    def get(self, api_version: str, kind: str, name: str, namespace: Optional[str] = None) -> Optional[Dict[str, Any]]:
        """The object, or ``None`` when it does not exist."""
        what = f"reading {object_ref(kind, name, namespace)}"
        try:
            return self._request(what, "get", self._path(api_version, kind, name, namespace))
        except K8sNotFoundError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: Optional[str] = None,
        label_selector: Optional[str] = None,
        field_selector: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """All matching objects (items get their ``apiVersion``/``kind`` filled in)."""
        what = f"listing {kind} in {namespace or 'all namespaces'}"
        path = self._path(api_version, kind, None, namespace)
        items: List[Dict[str, Any]] = []
        token: Optional[str] = None
        while True:
            page = self._request(
                what,
                "get",
                path,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=500,
                _continue=token,
            )
            for item in page.get("items") or []:
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                items.append(item)
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                return items

    # -- writes --------------------------------------------------------------------

    def create(self, obj: Dict[str, Any]) -> Dict[str, Any]:
        """Create ``obj``; in check mode return it as it would be, without a request."""
        api_version, kind, name, namespace = _identity(obj)
        if self.check_mode:
            return copy.deepcopy(obj)
        path = self.resource(api_version, kind).path(None, namespace)
        what = f"creating {object_ref(kind, name, namespace)}"
        try:
            return self._request(what, "post", path, body=obj)
        except K8sNotFoundError as exc:
            group = api_version.rpartition("/")[0]
            if "." not in group or group.endswith("k8s.io"):
                raise
            # a known custom kind skipped discovery: a 404 here usually means the CRD is missing
            raise K8sNotFoundError(f"{exc.message} ({CRD_HINT})", exc.status, exc.reason) from exc

    def patch(  # noqa: PLR0917 (positional order is the documented contract)
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: Optional[str],
        patch: Any,
        patch_type: str = "merge",
        current: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        """Patch and return the new object. In check mode the result is predicted from
        ``current`` (read when not given); strategic patches are predicted as merge patches."""
        if patch_type not in PATCH_CONTENT_TYPES:
            raise K8sInvalidError(f"patch_type must be one of {sorted(PATCH_CONTENT_TYPES)}, got {patch_type!r}")
        what = f"patching {object_ref(kind, name, namespace)}"
        if self.check_mode:
            if current is None:
                current = self.get(api_version, kind, name, namespace)
            if current is None:
                raise K8sNotFoundError(f"{what}: not found", 404, "NotFound")
            if patch_type == "json":
                return apply_json_patch(current, patch)
            return apply_merge_patch(current, patch)
        path = self._path(api_version, kind, name, namespace)
        return self._request(what, "patch", path, body=patch, content_type=PATCH_CONTENT_TYPES[patch_type])

    def delete(  # noqa: PLR0917 (positional order is the documented contract)
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: Optional[str] = None,
        grace_period: Optional[int] = None,
        propagation_policy: Optional[str] = None,
        preconditions: Optional[Dict[str, str]] = None,
    ) -> Optional[Dict[str, Any]]:
        """Delete; return the object as it was, or ``None`` when there was nothing to delete.

        The server may keep the object a while (finalizers, graceful pod termination);
        use ``wait(..., predicate=lambda o: o is None, ...)`` to wait for it to go.
        """
        current = self.get(api_version, kind, name, namespace)
        if current is None or self.check_mode:
            return current
        body: Dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if grace_period is not None:
            body["gracePeriodSeconds"] = grace_period
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if preconditions:
            body["preconditions"] = preconditions
        what = f"deleting {object_ref(kind, name, namespace)}"
        with contextlib.suppress(K8sNotFoundError):  # gone meanwhile: the wanted outcome
            self._request(what, "delete", self._path(api_version, kind, name, namespace), body=body)
        return current

    def post_subresource(  # noqa: PLR0917 (positional order is the documented contract)
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: Optional[str],
        subresource: str,
        body: Dict[str, Any],
        retry_429: bool = True,
    ) -> Dict[str, Any]:
        """POST to ``<object>/<subresource>`` (e.g. a Pod's ``eviction``). Not sent in check mode.

        With ``retry_429=False`` a 429 is raised at once as ``K8sTooManyRequestsError``
        (an eviction blocked by a PodDisruptionBudget is not a transient error).
        """
        if self.check_mode:
            return copy.deepcopy(body)
        path = self._path(api_version, kind, name, namespace) + "/" + subresource
        what = f"{subresource} of {object_ref(kind, name, namespace)}"
        return self._request(what, "post", path, retry_429=retry_429, body=body)

    # -- ensure & wait ---------------------------------------------------------------

    def ensure(
        self,
        desired: Dict[str, Any],
        compare: Optional[Callable[[Dict[str, Any], Dict[str, Any]], bool]] = None,
        ignore_paths: Iterable[str] = (),
    ) -> Result:
        """Make the object satisfy ``desired`` (create it when missing).

        Only keys in ``desired`` are managed; ``None`` values remove keys. ``compare``,
        when given, decides equality instead of ``is_subset(desired, current)``
        (e.g. Go durations ``720h`` == ``720h0m0s``). ``ignore_paths`` are dotted paths
        owned by the server or a controller: never compared, never patched, not in the diff.
        The patch carries ``metadata.resourceVersion``; a 409 re-reads and retries.
        """
        api_version, kind, name, namespace = _identity(desired)
        paths = list(ignore_paths)
        wanted = strip_server_fields(desired, paths)
        for attempt in range(self.conflict_attempts):
            current = self.get(api_version, kind, name, namespace)
            if current is None:
                try:
                    after = self.create(wanted)
                except K8sConflictError:
                    if attempt + 1 < self.conflict_attempts:
                        continue  # created by someone else meanwhile: compare against theirs
                    raise
                return Result(
                    True, {}, strip_server_fields(after, paths), make_diff(None, after, paths), created=True, raw=after
                )
            identity = (api_version, kind, name, namespace)
            result = self._patch_to(identity, current, wanted, compare, paths, attempt + 1 == self.conflict_attempts)
            if result is not None:
                return result
        raise K8sConflictError(f"updating {object_ref(kind, name, namespace)}: still conflicting", 409, "Conflict")

    def modify(  # noqa: PLR0917 (positional order is the documented contract)
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: Optional[str],
        build: Callable[[Dict[str, Any]], Dict[str, Any]],
        ignore_paths: Iterable[str] = (),
    ) -> Result:
        """Read-modify-write for wanted fields that depend on the current object.

        ``build(current)`` returns the wanted fields exactly as ``ensure``'s ``desired``
        (only managed keys; lists are whole lists, e.g. a Node's merged taints). On a
        409 the object is re-read and ``build`` runs again on the fresh copy, so a
        concurrent writer's change is kept. Raises ``K8sNotFoundError`` when absent.
        """
        paths = list(ignore_paths)
        for attempt in range(self.conflict_attempts):
            current = self.get(api_version, kind, name, namespace)
            if current is None:
                raise K8sNotFoundError(f"{object_ref(kind, name, namespace)} not found", 404, "NotFound")
            wanted = strip_server_fields(build(copy.deepcopy(current)), paths)
            identity = (api_version, kind, name, namespace)
            result = self._patch_to(identity, current, wanted, None, paths, attempt + 1 == self.conflict_attempts)
            if result is not None:
                return result
        raise K8sConflictError(f"updating {object_ref(kind, name, namespace)}: still conflicting", 409, "Conflict")

    def _patch_to(  # noqa: PLR0917
        self,
        identity: Tuple[str, str, str, Optional[str]],
        current: Dict[str, Any],
        wanted: Dict[str, Any],
        compare: Optional[Callable[[Dict[str, Any], Dict[str, Any]], bool]],
        paths: List[str],
        last_try: bool,
    ) -> Optional[Result]:
        """Merge-patch ``current`` towards ``wanted`` under its resourceVersion; ``None`` = conflict, retry."""
        comparable = strip_server_fields(current, paths)
        equal = compare(comparable, wanted) if compare else is_subset(wanted, comparable)
        patch = merge_patch_for(comparable, wanted)
        if equal or not patch:
            return Result(False, comparable, comparable, make_diff(current, current, paths), raw=current)
        metadata = current.get("metadata") or {}
        patch.setdefault("metadata", {})["resourceVersion"] = metadata.get("resourceVersion")
        api_version, kind, name, namespace = identity
        try:
            after = self.patch(api_version, kind, name, namespace, patch, "merge", current=current)
        except K8sConflictError:
            if last_try:
                raise
            self.retries += 1
            return None
        return Result(True, comparable, strip_server_fields(after, paths), make_diff(current, after, paths), raw=after)

    def wait(  # noqa: PLR0917 (positional order is the documented contract)
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: Optional[str],
        predicate: Callable[[Optional[Dict[str, Any]]], bool],
        timeout: float,
        describe: Optional[Callable[[Optional[Dict[str, Any]]], str]] = None,
        interval: float = 1.0,
    ) -> Optional[Dict[str, Any]]:
        """Poll until ``predicate(obj)`` (``obj`` is ``None`` when absent); return that object.

        On timeout raise ``K8sTimeoutError`` naming the object and ``describe(last)``
        (e.g. its phase and conditions), so the user sees why it never got there.
        """
        deadline = self._clock() + max(0.0, timeout)
        while True:
            last = self.get(api_version, kind, name, namespace)
            if predicate(last):
                return last
            remaining = deadline - self._clock()
            if remaining <= 0:
                state = describe(last) if describe else ("absent" if last is None else "condition not met")
                raise K8sTimeoutError(
                    f"timed out after {timeout:g}s waiting for {object_ref(kind, name, namespace)}: {state}"
                )
            self._sleep(min(interval, remaining))


def _identity(obj: Dict[str, Any]) -> Tuple[str, str, str, Optional[str]]:
    metadata = obj.get("metadata") or {}
    try:
        return obj["apiVersion"], obj["kind"], metadata["name"], metadata.get("namespace")
    except KeyError as exc:
        raise K8sInvalidError(f"object needs apiVersion, kind and metadata.name; {exc.args[0]} is missing") from exc
