"""The storage, backup and dns roles through ansible-playbook -vvv: their cluster side against the test API
server (which validates HelmChart, Longhorn and Velero objects against the upstream CRDs) and the two
Pi-hole test servers.

The node prerequisites of the storage role (packages, iscsid, multipath) need real hosts: they are off here
(``storage_manage_node_prereqs: false``) and run in the lab's molecule scenario. Controllers that are not
there (Velero validating its storage location and schedules) are played through the server's write hooks.
"""

from __future__ import annotations

import base64
import secrets
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab.kubeapi.fixtures import KubeAPI
from lab.pihole.server import PiholeServer
from lab.playbook import PlaybookRun, assert_no_secrets, run_playbook, write_playbook

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "lab.example"
INGRESS_IP = "192.168.1.240"
CHARTS = "/apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts"


def velero_controller(kube: KubeAPI, phase: str, message: str = "") -> None:
    """Simulated Velero: validates every written BackupStorageLocation (``phase``) and enables schedules."""
    server = kube.require_server()
    status: dict[str, Any] = {"phase": phase}
    if message:
        status["message"] = message

    def validate(srv: Any, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        srv.update_status("velero.io/v1", "BackupStorageLocation", meta["name"], meta["namespace"], status)

    def enable(srv: Any, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        srv.update_status("velero.io/v1", "Schedule", meta["name"], meta["namespace"], {"phase": "Enabled"})

    server.on_write("BackupStorageLocation", validate, delay=0.3)
    server.on_write("Schedule", enable, delay=0.3)


@pytest.fixture
def secret_values() -> dict[str, str]:
    return {name: secrets.token_urlsafe(18) for name in ("minio_root", "velero_s3")}


def role_vars(kube: KubeAPI, values: dict[str, str], piholes: tuple[PiholeServer, PiholeServer]) -> dict[str, Any]:
    access = {"kubeconfig": str(kube.kubeconfig), "kube_context": "lab"}
    primary, secondary = piholes
    return {
        **{f"{role}_{key}": value for role in ("storage", "backup", "dns") for key, value in access.items()},
        "storage_manage_node_prereqs": False,
        "storage_nfs_server": "192.168.1.10",
        "storage_nfs_path": "/volume1/k3s",
        "storage_longhorn_replicas": 2,
        "storage_longhorn_backup_target": "nfs://192.168.1.10:/volume1/longhorn-backup",
        "storage_longhorn_values": {"defaultSettings": {"storageMinimalAvailablePercentage": 15}},
        "storage_longhorn_volumes": [{"name": "scratch", "size": "2Gi", "recurring_job_groups": ["default"]}],
        "backup_minio_root_password": values["minio_root"],
        "backup_velero_s3_secret_key": values["velero_s3"],
        "backup_velero_bsl_wait_timeout": 20,
        "backup_velero_bsl_wait_delay": 1,
        "dns_domain": DOMAIN,
        "dns_ingress_address": INGRESS_IP,
        # both forms: a URL with the shared password, and a dict with its own
        "dns_pihole_servers": [
            primary.url,
            {"name": "secondary", "url": secondary.url, "password": secondary.password},
        ],
        "dns_pihole_password": primary.password,
        "dns_records": [
            "grafana",
            "longhorn",
            {"name": f"grafana.{DOMAIN}", "ip": "fd00::f0"},  # a second record of a listed name
            {"name": f"www.{DOMAIN}", "target": f"grafana.{DOMAIN}"},
            {"name": f"airflow.{DOMAIN}", "ip": "192.168.1.241"},  # wins over the Ingress host
        ],
        "dns_records_from_ingresses": True,
    }


def playbook(tmp_path: Path, roles: tuple[str, ...]) -> Path:
    tasks = [{"name": f"Role {r}", "ansible.builtin.import_role": {"name": f"homelab.pi_cluster.{r}"}} for r in roles]
    return write_playbook(tmp_path, tasks)


def run(kube: KubeAPI, path: Path, extra: dict[str, Any], check: bool = False) -> PlaybookRun:
    env = {**kube.env, "ANSIBLE_PYTHON_INTERPRETER": sys.executable}
    return run_playbook(path, extra_vars=extra, env=env, check=check, diff=True)


def seed(kube: KubeAPI, piholes: tuple[PiholeServer, PiholeServer]) -> None:
    """An Ingress (one host in the domain, one outside it) and records the exclusive sync must handle."""
    server = kube.require_server()
    server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "airflow"}})
    server.create(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "airflow", "namespace": "airflow"},
            "spec": {
                "rules": [
                    {"host": f"Airflow.{DOMAIN}"},
                    {"host": f"Minio.{DOMAIN}"},
                    {"host": "airflow.elsewhere.org"},
                    {"host": f"*.{DOMAIN}"},
                ]
            },
        }
    )
    for pihole in piholes:
        pihole.ftl.set_records(hosts=[f"192.168.1.99 stale.{DOMAIN}", "192.168.1.5 nas.home.arpa"])


MANAGED_KINDS = [
    ("v1", "Namespace"),
    ("v1", "Secret"),
    ("storage.k8s.io/v1", "StorageClass"),
    ("helm.cattle.io/v1", "HelmChart"),
    ("longhorn.io/v1beta2", "BackupTarget"),
    ("longhorn.io/v1beta2", "RecurringJob"),
    ("longhorn.io/v1beta2", "Volume"),
    ("velero.io/v1", "BackupStorageLocation"),
    ("velero.io/v1", "Schedule"),
]


def versions(kube: KubeAPI) -> dict[str, str]:
    """resourceVersion of every object the roles manage: unchanged means nothing was modified."""
    server = kube.require_server()
    return {
        f"{kind} {o['metadata'].get('namespace', '')}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
        for api_version, kind in MANAGED_KINDS
        for o in server.list(api_version, kind)
    }


def helm_chart(kube: KubeAPI, name: str) -> dict[str, Any]:
    obj = kube.require_server().get("helm.cattle.io/v1", "HelmChart", name, "kube-system")
    assert obj is not None, f"HelmChart {name} missing"
    return obj


def test_storage_backup_dns_apply_and_rerun(
    kube_api: KubeAPI, tmp_path: Path, pihole_pair: tuple[PiholeServer, PiholeServer], secret_values: dict[str, str]
) -> None:
    kube = kube_api
    server = kube.require_server()
    seed(kube, pihole_pair)
    velero_controller(kube, "Available")
    extra = role_vars(kube, secret_values, pihole_pair)
    example = yaml.safe_load((REPO / "roles" / "addons" / "examples" / "reference.yml").read_text(encoding="utf-8"))
    extra = {**extra, **example, "addons_kubeconfig": str(kube.kubeconfig), "addons_kube_context": "lab"}
    path = playbook(tmp_path, ("storage", "backup", "dns", "addons"))

    check = run(kube, path, extra, check=True)
    assert check.rc == 0, check.output[-6000:]
    assert server.get("helm.cattle.io/v1", "HelmChart", "longhorn", "kube-system") is None  # check mode wrote nothing
    first = run(kube, path, extra)
    assert first.rc == 0, first.output[-6000:]
    assert first.changed_tasks(), "the first run must change something"
    before = versions(kube)
    second = run(kube, path, extra)
    assert second.rc == 0, second.output[-6000:]
    assert [f"{t.task} ({t.host})" for t in second.changed_tasks()] == []
    third = run(kube, path, extra, check=True)
    assert third.rc == 0, third.output[-6000:]
    assert [t.task for t in third.changed_tasks()] == []
    # kubernetes.core.k8s sends its (identical) patches anyway; the server must see no modification
    assert versions(kube) == before
    assert len(before) > 20

    # HelmCharts: pinned versions, values as given (the user's values merged into the role's)
    longhorn = helm_chart(kube, "longhorn")
    assert longhorn["spec"]["version"] == "1.8.1"
    assert longhorn["spec"]["repo"] == "https://charts.longhorn.io"
    assert longhorn["spec"]["targetNamespace"] == "longhorn-system"
    values = yaml.safe_load(longhorn["spec"]["valuesContent"])
    assert values["persistence"] == {"defaultClass": True, "defaultClassReplicaCount": 2}
    assert values["defaultSettings"] == {"defaultReplicaCount": 2, "storageMinimalAvailablePercentage": 15}
    nfs = yaml.safe_load(helm_chart(kube, "nfs-subdir-external-provisioner")["spec"]["valuesContent"])
    assert nfs["nfs"] == {"server": "192.168.1.10", "path": "/volume1/k3s", "mountOptions": ["nfsvers=4.1"]}
    assert nfs["storageClass"]["create"] is False
    minio = yaml.safe_load(helm_chart(kube, "minio")["spec"]["valuesContent"])
    assert minio["existingSecret"] == "minio-root"
    assert minio["persistence"]["storageClass"] == "nfs-client"
    velero = helm_chart(kube, "velero")
    assert velero["spec"]["version"] == "8.3.0"
    velero_values = yaml.safe_load(velero["spec"]["valuesContent"])
    assert velero_values["credentials"] == {"useSecret": True, "existingSecret": "velero-credentials"}
    assert velero_values["initContainers"][0]["image"].startswith("velero/velero-plugin-for-aws:v")
    # the reference add-ons (roles/addons/examples/reference.yml) pass the HelmChart CRD schema as written
    for chart in example["addons_helm_charts"]:
        obj = helm_chart(kube, chart["name"])
        assert obj["spec"]["version"] == chart["version"]
        assert obj["spec"]["repo"] == chart["repo"]
        assert yaml.safe_load(obj["spec"]["valuesContent"]) == chart["values"]
        assert server.get("v1", "Namespace", chart["namespace"]) is not None
    assert helm_chart(kube, "airflow")["spec"]["timeout"] == "20m"
    for chart in ("longhorn", "nfs-subdir-external-provisioner", "minio", "velero"):
        assert not set(secret_values.values()) & set(yaml.safe_dump(helm_chart(kube, chart)).split())

    # StorageClass, BackupTarget, RecurringJobs, Volume
    sc = server.get("storage.k8s.io/v1", "StorageClass", "nfs-client")
    assert sc is not None
    assert sc["provisioner"] == "k8s-sigs.io/nfs-subdir-external-provisioner"
    assert sc["parameters"] == {"archiveOnDelete": "true"}
    target = server.get("longhorn.io/v1beta2", "BackupTarget", "default", "longhorn-system")
    assert target is not None
    assert target["spec"]["backupTargetURL"] == "nfs://192.168.1.10:/volume1/longhorn-backup"
    jobs = {
        j["metadata"]["name"]: j["spec"] for j in server.list("longhorn.io/v1beta2", "RecurringJob", "longhorn-system")
    }
    assert sorted(jobs) == ["backup-weekly", "snapshot-daily"]
    assert jobs["snapshot-daily"]["cron"] == "0 1 * * *"
    assert jobs["snapshot-daily"]["retain"] == 7
    assert jobs["backup-weekly"]["task"] == "backup"
    volume = server.get("longhorn.io/v1beta2", "Volume", "scratch", "longhorn-system")
    assert volume is not None
    assert volume["spec"]["numberOfReplicas"] == 2

    # Velero: credentials Secret, BackupStorageLocation, the reference schedules
    cred = server.get("v1", "Secret", "velero-credentials", "velero")
    assert cred is not None
    cloud = base64.b64decode(cred["data"]["cloud"]).decode()
    assert f"aws_secret_access_key={secret_values['velero_s3']}" in cloud
    bsl = server.get("velero.io/v1", "BackupStorageLocation", "default", "velero")
    assert bsl is not None
    assert bsl["spec"]["objectStorage"]["bucket"] == "velero"
    assert bsl["spec"]["config"]["s3Url"] == "http://minio.minio.svc:9000"
    daily = server.get("velero.io/v1", "Schedule", "daily", "velero")
    weekly = server.get("velero.io/v1", "Schedule", "weekly-full", "velero")
    assert daily is not None
    assert weekly is not None
    assert daily["spec"]["schedule"] == "0 2 * * *"
    assert daily["spec"]["template"]["excludedNamespaces"] == ["kube-system"]
    assert daily["spec"]["template"]["ttl"] == "720h0m0s"
    assert weekly["spec"]["schedule"] == "0 3 * * 0"
    assert weekly["spec"]["template"]["includeClusterResources"] is True
    assert weekly["spec"]["template"]["ttl"] == "2160h0m0s"

    # DNS: listed names + the in-domain Ingress host on both Pi-holes, the stale record gone, others kept
    for pihole in pihole_pair:
        assert sorted(pihole.ftl.hosts) == sorted(
            [
                "192.168.1.5 nas.home.arpa",
                f"192.168.1.241 airflow.{DOMAIN}",
                f"{INGRESS_IP} grafana.{DOMAIN}",
                f"fd00::f0 grafana.{DOMAIN}",
                f"{INGRESS_IP} longhorn.{DOMAIN}",
                f"{INGRESS_IP} minio.{DOMAIN}",
            ]
        )
        assert pihole.ftl.cnames == [f"www.{DOMAIN},grafana.{DOMAIN}"]

    leaks = [*secret_values.values(), server.token, *(s for p in pihole_pair for s in p.secrets)]
    for result in (check, first, second, third):
        assert_no_secrets(result.output, leaks)


def test_unavailable_storage_location_fails_naming_it(
    kube_api: KubeAPI, tmp_path: Path, pihole_pair: tuple[PiholeServer, PiholeServer], secret_values: dict[str, str]
) -> None:
    kube = kube_api
    velero_controller(kube, "Unavailable", "rpc error: NoSuchBucket: The specified bucket does not exist")
    extra = {**role_vars(kube, secret_values, pihole_pair), "backup_velero_bsl_wait_timeout": 3}
    result = run(kube, playbook(tmp_path, ("backup",)), extra)
    assert result.rc != 0
    outcome = result.task("homelab.pi_cluster.backup : Fail naming the unavailable backup storage location")
    assert outcome.failed
    msg = outcome.result["msg"]
    assert "velero/default" in msg
    assert "Unavailable" in msg
    assert "NoSuchBucket: The specified bucket does not exist" in msg
    assert kube.require_server().get("velero.io/v1", "Schedule", "daily", "velero") is None
    assert_no_secrets(result.output, [*secret_values.values(), kube.require_server().token])
