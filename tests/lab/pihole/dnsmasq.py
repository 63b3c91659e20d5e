"""A real dnsmasq on loopback serving Pi-hole v5's local DNS files (test-only).

Like Pi-hole v5: ``custom.list`` is an additional hosts file (re-read on SIGHUP, which is
what ``pihole restartdns reload`` does) and ``05-pihole-custom-cname.conf`` holds ``cname=``
lines, which are configuration and only take effect after a full restart
(``pihole restartdns``). ``reload.sh`` and ``restart.sh`` in the work directory do exactly
that, so the module's ``v5_reload_command``/``v5_restart_command`` can point at them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port(host: str) -> int:
    """A port free for both UDP and TCP on ``host``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free port on {host}")


class Dnsmasq:
    def __init__(self, workdir: Path, host: str = "127.0.0.53") -> None:
        self.binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        self.workdir = workdir
        self.host = host
        self.port = free_port(host)
        self.custom_list = workdir / "custom.list"
        self.cname_conf = workdir / "05-pihole-custom-cname.conf"
        self.pidfile = workdir / "dnsmasq.pid"
        self.logfile = workdir / "dnsmasq.log"
        self.reload_script = workdir / "reload.sh"
        self.restart_script = workdir / "restart.sh"
        for path in (self.custom_list, self.cname_conf):
            path.touch()
        args = " ".join(self.args())
        self.restart_script.write_text(
            f'#!/bin/sh\nset -e\nkill "$(cat {self.pidfile})"\n'
            f'while kill -0 "$(cat {self.pidfile})" 2>/dev/null; do sleep 0.05; done\n'
            f"exec {args}\n",
            encoding="utf-8",
        )
        self.reload_script.write_text(f'#!/bin/sh\nkill -HUP "$(cat {self.pidfile})"\n', encoding="utf-8")
        for script in (self.restart_script, self.reload_script):
            script.chmod(0o755)

    def args(self) -> list[str]:
        return [
            self.binary,
            f"--port={self.port}",
            f"--listen-address={self.host}",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            f"--addn-hosts={self.custom_list}",
            f"--conf-file={self.cname_conf}",
            f"--pid-file={self.pidfile}",
            f"--log-facility={self.logfile}",
            "--user=root",
            "--group=root",
        ]

    @property
    def pid(self) -> int:
        return int(self.pidfile.read_text(encoding="utf-8").strip())

    def start(self) -> Dnsmasq:
        subprocess.run(self.args(), check=True, capture_output=True, timeout=20)  # daemonizes
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.pidfile.exists() and self.pidfile.read_text(encoding="utf-8").strip():
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    if probe.connect_ex((self.host, self.port)) == 0:
                        return
            time.sleep(0.05)
        raise RuntimeError(f"dnsmasq did not start: {self.logfile.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if not self.pidfile.exists():
            return
        try:
            pid = self.pid
            os.kill(pid, signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def query(self, name: str, qtype: str = "A") -> list[str]:
        """Answers of ``dig +short`` (empty for NXDOMAIN / no data)."""
        self._wait_ready()
        out = subprocess.run(
            ["dig", f"@{self.host}", "-p", str(self.port), "+short", "+time=2", "+tries=2", name, qtype],
            check=True,
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]
