"""The helm_chart_objects filter: Namespace and HelmChart objects from a chart list, unpinned charts refused."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.pi_cluster.plugins.filter.helm_chart_objects import helm_chart_objects

LONGHORN = {
    "name": "longhorn",
    "chart": "longhorn",
    "repo": "https://charts.longhorn.io",
    "version": "1.8.1",
    "namespace": "longhorn-system",
    "values": {"persistence": {"defaultClass": True}, "b": 1, "a": 2},
}


def test_namespaces_first_once_each_then_one_helmchart_per_chart() -> None:
    cert = {"name": "cert-manager", "chart": "cert-manager", "version": "v1.16.2", "namespace": "cert-manager"}
    ui = {"name": "longhorn-ui", "chart": "ui", "version": "0.1.0", "namespace": "longhorn-system"}
    plain = {"name": "hello", "chart": "oci://registry.example/hello", "version": "2.0.0"}
    objects = helm_chart_objects([LONGHORN, cert, ui, plain], "helm")
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Namespace", "longhorn-system"),
        ("Namespace", "cert-manager"),
        ("Namespace", "default"),
        ("HelmChart", "longhorn"),
        ("HelmChart", "cert-manager"),
        ("HelmChart", "longhorn-ui"),
        ("HelmChart", "hello"),
    ]
    assert {o["metadata"]["namespace"] for o in objects if o["kind"] == "HelmChart"} == {"helm"}
    hello = objects[-1]["spec"]
    assert hello["targetNamespace"] == "default" and "repo" not in hello
    assert hello["valuesContent"] == "{}\n"


def test_helmchart_spec_values_sorted_yaml_and_passed_through_keys() -> None:
    chart = {**LONGHORN, "set": {"x": "1"}, "bootstrap": False, "timeout": "10m", "unknown": "dropped"}
    helm = helm_chart_objects([chart])[-1]
    assert helm["apiVersion"] == "helm.cattle.io/v1"
    assert helm["metadata"] == {
        "name": "longhorn",
        "namespace": "kube-system",
        "labels": {"app.kubernetes.io/managed-by": "homelab.pi_cluster"},
    }
    spec = helm["spec"]
    assert spec["chart"] == "longhorn" and spec["version"] == "1.8.1" and spec["repo"] == LONGHORN["repo"]
    assert spec["targetNamespace"] == "longhorn-system" and spec["createNamespace"] is True
    assert spec["set"] == {"x": "1"} and spec["bootstrap"] is False and spec["timeout"] == "10m"
    assert "unknown" not in spec
    assert spec["valuesContent"].splitlines()[:2] == ["a: 2", "b: 1"]
    assert yaml.safe_load(spec["valuesContent"]) == LONGHORN["values"]


@pytest.mark.parametrize(
    ("chart", "message"),
    [
        ({"chart": "x", "version": "1.0.0"}, r"HelmChart \[0\]: .*name is missing"),
        ({"name": "minio", "version": "1.0.0"}, "HelmChart minio: .*chart is missing"),
        ({"name": "minio", "chart": "minio"}, "HelmChart minio: .*version is missing"),
        ({"name": "minio", "chart": "minio", "version": 5}, "HelmChart minio: .*version is missing or not a string"),
        ({"name": "minio", "chart": "minio", "version": "~5.3"}, "exact chart version .* got ~5.3"),
        ({"name": "minio", "chart": "minio", "version": ">=1.0"}, "got >=1.0"),
        ({"name": "minio", "chart": "minio", "version": "1.0.0", "values": ["a"]}, "minio: values must be a dict"),
        ("minio", r"chart \[0\] must be a dict"),
    ],
)
def test_unnamed_unpinned_or_malformed_charts_are_refused_naming_them(chart: Any, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        helm_chart_objects([chart])


def test_not_a_list_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="expects a list of charts, got dict"):
        helm_chart_objects(LONGHORN)
