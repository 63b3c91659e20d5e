# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find plaintext secrets in inventories, group_vars, host_vars and playbooks, and replace them.

Internal to homelab.pi_cluster: names here may change without notice.

Line based on purpose, so a rewrite changes only the value on the lines it moves and keeps
comments, order and formatting. YAML ``key: value`` lines (vars files and playbook ``vars:``)
and INI inventory ``key=value`` pairs are understood; block scalars, flow mappings, values
that are already templates and vault-encrypted files are left alone.
A finding is either a known secret name (``*_password``, ``*_token``, ``*secret*``, API and
access keys) or a high-entropy string (random-looking, 20+ characters) under any name.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

SECRET_NAME = re.compile(
    r"(^|_)(pass|passwd|password|passphrase|secret|token|api_?key|access_?key|secret_?key|private_?key|credentials?)"
    r"(_|$)",
    re.IGNORECASE,
)
# names that mention a secret but hold something else
NOT_SECRET_NAME = re.compile(
    r"(_file|_path|_dir|_var|_vars|_length|_url|_id|_mode|_name|_user|_username|_charset|_interval|_days|_ttl"
    r"|_enabled|_type|_policy|_keys)$",
    re.IGNORECASE,
)
YAML_LINE = re.compile(r"^(?P<lead>\s*(?:-\s+)?)(?P<key>[A-Za-z_][A-Za-z0-9_]*)(?P<sep>\s*:\s+)(?P<value>.*?)\s*$")
INI_PAIR = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>'[^']*'|\"[^\"]*\"|\S+)")
YAML_SUFFIXES = (".yml", ".yaml")
PLACEHOLDERS = {"", "changeme", "change_me", "none", "null", "~", "todo", "xxx", "secret", "password"}
MIN_ENTROPY_LENGTH = 20


class ScanError(Exception):
    """A path to scan does not exist or a file can't be rewritten."""


@dataclass
class Finding:
    path: str
    line: int
    key: str
    value: str
    reason: str
    vault_var: str = ""

    def public(self) -> Dict[str, object]:
        """Everything but the value."""
        return {
            "path": self.path,
            "line": self.line,
            "key": self.key,
            "reason": self.reason,
            "vault_var": self.vault_var,
        }


def shannon_entropy(text: str) -> float:
    counts: Dict[str, int] = {}
    for char in text:
        counts[char] = counts.get(char, 0) + 1
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values()) if text else 0.0


def looks_random(value: str, min_entropy: float) -> bool:
    """A token-like string: long, no spaces, letters and digits mixed, high entropy, not a path or URL."""
    if len(value) < MIN_ENTROPY_LENGTH or any(c.isspace() for c in value) or "/" in value or "://" in value:
        return False
    if not (any(c.isalpha() for c in value) and any(c.isdigit() for c in value)):
        return False
    return shannon_entropy(value) >= min_entropy


def unquote(raw: str) -> Optional[str]:
    """The scalar a YAML/INI value stands for, or None when it is not a plain one-line scalar."""
    raw = re.sub(r"\s+#.*$", "", raw) if not raw.startswith(("'", '"')) else raw
    if not raw or raw[0] in "|>&*!{[" or raw.startswith("'{{") or raw.startswith('"{{') or "{{" in raw:
        return None
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    if raw[0] in "'\"":
        return None
    return raw


def classify(key: str, value: str, min_entropy: float) -> Optional[str]:
    if value.strip().lower() in PLACEHOLDERS or value.startswith("$ANSIBLE_VAULT"):
        return None
    if SECRET_NAME.search(key) and not NOT_SECRET_NAME.search(key):
        return "secret variable name"
    if looks_random(value, min_entropy):
        return "high-entropy string"
    return None


def _files(paths: Sequence[str]) -> Iterator[str]:
    for path in paths:
        if not os.path.exists(path):
            raise ScanError(f"paths: {path} does not exist")
        if os.path.isfile(path):
            yield path
            continue
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("roles", "collections"))
            for name in sorted(names):
                yield os.path.join(root, name)


def _is_ini_inventory(path: str, text: str) -> bool:
    return not path.endswith(YAML_SUFFIXES) and (
        "/inventory" in path or os.path.basename(path) in ("hosts", "inventory")
    )


def scan_text(path: str, text: str, min_entropy: float) -> List[Finding]:
    if text.startswith("$ANSIBLE_VAULT"):
        return []
    findings = []
    ini = _is_ini_inventory(path, text)
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith(("#", ";")):
            continue
        pairs: List[Tuple[str, str]] = []
        if ini:
            pairs = [(m.group("key"), m.group("value")) for m in INI_PAIR.finditer(line)]
        else:
            match = YAML_LINE.match(line)
            if match:
                pairs = [(match.group("key"), match.group("value"))]
        for key, raw in pairs:
            value = unquote(raw)
            if value is None:
                continue
            reason = classify(key, value, min_entropy)
            if reason:
                findings.append(Finding(path, number, key, value, reason))
    return findings


def scan(paths: Sequence[str], min_entropy: float = 4.0) -> List[Finding]:
    """Every finding in the YAML and INI files under ``paths``, each with its vault variable name."""
    findings = []
    for path in _files(paths):
        if not (path.endswith(YAML_SUFFIXES) or _is_ini_inventory(path, "")):
            continue
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            continue
        findings += scan_text(path, text, min_entropy)
    assign_vault_vars(findings)
    return findings


def assign_vault_vars(findings: List[Finding]) -> None:
    """``vault_<key>``; the same key with another value elsewhere gets ``vault_<file stem>_<key>``."""
    by_name: Dict[str, str] = {}
    for finding in findings:
        name = f"vault_{finding.key}"  # always a new name: `vault_x: "{{ vault_x }}"` would refer to itself
        if by_name.get(name, finding.value) != finding.value:
            stem = re.sub(r"[^a-z0-9_]", "_", os.path.splitext(os.path.basename(finding.path))[0].lower())
            name = f"vault_{stem}_{finding.key}"
            counter = 2
            while by_name.get(name, finding.value) != finding.value:
                name, counter = f"vault_{stem}_{finding.key}_{counter}", counter + 1
        by_name[name] = finding.value
        finding.vault_var = name


def reference(finding: Finding) -> str:
    return (
        f"'{{{{ {finding.vault_var} }}}}'"
        if _is_ini_inventory(finding.path, "")
        else f'"{{{{ {finding.vault_var} }}}}"'
    )


def rewrite_line(line: str, finding: Finding) -> str:
    if _is_ini_inventory(finding.path, ""):
        for pair in INI_PAIR.finditer(line):
            if pair.group("key") == finding.key and unquote(pair.group("value")) == finding.value:
                return line[: pair.start("value")] + reference(finding) + line[pair.end("value") :]
        raise ScanError(f"{finding.path}:{finding.line}: {finding.key} changed since the scan")
    match = YAML_LINE.match(line)
    if not match or match.group("key") != finding.key or unquote(match.group("value")) != finding.value:
        raise ScanError(f"{finding.path}:{finding.line}: {finding.key} changed since the scan")
    return match.group("lead") + finding.key + match.group("sep") + reference(finding)


def rewrite(findings: Sequence[Finding], check_mode: bool = False) -> List[str]:
    """Replace each finding's value with its vault reference; atomic per file, mode kept. Returns the files."""
    by_path: Dict[str, List[Finding]] = {}
    for finding in findings:
        by_path.setdefault(finding.path, []).append(finding)
    contents: Dict[str, str] = {}
    for path, items in sorted(by_path.items()):  # every file is checked before any is written
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
        for finding in items:
            lines[finding.line - 1] = rewrite_line(lines[finding.line - 1], finding)
        contents[path] = "\n".join(lines)
    if not check_mode:
        for path, text in contents.items():
            _replace(path, text)
    return sorted(contents)


def _replace(path: str, text: str) -> None:
    mode = os.stat(path).st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=os.path.dirname(path))
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
