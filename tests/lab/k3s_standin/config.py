"""How the stand-in reads its settings: K3s's config file rules, CLI flags, environment and tokens."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = Path("/etc/rancher/k3s/config.yaml")
DEFAULT_DATA_DIR = Path("/var/lib/rancher/k3s")

# environment variables K3s reads for these flags
ENV_FLAGS = {
    "token": "K3S_TOKEN",
    "token-file": "K3S_TOKEN_FILE",
    "server": "K3S_URL",
    "node-name": "K3S_NODE_NAME",
    "config": "K3S_CONFIG_FILE",
    "write-kubeconfig": "K3S_KUBECONFIG_OUTPUT",
    "write-kubeconfig-mode": "K3S_KUBECONFIG_MODE",
    "data-dir": "K3S_DATA_DIR",
}


class ConfigError(Exception):
    """A configuration K3s would refuse; the message is what K3s would log."""


def parse_flags(argv: list[str]) -> dict[str, Any]:
    """``--key=value``, ``--key value`` and bare ``--key`` (true); repeated keys make a list."""
    flags: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            raise ConfigError(f"unexpected argument {arg!r}")
        key, eq, value = arg.lstrip("-").partition("=")
        parsed: Any = value
        if not eq:
            if i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                parsed = argv[i + 1]
                i += 1
            else:
                parsed = True
        if key in flags:
            flags[key] = [*as_list(flags[key]), parsed]
        else:
            flags[key] = parsed
        i += 1
    return flags


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def config_files(path: Path) -> list[Path]:
    """config.yaml, then config.yaml.d/*.yaml|*.yml in name order, as K3s reads them."""
    files = [path] if path.is_file() else []
    dropins = Path(f"{path}.d")
    if dropins.is_dir():
        files += sorted(p for p in dropins.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return files


def load_config(path: Path) -> dict[str, Any]:
    """Merge the files: a later key replaces an earlier one, ``key+`` appends to the list of ``key``."""
    merged: dict[str, Any] = {}
    for file in config_files(path):
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"failed to parse {file}: the top level must be a mapping")
        for key, value in data.items():
            if str(key).endswith("+"):
                base = str(key)[:-1]
                merged[base] = as_list(merged.get(base)) + as_list(value)
            else:
                merged[str(key)] = value
    return merged


def settings(argv: list[str]) -> dict[str, Any]:
    """Effective settings: environment < config files < command line flags (K3s's order)."""
    flags = parse_flags(argv)
    config_path = Path(flags.get("config") or os.environ.get("K3S_CONFIG_FILE") or DEFAULT_CONFIG)
    result: dict[str, Any] = {}
    for key, env in ENV_FLAGS.items():
        if os.environ.get(env):
            result[key] = os.environ[env]
    result.update(load_config(config_path))
    result.update(flags)
    return result


def read_token(opts: dict[str, Any]) -> str | None:
    """The join token from ``token`` or the file named by ``token-file`` (trimmed), if any."""
    if opts.get("token"):
        return str(opts["token"]).strip()
    if opts.get("token-file"):
        path = Path(str(opts["token-file"]))
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"failed to read token file {path}: {exc.strerror}") from exc
    return None


def token_password(token: str) -> str:
    """The shared secret of a token: ``K10<ca-hash>::server:<password>`` or a bare ``<password>``."""
    if token.startswith("K10") and "::" in token:
        creds = token.split("::", 1)[1]
        return creds.split(":", 1)[1] if ":" in creds else creds
    return token


def token_ca_hash(token: str) -> str | None:
    if token.startswith("K10") and "::" in token:
        return token[3:].split("::", 1)[0]
    return None


def file_mode(value: Any, default: int = 0o600) -> int:
    """``write-kubeconfig-mode``: K3s reads 644, "644" and "0644" all as octal."""
    if value is None or value == "":
        return default
    return int(str(value), 8)
