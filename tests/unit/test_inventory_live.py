"""Live Node data: summaries, matching to the file's hosts, and the real client path against a stub.

The stub is a tiny loopback HTTP server that only answers ``GET /api/v1/nodes`` (optionally
failing first), so the retry loop, the request count and the absence of discovery requests are
checked with the real kubernetes client. Full API behaviour is covered by the integration tests
against the lab's test API server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.homelab.pi_cluster.plugins.plugin_utils import _cluster_live as live
from ansible_collections.homelab.pi_cluster.plugins.plugin_utils._cluster_live import (
    LiveError,
    enrich,
    fetch_nodes,
    label_groups,
    node_summary,
    nodes_from_list,
)


def api_node(name: str, ready: str | None = "True", **extra: Any) -> dict[str, Any]:
    conditions = [{"type": "MemoryPressure", "status": "False"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready})
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/arch": "arm64", **extra.get("labels", {})}},
        "status": {
            "conditions": conditions,
            "nodeInfo": {"kubeletVersion": "v1.31.4+k3s1", "architecture": extra.get("arch", "arm64")},
            "addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": "10.0.0.5"}],
        },
    }
    return node


@pytest.mark.parametrize(("status", "ready"), [("True", True), ("False", False), ("Unknown", False), (None, False)])
def test_ready_condition(status: str | None, ready: bool) -> None:
    assert node_summary(api_node("n1", status))["ready"] is ready


def test_summary_fields() -> None:
    summary = node_summary(api_node("pi-master", labels={"zone": "r1"}))
    assert summary == {
        "name": "pi-master",
        "ready": True,
        "kubelet_version": "v1.31.4+k3s1",
        "arch": "arm64",
        "labels": {"kubernetes.io/arch": "arm64", "zone": "r1"},
        "internal_ip": "10.0.0.5",
    }


def test_arch_falls_back_to_the_label_and_missing_parts_are_none() -> None:
    summary = node_summary({"metadata": {"name": "bare", "labels": {"kubernetes.io/arch": "arm"}}})
    assert summary["arch"] == "arm"
    assert summary["kubelet_version"] is None
    assert summary["internal_ip"] is None
    assert summary["ready"] is False


def test_nodes_from_list() -> None:
    answer = {"kind": "NodeList", "items": [api_node("a"), api_node("b", "False"), {"metadata": {}}]}
    assert [(n["name"], n["ready"]) for n in nodes_from_list(answer)] == [("a", True), ("b", False)]
    with pytest.raises(LiveError, match="did not return a NodeList"):
        nodes_from_list({"kind": "Status", "code": 403})


def test_enrich_matches_by_name() -> None:
    nodes = [node_summary(api_node(n, r)) for n, r in [("m", "True"), ("w1", "False"), ("stray", "True")]]
    result = enrich(["m", "w1", "w2"], nodes)
    assert result.ready == ["m"]
    assert result.not_ready == ["w1", "w2"]
    assert result.host_vars["w2"] == {"k3s_live_registered": False, "k3s_live_ready": False}
    assert result.host_vars["m"]["k3s_live_registered"] is True
    assert result.host_vars["m"]["k3s_live_version"] == "v1.31.4+k3s1"
    assert [n["name"] for n in result.unmanaged] == ["stray"]


def test_label_groups() -> None:
    labels = {"topology.kubernetes.io/zone": "r1", "node-role.kubernetes.io/master": "", "x": "y"}
    keys = ["topology.kubernetes.io/zone", "node-role.kubernetes.io/master", "absent"]
    assert label_groups(labels, keys, "k3s_label_") == [
        "k3s_label_topology.kubernetes.io/zone_r1",
        "k3s_label_node-role.kubernetes.io/master",
    ]


# --- the real client against a loopback stub ---------------------------------------------


class Stub:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.failures: list[int] = []  # statuses to answer before succeeding
        self.items = [api_node("pi-master")]
        self.headers: list[dict[str, str]] = []


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[tuple[Stub, Path]]:
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(("GET", self.path))
            state.headers.append(dict(self.headers))
            if state.failures:
                self._answer(state.failures.pop(0), {"kind": "Status", "code": 503})
            elif self.path.split("?")[0] == "/api/v1/nodes":
                self._answer(200, {"kind": "NodeList", "apiVersion": "v1", "items": state.items})
            else:
                self._answer(404, {"kind": "Status", "code": 404})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "stub", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
                "users": [{"name": "stub", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}],
                "current-context": "stub",
            }
        ),
        encoding="utf-8",
    )
    yield state, kubeconfig
    server.shutdown()
    server.server_close()


def test_one_request_no_discovery(stub: tuple[Stub, Path]) -> None:
    state, kubeconfig = stub
    nodes = fetch_nodes({"kubeconfig": str(kubeconfig)}, timeout=5, retries=0)
    assert [n["name"] for n in nodes] == ["pi-master"]
    assert [request[1].split("?")[0] for request in state.requests] == ["/api/v1/nodes"]
    assert {k.lower(): v for k, v in state.headers[0].items()}["authorization"] == "Bearer not-a-real-token"


def test_env_fallback_for_the_kubeconfig(stub: tuple[Stub, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    state, kubeconfig = stub
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", str(kubeconfig))
    assert [n["name"] for n in fetch_nodes({"kubeconfig": None}, timeout=5, retries=0)] == ["pi-master"]
    assert len(state.requests) == 1


def test_transient_errors_are_retried(stub: tuple[Stub, Path]) -> None:
    state, kubeconfig = stub
    state.failures = [503, 429]
    nodes = fetch_nodes({"kubeconfig": str(kubeconfig)}, timeout=5, retries=2)
    assert [n["name"] for n in nodes] == ["pi-master"]
    assert len(state.requests) == 3


def test_retries_are_bounded(stub: tuple[Stub, Path]) -> None:
    state, kubeconfig = stub
    state.failures = [503] * 5
    with pytest.raises(LiveError, match="HTTP 503"):
        fetch_nodes({"kubeconfig": str(kubeconfig)}, timeout=5, retries=1)
    assert len(state.requests) == 2


def test_client_errors_are_not_retried(stub: tuple[Stub, Path]) -> None:
    state, kubeconfig = stub
    state.failures = [403]
    with pytest.raises(LiveError, match="HTTP 403"):
        fetch_nodes({"kubeconfig": str(kubeconfig)}, timeout=5, retries=2)
    assert len(state.requests) == 1


def test_unreachable_api(tmp_path: Path, stub: tuple[Stub, Path]) -> None:
    kubeconfig = stub[1]
    closed = json.loads(kubeconfig.read_text())
    closed["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9"  # discard port: nothing listens
    path = tmp_path / "closed"
    path.write_text(json.dumps(closed), encoding="utf-8")
    with pytest.raises(LiveError, match=r"GET http://127.0.0.1:9/api/v1/nodes failed"):
        fetch_nodes({"kubeconfig": str(path)}, timeout=2, retries=0)


def test_unusable_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(LiveError, match="could not load the Kubernetes configuration"):
        fetch_nodes({"kubeconfig": str(tmp_path / "missing")}, timeout=2, retries=0)


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        ("KUBERNETES_IMPORT_ERROR", "needs the kubernetes Python library"),
        ("K8S_CORE_IMPORT_ERROR", "needs the kubernetes.core collection"),
    ],
)
def test_missing_dependencies_are_a_live_error(monkeypatch: pytest.MonkeyPatch, attribute: str, message: str) -> None:
    monkeypatch.setattr(live, attribute, "Traceback...\nImportError: No module named 'x'\n")
    with pytest.raises(LiveError, match=message):
        fetch_nodes({"kubeconfig": "/nonexistent"})
