"""The rpi_base_plan filter directly: bad input is refused clearly, and one probe reading gives one plan.

The role-level behaviour (what each plan key means for tricky inputs) is tested through the role's
variables in test_rpi_base_role.py."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.pi_cluster.plugins.filter.rpi_base_plan import rpi_base_plan

SETTINGS: dict[str, Any] = {
    "manage_boot": True,
    "cmdline_args": ["cgroup_memory=1", "cgroup_enable=memory"],
    "config_txt": {"arm_64bit": "1"},
    "pcie_gen3": True,
    "disable_swap": True,
    "swapfile": "/var/swap",
    "apply_kernel_globals": False,
    "sysctl": {"net.ipv4.ip_forward": 1, "vm.overcommit_memory": 1},
    "sysctl_file": "/etc/sysctl.d/90-k3s.conf",
    "sysctl_content": "net.ipv4.ip_forward = 1\n",
    "kernel_modules": ["overlay"],
    "modules_load_file": "/etc/modules-load.d/k3s.conf",
    "modules_load_content": "overlay\n",
    "hostname": "pi-master",
    "timezone": "Etc/UTC",
    "packages": ["curl", "jq", "curl"],
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_converged_pi5_has_nothing_to_do() -> None:
    cmdline = "console=tty1 cgroup_memory=1 cgroup_enable=memory"
    lines = [
        "os debian",
        "model Raspberry Pi 5 Model B Rev 1.0",
        "boot_dir /boot/firmware",
        f"cmdline {cmdline}",
        f"cmdline_sha256 {sha(cmdline + chr(10))}",
        "config_txt_marker",
        "config_txt_block [all]",
        "config_txt_block arm_64bit=1",
        "config_txt_block dtparam=pciex1_gen=3",
        "config_txt_marker",
        f"file {sha('overlay' + chr(10))} 644 root root /etc/modules-load.d/k3s.conf",
        f"file {sha('net.ipv4.ip_forward = 1' + chr(10))} 644 root root /etc/sysctl.d/90-k3s.conf",
        "sysctl net.ipv4.ip_forward w same",
        "sysctl vm.overcommit_memory r differs",
        "hostname pi-master",
        "hostname_static pi-master",
        "hosts_line 127.0.1.1\tpi-master",
        "timezone Etc/UTC",
        "cgroup cpu memory",
        "package curl",
        "package jq",
    ]
    plan = rpi_base_plan(lines, SETTINGS)
    assert plan["boot_in_place"] and plan["is_pi5"] and plan["config_txt"]["dtparam=pciex1_gen"] == "3"
    assert plan["sysctl_live"] == ["net.ipv4.ip_forward"], "a shared kernel applies only writable net.* keys"
    assert plan["sysctl_to_set"] == [] and not plan["kernel_to_do"] and not plan["swap_to_do"]
    assert plan["missing_packages"] == [] and not plan["system_to_do"] and plan["to_do"] is False
    assert plan["cgroup"] == "cpu memory"


def test_each_part_out_of_place_makes_it_to_do() -> None:
    plan = rpi_base_plan(
        ["os ubuntu debian", "swap /var/swap", "package curl"], {**SETTINGS, "apply_kernel_globals": True}
    )
    assert plan["os_debian"] and not plan["is_pi"] and not plan["boot_managed"]
    assert plan["swap_to_do"] and plan["kernel_to_do"] and plan["system_to_do"]
    assert plan["missing_packages"] == ["jq"], "listed twice, installed once: only the missing one, once"
    assert plan["to_do"] is True


def test_gathered_os_family_wins_over_os_release() -> None:
    assert rpi_base_plan(["os centos rhel"], {**SETTINGS, "os_family": "Debian"})["os_debian"] is True
    assert rpi_base_plan(["os centos rhel"], SETTINGS)["os_debian"] is False
    assert rpi_base_plan([], SETTINGS)["os_name"] == "unknown"


@pytest.mark.parametrize(
    ("lines", "settings", "message"),
    [
        ("model x", SETTINGS, "expects the probe's lines"),
        ([], ["not", "a", "dict"], "expects the probe's lines"),
        ([], {k: v for k, v in SETTINGS.items() if k != "sysctl"}, "settings lack 'sysctl'"),
    ],
)
def test_bad_input_is_refused_naming_what_is_wrong(lines: Any, settings: Any, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        rpi_base_plan(lines, settings)
