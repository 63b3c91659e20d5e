# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""K3s ``config.yaml`` keys: the allow-lists, merging and validation used by the ``k3s`` role.

Internal to homelab.pi_cluster: names here may change without notice.

K3s reads ``/etc/rancher/k3s/config.yaml`` and then ``config.yaml.d/*.yaml`` in name order; a key is
the long CLI flag without its leading ``--``, a later file replaces a key's value and a key written
with a trailing ``+`` appends to a list instead. K3s rejects unknown keys only at start, after the
role has already restarted the service, so the role checks every key against the flags of the pinned
K3s line (v1.31) before writing anything.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

# `k3s agent` flags (servers run an agent too, so these are valid on servers as well).
AGENT_KEYS = frozenset(
    {
        "config",
        "debug",
        "v",
        "vmodule",
        "log",
        "alsologtostderr",
        "token",
        "token-file",
        "server",
        "data-dir",
        "node-name",
        "with-node-id",
        "node-label",
        "node-taint",
        "image-credential-provider-bin-dir",
        "image-credential-provider-config",
        "selinux",
        "lb-server-port",
        "protect-kernel-defaults",
        "docker",
        "container-runtime-endpoint",
        "default-runtime",
        "image-service-endpoint",
        "disable-default-registry-endpoint",
        "nonroot-devices",
        "pause-image",
        "snapshotter",
        "private-registry",
        "system-default-registry",
        "airgap-extra-registry",
        "node-ip",
        "node-external-ip",
        "node-internal-dns",
        "node-external-dns",
        "resolv-conf",
        "flannel-iface",
        "flannel-conf",
        "flannel-cni-conf",
        "kubelet-arg",
        "kube-proxy-arg",
        "rootless",
        "prefer-bundled-bin",
        "bind-address",
        "vpn-auth",
        "vpn-auth-file",
        "disable-apiserver-lb",
        "enable-pprof",
    }
)

# `k3s server` flags on top of the agent's.
SERVER_ONLY_KEYS = frozenset(
    {
        "advertise-address",
        "advertise-port",
        "tls-san",
        "tls-san-security",
        "https-listen-port",
        "supervisor-port",
        "apiserver-port",
        "apiserver-bind-address",
        "cluster-cidr",
        "service-cidr",
        "service-node-port-range",
        "cluster-dns",
        "cluster-domain",
        "flannel-backend",
        "flannel-ipv6-masq",
        "flannel-external-ip",
        "egress-selector-mode",
        "servicelb-namespace",
        "write-kubeconfig",
        "write-kubeconfig-mode",
        "write-kubeconfig-group",
        "helm-job-image",
        "agent-token",
        "agent-token-file",
        "cluster-init",
        "cluster-reset",
        "cluster-reset-restore-path",
        "kube-apiserver-arg",
        "etcd-arg",
        "kube-controller-manager-arg",
        "kube-scheduler-arg",
        "kube-cloud-controller-manager-arg",
        "kine-tls",
        "datastore-endpoint",
        "datastore-cafile",
        "datastore-certfile",
        "datastore-keyfile",
        "etcd-expose-metrics",
        "etcd-disable-snapshots",
        "etcd-snapshot-name",
        "etcd-snapshot-schedule-cron",
        "etcd-snapshot-retention",
        "etcd-snapshot-dir",
        "etcd-snapshot-compress",
        "etcd-s3",
        "etcd-s3-endpoint",
        "etcd-s3-endpoint-ca",
        "etcd-s3-skip-ssl-verify",
        "etcd-s3-access-key",
        "etcd-s3-secret-key",
        "etcd-s3-session-token",
        "etcd-s3-bucket",
        "etcd-s3-bucket-lookup-type",
        "etcd-s3-region",
        "etcd-s3-folder",
        "etcd-s3-proxy",
        "etcd-s3-config-secret",
        "etcd-s3-insecure",
        "etcd-s3-timeout",
        "default-local-storage-path",
        "disable",
        "disable-scheduler",
        "disable-cloud-controller",
        "disable-kube-proxy",
        "disable-network-policy",
        "disable-helm-controller",
        "disable-etcd",
        "disable-apiserver",
        "disable-controller-manager",
        "disable-agent",
        "embedded-registry",
        "supervisor-metrics",
        "secrets-encryption",
        "secrets-encryption-provider",
    }
)
SERVER_KEYS = AGENT_KEYS | SERVER_ONLY_KEYS

# Keys that would put the join token into config.yaml: the role writes it to a 0600 file and sets
# `token-file`, so it never sits in the config, a unit file or a command line.
FORBIDDEN_KEYS = {
    "token": "set k3s_token (from the vault); the role writes it to a 0600 file referenced by token-file",
    "agent-token": "put it in a 0600 file and set agent-token-file instead",
    "vpn-auth": "put it in a 0600 file and set vpn-auth-file instead",
}


NODE_TYPES = ("server", "agent")
DROPIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class K3sConfigError(ValueError):
    """A K3s config key or value the role refuses to write."""


def allowed_keys(node_type: str) -> frozenset[str]:
    if node_type not in NODE_TYPES:
        raise K3sConfigError(f"node_type must be one of {', '.join(NODE_TYPES)}, got {node_type!r}")
    return SERVER_KEYS if node_type == "server" else AGENT_KEYS


def flag_name(key: str) -> str:
    """The flag a config key sets: ``node-label+`` appends to ``node-label``."""
    return key[:-1] if key.endswith("+") else key


def validate(config: Mapping[str, Any], node_type: str, source: str = "config") -> None:
    """Raise K3sConfigError naming every unknown or forbidden key of ``config`` (from ``source``)."""
    if not isinstance(config, Mapping):
        raise K3sConfigError(f"{source} must be a dictionary of K3s config keys, got {type(config).__name__}")
    allowed = allowed_keys(node_type)
    problems = []
    for key in config:
        if not isinstance(key, str):
            problems.append(f"{key!r} is not a string")
            continue
        flag = flag_name(key)
        if flag in FORBIDDEN_KEYS:
            problems.append(f"{key!r} is not allowed: {FORBIDDEN_KEYS[flag]}")
        elif flag not in allowed:
            hint = difflib.get_close_matches(flag, sorted(allowed), n=1)
            where = " (a server-only flag)" if flag in SERVER_ONLY_KEYS else ""
            problems.append(
                f"{key!r} is not a K3s {node_type} flag{where}" + (f"; did you mean {hint[0]!r}?" if hint else "")
            )
    if problems:
        raise K3sConfigError(f"{source}: " + "; ".join(problems))


def merge(layers: Iterable[Mapping[str, Any] | None], node_type: str, names: Iterable[str] = ()) -> dict[str, Any]:
    """Merge config dicts left to right (a later key replaces an earlier one), validating each layer.

    ``names`` labels the layers in error messages (for example the variable each came from).
    """
    label = list(names)
    result: dict[str, Any] = {}
    for index, layer in enumerate(layers):
        if layer is None:
            continue
        source = label[index] if index < len(label) else f"config layer {index + 1}"
        validate(layer, node_type, source)
        result.update(layer)
    return {key: result[key] for key in sorted(result)}  # sorted: the rendered file never reorders


def dropins(files: Mapping[str, Mapping[str, Any] | None], node_type: str) -> dict[str, dict[str, Any]]:
    """Validated ``config.yaml.d`` drop-ins by file name (``<name>.yaml``), each with sorted keys."""
    if not isinstance(files, Mapping):
        raise K3sConfigError(f"k3s_config_dropins must be a dictionary of name: config, got {type(files).__name__}")
    result = {}
    for name, config in files.items():
        if not isinstance(name, str) or not DROPIN_NAME.match(name) or name.endswith((".yaml", ".yml")):
            raise K3sConfigError(
                f"k3s_config_dropins: {name!r} is not a usable file name (letters, digits, '.', '_', '-'; "
                "without the .yaml suffix the role adds)"
            )
        result[name] = merge([config or {}], node_type, [f"k3s_config_dropins[{name!r}]"])
    return result
