"""velero_schedule / velero_schedule_info through ansible-playbook -vvv against the test API server.

The server validates every Schedule and Backup against the upstream Velero CRD schemas (422 on a wrong
type or enum, unknown fields pruned), so what the module writes is what a real cluster accepts. The
Velero controller is not there: where a test needs its reactions (phase Enabled / FailedValidation,
a Backup finishing) it plays them through the server's write hooks.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from lab.kubeapi.fixtures import KubeAPI
from lab.playbook import PlaybookRun, assert_no_secrets, four_runs, module_task, run_playbook, run_tasks, write_playbook

NS = "velero"
SCHEDULES = f"/apis/velero.io/v1/namespaces/{NS}/schedules"
BACKUPS = f"/apis/velero.io/v1/namespaces/{NS}/backups"
MODULE = "homelab.pi_cluster.velero_schedule"
INFO = "homelab.pi_cluster.velero_schedule_info"
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

DAILY = {"name": "daily", "schedule": "0 2 * * *", "excluded_namespaces": ["kube-system"], "ttl": "720h"}
WEEKLY = {"name": "weekly-full", "schedule": "0 3 * * 0", "include_cluster_resources": True, "ttl": "2160h"}


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def kube(kube_api: KubeAPI) -> KubeAPI:
    """The test API server with the velero namespace; modules run with this venv's interpreter."""
    server = kube_api.require_server()
    if server.get("v1", "Namespace", NS) is None:
        server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    server.clear_requests()
    kube_api.env = {**kube_api.env, "ANSIBLE_PYTHON_INTERPRETER": sys.executable}
    return kube_api


def task(args: dict[str, Any], name: str = "vs", ignore_errors: bool = False) -> dict[str, Any]:
    return module_task(MODULE, args, name, ignore_errors)


def run(kube: KubeAPI, tmp_path: Path, *tasks: dict[str, Any], **kwargs: Any) -> PlaybookRun:
    return run_tasks(tmp_path, tasks, env=kube.env, **kwargs)


def apply(kube: KubeAPI, tmp_path: Path, args: dict[str, Any]) -> PlaybookRun:
    result = run(kube, tmp_path, task(args))
    assert result.rc == 0, result.output[-4000:]
    return result


def schedule(kube: KubeAPI, name: str = "daily") -> dict[str, Any]:
    obj = kube.require_server().get("velero.io/v1", "Schedule", name, NS)
    assert obj is not None, f"schedule {name} not found"
    return obj


def writes(kube: KubeAPI) -> list[str]:
    return [f"{r.method} {r.path}" for r in kube.require_server().requests if r.method in WRITE_METHODS]


def assert_noop_costs_one_get(kube: KubeAPI, tmp_path: Path, args: dict[str, Any], name: str = "daily") -> None:
    """The issue's promise: a re-run with the same options makes one GET and no write."""
    server = kube.require_server()
    server.clear_requests()
    result = apply(kube, tmp_path, args)
    assert not result.task("vs").changed
    assert writes(kube) == []
    assert server.count("GET", f"{SCHEDULES}/{name}") == 1
    assert server.count() == 1, [f"{r.method} {r.path}" for r in server.requests if not r.discovery]


def enable_schedules(kube: KubeAPI) -> None:
    """Simulated Velero schedule controller: a valid schedule becomes Enabled."""

    def enable(server: Any, obj: dict[str, Any]) -> None:
        if (obj.get("status") or {}).get("phase") != "Enabled":
            meta = obj["metadata"]
            server.patch("velero.io/v1", "Schedule", meta["name"], meta["namespace"], {"status": {"phase": "Enabled"}})

    kube.require_server().on_write("Schedule", enable)


def finish_backups(kube: KubeAPI, status: dict[str, Any]) -> None:
    """Simulated Velero backup controller: every new Backup ends with ``status``."""

    def finish(server: Any, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        server.patch("velero.io/v1", "Backup", meta["name"], meta["namespace"], {"status": status})

    kube.require_server().on_write("Backup.velero.io", finish, delay=0.3)


# --------------------------------------------------------------------------- create / update / pause / delete


@pytest.mark.parametrize("args", [DAILY, WEEKLY], ids=["daily", "weekly-full"])
def test_reference_schedules_four_runs(kube: KubeAPI, tmp_path: Path, args: dict[str, Any]) -> None:
    runs = four_runs(write_playbook(tmp_path, [task(args)]), "vs", env=kube.env)
    check = runs[0].task("vs").result
    assert check["diff"]["before"] == {}
    assert check["diff"]["after"]["spec"]["schedule"] == args["schedule"]
    obj = schedule(kube, args["name"])
    template = obj["spec"]["template"]
    assert obj["spec"]["schedule"] == args["schedule"]
    assert template["ttl"] == {"720h": "720h0m0s", "2160h": "2160h0m0s"}[args["ttl"]]
    if "excluded_namespaces" in args:
        assert template["excludedNamespaces"] == ["kube-system"]
    else:
        assert template["includeClusterResources"] is True
        assert "excludedNamespaces" not in template
    assert "skipImmediately" not in obj["spec"]
    for result in runs:
        assert_no_secrets(result.output, [kube.require_server().token])
    assert_noop_costs_one_get(kube, tmp_path, args, args["name"])


def test_api_key_auth_is_never_logged(kube: KubeAPI, tmp_path: Path) -> None:
    """kubernetes.core's auth options work as task options, and the token stays out of -vvv output."""
    server = kube.require_server()
    env = {k: v for k, v in kube.env.items() if k != "K8S_AUTH_KUBECONFIG"}
    auth = {"host": server.url, "api_key": server.token, "validate_certs": False}
    result = run_playbook(write_playbook(tmp_path, [task({**DAILY, **auth})]), env=env)
    assert result.rc == 0, result.output[-3000:]
    assert result.task("vs").changed
    assert_no_secrets(result.output, [server.token])


UPDATES: dict[str, dict[str, Any]] = {
    "cron-and-durations": {
        "schedule": "CRON_TZ=Europe/Berlin 30 1 * * mon-fri",
        "ttl": "90d",
        "csi_snapshot_timeout": "15m",
        "item_operation_timeout": "2h",
    },
    "namespaces": {"included_namespaces": ["apps", "databases"], "excluded_namespaces": []},
    "old-resource-filters": {
        "included_resources": ["deployments", "persistentvolumeclaims"],
        "excluded_resources": ["events"],
        "include_cluster_resources": False,
    },
    "scoped-resource-filters": {
        "included_cluster_scoped_resources": ["persistentvolumes"],
        "excluded_cluster_scoped_resources": ["nodes"],
        "included_namespace_scoped_resources": ["*"],
        "excluded_namespace_scoped_resources": ["events", "events.events.k8s.io"],
    },
    "label-selector": {
        "label_selector": {
            "match_labels": {"backup": "yes"},
            "match_expressions": [{"key": "tier", "operator": "NotIn", "values": ["cache"]}],
        }
    },
    "or-label-selectors": {
        "or_label_selectors": [{"match_labels": {"app": "postgres"}}, {"match_labels": {"app": "redis"}}]
    },
    "locations-and-volumes": {
        "storage_location": "minio",
        "volume_snapshot_locations": ["longhorn"],
        "snapshot_volumes": True,
        "default_volumes_to_fs_backup": True,
        "snapshot_move_data": False,
        "datamover": "velero",
    },
    "hooks": {
        "hooks": [
            {
                "name": "fsfreeze",
                "included_namespaces": ["databases"],
                "label_selector": {"match_labels": {"app": "postgres"}},
                "pre": [{"exec": {"command": ["/sbin/fsfreeze", "--freeze", "/data"], "timeout": "30s"}}],
                "post": [{"exec": {"command": ["/sbin/fsfreeze", "--unfreeze", "/data"], "on_error": "Continue"}}],
            }
        ]
    },
    "ordering-policy-uploader": {
        "ordered_resources": {"statefulsets": ["databases/postgres", "databases/redis"]},
        "resource_policy": "velero-policies",
        "parallel_files_upload": 4,
        "volume_group_snapshot_label_key": "app",
    },
    "ownership-and-metadata": {
        "use_owner_references_in_backup": True,
        "labels": {"app.kubernetes.io/managed-by": "ansible"},
        "annotations": {"homelab.example/owner": "ops"},
        "backup_labels": {"tier": "nightly"},
    },
}


@pytest.mark.parametrize("group", list(UPDATES))
def test_update_each_field_group_four_runs(kube: KubeAPI, tmp_path: Path, group: str) -> None:
    apply(kube, tmp_path, DAILY)
    before = schedule(kube)
    args = {**DAILY, **UPDATES[group]}
    runs = four_runs(write_playbook(tmp_path, [task(args)]), "vs", env=kube.env)
    patch = runs[1].task("vs").result["patch"]
    assert patch, "an update must send a patch"
    after = schedule(kube)
    assert after["metadata"]["uid"] == before["metadata"]["uid"], "updated in place, not re-created"
    # the check run predicted exactly what the apply run produced
    predicted = runs[0].task("vs").result["schedule"]["spec"]
    assert predicted == after["spec"]
    template = after["spec"]["template"]
    if group == "cron-and-durations":
        assert after["spec"]["schedule"] == "CRON_TZ=Europe/Berlin 30 1 * * mon-fri"
        assert (template["ttl"], template["csiSnapshotTimeout"], template["itemOperationTimeout"]) == (
            "2160h0m0s",
            "15m0s",
            "2h0m0s",
        )
    elif group == "namespaces":
        assert template["includedNamespaces"] == ["apps", "databases"]
        assert "excludedNamespaces" not in template  # [] cleared it
    elif group == "label-selector":
        assert template["labelSelector"]["matchExpressions"] == [
            {"key": "tier", "operator": "NotIn", "values": ["cache"]}
        ]
    elif group == "hooks":
        hook = template["hooks"]["resources"][0]
        assert hook["pre"][0]["exec"]["timeout"] == "30s"
        assert hook["post"][0]["exec"]["onError"] == "Continue"
    elif group == "ordering-policy-uploader":
        assert template["orderedResources"] == {"statefulsets": "databases/postgres,databases/redis"}
        assert template["resourcePolicy"] == {"kind": "configmap", "name": "velero-policies"}
        assert template["uploaderConfig"] == {"parallelFilesUpload": 4}
    elif group == "ownership-and-metadata":
        assert after["spec"]["useOwnerReferencesInBackup"] is True
        assert after["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ansible"
        assert template["metadata"] == {"labels": {"tier": "nightly"}}
    assert_noop_costs_one_get(kube, tmp_path, args)


def test_pause_and_unpause_four_runs(kube: KubeAPI, tmp_path: Path) -> None:
    apply(kube, tmp_path, DAILY)
    four_runs(write_playbook(tmp_path, [task({**DAILY, "state": "paused"})]), "vs", env=kube.env)
    assert schedule(kube)["spec"]["paused"] is True
    resume = {**DAILY, "paused": False, "skip_immediately": True}
    runs = four_runs(write_playbook(tmp_path, [task(resume)], name="resume.yml"), "vs", env=kube.env)
    assert runs[1].task("vs").result["patch"] == {"spec": {"paused": False, "skipImmediately": True}}
    obj = schedule(kube)
    assert obj["spec"]["paused"] is False
    # the controller resets skipImmediately after use; that must not look like drift
    kube.require_server().patch("velero.io/v1", "Schedule", "daily", NS, {"spec": {"skipImmediately": False}})
    assert_noop_costs_one_get(kube, tmp_path, resume)


def test_delete_four_runs(kube: KubeAPI, tmp_path: Path) -> None:
    apply(kube, tmp_path, DAILY)
    four_runs(write_playbook(tmp_path, [task({"name": "daily", "state": "absent"})]), "vs", env=kube.env)
    assert kube.require_server().get("velero.io/v1", "Schedule", "daily", NS) is None


def test_adopts_a_schedule_written_by_the_velero_cli(kube: KubeAPI, tmp_path: Path) -> None:
    """`velero schedule create` writes canonical durations and extra defaults; same meaning = no change."""
    kube.require_server().create(
        {
            "apiVersion": "velero.io/v1",
            "kind": "Schedule",
            "metadata": {"name": "daily", "namespace": NS},
            "spec": {
                "schedule": "0 2 * * *",
                "skipImmediately": False,
                "useOwnerReferencesInBackup": False,
                "template": {
                    "csiSnapshotTimeout": "10m0s",
                    "itemOperationTimeout": "4h0m0s",
                    "excludedNamespaces": ["kube-system"],
                    "hooks": {},
                    "metadata": {},
                    "ttl": "720h0m0s",
                    "snapshotMoveData": False,
                },
            },
            "status": {"phase": "Enabled", "lastBackup": "2026-11-25T02:00:00Z"},
        }
    )
    assert_noop_costs_one_get(kube, tmp_path, {**DAILY, "ttl": "30d", "csi_snapshot_timeout": "600s"})


# --------------------------------------------------------------------------- wait / run_now


def test_wait_fails_with_the_schedules_validation_errors(kube: KubeAPI, tmp_path: Path) -> None:
    def reject(server: Any, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        server.patch(
            "velero.io/v1",
            "Schedule",
            meta["name"],
            meta["namespace"],
            {"status": {"phase": "FailedValidation", "validationErrors": ["backup storage location 'nas' not found"]}},
        )

    kube.require_server().on_write("Schedule", reject, delay=0.5)
    result = run(kube, tmp_path, task({**DAILY, "storage_location": "nas", "wait": True, "wait_timeout": 20}))
    assert result.rc != 0
    outcome = result.task("vs")
    assert outcome.failed
    assert "FailedValidation" in outcome.result["msg"]
    assert "backup storage location 'nas' not found" in outcome.result["msg"]


def test_wait_for_enabled(kube: KubeAPI, tmp_path: Path) -> None:
    def enable_later(server: Any, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        server.patch("velero.io/v1", "Schedule", meta["name"], meta["namespace"], {"status": {"phase": "Enabled"}})

    kube.require_server().on_write("Schedule", enable_later, delay=1.0)
    result = apply(kube, tmp_path, {**DAILY, "wait": True, "wait_timeout": 30})
    assert result.task("vs").result["schedule"]["status"]["phase"] == "Enabled"


def test_run_now_creates_a_backup_like_velero_cli(kube: KubeAPI, tmp_path: Path) -> None:
    enable_schedules(kube)
    finish_backups(kube, {"phase": "Completed"})
    args = {
        **DAILY,
        "labels": {"team": "ops"},
        "annotations": {"homelab.example/owner": "ops"},
        "use_owner_references_in_backup": True,
        "run_now": True,
        "wait": True,
        "run_now_timeout": 30,
    }
    result = apply(kube, tmp_path, args)
    outcome = result.task("vs")
    assert outcome.changed
    name = outcome.result["backup"]["metadata"]["name"]
    assert re.fullmatch(r"daily-\d{14}", name), name
    backup = kube.require_server().get("velero.io/v1", "Backup", name, NS)
    assert backup is not None
    assert backup["status"]["phase"] == "Completed"
    assert backup["metadata"]["labels"] == {"team": "ops", "velero.io/schedule-name": "daily"}
    assert backup["metadata"]["annotations"]["homelab.example/owner"] == "ops"
    sched = schedule(kube)
    assert backup["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "velero.io/v1",
            "kind": "Schedule",
            "name": "daily",
            "uid": sched["metadata"]["uid"],
            "controller": True,
        }
    ]
    assert backup["spec"] == sched["spec"]["template"]
    # template labels win over the schedule's labels, as in Velero's FromSchedule
    second = apply(kube, tmp_path, {**args, "backup_labels": {"tier": "adhoc"}})
    other = second.task("vs").result["backup"]
    assert other["metadata"]["labels"] == {"tier": "adhoc", "velero.io/schedule-name": "daily"}


def test_run_now_fails_with_velero_reason(kube: KubeAPI, tmp_path: Path) -> None:
    enable_schedules(kube)
    finish_backups(kube, {"phase": "Failed", "failureReason": "BackupStorageLocation minio is unavailable"})
    result = run(kube, tmp_path, task({**DAILY, "run_now": True, "wait": True, "run_now_timeout": 30}))
    outcome = result.task("vs")
    assert outcome.failed
    assert "phase Failed" in outcome.result["msg"]
    assert "BackupStorageLocation minio is unavailable" in outcome.result["msg"]
    assert outcome.result["backup"]["status"]["phase"] == "Failed"


def test_run_now_in_check_mode_writes_nothing(kube: KubeAPI, tmp_path: Path) -> None:
    apply(kube, tmp_path, DAILY)
    kube.require_server().clear_requests()
    result = run(kube, tmp_path, task({**DAILY, "run_now": True}), check=True)
    assert result.rc == 0
    assert result.task("vs").changed
    assert writes(kube) == []
    assert kube.require_server().list("velero.io/v1", "Backup", NS) == []


# --------------------------------------------------------------------------- bad input and faults

BAD_INPUTS: list[tuple[dict[str, Any], str]] = [
    ({"schedule": "0 2 * * 7"}, "7 is above the maximum 6"),
    ({"schedule": "0 0 2 * * *"}, "expected exactly 5 fields, found 6"),
    ({"schedule": "0 25 * * *"}, "25 is above the maximum 23"),
    ({"schedule": "@daily "}, "unrecognized descriptor"),
    ({"schedule": "@every 1d"}, 'unknown unit \\"d\\"'),
    ({"schedule": "CRON_TZ=Atlantis/Capital 0 2 * * *"}, "unknown time zone"),
    ({"schedule": "*/0 * * * *"}, "step of range"),
    ({"schedule": "0 2 * JANUARY *"}, "is not a number"),
    ({"ttl": "720"}, "missing unit in duration"),
    ({"ttl": "30 days"}, "ttl:"),
    ({"ttl": "-24h"}, "negative"),
    ({"csi_snapshot_timeout": "10min"}, "csi_snapshot_timeout:"),
    ({"item_operation_timeout": "4 h"}, "item_operation_timeout:"),
    ({"name": "Daily"}, "name: 'Daily' is not a valid name"),
    ({"name": "x" * 64}, "longer than 63 characters"),
    ({"namespace": "velero_system"}, "namespace:"),
    ({"excluded_namespaces": ["*"]}, "excluded_namespaces: cannot contain '*'"),
    ({"included_namespaces": ["apps"], "excluded_namespaces": ["apps"]}, "also lists included namespace(s) apps"),
    ({"included_resources": ["pods"], "included_cluster_scoped_resources": ["nodes"]}, "cannot be combined"),
    (
        {"label_selector": {"match_labels": {"a": "b"}}, "or_label_selectors": [{"match_labels": {"c": "d"}}]},
        "mutually exclusive",
    ),
    (
        {"label_selector": {"match_expressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]}},
        "takes no values",
    ),
    ({"label_selector": {"match_expressions": [{"key": "a", "operator": "Like", "values": ["b"]}]}}, "operator"),
    ({"hooks": [{"name": "freeze"}]}, "needs at least one 'pre' or 'post'"),
    ({"hooks": [{"name": "h", "pre": [{"exec": {"command": ["x"], "timeout": "soon"}}]}]}, "hooks[0].pre[0]"),
    ({"storage_location": "MinIO"}, "storage_location:"),
    ({"labels": {"team": "ops team"}}, "labels: label 'team' has invalid value"),
    ({"state": "paused", "paused": False}, "paused: is false but state is paused"),
    ({"state": "absent", "run_now": True}, "run_now: cannot be used with state: absent"),
]


def test_bad_inputs_fail_clearly_without_any_request(kube: KubeAPI, tmp_path: Path) -> None:
    tasks = [task({**DAILY, **args}, name=f"bad {i}", ignore_errors=True) for i, (args, _m) in enumerate(BAD_INPUTS)]
    tasks.append(task({"name": "daily", "schedule": "0 2 * * *"}, name="no schedule given", ignore_errors=True))
    tasks[-1][MODULE].pop("schedule")
    result = run(kube, tmp_path, *tasks)
    for i, (_args, message) in enumerate(BAD_INPUTS):
        outcome = result.task(f"bad {i}")
        assert outcome.failed, (i, outcome.result)
        assert message.replace('\\"', '"') in outcome.result["msg"], (i, outcome.result["msg"])
    assert "schedule: is required when state is present" in result.task("no schedule given").result["msg"]
    assert kube.require_server().count(exclude_discovery=False) == 0, "bad input must not reach the API"


def test_retries_transient_errors_and_conflicts(kube: KubeAPI, tmp_path: Path) -> None:
    server = kube.require_server()
    apply(kube, tmp_path, DAILY)
    server.faults.fail_next(2, status=503)
    server.faults.conflict_next(1)
    result = apply(kube, tmp_path, {**DAILY, "ttl": "48h"})
    assert result.task("vs").changed
    assert schedule(kube)["spec"]["template"]["ttl"] == "48h0m0s"
    assert server.count("PATCH", SCHEDULES) >= 2, "the 409 was retried with a fresh read"


def test_info_reports_phase_last_backup_and_latest_backup(kube: KubeAPI, tmp_path: Path) -> None:
    server = kube.require_server()
    apply(kube, tmp_path, DAILY)
    server.patch(
        "velero.io/v1", "Schedule", "daily", NS, {"status": {"phase": "Enabled", "lastBackup": "2026-11-25T02:00:00Z"}}
    )
    for stamp in ("20261124020000", "20261125020000"):
        server.create(
            {
                "apiVersion": "velero.io/v1",
                "kind": "Backup",
                "metadata": {"name": f"daily-{stamp}", "namespace": NS, "labels": {"velero.io/schedule-name": "daily"}},
                "spec": {"ttl": "720h0m0s"},
                "status": {"phase": "Completed"},
            }
        )
    result = run(kube, tmp_path, {"name": "info", INFO: {"include_backups": True}, "register": "out"})
    assert result.rc == 0, result.output[-3000:]
    (entry,) = result.task("info").result["schedules"]
    assert entry["phase"] == "Enabled"
    assert entry["last_backup"] == "2026-11-25T02:00:00Z"
    assert entry["ttl"] == "720h0m0s"
    assert entry["latest_backup"] == "daily-20261125020000"
    assert entry["latest_backup_phase"] == "Completed"


def test_module_defaults_group_configures_auth(kube: KubeAPI, tmp_path: Path) -> None:
    """Both modules are in the action group k8s, so one module_defaults block configures them."""
    env = {k: v for k, v in kube.env.items() if k != "K8S_AUTH_KUBECONFIG"}
    play = [
        {
            "name": "Schedules with auth from module_defaults",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "module_defaults": {"group/homelab.pi_cluster.k8s": {"kubeconfig": str(kube.kubeconfig)}},
            "tasks": [task(DAILY), {"name": "info", INFO: {"name": "daily"}}],
        }
    ]
    path = tmp_path / "defaults.yml"
    path.write_text(json.dumps(play), encoding="utf-8")
    result = run_playbook(path, env=env)
    assert result.rc == 0, result.output[-3000:]
    assert result.task("vs").changed
    assert [s["name"] for s in result.task("info").result["schedules"]] == ["daily"]
