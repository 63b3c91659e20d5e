"""Entry points of pihole_password, postgres_password and credentials_plan; the credentials role's interface."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args
from lab.pihole import PiholeServer
from lab.pihole.ftl import check_hash

from ansible_collections.homelab.pi_cluster.plugins.module_utils._postgres_password import (
    PostgresError,
    Target,
    alter_role_sql,
    psql_argv,
    quote_ident,
    set_role_password,
)
from ansible_collections.homelab.pi_cluster.plugins.modules import credentials_plan, pihole_password

ROLE = Path(__file__).resolve().parents[2] / "roles" / "credentials"


def run_module(module: Any, args: dict[str, Any], capsys: Any) -> dict[str, Any]:
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


# -- pihole_password ---------------------------------------------------------------------------


def accepts(server: PiholeServer, password: str) -> bool:
    return check_hash(server.ftl.config["webserver"]["api"]["pwhash"], password)


def test_pihole_password_check_apply_rerun(pihole_pair: tuple[PiholeServer, PiholeServer], capsys: Any) -> None:
    first, second = pihole_pair
    second.ftl.config["webserver"]["api"]["pwhash"] = first.ftl.config["webserver"]["api"]["pwhash"]
    old, new = first.password or "", "N3w-password-for-test"
    args = {"servers": [first.url, second.url], "password": old, "new_password": new, "retries": 0}
    check = run_module(pihole_password, {**args, "_ansible_check_mode": True}, capsys)
    assert check["changed"] and accepts(first, old) and accepts(second, old)
    applied = run_module(pihole_password, args, capsys)
    assert applied["changed"] and not applied.get("failed")
    assert [s["verified"] for s in applied["per_server"]] == [True, True]
    assert [s["old_rejected"] for s in applied["per_server"]] == [True, True]
    assert all(accepts(s, new) and not accepts(s, old) for s in pihole_pair)
    again = run_module(pihole_password, args, capsys)  # a resumed run: the new password already works
    assert not again["changed"] and not again.get("failed")
    assert old not in json.dumps(again) and new not in json.dumps(applied)


def test_pihole_password_one_server_down_names_it(pihole_pair: tuple[PiholeServer, PiholeServer], capsys: Any) -> None:
    first, second = pihole_pair
    second.ftl.config["webserver"]["api"]["pwhash"] = first.ftl.config["webserver"]["api"]["pwhash"]
    second.stop()
    args = {
        "servers": [second.url, first.url],
        "password": first.password,
        "new_password": "Other-new-pass-123",
        "retries": 0,
        "timeout": 2,
    }
    result = run_module(pihole_password, args, capsys)
    assert result["failed"] and result["changed"]
    assert result["msg"].startswith(f"{second.url}: ") and "cannot reach" in result["msg"]
    assert accepts(first, "Other-new-pass-123")  # the server that is up still got the change


def test_pihole_password_wrong_current_password(pihole: PiholeServer, capsys: Any) -> None:
    args = {"servers": [pihole.url], "password": "not-the-password", "new_password": "Whatever-123456", "retries": 0}
    result = run_module(pihole_password, args, capsys)
    assert result["failed"] and "401" in result["msg"] and not result["changed"]
    assert accepts(pihole, pihole.password or "")


# -- postgres_password (logic with a fake psql) ------------------------------------------------


class FakePsql:
    def __init__(self, password: str) -> None:
        self.password = password
        self.calls: list[tuple[list[str], str | None, dict[str, str]]] = []

    def __call__(self, argv: list[str], stdin: str | None, env: dict[str, str]) -> tuple[int, str, str]:
        self.calls.append((argv, stdin, env))
        user = argv[argv.index("-U") + 1]
        if user == "admin":
            if stdin and stdin.startswith('ALTER ROLE "app" PASSWORD \'SCRAM-SHA-256$4096:'):
                self.password = env["NEW_FOR_TEST"]
                return 0, "", ""
            return 1, "", "ERROR: syntax"
        if env["PGPASSWORD"] == self.password:
            return 0, "1", ""
        return 2, "", f'psql: error: FATAL:  password authentication failed for user "{user}"'


def test_postgres_flow_and_secrets_stay_off_argv() -> None:
    target = Target("psql", "127.0.0.1", 5432, "postgres")
    fake = FakePsql("old-pass")

    def run(argv: list[str], stdin: str | None, env: dict[str, str]) -> tuple[int, str, str]:
        return fake(argv, stdin, {**env, "NEW_FOR_TEST": "new-pass"})

    kwargs: dict[str, Any] = {
        "admin": target,
        "login_user": "admin",
        "login_password": "admin-pass",
        "verify_target": target,
        "role": "app",
        "new_password": "new-pass",
        "old_password": "old-pass",
    }
    assert set_role_password(run, check_mode=True, **kwargs).changed and fake.password == "old-pass"
    outcome = set_role_password(run, **kwargs)
    assert (outcome.changed, outcome.verified, outcome.old_rejected) == (True, True, True)
    assert fake.password == "new-pass"
    again = set_role_password(run, **kwargs)
    assert not again.changed and again.verified and again.old_rejected
    for argv, stdin, _env in fake.calls:
        assert not {"new-pass", "old-pass", "admin-pass"} & set(argv)
        assert stdin is None or "new-pass" not in stdin  # only the SCRAM verifier is sent


def test_postgres_errors_and_quoting() -> None:
    target = Target("/usr/bin/psql", "db", 5433, "app")
    assert psql_argv(target, "u", "SELECT 1")[:4] == ["/usr/bin/psql", "-X", "-q", "-w"]
    assert quote_ident('we"ird') == '"we""ird"'
    assert alter_role_sql("app", "x").startswith('ALTER ROLE "app" PASSWORD \'SCRAM-SHA-256$4096:')

    def unreachable(argv: list[str], stdin: str | None, env: dict[str, str]) -> tuple[int, str, str]:
        return 2, "", 'psql: error: connection to server at "db" (1.2.3.4), port 5433 failed: Connection refused'

    with pytest.raises(PostgresError, match=r"connect to db:5433 as app: .*Connection refused"):
        set_role_password(
            unreachable,
            admin=target,
            login_user="a",
            login_password="p",
            verify_target=target,
            role="app",
            new_password="n",
        )


# -- credentials_plan --------------------------------------------------------------------------


def test_plan_module(capsys: Any) -> None:
    registry = [{"name": "pihole_admin", "kind": "pihole_admin", "servers": ["http://x"], "interval_days": 30}]
    states = {"pihole_admin": {"rotated_at": "2026-11-20T00:00:00Z"}}
    result = run_module(
        credentials_plan, {"registry": registry, "states": states, "now": "2026-11-26T00:00:00Z"}, capsys
    )
    assert result["due"] == [] and result["skipped"][0]["reason"] == "not due until 2026-12-20T00:00:00Z"
    assert result["entries"]["pihole_admin"]["var"] == "vault_pihole_admin" and not result["changed"]
    bad = run_module(credentials_plan, {"registry": [{**registry[0], "kind": "ldap"}]}, capsys)
    assert bad["failed"] and "credentials_registry[0] (pihole_admin): kind: got 'ldap'" in bad["msg"]
    bad_time = run_module(credentials_plan, {"registry": registry, "now": "yesterday"}, capsys)
    assert bad_time["failed"] and bad_time["msg"].startswith("now: not an ISO 8601 time")


# -- the role's interface ----------------------------------------------------------------------


def load(relative: str) -> Any:
    return yaml.safe_load((ROLE / relative).read_text(encoding="utf-8"))


def test_argument_specs_document_exactly_the_defaults() -> None:
    defaults = load("defaults/main.yml")
    options = load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(options) == sorted(defaults)
    types = {"str": str, "int": int, "bool": bool, "list": list}
    for name, spec in options.items():
        if spec.get("required"):  # no default: the empty placeholder makes the role fail early
            assert defaults[name] == "" and "default" not in spec, name
            continue
        assert spec["default"] == defaults[name], name
        assert isinstance(defaults[name], types[spec["type"]]), name
        assert spec.get("description"), name
        if "choices" in spec:
            assert defaults[name] in spec["choices"], name


def test_every_variable_is_prefixed_and_in_the_readme() -> None:
    readme = (ROLE / "README.md").read_text(encoding="utf-8")
    for name in load("defaults/main.yml"):
        assert name.startswith("credentials_") and f"`{name}`" in readme, name
    for name in load("vars/main.yml"):
        assert name.startswith("_credentials_"), name


def test_every_task_a_value_passes_through_is_no_log() -> None:
    value_refs = re.compile(
        r"_credentials_(new|old)\b|__credentials_(staged|secret|k3s_token_file)\b|__credentials_pg_login\['values'\]"
    )
    for path in sorted((ROLE / "tasks").glob("*.yml")):
        for task in load(f"tasks/{path.name}") or []:
            blocks = [*task.get("block", []), *task.get("rescue", [])] if "block" in task else [task]
            for item in blocks:
                if "include_tasks" in json.dumps(item) or "ansible.builtin.include_tasks" in item:
                    continue
                touches = value_refs.search(json.dumps({k: v for k, v in item.items() if k != "vars"}))
                if touches or item.get("homelab.pi_cluster.vault_keys", {}).get("transition"):
                    assert item.get("no_log") is True, f"{path.name}: {item.get('name')}"


def test_k3s_token_order_and_no_token_on_a_command_line() -> None:
    tasks = load("tasks/kind_k3s_token.yml")
    names = [t["name"] for t in tasks]
    order = [
        "Rotate the server token",
        "Write the new token",
        "Record the apply step",
        "Restart the K3s servers one at a time",
        "Restart the K3s agents one at a time",
        "Wait until every node",
    ]
    positions = [next(i for i, n in enumerate(names) if n.startswith(prefix)) for prefix in order]
    assert positions == sorted(positions)
    rotate = tasks[positions[0]]["ansible.builtin.command"]
    assert rotate["argv"][4:7] == ["{{ credentials_k3s_bin }}", "token", "rotate"]
    assert not any("_credentials_" in arg and "k3s" not in arg for arg in rotate["argv"])
    assert rotate["stdin"] == "{{ _credentials_old }}\n{{ _credentials_new }}"
    # both values come from stdin: the old one as K3S_TOKEN, the new one only on k3s's own argv
    # (K3s has no environment variable for --new-token)
    script = rotate["argv"][2]
    assert "read -r K3S_TOKEN" in script and "export K3S_TOKEN" in script
    assert 'exec "$@" --new-token "$new_token"' in script
    servers = tasks[positions[3]]
    assert servers["loop"] == "{{ _credentials_k3s_servers }}" and "throttle" not in servers
    assert tasks[positions[1]]["loop"] == "{{ _credentials_k3s_servers + _credentials_k3s_agents }}"
