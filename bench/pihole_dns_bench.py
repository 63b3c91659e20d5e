"""Benchmark: pihole_dns against the usual ansible.builtin.uri loop, on two test Pi-holes.

200 A records on 2 servers (an HA pair), first sync and a no-op re-sync, each way:

- module: one ``homelab.pi_cluster.pihole_dns`` task (one session per server, one read,
  one batched write);
- uri loop: what people write without the module, ``include_tasks`` looping over
  records x servers with login, ``PUT /api/config/dns/hosts/<entry>`` and logout per record.

Prints wall time, HTTP requests and API sessions opened, and the ratios. Not part of the
tests (timings depend on the machine). Run: ``python bench/pihole_dns_bench.py [--records N]``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from lab.pihole import PiholeServer  # noqa: E402
from lab.playbook import run_playbook, write_playbook  # noqa: E402

ENV = {"ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable}

URI_TASKS = """\
- name: Log in
  ansible.builtin.uri:
    url: "{{ item.1.url }}/api/auth"
    method: POST
    body_format: json
    body: {password: "{{ item.1.password }}"}
  register: login
  no_log: true
- name: Add the record
  ansible.builtin.uri:
    url: "{{ item.1.url }}/api/config/dns/hosts/{{ (item.0.ip ~ ' ' ~ item.0.name) | urlencode }}"
    method: PUT
    headers: {X-FTL-SID: "{{ login.json.session.sid }}"}
    status_code: [201, 400]
  no_log: true
- name: Log out
  ansible.builtin.uri:
    url: "{{ item.1.url }}/api/auth"
    method: DELETE
    headers: {X-FTL-SID: "{{ login.json.session.sid }}"}
    status_code: [204]
  no_log: true
"""


def module_playbook(directory: Path, servers: list[PiholeServer]) -> Path:
    task = {
        "name": "pihole dns",
        "homelab.pi_cluster.pihole_dns": {
            "servers": [{"name": s.name, "url": s.url, "password": f"{{{{ pw_{s.name} }}}}"} for s in servers],
            "records": "{{ records }}",
        },
    }
    return write_playbook(directory, [task], name="module.yml")


def uri_playbook(directory: Path) -> Path:
    (directory / "one_record.yml").write_text(URI_TASKS, encoding="utf-8")
    task = {
        "name": "Records, one login each",
        "ansible.builtin.include_tasks": "one_record.yml",
        "loop": "{{ records | product(servers) | list }}",
    }
    return write_playbook(directory, [task], name="uri.yml")


def measure(servers: list[PiholeServer], playbook: Path, extra_vars: dict[str, Any]) -> dict[str, float]:
    for s in servers:
        s.reset_log()
    started = time.monotonic()
    run = run_playbook(playbook, extra_vars=extra_vars, env=ENV, verbosity=0, timeout=3600)
    wall = time.monotonic() - started
    if run.rc != 0:
        raise SystemExit(f"{playbook.name} failed:\n{run.output[-3000:]}")
    requests = sum(len(s.requests) for s in servers)
    sessions = sum(
        1 for s in servers for r in s.requests if r.method == "POST" and r.path == "/auth" and r.status == 200
    )
    per_server = max(len(s.requests) for s in servers)
    assert all(s.open_sessions == 0 for s in servers), "a session was left open"
    return {"wall": wall, "requests": requests, "sessions": sessions, "per_server": per_server}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--skip-uri", action="store_true", help="only measure the module")
    parser.add_argument(
        "--uri-sample",
        type=int,
        default=0,
        help="run the uri loop on only this many records and scale its wall time linearly (printed as such)",
    )
    args = parser.parse_args()

    servers = [
        PiholeServer(host=f"127.0.0.{40 + i}", password=secrets.token_urlsafe(18), name=name).start()
        for i, name in enumerate(("primary", "secondary"))
    ]
    records = [
        {"name": f"svc{i:03d}.lab.example", "ip": f"10.20.{i // 250}.{i % 250 + 1}"} for i in range(args.records)
    ]
    base_vars: dict[str, Any] = {"records": records, **{f"pw_{s.name}": s.password for s in servers}}
    sample = args.uri_sample if 0 < args.uri_sample < args.records else args.records
    uri_vars = {
        **base_vars,
        "records": records[:sample],
        "servers": [{"url": s.url, "password": s.password} for s in servers],
    }
    results: dict[tuple[str, str], dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="pihole-bench-") as tmp:
            directory = Path(tmp)
            plans = [("module", module_playbook(directory, servers), base_vars, 1.0)]
            if not args.skip_uri:
                plans.append(("uri loop", uri_playbook(directory), uri_vars, args.records / sample))
            for label, playbook, extra, scale in plans:
                for s in servers:
                    s.ftl.set_records(hosts=[], cnames=[])
                for phase in ("first sync", "no-op re-sync"):
                    measured = measure(servers, playbook, extra)
                    # the uri loop costs the same per record: requests, sessions and time scale linearly
                    results[(label, phase)] = {k: v * scale for k, v in measured.items()}
                    note = f" (measured on {sample} records, scaled x{scale:g})" if scale != 1 else ""
                    print(f"{label:9} {phase:14} {results[(label, phase)]}{note}", flush=True)
                assert all(len(s.ftl.hosts) == len(extra["records"]) for s in servers)
    finally:
        for s in servers:
            s.stop()

    print(f"\n{args.records} records on {len(servers)} servers")
    print(f"{'approach':10} {'phase':15} {'wall s':>8} {'requests':>9} {'sessions':>9} {'req/server':>11}")
    for (label, phase), r in results.items():
        print(
            f"{label:10} {phase:15} {r['wall']:8.2f} {r['requests']:9.0f} {r['sessions']:9.0f} {r['per_server']:11.0f}"
        )
    if not args.skip_uri:
        for phase in ("first sync", "no-op re-sync"):
            m, u = results[("module", phase)], results[("uri loop", phase)]
            print(
                f"ratio uri/module, {phase}: {u['wall'] / m['wall']:.1f}x faster, "
                f"{u['requests'] / m['requests']:.1f}x fewer requests, "
                f"{u['sessions'] / m['sessions']:.1f}x fewer sessions"
            )
    noop = results[("module", "no-op re-sync")]
    print(f"module no-op re-sync: {noop['per_server']:.0f} requests per server (target <= 3)")


if __name__ == "__main__":
    main()
