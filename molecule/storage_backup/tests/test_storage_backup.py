"""Verify storage_backup: Longhorn's node prerequisites on the lab hosts, the storage and backup objects in the
stand-in's API (with the stand-in controllers' statuses), the -vvv log free of the scenario's secrets, and
playbooks/dr_drill.yml end to end."""

from __future__ import annotations

import base64
import os
import secrets
import time
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import testinfra.utils.ansible_runner
import yaml
from lab.playbook import PlaybookRun, assert_no_secrets, run_playbook

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
REPO = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
testinfra_hosts = RUNNER.get_hosts("k3s_cluster")

CONTEXT = "k3s-stbk"
KUBECONFIG = EPHEMERAL / "kubeconfig"
SECRETS = yaml.safe_load((EPHEMERAL / "secrets.yml").read_text(encoding="utf-8"))
STORAGE_DEFAULTS = yaml.safe_load((REPO / "roles/storage/defaults/main.yml").read_text(encoding="utf-8"))
BACKUP_DEFAULTS = yaml.safe_load((REPO / "roles/backup/defaults/main.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def client() -> Any:
    return kubernetes.config.new_client_from_config(str(KUBECONFIG), context=CONTEXT)


@pytest.fixture(scope="module")
def custom(client: Any) -> Any:
    return kubernetes.client.CustomObjectsApi(client)


@pytest.fixture(scope="module")
def core(client: Any) -> Any:
    return kubernetes.client.CoreV1Api(client)


def get(custom: Any, group_version: str, plural: str, namespace: str, name: str) -> dict[str, Any]:
    group, version = group_version.split("/")
    result: dict[str, Any] = custom.get_namespaced_custom_object(group, version, namespace, plural, name)
    return result


def names(custom: Any, group_version: str, plural: str, namespace: str) -> list[str]:
    group, version = group_version.split("/")
    items = custom.list_namespaced_custom_object(group, version, namespace, plural)["items"]
    return sorted(i["metadata"]["name"] for i in items)


# ------------------------------------------------------------------------------ on every node


def test_node_packages_installed(host: Any) -> None:
    for package in ("open-iscsi", "nfs-common"):
        assert host.package(package).is_installed, package


def task_blocks(task: str) -> list[str]:
    """The -vvv log's output of ``homelab.pi_cluster.storage : <task>``, once per run that reached it."""
    log = (EPHEMERAL / "ansible-vvv.log").read_text(encoding="utf-8", errors="replace")
    header = f"TASK [homelab.pi_cluster.storage : {task}]"
    return [part.split("TASK [", 1)[0] for part in log.split(header)[1:]]


def test_apt_never_ran_on_the_lab_image_that_has_the_packages() -> None:
    """The hosts have no route to a mirror: the role must see the packages installed and skip apt."""
    blocks = task_blocks("Install the missing iSCSI and NFS client packages")
    assert len(blocks) == 1  # converge; idempotence does not include the node changes at all
    assert blocks[0].count("skipping: [") == len(testinfra_hosts)
    assert "changed: [" not in blocks[0] and "ok: [" not in blocks[0]


def test_idempotence_reads_each_node_once_and_skips_the_node_changes() -> None:
    """Converge: the probe, then the node changes included on every host; idempotence: the probe, and the
    include skipped on every host (one remote task per host for the node prerequisites)."""
    probes = task_blocks("Read the packages, the modules-load file, iscsid and the multipath configuration")
    includes = task_blocks("Bring the node prerequisites in line (only where the probe found something to change)")
    assert len(probes) == len(includes) == 2  # converge and idempotence
    for probe in probes:
        assert probe.count("ok: [") == len(testinfra_hosts) and "changed: [" not in probe
    converge, idempotence = includes
    # "included: <file> for <host>, <host>" (the log's lines carry a timestamp prefix)
    included = " ".join(line.split("included: ", 1)[1] for line in converge.splitlines() if "included: " in line)
    included = included.replace(",", " ")
    assert set(testinfra_hosts) <= set(included.split())
    assert idempotence.count("skipping: [") == len(testinfra_hosts) and "included: " not in idempotence


def test_iscsi_persisted_and_enabled_but_not_started_on_a_shared_kernel(host: Any) -> None:
    modules = host.file("/etc/modules-load.d/longhorn.conf")
    assert (modules.user, modules.mode) == ("root", 0o644)
    assert "iscsi_tcp" in modules.content_string.split()
    assert host.service("iscsid").is_enabled
    # storage_apply_kernel_globals is false in the lab: iscsid cannot run without NETLINK_ISCSI here
    assert not host.service("iscsid").is_running
    assert host.file("/etc/iscsi/iscsid.conf").exists
    assert host.file("/etc/iscsi/initiatorname.iscsi").exists


def test_multipath_blacklists_longhorn_devices(host: Any) -> None:
    conf = host.file("/etc/multipath.conf")
    assert conf.mode == 0o644
    text = conf.content_string
    assert "# BEGIN ANSIBLE MANAGED BLOCK homelab.pi_cluster.storage" in text
    assert 'devnode "^sd[a-z0-9]+"' in text


# ------------------------------------------------------------------------------ in the API


@pytest.mark.parametrize(
    ("chart", "version"),
    [
        ("longhorn", STORAGE_DEFAULTS["storage_longhorn_chart_version"]),
        ("nfs-subdir-external-provisioner", STORAGE_DEFAULTS["storage_nfs_chart_version"]),
        ("minio", BACKUP_DEFAULTS["backup_minio_chart_version"]),
        ("velero", BACKUP_DEFAULTS["backup_velero_chart_version"]),
    ],
)
def test_helm_charts_pinned_and_picked_up(custom: Any, chart: str, version: str) -> None:
    obj = get(custom, "helm.cattle.io/v1", "helmcharts", "kube-system", chart)
    assert obj["spec"]["version"] == version
    assert obj["status"]["jobName"] == f"helm-install-{chart}"
    assert {"type": "JobCreated", "status": "True"}.items() <= obj["status"]["conditions"][0].items()


def test_storage_classes(client: Any) -> None:
    storage = kubernetes.client.StorageV1Api(client)
    nfs = storage.read_storage_class("nfs-client")
    assert nfs.provisioner == "k8s-sigs.io/nfs-subdir-external-provisioner"
    assert nfs.parameters == {"archiveOnDelete": "true"}
    assert nfs.mount_options == ["nfsvers=4.1"]
    longhorn = storage.read_storage_class("longhorn")  # from the chart's values, by the controller stand-in
    assert longhorn.provisioner == "driver.longhorn.io"
    assert (longhorn.parameters or {}).get("numberOfReplicas") == "2"
    annotations = (longhorn.metadata.annotations if longhorn.metadata else None) or {}
    assert annotations.get("storageclass.kubernetes.io/is-default-class") == "true"


def test_longhorn_volume_settled(custom: Any) -> None:
    volume = get(custom, "longhorn.io/v1beta2", "volumes", "longhorn-system", "scratch")
    assert volume["spec"]["numberOfReplicas"] == 2
    assert int(volume["spec"]["size"]) == 1024**3
    assert volume["metadata"]["labels"]["recurring-job-group.longhorn.io/default"] == "enabled"
    assert (volume["status"]["state"], volume["status"]["robustness"]) == ("detached", "unknown")


def test_longhorn_backup_target_and_recurring_jobs(custom: Any) -> None:
    target = get(custom, "longhorn.io/v1beta2", "backuptargets", "longhorn-system", "default")
    assert target["spec"]["backupTargetURL"] == "nfs://nas.lab.home.arpa:/volume1/longhorn-backup"
    assert target["status"]["available"] is True
    assert names(custom, "longhorn.io/v1beta2", "recurringjobs", "longhorn-system") == [
        "backup-weekly",
        "snapshot-daily",
    ]
    for job in STORAGE_DEFAULTS["storage_longhorn_recurring_jobs"]:
        spec = get(custom, "longhorn.io/v1beta2", "recurringjobs", "longhorn-system", job["name"])["spec"]
        assert (spec["task"], spec["cron"], spec["retain"], spec["groups"]) == (
            job["task"],
            job["cron"],
            job["retain"],
            job["groups"],
        )


def test_backup_storage_location_available(custom: Any, core: Any) -> None:
    location = get(custom, "velero.io/v1", "backupstoragelocations", "velero", "default")
    assert location["status"]["phase"] == "Available"
    assert location["spec"]["credential"] == {"name": "velero-credentials", "key": "cloud"}
    cloud = base64.b64decode(core.read_namespaced_secret("velero-credentials", "velero").data["cloud"]).decode()
    assert f"aws_secret_access_key={SECRETS['backup_velero_s3_secret_key']}" in cloud


def test_schedules_are_the_reference_defaults(custom: Any) -> None:
    expected = {s["name"]: s for s in BACKUP_DEFAULTS["backup_velero_schedules"]}
    assert names(custom, "velero.io/v1", "schedules", "velero") == sorted(expected)
    daily = get(custom, "velero.io/v1", "schedules", "velero", "daily")
    assert daily["spec"]["schedule"] == expected["daily"]["schedule"]
    assert daily["spec"]["template"]["excludedNamespaces"] == ["kube-system"]
    assert daily["spec"]["template"]["ttl"] in ("720h", "720h0m0s")
    weekly = get(custom, "velero.io/v1", "schedules", "velero", "weekly-full")
    assert weekly["spec"]["schedule"] == expected["weekly-full"]["schedule"]
    assert weekly["spec"]["template"]["includeClusterResources"] is True
    for schedule in (daily, weekly):
        assert schedule["spec"]["template"]["storageLocation"] == "default"
        assert schedule["status"]["phase"] == "Enabled"


def test_converge_vvv_log_never_shows_the_secrets() -> None:
    log = (EPHEMERAL / "ansible-vvv.log").read_text(encoding="utf-8", errors="replace")
    assert "Write the credential Secrets" in log  # the log covers the task that handled them
    assert_no_secrets(log, list(SECRETS.values()))


# ------------------------------------------------------------------------------ the DR drill


def location_phase(custom: Any, phase: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        location = get(custom, "velero.io/v1", "backupstoragelocations", "velero", "default")
        if (location.get("status") or {}).get("phase") == phase:
            return True
        time.sleep(0.5)
    return False


def drill(**extra: Any) -> PlaybookRun:
    return run_playbook(
        REPO / "playbooks/dr_drill.yml", inventory=Path(INVENTORY).parent, extra_vars=extra, verbosity=3
    )


@pytest.fixture(scope="module")
def shop(core: Any) -> dict[str, str]:
    """A namespace to drill on: a ConfigMap and a Secret holding a value the drill must never print."""
    value = secrets.token_urlsafe(18)
    name = f"shop-{secrets.token_hex(3)}"  # a fresh one per verify run: the drill must not need a clean slate
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(name, {"metadata": {"name": "settings"}, "data": {"currency": "GBP"}})
    core.create_namespaced_secret(name, {"metadata": {"name": "db"}, "stringData": {"password": value}})
    return {"namespace": name, "password": value}


def test_dr_drill_backs_up_restores_compares_and_cleans_up(custom: Any, core: Any, shop: dict[str, str]) -> None:
    run = drill(dr_drill_namespace=shop["namespace"])
    assert run.rc == 0, run.output[-6000:]
    assert_no_secrets(run.output, [shop["password"], *SECRETS.values()])
    assert f"2 object(s) of {shop['namespace']} restored from backup daily-" in run.output
    result = run.task("Keep the drill's result for the report").result["ansible_facts"]["dr_drill_result"]
    assert result["backup"].startswith("daily-")
    assert int(result["items_restored"]) == 3  # the namespace, the ConfigMap, the Secret
    # cleaned up: scratch namespace, the drill's Restore and Backup
    assert f"{shop['namespace']}-dr-drill" not in [n.metadata.name for n in core.list_namespace().items]
    assert names(custom, "velero.io/v1", "restores", "velero") == []
    assert result["backup"] not in names(custom, "velero.io/v1", "backups", "velero")
    # the source is untouched
    assert core.read_namespaced_config_map("settings", shop["namespace"]).data == {"currency": "GBP"}


def test_dr_drill_fails_clearly_when_velero_cannot_back_up(custom: Any, core: Any, shop: dict[str, str]) -> None:
    """Velero's location loses its credentials: the backup fails validation, the drill says so and cleans up."""
    saved = core.read_namespaced_secret("velero-credentials", "velero")
    core.delete_namespaced_secret("velero-credentials", "velero")
    try:
        assert location_phase(custom, "Unavailable")  # Velero re-validates its locations periodically
        run = drill(dr_drill_namespace=shop["namespace"])
    finally:
        core.create_namespaced_secret(
            "velero",
            {"metadata": {"name": "velero-credentials", "labels": saved.metadata.labels}, "data": saved.data},
        )
        assert location_phase(custom, "Available")
    assert run.rc != 0
    failed = run.failed_tasks()
    assert [t.task for t in failed] == ["Back up now from the schedule and wait for the backup to complete"]
    assert "FailedValidation" in run.output and "Unavailable" in run.output
    assert_no_secrets(run.output, [shop["password"], *SECRETS.values()])
    assert f"{shop['namespace']}-dr-drill" not in [n.metadata.name for n in core.list_namespace().items]
