"""Unit tests of k8s_objects: input validation, Secret handling, check mode, the wait for unserved kinds.

The applier runs against the in-process test API server through a thin raw client (no kubernetes.core
client, no ansible-playbook), so request counts and the server's real behaviour (404 for a kind whose
CRD is missing, base64 Secret data) are what the module sees in production.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args
from kubernetes.client.exceptions import ApiException
from lab.clock import FakeClock
from lab.kubeapi import KubeAPIServer
from lab.kubeapi.rawclient import request

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _k8s_objects as o
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import K8sNotFoundError, ResourceService
from ansible_collections.homelab.pi_cluster.plugins.modules import k8s_objects as mod

CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
RJ_CRD = "recurringjobs.longhorn.io"
PASSWORD = "s3cr3t-Pa55word"
TOKEN = "tok-9f8e7d6c"


def namespace(name: str, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def secret(ns: str = "apps", **string_data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "namespace": ns},
        "type": "Opaque",
        "stringData": string_data or {"password": PASSWORD},
    }


def recurring_job(ns: str = "longhorn-system", retain: int = 7) -> dict[str, Any]:
    return {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "RecurringJob",
        "metadata": {"name": "daily", "namespace": ns},
        "spec": {"cron": "0 3 * * *", "task": "snapshot", "groups": ["default"], "retain": retain, "concurrency": 1},
    }


def storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "longhorn-2r"},
        "provisioner": "driver.longhorn.io",
        "parameters": {"numberOfReplicas": "2"},
        "reclaimPolicy": "Delete",
    }


# ----------------------------------------------------------------------------- a raw client on the test server


class _Response:
    def __init__(self, data: bytes) -> None:
        self.data = data


class RawDyn:
    """What ResourceService needs of a client (``request``), sent to the test API server as is."""

    def __init__(self, server: KubeAPIServer) -> None:
        self.server = server

    def request(self, method: str, path: str, serialize: bool = True, **params: Any) -> _Response:
        body = params.pop("body", None)
        content_type = params.pop("content_type", None) or "application/json"
        names = {"label_selector": "labelSelector", "field_selector": "fieldSelector", "_continue": "continue"}
        query = {names.get(k, k): v for k, v in params.items() if v is not None}
        if query:
            path += "?" + urllib.parse.urlencode(query)
        resp = request(self.server, method.upper(), path, body, content_type=content_type)
        if resp.status >= 400:
            exc = ApiException(status=resp.status, reason="error", body=json.dumps(resp.body))
            exc.headers = dict(resp.headers)
            raise exc
        return _Response(json.dumps(resp.body).encode() if resp.body is not None else b"")


@pytest.fixture
def srv() -> Iterator[KubeAPIServer]:
    with KubeAPIServer() as server:
        yield server


def applier(server: KubeAPIServer, check_mode: bool = False, **kwargs: Any) -> o.ObjectsApplier:
    service = ResourceService(RawDyn(server), check_mode, sleep=lambda _s: None)
    return o.ObjectsApplier(service, **kwargs)


def actions(outcomes: list[o.Outcome]) -> list[tuple[str, str]]:
    return [(out.identity[1], out.action) for out in outcomes]


def writes(server: KubeAPIServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.requests if r.method != "GET"]


# ----------------------------------------------------------------------------- input validation


@pytest.mark.parametrize(
    ("definitions", "message"),
    [
        ("x", "definitions must be a list"),
        ([namespace("a"), "x"], "definitions[1]: must be a mapping"),
        ([{"kind": "Namespace", "metadata": {"name": "a"}}], "definitions[0]: apiVersion is required"),
        ([{"apiVersion": "v1", "metadata": {"name": "a"}}], "definitions[0]: kind is required"),
        ([namespace("a"), namespace("b"), {"apiVersion": "v1", "kind": "Namespace"}], "definitions[2]: metadata is"),
        ([namespace("a"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {}}], "definitions[1]: metadata.name"),
        ([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a/b"}}], "metadata.name 'a/b' is not"),
        ([recurring_job(ns="")], "definitions[0]: metadata.namespace must be a non-empty name"),
        (
            [{**recurring_job(), "metadata": {"name": "daily"}}],
            "definitions[0]: metadata.namespace is required (RecurringJob is namespaced)",
        ),
        ([namespace("a"), namespace("a")], "definitions[1]: Namespace a (v1) is already defined by definitions[0]"),
        ([secret(), secret()], "definitions[1]: Secret apps/creds (v1) is already defined by definitions[0]"),
        ([{**secret(), "stringData": {"port": 5432}}], "definitions[0]: stringData.port must be a string, got int"),
        ([{**secret(), "stringData": None, "data": {"k": "%%%"}}], "definitions[0]: data.k is not valid base64"),
        ([{**secret(), "data": ["a"]}], "definitions[0]: data must be a mapping"),
        ([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "x-", "name": "x"}}], "generateName"),
        ([{"apiVersion": "v1", "kind": "List", "metadata": {"name": "l"}, "items": []}], "give its items"),
    ],
)
def test_bad_definitions_name_the_item_and_field(definitions: Any, message: str) -> None:
    with pytest.raises(o.K8sObjectsInputError) as err:
        o.validate_definitions(definitions)
    assert message in str(err.value)


def test_validation_normalises_copies() -> None:
    raw = [
        {**namespace("a"), "metadata": {"name": "a", "namespace": "ignored"}},
        {**secret(), "data": {"token": "e\nA==\n"}},
    ]
    ns, sec = o.validate_definitions(raw)
    assert ns["metadata"] == {"name": "a"}, "a cluster-scoped known kind loses its namespace"
    assert "stringData" not in sec
    assert sec["data"] == {"token": "eA==", "password": base64.b64encode(PASSWORD.encode()).decode()}
    assert raw[1]["stringData"] == {"password": PASSWORD}, "the input is not modified"


def test_string_data_wins_over_data_and_none_removes() -> None:
    (sec,) = o.validate_definitions(
        [{**secret(k="new", gone=None), "data": {"k": base64.b64encode(b"old").decode()}}]  # type: ignore[arg-type]
    )
    assert sec["data"] == {"k": base64.b64encode(b"new").decode(), "gone": None}


# ----------------------------------------------------------------------------- secrets never shown


def test_secret_values_cover_raw_encoded_and_decoded_forms() -> None:
    defs = [
        secret(password=PASSWORD),
        {**secret(), "stringData": None, "data": {"token": base64.b64encode(TOKEN.encode()).decode()}},
        namespace("not-secret"),
    ]
    values = o.secret_values(defs)
    assert {PASSWORD, base64.b64encode(PASSWORD.encode()).decode(), TOKEN} <= values
    assert "not-secret" not in values


def test_mask_secret_marks_changed_keys_only() -> None:
    before = {"data": {"a": "QQ==", "b": "Qg=="}}
    after = {"data": {"a": "QQ==", "b": "Qw==", "c": "RA=="}}
    masked_before, masked_after = o.mask_secret(before, after)
    assert masked_before == {"data": {"a": o.MASK, "b": o.MASK}}
    assert masked_after == {"data": {"a": o.MASK, "b": o.MASK_CHANGED, "c": o.MASK_CHANGED}}
    assert before["data"]["a"] == "QQ==", "the inputs are not modified"


# ----------------------------------------------------------------------------- apply against the test server


def test_create_then_noop_is_one_get_per_object(srv: KubeAPIServer) -> None:
    defs = o.validate_definitions([namespace("apps"), secret(), storage_class(), namespace("longhorn-system")])
    defs.append(o.validate_definitions([recurring_job()])[0])
    first = applier(srv).present(defs)
    assert [a for _k, a in actions(first)] == ["created"] * 5
    stored = srv.get("v1", "Secret", "creds", "apps")
    assert stored is not None
    assert base64.b64decode(stored["data"]["password"]).decode() == PASSWORD
    srv.clear_requests()
    again = applier(srv).present(defs)
    assert [a for _k, a in actions(again)] == ["unchanged"] * 5, "stringData compares equal to the stored data"
    assert writes(srv) == []
    # one GET per object plus one discovery GET for the StorageClass's group version (not a known kind)
    assert srv.count("GET") == 5
    assert len([r for r in srv.requests if r.method == "GET"]) == 6


def test_one_changed_field_patches_only_that_object(srv: KubeAPIServer) -> None:
    applier(srv).present(o.validate_definitions([namespace("longhorn-system"), recurring_job()]))
    srv.clear_requests()
    out = applier(srv).present(o.validate_definitions([namespace("longhorn-system"), recurring_job(retain=14)]))
    assert actions(out) == [("Namespace", "unchanged"), ("RecurringJob", "patched")]
    patches = [r for r in srv.requests if r.method == "PATCH"]
    assert len(patches) == 1 and patches[0].path.endswith("/recurringjobs/daily")
    assert patches[0].body["spec"] == {"retain": 14}
    assert patches[0].body["metadata"]["resourceVersion"], "the patch carries the resourceVersion precondition"
    diff = out[1].diff()
    assert diff["before"]["spec"]["retain"] == 7 and diff["after"]["spec"]["retain"] == 14
    assert "status" not in diff["after"] and "resourceVersion" not in diff["after"]["metadata"]


def test_check_mode_predicts_objects_in_a_new_namespace(srv: KubeAPIServer) -> None:
    defs = o.validate_definitions([namespace("apps"), secret(), storage_class()])
    out = applier(srv, check_mode=True).present(defs)
    assert [a for _k, a in actions(out)] == ["created"] * 3
    assert writes(srv) == []
    assert srv.get("v1", "Namespace", "apps") is None
    diff = out[1].diff()
    assert diff["before"] == {}
    assert diff["after"]["data"] == {"password": o.MASK_CHANGED}


def test_check_mode_warns_for_a_kind_not_served(srv: KubeAPIServer) -> None:
    srv.delete(*CRD, RJ_CRD)
    warnings: list[str] = []
    out = applier(srv, check_mode=True, warn=warnings.append).present(o.validate_definitions([recurring_job()]))
    assert actions(out) == [("RecurringJob", "created")]
    assert len(warnings) == 1 and "RecurringJob longhorn-system/daily" in warnings[0] and "not served" in warnings[0]
    assert writes(srv) == []


def _crd_without_server_fields(srv: KubeAPIServer) -> dict[str, Any]:
    crd = srv.get(*CRD, RJ_CRD)
    assert crd is not None
    crd.pop("status", None)
    crd["metadata"] = {"name": RJ_CRD}
    return crd


def test_waits_for_a_kind_installed_later_with_a_fake_clock(srv: KubeAPIServer) -> None:
    crd = _crd_without_server_fields(srv)
    srv.delete(*CRD, RJ_CRD)

    def install_crd(clock: FakeClock) -> None:
        if len(clock.sleeps) == 3:  # the Helm controller installs the CRD after ~6s
            srv.create(crd)

    clock = FakeClock(install_crd)
    apply = applier(srv, api_wait_timeout=30, clock=clock.monotonic, sleep=clock.sleep)
    out = apply.present(o.validate_definitions([namespace("longhorn-system"), recurring_job()]))
    assert actions(out) == [("Namespace", "created"), ("RecurringJob", "created")]
    assert clock.sleeps == [2.0, 2.0, 2.0]
    assert srv.get("longhorn.io/v1beta2", "RecurringJob", "daily", "longhorn-system") is not None


@pytest.mark.parametrize(("timeout", "hint"), [(0, "set api_wait_timeout"), (5, "after waiting 5s")])
def test_kind_never_served_fails_naming_kind_and_object(srv: KubeAPIServer, timeout: int, hint: str) -> None:
    srv.delete(*CRD, RJ_CRD)
    clock = FakeClock()
    apply = applier(srv, api_wait_timeout=timeout, clock=clock.monotonic, sleep=clock.sleep)
    with pytest.raises(o.KindNotServedError) as err:
        apply.present(o.validate_definitions([namespace("longhorn-system"), recurring_job()]))
    message = str(err.value)
    assert message.startswith("definitions[1]: RecurringJob longhorn-system/daily (longhorn.io/v1beta2)")
    assert "does not serve kind 'RecurringJob'" in message and hint in message
    assert sum(clock.sleeps) == timeout
    assert actions(apply.outcomes) == [("Namespace", "created")], "what was done before the failure is reported"


def test_unknown_kind_waits_for_discovery(srv: KubeAPIServer) -> None:
    """A kind outside KNOWN_RESOURCES is found by discovery: re-discovered while waiting, not cached as missing."""
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "apps"}}
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }

    def install_crd(_clock: FakeClock) -> None:
        if srv.get(*CRD, "widgets.example.com") is None:
            srv.create(crd)

    clock = FakeClock(install_crd)
    apply = applier(srv, api_wait_timeout=10, clock=clock.monotonic, sleep=clock.sleep)
    out = apply.present(o.validate_definitions([namespace("apps"), unknown]))
    assert actions(out) == [("Namespace", "created"), ("Widget", "created")]


def test_missing_namespace_is_an_error_not_a_wait(srv: KubeAPIServer) -> None:
    with pytest.raises(K8sNotFoundError) as err:
        applier(srv, api_wait_timeout=30).present(o.validate_definitions([secret(ns="nowhere")]))
    assert "nowhere" in str(err.value)


def test_absent_deletes_existing_in_reverse_order(srv: KubeAPIServer) -> None:
    defs = o.validate_definitions([namespace("apps"), secret(), storage_class()])
    applier(srv).present(defs[:2])
    srv.clear_requests()
    out = applier(srv).absent(defs)
    assert actions(out) == [("StorageClass", "unchanged"), ("Secret", "deleted"), ("Namespace", "deleted")]
    deletes = [r.path for r in srv.requests if r.method == "DELETE"]
    assert deletes == ["/api/v1/namespaces/apps/secrets/creds", "/api/v1/namespaces/apps"]
    again = applier(srv).absent(defs)
    assert [a for _k, a in actions(again)] == ["unchanged"] * 3, "gone or terminating: nothing more to do"
    srv.delete(*CRD, RJ_CRD)
    gone = applier(srv).absent(o.validate_definitions([recurring_job()]))
    assert actions(gone) == [("RecurringJob", "unchanged")], "a kind that is not served has no objects"


# ----------------------------------------------------------------------------- the module entry point


def run_module(args: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    with patch_module_args(args), pytest.raises(SystemExit):
        mod.main()
    return json.loads(capsys.readouterr().out)


def test_module_bad_input_fails_before_any_client(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_client(module: Any) -> Any:
        raise AssertionError("no client may be created for bad input")

    monkeypatch.setattr(mod, "get_client", no_client)
    out = run_module({"definitions": [namespace("a"), {"apiVersion": "v1", "kind": "Namespace"}]}, capsys)
    assert out["failed"] and out["msg"] == "definitions[1]: metadata is required (a mapping with at least name)"
    out = run_module({"definitions": [secret(password=PASSWORD), secret(password=PASSWORD)]}, capsys)
    assert out["failed"] and "definitions[1]" in out["msg"]
    assert PASSWORD not in json.dumps(out), "the invocation's module_args are masked too"


def test_module_masks_secret_values_everywhere(
    srv: KubeAPIServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(mod, "get_client", lambda module: RawDyn(srv))
    args: dict[str, Any] = {
        "definitions": [namespace("apps"), secret(password=PASSWORD, token=TOKEN)],
        "_ansible_diff": True,
    }
    first = run_module(args, capsys)
    assert first["changed"] and [e["action"] for e in first["objects"]] == ["created", "created"]
    assert first["objects"][1] == {
        "api_version": "v1",
        "kind": "Secret",
        "name": "creds",
        "namespace": "apps",
        "action": "created",
    }
    args["definitions"][1]["stringData"]["token"] = TOKEN + "-2"
    second = run_module(args, capsys)
    assert [e["action"] for e in second["objects"]] == ["unchanged", "patched"]
    assert second["diff"][1]["after"]["data"] == {"password": o.MASK, "token": o.MASK_CHANGED}
    text = json.dumps([first, second])
    for value in (PASSWORD, TOKEN, TOKEN + "-2", base64.b64encode(PASSWORD.encode()).decode()):
        assert value not in text


def test_outcome_carries_the_live_status_but_never_for_a_secret(srv: KubeAPIServer) -> None:
    defs = o.validate_definitions([namespace("longhorn-system"), recurring_job(), namespace("apps"), secret()])
    applier(srv).present(defs)
    srv.update_status("longhorn.io/v1beta2", "RecurringJob", "daily", "longhorn-system", {"executionCount": 3})
    entries = [out.entry() for out in applier(srv).present(defs)]
    job = next(e for e in entries if e["kind"] == "RecurringJob")
    assert job["action"] == "unchanged" and job["status"] == {"executionCount": 3}
    assert all("status" not in e for e in entries if e["kind"] == "Secret")
    predicted = applier(srv, check_mode=True).present(o.validate_definitions([namespace("new")]))
    assert predicted[0].action == "created" and "status" not in predicted[0].entry(), "a predicted create has none"
