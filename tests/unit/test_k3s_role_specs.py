"""The k3s role's interface: argument_specs matches defaults/main.yml, the README lists every variable,
every variable is role-prefixed, and the molecule/site plays can rely on the handler topic."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "k3s"


def load(relative: str) -> Any:
    return yaml.safe_load((ROLE / relative).read_text(encoding="utf-8"))


def test_argument_specs_document_exactly_the_defaults() -> None:
    defaults = load("defaults/main.yml")
    options = load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(options) == sorted(defaults)
    for name, spec in options.items():
        if "default" in spec:  # computed defaults are described in prose instead
            assert spec["default"] == defaults[name], name
        else:
            assert "{{" in str(defaults[name]), f"{name}: a literal default must be in argument_specs"
        assert spec.get("description"), name


def test_argument_spec_types_fit_the_defaults() -> None:
    defaults = load("defaults/main.yml")
    options = load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    python_types = {"str": str, "path": str, "int": int, "bool": bool, "dict": dict, "list": list}
    for name, spec in options.items():
        if "{{" not in str(defaults[name]):
            assert isinstance(defaults[name], python_types[spec["type"]]), name
        if "choices" in spec and "{{" not in str(defaults[name]):
            assert defaults[name] in spec["choices"], name


def test_every_variable_is_prefixed_and_listed_in_the_readme() -> None:
    readme = (ROLE / "README.md").read_text(encoding="utf-8")
    for name in load("defaults/main.yml"):
        assert name.startswith("k3s_"), name
        assert f"`{name}`" in readme, f"{name} missing from README.md"
    for name in load("vars/main.yml"):
        assert name.startswith("_k3s_"), name


def test_secret_variables_are_no_log() -> None:
    options = load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    assert options["k3s_token"].get("no_log") is True


def test_every_task_touching_the_token_is_no_log() -> None:
    tasks = load("tasks/token.yml")
    token_tasks = [t for t in tasks if "token" in yaml.safe_dump(t) and "ansible.builtin.file" not in t]
    assert token_tasks and all(t.get("no_log") is True for t in token_tasks)


def test_handlers_are_sentence_case_with_listen_and_throttled() -> None:
    for handler in load("handlers/main.yml"):
        assert re.match(r"^[A-Z][a-z0-9 ]+(K3s)?[a-z0-9 ]*$", handler["name"]), handler["name"]
        assert handler.get("listen")
        assert "throttle" in handler


def test_no_secret_in_unit_or_env_templates() -> None:
    for template in ("k3s.service.j2", "k3s.service.env.j2"):
        text = (ROLE / "templates" / template).read_text(encoding="utf-8")
        assert "k3s_token " not in text and "k3s_token}" not in text and "{{ k3s_token }}" not in text
        assert "--token" not in text
