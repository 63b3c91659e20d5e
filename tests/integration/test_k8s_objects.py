"""k8s_objects through ansible-playbook -vvv against the test API server.

The server validates the Longhorn and HelmChart custom resources against their upstream CRD schemas and
serves a kind only while its CRD exists, so "a CRD the Helm controller installs later" is played by
deleting the RecurringJob CRD and re-creating it from a write hook on the HelmChart.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import pytest
from lab.kubeapi.fixtures import KubeAPI
from lab.playbook import PlaybookRun, assert_no_secrets, four_runs, module_task, run_tasks, write_playbook

MODULE = "homelab.pi_cluster.k8s_objects"
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
RJ_CRD = "recurringjobs.longhorn.io"
PASSWORD = "Xy7-integration-pw-41"
ACCESS_KEY = "AKIA-k8s-objects-test"

NAMESPACE: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "longhorn-system"}}
APPS: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Namespace",
    "metadata": {"name": "apps", "labels": {"team": "homelab"}},
}
HELMCHART: dict[str, Any] = {
    "apiVersion": "helm.cattle.io/v1",
    "kind": "HelmChart",
    "metadata": {"name": "longhorn", "namespace": "kube-system"},
    "spec": {
        "repo": "https://charts.longhorn.io",
        "chart": "longhorn",
        "version": "1.7.2",
        "targetNamespace": "longhorn-system",
        "valuesContent": "defaultSettings:\n  defaultReplicaCount: 2\n",
    },
}
STORAGECLASS: dict[str, Any] = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {"name": "longhorn-2r"},
    "provisioner": "driver.longhorn.io",
    "allowVolumeExpansion": True,
    "reclaimPolicy": "Delete",
    "parameters": {"numberOfReplicas": "2", "staleReplicaTimeout": "30"},
}
SECRET: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "backup-credentials", "namespace": "apps"},
    "type": "Opaque",
    "stringData": {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": PASSWORD},
}
RECURRING_JOB: dict[str, Any] = {
    "apiVersion": "longhorn.io/v1beta2",
    "kind": "RecurringJob",
    "metadata": {"name": "daily-snapshot", "namespace": "longhorn-system"},
    "spec": {"cron": "0 3 * * *", "task": "snapshot", "groups": ["default"], "retain": 7, "concurrency": 2},
}
DEFINITIONS = [NAMESPACE, APPS, HELMCHART, STORAGECLASS, SECRET, RECURRING_JOB]
SECRETS = [PASSWORD, ACCESS_KEY, base64.b64encode(PASSWORD.encode()).decode()]


@pytest.fixture
def kube(kube_api: KubeAPI) -> KubeAPI:
    server = kube_api.require_server()
    if server.get("v1", "Namespace", "kube-system") is None:
        server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}})
    server.clear_requests()
    kube_api.env = {**kube_api.env, "ANSIBLE_PYTHON_INTERPRETER": sys.executable}
    return kube_api


def task(args: dict[str, Any], name: str = "objects", ignore_errors: bool = False) -> dict[str, Any]:
    return module_task(MODULE, args, name, ignore_errors)


def run(kube: KubeAPI, tmp_path: Path, *tasks: dict[str, Any], **kwargs: Any) -> PlaybookRun:
    return run_tasks(tmp_path, tasks, env=kube.env, **kwargs)


def apply(kube: KubeAPI, tmp_path: Path, args: dict[str, Any], **kwargs: Any) -> PlaybookRun:
    result = run(kube, tmp_path, task(args), **kwargs)
    assert result.rc == 0, result.output[-4000:]
    return result


def writes(kube: KubeAPI) -> list[str]:
    return [f"{r.method} {r.path}" for r in kube.require_server().requests if r.method in WRITE_METHODS]


def actions(result: PlaybookRun, name: str = "objects") -> list[str]:
    return [entry["action"] for entry in result.task(name).result["objects"]]


def test_four_runs_then_noop_costs_one_get_per_object(kube: KubeAPI, tmp_path: Path) -> None:
    server = kube.require_server()
    playbook = write_playbook(tmp_path, [task({"definitions": DEFINITIONS})])
    runs = four_runs(playbook, "objects", env=kube.env)
    assert actions(runs[0]) == ["created"] * 6, "check mode predicts objects in namespaces it would create"
    assert actions(runs[1]) == ["created"] * 6
    assert actions(runs[2]) == actions(runs[3]) == ["unchanged"] * 6
    for result in runs:
        assert_no_secrets(result.output, SECRETS)
    stored = server.get("v1", "Secret", "backup-credentials", "apps")
    assert stored is not None and base64.b64decode(stored["data"]["AWS_SECRET_ACCESS_KEY"]).decode() == PASSWORD
    job = server.get("longhorn.io/v1beta2", "RecurringJob", "daily-snapshot", "longhorn-system")
    assert job is not None and job["spec"]["retain"] == 7
    diff = runs[1].task("objects").result["diff"]
    assert [d["before_header"] for d in diff][4] == "Secret apps/backup-credentials (v1)"
    assert set(diff[4]["after"]["data"].values()) == {"******** (changed)"}

    server.clear_requests()
    noop = apply(kube, tmp_path, {"definitions": DEFINITIONS})
    assert not noop.task("objects").changed
    assert writes(kube) == []
    for obj in DEFINITIONS:
        meta = obj["metadata"]
        matching = [r for r in server.requests if r.method == "GET" and r.path.rstrip("/").endswith("/" + meta["name"])]
        assert len(matching) == 1, (obj["kind"], [r.path for r in server.requests])
    assert server.count("GET") == len(DEFINITIONS), "one GET per object besides discovery"


def test_one_changed_field_patches_exactly_that_object(kube: KubeAPI, tmp_path: Path) -> None:
    apply(kube, tmp_path, {"definitions": DEFINITIONS})
    kube.require_server().clear_requests()
    changed = [*DEFINITIONS[:5], {**RECURRING_JOB, "spec": {**RECURRING_JOB["spec"], "retain": 14}}]
    result = apply(kube, tmp_path, {"definitions": changed}, diff=True)
    assert actions(result) == ["unchanged"] * 5 + ["patched"]
    assert writes(kube) == ["PATCH /apis/longhorn.io/v1beta2/namespaces/longhorn-system/recurringjobs/daily-snapshot"]
    diff = result.task("objects").result["diff"][5]
    assert (diff["before"]["spec"]["retain"], diff["after"]["spec"]["retain"]) == (7, 14)

    kube.require_server().clear_requests()
    rotated = {**SECRET, "stringData": {**SECRET["stringData"], "AWS_SECRET_ACCESS_KEY": PASSWORD + "-new"}}
    result = apply(kube, tmp_path, {"definitions": [APPS, rotated]}, diff=True)
    assert actions(result) == ["unchanged", "patched"]
    assert writes(kube) == ["PATCH /api/v1/namespaces/apps/secrets/backup-credentials"]
    assert result.task("objects").result["diff"][1]["after"]["data"] == {
        "AWS_ACCESS_KEY_ID": "********",
        "AWS_SECRET_ACCESS_KEY": "******** (changed)",
    }
    assert_no_secrets(result.output, [*SECRETS, PASSWORD + "-new"])


BAD_INPUTS: list[tuple[list[Any], str]] = [
    (
        [NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {}}],
        "definitions[1]: metadata.name is required",
    ),
    ([{"kind": "Namespace", "metadata": {"name": "x"}}], "definitions[0]: apiVersion is required"),
    (
        [NAMESPACE, {**RECURRING_JOB, "metadata": {"name": "daily"}}],
        "definitions[1]: metadata.namespace is required (RecurringJob is namespaced)",
    ),
    (
        [APPS, SECRET, SECRET],
        "definitions[2]: Secret apps/backup-credentials (v1) is already defined by definitions[1]",
    ),
    ([{**SECRET, "stringData": {"port": 5432}}], "definitions[0]: stringData.port must be a string"),
]


def test_bad_input_names_the_field_and_sends_nothing(kube: KubeAPI, tmp_path: Path) -> None:
    tasks = [
        task({"definitions": defs}, name=f"bad {i}", ignore_errors=True) for i, (defs, _m) in enumerate(BAD_INPUTS)
    ]
    result = run(kube, tmp_path, *tasks)
    for i, (_defs, message) in enumerate(BAD_INPUTS):
        outcome = result.task(f"bad {i}")
        assert outcome.failed and message in outcome.result["msg"], (i, outcome.result)
    assert kube.require_server().count(exclude_discovery=False) == 0, "bad input must not reach the API"
    assert_no_secrets(result.output, SECRETS)


def test_transient_5xx_is_retried_and_api_down_fails_clearly(kube: KubeAPI, tmp_path: Path) -> None:
    server = kube.require_server()
    server.faults.fail_next(2, status=503)
    result = apply(kube, tmp_path, {"definitions": [NAMESPACE, RECURRING_JOB]})
    assert actions(result) == ["created", "created"]
    assert server.count("GET", "/api/v1/namespaces/longhorn-system") == 3, "two 503s, then the answer"

    server.faults.down()
    result = run(kube, tmp_path, task({"definitions": [NAMESPACE]}, ignore_errors=True))
    outcome = result.task("objects")
    assert outcome.failed
    assert "Kubernetes API at https://127.0.0.1" in outcome.result["msg"]
    assert "unreachable" in outcome.result["msg"] and "Connection refused" in outcome.result["msg"]


def _remove_recurring_job_crd(kube: KubeAPI) -> dict[str, Any]:
    server = kube.require_server()
    crd = server.get(*CRD, RJ_CRD)
    assert crd is not None
    server.delete(*CRD, RJ_CRD)
    crd.pop("status", None)
    crd["metadata"] = {"name": RJ_CRD}
    return crd


def test_waits_for_a_crd_the_helm_controller_installs_later(kube: KubeAPI, tmp_path: Path) -> None:
    server = kube.require_server()
    crd = _remove_recurring_job_crd(kube)
    # the Helm controller installs Longhorn's CRDs a few seconds after the HelmChart is written
    server.on_write("HelmChart", lambda srv, _obj: srv.create(crd), delay=3.0)
    definitions = [NAMESPACE, HELMCHART, RECURRING_JOB]

    check = apply(kube, tmp_path, {"definitions": definitions, "api_wait_timeout": 60}, check=True)
    assert actions(check) == ["created"] * 3
    assert any("RecurringJob longhorn-system/daily-snapshot" in w for w in check.task("objects").result["warnings"])
    assert writes(kube) == []

    result = apply(kube, tmp_path, {"definitions": definitions, "api_wait_timeout": 60})
    assert actions(result) == ["created"] * 3
    assert server.get("longhorn.io/v1beta2", "RecurringJob", "daily-snapshot", "longhorn-system") is not None
    assert server.count("GET", "/apis/longhorn.io/v1beta2", exclude_discovery=False) >= 2, "re-discovered"


def test_a_kind_not_served_fails_clearly_without_api_wait_timeout(kube: KubeAPI, tmp_path: Path) -> None:
    _remove_recurring_job_crd(kube)
    result = run(kube, tmp_path, task({"definitions": [NAMESPACE, RECURRING_JOB]}, ignore_errors=True))
    outcome = result.task("objects")
    assert outcome.failed
    assert outcome.result["msg"].startswith(
        "definitions[1]: RecurringJob longhorn-system/daily-snapshot (longhorn.io/v1beta2): "
        "the API server does not serve kind 'RecurringJob'"
    )
    assert "api_wait_timeout" in outcome.result["msg"]
    assert [e["action"] for e in outcome.result["objects"]] == ["created"], "what was done is reported"


def test_state_absent_deletes_in_reverse_order(kube: KubeAPI, tmp_path: Path) -> None:
    server = kube.require_server()
    apply(kube, tmp_path, {"definitions": DEFINITIONS})
    server.clear_requests()
    playbook = write_playbook(tmp_path, [task({"definitions": DEFINITIONS[2:], "state": "absent"})])
    runs = four_runs(playbook, "objects", env=kube.env)
    assert actions(runs[1]) == ["deleted"] * 4
    assert actions(runs[3]) == ["unchanged"] * 4
    assert writes(kube) == [
        "DELETE /apis/longhorn.io/v1beta2/namespaces/longhorn-system/recurringjobs/daily-snapshot",
        "DELETE /api/v1/namespaces/apps/secrets/backup-credentials",
        "DELETE /apis/storage.k8s.io/v1/storageclasses/longhorn-2r",
        "DELETE /apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts/longhorn",
    ]
    for result in runs:
        assert_no_secrets(result.output, SECRETS)
