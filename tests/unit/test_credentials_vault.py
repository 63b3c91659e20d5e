"""The encrypted vars file behind vault_keys: round trip, atomic replace, mode/vault id kept, refusals."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from ansible_collections.homelab.pi_cluster.plugins.plugin_utils._vault_file import VaultFile, VaultFileError


def secret() -> tuple[str, VaultSecret]:
    return ("default", VaultSecret(secrets.token_hex(16).encode()))


def test_round_trip_creates_a_0600_encrypted_file(tmp_path: Path) -> None:
    vault = VaultFile(str(tmp_path / "vault.yml"), [secret()])
    assert vault.read() == {}
    vault.write({"vault_a": "x", "nested": {"k": [1, 2]}})
    raw = (tmp_path / "vault.yml").read_bytes()
    assert raw.startswith(b"$ANSIBLE_VAULT;1.1;AES256") and b"vault_a" not in raw
    assert ((tmp_path / "vault.yml").stat().st_mode & 0o777) == 0o600
    assert vault.read() == {"vault_a": "x", "nested": {"k": [1, 2]}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vault.yml"]


def test_mode_and_vault_id_of_an_existing_file_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "vault.yml"
    prod = ("prod", VaultSecret(b"prod-password-for-the-test"))
    other = ("dev", VaultSecret(b"dev-password-for-the-test"))
    path.write_bytes(VaultLib([prod]).encrypt(yaml.safe_dump({"a": 1}), secret=prod[1], vault_id="prod"))
    path.chmod(0o640)
    vault = VaultFile(str(path), [other, prod])  # the file's id wins over the first loaded secret
    vault.write({**vault.read(), "b": 2})
    assert path.read_bytes().startswith(b"$ANSIBLE_VAULT;1.2;AES256;prod")
    assert (path.stat().st_mode & 0o777) == 0o640
    assert VaultFile(str(path), [prod]).read() == {"a": 1, "b": 2}
    with pytest.raises(VaultFileError, match="vault_id: no loaded vault secret has id 'qa' \\(loaded: dev, prod\\)"):
        VaultFile(str(path), [other, prod], vault_id="qa").write({})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"vault_a: plain\n", "is not vault encrypted"),
        (None, "cannot decrypt with the loaded vault secrets"),
    ],
)
def test_refusals(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "vault.yml"
    if content is None:  # encrypted with another password
        other = VaultSecret(b"another-password")
        content = VaultLib([("default", other)]).encrypt("a: 1\n", secret=other)
    path.write_bytes(content)
    with pytest.raises(VaultFileError, match=message):
        VaultFile(str(path), [secret()]).read()


def test_no_secret_loaded() -> None:
    with pytest.raises(VaultFileError, match="no vault secret is loaded: run with --vault-id"):
        VaultFile("vault.yml", [])


def test_a_failed_write_leaves_the_original_and_no_temp_file(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "vault.yml"
    vault = VaultFile(str(path), [secret()])
    vault.write({"a": "before"})
    original = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        vault.write({"a": "after"})
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vault.yml"]


def test_tagged_values_are_written_as_plain_yaml(tmp_path: Path) -> None:
    class Tagged(str):  # Ansible passes str subclasses (data tagging); YAML's safe dumper refuses them
        pass

    vault = VaultFile(str(tmp_path / "v.yml"), [secret()])
    vault.write({"a": Tagged("x"), "b": [Tagged("y")], "c": True, "d": 3})
    assert vault.read() == {"a": "x", "b": ["y"], "c": True, "d": 3}


def test_the_lock_needs_an_existing_directory(tmp_path: Path) -> None:
    vault = VaultFile(str(tmp_path / "missing" / "v.yml"), [secret()])
    with pytest.raises(VaultFileError, match="does not exist"), vault.locked():
        pass
