# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Kubernetes API client on the standard library (http.client + ssl), for the common configurations.

Internal to homelab.pi_cluster: names here may change without notice.

Importing the ``kubernetes`` package (which kubernetes.core's client needs) costs 0.25-0.4 s per
module run, more than the requests of a no-op task. ``prepare_client`` resolves the auth options
as kubernetes.core does (module params, then the ``K8S_AUTH_*`` environment, then the kubeconfig:
``KUBECONFIG`` or ``~/.kube/config``) for the common cases only, and returns an ``HttpClient``, or
``None`` when kubernetes.core's client must be used exactly as before:

* exec or auth-provider users, ``proxy``/``no_proxy``/``proxy_headers``/a cluster ``proxy-url``,
  ``impersonate_user``/``impersonate_groups``, ``persist_config``, ``username``/``password`` options,
  an in-cluster environment (``KUBERNETES_SERVICE_HOST``/``_PORT`` set), several kubeconfig files
  in one path, ``host`` or ``api_key`` options next to a kubeconfig user with a token (the kubernetes
  client keeps the kubeconfig's token and server there);
* anything it does not understand: a missing or malformed kubeconfig, an unknown context, unreadable
  certificate files... kubernetes.core then reports the problem in its own words.

The decision is made from the configuration alone, before any request. ``HttpClient.request`` has the
contract ``_k8s_resource.ResourceService`` uses of the kubernetes dynamic client (``serialize=False``,
``body``, ``content_type``, query parameters by their Python names; the answer's ``.data`` is bytes),
over one keep-alive connection. HTTP errors raise ``HttpApiError`` (``status``, ``reason``, ``body``,
``headers`` as ``kubernetes.client.ApiException`` has them); connection errors raise
``HttpTransportError``, a ``ConnectionError`` whose ``pool`` names the server and whose ``reason``
is the cause, as urllib3's errors are read by ``_k8s_resource.transport_error_parts``.

No credential (token, password, key) is ever part of a message or a ``repr``.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import select
import socket
import ssl
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Type
from urllib.parse import quote, urlencode, urlsplit

try:
    import yaml  # PyYAML comes with ansible-core on the controller
except ImportError:  # a target without it: kubeconfig files are left to kubernetes.core
    yaml = None  # type: ignore[assignment]

# kubernetes.core's AUTH_ARG_MAP: the kubernetes client's name -> the module option's name.
# An option falls back to K8S_AUTH_<OPTION> or K8S_AUTH_<CLIENT NAME> (e.g. K8S_AUTH_VERIFY_SSL).
AUTH_ARG_MAP = {
    "kubeconfig": "kubeconfig",
    "context": "context",
    "host": "host",
    "api_key": "api_key",
    "username": "username",
    "password": "password",
    "verify_ssl": "validate_certs",
    "ssl_ca_cert": "ca_cert",
    "cert_file": "client_cert",
    "key_file": "client_key",
    "proxy": "proxy",
    "no_proxy": "no_proxy",
    "proxy_headers": "proxy_headers",
    "persist_config": "persist_config",
}
BOOL_OPTIONS = ("validate_certs", "persist_config")
PROXY_HEADER_KEYS = ("proxy_basic_auth", "basic_auth", "user_agent")
# Set (as an option or in the environment), each of these leaves the work to kubernetes.core.
FALLBACK_OPTIONS = ("username", "password", "proxy", "no_proxy", "persist_config")

# DynamicClient.request's query parameters: Python name -> query name.
QUERY_PARAMS = {
    "pretty": "pretty",
    "_continue": "continue",
    "include_uninitialized": "includeUninitialized",
    "field_selector": "fieldSelector",
    "label_selector": "labelSelector",
    "limit": "limit",
    "resource_version": "resourceVersion",
    "resource_version_match": "resourceVersionMatch",
    "timeout_seconds": "timeoutSeconds",
    "watch": "watch",
    "grace_period_seconds": "gracePeriodSeconds",
    "propagation_policy": "propagationPolicy",
    "orphan_dependents": "orphanDependents",
    "dry_run": "dryRun",
    "field_manager": "fieldManager",
    "force_conflicts": "force",
}
USER_AGENT = "homelab.pi_cluster"
IN_CLUSTER_ENV = ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")


class Fallback(Exception):
    """The configuration is not one the stdlib client handles; kubernetes.core's client takes it."""


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Endpoint:
    """Where the API server is (what ``transport_error_parts`` reads as urllib3's ``pool``)."""

    scheme: str
    host: str
    port: int


class HttpApiError(Exception):
    """A non-2xx answer: ``status``, ``reason`` (the HTTP reason phrase), ``body`` (bytes), ``headers``."""

    def __init__(self, status: int, reason: str, body: bytes, headers: Any) -> None:
        super().__init__(f"({status}) Reason: {reason}")
        self.status = status
        self.reason = reason
        self.body = body
        self.headers = headers


class HttpTransportError(ConnectionError):
    """No HTTP answer (connection refused or lost, TLS failure, timeout); retried like urllib3's errors."""

    def __init__(self, endpoint: Endpoint, reason: BaseException) -> None:
        super().__init__(f"{endpoint.scheme}://{endpoint.host}:{endpoint.port}: {reason}")
        self.pool = endpoint
        self.reason = reason


class HttpTLSVerifyError(HttpTransportError):
    """The server's certificate did not verify (wrong CA, wrong name): trying again cannot help."""


# --------------------------------------------------------------------------- configuration


@dataclass
class HttpConfig:
    """A resolved API server configuration; ``host`` is the server URL, as the kubernetes client has it."""

    host: str
    source: str  # "kubeconfig <path>, context <name>" or "module options": for messages
    verify_ssl: bool = True
    ca_file: Optional[str] = None
    ca_data: Optional[str] = field(default=None, repr=False)  # PEM
    cert_file: Optional[str] = None
    key_file: Optional[str] = None
    cert_data: Optional[bytes] = field(default=None, repr=False)
    key_data: Optional[bytes] = field(default=None, repr=False)
    tls_server_name: Optional[str] = None
    authorization: Optional[str] = field(default=None, repr=False)  # the Authorization header's value


def auth_spec(params: Mapping[str, Any], environ: Mapping[str, str]) -> Dict[str, Any]:
    """The auth options as kubernetes.core's ``_create_auth_spec`` collects them (by client name)."""
    auth: Dict[str, Any] = {}
    for true_name, arg_name in AUTH_ARG_MAP.items():
        if params.get(arg_name) is not None:
            auth[true_name] = params[arg_name]
        elif arg_name == "proxy_headers":
            auth[true_name] = {
                key: environ[f"K8S_AUTH_PROXY_HEADERS_{key.upper()}"]
                for key in PROXY_HEADER_KEYS
                if f"K8S_AUTH_PROXY_HEADERS_{key.upper()}" in environ
            }
        else:
            value: Any = environ.get(f"K8S_AUTH_{arg_name.upper()}") or environ.get(f"K8S_AUTH_{true_name.upper()}")
            if value is not None:
                if arg_name in BOOL_OPTIONS:
                    value = value.lower() not in ("0", "false", "no")
                auth[true_name] = value
    return auth


def _impersonation(params: Mapping[str, Any], environ: Mapping[str, str]) -> bool:
    for name in ("impersonate_user", "impersonate_groups"):
        value = params.get(name)
        if value is None:
            value = environ.get(f"K8S_AUTH_{name.upper()}")
            if value is not None and name == "impersonate_groups":
                value = [group for group in value.split(",") if group]
        if value:
            return True
    return False


def resolve_config(params: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None) -> HttpConfig:
    """The configuration kubernetes.core would build, or ``Fallback`` when the stdlib client should not try."""
    env = os.environ if environ is None else environ
    auth = auth_spec(params, env)
    wanted_elsewhere = [name for name in FALLBACK_OPTIONS if auth.get(_true_name(name)) is not None]
    if wanted_elsewhere or any((auth.get("proxy_headers") or {}).values()) or _impersonation(params, env):
        raise Fallback(f"options the stdlib client leaves to kubernetes.core: {wanted_elsewhere or 'headers'}")
    host = auth.get("host")
    if host:
        host = str(host).rstrip("/")
    if (host and auth.get("api_key")) or (host and auth.get("cert_file") and auth.get("key_file")):
        config = HttpConfig(host=host, source="module options")
        user_token = False
    else:
        if not (auth.get("kubeconfig") or auth.get("context")) and all(env.get(name) for name in IN_CLUSTER_ENV):
            raise Fallback("in-cluster configuration")
        config, user_token = _from_kubeconfig(auth.get("kubeconfig"), auth.get("context"), env)
        if user_token and (host or auth.get("api_key")):
            raise Fallback("host/api_key next to a kubeconfig token (the kubernetes client keeps the kubeconfig's)")
    _apply_options(config, auth, host, user_token)
    if config.authorization is not None and any(c in config.authorization for c in "\r\n\0"):
        raise Fallback("credential with control characters")
    endpoint_of(config)  # validates the URL
    return config


def _apply_options(config: HttpConfig, auth: Mapping[str, Any], host: Optional[str], user_token: bool) -> None:
    """The options override the kubeconfig, as kubernetes.core sets them on the client's configuration."""
    if host:
        config.host = host
    if auth.get("verify_ssl") is not None:
        config.verify_ssl = bool(auth["verify_ssl"])
    if auth.get("ssl_ca_cert"):
        config.ca_file, config.ca_data = str(auth["ssl_ca_cert"]), None
    if auth.get("cert_file"):
        config.cert_file, config.cert_data = str(auth["cert_file"]), None
    if auth.get("key_file"):
        config.key_file, config.key_data = str(auth["key_file"]), None
    if auth.get("api_key") and not user_token:
        config.authorization = f"Bearer {auth['api_key']}"


def _true_name(arg_name: str) -> str:
    return next(true for true, arg in AUTH_ARG_MAP.items() if arg == arg_name)


def _named(items: Any, name: Any, what: str) -> Dict[str, Any]:
    if not isinstance(items, list):
        raise Fallback(f"kubeconfig {what} is not a list")
    found = [item for item in items if isinstance(item, dict) and item.get("name") == name]
    if len(found) != 1:
        raise Fallback(f"kubeconfig has {len(found)} {what} named {name!r}")
    return found[0]


def _load_kubeconfig(kubeconfig: Any, environ: Mapping[str, str]) -> Tuple[Dict[str, Any], str, str]:
    """(config dict, base path for relative file names, description)."""
    if isinstance(kubeconfig, dict):
        return kubeconfig, "", "kubeconfig (given inline)"
    path = kubeconfig if kubeconfig else environ.get("KUBECONFIG", "~/.kube/config")
    if not isinstance(path, str) or not path or ":" in path:
        raise Fallback("not a single kubeconfig file")  # the kubernetes client merges several
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise Fallback("kubeconfig file not found")
    if yaml is None:
        raise Fallback("PyYAML is not installed")
    with open(path, encoding="utf-8") as stream:
        loaded = yaml.safe_load(stream)
    if not isinstance(loaded, dict):
        raise Fallback("kubeconfig is not a mapping")
    return loaded, os.path.dirname(os.path.abspath(path)), f"kubeconfig {path}"


def _file_or_data(entry: Dict[str, Any], file_key: str, base: str) -> Tuple[Optional[str], Optional[bytes]]:
    """(file, decoded data) as the kubernetes client's FileOrData: ``<key>-data`` wins over ``<key>``."""
    if f"{file_key}-data" in entry:
        data = entry[f"{file_key}-data"]
        if not data:
            return None, None
        # strict: data the fast path cannot decode is left to kubernetes.core (and its error)
        return None, base64.b64decode(data.encode() if isinstance(data, str) else data, validate=True)
    if file_key in entry:
        path = os.path.normpath(os.path.join(base, entry[file_key]))
        if not os.path.isfile(path):
            raise Fallback("a file the kubeconfig names does not exist")
        return path, None
    return None, None


def _from_kubeconfig(kubeconfig: Any, context: Any, environ: Mapping[str, str]) -> Tuple[HttpConfig, bool]:
    """The kubeconfig's cluster and user for ``context`` (else its current-context); True when the user has a token."""
    loaded, base, where = _load_kubeconfig(kubeconfig, environ)
    name = context if context else loaded.get("current-context")
    if not name:
        raise Fallback("no context")
    context_entry = _named(loaded.get("contexts"), name, "contexts").get("context")
    if not isinstance(context_entry, dict):
        raise Fallback("context without content")
    cluster = _named(loaded.get("clusters"), context_entry.get("cluster"), "clusters").get("cluster")
    user: Optional[Dict[str, Any]] = None
    if context_entry.get("user") and loaded.get("users"):
        found = [u for u in loaded["users"] if isinstance(u, dict) and u.get("name") == context_entry["user"]]
        user = found[0].get("user") if found else None
    if not isinstance(cluster, dict) or not cluster.get("server") or (user is not None and not isinstance(user, dict)):
        raise Fallback("cluster or user not understood")
    if user and ("exec" in user or "auth-provider" in user):
        raise Fallback("exec or auth-provider user")
    if "proxy-url" in cluster:
        raise Fallback("proxy-url")
    config = HttpConfig(host=str(cluster["server"]).rstrip("/"), source=f"{where}, context {name}")
    config.authorization = _user_authorization(user or {}, base)
    if config.host.startswith("https"):
        ca_file, ca_data = _file_or_data(cluster, "certificate-authority", base)
        config.ca_file, config.ca_data = ca_file, ca_data.decode("ascii") if ca_data else None
        config.cert_file, config.cert_data = _file_or_data(user or {}, "client-certificate", base)
        config.key_file, config.key_data = _file_or_data(user or {}, "client-key", base)
    if "insecure-skip-tls-verify" in cluster:
        config.verify_ssl = not cluster["insecure-skip-tls-verify"]
    if cluster.get("tls-server-name"):
        config.tls_server_name = str(cluster["tls-server-name"])
    return config, config.authorization is not None


def _user_authorization(user: Dict[str, Any], base: str) -> Optional[str]:
    """A kubeconfig user's Authorization header: token (or tokenFile), else username/password (basic)."""
    token: Any = None
    if "token" in user:
        token = user["token"]
    elif "tokenFile" in user:
        with open(os.path.normpath(os.path.join(base, user["tokenFile"])), encoding="utf-8") as stream:
            token = stream.read().strip()
    if token:
        return f"Bearer {token}"
    if "username" in user and "password" in user:
        pair = f"{user['username']}:{user['password']}".encode("latin-1")
        return "Basic " + base64.b64encode(pair).decode("ascii")
    return None


def endpoint_of(config: HttpConfig) -> Endpoint:
    parts = urlsplit(config.host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Fallback("server URL not understood")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Endpoint(parts.scheme, parts.hostname, port)


# --------------------------------------------------------------------------- TLS


@contextlib.contextmanager
def _private_file(data: Optional[bytes], path: Optional[str]) -> Iterator[Optional[str]]:
    """``path``, or ``data`` in a 0600 temporary file that is deleted as soon as the block ends."""
    if data is None:
        yield path
        return
    handle, name = tempfile.mkstemp(prefix="k8s-", suffix=".pem")  # mode 0600, owner only
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        yield name
    finally:
        os.unlink(name)


def _load_cert_chain(context: ssl.SSLContext, cert_file: str, key_file: Optional[str]) -> None:
    context.load_cert_chain(cert_file, key_file)


def ssl_context(config: HttpConfig) -> ssl.SSLContext:
    """What urllib3 builds for the kubernetes client: CA (else certifi's), client certificate, hostname check."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.verify_ssl:
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
        if config.ca_data:
            context.load_verify_locations(cadata=config.ca_data)
        elif config.ca_file:
            context.load_verify_locations(cafile=config.ca_file)
        else:
            _load_default_cas(context)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert_data, key_data = config.cert_data, config.key_data
    if config.cert_file or cert_data:
        with _private_file(cert_data, config.cert_file) as cert, _private_file(key_data, config.key_file) as key:
            _load_cert_chain(context, str(cert), key)
    return context


def _load_default_cas(context: ssl.SSLContext) -> None:
    try:
        import certifi  # noqa: PLC0415 (only without a CA: the kubernetes client's default bundle)
    except ImportError:
        context.load_default_certs()
    else:
        context.load_verify_locations(cafile=certifi.where())


# what loading a configuration the fast path does not understand may raise (binascii.Error is a ValueError)
LOAD_ERRORS: Tuple[Type[BaseException], ...] = (Fallback, OSError, ValueError, TypeError, KeyError, AttributeError)
if yaml is not None:
    LOAD_ERRORS += (yaml.YAMLError,)


def prepare_client(params: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None) -> Optional[HttpClient]:
    """An ``HttpClient`` for the module's auth options, or ``None``: use kubernetes.core's client.

    Nothing is sent here. Any configuration this module does not understand, including one that
    cannot be loaded (unreadable CA or key, bad base64, ...), returns ``None`` so that kubernetes.core
    handles or reports it exactly as it always did.
    """
    try:
        config = resolve_config(params, environ)
        context = ssl_context(config) if config.host.startswith("https") else None
    except LOAD_ERRORS:
        return None
    return HttpClient(config, context)


# --------------------------------------------------------------------------- the client


class HttpResponse:
    """What ``ResourceService`` reads of an answer: ``data`` (bytes); also ``status`` and ``headers``."""

    def __init__(self, status: int, headers: Any, data: bytes) -> None:
        self.status = status
        self.headers = headers
        self.data = data


class _Connection(http.client.HTTPConnection):
    """HTTP/1.1 over TCP, TLS when given a context; ``server_hostname`` is the kubeconfig's tls-server-name."""

    def __init__(
        self, host: str, port: int, context: Optional[ssl.SSLContext], server_hostname: str, timeout: Optional[float]
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self._context = context
        self._server_hostname = server_hostname

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:
                sock = self._context.wrap_socket(sock, server_hostname=self._server_hostname)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class HttpClient:
    """The subset of the kubernetes dynamic client ``ResourceService`` uses, on one keep-alive connection."""

    error_types: Tuple[type, ...] = (HttpApiError, HttpTransportError)

    def __init__(self, config: HttpConfig, context: Optional[ssl.SSLContext], timeout: Optional[float] = None) -> None:
        self.configuration = config  # ResourceService names configuration.host in its messages
        self.endpoint = endpoint_of(config)
        self._base = urlsplit(config.host).path.rstrip("/")
        self._context = context
        self._timeout = timeout
        self._conn: Optional[_Connection] = None

    def __repr__(self) -> str:
        return f"HttpClient({self.configuration.host!r}, {self.configuration.source!r})"

    def _fail(self, exc: BaseException) -> HttpTransportError:
        self.close()
        if isinstance(exc, ssl.SSLCertVerificationError):
            return HttpTLSVerifyError(self.endpoint, exc)
        return HttpTransportError(self.endpoint, exc)

    def connect(self) -> None:
        """Open the connection (TCP and TLS handshake) now, unless an open one is still usable."""
        self._connection()

    def _connection(self) -> _Connection:
        if self._conn is not None and self._conn.sock is not None and not _dropped(self._conn.sock):
            return self._conn
        self.close()
        config = self.configuration
        conn = _Connection(
            self.endpoint.host,
            self.endpoint.port,
            self._context,
            config.tls_server_name or self.endpoint.host,
            self._timeout,
        )
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as exc:
            raise self._fail(exc) from exc
        self._conn = conn
        return conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def request(
        self,
        method: str,
        path: str,
        serialize: bool = False,
        body: Any = None,
        content_type: Optional[str] = None,
        **params: Any,
    ) -> HttpResponse:
        """Send one request; raise ``HttpApiError`` for a non-2xx answer, ``HttpTransportError`` for no answer."""
        if serialize:
            raise ValueError("HttpClient only returns raw answers (serialize=False)")
        url = self._url(path, params)
        headers = {"Accept": "application/json", "Content-Type": content_type or "application/json"}
        headers["User-Agent"] = USER_AGENT
        if self.configuration.authorization:
            headers["Authorization"] = self.configuration.authorization
        payload = None if body is None else json.dumps(body).encode("utf-8")
        conn = self._connection()
        try:
            conn.request(method.upper(), url, body=payload, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self._fail(exc) from exc
        if answer.will_close:
            self.close()
        if not 200 <= answer.status <= 299:
            raise HttpApiError(answer.status, answer.reason, data, answer.headers)
        return HttpResponse(answer.status, answer.headers, data)

    def _url(self, path: str, params: Mapping[str, Any]) -> str:
        unknown = sorted(set(params) - set(QUERY_PARAMS))
        if unknown:
            raise TypeError(f"unsupported request parameters: {', '.join(unknown)}")
        query: List[Tuple[str, str]] = [
            (QUERY_PARAMS[name], _query_value(value)) for name, value in params.items() if value is not None
        ]
        if not path.startswith("/"):
            path = "/" + path
        url = quote(self._base + path, safe="/:@!$&'()*+,;=-._~%")
        return f"{url}?{urlencode(query)}" if query else url


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _dropped(sock: socket.socket, wait: Callable[..., Any] = select.select) -> bool:
    """True when the server closed an idle keep-alive connection.

    Readable before a request means EOF, or TLS records such as TLS 1.3 session tickets: a
    non-blocking read consumes those (``SSLWantReadError``: nothing for the application, still open).
    """
    try:
        if not wait([sock], [], [], 0)[0]:
            return False
        timeout = sock.gettimeout()
        sock.settimeout(0.0)
        try:
            sock.recv(1)  # b"": closed; any byte: out of step (both: open a new connection)
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        finally:
            sock.settimeout(timeout)
    except (OSError, ValueError):
        pass
    return True
