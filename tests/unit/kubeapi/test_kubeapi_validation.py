"""Custom resources are held against the upstream CRD schemas; built-ins get the real server's light checks."""

from __future__ import annotations

from typing import Any

import pytest
from lab.kubeapi import KubeAPIServer

VELERO = "/apis/velero.io/v1/namespaces/default"
LONGHORN = "/apis/longhorn.io/v1beta2/namespaces/default"
HELM = "/apis/helm.cattle.io/v1/namespaces/default"


def backup(name: str = "b1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": name}, "spec": spec}


def schedule(name: str = "daily", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "velero.io/v1",
        "kind": "Schedule",
        "metadata": {"name": name},
        "spec": {"schedule": "0 3 * * *", "template": {}, **spec},
    }


def volume(name: str = "v1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "longhorn.io/v1beta2", "kind": "Volume", "metadata": {"name": name}, "spec": spec}


def test_wrong_type_is_422_with_the_real_status_body(api: Any, srv: KubeAPIServer) -> None:
    resp = api.post(f"{VELERO}/backups", backup(ttl=5))
    assert resp.status == 422
    assert resp.body["reason"] == "Invalid"
    assert resp.body["message"] == (
        'Backup.velero.io "b1" is invalid: spec.ttl: Invalid value: "integer": '
        'spec.ttl in body must be of type string: "integer"'
    )
    assert resp.body["details"] == {
        "name": "b1",
        "group": "velero.io",
        "kind": "Backup",
        "causes": [
            {
                "reason": "FieldValueTypeInvalid",
                "field": "spec.ttl",
                "message": 'Invalid value: "integer": spec.ttl in body must be of type string: "integer"',
            }
        ],
    }
    assert srv.get("velero.io/v1", "Backup", "b1", "default") is None


def test_schedule_ttl_lives_in_the_template(api: Any) -> None:
    resp = api.post(f"{VELERO}/schedules", schedule(template={"ttl": 5}))
    assert resp.status == 422
    assert [c["field"] for c in resp.body["details"]["causes"]] == ["spec.template.ttl"]


def test_schedule_has_no_top_level_ttl_so_it_is_pruned(api: Any) -> None:
    resp = api.post(f"{VELERO}/schedules", schedule(ttl=5))
    assert resp.status == 201
    assert "ttl" not in resp.body["spec"]
    assert resp.warnings == ['unknown field "spec.ttl"']


def test_unknown_enum_value_is_422_listing_supported_values(api: Any) -> None:
    resp = api.post(f"{LONGHORN}/volumes", volume(accessMode="foo"))
    assert resp.status == 422
    cause = resp.body["details"]["causes"][0]
    assert cause["reason"] == "FieldValueNotSupported"
    assert cause["field"] == "spec.accessMode"
    assert cause["message"] == 'Unsupported value: "foo": supported values: "rwo", "rwop", "rwx"'


def test_required_field_missing(api: Any) -> None:
    body = schedule()
    del body["spec"]["schedule"]
    resp = api.post(f"{VELERO}/schedules", body)
    assert resp.status == 422
    assert resp.body["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.schedule"}
    ]


def test_several_errors_are_aggregated_in_brackets(api: Any) -> None:
    resp = api.post(f"{LONGHORN}/volumes", volume(accessMode="foo", numberOfReplicas="three"))
    assert resp.status == 422
    assert resp.body["message"].startswith('Volume.longhorn.io "v1" is invalid: [')
    assert {c["field"] for c in resp.body["details"]["causes"]} == {"spec.accessMode", "spec.numberOfReplicas"}


def test_unknown_fields_are_pruned_at_every_level_with_warnings(api: Any, srv: KubeAPIServer) -> None:
    body = schedule(bogus=1, template={"ttl": "72h", "nested": {"x": 1}})
    body["metadata"]["unknownMeta"] = "x"
    body["extraTop"] = True
    resp = api.post(f"{VELERO}/schedules", body)
    assert resp.status == 201, resp.body
    stored = srv.get("velero.io/v1", "Schedule", "daily", "default")
    assert stored is not None
    assert stored["spec"] == {"schedule": "0 3 * * *", "template": {"ttl": "72h"}}
    assert "extraTop" not in stored
    assert "unknownMeta" not in stored["metadata"]
    assert 'unknown field "spec.bogus"' in " ".join(resp.warnings)
    assert 'unknown field "spec.template.nested"' in " ".join(resp.warnings)


def test_strict_field_validation_rejects_unknown_fields(api: Any, srv: KubeAPIServer) -> None:
    resp = api.post(f"{VELERO}/schedules?fieldValidation=Strict", schedule(bogus=1))
    assert resp.status == 400
    assert 'unknown field "spec.bogus"' in resp.body["message"]
    assert srv.get("velero.io/v1", "Schedule", "daily", "default") is None


def test_preserve_unknown_fields_keeps_arbitrary_values(api: Any) -> None:
    values = {"deep": {"anything": [1, "two", {"three": None}]}, "flag": True}
    chart = {
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChart",
        "metadata": {"name": "traefik"},
        "spec": {"chart": "traefik", "values": values, "junk": 1},
    }
    resp = api.post(f"{HELM}/helmcharts", chart)
    assert resp.status == 201, resp.body
    assert resp.body["spec"]["values"] == values
    assert "junk" not in resp.body["spec"]


def test_int_or_string_accepts_both_and_rejects_others(api: Any) -> None:
    chart: dict[str, Any] = {
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChart",
        "metadata": {"name": "c"},
        "spec": {"chart": "x", "set": {"replicas": 2, "image.tag": "v1"}},
    }
    assert api.post(f"{HELM}/helmcharts", chart).status == 201
    chart["metadata"]["name"] = "d"
    chart["spec"]["set"] = {"enabled": True}
    resp = api.post(f"{HELM}/helmcharts", chart)
    assert resp.status == 422
    assert resp.body["details"]["causes"][0]["field"] == "spec.set.enabled"


def test_defaults_from_the_schema_are_applied(api: Any) -> None:
    job = {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "RecurringJob",
        "metadata": {"name": "nightly"},
        "spec": {"cron": "0 2 * * *", "task": "backup", "retain": 7, "concurrency": 1},
    }
    resp = api.post(f"{LONGHORN}/recurringjobs", job)
    assert resp.status == 201, resp.body
    assert resp.body["spec"]["retentionPolicy"] == "count-based"


def test_non_nullable_null_is_dropped_and_nullable_kept(api: Any) -> None:
    resp = api.post(f"{VELERO}/backups", backup(ttl=None, includedNamespaces=None))
    assert resp.status == 201, resp.body
    assert "ttl" not in resp.body["spec"]
    assert resp.body["spec"]["includedNamespaces"] is None  # declared nullable: true upstream


def test_date_time_format_is_checked(api: Any) -> None:
    body = backup()
    body["status"] = {"expiration": "tomorrow"}  # Backup has no status subresource: status is validated too
    resp = api.post(f"{VELERO}/backups", body)
    assert resp.status == 422
    assert resp.body["details"]["causes"][0]["message"] == (
        'Invalid value: "tomorrow": status.expiration in body must be of type date-time: "tomorrow"'
    )
    body["status"] = {"expiration": "2026-11-26T03:00:00Z"}
    assert api.post(f"{VELERO}/backups", body).status == 201


def test_minimum_and_maximum_are_checked(api: Any) -> None:
    resp = api.post(f"{LONGHORN}/volumes", volume(rebuildConcurrentSyncLimit=9))
    assert resp.status == 422
    assert resp.body["details"]["causes"][0] == {
        "reason": "FieldValueInvalid",
        "field": "spec.rebuildConcurrentSyncLimit",
        "message": "Invalid value: 9: spec.rebuildConcurrentSyncLimit in body should be less than or equal to 5",
    }
    resp = api.post(f"{LONGHORN}/volumes", volume(rebuildConcurrentSyncLimit=-1))
    assert "should be greater than or equal to 0" in resp.body["details"]["causes"][0]["message"]


def test_cel_rules_from_the_crd(api: Any) -> None:
    assert api.post(f"{LONGHORN}/volumes", volume(encrypted=False, size="1073741824")).status == 201
    resp = api.patch(f"{LONGHORN}/volumes/v1", {"spec": {"encrypted": True}})
    assert resp.status == 422
    assert resp.body["details"]["causes"][0] == {
        "reason": "FieldValueInvalid",
        "field": "spec.encrypted",
        "message": 'Invalid value: "boolean": Encrypted is immutable',
    }
    job = {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "RecurringJob",
        "metadata": {"name": "j"},
        "spec": {"task": "backup", "retainAge": "-1h"},
    }
    resp = api.post(f"{LONGHORN}/recurringjobs", job)
    assert resp.status == 422
    assert "retainAge must be a positive duration" in resp.body["message"]


def test_kind_and_api_version_must_match_the_url(api: Any) -> None:
    body = volume()
    body["kind"] = "Engine"
    assert api.post(f"{LONGHORN}/volumes", body).status == 400


# ----------------------------------------------------------------------------- built-ins


@pytest.mark.parametrize(
    ("path", "body", "field", "reason"),
    [
        ("/api/v1/nodes", {"metadata": {"name": "Bad_Name"}}, "metadata.name", "FieldValueInvalid"),
        ("/api/v1/namespaces", {"metadata": {"name": "a.b"}}, "metadata.name", "FieldValueInvalid"),
        (
            "/api/v1/nodes",
            {"metadata": {"name": "n1", "labels": {"bad key": "v"}}},
            "metadata.labels",
            "FieldValueInvalid",
        ),
        (
            "/api/v1/nodes",
            {"metadata": {"name": "n1", "labels": {"k": "-bad-"}}},
            "metadata.labels",
            "FieldValueInvalid",
        ),
        (
            "/api/v1/nodes",
            {"metadata": {"name": "n1", "labels": {"x" * 64: "v"}}},
            "metadata.labels",
            "FieldValueInvalid",
        ),
        (
            "/api/v1/nodes",
            {"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}},
            "spec.taints[0].effect",
            "FieldValueNotSupported",
        ),
        (
            "/api/v1/nodes",
            {"metadata": {"name": "n1"}, "spec": {"taints": [{"effect": "NoSchedule"}]}},
            "spec.taints[0].key",
            "FieldValueRequired",
        ),
        (
            "/api/v1/namespaces/default/pods",
            {"metadata": {"name": "p"}, "spec": {"containers": []}},
            "spec.containers",
            "FieldValueRequired",
        ),
        (
            "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
            {"metadata": {"name": "p"}, "spec": {"minAvailable": 1, "maxUnavailable": 1, "selector": {}}},
            "spec",
            "FieldValueInvalid",
        ),
    ],
)
def test_builtin_validation(api: Any, path: str, body: dict[str, Any], field: str, reason: str) -> None:
    resp = api.post(path, body)
    assert resp.status == 422, resp.body
    assert resp.body["reason"] == "Invalid"
    assert (field, reason) in [(c["field"], c["reason"]) for c in resp.body["details"]["causes"]]


def test_builtin_taint_message_matches_the_real_server(api: Any) -> None:
    api.post("/api/v1/nodes", {"metadata": {"name": "n1"}})
    resp = api.patch("/api/v1/nodes/n1", {"spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}})
    assert resp.status == 422
    assert resp.body["message"] == (
        'Node "n1" is invalid: spec.taints[0].effect: Unsupported value: "Sometimes": supported values: '
        '"NoSchedule", "PreferNoSchedule", "NoExecute"'
    )


def test_secret_string_data_is_folded_into_data(api: Any) -> None:
    resp = api.post("/api/v1/namespaces/default/secrets", {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    assert resp.status == 201
    assert resp.body["data"] == {"k": "dg=="}
    assert "stringData" not in resp.body
    assert resp.body["type"] == "Opaque"


def test_builtin_unknown_fields_are_dropped_with_a_warning(api: Any) -> None:
    body = {
        "metadata": {"name": "n1"},
        "spec": {"unschedulabe": True, "taints": [{"key": "k", "effect": "NoSchedule", "efect": "x"}]},
    }
    resp = api.post("/api/v1/nodes", body)
    assert resp.status == 201, resp.body
    assert resp.body["spec"] == {"taints": [{"key": "k", "effect": "NoSchedule"}]}
    assert set(resp.warnings) == {'unknown field "spec.unschedulabe"', 'unknown field "spec.taints[0].efect"'}
    strict = api.post("/api/v1/nodes?fieldValidation=Strict", {**body, "metadata": {"name": "n2"}})
    assert strict.status == 400


def test_builtin_wrong_json_type_is_a_decode_error(api: Any) -> None:
    resp = api.post("/api/v1/nodes", {"metadata": {"name": "n1", "labels": {"rack": 3}}})
    assert resp.status == 400
    assert resp.body["reason"] == "BadRequest"
    assert resp.body["message"] == (
        'Node in version "v1" cannot be handled as a Node: json: cannot unmarshal number into Go struct field '
        "ObjectMeta.metadata.labels of type string"
    )
    quantities = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i:1", "resources": {"limits": {"cpu": 1, "memory": "64Mi"}}}]},
    }
    assert api.post("/api/v1/namespaces/default/pods", quantities).status == 201


def test_pvc_resize_rules(api: Any, srv: KubeAPIServer) -> None:
    pvcs = "/api/v1/namespaces/default/persistentvolumeclaims"
    claim = {
        "metadata": {"name": "data"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "longhorn",
            "resources": {"requests": {"storage": "10Gi"}},
        },
    }
    assert api.post(pvcs, claim).status == 201
    grow = {"spec": {"resources": {"requests": {"storage": "20Gi"}}}}
    unbound = api.patch(f"{pvcs}/data", grow)
    assert unbound.status == 422  # an unbound claim's spec is immutable
    assert unbound.body["details"]["causes"][0]["field"] == "spec"
    srv.update_status(
        "v1", "PersistentVolumeClaim", "data", "default", {"phase": "Bound", "capacity": {"storage": "10Gi"}}
    )
    no_class = api.patch(f"{pvcs}/data", grow)
    assert no_class.status == 403
    assert no_class.body["message"] == (
        'persistentvolumeclaims "data" is forbidden: only dynamically provisioned pvc can be resized and the '
        "storageclass that provisions the pvc must support resize"
    )
    srv.create(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "longhorn"},
            "provisioner": "driver.longhorn.io",
            "allowVolumeExpansion": True,
        }
    )
    assert api.patch(f"{pvcs}/data", grow).status == 200
    shrink = api.patch(f"{pvcs}/data", {"spec": {"resources": {"requests": {"storage": "5Gi"}}}})
    assert shrink.status == 422
    assert shrink.body["details"]["causes"][0]["message"] == "Forbidden: field can not be less than status.capacity"
    other = api.patch(f"{pvcs}/data", {"spec": {"accessModes": ["ReadWriteMany"]}})
    assert other.status == 422
