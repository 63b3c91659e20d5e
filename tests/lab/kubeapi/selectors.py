"""Label and field selectors (query strings) and ``LabelSelector`` objects, as k8s.io/apimachinery parses them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import bad_request

Requirement = Callable[[dict[str, str]], bool]

_TOKEN = re.compile(r"\s*(!=|==|=|\(|\)|,|!|[^\s!=(),]+)")

# Fields each kind can be selected on, beyond metadata.name / metadata.namespace (GetAttrs of each registry).
SELECTABLE_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Node": ("spec.unschedulable",),
    "Namespace": ("status.phase",),
    "Secret": ("type",),
    "Event": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "PersistentVolumeClaim": ("status.phase",),
    "ReplicaSet": ("status.replicas",),
    "Job": ("status.successful",),
}
# Boolean fields report "false" when unset (they are non-pointer bools in the Go types).
_BOOL_FIELDS = {"spec.unschedulable", "spec.hostNetwork"}


def _tokens(text: str) -> list[str]:
    pos, out = 0, []
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            break
        if match.group(1):
            out.append(match.group(1))
        pos = match.end()
        if not text[pos:].strip():
            break
    return out


def _absent(key: str) -> Requirement:
    return lambda labels: key not in labels


def _present(key: str) -> Requirement:
    return lambda labels: key in labels


def _equals(key: str, value: str, negate: bool) -> Requirement:
    return lambda labels: (labels.get(key) == value) != negate


def _member(key: str, values: frozenset[str], negate: bool) -> Requirement:
    return lambda labels: (labels.get(key) in values) != negate


def _field_equals(path: str, value: str, negate: bool) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: (field_value(obj, path) == value) != negate


def parse_label_selector(text: str | None) -> Requirement:
    """Parse ``a=b,c!=d,e in (f,g),h notin (i),j,!k`` into a predicate over a label map."""
    if not text or not text.strip():
        return lambda _labels: True
    tokens = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def fail(msg: str) -> Exception:
        return bad_request(f"unable to parse requirement: {msg}")

    while i < len(tokens):
        tok = tokens[i]
        if tok == "!":
            if i + 1 >= len(tokens):
                raise fail("found '', expected: identifier")
            key = tokens[i + 1]
            reqs.append(_absent(key))
            i += 2
        else:
            key = tok
            op = tokens[i + 1] if i + 1 < len(tokens) else ","
            if op in ("=", "==", "!="):
                if i + 2 >= len(tokens) or tokens[i + 2] == ",":
                    value = ""
                    i += 2
                else:
                    value = tokens[i + 2]
                    i += 3
                reqs.append(_equals(key, value, negate=op == "!="))
            elif op in ("in", "notin"):
                if i + 2 >= len(tokens) or tokens[i + 2] != "(":
                    raise fail(f"found '{tokens[i + 2] if i + 2 < len(tokens) else ''}', expected: '('")
                j = i + 3
                values: set[str] = set()
                while j < len(tokens) and tokens[j] != ")":
                    if tokens[j] != ",":
                        values.add(tokens[j])
                    j += 1
                if j >= len(tokens):
                    raise fail("found '', expected: ')'")
                reqs.append(_member(key, frozenset(values), negate=op == "notin"))
                i = j + 1
            elif op == ",":
                reqs.append(_present(key))
                i += 1
            else:
                raise fail(f"found '{op}', expected: in, notin, =, ==, !=, ',' or end of string")
        if i < len(tokens):
            if tokens[i] != ",":
                raise fail(f"found '{tokens[i]}', expected: ',' or 'end of string'")
            i += 1
    return lambda labels: all(req(labels) for req in reqs)


def field_value(obj: dict[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None and path in _BOOL_FIELDS:
        node = False
    if isinstance(node, bool):
        return "true" if node else "false"
    return "" if node is None else str(node)


def parse_field_selector(text: str | None, kind: str, custom: bool) -> Callable[[dict[str, Any]], bool]:
    """Parse ``metadata.name=x,spec.nodeName!=y``; unknown fields are a 400 like the real server."""
    if not text or not text.strip():
        return lambda _obj: True
    allowed = {"metadata.name", "metadata.namespace", *(() if custom else SELECTABLE_FIELDS.get(kind, ()))}
    checks: list[Callable[[dict[str, Any]], bool]] = []
    for term in (t.strip() for t in text.split(",")):
        if not term:
            continue
        match = re.fullmatch(r"([^=!]+)(!=|==|=)(.*)", term)
        if not match:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        path, op, value = match.group(1).strip(), match.group(2), match.group(3).strip()
        if path not in allowed:
            raise bad_request(
                f'"{path}" is not a known field selector: only "{", ".join(sorted(allowed))}"'
                if custom
                else f"field label not supported: {path}"
            )
        checks.append(_field_equals(path, value, negate=op == "!="))
    return lambda obj: all(check(obj) for check in checks)


_EXPRESSION_OPS: dict[str, Callable[[dict[str, str], str, list[str]], bool]] = {
    "In": lambda labels, key, values: labels.get(key) in values,
    "NotIn": lambda labels, key, values: key not in labels or labels[key] not in values,
    "Exists": lambda labels, key, _values: key in labels,
    "DoesNotExist": lambda labels, key, _values: key not in labels,
}


def match_label_selector_object(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Match a metav1.LabelSelector (matchLabels + matchExpressions); ``{}`` selects everything, None nothing."""
    if selector is None:
        return False
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    return all(
        _EXPRESSION_OPS.get(expr.get("operator", ""), lambda *_: False)(
            labels, expr.get("key", ""), expr.get("values") or []
        )
        for expr in selector.get("matchExpressions") or []
    )
