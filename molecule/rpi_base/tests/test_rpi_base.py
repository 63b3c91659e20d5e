"""Verify rpi_base on the lab: a Pi 5 (Bookworm layout), a Pi 4 (legacy /boot) and a plain Debian host.

Host-side facts come through testinfra's ``host``; what only the lab harness knows (how often a
host booted, and when) comes from ``tests/lab/hostlab`` on the controller.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")

REPO = Path(__file__).resolve().parents[3]
HOSTLAB = REPO / "tests" / "lab" / "hostlab"
FIXTURES = REPO / "tests" / "lab" / "fixtures"
FLAGS = ["cgroup_memory=1", "cgroup_enable=memory"]
BOOT_DIR = {"pi5": "/boot/firmware", "pi4": "/boot"}
SYSCTL_NET = {
    "net.ipv4.ip_forward": 1,
    "net.ipv6.conf.all.forwarding": 1,
    "net.bridge.bridge-nf-call-iptables": 1,
    "net.bridge.bridge-nf-call-ip6tables": 1,
}
SYSCTL_PERSISTED_ONLY = {"vm.overcommit_memory": "1", "kernel.panic": "10", "fs.inotify.max_user_watches": "524288"}


def hostlab(*args: str) -> str:
    return subprocess.run([str(HOSTLAB), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def lab() -> dict:
    return json.loads((Path(hostlab("path").strip()) / "hosts.json").read_text())


@pytest.fixture
def name(host) -> str:
    return host.backend.get_hostname()


@pytest.fixture
def variant(lab, name) -> str:
    return next(h["variant"] for h in lab["hosts"] if h["name"] == name)


def fixture_text(variant: str, path: str) -> str:
    return (FIXTURES / variant / "rootfs" / path.lstrip("/")).read_text()


def config_sections(text: str) -> dict[str, list[str]]:
    """config.txt lines per conditional section; lines before any filter belong to [all]."""
    sections: dict[str, list[str]] = {"[all]": []}
    current = "[all]"
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line
            sections.setdefault(current, [])
        else:
            sections[current].append(line)
    return sections


def test_cmdline_is_one_line_with_each_flag_once_and_other_args_kept(host, variant):
    if variant == "plain":
        pytest.skip("no boot firmware files on a plain Debian host")
    path = f"{BOOT_DIR[variant]}/cmdline.txt"
    content = host.file(path).content_string
    assert content.endswith("\n") and content.count("\n") == 1, repr(content)
    args = content.split()
    for flag in FLAGS:
        assert args.count(flag) == 1, (flag, args)
    original = fixture_text(variant, path).split()
    assert args[: len(original)] == original, "existing arguments must stay as they were, in order"
    assert args[len(original) :] == FLAGS


def test_cmdline_took_effect_on_the_simulated_firmware(host, variant):
    if variant == "plain":
        pytest.skip("not a Pi")
    for flag in FLAGS:
        assert flag in host.file("/proc/cmdline").content_string.split()
    assert "memory" in host.file("/sys/fs/cgroup/cgroup.controllers").content_string.split()


def test_config_txt_settings_are_in_an_all_section(host, variant):
    if variant == "plain":
        pytest.skip("not a Pi")
    sections = config_sections(host.file(f"{BOOT_DIR[variant]}/config.txt").content_string)
    assert "arm_64bit=1" in sections["[all]"]
    # PCIe Gen 3 is a Pi 5 setting: enabled in the lab's group_vars, so only the Pi 5 gets it
    pcie = "dtparam=pciex1_gen=3"
    assert (pcie in sections["[all]"]) is (variant == "pi5")
    assert all(pcie not in lines for section, lines in sections.items() if section != "[all]")
    # everything that was there before is still there
    before = config_sections(fixture_text(variant, f"{BOOT_DIR[variant]}/config.txt"))
    after = config_sections(host.file(f"{BOOT_DIR[variant]}/config.txt").content_string)
    for section, lines in before.items():
        assert set(lines) <= set(after[section]), section


def test_boot_files_outside_the_boot_dir_are_untouched(host, variant):
    if variant == "pi5":  # Bookworm's /boot/*.txt "moved" placeholders must stay as shipped
        for path in ("/boot/cmdline.txt", "/boot/config.txt"):
            assert host.file(path).content_string == fixture_text("pi5", path)
    else:  # no boot edits on hosts without a device tree or at a path they don't use
        assert not host.file("/boot/firmware").exists
    if variant == "plain":
        for path in ("/boot/cmdline.txt", "/boot/config.txt"):
            assert not host.file(path).exists


def test_rebooted_exactly_once_on_pis_and_never_on_the_plain_host(name, variant):
    boots = int(hostlab("boots", name))
    assert boots == (1 if variant == "plain" else 2), f"{name} booted {boots} times"


def test_reboots_did_not_overlap(lab):
    """Each Pi went down only after the previous one was back (throttle: 1 on the reboot handler)."""
    windows = []
    for h in lab["hosts"]:
        events = [line.split() for line in hostlab("events", h["name"]).splitlines()]
        stops = [float(e[1]) for e in events if e[0] == "stop" and e[2] == "rc=129"]
        boots = [float(e[1]) for e in events if e[0] == "boot"]
        windows += [(stop, min(b for b in boots if b > stop)) for stop in stops]
    windows.sort()
    assert len(windows) == 2
    for (_, back), (next_down, _) in itertools.pairwise(windows):
        assert next_down > back, windows


def test_swap_is_off(host, variant):
    assert not host.package("dphys-swapfile").is_installed
    assert not host.file("/var/swap").exists
    for line in host.file("/etc/fstab").content_string.splitlines():
        fields = line.split()
        assert not (fields and not fields[0].startswith("#") and len(fields) > 2 and fields[2] == "swap"), line
    if variant == "plain":  # the fixture's two swap entries are commented out, not deleted
        assert host.file("/etc/fstab").content_string.count("# UUID=5b1e8f0a") == 1
        assert "# /swapfile none swap" in host.file("/etc/fstab").content_string
    assert host.file("/proc/swaps").content_string.count("\n") <= 1


def test_kernel_modules_are_persisted(host):
    """Loading is skipped in the lab (rpi_base_apply_kernel_globals: false): modules are machine-global."""
    conf = host.file("/etc/modules-load.d/k3s.conf")
    assert conf.mode == 0o644
    modules = [m for m in conf.content_string.splitlines() if m and not m.startswith("#")]
    assert modules == ["br_netfilter", "overlay", "iscsi_tcp"]


def test_sysctl_persisted_and_net_values_live(host):
    persisted = dict(
        (k.strip(), v.strip())
        for k, v in (
            line.split("=", 1)
            for line in host.file("/etc/sysctl.d/90-k3s.conf").content_string.splitlines()
            if "=" in line and not line.startswith("#")
        )
    )
    for key, value in SYSCTL_NET.items():
        assert persisted[key] == str(value)
        assert host.sysctl(key) == value, key  # per network namespace: applied live
    for key, text in SYSCTL_PERSISTED_ONLY.items():
        assert persisted[key] == text


def test_hostname_and_timezone(host, name):
    assert host.check_output("hostname") == name
    assert f"127.0.1.1\t{name}" in host.file("/etc/hosts").content_string.splitlines()
    assert host.check_output("timedatectl show --property=Timezone --value") == "Europe/London"


def test_base_packages_installed(host):
    for pkg in ("ca-certificates", "curl", "jq", "kmod", "procps"):
        assert host.package(pkg).is_installed, pkg
