"""The test-only stand-in k3s the k3s role is exercised with: its config rules and its contract, on loopback."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab.k3s_standin import config as cfg

TESTS = Path(__file__).resolve().parents[1]


def test_config_dropins_merge_like_k3s(tmp_path: Path) -> None:
    main = tmp_path / "config.yaml"
    main.write_text("node-label: [a=1]\nkubelet-arg: [x=1]\nnode-name: one\n", encoding="utf-8")
    (tmp_path / "config.yaml.d").mkdir()
    (tmp_path / "config.yaml.d" / "20-late.yaml").write_text("node-name: three\n", encoding="utf-8")
    (tmp_path / "config.yaml.d" / "10-early.yml").write_text(
        "node-name: two\nnode-label+: [b=2]\nkubelet-arg: [y=2]\n", encoding="utf-8"
    )
    (tmp_path / "config.yaml.d" / "30-ignored.txt").write_text("node-name: nope\n", encoding="utf-8")
    assert cfg.load_config(main) == {"node-label": ["a=1", "b=2"], "kubelet-arg": ["y=2"], "node-name": "three"}


def test_flags_override_the_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    main = tmp_path / "config.yaml"
    main.write_text("node-name: file\nserver: https://file:6443\n", encoding="utf-8")
    monkeypatch.setenv("K3S_URL", "https://env:6443")
    monkeypatch.setenv("K3S_TOKEN", "from-env")
    opts = cfg.settings(["--config", str(main), "--node-name=flag", "--debug", "--node-label", "a=1", "--node-label=b"])
    assert opts["node-name"] == "flag" and opts["server"] == "https://file:6443" and opts["token"] == "from-env"
    assert opts["debug"] is True and opts["node-label"] == ["a=1", "b"]


@pytest.mark.parametrize(
    ("token", "password", "ca_hash"),
    [("plain", "plain", None), ("K10abc::server:pw", "pw", "abc"), ("K10abc::node:pw:x", "pw:x", "abc")],
)
def test_token_formats(token: str, password: str, ca_hash: str | None) -> None:
    assert cfg.token_password(token) == password
    assert cfg.token_ca_hash(token) == ca_hash


@pytest.mark.parametrize(("value", "mode"), [(None, 0o600), ("0644", 0o644), (644, 0o644), ("600", 0o600)])
def test_kubeconfig_mode(value: Any, mode: int) -> None:
    assert cfg.file_mode(value) == mode


# ------------------------------------------------------------------ the contract, on loopback


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def k3s(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab.k3s_standin.k3s", *args],
        cwd=TESTS,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        **kwargs,
    )


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "lab.k3s_standin.k3s", *args],
            cwd=TESTS,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NOTIFY_SOCKET": ""},
        )


def wait_for(predicate: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    token = secrets.token_hex(16)
    port = free_port()
    (tmp_path / "token").write_text(token + "\n", encoding="utf-8")
    conf = tmp_path / "config.yaml"
    conf.write_text(
        yaml.safe_dump(
            {
                "token-file": str(tmp_path / "token"),
                "data-dir": str(tmp_path / "data"),
                "bind-address": "127.0.0.1",
                "https-listen-port": port,
                "write-kubeconfig": str(tmp_path / "k3s.yaml"),
                "write-kubeconfig-mode": "0640",
                "node-name": "srv",
                "cluster-init": True,
                "node-taint": ["dedicated=ctl:NoSchedule"],
            }
        ),
        encoding="utf-8",
    )
    proc = start(["server", "--config", str(conf)], tmp_path / "server.log")
    info = {"token": token, "port": port, "dir": tmp_path, "proc": proc}
    try:
        wait_for(lambda: "k3s is up and running" in (tmp_path / "server.log").read_text(), "the server")
        yield info
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def nodes(info: dict[str, Any]) -> dict[str, Any]:
    result = k3s("kubectl", "--kubeconfig", str(info["dir"] / "k3s.yaml"), "get", "--raw", "/api/v1/nodes")
    assert result.returncode == 0, result.stderr
    return {n["metadata"]["name"]: n for n in json.loads(result.stdout)["items"]}


def test_version_output_matches_k3s() -> None:
    lines = k3s("--version").stdout.splitlines()
    assert lines[0].startswith("k3s version v1.31.4+k3s1 (") and lines[0].endswith(")")
    assert lines[1].startswith("go version go1.")


def test_server_writes_token_kubeconfig_and_registers(server: dict[str, Any]) -> None:
    data = server["dir"] / "data" / "server"
    token_file = data / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip().startswith("K10")
    assert token_file.read_text().strip().endswith(f"::server:{server['token']}")
    assert os.readlink(data / "node-token") == "token"
    kubeconfig = server["dir"] / "k3s.yaml"
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o640
    assert (
        yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        == f"https://127.0.0.1:{server['port']}"
    )
    assert server["token"] not in kubeconfig.read_text()
    node = nodes(server)["srv"]
    assert node["status"]["conditions"][0]["status"] == "True"
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.31.4+k3s1"
    assert node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] == "true"
    assert node["metadata"]["labels"]["node-role.kubernetes.io/etcd"] == "true"
    assert node["spec"]["taints"] == [{"key": "dedicated", "value": "ctl", "effect": "NoSchedule"}]


def test_agent_joins_with_the_token_and_not_without(server: dict[str, Any], tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{server['port']}"
    good = start(
        ["agent", "--config", "/nonexistent", "--server", url, "--token", server["token"], "--node-name", "agent-1"],
        tmp_path / "good.log",
    )
    bad = start(
        ["agent", "--config", "/nonexistent", "--server", url, "--token", "wrong", "--node-name", "intruder"],
        tmp_path / "bad.log",
    )
    try:
        wait_for(lambda: "agent-1" in nodes(server), "the agent's Node")
        wait_for(lambda: "401 Unauthorized" in (tmp_path / "bad.log").read_text(), "the refusal")
        assert bad.poll() is None  # keeps retrying, as K3s does
        assert "intruder" not in nodes(server)
    finally:
        for proc in (good, bad):
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
    assert nodes(server)["agent-1"]["status"]["conditions"][0]["status"] == "Unknown"


def test_a_different_token_for_existing_data_is_fatal(server: dict[str, Any]) -> None:
    result = k3s(
        "server",
        "--data-dir",
        str(server["dir"] / "data"),
        "--token",
        "another",
        "--https-listen-port",
        str(free_port()),
        "--bind-address",
        "127.0.0.1",
        "--config",
        "/nonexistent",
    )
    assert result.returncode == 1
    assert "bootstrap data already found and encrypted with different token" in result.stderr


def test_agent_needs_server_and_token() -> None:
    assert "--server is required" in k3s("agent", "--config", "/nonexistent", "--token", "x").stderr
    assert "--token is required" in k3s("agent", "--config", "/nonexistent", "--server", "https://x:1").stderr


def test_airgap_build_is_deterministic_and_checksummed(tmp_path: Path) -> None:
    from lab.k3s_standin import build  # noqa: PLC0415 - imports the kubeapi model cache

    first, second = build.build(tmp_path / "a"), build.build(tmp_path / "b", version="v1.31.5+k3s1")
    again = build.build(tmp_path / "c")
    sums = first["checksums"].read_text(encoding="utf-8")
    assert sums == again["checksums"].read_text(encoding="utf-8")  # same inputs, same bytes
    assert sums != second["checksums"].read_text(encoding="utf-8")  # another version is another binary
    for line in sums.splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256((tmp_path / "a" / name).read_bytes()).hexdigest() == digest
    assert os.access(first["binary"], os.X_OK)
    version = subprocess.run(
        [sys.executable, str(second["binary"]), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert version.startswith("k3s version v1.31.5+k3s1 (")
