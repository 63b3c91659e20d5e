"""HTTP(S) front end: routing, discovery, auth, request recording, fault injection and the test API.

Run by ``KubeAPIServer`` on a ThreadingHTTPServer (one thread per connection, HTTP/1.1 keep-alive,
chunked watch streams). The semantics live in ``cluster.Cluster``; this module only speaks HTTP.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import queue
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from . import errors
from .cluster import Cluster, Obj, clone
from .errors import ApiError
from .patch import json_patch, merge_patch, strategic_merge_patch
from .resources import ResourceType
from .selectors import parse_field_selector, parse_label_selector
from .tls import CertBundle, make_certs

DEFAULT_VERSION = "v1.33.5+k3s1"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
WATCH_DEFAULT_TIMEOUT = 1800


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int | None = None  # None: the connection was dropped without an answer
    content_type: str | None = None
    time: float = field(default_factory=time.time)
    accept: str | None = None

    @property
    def discovery(self) -> bool:
        return is_discovery(self.path)


def is_discovery(path: str) -> bool:
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] in ("version", "openapi", "healthz", "livez", "readyz"):
        return True
    if parts[0] == "api":
        return len(parts) <= 2
    if parts[0] == "apis":
        return len(parts) <= 3
    return False


def _methods(methods: str | Iterable[str] | None) -> frozenset[str] | None:
    if methods is None:
        return None
    if isinstance(methods, str):
        methods = [methods]
    return frozenset(m.upper() for m in methods)


@dataclass
class _Rule:
    remaining: int
    methods: frozenset[str] | None
    include_discovery: bool
    status: int = 503

    def take(self, method: str, discovery: bool) -> bool:
        if self.remaining <= 0 or (discovery and not self.include_discovery):
            return False
        if self.methods is not None and method not in self.methods:
            return False
        self.remaining -= 1
        return True


class Faults:
    """Fault injection. Discovery requests (/version, /api, /apis, group/version lists) are exempt from
    ``fail_next``/``drop_next`` unless ``include_discovery=True``, since clients cache discovery."""

    def __init__(self, server: KubeAPIServer) -> None:
        self._server = server
        self._lock = threading.Lock()
        self._fails: list[_Rule] = []
        self._drops: list[_Rule] = []
        self._conflicts = 0
        self._delay = 0.0
        self._down = False

    def fail_next(
        self, n: int, status: int = 503, methods: str | Iterable[str] | None = None, include_discovery: bool = False
    ) -> None:
        """The next ``n`` matching requests get ``status`` with the real server's Status body for it."""
        with self._lock:
            self._fails.append(_Rule(n, _methods(methods), include_discovery, status))

    def conflict_next(self, n: int) -> None:
        """The next ``n`` writes to an existing object (PUT/PATCH) get 409 Conflict (optimistic lock)."""
        with self._lock:
            self._conflicts += n

    def drop_next(self, n: int, methods: str | Iterable[str] | None = None, include_discovery: bool = False) -> None:
        """The next ``n`` matching requests are read, then the connection is closed without an answer."""
        with self._lock:
            self._drops.append(_Rule(n, _methods(methods), include_discovery))

    def delay(self, seconds: float) -> None:
        """Every request waits ``seconds`` before it is handled (until cleared)."""
        with self._lock:
            self._delay = seconds

    def down(self, is_down: bool = True) -> None:
        """Stop listening (connections are refused) and drop open connections; ``down(False)`` listens again
        on the same port."""
        with self._lock:
            changed = self._down != is_down
            self._down = is_down
        if changed:
            if is_down:
                self._server._stop_listening()
            else:
                self._server._listen()

    @property
    def is_down(self) -> bool:
        return self._down

    def clear(self) -> None:
        with self._lock:
            self._fails, self._drops, self._conflicts, self._delay = [], [], 0, 0.0
        self.down(False)

    # used by the handler
    def take_drop(self, method: str, discovery: bool) -> bool:
        with self._lock:
            return any(rule.take(method, discovery) for rule in self._drops)

    def take_fail(self, method: str, discovery: bool) -> int | None:
        with self._lock:
            for rule in self._fails:
                if rule.take(method, discovery):
                    return rule.status
        return None

    def take_conflict(self) -> bool:
        with self._lock:
            if self._conflicts > 0:
                self._conflicts -= 1
                return True
        return False

    @property
    def current_delay(self) -> float:
        return self._delay


class _DropConnection(Exception):
    pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: KubeAPIServer
    ssl_context: ssl.SSLContext | None = None

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            # handshake in the connection's own thread, not in the accept loop
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self.connections_lock:
            self.connections.add(sock)
        return sock, addr

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on every open connection (keep-alive clients, watches), as a stopped server does."""
        with self.connections_lock:
            open_connections, self.connections = list(self.connections), set()
        for sock in open_connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-request are normal in fault tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid the 40 ms delayed-ACK stall
    server: _HTTPServer
    server_version = "kube-apiserver-lab"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # ------------------------------------------------------------------ plumbing

    def _dispatch(self) -> None:
        api = self.server.api
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        record = RecordedRequest(
            self.command,
            path,
            query,
            _parse_body(raw, ctype),
            content_type=ctype or None,
            accept=self.headers.get("Accept"),
        )
        api._record(record)
        try:
            if api.faults.is_down:
                raise _DropConnection
            delay = api.faults.current_delay
            if delay:
                time.sleep(delay)
            if not self._authorized((api.token, *api.extra_tokens)):
                raise errors.unauthorized()
            discovery = is_discovery(path)
            if api.faults.take_drop(self.command, discovery):
                raise _DropConnection
            code = api.faults.take_fail(self.command, discovery)
            if code is not None:
                raise errors.fault(code)
            router = _Router(api, self, record)
            router.route(self.command, path, query, raw, ctype)
        except _DropConnection:
            record.status = None
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        except ApiError as err:
            self.send_json(err.code, err.status(), record, err.headers)
        except Exception as exc:  # a server bug must still answer like a server
            traceback.print_exc()
            failure = errors.internal(f"{type(exc).__name__}: {exc}")
            self.send_json(500, failure.status(), record)

    def _authorized(self, tokens: Iterable[str]) -> bool:
        header = self.headers.get("Authorization") or ""
        scheme, _, given = header.partition(" ")
        presented = given.strip().encode()
        # every token compared (no early exit), each in constant time
        matches = [hmac.compare_digest(presented, token.encode()) for token in tokens]
        return scheme.lower() == "bearer" and any(matches)

    def send_json(
        self,
        code: int,
        body: Any,
        record: RecordedRequest,
        headers: dict[str, str] | None = None,
        warnings: Sequence[str] = (),
    ) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        record.status = code  # before the client can see the answer
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(data)))
        for warning in warnings:
            self.send_header("Warning", "299 - " + json.dumps(warning))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def send_text(self, code: int, text: str, record: RecordedRequest) -> None:
        data = text.encode()
        record.status = code
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self, record: RecordedRequest) -> None:
        record.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _parse_body(raw: bytes, ctype: str) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        pass
    if "yaml" in ctype:
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError:
            pass
    return raw.decode(errors="replace")


def _strict(query: dict[str, str]) -> bool:
    return query.get("fieldValidation") == "Strict"


def _query_list(query: dict[str, str], key: str) -> list[str]:
    return [v for v in query.get(key, "").split(",") if v]


@dataclass
class _Call:
    """One request to a resource, once routed."""

    method: str
    rt: ResourceType
    namespace: str | None
    name: str
    sub: str | None
    query: dict[str, str]
    body: Any
    raw: bytes
    ctype: str
    dry_run: bool


class _Router:
    def __init__(self, api: KubeAPIServer, handler: _Handler, record: RecordedRequest) -> None:
        self.api = api
        self.cluster = api.cluster
        self.handler = handler
        self.record = record

    def reply(self, code: int, body: Any, warnings: Sequence[str] = ()) -> None:
        self.handler.send_json(code, body, self.record, warnings=warnings)

    # ------------------------------------------------------------------ discovery

    def route(self, method: str, path: str, query: dict[str, str], raw: bytes, ctype: str) -> None:
        parts = [p for p in path.split("/") if p]
        if path in ("/healthz", "/livez", "/readyz"):
            self.handler.send_text(200, "ok", self.record)
            return
        if parts == ["version"]:
            self.reply(200, self.api.version_info())
            return
        if not parts or parts[0] not in ("api", "apis"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if method != "GET" and len(parts) <= (2 if parts[0] == "api" else 3):
            raise errors.method_not_allowed("", "", method)
        if parts == ["api"]:
            self.reply(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.api.host}:{self.api.port}"}
                    ],
                },
            )
            return
        if parts == ["apis"]:
            self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": self._groups()})
            return
        if parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        else:
            group = parts[1]
            if len(parts) == 2:
                found = [g for g in self._groups() if g["name"] == group]
                if not found:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
                self.reply(200, {"kind": "APIGroup", "apiVersion": "v1", **found[0]})
                return
            version, rest = parts[2], parts[3:]
        if not rest:
            self.reply(200, self._resource_list(group, version))
            return
        self._resource(method, group, version, rest, query=query, raw=raw, ctype=ctype)

    def _groups(self) -> list[Obj]:
        out = []
        for group, versions in self.cluster.group_versions().items():
            if not group:
                continue
            entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
            out.append({"name": group, "versions": entries, "preferredVersion": dict(entries[0])})
        return out

    def _resource_list(self, group: str, version: str) -> Obj:
        types = [rt for rt in self.cluster.types.values() if rt.group == group and rt.version == version]
        if not types:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        resources: list[Obj] = []
        for rt in types:
            entry: Obj = {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": rt.verbs,
            }
            if rt.short_names:
                entry["shortNames"] = rt.short_names
            if rt.categories:
                entry["categories"] = rt.categories
            entry["storageVersionHash"] = base64.b64encode(f"{rt.group}/{rt.plural}".encode()).decode()[:11]
            resources.append(entry)
            sub_base = {"singularName": "", "namespaced": rt.namespaced}
            if rt.status_subresource:
                resources.append(
                    {"name": f"{rt.plural}/status", **sub_base, "kind": rt.kind, "verbs": ["get", "patch", "update"]}
                )
            if "eviction" in rt.extra_subresources:
                resources.append(
                    {
                        "name": f"{rt.plural}/eviction",
                        **sub_base,
                        "group": "policy",
                        "version": "v1",
                        "kind": "Eviction",
                        "verbs": ["create"],
                    }
                )
            if "scale" in rt.extra_subresources:
                resources.append(
                    {
                        "name": f"{rt.plural}/scale",
                        **sub_base,
                        "group": "autoscaling",
                        "version": "v1",
                        "kind": "Scale",
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}".lstrip("/"),
            "resources": resources,
        }

    # ------------------------------------------------------------------ resources

    def _resource(
        self, method: str, group: str, version: str, rest: list[str], *, query: dict[str, str], raw: bytes, ctype: str
    ) -> None:
        watch = query.get("watch", "").lower() in ("1", "true")
        if rest[0] == "watch":
            watch, rest = True, rest[1:]
        namespace: str | None = None
        namespace_sub = len(rest) == 3 and rest[2] in ("status", "finalize")
        if rest and rest[0] == "namespaces" and len(rest) >= 3 and not namespace_sub:
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        rt = self.cluster.find_type(group, version, rest[0])
        if rt is None or (namespace is not None and not rt.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        name = rest[1] if len(rest) > 1 else None
        if name is not None and rt.namespaced and namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        call = _Call(
            method,
            rt,
            namespace,
            name or "",
            rest[2] if len(rest) > 2 else None,
            query,
            self.record.body,
            raw,
            ctype,
            "All" in _query_list(query, "dryRun"),
        )
        if name is None:
            self._collection(call, watch)
        elif call.sub is None:
            self._item(call)
        else:
            self._subresource(call)

    def _matcher(self, rt: ResourceType, query: dict[str, str]) -> Callable[[Obj], bool]:
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), rt.kind, rt.custom)
        return lambda obj: labels(obj["metadata"].get("labels") or {}) and fields(obj)

    def _collection(self, call: _Call, watch: bool) -> None:
        rt, namespace, query = call.rt, call.namespace, call.query
        if call.method == "GET" and watch:
            self._watch(rt, namespace, query)
        elif call.method == "GET":
            items, rv = self.cluster.select(rt, namespace, self._matcher(rt, query))
            self.reply(200, self._list_body(rt, items, rv, query))
        elif call.method == "POST":
            if namespace is None and rt.namespaced:
                raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
            self._check_write_type(call.ctype)
            result = self.cluster.create(rt, namespace, call.body, dry_run=call.dry_run, strict=_strict(query))
            self._after_write(rt, result.obj, call.dry_run)
            self.reply(201, result.obj, result.warnings)
        elif call.method == "DELETE":
            items, _rv = self.cluster.select(rt, namespace, self._matcher(rt, query))
            deleted = []
            options = self._delete_options(query, call.body if isinstance(call.body, dict) else {})
            for item in items:
                with contextlib.suppress(ApiError):
                    result = self.cluster.delete(
                        rt, item["metadata"].get("namespace"), item["metadata"]["name"], options, dry_run=call.dry_run
                    )
                    deleted.append(result.obj or item)
            self.reply(200, self._list_body(rt, deleted, self.cluster.rv, {}))
        else:
            raise errors.method_not_allowed(rt.plural, rt.group, call.method)

    def _list_body(self, rt: ResourceType, items: list[Obj], rv: int, query: dict[str, str]) -> Obj:
        meta: Obj = {"resourceVersion": str(rv)}
        limit = int(query.get("limit") or 0)
        offset = 0
        if query.get("continue"):
            try:
                offset = int(json.loads(base64.urlsafe_b64decode(query["continue"]))["o"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(
                    400,
                    "BadRequest",
                    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
                ) from None
            items = items[offset:]
        if limit and len(items) > limit:
            meta["continue"] = base64.urlsafe_b64encode(json.dumps({"o": offset + limit, "rv": rv}).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        if not rt.custom:  # typed lists of built-ins carry no kind/apiVersion per item
            items = [{k: v for k, v in i.items() if k not in ("apiVersion", "kind")} for i in items]
        return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items}

    def _item(self, call: _Call) -> None:
        rt, namespace, name = call.rt, call.namespace, call.name
        if call.method == "GET":
            self.reply(200, self.cluster.get(rt, namespace, name))
        elif call.method == "PUT":
            self._check_write_type(call.ctype)
            self._maybe_conflict(rt, namespace, name)
            result = self.cluster.update(
                rt, namespace, name, call.body, subresource=call.sub, dry_run=call.dry_run, strict=_strict(call.query)
            )
            self._after_write(rt, result.obj, call.dry_run)
            self.reply(200, result.obj, result.warnings)
        elif call.method == "PATCH":
            self._patch(call)
        elif call.method == "DELETE" and call.sub is None:
            options = self._delete_options(call.query, call.body if isinstance(call.body, dict) else {})
            dry_run = call.dry_run or "All" in (options.get("dryRun") or [])
            result = self.cluster.delete(rt, namespace, name, options, dry_run=dry_run)
            self.reply(200, result.obj if result.obj is not None else result.status_body)
        else:
            raise errors.method_not_allowed(rt.plural, rt.group, call.method)

    @staticmethod
    def _delete_options(query: dict[str, str], body: Obj) -> Obj:
        options = dict(body)
        if "gracePeriodSeconds" in query:
            options["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
        if "propagationPolicy" in query:
            options["propagationPolicy"] = query["propagationPolicy"]
        if query.get("orphanDependents"):
            options["orphanDependents"] = query["orphanDependents"].lower() == "true"
        policy = options.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.invalid(
                "DeleteOptions",
                "meta.k8s.io",
                "",
                [
                    errors.FieldError(
                        "unsupported",
                        "propagationPolicy",
                        policy,
                        'supported values: "Foreground", "Background", "Orphan", "nil"',
                    )
                ],
            )
        return options

    @staticmethod
    def _check_write_type(ctype: str | None) -> None:
        if ctype and ctype not in ("application/json", "application/yaml"):
            raise errors.unsupported_media_type(
                ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]
            )

    def _maybe_conflict(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        self.cluster.get(rt, namespace, name)  # 404 first, as the real server checks existence before writing
        if self.api.faults.take_conflict():
            raise errors.conflict(rt.plural, rt.group, name)

    def _patch(self, call: _Call) -> None:
        rt, ctype, body = call.rt, call.ctype, call.body
        if ctype == STRATEGIC_PATCH and rt.custom:
            raise errors.unsupported_media_type([JSON_PATCH, MERGE_PATCH, APPLY_PATCH])
        if ctype not in (MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH, APPLY_PATCH):
            accepted = (
                [JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
                if rt.custom
                else [JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH]
            )
            raise errors.unsupported_media_type(accepted)
        if isinstance(body, str) or (body is None and call.raw):
            raise errors.bad_request(f"error decoding patch: invalid character in {call.raw[:40]!r}")
        create_body = None
        if ctype == APPLY_PATCH:
            if not call.query.get("fieldManager"):
                raise errors.invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    [errors.FieldError("required", "fieldManager", detail="is required for apply patch")],
                )
            if not isinstance(body, dict):
                raise errors.bad_request("error decoding YAML: the apply configuration is not an object")
            create_body = body

        def apply(current: Obj) -> Obj:
            if ctype == JSON_PATCH:
                return json_patch(current, body)
            if ctype == STRATEGIC_PATCH or (ctype == APPLY_PATCH and not rt.custom):
                return strategic_merge_patch(current, body, rt.kind)
            return merge_patch(current, body)  # merge patch; apply on a custom resource: fields set, none removed

        if create_body is None or self._exists(rt, call.namespace, call.name):
            self._maybe_conflict(rt, call.namespace, call.name)
        result = self.cluster.patch(
            rt,
            call.namespace,
            call.name,
            apply,
            subresource=call.sub,
            dry_run=call.dry_run,
            create_body=create_body,
            strict=_strict(call.query),
        )
        self._after_write(rt, result.obj, call.dry_run)
        self.reply(201 if result.created else 200, result.obj, result.warnings)

    def _exists(self, rt: ResourceType, namespace: str | None, name: str) -> bool:
        try:
            self.cluster.get(rt, namespace, name)
        except ApiError:
            return False
        return True

    def _subresource(self, call: _Call) -> None:
        rt = call.rt
        if call.sub == "status" and (rt.status_subresource or rt.kind == "Namespace"):
            self._item(call)
        elif call.sub == "eviction" and "eviction" in rt.extra_subresources:
            if call.method != "POST":
                raise errors.method_not_allowed("pods/eviction", "", call.method)
            assert call.namespace is not None
            self.cluster.evict(call.namespace, call.name, call.body)
            self.reply(201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
        elif call.sub == "scale" and "scale" in rt.extra_subresources:
            self._scale(call)
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    def _scale(self, call: _Call) -> None:
        """autoscaling/v1 Scale view of spec.replicas (Deployment, StatefulSet, ReplicaSet)."""

        def as_scale(obj: Obj) -> Obj:
            meta = obj["metadata"]
            return {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {
                    k: meta[k]
                    for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                    if k in meta
                },
                "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0)},
            }

        current = self.cluster.get(call.rt, call.namespace, call.name)
        if call.method == "GET":
            self.reply(200, as_scale(current))
            return
        if call.method == "PUT":
            wanted = call.body
        elif call.method == "PATCH" and call.ctype in (MERGE_PATCH, STRATEGIC_PATCH):
            wanted = merge_patch(as_scale(current), call.body)
        elif call.method == "PATCH" and call.ctype == JSON_PATCH:
            wanted = json_patch(as_scale(current), call.body)
        else:
            raise errors.unsupported_media_type([JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH])
        updated = clone(current)
        updated["spec"]["replicas"] = ((wanted or {}).get("spec") or {}).get("replicas")
        rv = ((wanted or {}).get("metadata") or {}).get("resourceVersion")
        if rv:
            updated["metadata"]["resourceVersion"] = rv
        result = self.cluster.update(call.rt, call.namespace, call.name, updated, dry_run=call.dry_run)
        self._after_write(call.rt, result.obj, call.dry_run)
        assert result.obj is not None
        self.reply(200, as_scale(result.obj))

    # ------------------------------------------------------------------ watch

    def _watch(self, rt: ResourceType, namespace: str | None, query: dict[str, str]) -> None:
        matches = self._matcher(rt, query)
        timeout = float(query.get("timeoutSeconds") or WATCH_DEFAULT_TIMEOUT)
        handler = self.handler
        bookmarks = query.get("allowWatchBookmarks", "").lower() == "true"
        initial = query.get("sendInitialEvents", "").lower() == "true"
        if initial and query.get("resourceVersionMatch") != "NotOlderThan":
            raise errors.invalid(
                "ListOptions",
                "meta.k8s.io",
                "",
                [
                    errors.FieldError(
                        "forbidden",
                        "resourceVersionMatch",
                        detail="sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                    )
                ],
            )
        try:
            watcher, backlog, synced_rv = self.cluster.watch(
                rt, namespace, matches, query.get("resourceVersion"), initial_events=initial
            )
        except ApiError as err:
            if err.code != 410:
                raise
            handler.start_stream(self.record)
            handler.send_chunk(json.dumps({"type": "ERROR", "object": err.status()}).encode() + b"\n")
            handler.send_chunk(b"")
            return
        handler.start_stream(self.record)
        deadline = time.monotonic() + timeout
        try:
            for event in backlog:
                self._send_event(rt, event, matches)
            if initial and bookmarks:  # the end of the initial events, as WatchList clients expect
                self._send_bookmark(rt, synced_rv, {"k8s.io/initial-events-end": "true"})
            while not self.api._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.api.faults.is_down:
                    break
                try:
                    live = watcher.events.get(timeout=min(remaining, 0.25))
                except queue.Empty:
                    continue
                if live is None:
                    break
                self._send_event(rt, live, matches)
                synced_rv = live.rv
            if bookmarks:
                self._send_bookmark(rt, max(synced_rv, self.cluster.rv))
            handler.send_chunk(b"")
        except (OSError, ssl.SSLError):
            handler.close_connection = True
        finally:
            self.cluster.unwatch(watcher)

    def _send_bookmark(self, rt: ResourceType, rv: int, annotations: dict[str, str] | None = None) -> None:
        meta: Obj = {"resourceVersion": str(rv)}
        if annotations:
            meta["annotations"] = annotations
        line = json.dumps(
            {"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}},
            separators=(",", ":"),
        )
        self.handler.send_chunk(line.encode() + b"\n")

    def _send_event(self, rt: ResourceType, event: Any, matches: Callable[[Obj], bool]) -> None:
        filtered = self.cluster.filter_event(event, matches)
        if filtered is None:
            return
        kind, obj = filtered
        line = json.dumps({"type": kind, "object": self.cluster.present(rt, obj)}, separators=(",", ":"))
        self.handler.send_chunk(line.encode() + b"\n")

    # ------------------------------------------------------------------ controller hooks

    def _after_write(self, rt: ResourceType, obj: Obj | None, dry_run: bool) -> None:
        if dry_run or obj is None:
            return
        self.api._run_hooks(rt, obj)


class KubeAPIServer:
    """A Kubernetes API server for tests: discovery, CRUD/PATCH/watch, CRD validation, eviction, faults."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = True,
        crd_files: Iterable[str | Path] | None = None,
        *,
        token: str | None = None,
        extra_tokens: Iterable[str] = (),
        tls_sans: Sequence[str] = (),
        cert_dir: str | Path | None = None,
        version: str = DEFAULT_VERSION,
        state_file: str | Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.token = token or secrets.token_urlsafe(32)
        # further bearer tokens accepted besides ``token`` (the K3s stand-in: its nodes' join credential)
        self.extra_tokens: set[str] = set(extra_tokens)
        self.version = version
        self.cluster = Cluster([Path(p) for p in crd_files] if crd_files is not None else None)
        self.faults = Faults(self)
        self.requests: list[RecordedRequest] = []
        self.hook_errors: list[str] = []
        self._requests_lock = threading.Lock()
        self._tls_sans = tuple(dict.fromkeys(["127.0.0.1", "localhost", host, *tls_sans]))
        self._cert_dir = Path(cert_dir) if cert_dir else None
        self._tmp: Path | None = None
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._ssl: ssl.SSLContext | None = None
        self.ca_path: Path | None = None
        self._state_file = Path(state_file) if state_file else None
        self._save_timer: threading.Timer | None = None
        if self._state_file and self._state_file.exists():
            self.cluster.load(json.loads(self._state_file.read_text(encoding="utf-8")))
        if self._state_file:
            self.cluster.on_change = self._schedule_save

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)  # noqa: S104
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}"

    def start(self) -> KubeAPIServer:
        self._stopping.clear()
        self._tmp = Path(tempfile.mkdtemp(prefix="kubeapi-"))
        if self.tls:
            bundle = CertBundle.read(self._cert_dir) if self._cert_dir else None
            if bundle is None:
                bundle = make_certs(self._tls_sans)
                if self._cert_dir:
                    bundle.write(self._cert_dir)
            ca, cert, key = bundle.write(self._tmp)
            self.ca_path = self._cert_dir / "ca.crt" if self._cert_dir else ca
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(cert, key)
            self._ssl = context
        self._listen()
        return self

    def _listen(self) -> None:
        httpd = _HTTPServer((self.host, self.port))
        httpd.api = self
        httpd.ssl_context = self._ssl
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, name=f"kubeapi-{self.port}", daemon=True
        )
        self._thread.start()

    def _stop_listening(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def stop(self) -> None:
        self._stopping.set()
        with self.cluster.lock:
            for watcher in self.cluster.watchers:
                watcher.events.put(None)
        self._stop_listening()
        self._save_state()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> KubeAPIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def version_info(self) -> Obj:
        core = self.version.lstrip("v").split("+")[0].split(".")
        return {
            "major": core[0],
            "minor": core[1],
            "emulationMajor": core[0],
            "emulationMinor": core[1],
            "minCompatibilityMajor": core[0],
            "minCompatibilityMinor": str(max(int(core[1]) - 1, 0)),
            "gitVersion": self.version,
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2025-09-10T00:00:00Z",
            "goVersion": "go1.24.6",
            "compiler": "gc",
            "platform": "linux/arm64",
        }

    def write_kubeconfig(
        self,
        path: str | Path,
        context: str = "lab",
        cluster: str = "lab",
        *,
        user: str = "lab",
        namespace: str | None = None,
        embed_ca: bool = False,
    ) -> Path:
        """A normal kubeconfig: server URL, certificate-authority (file or embedded data) and bearer token."""
        path = Path(path)
        cluster_entry: Obj = {"server": self.url}
        if self.tls:
            assert self.ca_path is not None, "start() the server first"
            if embed_ca:
                cluster_entry["certificate-authority-data"] = base64.b64encode(self.ca_path.read_bytes()).decode()
            else:
                cluster_entry["certificate-authority"] = str(self.ca_path)
        context_entry: Obj = {"cluster": cluster, "user": user}
        if namespace:
            context_entry["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": cluster, "cluster": cluster_entry}],
            "users": [{"name": user, "user": {"token": self.token}}],
            "contexts": [{"name": context, "context": context_entry}],
            "current-context": context,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    # ------------------------------------------------------------------ persistence (CLI)

    def _schedule_save(self) -> None:
        if self._save_timer is None or not self._save_timer.is_alive():
            self._save_timer = threading.Timer(0.2, self._save_state)
            self._save_timer.daemon = True
            self._save_timer.start()

    def _save_state(self) -> None:
        if not self._state_file:
            return
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.cluster.dump()), encoding="utf-8")
        tmp.replace(self._state_file)

    # ------------------------------------------------------------------ recording

    def _record(self, record: RecordedRequest) -> None:
        with self._requests_lock:
            self.requests.append(record)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self.requests.clear()

    def count(self, method: str | None = None, path_prefix: str | None = None, exclude_discovery: bool = True) -> int:
        with self._requests_lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (path_prefix is None or r.path.startswith(path_prefix))
                and not (exclude_discovery and r.discovery)
            )

    # ------------------------------------------------------------------ test API (state backdoor)

    def _type(self, api_version: str, kind: str) -> ResourceType:
        return self.cluster.type_for(api_version, kind)

    def create(self, obj: Obj) -> Obj:
        """Store an object as a client or controller would have (validated, defaulted; status kept)."""
        rt = self._type(obj["apiVersion"], obj["kind"])
        result = self.cluster.create(rt, (obj.get("metadata") or {}).get("namespace"), obj, trusted=True)
        assert result.obj is not None
        return result.obj

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        rt = self._type(api_version, kind)
        try:
            return self.cluster.get(rt, namespace if rt.namespaced else None, name)
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[Obj]:
        rt = self._type(api_version, kind)
        labels = parse_label_selector(label_selector)
        items, _rv = self.cluster.select(rt, namespace, lambda o: labels(o["metadata"].get("labels") or {}))
        return items

    def update_status(  # noqa: PLR0917 - tests pass merge positionally
        self, api_version: str, kind: str, name: str, namespace: str | None, status: Obj, merge: bool = True
    ) -> Obj:
        """Set an object's status as its controller would (JSON-merged into the current status by default)."""
        rt = self._type(api_version, kind)
        current = self.cluster.get(rt, namespace, name)
        current["status"] = merge_patch(current.get("status") or {}, status) if merge else status
        current["metadata"].pop("resourceVersion", None)
        result = self.cluster.update(rt, namespace, name, current, subresource="status", trusted=True)
        assert result.obj is not None
        return result.obj

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None, patch: Obj) -> Obj:
        """JSON-merge-patch any part of an object, status included."""
        rt = self._type(api_version, kind)
        current = self.cluster.get(rt, namespace, name)
        current["metadata"].pop("resourceVersion", None)
        result = self.cluster.update(rt, namespace, name, merge_patch(current, patch), trusted=True)
        assert result.obj is not None
        return result.obj

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, force: bool = False) -> None:
        """Delete like a client would; ``force`` first clears finalizers so the object goes at once."""
        rt = self._type(api_version, kind)
        if force:
            current = self.cluster.get(rt, namespace, name)
            if current["metadata"].get("finalizers"):
                self.patch(api_version, kind, name, namespace, {"metadata": {"finalizers": None}})
            if self.get(api_version, kind, name, namespace) is None:
                return
        self.cluster.delete(rt, namespace, name, {"gracePeriodSeconds": 0} if force else None)

    def reset(self) -> None:
        """Back to a fresh cluster: objects, hooks, recorded requests and faults."""
        self.cluster.reset()
        self.clear_requests()
        self.faults.clear()
        self.hook_errors.clear()

    @property
    def pod_shutdown_seconds(self) -> float:
        return self.cluster.pod_shutdown_seconds

    @pod_shutdown_seconds.setter
    def pod_shutdown_seconds(self, seconds: float) -> None:
        self.cluster.pod_shutdown_seconds = seconds

    # ------------------------------------------------------------------ controller simulation

    def on_write(self, kind: str, callback: Callable[[KubeAPIServer, Obj], Any], delay: float = 0.0) -> None:
        """Call ``callback(server, obj)`` after every API write (create/update/patch, not dry-run) of ``kind``
        (``"Schedule"`` or ``"Backup.velero.io"``): after the write is stored, outside the lock, before the
        response is sent (or ``delay`` seconds later in a thread)."""
        self.cluster.add_hook(kind, callback, delay)

    def _run_hooks(self, rt: ResourceType, obj: Obj) -> None:
        for hook in self.cluster.hooks_for(rt):
            if hook.delay > 0:
                timer = threading.Timer(hook.delay, self._call_hook, (hook.callback, clone(obj)))
                timer.daemon = True
                timer.start()
            else:
                self._call_hook(hook.callback, clone(obj))

    def _call_hook(self, callback: Callable[[KubeAPIServer, Obj], Any], obj: Obj) -> None:
        try:
            callback(self, obj)
        except Exception:
            self.hook_errors.append(traceback.format_exc())
