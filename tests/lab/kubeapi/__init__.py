"""A Kubernetes API server for tests (test-only; never shipped in the collection).

``KubeAPIServer`` serves discovery, CRUD/PATCH/WATCH with resourceVersion conflicts, label and field
selectors, status/eviction/scale subresources, and validates custom resources against the upstream CRD
schemas in ``../shared/upstream``. See docs/testing-kubernetes.md for what it covers and how it differs
from a real API server.
"""

from .cluster import wait_until
from .errors import ApiError
from .server import DEFAULT_VERSION, Faults, KubeAPIServer, RecordedRequest

__all__ = ["DEFAULT_VERSION", "ApiError", "Faults", "KubeAPIServer", "RecordedRequest", "wait_until"]
