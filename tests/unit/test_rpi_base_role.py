"""roles/rpi_base: the argument spec matches defaults/main.yml, and the role's derived values
(vars/main.yml, rendered with Ansible's own templar) do the right thing for tricky inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lab import role_vars

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "rpi_base"


def load(rel: str) -> Any:
    return role_vars.load(ROLE, rel)


DEFAULTS: dict[str, Any] = load("defaults/main.yml")
SPEC: dict[str, Any] = load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]


def test_every_default_is_in_the_spec_and_every_option_has_a_default():
    assert sorted(DEFAULTS) == sorted(SPEC)


@pytest.mark.parametrize("name", sorted(SPEC))
def test_spec_default_equals_defaults_main(name):
    assert SPEC[name]["default"] == DEFAULTS[name]


@pytest.mark.parametrize("name", sorted(SPEC))
def test_option_is_prefixed_typed_and_described(name):
    assert name.startswith("rpi_base_")
    assert SPEC[name]["type"] in {"bool", "int", "str", "path", "list", "dict"}
    assert SPEC[name]["description"]
    if SPEC[name]["type"] == "list":
        assert "elements" in SPEC[name]


def render(expr: str, **overrides: Any) -> Any:
    return role_vars.render(
        ROLE, expr, **{"ansible_check_mode": False, "inventory_hostname_short": "pi-master", **overrides}
    )


def probe(*lines: str) -> dict[str, Any]:
    return {"__rpi_base_probe": {"stdout_lines": list(lines)}}


PI_OS = "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet"


@pytest.mark.parametrize(
    ("cmdline", "wanted"),
    [
        (PI_OS, PI_OS + " cgroup_memory=1 cgroup_enable=memory"),
        # already present, in any order and position: nothing to do
        ("cgroup_enable=memory " + PI_OS + " cgroup_memory=1", "cgroup_enable=memory " + PI_OS + " cgroup_memory=1"),
        # one present: only the other is added
        (PI_OS + " cgroup_memory=1", PI_OS + " cgroup_memory=1 cgroup_enable=memory"),
        # other cgroup_enable values are kept (the argument may repeat)
        (PI_OS + " cgroup_enable=cpuset", PI_OS + " cgroup_enable=cpuset cgroup_memory=1 cgroup_enable=memory"),
        # a broken multi-line file becomes the single line the firmware reads
        ("console=tty1   rootwait  cgroup_memory=1 ", "console=tty1 rootwait cgroup_memory=1 cgroup_enable=memory"),
        ("", "cgroup_memory=1 cgroup_enable=memory"),
    ],
)
def test_cmdline_wanted(cmdline, wanted):
    assert (
        render("_rpi_base_cmdline_wanted", **probe("model Raspberry Pi 5 Model B Rev 1.0", f"cmdline {cmdline}"))
        == wanted
    )


@pytest.mark.parametrize(
    ("model", "is_pi", "is_pi5"),
    [
        ("Raspberry Pi 5 Model B Rev 1.0", True, True),
        ("Raspberry Pi 4 Model B Rev 1.5", True, False),
        ("Raspberry Pi Compute Module 5 Rev 1.0", True, False),
        ("Pine64 RockPro64 v2.1", False, False),
    ],
)
def test_pi_detection(model, is_pi, is_pi5):
    lines = probe(f"model {model}")
    assert render("_rpi_base_is_pi", **lines) is is_pi
    assert render("_rpi_base_is_pi5", **lines) is is_pi5


def test_no_device_tree_is_not_a_pi():
    assert render("_rpi_base_is_pi", **probe("boot_dir /boot", "package curl")) is False


def test_pcie_gen3_only_on_a_pi5():
    pi5 = probe("model Raspberry Pi 5 Model B Rev 1.0")
    pi4 = probe("model Raspberry Pi 4 Model B Rev 1.5")
    assert render("_rpi_base_config_txt", rpi_base_pcie_gen3=True, **pi5) == {
        "arm_64bit": "1",
        "dtparam=pciex1_gen": "3",
    }
    assert render("_rpi_base_config_txt", rpi_base_pcie_gen3=True, **pi4) == {"arm_64bit": "1"}
    assert render("_rpi_base_config_txt", rpi_base_pcie_gen3=False, **pi5) == {"arm_64bit": "1"}


def sysctl_rows(*rows: str) -> dict[str, Any]:
    return probe(*(f"sysctl {row}" for row in rows))  # the preflight probe's sysctl rows


def test_shared_kernel_applies_only_writable_net_keys_that_differ():
    rows = sysctl_rows(
        "net.ipv4.ip_forward w differs",
        "net.ipv6.conf.all.forwarding w same",
        "net.bridge.bridge-nf-call-iptables - differs",
        "net.bridge.bridge-nf-call-ip6tables w differs",
        "vm.overcommit_memory r differs",
        "kernel.panic r differs",
    )
    got = render("_rpi_base_sysctl_to_set", rpi_base_apply_kernel_globals=False, **rows)
    assert got == ["net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-ip6tables=1"]


def test_own_kernel_applies_every_key_that_differs():
    rows = sysctl_rows("net.ipv4.ip_forward w same", "vm.overcommit_memory w differs", "kernel.panic w differs")
    got = render("_rpi_base_sysctl_to_set", rpi_base_apply_kernel_globals=True, **rows)
    assert got == ["vm.overcommit_memory=1", "kernel.panic=10"]


def test_nothing_to_set():
    rows = sysctl_rows("net.ipv4.ip_forward w same")
    assert render("_rpi_base_sysctl_to_set", rpi_base_apply_kernel_globals=False, **rows) == []


def test_probe_parsing():
    lines = probe(
        "swap /var/swap", "swapfile /var/swap", "package curl", "package dphys-swapfile", "boot_dir /boot/firmware"
    )
    assert render("_rpi_base_swap_areas", **lines) == ["/var/swap"]
    assert render("_rpi_base_swapfile_exists", **lines) is True
    assert render("_rpi_base_installed", **lines) == ["curl", "dphys-swapfile"]
    assert render("_rpi_base_boot_dir", **lines) == "/boot/firmware"
    assert render("_rpi_base_missing_packages", **lines) == ["ca-certificates", "jq", "kmod", "procps"]
