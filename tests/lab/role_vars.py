"""A role's variables rendered with Ansible's own templar, as a play sees them (defaults, then vars/main.yml).

Used by the unit tests of roles whose decisions live in vars/main.yml (rpi_base, storage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template


def load(role: Path, relative: str) -> Any:
    """One of the role's YAML files, as data."""
    return yaml.safe_load((role / relative).read_text(encoding="utf-8"))


def trusted(value: Any) -> Any:
    """Role files are trusted templates to Ansible (it marks them so when it loads a role)."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [trusted(v) for v in value]
    return value


def render(role: Path, expr: str, **variables: Any) -> Any:
    """``{{ expr }}`` with the role's defaults and vars, and ``variables`` (facts, registered results) over them."""
    values = trusted({**load(role, "defaults/main.yml"), **load(role, "vars/main.yml")})
    values.update(variables)
    return Templar(loader=DataLoader(), variables=values).template(trust_as_template("{{ " + expr + " }}"))
