"""The stand-in ``k3s`` command (see the package docstring for the contract it keeps)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
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
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .config import (
    DEFAULT_DATA_DIR,
    ConfigError,
    as_list,
    file_mode,
    parse_flags,
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
    """The API bearer credential of a join-token holder, for its node's registration (K3s hands out a
    kubelet client certificate instead). It changes with the token: after ``token rotate`` and a server
    restart the old one gets 401."""
    return "k3s-" + hashlib.sha256(b"k3s-standin-api:" + password.encode()).hexdigest()


def admin_token(data_dir: Path) -> str:
    """The admin kubeconfig's credential: random, kept in ``<data-dir>/server/cred/admin-token`` (0600).

    Independent of the join token, as K3s's admin client certificate is: rotating the token does not
    change the kubeconfig."""
    path = data_dir / "server" / "cred" / "admin-token"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = "k3s-admin-" + secrets.token_hex(24)
    write_private(path, token + "\n")
    return token


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


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

    def __init__(self, url: str, token: str, ca_pem: str | None = None, authorization: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.authorization = authorization or f"Bearer {token}"
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
        req.add_header("Authorization", self.authorization)
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
    admin = admin_token(data_dir)
    api_server = KubeAPIServer(
        host=str(opts.get("bind-address") or ALL_INTERFACES),
        port=port,
        tls=True,
        crd_files=crd_files(),
        token=admin,
        extra_tokens=[api_token(password)],  # node registrations: the join token this process started with
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
    write_kubeconfig(opts, port, ca_pem, admin)
    serve_supervisor(api_server, Supervisor(data_dir, ca_pem, password, admin))
    api = Api(f"https://127.0.0.1:{port}", admin, ca_pem)
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


# ----------------------------------------------------------------------------- supervisor API (K3s's /v1-k3s)


class Supervisor:
    """The part of K3s's supervisor API the stand-in needs, served on the API port as K3s does.

    - ``GET /cacerts`` (no auth): the cluster CA, which a joining node checks the token's CA hash against;
    - ``GET /v1-k3s/server-bootstrap`` (basic auth ``server:<token>``): what a joining server needs (here:
      the CA and the admin credential; K3s sends the bootstrap data);
    - ``PUT /v1-k3s/token`` (basic auth ``server:<token>``, body ``{"newToken": ...}``): ``k3s token rotate``.
      The server token file is rewritten at once and only the new token can rotate again. Joins and node
      registrations keep using the credentials this process started with until it restarts (K3s loads
      them at start): the old token stops working once the servers restart with the new one.
    """

    def __init__(self, data_dir: Path, ca_pem: str, password: str, admin: str) -> None:
        self.data_dir = data_dir
        self.ca_pem = ca_pem
        self.join_password = password
        self.server_password = password
        self.admin = admin
        self.lock = threading.Lock()

    def serve(self, request: BaseHTTPRequestHandler, path: str) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        if path == "/cacerts" and request.command == "GET":
            _reply(request, 200, self.ca_pem, "text/plain")
        elif path == "/v1-k3s/server-bootstrap" and request.command == "GET":
            if not _basic_auth_ok(request, "server", self.join_password):
                _reply(request, 401, "Unauthorized")
            else:
                bootstrap = {"serverCA": self.ca_pem, "adminToken": self.admin}
                _reply(request, 200, json.dumps(bootstrap), "application/json")
        elif path == "/v1-k3s/token":
            self._token(request, raw)
        else:
            _reply(request, 404, "404 page not found")

    def _token(self, request: BaseHTTPRequestHandler, raw: bytes) -> None:
        if request.command != "PUT":
            _reply(request, 400, "Bad Request")
            return
        with self.lock:
            if not _basic_auth_ok(request, "server", self.server_password):
                _reply(request, 401, "Unauthorized")
                return
            try:
                new = str(json.loads(raw or b"{}").get("newToken") or "")
            except (ValueError, AttributeError) as exc:
                _reply(request, 400, str(exc))
                return
            self.server_password = new or secrets.token_hex(16)  # K3s generates one when none is given
            write_server_token(self.data_dir, self.ca_pem, self.server_password)
        log("info", "Server token rotated; servers and agents must restart with the new token")
        _reply(request, 200, "")


def _basic_auth_ok(request: BaseHTTPRequestHandler, user: str, password: str) -> bool:
    given = (request.headers.get("Authorization") or "").encode()
    return hmac.compare_digest(given, basic_auth(user, password).encode())


def _reply(request: BaseHTTPRequestHandler, code: int, text: str, content_type: str = "text/plain") -> None:
    data = text.encode()
    request.send_response(code)
    request.send_header("Content-Type", f"{content_type}; charset=utf-8")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


def serve_supervisor(api_server: Any, supervisor: Supervisor) -> None:
    """Answer the supervisor paths on the API server's port (K3s serves both on 6443), the rest as before."""
    from lab.kubeapi.server import _Handler  # noqa: PLC0415 - the API server's request handler, extended here

    class Handler(_Handler):
        def _dispatch(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/cacerts" or path.startswith("/v1-k3s/"):
                supervisor.serve(self, path)
            else:
                super()._dispatch()

    # the listener creates one handler per request from this class, so later requests get the extended one
    # (a private attribute: the test API server has no public hook for extra routes)
    api_server._httpd.RequestHandlerClass = Handler


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
    # as K3s: the CA first (no credentials sent), checked against the token's CA hash, then the bootstrap data
    ca_pem = fetch_until_done(Api(upstream, ""), "/cacerts", stop)
    if ca_pem is None:
        return 0
    expected = token_ca_hash(token)
    if expected and expected != hashlib.sha256(str(ca_pem).encode()).hexdigest():
        raise Fatal("token CA hash does not match the Cluster CA certificate hash")
    bootstrap = fetch_until_done(
        Api(upstream, "", authorization=basic_auth("server", password)), "/v1-k3s/server-bootstrap", stop
    )
    if not isinstance(bootstrap, dict):
        return 0
    write_server_token(data_dir, str(ca_pem), password)
    write_kubeconfig(opts, port, str(ca_pem), str(bootstrap["adminToken"]))
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


def fetch_until_done(api: Api, path: str, stop: threading.Event) -> Any:
    """GET ``path`` on the server, retrying like K3s while it is unreachable or refuses the token."""
    while not stop.is_set():
        try:
            code, body = api.request("GET", path)
            if code == 200:
                return body
            log("error", f"Failed to validate connection to cluster at {api.url}: {code} {_reason(body)}")
        except (OSError, urllib.error.URLError) as err:
            log("info", f"Waiting for the server at {api.url}: {err}")
        stop.wait(RETRY_SECONDS)
    return None


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


TOKEN_FLAG_ALIASES = {"t": "token", "s": "server", "d": "data-dir"}
TOKEN_FLAG_ENV = {"token": "K3S_TOKEN", "server": "K3S_URL", "data-dir": "K3S_DATA_DIR"}  # --new-token has none
ROTATE_WARNING = (
    "\033[33mWARNING\033[0m: Recommended to keep a record of the old token. If restoring from a snapshot, "
    "you must use the token associated with that snapshot."
)


def token_command(argv: list[str]) -> int:
    """``k3s token rotate [--token T] [--new-token N] [--server URL] [--data-dir D]``, as K3s's CLI.

    No config file (K3s reads config.yaml only for server, agent and etcd-snapshot). Without ``--token``
    the server token file is read. The request goes to the supervisor (basic auth ``server:<token>``); a
    wrong token gets ``401 Unauthorized`` and exit code 1. K3s also hides its arguments from ``ps``; the
    stand-in cannot."""
    if argv[:1] != ["rotate"]:
        print("k3s (lab stand-in): only 'k3s token rotate' is supported", file=sys.stderr)
        return 1
    opts: dict[str, Any] = {key: os.environ[env] for key, env in TOKEN_FLAG_ENV.items() if os.environ.get(env)}
    opts.update({TOKEN_FLAG_ALIASES.get(key, key): value for key, value in parse_flags(argv[1:]).items()})
    print(ROTATE_WARNING, flush=True)
    token = str(opts.get("token") or "")
    if not token:
        path = Path(str(opts.get("data-dir") or DEFAULT_DATA_DIR)) / "server" / "token"
        try:
            token = path.read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            raise Fatal(f"open {path}: {(exc.strerror or str(exc)).lower()}") from exc
    server = str(opts.get("server") or "https://127.0.0.1:6443").rstrip("/")
    url = f"{server}/v1-k3s/token"
    try:
        ca_hash = token_ca_hash(token)
        if ca_hash:
            code, ca_pem = Api(server, "").request("GET", "/cacerts")
            if code != 200 or hashlib.sha256(str(ca_pem).encode()).hexdigest() != ca_hash:
                raise Fatal("token CA hash does not match the Cluster CA certificate hash")
        api = Api(server, "", authorization=basic_auth("server", token_password(token)))
        code, _ = api.request("PUT", "/v1-k3s/token", {"newToken": str(opts.get("new-token") or "")})
    except (OSError, urllib.error.URLError) as err:
        raise Fatal(f"{url}: {err}") from err
    if code != 200:
        raise Fatal(f"{url}: {code} {HTTPStatus(code).phrase}")
    print("Token rotated, restart k3s nodes with new token", flush=True)
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
        if command == "token":
            return token_command(rest)
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
