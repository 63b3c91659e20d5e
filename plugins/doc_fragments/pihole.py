# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by modules that talk to the Pi-hole v6 (FTL) REST API."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  servers:
    description:
      - The Pi-hole servers to manage (for example an HA pair). Every server gets the full change.
      - A failure on one server does not stop the others; the task then fails naming the failed
        server(s) and what is missing there.
      - Mutually exclusive with O(server).
    type: list
    elements: dict
    suboptions:
      url:
        description:
          - Base URL of the Pi-hole web server, for example V(https://pihole1.lab.example) or
            V(http://192.168.1.25:8080). A trailing V(/api) is optional.
        type: str
        required: true
      password:
        description:
          - The admin password or an app password of this server. Defaults to O(password).
          - Keep it in a vault. It is never logged or returned.
          - An app password needs C(webserver.api.app_sudo=true) on the server for changes
            (see the module notes); check mode works without it.
        type: str
      name:
        description: Name used in results, diffs and messages. Defaults to the URL's host and port.
        type: str
      validate_certs:
        description: Verify the server's TLS certificate. Defaults to O(validate_certs).
        type: bool
      ca_path:
        description: CA certificate file (PEM) to verify this server's certificate. Defaults to O(ca_path).
        type: path
  server:
    description:
      - Shorthand for a single server URL; uses O(password). Mutually exclusive with O(servers).
    type: str
  password:
    description:
      - Default password (admin or app password) for every server without its own.
    type: str
notes:
  - B(App passwords.) Pi-hole v6 can issue an application password that logs in without 2FA. Create it in the
    web interface under I(Settings > Web interface / API > Configure app password) (I(expert) mode), or through
    the API with C(GET /api/auth/app) followed by C(PATCH /api/config) setting C(webserver.api.app_pwhash) to the
    returned hash. The password is shown once, store it in an Ansible vault. Creating it logs out all sessions.
  - B(When app_sudo is needed.) Sessions opened with an app password are read-only for settings, every
    write this module does (C(PATCH)/C(PUT)/C(DELETE /api/config)) is refused with HTTP 403 unless
    C(webserver.api.app_sudo) is C(true) (I(Settings > All settings > Webserver and API), or
    C(pihole-FTL --config webserver.api.app_sudo true) on the host). Check mode only reads and works without it.
    With the admin password C(app_sudo) does not matter.
  - Sessions are a scarce resource (C(webserver.api.max_sessions), 16 by default, each valid 30 minutes after its
    last use); this module uses one per server and always closes it. A session that expires while the module runs
    (HTTP 401) is re-opened exactly once.
  - Retries (O(retries)) cover HTTP 429, 5xx, refused or reset connections and timeouts.
  - The password and the session ID and CSRF token are never logged or returned.
"""

    # HTTP options of every module that talks to the FTL API (homelab.pi_cluster.pihole.http)
    HTTP = r"""
options:
  validate_certs:
    description: Verify TLS certificates (https URLs).
    type: bool
    default: true
  ca_path:
    description: CA certificate file (PEM) used to verify the servers' certificates.
    type: path
  timeout:
    description: Timeout of one HTTP request, in seconds.
    type: float
    default: 10
  retries:
    description:
      - How often a request is retried on HTTP 429, 5xx, a refused or reset connection or a
        timeout, with exponential backoff starting at 0.5 seconds.
    type: int
    default: 3
"""
