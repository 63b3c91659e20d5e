"""The field structure of built-in kinds, as the API server's typed decoding sees it.

Derived from the kubernetes client's generated models (``openapi_types`` / ``attribute_map``, generated
from the upstream OpenAPI document) on first use and cached in ``<repo>/.cache/kubeapi/`` per client
version, because importing the models takes seconds while the cached JSON loads in milliseconds.

Used for two things a real server does to built-in objects: a value of the wrong JSON type is a 400
(the Go JSON decoder's "cannot unmarshal ..."), and fields the type does not have are dropped with a
``unknown field`` warning (an error with ``fieldValidation=Strict``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import ApiError
from .schema import json_type

CACHE_DIR = Path(__file__).resolve().parents[3] / ".cache" / "kubeapi"

MODELS = {
    "Namespace": "V1Namespace",
    "Node": "V1Node",
    "Pod": "V1Pod",
    "Secret": "V1Secret",
    "ConfigMap": "V1ConfigMap",
    "ServiceAccount": "V1ServiceAccount",
    "PersistentVolume": "V1PersistentVolume",
    "PersistentVolumeClaim": "V1PersistentVolumeClaim",
    "Service": "V1Service",
    "Event": "CoreV1Event",
    "Deployment": "V1Deployment",
    "DaemonSet": "V1DaemonSet",
    "StatefulSet": "V1StatefulSet",
    "ReplicaSet": "V1ReplicaSet",
    "Job": "V1Job",
    "CronJob": "V1CronJob",
    "PodDisruptionBudget": "V1PodDisruptionBudget",
    "StorageClass": "V1StorageClass",
    "Ingress": "V1Ingress",
    "IngressClass": "V1IngressClass",
    "ClusterRole": "V1ClusterRole",
    "ClusterRoleBinding": "V1ClusterRoleBinding",
    "Role": "V1Role",
    "RoleBinding": "V1RoleBinding",
    "Lease": "V1Lease",
    "CustomResourceDefinition": "V1CustomResourceDefinition",
}
# maps of resource.Quantity: the decoder accepts numbers as well as strings there
QUANTITY_MAPS = {"limits", "requests", "capacity", "allocatable", "hard", "used", "overhead"}
_SCALARS = {
    "str": "string",
    "bytes": "string",
    "datetime": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
}
_GO_TYPES = {
    "string": "string",
    "integer": "int64",
    "number": "float64",
    "boolean": "bool",
    "array": "slice",
    "object": "map",
}
_JSON_KINDS = {
    "string": "string",
    "integer": "number",
    "number": "number",
    "boolean": "bool",
    "array": "array",
    "object": "object",
}

Schema = dict[str, Any]


def _generate() -> dict[str, dict[str, str]]:
    """model name -> {json field: type string}, for every model reachable from the served kinds."""
    models = importlib.import_module("kubernetes.client.models")
    out: dict[str, dict[str, str]] = {}
    todo = list(MODELS.values())
    while todo:
        name = todo.pop()
        if name in out:
            continue
        cls = getattr(models, name)
        fields = {cls.attribute_map[attr]: kind for attr, kind in cls.openapi_types.items()}
        out[name] = fields
        todo += [
            m for kind in fields.values() for m in re.findall(r"\b([A-Z]\w+)\b", kind) if m not in ("List", "Dict")
        ]
    return out


def _cached_models() -> dict[str, dict[str, str]]:
    version = importlib.metadata.version("kubernetes")
    path = CACHE_DIR / f"builtin-models-{version}.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    data = _generate()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return data


@lru_cache(maxsize=1)
def schemas() -> dict[str, Schema]:
    """kind -> structural schema (shared, possibly cyclic dicts: JSONSchemaProps refers to itself)."""
    models = _cached_models()
    built: dict[str, Schema] = {
        name: {"type": "object", "properties": {}, "x-go-type": _go_name(name)} for name in models
    }

    def convert(kind: str, field: str = "") -> Schema:
        if kind in _SCALARS:
            return {"type": _SCALARS[kind]}
        if kind == "object":
            return {"x-kubernetes-preserve-unknown-fields": True}
        if kind.startswith("List["):
            return {"type": "array", "items": convert(kind[5:-1])}
        if kind.startswith("Dict[str, "):
            value = convert(kind[10:-1])
            if field in QUANTITY_MAPS:
                value = {"x-kubernetes-int-or-string": True}
            return {"type": "object", "additionalProperties": value}
        return built[kind]

    for name, fields in models.items():
        built[name]["properties"] = {field: convert(kind, field) for field, kind in fields.items()}
    return {kind: built[model] for kind, model in MODELS.items() if model in built}


def _go_name(model: str) -> str:
    """V1Taint -> Taint, CoreV1Event -> Event: the Go struct name in decoder messages."""
    return re.sub(r"^[A-Z][a-z]*?V\d+(?:(?:alpha|beta)\d+)?(?=[A-Z])|^V\d+(?:(?:alpha|beta)\d+)?(?=[A-Z])", "", model)


def decode_check(obj: dict[str, Any], kind: str, version: str, schema: Schema) -> None:
    """Raise the 400 the Go JSON decoder produces for a value of the wrong type (nulls decode to zero values)."""
    problem = _first_mismatch(obj, schema, "", schema.get("x-go-type", kind))
    if problem is not None:
        path, model, actual, expected = problem
        raise ApiError(
            400,
            "BadRequest",
            f'{kind} in version "{version}" cannot be handled as a {kind}: json: cannot unmarshal '
            f"{actual} into Go struct field {model}.{path} of type {expected}",
        )


def _first_mismatch(value: Any, schema: Schema, path: str, model: str) -> tuple[str, str, str, str] | None:
    if value is None or schema.get("x-kubernetes-preserve-unknown-fields"):
        return None
    actual = json_type(value)
    if schema.get("x-kubernetes-int-or-string"):
        return None if actual in ("integer", "number", "string") else (path, model, _JSON_KINDS[actual], "Quantity")
    expected = schema.get("type")
    ok = expected is None or actual == expected or (expected == "number" and actual == "integer")
    if not ok:
        return (path, model, _JSON_KINDS.get(actual, actual), _GO_TYPES.get(expected or "", expected or ""))
    if isinstance(value, dict):
        props, addl = schema.get("properties") or {}, schema.get("additionalProperties")
        inner = schema.get("x-go-type", model)
        for key, item in value.items():
            if key in props:  # a struct field extends the path; a map value does not (as in Go's messages)
                found = _first_mismatch(item, props[key], f"{path}.{key}" if path else key, inner)
            elif isinstance(addl, dict):
                found = _first_mismatch(item, addl, path, model)
            else:
                continue
            if found:
                return found
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            found = _first_mismatch(item, schema["items"], path, model)
            if found:
                return found
    return None
