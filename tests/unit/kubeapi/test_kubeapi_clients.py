"""Real clients against the server: the kubernetes dynamic client, kubernetes.core through ansible-playbook,
the ``kube_api`` fixture and the ``python -m lab.kubeapi serve`` command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab.kubeapi import KubeAPIServer
from lab.kubeapi.fixtures import KubeAPI
from lab.kubeapi.rawclient import request
from lab.playbook import REPO, run_playbook, write_playbook


def test_dynamic_client_discovers_every_resource(srv: KubeAPIServer, tmp_path: Path) -> None:
    from kubernetes import config, dynamic  # noqa: PLC0415 - heavy import, these tests only
    from kubernetes.dynamic.exceptions import ConflictError, UnprocessibleEntityError  # noqa: PLC0415

    kubeconfig = srv.write_kubeconfig(tmp_path / "kubeconfig")
    client = dynamic.DynamicClient(config.new_client_from_config(config_file=str(kubeconfig)))
    for api_version, kind in [
        ("v1", "Node"),
        ("v1", "Pod"),
        ("v1", "Namespace"),
        ("v1", "Secret"),
        ("v1", "ConfigMap"),
        ("v1", "PersistentVolume"),
        ("v1", "PersistentVolumeClaim"),
        ("v1", "Service"),
        ("v1", "Event"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "DaemonSet"),
        ("apps/v1", "StatefulSet"),
        ("policy/v1", "PodDisruptionBudget"),
        ("storage.k8s.io/v1", "StorageClass"),
        ("networking.k8s.io/v1", "Ingress"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("velero.io/v1", "Schedule"),
        ("velero.io/v1", "Backup"),
        ("longhorn.io/v1beta2", "Volume"),
        ("longhorn.io/v1beta2", "RecurringJob"),
        ("helm.cattle.io/v1", "HelmChart"),
        ("helm.cattle.io/v1", "HelmChartConfig"),
    ]:
        resource = client.resources.get(api_version=api_version, kind=kind)
        assert resource.kind == kind
    pods = client.resources.get(api_version="v1", kind="Pod")
    assert set(pods.subresources) == {"status", "eviction"}
    assert client.resources.get(api_version="v1", kind="Node").namespaced is False
    crds = client.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    names = {c.metadata.name for c in crds.get().items}
    assert {"schedules.velero.io", "volumes.longhorn.io", "helmcharts.helm.cattle.io"} <= names

    schedules = client.resources.get(api_version="velero.io/v1", kind="Schedule")
    body = {
        "apiVersion": "velero.io/v1",
        "kind": "Schedule",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"schedule": "@daily", "template": {"ttl": "24h"}},
    }
    created = schedules.create(body=body)
    with pytest.raises(UnprocessibleEntityError):
        schedules.create(
            body={
                **body,
                "metadata": {"name": "t", "namespace": "default"},
                "spec": {"schedule": "@daily", "template": {"ttl": 5}},
            }
        )
    stale = created.to_dict()
    schedules.patch(
        body={"metadata": {"name": "s", "namespace": "default"}, "spec": {"paused": True}},
        content_type="application/merge-patch+json",
    )
    with pytest.raises(ConflictError):
        schedules.replace(body=stale)
    nodes = client.resources.get(api_version="v1", kind="Node")
    nodes.create(body={"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    patched = nodes.patch(name="n1", body={"spec": {"unschedulable": True}})  # strategic merge by default
    assert patched.spec.unschedulable is True
    srv.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i:1"}]},
            "status": {"phase": "Running"},
        }
    )
    eviction = pods.subresources["eviction"]
    eviction.create(
        body={"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p", "namespace": "default"}},
        name="p",
        namespace="default",
    )
    assert srv.get("v1", "Pod", "p", "default") is None


def test_kubernetes_core_k8s_info_through_ansible_playbook(kube_api: KubeAPI, tmp_path: Path) -> None:
    srv = kube_api.require_server()
    srv.create(
        {
            "apiVersion": "longhorn.io/v1beta2",
            "kind": "Volume",
            "metadata": {"name": "data", "namespace": "default", "labels": {"tier": "db"}},
            "spec": {"numberOfReplicas": 2},
        }
    )
    playbook = write_playbook(
        tmp_path,
        [
            {
                "name": "Read volumes",
                "kubernetes.core.k8s_info": {
                    "api_version": "longhorn.io/v1beta2",
                    "kind": "Volume",
                    "namespace": "default",
                    "label_selectors": ["tier=db"],
                },
                "register": "volumes",
            },
            {
                "name": "Create a config map",
                "kubernetes.core.k8s": {
                    "state": "present",
                    "definition": {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "cfg", "namespace": "default"},
                        "data": {"k": "v"},
                    },
                },
            },
            {
                "name": "Update a volume (strategic merge falls back to merge on 415)",
                "kubernetes.core.k8s": {
                    "state": "present",
                    "definition": {
                        "apiVersion": "longhorn.io/v1beta2",
                        "kind": "Volume",
                        "metadata": {"name": "data", "namespace": "default"},
                        "spec": {"numberOfReplicas": 3},
                    },
                },
            },
        ],
    )
    run = run_playbook(playbook, env=kube_api.env)
    assert run.rc == 0, run.output[-4000:]
    found = run.task("Read volumes").result["resources"]
    assert [r["metadata"]["name"] for r in found] == ["data"]
    assert run.task("Create a config map").changed
    assert srv.get("v1", "ConfigMap", "cfg", "default") is not None
    volume = srv.get("longhorn.io/v1beta2", "Volume", "data", "default")
    assert volume is not None
    assert volume["spec"]["numberOfReplicas"] == 3
    strategic = [r for r in srv.requests if r.method == "PATCH"]
    assert [r.status for r in strategic] == [415, 200]
    assert srv.token not in run.output


def test_kube_api_fixture(kube_api: KubeAPI) -> None:
    assert kube_api.env["K8S_AUTH_KUBECONFIG"] == str(kube_api.kubeconfig)
    config = yaml.safe_load(kube_api.kubeconfig.read_text())
    assert config["current-context"] == "lab"
    if kube_api.real:
        return
    srv = kube_api.require_server()
    assert config["clusters"][0]["cluster"]["server"] == srv.url
    assert Path(config["clusters"][0]["cluster"]["certificate-authority"]) == srv.ca_path
    assert config["users"][0]["user"]["token"] == srv.token
    assert oct(kube_api.kubeconfig.stat().st_mode & 0o777) == "0o600"


def test_serve_command_line_persists_state(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    kubeconfig, state, token = tmp_path / "kubeconfig", tmp_path / "state.json", tmp_path / "token"

    def serve() -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lab.kubeapi",
                "serve",
                "--port",
                "0",
                "--kubeconfig",
                str(kubeconfig),
                "--state-file",
                str(state),
                "--token-file",
                str(token),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("https://127.0.0.1:")
        return proc

    def client() -> KubeAPIServer:
        # read the running server's coordinates back from its kubeconfig
        config: dict[str, Any] = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        fake = KubeAPIServer(port=int(cluster["server"].rsplit(":", 1)[1]), token=config["users"][0]["user"]["token"])
        fake.ca_path = Path(cluster["certificate-authority"])
        return fake

    proc = serve()
    try:
        first = client()
        resp = request(
            first,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept"}},
        )
        assert resp.status == 201
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert (token.stat().st_mode & 0o777) == 0o600
    proc = serve()
    try:
        second = client()
        assert second.token == first.token
        resp = request(second, "GET", "/api/v1/namespaces/default/configmaps/kept")
        assert resp.status == 200
        assert int(resp.body["metadata"]["resourceVersion"]) > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
