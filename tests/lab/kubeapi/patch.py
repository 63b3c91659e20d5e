"""The three patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.

Strategic merge patch follows k8s.io/apimachinery/pkg/util/strategicpatch for the directives clients send
(``$patch: replace|delete|merge``, ``$deleteFromPrimitiveList/<field>``, ``$setElementOrder/<field>``,
``$retainKeys``) with the merge keys of the built-in types this server serves (``MERGE_KEYS``); lists without
a merge key are replaced, as for any atomic list.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import ApiError, bad_request


class PatchError(ApiError):
    """A patch that cannot be applied: 422 like the API server's JSON patch failures."""

    def __init__(self, message: str) -> None:
        super().__init__(422, "Invalid", message)


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --------------------------------------------------------------------------- JSON patch


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"add operation does not apply: doc is missing path: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PatchError(f'doc is missing path: "{path}": missing value')
    return node


def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise bad_request("invalid JSON patch operation")
        kind, path = op["op"], op.get("path", "")
        parts = _pointer(path)
        if kind == "test":
            if _walk(doc, parts, path) != op.get("value"):
                raise PatchError(f"testing value {path} failed: test failed")
            continue
        if kind in ("move", "copy"):
            src_parts = _pointer(op.get("from", ""))
            value = copy.deepcopy(_walk(doc, src_parts, op.get("from", "")))
            if kind == "move":
                doc = _remove(doc, src_parts, op.get("from", ""))
            doc = _add(doc, parts, value, path)
        elif kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")), path)
        elif kind == "remove":
            doc = _remove(doc, parts, path)
        elif kind == "replace":
            _walk(doc, parts, path)
            doc = _remove(doc, parts, path)
            doc = _add(doc, parts, copy.deepcopy(op.get("value")), path)
        else:
            raise bad_request(f"Unexpected kind: {kind}")
    return doc


def _add(doc: Any, parts: list[str], value: Any, path: str) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise PatchError(f'add operation does not apply: doc is missing path: "{path}": missing value')
    else:
        raise PatchError(f'add operation does not apply: doc is missing path: "{path}": missing value')
    return doc


def _remove(doc: Any, parts: list[str], path: str) -> Any:
    if not parts:
        return None
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise PatchError(f'remove operation does not apply: doc is missing path: "{path}": missing value')
    return doc


# --------------------------------------------------------------------------- strategic merge patch

# path (dot separated, list items as "[]") -> merge key; "" means a list of primitives merged as a set.
_POD_SPEC = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "schedulingGates": "name",
    "containers[].ports": "containerPort",
    "containers[].env": "name",
    "containers[].volumeMounts": "mountPath",
    "containers[].volumeDevices": "devicePath",
    "containers[].resizePolicy": "resourceName",
    "initContainers[].ports": "containerPort",
    "initContainers[].env": "name",
    "initContainers[].volumeMounts": "mountPath",
}
_META = {"metadata.finalizers": "", "metadata.ownerReferences": "uid"}


def _with_prefix(prefix: str, keys: dict[str, str]) -> dict[str, str]:
    return {f"{prefix}.{k}": v for k, v in keys.items()}


_TEMPLATE = _with_prefix("spec.template.spec", _POD_SPEC)
_CONDITIONS = {"status.conditions": "type"}
MERGE_KEYS: dict[str, dict[str, str]] = {
    "Pod": {**_with_prefix("spec", _POD_SPEC), **_CONDITIONS},
    "Node": {
        "spec.podCIDRs": "",
        "status.conditions": "type",
        "status.addresses": "type",
        "status.images": "",
        "status.volumesAttached": "name",
    },
    "Service": {"spec.ports": "port"},
    "Deployment": {**_TEMPLATE, **_CONDITIONS},
    "DaemonSet": {**_TEMPLATE, **_CONDITIONS},
    "StatefulSet": {**_TEMPLATE, **_CONDITIONS},
    "ReplicaSet": {**_TEMPLATE, **_CONDITIONS},
    "Job": {**_TEMPLATE, **_CONDITIONS},
    "CronJob": {**_with_prefix("spec.jobTemplate.spec.template.spec", _POD_SPEC)},
    "PersistentVolumeClaim": {**_CONDITIONS},
    "Namespace": {**_CONDITIONS},
    "PodDisruptionBudget": {**_CONDITIONS},
}


def strategic_merge_patch(target: dict[str, Any], patch: Any, kind: str) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
    keys = {**_META, **MERGE_KEYS.get(kind, {})}
    return _smp_map(copy.deepcopy(target) if isinstance(target, dict) else {}, patch, "", keys)


def _smp_map(target: dict[str, Any], patch: dict[str, Any], path: str, keys: dict[str, str]) -> dict[str, Any]:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(target.get(field), list):
                target[field] = [v for v in target[field] if v not in (value or [])]
            continue
        sub = f"{path}.{key}" if path else key
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            if isinstance(value.get("$patch"), str) and value["$patch"] == "delete":
                target.pop(key, None)
            else:
                existing = target.get(key)
                target[key] = _smp_map(existing if isinstance(existing, dict) else {}, value, sub, keys)
        elif isinstance(value, list) and sub in keys:
            existing = target.get(key)
            target[key] = _smp_list(existing if isinstance(existing, list) else [], value, sub, keys)
        else:
            target[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        for key in [k for k in target if k not in retain]:
            del target[key]
    return target


def _smp_list(target: list[Any], patch: list[Any], path: str, keys: dict[str, str]) -> list[Any]:
    merge_key = keys[path]
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    if not merge_key:  # list of primitives merged as a set
        result = list(target)
        for item in patch:
            if item not in result:
                result.append(item)
        return result
    result = [copy.deepcopy(t) for t in target]
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {merge_key}")
        index = next(
            (i for i, t in enumerate(result) if isinstance(t, dict) and t.get(merge_key) == item[merge_key]), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append({k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"})
        else:
            result[index] = _smp_map(result[index], item, f"{path}[]", keys)
    return result
