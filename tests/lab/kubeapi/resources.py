"""Resource types the server knows: the built-ins it serves and every CRD loaded from the upstream files.

Parsed CRD files are cached per process (keyed on path and mtime), so each new server only builds small
``ResourceType`` records around shared, read-only schema dictionaries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
UPSTREAM = REPO.parent / "shared" / "upstream"
UPSTREAM_CRD_DIRS = ("velero", "longhorn", "k3s-helm-controller")

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: list[str] = field(default_factory=list)
    singular: str = ""
    categories: list[str] = field(default_factory=list)
    status_subresource: bool = False
    extra_subresources: list[str] = field(default_factory=list)  # e.g. "eviction", "scale"
    has_generation: bool = False
    schema: dict[str, Any] | None = None  # openAPIV3Schema for custom resources
    crd_name: str = ""  # set for custom resources
    storage_version: str = ""
    return_deleted_object: bool = False  # DELETE answers with the object instead of a Status
    verbs: list[str] = field(default_factory=lambda: list(ALL_VERBS))

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def custom(self) -> bool:
        return bool(self.crd_name)

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: one store per group+resource, whatever the version served."""
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


def _builtin(
    api_version: str,
    kind: str,
    plural: str,
    namespaced: bool,
    short: str = "",
    *,
    status: bool = False,
    generation: bool = False,
    extra: tuple[str, ...] = (),
    returns_object: bool = False,
) -> ResourceType:
    group, _, version = api_version.rpartition("/")
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        namespaced=namespaced,
        short_names=short.split(",") if short else [],
        singular=kind.lower(),
        status_subresource=status,
        extra_subresources=list(extra),
        has_generation=generation,
        return_deleted_object=returns_object,
    )


def builtin_types() -> list[ResourceType]:
    return [
        _builtin("v1", "Namespace", "namespaces", False, "ns", status=True, returns_object=True),
        _builtin("v1", "Node", "nodes", False, "no", status=True),
        _builtin("v1", "Pod", "pods", True, "po", status=True, extra=("eviction",), returns_object=True),
        _builtin("v1", "Secret", "secrets", True),
        _builtin("v1", "ConfigMap", "configmaps", True, "cm"),
        _builtin("v1", "ServiceAccount", "serviceaccounts", True, "sa", returns_object=True),
        _builtin("v1", "PersistentVolume", "persistentvolumes", False, "pv", status=True),
        _builtin("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, "pvc", status=True),
        _builtin("v1", "Service", "services", True, "svc", status=True),
        _builtin("v1", "Event", "events", True, "ev"),
        _builtin(
            "apps/v1", "Deployment", "deployments", True, "deploy", status=True, generation=True, extra=("scale",)
        ),
        _builtin("apps/v1", "DaemonSet", "daemonsets", True, "ds", status=True, generation=True),
        _builtin("apps/v1", "StatefulSet", "statefulsets", True, "sts", status=True, generation=True, extra=("scale",)),
        _builtin("apps/v1", "ReplicaSet", "replicasets", True, "rs", status=True, generation=True, extra=("scale",)),
        _builtin("batch/v1", "Job", "jobs", True, status=True, generation=True),
        _builtin("batch/v1", "CronJob", "cronjobs", True, "cj", status=True, generation=True),
        _builtin("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", True, "pdb", status=True, generation=True),
        _builtin("storage.k8s.io/v1", "StorageClass", "storageclasses", False, "sc", returns_object=True),
        _builtin("networking.k8s.io/v1", "Ingress", "ingresses", True, "ing", status=True, generation=True),
        _builtin("networking.k8s.io/v1", "IngressClass", "ingressclasses", False),
        _builtin("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False),
        _builtin("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False),
        _builtin("rbac.authorization.k8s.io/v1", "Role", "roles", True),
        _builtin("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True),
        _builtin("coordination.k8s.io/v1", "Lease", "leases", True),
        _builtin(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            False,
            "crd,crds",
            status=True,
            generation=True,
        ),
    ]


# --------------------------------------------------------------------------- CRDs

_HELM_TEMPLATE = re.compile(r"\{\{[^}]*\}\}")
_CRD_FILE_CACHE: dict[tuple[str, float], list[dict[str, Any]]] = {}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def default_crd_files() -> list[Path]:
    files: list[Path] = []
    for folder in UPSTREAM_CRD_DIRS:
        files += sorted((UPSTREAM / folder).glob("*.yaml"))
    return files


def load_crd_file(path: Path) -> list[dict[str, Any]]:
    """CRDs in one file (cached per process). Helm template markers (longhorn's chart copy) are removed."""
    key = (str(path), path.stat().st_mtime)
    cached = _CRD_FILE_CACHE.get(key)
    if cached is None:
        text = _HELM_TEMPLATE.sub("", path.read_text(encoding="utf-8"))
        cached = [
            d
            for d in yaml.load_all(text, Loader=_Loader)
            if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"
        ]
        _CRD_FILE_CACHE[key] = cached
    return cached


def crd_types(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of a CRD."""
    spec = crd["spec"]
    names = spec["names"]
    versions = spec.get("versions") or []
    storage = next((v["name"] for v in versions if v.get("storage")), versions[0]["name"] if versions else "")
    types = []
    for version in versions:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or spec.get("subresources") or {}
        schema = (version.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema")
        types.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                kind=names["kind"],
                plural=names["plural"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=names.get("shortNames") or [],
                singular=names.get("singular") or names["kind"].lower(),
                categories=names.get("categories") or [],
                status_subresource="status" in subresources,
                extra_subresources=["scale"] if "scale" in subresources else [],
                has_generation=True,
                schema=schema,
                crd_name=crd["metadata"]["name"],
                storage_version=storage,
            )
        )
    return types
