"""Unit tests for the Kubernetes client plumbing (auth spec merge, guarded imports)."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _k8s_client as c


class _Failed(Exception):
    pass


class FakeModule:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.failure: dict[str, Any] | None = None

    def fail_json(self, **kwargs: Any) -> None:
        self.failure = kwargs
        raise _Failed(kwargs["msg"])


def test_argument_spec_merges_a_deep_copy() -> None:
    spec = c.k8s_argument_spec({"name": {"type": "str", "required": True}})
    assert spec["name"] == {"type": "str", "required": True}
    for auth in ("kubeconfig", "context", "host", "api_key", "validate_certs", "ca_cert"):
        assert auth in spec
    assert spec["api_key"]["no_log"] is True and spec["password"]["no_log"] is True
    spec["api_key"]["no_log"] = False
    assert c.AUTH_ARG_SPEC["api_key"]["no_log"] is True, "the shared auth spec must not be mutated"
    assert c.k8s_argument_spec()["api_key"]["no_log"] is True


def test_argument_spec_rejects_a_colliding_option() -> None:
    with pytest.raises(ValueError, match="host"):
        c.k8s_argument_spec({"host": {"type": "str"}})


def test_missing_kubernetes_core_fails_with_missing_required_lib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(c, "K8S_CORE_IMPORT_ERROR", "Traceback: ImportError")
    module = FakeModule({})
    with pytest.raises(_Failed, match=r"kubernetes\.core"):
        c.get_client(module)
    assert module.failure is not None and "Failed to import the required Python library" in module.failure["msg"]


def test_missing_kubernetes_library_fails_with_missing_required_lib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(c, "KUBERNETES_IMPORT_ERROR", "Traceback: ImportError")
    with pytest.raises(_Failed, match=r"kubernetes>=24\.2\.0"):
        c.get_client(FakeModule({}))


def test_unusable_kubeconfig_fails_readably(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_CONTEXT", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(var, raising=False)
    module = FakeModule({"kubeconfig": str(tmp_path / "missing.yaml")})
    with pytest.raises(_Failed, match="Kubernetes"):
        c.get_client(module)


def test_unreachable_api_fails_after_bounded_retries(tmp_path: Any) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
        "clusters: [{name: t, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n"
        "contexts: [{name: t, context: {cluster: t, user: u}}]\n"
        "users: [{name: u, user: {token: abc}}]\n",
        encoding="utf-8",
    )
    sleeps: list[float] = []
    module = FakeModule({"kubeconfig": str(kubeconfig)})
    with pytest.raises(_Failed, match=r"unreachable.*after 5 attempts"):
        c.get_client(module, sleep=sleeps.append)
    assert sleeps == [0.5, 1.0, 2.0, 4.0]
