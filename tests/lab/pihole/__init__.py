"""Test-only Pi-hole stand-ins: a v6 API server validated against the upstream spec, and dnsmasq for v5."""

from .server import PiholeServer, RecordedRequest

__all__ = ["PiholeServer", "RecordedRequest"]
