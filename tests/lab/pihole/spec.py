"""The Pi-hole FTL OpenAPI spec (../shared/upstream/pihole-ftl-api/) as a request/response validator.

openapi-core is not available, so this is a small resolver over the spec files: ``$ref``s of
the form ``file.yaml#/json/pointer`` are inlined, OpenAPI 3.0's ``nullable`` becomes a JSON
Schema ``null`` alternative, and jsonschema validates bodies. Path templates match like FTL
routes: ``{element}`` in ``/config/{element}/{value}`` spans slashes (``dns/hosts``).
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import yaml

# ../shared/upstream/pihole-ftl-api next to the repository (override: PIHOLE_FTL_SPEC_DIR)
SPEC_DIR = Path(
    os.environ.get("PIHOLE_FTL_SPEC_DIR") or Path(__file__).resolve().parents[4] / "shared/upstream/pihole-ftl-api"
)
METHODS = ("get", "post", "put", "patch", "delete")


class SpecViolation(Exception):
    """A request (client bug) or response (server bug) that the spec does not allow."""


@dataclass
class Operation:
    template: str
    method: str
    op: dict[str, Any]
    path_params: dict[str, str]

    @property
    def auth_required(self) -> bool:
        security = self.op.get("security")
        if security is None:  # the spec's global default: one of the sid schemes
            return True
        return bool(security) and {} not in security

    def parameters(self) -> list[dict[str, Any]]:
        return list(self.op.get("parameters", []))


class Spec:
    def __init__(self, directory: Path = SPEC_DIR) -> None:
        self.directory = directory
        self._files: dict[str, Any] = {}
        root = self._load("main.yaml")
        self.paths: dict[str, dict[str, Any]] = {
            template: self.resolve(item, "main.yaml") for template, item in root["paths"].items()
        }
        self._matchers = [(self._pattern(t), t) for t in self.paths]

    # -- loading and $ref resolution -----------------------------------------------------

    def _load(self, name: str) -> Any:
        if name not in self._files:
            self._files[name] = yaml.safe_load((self.directory / name).read_text(encoding="utf-8"))
        return self._files[name]

    def _pointer(self, ref: str, base: str) -> tuple[Any, str]:
        file_part, _, pointer = ref.partition("#")
        name = file_part or base
        node = self._load(name)
        for token in filter(None, pointer.split("/")):
            node = node[token.replace("~1", "/").replace("~0", "~")]
        return node, name

    def resolve(self, node: Any, base: str, depth: int = 0) -> Any:
        """Deep copy of ``node`` with every $ref inlined and nullable turned into JSON Schema."""
        if depth > 50:
            raise SpecViolation("spec $ref nesting too deep")
        if isinstance(node, dict):
            if "$ref" in node:
                target, name = self._pointer(node["$ref"], base)
                return self.resolve(target, name, depth + 1)
            out = {k: self.resolve(v, base, depth + 1) for k, v in node.items() if k != "example"}
            if out.pop("nullable", False):
                return {"anyOf": [out, {"type": "null"}]}
            return out
        if isinstance(node, list):
            return [self.resolve(v, base, depth + 1) for v in node]
        return copy.deepcopy(node)

    # -- routing ---------------------------------------------------------------------------

    @staticmethod
    def _pattern(template: str) -> re.Pattern[str]:
        regex = ""
        for part in re.split(r"(\{[^}]+\})", template):
            if part.startswith("{"):
                name = part[1:-1]
                regex += f"(?P<{name}>.+)" if name == "element" else f"(?P<{name}>[^/]+)"
            else:
                regex += re.escape(part)
        return re.compile(f"^{regex}$")

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation for ``path`` (below /api, still percent-encoded) and ``method``; exact paths first."""
        method = method.lower()
        candidates = []
        for pattern, template in self._matchers:
            match = pattern.match(path)
            if match and method in self.paths[template]:
                params = {k: unquote(v) for k, v in match.groupdict().items()}
                candidates.append((len(params), template, params))
        if not candidates:
            return None
        _, template, params = min(candidates)
        return Operation(template, method, self.paths[template][method], params)

    def path_known(self, path: str) -> bool:
        return any(pattern.match(path) for pattern, _ in self._matchers)

    # -- validation ------------------------------------------------------------------------

    def validate_request(self, op: Operation, query: dict[str, list[str]], body: bytes) -> Any:
        """Check parameters and body; return the parsed JSON body (or None)."""
        declared = {p["name"]: p for p in op.parameters()}
        for name, param in declared.items():
            where = param.get("in")
            if where == "path":
                value: Any = op.path_params.get(name)
            elif where == "query":
                value = query.get(name, [None])[-1]
            else:
                continue
            if value is None:
                if param.get("required"):
                    raise SpecViolation(f"missing required {where} parameter {name!r}")
                continue
            self._check_param(name, value, param.get("schema", {}))
        for name in query:
            if name not in declared and name != "sid":  # sid: the query_sid security scheme
                raise SpecViolation(f"query parameter {name!r} is not defined for {op.method.upper()} {op.template}")
        content = (op.op.get("requestBody") or {}).get("content", {})
        if not body:
            return None
        if "application/json" not in content:
            raise SpecViolation(f"{op.method.upper()} {op.template} takes no request body")
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            raise SpecViolation(f"request body is not JSON: {exc}") from None
        self._validate(content["application/json"].get("schema", {}), parsed, "request body")
        return parsed

    @staticmethod
    def _check_param(name: str, value: str, schema: dict[str, Any]) -> None:
        kind = schema.get("type")
        if kind == "boolean" and value not in ("true", "false"):
            raise SpecViolation(f"parameter {name!r} must be true or false, got {value!r}")
        if kind == "integer" and not re.fullmatch(r"-?\d+", value):
            raise SpecViolation(f"parameter {name!r} must be an integer, got {value!r}")
        if "enum" in schema and value not in schema["enum"]:
            raise SpecViolation(f"parameter {name!r} must be one of {schema['enum']}, got {value!r}")

    def validate_response(self, op: Operation, status: int, body: Any) -> None:
        responses = op.op.get("responses", {})
        spec = responses.get(str(status))
        if spec is None:
            raise SpecViolation(f"status {status} is not documented for {op.method.upper()} {op.template}")
        content = spec.get("content", {})
        if body is None:
            return
        schema = (content.get("application/json") or {}).get("schema")
        if schema is not None:
            self._validate(schema, body, f"response {status}")

    @staticmethod
    def _validate(schema: dict[str, Any], value: Any, what: str) -> None:
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(value), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.path) or "(root)"
            raise SpecViolation(f"{what} at {where}: {first.message}")
