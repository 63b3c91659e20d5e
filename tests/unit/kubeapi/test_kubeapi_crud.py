"""CRUD, PATCH, selectors, deletion, dry-run and subresource semantics of the test API server."""

from __future__ import annotations

from typing import Any

import pytest
from lab.kubeapi import KubeAPIServer
from lab.kubeapi.objects import namespace, node, pod

CM = "/api/v1/namespaces/default/configmaps"
VOLUMES = "/apis/longhorn.io/v1beta2/namespaces/default/volumes"
SCHEDULES = "/apis/velero.io/v1/namespaces/default/schedules"


def cm(name: str = "c", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def volume(name: str = "v1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "Volume",
        "metadata": {"name": name},
        "spec": {"numberOfReplicas": 2, **spec},
    }


def test_create_get_list_and_already_exists(api: Any) -> None:
    created = api.post(CM, cm(a="1"))
    assert created.status == 201
    meta = created.body["metadata"]
    assert {"uid", "resourceVersion", "creationTimestamp"} <= set(meta)
    assert meta["namespace"] == "default"
    again = api.post(CM, cm(a="2"))
    assert again.status == 409
    assert again.body["reason"] == "AlreadyExists"
    assert again.body["message"] == 'configmaps "c" already exists'
    assert again.body["details"] == {"name": "c", "kind": "configmaps"}
    got = api.get(f"{CM}/c")
    assert got.status == 200
    assert got.body["data"] == {"a": "1"}
    listed = api.get(CM)
    assert listed.body["kind"] == "ConfigMapList"
    assert listed.body["apiVersion"] == "v1"
    assert int(listed.body["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])
    assert [i["metadata"]["name"] for i in listed.body["items"]] == ["c"]


def test_not_found_status_body(api: Any) -> None:
    resp = api.get(f"{VOLUMES}/nope")
    assert resp.status == 404
    assert resp.body["message"] == 'volumes.longhorn.io "nope" not found'
    assert resp.body["details"] == {"name": "nope", "group": "longhorn.io", "kind": "volumes"}


def test_namespace_must_exist(api: Any) -> None:
    resp = api.post("/api/v1/namespaces/ghost/configmaps", cm())
    assert resp.status == 404
    assert resp.body["message"] == 'namespaces "ghost" not found'
    assert api.post("/api/v1/namespaces", namespace("ghost")).status == 201
    assert api.post("/api/v1/namespaces/ghost/configmaps", cm()).status == 201
    assert api.post("/api/v1/namespaces/kube-system/configmaps", cm()).status == 201


def test_generate_name(api: Any) -> None:
    resp = api.post(CM, {"metadata": {"generateName": "job-"}, "data": {}})
    assert resp.status == 201
    assert resp.body["metadata"]["name"].startswith("job-")
    assert len(resp.body["metadata"]["name"]) == len("job-") + 5


def test_put_with_stale_resource_version_is_409(api: Any) -> None:
    first = api.post(CM, cm(a="1")).body
    second = api.put(f"{CM}/c", {**first, "data": {"a": "2"}})
    assert second.status == 200
    assert second.body["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    stale = api.put(f"{CM}/c", {**first, "data": {"a": "3"}})
    assert stale.status == 409
    assert stale.body["reason"] == "Conflict"
    assert stale.body["message"] == (
        'Operation cannot be fulfilled on configmaps "c": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert api.get(f"{CM}/c").body["data"] == {"a": "2"}


def test_unconditional_put_and_no_op_writes_keep_the_resource_version(api: Any) -> None:
    first = api.post(CM, cm(a="1")).body
    body = {k: v for k, v in first.items() if k != "metadata"} | {"metadata": {"name": "c"}}
    same = api.put(f"{CM}/c", body)
    assert same.status == 200
    assert same.body["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    noop = api.patch(f"{CM}/c", {"data": {"a": "1"}})
    assert noop.body["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_put_to_a_missing_object_is_404_and_name_mismatch_is_400(api: Any) -> None:
    assert api.put(f"{CM}/c", cm()).status == 404
    api.post(CM, cm())
    assert api.put(f"{CM}/c", cm("other")).status == 400


def test_patch_formats_on_builtins(api: Any) -> None:
    api.post(
        "/api/v1/nodes",
        {"metadata": {"name": "n1", "labels": {"a": "1", "b": "2"}}, "spec": {"podCIDRs": ["10.42.0.0/24"]}},
    )
    merged = api.patch("/api/v1/nodes/n1", {"metadata": {"labels": {"a": None, "c": "3"}}})
    assert merged.status == 200
    assert merged.body["metadata"]["labels"] == {"b": "2", "c": "3"}
    jsonp = api.patch(
        "/api/v1/nodes/n1",
        [
            {"op": "add", "path": "/metadata/labels/d", "value": "4"},
            {"op": "test", "path": "/metadata/labels/b", "value": "2"},
        ],
        "application/json-patch+json",
    )
    assert jsonp.body["metadata"]["labels"] == {"b": "2", "c": "3", "d": "4"}
    failed_test = api.patch(
        "/api/v1/nodes/n1", [{"op": "test", "path": "/metadata/labels/b", "value": "9"}], "application/json-patch+json"
    )
    assert failed_test.status == 422
    smp = api.patch(
        "/api/v1/nodes/n1",
        {"spec": {"podCIDRs": ["10.42.1.0/24"], "taints": [{"key": "k", "effect": "NoSchedule"}]}},
        "application/strategic-merge-patch+json",
    )
    assert smp.status == 200
    assert smp.body["spec"]["podCIDRs"] == ["10.42.0.0/24", "10.42.1.0/24"]  # merged as a set
    replaced = api.patch(
        "/api/v1/nodes/n1",
        {"spec": {"taints": [{"key": "j", "effect": "NoExecute"}]}},
        "application/strategic-merge-patch+json",
    )
    assert replaced.body["spec"]["taints"] == [{"key": "j", "effect": "NoExecute"}]  # taints are atomic


def test_strategic_merge_patch_merges_containers_by_name(api: Any) -> None:
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]},
            },
        },
    }
    assert api.post("/apis/apps/v1/namespaces/default/deployments", deploy).status == 201
    patch = {
        "spec": {
            "template": {
                "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}},
                "spec": {"containers": [{"name": "b", "image": "y:2"}]},
            }
        }
    }
    resp = api.patch(
        "/apis/apps/v1/namespaces/default/deployments/web", patch, "application/strategic-merge-patch+json"
    )
    assert resp.status == 200
    containers = resp.body["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("a", "x:1"), ("b", "y:2")]
    assert resp.body["metadata"]["generation"] == 2


def test_strategic_merge_patch_on_a_custom_resource_is_415(api: Any) -> None:
    api.post(VOLUMES, volume())
    resp = api.patch(f"{VOLUMES}/v1", {"spec": {"numberOfReplicas": 3}}, "application/strategic-merge-patch+json")
    assert resp.status == 415
    assert resp.body["reason"] == "UnsupportedMediaType"
    assert resp.body["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )
    assert api.patch(f"{VOLUMES}/v1", {"spec": {"numberOfReplicas": 3}}).status == 200


def test_patch_carrying_a_stale_resource_version_is_409(api: Any) -> None:
    first = api.post(VOLUMES, volume()).body
    api.patch(f"{VOLUMES}/v1", {"spec": {"numberOfReplicas": 3}})
    stale = api.patch(
        f"{VOLUMES}/v1",
        {"metadata": {"resourceVersion": first["metadata"]["resourceVersion"]}, "spec": {"numberOfReplicas": 1}},
    )
    assert stale.status == 409
    assert stale.body["message"].startswith('Operation cannot be fulfilled on volumes.longhorn.io "v1"')


def test_patch_validates_the_result(api: Any) -> None:
    api.post(VOLUMES, volume())
    resp = api.patch(f"{VOLUMES}/v1", {"spec": {"numberOfReplicas": "many"}})
    assert resp.status == 422
    assert api.get(f"{VOLUMES}/v1").body["spec"]["numberOfReplicas"] == 2


def test_server_side_apply_is_minimal(api: Any) -> None:
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  k: v\n"
    missing_manager = api.patch(f"{CM}/applied", body, "application/apply-patch+yaml")
    assert missing_manager.status == 422
    created = api.patch(f"{CM}/applied?fieldManager=test", body, "application/apply-patch+yaml")
    assert created.status == 201
    updated = api.patch(f"{CM}/applied?fieldManager=test", body.replace("k: v", "k: w"), "application/apply-patch+yaml")
    assert updated.status == 200
    assert updated.body["data"] == {"k": "w"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a", "b"]),
        ("app==web", ["a", "b"]),
        ("app!=web", ["c", "d"]),
        ("tier in (front,back)", ["a", "c"]),
        ("tier notin (front)", ["b", "c", "d"]),
        ("tier", ["a", "c"]),
        ("!tier", ["b", "d"]),
        ("app=web,tier=front", ["a"]),
        ("app in (web, db),!tier", ["b"]),
    ],
)
def test_label_selectors(api: Any, selector: str, expected: list[str]) -> None:
    labels = {"a": {"app": "web", "tier": "front"}, "b": {"app": "web"}, "c": {"app": "db", "tier": "back"}, "d": {}}
    for name, lbl in labels.items():
        api.post(CM, {"metadata": {"name": name, "labels": lbl}})
    from urllib.parse import quote  # noqa: PLC0415 - only this test builds query strings

    resp = api.get(f"{CM}?labelSelector={quote(selector)}")
    assert resp.status == 200
    assert [i["metadata"]["name"] for i in resp.body["items"]] == expected


def test_bad_label_selector_is_400(api: Any) -> None:
    assert api.get(f"{CM}?labelSelector=a%20in%20b").status == 400


def test_field_selectors_and_cluster_wide_lists(srv: KubeAPIServer, api: Any) -> None:
    srv.create(namespace("other"))
    srv.create(pod("p1", node="n1"))
    srv.create(pod("p2", node="n2"))
    srv.create(pod("p3", namespace="other", node="n1", phase="Succeeded"))
    everywhere = api.get("/api/v1/pods?fieldSelector=spec.nodeName%3Dn1")
    assert sorted(i["metadata"]["name"] for i in everywhere.body["items"]) == ["p1", "p3"]
    assert "kind" not in everywhere.body["items"][0]  # typed lists carry no per-item kind, like the real server
    running = api.get("/api/v1/pods?fieldSelector=spec.nodeName%3Dn1,status.phase!%3DSucceeded")
    assert [i["metadata"]["name"] for i in running.body["items"]] == ["p1"]
    by_ns = api.get("/api/v1/pods?fieldSelector=metadata.namespace%3Dother")
    assert [i["metadata"]["name"] for i in by_ns.body["items"]] == ["p3"]
    unknown = api.get("/api/v1/pods?fieldSelector=spec.bogus%3D1")
    assert unknown.status == 400
    assert unknown.body["message"] == "field label not supported: spec.bogus"
    assert api.get(f"{VOLUMES}?fieldSelector=spec.size%3D1").status == 400
    srv.create(node("n1", unschedulable=True))
    srv.create(node("n2"))
    schedulable = api.get("/api/v1/nodes?fieldSelector=spec.unschedulable%3Dfalse")
    assert [i["metadata"]["name"] for i in schedulable.body["items"]] == ["n2"]


def test_list_pagination(api: Any) -> None:
    for i in range(5):
        api.post(CM, cm(f"c{i}"))
    first = api.get(f"{CM}?limit=2").body
    assert [i["metadata"]["name"] for i in first["items"]] == ["c0", "c1"]
    assert first["metadata"]["remainingItemCount"] == 3
    token = first["metadata"]["continue"]
    second = api.get(f"{CM}?limit=2&continue={token}").body
    assert [i["metadata"]["name"] for i in second["items"]] == ["c2", "c3"]


def test_custom_resource_lists_and_kind(api: Any) -> None:
    api.post(VOLUMES, volume())
    listed = api.get("/apis/longhorn.io/v1beta2/volumes").body
    assert listed["kind"] == "VolumeList"
    assert listed["items"][0]["kind"] == "Volume"


def test_finalizers_hold_deletion_until_removed(api: Any, srv: KubeAPIServer) -> None:
    body = volume()
    body["metadata"]["finalizers"] = ["longhorn.io"]
    created = api.post(VOLUMES, body).body
    deleting = api.delete(f"{VOLUMES}/v1")
    assert deleting.status == 200
    assert deleting.body["metadata"]["deletionTimestamp"]
    assert deleting.body["metadata"]["generation"] == created["metadata"]["generation"] + 1
    assert api.get(f"{VOLUMES}/v1").status == 200
    adding = api.patch(f"{VOLUMES}/v1", {"metadata": {"finalizers": ["longhorn.io", "example.com/x"]}})
    assert adding.status == 422
    again = api.delete(f"{VOLUMES}/v1")
    assert again.status == 200
    gone = api.patch(f"{VOLUMES}/v1", {"metadata": {"finalizers": None}})
    assert gone.status == 200
    assert api.get(f"{VOLUMES}/v1").status == 404
    assert srv.get("longhorn.io/v1beta2", "Volume", "v1", "default") is None


def test_delete_answers_like_the_real_registries(api: Any, srv: KubeAPIServer) -> None:
    api.post(VOLUMES, volume())
    status = api.delete(f"{VOLUMES}/v1")
    assert status.status == 200
    assert status.body["kind"] == "Status"
    assert status.body["status"] == "Success"
    assert status.body["details"]["kind"] == "volumes"
    srv.create(pod("p", node=None))
    deleted_pod = api.delete("/api/v1/namespaces/default/pods/p")
    assert deleted_pod.body["kind"] == "Pod"  # pods return the deleted object
    assert api.delete(f"{VOLUMES}/v1").status == 404


def test_delete_preconditions(api: Any) -> None:
    created = api.post(CM, cm()).body
    wrong = api.delete(f"{CM}/c", {"preconditions": {"uid": "not-it"}})
    assert wrong.status == 409
    right = api.delete(
        f"{CM}/c", {"preconditions": {"uid": created["metadata"]["uid"]}, "propagationPolicy": "Foreground"}
    )
    assert right.status == 200


def test_delete_collection(api: Any) -> None:
    for name, lbl in (("a", "x"), ("b", "x"), ("c", "y")):
        api.post(CM, {"metadata": {"name": name, "labels": {"l": lbl}}})
    resp = api.delete(f"{CM}?labelSelector=l%3Dx")
    assert resp.status == 200
    assert [i["metadata"]["name"] for i in api.get(CM).body["items"]] == ["c"]


def test_dry_run_stores_nothing(api: Any, srv: KubeAPIServer) -> None:
    created = api.post(f"{VOLUMES}?dryRun=All", volume())
    assert created.status == 201
    assert created.body["metadata"]["uid"]
    assert srv.get("longhorn.io/v1beta2", "Volume", "v1", "default") is None
    invalid = api.post(f"{VOLUMES}?dryRun=All", volume(accessMode="foo"))
    assert invalid.status == 422
    api.post(VOLUMES, volume())
    before = api.get(f"{VOLUMES}/v1").body
    patched = api.patch(f"{VOLUMES}/v1?dryRun=All", {"spec": {"numberOfReplicas": 3}})
    assert patched.body["spec"]["numberOfReplicas"] == 3
    assert api.get(f"{VOLUMES}/v1").body == before
    assert api.delete(f"{VOLUMES}/v1?dryRun=All").status == 200
    assert api.get(f"{VOLUMES}/v1").body == before


def test_status_subresource_isolation_and_generation(api: Any) -> None:
    body = volume()
    body["status"] = {"state": "attached"}
    created = api.post(VOLUMES, body).body
    assert "status" not in created  # create cannot set status when the subresource exists
    assert created["metadata"]["generation"] == 1
    status = api.put(
        f"{VOLUMES}/v1/status", {**created, "spec": {"numberOfReplicas": 9}, "status": {"state": "attached"}}
    )
    assert status.status == 200
    assert status.body["status"] == {"state": "attached"}
    assert status.body["spec"]["numberOfReplicas"] == 2  # status writes ignore spec
    assert status.body["metadata"]["generation"] == 1
    main = api.patch(f"{VOLUMES}/v1", {"spec": {"numberOfReplicas": 3}, "status": {"state": "detached"}})
    assert main.body["status"] == {"state": "attached"}  # main-resource writes ignore status
    assert main.body["metadata"]["generation"] == 2
    labels_only = api.patch(f"{VOLUMES}/v1", {"metadata": {"labels": {"x": "y"}}})
    assert labels_only.body["metadata"]["generation"] == 2
    status_patch = api.patch(f"{VOLUMES}/v1/status", {"status": {"robustness": "healthy"}})
    assert status_patch.body["status"] == {"state": "attached", "robustness": "healthy"}
    assert api.get("/apis/velero.io/v1/namespaces/default/schedules/x/status").status == 404  # no subresource


def test_crd_without_status_subresource_keeps_status_on_writes(api: Any) -> None:
    body = {
        "apiVersion": "velero.io/v1",
        "kind": "Schedule",
        "metadata": {"name": "s"},
        "spec": {"schedule": "@daily", "template": {}},
        "status": {"phase": "Enabled"},
    }
    created = api.post(SCHEDULES, body).body
    assert created["status"] == {"phase": "Enabled"}
    changed = api.patch(f"{SCHEDULES}/s", {"status": {"phase": "FailedValidation"}}).body
    assert changed["metadata"]["generation"] == 2  # without the subresource, status changes bump generation too


def test_namespace_deletion_removes_its_content(api: Any, srv: KubeAPIServer) -> None:
    api.post("/api/v1/namespaces", namespace("tmp"))
    api.post("/api/v1/namespaces/tmp/configmaps", cm())
    body = volume()
    body["metadata"]["finalizers"] = ["longhorn.io"]
    api.post("/apis/longhorn.io/v1beta2/namespaces/tmp/volumes", body)
    resp = api.delete("/api/v1/namespaces/tmp")
    assert resp.status == 200
    assert resp.body["status"]["phase"] == "Terminating"
    assert api.get("/api/v1/namespaces/tmp/configmaps/c").status == 404
    assert api.post("/api/v1/namespaces/tmp/configmaps", cm("new")).status == 403
    api.patch("/apis/longhorn.io/v1beta2/namespaces/tmp/volumes/v1", {"metadata": {"finalizers": None}})
    assert srv.get("v1", "Namespace", "tmp") is None


def test_garbage_collection_of_dependents(api: Any, srv: KubeAPIServer) -> None:
    owner = api.post(CM, cm("owner")).body
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    api.post(CM, {"metadata": {"name": "dep", "ownerReferences": [ref]}})
    api.post(CM, {"metadata": {"name": "orphan", "ownerReferences": [ref]}})
    api.delete(f"{CM}/owner")
    assert srv.get("v1", "ConfigMap", "dep", "default") is None
    owner2 = api.post(CM, cm("owner2")).body
    ref2 = {**ref, "name": "owner2", "uid": owner2["metadata"]["uid"]}
    api.post(CM, {"metadata": {"name": "kept", "ownerReferences": [ref2]}})
    api.delete(f"{CM}/owner2?propagationPolicy=Orphan")
    kept = srv.get("v1", "ConfigMap", "kept", "default")
    assert kept is not None
    assert "ownerReferences" not in kept["metadata"]


def test_builtin_defaults_come_back(api: Any) -> None:
    created = api.post(
        "/api/v1/namespaces/default/pods",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
    ).body
    assert created["spec"]["restartPolicy"] == "Always"
    assert created["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert created["status"]["phase"] == "Pending"
    ns = api.get("/api/v1/namespaces/default").body
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "default"


def test_scale_subresource(api: Any) -> None:
    deploy = {
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "a", "image": "x:1"}]},
            },
        },
    }
    api.post("/apis/apps/v1/namespaces/default/deployments", deploy)
    scale = api.get("/apis/apps/v1/namespaces/default/deployments/web/scale").body
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 1
    patched = api.patch("/apis/apps/v1/namespaces/default/deployments/web/scale", {"spec": {"replicas": 3}})
    assert patched.body["spec"]["replicas"] == 3
    assert api.get("/apis/apps/v1/namespaces/default/deployments/web").body["spec"]["replicas"] == 3


def test_backdoor_state_api(srv: KubeAPIServer) -> None:
    obj = srv.create(
        {
            "apiVersion": "velero.io/v1",
            "kind": "Schedule",
            "metadata": {"name": "s", "namespace": "default"},
            "spec": {"schedule": "@daily", "template": {}},
        }
    )
    assert obj["metadata"]["resourceVersion"]
    srv.update_status("velero.io/v1", "Schedule", "s", "default", {"phase": "Enabled"})
    current = srv.get("velero.io/v1", "Schedule", "s", "default")
    assert current is not None
    assert current["status"] == {"phase": "Enabled"}
    assert [o["metadata"]["name"] for o in srv.list("velero.io/v1", "Schedule")] == ["s"]
    srv.delete("velero.io/v1", "Schedule", "s", "default")
    assert srv.list("velero.io/v1", "Schedule") == []
    srv.create(cm("x") | {"metadata": {"name": "x", "namespace": "default"}})
    srv.reset()
    assert srv.get("v1", "ConfigMap", "x", "default") is None
    assert srv.get("v1", "Namespace", "kube-system") is not None


def test_creating_a_crd_serves_its_kind(api: Any) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}},
                        }
                    },
                }
            ],
        },
    }
    assert api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd).status == 201
    resources = api.get("/apis/example.com/v1").body["resources"]
    assert [r["name"] for r in resources] == ["widgets"]
    widgets = "/apis/example.com/v1/namespaces/default/widgets"
    widget: dict[str, Any] = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": "big"},
    }
    assert api.post(widgets, widget).status == 422
    widget["spec"]["size"] = 3
    assert api.post(widgets, widget).status == 201
    assert api.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com").status == 200
    assert api.get(widgets).status == 404
