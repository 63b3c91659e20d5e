"""pihole_dns entry point (main) with patch_module_args, against the in-process test Pi-hole."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args
from lab.pihole import PiholeServer

from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_api import PiholeClient
from ansible_collections.homelab.pi_cluster.plugins.modules import pihole_dns


def run_module(args: dict[str, Any], capsys: Any) -> dict[str, Any]:
    with patch_module_args(args), pytest.raises(SystemExit):
        pihole_dns.main()
    return json.loads(capsys.readouterr().out)


def base(server: PiholeServer, **extra: Any) -> dict[str, Any]:
    return {"server": server.url, "password": server.password, "retries": 0, **extra}


def test_apply_check_and_diff(pihole: PiholeServer, capsys: Any) -> None:
    args = base(pihole, name="a.lab", ip="10.0.0.1", _ansible_check_mode=True, _ansible_diff=True)
    check = run_module(args, capsys)
    assert check["changed"] and pihole.ftl.hosts == []
    assert check["diff"][0]["after"] == "hosts:\n  10.0.0.1 a.lab\ncnameRecords:\n"
    applied = run_module(base(pihole, name="a.lab", ip="10.0.0.1"), capsys)
    assert applied["changed"] and applied["added"] == ["A a.lab 10.0.0.1"]
    assert pihole.ftl.hosts == ["10.0.0.1 a.lab"]
    assert pihole.password and pihole.password not in json.dumps(applied)
    assert not any(secret in json.dumps(applied) for secret in pihole.secrets)


def test_input_error_names_field_and_sends_nothing(pihole: PiholeServer, capsys: Any) -> None:
    result = run_module(base(pihole, name="a.lab", ip="10.0.0.300"), capsys)
    assert result["failed"] and result["field"] == "ip"
    assert result["msg"].startswith("invalid input, nothing was sent: ip:")
    assert pihole.requests == []


def test_v5_rejects_servers(pihole: PiholeServer, capsys: Any) -> None:
    result = run_module(base(pihole, name="a.lab", ip="10.0.0.1", api_version="5"), capsys)
    assert result["failed"] and result["field"] == "servers"


def test_totp_enabled_login_explains_app_password(pihole: PiholeServer) -> None:
    pihole.ftl.config["webserver"]["api"]["totp_secret"] = "JBSWY3DPEHPK3PXP"
    client = PiholeClient(pihole.url, pihole.password, retries=0)
    with pytest.raises(Exception, match="use an app password"):
        client.login()
    assert pihole.open_sessions == 0


def test_auto_probe(pihole: PiholeServer) -> None:
    assert PiholeClient(pihole.url, None).probe() is True
    pihole.stop()
    assert PiholeClient(pihole.url, None, timeout=2).probe() is None
