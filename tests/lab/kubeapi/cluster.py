"""The API server's storage and semantics, independent of HTTP: what etcd plus the generic registry do.

One ``Cluster`` holds every object, a global resourceVersion counter, the watch event log and the
simulated controllers the tests rely on (namespace finalization, garbage collection of dependents,
graceful pod termination by a "kubelet", PodDisruptionBudget status). All mutations happen under one lock.
"""

from __future__ import annotations

import json
import math
import queue
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import builtins, schema, typed
from .errors import (
    ApiError,
    FieldError,
    already_exists,
    bad_request,
    conflict,
    forbidden,
    internal,
    invalid,
    not_found,
)
from .resources import ResourceType, builtin_types, crd_types, default_crd_files, load_crd_file
from .selectors import match_label_selector_object

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
EVENT_LOG_SIZE = 10000
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

Obj = dict[str, Any]
# CRD file set -> (types, objects, resourceVersion) of a fresh cluster; see Cluster.reset
_INITIAL_STATE: dict[tuple[tuple[str, float], ...], tuple[dict[Any, Any], dict[Any, Any], int]] = {}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def clone(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


@dataclass
class WriteResult:
    obj: Obj | None
    created: bool = False
    warnings: list[str] = field(default_factory=list)
    status_body: Obj | None = None  # DELETE answers with a Status instead of the object


@dataclass
class Event:
    rv: int
    key: tuple[str, str]
    type: str  # ADDED / MODIFIED / DELETED
    obj: Obj
    old: Obj | None


@dataclass
class Watcher:
    key: tuple[str, str]
    namespace: str | None
    matches: Callable[[Obj], bool]
    events: queue.Queue[Event | None] = field(default_factory=queue.Queue)


@dataclass
class Hook:
    kind: str
    group: str | None
    callback: Callable[..., Any]
    delay: float


class Cluster:
    def __init__(self, crd_files: Iterable[Path] | None = None) -> None:
        self.lock = threading.RLock()
        self.crd_files = list(crd_files) if crd_files is not None else default_crd_files()
        self.types: dict[tuple[str, str, str], ResourceType] = {}  # (group, version, plural)
        self.objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {}
        self.rv = 0
        self.log: deque[Event] = deque(maxlen=EVENT_LOG_SIZE)
        self.watchers: list[Watcher] = []
        self.hooks: list[Hook] = []
        self.pod_shutdown_seconds = 0.0  # how long the simulated kubelet takes to stop a deleted pod
        self.on_change: Callable[[], None] | None = None  # persistence hook (state file)
        self._terminating: set[str] = set()
        self.reset()

    # ------------------------------------------------------------------ registry

    def reset(self) -> None:
        """Back to the initial cluster: built-in types, the loaded CRDs and the four standard namespaces.

        The initial state is built once per process and CRD file set; servers share its object dicts,
        which is safe because stored objects are never mutated in place (every write stores a new dict)."""
        with self.lock:
            for watcher in self.watchers:
                watcher.events.put(None)
            self.watchers = []
            self.log.clear()
            self.hooks = []
            key = tuple((str(p), Path(p).stat().st_mtime) for p in self.crd_files)
            initial = _INITIAL_STATE.get(key)
            if initial is None:
                self.types, self.objects, self.rv = {}, {}, 0
                self._build_initial_state()
                initial = _INITIAL_STATE[key] = (
                    dict(self.types),
                    {k: dict(v) for k, v in self.objects.items()},
                    self.rv,
                )
            types, objects, rv = initial
            self.types = dict(types)
            self.objects = {k: dict(v) for k, v in objects.items()}
            self.rv = rv

    def _build_initial_state(self) -> None:
        for rt in builtin_types():
            self._register(rt)
        crd_rt = self.find_type("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert crd_rt is not None
        for path in self.crd_files:
            for crd in load_crd_file(Path(path)):
                obj = clone(crd)
                self._stamp_new(crd_rt, obj)
                obj["status"] = self._crd_status(obj)
                self._store(crd_rt).setdefault(("", obj["metadata"]["name"]), obj)
                self._register_crd(obj)
        ns_rt = self.find_type("", "v1", "namespaces")
        assert ns_rt is not None
        for name in INITIAL_NAMESPACES:
            ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            builtins.apply_defaults(ns, "Namespace")
            self._stamp_new(ns_rt, ns)
            self._store(ns_rt)[("", name)] = ns

    def _register(self, rt: ResourceType) -> None:
        self.types[(rt.group, rt.version, rt.plural)] = rt
        self.objects.setdefault(rt.key, {})

    def _register_crd(self, crd: Obj) -> None:
        for rt in crd_types(crd):
            self._register(rt)

    @staticmethod
    def _crd_status(crd: Obj) -> Obj:
        names = crd["spec"]["names"]
        stamp = crd["metadata"].get("creationTimestamp") or now()
        return {
            "acceptedNames": clone(names),
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": stamp,
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": stamp,
                },
            ],
            "storedVersions": [v["name"] for v in crd["spec"].get("versions", []) if v.get("storage")],
        }

    def find_type(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.types.get((group, version, plural))

    def type_for(self, api_version: str, kind: str) -> ResourceType:
        group, _, version = api_version.rpartition("/")
        for rt in self.types.values():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        raise KeyError(f"no resource type for {api_version} {kind}")

    def group_versions(self) -> dict[str, list[str]]:
        """group -> served versions (storage/preferred version first)."""
        out: dict[str, list[str]] = {}
        for rt in self.types.values():
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                if rt.storage_version == rt.version:
                    versions.insert(0, rt.version)
                else:
                    versions.append(rt.version)
        return out

    def _store(self, rt: ResourceType) -> dict[tuple[str, str], Obj]:
        return self.objects.setdefault(rt.key, {})

    # ------------------------------------------------------------------ bookkeeping

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _stamp_new(self, rt: ResourceType, obj: Obj) -> None:
        meta = obj.setdefault("metadata", {})
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        meta["resourceVersion"] = str(self._next_rv())
        if rt.has_generation:
            meta["generation"] = 1

    def _emit(self, rt: ResourceType, kind: str, obj: Obj, old: Obj | None) -> None:
        event = Event(int(obj["metadata"]["resourceVersion"]), rt.key, kind, clone(obj), clone(old) if old else None)
        self.log.append(event)
        ns = obj["metadata"].get("namespace")
        for watcher in self.watchers:
            if watcher.key == rt.key and (watcher.namespace is None or watcher.namespace == ns):
                watcher.events.put(event)
        if self.on_change:
            self.on_change()

    def present(self, rt: ResourceType, obj: Obj) -> Obj:
        """The object as served at ``rt``'s version (same storage, apiVersion rewritten; no conversion)."""
        out = clone(obj)
        out["apiVersion"] = rt.api_version
        out["kind"] = rt.kind
        return out

    # ------------------------------------------------------------------ reads

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        with self.lock:
            obj = self._store(rt).get((namespace or "", name))
            if obj is None:
                raise not_found(rt.plural, rt.group, name)
            return self.present(rt, obj)

    def select(
        self, rt: ResourceType, namespace: str | None, matches: Callable[[Obj], bool] = lambda _o: True
    ) -> tuple[list[Obj], int]:
        with self.lock:
            items = [
                self.present(rt, obj)
                for (ns, _name), obj in sorted(self._store(rt).items())
                if (namespace is None or ns == namespace) and matches(obj)
            ]
            return items, self.rv

    # ------------------------------------------------------------------ admission (prune, default, validate)

    def _admit(self, rt: ResourceType, obj: Obj, old: Obj | None, strict: bool = False) -> list[str]:
        """Normalise and validate ``obj`` in place; return warnings (pruned fields). Raises 422, or 400 for
        unknown fields with fieldValidation=Strict."""
        meta = obj["metadata"]
        warnings: list[str] = []
        if rt.custom and rt.schema is not None:
            dropped = schema.prune(obj, rt.schema)
            warnings = [f'unknown field "{path}"' for path in dropped]
            if warnings and strict:
                raise bad_request("strict decoding error: " + ", ".join(warnings))
            schema.default(obj, rt.schema)
            errors = builtins.metadata_errors(obj, "")
            errors += schema.validate(obj, rt.schema, old=old if old is not None else schema.MISSING)
        else:
            typed_schema = typed.schemas().get(rt.kind)
            if typed_schema is None:
                schema.prune(obj, {"x-kubernetes-preserve-unknown-fields": True})  # drops unknown metadata fields
            else:
                typed.decode_check(obj, rt.kind, rt.version, typed_schema)
                warnings = [f'unknown field "{path}"' for path in schema.prune(obj, typed_schema)]
                if warnings and strict:
                    raise bad_request("strict decoding error: " + ", ".join(warnings))
            builtins.apply_defaults(obj, rt.kind)
            errors = builtins.validate(obj, rt.kind)
        if old is not None:
            errors += self._finalizer_errors(obj, old)
            if not rt.custom:
                errors += builtins.update_errors(rt.kind, obj, old)
        if errors:
            raise invalid(rt.kind, rt.group, meta.get("name", ""), errors)
        if old is not None and rt.kind == "PersistentVolumeClaim" and not rt.group:
            sc_rt = self.find_type("storage.k8s.io", "v1", "storageclasses")
            assert sc_rt is not None
            classes = {name: sc for (_ns, name), sc in self._store(sc_rt).items()}
            reason = builtins.pvc_resize_forbidden(obj, old, classes)
            if reason:
                raise forbidden(rt.plural, rt.group, meta.get("name", ""), reason)
        return warnings

    @staticmethod
    def _finalizer_errors(obj: Obj, old: Obj) -> list[FieldError]:
        if not old["metadata"].get("deletionTimestamp"):
            return []
        added = [f for f in obj["metadata"].get("finalizers") or [] if f not in old["metadata"].get("finalizers", [])]
        if not added:
            return []
        detail = (
            "no new finalizers can be added if the object is being deleted, found new finalizers "
            + "[]string{"
            + ", ".join(json.dumps(f) for f in added)
            + "}"
        )
        return [FieldError("forbidden", "metadata.finalizers", detail=detail)]

    def _check_namespace(self, rt: ResourceType, namespace: str, name: str) -> None:
        ns_rt = self.find_type("", "v1", "namespaces")
        assert ns_rt is not None
        ns = self._store(ns_rt).get(("", namespace))
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise forbidden(
                rt.plural,
                rt.group,
                name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    # ------------------------------------------------------------------ create

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Any,
        *,
        dry_run: bool = False,
        trusted: bool = False,
        strict: bool = False,
    ) -> WriteResult:
        """POST. ``trusted`` (the test backdoor) keeps the given status, as a controller would have set it."""
        obj = self._check_body(rt, body, namespace)
        meta = obj["metadata"]
        with self.lock:
            if meta.get("resourceVersion"):
                raise internal("resourceVersion should not be set on objects to be created")
            if not meta.get("name"):
                if meta.get("generateName"):
                    meta["name"] = meta["generateName"] + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
                else:
                    raise invalid(
                        rt.kind,
                        rt.group,
                        "",
                        [FieldError("required", "metadata.name", detail="name or generateName is required")],
                    )
            name = meta["name"]
            if rt.namespaced:
                self._check_namespace(rt, meta["namespace"], name)
            for server_owned in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "managedFields",
                "selfLink",
            ):
                meta.pop(server_owned, None)
            if not trusted and rt.status_subresource:
                status = builtins.initial_status(rt.kind, obj.get("status")) if not rt.custom else None
                obj.pop("status", None)
                if status is not None:
                    obj["status"] = status
            warnings = self._admit(rt, obj, None, strict)
            key = (meta.get("namespace", ""), name)
            if key in self._store(rt):
                raise already_exists(rt.plural, rt.group, name)
            if dry_run:
                meta["uid"] = str(uuid.uuid4())
                meta["creationTimestamp"] = now()
                if rt.has_generation:
                    meta["generation"] = 1
                return WriteResult(self.present(rt, obj), created=True, warnings=warnings)
            self._stamp_new(rt, obj)
            if rt.kind == "CustomResourceDefinition":
                obj["status"] = self._crd_status(obj)
                self._register_crd(obj)
            self._store(rt)[key] = obj
            self._emit(rt, "ADDED", obj, None)
            self._after_change(rt, obj)
            return WriteResult(self.present(rt, obj), created=True, warnings=warnings)

    def _check_body(self, rt: ResourceType, body: Any, namespace: str | None) -> Obj:
        if not isinstance(body, dict):
            raise bad_request("the body of the request was not a JSON object")
        obj = clone(body)
        if obj.get("kind") and obj["kind"] != rt.kind:
            raise bad_request(
                f"the kind of the object ({obj['kind']}) does not match the kind of the resource ({rt.kind})"
            )
        group = obj.get("apiVersion", rt.api_version).rpartition("/")[0]
        if group != rt.group:
            raise bad_request(
                f"the API version in the data ({obj.get('apiVersion')}) does not match the expected "
                f"API version ({rt.api_version})"
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if namespace and body_ns and body_ns != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace or body_ns or "default"
        else:
            meta.pop("namespace", None)
        return obj

    # ------------------------------------------------------------------ update / patch

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        trusted: bool = False,
        create_if_missing: bool = False,
        strict: bool = False,
    ) -> WriteResult:
        """PUT (also the second half of every PATCH): optimistic concurrency on metadata.resourceVersion."""
        obj = self._check_body(rt, body, namespace)
        if obj["metadata"].get("name", name) != name:
            raise bad_request(
                f"the name of the object ({obj['metadata'].get('name')}) does not match the name on the URL ({name})"
            )
        obj["metadata"]["name"] = name
        with self.lock:
            key = ((namespace or "") if rt.namespaced else "", name)
            old = self._store(rt).get(key)
            if old is None:
                if create_if_missing:
                    obj["metadata"].pop("resourceVersion", None)
                    return self.create(rt, namespace, obj, dry_run=dry_run, trusted=trusted, strict=strict)
                raise not_found(rt.plural, rt.group, name)
            rv = obj["metadata"].get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise conflict(rt.plural, rt.group, name)
            new = self._merge_server_fields(rt, old, obj, subresource, trusted)
            warnings = self._admit(rt, new, old, strict)
            self._bump_generation(rt, old, new)
            if new == old:
                return WriteResult(self.present(rt, old), warnings=warnings)  # no-op: no new resourceVersion
            if dry_run:
                return WriteResult(self.present(rt, new), warnings=warnings)
            new["metadata"]["resourceVersion"] = str(self._next_rv())
            self._store(rt)[key] = new
            self._emit(rt, "MODIFIED", new, old)
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
                self._finish_delete(rt, new)
            self._after_change(rt, new)
            return WriteResult(self.present(rt, new), warnings=warnings)

    def _merge_server_fields(self, rt: ResourceType, old: Obj, obj: Obj, subresource: str | None, trusted: bool) -> Obj:
        if subresource == "status":
            new = clone(old)  # a status write changes nothing but status
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
            return new
        new = obj
        meta, old_meta = new["metadata"], old["metadata"]
        for owned in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
            "resourceVersion",
        ):
            if owned in old_meta:
                meta[owned] = old_meta[owned]
            else:
                meta.pop(owned, None)
        meta.pop("managedFields", None)
        meta.pop("selfLink", None)
        if rt.status_subresource and not trusted:
            if "status" in old:
                new["status"] = clone(old["status"])
            else:
                new.pop("status", None)
        if rt.kind == "CustomResourceDefinition":
            new["status"] = clone(old.get("status", {}))
        return new

    @staticmethod
    def _bump_generation(rt: ResourceType, old: Obj, new: Obj) -> None:
        if not rt.has_generation:
            return
        if rt.custom:
            skip = {"metadata", "status"} if rt.status_subresource else {"metadata"}
            changed = {k: v for k, v in old.items() if k not in skip} != {k: v for k, v in new.items() if k not in skip}
        else:
            changed = old.get("spec") != new.get("spec")
        generation = old["metadata"].get("generation", 1)
        new["metadata"]["generation"] = generation + 1 if changed else generation

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        apply: Callable[[Obj], Obj],
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        create_body: Obj | None = None,
        strict: bool = False,
    ) -> WriteResult:
        """PATCH: ``apply`` turns the current object into the desired one; a resourceVersion it sets is a
        precondition. ``create_body`` (server-side apply) creates the object when it does not exist."""
        with self.lock:
            key = ((namespace or "") if rt.namespaced else "", name)
            current = self._store(rt).get(key)
            if current is None:
                if create_body is not None:
                    return self.create(rt, namespace, create_body, dry_run=dry_run, strict=strict)
                raise not_found(rt.plural, rt.group, name)
            patched = apply(self.present(rt, current))
            if not isinstance(patched, dict):
                raise bad_request("the patched object is not a JSON object")
            patched.setdefault("metadata", {})
            if not isinstance(patched["metadata"], dict):
                raise bad_request("metadata must be an object")
            patched["metadata"].setdefault("resourceVersion", current["metadata"]["resourceVersion"])
            return self.update(rt, namespace, name, patched, subresource=subresource, dry_run=dry_run, strict=strict)

    # ------------------------------------------------------------------ delete

    def delete(
        self, rt: ResourceType, namespace: str | None, name: str, options: Obj | None = None, *, dry_run: bool = False
    ) -> WriteResult:
        options = options or {}
        with self.lock:
            key = ((namespace or "") if rt.namespaced else "", name)
            obj = self._store(rt).get(key)
            if obj is None:
                raise not_found(rt.plural, rt.group, name)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
                raise conflict(
                    rt.plural,
                    rt.group,
                    name,
                    f"Precondition failed: UID in precondition: {pre['uid']}, "
                    f"UID in object meta: {obj['metadata']['uid']}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
                raise conflict(
                    rt.plural,
                    rt.group,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                    f"ResourceVersion in object meta: {obj['metadata']['resourceVersion']}",
                )
            if dry_run:
                return self._delete_result(rt, obj, gone=not obj["metadata"].get("finalizers"))
            policy = options.get("propagationPolicy")
            if options.get("orphanDependents") is True:
                policy = "Orphan"
            grace = self._grace_period(rt, obj, options)
            if obj["metadata"].get("finalizers") or rt.kind == "Namespace" or grace:
                marked = self._mark_deleting(rt, obj, grace)
                return self._delete_result(rt, marked, gone=key not in self._store(rt))
            self._finish_delete(rt, obj, policy)
            return self._delete_result(rt, obj, gone=True)

    @staticmethod
    def _grace_period(rt: ResourceType, obj: Obj, options: Obj) -> int:
        """Graceful deletion applies to scheduled pods only (as with a kubelet; unscheduled pods go at once)."""
        if rt.kind != "Pod" or not (obj.get("spec") or {}).get("nodeName"):
            return 0
        if obj.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        return max(int(grace), 0)

    def _mark_deleting(self, rt: ResourceType, obj: Obj, grace: int) -> Obj:
        """Set deletionTimestamp and let the responsible controller finish; return the marked object."""
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if not obj["metadata"].get("deletionTimestamp"):
            old = obj
            obj = clone(obj)
            obj["metadata"]["deletionTimestamp"] = now()
            obj["metadata"]["deletionGracePeriodSeconds"] = grace
            if obj["metadata"].get("generation"):
                obj["metadata"]["generation"] += 1
            if rt.kind == "Namespace":
                obj.setdefault("status", {})["phase"] = "Terminating"
            obj["metadata"]["resourceVersion"] = str(self._next_rv())
            self._store(rt)[key] = obj
            self._emit(rt, "MODIFIED", obj, old)
        if rt.kind == "Namespace":
            self._terminate_namespace(obj["metadata"]["name"])
        elif rt.kind == "Pod" and grace and not obj["metadata"].get("finalizers"):
            self._kubelet_stop(rt, obj)
        return obj

    def _kubelet_stop(self, rt: ResourceType, pod: Obj) -> None:
        delay = min(self.pod_shutdown_seconds, pod["metadata"].get("deletionGracePeriodSeconds") or 0)
        if delay <= 0:
            self._finish_delete(rt, pod)
            return
        ns, name, uid = pod["metadata"]["namespace"], pod["metadata"]["name"], pod["metadata"]["uid"]

        def stop() -> None:
            with self.lock:
                current = self._store(rt).get((ns, name))
                if current and current["metadata"]["uid"] == uid and not current["metadata"].get("finalizers"):
                    self._finish_delete(rt, current)

        timer = threading.Timer(delay, stop)
        timer.daemon = True
        timer.start()

    def _finish_delete(self, rt: ResourceType, obj: Obj, policy: str | None = None) -> None:
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if self._store(rt).pop(key, None) is None:
            return
        gone = clone(obj)
        gone["metadata"]["resourceVersion"] = str(self._next_rv())
        self._emit(rt, "DELETED", gone, obj)
        if rt.kind == "CustomResourceDefinition":
            for crd_rt in crd_types(obj):
                self.types.pop((crd_rt.group, crd_rt.version, crd_rt.plural), None)
                self.objects.pop(crd_rt.key, None)
        self._collect_dependents(obj["metadata"]["uid"], policy or "Background")
        self._after_change(rt, gone)
        ns = obj["metadata"].get("namespace")
        if ns:
            ns_rt = self.find_type("", "v1", "namespaces")
            assert ns_rt is not None
            namespace = self._store(ns_rt).get(("", ns))
            if namespace and namespace["metadata"].get("deletionTimestamp") and ns not in self._terminating:
                self._terminate_namespace(ns)

    def _collect_dependents(self, uid: str, policy: str) -> None:
        """The garbage collector: delete (or orphan) objects whose ownerReferences name ``uid``."""
        for (group, plural), store in list(self.objects.items()):
            rt = next((t for t in self.types.values() if t.key == (group, plural)), None)
            if rt is None:
                continue
            for obj in list(store.values()):
                refs = obj["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == uid for r in refs):
                    continue
                if policy == "Orphan":
                    kept = clone(obj)
                    kept["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                    if not kept["metadata"]["ownerReferences"]:
                        del kept["metadata"]["ownerReferences"]
                    kept["metadata"]["resourceVersion"] = str(self._next_rv())
                    store[(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = kept
                    self._emit(rt, "MODIFIED", kept, obj)
                elif not obj["metadata"].get("deletionTimestamp"):
                    self.delete(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"])

    def _terminate_namespace(self, namespace: str) -> None:
        """The namespace controller: delete everything in it, then drop the namespace once it is empty."""
        remaining = False
        self._terminating.add(namespace)
        try:
            for rt in list({t.key: t for t in self.types.values() if t.namespaced}.values()):
                for (ns, name), obj in list(self._store(rt).items()):
                    if ns != namespace:
                        continue
                    if not obj["metadata"].get("deletionTimestamp") and (ns, name) in self._store(rt):
                        self.delete(rt, ns, name, {"gracePeriodSeconds": 0})
                    if (ns, name) in self._store(rt):
                        remaining = True
        finally:
            self._terminating.discard(namespace)
        ns_rt = self.find_type("", "v1", "namespaces")
        assert ns_rt is not None
        ns_obj = self._store(ns_rt).get(("", namespace))
        if ns_obj is not None and not remaining and not ns_obj["metadata"].get("finalizers"):
            self._finish_delete(ns_rt, ns_obj)

    def _delete_result(self, rt: ResourceType, obj: Obj, gone: bool) -> WriteResult:
        if not gone or rt.return_deleted_object:
            return WriteResult(self.present(rt, obj))
        details: Obj = {"name": obj["metadata"]["name"]}
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.plural
        details["uid"] = obj["metadata"]["uid"]
        return WriteResult(
            None,
            status_body={"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details},
        )

    # ------------------------------------------------------------------ eviction (pods/eviction)

    def evict(self, namespace: str, name: str, body: Any) -> None:
        """policy/v1 Eviction, as pkg/registry/core/pod/storage/eviction.go decides it."""
        pod_rt = self.find_type("", "v1", "pods")
        assert pod_rt is not None
        if not isinstance(body, dict):
            raise bad_request("the body of the request was not a JSON object")
        if (body.get("metadata") or {}).get("name", name) != name:
            raise bad_request("name in URL does not match name in Eviction object")
        options = body.get("deleteOptions") or {}
        dry_run = "All" in (options.get("dryRun") or [])
        with self.lock:
            pod = self._store(pod_rt).get((namespace, name))
            if pod is None:
                raise not_found("pods", "", name)
            status = pod.get("status") or {}
            if status.get("phase") in ("Succeeded", "Failed", "Pending") or pod["metadata"].get("deletionTimestamp"):
                self.delete(pod_rt, namespace, name, options, dry_run=dry_run)
                return
            pdbs = self._pdbs_for(pod)
            if len(pdbs) > 1:
                raise internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
                )
            if pdbs:
                self._check_budget(pdbs[0], pod)
            self.delete(pod_rt, namespace, name, options, dry_run=dry_run)

    def _pdbs_for(self, pod: Obj) -> list[Obj]:
        pdb_rt = self.find_type("policy", "v1", "poddisruptionbudgets")
        assert pdb_rt is not None
        labels = pod["metadata"].get("labels") or {}
        return [
            pdb
            for (ns, _n), pdb in sorted(self._store(pdb_rt).items())
            if ns == pod["metadata"]["namespace"]
            and match_label_selector_object((pdb.get("spec") or {}).get("selector"), labels)
        ]

    @staticmethod
    def _pod_healthy(pod: Obj) -> bool:
        status = pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        return status.get("phase") == "Running" and ready and not pod["metadata"].get("deletionTimestamp")

    def _check_budget(self, pdb: Obj, pod: Obj) -> None:
        """EvictionREST: unhealthy pods may go while the budget holds; otherwise a disruption must be allowed."""
        self._refresh_pdbs(pdb["metadata"]["namespace"])
        pdb_rt = self.find_type("policy", "v1", "poddisruptionbudgets")
        assert pdb_rt is not None
        pdb = self._store(pdb_rt)[(pdb["metadata"]["namespace"], pdb["metadata"]["name"])]
        spec, status, name = pdb.get("spec") or {}, pdb.get("status") or {}, pdb["metadata"]["name"]
        if not self._pod_healthy(pod):
            if spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
                return
            if status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0) > 0:
                return
        if status.get("observedGeneration", 0) < pdb["metadata"].get("generation", 1):
            raise ApiError(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
                {
                    "causes": [
                        {
                            "reason": "DisruptionBudget",
                            "message": f"The disruption budget {name} is still being processed by the server.",
                        }
                    ],
                    "retryAfterSeconds": 10,
                },
                headers={"Retry-After": "10"},
            )
        if status.get("disruptionsAllowed", 0) <= 0:
            raise ApiError(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
                {
                    "causes": [
                        {
                            "reason": "DisruptionBudget",
                            "message": f"The disruption budget {name} needs {status.get('desiredHealthy', 0)}"
                            f" healthy pods and has {status.get('currentHealthy', 0)} currently",
                        }
                    ]
                },
            )

    def _controller_scale(self, pod: Obj, seen: set[str]) -> int | None:
        """Replicas of the pod's scalable controller (Deployment via its ReplicaSet, ReplicaSet, StatefulSet);
        None when there is none, which the disruption controller treats as a sync failure."""
        ref = next((r for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
        if ref is None or ref.get("kind") not in ("ReplicaSet", "StatefulSet"):
            return None
        group = "apps"
        rt = self.find_type(group, "v1", "replicasets" if ref["kind"] == "ReplicaSet" else "statefulsets")
        assert rt is not None
        owner = self._store(rt).get((pod["metadata"]["namespace"], ref.get("name", "")))
        if owner is None or owner["metadata"]["uid"] != ref.get("uid"):
            return None
        top = owner
        deploy_ref = next(
            (
                r
                for r in owner["metadata"].get("ownerReferences") or []
                if r.get("controller") and r.get("kind") == "Deployment"
            ),
            None,
        )
        if ref["kind"] == "ReplicaSet" and deploy_ref is not None:
            deploy_rt = self.find_type(group, "v1", "deployments")
            assert deploy_rt is not None
            deployment = self._store(deploy_rt).get((pod["metadata"]["namespace"], deploy_ref.get("name", "")))
            if deployment is None:
                return None
            top = deployment
        if top["metadata"]["uid"] in seen:
            return 0
        seen.add(top["metadata"]["uid"])
        return int((top.get("spec") or {}).get("replicas", 1))

    def pdb_budget(self, pdb: Obj) -> Obj | None:
        """The disruption controller's arithmetic over the pods the PDB selects right now (None: sync failed)."""
        pod_rt = self.find_type("", "v1", "pods")
        assert pod_rt is not None
        spec = pdb.get("spec") or {}
        ns = pdb["metadata"]["namespace"]
        pods = [
            p
            for (pns, _n), p in self._store(pod_rt).items()
            if pns == ns and match_label_selector_object(spec.get("selector"), p["metadata"].get("labels") or {})
        ]
        healthy = sum(1 for p in pods if self._pod_healthy(p))
        min_available = spec.get("minAvailable")
        if isinstance(min_available, int):
            expected, desired = len(pods), min_available
        else:
            seen: set[str] = set()
            scales = [self._controller_scale(p, seen) for p in pods]
            if any(s is None for s in scales):
                return None
            expected = sum(s or 0 for s in scales)

            def scaled(value: Any) -> int:
                if isinstance(value, str) and value.endswith("%"):
                    return math.ceil(expected * int(value[:-1]) / 100)
                return int(value)

            if "maxUnavailable" in spec:
                desired = max(expected - scaled(spec["maxUnavailable"]), 0)
            elif min_available is not None:
                desired = scaled(min_available)
            else:
                desired = expected
        return {
            "disruptionsAllowed": max(healthy - desired, 0),
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
        }

    def _refresh_pdbs(self, namespace: str) -> None:
        """The disruption controller: keep each budget's status in step with the pods it selects."""
        pdb_rt = self.find_type("policy", "v1", "poddisruptionbudgets")
        assert pdb_rt is not None
        for (ns, name), pdb in list(self._store(pdb_rt).items()):
            if ns != namespace:
                continue
            status = dict(pdb.get("status") or {})
            budget = self.pdb_budget(pdb)
            if budget is None:  # failSafe: no scale found for some pod
                status["disruptionsAllowed"] = 0
                condition = {
                    "type": "DisruptionAllowed",
                    "status": "False",
                    "reason": "SyncFailed",
                    "message": "found no controllers for some of the selected pods",
                }
            else:
                status.update(budget)
                status["observedGeneration"] = pdb["metadata"].get("generation", 1)
                allowed = budget["disruptionsAllowed"] > 0
                condition = {
                    "type": "DisruptionAllowed",
                    "status": "True" if allowed else "False",
                    "reason": "SufficientPods" if allowed else "InsufficientPods",
                    "message": "",
                    "observedGeneration": status["observedGeneration"],
                }
            old_cond: Obj = next(
                (c for c in status.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), {}
            )
            same = old_cond.get("status") == condition["status"] and old_cond.get("reason") == condition["reason"]
            condition["lastTransitionTime"] = old_cond.get("lastTransitionTime", now()) if same else now()
            status["conditions"] = [condition]
            if status != pdb.get("status"):
                new = clone(pdb)
                new["status"] = status
                new["metadata"]["resourceVersion"] = str(self._next_rv())
                self._store(pdb_rt)[(ns, name)] = new
                self._emit(pdb_rt, "MODIFIED", new, pdb)

    def _after_change(self, rt: ResourceType, obj: Obj) -> None:
        if rt.kind in ("Pod", "PodDisruptionBudget", "ReplicaSet", "StatefulSet", "Deployment") and rt.group in (
            "",
            "policy",
            "apps",
        ):
            self._refresh_pdbs(obj["metadata"]["namespace"])

    # ------------------------------------------------------------------ watch

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        matches: Callable[[Obj], bool],
        resource_version: str | None,
        initial_events: bool = False,
    ) -> tuple[Watcher, list[Event], int]:
        """Register a watcher; return it with the events to send first (initial ADDED, or a replay from
        ``resource_version``) and the resourceVersion those events bring the watcher up to."""
        with self.lock:
            watcher = Watcher(rt.key, namespace, matches)
            backlog: list[Event] = []
            if initial_events or not resource_version or resource_version == "0":
                for (ns, _name), obj in sorted(self._store(rt).items()):
                    if namespace is None or ns == namespace:
                        backlog.append(
                            Event(int(obj["metadata"]["resourceVersion"]), rt.key, "ADDED", clone(obj), None)
                        )
            else:
                try:
                    since = int(resource_version)
                except ValueError:
                    raise bad_request(f"invalid resource version: {resource_version}") from None
                oldest = self.log[0].rv if self.log else self.rv + 1
                if since < oldest - 1 and self.log and len(self.log) == self.log.maxlen:
                    raise ApiError(410, "Expired", f"too old resource version: {since} ({oldest - 1})")
                backlog = [
                    e
                    for e in self.log
                    if e.rv > since
                    and e.key == rt.key
                    and (namespace is None or e.obj["metadata"].get("namespace") == namespace)
                ]
            self.watchers.append(watcher)
            return watcher, backlog, self.rv

    def unwatch(self, watcher: Watcher) -> None:
        with self.lock:
            if watcher in self.watchers:
                self.watchers.remove(watcher)

    @staticmethod
    def filter_event(event: Event, matches: Callable[[Obj], bool]) -> tuple[str, Obj] | None:
        """Selector semantics of a watch: objects moving in/out of the selection appear ADDED/DELETED."""
        now_in = matches(event.obj)
        was_in = matches(event.old) if event.old is not None else False
        if event.type == "ADDED":
            return ("ADDED", event.obj) if now_in else None
        if event.type == "DELETED":
            return ("DELETED", event.obj) if (was_in or now_in) else None
        if now_in and was_in:
            return ("MODIFIED", event.obj)
        if now_in:
            return ("ADDED", event.obj)
        if was_in:
            return ("DELETED", event.obj)
        return None

    # ------------------------------------------------------------------ hooks (simulated controllers)

    def add_hook(self, kind: str, callback: Callable[..., Any], delay: float = 0.0) -> None:
        name, _, group = kind.partition(".")
        self.hooks.append(Hook(name, group or None, callback, delay))

    def hooks_for(self, rt: ResourceType) -> list[Hook]:
        return [h for h in self.hooks if h.kind == rt.kind and (h.group is None or h.group == rt.group)]

    # ------------------------------------------------------------------ persistence

    def dump(self) -> Obj:
        with self.lock:
            return {
                "resourceVersion": self.rv,
                "objects": [
                    {"group": g, "plural": p, "items": list(store.values())}
                    for (g, p), store in self.objects.items()
                    if store
                ],
            }

    def load(self, state: Obj) -> None:
        with self.lock:
            for entry in state.get("objects", []):
                store = self.objects.setdefault((entry["group"], entry["plural"]), {})
                store.clear()
                for obj in entry["items"]:
                    store[(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = obj
                    if entry["plural"] == "customresourcedefinitions":
                        self._register_crd(obj)
            self.rv = max(self.rv, int(state.get("resourceVersion", 0)))


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it holds (for tests of asynchronous hooks)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
