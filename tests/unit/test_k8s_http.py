"""The stdlib Kubernetes client (_k8s_http): configuration as kubernetes.core resolves it, which
configurations fall back to kubernetes.core, TLS (CA, hostname, client certificates), retries and
messages through get_client/ResourceService, and that the fast path never imports ``kubernetes``."""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import os
import ssl
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lab.kubeapi import KubeAPIServer
from lab.kubeapi.tls import make_certs

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _k8s_client as c
from ansible_collections.homelab.pi_cluster.plugins.module_utils import _k8s_http as h
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import (
    K8sForbiddenError,
    K8sUnavailableError,
    ResourceService,
)

ENV_NAMES = (
    "KUBECONFIG",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
    *(f"K8S_AUTH_{n}" for n in ("KUBECONFIG", "CONTEXT", "HOST", "API_KEY", "USERNAME", "PASSWORD")),
    *(f"K8S_AUTH_{n}" for n in ("VALIDATE_CERTS", "VERIFY_SSL", "CA_CERT", "SSL_CA_CERT", "CLIENT_CERT")),
    *(f"K8S_AUTH_{n}" for n in ("CERT_FILE", "CLIENT_KEY", "KEY_FILE", "PROXY", "NO_PROXY", "PERSIST_CONFIG")),
    *(f"K8S_AUTH_{n}" for n in ("IMPERSONATE_USER", "IMPERSONATE_GROUPS", "PROXY_HEADERS_USER_AGENT")),
)
TOKEN = "s3cr3t-token-value"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


class _Failed(Exception):
    pass


class FakeModule:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = {name: None for name in c.AUTH_ARG_SPEC} | params
        self.failure: dict[str, Any] | None = None

    def fail_json(self, **kwargs: Any) -> None:
        self.failure = kwargs
        raise _Failed(kwargs["msg"])


def kubeconfig(
    server: str = "https://10.0.0.1:6443",
    user: dict[str, Any] | None = None,
    cluster: dict[str, Any] | None = None,
    current: str | None = "lab",
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "lab", "cluster": {"server": server, **(cluster or {})}},
            {"name": "other", "cluster": {"server": "https://10.9.9.9:6443/"}},
        ],
        "contexts": [
            {"name": "lab", "context": {"cluster": "lab", "user": "u"}},
            {"name": "other", "context": {"cluster": "other", "user": "u2"}},
        ],
        "users": [
            {"name": "u", "user": {"token": TOKEN} if user is None else user},
            {"name": "u2", "user": {"token": "other-token"}},
        ],
    }
    if current:
        config["current-context"] = current
    return config


def write(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def name_of(obj: dict[str, Any] | None) -> str:
    assert obj is not None
    return str(obj["metadata"]["name"])


def resolve(params: dict[str, Any], environ: dict[str, str] | None = None) -> h.HttpConfig:
    return h.resolve_config({name: None for name in c.AUTH_ARG_SPEC} | params, environ)


# --------------------------------------------------------------------------- configuration


def test_kubeconfig_file_current_context_token_and_ca_file(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.crt").write_text("x", encoding="utf-8")
    path = write(tmp_path / "kc", kubeconfig(cluster={"certificate-authority": "certs/ca.crt"}))
    config = resolve({"kubeconfig": str(path)})
    assert config.host == "https://10.0.0.1:6443"
    assert config.authorization == f"Bearer {TOKEN}"
    assert config.ca_file == str(tmp_path / "certs" / "ca.crt"), "relative to the kubeconfig's directory"
    assert config.verify_ssl is True
    assert config.source == f"kubeconfig {path}, context lab"
    assert TOKEN not in repr(config)


def test_context_option_and_env_fallbacks(tmp_path: Path) -> None:
    path = write(tmp_path / "kc", kubeconfig())
    other = resolve({"kubeconfig": str(path), "context": "other"})
    assert (other.host, other.authorization) == ("https://10.9.9.9:6443", "Bearer other-token")
    env = {"K8S_AUTH_KUBECONFIG": str(path), "K8S_AUTH_CONTEXT": "other", "K8S_AUTH_VERIFY_SSL": "no"}
    by_env = resolve({}, env)
    assert (by_env.host, by_env.verify_ssl) == ("https://10.9.9.9:6443", False)
    assert resolve({}, {**env, "K8S_AUTH_VERIFY_SSL": "", "K8S_AUTH_VALIDATE_CERTS": "FALSE"}).verify_ssl is False
    assert resolve({}, {**env, "K8S_AUTH_VERIFY_SSL": "yes"}).verify_ssl is True
    # an option wins over its environment variable
    assert resolve({"context": "lab"}, env).host == "https://10.0.0.1:6443"


def test_default_kubeconfig_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "home" / ".kube" / "config", kubeconfig(server="https://home:6443"))
    assert resolve({}).host == "https://home:6443"
    write(tmp_path / "env-kc", kubeconfig(server="https://from-env:6443"))
    assert resolve({}, {"KUBECONFIG": str(tmp_path / "env-kc")}).host == "https://from-env:6443"


def test_inline_kubeconfig_with_embedded_ca() -> None:
    ca = make_certs(("127.0.0.1",)).ca_pem
    config = resolve({"kubeconfig": kubeconfig(cluster={"certificate-authority-data": base64.b64encode(ca).decode()})})
    assert config.ca_data == ca.decode() and config.ca_file is None
    assert config.source == "kubeconfig (given inline), context lab"


def test_host_with_api_key_ignores_the_kubeconfig(tmp_path: Path) -> None:
    config = resolve({"host": "https://api.lab:6443/", "api_key": "k", "kubeconfig": str(tmp_path / "nope")})
    assert (config.host, config.authorization, config.source) == ("https://api.lab:6443", "Bearer k", "module options")
    by_env = resolve({}, {"K8S_AUTH_HOST": "https://e:1", "K8S_AUTH_API_KEY": "ek"})
    assert (by_env.host, by_env.authorization) == ("https://e:1", "Bearer ek")


def test_token_file_basic_auth_and_precedence(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n", encoding="utf-8")
    from_file = resolve({"kubeconfig": str(write(tmp_path / "a", kubeconfig(user={"tokenFile": "token"})))})
    assert from_file.authorization == "Bearer from-file"
    both = kubeconfig(user={"token": "inline", "tokenFile": "token"})
    assert resolve({"kubeconfig": str(write(tmp_path / "b", both))}).authorization == "Bearer inline"
    basic = kubeconfig(user={"token": "", "username": "admin", "password": "pw"})
    expected = "Basic " + base64.b64encode(b"admin:pw").decode()
    assert resolve({"kubeconfig": str(write(tmp_path / "c", basic))}).authorization == expected
    assert resolve({"kubeconfig": str(write(tmp_path / "d", kubeconfig(user={})))}).authorization is None
    # an api_key option applies where the kubeconfig user has no token (e.g. a certificate user)
    assert resolve({"kubeconfig": str(tmp_path / "d"), "api_key": "k"}).authorization == "Bearer k"


def test_client_certificate_data_files_and_options(tmp_path: Path) -> None:
    data = kubeconfig(user={"client-certificate-data": "Y2VydA==", "client-key-data": "a2V5"})
    config = resolve({"kubeconfig": data})
    assert (config.cert_data, config.key_data, config.cert_file) == (b"cert", b"key", None)
    assert "a2V5" not in repr(config) and "key" not in repr(config).replace("key_file", "")
    for name in ("c.crt", "c.key", "ca.crt"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    files = kubeconfig(user={"client-certificate": "c.crt", "client-key": "c.key"})
    config = resolve({"kubeconfig": str(write(tmp_path / "kc", files))})
    assert (config.cert_file, config.key_file) == (str(tmp_path / "c.crt"), str(tmp_path / "c.key"))
    # options override the kubeconfig
    config = resolve({"kubeconfig": data, "client_cert": "/o/c", "client_key": "/o/k", "ca_cert": "/o/ca"})
    assert (config.cert_file, config.cert_data, config.key_file, config.key_data) == ("/o/c", None, "/o/k", None)
    assert config.ca_file == "/o/ca"
    # host + client certificate options need no kubeconfig
    config = resolve({"host": "https://h:6443", "client_cert": "/o/c", "client_key": "/o/k"})
    assert (config.authorization, config.cert_file) == (None, "/o/c")


def test_insecure_and_tls_server_name() -> None:
    config = resolve({"kubeconfig": kubeconfig(cluster={"insecure-skip-tls-verify": True, "tls-server-name": "k"})})
    assert (config.verify_ssl, config.tls_server_name) == (False, "k")
    assert resolve({"kubeconfig": kubeconfig(), "validate_certs": False}).verify_ssl is False
    context = h.ssl_context(config)
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    verified = h.ssl_context(resolve({"kubeconfig": kubeconfig()}))
    assert verified.verify_mode == ssl.CERT_REQUIRED and verified.check_hostname


FALLBACKS: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, str]]] = [
    ("exec user", {"user": {"exec": {"command": "x"}}}, {}, {}),
    ("auth-provider user", {"user": {"auth-provider": {"name": "oidc"}}}, {}, {}),
    ("proxy-url", {"cluster": {"proxy-url": "http://proxy:3128"}}, {}, {}),
    ("proxy option", {}, {"proxy": "http://proxy:3128"}, {}),
    ("proxy env", {}, {}, {"K8S_AUTH_PROXY": "http://proxy:3128"}),
    ("no_proxy env", {}, {}, {"K8S_AUTH_NO_PROXY": "10.0.0.1"}),
    ("proxy_headers env", {}, {}, {"K8S_AUTH_PROXY_HEADERS_USER_AGENT": "x"}),
    ("proxy_headers option", {}, {"proxy_headers": {"user_agent": "x", "basic_auth": None}}, {}),
    ("impersonate_user", {}, {"impersonate_user": "bob"}, {}),
    ("impersonate_groups env", {}, {}, {"K8S_AUTH_IMPERSONATE_GROUPS": "a,b"}),
    ("persist_config", {}, {"persist_config": False}, {}),
    ("username option", {}, {"username": "u", "password": "p", "host": "https://h:1"}, {}),
    ("host next to a kubeconfig token", {}, {"host": "https://h:1"}, {}),
    ("api_key next to a kubeconfig token", {}, {"api_key": "k"}, {}),
    ("unknown context", {}, {"context": "nope"}, {}),
    ("no server", {"server": ""}, {}, {}),
    ("not a URL", {"server": "10.0.0.1:6443"}, {}, {}),
    ("missing CA file", {"cluster": {"certificate-authority": "/nonexistent/ca.crt"}}, {}, {}),
]


@pytest.mark.parametrize(("why", "shape", "params", "env"), FALLBACKS, ids=[f[0] for f in FALLBACKS])
def test_configurations_left_to_kubernetes_core(
    why: str, shape: dict[str, Any], params: dict[str, Any], env: dict[str, str]
) -> None:
    base: dict[str, Any] = {"kubeconfig": kubeconfig(**shape), **params}
    with pytest.raises(h.Fallback):
        resolve(base, env)
    assert h.prepare_client({name: None for name in c.AUTH_ARG_SPEC} | base, env) is None, why


def test_files_and_environments_left_to_kubernetes_core(tmp_path: Path) -> None:
    path = write(tmp_path / "kc", kubeconfig())
    (tmp_path / "bad").write_text("clusters: [unclosed\n", encoding="utf-8")
    (tmp_path / "list").write_text("- a\n", encoding="utf-8")
    cases: list[tuple[dict[str, Any], dict[str, str]]] = [
        ({"kubeconfig": str(tmp_path / "missing")}, {}),
        ({"kubeconfig": str(tmp_path / "bad")}, {}),
        ({"kubeconfig": str(tmp_path / "list")}, {}),
        ({}, {"KUBECONFIG": f"{path}:{path}"}),  # several files: the kubernetes client merges them
        ({}, {"KUBERNETES_SERVICE_HOST": "10.43.0.1", "KUBERNETES_SERVICE_PORT": "443"}),  # in-cluster
        ({"kubeconfig": kubeconfig(user={"client-certificate-data": "!!", "client-key-data": "a2V5"})}, {}),
        ({"kubeconfig": kubeconfig(cluster={"certificate-authority-data": "bm90IGEgY2VydA=="})}, {}),  # not PEM
    ]
    for params, env in cases:
        assert h.prepare_client({name: None for name in c.AUTH_ARG_SPEC} | params, env) is None, (params, env)
    # the in-cluster environment does not matter once a kubeconfig is named
    in_cluster = {"KUBERNETES_SERVICE_HOST": "10.43.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert resolve({"kubeconfig": str(path)}, in_cluster).host == "https://10.0.0.1:6443"


def test_fallback_is_kubernetes_cores_client(tmp_path: Path) -> None:
    """An exec user goes through kubernetes.core exactly as before (its client, its errors)."""
    path = write(tmp_path / "kc", kubeconfig(user={"exec": {"apiVersion": "x", "command": "/bin/false"}}))
    module = FakeModule({"kubeconfig": str(path)})
    try:
        client = c.get_client(module, sleep=lambda _s: None)
    except _Failed:
        return  # kubernetes.core's own failure for this exec plugin
    assert type(client).__name__ == "K8SClient"


# --------------------------------------------------------------------------- against the test API server


@pytest.fixture(scope="module")
def api() -> Iterator[KubeAPIServer]:
    with KubeAPIServer(token=TOKEN) as server:
        yield server


@pytest.fixture
def server(api: KubeAPIServer) -> Iterator[KubeAPIServer]:
    api.faults.clear()
    yield api
    api.faults.clear()


def test_tls_with_the_ca_one_keep_alive_connection(server: KubeAPIServer, tmp_path: Path) -> None:
    path = server.write_kubeconfig(tmp_path / "kc")
    client = c.get_client(FakeModule({"kubeconfig": str(path)}))
    assert isinstance(client, h.HttpClient)
    service = ResourceService(client)
    conn = client._conn
    assert name_of(service.get("v1", "Namespace", "default")) == "default"
    assert service.get("v1", "Namespace", "absent") is None
    assert service.list("v1", "Namespace", label_selector="kubernetes.io/metadata.name=default")
    assert client._conn is conn is not None, "every request on the connection get_client opened"
    recorded = server.requests[-1]
    assert recorded.query == {"labelSelector": "kubernetes.io/metadata.name=default", "limit": "500"}
    assert recorded.accept == "application/json"
    # embedded CA data works the same
    embedded = server.write_kubeconfig(tmp_path / "kc2", embed_ca=True)
    assert ResourceService(c.get_client(FakeModule({"kubeconfig": str(embedded)}))).get("v1", "Namespace", "default")


def test_writes_send_json_with_the_content_type(server: KubeAPIServer, tmp_path: Path) -> None:
    client = c.get_client(FakeModule({"kubeconfig": str(server.write_kubeconfig(tmp_path / "kc"))}))
    service = ResourceService(client)
    name = "http-writes"
    result = service.ensure({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"a": "1"}}})
    assert result.created
    result = service.ensure({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"a": "2"}}})
    assert result.changed and (server.get("v1", "Namespace", name) or {})["metadata"]["labels"]["a"] == "2"
    patch = [r for r in server.requests if r.method == "PATCH"][-1]
    assert patch.content_type == "application/merge-patch+json" and patch.body["metadata"]["labels"] == {"a": "2"}
    service.delete("v1", "Namespace", name)


def test_reconnects_after_the_server_closed_the_connection(server: KubeAPIServer, tmp_path: Path) -> None:
    client = c.get_client(FakeModule({"kubeconfig": str(server.write_kubeconfig(tmp_path / "kc"))}))
    service = ResourceService(client, sleep=lambda _s: None)
    first = client._conn
    server.faults.down()
    server.faults.down(False)
    assert service.get("v1", "Namespace", "default") is not None
    assert service.retries == 0, "a closed idle connection is replaced before the request, not retried"
    assert client._conn is not first


def test_wrong_ca_fails_at_once_naming_the_kubeconfig(server: KubeAPIServer, tmp_path: Path) -> None:
    path = server.write_kubeconfig(tmp_path / "kc")
    (tmp_path / "other-ca.crt").write_bytes(make_certs(("10.9.9.9",)).ca_pem)
    sleeps: list[float] = []
    module = FakeModule({"kubeconfig": str(path), "ca_cert": str(tmp_path / "other-ca.crt")})
    with pytest.raises(_Failed) as failed:
        c.get_client(module, sleep=sleeps.append)
    msg = str(failed.value)
    assert f"Kubernetes API at {server.url} unreachable: TLS certificate verification failed" in msg
    assert "CERTIFICATE_VERIFY_FAILED" in msg and f"kubeconfig {path}, context lab" in msg
    assert sleeps == [], "a certificate that does not verify is not retried"
    assert TOKEN not in json.dumps(module.failure)
    # validate_certs: false accepts it
    insecure = FakeModule({"kubeconfig": str(path), "ca_cert": str(tmp_path / "other-ca.crt"), "validate_certs": False})
    assert ResourceService(c.get_client(insecure)).get("v1", "Namespace", "default")


def test_hostname_is_checked_against_tls_server_name(server: KubeAPIServer, tmp_path: Path) -> None:
    config = yaml.safe_load(server.write_kubeconfig(tmp_path / "kc").read_text(encoding="utf-8"))
    config["clusters"][0]["cluster"]["tls-server-name"] = "not-the-server.example"
    with pytest.raises(_Failed, match=r"TLS certificate verification failed.*(mismatch|not valid)"):
        c.get_client(FakeModule({"kubeconfig": config}))
    config["clusters"][0]["cluster"]["tls-server-name"] = "localhost"  # in the certificate
    assert ResourceService(c.get_client(FakeModule({"kubeconfig": config}))).get("v1", "Namespace", "default")


def test_wrong_token_is_forbidden_without_showing_it(server: KubeAPIServer, tmp_path: Path) -> None:
    config = yaml.safe_load(server.write_kubeconfig(tmp_path / "kc").read_text(encoding="utf-8"))
    config["users"][0]["user"]["token"] = "wrong-token-value"
    client = c.get_client(FakeModule({"kubeconfig": config}))
    assert "wrong-token-value" not in repr(client) and "wrong-token-value" not in repr(client.configuration)
    with pytest.raises(K8sForbiddenError) as failed:
        ResourceService(client).get("v1", "Namespace", "default")
    assert failed.value.status == 401 and "wrong-token-value" not in str(failed.value)


def test_503_is_retried_honouring_retry_after(server: KubeAPIServer, tmp_path: Path) -> None:
    client = c.get_client(FakeModule({"kubeconfig": str(server.write_kubeconfig(tmp_path / "kc"))}))
    sleeps: list[float] = []
    service = ResourceService(client, sleep=sleeps.append)
    server.faults.fail_next(2, status=503)
    assert service.get("v1", "Namespace", "default") is not None
    assert (service.retries, sleeps) == (2, [1.0, 1.0]), "Retry-After: 1 from the server"
    server.faults.fail_next(2, status=500)  # no Retry-After: exponential backoff
    assert service.get("v1", "Namespace", "default") is not None
    assert sleeps[2:] == [0.5, 1.0]
    server.faults.fail_next(9, status=503)
    with pytest.raises(K8sUnavailableError, match=r"Kubernetes API at https://127\.0\.0\.1:\d+ still failing after 5"):
        service.get("v1", "Namespace", "default")


def test_connection_refused_is_unreachable_as_today(tmp_path: Path) -> None:
    with KubeAPIServer(token=TOKEN) as api:
        path = api.write_kubeconfig(tmp_path / "kc", embed_ca=True)  # the server's CA file goes with it
        client = c.get_client(FakeModule({"kubeconfig": str(path)}))
        url = api.url
    service = ResourceService(client, sleep=lambda _s: None)
    with pytest.raises(K8sUnavailableError) as failed:
        service.get("v1", "Namespace", "default")
    assert str(failed.value) == (
        f"reading Namespace default: Kubernetes API at {url} still failing after 5 attempts: "
        "unreachable: [Errno 111] Connection refused"
    )
    sleeps: list[float] = []
    with pytest.raises(_Failed) as refused:
        c.get_client(FakeModule({"kubeconfig": str(path)}), sleep=sleeps.append)
    assert str(refused.value) == f"Kubernetes API at {url} unreachable after 5 attempts: [Errno 111] Connection refused"
    assert sleeps == [0.5, 1.0, 2.0, 4.0]


# --------------------------------------------------------------------------- client certificates


def _cert(
    subject: str, key: Any, issuer: x509.Name, issuer_key: Any, *, ca: bool = False, server: bool = False
) -> x509.Certificate:
    import ipaddress  # noqa: PLC0415

    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(obj: Any) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def mtls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An HTTPS server that requires a client certificate of its CA and answers with the client's CN."""
    directory = tmp_path_factory.mktemp("mtls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    ca = _cert("test-ca", ca_key, ca_name, ca_key, ca=True)
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    server_cert = _cert("server", server_key, ca_name, ca_key, server=True)
    client_cert = _cert("system:admin", client_key, ca_name, ca_key)
    for name, obj in (("ca.crt", ca), ("server.crt", server_cert), ("server.key", server_key)):
        (directory / name).write_bytes(_pem(obj))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=directory / "ca.crt")
    context.load_cert_chain(directory / "server.crt", directory / "server.key")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            peer = self.connection.getpeercert() or {}
            cn = dict(item[0] for item in peer.get("subject", ()))["commonName"]
            body = json.dumps({"kind": "Namespace", "metadata": {"name": cn}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self) -> Any:
            sock, addr = super().get_request()
            return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass

    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield {
        "server": f"https://127.0.0.1:{httpd.server_address[1]}",
        "ca": _pem(ca),
        "cert": _pem(client_cert),
        "key": _pem(client_key),
        "dir": directory,
    }
    httpd.shutdown()
    httpd.server_close()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_client_certificate_data_through_a_private_temp_file(
    mtls: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    loaded: list[tuple[str, str, int, int]] = []
    real = h._load_cert_chain

    def spy(context: ssl.SSLContext, cert_file: str, key_file: str | None) -> None:
        assert key_file is not None
        cert_mode, key_mode = os.stat(cert_file).st_mode, os.stat(key_file).st_mode
        loaded.append((cert_file, key_file, stat.S_IMODE(cert_mode), stat.S_IMODE(key_mode)))
        real(context, cert_file, key_file)

    monkeypatch.setattr(h, "_load_cert_chain", spy)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    user = {"client-certificate-data": _b64(mtls["cert"]), "client-key-data": _b64(mtls["key"])}
    config = kubeconfig(server=mtls["server"], user=user, cluster={"certificate-authority-data": _b64(mtls["ca"])})
    import tempfile  # noqa: PLC0415

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    client = c.get_client(FakeModule({"kubeconfig": config}))
    assert client.configuration.authorization is None
    assert name_of(ResourceService(client).get("v1", "Namespace", "x")) == "system:admin"
    [(cert_file, key_file, cert_mode, key_mode)] = loaded
    assert (cert_mode, key_mode) == (0o600, 0o600)
    assert Path(key_file).parent == tmp_path
    assert not Path(cert_file).exists() and not Path(key_file).exists(), "deleted as soon as loaded"
    assert list(tmp_path.iterdir()) == []


def test_client_certificate_files_and_a_missing_certificate(mtls: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "c.crt").write_bytes(mtls["cert"])
    (tmp_path / "c.key").write_bytes(mtls["key"])
    (tmp_path / "c.key").chmod(0o600)
    params = {"host": mtls["server"], "client_cert": str(tmp_path / "c.crt"), "client_key": str(tmp_path / "c.key")}
    params["ca_cert"] = str(mtls["dir"] / "ca.crt")
    client = c.get_client(FakeModule(params))
    assert isinstance(client, h.HttpClient)
    assert name_of(ResourceService(client).get("v1", "Namespace", "x")) == "system:admin"
    # no client certificate: the server refuses the handshake, reported as unreachable
    config = kubeconfig(server=mtls["server"], user={}, cluster={"certificate-authority-data": _b64(mtls["ca"])})
    no_cert = h.prepare_client({"kubeconfig": config})
    assert no_cert is not None
    with pytest.raises(K8sUnavailableError, match="unreachable"):
        no_cert.connect()
        ResourceService(no_cert, sleep=lambda _s: None, attempts=2).get("v1", "Namespace", "x")


# --------------------------------------------------------------------------- no kubernetes import


def test_the_fast_path_never_imports_kubernetes_nor_urllib3(server: KubeAPIServer, tmp_path: Path) -> None:
    path = server.write_kubeconfig(tmp_path / "kc")
    root = Path(__file__).resolve().parents[2]
    script = f"""
import sys
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader([{str(root / ".build" / "collections")!r}])
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_client import get_client, AUTH_ARG_SPEC
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import ResourceService

class Module:
    params = dict.fromkeys(AUTH_ARG_SPEC)
    params["kubeconfig"] = {str(path)!r}
    def fail_json(self, **kw):
        raise SystemExit(kw["msg"])

service = ResourceService(get_client(Module()))
assert service.get("v1", "Namespace", "default")
service.ensure({{"apiVersion": "v1", "kind": "Namespace", "metadata": {{"name": "default"}}}})
print(sorted(m for m in sys.modules if m.split(".")[0] in ("kubernetes", "urllib3")))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("K8S_AUTH_")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_without_pyyaml_only_inline_kubeconfigs_take_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(h, "yaml", None)
    params = dict.fromkeys(c.AUTH_ARG_SPEC)
    assert h.prepare_client(params | {"kubeconfig": str(write(tmp_path / "kc", kubeconfig()))}) is None
    assert h.prepare_client(params | {"kubeconfig": kubeconfig()}) is not None
