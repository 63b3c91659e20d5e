"""Structural-schema handling for custom resources, in the API server's order: prune, default, validate.

Follows apiextensions-apiserver: pruning drops fields the ``openAPIV3Schema`` does not declare (except under
``x-kubernetes-preserve-unknown-fields``), nulls of non-nullable fields are dropped before defaulting, and
validation reports go-openapi's messages through ``kubeOpenAPIResultToFieldErrors`` (field paths like
``spec.hooks.resources[0].name``). ``x-kubernetes-validations`` (CEL) rules are evaluated only for the rule
texts in ``CEL_RULES`` (every rule in the upstream CRDs); any other rule is skipped.
"""

from __future__ import annotations

import base64
import binascii
import copy
import math
import re
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from .errors import FieldError

Schema = dict[str, Any]
MISSING: Any = object()

# ObjectMeta fields a client may send; anything else under metadata is dropped like the real decoder does.
OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)


_JSON_TYPES = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def json_type(value: Any) -> str:
    """The JSON type name go-openapi reports (bool before int: Python's bool is an int)."""
    if value is None:
        return "null"
    return next((name for cls, name in _JSON_TYPES if isinstance(value, cls)), "object")


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --------------------------------------------------------------------------- pruning


def prune(obj: dict[str, Any], schema: Schema) -> list[str]:
    """Prune ``obj`` (a whole custom resource) in place; return the dropped field paths."""
    dropped: list[str] = []
    _prune_node(obj, schema, "", dropped, root=True)
    return dropped


def _prune_metadata(meta: Any, path: str, dropped: list[str]) -> None:
    if isinstance(meta, dict):
        for key in [k for k in meta if k not in OBJECT_META_FIELDS]:
            del meta[key]
            dropped.append(_child(path, key))


def _prune_node(value: Any, schema: Schema | None, path: str, dropped: list[str], root: bool = False) -> None:
    if schema is None:
        return
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
        embedded = root or schema.get("x-kubernetes-embedded-resource") is True
        for key in list(value):
            sub = _child(path, key)
            if embedded and key in ("apiVersion", "kind"):
                continue
            if embedded and key == "metadata":
                _prune_metadata(value[key], sub, dropped)
                continue
            if key in props:
                _prune_node(value[key], props[key], sub, dropped)
            elif isinstance(addl, dict):
                _prune_node(value[key], addl, sub, dropped)
            elif addl is True or preserve:
                continue
            else:
                del value[key]
                dropped.append(sub)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _prune_node(item, items, f"{path}[{i}]", dropped)


# --------------------------------------------------------------------------- nulls and defaults


def default(value: Any, schema: Schema | None) -> None:
    """Drop nulls of non-nullable fields, then apply ``default`` values (in place)."""
    if schema is None:
        return
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        for key in list(value):
            sub = props.get(key) if key in props else (addl if isinstance(addl, dict) else None)
            if value[key] is None and sub is not None and not sub.get("nullable"):
                del value[key]
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        for key, item in value.items():
            sub = props.get(key) if key in props else (addl if isinstance(addl, dict) else None)
            default(item, sub)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for item in value:
                default(item, items)


# --------------------------------------------------------------------------- validation


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _valid_date_time(text: str) -> bool:
    # strfmt.DateTime accepts RFC 3339 with or without fractional seconds, 'Z' or an offset.
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", text):
        return False
    try:
        datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _valid_byte(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


STRING_FORMATS: dict[str, Callable[[str], bool]] = {"date-time": _valid_date_time, "byte": _valid_byte}


@lru_cache(maxsize=512)
def _pattern(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


def _type_ok(value: Any, expected: str) -> bool:
    actual = json_type(value)
    if expected == "number":
        return actual in ("integer", "number")
    return actual == expected


def validate(value: Any, schema: Schema, path: str = "", old: Any = MISSING) -> list[FieldError]:
    """Validate a pruned and defaulted object; ``old`` is the previous object on update (for CEL transition rules)."""
    errors: list[FieldError] = []
    _validate_node(value, schema, path, old, errors)
    return errors


def _validate_node(value: Any, schema: Schema, path: str, old: Any, errors: list[FieldError]) -> None:
    if value is None:
        if not schema.get("nullable") and schema.get("type"):
            errors.append(FieldError("type", path, "null", f'{path} in body must be of type {schema["type"]}: "null"'))
        return
    if schema.get("x-kubernetes-int-or-string"):
        if json_type(value) not in ("integer", "string"):
            errors.append(
                FieldError(
                    "type",
                    path,
                    json_type(value),
                    f'{path} in body must be of type integer,string: "{json_type(value)}"',
                )
            )
            return
    elif schema.get("type") and not _type_ok(value, schema["type"]):
        errors.append(
            FieldError(
                "type", path, json_type(value), f'{path} in body must be of type {schema["type"]}: "{json_type(value)}"'
            )
        )
        return
    before = len(errors)
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in schema["enum"])
        errors.append(FieldError("unsupported", path, value, f"supported values: {allowed}"))
    if isinstance(value, str):
        _validate_string(value, schema, path, errors)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(value, schema, path, errors)
    elif isinstance(value, list):
        _validate_array(value, schema, path, old, errors)
    elif isinstance(value, dict):
        _validate_object(value, schema, path, old, errors)
    if schema.get("anyOf") and not any(not validate(value, branch, path) for branch in schema["anyOf"]):
        errors.append(FieldError("invalid", path, value, f"{path} in body must validate at least one schema (anyOf)"))
    if len(errors) == before and schema.get("x-kubernetes-validations"):
        _validate_cel(value, schema, path, old, errors)


def _validate_string(value: str, schema: Schema, path: str, errors: list[FieldError]) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(FieldError("toolong", path, value, f"may not be more than {schema['maxLength']} bytes"))
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(
            FieldError("invalid", path, value, f"{path} in body should be at least {schema['minLength']} chars long")
        )
    if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
        errors.append(FieldError("invalid", path, value, f"{path} in body should match '{schema['pattern']}'"))
    check = STRING_FORMATS.get(schema.get("format", ""))
    if check and not check(value):
        errors.append(FieldError("type", path, value, f'{path} in body must be of type {schema["format"]}: "{value}"'))


def _validate_number(value: float, schema: Schema, path: str, errors: list[FieldError]) -> None:
    if "minimum" in schema:
        low = schema["minimum"]
        if schema.get("exclusiveMinimum") and value <= low:
            errors.append(FieldError("invalid", path, value, f"{path} in body should be greater than {_num(low)}"))
        elif value < low:
            errors.append(
                FieldError("invalid", path, value, f"{path} in body should be greater than or equal to {_num(low)}")
            )
    if "maximum" in schema:
        high = schema["maximum"]
        if schema.get("exclusiveMaximum") and value >= high:
            errors.append(FieldError("invalid", path, value, f"{path} in body should be less than {_num(high)}"))
        elif value > high:
            errors.append(
                FieldError("invalid", path, value, f"{path} in body should be less than or equal to {_num(high)}")
            )
    step = schema.get("multipleOf")
    if step and not math.isclose(value / step, round(value / step)):
        errors.append(FieldError("invalid", path, value, f"{path} in body should be a multiple of {_num(step)}"))


def _list_key(item: Any, keys: list[str]) -> tuple[Any, ...] | None:
    if not isinstance(item, dict):
        return None
    return tuple(repr(item.get(k)) for k in keys)


def _validate_array(value: list[Any], schema: Schema, path: str, old: Any, errors: list[FieldError]) -> None:
    items = schema.get("items")
    list_type = schema.get("x-kubernetes-list-type")
    map_keys = schema.get("x-kubernetes-list-map-keys") or []
    old_by_key: dict[Any, Any] = {}
    if list_type == "map" and isinstance(old, list):
        old_by_key = {_list_key(o, map_keys): o for o in old}
    if isinstance(items, dict):
        for i, item in enumerate(value):
            old_item = old_by_key.get(_list_key(item, map_keys), MISSING) if old_by_key else MISSING
            _validate_node(item, items, f"{path}[{i}]", old_item, errors)
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(
            FieldError("invalid", path, len(value), f"{path} in body should have at least {schema['minItems']} items")
        )
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(FieldError("toomany", path, len(value), f"must have at most {schema['maxItems']} items"))
    if list_type in ("set", "map"):
        seen: set[Any] = set()
        for i, item in enumerate(value):
            key = _list_key(item, map_keys) if list_type == "map" else repr(item)
            if key in seen:
                errors.append(FieldError("duplicate", f"{path}[{i}]", item))
            seen.add(key)


def _validate_object(value: dict[str, Any], schema: Schema, path: str, old: Any, errors: list[FieldError]) -> None:
    for key in schema.get("required") or []:
        if key not in value:
            errors.append(FieldError("required", _child(path, key)))
    props = schema.get("properties") or {}
    addl = schema.get("additionalProperties")
    old_map = old if isinstance(old, dict) else {}
    for key, item in value.items():
        sub = props.get(key) if key in props else (addl if isinstance(addl, dict) else None)
        if sub is not None and not (path == "" and key == "metadata"):
            _validate_node(item, sub, _child(path, key), old_map.get(key, MISSING), errors)


# --------------------------------------------------------------------------- CEL (the rules the upstream CRDs use)


def _immutable(new: Any, old: Any) -> bool:
    return new == old


# rule text -> (needs oldSelf, check(self, oldSelf) -> ok)
CEL_RULES: dict[str, tuple[bool, Callable[[Any, Any], bool]]] = {
    "self == oldSelf": (True, _immutable),
    "oldSelf == 0 || self == oldSelf": (True, lambda new, old: old in (0, new)),
    "!self.startsWith('-')": (False, lambda new, _old: not str(new).startswith("-")),
    "!oldSelf.hasValue() || self == oldSelf.value()": (True, _immutable),
}


def _validate_cel(value: Any, schema: Schema, path: str, old: Any, errors: list[FieldError]) -> None:
    for rule in schema["x-kubernetes-validations"]:
        known = CEL_RULES.get(rule.get("rule", ""))
        if known is None:
            continue  # an unsupported expression: skipped, as documented
        needs_old, check = known
        if needs_old and old is MISSING:
            continue  # transition rules only run on updates that had a value (optionalOldSelf: same result)
        if not check(value, old):
            message = rule.get("message") or f"failed rule: {rule['rule']}"
            errors.append(FieldError("invalid", path, json_type(value), message))
