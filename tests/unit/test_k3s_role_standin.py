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
    info: dict[str, Any] = {"token": token, "port": port, "dir": tmp_path, "proc": proc, "config": conf}
    try:
        wait_for(lambda: "k3s is up and running" in (tmp_path / "server.log").read_text(), "the server")
        yield info
    finally:
        info["proc"].send_signal(signal.SIGTERM)  # a test may have restarted it
        info["proc"].wait(timeout=20)


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


# ------------------------------------------------------------------ k3s token rotate (K3s's contract)


def restart_server(info: dict[str, Any], log_name: str) -> subprocess.Popen[bytes]:
    info["proc"].send_signal(signal.SIGTERM)
    assert info["proc"].wait(timeout=20) == 0
    proc = start(["server", "--config", str(info["config"])], info["dir"] / log_name)
    info["proc"] = proc
    return proc


def join_attempt(info: dict[str, Any], token: str, name: str) -> str:
    """An agent joining with ``token`` for a few seconds: its log (registered, or refused with 401)."""
    url = f"https://127.0.0.1:{info['port']}"
    log = info["dir"] / f"{name}.log"
    proc = start(["agent", "--config", "/nonexistent", "--server", url, "--token", token, "--node-name", name], log)
    try:
        wait_for(lambda: "401 Unauthorized" in log.read_text() or name in nodes(info), f"{name} to join or be refused")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    return log.read_text()


def test_token_rotate_then_restart_like_k3s(server: dict[str, Any]) -> None:
    url = f"https://127.0.0.1:{server['port']}"
    data = server["dir"] / "data"
    kubeconfig = (server["dir"] / "k3s.yaml").read_text()
    new = secrets.token_hex(32)

    refused = k3s("token", "rotate", "--token", "wrong", "--new-token", new, "--server", url)
    assert refused.returncode == 1
    assert "Recommended to keep a record of the old token" in refused.stdout
    assert f"{url}/v1-k3s/token: 401 Unauthorized" in refused.stderr
    assert (data / "server" / "token").read_text().strip().endswith(f"::server:{server['token']}")

    # the old token and the URL from the environment (K3S_TOKEN, K3S_URL); the new one from --new-token
    # (K3s reads no environment variable for it)
    env = {**os.environ, "K3S_TOKEN": server["token"], "K3S_URL": url}
    rotated = k3s("token", "rotate", "--new-token", new, "--data-dir", str(data), env=env)
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.splitlines()[-1] == "Token rotated, restart k3s nodes with new token"
    token_file = data / "server" / "token"
    assert token_file.read_text().strip().endswith(f"::server:{new}")
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    again = k3s("token", "rotate", "-t", server["token"], "--new-token", "x" * 32, "-s", url)
    assert "401 Unauthorized" in again.stderr, "only the new token may rotate again"

    # until the servers restart, joins still use the old token
    assert "Successfully registered node early" in join_attempt(server, server["token"], "early")
    assert "401 Unauthorized" in join_attempt(server, new, "too-soon")

    # restarting with the old token is refused; with the new one it starts, and the old token is refused
    config = server["config"]
    fatal = k3s("server", "--config", str(config), "--https-listen-port", str(free_port()))
    assert fatal.returncode == 1
    assert "bootstrap data already found and encrypted with different token" in fatal.stderr
    (server["dir"] / "token").write_text(new, encoding="utf-8")
    restart_server(server, "server-2.log")
    wait_for(lambda: "k3s is up and running" in (server["dir"] / "server-2.log").read_text(), "the restart")
    assert "401 Unauthorized" in join_attempt(server, server["token"], "late-old")
    assert "late-old" not in nodes(server)
    assert "Successfully registered node late-new" in join_attempt(server, new, "late-new")

    # the admin kubeconfig does not depend on the join token: unchanged, and it still works
    assert (server["dir"] / "k3s.yaml").read_text() == kubeconfig
    assert new not in kubeconfig and server["token"] not in kubeconfig
    assert stat.S_IMODE((data / "server" / "cred" / "admin-token").stat().st_mode) == 0o600


def test_token_rotate_reads_the_server_token_file_and_checks_its_ca_hash(server: dict[str, Any]) -> None:
    data = server["dir"] / "data"
    url = f"https://127.0.0.1:{server['port']}"
    new = secrets.token_hex(16)
    rotated = k3s("token", "rotate", "--data-dir", str(data), "--new-token", new, "--server", url)
    assert rotated.returncode == 0, rotated.stderr
    assert (data / "server" / "token").read_text().strip().endswith(f"::server:{new}")
    full = (data / "server" / "token").read_text().strip()
    forged = "K10" + "0" * 64 + "::" + full.split("::", 1)[1]
    mismatch = k3s("token", "rotate", "--token", forged, "--new-token", "y" * 32, "--server", url)
    assert mismatch.returncode == 1 and "CA hash does not match" in mismatch.stderr
    # without a new token K3s generates one and writes it to the token file
    generated = k3s("token", "rotate", "--token", new, "--server", url, "--data-dir", str(data))
    assert generated.returncode == 0, generated.stderr
    assert not (data / "server" / "token").read_text().strip().endswith(f"::server:{new}")
    assert "no such file" in k3s("token", "rotate", "--data-dir", str(server["dir"] / "none")).stderr


def test_a_joining_server_gets_the_admin_credential_not_one_from_the_token(
    server: dict[str, Any], tmp_path: Path
) -> None:
    port = free_port()
    joined = tmp_path / "joined"
    args = ["server", "--config", "/nonexistent", "--server", f"https://127.0.0.1:{server['port']}"]
    args += ["--token", server["token"], "--https-listen-port", str(port), "--bind-address", "127.0.0.1"]
    args += ["--data-dir", str(joined / "data"), "--write-kubeconfig", str(joined / "k3s.yaml"), "--node-name", "srv2"]
    proc = start(args, tmp_path / "joined.log")
    try:
        wait_for(lambda: "Joined the cluster" in (tmp_path / "joined.log").read_text(), "the join")
        admin = (server["dir"] / "data" / "server" / "cred" / "admin-token").read_text().strip()
        user = yaml.safe_load((joined / "k3s.yaml").read_text())["users"][0]["user"]
        assert user == {"token": admin}
        assert "srv2" in nodes({"dir": joined})  # through its own port, forwarded to the first server
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    wrong = start([*args[:5], "--token", "wrong", *args[7:]], tmp_path / "wrong.log")
    try:
        wait_for(lambda: "401 Unauthorized" in (tmp_path / "wrong.log").read_text(), "the refusal")
    finally:
        wrong.send_signal(signal.SIGTERM)
        wrong.wait(timeout=20)
