"""Watch streams, fault injection, authentication, request recording and controller hooks."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from typing import Any

import pytest
from lab.kubeapi import KubeAPIServer, wait_until
from lab.kubeapi.rawclient import request, watch_lines

CM = "/api/v1/namespaces/default/configmaps"
VOLUMES = "/apis/longhorn.io/v1beta2/namespaces/default/volumes"


def cm(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}


def test_watch_from_a_resource_version_replays_events(api: Any) -> None:
    start = api.get(CM).body["metadata"]["resourceVersion"]
    api.post(CM, cm("a"))
    api.patch(f"{CM}/a", {"data": {"k": "v"}})
    api.delete(f"{CM}/a")
    events = watch_lines(api.server, f"{CM}?watch=1&resourceVersion={start}", count=3)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1]["object"]["data"] == {"k": "v"}
    assert events[0]["object"]["kind"] == "ConfigMap"
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions)


def test_watch_without_resource_version_starts_with_current_objects(api: Any) -> None:
    api.post(CM, cm("a"))
    api.post(CM, cm("b"))
    events = watch_lines(api.server, f"{CM}?watch=true", count=2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a"), ("ADDED", "b")]


def test_watch_streams_live_events_and_honours_selectors(api: Any) -> None:
    srv: KubeAPIServer = api.server
    start = api.get(CM).body["metadata"]["resourceVersion"]
    result: list[dict[str, Any]] = []

    def watch() -> None:
        result.extend(watch_lines(srv, f"{CM}?watch=1&resourceVersion={start}&labelSelector=app%3Dweb", count=2))

    thread = threading.Thread(target=watch)
    thread.start()
    assert wait_until(lambda: len(srv.cluster.watchers) == 1)
    api.post(CM, cm("a", app="web"))
    api.post(CM, cm("b", app="db"))
    api.patch(f"{CM}/a", {"metadata": {"labels": {"app": "db"}}})  # leaves the selection
    thread.join(timeout=10)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in result] == [("ADDED", "a"), ("DELETED", "a")]


def test_watch_of_an_expired_resource_version_gets_410(api: Any, srv: KubeAPIServer) -> None:
    srv.cluster.log = type(srv.cluster.log)(maxlen=3)
    for i in range(5):
        api.post(CM, cm(f"c{i}"))
    events = watch_lines(srv, f"{CM}?watch=1&resourceVersion=1&timeoutSeconds=5")
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410
    assert events[0]["object"]["reason"] == "Expired"


def test_watch_initial_events_and_bookmarks(api: Any) -> None:
    api.post(CM, cm("a"))
    rv = api.get(CM).body["metadata"]["resourceVersion"]
    events = watch_lines(
        api.server,
        f"{CM}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        f"&allowWatchBookmarks=true&resourceVersion={rv}",
        count=2,
    )
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"] == {
        "resourceVersion": rv,
        "annotations": {"k8s.io/initial-events-end": "true"},
    }
    assert api.get(f"{CM}?watch=1&sendInitialEvents=true").status == 422


def test_watch_ends_after_timeout_seconds(api: Any) -> None:
    started = time.monotonic()
    assert watch_lines(api.server, f"{CM}?watch=1&resourceVersion={api.server.cluster.rv}&timeoutSeconds=1") == []
    assert time.monotonic() - started < 5


def test_watch_with_the_kubernetes_client(srv: KubeAPIServer, tmp_path: Any) -> None:
    from kubernetes import config, dynamic, watch  # noqa: PLC0415 - heavy import, this test only

    kubeconfig = srv.write_kubeconfig(tmp_path / "kubeconfig")
    client = dynamic.DynamicClient(config.new_client_from_config(config_file=str(kubeconfig)))
    volumes = client.resources.get(api_version="longhorn.io/v1beta2", kind="Volume")
    volumes.create(
        body={"apiVersion": "longhorn.io/v1beta2", "kind": "Volume", "metadata": {"name": "v1"}, "spec": {}},
        namespace="default",
    )
    srv.on_write(
        "Volume",
        lambda server, obj: server.update_status(
            "longhorn.io/v1beta2", "Volume", obj["metadata"]["name"], "default", {"robustness": "healthy"}
        ),
    )
    volumes.patch(
        name="v1",
        namespace="default",
        body={"spec": {"numberOfReplicas": 2}},
        content_type="application/merge-patch+json",
    )
    seen = []
    for event in volumes.watch(namespace="default", name="v1", timeout=1, watcher=watch.Watch()):
        seen.append((event["type"], (event["object"].status or {}).get("robustness")))
        if seen[-1] == ("ADDED", "healthy"):
            break
    assert seen[-1] == ("ADDED", "healthy")


# ----------------------------------------------------------------------------- auth and recording


def test_requests_without_the_token_get_401(srv: KubeAPIServer) -> None:
    resp = request(srv, "GET", "/api/v1/namespaces", token="wrong")
    assert resp.status == 401
    assert resp.body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_requests_are_recorded(api: Any, srv: KubeAPIServer) -> None:
    api.get("/version")
    api.post(CM, cm("a"))
    api.patch(f"{CM}/a", {"data": {"k": "v"}})
    api.get(f"{CM}/missing")
    assert srv.count() == 3
    assert srv.count(exclude_discovery=False) == 4
    assert srv.count("PATCH") == 1
    assert srv.count(path_prefix=f"{CM}/") == 2
    patch = next(r for r in srv.requests if r.method == "PATCH")
    assert patch.body == {"data": {"k": "v"}}
    assert patch.content_type == "application/merge-patch+json"
    assert patch.status == 200
    assert srv.requests[-1].status == 404
    srv.clear_requests()
    assert srv.requests == []


# ----------------------------------------------------------------------------- faults


def test_fail_next(api: Any, srv: KubeAPIServer) -> None:
    srv.faults.fail_next(2, status=503, methods=["POST"])
    assert api.get("/version").status == 200  # discovery is exempt by default
    assert api.get(CM).status == 200  # other methods too
    first = api.post(CM, cm("a"))
    assert first.status == 503
    assert first.body["reason"] == "ServiceUnavailable"
    assert first.headers["Retry-After"] == "1"
    assert api.post(CM, cm("a")).status == 503
    assert api.post(CM, cm("a")).status == 201
    srv.faults.fail_next(1, status=500)
    assert api.get(CM).body["reason"] == "InternalError"


def test_conflict_next(api: Any) -> None:
    srv: KubeAPIServer = api.server
    api.post(CM, cm("a"))
    srv.faults.conflict_next(1)
    conflict = api.patch(f"{CM}/a", {"data": {"k": "v"}})
    assert conflict.status == 409
    assert conflict.body["reason"] == "Conflict"
    assert "the object has been modified" in conflict.body["message"]
    assert "data" not in api.get(f"{CM}/a").body
    assert api.patch(f"{CM}/a", {"data": {"k": "v"}}).status == 200


def test_drop_next_closes_the_connection(api: Any, srv: KubeAPIServer) -> None:
    srv.faults.drop_next(1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, OSError)):
        api.get(CM)
    assert srv.requests[-1].status is None
    assert api.get(CM).status == 200


def test_delay(api: Any, srv: KubeAPIServer) -> None:
    srv.faults.delay(0.2)
    started = time.monotonic()
    api.get(CM)
    assert time.monotonic() - started >= 0.2
    srv.faults.clear()


def test_down_refuses_connections_until_cleared(api: Any, srv: KubeAPIServer) -> None:
    srv.faults.down(True)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((srv.host, srv.port), timeout=2).close()
    srv.faults.down(False)
    assert api.get(CM).status == 200
    srv.faults.down(True)
    srv.faults.clear()
    assert api.get(CM).status == 200


# ----------------------------------------------------------------------------- controller hooks


def test_on_write_hooks_simulate_controllers(api: Any, srv: KubeAPIServer) -> None:
    def enable(server: KubeAPIServer, obj: dict[str, Any]) -> None:
        server.update_status("velero.io/v1", "Schedule", obj["metadata"]["name"], "default", {"phase": "Enabled"})

    srv.on_write("Schedule.velero.io", enable)
    body = {
        "apiVersion": "velero.io/v1",
        "kind": "Schedule",
        "metadata": {"name": "s"},
        "spec": {"schedule": "@daily", "template": {}},
    }
    created = api.post("/apis/velero.io/v1/namespaces/default/schedules", body)
    assert "status" not in created.body  # the response is the write itself...
    got = api.get("/apis/velero.io/v1/namespaces/default/schedules/s")
    assert got.body["status"] == {"phase": "Enabled"}  # ...the controller's effect is visible next
    api.post("/apis/velero.io/v1/namespaces/default/schedules?dryRun=All", {**body, "metadata": {"name": "t"}})
    assert srv.get("velero.io/v1", "Schedule", "t", "default") is None


def test_delayed_hook_and_hook_errors(api: Any, srv: KubeAPIServer) -> None:
    srv.on_write(
        "Volume",
        lambda server, obj: server.update_status(
            "longhorn.io/v1beta2", "Volume", obj["metadata"]["name"], "default", {"robustness": "healthy"}
        ),
        delay=0.1,
    )
    srv.on_write("ConfigMap", lambda _server, _obj: 1 / 0)
    api.post(VOLUMES, {"apiVersion": "longhorn.io/v1beta2", "kind": "Volume", "metadata": {"name": "v"}, "spec": {}})
    assert wait_until(
        lambda: (
            (srv.get("longhorn.io/v1beta2", "Volume", "v", "default") or {}).get("status") == {"robustness": "healthy"}
        )
    )
    assert api.post(CM, cm("a")).status == 201
    assert "ZeroDivisionError" in srv.hook_errors[0]
