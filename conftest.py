"""Root pytest configuration: shared fixtures for every test tree.

The lab's test servers register their fixtures as pytest plugins so unit, integration
and molecule-side tests all get the same ones.
"""

pytest_plugins: list[str] = ["lab.pihole.fixtures", "lab.kubeapi.fixtures"]
