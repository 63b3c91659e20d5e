"""playbooks/migrate_secrets.yml through ansible-playbook -vvv on a throwaway inventory and playbook tree."""

from __future__ import annotations

import secrets
from pathlib import Path

import yaml
from credentials_lab import make_vault
from lab.playbook import REPO, assert_no_secrets, run_playbook

PLAYBOOK = REPO / "playbooks" / "migrate_secrets.yml"


def token_like() -> str:
    """A value the scanner must catch by its look alone (40 characters, letters and digits mixed): a
    shorter one can, by chance, miss the digit or the entropy bar and make the test flaky."""
    while True:
        value = secrets.token_urlsafe(30)
        if any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
            return value


def test_migrate_check_apply_rerun(tmp_path: Path) -> None:
    pihole, grafana, become, nas, api = (secrets.token_urlsafe(18) for _index in range(5))
    random_id = token_like()
    tree = tmp_path / "site"
    (tree / "inventory" / "group_vars" / "all").mkdir(parents=True)
    (tree / "inventory" / "host_vars").mkdir()
    (tree / "playbooks").mkdir()
    group_vars = tree / "inventory" / "group_vars" / "all" / "vars.yml"
    group_vars.write_text(
        "---\n# DNS\n"
        f"pihole_password: {pihole}   # set by hand\n"
        f'grafana_admin_password: "{grafana}"\n'
        "k3s_token_file: /etc/rancher/k3s/cluster-token\n"
        f"build_id: {random_id}\n"
        "motd: hello world\n"
        "airflow_password: changeme\n"
        'redis_password: "{{ vault_redis_password }}"\n',
        encoding="utf-8",
    )
    group_vars.chmod(0o640)
    (tree / "inventory" / "host_vars" / "pi-master.yml").write_text(
        f"ansible_become_password: '{become}'\n", encoding="utf-8"
    )
    hosts = tree / "inventory" / "hosts"
    hosts.write_text(f"[nas]\nnas01 ansible_host=192.168.1.10 ansible_password={nas}\n", encoding="utf-8")
    app = tree / "playbooks" / "app.yml"
    app.write_text(
        f"- name: App\n  hosts: all\n  vars:\n    app_api_key: {api}\n    app_port: 8080\n  tasks: []\n",
        encoding="utf-8",
    )
    values = [pihole, grafana, become, nas, api, random_id]
    vault = make_vault(tmp_path / "vault")
    extra = {"migrate_vault_file": str(vault.path), "migrate_paths": [str(tree / "inventory"), str(tree / "playbooks")]}
    args = ["--vault-password-file", str(vault.password_file)]
    report_task = "Report what moved"
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}

    check = run_playbook(PLAYBOOK, extra_vars=extra, check=True, args=args)
    assert check.rc == 0, check.output[-4000:]
    assert_no_secrets(check.output, values)
    moved = check.task(report_task).result["msg"]["moved"]
    assert sorted(moved) == sorted(
        [
            "pihole_password -> vault_pihole_password",
            "grafana_admin_password -> vault_grafana_admin_password",
            "build_id -> vault_build_id",
            "ansible_become_password -> vault_ansible_become_password",
            "ansible_password -> vault_ansible_password",
            "app_api_key -> vault_app_api_key",
        ]
    )
    assert {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()} == before and not vault.path.exists()

    run = run_playbook(PLAYBOOK, extra_vars=extra, args=args)
    assert run.rc == 0, run.output[-4000:]
    assert_no_secrets(run.output, values)
    vault.assert_sealed()
    stored = vault.read()
    assert stored["vault_pihole_password"] == pihole and stored["vault_ansible_password"] == nas
    assert stored["vault_app_api_key"] == api and stored["vault_build_id"] == random_id
    text = group_vars.read_text(encoding="utf-8")
    assert 'pihole_password: "{{ vault_pihole_password }}"' in text and "# DNS" in text
    assert "airflow_password: changeme" in text and "motd: hello world" in text
    assert (group_vars.stat().st_mode & 0o777) == 0o640
    assert yaml.safe_load(text)["grafana_admin_password"] == "{{ vault_grafana_admin_password }}"
    assert "ansible_password='{{ vault_ansible_password }}'" in hosts.read_text(encoding="utf-8")
    assert yaml.safe_load(app.read_text(encoding="utf-8"))[0]["vars"]["app_api_key"] == "{{ vault_app_api_key }}"
    assert not [p for p in tree.rglob(".*.tmp")]
    for path in tree.rglob("*"):
        if path.is_file():
            assert not [v for v in values if v in path.read_text(encoding="utf-8")], path

    again = run_playbook(PLAYBOOK, extra_vars=extra, args=args)
    assert again.rc == 0 and again.task(report_task).result["msg"]["moved"] == []
    assert vault.read() == stored
