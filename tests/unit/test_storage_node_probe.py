"""roles/storage: what vars/main.yml makes of node_prereqs.yml's probe lines (rendered with Ansible's own
templar), including the kernel-global parts (iscsi_tcp loaded, iscsid active) the shared-kernel lab never
applies, so tests/integration/test_storage_node_prereqs.py cannot reach them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from lab import role_vars

ROLE = Path(__file__).resolve().parents[2] / "roles" / "storage"
MODULES_LOAD = "# Managed by homelab.pi_cluster.storage: Longhorn's iSCSI transport\niscsi_tcp\n"
FILE_LINE = f"file {hashlib.sha256(MODULES_LOAD.encode()).hexdigest()} 644 root root /etc/modules-load.d/longhorn.conf"
BLOCK = ["multipath_block blacklist {", 'multipath_block     devnode "^sd[a-z0-9]+"', "multipath_block }"]
CONVERGED = [
    FILE_LINE,
    "iscsid_enabled enabled",
    "iscsid_active inactive",
    "multipath_conf 644",
    "multipath_marker",
    *BLOCK,
    "multipath_marker",
    "package nfs-common",
    "package open-iscsi",
]


def render(expr: str, lines: list[str], **overrides: Any) -> Any:
    return role_vars.render(
        ROLE, expr, **{"ansible_check_mode": False, "__storage_probe": {"stdout_lines": lines}, **overrides}
    )


def without(*drop: str) -> list[str]:
    return [line for line in CONVERGED if line not in drop]


def replaced(old: str, new: str) -> list[str]:
    return [new if line == old else line for line in CONVERGED]


def test_converged_shared_kernel_node_has_nothing_to_do() -> None:
    assert render("_storage_node_to_do", CONVERGED, storage_apply_kernel_globals=False) is False
    assert render("_storage_missing_packages", CONVERGED) == []


def test_own_kernel_needs_iscsi_tcp_loaded_and_iscsid_active() -> None:
    own = {"storage_apply_kernel_globals": True}
    assert render("_storage_iscsi_tcp_to_load", CONVERGED, **own) is True
    assert render("_storage_iscsid_in_place", CONVERGED, **own) is False
    running = [*replaced("iscsid_active inactive", "iscsid_active active"), "kmod iscsi_tcp"]
    assert render("_storage_node_to_do", running, **own) is False
    assert render("_storage_node_to_do", [line for line in running if line != "kmod iscsi_tcp"], **own) is True
    # neither counts where the kernel is shared
    assert render("_storage_iscsi_tcp_to_load", CONVERGED, storage_apply_kernel_globals=False) is False


@pytest.mark.parametrize(
    ("lines", "part"),
    [
        (without("package open-iscsi"), "packages"),
        (replaced(FILE_LINE, FILE_LINE.replace(" 644 ", " 600 ")), "modules_load"),
        (replaced(FILE_LINE, FILE_LINE.replace("root root", "pi root")), "modules_load"),
        (without(FILE_LINE), "modules_load"),
        (replaced("iscsid_enabled enabled", "iscsid_enabled disabled"), "iscsid"),
        (replaced("iscsid_enabled enabled", "iscsid_enabled static"), "iscsid"),  # systemd_service decides
        (replaced("iscsid_enabled enabled", "iscsid_enabled "), "iscsid"),  # no unit (package missing)
        (replaced("multipath_conf 644", "multipath_conf 600"), "multipath"),
        (without("multipath_conf 644"), "multipath"),
        ([line for line in CONVERGED if not line.startswith("multipath_")], "multipath"),
        ([*CONVERGED, "multipath_no_final_newline"], "multipath"),
        (replaced(BLOCK[1], 'multipath_block     devnode "^nvme"'), "multipath"),
        (without(BLOCK[2]), "multipath"),
    ],
)
def test_one_part_out_of_place_is_something_to_do(lines: list[str], part: str) -> None:
    shared = {"storage_apply_kernel_globals": False}
    assert render("_storage_node_to_do", lines, **shared) is True
    in_place = {
        "packages": render("_storage_missing_packages", lines) == [],
        "modules_load": render("_storage_modules_load_in_place", lines),
        "iscsid": render("_storage_iscsid_in_place", lines, **shared),
        "multipath": render("_storage_multipath_in_place", lines),
    }
    assert [name for name, ok in in_place.items() if not ok] == [part]


def test_missing_packages_keep_the_list_order_and_unknown_ones() -> None:
    packages = ["open-iscsi", "multipath-tools", "nfs-common"]
    assert render("_storage_missing_packages", CONVERGED, storage_node_packages=packages) == ["multipath-tools"]


def test_custom_devnode_is_what_the_block_must_hold() -> None:
    devnode = "^(sd|vd)[a-z]+"
    lines = replaced(BLOCK[1], f'multipath_block     devnode "{devnode}"')
    assert render("_storage_multipath_in_place", lines, storage_multipath_blacklist_devnode=devnode) is True
    assert render("_storage_multipath_in_place", CONVERGED, storage_multipath_blacklist_devnode=devnode) is False


@pytest.mark.parametrize(
    ("lines", "packages_changed", "present"),
    [
        (CONVERGED, False, False),
        ([*CONVERGED, "multipathd"], False, True),
        (CONVERGED, True, False),  # installed something, but not multipath-tools
    ],
)
def test_handler_restarts_multipathd_only_where_it_is(lines: list[str], packages_changed: bool, present: bool) -> None:
    result = render("_storage_multipathd_present", lines, __storage_packages={"changed": packages_changed})
    assert result is present


def test_handler_follows_multipath_tools_installed_by_this_run() -> None:
    packages = ["open-iscsi", "nfs-common", "multipath-tools"]
    for changed in (True, False):
        result = render(
            "_storage_multipathd_present",
            CONVERGED,
            storage_node_packages=packages,
            __storage_packages={"changed": changed},
        )
        assert result is changed
