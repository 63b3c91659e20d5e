"""Shared helpers of the credential rotation integration tests: the vault file, a real PostgreSQL.

The vault password is generated per test into a 0600 file; the vault file is read back with
Ansible's own VaultLib. PostgreSQL is the Debian package, started by the test as the
``postgres`` user in a temp dir on 127.0.0.1 with a random port (installed with apt only if missing).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret
from lab.playbook import REPO, PlaybookRun, run_playbook

PLAYBOOK = REPO / "playbooks" / "rotate_credentials.yml"
STATE_KEY = "vault_credentials_state"


@dataclass
class Vault:
    path: Path
    password_file: Path

    @property
    def lib(self) -> VaultLib:
        return VaultLib([("default", VaultSecret(self.password_file.read_bytes().strip()))])

    def write(self, data: dict[str, Any]) -> None:
        self.path.write_bytes(self.lib.encrypt(yaml.safe_dump(data)))
        self.path.chmod(0o600)

    def read(self) -> dict[str, Any]:
        return yaml.safe_load(self.lib.decrypt(self.path.read_bytes())) or {}

    def assert_sealed(self) -> None:
        """Encrypted on disk, mode kept, and no temp file left beside it."""
        assert self.path.read_bytes().startswith(b"$ANSIBLE_VAULT;"), "the vault file is not encrypted"
        assert (self.path.stat().st_mode & 0o777) == 0o600
        leftovers = [p.name for p in self.path.parent.iterdir() if p.name.startswith(f".{self.path.name}.")]
        assert not leftovers, f"temp files left beside the vault file: {leftovers}"

    def state(self, name: str) -> dict[str, Any]:
        return (self.read().get(STATE_KEY) or {}).get(name) or {}


def make_vault(directory: Path) -> Vault:
    directory.mkdir(parents=True, exist_ok=True)
    password_file = directory / "vault-pass"
    password_file.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    return Vault(directory / "vault.yml", password_file)


def rotate(
    vault: Vault,
    registry: list[dict[str, Any]],
    *,
    env: dict[str, str] | None = None,
    check: bool = False,
    inventory: Path | None = None,
    **extra: Any,
) -> PlaybookRun:
    """Run playbooks/rotate_credentials.yml -vvv with the vault password file."""
    extra_vars = {"credentials_vault_file": str(vault.path), "credentials_registry": registry, **extra}
    env = dict(env or {})
    if inventory is None:  # "-i localhost," lists localhost, which then needs its connection named
        env.setdefault("ANSIBLE_TRANSPORT", "local")
    if os.environ.get("CREDS_PROFILE"):  # developer aid: per-task timings into the given directory
        env["ANSIBLE_CALLBACKS_ENABLED"] = "record,ansible.posix.profile_tasks"
    run = run_playbook(
        PLAYBOOK,
        inventory=inventory,
        extra_vars=extra_vars,
        env=env,
        check=check,
        args=["--vault-password-file", str(vault.password_file)],
    )
    if os.environ.get("CREDS_PROFILE"):
        out = Path(os.environ["CREDS_PROFILE"]) / f"run-{secrets.token_hex(3)}.txt"
        out.write_text(run.output, encoding="utf-8")
    return run


# -- PostgreSQL ------------------------------------------------------------------------------


@dataclass
class Postgres:
    host: str
    port: int
    admin_password: str
    psql: str

    def _env(self, password: str) -> dict[str, str]:
        return {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"}

    def sql(self, statement: str) -> None:
        """Run SQL as the superuser (on stdin: the statement may hold a password)."""
        subprocess.run(
            [
                self.psql,
                "-X",
                "-q",
                "-w",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ],
            input=statement,
            text=True,
            check=True,
            capture_output=True,
            env=self._env(self.admin_password),
            timeout=30,
        )

    def can_login(self, role: str, password: str) -> bool:
        proc = subprocess.run(
            [
                self.psql,
                "-X",
                "-q",
                "-w",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                role,
                "-d",
                "postgres",
                "-c",
                "SELECT 1",
            ],
            text=True,
            capture_output=True,
            env=self._env(password),
            timeout=30,
            check=False,
        )
        if proc.returncode != 0 and "password authentication failed" not in proc.stderr:
            raise AssertionError(f"psql failed for another reason: {proc.stderr}")
        return proc.returncode == 0

    def set_role(self, role: str, password: str) -> None:
        self.sql(
            f'DO $$BEGIN CREATE ROLE "{role}" LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$;\n'
            f"ALTER ROLE \"{role}\" PASSWORD '{password}';\n"
        )


def _pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(argv: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: run them as the package's postgres user
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def ensure_postgres_installed() -> Path:
    bindir = _pg_bindir()
    if bindir is None:
        if not shutil.which("apt-get") or os.geteuid() != 0:
            pytest.skip("PostgreSQL is not installed and apt-get (as root) is not available to install it")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "postgresql"], check=True, env=env, capture_output=True, timeout=900
        )
        bindir = _pg_bindir()
    if bindir is None or not shutil.which("psql"):
        pytest.skip("PostgreSQL (initdb, psql) is still missing after apt-get install postgresql")
    return bindir


def start_postgres() -> Iterator[Postgres]:
    bindir = ensure_postgres_installed()
    base = Path(tempfile.mkdtemp(prefix="creds-pg-"))
    admin_password = secrets.token_urlsafe(18)
    pwfile = base / "pw"
    pwfile.write_text(admin_password + "\n", encoding="utf-8")
    pwfile.chmod(0o600)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(pwfile, "postgres")
    data, port = base / "data", _free_port()
    subprocess.run(
        _as_postgres(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256", f"--pwfile={pwfile}"]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    pwfile.unlink()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={base}"
    subprocess.run(
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield Postgres("127.0.0.1", port, admin_password, shutil.which("psql") or "psql")
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False,
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(base, ignore_errors=True)
