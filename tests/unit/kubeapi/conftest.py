"""Fixtures for the test API server's own tests: a fresh server per test and raw HTTP helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from lab.kubeapi import KubeAPIServer
from lab.kubeapi.rawclient import Response, request


@pytest.fixture
def srv() -> Iterator[KubeAPIServer]:
    with KubeAPIServer() as server:
        yield server


class Api:
    """Raw requests against one server: ``api.post(path, body)`` returns status, parsed body and headers."""

    def __init__(self, server: KubeAPIServer) -> None:
        self.server = server

    def get(self, path: str) -> Response:
        return request(self.server, "GET", path)

    def post(self, path: str, body: Any) -> Response:
        return request(self.server, "POST", path, body)

    def put(self, path: str, body: Any) -> Response:
        return request(self.server, "PUT", path, body)

    def patch(self, path: str, body: Any, content_type: str = "application/merge-patch+json") -> Response:
        return request(self.server, "PATCH", path, body, content_type=content_type)

    def delete(self, path: str, body: Any = None) -> Response:
        return request(self.server, "DELETE", path, body)


@pytest.fixture
def api(srv: KubeAPIServer) -> Api:
    return Api(srv)
