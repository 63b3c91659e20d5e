"""Root pytest configuration: shared fixtures for every test tree.

Ansible's collection finder is installed before any test module is imported, so
``ansible_collections.homelab.pi_cluster`` (the symlinked tree under .build/collections)
and the collections from the pinned ``ansible`` package import exactly as they do under
ansible-playbook, and plugin loaders work in every test whatever the collection order.
The lab's test servers register their fixtures as pytest plugins.
"""

from pathlib import Path

from ansible.plugins.loader import init_plugin_loader

init_plugin_loader([str(Path(__file__).resolve().parent / ".build" / "collections")])

pytest_plugins: list[str] = ["lab.pihole.fixtures", "lab.kubeapi.fixtures"]
