# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection's Kubernetes modules share: their requirements and the C(homelab.pi_cluster.k8s) action group."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
requirements:
  - kubernetes >= 24.2.0 (Python library)
  - the kubernetes.core collection (its auth options and client)
attributes:
  action_group:
    description: Use C(group/homelab.pi_cluster.k8s) in C(module_defaults) to set the auth options once.
    support: full
    membership:
      - homelab.pi_cluster.k8s
"""
