"""The stand-in ``k3s`` command (see the package docstring for the contract it keeps)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import platform
import secrets
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .config import (
    DEFAULT_DATA_DIR,
    ConfigError,
    as_list,
    file_mode,
    read_token,
    settings,
    token_ca_hash,
    token_password,
)

DEFAULT_VERSION = "v1.31.4+k3s1"
DEFAULT_KUBECONFIG = Path("/etc/rancher/k3s/k3s.yaml")
GO_VERSION = "go1.22.9"
RETRY_SECONDS = 2.0
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - K3s binds all interfaces by default


class Fatal(Exception):
    """Ends the process like K3s's ``level=fatal``."""


def build_info() -> dict[str, str]:
    """Version baked in by the builder (read through importlib: works inside the zip application too)."""
    info = {"version": os.environ.get("K3S_STANDIN_VERSION", DEFAULT_VERSION), "commit": "00000000"}
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        info.update(json.loads(resources.files(__package__).joinpath("_build.json").read_text(encoding="utf-8")))
    return info


def log(level: str, msg: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f'time="{stamp}" level={level} msg={json.dumps(msg)}', file=sys.stderr, flush=True)


def sd_notify(message: str) -> None:
    """Tell systemd (Type=notify) we are ready: one datagram to $NOTIFY_SOCKET."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())


def api_token(password: str) -> str:
    """The API bearer credential a token holder gets (K3s hands out certificates for it instead)."""
    return "k3s-" + hashlib.sha256(b"k3s-standin-api:" + password.encode()).hexdigest()


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- API client


class Api:
    """Just enough of a Kubernetes client: JSON requests with a bearer token."""

    def __init__(self, url: str, token: str, ca_pem: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        if ca_pem:
            self.context = ssl.create_default_context(cadata=ca_pem)
        else:  # agents do not check the server certificate (K3s checks it against the token's CA hash)
            self.context = ssl.create_default_context()
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 - https URLs only
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=10) as resp:  # noqa: S310 - https only
                raw = resp.read()
                return resp.status, json.loads(raw) if raw.strip().startswith(b"{") else raw.decode()
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, json.loads(raw)
            except ValueError:
                return err.code, raw.decode(errors="replace")


# ----------------------------------------------------------------------------- the Node object


def node_ips(opts: dict[str, Any]) -> list[str]:
    if opts.get("node-ip"):
        return [ip for value in as_list(opts["node-ip"]) for ip in str(value).split(",") if ip]
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True, check=False
    ).stdout
    return [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3] or ["127.0.0.1"]


def _key_value(items: Any) -> dict[str, str]:
    result = {}
    for item in as_list(items):
        for part in str(item).split(","):
            key, _, value = part.partition("=")
            if key:
                result[key.strip()] = value.strip()
    return result


def _taints(items: Any) -> list[dict[str, str]]:
    taints = []
    for key, rest in _key_value(items).items():  # key=value:Effect
        value, _, effect = rest.rpartition(":")
        taint = {"key": key, "effect": effect}
        if value:
            taint["value"] = value
        taints.append(taint)
    return taints


def _ready(status: str, reason: str, message: str) -> dict[str, str]:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": stamp,
        "lastTransitionTime": stamp,
    }


def node_object(name: str, opts: dict[str, Any], version: str, role: str) -> dict[str, Any]:
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(platform.machine(), platform.machine())
    labels = {
        "kubernetes.io/arch": arch,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "k3s",
    }
    if role == "server":
        labels.update({"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/master": "true"})
        if opts.get("cluster-init") or opts.get("server"):
            labels["node-role.kubernetes.io/etcd"] = "true"
    labels.update(_key_value(opts.get("node-label")))
    ips = node_ips(opts)
    machine_id = Path("/etc/machine-id").read_text(encoding="utf-8").strip() if Path("/etc/machine-id").exists() else ""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {"k3s.io/internal-ip": ",".join(ips), "k3s.io/hostname": socket.gethostname()},
        },
        "spec": {"taints": _taints(opts.get("node-taint"))} if opts.get("node-taint") else {},
        "status": {
            "conditions": [_ready("True", "KubeletReady", "kubelet is posting ready status")],
            "addresses": [{"type": "InternalIP", "address": ips[0]}, {"type": "Hostname", "address": name}],
            "nodeInfo": {
                "kubeletVersion": version,
                "kubeProxyVersion": version,
                "architecture": arch,
                "operatingSystem": "linux",
                "osImage": _os_image(),
                "kernelVersion": platform.release(),
                "containerRuntimeVersion": "containerd://1.7.23-k3s2",
                "machineID": machine_id,
                "systemUUID": machine_id,
                "bootID": _boot_id(),
            },
            "capacity": {"cpu": str(os.cpu_count() or 1), "memory": "8048784Ki", "pods": "110"},
            "allocatable": {"cpu": str(os.cpu_count() or 1), "memory": "8048784Ki", "pods": "110"},
        },
    }


def _os_image() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    return "Linux"


def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="utf-8").strip()
    return ""


def register(api: Api, node: dict[str, Any]) -> None:
    """Create the Node, or (after a restart) refresh its status and the labels K3s owns, as the kubelet does."""
    name = node["metadata"]["name"]
    code, body = api.request("GET", f"/api/v1/nodes/{name}")
    if code == 404:
        code, body = api.request("POST", "/api/v1/nodes", node)
        if code == 201:
            log("info", f"Successfully registered node {name}")
            return
    elif code == 200:
        code, body = api.request(
            "PATCH",
            f"/api/v1/nodes/{name}",
            {"metadata": {"labels": node["metadata"]["labels"]}},
            "application/merge-patch+json",
        )
        if code == 200:
            code, body = api.request(
                "PATCH", f"/api/v1/nodes/{name}/status", {"status": node["status"]}, "application/merge-patch+json"
            )
            if code == 200:
                log("info", f"Node {name} is Ready again")
                return
    raise urllib.error.HTTPError(api.url, code, _reason(body), None, None)  # type: ignore[arg-type]


def _reason(body: Any) -> str:
    return body.get("message", "") if isinstance(body, dict) else str(body)


def mark_not_ready(api: Api, name: str) -> None:
    with contextlib.suppress(OSError, urllib.error.URLError):
        api.request(
            "PATCH",
            f"/api/v1/nodes/{name}/status",
            {
                "status": {
                    "conditions": [_ready("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")]
                }
            },
            "application/merge-patch+json",
        )


def register_until_done(api: Api, node: dict[str, Any], stop: threading.Event, local: bool = False) -> bool:
    """Retry like a K3s agent: a refused token or an unreachable server is logged, never fatal.

    ``local``: a server registering on its own API server; an HTTP error there is a bug, so it is fatal
    (systemd then sees the start fail instead of waiting forever for READY=1)."""
    while not stop.is_set():
        try:
            register(api, node)
            return True
        except urllib.error.HTTPError as err:
            if local:
                raise Fatal(f"failed to register node on the local API server: {err.code} {err.reason}") from err
            if err.code == 401:
                log(
                    "error", f"Failed to validate connection to cluster at {api.url}: 401 Unauthorized (token rejected)"
                )
            else:
                log("info", f"Waiting to register node: {err.code} {err.reason}")
        except (OSError, urllib.error.URLError) as err:
            log("info", f"Waiting to retrieve agent configuration; server is not ready: {err}")
        stop.wait(RETRY_SECONDS)
    return False


# ----------------------------------------------------------------------------- server and agent


def wait_for_signal() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def write_kubeconfig(opts: dict[str, Any], port: int, ca_pem: str, token: str) -> None:
    path = Path(str(opts.get("write-kubeconfig") or DEFAULT_KUBECONFIG))
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "default",
                "cluster": {
                    "certificate-authority-data": base64.b64encode(ca_pem.encode()).decode(),
                    "server": f"https://127.0.0.1:{port}",
                },
            }
        ],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
        "current-context": "default",
        "preferences": {},
        "users": [{"name": "default", "user": {"token": token}}],
    }
    write_private(path, yaml.safe_dump(config, sort_keys=False), file_mode(opts.get("write-kubeconfig-mode")))
    group = opts.get("write-kubeconfig-group")
    if group:
        import grp  # noqa: PLC0415 - only needed with this flag

        os.chown(path, -1, grp.getgrnam(str(group)).gr_gid)
    log("info", f"Wrote kubeconfig {path}")


def write_server_token(data_dir: Path, ca_pem: str, password: str) -> None:
    """<data-dir>/server/token as K3s writes it (full token format), node-token linking to it."""
    server_dir = data_dir / "server"
    ca_hash = hashlib.sha256(ca_pem.encode()).hexdigest()
    write_private(server_dir / "token", f"K10{ca_hash}::server:{password}\n")
    link = server_dir / "node-token"
    if not link.is_symlink():
        link.unlink(missing_ok=True)
        link.symlink_to("token")


def stored_password(data_dir: Path) -> str | None:
    path = data_dir / "server" / "token"
    if path.exists():
        return token_password(path.read_text(encoding="utf-8").strip())
    return None


def crd_files() -> list[Path]:
    bundled = Path(__file__).resolve().parent / "crds"
    if bundled.is_dir():
        return sorted(bundled.glob("*.yaml"))
    from lab.kubeapi.resources import default_crd_files  # noqa: PLC0415 - running from the source tree

    return default_crd_files()


def run_server(opts: dict[str, Any], version: str) -> int:
    from lab.kubeapi import KubeAPIServer  # noqa: PLC0415 - heavy (TLS), agents never need it

    data_dir = Path(str(opts.get("data-dir") or DEFAULT_DATA_DIR))
    token = read_token(opts)
    name = str(opts.get("node-name") or socket.gethostname())
    port = int(opts.get("https-listen-port") or 6443)
    if opts.get("server"):
        return join_server(opts, version, data_dir=data_dir, token=token, name=name, port=port)
    stored = stored_password(data_dir)
    password = token_password(token) if token else (stored or secrets.token_hex(16))
    if stored and stored != password:
        raise Fatal(
            "starting kubernetes: preparing server: bootstrap data already found and encrypted with different token"
        )
    (data_dir / "server").mkdir(parents=True, exist_ok=True, mode=0o700)
    sans = [
        "127.0.0.1",
        "localhost",
        socket.gethostname(),
        name,
        "kubernetes",
        "kubernetes.default",
        *node_ips(opts),
        *[s for v in as_list(opts.get("tls-san")) for s in str(v).split(",") if s],
    ]
    api_server = KubeAPIServer(
        host=str(opts.get("bind-address") or ALL_INTERFACES),
        port=port,
        tls=True,
        crd_files=crd_files(),
        token=api_token(password),
        tls_sans=sans,
        cert_dir=data_dir / "server" / "tls",
        version=version,
        state_file=data_dir / "server" / "db" / "standin-state.json",
    )
    (data_dir / "server" / "db").mkdir(parents=True, exist_ok=True, mode=0o700)
    stop = wait_for_signal()
    api_server.start()
    from .controllers import start_controllers  # noqa: PLC0415 - servers only, next to the API server

    controllers = start_controllers(api_server, data_dir / "server" / "db" / "velero-bucket")
    log("info", f"Running kube-apiserver (lab stand-in) on port {port}")
    assert api_server.ca_path is not None
    ca_pem = api_server.ca_path.read_text(encoding="utf-8")
    write_server_token(data_dir, ca_pem, password)
    write_kubeconfig(opts, port, ca_pem, api_token(password))
    api = Api(f"https://127.0.0.1:{port}", api_token(password), ca_pem)
    publish_ca(api, ca_pem)
    if opts.get("secrets-encryption"):
        log("info", "Secrets encryption enabled (stand-in: noted, the lab API keeps secrets in its state file)")
    if not register_until_done(api, node_object(name, opts, version, "server"), stop, local=True):
        api_server.stop()
        return 0
    sd_notify("READY=1")
    log("info", "k3s is up and running")
    stop.wait()
    mark_not_ready(api, name)
    controllers.stop()
    api_server.stop()
    return 0


def publish_ca(api: Api, ca_pem: str) -> None:
    """The kube-root-ca.crt ConfigMap (Kubernetes publishes it); joining servers read the CA from it."""
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kube-root-ca.crt", "namespace": "kube-system"},
        "data": {"ca.crt": ca_pem},
    }
    code, _ = api.request("POST", "/api/v1/namespaces/kube-system/configmaps", body)
    if code == 409:
        api.request("PUT", "/api/v1/namespaces/kube-system/configmaps/kube-root-ca.crt", body)


def join_server(
    opts: dict[str, Any],
    version: str,
    *,
    data_dir: Path,
    token: str | None,
    name: str,
    port: int,
) -> int:
    """A server joining an existing one: one shared datastore, so this server forwards its API port there."""
    if not token:
        raise Fatal("starting kubernetes: preparing server: token is required to join a cluster")
    password = token_password(token)
    stop = wait_for_signal()
    upstream = str(opts["server"]).rstrip("/")
    api = Api(upstream, api_token(password))
    ca_pem = ""
    while not stop.is_set() and not ca_pem:
        try:
            code, body = api.request("GET", "/api/v1/namespaces/kube-system/configmaps/kube-root-ca.crt")
            if code == 200:
                ca_pem = body["data"]["ca.crt"]
            else:
                log("error", f"Failed to validate connection to cluster at {upstream}: {code} {_reason(body)}")
        except (OSError, urllib.error.URLError) as err:
            log("info", f"Waiting for the server at {upstream}: {err}")
        if not ca_pem:
            stop.wait(RETRY_SECONDS)
    if stop.is_set():
        return 0
    expected = token_ca_hash(token)
    if expected and expected != hashlib.sha256(ca_pem.encode()).hexdigest():
        raise Fatal("token CA hash does not match the Cluster CA certificate hash")
    write_server_token(data_dir, ca_pem, password)
    write_kubeconfig(opts, port, ca_pem, api_token(password))
    host, _, upstream_port = upstream.split("://", 1)[1].partition(":")
    forwarder = Forwarder((str(opts.get("bind-address") or ALL_INTERFACES), port), (host, int(upstream_port or 6443)))
    threading.Thread(target=forwarder.serve_forever, daemon=True).start()
    if not register_until_done(api, node_object(name, opts, version, "server"), stop):
        return 0
    log("info", f"Joined the cluster at {upstream} (datastore shared)")
    sd_notify("READY=1")
    stop.wait()
    mark_not_ready(api, name)
    forwarder.shutdown()
    return 0


class Forwarder(socketserver.ThreadingTCPServer):
    """Plain TCP forwarding of this server's API port to the server holding the datastore."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        super().__init__(listen, _ForwardHandler)


class _ForwardHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        assert isinstance(self.server, Forwarder)
        with socket.create_connection(self.server.target, timeout=10) as upstream:
            upstream.settimeout(None)
            pump = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
            pump.start()
            _pump(self.request, upstream)
            pump.join(timeout=5)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def run_agent(opts: dict[str, Any], version: str) -> int:
    server = opts.get("server")
    if not server:
        raise Fatal("--server is required")
    token = read_token(opts)
    if not token:
        raise Fatal("--token is required")
    name = str(opts.get("node-name") or socket.gethostname())
    api = Api(str(server), api_token(token_password(token)))
    stop = wait_for_signal()
    if register_until_done(api, node_object(name, opts, version, "agent"), stop):
        sd_notify("READY=1")
        stop.wait()
        mark_not_ready(api, name)
    return 0


def kubectl(argv: list[str]) -> int:
    """``k3s kubectl [--kubeconfig P] get --raw PATH``: the one kubectl call the roles make."""
    kubeconfig = Path(os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG)
    if "--kubeconfig" in argv:
        kubeconfig = Path(argv[argv.index("--kubeconfig") + 1])
    if "get" not in argv or "--raw" not in argv:
        print("error: the lab stand-in only supports: k3s kubectl get --raw PATH", file=sys.stderr)
        return 1
    path = argv[argv.index("--raw") + 1]
    config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    cluster = config["clusters"][0]["cluster"]
    ca_pem = base64.b64decode(cluster["certificate-authority-data"]).decode()
    try:
        code, body = Api(cluster["server"], config["users"][0]["user"]["token"], ca_pem).request("GET", path)
    except (OSError, urllib.error.URLError) as err:
        print(
            f"The connection to the server {cluster['server']} was refused - did you specify the right host "
            f"or port? ({err})",
            file=sys.stderr,
        )
        return 1
    if code >= 300:
        print(f"Error from server ({_reason(body) or code})", file=sys.stderr)
        return 1
    print(body if isinstance(body, str) else json.dumps(body))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    info = build_info()
    if not args or args[0] in ("--version", "-v", "version"):
        print(f"k3s version {info['version']} ({info['commit']})\ngo version {GO_VERSION}")
        return 0
    command, rest = args[0], args[1:]
    try:
        if command == "kubectl":
            return kubectl(rest)
        if command in ("server", "agent"):
            opts = settings(rest)
            return run_server(opts, info["version"]) if command == "server" else run_agent(opts, info["version"])
        print(f"k3s (lab stand-in): unsupported command {command!r}", file=sys.stderr)
        return 1
    except (Fatal, ConfigError) as exc:
        log("fatal", str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
