"""Pytest fixture ``kube_api``: a fresh test API server per test, or the real cluster in K8S_AUTH_KUBECONFIG.

Registered from the root conftest (``pytest_plugins``). Real-cluster mode is decided by the environment
pytest starts with, so a test's own ``monkeypatch.setenv`` cannot switch it by accident.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .server import KubeAPIServer

REAL_KUBECONFIG = os.environ.get("K8S_AUTH_KUBECONFIG")


@dataclass
class KubeAPI:
    kubeconfig: Path
    env: dict[str, str]
    server: KubeAPIServer | None
    real: bool
    extra: dict[str, str] = field(default_factory=dict)

    def require_server(self) -> KubeAPIServer:
        """The test API server; skips the test when running against a real cluster."""
        if self.server is None:
            pytest.skip(
                "needs the test API server (state backdoor or fault injection); K8S_AUTH_KUBECONFIG points "
                "at a real cluster"
            )
        return self.server


@pytest.fixture
def kube_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAPI]:
    # modules run on localhost with this interpreter: it has the kubernetes library
    interpreter = {"ANSIBLE_PYTHON_INTERPRETER": sys.executable}
    if REAL_KUBECONFIG:
        yield KubeAPI(Path(REAL_KUBECONFIG), {"K8S_AUTH_KUBECONFIG": REAL_KUBECONFIG, **interpreter}, None, True)
        return
    directory = tmp_path_factory.mktemp("kubeapi")
    tmp = directory / "tmp"
    tmp.mkdir()
    with KubeAPIServer() as server:
        kubeconfig = server.write_kubeconfig(directory / "kubeconfig")
        # TMPDIR: the kubernetes client caches discovery in the temp dir keyed by URL; ports get reused.
        env = {"K8S_AUTH_KUBECONFIG": str(kubeconfig), "K8S_AUTH_CONTEXT": "lab", "TMPDIR": str(tmp), **interpreter}
        yield KubeAPI(kubeconfig, env, server, False)
