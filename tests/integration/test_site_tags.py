"""``ansible-playbook site.yml --tags <area>`` runs that area whole, and only that area.

Asserted from ``--list-tasks`` over the reference inventory (nothing is contacted): for each area tag,
the plays carrying it list exactly the tasks an untagged run lists for them (no task of the role
forgot its tag), and every other play lists only the argument-spec validation Ansible always runs.
"""

from __future__ import annotations

import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "inventory" / "reference.pi_cluster.yml"
AREAS = ["base", "k3s", "storage", "backup", "dns", "addons"]
PLAY = re.compile(r"^\s+play #(\d+) \((.*?)\): (.*?)\tTAGS: \[(.*)\]$")
TASK = re.compile(r"^\s{6}(\S.*?)\tTAGS: \[(.*)\]$")
ALWAYS = "Validating arguments against arg spec"

Listing = dict[int, tuple[set[str], list[str]]]  # play number -> (play tags, task names)


@cache
def list_tasks(*args: str) -> Listing:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".build" / "collections"),
        "ANSIBLE_NOCOLOR": "1",
    }
    proc = subprocess.run(
        ["ansible-playbook", "-i", str(REFERENCE), "site.yml", "--list-tasks", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plays: Listing = {}
    current = 0
    for line in proc.stdout.splitlines():
        if match := PLAY.match(line):
            current = int(match.group(1))
            plays[current] = ({t.strip() for t in match.group(4).split(",") if t.strip()}, [])
        elif (match := TASK.match(line)) and current:
            plays[current][1].append(match.group(1))
    assert plays, proc.stdout
    return plays


def test_every_area_has_a_play_and_every_play_an_area() -> None:
    plays = list_tasks()
    for area in AREAS:
        assert any(area in tags for tags, _ in plays.values()), f"no play in site.yml is tagged {area!r}"
    for number, (tags, _) in plays.items():
        assert tags & set(AREAS), f"play #{number} carries none of the area tags {AREAS}: {sorted(tags)}"


@pytest.mark.parametrize("area", AREAS)
def test_area_tag_runs_its_plays_whole_and_nothing_else(area: str) -> None:
    full = list_tasks()
    tagged = list_tasks("--tags", area)
    assert tagged.keys() == full.keys()
    for number, (tags, tasks) in tagged.items():
        if area in tags:
            missing = [t for t in full[number][1] if t not in tasks]
            assert not missing, f"--tags {area}: play #{number} leaves out {missing} (tasks without the {area} tag)"
            assert len(tasks) > 1, f"--tags {area}: play #{number} runs no task of its role"
        else:
            extra = [t for t in tasks if ALWAYS not in t]
            assert not extra, f"--tags {area}: play #{number} ({sorted(tags)}) also runs {extra}"
