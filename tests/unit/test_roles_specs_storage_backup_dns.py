"""The storage, backup, dns and addons roles' interfaces: argument_specs matches defaults/main.yml, the
README lists every variable, variables are role-prefixed, secrets are no_log, and the host/API split and
the reference inventory's variable names hold."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = ("storage", "backup", "dns", "addons")
SECRETS = {
    "storage": set(),
    "backup": {"backup_minio_root_password", "backup_velero_s3_secret_key"},
    "dns": {"dns_pihole_password"},
    "addons": set(),
}
PYTHON_TYPES = {"str": str, "path": str, "int": int, "bool": bool, "dict": dict, "list": list}


def load(role: str, relative: str) -> Any:
    return yaml.safe_load((REPO / "roles" / role / relative).read_text(encoding="utf-8"))


def options(role: str) -> dict[str, Any]:
    return load(role, "meta/argument_specs.yml")["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_document_exactly_the_defaults(role: str) -> None:
    defaults = load(role, "defaults/main.yml")
    specs = options(role)
    assert sorted(specs) == sorted(defaults)
    for name, spec in specs.items():
        assert spec.get("description"), name
        if "{{" in str(defaults[name]):  # computed defaults are described in prose instead
            assert "default" not in spec, name
            continue
        assert spec["default"] == defaults[name], name
        assert isinstance(defaults[name], PYTHON_TYPES[spec["type"]]), name
        if "choices" in spec:
            assert defaults[name] in spec["choices"], name


@pytest.mark.parametrize("role", ROLES)
def test_variables_are_prefixed_and_in_the_readme(role: str) -> None:
    readme = (REPO / "roles" / role / "README.md").read_text(encoding="utf-8")
    for name in load(role, "defaults/main.yml"):
        assert name.startswith(f"{role}_"), name
        assert f"`{name}`" in readme, f"{name} missing from roles/{role}/README.md"
    vars_file = REPO / "roles" / role / "vars" / "main.yml"
    if vars_file.exists():
        for name in yaml.safe_load(vars_file.read_text(encoding="utf-8")):
            assert name.startswith(f"_{role}_"), name


@pytest.mark.parametrize("role", ROLES)
def test_secret_variables_are_no_log(role: str) -> None:
    specs = options(role)
    flagged = {name for name, spec in specs.items() if spec.get("no_log")}
    assert flagged == SECRETS[role]
    assert all(load(role, "defaults/main.yml")[name] == "" for name in flagged)  # never a default secret


def tasks_of(role: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items or []:
            found.append(item)
            for key in ("block", "rescue", "always"):
                walk(item.get(key, []))

    for path in sorted((REPO / "roles" / role / "tasks").glob("*.yml")):
        walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    return found


def test_every_task_carrying_a_secret_is_no_log() -> None:
    secret_tasks = [t for t in tasks_of("backup") if "_backup_secrets" in yaml.safe_dump(t)]
    assert secret_tasks
    assert all(t.get("no_log") is True for t in secret_tasks)


@pytest.mark.parametrize("role", ("storage", "backup", "dns"))
def test_api_side_runs_once_on_the_controller(role: str) -> None:
    """Every task that talks to the cluster or the Pi-holes is inside a run_once block delegated to localhost."""
    main = load(role, "tasks/main.yml")
    api_blocks = [t for t in main if "block" in t]
    assert len(api_blocks) == 1
    block = api_blocks[0]
    assert (block["delegate_to"], block["run_once"], block["become"]) == ("localhost", True, False)
    imported = {step["ansible.builtin.import_tasks"] for step in block["block"]}
    api_modules = re.compile(r"kubernetes\.core\.|homelab\.pi_cluster\.(longhorn_volume|velero_schedule|pihole_dns)")
    for path in sorted((REPO / "roles" / role / "tasks").glob("*.yml")):
        if api_modules.search(path.read_text(encoding="utf-8")):
            assert path.name in imported, f"{role}/{path.name} talks to an API outside the controller block"


def test_tasks_main_is_a_table_of_contents_with_tags() -> None:
    for role in ("storage", "backup", "dns"):
        for step in load(role, "tasks/main.yml"):
            assert role in step["tags"], (role, step["name"])
            inner = step.get("block", [step])
            assert all(set(s) <= {"name", "ansible.builtin.import_tasks", "when", "tags"} for s in inner), role


def test_handler_is_sentence_case_and_listens() -> None:
    handlers = load("storage", "handlers/main.yml")
    for handler in handlers:
        assert handler["name"][0].isupper()
        assert handler["name"][1:] == handler["name"][1:].lower()
        assert handler["listen"]
    notified = {t["notify"] for t in tasks_of("storage") if "notify" in t}
    assert notified == {h["listen"] for h in handlers}


def test_reference_inventory_uses_only_known_variables() -> None:
    """group_vars/all/{storage,backup,dns}.yml name variables the roles have (no silent typos)."""
    for role in ("storage", "backup", "dns"):
        known = set(load(role, "defaults/main.yml"))
        path = REPO / "inventory" / "group_vars" / "all" / f"{role}.yml"
        used = set(yaml.safe_load(path.read_text(encoding="utf-8")))
        assert used <= known, f"{path.name}: unknown {sorted(used - known)}"


def test_addons_example_is_pinned_and_secret_free() -> None:
    example = yaml.safe_load((REPO / "roles" / "addons" / "examples" / "reference.yml").read_text(encoding="utf-8"))
    charts = example["addons_helm_charts"]
    assert {c["name"] for c in charts} >= {
        "cert-manager",
        "kube-prometheus-stack",
        "loki",
        "postgresql",
        "redis",
        "airflow",
    }
    for chart in charts:
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", chart["version"]), chart["name"]
    text = yaml.safe_dump(example).lower()
    assert not re.search(r"password:\s*\S", text)
    assert "{{" not in text  # nothing templated from the vault into chart values
