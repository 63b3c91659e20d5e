"""Unit tests for the pure Velero logic in plugins/module_utils/_velero.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ansible_collections.homelab.pi_cluster.plugins.module_utils import _velero as v
from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import apply_merge_patch

NS = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("720h", 720 * 3600 * NS),
        ("720h0m0s", 720 * 3600 * NS),
        ("1h30m", 5400 * NS),
        ("1.5h", 5400 * NS),
        (".5s", NS // 2),
        ("5.s", 5 * NS),
        ("+10m", 600 * NS),
        ("-1h", -3600 * NS),
        ("300ms", 300_000_000),
        ("1us", 1_000),
        ("1\u00b5s", 1_000),
        ("1\u03bcs", 1_000),
        ("2ns", 2),
        ("1h1h", 7200 * NS),
    ],
)
def test_parse_go_duration(text: str, ns: int) -> None:
    assert v.parse_go_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid duration"),
        ("1", "missing unit"),
        ("30d", 'unknown unit "d"'),
        ("h", "invalid duration"),
        (".h", "invalid duration"),
        ("1hx", 'unknown unit "hx"'),
        ("-", "invalid duration"),
        ("9999999999h", "invalid duration"),
    ],
)
def test_parse_go_duration_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        v.parse_go_duration(text)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (720 * 3600 * NS, "720h0m0s"),
        (90 * NS, "1m30s"),
        (NS + NS // 2, "1.5s"),
        (61 * NS + NS // 2, "1m1.5s"),
        (600 * NS, "10m0s"),
        (1_500, "1.5\u00b5s"),
        (300_000_000, "300ms"),
        (7, "7ns"),
        (-3600 * NS, "-1h0m0s"),
    ],
)
def test_format_go_duration(ns: int, text: str) -> None:
    assert v.format_go_duration(ns) == text
    assert v.parse_go_duration(text) == ns


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("720h", "720h0m0s"),
        ("30d", "720h0m0s"),
        ("90d", "2160h0m0s"),
        ("1d12h", "36h0m0s"),
        ("10m", "10m0s"),
        ("0", "0s"),
    ],
)
def test_parse_duration_option(value: str, canonical: str) -> None:
    assert v.parse_duration_option("ttl", value) == canonical


@pytest.mark.parametrize("value", ["30", "30days", "-1h", "1d-2h", "1w", "abc", ""])
def test_parse_duration_option_rejects(value: str) -> None:
    with pytest.raises(v.VeleroInputError, match=r"^ttl: "):
        v.parse_duration_option("ttl", value)


def test_durations_equal() -> None:
    assert v.durations_equal("720h", "720h0m0s")
    assert v.durations_equal("43200m", "720h")
    assert not v.durations_equal("720h", "721h")
    assert not v.durations_equal("720h", None)


@pytest.mark.parametrize(
    "spec",
    [
        "0 2 * * *",
        "0 3 * * 0",
        "0 3 * * sun",
        "0 3 * * SUN",
        "*/15 * * * *",
        "0 0 1 jan-dec ?",
        "0 0 1,15 * *",
        "5-10/2 * * * mon-fri",
        "0 2 * * 1,,3",
        "@daily",
        "@midnight",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
        "@hourly",
        "@every 6h",
        "@every 1h30m",
        "CRON_TZ=Europe/Berlin 0 2 * * *",
        "TZ=UTC 0 2 * * *",
        "CRON_TZ=America/New_York @daily",
        "  0   2 * * *  ",
    ],
)
def test_cron_accepts(spec: str) -> None:
    v.validate_cron(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("0 2 * *", "exactly 5 fields, found 4"),
        ("0 0 2 * * *", "exactly 5 fields, found 6"),
        ("0 2 * * 7", "7 is above the maximum 6"),
        ("60 * * * *", "60 is above the maximum 59"),
        ("0 24 * * *", "24 is above the maximum 23"),
        ("0 0 0 * *", "0 is below the minimum 1"),
        ("0 0 * 13 *", "13 is above the maximum 12"),
        ("0 0 * * 5-1", "beyond its end"),
        ("*/0 * * * *", "step of range"),
        ("1-2-3 * * * *", "too many hyphens"),
        ("1/2/3 * * * *", "too many slashes"),
        ("0 0 * * L", "not a number"),
        ("@weekday", "unrecognized descriptor"),
        ("@Daily", "unrecognized descriptor"),
        ("@every 6", "missing unit"),
        ("@every 1d", 'unknown unit "d"'),
        ("CRON_TZ=Mars/Olympus 0 2 * * *", "unknown time zone"),
        ("CRON_TZ=UTC", "followed by a space"),
        ("0 0 * * monday", "not a number"),
    ],
)
def test_cron_rejects(spec: str, message: str) -> None:
    with pytest.raises(v.VeleroInputError, match=r"^schedule: invalid cron expression") as info:
        v.validate_cron(spec)
    assert message in str(info.value)


def _params(**overrides: object) -> dict[str, object]:
    params: dict[str, object] = {"name": "daily", "namespace": "velero", "state": "present", "schedule": "0 2 * * *"}
    for option in list(v.TEMPLATE_OPTIONS) + list(v.SPEC_OPTIONS) + ["labels", "annotations", "skip_immediately"]:
        params.setdefault(option, None)
    params.update(overrides)
    return params


def test_build_schedule_reference_daily() -> None:
    params = _params(excluded_namespaces=["kube-system"], ttl="720h", storage_location="default")
    v.validate_options(params)
    obj = v.build_schedule(params)
    assert obj == {
        "apiVersion": "velero.io/v1",
        "kind": "Schedule",
        "metadata": {"name": "daily", "namespace": "velero"},
        "spec": {
            "schedule": "0 2 * * *",
            "template": {"excludedNamespaces": ["kube-system"], "ttl": "720h0m0s", "storageLocation": "default"},
        },
    }


def test_build_schedule_full() -> None:
    params = _params(
        label_selector={
            "match_labels": {"app": "db"},
            "match_expressions": [{"key": "tier", "operator": "In", "values": ["a"]}],
        },
        hooks=[
            {
                "name": "freeze",
                "included_namespaces": ["db"],
                "pre": [{"exec": {"command": ["fsfreeze", "-f", "/data"], "on_error": "Fail", "timeout": "30s"}}],
                "post": [{"exec": {"command": ["fsfreeze", "-u", "/data"], "container": "db"}}],
            }
        ],
        ordered_resources={"pods": ["ns1/a", "ns1/b"], "persistentvolumes": "pv1"},
        resource_policy="policy-cm",
        parallel_files_upload=4,
        backup_labels={"team": "ops"},
        use_owner_references_in_backup=True,
        paused=True,
        skip_immediately=True,
        labels={"app.kubernetes.io/managed-by": "ansible"},
        csi_snapshot_timeout="10m",
    )
    v.validate_options(params)
    spec = v.build_schedule(params)["spec"]
    template = spec["template"]
    assert template["labelSelector"] == {
        "matchLabels": {"app": "db"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}],
    }
    assert template["hooks"]["resources"][0]["pre"] == [
        {"exec": {"command": ["fsfreeze", "-f", "/data"], "onError": "Fail", "timeout": "30s"}}
    ]
    assert template["orderedResources"] == {"pods": "ns1/a,ns1/b", "persistentvolumes": "pv1"}
    assert template["resourcePolicy"] == {"kind": "configmap", "name": "policy-cm"}
    assert template["uploaderConfig"] == {"parallelFilesUpload": 4}
    assert template["metadata"] == {"labels": {"team": "ops"}}
    assert template["csiSnapshotTimeout"] == "10m0s"
    assert spec["useOwnerReferencesInBackup"] is True
    assert spec["paused"] is True
    assert spec["skipImmediately"] is True


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": "Daily"}, "name", "not a valid name"),
        ({"name": "x" * 64}, "name", "longer than 63"),
        ({"namespace": "velero_ns"}, "namespace", "not a valid name"),
        ({"schedule": None}, "schedule", "required"),
        ({"schedule": "0 2 * * 7"}, "schedule", "above the maximum 6"),
        ({"ttl": "30"}, "ttl", "missing unit"),
        (
            {"included_resources": ["pods"], "included_namespace_scoped_resources": ["pods"]},
            "included_resources",
            "mix",
        ),
        ({"excluded_namespaces": ["*"]}, "excluded_namespaces", "cannot contain '*'"),
        ({"included_namespaces": ["a"], "excluded_namespaces": ["a"]}, "excluded_namespaces", "also lists"),
        ({"storage_location": "My BSL"}, "storage_location", "not a valid name"),
        ({"labels": {"bad key!": "x"}}, "labels", "not a valid label key"),
        ({"labels": {"ok": "bad value!"}}, "labels", "invalid value"),
        (
            {"label_selector": {"match_expressions": [{"key": "a", "operator": "In"}]}},
            "label_selector.match",
            "at least one",
        ),
        (
            {"label_selector": {"match_expressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}},
            "label_selector",
            "no values",
        ),
        ({"hooks": [{"name": "h"}]}, "hooks[0]", "pre' or 'post"),
        (
            {"hooks": [{"name": "h", "pre": [{"exec": {"command": []}}]}]},
            "hooks[0].pre[0].exec.command",
            "at least one",
        ),
        (
            {"hooks": [{"name": "h", "pre": [{"exec": {"command": ["x"], "timeout": "5 minutes"}}]}]},
            "hooks[0].pre[0].exec.timeout",
            "not a duration",
        ),
        ({"parallel_files_upload": 0}, "parallel_files_upload", "1 or more"),
        ({"backup_labels": {"k": "v" * 64}}, "backup_labels", "invalid value"),
        ({"csi_snapshot_timeout": "-5m"}, "csi_snapshot_timeout", "negative"),
    ],
)
def test_bad_options(overrides: dict[str, object], field: str, message: str) -> None:
    params = _params(**overrides)
    with pytest.raises(v.VeleroInputError) as info:
        v.validate_options(params)
        v.build_schedule(params)
    assert str(info.value).startswith(field)
    assert message in str(info.value)


def _live(**template: object) -> dict[str, object]:
    return {
        "apiVersion": "velero.io/v1",
        "kind": "Schedule",
        "metadata": {"name": "daily", "namespace": "velero", "uid": "u-1", "labels": {"other": "x"}},
        "spec": {"schedule": "0 2 * * *", "skipImmediately": False, "template": dict(template)},
        "status": {"phase": "Enabled", "lastBackup": "2026-01-01T02:00:00Z"},
    }


def test_patch_empty_when_equal_after_parsing() -> None:
    live = _live(ttl="720h0m0s", excludedNamespaces=["kube-system", "a"], csiSnapshotTimeout="10m")
    params = _params(ttl="30d", excluded_namespaces=["a", "kube-system"], csi_snapshot_timeout="600s")
    assert v.schedule_patch(live, params) == {}


def test_patch_ignores_controller_fields_and_unset_options() -> None:
    live = _live(ttl="720h0m0s", storageLocation="default", snapshotVolumes=True)
    assert v.schedule_patch(live, _params(ttl="720h")) == {}


def test_patch_only_changed_fields() -> None:
    live = _live(ttl="720h0m0s", excludedNamespaces=["kube-system"])
    patch = v.schedule_patch(
        live, _params(ttl="2160h", excluded_namespaces=[], paused=True, labels={"other": "x", "new": "y"})
    )
    assert patch == {
        "metadata": {"labels": {"new": "y"}},
        "spec": {"paused": True, "template": {"ttl": "2160h0m0s", "excludedNamespaces": None}},
    }
    merged = apply_merge_patch(live, patch)
    assert "excludedNamespaces" not in merged["spec"]["template"]
    assert merged["metadata"]["labels"] == {"other": "x", "new": "y"}
    assert merged["status"] == live["status"]


def test_skip_immediately_only_sent_on_unpause() -> None:
    live = _live()
    assert v.schedule_patch(live, _params(skip_immediately=True)) == {}
    live["spec"]["paused"] = True  # type: ignore[index]
    assert v.schedule_patch(live, _params(skip_immediately=True, paused=False)) == {
        "spec": {"paused": False, "skipImmediately": True}
    }


def test_patch_hooks_selector_compare_semantically() -> None:
    live = _live(
        labelSelector={"matchExpressions": [{"key": "a", "operator": "In", "values": ["2", "1"]}]},
        hooks={"resources": [{"name": "h", "pre": [{"exec": {"command": ["x"], "timeout": "30s"}}]}]},
    )
    params = _params(
        label_selector={"match_expressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
        hooks=[{"name": "h", "pre": [{"exec": {"command": ["x"], "timeout": "0.5m"}}]}],
    )
    assert v.schedule_patch(live, params) == {}


def test_backup_from_schedule_uses_schedule_labels_and_owner() -> None:
    live = _live(ttl="720h0m0s", resourcePolicy={"kind": "ConfigMap", "name": "p"})
    live["metadata"]["annotations"] = {"note": "n"}  # type: ignore[index]
    live["spec"]["useOwnerReferencesInBackup"] = True  # type: ignore[index]
    backup = v.backup_from_schedule(live, datetime(2026, 11, 26, 1, 2, 3, tzinfo=UTC))
    assert backup["metadata"] == {
        "name": "daily-20261126010203",
        "namespace": "velero",
        "labels": {"other": "x", "velero.io/schedule-name": "daily"},
        "annotations": {"note": "n"},
        "ownerReferences": [
            {"apiVersion": "velero.io/v1", "kind": "Schedule", "name": "daily", "uid": "u-1", "controller": True}
        ],
    }
    assert backup["spec"] == {"ttl": "720h0m0s", "resourcePolicy": {"kind": "configmap", "name": "p"}}


def test_backup_from_schedule_prefers_template_labels() -> None:
    live = _live(metadata={"labels": {"team": "ops"}})
    backup = v.backup_from_schedule(live, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert backup["metadata"]["labels"] == {"team": "ops", "velero.io/schedule-name": "daily"}
    assert "ownerReferences" not in backup["metadata"]
    assert "annotations" not in backup["metadata"]


def test_backup_name_is_utc() -> None:
    berlin = timezone(timedelta(hours=1))
    assert v.backup_name("s", datetime(2026, 1, 1, 3, 0, 0, tzinfo=berlin)) == "s-20260101020000"


def test_backup_failure_message() -> None:
    backup = {"metadata": {"name": "b"}, "status": {"phase": "Failed", "failureReason": "bsl unavailable", "errors": 2}}
    message = v.backup_failure(backup)
    assert "phase Failed" in message and "bsl unavailable" in message and "2 error(s)" in message
