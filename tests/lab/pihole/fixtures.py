"""pytest fixtures for the test Pi-hole servers (registered from the root conftest.py).

``pihole_factory(name)`` starts a v6 API server on its own loopback address (127.0.0.x,
random port) with a random password. At teardown every server must have 0 open sessions
and no spec violations, whatever the test did, including tests that failed.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .dnsmasq import Dnsmasq
from .server import PiholeServer

PiholeFactory = Callable[..., PiholeServer]


@pytest.fixture
def pihole_factory() -> Iterator[PiholeFactory]:
    servers: list[PiholeServer] = []

    def make(name: str = "primary", **kwargs: Any) -> PiholeServer:
        kwargs.setdefault("password", secrets.token_urlsafe(18))
        kwargs.setdefault("host", f"127.0.0.{20 + len(servers)}")
        server = PiholeServer(name=name, **kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
    problems = [f"{s.name}: {s.open_sessions} API session(s) left open" for s in servers if s.open_sessions]
    problems += [f"{s.name}: {v}" for s in servers for v in s.violations]
    assert not problems, "Pi-hole test server check failed:\n" + "\n".join(problems)


@pytest.fixture
def pihole(pihole_factory: PiholeFactory) -> PiholeServer:
    return pihole_factory("primary")


@pytest.fixture
def pihole_pair(pihole_factory: PiholeFactory) -> tuple[PiholeServer, PiholeServer]:
    return pihole_factory("primary"), pihole_factory("secondary")


@pytest.fixture
def pihole_tls(pihole_factory: PiholeFactory, tmp_path: Path) -> tuple[PiholeServer, Path]:
    """An HTTPS test Pi-hole with a fresh self-signed certificate; returns (server, certificate file)."""
    host = "127.0.0.60"
    cert, key = tmp_path / "pihole-cert.pem", tmp_path / "pihole-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=pihole-test",
            "-addext",
            f"subjectAltName=IP:{host}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return pihole_factory("tls", host=host, tls=(str(cert), str(key))), cert


@pytest.fixture
def dnsmasq_v5(tmp_path: Path) -> Iterator[Dnsmasq]:
    """A real dnsmasq on 127.0.0.53 serving v5-style custom.list and cname files from tmp_path."""
    if not shutil.which("dnsmasq") and not Path("/usr/sbin/dnsmasq").exists():
        pytest.skip("dnsmasq is not installed (apt-get install dnsmasq-base)")
    if not shutil.which("dig"):
        pytest.skip("dig is not installed (apt-get install dnsutils)")
    workdir = tmp_path / "pihole-v5"
    workdir.mkdir()
    server = Dnsmasq(workdir).start()
    yield server
    server.stop()
