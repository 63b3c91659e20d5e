#!/usr/bin/python
# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pihole_dns
short_description: Local DNS records (A, AAAA, CNAME) on one or more Pi-hole servers
version_added: 0.1.0
description:
  - Makes Pi-hole's local DNS records declarative on every server of an HA pair (or more).
  - B(Pi-hole v6) (O(api_version=6), the default) uses the FTL REST API. Per server it opens
    exactly one session (C(POST /api/auth)), reads C(dns.hosts) and C(dns.cnameRecords) once
    (C(GET /api/config/dns)), writes only the differences and always logs out (C(DELETE /api/auth)),
    also on failure. A no-op run costs three requests per server. Needs only HTTP access to the
    servers, so run it on the controller (C(delegate_to=localhost), C(run_once=true)).
  - B(Pi-hole v5) (O(api_version=5)) runs on the Pi-hole host itself and edits C(/etc/pihole/custom.list)
    and C(/etc/dnsmasq.d/05-pihole-custom-cname.conf) atomically (temporary file and rename, mode and
    owner kept), then runs C(pihole restartdns reload) when only A/AAAA records changed (dnsmasq re-reads
    hosts files) or C(pihole restartdns) when CNAMEs changed (they are configuration and need a restart).
  - Names are compared lower-case without a trailing dot and addresses in canonical form, so
    C(Grafana.Lab.) and C(grafana.lab) or C(2001:DB8::0:1) and C(2001:db8::1) are the same record;
    new entries are written exactly as Pi-hole stores them (C(IP NAME) and C(NAME,TARGET[,TTL])).
  - An A/AAAA record makes the listed addresses the only ones of that family for that name
    (a changed IP replaces the old one). Records of names not in the input are never touched,
    unless O(exclusive=true), which purges the records inside O(domain) that are not listed.
author:
  - homelab.pi_cluster maintainers (@homelab)
extends_documentation_fragment:
  - homelab.pi_cluster.pihole
  - homelab.pi_cluster.pihole.http
attributes:
  check_mode:
    description: Can run in check mode and predict C(changed) without changing anything.
    support: full
    details: Logs in, reads and logs out; writes nothing. C(changed) and the diff predict the real run.
  diff_mode:
    description: Returns details on what has changed (or would change in check mode).
    support: full
    details: One diff per server with the C(hosts) and C(cnameRecords) arrays before and after.
options:
  records:
    description:
      - The records. Each is either an A/AAAA record (O(records[].name) and O(records[].ip)) or a CNAME
        (O(records[].name), O(records[].target), optional O(records[].ttl)).
      - With O(state=absent) a record with only O(records[].name) removes every record of that name.
      - Mutually exclusive with the single-record shorthand O(name), O(ip), O(target), O(ttl).
    type: list
    elements: dict
    suboptions:
      name:
        description: DNS name, for example V(grafana.lab.example). A CNAME name may start with V(*.).
        type: str
        required: true
      ip:
        description: IPv4 address (A record) or IPv6 address (AAAA record).
        type: str
      target:
        description: CNAME target name. It should resolve on the Pi-hole (a local record) for dnsmasq to answer.
        type: str
      ttl:
        description: TTL of the CNAME answer in seconds (0 or more). Only for CNAMEs.
        type: int
  name:
    description: Single-record shorthand, see O(records[].name).
    type: str
  ip:
    description: Single-record shorthand, see O(records[].ip).
    type: str
  target:
    description: Single-record shorthand, see O(records[].target).
    type: str
  ttl:
    description: Single-record shorthand, see O(records[].ttl).
    type: int
  state:
    description: Whether the records must exist or not.
    type: str
    choices: [present, absent]
    default: present
  exclusive:
    description:
      - Remove every record inside O(domain) (the domain itself and its subdomains) that is not in O(records).
        Records outside O(domain) are never touched, and every listed record must be inside it.
      - Only with O(state=present); requires O(domain).
    type: bool
    default: false
  domain:
    description: The DNS domain O(exclusive) manages, for example V(lab.example).
    type: str
  api_version:
    description:
      - V(6) uses the REST API of Pi-hole v6 on the O(servers).
      - V(5) edits the v5 files on the host the module runs on (O(servers) must not be set).
      - V(auto) sends C(GET /api/auth) to each server; v6 if they all answer like FTL v6, otherwise v5
        if O(v5_custom_list) exists on the host the module runs on, otherwise the task fails.
    type: str
    choices: ['5', '6', auto]
    default: '6'
  write_mode:
    description:
      - How v6 changes are written.
      - V(batch) sends one C(PATCH /api/config) per server with the new C(dns.hosts) and/or C(dns.cnameRecords)
        arrays. FTL validates and applies it as a whole (never a partial write) and restarts its resolver once.
      - V(per_item) sends one C(PUT) or C(DELETE /api/config/dns/{hosts|cnameRecords}/{entry}) per changed entry,
        with C(restart=false) on all but the last. It leaves concurrent edits of other entries alone, but an
        error part way leaves the earlier items written. C(Item already present) and C(404) on delete count as done.
    type: str
    choices: [batch, per_item]
    default: batch
  v5_custom_list:
    description: The v5 hosts file with the A/AAAA records.
    type: path
    default: /etc/pihole/custom.list
  v5_cname_conf:
    description: The v5 dnsmasq file with the C(cname=) lines.
    type: path
    default: /etc/dnsmasq.d/05-pihole-custom-cname.conf
  v5_reload_command:
    description: Command run after only O(v5_custom_list) changed (dnsmasq re-reads hosts files on SIGHUP).
    type: str
    default: pihole restartdns reload
  v5_restart_command:
    description: Command run after O(v5_cname_conf) changed (CNAMEs need a full resolver restart).
    type: str
    default: pihole restartdns
seealso:
  - name: Pi-hole API documentation
    description: The FTL REST API reference (also served by every v6 Pi-hole under /api/docs).
    link: https://docs.pi-hole.net/api/
"""

EXAMPLES = r"""
- name: Ingress names on both Pi-holes (v6, from the controller)
  homelab.pi_cluster.pihole_dns:
    servers:
      - name: primary
        url: https://192.168.1.25
        password: "{{ vault_pihole_primary_password }}"
      - name: secondary
        url: https://192.168.1.26
        password: "{{ vault_pihole_secondary_password }}"
    ca_path: /etc/ssl/certs/lab-ca.pem
    records:
      - name: grafana.lab.example
        ip: 192.168.1.240
      - name: grafana.lab.example
        ip: fd00::240
      - name: www.lab.example
        target: grafana.lab.example
        ttl: 300
  delegate_to: localhost
  run_once: true

- name: Make lab.example exactly this list (other records in lab.example are removed)
  homelab.pi_cluster.pihole_dns:
    server: https://pihole.lab.example
    password: "{{ vault_pihole_app_password }}"  # app password: needs webserver.api.app_sudo=true
    domain: lab.example
    exclusive: true
    records: "{{ ingress_hosts | map('community.general.dict_kv', 'name') | map('combine', {'ip': '192.168.1.240'}) }}"
  delegate_to: localhost
  run_once: true

- name: Remove every record of a name
  homelab.pi_cluster.pihole_dns:
    server: https://pihole.lab.example
    password: "{{ vault_pihole_password }}"
    name: old.lab.example
    state: absent
  delegate_to: localhost

- name: Pi-hole v5, on the Pi-hole hosts themselves
  homelab.pi_cluster.pihole_dns:
    api_version: "5"
    name: grafana.lab.example
    ip: 192.168.1.240
  become: true
"""

RETURN = r"""
changed:
  description: Whether any server changed (or would change, in check mode).
  returned: always
  type: bool
added:
  description: Records added on at least one server, for example C(A grafana.lab.example 192.168.1.240).
  returned: always
  type: list
  elements: str
removed:
  description: Records removed on at least one server, for example C(CNAME www.lab.example -> grafana.lab.example).
  returned: always
  type: list
  elements: str
per_server:
  description: One entry per server, in the order of O(servers).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The server's name.
      type: str
    url:
      description: The server's URL (v6 only).
      type: str
    api_version:
      description: V(6) or V(5).
      type: int
    changed:
      description: Whether this server changed (or would).
      type: bool
    failed:
      description: Whether this server failed.
      type: bool
    msg:
      description: Why this server failed.
      type: str
      returned: when failed
    added:
      description: Records added (or to add) on this server.
      type: list
      elements: str
    removed:
      description: Records removed (or to remove) on this server.
      type: list
      elements: str
    requests:
      description: HTTP requests sent to this server (v6).
      type: int
    sessions:
      description: API sessions opened on this server (v6; 2 when an expired session was re-opened).
      type: int
  sample:
    - name: primary
      url: https://192.168.1.25
      api_version: 6
      changed: true
      failed: false
      added: [A grafana.lab.example 192.168.1.240]
      removed: []
      requests: 4
      sessions: 1
"""

import os
from typing import Any, Dict, List, Tuple

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_api import PiholeClient
from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_dns import (
    DnsSync,
    ServerResult,
    check_numbers,
    desired_from_params,
    failure_message,
    pihole_connection_spec,
    servers_from_params,
)
from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_records import (
    PiholeError,
    PiholeInputError,
)

RECORD_OPTIONS = {
    "name": {"type": "str", "required": True},
    "ip": {"type": "str"},
    "target": {"type": "str"},
    "ttl": {"type": "int"},
}


def argument_spec() -> Dict[str, Any]:
    return pihole_connection_spec() | {
        "records": {"type": "list", "elements": "dict", "options": RECORD_OPTIONS},
        "name": {"type": "str"},
        "ip": {"type": "str"},
        "target": {"type": "str"},
        "ttl": {"type": "int"},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "exclusive": {"type": "bool", "default": False},
        "domain": {"type": "str"},
        "api_version": {"type": "str", "choices": ["5", "6", "auto"], "default": "6"},
        "write_mode": {"type": "str", "choices": ["batch", "per_item"], "default": "batch"},
        "v5_custom_list": {"type": "path", "default": "/etc/pihole/custom.list"},
        "v5_cname_conf": {"type": "path", "default": "/etc/dnsmasq.d/05-pihole-custom-cname.conf"},
        "v5_reload_command": {"type": "str", "default": "pihole restartdns reload"},
        "v5_restart_command": {"type": "str", "default": "pihole restartdns"},
    }


def resolve_api_version(params: Dict[str, Any]) -> int:
    """Explicit 5/6, or auto: v6 if every server answers GET /api/auth like FTL, else local v5 files."""
    if params["api_version"] != "auto":
        return int(params["api_version"])
    if not (params.get("servers") or params.get("server")):
        return 5
    specs = servers_from_params(params)
    answers = [
        PiholeClient(s.url, None, validate_certs=s.validate_certs, ca_path=s.ca_path, timeout=params["timeout"]).probe()
        for s in specs
    ]
    if all(answers):
        return 6
    if os.path.exists(params["v5_custom_list"]):
        return 5
    silent = [s.name for s, a in zip(specs, answers, strict=True) if not a]
    raise PiholeInputError(
        "api_version",
        f"auto: no Pi-hole v6 API at {', '.join(silent)} and no v5 "
        f"{params['v5_custom_list']} on this host; set api_version to 5 or 6",
    )


def run(module: AnsibleModule) -> Tuple[List[ServerResult], Any]:
    params = module.params
    check_numbers(params)
    desired = desired_from_params(params)
    version = resolve_api_version(params)
    sync = DnsSync(
        desired,
        module.check_mode,
        write_mode=params["write_mode"],
        timeout=params["timeout"],
        retries=params["retries"],
    )
    if version == 5:
        if params["api_version"] == "5" and (params.get("servers") or params.get("server")):
            raise PiholeInputError(
                "servers",
                "api_version 5 edits files on the host the module runs on; "
                "remove servers/server (run the task on the Pi-hole hosts)",
            )

        def run_command(command: str) -> Tuple[int, str, str]:
            rc, out, err = module.run_command(command)
            return rc, out, err

        result = sync.sync_v5(
            custom_list=params["v5_custom_list"],
            cname_conf=params["v5_cname_conf"],
            reload_command=params["v5_reload_command"],
            restart_command=params["v5_restart_command"],
            run_command=run_command,
        )
        return [result], desired
    servers = servers_from_params(params)  # validated before the first request
    return [sync.sync_v6(server) for server in servers], desired


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=[
            ("records", "name"),
            ("records", "ip"),
            ("records", "target"),
            ("records", "ttl"),
            ("ip", "target"),
            ("server", "servers"),
        ],
        required_by={"ip": "name", "target": "name", "ttl": "target"},
        required_if=[("exclusive", True, ("domain",))],
    )
    try:
        results, desired = run(module)
    except PiholeInputError as exc:
        module.fail_json(msg=f"invalid input, nothing was sent: {exc}", field=exc.field)
    except PiholeError as exc:  # pragma: no cover - every server error is captured per server
        module.fail_json(msg=str(exc))

    output: Dict[str, Any] = {
        "changed": any(r.changed for r in results),
        "added": sorted({a for r in results for a in r.added}),
        "removed": sorted({x for r in results for x in r.removed}),
        "per_server": [r.as_dict() for r in results],
    }
    if module._diff:
        output["diff"] = [r.diff() for r in results if r.read]
    if any(r.failed for r in results):
        module.fail_json(msg=failure_message(results, desired), **output)
    module.exit_json(**output)


if __name__ == "__main__":
    main()
