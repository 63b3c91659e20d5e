"""``python -m lab.kubeapi serve``: run the test API server for the lab (and the stand-in k3s)."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

from .server import DEFAULT_VERSION, KubeAPIServer


def _token(path: Path | None) -> str:
    """Reuse the token in ``path`` (so kubeconfigs stay valid across restarts), else create and store one."""
    if path and path.exists() and path.read_text(encoding="utf-8").strip():
        return path.read_text(encoding="utf-8").strip()
    token = secrets.token_urlsafe(32)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")
    return token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.kubeapi")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the API until SIGTERM/SIGINT")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=6443)
    serve.add_argument("--kubeconfig", type=Path, required=True, help="write a kubeconfig for this server here")
    serve.add_argument("--state-file", type=Path, help="keep objects in this JSON file across restarts")
    serve.add_argument("--token-file", type=Path, help="bearer token file (reused if present, else created)")
    serve.add_argument("--cert-dir", type=Path, help="CA and serving certificate (reused if present, else created)")
    serve.add_argument("--tls-san", action="append", default=[], help="extra IP/DNS name for the certificate")
    serve.add_argument("--crd-file", action="append", type=Path, help="CRD file(s) instead of the upstream set")
    serve.add_argument("--version", default=DEFAULT_VERSION, help="gitVersion reported by /version")
    serve.add_argument("--no-tls", action="store_true", help="plain HTTP")
    serve.add_argument("--embed-ca", action="store_true", help="certificate-authority-data in the kubeconfig")
    args = parser.parse_args(argv)

    cert_dir = args.cert_dir or (args.state_file.parent / "tls" if args.state_file else None)
    server = KubeAPIServer(
        host=args.host,
        port=args.port,
        tls=not args.no_tls,
        crd_files=args.crd_file,
        token=_token(args.token_file),
        tls_sans=args.tls_san,
        cert_dir=cert_dir,
        version=args.version,
        state_file=args.state_file,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server.start()
    server.write_kubeconfig(args.kubeconfig, embed_ca=args.embed_ca)
    print(server.url, flush=True)
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
