# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes API client creation for this collection's modules.

Internal to homelab.pi_cluster: names here may change without notice.

Authentication is kubernetes.core's: the same options (``kubeconfig``, ``context``,
``host``, ``api_key``, ``validate_certs``, ...), the same ``K8S_AUTH_*`` environment
fallbacks and the same ``kubernetes.core.k8s_auth_options`` doc fragment, so one
``module_defaults: group/homelab.pi_cluster.k8s`` block configures both collections.

Usage in a module::

    argument_spec = k8s_argument_spec(dict(name=dict(type="str", required=True)))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    ...validate the input first (no request may be sent for bad input)...
    client = get_client(module)
    service = ResourceService(client, check_mode=module.check_mode)
"""

from __future__ import annotations

import copy
import importlib.util
import time
import traceback
from typing import Any, Callable, Dict, Tuple, Type

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_http import (
    HttpClient,
    HttpTLSVerifyError,
    HttpTransportError,
    prepare_client,
)
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import (
    backoff_delays,
    client_error_types,
    is_retryable,
    translate_api_error,
    transport_error_parts,
)

# kubernetes.core is a declared collection dependency, but a user may still run a
# module without it; the import error becomes a clear failure when the module runs.
# Only its (pure Python) argument spec is imported here: the client and the kubernetes
# library take over a second to import, so they are imported by get_client(), after a
# module has validated its input (bad input then fails fast).
# kubernetes.core's auth option names (its k8s_auth_options doc fragment), shared with the
# inventory plugin's live enrichment.
AUTH_OPTIONS = (
    "kubeconfig",
    "context",
    "host",
    "api_key",
    "username",
    "password",
    "validate_certs",
    "ca_cert",
    "client_cert",
    "client_key",
    "proxy",
    "no_proxy",
    "proxy_headers",
    "persist_config",
    "impersonate_user",
    "impersonate_groups",
)

K8S_CORE_IMPORT_ERROR = None
try:
    from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
except ImportError:
    K8S_CORE_IMPORT_ERROR = traceback.format_exc()
    # Same option names, so argument validation still reaches get_client() and its clear message.
    AUTH_ARG_SPEC = {
        name: {"type": "raw", "no_log": name in ("kubeconfig", "api_key", "password")} for name in AUTH_OPTIONS
    }

# Presence check only (cheap); the library itself is imported by kubernetes.core in get_client().
KUBERNETES_IMPORT_ERROR = None if importlib.util.find_spec("kubernetes") else "No module named 'kubernetes'"

# The lowest python kubernetes client kubernetes.core 5.x/6.x supports.
KUBERNETES_MIN_VERSION = "24.2.0"


def k8s_argument_spec(extra: Dict[str, Any] | None = None) -> Dict[str, Any]:
    """kubernetes.core's auth options merged with a module's own options.

    The auth spec is deep-copied so no module can change it for another one; a
    module option of the same name as an auth option is an error, not a silent override.
    """
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    for name, option in (extra or {}).items():
        if name in spec:
            raise ValueError(f"module option {name!r} collides with a kubernetes.core auth option")
        spec[name] = copy.deepcopy(option)
    return spec


def auth_params(params: Dict[str, Any]) -> Dict[str, Any]:
    """Only the auth options of a module's params (None values left for the env fallbacks)."""
    return {name: params.get(name) for name in AUTH_ARG_SPEC}


def get_client(module: Any, attempts: int = 5, sleep: Callable[[float], None] = time.sleep) -> Any:
    """Return a client for the module's auth options: the stdlib ``HttpClient`` or kubernetes.core's ``K8SClient``.

    For the common configurations (a kubeconfig cluster with a token, basic auth or a client
    certificate; ``host`` with ``api_key`` or a client certificate) ``_k8s_http.prepare_client``
    builds a client on the standard library and its connection is opened here (the kubernetes
    library is then never imported: ~0.3 s per module run); for anything else (exec or
    auth-provider users, proxies, impersonation, in-cluster, ... see ``_k8s_http``) the
    client is kubernetes.core's, exactly as before.

    Fails the module (``missing_required_lib``) when kubernetes.core or the
    kubernetes Python library is missing, and with a readable message when the
    auth configuration is unusable or the API stays unreachable. Building the
    client reads ``/version`` and the API group list (kubernetes.core's discovery),
    so transient failures (429/5xx, connection errors) are retried with backoff here.
    """
    if K8S_CORE_IMPORT_ERROR is not None:
        module.fail_json(
            msg=missing_required_lib("the kubernetes.core collection (>=5.0.0)"), exception=K8S_CORE_IMPORT_ERROR
        )
    if KUBERNETES_IMPORT_ERROR is not None:
        module.fail_json(
            msg=missing_required_lib(f"kubernetes>={KUBERNETES_MIN_VERSION}"), exception=KUBERNETES_IMPORT_ERROR
        )
    auth = auth_params(module.params)
    fast = prepare_client(auth)
    if fast is not None:
        return _connect(module, fast, attempts, sleep)
    get_api_client, core_exception = _import_kubernetes_core(module)
    errors = client_error_types()
    delays = backoff_delays(attempts)
    for attempt in range(attempts):
        # module=None on purpose: kubernetes.core expects its own AnsibleK8SModule
        # (server_side_dry_run, requires); passing the params keeps the env fallbacks.
        try:
            return get_api_client(**auth)
        except core_exception as exc:
            module.fail_json(msg=f"Could not create the Kubernetes API client: {exc}", exception=traceback.format_exc())
        # errors is a tuple of exception classes built at runtime (lazy kubernetes import)
        except errors as exc:  # pylint: disable=catching-non-exception
            if is_retryable(exc) and attempt < len(delays):
                sleep(delays[attempt])
                continue
            tries = f" after {attempt + 1} attempts" if attempt else ""
            if getattr(exc, "status", None) is None:  # connection-level: no HTTP answer
                where, why = transport_error_parts(exc)
                msg = f"Kubernetes API{where} unreachable{tries}: {why}"
            else:
                msg = translate_api_error(exc, f"connecting to the Kubernetes API{tries}").message
            module.fail_json(msg=msg, exception=traceback.format_exc())
        except (OSError, ValueError, TypeError) as exc:
            # e.g. an unreadable or malformed kubeconfig file
            module.fail_json(
                msg=f"Could not load the Kubernetes configuration: {type(exc).__name__}: {exc}",
                exception=traceback.format_exc(),
            )
    return None  # not reached: every path above returns or fails


def _connect(module: Any, client: HttpClient, attempts: int, sleep: Callable[[float], None]) -> HttpClient:
    """Open the stdlib client's connection, retried as kubernetes.core's client creation is.

    A certificate that does not verify fails at once: another try cannot fix a wrong CA.
    """
    delays = backoff_delays(attempts)
    for attempt in range(attempts):
        try:
            client.connect()
            return client
        except HttpTLSVerifyError as exc:
            where, why = transport_error_parts(exc)
            module.fail_json(
                msg=f"Kubernetes API{where} unreachable: TLS certificate verification failed: {why} "
                f"(check ca_cert/validate_certs or the certificate-authority of the {client.configuration.source})",
                exception=traceback.format_exc(),
            )
        except HttpTransportError as exc:
            if attempt < len(delays):
                sleep(delays[attempt])
                continue
            tries = f" after {attempt + 1} attempts" if attempt else ""
            where, why = transport_error_parts(exc)
            module.fail_json(msg=f"Kubernetes API{where} unreachable{tries}: {why}", exception=traceback.format_exc())
    return client  # not reached: every path above returns or fails


def _import_kubernetes_core(module: Any) -> Tuple[Callable[..., Any], Type[BaseException]]:
    """kubernetes.core's ``get_api_client`` and ``CoreException`` (imports the kubernetes library)."""
    try:
        # imported here, not at the top: it imports the kubernetes library (slow), see above
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import (  # noqa: PLC0415
            get_api_client,
        )
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import (  # noqa: PLC0415
            CoreException,
        )
    except ImportError:
        module.fail_json(
            msg=missing_required_lib("the kubernetes.core collection (>=5.0.0)"), exception=traceback.format_exc()
        )
        raise  # not reached: fail_json exits
    return get_api_client, CoreException
