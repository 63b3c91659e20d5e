"""Run one test Pi-hole as a long-lived process (what `hostlab up --piholes N` starts per Pi-hole).

    python -m lab.pihole serve --name pihole-1 --host 10.251.78.201 --port 443 \
        --tls CERT KEY --password-file .lab/run/lab/vault.yml --password-var vault_pihole_password \
        --state .lab/run/lab/piholes/pihole-1/ftl.json

The password is read from a file (never from the command line, which `ps` shows). The FTL
config (records, password hash ...) is loaded from --state at start and written back on
SIGTERM/SIGINT, so a stop and start keeps the records as a real Pi-hole restart does. Every
request is logged as one line to stdout (method, path, status; sids redacted); spec
violations are logged as lines starting with "VIOLATION".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import threading
from pathlib import Path
from typing import Any

import yaml

from .server import PiholeServer


def read_password(path: Path, var: str | None) -> str:
    text = path.read_text(encoding="utf-8")
    if var is None:
        return text.strip()
    value = (yaml.safe_load(text) or {}).get(var)
    if not isinstance(value, str) or not value:
        raise SystemExit(f"{path}: no string {var!r} in it")
    return value


def save_state(server: PiholeServer, state: Path) -> None:
    tmp = state.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the password hash
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(server.ftl.config, f)
    tmp.replace(state)


class LoggedServer(PiholeServer):
    """Writes each request and every new spec violation as a line, as the request finishes."""

    _log_lock = threading.Lock()  # one server per process

    def dispatch(self, *args: Any, **kwargs: Any) -> Any:
        with self._log_lock:
            answer = super().dispatch(*args, **kwargs)
            request = self.requests.pop()  # a long-lived server must not keep every request
            path = re.sub(r"(?i)\bsid=[^&]*", "sid=<redacted>", request.path)
            print(f"{request.method} {path} -> {request.status}", flush=True)
            while self.violations:
                print(f"VIOLATION {self.violations.pop(0)}", flush=True)
        return answer


def serve(args: argparse.Namespace) -> None:
    password = read_password(args.password_file, args.password_var)
    tls = (str(args.tls[0]), str(args.tls[1])) if args.tls else None
    server = LoggedServer(host=args.host, port=args.port, name=args.name, password=password, tls=tls)
    if args.state and args.state.exists():
        server.ftl.config = json.loads(args.state.read_text(encoding="utf-8"))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    server.start()
    print(f"{args.name}: serving the Pi-hole v6 API on {server.url}/api", flush=True)
    stopped.wait()
    server.stop()
    if args.state:
        save_state(server, args.state)
    print(f"{args.name}: stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lab.pihole", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the Pi-hole v6 API until SIGTERM")
    p.add_argument("--name", default="pihole")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--tls", nargs=2, type=Path, metavar=("CERT", "KEY"), help="serve HTTPS with this certificate")
    p.add_argument("--password-file", type=Path, required=True, help="file holding the admin password")
    p.add_argument("--password-var", help="the file is a YAML vars file; the password is this variable")
    p.add_argument("--state", type=Path, help="FTL config loaded at start, saved at stop")
    args = parser.parse_args(argv)
    serve(args)


if __name__ == "__main__":
    main()
