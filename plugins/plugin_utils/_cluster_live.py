# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live Node data for the ``homelab.pi_cluster.cluster`` inventory plugin.

Internal to homelab.pi_cluster: names here may change without notice.

One request: ``GET /api/v1/nodes`` through the kubernetes client's ``CoreV1Api``
(no discovery, unlike the dynamic client). Authentication is kubernetes.core's
(same options, same ``K8S_AUTH_*`` environment fallbacks). The answer is reduced
to small JSON-friendly summaries, which is also what the inventory cache stores.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

KUBERNETES_IMPORT_ERROR: Optional[str] = None
try:
    import kubernetes
    from kubernetes.client.rest import ApiException
    from urllib3.exceptions import HTTPError as Urllib3HTTPError
except ImportError:
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()

K8S_CORE_IMPORT_ERROR: Optional[str] = None
try:
    # Private helpers of kubernetes.core, used so that auth behaves exactly as in its
    # modules; its public get_api_client() would add /version and discovery requests.
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import (
        _create_auth_spec,
        _create_configuration,
        _create_headers,
    )
except ImportError:
    K8S_CORE_IMPORT_ERROR = traceback.format_exc()

NODES_PATH = "/api/v1/nodes"


class LiveError(Exception):
    """The Node list could not be read; the plugin degrades to the static inventory."""


@dataclass
class Enrichment:
    """What the Node list adds to the inventory."""

    host_vars: dict[str, dict[str, Any]] = field(default_factory=dict)
    ready: list[str] = field(default_factory=list)
    not_ready: list[str] = field(default_factory=list)
    unmanaged: list[dict[str, Any]] = field(default_factory=list)


def node_summary(node: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the inventory uses from one Node object (as the API returns it)."""
    metadata = node.get("metadata") or {}
    status = node.get("status") or {}
    info = status.get("nodeInfo") or {}
    labels = dict(metadata.get("labels") or {})
    ready_status = next(
        (c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"),
        None,
    )
    internal_ip = next(
        (a.get("address") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"),
        None,
    )
    return {
        "name": metadata.get("name"),
        # "Unknown" (node stopped reporting) counts as not ready, as kubectl shows it.
        "ready": ready_status == "True",
        "kubelet_version": info.get("kubeletVersion"),
        "arch": info.get("architecture") or labels.get("kubernetes.io/arch"),
        "labels": labels,
        "internal_ip": internal_ip,
    }


def nodes_from_list(node_list: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Summaries of every Node in a ``NodeList`` answer."""
    if not isinstance(node_list, Mapping) or not isinstance(node_list.get("items"), list):
        raise LiveError(f"GET {NODES_PATH} did not return a NodeList")
    return [node_summary(item) for item in node_list["items"] if (item.get("metadata") or {}).get("name")]


def enrich(k3s_hosts: Iterable[str], nodes: Iterable[Mapping[str, Any]]) -> Enrichment:
    """Match Nodes to the cluster file's K3s hosts by name.

    A K3s host without a Node has not joined (yet): it is not ready. A Node
    without a host in the file is "unmanaged".
    """
    by_name = {node["name"]: dict(node) for node in nodes}
    result = Enrichment()
    for host in k3s_hosts:
        node = by_name.pop(host, None)
        if node is None:
            result.host_vars[host] = {"k3s_live_registered": False, "k3s_live_ready": False}
            result.not_ready.append(host)
            continue
        result.host_vars[host] = node_vars(node)
        (result.ready if node["ready"] else result.not_ready).append(host)
    result.unmanaged = sorted(by_name.values(), key=lambda n: n["name"])
    return result


def node_vars(node: Mapping[str, Any]) -> dict[str, Any]:
    """Host variables for one Node summary."""
    return {
        "k3s_live_registered": True,
        "k3s_live_ready": bool(node["ready"]),
        "k3s_live_version": node.get("kubelet_version"),
        "k3s_live_arch": node.get("arch"),
        "k3s_live_labels": dict(node.get("labels") or {}),
    }


def label_groups(labels: Mapping[str, Any], keys: Iterable[str], prefix: str) -> list[str]:
    """Raw (unsanitized) group names for the labels listed in ``keys``: ``<prefix><key>_<value>``."""
    names = []
    for key in keys:
        if key in labels:
            value = labels[key]
            names.append(f"{prefix}{key}_{value}" if value not in (None, "") else f"{prefix}{key}")
    return names


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, ApiException):
        return exc.status in (429, 500, 502, 503, 504)
    return True  # connection refused/reset, timeouts


def _describe(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}".strip()
    return f"{type(exc).__name__}: {exc}"


def fetch_nodes(auth: Mapping[str, Any], timeout: float = 10, retries: int = 2) -> list[dict[str, Any]]:
    """LIST the Nodes once (retrying only transient failures) and return their summaries."""
    if KUBERNETES_IMPORT_ERROR is not None:
        raise LiveError("live: true needs the kubernetes Python library (pip install 'kubernetes>=24.2.0')")
    if K8S_CORE_IMPORT_ERROR is not None:
        reason = K8S_CORE_IMPORT_ERROR.strip().splitlines()[-1]
        raise LiveError(f"live: true needs the kubernetes.core collection (>=5.0.0,<7.0.0): {reason}")
    kwargs = {name: value for name, value in auth.items() if value is not None}
    try:
        configuration = _create_configuration(_create_auth_spec(**kwargs))
        headers = _create_headers(**kwargs)
    except (kubernetes.config.ConfigException, OSError, ValueError, TypeError) as exc:
        raise LiveError(f"could not load the Kubernetes configuration: {type(exc).__name__}: {exc}") from exc
    # Our own retry loop below is the only one: urllib3's hidden retries would blur request counts and timing.
    configuration.retries = 0
    api_client = kubernetes.client.ApiClient(configuration)
    for header, value in headers.items():
        api_client.set_default_header(header, ",".join(value) if isinstance(value, list) else value)
    core = kubernetes.client.CoreV1Api(api_client)
    try:
        for attempt in range(retries + 1):
            try:
                # Raw JSON instead of V1NodeList models: less work, and the summaries need plain dicts.
                response: Any = core.list_node(_preload_content=False, _request_timeout=timeout)
                return nodes_from_list(json.loads(response.data))
            except (ApiException, Urllib3HTTPError, OSError) as exc:
                if attempt == retries or not _retryable(exc):
                    raise LiveError(f"GET {configuration.host}{NODES_PATH} failed: {_describe(exc)}") from exc
                time.sleep(0.5 * 2**attempt)
            except ValueError as exc:  # not JSON
                raise LiveError(f"GET {configuration.host}{NODES_PATH} returned no JSON: {exc}") from exc
    finally:
        api_client.close()
    raise LiveError("unreachable")  # pragma: no cover - the loop always returns or raises
