# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Merging one cluster's kubeconfig into another kubeconfig as a named context.

Internal to homelab.pi_cluster: names here may change without notice.

K3s writes ``/etc/rancher/k3s/k3s.yaml`` with one cluster, user and context, all called ``default``
and a server URL of ``https://127.0.0.1:6443``. To use it from a workstation those three entries get
the cluster's name, the server URL becomes an address the workstation reaches, and they go into the
user's kubeconfig next to whatever else is there: entries with other names are never touched, entries
with the same name are replaced in place (so a re-run compares equal and writes nothing).
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional

KubeConfig = Dict[str, Any]

SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


class KubeconfigError(ValueError):
    """A kubeconfig that cannot be merged (not a mapping, no usable context, ...)."""


def empty_config() -> KubeConfig:
    return {"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": [], "users": [], "contexts": []}


def check_config(config: Any, what: str) -> KubeConfig:
    """``config`` as a kubeconfig dict (``None`` = an empty file), or KubeconfigError naming ``what``."""
    if config is None:
        return empty_config()
    if not isinstance(config, dict):
        raise KubeconfigError(f"{what} is not a kubeconfig (a YAML mapping), got {type(config).__name__}")
    kind = config.get("kind", "Config")
    if kind != "Config":
        raise KubeconfigError(f"{what} has kind {kind!r}, expected 'Config'")
    for section, _key in SECTIONS:
        entries = config.get(section) or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "name" in e for e in entries):
            raise KubeconfigError(f"{what}: {section} must be a list of entries with a name")
    return config


def _entry(config: KubeConfig, section: str, name: str) -> Optional[Dict[str, Any]]:
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            return entry
    return None


def source_entries(source: KubeConfig) -> Dict[str, Dict[str, Any]]:
    """The cluster, user and context bodies of the source's current context (or its only context)."""
    contexts = source.get("contexts") or []
    name = source.get("current-context") or (contexts[0]["name"] if len(contexts) == 1 else None)
    context = _entry(source, "contexts", name) if name else None
    if context is None:
        raise KubeconfigError("the source kubeconfig has no current-context and not exactly one context")
    body = context.get("context") or {}
    cluster = _entry(source, "clusters", body.get("cluster", ""))
    user = _entry(source, "users", body.get("user", ""))
    if cluster is None or user is None:
        raise KubeconfigError(f"the source context {name!r} names a cluster or user the source does not define")
    return {"cluster": cluster.get("cluster") or {}, "user": user.get("user") or {}, "context": body}


def _put(entries: List[Dict[str, Any]], new: Dict[str, Any]) -> None:
    """Replace the entry with ``new``'s name in place, or append it."""
    for index, entry in enumerate(entries):
        if entry.get("name") == new["name"]:
            entries[index] = new
            return
    entries.append(new)


def merge(
    existing: Any, source: Any, name: str, server: Optional[str] = None, set_current_context: bool = False
) -> KubeConfig:
    """``existing`` with ``source``'s context added as cluster, user and context ``name``.

    ``server`` replaces the source cluster's server URL. The current context becomes ``name`` when
    ``set_current_context`` is true or when ``existing`` has none.
    """
    if not name:
        raise KubeconfigError("name must not be empty")
    result = copy.deepcopy(check_config(existing, "the existing kubeconfig"))
    parts = source_entries(check_config(source, "the source kubeconfig"))
    cluster = copy.deepcopy(parts["cluster"])
    if server:
        cluster["server"] = server
    context = {key: value for key, value in parts["context"].items() if key not in ("cluster", "user")}
    context.update({"cluster": name, "user": name})
    bodies = (cluster, copy.deepcopy(parts["user"]), context)
    for (section, key), body in zip(SECTIONS, bodies):  # noqa: B905 - modules still run on Python 3.8 targets
        entries = result.get(section) or []
        _put(entries, {"name": name, key: body})
        result[section] = entries
    if set_current_context or not result.get("current-context"):
        result["current-context"] = name
    return result


def summary(config: KubeConfig) -> str:
    """A secret-free description for --diff: names and servers only, never credentials."""
    lines = [f"current-context: {config.get('current-context', '')}"]
    for entry in config.get("contexts") or []:
        body = entry.get("context") or {}
        cluster = _entry(config, "clusters", body.get("cluster", "")) or {}
        lines.append(
            f"context {entry['name']}: cluster={body.get('cluster')} user={body.get('user')} "
            f"server={(cluster.get('cluster') or {}).get('server')}"
        )
    return "\n".join(lines) + "\n"
