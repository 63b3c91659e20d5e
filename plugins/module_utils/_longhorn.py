# -*- coding: utf-8 -*-
# Copyright: homelab.pi_cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Longhorn Volume logic for the ``longhorn_volume`` module.

Internal to homelab.pi_cluster: this API may change without notice.

Pure functions only (no API calls): size parsing and normalising, option validation,
the Volume spec the user manages, what may change and what may not, and the PV/PVC that
Longhorn's own "Create PV/PVC" action would build. The module does the I/O.

Behaviour mirrored from longhorn-manager (read, not copied):
- ``util.RoundUpSize``: sizes are stored in bytes, rounded up to 2 MiB.
- the volume webhook fills defaults on create (replicas, locality, access mode,
  compression, data engine, selectors ...): we only compare what the user set.
- immutable after create: ``encrypted`` and ``backingImage`` (CRD CEL rules),
  ``dataEngine`` and ``backupCompressionMethod`` (webhook), ``dataSource`` and
  ``fromBackup`` (only read at creation).
- resizing: shrinking is rejected; while a PVC is bound (``status.kubernetesStatus.pvcName``
  set and ``lastPVCRefAt`` empty) the webhook rejects a Volume resize until the PVC is
  expanded, so growth goes through the PVC.
- ``datastore.NewPVManifestForVolume`` / ``NewPVCManifestForVolume`` for PV and PVC.
"""

from __future__ import annotations

import copy
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Optional

API_VERSION = "longhorn.io/v1beta2"
KIND = "Volume"
DEFAULT_NAMESPACE = "longhorn-system"
CSI_DRIVER = "driver.longhorn.io"
# Longhorn setting ``default-longhorn-static-storage-class`` defaults to this.
DEFAULT_STATIC_STORAGE_CLASS = "longhorn-static"
DEFAULT_FS_TYPE = "ext4"
# Longhorn's defaults for the encryption secret of a static PV.
DEFAULT_CRYPTO_SECRET = ("longhorn-crypto", "longhorn-system")

MIB = 1024 * 1024
SIZE_ALIGNMENT = 2 * MIB  # util.SizeAlignment
LUKS2_MINIMAL_SIZE = 16 * MIB  # an encrypted volume must be bigger than the LUKS2 header
XFS_MINIMAL_SIZE = 300 * MIB  # util.MinimalVolumeSizeXFS
INT64_MAX = 2**63 - 1
VOLUME_NAME_MAX = 40  # datastore.NameMaximumLength ("pvc-" + a UUID)
REPLICAS_MIN, REPLICAS_MAX = 1, 20  # types.ValidateReplicaCount

JOB_LABEL_PREFIX = "recurring-job.longhorn.io/"
GROUP_LABEL_PREFIX = "recurring-job-group.longhorn.io/"
LABEL_ENABLED = "enabled"
DEFAULT_GROUP = "default"

VOLUME_STATES_SETTLED = ("attached", "detached")

_SIZE_SUFFIXES = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
    "Ei": 1024**6,
}
_SIZE_RE = re.compile(
    r"^(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE](?P<exp>[+-]?[0-9]+))?(?P<suffix>[KMGTPE]i|[kMGTPE])?$"
)
_BINARY_SUFFIXES = (("Ei", 1024**6), ("Pi", 1024**5), ("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024))
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DATA_SOURCE = re.compile(r"^(vol://[a-z0-9][-a-z0-9.]*|snap://[a-z0-9][-a-z0-9.]*/[A-Za-z0-9][-A-Za-z0-9_.]*)$")

SIZE_HELP = "a Kubernetes quantity such as 10Gi, 512Mi, 1.5Gi or 1G, or a number of bytes"

CHOICES = {
    "data_locality": ("disabled", "best-effort", "strict-local"),
    "access_mode": ("rwo", "rwop", "rwx"),
    "frontend": ("blockdev", "iscsi", "nvmf", "ublk"),
    "data_engine": ("v1", "v2"),
    "replica_auto_balance": ("ignored", "disabled", "least-effort", "best-effort"),
    "snapshot_data_integrity": ("ignored", "disabled", "enabled", "fast-check"),
    "backup_compression_method": ("none", "lz4", "gzip"),
    "fs_type": ("ext4", "xfs"),
}

# option name -> Volume spec field, for fields that can be changed in place.
MUTABLE_FIELDS = {
    "number_of_replicas": "numberOfReplicas",
    "data_locality": "dataLocality",
    "access_mode": "accessMode",
    "frontend": "frontend",
    "node_selector": "nodeSelector",
    "disk_selector": "diskSelector",
    "stale_replica_timeout": "staleReplicaTimeout",
    "replica_auto_balance": "replicaAutoBalance",
    "snapshot_data_integrity": "snapshotDataIntegrity",
}

# option name -> (spec field, how to proceed when it differs from the live volume).
IMMUTABLE_FIELDS = {
    "encrypted": (
        "encrypted",
        "encryption is fixed when a volume is created; create a new volume with the wanted setting "
        "and move the data (for example restore a backup into it with from_backup)",
    ),
    "data_engine": (
        "dataEngine",
        "the data engine is fixed when a volume is created; create a new volume on the wanted engine and move the data",
    ),
    "backing_image": (
        "backingImage",
        "the backing image is fixed when a volume is created; create a new volume from the wanted backing image",
    ),
    "data_source": (
        "dataSource",
        "data_source only seeds a volume when it is created; drop the option, or delete and re-create the volume",
    ),
    "from_backup": (
        "fromBackup",
        "from_backup only seeds a volume when it is created; drop the option, or delete and re-create the volume",
    ),
    "backup_compression_method": (
        "backupCompressionMethod",
        "Longhorn does not change the backup compression of an existing volume; drop the option to keep "
        "the current method, or create a new volume with the wanted one",
    ),
}

# Defaults the Longhorn API and CSI driver send on create, which the CRD webhook does not fill.
CREATE_DEFAULTS = {"frontend": "blockdev"}

_SPEC_FALSY = {"encrypted": False, "backingImage": "", "dataSource": "", "fromBackup": ""}


class LonghornError(Exception):
    """Base class: a message for the user, and the option it is about."""

    def __init__(self, message: str, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidOptionError(LonghornError):
    """An option value Longhorn would reject (found before any request)."""


class ShrinkError(LonghornError):
    """The requested size is smaller than the volume's size."""


class ImmutableFieldError(LonghornError):
    """The user asked to change a field Longhorn fixes at creation."""


class PVCBoundError(LonghornError):
    """The volume is in use by a bound PVC."""


class ConflictingObjectError(LonghornError):
    """A PV or PVC with the wanted name exists but belongs to something else."""


class VolumeFaultedError(LonghornError):
    """The volume's robustness is ``faulted``."""


class WaitTimeoutError(LonghornError):
    """The volume did not reach the wanted state in time."""


# --------------------------------------------------------------------------- sizes


def parse_size(value: Any, field: str = "size") -> int:
    """Bytes from ``10Gi`` / ``512Mi`` / ``1G`` / ``1.5Gi`` / ``10737418240`` (int or str); exact, rounded up."""
    if isinstance(value, bool) or value is None:
        raise InvalidOptionError(f"{field}: {value!r} is not a size; use {SIZE_HELP}", field)
    if isinstance(value, float):
        if not value.is_integer():
            raise InvalidOptionError(f"{field}: {value!r} is not a whole number of bytes; use {SIZE_HELP}", field)
        value = int(value)
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        match = _SIZE_RE.match(text)
        if not match:
            raise InvalidOptionError(f"{field}: {value!r} is not a size; use {SIZE_HELP}", field)
        try:
            amount = Decimal(match.group("num")) * (Decimal(10) ** int(match.group("exp") or 0))
        except (InvalidOperation, ValueError, OverflowError) as exc:
            raise InvalidOptionError(f"{field}: {value!r} is not a size; use {SIZE_HELP}", field) from exc
        exact = amount * _SIZE_SUFFIXES[match.group("suffix") or ""]
        if exact > INT64_MAX:
            raise InvalidOptionError(f"{field}: {value!r} is larger than Kubernetes can store (8Ei)", field)
        number = math.ceil(exact)  # a Quantity's Value() rounds up to whole bytes
    if number <= 0:
        raise InvalidOptionError(f"{field}: {value!r} must be greater than zero; use {SIZE_HELP}", field)
    if number > INT64_MAX:
        raise InvalidOptionError(f"{field}: {value!r} is larger than Kubernetes can store (8Ei)", field)
    return number


def round_up_size(size: int) -> int:
    """Longhorn's util.RoundUpSize: up to the next multiple of 2 MiB."""
    if size <= 0:
        return SIZE_ALIGNMENT
    return -(-size // SIZE_ALIGNMENT) * SIZE_ALIGNMENT


def normalize_size(value: Any, field: str = "size") -> int:
    """The bytes Longhorn stores in ``spec.size`` for a requested size."""
    return round_up_size(parse_size(value, field))


def format_quantity(size: int) -> str:
    """A byte count as a canonical binary-SI Quantity (``resource.NewQuantity(size, BinarySI)``)."""
    for suffix, factor in _BINARY_SUFFIXES:
        if size >= factor and size % factor == 0:
            return f"{size // factor}{suffix}"
    return str(size)


def spec_size(volume: dict[str, Any]) -> int:
    """The live volume's ``spec.size`` in bytes (0 when unset)."""
    raw = (volume.get("spec") or {}).get("size")
    if raw in (None, "", 0, "0"):
        return 0
    return parse_size(raw, "spec.size")


# --------------------------------------------------------------------------- options


def _check_choice(params: dict[str, Any], option: str) -> None:
    value = params.get(option)
    if value is not None and value not in CHOICES[option]:
        raise InvalidOptionError(
            f"{option}: {value!r} is not one of {', '.join(CHOICES[option])}",
            option,
        )


def _check_label_names(params: dict[str, Any], option: str) -> None:
    names = params.get(option)
    if names is None:
        return
    if not isinstance(names, list):
        raise InvalidOptionError(f"{option}: must be a list of recurring job names", option)
    for name in names:
        if not isinstance(name, str) or len(name) > 63 or not _LABEL_NAME.match(name):
            raise InvalidOptionError(
                f"{option}: {name!r} is not a valid recurring job name (1-63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit)",
                option,
            )


def _check_selector(params: dict[str, Any], option: str) -> None:
    tags = params.get(option)
    if tags is None:
        return
    for tag in tags:
        if not isinstance(tag, str) or not tag or "," in tag:
            # Longhorn joins tags with ',' in the PV's volumeAttributes, so a ',' would split a tag.
            raise InvalidOptionError(f"{option}: {tag!r} is not a valid tag (non-empty, no ',')", option)


def validate_volume_name(name: Any) -> None:
    if not isinstance(name, str) or not _DNS1123_LABEL.match(name) or len(name) > VOLUME_NAME_MAX:
        raise InvalidOptionError(
            f"name: {name!r} is not a valid Longhorn volume name (lower-case letters, digits and '-', "
            f"starting and ending with a letter or digit, at most {VOLUME_NAME_MAX} characters)",
            "name",
        )


def validate_params(params: dict[str, Any]) -> dict[str, Any]:
    """Check every option Longhorn would reject; return a copy with ``size`` in bytes (rounded).

    Runs before any request, so a bad option never causes a partial write.
    """
    out = dict(params)
    validate_volume_name(params.get("name"))
    namespace = params.get("namespace")
    if not isinstance(namespace, str) or not _DNS1123_LABEL.match(namespace):
        raise InvalidOptionError(f"namespace: {namespace!r} is not a valid namespace name", "namespace")
    for option in (
        "data_locality",
        "access_mode",
        "frontend",
        "data_engine",
        "replica_auto_balance",
        "snapshot_data_integrity",
        "backup_compression_method",
    ):
        _check_choice(params, option)
    if params.get("size") is not None:
        out["size"] = normalize_size(params["size"])
    replicas = params.get("number_of_replicas")
    if replicas is not None and not REPLICAS_MIN <= replicas <= REPLICAS_MAX:
        raise InvalidOptionError(
            f"number_of_replicas: {replicas} is out of range; Longhorn accepts {REPLICAS_MIN} to {REPLICAS_MAX}",
            "number_of_replicas",
        )
    timeout = params.get("stale_replica_timeout")
    if timeout is not None and timeout < 1:
        raise InvalidOptionError(
            f"stale_replica_timeout: {timeout} must be at least 1 (minutes)", "stale_replica_timeout"
        )
    _check_selector(params, "node_selector")
    _check_selector(params, "disk_selector")
    _check_label_names(params, "recurring_jobs")
    _check_label_names(params, "recurring_job_groups")
    source = params.get("data_source")
    if source is not None and not _DATA_SOURCE.match(source):
        raise InvalidOptionError(
            f"data_source: {source!r} is not a Longhorn data source; use vol://<volume> or snap://<volume>/<snapshot>",
            "data_source",
        )
    backup = params.get("from_backup")
    if backup is not None and not ("backup=" in backup and "volume=" in backup and "://" in backup):
        raise InvalidOptionError(
            f"from_backup: {backup!r} is not a Longhorn backup URL "
            "(<target>://...?backup=<backup name>&volume=<volume name>, as shown in the Backup page)",
            "from_backup",
        )
    if params.get("backing_image") is not None and not params["backing_image"]:
        raise InvalidOptionError("backing_image: must not be empty", "backing_image")
    _validate_combination(out, "")
    _validate_pv_pvc(params)
    wait_timeout = params.get("wait_timeout")
    if wait_timeout is not None and wait_timeout < 0:
        raise InvalidOptionError(f"wait_timeout: {wait_timeout} must not be negative", "wait_timeout")
    return out


def _validate_pv_pvc(params: dict[str, Any]) -> None:
    pv = params.get("pv")
    if pv is not None:
        if pv.get("name") is not None and not _is_dns1123_subdomain(pv["name"]):
            raise InvalidOptionError(f"pv.name: {pv['name']!r} is not a valid PersistentVolume name", "pv.name")
        fs_type = pv.get("fs_type")
        if fs_type is not None and fs_type not in CHOICES["fs_type"]:
            raise InvalidOptionError(f"pv.fs_type: {fs_type!r} is not one of ext4, xfs", "pv.fs_type")
        storage_class = pv.get("storage_class")
        if storage_class is not None and not _is_dns1123_subdomain(storage_class):
            raise InvalidOptionError(
                f"pv.storage_class: {storage_class!r} is not a valid StorageClass name", "pv.storage_class"
            )
        if fs_type == "xfs" and params.get("size") is not None and normalize_size(params["size"]) < XFS_MINIMAL_SIZE:
            raise InvalidOptionError(
                "pv.fs_type: xfs needs a volume of at least 300Mi; grow the volume or use ext4", "pv.fs_type"
            )
    pvc = params.get("pvc")
    if pvc is not None:
        if pvc.get("name") is not None and not _is_dns1123_subdomain(pvc["name"]):
            raise InvalidOptionError(f"pvc.name: {pvc['name']!r} is not a valid PersistentVolumeClaim name", "pvc.name")
        if not pvc.get("namespace") or not _DNS1123_LABEL.match(pvc["namespace"]):
            raise InvalidOptionError(
                f"pvc.namespace: {pvc.get('namespace')!r} is not a valid namespace", "pvc.namespace"
            )
    if params.get("state") == "absent" and (pv is not None or pvc is not None):
        which = "pv" if pv is not None else "pvc"
        raise InvalidOptionError(f"{which}: only valid with state=present", which)


def _is_dns1123_subdomain(name: str) -> bool:
    return isinstance(name, str) and len(name) <= 253 and all(_DNS1123_LABEL.match(part) for part in name.split("."))


def _validate_combination(spec_view: dict[str, Any], prefix: str) -> None:
    """Cross-field rules of the Longhorn webhook, on option names (``prefix`` names the source)."""
    locality = spec_view.get("data_locality")
    replicas = spec_view.get("number_of_replicas")
    if locality == "strict-local" and replicas is not None and replicas != 1:
        raise InvalidOptionError(
            f"number_of_replicas: {prefix}data_locality=strict-local needs exactly 1 replica, got {replicas}",
            "number_of_replicas",
        )
    if spec_view.get("data_engine") == "v2":
        if spec_view.get("encrypted"):
            raise InvalidOptionError("encrypted: Longhorn does not support encryption on data engine v2", "encrypted")
        if spec_view.get("backing_image"):
            raise InvalidOptionError(
                "backing_image: Longhorn does not support backing images on data engine v2", "backing_image"
            )
    size = spec_view.get("size")
    if spec_view.get("encrypted") and size is not None and size <= LUKS2_MINIMAL_SIZE:
        raise InvalidOptionError(
            f"size: an encrypted volume must be bigger than 16Mi (the LUKS2 header), got {format_quantity(size)}",
            "size",
        )


# --------------------------------------------------------------------------- spec


def _spec_value(params: dict[str, Any], option: str) -> Any:
    value = params[option]
    if option in ("node_selector", "disk_selector"):
        return sorted(set(value))
    return value


def managed_spec(params: dict[str, Any]) -> dict[str, Any]:
    """The Volume spec fields the user set (``size`` in bytes, as a string as the CRD wants)."""
    spec: dict[str, Any] = {}
    if params.get("size") is not None:
        spec["size"] = str(params["size"])
    for option, field in MUTABLE_FIELDS.items():
        if params.get(option) is not None:
            spec[field] = _spec_value(params, option)
    for option, (field, _how) in IMMUTABLE_FIELDS.items():
        if params.get(option) is not None:
            spec[field] = params[option]
    return spec


def recurring_labels(params: dict[str, Any], current: Optional[dict[str, str]] = None) -> dict[str, Optional[str]]:
    """Label changes that make the volume's recurring-job labels match the options.

    Each list, when given, is exclusive: labels of that kind not in it are removed. Longhorn puts
    every volume without any job or group label into the ``default`` group, so an empty result keeps
    that label instead of fighting Longhorn over it on every run.
    """
    current = current or {}
    jobs, groups = params.get("recurring_jobs"), params.get("recurring_job_groups")
    if jobs is None and groups is None:
        return {}
    wanted = {k: v for k, v in current.items() if k.startswith((JOB_LABEL_PREFIX, GROUP_LABEL_PREFIX))}
    if jobs is not None:
        wanted = {k: v for k, v in wanted.items() if not k.startswith(JOB_LABEL_PREFIX)}
        wanted.update({JOB_LABEL_PREFIX + name: LABEL_ENABLED for name in jobs})
    if groups is not None:
        wanted = {k: v for k, v in wanted.items() if not k.startswith(GROUP_LABEL_PREFIX)}
        wanted.update({GROUP_LABEL_PREFIX + name: LABEL_ENABLED for name in groups})
    if not wanted:
        wanted = {GROUP_LABEL_PREFIX + DEFAULT_GROUP: LABEL_ENABLED}
    changes: dict[str, Optional[str]] = {}
    for key, value in wanted.items():
        if current.get(key) != value:
            changes[key] = value
    for key in current:
        if key.startswith((JOB_LABEL_PREFIX, GROUP_LABEL_PREFIX)) and key not in wanted:
            changes[key] = None  # merge patch: null deletes the label
    return changes


def create_body(params: dict[str, Any]) -> dict[str, Any]:
    """The Volume object to create."""
    if params.get("size") is None and not params.get("from_backup"):
        raise InvalidOptionError("size: required to create a volume (unless it is restored with from_backup)", "size")
    spec = dict(CREATE_DEFAULTS)
    spec.update(managed_spec(params))
    metadata: dict[str, Any] = {"name": params["name"], "namespace": params["namespace"]}
    labels = {k: v for k, v in recurring_labels(params).items() if v is not None}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def _live_value(spec: dict[str, Any], field: str) -> Any:
    value = spec.get(field)
    if value is None:
        return _SPEC_FALSY.get(field)
    if field in ("nodeSelector", "diskSelector"):
        return sorted(set(value))
    return value


def current_options(volume: dict[str, Any]) -> dict[str, Any]:
    """The live volume seen through option names (for cross-field checks on the merged result)."""
    spec = volume.get("spec") or {}
    view: dict[str, Any] = {}
    for option, field in MUTABLE_FIELDS.items():
        view[option] = spec.get(field)
    for option, (field, _how) in IMMUTABLE_FIELDS.items():
        view[option] = spec.get(field)
    view["size"] = spec_size(volume) or None
    return view


def bound_pvc(volume: dict[str, Any]) -> Optional[tuple[str, str]]:
    """``(namespace, name)`` of the PVC bound to the volume, as Longhorn itself decides it.

    Longhorn's kubernetes PV controller records the claim in ``status.kubernetesStatus``; once the
    PVC is gone it stamps ``lastPVCRefAt``. The webhook treats ``pvcName`` set and ``lastPVCRefAt``
    empty as "bound", and so do we.
    """
    kstatus = (volume.get("status") or {}).get("kubernetesStatus") or {}
    if kstatus.get("pvcName") and not kstatus.get("lastPVCRefAt"):
        return kstatus.get("namespace") or "default", kstatus["pvcName"]
    return None


def plan_update(volume: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """What to change on an existing volume.

    Returns ``{"spec": {...}, "labels": {...}, "grow_to": bytes or None}`` with only the differences.
    ``spec`` never contains ``size``: growth is reported in ``grow_to`` so the caller can route it
    through the bound PVC or the Volume. Raises on shrink and on immutable changes, before any write.
    """
    spec = volume.get("spec") or {}
    for option, (field, how) in IMMUTABLE_FIELDS.items():
        wanted = params.get(option)
        if wanted is None:
            continue
        live = _live_value(spec, field)
        if live != wanted:
            raise ImmutableFieldError(
                f"{option}: volume {params['name']} has {field}={live!r}, the task asks for {wanted!r}; {how}",
                option,
            )
    spec_patch: dict[str, Any] = {}
    for option, field in MUTABLE_FIELDS.items():
        if params.get(option) is None:
            continue
        wanted = _spec_value(params, option)
        if _live_value(spec, field) != wanted:
            spec_patch[field] = wanted
    grow_to = None
    if params.get("size") is not None:
        live_size = spec_size(volume)
        if params["size"] < live_size:
            raise ShrinkError(
                f"size: volume {params['name']} is {format_quantity(live_size)} ({live_size} bytes); "
                f"Longhorn cannot shrink it to {format_quantity(params['size'])}. Keep size at or above the "
                "current size, or create a smaller volume and copy the data",
                "size",
            )
        if params["size"] > live_size:
            grow_to = params["size"]
    merged = current_options(volume)
    merged.update({k: v for k, v in params.items() if k in merged and v is not None})
    _validate_combination(merged, "the volume's ")
    labels = recurring_labels(params, (volume.get("metadata") or {}).get("labels") or {})
    return {"spec": spec_patch, "labels": labels, "grow_to": grow_to}


def apply_plan(volume: dict[str, Any], plan: dict[str, Any], size_on_volume: bool) -> dict[str, Any]:
    """The volume as it will look after the plan (for check mode and diffs)."""
    after = copy.deepcopy(volume)
    after.setdefault("spec", {}).update(plan["spec"])
    if plan["grow_to"] is not None and size_on_volume:
        after["spec"]["size"] = str(plan["grow_to"])
    labels = after.setdefault("metadata", {}).setdefault("labels", {})
    for key, value in plan["labels"].items():
        if value is None:
            labels.pop(key, None)
        else:
            labels[key] = value
    return after


def volume_patch(plan: dict[str, Any], size_on_volume: bool) -> dict[str, Any]:
    """A JSON merge patch for the Volume, or ``{}`` when there is nothing to write."""
    patch: dict[str, Any] = {}
    spec = dict(plan["spec"])
    if plan["grow_to"] is not None and size_on_volume:
        spec["size"] = str(plan["grow_to"])
    if spec:
        patch["spec"] = spec
    if plan["labels"]:
        patch["metadata"] = {"labels": dict(plan["labels"])}
    return patch


def diff_view(volume: Optional[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """The part of a volume a diff shows: the fields the task manages, plus recurring-job labels."""
    if volume is None:
        return {}
    spec = volume.get("spec") or {}
    view: dict[str, Any] = {}
    if params.get("size") is not None and spec.get("size") is not None:
        view["size"] = format_quantity(spec_size(volume))
    for option, field in MUTABLE_FIELDS.items():
        if params.get(option) is not None:
            view[field] = _live_value(spec, field)
    for option, (field, _how) in IMMUTABLE_FIELDS.items():
        if params.get(option) is not None:
            view[field] = _live_value(spec, field)
    if params.get("recurring_jobs") is not None or params.get("recurring_job_groups") is not None:
        labels = (volume.get("metadata") or {}).get("labels") or {}
        view["labels"] = {
            k: v for k, v in sorted(labels.items()) if k.startswith((JOB_LABEL_PREFIX, GROUP_LABEL_PREFIX))
        }
    return view


def summary(volume: Optional[dict[str, Any]]) -> dict[str, Any]:
    """What the module returns about a volume: its spec and the parts of its status that matter."""
    if volume is None:
        return {}
    metadata = volume.get("metadata") or {}
    status = volume.get("status") or {}
    size = spec_size(volume)
    labels = metadata.get("labels") or {}
    return {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "size": size,
        "size_quantity": format_quantity(size) if size else None,
        "spec": volume.get("spec") or {},
        "recurring_jobs": sorted(k[len(JOB_LABEL_PREFIX) :] for k in labels if k.startswith(JOB_LABEL_PREFIX)),
        "recurring_job_groups": sorted(
            k[len(GROUP_LABEL_PREFIX) :] for k in labels if k.startswith(GROUP_LABEL_PREFIX)
        ),
        "state": status.get("state"),
        "robustness": status.get("robustness"),
        "conditions": status.get("conditions") or [],
        "kubernetes_status": status.get("kubernetesStatus") or {},
        "actual_size": status.get("actualSize"),
    }


# --------------------------------------------------------------------------- PV / PVC


def pv_access_mode(volume: dict[str, Any]) -> str:
    """Longhorn maps rwx to ReadWriteMany and everything else (rwo, rwop) to ReadWriteOnce."""
    return "ReadWriteMany" if (volume.get("spec") or {}).get("accessMode") == "rwx" else "ReadWriteOnce"


def pv_name_for(volume: dict[str, Any], pv_opts: Optional[dict[str, Any]]) -> str:
    """The PV to use: the option, else the one Longhorn already records, else the volume's name."""
    if pv_opts and pv_opts.get("name"):
        return pv_opts["name"]
    kstatus = (volume.get("status") or {}).get("kubernetesStatus") or {}
    return kstatus.get("pvName") or volume["metadata"]["name"]


def pv_manifest(volume: dict[str, Any], pv_opts: Optional[dict[str, Any]]) -> dict[str, Any]:
    """The PersistentVolume Longhorn's "Create PV/PVC" builds for a volume (NewPVManifestForVolume)."""
    pv_opts = pv_opts or {}
    spec = volume.get("spec") or {}
    fs_type = pv_opts.get("fs_type") or DEFAULT_FS_TYPE
    size = spec_size(volume)
    if fs_type == "xfs" and size < XFS_MINIMAL_SIZE:
        raise InvalidOptionError(
            f"pv.fs_type: xfs needs a volume of at least 300Mi, volume is {format_quantity(size)}", "pv.fs_type"
        )
    attributes = {
        "diskSelector": ",".join(spec.get("diskSelector") or []),
        "nodeSelector": ",".join(spec.get("nodeSelector") or []),
        "numberOfReplicas": str(spec.get("numberOfReplicas") or 0),
        "staleReplicaTimeout": str(spec.get("staleReplicaTimeout") or 0),
    }
    if spec.get("encrypted"):
        attributes["encrypted"] = "true"
    access_mode = pv_access_mode(volume)
    if access_mode == "ReadWriteMany":
        attributes["migratable"] = "true" if spec.get("migratable") else "false"
    csi: dict[str, Any] = {
        "driver": CSI_DRIVER,
        "fsType": fs_type,
        "volumeHandle": volume["metadata"]["name"],
        "volumeAttributes": attributes,
    }
    if spec.get("encrypted"):
        secret = {"name": DEFAULT_CRYPTO_SECRET[0], "namespace": DEFAULT_CRYPTO_SECRET[1]}
        csi["nodeStageSecretRef"] = dict(secret)
        csi["nodePublishSecretRef"] = dict(secret)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv_name_for(volume, pv_opts)},
        "spec": {
            "capacity": {"storage": format_quantity(size)},
            "accessModes": [access_mode],
            "persistentVolumeReclaimPolicy": "Retain",
            "volumeMode": "Filesystem",
            "storageClassName": pv_opts.get("storage_class") or DEFAULT_STATIC_STORAGE_CLASS,
            "csi": csi,
        },
    }


def pvc_manifest(volume: dict[str, Any], pv: dict[str, Any], pvc_opts: dict[str, Any]) -> dict[str, Any]:
    """The PersistentVolumeClaim Longhorn builds for a volume and its PV (NewPVCManifestForVolume)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": pvc_opts.get("name") or volume["metadata"]["name"], "namespace": pvc_opts["namespace"]},
        "spec": {
            "accessModes": [pv_access_mode(volume)],
            "resources": {"requests": {"storage": format_quantity(spec_size(volume))}},
            "storageClassName": (pv.get("spec") or {}).get("storageClassName") or "",
            "volumeName": pv["metadata"]["name"],
        },
    }


def check_existing_pv(pv: dict[str, Any], volume_name: str, pv_opts: Optional[dict[str, Any]]) -> None:
    """An existing PV is ours when it is Longhorn's CSI PV for this volume with the options asked for."""
    csi = (pv.get("spec") or {}).get("csi") or {}
    name = pv["metadata"]["name"]
    if csi.get("driver") != CSI_DRIVER or csi.get("volumeHandle") != volume_name:
        raise ConflictingObjectError(
            f"pv.name: PersistentVolume {name} exists but is not Longhorn volume {volume_name}'s "
            f"(driver {csi.get('driver')!r}, volumeHandle {csi.get('volumeHandle')!r}); choose another pv.name",
            "pv.name",
        )
    pv_opts = pv_opts or {}
    live = {"fs_type": csi.get("fsType"), "storage_class": (pv.get("spec") or {}).get("storageClassName")}
    for option, value in live.items():
        wanted = pv_opts.get(option)
        if wanted is not None and wanted != value:
            raise ImmutableFieldError(
                f"pv.{option}: PersistentVolume {name} has {value!r}, the task asks for {wanted!r}; a PV's "
                "source cannot change: delete the PV (it is Retain, the data stays) and re-run",
                f"pv.{option}",
            )


def check_existing_pvc(pvc: dict[str, Any], pv_name: str) -> None:
    volume_name = (pvc.get("spec") or {}).get("volumeName")
    if volume_name != pv_name:
        meta = pvc["metadata"]
        raise ConflictingObjectError(
            f"pvc.name: PersistentVolumeClaim {meta.get('namespace')}/{meta['name']} exists and is bound to "
            f"{volume_name or 'no volume'}, not PV {pv_name}; choose another pvc.name",
            "pvc.name",
        )


def pvc_request(pvc: dict[str, Any]) -> int:
    raw = (((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
    return parse_size(raw, "PVC spec.resources.requests.storage") if raw else 0


# --------------------------------------------------------------------------- wait


def _conditions_text(status: dict[str, Any]) -> str:
    parts = []
    for cond in status.get("conditions") or []:
        text = f"{cond.get('type')}={cond.get('status')}"
        if cond.get("reason"):
            text += f" ({cond['reason']}"
            text += f": {cond['message']})" if cond.get("message") else ")"
        elif cond.get("message"):
            text += f" ({cond['message']})"
        parts.append(text)
    return "; ".join(parts) or "none"


def describe_status(volume: dict[str, Any]) -> str:
    status = volume.get("status") or {}
    return (
        f"state={status.get('state') or 'unknown'}, robustness={status.get('robustness') or 'unknown'}, "
        f"conditions: {_conditions_text(status)}"
    )


def volume_ready(volume: dict[str, Any], wait_state: Optional[str], min_size: Optional[int]) -> bool:
    """True once the volume is settled and usable; raises at once when it is faulted.

    Settled: ``status.state`` is ``wait_state`` (or attached/detached when not given). An attached
    volume must be ``healthy``; a detached one reports ``unknown`` in Longhorn (no engine runs), which
    is accepted. ``min_size``: the size a PVC expansion must have reached on the volume.
    """
    status = volume.get("status") or {}
    name = (volume.get("metadata") or {}).get("name")
    if status.get("robustness") == "faulted":
        raise VolumeFaultedError(f"volume {name} is faulted: {describe_status(volume)}", "wait")
    state = status.get("state")
    wanted = (wait_state,) if wait_state else VOLUME_STATES_SETTLED
    if state not in wanted:
        return False
    if state == "attached" and status.get("robustness") != "healthy":
        return False
    return not (min_size and spec_size(volume) < min_size)
