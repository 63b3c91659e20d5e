"""Light but real validation and defaulting for built-in kinds (a subset of pkg/apis/*/validation).

Covered: object names (DNS-1123 subdomain, or label for Namespace/Service), label keys and values,
annotation keys, ownerReferences, Node taints, Pod containers, PDB selector exclusivity, workload
selectors matching their template, Secret ``stringData``/base64 ``data``, and the defaults clients
most often see coming back (Pod, Service, workloads, StorageClass, Namespace, PVC/PV).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from .errors import FieldError

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + r")*"
_LABEL_RE = re.compile(DNS1123_LABEL)
_SUBDOMAIN_RE = re.compile(DNS1123_SUBDOMAIN)
QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_RE = re.compile(QUALIFIED_NAME)
_LABEL_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_CONFIG_KEY_RE = re.compile(r"[-._a-zA-Z0-9]+")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    f"'{DNS1123_SUBDOMAIN}')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end "
    f"with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{DNS1123_LABEL}')"
)
QUALIFIED_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    f"'{QUALIFIED_NAME}')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation "
    f"is '{QUALIFIED_NAME}')"
)

TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
_LABEL_NAMED = {"Namespace", "Service"}


def name_errors(kind: str, name: str, path: str = "metadata.name") -> list[FieldError]:
    if kind in _LABEL_NAMED:
        if len(name) > 63:
            return [FieldError("invalid", path, name, "must be no more than 63 characters")]
        if not _LABEL_RE.fullmatch(name):
            return [FieldError("invalid", path, name, LABEL_MSG)]
        return []
    if len(name) > 253:
        return [FieldError("invalid", path, name, "must be no more than 253 characters")]
    if not _SUBDOMAIN_RE.fullmatch(name):
        return [FieldError("invalid", path, name, SUBDOMAIN_MSG)]
    return []


def qualified_name_errors(key: str, path: str) -> list[FieldError]:
    """IsQualifiedName: ``[prefix/]name`` with a DNS subdomain prefix and a 63-character name part."""
    if not isinstance(key, str):
        return [FieldError("invalid", path, key, "must be a string")]
    prefix, _, name = key.rpartition("/")
    if "/" in prefix:
        return [
            FieldError(
                "invalid",
                path,
                key,
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start "
                "and end with an alphanumeric character with an optional DNS subdomain prefix and '/'",
            )
        ]
    errors = []
    if key.count("/") == 1:
        if not prefix:
            errors.append(FieldError("invalid", path, key, "prefix part must be non-empty"))
        elif len(prefix) > 253 or not _SUBDOMAIN_RE.fullmatch(prefix):
            errors.append(FieldError("invalid", path, key, "prefix part " + SUBDOMAIN_MSG))
    if not name:
        errors.append(FieldError("invalid", path, key, "name part must be non-empty"))
    elif len(name) > 63:
        errors.append(FieldError("invalid", path, key, "name part must be no more than 63 characters"))
    elif not _QUALIFIED_RE.fullmatch(name):
        errors.append(FieldError("invalid", path, key, QUALIFIED_MSG))
    return errors


def label_value_errors(value: Any, path: str) -> list[FieldError]:
    if not isinstance(value, str):
        return [FieldError("invalid", path, value, "must be a string")]
    if len(value) > 63:
        return [FieldError("invalid", path, value, "must be no more than 63 characters")]
    if not _LABEL_VALUE_RE.fullmatch(value):
        return [FieldError("invalid", path, value, LABEL_VALUE_MSG)]
    return []


def metadata_errors(obj: dict[str, Any], kind: str) -> list[FieldError]:
    """ValidateObjectMeta: name, labels, annotations, ownerReferences, finalizers (all kinds)."""
    meta = obj.get("metadata") or {}
    errors = name_errors(kind, meta.get("name", ""))
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        return [*errors, FieldError("type", "metadata.labels", json_kind(labels), "must be an object")]
    for key, value in labels.items():
        errors += qualified_name_errors(key, "metadata.labels")
        errors += label_value_errors(value, "metadata.labels")
    annotations = meta.get("annotations") or {}
    total = 0
    for key, value in annotations.items():
        errors += [
            FieldError("invalid", "metadata.annotations", key, e.detail)
            for e in qualified_name_errors(key.lower(), "metadata.annotations")
        ]
        total += len(key) + len(str(value))
    if total > 256 * 1024:
        errors.append(FieldError("toolong", "metadata.annotations", "", "may not be more than 262144 bytes"))
    for i, ref in enumerate(meta.get("ownerReferences") or []):
        for field in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(field):
                errors.append(
                    FieldError(
                        "invalid",
                        f"metadata.ownerReferences[{i}].{field}",
                        ref.get(field, ""),
                        f"{field} must not be empty",
                    )
                )
    for i, fin in enumerate(meta.get("finalizers") or []):
        # unqualified names such as Longhorn's "longhorn.io" only draw a warning on current servers
        errors += [
            FieldError("invalid", f"metadata.finalizers[{i}]", fin, e.detail)
            for e in qualified_name_errors(fin, f"metadata.finalizers[{i}]")
        ]
    return errors


def json_kind(value: Any) -> str:
    return type(value).__name__


# --------------------------------------------------------------------------- per-kind validation


def _node(obj: dict[str, Any]) -> list[FieldError]:
    errors = []
    for i, taint in enumerate((obj.get("spec") or {}).get("taints") or []):
        path = f"spec.taints[{i}]"
        if not taint.get("key"):
            errors.append(FieldError("required", f"{path}.key"))
        else:
            errors += qualified_name_errors(taint["key"], f"{path}.key")
        if taint.get("value"):
            errors += label_value_errors(taint["value"], f"{path}.value")
        effect = taint.get("effect")
        if not effect:
            errors.append(FieldError("required", f"{path}.effect"))
        elif effect not in TAINT_EFFECTS:
            errors.append(
                FieldError(
                    "unsupported",
                    f"{path}.effect",
                    effect,
                    "supported values: " + ", ".join(f'"{e}"' for e in TAINT_EFFECTS),
                )
            )
    seen = set()
    for i, taint in enumerate((obj.get("spec") or {}).get("taints") or []):
        key = (taint.get("key"), taint.get("effect"))
        if key in seen:
            errors.append(
                FieldError("duplicate", f"spec.taints[{i}]", taint, "taints must be unique by key and effect pair")
            )
        seen.add(key)
    return errors


def _containers(spec: dict[str, Any], path: str) -> list[FieldError]:
    containers = spec.get("containers")
    if not containers:
        return [FieldError("required", f"{path}.containers")]
    errors = []
    names = set()
    for i, container in enumerate(containers):
        cpath = f"{path}.containers[{i}]"
        if not container.get("name"):
            errors.append(FieldError("required", f"{cpath}.name"))
        else:
            errors += [
                FieldError("invalid", f"{cpath}.name", container["name"], LABEL_MSG)
                for _ in [0]
                if not _LABEL_RE.fullmatch(container["name"])
            ]
            if container["name"] in names:
                errors.append(FieldError("duplicate", f"{cpath}.name", container["name"]))
            names.add(container["name"])
        if not container.get("image"):
            errors.append(FieldError("required", f"{cpath}.image"))
    return errors


def _pod(obj: dict[str, Any]) -> list[FieldError]:
    return _containers(obj.get("spec") or {}, "spec")


def _workload(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errors = []
    selector = spec.get("selector")
    if not selector:
        errors.append(FieldError("required", "spec.selector"))
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if selector:
        from .selectors import match_label_selector_object  # noqa: PLC0415 - avoid an import cycle at load

        if not match_label_selector_object(selector, labels):
            errors.append(
                FieldError(
                    "invalid", "spec.template.metadata.labels", labels, "`selector` does not match template `labels`"
                )
            )
    errors += _containers(template.get("spec") or {}, "spec.template.spec")
    return errors


def _pdb(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    if "minAvailable" in spec and "maxUnavailable" in spec:
        return [FieldError("invalid", "spec", spec, "minAvailable and maxUnavailable cannot be both set")]
    errors = []
    for field in ("minAvailable", "maxUnavailable"):
        value = spec.get(field)
        if isinstance(value, int) and value < 0:
            errors.append(FieldError("invalid", f"spec.{field}", value, "must be greater than or equal to 0"))
        if isinstance(value, str) and not re.fullmatch(r"\d+%", value):
            errors.append(
                FieldError(
                    "invalid",
                    f"spec.{field}",
                    value,
                    "a valid percent string must be a numeric string followed by an ending '%' "
                    "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                )
            )
    return errors


def _data_keys(obj: dict[str, Any], fields: tuple[str, ...]) -> list[FieldError]:
    errors = []
    for field in fields:
        for key in obj.get(field) or {}:
            if not _CONFIG_KEY_RE.fullmatch(key) or len(key) > 253:
                errors.append(
                    FieldError(
                        "invalid",
                        f"{field}",
                        key,
                        "a valid config key must consist of alphanumeric characters, '-', '_' or "
                        "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                        "validation is '[-._a-zA-Z0-9]+')",
                    )
                )
    return errors


def _secret(obj: dict[str, Any]) -> list[FieldError]:
    errors = _data_keys(obj, ("data",))
    for key, value in (obj.get("data") or {}).items():
        try:
            base64.b64decode(value or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            errors.append(FieldError("invalid", f"data[{key}]", "<secret contents redacted>", "illegal base64 data"))
    return errors


def _configmap(obj: dict[str, Any]) -> list[FieldError]:
    return _data_keys(obj, ("data", "binaryData"))


def _service(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    if spec.get("type") != "ExternalName" and not spec.get("ports") and spec.get("clusterIP") != "None":
        return [FieldError("required", "spec.ports")]
    return []


VALIDATORS = {
    "Node": _node,
    "Pod": _pod,
    "Deployment": _workload,
    "DaemonSet": _workload,
    "StatefulSet": _workload,
    "ReplicaSet": _workload,
    "PodDisruptionBudget": _pdb,
    "Secret": _secret,
    "ConfigMap": _configmap,
    "Service": _service,
}


def validate(obj: dict[str, Any], kind: str) -> list[FieldError]:
    errors = metadata_errors(obj, kind)
    check = VALIDATORS.get(kind)
    if check:
        errors += check(obj)
    return errors


# --------------------------------------------------------------------------- updates (ValidateXxxUpdate)

_QUANTITY = re.compile(r"([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?")
_SUFFIX = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}


def quantity(value: Any) -> float | None:
    """resource.Quantity as a number (``10Gi`` -> 10737418240); None when it does not parse."""
    match = _QUANTITY.fullmatch(str(value).strip())
    if not match:
        return None
    number, suffix = float(match.group(1)), match.group(2) or ""
    if suffix[:1] in ("e", "E") and suffix not in _SUFFIX:
        return number * 10 ** int(suffix[1:])
    return number * _SUFFIX.get(suffix, 1)


def _storage(obj: dict[str, Any], *path: str) -> Any:
    node: Any = obj
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _pvc_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errors = []
    new_spec, old_spec = dict(new.get("spec") or {}), dict(old.get("spec") or {})
    if not old_spec.get("volumeName") and new_spec.get("volumeName"):
        old_spec["volumeName"] = new_spec["volumeName"]  # binding sets volumeName once
    if (new.get("status") or {}).get("phase") == "Bound":
        for spec, source in ((new_spec, old_spec), (old_spec, old_spec)):
            resources = dict(spec.get("resources") or {})
            requests = dict(resources.get("requests") or {})
            requests.pop("storage", None)
            requests["storage"] = (source.get("resources") or {}).get("requests", {}).get("storage")
            resources["requests"] = requests
            spec["resources"] = resources
    for spec in (new_spec, old_spec):
        spec.pop("volumeAttributesClassName", None)
    if new_spec != old_spec:
        changed = sorted(k for k in set(new_spec) | set(old_spec) if new_spec.get(k) != old_spec.get(k))
        errors.append(
            FieldError(
                "forbidden",
                "spec",
                detail="spec is immutable after creation except "
                "resources.requests and volumeAttributesClassName for bound claims\n  changed: " + ", ".join(changed),
            )
        )
    new_size = quantity(_storage(new, "spec", "resources", "requests", "storage"))
    old_size = quantity(_storage(old, "spec", "resources", "requests", "storage"))
    capacity = quantity(_storage(old, "status", "capacity", "storage"))
    if (
        new_size is not None
        and old_size is not None
        and new_size < old_size
        and (capacity is None or new_size <= capacity)
    ):
        errors.append(
            FieldError(
                "forbidden", "spec.resources.requests.storage", detail="field can not be less than status.capacity"
            )
        )
    return errors


def _immutable(*paths: str) -> Any:
    def check(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
        return [
            FieldError("invalid", path, _storage(new, *path.split(".")), "field is immutable")
            for path in paths
            if _storage(new, *path.split(".")) != _storage(old, *path.split("."))
        ]

    return check


def _storage_class_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return [
        FieldError("forbidden", field, detail=f"updates to {field} are forbidden.")
        for field in ("parameters", "provisioner", "reclaimPolicy", "volumeBindingMode")
        if new.get(field) != old.get(field)
    ]


UPDATE_VALIDATORS = {
    "PersistentVolumeClaim": _pvc_update,
    "Deployment": _immutable("spec.selector"),
    "DaemonSet": _immutable("spec.selector"),
    "ReplicaSet": _immutable("spec.selector"),
    "StatefulSet": _immutable("spec.selector"),
    "Job": _immutable("spec.selector"),
    "StorageClass": _storage_class_update,
}


def update_errors(kind: str, new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    check = UPDATE_VALIDATORS.get(kind)
    return check(new, old) if check else []


def pvc_resize_forbidden(new: dict[str, Any], old: dict[str, Any], storage_classes: dict[str, Any]) -> str | None:
    """The PersistentVolumeClaimResize admission plugin: why growing this claim is forbidden, if it is."""
    new_size = quantity(_storage(new, "spec", "resources", "requests", "storage"))
    old_size = quantity(_storage(old, "spec", "resources", "requests", "storage"))
    if new_size is None or old_size is None or new_size <= old_size:
        return None
    if (old.get("status") or {}).get("phase") != "Bound":
        return "Only bound persistent volume claims can be expanded"
    cls, old_cls = (new.get("spec") or {}).get("storageClassName"), (old.get("spec") or {}).get("storageClassName")
    sc = storage_classes.get(cls or "")
    if not cls or cls != old_cls or sc is None or not sc.get("allowVolumeExpansion"):
        return (
            "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc "
            "must support resize"
        )
    return None


# --------------------------------------------------------------------------- defaults and normalisation


def _pod_spec_defaults(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        image = str(container.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = ":" not in tag or tag.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest and "@" not in tag else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")


def _template_defaults(obj: dict[str, Any]) -> None:
    template = (obj.get("spec") or {}).get("template")
    if isinstance(template, dict):
        template.setdefault("metadata", {}).setdefault("creationTimestamp", None)
        _pod_spec_defaults(template.setdefault("spec", {}))


def apply_defaults(obj: dict[str, Any], kind: str) -> None:
    spec = obj.setdefault("spec", {}) if kind in _HAS_SPEC else obj.get("spec")
    if kind == "Pod" and isinstance(spec, dict):
        _pod_spec_defaults(spec)
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", pod_qos_class(spec))
    elif kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = obj.setdefault("data", {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
    elif kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("ipFamilies", ["IPv4"])
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        obj.setdefault("status", {}).setdefault("loadBalancer", {})
    elif kind == "Deployment" and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault(
            "strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
        )
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        _template_defaults(obj)
    elif kind == "DaemonSet" and isinstance(spec, dict):
        spec.setdefault(
            "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
        )
        spec.setdefault("revisionHistoryLimit", 10)
        _template_defaults(obj)
    elif kind == "StatefulSet" and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        spec.setdefault("revisionHistoryLimit", 10)
        _template_defaults(obj)
    elif kind in ("ReplicaSet", "Job") and isinstance(spec, dict):
        if kind == "ReplicaSet":
            spec.setdefault("replicas", 1)
        _template_defaults(obj)
    elif kind == "StorageClass":
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")
    elif kind == "PersistentVolumeClaim" and isinstance(spec, dict):
        spec.setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {}).setdefault("phase", "Pending")
    elif kind == "PersistentVolume" and isinstance(spec, dict):
        spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        spec.setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {}).setdefault("phase", "Pending")
    elif kind == "PodDisruptionBudget":
        obj.setdefault("status", {}).update(
            {
                k: v
                for k, v in {
                    "disruptionsAllowed": 0,
                    "currentHealthy": 0,
                    "desiredHealthy": 0,
                    "expectedPods": 0,
                }.items()
                if k not in obj.get("status", {})
            }
        )


_HAS_SPEC = {
    "Pod",
    "Service",
    "Deployment",
    "DaemonSet",
    "StatefulSet",
    "ReplicaSet",
    "Job",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "Node",
    "PodDisruptionBudget",
}


# Status a create through the main resource starts with (the registry's PrepareForCreate).
def initial_status(kind: str, status: Any) -> Any:
    if kind == "Node":
        return status  # nodes may set their status on create (kubelet registration)
    return None


def pod_qos_class(spec: dict[str, Any]) -> str:
    """GetPodQOS, simplified: Guaranteed when every container limits cpu and memory at its requests."""
    containers = spec.get("containers") or []
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for res in resources:
        limits = res.get("limits") or {}
        requests = res.get("requests") or limits
        if any(limits.get(k) is None or requests.get(k) != limits.get(k) for k in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"
