# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: helm_chart_objects
short_description: K3s HelmChart objects (and their target Namespaces) from a list of charts
version_added: 0.1.0
description:
  - Takes a list of charts as the C(homelab.pi_cluster.addons) role's C(addons_helm_charts) declares them and
    returns the Kubernetes objects that install them through K3s's Helm controller, ready for
    P(homelab.pi_cluster.k8s_objects#module) - first one C(Namespace) per distinct target namespace (so objects
    other roles write there need not wait for the Helm controller), then one C(helm.cattle.io/v1) C(HelmChart)
    per chart.
  - Each chart needs C(name), C(chart) and C(version), an exact chart version (V(1.8.1), V(v1.16.2)), not a
    range; the filter fails naming the chart and the field otherwise.
  - C(values) (a dict) becomes C(valuesContent) as YAML with sorted keys; C(repo), C(set), C(bootstrap) and
    C(timeout) are passed through; C(namespace) is the target namespace (default V(default)).
author:
  - homelab.pi_cluster maintainers (@homelab)
options:
  _input:
    description: The charts.
    type: list
    elements: dict
    required: true
  namespace:
    description: Namespace of the HelmChart objects themselves.
    type: str
    default: kube-system
"""

EXAMPLES = r"""
- name: Install the add-ons through K3s's Helm controller
  homelab.pi_cluster.k8s_objects:
    definitions: "{{ addons_helm_charts | homelab.pi_cluster.helm_chart_objects('kube-system') }}"
"""

RETURN = r"""
_value:
  description: Namespace objects, then HelmChart objects, in the order of the charts.
  type: list
  elements: dict
"""

import re
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.plugins.filter.core import to_nice_yaml

# An exact chart version (SemVer, optionally with a leading v); ranges such as ~1.8 or >=1 are refused.
EXACT_VERSION = re.compile(r"^v?[0-9][0-9A-Za-z.+-]*$")
PASSED_THROUGH = ("repo", "set", "bootstrap", "timeout")
MANAGED_BY = {"app.kubernetes.io/managed-by": "homelab.pi_cluster"}


def _checked(chart: Any, index: int) -> Mapping[str, Any]:
    if not isinstance(chart, Mapping):
        raise AnsibleFilterError(f"helm_chart_objects: chart [{index}] must be a dict, got {type(chart).__name__}")
    label = chart.get("name") or f"[{index}]"
    for field in ("name", "chart", "version"):
        value = chart.get(field)
        if not isinstance(value, str) or not value:
            raise AnsibleFilterError(
                f"HelmChart {label}: needs name, chart and an exact version; {field} is missing or not a string"
            )
    if not EXACT_VERSION.match(chart["version"]):
        raise AnsibleFilterError(
            f"HelmChart {label}: version must be an exact chart version (for example 1.8.1, not a range); "
            f"got {chart['version']}"
        )
    if not isinstance(chart.get("values", {}), Mapping):
        raise AnsibleFilterError(f"HelmChart {label}: values must be a dict")
    return chart


def helm_chart_objects(charts: Any, namespace: str = "kube-system") -> list[dict[str, Any]]:
    if not isinstance(charts, list):
        raise AnsibleFilterError(f"helm_chart_objects: expects a list of charts, got {type(charts).__name__}")
    checked = [_checked(chart, index) for index, chart in enumerate(charts)]
    targets = list(dict.fromkeys(chart.get("namespace") or "default" for chart in checked))
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target}} for target in targets
    ]
    for chart in checked:
        spec: dict[str, Any] = {
            "chart": chart["chart"],
            "version": chart["version"],
            "targetNamespace": chart.get("namespace") or "default",
            "createNamespace": True,
            "valuesContent": to_nice_yaml(dict(chart.get("values") or {}), indent=2, sort_keys=True),
        }
        spec.update({key: chart[key] for key in PASSED_THROUGH if key in chart})
        objects.append(
            {
                "apiVersion": "helm.cattle.io/v1",
                "kind": "HelmChart",
                "metadata": {"name": chart["name"], "namespace": namespace, "labels": dict(MANAGED_BY)},
                "spec": spec,
            }
        )
    return objects


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"helm_chart_objects": helm_chart_objects}
