"""Stand-ins for the cluster controllers the storage and backup roles rely on (test-only).

A real cluster runs K3s's helm-controller, longhorn-manager and the Velero server; the lab has none of
them, so objects the roles write would never get a status. ``Controllers`` plays their part on the lab
API server (``lab.kubeapi``), writing what each real controller writes, in the shapes of the upstream
CRDs in ``../shared/upstream``:

- helm-controller: a HelmChart gets ``status.jobName`` (``helm-install-<name>``) and a ``JobCreated``
  condition. The chart's CRDs are served from the start ("installed"); for the ``longhorn`` chart the
  ``longhorn`` StorageClass its ``persistence.*`` values describe is written, as longhorn-manager does.
- longhorn-manager: a Volume becomes ``detached`` (robustness ``unknown``, as Longhorn reports a volume
  with no engine), or ``attached``/``healthy`` on its ``spec.nodeID``; ``actualSize`` 0, ``Scheduled``
  condition. A BackupTarget is ``available`` when it has a URL and its credential Secret (if named)
  exists in its namespace. Nothing is mounted: an ``nfs://`` or ``s3://`` target is not contacted.
- Velero: a BackupStorageLocation is ``Available`` when its bucket and ``config.s3Url`` are set and
  its credential Secret holds the referenced key, ``Unavailable`` with a message otherwise (checked on
  every pass, as Velero validates locations periodically). A Schedule with a valid cron expression is
  ``Enabled``, otherwise ``FailedValidation``. A Backup goes ``InProgress`` then ``Completed``, keeping
  a copy of the namespaced objects it includes in the "bucket" (``bucket_dir`` when given, else memory);
  a Restore recreates them from there (``namespaceMapping`` honoured, existing objects skipped with a
  warning, as Velero does) and ends ``Completed`` with its counts. Schedules are never fired by cron.

Each controller reconciles every object of its kinds on each pass; a pass runs on every API write of
those kinds (the server's write hooks) and every ``resync`` seconds. ``fail_backups`` makes the next
Backups end ``Failed`` (a fault hook for tests).
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import threading
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lab.kubeapi import ApiError, KubeAPIServer

Obj = dict[str, Any]

HELM = "helm.cattle.io/v1"
LONGHORN = "longhorn.io/v1beta2"
VELERO = "velero.io/v1"
# Kinds a pass reconciles; a write of any of them (or of a Secret a location needs) wakes the loop.
WATCHED = (
    "HelmChart",
    "Volume.longhorn.io",
    "BackupTarget",
    "BackupStorageLocation",
    "Schedule.velero.io",
    "Backup.velero.io",
    "Restore.velero.io",
    "Secret",
)
# What Velero never restores (its restore controller's non-restorable resources) plus the stand-in's
# own bookkeeping; these are not captured either.
NOT_RESTORED = {
    ("", "nodes"),
    ("", "events"),
    ("events.k8s.io", "events"),
    ("velero.io", "backups"),
    ("velero.io", "restores"),
    ("velero.io", "backuprepositories"),
    ("velero.io", "podvolumebackups"),
    ("velero.io", "podvolumerestores"),
    ("velero.io", "datauploads"),
    ("velero.io", "datadownloads"),
    ("storage.k8s.io", "csinodes"),
    ("storage.k8s.io", "volumeattachments"),
}
# metadata fields Velero's restore drops (resetMetadata): the object is created afresh.
SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
    "ownerReferences",
)
BACKUP_FORMAT_VERSION = "1.1.0"
DEFAULT_TTL = timedelta(hours=720)
STEP_SECONDS = 0.5  # between two phases of one object (InProgress is seen before Completed)
CRON_FIELD = re.compile(r"^[0-9*/,?LW#A-Za-z-]+$")


def stamp(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str) -> timedelta:
    """Go durations as Velero's ttl uses them (``720h0m0s``, ``90m``)."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text or "")
    return timedelta(seconds=sum(float(n) * units[u] for n, u in parts)) if parts else DEFAULT_TTL


def valid_cron(expression: str) -> bool:
    """Velero's cron parser accepts 5 fields (6 with seconds) or ``@every``/``@daily``-style descriptors."""
    text = (expression or "").strip()
    if text.startswith("@"):
        return text in ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly") or (
            text.startswith("@every ") and parse_duration(text[7:]) != DEFAULT_TTL
        )
    fields = text.split()
    return len(fields) in (5, 6) and all(CRON_FIELD.match(f) for f in fields)


def condition(kind: str, status: str, reason: str = "", message: str = "") -> Obj:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastProbeTime": "",
        "lastTransitionTime": stamp(),
    }


class Bucket:
    """Velero's object storage: one JSON document per backup (the objects it captured)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.memory: dict[str, list[Obj]] = {}

    def put(self, name: str, items: list[Obj]) -> None:
        if self.directory is None:
            self.memory[name] = copy.deepcopy(items)
            return
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.directory / f"{name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(items), encoding="utf-8")
        tmp.chmod(0o600)  # the objects include Secrets
        tmp.replace(path)

    def get(self, name: str) -> list[Obj] | None:
        if self.directory is None:
            return copy.deepcopy(self.memory.get(name))
        path = self.directory / f"{name}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


class Controllers:
    """The helm-controller, longhorn-manager and Velero stand-ins, on one reconcile loop."""

    def __init__(self, server: KubeAPIServer, bucket_dir: Path | None = None, resync: float = 5.0) -> None:
        self.server = server
        self.bucket = Bucket(bucket_dir)
        self.resync = resync
        self.fail_backups = ""  # non-empty: the next Backups end Failed with this reason
        self.errors: list[str] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._progress = False  # a pass wrote something: the next one (next phase) follows soon
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Controllers:
        for kind in WATCHED:
            self.server.on_write(kind, lambda _srv, _obj: self._wake.set())
        self._thread = threading.Thread(target=self._loop, name="standin-controllers", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self._progress = False
            try:
                self.reconcile()
            except Exception:  # a controller keeps running whatever one pass hit; the error is kept
                self.errors.append(traceback.format_exc())
            self._wake.wait(STEP_SECONDS if self._progress else self.resync)

    def reconcile(self) -> None:
        """One pass of every controller (also called directly by tests)."""
        for step in (
            self.helm_charts,
            self.longhorn_volumes,
            self.longhorn_backup_targets,
            self.storage_locations,
            self.schedules,
            self.backups,
            self.restores,
        ):
            step()

    # ------------------------------------------------------------------ helpers

    def _set_status(self, obj: Obj, status: Obj) -> None:
        """Write ``status`` (merged) unless the object already has it; a vanished object is fine."""
        current = obj.get("status") or {}
        if all(current.get(k) == v for k, v in status.items() if k not in ("conditions", "lastValidationTime")) and (
            "conditions" not in status or _same_conditions(current.get("conditions"), status["conditions"])
        ):
            return
        meta = obj["metadata"]
        self._progress = True
        with contextlib.suppress(ApiError):
            self.server.update_status(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"), status)

    def _secret(self, namespace: str, name: str) -> Obj | None:
        return self.server.get("v1", "Secret", name, namespace) if name else None

    # ------------------------------------------------------------------ helm-controller

    def helm_charts(self) -> None:
        for chart in self.server.list(HELM, "HelmChart"):
            name = chart["metadata"]["name"]
            job = f"helm-install-{name}"
            ns = chart["metadata"].get("namespace") or "kube-system"
            self._set_status(
                chart,
                {
                    "jobName": job,
                    "conditions": [
                        condition("JobCreated", "True", "Job created", f"Applying HelmChart using Job {ns}/{job}")
                    ],
                },
            )
            if (chart.get("spec") or {}).get("chart") == "longhorn":
                self._longhorn_storage_class(chart)

    def _longhorn_storage_class(self, chart: Obj) -> None:
        values = _chart_values(chart)
        persistence = values.get("persistence") or {}
        replicas = str(persistence.get("defaultClassReplicaCount", 3))
        default = str(persistence.get("defaultClass", True)).lower()
        current = self.server.get("storage.k8s.io/v1", "StorageClass", "longhorn")
        if (
            current
            and (current.get("parameters") or {}).get("numberOfReplicas") == replicas
            and (current["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class")
            == default
        ):
            return
        if current:  # parameters are immutable: longhorn-manager deletes and re-creates the class
            self.server.delete("storage.k8s.io/v1", "StorageClass", "longhorn")
        self.server.create(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": "longhorn",
                    "annotations": {"storageclass.kubernetes.io/is-default-class": default},
                },
                "provisioner": "driver.longhorn.io",
                "allowVolumeExpansion": True,
                "reclaimPolicy": str(persistence.get("reclaimPolicy", "Delete")),
                "volumeBindingMode": "Immediate",
                "parameters": {
                    "numberOfReplicas": replicas,
                    "staleReplicaTimeout": "30",
                    "fromBackup": "",
                    "fsType": "ext4",
                    "dataLocality": str(persistence.get("defaultDataLocality", "disabled")),
                },
            }
        )

    # ------------------------------------------------------------------ longhorn-manager

    def _owner(self) -> str:
        nodes = self.server.list("v1", "Node")
        return nodes[0]["metadata"]["name"] if nodes else ""

    def longhorn_volumes(self) -> None:
        for volume in self.server.list(LONGHORN, "Volume"):
            node = (volume.get("spec") or {}).get("nodeID") or ""
            status: Obj = {
                "state": "attached" if node else "detached",
                "robustness": "healthy" if node else "unknown",
                "currentNodeID": node,
                "ownerID": (volume.get("status") or {}).get("ownerID") or self._owner(),
                "actualSize": 0,
                "frontendDisabled": bool((volume.get("spec") or {}).get("disableFrontend")),
                "conditions": [
                    condition("Scheduled", "True"),
                    condition("Restore", "False"),
                    condition("TooManySnapshots", "False"),
                ],
            }
            self._set_status(volume, status)

    def longhorn_backup_targets(self) -> None:
        for target in self.server.list(LONGHORN, "BackupTarget"):
            spec = target.get("spec") or {}
            ns = target["metadata"]["namespace"]
            problem = ""
            if not spec.get("backupTargetURL"):
                problem = "backup target URL is empty"
            elif spec.get("credentialSecret") and self._secret(ns, spec["credentialSecret"]) is None:
                problem = f'failed to get credential secret: secret "{spec["credentialSecret"]}" not found'
            status: Obj = {
                "available": not problem,
                "ownerID": (target.get("status") or {}).get("ownerID") or self._owner(),
                "conditions": [condition("Unavailable", "True" if problem else "False", "", problem)],
            }
            if not problem:
                status["lastSyncedAt"] = (target.get("status") or {}).get("lastSyncedAt") or stamp()
            self._set_status(target, status)

    # ------------------------------------------------------------------ Velero

    def storage_locations(self) -> None:
        for location in self.server.list(VELERO, "BackupStorageLocation"):
            problem = self._location_problem(location)
            status: Obj = {"phase": "Unavailable" if problem else "Available", "lastValidationTime": stamp()}
            status["message"] = problem or None  # merge: None removes a previous message
            self._set_status(location, status)

    def _location_problem(self, location: Obj) -> str:
        """Why Velero could not use the location (empty when it could), worded like Velero's errors."""
        spec = location.get("spec") or {}
        name = location["metadata"]["name"]
        prefix = f'BackupStorageLocation "{name}" is unavailable: '
        if not (spec.get("objectStorage") or {}).get("bucket"):
            return prefix + "bucket is required"
        if spec.get("provider") in ("aws", "velero.io/aws") and not (spec.get("config") or {}).get("s3Url"):
            return prefix + "s3Url is required to reach the object store"
        credential = spec.get("credential") or {}
        if credential.get("name"):
            secret = self._secret(location["metadata"]["namespace"], credential["name"])
            if secret is None:
                return prefix + f'unable to get credentials: Secret "{credential["name"]}" not found'
            key = credential.get("key") or "cloud"
            if key not in (secret.get("data") or {}) and key not in (secret.get("stringData") or {}):
                return prefix + f'unable to get credentials: key "{key}" not found in Secret "{credential["name"]}"'
        return ""

    def schedules(self) -> None:
        for schedule in self.server.list(VELERO, "Schedule"):
            cron = (schedule.get("spec") or {}).get("schedule") or ""
            if valid_cron(cron):
                self._set_status(schedule, {"phase": "Enabled", "validationErrors": None})
            else:
                self._set_status(
                    schedule,
                    {"phase": "FailedValidation", "validationErrors": [f"invalid schedule: {cron!r} is not a cron"]},
                )

    def backups(self) -> None:
        for backup in self.server.list(VELERO, "Backup"):
            phase = (backup.get("status") or {}).get("phase") or "New"
            if phase == "New":
                self._start_backup(backup)
            elif phase == "InProgress":
                self._finish_backup(backup)

    def _start_backup(self, backup: Obj) -> None:
        spec = backup.get("spec") or {}
        ns = backup["metadata"]["namespace"]
        location_name = spec.get("storageLocation") or "default"
        location = self.server.get(VELERO, "BackupStorageLocation", location_name, ns)
        errors = []
        if location is None:
            errors.append(
                f"a BackupStorageLocation CRD with the name specified in the backup spec needs to be created "
                f"before this backup can be executed. Error: backupstoragelocations.velero.io "
                f'"{location_name}" not found'
            )
        elif (location.get("status") or {}).get("phase") != "Available":
            errors.append(
                f"backup can't be created because BackupStorageLocation {location_name} is in Unavailable status"
            )
        if errors:
            self._set_status(backup, {"phase": "FailedValidation", "validationErrors": errors})
            return
        start = datetime.now(UTC)
        self._set_status(
            backup,
            {
                "phase": "InProgress",
                "startTimestamp": stamp(start),
                "expiration": stamp(start + parse_duration(spec.get("ttl") or "")),
                "version": 1,
                "formatVersion": BACKUP_FORMAT_VERSION,
            },
        )

    def _finish_backup(self, backup: Obj) -> None:
        if self.fail_backups:
            self._set_status(
                backup, {"phase": "Failed", "failureReason": self.fail_backups, "completionTimestamp": stamp()}
            )
            return
        items = self.capture(backup.get("spec") or {})
        self.bucket.put(backup["metadata"]["name"], items)
        self._set_status(
            backup,
            {
                "phase": "Completed",
                "completionTimestamp": stamp(),
                "progress": {"totalItems": len(items), "itemsBackedUp": len(items)},
                "warnings": 0,
                "errors": 0,
            },
        )

    def _namespaces(self, spec: Obj) -> list[str]:
        included = spec.get("includedNamespaces") or ["*"]
        excluded = set(spec.get("excludedNamespaces") or [])
        names = [n["metadata"]["name"] for n in self.server.list("v1", "Namespace")]
        return [n for n in names if ("*" in included or n in included) and n not in excluded]

    def _resource_types(self, spec: Obj) -> list[Any]:
        """Namespaced types a backup/restore covers (one version per group/resource)."""
        included = set(spec.get("includedResources") or ["*"])
        excluded = set(spec.get("excludedResources") or [])
        seen, types = set(), []
        for rt in list(self.server.cluster.types.values()):
            names = {rt.plural, f"{rt.plural}.{rt.group}" if rt.group else rt.plural, rt.kind.lower()}
            if (
                not rt.namespaced
                or rt.key in seen
                or rt.key in NOT_RESTORED
                or "list" not in rt.verbs
                or ("*" not in included and not names & included)
                or names & excluded
            ):
                continue
            seen.add(rt.key)
            types.append(rt)
        return types

    def capture(self, spec: Obj) -> list[Obj]:
        """The objects a Backup with ``spec`` includes: the namespaces themselves, then their objects."""
        wanted = (spec.get("labelSelector") or {}).get("matchLabels") or {}
        namespaces = self._namespaces(spec)
        items = [self.server.get("v1", "Namespace", n) for n in namespaces]
        for rt in self._resource_types(spec):
            for ns in namespaces:
                found, _rv = self.server.cluster.select(rt, ns, lambda _o: True)
                items += [
                    o for o in found if all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
                ]
        return [copy.deepcopy(o) for o in items if o is not None]

    def restores(self) -> None:
        for restore in self.server.list(VELERO, "Restore"):
            phase = (restore.get("status") or {}).get("phase") or "New"
            if phase == "New":
                self._start_restore(restore)
            elif phase == "InProgress":
                self._run_restore(restore)

    def _start_restore(self, restore: Obj) -> None:
        spec = restore.get("spec") or {}
        ns = restore["metadata"]["namespace"]
        name = spec.get("backupName") or ""
        backup = self.server.get(VELERO, "Backup", name, ns) if name else None
        errors = []
        if not name:
            errors.append("Either a backup or schedule must be specified as a source for the restore, but not both")
        elif backup is None or self.bucket.get(name) is None:
            errors.append(f'Error retrieving backup: backups.velero.io "{name}" not found')
        elif (backup.get("status") or {}).get("phase") not in ("Completed", "PartiallyFailed"):
            errors.append("Backup is not in a completed or partially failed phase")
        if errors:
            self._set_status(restore, {"phase": "FailedValidation", "validationErrors": errors})
            return
        self._set_status(restore, {"phase": "InProgress", "startTimestamp": stamp()})

    def _run_restore(self, restore: Obj) -> None:
        spec = restore.get("spec") or {}
        items = self.bucket.get(spec["backupName"]) or []
        mapping = spec.get("namespaceMapping") or {}
        included = spec.get("includedNamespaces") or ["*"]
        excluded = set(spec.get("excludedNamespaces") or [])
        kinds = {(rt.group, rt.kind) for rt in self._resource_types(spec)} | {("", "Namespace")}
        labels = {"velero.io/backup-name": spec["backupName"], "velero.io/restore-name": restore["metadata"]["name"]}
        selected = []
        for item in items:
            source_ns = item["metadata"]["name"] if item["kind"] == "Namespace" else item["metadata"].get("namespace")
            group = item["apiVersion"].rpartition("/")[0]
            if (
                ("*" in included or source_ns in included)
                and source_ns not in excluded
                and (group, item["kind"]) in kinds
            ):
                selected.append((item, mapping.get(source_ns, source_ns)))
        restored, warnings = 0, []
        # namespaces first, as Velero restores them before what they contain
        for item, target_ns in sorted(selected, key=lambda pair: pair[0]["kind"] != "Namespace"):
            obj = restored_object(item, target_ns, labels)
            try:
                self.server.create(obj)
                restored += 1
            except ApiError as err:
                if err.code != 409:
                    raise
                if obj["kind"] != "Namespace":  # restoring into an existing namespace is normal
                    warnings.append(f'could not restore, {obj["kind"]} "{obj["metadata"]["name"]}" already exists')
        status: Obj = {
            "phase": "Completed",
            "completionTimestamp": stamp(),
            "progress": {"totalItems": len(selected), "itemsRestored": restored},
            "warnings": len(warnings),
            "errors": 0,
        }
        self._set_status(restore, status)


def restored_object(item: Obj, namespace: str, labels: dict[str, str]) -> Obj:
    """``item`` as Velero's restore creates it: server-set metadata and status dropped, moved to
    ``namespace``, labelled with the backup and restore names."""
    obj = copy.deepcopy(item)
    obj.pop("status", None)
    meta = obj["metadata"]
    for key in SERVER_METADATA:
        meta.pop(key, None)
    if obj["kind"] == "Namespace":
        meta["name"] = namespace
        obj.pop("spec", None)
    else:
        meta["namespace"] = namespace
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    return obj


def _chart_values(chart: Obj) -> Obj:
    """The HelmChart's values: ``spec.valuesContent`` (YAML) merged over nothing (defaults are the chart's)."""
    import yaml  # noqa: PLC0415 - only charts with values need it

    text = (chart.get("spec") or {}).get("valuesContent") or ""
    with contextlib.suppress(yaml.YAMLError):
        loaded = yaml.safe_load(text)
        return loaded if isinstance(loaded, dict) else {}
    return {}


def _same_conditions(current: Any, wanted: list[Obj]) -> bool:
    """Conditions equal apart from their timestamps (so a pass that changes nothing writes nothing)."""

    def key(items: Any) -> list[tuple[str, str, str, str]]:
        return sorted(
            (c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", "")) for c in items or []
        )

    return key(current) == key(wanted)


def start_controllers(server: KubeAPIServer, bucket_dir: Path | None = None) -> Controllers:
    """Start the controller stand-ins on ``server`` (the stand-in k3s server calls this)."""
    return Controllers(server, bucket_dir).start()
