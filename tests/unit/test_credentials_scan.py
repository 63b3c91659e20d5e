"""The migration scanner: what counts as a secret, line-preserving rewrites, name clashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.homelab.pi_cluster.plugins.module_utils._secret_scan import (
    Finding,
    ScanError,
    looks_random,
    rewrite,
    rewrite_line,
    scan,
    scan_text,
    shannon_entropy,
)

TOKEN = "q8ZxV3mK9pL2sT7wR4nB6yH1"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("pihole_password: hunter2-at-home", "secret variable name"),
        ('k3s_token: "abc"', "secret variable name"),
        ("  minio_secret_key: 'abc'", "secret variable name"),
        ("- grafana_api_key: abc", "secret variable name"),
        (f"build_id: {TOKEN}", "high-entropy string"),
        ("k3s_token_file: /etc/rancher/k3s/cluster-token", None),
        ("db_password_var: vault_db", None),
        ('redis_password: "{{ vault_redis_password }}"', None),
        ("airflow_password: changeme", None),
        ("motd: hello world with spaces and 123 numbers", None),
        ("image: registry.example/app:1.2.3-abcdef0123456789", None),
        ("password: |", None),
        ("# old_password: hunter2", None),
    ],
)
def test_yaml_lines(line: str, reason: str | None) -> None:
    findings = scan_text("group_vars/all.yml", line + "\n", 4.0)
    assert [f.reason for f in findings] == ([reason] if reason else [])


def test_ini_inventory_pairs_and_rewrite(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory" / "hosts"
    inventory.parent.mkdir()
    inventory.write_text("[nas]\nnas01 ansible_host=10.0.0.2 ansible_password='s3cr3t pw' other=1\n", encoding="utf-8")
    [finding] = scan([str(tmp_path)])
    assert (finding.key, finding.value, finding.line, finding.vault_var) == (
        "ansible_password",
        "s3cr3t pw",
        2,
        "vault_ansible_password",
    )
    assert rewrite([finding]) == [str(inventory)]
    assert inventory.read_text(encoding="utf-8").splitlines()[1] == (
        "nas01 ansible_host=10.0.0.2 ansible_password='{{ vault_ansible_password }}' other=1"
    )


def test_same_name_other_value_gets_a_file_specific_vault_var(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("db_password: one-value-here\n", encoding="utf-8")
    (tmp_path / "b.yml").write_text("db_password: another-value\n", encoding="utf-8")
    (tmp_path / "c.yml").write_text("db_password: one-value-here\n", encoding="utf-8")
    assert [f.vault_var for f in scan([str(tmp_path)])] == [
        "vault_db_password",
        "vault_b_db_password",
        "vault_db_password",
    ]


def test_rewrite_refuses_a_changed_line_and_writes_nothing(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yml", tmp_path / "b.yml"
    first.write_text("x_password: aaa-bbb-ccc\n", encoding="utf-8")
    second.write_text("y_password: ddd-eee-fff\n", encoding="utf-8")
    findings = scan([str(tmp_path)])
    second.write_text("y_password: edited-since\n", encoding="utf-8")
    with pytest.raises(ScanError, match=r"b.yml:1: y_password changed since the scan"):
        rewrite(findings)
    assert first.read_text(encoding="utf-8") == "x_password: aaa-bbb-ccc\n"  # no partial rewrite


def test_helpers() -> None:
    assert shannon_entropy("aaaa") == 0 and shannon_entropy("") == 0
    assert looks_random(TOKEN, 4.0) and not looks_random("a" * 30 + "1", 4.0)
    assert not looks_random("/var/lib/rancher/k3s/server/tls1234", 2.0)
    finding = Finding("vars.yml", 1, "k", "v", "secret variable name", "vault_k")
    assert rewrite_line("  - k: v", finding) == '  - k: "{{ vault_k }}"'
    assert "value" not in finding.public()
    with pytest.raises(ScanError, match="does not exist"):
        scan(["/nonexistent/for/the/test"])
