"""API errors shaped like the real API server's ``Status`` bodies (k8s.io/apimachinery/pkg/api/errors)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# field.ErrorType -> (cause type, text the error body starts with)
_FIELD_ERROR_TYPES = {
    "invalid": ("FieldValueInvalid", "Invalid value"),
    "type": ("FieldValueTypeInvalid", "Invalid value"),
    "required": ("FieldValueRequired", "Required value"),
    "unsupported": ("FieldValueNotSupported", "Unsupported value"),
    "toolong": ("FieldValueTooLong", "Too long"),
    "toomany": ("FieldValueTooMany", "Too many"),
    "forbidden": ("FieldValueForbidden", "Forbidden"),
    "duplicate": ("FieldValueDuplicate", "Duplicate value"),
}

_OMIT = object()


def go_value(value: Any) -> str:
    """Render a value the way field.Error does (strings quoted, numbers bare)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return "null"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass
class FieldError:
    """One field.Error: ``path`` like ``spec.ttl``, ``kind`` a key of _FIELD_ERROR_TYPES."""

    kind: str
    path: str
    value: Any = _OMIT
    detail: str = ""

    @property
    def cause_type(self) -> str:
        return _FIELD_ERROR_TYPES[self.kind][0]

    def body(self) -> str:
        text = _FIELD_ERROR_TYPES[self.kind][1]
        if self.kind in ("invalid", "type", "unsupported", "duplicate") and self.value is not _OMIT:
            text += f": {go_value(self.value)}"
        if self.detail:
            text += f": {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.path}: {self.body()}" if self.path else self.body()


class ApiError(Exception):
    """An error answered with a ``Status`` body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(name: str, group: str, kind: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind
    details.update(extra)
    return details


def qualified(resource_or_kind: str, group: str) -> str:
    """``pods`` / ``schedules.velero.io`` / ``Schedule.velero.io``: GroupResource.String()."""
    return f"{resource_or_kind}.{group}" if group else resource_or_kind


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{qualified(plural, group)} "{name}" not found', _details(name, group, plural))


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{qualified(plural, group)} "{name}" already exists', _details(name, group, plural)
    )


def conflict(plural: str, group: str, name: str, detail: str | None = None) -> ApiError:
    detail = detail or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": {detail}',
        _details(name, group, plural),
    )


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> ApiError:
    aggregate = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
    causes = [{"reason": e.cause_type, "message": e.body(), "field": e.path} for e in errors]
    return ApiError(
        422,
        "Invalid",
        f'{qualified(kind, group)} "{name}" is invalid: {aggregate}',
        _details(name, group, kind, causes=causes),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(plural: str, group: str, name: str, detail: str) -> ApiError:
    target = f'{qualified(plural, group)} "{name}"' if name else qualified(plural, group)
    return ApiError(403, "Forbidden", f"{target} is forbidden: {detail}", _details(name, group, plural))


def method_not_allowed(plural: str, group: str, verb: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        f"{verb} is not supported on resources of kind {qualified(plural, group)!r}",
        _details("", group, plural),
    )


def unsupported_media_type(accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: " + ", ".join(accepted),
    )


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})


# Status bodies for injected faults, keyed by code (what the real server and its proxies answer).
FAULT_REASONS = {
    429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    500: ("InternalError", 'an error on the server ("injected fault") has prevented the request from succeeding'),
    502: ("InternalError", 'an error on the server ("Bad Gateway") has prevented the request from succeeding'),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, but may still be processing the request",
    ),
}


def fault(code: int) -> ApiError:
    reason, message = FAULT_REASONS.get(code, ("InternalError", f"injected fault {code}"))
    headers = {"Retry-After": "1"} if code in (429, 503) else None
    return ApiError(code, reason, message, details={"retryAfterSeconds": 1} if headers else None, headers=headers)
