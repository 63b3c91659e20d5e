"""kubeconfig_merge: the pure merge and the module entry point (file writes, check mode, mode, errors)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.homelab.pi_cluster.plugins.module_utils._kubeconfig import KubeconfigError, merge, summary
from ansible_collections.homelab.pi_cluster.plugins.modules import kubeconfig_merge as module

SECRET = "tok-" + "x" * 20


def k3s_yaml(token: str = SECRET, ca: str = "Q0E=") -> dict[str, Any]:
    """What K3s writes to /etc/rancher/k3s/k3s.yaml: everything called default, server on 127.0.0.1."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "default", "cluster": {"certificate-authority-data": ca, "server": "https://127.0.0.1:6443"}}
        ],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
        "current-context": "default",
        "preferences": {},
        "users": [{"name": "default", "user": {"token": token}}],
    }


def other_config() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "work", "cluster": {"server": "https://work.example:443"}}],
        "users": [{"name": "work-admin", "user": {"token": "work-token"}}],
        "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work-admin", "namespace": "ops"}}],
        "current-context": "work",
    }


def test_merge_renames_rewrites_server_and_keeps_other_contexts() -> None:
    merged = merge(other_config(), k3s_yaml(), "pi", server="https://192.168.1.240:6443")
    assert [c["name"] for c in merged["contexts"]] == ["work", "pi"]
    assert merged["contexts"][0] == other_config()["contexts"][0]
    assert merged["clusters"][1] == {
        "name": "pi",
        "cluster": {"certificate-authority-data": "Q0E=", "server": "https://192.168.1.240:6443"},
    }
    assert merged["users"][1] == {"name": "pi", "user": {"token": SECRET}}
    assert merged["contexts"][1] == {"name": "pi", "context": {"cluster": "pi", "user": "pi"}}
    assert merged["current-context"] == "work"  # kept unless asked


def test_merge_replaces_same_name_in_place_and_is_stable() -> None:
    first = merge(other_config(), k3s_yaml(), "pi", server="https://a:6443")
    again = merge(first, k3s_yaml(token="rotated"), "pi", server="https://a:6443")
    assert [c["name"] for c in again["clusters"]] == ["work", "pi"]
    assert again["users"][1]["user"]["token"] == "rotated"
    assert merge(first, k3s_yaml(), "pi", server="https://a:6443") == first


def test_current_context_set_when_missing_or_asked() -> None:
    assert merge(None, k3s_yaml(), "pi")["current-context"] == "pi"
    assert merge(other_config(), k3s_yaml(), "pi", set_current_context=True)["current-context"] == "pi"


@pytest.mark.parametrize(
    ("existing", "source", "fragment"),
    [
        ("text", k3s_yaml(), "existing kubeconfig is not a kubeconfig"),
        ({"kind": "Pod"}, k3s_yaml(), "kind 'Pod'"),
        ({"contexts": "nope"}, k3s_yaml(), "contexts must be a list"),
        (None, {**k3s_yaml(), "current-context": "", "contexts": []}, "no current-context"),
        (None, {**k3s_yaml(), "users": []}, "names a cluster or user"),
    ],
)
def test_merge_rejects_bad_input(existing: Any, source: Any, fragment: str) -> None:
    with pytest.raises(KubeconfigError, match=fragment):
        merge(existing, source, "pi")


def test_summary_never_shows_credentials() -> None:
    text = summary(merge(other_config(), k3s_yaml(), "pi", server="https://a:6443"))
    assert "context pi: cluster=pi user=pi server=https://a:6443" in text
    assert SECRET not in text and "work-token" not in text and "Q0E=" not in text


# ---------------------------------------------------------------- module entry point


def run(
    args: dict[str, Any], capsys: pytest.CaptureFixture[str], check: bool = False, diff: bool = False
) -> dict[str, Any]:
    full = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
    with patch_module_args(full), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_module_four_runs_keeps_other_contexts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "kube" / "config"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(other_config()), encoding="utf-8")
    args = {
        "path": str(path),
        "kubeconfig": yaml.safe_dump(k3s_yaml()),
        "name": "pi",
        "server": "https://10.0.0.1:6443",
    }
    results = [run(args, capsys, check=check, diff=True) for check in (True, False, True, False)]
    assert [r["changed"] for r in results] == [True, True, False, False]
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [c["name"] for c in written["contexts"]] == ["work", "pi"]
    assert written["clusters"][1]["cluster"]["server"] == "https://10.0.0.1:6443"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert results[0]["diff"]["after"].count("context ") == 2
    for result in results:
        assert SECRET not in json.dumps(result)


def test_module_check_mode_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "new" / "config"
    result = run({"path": str(path), "kubeconfig": yaml.safe_dump(k3s_yaml()), "name": "pi"}, capsys, check=True)
    assert result["changed"] is True and not path.exists()
    result = run({"path": str(path), "kubeconfig": yaml.safe_dump(k3s_yaml()), "name": "pi"}, capsys)
    assert result["current_context"] == "pi" and result["contexts"] == ["pi"]
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_module_fixes_a_loose_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config"
    args = {"path": str(path), "kubeconfig": yaml.safe_dump(k3s_yaml()), "name": "pi"}
    run(args, capsys)
    path.chmod(0o644)
    assert run(args, capsys)["changed"] is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("clusters: [unterminated", "not valid YAML"), ("- just\n- a list\n", "not a kubeconfig")],
)
def test_module_refuses_a_broken_existing_file_and_leaves_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, fragment: str
) -> None:
    path = tmp_path / "config"
    path.write_text(content, encoding="utf-8")
    result = run({"path": str(path), "kubeconfig": yaml.safe_dump(k3s_yaml()), "name": "pi"}, capsys)
    assert result["failed"] is True and fragment in result["msg"]
    assert path.read_text(encoding="utf-8") == content
    assert SECRET not in json.dumps(result)
