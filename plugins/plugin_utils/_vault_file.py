# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read and write an ansible-vault encrypted YAML vars file on the controller.

Internal to homelab.pi_cluster: names here may change without notice.

Writes are atomic and never put plaintext on disk: the new content is encrypted in memory,
written to a temp file in the same directory (same mode and owner as the file it replaces),
fsynced, renamed over the original, and the directory is fsynced. A directory lock
(``flock``) serialises writers on the same controller.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import Any

import yaml
from ansible.parsing.vault import (
    AnsibleVaultError,
    VaultLib,
    is_encrypted,
    match_encrypt_vault_id_secret,
    match_secrets,
    parse_vaulttext_envelope,
)

NEW_FILE_MODE = 0o600


class VaultFileError(Exception):
    """The vault file can't be read, decrypted, parsed or written."""


def plain(value: Any) -> Any:
    """Exact built-in types (YAML's safe dumper refuses Ansible's tagged str/dict subclasses)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


class VaultFile:
    """One encrypted vars file. ``secrets`` are Ansible's loaded vault secrets [(vault_id, VaultSecret)]."""

    def __init__(self, path: str, secrets: list[tuple[str, Any]] | None, vault_id: str | None = None) -> None:
        if not secrets:
            raise VaultFileError(
                "no vault secret is loaded: run with --vault-id, --vault-password-file or --ask-vault-pass"
            )
        self.path = os.path.abspath(os.path.expanduser(path))
        self.secrets = secrets
        self.vault_id = vault_id
        self.vault = VaultLib(secrets)

    @property
    def exists(self) -> bool:
        return os.path.exists(self.path)

    def read(self) -> dict[str, Any]:
        """The decrypted mapping ({} for a missing or empty file)."""
        if not self.exists:
            return {}
        with open(self.path, "rb") as fh:
            raw = fh.read()
        if not raw.strip():
            return {}
        if not is_encrypted(raw):
            raise VaultFileError(
                f"{self.path} is not vault encrypted: encrypt it first (ansible-vault encrypt), this plugin "
                "never writes plaintext"
            )
        try:
            text = self.vault.decrypt(raw)
        except AnsibleVaultError as exc:
            raise VaultFileError(f"{self.path}: cannot decrypt with the loaded vault secrets ({exc.message})") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise VaultFileError(f"{self.path}: the decrypted content is not plain YAML{where}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise VaultFileError(f"{self.path}: must hold a YAML mapping of variables, got {type(data).__name__}")
        return data

    def _encrypt_secret(self) -> tuple[str, Any]:
        """The (vault_id, secret) to encrypt with: the requested id, else the id the file has now, else the first."""
        wanted = self.vault_id
        if not wanted and self.exists:
            with open(self.path, "rb") as fh:
                raw = fh.read()
            if is_encrypted(raw):
                wanted = parse_vaulttext_envelope(raw)[3]
        if wanted:
            if self.vault_id:
                try:
                    return match_encrypt_vault_id_secret(self.secrets, encrypt_vault_id=wanted)
                except AnsibleVaultError:
                    ids = ", ".join(sorted({vid for vid, _s in self.secrets}))
                    raise VaultFileError(
                        f"vault_id: no loaded vault secret has id {wanted!r} (loaded: {ids})"
                    ) from None
            found = match_secrets(self.secrets, [wanted])
            if found:
                return found[0]
        return self.secrets[0]

    def write(self, data: dict[str, Any]) -> None:
        """Encrypt ``data`` and replace the file atomically (same mode/owner; 0600 for a new file)."""
        text = yaml.safe_dump(plain(data), default_flow_style=False, sort_keys=False, allow_unicode=True)
        vault_id, secret = self._encrypt_secret()
        ciphertext = self.vault.encrypt(text, secret=secret, vault_id=vault_id)
        directory = os.path.dirname(self.path)
        try:
            info = os.stat(self.path)
            mode, owner = stat.S_IMODE(info.st_mode), (info.st_uid, info.st_gid)
        except FileNotFoundError:
            mode, owner = NEW_FILE_MODE, None
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", suffix=".tmp", dir=directory)
        try:
            os.fchmod(fd, mode)
            if owner is not None and os.geteuid() == 0:
                os.fchown(fd, *owner)
            with os.fdopen(fd, "wb") as fh:
                fh.write(ciphertext)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the file's directory (no lock file is left behind)."""
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise VaultFileError(f"{self.path}: directory {directory} does not exist")
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(dir_fd)
